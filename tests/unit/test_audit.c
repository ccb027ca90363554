/* test_audit.c: the audit log's chain, group commit, rollback and verify. */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "custodian/ct_audit.h"
#include "tests/unit/audit_fixture.h"
#include "tests/unit/child.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* 2026-11-23T19:04:05.123Z */
static const struct timespec t0 = {
	.tv_sec = 1795460645, .tv_nsec = 123456789
};

static char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	FILE *f;

	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fstat(fileno(f), &st), 0);
	*len = (size_t)st.st_size;
	assert_non_null(buf = malloc(*len + 1));
	assert_int_equal(fread(buf, 1, *len, f), *len);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void
spit(const char *path, const char *buf, size_t len)
{
	FILE *f;

	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Offset and length (without '\n') of 1-based line n. */
static void
line_span(const char *buf, size_t len, size_t n, size_t *off, size_t *llen)
{
	const char *p = buf, *nl;

	while (--n > 0) {
		assert_non_null(nl = memchr(p, '\n', len - (size_t)(p - buf)));
		p = nl + 1;
	}
	assert_non_null(nl = memchr(p, '\n', len - (size_t)(p - buf)));
	*off = (size_t)(p - buf);
	*llen = (size_t)(nl - p);
}

static void
sha256_hex(const char *p, size_t len, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256((const unsigned char *)p, len, md);
	for (i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
append_event(ct_audit *a, const char *op, unsigned n, const struct timespec *now)
{
	char name[32];
	json_t *ev;

	snprintf(name, sizeof(name), "key-%u", n);
	assert_non_null(ev = json_pack("{s:s, s:s}", "op", op, "key", name));
	assert_int_equal(ct_audit_append(a, ev, now), CT_OK);
	json_decref(ev);
}

static void
write_log(const char *path, unsigned lines)
{
	ct_audit *a;
	unsigned i;

	assert_int_equal(ct_audit_open(path, &a), CT_OK);
	for (i = 1; i <= lines; i++)
		append_event(a, "sign", i, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
}

static void
assert_verify_ok(const char *path, uint64_t lines)
{
	ct_audit_report rep;

	assert_int_equal(ct_audit_verify(path, &rep), CT_OK);
	assert_int_equal(rep.lines, lines);
	assert_int_equal(rep.bad_line, 0);
}

static void
assert_verify_bad(const char *path, uint64_t bad_line, const char *reason)
{
	ct_audit_report rep;

	assert_int_equal(ct_audit_verify(path, &rep), CT_ERR_AUDIT);
	assert_int_equal(rep.bad_line, bad_line);
	assert_non_null(strstr(rep.reason, reason));
}

static void
test_chain(void **state)
{
	struct fixture *fx = *state;
	const struct timespec now[3] = {
		t0,
		{ .tv_sec = t0.tv_sec + 1, .tv_nsec = 7000000 },
		{ .tv_sec = t0.tv_sec + 2, .tv_nsec = 999999999 },
	};
	const char *times[3] = {
		"2026-11-23T19:04:05.123Z",
		"2026-11-23T19:04:06.007Z",
		"2026-11-23T19:04:07.999Z",
	};
	char prev[2 * SHA256_DIGEST_LENGTH + 1] = ZEROS, want[256];
	size_t len, off, llen;
	ct_audit *a;
	char *buf;
	unsigned i;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 0);
	for (i = 0; i < 3; i++)
		append_event(a, "sign", i + 1, &now[i]);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 3);
	ct_audit_close(a);

	assert_true(file_size(fx->path) > 0);
	buf = slurp(fx->path, &len);
	assert_int_equal(buf[len - 1], '\n');
	for (i = 0; i < 3; i++) {
		line_span(buf, len, i + 1, &off, &llen);
		snprintf(want, sizeof(want), "{\"seq\":%u,\"time\":\"%s\","
		    "\"prev\":\"%s\",\"op\":\"sign\",\"key\":\"key-%u\"}",
		    i + 1, times[i], prev, i + 1);
		assert_int_equal(llen, strlen(want));
		assert_memory_equal(buf + off, want, llen);
		sha256_hex(buf + off, llen, prev);
	}
	assert_int_equal(off + llen + 1, len);
	free(buf);
	assert_verify_ok(fx->path, 3);
}

static void
test_reopen_continues(void **state)
{
	struct fixture *fx = *state;
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *buf;
	size_t len, off, llen;
	json_t *line;
	ct_audit *a;

	write_log(fx->path, 3);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 3);
	append_event(a, "wrap", 4, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 4);
	ct_audit_close(a);

	buf = slurp(fx->path, &len);
	line_span(buf, len, 3, &off, &llen);
	sha256_hex(buf + off, llen, hex);
	line_span(buf, len, 4, &off, &llen);
	assert_non_null(line = json_loadb(buf + off, llen, 0, NULL));
	assert_int_equal(json_integer_value(json_object_get(line, "seq")), 4);
	assert_string_equal(json_string_value(json_object_get(line, "prev")),
	    hex);
	json_decref(line);
	free(buf);
	assert_verify_ok(fx->path, 4);
}

static void
test_empty(void **state)
{
	struct fixture *fx = *state;
	ct_audit *a;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_commit(a), CT_OK); /* nothing pending */
	ct_audit_close(a);
	assert_int_equal(file_size(fx->path), 0);
	assert_verify_ok(fx->path, 0);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 0);
	ct_audit_close(a);
}

