/* ct_blob.c: parse and build wrapped blobs.  Input is hostile: every read
 * checks the remaining length first, written so it cannot overflow. */
#include "custodian/ct_blob.h"

#include <stdlib.h>
#include <string.h>

#include "custodian/ct_util.h"

static const uint8_t magic[4] = { 'C', 'T', 'B', '1' };

/* A cursor over a hostile buffer: it only advances when a read fits. */
typedef struct {
	const uint8_t *p;
	size_t left;
	int bad;
} rd;

static const uint8_t *
rd_bytes(rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t
rd_be(rd *r, size_t n)
{
	const uint8_t *p = rd_bytes(r, n);
	uint32_t v = 0;
	size_t i;

	for (i = 0; p != NULL && i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

ct_err
ct_blob_parse(const uint8_t *buf, size_t len, ct_blob *out)
{
	rd r = { buf, len, 0 };
	const uint8_t *m, *name;
	size_t i, name_len;

	memset(out, 0, sizeof(*out));
	if (len > CT_BLOB_MAX)
		return CT_ERR_BAD_BLOB;
	m = rd_bytes(&r, sizeof(magic));
	if (m == NULL || memcmp(m, magic, sizeof(magic)) != 0)
		return CT_ERR_BAD_BLOB;
	out->alg = (ct_blob_alg)rd_be(&r, 1);
	if (out->alg < CT_BLOB_AES_GCM || out->alg > CT_BLOB_RSA_OAEP_SHA1)
		return CT_ERR_BAD_BLOB;
	name_len = rd_be(&r, 1);
	if (name_len == 0 || name_len > CT_BLOB_NAME_MAX ||
	    (name = rd_bytes(&r, name_len)) == NULL)
		return CT_ERR_BAD_BLOB;
	for (i = 0; i < name_len; i++)
		out->name[i] = (char)name[i];
	out->name[name_len] = '\0';
	/* A NUL inside would shorten the name the header still carries. */
	if (strlen(out->name) != name_len ||
	    !ct_valid_name(out->name, CT_BLOB_NAME_MAX))
		return CT_ERR_BAD_BLOB;
	out->version = rd_be(&r, 4);
	if (r.bad || out->version == 0)
		return CT_ERR_BAD_BLOB;
	out->hdr = buf;
	out->hdr_len = len - r.left;
	if (out->alg != CT_BLOB_AES_GCM) {
		out->ek_len = rd_be(&r, 2);
		if (out->ek_len == 0 || out->ek_len > CT_BLOB_EK_MAX)
			return CT_ERR_BAD_BLOB;
		out->ek = rd_bytes(&r, out->ek_len);
	}
	out->iv = rd_bytes(&r, CT_BLOB_IV_LEN);
	out->ct_len = rd_be(&r, 2);
	out->ct = rd_bytes(&r, out->ct_len);
	if (r.bad || r.left != 0 || out->ct_len < CT_BLOB_TAG_LEN ||
	    out->ct_len > CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN) {
		memset(out, 0, sizeof(*out));
		return CT_ERR_BAD_BLOB;
	}
	return CT_OK;
}

static uint8_t *
put_be(uint8_t *p, uint32_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

ct_err
ct_blob_header(ct_blob_alg alg, const char *name, uint32_t version,
	       uint8_t *hdr, size_t *hdr_len)
{
	size_t n = strlen(name);
	uint8_t *p = hdr;

	*hdr_len = 0;
	if (!ct_valid_name(name, CT_BLOB_NAME_MAX) || version == 0)
		return CT_ERR_INTERNAL;
	memcpy(p, magic, sizeof(magic));
	p = put_be(p + sizeof(magic), (uint32_t)alg, 1);
	p = put_be(p, (uint32_t)n, 1);
	memcpy(p, name, n);
	p = put_be(p + n, version, 4);
	*hdr_len = (size_t)(p - hdr);
	return CT_OK;
}

ct_err
ct_blob_build(const uint8_t *hdr, size_t hdr_len, const uint8_t *ek,
	      size_t ek_len, const uint8_t iv[CT_BLOB_IV_LEN], const uint8_t *ct,
	      size_t ct_len, uint8_t **out, size_t *out_len)
{
	size_t len;
	uint8_t *buf, *p;

	*out = NULL;
	*out_len = 0;
	if (hdr_len > CT_BLOB_HDR_MAX || ek_len > CT_BLOB_EK_MAX ||
	    ct_len > CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN)
		return CT_ERR_INTERNAL;
	len = hdr_len + (ek != NULL ? 2 + ek_len : 0) + CT_BLOB_IV_LEN + 2 + ct_len;
	if ((buf = malloc(len)) == NULL)
		return CT_ERR_NOMEM;
	memcpy(buf, hdr, hdr_len);
	p = buf + hdr_len;
	if (ek != NULL) {
		p = put_be(p, (uint32_t)ek_len, 2);
		memcpy(p, ek, ek_len);
		p += ek_len;
	}
	memcpy(p, iv, CT_BLOB_IV_LEN);
	p = put_be(p + CT_BLOB_IV_LEN, (uint32_t)ct_len, 2);
	memcpy(p, ct, ct_len);
	*out = buf;
	*out_len = len;
	return CT_OK;
}

ct_err
ct_blob_aad(const uint8_t *hdr, size_t hdr_len, const uint8_t *ctx,
	    size_t ctx_len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;

	*out = NULL;
	*out_len = 0;
	if ((buf = malloc(hdr_len + ctx_len + 1)) == NULL)
		return CT_ERR_NOMEM;
	memcpy(buf, hdr, hdr_len);
	if (ctx_len > 0)
		memcpy(buf + hdr_len, ctx, ctx_len);
	*out = buf;
	*out_len = hdr_len + ctx_len;
	return CT_OK;
}
