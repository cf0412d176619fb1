/* Tests of the data service's tenants and tenant keys (tenants.c, tenant_keys.c, tenant_rewrap.c,
 * tenant_lock.c, root_keys.c) against a real customer vault served in-process over HTTPS (a second dev
 * vault behind ok_api_handle, with a self-signed certificate given as the tenant's CA): service, customer
 * (versioned and unversioned URI) and double tenants; the validation refusals; set-key and remove-key
 * keeping the TK; locks with their reason (disabled, expired, deleted, permission removed, vault stopped)
 * and automatic unlock; following a rotated key; the local vault's seal; delete; restart. Timing is only
 * ever polled against generous deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "http/api/api.h"
#include "http/http.h"
#include "dataservice/ds_keys.h"
#include "vault_fixture.h"

#define WAIT_STEPS 600 /* x 100 ms */

static struct {
    char *tmp;
    ok_vault *local;           /* the service's own vault */
    ok_vault *cust;            /* the customer's vault */
    ok_api api;
    ok_http_server *server;
    unsigned port;
    char cert[600], key[600];
    char *ca_pem, *other_ca_pem;
    char *token;               /* get, wrapKey, unwrapKey on every key */
    char *token_getonly;       /* get only */
    unsigned ds_count;
    unsigned key_count;
} g;

/* ---- fixture ------------------------------------------------------------------------------------- */

static ok_err start_server(const char *listen, ok_http_server **out)
{
    ok_http_config cfg = {.listen = listen, .cert_pem_path = g.cert, .key_pem_path = g.key, .threads = 4,
                          .handler = ok_api_handle, .handler_ctx = &g.api};
    return ok_http_start(&cfg, out);
}

static int group_setup(void **state)
{
    (void)state;
    char dir[700], other_cert[700], other_key[700];
    char *tid = NULL;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.tmp = test_make_tmpdir();
    if (g.tmp == NULL)
        return -1;
    snprintf(dir, sizeof dir, "%s/local", g.tmp);
    g.local = fixture_new_vault(dir, 0);
    snprintf(dir, sizeof dir, "%s/customer", g.tmp);
    g.cust = fixture_new_vault(dir, 0);
    snprintf(g.cert, sizeof g.cert, "%s/cert.pem", g.tmp);
    snprintf(g.key, sizeof g.key, "%s/key.pem", g.tmp);
    snprintf(other_cert, sizeof other_cert, "%s/other-cert.pem", g.tmp);
    snprintf(other_key, sizeof other_key, "%s/other-key.pem", g.tmp);
    assert_int_equal(ok_http_ensure_self_signed(g.cert, g.key), OK_OK);
    assert_int_equal(ok_http_ensure_self_signed(other_cert, other_key), OK_OK);
    g.ca_pem = test_read_file(g.cert, NULL);
    g.other_ca_pem = test_read_file(other_cert, NULL);
    assert_non_null(g.ca_pem);
    assert_non_null(g.other_ca_pem);
    g.api.vault = g.cust;
    assert_int_equal(start_server("127.0.0.1:0", &g.server), OK_OK);
    g.port = ok_http_port(g.server);

    assert_int_equal(ok_vault_identity_create(g.cust, "dataservice", 0, &g.token, &tid), OK_OK);
    free(tid);
    assert_int_equal(ok_vault_policy_set(g.cust, "dataservice", "*", OK_PERM_GET | OK_PERM_WRAPKEY | OK_PERM_UNWRAPKEY), OK_OK);
    assert_int_equal(ok_vault_identity_create(g.cust, "getonly", 0, &g.token_getonly, &tid), OK_OK);
    free(tid);
    assert_int_equal(ok_vault_policy_set(g.cust, "getonly", "*", OK_PERM_GET), OK_OK);
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
    free(g.other_ca_pem);
    free(g.token);
    free(g.token_getonly);
    curl_global_cleanup();
    return 0;
}

static ok_ds *open_ds_at(const char *dir, int64_t ttl)
{
    ok_ds_config cfg = {.dir = dir, .vault = g.local, .key_cache_ttl = ttl, .probe_max_backoff = 1};
    ok_ds *ds = NULL;
    mkdir(dir, 0700);
    if (ok_ds_open(&cfg, &ds) != OK_OK)
        fail_msg("ok_ds_open: %s", ok_err_message());
    return ds;
}

static ok_ds *open_ds(int64_t ttl, char *dir_out, size_t len)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/ds%u", g.tmp, ++g.ds_count);
    if (dir_out)
        snprintf(dir_out, len, "%s", dir);
    return open_ds_at(dir, ttl);
}

