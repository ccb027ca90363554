/* test_policy.c: the policy loader against good, bad and truncated
 * documents.  Every document is copied into a buffer of its exact size, so
 * that a sanitizer sees any read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "custodian/ct_util.h"
#include "policy/pol.h"

#ifndef CT_WITH_ASAN
/* Allocation failure injection.  glibc lets a program replace malloc; the
 * replacements count allocations and fail the one that fail_at names
 * (1 = the next).  Not under ASan. */
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);

static unsigned long fail_at;

static bool
fail_now(void)
{
	if (fail_at == 0 || --fail_at > 0)
		return false;
	errno = ENOMEM;
	return true;
}

void *
malloc(size_t n)
{
	return fail_now() ? NULL : __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __libc_realloc(p, n);
}
#endif

static const char good_doc[] =
	"# custodian policy used by the unit tests\n"
	"version: 1\n"
	"service:\n"
	"  socket: run/custodian.sock\n"
	"  audit_log: /var/log/custodian/audit.log\n"
	"tokens:\n"
	"  - name: service\n"
	"    module: /usr/lib/softhsm/libsofthsm2.so\n"
	"    label: custodian-demo\n"
	"    pin_file: pin.txt\n"
	"  - name: \"hsm2\"\n"
	"    module: /usr/lib/opensc-pkcs11.so\n"
	"    uri: \"pkcs11:token=backup\"\n"
	"    pin_env: HSM2_PIN\n"
	"clients:\n"
	"  - name: billing\n"
	"    uid: 1001\n"
	"  - name: frontend\n"
	"    gid: 2000\n"
	"  - name: ops\n"
	"    uid: 1002\n"
	"    gid: 3000\n"
	"keys:\n"
	"  - name: payments\n"
	"    type: ec-p256\n"
	"    token: service\n"
	"    allow:\n"
	"      billing: [sign, verify]\n"
	"      frontend: [public_key]\n"
	"  - name: reports\n"
	"    token: hsm2\n"
	"    type: ec-p384\n"
	"  - name: legacy\n"
	"    type: rsa-3072\n"
	"    token: service\n"
	"    sign: rsa-pkcs1-sha256\n"
	"    oaep_hash: sha1\n"
	"    allow:\n"
	"      frontend: [wrap, unwrap]\n"
	"      ops:\n"
	"        - sign\n"
	"  - name: rsa.default\n"
	"    type: rsa-3072\n"
	"    token: service\n"
	"  - name: vault_1\n"
	"    type: aes-256\n"
	"    token: hsm2\n"
	"    backup: true\n"
	"    allow: {frontend: [wrap, unwrap, datakey, rewrap]}\n";

/* Load len bytes of doc from a buffer of exactly that size. */
static ct_err
load(const char *name, const char *doc, size_t len, pol_policy **out,
     char *err, size_t errlen)
{
	char *copy = malloc(len > 0 ? len : 1);
	ct_err r;

	assert_non_null(copy);
	memcpy(copy, doc, len);
	r = pol_load_buffer(name, copy, len, out, err, errlen);
	free(copy);
	return r;
}

static pol_policy *
load_good(const char *doc)
{
	pol_policy *p = NULL;
	char err[512] = "";
	ct_err r;

	r = load("good.yaml", doc, strlen(doc), &p, err, sizeof(err));
	if (r != CT_OK)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(r, CT_OK);
	assert_non_null(p);
	return p;
}

static char *
in_cwd(const char *rel)
{
	char cwd[PATH_MAX], *s;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_true(asprintf(&s, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "",
			     rel) > 0);
	return s;
}

