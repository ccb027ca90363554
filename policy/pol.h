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
#include <time.h>

#include <openssl/evp.h>

#include "custodian/ct_err.h"

#define POL_NAME_MAX 64		/* names of tokens, clients and keys */
#define POL_FILE_MAX (1u << 20) /* a policy document is at most 1 MiB */
#define POL_FREEZE_REFUSALS_MAX 1000 /* governance.auto_freeze.refusals */
#define POL_READER_MAX 127	/* a PC/SC reader name (pcsc-lite's limit) */
#define POL_ATR_MAX 33		/* bytes in a card's ATR (ISO 7816-3) */

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
	char *reader;	/* PC/SC reader the token's card sits in, or NULL */
	uint8_t atr[POL_ATR_MAX]; /* the card's ATR when atr_len > 0 */
	size_t atr_len;	/* 0: any card in the reader will do */
	unsigned line;	/* where it was defined, for messages */
} pol_token;

/* "no index": an optional reference into one of the policy's arrays. */
#define POL_NONE SIZE_MAX

/* When something granted stops holding: a grant, a client, a role.  It
 * holds while now < until (the instant itself is already past it); unset,
 * it never ends.  When the time comes from an engagement, `engagement`
 * names it (an index into pol_policy.engagements), else it is POL_NONE. */
typedef struct {
	bool set;
	time_t until;	   /* seconds since the epoch, UTC */
	size_t engagement; /* POL_NONE, or the engagement that set until */
} pol_expiry;

/* A named piece of work with an end: rights tied to it end with it. */
typedef struct {
	char *name;
	char *description; /* may be NULL */
	time_t until;
	unsigned line;
} pol_engagement;
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
	pol_expiry expiry; /* the whole client ends then */
} pol_client;

/* Roles of a custodian (bit set). */
enum {
	POL_ROLE_CUSTODIAN = 1u << 0, /* approves with their smartcard */
	POL_ROLE_OFFICER = 1u << 1,   /* security-officer: opens requests */
};

/* A person who approves governance requests with a key on their own card. */
typedef struct {
	char *name;
	EVP_PKEY *pub;	/* from public_key (PEM) or certificate, owned */
	unsigned roles; /* POL_ROLE_* */
	bool has_uid;
	uid_t uid;	/* how the daemon recognises them on its socket */
	pol_expiry expiry; /* their roles end then (until / engagement) */
	unsigned line;
} pol_custodian;

/* m approvals out of the custodians listed; m == 0: no quorum set. */
typedef struct {
	unsigned m;
	size_t *of; /* indices into pol_policy.custodians, distinct */
	size_t n_of;
} pol_quorum;

typedef struct {
	pol_quorum quorum;	  /* default for every action below */
	pol_quorum policy_change; /* each of these, when m == 0, is quorum */
	pol_quorum unfreeze;
	pol_quorum backup;
	pol_quorum restore;
	uint64_t approval_ttl;	  /* seconds a request stays open */
	unsigned freeze_refusals; /* auto-freeze after this many refusals... */
	uint64_t freeze_window;	  /* ...within this many seconds; 0: never */
} pol_governance;

typedef struct {
	size_t client; /* index into pol_policy.clients */
	unsigned ops;  /* POL_OP_* bits */
	/* The earlier of the grant's own end and its client's. */
	pol_expiry expiry;
} pol_grant;

typedef struct {
	char *name;
	pol_key_type type;
	size_t token; /* index into pol_policy.tokens */
	pol_sign_scheme sign;
	pol_oaep_hash oaep;
	bool backup;	/* versions are backup-capable (docs/backup.md) */
	pol_grant *grants;
	size_t n_grants;
	pol_quorum rotate;	/* m == 0: governance.quorum applies */
	pol_quorum revoke;
	uint64_t rotate_every;	/* seconds; 0: no schedule */
	uint64_t destroy_after; /* seconds a revoked version is kept */
	unsigned line;
} pol_key;

