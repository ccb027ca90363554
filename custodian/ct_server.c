/* ct_server.c: the event loop of custodiand. */
#include "custodian/ct_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "custodian/ct_audit.h"
#include "custodian/ct_backup.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_limit.h"
#include "custodian/ct_ops.h"
#include "custodian/ct_pool.h"
#include "custodian/ct_readers.h"
#include "custodian/ct_priv.h"
#include "custodian/ct_sandbox.h"
#include "custodian/ct_tokens.h"
#include "custodian/ct_util.h"

#define MAX_CONNS 4096	      /* fds above this are refused at accept */
#define READ_CHUNK 4096
#define SHUTDOWN_GRACE_S 5    /* how long SIGTERM waits for running jobs */
#define TICK_MS 1000	      /* governance duties are checked this often */
/* What a freeze stops: every use of secret key material. */
#define FROZEN_OPS (POL_OP_SIGN | POL_OP_WRAP | POL_OP_UNWRAP | POL_OP_DATAKEY | \
		    POL_OP_REWRAP)

typedef struct conn {
	uint64_t id;
	int fd;
	ct_peer peer;
	char *rbuf; /* bytes read and not yet handled; may hold plaintext */
	size_t rlen, rcap;
	char *wbuf; /* reply bytes not yet sent; may hold plaintext */
	size_t wlen, woff;
	bool busy;    /* a request is running or waits for its audit commit */
	bool eof;     /* the peer sent everything it will send */
	bool closing; /* close once wbuf is sent */
	unsigned events; /* what epoll watches now */
	ct_limit_entry *lim; /* its identity's limits, shared */
	unsigned bad;	     /* malformed requests in a row */
	ct_job *job;	     /* its token call on a worker, until finish() */
	uint64_t deadline;   /* CLOCK_MONOTONIC ns: then token_timeout */
} conn;

/* A reply that may leave only after the audit line covering it is synced.
 * Its verdict is known once the commit covering that line is done. */
enum { V_WAIT, V_DURABLE, V_LOST };
typedef struct staged {
	struct staged *next;
	uint64_t conn_id;
	char id[CT_ID_MAX + 1];
	char *reply;
	size_t len;
	int verdict;
} staged;

typedef struct {
	const ct_server_opts *opts;
	pol_policy *pol;
	p11_token **tokens;	/* one per policy token, fixed for the run */
	p11_session **sess;	/* main-thread sessions, for key scans */
	size_t n_tokens;
	ct_keystore *ks;
	ct_pool *pool;
	ct_audit *audit;
	ct_gov *gov;
	char *state_path;
	time_t last_tick;
	ct_readers *readers;
	ct_readers_snapshot rsnap; /* the monitor's, as of its last news */
	ct_limiter *lim;
	char *sock_path;
	int lfd, ep, sigfd;
	conn *conns[MAX_CONNS];
	size_t n_conns;
	uint64_t next_id;
	staged *stage_head, **stage_tail; /* lines pending in the audit */
	staged *flight;		/* lines in the batch on the audit writer */
	uint64_t seen_failures;	/* audit commit failures as of the last line */
	struct timespec now;
	uint64_t mono;		/* CLOCK_MONOTONIC ns, for the limiter */
	uid_t self;		/* who started the daemon (before any drop) */
	time_t started;
	uint64_t requests;
	bool stopping;
	uint64_t cp_seq;	 /* seq of the last checkpoint attempt */
	time_t cp_time;		 /* and when it was made */
	bool rotate_asked;	 /* SIGUSR1 */
	uint64_t rotate_at;	 /* rotate by size when the file reaches it */
} server;

static ct_err audit_commit(server *sv);

static void
event_set_str(json_t *ev, const char *k, const char *v)
{
	json_t *s;

	/* Details may quote client bytes that are not UTF-8: drop them. */
	if (v != NULL && (s = json_string(v)) != NULL)
		json_object_set_new(ev, k, s);
}

static json_t *
peer_json(const ct_peer *p)
{
	return json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)p->uid, "gid",
	    (json_int_t)p->gid, "pid", (json_int_t)p->pid);
}

/* Append an audit line (ev is consumed).  A request whose line cannot be
 * appended is refused by the caller: no line, no result. */
static ct_err
audit_event(server *sv, json_t *ev)
{
	ct_err r;

	if (ev == NULL)
		return CT_ERR_NOMEM;
	r = ct_audit_append(sv->audit, ev, &sv->now);
	json_decref(ev);
	sv->seen_failures = ct_audit_failures(sv->audit);
	if (r != CT_OK)
		fprintf(stderr, "custodiand: audit append: %s\n", ct_strerror(r));
	return r;
}

/* The audit line of a request; `late`: its client was answered
 * token_timeout before the token answered this. */
static ct_err
audit_request_as(server *sv, const ct_peer *peer, const ct_request *req,
		 const ct_keyref *key, ct_err result, const char *detail,
		 bool late)
{
	json_t *ev = json_pack("{s:s, s:o}", "event", "request", "peer",
	    peer_json(peer));

	if (ev == NULL)
		return CT_ERR_NOMEM;
	event_set_str(ev, "id", req->id[0] ? req->id : NULL);
	event_set_str(ev, "op", req->spec ? req->spec->name : NULL);
	if (key != NULL && key->name[0] != '\0') {
		event_set_str(ev, "key", key->name);
		json_object_set_new(ev, "version", json_integer(key->version));
	} else
		event_set_str(ev, "key", req->key[0] ? req->key : NULL);
	event_set_str(ev, "result", result == CT_OK ? "ok" : ct_err_code(result));
	if (result != CT_OK)
		event_set_str(ev, "detail", detail);
	if (late)
		json_object_set_new(ev, "late", json_true());
	return audit_event(sv, ev);
}

static ct_err
audit_request(server *sv, const ct_peer *peer, const ct_request *req,
	      const ct_keyref *key, ct_err result, const char *detail)
{
	return audit_request_as(sv, peer, req, key, result, detail, false);
}

static conn *
conn_get(server *sv, uint64_t id)
{
	int fd = (int)(id & 0xffffff);
	conn *c = fd >= 0 && fd < MAX_CONNS ? sv->conns[fd] : NULL;

	return c != NULL && c->id == id ? c : NULL;
}

static void
stage(server *sv, uint64_t conn_id, const char *req_id, char *reply,
      size_t len)
{
	staged *s = calloc(1, sizeof(*s));

	conn *c;

	if (s == NULL) {
		/* Nothing can be said to this client; drop it. */
		ct_free_secret(reply, len);
		if ((c = conn_get(sv, conn_id)) != NULL)
			c->closing = true, c->busy = false;
		return;
	}
	s->conn_id = conn_id;
	snprintf(s->id, sizeof(s->id), "%s", req_id);
	s->reply = reply;
	s->len = len;
	/* A commit failed since the reply's line was appended: it took the
	 * line along, or may have. */
	s->verdict = ct_audit_failures(sv->audit) == sv->seen_failures ?
	    V_WAIT : V_LOST;
	*sv->stage_tail = s;
	sv->stage_tail = &s->next;
}

/* Stage an error reply (not audited: the caller decides). */
static void
reply_error(server *sv, conn *c, const ct_request *req, ct_err e,
	    const char *msg)
{
	char *reply = NULL;
	size_t len = 0;

	if (ct_reply_error(req->id, e, msg, &reply, &len) != CT_OK) {
		c->closing = true;
		return;
	}
	c->busy = true;
	stage(sv, c->id, req->id, reply, len);
}

/* Signs a checkpoint with the audit key's current version, on the main
 * thread's session: a few per minute cost the loop one signature each. */
static ct_err
audit_sign(void *arg, const uint8_t *dg, size_t dlen, uint8_t *sig,
	   size_t *siglen, char *why, size_t whylen)
{
	server *sv = arg;
	const ct_key *k = ct_keys_find(sv->ks, sv->pol->audit_key);
	const ct_keyver *kv = k != NULL ? ct_key_version(k, 0) : NULL;
	ct_keyref ref = { 0 };
	p11_session *s;
	ct_err r;

	if (kv == NULL) {
		snprintf(why, whylen, "the audit key has no version on the token");
		return CT_ERR_NO_SUCH_VERSION;
	}
	s = sv->sess[k->pol->token];
	r = p11_sign(s, kv->handle, P11_SIG_ECDSA, dg, dlen, sig, siglen);
	if (r == CT_ERR_HANDLE_STALE &&
	    (r = ct_keyref_set(&ref, k, kv)) == CT_OK &&
	    (r = p11_find(s, P11_OBJ_PRIVATE, ref.label, &ref.handle)) == CT_OK) {
		ct_keys_update_handle(sv->ks, &ref);
		r = p11_sign(s, ref.handle, P11_SIG_ECDSA, dg, dlen, sig, siglen);
	}
	ct_keyref_clear(&ref);
	if (r != CT_OK)
		snprintf(why, whylen, "%s", p11_session_last_error(s));
	return r;
}