static void
test_good_document(void **state)
{
	uint8_t digest[32];
	unsigned int dlen = 0;
	pol_policy *p = load_good(good_doc);
	const pol_key *k;
	char *s;

	assert_string_equal(p->path, "good.yaml");
	s = in_cwd("run/custodian.sock");
	assert_string_equal(p->socket, s);
	free(s);
	assert_string_equal(p->audit_log, "/var/log/custodian/audit.log");
	assert_int_equal(p->workers, 2);

	assert_int_equal(p->n_tokens, 2);
	assert_string_equal(p->tokens[0].name, "service");
	assert_string_equal(p->tokens[0].module,
			    "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(p->tokens[0].label, "custodian-demo");
	assert_null(p->tokens[0].uri);
	s = in_cwd("pin.txt");
	assert_string_equal(p->tokens[0].pin_file, s);
	free(s);
	assert_null(p->tokens[0].pin_env);
	assert_int_equal(p->tokens[0].line, 7);
	assert_string_equal(p->tokens[1].name, "hsm2");
	assert_string_equal(p->tokens[1].module, "/usr/lib/opensc-pkcs11.so");
	assert_null(p->tokens[1].label);
	assert_string_equal(p->tokens[1].uri, "pkcs11:token=backup");
	assert_null(p->tokens[1].pin_file);
	assert_string_equal(p->tokens[1].pin_env, "HSM2_PIN");

	assert_int_equal(p->n_clients, 3);
	assert_string_equal(p->clients[0].name, "billing");
	assert_true(p->clients[0].has_uid);
	assert_int_equal(p->clients[0].uid, 1001);
	assert_false(p->clients[0].has_gid);
	assert_string_equal(p->clients[1].name, "frontend");
	assert_false(p->clients[1].has_uid);
	assert_true(p->clients[1].has_gid);
	assert_int_equal(p->clients[1].gid, 2000);
	assert_true(p->clients[2].has_uid && p->clients[2].has_gid);
	assert_int_equal(p->clients[2].uid, 1002);
	assert_int_equal(p->clients[2].gid, 3000);
	assert_int_equal(p->clients[2].line, 20);

	assert_int_equal(p->n_keys, 5);
	k = &p->keys[0];
	assert_string_equal(k->name, "payments");
	assert_int_equal(k->type, POL_KEY_EC_P256);
	assert_int_equal(k->token, 0);
	assert_int_equal(k->sign, POL_SIGN_ECDSA_SHA256);
	assert_int_equal(k->oaep, POL_OAEP_SHA256);
	assert_int_equal(k->n_grants, 2);
	assert_int_equal(k->grants[0].client, 0);
	assert_int_equal(k->grants[0].ops, POL_OP_SIGN | POL_OP_VERIFY);
	assert_int_equal(k->grants[1].client, 1);
	assert_int_equal(k->grants[1].ops, POL_OP_PUBLIC_KEY);
	assert_int_equal(k->line, 24);

	k = &p->keys[1];
	assert_string_equal(k->name, "reports");
	assert_int_equal(k->type, POL_KEY_EC_P384);
	assert_int_equal(k->token, 1);
	assert_int_equal(k->sign, POL_SIGN_ECDSA_SHA384);
	assert_int_equal(k->n_grants, 0);
	assert_null(k->grants);

	k = &p->keys[2];
	assert_string_equal(k->name, "legacy");
	assert_int_equal(k->type, POL_KEY_RSA_3072);
	assert_int_equal(k->sign, POL_SIGN_RSA_PKCS1_SHA256);
	assert_int_equal(k->oaep, POL_OAEP_SHA1);
	assert_false(k->backup);
	assert_int_equal(k->n_grants, 2);
	assert_int_equal(k->grants[0].client, 1);
	assert_int_equal(k->grants[0].ops, POL_OP_WRAP | POL_OP_UNWRAP);
	assert_int_equal(k->grants[1].client, 2);
	assert_int_equal(k->grants[1].ops, POL_OP_SIGN);

	k = &p->keys[3];
	assert_string_equal(k->name, "rsa.default");
	assert_int_equal(k->sign, POL_SIGN_RSA_PSS_SHA256);
	assert_int_equal(k->oaep, POL_OAEP_SHA256);

	k = &p->keys[4];
	assert_string_equal(k->name, "vault_1");
	assert_int_equal(k->type, POL_KEY_AES_256);
	assert_int_equal(k->token, 1);
	assert_int_equal(k->sign, POL_SIGN_NONE);
	assert_true(k->backup);
	assert_int_equal(k->n_grants, 1);
	assert_int_equal(k->grants[0].ops, POL_OP_WRAP | POL_OP_UNWRAP |
						   POL_OP_DATAKEY |
						   POL_OP_REWRAP);

	assert_int_equal(EVP_Digest(good_doc, strlen(good_doc), digest, &dlen,
				    EVP_sha256(), NULL), 1);
	assert_int_equal(dlen, sizeof(p->digest));
	assert_memory_equal(p->digest, digest, sizeof(digest));

	assert_ptr_equal(pol_find_key(p, "legacy"), &p->keys[2]);
	assert_null(pol_find_key(p, "nope"));
	assert_ptr_equal(pol_find_token(p, "hsm2"), &p->tokens[1]);
	assert_null(pol_find_token(p, "service2"));
	pol_free(p);
}

static void
test_service_fields(void **state)
{
	pol_policy *p = load_good("version: 1\n"
				  "service: {workers: 64, socket: /run/c.sock}\n"
				  "tokens:\n"
				  "  - {name: t, module: /m.so, label: l, "
				  "pin_file: /etc/pin}\n"
				  "keys: []\n");

	assert_int_equal(p->workers, 64);
	assert_string_equal(p->socket, "/run/c.sock");
	assert_null(p->audit_log);
	assert_string_equal(p->tokens[0].pin_file, "/etc/pin");
	assert_int_equal(p->n_clients, 0);
	assert_null(p->clients);
	assert_int_equal(p->n_keys, 0);
	pol_free(p);
}

static void
test_audit_fields(void **state)
{
	pol_policy *p = load_good("version: 1\n"
				  "service: {audit_key: a, checkpoint_lines: 7, "
				  "checkpoint_seconds: 30, audit_rotate_bytes: 8192}\n"
				  "tokens:\n"
				  "  - {name: t, module: /m.so, label: l, pin_env: P}\n"
				  "clients: [{name: c, uid: 5}]\n"
				  "keys:\n"
				  "  - {name: a, type: ec-p384, token: t, "
				  "allow: {c: [verify, public_key]}}\n");

	assert_string_equal(p->audit_key, "a");
	assert_int_equal(p->checkpoint_lines, 7);
	assert_int_equal(p->checkpoint_seconds, 30);
	assert_int_equal(p->audit_rotate_bytes, 8192);
	pol_free(p);

	/* The defaults: checkpoints come with an audit key, rotation never. */
	p = load_good("version: 1\nservice: {audit_key: a}\n"
		      "tokens: [{name: t, module: /m.so, label: l, pin_env: P}]\n"
		      "keys: [{name: a, type: ec-p256, token: t}]\n");
	assert_int_equal(p->checkpoint_lines, 1000);
	assert_int_equal(p->checkpoint_seconds, 60);
	assert_int_equal(p->audit_rotate_bytes, 0);
	pol_free(p);
	p = load_good("version: 1\n"
		      "tokens: [{name: t, module: /m.so, label: l, pin_env: P}]\n"
		      "keys: [{name: a, type: ec-p256, token: t}]\n");
	assert_null(p->audit_key);
	assert_int_equal(p->checkpoint_lines, 0);
	pol_free(p);
}

static void
test_peers(void **state)
{
	pol_policy *p = load_good(good_doc);
	const pol_key *payments = pol_find_key(p, "payments");
	const pol_key *legacy = pol_find_key(p, "legacy");
	const pol_key *reports = pol_find_key(p, "reports");

	/* by uid, by gid, by both (two clients: the union) */
	assert_int_equal(pol_peer_ops(p, payments, 1001, 50, 0),
			 POL_OP_SIGN | POL_OP_VERIFY);
	assert_int_equal(pol_peer_ops(p, payments, 50, 2000, 0),
			 POL_OP_PUBLIC_KEY);
	assert_int_equal(pol_peer_ops(p, payments, 1001, 2000, 0),
			 POL_OP_SIGN | POL_OP_VERIFY | POL_OP_PUBLIC_KEY);
	assert_int_equal(pol_peer_ops(p, legacy, 1001, 2000, 0),
			 POL_OP_WRAP | POL_OP_UNWRAP);
	assert_int_equal(pol_peer_ops(p, reports, 1001, 2000, 0), 0);
	assert_true(pol_peer_known(p, 1001, 50, 0));
	assert_true(pol_peer_known(p, 50, 2000, 0));

	/* a client with uid and gid needs both */
	assert_int_equal(pol_peer_ops(p, legacy, 1002, 3000, 0), POL_OP_SIGN);
	assert_int_equal(pol_peer_ops(p, legacy, 1002, 50, 0), 0);
	assert_int_equal(pol_peer_ops(p, legacy, 50, 3000, 0), 0);
	assert_true(pol_peer_known(p, 1002, 3000, 0));
	assert_false(pol_peer_known(p, 1002, 50, 0));

	/* unknown peer */
	assert_int_equal(pol_peer_ops(p, payments, 4242, 4242, 0), 0);
	assert_false(pol_peer_known(p, 4242, 4242, 0));
	assert_false(pol_peer_known(p, 0, 0, 0));
	assert_int_equal(pol_peer_ops(p, NULL, 1001, 2000, 0), 0);
	pol_free(p);
}

static void
test_user_group_root(void **state)
{
	pol_policy *p = load_good("version: 1\n"
				  "tokens:\n"
				  "  - {name: t, module: /m.so, label: l, "
				  "pin_env: P}\n"
				  "clients:\n"
				  "  - {name: admin, user: root}\n"
				  "  - {name: wheel, group: root}\n"
				  "keys:\n"
				  "  - name: k\n"
				  "    type: ec-p384\n"
				  "    token: t\n"
				  "    allow: {admin: [sign], wheel: [verify]}\n");

	assert_true(p->clients[0].has_uid);
	assert_false(p->clients[0].has_gid);
	assert_int_equal(p->clients[0].uid, 0);
	assert_true(p->clients[1].has_gid);
	assert_false(p->clients[1].has_uid);
	assert_int_equal(p->clients[1].gid, 0);
	assert_int_equal(pol_peer_ops(p, &p->keys[0], 0, 0, 0),
			 POL_OP_SIGN | POL_OP_VERIFY);
	pol_free(p);
}

/* service.user/group/allow_root, and limits: defaults, the service's,
 * a client's own, field by field. */
static void
test_service_run_as_and_limits(void **state)
{
	pol_policy *p = load_good("version: 1\n"
				  "service:\n"
				  "  user: root\n"
				  "  group: root\n"
				  "  allow_root: true\n"
				  "  limits: {rate: 100, connections: 8}\n"
				  "  unknown_limits: {connections: 1}\n"
				  "  max_bad_requests: 3\n"
				  "  token_timeout: 2m\n"
				  "tokens:\n"
				  "  - {name: t, module: /m.so, label: l, "
				  "pin_env: P}\n"
				  "clients:\n"
				  "  - {name: a, uid: 7}\n"
				  "  - {name: b, uid: 8, limits: {burst: 5}}\n"
				  "  - {name: c, gid: 9, limits: {rate: 0}}\n"
				  "keys: []\n");

	assert_string_equal(p->run_user, "root");
	assert_int_equal(p->run_uid, 0);
	assert_true(p->has_run_group);
	assert_int_equal(p->run_gid, 0);
	assert_true(p->allow_root);
	assert_int_equal(p->max_bad_requests, 3);
	assert_int_equal(p->token_timeout, 120);
	assert_int_equal(p->clients[0].limits.rate, 100);
	assert_int_equal(p->clients[0].limits.burst, 100);
	assert_int_equal(p->clients[0].limits.connections, 8);
	assert_int_equal(p->clients[1].limits.rate, 100);
	assert_int_equal(p->clients[1].limits.burst, 5);
	assert_int_equal(p->clients[2].limits.rate, 0);
	assert_int_equal(p->unknown_limits.rate, 10);
	assert_int_equal(p->unknown_limits.burst, 20);
	assert_int_equal(p->unknown_limits.connections, 1);
	/* The first matching entry decides whose limits apply. */
	assert_ptr_equal(pol_peer_client(p, 8, 9, 0), &p->clients[1]);
	assert_ptr_equal(pol_peer_client(p, 1, 9, 0), &p->clients[2]);
	assert_null(pol_peer_client(p, 1, 1, 0));
	pol_free(p);

	p = load_good("version: 1\n"
		      "tokens:\n"
		      "  - {name: t, module: /m.so, label: l, pin_env: P}\n"
		      "clients: [{name: a, uid: 7}]\n"
		      "keys: []\n");
	assert_null(p->run_user);
	assert_false(p->allow_root);
	assert_int_equal(p->max_bad_requests, 8);
	assert_int_equal(p->token_timeout, 30);
	assert_int_equal(p->clients[0].limits.rate, 0);
	assert_int_equal(p->clients[0].limits.connections, 2048);
	assert_int_equal(p->unknown_limits.connections, 4);
	pol_free(p);
}

static void
test_names(void **state)
{
	unsigned bit;

	for (bit = 1; bit < POL_OP_ALL_; bit <<= 1)
		assert_int_equal(pol_op_from_name(pol_op_name(bit)), bit);
	assert_string_equal(pol_op_name(POL_OP_PUBLIC_KEY), "public_key");
	assert_string_equal(pol_op_name(POL_OP_SIGN | POL_OP_WRAP), "unknown");
	assert_string_equal(pol_op_name(0), "unknown");
	assert_int_equal(pol_op_from_name("encrypt"), 0);
	assert_int_equal(pol_op_from_name(NULL), 0);
	assert_string_equal(pol_key_type_name(POL_KEY_RSA_3072), "rsa-3072");
	assert_string_equal(pol_key_type_name((pol_key_type)0), "unknown");
	assert_string_equal(pol_key_type_name((pol_key_type)99), "unknown");
	assert_string_equal(pol_sign_scheme_name(POL_SIGN_RSA_PSS_SHA256),
			    "rsa-pss-sha256");
	assert_string_equal(pol_sign_scheme_name(POL_SIGN_NONE), "none");
	pol_free(NULL);
}

/* 2030-01-01T00:00:00Z, the instant most of the expiry tests turn on. */
#define T2030 ((time_t)1893456000)
#define DAY 86400

static void
test_time_parse(void **state)
{
	static const struct {
		const char *s;
		time_t t;
	} good[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2030-01-01T00:00:00Z", T2030 },
		{ "2030-01-01T00:00:00+00:00", T2030 },
		{ "2030-01-01T01:30:00+01:30", T2030 },
		{ "2029-12-31T19:00:00-05:00", T2030 },
		{ "2029-12-31T23:59:59Z", T2030 - 1 },
		{ "2000-02-29T00:00:00Z", 951782400 },
		{ "2024-02-29T12:00:00Z", 1709208000 },
		{ "2038-01-19T03:14:08Z", (time_t)1 << 31 },
		{ "1970-01-01T00:00:00-01:00", 3600 },
		{ "9999-12-31T23:59:59Z", 253402300799 },
	};
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
		{ "", "not of the form" },
		{ "2030-01-01", "not of the form" },
		{ "2030-01-01T00:00", "not of the form" },
		{ "20300101T000000Z", "not of the form" },
		{ "2030-1-01T00:00:00Z", "not of the form" },
		{ "+2030-01-01T00:00:00Z", "not of the form" },
		{ "2030-01-01T0:00:00Z", "not of the form" },
		{ "2030-01-01T00:00:00", "no time zone" },
		{ "2030-01-01 00:00:00Z", "joined by T" },
		{ "2030-01-01_00:00:00Z", "joined by T" },
		{ "2030-01-01t00:00:00Z", "T in upper case" },
		{ "2030-01-01T00:00:00z", "Z in upper case" },
		{ "2030-01-01T00:00:00.5Z", "fractional seconds" },
		{ "2030-01-01T00:00:00,5Z", "fractional seconds" },
		{ "2030-01-01T00:00:00-00:00", "unknown offset" },
		{ "2030-01-01T00:00:00+0100", "must be Z, +HH:MM or -HH:MM" },
		{ "2030-01-01T00:00:00+01", "must be Z, +HH:MM or -HH:MM" },
		{ "2030-01-01T00:00:00UTC", "must be Z, +HH:MM or -HH:MM" },
		{ "2030-01-01T00:00:00Z ", "must be Z, +HH:MM or -HH:MM" },
		{ "2030-01-01T00:00:00ZZ", "must be Z, +HH:MM or -HH:MM" },
		{ "2030-13-01T00:00:00Z", "no such month" },
		{ "2030-00-01T00:00:00Z", "no such month" },
		{ "2030-01-00T00:00:00Z", "no such day" },
		{ "2030-02-29T00:00:00Z", "no such day" },
		{ "2100-02-29T00:00:00Z", "no such day" },
		{ "2030-04-31T00:00:00Z", "no such day" },
		{ "2030-01-01T24:00:00Z", "no such time of day" },
		{ "2030-01-01T23:60:00Z", "no such time of day" },
		{ "2030-06-30T23:59:60Z", "leap second" },
		{ "2030-01-01T00:00:61Z", "no such second" },
		{ "2030-01-01T00:00:00+24:00", "no such offset" },
		{ "2030-01-01T00:00:00+01:60", "no such offset" },
		{ "0000-01-01T00:00:00Z", "before 1970" },
		{ "1969-12-31T23:59:59Z", "before 1970" },
		{ "1970-01-01T00:30:00+01:00", "before 1970" },
		{ "9999-12-31T23:59:59-00:01", "after 9999" },
	};
	char buf[POL_TIME_LEN];
	const char *why;
	size_t i;
	time_t t;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = "unset";
		if (pol_time_parse(good[i].s, strlen(good[i].s), &t, &why) !=
			CT_OK ||
		    t != good[i].t) {
			print_error("%s: %s, %lld\n", good[i].s, why,
				    (long long)t);
			fail();
		}
		assert_null(why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		why = NULL;
		if (pol_time_parse(bad[i].s, strlen(bad[i].s), &t, &why) !=
			CT_ERR_POLICY ||
		    t != 0 || why == NULL || strstr(why, bad[i].why) == NULL) {
			print_error("%s: %s, want %s\n", bad[i].s,
				    why ? why : "accepted", bad[i].why);
			fail();
		}
	}
	/* only len bytes are read: no NUL needed, and none may hide */
	assert_int_equal(pol_time_parse("2030-01-01T00:00:00Zjunk", 20, &t,
					&why), CT_OK);
	assert_int_equal(t, T2030);
	assert_int_equal(pol_time_parse("2030-01-01T00:00:00Z\0", 21, &t,
					&why), CT_ERR_POLICY);
	assert_int_equal(pol_time_parse("2030-01-01T00:00:00Z", 19, &t, &why),
			 CT_ERR_POLICY);
	assert_int_equal(pol_time_parse("2030-01-01\0T00:00:00Z", 21, &t,
					&why), CT_ERR_POLICY);

	assert_string_equal(pol_time_format(T2030, buf),
			    "2030-01-01T00:00:00Z");
	assert_string_equal(pol_time_format(253402300799, buf),
			    "9999-12-31T23:59:59Z");
	assert_string_equal(pol_time_format(0, buf), "1970-01-01T00:00:00Z");
}

