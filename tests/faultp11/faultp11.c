/* faultp11.c: a PKCS#11 module for tests that forwards to a real module and
 * injects faults.
 *
 * FAULTP11_MODULE   the real module (default /usr/lib/softhsm/libsofthsm2.so)
 * FAULTP11_CONTROL  rules, one a line, re-read when the file changes:
 *                     C_Sign fail CKR_SESSION_HANDLE_INVALID once
 *                     C_Sign fail CKR_DEVICE_REMOVED always
 *                     C_Sign delay 3000          (milliseconds, before the call)
 *                     C_GenerateKey after 3000   (milliseconds, after the call:
 *                                                 a crash lands between the
 *                                                 token's change and its caller)
 *                   Unknown lines are ignored.  A "once" rule is spent by the
 *                   first call it fails, until the file changes.
 * FAULTP11_LOG      one line per wrapped call is appended:
 *                     "C_Sign CKR_OK" or "C_Sign CKR_DEVICE_REMOVED (injected)"
 *
 * An injected failure of a call that ends an operation (C_Sign, C_Encrypt,
 * C_Decrypt) still forwards the call, so that the real operation ends as it
 * would on a real token; other injected failures are not forwarded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define EXPORT __attribute__((visibility("default")))

/* The wrapped functions: name, ends an operation, parameters, arguments. */
#define WRAPPED(X)                                                          \
	X(C_Login, 0, (CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, \
		       CK_ULONG n), (h, u, p, n))                               \
	X(C_OpenSession, 0, (CK_SLOT_ID id, CK_FLAGS fl, void *app,          \
			     CK_NOTIFY cb, CK_SESSION_HANDLE_PTR h),            \
	  (id, fl, app, cb, h))                                              \
	X(C_SignInit, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,           \
			  CK_OBJECT_HANDLE k), (h, m, k))                       \
	X(C_Sign, 1, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG n,       \
		      CK_BYTE_PTR out, CK_ULONG_PTR outn), (h, in, n, out, outn)) \
	X(C_DecryptInit, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,        \
			     CK_OBJECT_HANDLE k), (h, m, k))                    \
	X(C_Decrypt, 1, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG n,    \
			 CK_BYTE_PTR out, CK_ULONG_PTR outn), (h, in, n, out, outn)) \
	X(C_EncryptInit, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,        \
			     CK_OBJECT_HANDLE k), (h, m, k))                    \
	X(C_Encrypt, 1, (CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG n,    \
			 CK_BYTE_PTR out, CK_ULONG_PTR outn), (h, in, n, out, outn)) \
	X(C_FindObjectsInit, 0, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t,    \
				 CK_ULONG n), (h, t, n))                        \
	X(C_GenerateRandom, 0, (CK_SESSION_HANDLE h, CK_BYTE_PTR b,          \
				CK_ULONG n), (h, b, n))                         \
	X(C_GenerateKey, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,        \
			     CK_ATTRIBUTE_PTR t, CK_ULONG n,                    \
			     CK_OBJECT_HANDLE_PTR k), (h, m, t, n, k))          \
	X(C_GenerateKeyPair, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,    \
				 CK_ATTRIBUTE_PTR pt, CK_ULONG pn,              \
				 CK_ATTRIBUTE_PTR vt, CK_ULONG vn,              \
				 CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR vk), \
	  (h, m, pt, pn, vt, vn, pk, vk))                                    \
	X(C_DestroyObject, 0, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o),     \
	  (h, o)) \
	X(C_UnwrapKey, 0, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,          \
			   CK_OBJECT_HANDLE k, CK_BYTE_PTR w, CK_ULONG wn,      \
			   CK_ATTRIBUTE_PTR t, CK_ULONG tn,                     \
			   CK_OBJECT_HANDLE_PTR o), (h, m, k, w, wn, t, tn, o)) \
	X(C_CreateObject, 0, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t,       \
			      CK_ULONG tn, CK_OBJECT_HANDLE_PTR o),             \
	  (h, t, tn, o))

#define AS_ENUM(name, ends, params, args) FN_##name,
#define AS_NAME(name, ends, params, args) #name,
enum { WRAPPED(AS_ENUM) FN_COUNT };
static const char *const fn_names[FN_COUNT] = { WRAPPED(AS_NAME) };

#define RV(X)                                                                \
	X(CKR_OK) X(CKR_CANCEL) X(CKR_HOST_MEMORY) X(CKR_GENERAL_ERROR)      \
	X(CKR_FUNCTION_FAILED) X(CKR_ARGUMENTS_BAD) X(CKR_DEVICE_ERROR)      \
	X(CKR_DEVICE_MEMORY) X(CKR_DEVICE_REMOVED)                           \
	X(CKR_ENCRYPTED_DATA_INVALID) X(CKR_KEY_HANDLE_INVALID)              \
	X(CKR_MECHANISM_INVALID) X(CKR_OBJECT_HANDLE_INVALID)                \
	X(CKR_OPERATION_ACTIVE) X(CKR_OPERATION_NOT_INITIALIZED)             \
	X(CKR_PIN_INCORRECT) X(CKR_PIN_LOCKED) X(CKR_SESSION_CLOSED)         \
	X(CKR_SESSION_COUNT) X(CKR_SESSION_HANDLE_INVALID)                   \
	X(CKR_TOKEN_NOT_PRESENT) X(CKR_TOKEN_NOT_RECOGNIZED)                 \
	X(CKR_USER_ALREADY_LOGGED_IN) X(CKR_USER_NOT_LOGGED_IN)              \
	X(CKR_BUFFER_TOO_SMALL) X(CKR_CRYPTOKI_NOT_INITIALIZED)

