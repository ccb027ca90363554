/* test_gov.c: the governance journal (ct_state) and the decisions on it
 * (ct_gov), with a policy loaded from YAML whose custodians' keys are made
 * here, approvals signed here, a key store built by hand (no token), and
 * time passed as a parameter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "custodian/ct_gov.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_state.h"
#include "custodian/ct_stmt.h"
#include "custodian/ct_util.h"
#include "policy/pol.h"
#include "tests/unit/stmt_sign.h"

#define T0 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define HOUR INT64_C(3600)
#define DAY (24 * HOUR)
#define OFFICER 1000 /* alice's uid */

/* alice, bob and carol (an RSA card) form the 2-of-3 quorum; dave is a
 * custodian outside it. */
static const char *const names[] = { "alice", "bob", "carol", "dave" };
#define N_CUST 4

static const char policy_fmt[] =
	"version: 1\n"
	"tokens:\n"
	"  - { name: svc, module: /usr/lib/softhsm/libsofthsm2.so, label: svc,"
	" pin_file: /nonexistent/pin }\n"
	"custodians:\n"
	"  - { name: alice, public_key: %1$s/alice.pem,"
	" roles: [custodian, security-officer], uid: 1000 }\n"
	"  - { name: bob, public_key: %1$s/bob.pem, roles: [custodian] }\n"
	"  - { name: carol, public_key: %1$s/carol.pem, roles: [custodian] }\n"
	"  - { name: dave, public_key: %1$s/dave.pem, roles: [custodian] }\n"
	"governance:\n"
	"  quorum: { m: 2, of: [alice, bob, carol] }\n"
	"  approval_ttl: 1h\n"
	"  auto_freeze: { refusals: 3, window: 60s }\n"
	"keys:\n"
	"  - { name: dek, type: aes-256, token: svc, rotate_every: 90d,"
	" destroy_after: 1d }\n"
	"  - { name: sig, type: ec-p256, token: svc }\n"
	"%2$s";

struct group {
	char dir[64];
	EVP_PKEY *keys[N_CUST];
	pol_policy *pol;	/* governed */
	pol_policy *pol2;	/* the same with one more line: another digest */
	pol_policy *ungoverned; /* no custodians, no quorum */
};

struct fx {
	struct group *gr;
	char journal[128];
	ct_gov *g;
	json_t *events;
	/* The key store as the tokens would have it. */
	ct_keyver dek[4], sig[2];
	ct_key keys[2];
	ct_keystore ks;
};

static void
emit(void *arg, json_t *ev)
{
	json_array_append_new(((struct fx *)arg)->events, ev);
}

/* How many events of this name were emitted. */
static size_t
seen(const struct fx *fx, const char *name)
{
	size_t i, n = 0;
	json_t *ev;

	json_array_foreach(fx->events, i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "event")), name) == 0)
			n++;
	return n;
}

static pol_policy *
load_policy(const char *dir, const char *extra)
{
	char doc[4096], err[512];
	pol_policy *p;
	int n = snprintf(doc, sizeof(doc), policy_fmt, dir, extra);

	assert_true(n > 0 && (size_t)n < sizeof(doc));
	if (pol_load_buffer("gov.yaml", doc, (size_t)n, &p, err, sizeof(err)) !=
	    CT_OK)
		fail_msg("policy: %s", err);
	return p;
}

static int
group_setup(void **state)
{
	static const char ungoverned[] =
		"version: 1\n"
		"tokens:\n"
		"  - { name: svc, module: /usr/lib/softhsm/libsofthsm2.so,"
		" label: svc, pin_file: /nonexistent/pin }\n"
		"keys:\n"
		"  - { name: dek, type: aes-256, token: svc }\n";
	struct group *gr = calloc(1, sizeof(*gr));
	char path[128], err[512];
	size_t i;

	if (gr == NULL)
		return -1;
	snprintf(gr->dir, sizeof(gr->dir), "/tmp/test_gov.XXXXXX");
	if (mkdtemp(gr->dir) == NULL)
		return -1;
	for (i = 0; i < N_CUST; i++) {
		gr->keys[i] = card_key(i == 2 ? "rsa" : "ec");
		snprintf(path, sizeof(path), "%s/%s.pem", gr->dir, names[i]);
		write_public_pem(gr->keys[i], path);
	}
	gr->pol = load_policy(gr->dir, "");
	gr->pol2 = load_policy(gr->dir, "# amended\n");
	if (pol_load_buffer("ungoverned.yaml", ungoverned, sizeof(ungoverned) - 1,
	    &gr->ungoverned, err, sizeof(err)) != CT_OK)
		fail_msg("policy: %s", err);
	assert_memory_not_equal(gr->pol->digest, gr->pol2->digest, 32);
	*state = gr;
	return 0;
}

static int
group_teardown(void **state)
{
	struct group *gr = *state;
	char path[128];
	size_t i;

	for (i = 0; i < N_CUST; i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", gr->dir, names[i]);
		unlink(path);
		EVP_PKEY_free(gr->keys[i]);
	}
	rmdir(gr->dir);
	pol_free(gr->pol);
	pol_free(gr->pol2);
	pol_free(gr->ungoverned);
	free(gr);
	return 0;
}

static void
open_gov(struct fx *fx)
{
	char err[512];

	if (ct_gov_open(fx->journal, emit, fx, &fx->g, err, sizeof(err)) != CT_OK)
		fail_msg("open: %s", err);
}

/* "Crash": drop everything in memory; the journal is what remains. */
static void
restart(struct fx *fx)
{
	ct_gov_free(fx->g);
	fx->g = NULL;
	open_gov(fx);
}

/* The tokens hold dek versions 1..n_dek and sig v1. */
static void
set_tokens(struct fx *fx, size_t n_dek)
{
	size_t i;

	memset(fx->dek, 0, sizeof(fx->dek));
	memset(fx->sig, 0, sizeof(fx->sig));
	for (i = 0; i < n_dek; i++)
		fx->dek[i].version = (uint32_t)i + 1;
	fx->sig[0].version = 1;
	fx->keys[0] = (ct_key){ pol_find_key(fx->gr->pol, "dek"), fx->dek, n_dek };
	fx->keys[1] = (ct_key){ pol_find_key(fx->gr->pol, "sig"), fx->sig, 1 };
	fx->ks = (ct_keystore){ fx->keys, 2 };
}

static int
setup(void **state)
{
	static unsigned seq;
	struct group *gr = *state;
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL || (fx->events = json_array()) == NULL)
		return -1;
	fx->gr = gr;
	snprintf(fx->journal, sizeof(fx->journal), "%s/state%u.journal", gr->dir,
	    seq++);
	unlink(fx->journal);
	open_gov(fx);
	set_tokens(fx, 1);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	struct group *gr = fx->gr;

	ct_gov_free(fx->g);
	unlink(fx->journal);
	json_decref(fx->events);
	free(fx);
	*state = gr;
	return 0;
}

