/* ct_audit.c: the tamper-evident audit log (see ct_audit.h). */
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
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

/* The statement a checkpoint signs, before hashing (docs/audit.md). */
#define CP_STATEMENT "custodian audit checkpoint v1\n%" PRIu64 "\n%s\n"

struct ct_audit {
	char *path;
	int fd;			/* O_WRONLY | O_APPEND */
	int broken;		/* could not cut back a failed commit */
	off_t size;		/* committed length of the file */
	uint64_t first_seq;	/* seq of the file's first line, 0 if empty */
	uint64_t seq;		/* committed chain state ... */
	unsigned char hash[HASH_LEN];
	uint64_t pend_seq;	/* ... and the state after the pending lines */
	unsigned char pend_hash[HASH_LEN];
	char *pend;		/* pending lines, each ending in '\n' */
	size_t pend_len, pend_cap, pend_lines;
	size_t torn_len;	/* bytes cut by open, and their hash */
	unsigned char torn_hash[HASH_LEN];
	struct writer *w;	/* group commit on a thread, or NULL */
	uint64_t failures;	/* commits that failed */
};

/*
 * The writer thread and the batch it writes.  The owner fills the batch
 * while the writer is idle and reads the result once it is done; `state`,
 * under `mu`, hands the batch over in each direction.  `busy` is the
 * owner's own view: a batch is out and not yet collected.
 */
enum { W_IDLE, W_QUEUED, W_DONE };
struct writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state, stop;
	bool busy;
	int efd;		/* readable when a batch is done */
	int fd;			/* the batch: where, from which committed length */
	off_t base;
	char *buf;
	size_t len, cap;
	uint64_t seq;		/* chain state after the batch */
	unsigned char hash[HASH_LEN];
	int result;		/* 0, or a write_lines() failure */
};

static void writer_stop(struct writer *w);

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
 * Checks the fields every audit line carries and returns its seq and prev,
 * and the object in *objp unless objp is NULL.  On failure says why in
 * `why`.  Used by open (first and last line), walks and exports.
 */
static int
parse_line(const char *line, size_t len, uint64_t *seq,
	   unsigned char prev[HASH_LEN], json_t **objp, char *why,
	   size_t whylen)
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
	if (objp != NULL) {
		*objp = obj;
		obj = NULL;
	}
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

/* The first or the last min(size, max) bytes of a file of `size` bytes;
 * *buf is malloc'd (the caller frees it). */
static ct_err
read_span(const char *path, off_t size, size_t max, bool last, char **buf,
	  size_t *len)
{
	size_t want = size < (off_t)max ? (size_t)size : max;
	int fd = -1;
	ct_err r = CT_ERR_IO;

	*len = 0;
	if ((*buf = malloc(want > 0 ? want : 1)) == NULL)
		return CT_ERR_NOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    pread_full(fd, *buf, want, last ? size - (off_t)want : 0) != 0)
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

	if ((r = read_span(path, *size, CT_AUDIT_LINE_MAX + 1, true, &buf,
	    &len)) != CT_OK || buf[len - 1] == '\n')
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

/*
 * Reads the first or the last line of a non-empty log of `size` bytes:
 * its seq, and the hash of the last line to continue the chain.  Only
 * one line's worth is read; for the last, the line, its newline and the
 * newline before it.  A log that does not end in '\n' is refused, not
 * repaired.
 */
static ct_err
read_end_line(const char *path, off_t size, bool last, uint64_t *seq,
	      unsigned char hash[HASH_LEN])
{
	char *buf = NULL, *line, *nl;
	char why[160];
	unsigned char prev[HASH_LEN];
	size_t want, len;
	ct_err r;

	if ((r = read_span(path, size, CT_AUDIT_LINE_MAX + 2, last, &buf,
	    &want)) != CT_OK)
		goto out;
	r = CT_ERR_AUDIT;
	if (!last) {
		if ((nl = memchr(buf, '\n', want)) == NULL)
			goto out;
		line = buf;
		len = (size_t)(nl - buf);
	} else {
		if (buf[want - 1] != '\n')
			goto out;
		if ((line = memrchr(buf, '\n', want - 1)) != NULL)
			line++;
		else if ((off_t)want == size)
			line = buf;
		else
			goto out; /* longer than any line we write */
		len = (size_t)(buf + want - 1 - line);
	}
	if (parse_line(line, len, seq, prev, NULL, why, sizeof(why)) != 0 ||
	    line_hash(line, len, hash) != 0)
		goto out;
	r = CT_OK;
 out:
	free(buf);
	return r;
}

/* "<path>.<seq, 20 digits>": the name a file whose first line has this
 * seq takes when it is rotated away; the names sort in chain order. */
