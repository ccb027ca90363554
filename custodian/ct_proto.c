/* ct_proto.c: request decoding and reply encoding. */
#include "custodian/ct_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custodian/ct_blob.h"
#include "custodian/ct_util.h"

#define ASYM_KEY (CT_F_KEY)
#define MSG (CT_F_DATA | CT_F_DIGEST)

static const ct_opspec opspecs[] = {
	{ "sign", CT_OP_SIGN, CT_F_KEY, CT_F_VERSION, MSG },
	{ "verify", CT_OP_VERIFY, CT_F_KEY | CT_F_SIGNATURE, CT_F_VERSION, MSG },
	{ "public_key", CT_OP_PUBLIC_KEY, ASYM_KEY, CT_F_VERSION, 0 },
	{ "wrap", CT_OP_WRAP, CT_F_KEY | CT_F_PLAINTEXT, CT_F_CONTEXT, 0 },
	{ "unwrap", CT_OP_UNWRAP, CT_F_BLOB, CT_F_CONTEXT, 0 },
	{ "datakey", CT_OP_DATAKEY, CT_F_KEY, CT_F_CONTEXT, 0 },
	{ "rewrap", CT_OP_REWRAP, CT_F_BLOB, CT_F_CONTEXT, 0 },
	{ "list_keys", CT_OP_LIST_KEYS, 0, 0, 0 },
	{ "status", CT_OP_STATUS, 0, 0, 0 },
	{ "gov_request", CT_OP_GOV_REQUEST, CT_F_ACTION,
	  CT_F_KEY | CT_F_VERSION | CT_F_DIGEST | CT_F_FILE, 0 },
	{ "gov_show", CT_OP_GOV_SHOW, CT_F_REQUEST, 0, 0 },
	{ "gov_list", CT_OP_GOV_LIST, 0, 0, 0 },
	{ "gov_approve", CT_OP_GOV_APPROVE,
	  CT_F_REQUEST | CT_F_CUSTODIAN | CT_F_DECISION | CT_F_SIGNATURE, 0, 0 },
	{ "due", CT_OP_DUE, 0, 0, 0 },
};

const ct_opspec *
ct_opspec_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(opspecs) / sizeof(opspecs[0]); i++)
		if (strcmp(opspecs[i].name, name) == 0)
			return &opspecs[i];
	return NULL;
}

/* How each field is read from JSON and where it goes. */
typedef enum { K_NAME, K_U32, K_B64, K_TEXT } field_kind;

typedef struct {
	const char *name;
	unsigned bit;
	field_kind kind;
	size_t max;
	size_t buf_off; /* offsetof the uint8_t * (K_B64, K_TEXT) or char[] */
	size_t len_off; /* offsetof the size_t length */
} field;

#define BUF(f) offsetof(ct_request, f), offsetof(ct_request, f##_len)

static const field fields[] = {
	{ "key", CT_F_KEY, K_NAME, CT_KEY_NAME_MAX, offsetof(ct_request, key), 0 },
	{ "version", CT_F_VERSION, K_U32, 0, 0, 0 },
	{ "data", CT_F_DATA, K_B64, CT_DATA_MAX, BUF(data) },
	{ "digest", CT_F_DIGEST, K_B64, 64, BUF(digest) },
	{ "signature", CT_F_SIGNATURE, K_B64, CT_SIG_MAX, BUF(sig) },
	{ "plaintext", CT_F_PLAINTEXT, K_B64, CT_BLOB_PLAIN_MAX, BUF(plaintext) },
	{ "blob", CT_F_BLOB, K_B64, CT_BLOB_MAX, BUF(blob) },
	{ "context", CT_F_CONTEXT, K_TEXT, CT_CONTEXT_MAX, BUF(context) },
	{ "action", CT_F_ACTION, K_NAME, 16, offsetof(ct_request, action), 0 },
	{ "request", CT_F_REQUEST, K_NAME, 16, offsetof(ct_request, request), 0 },
	{ "custodian", CT_F_CUSTODIAN, K_NAME, 64, offsetof(ct_request, custodian), 0 },
	{ "decision", CT_F_DECISION, K_NAME, 8, offsetof(ct_request, decision), 0 },
	{ "file", CT_F_FILE, K_TEXT, 255, BUF(file) },
};

static const field *
field_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static bool
valid_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= CT_ID_MAX || s[i] < 0x21 || s[i] > 0x7e ||
		    s[i] == '"' || s[i] == '\\')
			return false;
	return i > 0;
}

