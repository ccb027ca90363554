/* ct_state.c: the governance journal. */
#include "custodian/ct_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custodian/ct_util.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

static const char *const vstate_names[] = {
	[CT_VS_ACTIVE] = "active",
	[CT_VS_REVOKED] = "revoked",
	[CT_VS_DESTROYED] = "destroyed",
};
static const char *const rqstate_names[] = {
	[CT_RQ_OPEN] = "open",
	[CT_RQ_RUNNING] = "running",
	[CT_RQ_DONE] = "done",
	[CT_RQ_FAILED] = "failed",
	[CT_RQ_DENIED] = "denied",
};
#define NAME_AT(tab, i) ((size_t)(i) > 0 && (size_t)(i) < sizeof(tab) / sizeof(tab[0]) ? tab[i] : "?")

const char *
ct_vstate_name(ct_vstate s)
{
	return NAME_AT(vstate_names, s);
}

const char *
ct_rqstate_name(ct_rqstate s)
{
	return NAME_AT(rqstate_names, s);
}

static ct_vstate
vstate_from_name(const char *s)
{
	size_t i;

	for (i = 1; s != NULL && i < sizeof(vstate_names) / sizeof(vstate_names[0]); i++)
		if (strcmp(vstate_names[i], s) == 0)
			return (ct_vstate)i;
	return 0;
}

/* ---- records ---- */

json_t *
ct_rec_version(const char *key, uint32_t version, ct_vstate s, int64_t now)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:I}", "t", "version", "key", key,
	    "version", (json_int_t)version, "state", ct_vstate_name(s),
	    "time", (json_int_t)now);
}

json_t *
ct_rec_request(const char *text, size_t len, const char *by)
{
	return json_pack("{s:s, s:s%, s:s}", "t", "request", "statement", text,
	    len, "by", by);
}

json_t *
ct_rec_approval(const char *id, const char *custodian, bool approve,
		const uint8_t *sig, size_t siglen)
{
	char *b64 = NULL;
	json_t *rec;

	if (ct_b64_encode(sig, siglen, &b64) != CT_OK)
		return NULL;
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "t", "approval", "id", id,
	    "custodian", custodian, "decision", approve ? "approve" : "deny",
	    "sig", b64);
	free(b64);
	return rec;
}

json_t *
ct_rec_begin(const char *id)
{
	return json_pack("{s:s, s:s}", "t", "begin", "id", id);
}

json_t *
ct_rec_done(const char *id, const char *result, int64_t now)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "t", "done", "id", id,
	    "result", result, "time", (json_int_t)now);
}

json_t *
ct_rec_policy(const uint8_t digest[32], bool governed)
{
	char hex[65];

	ct_hex(digest, 32, hex);
	return json_pack("{s:s, s:s, s:b}", "t", "policy", "digest", hex,
	    "governed", governed);
}

json_t *
ct_rec_backup(const char *id, const uint8_t digest[32], const char *signer_pem)
{
	char hex[65];

	ct_hex(digest, 32, hex);
	return json_pack("{s:s, s:s, s:s, s:s}", "t", "backup", "id", id,
	    "digest", hex, "signer", signer_pem);
}

/* ---- lookups ---- */

ct_sver *
ct_state_version(ct_state *st, const char *key, uint32_t version)
{
	size_t i;

	for (i = 0; i < st->n_vers; i++)
		if (st->vers[i].version == version &&
		    strcmp(st->vers[i].key, key) == 0)
			return &st->vers[i];
	return NULL;
}

bool
ct_state_knows_key(const ct_state *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->n_vers; i++)
		if (strcmp(st->vers[i].key, key) == 0)
			return true;
	return false;
}

ct_sreq *
ct_state_request(ct_state *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->n_reqs; i++)
		if (strcmp(st->reqs[i].stmt.id, id) == 0)
			return &st->reqs[i];
	return NULL;
}

static ssize_t
frozen_index(const ct_state *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->n_frozen; i++)
		if (strcmp(st->frozen[i], key) == 0)
			return (ssize_t)i;
	return -1;
}

bool
ct_state_frozen(const ct_state *st, const char *key)
{
	return st->frozen_all || (key != NULL && frozen_index(st, key) >= 0);
}

static ssize_t
approved_index(const ct_state *st, const uint8_t digest[32])
{
	size_t i;

	for (i = 0; i < st->n_approved; i++)
		if (memcmp(st->approved[i], digest, 32) == 0)
			return (ssize_t)i;
	return -1;
}

bool
ct_state_policy_approved(const ct_state *st, const uint8_t digest[32])
{
	return approved_index(st, digest) >= 0;
}

