/* Opening ahead (objects_internal.h): for a long get read in order, a thread of its own reads and opens
 * the next frames of the stored envelope into DS_AHEAD_SLOTS buffers while the reader's thread sends the
 * ones already opened, so AES-GCM runs beside TLS on another core. The reader takes frames strictly in
 * order; the frame it takes is swapped with the buffer it hands back, so no plaintext is copied twice.
 * The thread stops at the final frame, at its first failure (kept, with its message, for the take of that
 * frame) or when stopped; every buffer is wiped before it is freed. Owns no decision about when to read
 * ahead (object_read.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/objects_internal.h"

struct ds_open_ahead {
    ds_frame_src src;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint8_t *slot[DS_AHEAD_SLOTS];  /* frame idx lives in slot[idx % DS_AHEAD_SLOTS] */
    size_t len[DS_AHEAD_SLOTS];
    uint8_t *wire;                  /* the thread's */
    uint64_t produced;              /* frames before this index are opened (or failed at `failed_at`) */
    uint64_t consumed;              /* the next index take() expects */
    int producer_waiting;           /* the thread waits for slots: woken once half of them are free */
    int consumer_waiting;           /* take() waits for its frame */
    int stop;
    int failed;                     /* the thread failed on frame failed_at */
    uint64_t failed_at;
    ok_err err;
    char message[256];
};

static void *ahead_main(void *arg)
{
    ds_open_ahead *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop && !a->failed && a->produced <= a->src.last) {
        if (a->produced - a->consumed >= DS_AHEAD_SLOTS) {
            /* Full: sleep until half the slots are free, not one wake-up per frame taken. */
            a->producer_waiting = 1;
            while (!a->stop && a->produced - a->consumed > DS_AHEAD_SLOTS / 2)
                pthread_cond_wait(&a->changed, &a->lock);
            a->producer_waiting = 0;
            continue;
        }
        uint64_t idx = a->produced;
        uint8_t *buf = a->slot[idx % DS_AHEAD_SLOTS];
        pthread_mutex_unlock(&a->lock);
        size_t n = 0;
        ok_err rc = ds_frame_read_open(&a->src, idx, a->wire, buf, &n);
        pthread_mutex_lock(&a->lock);
        if (rc != OK_OK) {
            a->failed = 1;
            a->failed_at = idx;
            a->err = rc;
            snprintf(a->message, sizeof a->message, "%s", ok_err_message());
        } else {
            a->len[idx % DS_AHEAD_SLOTS] = n;
            a->produced = idx + 1;
        }
        if (a->consumer_waiting || a->failed)
            pthread_cond_broadcast(&a->changed);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void ahead_free(ds_open_ahead *a)
{
    size_t F = a->src.frame_size;
    for (size_t i = 0; i < DS_AHEAD_SLOTS; i++) {
        if (a->slot[i]) {
            ok_zeroize(a->slot[i], F);
            free(a->slot[i]);
        }
    }
    free(a->wire);
    pthread_cond_destroy(&a->changed);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

ok_err ds_open_ahead_start(const ds_frame_src *src, uint64_t first, ds_open_ahead **out)
{
    *out = NULL;
    ds_open_ahead *a = calloc(1, sizeof *a);
    if (!a)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    a->src = *src;
    a->produced = a->consumed = first;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->changed, NULL);
    a->wire = malloc((size_t)src->frame_size + OK_ENV_FRAME_OVERHEAD);
    int ok = a->wire != NULL;
    for (size_t i = 0; ok && i < DS_AHEAD_SLOTS; i++)
        ok = (a->slot[i] = malloc(src->frame_size)) != NULL;
    if (!ok || pthread_create(&a->thread, NULL, ahead_main, a) != 0) {
        ahead_free(a);
        return ok_fail(OK_ERR_NOMEM, "cannot start reading ahead");
    }
    *out = a;
    return OK_OK;
}

uint64_t ds_open_ahead_next(const ds_open_ahead *a)
{
    return a->consumed; /* only take() (on the caller's thread) changes it */
}

ok_err ds_open_ahead_take(ds_open_ahead *a, uint64_t idx, uint8_t **plain, size_t *n)
{
    pthread_mutex_lock(&a->lock);
    if (idx != a->consumed) {
        pthread_mutex_unlock(&a->lock);
        return ok_fail(OK_ERR_INVALID_ARG, "frames are taken in order");
    }
    while (a->produced <= idx && !(a->failed && a->failed_at == idx)) {
        a->consumer_waiting = 1;
        pthread_cond_wait(&a->changed, &a->lock);
        a->consumer_waiting = 0;
    }
    if (a->produced <= idx) {
        ok_err rc = ok_fail(a->err, "%s", a->message);
        pthread_mutex_unlock(&a->lock);
        return rc;
    }
    size_t s = idx % DS_AHEAD_SLOTS;
    uint8_t *opened = a->slot[s];
    a->slot[s] = *plain; /* the caller's buffer (its previous frame) becomes this slot's: overwritten by a
                          * later frame, wiped when freed */
    *plain = opened;
    *n = a->len[s];
    a->consumed = idx + 1;
    if (a->producer_waiting && a->produced - a->consumed <= DS_AHEAD_SLOTS / 2)
        pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    return OK_OK;
}

void ds_open_ahead_stop(ds_open_ahead *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    ahead_free(a);
}