static ct_err
decode_field(const field *f, json_t *v, ct_request *req, char *err,
	     size_t errlen)
{
	uint8_t **bufp;
	size_t *lenp, len;
	const char *s;
	json_int_t n;
	ct_err r;

	if (f->kind == K_U32) {
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
		    n > (json_int_t)UINT32_MAX) {
			snprintf(err, errlen, "\"%s\" must be an integer from 1 "
			    "to 4294967295", f->name);
			return CT_ERR_BAD_REQUEST;
		}
		req->version = (uint32_t)n;
		return CT_OK;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", f->name);
		return CT_ERR_BAD_REQUEST;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (f->kind == K_NAME) {
		if (strlen(s) != len || !ct_valid_name(s, f->max)) {
			snprintf(err, errlen, "\"%s\" must be 1 to %zu of "
			    "A-Z a-z 0-9 . _ -", f->name, f->max);
			return CT_ERR_BAD_REQUEST;
		}
		memcpy((char *)req + f->buf_off, s, len + 1);
		return CT_OK;
	}
	bufp = (uint8_t **)((char *)req + f->buf_off);
	lenp = (size_t *)((char *)req + f->len_off);
	if (f->kind == K_TEXT) {
		if (len > f->max) {
			snprintf(err, errlen, "\"%s\" is longer than %zu bytes",
			    f->name, f->max);
			return CT_ERR_BAD_REQUEST;
		}
		if ((*bufp = malloc(len + 1)) == NULL)
			return CT_ERR_NOMEM;
		memcpy(*bufp, s, len + 1);
		*lenp = len;
		return CT_OK;
	}
	r = ct_b64_decode(s, len, f->max, bufp, lenp);
	if (r == CT_ERR_TOO_LARGE || r == CT_ERR_BAD_REQUEST) {
		snprintf(err, errlen, r == CT_ERR_TOO_LARGE ?
		    "\"%s\" decodes to more than %zu bytes" :
		    "\"%s\" is not valid base64", f->name, f->max);
		return CT_ERR_BAD_REQUEST;
	}
	return r;
}

/* The envelope: "v", "id" and "op", read before anything else so that an
 * error reply can carry the id. */
static ct_err
decode_envelope(json_t *root, ct_request *req, char *err, size_t errlen)
{
	json_t *v, *id, *op;

	if ((id = json_object_get(root, "id")) != NULL) {
		if (!json_is_string(id) || !valid_id(json_string_value(id))) {
			snprintf(err, errlen, "\"id\" must be a string of 1 to "
			    "%d printable ASCII characters", CT_ID_MAX);
			return CT_ERR_BAD_REQUEST;
		}
		memcpy(req->id, json_string_value(id),
		    strlen(json_string_value(id)) + 1);
	}
	v = json_object_get(root, "v");
	if (!json_is_integer(v) || json_integer_value(v) != CT_PROTO_VERSION) {
		snprintf(err, errlen, "\"v\" must be %d", CT_PROTO_VERSION);
		return CT_ERR_BAD_REQUEST;
	}
	op = json_object_get(root, "op");
	if (!json_is_string(op)) {
		snprintf(err, errlen, "\"op\" must be a string");
		return CT_ERR_BAD_REQUEST;
	}
	if ((req->spec = ct_opspec_find(json_string_value(op))) == NULL) {
		snprintf(err, errlen, "unknown operation");
		return CT_ERR_UNKNOWN_OP;
	}
	return CT_OK;
}

static ct_err
check_presence(const ct_opspec *sp, unsigned have, char *err, size_t errlen)
{
	unsigned missing = sp->required & ~have, both;
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (missing & fields[i].bit) {
			snprintf(err, errlen, "\"%s\" is required by %s",
			    fields[i].name, sp->name);
			return CT_ERR_BAD_REQUEST;
		}
	}
	both = have & sp->one_of;
	if (sp->one_of != 0 && (both == 0 || (both & (both - 1)) != 0)) {
		snprintf(err, errlen, "%s takes exactly one of \"data\" and "
		    "\"digest\"", sp->name);
		return CT_ERR_BAD_REQUEST;
	}
	return CT_OK;
}

