/* p11.c: the token layer (see p11.h).
 *
 * libp11 loads the module and finds the token.  Everything else goes through
 * the module's own function list, which we get by dlopen()ing the same path:
 * that yields the instance libp11 initialised, so login state is shared.
 *
 * Login is a raw C_Login too: PKCS11_login keeps its own copy of the PIN on
 * the ordinary heap, and we want the only copy in secure memory.  Public keys
 * are read as attributes on our session rather than through libp11's key
 * list, because libp11's session pool keeps dead handles after a lost session
 * and blocks forever when it cannot open one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libp11.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <p11-kit/uri.h>

#include "pkcs11/p11.h"
#include "custodian/ct_util.h"

#define P11_PIN_MAX	256	/* bytes, above any token's ulMaxPinLen */
#define P11_LIST_MAX	4096	/* most labels we return */
#define GCM_IV_LEN	12
#define GCM_TAG_LEN	16
#define SHA256_LEN	32
#define ECDSA_RAW_MAX	132	/* r||s on P-521 */
#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* One loaded module, shared by every token on it: C_Initialize and
 * C_Finalize act on the whole process, so the module is finalised only
 * when its last token goes.  Guarded by modules_lock. */
struct p11_module {
	struct p11_module *next;
	char path[PATH_MAX];
	unsigned int refs;
	PKCS11_CTX *ctx;
	bool loaded;		/* PKCS11_CTX_load succeeded */
	/* Listed once and kept until the module goes: libp11 0.4.12 calls
	 * C_CloseAllSessions on every slot of a list it releases, which
	 * would log out every token of the module. */
	PKCS11_SLOT *slots;
	unsigned int nslots;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
};

struct p11_token {
	struct p11_module *mod;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot_id;
	char label[33];
	/* Holds the login while no worker session is open: closing the last
	 * session of the application logs it out. */
	CK_SESSION_HANDLE anchor;
	/* Set once by p11_token_login, before any session reads it. */
	CK_UTF8CHAR *pin;	/* secure heap */
	size_t pin_len;
	atomic_bool pin_refused; /* the token said no to it: never resend */
	pthread_mutex_t gen_lock; /* label check and creation as one step */
};

/* The PKCS#11 calls made here, for messages and error mapping. */
enum p11_fn {
	FN_OPEN_SESSION, FN_LOGIN, FN_FIND_INIT, FN_FIND, FN_GET_ATTR,
	FN_RANDOM, FN_GEN_KEY, FN_GEN_KEY_PAIR, FN_SIGN_INIT, FN_SIGN,
	FN_ENCRYPT_INIT, FN_ENCRYPT, FN_DECRYPT_INIT, FN_DECRYPT,
	FN_WRAP, FN_UNWRAP, FN_CREATE, FN_DESTROY, FN_SET_ATTR, FN_LOGOUT,
};

static const char *const fn_names[] = {
	[FN_OPEN_SESSION] = "C_OpenSession",
	[FN_LOGIN] = "C_Login",
	[FN_FIND_INIT] = "C_FindObjectsInit",
	[FN_FIND] = "C_FindObjects",
	[FN_GET_ATTR] = "C_GetAttributeValue",
	[FN_RANDOM] = "C_GenerateRandom",
	[FN_GEN_KEY] = "C_GenerateKey",
	[FN_GEN_KEY_PAIR] = "C_GenerateKeyPair",
	[FN_SIGN_INIT] = "C_SignInit",
	[FN_SIGN] = "C_Sign",
	[FN_ENCRYPT_INIT] = "C_EncryptInit",
	[FN_ENCRYPT] = "C_Encrypt",
	[FN_DECRYPT_INIT] = "C_DecryptInit",
	[FN_DECRYPT] = "C_Decrypt",
	[FN_WRAP] = "C_WrapKey",
	[FN_UNWRAP] = "C_UnwrapKey",
	[FN_CREATE] = "C_CreateObject",
	[FN_DESTROY] = "C_DestroyObject",
	[FN_SET_ATTR] = "C_SetAttributeValue",
	[FN_LOGOUT] = "C_Logout",
};

struct p11_session {
	p11_token *t;
	CK_SESSION_HANDLE h;
	CK_RV rv;		/* of the last failed call, for run() */
	char last_error[160];
};

/* An operation on a session, run (and maybe re-run) by run(). */
typedef ct_err (*p11_op)(p11_session *, void *);

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static const struct {
	p11_key_type type;
	const char *name;	/* OpenSSL group name */
	CK_BYTE oid[10];	/* CKA_EC_PARAMS: the curve's DER OID */
	CK_ULONG oid_len;
} curves[] = {
	{ P11_KEY_EC_P256, "P-256",
	  { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 }, 10 },
	{ P11_KEY_EC_P384, "P-384",
	  { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 }, 7 },
};

