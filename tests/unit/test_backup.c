/* test_backup.c: backup-capable keys, the wrapping key ceremony, backup
 * files and restore, against real SoftHSM2 tokens.
 *
 * The group setup makes a private SoftHSM2 store with four tokens: svc (the
 * service token), bak (the backup token), new (a replacement service token)
 * and spare.  It runs the ceremony bak -> svc and bak -> new before anyone
 * logs in (the SO logs in there), then logs in to svc and new, generates
 * the policy's keys on svc and loads the key store.  Some checks go behind
 * the layer's back through the module's own function list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "custodian/ct_backup.h"
#include "custodian/ct_keys.h"
#include "softhsm.h"

static const char policy_doc[] =
	"version: 1\n"
	"tokens:\n"
	"  - {name: svc, module: " MODULE ", label: svc, pin_file: /nonexistent}\n"
	"keys:\n"
	"  - {name: vault, type: aes-256, token: svc, backup: true}\n"
	"  - {name: signer, type: ec-p256, token: svc, backup: true}\n"
	"  - {name: rsa, type: rsa-3072, token: svc, backup: true}\n"
	"  - {name: id, type: ec-p256, token: svc}\n";

/* The version labels the setup generates, in the file's order. */
static const char *const backed_up[] = {
	"rsa/v1", "signer/v1", "signer/v2", "vault/v1",
};

struct fixture {
	char dir[64], file[96];
	p11_token *svc, *new, *bak, *spare;
	p11_session *s, *ns;
	bool created_first, created_second;
	pol_policy *pol;
	ct_keystore *ks;
	ct_backup_signer signer;
	EVP_PKEY *id_pub;
	uint8_t *buf;	/* the backup file */
	size_t len;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
};

/* Helpers */

static ct_backup_vstate
all_active(void *arg, const char *key, uint32_t version)
{
	return CT_VSTATE_ACTIVE;
}

static ct_backup_vstate
none_known(void *arg, const char *key, uint32_t version)
{
	return CT_VSTATE_UNKNOWN;
}

/* The state named by arg for the label "key/vN" in it, else unknown. */
static ct_backup_vstate
one_state(void *arg, const char *key, uint32_t version)
{
	const char *const *rule = arg;
	char label[P11_LABEL_MAX];

	snprintf(label, sizeof(label), "%s/v%u", key, version);
	return strcmp(label, rule[0]) == 0 ? (ct_backup_vstate)atoi(rule[1]) :
	    CT_VSTATE_ACTIVE;
}

/* Labels of private and secret keys on the token but the wrapping key's
 * twin, as one string. */
static void
token_keys(p11_session *s, char *out, size_t outlen)
{
	char **labels = NULL;
	size_t n = 0, i, off = 0;

	assert_int_equal(p11_list_labels(s, "", &labels, &n), CT_OK);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		if (strcmp(labels[i], CT_BACKUP_WRAP_LABEL) != 0)
			off += (size_t)snprintf(out + off, outlen - off, "%s%s",
			    off ? " " : "", labels[i]);
	p11_labels_free(labels, n);
}

static CK_OBJECT_HANDLE
find(p11_session *s, p11_obj_class cls, const char *label)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

	assert_int_equal(p11_find(s, cls, label, &h), CT_OK);
	return h;
}

static CK_RV
raw_value(struct fixture *fx, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	uint8_t v[4096];
	CK_ATTRIBUTE a = { CKA_VALUE, v, sizeof(v) };

	return fx->f->C_GetAttributeValue(h, obj, &a, 1);
}

static void
read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	*len = (size_t)st.st_size;
	assert_non_null(*buf = malloc(*len));
	assert_int_equal(fread(*buf, 1, *len, f), *len);
	fclose(f);
}

static void
write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static ct_err
restore(struct fixture *fx, const char *path, ct_backup_vstate_fn state, void *arg,
    unsigned flags, ct_restored **res, size_t *n, char *err)
{
	return ct_backup_restore(fx->ns, fx->pol, 0, path, fx->id_pub, state,
	    arg, flags, res, n, err, 512);
}