ct_err
ct_request_decode(const char *line, size_t len, ct_request *req, char *err,
		  size_t errlen)
{
	char saved_id[CT_ID_MAX + 1];
	json_error_t jerr;
	json_t *root = NULL, *v;
	const field *f;
	const char *name;
	unsigned allowed;
	ct_err r = CT_ERR_INTERNAL;

	memset(req, 0, sizeof(*req));
	if (errlen > 0)
		err[0] = '\0';
	if (len > CT_LINE_MAX) {
		snprintf(err, errlen, "request longer than %d bytes", CT_LINE_MAX);
		return CT_ERR_TOO_LARGE;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		snprintf(err, errlen, root == NULL ? "invalid JSON at column %d: %s"
		    : "request must be a JSON object", jerr.column, jerr.text);
		r = CT_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = decode_envelope(root, req, err, errlen)) != CT_OK)
		goto out;
	allowed = req->spec->required | req->spec->optional | req->spec->one_of;
	json_object_foreach(root, name, v) {
		if (strcmp(name, "v") == 0 || strcmp(name, "id") == 0 ||
		    strcmp(name, "op") == 0)
			continue;
		if ((f = field_find(name)) == NULL || (f->bit & allowed) == 0) {
			snprintf(err, errlen, "field \"%.64s\" is not taken by %s",
			    valid_id(name) ? name : "?", req->spec->name);
			r = CT_ERR_BAD_REQUEST;
			goto out;
		}
		if ((r = decode_field(f, v, req, err, errlen)) != CT_OK)
			goto out;
		req->fields |= f->bit;
	}
	r = check_presence(req->spec, req->fields, err, errlen);
 out:
	json_decref(root);
	if (r != CT_OK) {
		memcpy(saved_id, req->id, sizeof(saved_id));
		ct_request_clear(req);
		memcpy(req->id, saved_id, sizeof(saved_id));
	}
	return r;
}

void
ct_request_clear(ct_request *req)
{
	ct_free_secret(req->data, req->data_len);
	ct_free_secret(req->digest, req->digest_len);
	ct_free_secret(req->sig, req->sig_len);
	ct_free_secret(req->plaintext, req->plaintext_len);
	ct_free_secret(req->blob, req->blob_len);
	ct_free_secret(req->context, req->context_len + 1);
	free(req->file);
	memset(req, 0, sizeof(*req));
}

static ct_err
encode(json_t *root, char **out, size_t *outlen)
{
	size_t n;
	char *buf;

	*out = NULL;
	*outlen = 0;
	n = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (n == 0)
		return CT_ERR_NOMEM;
	if ((buf = malloc(n + 1)) == NULL)
		return CT_ERR_NOMEM;
	if (json_dumpb(root, buf, n, JSON_COMPACT | JSON_PRESERVE_ORDER) != n) {
		ct_free_secret(buf, n + 1);
		return CT_ERR_INTERNAL;
	}
	buf[n] = '\n';
	*out = buf;
	*outlen = n + 1;
	return CT_OK;
}

static json_t *
envelope(const char *id, bool ok)
{
	json_t *root = json_object();

	if (root == NULL)
		return NULL;
	if (json_object_set_new(root, "v", json_integer(CT_PROTO_VERSION)) ||
	    (id != NULL && id[0] != '\0' &&
	    json_object_set_new(root, "id", json_string(id))) ||
	    json_object_set_new(root, "ok", json_boolean(ok))) {
		json_decref(root);
		return NULL;
	}
	return root;
}

ct_err
ct_reply_ok(const char *id, json_t *result, char **out, size_t *outlen)
{
	json_t *root;
	ct_err r;

	*out = NULL;
	*outlen = 0;
	if ((root = envelope(id, true)) == NULL ||
	    json_object_set(root, "result", result) != 0) {
		json_decref(root);
		return CT_ERR_NOMEM;
	}
	r = encode(root, out, outlen);
	json_decref(root);
	return r;
}

ct_err
ct_reply_error(const char *id, ct_err e, const char *msg, char **out,
	       size_t *outlen)
{
	json_t *root, *error, *text;
	ct_err r;

	*out = NULL;
	*outlen = 0;
	/* A message may quote client input that is not valid UTF-8. */
	if (msg == NULL || msg[0] == '\0' || (text = json_string(msg)) == NULL)
		text = json_string(ct_strerror(e));
	error = json_pack("{s:s, s:o}", "code", ct_err_code(e), "message", text);
	if (error == NULL || (root = envelope(id, false)) == NULL) {
		json_decref(error);
		return CT_ERR_NOMEM;
	}
	if (json_object_set_new(root, "error", error) != 0) {
		json_decref(root);
		return CT_ERR_NOMEM;
	}
	r = encode(root, out, outlen);
	json_decref(root);
	return r;
}
