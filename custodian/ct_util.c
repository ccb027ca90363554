/* ct_util.c: base64, wiping allocation, secret files. */
#include "custodian/ct_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

ct_err
ct_b64_encode(const uint8_t *in, size_t len, char **out)
{
	char *s;

	*out = NULL;
	if (len > (1u << 30))
		return CT_ERR_TOO_LARGE;
	if ((s = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return CT_ERR_NOMEM;
	EVP_EncodeBlock((unsigned char *)s, in, (int)len);
	*out = s;
	return CT_OK;
}

/* The 6-bit value of a base64 character, or -1. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

ct_err
ct_b64_decode(const char *in, size_t inlen, size_t max, uint8_t **out,
	      size_t *outlen)
{
	size_t i, pad = 0, n;
	uint8_t *buf;
	int got;

	*out = NULL;
	*outlen = 0;
	if (inlen % 4 != 0)
		return CT_ERR_BAD_REQUEST;
	if (inlen / 4 * 3 > max + 2)
		return CT_ERR_TOO_LARGE;
	if (inlen > 0 && in[inlen - 1] == '=')
		pad = (inlen > 1 && in[inlen - 2] == '=') ? 2 : 1;
	/* EVP_DecodeBlock skips blanks and stops at junk: check every byte. */
	for (i = 0; i < inlen - pad; i++)
		if (b64_value(in[i]) < 0)
			return CT_ERR_BAD_REQUEST;
	n = inlen / 4 * 3 - pad;
	if (n > max)
		return CT_ERR_TOO_LARGE;
	/* +3: EVP_DecodeBlock writes the padding bytes too. */
	if ((buf = malloc(inlen / 4 * 3 + 1)) == NULL)
		return CT_ERR_NOMEM;
	if (inlen > 0) {
		got = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
		/* Canonical only: the bits padding leaves over must be zero
		 * ("QR==" is not another spelling of "QQ=="). */
		if (got < 0 || (size_t)got != inlen / 4 * 3 ||
		    (pad > 0 && (b64_value(in[inlen - pad - 1]) &
		    (pad == 2 ? 0x0f : 0x03)) != 0)) {
			ct_free_secret(buf, inlen / 4 * 3 + 1);
			return CT_ERR_BAD_REQUEST;
		}
	}
	*out = buf;
	*outlen = n;
	return CT_OK;
}

void
ct_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void
ct_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

/* jansson's free() gets no size: keep it in a header before the block. */
typedef union {
	size_t size;
	max_align_t align;
} json_hdr;

static void *
json_wiping_malloc(size_t n)
{
	json_hdr *h;

	if (n > SIZE_MAX - sizeof(*h) || (h = malloc(sizeof(*h) + n)) == NULL)
		return NULL;
	h->size = n;
	return h + 1;
}

static void
json_wiping_free(void *p)
{
	json_hdr *h;

	if (p == NULL)
		return;
	h = (json_hdr *)p - 1;
	ct_free_secret(h, sizeof(*h) + h->size);
}

void
ct_json_use_wiping_alloc(void)
{
	json_set_alloc_funcs(json_wiping_malloc, json_wiping_free);
}

static void
secure_heap_setup(void)
{
	if (!CRYPTO_secure_malloc_initialized())
		(void)CRYPTO_secure_malloc_init(65536, 32);
}

void
ct_secure_heap_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, secure_heap_setup);
}

static ct_err
secret_copy(const char *src, size_t len, char **out, size_t *outlen)
{
	char *s;

	ct_secure_heap_init();
	if ((s = OPENSSL_secure_malloc(len + 1)) == NULL)
		return CT_ERR_NOMEM;
	memcpy(s, src, len);
	s[len] = '\0';
	*out = s;
	*outlen = len;
	return CT_OK;
}

ct_err
ct_read_all(int fd, void *buf, size_t cap, size_t *len)
{
	ssize_t n;

	for (*len = 0; *len < cap; *len += (size_t)n) {
		if ((n = read(fd, (uint8_t *)buf + *len, cap - *len)) == -1 &&
		    errno == EINTR) {
			n = 0;
			continue;
		}
		if (n == -1)
			return CT_ERR_IO;
		if (n == 0)
			break;
	}
	return CT_OK;
}

ct_err
ct_secret_from_file(const char *path, char **out, size_t *outlen, char *err,
		    size_t errlen)
{
	char buf[CT_SECRET_FILE_MAX + 1];
	struct stat st;
	size_t len = 0;
	int fd = -1;
	ct_err r = CT_ERR_IO;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & S_IRWXO) != 0) {
		snprintf(err, errlen, "%s: readable or writable by others "
		    "(mode %03o): refused", path, st.st_mode & 0777);
		r = CT_ERR_POLICY;
		goto out;
	}
	if (ct_read_all(fd, buf, sizeof(buf), &len) != CT_OK) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (len > CT_SECRET_FILE_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", path,
		    CT_SECRET_FILE_MAX);
		r = CT_ERR_POLICY;
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	r = secret_copy(buf, len, out, outlen);
 out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd != -1)
		close(fd);
	return r;
}