/* Remove every restored version from the new token. */
static void
clear_new(struct fixture *fx)
{
	char buf[1024];
	size_t i, gone;

	for (i = 0; i < sizeof(backed_up) / sizeof(backed_up[0]); i++)
		assert_int_equal(p11_destroy_label(fx->ns, backed_up[i], &gone),
		    CT_OK);
	token_keys(fx->ns, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* Setup */

static int
group_teardown(void **state)
{
	struct fixture *fx = *state;

	free(fx->buf);
	EVP_PKEY_free(fx->id_pub);
	ct_keys_free(fx->ks);
	pol_free(fx->pol);
	p11_session_free(fx->s);
	p11_session_free(fx->ns);
	p11_token_free(fx->svc);
	p11_token_free(fx->new);
	p11_token_free(fx->bak);
	p11_token_free(fx->spare);
	if (fx->dl != NULL)
		dlclose(fx->dl);
	return softhsm_store_remove(fx->dir);
}

static int
open_token(const char *label, p11_token **t, char *err)
{
	p11_token_spec spec = { MODULE, label, NULL };

	return p11_token_open(&spec, t, err, 256) == CT_OK ? 0 : -1;
}

static int
group_setup(void **state)
{
	static struct fixture fx;
	static const char *const gen[] = {
		"vault/v1", "signer/v1", "signer/v2", "rsa/v1", "id/v1",
	};
	static const p11_key_type types[] = {
		P11_KEY_AES_256, P11_KEY_EC_P256, P11_KEY_EC_P256,
		P11_KEY_RSA_3072, P11_KEY_EC_P256,
	};
	p11_pin pin = { PIN, 4 }, so = { SO_PIN, 4 };
	const ct_keyver *kv;
	char err[512] = "";
	size_t i, n;

	*state = &fx;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_backup.XXXXXX");
	if (softhsm_store(fx.dir) != 0)
		goto fail;
	snprintf(fx.file, sizeof(fx.file), "%s/backup.ctb", fx.dir);
	if (init_token("svc") != 0 || init_token("bak") != 0 ||
	    init_token("new") != 0 || init_token("spare") != 0)
		goto fail;
	if (open_token("svc", &fx.svc, err) != 0 ||
	    open_token("new", &fx.new, err) != 0 ||
	    open_token("bak", &fx.bak, err) != 0 ||
	    open_token("spare", &fx.spare, err) != 0)
		goto fail;
	/* The SO logs in during the ceremony: before the user does. */
	if (p11_wrapkey_transport(fx.bak, &pin, &so, fx.svc, &so,
	    CT_BACKUP_WRAP_LABEL, &fx.created_first, err, sizeof(err)) != CT_OK ||
	    p11_wrapkey_transport(fx.bak, &pin, &so, fx.new, &so,
	    CT_BACKUP_WRAP_LABEL, &fx.created_second, err, sizeof(err)) != CT_OK)
		goto fail;
	if (p11_token_login(fx.svc, PIN, 4) != CT_OK ||
	    p11_token_login(fx.new, PIN, 4) != CT_OK ||
	    p11_session_open(fx.svc, &fx.s) != CT_OK ||
	    p11_session_open(fx.new, &fx.ns) != CT_OK)
		goto fail;
	if (pol_load_buffer("policy", policy_doc, strlen(policy_doc), &fx.pol,
	    err, sizeof(err)) != CT_OK)
		goto fail;
	for (i = 0; i < sizeof(gen) / sizeof(gen[0]); i++)
		if (p11_generate_key(fx.s, types[i], gen[i],
		    strncmp(gen[i], "id/", 3) != 0) != CT_OK)
			goto fail;
	if (ct_keys_load(fx.pol, &fx.s, &fx.ks, err, sizeof(err)) != CT_OK ||
	    (kv = ct_key_version(ct_keys_find(fx.ks, "id"), 0)) == NULL ||
	    !EVP_PKEY_up_ref(kv->pub))
		goto fail;
	fx.id_pub = kv->pub;
	fx.signer.key = kv->handle;
	fx.signer.sign = POL_SIGN_ECDSA_SHA256;
	if (ct_backup_create(fx.s, fx.pol, 0, fx.ks, all_active, NULL, &fx.signer,
	    fx.file, &n, err, sizeof(err)) != CT_OK || n != 4)
		goto fail;
	if (raw_functions(&fx.dl, &fx.f) != 0)
		goto fail;
	return 0;
 fail:
	fprintf(stderr, "group setup failed: %s\n", err);
	(void)group_teardown(state);
	return -1;
}

/* Tests */

/* The ceremony made the key on bak once, and trusted twins elsewhere. */
static void
test_ceremony(void **state)
{
	struct fixture *fx = *state;
	p11_pin pin = { PIN, 4 }, so = { SO_PIN, 4 }, bad = { "0000", 4 };
	CK_SESSION_HANDLE h = raw_session(fx->f, "svc");
	CK_OBJECT_HANDLE twin = find(fx->s, P11_OBJ_SECRET, CT_BACKUP_WRAP_LABEL);
	char err[512];
	bool created;

	assert_true(fx->created_first);
	assert_false(fx->created_second);
	assert_true(raw_bool(fx->f, h, twin, CKA_TRUSTED));
	assert_true(raw_bool(fx->f, h, twin, CKA_SENSITIVE));
	assert_false(raw_bool(fx->f, h, twin, CKA_EXTRACTABLE));
	assert_int_equal(raw_value(fx, h, twin), CKR_ATTRIBUTE_SENSITIVE);
	/* The twin unwraps only private, sensitive, backup-capable keys. */
	assert_true(raw_bool(fx->f, h, twin, CKA_UNWRAP));
	fx->f->C_CloseSession(h);

	/* A wrong SO PIN: refused, nothing made on either token. */
	assert_int_equal(p11_wrapkey_transport(fx->bak, &pin, &bad, fx->spare,
	    &so, CT_BACKUP_WRAP_LABEL, &created, err, sizeof(err)), CT_ERR_PIN);
	assert_non_null(strstr(err, "SO login"));
	assert_false(created);
	assert_int_equal(p11_wrapkey_transport(fx->bak, &pin, &so, fx->spare,
	    &so, CT_BACKUP_WRAP_LABEL, &created, err, sizeof(err)), CT_OK);
	assert_false(created);
	assert_int_equal(p11_wrapkey_transport(fx->bak, &pin, &so, fx->spare,
	    &so, CT_BACKUP_WRAP_LABEL, &created, err, sizeof(err)),
	    CT_ERR_EXISTS);
}

/* The token itself keeps a backup-capable key in: no untrusted wrapping
 * key, no reading its value.  Plain keys stay non-extractable. */
static void
test_backup_capable_key(void **state)
{
	struct fixture *fx = *state;
	CK_OBJECT_HANDLE key = find(fx->s, P11_OBJ_PRIVATE, "signer/v1");
	CK_OBJECT_HANDLE plain = find(fx->s, P11_OBJ_PRIVATE, "id/v1");
	CK_OBJECT_HANDLE twin = find(fx->s, P11_OBJ_SECRET, CT_BACKUP_WRAP_LABEL);
	CK_OBJECT_HANDLE untrusted;
	CK_SESSION_HANDLE h = raw_session(fx->f, "svc");
	const pol_key *pk = pol_find_key(fx->pol, "signer");
	pol_key as_plain = *pk;
	p11_key_attrs a;
	uint8_t out[4096];
	size_t len = sizeof(out);

	assert_int_equal(p11_generate(fx->s, P11_KEY_AES_256, "untrusted"), CT_OK);
	untrusted = find(fx->s, P11_OBJ_SECRET, "untrusted");
	assert_int_not_equal(p11_wrap(fx->s, untrusted, key, out, &len), CT_OK);
	assert_string_equal(p11_session_last_error(fx->s),
	    "C_WrapKey: CKR_KEY_NOT_WRAPPABLE");
	assert_int_equal(raw_value(fx, h, key), CKR_ATTRIBUTE_SENSITIVE);
	len = sizeof(out);
	assert_int_equal(p11_wrap(fx->s, twin, key, out, &len), CT_OK);
	len = sizeof(out);
	assert_int_not_equal(p11_wrap(fx->s, twin, plain, out, &len), CT_OK);
	assert_string_equal(p11_session_last_error(fx->s),
	    "C_WrapKey: CKR_KEY_UNEXTRACTABLE");

	/* One check serves both kinds, and tells them apart. */
	assert_int_equal(p11_get_key_attrs(fx->s, key, &a), CT_OK);
	assert_true(a.sensitive && a.extractable && a.wrap_with_trusted &&
	    a.always_sensitive && a.local);
	assert_true(ct_key_attrs_ok(pk, &a));
	as_plain.backup = false;
	assert_false(ct_key_attrs_ok(&as_plain, &a));
	assert_int_equal(p11_get_key_attrs(fx->s, plain, &a), CT_OK);
	assert_true(ct_key_attrs_ok(pol_find_key(fx->pol, "id"), &a));
	assert_false(ct_key_attrs_ok(pk, &a));
	assert_int_equal(p11_destroy(fx->s, untrusted), CT_OK);
	fx->f->C_CloseSession(h);
}

/* Restore onto the new token: what the old keys made, the restored keys
 * open and verify. */
static void
test_restore_round_trip(void **state)
{
	struct fixture *fx = *state;
	static const uint8_t iv[12] = { 1, 2, 3 }, pt[] = "a data key......";
	uint8_t ct[64], back[64], dg[32] = { 7 }, sig[512];
	size_t ctlen = sizeof(ct), backlen = sizeof(back), siglen = sizeof(sig);
	size_t n, i;
	ct_restored *res = NULL;
	ct_backup *b = NULL;
	CK_OBJECT_HANDLE h;
	CK_SESSION_HANDLE raw;
	p11_key_attrs a;
	char err[512], keys[1024];
	bool ok;

	assert_int_equal(p11_aes_gcm_encrypt(fx->s, find(fx->s, P11_OBJ_SECRET,
	    "vault/v1"), iv, NULL, 0, pt, sizeof(pt), ct, &ctlen), CT_OK);
	assert_int_equal(p11_sign(fx->s, find(fx->s, P11_OBJ_PRIVATE,
	    "signer/v2"), P11_SIG_ECDSA, dg, sizeof(dg), sig, &siglen), CT_OK);

	assert_int_equal(restore(fx, fx->file, none_known, NULL, 0, &res, &n,
	    err), CT_OK);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		char label[P11_LABEL_MAX];

		snprintf(label, sizeof(label), "%s/v%u", res[i].name,
		    res[i].version);
		assert_string_equal(label, backed_up[i]);
		assert_int_equal(res[i].state, CT_VSTATE_ACTIVE);
		assert_false(res[i].existed);
	}
	free(res);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "rsa/v1 signer/v1 signer/v2 vault/v1");

	h = find(fx->ns, P11_OBJ_SECRET, "vault/v1");
	assert_int_equal(p11_aes_gcm_decrypt(fx->ns, h, iv, NULL, 0, ct, ctlen,
	    back, &backlen), CT_OK);
	assert_memory_equal(back, pt, sizeof(pt));
	/* Restored keys are backup-capable again, and pass the one check. */
	assert_int_equal(p11_get_key_attrs(fx->ns, h, &a), CT_OK);
	assert_true(a.sensitive && a.extractable && a.wrap_with_trusted &&
	    !a.local);
	assert_true(ct_key_attrs_ok(pol_find_key(fx->pol, "vault"), &a));
	raw = raw_session(fx->f, "new");
	assert_int_equal(raw_value(fx, raw, h), CKR_ATTRIBUTE_SENSITIVE);
	fx->f->C_CloseSession(raw);

	/* The old signature verifies with the restored public half; the
	 * restored private half signs for the file's public key. */
	assert_int_equal(ct_backup_read(fx->file, fx->id_pub, &b, err,
	    sizeof(err)), CT_OK);
	assert_int_equal(ct_verify_digest(b->entries[2].pub,
	    POL_SIGN_ECDSA_SHA256, dg, sizeof(dg), sig, siglen, &ok), CT_OK);
	assert_true(ok);
	siglen = sizeof(sig);
	assert_int_equal(p11_sign(fx->ns, find(fx->ns, P11_OBJ_PRIVATE,
	    "signer/v2"), P11_SIG_ECDSA, dg, sizeof(dg), sig, &siglen), CT_OK);
	assert_int_equal(ct_verify_digest(b->entries[2].pub,
	    POL_SIGN_ECDSA_SHA256, dg, sizeof(dg), sig, siglen, &ok), CT_OK);
	assert_true(ok);
	ct_backup_free(b);

	/* Again: everything is there already, nothing is made twice. */
	assert_int_equal(restore(fx, fx->file, none_known, NULL, 0, &res, &n,
	    err), CT_OK);
	for (i = 0; i < n; i++)
		assert_true(res[i].existed);
	free(res);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "rsa/v1 signer/v1 signer/v2 vault/v1");
	clear_new(fx);
}

