/* pol.c: load the custodian policy (docs/policy.md) from YAML.
 *
 * Loading takes two passes.  The first turns libyaml events into a small
 * tree and enforces what does not depend on the schema: one document, no
 * anchors, aliases or tags, bounded nesting and scalar size, valid UTF-8.
 * The second walks the tree into a pol_policy, section by section, so the
 * fields of a mapping may come in any order and references (a key's token,
 * the clients in allow) resolve against sections that are already read.
 * The first error ends the load; its message points at the offending node.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml.h>

#include "policy/pol.h"

#define MAX_DEPTH	8	/* collections nested in one another */
#define MAX_SCALAR	4096	/* bytes in one scalar */
#define MAX_FIELDS	16	/* fields of the widest mapping */
#define MAX_LABEL	32	/* CK_TOKEN_INFO.label is 32 bytes */
#define MAX_WORKERS	64
#define DEFAULT_WORKERS	2
#define DEFAULT_TOKEN_TIMEOUT	30	/* seconds */
#define DEFAULT_APPROVAL_TTL	(24 * 3600)	/* seconds */
#define DEFAULT_DESTROY_AFTER	(30 * 86400)	/* seconds */
#define DEFAULT_CHECKPOINT_LINES	1000
#define DEFAULT_CHECKPOINT_SECONDS	60
#define MAX_CHECKPOINT_LINES	1000000000ul
#define MAX_CHECKPOINT_SECONDS	86400ul
#define MIN_ROTATE_BYTES	4096ul
#define MAX_ROTATE_BYTES	(1ul << 40)
#define MAX_RATE	1000000u /* requests per second, and burst */
#define MAX_CONNECTIONS	4096u	 /* the daemon's own cap */
#define MAX_BAD		1000u
/* Without limits in the policy: clients have no rate limit and may hold
 * half the daemon's connections; unknown peers (each uid on its own) get
 * little, since all they can earn is a refusal, and each one is audited. */
static const pol_limits client_limits_default = { 0, 1, 2048 };
static const pol_limits unknown_limits_default = { 10, 20, 4 };
#define DEFAULT_BAD	8
#define PWBUF_MAX	(1u << 20) /* bound on getpwnam_r/getgrnam_r buffers */
#define SUN_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define TIME_MAX	INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

_Static_assert(sizeof(time_t) == 8, "times up to year 9999 fit time_t");

/* (uid_t)-1 means "unchanged" to chown(2) and setreuid(2): never an id. */
#define ID_MAX ((unsigned long)(uid_t)-1 - 1)
_Static_assert((uid_t)-1 > 0 && (gid_t)-1 > 0, "ids are unsigned");
_Static_assert(sizeof(uid_t) == sizeof(gid_t), "one bound fits uid and gid");
_Static_assert(sizeof(uid_t) <= sizeof(unsigned long), "ids fit strtoul");

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* Names used in the document and on the wire. */
static const char *const op_names[] = {
	"sign", "verify", "public_key", "wrap", "unwrap", "datakey", "rewrap",
};
_Static_assert(POL_OP_ALL_ == (1u << nitems(op_names)) - 1,
	       "one name per operation bit");

static const char *const key_type_names[] = {
	[POL_KEY_EC_P256] = "ec-p256",
	[POL_KEY_EC_P384] = "ec-p384",
	[POL_KEY_RSA_3072] = "rsa-3072",
	[POL_KEY_AES_256] = "aes-256",
};

static const char *const sign_names[] = {
	[POL_SIGN_NONE] = "none",
	[POL_SIGN_ECDSA_SHA256] = "ecdsa-sha256",
	[POL_SIGN_ECDSA_SHA384] = "ecdsa-sha384",
	[POL_SIGN_RSA_PSS_SHA256] = "rsa-pss-sha256",
	[POL_SIGN_RSA_PKCS1_SHA256] = "rsa-pkcs1-sha256",
};

static const char *const oaep_names[] = {
	[POL_OAEP_SHA256] = "sha256",
	[POL_OAEP_SHA1] = "sha1",
};

#define ASYM_OPS (POL_OP_SIGN | POL_OP_VERIFY | POL_OP_PUBLIC_KEY)
#define WRAP_OPS (POL_OP_WRAP | POL_OP_UNWRAP | POL_OP_DATAKEY | POL_OP_REWRAP)

/* What each key type can do, indexed like key_type_names. */
static const struct {
	unsigned ops;		/* POL_OP_* a grant may hold */
	pol_sign_scheme sign;	/* default scheme */
	unsigned signs;		/* schemes allowed, as 1 << pol_sign_scheme */
	bool oaep;		/* takes oaep_hash */
} key_caps[] = {
	[POL_KEY_EC_P256] = { ASYM_OPS, POL_SIGN_ECDSA_SHA256,
			      1u << POL_SIGN_ECDSA_SHA256, false },
	[POL_KEY_EC_P384] = { ASYM_OPS, POL_SIGN_ECDSA_SHA384,
			      1u << POL_SIGN_ECDSA_SHA384, false },
	[POL_KEY_RSA_3072] = { ASYM_OPS | WRAP_OPS, POL_SIGN_RSA_PSS_SHA256,
			       (1u << POL_SIGN_RSA_PSS_SHA256) |
				   (1u << POL_SIGN_RSA_PKCS1_SHA256), true },
	[POL_KEY_AES_256] = { WRAP_OPS, POL_SIGN_NONE, 0, false },
};
_Static_assert(nitems(key_caps) == nitems(key_type_names),
	       "capabilities for every key type");

/* A position in the document, 1-based. */
typedef struct {
	unsigned line, col;
} loc;

/* Errors about the file as a whole point at its start. */
static const loc file_start = { 1, 1 };

typedef enum { N_SCALAR, N_SEQ, N_MAP } node_kind;

static const char *const kind_names[] = {
	[N_SCALAR] = "a scalar",
	[N_SEQ] = "a sequence",
	[N_MAP] = "a mapping",
};

typedef struct node node;
struct node {
	node *child;	 /* first child; a mapping's alternate key, value */
	node *next;	 /* next sibling */
	loc at;
	node_kind kind;
	bool plain;	 /* a scalar written without quotes */
	char str[];	 /* a scalar's text ("" for collections), no NUL inside */
};

/* The entries of a section by name, sorted, for duplicates and references. */
typedef struct {
	const node *name;
	size_t idx;	/* in the section's array */
} name_ref;

typedef struct {
	name_ref *refs;
	size_t n;
} name_index;

struct ctx {
	const char *file;	/* the document's name in messages */
	char *err;
	size_t errlen;
	char *base;		/* absolute directory for relative paths */
	const char *entry_kind; /* "token", ... while entry_name is set */
	const char *entry_name; /* the entry being read, for messages */
	node *root;
	name_index tokens, engagements, clients, custodians, keys;
	/* Per client, 1 + the index of the last key whose allow named it. */
	size_t *granted_in;
	const node *audit_key;	/* service.audit_key, checked against keys */
	/* The custodians' key files, which the policy digest covers too. */
	EVP_MD_CTX *key_files;
	pol_limits client_limits; /* service.limits: what clients start from */
	pol_policy *pol;
};

/* Tree building state: where the next node goes, and the tails of the
 * collections still open. */
struct builder {
	node **tail;
	node **open[MAX_DEPTH];
	unsigned depth;
};

static ct_err __attribute__((format(printf, 4, 5)))
perr(struct ctx *c, ct_err r, loc at, const char *fmt, ...)
{
	char msg[512], who[POL_NAME_MAX + 32] = "";
	va_list ap;
	size_t i;

	if (c->err == NULL || c->errlen == 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->entry_name != NULL)
		snprintf(who, sizeof(who), "%s \"%s\": ", c->entry_kind,
			 c->entry_name);
	snprintf(c->err, c->errlen, "%s:%u:%u: %s%s", c->file, at.line, at.col,
		 who, msg);
	/* The file name and tags may hold anything: keep control characters
	 * (newlines, terminal escapes) out of logs and terminals. */
	for (i = 0; c->err[i] != '\0'; i++)
		if ((unsigned char)c->err[i] < 0x20 || c->err[i] == 0x7f)
			c->err[i] = '?';
	return r;
}

static ct_err
nomem(struct ctx *c, loc at)
{
	return perr(c, CT_ERR_NOMEM, at, "out of memory");
}

static loc
mark_loc(yaml_mark_t m)
{
	return (loc){ (unsigned)m.line + 1, (unsigned)m.column + 1 };
}

/* libyaml gives only a byte offset for encoding errors. */
static loc
offset_loc(const unsigned char *buf, size_t len, size_t off)
{
	loc at = { 1, 1 };
	size_t i;

	for (i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			at.line++;
			at.col = 1;
		} else if ((buf[i] & 0xc0) != 0x80) /* not a continuation */
			at.col++;
	}
	return at;
}

static const char *
name_at(const char *const tab[], size_t n, size_t i)
{
	return i < n && tab[i] != NULL ? tab[i] : "unknown";
}

/* Index of s in tab, or n. */
static size_t
index_of(const char *const tab[], size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tab[i] != NULL && strcmp(tab[i], s) == 0)
			break;
	return i;
}

/* ---- pass one: events to tree ---- */

/* libyaml refuses raw control characters, but escapes ("\0", "\e",
 * "\x9b") make any of them.  NUL would cut a C string short, the others
 * end up in logs and terminals; no value in a policy needs one. */
