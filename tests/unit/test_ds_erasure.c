/* Erasure proof of the data service (issue 4 §2): after a tenant is deleted, or after its customer key is
 * purged in the customer's vault, its stored files cannot be decrypted with anything the service still
 * holds. The probe gathers every key the service can still produce — the SRK, every TK of every tenant
 * (through ds_tk_get), every DEK those TKs open from the object rows — and tries each against every saved
 * object file; it must open nothing. The same probe opens a live tenant's files (so it is able to find
 * a key when one exists), and the deleted tenant's wrapped keys no longer appear anywhere in data.db or
 * its WAL (secure_delete and the checkpoint). The customer's vault runs in-process over HTTPS. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "dataservice/ds_keys.h"
#include "http/api/api.h"
#include "http/http.h"
#include "vault_fixture.h"

#define MAX_FILES 16
#define MAX_KEYS 256

static struct {
    char *tmp;
    ok_vault *local, *cust;
    ok_api api;
    ok_http_server *server;
    unsigned port;
    char cert[600], key[600];
    char *ca_pem;
    char *token;
} g;

typedef struct {
    uint8_t *data[MAX_FILES];
    size_t len[MAX_FILES];
    size_t count;
} saved_files;

typedef struct {
    uint8_t k[MAX_KEYS][32];
    size_t count;
} key_set;

static int group_setup(void **state)
{
    (void)state;
    char dir[700];
    char *tid = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.tmp = test_make_tmpdir();
    assert_non_null(g.tmp);
    snprintf(dir, sizeof dir, "%s/local", g.tmp);
    g.local = fixture_new_vault(dir, 0);
    snprintf(dir, sizeof dir, "%s/customer", g.tmp);
    g.cust = fixture_new_vault(dir, 0);
    snprintf(g.cert, sizeof g.cert, "%s/cert.pem", g.tmp);
    snprintf(g.key, sizeof g.key, "%s/key.pem", g.tmp);
    assert_int_equal(ok_http_ensure_self_signed(g.cert, g.key), OK_OK);
    g.ca_pem = test_read_file(g.cert, NULL);
    assert_non_null(g.ca_pem);
    g.api.vault = g.cust;
    ok_http_config cfg = {.listen = "127.0.0.1:0", .cert_pem_path = g.cert, .key_pem_path = g.key, .threads = 4,
                          .handler = ok_api_handle, .handler_ctx = &g.api};
    assert_int_equal(ok_http_start(&cfg, &g.server), OK_OK);
    g.port = ok_http_port(g.server);
    assert_int_equal(ok_vault_identity_create(g.cust, "dataservice", 0, &g.token, &tid), OK_OK);
    free(tid);
    assert_int_equal(ok_vault_policy_set(g.cust, "dataservice", "*", OK_PERM_GET | OK_PERM_WRAPKEY | OK_PERM_UNWRAPKEY),
                     OK_OK);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ok_http_stop(g.server);
    ok_vault_close(g.cust);
    ok_vault_close(g.local);
    test_remove_tree(g.tmp);
    free(g.tmp);
    free(g.ca_pem);
    free(g.token);
    curl_global_cleanup();
    return 0;
}

static ok_ds *open_ds(const char *name)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", g.tmp, name);
    mkdir(dir, 0700);
    ok_ds_config cfg = {.dir = dir, .vault = g.local, .key_cache_ttl = 1, .probe_max_backoff = 1};
    ok_ds *ds = NULL;
    if (ok_ds_open(&cfg, &ds) != OK_OK)
        fail_msg("ok_ds_open: %s", ok_err_message());
    return ds;
}

static void put_text(ok_ds *ds, const char *tenant, const char *name, size_t size)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)(i * 31 + name[0]);
    ok_ds_put *p = NULL;
    assert_int_equal(ok_ds_put_begin(ds, tenant, name, NULL, NULL, 0, size, &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, buf, size), OK_OK);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_OK);
    free(buf);
}

static ok_err text_cb(void *ctx, const ok_val *cols, size_t n)
{
    if (n >= 1 && cols[0].type == OK_VAL_TEXT)
        snprintf(ctx, DS_UUID_LEN + 1, "%s", cols[0].s);
    return OK_OK;
}

static void tenant_uuid(ok_ds *ds, const char *tenant, char uuid[DS_UUID_LEN + 1])
{
    ok_val p[] = {OK_VTEXT(tenant)};
    uuid[0] = '\0';
    assert_int_equal(ds->store->vt->query(ds->store, "SELECT uuid FROM tenants WHERE name = ?", p, 1, text_cb, uuid),
                     OK_OK);
    assert_int_equal(strlen(uuid), DS_UUID_LEN);
}

/* Copies every object file of the tenant aside (what a thief of the disk would keep). */
static void save_files(ok_ds *ds, const char *uuid, saved_files *out)
{
    char dir[800], path[1100];
    snprintf(dir, sizeof dir, "%s/%s", ds->objects_dir, uuid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(out->count < MAX_FILES);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        out->data[out->count] = (uint8_t *)test_read_file(path, &out->len[out->count]);
        assert_non_null(out->data[out->count]);
        out->count++;
    }
    closedir(d);
    assert_true(out->count > 0);
}

