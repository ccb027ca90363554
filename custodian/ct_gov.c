/* ct_gov.c: custodian governance. */
#include "custodian/ct_gov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "custodian/ct_util.h"

typedef struct {
	char key[65];
	uint32_t version;
} kv_name;

struct ct_gov {
	ct_state *st;
	ct_gov_emit emit;
	void *arg;
	kv_name unknown[64];	 /* token objects the state does not know */
	size_t n_unknown;
	kv_name missing[64];	 /* active versions the token lost */
	size_t n_missing;
	int64_t destroy_retry;	 /* after a failed destroy, not before this */
	ct_gov_work inflight[CT_GOV_WORK_MAX]; /* handed out, not finished */
	size_t n_inflight;
	/* The times of the last refusals, for the auto-freeze window. */
	int64_t refusals[POL_FREEZE_REFUSALS_MAX];
	uint64_t n_refusals;	 /* ever noted, modulo a change of threshold */
	unsigned ring;		 /* the threshold the ring was filled for */
};

static void
emit_ev(ct_gov *g, json_t *ev)
{
	if (ev != NULL)
		g->emit(g->arg, ev);
}

/* {"event": name, "request": id, ...} for an event about a request. */
static json_t *
req_event(const char *name, const ct_sreq *q)
{
	char hex[65];
	json_t *ev = json_pack("{s:s, s:s, s:s}", "event", name, "request",
	    q->stmt.id, "action", ct_action_name(q->stmt.action));

	if (ev != NULL && q->stmt.key[0] != '\0')
		json_object_set_new(ev, "key", json_string(q->stmt.key));
	if (ev != NULL && q->stmt.version != 0)
		json_object_set_new(ev, "version", json_integer(q->stmt.version));
	if (ev != NULL && q->stmt.path[0] != '\0')
		json_object_set_new(ev, "file", json_string(q->stmt.path));
	if (ev != NULL && q->stmt.has_digest) {
		ct_hex(q->stmt.digest, sizeof(q->stmt.digest), hex);
		json_object_set_new(ev, "digest", json_string(hex));
	}
	return ev;
}

static json_t *
ver_event(const char *name, const char *key, uint32_t version)
{
	return json_pack("{s:s, s:s, s:I}", "event", name, "key", key,
	    "version", (json_int_t)version);
}

ct_err
ct_gov_open(const char *state_path, ct_gov_emit emit, void *arg,
	    ct_gov **out, char *err, size_t errlen)
{
	ct_gov *g;
	ct_err r;

	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return CT_ERR_NOMEM;
	g->emit = emit;
	g->arg = arg;
	if ((r = ct_state_open(state_path, &g->st, err, errlen)) != CT_OK) {
		free(g);
		return r;
	}
	*out = g;
	return CT_OK;
}

void
ct_gov_free(ct_gov *g)
{
	if (g == NULL)
		return;
	ct_state_free(g->st);
	free(g);
}

const ct_state *
ct_gov_state(const ct_gov *g)
{
	return g->st;
}

static bool
same_work(const ct_gov_work *a, const ct_gov_work *b)
{
	return a->action == b->action && a->version == b->version &&
	       strcmp(a->key, b->key) == 0 && strcmp(a->id, b->id) == 0;
}

/* Work handed out once is not handed out again before it finishes. */
static bool
inflight(const ct_gov *g, const ct_gov_work *w)
{
	size_t i;

	for (i = 0; i < g->n_inflight; i++)
		if (same_work(&g->inflight[i], w))
			return true;
	return false;
}

/* Add w to the caller's list and to the in-flight set; false when either
 * is full (the work is offered again later). */
static bool
hand_out(ct_gov *g, const ct_gov_work *w, ct_gov_work *work, size_t *n_work)
{
	if (inflight(g, w))
		return true;
	if (*n_work >= CT_GOV_WORK_MAX || g->n_inflight >= CT_GOV_WORK_MAX)
		return false;
	g->inflight[g->n_inflight++] = *w;
	work[(*n_work)++] = *w;
	return true;
}

static void
landed(ct_gov *g, const ct_gov_work *w)
{
	size_t i;

	for (i = 0; i < g->n_inflight; i++)
		if (same_work(&g->inflight[i], w)) {
			g->inflight[i] = g->inflight[--g->n_inflight];
			return;
		}
}

/* The token work of request q: its new version, or its file. */
static void
request_work(const ct_sreq *q, ct_gov_work *w)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->id, q->stmt.id, sizeof(w->id));
	w->action = q->stmt.action;
	memcpy(w->key, q->stmt.key, sizeof(w->key));
	w->version = q->stmt.version;
	memcpy(w->path, q->stmt.path, sizeof(w->path));
	memcpy(w->digest, q->stmt.digest, sizeof(w->digest));
}

