/* test_auditq.c: audit queries: times, filters, held-back output, the
 * table and the summary, on logs written with ct_audit. */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "custodian/ct_auditq.h"
#include "tests/unit/audit_fixture.h"

/* 2026-11-23T19:04:05.123Z */
static const time_t T0 = 1795460645;

static void
test_time(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "2026-11-23", "2026-11-23T00:00:00.000Z" },
		{ "2026-11-23T19:04", "2026-11-23T19:04:00.000Z" },
		{ "2026-11-23T19:04Z", "2026-11-23T19:04:00.000Z" },
		{ "2026-11-23T19:04:05", "2026-11-23T19:04:05.000Z" },
		{ "2026-11-23T19:04:05.123Z", "2026-11-23T19:04:05.123Z" },
		{ "2024-02-29", "2024-02-29T00:00:00.000Z" },
		{ "@1795460645", "2026-11-23T19:04:05.000Z" },
		{ "-0s", "2026-11-23T19:04:05.000Z" },
		{ "-90s", "2026-11-23T19:02:35.000Z" },
		{ "-5m", "2026-11-23T18:59:05.000Z" },
		{ "-2h", "2026-11-23T17:04:05.000Z" },
		{ "-7d", "2026-11-16T19:04:05.000Z" },
	};
	static const char *const bad[] = {
		"", "2026", "2026-11", "2026-11-2", "2026-11-23T", "2026-11-23T19",
		"2026-11-23T19:4", "2026-11-23 19:04", "2026-11-23T19:04:05.12",
		"2026-11-23T19:04:05+01:00", "2026-11-23x", "2026-02-29",
		"2026-13-01", "2026-11-31", "2026-11-23T24:00", "2026-11-23T19:60",
		"+5m", "-5", "-5w", "-m", "--5m", "-5mm", "@", "@12x", "@-1",
		"-99999999999999999999d", "-999999999d", "2026-11-23T19:04:05.123ZZ",
	};
	char out[CT_AUDITQ_TIME_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ct_auditq_time(good[i].in, T0, out), CT_OK);
		assert_string_equal(out, good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ct_auditq_time(bad[i], T0, out) != CT_ERR_BAD_REQUEST)
			fail_msg("\"%s\" accepted as %s", bad[i], out);
		assert_string_equal(out, "");
	}
}

static json_t *
line(const char *text)
{
	json_t *o = json_loads(text, 0, NULL);

	assert_non_null(o);
	return o;
}

static void
test_match(void **state)
{
	json_t *req = line("{\"seq\":9,\"time\":\"2026-11-23T19:04:05.123Z\","
	    "\"prev\":\"x\",\"event\":\"request\",\"peer\":{\"uid\":1001,"
	    "\"gid\":5,\"pid\":7},\"id\":\"r-1\",\"op\":\"unwrap\",\"key\":"
	    "\"dek\",\"version\":2,\"result\":\"decrypt_failed\"}");
	json_t *start = line("{\"seq\":1,\"time\":\"2026-11-23T19:00:00.000Z\","
	    "\"prev\":\"x\",\"event\":\"start\"}");
	json_t *odd = line("{\"seq\":2,\"time\":\"yesterday\",\"key\":7,"
	    "\"version\":\"2\",\"peer\":{\"uid\":\"1001\"},\"result\":5}");
	ct_auditq_filter f = { 0 };

	assert_true(ct_auditq_match(&f, req));
	assert_true(ct_auditq_match(&f, odd)); /* no filter: everything */
	f.key = "dek";
	assert_true(ct_auditq_match(&f, req));
	assert_false(ct_auditq_match(&f, start));
	assert_false(ct_auditq_match(&f, odd));
	f.version = 2;
	assert_true(ct_auditq_match(&f, req));
	f.version = 1;
	assert_false(ct_auditq_match(&f, req));
	memset(&f, 0, sizeof(f));
	f.has_uid = true, f.uid = 1001;
	assert_true(ct_auditq_match(&f, req));
	assert_false(ct_auditq_match(&f, odd)); /* "1001" is not 1001 */
	f.uid = 0;
	assert_false(ct_auditq_match(&f, req));
	assert_false(ct_auditq_match(&f, start));
	memset(&f, 0, sizeof(f));
	f.result = "error";
	assert_true(ct_auditq_match(&f, req));
	assert_false(ct_auditq_match(&f, start)); /* no result at all */
	assert_false(ct_auditq_match(&f, odd));
	f.result = "decrypt_failed";
	assert_true(ct_auditq_match(&f, req));
	f.result = "ok";
	assert_false(ct_auditq_match(&f, req));
	memset(&f, 0, sizeof(f));
	f.op = "unwrap", f.request_id = "r-1";
	assert_true(ct_auditq_match(&f, req));
	f.request_id = "r-2";
	assert_false(ct_auditq_match(&f, req));

	/* Times: since inclusive, until exclusive, odd times never match. */
	memset(&f, 0, sizeof(f));
	assert_int_equal(ct_auditq_time("2026-11-23T19:04:05.123", T0,
	    f.since), CT_OK);
	assert_true(ct_auditq_match(&f, req));
	assert_false(ct_auditq_match(&f, start));
	assert_false(ct_auditq_match(&f, odd));
	assert_int_equal(ct_auditq_time("2026-11-23T19:04:05.123", T0,
	    f.until), CT_OK);
	assert_false(ct_auditq_match(&f, req));
	f.since[0] = '\0';
	assert_true(ct_auditq_match(&f, start));
	json_decref(req);
	json_decref(start);
	json_decref(odd);
}

