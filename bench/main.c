/* custodian-bench: custodiand against the token it serves, in one run.
 *
 * bench/run.sh creates the token, the keys and the policy, starts
 * custodiand (and, where they work, a p11-kit server and an ssh-agent on
 * the same token) and runs this.  Every load runs for the same time, once
 * through custodiand and once straight on the token through p11.h, back to
 * back, so each row's ratio compares two measurements of the same machine
 * a few seconds apart.  Nothing is asserted: the exit status says only
 * whether everything answered.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bench/bench.h"
#include "custodian/ct_keys.h"
#include "custodian/ct_util.h"

/* The keys run.sh puts in the policy. */
#define KEY_EC "ec"
#define KEY_RSA "rsa"
#define KEY_AES "aes"
#define CONTEXT "bench"
#define CONC_MAX 8
#define REQ_LINE_MAX 16384
#define IDLE_DEFAULT 1000
#define SCALE_CONC 8
#define ACCEPT_WAIT_S 10

typedef struct {
	const char *sock, *module, *label, *pin_file;
	const char *p11kit_module, *p11kit_na;
	const char *agent_sock, *agent_na;
	long daemon_pid;
	double secs;
	int conc[CONC_MAX], rsa_conc[CONC_MAX];
	size_t n_conc, n_rsa_conc;
	int idle;
} opts;

typedef struct {
	const char *title;
	const char *key;
	direct_kind kind;
	p11_sig_mech mech;
	bool slow;		/* RSA-3072: the short concurrency list */
} workload;

static const workload workloads[] = {
	{ "ECDSA P-256 sign", KEY_EC, DIRECT_SIGN, P11_SIG_ECDSA, false },
	{ "RSA-3072 PSS sign", KEY_RSA, DIRECT_SIGN, P11_SIG_RSA_PSS_SHA256, true },
	{ "AES-256-GCM unwrap", KEY_AES, DIRECT_AES_UNWRAP, 0, false },
	{ "RSA-3072 OAEP-SHA1 unwrap", KEY_RSA, DIRECT_RSA_UNWRAP, 0, true },
};
#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* A workload made concrete: the request line and the direct operation. */
typedef struct {
	char line[REQ_LINE_MAX];
	char label[P11_LABEL_MAX];
	uint8_t *blob, *aad, *pt;
	size_t blob_len, aad_len, pt_len;
	ct_target_arg ct;
	direct_arg direct;
} prepared;

static uint8_t digest[32];	/* what every sign request signs */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("custodian-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: custodian-bench -s SOCKET -m MODULE -l LABEL "
	    "-k PIN_FILE [-p DAEMON_PID]\n"
	    "    [-t SECONDS] [-c CONC,...] [-r RSA_CONC,...] [-i IDLE]\n"
	    "    [-K P11KIT_CLIENT_MODULE | -X REASON] [-a AGENT_SOCKET | -Y REASON]\n");
	exit(2);
}

static size_t
parse_list(const char *s, int *out)
{
	char *end;
	long v;
	size_t n = 0;

	for (;;) {
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno != 0 || end == s || v < 1 || v > 1024 || n == CONC_MAX)
			usage();
		out[n++] = (int)v;
		if (*end == '\0')
			return n;
		if (*end != ',')
			usage();
		s = end + 1;
	}
}

/* The 1,000 idle connections and 64 threads need more than 1,024 fds. */
static void
raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)want ?
	    (rlim_t)want : rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* One request on a fresh connection; *res is its result. */
static ct_err
request(const char *sock, const char *line, json_t **res, char *err,
	size_t errlen)
{
	int fd;
	ct_err r;

	if ((r = unix_connect(sock, &fd, err, errlen)) != CT_OK)
		return r;
	r = custodian_call(fd, line, strlen(line), res, err, errlen);
	close(fd);
	return r;
}

static ct_err
b64_field(json_t *obj, const char *field, size_t max, uint8_t **out,
	  size_t *len)
{
	const char *s = json_string_value(json_object_get(obj, field));

	if (s == NULL)
		return CT_ERR_BAD_REQUEST;
	return ct_b64_decode(s, strlen(s), max, out, len);
}

/* The request line and the direct operation of one workload.  Unwraps
 * get a blob from a datakey request, made once, before any timing. */