static bool
has_control(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return true;
		/* U+0080..U+009F (C1) */
		if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 &&
		    u[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

static void
node_free(node *n)
{
	node *next;

	/* Recursion is bounded by MAX_DEPTH; siblings are a loop. */
	for (; n != NULL; n = next) {
		next = n->next;
		node_free(n->child);
		free(n);
	}
}

static ct_err
add_node(struct ctx *c, struct builder *b, const yaml_event_t *ev,
	 node_kind kind, const yaml_char_t *anchor, const yaml_char_t *tag)
{
	const char *value = "";
	size_t len = 0;
	loc at = mark_loc(ev->start_mark);
	node *n;

	/* Anchors and aliases make one node reachable many times (billion
	 * laughs) and tags change how a value reads: the format needs none. */
	if (anchor != NULL)
		return perr(c, CT_ERR_POLICY, at,
			    "anchors are not allowed (&%s)", anchor);
	if (tag != NULL)
		return perr(c, CT_ERR_POLICY, at, "tags are not allowed (%s)",
			    tag);
	if (kind == N_SCALAR) {
		value = (const char *)ev->data.scalar.value;
		len = ev->data.scalar.length;
		if (len > MAX_SCALAR)
			return perr(c, CT_ERR_POLICY, at,
				    "scalar longer than %u bytes", MAX_SCALAR);
		if (has_control(value, len))
			return perr(c, CT_ERR_POLICY, at,
				    "control character in scalar");
	} else if (b->depth == MAX_DEPTH)
		return perr(c, CT_ERR_POLICY, at,
			    "nesting deeper than %u levels", MAX_DEPTH);

	if ((n = calloc(1, sizeof(*n) + len + 1)) == NULL)
		return nomem(c, at);
	n->at = at;
	n->kind = kind;
	n->plain = kind == N_SCALAR &&
		   ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	memcpy(n->str, value, len);
	*b->tail = n;
	b->tail = &n->next;
	if (kind != N_SCALAR) {
		b->open[b->depth++] = b->tail;
		b->tail = &n->child;
	}
	return CT_OK;
}

static ct_err
yaml_failed(struct ctx *c, const yaml_parser_t *p, const unsigned char *buf,
	    size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "syntax error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return nomem(c, mark_loc(p->mark));
	case YAML_READER_ERROR:
		return perr(c, CT_ERR_POLICY,
			    offset_loc(buf, len, p->problem_offset), "%s",
			    problem);
	default:
		return perr(c, CT_ERR_POLICY, mark_loc(p->problem_mark),
			    "%s%s%s", problem, p->context != NULL ? " " : "",
			    p->context != NULL ? p->context : "");
	}
}

static ct_err
build_tree(struct ctx *c, const unsigned char *buf, size_t len)
{
	struct builder b = { .tail = &c->root };
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	ct_err r = CT_ERR_INTERNAL;

	memset(&ev, 0, sizeof(ev));
	if (!yaml_parser_initialize(&parser))
		return nomem(c, file_start);
	/* libyaml asserts on a NULL input, even an empty one. */
	yaml_parser_set_input_string(&parser,
				     len > 0 ? buf : (const unsigned char *)"",
				     len);
	/* No guessing from a BOM: UTF-16 input is an error like any other
	 * invalid UTF-8. */
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = yaml_failed(c, &parser, buf, len);
			goto out;
		}
		r = CT_OK;
		switch (ev.type) {
		case YAML_NO_EVENT:
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (c->root != NULL)
				r = perr(c, CT_ERR_POLICY,
					 mark_loc(ev.start_mark),
					 "more than one document");
			break;
		case YAML_ALIAS_EVENT:
			r = perr(c, CT_ERR_POLICY, mark_loc(ev.start_mark),
				 "aliases are not allowed (*%s)",
				 ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT:
			r = add_node(c, &b, &ev, N_SCALAR,
				     ev.data.scalar.anchor, ev.data.scalar.tag);
			break;
		case YAML_SEQUENCE_START_EVENT:
			r = add_node(c, &b, &ev, N_SEQ,
				     ev.data.sequence_start.anchor,
				     ev.data.sequence_start.tag);
			break;
		case YAML_MAPPING_START_EVENT:
			r = add_node(c, &b, &ev, N_MAP,
				     ev.data.mapping_start.anchor,
				     ev.data.mapping_start.tag);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			b.tail = b.open[--b.depth];
			break;
		}
		yaml_event_delete(&ev);
		if (r != CT_OK)
			goto out;
	}
	r = CT_OK;
out:
	yaml_event_delete(&ev);
	yaml_parser_delete(&parser);
	return r;
}

/* ---- pass two: tree to policy ---- */

static size_t
n_children(const node *n)
{
	const node *it;
	size_t count = 0;

	for (it = n->child; it != NULL; it = it->next)
		count++;
	return count;
}

static ct_err
expect(struct ctx *c, const node *n, node_kind kind, const char *what)
{
	if (n->kind == kind)
		return CT_OK;
	return perr(c, CT_ERR_POLICY, n->at, "%s: expected %s, found %s", what,
		    kind_names[kind], kind_names[n->kind]);
}

/* The values of a mapping with fixed fields: vals[i] belongs to names[i],
 * NULL when absent.  Unknown and repeated fields are errors. */
static ct_err
get_fields(struct ctx *c, const node *map, const char *what,
	   const char *const names[], size_t n, const node *vals[])
{
	const node *k;
	size_t i;
	ct_err r;

	for (i = 0; i < n; i++)
		vals[i] = NULL;
	if ((r = expect(c, map, N_MAP, what)) != CT_OK)
		return r;
	for (k = map->child; k != NULL; k = k->next->next) {
		if (k->kind != N_SCALAR)
			return perr(c, CT_ERR_POLICY, k->at,
				    "%s: keys must be scalars", what);
		if ((i = index_of(names, n, k->str)) == n)
			return perr(c, CT_ERR_POLICY, k->at,
				    "unknown field \"%s\" in %s", k->str, what);
		if (vals[i] != NULL)
			return perr(c, CT_ERR_POLICY, k->at,
				    "duplicate key \"%s\" in %s", k->str, what);
		vals[i] = k->next;
	}
	return CT_OK;
}

static ct_err
require(struct ctx *c, const node *map, const node *val, const char *field)
{
	if (val != NULL)
		return CT_OK;
	return perr(c, CT_ERR_POLICY, map->at, "missing field \"%s\"", field);
}

/* Two fields that exclude each other; the one written second is wrong. */
static ct_err
exclusive(struct ctx *c, const node *a, const node *b, const char *na,
	  const char *nb)
{
	bool a_last;

	if (a == NULL || b == NULL)
		return CT_OK;
	a_last = a->at.line > b->at.line ||
		 (a->at.line == b->at.line && a->at.col > b->at.col);
	return perr(c, CT_ERR_POLICY, a_last ? a->at : b->at,
		    "%s and %s are exclusive", na, nb);
}

/* Exactly one of two fields. */
static ct_err
one_of(struct ctx *c, const node *map, const node *a, const node *b,
       const char *na, const char *nb)
{
	if (a == NULL && b == NULL)
		return perr(c, CT_ERR_POLICY, map->at, "needs %s or %s", na,
			    nb);
	return exclusive(c, a, b, na, nb);
}

static ct_err
get_string(struct ctx *c, const node *n, const char *field, const char **s)
{
	ct_err r;

	*s = n->str;
	if ((r = expect(c, n, N_SCALAR, field)) != CT_OK)
		return r;
	if (n->str[0] == '\0')
		return perr(c, CT_ERR_POLICY, n->at, "%s: empty value", field);
	return CT_OK;
}

static ct_err
dup_string(struct ctx *c, const node *n, const char *field, char **out)
{
	const char *s;
	ct_err r;

	if ((r = get_string(c, n, field, &s)) != CT_OK)
		return r;
	if ((*out = strdup(s)) == NULL)
		return nomem(c, n->at);
	return CT_OK;
}

static ct_err
check_name(struct ctx *c, const node *n, const char *field)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789._-";
	const char *s;
	size_t len;
	ct_err r;

	if ((r = get_string(c, n, field, &s)) != CT_OK)
		return r;
	len = strlen(s);
	if (len > POL_NAME_MAX || strspn(s, ok) != len)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: \"%s\" is not a valid name (1 to %d of "
			    "A-Z a-z 0-9 . _ -)", field, s, POL_NAME_MAX);
	return CT_OK;
}

/* A plain decimal integer in [min, max].  No sign, no leading zero (YAML
 * 1.1 reads 010 as octal), no junk. */
static ct_err
get_uint(struct ctx *c, const node *n, const char *field, unsigned long min,
	 unsigned long max, unsigned long *v)
{
	const char *s = n->str;
	char *end;
	ct_err r;

	if ((r = expect(c, n, N_SCALAR, field)) != CT_OK)
		return r;
	if (!n->plain)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: a number must not be quoted", field);
	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s) ||
	    (s[0] == '0' && s[1] != '\0'))
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: \"%s\" is not a decimal integer", field, s);
	errno = 0;
	*v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v < min || *v > max)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: %s is out of range (%lu to %lu)", field, s,
			    min, max);
	return CT_OK;
}

static ct_err
get_enum(struct ctx *c, const node *n, const char *field,
	 const char *const names[], size_t count, size_t *v)
{
	ct_err r;

	if ((r = expect(c, n, N_SCALAR, field)) != CT_OK)
		return r;
	if ((*v = index_of(names, count, n->str)) == count)
		return perr(c, CT_ERR_POLICY, n->at, "%s: unknown value \"%s\"",
			    field, n->str);
	return CT_OK;
}

/* Plain true or false only: YAML 1.1's yes, on and y are typos here. */
static ct_err
get_bool(struct ctx *c, const node *n, const char *field, bool *v)
{
	static const char *const names[] = { "false", "true" };
	size_t e;
	ct_err r;

	if ((r = get_enum(c, n, field, names, nitems(names), &e)) != CT_OK)
		return r;
	if (!n->plain)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: a boolean must not be quoted", field);
	*v = e == 1;
	return CT_OK;
}

/* "dir" + "/" + the first len bytes of rel. */
static char *
join(const char *dir, const char *rel, size_t len)
{
	size_t dlen = strlen(dir);
	size_t sep = dlen > 0 && dir[dlen - 1] != '/';
	char *s;

	if ((s = malloc(dlen + sep + len + 1)) == NULL)
		return NULL;
	memcpy(s, dir, dlen);
	memcpy(s + dlen, "/", sep);
	memcpy(s + dlen + sep, rel, len);
	s[dlen + sep + len] = '\0';
	return s;
}

/* A path, made absolute against the policy's directory; relative_ok is
 * false where only an absolute path is safe (a module to dlopen). */
static ct_err
get_path(struct ctx *c, const node *n, const char *field, bool relative_ok,
	 char **out)
{
	const char *s, *dir;
	ct_err r;

	if ((r = get_string(c, n, field, &s)) != CT_OK)
		return r;
	if (s[0] != '/' && !relative_ok)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: \"%s\" is not an absolute path", field, s);
	dir = s[0] == '/' ? "" : c->base;
	if (strlen(dir) + 1 + strlen(s) >= PATH_MAX)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: path longer than %d bytes", field,
			    PATH_MAX - 1);
	if ((*out = join(dir, s, strlen(s))) == NULL)
		return nomem(c, n->at);
	return CT_OK;
}

