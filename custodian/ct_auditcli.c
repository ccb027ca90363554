/* ct_auditcli.c: the audit subcommands of custodianctl (ct_auditcli.h). */
#include "custodian/ct_auditcli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "custodian/ct_audit.h"
#include "custodian/ct_auditq.h"
#include "custodian/ct_util.h"

#define EXIT_FOUND 1
#define EXIT_USAGE 2

/* The subcommands, as bits: which options each takes. */
enum { VERIFY = 1, EXPORT = 2, QUERY = 4, SUMMARY = 8 };

static const struct {
	const char *name;
	unsigned bit;
} subcommands[] = {
	{ "verify", VERIFY }, { "checkpoint-export", EXPORT },
	{ "query", QUERY }, { "summary", SUMMARY },
};

enum { O_KEY = 256, O_VERIFY_KEY, O_CHECKPOINTS, O_LIVE, O_UNVERIFIED,
       O_SINCE, O_UNTIL, O_VERSION, O_CLIENT, O_OP, O_RESULT, O_REQUEST_ID,
       O_TABLE, O_OUTPUT = 'o' };

static const struct option longopts[] = {
	{ "key", required_argument, NULL, O_KEY },
	{ "verify-key", required_argument, NULL, O_VERIFY_KEY },
	{ "checkpoints", required_argument, NULL, O_CHECKPOINTS },
	{ "live", no_argument, NULL, O_LIVE },
	{ "unverified", no_argument, NULL, O_UNVERIFIED },
	{ "since", required_argument, NULL, O_SINCE },
	{ "until", required_argument, NULL, O_UNTIL },
	{ "version", required_argument, NULL, O_VERSION },
	{ "client", required_argument, NULL, O_CLIENT },
	{ "op", required_argument, NULL, O_OP },
	{ "result", required_argument, NULL, O_RESULT },
	{ "request-id", required_argument, NULL, O_REQUEST_ID },
	{ "table", no_argument, NULL, O_TABLE },
	{ "output", required_argument, NULL, O_OUTPUT },
	{ NULL, 0, NULL, 0 },
};

/* Which subcommands take each option. */
static unsigned
takes(int opt)
{
	switch (opt) {
	case O_KEY:
		return VERIFY | EXPORT | QUERY | SUMMARY;
	case O_CHECKPOINTS:
	case O_LIVE:
		return VERIFY | QUERY | SUMMARY;
	case O_OUTPUT:
		return EXPORT;
	case O_TABLE:
		return QUERY;
	default:
		return QUERY | SUMMARY;
	}
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: custodianctl audit verify [--key PEM]... [--checkpoints FILE] [--live] FILE...\n"
	    "       custodianctl audit checkpoint-export [--key PEM]... [-o FILE] FILE...\n"
	    "       custodianctl audit query FILE... [--since T] [--until T] [--key NAME]\n"
	    "           [--version N] [--client UID|USER] [--op OP] [--result ok|error|CODE]\n"
	    "           [--request-id ID] [--table] [--verify-key PEM]... [--checkpoints FILE]\n"
	    "           [--live] [--unverified]\n"
	    "       custodianctl audit summary FILE... [--since T] [--until T] (and the query filters)\n"
	    "FILE... is the chain oldest first: rotated files, then the active one.\n"
	    "T is YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z] (UTC), @EPOCH, or -N{s,m,h,d} (ago).\n");
	return EXIT_USAGE;
}

static int __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ct_vmsg("custodianctl", fmt, ap);
	va_end(ap);
	return EXIT_FOUND;
}

struct args {
	unsigned cmd;
	EVP_PKEY *keys[CT_AUDIT_KEYS_MAX];
	ct_audit_walk_opts walk;
	ct_auditq_filter filter;
	bool table;
	const char *output;
	char **files;
	size_t n_files;
};

static int
add_key(struct args *a, const char *path)
{
	FILE *f;

	if (a->walk.n_keys == CT_AUDIT_KEYS_MAX)
		return fail("at most %d keys", CT_AUDIT_KEYS_MAX);
	if ((f = fopen(path, "r")) == NULL)
		return fail("%s: %s", path, strerror(errno));
	a->keys[a->walk.n_keys] = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (a->keys[a->walk.n_keys] == NULL)
		return fail("%s: not a PEM public key", path);
	a->walk.n_keys++;
	return 0;
}

