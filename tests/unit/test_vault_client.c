/* Tests of the vault client and the `vault` key provider that need no daemon: key reference parsing and
 * normalization, Azure error bodies mapped to ok_err, escaping and lenient base64url, client
 * configuration checks, a refused connection as a transport error, and the provider's matching, its
 * refusal of malformed envelope fields before any request, and its construction from references.
 * Against the real HTTPS server in-process (src/http, self-signed certificate): streamed transfers up and
 * down of several MB on one kept-alive connection (sized and chunked uploads, a reader or writer failing,
 * a short reader), error bodies of non-2xx answers, the response header lookup, and ca_pem trust (the
 * right CA accepted, a wrong one refused, ca_pem used instead of ca_file). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "http/http.h"
#include "ownkey/provider.h"
#include "ownkey/vault_client.h"
#include "test_support.h"

static void test_key_ref_parses_and_normalizes(void **state)
{
    (void)state;
    ok_vault_key_ref r;
    assert_int_equal(ok_vault_key_ref_parse("https://127.0.0.1:8443/keys/k1", &r), OK_OK);
    assert_string_equal(r.addr, "https://127.0.0.1:8443");
    assert_string_equal(r.name, "k1");
    assert_string_equal(r.version, "");
    assert_string_equal(r.key_url, "https://127.0.0.1:8443/keys/k1");

    assert_int_equal(ok_vault_key_ref_parse("https://127.0.0.1:8443/keys/k1/0123456789abcdef0123456789abcdef", &r), OK_OK);
    assert_string_equal(r.version, "0123456789abcdef0123456789abcdef");
    assert_string_equal(r.key_url, "https://127.0.0.1:8443/keys/k1"); /* versionless */

    /* One spelling per key: scheme and host case, the default port and a trailing slash do not matter. */
    assert_int_equal(ok_vault_key_ref_parse("HTTPS://Vault.Example.COM:443/keys/My-Key/", &r), OK_OK);
    assert_string_equal(r.addr, "https://vault.example.com");
    assert_string_equal(r.name, "My-Key");
    assert_string_equal(r.key_url, "https://vault.example.com/keys/My-Key");

    assert_int_equal(ok_vault_key_ref_parse("https://[::1]:9000/keys/a/v1/", &r), OK_OK);
    assert_string_equal(r.addr, "https://[::1]:9000");
    assert_string_equal(r.version, "v1");

    char name127[128];
    memset(name127, 'a', 127);
    name127[127] = '\0';
    char ref[300];
    snprintf(ref, sizeof ref, "https://h/keys/%s", name127);
    assert_int_equal(ok_vault_key_ref_parse(ref, &r), OK_OK);
    assert_string_equal(r.name, name127);
}

static void test_key_ref_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://h/keys/a",              /* plain http */
        "https://h/keys/",              /* no name */
        "https://h/keys",               /* no name */
        "https://h",                    /* no path */
        "https://h/keys/a_b",           /* '_' is not a name character */
        "https://h/keys/a.b",
        "https://h/secrets/a",          /* not a key */
        "https://user@h/keys/a",        /* userinfo */
        "https://h:0/keys/a",           /* bad ports */
        "https://h:70000/keys/a",
        "https://h:/keys/a",
        "https://h:12x/keys/a",
        "https:///keys/a",              /* no host */
        "https://h/keys/a/v/extra",     /* too many segments */
        "https://h/keys/a?api-version=7.5",
        "https://h/keys/a#frag",
        "https://h/keys/a/..",
        "https://h/keys/a/v%2F",
        "https://[::1/keys/a",          /* unterminated IPv6 */
        "file:/keys/a",
        "h/keys/a",
        "",
    };
    ok_vault_key_ref r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (ok_vault_key_ref_parse(bad[i], &r) != OK_ERR_INVALID_ARG)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(ok_err_message()[0] != '\0');
    }
    char ref[300];
    memset(ref, 0, sizeof ref);
    strcpy(ref, "https://h/keys/");
    memset(ref + strlen(ref), 'a', 128); /* a 128-character name */
    assert_int_equal(ok_vault_key_ref_parse(ref, &r), OK_ERR_INVALID_ARG);
}