/* Actions whose effect is work on a token, not only a state change. */
static bool
token_action(ct_action a)
{
	return a == CT_ACT_ROTATE || a == CT_ACT_BACKUP || a == CT_ACT_RESTORE;
}

/* ---- policy ---- */

static bool
policy_governed(const pol_policy *pol)
{
	return pol_quorum_or_default(pol, &pol->gov.policy_change)->m > 0;
}

ct_err
ct_gov_check_policy(const ct_gov *g, const pol_policy *pol, const char **how,
		    char *why, size_t wl)
{
	const ct_state *st = g->st;
	char now_hex[65], cur_hex[65];
	const char *h;

	if (st->has_policy && memcmp(st->policy, pol->digest, 32) == 0)
		h = "in force";
	else if (!st->has_policy)
		h = "first";
	else if (ct_state_policy_approved(st, pol->digest))
		h = "approved";
	else if (!st->policy_governed)
		h = "ungoverned";
	else {
		ct_hex(pol->digest, 32, now_hex);
		ct_hex(st->policy, 32, cur_hex);
		snprintf(why, wl, "policy sha256:%s is not approved: the policy "
		    "in force (sha256:%.16s...) needs a quorum for changes",
		    now_hex, cur_hex);
		return CT_ERR_POLICY;
	}
	if (how != NULL)
		*how = h;
	return CT_OK;
}

ct_err
ct_gov_admit_policy(ct_gov *g, const pol_policy *pol, char *why, size_t wl)
{
	const char *how;
	char hex[65];
	ct_err r;

	if ((r = ct_gov_check_policy(g, pol, &how, why, wl)) != CT_OK ||
	    strcmp(how, "in force") == 0)
		return r;
	if ((r = ct_state_append(g->st, ct_rec_policy(pol->digest,
	    policy_governed(pol)))) != CT_OK) {
		snprintf(why, wl, "state journal: %s", ct_strerror(r));
		return r;
	}
	ct_hex(pol->digest, 32, hex);
	emit_ev(g, json_pack("{s:s, s:s, s:s}", "event", "policy_in_force",
	    "digest", hex, "how", how));
	return CT_OK;
}

/* ---- quorums and requests ---- */

static const pol_quorum *
quorum_for(const pol_policy *pol, const ct_stmt *s)
{
	const pol_key *k = pol_find_key(pol, s->key);
	const pol_governance *gv = &pol->gov;

	switch (s->action) {
	case CT_ACT_ROTATE:
		return pol_quorum_or_default(pol, k ? &k->rotate : NULL);
	case CT_ACT_REVOKE:
		return pol_quorum_or_default(pol, k ? &k->revoke : NULL);
	case CT_ACT_POLICY:
		return pol_quorum_or_default(pol, &gv->policy_change);
	case CT_ACT_UNFREEZE:
		return pol_quorum_or_default(pol, &gv->unfreeze);
	case CT_ACT_BACKUP:
		return pol_quorum_or_default(pol, &gv->backup);
	case CT_ACT_RESTORE:
		return pol_quorum_or_default(pol, &gv->restore);
	case CT_ACT_FREEZE:
		break;
	}
	return NULL; /* a freeze takes any one custodian */
}

static unsigned
needed(const pol_policy *pol, const ct_stmt *s)
{
	const pol_quorum *q = quorum_for(pol, s);

	return q != NULL ? q->m : 1;
}

/* May custodian ci decide on this request? */
static bool
eligible(const pol_policy *pol, const ct_stmt *s, size_t ci)
{
	const pol_quorum *q = quorum_for(pol, s);

	if ((pol->custodians[ci].roles & POL_ROLE_CUSTODIAN) == 0)
		return false;
	return q == NULL || pol_quorum_has(q, ci);
}

static unsigned
approvals(const pol_policy *pol, const ct_sreq *q)
{
	const pol_custodian *cu;
	unsigned n = 0;
	size_t i;

	for (i = 0; i < q->n_approvals; i++)
		if (q->approvals[i].approve &&
		    (cu = pol_find_custodian(pol, q->approvals[i].custodian)) != NULL &&
		    eligible(pol, &q->stmt, (size_t)(cu - pol->custodians)))
			n++;
	return n;
}

static bool
expired(const ct_sreq *q, int64_t now)
{
	return q->state == CT_RQ_OPEN && now >= q->stmt.expires;
}

static const char *
req_state_name(const ct_sreq *q, int64_t now)
{
	return expired(q, now) ? "expired" : ct_rqstate_name(q->state);
}

