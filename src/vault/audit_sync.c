/* ownkey vault: when audit lines are durable (audit.c writes them). Owns the group commit (one fdatasync
 * covers every line written before it started), the final failure after a failed fdatasync, and the
 * callers that must not block (ok_vault_audit_when_durable: a syncer thread per open log makes their
 * lines durable and calls them back).
 *
 * Group commit.
 * Every line must be durable before its request is answered, but one fdatasync covers every line written
 * before it started. So lines get sequence numbers; a writer whose line is not yet covered either runs
 * the sync itself (covering all lines written so far) or sleeps until the sync in progress ends and
 * checks again. Under load, one fdatasync makes dozens of requests durable instead of one.
 *
 * Waiting is on a futex over `epoch` (bumped after every sync), not a condition variable: a broadcast
 * to dozens of waiters made each re-take the mutex in turn, and that convoy was a third of the vault's
 * context switches under load. Here a woken writer only reads two counters.
 *
 * Under load the syncer spaces its syncs (one per 2 ms at most while two or more lines wait), so that
 * each fdatasync covers more requests; a lone line is synced at once.
 *
 * A failed fdatasync is final for this open log: Linux reports a write-back error once, so a later
 * fdatasync may succeed while lines written before it were lost. Every line not yet known durable, and
 * every later line, then fails its request (OK_ERR_IO) until the log is opened again (a restart), where
 * `ownkey audit verify` shows what reached the disk. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vault/audit_sync.h"

#define GATHER_NS 2000000L /* under load, one sync per 2 ms at most (see gather) */

ok_err ok_audit_sync_file(int fd)
{
    int r;
    do
        r = fdatasync(fd);
    while (r < 0 && errno == EINTR);
    return r == 0 ? OK_OK : ok_fail(OK_ERR_IO, "audit log: fdatasync failed (errno %d)", errno);
}

/* A caller of ok_vault_audit_when_durable waiting for its line. */
typedef struct audit_waiter {
    uint64_t seq;
    int fd;
    void (*done)(void *cls, ok_err rc);
    void *cls;
    struct audit_waiter *next;
} audit_waiter;

struct ok_audit_sync {
    _Atomic uint64_t written; /* lines appended (incremented under audit_lock) */
    _Atomic uint64_t synced;  /* lines known durable (written only by the thread holding `syncing`) */
    atomic_int syncing;       /* 1 while a thread runs fdatasync */
    atomic_int failed;        /* an fdatasync failed */
    atomic_uint epoch;        /* +1 after every sync attempt: the futex word waiters sleep on */
    atomic_int sleepers;      /* writers asleep, or about to be, on epoch */
    /* Waiters that must not block (ok_vault_audit_when_durable): the syncer thread makes their lines
     * durable (by the same protocol as a blocking writer) and calls them back. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    audit_waiter *waiting;    /* under qlock */
    int quit;                 /* under qlock: closing, the syncer leaves once nobody waits */
    pthread_t syncer;
};