static bool
find_name(const name_index *ix, const char *s, size_t *idx)
{
	size_t lo = 0, hi = ix->n, mid;
	int d;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((d = strcmp(s, ix->refs[mid].name->str)) == 0) {
			*idx = ix->refs[mid].idx;
			return true;
		}
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* A reference by name to an entry of an earlier section. */
static ct_err
get_ref(struct ctx *c, const node *n, const char *what, const name_index *ix,
	size_t *idx)
{
	const char *s;
	ct_err r;

	if ((r = get_string(c, n, what, &s)) != CT_OK)
		return r;
	if (!find_name(ix, s, idx))
		return perr(c, CT_ERR_POLICY, n->at, "unknown %s \"%s\"", what,
			    s);
	return CT_OK;
}

static ct_err
get_time(struct ctx *c, const node *n, const char *field, time_t *t)
{
	const char *s, *why;
	ct_err r;

	if ((r = get_string(c, n, field, &s)) != CT_OK)
		return r;
	if (pol_time_parse(s, strlen(s), t, &why) != CT_OK)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: \"%s\" is not an RFC 3339 time: %s", field, s,
			    why);
	return CT_OK;
}

/* When an entry ends: at `until`, at the end of `engagement`, or never
 * when both nodes are NULL. */
static ct_err
get_expiry(struct ctx *c, const node *until, const node *engagement,
	   pol_expiry *e)
{
	ct_err r;

	*e = (pol_expiry){ .engagement = POL_NONE };
	if ((r = exclusive(c, until, engagement, "until", "engagement")) !=
	    CT_OK)
		return r;
	if (until != NULL) {
		e->set = true;
		return get_time(c, until, "until", &e->until);
	}
	if (engagement != NULL) {
		if ((r = get_ref(c, engagement, "engagement", &c->engagements,
				 &e->engagement)) != CT_OK)
			return r;
		e->set = true;
		e->until = c->pol->engagements[e->engagement].until;
	}
	return CT_OK;
}

/* Keep in e whichever of e and other ends first. */
static void
expiry_earlier(pol_expiry *e, const pol_expiry *other)
{
	if (other->set && (!e->set || other->until < e->until))
		*e = *other;
}

static int
ref_cmp(const void *a, const void *b)
{
	const name_ref *x = a, *y = b;
	int d = strcmp(x->name->str, y->name->str);

	if (d != 0)
		return d;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sort the names of a section; report the first repeat in document order. */
static ct_err
sort_names(struct ctx *c, name_index *ix, const char *kind)
{
	const name_ref *first = NULL, *again = NULL;
	size_t i;

	if (ix->n < 2)
		return CT_OK;
	qsort(ix->refs, ix->n, sizeof(*ix->refs), ref_cmp);
	for (i = 1; i < ix->n; i++) {
		if (strcmp(ix->refs[i - 1].name->str,
			   ix->refs[i].name->str) != 0)
			continue;
		if (again == NULL || ix->refs[i].idx < again->idx) {
			first = &ix->refs[i - 1];
			again = &ix->refs[i];
		}
	}
	if (again == NULL)
		return CT_OK;
	return perr(c, CT_ERR_POLICY, again->name->at,
		    "duplicate %s name \"%s\" (first at line %u)", kind,
		    again->name->str, first->name->at.line);
}

/* Resolve a user or group name now, so that a typo fails the load instead
 * of matching nobody.  A user's primary group goes to *pgid when asked. */
static ct_err
lookup_id(struct ctx *c, const node *n, const char *field, bool group,
       unsigned long *id, unsigned long *pgid)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char *buf = NULL, *nbuf, eb[128];
	const char *name;
	size_t size;
	int rc;
	ct_err r = CT_ERR_INTERNAL;

	if ((r = get_string(c, n, field, &name)) != CT_OK)
		goto out;
	for (size = 1024;; size *= 2) {
		if ((nbuf = realloc(buf, size)) == NULL) {
			r = nomem(c, n->at);
			goto out;
		}
		buf = nbuf;
		rc = group ? getgrnam_r(name, &gr, buf, size, &grp) :
			     getpwnam_r(name, &pw, buf, size, &pwp);
		if (rc != ERANGE || size >= PWBUF_MAX)
			break;
	}
	if (rc != 0 && rc != ENOENT) {
		r = perr(c, CT_ERR_IO, n->at, "%s: cannot look up \"%s\": %s",
			 field, name, strerror_r(rc, eb, sizeof(eb)));
		goto out;
	}
	if (grp == NULL && pwp == NULL) {
		r = perr(c, CT_ERR_POLICY, n->at, "unknown %s \"%s\"", field,
			 name);
		goto out;
	}
	*id = group ? grp->gr_gid : pwp->pw_uid;
	if (pgid != NULL && !group)
		*pgid = pwp->pw_gid;
	r = CT_OK;
out:
	free(buf);
	return r;
}

/* One identity of a client: a number (uid, gid) or a name (user, group). */
static ct_err
get_identity(struct ctx *c, const node *num, const node *name, bool group,
	  bool *has, unsigned long *id)
{
	const char *nf = group ? "gid" : "uid", *sf = group ? "group" : "user";
	ct_err r;

	*has = num != NULL || name != NULL;
	*id = 0;
	if ((r = exclusive(c, num, name, nf, sf)) != CT_OK)
		return r;
	if (num != NULL)
		return get_uint(c, num, nf, 0, ID_MAX, id);
	if (name != NULL)
		return lookup_id(c, name, sf, group, id, NULL);
	return CT_OK;
}

enum { LIM_RATE, LIM_BURST, LIM_CONNECTIONS, LIM_N_ };
static const char *const limit_fields[LIM_N_] = {
	[LIM_RATE] = "rate",
	[LIM_BURST] = "burst",
	[LIM_CONNECTIONS] = "connections",
};

/* A limits mapping over the defaults dflt.  A rate given without a burst
 * gets a burst of one second's worth. */
static ct_err
parse_limits(struct ctx *c, const node *map, const char *what,
	     const pol_limits *dflt, pol_limits *out)
{
	const node *v[LIM_N_];
	unsigned long n;
	ct_err r;

	*out = *dflt;
	if ((r = get_fields(c, map, what, limit_fields, LIM_N_, v)) != CT_OK)
		return r;
	if (v[LIM_RATE] != NULL) {
		if ((r = get_uint(c, v[LIM_RATE], "rate", 0, MAX_RATE, &n)) !=
		    CT_OK)
			return r;
		out->rate = (uint32_t)n;
		out->burst = n > 0 ? (uint32_t)n : 1;
	}
	if (v[LIM_BURST] != NULL) {
		if ((r = get_uint(c, v[LIM_BURST], "burst", 1, MAX_RATE,
				  &n)) != CT_OK)
			return r;
		out->burst = (uint32_t)n;
	}
	if (v[LIM_CONNECTIONS] != NULL) {
		if ((r = get_uint(c, v[LIM_CONNECTIONS], "connections", 1,
				  MAX_CONNECTIONS, &n)) != CT_OK)
			return r;
		out->connections = (uint32_t)n;
	}
	return CT_OK;
}

/* A duration with a unit: "90d", "24h", "15m", "30s", in [min, max]
 * seconds.  A unit is required so that "90" is never read as the wrong one. */
static ct_err
get_duration(struct ctx *c, const node *n, const char *field, uint64_t min,
	     uint64_t max, uint64_t *secs)
{
	static const struct {
		char unit;
		uint64_t secs;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	const char *s = n->str;
	size_t len = strlen(s), i, digits = len > 0 ? len - 1 : 0;
	uint64_t v = 0;
	ct_err r;

	if ((r = expect(c, n, N_SCALAR, field)) != CT_OK)
		return r;
	for (i = 0; i < nitems(units) && len > 0; i++)
		if (s[len - 1] == units[i].unit)
			break;
	if (len < 2 || i == nitems(units) || strspn(s, "0123456789") != digits ||
	    s[0] == '0' || digits > 9)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: \"%s\" is not a duration such as 90d, 24h, "
			    "15m or 30s", field, s);
	for (len = 0; len < digits; len++)
		v = v * 10 + (uint64_t)(s[len] - '0');
	v *= units[i].secs;
	if (v < min || v > max)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: %s is out of range (%llu to %llu seconds)",
			    field, s, (unsigned long long)min,
			    (unsigned long long)max);
	*secs = v;
	return CT_OK;
}

enum { SVC_SOCKET, SVC_AUDIT_LOG, SVC_WORKERS, SVC_STATE, SVC_AUDIT_KEY,
       SVC_CP_LINES, SVC_CP_SECONDS, SVC_ROTATE_BYTES, SVC_USER, SVC_GROUP,
       SVC_ALLOW_ROOT, SVC_LIMITS, SVC_UNKNOWN_LIMITS, SVC_MAX_BAD,
       SVC_TOKEN_TIMEOUT, SVC_N_ };
static const char *const service_fields[SVC_N_] = {
	[SVC_SOCKET] = "socket",
	[SVC_AUDIT_LOG] = "audit_log",
	[SVC_WORKERS] = "workers",
	[SVC_STATE] = "state",
	[SVC_AUDIT_KEY] = "audit_key",
	[SVC_CP_LINES] = "checkpoint_lines",
	[SVC_CP_SECONDS] = "checkpoint_seconds",
	[SVC_ROTATE_BYTES] = "audit_rotate_bytes",
	[SVC_USER] = "user",
	[SVC_GROUP] = "group",
	[SVC_ALLOW_ROOT] = "allow_root",
	[SVC_LIMITS] = "limits",
	[SVC_UNKNOWN_LIMITS] = "unknown_limits",
	[SVC_MAX_BAD] = "max_bad_requests",
	[SVC_TOKEN_TIMEOUT] = "token_timeout",
};

/* The audit fields of service: the key is resolved once keys are read. */
static ct_err
parse_service_audit(struct ctx *c, const node *const v[])
{
	pol_policy *p = c->pol;
	const node *n;
	ct_err r;

	if ((n = v[SVC_AUDIT_KEY]) != NULL) {
		if ((r = check_name(c, n, "audit_key")) != CT_OK ||
		    (r = dup_string(c, n, "audit_key", &p->audit_key)) != CT_OK)
			return r;
		c->audit_key = n;
		p->checkpoint_lines = DEFAULT_CHECKPOINT_LINES;
		p->checkpoint_seconds = DEFAULT_CHECKPOINT_SECONDS;
	}
	if ((n = v[SVC_CP_LINES] != NULL ? v[SVC_CP_LINES] : v[SVC_CP_SECONDS])
	    != NULL && p->audit_key == NULL)
		return perr(c, CT_ERR_POLICY, n->at,
			    "%s: checkpoints need audit_key", n == v[SVC_CP_LINES] ?
			    "checkpoint_lines" : "checkpoint_seconds");
	if (v[SVC_CP_LINES] != NULL &&
	    (r = get_uint(c, v[SVC_CP_LINES], "checkpoint_lines", 1,
			  MAX_CHECKPOINT_LINES, &p->checkpoint_lines)) != CT_OK)
		return r;
	if (v[SVC_CP_SECONDS] != NULL &&
	    (r = get_uint(c, v[SVC_CP_SECONDS], "checkpoint_seconds", 1,
			  MAX_CHECKPOINT_SECONDS, &p->checkpoint_seconds)) !=
		CT_OK)
		return r;
	if (v[SVC_ROTATE_BYTES] != NULL)
		return get_uint(c, v[SVC_ROTATE_BYTES], "audit_rotate_bytes",
				MIN_ROTATE_BYTES, MAX_ROTATE_BYTES,
				&p->audit_rotate_bytes);
	return CT_OK;
}