/* The signer of checkpoints, or NULL when the policy names no audit key. */
static const ct_audit_signer *
audit_signer(server *sv, ct_audit_signer *sg)
{
	const ct_key *k;
	const ct_keyver *kv;

	if (sv->pol->audit_key == NULL)
		return NULL;
	k = ct_keys_find(sv->ks, sv->pol->audit_key);
	kv = k != NULL ? ct_key_version(k, 0) : NULL;
	*sg = (ct_audit_signer){ .key = sv->pol->audit_key,
	    .version = kv != NULL ? kv->version : 0,
	    .sha384 = k != NULL && k->pol->type == POL_KEY_EC_P384,
	    .sign = audit_sign, .arg = sv };
	return sg;
}

/* Append a checkpoint when checkpoint_lines lines or checkpoint_seconds
 * have gone by (or, forced, when any line has); the turn's commit covers
 * it with the lines it signs. */
static void
maybe_checkpoint(server *sv, bool force)
{
	ct_audit_signer sg;
	uint64_t seq = ct_audit_seq(sv->audit) + ct_audit_pending(sv->audit);
	ct_err r, sign_err;

	if (audit_signer(sv, &sg) == NULL || seq <= sv->cp_seq)
		return;
	if (!force && seq - sv->cp_seq < sv->pol->checkpoint_lines &&
	    sv->now.tv_sec - sv->cp_time < (time_t)sv->pol->checkpoint_seconds)
		return;
	/* Whether or not it signs, wait a full period before the next try. */
	sv->cp_seq = seq + 1;
	sv->cp_time = sv->now.tv_sec;
	if ((r = ct_audit_checkpoint(sv->audit, &sg, &sv->now, &sign_err)) != CT_OK)
		fprintf(stderr, "custodiand: audit checkpoint: %s\n", ct_strerror(r));
	else if (sign_err != CT_OK)
		fprintf(stderr, "custodiand: audit checkpoint not signed: %s\n",
		    ct_strerror(sign_err));
}

/* Milliseconds until a checkpoint is due by time; -1 when none is. */
static int
checkpoint_wait_ms(const server *sv)
{
	time_t left;

	if (sv->pol->audit_key == NULL ||
	    ct_audit_seq(sv->audit) + ct_audit_pending(sv->audit) <= sv->cp_seq)
		return -1;
	left = sv->cp_time + (time_t)sv->pol->checkpoint_seconds - sv->now.tv_sec;
	if (left <= 0)
		return 0;
	return left > (time_t)sv->pol->checkpoint_seconds ?
	    (int)sv->pol->checkpoint_seconds * 1000 : (int)left * 1000;
}

/* Rotate on SIGUSR1 or by size, between turns (no line pending).  A
 * failure is audited in the current file, which stays in use. */
static void
maybe_rotate(server *sv)
{
	char archived[4096];
	ct_audit_signer sg;
	json_t *ev;
	ct_err r;

	if (ct_audit_pending(sv->audit) != 0 || ct_audit_busy(sv->audit) ||
	    sv->stage_head != NULL || sv->flight != NULL)
		return; /* the next turns commit them first */
	if (!sv->rotate_asked && (sv->pol->audit_rotate_bytes == 0 ||
	    ct_audit_size(sv->audit) < sv->rotate_at))
		return;
	sv->rotate_asked = false;
	r = ct_audit_rotate(sv->audit, audit_signer(sv, &sg), &sv->now,
	    archived, sizeof(archived));
	if (r == CT_OK) {
		fprintf(stderr, "custodiand: audit log rotated, old file is %s\n",
		    archived);
		sv->rotate_at = sv->pol->audit_rotate_bytes;
		sv->cp_seq = ct_audit_seq(sv->audit);
		sv->cp_time = sv->now.tv_sec;
		return;
	}
	fprintf(stderr, "custodiand: audit log rotation failed: %s\n",
	    ct_strerror(r));
	/* By size, try again once the file has grown as much once more. */
	sv->rotate_at = ct_audit_size(sv->audit) + sv->pol->audit_rotate_bytes;
	ev = json_pack("{s:s, s:s}", "event", "rotate_failed", "result",
	    ct_err_code(r));
	if (audit_event(sv, ev) == CT_OK && audit_commit(sv) != CT_OK)
		fprintf(stderr, "custodiand: audit: rotate_failed not written\n");
}

static json_t *
readers_json(const ct_readers_snapshot *s)
{
	char atr[2 * CT_ATR_MAX + 1];
	json_t *arr = json_array(), *r;
	size_t i;

	for (i = 0; arr != NULL && i < s->n; i++) {
		r = json_pack("{s:b}", "card", s->readers[i].card);
		event_set_str(r, "name", s->readers[i].name);
		if (s->readers[i].card) {
			ct_hex(s->readers[i].atr, s->readers[i].atr_len, atr);
			event_set_str(r, "atr", atr);
		}
		json_array_append_new(arr, r);
	}
	return arr;
}

/* A token bound to a reader serves only while its card is there, and so
 * only while pcscd can say that it is. */
static bool
token_card_in(const server *sv, const pol_token *t)
{
	return t->reader == NULL ||
	    ct_readers_card_in(&sv->rsnap, t->reader, t->atr, t->atr_len);
}

static void
token_reader_json(const server *sv, const pol_token *t, json_t *tj)
{
	if (t->reader == NULL)
		return;
	event_set_str(tj, "reader", t->reader);
	json_object_set_new(tj, "present", json_boolean(token_card_in(sv, t)));
}

/* Decided here, before a worker touches the token: refuse at once rather
 * than wait on a card that is gone. */
static ct_err
check_card(const server *sv, ct_job *job)
{
	const pol_token *t = &sv->pol->tokens[job->token];

	if (token_card_in(sv, t))
		return CT_OK;
	snprintf(job->msg, sizeof(job->msg), "token \"%s\": %s \"%s\"", t->name,
	    sv->rsnap.pcscd != CT_PCSCD_AVAILABLE ?
	    "pcscd is not available to watch reader" :
	    ct_readers_card_in(&sv->rsnap, t->reader, NULL, 0) ?
	    "the card has another ATR in reader" : "no card in reader",
	    t->reader);
	return CT_ERR_TOKEN_ABSENT;
}

/* Stage an error reply and audit the refusal. */
static void
refuse(server *sv, conn *c, const ct_request *req, const ct_keyref *key,
       ct_err e, const char *msg)
{
	(void)audit_request(sv, &c->peer, req, key, e, msg);
	reply_error(sv, c, req, e, msg);
}

/* A limit episode ended (ct_limit.h): one line sums up what it refused. */
static void
audit_limit_end(server *sv, const ct_limit_entry *e, const ct_limit_counts *n)
{
	if (n->requests == 0 && n->connections == 0)
		return;
	(void)audit_event(sv, json_pack("{s:s, s:s, s:I, s:I}", "event",
	    "limit_end", "identity", ct_limit_identity(e), "refused_requests",
	    (json_int_t)n->requests, "refused_connections",
	    (json_int_t)n->connections));
}

/* Rate limit and garbage count, before anything else is done for the
 * line.  Returns true when the request was answered here. */
static bool
limited(server *sv, conn *c, ct_request *req, ct_err decoded)
{
	const pol_limits *l = ct_limit_limits(c->lim);
	ct_limit_counts ended;
	ct_limit_verdict v;
	char msg[160];

	/* A stream of garbage is cut off, whatever else happens to it. */
	c->bad = decoded == CT_OK ? 0 : c->bad + 1;
	if (c->bad >= sv->pol->max_bad_requests)
		c->closing = true;
	v = ct_limit_request(c->lim, sv->mono, &ended);
	audit_limit_end(sv, c->lim, &ended);
	if (v == CT_LIMIT_ADMIT)
		return false;
	snprintf(msg, sizeof(msg), "over %u requests/s (burst %u) for %s",
	    l->rate, l->burst, ct_limit_identity(c->lim));
	/* Only the first refusal of an episode is a line; the rest are
	 * counted into its limit_end line. */
	if (v == CT_LIMIT_REFUSE_FIRST)
		refuse(sv, c, req, NULL, CT_ERR_RATE_LIMITED, msg);
	else
		reply_error(sv, c, req, CT_ERR_RATE_LIMITED, msg);
	ct_request_clear(req);
	return true;
}

