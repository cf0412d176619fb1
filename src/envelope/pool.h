/* Internal to the envelope: a small fixed thread pool that runs one batch of tasks at a time, with the
 * calling thread taking part. */
#ifndef OWNKEY_ENVELOPE_POOL_H
#define OWNKEY_ENVELOPE_POOL_H

#include "ownkey/util.h"

typedef struct ok_pool ok_pool;
/* task is the task index (0..n-1); worker is the index of the running thread (0 = the caller). */
typedef void (*ok_pool_fn)(void *arg, size_t task, unsigned worker);

/* A pool of `threads` threads in all: threads - 1 workers plus the caller. */
ok_err ok_pool_new(ok_pool **out, unsigned threads);
/* Runs fn for tasks 0..n-1 across the pool and returns when all are done. */
void ok_pool_run(ok_pool *p, ok_pool_fn fn, void *arg, size_t n);
void ok_pool_free(ok_pool *p);

#endif
