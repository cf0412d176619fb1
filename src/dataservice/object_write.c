/* Writing objects: the sealed object file (ds_writer: an envelope streamed frame by frame into a
 * temporary file, through a seal_pipe.c thread once the body is large, made durable under a new file
 * id) and the put on top of it (length checks, then the row committed in one transaction and the
 * previous version's file removed). The row side (names, metadata, head, list, delete, recovery) is
 * objects.c; reading is object_read.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataservice/objects_internal.h"
#include "ownkey/crypto.h"

#define SEAL_BATCH 16u          /* full frames sealed per call when the body comes in large pieces */
#define COMMIT_ATTEMPTS 4       /* re-wraps to the current TK generation when re-keys race a put */

struct ds_writer {
    ok_ds *ds;
    char uuid[DS_UUID_LEN + 1];
    char dir[DS_PATH_MAX];
    char tmp[DS_PATH_MAX];
    int fd;
    int finished;
    int failed;
    uint64_t generation;
    uint8_t *tk;                /* secure memory: re-wrap needs the DEK back */
    ok_env_session *session;
    uint32_t frame_size;
    uint8_t *plain;             /* at most one frame of plaintext (wiped) */
    size_t fill;
    uint8_t *wire;              /* SEAL_BATCH wire frames */
    ds_pipe *pipe;              /* past DS_PIPE_MIN bytes: sealing and writing run on its thread */
    uint64_t size;
    uint8_t dek_wrap[DS_DEK_WRAP_MAX];
    size_t dek_wrap_len;
};

ok_err ds_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ok_fail(OK_ERR_IO, "cannot write an object file: %s", w < 0 ? strerror(errno) : "short write");
        p += w;
        n -= (size_t)w;
    }
    return OK_OK;
}

/* The DEK wrap the tenant provider put in the header's one EDK. */
static ok_err take_dek_wrap(ds_writer *w, const ok_buf *header)
{
    ok_env_header *h = NULL;
    OK_GUARD(ok_env_header_parse(header->data, header->len, &h));
    ok_err rc = OK_OK;
    if (h->edk_count != 1 || h->edks[0].ct_len > sizeof w->dek_wrap)
        rc = ok_fail(OK_ERR_FORMAT, "unexpected header written for a stored object");
    else {
        memcpy(w->dek_wrap, h->edks[0].ct, h->edks[0].ct_len);
        w->dek_wrap_len = h->edks[0].ct_len;
    }
    ok_env_header_free(h);
    return rc;
}

static ok_err open_tmp(ds_writer *w)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        char rnd[DS_UUID_LEN + 1];
        OK_GUARD(ds_random_hex(rnd));
        OK_GUARD(ds_object_path(w->ds, w->uuid, NULL, w->dir, sizeof w->dir));
        char name[sizeof DS_TMP_PREFIX + DS_UUID_LEN];
        snprintf(name, sizeof name, DS_TMP_PREFIX "%s", rnd);
        OK_GUARD(ds_object_path(w->ds, w->uuid, name, w->tmp, sizeof w->tmp));
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0)
            return OK_OK;
        if (errno != ENOENT || attempt > 0)
            break;
        /* The tenant's directory is missing (a crash between its row and its directory): make it. */
        OK_GUARD(ds_objects_tenant_init(w->ds, w->uuid));
    }
    int e = errno;
    w->tmp[0] = '\0';
    return ok_fail(OK_ERR_IO, "cannot create an object file in %s: %s", w->dir, strerror(e));
}