static json_t *
status_result(server *sv)
{
	char digest[65];
	json_t *toks = json_array(), *t;
	size_t i;

	ct_hex(sv->pol->digest, sizeof(sv->pol->digest), digest);
	for (i = 0; toks != NULL && i < sv->n_tokens; i++) {
		t = json_pack("{s:s, s:s}", "name", sv->pol->tokens[i].name,
		    "label", p11_token_label(sv->tokens[i]));
		token_reader_json(sv, &sv->pol->tokens[i], t);
		json_array_append_new(toks, t);
	}
	return json_pack("{s:s, s:i, s:I, s:s, s:o*, s:I, s:I, s:I, s:I, s:I, "
	    "s:o*, s:s, s:o*}",
	    "service", "custodiand", "protocol", CT_PROTO_VERSION,
	    "uptime_seconds", (json_int_t)(sv->now.tv_sec - sv->started),
	    "policy_digest", digest, "tokens", toks,
	    "keys", (json_int_t)sv->pol->n_keys,
	    "workers", (json_int_t)sv->pol->workers,
	    "connections", (json_int_t)sv->n_conns,
	    "requests", (json_int_t)sv->requests,
	    "audit_seq", (json_int_t)ct_audit_seq(sv->audit),
	    "governance", ct_gov_status(sv->gov, sv->pol, sv->now.tv_sec),
	    "pcscd", ct_readers_pcscd_name(sv->rsnap.pcscd),
	    "readers", readers_json(&sv->rsnap));
}

/* Load the key store for pol and match it with the governance state;
 * work a crash interrupted is handed back in work.  With admit, pol is
 * also recorded as the policy in force once its keys loaded. */
static ct_err
load_keys(server *sv, const pol_policy *pol, bool admit, ct_keystore **ks,
	  ct_gov_work *work, size_t *n_work, char *err, size_t errlen)
{
	ct_err r;

	*n_work = 0;
	if ((r = ct_keys_load(pol, sv->sess, ks, err, errlen)) != CT_OK)
		return r;
	if ((admit && (r = ct_gov_admit_policy(sv->gov, pol, err, errlen)) !=
	    CT_OK) || (r = ct_gov_reconcile(sv->gov, pol, *ks, sv->now.tv_sec, work,
	    n_work)) != CT_OK) {
		if (r != CT_ERR_POLICY)
			snprintf(err, errlen, "governance state: %s", ct_strerror(r));
		ct_keys_free(*ks);
		*ks = NULL;
	}
	return r;
}

/* Governance events are audit lines, synced at once: the journal already
 * holds the change, and a crash must not leave it unaudited. */
static void
gov_emit(void *arg, json_t *ev)
{
	server *sv = arg;

	if (audit_event(sv, ev) != CT_OK || audit_commit(sv) != CT_OK)
		fprintf(stderr, "custodiand: audit: governance event not written\n");
}

/* Tell governance how token work ended; it records it in the journal. */
static ct_err
report_work(server *sv, const ct_gov_work *w, ct_err result)
{
	ct_err r = ct_gov_finish(sv->gov, w, result, sv->now.tv_sec);

	if (r != CT_OK)
		fprintf(stderr, "custodiand: governance: recording %s of %s/v%u "
		    "failed: %s\n", ct_action_name(w->action),
		    w->key, w->version, ct_strerror(r));
	return r;
}

static void rescan(server *sv);

/* A version's state as a backup file records it. */
static ct_backup_vstate
backup_state(void *arg, const char *key, uint32_t version)
{
	server *sv = arg;
	const ct_key *k = ct_keys_find(sv->ks, key);
	const ct_keyver *cur = k != NULL ? ct_key_version(k, 0) : NULL;
	const ct_state *st = ct_gov_state(sv->gov);
	size_t i;

	for (i = 0; i < st->n_vers; i++) {
		if (st->vers[i].version != version || strcmp(st->vers[i].key, key) != 0)
			continue;
		if (st->vers[i].state == CT_VS_REVOKED)
			return CT_VSTATE_REVOKED;
		if (st->vers[i].state == CT_VS_DESTROYED)
			return CT_VSTATE_DESTROYED;
		return cur != NULL && cur->version == version ? CT_VSTATE_ACTIVE :
		    CT_VSTATE_RETIRED;
	}
	return CT_VSTATE_UNKNOWN;
}

static char *
pem_of(EVP_PKEY *pub)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (b != NULL && PEM_write_bio_PUBKEY(b, pub) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0)
		pem = strndup(data, (size_t)n);
	BIO_free(b);
	return pem;
}

/* Backup and restore run on the main thread: they read the key store,
 * which only the main thread touches, and they are rare.  The file is
 * signed by the audit key, and only backups this service made (their
 * digest and signer are in the journal) are restored. */
static ct_err
file_work(server *sv, ct_gov_work *w, char *msg, size_t ml)
{
	const pol_key *pk = pol_find_key(sv->pol, sv->pol->audit_key);
	const ct_key *k = ct_keys_find(sv->ks, sv->pol->audit_key);
	const ct_keyver *kv = k != NULL ? ct_key_version(k, 0) : NULL;
	ct_backup_signer signer;
	ct_restored *out = NULL;
	uint8_t digest[32];
	EVP_PKEY *pub = NULL;
	char *pem = NULL;
	BIO *b = NULL;
	size_t n = 0;
	ct_err r;

	if (pk == NULL) {
		snprintf(msg, ml, "no audit key in the policy");
		return CT_ERR_POLICY;
	}
	if (w->action == CT_ACT_BACKUP) {
		if (kv == NULL) {
			snprintf(msg, ml, "the audit key has no usable version");
			return CT_ERR_NO_SUCH_VERSION;
		}
		/* Checked when the request opened; someone may have put a
		 * file there since, and a backup replaces nothing. */
		if (access(w->path, F_OK) == 0) {
			snprintf(msg, ml, "%s exists", w->path);
			return CT_ERR_EXISTS;
		}
		signer.key = kv->handle;
		signer.sign = pk->sign;
		r = ct_backup_create(sv->sess[pk->token], sv->pol, pk->token,
		    sv->ks, backup_state, sv, &signer, w->path, &n, msg, ml);
		if (r == CT_OK)
			r = ct_file_sha256(w->path, w->digest, msg, ml);
		if (r == CT_OK && (w->signer_pem = pem_of(kv->pub)) == NULL)
			r = CT_ERR_NOMEM;
		return r;
	}
	if ((r = ct_file_sha256(w->path, digest, msg, ml)) != CT_OK)
		return r;
	if (memcmp(digest, w->digest, sizeof(digest)) != 0) {
		snprintf(msg, ml, "%s changed since the restore was approved",
		    w->path);
		return CT_ERR_BAD_BACKUP;
	}
	r = CT_ERR_BAD_BACKUP;
	if ((pem = ct_gov_backup_signer(sv->gov, w->digest)) == NULL ||
	    (b = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) == NULL)
		snprintf(msg, ml, "no signer recorded for this backup");
	else
		/* The quorum approved this very file, made under some earlier
		 * policy: versions must still fit today's keys. */
		r = ct_backup_restore(sv->sess[pk->token], sv->pol, pk->token,
		    w->path, pub, backup_state, sv, CT_RESTORE_ANY_POLICY, &out,
		    &n, msg, ml);
	free(out);
	EVP_PKEY_free(pub);
	BIO_free(b);
	free(pem);
	return r;
}

/* Run file work now, record it, and pick up restored versions. */
static ct_err
run_file_work(server *sv, ct_gov_work *w, char *msg, size_t ml)
{
	ct_err r = file_work(sv, w, msg, ml), rr;

	rr = report_work(sv, w, r);
	free(w->signer_pem);
	w->signer_pem = NULL;
	if (r == CT_OK && w->action == CT_ACT_RESTORE)
		rescan(sv);
	return r != CT_OK ? r : rr;
}

static void
submit_work(server *sv, const ct_gov_work *work, size_t n)
{
	ct_gov_work w;
	char msg[256];
	ct_job *job;
	size_t i;
	ct_err r;

	for (i = 0; i < n; i++) {
		if (work[i].action == CT_ACT_BACKUP || work[i].action == CT_ACT_RESTORE) {
			w = work[i];
			if (run_file_work(sv, &w, msg, sizeof(msg)) != CT_OK)
				fprintf(stderr, "custodiand: %s: %s\n",
				    ct_action_name(w.action), msg);
			continue;
		}
		if ((r = ct_job_new_work(sv->pol, &work[i], &job)) == CT_OK)
			ct_pool_submit(sv->pool, job);
		else
			report_work(sv, &work[i], r);
	}
}

/* What the state allows of each version, on the key store as it is. */
static void
reapply(server *sv)
{
	ct_gov_work work[CT_GOV_WORK_MAX];
	size_t n;

	if (ct_gov_reconcile(sv->gov, sv->pol, sv->ks, sv->now.tv_sec, work,
	    &n) != CT_OK)
		fprintf(stderr, "custodiand: governance: state not applied\n");
	else
		submit_work(sv, work, n);
}

