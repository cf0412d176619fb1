/* Objects as rows and files: name and metadata rules, the objects row (reading it, head, delete, list in
 * byte order), the tenant's object directory (made, erased), crash recovery (temporary files and files no
 * row names are removed) and the per-tenant statistics (the tenants row's object counters, which every
 * objects row change moves in its own transaction). Writing the files and the put are
 * object_write.c; reading is object_read.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dataservice/objects_internal.h"

#define LIST_MAX 1000

/* ---- Names and metadata ------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (strict: no overlongs, surrogates or code points past U+10FFFF) and
 * its code point; 0 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, min = 0x80, *cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, min = 0x800, *cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, *cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

int ok_ds_object_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t len = strnlen(name, OK_DS_OBJECT_NAME_MAX + 1);
    if (len < 1 || len > OK_DS_OBJECT_NAME_MAX)
        return 0;
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_next(s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) /* C0, DEL, C1 */
            return 0;
        i += n;
    }
    return 1;
}

static int printable(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

static int meta_key_valid(const char *k)
{
    size_t len = strnlen(k, OK_DS_META_KEY_MAX + 1);
    if (len < 1 || len > OK_DS_META_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'z') || k[i] == '-'))
            return 0;
    return 1;
}

ok_err ds_object_meta_json(const char *content_type, const ok_ds_meta *meta, size_t meta_count, char **json)
{
    if (!printable(content_type, OK_DS_CONTENT_TYPE_MAX))
        return ok_fail(OK_ERR_INVALID_ARG, "the content type must be printable ASCII of at most %d characters",
                       OK_DS_CONTENT_TYPE_MAX);
    if (meta_count > OK_DS_META_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "%zu metadata entries (at most %d)", meta_count, OK_DS_META_MAX);
    json_t *obj = json_object();
    if (!obj)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_err rc = OK_OK;
    for (size_t i = 0; i < meta_count && rc == OK_OK; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!meta_key_valid(k))
            rc = ok_fail(OK_ERR_INVALID_ARG, "invalid metadata key: 1..%d of 0-9, a-z and '-'", OK_DS_META_KEY_MAX);
        else if (!printable(v, OK_DS_META_VALUE_MAX))
            rc = ok_fail(OK_ERR_INVALID_ARG, "metadata %s: the value must be printable ASCII of at most %d characters",
                         k, OK_DS_META_VALUE_MAX);
        else if (json_object_get(obj, k))
            rc = ok_fail(OK_ERR_INVALID_ARG, "metadata key %s given twice", k);
        else if (json_object_set_new(obj, k, json_string(v)) != 0)
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    if (rc == OK_OK) {
        *json = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (!*json)
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    json_decref(obj);
    return rc;
}

static ok_err meta_from_json(const char *text, ok_ds_object_info *info)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    ok_err rc = OK_OK;
    info->meta_count = 0;
    if (!json_is_object(obj) || json_object_size(obj) > OK_DS_META_MAX) {
        rc = ok_fail(OK_ERR_FORMAT, "stored object metadata is malformed");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        const char *s = json_string_value(v);
        if (!s || strlen(k) > OK_DS_META_KEY_MAX || strlen(s) > OK_DS_META_VALUE_MAX) {
            rc = ok_fail(OK_ERR_FORMAT, "stored object metadata is malformed");
            goto out;
        }
        ok_ds_meta *m = &info->meta[info->meta_count++];
        snprintf(m->key, sizeof m->key, "%s", k);
        snprintf(m->value, sizeof m->value, "%s", s);
    }
out:
    json_decref(obj);
    return rc;
}

/* ---- Rows --------------------------------------------------------------------------------------- */

