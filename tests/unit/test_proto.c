/* test_proto.c: the request decoder and reply encoder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custodian/ct_proto.h"
#include "custodian/ct_util.h"

static ct_err
decode(const char *line, ct_request *req, char *err, size_t errlen)
{
	return ct_request_decode(line, strlen(line), req, err, errlen);
}

static void
test_sign_with_data(void **state)
{
	char err[256];
	ct_request req;

	assert_int_equal(decode("{\"v\":1,\"id\":\"r-1\",\"op\":\"sign\","
	    "\"key\":\"payments\",\"version\":3,\"data\":\"aGVsbG8=\"}", &req, err,
	    sizeof(err)), CT_OK);
	assert_int_equal(req.spec->op, CT_OP_SIGN);
	assert_string_equal(req.id, "r-1");
	assert_string_equal(req.key, "payments");
	assert_int_equal(req.version, 3);
	assert_int_equal(req.data_len, 5);
	assert_memory_equal(req.data, "hello", 5);
	assert_int_equal(req.fields, CT_F_KEY | CT_F_VERSION | CT_F_DATA);
	ct_request_clear(&req);
	assert_null(req.data);
}

static void
test_unwrap_with_context(void **state)
{
	char err[256];
	ct_request req;

	assert_int_equal(decode("{\"op\":\"unwrap\",\"v\":1,\"blob\":\"AAEC\","
	    "\"context\":\"tenant=42\"}", &req, err, sizeof(err)), CT_OK);
	assert_int_equal(req.spec->op, CT_OP_UNWRAP);
	assert_int_equal(req.blob_len, 3);
	assert_int_equal(req.context_len, 9);
	assert_string_equal((char *)req.context, "tenant=42");
	assert_string_equal(req.id, "");
	ct_request_clear(&req);
}

static void
test_empty_plaintext_is_allowed(void **state)
{
	char err[256];
	ct_request req;

	assert_int_equal(decode("{\"v\":1,\"op\":\"wrap\",\"key\":\"k\","
	    "\"plaintext\":\"\"}", &req, err, sizeof(err)), CT_OK);
	assert_non_null(req.plaintext);
	assert_int_equal(req.plaintext_len, 0);
	ct_request_clear(&req);
}

/* Each hostile request, the error it must give and a piece of the message. */
static const struct {
	const char *line;
	ct_err err;
	const char *msg;
} bad[] = {
	{ "", CT_ERR_BAD_REQUEST, "invalid JSON" },
	{ "[1,2]", CT_ERR_BAD_REQUEST, "JSON object" },
	{ "\"sign\"", CT_ERR_BAD_REQUEST, "invalid JSON" },
	{ "{\"v\":1,\"op\":\"sign\"", CT_ERR_BAD_REQUEST, "invalid JSON" },
	{ "{\"v\":1,\"op\":\"status\"} {}", CT_ERR_BAD_REQUEST, "invalid JSON" },
	{ "{\"op\":\"status\"}", CT_ERR_BAD_REQUEST, "\"v\" must be 1" },
	{ "{\"v\":2,\"op\":\"status\"}", CT_ERR_BAD_REQUEST, "\"v\" must be 1" },
	{ "{\"v\":\"1\",\"op\":\"status\"}", CT_ERR_BAD_REQUEST, "\"v\" must be 1" },
	{ "{\"v\":1}", CT_ERR_BAD_REQUEST, "\"op\" must be a string" },
	{ "{\"v\":1,\"op\":7}", CT_ERR_BAD_REQUEST, "\"op\" must be a string" },
	{ "{\"v\":1,\"op\":\"format_disk\"}", CT_ERR_UNKNOWN_OP, "unknown operation" },
	{ "{\"v\":1,\"op\":\"status\",\"op\":\"sign\"}", CT_ERR_BAD_REQUEST, "duplicate" },
	{ "{\"v\":1,\"op\":\"status\",\"key\":\"k\"}", CT_ERR_BAD_REQUEST,
	  "field \"key\" is not taken by status" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":\"YQ==\",\"admin\":true}",
	  CT_ERR_BAD_REQUEST, "field \"admin\" is not taken by sign" },
	{ "{\"v\":1,\"op\":\"sign\",\"data\":\"YQ==\"}", CT_ERR_BAD_REQUEST,
	  "\"key\" is required by sign" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\"}", CT_ERR_BAD_REQUEST,
	  "exactly one of" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":\"YQ==\",\"digest\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "exactly one of" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"../etc\",\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"key\" must be" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"\",\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"key\" must be" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"a\\u0000b\",\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "invalid JSON" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":\"YQ\"}",
	  CT_ERR_BAD_REQUEST, "not valid base64" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":\"Y Q==\"}",
	  CT_ERR_BAD_REQUEST, "not valid base64" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":\"YQ=a\"}",
	  CT_ERR_BAD_REQUEST, "not valid base64" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"data\":5}",
	  CT_ERR_BAD_REQUEST, "\"data\" must be a string" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":[\"k\"],\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"key\" must be a string" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"version\":0,\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"version\" must be an integer" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"version\":4294967296,\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"version\" must be an integer" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"version\":1.5,\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"version\" must be an integer" },
	{ "{\"v\":1,\"op\":\"sign\",\"key\":\"k\",\"version\":-1,\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"version\" must be an integer" },
	{ "{\"v\":1,\"id\":\"has space\",\"op\":\"status\"}", CT_ERR_BAD_REQUEST,
	  "\"id\" must be" },
	{ "{\"v\":1,\"id\":7,\"op\":\"status\"}", CT_ERR_BAD_REQUEST, "\"id\" must be" },
	{ "{\"v\":1,\"id\":\"\",\"op\":\"status\"}", CT_ERR_BAD_REQUEST, "\"id\" must be" },
	{ "{\"v\":1,\"op\":\"unwrap\",\"blob\":\"AAAA\",\"context\":{}}",
	  CT_ERR_BAD_REQUEST, "\"context\" must be a string" },
	{ "{\"v\":1,\"op\":\"unwrap\",\"blob\":\"AAAA\",\"key\":\"k\"}",
	  CT_ERR_BAD_REQUEST, "field \"key\" is not taken by unwrap" },
	{ "{\"v\":1,\"op\":\"verify\",\"key\":\"k\",\"data\":\"YQ==\"}",
	  CT_ERR_BAD_REQUEST, "\"signature\" is required" },
	{ "{\"v\":1,\"op\":\"status\",\"\xff\":1}", CT_ERR_BAD_REQUEST, "invalid JSON" },
};

