/* ct_pool.c: token worker threads. */
#include "custodian/ct_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
	ct_job *head, *tail;
} jobq;

struct ct_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	jobq todo, done;
	bool stopping;
	int efd;
	p11_token *const *tokens;
	size_t n_tokens;
	pthread_t *threads;
	unsigned n_threads;
};

static void
q_push(jobq *q, ct_job *job)
{
	job->next = NULL;
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
}

static ct_job *
q_pop(jobq *q)
{
	ct_job *job = q->head;

	if (job != NULL) {
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
		job->next = NULL;
	}
	return job;
}

static void
run_job(ct_pool *pool, p11_session **sess, ct_job *job)
{
	ct_err r;

	if (sess[job->token] == NULL &&
	    (r = p11_session_open(pool->tokens[job->token], &sess[job->token])) != CT_OK) {
		job->err = r == CT_ERR_PIN ? r : CT_ERR_TOKEN_UNAVAILABLE;
		snprintf(job->msg, sizeof(job->msg), "cannot open a session on "
		    "the token: %s", ct_strerror(r));
		return;
	}
	ct_ops_run(job, sess[job->token]);
}

static void *
worker(void *arg)
{
	ct_pool *pool = arg;
	p11_session **sess;
	uint64_t one = 1;
	ct_job *job;
	size_t i;

	sess = calloc(pool->n_tokens, sizeof(*sess));
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->todo.head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if ((job = q_pop(&pool->todo)) == NULL)
			break; /* stopping and nothing left */
		pthread_mutex_unlock(&pool->lock);
		if (sess == NULL) {
			job->err = CT_ERR_NOMEM;
			snprintf(job->msg, sizeof(job->msg), "out of memory");
		} else
			run_job(pool, sess, job);
		pthread_mutex_lock(&pool->lock);
		/* One wake-up per list the main thread takes: it takes all. */
		if (pool->done.head == NULL)
			(void)!write(pool->efd, &one, sizeof(one));
		q_push(&pool->done, job);
	}
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; sess != NULL && i < pool->n_tokens; i++)
		p11_session_free(sess[i]);
	free(sess);
	return NULL;
}

ct_err
ct_pool_start(p11_token *const *tokens, size_t n_tokens, unsigned n_workers,
	      ct_pool **out)
{
	ct_pool *pool;

	*out = NULL;
	if (n_workers == 0 || (pool = calloc(1, sizeof(*pool))) == NULL)
		return CT_ERR_NOMEM;
	pool->tokens = tokens;
	pool->n_tokens = n_tokens;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	if ((pool->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    (pool->threads = calloc(n_workers, sizeof(*pool->threads))) == NULL) {
		(void)ct_pool_stop(pool);
		return CT_ERR_NOMEM;
	}
	for (; pool->n_threads < n_workers; pool->n_threads++) {
		if (pthread_create(&pool->threads[pool->n_threads], NULL, worker,
		    pool) != 0) {
			(void)ct_pool_stop(pool);
			return CT_ERR_INTERNAL;
		}
	}
	*out = pool;
	return CT_OK;
}

ct_job *
ct_pool_stop(ct_pool *pool)
{
	ct_job *left;
	unsigned i;

	if (pool == NULL)
		return NULL;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->n_threads; i++)
		pthread_join(pool->threads[i], NULL);
	left = pool->done.head;
	if (pool->efd != -1)
		close(pool->efd);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
	return left;
}

int
ct_pool_fd(const ct_pool *pool)
{
	return pool->efd;
}

void
ct_pool_submit(ct_pool *pool, ct_job *job)
{
	pthread_mutex_lock(&pool->lock);
	q_push(&pool->todo, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

ct_job *
ct_pool_take_done(ct_pool *pool)
{
	uint64_t n;
	ct_job *list;

	pthread_mutex_lock(&pool->lock);
	/* Reset the counter under the lock, so no completion is missed. */
	(void)!read(pool->efd, &n, sizeof(n));
	list = pool->done.head;
	pool->done.head = pool->done.tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	return list;
}
