/* load.c: the one load loop of bench, for every target. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

/* Latencies kept per run over all threads (16 MiB); past a thread's share
 * it keeps a uniform sample (reservoir), so memory stays bounded whatever
 * the rate. */
#define SAMPLES_MAX (2u << 20)

/* Threads start issuing together, once all have opened their state. */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready;
	bool go;
} gate;

typedef struct {
	const bench_target *t;
	gate *g;
	atomic_bool *stop;
	uint64_t *lat;		/* ns; this thread's slice */
	size_t cap, kept;
	uint64_t ops, max_ns, last_ns, rng;
	ct_err r;
	char err[BENCH_ERR_MAX];
} worker;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
sample(worker *w, uint64_t ns)
{
	uint64_t j;

	w->ops++;
	if (ns > w->max_ns)
		w->max_ns = ns;
	if (w->kept < w->cap) {
		w->lat[w->kept++] = ns;
		return;
	}
	/* Algorithm R: each of the ops latencies is kept with equal odds. */
	if ((j = xorshift(&w->rng) % w->ops) < w->cap)
		w->lat[j] = ns;
}

static void *
worker_main(void *p)
{
	worker *w = p;
	void *st = NULL;
	uint64_t t0, t1;

	w->r = w->t->ops->open(w->t->arg, &st, w->err, sizeof(w->err));
	if (w->r != CT_OK)
		atomic_store(w->stop, true);
	pthread_mutex_lock(&w->g->mu);
	w->g->ready++;
	pthread_cond_broadcast(&w->g->cv);
	while (!w->g->go)
		pthread_cond_wait(&w->g->cv, &w->g->mu);
	pthread_mutex_unlock(&w->g->mu);
	while (w->r == CT_OK && !atomic_load_explicit(w->stop,
	    memory_order_relaxed)) {
		t0 = now_ns();
		if ((w->r = w->t->ops->issue(st, w->err, sizeof(w->err))) != CT_OK)
			break;
		t1 = now_ns();
		sample(w, t1 - t0);
		w->last_ns = t1;
	}
	/* A broken reply ends the run for every thread. */
	if (w->r != CT_OK)
		atomic_store(w->stop, true);
	if (st != NULL)
		w->t->ops->close(st);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p of the samples at or
 * below it. */
static double
percentile_us(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)(p * (double)n + 0.999999);

	if (n == 0)
		return 0;
	return (double)v[rank > 0 ? rank - 1 : 0] / 1e3;
}

static void
sleep_until(uint64_t deadline, atomic_bool *stop)
{
	struct timespec ts;
	uint64_t t, step;

	/* Short naps: a failing thread stops the run early. */
	while (!atomic_load(stop) && (t = now_ns()) < deadline) {
		step = deadline - t < 50000000u ? deadline - t : 50000000u;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)step;
		nanosleep(&ts, NULL);
	}
}

ct_err
load_run(const bench_target *t, int conc, double secs, bench_result *out,
	 char *err, size_t errlen)
{
	gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false };
	atomic_bool stop = false;
	worker *ws = NULL;
	pthread_t *tids = NULL;
	uint64_t *lat = NULL, start, end = 0;
	size_t cap, n = 0;
	int i, started, rc;
	ct_err r = CT_ERR_NOMEM;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (conc < 1)
		return CT_ERR_BAD_REQUEST;
	cap = SAMPLES_MAX / (size_t)conc;
	if ((ws = calloc((size_t)conc, sizeof(*ws))) == NULL ||
	    (tids = calloc((size_t)conc, sizeof(*tids))) == NULL ||
	    (lat = malloc(cap * (size_t)conc * sizeof(*lat))) == NULL)
		goto out;
	for (started = 0; started < conc; started++) {
		worker *w = &ws[started];
		w->t = t;
		w->g = &g;
		w->stop = &stop;
		w->lat = lat + cap * (size_t)started;
		w->cap = cap;
		w->rng = 0x9e3779b97f4a7c15u * (uint64_t)(started + 1);
		if ((rc = pthread_create(&tids[started], NULL, worker_main, w)) != 0) {
			w->r = CT_ERR_INTERNAL;
			snprintf(w->err, sizeof(w->err), "pthread_create: %s",
			    strerror(rc));
			atomic_store(&stop, true);
			break;
		}
	}
	pthread_mutex_lock(&g.mu);
	while (g.ready < started)
		pthread_cond_wait(&g.cv, &g.mu);
	g.go = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	start = now_ns();
	sleep_until(start + (uint64_t)(secs * 1e9), &stop);
	atomic_store(&stop, true);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	r = CT_OK;
	for (i = 0; i < conc; i++) {
		if (ws[i].r != CT_OK && r == CT_OK) {
			r = ws[i].r;
			snprintf(err, errlen, "%s", ws[i].err);
		}
		out->ops += ws[i].ops;
		if ((double)ws[i].max_ns / 1e3 > out->max_us)
			out->max_us = (double)ws[i].max_ns / 1e3;
		if (ws[i].last_ns > end)
			end = ws[i].last_ns;
		memmove(lat + n, ws[i].lat, ws[i].kept * sizeof(*lat));
		n += ws[i].kept;
	}
	if (r != CT_OK)
		goto out;
	/* The window ends with the last answer, which may come after stop. */
	out->secs = end > start ? (double)(end - start) / 1e9 : 0;
	out->ops_s = out->secs > 0 ? (double)out->ops / out->secs : 0;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	out->p50_us = percentile_us(lat, n, 0.50);
	out->p99_us = percentile_us(lat, n, 0.99);
 out:
	free(lat);
	free(tids);
	free(ws);
	return r;
}
