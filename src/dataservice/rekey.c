/* Re-key jobs: starting one (the next TK generation and the job row commit in one transaction), and the
 * batches the background worker runs. A batch takes the next rows after the job's cursor (in name order)
 * and moves every one still on an older generation to the job's: by re-wrapping its DEK in the row, or
 * with reencrypt by re-encrypting its file under a fresh DEK (a row swap guarded by the old file id, so a
 * concurrent put or delete wins). The row changes, the cursor and the count advance in one transaction,
 * so a crash resumes from the cursor. When no row is left on an older generation, the older TKs are
 * dropped and the job is DONE. A locked or sealed tenant makes the job wait; other errors fail it.
 * The TKs themselves are tenant_keys.c's; the object files are object_write.c's and object_read.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/objects_internal.h"
#include "ownkey/crypto.h"

#define DEFAULT_BATCH 256
#define MAX_BATCH 100000
#define REENCRYPT_BATCH_MAX 16   /* objects re-encrypted per batch (each a whole file) */
#define COPY_CHUNK (256u * 1024u)

struct ds_jobs {
    size_t batch;                /* rows per batch (OWNKEY_DS_REKEY_BATCH, for tests) */
    long max_batches;            /* batches this instance runs, -1 = no limit (OWNKEY_DS_REKEY_MAX_BATCHES, for tests) */
    long batches_run;
    char last[OK_DS_TENANT_NAME_MAX + 1]; /* the tenant whose job ran last: jobs take turns */
};

static long env_number(const char *name, long dflt, long min, long max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return *end == '\0' && n >= min && n <= max ? n : dflt;
}

ok_err ds_jobs_init(ok_ds *ds)
{
    ds_jobs *j = calloc(1, sizeof *j);
    if (!j)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    j->batch = (size_t)env_number("OWNKEY_DS_REKEY_BATCH", DEFAULT_BATCH, 1, MAX_BATCH);
    j->max_batches = env_number("OWNKEY_DS_REKEY_MAX_BATCHES", -1, 0, 1L << 30);
    ds->jobs = j;
    return OK_OK;
}

void ds_jobs_free(ok_ds *ds)
{
    free(ds->jobs);
    ds->jobs = NULL;
}

/* ---- Start ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *tenant;
    int reencrypt;
    int64_t count;
    int running;
} start_ctx;

static ok_err note_running(void *ctx, const ok_val *cols, size_t n)
{
    start_ctx *c = ctx;
    if (n >= 1 && cols[0].type == OK_VAL_INT && cols[0].i == OK_DS_REKEY_RUNNING)
        c->running = 1;
    return OK_OK;
}

static ok_err take_count(void *ctx, const ok_val *cols, size_t n)
{
    if (n >= 1 && cols[0].type == OK_VAL_INT)
        *(int64_t *)ctx = cols[0].i;
    return OK_OK;
}

static ok_err check_not_running(ok_ds *ds, start_ctx *c)
{
    ok_val key[] = {OK_VTEXT(c->tenant)};
    c->running = 0;
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT state FROM rekey_jobs WHERE tenant = ?", key, 1, note_running, c));
    if (c->running)
        return ok_fail(OK_ERR_CONFLICT, "a re-key of tenant %s is running", c->tenant);
    return OK_OK;
}

/* Runs inside ds_tk_next's transaction, after the new generation became the tenant's current one. */
static ok_err start_in_txn(ok_ds *ds, void *arg)
{
    start_ctx *c = arg;
    OK_GUARD(check_not_running(ds, c));
    ok_val key[] = {OK_VTEXT(c->tenant)};
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT count(*) FROM objects WHERE tenant = ?", key, 1, take_count, &c->count));
    ok_val row[] = {OK_VTEXT(c->tenant), OK_VTEXT(c->tenant), OK_VINT(c->reencrypt ? 1 : 0), OK_VINT(c->count),
                    OK_VINT(OK_DS_REKEY_RUNNING)};
    return ds->store->vt->exec(ds->store,
        "INSERT OR REPLACE INTO rekey_jobs(tenant, new_generation, reencrypt, cursor, done, total, state, error)"
        " VALUES(?, (SELECT tk_generation FROM tenants WHERE name = ?), ?, '', 0, ?, ?, NULL)", row, 5, NULL);
}

