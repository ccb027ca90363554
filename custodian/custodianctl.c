/* custodianctl: the command-line client of custodiand, and the offline
 * tools (keygen, audit verify, access review, backup).
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
#include <openssl/pem.h>

#include "custodian/ct_auditcli.h"
#include "custodian/ct_backup.h"
#include "custodian/ct_blob.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_ops.h"
#include "custodian/ct_proto.h"
#include "custodian/ct_readers.h"
#include "custodian/ct_stmt.h"
#include "custodian/ct_tokens.h"
#include "custodian/ct_util.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3
#define REPLY_MAX (1u << 20)
#define DEFAULT_SOCKET "/run/custodian/custodian.sock"
#define REVIEW_DAYS 7	   /* access: grants ending this soon are flagged */
#define REVIEW_DAYS_MAX 3650
#define REPLY_TIMEOUT_S 30 /* default; $CUSTODIAN_TIMEOUT overrides, 1..3600 */

static const char *sock_path;
static long reply_timeout = REPLY_TIMEOUT_S;

/* Options shared by the subcommands; each uses the ones it documents. */
typedef struct {
	const char *version;
	const char *input;   /* -i FILE: message or plaintext, else stdin */
	const char *digest;  /* -d HEX */
	const char *context; /* -c TEXT */
	const char *policy;  /* -p FILE (keygen, access, backup tools) */
	const char *now;     /* --now TIME (access) */
	const char *within;  /* --within DAYS (access) */
	bool json;	     /* --json (access) */
	bool b64;	     /* -b: print unwrapped plaintext as base64 */
	/* approve/deny/freeze: the custodian's card */
	const char *module;    /* --pkcs11-module */
	const char *token;     /* --token LABEL */
	const char *keylabel;  /* --key LABEL */
	const char *custodian; /* --custodian NAME (as in the policy) */
	const char *pin_file;  /* --pin-file FILE, else the terminal */
	const char *reader;    /* --reader NAME (wait-card) */
	const char *timeout;   /* --timeout SECONDS (wait-card, --wait-card) */
	bool wait_card;	       /* --wait-card: approve once a card is in */
	/* Backup tools: --module is --pkcs11-module, --token a policy token. */
	const char *from, *to, *scratch;
	const char *from_pin, *from_so_pin, *to_so_pin;
	const char *verify_key, *sign_key, *output;
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
	    "  request rotate KEY | revoke KEY VERSION | policy FILE | freeze [KEY] | unfreeze [KEY]\n"
	    "          | backup FILE | restore FILE\n"
	    "                                                open a governance request (security officers)\n"
	    "  requests | show ID | due                      open requests, one request, rotation dates\n"
	    "  approve ID CARD | deny ID CARD                sign the request's statement with your card\n"
	    "  freeze [KEY] CARD                             freeze at once (one custodian)\n"
	    "    CARD: --custodian NAME --pkcs11-module SO --token LABEL --key LABEL [--pin-file F]\n"
	    "          [--wait-card [--reader NAME] [--timeout SECONDS]]  wait for the card first\n"
	    "  readers                                       list readers, cards and ATRs (pcscd)\n"
	    "  wait-card [--reader NAME] [--timeout SECONDS] exit 0 once a card is present\n"
	    "  audit verify|checkpoint-export|query|summary  read audit logs (audit -h)\n"
	    "  backup-init -p POLICY --from LABEL --to LABEL [--module M]\n"
	    "      [--from-pin-file F] [--from-so-pin-file F] [--to-so-pin-file F]\n"
	    "                                                copy the backup wrapping key to a token\n"
	    "  backup -p POLICY --sign-key KEY -o FILE       write a backup (offline)\n"
	    "  restore -p POLICY --verify-key PEM [--token NAME] FILE\n"
	    "                                                restore a backup onto the token (offline)\n"
	    "  dr-drill FILE -p POLICY --scratch-token LABEL --verify-key PEM [--pin-file F]\n"
	    "                                                restore, test and remove on a scratch token\n"
	    "  access -p POLICY [--now TIME] [--within DAYS] [--json]\n"
	    "                                                who may do what on which key, until\n"
	    "                                                when; flags grants ending within DAYS\n"
	    "                                                (default 7) and those already ended\n"
	    "PINs of the backup tools come from the files named, else a no-echo prompt.\n"
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
	if ((r = p11_generate_key(s, ct_p11_key_type(pk->type), label,
	    pk->backup)) != CT_OK)
		die(EXIT_REFUSED, "generating %s: %s %s", label, ct_strerror(r),
		    p11_session_last_error(s));
	printf("%s\n", label);
	p11_session_free(s);
	p11_token_free(tok);
	pol_free(pol);
	return 0;
}

