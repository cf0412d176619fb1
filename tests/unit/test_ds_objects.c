/* Tests of the data service's objects (src/dataservice/objects.c, object_write.c, object_read.c,
 * tenant_provider.c): put/get round trips at frame edges and beyond, random ranges, atomic replace, short
 * and long bodies, metadata and names, listing, delete, the tenant's object counters, large puts (their
 * sealing thread: abort, write errors), crash recovery, the stored file as an envelope, tampering, and a
 * tenant's deletion erasing its files. The fixture (a dev vault holding the service root key, one
 * service-managed tenant) is in ds_fixture.h; re-keys are tested in test_ds_rekey.c. */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds_fixture.h"

/* ---- Round trips ------------------------------------------------------------------------------- */

static void test_round_trip_sizes(void **state)
{
    ds_fixture *f = *state;
    static const size_t sizes[] = {0, 1, F - 1, F, F + 1, 2 * F, 3 * F + 5, 5 * 1024 * 1024 + 77};
    static const size_t chunks[] = {0, 1000, F, 3 * F + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t len = sizes[i];
        uint8_t *pt = malloc(len + 1);
        pattern(pt, len, (uint32_t)i);
        char name[32];
        snprintf(name, sizeof name, "size-%zu", len);
        ok_ds_object_info info;
        assert_int_equal(put_bytes(f->ds, name, pt, len, chunks[i % 4], &info), OK_OK);
        assert_int_equal(info.size, len);
        assert_string_equal(info.name, name);
        assert_int_equal(strlen(info.etag), 32);
        assert_string_equal(info.content_type, "application/octet-stream");
        ok_ds_object_info head;
        assert_int_equal(ok_ds_object_head(f->ds, TENANT, name, &head), OK_OK);
        assert_int_equal(head.size, len);
        assert_string_equal(head.etag, info.etag);
        expect_content(f->ds, name, pt, len);
        /* The file holds full frames and a final frame of len % F bytes (empty at a multiple). */
        char dir[700], path[800], fid[64];
        tenant_dir(f, dir, sizeof dir, NULL);
        file_id_of(f->ds, name, fid);
        snprintf(path, sizeof path, "%s/%s", dir, fid);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        int hfd = open(path, O_RDONLY);
        uint8_t prefix[OK_ENV_PREFIX_LEN];
        uint32_t hl = 0;
        assert_int_equal(read(hfd, prefix, sizeof prefix), (ssize_t)sizeof prefix);
        close(hfd);
        assert_int_equal(ok_env_header_prefix(prefix, &hl), OK_OK);
        assert_int_equal((uint64_t)st.st_size, hl + (len / F) * W + len % F + OK_ENV_FRAME_OVERHEAD);
        free(pt);
    }
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "missing", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);
    ok_ds_get *g = NULL;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "missing", NULL, &g), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_ds_get_open(f->ds, "nobody", "x", NULL, &g), OK_ERR_NOT_FOUND);
}

static void test_random_ranges(void **state)
{
    ds_fixture *f = *state;
    size_t len = 3 * 1024 * 1024 + 123;
    uint8_t *pt = malloc(len);
    pattern(pt, len, 99);
    assert_int_equal(put_bytes(f->ds, "ranges", pt, len, 12345, NULL), OK_OK);
    ok_ds_get *g = NULL;
    ok_ds_object_info info;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "ranges", &info, &g), OK_OK);
    assert_int_equal(info.size, len);
    uint8_t *buf = malloc(4 * F);
    srand(7);
    for (int i = 0; i < 300; i++) {
        uint64_t off = (uint64_t)rand() % (len + 10);
        if (i % 5 == 0) /* around frame boundaries */
            off = ((uint64_t)rand() % (len / F + 1)) * F - (uint64_t)(rand() % 3);
        size_t want = (size_t)rand() % (4 * F) + 1;
        size_t got = 0;
        assert_int_equal(ok_ds_get_read(g, off, buf, want, &got), OK_OK);
        size_t expect = off >= len ? 0 : (len - off < want ? (size_t)(len - off) : want);
        assert_int_equal(got, expect);
        if (got)
            assert_memory_equal(buf, pt + off, got);
    }
    size_t got = 1;
    assert_int_equal(ok_ds_get_read(g, len, buf, 10, &got), OK_OK);
    assert_int_equal(got, 0);
    assert_int_equal(ok_ds_get_read(g, len - 1, buf, 10, &got), OK_OK);
    assert_int_equal(got, 1);
    assert_int_equal(buf[0], pt[len - 1]);
    ok_ds_get_close(g);
    free(buf);
    free(pt);
}

