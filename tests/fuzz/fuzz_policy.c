/* fuzz_policy.c: the policy loader (YAML to pol_policy).
 *
 * The input is a whole policy document.  A document that loads must keep
 * every promise of pol.h and docs/policy.md (the checks below); one that
 * does not must leave a "fuzz.yaml:LINE:COL: message" without control
 * characters.  The lookups the daemon makes per request (pol_find_key,
 * pol_peer_ops, pol_peer_known) run on every loaded policy.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "tests/fuzz/fuzz.h"
#include "custodian/ct_util.h"
#include "policy/pol.h"



#define NAME "fuzz.yaml"
#define SUN_PATH_MAX 107

static int
absolute(const char *s)
{
	return s != NULL && s[0] == '/';
}

static void
check_token(const pol_policy *p, const pol_token *t)
{
	CHECK(ct_valid_name(t->name, POL_NAME_MAX));
	CHECK(pol_find_token(p, t->name) == t); /* names are unique */
	CHECK(absolute(t->module));
	CHECK((t->label != NULL) != (t->uri != NULL));
	if (t->label != NULL)
		CHECK(t->label[0] != '\0' && strlen(t->label) <= 32);
	else
		CHECK(strncmp(t->uri, "pkcs11:", 7) == 0);
	CHECK((t->pin_file != NULL) != (t->pin_env != NULL));
	if (t->pin_file != NULL)
		CHECK(absolute(t->pin_file));
	else
		CHECK(t->pin_env[0] != '\0' &&
		      !(t->pin_env[0] >= '0' && t->pin_env[0] <= '9'));
	CHECK(t->line >= 1);
}

static void
check_expiry(const pol_policy *p, const pol_expiry *e)
{
	char buf[POL_TIME_LEN], *s;
	const char *why;
	time_t t;

	if (!e->set) {
		CHECK(e->engagement == POL_NONE);
		return;
	}
	CHECK(e->engagement == POL_NONE || e->engagement < p->n_engagements);
	if (e->engagement != POL_NONE)
		CHECK(e->until == p->engagements[e->engagement].until);
	/* Every time loaded prints and parses back to itself. */
	s = pol_time_format(e->until, buf);
	CHECK(pol_time_parse(s, strlen(s), &t, &why) == CT_OK && t == e->until);
	CHECK(!pol_expired(e, e->until - 1) && pol_expired(e, e->until));
}

