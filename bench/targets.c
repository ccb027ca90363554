/* targets.c: the ways bench issues one request (see bench.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bench/bench.h"

#define REPLY_MAX 8192		/* custodiand's largest reply here: an RSA signature */
#define AGENT_REPLY_MAX 16384
#define AGENT_IDS_MAX (256 * 1024)

/* The agent protocol (draft-miller-ssh-agent). */
#define SSH_AGENT_FAILURE 5
#define SSH2_AGENTC_REQUEST_IDENTITIES 11
#define SSH2_AGENT_IDENTITIES_ANSWER 12
#define SSH2_AGENTC_SIGN_REQUEST 13
#define SSH2_AGENT_SIGN_RESPONSE 14

ct_err
unix_connect(const char *path, int *fd, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	*fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return CT_ERR_BAD_REQUEST;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		if (*fd != -1)
			close(*fd);
		*fd = -1;
		return CT_ERR_IO;
	}
	return CT_OK;
}

ct_err
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		/* MSG_NOSIGNAL: a daemon that died is an error, not SIGPIPE. */
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return CT_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return CT_OK;
}

ct_err
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, p, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return CT_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return CT_OK;
}

ct_err
read_line(int fd, char *buf, size_t size, size_t *len)
{
	size_t got = 0;
	ssize_t n;

	/* One request is in flight, so the reply is all there is to read. */
	while (got == 0 || buf[got - 1] != '\n') {
		if (got + 1 >= size)
			return CT_ERR_TOO_LARGE;
		if ((n = read(fd, buf + got, size - 1 - got)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			return CT_ERR_IO;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	return CT_OK;
}

/* custodiand */

ct_err
custodian_call(int fd, const char *line, size_t len, json_t **result,
	       char *err, size_t errlen)
{
	char buf[REPLY_MAX];
	size_t got;
	json_t *reply = NULL, *e;
	json_error_t jerr;
	ct_err r;

	*result = NULL;
	if ((r = write_all(fd, line, len)) != CT_OK ||
	    (r = read_line(fd, buf, sizeof(buf), &got)) != CT_OK) {
		snprintf(err, errlen, "custodiand: no reply: %s", ct_strerror(r));
		return r;
	}
	r = CT_ERR_BAD_REQUEST;
	if ((reply = json_loadb(buf, got, 0, &jerr)) == NULL)
		snprintf(err, errlen, "custodiand: malformed reply: %s", jerr.text);
	else if (!json_is_true(json_object_get(reply, "ok"))) {
		e = json_object_get(reply, "error");
		snprintf(err, errlen, "custodiand: %s: %s",
		    json_string_value(json_object_get(e, "code")) ?: "?",
		    json_string_value(json_object_get(e, "message")) ?: "");
	} else if ((*result = json_object_get(reply, "result")) == NULL)
		snprintf(err, errlen, "custodiand: reply without a result");
	else {
		json_incref(*result);
		r = CT_OK;
	}
	json_decref(reply);
	return r;
}

typedef struct {
	int fd;
	const ct_target_arg *a;
	char buf[REPLY_MAX];
} ct_state;

static void
ct_close(void *p)
{
	ct_state *s = p;

	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	OPENSSL_cleanse(s->buf, sizeof(s->buf)); /* unwrapped keys */
	free(s);
}

static ct_err
ct_open(const void *arg, void **state, char *err, size_t errlen)
{
	ct_state *s;
	json_t *res = NULL;
	ct_err r;

	*state = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CT_ERR_NOMEM;
	s->a = arg;
	/* The first reply is parsed in full; issue() only looks for "ok". */
	if ((r = unix_connect(s->a->sock, &s->fd, err, errlen)) != CT_OK ||
	    (r = custodian_call(s->fd, s->a->line, s->a->len, &res, err,
	    errlen)) != CT_OK) {
		ct_close(s);
		return r;
	}
	json_decref(res);
	*state = s;
	return CT_OK;
}

static ct_err
ct_issue(void *p, char *err, size_t errlen)
{
	ct_state *s = p;
	size_t len;
	ct_err r;

	if ((r = write_all(s->fd, s->a->line, s->a->len)) != CT_OK ||
	    (r = read_line(s->fd, s->buf, sizeof(s->buf), &len)) != CT_OK) {
		snprintf(err, errlen, "custodiand: no reply: %s", ct_strerror(r));
		return r;
	}
	/* Base64 and key names hold no quotes, so this is the "ok" member. */
	if (memmem(s->buf, len, "\"ok\":true", 9) == NULL) {
		snprintf(err, errlen, "custodiand: error reply: %.*s",
		    (int)(len - 1), s->buf);
		return CT_ERR_BAD_REQUEST;
	}
	return CT_OK;
}

const bench_ops bench_custodian = { ct_open, ct_issue, ct_close };

/* The token through p11.h */

typedef struct {
	p11_session *s;
	CK_OBJECT_HANDLE h;
	const direct_arg *a;
	uint8_t out[CT_BLOB_EK_MAX + CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN];
	size_t outlen;
} direct_state;

/* AES-256-GCM open of the 32-byte data key, in process, as the daemon does
 * for RSA blobs after the token has decrypted the content key. */
static ct_err
gcm_open(const uint8_t *key, const ct_blob *b, const uint8_t *aad,
	 size_t aad_len, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *c;
	size_t body = b->ct_len - CT_BLOB_TAG_LEN;
	int n;
	ct_err r = CT_ERR_DECRYPT;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return CT_ERR_NOMEM;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, b->iv) == 1 &&
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
	    EVP_DecryptUpdate(c, out, &n, b->ct, (int)body) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CT_BLOB_TAG_LEN,
	    (void *)(b->ct + body)) == 1 &&
	    EVP_DecryptFinal_ex(c, out + n, &n) == 1) {
		*outlen = body;
		r = CT_OK;
	}
	EVP_CIPHER_CTX_free(c);
	return r;
}

