/* ct_audit.c: the tamper-evident audit log (see ct_audit.h). */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "custodian/ct_audit.h"
#include "custodian/ct_util.h"

#define HASH_LEN SHA256_DIGEST_LENGTH
#define HEX_LEN (2 * HASH_LEN)
#define PENDING_MIN (64 * 1024)
#define VERIFY_BUF (64 * 1024)
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* verify must always have room for one whole line plus its newline. */
_Static_assert(VERIFY_BUF > CT_AUDIT_LINE_MAX + 1, "verify buffer too small");

struct ct_audit {
	int fd;			/* O_WRONLY | O_APPEND */
	int broken;		/* could not cut back a failed commit */
	off_t size;		/* committed length of the file */
	uint64_t seq;		/* committed chain state ... */
	unsigned char hash[HASH_LEN];
	uint64_t pend_seq;	/* ... and the state after the pending lines */
	unsigned char pend_hash[HASH_LEN];
	char *pend;		/* pending lines, each ending in '\n' */
	size_t pend_len, pend_cap, pend_lines;
	size_t torn_len;	/* bytes cut by open, and their hash */
	unsigned char torn_hash[HASH_LEN];
};

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly 64 lowercase hex digits: the one form this module writes. */
static int
hex_decode(const char *s, unsigned char hash[HASH_LEN])
{
	size_t i;
	int hi, lo;

	if (s == NULL || strlen(s) != HEX_LEN)
		return -1;
	for (i = 0; i < HASH_LEN; i++) {
		if ((hi = hex_nibble(s[2 * i])) < 0 ||
		    (lo = hex_nibble(s[2 * i + 1])) < 0)
			return -1;
		hash[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int
line_hash(const char *line, size_t len, unsigned char hash[HASH_LEN])
{
	return SHA256((const unsigned char *)line, len, hash) == NULL ? -1 : 0;
}

/*
 * Checks the fields every audit line carries and returns its seq and prev.
 * On failure says why in `why`.  Used by open (last line) and verify.
 */
static int
parse_line(const char *line, size_t len, uint64_t *seq,
	   unsigned char prev[HASH_LEN], char *why, size_t whylen)
{
	json_t *obj = NULL, *v;
	json_error_t jerr;
	int r = -1;

	if ((obj = json_loadb(line, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		snprintf(why, whylen, "not a JSON object: %.120s",
		    jerr.text);
		goto out;
	}
	if (!json_is_object(obj)) {
		snprintf(why, whylen, "not a JSON object");
		goto out;
	}
	v = json_object_get(obj, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		snprintf(why, whylen, "seq missing or not a positive integer");
		goto out;
	}
	*seq = (uint64_t)json_integer_value(v);
	if (hex_decode(json_string_value(json_object_get(obj, "prev")),
	    prev) != 0) {
		snprintf(why, whylen, "prev missing or not 64 lowercase hex");
		goto out;
	}
	if (!json_is_string(json_object_get(obj, "time"))) {
		snprintf(why, whylen, "time missing or not a string");
		goto out;
	}
	r = 0;
 out:
	json_decref(obj);
	return r;
}

static int
pread_full(int fd, char *buf, size_t len, off_t off)
{
	ssize_t n;

	while (len > 0) {
		if ((n = pread(fd, buf, len, off)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int
write_full(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the creation of `path` itself durable. */
static ct_err
sync_parent_dir(const char *path)
{
	char *dir = ct_dirname(path);
	int fd = -1;
	ct_err r = CT_ERR_IO;

	if (dir == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) != 0)
		goto out;
	r = CT_OK;
 out:
	if (fd != -1)
		close(fd);
	free(dir);
	return r;
}

/* The last min(size, max) bytes of the file; *buf is malloc'd. */
static ct_err
read_tail(const char *path, off_t size, size_t max, char **buf, size_t *len)
{
	size_t want = size < (off_t)max ? (size_t)size : max;
	int fd = -1;
	ct_err r = CT_ERR_IO;

	*len = 0;
	if ((*buf = malloc(want > 0 ? want : 1)) == NULL)
		return CT_ERR_NOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    pread_full(fd, *buf, want, size - (off_t)want) != 0)
		goto out;
	*len = want;
	r = CT_OK;
 out:
	if (fd != -1)
		close(fd);
	if (r != CT_OK) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

/*
 * Reads the last line of a non-empty log of `size` bytes to continue its
 * chain.  Only the tail is read: the line, its newline and the newline
 * before it.  The log ends in '\n' here (cut_torn_tail ran first).
 */
static ct_err
read_last_line(const char *path, off_t size, uint64_t *seq,
	       unsigned char hash[HASH_LEN])
{
	char *buf = NULL, *line;
	char why[160];
	unsigned char prev[HASH_LEN];
	size_t want, len;
	ct_err r;

	if ((r = read_tail(path, size, CT_AUDIT_LINE_MAX + 2, &buf,
	    &want)) != CT_OK)
		goto out;
	r = CT_ERR_AUDIT;
	if (buf[want - 1] != '\n')
		goto out;
	if ((line = memrchr(buf, '\n', want - 1)) != NULL)
		line++;
	else if ((off_t)want == size)
		line = buf;
	else
		goto out; /* longer than any line we write */
	len = (size_t)(buf + want - 1 - line);
	if (parse_line(line, len, seq, prev, why, sizeof(why)) != 0 ||
	    line_hash(line, len, hash) != 0)
		goto out;
	r = CT_OK;
 out:
	free(buf);
	return r;
}

/*
 * A crash (kill -9, power loss) during a commit can leave part of a line
 * after the last newline.  No reply waited on it: replies wait for the
 * fdatasync of whole lines.  So it is cut off, durably, and its length and
 * hash are kept for the caller to record: neither accepted as a line nor
 * left to stop the daemon.  A tail longer than any line this module writes
 * is no torn write: refused (CT_ERR_AUDIT).
 */
static ct_err
cut_torn_tail(ct_audit *a, const char *path, off_t *size)
{
	char *buf = NULL, *nl;
	size_t len, keep;
	ct_err r;

	if ((r = read_tail(path, *size, CT_AUDIT_LINE_MAX + 1, &buf,
	    &len)) != CT_OK)
		goto out;
	if (buf[len - 1] == '\n')
		goto out;
	r = CT_ERR_AUDIT;
	if ((nl = memrchr(buf, '\n', len)) != NULL)
		keep = (size_t)(nl + 1 - buf);
	else if ((off_t)len == *size)
		keep = 0;
	else
		goto out;
	a->torn_len = len - keep;
	r = CT_ERR_INTERNAL;
	if (line_hash(buf + keep, a->torn_len, a->torn_hash) != 0)
		goto out;
	r = CT_ERR_IO;
	if (ftruncate(a->fd, *size - (off_t)a->torn_len) != 0 ||
	    fdatasync(a->fd) != 0)
		goto out;
	*size -= (off_t)a->torn_len;
	r = CT_OK;
 out:
	free(buf);
	return r;
}

ct_err
ct_audit_open(const char *path, ct_audit **out)
{
	ct_audit *a = NULL;
	struct stat st;
	int created = 0;
	ct_err r = CT_ERR_IO;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	/* O_EXCL first: a new directory entry needs the directory synced. */
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (a->fd != -1)
		created = 1;
	else if (errno == EEXIST)
		a->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (a->fd == -1 || fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	/* Two writers would fork the chain. */
	if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
		r = CT_ERR_BUSY;
		goto out;
	}
	if (created && (r = sync_parent_dir(path)) != CT_OK)
		goto out;
	if (st.st_size > 0 &&
	    (r = cut_torn_tail(a, path, &st.st_size)) != CT_OK)
		goto out;
	if (st.st_size > 0 &&
	    (r = read_last_line(path, st.st_size, &a->seq, a->hash)) != CT_OK)
		goto out;
	a->size = st.st_size;
	a->pend_seq = a->seq;
	memcpy(a->pend_hash, a->hash, HASH_LEN);
	*out = a;
	a = NULL;
	r = CT_OK;
 out:
	ct_audit_close(a);
	return r;
}

void
ct_audit_close(ct_audit *a)
{
	if (a == NULL)
		return;
	if (a->fd != -1)
		close(a->fd);
	free(a->pend);
	free(a);
}

/* Room for `need` more bytes of pending lines, growing by doubling. */
static ct_err
pend_reserve(ct_audit *a, size_t need)
{
	size_t cap = a->pend_cap == 0 ? PENDING_MIN : a->pend_cap;
	char *p;

	if (a->pend_cap - a->pend_len >= need)
		return CT_OK;
	while (cap - a->pend_len < need) {
		if (cap > SIZE_MAX / 2)
			return CT_ERR_NOMEM;
		cap *= 2;
	}
	if ((p = realloc(a->pend, cap)) == NULL)
		return CT_ERR_NOMEM;
	a->pend = p;
	a->pend_cap = cap;
	return CT_OK;
}

/*
 * The chain fields, as jansson would write them compactly, without the
 * closing brace: {"seq":1,"time":"2026-11-23T19:04:05.123Z","prev":"00..."
 * They need no escaping, so they are printed, not built as JSON values.
 */
static int
format_head(const ct_audit *a, const struct timespec *now, char *buf,
	    size_t len)
{
	char prev[HEX_LEN + 1];
	struct tm tm;
	int n;

	if (now->tv_nsec < 0 || now->tv_nsec >= 1000000000L ||
	    gmtime_r(&now->tv_sec, &tm) == NULL ||
	    tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -1;
	ct_hex(a->pend_hash, HASH_LEN, prev);
	n = snprintf(buf, len, "{\"seq\":%" PRIu64 ",\"time\":"
	    "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"prev\":\"%s\"",
	    a->pend_seq + 1, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, now->tv_nsec / 1000000L, prev);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

ct_err
ct_audit_append(ct_audit *a, const json_t *event, const struct timespec *now)
{
	unsigned char hash[HASH_LEN];
	char *line, *rest;
	size_t len, head_len, rest_len;
	int n;
	ct_err r;

	/* seq must stay a JSON integer (int64) */
	if (a->broken || a->pend_seq >= INT64_MAX)
		return CT_ERR_AUDIT;
	if (!json_is_object(event) || json_object_get(event, "seq") != NULL ||
	    json_object_get(event, "time") != NULL ||
	    json_object_get(event, "prev") != NULL)
		return CT_ERR_INTERNAL;
	if ((r = pend_reserve(a, CT_AUDIT_LINE_MAX + 1)) != CT_OK)
		return r;
	/*
	 * Format in place at the end of the pending buffer; the line counts
	 * only once it is complete and fits.  The event's own dump follows
	 * the chain fields, its '{' becoming the ',' (or, when it is empty,
	 * its "{}" the '}') that joins them: one object, one json_dumpb.
	 */
	line = a->pend + a->pend_len;
	if ((n = format_head(a, now, line, CT_AUDIT_LINE_MAX + 1)) < 0)
		return CT_ERR_INTERNAL;
	head_len = (size_t)n;
	rest = line + head_len;
	rest_len = json_dumpb(event, rest, CT_AUDIT_LINE_MAX + 1 - head_len,
	    DUMP_FLAGS);
	if (rest_len < 2 || rest_len > CT_AUDIT_LINE_MAX - head_len)
		return CT_ERR_AUDIT;
	if (rest_len == 2) {
		rest[0] = '}';
		rest_len = 1;
	} else
		rest[0] = ',';
	len = head_len + rest_len;
	/* Compact JSON escapes newlines; the check guards the framing. */
	if (memchr(line, '\n', len) != NULL)
		return CT_ERR_AUDIT;
	if (line_hash(line, len, hash) != 0)
		return CT_ERR_INTERNAL;
	line[len] = '\n';
	a->pend_len += len + 1;
	a->pend_lines++;
	a->pend_seq++;
	memcpy(a->pend_hash, hash, HASH_LEN);
	return CT_OK;
}

/* Forgets the pending lines: the chain continues from the committed state. */
static void
drop_pending(ct_audit *a)
{
	a->pend_len = 0;
	a->pend_lines = 0;
	a->pend_seq = a->seq;
	memcpy(a->pend_hash, a->hash, HASH_LEN);
}

ct_err
ct_audit_commit(ct_audit *a)
{
	if (a->broken)
		return CT_ERR_AUDIT;
	if (a->pend_len == 0)
		return CT_OK;
	if (write_full(a->fd, a->pend, a->pend_len) != 0 ||
	    fdatasync(a->fd) != 0) {
		/*
		 * Cut off whatever reached the file, durably: a crash must not
		 * bring back lines whose operations were refused.  O_APPEND
		 * puts the next write at the new end; no lseek needed.
		 */
		if (ftruncate(a->fd, a->size) != 0 || fdatasync(a->fd) != 0)
			a->broken = 1;
		drop_pending(a);
		return CT_ERR_AUDIT;
	}
	a->size += (off_t)a->pend_len;
	a->seq = a->pend_seq;
	memcpy(a->hash, a->pend_hash, HASH_LEN);
	drop_pending(a);
	return CT_OK;
}

size_t
ct_audit_pending(const ct_audit *a)
{
	return a->pend_lines;
}

uint64_t
ct_audit_seq(const ct_audit *a)
{
	return a->seq;
}

size_t
ct_audit_torn(const ct_audit *a, char hex[2 * HASH_LEN + 1])
{
	ct_hex(a->torn_hash, HASH_LEN, hex);
	return a->torn_len;
}

enum next_line { LINE_OK, LINE_EOF, LINE_IO, LINE_LONG, LINE_TORN };

struct reader {
	int fd;
	char *buf;		/* VERIFY_BUF bytes */
	size_t start, end;	/* unread bytes are buf[start, end) */
};

/* Next line without its newline; never more than CT_AUDIT_LINE_MAX. */
static enum next_line
next_line(struct reader *rd, const char **line, size_t *len)
{
	char *nl;
	ssize_t n;

	for (;;) {
		*line = rd->buf + rd->start;
		nl = memchr(*line, '\n', rd->end - rd->start);
		*len = nl != NULL ? (size_t)(nl - *line) : rd->end - rd->start;
		if (*len > CT_AUDIT_LINE_MAX)
			return LINE_LONG;
		if (nl != NULL) {
			rd->start += *len + 1;
			return LINE_OK;
		}
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->end -= rd->start;
		rd->start = 0;
		n = read(rd->fd, rd->buf + rd->end, VERIFY_BUF - rd->end);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return LINE_IO;
		if (n == 0)
			return rd->end == 0 ? LINE_EOF : LINE_TORN;
		rd->end += (size_t)n;
	}
}

ct_err
ct_audit_verify(const char *path, ct_audit_report *rep)
{
	struct reader rd = { .fd = -1 };
	unsigned char hash[HASH_LEN] = { 0 }, prev[HASH_LEN];
	const char *line;
	size_t len;
	uint64_t seq, lineno, last_seq = 0;
	ct_err r = CT_ERR_IO;

	memset(rep, 0, sizeof(*rep));
	if ((rd.buf = malloc(VERIFY_BUF)) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	if ((rd.fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	for (lineno = 1;; lineno++) {
		switch (next_line(&rd, &line, &len)) {
		case LINE_OK:
			break;
		case LINE_EOF:
			r = CT_OK;
			goto out;
		case LINE_IO:
			r = CT_ERR_IO;
			goto out;
		case LINE_LONG:
			snprintf(rep->reason, sizeof(rep->reason),
			    "line too long");
			goto bad;
		case LINE_TORN:
			snprintf(rep->reason, sizeof(rep->reason),
			    "missing newline at end of file (a torn write: "
			    "custodiand cuts it at its next start)");
			goto bad;
		}
		rep->lines = lineno;
		if (parse_line(line, len, &seq, prev, rep->reason,
		    sizeof(rep->reason)) != 0)
			goto bad;
		if (seq != last_seq + 1) {
			if (lineno == 1)
				snprintf(rep->reason, sizeof(rep->reason),
				    "first seq is %" PRIu64 ", not 1", seq);
			else
				snprintf(rep->reason, sizeof(rep->reason),
				    "seq %" PRIu64 " follows %" PRIu64,
				    seq, last_seq);
			goto bad;
		}
		if (CRYPTO_memcmp(prev, hash, HASH_LEN) != 0) {
			if (lineno == 1)
				snprintf(rep->reason, sizeof(rep->reason),
				    "prev of the first line is not zeros");
			else
				snprintf(rep->reason, sizeof(rep->reason),
				    "prev hash does not match line %" PRIu64,
				    lineno - 1);
			goto bad;
		}
		if (line_hash(line, len, hash) != 0) {
			r = CT_ERR_INTERNAL;
			goto out;
		}
		last_seq = seq;
	}
 bad:
	rep->bad_line = lineno;
	r = CT_ERR_AUDIT;
 out:
	if (rd.fd != -1)
		close(rd.fd);
	free(rd.buf);
	return r;
}