static void
request(ct_audit *a, time_t t, json_int_t uid, const char *op,
	const char *key, const char *result)
{
	struct timespec now = { .tv_sec = t };
	json_t *ev = json_pack("{s:s, s:{s:I}, s:s, s:s, s:i, s:s}", "event",
	    "request", "peer", "uid", uid, "op", op, "key", key, "version", 1,
	    "result", result);

	assert_non_null(ev);
	assert_int_equal(ct_audit_append(a, ev, &now), CT_OK);
	json_decref(ev);
}

/* A day of requests: hour h has one sign by uid 0, and every third hour
 * an unwrap by uid 1001 that is refused. */
static void
write_day(const char *path)
{
	ct_audit *a;
	int h;

	assert_int_equal(ct_audit_open(path, &a), CT_OK);
	for (h = 0; h < 24; h++) {
		request(a, T0 + h * 3600, 0, "sign", "k1", "ok");
		if (h % 3 == 0)
			request(a, T0 + h * 3600 + 1, 1001, "unwrap", "dek",
			    "not_authorized");
	}
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);
}

/* Runs a query into memory; the output is returned NUL-terminated. */
static char *
run(const char *path, const ct_audit_walk_opts *o, const ct_auditq_filter *f,
    ct_auditq_mode mode, ct_err want, uint64_t *matched)
{
	const char *paths[] = { path };
	ct_audit_report rep;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	assert_non_null(out = open_memstream(&buf, &len));
	assert_int_equal(ct_auditq_run(paths, 1, o, f, mode, out, matched, &rep),
	    want);
	assert_int_equal(fclose(out), 0);
	return buf;
}

static size_t
count(const char *s, const char *what)
{
	size_t n = 0;

	for (; (s = strstr(s, what)) != NULL; s++)
		n++;
	return n;
}

/* Does out hold the summary row "NAME N OK REFUSED" (or "NAME N")? */
static bool
has_row(const char *out, const char *name, int n, int ok, int refused)
{
	char row[128];

	if (ok < 0)
		snprintf(row, sizeof(row), "\n%-32s %10d\n", name, n);
	else
		snprintf(row, sizeof(row), "\n%-32s %10d %10d %10d\n", name, n,
		    ok, refused);
	return strstr(out, row) != NULL;
}

static void
test_run(void **state)
{
	struct fixture *fx = *state;
	ct_audit_walk_opts o = { 0 };
	ct_auditq_filter f = { 0 };
	uint64_t matched;
	char *out;

	write_day(fx->path);
	/* JSON lines: the matching lines, byte for byte. */
	f.result = "error";
	out = run(fx->path, &o, &f, CT_AUDITQ_JSON, CT_OK, &matched);
	assert_int_equal(matched, 8);
	assert_int_equal(count(out, "\n"), 8);
	assert_int_equal(count(out, "\"op\":\"unwrap\",\"key\":\"dek\","
	    "\"version\":1,\"result\":\"not_authorized\"}\n"), 8);
	assert_memory_equal(out, "{\"seq\":2,\"time\":", 16);
	free(out);

	/* The table: a header and a row per line. */
	memset(&f, 0, sizeof(f));
	assert_int_equal(ct_auditq_time("2026-11-24T00:00", T0, f.since), CT_OK);
	f.op = "sign";
	out = run(fx->path, &o, &f, CT_AUDITQ_TABLE, CT_OK, &matched);
	assert_int_equal(matched, 19); /* 05:04 .. 04:04 next day */
	assert_int_equal(count(out, "\n"), 20);
	assert_non_null(strstr(out, "TIME "));
	assert_non_null(strstr(out, "\n2026-11-24T00:04:05.000Z        8 "
	    "request                0 sign        k1                      1 ok"
	    "               -\n"));
	free(out);

	/* The summary. */
	memset(&f, 0, sizeof(f));
	out = run(fx->path, &o, &f, CT_AUDITQ_SUMMARY, CT_OK, &matched);
	assert_int_equal(matched, 32);
	assert_non_null(strstr(out, "period: 2026-11-23T19:04:05.000Z .. "
	    "2026-11-24T18:04:05.000Z, 32 lines\n"));
	assert_true(has_row(out, "uid 0 (root)", 24, 24, 0));
	assert_non_null(strstr(out, "\nuid 1001"));
	assert_true(has_row(out, "k1", 24, 24, 0));
	assert_true(has_row(out, "dek", 8, 0, 8));
	assert_true(has_row(out, "not_authorized", 8, -1, 0));
	assert_true(has_row(out, "request", 32, -1, 0));
	free(out);
}