/* The key store after versions changed on a token. */
static void
rescan(server *sv)
{
	ct_gov_work work[CT_GOV_WORK_MAX];
	ct_keystore *nks = NULL;
	char err[512];
	size_t n;

	if (load_keys(sv, sv->pol, false, &nks, work, &n, err, sizeof(err)) != CT_OK) {
		/* The old store stays; the change is in the state and the
		 * next reload or restart picks it up. */
		fprintf(stderr, "custodiand: key rescan: %s\n", err);
		(void)audit_event(sv, json_pack("{s:s, s:s}", "event",
		    "rescan_failed", "detail", err));
		return;
	}
	ct_keys_free(sv->ks);
	sv->ks = nks;
	submit_work(sv, work, n);
}

/* Token work of governance finished: record it, and reply with the
 * request as it stands now. */
static void
work_done(server *sv, ct_job *job)
{
	ct_err r = report_work(sv, &job->work, job->err);

	if (r == CT_OK && job->err == CT_OK)
		rescan(sv);
	if (job->req.spec == NULL || job->work.id[0] == '\0')
		return;
	json_decref(job->result);
	job->result = ct_gov_show(sv->gov, sv->pol, job->work.id, sv->now.tv_sec);
	if (job->err == CT_OK && (r != CT_OK || job->result == NULL))
		job->err = r != CT_OK ? r : CT_ERR_NOMEM;
}

/* Reply to a job that finished (on a worker or inline). */
static void
finish(server *sv, ct_job *job)
{
	conn *c = conn_get(sv, job->conn_id);
	char *reply = NULL;
	size_t len = 0;
	ct_err r;

	if (job->refound) {
		ct_keys_update_handle(sv->ks, &job->key);
		ct_keys_update_handle(sv->ks, &job->target);
	}
	if (job->has_work)
		work_done(sv, job);
	if (job->err == CT_ERR_NOT_AUTHORIZED || job->err == CT_ERR_APPROVAL)
		ct_gov_note_refusal(sv->gov, sv->pol, sv->now.tv_sec);
	if (job->req.spec == NULL)
		return; /* housekeeping: its governance events are the record */
	if (c != NULL && c->job == job)
		c->job = NULL;
	/* What the token did is recorded even when nobody waits for it. */
	r = audit_request_as(sv, &job->peer, &job->req,
	    job->target.name[0] ? &job->target : &job->key, job->err, job->msg,
	    job->late);
	if (c == NULL || job->late)
		return; /* the client left, or was answered token_timeout */
	if (r != CT_OK && job->err == CT_OK) {
		/* No line, no result: fail closed. */
		job->err = CT_ERR_AUDIT;
		job->msg[0] = '\0';
	}
	r = job->err == CT_OK ? ct_reply_ok(job->req.id, job->result, &reply, &len) :
	    ct_reply_error(job->req.id, job->err, job->msg, &reply, &len);
	if (r != CT_OK) {
		c->closing = true;
		c->busy = false;
		return;
	}
	stage(sv, c->id, job->req.id, reply, len);
}

/* A governance request from the wire into a statement's fields. */
static ct_err
gov_request(server *sv, ct_job *job)
{
	const ct_request *req = &job->req;
	ct_stmt s;

	memset(&s, 0, sizeof(s));
	if ((s.action = ct_action_from_name(req->action)) == 0) {
		snprintf(job->msg, sizeof(job->msg), "unknown action \"%s\"",
		    req->action);
		return CT_ERR_BAD_REQUEST;
	}
	if ((req->fields & CT_F_DIGEST) && req->digest_len != sizeof(s.digest)) {
		snprintf(job->msg, sizeof(job->msg), "\"digest\" must be "
		    "32 bytes (SHA-256)");
		return CT_ERR_BAD_REQUEST;
	}
	snprintf(s.key, sizeof(s.key), "%s", req->key);
	s.version = req->version;
	if (req->fields & CT_F_FILE) {
		if (req->file[0] != '/' || req->file_len >= sizeof(s.path)) {
			snprintf(job->msg, sizeof(job->msg), "\"file\" must be an "
			    "absolute path of at most %zu bytes", sizeof(s.path) - 1);
			return CT_ERR_BAD_REQUEST;
		}
		memcpy(s.path, req->file, req->file_len + 1);
	}
	/* A backup never replaces a file: an officer picks a new name. */
	if (s.action == CT_ACT_BACKUP && s.path[0] != '\0' &&
	    access(s.path, F_OK) == 0) {
		snprintf(job->msg, sizeof(job->msg), "%s exists", s.path);
		return CT_ERR_EXISTS;
	}
	if ((s.has_digest = (req->fields & CT_F_DIGEST) != 0))
		memcpy(s.digest, req->digest, sizeof(s.digest));
	/* What the action names must be given, and nothing else. */
	if ((ct_action_needs(s.action) & CT_NEEDS_KEY) && s.key[0] == '\0') {
		snprintf(job->msg, sizeof(job->msg), "%s needs \"key\"",
		    req->action);
		return CT_ERR_BAD_REQUEST;
	}
	if ((s.action == CT_ACT_REVOKE) != (s.version != 0) ||
	    ((ct_action_needs(s.action) & CT_NEEDS_DIGEST) != 0) != s.has_digest ||
	    ((ct_action_needs(s.action) & CT_NEEDS_PATH) != 0) != (s.path[0] != '\0') ||
	    (s.key[0] != '\0' && !(ct_action_needs(s.action) &
	    (CT_NEEDS_KEY | CT_MAY_KEY)))) {
		snprintf(job->msg, sizeof(job->msg), "%s takes %s", req->action,
		    s.action == CT_ACT_REVOKE ? "\"key\" and \"version\"" :
		    s.action == CT_ACT_POLICY ? "\"digest\" only" :
		    s.action == CT_ACT_BACKUP ? "\"file\" only" :
		    s.action == CT_ACT_RESTORE ? "\"file\" and \"digest\"" :
		    s.action == CT_ACT_ROTATE ? "\"key\" only" : "\"key\" or nothing");
		return CT_ERR_BAD_REQUEST;
	}
	return ct_gov_request(sv->gov, sv->pol, job->peer.uid, &s,
	    sv->now.tv_sec, &job->result, job->msg, sizeof(job->msg));
}

/* Returns true when the job went on to a worker. */
static bool
gov_approve(server *sv, ct_job *job)
{
	const ct_request *req = &job->req;
	ct_gov_work work;
	bool has_work, approve = strcmp(req->decision, "approve") == 0;

	if (!approve && strcmp(req->decision, "deny") != 0) {
		job->err = CT_ERR_BAD_REQUEST;
		snprintf(job->msg, sizeof(job->msg), "\"decision\" must be "
		    "\"approve\" or \"deny\"");
		return false;
	}
	job->err = ct_gov_approve(sv->gov, sv->pol, req->request, req->custodian,
	    approve, req->sig, req->sig_len, sv->now.tv_sec, &job->result,
	    &work, &has_work, job->msg, sizeof(job->msg));
	if (job->err != CT_OK)
		return false;
	if (!has_work) {
		/* A revocation or freeze takes effect now, not at the next scan. */
		reapply(sv);
		return false;
	}
	if (work.action == CT_ACT_BACKUP || work.action == CT_ACT_RESTORE) {
		if ((job->err = run_file_work(sv, &work, job->msg,
		    sizeof(job->msg))) == CT_OK) {
			json_decref(job->result);
			if ((job->result = ct_gov_show(sv->gov, sv->pol, work.id,
			    sv->now.tv_sec)) == NULL)
				job->err = CT_ERR_NOMEM;
		}
		return false;
	}
	if ((job->err = ct_ops_set_work(sv->pol, &work, job)) != CT_OK) {
		report_work(sv, &work, job->err);
		return false;
	}
	ct_pool_submit(sv->pool, job);
	return true;
}

static void
run_inline(server *sv, ct_job *job)
{
	int64_t now = sv->now.tv_sec;

	job->err = CT_OK;
	switch (job->cmd->op) {
	case CT_OP_STATUS:
		job->result = status_result(sv);
		break;
	case CT_OP_LIST_KEYS:
		job->result = ct_ops_list_keys(sv->pol, sv->ks, &job->peer,
		    sv->now.tv_sec);
		break;
	case CT_OP_GOV_REQUEST:
		job->err = gov_request(sv, job);
		break;
	case CT_OP_GOV_SHOW:
		if ((job->result = ct_gov_show(sv->gov, sv->pol, job->req.request,
		    now)) == NULL) {
			job->err = CT_ERR_NO_SUCH_REQUEST;
			snprintf(job->msg, sizeof(job->msg), "no request \"%s\"",
			    job->req.request);
		}
		break;
	case CT_OP_GOV_LIST:
		job->result = ct_gov_list(sv->gov, sv->pol, now);
		break;
	case CT_OP_GOV_APPROVE:
		if (gov_approve(sv, job))
			return;
		break;
	case CT_OP_DUE:
		job->result = ct_gov_due(sv->gov, sv->pol, now);
		break;
	default:
		job->err = CT_ERR_INTERNAL;
	}
	if (job->err == CT_OK && job->result == NULL)
		job->err = CT_ERR_NOMEM;
	finish(sv, job);
	ct_job_free(job);
}

