/* Internal to the envelope: a small fixed thread pool that runs one batch of tasks at a time. A batch is
 * started and waited for, so that the caller can do I/O while the workers compute. */
#ifndef OWNKEY_ENVELOPE_POOL_H
#define OWNKEY_ENVELOPE_POOL_H

#include "ownkey/util.h"

typedef struct ok_pool ok_pool;
/* task is the task index (0..n-1); worker is the index of the running thread: 1..workers for the pool's
 * workers, 0 for the caller helping in ok_pool_wait. */
typedef void (*ok_pool_fn)(void *arg, size_t task, unsigned worker);

ok_err ok_pool_new(ok_pool **out, unsigned workers);
/* Hands tasks 0..n-1 to the workers and returns at once; at most one batch is in flight. */
void ok_pool_start(ok_pool *p, ok_pool_fn fn, void *arg, size_t n);
/* Runs the batch's remaining tasks on the calling thread (as worker 0), then returns when every task of
 * the batch in flight is done. */
void ok_pool_wait(ok_pool *p);
void ok_pool_free(ok_pool *p);

#endif