static void
test_group_commit(void **state)
{
	struct fixture *fx = *state;
	ct_audit *a;
	unsigned i;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	for (i = 1; i <= 100; i++)
		append_event(a, "sign", i, &t0);
	assert_int_equal(ct_audit_pending(a), 100);
	assert_int_equal(ct_audit_seq(a), 0);
	assert_int_equal(file_size(fx->path), 0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_pending(a), 0);
	assert_int_equal(ct_audit_seq(a), 100);
	ct_audit_close(a);
	assert_verify_ok(fx->path, 100);
}

/* The writer thread: lines appended while a batch is synced continue the
 * chain after it and go out in the next batch; commit waits for it. */
static void
test_writer(void **state)
{
	struct fixture *fx = *state;
	ct_audit *a;
	ct_err r;
	int efd;
	unsigned i;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_flush(a), CT_ERR_INTERNAL); /* no writer */
	assert_int_equal(ct_audit_writer_start(a, &efd), CT_OK);
	assert_true(efd >= 0);
	assert_false(ct_audit_collect(a, false, &r));
	assert_int_equal(ct_audit_flush(a), CT_OK); /* nothing pending */
	assert_false(ct_audit_busy(a));
	for (i = 1; i <= 3; i++)
		append_event(a, "sign", i, &t0);
	assert_int_equal(ct_audit_flush(a), CT_OK);
	assert_true(ct_audit_busy(a));
	assert_int_equal(ct_audit_pending(a), 0);
	assert_int_equal(ct_audit_flush(a), CT_ERR_INTERNAL); /* busy */
	for (i = 4; i <= 5; i++)
		append_event(a, "sign", i, &t0);
	assert_true(ct_audit_collect(a, true, &r));
	assert_int_equal(r, CT_OK);
	assert_false(ct_audit_busy(a));
	assert_int_equal(ct_audit_seq(a), 3);
	assert_int_equal(ct_audit_pending(a), 2);
	assert_int_equal(ct_audit_flush(a), CT_OK);
	append_event(a, "sign", 6, &t0);
	/* A commit on the owner's thread takes the batch in flight first. */
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_false(ct_audit_busy(a));
	assert_int_equal(ct_audit_seq(a), 6);
	append_event(a, "sign", 7, &t0);
	assert_int_equal(ct_audit_flush(a), CT_OK);
	assert_int_equal(ct_audit_failures(a), 0);
	ct_audit_close(a); /* finishes the batch */
	assert_verify_ok(fx->path, 7);
}

/* Flips 'k' of "key-N" in line n: still valid JSON, different bytes. */
static void
edit_key(char *buf, size_t len, size_t n)
{
	size_t off, llen;
	char *k;

	line_span(buf, len, n, &off, &llen);
	assert_non_null(k = memmem(buf + off, llen, "\"key-", 5));
	k[1] = 'K';
}