static void
prepare(const opts *o, const workload *w, p11_token *tok, prepared *pp)
{
	char line[256], err[BENCH_ERR_MAX], *b64 = NULL;
	const char *blob;
	json_t *res = NULL;
	int n;
	ct_err r;

	memset(pp, 0, sizeof(*pp));
	pp->direct.tok = tok;
	pp->direct.kind = w->kind;
	pp->direct.mech = w->mech;
	pp->direct.digest = digest;
	pp->direct.label = pp->label;
	if (w->kind == DIRECT_SIGN) {
		if (ct_b64_encode(digest, sizeof(digest), &b64) != CT_OK ||
		    ct_key_label(w->key, 1, pp->label, sizeof(pp->label)) != CT_OK)
			die("out of memory");
		n = snprintf(pp->line, sizeof(pp->line), "{\"v\":1,\"op\":\"sign\","
		    "\"key\":\"%s\",\"digest\":\"%s\"}\n", w->key, b64);
		free(b64);
	} else {
		snprintf(line, sizeof(line), "{\"v\":1,\"op\":\"datakey\",\"key\":"
		    "\"%s\",\"context\":\"%s\"}\n", w->key, CONTEXT);
		if ((r = request(o->sock, line, &res, err, sizeof(err))) != CT_OK)
			die("datakey %s: %s", w->key, err);
		blob = json_string_value(json_object_get(res, "blob"));
		if (blob == NULL ||
		    b64_field(res, "blob", CT_BLOB_MAX, &pp->blob, &pp->blob_len) != CT_OK ||
		    b64_field(res, "plaintext", CT_BLOB_PLAIN_MAX, &pp->pt,
		    &pp->pt_len) != CT_OK ||
		    ct_blob_parse(pp->blob, pp->blob_len, &pp->direct.blob) != CT_OK ||
		    ct_blob_aad(pp->direct.blob.hdr, pp->direct.blob.hdr_len,
		    (const uint8_t *)CONTEXT, strlen(CONTEXT), &pp->aad,
		    &pp->aad_len) != CT_OK ||
		    ct_key_label(pp->direct.blob.name, pp->direct.blob.version,
		    pp->label, sizeof(pp->label)) != CT_OK)
			die("datakey %s: unusable reply", w->key);
		n = snprintf(pp->line, sizeof(pp->line), "{\"v\":1,\"op\":\"unwrap\","
		    "\"blob\":\"%s\",\"context\":\"%s\"}\n", blob, CONTEXT);
		json_decref(res);
		pp->direct.aad = pp->aad;
		pp->direct.aad_len = pp->aad_len;
		pp->direct.want = pp->pt;
		pp->direct.want_len = pp->pt_len;
	}
	if (n < 0 || (size_t)n >= sizeof(pp->line))
		die("request line too long");
	pp->ct.sock = o->sock;
	pp->ct.line = pp->line;
	pp->ct.len = (size_t)n;
}

static void
prepared_clear(prepared *pp)
{
	ct_free_secret(pp->pt, pp->pt_len);
	free(pp->blob);
	free(pp->aad);
}

/* Log in to a token through a module: SoftHSM2 itself, or p11-kit-client. */
static ct_err
token_open(const opts *o, const char *module, p11_token **tok, char *err,
	   size_t errlen)
{
	p11_token_spec spec = { module, o->label, NULL };
	char *pin = NULL;
	size_t pin_len = 0;
	ct_err r;

	if ((r = p11_token_open(&spec, tok, err, errlen)) != CT_OK)
		return r;
	if ((r = ct_secret_from_file(o->pin_file, &pin, &pin_len, err,
	    errlen)) == CT_OK) {
		if ((r = p11_token_login(*tok, pin, pin_len)) != CT_OK)
			snprintf(err, errlen, "login: %s", ct_strerror(r));
		OPENSSL_secure_clear_free(pin, pin_len + 1);
	}
	if (r != CT_OK) {
		p11_token_free(*tok);
		*tok = NULL;
	}
	return r;
}

/* CPU time (user + system, all threads) of this process or of `pid`, in
 * µs; -1 when unknown. */
