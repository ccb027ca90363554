/* ct_backup.c: backup files and restore (see ct_backup.h, docs/backup.md). */
#include "custodian/ct_backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "custodian/ct_util.h"

#define MAGIC "CTBACKUP"
#define MAGIC_LEN 8
#define FORMAT_VERSION 1
#define DIGEST_LEN 32
#define HEADER_LEN (MAGIC_LEN + 1 + DIGEST_LEN + 4)
#define COUNT_OFF (MAGIC_LEN + 1 + DIGEST_LEN)
/* digest, scheme, at least one signature byte, signature length */
#define TRAILER_MIN (DIGEST_LEN + 1 + 1 + 2)

/* Files carry these numbers (docs/backup.md): the enums must keep them. */
_Static_assert(POL_KEY_EC_P256 == 1 && POL_KEY_EC_P384 == 2 &&
	       POL_KEY_RSA_3072 == 3 && POL_KEY_AES_256 == 4,
	       "key types as written in backup files");
_Static_assert(POL_SIGN_ECDSA_SHA256 == 1 && POL_SIGN_ECDSA_SHA384 == 2 &&
	       POL_SIGN_RSA_PSS_SHA256 == 3 && POL_SIGN_RSA_PKCS1_SHA256 == 4,
	       "signature schemes as written in backup files");

