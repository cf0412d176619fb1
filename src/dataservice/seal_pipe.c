/* The sealing thread of a large object write (ds_pipe, used by object_write.c's ds_writer once a body
 * grows past DS_PIPE_MIN): the writer copies the plaintext, in the order it came, into one of PIPE_BUFS
 * buffers of PIPE_BUF_FRAMES frames each and hands full ones to a thread that seals them and appends the
 * frames to the file, so receiving (TLS) and sealing + writing run at once, in constant memory (the
 * writer waits when every buffer is queued).
 *
 * A second thread, the flusher, makes what is written durable as it goes: every PIPE_FLUSH_EVERY bytes it
 * runs fdatasync (the device's cache flush costs time in proportion to what it holds: ~2 ms per MiB on
 * this virtual disk, so one flush at the end of 64 MiB held the reply ~100 ms) and then drops the
 * flushed pages from the page cache (an object being written is not read again soon; recycled pages
 * also cost less than fresh ones). The writer's final fsync then covers only the last few MiB;
 * durability stays the writer's (fsync, rename, directory fsync). A failed fdatasync fails the pipe:
 * Linux reports a write-back error once per open file, so the writer's fsync might not see it again.
 *
 * The buffers hold plaintext: the writer overwrites each in turn, and all of them are wiped when the
 * pipe is freed (as the inline writer's one-frame buffer is wiped when it is freed). The first error of the thread is kept (code and message) and returned by the writer's next
 * ds_pipe_write or by ds_pipe_finish; freeing stops the thread (what is queued is dropped) and joins it.
 * Owns nothing of the file's name or of the envelope format (the session seals). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataservice/objects_internal.h"

#define PIPE_BUFS 4u
#define PIPE_BUF_FRAMES 4u                 /* 4 x 64 KiB frames: 256 KiB per buffer, 1 MiB in all */
#define PIPE_FLUSH_EVERY (4u << 20)        /* bytes written between the flusher's fdatasyncs */

struct ds_pipe {
    ok_env_session *session;
    int fd;
    size_t frame_size;
    size_t buf_size;                       /* PIPE_BUF_FRAMES frames */
    uint8_t *bufs[PIPE_BUFS];              /* plaintext (wiped once sealed) */
    size_t lens[PIPE_BUFS];
    int finals[PIPE_BUFS];
    uint8_t *wire;                         /* the sealed frames of one buffer (ciphertext) */
    size_t wire_cap;
    unsigned cur;                          /* the writer's buffer (only the writer's thread uses cur, fill) */
    size_t fill;                           /* bytes in it */
    /* Under lock: the queue is bufs[head], bufs[head + 1], ... (count of them, the thread works on the
     * first); cur is always the one after the queue, so the writer never touches a queued buffer. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned head, count;
    int stop;                              /* freeing: the thread leaves at once */
    int done;                              /* the final buffer was sealed and written */
    ok_err err;
    char msg[256];
    pthread_t thread;
    int started;
    uint64_t written;                      /* the sealing thread's: file offset of the end of what it wrote */
    /* The flusher, under lock: `appended` is `written` as last published by the sealing thread. */
    pthread_t flusher;
    int flusher_started;
    int flush_quit;                        /* finishing: the flusher leaves after its current fdatasync */
    uint64_t appended, flushed;            /* file offsets: end of what is written, of what is durable */
};

/* Seals one buffer (whole frames; with final, then the final frame of the rest) and appends it. */
static ok_err seal_buffer(ds_pipe *p, const uint8_t *in, size_t len, int final)
{
    size_t whole = len - len % p->frame_size, n = 0, m = 0;
    if (whole)
        OK_GUARD(ok_env_seal(p->session, in, whole, 0, p->wire, &n));
    if (final)
        OK_GUARD(ok_env_seal(p->session, in + whole, len - whole, 1, p->wire + n, &m));
    OK_GUARD(ds_write_all(p->fd, p->wire, n + m));
    p->written += n + m;
    return OK_OK;
}

/* Under lock: keeps the first error (code and message) of either thread. */
static void keep_error(ds_pipe *p, ok_err rc, const char *msg)
{
    if (p->err != OK_OK)
        return;
    p->err = rc;
    snprintf(p->msg, sizeof p->msg, "%s", msg);
}

