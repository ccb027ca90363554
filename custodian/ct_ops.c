/* ct_ops.c: authorisation and the key operations. */
#include "custodian/ct_ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "custodian/ct_util.h"

#define CEK_LEN 32 /* content key of RSA blobs, and datakey size */

static ct_err op_sign(ct_job *, p11_session *);
static ct_err op_verify(ct_job *, p11_session *);
static ct_err op_public_key(ct_job *, p11_session *);
static ct_err op_wrap(ct_job *, p11_session *);
static ct_err op_unwrap(ct_job *, p11_session *);
static ct_err op_datakey(ct_job *, p11_session *);
static ct_err op_rewrap(ct_job *, p11_session *);
static ct_err op_keygen(ct_job *, p11_session *);
static ct_err op_destroy(ct_job *, p11_session *);

/* Which right each operation needs and where it runs.  Authorisation is
 * decided from this table before any handler runs. */
static const ct_cmd cmds[] = {
	{ CT_OP_SIGN, POL_OP_SIGN, true, false, op_sign },
	{ CT_OP_VERIFY, POL_OP_VERIFY, true, false, op_verify },
	{ CT_OP_PUBLIC_KEY, POL_OP_PUBLIC_KEY, true, false, op_public_key },
	{ CT_OP_WRAP, POL_OP_WRAP, true, false, op_wrap },
	{ CT_OP_UNWRAP, POL_OP_UNWRAP, true, false, op_unwrap },
	{ CT_OP_DATAKEY, POL_OP_DATAKEY, true, false, op_datakey },
	{ CT_OP_REWRAP, POL_OP_REWRAP, true, false, op_rewrap },
	{ CT_OP_LIST_KEYS, 0, false, false, NULL },
	{ CT_OP_STATUS, 0, false, false, NULL },
	/* Who may do these is decided by ct_gov: officers open requests;
	 * approvals carry their own proof, a custodian's signature. */
	{ CT_OP_GOV_REQUEST, 0, false, true, NULL },
	{ CT_OP_GOV_SHOW, 0, false, true, NULL },
	{ CT_OP_GOV_LIST, 0, false, true, NULL },
	{ CT_OP_GOV_APPROVE, 0, false, true, NULL },
	{ CT_OP_DUE, 0, false, true, NULL },
	{ CT_OP_KEYGEN_, 0, true, true, op_keygen },
	{ CT_OP_DESTROY_, 0, true, true, op_destroy },
};

static const ct_cmd *
cmd_find(ct_op op)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (cmds[i].op == op)
			return &cmds[i];
	return NULL;
}

ct_job *
ct_job_new(uint64_t conn_id, const ct_peer *peer, ct_request *req)
{
	ct_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return NULL;
	job->conn_id = conn_id;
	job->peer = *peer;
	job->req = *req; /* transferred */
	memset(req, 0, sizeof(*req));
	job->cmd = cmd_find(job->req.spec->op);
	return job;
}

void
ct_job_free(ct_job *job)
{
	if (job == NULL)
		return;
	ct_request_clear(&job->req);
	ct_keyref_clear(&job->key);
	ct_keyref_clear(&job->target);
	json_decref(job->result);
	OPENSSL_cleanse(job, sizeof(*job));
	free(job);
}

ct_err
ct_ops_set_work(const pol_policy *pol, const ct_gov_work *w, ct_job *job)
{
	const pol_key *pk = pol_find_key(pol, w->key);
	ct_keyref *ref = &job->key;
	ct_err r;

	if (pk == NULL)
		return CT_ERR_NO_SUCH_KEY;
	ct_keyref_clear(ref);
	if ((r = ct_key_label(pk->name, w->version, ref->label,
	    sizeof(ref->label))) != CT_OK)
		return r;
	snprintf(ref->name, sizeof(ref->name), "%s", pk->name);
	ref->version = w->version;
	ref->type = pk->type;
	ref->backup = pk->backup;
	job->token = pk->token;
	job->cmd = cmd_find(w->action == CT_ACT_REVOKE ? CT_OP_DESTROY_ :
	    CT_OP_KEYGEN_);
	job->work = *w;
	job->has_work = true;
	return CT_OK;
}