/* Backup tools.  Offline: they talk to the tokens directly. */

static pol_policy *
load_policy(const opts *o)
{
	char err[512];
	pol_policy *pol = NULL;

	if (o->policy == NULL)
		usage();
	if (pol_load_file(o->policy, &pol, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	return pol;
}

/* The policy token named by --token, else the first. */
static size_t
policy_token(const opts *o, const pol_policy *pol)
{
	const pol_token *pt;

	if (o->token == NULL)
		return 0;
	if ((pt = pol_find_token(pol, o->token)) == NULL)
		die(EXIT_USAGE, "no token \"%s\" in %s", o->token, o->policy);
	return (size_t)(pt - pol->tokens);
}

/* A PIN from a file, else from the terminal with echo off; never argv. */
static p11_pin
get_pin(const char *file, const char *prompt)
{
	char err[512], *pin = NULL;
	size_t len = 0;
	ct_err r;

	r = file != NULL ? ct_secret_from_file(file, &pin, &len, err, sizeof(err)) :
	    ct_secret_from_tty(prompt, &pin, &len, err, sizeof(err));
	if (r != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	return (p11_pin){ pin, len };
}

static void
free_pin(p11_pin *p)
{
	if (p->pin != NULL)
		OPENSSL_secure_clear_free((void *)p->pin, p->len + 1);
	p->pin = NULL;
}

static p11_token *
open_token(const char *module, const char *label)
{
	p11_token_spec spec = { module, label, NULL };
	p11_token *t = NULL;
	char err[512];

	if (p11_token_open(&spec, &t, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	return t;
}

static EVP_PKEY *
read_public_key(const char *path)
{
	EVP_PKEY *pk;
	FILE *f;

	if (path == NULL)
		usage();
	if ((f = fopen(path, "r")) == NULL)
		die(EXIT_USAGE, "%s: %s", path, strerror(errno));
	pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL)
		die(EXIT_USAGE, "%s: not a PEM public key", path);
	return pk;
}

/* Offline there are no records of version states: the backup calls every
 * version active, a restore knows none (so refuses none). */
static ct_backup_vstate
offline_state(void *arg, const char *key, uint32_t version)
{
	return *(const ct_backup_vstate *)arg;
}

static int
cmd_backup_init(const opts *o)
{
	char err[512];
	pol_policy *pol;
	p11_token *src, *dst;
	p11_pin user, so, to_so;
	bool created;
	ct_err r;

	need_args(o, 0);
	if (o->from == NULL || o->to == NULL)
		usage();
	pol = load_policy(o);
	src = open_token(o->module ? o->module : pol->tokens[0].module, o->from);
	dst = open_token(o->module ? o->module : pol->tokens[0].module, o->to);
	user = get_pin(o->from_pin, "user PIN of the backup token");
	so = get_pin(o->from_so_pin, "SO PIN of the backup token");
	to_so = get_pin(o->to_so_pin, "SO PIN of the target token");
	r = p11_wrapkey_transport(src, &user, &so, dst, &to_so,
	    CT_BACKUP_WRAP_LABEL, &created, err, sizeof(err));
	free_pin(&user);
	free_pin(&so);
	free_pin(&to_so);
	if (r != CT_OK)
		die(EXIT_REFUSED, "backup-init: %s (%s)", err, ct_strerror(r));
	printf("%s the wrapping key \"%s\" on %s; its trusted twin is on %s\n",
	    created ? "created" : "used", CT_BACKUP_WRAP_LABEL, o->from, o->to);
	p11_token_free(dst);
	p11_token_free(src);
	pol_free(pol);
	return 0;
}

/* Every token of the policy, logged in, and the key store on them. */
static void
connect_all(const pol_policy *pol, p11_token **toks, p11_session **sess,
    ct_keystore **ks)
{
	char err[512];
	size_t i;
	ct_err r;

	for (i = 0; i < pol->n_tokens; i++) {
		if (ct_token_connect(&pol->tokens[i], &toks[i], err,
		    sizeof(err)) != CT_OK)
			die(EXIT_REFUSED, "%s", err);
		if ((r = p11_session_open(toks[i], &sess[i])) != CT_OK)
			die(EXIT_REFUSED, "session: %s", ct_strerror(r));
	}
	if (ks != NULL && ct_keys_load(pol, sess, ks, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
}

static void
disconnect_all(const pol_policy *pol, p11_token **toks, p11_session **sess)
{
	size_t i;

	for (i = 0; i < pol->n_tokens; i++) {
		p11_session_free(sess[i]);
		p11_token_free(toks[i]);
	}
	free(sess);
	free(toks);
}

static int
cmd_backup(const opts *o)
{
	char err[512];
	pol_policy *pol;
	const pol_key *pk;
	const ct_keyver *kv;
	p11_token **toks;
	p11_session **sess;
	ct_keystore *ks = NULL;
	ct_backup_signer signer;
	ct_backup_vstate active = CT_VSTATE_ACTIVE;
	size_t n;

	need_args(o, 0);
	if (o->sign_key == NULL || o->output == NULL)
		usage();
	pol = load_policy(o);
	if ((pk = pol_find_key(pol, o->sign_key)) == NULL ||
	    pk->sign == POL_SIGN_NONE)
		die(EXIT_USAGE, "no signing key \"%s\" in %s", o->sign_key,
		    o->policy);
	if ((toks = calloc(pol->n_tokens, sizeof(*toks))) == NULL ||
	    (sess = calloc(pol->n_tokens, sizeof(*sess))) == NULL)
		die(EXIT_REFUSED, "out of memory");
	connect_all(pol, toks, sess, &ks);
	if ((kv = ct_key_version(ct_keys_find(ks, pk->name), 0)) == NULL)
		die(EXIT_REFUSED, "key %s has no version on the token", pk->name);
	signer.key = kv->handle;
	signer.sign = pk->sign;
	if (ct_backup_create(sess[pk->token], pol, pk->token, ks, offline_state,
	    &active, &signer, o->output, &n, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "backup: %s", err);
	printf("%s: %zu versions, signed by %s/v%u\n", o->output, n, pk->name,
	    kv->version);
	ct_keys_free(ks);
	disconnect_all(pol, toks, sess);
	pol_free(pol);
	return 0;
}

static void
print_restored(const ct_restored *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%s/v%u %s%s\n", res[i].name, res[i].version,
		    ct_backup_vstate_name(res[i].state),
		    res[i].existed ? " (already on the token)" : "");
}

static int
cmd_restore(const opts *o)
{
	char err[512];
	pol_policy *pol;
	p11_token **toks;
	p11_session **sess;
	EVP_PKEY *pub;
	ct_restored *res = NULL;
	ct_backup_vstate unknown = CT_VSTATE_UNKNOWN;
	size_t n, t;
	ct_err r;

	need_args(o, 1);
	pol = load_policy(o);
	t = policy_token(o, pol);
	pub = read_public_key(o->verify_key);
	if ((toks = calloc(pol->n_tokens, sizeof(*toks))) == NULL ||
	    (sess = calloc(pol->n_tokens, sizeof(*sess))) == NULL)
		die(EXIT_REFUSED, "out of memory");
	connect_all(pol, toks, sess, NULL);
	r = ct_backup_restore(sess[t], pol, t, o->args[0], pub, offline_state,
	    &unknown, 0, &res, &n, err, sizeof(err));
	if (r != CT_OK)
		die(EXIT_REFUSED, "restore: %s: %s", ct_err_code(r), err);
	print_restored(res, n);
	free(res);
	EVP_PKEY_free(pub);
	disconnect_all(pol, toks, sess);
	pol_free(pol);
	return 0;
}

/* Use a restored version as the service would: sign and verify with the
 * public key from the file; encrypt and decrypt a test value. */
static bool
drill_version(p11_session *s, const pol_key *pk, const ct_backup_entry *e)
{
	static const uint8_t test[32] = "custodian dr-drill test value..";
	uint8_t md[EVP_MAX_MD_SIZE], sig[CT_SIG_MAX], iv[12];
	uint8_t ct[512], back[512];
	size_t siglen = sizeof(sig), ctlen = sizeof(ct), backlen = sizeof(back);
	unsigned int mdlen = 0;
	const char *sign = "-", *round = "-";
	ct_keyref ref = { .version = e->version, .type = e->type,
	    .sign = pk->sign, .oaep = pk->oaep, .pub = e->pub };
	bool ok = false, good = true;
	ct_err r;

	snprintf(ref.name, sizeof(ref.name), "%s", e->name);
	if (ct_key_label(e->name, e->version, ref.label, sizeof(ref.label)) != CT_OK ||
	    p11_find(s, e->type == POL_KEY_AES_256 ? P11_OBJ_SECRET :
	    P11_OBJ_PRIVATE, ref.label, &ref.handle) != CT_OK) {
		printf("  %s: not found on the scratch token: FAILED\n", ref.label);
		return false;
	}
	if (pk->sign != POL_SIGN_NONE) {
		ok = EVP_Digest(ref.label, strlen(ref.label), md, &mdlen,
		    ct_sign_md(pk->sign), NULL) == 1 &&
		    p11_sign(s, ref.handle, ct_sign_mech(pk->sign), md, mdlen, sig,
		    &siglen) == CT_OK &&
		    ct_verify_digest(e->pub, pk->sign, md, mdlen, sig, siglen,
		    &ok) == CT_OK && ok;
		sign = ok ? "ok" : "FAILED";
		good = ok;
	}
	if (e->type == POL_KEY_AES_256) {
		ok = p11_random(s, iv, sizeof(iv)) == CT_OK &&
		    p11_aes_gcm_encrypt(s, ref.handle, iv, NULL, 0, test,
		    sizeof(test), ct, &ctlen) == CT_OK &&
		    p11_aes_gcm_decrypt(s, ref.handle, iv, NULL, 0, ct, ctlen, back,
		    &backlen) == CT_OK;
		round = ok && backlen == sizeof(test) &&
		    memcmp(back, test, sizeof(test)) == 0 ? "ok" : "FAILED";
	} else if (e->type == POL_KEY_RSA_3072) {
		r = ct_rsa_oaep_encrypt(&ref, test, sizeof(test), ct, &ctlen);
		if (r == CT_OK)
			r = p11_rsa_oaep_decrypt(s, ref.handle, pk->oaep ==
			    POL_OAEP_SHA1 ? P11_HASH_SHA1 : P11_HASH_SHA256, ct,
			    ctlen, back, &backlen);
		round = r == CT_ERR_UNSUPPORTED ? "skipped (token lacks this OAEP)" :
		    r == CT_OK && backlen == sizeof(test) &&
		    memcmp(back, test, sizeof(test)) == 0 ? "ok" : "FAILED";
	}
	good = good && strcmp(round, "FAILED") != 0;
	printf("  %-32s %-8s sign %-6s round trip %s\n", ref.label,
	    ct_backup_vstate_name(e->state), sign, round);
	OPENSSL_cleanse(back, sizeof(back));
	return good;
}

static int
cmd_dr_drill(const opts *o)
{
	char err[512], label[P11_LABEL_MAX];
	pol_policy *pol;
	ct_backup *b = NULL;
	p11_token *tok;
	p11_session *s = NULL;
	p11_pin pin;
	EVP_PKEY *pub;
	ct_restored *res = NULL;
	ct_backup_vstate unknown = CT_VSTATE_UNKNOWN;
	size_t i, n = 0, good = 0, gone, removed = 0;
	size_t t;
	ct_err r;

	need_args(o, 1);
	if (o->scratch == NULL)
		usage();
	pol = load_policy(o);
	t = policy_token(o, pol);
	pub = read_public_key(o->verify_key);
	if ((r = ct_backup_read(o->args[0], pub, &b, err, sizeof(err))) != CT_OK)
		die(EXIT_REFUSED, "dr-drill: %s: %s", ct_err_code(r), err);
	printf("backup %s: digest and signature good, %zu versions, policy %s\n",
	    o->args[0], b->n_entries, memcmp(b->policy_digest, pol->digest,
	    sizeof(pol->digest)) == 0 ? "as now" : "differs from the current one");
	tok = open_token(o->module ? o->module : pol->tokens[t].module, o->scratch);
	pin = get_pin(o->pin_file, "user PIN of the scratch token");
	r = p11_token_login(tok, pin.pin, pin.len);
	free_pin(&pin);
	if (r != CT_OK || (r = p11_session_open(tok, &s)) != CT_OK)
		die(EXIT_REFUSED, "scratch token %s: %s", o->scratch, ct_strerror(r));
	r = ct_backup_restore(s, pol, t, o->args[0], pub, offline_state, &unknown,
	    CT_RESTORE_ANY_POLICY, &res, &n, err, sizeof(err));
	if (r != CT_OK)
		die(EXIT_REFUSED, "dr-drill: restore: %s: %s", ct_err_code(r), err);
	printf("restored %zu versions onto %s\n", n, o->scratch);
	for (i = 0; i < n; i++)
		if (drill_version(s, pol_find_key(pol, b->entries[i].name),
		    &b->entries[i]))
			good++;
	/* The scratch copies go whatever the result. */
	for (i = 0; i < n; i++) {
		if (ct_key_label(res[i].name, res[i].version, label,
		    sizeof(label)) != CT_OK ||
		    p11_destroy_label(s, label, &gone) != CT_OK)
			die(EXIT_REFUSED, "removing %s from the scratch token: %s",
			    label, p11_session_last_error(s));
		removed += gone;
	}
	printf("drill %s: %zu of %zu versions usable; %zu objects removed from "
	    "%s\n", good == n ? "passed" : "FAILED", good, n, removed,
	    o->scratch);
	free(res);
	ct_backup_free(b);
	EVP_PKEY_free(pub);
	p11_session_free(s);
	p11_token_free(tok);
	pol_free(pol);
	return good == n ? 0 : EXIT_REFUSED;
}

/* Straight from pcscd: works without a daemon. */
static int
cmd_readers(const opts *o)
{
	ct_readers_snapshot s;
	char why[256], atr[2 * CT_ATR_MAX + 1];
	size_t i;

	need_args(o, 0);
	if (ct_readers_scan(&s, why, sizeof(why)) != CT_OK)
		die(EXIT_REFUSED, "%s", why);
	printf("%-40s %-5s %s\n", "READER", "CARD", "ATR");
	for (i = 0; i < s.n; i++) {
		ct_hex(s.readers[i].atr, s.readers[i].atr_len, atr);
		printf("%-40s %-5s %s\n", s.readers[i].name,
		    s.readers[i].card ? "yes" : "no",
		    s.readers[i].card ? atr : "-");
	}
	return 0;
}

/* Wait --timeout seconds (default 30) for a card in --reader, or in any
 * reader; exits when none came. */
static void
wait_card(const opts *o, char found[CT_READER_NAME_MAX])
{
	unsigned long secs = 30;
	char why[256];

	if (o->timeout != NULL && !parse_number(o->timeout, 0, 86400, &secs))
		die(EXIT_USAGE, "--timeout must be 0 to 86400 seconds");
	if (ct_readers_wait_card(o->reader, (long)secs * 1000, found, why,
	    sizeof(why)) != CT_OK)
		die(EXIT_REFUSED, "%s", why);
}

static int
cmd_wait_card(const opts *o)
{
	char found[CT_READER_NAME_MAX];

	need_args(o, 0);
	wait_card(o, found);
	printf("%s\n", found);
	return 0;
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

/* ---- governance ---- */

static int
cmd_request(const opts *o)
{
	static const int nargs[] = {
		[CT_ACT_ROTATE] = 2, [CT_ACT_REVOKE] = 3, [CT_ACT_POLICY] = 2,
		[CT_ACT_FREEZE] = -1, [CT_ACT_UNFREEZE] = -1, [CT_ACT_BACKUP] = 2,
		[CT_ACT_RESTORE] = 2,
	};
	ct_action a = o->n_args > 0 ? ct_action_from_name(o->args[0]) : 0;
	uint8_t digest[32];
	char err[512], path[CT_STMT_PATH_MAX], cwd[CT_STMT_PATH_MAX];
	pol_policy *pol = NULL;
	json_t *req, *res;
	opts v = *o;

	if (a == 0 || (nargs[a] > 0 && o->n_args != nargs[a]) ||
	    (nargs[a] < 0 && o->n_args > 2))
		usage();
	req = new_request("gov_request", "action", o->args[0]);
	if (a == CT_ACT_POLICY) {
		/* Refuse to ask custodians to approve a file that does not load. */
		if (pol_load_file(o->args[1], &pol, err, sizeof(err)) != CT_OK)
			die(EXIT_REFUSED, "%s", err);
		memcpy(digest, pol->digest, sizeof(digest));
		pol_free(pol);
		set_b64(req, "digest", digest, sizeof(digest));
	} else if (a == CT_ACT_BACKUP || a == CT_ACT_RESTORE) {
		/* The daemon runs elsewhere: give it an absolute path. */
		if (o->args[1][0] == '/')
			snprintf(path, sizeof(path), "%s", o->args[1]);
		else if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    snprintf(path, sizeof(path), "%s/%s", cwd, o->args[1]) >=
		    (int)sizeof(path))
			die(EXIT_USAGE, "%s: path too long", o->args[1]);
		json_object_set_new(req, "file", json_string(path));
		if (a == CT_ACT_RESTORE) {
			if (ct_file_sha256(path, digest, err, sizeof(err)) != CT_OK)
				die(EXIT_REFUSED, "%s", err);
			set_b64(req, "digest", digest, sizeof(digest));
		}
	} else if (o->n_args > 1)
		json_object_set_new(req, "key", json_string(o->args[1]));
	if (a == CT_ACT_REVOKE) {
		v.version = o->args[2];
		set_version(req, &v);
	}
	res = call(req);
	printf("request %s\n%s", json_string_value(json_object_get(res, "request")),
	    json_string_value(json_object_get(res, "statement")) ?: "");
	json_decref(res);
	return 0;
}

static int
cmd_requests(const opts *o)
{
	need_args(o, 0);
	return print_json(call(new_request("gov_list", NULL, NULL)));
}

static int
cmd_show(const opts *o)
{
	need_args(o, 1);
	return print_json(call(new_request("gov_show", "request", o->args[0])));
}

static int
cmd_due(const opts *o)
{
	need_args(o, 0);
	return print_json(call(new_request("due", NULL, NULL)));
}

/* Sign the statement (and the decision) with the custodian's card. */
static uint8_t *
card_sign(const opts *o, const char *text, size_t len, bool approve,
	  size_t *siglen)
{
	pol_token card = { .name = "card", .module = (char *)o->module,
			   .label = (char *)o->token, .pin_file = (char *)o->pin_file };
	uint8_t *msg, dg[32], *sig;
	p11_token *tok = NULL;
	p11_session *s = NULL;
	CK_OBJECT_HANDLE h;
	EVP_PKEY *pub = NULL;
	char err[512];
	size_t mlen;
	ct_err r;

	if (o->module == NULL || o->token == NULL || o->keylabel == NULL ||
	    o->custodian == NULL)
		die(EXIT_USAGE, "approving needs --custodian, --pkcs11-module, "
		    "--token and --key");
	if ((r = ct_stmt_signed_bytes(text, len, approve, &msg, &mlen)) != CT_OK ||
	    EVP_Digest(msg, mlen, dg, NULL, EVP_sha256(), NULL) != 1)
		die(EXIT_REFUSED, "hashing the statement failed");
	free(msg);
	if (ct_token_connect(&card, &tok, err, sizeof(err)) != CT_OK)
		die(EXIT_REFUSED, "%s", err);
	if ((r = p11_session_open(tok, &s)) != CT_OK ||
	    (r = p11_find(s, P11_OBJ_PRIVATE, o->keylabel, &h)) != CT_OK ||
	    (r = p11_public_key(s, o->keylabel, &pub)) != CT_OK)
		die(EXIT_REFUSED, "key \"%s\" on the card: %s", o->keylabel,
		    ct_strerror(r));
	*siglen = 1024;
	if ((sig = malloc(*siglen)) == NULL)
		die(EXIT_REFUSED, "out of memory");
	/* What ct_stmt_verify expects: ECDSA-SHA256, or PKCS#1 v1.5 SHA-256. */
	r = p11_sign(s, h, EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC ?
	    P11_SIG_ECDSA : P11_SIG_RSA_PKCS1_SHA256, dg, sizeof(dg), sig, siglen);
	if (r != CT_OK)
		die(EXIT_REFUSED, "signing on the card: %s %s", ct_strerror(r),
		    p11_session_last_error(s));
	EVP_PKEY_free(pub);
	p11_session_free(s);
	p11_token_free(tok);
	return sig;
}

/* Fetch the statement, show it, sign it on the card, send the decision. */
static int
decide(const opts *o, const char *id, bool approve)
{
	char found[CT_READER_NAME_MAX];
	json_t *shown, *req, *res;
	const char *text;
	uint8_t *sig;
	size_t len, siglen;
	ct_stmt st;

	if (o->wait_card) {
		wait_card(o, found);
		fprintf(stderr, "card present in %s\n", found);
	}
	shown = call(new_request("gov_show", "request", id));
	if ((text = json_string_value(json_object_get(shown, "statement"))) == NULL)
		die(EXIT_CONNECT, "reply has no statement");
	len = strlen(text);
	/* Sign only what we can read back as a well-formed statement for
	 * this very request. */
	if (ct_stmt_parse(text, len, &st) != CT_OK || strcmp(st.id, id) != 0)
		die(EXIT_REFUSED, "the daemon's statement for %s is malformed: "
		    "not signing", id);
	fprintf(stderr, "You %s:\n%s", approve ? "approve" : "deny", text);
	sig = card_sign(o, text, len, approve, &siglen);
	json_decref(shown);
	req = new_request("gov_approve", "request", id);
	json_object_set_new(req, "custodian", json_string(o->custodian));
	json_object_set_new(req, "decision", json_string(approve ? "approve" : "deny"));
	set_b64(req, "signature", sig, siglen);
	free(sig);
	res = call(req);
	printf("request %s: %s (%lld of %lld approvals)\n", id,
	    json_string_value(json_object_get(res, "state")),
	    (long long)json_integer_value(json_object_get(res, "approved")),
	    (long long)json_integer_value(json_object_get(res, "needed")));
	json_decref(res);
	return 0;
}

static int
cmd_approve(const opts *o)
{
	need_args(o, 1);
	return decide(o, o->args[0], true);
}

static int
cmd_deny(const opts *o)
{
	need_args(o, 1);
	return decide(o, o->args[0], false);
}

/* One custodian freezes at once: open the request and approve it. */
static int
cmd_freeze(const opts *o)
{
	json_t *req, *res;
	char id[CT_REQ_ID_LEN + 1];

	if (o->n_args > 1)
		usage();
	req = new_request("gov_request", "action", "freeze");
	if (o->n_args == 1)
		json_object_set_new(req, "key", json_string(o->args[0]));
	res = call(req);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(res,
	    "request")) ?: "");
	json_decref(res);
	return decide(o, id, true);
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
	{ "request", cmd_request }, { "requests", cmd_requests },
	{ "show", cmd_show }, { "due", cmd_due }, { "approve", cmd_approve },
	{ "deny", cmd_deny }, { "freeze", cmd_freeze },
	{ "readers", cmd_readers }, { "wait-card", cmd_wait_card },
	{ "backup-init", cmd_backup_init }, { "backup", cmd_backup },
	{ "restore", cmd_restore }, { "dr-drill", cmd_dr_drill },
	{ "access", cmd_access },
};

enum {
	OPT_FROM = 256, OPT_TO, OPT_SCRATCH, OPT_FROM_PIN, OPT_FROM_SO_PIN,
	OPT_TO_SO_PIN, OPT_VERIFY_KEY, OPT_SIGN_KEY,
};

static const struct option longopts[] = {
	{ "pkcs11-module", required_argument, NULL, 'M' },
	{ "module", required_argument, NULL, 'M' },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "scratch-token", required_argument, NULL, OPT_SCRATCH },
	{ "from-pin-file", required_argument, NULL, OPT_FROM_PIN },
	{ "from-so-pin-file", required_argument, NULL, OPT_FROM_SO_PIN },
	{ "to-so-pin-file", required_argument, NULL, OPT_TO_SO_PIN },
	{ "verify-key", required_argument, NULL, OPT_VERIFY_KEY },
	{ "sign-key", required_argument, NULL, OPT_SIGN_KEY },
	{ "token", required_argument, NULL, 'T' },
	{ "key", required_argument, NULL, 'K' },
	{ "custodian", required_argument, NULL, 'C' },
	{ "pin-file", required_argument, NULL, 'P' },
	{ "reader", required_argument, NULL, 'r' },
	{ "timeout", required_argument, NULL, 't' },
	{ "now", required_argument, NULL, 'N' },
	{ "within", required_argument, NULL, 'W' },
	{ "json", no_argument, NULL, 'J' },
	{ "wait-card", no_argument, NULL, 'w' },
	{ NULL, 0, NULL, 0 },
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
	while ((ch = getopt_long(argc, argv, "v:i:d:c:p:bo:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o': o.output = optarg; break;
		case OPT_FROM: o.from = optarg; break;
		case OPT_TO: o.to = optarg; break;
		case OPT_SCRATCH: o.scratch = optarg; break;
		case OPT_FROM_PIN: o.from_pin = optarg; break;
		case OPT_FROM_SO_PIN: o.from_so_pin = optarg; break;
		case OPT_TO_SO_PIN: o.to_so_pin = optarg; break;
		case OPT_VERIFY_KEY: o.verify_key = optarg; break;
		case OPT_SIGN_KEY: o.sign_key = optarg; break;
		case 'M': o.module = optarg; break;
		case 'T': o.token = optarg; break;
		case 'K': o.keylabel = optarg; break;
		case 'C': o.custodian = optarg; break;
		case 'P': o.pin_file = optarg; break;
		case 'r': o.reader = optarg; break;
		case 't': o.timeout = optarg; break;
		case 'N': o.now = optarg; break;
		case 'W': o.within = optarg; break;
		case 'J': o.json = true; break;
		case 'w': o.wait_card = true; break;
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