/* An open or running request for the same thing. */
static const ct_sreq *
pending(const ct_state *st, const ct_stmt *s, int64_t now)
{
	const ct_sreq *q;
	size_t i;

	for (i = 0; i < st->n_reqs; i++) {
		q = &st->reqs[i];
		if ((q->state == CT_RQ_OPEN && !expired(q, now)) ||
		    q->state == CT_RQ_RUNNING)
			if (q->stmt.action == s->action &&
			    strcmp(q->stmt.key, s->key) == 0 &&
			    q->stmt.version == s->version &&
			    q->stmt.has_digest == s->has_digest &&
			    memcmp(q->stmt.digest, s->digest, 32) == 0 &&
			    strcmp(q->stmt.path, s->path) == 0)
				return q;
	}
	return NULL;
}

static size_t
n_open(const ct_state *st, int64_t now)
{
	size_t i, n = 0;

	for (i = 0; i < st->n_reqs; i++)
		if (st->reqs[i].state == CT_RQ_OPEN && !expired(&st->reqs[i], now))
			n++;
	return n;
}

/* The version a rotation creates: above every version the state or the
 * token has, so that a label is never reused. */
static uint32_t
next_version(const ct_gov *g, const char *key)
{
	uint32_t v = 0;
	size_t i;

	for (i = 0; i < g->st->n_vers; i++)
		if (strcmp(g->st->vers[i].key, key) == 0 && g->st->vers[i].version > v)
			v = g->st->vers[i].version;
	for (i = 0; i < g->n_unknown; i++)
		if (strcmp(g->unknown[i].key, key) == 0 && g->unknown[i].version > v)
			v = g->unknown[i].version;
	return v + 1;
}

static const ct_sver *
current_version(const ct_state *st, const char *key)
{
	const ct_sver *cur = NULL;
	size_t i;

	for (i = 0; i < st->n_vers; i++)
		if (st->vers[i].state == CT_VS_ACTIVE &&
		    strcmp(st->vers[i].key, key) == 0 &&
		    (cur == NULL || st->vers[i].version > cur->version))
			cur = &st->vers[i];
	return cur;
}

/* Journal a new request built from s (id, times and policy filled here). */
static ct_err
open_request(ct_gov *g, const pol_policy *pol, ct_stmt *s, const char *by,
	     int64_t now, ct_sreq **out)
{
	char text[CT_STMT_MAX];
	uint8_t rnd[CT_REQ_ID_LEN / 2];
	size_t len;
	ct_err r;

	*out = NULL;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return CT_ERR_INTERNAL;
	ct_hex(rnd, sizeof(rnd), s->id);
	s->created = now;
	s->expires = now + (int64_t)pol->gov.approval_ttl;
	memcpy(s->policy, pol->digest, 32);
	if ((r = ct_stmt_format(s, text, sizeof(text), &len)) != CT_OK ||
	    (r = ct_state_append(g->st, ct_rec_request(text, len, by))) != CT_OK)
		return r;
	*out = ct_state_request(g->st, s->id);
	emit_ev(g, req_event("request_opened", *out));
	return *out != NULL ? CT_OK : CT_ERR_INTERNAL;
}

/* The quorum is in: run the action, or hand back its token work. */
static ct_err
begin(ct_gov *g, ct_sreq *q, ct_gov_work *work, bool *has_work, int64_t now)
{
	ct_gov_work w;
	size_t n = 0;
	ct_err r;

	*has_work = false;
	if (token_action(q->stmt.action)) {
		if ((r = ct_state_append(g->st, ct_rec_begin(q->stmt.id))) != CT_OK)
			return r;
		request_work(q, &w);
		/* With the in-flight set full, a later reconcile resumes it. */
		*has_work = hand_out(g, &w, work, &n) && n == 1;
		emit_ev(g, req_event("request_running", q));
		return CT_OK;
	}
	if ((r = ct_state_append(g->st, ct_rec_done(q->stmt.id, "ok", now))) != CT_OK)
		return r;
	emit_ev(g, req_event("request_done", q));
	return CT_OK;
}

