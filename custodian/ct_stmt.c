/* ct_stmt.c: approval statements. */
#include "custodian/ct_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "custodian/ct_util.h"

static const struct {
	const char *name;
	unsigned needs;
} actions[] = {
	[CT_ACT_ROTATE] = { "rotate", CT_NEEDS_KEY | CT_NEEDS_VERSION },
	[CT_ACT_REVOKE] = { "revoke", CT_NEEDS_KEY | CT_NEEDS_VERSION },
	[CT_ACT_POLICY] = { "policy", CT_NEEDS_DIGEST },
	[CT_ACT_FREEZE] = { "freeze", CT_MAY_KEY },
	[CT_ACT_UNFREEZE] = { "unfreeze", CT_MAY_KEY },
	[CT_ACT_BACKUP] = { "backup", CT_NEEDS_PATH },
	[CT_ACT_RESTORE] = { "restore", CT_NEEDS_PATH | CT_NEEDS_DIGEST },
};
#define N_ACTIONS (sizeof(actions) / sizeof(actions[0]))

static bool
valid_action(ct_action a)
{
	return a > 0 && (size_t)a < N_ACTIONS;
}

unsigned
ct_action_needs(ct_action a)
{
	return valid_action(a) ? actions[a].needs : 0;
}

const char *
ct_action_name(ct_action a)
{
	return valid_action(a) ? actions[a].name : "?";
}

ct_action
ct_action_from_name(const char *s)
{
	size_t i;

	for (i = 1; s != NULL && i < N_ACTIONS; i++)
		if (strcmp(actions[i].name, s) == 0)
			return (ct_action)i;
	return 0;
}

ct_err
ct_time_format(int64_t t, char buf[CT_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, CT_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) != CT_TIME_LEN - 1)
		return CT_ERR_INTERNAL;
	return CT_OK;
}

/* Paths in a statement are shown to people: printable ASCII only. */
static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

ct_err
ct_stmt_format(const ct_stmt *s, char *buf, size_t buflen, size_t *len)
{
	char created[CT_TIME_LEN], expires[CT_TIME_LEN], hex[65], pol[65];
	unsigned needs = ct_action_needs(s->action);
	size_t off = 0;
	int n;

	*len = 0;
	if (needs == 0 || strlen(s->id) != CT_REQ_ID_LEN ||
	    strspn(s->id, "0123456789abcdef") != CT_REQ_ID_LEN ||
	    ((needs & CT_NEEDS_KEY) && s->key[0] == '\0') ||
	    (s->key[0] != '\0' && (!(needs & (CT_NEEDS_KEY | CT_MAY_KEY)) ||
				   !ct_valid_name(s->key, 64))) ||
	    ((needs & CT_NEEDS_VERSION) != 0) != (s->version != 0) ||
	    ((needs & CT_NEEDS_DIGEST) != 0) != s->has_digest ||
	    ((needs & CT_NEEDS_PATH) != 0) != (s->path[0] != '\0') ||
	    !printable(s->path) || s->expires <= s->created ||
	    ct_time_format(s->created, created) != CT_OK ||
	    ct_time_format(s->expires, expires) != CT_OK)
		return CT_ERR_BAD_REQUEST;
	ct_hex(s->digest, sizeof(s->digest), hex);
	ct_hex(s->policy, sizeof(s->policy), pol);
#define PUT(...)                                                            \
	do {                                                                \
		n = snprintf(buf + off, buflen - off, __VA_ARGS__);         \
		if (n < 0 || (size_t)n >= buflen - off)                     \
			return CT_ERR_TOO_LARGE;                            \
		off += (size_t)n;                                           \
	} while (0)
	PUT("custodian-statement: 1\nrequest: %s\naction: %s\n", s->id,
	    ct_action_name(s->action));
	if (s->key[0] != '\0')
		PUT("key: %s\n", s->key);
	if (s->version != 0)
		PUT("version: %u\n", s->version);
	if (s->path[0] != '\0')
		PUT("file: %s\n", s->path);
	if (s->has_digest)
		PUT("digest: sha256:%s\n", hex);
	PUT("policy: sha256:%s\ncreated: %s\nexpires: %s\n", pol, created,
	    expires);
#undef PUT
	*len = off;
	return CT_OK;
}

/* The value of the next line if it is "name: value\n"; advances *p. */
static bool
next_field(const char **p, const char *end, const char *name, char *val,
	   size_t vlen)
{
	size_t nlen = strlen(name);
	const char *nl, *v = *p + nlen + 2;

	if ((size_t)(end - *p) < nlen + 2 || memcmp(*p, name, nlen) != 0 ||
	    (*p)[nlen] != ':' || (*p)[nlen + 1] != ' ' ||
	    (nl = memchr(v, '\n', (size_t)(end - v))) == NULL ||
	    (size_t)(nl - v) >= vlen)
		return false;
	memcpy(val, v, (size_t)(nl - v));
	val[nl - v] = '\0';
	*p = nl + 1;
	return true;
}

