/* pol.h: the custodian policy, loaded once from YAML into plain C structs.
 *
 * A pol_policy is immutable after pol_load_*() returns it and owns every
 * string in it; pol_free() releases the whole tree.  Indices (token, client)
 * refer into the arrays of the same policy, so a policy never points outside
 * itself.  The reference for the document format is docs/policy.md.
 */
#ifndef POL_H
#define POL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "custodian/ct_err.h"

#define POL_NAME_MAX 64		/* names of tokens, clients and keys */
#define POL_FILE_MAX (1u << 20) /* a policy document is at most 1 MiB */

typedef enum {
	POL_KEY_EC_P256 = 1,
	POL_KEY_EC_P384,
	POL_KEY_RSA_3072,
	POL_KEY_AES_256,
} pol_key_type;

typedef enum {
	POL_SIGN_NONE = 0,	  /* AES keys */
	POL_SIGN_ECDSA_SHA256,	  /* default for ec-p256 */
	POL_SIGN_ECDSA_SHA384,	  /* default for ec-p384 */
	POL_SIGN_RSA_PSS_SHA256,  /* default for rsa-3072 */
	POL_SIGN_RSA_PKCS1_SHA256,
} pol_sign_scheme;

typedef enum {
	POL_OAEP_SHA256 = 0, /* default */
	POL_OAEP_SHA1,	     /* for tokens that only do SHA-1 (SoftHSM2) */
} pol_oaep_hash;

/* Per-key operations a client may be granted (bit set). */
enum {
	POL_OP_SIGN = 1u << 0,
	POL_OP_VERIFY = 1u << 1,
	POL_OP_PUBLIC_KEY = 1u << 2,
	POL_OP_WRAP = 1u << 3,
	POL_OP_UNWRAP = 1u << 4,
	POL_OP_DATAKEY = 1u << 5,
	POL_OP_REWRAP = 1u << 6,
	POL_OP_ALL_ = (1u << 7) - 1,
};

typedef struct {
	char *name;
	char *module;	/* absolute path of the PKCS#11 module */
	char *label;	/* token label, or NULL when uri is set */
	char *uri;	/* RFC 7512 PKCS#11 URI, or NULL when label is set */
	char *pin_file; /* exactly one of pin_file and pin_env is set */
	char *pin_env;
	unsigned line;	/* where it was defined, for messages */
} pol_token;

/* Abuse limits of one client identity (docs/policy.md, "limits"). */
typedef struct {
	uint32_t rate;	      /* requests per second; 0: no rate limit */
	uint32_t burst;	      /* requests at once above the rate (>= 1) */
	uint32_t connections; /* connections open at once */
} pol_limits;

typedef struct {
	char *name;
	pol_limits limits; /* resolved: its own, else service.limits */
	bool has_uid;
	uid_t uid; /* from `uid:` or `user:` (resolved at load) */
	bool has_gid;
	gid_t gid; /* from `gid:` or `group:` (resolved at load) */
	unsigned line;
} pol_client;

typedef struct {
	size_t client; /* index into pol_policy.clients */
	unsigned ops;  /* POL_OP_* bits */
} pol_grant;

typedef struct {
	char *name;
	pol_key_type type;
	size_t token; /* index into pol_policy.tokens */
	pol_sign_scheme sign;
	pol_oaep_hash oaep;
	pol_grant *grants;
	size_t n_grants;
	unsigned line;
} pol_key;

typedef struct {
	char *path;	  /* the file it was loaded from (or the name given) */
	char *socket;	  /* service.socket, absolute after load; may be NULL */
	char *audit_log;  /* service.audit_log, absolute after load; may be NULL */
	unsigned workers; /* service.workers, 1..64, default 2 */
	char *run_user;	  /* service.user (checked at load), or NULL */
	uid_t run_uid;	  /* its uid */
	gid_t run_gid;	  /* service.group, else the user's primary group */
	bool has_run_group; /* run_gid came from service.group */
	bool allow_root;  /* service.allow_root: may keep running as root */
	pol_limits unknown_limits; /* service.unknown_limits */
	unsigned max_bad_requests; /* service.max_bad_requests */
	pol_token *tokens;
	size_t n_tokens;
	pol_client *clients;
	size_t n_clients;
	pol_key *keys;
	size_t n_keys;
	uint8_t digest[32]; /* SHA-256 of the document bytes */
} pol_policy;

/* Load from a file.  On error returns CT_ERR_POLICY (or CT_ERR_IO,
 * CT_ERR_NOMEM), *out is NULL and err holds "file:line:column: message". */
ct_err pol_load_file(const char *path, pol_policy **out, char *err,
		     size_t errlen) CT_WUR;
/* Load from memory; `name` stands for the file in messages and relative
 * paths resolve against the current directory. */
ct_err pol_load_buffer(const char *name, const void *buf, size_t len,
		       pol_policy **out, char *err, size_t errlen) CT_WUR;
void pol_free(pol_policy *p);

const pol_key *pol_find_key(const pol_policy *p, const char *name);
const pol_token *pol_find_token(const pol_policy *p, const char *name);

/* Bits of POL_OP_* that a peer with these credentials holds on the key:
 * the union over every client that matches the peer (by uid or gid). */
unsigned pol_peer_ops(const pol_policy *p, const pol_key *k, uid_t uid,
		      gid_t gid);
/* True when at least one client entry matches the peer. */
bool pol_peer_known(const pol_policy *p, uid_t uid, gid_t gid);
/* The first client entry, in document order, that matches the peer, or
 * NULL: whose limits apply to it. */
const pol_client *pol_peer_client(const pol_policy *p, uid_t uid, gid_t gid);

/* Names used in the document and on the wire: "sign", "unwrap", ... */
const char *pol_op_name(unsigned op_bit);
unsigned pol_op_from_name(const char *name); /* 0 when unknown */
const char *pol_key_type_name(pol_key_type t); /* "ec-p256", ... */
const char *pol_sign_scheme_name(pol_sign_scheme s); /* "ecdsa-sha256", ... */

#endif