static void epoch_sleep(atomic_uint *word, unsigned seen)
{
    /* Returns at once if the epoch moved on since `seen` (no wake-up can be lost), on a wake-up, or on a
     * signal; the caller checks again either way. */
    (void)syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void epoch_wake_all(atomic_uint *word)
{
    (void)syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void *syncer_main(void *arg);

ok_err ok_audit_sync_open(ok_vault *v)
{
    struct ok_audit_sync *g = calloc(1, sizeof *g);
    if (!g)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&g->qlock, NULL);
    pthread_cond_init(&g->qcond, NULL);
    if (pthread_create(&g->syncer, NULL, syncer_main, g) != 0) {
        pthread_cond_destroy(&g->qcond);
        pthread_mutex_destroy(&g->qlock);
        free(g);
        return ok_fail(OK_ERR_NOMEM, "cannot start the audit log's syncing thread");
    }
    v->audit_sync = g;
    return OK_OK;
}

/* Lets the syncer settle every waiter (made durable, or failed) and leave. */
void ok_audit_sync_close(ok_vault *v)
{
    struct ok_audit_sync *g = v->audit_sync;
    if (!g)
        return;
    pthread_mutex_lock(&g->qlock);
    g->quit = 1;
    pthread_cond_signal(&g->qcond);
    pthread_mutex_unlock(&g->qlock);
    pthread_join(g->syncer, NULL);
    pthread_cond_destroy(&g->qcond);
    pthread_mutex_destroy(&g->qlock);
    free(g);
    v->audit_sync = NULL;
}

ok_err ok_audit_sync_failure(void)
{
    return ok_fail(OK_ERR_IO, "audit log: an earlier fdatasync failed; no line can be made durable until "
                              "the daemon restarts");
}

/* Called under audit_lock after a line was appended: its sequence number. */
uint64_t ok_audit_sync_note_written(struct ok_audit_sync *g)
{
    return atomic_fetch_add(&g->written, 1) + 1;
}

/* Returns once line `seq` is durable, or fails when a sync failed before it was. */
static ok_err sync_wait(struct ok_audit_sync *g, int fd, uint64_t seq)
{
    for (;;) {
        unsigned seen = atomic_load(&g->epoch);
        if (atomic_load(&g->synced) >= seq)
            return OK_OK;
        if (atomic_load(&g->failed))
            return ok_audit_sync_failure();
        int idle = 0;
        if (atomic_compare_exchange_strong(&g->syncing, &idle, 1)) {
            uint64_t target = atomic_load(&g->written); /* includes seq: noted before the wait */
            ok_err rc = ok_audit_sync_file(fd);
            if (rc == OK_OK && target > atomic_load(&g->synced))
                atomic_store(&g->synced, target);
            else if (rc != OK_OK)
                atomic_store(&g->failed, 1);
            atomic_store(&g->syncing, 0);
            atomic_fetch_add(&g->epoch, 1);
            if (atomic_load(&g->sleepers) > 0)
                epoch_wake_all(&g->epoch);
            if (rc != OK_OK)
                return rc;
            continue;
        }
        atomic_fetch_add(&g->sleepers, 1);
        epoch_sleep(&g->epoch, seen);
        atomic_fetch_sub(&g->sleepers, 1);
    }
}

/* Spaces the syncer's syncs under load: when two or more lines wait, a sync starts no sooner than
 * GATHER_NS after the previous one started, so that one fdatasync covers more requests (each cost
 * about 130 us of CPU on the 2-core VM of docs/BENCHMARKS.md, mostly the kernel's and the virtual
 * disk's). A single waiting line (a client sending one request at a time) is synced at once. */
static void gather(struct ok_audit_sync *g, struct timespec *last_start)
{
    uint64_t waiting = atomic_load(&g->written) - atomic_load(&g->synced);
    if (waiting >= 2 && (last_start->tv_sec || last_start->tv_nsec)) {
        struct timespec until = *last_start;
        until.tv_nsec += GATHER_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
    }
    clock_gettime(CLOCK_MONOTONIC, last_start);
}

/* The syncer: makes the lines of the non-blocking waiters durable (running fdatasync itself, or sleeping
 * while a blocking writer runs one) and calls each back once its line is durable or cannot be. Callbacks
 * run outside qlock. On close it settles whoever still waits, then leaves. */
static void *syncer_main(void *arg)
{
    struct ok_audit_sync *g = arg;
    struct timespec last_start = {0};
    pthread_mutex_lock(&g->qlock);
    for (;;) {
        while (!g->waiting && !g->quit)
            pthread_cond_wait(&g->qcond, &g->qlock);
        if (!g->waiting)
            break;
        uint64_t want = 0;
        int fd = -1;
        for (audit_waiter *w = g->waiting; w; w = w->next) {
            if (w->seq > want) {
                want = w->seq;
                fd = w->fd;
            }
        }
        pthread_mutex_unlock(&g->qlock);
        gather(g, &last_start);
        ok_err rc = sync_wait(g, fd, want);
        uint64_t synced = atomic_load(&g->synced);
        pthread_mutex_lock(&g->qlock);
        audit_waiter *settled = NULL, **link = &g->waiting;
        while (*link) { /* the ones whose line is durable, and on a failure all the others too */
            audit_waiter *w = *link;
            if (w->seq <= synced || rc != OK_OK) {
                *link = w->next;
                w->next = settled;
                settled = w;
            } else {
                link = &w->next;
            }
        }
        pthread_mutex_unlock(&g->qlock);
        while (settled) {
            audit_waiter *w = settled;
            settled = w->next;
            w->done(w->cls, w->seq <= synced ? OK_OK : rc);
            free(w);
        }
        pthread_mutex_lock(&g->qlock);
    }
    pthread_mutex_unlock(&g->qlock);
    return NULL;
}

int ok_audit_sync_failed(const struct ok_audit_sync *g)
{
    return atomic_load(&g->failed);
}

/* Outside the audit lock: a sync that starts after a line was written covers it. */
ok_err ok_vault_audit_wait(ok_vault *v, ok_audit_ticket t)
{
    struct ok_audit_sync *g = v ? v->audit_sync : NULL;
    if (!g || t.seq == 0)
        return OK_OK; /* made durable by append (no group commit) */
    return sync_wait(g, t.fd, t.seq);
}

void ok_vault_audit_when_durable(ok_vault *v, ok_audit_ticket t, void (*done)(void *cls, ok_err rc), void *cls)
{
    struct ok_audit_sync *g = v ? v->audit_sync : NULL;
    if (!g || t.seq == 0 || atomic_load(&g->synced) >= t.seq) {
        done(cls, OK_OK);
        return;
    }
    audit_waiter *w = malloc(sizeof *w);
    if (!w) { /* blocks instead */
        done(cls, sync_wait(g, t.fd, t.seq));
        return;
    }
    *w = (audit_waiter){.seq = t.seq, .fd = t.fd, .done = done, .cls = cls};
    pthread_mutex_lock(&g->qlock);
    w->next = g->waiting;
    g->waiting = w;
    pthread_cond_signal(&g->qcond);
    pthread_mutex_unlock(&g->qlock);
}