/* DER DigestInfo header for SHA-256: CKM_RSA_PKCS signs what it is given. */
static const CK_BYTE sha256_prefix[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *modules;

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static CK_ATTRIBUTE
attr(CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
	CK_ATTRIBUTE a = { type, (void *)v, len };

	return a;
}

const char *
p11_rv_name(CK_RV rv)
{
	static const struct {
		CK_RV rv;
		const char *name;
	} names[] = {
#define N(x) { x, #x }
		N(CKR_OK), N(CKR_CANCEL), N(CKR_HOST_MEMORY),
		N(CKR_SLOT_ID_INVALID), N(CKR_GENERAL_ERROR),
		N(CKR_FUNCTION_FAILED), N(CKR_ARGUMENTS_BAD),
		N(CKR_NO_EVENT), N(CKR_NEED_TO_CREATE_THREADS),
		N(CKR_CANT_LOCK), N(CKR_ATTRIBUTE_READ_ONLY),
		N(CKR_ATTRIBUTE_SENSITIVE), N(CKR_ATTRIBUTE_TYPE_INVALID),
		N(CKR_ATTRIBUTE_VALUE_INVALID), N(CKR_ACTION_PROHIBITED),
		N(CKR_DATA_INVALID), N(CKR_DATA_LEN_RANGE),
		N(CKR_DEVICE_ERROR), N(CKR_DEVICE_MEMORY),
		N(CKR_DEVICE_REMOVED), N(CKR_ENCRYPTED_DATA_INVALID),
		N(CKR_ENCRYPTED_DATA_LEN_RANGE), N(CKR_FUNCTION_CANCELED),
		N(CKR_FUNCTION_NOT_PARALLEL), N(CKR_FUNCTION_NOT_SUPPORTED),
		N(CKR_KEY_HANDLE_INVALID), N(CKR_KEY_SIZE_RANGE),
		N(CKR_KEY_TYPE_INCONSISTENT), N(CKR_KEY_NOT_NEEDED),
		N(CKR_KEY_CHANGED), N(CKR_KEY_NEEDED),
		N(CKR_KEY_INDIGESTIBLE), N(CKR_KEY_FUNCTION_NOT_PERMITTED),
		N(CKR_KEY_NOT_WRAPPABLE), N(CKR_KEY_UNEXTRACTABLE),
		N(CKR_MECHANISM_INVALID), N(CKR_MECHANISM_PARAM_INVALID),
		N(CKR_OBJECT_HANDLE_INVALID), N(CKR_OPERATION_ACTIVE),
		N(CKR_OPERATION_NOT_INITIALIZED), N(CKR_PIN_INCORRECT),
		N(CKR_PIN_INVALID), N(CKR_PIN_LEN_RANGE), N(CKR_PIN_EXPIRED),
		N(CKR_PIN_LOCKED), N(CKR_SESSION_CLOSED),
		N(CKR_SESSION_COUNT), N(CKR_SESSION_HANDLE_INVALID),
		N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
		N(CKR_SESSION_READ_ONLY), N(CKR_SESSION_EXISTS),
		N(CKR_SESSION_READ_ONLY_EXISTS),
		N(CKR_SESSION_READ_WRITE_SO_EXISTS),
		N(CKR_SIGNATURE_INVALID), N(CKR_SIGNATURE_LEN_RANGE),
		N(CKR_TEMPLATE_INCOMPLETE), N(CKR_TEMPLATE_INCONSISTENT),
		N(CKR_TOKEN_NOT_PRESENT), N(CKR_TOKEN_NOT_RECOGNIZED),
		N(CKR_TOKEN_WRITE_PROTECTED),
		N(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
		N(CKR_UNWRAPPING_KEY_SIZE_RANGE),
		N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
		N(CKR_USER_ALREADY_LOGGED_IN), N(CKR_USER_NOT_LOGGED_IN),
		N(CKR_USER_PIN_NOT_INITIALIZED), N(CKR_USER_TYPE_INVALID),
		N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
		N(CKR_USER_TOO_MANY_TYPES), N(CKR_WRAPPED_KEY_INVALID),
		N(CKR_WRAPPED_KEY_LEN_RANGE),
		N(CKR_WRAPPING_KEY_HANDLE_INVALID),
		N(CKR_WRAPPING_KEY_SIZE_RANGE),
		N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
		N(CKR_RANDOM_SEED_NOT_SUPPORTED), N(CKR_RANDOM_NO_RNG),
		N(CKR_DOMAIN_PARAMS_INVALID), N(CKR_CURVE_NOT_SUPPORTED),
		N(CKR_BUFFER_TOO_SMALL), N(CKR_SAVED_STATE_INVALID),
		N(CKR_INFORMATION_SENSITIVE), N(CKR_STATE_UNSAVEABLE),
		N(CKR_CRYPTOKI_NOT_INITIALIZED),
		N(CKR_CRYPTOKI_ALREADY_INITIALIZED), N(CKR_MUTEX_BAD),
		N(CKR_MUTEX_NOT_LOCKED), N(CKR_FUNCTION_REJECTED),
#undef N
	};
	static _Thread_local char buf[32];
	size_t i;

	for (i = 0; i < NITEMS(names); i++) {
		if (names[i].rv == rv)
			return names[i].name;
	}
	snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

/* The session or its login is gone; a new session may work. */
static bool
session_lost(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
		return true;
	default:
		return false;
	}
}

/* fn is the call that returned rv. */
static ct_err
map_rv(enum p11_fn fn, CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return CT_OK;
	case CKR_HOST_MEMORY:
		return CT_ERR_NOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
	case CKR_PIN_LEN_RANGE:
		return CT_ERR_PIN;
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return CT_ERR_HANDLE_STALE;
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return CT_ERR_WRONG_KEY_TYPE;
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
#ifdef CKR_AEAD_DECRYPT_FAILED
	case CKR_AEAD_DECRYPT_FAILED:
#endif
		return CT_ERR_DECRYPT;
	case CKR_GENERAL_ERROR:
		/* How SoftHSM2 reports a bad GCM tag or OAEP padding. */
		return fn == FN_DECRYPT ? CT_ERR_DECRYPT : CT_ERR_TOKEN;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_CURVE_NOT_SUPPORTED:
		return CT_ERR_UNSUPPORTED;
	case CKR_ARGUMENTS_BAD:
		/* How SoftHSM2 refuses mechanism parameters it does not
		 * take (OAEP with SHA-256); elsewhere, a bug. */
		return fn == FN_SIGN_INIT || fn == FN_ENCRYPT_INIT ||
		    fn == FN_DECRYPT_INIT ? CT_ERR_UNSUPPORTED : CT_ERR_TOKEN;
	case CKR_DATA_LEN_RANGE:
		return CT_ERR_BAD_REQUEST;
	case CKR_WRAPPED_KEY_INVALID:
	case CKR_WRAPPED_KEY_LEN_RANGE:
		return CT_ERR_DECRYPT;
	case CKR_BUFFER_TOO_SMALL:
		return CT_ERR_INTERNAL;	/* the caller's buffer */
	default:
		return session_lost(rv) ? CT_ERR_TOKEN_UNAVAILABLE :
		    CT_ERR_TOKEN;
	}
}

/* Record a failed call in the session. */
static ct_err
fail(p11_session *s, enum p11_fn fn, CK_RV rv)
{
	s->rv = rv;
	snprintf(s->last_error, sizeof(s->last_error), "%s: %s",
	    fn_names[fn], p11_rv_name(rv));
	return map_rv(fn, rv);
}

/* Module registry.  Callers hold modules_lock. */

static void
module_free(struct p11_module *m)
{
	if (m == NULL)
		return;
	if (m->slots != NULL)
		PKCS11_release_all_slots(m->ctx, m->slots, m->nslots);
	if (m->loaded)
		PKCS11_CTX_unload(m->ctx);	/* calls C_Finalize */
	if (m->ctx != NULL)
		PKCS11_CTX_free(m->ctx);
	if (m->dl != NULL)
		dlclose(m->dl);
	free(m);
}

static void
module_put(struct p11_module *m)
{
	struct p11_module **mp;

	if (--m->refs > 0)
		return;
	for (mp = &modules; *mp != m; mp = &(*mp)->next)
		;
	*mp = m->next;
	module_free(m);
}

/* path is a realpath(): one entry per module file. */
static ct_err
module_get(const char *path, struct p11_module **out, char *err,
    size_t errlen)
{
	struct p11_module *m;
	CK_C_GetFunctionList get_list;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	ct_err r = CT_ERR_NOMEM;

	for (m = modules; m != NULL; m = m->next) {
		if (strcmp(m->path, path) == 0) {
			m->refs++;
			*out = m;
			return CT_OK;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	snprintf(m->path, sizeof(m->path), "%s", path);
	m->refs = 1;
	r = CT_ERR_TOKEN;
	/* RTLD_NOW first: a broken module fails here, with dlerror()'s
	 * reason, rather than somewhere inside libp11. */
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		seterr(err, errlen, "module %s: %s", path, dlerror());
		goto out;
	}
	if ((get_list = (CK_C_GetFunctionList)dlsym(m->dl,
	    "C_GetFunctionList")) == NULL) {
		seterr(err, errlen, "module %s: no C_GetFunctionList", path);
		goto out;
	}
	if ((m->ctx = PKCS11_CTX_new()) == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	if (PKCS11_CTX_load(m->ctx, path) != 0) {
		seterr(err, errlen, "module %s: libp11 cannot load it", path);
		goto out;
	}
	m->loaded = true;
	if (PKCS11_enumerate_slots(m->ctx, &m->slots, &m->nslots) != 0) {
		seterr(err, errlen, "module %s: cannot list slots", path);
		goto out;
	}
	if ((rv = get_list(&m->f)) != CKR_OK) {
		seterr(err, errlen, "module %s: C_GetFunctionList: %s", path,
		    p11_rv_name(rv));
		goto out;
	}
	/* libp11 has initialised this instance already, so expect
	 * CKR_CRYPTOKI_ALREADY_INITIALIZED.  C_Finalize is left to libp11. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		seterr(err, errlen, "module %s: C_Initialize: %s", path,
		    p11_rv_name(rv));
		goto out;
	}
	m->next = modules;
	modules = m;
	*out = m;
	m = NULL;
	r = CT_OK;
 out:
	module_free(m);
	return r;
}

/* Does this slot hold the token the spec names? */
static bool
slot_matches(CK_FUNCTION_LIST_PTR f, PKCS11_SLOT *slot,
    const p11_token_spec *spec, P11KitUri *uri)
{
	CK_TOKEN_INFO info;

	if (slot->token == NULL || !slot->token->initialized)
		return false;
	if (uri == NULL)
		return slot->token->label != NULL &&
		    strcmp(slot->token->label, spec->label) == 0;
	/* libp11 keeps only part of CK_TOKEN_INFO; p11-kit wants all. */
	return f->C_GetTokenInfo(PKCS11_get_slotid_from_slot(slot),
	    &info) == CKR_OK && p11_kit_uri_match_token_info(uri, &info);
}

ct_err
p11_token_open(const p11_token_spec *spec, p11_token **out, char *err,
    size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	P11KitUri *uri = NULL;
	PKCS11_SLOT *hit = NULL;
	unsigned int nhits = 0, i;
	p11_token *t = NULL;
	int rc;
	ct_err r = CT_ERR_BAD_REQUEST;

	*out = NULL;
	seterr(err, errlen, "%s", "");
	if (spec == NULL || spec->module == NULL ||
	    (spec->label == NULL) == (spec->uri == NULL)) {
		seterr(err, errlen, "need a module and one of label and uri");
		return r;
	}
	pthread_mutex_lock(&modules_lock);
	if (spec->uri != NULL) {
		if ((uri = p11_kit_uri_new()) == NULL) {
			r = CT_ERR_NOMEM;
			goto out;
		}
		rc = p11_kit_uri_parse(spec->uri, P11_KIT_URI_FOR_TOKEN, uri);
		if (rc != P11_KIT_URI_OK) {
			seterr(err, errlen, "token URI %s: %s", spec->uri,
			    p11_kit_uri_message(rc));
			goto out;
		}
		/* A misspelt attribute would otherwise match every token. */
		if (p11_kit_uri_any_unrecognized(uri)) {
			seterr(err, errlen, "token URI %s: unknown attribute",
			    spec->uri);
			goto out;
		}
	}
	r = CT_ERR_IO;
	if (realpath(spec->module, path) == NULL || stat(path, &st) != 0) {
		seterr(err, errlen, "module %s: %s", spec->module,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		seterr(err, errlen, "module %s: not a regular file", path);
		goto out;
	}
	r = CT_ERR_NOMEM;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	t->anchor = CK_INVALID_HANDLE;
	if ((r = module_get(path, &t->mod, err, errlen)) != CT_OK)
		goto out;
	t->f = t->mod->f;
	for (i = 0; i < t->mod->nslots; i++) {
		if (slot_matches(t->f, &t->mod->slots[i], spec, uri)) {
			hit = &t->mod->slots[i];
			nhits++;
		}
	}
	if (nhits != 1) {
		r = CT_ERR_TOKEN_NOT_FOUND;
		seterr(err, errlen, "%s tokens match %s",
		    nhits == 0 ? "no" : "several",
		    spec->label != NULL ? spec->label : spec->uri);
		goto out;
	}
	t->slot_id = PKCS11_get_slotid_from_slot(hit);
	snprintf(t->label, sizeof(t->label), "%s", hit->token->label);
	if (pthread_mutex_init(&t->gen_lock, NULL) != 0) {
		r = CT_ERR_INTERNAL;
		goto out;
	}
	*out = t;
	t = NULL;
	r = CT_OK;
 out:
	if (t != NULL) {
		if (t->mod != NULL)
			module_put(t->mod);
		free(t);
	}
	pthread_mutex_unlock(&modules_lock);
	p11_kit_uri_free(uri);
	if (r != CT_OK)
		ERR_clear_error();	/* libp11 leaves its reasons there */
	return r;
}

ct_err
p11_token_login(p11_token *t, const char *pin, size_t pin_len)
{
	CK_UTF8CHAR *copy;
	CK_RV rv;
	ct_err r;

	/* Sessions read t->pin without a lock: it is set once, before
	 * they exist.  (C_Login cannot check a second PIN anyway: the
	 * token answers CKR_USER_ALREADY_LOGGED_IN without looking.) */
	if (t->pin != NULL || pin == NULL || pin_len == 0 ||
	    pin_len > P11_PIN_MAX)
		return CT_ERR_BAD_REQUEST;
	ct_secure_heap_init();
	if ((copy = OPENSSL_secure_malloc(pin_len)) == NULL)
		return CT_ERR_NOMEM;
	memcpy(copy, pin, pin_len);
	if (t->anchor == CK_INVALID_HANDLE &&
	    (rv = t->f->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION, NULL,
	    NULL, &t->anchor)) != CKR_OK) {
		t->anchor = CK_INVALID_HANDLE;
		r = map_rv(FN_OPEN_SESSION, rv);
		goto out;
	}
	rv = t->f->C_Login(t->anchor, CKU_USER, copy, pin_len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = map_rv(FN_LOGIN, rv);
		goto out;
	}
	t->pin = copy;
	t->pin_len = pin_len;
	copy = NULL;
	r = CT_OK;
 out:
	if (copy != NULL)
		OPENSSL_secure_clear_free(copy, pin_len);
	return r;
}

void
p11_token_free(p11_token *t)
{
	if (t == NULL)
		return;
	/* Ends this token's hold on the login; errors mean it is gone. */
	if (t->anchor != CK_INVALID_HANDLE)
		(void)t->f->C_CloseSession(t->anchor);
	if (t->pin != NULL)
		OPENSSL_secure_clear_free(t->pin, t->pin_len);
	pthread_mutex_destroy(&t->gen_lock);
	pthread_mutex_lock(&modules_lock);
	module_put(t->mod);
	pthread_mutex_unlock(&modules_lock);
	free(t);
}

const char *
p11_token_label(const p11_token *t)
{
	return t->label;
}

/* Sessions */

/* Log the session's application in again with the stored PIN. */
static ct_err
session_login(p11_session *s)
{
	p11_token *t = s->t;
	CK_RV rv;
	ct_err r;

	if (t->pin == NULL)
		return CT_OK;	/* never logged in: nothing to restore */
	/* Each wrong try counts towards locking the token. */
	if (atomic_load(&t->pin_refused))
		return CT_ERR_PIN;
	rv = t->f->C_Login(s->h, CKU_USER, t->pin, t->pin_len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return CT_OK;
	if ((r = fail(s, FN_LOGIN, rv)) == CT_ERR_PIN)
		atomic_store(&t->pin_refused, true);
	return r;
}

static ct_err
session_recover(p11_session *s, CK_RV why)
{
	p11_token *t = s->t;
	CK_RV rv;

	/* Logged out, the session itself is fine.  Otherwise the handle is
	 * dead, and not closed: its number may already be another thread's
	 * new session. */
	if (why != CKR_USER_NOT_LOGGED_IN) {
		rv = t->f->C_OpenSession(t->slot_id,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->h);
		if (rv != CKR_OK) {
			s->h = CK_INVALID_HANDLE; /* next call tries again */
			(void)fail(s, FN_OPEN_SESSION, rv);
			return CT_ERR_TOKEN_UNAVAILABLE;
		}
	}
	return session_login(s);
}

/* Every operation goes through here: after a lost session, re-open, log in
 * and retry once. */
static ct_err
run(p11_session *s, p11_op op, void *arg)
{
	ct_err r;

	s->last_error[0] = '\0';
	s->rv = CKR_OK;
	if ((r = op(s, arg)) == CT_OK || !session_lost(s->rv))
		return r;
	if ((r = session_recover(s, s->rv)) != CT_OK)
		return r;
	return op(s, arg);
}

ct_err
p11_session_open(p11_token *t, p11_session **out)
{
	p11_session *s;
	CK_RV rv;
	ct_err r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CT_ERR_NOMEM;
	s->t = t;
	rv = t->f->C_OpenSession(t->slot_id,
	    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->h);
	if (rv != CKR_OK) {
		free(s);
		return map_rv(FN_OPEN_SESSION, rv);
	}
	/* Normally CKR_USER_ALREADY_LOGGED_IN; restores a lost login. */
	if ((r = session_login(s)) != CT_OK) {
		p11_session_free(s);
		return r;
	}
	*out = s;
	return CT_OK;
}

void
p11_session_free(p11_session *s)
{
	if (s == NULL)
		return;
	if (s->h != CK_INVALID_HANDLE)
		(void)s->t->f->C_CloseSession(s->h);
	free(s);
}

const char *
p11_session_last_error(const p11_session *s)
{
	return s->last_error;
}

/* Objects */

static ct_err
label_check(const char *label)
{
	if (label == NULL || *label == '\0' ||
	    strnlen(label, P11_LABEL_MAX) == P11_LABEL_MAX)
		return CT_ERR_BAD_REQUEST;
	return CT_OK;
}

/* Objects with this label (and class, unless cls is NULL): up to two, which
 * tells none, one and too many apart. */
static ct_err
find_label(p11_session *s, const CK_OBJECT_CLASS *cls, const char *label,
    CK_OBJECT_HANDLE h[2], CK_ULONG *n)
{
	CK_FUNCTION_LIST_PTR f = s->t->f;
	CK_ATTRIBUTE tmpl[2];
	CK_ULONG ntmpl = 0;
	CK_RV rv;

	tmpl[ntmpl++] = attr(CKA_LABEL, label, strlen(label));
	if (cls != NULL)
		tmpl[ntmpl++] = attr(CKA_CLASS, cls, sizeof(*cls));
	if ((rv = f->C_FindObjectsInit(s->h, tmpl, ntmpl)) != CKR_OK)
		return fail(s, FN_FIND_INIT, rv);
	rv = f->C_FindObjects(s->h, h, 2, n);
	(void)f->C_FindObjectsFinal(s->h);
	return rv == CKR_OK ? CT_OK : fail(s, FN_FIND, rv);
}

static ct_err
find_one(p11_session *s, CK_OBJECT_CLASS cls, const char *label,
    CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n;
	ct_err r;

	if ((r = find_label(s, &cls, label, h, &n)) != CT_OK)
		return r;
	if (n == 0)
		return CT_ERR_NO_SUCH_KEY;
	if (n > 1)
		return CT_ERR_TOKEN;	/* ambiguous: made elsewhere */
	*out = h[0];
	return CT_OK;
}

struct find_args {
	CK_OBJECT_CLASS cls;
	const char *label;
	CK_OBJECT_HANDLE h;
};

static ct_err
op_find(p11_session *s, void *arg)
{
	struct find_args *a = arg;

	return find_one(s, a->cls, a->label, &a->h);
}

ct_err
p11_find(p11_session *s, p11_obj_class cls, const char *label,
    CK_OBJECT_HANDLE *out)
{
	struct find_args a = { .label = label };
	ct_err r;

	switch (cls) {
	case P11_OBJ_PRIVATE:
		a.cls = CKO_PRIVATE_KEY;
		break;
	case P11_OBJ_PUBLIC:
		a.cls = CKO_PUBLIC_KEY;
		break;
	case P11_OBJ_SECRET:
		a.cls = CKO_SECRET_KEY;
		break;
	default:
		return CT_ERR_BAD_REQUEST;
	}
	if ((r = label_check(label)) != CT_OK ||
	    (r = run(s, op_find, &a)) != CT_OK)
		return r;
	*out = a.h;
	return CT_OK;
}

struct gen_args {
	p11_key_type type;
	const char *label;
	bool backup;
};

/* Usages a new key gets.  The others are set false explicitly: tokens
 * default many of them to true (SoftHSM2 does). */
static bool
key_use(p11_key_type type, CK_ATTRIBUTE_TYPE use)
{
	switch (use) {
	case CKA_SIGN:
	case CKA_VERIFY:
		return type != P11_KEY_AES_256;
	case CKA_ENCRYPT:
	case CKA_DECRYPT:
		return type == P11_KEY_RSA_3072 || type == P11_KEY_AES_256;
	case CKA_WRAP:
	case CKA_UNWRAP:
		return type == P11_KEY_AES_256;
	default:
		return false;
	}
}

/* Append a true or false attribute for each usage in uses. */
static void
add_uses(CK_ATTRIBUTE *a, CK_ULONG *n, p11_key_type type,
    const CK_ATTRIBUTE_TYPE *uses, size_t nuses)
{
	size_t i;

	for (i = 0; i < nuses; i++)
		a[(*n)++] = attr(uses[i], key_use(type, uses[i]) ? &yes : &no,
		    sizeof(yes));
}

/* CKA_EXTRACTABLE and, for a backup-capable key, CKA_WRAP_WITH_TRUSTED:
 * then the token wraps it only under a key its SO marked CKA_TRUSTED.
 * Returns the number of attributes written (at most 2). */
static CK_ULONG
extract_attrs(CK_ATTRIBUTE *a, bool backup)
{
	a[0] = attr(CKA_EXTRACTABLE, backup ? &yes : &no, sizeof(yes));
	if (!backup)
		return 1;
	a[1] = attr(CKA_WRAP_WITH_TRUSTED, &yes, sizeof(yes));
	return 2;
}

static const CK_ATTRIBUTE_TYPE priv_uses[] = {
	CKA_SIGN, CKA_SIGN_RECOVER, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE,
}, pub_uses[] = {
	CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE,
}, secret_uses[] = {
	CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_VERIFY,
	CKA_DERIVE,
};

static ct_err
op_generate(p11_session *s, void *arg)
{
	static const CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
	static const CK_ULONG rsa_bits = 3072, aes_len = 32;
	const struct gen_args *g = arg;
	CK_FUNCTION_LIST_PTR f = s->t->f;
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_ATTRIBUTE priv[18], pub[12];	/* private or secret; public */
	CK_ULONG npriv = 0, npub = 0, n;
	CK_OBJECT_HANDLE h[2], hpub;
	CK_BYTE id[16];
	size_t i;
	CK_RV rv;
	ct_err r;

	if ((r = find_label(s, NULL, g->label, h, &n)) != CT_OK)
		return r;
	if (n > 0)
		return CT_ERR_EXISTS;
	if ((rv = f->C_GenerateRandom(s->h, id, sizeof(id))) != CKR_OK)
		return fail(s, FN_RANDOM, rv);

	priv[npriv++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	priv[npriv++] = attr(CKA_PRIVATE, &yes, sizeof(yes));
	priv[npriv++] = attr(CKA_SENSITIVE, &yes, sizeof(yes));
	npriv += extract_attrs(priv + npriv, g->backup);
	priv[npriv++] = attr(CKA_LABEL, g->label, strlen(g->label));
	priv[npriv++] = attr(CKA_ID, id, sizeof(id));
	if (g->type == P11_KEY_AES_256) {
		mech.mechanism = CKM_AES_KEY_GEN;
		add_uses(priv, &npriv, g->type, secret_uses,
		    NITEMS(secret_uses));
		priv[npriv++] = attr(CKA_VALUE_LEN, &aes_len, sizeof(aes_len));
		rv = f->C_GenerateKey(s->h, &mech, priv, npriv, &h[0]);
		return rv == CKR_OK ? CT_OK : fail(s, FN_GEN_KEY, rv);
	}

	add_uses(priv, &npriv, g->type, priv_uses, NITEMS(priv_uses));
	pub[npub++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	pub[npub++] = attr(CKA_PRIVATE, &no, sizeof(no));
	pub[npub++] = attr(CKA_LABEL, g->label, strlen(g->label));
	pub[npub++] = attr(CKA_ID, id, sizeof(id));
	add_uses(pub, &npub, g->type, pub_uses, NITEMS(pub_uses));
	if (g->type == P11_KEY_RSA_3072) {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pub[npub++] = attr(CKA_MODULUS_BITS, &rsa_bits,
		    sizeof(rsa_bits));
		pub[npub++] = attr(CKA_PUBLIC_EXPONENT, exponent,
		    sizeof(exponent));
	} else {
		for (i = 0; curves[i].type != g->type; i++)
			;
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		pub[npub++] = attr(CKA_EC_PARAMS, curves[i].oid,
		    curves[i].oid_len);
	}
	rv = f->C_GenerateKeyPair(s->h, &mech, pub, npub, priv, npriv,
	    &hpub, &h[0]);
	return rv == CKR_OK ? CT_OK : fail(s, FN_GEN_KEY_PAIR, rv);
}

ct_err
p11_generate(p11_session *s, p11_key_type type, const char *label)
{
	return p11_generate_key(s, type, label, false);
}

ct_err
p11_generate_key(p11_session *s, p11_key_type type, const char *label,
    bool backup)
{
	struct gen_args g = { type, label, backup };
	ct_err r;

	if (type < P11_KEY_EC_P256 || type > P11_KEY_AES_256)
		return CT_ERR_BAD_REQUEST;
	if ((r = label_check(label)) != CT_OK)
		return r;
	pthread_mutex_lock(&s->t->gen_lock);
	r = run(s, op_generate, &g);
	pthread_mutex_unlock(&s->t->gen_lock);
	return r;
}

struct list_args {
	const char *prefix;
	size_t prefix_len;
	char **v;
	size_t n, cap;
};

static ct_err
list_add(p11_session *s, struct list_args *l, CK_OBJECT_HANDLE h)
{
	char label[P11_LABEL_MAX], **v;
	CK_ATTRIBUTE a = attr(CKA_LABEL, label, sizeof(label) - 1);
	size_t i, cap;
	CK_RV rv;

	rv = s->t->f->C_GetAttributeValue(s->h, h, &a, 1);
	/* Labels longer than any we make, and objects deleted meanwhile,
	 * are not ours to list. */
	if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_OBJECT_HANDLE_INVALID)
		return CT_OK;
	if (rv != CKR_OK)
		return fail(s, FN_GET_ATTR, rv);
	if (a.ulValueLen >= sizeof(label))
		return CT_ERR_TOKEN;	/* CKR_OK to a short buffer */
	label[a.ulValueLen] = '\0';
	if (strlen(label) != a.ulValueLen ||
	    strncmp(label, l->prefix, l->prefix_len) != 0)
		return CT_OK;
	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], label) == 0)
			return CT_OK;
	}
	if (l->n == P11_LIST_MAX)
		return CT_ERR_TOO_LARGE;
	if (l->n == l->cap) {
		cap = l->cap == 0 ? 16 : l->cap * 2;
		if ((v = reallocarray(l->v, cap, sizeof(*v))) == NULL)
			return CT_ERR_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(label)) == NULL)
		return CT_ERR_NOMEM;
	l->n++;
	return CT_OK;
}

static ct_err
list_class(p11_session *s, struct list_args *l, CK_OBJECT_CLASS cls)
{
	CK_FUNCTION_LIST_PTR f = s->t->f;
	CK_ATTRIBUTE tmpl[] = {
		attr(CKA_TOKEN, &yes, sizeof(yes)),
		attr(CKA_CLASS, &cls, sizeof(cls)),
	};
	CK_OBJECT_HANDLE h[32];
	CK_ULONG i, n;
	CK_RV rv;
	ct_err r = CT_OK;

	if ((rv = f->C_FindObjectsInit(s->h, tmpl, NITEMS(tmpl))) != CKR_OK)
		return fail(s, FN_FIND_INIT, rv);
	do {
		if ((rv = f->C_FindObjects(s->h, h, NITEMS(h), &n)) != CKR_OK) {
			r = fail(s, FN_FIND, rv);
			break;
		}
		for (i = 0; i < n && r == CT_OK; i++)
			r = list_add(s, l, h[i]);
	} while (r == CT_OK && n > 0);
	(void)f->C_FindObjectsFinal(s->h);
	return r;
}

static ct_err
op_list(p11_session *s, void *arg)
{
	struct list_args *l = arg;
	ct_err r;

	if ((r = list_class(s, l, CKO_PRIVATE_KEY)) == CT_OK &&
	    (r = list_class(s, l, CKO_SECRET_KEY)) == CT_OK)
		return CT_OK;
	/* A retry starts from nothing. */
	p11_labels_free(l->v, l->n);
	l->v = NULL;
	l->n = l->cap = 0;
	return r;
}

ct_err
p11_list_labels(p11_session *s, const char *prefix, char ***labels_out,
    size_t *n_out)
{
	struct list_args l = { .prefix = prefix != NULL ? prefix : "" };
	ct_err r;

	*labels_out = NULL;
	*n_out = 0;
	l.prefix_len = strlen(l.prefix);
	if ((r = run(s, op_list, &l)) != CT_OK)
		return r;
	*labels_out = l.v;
	*n_out = l.n;
	return CT_OK;
}

void
p11_labels_free(char **labels, size_t n)
{
	size_t i;

	if (labels == NULL)
		return;
	for (i = 0; i < n; i++)
		free(labels[i]);
	free(labels);
}

/* Single-part sign, encrypt and decrypt: the hot path.  One xInit and one
 * x call on a known handle. */

enum crypt_kind { CRYPT_SIGN, CRYPT_ENCRYPT, CRYPT_DECRYPT };

struct crypt_args {
	enum crypt_kind kind;
	CK_MECHANISM mech;
	CK_OBJECT_HANDLE key;
	const uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outlen;		/* room on entry, length on return */
};

static ct_err
op_crypt(p11_session *s, void *arg)
{
	static const enum p11_fn fns[][2] = {
		[CRYPT_SIGN] = { FN_SIGN_INIT, FN_SIGN },
		[CRYPT_ENCRYPT] = { FN_ENCRYPT_INIT, FN_ENCRYPT },
		[CRYPT_DECRYPT] = { FN_DECRYPT_INIT, FN_DECRYPT },
	};
	struct crypt_args *c = arg;
	CK_FUNCTION_LIST_PTR f = s->t->f;
	CK_C_SignInit init;
	CK_C_Sign call;
	CK_ULONG outlen = c->outlen;
	CK_RV rv;

	switch (c->kind) {
	case CRYPT_SIGN:
		init = f->C_SignInit;
		call = f->C_Sign;
		break;
	case CRYPT_ENCRYPT:
		init = f->C_EncryptInit;
		call = f->C_Encrypt;
		break;
	default:
		init = f->C_DecryptInit;
		call = f->C_Decrypt;
		break;
	}
	if ((rv = init(s->h, &c->mech, c->key)) != CKR_OK)
		return fail(s, fns[c->kind][0], rv);
	/* Some modules take a NULL input as a size query or refuse it. */
	rv = call(s->h, (CK_BYTE_PTR)(c->in != NULL ? c->in :
	    (const uint8_t *)""), c->inlen, c->out, &outlen);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		/* The operation stays active after this, and only closing
		 * the session ends it; the next call opens a new one. */
		(void)f->C_CloseSession(s->h);
		s->h = CK_INVALID_HANDLE;
	}
	if (rv != CKR_OK)
		return fail(s, fns[c->kind][1], rv);
	c->outlen = outlen;
	return CT_OK;
}

