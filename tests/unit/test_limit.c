/* test_limit.c: the per-identity limiter, with time passed in (no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "custodian/ct_limit.h"

#define MS 1000000ull
#define S (1000 * MS)
#define T0 (1000 * S) /* a monotonic clock far from zero */

static pol_policy *
load(const char *doc)
{
	char err[256];
	pol_policy *p = NULL;

	if (pol_load_buffer("limits.yaml", doc, strlen(doc), &p, err,
	    sizeof(err)) != CT_OK)
		fail_msg("%s", err);
	return p;
}

static const char doc[] =
	"version: 1\n"
	"service:\n"
	"  unknown_limits: {rate: 1, burst: 2, connections: 1}\n"
	"tokens: [{name: t, module: /m.so, label: l, pin_env: P}]\n"
	"clients:\n"
	"  - {name: slow, uid: 100, limits: {rate: 10, burst: 5, connections: 2}}\n"
	"  - {name: team, gid: 500}\n"
	"  - {name: free, uid: 300, limits: {rate: 0}}\n"
	"keys: []\n";

/* A limiter over doc and the entry of peer uid/gid. */
static ct_limit_entry *
entry(pol_policy **p, ct_limiter **lm, uid_t uid, gid_t gid)
{
	ct_limit_entry *e;

	*p = load(doc);
	assert_int_equal(ct_limiter_new(16, lm), CT_OK);
	assert_non_null(e = ct_limiter_peer(*lm, *p, uid, gid, 0));
	return e;
}

static void
test_burst_then_rate(void **state)
{
	ct_limit_counts ended;
	ct_limiter *lm;
	pol_policy *p;
	ct_limit_entry *e = entry(&p, &lm, 100, 100);
	int i;

	assert_string_equal(ct_limit_identity(e), "client:slow");
	/* burst 5 at one instant, then refused: the first refusal says so. */
	for (i = 0; i < 5; i++)
		assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_REFUSE_FIRST);
	assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_REFUSE);
	/* rate 10/s: one more every 100 ms, not sooner. */
	assert_int_equal(ct_limit_request(e, T0 + 99 * MS, &ended),
	    CT_LIMIT_REFUSE);
	assert_int_equal(ct_limit_request(e, T0 + 100 * MS, &ended),
	    CT_LIMIT_ADMIT);
	assert_int_equal(ended.requests, 0); /* refused 99 ms ago: not over */
	assert_int_equal(ct_limit_request(e, T0 + 100 * MS, &ended),
	    CT_LIMIT_REFUSE);
	/* 10 s at 10/s: 100 admitted, no more; the quiet time between
	 * ended the episode, so the next refusal starts a new one. */
	for (i = 0; i < 100; i++)
		assert_int_equal(ct_limit_request(e, T0 + 200 * MS +
		    (uint64_t)i * 100 * MS, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_request(e, T0 + 200 * MS + 99 * 100 * MS,
	    &ended), CT_LIMIT_REFUSE_FIRST);
	ct_limiter_free(lm);
	pol_free(p);
}

/* An episode ends at the first admission a quiet second after its last
 * refusal, and hands back what it refused. */
static void
test_episode(void **state)
{
	ct_limit_counts ended;
	ct_limiter *lm;
	pol_policy *p;
	ct_limit_entry *e = entry(&p, &lm, 100, 0);
	int i;

	for (i = 0; i < 5; i++)
		assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_ADMIT);
	/* A sustained flood: one line for the whole episode. */
	assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_REFUSE_FIRST);
	for (i = 1; i < 1000; i++)
		assert_int_not_equal(ct_limit_request(e, T0 + (uint64_t)i * MS,
		    &ended), CT_LIMIT_REFUSE_FIRST);
	assert_int_equal(ct_limit_connect(e, T0 + 999 * MS, &ended),
	    CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_connect(e, T0 + 999 * MS, &ended),
	    CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_connect(e, T0 + 999 * MS, &ended),
	    CT_LIMIT_REFUSE);
	/* 1.5 s later: admitted, and the episode's counts come back. */
	assert_int_equal(ct_limit_request(e, T0 + 2500 * MS, &ended),
	    CT_LIMIT_ADMIT);
	assert_int_equal(ended.requests, 1000 - 10 + 1);
	assert_int_equal(ended.connections, 1);
	assert_int_equal(ct_limit_request(e, T0 + 2500 * MS, &ended),
	    CT_LIMIT_ADMIT);
	assert_int_equal(ended.requests, 0);
	/* A new episode is reported again. */
	for (i = 0; i < 3; i++)
		assert_int_equal(ct_limit_request(e, T0 + 2500 * MS, &ended),
		    CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_request(e, T0 + 2500 * MS, &ended),
	    CT_LIMIT_REFUSE_FIRST);
	ct_limiter_free(lm);
	pol_free(p);
}

