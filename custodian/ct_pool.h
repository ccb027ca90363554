/* ct_pool.h: the token workers.
 *
 * Blocking PKCS#11 calls never run on the event loop: each worker thread
 * owns one session per token (opened on first use, re-opened by the token
 * layer when lost) and runs jobs from a shared queue.  Finished jobs go to
 * a done queue and the pool writes to an eventfd that the event loop polls.
 */
#ifndef CT_POOL_H
#define CT_POOL_H

#include "custodian/ct_ops.h"

typedef struct ct_pool ct_pool;

/* tokens[i] is the policy's token i; the array must outlive the pool. */
ct_err ct_pool_start(p11_token *const *tokens, size_t n_tokens,
		     unsigned n_workers, ct_pool **out) CT_WUR;
/* Stop after the queued jobs are done, join the threads and free the pool.
 * Returns the finished jobs not yet taken (as ct_pool_take_done), which
 * the caller now owns.  NULL pool is fine. */
ct_job *ct_pool_stop(ct_pool *pool);

/* The fd that becomes readable when jobs are done (do not read it). */
int ct_pool_fd(const ct_pool *pool);
/* Queue a job (ownership passes to the pool until it is taken back). */
void ct_pool_submit(ct_pool *pool, ct_job *job);
/* Take every finished job, oldest first, as a list linked by job->next. */
ct_job *ct_pool_take_done(ct_pool *pool);

#endif