const ct_sbackup *
ct_state_backup(const ct_state *st, const uint8_t digest[32])
{
	size_t i;

	for (i = 0; i < st->n_backups; i++)
		if (memcmp(st->backups[i].digest, digest, 32) == 0)
			return &st->backups[i];
	return NULL;
}

/* ---- applying records ---- */

/* Grow an array by one element (zeroed); NULL when out of memory. */
static void *
grow(void *arr, size_t *n, size_t size)
{
	char *p = realloc(arr, (*n + 1) * size);

	if (p == NULL)
		return NULL;
	memset(p + *n * size, 0, size);
	(*n)++;
	return p;
}

static const char *
str_of(json_t *rec, const char *k)
{
	return json_string_value(json_object_get(rec, k));
}

static bool
hex32(const char *s, uint8_t out[32])
{
	unsigned x;
	size_t i;

	if (s == NULL || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
		return false;
	for (i = 0; i < 32; i++) {
		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return false;
		out[i] = (uint8_t)x;
	}
	return true;
}

static ct_err
set_version(ct_state *st, const char *key, json_int_t version, ct_vstate s,
	    json_int_t t)
{
	ct_sver *v, *nv;

	if (key == NULL || !ct_valid_name(key, 64) || version < 1 ||
	    version > UINT32_MAX || s == 0 || t < 0)
		return CT_ERR_BAD_REQUEST;
	if ((v = ct_state_version(st, key, (uint32_t)version)) == NULL) {
		if (s != CT_VS_ACTIVE)
			return CT_ERR_BAD_REQUEST; /* versions are born active */
		if ((nv = grow(st->vers, &st->n_vers, sizeof(*nv))) == NULL)
			return CT_ERR_NOMEM;
		st->vers = nv;
		v = &st->vers[st->n_vers - 1];
		snprintf(v->key, sizeof(v->key), "%s", key);
		v->version = (uint32_t)version;
		v->created = t;
	} else if (s <= v->state)
		return CT_ERR_BAD_REQUEST; /* states only move forward */
	if (s == CT_VS_REVOKED)
		v->revoked = t;
	v->state = s;
	return CT_OK;
}

static ct_err
set_frozen(ct_state *st, const char *key, bool on)
{
	char (*nf)[65];
	ssize_t i;

	if (key[0] == '\0') {
		st->frozen_all = on;
		if (!on) { /* lifting the service freeze lifts every freeze */
			free(st->frozen);
			st->frozen = NULL;
			st->n_frozen = 0;
		}
		return CT_OK;
	}
	i = frozen_index(st, key);
	if (on && i < 0) {
		if ((nf = grow(st->frozen, &st->n_frozen, sizeof(*nf))) == NULL)
			return CT_ERR_NOMEM;
		st->frozen = nf;
		snprintf(st->frozen[st->n_frozen - 1], 65, "%s", key);
	} else if (!on && i >= 0)
		memcpy(st->frozen[i], st->frozen[--st->n_frozen], 65);
	return CT_OK;
}

/* The effect of a request that succeeded. */
static ct_err
apply_effect(ct_state *st, const ct_stmt *s, json_int_t t)
{
	uint8_t (*na)[32];

	switch (s->action) {
	case CT_ACT_ROTATE:
		return set_version(st, s->key, s->version, CT_VS_ACTIVE, t);
	case CT_ACT_REVOKE:
		return set_version(st, s->key, s->version, CT_VS_REVOKED, t);
	case CT_ACT_FREEZE:
	case CT_ACT_UNFREEZE:
		return set_frozen(st, s->key, s->action == CT_ACT_FREEZE);
	case CT_ACT_POLICY:
		if (approved_index(st, s->digest) >= 0)
			return CT_OK;
		if ((na = grow(st->approved, &st->n_approved, sizeof(*na))) == NULL)
			return CT_ERR_NOMEM;
		st->approved = na;
		memcpy(st->approved[st->n_approved - 1], s->digest, 32);
		return CT_OK;
	case CT_ACT_BACKUP:
	case CT_ACT_RESTORE:
		return CT_OK; /* their effects are files and version records */
	}
	return CT_ERR_BAD_REQUEST;
}

static ct_err
add_request(ct_state *st, json_t *rec)
{
	json_t *text = json_object_get(rec, "statement");
	const char *by = str_of(rec, "by");
	ct_sreq *nr, *q;
	ct_stmt s;
	ct_err r;

	if (!json_is_string(text) || by == NULL || strlen(by) >= sizeof(q->by) ||
	    (r = ct_stmt_parse(json_string_value(text), json_string_length(text),
	    &s)) != CT_OK)
		return CT_ERR_BAD_REQUEST;
	if (ct_state_request(st, s.id) != NULL)
		return CT_ERR_EXISTS;
	if ((nr = grow(st->reqs, &st->n_reqs, sizeof(*nr))) == NULL)
		return CT_ERR_NOMEM;
	st->reqs = nr;
	q = &st->reqs[st->n_reqs - 1];
	if ((q->text = strndup(json_string_value(text),
	    json_string_length(text))) == NULL) {
		st->n_reqs--;
		return CT_ERR_NOMEM;
	}
	q->text_len = json_string_length(text);
	q->stmt = s;
	q->state = CT_RQ_OPEN;
	snprintf(q->by, sizeof(q->by), "%s", by);
	return CT_OK;
}

static ct_err
add_backup(ct_state *st, const ct_sreq *q, json_t *rec)
{
	const char *pem = str_of(rec, "signer");
	ct_sbackup *nb, *b;
	uint8_t digest[32];

	if (q->stmt.action != CT_ACT_BACKUP || q->state != CT_RQ_RUNNING ||
	    !hex32(str_of(rec, "digest"), digest) || pem == NULL ||
	    strlen(pem) > 4096)
		return CT_ERR_BAD_REQUEST;
	if ((nb = grow(st->backups, &st->n_backups, sizeof(*nb))) == NULL)
		return CT_ERR_NOMEM;
	st->backups = nb;
	b = &st->backups[st->n_backups - 1];
	if ((b->signer_pem = strdup(pem)) == NULL) {
		st->n_backups--;
		return CT_ERR_NOMEM;
	}
	memcpy(b->id, q->stmt.id, sizeof(b->id));
	memcpy(b->digest, digest, 32);
	return CT_OK;
}

static ct_err
apply(ct_state *st, json_t *rec)
{
	const char *t = str_of(rec, "t"), *id = str_of(rec, "id"), *res, *d;
	json_int_t tm = json_integer_value(json_object_get(rec, "time"));
	uint8_t digest[32];
	ct_sreq *q = id != NULL ? ct_state_request(st, id) : NULL;
	ct_approval *a;

	if (t == NULL)
		return CT_ERR_BAD_REQUEST;
	if (strcmp(t, "version") == 0)
		return set_version(st, str_of(rec, "key"),
		    json_integer_value(json_object_get(rec, "version")),
		    vstate_from_name(str_of(rec, "state")), tm);
	if (strcmp(t, "request") == 0)
		return add_request(st, rec);
	if (strcmp(t, "policy") == 0) {
		if (!hex32(str_of(rec, "digest"), digest) ||
		    !json_is_boolean(json_object_get(rec, "governed")))
			return CT_ERR_BAD_REQUEST;
		st->has_policy = true;
		memcpy(st->policy, digest, 32);
		st->policy_governed = json_is_true(json_object_get(rec, "governed"));
		/* Approvals of other files lapse: each was approved against the
		 * policy in force then, which is no longer in force. */
		st->n_approved = 0;
		return CT_OK;
	}
	if (q == NULL)
		return CT_ERR_BAD_REQUEST;
	if (strcmp(t, "backup") == 0)
		return add_backup(st, q, rec);
	if (strcmp(t, "approval") == 0) {
		d = str_of(rec, "decision");
		if (q->state != CT_RQ_OPEN || q->n_approvals >= CT_APPROVALS_MAX ||
		    d == NULL || str_of(rec, "custodian") == NULL ||
		    str_of(rec, "sig") == NULL ||
		    (strcmp(d, "approve") != 0 && strcmp(d, "deny") != 0))
			return CT_ERR_BAD_REQUEST;
		a = &q->approvals[q->n_approvals++];
		snprintf(a->custodian, sizeof(a->custodian), "%s",
		    str_of(rec, "custodian"));
		a->approve = strcmp(d, "approve") == 0;
		if (!a->approve)
			q->state = CT_RQ_DENIED;
		return CT_OK;
	}
	if (strcmp(t, "begin") == 0) {
		if (q->state != CT_RQ_OPEN)
			return CT_ERR_BAD_REQUEST;
		q->state = CT_RQ_RUNNING;
		return CT_OK;
	}
	if (strcmp(t, "done") == 0) {
		res = str_of(rec, "result");
		if ((q->state != CT_RQ_OPEN && q->state != CT_RQ_RUNNING) ||
		    res == NULL || strlen(res) >= sizeof(q->result))
			return CT_ERR_BAD_REQUEST;
		snprintf(q->result, sizeof(q->result), "%s", res);
		if (strcmp(res, "ok") != 0) {
			q->state = CT_RQ_FAILED;
			return CT_OK;
		}
		q->state = CT_RQ_DONE;
		return apply_effect(st, &q->stmt, tm);
	}
	return CT_ERR_BAD_REQUEST;
}

/* ---- the file ---- */

static ct_err
replay(ct_state *st, char *buf, size_t len, char *err, size_t errlen)
{
	char *p = buf, *nl;
	json_error_t je;
	json_t *rec;
	ct_err r;

	while ((nl = memchr(p, '\n', len - (size_t)(p - buf))) != NULL) {
		st->lines++;
		rec = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &je);
		r = rec == NULL ? CT_ERR_BAD_REQUEST : apply(st, rec);
		json_decref(rec);
		if (r != CT_OK) {
			snprintf(err, errlen, "%s:%llu: %s", st->path,
			    (unsigned long long)st->lines, r == CT_ERR_NOMEM ?
			    "out of memory" : "not a valid state record");
			return r == CT_ERR_NOMEM ? r : CT_ERR_POLICY;
		}
		p = nl + 1;
	}
	/* A tail without its newline was never synced whole: nothing acted on it. */
	if ((size_t)(p - buf) < len &&
	    (ftruncate(st->fd, (off_t)(p - buf)) == -1 || fdatasync(st->fd) == -1)) {
		snprintf(err, errlen, "%s: cutting a torn last line: %s", st->path,
		    strerror(errno));
		return CT_ERR_IO;
	}
	return CT_OK;
}