static void
handle_line(server *sv, conn *c, const char *line, size_t len)
{
	char msg[256];
	ct_request req;
	ct_job *job;
	ct_err r;

	sv->requests++;
	r = ct_request_decode(line, len, &req, msg, sizeof(msg));
	if (limited(sv, c, &req, r))
		return;
	if (r != CT_OK) {
		refuse(sv, c, &req, NULL, r, msg);
		return;
	}
	if (sv->stopping) {
		refuse(sv, c, &req, NULL, CT_ERR_SHUTTING_DOWN, NULL);
		ct_request_clear(&req);
		return;
	}
	if ((job = ct_job_new(c->id, &c->peer, &req)) == NULL) {
		refuse(sv, c, &req, NULL, CT_ERR_NOMEM, NULL);
		ct_request_clear(&req);
		return;
	}
	c->busy = true;
	/* The policy never reads the clock: expiry is judged at this turn's
	 * time, the same one the audit line carries. */
	if ((r = ct_ops_prepare(sv->pol, sv->ks, job, sv->now.tv_sec)) == CT_OK &&
	    (job->cmd->right & FROZEN_OPS) &&
	    ct_state_frozen(ct_gov_state(sv->gov), job->key.name)) {
		r = CT_ERR_FROZEN;
		snprintf(job->msg, sizeof(job->msg), "%s is frozen: lifting it "
		    "needs the unfreeze quorum", ct_gov_state(sv->gov)->frozen_all ?
		    "the service" : "this key");
	}
	if (r == CT_OK && job->cmd->token)
		r = check_card(sv, job);
	if (r != CT_OK) {
		job->err = r;
		finish(sv, job);
		ct_job_free(job);
	} else if (job->cmd->token) {
		c->job = job;
		c->deadline = sv->mono + sv->pol->token_timeout * 1000000000u;
		ct_pool_submit(sv->pool, job);
	} else
		run_inline(sv, job);
}

/* Handle complete lines while the connection has no request running and
 * no reply waiting to be sent: a client that does not read its replies
 * gets no more served (backpressure instead of unbounded buffers). */
static void
process_lines(server *sv, conn *c)
{
	ct_request none;
	char *nl;
	size_t len;

	while (!c->busy && !c->closing && c->wlen == 0 && c->rlen > 0) {
		nl = memchr(c->rbuf, '\n', c->rlen);
		len = nl != NULL ? (size_t)(nl - c->rbuf) : c->rlen;
		if (len > CT_LINE_MAX) {
			/* The stream is out of step: answer, then hang up. */
			memset(&none, 0, sizeof(none));
			refuse(sv, c, &none, NULL, CT_ERR_TOO_LARGE,
			    "request longer than 65536 bytes");
			c->closing = true;
			return;
		}
		if (nl == NULL)
			break;
		handle_line(sv, c, c->rbuf, len);
		memmove(c->rbuf, c->rbuf + len + 1, c->rlen - len - 1);
		OPENSSL_cleanse(c->rbuf + c->rlen - len - 1, len + 1);
		c->rlen -= len + 1;
	}
	/* Answer every complete line the peer sent before it hung up. */
	if (c->eof && !c->busy && c->wlen == 0 &&
	    (c->rlen == 0 || memchr(c->rbuf, '\n', c->rlen) == NULL))
		c->closing = true;
}