const char *
ct_backup_vstate_name(ct_backup_vstate st)
{
	static const char *const names[] = {
		[CT_VSTATE_UNKNOWN] = "unknown",
		[CT_VSTATE_ACTIVE] = "active",
		[CT_VSTATE_RETIRED] = "retired",
		[CT_VSTATE_REVOKED] = "revoked",
		[CT_VSTATE_DESTROYED] = "destroyed",
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ?
	    names[st] : "unknown";
}

/* Writing: a growing buffer whose failure sticks, checked once at the end. */

struct wr {
	uint8_t *p;
	size_t len, cap;
	bool failed;
};

static void
put(struct wr *w, const void *v, size_t n)
{
	uint8_t *p;
	size_t cap;

	if (w->failed || n == 0)	/* memcpy from NULL is undefined */
		return;
	if (n > CT_BACKUP_FILE_MAX - w->len) {
		w->failed = true;
		return;
	}
	if (w->len + n > w->cap) {
		for (cap = w->cap ? w->cap : 4096; cap < w->len + n; cap *= 2)
			;
		if ((p = realloc(w->p, cap)) == NULL) {
			w->failed = true;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, v, n);
	w->len += n;
}

static void
put_u8(struct wr *w, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(w, &b, 1);
}

static void
put_be(struct wr *w, uint32_t v, size_t n)
{
	uint8_t b[4];
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	put(w, b, n);
}

/* Reading: bounds checked before every step; a failure sticks. */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *
get(struct rd *r, size_t n)
{
	const uint8_t *v;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	v = r->p + r->off;
	r->off += n;
	return v;
}

static uint32_t
get_be(struct rd *r, size_t n)
{
	const uint8_t *b = get(r, n);
	uint32_t v = 0;
	size_t i;

	for (i = 0; b != NULL && i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static ct_err
sha256(const uint8_t *buf, size_t len, uint8_t out[DIGEST_LEN])
{
	return EVP_Digest(buf, len, out, NULL, EVP_sha256(), NULL) == 1 ?
	    CT_OK : CT_ERR_INTERNAL;
}

/* The digest a signature covers: of everything before the signature. */
static ct_err
sign_digest(pol_sign_scheme sign, const uint8_t *buf, size_t len,
    uint8_t *md, size_t *mdlen)
{
	unsigned int n = 0;

	if (EVP_Digest(buf, len, md, &n, ct_sign_md(sign), NULL) != 1)
		return CT_ERR_INTERNAL;
	*mdlen = n;
	return CT_OK;
}

static bool
key_fits(EVP_PKEY *pk, pol_key_type type)
{
	char group[32];

	switch (type) {
	case POL_KEY_RSA_3072:
		return EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) == 3072;
	case POL_KEY_EC_P256:
	case POL_KEY_EC_P384:
		if (!EVP_PKEY_is_a(pk, "EC") || !EVP_PKEY_get_utf8_string_param(pk,
		    "group", group, sizeof(group), NULL))
			return false;
		return strcmp(group, type == POL_KEY_EC_P256 ? "prime256v1" :
		    "secp384r1") == 0;
	default:
		return false;
	}
}

static bool
scheme_fits(EVP_PKEY *pk, unsigned sign)
{
	switch (sign) {
	case POL_SIGN_ECDSA_SHA256:
	case POL_SIGN_ECDSA_SHA384:
		return EVP_PKEY_is_a(pk, "EC");
	case POL_SIGN_RSA_PSS_SHA256:
	case POL_SIGN_RSA_PKCS1_SHA256:
		return EVP_PKEY_is_a(pk, "RSA");
	default:
		return false;
	}
}

static ct_err
find_wrap_key(p11_session *s, CK_OBJECT_HANDLE *wk, char *err, size_t errlen)
{
	ct_err r = p11_find(s, P11_OBJ_SECRET, CT_BACKUP_WRAP_LABEL, wk);

	if (r == CT_ERR_NO_SUCH_KEY)
		snprintf(err, errlen, "the token holds no backup wrapping key "
		    "(run custodianctl backup-init)");
	else if (r != CT_OK)
		snprintf(err, errlen, "finding the backup wrapping key: %s %s",
		    ct_strerror(r), p11_session_last_error(s));
	return r;
}

/* Create */

static int
cmp_key_name(const void *a, const void *b)
{
	const ct_key *x = *(const ct_key *const *)a;
	const ct_key *y = *(const ct_key *const *)b;

	return strcmp(x->pol->name, y->pol->name);
}

/* One entry: the version wrapped on the token, its ID and public half. */
static ct_err
put_entry(struct wr *w, p11_session *s, CK_OBJECT_HANDLE wk, const ct_key *k,
    const ct_keyver *kv, ct_backup_vstate st, char *err, size_t errlen)
{
	uint8_t wrapped[CT_BACKUP_WRAPPED_MAX], id[CT_BACKUP_ID_MAX];
	unsigned char *der = NULL;
	char label[P11_LABEL_MAX];
	size_t wlen = sizeof(wrapped), idlen = sizeof(id);
	CK_OBJECT_HANDLE h;
	bool pair = k->pol->type != POL_KEY_AES_256;
	int dlen = 0;
	ct_err r;

	if ((r = ct_key_label(k->pol->name, kv->version, label,
	    sizeof(label))) != CT_OK)
		return r;
	/* By label: the store's handle may have gone stale since it loaded. */
	if ((r = p11_find(s, pair ? P11_OBJ_PRIVATE : P11_OBJ_SECRET, label,
	    &h)) != CT_OK || (r = p11_wrap(s, wk, h, wrapped, &wlen)) != CT_OK ||
	    (r = p11_key_id(s, h, id, &idlen)) != CT_OK) {
		snprintf(err, errlen, "%s: %s %s", label, ct_strerror(r),
		    p11_session_last_error(s));
		goto out;
	}
	r = CT_ERR_TOKEN;
	if (idlen == 0 || wlen == 0) {
		snprintf(err, errlen, "%s: no CKA_ID or empty wrapped key", label);
		goto out;
	}
	if (pair && ((dlen = i2d_PUBKEY(kv->pub, &der)) <= 0 ||
	    dlen > CT_BACKUP_PUB_MAX)) {
		snprintf(err, errlen, "%s: cannot encode the public key", label);
		r = CT_ERR_INTERNAL;
		goto out;
	}
	put_u8(w, strlen(k->pol->name));
	put(w, k->pol->name, strlen(k->pol->name));
	put_be(w, kv->version, 4);
	put_u8(w, k->pol->type);
	put_u8(w, st);
	put_u8(w, idlen);
	put(w, id, idlen);
	put_be(w, (uint32_t)wlen, 2);
	put(w, wrapped, wlen);
	put_be(w, (uint32_t)dlen, 2);
	put(w, der, (size_t)dlen);
	r = CT_OK;
 out:
	OPENSSL_free(der);
	OPENSSL_cleanse(wrapped, sizeof(wrapped));
	return r;
}

ct_err
ct_backup_create(p11_session *s, const pol_policy *pol, size_t token,
		 const ct_keystore *ks, ct_backup_vstate_fn state, void *arg,
		 const ct_backup_signer *signer, const char *path,
		 size_t *n_out, char *err, size_t errlen)
{
	struct wr w = { 0 };
	const ct_key **keys = NULL;
	uint8_t dg[DIGEST_LEN], md[EVP_MAX_MD_SIZE], sig[CT_BACKUP_SIG_MAX];
	size_t i, j, nk = 0, n = 0, mdlen, siglen = sizeof(sig);
	CK_OBJECT_HANDLE wk;
	ct_backup_vstate st;
	ct_err r;

	*n_out = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (signer == NULL || signer->sign == POL_SIGN_NONE ||
	    state == NULL || token >= pol->n_tokens)
		return CT_ERR_BAD_REQUEST;
	if ((r = find_wrap_key(s, &wk, err, errlen)) != CT_OK)
		return r;
	if (ks->n_keys > 0 && (keys = calloc(ks->n_keys, sizeof(*keys))) == NULL)
		return CT_ERR_NOMEM;
	for (i = 0; i < ks->n_keys; i++)
		if (ks->keys[i].pol->backup && ks->keys[i].pol->token == token)
			keys[nk++] = &ks->keys[i];
	if (nk > 1) /* the file lists keys by name */
		qsort(keys, nk, sizeof(*keys), cmp_key_name);

	put(&w, MAGIC, MAGIC_LEN);
	put_u8(&w, FORMAT_VERSION);
	put(&w, pol->digest, DIGEST_LEN);
	put_be(&w, 0, 4); /* the count, filled in below */
	for (i = 0; i < nk; i++) {
		for (j = 0; j < keys[i]->n_vers; j++) {
			st = state(arg, keys[i]->pol->name,
			    keys[i]->vers[j].version);
			if (st == CT_VSTATE_REVOKED || st == CT_VSTATE_DESTROYED)
				continue;
			if (st != CT_VSTATE_ACTIVE && st != CT_VSTATE_RETIRED) {
				snprintf(err, errlen, "%s/v%u: no state recorded",
				    keys[i]->pol->name, keys[i]->vers[j].version);
				r = CT_ERR_INTERNAL;
				goto out;
			}
			if (n == CT_BACKUP_MAX_ENTRIES) {
				r = CT_ERR_TOO_LARGE;
				goto out;
			}
			if ((r = put_entry(&w, s, wk, keys[i], &keys[i]->vers[j],
			    st, err, errlen)) != CT_OK)
				goto out;
			n++;
		}
	}
	r = CT_ERR_NOMEM;
	if (w.failed)
		goto out;
	for (i = 0; i < 4; i++)
		w.p[COUNT_OFF + i] = (uint8_t)(n >> (8 * (3 - i)));
	if ((r = sha256(w.p, w.len, dg)) != CT_OK)
		goto out;
	put(&w, dg, sizeof(dg));
	put_u8(&w, signer->sign);
	r = CT_ERR_NOMEM;
	if (w.failed || (r = sign_digest(signer->sign, w.p, w.len, md,
	    &mdlen)) != CT_OK)
		goto out;
	if ((r = p11_sign(s, signer->key, ct_sign_mech(signer->sign), md, mdlen,
	    sig, &siglen)) != CT_OK) {
		snprintf(err, errlen, "signing the backup: %s %s", ct_strerror(r),
		    p11_session_last_error(s));
		goto out;
	}
	put(&w, sig, siglen);
	put_be(&w, (uint32_t)siglen, 2);
	r = CT_ERR_NOMEM;
	if (w.failed)
		goto out;
	if ((r = ct_write_file_atomic(path, w.p, w.len, 0600, err, errlen)) !=
	    CT_OK)
		goto out;
	*n_out = n;
 out:
	free(keys);
	free(w.p);
	return r;
}

/* Read */

void
ct_backup_free(ct_backup *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n_entries; i++)
		EVP_PKEY_free(b->entries[i].pub);
	free(b->entries);
	free(b->buf);
	free(b);
}

/* Digest and signature, before anything else of the file is trusted.
 * *body_len is where the entries end. */
static ct_err
check_trailer(const uint8_t *buf, size_t len, EVP_PKEY *pub,
    size_t *body_len, char *err, size_t errlen)
{
	uint8_t dg[DIGEST_LEN], md[EVP_MAX_MD_SIZE];
	size_t siglen, sig_off, mdlen;
	unsigned sign;
	bool ok;
	ct_err r;

	if (len < HEADER_LEN + TRAILER_MIN || len > CT_BACKUP_FILE_MAX) {
		snprintf(err, errlen, "not a backup file: %zu bytes", len);
		return CT_ERR_BAD_BACKUP;
	}
	siglen = (size_t)buf[len - 2] << 8 | buf[len - 1];
	if (siglen == 0 || siglen > CT_BACKUP_SIG_MAX ||
	    len - HEADER_LEN - TRAILER_MIN < siglen - 1) {
		snprintf(err, errlen, "signature length %zu out of range", siglen);
		return CT_ERR_BAD_BACKUP;
	}
	sig_off = len - 2 - siglen;
	sign = buf[sig_off - 1];
	*body_len = sig_off - 1 - DIGEST_LEN;
	if ((r = sha256(buf, *body_len, dg)) != CT_OK)
		return r;
	if (CRYPTO_memcmp(dg, buf + *body_len, DIGEST_LEN) != 0) {
		snprintf(err, errlen, "digest mismatch: the file is damaged or "
		    "was altered");
		return CT_ERR_BAD_BACKUP;
	}
	if (!scheme_fits(pub, sign)) {
		snprintf(err, errlen, "signature scheme %u does not fit the "
		    "verifying key", sign);
		return CT_ERR_BAD_BACKUP;
	}
	if ((r = sign_digest(sign, buf, sig_off, md, &mdlen)) != CT_OK ||
	    (r = ct_verify_digest(pub, sign, md, mdlen, buf + sig_off, siglen,
	    &ok)) != CT_OK)
		return r;
	if (!ok) {
		snprintf(err, errlen, "signature does not verify with the given "
		    "key: the file was altered or signed by another key");
		return CT_ERR_BAD_BACKUP;
	}
	return CT_OK;
}

static ct_err
parse_entry(struct rd *rd, ct_backup_entry *e, const ct_backup_entry *prev,
    char *err, size_t errlen)
{
	const uint8_t *name, *pub;
	const unsigned char *q;
	unsigned char *der = NULL;
	size_t nlen, plen;
	unsigned type, st;
	int cmp;
	ct_err r = CT_ERR_BAD_BACKUP;

	nlen = get_be(rd, 1);
	name = get(rd, nlen);
	e->version = get_be(rd, 4);
	type = get_be(rd, 1);
	st = get_be(rd, 1);
	e->id_len = get_be(rd, 1);
	q = get(rd, e->id_len);
	if (q != NULL && e->id_len <= sizeof(e->id))
		memcpy(e->id, q, e->id_len);
	e->wrapped_len = get_be(rd, 2);
	e->wrapped = get(rd, e->wrapped_len);
	plen = get_be(rd, 2);
	pub = get(rd, plen);
	if (rd->bad) {
		snprintf(err, errlen, "entry truncated");
		return r;
	}
	if (nlen == 0 || nlen > POL_NAME_MAX)
		goto bad;
	memcpy(e->name, name, nlen);
	e->name[nlen] = '\0';
	if (!ct_valid_name(e->name, POL_NAME_MAX) || e->version == 0 ||
	    type < POL_KEY_EC_P256 || type > POL_KEY_AES_256 ||
	    (st != CT_VSTATE_ACTIVE && st != CT_VSTATE_RETIRED) ||
	    e->id_len == 0 || e->id_len > CT_BACKUP_ID_MAX ||
	    e->wrapped_len == 0 || e->wrapped_len > CT_BACKUP_WRAPPED_MAX ||
	    plen > CT_BACKUP_PUB_MAX ||
	    (plen == 0) != (type == POL_KEY_AES_256))
		goto bad;
	e->type = (pol_key_type)type;
	e->state = (ct_backup_vstate)st;
	/* Canonical: strictly ascending, so no version appears twice. */
	if (prev != NULL && ((cmp = strcmp(prev->name, e->name)) > 0 ||
	    (cmp == 0 && prev->version >= e->version))) {
		snprintf(err, errlen, "%s/v%u: entries out of order", e->name,
		    e->version);
		return r;
	}
	if (plen > 0) {
		q = pub;
		if ((e->pub = d2i_PUBKEY(NULL, &q, (long)plen)) == NULL ||
		    q != pub + plen || !key_fits(e->pub, e->type) ||
		    i2d_PUBKEY(e->pub, &der) != (int)plen ||
		    memcmp(der, pub, plen) != 0) {
			ERR_clear_error();
			snprintf(err, errlen, "%s/v%u: bad public key", e->name,
			    e->version);
			goto out;
		}
	}
	r = CT_OK;
	goto out;
 bad:
	snprintf(err, errlen, "entry %s: a field is out of range",
	    nlen > 0 && nlen <= POL_NAME_MAX ? e->name : "?");
 out:
	OPENSSL_free(der);
	return r;
}

ct_err
ct_backup_parse(const uint8_t *buf, size_t len, EVP_PKEY *signer_pub,
		ct_backup **out, char *err, size_t errlen)
{
	struct rd rd = { 0 };
	ct_backup *b = NULL;
	const uint8_t *magic, *digest;
	size_t body_len, i, n;
	unsigned format;
	ct_err r;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (signer_pub == NULL)
		return CT_ERR_BAD_REQUEST;
	if ((r = check_trailer(buf, len, signer_pub, &body_len, err, errlen)) !=
	    CT_OK)
		return r;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->buf = malloc(len)) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	memcpy(b->buf, buf, len);
	b->len = len;
	rd.p = b->buf;
	rd.len = body_len;
	r = CT_ERR_BAD_BACKUP;
	magic = get(&rd, MAGIC_LEN);
	format = get_be(&rd, 1);
	digest = get(&rd, DIGEST_LEN);
	n = get_be(&rd, 4);
	if (rd.bad || memcmp(magic, MAGIC, MAGIC_LEN) != 0 ||
	    format != FORMAT_VERSION) {
		snprintf(err, errlen, "not a backup file of format %d",
		    FORMAT_VERSION);
		goto out;
	}
	memcpy(b->policy_digest, digest, DIGEST_LEN);
	if (n > CT_BACKUP_MAX_ENTRIES) {
		snprintf(err, errlen, "%zu entries: more than %d", n,
		    CT_BACKUP_MAX_ENTRIES);
		goto out;
	}
	if (n > 0 && (b->entries = calloc(n, sizeof(*b->entries))) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		b->n_entries++; /* so that free sees a partial entry */
		if ((r = parse_entry(&rd, &b->entries[i],
		    i > 0 ? &b->entries[i - 1] : NULL, err, errlen)) != CT_OK)
			goto out;
	}
	if (rd.off != rd.len) {
		snprintf(err, errlen, "bytes after the last entry");
		r = CT_ERR_BAD_BACKUP;
		goto out;
	}
	*out = b;
	b = NULL;
	r = CT_OK;
 out:
	ct_backup_free(b);
	return r;
}

ct_err
ct_backup_read(const char *path, EVP_PKEY *signer_pub, ct_backup **out,
	       char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd;
	ct_err r = CT_ERR_IO;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CT_ERR_IO;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)CT_BACKUP_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %u bytes", path,
		    CT_BACKUP_FILE_MAX);
		r = CT_ERR_BAD_BACKUP;
		goto out;
	}
	/* One byte more than the cap: a file that grew meanwhile is seen. */
	if ((buf = malloc(CT_BACKUP_FILE_MAX + 1)) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	if (ct_read_all(fd, buf, CT_BACKUP_FILE_MAX + 1, &len) != CT_OK) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	r = ct_backup_parse(buf, len, signer_pub, out, err, errlen);
	if (r != CT_OK && errlen > 0 && err[0] != '\0') {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", path, why);
	}
 out:
	free(buf);
	close(fd);
	return r;
}

