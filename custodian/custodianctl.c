/* custodianctl: the command-line client of custodiand, and the offline
 * tools (keygen, audit verify).
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
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "custodian/ct_auditcli.h"
#include "custodian/ct_blob.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_proto.h"
#include "custodian/ct_tokens.h"
#include "custodian/ct_util.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3
#define REPLY_MAX (1u << 20)
#define DEFAULT_SOCKET "/run/custodian/custodian.sock"
#define REPLY_TIMEOUT_S 30 /* default; $CUSTODIAN_TIMEOUT overrides, 1..3600 */

static const char *sock_path;
static long reply_timeout = REPLY_TIMEOUT_S;

/* Options shared by the subcommands; each uses the ones it documents. */
typedef struct {
	const char *version;
	const char *input;   /* -i FILE: message or plaintext, else stdin */
	const char *digest;  /* -d HEX */
	const char *context; /* -c TEXT */
	const char *policy;  /* -p FILE (keygen) */
	bool b64;	     /* -b: print unwrapped plaintext as base64 */
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
	    "  audit verify|checkpoint-export|query|summary  read audit logs (audit -h)\n"
	    "The socket is -s, else $CUSTODIAN_SOCKET, else " DEFAULT_SOCKET ".\n"
	    "A reply is awaited $CUSTODIAN_TIMEOUT seconds (default 30).\n"
	    "Messages and plaintexts are read from -i FILE or standard input.\n");
	exit(EXIT_USAGE);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ct_vmsg("custodianctl", fmt, ap);
	va_end(ap);
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

static void
set_version(json_t *req, const opts *o)
{
	char *end;
	unsigned long v;

	if (o->version == NULL)
		return;
	errno = 0;
	v = strtoul(o->version, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX ||
	    o->version[0] == '-' || o->version[0] == '+')
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

static int
cmd_list(const opts *o)
{
	json_t *res, *k, *v;
	size_t i, j;

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
		json_array_foreach(json_object_get(k, "operations"), j, v)
			printf("%s%s", j ? "," : "", json_string_value(v));
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

static const struct {
	const char *name;
	int (*fn)(const opts *);
} commands[] = {
	{ "sign", cmd_sign }, { "verify", cmd_verify },
	{ "public-key", cmd_public_key }, { "wrap", cmd_wrap },
	{ "unwrap", cmd_unwrap }, { "datakey", cmd_datakey },
	{ "rewrap", cmd_rewrap }, { "list", cmd_list }, { "status", cmd_status },
	{ "keygen", cmd_keygen },
};

int
main(int argc, char **argv)
{
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
	if (strcmp(cmd, "audit") == 0)
		return ct_audit_cli(argc, argv);
	optind = 0; /* 0: GNU getopt re-initialises (the first scan used "+") */
	while ((ch = getopt(argc, argv, "v:i:d:c:p:b")) != -1) {
		switch (ch) {
		case 'v': o.version = optarg; break;
		case 'i': o.input = optarg; break;
		case 'd': o.digest = optarg; break;
		case 'c': o.context = optarg; break;
		case 'p': o.policy = optarg; break;
		case 'b': o.b64 = true; break;
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