ok_err ds_object_from_row(const ok_val *cols, size_t ncols, ok_ds_object_info *info, ds_object_ref *ref)
{
    if (ncols < 9 || cols[0].type != OK_VAL_TEXT || cols[1].type != OK_VAL_INT || cols[2].type != OK_VAL_INT ||
        cols[3].type != OK_VAL_TEXT || cols[4].type != OK_VAL_TEXT || cols[5].type != OK_VAL_TEXT ||
        cols[6].type != OK_VAL_TEXT || cols[7].type != OK_VAL_INT || cols[8].type != OK_VAL_BLOB ||
        cols[1].i < 0 || cols[7].i < 0)
        return ok_fail(OK_ERR_FORMAT, "a stored object row is malformed");
    if (info) {
        memset(info, 0, offsetof(ok_ds_object_info, meta));
        snprintf(info->name, sizeof info->name, "%s", cols[0].s);
        info->size = (uint64_t)cols[1].i;
        info->modified = cols[2].i;
        snprintf(info->etag, sizeof info->etag, "%s", cols[3].s);
        snprintf(info->content_type, sizeof info->content_type, "%s", cols[4].s);
        OK_GUARD(meta_from_json(cols[5].s, info));
    }
    if (ref) {
        if (strlen(cols[6].s) != DS_FILE_ID_LEN || strspn(cols[6].s, "0123456789abcdef") != DS_FILE_ID_LEN ||
            cols[8].len > sizeof ref->dek_wrap)
            return ok_fail(OK_ERR_FORMAT, "a stored object row is malformed");
        memcpy(ref->file_id, cols[6].s, DS_FILE_ID_LEN + 1);
        ref->size = (uint64_t)cols[1].i;
        ref->generation = (uint64_t)cols[7].i;
        memcpy(ref->dek_wrap, cols[8].b, cols[8].len);
        ref->dek_wrap_len = cols[8].len;
    }
    return OK_OK;
}

typedef struct {
    ok_ds_object_info *info;
    ds_object_ref *ref;
    int found;
} lookup_ctx;

static ok_err lookup_row(void *ctx, const ok_val *cols, size_t n)
{
    lookup_ctx *c = ctx;
    c->found = 1;
    return ds_object_from_row(cols, n, c->info, c->ref);
}

ok_err ds_object_lookup(ok_ds *ds, const char *tenant, const char *name, ok_ds_object_info *info, ds_object_ref *ref)
{
    lookup_ctx c = {.info = info, .ref = ref};
    ok_val key[] = {OK_VTEXT(tenant), OK_VTEXT(name)};
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT " DS_OBJECT_COLS " FROM objects WHERE tenant = ? AND name = ?",
                                  key, 2, lookup_row, &c));
    if (!c.found)
        return ok_fail(OK_ERR_NOT_FOUND, "no object %s in tenant %s", name, tenant);
    return OK_OK;
}

ok_err ok_ds_object_head(ok_ds *ds, const char *tenant, const char *object, ok_ds_object_info *out)
{
    if (!ds || !tenant || !object || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_object_head: missing argument");
    if (!ok_ds_object_name_valid(object))
        return ok_fail(OK_ERR_INVALID_ARG, "invalid object name");
    ds_tenant_ref ref;
    OK_GUARD(ds_tenant_ref_get(ds, tenant, &ref));
    return ds_object_lookup(ds, tenant, object, out, NULL);
}

typedef struct {
    char file_id[DS_FILE_ID_LEN + 1];
    int64_t size;
} doomed_row;

static ok_err take_doomed(void *ctx, const ok_val *cols, size_t n)
{
    doomed_row *d = ctx;
    if (n >= 2 && cols[0].type == OK_VAL_TEXT && cols[1].type == OK_VAL_INT) {
        snprintf(d->file_id, sizeof d->file_id, "%s", cols[0].s);
        d->size = cols[1].i;
    }
    return OK_OK;
}

ok_err ok_ds_object_delete(ok_ds *ds, const char *tenant, const char *object)
{
    if (!ds || !tenant || !object)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_object_delete: missing argument");
    if (!ok_ds_object_name_valid(object))
        return ok_fail(OK_ERR_INVALID_ARG, "invalid object name");
    ds_tenant_ref ref;
    OK_GUARD(ds_tenant_ref_get(ds, tenant, &ref));
    ok_store *st = ds->store;
    doomed_row d = {.file_id = ""};
    ok_val key[] = {OK_VTEXT(tenant), OK_VTEXT(object)};
    OK_GUARD(st->vt->begin(st));
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, st->vt->query(st, "SELECT file_id, size FROM objects WHERE tenant = ? AND name = ?", key, 2,
                                    take_doomed, &d), fail);
    if (!d.file_id[0]) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no object %s in tenant %s", object, tenant);
        goto fail;
    }
    OK_GUARD_GOTO(rc, st->vt->exec(st, "DELETE FROM objects WHERE tenant = ? AND name = ?", key, 2, NULL), fail);
    OK_GUARD_GOTO(rc, ds_objects_count(ds, tenant, -1, -d.size), fail);
    OK_GUARD_GOTO(rc, st->vt->commit(st), fail);
    ds_object_unlink(ds, ref.uuid, d.file_id);
    return OK_OK;