static void free_files(saved_files *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->data[i]);
}

static void add_key(key_set *ks, const uint8_t k[32])
{
    if (ks->count < MAX_KEYS)
        memcpy(ks->k[ks->count++], k, 32);
}

typedef struct {
    ok_ds *ds;
    key_set *ks;
} gather_ctx;

static ok_err tk_row_cb(void *ctx, const ok_val *cols, size_t n)
{
    gather_ctx *gc = ctx;
    uint8_t tk[DS_TK_LEN];
    if (n == 2 && ds_tk_get(gc->ds, cols[0].s, (uint64_t)cols[1].i, tk) == OK_OK)
        add_key(gc->ks, tk);
    ok_zeroize(tk, sizeof tk);
    return OK_OK;
}

static ok_err srk_row_cb(void *ctx, const ok_val *cols, size_t n)
{
    gather_ctx *gc = ctx;
    uint8_t *srk = NULL;
    size_t len = 0;
    if (n == 1 && cols[0].type == OK_VAL_BLOB &&
        ok_vault_unwrap_secret(gc->ds->vault, DS_SRK_AAD, cols[0].b, cols[0].len, &srk, &len) == OK_OK) {
        if (len == 32)
            add_key(gc->ks, srk);
        ok_secure_free(srk, len);
    }
    return OK_OK;
}

/* Every DEK that any gathered key opens from any object row. */
static ok_err dek_row_cb(void *ctx, const ok_val *cols, size_t n)
{
    gather_ctx *gc = ctx;
    if (n != 1 || cols[0].type != OK_VAL_BLOB || cols[0].len > 64)
        return OK_OK;
    size_t keys = gc->ks->count;
    for (size_t i = 0; i < keys; i++) {
        uint8_t dek[64];
        size_t len = sizeof dek;
        if (ok_aes_kwp_unwrap(gc->ks->k[i], 32, cols[0].b, cols[0].len, dek, &len) == OK_OK && len == 32)
            add_key(gc->ks, dek);
        ok_zeroize(dek, sizeof dek);
    }
    return OK_OK;
}

/* Everything the service can still produce: the SRK, every TK (all tenants, all generations), and every
 * DEK those open from the object rows. */
static void gather_keys(ok_ds *ds, key_set *ks)
{
    gather_ctx gc = {.ds = ds, .ks = ks};
    ok_store *s = ds->store;
    assert_int_equal(s->vt->query(s, "SELECT value FROM ds_meta WHERE name = 'srk'", NULL, 0, srk_row_cb, &gc), OK_OK);
    assert_int_equal(s->vt->query(s, "SELECT tenant, generation FROM tenant_keys", NULL, 0, tk_row_cb, &gc), OK_OK);
    assert_int_equal(s->vt->query(s, "SELECT dek_wrap FROM objects", NULL, 0, dek_row_cb, &gc), OK_OK);
}