ok_err ok_ds_rekey_start(ok_ds *ds, const char *name, int reencrypt, ok_ds_tenant_info *out)
{
    if (!ds || !name)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_rekey_start: missing argument");
    ds_tenant_ref ref;
    OK_GUARD(ds_tenant_ref_get(ds, name, &ref));
    start_ctx c = {.tenant = name, .reencrypt = reencrypt != 0};
    OK_GUARD(check_not_running(ds, &c)); /* before a root-key call is spent on a new TK */
    uint64_t generation = 0;
    OK_GUARD(ds_tk_next(ds, name, start_in_txn, &c, &generation));
    /* The job's target is the generation ds_tk_next made (the worker also follows the tenant's current
     * generation, so this only settles what the job row shows). */
    ok_val fix[] = {OK_VINT((int64_t)generation), OK_VTEXT(name)};
    OK_GUARD(ds->store->vt->exec(ds->store, "UPDATE rekey_jobs SET new_generation = ? WHERE tenant = ? AND state = 1",
                                 fix, 2, NULL));
    ds_worker_wake(ds);
    return out ? ok_ds_tenant_get(ds, name, out) : OK_OK;
}

/* ---- The worker's batches ------------------------------------------------------------------------- */

typedef struct {
    char tenant[OK_DS_TENANT_NAME_MAX + 1];
    int64_t new_generation;
    int reencrypt;
    char *cursor;
    int64_t current;             /* the tenant's current generation: the job's target */
    int found;
} job;

typedef struct {
    char *name;
    ds_object_ref ref;
    int change;                  /* 1 when the row moves to the new generation */
    char new_file[DS_FILE_ID_LEN + 1]; /* reencrypt: the file written for it */
    uint8_t new_wrap[DS_DEK_WRAP_MAX];
    size_t new_wrap_len;
    int swapped;
} batch_row;

typedef struct {
    batch_row *rows;
    size_t count, cap;
} batch;

static ok_err take_job(void *ctx, const ok_val *cols, size_t n)
{
    job *jb = ctx;
    if (n < 5 || cols[0].type != OK_VAL_TEXT || cols[1].type != OK_VAL_INT || cols[2].type != OK_VAL_INT ||
        cols[3].type != OK_VAL_TEXT || cols[4].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "a stored re-key job is malformed");
    snprintf(jb->tenant, sizeof jb->tenant, "%s", cols[0].s);
    jb->new_generation = cols[1].i;
    jb->reencrypt = cols[2].i != 0;
    jb->cursor = strdup(cols[3].s);
    jb->current = cols[4].i;
    jb->found = 1;
    return jb->cursor ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
}

/* The next running job after the one that ran last (round robin over tenants). */
static ok_err pick_job(ok_ds *ds, job *jb)
{
    static const char *const SQL =
        "SELECT j.tenant, j.new_generation, j.reencrypt, j.cursor, t.tk_generation FROM rekey_jobs j"
        " JOIN tenants t ON t.name = j.tenant WHERE j.state = 1 AND j.tenant > ? ORDER BY j.tenant LIMIT 1";
    ok_val after[] = {OK_VTEXT(ds->jobs->last)};
    OK_GUARD(ds->store->vt->query(ds->store, SQL, after, 1, take_job, jb));
    if (!jb->found && ds->jobs->last[0]) {
        after[0] = OK_VTEXT("");
        OK_GUARD(ds->store->vt->query(ds->store, SQL, after, 1, take_job, jb));
    }
    return OK_OK;
}

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        free(b->rows[i].name);
        ok_zeroize(&b->rows[i].ref, sizeof b->rows[i].ref);
        ok_zeroize(b->rows[i].new_wrap, sizeof b->rows[i].new_wrap);
    }
    free(b->rows);
    memset(b, 0, sizeof *b);
}