/* Whom the daemon runs as, and the limits every client starts from. */
static ct_err
parse_service_more(struct ctx *c, const node *const v[])
{
	pol_policy *p = c->pol;
	unsigned long n, g = 0;
	ct_err r;

	if (v[SVC_USER] != NULL) {
		if ((r = lookup_id(c, v[SVC_USER], "user", false, &n, &g)) !=
			CT_OK ||
		    (r = dup_string(c, v[SVC_USER], "user", &p->run_user)) !=
			CT_OK)
			return r;
		p->run_uid = (uid_t)n;
		p->run_gid = (gid_t)g;
	}
	if (v[SVC_GROUP] != NULL) {
		if (v[SVC_USER] == NULL)
			return perr(c, CT_ERR_POLICY, v[SVC_GROUP]->at,
				    "group: needs user");
		if ((r = lookup_id(c, v[SVC_GROUP], "group", true, &n,
				   NULL)) != CT_OK)
			return r;
		p->has_run_group = true;
		p->run_gid = (gid_t)n;
	}
	if (v[SVC_ALLOW_ROOT] != NULL &&
	    (r = get_bool(c, v[SVC_ALLOW_ROOT], "allow_root",
			  &p->allow_root)) != CT_OK)
		return r;
	if (v[SVC_LIMITS] != NULL &&
	    (r = parse_limits(c, v[SVC_LIMITS], "limits",
			      &client_limits_default, &c->client_limits)) !=
		CT_OK)
		return r;
	if (v[SVC_UNKNOWN_LIMITS] != NULL &&
	    (r = parse_limits(c, v[SVC_UNKNOWN_LIMITS], "unknown_limits",
			      &unknown_limits_default, &p->unknown_limits)) !=
		CT_OK)
		return r;
	if (v[SVC_MAX_BAD] != NULL) {
		if ((r = get_uint(c, v[SVC_MAX_BAD], "max_bad_requests", 1,
				  MAX_BAD, &n)) != CT_OK)
			return r;
		p->max_bad_requests = (unsigned)n;
	}
	if (v[SVC_TOKEN_TIMEOUT] != NULL)
		return get_duration(c, v[SVC_TOKEN_TIMEOUT], "token_timeout", 1,
				    3600, &p->token_timeout);
	return CT_OK;
}

static ct_err
parse_service(struct ctx *c, const node *map)
{
	pol_policy *p = c->pol;
	const node *v[SVC_N_];
	unsigned long workers;
	ct_err r;

	if ((r = get_fields(c, map, "service", service_fields, SVC_N_, v)) !=
	    CT_OK)
		return r;
	if (v[SVC_SOCKET] != NULL) {
		if ((r = get_path(c, v[SVC_SOCKET], "socket", true,
				  &p->socket)) != CT_OK)
			return r;
		/* Fail now rather than at bind(2). */
		if (strlen(p->socket) > SUN_PATH_MAX)
			return perr(c, CT_ERR_POLICY, v[SVC_SOCKET]->at,
				    "socket: path longer than %zu bytes",
				    SUN_PATH_MAX);
	}
	if (v[SVC_AUDIT_LOG] != NULL &&
	    (r = get_path(c, v[SVC_AUDIT_LOG], "audit_log", true,
			  &p->audit_log)) != CT_OK)
		return r;
	if (v[SVC_STATE] != NULL &&
	    (r = get_path(c, v[SVC_STATE], "state", true, &p->state)) != CT_OK)
		return r;
	if (v[SVC_WORKERS] != NULL) {
		if ((r = get_uint(c, v[SVC_WORKERS], "workers", 1, MAX_WORKERS,
				  &workers)) != CT_OK)
			return r;
		p->workers = (unsigned)workers;
	}
	if ((r = parse_service_audit(c, v)) != CT_OK)
		return r;
	return parse_service_more(c, v);
}

/* Every section entry has "name" as field 0. */
enum { TOK_NAME, TOK_MODULE, TOK_LABEL, TOK_URI, TOK_PIN_FILE, TOK_PIN_ENV,
       TOK_READER, TOK_ATR, TOK_N_ };
static const char *const token_fields[TOK_N_] = {
	[TOK_NAME] = "name",
	[TOK_MODULE] = "module",
	[TOK_LABEL] = "label",
	[TOK_URI] = "uri",
	[TOK_PIN_FILE] = "pin_file",
	[TOK_PIN_ENV] = "pin_env",
	[TOK_READER] = "reader",
	[TOK_ATR] = "atr",
};

/* reader: the exact PC/SC name (the tree refuses control characters in
 * any scalar); atr: hex digits only, as the card sends it, and only with a
 * reader. */
static ct_err
parse_reader(struct ctx *c, const node *map, const node *const v[],
	     pol_token *t)
{
	const char *s;
	ct_err r;

	if (v[TOK_ATR] != NULL &&
	    (r = require(c, map, v[TOK_READER], "reader")) != CT_OK)
		return r;
	if (v[TOK_READER] == NULL)
		return CT_OK;
	if ((r = dup_string(c, v[TOK_READER], "reader", &t->reader)) != CT_OK)
		return r;
	if (strlen(t->reader) > POL_READER_MAX)
		return perr(c, CT_ERR_POLICY, v[TOK_READER]->at,
			    "reader: longer than %d bytes", POL_READER_MAX);
	if (v[TOK_ATR] == NULL)
		return CT_OK;
	if ((r = get_string(c, v[TOK_ATR], "atr", &s)) != CT_OK)
		return r;
	/* OpenSSL's parser alone would take "3b:88" too: digits only. */
	if (strspn(s, "0123456789abcdefABCDEF") != strlen(s) ||
	    strlen(s) % 2 != 0 || strlen(s) > 2 * POL_ATR_MAX ||
	    OPENSSL_hexstr2buf_ex(t->atr, sizeof(t->atr), &t->atr_len, s,
				  '\0') != 1)
		return perr(c, CT_ERR_POLICY, v[TOK_ATR]->at,
			    "atr: \"%s\" is not 1 to %d bytes in hex", s,
			    POL_ATR_MAX);
	return CT_OK;
}

static ct_err
parse_token(struct ctx *c, const node *map, const node *const v[], size_t i)
{
	static const char env_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"abcdefghijklmnopqrstuvwxyz0123456789_";
	pol_token *t = &c->pol->tokens[i];
	ct_err r;

	t->line = map->at.line;
	if ((r = dup_string(c, v[TOK_NAME], "name", &t->name)) != CT_OK ||
	    (r = require(c, map, v[TOK_MODULE], "module")) != CT_OK ||
	    (r = get_path(c, v[TOK_MODULE], "module", false, &t->module)) !=
		CT_OK ||
	    (r = one_of(c, map, v[TOK_LABEL], v[TOK_URI], "label", "uri")) !=
		CT_OK)
		return r;
	if (v[TOK_LABEL] != NULL) {
		if ((r = dup_string(c, v[TOK_LABEL], "label", &t->label)) !=
		    CT_OK)
			return r;
		/* A longer label cannot match any token. */
		if (strlen(t->label) > MAX_LABEL)
			return perr(c, CT_ERR_POLICY, v[TOK_LABEL]->at,
				    "label: longer than %d bytes", MAX_LABEL);
	} else {
		if ((r = dup_string(c, v[TOK_URI], "uri", &t->uri)) != CT_OK)
			return r;
		if (strncmp(t->uri, "pkcs11:", 7) != 0)
			return perr(c, CT_ERR_POLICY, v[TOK_URI]->at,
				    "uri: \"%s\" does not start with "
				    "\"pkcs11:\"", t->uri);
	}
	if ((r = parse_reader(c, map, v, t)) != CT_OK ||
	    (r = one_of(c, map, v[TOK_PIN_FILE], v[TOK_PIN_ENV], "pin_file",
			"pin_env")) != CT_OK)
		return r;
	if (v[TOK_PIN_FILE] != NULL)
		return get_path(c, v[TOK_PIN_FILE], "pin_file", true,
				&t->pin_file);
	if ((r = dup_string(c, v[TOK_PIN_ENV], "pin_env", &t->pin_env)) !=
	    CT_OK)
		return r;
	if (strspn(t->pin_env, env_chars) != strlen(t->pin_env) ||
	    (t->pin_env[0] >= '0' && t->pin_env[0] <= '9'))
		return perr(c, CT_ERR_POLICY, v[TOK_PIN_ENV]->at,
			    "pin_env: \"%s\" is not an environment variable "
			    "name", t->pin_env);
	return CT_OK;
}

enum { ENG_NAME, ENG_UNTIL, ENG_DESCRIPTION, ENG_N_ };
static const char *const engagement_fields[ENG_N_] = {
	[ENG_NAME] = "name",
	[ENG_UNTIL] = "until",
	[ENG_DESCRIPTION] = "description",
};

static ct_err
parse_engagement(struct ctx *c, const node *map, const node *const v[],
		 size_t i)
{
	pol_engagement *e = &c->pol->engagements[i];
	ct_err r;

	e->line = map->at.line;
	if ((r = dup_string(c, v[ENG_NAME], "name", &e->name)) != CT_OK ||
	    (r = require(c, map, v[ENG_UNTIL], "until")) != CT_OK ||
	    (r = get_time(c, v[ENG_UNTIL], "until", &e->until)) != CT_OK)
		return r;
	if (v[ENG_DESCRIPTION] != NULL)
		return dup_string(c, v[ENG_DESCRIPTION], "description",
				  &e->description);
	return CT_OK;
}

enum { CLI_NAME, CLI_UID, CLI_USER, CLI_GID, CLI_GROUP, CLI_UNTIL,
       CLI_ENGAGEMENT, CLI_LIMITS, CLI_N_ };
static const char *const client_fields[CLI_N_] = {
	[CLI_NAME] = "name",
	[CLI_UID] = "uid",
	[CLI_USER] = "user",
	[CLI_GID] = "gid",
	[CLI_GROUP] = "group",
	[CLI_UNTIL] = "until",
	[CLI_ENGAGEMENT] = "engagement",
	[CLI_LIMITS] = "limits",
};