ct_err
ct_gov_request(ct_gov *g, const pol_policy *pol, uid_t peer,
	       const ct_stmt *proto, int64_t now, json_t **result, char *msg,
	       size_t ml)
{
	const pol_custodian *who;
	const ct_sver *sv;
	const ct_sreq *dup;
	const pol_quorum *q;
	ct_sreq *req;
	char by[80];
	ct_stmt s = *proto;
	ct_err r;

	*result = NULL;
	who = pol_peer_custodian(pol, peer, POL_ROLE_OFFICER |
	    (s.action == CT_ACT_FREEZE ? POL_ROLE_CUSTODIAN : 0), now);
	if (who == NULL && pol_peer_custodian(pol, peer, POL_ROLE_OFFICER, 0)) {
		snprintf(msg, ml, "this security-officer's role has ended");
		return CT_ERR_GRANT_EXPIRED;
	}
	if (who == NULL) {
		snprintf(msg, ml, "opening a %s request needs a %s in the policy",
		    ct_action_name(s.action), s.action == CT_ACT_FREEZE ?
		    "custodian or security-officer" : "security-officer");
		return CT_ERR_NOT_AUTHORIZED;
	}
	if (s.key[0] != '\0' && pol_find_key(pol, s.key) == NULL) {
		snprintf(msg, ml, "no key \"%s\"", s.key);
		return CT_ERR_NO_SUCH_KEY;
	}
	switch (s.action) {
	case CT_ACT_ROTATE:
		s.version = next_version(g, s.key);
		break;
	case CT_ACT_REVOKE:
		if ((sv = ct_state_version(g->st, s.key, s.version)) == NULL ||
		    sv->state != CT_VS_ACTIVE) {
			snprintf(msg, ml, "key \"%s\" has no active version %u",
			    s.key, s.version);
			return sv == NULL ? CT_ERR_NO_SUCH_VERSION : CT_ERR_REVOKED;
		}
		break;
	case CT_ACT_POLICY:
		if (memcmp(s.digest, pol->digest, 32) == 0) {
			snprintf(msg, ml, "that policy is already in force");
			return CT_ERR_EXISTS;
		}
		break;
	case CT_ACT_FREEZE:
		if (pol_quorum_or_default(pol, &pol->gov.unfreeze)->m == 0) {
			snprintf(msg, ml, "the policy sets no unfreeze quorum: a "
			    "freeze could not be lifted");
			return CT_ERR_POLICY;
		}
		if (ct_state_frozen(g->st, s.key[0] ? s.key : NULL)) {
			snprintf(msg, ml, "already frozen");
			return CT_ERR_EXISTS;
		}
		break;
	case CT_ACT_UNFREEZE:
		if (s.key[0] ? !ct_state_frozen(g->st, s.key) || g->st->frozen_all :
		    !g->st->frozen_all && g->st->n_frozen == 0) {
			snprintf(msg, ml, "%s", g->st->frozen_all ? "the whole "
			    "service is frozen: unfreeze it without a key" :
			    "not frozen");
			return CT_ERR_BAD_REQUEST;
		}
		break;
	case CT_ACT_BACKUP:
		/* The file is signed by the audit key, on the audit key's token. */
		if (pol->audit_key == NULL) {
			snprintf(msg, ml, "backups are signed by the audit key: "
			    "set service.audit_key");
			return CT_ERR_POLICY;
		}
		break;
	case CT_ACT_RESTORE:
		if (pol->audit_key == NULL) {
			snprintf(msg, ml, "restores check the audit key's "
			    "signature: set service.audit_key");
			return CT_ERR_POLICY;
		}
		if (ct_state_backup(g->st, s.digest) == NULL) {
			snprintf(msg, ml, "this service wrote no backup with that "
			    "digest");
			return CT_ERR_BAD_BACKUP;
		}
		break;
	}
	if ((q = quorum_for(pol, &s)) != NULL && q->m == 0) {
		snprintf(msg, ml, "the policy sets no quorum for %s",
		    ct_action_name(s.action));
		return CT_ERR_POLICY;
	}
	if ((dup = pending(g->st, &s, now)) != NULL) {
		snprintf(msg, ml, "request %s is already open for this",
		    dup->stmt.id);
		return CT_ERR_EXISTS;
	}
	if (n_open(g->st, now) >= CT_GOV_OPEN_MAX) {
		snprintf(msg, ml, "%d requests are open already", CT_GOV_OPEN_MAX);
		return CT_ERR_BUSY;
	}
	snprintf(by, sizeof(by), "%s (uid %u)", who->name, (unsigned)peer);
	if ((r = open_request(g, pol, &s, by, now, &req)) != CT_OK)
		return r;
	if ((*result = ct_gov_show(g, pol, req->stmt.id, now)) == NULL)
		return CT_ERR_NOMEM;
	return CT_OK;
}