/* ---- Atomicity --------------------------------------------------------------------------------- */

static void test_replace_is_atomic(void **state)
{
    ds_fixture *f = *state;
    char dir[700];
    size_t l1 = 2 * F + 10, l2 = F / 2;
    uint8_t *v1 = malloc(l1), *v2 = malloc(l2);
    pattern(v1, l1, 1);
    pattern(v2, l2, 2);
    ok_ds_object_info i1, i2;
    assert_int_equal(put_bytes(f->ds, "obj", v1, l1, 0, &i1), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);
    ok_ds_get *old = NULL;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "obj", NULL, &old), OK_OK);

    /* A put in progress is invisible; aborted, it leaves nothing. */
    ok_ds_put *p = NULL;
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "obj", "text/plain", NULL, 0, UINT64_MAX, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, v2, l2), OK_OK);
    assert_int_equal(count_files(dir), 2); /* the version and the temporary file */
    ok_ds_object_info head;
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "obj", &head), OK_OK);
    assert_string_equal(head.etag, i1.etag);
    ok_ds_put_abort(p);
    assert_int_equal(count_files(dir), 1);

    /* Replaced: the open get still reads the old version; new gets read the new one. */
    assert_int_equal(put_bytes(f->ds, "obj", v2, l2, 0, &i2), OK_OK);
    assert_string_not_equal(i1.etag, i2.etag);
    assert_int_equal(count_files(dir), 1); /* the old file is unlinked */
    uint8_t *buf = malloc(l1);
    size_t got = 0, total = 0;
    do {
        assert_int_equal(ok_ds_get_read(old, total, buf + total, l1 - total, &got), OK_OK);
        total += got;
    } while (got > 0);
    assert_int_equal(total, l1);
    assert_memory_equal(buf, v1, l1);
    ok_ds_get_close(old);
    expect_content(f->ds, "obj", v2, l2);
    free(buf);
    free(v1);
    free(v2);
}

static void test_short_and_long_bodies(void **state)
{
    ds_fixture *f = *state;
    char dir[700];
    uint8_t data[3 * 1000];
    pattern(data, sizeof data, 3);
    assert_int_equal(put_bytes(f->ds, "kept", data, 1000, 0, NULL), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);

    ok_ds_put *p = NULL;
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "short", NULL, NULL, 0, 2000, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, data, 1999), OK_OK);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_ERR_TRUNCATED);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "short", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);

    /* A short body replacing an object leaves the old version. */
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "kept", NULL, NULL, 0, 3000, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, data + 1000, 10), OK_OK);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_ERR_TRUNCATED);
    expect_content(f->ds, "kept", data, 1000);

    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "long", NULL, NULL, 0, 1000, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, data, 600), OK_OK);
    assert_int_equal(ok_ds_put_write(p, data, 401), OK_ERR_LIMIT);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "long", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);
    assert_int_equal(put_bytes(f->ds, "exact", data, 0, 0, NULL), OK_OK);
    assert_int_equal(count_files(dir), 2); /* "kept" and "exact": no temporary file left */
}

/* ---- Names and metadata ------------------------------------------------------------------------ */

static ok_err put_meta(ok_ds *ds, const char *name, const char *ct, const ok_ds_meta *m, size_t n)
{
    ok_ds_put *p = NULL;
    OK_GUARD(ok_ds_put_begin(ds, TENANT, name, ct, m, n, 3, &p));
    ok_err rc = ok_ds_put_write(p, (const uint8_t *)"abc", 3);
    if (rc != OK_OK) {
        ok_ds_put_abort(p);
        return rc;
    }
    return ok_ds_put_commit(p, NULL);
}