/* The file as docs/backup.md describes it; a wrapped AES key is the key
 * wrapped (32 bytes and 8 of the key wrap), never the key itself. */
static void
test_file_format(void **state)
{
	struct fixture *fx = *state;
	ct_backup *b = NULL;
	char err[512];

	assert_int_equal(ct_backup_read(fx->file, fx->id_pub, &b, err,
	    sizeof(err)), CT_OK);
	assert_int_equal(b->n_entries, 4);
	assert_memory_equal(b->policy_digest, fx->pol->digest, 32);
	assert_string_equal(b->entries[3].name, "vault");
	assert_null(b->entries[3].pub);
	assert_int_equal(b->entries[3].wrapped_len, 40); /* 32 + 8 */
	assert_non_null(b->entries[0].pub);
	assert_int_equal(memcmp(b->buf, "CTBACKUP\1", 9), 0);
	ct_backup_free(b);
}

/* One flipped bit anywhere, or the file cut anywhere: refused. */
static void
test_tamper_every_byte(void **state)
{
	struct fixture *fx = *state;
	uint8_t *buf = NULL;
	size_t len, i;
	ct_backup *b;
	char err[512];

	read_file(fx->file, &buf, &len);
	assert_int_equal(ct_backup_parse(buf, len, fx->id_pub, &b, err,
	    sizeof(err)), CT_OK);
	ct_backup_free(b);
	for (i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		if (ct_backup_parse(buf, len, fx->id_pub, &b, err, sizeof(err)) !=
		    CT_ERR_BAD_BACKUP)
			fail_msg("byte %zu flipped: accepted", i);
		buf[i] ^= 0x01;
	}
	for (i = 0; i < len; i++)
		if (ct_backup_parse(buf, i, fx->id_pub, &b, err, sizeof(err)) !=
		    CT_ERR_BAD_BACKUP)
			fail_msg("cut at %zu: accepted", i);
	/* Checked against another key: refused as well. */
	assert_int_equal(ct_backup_parse(buf, len,
	    ct_key_version(ct_keys_find(fx->ks, "signer"), 0)->pub, &b, err,
	    sizeof(err)), CT_ERR_BAD_BACKUP);
	assert_non_null(strstr(err, "signature does not verify"));
	free(buf);
}