static void
conn_close(server *sv, conn *c)
{
	if (c->events != 0)
		epoll_ctl(sv->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	ct_limit_disconnect(c->lim);
	sv->conns[c->fd] = NULL;
	sv->n_conns--;
	ct_free_secret(c->rbuf, c->rcap);
	ct_free_secret(c->wbuf, c->wlen);
	free(c);
}

/* rbuf holds as much as a connection may have unanswered. */
#define RBUF_MAX (CT_LINE_MAX + 1 + READ_CHUNK)

static bool
conn_full(const conn *c)
{
	return c->rlen == c->rcap && c->rcap >= RBUF_MAX;
}

static void
conn_read(server *sv, conn *c)
{
	char *nb;
	size_t room;
	ssize_t n;

	for (;;) {
		if (c->rcap - c->rlen < READ_CHUNK && c->rcap < RBUF_MAX) {
			/* Grow and wipe: realloc would leave plaintext behind. */
			size_t ncap = c->rcap ? c->rcap * 2 : READ_CHUNK;
			if ((nb = malloc(ncap)) == NULL) {
				c->closing = true;
				return;
			}
			if (c->rlen > 0)
				memcpy(nb, c->rbuf, c->rlen);
			ct_free_secret(c->rbuf, c->rcap);
			c->rbuf = nb;
			c->rcap = ncap;
		}
		if (c->rcap == c->rlen)
			break; /* full: the line check below answers it */
		room = c->rcap - c->rlen;
		n = read(c->fd, c->rbuf + c->rlen, room);
		if (n > 0) {
			c->rlen += (size_t)n;
			/* Short: nothing more for now, and epoll says if more
			 * comes; saves the read that would say EAGAIN. */
			if ((size_t)n < room)
				break;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			c->eof = true;
		break;
	}
	process_lines(sv, c);
	if (c->rlen == 0 && c->rbuf != NULL) {
		/* Idle connections hold no buffer (1,000 of them must be cheap). */
		ct_free_secret(c->rbuf, c->rcap);
		c->rbuf = NULL;
		c->rcap = 0;
	}
}

static void
conn_flush(conn *c)
{
	ssize_t n;

	while (c->woff < c->wlen) {
		n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n > 0) {
			c->woff += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->closing = true;
		c->woff = c->wlen; /* peer is gone: discard */
	}
	ct_free_secret(c->wbuf, c->wlen);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
}

/* Watch what the connection needs now; close it when it is done.  A
 * connection that waits for nothing is not in the epoll set at all: a
 * hung-up socket is reported even with an empty event mask. */
static void
conn_update(server *sv, conn *c)
{
	struct epoll_event ev = { 0 };

	if (c->closing && !c->busy && c->wlen == 0) {
		conn_close(sv, c);
		return;
	}
	/* Reading on while a request is in flight costs nothing (the lines
	 * wait in rbuf) and spares two epoll_ctl calls a request; only a full
	 * buffer stops it. */
	ev.events = (c->closing || c->eof || conn_full(c) ? 0 : EPOLLIN) |
	    (c->wlen > 0 ? EPOLLOUT : 0);
	ev.data.u64 = c->id;
	if (ev.events == c->events)
		return;
	if (ev.events == 0)
		epoll_ctl(sv->ep, EPOLL_CTL_DEL, c->fd, NULL);
	else if (epoll_ctl(sv->ep, c->events == 0 ? EPOLL_CTL_ADD :
	    EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		c->closing = true; /* cannot watch it: drop it */
		ev.events = 0;
	}
	c->events = ev.events;
}

/* The peer's identity may open one more connection: else it is closed at
 * once, and the first refusal of an episode is audited. */
static ct_limit_entry *
admit_conn(server *sv, const ct_peer *peer)
{
	ct_limit_entry *e = ct_limiter_peer(sv->lim, sv->pol, peer->uid,
	    peer->gid, sv->now.tv_sec);
	ct_limit_counts ended;
	ct_limit_verdict v;
	char detail[96];
	json_t *ev;

	if (e == NULL)
		return NULL; /* too many identities: none more is tracked */
	v = ct_limit_connect(e, sv->mono, &ended);
	audit_limit_end(sv, e, &ended);
	if (v == CT_LIMIT_ADMIT)
		return e;
	if (v == CT_LIMIT_REFUSE_FIRST) {
		snprintf(detail, sizeof(detail), "%u connections open (limit %u)",
		    ct_limit_connections(e), ct_limit_limits(e)->connections);
		ev = json_pack("{s:s, s:o, s:s, s:s}", "event", "connection",
		    "peer", peer_json(peer), "identity", ct_limit_identity(e),
		    "result", "refused");
		event_set_str(ev, "detail", detail);
		(void)audit_event(sv, ev);
	}
	return NULL;
}

static void
conn_accept(server *sv)
{
	struct epoll_event ev = { 0 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	ct_limit_entry *lim;
	conn *c;
	int fd;

	while ((fd = accept4(sv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		if (fd >= MAX_CONNS || sv->stopping ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1 ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->peer.pid = cred.pid;
		c->peer.uid = cred.uid;
		c->peer.gid = cred.gid;
		if ((lim = admit_conn(sv, &c->peer)) == NULL) {
			close(fd);
			free(c);
			continue;
		}
		c->fd = fd;
		c->id = (++sv->next_id << 24) | (uint64_t)fd;
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.u64 = c->id;
		if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			ct_limit_disconnect(lim);
			close(fd);
			free(c);
			continue;
		}
		c->lim = lim;
		sv->conns[fd] = c;
		sv->n_conns++;
	}
}

/* The commit covering these replies' lines is done. */
static void
settle(staged *list, bool durable)
{
	for (; list != NULL; list = list->next)
		if (list->verdict == V_WAIT)
			list->verdict = durable ? V_DURABLE : V_LOST;
}

/* Send each reply whose line is durable; refuse the others (fail closed:
 * what is not in the log did not happen).  Replies staged meanwhile, by
 * the requests this lets through, wait for a later commit. */
static void
release(server *sv, staged *list)
{
	staged *s, *next;
	char *err;
	size_t elen;
	conn *c;

	for (s = list; s != NULL; s = next) {
		next = s->next;
		if (s->verdict != V_DURABLE) {
			ct_free_secret(s->reply, s->len);
			s->reply = NULL;
			if (ct_reply_error(s->id, CT_ERR_AUDIT, NULL, &err, &elen) == CT_OK)
				s->reply = err, s->len = elen;
		}
		if ((c = conn_get(sv, s->conn_id)) != NULL) {
			c->busy = false;
			if (s->reply != NULL && c->wbuf == NULL) {
				c->wbuf = s->reply, c->wlen = s->len, c->woff = 0;
				s->reply = NULL;
			} else
				c->closing = true;
			conn_flush(c);
			process_lines(sv, c);
			conn_update(sv, c);
		}
		ct_free_secret(s->reply, s->len);
		free(s);
	}
}

static staged *
take_staged(server *sv)
{
	staged *list = sv->stage_head;

	sv->stage_head = NULL;
	sv->stage_tail = &sv->stage_head;
	return list;
}

/* Settle the batch on the audit writer once it is done (wait: block until
 * then).  A failed batch takes the pending lines chained on it along. */
static void
collect(server *sv, bool wait)
{
	ct_err r;

	if (!ct_audit_collect(sv->audit, wait, &r))
		return;
	if (r != CT_OK) {
		fprintf(stderr, "custodiand: audit commit failed: refusing "
		    "the operations it covered\n");
		settle(sv->stage_head, false);
	}
	settle(sv->flight, r == CT_OK);
}

/* Commit now, on this thread: for lines that must be on disk before the
 * daemon goes on (governance, start, stop). */
static ct_err
audit_commit(server *sv)
{
	ct_err r;

	collect(sv, true);
	r = ct_audit_commit(sv->audit);
	settle(sv->stage_head, r == CT_OK);
	return r;
}

/*
 * Group commit: while the writer syncs one batch, the turns go on and
 * their lines gather for the next.  Once it is done its replies go out,
 * and what gathered meanwhile goes to the writer as the next batch.
 */
static void
deliver(server *sv)
{
	staged *list;

	collect(sv, false);
	if (ct_audit_busy(sv->audit))
		return;
	list = sv->flight;
	sv->flight = NULL;
	release(sv, list);
	if (ct_audit_pending(sv->audit) > 0 &&
	    ct_audit_flush(sv->audit) == CT_OK) {
		sv->flight = take_staged(sv);
		return;
	}
	/* Nothing pending: their lines are durable already, or they have
	 * none.  Else the log is broken and nothing more is committed. */
	settle(sv->stage_head, ct_audit_pending(sv->audit) == 0);
	release(sv, take_staged(sv));
}

static void
free_staged(staged *list)
{
	staged *s, *next;

	for (s = list; s != NULL; s = next) {
		next = s->next;
		ct_free_secret(s->reply, s->len);
		free(s);
	}
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A reload may change clients, keys, rights and limits; tokens and the
 * rest of the service section are fixed for the process's life. */
static bool
reloadable(const pol_policy *old, const pol_policy *new, char *why, size_t wl)
{
	size_t i;

	if (old->n_tokens != new->n_tokens)
		goto tokens;
	for (i = 0; i < old->n_tokens; i++) {
		const pol_token *a = &old->tokens[i], *b = &new->tokens[i];
		if (!same_str(a->name, b->name) || !same_str(a->module, b->module) ||
		    !same_str(a->label, b->label) || !same_str(a->uri, b->uri) ||
		    !same_str(a->pin_file, b->pin_file) || !same_str(a->pin_env, b->pin_env))
			goto tokens;
	}
	if (!same_str(old->socket, new->socket) ||
	    !same_str(old->audit_log, new->audit_log) ||
	    !same_str(old->state, new->state) || old->workers != new->workers ||
	    !same_str(old->audit_key, new->audit_key) ||
	    old->checkpoint_lines != new->checkpoint_lines ||
	    old->checkpoint_seconds != new->checkpoint_seconds ||
	    old->audit_rotate_bytes != new->audit_rotate_bytes ||
	    !same_str(old->run_user, new->run_user) ||
	    old->has_run_group != new->has_run_group ||
	    old->run_gid != new->run_gid || old->allow_root != new->allow_root) {
		snprintf(why, wl, "the service section changed: restart needed");
		return false;
	}
	return true;
 tokens:
	snprintf(why, wl, "the tokens changed: restart needed");
	return false;
}

static void
reload(server *sv)
{
	char err[512] = "", digest[65];
	pol_policy *np = NULL;
	ct_keystore *nks = NULL;
	json_t *ev;
	ct_err r;

	ct_gov_work work[CT_GOV_WORK_MAX];
	size_t n_work = 0;

	if ((r = ct_perm_check("policy file", sv->opts->policy_path,
	    CT_PERM_FILE | CT_PERM_OWNER, sv->self, err, sizeof(err))) == CT_OK &&
	    (r = pol_load_file(sv->opts->policy_path, &np, err, sizeof(err))) == CT_OK &&
	    !reloadable(sv->pol, np, err, sizeof(err)))
		r = CT_ERR_POLICY;
	/* Editing the file grants nothing: the quorum of the policy in force
	 * must have approved the new one's digest. */
	if (r == CT_OK)
		r = ct_gov_check_policy(sv->gov, np, NULL, err, sizeof(err));
	if (r == CT_OK)
		r = load_keys(sv, np, true, &nks, work, &n_work, err, sizeof(err));
	ev = json_pack("{s:s, s:s}", "event", "reload", "result",
	    r == CT_OK ? "ok" : ct_err_code(r));
	if (r == CT_OK) {
		ct_keys_free(sv->ks);
		pol_free(sv->pol);
		sv->ks = nks;
		sv->pol = np;
		np = NULL;
		ct_limiter_reload(sv->lim, sv->pol);
		ct_hex(sv->pol->digest, sizeof(sv->pol->digest), digest);
		event_set_str(ev, "policy_digest", digest);
		fprintf(stderr, "custodiand: policy reloaded\n");
		submit_work(sv, work, n_work);
	} else {
		event_set_str(ev, "detail", err);
		fprintf(stderr, "custodiand: reload refused, old policy kept: %s\n", err);
	}
	(void)audit_event(sv, ev);
	pol_free(np);
}

static ct_err
listen_on(server *sv, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "custodiand: socket path too long: %s\n", path);
		return CT_ERR_POLICY;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "custodiand: %s exists and is not a socket\n", path);
			return CT_ERR_IO;
		}
		/* Remove only a stale socket: one that nobody answers on. */
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			return CT_ERR_IO;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			fprintf(stderr, "custodiand: another daemon listens on %s\n", path);
			return CT_ERR_IO;
		}
		close(fd);
		if (unlink(path) == -1) {
			fprintf(stderr, "custodiand: %s: %s\n", path, strerror(errno));
			return CT_ERR_IO;
		}
	}
	if ((sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return CT_ERR_IO;
	old = umask(0117); /* no window in which the socket is wider than 0660 */
	if (bind(sv->lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		umask(old);
		fprintf(stderr, "custodiand: bind %s: %s\n", path, strerror(errno));
		return CT_ERR_IO;
	}
	umask(old);
	if (chmod(path, 0660) == -1 || listen(sv->lfd, 512) == -1) {
		fprintf(stderr, "custodiand: %s: %s\n", path, strerror(errno));
		return CT_ERR_IO;
	}
	if ((sv->sock_path = strdup(path)) == NULL)
		return CT_ERR_NOMEM;
	return CT_OK;
}

/* The governance journal: from the command line, the policy, or beside
 * the audit log. */
static ct_err
state_path(server *sv, const char *alog)
{
	const char *p = sv->opts->state_path ? sv->opts->state_path : sv->pol->state;
	const char *slash = strrchr(alog, '/');
	int n;

	if (p != NULL)
		return (sv->state_path = strdup(p)) != NULL ? CT_OK : CT_ERR_NOMEM;
	n = slash == NULL ? asprintf(&sv->state_path, "state.journal") :
	    asprintf(&sv->state_path, "%.*s/state.journal", (int)(slash - alog),
	    alog);
	if (n < 0) {
		sv->state_path = NULL;
		return CT_ERR_NOMEM;
	}
	return CT_OK;
}

/* Governance comes up after the start line, so that its events (versions
 * adopted, work resumed) follow it in the log. */
static ct_err
gov_start(server *sv)
{
	ct_gov_work work[CT_GOV_WORK_MAX];
	char err[512];
	size_t n;
	ct_err r;

	r = load_keys(sv, sv->pol, true, &sv->ks, work, &n, err, sizeof(err));
	if (r != CT_OK) {
		fprintf(stderr, "custodiand: %s\n", err);
		(void)audit_event(sv, json_pack("{s:s, s:s, s:s}", "event",
		    "start_refused", "result", ct_err_code(r), "detail", err));
		if (audit_commit(sv) != CT_OK)
			fprintf(stderr, "custodiand: audit: refusal not written\n");
		return r;
	}
	/* Checkpoints were asked for: do not run without them, unless the
	 * token lost a key the state knows: then the daemon must run for the
	 * quorum to restore it, and every missed checkpoint is audited. */
	if (sv->pol->audit_key != NULL &&
	    ct_key_version(ct_keys_find(sv->ks, sv->pol->audit_key), 0) == NULL) {
		fprintf(stderr, "custodiand: the audit key \"%s\" has no version on "
		    "the token%s\n", sv->pol->audit_key,
		    ct_state_knows_key(ct_gov_state(sv->gov), sv->pol->audit_key) ?
		    ": serving so that a restore can bring it back" :
		    " (custodianctl keygen)");
		if (!ct_state_knows_key(ct_gov_state(sv->gov), sv->pol->audit_key))
			return CT_ERR_NO_SUCH_VERSION;
		(void)audit_event(sv, json_pack("{s:s, s:s}", "event",
		    "audit_key_missing", "key", sv->pol->audit_key));
	}
	submit_work(sv, work, n);
	return CT_OK;
}

static const char *
audit_path(const server *sv)
{
	return sv->opts->audit_path ? sv->opts->audit_path : sv->pol->audit_log;
}

static const char *
socket_path(const server *sv)
{
	return sv->opts->socket_path ? sv->opts->socket_path : sv->pol->socket;
}

/* Files others could change are not trusted (docs/policy.md). */
static ct_err
check_paths(const server *sv, char *err, size_t errlen)
{
	const char *alog = audit_path(sv), *sock = socket_path(sv);
	size_t i;
	ct_err r;

	for (i = 0; i < sv->pol->n_tokens; i++)
		if (sv->pol->tokens[i].pin_file != NULL &&
		    (r = ct_perm_check("PIN file", sv->pol->tokens[i].pin_file,
		    CT_PERM_FILE | CT_PERM_OWNER, sv->self, err, errlen)) != CT_OK)
			return r;
	if (alog != NULL && (r = ct_perm_check("audit log", alog,
	    CT_PERM_FILE | CT_PERM_DIR | CT_PERM_MAY_MISS, sv->self, err,
	    errlen)) != CT_OK)
		return r;
	if (sock != NULL && (r = ct_perm_check("socket", sock, CT_PERM_DIR,
	    sv->self, err, errlen)) != CT_OK)
		return r;
	return CT_OK;
}

static ct_err
setup(server *sv)
{
	char err[512];
	const char *sock, *alog;
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;
	size_t i;
	int efd;
	ct_err r;

	/* Before any thread exists (ours, or a PKCS#11 module's), so that
	 * every thread inherits the mask and only the signalfd sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return CT_ERR_INTERNAL;
	if ((r = ct_perm_check("policy file", sv->opts->policy_path,
	    CT_PERM_FILE | CT_PERM_OWNER, sv->self, err, sizeof(err))) != CT_OK ||
	    (r = pol_load_file(sv->opts->policy_path, &sv->pol, err, sizeof(err))) != CT_OK ||
	    (r = check_paths(sv, err, sizeof(err))) != CT_OK ||
	    (r = ct_priv_can_drop(sv->pol, err, sizeof(err))) != CT_OK) {
		fprintf(stderr, "custodiand: %s\n", err);
		return r;
	}
	sv->n_tokens = sv->pol->n_tokens;
	if ((sv->tokens = calloc(sv->n_tokens, sizeof(*sv->tokens))) == NULL ||
	    (sv->sess = calloc(sv->n_tokens, sizeof(*sv->sess))) == NULL)
		return CT_ERR_NOMEM;
	for (i = 0; i < sv->n_tokens; i++) {
		if ((r = ct_token_connect(&sv->pol->tokens[i], &sv->tokens[i], err,
		    sizeof(err))) != CT_OK ||
		    (r = p11_session_open(sv->tokens[i], &sv->sess[i])) != CT_OK) {
			fprintf(stderr, "custodiand: %s\n", r == CT_OK ? "" : err);
			return r;
		}
	}
	alog = audit_path(sv);
	sock = socket_path(sv);
	if (alog == NULL || sock == NULL) {
		fprintf(stderr, "custodiand: no %s: set it in the policy's service "
		    "section or on the command line\n", alog ? "socket" : "audit log");
		return CT_ERR_POLICY;
	}
	if ((r = state_path(sv, alog)) != CT_OK || (r = listen_on(sv, sock)) != CT_OK)
		return r;
	if ((r = ct_audit_open(alog, &sv->audit)) != CT_OK) {
		fprintf(stderr, "custodiand: audit log %s: %s\n", alog,
		    r == CT_ERR_BUSY ? "in use by another process" : ct_strerror(r));
		return r;
	}
	sv->cp_seq = ct_audit_seq(sv->audit);
	sv->rotate_at = sv->pol->audit_rotate_bytes;
	if ((r = ct_pool_start(sv->tokens, sv->n_tokens, sv->pol->workers,
	    &sv->pool)) != CT_OK ||
	    (r = ct_limiter_new(MAX_CONNS, &sv->lim)) != CT_OK)
		return r;
	/* Opened (created) while the daemon may still be root, like the log. */
	if ((r = ct_gov_open(sv->state_path, gov_emit, sv, &sv->gov, err,
	    sizeof(err))) != CT_OK) {
		fprintf(stderr, "custodiand: %s\n", err);
		return r;
	}
	if ((sv->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    (sv->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return CT_ERR_INTERNAL;
	ev.data.u64 = (uint64_t)-1;
	if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->lfd, &ev) == -1)
		return CT_ERR_INTERNAL;
	ev.data.u64 = (uint64_t)-2;
	if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->sigfd, &ev) == -1)
		return CT_ERR_INTERNAL;
	ev.data.u64 = (uint64_t)-3;
	if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, ct_pool_fd(sv->pool), &ev) == -1)
		return CT_ERR_INTERNAL;
	if ((r = ct_readers_start(&sv->readers)) != CT_OK)
		return r;
	ev.data.u64 = (uint64_t)-4;
	if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, ct_readers_fd(sv->readers), &ev) == -1)
		return CT_ERR_INTERNAL;
	/* deliver() collects what the writer did, every turn. */
	if ((r = ct_audit_writer_start(sv->audit, &efd)) != CT_OK)
		return r;
	ev.data.u64 = (uint64_t)-5;
	if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, efd, &ev) == -1)
		return CT_ERR_INTERNAL;
	return CT_OK;
}