static void test_names_and_versions(void **state)
{
    (void)state;
    assert_true(ok_vault_name_valid("k1"));
    assert_true(ok_vault_name_valid("A-b-9"));
    assert_false(ok_vault_name_valid(""));
    assert_false(ok_vault_name_valid("a/b"));
    assert_false(ok_vault_name_valid("a b"));
    assert_false(ok_vault_name_valid(".."));
    assert_true(ok_vault_version_valid("0123456789abcdef0123456789abcdef"));
    assert_false(ok_vault_version_valid("../../x"));
    assert_false(ok_vault_version_valid("v?x=1"));
    char long_version[66];
    memset(long_version, 'a', 65);
    long_version[65] = '\0';
    assert_false(ok_vault_version_valid(long_version));
}

/* status + body -> expected error, message and code. */
typedef struct {
    long status;
    const char *body;
    ok_err err;
    const char *message;
    const char *code;
} error_case;

static void test_error_bodies_map_to_codes(void **state)
{
    (void)state;
    static const error_case cases[] = {
        {200, "{}", OK_OK, NULL, ""},
        {204, "", OK_OK, NULL, ""},
        {404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"no key k1\"}}", OK_ERR_NOT_FOUND,
         "KeyNotFound: no key k1", "KeyNotFound"},
        {403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"identity \\\"app\\\" lacks the unwrapKey permission\"}}",
         OK_ERR_FORBIDDEN, "Forbidden: identity \"app\" lacks the unwrapKey permission", "Forbidden"},
        {409, "{\"error\":{\"code\":\"Conflict\",\"message\":\"k1 is soft-deleted\"}}", OK_ERR_CONFLICT,
         "Conflict: k1 is soft-deleted", "Conflict"},
        {401, "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10032: Invalid token.\"}}", OK_ERR_AUTH,
         "Unauthorized: AKV10032: Invalid token.", "Unauthorized"},
        {503, "{\"error\":{\"code\":\"VaultSealed\",\"message\":\"the vault is sealed\"}}", OK_ERR_SEALED,
         "VaultSealed: the vault is sealed", "VaultSealed"},
        {400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"kty must be RSA\"}}", OK_ERR_INVALID_ARG,
         "BadParameter: kty must be RSA", "BadParameter"},
        {413, "", OK_ERR_LIMIT, "the vault answered HTTP 413", ""},
        {500, "{\"error\":{\"code\":\"InternalError\",\"message\":\"disk\"}}", OK_ERR_IO, "InternalError: disk",
         "InternalError"},
        {502, "<html>bad gateway</html>", OK_ERR_IO, "the vault answered HTTP 502", ""},
        {503, "", OK_ERR_SEALED, "the vault answered HTTP 503 (unavailable or sealed)", ""},
        {404, "{\"error\":{\"code\":\"NotFound\"}}", OK_ERR_NOT_FOUND, "NotFound: HTTP 404", "NotFound"},
        {404, "{\"error\":\"flat\"}", OK_ERR_NOT_FOUND, "the vault answered HTTP 404", ""},
        {400, "[1,2]", OK_ERR_INVALID_ARG, "the vault answered HTTP 400", ""},
        /* A message cannot drive the terminal: control characters become '?'. */
        {400, "{\"error\":{\"code\":\"Bad\\u001b\",\"message\":\"a\\u001b[2Jb\\nc\"}}", OK_ERR_INVALID_ARG,
         "Bad?: a?[2Jb?c", "Bad?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const error_case *c = &cases[i];
        char code[64] = "unchanged";
        ok_err_clear();
        ok_err err = ok_vault_error_from_response(c->status, c->body, strlen(c->body), code, sizeof code);
        if (err != c->err)
            fail_msg("case %zu (HTTP %ld): got error %d, want %d", i, c->status, err, c->err);
        if (c->message)
            assert_string_equal(ok_err_message(), c->message);
        assert_string_equal(code, c->code);
    }
    /* A NULL code buffer is fine. */
    assert_int_equal(ok_vault_error_from_response(404, NULL, 0, NULL, 0), OK_ERR_NOT_FOUND);
}

static void test_escape_and_base64(void **state)
{
    (void)state;
    char *e = ok_vault_escape("a b/*?&=%~._-Z9");
    assert_non_null(e);
    assert_string_equal(e, "a%20b%2F%2A%3F%26%3D%25~._-Z9");
    free(e);
    e = ok_vault_escape("");
    assert_string_equal(e, "");
    free(e);

    static const struct {
        const char *text;
        size_t len;
        uint8_t bytes[3];
    } ok_cases[] = {
        {"AQID", 3, {1, 2, 3}}, {"AQI", 2, {1, 2}}, {"AQI=", 2, {1, 2}}, {"-_8", 2, {0xfb, 0xff}}, {"+/8=", 2, {0xfb, 0xff}},
        {"", 0, {0}},
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof *ok_cases; i++) {
        uint8_t *out = NULL;
        size_t len = 99;
        assert_int_equal(ok_vault_b64_decode(ok_cases[i].text, &out, &len), OK_OK);
        assert_int_equal(len, ok_cases[i].len);
        assert_memory_equal(out, ok_cases[i].bytes, len);
        free(out);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(ok_vault_b64_decode("A", &out, &len), OK_ERR_FORMAT);
    assert_int_equal(ok_vault_b64_decode("AQ!D", &out, &len), OK_ERR_FORMAT);
}

static void test_client_configuration(void **state)
{
    (void)state;
    ok_vault_client *c = NULL;
    ok_vault_client_config cfg = {.addr = "http://127.0.0.1:8443"};
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "plain http"));
    assert_null(c);
    cfg.addr = NULL;
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    cfg.addr = "https://127.0.0.1:8443/keys";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    cfg.addr = "https://127.0.0.1:8443";
    cfg.token = "has a space";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    assert_null(strstr(ok_err_message(), "has a space")); /* the token is never echoed */

    cfg.addr = "https://LOCALHOST:8443/";
    cfg.token = "okt_secret";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    assert_string_equal(ok_vault_client_addr(c), "https://localhost:8443");
    ok_vault_response resp;
    assert_int_equal(ok_vault_client_request(c, "GET", "keys", NULL, &resp), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_client_request(c, "GET", "/keys/a b", NULL, &resp), OK_ERR_INVALID_ARG);
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
    ok_vault_client_free(NULL);
}

