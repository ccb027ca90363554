/* ct_err.h: the one error enum of custodian.
 *
 * Every fallible function returns ct_err: 0 is success, negative is an error.
 * The wire names (ct_err_code) are stable: clients match on them, so a name is
 * never changed or reused once shipped.  ct_strerror() is the human text.
 */
#ifndef CT_ERR_H
#define CT_ERR_H

#define CT_WUR __attribute__((warn_unused_result))

typedef enum {
	CT_OK = 0,
	CT_ERR_INTERNAL = -1,		/* internal_error */
	CT_ERR_NOMEM = -2,		/* out_of_memory */
	CT_ERR_BAD_REQUEST = -3,	/* bad_request */
	CT_ERR_TOO_LARGE = -4,		/* request_too_large */
	CT_ERR_UNKNOWN_OP = -5,		/* unknown_operation */
	CT_ERR_NOT_AUTHORIZED = -6,	/* not_authorized */
	CT_ERR_NO_SUCH_KEY = -7,	/* no_such_key */
	CT_ERR_NO_SUCH_VERSION = -8,	/* no_such_version */
	CT_ERR_BAD_BLOB = -9,		/* bad_blob */
	CT_ERR_DECRYPT = -10,		/* decrypt_failed */
	CT_ERR_UNSUPPORTED = -11,	/* unsupported_mechanism */
	CT_ERR_WRONG_KEY_TYPE = -12,	/* wrong_key_type */
	CT_ERR_TOKEN = -13,		/* token_error */
	CT_ERR_TOKEN_UNAVAILABLE = -14, /* token_unavailable */
	CT_ERR_PIN = -15,		/* pin_incorrect */
	CT_ERR_AUDIT = -16,		/* audit_failed */
	CT_ERR_POLICY = -17,		/* policy_error */
	CT_ERR_IO = -18,		/* io_error */
	CT_ERR_BUSY = -19,		/* busy */
	CT_ERR_EXISTS = -20,		/* already_exists */
	CT_ERR_TOKEN_NOT_FOUND = -21,	/* token_not_found */
	CT_ERR_SHUTTING_DOWN = -22,	/* shutting_down */
	CT_ERR_HANDLE_STALE = -23,	/* internal: object handle invalid, re-find */
	CT_ERR_BAD_SIGNATURE = -24,	/* bad_signature */
	CT_ERR_UNAVAILABLE = -25,	/* service_unavailable */
	CT_ERR_FROZEN = -26,		/* frozen */
	CT_ERR_REVOKED = -27,		/* key_revoked */
	CT_ERR_RETIRED = -28,		/* version_retired */
	CT_ERR_NO_SUCH_REQUEST = -29,	/* no_such_request */
	CT_ERR_REQUEST_CLOSED = -30,	/* request_closed */
	CT_ERR_APPROVAL = -31,		/* approval_refused */
	CT_ERR_TOKEN_ABSENT = -32,	/* token_absent */
	CT_ERR_BAD_BACKUP = -33,	/* bad_backup */
	CT_ERR_GRANT_EXPIRED = -34,	/* grant_expired */
	CT_ERR_RATE_LIMITED = -35,	/* rate_limited */
	CT_ERR_TOKEN_TIMEOUT = -36,	/* token_timeout */
	CT_ERR_LAST_ = -37
} ct_err;

/* Stable wire code, e.g. "not_authorized".  Never NULL. */
const char *ct_err_code(ct_err e);
/* Human-readable text.  Never NULL. */
const char *ct_strerror(ct_err e);

#endif