static ct_err
parse_client(struct ctx *c, const node *map, const node *const v[], size_t i)
{
	pol_client *cl = &c->pol->clients[i];
	unsigned long id;
	ct_err r;

	cl->line = map->at.line;
	if ((r = dup_string(c, v[CLI_NAME], "name", &cl->name)) != CT_OK ||
	    (r = get_identity(c, v[CLI_UID], v[CLI_USER], false, &cl->has_uid,
			   &id)) != CT_OK)
		return r;
	cl->uid = (uid_t)id;
	if ((r = get_identity(c, v[CLI_GID], v[CLI_GROUP], true, &cl->has_gid,
			   &id)) != CT_OK)
		return r;
	cl->gid = (gid_t)id;
	if (!cl->has_uid && !cl->has_gid)
		return perr(c, CT_ERR_POLICY, map->at,
			    "needs uid, user, gid or group");
	if ((r = get_expiry(c, v[CLI_UNTIL], v[CLI_ENGAGEMENT],
			    &cl->expiry)) != CT_OK)
		return r;
	cl->limits = c->client_limits;
	if (v[CLI_LIMITS] != NULL)
		return parse_limits(c, v[CLI_LIMITS], "limits",
				    &c->client_limits, &cl->limits);
	return CT_OK;
}

#define DAY (UINT64_C(86400))
#define QUORUM_MAX 32

enum { Q_M, Q_OF, Q_N_ };
static const char *const quorum_fields[Q_N_] = { [Q_M] = "m", [Q_OF] = "of" };

/* {m: 2, of: [alice, bob, carol]}: distinct custodians with the custodian
 * role, 1 <= m <= their number. */
static ct_err
parse_quorum(struct ctx *c, const node *map, const char *field, pol_quorum *q)
{
	const node *v[Q_N_], *it;
	unsigned long m;
	size_t n, i, ci;
	ct_err r;

	if ((r = get_fields(c, map, field, quorum_fields, Q_N_, v)) != CT_OK ||
	    (r = require(c, map, v[Q_M], "m")) != CT_OK ||
	    (r = require(c, map, v[Q_OF], "of")) != CT_OK ||
	    (r = expect(c, v[Q_OF], N_SEQ, "of")) != CT_OK)
		return r;
	n = n_children(v[Q_OF]);
	if (n == 0 || n > QUORUM_MAX)
		return perr(c, CT_ERR_POLICY, v[Q_OF]->at,
			    "%s: of: lists 1 to %d custodians", field,
			    QUORUM_MAX);
	if ((r = get_uint(c, v[Q_M], "m", 1, n, &m)) != CT_OK)
		return r;
	if ((q->of = calloc(n, sizeof(*q->of))) == NULL)
		return nomem(c, v[Q_OF]->at);
	for (it = v[Q_OF]->child; it != NULL; it = it->next) {
		if ((r = get_ref(c, it, "custodian", &c->custodians, &ci)) !=
		    CT_OK)
			return r;
		if ((c->pol->custodians[ci].roles & POL_ROLE_CUSTODIAN) == 0)
			return perr(c, CT_ERR_POLICY, it->at,
				    "%s: \"%s\" does not have the custodian "
				    "role", field, it->str);
		for (i = 0; i < q->n_of; i++)
			if (q->of[i] == ci)
				return perr(c, CT_ERR_POLICY, it->at,
					    "%s: \"%s\" listed twice", field,
					    it->str);
		q->of[q->n_of++] = ci;
	}
	q->m = (unsigned)m;
	return CT_OK;
}

/* The public half of a custodian's card key, from a PEM public key or
 * certificate: EC P-256/P-384 or RSA of at least 2048 bits. */
