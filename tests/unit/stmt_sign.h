/* stmt_sign.h: custodian card keys made in-process, and the signature a
 * card makes over a statement and decision (docs: ct_stmt.h), for the
 * statement and governance tests (static functions: one test file per
 * binary uses it). */
#ifndef STMT_SIGN_H
#define STMT_SIGN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "custodian/ct_stmt.h"

/* An EC P-256 key ("ec") or an RSA-2048 key ("rsa"); aborts the test on
 * failure. */
static EVP_PKEY *
card_key(const char *kind)
{
	EVP_PKEY *k = kind[0] == 'e' ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	assert_non_null(k);
	return k;
}

/* What a card signs for this decision: ECDSA-SHA256 (DER) for EC keys,
 * PKCS#1 v1.5 with SHA-256 for RSA keys, or RSA-PSS when pss is set (a
 * scheme the daemon must refuse).  *sig is malloc'd. */
static void
card_sign_with(EVP_PKEY *k, const char *text, size_t len, bool approve,
	       bool pss, uint8_t **sig, size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t *msg;
	size_t mlen;

	assert_non_null(md);
	assert_int_equal(ct_stmt_signed_bytes(text, len, approve, &msg, &mlen),
	    CT_OK);
	assert_int_equal(EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k), 1);
	if (pss)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_DigestSign(md, NULL, siglen, msg, mlen), 1);
	*sig = malloc(*siglen);
	assert_non_null(*sig);
	assert_int_equal(EVP_DigestSign(md, *sig, siglen, msg, mlen), 1);
	EVP_MD_CTX_free(md);
	free(msg);
}

static void
card_sign(EVP_PKEY *k, const char *text, size_t len, bool approve,
	  uint8_t **sig, size_t *siglen)
{
	card_sign_with(k, text, len, approve, false, sig, siglen);
}

/* The public half as a PEM file at path (what a policy's public_key names). */
static void
write_public_pem(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	assert_int_equal(fclose(f), 0);
}

#endif
