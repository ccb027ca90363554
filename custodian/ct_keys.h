/* ct_keys.h: which versions of each policy key exist on the tokens.
 *
 * A key version is a token object labelled "<name>/v<version>" (private key
 * and public key for pairs, secret key for AES).  The store is built once
 * per policy (at start and on reload) by scanning the tokens, and caches
 * object handles and public keys, so that a request costs no C_FindObjects.
 * The current version is the highest one.  A version whose attributes do
 * not pass ct_key_attrs_ok() is refused: the store fails to load rather
 * than serve a key that may exist outside the token.  Only the main thread reads or
 * changes a store; jobs carry copies (ct_keyref).
 */
#ifndef CT_KEYS_H
#define CT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "custodian/ct_err.h"
#include "pkcs11/p11.h"
#include "policy/pol.h"

/* Whether the governance state lets a version be used (ct_gov sets it). */
typedef enum {
	CT_KV_OK = 0,	 /* active (current when highest) or retired */
	CT_KV_REVOKED,	 /* revoked, or destroyed yet still on the token */
	CT_KV_UNKNOWN,	 /* on the token but not in the state: not ours */
} ct_kvuse;

typedef struct {
	uint32_t version;
	ct_kvuse use;
	CK_OBJECT_HANDLE handle; /* private or secret key */
	EVP_PKEY *pub;		 /* public half of a pair, owned; else NULL */
} ct_keyver;

typedef struct {
	const pol_key *pol; /* in the policy the store was built for */
	ct_keyver *vers;    /* ascending by version */
	size_t n_vers;
} ct_key;

typedef struct {
	ct_key *keys; /* same order as the policy's keys */
	size_t n_keys;
} ct_keystore;

/* What a job needs of one key version: a copy, valid after the store is
 * replaced.  Holds a reference on pub; release with ct_keyref_clear(). */
typedef struct {
	char name[POL_NAME_MAX + 1];
	char label[P11_LABEL_MAX];
	uint32_t version;
	pol_key_type type;
	pol_sign_scheme sign;
	pol_oaep_hash oaep;
	bool backup;	/* generated extractable under a trusted key only */
	CK_OBJECT_HANDLE handle;
	EVP_PKEY *pub;
} ct_keyref;

/* sess[i] is a logged-in session on the policy's token i. */
ct_err ct_keys_load(const pol_policy *pol, p11_session *const *sess,
		    ct_keystore **out, char *err, size_t errlen) CT_WUR;
void ct_keys_free(ct_keystore *ks);

const ct_key *ct_keys_find(const ct_keystore *ks, const char *name);
/* Version v of the key (any use), or its current version when v is 0: the
 * highest usable one; NULL if none. */
const ct_keyver *ct_key_version(const ct_key *k, uint32_t v);
/* Record a handle found again after the token invalidated the old one. */
void ct_keys_update_handle(ct_keystore *ks, const ct_keyref *ref);

ct_err ct_keyref_set(ct_keyref *ref, const ct_key *k, const ct_keyver *kv) CT_WUR;
void ct_keyref_clear(ct_keyref *ref);

/* The versions of key `name` on the token, ascending.  *vers_out is
 * malloc'd (NULL when there are none); the caller frees it. */
ct_err ct_key_versions(p11_session *s, const char *name, uint32_t **vers_out,
		       size_t *n_out) CT_WUR;

/* The token layer's name of a key type. */
p11_key_type ct_p11_key_type(pol_key_type t);

/* The token mechanism and the digest of a signature scheme. */
p11_sig_mech ct_sign_mech(pol_sign_scheme sign);
const EVP_MD *ct_sign_md(pol_sign_scheme sign);
/* Check a signature over a digest made with ct_sign_md(sign); *ok tells
 * whether it is valid (a bad signature is an answer, not an error). */
ct_err ct_verify_digest(EVP_PKEY *pub, pol_sign_scheme sign, const uint8_t *md,
			size_t mdlen, const uint8_t *sig, size_t siglen,
			bool *ok) CT_WUR;

/* The one check of a version's security attributes.  A key without
 * `backup: true` must be sensitive and never extractable; a key with it
 * must be sensitive and extractable only under a trusted wrapping key
 * (docs/policy.md). */
bool ct_key_attrs_ok(const pol_key *pk, const p11_key_attrs *a);

/* "<name>/v<version>" into buf (P11_LABEL_MAX). */
ct_err ct_key_label(const char *name, uint32_t version, char *buf,
		    size_t buflen) CT_WUR;
/* Parse a label of that form for this name; 0 when it is not one. */
uint32_t ct_key_label_version(const char *name, const char *label);

#endif