static void test_metadata(void **state)
{
    ds_fixture *f = *state;
    ok_ds_meta m[OK_DS_META_MAX + 1];
    memset(m, 0, sizeof m);
    strcpy(m[0].key, "owner");
    strcpy(m[0].value, "alice smith");
    strcpy(m[1].key, "a-1");
    strcpy(m[1].value, "");
    assert_int_equal(put_meta(f->ds, "m", "text/plain; charset=utf-8", m, 2), OK_OK);
    ok_ds_object_info info;
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "m", &info), OK_OK);
    assert_string_equal(info.content_type, "text/plain; charset=utf-8");
    assert_int_equal(info.meta_count, 2);
    assert_string_equal(info.meta[0].key, "a-1"); /* sorted */
    assert_string_equal(info.meta[0].value, "");
    assert_string_equal(info.meta[1].key, "owner");
    assert_string_equal(info.meta[1].value, "alice smith");

    ok_ds_meta bad = {0};
    static const char *const bad_keys[] = {"", "Owner", "a_b", "a b", "é"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++) {
        snprintf(bad.key, sizeof bad.key, "%s", bad_keys[i]);
        assert_int_equal(put_meta(f->ds, "m", NULL, &bad, 1), OK_ERR_INVALID_ARG);
    }
    memset(bad.key, 'k', OK_DS_META_KEY_MAX);
    assert_int_equal(put_meta(f->ds, "m", NULL, &bad, 1), OK_OK); /* 64 is the limit */
    strcpy(bad.key, "k");
    strcpy(bad.value, "line\nbreak");
    assert_int_equal(put_meta(f->ds, "m", NULL, &bad, 1), OK_ERR_INVALID_ARG);
    strcpy(bad.value, "caf\xc3\xa9");
    assert_int_equal(put_meta(f->ds, "m", NULL, &bad, 1), OK_ERR_INVALID_ARG);
    memset(bad.value, 'v', OK_DS_META_VALUE_MAX);
    assert_int_equal(put_meta(f->ds, "m", NULL, &bad, 1), OK_OK);
    for (size_t i = 0; i <= OK_DS_META_MAX; i++)
        snprintf(m[i].key, sizeof m[i].key, "k%zu", i);
    assert_int_equal(put_meta(f->ds, "m", NULL, m, OK_DS_META_MAX), OK_OK);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "m", &info), OK_OK);
    assert_int_equal(info.meta_count, OK_DS_META_MAX);
    assert_int_equal(put_meta(f->ds, "m", NULL, m, OK_DS_META_MAX + 1), OK_ERR_INVALID_ARG);
    strcpy(m[1].key, "k0");
    assert_int_equal(put_meta(f->ds, "m", NULL, m, 2), OK_ERR_INVALID_ARG); /* duplicate key */
    assert_int_equal(put_meta(f->ds, "m", "text/\x01", NULL, 0), OK_ERR_INVALID_ARG);
    char ct[OK_DS_CONTENT_TYPE_MAX + 2];
    memset(ct, 'c', sizeof ct - 1);
    ct[sizeof ct - 1] = '\0';
    assert_int_equal(put_meta(f->ds, "m", ct, NULL, 0), OK_ERR_INVALID_ARG);
    ct[OK_DS_CONTENT_TYPE_MAX] = '\0';
    assert_int_equal(put_meta(f->ds, "m", ct, NULL, 0), OK_OK);
    /* The refused puts changed nothing; the last good one holds. */
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "m", &info), OK_OK);
    assert_int_equal(info.meta_count, 0);
    assert_string_equal(info.content_type, ct);
}