/* CKM_ECDSA gives r||s; callers want an ECDSA-Sig-Value. */
static ct_err
ecdsa_der(const uint8_t *raw, size_t rawlen, uint8_t *sig, size_t *siglen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p = sig;
	int len;
	ct_err r = CT_ERR_TOKEN;

	if (rawlen == 0 || rawlen % 2 != 0)
		goto out;
	r = CT_ERR_NOMEM;
	if ((br = BN_bin2bn(raw, rawlen / 2, NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + rawlen / 2, rawlen / 2, NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL)
		goto out;
	if (!ECDSA_SIG_set0(es, br, bs))
		goto out;
	br = bs = NULL;		/* es owns them */
	r = CT_ERR_INTERNAL;
	if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)len > *siglen ||
	    i2d_ECDSA_SIG(es, &p) != len)
		goto out;
	*siglen = len;
	r = CT_OK;
 out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

ct_err
p11_sign(p11_session *s, CK_OBJECT_HANDLE key, p11_sig_mech mech,
    const uint8_t *digest, size_t dlen, uint8_t *sig, size_t *siglen)
{
	CK_RSA_PKCS_PSS_PARAMS pss = {
		CKM_SHA256, CKG_MGF1_SHA256, SHA256_LEN,
	};
	uint8_t raw[ECDSA_RAW_MAX], info[sizeof(sha256_prefix) + SHA256_LEN];
	struct crypt_args c = {
		.kind = CRYPT_SIGN, .key = key, .in = digest, .inlen = dlen,
		.out = sig, .outlen = *siglen,
	};
	ct_err r;

	if (digest == NULL || sig == NULL)
		return CT_ERR_BAD_REQUEST;
	switch (mech) {
	case P11_SIG_ECDSA:
		if (dlen == 0 || dlen > EVP_MAX_MD_SIZE)
			return CT_ERR_BAD_REQUEST;
		c.mech.mechanism = CKM_ECDSA;
		c.out = raw;
		c.outlen = sizeof(raw);
		break;
	case P11_SIG_RSA_PSS_SHA256:
		if (dlen != SHA256_LEN)
			return CT_ERR_BAD_REQUEST;
		c.mech.mechanism = CKM_RSA_PKCS_PSS;
		c.mech.pParameter = &pss;
		c.mech.ulParameterLen = sizeof(pss);
		break;
	case P11_SIG_RSA_PKCS1_SHA256:
		if (dlen != SHA256_LEN)
			return CT_ERR_BAD_REQUEST;
		memcpy(info, sha256_prefix, sizeof(sha256_prefix));
		memcpy(info + sizeof(sha256_prefix), digest, dlen);
		c.mech.mechanism = CKM_RSA_PKCS;
		c.in = info;
		c.inlen = sizeof(info);
		break;
	default:
		return CT_ERR_BAD_REQUEST;
	}
	if ((r = run(s, op_crypt, &c)) != CT_OK)
		return r;
	if (mech == P11_SIG_ECDSA)
		return ecdsa_der(raw, c.outlen, sig, siglen);
	*siglen = c.outlen;
	return CT_OK;
}

ct_err
p11_rsa_oaep_decrypt(p11_session *s, CK_OBJECT_HANDLE key, p11_hash hash,
    const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA_1, CKG_MGF1_SHA1,
	    CKZ_DATA_SPECIFIED, NULL, 0 };
	struct crypt_args c = {
		.kind = CRYPT_DECRYPT,
		.mech = { CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep) },
		.key = key, .in = in, .inlen = inlen, .out = out,
		.outlen = *outlen,
	};
	ct_err r;

	switch (hash) {
	case P11_HASH_SHA1:
		break;
	case P11_HASH_SHA256:
		oaep.hashAlg = CKM_SHA256;
		oaep.mgf = CKG_MGF1_SHA256;
		break;
	default:
		return CT_ERR_BAD_REQUEST;
	}
	/* A NULL output would make C_Decrypt a size query. */
	if (in == NULL || inlen == 0 || out == NULL)
		return CT_ERR_BAD_REQUEST;
	if ((r = run(s, op_crypt, &c)) != CT_OK)
		return r;
	*outlen = c.outlen;
	return CT_OK;
}