/* Nothing listens on port 1: the request fails in transport, which is an I/O error without a status. */
static void test_refused_connection_is_io_error(void **state)
{
    (void)state;
    ok_vault_client *c = NULL;
    ok_vault_client_config cfg = {.addr = "https://127.0.0.1:1", .token = "okt_x", .connect_timeout_ms = 2000};
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    ok_vault_response resp;
    assert_int_equal(ok_vault_client_request(c, "GET", "/keys/k1", NULL, &resp), OK_ERR_IO);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    assert_non_null(strstr(ok_err_message(), "https://127.0.0.1:1"));
    assert_null(strstr(ok_err_message(), "okt_x"));
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
}

static void set_edk(ok_edk *edk, const char *provider, const char *key_id, const char *version, const char *alg)
{
    static const uint8_t ct[40] = {1};
    assert_int_equal(ok_edk_set(edk, provider, key_id, version, alg, ct, sizeof ct), OK_OK);
}

static void test_provider_matches_and_refuses_bad_edks(void **state)
{
    (void)state;
    ok_provider *p = NULL;
    assert_int_equal(ok_vault_provider_open("https://127.0.0.1:1/keys/k1", NULL, NULL, &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "OWNKEY_TOKEN"));
    assert_int_equal(ok_vault_provider_open("https://127.0.0.1:1/keys/k1/abc", "okt_x", NULL, &p), OK_OK);

    char desc[200];
    assert_int_equal(ok_provider_describe(p, desc, sizeof desc), OK_OK);
    assert_string_equal(desc, "vault https://127.0.0.1:1/keys/k1 (version abc)");

    ok_edk edk = {0};
    /* The key id is the versionless URL, whatever version wrapped. */
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "0123456789abcdef0123456789abcdef", "A256KW");
    assert_true(ok_provider_matches(p, &edk));
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k2", "v", "A256KW");
    assert_false(ok_provider_matches(p, &edk));
    uint8_t key[32];
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_NO_RECIPIENT);
    set_edk(&edk, "vault", "https://127.0.0.1:2/keys/k1", "v", "A256KW");
    assert_false(ok_provider_matches(p, &edk));
    set_edk(&edk, "file", "https://127.0.0.1:1/keys/k1", "", "A256KW");
    assert_false(ok_provider_matches(p, &edk));

    /* Header fields are unauthenticated until the data key opens the envelope: a version or algorithm
     * that could change the request is refused before any request is made (port 1 would fail as I/O). */
    static const char *const bad_versions[] = {"../../ownkey/v1/seal", "", "v?x", "a/b"};
    for (size_t i = 0; i < sizeof bad_versions / sizeof *bad_versions; i++) {
        set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", bad_versions[i], "A256KW");
        assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_FORMAT);
    }
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "v1", "A256KW\",\"x\":\"");
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_UNSUPPORTED);
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "v1", "RSA-OAEP-256");
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_IO); /* well-formed: it tries */
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