static ok_err take_row(void *ctx, const ok_val *cols, size_t n)
{
    batch *b = ctx;
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        batch_row *rows = realloc(b->rows, cap * sizeof *rows);
        if (!rows)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        b->rows = rows;
        b->cap = cap;
    }
    batch_row *r = &b->rows[b->count];
    memset(r, 0, sizeof *r);
    OK_GUARD(ds_object_from_row(cols, n, NULL, &r->ref));
    r->name = strdup(cols[0].s);
    if (!r->name)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    b->count++;
    return OK_OK;
}

/* Keeps the TK of the generation last asked for, so a batch asks the cache once per generation. */
typedef struct {
    uint8_t *old_tk, *new_tk;    /* secure memory, DS_TK_LEN each */
    uint64_t old_generation;
    int have_old;
} tk_pair;

static ok_err old_tk(ok_ds *ds, const char *tenant, tk_pair *t, uint64_t generation)
{
    if (t->have_old && t->old_generation == generation)
        return OK_OK;
    t->have_old = 0;
    OK_GUARD(ds_tk_get(ds, tenant, generation, t->old_tk));
    t->old_generation = generation;
    t->have_old = 1;
    return OK_OK;
}

static ok_err rewrap_row(batch_row *r, const tk_pair *t)
{
    uint8_t dek[DS_DEK_WRAP_MAX];
    size_t dek_len = 0;
    ok_err rc = ok_aes_kwp_unwrap(t->old_tk, DS_TK_LEN, r->ref.dek_wrap, r->ref.dek_wrap_len, dek, &dek_len);
    if (rc == OK_ERR_AUTH)
        rc = ok_fail(OK_ERR_AUTH, "the data key of object %s does not unwrap under tenant key generation %llu",
                     r->name, (unsigned long long)r->ref.generation);
    if (rc == OK_OK && dek_len + 8 > sizeof r->new_wrap)
        rc = ok_fail(OK_ERR_FORMAT, "object %s has a data key of unexpected length", r->name);
    if (rc == OK_OK)
        rc = ok_aes_kwp_wrap(t->new_tk, DS_TK_LEN, dek, dek_len, r->new_wrap, &r->new_wrap_len);
    ok_zeroize(dek, sizeof dek);
    return rc;
}

/* Decrypts the object's current file and writes it again under a fresh DEK and the new TK. The file is
 * left for the row swap; *gone when the version was replaced meanwhile (nothing to do). */
static ok_err reencrypt_row(ok_ds *ds, const job *jb, const char *uuid, batch_row *r, const tk_pair *t, int *gone)
{
    ok_ds_get *g = NULL;
    ds_writer *w = NULL;
    uint8_t *buf = NULL;
    *gone = 0;
    ok_err rc = ds_get_open_ref(ds, jb->tenant, uuid, &r->ref, &g);
    if (rc == OK_ERR_NOT_FOUND) {
        /* Gone only when the row moved on (a put or delete since the batch read it); a row whose own
         * file or TK is missing is an error, not something to skip. */
        ds_object_ref now;
        ok_err lr = ds_object_lookup(ds, jb->tenant, r->name, NULL, &now);
        if (lr == OK_ERR_NOT_FOUND || (lr == OK_OK && strcmp(now.file_id, r->ref.file_id) != 0)) {
            *gone = 1;
            return OK_OK;
        }
        return lr != OK_OK ? lr : ok_fail(OK_ERR_NOT_FOUND, "object %s: its file or its tenant key is missing", r->name);
    }
    OK_GUARD(rc);
    buf = malloc(COPY_CHUNK);
    if (!buf) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto out;
    }
    OK_GUARD_GOTO(rc, ds_writer_open(ds, uuid, (uint64_t)jb->current, t->new_tk, &w), out);
    for (uint64_t off = 0; off < r->ref.size;) {
        size_t got = 0;
        OK_GUARD_GOTO(rc, ok_ds_get_read(g, off, buf, COPY_CHUNK, &got), out);
        if (got == 0) {
            rc = ok_fail(OK_ERR_TRUNCATED, "object %s ended early", r->name);
            goto out;
        }
        OK_GUARD_GOTO(rc, ds_writer_write(w, buf, got), out);
        off += got;
    }
    OK_GUARD_GOTO(rc, ds_writer_finish(w, r->new_file), out);
    size_t wrap_len = 0;
    const uint8_t *wrap = ds_writer_dek_wrap(w, &wrap_len);
    memcpy(r->new_wrap, wrap, wrap_len);
    r->new_wrap_len = wrap_len;
