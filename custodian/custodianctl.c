/* custodianctl: the command-line client of custodiand, and the offline
 * tools (keygen, audit verify, access review).
 *
 * Exit codes: 0 success, 1 the operation was refused or failed (the error
 * code is printed), 2 usage, 3 the daemon could not be reached.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "custodian/ct_audit.h"
#include "custodian/ct_blob.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_ops.h"
#include "custodian/ct_proto.h"
#include "custodian/ct_tokens.h"
#include "custodian/ct_util.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3
#define REPLY_MAX (1u << 20)
#define DEFAULT_SOCKET "/run/custodian/custodian.sock"
#define REPLY_TIMEOUT_S 30 /* default; $CUSTODIAN_TIMEOUT overrides, 1..3600 */
#define REVIEW_DAYS 7	   /* access: grants ending this soon are flagged */
#define REVIEW_DAYS_MAX 3650

static const char *sock_path;
static long reply_timeout = REPLY_TIMEOUT_S;

/* Options shared by the subcommands; each uses the ones it documents. */
typedef struct {
	const char *version;
	const char *input;   /* -i FILE: message or plaintext, else stdin */
	const char *digest;  /* -d HEX */
	const char *context; /* -c TEXT */
	const char *policy;  /* -p FILE (keygen, access) */
	const char *now;     /* --now TIME (access) */
	const char *within;  /* --within DAYS (access) */
	bool b64;	     /* -b: print unwrapped plaintext as base64 */
	bool json;	     /* --json (access) */
	char **args;
	int n_args;
} opts;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: custodianctl [-s SOCKET] COMMAND [OPTIONS] ARGS\n"
	    "  sign KEY [-v VER] [-i FILE | -d HEXDIGEST]   print the signature (base64)\n"
	    "  verify KEY SIGNATURE [-v VER] [-i FILE | -d HEXDIGEST]\n"
	    "  public-key KEY [-v VER]                       print the PEM public key\n"
	    "  wrap KEY [-c CONTEXT] [-i FILE]               print the wrapped blob\n"
	    "  unwrap BLOB [-c CONTEXT] [-b]                 write the plaintext\n"
	    "  datakey KEY [-c CONTEXT]                      print a data key and its blob\n"
	    "  rewrap BLOB [-c CONTEXT]                      print the blob under the current version\n"
	    "  list | status\n"
	    "  keygen KEY -p POLICY                          create the next version on the token\n"
	    "  audit verify FILE                             check the audit log's hash chain\n"
	    "  access -p POLICY [--now TIME] [--within DAYS] [--json]\n"
	    "                                                who may do what on which key, until\n"
	    "                                                when; flags grants ending within DAYS\n"
	    "                                                (default 7) and those already ended\n"
	    "The socket is -s, else $CUSTODIAN_SOCKET, else " DEFAULT_SOCKET ".\n"
	    "A reply is awaited $CUSTODIAN_TIMEOUT seconds (default 30).\n"
	    "Messages and plaintexts are read from -i FILE or standard input.\n");
	exit(EXIT_USAGE);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("custodianctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* Read all of a file (or stdin) up to max bytes; the caller wipes it. */
static uint8_t *
read_input(const char *path, size_t max, size_t *len)
{
	FILE *f = path != NULL ? fopen(path, "rb") : stdin;
	uint8_t *buf;
	size_t n;

	if (f == NULL)
		die(EXIT_USAGE, "%s: %s", path, strerror(errno));
	if ((buf = malloc(max + 1)) == NULL)
		die(EXIT_REFUSED, "out of memory");
	n = fread(buf, 1, max + 1, f);
	if (ferror(f))
		die(EXIT_USAGE, "%s: read error", path ? path : "stdin");
	if (n > max)
		die(EXIT_USAGE, "%s: more than %zu bytes", path ? path : "stdin", max);
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

static void
set_b64(json_t *req, const char *field, const uint8_t *buf, size_t len)
{
	char *s;

	if (ct_b64_encode(buf, len, &s) != CT_OK)
		die(EXIT_REFUSED, "out of memory");
	json_object_set_new(req, field, json_string(s));
	ct_free_secret(s, strlen(s));
}

/* A decimal number in [min, max], without sign. */
static bool
parse_number(const char *s, unsigned long min, unsigned long max,
	     unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= min &&
	    *v <= max && s[0] != '-' && s[0] != '+';
}

static void
set_version(json_t *req, const opts *o)
{
	unsigned long v;

	if (o->version == NULL)
		return;
	if (!parse_number(o->version, 1, UINT32_MAX, &v))
		die(EXIT_USAGE, "bad version \"%s\"", o->version);
	json_object_set_new(req, "version", json_integer((json_int_t)v));
}

/* The message to sign or verify: -d HEXDIGEST, else -i FILE or stdin. */
static void
set_message(json_t *req, const opts *o)
{
	uint8_t dg[64], *buf;
	size_t len, i;
	unsigned int x;

	if (o->digest != NULL) {
		len = strlen(o->digest);
		if (len % 2 != 0 || len / 2 > sizeof(dg))
			die(EXIT_USAGE, "bad hex digest");
		for (i = 0; i < len / 2; i++) {
			if (sscanf(o->digest + 2 * i, "%2x", &x) != 1)
				die(EXIT_USAGE, "bad hex digest");
			dg[i] = (uint8_t)x;
		}
		set_b64(req, "digest", dg, len / 2);
		return;
	}
	buf = read_input(o->input, CT_DATA_MAX, &len);
	set_b64(req, "data", buf, len);
	ct_free_secret(buf, CT_DATA_MAX + 1);
}

static int
connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { reply_timeout, 0 };
	int fd;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		die(EXIT_USAGE, "socket path too long");
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die(EXIT_CONNECT, "cannot reach custodiand at %s: %s", sock_path,
		    strerror(errno));
	/* A daemon stuck on a token must not hang its callers forever. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		die(EXIT_CONNECT, "setsockopt: %s", strerror(errno));
	return fd;
}

/* Send one request (consumed), return the "result" of a successful reply
 * (the caller owns it) or exit with the daemon's error. */
static json_t *
call(json_t *req)
{
	char *line = NULL, *buf;
	size_t len = 0, got = 0;
	json_t *reply, *result, *err;
	json_error_t jerr;
	ssize_t n;
	int fd = connect_daemon();

	json_object_set_new(req, "v", json_integer(CT_PROTO_VERSION));
	len = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if ((line = malloc(len + 1)) == NULL ||
	    json_dumpb(req, line, len, JSON_COMPACT) != len)
		die(EXIT_REFUSED, "out of memory");
	line[len++] = '\n';
	json_decref(req);
	for (size_t off = 0; off < len; off += (size_t)n)
		if ((n = write(fd, line + off, len - off)) <= 0)
			die(EXIT_CONNECT, "write: %s", strerror(errno));
	ct_free_secret(line, len);
	if ((buf = malloc(REPLY_MAX)) == NULL)
		die(EXIT_REFUSED, "out of memory");
	while (got < REPLY_MAX && (got == 0 || buf[got - 1] != '\n')) {
		if ((n = read(fd, buf + got, REPLY_MAX - got)) == 0)
			die(EXIT_CONNECT, "connection closed before the reply");
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			die(EXIT_CONNECT, "no reply within %ld s", reply_timeout);
		if (n < 0)
			die(EXIT_CONNECT, "read: %s", strerror(errno));
		got += (size_t)n;
	}
	close(fd);
	reply = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &jerr);
	ct_free_secret(buf, REPLY_MAX);
	if (!json_is_object(reply))
		die(EXIT_CONNECT, "malformed reply: %s", jerr.text);
	result = json_object_get(reply, "result");
	if (json_is_true(json_object_get(reply, "ok")) && result != NULL) {
		json_incref(result);
		json_decref(reply);
		return result;
	}
	err = json_object_get(reply, "error");
	fprintf(stderr, "custodianctl: %s: %s\n",
	    json_string_value(json_object_get(err, "code")) ?: "error",
	    json_string_value(json_object_get(err, "message")) ?: "");
	exit(EXIT_REFUSED);
}

static json_t *
new_request(const char *op, const char *key_field, const char *key)
{
	json_t *req = json_pack("{s:s}", "op", op);

	if (req == NULL)
		die(EXIT_REFUSED, "out of memory");
	if (key_field != NULL)
		json_object_set_new(req, key_field, json_string(key));
	return req;
}

static void
set_context(json_t *req, const opts *o)
{
	if (o->context != NULL)
		json_object_set_new(req, "context", json_string(o->context));
}

static void
print_field(json_t *res, const char *field)
{
	const char *s = json_string_value(json_object_get(res, field));

	if (s == NULL)
		die(EXIT_CONNECT, "reply has no \"%s\"", field);
	fputs(s, stdout);
	if (s[0] != '\0' && s[strlen(s) - 1] != '\n')
		fputc('\n', stdout);
}

static void
need_args(const opts *o, int n)
{
	if (o->n_args != n)
		usage();
}

static int
cmd_sign(const opts *o)
{
	json_t *req, *res;

	need_args(o, 1);
	req = new_request("sign", "key", o->args[0]);
	set_version(req, o);
	set_message(req, o);
	res = call(req);
	print_field(res, "signature");
	json_decref(res);
	return 0;
}

static int
cmd_verify(const opts *o)
{
	json_t *req, *res;
	bool valid;

	need_args(o, 2);
	req = new_request("verify", "key", o->args[0]);
	json_object_set_new(req, "signature", json_string(o->args[1]));
	set_version(req, o);
	set_message(req, o);
	res = call(req);
	valid = json_is_true(json_object_get(res, "valid"));
	json_decref(res);
	puts(valid ? "valid" : "invalid");
	return valid ? 0 : EXIT_REFUSED;
}

static int
cmd_public_key(const opts *o)
{
	json_t *req, *res;

	need_args(o, 1);
	req = new_request("public_key", "key", o->args[0]);
	set_version(req, o);
	res = call(req);
	print_field(res, "pem");
	json_decref(res);
	return 0;
}

static int
cmd_wrap(const opts *o)
{
	json_t *req, *res;
	uint8_t *pt;
	size_t len;

	need_args(o, 1);
	req = new_request("wrap", "key", o->args[0]);
	set_context(req, o);
	pt = read_input(o->input, CT_BLOB_PLAIN_MAX, &len);
	set_b64(req, "plaintext", pt, len);
	ct_free_secret(pt, CT_BLOB_PLAIN_MAX + 1);
	res = call(req);
	print_field(res, "blob");
	json_decref(res);
	return 0;
}

static int
cmd_unwrap(const opts *o)
{
	json_t *req, *res;
	const char *b64;
	uint8_t *pt;
	size_t len;

	need_args(o, 1);
	req = new_request("unwrap", "blob", o->args[0]);
	set_context(req, o);
	res = call(req);
	if (o->b64) {
		print_field(res, "plaintext");
		json_decref(res);
		return 0;
	}
	b64 = json_string_value(json_object_get(res, "plaintext"));
	if (b64 == NULL || ct_b64_decode(b64, strlen(b64), CT_BLOB_PLAIN_MAX,
	    &pt, &len) != CT_OK)
		die(EXIT_CONNECT, "reply has no valid \"plaintext\"");
	json_decref(res);
	fwrite(pt, 1, len, stdout);
	ct_free_secret(pt, len);
	return 0;
}

/* Print a result (consumed) as indented JSON. */
static int
print_json(json_t *res)
{
	if (json_dumpf(res, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
		die(EXIT_REFUSED, "cannot print the reply");
	fputc('\n', stdout);
	json_decref(res);
	return 0;
}

static int
cmd_datakey(const opts *o)
{
	json_t *req;

	need_args(o, 1);
	req = new_request("datakey", "key", o->args[0]);
	set_context(req, o);
	return print_json(call(req));
}

static int
cmd_rewrap(const opts *o)
{
	json_t *req, *res;

	need_args(o, 1);
	req = new_request("rewrap", "blob", o->args[0]);
	set_context(req, o);
	res = call(req);
	print_field(res, "blob");
	json_decref(res);
	return 0;
}

/* "a,b,c" from a JSON array of strings. */
static void
print_list(json_t *arr, int width)
{
	json_t *v;
	size_t j;
	int n = 0;

	json_array_foreach(arr, j, v)
		n += printf("%s%s", j ? "," : "", json_string_value(v));
	printf("%*s", width > n ? width - n : 0, "");
}

static int
cmd_list(const opts *o)
{
	json_t *res, *k;
	size_t i;

	need_args(o, 0);
	res = call(new_request("list_keys", NULL, NULL));
	printf("%-24s %-9s %-16s %-8s %s\n", "KEY", "TYPE", "SIGN", "CURRENT",
	    "OPERATIONS");
	json_array_foreach(res, i, k) {
		printf("%-24s %-9s %-16s v%-7lld ",
		    json_string_value(json_object_get(k, "name")),
		    json_string_value(json_object_get(k, "type")),
		    json_string_value(json_object_get(k, "sign")) ?: "-",
		    (long long)json_integer_value(json_object_get(k, "current_version")));
		print_list(json_object_get(k, "operations"), 0);
		putchar('\n');
	}
	json_decref(res);
	return 0;
}

static int
cmd_status(const opts *o)
{
	need_args(o, 0);
	return print_json(call(new_request("status", NULL, NULL)));
}

static p11_key_type
p11_type(pol_key_type t)
{
	switch (t) {
	case POL_KEY_EC_P256:
		return P11_KEY_EC_P256;
	case POL_KEY_EC_P384:
		return P11_KEY_EC_P384;
	case POL_KEY_RSA_3072:
		return P11_KEY_RSA_3072;
	default:
		return P11_KEY_AES_256;
	}
}

/* Offline: generate the next version directly on the token.  A running
 * daemon picks it up on SIGHUP. */
static int
cmd_keygen(const opts *o)
{
	char err[512], label[P11_LABEL_MAX];
	pol_policy *pol = NULL;
	const pol_key *pk;
	p11_token *tok = NULL;
	p11_session *s = NULL;
	uint32_t *vers = NULL, next;
	size_t n = 0;
	ct_err r;

	need_args(o, 1);
	if (o->policy == NULL)
		usage();
	if (pol_load_file(o->policy, &pol, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	if ((pk = pol_find_key(pol, o->args[0])) == NULL)
		die(EXIT_REFUSED, "no key \"%s\" in %s", o->args[0], o->policy);
	if (ct_token_connect(&pol->tokens[pk->token], &tok, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	if ((r = p11_session_open(tok, &s)) != CT_OK)
		die(EXIT_REFUSED, "session: %s", ct_strerror(r));
	if ((r = ct_key_versions(s, pk->name, &vers, &n)) != CT_OK)
		die(EXIT_REFUSED, "listing keys: %s", p11_session_last_error(s));
	next = n > 0 ? vers[n - 1] + 1 : 1; /* 0 after UINT32_MAX */
	free(vers);
	if (next == 0 || ct_key_label(pk->name, next, label, sizeof(label)) != CT_OK)
		die(EXIT_REFUSED, "no further version possible");
	if ((r = p11_generate(s, p11_type(pk->type), label)) != CT_OK)
		die(EXIT_REFUSED, "generating %s: %s %s", label, ct_strerror(r),
		    p11_session_last_error(s));
	printf("%s\n", label);
	p11_session_free(s);
	p11_token_free(tok);
	pol_free(pol);
	return 0;
}

static int
cmd_audit(const opts *o)
{
	ct_audit_report rep;
	ct_err r;

	if (o->n_args != 2 || strcmp(o->args[0], "verify") != 0)
		usage();
	r = ct_audit_verify(o->args[1], &rep);
	if (r == CT_OK) {
		printf("%s: chain intact, %llu lines\n", o->args[1],
		    (unsigned long long)rep.lines);
		return 0;
	}
	if (r == CT_ERR_AUDIT)
		die(EXIT_REFUSED, "%s:%llu: %s", o->args[1],
		    (unsigned long long)rep.bad_line, rep.reason);
	die(EXIT_REFUSED, "%s: %s", o->args[1], ct_strerror(r));
}

/* How a grant stands at now: ended, ending before soon, or not. */
static const char *
grant_status(const pol_expiry *e, time_t now, time_t soon)
{
	if (pol_expired(e, now))
		return "expired";
	return pol_expired(e, soon) ? "expiring" : "active";
}

/* The review as JSON: every grant of every key, with when it ends. */
static json_t *
access_json(const pol_policy *pol, time_t now, unsigned long days)
{
	char when[POL_TIME_LEN];
	const pol_key *k;
	const pol_grant *g;
	const pol_client *cl;
	json_t *grants = json_array(), *res, *row;
	size_t i, j;

	res = json_pack("{s:s, s:I, s:o*}", "now", pol_time_format(now, when),
	    "within_days", (json_int_t)days, "grants", grants);
	if (res == NULL || grants == NULL)
		die(EXIT_REFUSED, "out of memory");
	for (i = 0; i < pol->n_keys; i++) {
		k = &pol->keys[i];
		for (j = 0; j < k->n_grants; j++) {
			g = &k->grants[j];
			cl = &pol->clients[g->client];
			row = json_pack("{s:s, s:s, s:o*, s:o*, s:o*, s:o*, s:o*, s:s}",
			    "key", k->name, "client", cl->name,
			    "uid", cl->has_uid ? json_integer(cl->uid) : NULL,
			    "gid", cl->has_gid ? json_integer(cl->gid) : NULL,
			    "operations", ct_ops_names(g->ops),
			    "until", g->expiry.set ?
			    json_string(pol_time_format(g->expiry.until, when)) :
			    json_null(),
			    "engagement", g->expiry.engagement != POL_NONE ?
			    json_string(pol->engagements[g->expiry.engagement].name) :
			    json_null(),
			    "status", grant_status(&g->expiry, now,
			    now + (time_t)days * 86400));
			if (row == NULL || json_object_get(row, "operations") ==
			    NULL || json_array_append_new(grants, row) != 0)
				die(EXIT_REFUSED, "out of memory");
		}
	}
	return res;
}

static void
print_access(json_t *res)
{
	json_t *g, *uid, *gid;
	size_t i, n_soon = 0, n_gone = 0;
	const char *st;
	char who[48] = "";
	int n;

	printf("%-20s %-16s %-18s %-24s %-21s %-9s %s\n", "KEY", "CLIENT",
	    "WHO", "OPERATIONS", "UNTIL", "STATUS", "ENGAGEMENT");
	json_array_foreach(json_object_get(res, "grants"), i, g) {
		uid = json_object_get(g, "uid");
		gid = json_object_get(g, "gid");
		n = uid ? snprintf(who, sizeof(who), "uid=%lld",
		    (long long)json_integer_value(uid)) : 0;
		if (gid)
			snprintf(who + n, sizeof(who) - (size_t)n, "%sgid=%lld",
			    uid ? "," : "", (long long)json_integer_value(gid));
		st = json_string_value(json_object_get(g, "status"));
		n_gone += strcmp(st, "expired") == 0;
		n_soon += strcmp(st, "expiring") == 0;
		printf("%-20s %-16s %-18s ",
		    json_string_value(json_object_get(g, "key")),
		    json_string_value(json_object_get(g, "client")), who);
		print_list(json_object_get(g, "operations"), 24);
		printf(" %-21s %-9s %s\n",
		    json_string_value(json_object_get(g, "until")) ?: "never",
		    strcmp(st, "active") == 0 ? "ok" : strcmp(st, "expired") == 0 ?
		    "EXPIRED" : "EXPIRING",
		    json_string_value(json_object_get(g, "engagement")) ?: "-");
	}
	printf("%zu grants at %s: %zu expired, %zu expiring within %lld days\n",
	    json_array_size(json_object_get(res, "grants")),
	    json_string_value(json_object_get(res, "now")), n_gone, n_soon,
	    (long long)json_integer_value(json_object_get(res, "within_days")));
}

/* Offline: the periodic access review, from the policy file alone. */
static int
cmd_access(const opts *o)
{
	char err[512];
	pol_policy *pol = NULL;
	unsigned long days = REVIEW_DAYS;
	const char *why;
	time_t now = time(NULL);
	json_t *res;

	need_args(o, 0);
	if (o->policy == NULL)
		usage();
	if (o->now != NULL &&
	    pol_time_parse(o->now, strlen(o->now), &now, &why) != CT_OK)
		die(EXIT_USAGE, "--now: \"%s\": %s", o->now, why);
	if (o->within != NULL &&
	    !parse_number(o->within, 0, REVIEW_DAYS_MAX, &days))
		die(EXIT_USAGE, "--within: 0 to %d days", REVIEW_DAYS_MAX);
	if (pol_load_file(o->policy, &pol, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	res = access_json(pol, now, days);
	pol_free(pol);
	if (o->json)
		return print_json(res);
	print_access(res);
	json_decref(res);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(const opts *);
} commands[] = {
	{ "sign", cmd_sign }, { "verify", cmd_verify },
	{ "public-key", cmd_public_key }, { "wrap", cmd_wrap },
	{ "unwrap", cmd_unwrap }, { "datakey", cmd_datakey },
	{ "rewrap", cmd_rewrap }, { "list", cmd_list }, { "status", cmd_status },
	{ "keygen", cmd_keygen }, { "audit", cmd_audit },
	{ "access", cmd_access },
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "now", required_argument, NULL, 'N' },
		{ "within", required_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	opts o = { 0 };
	const char *cmd, *env;
	char *end;
	size_t i;
	int ch;

	ct_json_use_wiping_alloc();
	while ((ch = getopt(argc, argv, "+s:h")) != -1) {
		if (ch != 's')
			usage();
		sock_path = optarg;
	}
	if (sock_path == NULL && (sock_path = getenv("CUSTODIAN_SOCKET")) == NULL)
		sock_path = DEFAULT_SOCKET;
	if ((env = getenv("CUSTODIAN_TIMEOUT")) != NULL) {
		errno = 0;
		reply_timeout = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || end == env || reply_timeout < 1 ||
		    reply_timeout > 3600)
			die(EXIT_USAGE, "CUSTODIAN_TIMEOUT must be 1 to 3600 seconds");
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0; /* 0: GNU getopt re-initialises (the first scan used "+") */
	while ((ch = getopt_long(argc, argv, "v:i:d:c:p:b", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'v': o.version = optarg; break;
		case 'i': o.input = optarg; break;
		case 'd': o.digest = optarg; break;
		case 'c': o.context = optarg; break;
		case 'p': o.policy = optarg; break;
		case 'b': o.b64 = true; break;
		case 'N': o.now = optarg; break;
		case 'W': o.within = optarg; break;
		case 'J': o.json = true; break;
		default: usage();
		}
	}
	o.args = argv + optind;
	o.n_args = argc - optind;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			return commands[i].fn(&o);
	usage();
}