static void test_object_names(void **state)
{
    ds_fixture *f = *state;
    char longest[OK_DS_OBJECT_NAME_MAX + 2];
    memset(longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    assert_false(ok_ds_object_name_valid(longest));
    longest[OK_DS_OBJECT_NAME_MAX] = '\0';
    assert_true(ok_ds_object_name_valid(longest));
    assert_true(ok_ds_object_name_valid("a/b/c.txt"));
    assert_true(ok_ds_object_name_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    static const char *const bad[] = {"", "a\nb", "tab\there", "del\x7f", "c1\xc2\x85", "\xc3\x28", "\xc0\xaf",
                                      "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(ok_ds_object_name_valid(bad[i]));
    assert_false(ok_ds_object_name_valid(NULL));
    assert_int_equal(put_meta(f->ds, "a\nb", NULL, NULL, 0), OK_ERR_INVALID_ARG);
    assert_int_equal(put_meta(f->ds, longest, NULL, NULL, 0), OK_OK);
    uint8_t *got = NULL;
    size_t n = 0;
    assert_int_equal(get_all(f->ds, longest, &got, &n), OK_OK);
    assert_int_equal(n, 3);
    free(got);
}

/* ---- List and delete --------------------------------------------------------------------------- */

static void expect_page(ok_ds *ds, const char *prefix, const char *marker, size_t max, const char *const *names,
                        size_t count, const char *next)
{
    ok_ds_object_page pg;
    assert_int_equal(ok_ds_object_list(ds, TENANT, prefix, marker, max, &pg), OK_OK);
    assert_int_equal(pg.count, count);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(pg.items[i].name, names[i]);
    if (next)
        assert_string_equal(pg.next_marker, next);
    else
        assert_null(pg.next_marker);
    ok_ds_object_page_clear(&pg);
}

static void test_list(void **state)
{
    ds_fixture *f = *state;
    /* Byte order: 'A' < 'a' < "a/" ('/' is 0x2f) < "ab" < UTF-8 (0xc3...) after ASCII. */
    static const char *const all[] = {"A", "a", "a/b", "a/c", "ab", "a\xc3\xa9", "b", "\xc3\xa9t\xc3\xa9"};
    static const char *const put_order[] = {"b", "a/c", "\xc3\xa9t\xc3\xa9", "A", "ab", "a", "a\xc3\xa9", "a/b"};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(put_meta(f->ds, put_order[i], NULL, NULL, 0), OK_OK);
    expect_page(f->ds, NULL, NULL, 1000, all, 8, NULL);
    expect_page(f->ds, "", NULL, 8, all, 8, NULL);
    expect_page(f->ds, "a/", NULL, 10, (const char *const[]){"a/b", "a/c"}, 2, NULL);
    expect_page(f->ds, "a", NULL, 10, (const char *const[]){"a", "a/b", "a/c", "ab", "a\xc3\xa9"}, 5, NULL);
    expect_page(f->ds, "\xc3", NULL, 10, (const char *const[]){"\xc3\xa9t\xc3\xa9"}, 1, NULL);
    expect_page(f->ds, "zz", NULL, 10, NULL, 0, NULL);
    expect_page(f->ds, "a", "a/c", 10, (const char *const[]){"ab", "a\xc3\xa9"}, 2, NULL);
    /* Paging through everything two at a time. */
    char *marker = NULL;
    size_t seen = 0;
    for (int pages = 0; pages < 10; pages++) {
        ok_ds_object_page pg;
        assert_int_equal(ok_ds_object_list(f->ds, TENANT, NULL, marker, 3, &pg), OK_OK);
        for (size_t i = 0; i < pg.count; i++)
            assert_string_equal(pg.items[i].name, all[seen++]);
        free(marker);
        marker = pg.next_marker ? strdup(pg.next_marker) : NULL;
        ok_ds_object_page_clear(&pg);
        if (!marker)
            break;
    }
    assert_int_equal(seen, 8);
    ok_ds_object_page pg;
    assert_int_equal(ok_ds_object_list(f->ds, TENANT, NULL, NULL, 0, &pg), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_ds_object_list(f->ds, TENANT, NULL, NULL, 1001, &pg), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_ds_object_list(f->ds, "nobody", NULL, NULL, 10, &pg), OK_ERR_NOT_FOUND);
}

static void test_delete(void **state)
{
    ds_fixture *f = *state;
    char dir[700];
    assert_int_equal(put_meta(f->ds, "gone", NULL, NULL, 0), OK_OK);
    assert_int_equal(put_meta(f->ds, "stays", NULL, NULL, 0), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);
    assert_int_equal(count_files(dir), 2);
    ok_ds_get *g = NULL;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "gone", NULL, &g), OK_OK);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, "gone"), OK_OK);
    assert_int_equal(count_files(dir), 1);
    uint8_t buf[3];
    size_t got = 0;
    assert_int_equal(ok_ds_get_read(g, 0, buf, 3, &got), OK_OK); /* an open get keeps its version */
    assert_int_equal(got, 3);
    ok_ds_get_close(g);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "gone", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, "gone"), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, ""), OK_ERR_INVALID_ARG);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(f->ds, TENANT, &info), OK_OK);
    assert_int_equal(info.objects, 1);
    assert_int_equal(info.bytes, 3);
}

/* The tenant's object and byte counters follow puts, replaces (bigger, smaller), failed puts, deletes,
 * and survive a reopen; a store made before the counters existed gets them filled from its rows. */
