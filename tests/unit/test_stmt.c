/* test_stmt.c: approval statements.  The canonical text round-trips for
 * every action; anything else (a truncation, a changed byte that is not
 * another canonical statement, other order, missing or extra fields, bad
 * times and numbers, NUL bytes, too much) is refused; signatures made with
 * OpenSSL over ct_stmt_signed_bytes verify for exactly that statement and
 * decision. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "custodian/ct_stmt.h"
#include "tests/unit/stmt_sign.h"

#define T0 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

/* One valid statement of each kind: every action, with and without the
 * optional key of a freeze. */
static void
make(ct_action a, bool with_key, ct_stmt *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	memcpy(s->id, "0123456789abcdef", CT_REQ_ID_LEN + 1);
	s->action = a;
	if (ct_action_needs(a) & CT_NEEDS_KEY || with_key)
		strcpy(s->key, "dek");
	if (ct_action_needs(a) & CT_NEEDS_VERSION)
		s->version = a == CT_ACT_ROTATE ? 2 : 1;
	if (ct_action_needs(a) & CT_NEEDS_DIGEST) {
		s->has_digest = true;
		for (i = 0; i < 32; i++)
			s->digest[i] = (uint8_t)(0xa0 + i);
	}
	if (ct_action_needs(a) & CT_NEEDS_PATH)
		strcpy(s->path, "/var/backups/custodian/2026-01-01.ctbk");
	for (i = 0; i < 32; i++)
		s->policy[i] = (uint8_t)i;
	s->created = T0;
	s->expires = T0 + 3600;
}

