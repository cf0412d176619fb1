/* A small fixed thread pool for the envelope's parallel frames: one batch at a time, tasks handed out
 * one by one through an atomic counter. The caller starts a batch, is free to do I/O, and then helps
 * finish it in ok_pool_wait. Workers and the waiter spin briefly before sleeping: batches follow each
 * other within microseconds, and a sleep/wake pair per batch costs more than the spin. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "envelope/pool.h"

#define SPIN_ROUNDS 2000 /* about 20 microseconds of pause instructions */

struct ok_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_cond_t done;
    unsigned nworkers;
    pthread_t *workers;
    /* The batch in flight: fn, arg and ntasks are written before `generation` moves. */
    ok_pool_fn fn;
    void *arg;
    size_t ntasks;
    _Atomic uint64_t generation;
    /* (generation << 32) | next task index: a worker late for a batch cannot take a task of the next
     * one, because its compare-and-swap names the generation it was started for. */
    _Atomic uint64_t next;
    _Atomic size_t finished;
    _Atomic int stop;
};

typedef struct {
    ok_pool *pool;
    unsigned index;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

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

/* Counts n finished tasks and wakes the waiter when the batch is complete. */
static void finish(ok_pool *p, size_t n, size_t ntasks)
{
    if (n && atomic_fetch_add(&p->finished, n) + n == ntasks) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
}

static void *worker_main(void *argp)
{
    worker_arg *wa = argp;
    ok_pool *p = wa->pool;
    unsigned index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->generation) == seen && !atomic_load(&p->stop); i++)
            cpu_relax();
        if (atomic_load(&p->generation) == seen) {
            pthread_mutex_lock(&p->lock);
            while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->work, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = atomic_load(&p->generation);
        ok_pool_fn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        finish(p, run_tasks(p, seen, fn, arg, ntasks, index), ntasks);
    }
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
    atomic_store(&p->finished, 0);
    uint64_t generation = atomic_load(&p->generation) + 1;
    atomic_store(&p->next, (generation & 0xFFFFFFFFu) << 32);
    atomic_store(&p->generation, generation);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void ok_pool_wait(ok_pool *p)
{
    size_t ntasks = p->ntasks;
    finish(p, run_tasks(p, atomic_load(&p->generation), p->fn, p->arg, ntasks, 0), ntasks);
    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->finished) != ntasks; i++)
        cpu_relax();
    if (atomic_load(&p->finished) == ntasks)
        return;
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->finished) != ntasks)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void ok_pool_free(ok_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
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