/* 1 if any key opens the envelope, as a TK (unwrapping the header's EDK) or as the DEK itself. */
static int any_key_opens(const key_set *ks, const uint8_t *file, size_t len)
{
    uint32_t header_len = 0;
    ok_env_header *h = NULL;
    if (len < OK_ENV_PREFIX_LEN || ok_env_header_prefix(file, &header_len) != OK_OK || header_len > len ||
        ok_env_header_parse(file, header_len, &h) != OK_OK)
        fail_msg("a saved object file is not an envelope");
    assert_true(h->edk_count >= 1);
    const char *uuid = h->edks[0].key_id;
    uint64_t gen = strtoull(h->edks[0].key_version, NULL, 10);
    int opened = 0;
    for (size_t i = 0; i < ks->count && !opened; i++) {
        for (int as_dek = 0; as_dek < 2 && !opened; as_dek++) {
            uint8_t tk[32], wrap[40];
            size_t wrap_len = sizeof wrap;
            ok_provider *p = NULL;
            if (as_dek) {
                /* The candidate as the DEK: wrap it under a throwaway TK the provider then opens. */
                assert_int_equal(ok_random(tk, sizeof tk), OK_OK);
                assert_int_equal(ok_aes_kwp_wrap(tk, 32, ks->k[i], 32, wrap, &wrap_len), OK_OK);
                assert_int_equal(ds_tenant_provider_new(uuid, gen, tk, wrap, wrap_len, &p), OK_OK);
            } else {
                assert_int_equal(ds_tenant_provider_new(uuid, gen, ks->k[i], NULL, 0, &p), OK_OK);
            }
            ok_env_session *s = NULL;
            if (ok_env_decrypt_init(&s, h, &p, 1, 1) == OK_OK) {
                opened = 1;
                ok_env_session_free(s);
            }
            ok_provider_free(p);
            ok_zeroize(tk, sizeof tk);
        }
    }
    ok_env_header_free(h);
    return opened;
}

/* 1 if needle occurs in the file (data.db or its WAL). */
static int file_contains(const char *path, const uint8_t *needle, size_t n)
{
    size_t len = 0;
    char *data = test_read_file(path, &len);
    if (!data)
        return 0;
    int found = memmem(data, len, needle, n) != NULL;
    free(data);
    return found;
}

typedef struct {
    uint8_t blobs[MAX_FILES * 2][128];
    size_t lens[MAX_FILES * 2];
    size_t count;
} blob_list;

static ok_err blob_cb(void *ctx, const ok_val *cols, size_t n)
{
    blob_list *b = ctx;
    if (n == 1 && cols[0].type == OK_VAL_BLOB && cols[0].len <= 128 && b->count < MAX_FILES * 2) {
        memcpy(b->blobs[b->count], cols[0].b, cols[0].len);
        b->lens[b->count++] = cols[0].len;
    }
    return OK_OK;
}

static void test_deleted_tenant_is_unreadable(void **state)
{
    (void)state;
    ok_ds *ds = open_ds("del");
    ok_ds_tenant_settings service = {0};
    assert_int_equal(ok_ds_tenant_create(ds, "gone", &service, NULL), OK_OK);
    assert_int_equal(ok_ds_tenant_create(ds, "kept", &service, NULL), OK_OK);
    put_text(ds, "gone", "a", 100);
    put_text(ds, "gone", "b", 200000);
    put_text(ds, "kept", "a", 100);
    char gone_uuid[DS_UUID_LEN + 1], kept_uuid[DS_UUID_LEN + 1];
    tenant_uuid(ds, "gone", gone_uuid);
    tenant_uuid(ds, "kept", kept_uuid);
    saved_files gone = {0}, kept = {0};
    save_files(ds, gone_uuid, &gone);
    save_files(ds, kept_uuid, &kept);
    /* The deleted tenant's wrapped keys, to look for in the database files afterwards. */
    blob_list wraps = {0};
    ok_val p[] = {OK_VTEXT("gone")};
    assert_int_equal(ds->store->vt->query(ds->store, "SELECT dek_wrap FROM objects WHERE tenant = ?", p, 1, blob_cb, &wraps), OK_OK);
    assert_int_equal(ds->store->vt->query(ds->store, "SELECT srk_wrap FROM tenant_keys WHERE tenant = ?", p, 1, blob_cb, &wraps), OK_OK);
    assert_int_equal(wraps.count, 3);

    /* Control: the probe opens a live tenant's files and, before the delete, the doomed tenant's. */
    key_set *ks = calloc(1, sizeof *ks);
    assert_non_null(ks);
    gather_keys(ds, ks);
    assert_true(any_key_opens(ks, kept.data[0], kept.len[0]));
    assert_true(any_key_opens(ks, gone.data[0], gone.len[0]));
    ok_zeroize(ks, sizeof *ks);

    assert_int_equal(ok_ds_tenant_delete(ds, "gone"), OK_OK);
    ok_ds_close(ds);
    ds = open_ds("del"); /* and after a restart, with everything on disk */
    memset(ks, 0, sizeof *ks);
    gather_keys(ds, ks);
    assert_true(ks->count >= 2); /* the SRK and the kept tenant's TK at least */
    for (size_t i = 0; i < gone.count; i++)
        assert_false(any_key_opens(ks, gone.data[i], gone.len[i]));
    assert_true(any_key_opens(ks, kept.data[0], kept.len[0]));

    char db[800], wal[810];
    snprintf(db, sizeof db, "%s/del/data.db", g.tmp);
    snprintf(wal, sizeof wal, "%s-wal", db);
    for (size_t i = 0; i < wraps.count; i++) {
        assert_false(file_contains(db, wraps.blobs[i], wraps.lens[i]));
        assert_false(file_contains(wal, wraps.blobs[i], wraps.lens[i]));
    }
    ok_zeroize(ks, sizeof *ks);
    free(ks);
    free_files(&gone);
    free_files(&kept);
    ok_ds_close(ds);
}

