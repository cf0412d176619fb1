/* Reading objects: a get opens the version its row names (the open file descriptor keeps that version
 * readable even when a put replaces it), authenticates the header with the row's DEK wrap, checks the
 * row's size against the file and its final frame, and then serves any byte range by reading and opening
 * only the frames that hold it (frame i sits at header_len + i * (frame_size + 20); the final frame is the
 * one at size / frame_size and holds size % frame_size bytes). Only verified plaintext is returned; one
 * opened frame is kept so sequential reads open each frame once, and sequential reads keep the kernel
 * reading ahead of them; a long read in order has the frames after it opened on another thread
 * (open_ahead.c), which a jump elsewhere stops. Writing is object_write.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataservice/objects_internal.h"

#define OPEN_ATTEMPTS 4 /* a row read just before a put or re-key replaced it is read again */
/* Read-ahead: while frames are read in order, the kernel is asked (POSIX_FADV_WILLNEED, which starts the
 * reads and returns) for the next RA_WINDOW bytes of the file, topped up once RA_STEP of it was used, so
 * the disk works while the frames already read are opened and sent. */
#define RA_WINDOW (4u << 20)
#define RA_STEP (1u << 20)

struct ok_ds_get {
    ds_frame_src src;       /* fd, session and layout, for ds_frame_read_open and the open-ahead thread */
    ds_open_ahead *ahead;   /* opening the next frames, while reads go in order */
    int fd;
    ok_env_session *session;
    uint64_t size;          /* plaintext bytes (the row's, checked against the file) */
    uint32_t header_len;
    uint32_t frame_size;
    uint64_t last;          /* index of the final frame */
    uint8_t *wire;          /* one wire frame */
    uint8_t *plain;         /* the opened frame kept (wiped) */
    uint64_t cached;        /* its index */
    size_t cached_len;
    int have_cache;
    int failed;
    uint64_t file_size;
    uint64_t ra_end;        /* the file is being read ahead up to here */
};

/* Keeps the read-ahead window in front of a read at file offset off (a jump elsewhere restarts it). */
static void read_ahead(ok_ds_get *g, uint64_t off)
{
    if (off < g->ra_end && g->ra_end - off > RA_WINDOW - RA_STEP)
        return;
    if (off >= g->ra_end || g->ra_end - off > RA_WINDOW)
        g->ra_end = off;
    uint64_t until = g->file_size - off > RA_WINDOW ? off + RA_WINDOW : g->file_size;
    if (until > g->ra_end) /* advice only: a failure changes nothing but speed */
        (void)posix_fadvise(g->fd, (off_t)g->ra_end, (off_t)(until - g->ra_end), POSIX_FADV_WILLNEED);
    g->ra_end = until;
}

static ok_err pread_all(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ok_fail(OK_ERR_IO, "cannot read an object file: %s", strerror(errno));
        if (r == 0)
            return ok_fail(OK_ERR_TRUNCATED, "an object file is shorter than its row says");
        buf += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return OK_OK;
}

static void drop_cache(ok_ds_get *g)
{
    if (g->plain && g->have_cache)
        ok_zeroize(g->plain, g->cached_len);
    g->have_cache = 0;
    g->cached_len = 0;
}

ok_err ds_frame_read_open(const ds_frame_src *src, uint64_t idx, uint8_t *wire, uint8_t *plain, size_t *n)
{
    size_t F = src->frame_size;
    size_t want = idx == src->last ? (size_t)(src->size % F) : F;
    size_t wire_len = want + OK_ENV_FRAME_OVERHEAD;
    uint64_t off = (uint64_t)src->header_len + idx * ((uint64_t)F + OK_ENV_FRAME_OVERHEAD);
    int final = 0;
    *n = 0;
    OK_GUARD(pread_all(src->fd, wire, wire_len, off));
    OK_GUARD(ok_env_open_frame(src->session, idx, wire, wire_len, plain, n, &final));
    if (*n != want || final != (idx == src->last)) {
        ok_zeroize(plain, *n);
        *n = 0;
        return ok_fail(OK_ERR_FORMAT, "a stored object does not match its row (frame %llu)", (unsigned long long)(idx + 1));
    }
    return OK_OK;
}