static void test_counters(void **state)
{
    ds_fixture *f = *state;
    size_t big = 2 * F + 5;
    uint8_t *data = malloc(big);
    pattern(data, big, 7);
    expect_counters(f->ds, 0, 0);
    assert_int_equal(put_bytes(f->ds, "a", data, 100, 0, NULL), OK_OK);
    expect_counters(f->ds, 1, 100);
    assert_int_equal(put_bytes(f->ds, "b", data, big, 1000, NULL), OK_OK);
    expect_counters(f->ds, 2, 100 + big);
    assert_int_equal(put_bytes(f->ds, "a", data, big, 0, NULL), OK_OK);      /* replace: bigger */
    expect_counters(f->ds, 2, 2 * big);
    assert_int_equal(put_bytes(f->ds, "b", data, 7, 0, NULL), OK_OK);        /* replace: smaller */
    expect_counters(f->ds, 2, big + 7);
    assert_int_equal(put_bytes(f->ds, "e", data, 0, 0, NULL), OK_OK);        /* empty */
    expect_counters(f->ds, 3, big + 7);
    ok_ds_put *p = NULL;                                                    /* a truncated put counts nothing */
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "c", NULL, NULL, 0, 50, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, data, 10), OK_OK);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_ERR_TRUNCATED);
    expect_counters(f->ds, 3, big + 7);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, "a"), OK_OK);
    expect_counters(f->ds, 2, 7);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, "a"), OK_ERR_NOT_FOUND);
    expect_counters(f->ds, 2, 7);
    ds_reopen(f);
    expect_counters(f->ds, 2, 7);
    /* An older store: the columns are missing until the open adds them and counts the rows once. */
    assert_int_equal(f->ds->store->vt->exec(f->ds->store, "ALTER TABLE tenants DROP COLUMN object_count", NULL, 0, NULL),
                     OK_OK);
    assert_int_equal(f->ds->store->vt->exec(f->ds->store, "ALTER TABLE tenants DROP COLUMN byte_count", NULL, 0, NULL),
                     OK_OK);
    ds_reopen(f);
    expect_counters(f->ds, 2, 7);
    assert_int_equal(ok_ds_object_delete(f->ds, TENANT, "b"), OK_OK);
    expect_counters(f->ds, 1, 0);
    free(data);
}

/* ---- Large puts (sealed on a pipe thread past DS_PIPE_MIN) ---------------------------------------- */

/* Aborting a large put mid-body stops its thread and leaves no file, row or count behind; a failing write
 * on the thread (here: past the file size limit) comes back from the put and leaves nothing either. */
static void test_large_put_abort_and_error(void **state)
{
    ds_fixture *f = *state;
    char dir[700];
    size_t len = 8u << 20;
    uint8_t *data = malloc(len);
    pattern(data, len, 11);
    assert_int_equal(put_bytes(f->ds, "keep", data, 3 * F, 0, NULL), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);
    ok_ds_put *p = NULL;
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "big", NULL, NULL, 0, len, &p), OK_OK);
    for (size_t off = 0; off < len / 2; off += 100000)
        assert_int_equal(ok_ds_put_write(p, data + off, 100000), OK_OK);
    ok_ds_put_abort(p);
    assert_int_equal(count_files(dir), 1);
    expect_counters(f->ds, 1, 3 * F);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 3u << 20;
    signal(SIGXFSZ, SIG_IGN); /* writes past the limit fail with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ok_err rc = put_bytes(f->ds, "big", data, len, 65536, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "cannot write an object file"));
    assert_int_equal(count_files(dir), 1);
    expect_counters(f->ds, 1, 3 * F);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "big", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);
    /* and the next large put works, read back whole */
    assert_int_equal(put_bytes(f->ds, "big", data, len - 3, 1000, NULL), OK_OK);
    expect_content(f->ds, "big", data, len - 3);
    expect_counters(f->ds, 2, 3 * F + len - 3);
    free(data);
}

/* ---- Recovery ---------------------------------------------------------------------------------- */

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
}