ct_err
ct_job_new_work(const pol_policy *pol, const ct_gov_work *w, ct_job **job_out)
{
	ct_job *job;
	ct_err r;

	if ((*job_out = job = calloc(1, sizeof(*job))) == NULL)
		return CT_ERR_NOMEM;
	if ((r = ct_ops_set_work(pol, w, job)) != CT_OK) {
		ct_job_free(job);
		*job_out = NULL;
	}
	return r;
}

static bool
is_pair(pol_key_type t)
{
	return t != POL_KEY_AES_256;
}

/* Does a blob of this algorithm belong to a key of this type? */
static bool
blob_fits(ct_blob_alg alg, pol_key_type t)
{
	return (alg == CT_BLOB_AES_GCM) == (t == POL_KEY_AES_256) &&
	    (alg == CT_BLOB_AES_GCM || t == POL_KEY_RSA_3072);
}

static ct_err refuse(ct_job *job, ct_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ct_err
refuse(ct_job *job, ct_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->msg, sizeof(job->msg), fmt, ap);
	va_end(ap);
	return e;
}

/* Refuse op on key (or, with key NULL, being a client at all) because the
 * grant that held it ended: say which and when. */
static ct_err
refuse_expired(ct_job *job, const pol_policy *pol, const char *key,
	       const pol_client *cl, const pol_expiry *e)
{
	char when[POL_TIME_LEN], eng[POL_NAME_MAX + 24] = "";

	pol_time_format(e->until, when);
	if (e->engagement != POL_NONE)
		snprintf(eng, sizeof(eng), " with engagement \"%s\"",
		    pol->engagements[e->engagement].name);
	if (key == NULL)
		return refuse(job, CT_ERR_GRANT_EXPIRED,
		    "client \"%s\" expired at %s%s", cl->name, when, eng);
	return refuse(job, CT_ERR_GRANT_EXPIRED,
	    "%s on key \"%s\": the grant to client \"%s\" expired at %s%s",
	    pol_op_name(job->cmd->right), key, cl->name, when, eng);
}