static ct_err
aes_gcm(p11_session *s, enum crypt_kind kind, CK_OBJECT_HANDLE key,
    const uint8_t iv[GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
    const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
	CK_GCM_PARAMS gcm = {
		.pIv = (CK_BYTE_PTR)iv, .ulIvLen = GCM_IV_LEN,
		.ulIvBits = GCM_IV_LEN * 8, .pAAD = (CK_BYTE_PTR)aad,
		.ulAADLen = aadlen, .ulTagBits = GCM_TAG_LEN * 8,
	};
	struct crypt_args c = {
		.kind = kind,
		.mech = { CKM_AES_GCM, &gcm, sizeof(gcm) },
		.key = key, .in = in, .inlen = inlen, .out = out,
		.outlen = *outlen,
	};
	ct_err r;

	if (iv == NULL || (aad == NULL && aadlen != 0) ||
	    (in == NULL && inlen != 0) || out == NULL)
		return CT_ERR_BAD_REQUEST;
	if ((r = run(s, op_crypt, &c)) != CT_OK)
		return r;
	*outlen = c.outlen;
	return CT_OK;
}

ct_err
p11_aes_gcm_encrypt(p11_session *s, CK_OBJECT_HANDLE key,
    const uint8_t iv[12], const uint8_t *aad, size_t aadlen,
    const uint8_t *pt, size_t ptlen, uint8_t *out, size_t *outlen)
{
	return aes_gcm(s, CRYPT_ENCRYPT, key, iv, aad, aadlen, pt, ptlen,
	    out, outlen);
}

ct_err
p11_aes_gcm_decrypt(p11_session *s, CK_OBJECT_HANDLE key,
    const uint8_t iv[12], const uint8_t *aad, size_t aadlen,
    const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
	if (inlen < GCM_TAG_LEN)
		return CT_ERR_DECRYPT;	/* no room for the tag */
	return aes_gcm(s, CRYPT_DECRYPT, key, iv, aad, aadlen, in, inlen,
	    out, outlen);
}

/* Public keys */

struct pub_args {
	const char *label;
	CK_KEY_TYPE type;
	/* CKA_MODULUS and CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS and
	 * CKA_EC_POINT; 1024 bytes is an 8192-bit modulus. */
	CK_BYTE a[1024], b[1024];
	CK_ULONG alen, blen;
};

static ct_err
op_public_key(p11_session *s, void *arg)
{
	struct pub_args *p = arg;
	CK_FUNCTION_LIST_PTR f = s->t->f;
	CK_ATTRIBUTE type = attr(CKA_KEY_TYPE, &p->type, sizeof(p->type));
	CK_ATTRIBUTE vals[2] = {
		attr(CKA_MODULUS, p->a, sizeof(p->a)),
		attr(CKA_PUBLIC_EXPONENT, p->b, sizeof(p->b)),
	};
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	ct_err r;

	if ((r = find_one(s, CKO_PUBLIC_KEY, p->label, &h)) != CT_OK)
		return r;
	if ((rv = f->C_GetAttributeValue(s->h, h, &type, 1)) != CKR_OK)
		return fail(s, FN_GET_ATTR, rv);
	if (p->type == CKK_EC) {
		vals[0].type = CKA_EC_PARAMS;
		vals[1].type = CKA_EC_POINT;
	} else if (p->type != CKK_RSA)
		return CT_ERR_WRONG_KEY_TYPE;
	if ((rv = f->C_GetAttributeValue(s->h, h, vals, 2)) != CKR_OK)
		return fail(s, FN_GET_ATTR, rv);
	if (vals[0].ulValueLen > sizeof(p->a) ||
	    vals[1].ulValueLen > sizeof(p->b))
		return CT_ERR_TOKEN;	/* CKR_OK to a short buffer */
	p->alen = vals[0].ulValueLen;
	p->blen = vals[1].ulValueLen;
	return CT_OK;
}

/* The key as OpenSSL's own: nothing in it refers back to the token. */
static ct_err
pkey_build(const struct pub_args *p, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *ossl = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	ASN1_OCTET_STRING *point = NULL;
	const unsigned char *q = p->b;
	const char *alg = "RSA";
	size_t i;
	ct_err r = CT_ERR_NOMEM;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (p->type == CKK_RSA) {
		if ((n = BN_bin2bn(p->a, p->alen, NULL)) == NULL ||
		    (e = BN_bin2bn(p->b, p->blen, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
	} else {
		alg = "EC";
		for (i = 0; i < NITEMS(curves); i++) {
			if (curves[i].oid_len == p->alen &&
			    memcmp(curves[i].oid, p->a, p->alen) == 0)
				break;
		}
		r = CT_ERR_WRONG_KEY_TYPE;
		if (i == NITEMS(curves))
			goto out;
		/* CKA_EC_POINT is the point in a DER OCTET STRING. */
		r = CT_ERR_TOKEN;
		if ((point = d2i_ASN1_OCTET_STRING(NULL, &q, p->blen)) == NULL)
			goto out;
		r = CT_ERR_NOMEM;
		if (!OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, curves[i].name, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(point),
		    ASN1_STRING_length(point)))
			goto out;
	}
	if ((ossl = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL)) == NULL)
		goto out;
	r = CT_ERR_TOKEN;	/* the token's values make no key */
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, ossl) <= 0)
		goto out;
	r = CT_OK;
 out:
	if (r != CT_OK)
		ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(ossl);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ASN1_OCTET_STRING_free(point);
	return r;
}