static void *flush_main(void *arg)
{
    ds_pipe *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && !p->flush_quit && p->err == OK_OK && p->appended - p->flushed < PIPE_FLUSH_EVERY)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop || p->flush_quit || p->err != OK_OK)
            break;
        uint64_t from = p->flushed, upto = p->appended;
        pthread_mutex_unlock(&p->lock);
        int failed = fdatasync(p->fd) != 0 ? errno : 0;
        if (!failed) /* clean now: drops them (advice) */
            (void)posix_fadvise(p->fd, (off_t)from, (off_t)(upto - from), POSIX_FADV_DONTNEED);
        pthread_mutex_lock(&p->lock);
        if (failed) {
            char msg[128];
            snprintf(msg, sizeof msg, "cannot sync an object file: %s", strerror(failed));
            keep_error(p, OK_ERR_IO, msg);
        } else {
            p->flushed = upto;
        }
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void *pipe_main(void *arg)
{
    ds_pipe *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->count == 0 && !p->stop)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop)
            break;
        unsigned idx = p->head;
        size_t len = p->lens[idx];
        int final = p->finals[idx];
        pthread_mutex_unlock(&p->lock);
        ok_err rc = seal_buffer(p, p->bufs[idx], len, final); /* the writer overwrites it next; freed: wiped */
        pthread_mutex_lock(&p->lock);
        p->head = (p->head + 1) % PIPE_BUFS;
        p->count--;
        p->appended = p->written;
        if (rc != OK_OK)
            keep_error(p, rc, ok_err_message());
        else if (final)
            p->done = 1;
        pthread_cond_broadcast(&p->changed);
        if (p->err != OK_OK || final)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ok_err ds_pipe_start(ok_env_session *session, int fd, ds_pipe **out)
{
    ds_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    p->session = session;
    p->fd = fd;
    p->frame_size = ok_env_session_frame_size(session);
    p->buf_size = PIPE_BUF_FRAMES * p->frame_size;
    p->wire_cap = (PIPE_BUF_FRAMES + 1) * ok_env_wire_frame_size(session);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    off_t at = lseek(fd, 0, SEEK_CUR);
    p->written = p->appended = p->flushed = at > 0 ? (uint64_t)at : 0;
    ok_err rc = OK_OK;
    p->wire = malloc(p->wire_cap);
    int missing = !p->wire;
    for (unsigned i = 0; i < PIPE_BUFS; i++)
        missing |= !(p->bufs[i] = malloc(p->buf_size));
    if (missing) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (pthread_create(&p->thread, NULL, pipe_main, p) != 0) {
        rc = ok_fail(OK_ERR_NOMEM, "cannot start an object's sealing thread");
        goto fail;
    }
    p->started = 1;
    if (pthread_create(&p->flusher, NULL, flush_main, p) != 0) {
        rc = ok_fail(OK_ERR_NOMEM, "cannot start an object's flushing thread");
        goto fail;
    }
    p->flusher_started = 1;
    *out = p;
    return OK_OK;
fail:
    ds_pipe_free(p);
    return rc;
}

/* The thread's error, raised again on the writer's thread (with the thread's message). Under lock. */
static ok_err pipe_error(const ds_pipe *p)
{
    return ok_fail(p->err, "%s", p->msg);
}

/* Queues the writer's buffer and waits until another one is free. */
static ok_err push(ds_pipe *p, int final)
{
    pthread_mutex_lock(&p->lock);
    ok_err rc = OK_OK;
    if (p->err != OK_OK) {
        rc = pipe_error(p);
        goto out;
    }
    p->lens[p->cur] = p->fill;
    p->finals[p->cur] = final;
    p->count++;
    p->cur = (p->cur + 1) % PIPE_BUFS;
    p->fill = 0;
    pthread_cond_broadcast(&p->changed);
    while (p->err == OK_OK && (final ? !p->done : p->count == PIPE_BUFS))
        pthread_cond_wait(&p->changed, &p->lock);
    if (p->err != OK_OK)
        rc = pipe_error(p);
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

ok_err ds_pipe_write(ds_pipe *p, const uint8_t *data, size_t len)
{
    while (len > 0) {
        uint8_t *buf = p->bufs[p->cur];
        size_t take = p->buf_size - p->fill < len ? p->buf_size - p->fill : len;
        memcpy(buf + p->fill, data, take);
        p->fill += take;
        data += take;
        len -= take;
        if (p->fill == p->buf_size)
            OK_GUARD(push(p, 0));
    }
    return OK_OK;
}

ok_err ds_pipe_finish(ds_pipe *p)
{
    ok_err rc = push(p, 1);
    if (rc == OK_OK) {
        pthread_join(p->thread, NULL);
        p->started = 0;
    }
    pthread_mutex_lock(&p->lock);
    p->flush_quit = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->flusher, NULL);
    p->flusher_started = 0;
    if (rc == OK_OK && p->err != OK_OK) /* the flusher failed after the last buffer was sealed */
        rc = pipe_error(p);
    return rc;
}

void ds_pipe_free(ds_pipe *p)
{
    if (!p)
        return;
    if (p->started || p->flusher_started) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (p->started)
            pthread_join(p->thread, NULL);
        if (p->flusher_started)
            pthread_join(p->flusher, NULL);
    }
    for (unsigned i = 0; i < PIPE_BUFS; i++) {
        if (p->bufs[i]) {
            ok_zeroize(p->bufs[i], p->buf_size);
            free(p->bufs[i]);
        }
    }
    free(p->wire); /* sealed frames only: ciphertext */
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