fail:
    st->vt->rollback(st);
    return rc;
}

/* ---- Listing ------------------------------------------------------------------------------------ */

typedef struct {
    ok_ds_object_page *page;
    size_t max;
    size_t cap;
} list_ctx;

static ok_err list_row(void *ctx, const ok_val *cols, size_t n)
{
    list_ctx *c = ctx;
    ok_ds_object_page *pg = c->page;
    if (pg->count == c->max) { /* one past the page: there is more */
        if (cols[0].type != OK_VAL_TEXT)
            return ok_fail(OK_ERR_FORMAT, "a stored object row is malformed");
        pg->next_marker = strdup(pg->items[pg->count - 1].name);
        return pg->next_marker ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    if (pg->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        if (cap > c->max)
            cap = c->max;
        ok_ds_object_info *items = realloc(pg->items, cap * sizeof *items);
        if (!items)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        pg->items = items;
        c->cap = cap;
    }
    OK_GUARD(ds_object_from_row(cols, n, &pg->items[pg->count], NULL));
    pg->count++;
    return OK_OK;
}

ok_err ok_ds_object_list(ok_ds *ds, const char *tenant, const char *prefix, const char *marker, size_t max,
                         ok_ds_object_page *out)
{
    if (!ds || !tenant || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_object_list: missing argument");
    memset(out, 0, sizeof *out);
    if (max < 1 || max > LIST_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "maxresults must be 1..%d", LIST_MAX);
    if ((prefix && strlen(prefix) > OK_DS_OBJECT_NAME_MAX) || (marker && strlen(marker) > OK_DS_OBJECT_NAME_MAX))
        return ok_fail(OK_ERR_INVALID_ARG, "prefix and marker are at most %d bytes", OK_DS_OBJECT_NAME_MAX);
    ds_tenant_ref ref;
    OK_GUARD(ds_tenant_ref_get(ds, tenant, &ref));
    /* The names starting with prefix are [prefix, successor): the successor drops trailing 0xff bytes and
     * increments the last byte (none: no upper bound). Comparisons are bytewise (BINARY collation). */
    char lower[OK_DS_OBJECT_NAME_MAX + 1] = "", upper[OK_DS_OBJECT_NAME_MAX + 1] = "";
    int bounded = 0;
    if (prefix && prefix[0]) {
        snprintf(lower, sizeof lower, "%s", prefix);
        size_t n = strlen(prefix);
        while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
            n--;
        if (n > 0) {
            memcpy(upper, prefix, n);
            upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
            upper[n] = '\0';
            bounded = 1;
        }
    }
    ok_val params[] = {OK_VTEXT(tenant), OK_VTEXT(marker ? marker : ""), OK_VTEXT(lower), OK_VTEXT(upper),
                       OK_VINT((int64_t)max + 1)};
    const char *sql = bounded
        ? "SELECT " DS_OBJECT_COLS " FROM objects WHERE tenant = ? AND name > ? AND name >= ? AND name < ?"
          " ORDER BY name LIMIT ?"
        : "SELECT " DS_OBJECT_COLS " FROM objects WHERE tenant = ? AND name > ? AND name >= ?"
          " ORDER BY name LIMIT ?";
    if (!bounded)
        params[3] = params[4];
    list_ctx c = {.page = out, .max = max};
    ok_err rc = ds->store->vt->query(ds->store, sql, params, bounded ? 5 : 4, list_row, &c);
    if (rc != OK_OK)
        ok_ds_object_page_clear(out);
    return rc;
}

void ok_ds_object_page_clear(ok_ds_object_page *p)
{
    if (!p)
        return;
    free(p->items);
    free(p->next_marker);
    memset(p, 0, sizeof *p);
}

/* ---- Files and directories ---------------------------------------------------------------------- */

ok_err ds_object_path(const ok_ds *ds, const char *uuid, const char *file, char *out, size_t len)
{
    int n = file ? snprintf(out, len, "%s/%s/%s", ds->objects_dir, uuid, file)
                 : snprintf(out, len, "%s/%s", ds->objects_dir, uuid);
    if (n < 0 || (size_t)n >= len)
        return ok_fail(OK_ERR_LIMIT, "the data directory path is too long");
    return OK_OK;
}

void ds_object_unlink(ok_ds *ds, const char *uuid, const char *file_id)
{
    char path[DS_PATH_MAX];
    if (ds_object_path(ds, uuid, file_id, path, sizeof path) == OK_OK)
        (void)unlink(path);
}

ok_err ds_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ok_fail(OK_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return ok_fail(OK_ERR_IO, "cannot sync directory %s: %s", dir, strerror(e));
    return OK_OK;
}

static ok_err make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return ok_fail(OK_ERR_IO, "cannot create directory %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ok_fail(OK_ERR_IO, "%s is not a directory", path);
    return OK_OK;
}

ok_err ds_objects_tenant_init(ok_ds *ds, const char *uuid)
{
    char path[DS_PATH_MAX];
    OK_GUARD(make_dir(ds->objects_dir));
    OK_GUARD(ds_object_path(ds, uuid, NULL, path, sizeof path));
    OK_GUARD(make_dir(path));
    return ds_fsync_dir(ds->objects_dir);
}

/* Calls keep(ctx, name) for every regular file in dir and unlinks those it returns 0 for. Returns the
 * number of files left in *left. */
static ok_err sweep_dir(const char *dir, int (*keep)(void *ctx, const char *name), void *ctx, size_t *left)
{
    DIR *d = opendir(dir);
    *left = 0;
    if (!d)
        return errno == ENOENT ? OK_OK : ok_fail(OK_ERR_IO, "cannot read directory %s: %s", dir, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode) ||
            (keep && keep(ctx, e->d_name))) {
            (*left)++;
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed = 1;
        else
            (*left)++;
    }
    closedir(d);
    return removed ? ds_fsync_dir(dir) : OK_OK;
}

ok_err ds_objects_tenant_erase(ok_ds *ds, const char *uuid)
{
    char path[DS_PATH_MAX];
    size_t left = 0;
    OK_GUARD(ds_object_path(ds, uuid, NULL, path, sizeof path));
    OK_GUARD(sweep_dir(path, NULL, NULL, &left));
    if (rmdir(path) != 0 && errno != ENOENT)
        return ok_fail(OK_ERR_IO, "cannot remove directory %s: %s", path, strerror(errno));
    return ds_fsync_dir(ds->objects_dir);
}

/* ---- Recovery ----------------------------------------------------------------------------------- */

typedef struct {
    char (*ids)[DS_FILE_ID_LEN + 1];
    size_t count, cap;
    int tenant_exists;
} file_set;

static ok_err collect_id(void *ctx, const ok_val *cols, size_t n)
{
    file_set *fs = ctx;
    if (n < 1 || cols[0].type != OK_VAL_TEXT || strlen(cols[0].s) != DS_FILE_ID_LEN)
        return OK_OK;
    if (fs->count == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 64;
        void *ids = realloc(fs->ids, cap * sizeof *fs->ids);
        if (!ids)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        fs->ids = ids;
        fs->cap = cap;
    }
    memcpy(fs->ids[fs->count++], cols[0].s, DS_FILE_ID_LEN + 1);
    return OK_OK;
}

static ok_err note_tenant(void *ctx, const ok_val *cols, size_t n)
{
    ((file_set *)ctx)->tenant_exists = 1;
    return OK_OK;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int keep_named(void *ctx, const char *name)
{
    file_set *fs = ctx;
    if (fs->count == 0 || strncmp(name, DS_TMP_PREFIX, strlen(DS_TMP_PREFIX)) == 0 || strlen(name) != DS_FILE_ID_LEN)
        return 0;
    return bsearch(name, fs->ids, fs->count, sizeof *fs->ids, cmp_id) != NULL;
}

static ok_err recover_tenant_dir(ok_ds *ds, const char *uuid)
{
    file_set fs = {0};
    ok_val key[] = {OK_VTEXT(uuid)};
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ds->store->vt->query(ds->store, "SELECT 1 FROM tenants WHERE uuid = ?", key, 1, note_tenant, &fs), out);
    OK_GUARD_GOTO(rc, ds->store->vt->query(ds->store, "SELECT o.file_id FROM objects o JOIN tenants t ON t.name = o.tenant"
                                                      " WHERE t.uuid = ?", key, 1, collect_id, &fs), out);
    if (fs.count)
        qsort(fs.ids, fs.count, sizeof *fs.ids, cmp_id);
    char path[DS_PATH_MAX];
    size_t left = 0;
    OK_GUARD_GOTO(rc, ds_object_path(ds, uuid, NULL, path, sizeof path), out);
    OK_GUARD_GOTO(rc, sweep_dir(path, keep_named, &fs, &left), out);
    if (!fs.tenant_exists && left == 0 && rmdir(path) == 0)
        rc = ds_fsync_dir(ds->objects_dir);
out:
    free(fs.ids);
    return rc;
}

ok_err ds_objects_recover(ok_ds *ds)
{
    OK_GUARD(make_dir(ds->objects_dir));
    DIR *d = opendir(ds->objects_dir);
    if (!d)
        return ok_fail(OK_ERR_IO, "cannot read directory %s: %s", ds->objects_dir, strerror(errno));
    ok_err rc = OK_OK;
    struct dirent *e;
    while (rc == OK_OK && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        rc = recover_tenant_dir(ds, e->d_name);
    }
    closedir(d);
    return rc;
}

/* ---- Statistics --------------------------------------------------------------------------------- */

static ok_err stats_row(void *ctx, const ok_val *cols, size_t n)
{
    ok_ds_tenant_info *info = ctx;
    if (n >= 2 && cols[0].type == OK_VAL_INT && cols[1].type == OK_VAL_INT) {
        info->objects = (uint64_t)cols[0].i;
        info->bytes = (uint64_t)cols[1].i;
    }
    return OK_OK;
}

static ok_err job_row(void *ctx, const ok_val *cols, size_t n)
{
    ok_ds_tenant_info *info = ctx;
    if (n < 4 || cols[0].type != OK_VAL_INT || cols[1].type != OK_VAL_INT || cols[2].type != OK_VAL_INT ||
        cols[3].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "a stored re-key job is malformed");
    info->rekey_state = (ok_ds_rekey_state)cols[0].i;
    info->rekey_reencrypt = cols[1].i != 0;
    info->rekey_done = (uint64_t)cols[2].i;
    info->rekey_total = (uint64_t)cols[3].i;
    if (info->rekey_done > info->rekey_total) /* objects put while the job ran */
        info->rekey_total = info->rekey_done;
    return OK_OK;
}

ok_err ds_objects_stats(ok_ds *ds, const char *tenant, ok_ds_tenant_info *info)
{
    ok_val key[] = {OK_VTEXT(tenant)};
    info->objects = info->bytes = 0;
    info->rekey_state = OK_DS_REKEY_NONE;
    info->rekey_reencrypt = 0;
    info->rekey_done = info->rekey_total = 0;
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT object_count, byte_count FROM tenants WHERE name = ?",
                                  key, 1, stats_row, info));
    return ds->store->vt->query(ds->store, "SELECT state, reencrypt, done, total FROM rekey_jobs WHERE tenant = ?",
                                key, 1, job_row, info);
}

ok_err ds_objects_count(ok_ds *ds, const char *tenant, int64_t objects, int64_t bytes)
{
    if (objects == 0 && bytes == 0)
        return OK_OK;
    int64_t changes = 0;
    ok_val v[] = {OK_VINT(objects), OK_VINT(bytes), OK_VTEXT(tenant)};
    OK_GUARD(ds->store->vt->exec(ds->store, "UPDATE tenants SET object_count = object_count + ?,"
                                            " byte_count = byte_count + ? WHERE name = ?", v, 3, &changes));
    if (changes != 1)
        return ok_fail(OK_ERR_NOT_FOUND, "no tenant %s", tenant);
    return OK_OK;
}
