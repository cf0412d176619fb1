/* Tests of data-service tenants whose customer key is held outside a vault (root_keys.c, hyok_keys.c):
 * a key in a SoftHSM2 token (made here in a temporary directory, keys made through the C API: AES-256 and
 * RSA-3072) and a key on a PyKMIP server (started here on a free port with certificates made by openssl).
 * Covers validation (refusals name the cause; a pin-value never shows), put/get through customer and
 * double tenants, locks with their reason code within the TTL (token moved away: KeyUnreachable; PIN
 * changed: Forbidden; KMIP server stopped: KeyUnreachable; key revoked: KeyDisabled) and the automatic
 * unlock once the cause is gone, data intact. Skipped per part when softhsm2 or pykmip-server is missing.
 * Timing is only ever polled against generous deadlines. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dataservice/ds_keys.h"
#include "providers/kmip_client.h"
#include "softhsm_fixture.h"
#include "vault_fixture.h"

#define KMIP_BIN "/usr/bin/pykmip-server"
#define LABEL "ds-hyok"
#define PIN "1234"
#define WAIT_STEPS 300 /* x 100 ms */

static struct {
    char *tmp;
    ok_vault *local;
    unsigned ds_count;
    /* SoftHSM2 */
    int p11;
    char tokens[512], pin_file[512];
    ok_p11_module *mod;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    /* PyKMIP */
    int kmip;
    char kdir[600];
    unsigned port;
    pid_t pid;
} g;

/* ---- helpers ------------------------------------------------------------------------------------------- */

static ok_ds *open_ds(int64_t ttl)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/ds%u", g.tmp, ++g.ds_count);
    mkdir(dir, 0700);
    ok_ds_config cfg = {.dir = dir, .vault = g.local, .key_cache_ttl = ttl, .probe_max_backoff = 1};
    ok_ds *ds = NULL;
    if (ok_ds_open(&cfg, &ds) != OK_OK)
        fail_msg("ok_ds_open: %s", ok_err_message());
    return ds;
}

static ok_err create_tenant(ok_ds *ds, const char *tenant, const char *uri, int dbl, ok_ds_tenant_info *info)
{
    ok_ds_customer_key ck = {.uri = uri};
    ok_ds_tenant_settings s = {.customer = &ck, .double_encryption = dbl};
    return ok_ds_tenant_create(ds, tenant, &s, info);
}

static void put_text(ok_ds *ds, const char *tenant, const char *object, const char *text)
{
    ok_ds_put *p = NULL;
    size_t n = strlen(text);
    if (ok_ds_put_begin(ds, tenant, object, NULL, NULL, 0, n, &p) != OK_OK)
        fail_msg("put %s/%s: %s", tenant, object, ok_err_message());
    assert_int_equal(ok_ds_put_write(p, (const uint8_t *)text, n), OK_OK);
    if (ok_ds_put_commit(p, NULL) != OK_OK)
        fail_msg("commit %s/%s: %s", tenant, object, ok_err_message());
}

/* The object's bytes as a string, or the error (OK_ERR_LOCKED for a locked tenant). */
static ok_err get_text(ok_ds *ds, const char *tenant, const char *object, char *buf, size_t cap)
{
    ok_ds_get *gt = NULL;
    ok_ds_object_info info;
    size_t got = 0;
    OK_GUARD(ok_ds_get_open(ds, tenant, object, &info, &gt));
    ok_err rc = ok_ds_get_read(gt, 0, (uint8_t *)buf, cap - 1, &got);
    ok_ds_get_close(gt);
    buf[rc == OK_OK ? got : 0] = '\0';
    return rc;
}

static void expect_text(ok_ds *ds, const char *tenant, const char *object, const char *want)
{
    char buf[256];
    if (get_text(ds, tenant, object, buf, sizeof buf) != OK_OK)
        fail_msg("get %s/%s: %s", tenant, object, ok_err_message());
    assert_string_equal(buf, want);
}

static void wait_state(ok_ds *ds, const char *tenant, ok_ds_state want, ok_ds_tenant_info *info)
{
    for (int i = 0; i < WAIT_STEPS; i++) {
        assert_int_equal(ok_ds_tenant_get(ds, tenant, info), OK_OK);
        if (info->state == want)
            return;
        usleep(100000);
    }
    fail_msg("tenant %s never became %s (reason %s: %s)", tenant, want == OK_DS_LOCKED ? "locked" : "active",
             info->reason_code, info->reason);
}