static ct_err
load_custodian_key(struct ctx *c, const node *n, bool cert, EVP_PKEY **out)
{
	char *path = NULL, buf[16384];
	size_t len = 0;
	FILE *f = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	int type, bits;
	ct_err r;

	if ((r = get_path(c, n, cert ? "certificate" : "public_key", true,
			  &path)) != CT_OK)
		return r;
	if ((f = fopen(path, "rbe")) == NULL ||
	    (len = fread(buf, 1, sizeof(buf), f)) == 0 || len == sizeof(buf) ||
	    ferror(f))
		r = perr(c, CT_ERR_IO, n->at, "cannot read %s (or larger than "
			 "%zu bytes)", path, sizeof(buf) - 1);
	/* Replacing a custodian's key file is a policy change: it needs the
	 * quorum like an edit of the document. */
	else if ((c->key_files == NULL &&
		  ((c->key_files = EVP_MD_CTX_new()) == NULL ||
		   EVP_DigestInit_ex(c->key_files, EVP_sha256(), NULL) != 1)) ||
		 EVP_DigestUpdate(c->key_files, path, strlen(path) + 1) != 1 ||
		 EVP_DigestUpdate(c->key_files, &len, sizeof(len)) != 1 ||
		 EVP_DigestUpdate(c->key_files, buf, len) != 1)
		r = perr(c, CT_ERR_INTERNAL, n->at, "SHA-256 failed");
	else if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		r = nomem(c, n->at);
	else if (cert && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		*out = X509_get_pubkey(x);
	else if (!cert)
		*out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (r == CT_OK && *out == NULL)
		r = perr(c, CT_ERR_POLICY, n->at, "%s: no PEM %s in it", path,
			 cert ? "certificate" : "public key");
	if (r == CT_OK) {
		type = EVP_PKEY_get_base_id(*out);
		bits = EVP_PKEY_get_bits(*out);
		if (!(type == EVP_PKEY_EC && (bits == 256 || bits == 384)) &&
		    !(type == EVP_PKEY_RSA && bits >= 2048))
			r = perr(c, CT_ERR_POLICY, n->at,
				 "%s: key must be EC P-256, P-384 or RSA of "
				 "at least 2048 bits", path);
	}
	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	if (f != NULL)
		fclose(f);
	free(path);
	return r;
}

static const char *const role_names[] = { "custodian", "security-officer" };

enum { CUS_NAME, CUS_PUBLIC_KEY, CUS_CERT, CUS_ROLES, CUS_UID, CUS_USER,
       CUS_UNTIL, CUS_ENGAGEMENT, CUS_N_ };
static const char *const custodian_fields[CUS_N_] = {
	[CUS_NAME] = "name",
	[CUS_PUBLIC_KEY] = "public_key",
	[CUS_CERT] = "certificate",
	[CUS_ROLES] = "roles",
	[CUS_UID] = "uid",
	[CUS_USER] = "user",
	[CUS_UNTIL] = "until",
	[CUS_ENGAGEMENT] = "engagement",
};

static ct_err
parse_custodian(struct ctx *c, const node *map, const node *const v[],
		size_t i)
{
	pol_custodian *cu = &c->pol->custodians[i];
	const node *it;
	unsigned long id;
	size_t e;
	ct_err r;

	cu->line = map->at.line;
	if ((r = dup_string(c, v[CUS_NAME], "name", &cu->name)) != CT_OK ||
	    (r = one_of(c, map, v[CUS_PUBLIC_KEY], v[CUS_CERT], "public_key",
			"certificate")) != CT_OK ||
	    (r = load_custodian_key(c, v[CUS_CERT] ? v[CUS_CERT] :
				    v[CUS_PUBLIC_KEY], v[CUS_CERT] != NULL,
				    &cu->pub)) != CT_OK ||
	    (r = require(c, map, v[CUS_ROLES], "roles")) != CT_OK ||
	    (r = expect(c, v[CUS_ROLES], N_SEQ, "roles")) != CT_OK)
		return r;
	for (it = v[CUS_ROLES]->child; it != NULL; it = it->next) {
		if ((r = get_enum(c, it, "role", role_names, nitems(role_names),
				  &e)) != CT_OK)
			return r;
		if (cu->roles & (1u << e))
			return perr(c, CT_ERR_POLICY, it->at,
				    "role \"%s\" listed twice", it->str);
		cu->roles |= 1u << e;
	}
	if (cu->roles == 0)
		return perr(c, CT_ERR_POLICY, v[CUS_ROLES]->at,
			    "roles: at least one role is needed");
	if ((r = get_identity(c, v[CUS_UID], v[CUS_USER], false, &cu->has_uid,
			      &id)) != CT_OK)
		return r;
	cu->uid = (uid_t)id;
	if ((cu->roles & POL_ROLE_OFFICER) && !cu->has_uid)
		return perr(c, CT_ERR_POLICY, map->at,
			    "a security-officer needs uid or user");
	return get_expiry(c, v[CUS_UNTIL], v[CUS_ENGAGEMENT], &cu->expiry);
}

enum { GOV_QUORUM, GOV_POLICY_CHANGE, GOV_UNFREEZE, GOV_BACKUP, GOV_RESTORE,
       GOV_TTL, GOV_AUTO_FREEZE, GOV_N_ };
static const char *const governance_fields[GOV_N_] = {
	[GOV_QUORUM] = "quorum",
	[GOV_POLICY_CHANGE] = "policy_change",
	[GOV_UNFREEZE] = "unfreeze",
	[GOV_BACKUP] = "backup",
	[GOV_RESTORE] = "restore",
	[GOV_TTL] = "approval_ttl",
	[GOV_AUTO_FREEZE] = "auto_freeze",
};

enum { AF_REFUSALS, AF_WINDOW, AF_N_ };
static const char *const auto_freeze_fields[AF_N_] = {
	[AF_REFUSALS] = "refusals",
	[AF_WINDOW] = "window",
};

static ct_err
parse_governance(struct ctx *c, const node *map)
{
	pol_governance *g = &c->pol->gov;
	pol_quorum *const qs[] = {
		[GOV_QUORUM] = &g->quorum,
		[GOV_POLICY_CHANGE] = &g->policy_change,
		[GOV_UNFREEZE] = &g->unfreeze,
		[GOV_BACKUP] = &g->backup,
		[GOV_RESTORE] = &g->restore,
	};
	const node *v[GOV_N_], *af[AF_N_];
	unsigned long n;
	size_t i;
	ct_err r;

	if ((r = get_fields(c, map, "governance", governance_fields, GOV_N_,
			    v)) != CT_OK)
		return r;
	for (i = 0; i < nitems(qs); i++)
		if (v[i] != NULL &&
		    (r = parse_quorum(c, v[i], governance_fields[i], qs[i])) !=
			CT_OK)
			return r;
	if (v[GOV_TTL] != NULL &&
	    (r = get_duration(c, v[GOV_TTL], "approval_ttl", 60, 30 * DAY,
			      &g->approval_ttl)) != CT_OK)
		return r;
	if (v[GOV_AUTO_FREEZE] == NULL)
		return CT_OK;
	if ((r = get_fields(c, v[GOV_AUTO_FREEZE], "auto_freeze",
			    auto_freeze_fields, AF_N_, af)) != CT_OK ||
	    (r = require(c, v[GOV_AUTO_FREEZE], af[AF_REFUSALS], "refusals")) !=
		CT_OK ||
	    (r = require(c, v[GOV_AUTO_FREEZE], af[AF_WINDOW], "window")) !=
		CT_OK ||
	    (r = get_uint(c, af[AF_REFUSALS], "refusals", 1,
			      POL_FREEZE_REFUSALS_MAX, &n)) !=
		CT_OK ||
	    (r = get_duration(c, af[AF_WINDOW], "window", 1, DAY,
			      &g->freeze_window)) != CT_OK)
		return r;
	g->freeze_refusals = (unsigned)n;
	/* A freeze nobody can lift is an outage, not a defence. */
	if (pol_quorum_or_default(c->pol, &g->unfreeze)->m == 0)
		return perr(c, CT_ERR_POLICY, v[GOV_AUTO_FREEZE]->at,
			    "auto_freeze needs an unfreeze quorum (unfreeze or "
			    "quorum)");
	return CT_OK;
}

static bool
is_audit_key(const struct ctx *c, const pol_key *k)
{
	return c->pol->audit_key != NULL &&
	       strcmp(c->pol->audit_key, k->name) == 0;
}

static ct_err
parse_ops(struct ctx *c, const node *list, const pol_key *k,
	  const char *client, unsigned *ops)
{
	pol_key_type type = k->type;
	const node *op;
	unsigned bit;
	size_t e;
	ct_err r;

	if ((r = expect(c, list, N_SEQ, "operations")) != CT_OK)
		return r;
	if (list->child == NULL)
		return perr(c, CT_ERR_POLICY, list->at,
			    "empty operation list for client \"%s\"", client);
	for (op = list->child; op != NULL; op = op->next) {
		if ((r = get_enum(c, op, "operation", op_names,
				  nitems(op_names), &e)) != CT_OK)
			return r;
		bit = 1u << e;
		if ((key_caps[type].ops & bit) == 0)
			return perr(c, CT_ERR_POLICY, op->at,
				    "operation \"%s\" does not fit %s keys",
				    op_names[e], key_type_names[type]);
		/* Whoever may sign with it could forge checkpoints. */
		if (bit == POL_OP_SIGN && is_audit_key(c, k))
			return perr(c, CT_ERR_POLICY, op->at,
				    "operation \"sign\" on the audit key "
				    "(service.audit_key) is granted to nobody");
		if ((*ops & bit) != 0)
			return perr(c, CT_ERR_POLICY, op->at,
				    "operation \"%s\" listed twice",
				    op_names[e]);
		*ops |= bit;
	}
	return CT_OK;
}

/* A grant's value: the list of operations, or a mapping with the list and
 * when the grant ends. */
enum { GR_OPS, GR_UNTIL, GR_ENGAGEMENT, GR_N_ };
static const char *const grant_fields[GR_N_] = {
	[GR_OPS] = "ops",
	[GR_UNTIL] = "until",
	[GR_ENGAGEMENT] = "engagement",
};

static ct_err
parse_grants(struct ctx *c, const node *allow, pol_key *k, size_t key)
{
	const node *cn, *v[GR_N_];
	pol_grant *g;
	size_t n, ci;
	ct_err r;

	if ((r = expect(c, allow, N_MAP, "allow")) != CT_OK)
		return r;
	if ((n = n_children(allow) / 2) == 0)
		return CT_OK;
	if ((k->grants = calloc(n, sizeof(*k->grants))) == NULL)
		return nomem(c, allow->at);
	for (cn = allow->child; cn != NULL; cn = cn->next->next) {
		if ((r = get_ref(c, cn, "client", &c->clients, &ci)) != CT_OK)
			return r;
		if (c->granted_in[ci] == key + 1)
			return perr(c, CT_ERR_POLICY, cn->at,
				    "client \"%s\" appears twice in allow",
				    cn->str);
		c->granted_in[ci] = key + 1;
		g = &k->grants[k->n_grants++];
		g->client = ci;
		v[GR_OPS] = cn->next;
		v[GR_UNTIL] = v[GR_ENGAGEMENT] = NULL;
		if (cn->next->kind == N_MAP &&
		    ((r = get_fields(c, cn->next, "grant", grant_fields, GR_N_,
				     v)) != CT_OK ||
		     (r = require(c, cn->next, v[GR_OPS], "ops")) != CT_OK))
			return r;
		if ((r = get_expiry(c, v[GR_UNTIL], v[GR_ENGAGEMENT],
				    &g->expiry)) != CT_OK ||
		    (r = parse_ops(c, v[GR_OPS], k, cn->str, &g->ops)) !=
			CT_OK)
			return r;
		/* A grant cannot outlive its client. */
		expiry_earlier(&g->expiry, &c->pol->clients[ci].expiry);
	}
	return CT_OK;
}

enum { KEY_NAME, KEY_TYPE, KEY_TOKEN, KEY_SIGN, KEY_OAEP, KEY_ALLOW,
       KEY_ROTATE, KEY_REVOKE, KEY_ROTATE_EVERY, KEY_DESTROY_AFTER,
       KEY_BACKUP, KEY_N_ };
static const char *const key_fields[KEY_N_] = {
	[KEY_NAME] = "name",
	[KEY_TYPE] = "type",
	[KEY_TOKEN] = "token",
	[KEY_SIGN] = "sign",
	[KEY_OAEP] = "oaep_hash",
	[KEY_ALLOW] = "allow",
	[KEY_ROTATE] = "rotate",
	[KEY_REVOKE] = "revoke",
	[KEY_ROTATE_EVERY] = "rotate_every",
	[KEY_DESTROY_AFTER] = "destroy_after",
	[KEY_BACKUP] = "backup",
};

static ct_err
parse_key(struct ctx *c, const node *map, const node *const v[], size_t i)
{
	pol_key *k = &c->pol->keys[i];
	size_t e;
	ct_err r;

	k->line = map->at.line;
	if ((r = dup_string(c, v[KEY_NAME], "name", &k->name)) != CT_OK ||
	    (r = require(c, map, v[KEY_TYPE], "type")) != CT_OK ||
	    (r = get_enum(c, v[KEY_TYPE], "type", key_type_names,
			  nitems(key_type_names), &e)) != CT_OK)
		return r;
	k->type = (pol_key_type)e;
	if (is_audit_key(c, k) && k->type != POL_KEY_EC_P256 &&
	    k->type != POL_KEY_EC_P384)
		return perr(c, CT_ERR_POLICY, v[KEY_TYPE]->at,
			    "type: the audit key (service.audit_key) must be "
			    "ec-p256 or ec-p384");
	if ((r = require(c, map, v[KEY_TOKEN], "token")) != CT_OK ||
	    (r = get_ref(c, v[KEY_TOKEN], "token", &c->tokens, &k->token)) !=
		CT_OK)
		return r;

	k->sign = key_caps[k->type].sign;
	if (v[KEY_SIGN] != NULL) {
		if (key_caps[k->type].signs == 0)
			return perr(c, CT_ERR_POLICY, v[KEY_SIGN]->at,
				    "sign: %s keys do not sign",
				    key_type_names[k->type]);
		if ((r = get_enum(c, v[KEY_SIGN], "sign", sign_names,
				  nitems(sign_names), &e)) != CT_OK)
			return r;
		if ((key_caps[k->type].signs & (1u << e)) == 0)
			return perr(c, CT_ERR_POLICY, v[KEY_SIGN]->at,
				    "sign: %s does not fit %s keys",
				    sign_names[e], key_type_names[k->type]);
		k->sign = (pol_sign_scheme)e;
	}

	k->oaep = POL_OAEP_SHA256;
	if (v[KEY_OAEP] != NULL) {
		if (!key_caps[k->type].oaep)
			return perr(c, CT_ERR_POLICY, v[KEY_OAEP]->at,
				    "oaep_hash: %s keys do not use OAEP",
				    key_type_names[k->type]);
		if ((r = get_enum(c, v[KEY_OAEP], "oaep_hash", oaep_names,
				  nitems(oaep_names), &e)) != CT_OK)
			return r;
		k->oaep = (pol_oaep_hash)e;
	}

	if ((v[KEY_ROTATE] != NULL &&
	     (r = parse_quorum(c, v[KEY_ROTATE], "rotate", &k->rotate)) !=
		 CT_OK) ||
	    (v[KEY_REVOKE] != NULL &&
	     (r = parse_quorum(c, v[KEY_REVOKE], "revoke", &k->revoke)) !=
		 CT_OK) ||
	    (v[KEY_ROTATE_EVERY] != NULL &&
	     (r = get_duration(c, v[KEY_ROTATE_EVERY], "rotate_every", 60,
			       3660 * DAY, &k->rotate_every)) != CT_OK))
		return r;
	k->destroy_after = DEFAULT_DESTROY_AFTER;
	if (v[KEY_DESTROY_AFTER] != NULL &&
	    (r = get_duration(c, v[KEY_DESTROY_AFTER], "destroy_after", 1,
			      3660 * DAY, &k->destroy_after)) != CT_OK)
		return r;
	if (v[KEY_BACKUP] != NULL &&
	    (r = get_bool(c, v[KEY_BACKUP], "backup", &k->backup)) != CT_OK)
		return r;

	if (v[KEY_ALLOW] != NULL)
		return parse_grants(c, v[KEY_ALLOW], k, i);
	return CT_OK;
}

typedef struct {
	const char *kind;		/* an entry, in messages: "token" */
	const char *const *fields;	/* fields[0] is "name" */
	size_t n_fields;
	/* Fill entry i of the section's array, already allocated. */
	ct_err (*parse)(struct ctx *, const node *, const node *const[],
			size_t);
} section;

static const section token_section = { "token", token_fields, TOK_N_,
				       parse_token };
static const section client_section = { "client", client_fields, CLI_N_,
					parse_client };
static const section custodian_section = { "custodian", custodian_fields,
					   CUS_N_, parse_custodian };
static const section key_section = { "key", key_fields, KEY_N_, parse_key };
static const section engagement_section = { "engagement", engagement_fields,
					    ENG_N_, parse_engagement };
_Static_assert(TOK_N_ <= MAX_FIELDS && CLI_N_ <= MAX_FIELDS &&
		   CUS_N_ <= MAX_FIELDS && KEY_N_ <= MAX_FIELDS &&
		   ENG_N_ <= MAX_FIELDS && GR_N_ <= MAX_FIELDS,
	       "MAX_FIELDS fits every section");

/* The n entries of a section: mappings, each with a unique name that
 * prefixes the messages about it. */
static ct_err
parse_section(struct ctx *c, const node *seq, const section *s, size_t n,
	      name_index *ix)
{
	const node *v[MAX_FIELDS], *it;
	size_t i;
	ct_err r;

	if (n > 0 && (ix->refs = calloc(n, sizeof(*ix->refs))) == NULL)
		return nomem(c, seq->at);
	for (i = 0, it = seq->child; it != NULL; i++, it = it->next) {
		if ((r = get_fields(c, it, s->kind, s->fields, s->n_fields,
				    v)) != CT_OK ||
		    (r = require(c, it, v[0], "name")) != CT_OK ||
		    (r = check_name(c, v[0], "name")) != CT_OK)
			return r;
		ix->refs[ix->n++] = (name_ref){ v[0], i };
		c->entry_kind = s->kind;
		c->entry_name = v[0]->str;
		if ((r = s->parse(c, it, v, i)) != CT_OK)
			return r;
		c->entry_name = NULL;
	}
	return sort_names(c, ix, s->kind);
}

/* A section's sequence and its length, to size the array first. */
static ct_err
count_items(struct ctx *c, const node *seq, const char *field, size_t *n)
{
	ct_err r;

	if ((r = expect(c, seq, N_SEQ, field)) != CT_OK)
		return r;
	*n = n_children(seq);
	return CT_OK;
}

enum { TOP_VERSION, TOP_SERVICE, TOP_TOKENS, TOP_CLIENTS, TOP_CUSTODIANS,
       TOP_GOVERNANCE, TOP_KEYS, TOP_ENGAGEMENTS, TOP_N_ };
static const char *const top_fields[TOP_N_] = {
	[TOP_VERSION] = "version",
	[TOP_SERVICE] = "service",
	[TOP_TOKENS] = "tokens",
	[TOP_CLIENTS] = "clients",
	[TOP_CUSTODIANS] = "custodians",
	[TOP_GOVERNANCE] = "governance",
	[TOP_KEYS] = "keys",
	[TOP_ENGAGEMENTS] = "engagements",
};
_Static_assert(TOP_N_ <= MAX_FIELDS, "MAX_FIELDS fits the top level");

/* Sections in dependency order: quorums refer to custodians; keys to
 * tokens, clients and custodians; clients and keys to engagements. */
static ct_err
parse_policy(struct ctx *c)
{
	pol_policy *p = c->pol;
	const node *v[TOP_N_];
	unsigned long version;
	size_t n;
	ct_err r;

	if (c->root == NULL)
		return perr(c, CT_ERR_POLICY, file_start, "empty document");
	if ((r = get_fields(c, c->root, "policy", top_fields, TOP_N_, v)) !=
		CT_OK ||
	    (r = require(c, c->root, v[TOP_VERSION], "version")) != CT_OK ||
	    (r = get_uint(c, v[TOP_VERSION], "version", 0, ULONG_MAX,
			  &version)) != CT_OK)
		return r;
	if (version != 1)
		return perr(c, CT_ERR_POLICY, v[TOP_VERSION]->at,
			    "unsupported version %lu (only 1 is known)",
			    version);
	if (v[TOP_SERVICE] != NULL &&
	    (r = parse_service(c, v[TOP_SERVICE])) != CT_OK)
		return r;

	if ((r = require(c, c->root, v[TOP_TOKENS], "tokens")) != CT_OK ||
	    (r = count_items(c, v[TOP_TOKENS], "tokens", &n)) != CT_OK)
		return r;
	if (n == 0)
		return perr(c, CT_ERR_POLICY, v[TOP_TOKENS]->at,
			    "tokens: at least one token is needed");
	if ((p->tokens = calloc(n, sizeof(*p->tokens))) == NULL)
		return nomem(c, v[TOP_TOKENS]->at);
	p->n_tokens = n;
	if ((r = parse_section(c, v[TOP_TOKENS], &token_section, n,
			       &c->tokens)) != CT_OK)
		return r;

	if (v[TOP_ENGAGEMENTS] != NULL) {
		if ((r = count_items(c, v[TOP_ENGAGEMENTS], "engagements",
				     &n)) != CT_OK)
			return r;
		if (n > 0 && (p->engagements = calloc(
				  n, sizeof(*p->engagements))) == NULL)
			return nomem(c, v[TOP_ENGAGEMENTS]->at);
		p->n_engagements = n;
		if ((r = parse_section(c, v[TOP_ENGAGEMENTS],
				       &engagement_section, n,
				       &c->engagements)) != CT_OK)
			return r;
	}

	if (v[TOP_CLIENTS] != NULL) {
		if ((r = count_items(c, v[TOP_CLIENTS], "clients", &n)) !=
		    CT_OK)
			return r;
		if (n > 0 &&
		    ((p->clients = calloc(n, sizeof(*p->clients))) == NULL ||
		     (c->granted_in = calloc(n, sizeof(*c->granted_in))) ==
			 NULL))
			return nomem(c, v[TOP_CLIENTS]->at);
		p->n_clients = n;
		if ((r = parse_section(c, v[TOP_CLIENTS], &client_section, n,
				       &c->clients)) != CT_OK)
			return r;
	}

	if (v[TOP_CUSTODIANS] != NULL) {
		if ((r = count_items(c, v[TOP_CUSTODIANS], "custodians", &n)) !=
		    CT_OK)
			return r;
		if (n > 0 && (p->custodians = calloc(n, sizeof(*p->custodians))) ==
				 NULL)
			return nomem(c, v[TOP_CUSTODIANS]->at);
		p->n_custodians = n;
		if ((r = parse_section(c, v[TOP_CUSTODIANS], &custodian_section,
				       n, &c->custodians)) != CT_OK)
			return r;
	}
	p->gov.approval_ttl = DEFAULT_APPROVAL_TTL;
	if (v[TOP_GOVERNANCE] != NULL &&
	    (r = parse_governance(c, v[TOP_GOVERNANCE])) != CT_OK)
		return r;

	if ((r = require(c, c->root, v[TOP_KEYS], "keys")) != CT_OK ||
	    (r = count_items(c, v[TOP_KEYS], "keys", &n)) != CT_OK)
		return r;
	if (n > 0 && (p->keys = calloc(n, sizeof(*p->keys))) == NULL)
		return nomem(c, v[TOP_KEYS]->at);
	p->n_keys = n;
	if ((r = parse_section(c, v[TOP_KEYS], &key_section, n, &c->keys)) !=
	    CT_OK)
		return r;
	if (p->audit_key != NULL && pol_find_key(p, p->audit_key) == NULL)
		return perr(c, CT_ERR_POLICY, c->audit_key->at,
			    "audit_key: unknown key \"%s\"", p->audit_key);
	return CT_OK;
}

/* ---- loading ---- */

static ct_err
check_size(struct ctx *c, uintmax_t size)
{
	if (size <= POL_FILE_MAX)
		return CT_OK;
	return perr(c, CT_ERR_POLICY, file_start,
		    "document larger than %u bytes", POL_FILE_MAX);
}

/* The absolute directory relative paths resolve against: the policy file's
 * (file != NULL) or the current one. */
static ct_err
base_dir(struct ctx *c, const char *file)
{
	const char *slash = file != NULL ? strrchr(file, '/') : NULL;
	size_t dirlen = slash != NULL ? (size_t)(slash - file) : 0;
	char cwd[PATH_MAX], eb[128];

	if (file != NULL && file[0] == '/') {
		/* "/policy.yaml" lives in "/" */
		c->base = strndup(file, dirlen > 0 ? dirlen : 1);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return perr(c, CT_ERR_IO, file_start,
				    "cannot get the current directory: %s",
				    strerror_r(errno, eb, sizeof(eb)));
		c->base = join(cwd, file != NULL ? file : "", dirlen);
	}
	if (c->base == NULL)
		return nomem(c, file_start);
	return CT_OK;
}

/* With custodian key files, the digest is SHA-256(document digest ||
 * SHA-256 of every key file's path, length and bytes, in order). */
static ct_err
digest_key_files(struct ctx *c)
{
	uint8_t both[64];

	if (c->key_files == NULL)
		return CT_OK;
	memcpy(both, c->pol->digest, 32);
	if (EVP_DigestFinal_ex(c->key_files, both + 32, NULL) != 1 ||
	    EVP_Digest(both, sizeof(both), c->pol->digest, NULL, EVP_sha256(),
		       NULL) != 1) {
		ERR_clear_error();
		return perr(c, CT_ERR_INTERNAL, file_start, "SHA-256 failed");
	}
	return CT_OK;
}

/* dir_of is the file relative paths resolve against, or NULL for the
 * current directory. */
static ct_err
load(struct ctx *c, const char *dir_of, const unsigned char *buf, size_t len,
     pol_policy **out)
{
	ct_err r = CT_ERR_INTERNAL;

	if ((r = check_size(c, len)) != CT_OK)
		goto out;
	if ((c->pol = calloc(1, sizeof(*c->pol))) == NULL ||
	    (c->pol->path = strdup(c->file)) == NULL) {
		r = nomem(c, file_start);
		goto out;
	}
	c->pol->workers = DEFAULT_WORKERS;
	c->pol->token_timeout = DEFAULT_TOKEN_TIMEOUT;
	c->pol->unknown_limits = unknown_limits_default;
	c->pol->max_bad_requests = DEFAULT_BAD;
	c->client_limits = client_limits_default;
	if (EVP_Digest(buf, len, c->pol->digest, NULL, EVP_sha256(), NULL) !=
	    1) {
		/* Leave no stale entries in this thread's error queue. */
		ERR_clear_error();
		r = perr(c, CT_ERR_INTERNAL, file_start, "SHA-256 failed");
		goto out;
	}
	if ((r = base_dir(c, dir_of)) != CT_OK ||
	    (r = build_tree(c, buf, len)) != CT_OK ||
	    (r = parse_policy(c)) != CT_OK ||
	    (r = digest_key_files(c)) != CT_OK)
		goto out;
	*out = c->pol;
	c->pol = NULL;
	r = CT_OK;
out:
	pol_free(c->pol);
	node_free(c->root);
	free(c->base);
	free(c->tokens.refs);
	free(c->engagements.refs);
	free(c->clients.refs);
	free(c->custodians.refs);
	EVP_MD_CTX_free(c->key_files);
	free(c->keys.refs);
	free(c->granted_in);
	return r;
}

ct_err
pol_load_buffer(const char *name, const void *buf, size_t len,
		pol_policy **out, char *err, size_t errlen)
{
	struct ctx c = { .file = name, .err = err, .errlen = errlen };

	*out = NULL;
	return load(&c, NULL, buf, len, out);
}

ct_err
pol_load_file(const char *path, pol_policy **out, char *err, size_t errlen)
{
	struct ctx c = { .file = path, .err = err, .errlen = errlen };
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0, cap;
	ssize_t n;
	char eb[128];
	int fd = -1;
	ct_err r = CT_ERR_INTERNAL;

	*out = NULL;
	/* O_NONBLOCK so that a FIFO cannot hang the open; it is refused
	 * below, and regular files ignore the flag. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
		-1 ||
	    fstat(fd, &st) == -1) {
		r = perr(&c, CT_ERR_IO, file_start, "cannot open: %s",
			 strerror_r(errno, eb, sizeof(eb)));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = perr(&c, CT_ERR_IO, file_start, "not a regular file");
		goto out;
	}
	if ((r = check_size(&c, (uintmax_t)st.st_size)) != CT_OK)
		goto out;
	/* One byte beyond the size, to notice a file growing under us. */
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap)) == NULL) {
		r = nomem(&c, file_start);
		goto out;
	}
	while (len < cap) {
		if ((n = read(fd, buf + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			r = perr(&c, CT_ERR_IO, file_start, "read: %s",
				 strerror_r(errno, eb, sizeof(eb)));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == cap) {
		r = perr(&c, CT_ERR_IO, file_start,
			 "file changed while being read");
		goto out;
	}
	r = load(&c, path, buf, len, out);
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return r;
}

void
pol_free(pol_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_tokens; i++) {
		free(p->tokens[i].name);
		free(p->tokens[i].module);
		free(p->tokens[i].label);
		free(p->tokens[i].uri);
		free(p->tokens[i].pin_file);
		free(p->tokens[i].pin_env);
		free(p->tokens[i].reader);
	}
	free(p->tokens);
	for (i = 0; i < p->n_clients; i++)
		free(p->clients[i].name);
	free(p->clients);
	for (i = 0; i < p->n_keys; i++) {
		free(p->keys[i].name);
		free(p->keys[i].grants);
		free(p->keys[i].rotate.of);
		free(p->keys[i].revoke.of);
	}
	free(p->keys);
	for (i = 0; i < p->n_custodians; i++) {
		free(p->custodians[i].name);
		EVP_PKEY_free(p->custodians[i].pub);
	}
	free(p->custodians);
	free(p->gov.quorum.of);
	free(p->gov.policy_change.of);
	free(p->gov.unfreeze.of);
	free(p->gov.backup.of);
	free(p->gov.restore.of);
	free(p->state);
	for (i = 0; i < p->n_engagements; i++) {
		free(p->engagements[i].name);
		free(p->engagements[i].description);
	}
	free(p->engagements);
	free(p->path);
	free(p->socket);
	free(p->audit_log);
	free(p->audit_key);
	free(p->run_user);
	free(p);
}

const pol_key *
pol_find_key(const pol_policy *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	for (i = 0; i < p->n_keys; i++)
		if (strcmp(p->keys[i].name, name) == 0)
			return &p->keys[i];
	return NULL;
}

const pol_token *
pol_find_token(const pol_policy *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	for (i = 0; i < p->n_tokens; i++)
		if (strcmp(p->tokens[i].name, name) == 0)
			return &p->tokens[i];
	return NULL;
}

/* A client matches when every identity it names matches: uid and gid
 * together mean that user in that group.  An entry naming neither (only
 * possible in a hand-built policy) matches nobody. */
static bool
client_matches(const pol_client *cl, uid_t uid, gid_t gid)
{
	return (cl->has_uid || cl->has_gid) &&
	       (!cl->has_uid || cl->uid == uid) &&
	       (!cl->has_gid || cl->gid == gid);
}

bool
pol_expired(const pol_expiry *e, time_t now)
{
	return e->set && now >= e->until;
}

unsigned
pol_peer_ops(const pol_policy *p, const pol_key *k, uid_t uid, gid_t gid,
	     time_t now)
{
	unsigned ops = 0;
	size_t i;

	if (p == NULL || k == NULL)
		return 0;
	for (i = 0; i < k->n_grants; i++)
		if (client_matches(&p->clients[k->grants[i].client], uid, gid) &&
		    !pol_expired(&k->grants[i].expiry, now))
			ops |= k->grants[i].ops;
	return ops;
}

bool
pol_peer_known(const pol_policy *p, uid_t uid, gid_t gid, time_t now)
{
	return pol_peer_client(p, uid, gid, now) != NULL;
}

const pol_client *
pol_peer_client(const pol_policy *p, uid_t uid, gid_t gid, time_t now)
{
	size_t i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < p->n_clients; i++)
		if (client_matches(&p->clients[i], uid, gid) &&
		    !pol_expired(&p->clients[i].expiry, now))
			return &p->clients[i];
	return NULL;
}

