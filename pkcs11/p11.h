/* p11.h: the token layer.  The only code in custodian that talks PKCS#11.
 *
 * A p11_token is one PKCS#11 module with one token in it, logged in as the
 * user.  It is shared by all threads.  A p11_session is one PKCS#11 session,
 * owned by exactly one thread at a time (one per worker thread).
 *
 * libp11 loads the module and finds the token; login, public keys and
 * everything else use the module's function list (raw PKCS#11): libp11 has
 * no API for key generation with chosen attributes or secret keys, keeps a
 * plain-heap copy of the PIN, and its key listing fails for good after
 * C_CloseAllSessions.  Tokens on one module share the module; its slots
 * are read when its first token opens.
 *
 * Every function returns a ct_err.  CK_RV values are translated here; the
 * last CK_RV and the PKCS#11 function that returned it are kept in the
 * session (p11_session_last_error) for the log and the reply.
 *
 * When the token reports a lost session (CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN, CKR_TOKEN_NOT_PRESENT after
 * reinsertion) an operation re-opens the session, logs in again with the
 * PIN kept in secure memory, and retries once.  It never retries a wrong
 * PIN: CKR_PIN_INCORRECT is returned at once as CT_ERR_PIN.  Tokens may drop
 * object handles with the session (SoftHSM2 does), so the retried call can
 * return CT_ERR_HANDLE_STALE: the caller finds the key again by label.
 */
#ifndef P11_H
#define P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "custodian/ct_err.h"

typedef struct p11_token p11_token;
typedef struct p11_session p11_session;

#define P11_LABEL_MAX 128

typedef enum {
	P11_KEY_EC_P256 = 1,
	P11_KEY_EC_P384,
	P11_KEY_RSA_3072,
	P11_KEY_AES_256,
} p11_key_type;

typedef enum {
	P11_OBJ_PRIVATE = 1,
	P11_OBJ_PUBLIC,
	P11_OBJ_SECRET,
} p11_obj_class;

typedef enum {
	P11_SIG_ECDSA = 1,	   /* digest in, DER ECDSA-Sig-Value out */
	P11_SIG_RSA_PSS_SHA256,	   /* 32-byte digest, MGF1-SHA256, salt 32 */
	P11_SIG_RSA_PKCS1_SHA256,  /* 32-byte digest, DigestInfo added here */
} p11_sig_mech;

typedef enum {
	P11_HASH_SHA1 = 1,
	P11_HASH_SHA256,
} p11_hash;

/* Where to find the token.  Exactly one of label and uri is non-NULL. */
typedef struct {
	const char *module; /* path of the PKCS#11 module */
	const char *label;  /* CKA token label, exact match */
	const char *uri;    /* RFC 7512 URI, matched with p11-kit */
} p11_token_spec;

/* Load the module and find the token.  err gets a readable reason. */
ct_err p11_token_open(const p11_token_spec *spec, p11_token **out, char *err,
		      size_t errlen) CT_WUR;
/* Log in as CKU_USER, once, before opening sessions.  The PIN is copied
 * into secure memory for re-login; the caller wipes its own copy.
 * CT_ERR_PIN on a wrong or locked PIN.  If the process is already logged in
 * to the token, the token does not check the PIN. */
ct_err p11_token_login(p11_token *t, const char *pin, size_t pin_len) CT_WUR;
/* Frees the token (NULL is fine).  Every session must be closed first. */
void p11_token_free(p11_token *t);
/* The token's label as the token reports it (trailing blanks removed). */
const char *p11_token_label(const p11_token *t);

ct_err p11_session_open(p11_token *t, p11_session **out) CT_WUR;
void p11_session_free(p11_session *s); /* NULL is fine */
/* Last PKCS#11 failure in this session, e.g. "C_Sign: CKR_KEY_HANDLE_INVALID";
 * "" when none.  Valid until the next call on the session. */