ct_err
ct_ops_prepare(const pol_policy *pol, const ct_keystore *ks, ct_job *job,
	       time_t now)
{
	const ct_request *req = &job->req;
	const pol_client *cl;
	const pol_expiry *ended;
	const pol_key *pk;
	const ct_key *k;
	const ct_keyver *kv;
	const char *name = req->key;
	uint32_t version = req->version;
	ct_err r;

	if (job->cmd == NULL)
		return CT_ERR_INTERNAL;
	if (job->cmd->gov)
		return CT_OK;
	if (!pol_peer_known(pol, job->peer.uid, job->peer.gid, now)) {
		if (!pol_peer_expired(pol, NULL, job->peer.uid, job->peer.gid,
		    0, now, &cl, &ended))
			return refuse(job, CT_ERR_NOT_AUTHORIZED,
			    "this peer is not a client in the policy");
		/* A former client: a key right may still be refused as
		 * expired below, or as never granted. */
		if (job->cmd->right == 0)
			return refuse_expired(job, pol, NULL, cl, ended);
	}
	if (job->cmd->right == 0)
		return CT_OK;
	if (req->fields & CT_F_BLOB) {
		if ((r = ct_blob_parse(req->blob, req->blob_len, &job->blob)) != CT_OK)
			return refuse(job, r, "blob is malformed");
		name = job->blob.name;
		version = job->blob.version;
	}
	if ((pk = pol_find_key(pol, name)) == NULL ||
	    (k = ct_keys_find(ks, name)) == NULL)
		return refuse(job, CT_ERR_NO_SUCH_KEY, "no key \"%s\"", name);
	if ((pol_peer_ops(pol, pk, job->peer.uid, job->peer.gid, now) &
	    job->cmd->right) == 0) {
		/* grant_expired only where an ended grant held the right. */
		if (pol_peer_expired(pol, pk, job->peer.uid, job->peer.gid,
		    job->cmd->right, now, &cl, &ended))
			return refuse_expired(job, pol, name, cl, ended);
		return refuse(job, CT_ERR_NOT_AUTHORIZED,
		    "%s on key \"%s\" is not granted to this peer",
		    pol_op_name(job->cmd->right), name);
	}
	if ((kv = ct_key_version(k, version)) == NULL)
		return version == 0 ? refuse(job, CT_ERR_NO_SUCH_VERSION,
		    "key \"%s\" has no version on the token yet", name) :
		    refuse(job, CT_ERR_NO_SUCH_VERSION,
		    "key \"%s\" has no version %u on the token", name, version);
	if (kv->use == CT_KV_UNKNOWN)
		return refuse(job, CT_ERR_NO_SUCH_VERSION, "version %u of key "
		    "\"%s\" is not recorded in the custodian state", kv->version,
		    name);
	if (kv->use == CT_KV_REVOKED)
		return refuse(job, CT_ERR_REVOKED, "version %u of key \"%s\" "
		    "is revoked", kv->version, name);
	/* Older versions only verify and unwrap: new signatures and blobs
	 * come from the current one. */
	if ((job->cmd->right & POL_OP_SIGN) && kv != ct_key_version(k, 0))
		return refuse(job, CT_ERR_RETIRED, "version %u of key \"%s\" "
		    "is retired: sign with the current version", kv->version,
		    name);
	if ((req->fields & CT_F_BLOB) && !blob_fits(job->blob.alg, pk->type))
		return refuse(job, CT_ERR_BAD_BLOB,
		    "blob algorithm does not fit key \"%s\"", name);
	job->token = pk->token;
	if ((r = ct_keyref_set(&job->key, k, kv)) != CT_OK)
		return r;
	if (job->cmd->op == CT_OP_REWRAP) {
		if ((kv = ct_key_version(k, 0)) == NULL)
			return refuse(job, CT_ERR_NO_SUCH_VERSION,
			    "key \"%s\" has no usable version", name);
		return ct_keyref_set(&job->target, k, kv);
	}
	return CT_OK;
}

/* Keep the token's own words for the log and the reply. */
static ct_err
token_fail(ct_job *job, p11_session *s, ct_err r)
{
	const char *detail = s != NULL ? p11_session_last_error(s) : "";

	snprintf(job->msg, sizeof(job->msg), "%s%s%s", ct_strerror(r),
	    detail[0] != '\0' ? ": " : "", detail);
	return r;
}

static const char *
scheme_name(const ct_keyref *ref)
{
	return pol_sign_scheme_name(ref->sign);
}

/* The digest to sign or verify: given by the client, or computed here. */
static ct_err
message_digest(ct_job *job, uint8_t *md, size_t *mdlen)
{
	const EVP_MD *h = ct_sign_md(job->key.sign);
	size_t want = (size_t)EVP_MD_get_size(h);
	unsigned int n = 0;

	if (job->req.fields & CT_F_DIGEST) {
		if (job->req.digest_len != want) {
			snprintf(job->msg, sizeof(job->msg), "\"digest\" must be "
			    "%zu bytes for %s", want, scheme_name(&job->key));
			return CT_ERR_BAD_REQUEST;
		}
		memcpy(md, job->req.digest, want);
		*mdlen = want;
		return CT_OK;
	}
	if (EVP_Digest(job->req.data, job->req.data_len, md, &n, h, NULL) != 1)
		return CT_ERR_INTERNAL;
	*mdlen = n;
	return CT_OK;
}

