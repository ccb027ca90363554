/* ct_limit.h: abuse limits per client identity (docs/policy.md, limits).
 *
 * An identity is the first client entry of the policy that matches a peer
 * ("client:NAME"), or, for a peer no entry matches, its uid ("uid:N").  Each
 * has a rate limiter (GCRA, the token bucket in time form: `burst` requests
 * at once, then `rate` per second) and a count of open connections.
 *
 * Refusals come in episodes, so that a flood costs a bounded number of audit
 * lines: the first refusal of an episode says so (CT_LIMIT_REFUSE_FIRST),
 * later ones are only counted (CT_LIMIT_REFUSE), and the episode ends at
 * the first admission at least CT_LIMIT_QUIET_NS after its last refusal,
 * which hands back the counts.
 *
 * Pure: the caller passes the time (CLOCK_MONOTONIC nanoseconds), so tests
 * move time without sleeping.  Used by one thread.
 */
#ifndef CT_LIMIT_H
#define CT_LIMIT_H

#include <stdint.h>
#include <sys/types.h>

#include "custodian/ct_err.h"
#include "policy/pol.h"

#define CT_LIMIT_QUIET_NS 1000000000ull
#define CT_LIMIT_KEY_MAX (POL_NAME_MAX + 8)

typedef enum {
	CT_LIMIT_ADMIT = 0,
	CT_LIMIT_REFUSE_FIRST, /* the first refusal of an episode: audit it */
	CT_LIMIT_REFUSE,       /* counted in the episode, not audited */
} ct_limit_verdict;

/* What an episode refused, handed back when it ends. */
typedef struct {
	uint64_t requests;
	uint64_t connections;
} ct_limit_counts;

typedef struct ct_limiter ct_limiter;
typedef struct ct_limit_entry ct_limit_entry;

/* At most max_entries identities; unknown uids beyond that are refused. */
ct_err ct_limiter_new(size_t max_entries, ct_limiter **out) CT_WUR;
void ct_limiter_free(ct_limiter *lm); /* NULL is fine; frees every entry */

/* The entry of the peer's identity under policy p at time now (a client
 * whose entry has ended counts as an unknown peer), created on first use;
 * NULL when the table is full or memory ran out.  The entry lives as long
 * as the limiter; it takes p's limits for the identity. */
ct_limit_entry *ct_limiter_peer(ct_limiter *lm, const pol_policy *p,
				uid_t uid, gid_t gid, time_t now);
/* After a reload: every entry takes its limits from the new policy (a
 * client that is gone keeps its old limits; its peers now map elsewhere).
 * Buckets, connection counts and episodes carry over. */
void ct_limiter_reload(ct_limiter *lm, const pol_policy *p);

/* One request at now_ns.  *ended is set (non-zero) when this admission
 * ended an episode. */
ct_limit_verdict ct_limit_request(ct_limit_entry *e, uint64_t now_ns,
				  ct_limit_counts *ended);
/* A new connection: admitted while under the cap, and then counted until
 * ct_limit_disconnect. */
ct_limit_verdict ct_limit_connect(ct_limit_entry *e, uint64_t now_ns,
				  ct_limit_counts *ended);
void ct_limit_disconnect(ct_limit_entry *e);

/* "client:NAME" or "uid:N", for the audit log. */
const char *ct_limit_identity(const ct_limit_entry *e);
const pol_limits *ct_limit_limits(const ct_limit_entry *e);
unsigned ct_limit_connections(const ct_limit_entry *e);

#endif
