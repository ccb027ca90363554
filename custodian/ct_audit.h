/* ct_audit.h: the tamper-evident audit log.
 *
 * One JSON object per line.  Each line carries "seq" (1, 2, ...) and "prev",
 * the lowercase hex SHA-256 of the previous line's bytes (without its
 * newline); the first line of a log has 64 zeros.  Lines are hashed exactly
 * as written, so the chain does not depend on JSON canonical forms.
 *
 * Group commit: ct_audit_append() only formats a line into memory; one
 * ct_audit_commit() writes every pending line and covers them with a single
 * fdatasync().  A reply that depends on a line goes out only after the
 * commit that covers it succeeded.  When a commit fails, every pending line
 * is dropped, the file is cut back to the last committed length, and the
 * chain state rolls back, so the log never holds a partial or unacknowledged
 * line; the caller refuses the operations whose lines were dropped.  If the
 * file cannot even be cut back, the log is marked broken and every later
 * append and commit fails (fail closed) until it is reopened.
 */
#ifndef CT_AUDIT_H
#define CT_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "custodian/ct_err.h"

#define CT_AUDIT_LINE_MAX 16384 /* longest line written or accepted */

typedef struct ct_audit ct_audit;

/* Open (create, 0600) for appending, holding an exclusive flock so that
 * two writers cannot fork the chain (CT_ERR_BUSY when another holds it).
 * If the file has lines, the last one is read to continue the chain (seq
 * and hash); a last line that is not a complete audit line makes open fail
 * with CT_ERR_AUDIT; system failures give CT_ERR_IO.  Bytes after the last
 * newline (a write torn by a crash, never acknowledged) are cut off first,
 * durably, and reported by ct_audit_torn(); a tail longer than
 * CT_AUDIT_LINE_MAX is not a torn write and fails with CT_ERR_AUDIT.  A
 * ct_audit is used by one thread only. */
ct_err ct_audit_open(const char *path, ct_audit **out) CT_WUR;
void ct_audit_close(ct_audit *a); /* NULL is fine; does not commit */

/* Format one line in memory: the fields of `event` (an object, not
 * consumed) after "seq", "time" (RFC 3339 UTC with milliseconds, from now)
 * and "prev".  Does not write. */
ct_err ct_audit_append(ct_audit *a, const json_t *event,
		       const struct timespec *now) CT_WUR;
/* Write all pending lines and fdatasync once.  CT_OK with nothing pending. */
ct_err ct_audit_commit(ct_audit *a) CT_WUR;
/* Lines appended but not yet committed. */
size_t ct_audit_pending(const ct_audit *a);
/* seq of the last committed line (0 for an empty log). */
uint64_t ct_audit_seq(const ct_audit *a);
/* Bytes of a torn last line that open cut off (0: none); hex gets the
 * lowercase SHA-256 of those bytes, for the record. */
size_t ct_audit_torn(const ct_audit *a, char hex[65]);

typedef struct {
	uint64_t lines;	   /* lines read */
	uint64_t bad_line; /* 1-based number of the first broken line, 0 = ok */
	char reason[160];  /* what is wrong with it */
} ct_audit_report;

/* Check the whole chain of a file.  CT_OK when intact; CT_ERR_AUDIT with
 * the report filled when a line is broken; CT_ERR_IO when unreadable. */
ct_err ct_audit_verify(const char *path, ct_audit_report *rep) CT_WUR;

#endif