/* ---- SoftHSM2 fixture -------------------------------------------------------------------------------------- */

static void p11_uri(char *buf, size_t len, const char *object)
{
    snprintf(buf, len, "pkcs11:token=" LABEL ";object=%s?module-path=" SOFTHSM_MODULE "&pin-source=file:%s", object,
             g.pin_file);
}

/* A session of the test's own on the token (again after the module was re-initialized), logged in. */
static void p11_session(void)
{
    CK_RV rv = softhsm_session(g.f, LABEL, PIN, CKF_SERIAL_SESSION | CKF_RW_SESSION, &g.slot, &g.s);
    assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
}

static void p11_setup(void)
{
    if (!softhsm_available())
        return;
    softhsm_token_init(g.tmp, LABEL, PIN, g.tokens, g.pin_file);
    assert_int_equal(ok_p11_module_get(SOFTHSM_MODULE, &g.mod), OK_OK);
    g.f = ok_p11_module_functions(g.mod);
    p11_session();
    assert_int_equal(softhsm_gen_aes(g.f, g.s, "kek-aes", NULL, 0), CKR_OK);
    assert_int_equal(softhsm_gen_rsa(g.f, g.s, "kek-rsa", NULL, 3072, 0), CKR_OK);
    g.p11 = 1;
}

/* ---- PyKMIP fixture ------------------------------------------------------------------------------------------ */

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && (", g.kdir);
    n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof cmd - (size_t)n, ") >>setup.log 2>&1");
    return system(cmd);
}

static int make_cert(const char *name, const char *cn, const char *ext)
{
    return sh("openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr -subj /CN=%s && printf '%s' > %s.ext && "
              "openssl x509 -req -in %s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out %s.crt -days 2 -extfile %s.ext",
              name, name, cn, ext, name, name, name, name);
}

static int port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void kmip_stop(void)
{
    if (g.pid > 0) {
        kill(-g.pid, SIGKILL);
        waitpid(g.pid, NULL, 0);
        g.pid = 0;
    }
}

static int kmip_start(void)
{
    char conf[700], out[700], log[700];
    snprintf(conf, sizeof conf, "%s/server.conf", g.kdir);
    snprintf(out, sizeof out, "%s/server.out", g.kdir);
    snprintf(log, sizeof log, "%s/server.log", g.kdir);
    g.pid = fork();
    if (g.pid == 0) {
        setsid();
        if (!freopen(out, "a", stdout) || !freopen(out, "a", stderr))
            _exit(126);
        execl("/usr/bin/python3", "python3", KMIP_BIN, "-f", conf, "-l", log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400 && !port_open(); i++)
        usleep(50000);
    return port_open();
}

static void kmip_setup(void)
{
    if (access(KMIP_BIN, X_OK) != 0 || system("openssl version >/dev/null 2>&1") != 0)
        return;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    g.port = ntohs(a.sin_port);
    snprintf(g.kdir, sizeof g.kdir, "%s/kmip", g.tmp);
    assert_int_equal(mkdir(g.kdir, 0700), 0);
    if (sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ds-hyok-ca") ||
        make_cert("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n") ||
        make_cert("client", "kmip-client", "extendedKeyUsage=clientAuth\\n") ||
        sh("mkdir policies && printf '[server]\\nhostname=127.0.0.1\\nport=%u\\ncertificate_path=%s/server.crt\\n"
           "key_path=%s/server.key\\nca_path=%s/ca.crt\\nauth_suite=TLS1.2\\npolicy_path=%s/policies\\n"
           "enable_tls_client_auth=True\\nlogging_level=INFO\\ndatabase_path=%s/pykmip.db\\n' > server.conf",
           g.port, g.kdir, g.kdir, g.kdir, g.kdir, g.kdir))
        fail_msg("cannot make the KMIP test certificates (see %s/setup.log)", g.kdir);
    if (!kmip_start()) {
        kmip_stop();
        fail_msg("pykmip-server did not start (see %s/server.out)", g.kdir);
    }
    g.kmip = 1;
}

static ok_kmip_client *kmip_client(void)
{
    char cert[700], key[700], ca[700];
    snprintf(cert, sizeof cert, "%s/client.crt", g.kdir);
    snprintf(key, sizeof key, "%s/client.key", g.kdir);
    snprintf(ca, sizeof ca, "%s/ca.crt", g.kdir);
    ok_kmip_client_config cc = {.host = "127.0.0.1", .port = g.port, .cert_file = cert, .key_file = key,
                                .ca_file = ca, .timeout_ms = 20000};
    ok_kmip_client *c = NULL;
    if (ok_kmip_client_new(&cc, &c) != OK_OK)
        fail_msg("KMIP client: %s", ok_err_message());
    return c;
}

static void kmip_uri(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "kmip://127.0.0.1:%u/%s?cert=%s/client.crt&key=%s/client.key&ca=%s/ca.crt", g.port, name,
             g.kdir, g.kdir, g.kdir);
}