static void
test_tamper(void **state)
{
	struct fixture *fx = *state;
	char *good, *bad, hex[2 * SHA256_DIGEST_LENGTH + 1], extra[256];
	size_t len, off3, off4, off5, off10, l3, l4, l5, l10;

	write_log(fx->path, 10);
	good = slurp(fx->path, &len);
	assert_non_null(bad = malloc(len + sizeof(extra)));
	line_span(good, len, 3, &off3, &l3);
	line_span(good, len, 4, &off4, &l4);
	line_span(good, len, 5, &off5, &l5);
	line_span(good, len, 10, &off10, &l10);

	/* One byte in line 5: line 5 still parses, line 6 no longer chains. */
	memcpy(bad, good, len);
	edit_key(bad, len, 5);
	spit(fx->path, bad, len);
	assert_verify_bad(fx->path, 6, "prev hash does not match line 5");

	/*
	 * The limit of a hash chain: a line is protected only by the prev of
	 * its successor, so a still-valid edit of the LAST line cannot be
	 * seen here; that needs the head (seq, hash) anchored elsewhere.  An
	 * edit that breaks the line's form is reported on that line.
	 */
	memcpy(bad, good, len);
	edit_key(bad, len, 10);
	spit(fx->path, bad, len);
	assert_verify_ok(fx->path, 10);
	memcpy(bad, good, len);
	bad[len - 2] = ']';
	spit(fx->path, bad, len);
	assert_verify_bad(fx->path, 10, "not a JSON object");

	/* Delete line 4. */
	memcpy(bad, good, off4);
	memcpy(bad + off4, good + off5, len - off5);
	spit(fx->path, bad, len - (off5 - off4));
	assert_verify_bad(fx->path, 4, "seq 5 follows 3");

	/* Swap lines 3 and 4. */
	memcpy(bad, good, len);
	memcpy(bad + off3, good + off4, l4 + 1);
	memcpy(bad + off3 + l4 + 1, good + off3, l3 + 1);
	spit(fx->path, bad, len);
	assert_verify_bad(fx->path, 3, "seq 4 follows 2");

	/*
	 * Cut in the middle of the last line.  (A cut exactly at a line end
	 * leaves a shorter valid log: the same head limit as above.)
	 */
	spit(fx->path, good, off10 + 5);
	assert_verify_bad(fx->path, 10, "missing newline at end of file");

	/* Garbage after the last line. */
	memcpy(bad, good, len);
	memcpy(bad + len, "garbage\n", 8);
	spit(fx->path, bad, len + 8);
	assert_verify_bad(fx->path, 11, "not a JSON object");

	/*
	 * A duplicate key: the same line 11 chains and verifies without the
	 * duplicate, so the duplicate alone is what is reported.
	 */
	sha256_hex(good + off10, l10, hex);
	snprintf(extra, sizeof(extra), "{\"seq\":11,\"time\":\"x\","
	    "\"prev\":\"%s\",\"op\":\"a\"}\n", hex);
	memcpy(bad, good, len);
	memcpy(bad + len, extra, strlen(extra));
	spit(fx->path, bad, len + strlen(extra));
	assert_verify_ok(fx->path, 11);
	snprintf(extra, sizeof(extra), "{\"seq\":11,\"time\":\"x\","
	    "\"prev\":\"%s\",\"op\":\"a\",\"op\":\"b\"}\n", hex);
	memcpy(bad + len, extra, strlen(extra));
	spit(fx->path, bad, len + strlen(extra));
	assert_verify_bad(fx->path, 11, "duplicate");

	/* A first line that does not start the chain. */
	spit(fx->path, good + off3, len - off3);
	assert_verify_bad(fx->path, 1, "first seq is 3, not 1");
	memcpy(bad, good, len);
	memcpy(strstr(bad, ZEROS), "1", 1);
	spit(fx->path, bad, len);
	assert_verify_bad(fx->path, 1, "prev of the first line is not zeros");

	free(bad);
	free(good);
}

/* Appends a line of exactly `len` bytes (padding a "blob" field). */
static ct_err
append_sized(ct_audit *a, size_t len)
{
	static const size_t base = sizeof("{\"seq\":2,"
	    "\"time\":\"2026-11-23T19:04:05.123Z\","
	    "\"prev\":\"" ZEROS "\",\"blob\":\"\"}") - 1;
	char *blob;
	json_t *ev;
	ct_err r;

	assert_true(len >= base);
	assert_non_null(blob = malloc(len - base + 1));
	memset(blob, 'x', len - base);
	blob[len - base] = '\0';
	assert_non_null(ev = json_pack("{s:s}", "blob", blob));
	r = ct_audit_append(a, ev, &t0);
	json_decref(ev);
	free(blob);
	return r;
}

/* CT_AUDIT_LINE_MAX is the longest line appended, reopened and verified. */
static void
test_line_max(void **state)
{
	struct fixture *fx = *state;
	char *good, *buf;
	ct_audit *a;
	size_t len;

	write_log(fx->path, 1);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(append_sized(a, CT_AUDIT_LINE_MAX + 1), CT_ERR_AUDIT);
	assert_int_equal(append_sized(a, CT_AUDIT_LINE_MAX), CT_OK);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
	assert_true(file_size(fx->path) > CT_AUDIT_LINE_MAX + 1);
	assert_verify_ok(fx->path, 2);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 2);
	ct_audit_close(a);

	/* One byte more, after a good line: with and without its newline. */
	assert_int_equal(unlink(fx->path), 0);
	write_log(fx->path, 1);
	good = slurp(fx->path, &len);
	assert_non_null(buf = malloc(len + CT_AUDIT_LINE_MAX + 2));
	memcpy(buf, good, len);
	memset(buf + len, 'x', CT_AUDIT_LINE_MAX + 1);
	buf[len + CT_AUDIT_LINE_MAX + 1] = '\n';
	spit(fx->path, buf, len + CT_AUDIT_LINE_MAX + 2);
	assert_verify_bad(fx->path, 2, "line too long");
	assert_int_equal(ct_audit_open(fx->path, &a), CT_ERR_AUDIT);
	spit(fx->path, buf, len + CT_AUDIT_LINE_MAX + 1);
	assert_verify_bad(fx->path, 2, "line too long");
	free(good);
	free(buf);
}