ct_err
ct_gov_approve(ct_gov *g, const pol_policy *pol, const char *id,
	       const char *custodian, bool approve, const uint8_t *sig,
	       size_t siglen, int64_t now, json_t **result, ct_gov_work *work,
	       bool *has_work, char *msg, size_t ml)
{
	const pol_custodian *cu;
	ct_sreq *q;
	json_t *ev;
	size_t i;
	ct_err r;

	*result = NULL;
	*has_work = false;
	if ((q = ct_state_request(g->st, id)) == NULL) {
		snprintf(msg, ml, "no request \"%s\"", id);
		return CT_ERR_NO_SUCH_REQUEST;
	}
	if (q->state != CT_RQ_OPEN || expired(q, now)) {
		snprintf(msg, ml, "request %s is %s", id, req_state_name(q, now));
		return CT_ERR_REQUEST_CLOSED;
	}
	if (memcmp(q->stmt.policy, pol->digest, 32) != 0) {
		snprintf(msg, ml, "the policy changed since request %s opened", id);
		return CT_ERR_REQUEST_CLOSED;
	}
	if ((cu = pol_find_custodian(pol, custodian)) == NULL ||
	    !eligible(pol, &q->stmt, (size_t)(cu - pol->custodians))) {
		snprintf(msg, ml, "\"%s\" is not a custodian of this request's "
		    "quorum", custodian);
		return CT_ERR_APPROVAL;
	}
	if (pol_expired(&cu->expiry, now)) {
		char when[POL_TIME_LEN];

		snprintf(msg, ml, "%s's custodian role ended at %s", cu->name,
		    pol_time_format(cu->expiry.until, when));
		return CT_ERR_GRANT_EXPIRED;
	}
	for (i = 0; i < q->n_approvals; i++)
		if (strcmp(q->approvals[i].custodian, cu->name) == 0) {
			snprintf(msg, ml, "%s has already decided on request %s",
			    cu->name, id);
			return CT_ERR_APPROVAL;
		}
	if (ct_stmt_verify(cu->pub, q->text, q->text_len, approve, sig,
	    siglen) != CT_OK) {
		snprintf(msg, ml, "the signature is not %s's over request %s's "
		    "statement and decision", cu->name, id);
		return CT_ERR_APPROVAL;
	}
	if ((r = ct_state_append(g->st, ct_rec_approval(id, cu->name, approve,
	    sig, siglen))) != CT_OK)
		return r;
	if ((ev = req_event(approve ? "approved" : "denied", q)) != NULL)
		json_object_set_new(ev, "custodian", json_string(cu->name));
	emit_ev(g, ev);
	if (approve && approvals(pol, q) >= needed(pol, &q->stmt) &&
	    (r = begin(g, q, work, has_work, now)) != CT_OK)
		return r;
	if ((*result = ct_gov_show(g, pol, id, now)) == NULL)
		return CT_ERR_NOMEM;
	return CT_OK;
}

ct_err
ct_gov_finish(ct_gov *g, const ct_gov_work *w, ct_err result, int64_t now)
{
	const ct_sver *sv;
	ct_sreq *q;
	json_t *ev;
	ct_err r;

	landed(g, w);
	if (w->action == CT_ACT_REVOKE) {
		/* Gone already is what we wanted. */
		if (result != CT_OK && result != CT_ERR_NO_SUCH_KEY) {
			/* Retried, but not every second into the audit log. */
			g->destroy_retry = now + 60;
			ev = ver_event("destroy_failed", w->key, w->version);
			if (ev != NULL)
				json_object_set_new(ev, "result",
				    json_string(ct_err_code(result)));
			emit_ev(g, ev);
			return result;
		}
		/* A rescan may have recorded it already (two destroys ran). */
		if ((sv = ct_state_version(g->st, w->key, w->version)) != NULL &&
		    sv->state == CT_VS_DESTROYED)
			return CT_OK;
		if ((r = ct_state_append(g->st, ct_rec_version(w->key, w->version,
		    CT_VS_DESTROYED, now))) != CT_OK)
			return r;
		emit_ev(g, ver_event("version_destroyed", w->key, w->version));
		return CT_OK;
	}
	if ((q = ct_state_request(g->st, w->id)) == NULL || q->state != CT_RQ_RUNNING)
		return CT_ERR_INTERNAL;
	/* What a restore will check the file against. */
	if (w->action == CT_ACT_BACKUP && result == CT_OK &&
	    (r = ct_state_append(g->st, ct_rec_backup(w->id, w->digest,
	    w->signer_pem))) != CT_OK)
		return r;
	if ((r = ct_state_append(g->st, ct_rec_done(w->id, result == CT_OK ? "ok" :
	    ct_err_code(result), now))) != CT_OK)
		return r;
	if ((ev = req_event(result == CT_OK ? "request_done" : "request_failed",
	    q)) != NULL && result != CT_OK)
		json_object_set_new(ev, "result", json_string(ct_err_code(result)));
	emit_ev(g, ev);
	return CT_OK;
}

