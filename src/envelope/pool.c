/* A small fixed thread pool for the envelope's parallel frames: one batch at a time, tasks handed out
 * one by one through an atomic counter, the caller working alongside. */
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
    /* The current batch. */
    uint64_t generation;
    ok_pool_fn fn;
    void *arg;
    size_t ntasks;
    atomic_size_t next;
    size_t finished;
    int stop;
};

typedef struct {
    ok_pool *pool;
    unsigned index;
} worker_arg;

static size_t run_tasks(ok_pool *p, unsigned worker)
{
    size_t count = 0;
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->ntasks)
            return count;
        p->fn(p->arg, t, worker);
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
        pthread_mutex_unlock(&p->lock);
        size_t n = run_tasks(p, index);
        pthread_mutex_lock(&p->lock);
        p->finished += n;
        if (p->finished == p->ntasks)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ok_err ok_pool_new(ok_pool **out, unsigned threads)
{
    ok_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    unsigned want = threads > 1 ? threads - 1 : 0;
    p->workers = want ? calloc(want, sizeof *p->workers) : NULL;
    if (want && !p->workers) {
        ok_pool_free(p);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    for (unsigned i = 0; i < want; i++) {
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

void ok_pool_run(ok_pool *p, ok_pool_fn fn, void *arg, size_t n)
{
    if (n == 0)
        return;
    if (p->nworkers == 0 || n == 1) {
        for (size_t t = 0; t < n; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = n;
    p->finished = 0;
    atomic_store(&p->next, 0);
    p->generation++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);

    size_t mine = run_tasks(p, 0);

    pthread_mutex_lock(&p->lock);
    p->finished += mine;
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