/* Audit what the reader monitor saw; keep its snapshot for check_card()
 * and status.  Each event is a change, so pcscd being away is one line. */
static void
take_readers(server *sv)
{
	ct_readers_event evs[CT_READERS_EVENTS_MAX];
	char atr[2 * CT_ATR_MAX + 1];
	size_t i, n, dropped;
	const char *name;
	json_t *ev;

	ct_readers_take(sv->readers, &sv->rsnap, evs, CT_READERS_EVENTS_MAX,
	    &n, &dropped);
	if (dropped > 0)
		fprintf(stderr, "custodiand: %zu reader events lost\n", dropped);
	for (i = 0; i < n; i++) {
		name = ct_readers_event_name(evs[i].kind);
		ev = json_pack("{s:s}", "event", name);
		event_set_str(ev, "reader", evs[i].reader[0] ? evs[i].reader : NULL);
		if (evs[i].kind == CT_RD_CARD_INSERTED) {
			ct_hex(evs[i].atr, evs[i].atr_len, atr);
			event_set_str(ev, "atr", atr);
		}
		(void)audit_event(sv, ev);
		if (evs[i].kind == CT_RD_PCSCD_UNAVAILABLE)
			fprintf(stderr, "custodiand: pcscd is not reachable: "
			    "tokens bound to a reader are suspended until it "
			    "is (retrying every second)\n");
		else
			fprintf(stderr, "custodiand: %s%s%s\n", name,
			    evs[i].reader[0] ? " " : "", evs[i].reader);
	}
}