ct_err
p11_public_key(p11_session *s, const char *label, EVP_PKEY **out)
{
	struct pub_args p = { .label = label };
	ct_err r;

	*out = NULL;
	if ((r = label_check(label)) != CT_OK ||
	    (r = run(s, op_public_key, &p)) != CT_OK)
		return r;
	return pkey_build(&p, out);
}

/* Odds and ends */

struct random_args {
	uint8_t *buf;
	size_t len;
};

static ct_err
op_random(p11_session *s, void *arg)
{
	struct random_args *a = arg;
	CK_RV rv;

	rv = s->t->f->C_GenerateRandom(s->h, a->buf, a->len);
	return rv == CKR_OK ? CT_OK : fail(s, FN_RANDOM, rv);
}

ct_err
p11_random(p11_session *s, uint8_t *buf, size_t len)
{
	struct random_args a = { buf, len };

	if (len == 0)
		return CT_OK;
	if (buf == NULL)
		return CT_ERR_BAD_REQUEST;
	return run(s, op_random, &a);
}

struct attrs_args {
	CK_OBJECT_HANDLE key;
	p11_key_attrs *out;
};

static ct_err
op_key_attrs(p11_session *s, void *arg)
{
	struct attrs_args *a = arg;
	CK_BBOOL v[6] = { 0 };
	CK_ATTRIBUTE tmpl[] = {
		attr(CKA_SENSITIVE, &v[0], sizeof(v[0])),
		attr(CKA_EXTRACTABLE, &v[1], sizeof(v[1])),
		attr(CKA_ALWAYS_SENSITIVE, &v[2], sizeof(v[2])),
		attr(CKA_NEVER_EXTRACTABLE, &v[3], sizeof(v[3])),
		attr(CKA_LOCAL, &v[4], sizeof(v[4])),
		attr(CKA_WRAP_WITH_TRUSTED, &v[5], sizeof(v[5])),
	};
	int *dst[] = {
		&a->out->sensitive, &a->out->extractable,
		&a->out->always_sensitive, &a->out->never_extractable,
		&a->out->local, &a->out->wrap_with_trusted,
	};
	size_t i;
	CK_RV rv;

	rv = s->t->f->C_GetAttributeValue(s->h, a->key, tmpl, NITEMS(tmpl));
	/* Public keys lack some; the token fills in the rest and marks
	 * those unavailable, which read as 0. */
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		return fail(s, FN_GET_ATTR, rv);
	for (i = 0; i < NITEMS(tmpl); i++)
		*dst[i] = tmpl[i].ulValueLen == sizeof(v[i]) && v[i] == CK_TRUE;
	return CT_OK;
}

