/* ct_gov.h: m-of-n custodian governance (docs/governance.md).
 *
 * The decisions: who may open which request, which approvals count, when
 * a quorum is reached, what falls due, what a version's state allows.
 * Every function takes the time as a parameter and never reads the clock,
 * so tests leap time.  Every change goes through the journal (ct_state)
 * before it takes effect, and is reported as an audit event through the
 * caller's emit function.  Token work (generating a version, destroying a
 * revoked one) is handed back to the caller as ct_gov_work, run on a
 * worker, and reported with ct_gov_finish; after a crash, ct_gov_reconcile
 * finds work that was begun and not finished and hands it back again.
 * Only the main thread uses a ct_gov.
 */
#ifndef CT_GOV_H
#define CT_GOV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "custodian/ct_err.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_state.h"
#include "custodian/ct_stmt.h"
#include "policy/pol.h"

#define CT_GOV_OPEN_MAX 64 /* open requests at one time */
#define CT_GOV_WORK_MAX 16 /* token work handed back at once */

typedef struct ct_gov ct_gov;

/* An audit event (consumed). */
typedef void (*ct_gov_emit)(void *arg, json_t *ev);

typedef struct {
	char id[CT_REQ_ID_LEN + 1]; /* the request; "" for housekeeping */
	/* CT_ACT_ROTATE: generate key/version; CT_ACT_REVOKE: destroy it;
	 * CT_ACT_BACKUP: write path; CT_ACT_RESTORE: restore path. */
	ct_action action;
	char key[65];
	uint32_t version;
	char path[CT_STMT_PATH_MAX];
	uint8_t digest[32];	    /* restore: the approved file digest */
	/* Set by the caller before ct_gov_finish of a backup: the digest of
	 * the file written and the PEM of the key that signed it. */
	char *signer_pem;	    /* borrowed */
} ct_gov_work;

ct_err ct_gov_open(const char *state_path, ct_gov_emit emit, void *arg,
		   ct_gov **out, char *err, size_t errlen) CT_WUR;
void ct_gov_free(ct_gov *g);
const ct_state *ct_gov_state(const ct_gov *g);

/* May this policy be in force?  At start and on reload: yes when it is the
 * one in force, when a quorum approved its digest, when no policy is in
 * force yet, or when the one in force sets no quorum for policy changes.
 * Records it as in force.  CT_ERR_POLICY with the reason otherwise. */
ct_err ct_gov_admit_policy(ct_gov *g, const pol_policy *pol, char *why,
			   size_t wl) CT_WUR;
/* The same decision without recording anything; *how (may be NULL) gets
 * "in force", "first", "approved" or "ungoverned". */
ct_err ct_gov_check_policy(const ct_gov *g, const pol_policy *pol,
			   const char **how, char *why, size_t wl) CT_WUR;

/* Match the versions on the tokens (ks) with the state, and mark in ks
 * what each may be used for.  Adopts versions of keys the state has never
 * seen (first start, keys added by a policy change) and of keys no quorum
 * governs; reports others it does not know.  Finishes or hands back work
 * that a crash interrupted. */
ct_err ct_gov_reconcile(ct_gov *g, const pol_policy *pol, ct_keystore *ks,
			int64_t now, ct_gov_work *work, size_t *n_work) CT_WUR;

/* Open a request.  proto holds the action and what it names (key,
 * version for revoke, digest for policy, path); the rest is filled here.
 * *result gets {request, statement, needed, expires}. */
ct_err ct_gov_request(ct_gov *g, const pol_policy *pol, uid_t peer, const ct_stmt *proto, int64_t now,
		      json_t **result, char *msg, size_t ml) CT_WUR;

/* Record a custodian's signed decision.  When it completes the quorum the
 * action runs: at once when it only changes state, else *work is filled
 * and *has_work set. */
ct_err ct_gov_approve(ct_gov *g, const pol_policy *pol, const char *id,
		      const char *custodian, bool approve, const uint8_t *sig,
		      size_t siglen, int64_t now, json_t **result,
		      ct_gov_work *work, bool *has_work, char *msg,
		      size_t ml) CT_WUR;

/* The public key (PEM, malloc'd) that signed the backup whose digest is
 * given, from the journal; NULL if this service made no such backup. */
char *ct_gov_backup_signer(const ct_gov *g, const uint8_t digest[32]);

/* Report the outcome of token work. */
ct_err ct_gov_finish(ct_gov *g, const ct_gov_work *w, ct_err result,
		     int64_t now) CT_WUR;

/* Time-driven duties: open rotation requests for keys that fall due and
 * hand back revoked versions whose grace period is over. */
ct_err ct_gov_tick(ct_gov *g, const pol_policy *pol, int64_t now,
		   ct_gov_work *work, size_t *n_work) CT_WUR;

/* A refusal happened (not_authorized, approval_refused): counts towards
 * the policy's auto_freeze threshold, which freezes the whole service. */
void ct_gov_note_refusal(ct_gov *g, const pol_policy *pol, int64_t now);

/* Views (new references, NULL when out of memory). */
json_t *ct_gov_show(ct_gov *g, const pol_policy *pol, const char *id,
		    int64_t now);
json_t *ct_gov_list(ct_gov *g, const pol_policy *pol, int64_t now);
json_t *ct_gov_due(ct_gov *g, const pol_policy *pol, int64_t now);
json_t *ct_gov_status(ct_gov *g, const pol_policy *pol, int64_t now);

#endif