/* Keep res (consumed) as the job's result when r is CT_OK, else drop it. */
static ct_err
set_result(ct_job *job, json_t *res, ct_err r)
{
	if (r == CT_OK && res == NULL)
		r = CT_ERR_NOMEM;
	if (r != CT_OK) {
		json_decref(res);
		return r;
	}
	job->result = res;
	return CT_OK;
}

/* json_pack's "s%" with a base64 encoding of buf. */
static ct_err
b64_json(const uint8_t *buf, size_t len, json_t **out)
{
	char *s = NULL;
	ct_err r;

	*out = NULL;
	if ((r = ct_b64_encode(buf, len, &s)) != CT_OK)
		return r;
	*out = json_string(s);
	ct_free_secret(s, strlen(s));
	return *out != NULL ? CT_OK : CT_ERR_NOMEM;
}

static json_t *
key_result(const ct_keyref *ref)
{
	return json_pack("{s:s, s:I}", "key", ref->name, "version",
	    (json_int_t)ref->version);
}

static ct_err
add_b64(json_t *obj, const char *field, const uint8_t *buf, size_t len)
{
	json_t *v;
	ct_err r;

	if (obj == NULL)
		return CT_ERR_NOMEM;
	if ((r = b64_json(buf, len, &v)) != CT_OK)
		return r;
	return json_object_set_new(obj, field, v) == 0 ? CT_OK : CT_ERR_NOMEM;
}

static ct_err
op_sign(ct_job *job, p11_session *s)
{
	uint8_t md[EVP_MAX_MD_SIZE], sig[CT_SIG_MAX];
	size_t mdlen, siglen = sizeof(sig);
	json_t *res;
	ct_err r;

	if ((r = message_digest(job, md, &mdlen)) != CT_OK)
		return r;
	r = p11_sign(s, job->key.handle, ct_sign_mech(job->key.sign), md, mdlen,
	    sig, &siglen);
	if (r != CT_OK)
		return token_fail(job, s, r);
	res = key_result(&job->key);
	if (res == NULL || json_object_set_new(res, "algorithm",
	    json_string(scheme_name(&job->key))) != 0)
		r = CT_ERR_NOMEM;
	else
		r = add_b64(res, "signature", sig, siglen);
	return set_result(job, res, r);
}

static ct_err
op_verify(ct_job *job, p11_session *s)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	size_t mdlen;
	bool ok;
	json_t *res;
	ct_err r;

	if ((r = message_digest(job, md, &mdlen)) != CT_OK ||
	    (r = ct_verify_digest(job->key.pub, job->key.sign, md, mdlen,
	    job->req.sig, job->req.sig_len, &ok)) != CT_OK)
		return r;
	res = key_result(&job->key);
	r = res == NULL || json_object_set_new(res, "valid", json_boolean(ok)) ?
	    CT_ERR_NOMEM : CT_OK;
	return set_result(job, res, r);
}

static ct_err
op_public_key(ct_job *job, p11_session *s)
{
	BIO *bio = NULL;
	BUF_MEM *mem;
	json_t *res = NULL;
	ct_err r = CT_ERR_INTERNAL;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, job->key.pub) != 1 ||
	    BIO_get_mem_ptr(bio, &mem) != 1)
		goto out;
	res = key_result(&job->key);
	r = res == NULL ||
	    json_object_set_new(res, "type", json_string(pol_key_type_name(job->key.type))) ||
	    json_object_set_new(res, "pem", json_stringn(mem->data, mem->length)) ?
	    CT_ERR_NOMEM : CT_OK;
	r = set_result(job, res, r);
 out:
	BIO_free(bio);
	return r;
}