ok_err ds_writer_open(ok_ds *ds, const char *uuid, uint64_t generation, const uint8_t tk[DS_TK_LEN], ds_writer **out)
{
    ds_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    w->ds = ds;
    w->fd = -1;
    w->generation = generation;
    snprintf(w->uuid, sizeof w->uuid, "%s", uuid);
    ok_provider *prov = NULL;
    ok_buf header;
    ok_buf_init(&header, 0);
    ok_err rc = OK_OK;
    w->tk = ok_secure_alloc(DS_TK_LEN);
    if (!w->tk) {
        rc = ok_fail(OK_ERR_NOMEM, "out of secure memory");
        goto fail;
    }
    memcpy(w->tk, tk, DS_TK_LEN);
    OK_GUARD_GOTO(rc, ds_tenant_provider_new(uuid, generation, tk, NULL, 0, &prov), fail);
    ok_env_encrypt_params params = {.recipients = &prov, .recipient_count = 1, .mode = OK_ENV_ANY_OF,
                                    .frame_size = OK_ENV_DEFAULT_FRAME, .threads = 1};
    OK_GUARD_GOTO(rc, ok_env_encrypt_init(&w->session, &params, &header), fail);
    OK_GUARD_GOTO(rc, take_dek_wrap(w, &header), fail);
    w->frame_size = ok_env_session_frame_size(w->session);
    w->plain = malloc(w->frame_size);
    w->wire = malloc((size_t)SEAL_BATCH * ok_env_wire_frame_size(w->session));
    if (!w->plain || !w->wire) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    OK_GUARD_GOTO(rc, open_tmp(w), fail);
    OK_GUARD_GOTO(rc, ds_write_all(w->fd, header.data, header.len), fail);
    ok_buf_free(&header);
    ok_provider_free(prov);
    *out = w;
    return OK_OK;
fail:
    ok_buf_free(&header);
    ok_provider_free(prov);
    ds_writer_free(w);
    return rc;
}

/* Seals in_len bytes (whole frames unless final) and appends them to the file. */
static ok_err seal_out(ds_writer *w, const uint8_t *in, size_t in_len, int final)
{
    size_t n = 0;
    OK_GUARD(ok_env_seal(w->session, in, in_len, final, w->wire, &n));
    return ds_write_all(w->fd, w->wire, n);
}

/* Hands the sealing over to a pipe thread, starting with the partial frame sealed inline so far. */
static ok_err start_pipe(ds_writer *w)
{
    OK_GUARD(ds_pipe_start(w->session, w->fd, &w->pipe));
    ok_err rc = ds_pipe_write(w->pipe, w->plain, w->fill);
    ok_zeroize(w->plain, w->fill);
    w->fill = 0;
    return rc;
}

ok_err ds_writer_write(ds_writer *w, const uint8_t *data, size_t len)
{
    if (w->failed || w->finished)
        return ok_fail(OK_ERR_INVALID_ARG, "the object write %s", w->finished ? "is finished" : "failed earlier");
    size_t F = w->frame_size;
    ok_err rc = OK_OK;
    if (!w->pipe && len > 0 && w->size + len > DS_PIPE_MIN)
        rc = start_pipe(w);
    if (w->pipe && rc == OK_OK) {
        rc = ds_pipe_write(w->pipe, data, len);
        if (rc == OK_OK)
            w->size += len;
        len = 0;
    }
    while (len > 0 && rc == OK_OK) {
        if (w->fill == 0 && len >= F) {
            size_t frames = len / F < SEAL_BATCH ? len / F : SEAL_BATCH;
            rc = seal_out(w, data, frames * F, 0);
            data += frames * F;
            len -= frames * F;
            w->size += frames * F;
            continue;
        }
        size_t take = F - w->fill < len ? F - w->fill : len;
        memcpy(w->plain + w->fill, data, take);
        w->fill += take;
        data += take;
        len -= take;
        w->size += take;
        if (w->fill == F) {
            rc = seal_out(w, w->plain, F, 0);
            w->fill = 0;
        }
    }
    if (rc != OK_OK)
        w->failed = 1;
    return rc;
}

uint64_t ds_writer_size(const ds_writer *w)
{
    return w->size;
}

uint64_t ds_writer_generation(const ds_writer *w)
{
    return w->generation;
}

const uint8_t *ds_writer_dek_wrap(const ds_writer *w, size_t *len)
{
    *len = w->dek_wrap_len;
    return w->dek_wrap;
}

ok_err ds_writer_rewrap(ds_writer *w, uint64_t generation, const uint8_t tk[DS_TK_LEN])
{
    uint8_t dek[DS_DEK_WRAP_MAX], wrap[DS_DEK_WRAP_MAX];
    size_t dek_len = 0, wrap_len = 0;
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ok_aes_kwp_unwrap(w->tk, DS_TK_LEN, w->dek_wrap, w->dek_wrap_len, dek, &dek_len), out);
    if (dek_len + 8 > sizeof wrap) {
        rc = ok_fail(OK_ERR_FORMAT, "unexpected data key length");
        goto out;
    }
    OK_GUARD_GOTO(rc, ok_aes_kwp_wrap(tk, DS_TK_LEN, dek, dek_len, wrap, &wrap_len), out);
    memcpy(w->dek_wrap, wrap, wrap_len);
    w->dek_wrap_len = wrap_len;
    memcpy(w->tk, tk, DS_TK_LEN);
    w->generation = generation;
