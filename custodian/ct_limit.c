/* ct_limit.c: abuse limits per client identity (see ct_limit.h). */
#include "custodian/ct_limit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull

struct ct_limit_entry {
	char key[CT_LIMIT_KEY_MAX + 1];
	pol_limits lim;
	uint64_t tat;		/* GCRA: when the bucket would be full again */
	unsigned conns;
	bool in_episode;
	uint64_t last_refusal;
	ct_limit_counts refused; /* in the current episode */
};

struct ct_limiter {
	ct_limit_entry **e;
	size_t n, cap, max;
};

ct_err
ct_limiter_new(size_t max_entries, ct_limiter **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return CT_ERR_NOMEM;
	(*out)->max = max_entries;
	return CT_OK;
}

void
ct_limiter_free(ct_limiter *lm)
{
	size_t i;

	if (lm == NULL)
		return;
	for (i = 0; i < lm->n; i++)
		free(lm->e[i]);
	free(lm->e);
	free(lm);
}

static const pol_limits *
limits_for(const pol_policy *p, const char *key, const pol_limits *old)
{
	size_t i;

	if (strncmp(key, "client:", 7) != 0)
		return &p->unknown_limits;
	for (i = 0; i < p->n_clients; i++)
		if (strcmp(p->clients[i].name, key + 7) == 0)
			return &p->clients[i].limits;
	return old;
}

ct_limit_entry *
ct_limiter_peer(ct_limiter *lm, const pol_policy *p, uid_t uid, gid_t gid,
		time_t now)
{
	const pol_client *cl = pol_peer_client(p, uid, gid, now);
	char key[CT_LIMIT_KEY_MAX + 1];
	ct_limit_entry *e, **ne;
	size_t i, ncap;

	if (cl != NULL)
		snprintf(key, sizeof(key), "client:%s", cl->name);
	else
		snprintf(key, sizeof(key), "uid:%lu", (unsigned long)uid);
	for (i = 0; i < lm->n; i++)
		if (strcmp(lm->e[i]->key, key) == 0)
			return lm->e[i];
	if (lm->n == lm->max)
		return NULL;
	if (lm->n == lm->cap) {
		ncap = lm->cap ? lm->cap * 2 : 16;
		if ((ne = realloc(lm->e, ncap * sizeof(*ne))) == NULL)
			return NULL;
		lm->e = ne;
		lm->cap = ncap;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, sizeof(key));
	e->lim = cl != NULL ? cl->limits : p->unknown_limits;
	lm->e[lm->n++] = e;
	return e;
}

void
ct_limiter_reload(ct_limiter *lm, const pol_policy *p)
{
	size_t i;

	for (i = 0; i < lm->n; i++)
		lm->e[i]->lim = *limits_for(p, lm->e[i]->key, &lm->e[i]->lim);
}

/* GCRA: admit when the bucket is not yet `burst - 1` intervals ahead. */
static bool
rate_admits(ct_limit_entry *e, uint64_t now)
{
	uint64_t t, tau;

	if (e->lim.rate == 0)
		return true;
	t = NS_PER_S / e->lim.rate;
	tau = (uint64_t)(e->lim.burst - 1) * t;
	if (e->tat > now && e->tat - now > tau)
		return false;
	e->tat = (e->tat > now ? e->tat : now) + t;
	return true;
}

/* Count a refusal into the episode, or end a quiet episode on admission. */
static ct_limit_verdict
verdict(ct_limit_entry *e, bool admit, uint64_t now, uint64_t *counter,
	ct_limit_counts *ended)
{
	memset(ended, 0, sizeof(*ended));
	if (!admit) {
		(*counter)++;
		e->last_refusal = now;
		if (e->in_episode)
			return CT_LIMIT_REFUSE;
		e->in_episode = true;
		return CT_LIMIT_REFUSE_FIRST;
	}
	if (e->in_episode && now >= e->last_refusal &&
	    now - e->last_refusal >= CT_LIMIT_QUIET_NS) {
		*ended = e->refused;
		memset(&e->refused, 0, sizeof(e->refused));
		e->in_episode = false;
	}
	return CT_LIMIT_ADMIT;
}

ct_limit_verdict
ct_limit_request(ct_limit_entry *e, uint64_t now_ns, ct_limit_counts *ended)
{
	return verdict(e, rate_admits(e, now_ns), now_ns, &e->refused.requests,
	    ended);
}

ct_limit_verdict
ct_limit_connect(ct_limit_entry *e, uint64_t now_ns, ct_limit_counts *ended)
{
	bool admit = e->conns < e->lim.connections;

	if (admit)
		e->conns++;
	return verdict(e, admit, now_ns, &e->refused.connections, ended);
}

void
ct_limit_disconnect(ct_limit_entry *e)
{
	if (e != NULL && e->conns > 0)
		e->conns--;
}

const char *
ct_limit_identity(const ct_limit_entry *e)
{
	return e->key;
}

const pol_limits *
ct_limit_limits(const ct_limit_entry *e)
{
	return &e->lim;
}

unsigned
ct_limit_connections(const ct_limit_entry *e)
{
	return e->conns;
}