#define FX struct fx *fx = *state
#define POL (fx->gr->pol)

static const ct_state *
st_of(const struct fx *fx)
{
	return ct_gov_state(fx->g);
}

/* Lookups on the state need a mutable pointer; the tests only read. */
static const ct_sreq *
req_of(const struct fx *fx, const char *id)
{
	return ct_state_request((ct_state *)st_of(fx), id);
}

static const ct_sver *
ver_of(const struct fx *fx, const char *key, uint32_t v)
{
	return ct_state_version((ct_state *)st_of(fx), key, v);
}

/* First start: admit the policy and adopt what the tokens hold. */
static void
first_start(struct fx *fx, int64_t now)
{
	ct_gov_work work[CT_GOV_WORK_MAX];
	char why[256];
	size_t n;

	assert_int_equal(ct_gov_admit_policy(fx->g, POL, why, sizeof(why)), CT_OK);
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, now, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
}

/* Open a request as the officer; its id goes to id. */
static ct_err
open_req(struct fx *fx, const pol_policy *pol, ct_action a, const char *key,
	 uint32_t version, const uint8_t *digest, int64_t now,
	 char id[CT_REQ_ID_LEN + 1])
{
	char msg[256];
	json_t *res;
	ct_stmt s;
	ct_err r;

	memset(&s, 0, sizeof(s));
	s.action = a;
	snprintf(s.key, sizeof(s.key), "%s", key);
	s.version = version;
	if (digest != NULL) {
		s.has_digest = true;
		memcpy(s.digest, digest, 32);
	}
	id[0] = '\0';
	r = ct_gov_request(fx->g, pol, OFFICER, &s, now, &res, msg, sizeof(msg));
	if (r == CT_OK) {
		snprintf(id, CT_REQ_ID_LEN + 1, "%s",
		    json_string_value(json_object_get(res, "request")));
		assert_int_equal(strlen(id), CT_REQ_ID_LEN);
		assert_string_equal(json_string_value(json_object_get(res,
		    "state")), "open");
	} else
		assert_null(res);
	json_decref(res);
	return r;
}

static EVP_PKEY *
key_of(const struct fx *fx, const char *who)
{
	size_t i;

	for (i = 0; i < N_CUST; i++)
		if (strcmp(names[i], who) == 0)
			return fx->gr->keys[i];
	return fx->gr->keys[0]; /* someone not in the policy signs with alice's */
}

/* What custodianctl shows the custodian: the statement, from the daemon. */
static void
sign_request(struct fx *fx, const char *id, EVP_PKEY *k, bool approve,
	     int64_t now, uint8_t **sig, size_t *siglen)
{
	json_t *show = ct_gov_show(fx->g, POL, id, now);
	json_t *text = json_object_get(show, "statement");

	assert_non_null(text);
	card_sign(k, json_string_value(text), json_string_length(text), approve,
	    sig, siglen);
	json_decref(show);
}

static ct_err
approve_with(struct fx *fx, const pol_policy *pol, const char *id,
	     const char *who, bool approve, const uint8_t *sig, size_t siglen,
	     int64_t now, ct_gov_work *w, bool *has)
{
	char msg[256] = "";
	uint64_t lines = st_of(fx)->lines;
	json_t *res;
	ct_err r;

	memset(w, 0, sizeof(*w));
	r = ct_gov_approve(fx->g, pol, id, who, approve, sig, siglen, now, &res,
	    w, has, msg, sizeof(msg));
	if (r != CT_OK) {
		/* A refusal says why, journals nothing and hands back nothing. */
		assert_null(res);
		assert_false(*has);
		assert_true(msg[0] != '\0');
		assert_int_equal(st_of(fx)->lines, lines);
	}
	json_decref(res);
	return r;
}

/* A custodian's decision signed by their own card. */
static ct_err
decide(struct fx *fx, const pol_policy *pol, const char *id, const char *who,
       bool approve, int64_t now, ct_gov_work *w, bool *has)
{
	uint8_t *sig;
	size_t siglen;
	ct_err r;

	sign_request(fx, id, key_of(fx, who), approve, now, &sig, &siglen);
	r = approve_with(fx, pol, id, who, approve, sig, siglen, now, w, has);
	free(sig);
	return r;
}

static void
approve_no_work(struct fx *fx, const char *id, const char *who, int64_t now)
{
	ct_gov_work w;
	bool has;

	assert_int_equal(decide(fx, POL, id, who, true, now, &w, &has), CT_OK);
	assert_false(has);
}

/* Two approvals of a rotation: the token work comes back. */
static void
approve_rotation(struct fx *fx, const char *id, int64_t now, ct_gov_work *w)
{
	bool has;

	approve_no_work(fx, id, "alice", now);
	assert_int_equal(decide(fx, POL, id, "bob", true, now, w, &has), CT_OK);
	assert_true(has);
}