static void erase_customer_key(ok_kty kty, int dbl)
{
    ok_key_spec spec = {.kty = kty, .bits = kty == OK_KTY_RSA ? 2048 : 256};
    ok_key_info info = {0};
    char name[32], uri[300];
    snprintf(name, sizeof name, "erase-%d-%d", (int)kty, dbl);
    assert_int_equal(ok_vault_key_create(g.cust, name, &spec, &info), OK_OK);
    ok_key_info_clear(&info);
    snprintf(uri, sizeof uri, "https://127.0.0.1:%u/keys/%s", g.port, name);

    ok_ds *ds = open_ds(name);
    ok_ds_customer_key ck = {.uri = uri, .token = g.token, .ca_pem = g.ca_pem};
    ok_ds_tenant_settings s = {.customer = &ck, .double_encryption = dbl};
    assert_int_equal(ok_ds_tenant_create(ds, "t", &s, NULL), OK_OK);
    put_text(ds, "t", "a", 5000);
    put_text(ds, "t", "b", 70000);
    char uuid[DS_UUID_LEN + 1];
    tenant_uuid(ds, "t", uuid);
    saved_files files = {0};
    save_files(ds, uuid, &files);
    key_set *ks = calloc(1, sizeof *ks);
    assert_non_null(ks);
    gather_keys(ds, ks);
    assert_true(any_key_opens(ks, files.data[0], files.len[0])); /* control: while the key exists */
    memset(ks, 0, sizeof *ks);

    /* The customer purges the key. */
    assert_int_equal(ok_vault_key_delete(g.cust, name, &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(ok_vault_deleted_purge(g.cust, name), OK_OK);
    ok_ds_close(ds);
    ds = open_ds(name); /* nothing cached: everything the service holds is on disk */
    ok_ds_tenant_info ti;
    for (int i = 0; i < 300; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, "t", &ti), OK_OK);
        if (ti.state == OK_DS_LOCKED)
            break;
        usleep(100000);
    }
    assert_int_equal(ti.state, OK_DS_LOCKED);
    assert_string_equal(ti.reason_code, "KeyNotFound");
    gather_keys(ds, ks); /* the SRK (if one was ever made) and nothing of this tenant */
    for (size_t i = 0; i < files.count; i++)
        assert_false(any_key_opens(ks, files.data[i], files.len[i]));
    ok_ds_get *gt = NULL;
    assert_int_equal(ok_ds_get_open(ds, "t", "a", NULL, &gt), OK_ERR_LOCKED);
    ok_zeroize(ks, sizeof *ks);
    free(ks);
    free_files(&files);
    ok_ds_close(ds);
}

static void test_purged_customer_key(void **state)
{
    (void)state;
    erase_customer_key(OK_KTY_RSA, 0);
}

static void test_purged_customer_key_double(void **state)
{
    (void)state;
    erase_customer_key(OK_KTY_OCT, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deleted_tenant_is_unreadable),
        cmocka_unit_test(test_purged_customer_key),
        cmocka_unit_test(test_purged_customer_key_double),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