/* A fresh key in the customer's vault: its name into name, its first version into version. */
static void new_key(ok_kty kty, unsigned ops, char name[32], char version[OK_KEY_VERSION_LEN + 1])
{
    ok_key_spec spec = {.kty = kty, .bits = kty == OK_KTY_RSA ? 2048 : kty == OK_KTY_OCT ? 256 : 0,
                        .curve = kty == OK_KTY_EC ? OK_CURVE_P256 : 0};
    ok_key_info info;
    if (ops) {
        spec.attrs.has_ops = 1;
        spec.attrs.ops = ops;
    }
    snprintf(name, 32, "key%u", ++g.key_count);
    assert_int_equal(ok_vault_key_create(g.cust, name, &spec, &info), OK_OK);
    if (version)
        memcpy(version, info.version, OK_KEY_VERSION_LEN + 1);
    ok_key_info_clear(&info);
}

static void key_uri(const char *name, const char *version, char *out, size_t len)
{
    snprintf(out, len, "https://127.0.0.1:%u/keys/%s%s%s", g.port, name, version ? "/" : "", version ? version : "");
}

static ok_err create_customer(ok_ds *ds, const char *tenant, const char *uri, const char *token, const char *ca,
                              int dbl, int permanent, ok_ds_tenant_info *info)
{
    ok_ds_customer_key ck = {.uri = uri, .token = token, .ca_pem = ca};
    ok_ds_tenant_settings s = {.customer = &ck, .double_encryption = dbl, .permanent = permanent};
    return ok_ds_tenant_create(ds, tenant, &s, info);
}

static void get_tk(ok_ds *ds, const char *tenant, uint64_t gen, uint8_t tk[DS_TK_LEN])
{
    if (ds_tk_get(ds, tenant, gen, tk) != OK_OK)
        fail_msg("ds_tk_get(%s): %s", tenant, ok_err_message());
}

/* Polls the tenant's status until its state is `want`; fails after a generous deadline. */
static void wait_state(ok_ds *ds, const char *tenant, ok_ds_state want, ok_ds_tenant_info *info)
{
    for (int i = 0; i < WAIT_STEPS; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, tenant, info), OK_OK);
        if (info->state == want)
            return;
        usleep(100000);
    }
    fail_msg("tenant %s never became %s (reason %s)", tenant, want == OK_DS_LOCKED ? "locked" : "active",
             info->reason_code);
}

/* ---- tests ------------------------------------------------------------------------------------------ */

static void test_service_tenant(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    ok_ds_tenant_info info;
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];
    ds_tenant_ref ref;

    assert_int_equal(ok_ds_tenant_create(ds, "svc-1", NULL, &info), OK_OK);
    assert_string_equal(info.name, "svc-1");
    assert_int_equal(info.source, OK_DS_KEYS_SERVICE);
    assert_int_equal(info.state, OK_DS_ACTIVE);
    assert_int_equal(info.tk_generation, 1);
    assert_string_equal(info.customer_uri, "");
    assert_string_equal(info.customer_kid, "");
    assert_int_equal(info.permanent, 0);
    get_tk(ds, "svc-1", 1, a);
    get_tk(ds, "svc-1", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    assert_int_equal(ds_tenant_ref_get(ds, "svc-1", &ref), OK_OK);
    assert_int_equal(ref.generation, 1);
    assert_int_equal(strlen(ref.uuid), DS_UUID_LEN);

    assert_int_equal(ok_ds_tenant_create(ds, "svc-2", NULL, NULL), OK_OK);
    get_tk(ds, "svc-2", 1, b);
    assert_memory_not_equal(a, b, DS_TK_LEN);

    assert_int_equal(ok_ds_tenant_create(ds, "svc-1", NULL, NULL), OK_ERR_CONFLICT);
    assert_int_equal(ok_ds_tenant_create(ds, "bad_name", NULL, NULL), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_ds_tenant_create(ds, "", NULL, NULL), OK_ERR_INVALID_ARG);
    char long_name[70];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_int_equal(ok_ds_tenant_create(ds, long_name, NULL, NULL), OK_ERR_INVALID_ARG);
    long_name[63] = '\0';
    assert_true(ok_ds_tenant_name_valid(long_name));
    assert_int_equal(ok_ds_tenant_get(ds, "nobody", &info), OK_ERR_NOT_FOUND);
    assert_int_equal(ds_tk_get(ds, "nobody", 1, a), OK_ERR_NOT_FOUND);
    assert_int_equal(ds_tk_get(ds, "svc-1", 7, a), OK_ERR_NOT_FOUND);
    ok_ds_tenant_settings bad = {.customer = NULL, .permanent = 1};
    assert_int_equal(ok_ds_tenant_create(ds, "svc-3", &bad, NULL), OK_ERR_INVALID_ARG);

    char **names = NULL;
    size_t count = 0;
    assert_int_equal(ok_ds_tenant_list(ds, &names, &count), OK_OK);
    assert_int_equal(count, 2);
    assert_string_equal(names[0], "svc-1");
    assert_string_equal(names[1], "svc-2");
    ok_ds_names_free(names, count);

    ok_buf m;
    ok_buf_init(&m, 0);
    ok_ds_metrics(ds, &m);
    assert_int_equal(ok_buf_put(&m, "", 1), OK_OK);
    assert_non_null(strstr((char *)m.data, "ownkey_data_tenants{state=\"active\"} 2"));
    assert_non_null(strstr((char *)m.data, "ownkey_data_tenant_locked{tenant=\"svc-1\"} 0"));
    assert_non_null(strstr((char *)m.data, "ownkey_data_root_calls_total "));
    ok_buf_free(&m);
    ok_ds_close(ds);
}