static size_t
journal_count(const struct fx *fx, const char *needle)
{
	char buf[65536];
	size_t n = 0;
	ssize_t len;
	const char *p;
	int fd = open(fx->journal, O_RDONLY);

	assert_true(fd >= 0);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(len >= 0 && (size_t)len < sizeof(buf) - 1);
	buf[len] = '\0';
	for (p = buf; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Everything the state holds, as one canonical string. */
static char *
dump_state(const ct_state *st)
{
	json_t *o = json_object(), *vers = json_array(), *reqs = json_array(),
	       *fr = json_array(), *ap = json_array(), *bk = json_array(), *a;
	char hex[65];
	size_t i, j;
	char *s;

	for (i = 0; i < st->n_vers; i++)
		json_array_append_new(vers, json_pack("{s:s, s:I, s:s, s:I, s:I}",
		    "key", st->vers[i].key, "version",
		    (json_int_t)st->vers[i].version, "state",
		    ct_vstate_name(st->vers[i].state), "created",
		    (json_int_t)st->vers[i].created, "revoked",
		    (json_int_t)st->vers[i].revoked));
	for (i = 0; i < st->n_reqs; i++) {
		a = json_array();
		for (j = 0; j < st->reqs[i].n_approvals; j++)
			json_array_append_new(a, json_pack("{s:s, s:b}", "c",
			    st->reqs[i].approvals[j].custodian, "ok",
			    st->reqs[i].approvals[j].approve));
		json_array_append_new(reqs, json_pack("{s:s%, s:s, s:s, s:s, s:o}",
		    "text", st->reqs[i].text, st->reqs[i].text_len, "by",
		    st->reqs[i].by, "state", ct_rqstate_name(st->reqs[i].state),
		    "result", st->reqs[i].result, "approvals", a));
	}
	for (i = 0; i < st->n_frozen; i++)
		json_array_append_new(fr, json_string(st->frozen[i]));
	for (i = 0; i < st->n_approved; i++) {
		ct_hex(st->approved[i], 32, hex);
		json_array_append_new(ap, json_string(hex));
	}
	for (i = 0; i < st->n_backups; i++) {
		ct_hex(st->backups[i].digest, 32, hex);
		json_array_append_new(bk, json_pack("{s:s, s:s, s:s}", "id",
		    st->backups[i].id, "digest", hex, "signer",
		    st->backups[i].signer_pem));
	}
	ct_hex(st->policy, 32, hex);
	json_object_set_new(o, "versions", vers);
	json_object_set_new(o, "requests", reqs);
	json_object_set_new(o, "frozen_all", json_boolean(st->frozen_all));
	json_object_set_new(o, "frozen", fr);
	json_object_set_new(o, "has_policy", json_boolean(st->has_policy));
	json_object_set_new(o, "policy", json_string(hex));
	json_object_set_new(o, "governed", json_boolean(st->policy_governed));
	json_object_set_new(o, "approved", ap);
	json_object_set_new(o, "backups", bk);
	json_object_set_new(o, "lines", json_integer((json_int_t)st->lines));
	s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static void
append_bytes(const char *path, const char *bytes)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
	close(fd);
}

/* A history with every kind of record; fx->g is left open. */
static void
make_history(struct fx *fx)
{
	uint8_t digest[32] = { 1, 2, 3 };
	char id[CT_REQ_ID_LEN + 1];
	ct_gov_work w;
	bool has;

	first_start(fx, T0);
	/* A rotation, run. */
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0 + 10,
	    id), CT_OK);
	approve_rotation(fx, id, T0 + 20, &w);
	assert_int_equal(ct_gov_finish(fx->g, &w, CT_OK, T0 + 30), CT_OK);
	/* A revocation: a state change only. */
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL, T0 + 40,
	    id), CT_OK);
	approve_no_work(fx, id, "bob", T0 + 50);
	approve_no_work(fx, id, "carol", T0 + 60);
	/* A key frozen by one custodian. */
	assert_int_equal(open_req(fx, POL, CT_ACT_FREEZE, "sig", 0, NULL, T0 + 70,
	    id), CT_OK);
	approve_no_work(fx, id, "dave", T0 + 80);
	/* A denied policy change, and an approved one. */
	assert_int_equal(open_req(fx, POL, CT_ACT_POLICY, "", 0, digest, T0 + 90,
	    id), CT_OK);
	assert_int_equal(decide(fx, POL, id, "carol", false, T0 + 100, &w, &has),
	    CT_OK);
	assert_int_equal(open_req(fx, POL, CT_ACT_POLICY, "", 0,
	    fx->gr->pol2->digest, T0 + 110, id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 120);
	approve_no_work(fx, id, "carol", T0 + 130);
	/* A rotation that failed on the token, and one still open. */
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "sig", 0, NULL, T0 + 140,
	    id), CT_OK);
	approve_rotation(fx, id, T0 + 150, &w);
	assert_int_equal(ct_gov_finish(fx->g, &w, CT_ERR_TOKEN, T0 + 160), CT_OK);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0 + 170,
	    id), CT_OK);
	approve_no_work(fx, id, "bob", T0 + 180);
}

static void
test_replay(void **state)
{
	FX;
	char *before, *after, err[256];
	ct_state *st;
	const ct_sver *v;

	make_history(fx);
	before = dump_state(st_of(fx));
	/* What the history left, so that the comparison is not of nothing. */
	assert_int_equal(st_of(fx)->n_reqs, 7);
	assert_non_null(v = ver_of(fx, "dek", 2));
	assert_int_equal(v->state, CT_VS_ACTIVE);
	assert_int_equal(v->created, T0 + 30);
	assert_non_null(v = ver_of(fx, "dek", 1));
	assert_int_equal(v->state, CT_VS_REVOKED);
	assert_int_equal(v->revoked, T0 + 60);
	assert_null(ver_of(fx, "sig", 2));
	assert_true(ct_state_frozen(st_of(fx), "sig"));
	assert_false(ct_state_frozen(st_of(fx), "dek"));
	assert_true(ct_state_policy_approved(st_of(fx), fx->gr->pol2->digest));
	assert_int_equal(st_of(fx)->reqs[3].state, CT_RQ_DENIED);
	assert_int_equal(st_of(fx)->reqs[5].state, CT_RQ_FAILED);
	assert_string_equal(st_of(fx)->reqs[5].result, "token_error");
	assert_int_equal(st_of(fx)->reqs[6].state, CT_RQ_OPEN);
	assert_int_equal(st_of(fx)->reqs[6].n_approvals, 1);

	/* The journal alone gives the same state, through ct_gov or not. */
	restart(fx);
	after = dump_state(st_of(fx));
	assert_string_equal(before, after);
	free(after);
	if (ct_state_open(fx->journal, &st, err, sizeof(err)) != CT_OK)
		fail_msg("%s", err);
	after = dump_state(st);
	assert_string_equal(before, after);
	ct_state_free(st);
	free(after);
	free(before);
}

static void
test_torn_last_line(void **state)
{
	FX;
	char *before, *after, id[CT_REQ_ID_LEN + 1];
	off_t size;

	make_history(fx);
	before = dump_state(st_of(fx));
	size = file_size(fx->journal);
	ct_gov_free(fx->g);
	fx->g = NULL;
	/* The crash came in the middle of writing a line. */
	append_bytes(fx->journal, "{\"id\":\"0123456789abcdef\",\"t\":\"beg");
	open_gov(fx);
	assert_int_equal(file_size(fx->journal), size);
	after = dump_state(st_of(fx));
	assert_string_equal(before, after);
	free(after);
	/* A whole record without its newline was not synced either. */
	ct_gov_free(fx->g);
	fx->g = NULL;
	append_bytes(fx->journal, "{\"governed\":false,\"t\":\"policy\",\"digest\":"
	    "\"0000000000000000000000000000000000000000000000000000000000000000\"}");
	open_gov(fx);
	assert_int_equal(file_size(fx->journal), size);
	/* And the journal goes on from there. */
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 2, NULL, T0 + 200,
	    id), CT_OK);
	restart(fx);
	assert_non_null(req_of(fx, id));
	assert_int_equal(st_of(fx)->lines, journal_count(fx, "\n"));
	free(before);
}