/* Restore */

/* What one version needs on the token. */
struct plan {
	char label[P11_LABEL_MAX], pending[P11_LABEL_MAX];
	bool have_key;	/* from an earlier run of the same file */
	bool have_pub;
	CK_OBJECT_HANDLE key, pub; /* made by this call, else invalid */
};

/* Everything that can be checked without writing to the token. */
static ct_err
restore_check(p11_session *s, const pol_policy *pol, size_t token,
    const ct_backup *b, ct_backup_vstate_fn state, void *arg, unsigned flags,
    struct plan *plans, char *err, size_t errlen)
{
	const ct_backup_entry *e;
	const pol_key *pk;
	uint8_t id[CT_BACKUP_ID_MAX];
	size_t i, idlen;
	CK_OBJECT_HANDLE h;
	ct_backup_vstate st;
	ct_err r;

	if (!(flags & CT_RESTORE_ANY_POLICY) &&
	    CRYPTO_memcmp(b->policy_digest, pol->digest, DIGEST_LEN) != 0) {
		snprintf(err, errlen, "the backup was made under another policy "
		    "(digest differs)");
		return CT_ERR_POLICY;
	}
	for (i = 0; i < b->n_entries; i++) {
		e = &b->entries[i];
		pk = pol_find_key(pol, e->name);
		if (pk == NULL || !pk->backup || pk->type != e->type ||
		    pk->token != token) {
			snprintf(err, errlen, "%s/v%u: the policy has no backup: true "
			    "key \"%s\" of type %s on this token", e->name,
			    e->version, e->name, pol_key_type_name(e->type));
			return CT_ERR_POLICY;
		}
		st = state(arg, e->name, e->version);
		if (st == CT_VSTATE_REVOKED || st == CT_VSTATE_DESTROYED) {
			snprintf(err, errlen, "%s/v%u is %s: the backup would bring "
			    "it back; refused", e->name, e->version,
			    ct_backup_vstate_name(st));
			return CT_ERR_REVOKED;
		}
		if ((r = ct_key_label(e->name, e->version, plans[i].label,
		    sizeof(plans[i].label))) != CT_OK)
			return r;
		if (snprintf(plans[i].pending, sizeof(plans[i].pending), "%s%s",
		    CT_BACKUP_PENDING_PREFIX, plans[i].label) >=
		    (int)sizeof(plans[i].pending))
			return CT_ERR_INTERNAL;
		plans[i].key = plans[i].pub = CK_INVALID_HANDLE;
		r = p11_find(s, e->type == POL_KEY_AES_256 ? P11_OBJ_SECRET :
		    P11_OBJ_PRIVATE, plans[i].label, &h);
		idlen = sizeof(id);
		if (r == CT_OK && (r = p11_key_id(s, h, id, &idlen)) == CT_OK &&
		    (idlen != e->id_len || memcmp(id, e->id, idlen) != 0))
			r = CT_ERR_EXISTS;
		if (r == CT_OK)
			plans[i].have_key = true;
		else if (r == CT_ERR_NO_SUCH_KEY && e->type != POL_KEY_AES_256)
			/* A public half alone under the label is not ours. */
			r = p11_find(s, P11_OBJ_PUBLIC, plans[i].label, &h) ==
			    CT_ERR_NO_SUCH_KEY ? CT_ERR_NO_SUCH_KEY : CT_ERR_EXISTS;
		if (r == CT_ERR_EXISTS) {
			snprintf(err, errlen, "%s: the token already holds another "
			    "object with this label", plans[i].label);
			return r;
		}
		if (r != CT_OK && r != CT_ERR_NO_SUCH_KEY) {
			snprintf(err, errlen, "%s: %s %s", plans[i].label,
			    ct_strerror(r), p11_session_last_error(s));
			return r;
		}
		plans[i].have_pub = e->type == POL_KEY_AES_256 ||
		    (plans[i].have_key && p11_find(s, P11_OBJ_PUBLIC,
		    plans[i].label, &h) == CT_OK);
	}
	return CT_OK;
}