static int
set_client(struct args *a, const char *s)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096], *end;
	unsigned long u;

	errno = 0;
	u = strtoul(s, &end, 10);
	if (s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 &&
	    u < UINT32_MAX) {
		a->filter.uid = (uid_t)u;
	} else if (getpwnam_r(s, &pw, buf, sizeof(buf), &pwp) == 0 &&
	    pwp != NULL) {
		a->filter.uid = pwp->pw_uid;
	} else
		return fail("--client: no user \"%s\"", s);
	a->filter.has_uid = true;
	return 0;
}

/* Where an option that takes a string keeps it; NULL for the others. */
static const char **
string_slot(struct args *a, int opt)
{
	switch (opt) {
	case O_KEY: /* a key name to match; for verify and export a PEM file */
		return a->cmd & (QUERY | SUMMARY) ? &a->filter.key : NULL;
	case O_CHECKPOINTS:
		return &a->walk.checkpoints;
	case O_OP:
		return &a->filter.op;
	case O_RESULT:
		return &a->filter.result;
	case O_REQUEST_ID:
		return &a->filter.request_id;
	case O_OUTPUT:
		return &a->output;
	}
	return NULL;
}

/* Where a flag is kept; NULL for the options with an argument. */
static bool *
flag_slot(struct args *a, int opt)
{
	switch (opt) {
	case O_LIVE:
		return &a->walk.live;
	case O_UNVERIFIED:
		return &a->walk.keep_going;
	case O_TABLE:
		return &a->table;
	}
	return NULL;
}

static int
set_option(struct args *a, int opt, const char *arg)
{
	const char **str = string_slot(a, opt);
	bool *flag = flag_slot(a, opt);
	char *end;
	unsigned long v;

	if (str != NULL || flag != NULL) {
		if (str != NULL)
			*str = arg;
		else
			*flag = true;
		return 0;
	}
	switch (opt) {
	case O_KEY:
	case O_VERIFY_KEY:
		return add_key(a, arg);
	case O_SINCE:
	case O_UNTIL:
		if (ct_auditq_time(arg, time(NULL), opt == O_SINCE ?
		    a->filter.since : a->filter.until) != CT_OK)
			return fail("bad time \"%s\"", arg);
		return 0;
	case O_VERSION:
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (arg[0] < '1' || arg[0] > '9' || *end != '\0' || errno != 0 ||
		    v > UINT32_MAX)
			return fail("bad version \"%s\"", arg);
		a->filter.version = (uint32_t)v;
		return 0;
	case O_CLIENT:
		return set_client(a, arg);
	}
	return usage();
}

static int
parse_args(struct args *a, int argc, char **argv)
{
	size_t i;
	int opt, r;

	if (argc < 2)
		return usage();
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			a->cmd = subcommands[i].bit;
	if (a->cmd == 0)
		return usage();
	optind = 0; /* GNU getopt: start afresh on this argv */
	while ((opt = getopt_long(argc - 1, argv + 1, "o:", longopts,
	    NULL)) != -1) {
		if (opt == '?' || (takes(opt) & a->cmd) == 0)
			return usage();
		if ((r = set_option(a, opt, optarg)) != 0)
			return r;
	}
	a->files = argv + 1 + optind;
	a->n_files = (size_t)(argc - 1 - optind);
	return a->n_files == 0 ? usage() : 0;
}

/* The first problem, named by file and line. */
static int
report_problem(const ct_audit_report *rep, ct_err r)
{
	if (r == CT_ERR_AUDIT)
		return fail("%s:%" PRIu64 ": %s", rep->bad_file, rep->bad_line,
		    rep->reason);
	if (r == CT_ERR_IO && rep->bad_file != NULL)
		return fail("%s: cannot be read", rep->bad_file);
	return fail("%s", ct_strerror(r));
}