static void test_provider_from_ref(void **state)
{
    (void)state;
    ok_provider *p = NULL;
    unsetenv("OWNKEY_TOKEN");
    assert_int_equal(ok_provider_from_ref("https://127.0.0.1:1/keys/k1", &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "OWNKEY_TOKEN"));
    setenv("OWNKEY_TOKEN", "okt_test", 1);
    assert_int_equal(ok_provider_from_ref("http://127.0.0.1:1/keys/k1", &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "plain http"));
    assert_int_equal(ok_provider_from_ref("https://127.0.0.1:1/keys/bad_name", &p), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_provider_from_ref("HTTPS://LOCALHOST:443/keys/k1", &p), OK_OK);
    ok_edk edk = {0};
    set_edk(&edk, "vault", "https://localhost/keys/k1", "v1", "A256KW");
    assert_true(ok_provider_matches(p, &edk));
    ok_edk_clear(&edk);
    ok_provider_free(p);
    assert_int_equal(ok_provider_from_ref("vault:k1", &p), OK_ERR_INVALID_ARG);
    unsetenv("OWNKEY_TOKEN");
}

/* ---- Against a real server ------------------------------------------------------------------------- */

/* What the server saw of the last request, and the client port of every request (one connection?). */
static struct {
    char dir[64], cert[128], key[128], other_cert[128], other_key[128];
    ok_http_server *server;
    char addr[64];
    pthread_mutex_t lock;
    char content_length[32], transfer_encoding[32], content_type[64], authorization[64], meta[64];
    char method[16];
    char ports[64][8];
    int nports;
    atomic_int releases;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint8_t pattern_byte(uint64_t pos)
{
    return (uint8_t)((pos * 2654435761u) >> 13 ^ pos);
}

static void copy_header(const ok_http_request *req, const char *name, char *out, size_t len)
{
    const char *v = req->header(req, name);
    snprintf(out, len, "%s", v ? v : "");
}

static void note_request(const ok_http_request *req)
{
    pthread_mutex_lock(&srv.lock);
    copy_header(req, "Content-Length", srv.content_length, sizeof srv.content_length);
    copy_header(req, "Transfer-Encoding", srv.transfer_encoding, sizeof srv.transfer_encoding);
    copy_header(req, "Content-Type", srv.content_type, sizeof srv.content_type);
    copy_header(req, "Authorization", srv.authorization, sizeof srv.authorization);
    copy_header(req, "x-ownkey-meta-color", srv.meta, sizeof srv.meta);
    snprintf(srv.method, sizeof srv.method, "%s", req->method);
    const char *port = strrchr(req->client, ':');
    if (srv.nports < 64)
        snprintf(srv.ports[srv.nports++], sizeof srv.ports[0], "%s", port ? port + 1 : "");
    pthread_mutex_unlock(&srv.lock);
}

static void error_reply(ok_http_response *resp, int status, const char *code, const char *message)
{
    char text[256];
    snprintf(text, sizeof text, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
    resp->status = status;
    ok_buf_put(&resp->body, text, strlen(text));
}

typedef struct {
    uint64_t size;
} object;

static int64_t object_read(void *cls, uint64_t pos, uint8_t *buf, size_t max)
{
    object *o = cls;
    if (pos >= o->size)
        return 0;
    uint64_t n = o->size - pos < max ? o->size - pos : max;
    for (uint64_t i = 0; i < n; i++)
        buf[i] = pattern_byte(pos + i);
    return (int64_t)n;
}

/* GET /data/obj/N: N pattern bytes; GET /data/missing: 404; GET /hello: a small JSON answer. */
static void plain_handler(void *ctx, const ok_http_request *req, ok_http_response *resp)
{
    (void)ctx;
    note_request(req);
    ok_http_response_header(resp, "X-Hello", "  spaced value  ");
    ok_http_response_header(resp, "x-object-name", "obj");
    if (!strncmp(req->path, "/data/obj/", 10)) {
        object *o = malloc(sizeof *o);
        if (!o)
            return error_reply(resp, 500, "InternalError", "oom");
        o->size = strtoull(req->path + 10, NULL, 10);
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->body_read = object_read;
        resp->body_free = free;
        resp->body_cls = o;
        resp->body_size = o->size;
    } else if (!strcmp(req->path, "/hello")) {
        resp->status = 200;
        ok_buf_put(&resp->body, "{\"ok\":true}", 11);
    } else {
        error_reply(resp, 404, "ObjectNotFound", "no such object");
    }
}

typedef struct {
    EVP_MD_CTX *md;
    uint64_t bytes;
} put_state;

/* PUT /data/put: the SHA-256 of the body; PUT /data/refuse: 403 before the body. */
static int put_begin(void *ctx, const ok_http_request *req, ok_http_response *resp, void **state)
{
    (void)ctx;
    if (strncmp(req->path, "/data/", 6) != 0 || !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
        return OK_HTTP_STREAM_DECLINE;
    note_request(req);
    if (!strcmp(req->path, "/data/refuse")) {
        error_reply(resp, 403, "Forbidden", "no dataWrite on this tenant");
        return OK_HTTP_STREAM_ANSWER;
    }
    put_state *st = calloc(1, sizeof *st);
    if (!st || !(st->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(st->md, EVP_sha256(), NULL) != 1) {
        free(st);
        error_reply(resp, 500, "InternalError", "oom");
        return OK_HTTP_STREAM_ANSWER;
    }
    *state = st;
    return OK_HTTP_STREAM_ACCEPT;
}

static ok_err put_body(void *ctx, void *state, const uint8_t *data, size_t len)
{
    (void)ctx;
    put_state *st = state;
    EVP_DigestUpdate(st->md, data, len);
    st->bytes += len;
    return OK_OK;
}

static void put_finish(void *ctx, void *state, ok_err failed, const ok_http_request *req, ok_http_response *resp)
{
    (void)ctx;
    (void)failed;
    (void)req;
    put_state *st = state;
    uint8_t md[32];
    unsigned md_len = 0;
    EVP_DigestFinal_ex(st->md, md, &md_len);
    char text[160];
    int n = snprintf(text, sizeof text, "{\"bytes\":%llu,\"sha256\":\"", (unsigned long long)st->bytes);
    for (int i = 0; i < 32; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", md[i]);
    snprintf(text + n, sizeof text - (size_t)n, "\"}");
    resp->status = 201;
    ok_buf_put(&resp->body, text, strlen(text));
    ok_http_response_header(resp, "ETag", "\"v1\"");
}

static void put_release(void *ctx, void *state)
{
    (void)ctx;
    put_state *st = state;
    EVP_MD_CTX_free(st->md);
    free(st);
    atomic_fetch_add(&srv.releases, 1);
}

static const ok_http_stream_handler put_handler = {put_begin, put_body, put_finish, put_release};

static int server_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(srv.dir, sizeof srv.dir, "/tmp/ownkey-vc-XXXXXX");
    if (!mkdtemp(srv.dir))
        return -1;
    snprintf(srv.cert, sizeof srv.cert, "%s/cert.pem", srv.dir);
    snprintf(srv.key, sizeof srv.key, "%s/key.pem", srv.dir);
    snprintf(srv.other_cert, sizeof srv.other_cert, "%s/other-cert.pem", srv.dir);
    snprintf(srv.other_key, sizeof srv.other_key, "%s/other-key.pem", srv.dir);
    if (ok_http_ensure_self_signed(srv.cert, srv.key) != OK_OK ||
        ok_http_ensure_self_signed(srv.other_cert, srv.other_key) != OK_OK)
        return -1;
    ok_http_config cfg = {.listen = "127.0.0.1:0", .cert_pem_path = srv.cert, .key_pem_path = srv.key,
                          .threads = 2, .handler = plain_handler, .stream = &put_handler};
    if (ok_http_start(&cfg, &srv.server) != OK_OK)
        return -1;
    snprintf(srv.addr, sizeof srv.addr, "https://127.0.0.1:%u", ok_http_port(srv.server));
    return 0;
}

static int server_teardown(void **state)
{
    (void)state;
    ok_http_stop(srv.server);
    test_remove_tree(srv.dir);
    return 0;
}

static ok_vault_client *connect_client(const char *ca_file, const char *ca_pem)
{
    ok_vault_client_config cfg = {.addr = srv.addr, .token = "okt_transfer", .ca_file = ca_file, .ca_pem = ca_pem,
                                  .connect_timeout_ms = 5000, .timeout_ms = 20000};
    ok_vault_client *c = NULL;
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    return c;
}

typedef struct {
    uint64_t size, pos, fail_at, short_at;
} reader;

static ok_err read_pattern(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    reader *r = ctx;
    if (r->pos >= r->fail_at)
        return ok_fail(OK_ERR_IO, "the source file went away");
    uint64_t end = r->size < r->short_at ? r->size : r->short_at;
    uint64_t n = end - r->pos < len ? end - r->pos : len;
    for (uint64_t i = 0; i < n; i++)
        buf[i] = pattern_byte(r->pos + i);
    r->pos += n;
    *got = (size_t)n;
    return OK_OK;
}

typedef struct {
    uint64_t got, fail_at;
    bool mismatch;
    int calls;
} writer;

static ok_err write_check(void *ctx, const uint8_t *buf, size_t len)
{
    writer *w = ctx;
    w->calls++;
    if (w->got + len > w->fail_at)
        return ok_fail(OK_ERR_IO, "the disk is full");
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_byte(w->got + i))
            w->mismatch = true;
    w->got += len;
    return OK_OK;
}

/* A writer keeping a small 2xx body (an upload's answer). */
static ok_err write_text(void *ctx, const uint8_t *buf, size_t len)
{
    ok_buf *b = ctx;
    return ok_buf_put(b, buf, len);
}

static void assert_text(ok_buf *b, const char *expect)
{
    assert_int_equal(b->len, strlen(expect));
    assert_memory_equal(b->data, expect, b->len);
    ok_buf_reset(b);
}

static void expected_sha(uint64_t size, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    uint8_t block[4096];
    for (uint64_t pos = 0; pos < size;) {
        size_t n = size - pos < sizeof block ? (size_t)(size - pos) : sizeof block;
        for (size_t i = 0; i < n; i++)
            block[i] = pattern_byte(pos + i);
        EVP_DigestUpdate(md, block, n);
        pos += n;
    }
    uint8_t out[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
}

static void test_transfer_up_and_down(void **state)
{
    (void)state;
    const uint64_t size = 6 * 1024 * 1024 + 333;
    char sha[65], expect_body[160];
    expected_sha(size, sha);
    snprintf(expect_body, sizeof expect_body, "{\"bytes\":%llu,\"sha256\":\"%s\"}", (unsigned long long)size, sha);
    ok_vault_client *c = connect_client(srv.cert, NULL);
    srv.nports = 0;
    ok_vault_response resp;
    char value[64];

    /* Sized upload: Content-Length, the caller's headers, the token. */
    reader r = {.size = size, .fail_at = UINT64_MAX, .short_at = UINT64_MAX};
    ok_vault_upload up = {read_pattern, &r, size};
    const char *headers[] = {"Content-Type: text/plain", "x-ownkey-meta-color: blue"};
    ok_buf answer;
    ok_buf_init(&answer, 4096);
    ok_vault_download keep = {write_text, &answer};
    assert_int_equal(ok_vault_client_transfer(c, "PUT", "/data/put", headers, 2, &up, &keep, &resp), OK_OK);
    assert_int_equal(resp.status, 201);
    assert_text(&answer, expect_body);
    assert_int_equal(resp.body_len, 0); /* a 2xx body is the writer's */
    assert_string_equal(ok_vault_response_header(&resp, "etag", value, sizeof value), "\"v1\"");
    assert_string_equal(srv.content_length, "6291789");
    assert_string_equal(srv.transfer_encoding, "");
    assert_string_equal(srv.content_type, "text/plain");
    assert_string_equal(srv.meta, "blue");
    assert_string_equal(srv.authorization, "Bearer okt_transfer");
    ok_vault_response_clear(&resp);

    /* Unknown size: chunked, the default content type. */
    r = (reader){.size = size, .fail_at = UINT64_MAX, .short_at = UINT64_MAX};
    up.size = UINT64_MAX;
    assert_int_equal(ok_vault_client_transfer(c, "PUT", "/data/put", NULL, 0, &up, &keep, &resp), OK_OK);
    assert_int_equal(resp.status, 201);
    assert_text(&answer, expect_body);
    ok_buf_free(&answer);
    assert_string_equal(srv.transfer_encoding, "chunked");
    assert_string_equal(srv.content_length, "");
    assert_string_equal(srv.content_type, "application/octet-stream");
    ok_vault_response_clear(&resp);

    /* Download: every byte to the writer, nothing kept in the response. */
    writer w = {.fail_at = UINT64_MAX};
    ok_vault_download down = {write_check, &w};
    char path[64];
    snprintf(path, sizeof path, "/data/obj/%llu", (unsigned long long)size);
    assert_int_equal(ok_vault_client_transfer(c, "GET", path, NULL, 0, NULL, &down, &resp), OK_OK);
    assert_int_equal(resp.status, 200);
    assert_int_equal(w.got, size);
    assert_false(w.mismatch);
    assert_true(w.calls > 1);
    assert_int_equal(resp.body_len, 0);
    assert_string_equal(ok_vault_response_header(&resp, "Content-Length", value, sizeof value), "6291789");
    assert_string_equal(ok_vault_response_header(&resp, "Content-Type", value, sizeof value),
                        "application/octet-stream");
    ok_vault_response_clear(&resp);

    /* HEAD: headers only; a GET without a writer drops the body. */
    w = (writer){.fail_at = UINT64_MAX};
    assert_int_equal(ok_vault_client_transfer(c, "HEAD", path, NULL, 0, NULL, &down, &resp), OK_OK);
    assert_int_equal(w.calls, 0);
    assert_string_equal(ok_vault_response_header(&resp, "content-length", value, sizeof value), "6291789");
    ok_vault_response_clear(&resp);
    assert_int_equal(ok_vault_client_transfer(c, "GET", path, NULL, 0, NULL, NULL, &resp), OK_OK);
    ok_vault_response_clear(&resp);

    /* An ordinary request on the same handle still works, and every request used one connection. */
    assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_OK);
    assert_string_equal(resp.body, "{\"ok\":true}");
    assert_string_equal(srv.method, "GET");
    ok_vault_response_clear(&resp);
    assert_int_equal(srv.nports, 6);
    for (int i = 1; i < srv.nports; i++)
        assert_string_equal(srv.ports[i], srv.ports[0]);
    ok_vault_client_free(c);
}

static void test_transfer_errors(void **state)
{
    (void)state;
    ok_vault_client *c = connect_client(srv.cert, NULL);
    ok_vault_response resp;
    const uint64_t size = 3 * 1024 * 1024;

    /* A non-2xx body is kept for the error, never given to the writer. */
    writer w = {.fail_at = UINT64_MAX};
    ok_vault_download down = {write_check, &w};
    assert_int_equal(ok_vault_client_transfer(c, "GET", "/data/missing", NULL, 0, NULL, &down, &resp),
                     OK_ERR_NOT_FOUND);
    assert_int_equal(resp.status, 404);
    assert_int_equal(w.calls, 0);
    assert_string_equal(resp.error_code, "ObjectNotFound");
    assert_non_null(strstr(resp.body, "no such object"));
    assert_string_equal(ok_err_message(), "ObjectNotFound: no such object");
    ok_vault_response_clear(&resp);

    /* Refused before the body (the client waits for 100 Continue): the answer, not a transport error. */
    for (int sized = 0; sized < 2; sized++) {
        reader r = {.size = size, .fail_at = UINT64_MAX, .short_at = UINT64_MAX};
        ok_vault_upload up = {read_pattern, &r, sized ? size : UINT64_MAX};
        assert_int_equal(ok_vault_client_transfer(c, "PUT", "/data/refuse", NULL, 0, &up, NULL, &resp),
                         OK_ERR_FORBIDDEN);
        assert_int_equal(resp.status, 403);
        assert_string_equal(resp.error_code, "Forbidden");
        assert_true(r.pos < size);
        ok_vault_response_clear(&resp);
    }

    /* The writer fails mid-way: its error and message. */
    w = (writer){.fail_at = size / 2};
    char path[64];
    snprintf(path, sizeof path, "/data/obj/%llu", (unsigned long long)size);
    assert_int_equal(ok_vault_client_transfer(c, "GET", path, NULL, 0, NULL, &down, &resp), OK_ERR_IO);
    assert_string_equal(ok_err_message(), "the disk is full");
    assert_true(w.got <= size / 2);
    ok_vault_response_clear(&resp);

    /* The reader fails mid-way, or ends short of the size it announced. */
    int releases = atomic_load(&srv.releases);
    reader r = {.size = size, .fail_at = size / 2, .short_at = UINT64_MAX};
    ok_vault_upload up = {read_pattern, &r, size};
    assert_int_equal(ok_vault_client_transfer(c, "PUT", "/data/put", NULL, 0, &up, NULL, &resp), OK_ERR_IO);
    assert_string_equal(ok_err_message(), "the source file went away");
    ok_vault_response_clear(&resp);
    r = (reader){.size = size, .fail_at = UINT64_MAX, .short_at = 1000};
    assert_int_equal(ok_vault_client_transfer(c, "PUT", "/data/put", NULL, 0, &up, NULL, &resp), OK_ERR_TRUNCATED);
    assert_non_null(strstr(ok_err_message(), "after 1000 of 3145728 bytes"));
    ok_vault_response_clear(&resp);
    /* The server let go of both half-sent uploads. */
    for (int i = 0; i < 400 && atomic_load(&srv.releases) < releases + 2; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&srv.releases), releases + 2);

    /* Refused before any request. */
    const char *bad[] = {"No-Colon", "X-A: b\r\nX-Injected: 1", "Bad Name: v", "Authorization: Bearer other",
                         "Content-Length: 5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(ok_vault_client_transfer(c, "GET", "/hello", &bad[i], 1, NULL, NULL, &resp),
                         OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_client_transfer(c, "get x", "/hello", NULL, 0, NULL, NULL, &resp), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_client_transfer(c, "GET", "hello", NULL, 0, NULL, NULL, &resp), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_client_transfer(c, "GET", "/hello", NULL, 0, &up, NULL, &resp), OK_ERR_INVALID_ARG);

    /* The handle is fine afterwards. */
    assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_OK);
    assert_int_equal(resp.status, 200);
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
}

static void test_response_headers(void **state)
{
    (void)state;
    ok_vault_client *c = connect_client(srv.cert, NULL);
    ok_vault_response resp;
    assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_OK);
    assert_non_null(resp.headers);
    assert_int_equal(strlen(resp.headers), resp.headers_len);
    assert_null(strstr(resp.headers, "HTTP/1.1")); /* header lines only */
    char value[64];
    assert_string_equal(ok_vault_response_header(&resp, "x-hello", value, sizeof value), "spaced value");
    assert_string_equal(ok_vault_response_header(&resp, "X-HELLO", value, sizeof value), "spaced value");
    assert_string_equal(ok_vault_response_header(&resp, "X-Object-Name", value, sizeof value), "obj");
    assert_int_equal(strlen(ok_vault_response_header(&resp, "x-ms-request-id", value, sizeof value)), 36);
    assert_null(ok_vault_response_header(&resp, "X-Hell", value, sizeof value));
    assert_null(ok_vault_response_header(&resp, "X-Absent", value, sizeof value));
    char small[12]; /* "spaced value" needs 13 */
    assert_null(ok_vault_response_header(&resp, "X-Hello", small, sizeof small));
    ok_vault_response_clear(&resp);
    assert_null(resp.headers);
    assert_null(ok_vault_response_header(&resp, "X-Hello", value, sizeof value));