const char *p11_session_last_error(const p11_session *s);

/* Generate a key on the token with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE=true
 * and CKA_EXTRACTABLE=false; both halves of a pair carry the label and the
 * same CKA_ID.  CT_ERR_EXISTS if an object with this label already exists. */
ct_err p11_generate(p11_session *s, p11_key_type type, const char *label) CT_WUR;
/* The same; with backup true the private or secret key is instead
 * CKA_EXTRACTABLE=true and CKA_WRAP_WITH_TRUSTED=true: still sensitive, and
 * the token wraps it only under a key marked CKA_TRUSTED by its SO. */
ct_err p11_generate_key(p11_session *s, p11_key_type type, const char *label,
			bool backup) CT_WUR;

/* Find exactly one object of the class with this label.
 * CT_ERR_NO_SUCH_KEY when there is none; CT_ERR_TOKEN when more than one. */
ct_err p11_find(p11_session *s, p11_obj_class cls, const char *label,
		CK_OBJECT_HANDLE *out) CT_WUR;

/* Labels of all private and secret key objects whose label starts with
 * prefix.  *labels_out is a malloc'd array of malloc'd strings: free with
 * p11_labels_free(). */
ct_err p11_list_labels(p11_session *s, const char *prefix, char ***labels_out,
		       size_t *n_out) CT_WUR;
void p11_labels_free(char **labels, size_t n);

/* Sign a digest with a private key.  *siglen is the buffer size on entry and
 * the signature length on return.  CT_ERR_HANDLE_STALE when the handle is no
 * longer valid (the caller finds it again). */
ct_err p11_sign(p11_session *s, CK_OBJECT_HANDLE key, p11_sig_mech mech,
		const uint8_t *digest, size_t dlen, uint8_t *sig,
		size_t *siglen) CT_WUR;

/* RSA-OAEP decrypt on the token (MGF1 uses the same hash, no label: tokens
 * may accept a label and ignore it, as SoftHSM2 does).  *outlen is the
 * buffer size on entry (at least the modulus size).  CT_ERR_UNSUPPORTED
 * when the token refuses the parameters (SoftHSM2 refuses SHA-256),
 * CT_ERR_DECRYPT when the ciphertext does not decrypt. */
ct_err p11_rsa_oaep_decrypt(p11_session *s, CK_OBJECT_HANDLE key, p11_hash hash,
			    const uint8_t *in, size_t inlen, uint8_t *out,
			    size_t *outlen) CT_WUR;

/* AES-GCM with a 12-byte IV and a 16-byte tag, on the token.
 * *outlen is the buffer size on entry.
 * encrypt: out gets ciphertext||tag, *outlen = ptlen + 16.
 * decrypt: in is ciphertext||tag; the buffer must hold inlen bytes (SoftHSM2
 * wants room for the tag); *outlen = inlen - 16; CT_ERR_DECRYPT when the
 * tag fails. */
ct_err p11_aes_gcm_encrypt(p11_session *s, CK_OBJECT_HANDLE key,
			   const uint8_t iv[12], const uint8_t *aad,
			   size_t aadlen, const uint8_t *pt, size_t ptlen,
			   uint8_t *out, size_t *outlen) CT_WUR;
ct_err p11_aes_gcm_decrypt(p11_session *s, CK_OBJECT_HANDLE key,
			   const uint8_t iv[12], const uint8_t *aad,
			   size_t aadlen, const uint8_t *in, size_t inlen,
			   uint8_t *out, size_t *outlen) CT_WUR;

/* The public half of the key pair with this label, as an OpenSSL key
 * (caller frees with EVP_PKEY_free). */
ct_err p11_public_key(p11_session *s, const char *label, EVP_PKEY **out) CT_WUR;

/* Random bytes from the token's generator. */
ct_err p11_random(p11_session *s, uint8_t *buf, size_t len) CT_WUR;

/* Security attributes of an object, for checks and tests; attributes the
 * object lacks read as 0. */
