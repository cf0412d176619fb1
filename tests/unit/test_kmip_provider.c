/* Tests of the kmip provider (src/providers/kmip_*.c) against a real PyKMIP server: the test makes a CA,
 * a server certificate and client certificates with the openssl CLI in a temporary directory, writes the
 * PyKMIP configuration, starts /usr/bin/pykmip-server on 127.0.0.1 on a free port and stops it at the
 * end. Covers version negotiation, Create (+ Activate) and Locate by name, Get Attributes, wrap/unwrap
 * round trips with GCM (KMIP 2.0 and 1.4) and CBC (1.2), the kmip:// reference and the CLI's
 * `encrypt --to kmip://…`, a client certificate from another CA and an untrusted server refused, a
 * revoked key (FORBIDDEN, naming its state), a destroyed key (NOT_FOUND) and a stopped server (IO,
 * "unreachable"). Every test is skipped when pykmip-server or openssl is missing. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "ownkey/provider.h"
#include "providers/kmip_client.h"
#include "test_support.h"

#define SERVER_BIN "/usr/bin/pykmip-server"

static char *dir;
static unsigned port;
static pid_t server_pid;
static int available;

static char *path_in(const char *name)
{
    static char buf[32][512]; /* a ring: callers keep a few at once */
    static int next;
    char *p = buf[next++ % 32];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && (", dir);
    n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof cmd - (size_t)n, ") >>setup.log 2>&1");
    return system(cmd);
}

