/* fuzz_blob.c: the wrapped-blob parser and the base64 decoder in front of
 * it (docs/protocol.md, "Wrapped blobs").
 *
 * The input is parsed twice: as blob bytes, and as the base64 text of a
 * blob, decoded the way a request's "blob" field is and then parsed.  A
 * blob that parses must point only inside its buffer, consume all of it,
 * and be rebuilt byte for byte by ct_blob_header + ct_blob_build; its
 * additional data (header || context) is computed with the input as the
 * context.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "custodian/ct_blob.h"
#include "custodian/ct_util.h"



static int
inside(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void
parse_and_check(const uint8_t *buf, size_t len, const uint8_t *ctx,
		size_t ctx_len)
{
	uint8_t hdr[CT_BLOB_HDR_MAX], *rebuilt, *aad;
	size_t hdr_len, rebuilt_len, aad_len;
	ct_blob b;

	if (ct_blob_parse(buf, len, &b) != CT_OK)
		return;
	CHECK(len <= CT_BLOB_MAX);
	CHECK(b.alg >= CT_BLOB_AES_GCM && b.alg <= CT_BLOB_RSA_OAEP_SHA1);
	CHECK(ct_valid_name(b.name, CT_BLOB_NAME_MAX));
	CHECK(b.version >= 1);
	CHECK(b.hdr == buf && b.hdr_len <= CT_BLOB_HDR_MAX);
	CHECK(b.hdr_len == 4 + 1 + 1 + strlen(b.name) + 4);
	CHECK((b.ek != NULL) == (b.alg != CT_BLOB_AES_GCM));
	if (b.ek != NULL)
		CHECK(b.ek_len >= 1 && b.ek_len <= CT_BLOB_EK_MAX &&
		      inside(buf, len, b.ek, b.ek_len));
	CHECK(inside(buf, len, b.iv, CT_BLOB_IV_LEN));
	CHECK(b.ct_len >= CT_BLOB_TAG_LEN &&
	      b.ct_len <= CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN);
	CHECK(inside(buf, len, b.ct, b.ct_len));
	CHECK(b.ct + b.ct_len == buf + len); /* the whole buffer */

	/* What wrap would write for these parts is this very blob. */
	CHECK(ct_blob_header(b.alg, b.name, b.version, hdr, &hdr_len) == CT_OK);
	CHECK(hdr_len == b.hdr_len && memcmp(hdr, b.hdr, hdr_len) == 0);
	CHECK(ct_blob_build(hdr, hdr_len, b.ek, b.ek_len, b.iv, b.ct, b.ct_len,
			    &rebuilt, &rebuilt_len) == CT_OK);
	CHECK(rebuilt_len == len && memcmp(rebuilt, buf, len) == 0);
	free(rebuilt);

	CHECK(ct_blob_aad(b.hdr, b.hdr_len, ctx, ctx_len, &aad, &aad_len) ==
	      CT_OK);
	CHECK(aad_len == b.hdr_len + ctx_len);
	CHECK(memcmp(aad, b.hdr, b.hdr_len) == 0);
	CHECK(ctx_len == 0 || memcmp(aad + b.hdr_len, ctx, ctx_len) == 0);
	free(aad);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *bin;
	char *text;
	size_t bin_len, i;
	ct_err r;

	parse_and_check(data, size, data, size);
	/* No context: the common case. */
	parse_and_check(data, size, NULL, 0);

	r = ct_b64_decode((const char *)data, size, CT_BLOB_MAX, &bin,
			  &bin_len);
	if (r != CT_OK) {
		CHECK(bin == NULL && bin_len == 0);
		CHECK(r == CT_ERR_BAD_REQUEST || r == CT_ERR_TOO_LARGE);
		return 0;
	}
	CHECK(bin != NULL && bin_len <= CT_BLOB_MAX);
	/* Strict: only the alphabet, padding at the end, length 4k. */
	CHECK(size % 4 == 0 && bin_len == size / 4 * 3 -
	      (size > 0 && data[size - 1] == '=') -
	      (size > 1 && data[size - 2] == '='));
	for (i = 0; i < size; i++)
		CHECK(data[i] != '\n' && data[i] != ' ' && data[i] != '\0');
	/* Encoding the bytes again gives text of the same length. */
	CHECK(ct_b64_encode(bin, bin_len, &text) == CT_OK);
	CHECK(strlen(text) == size);
	free(text);
	parse_and_check(bin, bin_len, NULL, 0);
	ct_free_secret(bin, bin_len);
	return 0;
}