bool
pol_peer_expired(const pol_policy *p, const pol_key *k, uid_t uid,
		 gid_t gid, unsigned op, time_t now,
		 const pol_client **client, const pol_expiry **ended)
{
	const pol_client *cl;
	const pol_expiry *e;
	size_t i, n;

	*client = NULL;
	*ended = NULL;
	if (p == NULL)
		return false;
	n = k != NULL ? k->n_grants : p->n_clients;
	for (i = 0; i < n; i++) {
		cl = k != NULL ? &p->clients[k->grants[i].client] :
				 &p->clients[i];
		e = k != NULL ? &k->grants[i].expiry : &cl->expiry;
		if ((k != NULL && (k->grants[i].ops & op) == 0) ||
		    !client_matches(cl, uid, gid) || !pol_expired(e, now))
			continue;
		if (*ended == NULL || e->until > (*ended)->until) {
			*client = cl;
			*ended = e;
		}
	}
	return *ended != NULL;
}

static bool
digits(const char *s, size_t n, unsigned *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1), after
 * Howard Hinnant's days_from_civil. */
static int64_t
days_from_civil(unsigned y, unsigned m, unsigned d)
{
	unsigned era, yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + doe - 719468;
}

static unsigned
month_days(unsigned y, unsigned m)
{
	static const unsigned char days[] = { 31, 28, 31, 30, 31, 30,
					      31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[m - 1] + (m == 2 && leap);
}

static ct_err
bad_time(const char **why, const char *reason)
{
	*why = reason;
	return CT_ERR_POLICY;
}

ct_err
pol_time_parse(const char *s, size_t len, time_t *t, const char **why)
{
	static const char form[] = "not of the form YYYY-MM-DDTHH:MM:SSZ";
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
	const char *z;	/* the zone, after the seconds */
	size_t zlen;
	int64_t v;

	*t = 0;
	*why = NULL;
	if (len < 19 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d))
		return bad_time(why, form);
	z = s + 19;
	zlen = len - 19;
	if (s[10] != 'T')
		return bad_time(why, s[10] == 't' ? "write T in upper case" :
			       "date and time must be joined by T");
	if (!digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return bad_time(why, form);
	if (zlen > 0 && (z[0] == '.' || z[0] == ','))
		return bad_time(why, "fractional seconds are not supported");
	if (zlen == 0)
		return bad_time(why, "no time zone: add Z (UTC) or an offset "
				     "such as +02:00");
	if (zlen == 1 && z[0] == 'z')
		return bad_time(why, "write Z in upper case");
	if (!(zlen == 1 && z[0] == 'Z') &&
	    !(zlen == 6 && (z[0] == '+' || z[0] == '-') &&
	      digits(z + 1, 2, &oh) && z[3] == ':' && digits(z + 4, 2, &om)))
		return bad_time(why, "the time zone must be Z, +HH:MM or -HH:MM");
	if (z[0] == '-' && oh == 0 && om == 0)
		return bad_time(why, "-00:00 means an unknown offset: write Z "
				     "or +00:00");
	if (mo < 1 || mo > 12)
		return bad_time(why, "no such month");
	if (d < 1 || d > month_days(y, mo))
		return bad_time(why, "no such day in that month");
	if (h > 23 || mi > 59)
		return bad_time(why, "no such time of day");
	if (sec == 60)
		return bad_time(why, "leap second 60 cannot be represented");
	if (sec > 59)
		return bad_time(why, "no such second");
	if (oh > 23 || om > 59)
		return bad_time(why, "no such offset");
	if (y == 0)
		return bad_time(why, "before 1970-01-01T00:00:00Z");
	v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	v += (z[0] == '-' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
	if (v < 0)
		return bad_time(why, "before 1970-01-01T00:00:00Z");
	if (v > TIME_MAX)
		return bad_time(why, "after 9999-12-31T23:59:59Z");
	*t = (time_t)v;
	return CT_OK;
}

char *
pol_time_format(time_t t, char buf[POL_TIME_LEN])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, POL_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, POL_TIME_LEN, "invalid");
	return buf;
}

