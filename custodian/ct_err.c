/* ct_err.c: the one string table for ct_err. */
#include "custodian/ct_err.h"

static const struct {
	const char *code;
	const char *text;
} table[] = {
	[0] = { "ok", "success" },
	[1] = { "internal_error", "internal error" },
	[2] = { "out_of_memory", "out of memory" },
	[3] = { "bad_request", "malformed request" },
	[4] = { "request_too_large", "request exceeds the size limit" },
	[5] = { "unknown_operation", "unknown operation" },
	[6] = { "not_authorized", "not authorized by policy" },
	[7] = { "no_such_key", "no such key" },
	[8] = { "no_such_version", "no such key version" },
	[9] = { "bad_blob", "malformed wrapped blob" },
	[10] = { "decrypt_failed", "decryption failed (wrong key, context or tampered data)" },
	[11] = { "unsupported_mechanism", "mechanism not supported by the token" },
	[12] = { "wrong_key_type", "operation not possible with this key type" },
	[13] = { "token_error", "token error" },
	[14] = { "token_unavailable", "token unavailable" },
	[15] = { "pin_incorrect", "PIN incorrect or locked" },
	[16] = { "audit_failed", "audit log could not be written" },
	[17] = { "policy_error", "policy error" },
	[18] = { "io_error", "input/output error" },
	[19] = { "busy", "service busy" },
	[20] = { "already_exists", "object already exists" },
	[21] = { "token_not_found", "token not found" },
	[22] = { "shutting_down", "service shutting down" },
	[23] = { "internal_error", "stale object handle" },
	[24] = { "bad_signature", "signature invalid" },
	[25] = { "service_unavailable", "service unavailable" },
	[26] = { "frozen", "frozen by a custodian or the daemon" },
	[27] = { "key_revoked", "key version revoked" },
	[28] = { "version_retired", "key version retired: unwrap and verify only" },
	[29] = { "no_such_request", "no such governance request" },
	[30] = { "request_closed", "request expired, denied or already done" },
	[31] = { "approval_refused", "approval refused" },
	[32] = { "token_absent", "the token's card is not in its reader" },
	[33] = { "bad_backup", "backup file malformed, altered or not signed by the expected key" },
	[34] = { "grant_expired", "the grant has expired" },
	[35] = { "rate_limited", "request rate over the client's limit" },
	[36] = { "token_timeout", "the token did not answer in time" },
};

_Static_assert(sizeof(table) / sizeof(table[0]) == -CT_ERR_LAST_,
	       "every ct_err has a table entry");

static unsigned
idx(ct_err e)
{
	if (e > 0 || e <= CT_ERR_LAST_)
		return 1;
	return (unsigned)-e;
}

const char *
ct_err_code(ct_err e)
{
	return table[idx(e)].code;
}

const char *
ct_strerror(ct_err e)
{
	return table[idx(e)].text;
}
