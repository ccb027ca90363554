/* ct_backup.h: backup files of backup-capable key versions, and restore.
 *
 * A backup file holds every backup-capable version of the keys on one
 * token, each wrapped on the token (CKM_AES_KEY_WRAP_PAD) under the token's
 * trusted wrapping key, with its public half, its CKA_ID and its state, the
 * policy digest, and a signature by a key on the token over all of it.
 * Nothing in it is plaintext key material.  The format is in
 * docs/backup.md; the wrapping key ceremony in docs/backup-ceremony.md.
 *
 * These functions do no authorisation: the caller (the daemon once a quorum
 * approved, or the offline CLI) decides that a backup or restore may run.
 */
#ifndef CT_BACKUP_H
#define CT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "custodian/ct_err.h"
#include "custodian/ct_keys.h"
#include "pkcs11/p11.h"
#include "policy/pol.h"

/* The label of the trusted wrapping key on every token that takes part. */
#define CT_BACKUP_WRAP_LABEL "custodian-backup-wrap"
/* Objects an interrupted restore may leave: "<prefix><name>/v<N>". */
#define CT_BACKUP_PENDING_PREFIX "custodian-restoring/"

#define CT_BACKUP_FILE_MAX (16u << 20)
#define CT_BACKUP_MAX_ENTRIES 4096
#define CT_BACKUP_ID_MAX 64
#define CT_BACKUP_WRAPPED_MAX 4096
#define CT_BACKUP_PUB_MAX 2048
#define CT_BACKUP_SIG_MAX 1024

/* A version's state as the caller's records say.  The numbers are written
 * into files: never change them. */
typedef enum {
	CT_VSTATE_UNKNOWN = 0,	/* the caller has no record of it */
	CT_VSTATE_ACTIVE = 1,
	CT_VSTATE_RETIRED = 2,
	CT_VSTATE_REVOKED = 3,
	CT_VSTATE_DESTROYED = 4,
} ct_backup_vstate;

const char *ct_backup_vstate_name(ct_backup_vstate st); /* "active", ...; never NULL */

/* The caller's state of a version. */
typedef ct_backup_vstate (*ct_backup_vstate_fn)(void *arg, const char *key,
				  uint32_t version);

/* The key that signs a backup: a private key on the same token. */
typedef struct {
	CK_OBJECT_HANDLE key;
	pol_sign_scheme sign; /* not POL_SIGN_NONE */
} ct_backup_signer;

/* Write a backup of the backup-capable keys (policy `backup: true`) on
 * policy token `token` to path (atomically, mode 0600).  s is a logged-in
 * session on that token; ks the store loaded for pol.  Versions whose state
 * is active or retired are written; revoked and destroyed ones are left
 * out; a version of unknown state is an error.  *n_out counts the versions
 * written.  err gets a readable reason. */
ct_err ct_backup_create(p11_session *s, const pol_policy *pol, size_t token,
			const ct_keystore *ks, ct_backup_vstate_fn state, void *arg,
			const ct_backup_signer *signer, const char *path,
			size_t *n_out, char *err, size_t errlen) CT_WUR;

/* One version in a file.  wrapped points into the owning ct_backup. */
typedef struct {
	char name[POL_NAME_MAX + 1];
	uint32_t version;
	pol_key_type type;
	ct_backup_vstate state;
	uint8_t id[CT_BACKUP_ID_MAX];
	size_t id_len;
	const uint8_t *wrapped;
	size_t wrapped_len;
	EVP_PKEY *pub; /* owned; NULL for aes-256 */
} ct_backup_entry;

typedef struct {
	uint8_t policy_digest[32];
	ct_backup_entry *entries; /* ascending by name, then version */
	size_t n_entries;
	uint8_t *buf; /* the file's bytes */
	size_t len;
} ct_backup;

/* Read a file: its digest and its signature (by signer_pub, with the
 * scheme the file names, which must fit the key) are checked before
 * anything else in it is read; then every field is parsed strictly.
 * CT_ERR_BAD_BACKUP with a reason in err when anything is wrong. */
ct_err ct_backup_read(const char *path, EVP_PKEY *signer_pub, ct_backup **out,
		      char *err, size_t errlen) CT_WUR;
/* The same on bytes in memory (copied). */
ct_err ct_backup_parse(const uint8_t *buf, size_t len, EVP_PKEY *signer_pub,
		       ct_backup **out, char *err, size_t errlen) CT_WUR;
void ct_backup_free(ct_backup *b);

/* A version a restore put on the token (or found there from an earlier,
 * interrupted restore of the same file: existed). */
typedef struct {
	char name[POL_NAME_MAX + 1];
	uint32_t version;
	ct_backup_vstate state; /* as the file says */
	bool existed;
} ct_restored;

/* Restore accepts a file whose policy digest differs from pol's; every
 * version must still name a `backup: true` key of the same type. */
#define CT_RESTORE_ANY_POLICY 0x1u

/* Restore the file at path onto the token of session s (logged in), which
 * holds the wrapping key's twin.  In order, with nothing written to the
 * token before the last of these checks passes: the file's digest and
 * signature (ct_backup_read with signer_pub); the policy digest (unless
 * CT_RESTORE_ANY_POLICY); every version names a `backup: true` key of pol
 * on token `token`, of the same type; no version is revoked or destroyed
 * according to state (CT_ERR_REVOKED); no object with a version's label
 * exists on the token with another CKA_ID (CT_ERR_EXISTS).
 * Then every version is unwrapped under a pending label
 * (CT_BACKUP_PENDING_PREFIX "<name>/v<N>") and, once all are there,
 * relabelled "<name>/v<N>".  On any failure every object this call made is
 * destroyed.  *out (malloc'd, the caller frees) lists the versions, in the
 * file's order.  See docs/backup.md for a crash midway. */
ct_err ct_backup_restore(p11_session *s, const pol_policy *pol, size_t token,
			 const char *path, EVP_PKEY *signer_pub,
			 ct_backup_vstate_fn state, void *arg, unsigned flags,
			 ct_restored **out, size_t *n_out, char *err,
			 size_t errlen) CT_WUR;

#endif