char *
ct_gov_backup_signer(const ct_gov *g, const uint8_t digest[32])
{
	const ct_sbackup *b = ct_state_backup(g->st, digest);

	return b != NULL ? strdup(b->signer_pem) : NULL;
}

/* ---- reconciling the tokens with the state ---- */

static bool
listed(const kv_name *list, size_t n, const char *key, uint32_t version)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (list[i].version == version && strcmp(list[i].key, key) == 0)
			return true;
	return false;
}

/* Add to a list of findings (at most 64); true when it is new, so that a
 * finding is audited once, not at every reconcile. */
static bool
note(kv_name *list, size_t *n, const kv_name *before, size_t n_before,
     const char *key, uint32_t version)
{
	if (*n < 64) {
		snprintf(list[*n].key, sizeof(list[*n].key), "%s", key);
		list[(*n)++].version = version;
	}
	return !listed(before, n_before, key, version);
}

static bool
key_governed(const pol_policy *pol, const pol_key *pk)
{
	return pol_quorum_or_default(pol, &pk->rotate)->m > 0 ||
	       pol_quorum_or_default(pol, &pk->revoke)->m > 0;
}

static const ct_keyver *
on_token(const ct_keystore *ks, const char *key, uint32_t version)
{
	const ct_key *k = ct_keys_find(ks, key);
	size_t i;

	for (i = 0; k != NULL && i < k->n_vers; i++)
		if (k->vers[i].version == version)
			return &k->vers[i];
	return NULL;
}

/* Requests a crash left between quorum and outcome. */
static ct_err
resume_requests(ct_gov *g, const pol_policy *pol, const ct_keystore *ks,
		int64_t now, ct_gov_work *work, size_t *n_work)
{
	ct_gov_work w;
	ct_sreq *q;
	bool has;
	size_t i;
	ct_err r;

	for (i = 0; i < g->st->n_reqs; i++) {
		q = &g->st->reqs[i];
		if (*n_work >= CT_GOV_WORK_MAX || g->n_inflight >= CT_GOV_WORK_MAX)
			break; /* the rest waits for the next reconcile */
		/* The quorum was complete before the crash: its approvals
		 * were all made in time, so the request runs even if it has
		 * expired since. */
		if (q->state == CT_RQ_OPEN &&
		    memcmp(q->stmt.policy, pol->digest, 32) == 0 &&
		    approvals(pol, q) >= needed(pol, &q->stmt)) {
			if ((r = begin(g, q, &work[*n_work], &has, now)) != CT_OK)
				return r;
			*n_work += has;
			continue;
		}
		request_work(q, &w);
		if (q->state != CT_RQ_RUNNING || inflight(g, &w))
			continue;
		/* A rotation whose key was generated before the crash. */
		if (q->stmt.action == CT_ACT_ROTATE &&
		    on_token(ks, q->stmt.key, q->stmt.version) != NULL) {
			if ((r = ct_state_append(g->st, ct_rec_done(q->stmt.id,
			    "ok", now))) != CT_OK)
				return r;
			emit_ev(g, req_event("request_done", q));
			continue;
		}
		(void)hand_out(g, &w, work, n_work);
		emit_ev(g, req_event("request_resumed", q));
	}
	return CT_OK;
}