static int
cmd_verify(struct args *a)
{
	ct_audit_report rep;
	ct_err r;

	r = ct_audit_walk((const char *const *)a->files, a->n_files, &a->walk,
	    NULL, NULL, &rep);
	if (r != CT_OK)
		return report_problem(&rep, r);
	printf("%s%s: chain intact, %" PRIu64 " lines (seq %" PRIu64 "..%"
	    PRIu64 "), %" PRIu64 " checkpoints", a->files[0],
	    a->n_files > 1 ? " and the files after it" : "", rep.lines,
	    rep.first_seq, rep.last_seq, rep.checkpoints);
	if (a->walk.n_keys == 0)
		printf(", signatures NOT checked (no --key)");
	else
		printf(", signed up to seq %" PRIu64, rep.signed_seq);
	if (a->walk.checkpoints != NULL)
		printf(", %" PRIu64 " exported checkpoints match", rep.exported);
	if (a->walk.n_keys > 0 && rep.tail_line != 0)
		printf("; %" PRIu64 " lines from %s:%" PRIu64 " on are not "
		    "signed yet", rep.tail_lines, rep.tail_file, rep.tail_line);
	printf("\n");
	return 0;
}

struct last_cp {
	char *line;
	size_t len;
	bool failed;
};

static ct_err
keep_checkpoint(void *arg, const json_t *obj, const char *line, size_t len)
{
	struct last_cp *lc = arg;
	const char *ev = json_string_value(json_object_get(obj, "event"));

	if (ev == NULL || strcmp(ev, "checkpoint") != 0)
		return CT_OK;
	free(lc->line);
	if ((lc->line = malloc(len + 1)) == NULL)
		return CT_ERR_NOMEM;
	memcpy(lc->line, line, len);
	lc->line[len] = '\n';
	lc->len = len + 1;
	return CT_OK;
}

/* Append the last checkpoint to the export file (or stdout) durably. */
static int
cmd_export(struct args *a)
{
	struct last_cp lc = { 0 };
	ct_audit_report rep;
	size_t off = 0;
	ssize_t n;
	int fd = STDOUT_FILENO, rc = EXIT_FOUND;
	ct_err r;

	/* The last checkpoint is what is exported: lines after it are fine. */
	a->walk.live = true;
	r = ct_audit_walk((const char *const *)a->files, a->n_files, &a->walk,
	    keep_checkpoint, &lc, &rep);
	if (r != CT_OK) {
		rc = report_problem(&rep, r);
		goto out;
	}
	if (lc.line == NULL) {
		rc = fail("no checkpoint to export");
		goto out;
	}
	if (a->output != NULL && (fd = open(a->output, O_WRONLY | O_APPEND |
	    O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		rc = fail("%s: %s", a->output, strerror(errno));
		goto out;
	}
	while (off < lc.len) {
		if ((n = write(fd, lc.line + off, lc.len - off)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < lc.len || (a->output != NULL && fsync(fd) != 0)) {
		rc = fail("%s: %s", a->output ? a->output : "stdout",
		    strerror(errno));
		goto out;
	}
	rc = 0;
 out:
	if (fd != STDOUT_FILENO && fd != -1)
		close(fd);
	free(lc.line);
	return rc;
}

static int
cmd_query(struct args *a)
{
	ct_audit_report rep;
	uint64_t matched;
	ct_err r;

	r = ct_auditq_run((const char *const *)a->files, a->n_files, &a->walk,
	    &a->filter, a->cmd == SUMMARY ? CT_AUDITQ_SUMMARY : a->table ?
	    CT_AUDITQ_TABLE : CT_AUDITQ_JSON, stdout, &matched, &rep);
	if (r == CT_ERR_AUDIT && a->walk.keep_going) {
		fprintf(stderr, "custodianctl: warning: shown unverified; "
		    "%s:%" PRIu64 ": %s\n", rep.bad_file, rep.bad_line,
		    rep.reason);
		return 0;
	}
	if (r == CT_ERR_AUDIT)
		fprintf(stderr, "custodianctl: nothing shown: the log does not "
		    "verify (--unverified shows it anyway)\n");
	return r == CT_OK ? 0 : report_problem(&rep, r);
}

int
ct_audit_cli(int argc, char **argv)
{
	struct args a = { .walk = { .keys = NULL } };
	size_t i;
	int rc;

	a.walk.keys = a.keys;
	if ((rc = parse_args(&a, argc, argv)) == 0)
		rc = a.cmd == VERIFY ? cmd_verify(&a) : a.cmd == EXPORT ?
		    cmd_export(&a) : cmd_query(&a);
	for (i = 0; i < a.walk.n_keys; i++)
		EVP_PKEY_free(a.keys[i]);
	return rc;
}