/* The journal's bytes, or the journal made of them. */
static size_t
read_journal(const struct fx *fx, char *buf, size_t cap)
{
	int fd = open(fx->journal, O_RDONLY);
	ssize_t len;

	assert_true(fd >= 0);
	len = read(fd, buf, cap);
	close(fd);
	assert_true(len >= 0 && (size_t)len < cap);
	return (size_t)len;
}

static void
write_journal(const struct fx *fx, const char *buf, size_t len)
{
	int fd = open(fx->journal, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* The journal saved in buf, with its line `line` (1-based) replaced. */
static void
replace_line(struct fx *fx, const char *buf, size_t len, unsigned line,
	     const char *with)
{
	char out[65536 + 256];
	size_t off = 0, o = 0, l;
	unsigned n = 1;
	const char *nl;

	while (off < len) {
		nl = memchr(buf + off, '\n', len - off);
		assert_non_null(nl);
		l = (size_t)(nl - buf) + 1 - off;
		if (n++ == line) {
			memcpy(out + o, with, strlen(with));
			o += strlen(with);
			out[o++] = '\n';
		} else {
			memcpy(out + o, buf + off, l);
			o += l;
		}
		off += l;
	}
	assert_true(n > line);
	write_journal(fx, out, o);
}

/* The open is refused with a message that starts "path:line: ", and
 * refusing touches nothing: the journal is evidence. */
static void
refused_naming(struct fx *fx, unsigned line)
{
	char err[512] = "", want[160];
	off_t size = file_size(fx->journal);
	ct_state *st;
	ct_gov *g;

	assert_int_equal(ct_state_open(fx->journal, &st, err, sizeof(err)),
	    CT_ERR_POLICY);
	assert_null(st);
	snprintf(want, sizeof(want), "%s:%u: ", fx->journal, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err, want);
	assert_int_equal(ct_gov_open(fx->journal, emit, fx, &g, err,
	    sizeof(err)), CT_ERR_POLICY);
	assert_null(g);
	assert_int_equal(file_size(fx->journal), size);
}

static void
test_corrupt_line(void **state)
{
	static const char *const bad[] = {
		"{not json",
		"",
		"[]",
		"{}",
		"{\"t\":\"unknown\"}",
		"{\"t\":\"begin\",\"id\":\"ffffffffffffffff\"}",
		"{\"t\":\"version\",\"key\":\"dek\",\"version\":0,"
		"\"state\":\"active\",\"time\":1}",
		"{\"t\":\"version\",\"key\":\"dek\",\"version\":5,"
		"\"state\":\"destroyed\",\"time\":1}",
		"{\"t\":\"version\",\"key\":\"../x\",\"version\":5,"
		"\"state\":\"active\",\"time\":1}",
		"{\"t\":\"policy\",\"digest\":\"00\",\"governed\":true}",
		"{\"t\":\"request\",\"statement\":\"custodian-statement: 1\\n\","
		"\"by\":\"x\"}",
		"{\"t\":\"version\",\"t\":\"version\"}",
		"{\"t\":\"policy\"} trailing",
	};
	static char saved[65536];
	FX;
	char rec[128], err[256] = "";
	size_t i, len;
	uint64_t lines;
	ct_state *st;

	make_history(fx);
	lines = st_of(fx)->lines;
	assert_true(lines > 10);
	/* The first rotation is done: it cannot begin again. */
	snprintf(rec, sizeof(rec), "{\"t\":\"begin\",\"id\":\"%s\"}",
	    st_of(fx)->reqs[0].stmt.id);
	ct_gov_free(fx->g);
	fx->g = NULL;
	len = read_journal(fx, saved, sizeof(saved));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		replace_line(fx, saved, len, 5, bad[i]);
		refused_naming(fx, 5);
	}
	/* Well-formed, but contradicting the records before it. */
	replace_line(fx, saved, len, (unsigned)lines, rec);
	refused_naming(fx, (unsigned)lines);
	/* A bad last line with its newline was synced: refused, not cut. */
	write_journal(fx, saved, len);
	append_bytes(fx->journal, "{\"t\":\"done\"}\n");
	refused_naming(fx, (unsigned)lines + 1);
	/* Others may not read or write the journal. */
	write_journal(fx, saved, len);
	assert_int_equal(chmod(fx->journal, 0644), 0);
	assert_int_equal(ct_state_open(fx->journal, &st, err, sizeof(err)),
	    CT_ERR_IO);
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(chmod(fx->journal, 0600), 0);
	open_gov(fx);
}

/* 2 of alice, bob, carol: who counts, and what comes back. */
static void
test_quorum(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1], changed[CT_STMT_MAX];
	const ct_sreq *q;
	ct_gov_work w, late;
	uint8_t *sig;
	size_t siglen;
	bool has;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0, id),
	    CT_OK);
	assert_non_null(q = req_of(fx, id));
	assert_int_equal(q->stmt.version, 2); /* above what the tokens hold */
	assert_int_equal(seen(fx, "request_opened"), 1);
	/* The same rotation cannot be opened twice. */
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0 + 1,
	    changed), CT_ERR_EXISTS);

	/* One approval leaves it open. */
	assert_int_equal(decide(fx, POL, id, "alice", true, T0 + 10, &w, &has),
	    CT_OK);
	assert_false(has);
	assert_int_equal(q->state, CT_RQ_OPEN);
	assert_int_equal(q->n_approvals, 1);
	/* Twice is once; outside the quorum, or unknown, is refused. */
	assert_int_equal(decide(fx, POL, id, "alice", true, T0 + 11, &w, &has),
	    CT_ERR_APPROVAL);
	assert_int_equal(decide(fx, POL, id, "alice", false, T0 + 11, &w, &has),
	    CT_ERR_APPROVAL);
	assert_int_equal(decide(fx, POL, id, "dave", true, T0 + 12, &w, &has),
	    CT_ERR_APPROVAL);
	assert_int_equal(decide(fx, POL, id, "nobody", true, T0 + 12, &w, &has),
	    CT_ERR_APPROVAL);
	assert_int_equal(approve_with(fx, POL, "0000000000000000", "bob", true,
	    (const uint8_t *)"sig", 3, T0 + 12, &w, &has), CT_ERR_NO_SUCH_REQUEST);

	/* Signatures that are not bob's over this statement and decision. */
	sign_request(fx, id, key_of(fx, "alice"), true, T0, &sig, &siglen);
	assert_int_equal(approve_with(fx, POL, id, "bob", true, sig, siglen,
	    T0 + 13, &w, &has), CT_ERR_APPROVAL);
	free(sig);
	sign_request(fx, id, key_of(fx, "bob"), false, T0, &sig, &siglen);
	assert_int_equal(approve_with(fx, POL, id, "bob", true, sig, siglen,
	    T0 + 13, &w, &has), CT_ERR_APPROVAL);
	free(sig);
	sign_request(fx, id, key_of(fx, "bob"), true, T0, &sig, &siglen);
	assert_int_equal(approve_with(fx, POL, id, "bob", true, sig, siglen - 1,
	    T0 + 13, &w, &has), CT_ERR_APPROVAL);
	free(sig);
	snprintf(changed, sizeof(changed), "%s", q->text);
	*strstr(changed, "version: 2\n") = '\0';
	snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed),
	    "version: 3\n%s", strstr(q->text, "policy: "));
	card_sign(key_of(fx, "bob"), changed, q->text_len, true, &sig, &siglen);
	assert_int_equal(approve_with(fx, POL, id, "bob", true, sig, siglen,
	    T0 + 13, &w, &has), CT_ERR_APPROVAL);
	free(sig);
	/* carol's RSA card signs PKCS#1 v1.5; PSS is not what was agreed. */
	card_sign_with(key_of(fx, "carol"), q->text, q->text_len, true, true,
	    &sig, &siglen);
	assert_int_equal(approve_with(fx, POL, id, "carol", true, sig, siglen,
	    T0 + 13, &w, &has), CT_ERR_APPROVAL);
	free(sig);
	assert_int_equal(q->n_approvals, 1);
	assert_int_equal(q->state, CT_RQ_OPEN);
	assert_int_equal(seen(fx, "approved"), 1);

	/* The second distinct custodian (carol, RSA) completes the quorum. */
	assert_int_equal(decide(fx, POL, id, "carol", true, T0 + 20, &w, &has),
	    CT_OK);
	assert_true(has);
	assert_string_equal(w.id, id);
	assert_int_equal(w.action, CT_ACT_ROTATE);
	assert_string_equal(w.key, "dek");
	assert_int_equal(w.version, 2);
	assert_int_equal(q->state, CT_RQ_RUNNING);
	assert_int_equal(journal_count(fx, "\"t\":\"begin\""), 1);
	assert_int_equal(seen(fx, "request_running"), 1);
	assert_null(ver_of(fx, "dek", 2)); /* not before the token made it */
	assert_int_equal(decide(fx, POL, id, "bob", true, T0 + 21, &late, &has),
	    CT_ERR_REQUEST_CLOSED);

	assert_int_equal(ct_gov_finish(fx->g, &w, CT_OK, T0 + 30), CT_OK);
	assert_int_equal(q->state, CT_RQ_DONE);
	assert_string_equal(q->result, "ok");
	assert_non_null(ver_of(fx, "dek", 2));
	assert_int_equal(ver_of(fx, "dek", 2)->state, CT_VS_ACTIVE);
	assert_int_equal(seen(fx, "request_done"), 1);
	/* Finishing it again is a mistake of the caller's, not a new state. */
	assert_int_equal(ct_gov_finish(fx->g, &w, CT_OK, T0 + 31), CT_ERR_INTERNAL);
	/* The next rotation names v3. */
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0 + 40,
	    id), CT_OK);
	assert_int_equal(req_of(fx, id)->stmt.version, 3);
}