static const struct {
	ct_action a;
	bool key;
} kinds[] = {
	{ CT_ACT_ROTATE, true },   { CT_ACT_REVOKE, true },
	{ CT_ACT_POLICY, false },  { CT_ACT_FREEZE, false },
	{ CT_ACT_FREEZE, true },   { CT_ACT_UNFREEZE, false },
	{ CT_ACT_UNFREEZE, true }, { CT_ACT_BACKUP, false },
	{ CT_ACT_RESTORE, false },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static bool
same_stmt(const ct_stmt *a, const ct_stmt *b)
{
	return strcmp(a->id, b->id) == 0 && a->action == b->action &&
	       strcmp(a->key, b->key) == 0 && a->version == b->version &&
	       a->has_digest == b->has_digest &&
	       memcmp(a->digest, b->digest, 32) == 0 &&
	       strcmp(a->path, b->path) == 0 &&
	       memcmp(a->policy, b->policy, 32) == 0 &&
	       a->created == b->created && a->expires == b->expires;
}

static size_t
format_ok(const ct_stmt *s, char *buf)
{
	size_t len;

	assert_int_equal(ct_stmt_format(s, buf, CT_STMT_MAX, &len), CT_OK);
	assert_int_equal(strlen(buf), len);
	return len;
}

/* Parse len bytes from a heap buffer of exactly that size, so that a
 * sanitizer sees any read past the end. */
static ct_err
parse(const char *text, size_t len, ct_stmt *out)
{
	char *copy = malloc(len > 0 ? len : 1);
	ct_err r;

	assert_non_null(copy);
	memcpy(copy, text, len);
	r = ct_stmt_parse(copy, len, out);
	free(copy);
	return r;
}

static void
refused(const char *text, size_t len, const char *what)
{
	ct_stmt out;

	if (parse(text, len, &out) != CT_ERR_BAD_REQUEST)
		fail_msg("accepted (%s): \"%.*s\"", what, (int)len, text);
	/* Nothing of a refused statement is left in the output. */
	assert_int_equal(out.action, 0);
	assert_string_equal(out.id, "");
}

static void
refused_str(const char *text, const char *what)
{
	refused(text, strlen(text), what);
}

/* Replace the first occurrence of `from` in text with `to`. */
static void
edit(const char *text, const char *from, const char *to, char *out,
     size_t outlen)
{
	const char *at = strstr(text, from);

	assert_non_null(at);
	assert_true(strlen(text) - strlen(from) + strlen(to) < outlen);
	snprintf(out, outlen, "%.*s%s%s", (int)(at - text), text, to,
	    at + strlen(from));
}

static void
test_names(void **state)
{
	ct_action a;

	for (a = CT_ACT_ROTATE; a <= CT_ACT_RESTORE; a++)
		assert_int_equal(ct_action_from_name(ct_action_name(a)), a);
	assert_string_equal(ct_action_name(0), "?");
	assert_string_equal(ct_action_name((ct_action)99), "?");
	assert_int_equal(ct_action_from_name("Rotate"), 0);
	assert_int_equal(ct_action_from_name(""), 0);
	assert_int_equal(ct_action_from_name("?"), 0);
	assert_int_equal(ct_action_from_name(NULL), 0);
	assert_int_equal(ct_action_needs(0), 0);
}

/* The exact bytes are the contract with custodianctl and the cards. */
static void
test_canonical_text(void **state)
{
	static const char rotate[] =
		"custodian-statement: 1\n"
		"request: 0123456789abcdef\n"
		"action: rotate\n"
		"key: dek\n"
		"version: 2\n"
		"policy: sha256:000102030405060708090a0b0c0d0e0f"
		"101112131415161718191a1b1c1d1e1f\n"
		"created: 2026-01-01T00:00:00Z\n"
		"expires: 2026-01-01T01:00:00Z\n";
	static const char restore[] =
		"custodian-statement: 1\n"
		"request: 0123456789abcdef\n"
		"action: restore\n"
		"file: /var/backups/custodian/2026-01-01.ctbk\n"
		"digest: sha256:a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
		"b0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
		"policy: sha256:000102030405060708090a0b0c0d0e0f"
		"101112131415161718191a1b1c1d1e1f\n"
		"created: 2026-01-01T00:00:00Z\n"
		"expires: 2026-01-01T01:00:00Z\n";
	char buf[CT_STMT_MAX], t[CT_TIME_LEN];
	ct_stmt s;

	make(CT_ACT_ROTATE, true, &s);
	format_ok(&s, buf);
	assert_string_equal(buf, rotate);
	make(CT_ACT_RESTORE, false, &s);
	format_ok(&s, buf);
	assert_string_equal(buf, restore);
	make(CT_ACT_FREEZE, false, &s);
	format_ok(&s, buf);
	assert_null(strstr(buf, "key:"));
	assert_non_null(strstr(buf, "\naction: freeze\npolicy: "));

	assert_int_equal(ct_time_format(0, t), CT_OK);
	assert_string_equal(t, "1970-01-01T00:00:00Z");
	assert_int_equal(ct_time_format(INT64_C(253402300799), t), CT_OK);
	assert_string_equal(t, "9999-12-31T23:59:59Z");
	assert_int_equal(ct_time_format(-1, t), CT_ERR_INTERNAL);
	/* Five-digit years do not fit the fixed width. */
	assert_int_equal(ct_time_format(INT64_C(253402300800), t),
	    CT_ERR_INTERNAL);
}

static void
test_round_trip(void **state)
{
	char buf[CT_STMT_MAX], again[CT_STMT_MAX];
	ct_stmt s, out;
	size_t i, len;

	for (i = 0; i < N_KINDS; i++) {
		make(kinds[i].a, kinds[i].key, &s);
		len = format_ok(&s, buf);
		assert_int_equal(parse(buf, len, &out), CT_OK);
		if (!same_stmt(&s, &out))
			fail_msg("%s (key %d) changed in a round trip",
			    ct_action_name(kinds[i].a), kinds[i].key);
		assert_int_equal(format_ok(&out, again), len);
		assert_memory_equal(again, buf, len);
	}
	/* The extremes of each field. */
	make(CT_ACT_ROTATE, true, &s);
	memset(s.key, 'k', 64);
	s.key[64] = '\0';
	s.version = UINT32_MAX;
	s.created = 0;
	s.expires = INT64_C(253402300799);
	len = format_ok(&s, buf);
	assert_non_null(strstr(buf, "\nversion: 4294967295\n"));
	assert_int_equal(parse(buf, len, &out), CT_OK);
	assert_true(same_stmt(&s, &out));
	make(CT_ACT_BACKUP, false, &s);
	memset(s.path, '~', CT_STMT_PATH_MAX - 1);
	s.path[0] = ' '; /* printable, if odd */
	s.path[CT_STMT_PATH_MAX - 1] = '\0';
	len = format_ok(&s, buf);
	assert_int_equal(parse(buf, len, &out), CT_OK);
	assert_true(same_stmt(&s, &out));
}

/* Format refuses what it could not write canonically. */
static void
test_format_refuses(void **state)
{
	char buf[CT_STMT_MAX];
	ct_stmt s;
	size_t len = 99;

#define REFUSE(what, change)                                               \
	do {                                                               \
		make(CT_ACT_ROTATE, true, &s);                             \
		change;                                                    \
		if (ct_stmt_format(&s, buf, sizeof(buf), &len) !=          \
		    CT_ERR_BAD_REQUEST)                                    \
			fail_msg("formatted: %s", what);                   \
		assert_int_equal(len, 0);                                  \
	} while (0)
	REFUSE("no action", s.action = 0);
	REFUSE("unknown action", s.action = (ct_action)42);
	REFUSE("short id", s.id[15] = '\0');
	REFUSE("upper-case id", s.id[10] = 'A');
	REFUSE("rotate without key", s.key[0] = '\0');
	REFUSE("rotate without version", s.version = 0);
	REFUSE("rotate with digest", s.has_digest = true);
	REFUSE("rotate with file", strcpy(s.path, "/x"));
	REFUSE("key with a slash", strcpy(s.key, "a/b"));
	REFUSE("key with a newline", strcpy(s.key, "a\nversion: 9"));
	REFUSE("expires == created", s.expires = s.created);
	REFUSE("expires < created", s.expires = s.created - 1);
	REFUSE("negative created", s.created = -5);
	REFUSE("policy with key", (s.action = CT_ACT_POLICY,
	    s.version = 0, s.has_digest = true));
	REFUSE("backup with a newline in the file", (s.action = CT_ACT_BACKUP,
	    s.key[0] = '\0', s.version = 0, strcpy(s.path, "/x\ndigest: y")));
	REFUSE("backup with a non-ASCII file", (s.action = CT_ACT_BACKUP,
	    s.key[0] = '\0', s.version = 0, strcpy(s.path, "/b\xc3\xa4")));
#undef REFUSE
	/* Too small a buffer is an error, never a truncated statement. */
	make(CT_ACT_ROTATE, true, &s);
	assert_int_equal(ct_stmt_format(&s, buf, 100, &len), CT_ERR_TOO_LARGE);
	assert_int_equal(len, 0);
}

/* Every proper prefix of every statement is refused. */
static void
test_truncations(void **state)
{
	char buf[CT_STMT_MAX];
	size_t i, n, len;
	ct_stmt s;

	for (i = 0; i < N_KINDS; i++) {
		make(kinds[i].a, kinds[i].key, &s);
		len = format_ok(&s, buf);
		for (n = 0; n < len; n++)
			refused(buf, n, "a truncation");
	}
}

/* Is offset i inside a "name: " prefix or on a line's newline? */
static bool
structural(const char *text, size_t i)
{
	size_t start = i;

	if (text[i] == '\n')
		return true;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	return i < (size_t)(strchr(text + start, ':') - text) + 2;
}

/* Change every byte of every statement to many other values (all 256 for
 * the rotation): a change is accepted only when the result is itself a
 * canonical statement, a different one, that formats to exactly the
 * changed bytes; the names, separators and line ends never change. */
static void
test_byte_changes(void **state)
{
	static const uint8_t some[] = { 0x00, 0x01, '\t', '\n', '\r', ' ', '+',
		'-', '0', '1', '9', ':', 'A', 'F', 'Z', 'a', 'f', 'g', 'z',
		0x7f, 0x80, 0xff };
	char buf[CT_STMT_MAX], mut[CT_STMT_MAX], again[CT_STMT_MAX];
	size_t i, off, v, nv, len, alen, accepted = 0;
	ct_stmt s, out;
	uint8_t b;

	for (i = 0; i < N_KINDS; i++) {
		make(kinds[i].a, kinds[i].key, &s);
		len = format_ok(&s, buf);
		nv = kinds[i].a == CT_ACT_ROTATE ? 256 : sizeof(some);
		for (off = 0; off < len; off++)
			for (v = 0; v < nv; v++) {
				b = nv == 256 ? (uint8_t)v : some[v];
				if (b == (uint8_t)buf[off])
					continue;
				memcpy(mut, buf, len);
				mut[off] = (char)b;
				if (parse(mut, len, &out) != CT_OK)
					continue;
				accepted++;
				if (structural(buf, off))
					fail_msg("%s: byte %zu ('%c') changed to 0x%02x "
					    "accepted", ct_action_name(s.action),
					    off, buf[off], b);
				assert_false(same_stmt(&s, &out));
				assert_int_equal(ct_stmt_format(&out, again,
				    sizeof(again), &alen), CT_OK);
				assert_int_equal(alen, len);
				assert_memory_equal(again, mut, len);
			}
	}
	/* Values do change into other values: the id, digits, hex. */
	assert_true(accepted > 0);
}

static void
each_line(const char *text, size_t *starts, size_t *n)
{
	const char *p;

	*n = 0;
	for (p = text; *p != '\0'; p = strchr(p, '\n') + 1)
		starts[(*n)++] = (size_t)(p - text);
	starts[*n] = strlen(text);
}

/* Lines in another order, lines missing, lines twice, unknown lines. */
static void
test_fields(void **state)
{
	char buf[CT_STMT_MAX], mut[2 * CT_STMT_MAX];
	size_t starts[16], i, j, k, n, len;
	ct_stmt s, out;

	for (i = 0; i < N_KINDS; i++) {
		make(kinds[i].a, kinds[i].key, &s);
		len = format_ok(&s, buf);
		each_line(buf, starts, &n);
		assert_true(n >= 6);
		for (j = 0; j < n; j++) {
			size_t jl = starts[j + 1] - starts[j];
			bool optional = (ct_action_needs(s.action) & CT_MAY_KEY) &&
			    strncmp(buf + starts[j], "key: ", 5) == 0;

			/* Without line j. */
			memcpy(mut, buf, starts[j]);
			memcpy(mut + starts[j], buf + starts[j + 1], len - starts[j + 1]);
			if (!optional)
				refused(mut, len - jl, "a line missing");
			else /* a freeze of the whole service */
				assert_int_equal(parse(mut, len - jl, &out), CT_OK);
			/* Line j twice. */
			memcpy(mut, buf, starts[j + 1]);
			memcpy(mut + starts[j + 1], buf + starts[j], len - starts[j]);
			refused(mut, len + jl, "a line twice");
			/* Lines j and j + 1 swapped. */
			if (j + 1 < n) {
				size_t kl = starts[j + 2] - starts[j + 1];

				memcpy(mut, buf, len);
				memcpy(mut + starts[j], buf + starts[j + 1], kl);
				memcpy(mut + starts[j] + kl, buf + starts[j], jl);
				refused(mut, len, "two lines swapped");
			}
		}
		/* An unknown line, or a known one the action does not name, at
		 * every line boundary. */
		for (j = 0; j <= n; j++) {
			static const char *const extra[] = {
				"note: hello\n", "key: other\n", "version: 7\n",
				"file: /tmp/x\n",
				"digest: sha256:000102030405060708090a0b0c0d0e0f"
				"101112131415161718191a1b1c1d1e1f\n",
				"decision: approve\n", "\n",
			};
			for (k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
				size_t el = strlen(extra[k]);

				memcpy(mut, buf, starts[j]);
				memcpy(mut + starts[j], extra[k], el);
				memcpy(mut + starts[j] + el, buf + starts[j],
				    len - starts[j]);
				/* After the action, a freeze may name a key. */
				if (j == 3 && s.key[0] == '\0' &&
				    (ct_action_needs(s.action) & CT_MAY_KEY) &&
				    strcmp(extra[k], "key: other\n") == 0) {
					assert_int_equal(parse(mut, len + el, &out),
					    CT_OK);
					assert_string_equal(out.key, "other");
					continue;
				}
				refused(mut, len + el, extra[k]);
			}
		}
	}
	/* A key line with no key. */
	make(CT_ACT_FREEZE, false, &s);
	format_ok(&s, buf);
	edit(buf, "action: freeze\n", "action: freeze\nkey: \n", mut, sizeof(mut));
	refused_str(mut, "an empty key");
	/* Spelling of the lines. */
	make(CT_ACT_ROTATE, true, &s);
	format_ok(&s, buf);
	edit(buf, "custodian-statement: 1\n", "custodian-statement: 2\n", mut,
	    sizeof(mut));
	refused_str(mut, "statement version 2");
	edit(buf, "key: dek\n", "key:dek\n", mut, sizeof(mut));
	refused_str(mut, "no space");
	edit(buf, "key: dek\n", "key:  dek\n", mut, sizeof(mut));
	refused_str(mut, "two spaces");
	edit(buf, "key: dek\n", "Key: dek\n", mut, sizeof(mut));
	refused_str(mut, "capital name");
	edit(buf, "key: dek\n", "key: dek\r\n", mut, sizeof(mut));
	refused_str(mut, "CRLF");
	edit(buf, "action: rotate\n", "action: ROTATE\n", mut, sizeof(mut));
	refused_str(mut, "capital action");
	edit(buf, "action: rotate\n", "action: rotate \n", mut, sizeof(mut));
	refused_str(mut, "trailing space");
	edit(buf, "policy: sha256:", "policy: sha512:", mut, sizeof(mut));
	refused_str(mut, "another hash");
	edit(buf, "policy: sha256:00", "policy: sha256:", mut, sizeof(mut));
	refused_str(mut, "a short digest");
	edit(buf, "policy: sha256:00", "policy: sha256:0000", mut, sizeof(mut));
	refused_str(mut, "a long digest");
	edit(buf, "request: 0123456789abcdef\n", "request: 0123456789abcde\n", mut,
	    sizeof(mut));
	refused_str(mut, "a short id");
	edit(buf, "request: 0123456789abcdef\n", "request: 0123456789abcdef0\n",
	    mut, sizeof(mut));
	refused_str(mut, "a long id");
	snprintf(mut, sizeof(mut), "%s\n", buf);
	refused_str(mut, "a blank line at the end");
	snprintf(mut, sizeof(mut), "\n%s", buf);
	refused_str(mut, "a blank line at the start");
	refused_str("", "nothing");
}

/* Only real instants in the one spelling ct_time_format writes. */
static void
test_times(void **state)
{
	static const char *const bad[] = {
		"2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z",
		"2026-01-01T23:59:60Z", "2026-01-01T00:00:00z",
		"2026-01-01t00:00:00Z", "2026-01-01 00:00:00Z",
		"2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00",
		"2026-01-01T00:00:00.0Z", "2026-1-01T00:00:00Z",
		"2026-01-1T00:00:00Z", "26-01-01T00:00:00Z",
		" 2026-01-01T00:00:00Z", "+2026-01-01T00:00:00Z",
		"2026-01-01T0:00:00Z", "2026-01-01T00:00:0Z",
		"2026-01-01T00:00:00Z ", "2026-01-01T00:00:00ZZ",
		"1969-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "",
		"2026-01-01T00:-1:00Z", "2026-+1-01T00:00:00Z",
	};
	char buf[CT_STMT_MAX], line[64], mut[CT_STMT_MAX + 64];
	ct_stmt s, out;
	size_t i, len;

	make(CT_ACT_REVOKE, true, &s);
	s.expires = INT64_C(4102444800); /* 2100: after every bad time */
	format_ok(&s, buf);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "created: %s\n", bad[i]);
		edit(buf, "created: 2026-01-01T00:00:00Z\n", line, mut, sizeof(mut));
		refused_str(mut, bad[i]);
	}
	/* A leap day that exists, and the epoch. */
	edit(buf, "created: 2026-01-01T00:00:00Z\n",
	    "created: 2028-02-29T23:59:59Z\n", mut, sizeof(mut));
	assert_int_equal(parse(mut, strlen(mut), &out), CT_OK);
	assert_int_equal(out.created, INT64_C(1835481599));
	edit(buf, "created: 2026-01-01T00:00:00Z\n",
	    "created: 1970-01-01T00:00:00Z\n", mut, sizeof(mut));
	assert_int_equal(parse(mut, strlen(mut), &out), CT_OK);
	assert_int_equal(out.created, 0);
	/* A statement expires after it is made. */
	make(CT_ACT_REVOKE, true, &s);
	len = format_ok(&s, buf);
	edit(buf, "expires: 2026-01-01T01:00:00Z\n",
	    "expires: 2026-01-01T00:00:00Z\n", mut, sizeof(mut));
	refused_str(mut, "expires == created");
	edit(buf, "expires: 2026-01-01T01:00:00Z\n",
	    "expires: 2025-12-31T23:59:59Z\n", mut, sizeof(mut));
	refused_str(mut, "expires before created");
	assert_int_equal(parse(buf, len, &out), CT_OK);
}