out:
    if (buf) {
        ok_zeroize(buf, COPY_CHUNK);
        free(buf);
    }
    ds_writer_free(w);
    ok_ds_get_close(g);
    return rc;
}

/* Prepares every row of the batch that is not on the job's generation yet. */
static ok_err prepare(ok_ds *ds, const job *jb, const char *uuid, batch *b, tk_pair *t)
{
    OK_GUARD(ds_tk_get(ds, jb->tenant, (uint64_t)jb->current, t->new_tk));
    for (size_t i = 0; i < b->count; i++) {
        batch_row *r = &b->rows[i];
        if ((int64_t)r->ref.generation == jb->current)
            continue;
        if (jb->reencrypt) {
            int gone = 0;
            /* The old DEK is the row's; reading needs the old generation's TK (ds_tk_get in the reader). */
            OK_GUARD(reencrypt_row(ds, jb, uuid, r, t, &gone));
            r->change = !gone;
        } else {
            OK_GUARD(old_tk(ds, jb->tenant, t, r->ref.generation));
            OK_GUARD(rewrap_row(r, t));
            r->change = 1;
        }
    }
    return OK_OK;
}

/* One transaction: every prepared row change (guarded by the row's file id and generation, so a put or
 * delete since the rows were read wins), the cursor and the count. */
static ok_err apply(ok_ds *ds, const job *jb, batch *b)
{
    ok_store *st = ds->store;
    OK_GUARD(st->vt->begin(st));
    ok_err rc = OK_OK;
    for (size_t i = 0; i < b->count; i++) {
        batch_row *r = &b->rows[i];
        if (!r->change)
            continue;
        int64_t changes = 0;
        /* Sizes do not change (a re-encrypted file holds the same plaintext): the tenant's counters stay. */
        ok_val v[] = {OK_VTEXT(jb->reencrypt ? r->new_file : r->ref.file_id), OK_VINT(jb->current),
                      OK_VBLOB(r->new_wrap, r->new_wrap_len), OK_VTEXT(jb->tenant), OK_VTEXT(r->name),
                      OK_VTEXT(r->ref.file_id), OK_VINT((int64_t)r->ref.generation)};
        OK_GUARD_GOTO(rc, st->vt->exec(st, "UPDATE objects SET file_id = ?, tk_generation = ?, dek_wrap = ?"
                                           " WHERE tenant = ? AND name = ? AND file_id = ? AND tk_generation = ?",
                                       v, 7, &changes), fail);
        r->swapped = changes > 0;
    }
    ok_val cur[] = {OK_VTEXT(b->rows[b->count - 1].name), OK_VINT((int64_t)b->count), OK_VINT(jb->current),
                    OK_VTEXT(jb->tenant)};
    OK_GUARD_GOTO(rc, st->vt->exec(st, "UPDATE rekey_jobs SET cursor = ?, done = done + ?, new_generation = ?"
                                       " WHERE tenant = ? AND state = 1", cur, 4, NULL), fail);
    OK_GUARD_GOTO(rc, st->vt->commit(st), fail);
    return OK_OK;
fail:
    st->vt->rollback(st);
    for (size_t i = 0; i < b->count; i++)
        b->rows[i].swapped = 0;
    return rc;
}

/* Reencrypt: after the transaction, the replaced files go (or, where the swap lost, the new ones). */
static void remove_files(ok_ds *ds, const char *uuid, const batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const batch_row *r = &b->rows[i];
        if (r->new_file[0])
            ds_object_unlink(ds, uuid, r->swapped ? r->ref.file_id : r->new_file);
    }
}

/* No rows left after the cursor: a last check that none is on an older generation, then the older TKs
 * go and the job is done. */