/* Reads and opens frame idx into the cache: from the open-ahead thread when the read follows the one
 * before and the object is long, else inline. */
static ok_err load_frame(ok_ds_get *g, uint64_t idx)
{
    int in_order = g->have_cache && idx == g->cached + 1;
    g->have_cache = 0; /* its plaintext is overwritten by the next frame and wiped on close */
    if (g->ahead && (!in_order || idx != ds_open_ahead_next(g->ahead))) {
        ds_open_ahead_stop(g->ahead); /* a jump: the session is ours again */
        g->ahead = NULL;
    }
    if (!g->ahead && in_order && g->last - idx >= DS_AHEAD_MIN_FRAMES)
        (void)ds_open_ahead_start(&g->src, idx, &g->ahead); /* without it, reads go on inline */
    size_t n = 0;
    ok_err rc;
    if (g->ahead) {
        rc = ds_open_ahead_take(g->ahead, idx, &g->plain, &n);
    } else {
        if (idx != g->last)
            read_ahead(g, (uint64_t)g->header_len + idx * ((uint64_t)g->frame_size + OK_ENV_FRAME_OVERHEAD));
        rc = ds_frame_read_open(&g->src, idx, g->wire, g->plain, &n);
    }
    if (rc != OK_OK) {
        g->failed = 1;
        return rc;
    }
    g->cached = idx;
    g->cached_len = n;
    g->have_cache = 1;
    return OK_OK;
}

void ok_ds_get_close(ok_ds_get *g)
{
    if (!g)
        return;
    ds_open_ahead_stop(g->ahead);
    drop_cache(g);
    if (g->fd >= 0)
        close(g->fd);
    ok_env_session_free(g->session);
    if (g->plain) {
        ok_zeroize(g->plain, g->frame_size);
        free(g->plain);
    }
    free(g->wire);
    free(g);
}

static ok_err read_header(ok_ds_get *g, ok_env_header **h)
{
    uint8_t prefix[OK_ENV_PREFIX_LEN];
    uint32_t header_len = 0;
    OK_GUARD(pread_all(g->fd, prefix, sizeof prefix, 0));
    OK_GUARD(ok_env_header_prefix(prefix, &header_len));
    uint8_t *raw = malloc(header_len);
    if (!raw)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_err rc = pread_all(g->fd, raw, header_len, 0);
    if (rc == OK_OK)
        rc = ok_env_header_parse(raw, header_len, h);
    free(raw);
    g->header_len = header_len;
    return rc;
}

/* Opens the header with the TK of the row's generation and the row's DEK wrap. */
static ok_err open_session(ok_ds *ds, const char *tenant, const char *uuid, const ds_object_ref *ref,
                           const ok_env_header *h, ok_env_session **out)
{
    uint8_t *tk = ok_secure_alloc(DS_TK_LEN);
    if (!tk)
        return ok_fail(OK_ERR_NOMEM, "out of secure memory");
    ok_provider *prov = NULL;
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ds_tk_get(ds, tenant, ref->generation, tk), out);
    OK_GUARD_GOTO(rc, ds_tenant_provider_new(uuid, ref->generation, tk, ref->dek_wrap, ref->dek_wrap_len, &prov), out);
    OK_GUARD_GOTO(rc, ok_env_decrypt_init(out, h, &prov, 1, 1), out);
out:
    ok_provider_free(prov);
    ok_secure_free(tk, DS_TK_LEN);
    return rc;
}

