/* The fixture shared by the data service's object and re-key tests (test_ds_objects.c, test_ds_rekey.c):
 * a dev vault in a temporary directory holding the service root key, a data service opened on it with one
 * service-managed tenant (TENANT), created for each test and removed after it, and helpers to put and read
 * objects, find the tenant's files and query the store. Header-only (static inline): each test executable
 * includes it once. */
#ifndef OWNKEY_TEST_DS_FIXTURE_H
#define OWNKEY_TEST_DS_FIXTURE_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "dataservice/ds_internal.h"
#include "ownkey/dataservice.h"
#include "ownkey/envelope.h"
#include "vault_fixture.h"

#define F OK_ENV_DEFAULT_FRAME
#define W (OK_ENV_DEFAULT_FRAME + OK_ENV_FRAME_OVERHEAD)
#define TENANT "t1"

typedef struct {
    char *tmp;
    char vault_dir[512];
    char data_dir[512];
    ok_vault *v;
    ok_ds *ds;
} ds_fixture;

/* ---- Helpers ----------------------------------------------------------------------------------- */

static inline void pattern(uint8_t *p, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 7);
}

static inline void ds_reopen(ds_fixture *f)
{
    ok_ds_close(f->ds);
    f->ds = NULL;
    ok_ds_config cfg = {.dir = f->data_dir, .vault = f->v};
    assert_int_equal(ok_ds_open(&cfg, &f->ds), OK_OK);
}

static inline int setup(void **state)
{
    ds_fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->tmp = test_make_tmpdir()))
        return -1;
    snprintf(f->vault_dir, sizeof f->vault_dir, "%s/vault", f->tmp);
    snprintf(f->data_dir, sizeof f->data_dir, "%s/data", f->tmp);
    if (mkdir(f->data_dir, 0700) != 0)
        return -1;
    f->v = fixture_new_vault(f->vault_dir, 0);
    ds_reopen(f);
    ok_ds_tenant_settings s = {0};
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_create(f->ds, TENANT, &s, &info), OK_OK);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    ds_fixture *f = *state;
    ok_ds_close(f->ds);
    ok_vault_close(f->v);
    test_remove_tree(f->tmp);
    free(f->tmp);
    free(f);
    unsetenv("OWNKEY_DS_REKEY_BATCH");
    unsetenv("OWNKEY_DS_REKEY_MAX_BATCHES");
    return 0;
}

/* Puts len bytes in pieces of chunk bytes (0 = one piece). */
static inline ok_err put_bytes(ok_ds *ds, const char *name, const uint8_t *data, size_t len, size_t chunk,
                               ok_ds_object_info *out)
{
    ok_ds_put *p = NULL;
    ok_err rc = ok_ds_put_begin(ds, TENANT, name, NULL, NULL, 0, len, &p);
    if (rc != OK_OK)
        return rc;
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        rc = ok_ds_put_write(p, data + off, n);
        if (rc != OK_OK) {
            ok_ds_put_abort(p);
            return rc;
        }
        off += n;
    }
    return ok_ds_put_commit(p, out);
}

/* Reads the whole object; the caller frees *out. */
static inline ok_err get_all(ok_ds *ds, const char *name, uint8_t **out, size_t *len)
{
    ok_ds_get *g = NULL;
    ok_ds_object_info info;
    OK_GUARD(ok_ds_get_open(ds, TENANT, name, &info, &g));
    uint8_t *buf = malloc(info.size + 1);
    size_t total = 0, got = 0;
    ok_err rc = OK_OK;
    do {
        rc = ok_ds_get_read(g, total, buf + total, info.size + 1 - total, &got);
        total += got;
    } while (rc == OK_OK && got > 0 && total <= info.size);
    ok_ds_get_close(g);
    if (rc != OK_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = total;
    return OK_OK;
}

static inline void expect_content(ok_ds *ds, const char *name, const uint8_t *want, size_t len)
{
    uint8_t *got = NULL;
    size_t n = 0;
    assert_int_equal(get_all(ds, name, &got, &n), OK_OK);
    assert_int_equal(n, len);
    if (len)
        assert_memory_equal(got, want, len);
    free(got);
}

/* The tenant's object directory (the fixture has one tenant). */
static inline void tenant_dir(const ds_fixture *f, char *out, size_t len, char uuid[DS_UUID_LEN + 1])
{
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", f->data_dir);
    DIR *d = opendir(objects);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != DS_UUID_LEN)
            continue;
        snprintf(out, len, "%s/%s", objects, e->d_name);
        if (uuid)
            snprintf(uuid, DS_UUID_LEN + 1, "%s", e->d_name);
        found++;
    }
    closedir(d);
    assert_int_equal(found, 1);
}

static inline size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static inline ok_err take_int(void *ctx, const ok_val *cols, size_t n)
{
    if (n >= 1 && cols[0].type == OK_VAL_INT)
        *(int64_t *)ctx = cols[0].i;
    return OK_OK;
}

static inline int64_t query_int(ok_ds *ds, const char *sql, const char *arg)
{
    int64_t v = -1;
    ok_val p[] = {OK_VTEXT(arg)};
    assert_int_equal(ds->store->vt->query(ds->store, sql, p, arg ? 1 : 0, take_int, &v), OK_OK);
    return v;
}

static inline ok_err take_text(void *ctx, const ok_val *cols, size_t n)
{
    if (n >= 1 && cols[0].type == OK_VAL_TEXT)
        snprintf(ctx, 64, "%s", cols[0].s);
    return OK_OK;
}

static inline void file_id_of(ok_ds *ds, const char *name, char out[64])
{
    out[0] = '\0';
    ok_val p[] = {OK_VTEXT(TENANT), OK_VTEXT(name)};
    assert_int_equal(ds->store->vt->query(ds->store, "SELECT file_id FROM objects WHERE tenant = ? AND name = ?",
                                          p, 2, take_text, out), OK_OK);
    assert_int_equal(strlen(out), DS_FILE_ID_LEN);
}

/* The tenant's counters (what ok_ds_tenant_get reports) are these, and agree with its objects rows. */
static inline void expect_counters(ok_ds *ds, uint64_t objects, uint64_t bytes)
{
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(ds, TENANT, &info), OK_OK);
    assert_int_equal(info.objects, objects);
    assert_int_equal(info.bytes, bytes);
    assert_int_equal(query_int(ds, "SELECT count(*) FROM objects WHERE tenant = ?", TENANT), (int64_t)objects);
    assert_int_equal(query_int(ds, "SELECT coalesce(sum(size), 0) FROM objects WHERE tenant = ?", TENANT),
                     (int64_t)bytes);
}

#endif /* OWNKEY_TEST_DS_FIXTURE_H */