/* ---- group ------------------------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    char dir[600];
    g.tmp = test_make_tmpdir();
    if (g.tmp == NULL)
        return -1;
    snprintf(dir, sizeof dir, "%s/local", g.tmp);
    g.local = fixture_new_vault(dir, 0);
    p11_setup();
    kmip_setup();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kmip_stop();
    if (g.mod) {
        g.f->C_CloseSession(g.s);
        ok_p11_module_put(g.mod);
    }
    ok_vault_close(g.local);
    test_remove_tree(g.tmp);
    free(g.tmp);
    return 0;
}

#define NEED(flag, what)                                                   \
    do {                                                                   \
        if (!(flag)) {                                                     \
            fprintf(stderr, "skipped: %s is missing\n", what);            \
            skip();                                                        \
        }                                                                  \
    } while (0)

/* ---- PKCS#11 ------------------------------------------------------------------------------------------------ */

static void test_pkcs11_validation(void **state)
{
    (void)state;
    NEED(g.p11, "softhsm2");
    ok_ds *ds = open_ds(60);
    ok_ds_tenant_info info;
    char uri[1024];

    p11_uri(uri, sizeof uri, "no-such-key");
    assert_int_equal(create_tenant(ds, "p-missing", uri, 0, NULL), OK_ERR_KEY);
    assert_non_null(strstr(ok_err_message(), "KeyNotFound"));
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=" SOFTHSM_MODULE);
    assert_int_equal(create_tenant(ds, "p-nopin", uri, 0, NULL), OK_ERR_KEY);
    assert_non_null(strstr(ok_err_message(), "pin-source"));
    /* A wrong PIN (the test's own session logs out first: a login is per application and token). */
    assert_int_equal(g.f->C_Logout(g.s), CKR_OK);
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=" SOFTHSM_MODULE "&pin-value=9999");
    assert_int_equal(create_tenant(ds, "p-badpin", uri, 0, NULL), OK_ERR_KEY);
    assert_non_null(strstr(ok_err_message(), "Forbidden"));
    assert_null(strstr(ok_err_message(), "9999"));
    assert_int_equal(g.f->C_Login(g.s, CKU_USER, (CK_UTF8CHAR *)PIN, 4), CKR_OK);
    p11_uri(uri, sizeof uri, "kek-aes");
    ok_ds_customer_key ck = {.uri = uri, .token = "some-token"};
    ok_ds_tenant_settings s = {.customer = &ck};
    assert_int_equal(ok_ds_tenant_create(ds, "p-token", &s, NULL), OK_ERR_KEY);
    assert_non_null(strstr(ok_err_message(), "vault key only"));

    /* A pin-value works, and is neither stored in clear nor shown. */
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=" SOFTHSM_MODULE "&pin-value=" PIN);
    if (create_tenant(ds, "p-pinvalue", uri, 0, &info) != OK_OK)
        fail_msg("create with pin-value: %s", ok_err_message());
    assert_string_equal(info.customer_uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=" SOFTHSM_MODULE);
    put_text(ds, "p-pinvalue", "a", "with a pin value");
    ok_ds_close(ds);
    ds = NULL;
    /* The same data directory reopened: the sealed URI (with its PIN) reopens the provider. */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/ds%u", g.tmp, g.ds_count);
    ok_ds_config cfg = {.dir = dir, .vault = g.local, .key_cache_ttl = 60, .probe_max_backoff = 1};
    assert_int_equal(ok_ds_open(&cfg, &ds), OK_OK);
    expect_text(ds, "p-pinvalue", "a", "with a pin value");
    ok_ds_close(ds);
}

static void test_pkcs11_tenants_put_get(void **state)
{
    (void)state;
    NEED(g.p11, "softhsm2");
    ok_ds *ds = open_ds(60);
    ok_ds_tenant_info info;
    char uri[1024];

    p11_uri(uri, sizeof uri, "kek-aes");
    if (create_tenant(ds, "p-aes", uri, 0, &info) != OK_OK)
        fail_msg("create p-aes: %s", ok_err_message());
    assert_int_equal(info.source, OK_DS_KEYS_CUSTOMER);
    assert_int_equal(info.state, OK_DS_ACTIVE);
    assert_string_equal(info.customer_uri, uri);
    assert_string_equal(info.customer_kid, "pkcs11:token=" LABEL ";object=kek-aes");
    p11_uri(uri, sizeof uri, "kek-rsa");
    if (create_tenant(ds, "p-rsa", uri, 1, &info) != OK_OK)
        fail_msg("create p-rsa: %s", ok_err_message());
    assert_int_equal(info.source, OK_DS_KEYS_DOUBLE);
    put_text(ds, "p-aes", "hello", "under an AES key in the token");
    put_text(ds, "p-rsa", "hello", "under an RSA key in the token, and the service key");
    expect_text(ds, "p-aes", "hello", "under an AES key in the token");
    expect_text(ds, "p-rsa", "hello", "under an RSA key in the token, and the service key");

    /* set-key: a service tenant moves under the token's AES key; the data stays readable. */
    assert_int_equal(ok_ds_tenant_create(ds, "p-moved", NULL, NULL), OK_OK);
    put_text(ds, "p-moved", "x", "moved");
    ok_ds_customer_key ck = {.uri = uri};
    ok_ds_tenant_settings s = {.customer = &ck};
    p11_uri(uri, sizeof uri, "kek-aes");
    if (ok_ds_tenant_set_key(ds, "p-moved", &s, &info) != OK_OK)
        fail_msg("set-key: %s", ok_err_message());
    assert_int_equal(info.source, OK_DS_KEYS_CUSTOMER);
    expect_text(ds, "p-moved", "x", "moved");
    ok_ds_close(ds);
}

static void test_pkcs11_token_removed_then_back(void **state)
{
    (void)state;
    NEED(g.p11, "softhsm2");
    ok_ds *ds = open_ds(1);
    ok_ds_tenant_info info;
    char uri[1024], dir[1024], away[1024], buf[256];

    p11_uri(uri, sizeof uri, "kek-aes");
    assert_int_equal(create_tenant(ds, "t-aes", uri, 0, NULL), OK_OK);
    p11_uri(uri, sizeof uri, "kek-rsa");
    assert_int_equal(create_tenant(ds, "t-rsa", uri, 0, NULL), OK_OK);
    put_text(ds, "t-aes", "o", "aes data");
    put_text(ds, "t-rsa", "o", "rsa data");

    softhsm_token_dir(g.tokens, dir, sizeof dir);
    snprintf(away, sizeof away, "%s/away", g.tmp);
    assert_int_equal(rename(dir, away), 0);
    wait_state(ds, "t-aes", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "KeyUnreachable");
    assert_non_null(strstr(info.reason, "token not present"));
    wait_state(ds, "t-rsa", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "KeyUnreachable");
    assert_int_equal(get_text(ds, "t-aes", "o", buf, sizeof buf), OK_ERR_LOCKED);

    assert_int_equal(rename(away, dir), 0);
    wait_state(ds, "t-aes", OK_DS_ACTIVE, &info);
    wait_state(ds, "t-rsa", OK_DS_ACTIVE, &info);
    expect_text(ds, "t-aes", "o", "aes data");
    expect_text(ds, "t-rsa", "o", "rsa data");
    ok_ds_close(ds);
    p11_session(); /* the module re-initialization ended the test's own session */
}

static void test_pkcs11_pin_changed_then_fixed(void **state)
{
    (void)state;
    NEED(g.p11, "softhsm2");
    ok_ds *ds = open_ds(1);
    ok_ds_tenant_info info;
    char uri[1024];

    p11_uri(uri, sizeof uri, "kek-aes");
    assert_int_equal(create_tenant(ds, "t-pin", uri, 0, NULL), OK_OK);
    put_text(ds, "t-pin", "o", "pin data");
    assert_int_equal(g.f->C_SetPIN(g.s, (CK_UTF8CHAR *)PIN, 4, (CK_UTF8CHAR *)"5678", 4), CKR_OK);
    assert_int_equal(g.f->C_Logout(g.s), CKR_OK);
    wait_state(ds, "t-pin", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "Forbidden");
    assert_null(strstr(info.reason, "5678"));
    assert_null(strstr(info.reason, PIN));

    softhsm_write_file(g.pin_file, "5678\n");
    wait_state(ds, "t-pin", OK_DS_ACTIVE, &info);
    expect_text(ds, "t-pin", "o", "pin data");
    /* Back to the first PIN for the other tests. */
    assert_int_equal(g.f->C_SetPIN(g.s, (CK_UTF8CHAR *)"5678", 4, (CK_UTF8CHAR *)PIN, 4), CKR_OK);
    softhsm_write_file(g.pin_file, PIN "\n");
    ok_ds_close(ds);
}

/* ---- KMIP ------------------------------------------------------------------------------------------------- */

static void test_kmip_tenant(void **state)
{
    (void)state;
    NEED(g.kmip, "pykmip-server");
    ok_ds *ds = open_ds(1);
    ok_ds_tenant_info info;
    char uri[2048], uid[OK_KMIP_UID_MAX], buf[256];
    ok_kmip_client *c = kmip_client();

    if (ok_kmip_create_aes256(c, "ds-kek", uid) != OK_OK)
        fail_msg("create: %s", ok_err_message());
    ok_kmip_client_free(c);

    kmip_uri(uri, sizeof uri, "no-such-key");
    assert_int_equal(create_tenant(ds, "k-missing", uri, 0, NULL), OK_ERR_KEY);
    assert_non_null(strstr(ok_err_message(), "KeyNotFound"));
    snprintf(uri, sizeof uri, "kmip://127.0.0.1:%u/ds-kek", g.port);
    assert_int_equal(create_tenant(ds, "k-nocert", uri, 0, NULL), OK_ERR_KEY);
    if (strstr(ok_err_message(), "cert=") == NULL)
        fail_msg("no certificate: %s", ok_err_message());

    kmip_uri(uri, sizeof uri, "ds-kek");
    if (create_tenant(ds, "k-1", uri, 0, &info) != OK_OK)
        fail_msg("create k-1: %s", ok_err_message());
    assert_string_equal(info.customer_uri, uri);
    assert_non_null(strstr(info.customer_kid, uid));
    if (create_tenant(ds, "k-2", uri, 1, NULL) != OK_OK)
        fail_msg("create k-2: %s", ok_err_message());
    put_text(ds, "k-1", "o", "kmip data");
    put_text(ds, "k-2", "o", "kmip double");
    expect_text(ds, "k-1", "o", "kmip data");
    expect_text(ds, "k-2", "o", "kmip double");

    /* The server stops: locked; back on the same port: unlocked by itself. */
    kmip_stop();
    wait_state(ds, "k-1", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "KeyUnreachable");
    assert_int_equal(get_text(ds, "k-1", "o", buf, sizeof buf), OK_ERR_LOCKED);
    assert_true(kmip_start());
    wait_state(ds, "k-1", OK_DS_ACTIVE, &info);
    wait_state(ds, "k-2", OK_DS_ACTIVE, &info);
    expect_text(ds, "k-1", "o", "kmip data");
    expect_text(ds, "k-2", "o", "kmip double");

    /* The key revoked: locked KeyDisabled. */
    c = kmip_client();
    assert_int_equal(ok_kmip_revoke(c, uid, 0), OK_OK);
    ok_kmip_client_free(c);
    wait_state(ds, "k-1", OK_DS_LOCKED, &info);
    assert_string_equal(info.reason_code, "KeyDisabled");
    assert_int_equal(get_text(ds, "k-1", "o", buf, sizeof buf), OK_ERR_LOCKED);
    ok_ds_close(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcs11_validation),
        cmocka_unit_test(test_pkcs11_tenants_put_get),
        cmocka_unit_test(test_pkcs11_token_removed_then_back),
        cmocka_unit_test(test_pkcs11_pin_changed_then_fixed),
        cmocka_unit_test(test_kmip_tenant),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