ok_err ds_get_open_ref(ok_ds *ds, const char *tenant, const char *uuid, const ds_object_ref *ref, ok_ds_get **out)
{
    char path[DS_PATH_MAX];
    OK_GUARD(ds_object_path(ds, uuid, ref->file_id, path, sizeof path));
    ok_ds_get *g = calloc(1, sizeof *g);
    if (!g)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    g->size = ref->size;
    ok_env_header *h = NULL;
    ok_err rc = OK_OK;
    g->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0) {
        rc = errno == ENOENT ? ok_fail(OK_ERR_NOT_FOUND, "the object's file is gone (replaced or deleted)")
                             : ok_fail(OK_ERR_IO, "cannot open an object file: %s", strerror(errno));
        goto fail;
    }
    OK_GUARD_GOTO(rc, read_header(g, &h), fail);
    OK_GUARD_GOTO(rc, open_session(ds, tenant, uuid, ref, h, &g->session), fail);
    g->frame_size = h->frame_size;
    g->last = g->size / g->frame_size;
    if (g->last >= OK_ENV_MAX_FRAMES) {
        rc = ok_fail(OK_ERR_FORMAT, "a stored object's size is past the frame limit");
        goto fail;
    }
    /* The file must be exactly as long as the row's size makes it. */
    uint64_t F = g->frame_size;
    uint64_t expect = g->header_len + g->last * (F + OK_ENV_FRAME_OVERHEAD) + g->size % F + OK_ENV_FRAME_OVERHEAD;
    struct stat st;
    if (fstat(g->fd, &st) != 0) {
        rc = ok_fail(OK_ERR_IO, "cannot stat an object file: %s", strerror(errno));
        goto fail;
    }
    if ((uint64_t)st.st_size != expect) {
        rc = ok_fail(OK_ERR_FORMAT, "a stored object's file does not match its row (%llu bytes, expected %llu)",
                     (unsigned long long)st.st_size, (unsigned long long)expect);
        goto fail;
    }
    g->file_size = expect;
    (void)posix_fadvise(g->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* advice: a larger kernel read-ahead */
    g->src = (ds_frame_src){.fd = g->fd, .session = g->session, .header_len = g->header_len,
                            .frame_size = g->frame_size, .size = g->size, .last = g->last};
    g->wire = malloc(g->frame_size + OK_ENV_FRAME_OVERHEAD);
    g->plain = malloc(g->frame_size);
    if (!g->wire || !g->plain) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* The final frame says how long the object is: it is checked (and kept) now. */
    OK_GUARD_GOTO(rc, load_frame(g, g->last), fail);
    ok_env_header_free(h);
    *out = g;
    return OK_OK;
fail:
    ok_env_header_free(h);
    ok_ds_get_close(g);
    return rc;
}

ok_err ok_ds_get_open(ok_ds *ds, const char *tenant, const char *object, ok_ds_object_info *info, ok_ds_get **out)
{
    if (!ds || !tenant || !object || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_get_open: missing argument");
    *out = NULL;
    if (!ok_ds_object_name_valid(object))
        return ok_fail(OK_ERR_INVALID_ARG, "invalid object name");
    ds_tenant_ref tref;
    OK_GUARD(ds_tenant_ref_get(ds, tenant, &tref));
    ok_err rc = OK_OK;
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
        ds_object_ref ref;
        OK_GUARD(ds_object_lookup(ds, tenant, object, info, &ref));
        rc = ds_get_open_ref(ds, tenant, tref.uuid, &ref, out);
        ok_zeroize(ref.dek_wrap, sizeof ref.dek_wrap);
        /* Not found after the row was: a put, delete or re-key replaced the version in between. */
        if (rc != OK_ERR_NOT_FOUND)
            break;
    }
    return rc;
}

ok_err ok_ds_get_read(ok_ds_get *g, uint64_t offset, uint8_t *buf, size_t len, size_t *got)
{
    if (!g || !got || (len && !buf))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_get_read: missing argument");
    *got = 0;
    if (g->failed)
        return ok_fail(OK_ERR_INVALID_ARG, "this get failed earlier");
    size_t F = g->frame_size;
    while (len > 0 && offset < g->size) {
        uint64_t idx = offset / F;
        if (!g->have_cache || g->cached != idx) {
            ok_err rc = load_frame(g, idx);
            if (rc != OK_OK) {
                ok_zeroize(buf - *got, *got); /* nothing of a failed read is released */
                *got = 0;
                return rc;
            }
        }
        size_t in = (size_t)(offset - idx * F);
        size_t n = g->cached_len - in < len ? g->cached_len - in : len;
        memcpy(buf, g->plain + in, n);
        buf += n;
        len -= n;
        offset += n;
        *got += n;
    }
    return OK_OK;
}
