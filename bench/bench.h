/* bench.h: the load generator of `make bench` (bench/run.sh drives it).
 *
 * One load loop (load.c) runs C threads for a fixed time; each thread opens
 * its own connection or PKCS#11 session and issues one request at a time
 * through a bench_target.  The targets (targets.c) are custodiand's socket,
 * the token through p11.h (direct, or through p11-kit-client.so for the
 * p11-kit server) and ssh-agent's socket.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "custodian/ct_blob.h"
#include "custodian/ct_err.h"
#include "pkcs11/p11.h"

#define BENCH_ERR_MAX 256

/* How to issue requests.  open() makes the per-thread state (a connection,
 * a session) and checks one full request and its reply, outside the timed
 * window; issue() sends one request and waits for its answer; close()
 * releases the state.  A failure is an error reply or a dead peer: the run
 * stops and reports err. */
typedef struct {
	ct_err (*open)(const void *arg, void **state, char *err, size_t errlen);
	ct_err (*issue)(void *state, char *err, size_t errlen);
	void (*close)(void *state);
} bench_ops;

typedef struct {
	const bench_ops *ops;
	const void *arg;	/* ct_target_arg, direct_arg or agent_arg */
} bench_target;

typedef struct {
	uint64_t ops;
	double secs;		/* wall time of the timed window */
	double ops_s;
	double p50_us, p99_us, max_us;
	double cpu_us;		/* CPU per request: this process (all threads) */
	double daemon_cpu_us;	/* and custodiand's; -1 when not measured */
} bench_result;

/* C threads, one state each, issuing requests for secs seconds. */
ct_err load_run(const bench_target *t, int conc, double secs,
		bench_result *out, char *err, size_t errlen) CT_WUR;

/* custodiand: one request line, sent as is on every request. */
typedef struct {
	const char *sock;
	const char *line; /* ends with '\n' */
	size_t len;
} ct_target_arg;

/* The token in this process, one session per thread. */
typedef enum {
	DIRECT_SIGN = 1,
	DIRECT_AES_UNWRAP,	/* C_Decrypt AES-GCM of the blob's 32-byte key */
	DIRECT_RSA_UNWRAP,	/* OAEP-SHA1 of the content key + GCM here */
} direct_kind;

typedef struct {
	p11_token *tok;
	direct_kind kind;
	const char *label;	/* "<key>/v1" */
	p11_sig_mech mech;	/* DIRECT_SIGN */
	const uint8_t *digest;	/* DIRECT_SIGN, 32 bytes */
	ct_blob blob;		/* unwrap: points into a caller's buffer */
	const uint8_t *aad;	/* header || context */
	size_t aad_len;
	const uint8_t *want;	/* unwrap: the plaintext open() checks for */
	size_t want_len;
} direct_arg;

/* ssh-agent: one prebuilt SSH2_AGENTC_SIGN_REQUEST message. */
typedef struct {
	const char *sock;
	const uint8_t *msg;	/* uint32 length || type || body */
	size_t len;
} agent_arg;

extern const bench_ops bench_custodian, bench_direct, bench_agent;

/* Shared by targets.c and main.c. */
ct_err unix_connect(const char *path, int *fd, char *err, size_t errlen) CT_WUR;
ct_err write_all(int fd, const void *buf, size_t len) CT_WUR;
/* Read one '\n'-terminated line into buf (NUL-terminated, newline kept). */
ct_err read_line(int fd, char *buf, size_t size, size_t *len) CT_WUR;
/* Read exactly len bytes. */
ct_err read_full(int fd, void *buf, size_t len) CT_WUR;

/* One request line on fd; *result (caller decrefs) is the "result" of an
 * {"ok":true} reply, else err holds the daemon's error code and message. */
ct_err custodian_call(int fd, const char *line, size_t len, json_t **result,
		      char *err, size_t errlen) CT_WUR;

/* Build the agent's sign request for the first identity of key_type
 * ("ecdsa-sha2-nistp256") the agent at sock offers; *msg is malloc'd. */
ct_err agent_sign_request(const char *sock, const char *key_type,
			  const uint8_t *data, size_t dlen, uint8_t **msg,
			  size_t *len, char *err, size_t errlen) CT_WUR;

#endif
