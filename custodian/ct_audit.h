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
 *
 * A daemon commits on a writer thread instead (ct_audit_writer_start), so
 * that it goes on appending while a batch is synced: ct_audit_flush hands
 * the pending lines over as one batch, ct_audit_collect takes the result.
 * The lines appended meanwhile continue the chain after the batch; if it
 * fails they are dropped with it.
 *
 * Checkpoints: a checkpoint line signs the chain head before it (seq and
 * hash) with the audit key, on the token, through a caller's signer.  A
 * rotation seals the file with a checkpoint and continues the chain in a
 * new file whose first line is a "rotate" line.  docs/audit.md is the
 * normative description of both and of what the walk below checks.
 */
#ifndef CT_AUDIT_H
#define CT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "custodian/ct_err.h"

#define CT_AUDIT_LINE_MAX 16384 /* longest line written or accepted */
#define CT_AUDIT_SIG_MAX 256	/* longest checkpoint signature (DER) */
#define CT_AUDIT_KEYS_MAX 16	/* public keys one walk tries */

typedef struct ct_audit ct_audit;

/* Open (create, 0600) for appending, holding an exclusive flock so that
 * two writers cannot fork the chain (CT_ERR_BUSY when another holds it).
 * If the file has lines, the last one is read to continue the chain (seq
 * and hash); a last line that is not a complete audit line makes open fail
 * with CT_ERR_AUDIT; system failures give CT_ERR_IO.  A ct_audit is used by
 * one thread only (its writer thread aside). */
ct_err ct_audit_open(const char *path, ct_audit **out) CT_WUR;
void ct_audit_close(ct_audit *a); /* NULL is fine; does not commit */

/* Format one line in memory: the fields of `event` (an object, not
 * consumed) after "seq", "time" (RFC 3339 UTC with milliseconds, from now)
 * and "prev".  Does not write. */
ct_err ct_audit_append(ct_audit *a, const json_t *event,
		       const struct timespec *now) CT_WUR;
/* Write all pending lines and fdatasync once.  CT_OK with nothing pending.
 * A batch on the writer is waited for first; if it failed, so does this. */
ct_err ct_audit_commit(ct_audit *a) CT_WUR;
/* Start the writer thread; *efd becomes readable when a batch is done.  The
 * thread and efd are the ct_audit's: ct_audit_close ends them. */
ct_err ct_audit_writer_start(ct_audit *a, int *efd) CT_WUR;
/* Hand the pending lines to the writer as one batch (CT_OK with nothing
 * pending); CT_ERR_INTERNAL without a writer or while it is busy. */
ct_err ct_audit_flush(ct_audit *a) CT_WUR;
/* A batch is out and not yet collected. */
bool ct_audit_busy(const ct_audit *a);
/* Take the result of the batch on the writer: true if one finished (after
 * waiting for it if `wait`), with its result in *result: CT_OK, the lines
 * are committed; CT_ERR_AUDIT, they and the pending lines are dropped. */
bool ct_audit_collect(ct_audit *a, bool wait, ct_err *result);
/* Commits that failed so far: a line appended before one that its
 * appender has not seen may have been dropped with it. */
uint64_t ct_audit_failures(const ct_audit *a);
/* Lines appended and not yet handed to a commit. */
size_t ct_audit_pending(const ct_audit *a);
/* seq of the last committed line (0 for an empty log). */
uint64_t ct_audit_seq(const ct_audit *a);
/* Bytes of a torn last line that open cut off (0: none); hex gets the
 * lowercase SHA-256 of those bytes, for the record. */
size_t ct_audit_torn(const ct_audit *a, char hex[65]);
/* Committed bytes of the current file. */
uint64_t ct_audit_size(const ct_audit *a);