static void test_customer_tenants(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    ok_ds_tenant_info info;
    char rsa[32], oct[32], rsa_v[OK_KEY_VERSION_LEN + 1], oct_v[OK_KEY_VERSION_LEN + 1], uri[300], kid[400];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];

    new_key(OK_KTY_RSA, 0, rsa, rsa_v);
    new_key(OK_KTY_OCT, 0, oct, oct_v);

    /* versioned RSA key */
    key_uri(rsa, rsa_v, uri, sizeof uri);
    uint64_t calls = ok_ds_root_calls(ds);
    if (create_customer(ds, "cust-rsa", uri, g.token, g.ca_pem, 0, 0, &info) != OK_OK)
        fail_msg("create: %s", ok_err_message());
    assert_true(ok_ds_root_calls(ds) > calls);
    assert_int_equal(info.source, OK_DS_KEYS_CUSTOMER);
    assert_string_equal(info.customer_uri, uri);
    snprintf(kid, sizeof kid, "https://127.0.0.1:%u/keys/%s/%s", g.port, rsa, rsa_v);
    assert_string_equal(info.customer_kid, kid);
    assert_int_equal(info.state, OK_DS_ACTIVE);
    get_tk(ds, "cust-rsa", 1, a);

    /* unversioned oct key */
    key_uri(oct, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "cust-oct", uri, g.token, g.ca_pem, 0, 0, &info), OK_OK);
    snprintf(kid, sizeof kid, "https://127.0.0.1:%u/keys/%s/%s", g.port, oct, oct_v);
    assert_string_equal(info.customer_kid, kid);
    get_tk(ds, "cust-oct", 1, b);
    assert_memory_not_equal(a, b, DS_TK_LEN);

    /* double, over both key types */
    key_uri(rsa, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "double-rsa", uri, g.token, g.ca_pem, 1, 0, &info), OK_OK);
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);
    key_uri(oct, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "double-oct", uri, g.token, g.ca_pem, 1, 1, &info), OK_OK);
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);
    assert_int_equal(info.permanent, 1);
    get_tk(ds, "double-oct", 1, a);

    /* a cached TK costs no root call */
    calls = ok_ds_root_calls(ds);
    for (int i = 0; i < 100; i++)
        get_tk(ds, "double-oct", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    assert_true(ok_ds_root_calls(ds) - calls < 10); /* only the worker's own re-verifications, if any */
    ok_ds_close(ds);

    /* a restart unwraps through the vault again and gets the same keys */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/ds%u", g.tmp, g.ds_count);
    ds = open_ds_at(dir, 60);
    calls = ok_ds_root_calls(ds);
    get_tk(ds, "double-oct", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    assert_true(ok_ds_root_calls(ds) > calls);
    ok_ds_close(ds);
}

/* Each refused create: OK_ERR_KEY, the message contains `words`, and no tenant is left behind. */
static void refused(ok_ds *ds, const char *uri, const char *token, const char *ca, const char *words)
{
    ok_err rc = create_customer(ds, "refused", uri, token, ca, 0, 0, NULL);
    if (rc != OK_ERR_KEY)
        fail_msg("%s: got %d (%s)", uri, (int)rc, ok_err_message());
    if (strstr(ok_err_message(), words) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", uri, ok_err_message(), words);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(ds, "refused", &info), OK_ERR_NOT_FOUND);
}

static void test_validation_refusals(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    char name[32], uri[300];

    key_uri("no-such-key", NULL, uri, sizeof uri);
    refused(ds, uri, g.token, g.ca_pem, "KeyNotFound");

    new_key(OK_KTY_EC, 0, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    refused(ds, uri, g.token, g.ca_pem, "cannot wrap");

    new_key(OK_KTY_OCT, OK_KEYOP_ENCRYPT | OK_KEYOP_DECRYPT | OK_KEYOP_UNWRAP, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    refused(ds, uri, g.token, g.ca_pem, "wrapKey");

    new_key(OK_KTY_RSA, 0, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    refused(ds, uri, g.token_getonly, g.ca_pem, "Forbidden");
    refused(ds, uri, "not-a-token", g.ca_pem, "Forbidden");
    refused(ds, uri, g.token, g.other_ca_pem, "VaultUnreachable");
    refused(ds, uri, "", g.ca_pem, "token");
    refused(ds, "https://127.0.0.1/secrets/x", g.token, g.ca_pem, "URI");

    ok_key_attrs off = {.has_enabled = 1, .enabled = 0};
    ok_key_info info;
    assert_int_equal(ok_vault_key_update(g.cust, name, NULL, &off, &info), OK_OK);
    ok_key_info_clear(&info);
    refused(ds, uri, g.token, g.ca_pem, "KeyDisabled");

    /* a key that works, for contrast */
    new_key(OK_KTY_RSA, 0, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "accepted", uri, g.token, g.ca_pem, 0, 0, NULL), OK_OK);
    ok_ds_close(ds);
}

static void put_object(ok_ds *ds, const char *tenant, const char *name, const char *text)
{
    ok_ds_put *p = NULL;
    if (ok_ds_put_begin(ds, tenant, name, "text/plain", NULL, 0, strlen(text), &p) != OK_OK)
        fail_msg("put_begin: %s", ok_err_message());
    assert_int_equal(ok_ds_put_write(p, (const uint8_t *)text, strlen(text)), OK_OK);
    if (ok_ds_put_commit(p, NULL) != OK_OK)
        fail_msg("put_commit: %s", ok_err_message());
}

static void check_object(ok_ds *ds, const char *tenant, const char *name, const char *text)
{
    ok_ds_object_info info;
    ok_ds_get *gt = NULL;
    char buf[256];
    size_t got = 0;
    if (ok_ds_get_open(ds, tenant, name, &info, &gt) != OK_OK)
        fail_msg("get_open: %s", ok_err_message());
    assert_int_equal(ok_ds_get_read(gt, 0, (uint8_t *)buf, sizeof buf, &got), OK_OK);
    assert_int_equal(got, strlen(text));
    assert_memory_equal(buf, text, got);
    ok_ds_get_close(gt);
}

static void test_set_and_remove_key(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    ok_ds_tenant_info info;
    char rsa[32], oct[32], uri[300];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];
    ok_ds_customer_key ck = {.token = g.token, .ca_pem = g.ca_pem};
    ok_ds_tenant_settings s = {.customer = &ck};

    new_key(OK_KTY_RSA, 0, rsa, NULL);
    new_key(OK_KTY_OCT, 0, oct, NULL);
    assert_int_equal(ok_ds_tenant_create(ds, "moving", NULL, NULL), OK_OK);
    get_tk(ds, "moving", 1, a);
    put_object(ds, "moving", "doc", "hello, tenant");

    /* service -> customer (RSA) */
    key_uri(rsa, NULL, uri, sizeof uri);
    ck.uri = uri;
    if (ok_ds_tenant_set_key(ds, "moving", &s, &info) != OK_OK)
        fail_msg("set_key: %s", ok_err_message());
    assert_int_equal(info.source, OK_DS_KEYS_CUSTOMER);
    assert_string_equal(info.customer_uri, uri);
    get_tk(ds, "moving", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    check_object(ds, "moving", "doc", "hello, tenant");

    /* -> double under the oct key */
    key_uri(oct, NULL, uri, sizeof uri);
    s.double_encryption = 1;
    assert_int_equal(ok_ds_tenant_set_key(ds, "moving", &s, &info), OK_OK);
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);
    get_tk(ds, "moving", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);

    /* a refused key changes nothing */
    ck.uri = "https://127.0.0.1:1/keys/nowhere";
    assert_int_equal(ok_ds_tenant_set_key(ds, "moving", &s, &info), OK_ERR_KEY);
    assert_int_equal(ok_ds_tenant_get(ds, "moving", &info), OK_OK);
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);

    /* remove -> service, same TK, data still readable, also after a restart (from the rows) */
    assert_int_equal(ok_ds_tenant_remove_key(ds, "moving", &info), OK_OK);
    assert_int_equal(info.source, OK_DS_KEYS_SERVICE);
    assert_string_equal(info.customer_uri, "");
    assert_string_equal(info.customer_kid, "");
    get_tk(ds, "moving", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    check_object(ds, "moving", "doc", "hello, tenant");

    /* permanent: may change keys, never drop one */
    key_uri(rsa, NULL, uri, sizeof uri);
    ck.uri = uri;
    s.double_encryption = 0;
    s.permanent = 1;
    assert_int_equal(ok_ds_tenant_set_key(ds, "moving", &s, &info), OK_OK);
    assert_int_equal(info.permanent, 1);
    assert_int_equal(ok_ds_tenant_remove_key(ds, "moving", &info), OK_ERR_CONFLICT);
    key_uri(oct, NULL, uri, sizeof uri);
    s.permanent = 0;
    assert_int_equal(ok_ds_tenant_set_key(ds, "moving", &s, &info), OK_OK);
    assert_int_equal(info.permanent, 1);
    assert_string_equal(info.customer_uri, uri);
    assert_int_equal(ok_ds_tenant_remove_key(ds, "moving", &info), OK_ERR_CONFLICT);
    get_tk(ds, "moving", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    check_object(ds, "moving", "doc", "hello, tenant");
    assert_int_equal(ok_ds_tenant_set_key(ds, "nobody", &s, &info), OK_ERR_NOT_FOUND);
    ok_ds_close(ds);
}

/* One lock cause: break() makes the key unusable, the tenant locks with `code`, data calls answer
 * OK_ERR_LOCKED, fix() repairs it and the tenant unlocks with the same TK. */
typedef void (*key_change)(const char *key);

static void lock_cycle(ok_ds *ds, const char *tenant, const char *key, key_change brk, key_change fix,
                       const char *code)
{
    ok_ds_tenant_info info;
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];

    get_tk(ds, tenant, 1, a);
    brk(key);
    wait_state(ds, tenant, OK_DS_LOCKED, &info);
    if (strcmp(info.reason_code, code) != 0)
        fail_msg("tenant %s locked for %s (%s), expected %s", tenant, info.reason_code, info.reason, code);
    assert_true(info.reason[0] != '\0');
    assert_true(info.since > 0);
    assert_int_equal(ds_tk_get(ds, tenant, 1, b), OK_ERR_LOCKED);
    assert_non_null(strstr(ok_err_message(), code));
    ok_buf m;
    ok_buf_init(&m, 0);
    ok_ds_metrics(ds, &m);
    (void)ok_buf_put(&m, "", 1);
    char line[200];
    snprintf(line, sizeof line, "ownkey_data_tenant_locked{tenant=\"%s\"} 1", tenant);
    assert_non_null(strstr((char *)m.data, line));
    ok_buf_free(&m);
    fix(key);
    wait_state(ds, tenant, OK_DS_ACTIVE, &info);
    assert_string_equal(info.reason_code, "");
    get_tk(ds, tenant, 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
}

static void set_enabled(const char *key, int on)
{
    ok_key_attrs at = {.has_enabled = 1, .enabled = on};
    ok_key_info info;
    assert_int_equal(ok_vault_key_update(g.cust, key, NULL, &at, &info), OK_OK);
    ok_key_info_clear(&info);
}
static void disable(const char *key) { set_enabled(key, 0); }
static void enable(const char *key) { set_enabled(key, 1); }

static void set_exp(const char *key, int64_t exp)
{
    ok_key_attrs at = {.has_exp = 1, .exp = exp};
    ok_key_info info;
    assert_int_equal(ok_vault_key_update(g.cust, key, NULL, &at, &info), OK_OK);
    ok_key_info_clear(&info);
}
static void expire(const char *key) { set_exp(key, (int64_t)time(NULL) - 10); }
static void unexpire(const char *key) { set_exp(key, 0); }

static void delete_key(const char *key)
{
    ok_key_info info;
    assert_int_equal(ok_vault_key_delete(g.cust, key, &info), OK_OK);
    ok_key_info_clear(&info);
}
static void recover_key(const char *key)
{
    ok_key_info info;
    assert_int_equal(ok_vault_deleted_recover(g.cust, key, &info), OK_OK);
    ok_key_info_clear(&info);
}

/* The "perm" identity holds a policy on exactly one key. */
static void revoke_unwrap(const char *key)
{
    assert_int_equal(ok_vault_policy_set(g.cust, "perm", key, OK_PERM_GET | OK_PERM_WRAPKEY), OK_OK);
}
static void grant_unwrap(const char *key)
{
    assert_int_equal(ok_vault_policy_set(g.cust, "perm", key, OK_PERM_GET | OK_PERM_WRAPKEY | OK_PERM_UNWRAPKEY), OK_OK);
}

static void test_lock_reasons(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(1, NULL, 0); /* TTL 1 s: re-verified every half second */
    char k[4][32], uri[300], *perm_token = NULL, *tid = NULL;

    for (int i = 0; i < 4; i++)
        new_key(i % 2 ? OK_KTY_OCT : OK_KTY_RSA, 0, k[i], NULL);
    assert_int_equal(ok_vault_identity_create(g.cust, "perm", 0, &perm_token, &tid), OK_OK);
    free(tid);
    grant_unwrap(k[3]);

    key_uri(k[0], NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-disabled", uri, g.token, g.ca_pem, 0, 0, NULL), OK_OK);
    key_uri(k[1], NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-expired", uri, g.token, g.ca_pem, 1, 0, NULL), OK_OK);
    key_uri(k[2], NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-deleted", uri, g.token, g.ca_pem, 0, 0, NULL), OK_OK);
    key_uri(k[3], NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-perm", uri, perm_token, g.ca_pem, 0, 0, NULL), OK_OK);
    assert_int_equal(ok_ds_tenant_create(ds, "t-service", NULL, NULL), OK_OK);

    uint64_t locks = atomic_load(&ds->locks);
    lock_cycle(ds, "t-disabled", k[0], disable, enable, "KeyDisabled");
    lock_cycle(ds, "t-expired", k[1], expire, unexpire, "KeyExpired");
    lock_cycle(ds, "t-deleted", k[2], delete_key, recover_key, "KeyNotFound");
    lock_cycle(ds, "t-perm", k[3], revoke_unwrap, grant_unwrap, "Forbidden");
    assert_true(atomic_load(&ds->locks) >= locks + 4);
    assert_true(atomic_load(&ds->unlocks) >= 4);

    /* the service tenant never noticed */
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(ds, "t-service", &info), OK_OK);
    assert_int_equal(info.state, OK_DS_ACTIVE);
    free(perm_token);
    ok_ds_close(ds);
}

static void test_vault_stopped(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(1, NULL, 0);
    ok_http_server *second = NULL;
    ok_ds_tenant_info info;
    char name[32], uri[300], listen[64];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];

    /* a second server on the same customer vault, which this test stops and starts again */
    assert_int_equal(start_server("127.0.0.1:0", &second), OK_OK);
    unsigned port = ok_http_port(second);
    new_key(OK_KTY_RSA, 0, name, NULL);
    snprintf(uri, sizeof uri, "https://127.0.0.1:%u/keys/%s", port, name);
    assert_int_equal(create_customer(ds, "t-stopped", uri, g.token, g.ca_pem, 0, 0, NULL), OK_OK);
    get_tk(ds, "t-stopped", 1, a);

    ok_http_stop(second);
    wait_state(ds, "t-stopped", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "VaultUnreachable");
    assert_int_equal(ds_tk_get(ds, "t-stopped", 1, b), OK_ERR_LOCKED);

    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    ok_err rc = OK_ERR_IO;
    for (int i = 0; i < 100 && (rc = start_server(listen, &second)) != OK_OK; i++)
        usleep(100000);
    assert_int_equal(rc, OK_OK);
    wait_state(ds, "t-stopped", OK_DS_ACTIVE, &info);
    get_tk(ds, "t-stopped", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    ok_http_stop(second);
    ok_ds_close(ds);
}

static int kid_ends_with(const ok_ds_tenant_info *info, const char *version)
{
    size_t n = strlen(info->customer_kid), v = strlen(version);
    return n > v && strcmp(info->customer_kid + n - v, version) == 0;
}

static void test_rotation_followed(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(1, NULL, 0);
    ok_ds_tenant_info info;
    char follow[32], pinned[32], v1[OK_KEY_VERSION_LEN + 1], p1[OK_KEY_VERSION_LEN + 1], uri[300];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN], c[DS_TK_LEN], d[DS_TK_LEN];
    ok_key_info k2, pk2;

    new_key(OK_KTY_OCT, 0, follow, v1);
    new_key(OK_KTY_RSA, 0, pinned, p1);
    key_uri(follow, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-follow", uri, g.token, g.ca_pem, 0, 0, &info), OK_OK);
    assert_true(kid_ends_with(&info, v1));
    key_uri(follow, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-follow2", uri, g.token, g.ca_pem, 1, 0, &info), OK_OK);
    key_uri(pinned, p1, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-pinned", uri, g.token, g.ca_pem, 0, 0, &info), OK_OK);
    get_tk(ds, "t-follow", 1, a);
    get_tk(ds, "t-pinned", 1, c);

    assert_int_equal(ok_vault_key_rotate(g.cust, follow, &k2), OK_OK);
    assert_int_equal(ok_vault_key_rotate(g.cust, pinned, &pk2), OK_OK);
    for (int i = 0; i < WAIT_STEPS; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, "t-follow", &info), OK_OK);
        if (kid_ends_with(&info, k2.version))
            break;
        usleep(100000);
    }
    assert_true(kid_ends_with(&info, k2.version));
    for (int i = 0; i < WAIT_STEPS; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, "t-follow2", &info), OK_OK);
        if (kid_ends_with(&info, k2.version))
            break;
        usleep(100000);
    }
    assert_true(kid_ends_with(&info, k2.version));
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);

    /* the pinned one has been re-verified since (several passes) and still names its version */
    uint64_t calls = ok_ds_root_calls(ds);
    for (int i = 0; i < WAIT_STEPS && ok_ds_root_calls(ds) < calls + 8; i++)
        usleep(100000);
    assert_int_equal(ok_ds_tenant_get(ds, "t-pinned", &info), OK_OK);
    assert_true(kid_ends_with(&info, p1));
    assert_int_equal(info.state, OK_DS_ACTIVE);

    /* same TKs; and the old version can go: the re-wrapped row no longer needs it */
    get_tk(ds, "t-follow", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    get_tk(ds, "t-pinned", 1, d);
    assert_memory_equal(c, d, DS_TK_LEN);
    ok_key_attrs off = {.has_enabled = 1, .enabled = 0};
    ok_key_info tmp;
    assert_int_equal(ok_vault_key_update(g.cust, follow, v1, &off, &tmp), OK_OK);
    ok_key_info_clear(&tmp);
    ok_ds_close(ds);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/ds%u", g.tmp, g.ds_count);
    ds = open_ds_at(dir, 1);
    get_tk(ds, "t-follow", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    ok_key_info_clear(&k2);
    ok_key_info_clear(&pk2);
    ok_ds_close(ds);
}

static void test_seal_wipes_caches(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    ok_ds_tenant_info info;
    char name[32], uri[300];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN], c[DS_TK_LEN];
    ds_tenant_ref ref;

    new_key(OK_KTY_OCT, 0, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "t-cust", uri, g.token, g.ca_pem, 1, 0, NULL), OK_OK);
    assert_int_equal(ok_ds_tenant_create(ds, "t-svc", NULL, NULL), OK_OK);
    get_tk(ds, "t-cust", 1, a);
    get_tk(ds, "t-svc", 1, c);

    assert_int_equal(ok_vault_seal(g.local), OK_OK);
    assert_int_equal(ds_tk_get(ds, "t-cust", 1, b), OK_ERR_SEALED);
    assert_int_equal(ds_tk_get(ds, "t-svc", 1, b), OK_ERR_SEALED);
    assert_int_equal(ds_tenant_ref_get(ds, "t-svc", &ref), OK_ERR_SEALED);
    assert_int_equal(ok_ds_tenant_get(ds, "t-svc", &info), OK_OK);
    assert_int_equal(info.state, OK_DS_LOCKED);
    assert_string_equal(info.reason_code, "VaultSealed");
    assert_int_equal(ok_ds_tenant_create(ds, "t-new", NULL, NULL), OK_ERR_SEALED);
    assert_null(ds->keys->srk); /* the SRK is gone from memory */

    assert_int_equal(ok_vault_unseal_auto(g.local), OK_OK);
    uint64_t calls = ok_ds_root_calls(ds);
    get_tk(ds, "t-cust", 1, b);
    assert_memory_equal(a, b, DS_TK_LEN);
    assert_true(ok_ds_root_calls(ds) > calls); /* unwrapped again: the cache had been wiped */
    get_tk(ds, "t-svc", 1, b);
    assert_memory_equal(c, b, DS_TK_LEN);

    /* a seal and an unseal between two calls are noticed too */
    assert_int_equal(ok_vault_seal(g.local), OK_OK);
    assert_int_equal(ok_vault_unseal_auto(g.local), OK_OK);
    calls = ok_ds_root_calls(ds);
    get_tk(ds, "t-svc", 1, b);
    assert_memory_equal(c, b, DS_TK_LEN);
    assert_true(ok_ds_root_calls(ds) > calls);
    ok_ds_close(ds);
}

static void test_delete_tenant(void **state)
{
    (void)state;
    ok_ds *ds = open_ds(60, NULL, 0);
    ok_ds_tenant_info info;
    char name[32], uri[300];
    uint8_t a[DS_TK_LEN], b[DS_TK_LEN];
    ds_tenant_ref r1, r2;

    new_key(OK_KTY_RSA, 0, name, NULL);
    key_uri(name, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "doomed", uri, g.token, g.ca_pem, 0, 0, NULL), OK_OK);
    assert_int_equal(ds_tenant_ref_get(ds, "doomed", &r1), OK_OK);
    get_tk(ds, "doomed", 1, a);
    put_object(ds, "doomed", "doc", "secret stuff");

    assert_int_equal(ok_ds_tenant_delete(ds, "doomed"), OK_OK);
    assert_int_equal(ok_ds_tenant_get(ds, "doomed", &info), OK_ERR_NOT_FOUND);
    assert_int_equal(ds_tk_get(ds, "doomed", 1, b), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_ds_tenant_delete(ds, "doomed"), OK_ERR_NOT_FOUND);
    char path[800];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", ds->objects_dir, r1.uuid);
    assert_int_not_equal(stat(path, &sb), 0);

    /* the name can be used again: a new tenant with a new key */
    assert_int_equal(ok_ds_tenant_create(ds, "doomed", NULL, NULL), OK_OK);
    assert_int_equal(ds_tenant_ref_get(ds, "doomed", &r2), OK_OK);
    assert_string_not_equal(r1.uuid, r2.uuid);
    get_tk(ds, "doomed", 1, b);
    assert_memory_not_equal(a, b, DS_TK_LEN);
    ok_ds_close(ds);
}

static void test_restart_keeps_everything(void **state)
{
    (void)state;
    char dir[700], k1[32], k2[32], uri[300];
    ok_ds *ds = open_ds(60, dir, sizeof dir);
    ok_ds_tenant_info info;
    uint8_t a[3][DS_TK_LEN], b[DS_TK_LEN];
    static const char *const names[3] = {"r-svc", "r-cust", "r-double"};

    new_key(OK_KTY_RSA, 0, k1, NULL);
    new_key(OK_KTY_OCT, 0, k2, NULL);
    assert_int_equal(ok_ds_tenant_create(ds, "r-svc", NULL, NULL), OK_OK);
    key_uri(k1, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "r-cust", uri, g.token, g.ca_pem, 0, 1, NULL), OK_OK);
    key_uri(k2, NULL, uri, sizeof uri);
    assert_int_equal(create_customer(ds, "r-double", uri, g.token, g.ca_pem, 1, 0, NULL), OK_OK);
    for (int i = 0; i < 3; i++)
        get_tk(ds, names[i], 1, a[i]);
    ok_ds_close(ds);

    ds = open_ds_at(dir, 60);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, names[i], &info), OK_OK);
        assert_int_equal(info.state, OK_DS_ACTIVE);
        get_tk(ds, names[i], 1, b);
        assert_memory_equal(a[i], b, DS_TK_LEN);
    }
    assert_int_equal(ok_ds_tenant_get(ds, "r-cust", &info), OK_OK);
    assert_int_equal(info.permanent, 1);
    assert_int_equal(info.source, OK_DS_KEYS_CUSTOMER);
    ok_ds_close(ds);

    /* a key disabled while the service was down: the first refresh after the restart locks */
    disable(k2);
    ds = open_ds_at(dir, 60);
    assert_int_equal(ok_ds_tenant_get(ds, "r-double", &info), OK_OK);
    assert_int_equal(info.state, OK_DS_LOCKED);
    assert_string_equal(info.reason_code, "KeyDisabled");
    assert_int_equal(ds_tk_get(ds, "r-double", 1, b), OK_ERR_LOCKED);
    get_tk(ds, "r-svc", 1, b);
    assert_memory_equal(a[0], b, DS_TK_LEN);
    enable(k2);
    ok_ds_close(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_tenant),
        cmocka_unit_test(test_customer_tenants),
        cmocka_unit_test(test_validation_refusals),
        cmocka_unit_test(test_set_and_remove_key),
        cmocka_unit_test(test_lock_reasons),
        cmocka_unit_test(test_vault_stopped),
        cmocka_unit_test(test_rotation_followed),
        cmocka_unit_test(test_seal_wipes_caches),
        cmocka_unit_test(test_delete_tenant),
        cmocka_unit_test(test_restart_keeps_everything),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