static double
cpu_us(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	struct rusage ru;
	FILE *f;
	size_t n;

	if (pid == 0) {
		if (getrusage(RUSAGE_SELF, &ru) != 0)
			return -1;
		return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
		    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	}
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command in parentheses. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
	    &st) != 2)
		return -1;
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* One load, and what it cost in CPU per request: here, and in custodiand
 * when it is the target (daemon_pid, else 0). */
static ct_err
measure(const bench_ops *ops, const void *arg, const opts *o, int conc,
	long daemon_pid, bench_result *res, char *err, size_t errlen)
{
	bench_target t = { ops, arg };
	double self0 = cpu_us(0), d0 = daemon_pid > 0 ? cpu_us(daemon_pid) : -1;
	double self1, d1;
	ct_err r;

	if ((r = load_run(&t, conc, o->secs, res, err, errlen)) != CT_OK)
		return r;
	self1 = cpu_us(0);
	d1 = daemon_pid > 0 ? cpu_us(daemon_pid) : -1;
	res->cpu_us = res->ops > 0 && self0 >= 0 && self1 >= 0 ?
	    (self1 - self0) / (double)res->ops : -1;
	res->daemon_cpu_us = res->ops > 0 && d0 >= 0 && d1 >= 0 ?
	    (d1 - d0) / (double)res->ops : -1;
	return CT_OK;
}

static void
print_ratio(double num, double den)
{
	if (den > 0)
		printf(" %.2f |", num / den);
	else
		printf(" n/a |");
}

static void
print_result(const bench_result *r)
{
	printf(" %.0f | %.0f | %.0f | %.0f |", r->ops_s, r->p50_us, r->p99_us,
	    r->max_us);
}

static void
print_us(double us)
{
	if (us >= 0)
		printf(" %.0f |", us);
	else
		printf(" n/a |");
}

/*
 * Where the time goes: the CPU each request costs custodiand (its token
 * work included) and the load generator's client, against what the direct
 * request costs.  On a machine whose cores the load fills, custodian/direct
 * cannot beat the last column.
 */
static void
print_cpu(const opts *o, bench_result cu[][CONC_MAX],
	  bench_result di[][CONC_MAX])
{
	const bench_result *c, *d;
	size_t w, i, n;

	printf("\n| operation | C | custodiand CPU µs/request | its client "
	    "µs/request | direct CPU µs/request | direct / (custodiand + "
	    "client) |\n|---|--:|--:|--:|--:|--:|\n");
	for (w = 0; w < N_WORKLOADS; w++) {
		n = workloads[w].slow ? o->n_rsa_conc : o->n_conc;
		for (i = 0; i < n; i++) {
			c = &cu[w][i], d = &di[w][i];
			printf("| %s | %d |", workloads[w].title,
			    workloads[w].slow ? o->rsa_conc[i] : o->conc[i]);
			print_us(c->daemon_cpu_us);
			print_us(c->cpu_us);
			print_us(d->cpu_us);
			if (c->daemon_cpu_us >= 0 && c->cpu_us >= 0 &&
			    d->cpu_us >= 0)
				print_ratio(d->cpu_us, c->daemon_cpu_us + c->cpu_us);
			else
				printf(" n/a |");
			printf("\n");
		}
	}
	printf("\n- CPU is user + system time of all threads (getrusage; "
	    "custodiand's from /proc), per request, over the same runs as "
	    "the table above.\n");
	fflush(stdout);
}

/* The main table: every workload through custodiand and direct.  The ECDSA
 * rows are kept for the peers' ratios. */