/* AES-256-GCM in this process, for the content key of RSA blobs. */
static ct_err
gcm_soft(int enc, const uint8_t key[CEK_LEN], const uint8_t *iv,
	 const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
	 uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *c;
	size_t body = enc ? inlen : inlen - CT_BLOB_TAG_LEN;
	int n, fin;
	ct_err r = CT_ERR_INTERNAL;

	*outlen = 0;
	if (!enc && inlen < CT_BLOB_TAG_LEN)
		return CT_ERR_DECRYPT;
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return CT_ERR_NOMEM;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_CipherUpdate(c, out, &n, in, (int)body) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CT_BLOB_TAG_LEN,
	    (void *)(in + body)) != 1)
		goto out;
	if ((fin = EVP_CipherFinal_ex(c, out + n, &n)) != 1) {
		r = enc ? CT_ERR_INTERNAL : CT_ERR_DECRYPT;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CT_BLOB_TAG_LEN,
	    out + body) != 1)
		goto out;
	*outlen = enc ? body + CT_BLOB_TAG_LEN : body;
	r = CT_OK;
 out:
	if (r != CT_OK)
		OPENSSL_cleanse(out, body);
	EVP_CIPHER_CTX_free(c);
	return r;
}

ct_err
ct_rsa_oaep_encrypt(const ct_keyref *ref, const uint8_t *in, size_t inlen,
		    uint8_t *out, size_t *outlen)
{
	const EVP_MD *md = ref->oaep == POL_OAEP_SHA1 ? EVP_sha1() : EVP_sha256();
	EVP_PKEY_CTX *ctx;
	ct_err r = CT_ERR_INTERNAL;

	if ((ctx = EVP_PKEY_CTX_new(ref->pub, NULL)) == NULL)
		return CT_ERR_NOMEM;
	if (EVP_PKEY_encrypt_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
	    EVP_PKEY_encrypt(ctx, out, outlen, in, inlen) == 1)
		r = CT_OK;
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Wrap pt under ref with the request's context; adds "blob" to res. */
static ct_err
seal(ct_job *job, p11_session *s, const ct_keyref *ref, const uint8_t *pt,
     size_t ptlen, json_t *res)
{
	uint8_t hdr[CT_BLOB_HDR_MAX], iv[CT_BLOB_IV_LEN], cek[CEK_LEN];
	uint8_t ek[CT_BLOB_EK_MAX], ct[CT_BLOB_PLAIN_MAX + CT_BLOB_TAG_LEN];
	uint8_t *aad = NULL, *blob = NULL;
	size_t hdr_len, aad_len, ek_len = sizeof(ek), ct_len = sizeof(ct);
	size_t blob_len = 0;
	bool aes = ref->type == POL_KEY_AES_256;
	ct_blob_alg alg = aes ? CT_BLOB_AES_GCM : ref->oaep == POL_OAEP_SHA1 ?
	    CT_BLOB_RSA_OAEP_SHA1 : CT_BLOB_RSA_OAEP_SHA256;
	ct_err r;

	if (ptlen > CT_BLOB_PLAIN_MAX)
		return CT_ERR_BAD_REQUEST;
	if ((r = ct_blob_header(alg, ref->name, ref->version, hdr, &hdr_len)) != CT_OK ||
	    (r = ct_blob_aad(hdr, hdr_len, job->req.context, job->req.context_len,
	    &aad, &aad_len)) != CT_OK)
		goto out;
	r = CT_ERR_INTERNAL;
	if (RAND_bytes(iv, sizeof(iv)) != 1)
		goto out;
	if (aes) {
		r = p11_aes_gcm_encrypt(s, ref->handle, iv, aad, aad_len, pt,
		    ptlen, ct, &ct_len);
		if (r != CT_OK) {
			r = token_fail(job, s, r);
			goto out;
		}
	} else if (RAND_priv_bytes(cek, sizeof(cek)) != 1 ||
	    (r = ct_rsa_oaep_encrypt(ref, cek, sizeof(cek), ek, &ek_len)) != CT_OK ||
	    (r = gcm_soft(1, cek, iv, aad, aad_len, pt, ptlen, ct, &ct_len)) != CT_OK)
		goto out;
	if ((r = ct_blob_build(hdr, hdr_len, aes ? NULL : ek, ek_len, iv, ct,
	    ct_len, &blob, &blob_len)) != CT_OK)
		goto out;
	r = add_b64(res, "blob", blob, blob_len);
 out:
	OPENSSL_cleanse(cek, sizeof(cek));
	free(aad);
	free(blob);
	return r;
}

/* Open job->blob under ref with the request's context.  *pt is malloc'd
 * (ct_free_secret it with *ptlen). */
static ct_err
unseal(ct_job *job, p11_session *s, const ct_keyref *ref, uint8_t **pt,
       size_t *ptlen)
{
	const ct_blob *b = &job->blob;
	uint8_t cek[CT_BLOB_EK_MAX], *aad = NULL, *buf = NULL;
	size_t aad_len, cek_len = sizeof(cek), len = 0;
	ct_err r;

	*pt = NULL;
	*ptlen = 0;
	if ((r = ct_blob_aad(b->hdr, b->hdr_len, job->req.context,
	    job->req.context_len, &aad, &aad_len)) != CT_OK)
		goto out;
	r = CT_ERR_NOMEM;
	if ((buf = malloc(b->ct_len)) == NULL)
		goto out;
	if (b->alg == CT_BLOB_AES_GCM) {
		len = b->ct_len;
		r = p11_aes_gcm_decrypt(s, ref->handle, b->iv, aad, aad_len,
		    b->ct, b->ct_len, buf, &len);
	} else {
		r = p11_rsa_oaep_decrypt(s, ref->handle,
		    b->alg == CT_BLOB_RSA_OAEP_SHA1 ? P11_HASH_SHA1 :
		    P11_HASH_SHA256, b->ek, b->ek_len, cek, &cek_len);
		if (r == CT_OK && cek_len != CEK_LEN)
			r = CT_ERR_DECRYPT;
		if (r == CT_OK)
			r = gcm_soft(0, cek, b->iv, aad, aad_len, b->ct, b->ct_len,
			    buf, &len);
	}
	if (r != CT_OK) {
		r = token_fail(job, s, r);
		goto out;
	}
	*pt = buf;
	*ptlen = len;
	buf = NULL;
 out:
	OPENSSL_cleanse(cek, sizeof(cek));
	ct_free_secret(buf, b->ct_len);
	free(aad);
	return r;
}

static ct_err
op_wrap(ct_job *job, p11_session *s)
{
	json_t *res = key_result(&job->key);
	ct_err r = CT_ERR_NOMEM;

	if (res != NULL)
		r = seal(job, s, &job->key, job->req.plaintext,
		    job->req.plaintext_len, res);
	return set_result(job, res, r);
}

static ct_err
op_unwrap(ct_job *job, p11_session *s)
{
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	json_t *res;
	ct_err r;

	if ((r = unseal(job, s, &job->key, &pt, &ptlen)) != CT_OK)
		return r;
	res = key_result(&job->key);
	r = add_b64(res, "plaintext", pt, ptlen);
	ct_free_secret(pt, ptlen);
	return set_result(job, res, r);
}

static ct_err
op_datakey(ct_job *job, p11_session *s)
{
	uint8_t dk[CEK_LEN];
	json_t *res = key_result(&job->key);
	ct_err r;

	if ((r = p11_random(s, dk, sizeof(dk))) != CT_OK)
		r = token_fail(job, s, r);
	else if ((r = add_b64(res, "plaintext", dk, sizeof(dk))) == CT_OK)
		r = seal(job, s, &job->key, dk, sizeof(dk), res);
	OPENSSL_cleanse(dk, sizeof(dk));
	return set_result(job, res, r);
}

/* The plaintext crosses this process only: the caller gets the new blob. */
static ct_err
op_rewrap(ct_job *job, p11_session *s)
{
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	json_t *res;
	ct_err r;

	if ((r = unseal(job, s, &job->key, &pt, &ptlen)) != CT_OK)
		return r;
	res = key_result(&job->target);
	r = res != NULL ? seal(job, s, &job->target, pt, ptlen, res) :
	    CT_ERR_NOMEM;
	ct_free_secret(pt, ptlen);
	return set_result(job, res, r);
}

static ct_err
refind(p11_session *s, ct_keyref *ref)
{
	if (ref->label[0] == '\0')
		return CT_OK;
	return p11_find(s, is_pair(ref->type) ? P11_OBJ_PRIVATE : P11_OBJ_SECRET,
	    ref->label, &ref->handle);
}

void
ct_ops_run(ct_job *job, p11_session *s)
{
	ct_err r;

	job->msg[0] = '\0';
	r = job->cmd->exec(job, s);
	/* The token dropped our cached handle (object re-created, token
	 * re-inserted): find it by label once and run again. */
	if (r == CT_ERR_HANDLE_STALE) {
		if ((r = refind(s, &job->key)) == CT_OK &&
		    (r = refind(s, &job->target)) == CT_OK) {
			job->refound = true;
			job->msg[0] = '\0';
			r = job->cmd->exec(job, s);
		} else
			r = token_fail(job, s, r);
	}
	job->err = r;
	if (r != CT_OK && job->msg[0] == '\0')
		snprintf(job->msg, sizeof(job->msg), "%s", ct_strerror(r));
}

json_t *
ct_ops_names(unsigned ops)
{
	json_t *arr = json_array();
	unsigned bit;

	for (bit = 1; arr != NULL && bit <= POL_OP_ALL_; bit <<= 1)
		if ((ops & bit) && json_array_append_new(arr,
		    json_string(pol_op_name(bit))) != 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

json_t *
ct_ops_list_keys(const pol_policy *pol, const ct_keystore *ks,
		 const ct_peer *peer, time_t now)
{
	json_t *arr = json_array(), *k, *vers, *ops;
	const ct_key *ck;
	const ct_keyver *cur;
	unsigned bits;
	size_t i, j;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < ks->n_keys; i++) {
		ck = &ks->keys[i];
		if ((bits = pol_peer_ops(pol, ck->pol, peer->uid, peer->gid,
		    now)) == 0)
			continue;
		vers = json_array();
		ops = ct_ops_names(bits);
		/* Revoked versions and objects the state does not know are
		 * not the client's to use. */
		for (j = 0; vers != NULL && j < ck->n_vers; j++)
			if (ck->vers[j].use == CT_KV_OK)
				json_array_append_new(vers,
				    json_integer(ck->vers[j].version));
		cur = ct_key_version(ck, 0);
		k = json_pack("{s:s, s:s, s:I, s:o*, s:o*}", "name", ck->pol->name,
		    "type", pol_key_type_name(ck->pol->type), "current_version",
		    (json_int_t)(cur != NULL ? cur->version : 0),
		    "versions", vers, "operations", ops);
		if (k == NULL || json_array_append_new(arr, k) != 0) {
			json_decref(arr);
			return NULL;
		}
		if (ck->pol->sign != POL_SIGN_NONE)
			json_object_set_new(k, "sign", json_string(
			    pol_sign_scheme_name(ck->pol->sign)));
	}
	return arr;
}

/* Governance work: a rotation's new version, a revoked version's end. */
static ct_err
op_keygen(ct_job *job, p11_session *s)
{
	return p11_generate_key(s, ct_p11_key_type(job->key.type), job->key.label,
	    job->key.backup);
}

static ct_err
op_destroy(ct_job *job, p11_session *s)
{
	size_t n;
	ct_err r = p11_destroy_label(s, job->key.label, &n);

	return r == CT_OK && n == 0 ? CT_ERR_NO_SUCH_KEY : r;
}