static const char expiring_doc[] =
	"version: 1\n"
	"tokens:\n"
	"  - {name: t, module: /m.so, label: l, pin_env: P}\n"
	"engagements:\n"
	"  - name: audit-2030\n"
	"    until: 2030-01-10T00:00:00Z\n"
	"    description: external audit of the payment keys\n"
	"  - {name: short, until: \"2030-01-02T00:00:00+01:00\"}\n"
	"clients:\n"
	"  - {name: contractor, uid: 2001, until: 2030-01-05T00:00:00Z}\n"
	"  - {name: auditor, uid: 2002, engagement: audit-2030}\n"
	"  - {name: staff, gid: 100}\n"
	"  - {name: dev, uid: 2003}\n"
	"keys:\n"
	"  - name: payments\n"
	"    type: ec-p256\n"
	"    token: t\n"
	"    allow:\n"
	"      contractor: [sign, verify]\n"
	"      auditor: {ops: [verify, public_key]}\n"
	"      staff: [verify]\n"
	"      dev: {ops: [sign], until: 2030-01-01T00:00:00Z}\n"
	"  - name: vault\n"
	"    type: aes-256\n"
	"    token: t\n"
	"    allow:\n"
	"      dev: {ops: [wrap, unwrap], engagement: short}\n"
	"      contractor: {ops: [wrap], until: 2031-01-01T00:00:00Z}\n"
	"      staff:\n"
	"        ops: [wrap]\n"
	"        until: 2030-01-03T00:00:00Z\n";

static void
assert_expiry(const pol_expiry *e, bool set, time_t until, size_t eng)
{
	assert_int_equal(e->set, set);
	if (set)
		assert_int_equal(e->until, until);
	assert_int_equal(e->engagement, eng);
}

static void
test_expiring_parse(void **state)
{
	pol_policy *p = load_good(expiring_doc);
	const pol_key *pay = pol_find_key(p, "payments");
	const pol_key *vault = pol_find_key(p, "vault");

	assert_int_equal(p->n_engagements, 2);
	assert_string_equal(p->engagements[0].name, "audit-2030");
	assert_int_equal(p->engagements[0].until, T2030 + 9 * DAY);
	assert_string_equal(p->engagements[0].description,
			    "external audit of the payment keys");
	assert_int_equal(p->engagements[0].line, 5);
	assert_string_equal(p->engagements[1].name, "short");
	assert_int_equal(p->engagements[1].until, T2030 + DAY - 3600);
	assert_null(p->engagements[1].description);

	assert_expiry(&p->clients[0].expiry, true, T2030 + 4 * DAY, POL_NONE);
	assert_expiry(&p->clients[1].expiry, true, T2030 + 9 * DAY, 0);
	assert_expiry(&p->clients[2].expiry, false, 0, POL_NONE);
	assert_expiry(&p->clients[3].expiry, false, 0, POL_NONE);

	/* a list grants for as long as its client lasts */
	assert_int_equal(pay->n_grants, 4);
	assert_expiry(&pay->grants[0].expiry, true, T2030 + 4 * DAY, POL_NONE);
	assert_int_equal(pay->grants[1].ops, POL_OP_VERIFY | POL_OP_PUBLIC_KEY);
	assert_expiry(&pay->grants[1].expiry, true, T2030 + 9 * DAY, 0);
	assert_expiry(&pay->grants[2].expiry, false, 0, POL_NONE);
	assert_int_equal(pay->grants[3].ops, POL_OP_SIGN);
	assert_expiry(&pay->grants[3].expiry, true, T2030, POL_NONE);

	assert_int_equal(vault->grants[0].ops, POL_OP_WRAP | POL_OP_UNWRAP);
	assert_expiry(&vault->grants[0].expiry, true, T2030 + DAY - 3600, 1);
	/* a grant's own end after its client's: the client's wins */
	assert_expiry(&vault->grants[1].expiry, true, T2030 + 4 * DAY,
		      POL_NONE);
	assert_expiry(&vault->grants[2].expiry, true, T2030 + 2 * DAY,
		      POL_NONE);
	pol_free(p);
}

