/* test_keys.c: key-version labels ("<name>/v<version>") read from tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "custodian/ct_keys.h"

static void
test_label_round_trip(void **state)
{
	char buf[P11_LABEL_MAX];

	assert_int_equal(ct_key_label("payments", 7, buf, sizeof(buf)), CT_OK);
	assert_string_equal(buf, "payments/v7");
	assert_int_equal(ct_key_label_version("payments", buf), 7);
	assert_int_equal(ct_key_label("k", UINT32_MAX, buf, sizeof(buf)), CT_OK);
	assert_int_equal(ct_key_label_version("k", buf), UINT32_MAX);
	/* A buffer too small is an error, never a truncated label. */
	assert_int_equal(ct_key_label("payments", 7, buf, 8), CT_ERR_INTERNAL);
}

/* Token objects that are not versions of the key are ignored (0). */
static void
test_foreign_labels(void **state)
{
	static const char *const not_versions[] = {
		"payments", "payments/", "payments/v", "payments/v0",
		"payments/v01", "payments/v1x", "payments/v-1", "payments/v+1",
		"payments/v 1", "payments/V1", "payments/x1", "paymentsx/v1",
		"payment/v1", "payments/v4294967296",
		"payments/v99999999999999999999", "payments/v1/v2", "",
	};
	size_t i;

	for (i = 0; i < sizeof(not_versions) / sizeof(not_versions[0]); i++)
		if (ct_key_label_version("payments", not_versions[i]) != 0)
			fail_msg("\"%s\" was taken for a version", not_versions[i]);
	assert_int_equal(ct_key_label_version("payments", "payments/v10"), 10);
	assert_int_equal(ct_key_label_version("payments", "payments/v4294967295"),
	    UINT32_MAX);
}

static void
test_version_lookup(void **state)
{
	ct_keyver vers[] = { { 1, CT_KV_OK, 11, NULL }, { 2, CT_KV_OK, 22, NULL },
			     { 5, CT_KV_OK, 55, NULL } };
	pol_key pk = { .name = "k", .type = POL_KEY_AES_256 };
	ct_key k = { &pk, vers, 3 }, none = { &pk, NULL, 0 };

	assert_int_equal(ct_key_version(&k, 0)->version, 5); /* current */
	assert_int_equal(ct_key_version(&k, 2)->handle, 22);
	assert_null(ct_key_version(&k, 3));
	assert_null(ct_key_version(&none, 0));
	/* Current is the highest usable version; others are found by number. */
	vers[2].use = CT_KV_REVOKED;
	assert_int_equal(ct_key_version(&k, 0)->version, 2);
	assert_int_equal(ct_key_version(&k, 5)->use, CT_KV_REVOKED);
	vers[1].use = CT_KV_UNKNOWN;
	assert_int_equal(ct_key_version(&k, 0)->version, 1);
	vers[0].use = CT_KV_REVOKED;
	assert_null(ct_key_version(&k, 0));
	assert_null(ct_key_version(&none, 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_round_trip),
		cmocka_unit_test(test_foreign_labels),
		cmocka_unit_test(test_version_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