static bool
parse_time(const char *s, int64_t *t)
{
	struct tm tm = { 0 };
	char back[CT_TIME_LEN];
	time_t v;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((v = timegm(&tm)) == (time_t)-1)
		return false;
	*t = v;
	/* Only the canonical spelling of a real instant (no Feb 30). */
	return ct_time_format(*t, back) == CT_OK && strcmp(back, s) == 0;
}

static bool
parse_digest(const char *s, uint8_t out[32])
{
	size_t i;
	unsigned x;

	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64 ||
	    strspn(s + 7, "0123456789abcdef") != 64)
		return false;
	for (i = 0; i < 32; i++) {
		if (sscanf(s + 7 + 2 * i, "%2x", &x) != 1)
			return false;
		out[i] = (uint8_t)x;
	}
	return true;
}

static bool
parse_u32(const char *s, uint32_t *v)
{
	unsigned long long x = 0;

	if (s[0] < '1' || s[0] > '9' || strspn(s, "0123456789") != strlen(s) ||
	    strlen(s) > 10)
		return false;
	for (; *s != '\0'; s++)
		x = x * 10 + (unsigned)(*s - '0');
	if (x > UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

ct_err
ct_stmt_parse(const char *buf, size_t len, ct_stmt *out)
{
	char val[CT_STMT_PATH_MAX + 8], again[CT_STMT_MAX];
	const char *p = buf, *end = buf + len;
	size_t alen;
	ct_stmt s;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	if (len > CT_STMT_MAX || memchr(buf, '\0', len) != NULL ||
	    !next_field(&p, end, "custodian-statement", val, sizeof(val)) ||
	    strcmp(val, "1") != 0 ||
	    !next_field(&p, end, "request", s.id, sizeof(s.id)) ||
	    !next_field(&p, end, "action", val, sizeof(val)) ||
	    (s.action = ct_action_from_name(val)) == 0)
		return CT_ERR_BAD_REQUEST;
	if (next_field(&p, end, "key", s.key, sizeof(s.key)) && s.key[0] == '\0')
		return CT_ERR_BAD_REQUEST;
	if (next_field(&p, end, "version", val, sizeof(val)) &&
	    !parse_u32(val, &s.version))
		return CT_ERR_BAD_REQUEST;
	(void)next_field(&p, end, "file", s.path, sizeof(s.path));
	if (next_field(&p, end, "digest", val, sizeof(val)) &&
	    !(s.has_digest = parse_digest(val, s.digest)))
		return CT_ERR_BAD_REQUEST;
	if (!next_field(&p, end, "policy", val, sizeof(val)) ||
	    !parse_digest(val, s.policy) ||
	    !next_field(&p, end, "created", val, sizeof(val)) ||
	    !parse_time(val, &s.created) ||
	    !next_field(&p, end, "expires", val, sizeof(val)) ||
	    !parse_time(val, &s.expires) || p != end)
		return CT_ERR_BAD_REQUEST;
	/* Whatever was accepted must be exactly what the daemon writes. */
	if (ct_stmt_format(&s, again, sizeof(again), &alen) != CT_OK ||
	    alen != len || memcmp(again, buf, len) != 0)
		return CT_ERR_BAD_REQUEST;
	*out = s;
	return CT_OK;
}

ct_err
ct_stmt_signed_bytes(const char *text, size_t len, bool approve,
		     uint8_t **out, size_t *outlen)
{
	const char *tail = approve ? "decision: approve\n" : "decision: deny\n";
	size_t tlen = strlen(tail);

	*out = NULL;
	*outlen = 0;
	if (len > CT_STMT_MAX || (*out = malloc(len + tlen)) == NULL)
		return len > CT_STMT_MAX ? CT_ERR_TOO_LARGE : CT_ERR_NOMEM;
	memcpy(*out, text, len);
	memcpy(*out + len, tail, tlen);
	*outlen = len + tlen;
	return CT_OK;
}

ct_err
ct_stmt_verify(EVP_PKEY *pub, const char *text, size_t len, bool approve,
	       const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *md = NULL;
	uint8_t *msg = NULL;
	size_t mlen;
	ct_err r;

	if ((r = ct_stmt_signed_bytes(text, len, approve, &msg, &mlen)) != CT_OK)
		return r;
	r = CT_ERR_NOMEM;
	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	/* RSA keys default to PKCS#1 v1.5 padding: what cards sign with. */
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1) {
		r = CT_ERR_INTERNAL;
		goto out;
	}
	r = EVP_DigestVerify(md, sig, siglen, msg, mlen) == 1 ? CT_OK :
	    CT_ERR_BAD_SIGNATURE;
 out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(msg);
	return r;
}