ct_err
ct_gov_reconcile(ct_gov *g, const pol_policy *pol, ct_keystore *ks,
		 int64_t now, ct_gov_work *work, size_t *n_work)
{
	struct {
		kv_name unknown[64], missing[64];
		size_t n_unknown, n_missing;
	} prev;
	ct_key *k;
	ct_keyver *kv;
	ct_sver *sv;
	const char *name;
	bool adopt;
	size_t i, j;
	ct_err r;

	*n_work = 0;
	memcpy(prev.unknown, g->unknown, sizeof(prev.unknown));
	memcpy(prev.missing, g->missing, sizeof(prev.missing));
	prev.n_unknown = g->n_unknown;
	prev.n_missing = g->n_missing;
	g->n_unknown = g->n_missing = 0;
	if ((r = resume_requests(g, pol, ks, now, work, n_work)) != CT_OK)
		return r;
	for (i = 0; i < ks->n_keys; i++) {
		k = &ks->keys[i];
		name = k->pol->name;
		adopt = !ct_state_knows_key(g->st, name) || !key_governed(pol, k->pol);
		for (j = 0; j < k->n_vers; j++) {
			kv = &k->vers[j];
			if ((sv = ct_state_version(g->st, name, kv->version)) != NULL) {
				kv->use = sv->state == CT_VS_ACTIVE ? CT_KV_OK :
				    CT_KV_REVOKED;
				continue;
			}
			if (!adopt) {
				kv->use = CT_KV_UNKNOWN;
				if (note(g->unknown, &g->n_unknown, prev.unknown,
				    prev.n_unknown, name, kv->version))
					emit_ev(g, ver_event("unknown_object",
					    name, kv->version));
				continue;
			}
			if ((r = ct_state_append(g->st, ct_rec_version(name,
			    kv->version, CT_VS_ACTIVE, now))) != CT_OK)
				return r;
			kv->use = CT_KV_OK;
			emit_ev(g, ver_event("version_adopted", name, kv->version));
		}
	}
	/* Versions the state has and the token lost. */
	for (i = 0; i < g->st->n_vers; i++) {
		sv = &g->st->vers[i];
		if (sv->state == CT_VS_DESTROYED || ct_keys_find(ks, sv->key) == NULL ||
		    on_token(ks, sv->key, sv->version) != NULL)
			continue;
		if (sv->state == CT_VS_ACTIVE) {
			if (note(g->missing, &g->n_missing, prev.missing,
			    prev.n_missing, sv->key, sv->version))
				emit_ev(g, ver_event("version_missing", sv->key,
				    sv->version));
			continue;
		}
		/* Revoked and gone: a destroy finished before a crash. */
		if ((r = ct_state_append(g->st, ct_rec_version(sv->key,
		    sv->version, CT_VS_DESTROYED, now))) != CT_OK)
			return r;
		emit_ev(g, ver_event("version_destroyed", sv->key, sv->version));
	}
	return CT_OK;
}

/* ---- time ---- */

ct_err
ct_gov_tick(ct_gov *g, const pol_policy *pol, int64_t now, ct_gov_work *work,
	    size_t *n_work)
{
	const pol_key *pk;
	const ct_sver *cur;
	ct_gov_work w;
	ct_sver *sv;
	ct_sreq *q;
	ct_stmt s;
	json_t *ev;
	size_t i;
	ct_err r;

	*n_work = 0;
	for (i = 0; i < pol->n_keys; i++) {
		pk = &pol->keys[i];
		if (pk->rotate_every == 0 ||
		    (cur = current_version(g->st, pk->name)) == NULL ||
		    now < cur->created + (int64_t)pk->rotate_every ||
		    pol_quorum_or_default(pol, &pk->rotate)->m == 0)
			continue;
		memset(&s, 0, sizeof(s));
		s.action = CT_ACT_ROTATE;
		snprintf(s.key, sizeof(s.key), "%s", pk->name);
		s.version = next_version(g, pk->name);
		if (pending(g->st, &s, now) != NULL)
			continue;
		if ((r = open_request(g, pol, &s, "daemon (rotation due)", now,
		    &q)) != CT_OK)
			return r;
		if ((ev = req_event("rotation_due", q)) != NULL)
			json_object_set_new(ev, "due", json_integer(cur->created +
			    (json_int_t)pk->rotate_every));
		emit_ev(g, ev);
	}
	for (i = 0; now >= g->destroy_retry && i < g->st->n_vers; i++) {
		sv = &g->st->vers[i];
		if (sv->state != CT_VS_REVOKED ||
		    (pk = pol_find_key(pol, sv->key)) == NULL ||
		    now < sv->revoked + (int64_t)pk->destroy_after)
			continue;
		memset(&w, 0, sizeof(w));
		w.action = CT_ACT_REVOKE;
		memcpy(w.key, sv->key, sizeof(w.key));
		w.version = sv->version;
		if (!hand_out(g, &w, work, n_work))
			break;
	}
	return CT_OK;
}

void
ct_gov_note_refusal(ct_gov *g, const pol_policy *pol, int64_t now)
{
	ct_sreq *q;
	ct_stmt s;
	json_t *ev;

	unsigned n = pol->gov.freeze_refusals;

	if (n == 0 || n > POL_FREEZE_REFUSALS_MAX || g->st->frozen_all)
		return;
	if (g->ring != n) { /* a reload changed the threshold: start over */
		g->ring = n;
		g->n_refusals = 0;
	}
	/* A sliding window: the n-th last refusal (the slot written next)
	 * must be within the window of this one. */
	g->refusals[g->n_refusals++ % n] = now;
	if (g->n_refusals < n ||
	    now - g->refusals[g->n_refusals % n] >= (int64_t)pol->gov.freeze_window)
		return;
	g->n_refusals = 0;
	memset(&s, 0, sizeof(s));
	s.action = CT_ACT_FREEZE;
	if (open_request(g, pol, &s, "daemon (auto_freeze)", now, &q) != CT_OK ||
	    ct_state_append(g->st, ct_rec_done(q->stmt.id, "ok", now)) != CT_OK) {
		fprintf(stderr, "custodiand: auto-freeze could not be recorded\n");
		return;
	}
	ev = json_pack("{s:s, s:s, s:i, s:I}", "event", "auto_freeze", "request",
	    q->stmt.id, "refusals", (int)pol->gov.freeze_refusals, "window",
	    (json_int_t)pol->gov.freeze_window);
	emit_ev(g, ev);
}