static void
test_numbers_and_hex(void **state)
{
	static const char *const bad_versions[] = {
		"0", "02", "002", "+2", "-2", " 2", "2 ", "0x2", "2.0", "",
		"4294967296", "10000000000", "99999999999999999999", "1e3",
	};
	char buf[CT_STMT_MAX], line[64], mut[CT_STMT_MAX + 64];
	ct_stmt s, out;
	size_t i;

	make(CT_ACT_ROTATE, true, &s);
	format_ok(&s, buf);
	for (i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		snprintf(line, sizeof(line), "version: %s\n", bad_versions[i]);
		edit(buf, "version: 2\n", line, mut, sizeof(mut));
		refused_str(mut, bad_versions[i]);
	}
	edit(buf, "version: 2\n", "version: 4294967295\n", mut, sizeof(mut));
	assert_int_equal(parse(mut, strlen(mut), &out), CT_OK);
	assert_int_equal(out.version, UINT32_MAX);
	edit(buf, "version: 2\n", "version: 10\n", mut, sizeof(mut));
	assert_int_equal(parse(mut, strlen(mut), &out), CT_OK);
	assert_int_equal(out.version, 10);

	/* Hex is lower case, in the id and in both digests. */
	edit(buf, "request: 0123456789abcdef", "request: 0123456789abcdeF", mut,
	    sizeof(mut));
	refused_str(mut, "upper-case id");
	edit(buf, "0a0b0c", "0A0b0c", mut, sizeof(mut));
	refused_str(mut, "upper-case policy digest");
	edit(buf, "request: 0123456789abcdef", "request: 0123456789abcdeg", mut,
	    sizeof(mut));
	refused_str(mut, "not hex");
	make(CT_ACT_POLICY, false, &s);
	format_ok(&s, buf);
	edit(buf, "digest: sha256:a0a1", "digest: sha256:A0a1", mut, sizeof(mut));
	refused_str(mut, "upper-case digest");
	edit(buf, "digest: sha256:a0a1", "digest: SHA256:a0a1", mut, sizeof(mut));
	refused_str(mut, "upper-case hash name");
}