/* A tampered file on disk: refused with a clear error, nothing written. */
static void
test_restore_tampered(void **state)
{
	struct fixture *fx = *state;
	char path[128], err[512], keys[1024], twin[1024];
	uint8_t *buf = NULL;
	ct_restored *res = NULL;
	size_t len, n;

	token_keys(fx->ns, twin, sizeof(twin));
	read_file(fx->file, &buf, &len);
	buf[len / 2] ^= 0x80;
	snprintf(path, sizeof(path), "%s/tampered.ctb", fx->dir);
	write_file(path, buf, len);
	assert_int_equal(restore(fx, path, none_known, NULL, 0, &res, &n, err),
	    CT_ERR_BAD_BACKUP);
	assert_non_null(strstr(err, "digest mismatch"));
	assert_null(res);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, twin);
	free(buf);
}

/* A file naming a version the caller has revoked or destroyed brings it
 * back: refused, nothing written.  Backups leave such versions out. */
static void
test_revoked(void **state)
{
	struct fixture *fx = *state;
	const char *revoked[] = { "signer/v1", "3" }, *gone[] = { "rsa/v1", "4" };
	const char *unknown[] = { "vault/v1", "0" };
	char path[128], err[512], keys[1024];
	ct_restored *res = NULL;
	ct_backup *b = NULL;
	size_t n;

	assert_int_equal(restore(fx, fx->file, one_state, revoked, 0, &res, &n,
	    err), CT_ERR_REVOKED);
	assert_string_equal(err, "signer/v1 is revoked: the backup would bring "
	    "it back; refused");
	assert_int_equal(restore(fx, fx->file, one_state, gone, 0, &res, &n,
	    err), CT_ERR_REVOKED);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "");

	snprintf(path, sizeof(path), "%s/partial.ctb", fx->dir);
	assert_int_equal(ct_backup_create(fx->s, fx->pol, 0, fx->ks, one_state,
	    revoked, &fx->signer, path, &n, err, sizeof(err)), CT_OK);
	assert_int_equal(n, 3);
	assert_int_equal(ct_backup_read(path, fx->id_pub, &b, err, sizeof(err)),
	    CT_OK);
	assert_string_equal(b->entries[1].name, "signer");
	assert_int_equal(b->entries[1].version, 2);
	ct_backup_free(b);
	/* A version the caller has no state for: no backup at all. */
	assert_int_equal(ct_backup_create(fx->s, fx->pol, 0, fx->ks, one_state,
	    unknown, &fx->signer, path, &n, err, sizeof(err)), CT_ERR_INTERNAL);
	assert_string_equal(err, "vault/v1: no state recorded");
}

