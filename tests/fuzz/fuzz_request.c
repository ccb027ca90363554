/* fuzz_request.c: the request codec, as the daemon runs it per line.
 *
 * The input is one request line (without its newline), capped like the
 * daemon caps it: a line of more than CT_LINE_MAX bytes is refused before
 * any parsing, so CT_LINE_MAX + 1 bytes are enough to reach that branch.
 * Every decode is followed by the reply the daemon would send: an error
 * reply carrying the decoded id, and for a request that decodes, an ok
 * reply too.  Both must be one JSON object on one line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "custodian/ct_blob.h"
#include "custodian/ct_proto.h"
#include "custodian/ct_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ct_json_use_wiping_alloc();
	return 0;
}

/* What an id may hold (docs/protocol.md): printable ASCII, no " or \. */
static int
id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (i >= CT_ID_MAX || id[i] < 0x21 || id[i] > 0x7e ||
		    id[i] == '"' || id[i] == '\\')
			return 0;
	return 1;
}

/* A reply is exactly one line holding one JSON object with v, ok and,
 * when the request carried one, the id. */
static void
check_reply(const char *out, size_t outlen, const char *id, int ok)
{
	json_error_t jerr;
	json_t *root, *v;

	CHECK(out != NULL && outlen > 1);
	CHECK(out[outlen - 1] == '\n');
	CHECK(memchr(out, '\n', outlen - 1) == NULL);
	root = json_loadb(out, outlen - 1, JSON_REJECT_DUPLICATES, &jerr);
	CHECK(json_is_object(root));
	CHECK(json_integer_value(json_object_get(root, "v")) ==
	      CT_PROTO_VERSION);
	CHECK(json_is_boolean(json_object_get(root, "ok")) &&
	      json_is_true(json_object_get(root, "ok")) == ok);
	v = json_object_get(root, "id");
	if (id[0] != '\0')
		CHECK(json_is_string(v) &&
		      strcmp(json_string_value(v), id) == 0);
	else
		CHECK(v == NULL);
	json_decref(root);
}

/* A decoded request keeps the promises of ct_proto.h. */
static void
check_request(const ct_request *req)
{
	unsigned allowed, both;

	CHECK(req->spec != NULL);
	CHECK(id_ok(req->id));
	allowed = req->spec->required | req->spec->optional |
		  req->spec->one_of;
	CHECK((req->fields & ~allowed) == 0);
	CHECK((req->fields & req->spec->required) == req->spec->required);
	both = req->fields & req->spec->one_of;
	CHECK(req->spec->one_of == 0 || (both != 0 && (both & (both - 1)) == 0));
	CHECK(((req->fields & CT_F_KEY) != 0) == (req->key[0] != '\0'));
	if (req->fields & CT_F_KEY)
		CHECK(ct_valid_name(req->key, CT_KEY_NAME_MAX));
	CHECK(((req->fields & CT_F_VERSION) != 0) == (req->version != 0));
	CHECK(((req->fields & CT_F_DATA) != 0) == (req->data != NULL));
	CHECK(((req->fields & CT_F_DIGEST) != 0) == (req->digest != NULL));
	CHECK(((req->fields & CT_F_SIGNATURE) != 0) == (req->sig != NULL));
	CHECK(((req->fields & CT_F_PLAINTEXT) != 0) == (req->plaintext != NULL));
	CHECK(((req->fields & CT_F_BLOB) != 0) == (req->blob != NULL));
	CHECK(((req->fields & CT_F_CONTEXT) != 0) == (req->context != NULL));
	CHECK(req->data_len <= CT_DATA_MAX);
	CHECK(req->digest_len <= 64);
	CHECK(req->sig_len <= CT_SIG_MAX);
	CHECK(req->plaintext_len <= CT_BLOB_PLAIN_MAX);
	CHECK(req->blob_len <= CT_BLOB_MAX);
	CHECK(req->context_len <= CT_CONTEXT_MAX);
	if (req->context != NULL)
		CHECK(req->context[req->context_len] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256]; /* the daemon's size */
	ct_request req;
	json_t *result;
	char *out;
	size_t outlen;
	ct_err r;

	if (size > CT_LINE_MAX + 1)
		size = CT_LINE_MAX + 1;
	r = ct_request_decode((const char *)data, size, &req, err,
			      sizeof(err));
	CHECK(id_ok(req.id));
	if (r != CT_OK) {
		CHECK(r < 0 && r > CT_ERR_LAST_);
		CHECK(err[0] != '\0');
		CHECK(req.spec == NULL && req.fields == 0 && req.data == NULL &&
		      req.digest == NULL && req.sig == NULL &&
		      req.plaintext == NULL && req.blob == NULL &&
		      req.context == NULL);
	} else {
		check_request(&req);
		/* An ok reply, as list_keys or sign would give. */
		result = json_pack("{s:s, s:i}", "key", req.key, "version",
				   (json_int_t)req.version);
		CHECK(result != NULL);
		CHECK(ct_reply_ok(req.id, result, &out, &outlen) == CT_OK);
		check_reply(out, outlen, req.id, 1);
		ct_free_secret(out, outlen);
		json_decref(result);
		/* Refusals quote the request: not_authorized on this key. */
		snprintf(err, sizeof(err), "%s on key \"%s\" is not granted "
			 "to this peer", req.spec->name, req.key);
		r = CT_ERR_NOT_AUTHORIZED;
	}
	/* The error message may quote client bytes that are not UTF-8; the
	 * encoder must still produce a reply. */
	CHECK(ct_reply_error(req.id, r, err, &out, &outlen) == CT_OK);
	check_reply(out, outlen, req.id, 0);
	ct_free_secret(out, outlen);
	ct_request_clear(&req);
	return 0;
}