out:
    ok_zeroize(dek, sizeof dek);
    return rc;
}

ok_err ds_writer_finish(ds_writer *w, char file_id[DS_FILE_ID_LEN + 1])
{
    if (w->failed || w->finished)
        return ok_fail(OK_ERR_INVALID_ARG, "the object write %s", w->finished ? "is finished" : "failed earlier");
    w->failed = 1; /* until it succeeds */
    if (w->pipe) {
        OK_GUARD(ds_pipe_finish(w->pipe));
        ds_pipe_free(w->pipe);
        w->pipe = NULL;
    } else {
        OK_GUARD(seal_out(w, w->plain, w->fill, 1));
    }
    ok_zeroize(w->plain, w->frame_size);
    w->fill = 0;
    if (fsync(w->fd) != 0)
        return ok_fail(OK_ERR_IO, "cannot sync an object file: %s", strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0)
        return ok_fail(OK_ERR_IO, "cannot close an object file: %s", strerror(errno));
    char final_path[DS_PATH_MAX];
    OK_GUARD(ds_random_hex(file_id));
    OK_GUARD(ds_object_path(w->ds, w->uuid, file_id, final_path, sizeof final_path));
    if (rename(w->tmp, final_path) != 0)
        return ok_fail(OK_ERR_IO, "cannot rename an object file: %s", strerror(errno));
    w->tmp[0] = '\0';
    w->finished = 1;
    w->failed = 0;
    ok_err rc = ds_fsync_dir(w->dir);
    if (rc != OK_OK) {
        unlink(final_path);
        w->failed = 1;
    }
    return rc;
}

void ds_writer_free(ds_writer *w)
{
    if (!w)
        return;
    ds_pipe_free(w->pipe); /* before the file it writes is closed */
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp[0])
        unlink(w->tmp);
    ok_env_session_free(w->session);
    ok_secure_free(w->tk, DS_TK_LEN);
    if (w->plain) {
        ok_zeroize(w->plain, w->frame_size);
        free(w->plain);
    }
    free(w->wire); /* sealed frames only: ciphertext */
    free(w);
}

/* ---- The put ------------------------------------------------------------------------------------ */

struct ok_ds_put {
    ok_ds *ds;
    char *tenant;
    char *object;
    char uuid[DS_UUID_LEN + 1];
    char content_type[OK_DS_CONTENT_TYPE_MAX + 1];
    char *meta_json;
    uint64_t expected;
    ds_writer *writer;
    int failed;
};

void ok_ds_put_abort(ok_ds_put *p)
{
    if (!p)
        return;
    ds_writer_free(p->writer);
    free(p->tenant);
    free(p->object);
    free(p->meta_json);
    free(p);
}

ok_err ok_ds_put_begin(ok_ds *ds, const char *tenant, const char *object, const char *content_type,
                       const ok_ds_meta *meta, size_t meta_count, uint64_t expected_size, ok_ds_put **out)
{
    if (!ds || !tenant || !object || !out || (meta_count && !meta))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_put_begin: missing argument");
    *out = NULL;
    if (!ok_ds_object_name_valid(object))
        return ok_fail(OK_ERR_INVALID_ARG, "invalid object name: 1..%d bytes of UTF-8 without control characters",
                       OK_DS_OBJECT_NAME_MAX);
    if (!content_type || !content_type[0])
        content_type = "application/octet-stream";
    ok_ds_put *p = calloc(1, sizeof *p);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    p->ds = ds;
    p->expected = expected_size;
    uint8_t *tk = NULL;
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ds_object_meta_json(content_type, meta, meta_count, &p->meta_json), fail);
    snprintf(p->content_type, sizeof p->content_type, "%s", content_type);
    p->tenant = strdup(tenant);
    p->object = strdup(object);
    tk = ok_secure_alloc(DS_TK_LEN);
    if (!p->tenant || !p->object || !tk) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    ds_tenant_ref ref;
    OK_GUARD_GOTO(rc, ds_tenant_ref_get(ds, tenant, &ref), fail);
    memcpy(p->uuid, ref.uuid, sizeof p->uuid);
    OK_GUARD_GOTO(rc, ds_tk_get(ds, tenant, ref.generation, tk), fail);
    OK_GUARD_GOTO(rc, ds_writer_open(ds, ref.uuid, ref.generation, tk, &p->writer), fail);
    ok_secure_free(tk, DS_TK_LEN);
    *out = p;
    return OK_OK;