static void test_recover(void **state)
{
    ds_fixture *f = *state;
    char dir[700], path[1100], stray_dir[900];
    uint8_t data[5000];
    pattern(data, sizeof data, 5);
    assert_int_equal(put_bytes(f->ds, "x", data, sizeof data, 0, NULL), OK_OK);
    assert_int_equal(put_bytes(f->ds, "y", data, 10, 0, NULL), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);
    ok_ds_close(f->ds);
    f->ds = NULL;
    /* What a crash leaves: a temporary file, a renamed file whose row never committed, and the
     * directory of a tenant whose row is gone. */
    snprintf(path, sizeof path, "%s/.tmp-0123456789abcdef0123456789abcdef", dir);
    touch(path);
    snprintf(path, sizeof path, "%s/00112233445566778899aabbccddeeff", dir);
    touch(path);
    snprintf(stray_dir, sizeof stray_dir, "%s/objects/ffffffffffffffffffffffffffffffff", f->data_dir);
    assert_int_equal(mkdir(stray_dir, 0700), 0);
    snprintf(path, sizeof path, "%s/00112233445566778899aabbccddeeff", stray_dir);
    touch(path);
    snprintf(path, sizeof path, "%s/.tmp-x", stray_dir);
    touch(path);
    assert_int_equal(count_files(dir), 4);
    ds_reopen(f);
    assert_int_equal(count_files(dir), 2);
    struct stat st;
    assert_int_equal(stat(stray_dir, &st), -1);
    expect_content(f->ds, "x", data, sizeof data);
    expect_content(f->ds, "y", data, 10);
}

/* ---- The stored file ---------------------------------------------------------------------------- */

static uint8_t *read_stored(const ds_fixture *f, const char *name, char *path, size_t path_len, size_t *len,
                            char uuid[DS_UUID_LEN + 1])
{
    char dir[700], fid[64];
    tenant_dir(f, dir, sizeof dir, uuid);
    file_id_of(f->ds, name, fid);
    snprintf(path, path_len, "%s/%s", dir, fid);
    uint8_t *data = (uint8_t *)test_read_file(path, len);
    assert_non_null(data);
    return data;
}

static void test_stored_file_is_envelope(void **state)
{
    ds_fixture *f = *state;
    uint8_t pt[F + 100];
    pattern(pt, sizeof pt, 6);
    assert_int_equal(put_bytes(f->ds, "env", pt, sizeof pt, 0, NULL), OK_OK);
    char path[900], uuid[DS_UUID_LEN + 1];
    size_t len = 0;
    uint8_t *data = read_stored(f, "env", path, sizeof path, &len, uuid);
    uint32_t hl = 0;
    assert_int_equal(ok_env_header_prefix(data, &hl), OK_OK);
    ok_env_header *h = NULL;
    assert_int_equal(ok_env_header_parse(data, hl, &h), OK_OK);
    assert_int_equal(h->edk_count, 1);
    assert_string_equal(h->edks[0].provider, "ownkey-tenant");
    assert_string_equal(h->edks[0].key_id, uuid);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(f->ds, TENANT, &info), OK_OK);
    char gen[32];
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)info.tk_generation);
    assert_string_equal(h->edks[0].key_version, gen);
    assert_int_equal(h->frame_size, F);
    assert_int_equal(len, hl + W + 100 + OK_ENV_FRAME_OVERHEAD);
    /* The plaintext is not in the file. */
    assert_null(memmem(data, len, pt + 1000, 64));
    ok_env_header_free(h);
    free(data);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_tampering(void **state)
{
    ds_fixture *f = *state;
    size_t plen = 3 * F + 50;
    uint8_t *pt = malloc(plen);
    pattern(pt, plen, 8);
    assert_int_equal(put_bytes(f->ds, "t", pt, plen, 0, NULL), OK_OK);
    char path[900];
    size_t len = 0;
    uint8_t *orig = read_stored(f, "t", path, sizeof path, &len, NULL);
    uint32_t hl = ok_load_u32(orig + 7);
    uint8_t *buf = malloc(plen);
    memset(buf, 0, plen);

    /* A byte of frame 2 (index 1): frames 1 and the final one read; frame 2 never releases plaintext. */
    flip_byte(path, (off_t)(hl + W + 500));
    ok_ds_get *g = NULL;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "t", NULL, &g), OK_OK);
    size_t got = 0;
    assert_int_equal(ok_ds_get_read(g, 0, buf, 100, &got), OK_OK);
    assert_int_equal(got, 100);
    memset(buf, 0, plen);
    assert_int_equal(ok_ds_get_read(g, F - 10, buf, 100, &got), OK_ERR_AUTH);
    assert_int_equal(got, 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(buf[i], 0);
    assert_int_not_equal(ok_ds_get_read(g, 0, buf, 100, &got), OK_OK); /* failed for good */
    ok_ds_get_close(g);
    assert_int_equal(get_all(f->ds, "t", &buf, &got), OK_ERR_AUTH);
    flip_byte(path, (off_t)(hl + W + 500));
    expect_content(f->ds, "t", pt, plen);

    /* The header, the final frame, a truncated or extended file: the open fails. */
    static const int64_t where[] = {20, -1, -30};
    for (size_t i = 0; i < 3; i++) {
        off_t off = where[i] >= 0 ? (off_t)where[i] : (off_t)((int64_t)len + where[i]);
        flip_byte(path, off);
        g = NULL;
        ok_err rc = ok_ds_get_open(f->ds, TENANT, "t", NULL, &g);
        assert_true(rc == OK_ERR_AUTH || rc == OK_ERR_FORMAT);
        assert_null(g);
        flip_byte(path, off);
    }
    assert_int_equal(truncate(path, (off_t)(len - 1)), 0);
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "t", NULL, &g), OK_ERR_FORMAT);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, orig, len), (ssize_t)len);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "t", NULL, &g), OK_ERR_FORMAT);
    free(orig);
    free(buf);
    free(pt);
}