ct_err
p11_get_key_attrs(p11_session *s, CK_OBJECT_HANDLE key, p11_key_attrs *out)
{
	struct attrs_args a = { key, out };

	return run(s, op_key_attrs, &a);
}

/* Backup: wrapping under the trusted key, restoring, the ceremony */

static CK_KEY_TYPE
ck_key_type(p11_key_type type)
{
	return type == P11_KEY_AES_256 ? CKK_AES :
	    type == P11_KEY_RSA_3072 ? CKK_RSA : CKK_EC;
}

struct wrap_args {
	CK_OBJECT_HANDLE wrapping, key;
	uint8_t *out;
	size_t outlen;		/* room on entry, length on return */
};

static ct_err
op_wrap(p11_session *s, void *arg)
{
	struct wrap_args *w = arg;
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_ULONG len = w->outlen;
	CK_RV rv;

	rv = s->t->f->C_WrapKey(s->h, &mech, w->wrapping, w->key, w->out,
	    &len);
	if (rv != CKR_OK)
		return fail(s, FN_WRAP, rv);
	w->outlen = len;
	return CT_OK;
}

ct_err
p11_wrap(p11_session *s, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
    uint8_t *out, size_t *outlen)
{
	struct wrap_args w = { wrapping, key, out, *outlen };
	ct_err r;

	if (out == NULL)
		return CT_ERR_BAD_REQUEST;	/* NULL is a size query */
	if ((r = run(s, op_wrap, &w)) != CT_OK)
		return r;
	*outlen = w.outlen;
	return CT_OK;
}

struct unwrap_args {
	CK_OBJECT_HANDLE unwrapping;
	p11_key_type type;
	const char *label;
	const uint8_t *id, *in;
	size_t idlen, inlen;
	CK_OBJECT_HANDLE h;
};

static ct_err
op_unwrap(p11_session *s, void *arg)
{
	struct unwrap_args *u = arg;
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_OBJECT_CLASS cls = u->type == P11_KEY_AES_256 ? CKO_SECRET_KEY :
	    CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = ck_key_type(u->type);
	CK_ATTRIBUTE t[20];
	CK_ULONG n = 0;
	CK_RV rv;

	t[n++] = attr(CKA_CLASS, &cls, sizeof(cls));
	t[n++] = attr(CKA_KEY_TYPE, &kt, sizeof(kt));
	t[n++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	t[n++] = attr(CKA_PRIVATE, &yes, sizeof(yes));
	t[n++] = attr(CKA_SENSITIVE, &yes, sizeof(yes));
	n += extract_attrs(t + n, true);
	t[n++] = attr(CKA_LABEL, u->label, strlen(u->label));
	t[n++] = attr(CKA_ID, u->id, u->idlen);
	if (u->type == P11_KEY_AES_256)
		add_uses(t, &n, u->type, secret_uses, NITEMS(secret_uses));
	else
		add_uses(t, &n, u->type, priv_uses, NITEMS(priv_uses));
	rv = s->t->f->C_UnwrapKey(s->h, &mech, u->unwrapping,
	    (CK_BYTE_PTR)u->in, u->inlen, t, n, &u->h);
	return rv == CKR_OK ? CT_OK : fail(s, FN_UNWRAP, rv);
}

ct_err
p11_unwrap(p11_session *s, CK_OBJECT_HANDLE unwrapping, p11_key_type type,
    const char *label, const uint8_t *id, size_t idlen, const uint8_t *in,
    size_t inlen, CK_OBJECT_HANDLE *out)
{
	struct unwrap_args u = {
		unwrapping, type, label, id, in, idlen, inlen,
		CK_INVALID_HANDLE,
	};
	ct_err r;

	*out = CK_INVALID_HANDLE;
	if (type < P11_KEY_EC_P256 || type > P11_KEY_AES_256 ||
	    id == NULL || idlen == 0 || in == NULL || inlen == 0)
		return CT_ERR_BAD_REQUEST;
	if ((r = label_check(label)) != CT_OK ||
	    (r = run(s, op_unwrap, &u)) != CT_OK)
		return r;
	*out = u.h;
	return CT_OK;
}

struct store_pub_args {
	p11_key_type type;
	const char *label;
	const uint8_t *id;
	size_t idlen;
	CK_ATTRIBUTE vals[2];	/* modulus, exponent or params, point */
	CK_OBJECT_HANDLE h;
};

static ct_err
op_store_public(p11_session *s, void *arg)
{
	struct store_pub_args *p = arg;
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = ck_key_type(p->type);
	CK_ATTRIBUTE t[16];
	CK_ULONG n = 0;
	CK_RV rv;

	t[n++] = attr(CKA_CLASS, &cls, sizeof(cls));
	t[n++] = attr(CKA_KEY_TYPE, &kt, sizeof(kt));
	t[n++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	t[n++] = attr(CKA_PRIVATE, &no, sizeof(no));
	t[n++] = attr(CKA_LABEL, p->label, strlen(p->label));
	t[n++] = attr(CKA_ID, p->id, p->idlen);
	t[n++] = p->vals[0];
	t[n++] = p->vals[1];
	add_uses(t, &n, p->type, pub_uses, NITEMS(pub_uses));
	rv = s->t->f->C_CreateObject(s->h, t, n, &p->h);
	return rv == CKR_OK ? CT_OK : fail(s, FN_CREATE, rv);
}

ct_err
p11_store_public(p11_session *s, p11_key_type type, EVP_PKEY *pk,
    const char *label, const uint8_t *id, size_t idlen,
    CK_OBJECT_HANDLE *out)
{
	struct store_pub_args p = { type, label, id, idlen, { { 0 } },
	    CK_INVALID_HANDLE };
	CK_BYTE a[1024], b[1024];
	BIGNUM *n = NULL, *e = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char pt[1 + 2 * 66], *q = b;
	char group[32];
	size_t i, ptlen;
	int alen, blen;
	ct_err r = CT_ERR_WRONG_KEY_TYPE;

	*out = CK_INVALID_HANDLE;
	if (pk == NULL || id == NULL || idlen == 0 ||
	    (r = label_check(label)) != CT_OK)
		return pk == NULL || id == NULL ? CT_ERR_BAD_REQUEST : r;
	r = CT_ERR_WRONG_KEY_TYPE;
	if (type == P11_KEY_RSA_3072) {
		if (!EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_get_bits(pk) != 3072 ||
		    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) ||
		    (alen = BN_bn2bin(n, a)) <= 0 ||
		    BN_num_bytes(e) > (int)sizeof(b) ||
		    (blen = BN_bn2bin(e, b)) <= 0)
			goto out;
		p.vals[0] = attr(CKA_MODULUS, a, (size_t)alen);
		p.vals[1] = attr(CKA_PUBLIC_EXPONENT, b, (size_t)blen);
	} else {
		for (i = 0; i < NITEMS(curves) && curves[i].type != type; i++)
			;
		/* CKA_EC_POINT is the uncompressed point in an OCTET STRING. */
		if (i == NITEMS(curves) || !EVP_PKEY_is_a(pk, "EC") ||
		    !EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) ||
		    EC_curve_nist2nid(curves[i].name) != OBJ_sn2nid(group) ||
		    !EVP_PKEY_get_octet_string_param(pk,
		    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen))
			goto out;
		r = CT_ERR_NOMEM;
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, pt, (int)ptlen))
			goto out;
		r = CT_ERR_INTERNAL;
		if ((blen = i2d_ASN1_OCTET_STRING(os, NULL)) <= 0 ||
		    blen > (int)sizeof(b) || i2d_ASN1_OCTET_STRING(os, &q) != blen)
			goto out;
		p.vals[0] = attr(CKA_EC_PARAMS, curves[i].oid,
		    curves[i].oid_len);
		p.vals[1] = attr(CKA_EC_POINT, b, (size_t)blen);
	}
	if ((r = run(s, op_store_public, &p)) != CT_OK)
		goto out;
	*out = p.h;
 out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	ASN1_OCTET_STRING_free(os);
	return r;
}

