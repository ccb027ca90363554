/* ct_auditq.h: reading audit logs for people: filters, a table, a summary.
 *
 * Lines come from ct_audit_walk(), which verifies the chain (and, with
 * keys, the checkpoints) as it reads; ct_auditq_run() holds back what it
 * would show until the walk has finished, and shows nothing of a log that
 * fails it unless the walk was asked to keep going (--unverified).  The
 * files are hostile: every field is checked before use and text printed
 * for a terminal is cleared of control characters.
 */
#ifndef CT_AUDITQ_H
#define CT_AUDITQ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "custodian/ct_audit.h"
#include "custodian/ct_err.h"

/* "2026-11-23T19:04:05.123Z": the one form of "time" in audit lines. */
#define CT_AUDITQ_TIME_LEN 24

/* Which lines match: every field that is set must hold. */
typedef struct {
	char since[CT_AUDITQ_TIME_LEN + 1]; /* "" or from ct_auditq_time() */
	char until[CT_AUDITQ_TIME_LEN + 1]; /* exclusive */
	const char *key;	/* "key" equals it */
	uint32_t version;	/* "version" equals it (0: any) */
	bool has_uid;
	uid_t uid;		/* "peer"."uid" equals it */
	const char *op;
	const char *result;	/* "ok", "error" (any result but ok) or a code */
	const char *request_id; /* "id" equals it */
} ct_auditq_filter;

/* A time for --since/--until into the canonical form: YYYY-MM-DD, or
 * YYYY-MM-DDTHH:MM[:SS[.mmm]] with an optional Z (UTC), @EPOCH_SECONDS,
 * or -N followed by s, m, h or d (before `now`).  CT_ERR_BAD_REQUEST when
 * it is none of these or not a real date. */
ct_err ct_auditq_time(const char *s, time_t now,
		      char out[CT_AUDITQ_TIME_LEN + 1]) CT_WUR;

bool ct_auditq_match(const ct_auditq_filter *f, const json_t *line);

typedef enum {
	CT_AUDITQ_JSON = 0, /* matching lines, byte for byte */
	CT_AUDITQ_TABLE,    /* one readable row per matching line */
	CT_AUDITQ_SUMMARY,  /* counts per client, key, refusal and event */
} ct_auditq_mode;

/* Walk the files (see ct_audit_walk) and write what the mode asks for
 * about the matching lines to out, only once the walk has ended: CT_OK
 * (or, with o->keep_going, any problem in rep) writes, any other result
 * writes nothing.  *matched counts the matching lines. */
ct_err ct_auditq_run(const char *const *paths, size_t n_paths,
		     const ct_audit_walk_opts *o, const ct_auditq_filter *f,
		     ct_auditq_mode mode, FILE *out, uint64_t *matched,
		     ct_audit_report *rep) CT_WUR;

#endif