typedef struct {
	char *path;	  /* the file it was loaded from (or the name given) */
	char *socket;	  /* service.socket, absolute after load; may be NULL */
	char *audit_log;  /* service.audit_log, absolute after load; may be NULL */
	unsigned workers; /* service.workers, 1..64, default 2 */
	uint64_t token_timeout; /* service.token_timeout: seconds a client
				 * waits for a token call, default 30 */
	char *audit_key;  /* service.audit_key: the key (in keys) that signs
			   * audit checkpoints, never granted sign; NULL: none */
	unsigned long checkpoint_lines;	  /* with audit_key: default 1000 */
	unsigned long checkpoint_seconds; /* with audit_key: default 60 */
	unsigned long audit_rotate_bytes; /* 0: rotate on SIGUSR1 only */
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
	pol_custodian *custodians;
	size_t n_custodians;
	pol_governance gov;
	char *state;	    /* service.state, absolute; may be NULL */
	uint8_t digest[32]; /* SHA-256 of the document bytes, combined with
			     * the custodians' key files when there are any
			     * (docs/policy.md) */
	pol_engagement *engagements;
	size_t n_engagements;
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

/* Authorisation never reads the clock: the caller passes `now`. */

/* Bits of POL_OP_* that a peer with these credentials holds on the key at
 * `now`: the union over the unexpired grants of every client that matches
 * the peer (by uid or gid). */
unsigned pol_peer_ops(const pol_policy *p, const pol_key *k, uid_t uid,
		      gid_t gid, time_t now);
/* True when at least one unexpired client entry matches the peer. */
bool pol_peer_known(const pol_policy *p, uid_t uid, gid_t gid, time_t now);
/* Whether only expiry stands between the peer and op (a POL_OP_* bit) on
 * key k, or, with k NULL, between the peer and being a client at all.
 * True when a matching grant (client entry) that held it has ended; *client
 * and *ended then describe the one that ended last.  Pointers are into p. */
bool pol_peer_expired(const pol_policy *p, const pol_key *k, uid_t uid,
		      gid_t gid, unsigned op, time_t now,
		      const pol_client **client, const pol_expiry **ended);

/* True when e has an end and now is at or past it. */
bool pol_expired(const pol_expiry *e, time_t now);

/* RFC 3339 date-times, strictly: YYYY-MM-DDTHH:MM:SS followed by Z or a
 * numeric offset +HH:MM / -HH:MM; years 1970 to 9999.  Refused as
 * ambiguous or unrepresentable: no offset (local time), -00:00 (RFC 3339's
 * "offset unknown"), lower-case t/z, a space for T, fractional seconds,
 * leap second 60.  s need not be NUL-terminated.  On error returns
 * CT_ERR_POLICY and *why says what is wrong (a static string). */
ct_err pol_time_parse(const char *s, size_t len, time_t *t,
		      const char **why) CT_WUR;
#define POL_TIME_LEN 21 /* "YYYY-MM-DDTHH:MM:SSZ" and its NUL */
/* t in UTC as above, e.g. "2030-01-01T00:00:00Z"; "invalid" when gmtime
 * fails.  Returns buf. */
char *pol_time_format(time_t t, char buf[POL_TIME_LEN]);
/* The first unexpired client entry, in document order, that matches the
 * peer, or NULL: whose limits apply to it. */
const pol_client *pol_peer_client(const pol_policy *p, uid_t uid, gid_t gid,
				  time_t now);

/* Names used in the document and on the wire: "sign", "unwrap", ... */
const char *pol_op_name(unsigned op_bit);
unsigned pol_op_from_name(const char *name); /* 0 when unknown */
const char *pol_key_type_name(pol_key_type t); /* "ec-p256", ... */
const char *pol_sign_scheme_name(pol_sign_scheme s); /* "ecdsa-sha256", ... */

const pol_custodian *pol_find_custodian(const pol_policy *p, const char *name);
/* The custodian with this role whose uid is the peer's and whose roles
 * have not ended at now, or NULL. */
const pol_custodian *pol_peer_custodian(const pol_policy *p, uid_t uid,
					unsigned role, time_t now);
/* True when custodian index ci is one of the quorum's. */
bool pol_quorum_has(const pol_quorum *q, size_t ci);
/* The quorum that applies: q itself when set, else the default. */
const pol_quorum *pol_quorum_or_default(const pol_policy *p,
					const pol_quorum *q);

#endif