static void
test_open_refuses_bad_tail(void **state)
{
	struct fixture *fx = *state;
	ct_audit *a = (ct_audit *)&a; /* open must clear it on failure */
	char *good, *bad;
	size_t len;

	write_log(fx->path, 3);
	good = slurp(fx->path, &len);

	/* Complete, but not JSON. */
	assert_non_null(bad = malloc(len + 8));
	memcpy(bad, good, len);
	memcpy(bad + len, "garbage\n", 8);
	spit(fx->path, bad, len + 8);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_ERR_AUDIT);
	assert_null(a);

	/* JSON, but no chain fields. */
	memcpy(bad + len, "{\"a\":1}\n", 8);
	spit(fx->path, bad, len + 8);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_ERR_AUDIT);

	free(bad);
	free(good);
}

/* A crash tore the last line: open cuts it (durably), reports its length
 * and hash, and the chain goes on from the line before. */
static void
test_open_cuts_torn_tail(void **state)
{
	struct fixture *fx = *state;
	char hex[65], want[65];
	size_t len, off, llen, cut;
	ct_audit *a;
	char *good;

	write_log(fx->path, 3);
	good = slurp(fx->path, &len);
	line_span(good, len, 3, &off, &llen);
	for (cut = 1; cut <= llen + 1; cut += llen / 2) {
		spit(fx->path, good, len - cut);
		assert_verify_bad(fx->path, 3, "missing newline at end of file");
		assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
		assert_int_equal(ct_audit_seq(a), 2);
		assert_int_equal(ct_audit_torn(a, hex), len - cut - off);
		sha256_hex(good + off, len - cut - off, want);
		assert_string_equal(hex, want);
		assert_int_equal(file_size(fx->path), off);
		append_event(a, "sign", 9, &t0);
		assert_int_equal(ct_audit_commit(a), CT_OK);
		ct_audit_close(a);
		assert_verify_ok(fx->path, 3);
	}

	/* Nothing but half a first line: an empty log again. */
	spit(fx->path, good, 10);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 0);
	assert_int_equal(ct_audit_torn(a, hex), 10);
	assert_int_equal(file_size(fx->path), 0);
	ct_audit_close(a);

	/* An intact log reports nothing cut. */
	spit(fx->path, good, len);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_torn(a, hex), 0);
	assert_int_equal(ct_audit_seq(a), 3);
	ct_audit_close(a);
	free(good);
}

/* Commit through the writer thread, or on this thread. */
static ct_err
commit_by(ct_audit *a, bool writer)
{
	ct_err r;

	if (!writer)
		return ct_audit_commit(a);
	if ((r = ct_audit_flush(a)) != CT_OK)
		return r;
	return ct_audit_collect(a, true, &r) ? r : CT_ERR_INTERNAL;
}

struct fail_arg {
	const char *path;
	bool writer;
};

/*
 * Run in a child: RLIMIT_FSIZE makes a commit fail part way (EFBIG).  The
 * file is cut back and the chain goes on from the last committed line.
 * Through the writer, a line appended behind the failed batch (chained on
 * its lines) is dropped with it.
 */
static void
commit_fail_child(void *arg)
{
	const struct fail_arg *fa = arg;
	struct rlimit rl;
	ct_audit_report rep;
	struct stat st;
	off_t committed;
	ct_audit *a;
	json_t *ev;
	ct_err r;
	unsigned i;
	int efd;

	CHILD_CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	CHILD_CHECK((ev = json_pack("{s:s}", "op", "sign")) != NULL);
	CHILD_CHECK(ct_audit_open(fa->path, &a) == CT_OK);
	CHILD_CHECK(!fa->writer || ct_audit_writer_start(a, &efd) == CT_OK);
	for (i = 0; i < 3; i++)
		CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	CHILD_CHECK(commit_by(a, fa->writer) == CT_OK);
	CHILD_CHECK(stat(fa->path, &st) == 0);
	committed = st.st_size;

	CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
	rl.rlim_cur = (rlim_t)committed + 1000;
	CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
	for (i = 0; i < 100; i++)
		CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	if (fa->writer) {
		CHILD_CHECK(ct_audit_flush(a) == CT_OK);
		CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
		CHILD_CHECK(ct_audit_collect(a, true, &r) && r == CT_ERR_AUDIT);
	} else
		CHILD_CHECK(ct_audit_commit(a) == CT_ERR_AUDIT);
	CHILD_CHECK(ct_audit_failures(a) == 1);
	CHILD_CHECK(ct_audit_pending(a) == 0);
	CHILD_CHECK(ct_audit_seq(a) == 3);
	CHILD_CHECK(stat(fa->path, &st) == 0 && st.st_size == committed);

	CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	CHILD_CHECK(commit_by(a, fa->writer) == CT_OK);
	CHILD_CHECK(ct_audit_seq(a) == 4);
	ct_audit_close(a);
	json_decref(ev);
	CHILD_CHECK(ct_audit_verify(fa->path, &rep) == CT_OK && rep.lines == 4);
}

static void
run_commit_failure(const struct fixture *fx, bool writer)
{
	struct fail_arg fa = { fx->path, writer };
	int status = child_run(commit_fail_child, &fa);

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_verify_ok(fx->path, 4);
}

static void
test_commit_failure_rolls_back(void **state)
{
	run_commit_failure(*state, false);
}