fail:
    ok_secure_free(tk, DS_TK_LEN);
    ok_ds_put_abort(p);
    return rc;
}

ok_err ok_ds_put_write(ok_ds_put *p, const uint8_t *data, size_t len)
{
    if (!p || (len && !data))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_put_write: missing argument");
    if (p->failed)
        return ok_fail(OK_ERR_INVALID_ARG, "the put failed earlier");
    uint64_t have = ds_writer_size(p->writer);
    if (p->expected != UINT64_MAX && (len > p->expected || have > p->expected - len)) {
        p->failed = 1;
        return ok_fail(OK_ERR_LIMIT, "the body is longer than the announced %llu bytes",
                       (unsigned long long)p->expected);
    }
    ok_err rc = ds_writer_write(p->writer, data, len);
    if (rc != OK_OK)
        p->failed = 1;
    return rc;
}

typedef struct {
    int found;
    int64_t generation;
    char file_id[DS_FILE_ID_LEN + 1];
    int64_t old_size;
} commit_ctx;

static ok_err read_generation(void *ctx, const ok_val *cols, size_t n)
{
    commit_ctx *c = ctx;
    c->found = 1;
    c->generation = n >= 1 && cols[0].type == OK_VAL_INT ? cols[0].i : -1;
    return OK_OK;
}

static ok_err read_file_id(void *ctx, const ok_val *cols, size_t n)
{
    commit_ctx *c = ctx;
    if (n >= 2 && cols[0].type == OK_VAL_TEXT && cols[1].type == OK_VAL_INT) {
        snprintf(c->file_id, sizeof c->file_id, "%s", cols[0].s);
        c->old_size = cols[1].i;
    }
    return OK_OK;
}

/* In one transaction: the tenant's current generation must still be the file's (else *stale), then the
 * row is upserted. old_file gets the file id of the version replaced ("" when none). */
static ok_err commit_row(ok_ds_put *p, const char *file_id, const char *etag, int64_t modified, int *stale,
                         char old_file[DS_FILE_ID_LEN + 1])
{
    ok_store *st = p->ds->store;
    commit_ctx c = {0};
    size_t wrap_len = 0;
    const uint8_t *wrap = ds_writer_dek_wrap(p->writer, &wrap_len);
    uint64_t generation = ds_writer_generation(p->writer);
    *stale = 0;
    OK_GUARD(st->vt->begin(st));
    ok_err rc = OK_OK;
    ok_val t[] = {OK_VTEXT(p->tenant)};
    OK_GUARD_GOTO(rc, st->vt->query(st, "SELECT tk_generation FROM tenants WHERE name = ?", t, 1, read_generation, &c), fail);
    if (!c.found) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no tenant %s", p->tenant);
        goto fail;
    }
    if (c.generation != (int64_t)generation) {
        *stale = 1;
        st->vt->rollback(st);
        return OK_OK;
    }
    ok_val key[] = {OK_VTEXT(p->tenant), OK_VTEXT(p->object)};
    OK_GUARD_GOTO(rc, st->vt->query(st, "SELECT file_id, size FROM objects WHERE tenant = ? AND name = ?", key, 2,
                                    read_file_id, &c), fail);
    ok_val row[] = {OK_VTEXT(p->tenant), OK_VTEXT(p->object), OK_VTEXT(file_id),
                    OK_VINT((int64_t)ds_writer_size(p->writer)), OK_VINT(modified), OK_VTEXT(etag),
                    OK_VTEXT(p->content_type), OK_VTEXT(p->meta_json), OK_VINT((int64_t)generation),
                    OK_VBLOB(wrap, wrap_len)};
    OK_GUARD_GOTO(rc, st->vt->exec(st,
        "INSERT INTO objects(tenant, name, file_id, size, modified, etag, content_type, meta, tk_generation, dek_wrap)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tenant, name) DO UPDATE SET file_id = excluded.file_id,"
        " size = excluded.size, modified = excluded.modified, etag = excluded.etag,"
        " content_type = excluded.content_type, meta = excluded.meta, tk_generation = excluded.tk_generation,"
        " dek_wrap = excluded.dek_wrap", row, sizeof row / sizeof *row, NULL), fail);
    int64_t size = (int64_t)ds_writer_size(p->writer);
    OK_GUARD_GOTO(rc, ds_objects_count(p->ds, p->tenant, c.file_id[0] ? 0 : 1, c.file_id[0] ? size - c.old_size : size),
                  fail);
    OK_GUARD_GOTO(rc, st->vt->commit(st), fail);
    memcpy(old_file, c.file_id, sizeof c.file_id);
    return OK_OK;