/* Undo this call's objects, public halves first, so that no public half is
 * left without its key (docs/backup.md). */
static size_t
restore_undo(p11_session *s, struct plan *plans, size_t n)
{
	size_t i, left = 0;

	for (i = 0; i < n; i++)
		if (plans[i].pub != CK_INVALID_HANDLE &&
		    p11_destroy(s, plans[i].pub) != CT_OK)
			left++;
	for (i = 0; i < n; i++)
		if (plans[i].key != CK_INVALID_HANDLE &&
		    p11_destroy(s, plans[i].key) != CT_OK)
			left++;
	return left;
}

ct_err
ct_backup_restore(p11_session *s, const pol_policy *pol, size_t token,
		  const char *path, EVP_PKEY *signer_pub, ct_backup_vstate_fn state,
		  void *arg, unsigned flags, ct_restored **out, size_t *n_out,
		  char *err, size_t errlen)
{
	ct_backup *b = NULL;
	struct plan *plans = NULL;
	ct_restored *res = NULL;
	const ct_backup_entry *e;
	CK_OBJECT_HANDLE wk;
	size_t i, n = 0, gone;
	ct_err r;

	*out = NULL;
	*n_out = 0;
	if (state == NULL || token >= pol->n_tokens)
		return CT_ERR_BAD_REQUEST;
	if ((r = ct_backup_read(path, signer_pub, &b, err, errlen)) != CT_OK)
		return r;
	n = b->n_entries;
	r = CT_ERR_NOMEM;
	if (n > 0 && ((plans = calloc(n, sizeof(*plans))) == NULL ||
	    (res = calloc(n, sizeof(*res))) == NULL))
		goto out;
	if ((r = find_wrap_key(s, &wk, err, errlen)) != CT_OK)
		goto out;
	if ((r = restore_check(s, pol, token, b, state, arg, flags, plans, err,
	    errlen)) != CT_OK)
		goto out;
	/* The first write: leftovers of an interrupted restore of these
	 * versions.  Nothing else ever bears these labels. */
	for (i = 0; i < n; i++)
		if ((r = p11_destroy_label(s, plans[i].pending, &gone)) != CT_OK) {
			snprintf(err, errlen, "%s: removing leftovers: %s %s",
			    plans[i].pending, ct_strerror(r),
			    p11_session_last_error(s));
			goto out;
		}
	/* Key before public half: a crash leaves no public half alone. */
	for (i = 0; i < n; i++) {
		e = &b->entries[i];
		if (!plans[i].have_key && (r = p11_unwrap(s, wk,
		    ct_p11_key_type(e->type), plans[i].pending, e->id, e->id_len,
		    e->wrapped, e->wrapped_len, &plans[i].key)) != CT_OK) {
			snprintf(err, errlen, "%s: unwrapping: %s %s", plans[i].label,
			    ct_strerror(r), p11_session_last_error(s));
			goto undo;
		}
		if (!plans[i].have_pub && (r = p11_store_public(s,
		    ct_p11_key_type(e->type), e->pub, plans[i].pending, e->id,
		    e->id_len, &plans[i].pub)) != CT_OK) {
			snprintf(err, errlen, "%s: storing the public key: %s %s",
			    plans[i].label, ct_strerror(r),
			    p11_session_last_error(s));
			goto undo;
		}
	}
	/* Commit: each object takes its real label, key first. */
	for (i = 0; i < n; i++) {
		if ((plans[i].key != CK_INVALID_HANDLE &&
		    (r = p11_relabel(s, plans[i].key, plans[i].label)) != CT_OK) ||
		    (plans[i].pub != CK_INVALID_HANDLE &&
		    (r = p11_relabel(s, plans[i].pub, plans[i].label)) != CT_OK)) {
			snprintf(err, errlen, "%s: relabelling: %s %s",
			    plans[i].label, ct_strerror(r),
			    p11_session_last_error(s));
			goto undo;
		}
		snprintf(res[i].name, sizeof(res[i].name), "%s",
		    b->entries[i].name);
		res[i].version = b->entries[i].version;
		res[i].state = b->entries[i].state;
		res[i].existed = plans[i].have_key;
	}
	*out = res;
	*n_out = n;
	res = NULL;
	r = CT_OK;
	goto out;
 undo:
	if ((gone = restore_undo(s, plans, n)) > 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s; %zu objects could not be removed (see "
		    "docs/backup.md, leftovers)", why, gone);
	}
 out:
	free(res);
	free(plans);
	ct_backup_free(b);
	return r;
}