static char *
archive_name(const char *path, uint64_t first_seq)
{
	char *s;

	return asprintf(&s, "%s.%020" PRIu64, path, first_seq) < 0 ? NULL : s;
}

/*
 * A rotation that crashed after linking the file to its archive name but
 * before renaming the new file in left the active file under two names.
 * Drop the second one, so the archive names never show a file twice.
 */
static ct_err
drop_stale_archive(ct_audit *a)
{
	struct stat st, ast;
	char *arch;
	ct_err r = CT_OK;

	if (a->first_seq == 0)
		return CT_OK;
	if ((arch = archive_name(a->path, a->first_seq)) == NULL)
		return CT_ERR_NOMEM;
	if (fstat(a->fd, &st) == 0 && lstat(arch, &ast) == 0 &&
	    st.st_dev == ast.st_dev && st.st_ino == ast.st_ino &&
	    (unlink(arch) != 0 || (r = ct_sync_parent_dir(a->path)) != CT_OK))
		r = CT_ERR_IO;
	free(arch);
	return r;
}

ct_err
ct_audit_open(const char *path, ct_audit **out)
{
	ct_audit *a = NULL;
	unsigned char first_hash[HASH_LEN];
	struct stat st;
	int created = 0;
	ct_err r = CT_ERR_IO;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	a->fd = -1;
	if ((a->path = strdup(path)) == NULL) {
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
	if (created && (r = ct_sync_parent_dir(path)) != CT_OK)
		goto out;
	if (st.st_size > 0 &&
	    (r = cut_torn_tail(a, path, &st.st_size)) != CT_OK)
		goto out;
	if (st.st_size > 0 &&
	    ((r = read_end_line(path, st.st_size, true, &a->seq,
	    a->hash)) != CT_OK ||
	    (r = read_end_line(path, st.st_size, false, &a->first_seq,
	    first_hash)) != CT_OK ||
	    (r = drop_stale_archive(a)) != CT_OK))
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
	ct_err r;

	if (a == NULL)
		return;
	if (a->w != NULL) {
		(void)ct_audit_collect(a, true, &r);
		writer_stop(a->w);
	}
	if (a->fd != -1)
		close(a->fd);
	free(a->pend);
	free(a->path);
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

/*
 * Write lines after the committed length `base` and fdatasync once.  On
 * failure whatever reached the file is cut off, durably, so that a crash
 * cannot bring back lines whose operations were refused (O_APPEND puts the
 * next write at the new end): -1, or -2 when even that failed.
 */
static int
write_lines(int fd, const char *buf, size_t len, off_t base)
{
	if (write_full(fd, buf, len) == 0 && fdatasync(fd) == 0)
		return 0;
	return ftruncate(fd, base) == 0 && fdatasync(fd) == 0 ? -1 : -2;
}

/* The committed state moves past `len` more bytes ending at seq/hash, or
 * (result != 0) stays, and the pending lines chained on it are dropped. */
static ct_err
settle(ct_audit *a, int result, size_t len, uint64_t seq,
       const unsigned char hash[HASH_LEN])
{
	if (result != 0) {
		if (result == -2)
			a->broken = 1;
		a->failures++;
		drop_pending(a);
		return CT_ERR_AUDIT;
	}
	if (a->size == 0)
		a->first_seq = a->seq + 1;
	a->size += (off_t)len;
	a->seq = seq;
	memcpy(a->hash, hash, HASH_LEN);
	return CT_OK;
}

ct_err
ct_audit_commit(ct_audit *a)
{
	ct_err r;

	/* Lines in flight come first; if they are lost, so are these. */
	if (ct_audit_collect(a, true, &r) && r != CT_OK)
		return r;
	if (a->broken)
		return CT_ERR_AUDIT;
	if (a->pend_len == 0)
		return CT_OK;
	r = settle(a, write_lines(a->fd, a->pend, a->pend_len, a->size),
	    a->pend_len, a->pend_seq, a->pend_hash);
	a->pend_len = 0;
	a->pend_lines = 0;
	return r;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->state != W_QUEUED && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->state != W_QUEUED)
			break;
		pthread_mutex_unlock(&w->mu);
		w->result = write_lines(w->fd, w->buf, w->len, w->base);
		pthread_mutex_lock(&w->mu);
		w->state = W_DONE;
		pthread_cond_broadcast(&w->cv);
		/* An eventfd write fails only on counter overflow. */
		(void)!write(w->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

ct_err
ct_audit_writer_start(ct_audit *a, int *efd)
{
	struct writer *w;

	if (a->w != NULL)
		return CT_ERR_INTERNAL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return CT_ERR_NOMEM;
	if ((w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		free(w);
		return CT_ERR_IO;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		close(w->efd);
		free(w);
		return CT_ERR_INTERNAL;
	}
	a->w = w;
	*efd = w->efd;
	return CT_OK;
}

static void
writer_stop(struct writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
	free(w->buf);
	free(w);
}

bool
ct_audit_busy(const ct_audit *a)
{
	return a->w != NULL && a->w->busy;
}

ct_err
ct_audit_flush(ct_audit *a)
{
	struct writer *w = a->w;
	char *buf;
	size_t cap;

	if (w == NULL || w->busy)
		return CT_ERR_INTERNAL;
	if (a->broken)
		return CT_ERR_AUDIT;
	if (a->pend_len == 0)
		return CT_OK;
	/* Swap buffers: the pending lines go, an empty buffer comes back. */
	buf = w->buf, cap = w->cap;
	w->buf = a->pend, w->cap = a->pend_cap, w->len = a->pend_len;
	a->pend = buf, a->pend_cap = cap;
	a->pend_len = 0;
	a->pend_lines = 0;
	w->fd = a->fd;
	w->base = a->size;
	w->seq = a->pend_seq;
	memcpy(w->hash, a->pend_hash, HASH_LEN);
	w->busy = true;
	pthread_mutex_lock(&w->mu);
	w->state = W_QUEUED;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return CT_OK;
}

bool
ct_audit_collect(ct_audit *a, bool wait, ct_err *result)
{
	struct writer *w = a->w;
	uint64_t n;
	bool done;

	*result = CT_OK;
	if (w == NULL || !w->busy)
		return false;
	pthread_mutex_lock(&w->mu);
	while (wait && w->state != W_DONE)
		pthread_cond_wait(&w->cv, &w->mu);
	if ((done = w->state == W_DONE))
		w->state = W_IDLE;
	pthread_mutex_unlock(&w->mu);
	if (!done)
		return false;
	/* Nothing but this batch signals the eventfd: drain it. */
	(void)!read(w->efd, &n, sizeof(n));
	w->busy = false;
	*result = settle(a, w->result, w->len, w->seq, w->hash);
	return true;
}

uint64_t
ct_audit_failures(const ct_audit *a)
{
	return a->failures;
}

size_t
ct_audit_pending(const ct_audit *a)
{
	return a->pend_lines;
}

size_t
ct_audit_torn(const ct_audit *a, char hex[2 * HASH_LEN + 1])
{
	ct_hex(a->torn_hash, HASH_LEN, hex);
	return a->torn_len;
}

uint64_t
ct_audit_seq(const ct_audit *a)
{
	return a->seq;
}

uint64_t
ct_audit_size(const ct_audit *a)
{
	return (uint64_t)a->size;
}

/* ---- checkpoints ---- */

/* What a checkpoint says: the head it signs, and the signature. */
struct cp {
	uint64_t head_seq;
	unsigned char head[HASH_LEN];
	const EVP_MD *md;
	unsigned char sig[CT_AUDIT_SIG_MAX];
	size_t sig_len;
};

static const char *
cp_alg_name(bool sha384)
{
	return sha384 ? "ecdsa-sha384" : "ecdsa-sha256";
}

/* The digest of the statement "custodian audit checkpoint v1\n<seq>\n<hex
 * head>\n": the same bytes for the signer and every verifier. */
static int
cp_digest(uint64_t head_seq, const unsigned char head[HASH_LEN],
	  const EVP_MD *md, unsigned char *out, unsigned int *outlen)
{
	char hex[HEX_LEN + 1], stmt[128];
	int n;

	ct_hex(head, HASH_LEN, hex);
	n = snprintf(stmt, sizeof(stmt), CP_STATEMENT, head_seq, hex);
	if (n < 0 || (size_t)n >= sizeof(stmt))
		return -1;
	return EVP_Digest(stmt, (size_t)n, out, outlen, md, NULL) == 1 ? 0 : -1;
}

/* The fields of a checkpoint (a line, or the one a rotate line carries). */
static int
cp_parse(const json_t *o, struct cp *cp, char *why, size_t whylen)
{
	const char *alg = json_string_value(json_object_get(o, "alg"));
	const char *sig = json_string_value(json_object_get(o, "signature"));
	const json_t *hs = json_object_get(o, "head_seq");
	const json_t *ver = json_object_get(o, "version");
	uint8_t *raw = NULL;
	size_t len;

	memset(cp, 0, sizeof(*cp));
	if (!json_is_string(json_object_get(o, "key")) ||
	    !json_is_integer(ver) || json_integer_value(ver) < 1) {
		snprintf(why, whylen, "checkpoint: key or version missing");
		return -1;
	}
	if (alg != NULL && strcmp(alg, cp_alg_name(false)) == 0)
		cp->md = EVP_sha256();
	else if (alg != NULL && strcmp(alg, cp_alg_name(true)) == 0)
		cp->md = EVP_sha384();
	else {
		snprintf(why, whylen, "checkpoint: alg missing or unknown");
		return -1;
	}
	if (!json_is_integer(hs) || json_integer_value(hs) < 1 ||
	    hex_decode(json_string_value(json_object_get(o, "head")),
	    cp->head) != 0) {
		snprintf(why, whylen, "checkpoint: head_seq or head malformed");
		return -1;
	}
	cp->head_seq = (uint64_t)json_integer_value(hs);
	if (sig == NULL || ct_b64_decode(sig, strlen(sig), CT_AUDIT_SIG_MAX,
	    &raw, &len) != CT_OK) {
		snprintf(why, whylen, "checkpoint: signature missing or not "
		    "base64");
		return -1;
	}
	memcpy(cp->sig, raw, len);
	cp->sig_len = len;
	free(raw);
	return 0;
}

/* Does any of the keys verify the checkpoint's signature? */
static bool
cp_signed(const struct cp *cp, EVP_PKEY *const *keys, size_t n)
{
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	EVP_PKEY_CTX *ctx;
	bool ok = false;
	size_t i;

	if (cp_digest(cp->head_seq, cp->head, cp->md, dg, &dlen) != 0)
		return false;
	for (i = 0; i < n && !ok; i++) {
		if ((ctx = EVP_PKEY_CTX_new(keys[i], NULL)) == NULL)
			continue;
		ok = EVP_PKEY_verify_init(ctx) == 1 &&
		    EVP_PKEY_verify(ctx, cp->sig, cp->sig_len, dg, dlen) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error(); /* a bad signature is a finding, not an error */
	return ok;
}

/*
 * Signs the pending head and builds the checkpoint event (*cp_out) or,
 * when the signer fails, a checkpoint_failed event (*ev_out is the line
 * to append either way).  *cp_out is NULL when signing failed.
 */
static ct_err
cp_event(const ct_audit *a, const ct_audit_signer *s, json_t **ev_out,
	 json_t **cp_out, ct_err *sign_err)
{
	unsigned char dg[EVP_MAX_MD_SIZE], sig[CT_AUDIT_SIG_MAX];
	char hex[HEX_LEN + 1], why[160] = "", *b64 = NULL;
	size_t siglen = sizeof(sig);
	unsigned int dlen;
	json_t *ev = NULL;
	ct_err r;

	*ev_out = *cp_out = NULL;
	ct_hex(a->pend_hash, HASH_LEN, hex);
	if (cp_digest(a->pend_seq, a->pend_hash, s->sha384 ? EVP_sha384() :
	    EVP_sha256(), dg, &dlen) != 0)
		return CT_ERR_INTERNAL;
	*sign_err = s->sign(s->arg, dg, dlen, sig, &siglen, why, sizeof(why));
	if (*sign_err == CT_OK && (siglen == 0 || siglen > sizeof(sig)))
		*sign_err = CT_ERR_INTERNAL;
	if (*sign_err == CT_OK) {
		if ((r = ct_b64_encode(sig, siglen, &b64)) != CT_OK)
			return r;
		ev = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s}",
		    "event", "checkpoint", "key", s->key, "version",
		    (json_int_t)s->version, "alg", cp_alg_name(s->sha384),
		    "head_seq", (json_int_t)a->pend_seq, "head", hex,
		    "signature", b64);
		free(b64);
	} else {
		ev = json_pack("{s:s, s:s, s:I, s:I, s:s}", "event",
		    "checkpoint_failed", "key", s->key, "version",
		    (json_int_t)s->version, "head_seq",
		    (json_int_t)a->pend_seq, "result", ct_err_code(*sign_err));
		/* The token's words may not be UTF-8: then they are left out. */
		if (ev != NULL && why[0] != '\0')
			json_object_set_new(ev, "detail", json_string(why));
	}
	if (ev == NULL)
		return CT_ERR_NOMEM;
	if (*sign_err == CT_OK) {
		/* The rotate line carries the checkpoint without "event". */
		if ((*cp_out = json_deep_copy(ev)) == NULL ||
		    json_object_del(*cp_out, "event") != 0) {
			json_decref(*cp_out);
			*cp_out = NULL;
			json_decref(ev);
			return CT_ERR_NOMEM;
		}
	}
	*ev_out = ev;
	return CT_OK;
}

ct_err
ct_audit_checkpoint(ct_audit *a, const ct_audit_signer *s,
		    const struct timespec *now, ct_err *sign_err)
{
	json_t *ev = NULL, *cp = NULL;
	ct_err r;

	*sign_err = CT_OK;
	if (a->broken)
		return CT_ERR_AUDIT;
	if (a->pend_seq == 0)
		return CT_OK;
	if ((r = cp_event(a, s, &ev, &cp, sign_err)) == CT_OK)
		r = ct_audit_append(a, ev, now);
	json_decref(ev);
	json_decref(cp);
	return r;
}

ct_err
ct_audit_rotate(ct_audit *a, const ct_audit_signer *s,
		const struct timespec *now, char *archived, size_t archived_len)
{
	char *tmp = NULL, *arch = NULL, *base;
	json_t *ev = NULL, *sealed = NULL, *cp = NULL;
	int nfd = -1, linked = 0;
	ct_err r, sign_err;

	if (archived_len > 0)
		archived[0] = '\0';
	if (a->broken)
		return CT_ERR_AUDIT;
	if (a->pend_len != 0 || ct_audit_busy(a) || a->size == 0 ||
	    a->first_seq == 0)
		return CT_ERR_INTERNAL;
	/* Seal the old file: its last line is a checkpoint. */
	if (s != NULL &&
	    ((r = cp_event(a, s, &sealed, &cp, &sign_err)) != CT_OK ||
	    (r = ct_audit_append(a, sealed, now)) != CT_OK ||
	    (r = ct_audit_commit(a)) != CT_OK))
		goto out;
	r = CT_ERR_NOMEM;
	if (asprintf(&tmp, "%s.new", a->path) < 0) {
		tmp = NULL;
		goto out;
	}
	if ((arch = archive_name(a->path, a->first_seq)) == NULL)
		goto out;
	base = strrchr(arch, '/') != NULL ? strrchr(arch, '/') + 1 : arch;
	if ((ev = json_pack("{s:s, s:s}", "event", "rotate", "previous_file",
	    base)) == NULL ||
	    (cp != NULL && json_object_set(ev, "checkpoint", cp) != 0))
		goto out;
	r = CT_ERR_IO;
	/* A leftover of a crashed rotation never was the active file. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		goto out;
	if ((nfd = open(tmp, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		goto out;
	if (flock(nfd, LOCK_EX | LOCK_NB) != 0 ||
	    (r = ct_audit_append(a, ev, now)) != CT_OK)
		goto fail;
	r = CT_ERR_IO;
	/* The new file is complete on disk before any name points to it. */
	if (write_full(nfd, a->pend, a->pend_len) != 0 || fsync(nfd) != 0)
		goto fail;
	/* The old file keeps a name throughout: first a second one. */
	if (link(a->path, arch) != 0)
		goto fail;
	linked = 1;
	if (rename(tmp, a->path) != 0)
		goto fail;
	close(a->fd);
	a->fd = nfd;
	nfd = -1;
	a->first_seq = a->seq + 1;
	a->size = (off_t)a->pend_len;
	a->seq = a->pend_seq;
	memcpy(a->hash, a->pend_hash, HASH_LEN);
	drop_pending(a);
	/* Lines must not go into a file whose name may not survive a crash. */
	if (ct_sync_parent_dir(a->path) != CT_OK) {
		a->broken = 1;
		r = CT_ERR_AUDIT;
		goto out;
	}
	snprintf(archived, archived_len, "%s", arch);
	r = CT_OK;
	goto out;
 fail:
	drop_pending(a);
	close(nfd);
	unlink(tmp);
	if (linked)
		unlink(arch);
 out:
	json_decref(ev);
	json_decref(sealed);
	json_decref(cp);
	free(tmp);
	free(arch);
	return r;
}

/* ---- reading ---- */

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

/* An exported checkpoint: the line's seq and hash. */
struct exported {
	uint64_t seq;
	unsigned char hash[HASH_LEN];
	uint64_t line; /* in the export file */
};

struct walk {
	const ct_audit_walk_opts *o;
	ct_audit_report *rep;
	struct reader rd;
	const char *file, *prev_file; /* being read, and the one before */
	uint64_t lineno;
	bool started;		/* a line set the chain state */
	uint64_t last_seq;
	unsigned char hash[HASH_LEN];
	bool have_cp;		/* the last checkpoint seen */
	struct cp cp;
	struct exported *exp;
	size_t n_exp, next_exp;
};

static void problem(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first problem, at the current file and line. */
static void
problem(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	if (w->rep->bad_line != 0)
		return;
	w->rep->bad_file = w->file;
	w->rep->bad_line = w->lineno > 0 ? w->lineno : 1;
	va_start(ap, fmt);
	vsnprintf(w->rep->reason, sizeof(w->rep->reason), fmt, ap);
	va_end(ap);
}

static const char *
event_of(const json_t *obj)
{
	const char *ev = json_string_value(json_object_get(obj, "event"));

	return ev != NULL ? ev : "";
}

/* A checkpoint line: it signs exactly the line before it. */
static void
check_checkpoint(struct walk *w, const json_t *obj, uint64_t seq,
		 const unsigned char prev[HASH_LEN])
{
	const ct_audit_walk_opts *o = w->o;
	struct cp cp;
	char why[160];

	if (cp_parse(obj, &cp, why, sizeof(why)) != 0) {
		problem(w, "%s", why);
		return;
	}
	w->cp = cp;
	w->have_cp = true;
	if (w->cp.head_seq != seq - 1 ||
	    CRYPTO_memcmp(w->cp.head, prev, HASH_LEN) != 0) {
		problem(w, "checkpoint does not sign the line before it");
		return;
	}
	w->rep->checkpoints++;
	if (o->n_keys > 0) {
		if (!cp_signed(&w->cp, o->keys, o->n_keys)) {
			problem(w, "bad checkpoint signature (seq %" PRIu64
			    "): not made by the audit key", seq);
			return;
		}
		w->rep->signed_seq = w->cp.head_seq;
	}
	w->rep->tail_file = NULL;
	w->rep->tail_line = w->rep->tail_lines = 0;
}

/* The checkpoint a rotate line carries: the last one of the previous
 * file, or for the first file read, the signed anchor it starts from. */
static void
check_rotate(struct walk *w, const json_t *obj)
{
	const json_t *c = json_object_get(obj, "checkpoint");
	const ct_audit_walk_opts *o = w->o;
	struct cp cp;
	char why[160];

	if (!json_is_string(json_object_get(obj, "previous_file"))) {
		problem(w, "rotate line without previous_file");
		return;
	}
	if (c == NULL)
		return;
	if (!json_is_object(c) || cp_parse(c, &cp, why, sizeof(why)) != 0) {
		problem(w, "rotate line: %s", json_is_object(c) ? why :
		    "checkpoint is not an object");
		return;
	}
	if (w->have_cp && (cp.head_seq != w->cp.head_seq ||
	    CRYPTO_memcmp(cp.head, w->cp.head, HASH_LEN) != 0)) {
		problem(w, "rotate line's checkpoint is not the last checkpoint "
		    "of %s", w->prev_file);
		return;
	}
	if (o->n_keys > 0 && !cp_signed(&cp, o->keys, o->n_keys)) {
		problem(w, "bad signature on the rotate line's checkpoint");
		return;
	}
	if (!w->have_cp && o->n_keys > 0)
		w->rep->signed_seq = cp.head_seq;
	w->cp = cp;
	w->have_cp = true;
}

/* seq and prev: the first line of all starts the chain (seq 1) or
 * continues it from an earlier file (a rotate line); the first line of
 * a later file is the rotate line that continues the file before. */
static void
check_link(struct walk *w, uint64_t seq, const unsigned char prev[HASH_LEN],
	   bool rotate)
{
	if (!w->started) {
		if (rotate && seq > 1) {
			w->last_seq = seq - 1;
			memcpy(w->hash, prev, HASH_LEN);
		} else if (seq != 1)
			problem(w, "first seq is %" PRIu64 ", not 1", seq);
		else if (CRYPTO_memcmp(prev, w->hash, HASH_LEN) != 0)
			problem(w, "prev of the first line is not zeros");
		w->rep->first_seq = seq;
		return;
	}
	if (w->lineno == 1 && !rotate)
		problem(w, "does not begin with a rotate line: not the file "
		    "after %s", w->prev_file);
	else if (w->lineno != 1 && rotate)
		problem(w, "rotate line inside a file");
	else if (w->lineno == 1 && seq > w->last_seq + 1)
		problem(w, "seq %" PRIu64 " follows %" PRIu64 " at the end of "
		    "%s: a file is missing between them", seq, w->last_seq,
		    w->prev_file);
	else if (seq != w->last_seq + 1)
		problem(w, "seq %" PRIu64 " follows %" PRIu64, seq,
		    w->last_seq);
	else if (CRYPTO_memcmp(prev, w->hash, HASH_LEN) != 0) {
		if (w->lineno == 1)
			problem(w, "prev hash does not match the last line of "
			    "%s", w->prev_file);
		else
			problem(w, "prev hash does not match line %" PRIu64,
			    w->lineno - 1);
	}
}

/* Compare with the exported checkpoint at this seq, if there is one. */
static void
check_exported(struct walk *w, uint64_t seq, const unsigned char h[HASH_LEN])
{
	struct exported *e;

	while (w->next_exp < w->n_exp && w->exp[w->next_exp].seq < seq)
		w->next_exp++; /* before the first file given */
	for (; w->next_exp < w->n_exp && w->exp[w->next_exp].seq == seq;
	    w->next_exp++) {
		e = &w->exp[w->next_exp];
		if (CRYPTO_memcmp(e->hash, h, HASH_LEN) != 0) {
			problem(w, "differs from the exported checkpoint "
			    "(seq %" PRIu64 ", %s:%" PRIu64 "): rewritten",
			    seq, w->o->checkpoints, e->line);
			return;
		}
		w->rep->exported++;
	}
}

/* One line: parse, link, hash, then what its event asks for. */
static ct_err
walk_line(struct walk *w, const char *line, size_t len, ct_audit_line_fn fn,
	  void *arg)
{
	unsigned char prev[HASH_LEN], h[HASH_LEN];
	json_t *obj = NULL;
	uint64_t seq;
	const char *ev;
	bool rotate;
	char why[160];
	ct_err r = CT_OK;

	if (line_hash(line, len, h) != 0)
		return CT_ERR_INTERNAL;
	if (parse_line(line, len, &seq, prev, &obj, why, sizeof(why)) != 0) {
		problem(w, "%s", why);
		/* keep_going: the next line is checked against this one */
		w->last_seq++;
		memcpy(w->hash, h, HASH_LEN);
		w->started = true;
		return CT_OK;
	}
	ev = event_of(obj);
	rotate = strcmp(ev, "rotate") == 0;
	check_link(w, seq, prev, rotate);
	w->started = true;
	w->last_seq = seq;
	memcpy(w->hash, h, HASH_LEN);
	w->rep->last_seq = seq;
	if (strcmp(ev, "checkpoint") == 0)
		check_checkpoint(w, obj, seq, prev);
	else {
		if (rotate)
			check_rotate(w, obj);
		if (w->rep->tail_line == 0) {
			w->rep->tail_file = w->file;
			w->rep->tail_line = w->lineno;
		}
		w->rep->tail_lines++;
	}
	check_exported(w, seq, h);
	if (fn != NULL && (w->o->keep_going || w->rep->bad_line == 0))
		r = fn(arg, obj, line, len);
	json_decref(obj);
	return r;
}

static int
exp_cmp(const void *a, const void *b)
{
	const struct exported *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Load exported checkpoints: checkpoint lines, each checked on its own. */
static ct_err
load_exported(struct walk *w)
{
	const char *line;
	json_t *obj = NULL;
	struct exported *e, *grown;
	unsigned char prev[HASH_LEN];
	size_t len, cap = 0, i;
	uint64_t seq;
	char why[160];
	ct_err r = CT_OK;

	w->file = w->o->checkpoints;
	if ((w->rd.fd = open(w->file, O_RDONLY | O_CLOEXEC)) == -1) {
		w->rep->bad_file = w->file;
		return CT_ERR_IO;
	}
	w->rd.start = w->rd.end = 0;
	for (w->lineno = 1; w->rep->bad_line == 0; w->lineno++) {
		switch (next_line(&w->rd, &line, &len)) {
		case LINE_OK:
			break;
		case LINE_EOF:
			goto done;
		case LINE_IO:
			w->rep->bad_file = w->file;
			r = CT_ERR_IO;
			goto done;
		default:
			problem(w, "not a complete line");
			goto done;
		}
		if (parse_line(line, len, &seq, prev, &obj, why,
		    sizeof(why)) != 0) {
			problem(w, "%s", why);
			break;
		}
		if (strcmp(event_of(obj), "checkpoint") != 0)
			problem(w, "not a checkpoint line");
		else
			check_checkpoint(w, obj, seq, prev);
		json_decref(obj);
		if (w->rep->bad_line != 0)
			break;
		if (w->n_exp == cap) {
			cap = cap ? 2 * cap : 16;
			if ((grown = reallocarray(w->exp, cap,
			    sizeof(*w->exp))) == NULL) {
				r = CT_ERR_NOMEM;
				goto done;
			}
			w->exp = grown;
		}
		e = &w->exp[w->n_exp++];
		e->seq = seq;
		e->line = w->lineno;
		if (line_hash(line, len, e->hash) != 0) {
			r = CT_ERR_INTERNAL;
			goto done;
		}
	}
 done:
	close(w->rd.fd);
	w->rd.fd = -1;
	if (r == CT_OK && w->rep->bad_line != 0)
		r = CT_ERR_AUDIT;
	if (r == CT_OK && w->n_exp > 1) {
		qsort(w->exp, w->n_exp, sizeof(*w->exp), exp_cmp);
		for (i = 1; i < w->n_exp; i++)
			if (w->exp[i].seq == w->exp[i - 1].seq &&
			    memcmp(w->exp[i].hash, w->exp[i - 1].hash,
			    HASH_LEN) != 0) {
				w->lineno = w->exp[i].line;
				problem(w, "two different checkpoints at seq %"
				    PRIu64, w->exp[i].seq);
				r = CT_ERR_AUDIT;
				break;
			}
	}
	/* Only the log's own lines count below. */
	w->have_cp = false;
	w->rep->checkpoints = w->rep->signed_seq = 0;
	w->rep->tail_file = NULL;
	w->rep->tail_line = w->rep->tail_lines = 0;
	return r;
}

/* Read one file of the chain. */
static ct_err
walk_file(struct walk *w, ct_audit_line_fn fn, void *arg)
{
	const char *line;
	size_t len;
	ct_err r = CT_OK;

	if ((w->rd.fd = open(w->file, O_RDONLY | O_CLOEXEC)) == -1) {
		w->rep->bad_file = w->file;
		return CT_ERR_IO;
	}
	w->rd.start = w->rd.end = 0;
	for (w->lineno = 1;; w->lineno++) {
		if (w->rep->bad_line != 0 && !w->o->keep_going)
			break;
		switch (next_line(&w->rd, &line, &len)) {
		case LINE_OK:
			break;
		case LINE_EOF:
			if (w->lineno == 1 && w->prev_file != NULL)
				problem(w, "empty file: not the file after %s",
				    w->prev_file);
			goto out;
		case LINE_IO:
			w->rep->bad_file = w->file;
			r = CT_ERR_IO;
			goto out;
		case LINE_LONG:
			problem(w, "line too long");
			goto out;
		case LINE_TORN:
			problem(w, "missing newline at end of file (a torn "
			    "write: custodiand cuts it at its next start)");
			goto out;
		}
		w->rep->lines++;
		if ((r = walk_line(w, line, len, fn, arg)) != CT_OK)
			goto out;
	}
 out:
	if (w->rep->bad_line == 0)
		w->lineno--; /* the last line read, for problems at the end */
	close(w->rd.fd);
	w->rd.fd = -1;
	return r;
}

ct_err
ct_audit_walk(const char *const *paths, size_t n_paths,
	      const ct_audit_walk_opts *o, ct_audit_line_fn fn, void *arg,
	      ct_audit_report *rep)
{
	struct walk w = { .o = o, .rep = rep, .rd = { .fd = -1 } };
	struct exported *e;
	size_t i;
	ct_err r = CT_OK;

	memset(rep, 0, sizeof(*rep));
	if (o->n_keys > CT_AUDIT_KEYS_MAX)
		return CT_ERR_INTERNAL;
	if ((w.rd.buf = malloc(VERIFY_BUF)) == NULL)
		return CT_ERR_NOMEM;
	if (o->checkpoints != NULL && (r = load_exported(&w)) != CT_OK)
		goto out;
	for (i = 0; i < n_paths; i++) {
		w.prev_file = i > 0 ? paths[i - 1] : NULL;
		w.file = paths[i];
		if ((r = walk_file(&w, fn, arg)) != CT_OK)
			goto out;
		if (rep->bad_line != 0 && !o->keep_going)
			break;
	}
	/* At the end of the last file: nothing cut, everything signed. */
	if (w.next_exp < w.n_exp) {
		e = &w.exp[w.n_exp - 1];
		problem(&w, "the log ends at seq %" PRIu64 ", but the exported "
		    "checkpoint %s:%" PRIu64 " shows seq %" PRIu64 ": the tail "
		    "was cut", rep->last_seq, o->checkpoints, e->line, e->seq);
	}
	if (o->n_keys > 0 && !o->live && rep->tail_line != 0 &&
	    rep->bad_line == 0) {
		w.file = rep->tail_file;
		w.lineno = rep->tail_line;
		problem(&w, "%" PRIu64 " line(s) from here on %s: a cut, added "
		    "or forged tail (or a live log: --live)", rep->tail_lines,
		    w.have_cp ? "come after the last checkpoint and are not "
		    "signed" : "and no checkpoint signs them");
	}
	r = rep->bad_line != 0 ? CT_ERR_AUDIT : CT_OK;
 out:
	free(w.exp);
	free(w.rd.buf);
	return r;
}

ct_err
ct_audit_verify(const char *path, ct_audit_report *rep)
{
	const ct_audit_walk_opts o = { 0 };

	return ct_audit_walk(&path, 1, &o, NULL, NULL, rep);
}