/* A certificate NAME.crt/NAME.key signed by CA with the given extensions. */
static int make_cert(const char *ca, const char *name, const char *cn, const char *ext)
{
    return sh("openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr -subj /CN=%s && "
              "printf '%s' > %s.ext && "
              "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial -out %s.crt -days 2 -extfile %s.ext",
              name, name, cn, ext, name, name, ca, ca, name, name);
}

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return 0;
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(-server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static int start_server(void **state)
{
    (void)state;
    if (access(SERVER_BIN, X_OK) != 0 || system("openssl version >/dev/null 2>&1") != 0)
        return 0; /* available stays 0: every test skips */
    dir = test_make_tmpdir();
    port = free_port();
    if (!dir || !port)
        return -1;
    if (sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=kmip-test-ca") ||
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.crt -days 2 -subj /CN=rogue") ||
        make_cert("ca", "server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n") ||
        make_cert("ca", "client", "kmip-client", "extendedKeyUsage=clientAuth\\n") ||
        make_cert("rogue-ca", "rogue", "kmip-client", "extendedKeyUsage=clientAuth\\n") ||
        sh("mkdir policies && printf '[server]\\nhostname=127.0.0.1\\nport=%u\\ncertificate_path=%s/server.crt\\n"
           "key_path=%s/server.key\\nca_path=%s/ca.crt\\nauth_suite=TLS1.2\\npolicy_path=%s/policies\\n"
           "enable_tls_client_auth=True\\nlogging_level=INFO\\ndatabase_path=%s/pykmip.db\\n' > server.conf",
           port, dir, dir, dir, dir, dir)) {
        fprintf(stderr, "cannot make the KMIP test certificates (see %s/setup.log)\n", dir);
        return -1;
    }
    server_pid = fork();
    if (server_pid == 0) {
        setsid();
        if (!freopen(path_in("server.out"), "w", stdout) || !freopen(path_in("server.out"), "a", stderr))
            _exit(126);
        execl("/usr/bin/python3", "python3", SERVER_BIN, "-f", path_in("server.conf"), "-l", path_in("server.log"),
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !port_open(); i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!port_open()) {
        fprintf(stderr, "pykmip-server did not start (see %s/server.out)\n", dir);
        stop_server();
        return -1;
    }
    available = 1;
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    stop_server();
    if (dir && getenv("OWNKEY_KMIP_TEST_KEEP")) {
        fprintf(stderr, "kept %s\n", dir); /* certificates, configuration and server logs */
        free(dir);
    } else if (dir) {
        test_remove_tree(dir);
        free(dir);
    }
    return 0;
}

#define NEED_SERVER()                                                           \
    do {                                                                        \
        if (!available) {                                                       \
            fprintf(stderr, "skipped: " SERVER_BIN " or openssl is missing\n"); \
            skip();                                                             \
        }                                                                       \
    } while (0)

static ok_kmip_client_config client_config(const char *cert, int major, int minor)
{
    ok_kmip_client_config cc = {.host = "127.0.0.1", .port = port, .cert_file = path_in(cert),
                                .key_file = NULL, .ca_file = path_in("ca.crt"), .version_major = major,
                                .version_minor = minor, .timeout_ms = 20000};
    static char key[512];
    snprintf(key, sizeof key, "%s", cc.cert_file);
    memcpy(key + strlen(key) - 3, "key", 3);
    cc.key_file = key;
    return cc;
}

static ok_kmip_config provider_config(const char *name, const char *uid, const char *version)
{
    ok_kmip_config cfg = {.host = "127.0.0.1", .port = port, .key_name = name, .key_uid = uid,
                          .cert_file = path_in("client.crt"), .key_file = path_in("client.key"),
                          .ca_file = path_in("ca.crt"), .version = version, .timeout_ms = 20000};
    return cfg;
}

/* Creates (and activates) an AES-256 key named name; its uid goes to uid. */
static void create_key(const char *name, char uid[OK_KMIP_UID_MAX])
{
    ok_kmip_client_config cc = client_config("client.crt", 0, 0);
    ok_kmip_client *c = NULL;
    assert_int_equal(ok_kmip_client_new(&cc, &c), OK_OK);
    ok_err rc = ok_kmip_create_aes256(c, name, uid);
    if (rc != OK_OK)
        fail_msg("create %s: %s", name, ok_err_message());
    ok_kmip_client_free(c);
}

static void test_negotiate_create_locate(void **state)
{
    (void)state;
    NEED_SERVER();
    ok_kmip_client_config cc = client_config("client.crt", 0, 0);
    ok_kmip_client *c = NULL;
    assert_int_equal(ok_kmip_client_new(&cc, &c), OK_OK);
    assert_int_equal(ok_kmip_client_connect(c), OK_OK);
    int major = 0, minor = 0;
    ok_kmip_client_version(c, &major, &minor);
    assert_int_equal(major, 2); /* PyKMIP 0.10 prefers 2.0 */
    assert_int_equal(minor, 0);
    char uid[OK_KMIP_UID_MAX], found[OK_KMIP_UID_MAX];
    assert_int_equal(ok_kmip_create_aes256(c, "alpha", uid), OK_OK);
    assert_int_equal(ok_kmip_locate_name(c, "alpha", found), OK_OK);
    assert_string_equal(found, uid);
    int64_t st = 0;
    assert_int_equal(ok_kmip_get_state(c, uid, &st), OK_OK);
    assert_int_equal(st, OK_KMIP_ACTIVE);
    assert_int_equal(ok_kmip_locate_name(c, "no-such-key", found), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_kmip_get_state(c, "99999", &st), OK_ERR_NOT_FOUND);
    assert_non_null(strstr(ok_err_message(), "Item Not Found"));
    ok_kmip_client_free(c);

    /* The same in KMIP 1.2 (attributes as Attribute structures). */
    cc = client_config("client.crt", 1, 2);
    assert_int_equal(ok_kmip_client_new(&cc, &c), OK_OK);
    assert_int_equal(ok_kmip_locate_name(c, "alpha", found), OK_OK);
    assert_string_equal(found, uid);
    assert_int_equal(ok_kmip_get_state(c, uid, &st), OK_OK);
    assert_int_equal(st, OK_KMIP_ACTIVE);
    ok_kmip_client_version(c, &major, &minor);
    assert_int_equal(major * 10 + minor, 12);
    assert_int_equal(ok_kmip_create_aes256(c, "alpha-12", uid), OK_OK);
    assert_int_equal(ok_kmip_get_state(c, uid, &st), OK_OK);
    assert_int_equal(st, OK_KMIP_ACTIVE);
    ok_kmip_client_free(c);
}

/* Wraps and unwraps through a provider opened with version; checks the EDK's algorithm. */
static void round_trip(const char *name, const char *version, const char *alg)
{
    ok_kmip_config cfg = provider_config(name, NULL, version);
    ok_provider *p = NULL;
    if (ok_kmip_provider_open(&cfg, &p) != OK_OK)
        fail_msg("open %s (%s): %s", name, version, ok_err_message());
    uint8_t dk[32], back[32];
    for (size_t i = 0; i < sizeof dk; i++)
        dk[i] = (uint8_t)(i * 7 + 1);
    ok_edk edk = {0};
    if (ok_provider_wrap(p, dk, sizeof dk, &edk) != OK_OK)
        fail_msg("wrap (%s): %s", version, ok_err_message());
    assert_string_equal(edk.provider, "kmip");
    assert_string_equal(edk.wrap_alg, alg);
    char want_id[256];
    snprintf(want_id, sizeof want_id, "kmip://127.0.0.1:%u/uid/%s", port, ok_kmip_provider_uid(p));
    assert_string_equal(edk.key_id, want_id);
    assert_true(ok_provider_matches(p, &edk));
    assert_int_equal(ok_provider_unwrap(p, &edk, back, sizeof back), OK_OK);
    assert_memory_equal(back, dk, sizeof dk);
    assert_int_equal(ok_provider_unwrap(p, &edk, back, 16), OK_ERR_AUTH);
    /* A flipped ciphertext bit: GCM refuses it; CBC may decrypt to another length or fail the padding. */
    edk.ct[edk.ct_len - 1] ^= 1;
    ok_err rc = ok_provider_unwrap(p, &edk, back, sizeof back);
    if (strcmp(alg, "KMIP-AES256-GCM") == 0 || rc != OK_OK)
        assert_int_equal(rc, OK_ERR_AUTH);
    edk.ct[edk.ct_len - 1] ^= 1;
    /* Another key id is another recipient. */
    char *id = edk.key_id;
    edk.key_id = "kmip://127.0.0.1:1/uid/1";
    assert_false(ok_provider_matches(p, &edk));
    assert_int_equal(ok_provider_unwrap(p, &edk, back, sizeof back), OK_ERR_NO_RECIPIENT);
    edk.key_id = id;
    /* The EDK's key id is itself a reference (credentials in the query). */
    char ref[2048];
    snprintf(ref, sizeof ref, "%s?cert=%s&key=%s&ca=%s%s%s", edk.key_id, path_in("client.crt"), path_in("client.key"),
             path_in("ca.crt"), version ? "&version=" : "", version ? version : "");
    ok_provider *q = NULL;
    if (ok_provider_from_ref(ref, &q) != OK_OK)
        fail_msg("%s: %s", ref, ok_err_message());
    memset(back, 0, sizeof back);
    assert_int_equal(ok_provider_unwrap(q, &edk, back, sizeof back), OK_OK);
    assert_memory_equal(back, dk, sizeof dk);
    char desc[256];
    assert_int_equal(ok_provider_describe(q, desc, sizeof desc), OK_OK);
    assert_non_null(strstr(desc, "kmip AES-256 uid="));
    ok_provider_free(q);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

static void test_wrap_unwrap(void **state)
{
    (void)state;
    NEED_SERVER();
    char uid[OK_KMIP_UID_MAX];
    create_key("wrapper", uid);
    round_trip("wrapper", NULL, "KMIP-AES256-GCM");  /* 2.0 */
    round_trip("wrapper", "1.4", "KMIP-AES256-GCM");
    round_trip("wrapper", "1.2", "KMIP-AES256-CBC-PAD");
}

static void test_references(void **state)
{
    (void)state;
    NEED_SERVER();
    ok_provider *p = NULL;
    static const char *const BAD[] = {"kmip://127.0.0.1", "kmip:///name", "kmip://h:0/name", "kmip://h:99999/n",
                                      "kmip://h:12x/n", "kmip://[::1/n", "kmip://h/bad name", "kmip://h/uid/",
                                      "kmip://h/a/b"};
    setenv("OWNKEY_KMIP_CERT", path_in("client.crt"), 1);
    setenv("OWNKEY_KMIP_KEY", path_in("client.key"), 1);
    setenv("OWNKEY_KMIP_CA", path_in("ca.crt"), 1);
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        if (ok_provider_from_ref(BAD[i], &p) != OK_ERR_INVALID_ARG)
            fail_msg("%s accepted", BAD[i]);
    char ref[256];
    snprintf(ref, sizeof ref, "kmip://127.0.0.1:%u/missing-key", port);
    assert_int_equal(ok_provider_from_ref(ref, &p), OK_ERR_NOT_FOUND);
    assert_non_null(strstr(ok_err_message(), "missing-key"));
    snprintf(ref, sizeof ref, "kmip://127.0.0.1:%u/wrapper?version=1.1", port);
    assert_int_equal(ok_provider_from_ref(ref, &p), OK_ERR_UNSUPPORTED);
    unsetenv("OWNKEY_KMIP_CA");
    snprintf(ref, sizeof ref, "kmip://127.0.0.1:%u/wrapper", port);
    assert_int_equal(ok_provider_from_ref(ref, &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "OWNKEY_KMIP_CA"));
}

static void test_cli_envelope(void **state)
{
    (void)state;
    NEED_SERVER();
    const char *bin = getenv("OWNKEY_BIN");
    if (!bin || access(bin, X_OK) != 0)
        skip();
    char uid[OK_KMIP_UID_MAX];
    create_key("cli-key", uid);
    assert_int_equal(sh("head -c 100000 /dev/urandom > plain.bin"), 0);
    int rc = sh("export OWNKEY_KMIP_CERT=client.crt OWNKEY_KMIP_KEY=client.key OWNKEY_KMIP_CA=ca.crt; "
                "'%s' encrypt --to kmip://127.0.0.1:%u/cli-key -i plain.bin -o env.okenv && "
                "'%s' decrypt --key kmip://127.0.0.1:%u/cli-key -i env.okenv -o back.bin && cmp plain.bin back.bin && "
                "'%s' decrypt --key kmip://127.0.0.1:%u/uid/%s -i env.okenv > back2.bin && cmp plain.bin back2.bin",
                bin, port, bin, port, bin, port, uid);
    if (rc != 0)
        fail_msg("CLI round trip through kmip:// failed (see %s/setup.log)", dir);
    /* Without credentials: a usage error naming the variables. */
    rc = sh("unset OWNKEY_KMIP_CERT OWNKEY_KMIP_KEY OWNKEY_KMIP_CA; '%s' encrypt --to kmip://127.0.0.1:%u/cli-key "
            "-i plain.bin -o x.okenv 2>nocreds.err; test $? -eq 2 && grep -q OWNKEY_KMIP_CERT nocreds.err",
            bin, port);
    assert_int_equal(rc, 0);
}

static void test_wrong_certificates_refused(void **state)
{
    (void)state;
    NEED_SERVER();
    /* A client certificate from another CA: the server refuses the handshake. */
    ok_kmip_config cfg = provider_config("wrapper", NULL, NULL);
    cfg.cert_file = path_in("rogue.crt");
    cfg.key_file = path_in("rogue.key");
    ok_provider *p = NULL;
    assert_int_equal(ok_kmip_provider_open(&cfg, &p), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "TLS handshake"));
    print_message("wrong client certificate: %s\n", ok_err_message());
    /* A server this client's CA did not sign. */
    cfg = provider_config("wrapper", NULL, NULL);
    cfg.ca_file = path_in("rogue-ca.crt");
    assert_int_equal(ok_kmip_provider_open(&cfg, &p), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "not trusted"));
    /* A key that does not match the certificate. */
    cfg = provider_config("wrapper", NULL, NULL);
    cfg.key_file = path_in("rogue.key");
    assert_int_equal(ok_kmip_provider_open(&cfg, &p), OK_ERR_KEY);
}

static void test_revoked_and_destroyed_keys(void **state)
{
    (void)state;
    NEED_SERVER();
    char uid[OK_KMIP_UID_MAX];
    create_key("doomed", uid);
    ok_kmip_config cfg = provider_config(NULL, uid, NULL);
    ok_provider *p = NULL;
    assert_int_equal(ok_kmip_provider_open(&cfg, &p), OK_OK);
    uint8_t dk[32] = {1, 2, 3}, back[32];
    ok_edk edk = {0}, edk2 = {0};
    assert_int_equal(ok_provider_wrap(p, dk, sizeof dk, &edk), OK_OK);

    ok_kmip_client_config cc = client_config("client.crt", 0, 0);
    ok_kmip_client *c = NULL;
    assert_int_equal(ok_kmip_client_new(&cc, &c), OK_OK);
    assert_int_equal(ok_kmip_revoke(c, uid, 0), OK_OK);
    assert_int_equal(ok_provider_wrap(p, dk, sizeof dk, &edk2), OK_ERR_FORBIDDEN);
    assert_non_null(strstr(ok_err_message(), "Deactivated"));
    print_message("revoked: %s\n", ok_err_message());
    assert_int_equal(ok_provider_unwrap(p, &edk, back, sizeof back), OK_ERR_FORBIDDEN);
    assert_non_null(strstr(ok_err_message(), "Deactivated"));

    assert_int_equal(ok_kmip_destroy(c, uid), OK_OK);
    assert_int_equal(ok_provider_unwrap(p, &edk, back, sizeof back), OK_ERR_NOT_FOUND);
    assert_non_null(strstr(ok_err_message(), "not found"));
    print_message("destroyed: %s\n", ok_err_message());
    ok_provider *q = NULL;
    cfg = provider_config("doomed", NULL, NULL);
    assert_int_equal(ok_kmip_provider_open(&cfg, &q), OK_ERR_NOT_FOUND);
    ok_kmip_client_free(c);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

/* Last: stops the server. */
static void test_server_stopped(void **state)
{
    (void)state;
    NEED_SERVER();
    ok_kmip_config cfg = provider_config("wrapper", NULL, NULL);
    ok_provider *p = NULL;
    assert_int_equal(ok_kmip_provider_open(&cfg, &p), OK_OK);
    stop_server();
    uint8_t dk[32] = {0};
    ok_edk edk = {0};
    assert_int_equal(ok_provider_wrap(p, dk, sizeof dk, &edk), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "unreachable"));
    print_message("server stopped: %s\n", ok_err_message());
    ok_provider_free(p);
    ok_provider *q = NULL;
    assert_int_equal(ok_kmip_provider_open(&cfg, &q), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "unreachable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate_create_locate),
        cmocka_unit_test(test_wrap_unwrap),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_cli_envelope),
        cmocka_unit_test(test_wrong_certificates_refused),
        cmocka_unit_test(test_revoked_and_destroyed_keys),
        cmocka_unit_test(test_server_stopped),
    };
    return cmocka_run_group_tests(tests, start_server, stop_all);
}