static void
test_broken_chain(void **state)
{
	struct fixture *fx = *state;
	ct_audit_walk_opts o = { 0 };
	ct_auditq_filter f = { 0 };
	uint64_t matched;
	char *out, *buf, *nl;
	size_t len;
	FILE *fp;

	write_day(fx->path);
	/* Drop line 5. */
	assert_non_null(fp = fopen(fx->path, "r+"));
	assert_non_null(buf = calloc(1, 1 << 16));
	len = fread(buf, 1, (1 << 16) - 1, fp);
	assert_true(len > 0);
	for (nl = buf, len = 0; len < 4; len++)
		nl = strchr(nl, '\n') + 1;
	memmove(nl, strchr(nl, '\n') + 1, strlen(strchr(nl, '\n') + 1) + 1);
	rewind(fp);
	assert_int_equal(ftruncate(fileno(fp), 0), 0);
	fputs(buf, fp);
	fclose(fp);
	free(buf);

	/* Nothing shown, not even the lines before the gap. */
	out = run(fx->path, &o, &f, CT_AUDITQ_JSON, CT_ERR_AUDIT, &matched);
	assert_string_equal(out, "");
	free(out);
	out = run(fx->path, &o, &f, CT_AUDITQ_SUMMARY, CT_ERR_AUDIT, &matched);
	assert_string_equal(out, "");
	free(out);
	/* Unless asked: all the lines, and the problem still reported. */
	o.keep_going = true;
	out = run(fx->path, &o, &f, CT_AUDITQ_JSON, CT_ERR_AUDIT, &matched);
	assert_int_equal(matched, 31);
	assert_int_equal(count(out, "\n"), 31);
	free(out);
}

/* Hostile logs: escapes reach no terminal; names cannot grow a table. */
static void
test_hostile_text(void **state)
{
	struct fixture *fx = *state;
	ct_audit_walk_opts o = { 0 };
	ct_auditq_filter f = { 0 };
	char key[32], *out;
	uint64_t matched;
	ct_audit *a;
	unsigned i;

	assert_int_equal(ct_audit_open(fx->path, &a), CT_OK);
	request(a, T0, 0, "sign\x1b[2J", "k\x07", "ok\r");
	for (i = 0; i < 1500; i++) {
		snprintf(key, sizeof(key), "key-%u", i);
		request(a, T0, 0, "sign", key, "ok");
	}
	assert_int_equal(ct_audit_commit(a), CT_OK);
	ct_audit_close(a);

	out = run(fx->path, &o, &f, CT_AUDITQ_TABLE, CT_OK, &matched);
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x07'));
	assert_null(strchr(out, '\r'));
	assert_non_null(strstr(out, "sign?[2J"));
	free(out);
	out = run(fx->path, &o, &f, CT_AUDITQ_SUMMARY, CT_OK, &matched);
	assert_null(strchr(out, '\x07'));
	/* 1024 names, then one "(other)" for the remaining 477. */
	assert_true(has_row(out, "k?", 1, 0, 1));
	assert_true(has_row(out, "(other)", 477, 477, 0));
	assert_null(strstr(out, "key-1499"));
	free(out);
	/* JSON lines are the log's bytes: escaped by JSON itself. */
	f.op = "sign\x1b[2J";
	out = run(fx->path, &o, &f, CT_AUDITQ_JSON, CT_OK, &matched);
	assert_int_equal(matched, 1);
	assert_null(strchr(out, '\x1b'));
	assert_non_null(strcasestr(out, "\"op\":\"sign\\u001b[2J\""));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_match),
		cmocka_unit_test_setup_teardown(test_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_chain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hostile_text, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