/* Decisions one second before, at and one second after each end. */
static void
test_expiry_boundaries(void **state)
{
	pol_policy *p = load_good(expiring_doc);
	const pol_key *pay = pol_find_key(p, "payments");
	const pol_key *vault = pol_find_key(p, "vault");
	const pol_client *cl;
	const pol_expiry *e;
	time_t end;

	/* dev's own `until` on sign */
	assert_int_equal(pol_peer_ops(p, pay, 2003, 50, T2030 - 1),
			 POL_OP_SIGN);
	assert_false(pol_peer_expired(p, pay, 2003, 50, POL_OP_SIGN,
				      T2030 - 1, &cl, &e));
	assert_null(cl);
	assert_null(e);
	assert_int_equal(pol_peer_ops(p, pay, 2003, 50, T2030), 0);
	assert_true(pol_peer_expired(p, pay, 2003, 50, POL_OP_SIGN, T2030, &cl,
				     &e));
	assert_string_equal(cl->name, "dev");
	assert_int_equal(e->until, T2030);
	assert_int_equal(e->engagement, POL_NONE);
	assert_int_equal(pol_peer_ops(p, pay, 2003, 50, T2030 + 1), 0);
	assert_true(pol_peer_expired(p, pay, 2003, 50, POL_OP_SIGN, T2030 + 1,
				     &cl, &e));
	/* an op dev never held is not expired, only not granted */
	assert_false(pol_peer_expired(p, pay, 2003, 50, POL_OP_VERIFY,
				      T2030 + 1, &cl, &e));
	/* dev is still a client: only the grant ended */
	assert_true(pol_peer_known(p, 2003, 50, T2030 + 1));

	/* uid and gid entries: the union of the unexpired ones */
	assert_int_equal(pol_peer_ops(p, pay, 2003, 100, T2030 - 1),
			 POL_OP_SIGN | POL_OP_VERIFY);
	assert_int_equal(pol_peer_ops(p, pay, 2003, 100, T2030),
			 POL_OP_VERIFY);
	assert_true(pol_peer_expired(p, pay, 2003, 100, POL_OP_SIGN, T2030,
				     &cl, &e));
	assert_int_equal(pol_peer_ops(p, pay, 2003, 100, T2030 + 100 * DAY),
			 POL_OP_VERIFY);

	/* an engagement ends a grant through its client */
	end = T2030 + 9 * DAY;
	assert_int_equal(pol_peer_ops(p, pay, 2002, 50, end - 1),
			 POL_OP_VERIFY | POL_OP_PUBLIC_KEY);
	assert_true(pol_peer_known(p, 2002, 50, end - 1));
	assert_int_equal(pol_peer_ops(p, pay, 2002, 50, end), 0);
	assert_true(pol_peer_expired(p, pay, 2002, 50, POL_OP_PUBLIC_KEY, end,
				     &cl, &e));
	assert_string_equal(cl->name, "auditor");
	assert_int_equal(e->engagement, 0);
	assert_int_equal(pol_peer_ops(p, pay, 2002, 50, end + 1), 0);

	/* ... and directly */
	end = T2030 + DAY - 3600;
	assert_int_equal(pol_peer_ops(p, vault, 2003, 50, end - 1),
			 POL_OP_WRAP | POL_OP_UNWRAP);
	assert_int_equal(pol_peer_ops(p, vault, 2003, 50, end), 0);
	assert_true(pol_peer_expired(p, vault, 2003, 50, POL_OP_UNWRAP, end,
				     &cl, &e));
	assert_int_equal(e->engagement, 1);
	assert_int_equal(pol_peer_ops(p, vault, 2003, 50, end + 1), 0);

	/* a whole client ends: the peer is no longer known */
	end = T2030 + 4 * DAY;
	assert_true(pol_peer_known(p, 2001, 50, end - 1));
	assert_int_equal(pol_peer_ops(p, pay, 2001, 50, end - 1),
			 POL_OP_SIGN | POL_OP_VERIFY);
	assert_false(pol_peer_expired(p, NULL, 2001, 50, 0, end - 1, &cl, &e));
	assert_false(pol_peer_known(p, 2001, 50, end));
	assert_int_equal(pol_peer_ops(p, pay, 2001, 50, end), 0);
	assert_true(pol_peer_expired(p, NULL, 2001, 50, 0, end, &cl, &e));
	assert_string_equal(cl->name, "contractor");
	assert_int_equal(e->until, end);
	assert_false(pol_peer_known(p, 2001, 50, end + 1));
	/* the same person through a group entry keeps what that grants */
	assert_true(pol_peer_known(p, 2001, 100, end));
	assert_int_equal(pol_peer_ops(p, vault, 2001, 100, end - 1),
			 POL_OP_WRAP);
	assert_int_equal(pol_peer_ops(p, pay, 2001, 100, end), POL_OP_VERIFY);

	/* several ended grants: the one that ended last is named */
	assert_true(pol_peer_expired(p, vault, 2003, 100, POL_OP_WRAP,
				     T2030 + 2 * DAY, &cl, &e));
	assert_string_equal(cl->name, "staff");
	assert_int_equal(e->until, T2030 + 2 * DAY);
	assert_int_equal(pol_peer_ops(p, vault, 2003, 100, T2030 + 2 * DAY - 1),
			 POL_OP_WRAP);

	/* a stranger has nothing, now or ever */
	assert_false(pol_peer_expired(p, pay, 4242, 4242, POL_OP_SIGN,
				      T2030 + 100 * DAY, &cl, &e));
	assert_false(pol_peer_expired(p, NULL, 4242, 4242, 0,
				      T2030 + 100 * DAY, &cl, &e));
	assert_false(pol_peer_expired(NULL, NULL, 0, 0, 0, 0, &cl, &e));
	pol_free(p);
}

/* Shared pieces of the bad documents: HDR is line 1, TOK lines 2-6. */
#define HDR "version: 1\n"
#define TOK                        \
	"tokens:\n"                \
	"  - name: t\n"            \
	"    module: /m.so\n"      \
	"    label: l\n"           \
	"    pin_env: PIN\n"
/* 3 lines */
#define CLI              \
	"clients:\n"     \
	"  - name: c\n"  \
	"    uid: 1\n"
/* 4 lines */
#define KEY(type)                  \
	"keys:\n"                  \
	"  - name: k\n"            \
	"    type: " type "\n"     \
	"    token: t\n"

struct bad {
	const char *doc;
	unsigned line, col;
	const char *msg;
};