static void
test_writer_failure(void **state)
{
	run_commit_failure(*state, true);
}

static void
test_bad_events(void **state)
{
	struct fixture *fx = *state;
	static const char *reserved[] = { "seq", "time", "prev" };
	char *big, *buf;
	size_t i, len, off, llen;
	json_t *ev;
	ct_audit *a;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	append_event(a, "sign", 1, &t0);
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		assert_non_null(ev = json_pack("{s:s, s:i}", "op", "sign",
		    reserved[i], 5));
		assert_int_equal(ct_audit_append(a, ev, &t0), CT_ERR_INTERNAL);
		json_decref(ev);
	}
	assert_non_null(ev = json_array());
	assert_int_equal(ct_audit_append(a, ev, &t0), CT_ERR_INTERNAL);
	json_decref(ev);

	assert_non_null(big = malloc(CT_AUDIT_LINE_MAX + 1));
	memset(big, 'x', CT_AUDIT_LINE_MAX);
	big[CT_AUDIT_LINE_MAX] = '\0';
	assert_non_null(ev = json_pack("{s:s}", "blob", big));
	assert_int_equal(ct_audit_append(a, ev, &t0), CT_ERR_AUDIT);
	json_decref(ev);
	free(big);

	/* None of the refusals touched the pending line or the chain. */
	assert_int_equal(ct_audit_pending(a), 1);
	/* An empty event is a line of the chain fields alone. */
	assert_non_null(ev = json_object());
	assert_int_equal(ct_audit_append(a, ev, &t0), CT_OK);
	json_decref(ev);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 2);
	ct_audit_close(a);
	assert_verify_ok(fx->path, 2);
	buf = slurp(fx->path, &len);
	line_span(buf, len, 2, &off, &llen);
	assert_memory_equal(buf + off + llen - 2, "\"}\n", 3);
	free(buf);
}

/* ---- checkpoints and rotation ---- */

/* A signer in software, standing for the token; `fail` makes it refuse. */
struct soft_signer {
	EVP_PKEY *key;
	bool fail;
};