/* A NUL anywhere, and more than CT_STMT_MAX bytes, are refused. */
static void
test_nul_and_length(void **state)
{
	char buf[CT_STMT_MAX], mut[2 * CT_STMT_MAX];
	size_t i, off, len;
	ct_stmt s, out;
	uint8_t *msg;

	for (i = 0; i < N_KINDS; i++) {
		make(kinds[i].a, kinds[i].key, &s);
		len = format_ok(&s, buf);
		for (off = 0; off <= len; off++) {
			memcpy(mut, buf, off);
			mut[off] = '\0';
			memcpy(mut + off + 1, buf + off, len - off);
			refused(mut, len + 1, "a NUL inserted");
		}
	}
	/* The longest statement fits; one byte more than the limit does not,
	 * however it continues. */
	make(CT_ACT_RESTORE, false, &s);
	memset(s.path, 'p', CT_STMT_PATH_MAX - 1);
	s.path[CT_STMT_PATH_MAX - 1] = '\0';
	len = format_ok(&s, buf);
	assert_true(len < CT_STMT_MAX);
	assert_int_equal(parse(buf, len, &out), CT_OK);
	memcpy(mut, buf, len);
	memset(mut + len, '\n', sizeof(mut) - len);
	refused(mut, CT_STMT_MAX + 1, "over-long");
	refused(mut, sizeof(mut), "over-long");
	/* A file longer than a statement can hold. */
	edit(buf, "file: p", "file: pp", mut, sizeof(mut));
	refused_str(mut, "a 256-byte file");
	assert_int_equal(ct_stmt_signed_bytes(mut, CT_STMT_MAX + 1, true, &msg,
	    &len), CT_ERR_TOO_LARGE);
	assert_null(msg);
	assert_int_equal(len, 0);
}

