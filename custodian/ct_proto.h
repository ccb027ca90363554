/* ct_proto.h: the wire protocol codec (docs/protocol.md is normative).
 *
 * One request per line: a JSON object of at most CT_LINE_MAX bytes.  The
 * decoder is a pure function from bytes to a typed ct_request, so a fuzzer
 * drives exactly what the daemon runs.  It refuses unknown fields, fields
 * the operation does not take, wrong types, overlong values, duplicate keys
 * and missing required fields, each with a message naming the field.
 */
#ifndef CT_PROTO_H
#define CT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "custodian/ct_err.h"

#define CT_PROTO_VERSION 1
#define CT_LINE_MAX 65536    /* request bytes, without the newline */
#define CT_ID_MAX 64
#define CT_KEY_NAME_MAX 64
#define CT_DATA_MAX 32768    /* sign/verify message */
#define CT_SIG_MAX 1024
#define CT_CONTEXT_MAX 1024

/* Request fields (bit set). */
enum {
	CT_F_KEY = 1u << 0,
	CT_F_VERSION = 1u << 1,
	CT_F_DATA = 1u << 2,
	CT_F_DIGEST = 1u << 3,
	CT_F_SIGNATURE = 1u << 4,
	CT_F_PLAINTEXT = 1u << 5,
	CT_F_BLOB = 1u << 6,
	CT_F_CONTEXT = 1u << 7,
	CT_F_ACTION = 1u << 8,
	CT_F_REQUEST = 1u << 9,
	CT_F_CUSTODIAN = 1u << 10,
	CT_F_DECISION = 1u << 11,
	CT_F_FILE = 1u << 12,
};

typedef enum {
	CT_OP_SIGN = 1,
	CT_OP_VERIFY,
	CT_OP_PUBLIC_KEY,
	CT_OP_WRAP,
	CT_OP_UNWRAP,
	CT_OP_DATAKEY,
	CT_OP_REWRAP,
	CT_OP_LIST_KEYS,
	CT_OP_STATUS,
	CT_OP_GOV_REQUEST,
	CT_OP_GOV_SHOW,
	CT_OP_GOV_LIST,
	CT_OP_GOV_APPROVE,
	CT_OP_DUE,
	/* Internal: token work of governance, never decoded from the wire. */
	CT_OP_KEYGEN_,
	CT_OP_DESTROY_,
} ct_op;

/* What the protocol knows of an operation; the daemon's command table
 * (ct_ops.c) adds rights and handlers. */
typedef struct {
	const char *name;
	ct_op op;
	unsigned required; /* CT_F_* that must be present */
	unsigned optional; /* CT_F_* that may be present */
	unsigned one_of;   /* exactly one of these must be present (or 0) */
} ct_opspec;

const ct_opspec *ct_opspec_find(const char *name);

/* A decoded request; owns its buffers (wiped on clear). */
typedef struct {
	const ct_opspec *spec;
	char id[CT_ID_MAX + 1];
	char key[CT_KEY_NAME_MAX + 1];
	uint32_t version; /* 0: the current version */
	char action[17];    /* governance: "rotate", ... */
	char request[17];   /* governance: request id */
	char custodian[65];
	char decision[9];   /* "approve" or "deny" */
	uint8_t *file;	    /* governance: a path (text), NUL-terminated */
	size_t file_len;
	unsigned fields;  /* CT_F_* present */
	uint8_t *data;
	size_t data_len;
	uint8_t *digest;
	size_t digest_len;
	uint8_t *sig;
	size_t sig_len;
	uint8_t *plaintext;
	size_t plaintext_len;
	uint8_t *blob;
	size_t blob_len;
	uint8_t *context;
	size_t context_len;
} ct_request;

/* Decode one line (without its newline).  On error req is cleared, err
 * holds a message for the client, and req->id is kept when it was readable
 * so the error reply can carry it. */
ct_err ct_request_decode(const char *line, size_t len, ct_request *req,
			 char *err, size_t errlen) CT_WUR;
/* Wipe and free what the request owns; leaves it zeroed. */
void ct_request_clear(ct_request *req);

/* Encode a reply line ending in '\n'.  *out is malloc'd; free it with
 * ct_free_secret(*out, *outlen) since a result may hold plaintext.
 * ct_reply_ok takes a reference to result (it does not steal it). */
ct_err ct_reply_ok(const char *id, json_t *result, char **out,
		   size_t *outlen) CT_WUR;
ct_err ct_reply_error(const char *id, ct_err e, const char *msg, char **out,
		      size_t *outlen) CT_WUR;

#endif