/* Only the officer opens requests; a freeze takes any one custodian. */
static void
test_request_refusals(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1], msg[256];
	json_t *res;
	ct_stmt s;

	first_start(fx, T0);
	memset(&s, 0, sizeof(s));
	s.action = CT_ACT_ROTATE;
	strcpy(s.key, "dek");
	assert_int_equal(ct_gov_request(fx->g, POL, 4242, &s, T0, &res, msg,
	    sizeof(msg)), CT_ERR_NOT_AUTHORIZED);
	assert_null(res);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "nope", 0, NULL, T0, id),
	    CT_ERR_NO_SUCH_KEY);
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 7, NULL, T0, id),
	    CT_ERR_NO_SUCH_VERSION);
	assert_int_equal(open_req(fx, POL, CT_ACT_UNFREEZE, "", 0, NULL, T0, id),
	    CT_ERR_BAD_REQUEST);
	assert_int_equal(open_req(fx, POL, CT_ACT_POLICY, "", 0, POL->digest, T0,
	    id), CT_ERR_EXISTS);
	assert_int_equal(open_req(fx, POL, CT_ACT_BACKUP, "", 0, NULL, T0, id),
	    CT_ERR_POLICY); /* no audit key to sign it */
	assert_int_equal(st_of(fx)->n_reqs, 0);
	/* The whole service frozen by one custodian's approval. */
	assert_int_equal(open_req(fx, POL, CT_ACT_FREEZE, "", 0, NULL, T0, id),
	    CT_OK);
	approve_no_work(fx, id, "dave", T0 + 1);
	assert_true(ct_state_frozen(st_of(fx), NULL));
	assert_true(ct_state_frozen(st_of(fx), "dek"));
	assert_int_equal(open_req(fx, POL, CT_ACT_FREEZE, "dek", 0, NULL, T0 + 2,
	    id), CT_ERR_EXISTS);
}

static void
test_expiry_deny_policy_change(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1], id2[CT_REQ_ID_LEN + 1];
	ct_gov_work w;
	json_t *show;
	bool has;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL, T0, id),
	    CT_OK);
	approve_no_work(fx, id, "alice", T0 + HOUR - 1);
	/* approval_ttl is 1h: at the instant it ends the request is closed. */
	assert_int_equal(decide(fx, POL, id, "bob", true, T0 + HOUR, &w, &has),
	    CT_ERR_REQUEST_CLOSED);
	show = ct_gov_show(fx->g, POL, id, T0 + HOUR);
	assert_string_equal(json_string_value(json_object_get(show, "state")),
	    "expired");
	json_decref(show);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_ACTIVE);
	/* Expired, it no longer blocks a new request for the same thing. */
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL,
	    T0 + HOUR, id2), CT_OK);

	/* A denial closes it at once. */
	assert_int_equal(decide(fx, POL, id2, "carol", false, T0 + HOUR + 1, &w,
	    &has), CT_OK);
	assert_false(has);
	assert_int_equal(req_of(fx, id2)->state, CT_RQ_DENIED);
	assert_int_equal(seen(fx, "denied"), 1);
	assert_int_equal(decide(fx, POL, id2, "alice", true, T0 + HOUR + 2, &w,
	    &has), CT_ERR_REQUEST_CLOSED);
	assert_int_equal(decide(fx, POL, id2, "bob", true, T0 + HOUR + 2, &w,
	    &has), CT_ERR_REQUEST_CLOSED);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_ACTIVE);

	/* Approvals are against the policy the request was opened under. */
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL,
	    T0 + 2 * HOUR, id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 2 * HOUR);
	assert_int_equal(decide(fx, fx->gr->pol2, id, "bob", true,
	    T0 + 2 * HOUR + 1, &w, &has), CT_ERR_REQUEST_CLOSED);
	assert_int_equal(req_of(fx, id)->n_approvals, 1);
	/* Under the policy it names, it completes. */
	approve_no_work(fx, id, "bob", T0 + 2 * HOUR + 2);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_REVOKED);
	assert_int_equal(ver_of(fx, "dek", 1)->revoked, T0 + 2 * HOUR + 2);
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL,
	    T0 + 3 * HOUR, id), CT_ERR_REVOKED);
}