/* Long reads in order are opened ahead on another thread (open_ahead.c): in-order reads from the start
 * and from the middle, a jump back (the thread stops, reads go on inline, then ahead again), and a
 * tampered frame deep in the object failing the read that reaches it, releasing nothing of that call. */
static void test_open_ahead(void **state)
{
    ds_fixture *f = *state;
    size_t plen = 40 * F + 77;
    uint8_t *pt = malloc(plen);
    pattern(pt, plen, 21);
    assert_int_equal(put_bytes(f->ds, "long", pt, plen, 0, NULL), OK_OK);
    expect_content(f->ds, "long", pt, plen);

    ok_ds_get *g = NULL;
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "long", NULL, &g), OK_OK);
    uint8_t *buf = malloc(plen);
    size_t got = 0;
    uint64_t off = 5 * F + 3;
    while (off < 30 * F) { /* in order from the middle, in odd-sized pieces */
        assert_int_equal(ok_ds_get_read(g, off, buf, 10000, &got), OK_OK);
        assert_int_equal(got, 10000);
        assert_memory_equal(buf, pt + off, got);
        off += got;
    }
    for (off = 2 * F; off < plen; off += got) { /* a jump back, then in order to the end */
        assert_int_equal(ok_ds_get_read(g, off, buf, F, &got), OK_OK);
        assert_true(got > 0);
        assert_memory_equal(buf, pt + off, got);
    }
    ok_ds_get_close(g);

    char path[900];
    size_t len = 0;
    uint8_t *orig = read_stored(f, "long", path, sizeof path, &len, NULL);
    uint32_t hl = ok_load_u32(orig + 7);
    flip_byte(path, (off_t)(hl + 25 * W + 1000));
    assert_int_equal(ok_ds_get_open(f->ds, TENANT, "long", NULL, &g), OK_OK);
    for (off = 0; off < 25 * F; off += got) {
        assert_int_equal(ok_ds_get_read(g, off, buf, F, &got), OK_OK);
        assert_memory_equal(buf, pt + off, got);
    }
    memset(buf, 0, F);
    assert_int_equal(ok_ds_get_read(g, off, buf, F, &got), OK_ERR_AUTH);
    assert_int_equal(got, 0);
    for (size_t i = 0; i < F; i++)
        assert_int_equal(buf[i], 0);
    assert_int_not_equal(ok_ds_get_read(g, 0, buf, 10, &got), OK_OK); /* failed for good */
    ok_ds_get_close(g);
    flip_byte(path, (off_t)(hl + 25 * W + 1000));
    expect_content(f->ds, "long", pt, plen);
    free(orig);
    free(buf);
    free(pt);
}

/* ---- Tenant deletion ---------------------------------------------------------------------------- */

/* Deleting the tenant removes its object directory. */
static void test_tenant_delete_erases_files(void **state)
{
    ds_fixture *f = *state;
    char dir[700];
    assert_int_equal(put_meta(f->ds, "a", NULL, NULL, 0), OK_OK);
    assert_int_equal(put_meta(f->ds, "b", NULL, NULL, 0), OK_OK);
    tenant_dir(f, dir, sizeof dir, NULL);
    assert_int_equal(ok_ds_tenant_delete(f->ds, TENANT), OK_OK);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(ok_ds_object_head(f->ds, TENANT, "a", &(ok_ds_object_info){0}), OK_ERR_NOT_FOUND);
    assert_int_equal(query_int(f->ds, "SELECT count(*) FROM objects WHERE tenant = ?", TENANT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_and_long_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_put_abort_and_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_file_is_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_delete_erases_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