ct_err
ct_sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	int fd = -1;
	ct_err r = CT_ERR_IO;

	if (slash == NULL)
		dir = strdup(".");
	else
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (dir == NULL) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) != 0)
		goto out;
	r = CT_OK;
 out:
	if (fd != -1)
		close(fd);
	free(dir);
	return r;
}

ct_err
ct_write_file_atomic(const char *path, const uint8_t *buf, size_t len,
		     mode_t mode, char *err, size_t errlen)
{
	char *tmp = NULL;
	size_t off = 0;
	ssize_t n;
	int fd = -1;
	ct_err r = CT_ERR_NOMEM;

	if (asprintf(&tmp, "%s.XXXXXX", path) == -1) {
		tmp = NULL;
		goto out;
	}
	r = CT_ERR_IO;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(fd, mode) == -1)
		goto fail;
	while (off < len) {
		if ((n = write(fd, buf + off, len - off)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	tmp = NULL;
	if ((r = ct_sync_parent_dir(path)) != CT_OK)
		snprintf(err, errlen, "%s: syncing its directory: %s", path,
		    strerror(errno));
	goto out;
 fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
 out:
	if (fd != -1)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	return r;
}

ct_err
ct_secret_from_tty(const char *prompt, char **out, size_t *outlen, char *err,
		   size_t errlen)
{
	char buf[CT_SECRET_FILE_MAX + 2];
	struct termios old, quiet;
	size_t len;
	FILE *tty;
	bool restore = false;
	ct_err r = CT_ERR_IO;

	*out = NULL;
	*outlen = 0;
	if ((tty = fopen("/dev/tty", "r+e")) == NULL) {
		snprintf(err, errlen, "no terminal to ask for %s: %s", prompt,
		    strerror(errno));
		return CT_ERR_IO;
	}
	/* An unbuffered stream keeps the secret out of stdio's buffer. */
	setvbuf(tty, NULL, _IONBF, 0);
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
	}
	if (!restore) {
		snprintf(err, errlen, "cannot turn off echo on the terminal");
		goto out;
	}
	fprintf(tty, "%s: ", prompt);
	if (fgets(buf, sizeof(buf), tty) == NULL) {
		snprintf(err, errlen, "%s: no input", prompt);
		goto out;
	}
	fputc('\n', tty);
	len = strcspn(buf, "\r\n");
	if (len > CT_SECRET_FILE_MAX || len == 0) {
		snprintf(err, errlen, "%s: empty or longer than %d bytes",
		    prompt, CT_SECRET_FILE_MAX);
		r = CT_ERR_POLICY;
		goto out;
	}
	r = secret_copy(buf, len, out, outlen);
 out:
	if (restore)
		(void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
	OPENSSL_cleanse(buf, sizeof(buf));
	fclose(tty);
	return r;
}

ct_err
ct_secret_from_env(const char *name, char **out, size_t *outlen, char *err,
		   size_t errlen)
{
	char *v;
	size_t len;
	ct_err r;

	*out = NULL;
	*outlen = 0;
	if ((v = getenv(name)) == NULL) {
		snprintf(err, errlen, "environment variable %s is not set", name);
		return CT_ERR_POLICY;
	}
	if ((len = strlen(v)) > CT_SECRET_FILE_MAX) {
		snprintf(err, errlen, "environment variable %s is too long", name);
		return CT_ERR_POLICY;
	}
	r = secret_copy(v, len, out, outlen);
	/* The environment block stays mapped for the process's life. */
	OPENSSL_cleanse(v, len);
	unsetenv(name);
	return r;
}

ct_err
ct_file_sha256(const char *path, uint8_t out[32], char *err, size_t errlen)
{
	EVP_MD_CTX *md = NULL;
	uint8_t buf[16384];
	struct stat st;
	ssize_t n;
	int fd;
	ct_err r = CT_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		r = CT_ERR_NOMEM;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(md, out, NULL) != 1)
		goto out;
	r = CT_OK;
 out:
	EVP_MD_CTX_free(md);
	if (fd != -1)
		close(fd);
	return r;
}

bool
ct_valid_name(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return false;
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' ||
		    s[i] == '-'))
			return false;
	}
	return i > 0;
}

char *
ct_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

ct_err
ct_no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return CT_ERR_INTERNAL;
	return CT_OK;
}

void
ct_vmsg(const char *prog, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}