/* Quorum journaled, then the crash, before "begin". */
static void
test_crash_before_begin(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1], err[256];
	ct_gov_work work[CT_GOV_WORK_MAX], w;
	uint8_t *sig;
	size_t siglen, n;
	ct_state *st;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0, id),
	    CT_OK);
	approve_no_work(fx, id, "alice", T0 + 1);
	sign_request(fx, id, key_of(fx, "bob"), true, T0, &sig, &siglen);
	ct_gov_free(fx->g);
	fx->g = NULL;
	/* bob's approval reached the journal; the daemon died right after. */
	if (ct_state_open(fx->journal, &st, err, sizeof(err)) != CT_OK)
		fail_msg("%s", err);
	assert_int_equal(ct_state_append(st, ct_rec_approval(id, "bob", true,
	    sig, siglen)), CT_OK);
	ct_state_free(st);
	free(sig);
	open_gov(fx);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_OPEN);
	assert_int_equal(journal_count(fx, "\"t\":\"begin\""), 0);

	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 5, work, &n),
	    CT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(work[0].id, id);
	assert_int_equal(work[0].action, CT_ACT_ROTATE);
	assert_string_equal(work[0].key, "dek");
	assert_int_equal(work[0].version, 2);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_RUNNING);
	assert_int_equal(journal_count(fx, "\"t\":\"begin\""), 1);
	/* While it is in flight, nothing is handed out again. */
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 6, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(journal_count(fx, "\"t\":\"begin\""), 1);
	w = work[0];
	assert_int_equal(ct_gov_finish(fx->g, &w, CT_OK, T0 + 7), CT_OK);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_DONE);
	/* The store rescanned after the work: v2 is ours and usable. */
	set_tokens(fx, 2);
	fx->dek[1].use = CT_KV_UNKNOWN;
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 8, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(fx->dek[1].use, CT_KV_OK);
	assert_int_equal(seen(fx, "unknown_object"), 0);
}

/* Crash after "begin": the work is resumed once, or found done. */
static void
test_crash_while_running(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1];
	ct_gov_work work[CT_GOV_WORK_MAX], w;
	size_t n;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0, id),
	    CT_OK);
	approve_rotation(fx, id, T0 + 1, &w);
	/* The token never made it: the work comes back once. */
	restart(fx);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_RUNNING);
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 2, work, &n),
	    CT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(work[0].version, 2);
	assert_string_equal(work[0].id, id);
	assert_int_equal(seen(fx, "request_resumed"), 1);
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 3, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(seen(fx, "request_resumed"), 1);

	/* Again, but this time the token made v2 before the crash. */
	restart(fx);
	set_tokens(fx, 2);
	fx->dek[1].use = CT_KV_UNKNOWN;
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 4, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_DONE);
	assert_non_null(ver_of(fx, "dek", 2));
	assert_int_equal(ver_of(fx, "dek", 2)->state, CT_VS_ACTIVE);
	assert_int_equal(fx->dek[1].use, CT_KV_OK);
	assert_int_equal(seen(fx, "unknown_object"), 0);
	assert_int_equal(journal_count(fx, "\"t\":\"done\""), 1);
	/* And it stays done across another restart. */
	restart(fx);
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 5, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(journal_count(fx, "\"t\":\"done\""), 1);
}

/* Objects the state does not know, of a governed key, are not used. */
static void
test_unknown_objects(void **state)
{
	FX;
	ct_gov_work work[CT_GOV_WORK_MAX];
	char id[CT_REQ_ID_LEN + 1];
	json_t *status;
	size_t n;

	first_start(fx, T0);
	set_tokens(fx, 3); /* v2 and v3 appeared behind the daemon's back */
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 1, work, &n),
	    CT_OK);
	assert_int_equal(fx->dek[0].use, CT_KV_OK);
	assert_int_equal(fx->dek[1].use, CT_KV_UNKNOWN);
	assert_int_equal(fx->dek[2].use, CT_KV_UNKNOWN);
	assert_int_equal(seen(fx, "unknown_object"), 2);
	assert_null(ver_of(fx, "dek", 3));
	status = ct_gov_status(fx->g, POL, T0 + 1);
	assert_int_equal(json_array_size(json_object_get(status,
	    "unknown_objects")), 2);
	json_decref(status);
	/* A rotation never reuses their labels. */
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0 + 2,
	    id), CT_OK);
	assert_int_equal(req_of(fx, id)->stmt.version, 4);
	/* A version the state has that the token lost is reported. */
	set_tokens(fx, 0);
	fx->keys[0].n_vers = 0;
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 3, work, &n),
	    CT_OK);
	assert_int_equal(seen(fx, "version_missing"), 1);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_ACTIVE);
}