struct obj_args {
	CK_OBJECT_HANDLE h;
	const char *label;	/* relabel */
	uint8_t *id;		/* read the ID */
	size_t idlen;		/* room on entry, length on return */
};

static ct_err
op_destroy(p11_session *s, void *arg)
{
	struct obj_args *o = arg;
	CK_RV rv = s->t->f->C_DestroyObject(s->h, o->h);

	return rv == CKR_OK ? CT_OK : fail(s, FN_DESTROY, rv);
}

ct_err
p11_destroy(p11_session *s, CK_OBJECT_HANDLE h)
{
	struct obj_args o = { .h = h };

	return run(s, op_destroy, &o);
}

static ct_err
op_destroy_label(p11_session *s, void *arg)
{
	struct obj_args *o = arg;
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n, i;
	CK_RV rv;
	ct_err r;

	/* Each round removes what it finds; a label has few objects. */
	for (o->idlen = 0; o->idlen < P11_LIST_MAX; ) {
		if ((r = find_label(s, NULL, o->label, h, &n)) != CT_OK)
			return r;
		if (n == 0)
			return CT_OK;
		for (i = 0; i < n; i++, o->idlen++)
			if ((rv = s->t->f->C_DestroyObject(s->h, h[i])) != CKR_OK)
				return fail(s, FN_DESTROY, rv);
	}
	return CT_ERR_TOKEN;
}

ct_err
p11_destroy_label(p11_session *s, const char *label, size_t *n_out)
{
	struct obj_args o = { .label = label };
	ct_err r;

	*n_out = 0;
	if ((r = label_check(label)) != CT_OK)
		return r;
	r = run(s, op_destroy_label, &o);
	*n_out = o.idlen;
	return r;
}

static ct_err
op_relabel(p11_session *s, void *arg)
{
	struct obj_args *o = arg;
	CK_ATTRIBUTE a = attr(CKA_LABEL, o->label, strlen(o->label));
	CK_RV rv = s->t->f->C_SetAttributeValue(s->h, o->h, &a, 1);

	return rv == CKR_OK ? CT_OK : fail(s, FN_SET_ATTR, rv);
}

ct_err
p11_relabel(p11_session *s, CK_OBJECT_HANDLE h, const char *label)
{
	struct obj_args o = { .h = h, .label = label };
	ct_err r;

	if ((r = label_check(label)) != CT_OK)
		return r;
	return run(s, op_relabel, &o);
}

static ct_err
op_key_id(p11_session *s, void *arg)
{
	struct obj_args *o = arg;
	CK_ATTRIBUTE a = attr(CKA_ID, o->id, o->idlen);
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, o->h, &a, 1);

	if (rv != CKR_OK)
		return fail(s, FN_GET_ATTR, rv);
	if (a.ulValueLen > o->idlen)
		return CT_ERR_TOKEN;	/* CKR_OK to a short buffer */
	o->idlen = a.ulValueLen;
	return CT_OK;
}

ct_err
p11_key_id(p11_session *s, CK_OBJECT_HANDLE h, uint8_t *id, size_t *idlen)
{
	struct obj_args o = { .h = h, .id = id, .idlen = *idlen };
	ct_err r;

	if ((r = run(s, op_key_id, &o)) != CT_OK)
		return r;
	*idlen = o.idlen;
	return CT_OK;
}

/* The ceremony works on raw sessions: it logs in as the SO, which the
 * worker sessions above never do, and must not re-login as the user. */

struct ceremony {
	char *err;
	size_t errlen;
};

static ct_err
cer_fail(struct ceremony *c, const char *token, const char *what,
    enum p11_fn fn, CK_RV rv)
{
	seterr(c->err, c->errlen, "token %s: %s: %s: %s", token, what,
	    fn_names[fn], p11_rv_name(rv));
	return map_rv(fn, rv);
}

static ct_err
cer_login(struct ceremony *c, p11_token *t, CK_USER_TYPE who,
    const p11_pin *pin, CK_SESSION_HANDLE h)
{
	CK_RV rv = t->f->C_Login(h, who, (CK_UTF8CHAR_PTR)pin->pin, pin->len);

	if (rv != CKR_OK)
		return cer_fail(c, t->label, who == CKU_SO ? "SO login" :
		    "user login", FN_LOGIN, rv);
	return CT_OK;
}

static ct_err
cer_open(struct ceremony *c, p11_token *t, CK_USER_TYPE who,
    const p11_pin *pin, CK_SESSION_HANDLE *h)
{
	CK_RV rv;

	if (pin->pin == NULL || pin->len == 0 || pin->len > P11_PIN_MAX) {
		seterr(c->err, c->errlen, "token %s: no %s PIN", t->label,
		    who == CKU_SO ? "SO" : "user");
		return CT_ERR_BAD_REQUEST;
	}
	if ((rv = t->f->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION |
	    CKF_RW_SESSION, NULL, NULL, h)) != CKR_OK) {
		*h = CK_INVALID_HANDLE;
		return cer_fail(c, t->label, "session", FN_OPEN_SESSION, rv);
	}
	return cer_login(c, t, who, pin, *h);
}

/* Logs out (the login belongs to the whole application) and closes. */
static void
cer_close(p11_token *t, CK_SESSION_HANDLE h)
{
	if (h == CK_INVALID_HANDLE)
		return;
	(void)t->f->C_Logout(h);
	(void)t->f->C_CloseSession(h);
}

static ct_err
cer_find(struct ceremony *c, p11_token *t, CK_SESSION_HANDLE h,
    const char *label,
    CK_OBJECT_HANDLE *out, CK_ULONG *n)
{
	CK_ATTRIBUTE a = attr(CKA_LABEL, label, strlen(label));
	CK_OBJECT_HANDLE found[2];
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = t->f->C_FindObjectsInit(h, &a, 1)) != CKR_OK)
		return cer_fail(c, t->label, "find", FN_FIND_INIT, rv);
	rv = t->f->C_FindObjects(h, found, 2, n);
	(void)t->f->C_FindObjectsFinal(h);
	if (rv != CKR_OK)
		return cer_fail(c, t->label, "find", FN_FIND, rv);
	if (*n > 0)
		*out = found[0];
	return CT_OK;
}

/* The source copy: sensitive, leaves the token only wrapped under a key
 * its SO trusts, and good for nothing else. */
