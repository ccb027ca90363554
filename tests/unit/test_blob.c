/* test_blob.c: the wrapped-blob format and strict base64. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "custodian/ct_blob.h"
#include "custodian/ct_util.h"

static uint8_t iv[CT_BLOB_IV_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static uint8_t ct[40];

static void
make(ct_blob_alg alg, const char *name, uint32_t v, uint8_t **out, size_t *len)
{
	uint8_t hdr[CT_BLOB_HDR_MAX], ek[384];
	size_t hl;

	memset(ek, 0xee, sizeof(ek));
	memset(ct, 0xcc, sizeof(ct));
	assert_int_equal(ct_blob_header(alg, name, v, hdr, &hl), CT_OK);
	assert_int_equal(ct_blob_build(hdr, hl, alg == CT_BLOB_AES_GCM ? NULL : ek,
	    sizeof(ek), iv, ct, sizeof(ct), out, len), CT_OK);
}

static void
test_round_trip(void **state)
{
	uint8_t *buf;
	size_t len;
	ct_blob b;

	make(CT_BLOB_AES_GCM, "payments", 7, &buf, &len);
	assert_int_equal(len, 4 + 1 + 1 + 8 + 4 + 12 + 2 + sizeof(ct));
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_OK);
	assert_int_equal(b.alg, CT_BLOB_AES_GCM);
	assert_string_equal(b.name, "payments");
	assert_int_equal(b.version, 7);
	assert_int_equal(b.hdr_len, 18);
	assert_ptr_equal(b.hdr, buf);
	assert_null(b.ek);
	assert_memory_equal(b.iv, iv, sizeof(iv));
	assert_int_equal(b.ct_len, sizeof(ct));
	free(buf);

	make(CT_BLOB_RSA_OAEP_SHA1, "k", 4000000000u, &buf, &len);
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_OK);
	assert_int_equal(b.alg, CT_BLOB_RSA_OAEP_SHA1);
	assert_int_equal(b.version, 4000000000u);
	assert_int_equal(b.ek_len, 384);
	assert_int_equal(b.ek[0], 0xee);
	free(buf);
}

/* Every truncation and every extension of a valid blob is refused. */
static void
test_truncation_and_trailing(void **state)
{
	uint8_t *buf, *big;
	size_t len, i;
	ct_blob b;
	int a;

	for (a = CT_BLOB_AES_GCM; a <= CT_BLOB_RSA_OAEP_SHA1; a++) {
		make((ct_blob_alg)a, "key-1", 1, &buf, &len);
		for (i = 0; i < len; i++)
			assert_int_equal(ct_blob_parse(buf, i, &b), CT_ERR_BAD_BLOB);
		big = malloc(len + 1);
		memcpy(big, buf, len);
		big[len] = 0;
		assert_int_equal(ct_blob_parse(big, len + 1, &b), CT_ERR_BAD_BLOB);
		free(big);
		free(buf);
	}
}

static void
test_hostile_fields(void **state)
{
	uint8_t *buf;
	size_t len;
	ct_blob b;

	make(CT_BLOB_AES_GCM, "payments", 7, &buf, &len);
	buf[0] = 'X'; /* magic */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[0] = 'C';
	buf[4] = 9; /* algorithm */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[4] = 0;
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[4] = CT_BLOB_AES_GCM;
	buf[6] = '/'; /* a name character that labels must not contain */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[6] = 'p';
	buf[7] = '\0'; /* a NUL inside the name (found by fuzz_blob) */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[7] = 'a';
	buf[5] = 200; /* name length beyond the cap and the buffer */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[5] = 0;
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[5] = 8;
	memset(buf + 14, 0, 4); /* version 0 */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[17] = 1;
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_OK);
	buf[30] = 0xff; /* ciphertext length larger than what follows */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	buf[30] = 0;
	buf[31] = 15; /* shorter than a tag: rest becomes trailing junk too */
	assert_int_equal(ct_blob_parse(buf, len, &b), CT_ERR_BAD_BLOB);
	free(buf);
	assert_int_equal(ct_blob_parse(NULL, 0, &b), CT_ERR_BAD_BLOB);
}

static void
test_aad(void **state)
{
	uint8_t hdr[3] = { 1, 2, 3 }, *aad;
	size_t n;

	assert_int_equal(ct_blob_aad(hdr, 3, (const uint8_t *)"ctx", 3, &aad, &n),
	    CT_OK);
	assert_int_equal(n, 6);
	assert_memory_equal(aad, "\1\2\3ctx", 6);
	free(aad);
	assert_int_equal(ct_blob_aad(hdr, 3, NULL, 0, &aad, &n), CT_OK);
	assert_int_equal(n, 3);
	free(aad);
}

static void
test_base64_strict(void **state)
{
	static const struct {
		const char *in;
		ct_err r;
		const char *out;
	} cases[] = {
		{ "", CT_OK, "" },
		{ "YQ==", CT_OK, "a" },
		{ "YWI=", CT_OK, "ab" },
		{ "YWJj", CT_OK, "abc" },
		{ "YQ=", CT_ERR_BAD_REQUEST, NULL },
		{ "YQ", CT_ERR_BAD_REQUEST, NULL },
		{ "Y===", CT_ERR_BAD_REQUEST, NULL },
		{ "====", CT_ERR_BAD_REQUEST, NULL },
		{ "Y=Jj", CT_ERR_BAD_REQUEST, NULL },
		{ "YQ=j", CT_ERR_BAD_REQUEST, NULL },
		{ "YW\nJj", CT_ERR_BAD_REQUEST, NULL },
		{ "YW-j", CT_ERR_BAD_REQUEST, NULL },
		{ "YWJjZA==", CT_ERR_TOO_LARGE, NULL }, /* 4 bytes, max 3 */
		{ "QR==", CT_ERR_BAD_REQUEST, NULL },	/* non-zero pad bits */
		{ "YWJ=", CT_ERR_BAD_REQUEST, NULL },
		{ "QQ==", CT_OK, "A" },
	};
	uint8_t *out;
	size_t i, n;
	char *enc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ct_err r = ct_b64_decode(cases[i].in, strlen(cases[i].in), 3, &out, &n);
		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": %s", i, cases[i].in, ct_err_code(r));
		if (r == CT_OK) {
			assert_int_equal(n, strlen(cases[i].out));
			assert_memory_equal(out, cases[i].out, n);
			assert_int_equal(ct_b64_encode(out, n, &enc), CT_OK);
			assert_string_equal(enc, cases[i].in);
			free(enc);
			free(out);
		} else
			assert_null(out);
	}
}

static void
test_valid_name(void **state)
{
	assert_true(ct_valid_name("a", 64));
	assert_true(ct_valid_name("Key_1.prod-2", 64));
	assert_false(ct_valid_name("", 64));
	assert_false(ct_valid_name("a/b", 64));
	assert_false(ct_valid_name("a b", 64));
	assert_false(ct_valid_name("abcd", 3));
	assert_true(ct_valid_name("abc", 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncation_and_trailing),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_aad),
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_valid_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
