/* A small fixed thread pool for the envelope's parallel frames: one batch at a time, tasks handed out
 * one by one through an atomic counter, while the caller is free to do I/O until it waits. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "envelope/pool.h"

struct ok_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_cond_t done;
    unsigned nworkers;
    pthread_t *workers;
    /* The batch in flight; written under lock before `generation` moves, read by workers after. */
    uint64_t generation;
    ok_pool_fn fn;
    void *arg;
    size_t ntasks;
    /* (generation << 32) | next task index: a worker late for a batch cannot take a task of the next
     * one, because its compare-and-swap names the generation it was started for. */
    _Atomic uint64_t next;
    size_t finished;
    int stop;
};

typedef struct {
    ok_pool *pool;
    unsigned index;
} worker_arg;

static size_t run_tasks(ok_pool *p, uint64_t generation, ok_pool_fn fn, void *arg, size_t ntasks, unsigned worker)
{
    size_t count = 0;
    uint64_t tag = (generation & 0xFFFFFFFFu) << 32;
    for (;;) {
        uint64_t v = atomic_load(&p->next);
        if ((v & ~0xFFFFFFFFull) != tag || (v & 0xFFFFFFFFu) >= ntasks)
            return count;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1))
            continue;
        fn(arg, (size_t)(v & 0xFFFFFFFFu), worker);
        count++;
    }
}

static void *worker_main(void *argp)
{
    worker_arg *wa = argp;
    ok_pool *p = wa->pool;
    unsigned index = wa->index;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        ok_pool_fn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->lock);
        size_t n = run_tasks(p, seen, fn, arg, ntasks, index);
        pthread_mutex_lock(&p->lock);
        /* A worker late for a batch took no task (n == 0) and must not touch the next batch's count. */
        if (n) {
            p->finished += n;
            if (p->finished == p->ntasks)
                pthread_cond_signal(&p->done);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ok_err ok_pool_new(ok_pool **out, unsigned workers)
{
    ok_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc(workers ? workers : 1, sizeof *p->workers);
    if (!p->workers) {
        ok_pool_free(p);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    for (unsigned i = 0; i < workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            ok_pool_free(p);
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        }
        wa->pool = p;
        wa->index = i + 1;
        if (pthread_create(&p->workers[i], NULL, worker_main, wa) != 0) {
            free(wa);
            ok_pool_free(p);
            return ok_fail(OK_ERR_NOMEM, "cannot start worker thread");
        }
        p->nworkers++;
    }
    *out = p;
    return OK_OK;
}

void ok_pool_start(ok_pool *p, ok_pool_fn fn, void *arg, size_t n)
{
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = n;
    p->finished = 0;
    p->generation++;
    atomic_store(&p->next, (p->generation & 0xFFFFFFFFu) << 32);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void ok_pool_wait(ok_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->finished != p->ntasks)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void ok_pool_free(ok_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