static void
test_tick(void **state)
{
	FX;
	ct_gov_work work[CT_GOV_WORK_MAX];
	char id[CT_REQ_ID_LEN + 1];
	const ct_sreq *q;
	int64_t due = T0 + 90 * DAY, revoked;
	json_t *list;
	size_t n;

	first_start(fx, T0);
	assert_int_equal(ct_gov_tick(fx->g, POL, due - 1, work, &n), CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(st_of(fx)->n_reqs, 0);
	/* rotate_every has passed: a rotation request opens, once. */
	assert_int_equal(ct_gov_tick(fx->g, POL, due, work, &n), CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(st_of(fx)->n_reqs, 1);
	q = &st_of(fx)->reqs[0];
	assert_int_equal(q->stmt.action, CT_ACT_ROTATE);
	assert_string_equal(q->stmt.key, "dek");
	assert_int_equal(q->stmt.version, 2);
	assert_int_equal(q->stmt.created, due);
	assert_string_equal(q->by, "daemon (rotation due)");
	assert_int_equal(seen(fx, "rotation_due"), 1);
	assert_int_equal(ct_gov_tick(fx->g, POL, due + 60, work, &n), CT_OK);
	assert_int_equal(st_of(fx)->n_reqs, 1);
	assert_int_equal(seen(fx, "rotation_due"), 1);
	list = ct_gov_due(fx->g, POL, due + 60);
	assert_int_equal(json_array_size(list), 1); /* sig has no schedule */
	assert_true(json_is_true(json_object_get(json_array_get(list, 0),
	    "overdue")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(list,
	    0), "request")), q->stmt.id);
	json_decref(list);

	/* A revoked version is destroyed after destroy_after (1d). */
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL,
	    due + 100, id), CT_OK);
	revoked = due + 200;
	approve_no_work(fx, id, "alice", revoked);
	approve_no_work(fx, id, "bob", revoked);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_REVOKED);
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + DAY - 1, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + DAY, work, &n), CT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(work[0].action, CT_ACT_REVOKE);
	assert_string_equal(work[0].key, "dek");
	assert_int_equal(work[0].version, 1);
	/* Not again while it is in flight. */
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + DAY + 1, work + 1, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	/* A failure leaves it revoked, to be tried again. */
	assert_int_equal(ct_gov_finish(fx->g, &work[0], CT_ERR_TOKEN,
	    revoked + DAY + 2), CT_ERR_TOKEN);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_REVOKED);
	assert_int_equal(seen(fx, "destroy_failed"), 1);
	/* Retried after a minute, not at every tick. */
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + DAY + 3, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + DAY + 62, work, &n),
	    CT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ct_gov_finish(fx->g, &work[0], CT_OK, revoked + DAY + 63),
	    CT_OK);
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_DESTROYED);
	assert_int_equal(seen(fx, "version_destroyed"), 1);
	assert_int_equal(ct_gov_tick(fx->g, POL, revoked + 2 * DAY, work, &n),
	    CT_OK);
	assert_int_equal(n, 0);
}

static void
test_auto_freeze(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1];
	ct_gov_work w;
	bool has;

	first_start(fx, T0);
	/* refusals: 3, window: 60s.  Spread out, nothing happens. */
	ct_gov_note_refusal(fx->g, POL, T0);
	ct_gov_note_refusal(fx->g, POL, T0 + 30);
	ct_gov_note_refusal(fx->g, POL, T0 + 61);
	ct_gov_note_refusal(fx->g, POL, T0 + 130);
	ct_gov_note_refusal(fx->g, POL, T0 + 200);
	ct_gov_note_refusal(fx->g, POL, T0 + 250);
	assert_false(st_of(fx)->frozen_all);
	assert_int_equal(seen(fx, "auto_freeze"), 0);
	/* Three within the window: the service freezes. */
	ct_gov_note_refusal(fx->g, POL, T0 + 400);
	ct_gov_note_refusal(fx->g, POL, T0 + 401);
	assert_false(st_of(fx)->frozen_all);
	ct_gov_note_refusal(fx->g, POL, T0 + 459);
	assert_true(st_of(fx)->frozen_all);
	assert_int_equal(seen(fx, "auto_freeze"), 1);
	assert_int_equal(st_of(fx)->reqs[st_of(fx)->n_reqs - 1].state, CT_RQ_DONE);
	/* More refusals do not freeze it again. */
	ct_gov_note_refusal(fx->g, POL, T0 + 460);
	ct_gov_note_refusal(fx->g, POL, T0 + 461);
	ct_gov_note_refusal(fx->g, POL, T0 + 462);
	assert_int_equal(seen(fx, "auto_freeze"), 1);
	/* It survives a restart, and lifting it takes the quorum. */
	restart(fx);
	assert_true(st_of(fx)->frozen_all);
	assert_int_equal(open_req(fx, POL, CT_ACT_UNFREEZE, "", 0, NULL, T0 + 500,
	    id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 501);
	assert_true(st_of(fx)->frozen_all);
	assert_int_equal(decide(fx, POL, id, "carol", true, T0 + 502, &w, &has),
	    CT_OK);
	assert_false(st_of(fx)->frozen_all);
	/* A policy without auto_freeze never freezes. */
	ct_gov_note_refusal(fx->g, fx->gr->ungoverned, T0 + 600);
	ct_gov_note_refusal(fx->g, fx->gr->ungoverned, T0 + 600);
	ct_gov_note_refusal(fx->g, fx->gr->ungoverned, T0 + 600);
	ct_gov_note_refusal(fx->g, fx->gr->ungoverned, T0 + 600);
	assert_false(st_of(fx)->frozen_all);
}

static void
check_how(struct fx *fx, const pol_policy *pol, ct_err want, const char *how)
{
	const char *h = NULL;
	char why[512] = "";

	assert_int_equal(ct_gov_check_policy(fx->g, pol, &h, why, sizeof(why)),
	    want);
	if (want == CT_OK)
		assert_string_equal(h, how);
	else
		assert_non_null(strstr(why, "not approved"));
}