static ct_err
soft_sign(void *arg, const uint8_t *dg, size_t dlen, uint8_t *sig,
	  size_t *siglen, char *why, size_t whylen)
{
	struct soft_signer *ss = arg;
	EVP_PKEY_CTX *ctx;
	int ok;

	if (ss->fail) {
		snprintf(why, whylen, "C_Sign: CKR_DEVICE_REMOVED");
		return CT_ERR_TOKEN_UNAVAILABLE;
	}
	assert_non_null(ctx = EVP_PKEY_CTX_new(ss->key, NULL));
	ok = EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_sign(ctx, sig, siglen, dg, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? CT_OK : CT_ERR_INTERNAL;
}

static struct soft_signer the_key, other_key;

static int
setup_keys(void **state)
{
	the_key.key = EVP_EC_gen("P-256");
	other_key.key = EVP_EC_gen("P-256");
	return the_key.key != NULL && other_key.key != NULL ? 0 : -1;
}

static int
teardown_keys(void **state)
{
	EVP_PKEY_free(the_key.key);
	EVP_PKEY_free(other_key.key);
	return 0;
}

static const ct_audit_signer signer = {
	.key = "audit", .version = 1, .sign = soft_sign, .arg = &the_key,
};

static void
checkpoint(ct_audit *a)
{
	ct_err sign_err;

	assert_int_equal(ct_audit_checkpoint(a, &signer, &t0, &sign_err), CT_OK);
	assert_int_equal(sign_err, CT_OK);
}

/* Walk files with the_key (or other_key); opts as given. */
static ct_err
walk_with(const char *const *paths, size_t n, EVP_PKEY *key, bool live,
	  const char *exported, ct_audit_report *rep)
{
	ct_audit_walk_opts o = { .keys = &key, .n_keys = key != NULL,
	    .live = live, .checkpoints = exported };

	return ct_audit_walk(paths, n, &o, NULL, NULL, rep);
}

static void
assert_walk_bad(const char *const *paths, size_t n, EVP_PKEY *key,
		const char *exported, const char *file, uint64_t line,
		const char *reason)
{
	ct_audit_report rep;

	assert_int_equal(walk_with(paths, n, key, false, exported, &rep),
	    CT_ERR_AUDIT);
	assert_string_equal(rep.bad_file, file);
	assert_int_equal(rep.bad_line, line);
	if (strstr(rep.reason, reason) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", rep.reason, reason);
}

static void
test_checkpoint(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->path };
	char *buf, hex[2 * SHA256_DIGEST_LENGTH + 1];
	ct_audit_report rep;
	size_t len, off, llen;
	json_t *cp;
	ct_audit *a;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	checkpoint(a); /* an empty log has no head: nothing appended */
	assert_int_equal(ct_audit_pending(a), 0);
	append_event(a, "sign", 1, &t0);
	append_event(a, "sign", 2, &t0);
	append_event(a, "sign", 3, &t0);
	checkpoint(a);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 4);

	/* Line 4 signs line 3: its seq and hash. */
	buf = slurp(fx->path, &len);
	line_span(buf, len, 3, &off, &llen);
	sha256_hex(buf + off, llen, hex);
	line_span(buf, len, 4, &off, &llen);
	assert_non_null(cp = json_loadb(buf + off, llen, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(cp, "event")),
	    "checkpoint");
	assert_string_equal(json_string_value(json_object_get(cp, "alg")),
	    "ecdsa-sha256");
	assert_int_equal(json_integer_value(json_object_get(cp, "head_seq")), 3);
	assert_string_equal(json_string_value(json_object_get(cp, "head")), hex);
	json_decref(cp);
	free(buf);

	assert_int_equal(walk_with(paths, 1, the_key.key, false, NULL, &rep),
	    CT_OK);
	assert_int_equal(rep.checkpoints, 1);
	assert_int_equal(rep.signed_seq, 3);
	assert_int_equal(rep.tail_line, 0);
	assert_walk_bad(paths, 1, other_key.key, NULL, fx->path, 4,
	    "bad checkpoint signature");
	assert_int_equal(walk_with(paths, 1, NULL, false, NULL, &rep), CT_OK);
	assert_int_equal(rep.signed_seq, 0); /* nothing was checked */

	/* Lines after the last checkpoint: a tail nobody signed. */
	append_event(a, "wrap", 5, &t0);
	append_event(a, "wrap", 6, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
	assert_walk_bad(paths, 1, the_key.key, NULL, fx->path, 5,
	    "2 line(s) from here on come after the last checkpoint");
	assert_int_equal(walk_with(paths, 1, the_key.key, true, NULL, &rep),
	    CT_OK);
	assert_int_equal(rep.tail_line, 5);
	assert_int_equal(rep.tail_lines, 2);
	assert_int_equal(walk_with(paths, 1, NULL, false, NULL, &rep), CT_OK);
}

static void
test_checkpoint_failed(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->path };
	ct_audit_signer broken = signer;
	struct soft_signer fails = { .fail = true };
	char *buf;
	size_t len, off, llen;
	ct_err sign_err;
	ct_audit *a;

	broken.arg = &fails;
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	append_event(a, "sign", 1, &t0);
	assert_int_equal(ct_audit_checkpoint(a, &broken, &t0, &sign_err), CT_OK);
	assert_int_equal(sign_err, CT_ERR_TOKEN_UNAVAILABLE);
	append_event(a, "sign", 3, &t0); /* the chain goes on */
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
	buf = slurp(fx->path, &len);
	line_span(buf, len, 2, &off, &llen);
	assert_non_null(strstr(buf + off, "\"event\":\"checkpoint_failed\","
	    "\"key\":\"audit\",\"version\":1,\"head_seq\":1,"
	    "\"result\":\"token_unavailable\","
	    "\"detail\":\"C_Sign: CKR_DEVICE_REMOVED\"}\n"));
	free(buf);
	assert_verify_ok(fx->path, 3);
	assert_walk_bad(paths, 1, the_key.key, NULL, fx->path, 1,
	    "3 line(s) from here on and no checkpoint signs them");
}

/* Rewrites line n with `from` replaced by `to` (same length). */
static void
edit_line(const char *path, size_t n, const char *from, const char *to)
{
	size_t len, off, llen;
	char *buf, *at;

	buf = slurp(path, &len);
	line_span(buf, len, n, &off, &llen);
	assert_non_null(at = memmem(buf + off, llen, from, strlen(from)));
	assert_int_equal(strlen(from), strlen(to));
	memcpy(at, to, strlen(to));
	spit(path, buf, len);
	free(buf);
}

static void
test_checkpoint_tampered(void **state)
{
	static const struct {
		const char *from, *to, *reason;
	} edits[] = {
		{ "\"head_seq\":2", "\"head_seq\":1",
		  "checkpoint does not sign the line before it" },
		{ "\"alg\":\"ecdsa-sha256\"", "\"alg\":\"ecdsa-sha512\"",
		  "checkpoint: alg missing or unknown" },
		{ "\"signature\":", "\"signatur3\":",
		  "signature missing or not base64" },
		{ "\"version\":1", "\"version\":0",
		  "checkpoint: key or version missing" },
		{ "\"head\":", "\"hea_\":", "head_seq or head malformed" },
	};
	struct fixture *fx = *state;
	const char *paths[] = { fx->path };
	char *good;
	size_t len, i;
	ct_audit *a;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	append_event(a, "sign", 1, &t0);
	append_event(a, "sign", 2, &t0);
	checkpoint(a);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
	good = slurp(fx->path, &len);

	/* Each field of the last line, changed: it is the one named. */
	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		spit(fx->path, good, len);
		edit_line(fx->path, 3, edits[i].from, edits[i].to);
		assert_walk_bad(paths, 1, NULL, NULL, fx->path, 3,
		    edits[i].reason);
	}
	free(good);
}

static void
path_dot(char *buf, size_t len, const char *path, const char *suffix)
{
	snprintf(buf, len, "%s.%s", path, suffix);
}