/* ---- views ---- */

json_t *
ct_gov_show(ct_gov *g, const pol_policy *pol, const char *id, int64_t now)
{
	ct_sreq *q = ct_state_request(g->st, id);
	json_t *o, *apps;
	size_t i;

	if (q == NULL || (o = req_event("request", q)) == NULL)
		return NULL;
	json_object_del(o, "event");
	apps = json_array();
	for (i = 0; apps != NULL && i < q->n_approvals; i++)
		json_array_append_new(apps, json_pack("{s:s, s:s}", "custodian",
		    q->approvals[i].custodian, "decision",
		    q->approvals[i].approve ? "approve" : "deny"));
	json_object_set_new(o, "state", json_string(req_state_name(q, now)));
	json_object_set_new(o, "statement", json_stringn(q->text, q->text_len));
	json_object_set_new(o, "by", json_string(q->by));
	json_object_set_new(o, "approvals", apps ? apps : json_null());
	json_object_set_new(o, "approved", json_integer(approvals(pol, q)));
	json_object_set_new(o, "needed", json_integer(needed(pol, &q->stmt)));
	json_object_set_new(o, "expires", json_integer(q->stmt.expires));
	if (q->result[0] != '\0')
		json_object_set_new(o, "result", json_string(q->result));
	return o;
}

json_t *
ct_gov_list(ct_gov *g, const pol_policy *pol, int64_t now)
{
	json_t *arr = json_array(), *o;
	size_t i;

	for (i = 0; arr != NULL && i < g->st->n_reqs; i++) {
		if ((g->st->reqs[i].state != CT_RQ_OPEN &&
		    g->st->reqs[i].state != CT_RQ_RUNNING) ||
		    expired(&g->st->reqs[i], now))
			continue;
		if ((o = ct_gov_show(g, pol, g->st->reqs[i].stmt.id, now)) == NULL ||
		    json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *
ct_gov_due(ct_gov *g, const pol_policy *pol, int64_t now)
{
	json_t *arr = json_array(), *o;
	const ct_sver *cur;
	const pol_key *pk;
	int64_t due;
	ct_stmt s;
	const ct_sreq *q;
	size_t i;

	for (i = 0; arr != NULL && i < pol->n_keys; i++) {
		pk = &pol->keys[i];
		if (pk->rotate_every == 0 ||
		    (cur = current_version(g->st, pk->name)) == NULL)
			continue;
		due = cur->created + (int64_t)pk->rotate_every;
		memset(&s, 0, sizeof(s));
		s.action = CT_ACT_ROTATE;
		snprintf(s.key, sizeof(s.key), "%s", pk->name);
		s.version = next_version(g, pk->name);
		q = pending(g->st, &s, now);
		o = json_pack("{s:s, s:I, s:I, s:I, s:b, s:s?}", "key", pk->name,
		    "version", (json_int_t)cur->version, "created",
		    (json_int_t)cur->created, "due", (json_int_t)due, "overdue",
		    now >= due, "request", q ? q->stmt.id : NULL);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *
ct_gov_status(ct_gov *g, const pol_policy *pol, int64_t now)
{
	json_t *frozen = json_array(), *overdue = json_array(), *unknown = json_array();
	json_t *due = ct_gov_due(g, pol, now), *d;
	char label[96];
	size_t i;

	for (i = 0; frozen != NULL && i < g->st->n_frozen; i++)
		json_array_append_new(frozen, json_string(g->st->frozen[i]));
	json_array_foreach(due, i, d)
		if (json_is_true(json_object_get(d, "overdue")))
			json_array_append(overdue, json_object_get(d, "key"));
	for (i = 0; unknown != NULL && i < g->n_unknown; i++) {
		snprintf(label, sizeof(label), "%s/v%u", g->unknown[i].key,
		    g->unknown[i].version);
		json_array_append_new(unknown, json_string(label));
	}
	json_decref(due);
	return json_pack("{s:b, s:o*, s:o*, s:I, s:o*, s:b}", "frozen",
	    g->st->frozen_all, "frozen_keys", frozen, "overdue", overdue,
	    "open_requests", (json_int_t)n_open(g->st, now), "unknown_objects",
	    unknown, "policy_governed", policy_governed(pol));
}