static void
run_main(const opts *o, p11_token *tok, bench_result *ec_cu,
	 bench_result *ec_di)
{
	char err[BENCH_ERR_MAX];
	bench_result cu[N_WORKLOADS][CONC_MAX], di[N_WORKLOADS][CONC_MAX];
	prepared pp;
	const int *conc;
	size_t w, i, n;

	printf("| operation | C | custodian ops/s | p50 µs | p99 µs | max µs "
	    "| direct ops/s | p50 µs | p99 µs | max µs | custodian/direct "
	    "| s (custodian, direct) |\n");
	printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	fflush(stdout);
	for (w = 0; w < N_WORKLOADS; w++) {
		prepare(o, &workloads[w], tok, &pp);
		conc = workloads[w].slow ? o->rsa_conc : o->conc;
		n = workloads[w].slow ? o->n_rsa_conc : o->n_conc;
		for (i = 0; i < n; i++) {
			if (measure(&bench_direct, &pp.direct, o, conc[i], 0,
			    &di[w][i], err, sizeof(err)) != CT_OK)
				die("%s, direct, C=%d: %s", workloads[w].title,
				    conc[i], err);
			if (measure(&bench_custodian, &pp.ct, o, conc[i],
			    o->daemon_pid, &cu[w][i], err, sizeof(err)) != CT_OK)
				die("%s, custodian, C=%d: %s", workloads[w].title,
				    conc[i], err);
			printf("| %s | %d |", workloads[w].title, conc[i]);
			print_result(&cu[w][i]);
			print_result(&di[w][i]);
			print_ratio(cu[w][i].ops_s, di[w][i].ops_s);
			printf(" %.1f, %.1f |\n", cu[w][i].secs, di[w][i].secs);
			fflush(stdout);
			if (w == 0) {
				ec_cu[i] = cu[w][i];
				ec_di[i] = di[w][i];
			}
		}
		prepared_clear(&pp);
	}
	printf("\n- direct = the token operation custodiand makes for the "
	    "request, through pkcs11/p11.h on cached handles: sign = C_Sign "
	    "of the same SHA-256 digest; AES unwrap = one C_Decrypt "
	    "(CKM_AES_GCM) of the 32-byte data key; RSA unwrap = C_Decrypt "
	    "(CKM_RSA_PKCS_OAEP) of the 32-byte content key plus the AES-GCM "
	    "open of the data key in process, as custodiand does.\n"
	    "- The RSA key has `oaep_hash: sha1`: SoftHSM2 refuses RSA-OAEP "
	    "with SHA-256.\n"
	    "- Ratios are of ops/s.  Latencies are per request as the client "
	    "sees it: write to whole reply, or the p11.h call for direct.\n");
	print_cpu(o, cu, di);
}

typedef struct {
	const char *name;
	const bench_ops *ops;
	const void *arg;	/* NULL: not available, see na */
	char na[BENCH_ERR_MAX];
} peer;

/* ECDSA sign through the other ways of sharing a token, same load. */
static void
run_peers(const opts *o, peer *peers, size_t n_peers, const bench_result *ec_cu,
	  const bench_result *ec_di)
{
	char err[BENCH_ERR_MAX];
	bench_result r;
	size_t p, i;

	printf("\n| ECDSA P-256 sign through | C | ops/s | p50 µs | p99 µs "
	    "| max µs | s | peer/direct | custodian/peer |\n");
	printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	for (p = 0; p < n_peers; p++) {
		for (i = 0; i < o->n_conc; i++) {
			if (peers[p].arg != NULL && measure(peers[p].ops,
			    peers[p].arg, o, o->conc[i], 0, &r, err,
			    sizeof(err)) != CT_OK) {
				/* A peer that breaks is reported, not fatal. */
				snprintf(peers[p].na, sizeof(peers[p].na), "%s", err);
				peers[p].arg = NULL;
			}
			if (peers[p].arg == NULL) {
				printf("| %s | %d | n/a: %s | | | | | | |\n",
				    peers[p].name, o->conc[i], peers[p].na);
				continue;
			}
			printf("| %s | %d |", peers[p].name, o->conc[i]);
			print_result(&r);
			printf(" %.1f |", r.secs);
			print_ratio(r.ops_s, ec_di[i].ops_s);
			print_ratio(ec_cu[i].ops_s, r.ops_s);
			printf("\n");
			fflush(stdout);
		}
	}
}