static void
test_rotate(void **state)
{
	struct fixture *fx = *state;
	char arch1[160], arch2[160], got[4096], *buf;
	const char *all[3], *gap[2], *alone[1];
	ct_audit_report rep;
	size_t len, off, llen;
	ct_audit *a;
	unsigned i;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	for (i = 1; i <= 5; i++)
		append_event(a, "sign", i, &t0);
	/* Pending lines must be committed first. */
	assert_int_equal(ct_audit_rotate(a, &signer, &t0, got, sizeof(got)),
	    CT_ERR_INTERNAL);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_rotate(a, &signer, &t0, got, sizeof(got)),
	    CT_OK);
	path_dot(arch1, sizeof(arch1), fx->path, "00000000000000000001");
	assert_string_equal(got, arch1);
	assert_int_equal(ct_audit_seq(a), 7); /* 5 lines, checkpoint, rotate */
	for (i = 8; i <= 9; i++)
		append_event(a, "wrap", i, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	/* Without a signer the rotate line carries no checkpoint. */
	assert_int_equal(ct_audit_rotate(a, NULL, &t0, got, sizeof(got)),
	    CT_OK);
	path_dot(arch2, sizeof(arch2), fx->path, "00000000000000000007");
	assert_string_equal(got, arch2);
	append_event(a, "wrap", 11, &t0);
	checkpoint(a);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);

	/* The old file ends with its checkpoint; the new starts with rotate. */
	buf = slurp(arch1, &len);
	line_span(buf, len, 6, &off, &llen);
	assert_non_null(memmem(buf + off, llen, "\"event\":\"checkpoint\"", 20));
	assert_int_equal(off + llen + 1, len);
	free(buf);
	buf = slurp(arch2, &len);
	line_span(buf, len, 1, &off, &llen);
	snprintf(got, sizeof(got), "\"event\":\"rotate\",\"previous_file\":"
	    "\"%s\",\"checkpoint\":{\"key\":\"audit\",\"version\":1,"
	    "\"alg\":\"ecdsa-sha256\",\"head_seq\":5,", strrchr(arch1, '/') + 1);
	assert_non_null(memmem(buf + off, llen, got, strlen(got)));
	free(buf);

	all[0] = arch1, all[1] = arch2, all[2] = fx->path;
	assert_int_equal(walk_with(all, 3, the_key.key, false, NULL, &rep),
	    CT_OK);
	assert_int_equal(rep.lines, 12);
	assert_int_equal(rep.first_seq, 1);
	assert_int_equal(rep.last_seq, 12);
	assert_int_equal(rep.checkpoints, 2);
	assert_int_equal(rep.signed_seq, 11);
	gap[0] = arch1, gap[1] = fx->path;
	assert_walk_bad(gap, 2, NULL, NULL, fx->path, 1,
	    "seq 10 follows 6 at the end of");
	gap[0] = arch2, gap[1] = arch1;
	assert_walk_bad(gap, 2, NULL, NULL, arch1, 1,
	    "does not begin with a rotate line");
	/* A rotated-in file alone starts from its rotate line; one whose
	 * rotate line carries a checkpoint is anchored by the signature. */
	alone[0] = arch2;
	assert_int_equal(walk_with(alone, 1, the_key.key, true, NULL, &rep),
	    CT_OK);
	assert_int_equal(rep.first_seq, 7);
	assert_int_equal(rep.signed_seq, 5);
	assert_walk_bad(alone, 1, other_key.key, NULL, arch2, 1,
	    "bad signature on the rotate line's checkpoint");
	/* The rotate line may not claim another checkpoint than the last. */
	edit_line(arch2, 1, "\"head_seq\":5", "\"head_seq\":4");
	assert_walk_bad(all, 3, NULL, NULL, arch2, 1,
	    "rotate line's checkpoint is not the last checkpoint of");

	/* The reopened log continues, and knows its first seq. */
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 12);
	assert_int_equal(ct_audit_rotate(a, NULL, &t0, got, sizeof(got)),
	    CT_OK);
	path_dot(arch1, sizeof(arch1), fx->path, "00000000000000000010");
	assert_string_equal(got, arch1);
	ct_audit_close(a);
}

