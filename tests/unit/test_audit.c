/* test_audit.c: the audit log's chain, group commit, rollback and verify. */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "custodian/ct_audit.h"
#include "tests/unit/child.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* 2026-11-23T19:04:05.123Z */
static const struct timespec t0 = {
	.tv_sec = 1795460645, .tv_nsec = 123456789
};

struct fixture {
	char dir[64];
	char path[96];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_audit.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/audit.log", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char p[sizeof(fx->dir) + 256 + 2];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(fx->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

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

/* Run in a child: RLIMIT_FSIZE makes the write fail part way (EFBIG). */
static void
commit_fail_child(void *arg)
{
	const char *path = arg;
	struct rlimit rl;
	ct_audit_report rep;
	struct stat st;
	off_t committed;
	ct_audit *a;
	json_t *ev;
	unsigned i;

	CHILD_CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	CHILD_CHECK((ev = json_pack("{s:s}", "op", "sign")) != NULL);
	CHILD_CHECK(ct_audit_open(path, &a) == CT_OK);
	for (i = 0; i < 3; i++)
		CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	CHILD_CHECK(ct_audit_commit(a) == CT_OK);
	CHILD_CHECK(stat(path, &st) == 0);
	committed = st.st_size;

	CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
	rl.rlim_cur = (rlim_t)committed + 1000;
	CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
	for (i = 0; i < 100; i++)
		CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	CHILD_CHECK(ct_audit_commit(a) == CT_ERR_AUDIT);
	CHILD_CHECK(ct_audit_pending(a) == 0);
	CHILD_CHECK(ct_audit_seq(a) == 3);
	CHILD_CHECK(stat(path, &st) == 0 && st.st_size == committed);

	CHILD_CHECK(ct_audit_append(a, ev, &t0) == CT_OK);
	CHILD_CHECK(ct_audit_commit(a) == CT_OK);
	CHILD_CHECK(ct_audit_seq(a) == 4);
	ct_audit_close(a);
	json_decref(ev);
	CHILD_CHECK(ct_audit_verify(path, &rep) == CT_OK && rep.lines == 4);
}

static void
test_commit_failure_rolls_back(void **state)
{
	struct fixture *fx = *state;
	int status = child_run(commit_fail_child, fx->path);

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_verify_ok(fx->path, 4);
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
		cmocka_unit_test_setup_teardown(test_commit_failure_rolls_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_events,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_missing,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
