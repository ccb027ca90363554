/* ct_stmt.h: the statement a custodian signs to approve or deny a request.
 *
 * A statement is canonical text (docs/governance.md is normative): fixed
 * lines in a fixed order, each "name: value\n".  The daemon writes it when
 * a request opens; custodianctl shows it to the custodian, who signs
 *
 *     statement || "decision: approve\n"   (or "decision: deny\n")
 *
 * with the key on their card: ECDSA with SHA-256 (DER) for EC keys,
 * RSASSA-PKCS1-v1_5 with SHA-256 for RSA keys (what every card does).
 * Parsing accepts only the canonical form: parse, format again, compare.
 */
#ifndef CT_STMT_H
#define CT_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "custodian/ct_err.h"

#define CT_REQ_ID_LEN 16    /* hex digits of a request id */
#define CT_STMT_MAX 1024    /* bytes of a statement */
#define CT_STMT_PATH_MAX 256

typedef enum {
	CT_ACT_ROTATE = 1, /* key, version = the new version */
	CT_ACT_REVOKE,	   /* key, version */
	CT_ACT_POLICY,	   /* digest = SHA-256 of the new policy file */
	CT_ACT_FREEZE,	   /* key, or the whole service when key is "" */
	CT_ACT_UNFREEZE,   /* likewise */
	CT_ACT_BACKUP,	   /* path */
	CT_ACT_RESTORE,	   /* path, digest = SHA-256 of the backup file */
} ct_action;

typedef struct {
	char id[CT_REQ_ID_LEN + 1];
	ct_action action;
	char key[65];		/* "" when the action names no key */
	uint32_t version;	/* 0 when it names no version */
	bool has_digest;
	uint8_t digest[32];
	char path[CT_STMT_PATH_MAX]; /* "" when it names no file */
	uint8_t policy[32];	/* the policy in force when it was opened */
	int64_t created, expires; /* seconds since the epoch, UTC */
} ct_stmt;

/* What each action names, for building and checking requests. */
enum { CT_NEEDS_KEY = 1, CT_NEEDS_VERSION = 2, CT_NEEDS_DIGEST = 4,
       CT_NEEDS_PATH = 8, CT_MAY_KEY = 16 };
unsigned ct_action_needs(ct_action a);

const char *ct_action_name(ct_action a); /* "rotate", ...; "?" if unknown */
ct_action ct_action_from_name(const char *s); /* 0 when unknown */

/* Write the canonical text into buf (NUL-terminated); *len its length. */
ct_err ct_stmt_format(const ct_stmt *s, char *buf, size_t buflen,
		      size_t *len) CT_WUR;
/* Parse canonical text; CT_ERR_BAD_REQUEST for anything else. */
ct_err ct_stmt_parse(const char *buf, size_t len, ct_stmt *out) CT_WUR;

/* The bytes a custodian signs: text || "decision: approve|deny\n".
 * *out is malloc'd; the caller frees it. */
ct_err ct_stmt_signed_bytes(const char *text, size_t len, bool approve,
			    uint8_t **out, size_t *outlen) CT_WUR;
/* Check a custodian's signature over those bytes with their public key.
 * CT_ERR_BAD_SIGNATURE when it does not verify. */
ct_err ct_stmt_verify(EVP_PKEY *pub, const char *text, size_t len,
		      bool approve, const uint8_t *sig, size_t siglen) CT_WUR;

/* RFC 3339 UTC "2026-11-23T21:40:00Z" (21 bytes with NUL). */
#define CT_TIME_LEN 21
ct_err ct_time_format(int64_t t, char buf[CT_TIME_LEN]) CT_WUR;

#endif