static void
test_connections(void **state)
{
	pol_policy *p = load(doc);
	ct_limit_counts ended;
	ct_limit_entry *e, *u;
	ct_limiter *lm;

	assert_int_equal(ct_limiter_new(16, &lm), CT_OK);
	e = ct_limiter_peer(lm, p, 100, 0, 0);
	assert_int_equal(ct_limit_connect(e, T0, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_connect(e, T0, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_connect(e, T0, &ended), CT_LIMIT_REFUSE_FIRST);
	assert_int_equal(ct_limit_connections(e), 2);
	ct_limit_disconnect(e);
	assert_int_equal(ct_limit_connect(e, T0, &ended), CT_LIMIT_ADMIT);
	/* Unknown peers: one connection each, per uid. */
	assert_non_null(u = ct_limiter_peer(lm, p, 4242, 4242, 0));
	assert_string_equal(ct_limit_identity(u), "uid:4242");
	assert_int_equal(ct_limit_connect(u, T0, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_connect(u, T0, &ended), CT_LIMIT_REFUSE_FIRST);
	assert_int_equal(ct_limit_connect(ct_limiter_peer(lm, p, 4243, 0, 0), T0,
	    &ended), CT_LIMIT_ADMIT);
	ct_limit_disconnect(u);
	ct_limit_disconnect(u);
	assert_int_equal(ct_limit_connections(u), 0);
	ct_limit_disconnect(NULL);
	ct_limiter_free(lm);
	pol_free(p);
}

static void
test_identities(void **state)
{
	pol_policy *p = load(doc);
	ct_limit_counts ended;
	ct_limit_entry *a, *f;
	ct_limiter *lm;
	int i;

	assert_int_equal(ct_limiter_new(3, &lm), CT_OK);
	/* Two users of one group share the group's entry. */
	a = ct_limiter_peer(lm, p, 7, 500, 0);
	assert_string_equal(ct_limit_identity(a), "client:team");
	assert_ptr_equal(ct_limiter_peer(lm, p, 8, 500, 0), a);
	assert_int_equal(ct_limit_limits(a)->connections, 2048);
	/* rate 0: no rate limit. */
	f = ct_limiter_peer(lm, p, 300, 0, 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(ct_limit_request(f, T0, &ended), CT_LIMIT_ADMIT);
	/* The table is bounded: a new identity past it gets no entry. */
	assert_non_null(ct_limiter_peer(lm, p, 9000, 0, 0));
	assert_null(ct_limiter_peer(lm, p, 9001, 0, 0));
	assert_ptr_equal(ct_limiter_peer(lm, p, 9000, 0, 0),
	    ct_limiter_peer(lm, p, 9000, 1, 0));
	ct_limiter_free(lm);
	ct_limiter_free(NULL);
	pol_free(p);
}

/* A reload changes limits and keeps the state. */
static void
test_reload(void **state)
{
	pol_policy *p = load(doc), *q;
	ct_limit_counts ended;
	ct_limit_entry *e, *u;
	ct_limiter *lm;

	q = load("version: 1\n"
		 "service: {unknown_limits: {connections: 3}}\n"
		 "tokens: [{name: t, module: /m.so, label: l, pin_env: P}]\n"
		 "clients: [{name: slow, uid: 100, limits: {rate: 1, burst: 1}}]\n"
		 "keys: []\n");
	assert_int_equal(ct_limiter_new(16, &lm), CT_OK);
	e = ct_limiter_peer(lm, p, 100, 0, 0);
	u = ct_limiter_peer(lm, p, 4242, 0, 0);
	assert_int_equal(ct_limit_connect(e, T0, &ended), CT_LIMIT_ADMIT);
	assert_non_null(ct_limiter_peer(lm, p, 8, 500, 0)); /* team: gone in q */
	ct_limiter_reload(lm, q);
	assert_int_equal(ct_limit_limits(e)->rate, 1);
	assert_int_equal(ct_limit_limits(e)->burst, 1);
	assert_int_equal(ct_limit_connections(e), 1);
	assert_int_equal(ct_limit_limits(u)->connections, 3);
	assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_ADMIT);
	assert_int_equal(ct_limit_request(e, T0, &ended), CT_LIMIT_REFUSE_FIRST);
	/* team's peers are unknown now: their uid is the identity. */
	assert_string_equal(ct_limit_identity(ct_limiter_peer(lm, q, 8, 500, 0)),
	    "uid:8");
	ct_limiter_free(lm);
	pol_free(p);
	pol_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_episode),
		cmocka_unit_test(test_connections),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
