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
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "policy/pol.h"

#define MAX_DEPTH	8	/* collections nested in one another */
#define MAX_SCALAR	4096	/* bytes in one scalar */
#define MAX_FIELDS	8	/* fields of the widest mapping */
#define MAX_LABEL	32	/* CK_TOKEN_INFO.label is 32 bytes */
#define MAX_WORKERS	64
#define DEFAULT_WORKERS	2
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
	name_index tokens, clients, keys;
	/* Per client, 1 + the index of the last key whose allow named it. */
	size_t *granted_in;
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

/* true or false, unquoted: YAML 1.1's yes/no/on/off are not accepted. */
static ct_err
get_bool(struct ctx *c, const node *n, const char *field, bool *v)
{
	ct_err r;

	if ((r = expect(c, n, N_SCALAR, field)) != CT_OK)
		return r;
	if (n->plain && (strcmp(n->str, "true") == 0 ||
			 strcmp(n->str, "false") == 0)) {
		*v = n->str[0] == 't';
		return CT_OK;
	}
	return perr(c, CT_ERR_POLICY, n->at,
		    "%s: \"%s\" is not true or false", field, n->str);
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

enum { SVC_SOCKET, SVC_AUDIT_LOG, SVC_WORKERS, SVC_USER, SVC_GROUP,
       SVC_ALLOW_ROOT, SVC_LIMITS, SVC_UNKNOWN_LIMITS, SVC_MAX_BAD, SVC_N_ };
static const char *const service_fields[SVC_N_] = {
	[SVC_SOCKET] = "socket",
	[SVC_AUDIT_LOG] = "audit_log",
	[SVC_WORKERS] = "workers",
	[SVC_USER] = "user",
	[SVC_GROUP] = "group",
	[SVC_ALLOW_ROOT] = "allow_root",
	[SVC_LIMITS] = "limits",
	[SVC_UNKNOWN_LIMITS] = "unknown_limits",
	[SVC_MAX_BAD] = "max_bad_requests",
};

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
	if (v[SVC_WORKERS] != NULL) {
		if ((r = get_uint(c, v[SVC_WORKERS], "workers", 1, MAX_WORKERS,
				  &workers)) != CT_OK)
			return r;
		p->workers = (unsigned)workers;
	}
	return parse_service_more(c, v);
}

/* Every section entry has "name" as field 0. */
enum { TOK_NAME, TOK_MODULE, TOK_LABEL, TOK_URI, TOK_PIN_FILE, TOK_PIN_ENV,
       TOK_N_ };
static const char *const token_fields[TOK_N_] = {
	[TOK_NAME] = "name",
	[TOK_MODULE] = "module",
	[TOK_LABEL] = "label",
	[TOK_URI] = "uri",
	[TOK_PIN_FILE] = "pin_file",
	[TOK_PIN_ENV] = "pin_env",
};

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
	if ((r = one_of(c, map, v[TOK_PIN_FILE], v[TOK_PIN_ENV], "pin_file",
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

enum { CLI_NAME, CLI_UID, CLI_USER, CLI_GID, CLI_GROUP, CLI_LIMITS,
       CLI_N_ };
static const char *const client_fields[CLI_N_] = {
	[CLI_NAME] = "name",
	[CLI_UID] = "uid",
	[CLI_USER] = "user",
	[CLI_GID] = "gid",
	[CLI_GROUP] = "group",
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
	cl->limits = c->client_limits;
	if (v[CLI_LIMITS] != NULL)
		return parse_limits(c, v[CLI_LIMITS], "limits",
				    &c->client_limits, &cl->limits);
	return CT_OK;
}

static ct_err
parse_ops(struct ctx *c, const node *list, pol_key_type type,
	  const char *client, unsigned *ops)
{
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
		if ((*ops & bit) != 0)
			return perr(c, CT_ERR_POLICY, op->at,
				    "operation \"%s\" listed twice",
				    op_names[e]);
		*ops |= bit;
	}
	return CT_OK;
}

static ct_err
parse_grants(struct ctx *c, const node *allow, pol_key *k, size_t key)
{
	const node *cn;
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
		if ((r = parse_ops(c, cn->next, k->type, cn->str, &g->ops)) !=
		    CT_OK)
			return r;
	}
	return CT_OK;
}

enum { KEY_NAME, KEY_TYPE, KEY_TOKEN, KEY_SIGN, KEY_OAEP, KEY_ALLOW,
       KEY_N_ };
static const char *const key_fields[KEY_N_] = {
	[KEY_NAME] = "name",
	[KEY_TYPE] = "type",
	[KEY_TOKEN] = "token",
	[KEY_SIGN] = "sign",
	[KEY_OAEP] = "oaep_hash",
	[KEY_ALLOW] = "allow",
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
static const section key_section = { "key", key_fields, KEY_N_, parse_key };
_Static_assert(TOK_N_ <= MAX_FIELDS && CLI_N_ <= MAX_FIELDS &&
		   KEY_N_ <= MAX_FIELDS, "MAX_FIELDS fits every section");

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

enum { TOP_VERSION, TOP_SERVICE, TOP_TOKENS, TOP_CLIENTS, TOP_KEYS, TOP_N_ };
static const char *const top_fields[TOP_N_] = {
	[TOP_VERSION] = "version",
	[TOP_SERVICE] = "service",
	[TOP_TOKENS] = "tokens",
	[TOP_CLIENTS] = "clients",
	[TOP_KEYS] = "keys",
};

/* Sections in dependency order: keys refer to tokens and clients. */
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

	if ((r = require(c, c->root, v[TOP_KEYS], "keys")) != CT_OK ||
	    (r = count_items(c, v[TOP_KEYS], "keys", &n)) != CT_OK)
		return r;
	if (n > 0 && (p->keys = calloc(n, sizeof(*p->keys))) == NULL)
		return nomem(c, v[TOP_KEYS]->at);
	p->n_keys = n;
	return parse_section(c, v[TOP_KEYS], &key_section, n, &c->keys);
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
	    (r = parse_policy(c)) != CT_OK)
		goto out;
	*out = c->pol;
	c->pol = NULL;
	r = CT_OK;
out:
	pol_free(c->pol);
	node_free(c->root);
	free(c->base);
	free(c->tokens.refs);
	free(c->clients.refs);
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
	}
	free(p->tokens);
	for (i = 0; i < p->n_clients; i++)
		free(p->clients[i].name);
	free(p->clients);
	for (i = 0; i < p->n_keys; i++) {
		free(p->keys[i].name);
		free(p->keys[i].grants);
	}
	free(p->keys);
	free(p->path);
	free(p->socket);
	free(p->audit_log);
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

unsigned
pol_peer_ops(const pol_policy *p, const pol_key *k, uid_t uid, gid_t gid)
{
	unsigned ops = 0;
	size_t i;

	if (p == NULL || k == NULL)
		return 0;
	for (i = 0; i < k->n_grants; i++)
		if (client_matches(&p->clients[k->grants[i].client], uid, gid))
			ops |= k->grants[i].ops;
	return ops;
}

bool
pol_peer_known(const pol_policy *p, uid_t uid, gid_t gid)
{
	return pol_peer_client(p, uid, gid) != NULL;
}

const pol_client *
pol_peer_client(const pol_policy *p, uid_t uid, gid_t gid)
{
	size_t i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < p->n_clients; i++)
		if (client_matches(&p->clients[i], uid, gid))
			return &p->clients[i];
	return NULL;
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