static void
check_key(const pol_policy *p, const pol_key *k)
{
	const pol_client *cl;
	const pol_expiry *ended;
	unsigned seen_ops, ops;
	size_t i, j;
	uid_t uid;
	gid_t gid;
	time_t now;

	CHECK(ct_valid_name(k->name, POL_NAME_MAX));
	CHECK(pol_find_key(p, k->name) == k); /* names are unique */
	CHECK(k->type >= POL_KEY_EC_P256 && k->type <= POL_KEY_AES_256);
	CHECK(strcmp(pol_key_type_name(k->type), "unknown") != 0);
	CHECK(strcmp(pol_sign_scheme_name(k->sign), "unknown") != 0);
	CHECK((k->type == POL_KEY_AES_256) == (k->sign == POL_SIGN_NONE));
	CHECK(k->type == POL_KEY_RSA_3072 || k->oaep == POL_OAEP_SHA256);
	CHECK(k->token < p->n_tokens);
	CHECK(k->n_grants == 0 || k->grants != NULL);
	for (i = 0; i < k->n_grants; i++) {
		CHECK(k->grants[i].client < p->n_clients);
		CHECK(k->grants[i].ops != 0);
		CHECK((k->grants[i].ops & ~(unsigned)POL_OP_ALL_) == 0);
		for (j = 0; j < i; j++) /* a client appears once per key */
			CHECK(k->grants[j].client != k->grants[i].client);
		/* A peer with this client's credentials holds at least what
		 * the grant says. */
		cl = &p->clients[k->grants[i].client];
		uid = cl->has_uid ? cl->uid : 4242;
		gid = cl->has_gid ? cl->gid : 4242;
		check_expiry(p, &k->grants[i].expiry);
		/* a grant never outlives its client */
		CHECK(!cl->expiry.set || (k->grants[i].expiry.set &&
		      k->grants[i].expiry.until <= cl->expiry.until));
		/* ... and holds until its last second */
		now = k->grants[i].expiry.set ? k->grants[i].expiry.until - 1 : 0;
		ops = pol_peer_ops(p, k, uid, gid, now);
		CHECK((ops & k->grants[i].ops) == k->grants[i].ops);
		CHECK(pol_peer_known(p, uid, gid, now));
		/* once it ends, what no other grant holds is reported expired */
		if (k->grants[i].expiry.set) {
			now = k->grants[i].expiry.until;
			ops = pol_peer_ops(p, k, uid, gid, now);
			for (seen_ops = k->grants[i].ops & ~ops; seen_ops != 0;
			     seen_ops &= seen_ops - 1)
				CHECK(pol_peer_expired(p, k, uid, gid,
				      seen_ops & -seen_ops, now, &cl, &ended) &&
				      pol_expired(ended, now));
		}
		for (seen_ops = k->grants[i].ops; seen_ops != 0;
		     seen_ops &= seen_ops - 1) {
			unsigned bit = seen_ops & -seen_ops;

			CHECK(pol_op_from_name(pol_op_name(bit)) == bit);
		}
	}
	/* (uid_t)-1 is never an identity, so it holds nothing by uid. */
	(void)pol_peer_ops(p, k, (uid_t)-1, (gid_t)-1, 0);
	CHECK(k->line >= 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char err[512];
	pol_policy *p = (pol_policy *)data; /* must be overwritten */
	size_t i;
	ct_err r;

	err[0] = '\0';
	r = pol_load_buffer(NAME, data, size, &p, err, sizeof(err));
	if (r != CT_OK) {
		CHECK(p == NULL);
		CHECK(r == CT_ERR_POLICY || r == CT_ERR_IO || r == CT_ERR_NOMEM);
		CHECK(strncmp(err, NAME ":", sizeof(NAME)) == 0);
		for (i = 0; err[i] != '\0'; i++)
			CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
		/* Lookups on no policy find nothing. */
		CHECK(pol_find_key(NULL, "k") == NULL);
		CHECK(pol_peer_ops(NULL, NULL, 0, 0, 0) == 0);
		return 0;
	}
	CHECK(p != NULL);
	CHECK(strcmp(p->path, NAME) == 0);
	CHECK(SHA256(data, size, digest) != NULL);
	CHECK(memcmp(digest, p->digest, sizeof(digest)) == 0);
	CHECK(p->workers >= 1 && p->workers <= 64);
	CHECK(p->socket == NULL ||
	      (absolute(p->socket) && strlen(p->socket) <= SUN_PATH_MAX));
	CHECK(p->audit_log == NULL || absolute(p->audit_log));
	CHECK(p->n_tokens >= 1);
	for (i = 0; i < p->n_tokens; i++)
		check_token(p, &p->tokens[i]);
	for (i = 0; i < p->n_clients; i++) {
		const pol_client *cl = &p->clients[i];

		CHECK(ct_valid_name(cl->name, POL_NAME_MAX));
		CHECK(cl->has_uid || cl->has_gid);
		CHECK(!cl->has_uid || cl->uid != (uid_t)-1);
		CHECK(!cl->has_gid || cl->gid != (gid_t)-1);
		check_expiry(p, &cl->expiry);
	}
	for (i = 0; i < p->n_engagements; i++) {
		const pol_engagement *e = &p->engagements[i];

		CHECK(ct_valid_name(e->name, POL_NAME_MAX));
		CHECK(e->description == NULL || e->description[0] != '\0');
		CHECK(e->until >= 0 && e->line >= 1);
	}
	for (i = 0; i < p->n_keys; i++)
		check_key(p, &p->keys[i]);
	/* A name no key can have, and names of other sections. */
	CHECK(pol_find_key(p, "no such key") == NULL);
	if (p->n_tokens > 0)
		(void)pol_find_key(p, p->tokens[0].name);
	(void)pol_peer_known(p, 0, 0, 0);
	pol_free(p);
	return 0;
}