static const struct bad bad_docs[] = {
	/* unknown fields at each level */
	{ HDR TOK KEY("aes-256") "extra: 1\n", 11, 1,
	  "unknown field \"extra\" in policy" },
	{ HDR "service:\n  sockt: x\n" TOK KEY("aes-256"), 3, 3,
	  "unknown field \"sockt\" in service" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    lable: l\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 5,
	  "unknown field \"lable\" in token" },
	{ HDR TOK "clients:\n  - name: c\n    uidd: 1\n" KEY("aes-256"), 9, 5,
	  "unknown field \"uidd\" in client" },
	{ HDR TOK KEY("aes-256") "    colour: red\n", 11, 5,
	  "unknown field \"colour\" in key" },
	{ HDR TOK "? [a]\n: b\n" KEY("aes-256"), 7, 3,
	  "policy: keys must be scalars" },

	/* missing required fields */
	{ TOK KEY("aes-256"), 1, 1, "missing field \"version\"" },
	{ HDR KEY("aes-256"), 1, 1, "missing field \"tokens\"" },
	{ HDR TOK, 1, 1, "missing field \"keys\"" },
	{ HDR "tokens:\n  - module: /m.so\n    label: l\n    pin_env: P\n"
	      KEY("aes-256"), 3, 5, "missing field \"name\"" },
	{ HDR "tokens:\n  - name: t\n    label: l\n    pin_env: P\n"
	      KEY("aes-256"), 3, 5, "token \"t\": missing field \"module\"" },
	{ HDR TOK "keys:\n  - name: k\n    token: t\n", 8, 5,
	  "key \"k\": missing field \"type\"" },
	{ HDR TOK "keys:\n  - name: k\n    type: aes-256\n", 8, 5,
	  "key \"k\": missing field \"token\"" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    pin_env: P\n"
	      KEY("aes-256"), 3, 5, "token \"t\": needs label or uri" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: l\n"
	      KEY("aes-256"), 3, 5, "token \"t\": needs pin_file or pin_env" },
	{ HDR TOK "clients:\n  - name: c\n" KEY("aes-256"), 8, 5,
	  "client \"c\": needs uid, user, gid or group" },

	/* wrong node kinds */
	{ "- version: 1\n", 1, 1,
	  "policy: expected a mapping, found a sequence" },
	{ "version\n", 1, 1, "policy: expected a mapping, found a scalar" },
	{ HDR "tokens: {}\n" KEY("aes-256"), 2, 9,
	  "tokens: expected a sequence, found a mapping" },
	{ HDR "service: [a]\n" TOK KEY("aes-256"), 2, 10,
	  "service: expected a mapping, found a sequence" },
	{ HDR "tokens:\n  - [t]\n" KEY("aes-256"), 3, 5,
	  "token: expected a mapping, found a sequence" },
	{ HDR "tokens:\n  - name: {a: b}\n" KEY("aes-256"), 3, 11,
	  "name: expected a scalar, found a mapping" },
	{ HDR TOK CLI KEY("aes-256") "    allow: [c]\n", 14, 12,
	  "key \"k\": allow: expected a mapping, found a sequence" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: wrap\n", 15, 10,
	  "operations: expected a sequence, found a scalar" },
	{ HDR TOK CLI KEY("aes-256") "    allow: {[c]: [wrap]}\n", 14, 13,
	  "client: expected a scalar, found a sequence" },
	{ HDR TOK KEY("aes-256") "    sign: [a]\n", 11, 11,
	  "sign: aes-256 keys do not sign" },
	{ HDR TOK KEY("ec-p256") "    sign: [a]\n", 11, 11,
	  "sign: expected a scalar, found a sequence" },
	{ HDR "version: 1\n" TOK KEY("aes-256"), 2, 1,
	  "duplicate key \"version\" in policy" },

	/* duplicate keys and names */
	{ HDR TOK "tokens: []\n" KEY("aes-256"), 7, 1,
	  "duplicate key \"tokens\" in policy" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: l\n"
	      "    label: m\n    pin_env: PIN\n" KEY("aes-256"), 6, 5,
	  "duplicate key \"label\" in token" },
	{ HDR TOK "  - name: t\n    module: /n.so\n    label: x\n"
	      "    pin_env: Q\n" KEY("aes-256"), 7, 11,
	  "duplicate token name \"t\" (first at line 3)" },
	{ HDR TOK "clients:\n  - {name: a, uid: 1}\n  - {name: b, uid: 2}\n"
	      "  - {name: a, uid: 3}\n  - {name: b, uid: 4}\n" KEY("aes-256"),
	  10, 12, "duplicate client name \"a\" (first at line 8)" },
	{ HDR TOK KEY("aes-256") "  - name: k\n    type: aes-256\n"
	      "    token: t\n", 11, 11,
	  "duplicate key name \"k\" (first at line 8)" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: [wrap]\n"
	      "      c: [unwrap]\n", 16, 7,
	  "key \"k\": client \"c\" appears twice in allow" },

	/* dangling references */
	{ HDR TOK "keys:\n  - name: k\n    type: aes-256\n    token: hsm2\n",
	  10, 12, "key \"k\": unknown token \"hsm2\"" },
	{ HDR TOK CLI KEY("aes-256") "    allow: {ghost: [wrap]}\n", 14, 13,
	  "key \"k\": unknown client \"ghost\"" },
	{ HDR TOK KEY("aes-256") "    allow: {ghost: [wrap]}\n", 11, 13,
	  "key \"k\": unknown client \"ghost\"" },

	/* key types, schemes, operations */
	{ HDR TOK KEY("des") , 9, 11, "type: unknown value \"des\"" },
	{ HDR TOK KEY("ec-p256") "    sign: ecdsa-sha384\n", 11, 11,
	  "sign: ecdsa-sha384 does not fit ec-p256 keys" },
	{ HDR TOK KEY("ec-p384") "    sign: rsa-pss-sha256\n", 11, 11,
	  "sign: rsa-pss-sha256 does not fit ec-p384 keys" },
	{ HDR TOK KEY("rsa-3072") "    sign: ecdsa-sha256\n", 11, 11,
	  "sign: ecdsa-sha256 does not fit rsa-3072 keys" },
	{ HDR TOK KEY("rsa-3072") "    sign: none\n", 11, 11,
	  "sign: none does not fit rsa-3072 keys" },
	{ HDR TOK KEY("rsa-3072") "    sign: rsa-pss\n", 11, 11,
	  "sign: unknown value \"rsa-pss\"" },
	{ HDR TOK KEY("aes-256") "    sign: ecdsa-sha256\n", 11, 11,
	  "sign: aes-256 keys do not sign" },
	{ HDR TOK KEY("ec-p256") "    oaep_hash: sha1\n", 11, 16,
	  "oaep_hash: ec-p256 keys do not use OAEP" },
	{ HDR TOK KEY("rsa-3072") "    oaep_hash: md5\n", 11, 16,
	  "oaep_hash: unknown value \"md5\"" },
	{ HDR TOK KEY("aes-256") "    backup: yes\n", 11, 13,
	  "backup: unknown value \"yes\"" },
	{ HDR TOK KEY("aes-256") "    backup: \"true\"\n", 11, 13,
	  "backup: a boolean must not be quoted" },
	{ HDR TOK KEY("aes-256") "    backup: [true]\n", 11, 13,
	  "backup: expected a scalar" },
	{ HDR TOK CLI KEY("aes-256") "    allow: {c: [wrap, sign]}\n", 14, 23,
	  "operation \"sign\" does not fit aes-256 keys" },
	{ HDR TOK CLI KEY("ec-p256") "    allow: {c: [verify, datakey]}\n",
	  14, 25, "operation \"datakey\" does not fit ec-p256 keys" },
	{ HDR TOK CLI KEY("ec-p384") "    allow: {c: [encrypt]}\n", 14, 17,
	  "operation: unknown value \"encrypt\"" },
	{ HDR TOK CLI KEY("rsa-3072") "    allow: {c: [sign, sign]}\n", 14,
	  23, "operation \"sign\" listed twice" },
	{ HDR TOK CLI KEY("aes-256") "    allow: {c: []}\n", 14, 16,
	  "empty operation list for client \"c\"" },

	/* integers */
	{ HDR TOK "clients:\n  - name: c\n    uid: -1\n" KEY("aes-256"), 9, 10,
	  "uid: \"-1\" is not a decimal integer" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 12abc\n" KEY("aes-256"), 9,
	  10, "uid: \"12abc\" is not a decimal integer" },
	{ HDR TOK "clients:\n  - name: c\n    gid: +5\n" KEY("aes-256"), 9, 10,
	  "gid: \"+5\" is not a decimal integer" },
	{ HDR TOK "clients:\n  - name: c\n    gid: 010\n" KEY("aes-256"), 9,
	  10, "gid: \"010\" is not a decimal integer" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 0x10\n" KEY("aes-256"), 9,
	  10, "uid: \"0x10\" is not a decimal integer" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 99999999999999999999\n"
	      KEY("aes-256"), 9, 10, "uid: 99999999999999999999 is out of range" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 4294967295\n"
	      KEY("aes-256"), 9, 10, "uid: 4294967295 is out of range" },
	{ HDR TOK "clients:\n  - name: c\n    uid: \"1001\"\n" KEY("aes-256"), 9,
	  10, "uid: a number must not be quoted" },
	{ HDR TOK "clients:\n  - name: c\n    uid:\n" KEY("aes-256"), 9, 9,
	  "uid: \"\" is not a decimal integer" },
	{ HDR "service:\n  workers: 0\n" TOK KEY("aes-256"), 3, 12,
	  "workers: 0 is out of range (1 to 64)" },
	{ HDR "service:\n  workers: 65\n" TOK KEY("aes-256"), 3, 12,
	  "workers: 65 is out of range (1 to 64)" },
	{ "version: 2\n" TOK KEY("aes-256"), 1, 10,
	  "unsupported version 2" },
	{ HDR "service:\n  user: no-such-user-x\n" TOK KEY("aes-256"), 3, 9,
	  "unknown user \"no-such-user-x\"" },
	{ HDR "service:\n  group: root\n" TOK KEY("aes-256"), 3, 10,
	  "group: needs user" },
	{ HDR "service:\n  allow_root: yes\n" TOK KEY("aes-256"), 3, 15,
	  "allow_root: unknown value \"yes\"" },
	{ HDR "service:\n  allow_root: \"true\"\n" TOK KEY("aes-256"), 3, 15,
	  "allow_root: a boolean must not be quoted" },
	{ HDR "service:\n  limits: {rate: 1000001}\n" TOK KEY("aes-256"), 3,
	  18, "rate: 1000001 is out of range (0 to 1000000)" },
	{ HDR "service:\n  limits: {burst: 0}\n" TOK KEY("aes-256"), 3, 19,
	  "burst: 0 is out of range (1 to 1000000)" },
	{ HDR "service:\n  unknown_limits: {connections: 0}\n" TOK
	      KEY("aes-256"), 3, 33,
	  "connections: 0 is out of range (1 to 4096)" },
	{ HDR "service:\n  max_bad_requests: 0\n" TOK KEY("aes-256"), 3, 21,
	  "max_bad_requests: 0 is out of range (1 to 1000)" },
	{ HDR "service:\n  token_timeout: 30\n" TOK KEY("aes-256"), 3, 18,
	  "token_timeout: \"30\" is not a duration such as 90d, 24h, 15m or 30s" },
	{ HDR "service:\n  token_timeout: 2h\n" TOK KEY("aes-256"), 3, 18,
	  "token_timeout: 2h is out of range (1 to 3600 seconds)" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 1\n    limits: {rat: 1}\n"
	      KEY("aes-256"), 10, 14, "unknown field \"rat\" in limits" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 1\n    limits: [1]\n"
	      KEY("aes-256"), 10, 13,
	  "limits: expected a mapping, found a sequence" },
	{ "version: 1.0\n" TOK KEY("aes-256"), 1, 10,
	  "version: \"1.0\" is not a decimal integer" },

	/* YAML features that are refused */
	{ HDR TOK "keys: *k\n", 7, 7, "aliases are not allowed (*k)" },
	{ HDR "tokens: &t\n  - name: t\n" KEY("aes-256"), 2, 9,
	  "anchors are not allowed (&t)" },
	{ "version: !!int 1\n" TOK KEY("aes-256"), 1, 10,
	  "tags are not allowed (tag:yaml.org,2002:int)" },
	{ HDR TOK KEY("aes-256") "    allow: !x {}\n", 11, 12,
	  "tags are not allowed (!x)" },
	{ HDR TOK KEY("aes-256") "---\n" HDR, 11, 1,
	  "more than one document" },
	{ HDR TOK KEY("aes-256") "x: [[[[[[[[1]]]]]]]]\n", 11, 11,
	  "nesting deeper than 8 levels" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: \"a\\0b\"\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 12,
	  "control character in scalar" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: \"a\\eb\"\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 12,
	  "control character in scalar" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: \"a\\x9bb\"\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 12,
	  "control character in scalar" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: \"a\\tb\"\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 12,
	  "control character in scalar" },
	{ HDR "tokens:\n  - name: t\xc3\x28\n" KEY("aes-256"), 3, 13,
	  "invalid trailing UTF-8 octet" },
	{ HDR "tokens: \xff\n" KEY("aes-256"), 2, 9,
	  "invalid leading UTF-8 octet" },
	{ HDR "tokens: [\n" KEY("aes-256"), 4, 3,
	  "did not find expected node content" },
	{ HDR "tokens: [a\n" KEY("aes-256"), 3, 5,
	  "did not find expected ',' or ']'" },
	{ "", 1, 1, "empty document" },
	{ "# nothing here\n", 1, 1, "empty document" },

	/* values */
	{ HDR "tokens: []\n" KEY("aes-256"), 2, 9,
	  "tokens: at least one token is needed" },
	{ HDR "tokens:\n  - name: \"bad name\"\n" KEY("aes-256"), 3, 11,
	  "name: \"bad name\" is not a valid name" },
	{ HDR "tokens:\n  - name: \"\"\n" KEY("aes-256"), 3, 11,
	  "name: empty value" },
	{ HDR "tokens:\n  - name: a/b\n" KEY("aes-256"), 3, 11,
	  "name: \"a/b\" is not a valid name" },
	{ HDR "tokens:\n  - name: "
	      "a123456789a123456789a123456789a123456789a123456789a123456789"
	      "abcde\n" KEY("aes-256"), 3, 11, "is not a valid name" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: l\n"
	      "    uri: pkcs11:token=l\n    pin_env: PIN\n" KEY("aes-256"), 6, 10,
	  "token \"t\": label and uri are exclusive" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    uri: token=l\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 10,
	  "uri: \"token=l\" does not start with \"pkcs11:\"" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n"
	      "    label: 123456789012345678901234567890123\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 5, 12,
	  "label: longer than 32 bytes" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: l\n"
	      "    pin_file: p\n    pin_env: PIN\n" KEY("aes-256"), 7, 14,
	  "pin_file and pin_env are exclusive" },
	{ HDR "tokens:\n  - name: t\n    module: /m.so\n    label: l\n"
	      "    pin_env: 1PIN\n" KEY("aes-256"), 6, 14,
	  "pin_env: \"1PIN\" is not an environment variable name" },
	{ HDR "tokens:\n  - name: t\n    module: m.so\n    label: l\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 4, 13,
	  "module: \"m.so\" is not an absolute path" },
	{ HDR "tokens:\n  - name: t\n    module: ./m.so\n    label: l\n"
	      "    pin_env: PIN\n" KEY("aes-256"), 4, 13,
	  "module: \"./m.so\" is not an absolute path" },
	{ HDR "service:\n  socket: /" "a123456789a123456789a123456789a123456789"
	      "a123456789a123456789a123456789a123456789a123456789"
	      "a123456789a123456789\n" TOK KEY("aes-256"), 3, 11,
	  "socket: path longer than 107 bytes" },
	{ HDR TOK "clients:\n  - name: c\n    user: no-such-user-custodian\n"
	      KEY("aes-256"), 9, 11,
	  "client \"c\": unknown user \"no-such-user-custodian\"" },
	{ HDR TOK "clients:\n  - name: c\n    group: no-such-group-custodian\n"
	      KEY("aes-256"), 9, 12, "unknown group \"no-such-group-custodian\"" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 0\n    user: root\n"
	      KEY("aes-256"), 10, 11, "client \"c\": uid and user are exclusive" },
	{ HDR TOK "clients:\n  - name: c\n    group: root\n    gid: 0\n"
	      KEY("aes-256"), 10, 10, "client \"c\": gid and group are exclusive" },

	/* reader binding */
	{ HDR TOK "    atr: 3b00\n" KEY("aes-256"), 3, 5,
	  "token \"t\": missing field \"reader\"" },
	{ HDR TOK "    reader: \"\"\n" KEY("aes-256"), 7, 13,
	  "reader: empty value" },
	{ HDR TOK "    reader: [a]\n" KEY("aes-256"), 7, 13,
	  "reader: expected a scalar, found a sequence" },
	{ HDR TOK "    reader: \"Virtual\\tPCD\"\n" KEY("aes-256"), 7, 13,
	  "control character in scalar" },
	{ HDR TOK "    reader: " "a123456789a123456789a123456789a123456789"
	      "a123456789a123456789a123456789a123456789a123456789"
	      "a123456789a123456789a123456789abcdefgh\n" KEY("aes-256"), 7, 13,
	  "reader: longer than 127 bytes" },
	{ HDR TOK "    reader: r\n    atr: 3b0\n" KEY("aes-256"), 8, 10,
	  "atr: \"3b0\" is not 1 to 33 bytes in hex" },
	{ HDR TOK "    reader: r\n    atr: \"3b:88\"\n" KEY("aes-256"), 8, 10,
	  "atr: \"3b:88\" is not 1 to 33 bytes in hex" },
	{ HDR TOK "    reader: r\n    atr: 3bxx\n" KEY("aes-256"), 8, 10,
	  "is not 1 to 33 bytes in hex" },
	{ HDR TOK "    reader: r\n    atr: \"\"\n" KEY("aes-256"), 8, 10,
	  "atr: empty value" },
	{ HDR TOK "    reader: r\n    atr: "
	      "3b000000000000000000000000000000000000000000000000000000000000000000\n"
	      KEY("aes-256"), 8, 10, "is not 1 to 33 bytes in hex" },
	{ HDR TOK "    reader: r\n    reader: s\n" KEY("aes-256"), 8, 5,
	  "duplicate key \"reader\" in token" },
	/* expiry: times, engagements, the map form of a grant */
	{ HDR TOK CLI KEY("aes-256")
	      "    allow:\n      c: {ops: [wrap], until: 2030-01-01}\n", 15, 31,
	  "key \"k\": until: \"2030-01-01\" is not an RFC 3339 time: not of "
	  "the form YYYY-MM-DDTHH:MM:SSZ" },
	{ HDR TOK CLI KEY("aes-256")
	      "    allow:\n      c:\n        ops: [wrap]\n"
	      "        until: 2030-01-01T00:00:00-00:00\n", 17, 16,
	  "-00:00 means an unknown offset" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 1\n"
	      "    until: 2030-01-01T00:00:00\n" KEY("aes-256"), 10, 12,
	  "client \"c\": until: \"2030-01-01T00:00:00\" is not an RFC 3339 "
	  "time: no time zone" },
	{ HDR TOK "clients:\n  - name: c\n    uid: 1\n"
	      "    until: 2030-02-30T00:00:00Z\n" KEY("aes-256"), 10, 12,
	  "no such day in that month" },
	{ HDR TOK "engagements:\n  - name: e\n    until: 2030-01-01 00:00:00Z\n"
	      KEY("aes-256"), 9, 12,
	  "engagement \"e\": until: \"2030-01-01 00:00:00Z\" is not an RFC "
	  "3339 time: date and time must be joined by T" },
	{ HDR TOK "engagements:\n  - name: e\n    until: 2030-06-30T23:59:60Z\n"
	      KEY("aes-256"), 9, 12, "leap second 60 cannot be represented" },
	{ HDR TOK "engagements:\n  - name: e\n    until: [2030]\n"
	      KEY("aes-256"), 9, 12, "until: expected a scalar, found a sequence" },
	{ HDR TOK "engagements:\n  - name: e\n    description: x\n"
	      KEY("aes-256"), 8, 5, "engagement \"e\": missing field \"until\"" },
	{ HDR TOK "engagements:\n  - name: e\n    ends: x\n" KEY("aes-256"), 9,
	  5, "unknown field \"ends\" in engagement" },
	{ HDR TOK "engagements: {name: e}\n" KEY("aes-256"), 7, 14,
	  "engagements: expected a sequence, found a mapping" },
	{ HDR TOK "engagements:\n  - {name: e, until: 2030-01-01T00:00:00Z}\n"
	      "  - {name: e, until: 2031-01-01T00:00:00Z}\n" KEY("aes-256"), 9,
	  12, "duplicate engagement name \"e\" (first at line 8)" },
	{ HDR TOK "clients:\n  - {name: c, uid: 1, engagement: nope}\n"
	      KEY("aes-256"), 8, 35,
	  "client \"c\": unknown engagement \"nope\"" },
	{ HDR TOK "engagements:\n  - {name: e, until: 2030-01-01T00:00:00Z}\n"
	      CLI KEY("aes-256") "    allow:\n      c: {ops: [wrap], "
	      "until: 2030-01-01T00:00:00Z, engagement: e}\n", 17, 65,
	  "key \"k\": until and engagement are exclusive" },
	{ HDR TOK CLI KEY("aes-256")
	      "    allow:\n      c: {until: 2030-01-01T00:00:00Z}\n", 15, 10,
	  "key \"k\": missing field \"ops\"" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: {ops: [wrap], "
	      "till: 2030-01-01T00:00:00Z}\n", 15, 24,
	  "unknown field \"till\" in grant" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: {ops: wrap}\n", 15,
	  16, "operations: expected a sequence, found a scalar" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: {ops: []}\n", 15,
	  16, "empty operation list for client \"c\"" },
	{ HDR TOK CLI KEY("aes-256") "    allow:\n      c: {ops: [sign]}\n",
	  15, 17, "operation \"sign\" does not fit aes-256 keys" },
	{ HDR TOK CLI KEY("aes-256")
	      "    allow:\n      c: {ops: [wrap], engagement: nope}\n", 15, 36,
	  "key \"k\": unknown engagement \"nope\"" },
	/* the audit key: an ec key of the keys section nobody may sign with */
	{ HDR "service:\n  audit_key: nope\n" TOK KEY("ec-p256"), 3, 14,
	  "audit_key: unknown key \"nope\"" },
	{ HDR "service:\n  audit_key: k\n" TOK KEY("aes-256"), 11, 11,
	  "key \"k\": type: the audit key (service.audit_key) must be ec-p256 "
	  "or ec-p384" },
	{ HDR "service:\n  audit_key: k\n" TOK KEY("rsa-3072"), 11, 11,
	  "must be ec-p256 or ec-p384" },
	{ HDR "service:\n  audit_key: k\n" TOK CLI KEY("ec-p256")
	      "    allow: { c: [verify, sign] }\n", 16, 26,
	  "key \"k\": operation \"sign\" on the audit key (service.audit_key) "
	  "is granted to nobody" },
	{ HDR "service:\n  checkpoint_lines: 5\n" TOK KEY("ec-p256"), 3, 21,
	  "checkpoint_lines: checkpoints need audit_key" },
	{ HDR "service:\n  checkpoint_seconds: 5\n" TOK KEY("ec-p256"), 3, 23,
	  "checkpoint_seconds: checkpoints need audit_key" },
	{ HDR "service:\n  audit_key: k\n  checkpoint_seconds: 0\n" TOK
	      KEY("ec-p256"), 4, 23,
	  "checkpoint_seconds: 0 is out of range (1 to 86400)" },
	{ HDR "service:\n  audit_key: k\n  checkpoint_lines: 1000000001\n" TOK
	      KEY("ec-p256"), 4, 21, "checkpoint_lines: 1000000001 is out of range" },
	{ HDR "service:\n  audit_rotate_bytes: 100\n" TOK KEY("ec-p256"), 3, 23,
	  "audit_rotate_bytes: 100 is out of range (4096 to 1099511627776)" },
	{ HDR "service:\n  audit_key: \"k/1\"\n" TOK KEY("ec-p256"), 3, 14,
	  "audit_key: \"k/1\" is not a valid name" },
};

/* reader and atr: absent by default; the exact name; the ATR as bytes. */
static void
test_reader_binding(void **state)
{
	static const uint8_t atr[] = { 0x3b, 0x88, 0x80, 0x01, 0xfe };
	static const char max_atr[] = "3B0102030405060708090a0b0c0d0e0f10"
				      "1112131415161718191a1b1c1d1e1f20";
	char *doc;
	pol_policy *p = load_good(HDR TOK KEY("aes-256"));

	assert_null(p->tokens[0].reader);
	assert_int_equal(p->tokens[0].atr_len, 0);
	pol_free(p);

	p = load_good(HDR TOK "    reader: \"Virtual PCD 00 00\"\n" KEY("aes-256"));
	assert_string_equal(p->tokens[0].reader, "Virtual PCD 00 00");
	assert_int_equal(p->tokens[0].atr_len, 0);
	pol_free(p);

	p = load_good(HDR TOK "    reader: r\n    atr: 3b888001FE\n" KEY("aes-256"));
	assert_string_equal(p->tokens[0].reader, "r");
	assert_int_equal(p->tokens[0].atr_len, sizeof(atr));
	assert_memory_equal(p->tokens[0].atr, atr, sizeof(atr));
	pol_free(p);

	/* 33 bytes, the longest ATR, and a 127-byte name fit. */
	assert_true(asprintf(&doc, HDR TOK "    reader: %0127d\n    atr: %s\n"
			     KEY("aes-256"), 7, max_atr) > 0);
	p = load_good(doc);
	assert_int_equal(strlen(p->tokens[0].reader), POL_READER_MAX);
	assert_int_equal(p->tokens[0].atr_len, POL_ATR_MAX);
	assert_int_equal(p->tokens[0].atr[0], 0x3b);
	assert_int_equal(p->tokens[0].atr[32], 0x20);
	pol_free(p);
	free(doc);
}

static bool
check_error(const char *what, const char *doc, size_t len, unsigned line,
	    unsigned col, const char *msg)
{
	static pol_policy sentinel;
	pol_policy *p = &sentinel;
	char err[512] = "", where[64];
	ct_err r;

	r = load("bad.yaml", doc, len, &p, err, sizeof(err));
	snprintf(where, sizeof(where), "bad.yaml:%u:%u: ", line, col);
	if (r != CT_ERR_POLICY || p != NULL ||
	    strncmp(err, where, strlen(where)) != 0 ||
	    strstr(err, msg) == NULL) {
		print_error("%s: got %d \"%s\", want %s...%s\n", what, r, err,
			    where, msg);
		return false;
	}
	return true;
}

static void
expect_error(const char *what, const char *doc, size_t len, unsigned line,
	     unsigned col, const char *msg)
{
	assert_true(check_error(what, doc, len, line, col, msg));
}

static void
test_bad_documents(void **state)
{
	char what[32];
	size_t i, failed = 0;

	/* all cases run, so that one failure does not hide the next */
	for (i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		snprintf(what, sizeof(what), "bad_docs[%zu]", i);
		if (!check_error(what, bad_docs[i].doc, strlen(bad_docs[i].doc),
				 bad_docs[i].line, bad_docs[i].col,
				 bad_docs[i].msg))
			failed++;
	}
	assert_int_equal(failed, 0);
}

/* Documents holding NUL bytes, passed with their length. */
static void
test_embedded_nul(void **state)
{
	static const char doc[] = HDR "tokens:\n  - name: t\0x\n" KEY("aes-256");
	/* UTF-16 with a BOM: only UTF-8 is read */
	static const char utf16[] = "\xff\xfe" "v\0e\0r\0s\0i\0o\0n\0:\0 \0"
				    "1\0\n\0";

	expect_error("raw NUL", doc, sizeof(doc) - 1, 3, 12,
		     "control characters are not allowed");
	expect_error("UTF-16", utf16, sizeof(utf16) - 1, 1, 1,
		     "invalid leading UTF-8 octet");
}

static void
test_oversized(void **state)
{
	static const char head[] = HDR "tokens:\n  - name: t\n    module: /m.so\n"
				   "    label: ";
	static const char tail[] = "\n    pin_env: PIN\n" KEY("aes-256");
	size_t n = sizeof(head) - 1 + 4097 + sizeof(tail) - 1;
	char *doc = malloc(POL_FILE_MAX + 1);

	assert_non_null(doc);
	/* a 4097-byte scalar */
	memcpy(doc, head, sizeof(head) - 1);
	memset(doc + sizeof(head) - 1, 'a', 4097);
	memcpy(doc + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	expect_error("scalar", doc, n, 5, 12, "scalar longer than 4096 bytes");

	/* a 4096-byte one gets as far as the label check */
	memmove(doc + sizeof(head) - 1 + 4096, doc + sizeof(head) - 1 + 4097,
		sizeof(tail) - 1);
	expect_error("scalar", doc, n - 1, 5, 12, "label: longer than 32");

	/* a document one byte over the limit, refused before parsing */
	memset(doc, '#', POL_FILE_MAX + 1);
	expect_error("document", doc, POL_FILE_MAX + 1, 1, 1,
		     "document larger than 1048576 bytes");
	free(doc);
}

static void
truncate_each(const char *doc)
{
	size_t len = strlen(doc), i, ok = 0;
	char err[512];
	pol_policy *p;
	ct_err r;

	for (i = 0; i < len; i++) {
		err[0] = '\0';
		r = load("trunc.yaml", doc, i, &p, err, sizeof(err));
		if (r == CT_OK) {
			assert_non_null(p);
			pol_free(p);
			ok++;
			continue;
		}
		if (r != CT_ERR_POLICY || p != NULL ||
		    strncmp(err, "trunc.yaml:", 11) != 0) {
			print_error("prefix %zu: %d \"%s\"\n", i, r, err);
			fail();
		}
	}
	/* cuts after a complete last key load; most cuts do not */
	assert_true(ok > 0 && ok < len / 2);
}

static void
test_truncated(void **state)
{
	truncate_each(good_doc);
	truncate_each(expiring_doc);
}

#ifndef CT_WITH_ASAN
/* Fail each allocation of a good load in turn: every failure must end in
 * a clean error (NOMEM, or INTERNAL when OpenSSL fails) and free what it
 * took; once no allocation is left to fail, the load succeeds.  Returns
 * how many allocations a load makes. */
static unsigned long
fail_each_allocation(const char *doc, size_t len, unsigned long *nomem)
{
	unsigned long n;
	char err[512];
	pol_policy *p;
	ct_err r;

	for (n = 1;; n++) {
		err[0] = '\0';
		fail_at = n;
		r = pol_load_buffer("oom.yaml", doc, len, &p, err, sizeof(err));
		if (fail_at > 0) /* nothing left to fail */
			break;
		if (r == CT_OK) { /* a failure the libraries recovered from */
			pol_free(p);
			continue;
		}
		if ((r != CT_ERR_NOMEM && r != CT_ERR_INTERNAL) || p != NULL ||
		    strncmp(err, "oom.yaml:", 9) != 0) {
			print_error("allocation %lu: %d \"%s\"\n", n, r, err);
			fail();
		}
		*nomem += r == CT_ERR_NOMEM;
	}
	fail_at = 0;
	assert_int_equal(r, CT_OK);
	pol_free(p);
	return n - 1;
}

static void
test_alloc_failures(void **state)
{
	size_t len = strlen(good_doc), in_use;
	unsigned long n, nomem = 0;
	void *volatile probe;
	char *copy;

	/* Under valgrind, whose malloc wins inside the libraries, the
	 * injection is not seen: skip. */
	fail_at = 1;
	if ((probe = strdup("")) != NULL) {
		fail_at = 0;
		free(probe);
		skip();
	}
	assert_non_null(copy = strdup(good_doc));
	n = fail_each_allocation(copy, len, &nomem);
	assert_true(n > 50 && nomem > 0);
	/* The first round warmed up the libraries' one-time state; a second
	 * round must give back every byte it takes. */
	in_use = mallinfo2().uordblks;
	assert_int_equal(fail_each_allocation(copy, len, &nomem), n);
	assert_int_equal(mallinfo2().uordblks, in_use);
	free(copy);
	/* engagements and grants that end */
	assert_non_null(copy = strdup(expiring_doc));
	assert_true(fail_each_allocation(copy, strlen(copy), &nomem) > 20);
	free(copy);
}
#else
static void
test_alloc_failures(void **state)
{
	skip(); /* ASan owns malloc */
}
#endif

static void
test_small_err_buffer(void **state)
{
	char err[8];
	pol_policy *p;

	memset(err, 'x', sizeof(err));
	assert_int_equal(load("bad.yaml", "x: 1\n", 5, &p, err, sizeof(err)),
			 CT_ERR_POLICY);
	assert_null(p);
	assert_string_equal(err, "bad.yam");
	assert_int_equal(load("bad.yaml", "x: 1\n", 5, &p, NULL, 0),
			 CT_ERR_POLICY);
	assert_null(p);
}

/* Control characters in the name given do not reach the message. */
static void
test_message_sanitized(void **state)
{
	char err[512];
	pol_policy *p;

	assert_int_equal(load("a\033[31m\nb", "x: 1\n", 5, &p, err,
			      sizeof(err)), CT_ERR_POLICY);
	assert_string_equal(err,
			    "a?[31m?b:1:1: unknown field \"x\" in policy");
}

static void
test_load_file(void **state)
{
	char dir[] = "/tmp/test_policy.XXXXXX", path[256], want[512];
	char err[512], cwd[PATH_MAX];
	pol_policy *p = NULL;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(good_doc, 1, strlen(good_doc), f),
			 strlen(good_doc));
	assert_int_equal(fclose(f), 0);

	assert_int_equal(pol_load_file(path, &p, err, sizeof(err)), CT_OK);
	assert_string_equal(p->path, path);
	snprintf(want, sizeof(want), "%s/pin.txt", dir);
	assert_string_equal(p->tokens[0].pin_file, want);
	snprintf(want, sizeof(want), "%s/run/custodian.sock", dir);
	assert_string_equal(p->socket, want);
	pol_free(p);

	/* a relative file name resolves against the current directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/tmp"), 0);
	assert_int_equal(pol_load_file(dir + 5, &p, err, sizeof(err)),
			 CT_ERR_IO);
	assert_null(p);
	snprintf(path, sizeof(path), "%s/policy.yaml", dir + 5);
	assert_int_equal(pol_load_file(path, &p, err, sizeof(err)), CT_OK);
	assert_string_equal(p->path, path);
	snprintf(want, sizeof(want), "%s/pin.txt", dir);
	assert_string_equal(p->tokens[0].pin_file, want);
	pol_free(p);
	assert_int_equal(chdir(cwd), 0);

	/* a directory, a FIFO (must not block) and a missing file */
	p = NULL;
	assert_int_equal(pol_load_file(dir, &p, err, sizeof(err)), CT_ERR_IO);
	assert_null(p);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(strncmp(err, dir, strlen(dir)), 0);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(pol_load_file(path, &p, err, sizeof(err)), CT_ERR_IO);
	assert_null(p);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	assert_int_equal(pol_load_file(path, &p, err, sizeof(err)), CT_ERR_IO);
	assert_null(p);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));

	/* a bad file reports its own name */
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	assert_non_null(f = fopen(path, "w"));
	assert_true(fputs("version: 1\ntokens: 3\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(pol_load_file(path, &p, err, sizeof(err)),
			 CT_ERR_POLICY);
	snprintf(want, sizeof(want), "%s:2:9: tokens: expected a sequence",
		 path);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_document),
		cmocka_unit_test(test_service_fields),
		cmocka_unit_test(test_reader_binding),
		cmocka_unit_test(test_audit_fields),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_user_group_root),
		cmocka_unit_test(test_service_run_as_and_limits),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_expiring_parse),
		cmocka_unit_test(test_expiry_boundaries),
		cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_message_sanitized),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