fail:
    st->vt->rollback(st);
    return rc;
}

/* A re-key made a newer TK generation current while the body came in: the DEK moves to it. */
static ok_err follow_generation(ok_ds_put *p)
{
    ds_tenant_ref ref;
    OK_GUARD(ds_tenant_ref_get(p->ds, p->tenant, &ref));
    if (ref.generation == ds_writer_generation(p->writer))
        return OK_OK;
    uint8_t *tk = ok_secure_alloc(DS_TK_LEN);
    if (!tk)
        return ok_fail(OK_ERR_NOMEM, "out of secure memory");
    ok_err rc = ds_tk_get(p->ds, p->tenant, ref.generation, tk);
    if (rc == OK_OK)
        rc = ds_writer_rewrap(p->writer, ref.generation, tk);
    ok_secure_free(tk, DS_TK_LEN);
    return rc;
}

static void fill_info(const ok_ds_put *p, const char *etag, int64_t modified, ok_ds_object_info *out)
{
    if (!out)
        return;
    ok_val cols[9] = {OK_VTEXT(p->object), OK_VINT((int64_t)ds_writer_size(p->writer)), OK_VINT(modified),
                      OK_VTEXT(etag), OK_VTEXT(p->content_type), OK_VTEXT(p->meta_json), OK_VTEXT(""),
                      OK_VINT(0), OK_VBLOB((const uint8_t *)"", 0)};
    (void)ds_object_from_row(cols, 9, out, NULL);
}

ok_err ok_ds_put_commit(ok_ds_put *p, ok_ds_object_info *out)
{
    if (!p)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_put_commit: missing argument");
    ok_err rc = OK_OK;
    char file_id[DS_FILE_ID_LEN + 1] = "", etag[DS_UUID_LEN + 1], old_file[DS_FILE_ID_LEN + 1] = "";
    if (p->failed) {
        rc = ok_fail(OK_ERR_INVALID_ARG, "the put failed earlier");
        goto out;
    }
    uint64_t have = ds_writer_size(p->writer);
    if (p->expected != UINT64_MAX && have < p->expected) {
        rc = ok_fail(OK_ERR_TRUNCATED, "the body ended after %llu of %llu bytes", (unsigned long long)have,
                     (unsigned long long)p->expected);
        goto out;
    }
    OK_GUARD_GOTO(rc, ds_writer_finish(p->writer, file_id), out);
    OK_GUARD_GOTO(rc, ds_random_hex(etag), out);
    int64_t modified = ds_now();
    int stale = 1;
    for (int attempt = 0; attempt < COMMIT_ATTEMPTS && stale; attempt++) {
        OK_GUARD_GOTO(rc, follow_generation(p), out);
        OK_GUARD_GOTO(rc, commit_row(p, file_id, etag, modified, &stale, old_file), out);
    }
    if (stale) {
        rc = ok_fail(OK_ERR_CONFLICT, "the tenant was re-keyed repeatedly during the put; try again");
        goto out;
    }
    file_id[0] = '\0'; /* the row owns it now */
    if (old_file[0])
        ds_object_unlink(p->ds, p->uuid, old_file);
    fill_info(p, etag, modified, out);
out:
    if (file_id[0])
        ds_object_unlink(p->ds, p->uuid, file_id);
    ok_ds_put_abort(p);
    return rc;
}