const char *
pol_op_name(unsigned op_bit)
{
	size_t i;

	for (i = 0; i < nitems(op_names); i++)
		if (op_bit == 1u << i)
			return op_names[i];
	return "unknown";
}

unsigned
pol_op_from_name(const char *name)
{
	size_t i;

	if (name == NULL ||
	    (i = index_of(op_names, nitems(op_names), name)) ==
		nitems(op_names))
		return 0;
	return 1u << i;
}

const char *
pol_key_type_name(pol_key_type t)
{
	return name_at(key_type_names, nitems(key_type_names), (size_t)t);
}

const char *
pol_sign_scheme_name(pol_sign_scheme s)
{
	return name_at(sign_names, nitems(sign_names), (size_t)s);
}

const pol_custodian *
pol_find_custodian(const pol_policy *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	for (i = 0; i < p->n_custodians; i++)
		if (strcmp(p->custodians[i].name, name) == 0)
			return &p->custodians[i];
	return NULL;
}

const pol_custodian *
pol_peer_custodian(const pol_policy *p, uid_t uid, unsigned role, time_t now)
{
	size_t i;

	for (i = 0; p != NULL && i < p->n_custodians; i++)
		if (p->custodians[i].has_uid && p->custodians[i].uid == uid &&
		    (p->custodians[i].roles & role) &&
		    !pol_expired(&p->custodians[i].expiry, now))
			return &p->custodians[i];
	return NULL;
}

bool
pol_quorum_has(const pol_quorum *q, size_t ci)
{
	size_t i;

	for (i = 0; i < q->n_of; i++)
		if (q->of[i] == ci)
			return true;
	return false;
}

const pol_quorum *
pol_quorum_or_default(const pol_policy *p, const pol_quorum *q)
{
	return q != NULL && q->m > 0 ? q : &p->gov.quorum;
}