static void
test_rotate_leftovers(void **state)
{
	struct fixture *fx = *state;
	char arch[160], tmp[160], got[4096];
	struct stat st;
	ct_audit *a;

	write_log(fx->path, 3);
	/* A crash after the link, before the rename: the active file has a
	 * second name, and a half-built new file lies around. */
	path_dot(arch, sizeof(arch), fx->path, "00000000000000000001");
	path_dot(tmp, sizeof(tmp), fx->path, "new");
	assert_int_equal(link(fx->path, arch), 0);
	spit(tmp, "{\"seq\":4,", 9);
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(lstat(arch, &st), -1); /* the second name is gone */
	assert_int_equal(ct_audit_rotate(a, NULL, &t0, got, sizeof(got)),
	    CT_OK);
	assert_string_equal(got, arch);
	assert_int_equal(lstat(tmp, &st), -1);
	ct_audit_close(a);
	assert_verify_ok(arch, 3);

	/* Another file under the archive name is not overwritten. */
	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 4); /* the rotate line */
	path_dot(arch, sizeof(arch), fx->path, "00000000000000000004");
	spit(arch, "other\n", 6);
	assert_int_equal(ct_audit_rotate(a, NULL, &t0, got, sizeof(got)),
	    CT_ERR_IO);
	assert_string_equal(got, "");
	assert_int_equal(lstat(tmp, &st), -1);
	/* Nothing changed: the same file goes on. */
	append_event(a, "sign", 1, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	assert_int_equal(ct_audit_seq(a), 5);
	ct_audit_close(a);
	assert_int_equal(file_size(arch), 6);
	assert_verify_ok(fx->path, 2);
}

static void
test_exported(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->path };
	char exp[160], *good;
	size_t len, off, llen;
	ct_audit_report rep;
	ct_audit *a;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	append_event(a, "sign", 1, &t0);
	checkpoint(a);
	append_event(a, "sign", 3, &t0);
	checkpoint(a);
	append_event(a, "sign", 5, &t0);
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
	good = slurp(fx->path, &len);
	line_span(good, len, 4, &off, &llen);
	snprintf(exp, sizeof(exp), "%s.exported", fx->path);
	spit(exp, good + off, llen + 1);

	assert_int_equal(walk_with(paths, 1, the_key.key, true, exp, &rep),
	    CT_OK);
	assert_int_equal(rep.exported, 1);
	/* Cut at the earlier checkpoint: fine alone, not against the export. */
	line_span(good, len, 2, &off, &llen);
	spit(fx->path, good, off + llen + 1);
	assert_int_equal(walk_with(paths, 1, the_key.key, false, NULL, &rep),
	    CT_OK);
	assert_walk_bad(paths, 1, the_key.key, exp, fx->path, 2,
	    "the log ends at seq 2, but the exported checkpoint");
	/* The same seq with other bytes. */
	spit(fx->path, good, len);
	edit_line(fx->path, 4, "\"time\":\"2", "\"time\":\"3");
	assert_walk_bad(paths, 1, NULL, exp, fx->path, 4,
	    "differs from the exported checkpoint (seq 4");
	/* An export file holds only checkpoints, each checked. */
	spit(fx->path, good, len);
	line_span(good, len, 3, &off, &llen);
	spit(exp, good + off, llen + 1);
	assert_walk_bad(paths, 1, NULL, exp, exp, 1, "not a checkpoint line");
	line_span(good, len, 4, &off, &llen);
	spit(exp, good + off, llen + 1);
	assert_walk_bad(paths, 1, other_key.key, exp, exp, 1,
	    "bad checkpoint signature");
	free(good);
}

struct seen {
	unsigned n;
	uint64_t seqs[16];
};

static ct_err
count_line(void *arg, const json_t *obj, const char *line, size_t len)
{
	struct seen *s = arg;

	if (s->n < 16)
		s->seqs[s->n] = (uint64_t)json_integer_value(json_object_get(obj,
		    "seq"));
	s->n++;
	return CT_OK;
}

static void
test_walk_keep_going(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->path };
	ct_audit_walk_opts o = { 0 };
	ct_audit_report rep;
	struct seen s = { 0 };
	char *good, *bad;
	size_t len, off, llen;

	write_log(fx->path, 6);
	good = slurp(fx->path, &len);
	assert_non_null(bad = malloc(len + 8));
	line_span(good, len, 3, &off, &llen);
	memcpy(bad, good, off);
	memcpy(bad + off, "garbage\n", 8);
	memcpy(bad + off + 8, good + off, len - off);
	spit(fx->path, bad, len + 8);

	/* Strict: lines up to the break only. */
	assert_int_equal(ct_audit_walk(paths, 1, &o, count_line, &s, &rep),
	    CT_ERR_AUDIT);
	assert_int_equal(rep.bad_line, 3);
	assert_int_equal(s.n, 2);
	/* keep_going: every line that parses, the first problem kept. */
	memset(&s, 0, sizeof(s));
	o.keep_going = true;
	assert_int_equal(ct_audit_walk(paths, 1, &o, count_line, &s, &rep),
	    CT_ERR_AUDIT);
	assert_int_equal(rep.bad_line, 3);
	assert_non_null(strstr(rep.reason, "not a JSON object"));
	assert_int_equal(s.n, 6);
	assert_int_equal(s.seqs[5], 6);
	free(bad);
	free(good);
}

static void
test_verify_missing(void **state)
{
	struct fixture *fx = *state;
	ct_audit_report rep;

	assert_int_equal(ct_audit_verify(fx->path, &rep), CT_ERR_IO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_continues,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_cuts_torn_tail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_bad_tail,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_rolls_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_events,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_missing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_failed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_tampered,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_leftovers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_exported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_keep_going,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