static ok_err finish_job(ok_ds *ds, const job *jb)
{
    int64_t stragglers = 0;
    ok_val k[] = {OK_VTEXT(jb->tenant), OK_VINT(jb->current)};
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT count(*) FROM objects WHERE tenant = ? AND tk_generation != ?",
                                  k, 2, take_count, &stragglers));
    if (stragglers > 0) /* cannot happen with puts checking the generation at commit; sweep again if it does */
        return ds->store->vt->exec(ds->store, "UPDATE rekey_jobs SET cursor = '' WHERE tenant = ? AND state = 1", k, 1, NULL);
    OK_GUARD(ds_tk_drop_others(ds, jb->tenant, (uint64_t)jb->current));
    ok_val d[] = {OK_VINT(jb->current), OK_VTEXT(jb->tenant)};
    return ds->store->vt->exec(ds->store, "UPDATE rekey_jobs SET state = 2, new_generation = ?, done = max(done, total),"
                                          " error = NULL WHERE tenant = ? AND state = 1", d, 2, NULL);
}

static ok_err run_batch(ok_ds *ds, const job *jb, const char *uuid)
{
    size_t limit = ds->jobs->batch;
    if (jb->reencrypt && limit > REENCRYPT_BATCH_MAX)
        limit = REENCRYPT_BATCH_MAX;
    batch b = {0};
    tk_pair t = {.old_tk = ok_secure_alloc(DS_TK_LEN), .new_tk = ok_secure_alloc(DS_TK_LEN)};
    ok_err rc = OK_OK;
    if (!t.old_tk || !t.new_tk) {
        rc = ok_fail(OK_ERR_NOMEM, "out of secure memory");
        goto out;
    }
    ok_val q[] = {OK_VTEXT(jb->tenant), OK_VTEXT(jb->cursor), OK_VINT((int64_t)limit)};
    OK_GUARD_GOTO(rc, ds->store->vt->query(ds->store, "SELECT " DS_OBJECT_COLS " FROM objects WHERE tenant = ?"
                                                      " AND name > ? ORDER BY name LIMIT ?", q, 3, take_row, &b), out);
    if (b.count == 0) {
        rc = finish_job(ds, jb);
        goto out;
    }
    rc = prepare(ds, jb, uuid, &b, &t);
    if (rc == OK_OK)
        rc = apply(ds, jb, &b);
    if (jb->reencrypt)
        remove_files(ds, uuid, &b);
out:
    ok_secure_free(t.old_tk, DS_TK_LEN);
    ok_secure_free(t.new_tk, DS_TK_LEN);
    batch_clear(&b);
    return rc;
}

static int transient(ok_err rc)
{
    return rc == OK_ERR_LOCKED || rc == OK_ERR_SEALED || rc == OK_ERR_NOMEM;
}

static void fail_job(ok_ds *ds, const char *tenant, const char *why)
{
    ok_val v[] = {OK_VINT(OK_DS_REKEY_FAILED), OK_VTEXT(why), OK_VTEXT(tenant)};
    (void)ds->store->vt->exec(ds->store, "UPDATE rekey_jobs SET state = ?, error = ? WHERE tenant = ? AND state = 1",
                              v, 3, NULL);
}

int ds_jobs_tick(ok_ds *ds)
{
    ds_jobs *j = ds->jobs;
    if (!j || (j->max_batches >= 0 && j->batches_run >= j->max_batches))
        return 0;
    job jb = {0};
    if (pick_job(ds, &jb) != OK_OK || !jb.found) {
        free(jb.cursor);
        return 0;
    }
    snprintf(j->last, sizeof j->last, "%s", jb.tenant);
    int more = 0;
    ds_tenant_ref ref;
    /* A locked or sealed tenant (or one being deleted) waits: no progress, retried at the next tick. */
    if (ds_tenant_ref_get(ds, jb.tenant, &ref) == OK_OK) {
        ok_err rc = run_batch(ds, &jb, ref.uuid);
        j->batches_run++;
        if (rc == OK_OK) {
            more = 1;
        } else if (!transient(rc)) {
            char why[OK_DS_REASON_MAX + 1];
            snprintf(why, sizeof why, "%s: %s", ok_err_name(rc), ok_err_message());
            fail_job(ds, jb.tenant, why);
            more = 1;
        }
    }
    free(jb.cursor);
    return more;
}
