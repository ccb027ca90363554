/* ct_state.h: the governance state and its write-ahead journal.
 *
 * The state is what survives restart and power loss: key versions and
 * their states, requests and their approvals, freezes, and which policy
 * is in force.  It lives in memory and in an append-only journal of JSON
 * lines (docs/governance.md); every change is one line, written and
 * fdatasync'd before anything acts on it, then applied to memory by the
 * same function that replays the journal at start.  A change whose
 * effects must be atomic (a rotation's new version, a revocation) is one
 * line, so a crash leaves it whole or absent.  A torn last line (the
 * crash came mid-write, nothing acted on it) is cut off at open; any other
 * bad line refuses the open.  Only the main thread uses a ct_state.
 */
#ifndef CT_STATE_H
#define CT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "custodian/ct_err.h"
#include "custodian/ct_stmt.h"

#define CT_STATE_FILE_MAX (64u << 20) /* a journal longer than this is refused */
#define CT_APPROVALS_MAX 32	      /* a quorum lists at most 32 custodians */

typedef enum {
	CT_VS_ACTIVE = 1, /* in use; the highest active version is current */
	CT_VS_REVOKED,	  /* no use at all; destroyed after the grace period */
	CT_VS_DESTROYED,  /* the token object is gone */
} ct_vstate;

typedef struct {
	char key[65];
	uint32_t version;
	ct_vstate state;
	int64_t created;
	int64_t revoked; /* 0 unless revoked */
} ct_sver;

typedef enum {
	CT_RQ_OPEN = 1, /* waiting for approvals (or expired: see expires) */
	CT_RQ_RUNNING,	/* quorum reached, the action has begun */
	CT_RQ_DONE,
	CT_RQ_FAILED,
	CT_RQ_DENIED,
} ct_rqstate;

typedef struct {
	char custodian[65];
	bool approve;
} ct_approval;

typedef struct {
	ct_stmt stmt;
	char *text;	  /* the canonical statement, owned */
	size_t text_len;
	char by[80];	  /* who opened it: "uid 1001 (officer)", "daemon" */
	ct_rqstate state;
	char result[40];  /* wire code of the outcome when DONE/FAILED */
	ct_approval approvals[CT_APPROVALS_MAX];
	size_t n_approvals;
} ct_sreq;

/* A backup this service wrote: restores are accepted only of these. */
typedef struct {
	char id[CT_REQ_ID_LEN + 1];
	uint8_t digest[32];
	char *signer_pem; /* the public key that signed it, owned */
} ct_sbackup;

typedef struct {
	char *path;
	int fd;
	ct_sver *vers;
	size_t n_vers;
	ct_sreq *reqs;
	size_t n_reqs;
	bool frozen_all;
	char (*frozen)[65]; /* frozen keys */
	size_t n_frozen;
	bool has_policy;     /* a policy has been put in force */
	uint8_t policy[32];  /* its digest */
	bool policy_governed; /* it set a quorum for policy changes */
	uint8_t (*approved)[32]; /* approved policy digests not yet in force */
	size_t n_approved;
	ct_sbackup *backups;
	size_t n_backups;
	uint64_t lines;
} ct_state;

/* Open (creating it 0600 if missing) and replay. */
ct_err ct_state_open(const char *path, ct_state **out, char *err,
		     size_t errlen) CT_WUR;
void ct_state_free(ct_state *st);

/* Write one record (consumed), sync it, then apply it.  Records are built
 * with the ct_rec_* functions below. */
ct_err ct_state_append(ct_state *st, json_t *rec) CT_WUR;

/* Records.  Each returns a new object, or NULL when out of memory
 * (ct_state_append then fails). */
json_t *ct_rec_version(const char *key, uint32_t version, ct_vstate s,
		       int64_t now);
json_t *ct_rec_request(const char *text, size_t len, const char *by);
json_t *ct_rec_approval(const char *id, const char *custodian, bool approve,
			const uint8_t *sig, size_t siglen);
json_t *ct_rec_begin(const char *id);
/* The outcome of a request; on success it carries the action's effect. */
json_t *ct_rec_done(const char *id, const char *result, int64_t now);
json_t *ct_rec_policy(const uint8_t digest[32], bool governed);
json_t *ct_rec_backup(const char *id, const uint8_t digest[32],
		      const char *signer_pem);

/* Lookups (NULL when absent). */
ct_sver *ct_state_version(ct_state *st, const char *key, uint32_t version);
bool ct_state_knows_key(const ct_state *st, const char *key);
ct_sreq *ct_state_request(ct_state *st, const char *id);
bool ct_state_frozen(const ct_state *st, const char *key);
bool ct_state_policy_approved(const ct_state *st, const uint8_t digest[32]);
const ct_sbackup *ct_state_backup(const ct_state *st, const uint8_t digest[32]);

const char *ct_vstate_name(ct_vstate s);
const char *ct_rqstate_name(ct_rqstate s);

#endif