static void
take_signals(server *sv)
{
	struct signalfd_siginfo si;

	while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(sv);
		} else if (si.ssi_signo == SIGUSR1) {
			sv->rotate_asked = true;
		} else if (!sv->stopping) {
			sv->stopping = true;
			epoll_ctl(sv->ep, EPOLL_CTL_DEL, sv->lfd, NULL);
			fprintf(stderr, "custodiand: stopping\n");
		}
	}
}

/* Once a second: rotations falling due, revoked versions to destroy. */
/*
 * A token that does not answer (a hung HSM, a card pulled mid-call) must
 * not hold its clients forever: past the deadline the client is answered
 * token_timeout and its connection serves again.  The call itself cannot
 * be taken back; finish() records what it did when it ends, and discards
 * its result.  Only the job's request, peer and key name are read here:
 * the worker does not write them.
 */
static void
expire_calls(server *sv)
{
	char msg[96];
	ct_job *job;
	conn *c;
	size_t i;

	for (i = 0; i < MAX_CONNS; i++) {
		if ((c = sv->conns[i]) == NULL || (job = c->job) == NULL ||
		    sv->mono < c->deadline)
			continue;
		c->job = NULL;
		job->late = true;
		snprintf(msg, sizeof(msg), "no answer from the token within %llu s",
		    (unsigned long long)sv->pol->token_timeout);
		if (audit_request(sv, &job->peer, &job->req, &job->key,
		    CT_ERR_TOKEN_TIMEOUT, msg) == CT_OK) {
			reply_error(sv, c, &job->req, CT_ERR_TOKEN_TIMEOUT, msg);
			continue;
		}
		/* No line, no reply: hang up. */
		c->closing = true;
		c->busy = false;
		conn_update(sv, c);
	}
}

static void
tick(server *sv)
{
	ct_gov_work work[CT_GOV_WORK_MAX];
	size_t n;

	sv->last_tick = sv->now.tv_sec;
	expire_calls(sv);
	if (ct_gov_tick(sv->gov, sv->pol, sv->now.tv_sec, work, &n) != CT_OK)
		fprintf(stderr, "custodiand: governance: cannot record a due "
		    "duty; retrying\n");
	submit_work(sv, work, n);
}

static size_t
busy_conns(server *sv)
{
	size_t i, n = 0;

	for (i = 0; i < MAX_CONNS; i++)
		if (sv->conns[i] != NULL && sv->conns[i]->busy)
			n++;
	return n;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
loop(server *sv)
{
	struct epoll_event evs[64];
	struct timespec deadline = { 0 };
	ct_job *job, *next;
	conn *c;
	int i, n, wait;

	for (;;) {
		/* Staged replies go to the writer at once when it is free;
		 * while it is busy its eventfd wakes the loop. */
		wait = sv->stage_head && !ct_audit_busy(sv->audit) ? 0 :
		    sv->stopping ? 100 : TICK_MS;
		if (wait != 0 && (n = checkpoint_wait_ms(sv)) >= 0 &&
		    (wait < 0 || n < wait))
			wait = n;
		n = epoll_wait(sv->ep, evs, 64, wait);
		clock_gettime(CLOCK_REALTIME, &sv->now);
		sv->mono = mono_ns();
		for (i = 0; i < n; i++) {
			uint64_t id = evs[i].data.u64;
			if (id == (uint64_t)-1)
				conn_accept(sv);
			else if (id == (uint64_t)-2)
				take_signals(sv);
			else if (id == (uint64_t)-3) {
				for (job = ct_pool_take_done(sv->pool); job; job = next) {
					next = job->next;
					finish(sv, job);
					ct_job_free(job);
				}
			} else if (id == (uint64_t)-4)
				take_readers(sv);
			else if (id == (uint64_t)-5)
				continue; /* the writer is done: deliver() collects */
			else if ((c = conn_get(sv, id)) != NULL) {
				if (evs[i].events & EPOLLOUT) {
					conn_flush(c);
					process_lines(sv, c);
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_read(sv, c);
				conn_update(sv, c);
			}
		}
		if (sv->now.tv_sec != sv->last_tick && !sv->stopping)
			tick(sv);
		maybe_checkpoint(sv, false);
		deliver(sv);
		maybe_rotate(sv);
		if (sv->stopping) {
			if (deadline.tv_sec == 0)
				deadline.tv_sec = sv->now.tv_sec + SHUTDOWN_GRACE_S;
			if (busy_conns(sv) == 0 || sv->now.tv_sec >= deadline.tv_sec)
				return;
		}
	}
}

static void
teardown(server *sv)
{
	json_t *ev;
	ct_job *job, *next;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &sv->now);
	/* Jobs still running ran on the token: they get their audit lines even
	 * though their clients get no reply. */
	for (job = ct_pool_stop(sv->pool); job != NULL; job = next) {
		next = job->next;
		finish(sv, job);
		ct_job_free(job);
	}
	sv->pool = NULL;
	ct_readers_stop(sv->readers);
	sv->readers = NULL;
	if (sv->audit != NULL) {
		ev = json_pack("{s:s}", "event", "stop");
		/* The log ends signed: a checkpoint covers the stop line. */
		if (audit_event(sv, ev) == CT_OK)
			maybe_checkpoint(sv, true);
		if (audit_commit(sv) != CT_OK)
			fprintf(stderr, "custodiand: audit: stop event not written\n");
		ct_audit_close(sv->audit);
	}
	free_staged(sv->flight);
	free_staged(take_staged(sv));
	for (i = 0; i < MAX_CONNS; i++)
		if (sv->conns[i] != NULL)
			conn_close(sv, sv->conns[i]);
	if (sv->sock_path != NULL) {
		unlink(sv->sock_path);
		free(sv->sock_path);
	}
	if (sv->lfd >= 0)
		close(sv->lfd);
	if (sv->sigfd >= 0)
		close(sv->sigfd);
	if (sv->ep >= 0)
		close(sv->ep);
	ct_keys_free(sv->ks);
	ct_gov_free(sv->gov);
	free(sv->state_path);
	ct_limiter_free(sv->lim);
	for (i = 0; i < sv->n_tokens; i++) {
		if (sv->sess != NULL)
			p11_session_free(sv->sess[i]);
		if (sv->tokens != NULL)
			p11_token_free(sv->tokens[i]);
	}
	free(sv->sess);
	free(sv->tokens);
	pol_free(sv->pol);
}

ct_err
ct_server_run(const ct_server_opts *opts)
{
	server *sv;
	char digest[65], torn_hash[65], err[512];
	size_t torn;
	json_t *ev;
	ct_err r;

	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return CT_ERR_NOMEM;
	sv->opts = opts;
	sv->stage_tail = &sv->stage_head;
	sv->lfd = sv->ep = sv->sigfd = -1;
	sv->self = geteuid();
	if ((r = setup(sv)) != CT_OK)
		goto out;
	/* Everything is open: give up root, then most system calls. */
	if ((r = ct_priv_drop(sv->pol, err, sizeof(err))) != CT_OK ||
	    (r = ct_sandbox_enter(err, sizeof(err))) != CT_OK) {
		fprintf(stderr, "custodiand: %s\n", err);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &sv->now);
	sv->started = sv->now.tv_sec;
	sv->cp_time = sv->now.tv_sec;
	ct_hex(sv->pol->digest, sizeof(sv->pol->digest), digest);
	ev = json_pack("{s:s, s:s, s:s}", "event", "start", "policy",
	    sv->pol->path, "policy_digest", digest);
	event_set_str(ev, "user", sv->pol->run_user);
	if (ev != NULL && (torn = ct_audit_torn(sv->audit, torn_hash)) > 0) {
		/* Never acknowledged, so not a line; but not forgotten. */
		json_object_set_new(ev, "torn_tail", json_pack("{s:I, s:s}",
		    "bytes", (json_int_t)torn, "sha256", torn_hash));
		fprintf(stderr, "custodiand: audit log: cut a torn last line "
		    "(%zu bytes, sha256 %s)\n", torn, torn_hash);
	}
	/* Refuse to serve at all if the log cannot take the first line. */
	if ((r = audit_event(sv, ev)) != CT_OK) {
		fprintf(stderr, "custodiand: audit log not writable: %s\n",
		    ct_strerror(r));
		goto out;
	}
	if ((r = gov_start(sv)) != CT_OK)
		goto out;
	if ((r = audit_commit(sv)) != CT_OK) {
		fprintf(stderr, "custodiand: audit log not writable: %s\n",
		    ct_strerror(r));
		goto out;
	}
	fprintf(stderr, "custodiand: serving on %s\n", sv->sock_path);
	loop(sv);
	r = CT_OK;
 out:
	teardown(sv);
	free(sv);
	return r;
}