static ct_err
direct_issue(void *p, char *err, size_t errlen)
{
	direct_state *s = p;
	const direct_arg *a = s->a;
	uint8_t cek[CT_BLOB_EK_MAX];
	size_t cek_len = sizeof(cek);
	ct_err r;

	s->outlen = sizeof(s->out);
	switch (a->kind) {
	case DIRECT_SIGN:
		r = p11_sign(s->s, s->h, a->mech, a->digest, 32, s->out,
		    &s->outlen);
		break;
	case DIRECT_AES_UNWRAP:
		r = p11_aes_gcm_decrypt(s->s, s->h, a->blob.iv, a->aad,
		    a->aad_len, a->blob.ct, a->blob.ct_len, s->out, &s->outlen);
		break;
	case DIRECT_RSA_UNWRAP:
		r = p11_rsa_oaep_decrypt(s->s, s->h, P11_HASH_SHA1, a->blob.ek,
		    a->blob.ek_len, cek, &cek_len);
		if (r == CT_OK && cek_len != 32)
			r = CT_ERR_DECRYPT;
		if (r == CT_OK)
			r = gcm_open(cek, &a->blob, a->aad, a->aad_len, s->out,
			    &s->outlen);
		OPENSSL_cleanse(cek, sizeof(cek));
		break;
	default:
		r = CT_ERR_INTERNAL;
	}
	if (r != CT_OK)
		snprintf(err, errlen, "token: %s%s%s", ct_strerror(r),
		    *p11_session_last_error(s->s) ? ": " : "",
		    p11_session_last_error(s->s));
	return r;
}

static void
direct_close(void *p)
{
	direct_state *s = p;

	if (s == NULL)
		return;
	p11_session_free(s->s);
	OPENSSL_cleanse(s->out, sizeof(s->out));
	free(s);
}

static ct_err
direct_open(const void *arg, void **state, char *err, size_t errlen)
{
	direct_state *s;
	const direct_arg *a = arg;
	ct_err r;

	*state = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CT_ERR_NOMEM;
	s->a = a;
	if ((r = p11_session_open(a->tok, &s->s)) != CT_OK) {
		snprintf(err, errlen, "token: session: %s", ct_strerror(r));
		goto out;
	}
	if ((r = p11_find(s->s, a->kind == DIRECT_AES_UNWRAP ? P11_OBJ_SECRET :
	    P11_OBJ_PRIVATE, a->label, &s->h)) != CT_OK) {
		snprintf(err, errlen, "token: key %s: %s", a->label,
		    ct_strerror(r));
		goto out;
	}
	if ((r = direct_issue(s, err, errlen)) != CT_OK)
		goto out;
	if (a->want != NULL && (s->outlen != a->want_len ||
	    CRYPTO_memcmp(s->out, a->want, a->want_len) != 0)) {
		snprintf(err, errlen, "token: %s does not unwrap to the data key",
		    a->label);
		r = CT_ERR_DECRYPT;
	}
 out:
	if (r != CT_OK)
		direct_close(s);
	else
		*state = s;
	return r;
}

const bench_ops bench_direct = { direct_open, direct_issue, direct_close };

/* ssh-agent */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* An SSH string at *p (bounded by end): its bytes and length. */
static int
get_string(const uint8_t **p, const uint8_t *end, const uint8_t **s,
	   size_t *len)
{
	if (end - *p < 4 || (size_t)(end - *p - 4) < get_u32(*p))
		return -1;
	*len = get_u32(*p);
	*s = *p + 4;
	*p += 4 + *len;
	return 0;
}