static void
test_policy_admission(void **state)
{
	FX;
	const pol_policy *pol2 = fx->gr->pol2;
	char id[CT_REQ_ID_LEN + 1], why[512];
	uint64_t lines;

	/* The first policy is admitted and recorded. */
	check_how(fx, POL, CT_OK, "first");
	assert_int_equal(ct_gov_admit_policy(fx->g, POL, why, sizeof(why)), CT_OK);
	assert_true(st_of(fx)->has_policy);
	assert_true(st_of(fx)->policy_governed);
	assert_memory_equal(st_of(fx)->policy, POL->digest, 32);
	assert_int_equal(seen(fx, "policy_in_force"), 1);
	check_how(fx, POL, CT_OK, "in force");
	lines = st_of(fx)->lines;
	assert_int_equal(ct_gov_admit_policy(fx->g, POL, why, sizeof(why)), CT_OK);
	assert_int_equal(st_of(fx)->lines, lines); /* nothing new to record */

	/* A change nobody approved is refused while the policy is governed. */
	check_how(fx, pol2, CT_ERR_POLICY, NULL);
	assert_int_equal(ct_gov_admit_policy(fx->g, pol2, why, sizeof(why)),
	    CT_ERR_POLICY);
	assert_memory_equal(st_of(fx)->policy, POL->digest, 32);
	assert_int_equal(st_of(fx)->lines, lines);
	restart(fx);
	check_how(fx, pol2, CT_ERR_POLICY, NULL);

	/* Approved by the quorum, its digest is admitted, once. */
	assert_int_equal(open_req(fx, POL, CT_ACT_POLICY, "", 0, pol2->digest, T0,
	    id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 1);
	check_how(fx, pol2, CT_ERR_POLICY, NULL);
	approve_no_work(fx, id, "bob", T0 + 2);
	assert_true(ct_state_policy_approved(st_of(fx), pol2->digest));
	check_how(fx, pol2, CT_OK, "approved");
	restart(fx);
	check_how(fx, pol2, CT_OK, "approved");
	assert_int_equal(ct_gov_admit_policy(fx->g, pol2, why, sizeof(why)), CT_OK);
	assert_memory_equal(st_of(fx)->policy, pol2->digest, 32);
	assert_false(ct_state_policy_approved(st_of(fx), pol2->digest));
	check_how(fx, pol2, CT_OK, "in force");
	/* Going back needs approval too. */
	check_how(fx, POL, CT_ERR_POLICY, NULL);

	/* A policy that sets no quorum lets the next one in unapproved. */
	restart(fx);
	assert_int_equal(ct_gov_admit_policy(fx->g, fx->gr->ungoverned, why,
	    sizeof(why)), CT_ERR_POLICY);
	ct_gov_free(fx->g);
	fx->g = NULL;
	unlink(fx->journal);
	open_gov(fx);
	assert_int_equal(ct_gov_admit_policy(fx->g, fx->gr->ungoverned, why,
	    sizeof(why)), CT_OK);
	assert_false(st_of(fx)->policy_governed);
	check_how(fx, POL, CT_OK, "ungoverned");
	assert_int_equal(ct_gov_admit_policy(fx->g, POL, why, sizeof(why)), CT_OK);
	assert_true(st_of(fx)->policy_governed);
	check_how(fx, pol2, CT_ERR_POLICY, NULL);
}

static void
test_destroy_twice(void **state)
{
	FX;
	ct_gov_work work[CT_GOV_WORK_MAX];
	char id[CT_REQ_ID_LEN + 1], err[256];
	ct_gov *g;
	size_t n;
	ct_err r;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_REVOKE, "dek", 1, NULL, T0, id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 1);
	approve_no_work(fx, id, "bob", T0 + 1);
	assert_int_equal(ct_gov_tick(fx->g, POL, T0 + 1 + DAY, work, &n), CT_OK);
	assert_int_equal(n, 1);
	/* the worker destroyed dek/v1; a rescan runs before its completion */
	set_tokens(fx, 1);
	fx->keys[0].n_vers = 0;
	{ ct_gov_work w2[CT_GOV_WORK_MAX]; size_t n2;
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + 2 + DAY, w2, &n2), CT_OK); }
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_DESTROYED);
	/* The worker's completion comes second: nothing more to record. */
	assert_int_equal(ct_gov_finish(fx->g, &work[0], CT_OK, T0 + 3 + DAY), CT_OK);
	ct_gov_free(fx->g);
	fx->g = NULL;
	r = ct_gov_open(fx->journal, emit, fx, &g, err, sizeof(err));
	assert_int_equal(r, CT_OK); /* the journal still replays */
	fx->g = g;
	assert_int_equal(ver_of(fx, "dek", 1)->state, CT_VS_DESTROYED);
}

static void
test_freeze_window_slides(void **state)
{
	FX;
	first_start(fx, T0);
	ct_gov_note_refusal(fx->g, POL, T0);
	ct_gov_note_refusal(fx->g, POL, T0 + 59);
	ct_gov_note_refusal(fx->g, POL, T0 + 61);
	assert_false(st_of(fx)->frozen_all); /* 59, 61: two in the window */
	ct_gov_note_refusal(fx->g, POL, T0 + 62);
	/* 59, 61, 62: three within 60 s across the old fixed boundary. */
	assert_true(st_of(fx)->frozen_all);
}

static void
test_quorum_then_expiry(void **state)
{
	FX;
	char id[CT_REQ_ID_LEN + 1], err[256];
	ct_gov_work work[CT_GOV_WORK_MAX];
	uint8_t *sig; size_t siglen, n;
	ct_state *st;

	first_start(fx, T0);
	assert_int_equal(open_req(fx, POL, CT_ACT_ROTATE, "dek", 0, NULL, T0, id), CT_OK);
	approve_no_work(fx, id, "alice", T0 + 1);
	sign_request(fx, id, key_of(fx, "bob"), true, T0, &sig, &siglen);
	ct_gov_free(fx->g); fx->g = NULL;
	assert_int_equal(ct_state_open(fx->journal, &st, err, sizeof(err)), CT_OK);
	assert_int_equal(ct_state_append(st, ct_rec_approval(id, "bob", true, sig, siglen)), CT_OK);
	ct_state_free(st); free(sig);
	open_gov(fx);
	assert_int_equal(ct_gov_reconcile(fx->g, POL, &fx->ks, T0 + HOUR + 5, work, &n), CT_OK);
	/* The approvals were in time: the rotation runs though it expired since. */
	assert_int_equal(n, 1);
	assert_int_equal(req_of(fx, id)->state, CT_RQ_RUNNING);
}

static void
test_two_backups(void **state)
{
	FX;
	pol_policy *p = load_policy(fx->gr->dir, "service:\n  audit_key: sig\n");
	char id1[CT_REQ_ID_LEN + 1], id2[CT_REQ_ID_LEN + 1], msg[256], why[256];
	ct_gov_work w1, w2;
	json_t *res;
	bool has1 = false, has2 = false;
	ct_stmt s;
	uint8_t *sig; size_t siglen;
	int i;
	const char *ids[2] = { id1, id2 };
	ct_gov_work *ws[2] = { &w1, &w2 };
	bool *hs[2] = { &has1, &has2 };

	assert_int_equal(ct_gov_admit_policy(fx->g, p, why, sizeof(why)), CT_OK);
	for (i = 0; i < 2; i++) {
		memset(&s, 0, sizeof(s));
		s.action = CT_ACT_BACKUP;
		snprintf(s.path, sizeof(s.path), "/tmp/b%d.ctbk", i);
		assert_int_equal(ct_gov_request(fx->g, p, OFFICER, &s, T0, &res, msg, sizeof(msg)), CT_OK);
		snprintf((char *)ids[i], CT_REQ_ID_LEN + 1, "%s", json_string_value(json_object_get(res, "request")));
		json_decref(res);
	}
	for (i = 0; i < 2; i++) {
		const ct_sreq *q = req_of(fx, ids[i]);
		const char *who[2] = { "alice", "bob" };
		int j;
		for (j = 0; j < 2; j++) {
			card_sign(key_of(fx, who[j]), q->text, q->text_len, true, &sig, &siglen);
			assert_int_equal(ct_gov_approve(fx->g, p, ids[i], who[j], true, sig, siglen, T0 + 1, &res, ws[i], hs[i], msg, sizeof(msg)), CT_OK);
			json_decref(res); free(sig);
		}
	}
	/* Two backups are two pieces of work, both handed out. */
	assert_true(has1);
	assert_true(has2);
	assert_string_equal(w1.id, id1);
	assert_string_equal(w2.id, id2);
	pol_free(p);
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_deny_policy_change, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_begin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_while_running, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_objects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_freeze, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_admission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freeze_window_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_then_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_backups, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
