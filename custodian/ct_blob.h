/* ct_blob.h: the wrapped-blob format (docs/protocol.md, "Wrapped blobs").
 *
 *   "CTB1"  magic
 *   u8      alg: 1 AES-256-GCM on the token,
 *               2 RSA-OAEP-SHA256 + AES-256-GCM, 3 RSA-OAEP-SHA1 + AES-256-GCM
 *   u8      n, then n bytes of key name (1..64)
 *   u32     key version (>= 1)
 *   -- the bytes so far are the header --
 *   alg 2,3 only: u16 m, then m bytes: RSA-OAEP encryption of a fresh
 *           256-bit content key
 *   12      GCM IV
 *   u16 c, then c bytes: GCM ciphertext || 16-byte tag
 *
 * All integers big-endian.  The GCM additional data is header || context,
 * so a blob opens only under its own key name, version and algorithm and
 * with the context it was wrapped with.  For RSA keys the token decrypts the
 * content key with OAEP and the GCM step runs in this process: the content
 * key is no more secret than the data key it protects, which the caller
 * receives anyway.
 */
#ifndef CT_BLOB_H
#define CT_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "custodian/ct_err.h"

#define CT_BLOB_NAME_MAX 64
#define CT_BLOB_PLAIN_MAX 4096 /* largest secret wrap accepts */
#define CT_BLOB_EK_MAX 512     /* RSA up to 4096 bits */
#define CT_BLOB_IV_LEN 12
#define CT_BLOB_TAG_LEN 16
#define CT_BLOB_HDR_MAX (4 + 1 + 1 + CT_BLOB_NAME_MAX + 4)
#define CT_BLOB_MAX (CT_BLOB_HDR_MAX + 2 + CT_BLOB_EK_MAX + CT_BLOB_IV_LEN + 2 + \
		     CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN)

typedef enum {
	CT_BLOB_AES_GCM = 1,
	CT_BLOB_RSA_OAEP_SHA256 = 2,
	CT_BLOB_RSA_OAEP_SHA1 = 3,
} ct_blob_alg;

/* A parsed blob: every pointer points into the buffer it was parsed from. */
typedef struct {
	ct_blob_alg alg;
	char name[CT_BLOB_NAME_MAX + 1];
	uint32_t version;
	const uint8_t *hdr; /* header bytes, for the additional data */
	size_t hdr_len;
	const uint8_t *ek; /* RSA-encrypted content key, or NULL */
	size_t ek_len;
	const uint8_t *iv; /* CT_BLOB_IV_LEN bytes */
	const uint8_t *ct; /* ciphertext || tag */
	size_t ct_len;
} ct_blob;

/* Parse and check a blob; CT_ERR_BAD_BLOB on any defect.  The whole buffer
 * must be consumed. */
ct_err ct_blob_parse(const uint8_t *buf, size_t len, ct_blob *out) CT_WUR;

/* Write the header for (alg, name, version) into hdr (CT_BLOB_HDR_MAX). */
ct_err ct_blob_header(ct_blob_alg alg, const char *name, uint32_t version,
		      uint8_t *hdr, size_t *hdr_len) CT_WUR;

/* Assemble a blob from its parts; *out is malloc'd, caller frees. */
ct_err ct_blob_build(const uint8_t *hdr, size_t hdr_len, const uint8_t *ek,
		     size_t ek_len, const uint8_t iv[CT_BLOB_IV_LEN],
		     const uint8_t *ct, size_t ct_len, uint8_t **out,
		     size_t *out_len) CT_WUR;

/* header || context into a malloc'd buffer: the GCM additional data. */
ct_err ct_blob_aad(const uint8_t *hdr, size_t hdr_len, const uint8_t *ctx,
		   size_t ctx_len, uint8_t **out, size_t *out_len) CT_WUR;

#endif
