/* ct_keys.c: the key-version store. */
#include "custodian/ct_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

ct_err
ct_key_label(const char *name, uint32_t version, char *buf, size_t buflen)
{
	int n = snprintf(buf, buflen, "%s/v%u", name, version);

	return n < 0 || (size_t)n >= buflen ? CT_ERR_INTERNAL : CT_OK;
}

uint32_t
ct_key_label_version(const char *name, const char *label)
{
	size_t nlen = strlen(name);
	const char *p;
	uint64_t v = 0;

	if (strncmp(label, name, nlen) != 0 || label[nlen] != '/' ||
	    label[nlen + 1] != 'v')
		return 0;
	p = label + nlen + 2;
	/* Canonical decimal only: "v01" or "v1x" is some other object. */
	if (*p < '1' || *p > '9')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return 0;
	}
	return (uint32_t)v;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

ct_err
ct_key_versions(p11_session *s, const char *name, uint32_t **vers_out,
		size_t *n_out)
{
	char **labels = NULL, prefix[P11_LABEL_MAX];
	uint32_t *vers = NULL, v;
	size_t i, n = 0, nv = 0;
	ct_err r;

	*vers_out = NULL;
	*n_out = 0;
	snprintf(prefix, sizeof(prefix), "%s/v", name);
	if ((r = p11_list_labels(s, prefix, &labels, &n)) != CT_OK)
		return r;
	if (n > 0 && (vers = calloc(n, sizeof(*vers))) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	/* Labels are distinct, so are their versions; others are not ours. */
	for (i = 0; i < n; i++)
		if ((v = ct_key_label_version(name, labels[i])) != 0)
			vers[nv++] = v;
	if (nv > 1) /* qsort(NULL, 0) is undefined */
		qsort(vers, nv, sizeof(*vers), cmp_u32);
	*vers_out = vers;
	*n_out = nv;
	vers = NULL;
 out:
	free(vers);
	p11_labels_free(labels, n);
	return r;
}

p11_key_type
ct_p11_key_type(pol_key_type t)
{
	switch (t) {
	case POL_KEY_EC_P256:
		return P11_KEY_EC_P256;
	case POL_KEY_EC_P384:
		return P11_KEY_EC_P384;
	case POL_KEY_RSA_3072:
		return P11_KEY_RSA_3072;
	default:
		return P11_KEY_AES_256;
	}
}

p11_sig_mech
ct_sign_mech(pol_sign_scheme sign)
{
	switch (sign) {
	case POL_SIGN_RSA_PSS_SHA256:
		return P11_SIG_RSA_PSS_SHA256;
	case POL_SIGN_RSA_PKCS1_SHA256:
		return P11_SIG_RSA_PKCS1_SHA256;
	default:
		return P11_SIG_ECDSA;
	}
}

const EVP_MD *
ct_sign_md(pol_sign_scheme sign)
{
	return sign == POL_SIGN_ECDSA_SHA384 ? EVP_sha384() : EVP_sha256();
}

ct_err
ct_verify_digest(EVP_PKEY *pub, pol_sign_scheme sign, const uint8_t *md,
		 size_t mdlen, const uint8_t *sig, size_t siglen, bool *ok)
{
	EVP_PKEY_CTX *ctx = NULL;
	bool rsa = sign == POL_SIGN_RSA_PSS_SHA256 ||
	    sign == POL_SIGN_RSA_PKCS1_SHA256;
	ct_err r = CT_ERR_INTERNAL;

	*ok = false;
	if ((ctx = EVP_PKEY_CTX_new(pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	if (rsa && (EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, sign == POL_SIGN_RSA_PSS_SHA256 ?
	    RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1))
		goto out;
	if (sign == POL_SIGN_RSA_PSS_SHA256 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1)
		goto out;
	*ok = EVP_PKEY_verify(ctx, sig, siglen, md, mdlen) == 1;
	r = CT_OK;
 out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	return r;
}

bool
ct_key_attrs_ok(const pol_key *pk, const p11_key_attrs *a)
{
	/* A restored version was unwrapped: the token calls it neither local
	 * nor always sensitive.  One that is local but was once not sensitive
	 * may have been read. */
	if (pk->backup)
		return a->sensitive && a->extractable && a->wrap_with_trusted &&
		    (a->always_sensitive || !a->local);
	/* Serve only keys that never left the token: an object someone
	 * imported or made extractable under our label is not ours. */
	return a->sensitive && !a->extractable && a->always_sensitive &&
	    a->never_extractable;
}

static ct_err
load_key(const pol_key *pk, p11_session *s, ct_key *k, char *err,
	 size_t errlen)
{
	char label[P11_LABEL_MAX];
	uint32_t *vers = NULL;
	size_t i, n = 0;
	bool pair = pk->type != POL_KEY_AES_256;
	p11_key_attrs attrs;
	ct_keyver *kv;
	ct_err r;

	k->pol = pk;
	if ((r = ct_key_versions(s, pk->name, &vers, &n)) != CT_OK) {
		snprintf(err, errlen, "key %s: listing token objects: %s",
		    pk->name, p11_session_last_error(s));
		goto out;
	}
	r = CT_ERR_NOMEM;
	if (n > 0 && (k->vers = calloc(n, sizeof(*k->vers))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		kv = &k->vers[k->n_vers];
		kv->version = vers[i];
		if ((r = ct_key_label(pk->name, vers[i], label, sizeof(label))) != CT_OK)
			goto out;
		r = p11_find(s, pair ? P11_OBJ_PRIVATE : P11_OBJ_SECRET, label,
		    &kv->handle);
		if (r == CT_OK)
			r = p11_get_key_attrs(s, kv->handle, &attrs);
		if (r == CT_OK && pair)
			r = p11_public_key(s, label, &kv->pub);
		if (r != CT_OK) {
			snprintf(err, errlen, "key %s: %s: %s %s", pk->name, label,
			    ct_strerror(r), p11_session_last_error(s));
			goto out;
		}
		if (!ct_key_attrs_ok(pk, &attrs)) {
			snprintf(err, errlen, "key %s: %s on the token %s: refused",
			    pk->name, label, pk->backup ? "is not backup-capable "
			    "(sensitive, extractable only under a trusted key)" :
			    "is extractable or was not always sensitive");
			r = CT_ERR_POLICY;
			goto out;
		}
		k->n_vers++;
	}
	r = CT_OK;
 out:
	free(vers);
	return r;
}

ct_err
ct_keys_load(const pol_policy *pol, p11_session *const *sess,
	     ct_keystore **out, char *err, size_t errlen)
{
	ct_keystore *ks;
	size_t i;
	ct_err r = CT_ERR_NOMEM;

	*out = NULL;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return CT_ERR_NOMEM;
	if (pol->n_keys > 0 &&
	    (ks->keys = calloc(pol->n_keys, sizeof(*ks->keys))) == NULL)
		goto out;
	for (ks->n_keys = 0; ks->n_keys < pol->n_keys; ks->n_keys++) {
		i = ks->n_keys;
		r = load_key(&pol->keys[i], sess[pol->keys[i].token], &ks->keys[i],
		    err, errlen);
		if (r != CT_OK) {
			ks->n_keys++; /* so that free sees the partial key */
			goto out;
		}
	}
	*out = ks;
	ks = NULL;
	r = CT_OK;
 out:
	ct_keys_free(ks);
	return r;
}

void
ct_keys_free(ct_keystore *ks)
{
	size_t i, j;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n_keys; i++) {
		for (j = 0; j < ks->keys[i].n_vers; j++)
			EVP_PKEY_free(ks->keys[i].vers[j].pub);
		free(ks->keys[i].vers);
	}
	free(ks->keys);
	free(ks);
}

const ct_key *
ct_keys_find(const ct_keystore *ks, const char *name)
{
	size_t i;

	for (i = 0; i < ks->n_keys; i++)
		if (strcmp(ks->keys[i].pol->name, name) == 0)
			return &ks->keys[i];
	return NULL;
}

const ct_keyver *
ct_key_version(const ct_key *k, uint32_t v)
{
	size_t i;

	if (v == 0) {
		for (i = k->n_vers; i > 0; i--)
			if (k->vers[i - 1].use == CT_KV_OK)
				return &k->vers[i - 1];
		return NULL;
	}
	for (i = 0; i < k->n_vers; i++)
		if (k->vers[i].version == v)
			return &k->vers[i];
	return NULL;
}

void
ct_keys_update_handle(ct_keystore *ks, const ct_keyref *ref)
{
	const ct_key *k = ct_keys_find(ks, ref->name);
	ct_keyver *kv;

	if (k != NULL && (kv = (ct_keyver *)ct_key_version(k, ref->version)) != NULL)
		kv->handle = ref->handle;
}

ct_err
ct_keyref_set(ct_keyref *ref, const ct_key *k, const ct_keyver *kv)
{
	ct_err r;

	memset(ref, 0, sizeof(*ref));
	if ((r = ct_key_label(k->pol->name, kv->version, ref->label,
	    sizeof(ref->label))) != CT_OK)
		return r;
	snprintf(ref->name, sizeof(ref->name), "%s", k->pol->name);
	ref->version = kv->version;
	ref->type = k->pol->type;
	ref->sign = k->pol->sign;
	ref->oaep = k->pol->oaep;
	ref->handle = kv->handle;
	if (kv->pub != NULL && EVP_PKEY_up_ref(kv->pub) != 1)
		return CT_ERR_INTERNAL;
	ref->pub = kv->pub;
	return CT_OK;
}

void
ct_keyref_clear(ct_keyref *ref)
{
	EVP_PKEY_free(ref->pub);
	memset(ref, 0, sizeof(*ref));
}
