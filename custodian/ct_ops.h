/* ct_ops.h: the command table and the key operations.
 *
 * Data flow: the main thread decodes a request (ct_proto), then
 * ct_ops_prepare() authorises it against the policy and the peer's
 * credentials and resolves the key version into the job, all before any
 * handler runs.  A token worker then calls ct_ops_run() with its own
 * session.  The job carries everything the worker needs, so the worker
 * never touches the policy or the key store.
 */
#ifndef CT_OPS_H
#define CT_OPS_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "custodian/ct_blob.h"
#include "custodian/ct_gov.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_proto.h"
#include "pkcs11/p11.h"
#include "policy/pol.h"

typedef struct {
	pid_t pid;
	uid_t uid;
	gid_t gid;
} ct_peer;

typedef struct ct_job ct_job;

typedef struct {
	ct_op op;
	unsigned right; /* POL_OP_* needed on the key; 0: any known client */
	bool token;	/* runs on a token worker */
	bool gov;	/* authorised by governance (ct_gov), not by clients */
	ct_err (*exec)(ct_job *job, p11_session *s);
} ct_cmd;

struct ct_job {
	ct_job *next;	  /* queue link, owned by whoever queues it */
	uint64_t conn_id; /* the connection waiting for the reply */
	ct_peer peer;
	ct_request req;
	const ct_cmd *cmd;
	/* Set by ct_ops_prepare on the main thread, read-only afterwards. */
	size_t token;	  /* index of the token in the policy */
	ct_keyref key;	  /* the version the operation uses */
	ct_keyref target; /* rewrap: the current version */
	ct_blob blob;	  /* unwrap/rewrap: parsed req.blob */
	bool has_work;	  /* governance token work, reported to ct_gov */
	ct_gov_work work;
	/* Set by the main thread while the job runs (the worker never reads
	 * it): the client was answered token_timeout. */
	bool late;
	/* Set by the worker. */
	ct_err err;
	char msg[320];	  /* room for an expired grant's key, client, engagement */
	json_t *result;	  /* owned; NULL on error */
	bool refound;	  /* key.handle/target.handle were found again */
};

/* Allocate a job that takes over the decoded request. */
ct_job *ct_job_new(uint64_t conn_id, const ct_peer *peer, ct_request *req);
void ct_job_free(ct_job *job); /* NULL is fine; wipes */

/* Turn a job into governance token work on the key's token (the job of
 * the approval that completed a quorum keeps its request and connection),
 * or make a job for work no client waits for (job_out). */
ct_err ct_ops_set_work(const pol_policy *pol, const ct_gov_work *w,
		       ct_job *job) CT_WUR;
ct_err ct_job_new_work(const pol_policy *pol, const ct_gov_work *w,
		       ct_job **job_out) CT_WUR;

/* Authorise at time now (the caller's clock) and resolve.  On refusal
 * returns the error for the reply and sets job->msg. */
ct_err ct_ops_prepare(const pol_policy *pol, const ct_keystore *ks,
		      ct_job *job, time_t now) CT_WUR;
/* Run on a worker (cmd->token) with a session on job->token, or on the
 * main thread with s == NULL for commands that need no token.  Sets
 * job->err, job->msg and job->result. */
void ct_ops_run(ct_job *job, p11_session *s);

/* RSA-OAEP encryption with ref's public key and OAEP hash, in process.
 * *outlen is the buffer size on entry. */
ct_err ct_rsa_oaep_encrypt(const ct_keyref *ref, const uint8_t *in,
			   size_t inlen, uint8_t *out, size_t *outlen) CT_WUR;

/* The list_keys result for this peer at time now (new reference). */
json_t *ct_ops_list_keys(const pol_policy *pol, const ct_keystore *ks,
			 const ct_peer *peer, time_t now);
/* The names of the POL_OP_* bits in ops, as a JSON array (new reference,
 * NULL when out of memory). */
json_t *ct_ops_names(unsigned ops);

#endif