/* VmRSS of a process in KiB, -1 when unknown. */
static long
vmrss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (pid <= 0 || (f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static long
daemon_connections(const opts *o)
{
	char err[BENCH_ERR_MAX];
	json_t *res;
	long n;

	if (request(o->sock, "{\"v\":1,\"op\":\"status\"}\n", &res, err,
	    sizeof(err)) != CT_OK)
		die("status: %s", err);
	n = (long)json_integer_value(json_object_get(res, "connections"));
	json_decref(res);
	return n;
}

static void
print_rss(long kib)
{
	if (kib < 0)
		printf(" n/a |");
	else
		printf(" %.2f MiB |", (double)kib / 1024);
}

static void
print_change(double before, double after)
{
	printf(" %+.0f%% |", before > 0 ? 100 * (after - before) / before : 0);
}

/* Wait until the daemon counts n connections (and the one asking), at
 * least when opening them, at most when closing them. */
static void
wait_connections(const opts *o, long n, bool opening)
{
	long have;
	int waited;

	for (waited = 0;; waited++) {
		have = daemon_connections(o) - 1;
		if (opening ? have >= n : have <= n)
			return;
		if (waited == ACCEPT_WAIT_S * 10)
			die("custodiand holds %ld connections, not %ld", have, n);
		usleep(100000);
	}
}

/* The ECDSA load at SCALE_CONC clients alone, beside idle connections
 * (open, accepted, sending nothing), and alone again: the two runs alone
 * show how much of the change is noise. */
static void
run_scale(const opts *o, p11_token *tok)
{
	static const char *const phase[] = { "alone", "beside idle connections",
	    "alone again" };
	char err[BENCH_ERR_MAX];
	bench_result res[3];
	prepared pp;
	long rss[3], rss_idle = -1;
	int *fds, i, p;

	if ((fds = malloc((size_t)o->idle * sizeof(*fds))) == NULL)
		die("out of memory");
	prepare(o, &workloads[0], tok, &pp);
	for (p = 0; p < 3; p++) {
		if (p == 1) {
			for (i = 0; i < o->idle; i++)
				if (unix_connect(o->sock, &fds[i], err,
				    sizeof(err)) != CT_OK)
					die("idle connection %d: %s", i + 1, err);
			/* connect() returns once queued, not accepted. */
			wait_connections(o, o->idle, true);
			rss_idle = vmrss_kib(o->daemon_pid);
		} else if (p == 2) {
			for (i = 0; i < o->idle; i++)
				close(fds[i]);
			wait_connections(o, 0, false);
		}
		if (measure(&bench_custodian, &pp.ct, o, SCALE_CONC,
		    o->daemon_pid, &res[p],
		    err, sizeof(err)) != CT_OK)
			die("scale, %s: %s", phase[p], err);
		rss[p] = vmrss_kib(o->daemon_pid);
	}
	free(fds);
	prepared_clear(&pp);

	printf("\n| %d-client ECDSA P-256 sign via custodiand | idle connections "
	    "| daemon VmRSS | ops/s | p50 µs | p99 µs | max µs | s |\n",
	    SCALE_CONC);
	printf("|---|--:|--:|--:|--:|--:|--:|--:|\n");
	for (p = 0; p < 3; p++) {
		printf("| %s | %d |", phase[p], p == 1 ? o->idle : 0);
		print_rss(rss[p]);
		print_result(&res[p]);
		printf(" %.1f |\n", res[p].secs);
	}
	printf("| change beside idle connections | |");
	if (rss[0] >= 0 && rss[1] >= 0)
		printf(" %+ld KiB |", rss[1] - rss[0]);
	else
		printf(" n/a |");
	print_change((res[0].ops_s + res[2].ops_s) / 2, res[1].ops_s);
	print_change((res[0].p50_us + res[2].p50_us) / 2, res[1].p50_us);
	print_change((res[0].p99_us + res[2].p99_us) / 2, res[1].p99_us);
	print_change((res[0].max_us + res[2].max_us) / 2, res[1].max_us);
	printf(" |\n\n- Changes are against the mean of the two runs alone.  "
	    "VmRSS is read from /proc/%ld/status after each run", o->daemon_pid);
	if (rss[0] >= 0 && rss_idle >= 0)
		printf("; the %d connections, once accepted and before any load, "
		    "moved it by %+ld KiB", o->idle, rss_idle - rss[0]);
	printf(".\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	opts o = { .secs = 3, .idle = IDLE_DEFAULT };
	char err[BENCH_ERR_MAX];
	bench_result ec_cu[CONC_MAX], ec_di[CONC_MAX];
	p11_token *tok = NULL, *kit = NULL;
	direct_arg kit_arg = { 0 };
	agent_arg ag = { 0 };
	uint8_t *msg = NULL;
	peer peers[2] = {
		{ "p11-kit server (p11-kit-client.so)", &bench_direct, NULL, "" },
		{ "ssh-agent (SoftHSM2 PKCS#11 provider)", &bench_agent, NULL, "" },
	};
	json_t *res;
	unsigned int mdlen;
	int ch;

	o.n_conc = parse_list("1,2,8,64", o.conc);
	o.n_rsa_conc = parse_list("1,8,64", o.rsa_conc);
	while ((ch = getopt(argc, argv, "s:m:l:k:p:t:c:r:i:K:X:a:Y:")) != -1) {
		switch (ch) {
		case 's': o.sock = optarg; break;
		case 'm': o.module = optarg; break;
		case 'l': o.label = optarg; break;
		case 'k': o.pin_file = optarg; break;
		case 'p': o.daemon_pid = strtol(optarg, NULL, 10); break;
		case 't': o.secs = strtod(optarg, NULL); break;
		case 'c': o.n_conc = parse_list(optarg, o.conc); break;
		case 'r': o.n_rsa_conc = parse_list(optarg, o.rsa_conc); break;
		case 'i': o.idle = atoi(optarg); break;
		case 'K': o.p11kit_module = optarg; break;
		case 'X': o.p11kit_na = optarg; break;
		case 'a': o.agent_sock = optarg; break;
		case 'Y': o.agent_na = optarg; break;
		default: usage();
		}
	}
	if (o.sock == NULL || o.module == NULL || o.label == NULL ||
	    o.pin_file == NULL || optind != argc || o.secs <= 0 ||
	    o.secs > 60 || o.idle < 0 || o.idle > 3000)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(o.idle + 1024);
	if (EVP_Digest("custodian bench", 15, digest, &mdlen, EVP_sha256(),
	    NULL) != 1)
		die("sha256");

	if (request(o.sock, "{\"v\":1,\"op\":\"status\"}\n", &res, err,
	    sizeof(err)) != CT_OK)
		die("%s", err);
	printf("custodiand: %lld token workers; direct: one PKCS#11 session "
	    "per client thread; C = concurrent clients, one request in "
	    "flight each.\n\n",
	    (long long)json_integer_value(json_object_get(res, "workers")));
	json_decref(res);
	if (token_open(&o, o.module, &tok, err, sizeof(err)) != CT_OK)
		die("token %s: %s", o.label, err);

	run_main(&o, tok, ec_cu, ec_di);

	/* Peers: a missing one is a row of n/a with the reason. */
	if (o.p11kit_module != NULL) {
		if (token_open(&o, o.p11kit_module, &kit, err, sizeof(err)) != CT_OK)
			snprintf(peers[0].na, sizeof(peers[0].na), "%s", err);
		else {
			kit_arg.tok = kit;
			kit_arg.kind = DIRECT_SIGN;
			kit_arg.label = KEY_EC "/v1";
			kit_arg.mech = P11_SIG_ECDSA;
			kit_arg.digest = digest;
			peers[0].arg = &kit_arg;
		}
	} else
		snprintf(peers[0].na, sizeof(peers[0].na), "%s",
		    o.p11kit_na ? o.p11kit_na : "not started");
	if (o.agent_sock != NULL) {
		if (agent_sign_request(o.agent_sock, "ecdsa-sha2-nistp256",
		    digest, sizeof(digest), &msg, &ag.len, err,
		    sizeof(err)) != CT_OK)
			snprintf(peers[1].na, sizeof(peers[1].na), "%s", err);
		else {
			ag.sock = o.agent_sock;
			ag.msg = msg;
			peers[1].arg = &ag;
		}
	} else
		snprintf(peers[1].na, sizeof(peers[1].na), "%s",
		    o.agent_na ? o.agent_na : "not started");
	run_peers(&o, peers, 2, ec_cu, ec_di);
	printf("\n- peer/direct and custodian/peer compare ops/s with the "
	    "ECDSA rows of the first table at the same C.\n"
	    "- ssh-agent signs the 32 bytes as SSH data "
	    "(ecdsa-sha2-nistp256: SHA-256, then C_Sign in ssh-pkcs11-helper).\n");
	free(msg);
	p11_token_free(kit);

	if (o.idle > 0)
		run_scale(&o, tok);
	p11_token_free(tok);
	return 0;
}