/* One message out, one message in: buf gets type || body. */
static ct_err
agent_call(int fd, const uint8_t *msg, size_t len, uint8_t *buf, size_t size,
	   size_t *got)
{
	uint8_t hdr[4];
	ct_err r;

	if ((r = write_all(fd, msg, len)) != CT_OK ||
	    (r = read_full(fd, hdr, sizeof(hdr))) != CT_OK)
		return r;
	if ((*got = get_u32(hdr)) == 0 || *got > size)
		return CT_ERR_TOO_LARGE;
	return read_full(fd, buf, *got);
}

ct_err
agent_sign_request(const char *sock, const char *key_type, const uint8_t *data,
		   size_t dlen, uint8_t **msg, size_t *len, char *err,
		   size_t errlen)
{
	static const uint8_t ask[] = { 0, 0, 0, 1, SSH2_AGENTC_REQUEST_IDENTITIES };
	uint8_t *buf = NULL, *m;
	const uint8_t *p, *end, *blob = NULL, *kb, *kt, *comment;
	size_t got = 0, blen = 0, kblen, ktlen, clen;
	uint32_t n;
	int fd = -1;
	ct_err r;

	*msg = NULL;
	if ((r = unix_connect(sock, &fd, err, errlen)) != CT_OK)
		return r;
	r = CT_ERR_NOMEM;
	if ((buf = malloc(AGENT_IDS_MAX)) == NULL)
		goto out;
	if ((r = agent_call(fd, ask, sizeof(ask), buf, AGENT_IDS_MAX, &got)) != CT_OK) {
		snprintf(err, errlen, "ssh-agent: identities: %s", ct_strerror(r));
		goto out;
	}
	r = CT_ERR_BAD_REQUEST;
	if (got < 5 || buf[0] != SSH2_AGENT_IDENTITIES_ANSWER) {
		snprintf(err, errlen, "ssh-agent: unexpected answer %u", buf[0]);
		goto out;
	}
	p = buf + 5;
	end = buf + got;
	for (n = get_u32(buf + 1); n > 0 && blob == NULL; n--) {
		if (get_string(&p, end, &kb, &kblen) != 0 ||
		    get_string(&p, end, &comment, &clen) != 0) {
			snprintf(err, errlen, "ssh-agent: malformed identities");
			goto out;
		}
		/* A key blob starts with its type name. */
		p = kb;
		if (get_string(&p, kb + kblen, &kt, &ktlen) == 0 &&
		    ktlen == strlen(key_type) && memcmp(kt, key_type, ktlen) == 0) {
			blob = kb;
			blen = kblen;
		}
		p = comment + clen;
	}
	if (blob == NULL) {
		snprintf(err, errlen, "ssh-agent offers no %s key", key_type);
		goto out;
	}
	/* length, type, string key blob, string data, uint32 flags */
	*len = 4 + 1 + 4 + blen + 4 + dlen + 4;
	r = CT_ERR_NOMEM;
	if ((m = malloc(*len)) == NULL)
		goto out;
	put_u32(m, (uint32_t)(*len - 4));
	m[4] = SSH2_AGENTC_SIGN_REQUEST;
	put_u32(m + 5, (uint32_t)blen);
	memcpy(m + 9, blob, blen);
	put_u32(m + 9 + blen, (uint32_t)dlen);
	memcpy(m + 13 + blen, data, dlen);
	put_u32(m + 13 + blen + dlen, 0);
	*msg = m;
	r = CT_OK;
 out:
	free(buf);
	close(fd);
	return r;
}

typedef struct {
	int fd;
	const agent_arg *a;
	uint8_t buf[AGENT_REPLY_MAX];
} agent_state;

static void
agent_close(void *p)
{
	agent_state *s = p;

	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

static ct_err
agent_issue(void *p, char *err, size_t errlen)
{
	agent_state *s = p;
	size_t got;
	ct_err r;

	if ((r = agent_call(s->fd, s->a->msg, s->a->len, s->buf,
	    sizeof(s->buf), &got)) != CT_OK) {
		snprintf(err, errlen, "ssh-agent: no answer: %s", ct_strerror(r));
		return r;
	}
	if (s->buf[0] != SSH2_AGENT_SIGN_RESPONSE) {
		snprintf(err, errlen, "ssh-agent: sign refused (answer %u%s)",
		    s->buf[0], s->buf[0] == SSH_AGENT_FAILURE ? ", failure" : "");
		return CT_ERR_TOKEN;
	}
	return CT_OK;
}

static ct_err
agent_open(const void *arg, void **state, char *err, size_t errlen)
{
	agent_state *s;
	ct_err r;

	*state = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CT_ERR_NOMEM;
	s->a = arg;
	if ((r = unix_connect(s->a->sock, &s->fd, err, errlen)) != CT_OK ||
	    (r = agent_issue(s, err, errlen)) != CT_OK) {
		agent_close(s);
		return r;
	}
	*state = s;
	return CT_OK;
}

const bench_ops bench_agent = { agent_open, agent_issue, agent_close };
