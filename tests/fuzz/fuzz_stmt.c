/* fuzz_stmt.c: the approval statement parser (custodian/ct_stmt.h).
 *
 * The input is a statement as a custodian's client would send or show it.
 * One that parses must be exactly what ct_stmt_format writes for what was
 * parsed, byte for byte (canonical form is the whole point: the custodian
 * signs these bytes), and must name what its action needs.  The input is
 * also read as a ct_stmt struct: whatever ct_stmt_format accepts must
 * parse back to the same statement.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "custodian/ct_stmt.h"
#include "custodian/ct_util.h"

static bool
same(const ct_stmt *a, const ct_stmt *b)
{
	return strcmp(a->id, b->id) == 0 && a->action == b->action &&
	       strcmp(a->key, b->key) == 0 && a->version == b->version &&
	       a->has_digest == b->has_digest &&
	       (!a->has_digest || memcmp(a->digest, b->digest, 32) == 0) &&
	       strcmp(a->path, b->path) == 0 &&
	       memcmp(a->policy, b->policy, 32) == 0 &&
	       a->created == b->created && a->expires == b->expires;
}

static void
check_parsed(const char *text, size_t len, const ct_stmt *s)
{
	char again[CT_STMT_MAX + 1];
	unsigned needs = ct_action_needs(s->action);
	uint8_t *msg;
	size_t alen, mlen;
	ct_stmt back;

	CHECK(len <= CT_STMT_MAX && memchr(text, '\0', len) == NULL);
	CHECK(needs != 0);
	CHECK(strlen(s->id) == CT_REQ_ID_LEN &&
	      strspn(s->id, "0123456789abcdef") == CT_REQ_ID_LEN);
	CHECK(((needs & CT_NEEDS_KEY) != 0) <= (s->key[0] != '\0'));
	CHECK(s->key[0] == '\0' || ct_valid_name(s->key, 64));
	CHECK(((needs & CT_NEEDS_VERSION) != 0) == (s->version != 0));
	CHECK(((needs & CT_NEEDS_DIGEST) != 0) == s->has_digest);
	CHECK(((needs & CT_NEEDS_PATH) != 0) == (s->path[0] != '\0'));
	CHECK(s->created >= 0 && s->expires > s->created);
	/* Canonical: formatting what was parsed gives the input back. */
	CHECK(ct_stmt_format(s, again, sizeof(again), &alen) == CT_OK);
	CHECK(alen == len && memcmp(again, text, len) == 0);
	CHECK(ct_stmt_parse(again, alen, &back) == CT_OK && same(s, &back));
	/* What a custodian signs starts with exactly these bytes. */
	CHECK(ct_stmt_signed_bytes(text, len, true, &msg, &mlen) == CT_OK);
	CHECK(mlen == len + 18 && memcmp(msg, text, len) == 0 &&
	      memcmp(msg + len, "decision: approve\n", 18) == 0);
	free(msg);
}

/* Take n bytes from the input; false when it has fewer left. */
static bool
take(const uint8_t **p, size_t *left, void *out, size_t n)
{
	if (*left < n)
		return false;
	memcpy(out, *p, n);
	*p += n;
	*left -= n;
	return true;
}

/* The input's bytes as a statement's fields: action, flags, version,
 * times, id, digests, then the key and the file as NUL-separated strings. */
static void
format_and_parse(const uint8_t *data, size_t size)
{
	char text[CT_STMT_MAX + 1];
	uint8_t action, flags;
	const char *str, *nul;
	ct_stmt s, back;
	size_t len;
	ct_err r;

	memset(&s, 0, sizeof(s));
	if (!take(&data, &size, &action, 1) || !take(&data, &size, &flags, 1) ||
	    !take(&data, &size, &s.version, sizeof(s.version)) ||
	    !take(&data, &size, &s.created, sizeof(s.created)) ||
	    !take(&data, &size, &s.expires, sizeof(s.expires)) ||
	    !take(&data, &size, s.id, CT_REQ_ID_LEN) ||
	    !take(&data, &size, s.digest, sizeof(s.digest)) ||
	    !take(&data, &size, s.policy, sizeof(s.policy)))
		return;
	s.action = (ct_action)(action % 8);
	s.has_digest = flags & 1;
	/* Mostly times a statement can hold, sometimes any at all. */
	if (flags & 2) {
		s.created = (int64_t)((uint64_t)s.created % UINT64_C(253402300800));
		s.expires = (int64_t)((uint64_t)s.expires % UINT64_C(253402300800));
	}
	str = (const char *)data;
	nul = memchr(str, '\0', size);
	len = nul != NULL ? (size_t)(nul - str) : size;
	memcpy(s.key, str, len < sizeof(s.key) ? len : sizeof(s.key) - 1);
	if (nul != NULL) {
		size -= len + 1;
		str = nul + 1;
		memcpy(s.path, str, size < sizeof(s.path) ? size : sizeof(s.path) - 1);
	}
	r = ct_stmt_format(&s, text, sizeof(text), &len);
	if (r != CT_OK) {
		CHECK(r == CT_ERR_BAD_REQUEST || r == CT_ERR_TOO_LARGE);
		CHECK(len == 0);
		return;
	}
	CHECK(len == strlen(text));
	CHECK(ct_stmt_parse(text, len, &back) == CT_OK);
	CHECK(same(&s, &back));
	check_parsed(text, len, &back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ct_stmt s;
	ct_err r;

	r = ct_stmt_parse((const char *)data, size, &s);
	if (r == CT_OK)
		check_parsed((const char *)data, size, &s);
	else
		CHECK(r == CT_ERR_BAD_REQUEST && s.action == 0 && s.id[0] == '\0');
	format_and_parse(data, size);
	return 0;
}