static void
test_signed_bytes(void **state)
{
	uint8_t *msg;
	size_t len;

	assert_int_equal(ct_stmt_signed_bytes("a: b\n", 5, true, &msg, &len),
	    CT_OK);
	assert_int_equal(len, 5 + 18);
	assert_memory_equal(msg, "a: b\ndecision: approve\n", len);
	free(msg);
	assert_int_equal(ct_stmt_signed_bytes("a: b\n", 5, false, &msg, &len),
	    CT_OK);
	assert_int_equal(len, 5 + 15);
	assert_memory_equal(msg, "a: b\ndecision: deny\n", len);
	free(msg);
}

/* The public key as the daemon has it: read back from a PEM file. */
static EVP_PKEY *
public_only(EVP_PKEY *k)
{
	char path[] = "/tmp/test_stmt.XXXXXX";
	EVP_PKEY *pub;
	FILE *f;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_public_pem(k, path);
	f = fopen(path, "r");
	assert_non_null(f);
	pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	unlink(path);
	assert_non_null(pub);
	return pub;
}

static void
check_card(EVP_PKEY *k, EVP_PKEY *other)
{
	char buf[CT_STMT_MAX], changed[CT_STMT_MAX];
	uint8_t *sig, *deny_sig, *other_sig;
	size_t len, siglen, deny_len, other_len;
	EVP_PKEY *pub = public_only(k);
	ct_stmt s;

	make(CT_ACT_ROTATE, true, &s);
	len = format_ok(&s, buf);
	card_sign(k, buf, len, true, &sig, &siglen);
	card_sign(k, buf, len, false, &deny_sig, &deny_len);
	card_sign(other, buf, len, true, &other_sig, &other_len);

	assert_int_equal(ct_stmt_verify(pub, buf, len, true, sig, siglen), CT_OK);
	assert_int_equal(ct_stmt_verify(pub, buf, len, false, deny_sig, deny_len),
	    CT_OK);
	/* Not for the other decision. */
	assert_int_equal(ct_stmt_verify(pub, buf, len, false, sig, siglen),
	    CT_ERR_BAD_SIGNATURE);
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, deny_sig, deny_len),
	    CT_ERR_BAD_SIGNATURE);
	/* Not for another statement. */
	s.version = 3;
	format_ok(&s, changed);
	assert_int_equal(ct_stmt_verify(pub, changed, len, true, sig, siglen),
	    CT_ERR_BAD_SIGNATURE);
	assert_int_equal(ct_stmt_verify(pub, buf, len - 1, true, sig, siglen),
	    CT_ERR_BAD_SIGNATURE);
	/* Not truncated, extended, empty or flipped. */
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, sig, siglen - 1),
	    CT_ERR_BAD_SIGNATURE);
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, sig, 0),
	    CT_ERR_BAD_SIGNATURE);
	sig[siglen / 2] ^= 0x01;
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, sig, siglen),
	    CT_ERR_BAD_SIGNATURE);
	sig[siglen / 2] ^= 0x01;
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, sig, siglen), CT_OK);
	/* Not another custodian's. */
	assert_int_equal(ct_stmt_verify(pub, buf, len, true, other_sig,
	    other_len), CT_ERR_BAD_SIGNATURE);
	/* Not over an over-long statement. */
	assert_int_equal(ct_stmt_verify(pub, buf, CT_STMT_MAX + 1, true, sig,
	    siglen), CT_ERR_TOO_LARGE);
	free(sig);
	free(deny_sig);
	free(other_sig);
	EVP_PKEY_free(pub);
}

static void
test_verify(void **state)
{
	EVP_PKEY *ec = card_key("ec"), *rsa = card_key("rsa");
	char buf[CT_STMT_MAX];
	uint8_t *sig;
	size_t len, siglen;
	ct_stmt s;

	check_card(ec, rsa);
	check_card(rsa, ec);
	/* RSA cards sign PKCS#1 v1.5: a PSS signature is not accepted. */
	make(CT_ACT_POLICY, false, &s);
	len = format_ok(&s, buf);
	card_sign_with(rsa, buf, len, true, true, &sig, &siglen);
	assert_int_equal(ct_stmt_verify(rsa, buf, len, true, sig, siglen),
	    CT_ERR_BAD_SIGNATURE);
	free(sig);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_canonical_text),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_byte_changes),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_numbers_and_hex),
		cmocka_unit_test(test_nul_and_length),
		cmocka_unit_test(test_signed_bytes),
		cmocka_unit_test(test_verify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