    /* An error answer has its headers too. */
    assert_int_equal(ok_vault_client_request(c, "GET", "/nothing", NULL, &resp), OK_ERR_NOT_FOUND);
    assert_string_equal(ok_vault_response_header(&resp, "x-object-name", value, sizeof value), "obj");
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);

    /* No answer, no headers. */
    ok_vault_client_config cfg = {.addr = "https://127.0.0.1:1", .connect_timeout_ms = 2000};
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_ERR_IO);
    assert_null(resp.headers);
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
}

static void test_ca_pem(void **state)
{
    (void)state;
    size_t len = 0, other_len = 0;
    char *pem = test_read_file(srv.cert, &len);
    char *other = test_read_file(srv.other_cert, &other_len);
    assert_non_null(pem);
    assert_non_null(other);
    ok_vault_response resp;

    ok_vault_client *c = connect_client(NULL, pem);
    assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_OK);
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);

    /* Another CA, the system's CAs, and a wrong ca_pem beside the right ca_file (ca_pem is used instead). */
    const char *files[] = {NULL, NULL, srv.cert};
    const char *pems[] = {other, NULL, other};
    for (int i = 0; i < 3; i++) {
        c = connect_client(files[i], pems[i]);
        assert_int_equal(ok_vault_client_request(c, "GET", "/hello", NULL, &resp), OK_ERR_IO);
        assert_int_equal(resp.status, 0);
        assert_non_null(strstr(ok_err_message(), "TLS with https://127.0.0.1:"));
        assert_null(strstr(ok_err_message(), "okt_transfer"));
        ok_vault_response_clear(&resp);
        ok_vault_client_free(c);
    }
    free(pem);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_ref_parses_and_normalizes),
        cmocka_unit_test(test_key_ref_refuses_malformed),
        cmocka_unit_test(test_names_and_versions),
        cmocka_unit_test(test_error_bodies_map_to_codes),
        cmocka_unit_test(test_escape_and_base64),
        cmocka_unit_test(test_client_configuration),
        cmocka_unit_test(test_refused_connection_is_io_error),
        cmocka_unit_test(test_provider_matches_and_refuses_bad_edks),
        cmocka_unit_test(test_provider_from_ref),
        cmocka_unit_test(test_transfer_up_and_down),
        cmocka_unit_test(test_transfer_errors),
        cmocka_unit_test(test_response_headers),
        cmocka_unit_test(test_ca_pem),
    };
    return cmocka_run_group_tests(tests, server_setup, server_teardown);
}