/* The file must fit the policy, and the labels must be free. */
static void
test_restore_refusals(void **state)
{
	struct fixture *fx = *state;
	static const char other_doc[] =
		"version: 1\n"
		"tokens:\n"
		"  - {name: svc, module: " MODULE ", label: svc, pin_file: /x}\n"
		"keys:\n"
		"  - {name: vault, type: aes-256, token: svc, backup: true}\n"
		"  - {name: signer, type: ec-p256, token: svc}\n"
		"  - {name: rsa, type: rsa-3072, token: svc, backup: true}\n";
	pol_policy *other = NULL, *mine = fx->pol;
	ct_restored *res = NULL;
	char err[512], keys[1024];
	size_t n;

	assert_int_equal(pol_load_buffer("other", other_doc, strlen(other_doc),
	    &other, err, sizeof(err)), CT_OK);
	fx->pol = other;
	assert_int_equal(restore(fx, fx->file, none_known, NULL, 0, &res, &n,
	    err), CT_ERR_POLICY);
	assert_string_equal(err, "the backup was made under another policy "
	    "(digest differs)");
	assert_int_equal(restore(fx, fx->file, none_known, NULL,
	    CT_RESTORE_ANY_POLICY, &res, &n, err), CT_ERR_POLICY);
	assert_non_null(strstr(err, "signer/v1: the policy has no backup: true "
	    "key \"signer\""));
	fx->pol = mine;
	pol_free(other);

	/* Another key under a label the file uses: nothing is written. */
	assert_int_equal(p11_generate_key(fx->ns, P11_KEY_EC_P256, "signer/v2",
	    true), CT_OK);
	assert_int_equal(restore(fx, fx->file, none_known, NULL, 0, &res, &n,
	    err), CT_ERR_EXISTS);
	assert_string_equal(err, "signer/v2: the token already holds another "
	    "object with this label");
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "signer/v2");
	clear_new(fx);
}