/* Signs checkpoints with a key the caller holds (on the token). */
typedef struct {
	const char *key;  /* the audit key's policy name, for the line */
	uint32_t version; /* its version */
	bool sha384;	  /* ecdsa-sha384 (ec-p384), else ecdsa-sha256 */
	/* Sign a digest: a DER ECDSA-Sig-Value into sig, *siglen its size on
	 * entry and the length on return.  On failure say why in `why`. */
	ct_err (*sign)(void *arg, const uint8_t *digest, size_t dlen,
		       uint8_t *sig, size_t *siglen, char *why, size_t whylen);
	void *arg;
} ct_audit_signer;

/* Append (pending, like ct_audit_append) a checkpoint line signing the
 * head before it, or, when the signer fails, a "checkpoint_failed" line
 * that says why: a token failure never loses or reorders lines.  Returns
 * the append's result; *sign_err gets the signer's.  Nothing is appended
 * to an empty log (head seq 0). */
ct_err ct_audit_checkpoint(ct_audit *a, const ct_audit_signer *s,
			   const struct timespec *now, ct_err *sign_err) CT_WUR;

/* Rotate: with a signer, append and commit a checkpoint that seals the
 * current file; build "<path>.new" holding the rotate line (which carries
 * that checkpoint and the previous file's name), fsync it, link the
 * current file to "<path>.<first seq, 20 digits>", rename the new file
 * over <path> and fsync the directory.  The name <path> always refers to
 * a complete file.  No lines may be pending.  On failure before the
 * rename nothing changed but a committed checkpoint; when the directory
 * cannot be synced after it, the log is marked broken (fail closed).
 * `archived` gets the old file's new name. */
ct_err ct_audit_rotate(ct_audit *a, const ct_audit_signer *s,
		       const struct timespec *now, char *archived,
		       size_t archived_len) CT_WUR;

/* How a walk reads a sequence of files (oldest first) as one chain. */
typedef struct {
	EVP_PKEY *const *keys; /* audit public keys (not owned); with none,
				* signatures are not checked */
	size_t n_keys;	       /* at most CT_AUDIT_KEYS_MAX */
	const char *checkpoints; /* exported checkpoints to match, or NULL */
	bool live;	 /* lines after the last checkpoint are no error */
	bool keep_going; /* after a problem, go on handing lines to fn */
} ct_audit_walk_opts;

typedef struct {
	uint64_t lines;	       /* lines read, over all files */
	const char *bad_file;  /* where the first problem is (a path given) */
	uint64_t bad_line;     /* its 1-based line, 0 = no problem */
	char reason[200];      /* what is wrong there */
	uint64_t first_seq, last_seq;
	uint64_t checkpoints;  /* checkpoint lines (signatures checked when
				* keys were given) */
	uint64_t signed_seq;   /* highest seq a verified signature covers */
	uint64_t exported;     /* exported checkpoints found in the files */
	const char *tail_file; /* first line after the last checkpoint ... */
	uint64_t tail_line;    /* ... (0: none) and how many follow it */
	uint64_t tail_lines;
} ct_audit_report;

/* Called with every line that is a JSON object with the chain fields, in
 * order (obj and line are valid during the call); a non-CT_OK return ends
 * the walk with that result.  Without keep_going only verified lines are
 * handed over, and the walk stops at the first problem. */
typedef ct_err (*ct_audit_line_fn)(void *arg, const json_t *obj,
				   const char *line, size_t len);

/* Check files as one chain: seq, prev, rotate lines joining the files,
 * every checkpoint's form and (with keys) signature, exported checkpoints
 * (the same bytes at their seq; none beyond the end), and with keys, no
 * lines after the last checkpoint unless live.  CT_OK when all holds;
 * CT_ERR_AUDIT with rep naming the first problem; CT_ERR_IO when a file
 * is unreadable (rep->bad_file names it). */
ct_err ct_audit_walk(const char *const *paths, size_t n_paths,
		     const ct_audit_walk_opts *o, ct_audit_line_fn fn,
		     void *arg, ct_audit_report *rep) CT_WUR;

/* ct_audit_walk of one file, chain only. */
ct_err ct_audit_verify(const char *path, ct_audit_report *rep) CT_WUR;

#endif