#define AS_RV(n) { #n, n },
static const struct { const char *name; CK_RV rv; } rv_names[] = { RV(AS_RV) };
#define N_RV (sizeof rv_names / sizeof rv_names[0])

typedef struct {
	int fn;
	int fail;    /* 1: fail with rv; 0: delay ms */
	int after;   /* a delay after the real call instead of before */
	CK_RV rv;
	long ms;
	int once, spent;
} rule;

#define MAX_RULES 64
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rule rules[MAX_RULES];
static size_t n_rules;
static struct stat seen; /* the control file as last read; st_ino 0: none */

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST wrapped;

static const char *rv_name(CK_RV rv, char *buf, size_t len)
{
	for (size_t i = 0; i < N_RV; i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, len, "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

static void parse_line(const char *line)
{
	char fn[64], kind[16], arg[64], when[16] = "always";
	int n = sscanf(line, "%63s %15s %63s %15s", fn, kind, arg, when);
	rule r = { .fn = -1 };

	if (n < 3 || n_rules == MAX_RULES)
		return;
	for (int i = 0; i < FN_COUNT; i++)
		if (strcmp(fn, fn_names[i]) == 0)
			r.fn = i;
	if (r.fn < 0)
		return;
	if (strcmp(kind, "delay") == 0 || strcmp(kind, "after") == 0) {
		r.after = strcmp(kind, "after") == 0;
		char *end;
		r.ms = strtol(arg, &end, 10);
		if (*end != '\0' || r.ms < 0)
			return;
	} else if (strcmp(kind, "fail") == 0) {
		size_t i;
		for (i = 0; i < N_RV && strcmp(arg, rv_names[i].name) != 0; i++)
			;
		if (i == N_RV || (strcmp(when, "once") && strcmp(when, "always")))
			return;
		r.fail = 1;
		r.rv = rv_names[i].rv;
		r.once = strcmp(when, "once") == 0;
	} else {
		return;
	}
	rules[n_rules++] = r;
}

/* Re-read the control file if it changed.  Called with mu held. */
static void reload(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		memset(&st, 0, sizeof st);
	if (st.st_ino == seen.st_ino && st.st_dev == seen.st_dev &&
	    st.st_size == seen.st_size &&
	    st.st_mtim.tv_sec == seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
		return;
	seen = st;
	n_rules = 0;
	FILE *f = st.st_ino ? fopen(path, "re") : NULL;
	if (f == NULL)
		return;
	char line[256];
	while (fgets(line, sizeof line, f))
		if (line[0] != '#')
			parse_line(line);
	fclose(f);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The failure to inject into this call (CKR_OK: none); sleeps for delays
 * before the call, and says how long to sleep after it. */
static CK_RV inject(int fn, long *after_ms)
{
	const char *path = getenv("FAULTP11_CONTROL");
	CK_RV rv = CKR_OK;
	long ms = 0;

	*after_ms = 0;
	if (path == NULL)
		return CKR_OK;
	pthread_mutex_lock(&mu);
	reload(path);
	for (size_t i = 0; i < n_rules; i++) {
		rule *r = &rules[i];
		if (r->fn != fn || r->spent)
			continue;
		if (!r->fail) {
			*(r->after ? after_ms : &ms) += r->ms;
		} else if (rv == CKR_OK) {
			rv = r->rv;
			r->spent = r->once;
		}
	}
	pthread_mutex_unlock(&mu);
	sleep_ms(ms);
	return rv;
}

static void log_call(int fn, CK_RV rv, int injected)
{
	const char *path = getenv("FAULTP11_LOG");
	char buf[160], num[32];
	if (path == NULL)
		return;
	int n = snprintf(buf, sizeof buf, "%s %s%s\n", fn_names[fn],
			 rv_name(rv, num, sizeof num), injected ? " (injected)" : "");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, buf, (size_t)n) != n) {
		/* nothing to do: the log is for tests */
	}
	close(fd);
}

#define AS_WRAPPER(name, ends, params, args)                                \
	static CK_RV w_##name params                                         \
	{                                                                    \
		long after;                                                  \
		CK_RV rv = inject(FN_##name, &after);                        \
		int injected = rv != CKR_OK;                                 \
		if (!injected)                                               \
			rv = real->name args;                                \
		else if (ends)                                               \
			(void)real->name args; /* end the real operation */  \
		log_call(FN_##name, rv, injected);                           \
		sleep_ms(after);                                             \
		return rv;                                                   \
	}
WRAPPED(AS_WRAPPER)

#define AS_ASSIGN(name, ends, params, args) wrapped.name = w_##name;

static CK_RV load_rv = CKR_GENERAL_ERROR;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const char *path = getenv("FAULTP11_MODULE");
	if (path == NULL || *path == '\0')
		path = "/usr/lib/softhsm/libsofthsm2.so";
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fprintf(stderr, "faultp11: %s\n", dlerror());
		return;
	}
	CK_C_GetFunctionList get;
	*(void **)&get = dlsym(lib, "C_GetFunctionList");
	if (get == NULL || (load_rv = get(&real)) != CKR_OK)
		return;
	wrapped = *real;
	WRAPPED(AS_ASSIGN)
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&load_once, load);
	if (load_rv != CKR_OK)
		return load_rv;
	*list = &wrapped;
	return CKR_OK;
}