ct_err
ct_state_open(const char *path, ct_state **out, char *err, size_t errlen)
{
	ct_state *st;
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	ct_err r = CT_ERR_NOMEM;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return CT_ERR_NOMEM;
	st->fd = -1;
	if ((st->path = strdup(path)) == NULL)
		goto out;
	r = CT_ERR_IO;
	if ((st->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 || fstat(st->fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 0077) != 0 ||
	    (uint64_t)sb.st_size > CT_STATE_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, !S_ISREG(sb.st_mode) ?
		    "not a regular file" : (sb.st_mode & 0077) ?
		    "readable or writable by others: refused" : "too large");
		goto out;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	while (len < (size_t)sb.st_size) {
		n = pread(st->fd, buf + len, (size_t)sb.st_size - len, (off_t)len);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: read: %s", path,
			    n == 0 ? "file shrank" : strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if ((r = replay(st, buf, len, err, errlen)) != CT_OK)
		goto out;
	*out = st;
	st = NULL;
 out:
	free(buf);
	ct_state_free(st);
	return r;
}

void
ct_state_free(ct_state *st)
{
	size_t i;

	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	for (i = 0; i < st->n_reqs; i++)
		free(st->reqs[i].text);
	free(st->reqs);
	free(st->vers);
	free(st->frozen);
	free(st->approved);
	for (i = 0; i < st->n_backups; i++)
		free(st->backups[i].signer_pem);
	free(st->backups);
	free(st->path);
	free(st);
}

ct_err
ct_state_append(ct_state *st, json_t *rec)
{
	char *line = NULL;
	size_t len, off = 0;
	off_t end;
	ssize_t n;
	ct_err r = CT_ERR_NOMEM;

	if (rec == NULL || (len = json_dumpb(rec, NULL, 0, DUMP_FLAGS)) == 0 ||
	    (line = malloc(len + 1)) == NULL)
		goto out;
	if (json_dumpb(rec, line, len, DUMP_FLAGS) != len) {
		r = CT_ERR_INTERNAL;
		goto out;
	}
	line[len] = '\n';
	r = CT_ERR_IO;
	if ((end = lseek(st->fd, 0, SEEK_END)) == -1)
		goto out;
	/* Past the size open accepts, the daemon could not start again. */
	if ((uint64_t)end + len + 1 > CT_STATE_FILE_MAX) {
		fprintf(stderr, "custodiand: state: %s is full\n", st->path);
		goto out;
	}
	while (off < len + 1) {
		if ((n = write(st->fd, line + off, len + 1 - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	if (off < len + 1 || fdatasync(st->fd) == -1) {
		/* Leave no partial record for a later append to extend. */
		if (ftruncate(st->fd, end) == -1)
			fprintf(stderr, "custodiand: state: cannot cut back %s\n",
			    st->path);
		goto out;
	}
	st->lines++;
	if ((r = apply(st, rec)) != CT_OK)
		fprintf(stderr, "custodiand: state: record not applied: %s\n",
		    ct_strerror(r));
 out:
	free(line);
	json_decref(rec);
	return r;
}