/* Leftovers of an interrupted restore carry the pending prefix, are never
 * taken for versions, and the next restore removes them. */
static void
test_leftovers(void **state)
{
	struct fixture *fx = *state;
	CK_OBJECT_HANDLE twin = find(fx->ns, P11_OBJ_SECRET, CT_BACKUP_WRAP_LABEL);
	ct_backup *b = NULL;
	ct_restored *res = NULL;
	CK_OBJECT_HANDLE h;
	char err[512], keys[1024], pending[P11_LABEL_MAX];
	uint32_t *vers = NULL;
	size_t n;

	/* What a crash after the first unwrap leaves behind. */
	assert_int_equal(ct_backup_read(fx->file, fx->id_pub, &b, err,
	    sizeof(err)), CT_OK);
	snprintf(pending, sizeof(pending), "%srsa/v1", CT_BACKUP_PENDING_PREFIX);
	assert_int_equal(p11_unwrap(fx->ns, twin, P11_KEY_RSA_3072, pending,
	    b->entries[0].id, b->entries[0].id_len, b->entries[0].wrapped,
	    b->entries[0].wrapped_len, &h), CT_OK);
	ct_backup_free(b);
	assert_int_equal(ct_key_versions(fx->ns, "rsa", &vers, &n), CT_OK);
	assert_int_equal(n, 0);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "custodian-restoring/rsa/v1");

	assert_int_equal(restore(fx, fx->file, none_known, NULL, 0, &res, &n,
	    err), CT_OK);
	free(res);
	token_keys(fx->ns, keys, sizeof(keys));
	assert_string_equal(keys, "rsa/v1 signer/v1 signer/v2 vault/v1");
	clear_new(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceremony),
		cmocka_unit_test(test_backup_capable_key),
		cmocka_unit_test(test_file_format),
		cmocka_unit_test(test_restore_round_trip),
		cmocka_unit_test(test_tamper_every_byte),
		cmocka_unit_test(test_restore_tampered),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_restore_refusals),
		cmocka_unit_test(test_leftovers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