static void
test_hostile_requests(void **state)
{
	char err[256];
	ct_request req;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ct_err r = decode(bad[i].line, &req, err, sizeof(err));
		if (r != bad[i].err || strstr(err, bad[i].msg) == NULL)
			fail_msg("case %zu (%s): got %s \"%s\", want %s \"%s\"", i,
			    bad[i].line, ct_err_code(r), err, ct_err_code(bad[i].err),
			    bad[i].msg);
		assert_null(req.data);
		assert_null(req.spec);
	}
}

static void
test_error_keeps_id(void **state)
{
	char err[256];
	ct_request req;

	assert_int_equal(decode("{\"v\":1,\"id\":\"abc\",\"op\":\"nope\"}", &req,
	    err, sizeof(err)), CT_ERR_UNKNOWN_OP);
	assert_string_equal(req.id, "abc");
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
test_limits(void **state)
{
	char err[256], *line, *body;
	ct_request req;
	size_t n;

	/* Just over the line cap is refused before parsing. */
	body = repeat(' ', CT_LINE_MAX + 1);
	assert_int_equal(ct_request_decode(body, CT_LINE_MAX + 1, &req, err,
	    sizeof(err)), CT_ERR_TOO_LARGE);
	free(body);
	/* data decoding to CT_DATA_MAX is fine, one byte more is not. */
	for (n = CT_DATA_MAX - 2; n <= CT_DATA_MAX + 3; n += 5) {
		size_t b64 = 4 * ((n + 2) / 3);
		body = repeat('A', b64);
		if (n % 3 == 1)
			body[b64 - 1] = body[b64 - 2] = '=';
		else if (n % 3 == 2)
			body[b64 - 1] = '=';
		assert_true(asprintf(&line, "{\"v\":1,\"op\":\"sign\",\"key\":\"k\","
		    "\"data\":\"%s\"}", body) > 0);
		assert_int_equal(decode(line, &req, err, sizeof(err)),
		    n <= CT_DATA_MAX ? CT_OK : CT_ERR_BAD_REQUEST);
		if (n <= CT_DATA_MAX)
			assert_int_equal(req.data_len, n);
		ct_request_clear(&req);
		free(line);
		free(body);
	}
	/* context at the cap and above */
	body = repeat('x', CT_CONTEXT_MAX + 1);
	assert_true(asprintf(&line, "{\"v\":1,\"op\":\"datakey\",\"key\":\"k\","
	    "\"context\":\"%s\"}", body) > 0);
	assert_int_equal(decode(line, &req, err, sizeof(err)), CT_ERR_BAD_REQUEST);
	assert_non_null(strstr(err, "longer than"));
	free(line);
	body[CT_CONTEXT_MAX] = '\0';
	assert_true(asprintf(&line, "{\"v\":1,\"op\":\"datakey\",\"key\":\"k\","
	    "\"context\":\"%s\"}", body) > 0);
	assert_int_equal(decode(line, &req, err, sizeof(err)), CT_OK);
	ct_request_clear(&req);
	free(line);
	free(body);
	/* deep nesting is a wrong type, not a crash */
	body = repeat('[', 5000);
	assert_true(asprintf(&line, "{\"v\":1,\"op\":\"status\",\"x\":%s}", body) > 0);
	assert_int_equal(decode(line, &req, err, sizeof(err)), CT_ERR_BAD_REQUEST);
	free(line);
	free(body);
}

/* Every prefix of a valid request is refused cleanly. */
static void
test_truncation(void **state)
{
	const char *line = "{\"v\":1,\"id\":\"x\",\"op\":\"rewrap\",\"blob\":"
	    "\"Q1RCMQ==\",\"context\":\"c\"}";
	char err[256];
	ct_request req;
	size_t i;

	for (i = 0; i < strlen(line); i++) {
		assert_int_not_equal(ct_request_decode(line, i, &req, err,
		    sizeof(err)), CT_OK);
		assert_null(req.blob);
	}
	assert_int_equal(decode(line, &req, err, sizeof(err)), CT_OK);
	ct_request_clear(&req);
}

static void
test_replies(void **state)
{
	json_t *res = json_pack("{s:s}", "signature", "AAAA"), *doc;
	char *out;
	size_t len;

	assert_int_equal(ct_reply_ok("r1", res, &out, &len), CT_OK);
	assert_int_equal(out[len - 1], '\n');
	assert_memory_equal(out, "{\"v\":1,\"id\":\"r1\",\"ok\":true,\"result\":"
	    "{\"signature\":\"AAAA\"}}\n", len);
	ct_free_secret(out, len);
	json_decref(res);

	assert_int_equal(ct_reply_error("", CT_ERR_NOT_AUTHORIZED, "no", &out,
	    &len), CT_OK);
	doc = json_loadb(out, len, 0, NULL);
	assert_non_null(doc);
	assert_null(json_object_get(doc, "id"));
	assert_false(json_is_true(json_object_get(doc, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc,
	    "error"), "code")), "not_authorized");
	json_decref(doc);
	ct_free_secret(out, len);

	/* A message with invalid UTF-8 falls back to the standard text. */
	assert_int_equal(ct_reply_error(NULL, CT_ERR_BAD_REQUEST, "bad \xff",
	    &out, &len), CT_OK);
	assert_non_null(strstr(out, "malformed request"));
	ct_free_secret(out, len);
}

static void
test_error_codes_stable(void **state)
{
	assert_string_equal(ct_err_code(CT_ERR_NOT_AUTHORIZED), "not_authorized");
	assert_string_equal(ct_err_code(CT_ERR_NO_SUCH_KEY), "no_such_key");
	assert_string_equal(ct_err_code(CT_ERR_BAD_REQUEST), "bad_request");
	assert_string_equal(ct_err_code(CT_ERR_DECRYPT), "decrypt_failed");
	assert_string_equal(ct_err_code(CT_ERR_AUDIT), "audit_failed");
	assert_string_equal(ct_err_code((ct_err)-9999), "internal_error");
	assert_string_equal(ct_err_code((ct_err)5), "internal_error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_with_data),
		cmocka_unit_test(test_unwrap_with_context),
		cmocka_unit_test(test_empty_plaintext_is_allowed),
		cmocka_unit_test(test_hostile_requests),
		cmocka_unit_test(test_error_keeps_id),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_error_codes_stable),
	};

	ct_json_use_wiping_alloc();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