typedef struct {
	int sensitive, extractable, always_sensitive, never_extractable, local;
	int wrap_with_trusted;
} p11_key_attrs;
ct_err p11_get_key_attrs(p11_session *s, CK_OBJECT_HANDLE key,
			 p11_key_attrs *out) CT_WUR;

/* Backup (docs/backup.md).  A backup-capable key is wrapped with
 * CKM_AES_KEY_WRAP_PAD under the token's trusted wrapping key; the token
 * refuses any other wrapping key (CKR_KEY_NOT_WRAPPABLE, in the session's
 * last error).  *outlen is the buffer size on entry. */
ct_err p11_wrap(p11_session *s, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
		uint8_t *out, size_t *outlen) CT_WUR;
/* Unwrap a key wrapped by p11_wrap into a token object with the attributes
 * p11_generate_key(backup=true) gives: private, sensitive, extractable only
 * under a trusted key, the usages of its type, this label and CKA_ID.
 * CT_ERR_DECRYPT when the wrapped bytes do not unwrap. */
ct_err p11_unwrap(p11_session *s, CK_OBJECT_HANDLE unwrapping,
		  p11_key_type type, const char *label, const uint8_t *id,
		  size_t idlen, const uint8_t *in, size_t inlen,
		  CK_OBJECT_HANDLE *out) CT_WUR;
/* Store the public half of a pair as a token object (label, CKA_ID and
 * usages as p11_generate gives).  CT_ERR_WRONG_KEY_TYPE when pk is not a
 * key of that type. */
ct_err p11_store_public(p11_session *s, p11_key_type type, EVP_PKEY *pk,
			const char *label, const uint8_t *id, size_t idlen,
			CK_OBJECT_HANDLE *out) CT_WUR;
ct_err p11_destroy(p11_session *s, CK_OBJECT_HANDLE h) CT_WUR;
/* Destroy every object, of any class, with exactly this label; *n_out
 * counts them (also on failure). */
ct_err p11_destroy_label(p11_session *s, const char *label,
			 size_t *n_out) CT_WUR;
ct_err p11_relabel(p11_session *s, CK_OBJECT_HANDLE h, const char *label) CT_WUR;
/* CKA_ID; *idlen is the buffer size on entry. */
ct_err p11_key_id(p11_session *s, CK_OBJECT_HANDLE h, uint8_t *id,
		  size_t *idlen) CT_WUR;

typedef struct {
	const char *pin;
	size_t len;
} p11_pin;

/* The wrapping key ceremony (docs/backup-ceremony.md).  Copies the AES
 * wrapping key labelled `label` from src to dst without it being in clear
 * outside a token; src makes it first when it has none (*created).  dst's
 * SO makes an RSA-3072 transport key pair (session objects); src's SO
 * trusts the public half for one session; src's user wraps the key under
 * it (RSA-OAEP, SHA-256, or SHA-1 where the token has only that); dst's SO
 * unwraps it as a trusted (CKA_TRUSTED) wrapping key whose
 * CKA_UNWRAP_TEMPLATE admits only private, sensitive, backup-capable keys.
 * On src the key is private, sensitive and extractable only under a trusted
 * key; on dst it is a public object (only the SO sets CKA_TRUSTED, and the
 * SO makes only public objects), sensitive, not extractable.  Neither token
 * may be logged in by this process (p11_token_login).  CT_ERR_EXISTS when
 * dst already holds the label. */
ct_err p11_wrapkey_transport(p11_token *src, const p11_pin *src_user,
			     const p11_pin *src_so, p11_token *dst,
			     const p11_pin *dst_so, const char *label,
			     bool *created, char *err, size_t errlen) CT_WUR;

/* "CKR_PIN_INCORRECT" etc.; "CKR_0x..." for unknown values (static buffer
 * per thread). */
const char *p11_rv_name(CK_RV rv);

#endif