static ct_err
cer_make_master(struct ceremony *c, p11_token *t, CK_SESSION_HANDLE h,
    const char *label, CK_OBJECT_HANDLE *out)
{
	static const CK_ULONG aes_len = 32;
	static const CK_ATTRIBUTE_TYPE nouse[] = {
		CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN,
		CKA_VERIFY, CKA_DERIVE,
	};
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t2[20];
	CK_BYTE id[16];
	CK_ULONG n = 0;
	size_t i;
	CK_RV rv;

	if ((rv = t->f->C_GenerateRandom(h, id, sizeof(id))) != CKR_OK)
		return cer_fail(c, t->label, "random", FN_RANDOM, rv);
	t2[n++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	t2[n++] = attr(CKA_PRIVATE, &yes, sizeof(yes));
	t2[n++] = attr(CKA_SENSITIVE, &yes, sizeof(yes));
	n += extract_attrs(t2 + n, true);
	t2[n++] = attr(CKA_LABEL, label, strlen(label));
	t2[n++] = attr(CKA_ID, id, sizeof(id));
	t2[n++] = attr(CKA_VALUE_LEN, &aes_len, sizeof(aes_len));
	for (i = 0; i < NITEMS(nouse); i++)
		t2[n++] = attr(nouse[i], &no, sizeof(no));
	if ((rv = t->f->C_GenerateKey(h, &mech, t2, n, out)) != CKR_OK)
		return cer_fail(c, t->label, "generating the wrapping key",
		    FN_GEN_KEY, rv);
	return CT_OK;
}

ct_err
p11_wrapkey_transport(p11_token *src, const p11_pin *src_user,
    const p11_pin *src_so, p11_token *dst, const p11_pin *dst_so,
    const char *label, bool *created, char *err, size_t errlen)
{
	static const CK_ULONG rsa_bits = 3072;
	static const CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
	struct ceremony c = { err, errlen };
	CK_MECHANISM gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256,
	    CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM om = { CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep) };
	CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, sec_cls = CKO_SECRET_KEY;
	CK_KEY_TYPE rsa = CKK_RSA, aes = CKK_AES;
	CK_BYTE mod[512], id[64], wrapped[512];
	CK_ULONG n, wlen = sizeof(wrapped);
	/* Every key the twin unwraps is a private, sensitive, backup-capable
	 * key: nobody without the user PIN can restore a file with it. */
	CK_ATTRIBUTE unwrap_tmpl[] = {
		attr(CKA_PRIVATE, &yes, sizeof(yes)),
		attr(CKA_SENSITIVE, &yes, sizeof(yes)),
		attr(CKA_EXTRACTABLE, &yes, sizeof(yes)),
		attr(CKA_WRAP_WITH_TRUSTED, &yes, sizeof(yes)),
	};
	CK_ATTRIBUTE tpub[] = {
		attr(CKA_TOKEN, &no, sizeof(no)),
		attr(CKA_PRIVATE, &no, sizeof(no)),
		attr(CKA_WRAP, &yes, sizeof(yes)),
		attr(CKA_ENCRYPT, &no, sizeof(no)),
		attr(CKA_VERIFY, &no, sizeof(no)),
		attr(CKA_MODULUS_BITS, &rsa_bits, sizeof(rsa_bits)),
		attr(CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)),
	}, tpriv[] = {
		attr(CKA_TOKEN, &no, sizeof(no)),
		attr(CKA_PRIVATE, &no, sizeof(no)),
		attr(CKA_SENSITIVE, &yes, sizeof(yes)),
		attr(CKA_EXTRACTABLE, &no, sizeof(no)),
		attr(CKA_UNWRAP, &yes, sizeof(yes)),
		attr(CKA_DECRYPT, &no, sizeof(no)),
		attr(CKA_SIGN, &no, sizeof(no)),
	}, modulus[] = {
		attr(CKA_MODULUS, mod, sizeof(mod)),
	}, idattr = attr(CKA_ID, id, sizeof(id));
	CK_ATTRIBUTE trusted_pub[8], twin[16];
	CK_SESSION_HANDLE hd = CK_INVALID_HANDLE, hs = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE dpub, dpriv, spub, master = CK_INVALID_HANDLE, key, o;
	CK_ULONG nt = 0;
	CK_RV rv;
	ct_err r;

	*created = false;
	seterr(err, errlen, "%s", "");
	if (label_check(label) != CT_OK || src == dst)
		return CT_ERR_BAD_REQUEST;
	/* 1. The target's SO makes a transport key pair: session objects,
	 * gone when the session closes. */
	if ((r = cer_open(&c, dst, CKU_SO, dst_so, &hd)) != CT_OK ||
	    (r = cer_find(&c, dst, hd, label, &o, &n)) != CT_OK)
		goto out;
	if (n > 0) {
		seterr(err, errlen, "token %s already holds \"%s\"", dst->label,
		    label);
		r = CT_ERR_EXISTS;
		goto out;
	}
	if ((rv = dst->f->C_GenerateKeyPair(hd, &gen, tpub, NITEMS(tpub), tpriv,
	    NITEMS(tpriv), &dpub, &dpriv)) != CKR_OK) {
		r = cer_fail(&c, dst->label, "transport key", FN_GEN_KEY_PAIR, rv);
		goto out;
	}
	if ((rv = dst->f->C_GetAttributeValue(hd, dpub, modulus, 1)) != CKR_OK) {
		r = cer_fail(&c, dst->label, "transport key", FN_GET_ATTR, rv);
		goto out;
	}
	/* 2. The source's SO trusts the transport public key for this one
	 * session; then the user wraps the wrapping key under it. */
	trusted_pub[nt++] = attr(CKA_CLASS, &pub_cls, sizeof(pub_cls));
	trusted_pub[nt++] = attr(CKA_KEY_TYPE, &rsa, sizeof(rsa));
	trusted_pub[nt++] = attr(CKA_TOKEN, &no, sizeof(no));
	trusted_pub[nt++] = attr(CKA_PRIVATE, &no, sizeof(no));
	trusted_pub[nt++] = attr(CKA_WRAP, &yes, sizeof(yes));
	trusted_pub[nt++] = attr(CKA_TRUSTED, &yes, sizeof(yes));
	trusted_pub[nt++] = modulus[0];
	trusted_pub[nt++] = attr(CKA_PUBLIC_EXPONENT, exponent,
	    sizeof(exponent));
	if ((r = cer_open(&c, src, CKU_SO, src_so, &hs)) != CT_OK)
		goto out;
	if ((rv = src->f->C_CreateObject(hs, trusted_pub, nt, &spub)) != CKR_OK) {
		r = cer_fail(&c, src->label, "trusting the transport key",
		    FN_CREATE, rv);
		goto out;
	}
	if ((rv = src->f->C_Logout(hs)) != CKR_OK) {
		r = cer_fail(&c, src->label, "SO logout", FN_LOGOUT, rv);
		goto out;
	}
	if ((r = cer_login(&c, src, CKU_USER, src_user, hs)) != CT_OK ||
	    (r = cer_find(&c, src, hs, label, &master, &n)) != CT_OK)
		goto out;
	if (n > 1) {
		seterr(err, errlen, "token %s: several objects \"%s\"",
		    src->label, label);
		r = CT_ERR_TOKEN;
		goto out;
	}
	if (n == 0) {
		if ((r = cer_make_master(&c, src, hs, label, &master)) != CT_OK)
			goto out;
		*created = true;
	}
	if ((rv = src->f->C_GetAttributeValue(hs, master, &idattr, 1)) != CKR_OK) {
		r = cer_fail(&c, src->label, "wrapping key ID", FN_GET_ATTR, rv);
		goto out;
	}
	rv = src->f->C_WrapKey(hs, &om, spub, master, wrapped, &wlen);
	if (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID) {
		/* SoftHSM2 does OAEP with SHA-1 only (still sound for OAEP). */
		oaep.hashAlg = CKM_SHA_1;
		oaep.mgf = CKG_MGF1_SHA1;
		wlen = sizeof(wrapped);
		rv = src->f->C_WrapKey(hs, &om, spub, master, wrapped, &wlen);
	}
	if (rv != CKR_OK) {
		r = cer_fail(&c, src->label, "wrapping for transport", FN_WRAP,
		    rv);
		goto out;
	}
	/* 3. The target's SO unwraps it as a trusted wrapping key. */
	nt = 0;
	twin[nt++] = attr(CKA_CLASS, &sec_cls, sizeof(sec_cls));
	twin[nt++] = attr(CKA_KEY_TYPE, &aes, sizeof(aes));
	twin[nt++] = attr(CKA_TOKEN, &yes, sizeof(yes));
	twin[nt++] = attr(CKA_PRIVATE, &no, sizeof(no)); /* SO objects are public */
	twin[nt++] = attr(CKA_SENSITIVE, &yes, sizeof(yes));
	twin[nt++] = attr(CKA_EXTRACTABLE, &no, sizeof(no));
	twin[nt++] = attr(CKA_TRUSTED, &yes, sizeof(yes));
	twin[nt++] = attr(CKA_WRAP, &yes, sizeof(yes));
	twin[nt++] = attr(CKA_UNWRAP, &yes, sizeof(yes));
	twin[nt++] = attr(CKA_ENCRYPT, &no, sizeof(no));
	twin[nt++] = attr(CKA_DECRYPT, &no, sizeof(no));
	twin[nt++] = attr(CKA_SIGN, &no, sizeof(no));
	twin[nt++] = attr(CKA_VERIFY, &no, sizeof(no));
	twin[nt++] = attr(CKA_LABEL, label, strlen(label));
	twin[nt++] = attr(CKA_ID, id, idattr.ulValueLen);
	twin[nt++] = attr(CKA_UNWRAP_TEMPLATE, unwrap_tmpl,
	    sizeof(unwrap_tmpl));
	if ((rv = dst->f->C_UnwrapKey(hd, &om, dpriv, wrapped, wlen, twin, nt,
	    &key)) != CKR_OK) {
		r = cer_fail(&c, dst->label, "unwrapping the wrapping key",
		    FN_UNWRAP, rv);
		goto out;
	}
	r = CT_OK;
 out:
	/* A key made here and never copied is of no use: no twin exists. */
	if (r != CT_OK && *created) {
		(void)src->f->C_DestroyObject(hs, master);
		*created = false;
	}
	/* The transport keys are session objects: closing destroys them. */
	cer_close(src, hs);
	cer_close(dst, hd);
	OPENSSL_cleanse(wrapped, sizeof(wrapped));
	return r;
}
