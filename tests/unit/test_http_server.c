/* Tests of the HTTPS server (src/http/server.c, metrics.c, response.c, tls_cert.c) over real TLS with
 * libcurl: a self-signed certificate made by ok_http_ensure_self_signed and trusted as the CA, a server
 * on 127.0.0.1 port 0, and an echo handler that reports what it was given. Proves: TLS 1.1 refused and
 * 1.2/1.3 accepted; the certificate verifies for localhost and 127.0.0.1; "api%2Dversion" is seen as
 * "api-version"; "/keys/a//sign" and "/keys/a/" reach the handler unchanged; a body-less POST with
 * Content-Length: 0; bodies up to 1 MiB accepted and past it 413 without the handler being called
 * (announced, chunked, with and without Expect: 100-continue); keep-alive reuse; request ids; /healthz;
 * /metrics; concurrent clients; a stop that completes the request in flight; start failures. Streamed
 * bodies (server_stream.c): uploads past 1 MiB hashed by a stream handler, a refusal before the body, a
 * body() failing mid-way, a client hanging up mid-body, a stop draining an upload in flight; sized,
 * chunked and HEAD on-demand responses, a reader failing mid-way, and release()/body_free() counted to
 * run exactly once each time. */
#include <fcntl.h>
#include <ftw.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "http/http.h"
#include "test_support.h"

/* ---- The server under test -------------------------------------------------------------------------- */

static struct {
    char dir[64];
    char cert[128];
    char key[128];
    ok_http_server *server;
    unsigned port;
    atomic_int handler_calls;
    atomic_int slow_entered;  /* the /slow handler has started */
    atomic_int slow_release;  /* let the /slow handler return */
    /* Streamed bodies */
    atomic_int begins, body_calls, finishes, releases;
    atomic_int finish_failed;  /* the `failed` of the last finish() */
    atomic_int body_reads, body_frees;
    atomic_int callback_errors; /* a check failed on a server thread (where cmocka cannot assert) */
} g;

#define CHECK(cond)                                    \
    do {                                               \
        if (!(cond))                                   \
            atomic_fetch_add(&g.callback_errors, 1);   \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- On-demand response bodies: /download/N (N bytes), /download-chunked/N (size unknown),
 * /download-fail/N and /download-chunked-fail/N (the read fails half-way), /download-nostatus/N. */

static uint8_t pattern_byte(uint64_t pos)
{
    return (uint8_t)((pos * 2654435761u) >> 13 ^ pos);
}

typedef struct {
    uint64_t size, fail_at;
} download;

static int64_t download_read(void *cls, uint64_t pos, uint8_t *buf, size_t max)
{
    download *d = cls;
    atomic_fetch_add(&g.body_reads, 1);
    if (pos >= d->fail_at)
        return -1;
    if (pos >= d->size)
        return 0;
    uint64_t n = d->size - pos < max ? d->size - pos : max;
    if (n > d->fail_at - pos)
        n = d->fail_at - pos;
    for (uint64_t i = 0; i < n; i++)
        buf[i] = pattern_byte(pos + i);
    return (int64_t)n;
}

static void download_free(void *cls)
{
    atomic_fetch_add(&g.body_frees, 1);
    free(cls);
}

static bool download_handler(const ok_http_request *req, ok_http_response *resp)
{
    static const char *const kinds[] = {"/download/", "/download-chunked/", "/download-fail/",
                                        "/download-chunked-fail/", "/download-nostatus/"};
    size_t kind = 0, n = 0;
    for (; kind < sizeof kinds / sizeof *kinds; kind++)
        if (strncmp(req->path, kinds[kind], n = strlen(kinds[kind])) == 0)
            break;
    if (kind == sizeof kinds / sizeof *kinds)
        return false;
    download *d = malloc(sizeof *d);
    if (!d) {
        resp->status = 500;
        return true;
    }
    d->size = strtoull(req->path + n, NULL, 10);
    d->fail_at = kind == 2 || kind == 3 ? d->size / 2 : UINT64_MAX;
    resp->status = kind == 4 ? 0 : 200;
    resp->operation = "download";
    resp->content_type = "application/octet-stream";
    resp->body_read = download_read;
    resp->body_free = download_free;
    resp->body_cls = d;
    resp->body_size = kind == 1 || kind == 3 ? UINT64_MAX : d->size;
    return true;
}

/* Echoes the request as JSON; "/slow" waits until released (at most 5 s) before answering. */
static void echo_handler(void *ctx, const ok_http_request *req, ok_http_response *resp)
{
    (void)ctx;
    atomic_fetch_add(&g.handler_calls, 1);
    if (download_handler(req, resp))
        return;
    if (strcmp(req->path, "/slow") == 0) {
        atomic_store(&g.slow_entered, 1);
        for (int i = 0; i < 500 && !atomic_load(&g.slow_release); i++)
            sleep_ms(10);
        resp->operation = "slow";
    } else {
        resp->operation = "echo";
    }
    const char *api = req->query(req, "api-version");
    const char *hdr = req->header(req, "X-Test");
    json_t *doc = json_pack("{s:s, s:s, s:s?, s:I, s:s?, s:s, s:s, s:s, s:s?, s:b}", "method", req->method, "path",
                            req->path, "api_version", api, "body_len", (json_int_t)req->body_len, "x_test", hdr,
                            "request_id", req->request_id, "base_url", req->base_url, "client", req->client,
                            "flag", req->query(req, "flag"), "body_null", req->body == NULL);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    resp->status = 200;
    ok_buf_put(&resp->body, text, strlen(text));
    free(text);
    ok_http_response_header(resp, "X-Echo", "yes");
}

static void metrics_extra(void *ctx, ok_buf *out)
{
    (void)ctx;
    static const char LINE[] = "# TYPE test_extra gauge\ntest_extra 42\n";
    ok_buf_put(out, LINE, sizeof LINE - 1);
}

/* ---- A stream handler: PUT /stream/hash (SHA-256 of the body), /stream/fail (body() fails past 1 MiB),
 * /stream/slow (each piece waits 2 ms), /stream/refuse (ANSWER 403, with a state to release),
 * /stream/refuse-stateless (ANSWER 401, no state); everything else is declined. */

typedef struct {
    EVP_MD_CTX *md;
    uint64_t bytes, pieces;
    bool fail, slow, refused;
} stream_state;

static int stream_begin(void *ctx, const ok_http_request *req, ok_http_response *resp, void **state)
{
    (void)ctx;
    if (strncmp(req->path, "/stream/", 8) != 0)
        return OK_HTTP_STREAM_DECLINE;
    atomic_fetch_add(&g.begins, 1);
    CHECK(req->body == NULL && req->request_id && req->header);
    const char *name = req->path + 8;
    if (strncmp(name, "refuse", 6) == 0) {
        resp->status = strcmp(name, "refuse") == 0 ? 403 : 401;
        resp->operation = "stream-refuse";
        const char *text = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\"}}";
        ok_buf_put(&resp->body, text, strlen(text));
        if (strcmp(name, "refuse") == 0) {
            stream_state *st = calloc(1, sizeof *st);
            CHECK(st != NULL);
            if (st)
                st->refused = true;
            *state = st;
        }
        return OK_HTTP_STREAM_ANSWER;
    }
    stream_state *st = calloc(1, sizeof *st);
    if (!st || !(st->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(st->md, EVP_sha256(), NULL) != 1) {
        CHECK(false);
        return OK_HTTP_STREAM_DECLINE;
    }
    st->fail = strcmp(name, "fail") == 0;
    st->slow = strcmp(name, "slow") == 0;
    resp->operation = "stream-put";
    *state = st;
    return OK_HTTP_STREAM_ACCEPT;
}

static ok_err stream_body(void *ctx, void *state, const uint8_t *data, size_t len)
{
    (void)ctx;
    stream_state *st = state;
    atomic_fetch_add(&g.body_calls, 1);
    CHECK(!st->refused);
    if (st->fail && st->bytes + len > OK_HTTP_MAX_BODY)
        return ok_fail(OK_ERR_IO, "disk full");
    if (st->slow)
        sleep_ms(2);
    EVP_DigestUpdate(st->md, data, len);
    st->bytes += len;
    st->pieces++;
    return OK_OK;
}

static void stream_finish(void *ctx, void *state, ok_err failed, const ok_http_request *req, ok_http_response *resp)
{
    (void)ctx;
    stream_state *st = state;
    atomic_fetch_add(&g.finishes, 1);
    atomic_store(&g.finish_failed, (int)failed);
    CHECK(req->path && req->body == NULL);
    resp->operation = "stream-put";
    if (failed != OK_OK) {
        resp->status = 507;
        const char *text = "{\"error\":{\"code\":\"InsufficientStorage\",\"message\":\"disk full\"}}";
        ok_buf_put(&resp->body, text, strlen(text));
        return;
    }
    uint8_t md[32];
    unsigned md_len = 0;
    EVP_DigestFinal_ex(st->md, md, &md_len);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    json_t *doc = json_pack("{s:s, s:I, s:I, s:s}", "sha256", hex, "bytes", (json_int_t)st->bytes, "pieces",
                            (json_int_t)st->pieces, "method", req->method);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    resp->status = 200;
    ok_buf_put(&resp->body, text, strlen(text));
    free(text);
}

static void stream_release(void *ctx, void *state)
{
    (void)ctx;
    stream_state *st = state;
    CHECK(st != NULL);
    if (!st)
        return;
    EVP_MD_CTX_free(st->md);
    free(st);
    atomic_fetch_add(&g.releases, 1);
}

static const ok_http_stream_handler stream_handler = {
    .begin = stream_begin,
    .body = stream_body,
    .finish = stream_finish,
    .release = stream_release,
};

static ok_err start_server(ok_http_server **out, unsigned threads)
{
    ok_http_config cfg = {
        .listen = "127.0.0.1:0",
        .cert_pem_path = g.cert,
        .key_pem_path = g.key,
        .threads = threads,
        .handler = echo_handler,
        .stream = &stream_handler,
        .metrics_extra = metrics_extra,
    };
    return ok_http_start(&cfg, out);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g.dir, sizeof g.dir, "/tmp/ownkey-http-XXXXXX");
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(g.cert, sizeof g.cert, "%s/cert.pem", g.dir);
    snprintf(g.key, sizeof g.key, "%s/key.pem", g.dir);
    if (ok_http_ensure_self_signed(g.cert, g.key) != OK_OK)
        return -1;
    if (start_server(&g.server, 4) != OK_OK)
        return -1;
    g.port = ok_http_port(g.server);
    return g.port ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    ok_http_stop(g.server);
    nftw(g.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    curl_global_cleanup();
    return 0;
}

/* ---- A small libcurl client ----------------------------------------------------------------------- */

typedef struct {
    char body[4096];
    size_t body_len;
    char request_id[160];
    char client_request_id[160];
    char content_type[128];
    char echo[16];
} reply;

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    reply *r = cls;
    size_t len = size * n, room = sizeof r->body - 1 - r->body_len;
    memcpy(r->body + r->body_len, data, len < room ? len : room);
    r->body_len += len < room ? len : room;
    r->body[r->body_len] = '\0';
    return len;
}

static void copy_header(const char *line, size_t len, const char *name, char *out, size_t out_len)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    size_t vlen = len - n - 1;
    while (vlen && (*v == ' '))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    snprintf(out, out_len, "%.*s", (int)vlen, v);
}

static size_t on_header(char *line, size_t size, size_t n, void *cls)
{
    reply *r = cls;
    size_t len = size * n;
    copy_header(line, len, "x-ms-request-id", r->request_id, sizeof r->request_id);
    copy_header(line, len, "x-ms-client-request-id", r->client_request_id, sizeof r->client_request_id);
    copy_header(line, len, "content-type", r->content_type, sizeof r->content_type);
    copy_header(line, len, "x-echo", r->echo, sizeof r->echo);
    return len;
}

/* An easy handle for https://HOST:port + path, trusting the generated certificate. */
static CURL *client(CURL *h, const char *host, unsigned port, const char *path, reply *r)
{
    char url[512];
    snprintf(url, sizeof url, "https://%s:%u%s", host, port, path);
    if (!h)
        h = curl_easy_init();
    assert_non_null(h);
    memset(r, 0, sizeof *r);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, g.cert);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

static long status_of(CURL *h)
{
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

/* GET path on 127.0.0.1; returns the status (0 if the transfer failed). */
static long get(const char *path, reply *r)
{
    CURL *h = client(NULL, "127.0.0.1", g.port, path, r);
    CURLcode rc = curl_easy_perform(h);
    long code = rc == CURLE_OK ? status_of(h) : 0;
    curl_easy_cleanup(h);
    return code;
}

static json_t *parse(const reply *r)
{
    json_error_t err;
    json_t *doc = json_loads(r->body, 0, &err);
    if (!doc)
        print_error("not JSON: %s\n", r->body);
    assert_non_null(doc);
    return doc;
}

static const char *field(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(doc, name));
}

/* ---- TLS -------------------------------------------------------------------------------------------- */

static long with_tls(long version, CURLcode *rc)
{
    reply r;
    CURL *h = client(NULL, "127.0.0.1", g.port, "/tls", &r);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, version);
    /* Let the client offer TLS 1.1 at all (OpenSSL's default security level forbids it), so that a refusal
     * can only come from the server. */
    curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    *rc = curl_easy_perform(h);
    long code = *rc == CURLE_OK ? status_of(h) : 0;
    curl_easy_cleanup(h);
    return code;
}

static void test_tls_versions(void **state)
{
    (void)state;
    CURLcode rc;
    assert_int_equal(with_tls(CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1, &rc), 0);
    assert_int_equal(rc, CURLE_SSL_CONNECT_ERROR);
    assert_int_equal(with_tls(CURL_SSLVERSION_TLSv1 | CURL_SSLVERSION_MAX_TLSv1_0, &rc), 0);
    assert_int_equal(with_tls(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2, &rc), 200);
    assert_int_equal(with_tls(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3, &rc), 200);
}

/* The generated certificate verifies for both names in its SAN, as a trust anchor of its own. */
static void test_certificate(void **state)
{
    (void)state;
    const char *hosts[] = {"localhost", "127.0.0.1"};
    for (size_t i = 0; i < 2; i++) {
        reply r;
        CURL *h = client(NULL, hosts[i], g.port, "/cert", &r);
        if (strcmp(hosts[i], "localhost") == 0) {
            char resolve[64];
            snprintf(resolve, sizeof resolve, "localhost:%u:127.0.0.1", g.port);
            struct curl_slist *list = curl_slist_append(NULL, resolve);
            curl_easy_setopt(h, CURLOPT_RESOLVE, list);
            assert_int_equal(curl_easy_perform(h), CURLE_OK);
            curl_slist_free_all(list);
        } else {
            assert_int_equal(curl_easy_perform(h), CURLE_OK);
        }
        assert_int_equal(status_of(h), 200);
        json_t *doc = parse(&r);
        char expect[64];
        snprintf(expect, sizeof expect, "https://%s:%u", hosts[i], g.port);
        assert_string_equal(field(doc, "base_url"), expect);
        json_decref(doc);
        curl_easy_cleanup(h);
    }
    /* A name outside the SAN does not verify. */
    reply r;
    CURL *h = client(NULL, "ownkey.invalid", g.port, "/cert", &r);
    char resolve[64];
    snprintf(resolve, sizeof resolve, "ownkey.invalid:%u:127.0.0.1", g.port);
    struct curl_slist *list = curl_slist_append(NULL, resolve);
    curl_easy_setopt(h, CURLOPT_RESOLVE, list);
    assert_int_equal(curl_easy_perform(h), CURLE_PEER_FAILED_VERIFICATION);
    curl_slist_free_all(list);
    curl_easy_cleanup(h);

    /* The key is private; a second call keeps the existing files. */
    struct stat st;
    assert_int_equal(stat(g.key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len1 = 0, len2 = 0;
    char *before = test_read_file(g.cert, &len1);
    assert_int_equal(ok_http_ensure_self_signed(g.cert, g.key), OK_OK);
    char *after = test_read_file(g.cert, &len2);
    assert_non_null(before);
    assert_non_null(after);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    free(before);
    free(after);
}

/* ---- What the handler sees -------------------------------------------------------------------------- */

static void test_query_and_path(void **state)
{
    (void)state;
    reply r;
    assert_int_equal(get("/keys/a//sign?api%2Dversion=2025-07-01&flag", &r), 200);
    json_t *doc = parse(&r);
    assert_string_equal(field(doc, "path"), "/keys/a//sign");
    assert_string_equal(field(doc, "api_version"), "2025-07-01");
    assert_string_equal(field(doc, "flag"), "");
    assert_string_equal(field(doc, "method"), "GET");
    assert_string_equal(r.content_type, "application/json; charset=utf-8");
    assert_string_equal(r.echo, "yes");
    json_decref(doc);

    assert_int_equal(get("/keys/a/?api-version=7.5", &r), 200);
    doc = parse(&r);
    assert_string_equal(field(doc, "path"), "/keys/a/");
    assert_string_equal(field(doc, "api_version"), "7.5");
    assert_null(json_string_value(json_object_get(doc, "flag")));
    json_decref(doc);

    /* Values and names are decoded; the path is decoded but never normalized. */
    assert_int_equal(get("/keys/a%2Db/x?api%2dversion=7%2E4", &r), 200);
    doc = parse(&r);
    assert_string_equal(field(doc, "path"), "/keys/a-b/x");
    assert_string_equal(field(doc, "api_version"), "7.4");
    json_decref(doc);

    /* An encoded NUL would silently truncate: refused before the handler. */
    int calls = atomic_load(&g.handler_calls);
    assert_int_equal(get("/keys/a%00b?api-version=7.5", &r), 400);
    assert_int_equal(atomic_load(&g.handler_calls), calls);
    assert_non_null(strstr(r.body, "\"code\":\"BadParameter\""));
}

static void test_empty_post(void **state)
{
    (void)state;
    reply r;
    CURL *h = client(NULL, "127.0.0.1", g.port, "/keys/k/create?api%2Dversion=7.5", &r);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "x-test: first"); /* the handler asks for "X-Test" */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(status_of(h), 200);
    json_t *doc = parse(&r);
    assert_string_equal(field(doc, "method"), "POST");
    assert_int_equal(json_integer_value(json_object_get(doc, "body_len")), 0);
    assert_true(json_is_true(json_object_get(doc, "body_null")));
    assert_string_equal(field(doc, "x_test"), "first");
    json_decref(doc);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

static void test_request_id(void **state)
{
    (void)state;
    reply r;
    CURL *h = client(NULL, "127.0.0.1", g.port, "/id", &r);
    struct curl_slist *hdrs = curl_slist_append(NULL, "x-ms-client-request-id: 0f1e2d3c-aaaa-bbbb-cccc-0123456789ab");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    json_t *doc = parse(&r);
    assert_string_equal(field(doc, "request_id"), "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab");
    assert_string_equal(r.request_id, "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab");
    assert_string_equal(r.client_request_id, "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab");
    assert_non_null(strstr(field(doc, "client"), "127.0.0.1:"));
    json_decref(doc);
    curl_slist_free_all(hdrs);

    /* Without one (or with one unfit to echo), a fresh UUID, different each time. */
    char first[64];
    for (int i = 0; i < 2; i++) {
        hdrs = curl_slist_append(NULL, i ? "x-ms-client-request-id: bad\"id" : "X-Other: 1");
        h = client(h, "127.0.0.1", g.port, "/id", &r);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        doc = parse(&r);
        const char *id = field(doc, "request_id");
        assert_int_equal(strlen(id), 36);
        assert_int_equal(id[14], '4');
        assert_string_equal(r.request_id, id);
        if (i == 0)
            snprintf(first, sizeof first, "%s", id);
        else
            assert_string_not_equal(first, id);
        json_decref(doc);
        curl_slist_free_all(hdrs);
    }
    curl_easy_cleanup(h);
}

/* ---- Bodies ------------------------------------------------------------------------------------------ */

typedef struct {
    size_t left;
} upload;

static size_t on_read(char *buf, size_t size, size_t n, void *cls)
{
    upload *u = cls;
    size_t len = size * n < u->left ? size * n : u->left;
    memset(buf, 'x', len);
    u->left -= len;
    return len;
}

/* POSTs len bytes; chunked (no Content-Length) if asked; expect100 = 0 suppresses Expect: 100-continue.
 * Returns the status, 0 when the transfer failed; sent_bytes is how much of the body went out. */
static curl_off_t sent_bytes;

static long post_bytes(size_t len, int chunked, int expect100, reply *r)
{
    CURL *h = client(NULL, "127.0.0.1", g.port, "/upload", r);
    upload u = {len};
    struct curl_slist *hdrs = NULL;
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    hdrs = curl_slist_append(hdrs, expect100 ? "Expect: 100-continue" : "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    if (!chunked)
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(h);
    long code = rc == CURLE_OK ? status_of(h) : 0;
    sent_bytes = -1;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent_bytes);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return code;
}

static void test_body_limit(void **state)
{
    (void)state;
    reply r;
    assert_int_equal(post_bytes(OK_HTTP_MAX_BODY, 0, 0, &r), 200);
    json_t *doc = parse(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "body_len")), OK_HTTP_MAX_BODY);
    json_decref(doc);
    assert_int_equal(post_bytes(OK_HTTP_MAX_BODY, 1, 1, &r), 200);

    int calls = atomic_load(&g.handler_calls);
    /* Announced too large, client waiting for 100-continue: refused at once, the body never sent. */
    assert_int_equal(post_bytes(OK_HTTP_MAX_BODY + 1, 0, 1, &r), 413);
    assert_int_equal(sent_bytes, 0);
    assert_non_null(strstr(r.body, "{\"error\":{\"code\":\"RequestTooLarge\",\"message\":"));
    assert_string_equal(r.content_type, "application/json; charset=utf-8");
    assert_int_equal(strlen(r.request_id), 36);
    /* Chunked, so only counted: read, dropped, refused at the end. */
    assert_int_equal(post_bytes(OK_HTTP_MAX_BODY + 1, 1, 0, &r), 413);
    assert_non_null(strstr(r.body, "RequestTooLarge"));
    assert_int_equal(post_bytes(3 * OK_HTTP_MAX_BODY, 1, 1, &r), 413);
    assert_int_equal(atomic_load(&g.handler_calls), calls);

    /* Announced too large and sent at once (no Expect): the client sees either the 413 or, having been cut
     * off mid-upload, a failed transfer; never a handler call. */
    long code = post_bytes(2 * OK_HTTP_MAX_BODY, 0, 0, &r);
    assert_true(code == 413 || code == 0);
    assert_int_equal(atomic_load(&g.handler_calls), calls);
    /* The server is fine afterwards. */
    assert_int_equal(get("/after", &r), 200);
}

/* ---- Streamed request bodies ------------------------------------------------------------------------ */

/* Waits (at most 5 s) until *v reaches want: completions run after the reply has been sent. */
static bool wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && atomic_load(v) < want; i++)
        sleep_ms(5);
    return atomic_load(v) == want;
}

typedef struct {
    const uint8_t *data;
    size_t len, pos, abort_at;
    int body_calls; /* g.body_calls when the upload started */
} source;

static size_t source_read(char *buf, size_t size, size_t n, void *cls)
{
    source *src = cls;
    if (src->pos >= src->abort_at) {
        /* Give up only once the server has some of the body: a hang-up with the request still unread
         * would be a reset that discards it before the server ever sees the headers. */
        for (int i = 0; i < 1000 && atomic_load(&g.body_calls) == src->body_calls; i++)
            sleep_ms(5);
        return CURL_READFUNC_ABORT;
    }
    size_t len = size * n, left = src->len - src->pos;
    if (len > left)
        len = left;
    if (len > src->abort_at - src->pos)
        len = src->abort_at - src->pos;
    memcpy(buf, src->data + src->pos, len);
    src->pos += len;
    return len;
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(i);
    return p;
}

static void sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
    uint8_t md[32];
    unsigned md_len = 0;
    assert_int_equal(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* PUTs len bytes of data to path on port (Content-Length unless chunked; abort_at: the client gives up
 * after that many bytes). Returns the status, 0 when the transfer failed; *rc is curl's result. */
static long put_stream(unsigned port, const char *path, const uint8_t *data, size_t len, int chunked, int expect100,
                       size_t abort_at, reply *r, CURLcode *rc)
{
    CURL *h = client(NULL, "127.0.0.1", port, path, r);
    source src = {data, len, 0, abort_at, atomic_load(&g.body_calls)};
    struct curl_slist *hdrs = NULL;
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    hdrs = curl_slist_append(hdrs, expect100 ? "Expect: 100-continue" : "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, source_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &src);
    if (!chunked)
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    CURLcode e = curl_easy_perform(h);
    if (rc)
        *rc = e;
    long code = e == CURLE_OK ? status_of(h) : 0;
    sent_bytes = -1;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent_bytes);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return code;
}

static void test_stream_upload_past_the_limit(void **state)
{
    (void)state;
    const size_t len = 5 * OK_HTTP_MAX_BODY + 12345;
    uint8_t *data = pattern(len);
    char expect[65];
    sha256_hex(data, len, expect);
    int calls = atomic_load(&g.handler_calls), releases = atomic_load(&g.releases);
    for (int chunked = 0; chunked < 2; chunked++) {
        reply r;
        int finishes = atomic_load(&g.finishes);
        assert_int_equal(put_stream(g.port, "/stream/hash?x=1", data, len, chunked, chunked, SIZE_MAX, &r, NULL), 200);
        json_t *doc = parse(&r);
        assert_string_equal(field(doc, "sha256"), expect);
        assert_int_equal(json_integer_value(json_object_get(doc, "bytes")), len);
        assert_true(json_integer_value(json_object_get(doc, "pieces")) > 1);
        assert_string_equal(field(doc, "method"), "PUT");
        json_decref(doc);
        assert_int_equal(strlen(r.request_id), 36);
        assert_int_equal(atomic_load(&g.finishes), finishes + 1);
        assert_int_equal(atomic_load(&g.finish_failed), OK_OK);
        assert_true(wait_for(&g.releases, releases + chunked + 1));
    }
    /* The plain handler never saw it; a buffered request past the limit is still refused. */
    assert_int_equal(atomic_load(&g.handler_calls), calls);
    reply r;
    assert_int_equal(post_bytes(OK_HTTP_MAX_BODY + 1, 0, 1, &r), 413);
    /* The streamed request shows in the metrics under the handler's operation. */
    assert_int_equal(get("/metrics", &r), 200);
    assert_non_null(strstr(r.body, "ownkey_http_requests_total{operation=\"stream-put\",status=\"200\"} "));
    free(data);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
}

static void test_stream_answer_without_reading(void **state)
{
    (void)state;
    const size_t len = 3 * OK_HTTP_MAX_BODY;
    uint8_t *data = pattern(len);
    int body_calls = atomic_load(&g.body_calls), finishes = atomic_load(&g.finishes);
    int releases = atomic_load(&g.releases);
    reply r;
    /* The client waits for 100-continue: the refusal comes first and no byte of the body is sent. */
    assert_int_equal(put_stream(g.port, "/stream/refuse", data, len, 0, 1, SIZE_MAX, &r, NULL), 403);
    assert_int_equal(sent_bytes, 0);
    assert_non_null(strstr(r.body, "\"code\":\"Forbidden\""));
    assert_true(wait_for(&g.releases, releases + 1)); /* a state was set: released */
    /* Chunked, without Expect: the reply still comes, the body is never given to the handler. */
    CURLcode rc;
    long code = put_stream(g.port, "/stream/refuse-stateless", data, len, 1, 0, SIZE_MAX, &r, &rc);
    assert_true(code == 401 || code == 0);
    assert_int_equal(atomic_load(&g.body_calls), body_calls);
    assert_int_equal(atomic_load(&g.finishes), finishes);
    sleep_ms(50);
    assert_int_equal(atomic_load(&g.releases), releases + 1); /* no state: nothing to release */
    assert_int_equal(get("/after", &r), 200);
    free(data);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
}

static void test_stream_body_fails(void **state)
{
    (void)state;
    const size_t len = 4 * OK_HTTP_MAX_BODY;
    uint8_t *data = pattern(len);
    for (int chunked = 0; chunked < 2; chunked++) {
        int finishes = atomic_load(&g.finishes), releases = atomic_load(&g.releases);
        reply r;
        assert_int_equal(put_stream(g.port, "/stream/fail", data, len, chunked, 0, SIZE_MAX, &r, NULL), 507);
        assert_non_null(strstr(r.body, "InsufficientStorage"));
        assert_true(sent_bytes >= (curl_off_t)len); /* the rest was read and dropped (chunked: plus framing) */
        assert_int_equal(atomic_load(&g.finishes), finishes + 1);
        assert_int_equal(atomic_load(&g.finish_failed), OK_ERR_IO);
        assert_true(wait_for(&g.releases, releases + 1));
    }
    free(data);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
}

static void test_stream_client_hangs_up(void **state)
{
    (void)state;
    const size_t len = 8 * OK_HTTP_MAX_BODY;
    uint8_t *data = pattern(len);
    for (int chunked = 0; chunked < 2; chunked++) {
        int finishes = atomic_load(&g.finishes), releases = atomic_load(&g.releases);
        int begins = atomic_load(&g.begins);
        reply r;
        CURLcode rc;
        assert_int_equal(put_stream(g.port, "/stream/hash", data, len, chunked, 0, 2 * OK_HTTP_MAX_BODY, &r, &rc), 0);
        assert_int_equal(rc, CURLE_ABORTED_BY_CALLBACK);
        assert_int_equal(atomic_load(&g.begins), begins + 1);
        assert_true(wait_for(&g.releases, releases + 1));
        assert_int_equal(atomic_load(&g.finishes), finishes); /* no whole body: no finish */
    }
    reply r;
    assert_int_equal(get("/metrics", &r), 200);
    assert_non_null(strstr(r.body, "ownkey_http_requests_total{operation=\"stream-put\",status=\"499\"} "));
    free(data);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
}

/* ---- On-demand response bodies ------------------------------------------------------------------- */

typedef struct {
    uint64_t got;
    bool mismatch;
    curl_off_t content_length;
    char transfer_encoding[32];
} sink;

static size_t sink_write(char *data, size_t size, size_t n, void *cls)
{
    sink *k = cls;
    for (size_t i = 0; i < size * n; i++)
        if ((uint8_t)data[i] != pattern_byte(k->got + i))
            k->mismatch = true;
    k->got += size * n;
    return size * n;
}

static size_t sink_header(char *line, size_t size, size_t n, void *cls)
{
    sink *k = cls;
    copy_header(line, size * n, "transfer-encoding", k->transfer_encoding, sizeof k->transfer_encoding);
    return size * n;
}

/* GETs (or HEADs) path; returns curl's result, the status in *status. */
static CURLcode fetch(const char *path, int head, sink *k, long *status)
{
    reply r;
    CURL *h = client(NULL, "127.0.0.1", g.port, path, &r);
    memset(k, 0, sizeof *k);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sink_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, k);
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(h);
    *status = status_of(h);
    k->content_length = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &k->content_length);
    curl_easy_cleanup(h);
    return rc;
}

static void test_streamed_responses(void **state)
{
    (void)state;
    const uint64_t len = 5 * 1024 * 1024 + 777;
    char path[64];
    sink k;
    long status;
    int frees = atomic_load(&g.body_frees);

    /* Sized: exact Content-Length, every byte right. */
    snprintf(path, sizeof path, "/download/%llu", (unsigned long long)len);
    assert_int_equal(fetch(path, 0, &k, &status), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(k.content_length, len);
    assert_int_equal(k.got, len);
    assert_false(k.mismatch);
    assert_string_equal(k.transfer_encoding, "");
    assert_true(wait_for(&g.body_frees, ++frees));

    /* Unknown size: chunked. */
    snprintf(path, sizeof path, "/download-chunked/%llu", (unsigned long long)len);
    assert_int_equal(fetch(path, 0, &k, &status), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(k.content_length, -1);
    assert_string_equal(k.transfer_encoding, "chunked");
    assert_int_equal(k.got, len);
    assert_false(k.mismatch);
    assert_true(wait_for(&g.body_frees, ++frees));

    /* Empty. */
    assert_int_equal(fetch("/download/0", 0, &k, &status), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(k.content_length, 0);
    assert_int_equal(k.got, 0);
    assert_true(wait_for(&g.body_frees, ++frees));

    /* HEAD: the full Content-Length, no body, nothing read. */
    int reads = atomic_load(&g.body_reads);
    snprintf(path, sizeof path, "/download/%llu", (unsigned long long)len);
    assert_int_equal(fetch(path, 1, &k, &status), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(k.content_length, len);
    assert_int_equal(k.got, 0);
    assert_true(wait_for(&g.body_frees, ++frees));
    assert_int_equal(atomic_load(&g.body_reads), reads);

    /* The reader fails half-way: the client sees a failed, short transfer (sized or chunked). */
    snprintf(path, sizeof path, "/download-fail/%llu", (unsigned long long)len);
    assert_int_not_equal(fetch(path, 0, &k, &status), CURLE_OK);
    assert_int_equal(k.content_length, len);
    assert_true(k.got <= len / 2);
    assert_false(k.mismatch);
    assert_true(wait_for(&g.body_frees, ++frees));
    snprintf(path, sizeof path, "/download-chunked-fail/%llu", (unsigned long long)len);
    assert_int_not_equal(fetch(path, 0, &k, &status), CURLE_OK);
    assert_true(k.got <= len / 2);
    assert_true(wait_for(&g.body_frees, ++frees));

    /* A response that is never sent (the handler set no status) still has its body freed. */
    reply r;
    assert_int_equal(get("/download-nostatus/100", &r), 500);
    assert_non_null(strstr(r.body, "InternalError"));
    assert_true(wait_for(&g.body_frees, ++frees));

    /* The client leaves early (a 1-byte transfer cut by the write callback); the server is fine after. */
    sink small;
    memset(&small, 0, sizeof small);
    CURL *h = client(NULL, "127.0.0.1", g.port, "/download/20000000", &r);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1000);
    assert_int_equal(curl_easy_perform(h), CURLE_FILESIZE_EXCEEDED);
    curl_easy_cleanup(h);
    assert_true(wait_for(&g.body_frees, ++frees));
    assert_int_equal(get("/after", &r), 200);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
}

/* ---- Connections ---------------------------------------------------------------------------------- */

static void test_keep_alive(void **state)
{
    (void)state;
    reply r;
    CURL *h = NULL;
    long connects = 0, port_first = 0;
    for (int i = 0; i < 5; i++) {
        h = client(h, "127.0.0.1", g.port, i % 2 ? "/keys/x/?api%2Dversion=7.5" : "/keys/x//sign", &r);
        if (i == 4) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_int_equal(status_of(h), 200);
        long n = 0, port = 0;
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
        curl_easy_getinfo(h, CURLINFO_LOCAL_PORT, &port);
        connects += n;
        if (i == 0)
            port_first = port;
        assert_int_equal(port, port_first);
    }
    assert_int_equal(connects, 1);
    curl_easy_cleanup(h);
}

static void test_healthz_and_metrics(void **state)
{
    (void)state;
    reply r;
    assert_int_equal(get("/healthz", &r), 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_int_equal(get("/metrics", &r), 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.body, "# TYPE ownkey_http_requests_total counter\n"));
    assert_non_null(strstr(r.body, "ownkey_http_requests_total{operation=\"healthz\",status=\"200\"} "));
    assert_non_null(strstr(r.body, "ownkey_http_request_duration_seconds_bucket{le=\"+Inf\"} "));
    assert_non_null(strstr(r.body, "ownkey_http_request_duration_seconds_count "));
    /* (The previous request may not have been retired yet: its completion runs after the reply is sent.) */
    assert_non_null(strstr(r.body, "# TYPE ownkey_http_requests_in_flight gauge\nownkey_http_requests_in_flight "));
    assert_non_null(strstr(r.body, "\ntest_extra 42\n"));

    /* A request shows up in the counters. */
    const char *needle = "ownkey_http_requests_total{operation=\"echo\",status=\"200\"} ";
    const char *at = strstr(r.body, needle);
    long before = at ? atol(at + strlen(needle)) : 0;
    assert_int_equal(get("/counted", &r), 200);
    assert_int_equal(get("/metrics", &r), 200);
    at = strstr(r.body, needle);
    assert_non_null(at);
    assert_int_equal(atol(at + strlen(needle)), before + 1);

    /* Only GET and HEAD. */
    CURL *h = client(NULL, "127.0.0.1", g.port, "/healthz", &r);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(status_of(h), 405);
    curl_easy_cleanup(h);
}

#define CLIENT_THREADS 8
#define REQUESTS_PER_THREAD 25

static void *client_thread(void *arg)
{
    long id = (long)(intptr_t)arg, ok = 0;
    reply *r = malloc(sizeof *r);
    CURL *h = NULL;
    for (int i = 0; r && i < REQUESTS_PER_THREAD; i++) {
        char path[64], header[64], expect[32];
        snprintf(path, sizeof path, "/t/%ld/%d?api%%2Dversion=%ld.%d", id, i, id, i);
        snprintf(header, sizeof header, "X-Test: %ld-%d", id, i);
        snprintf(expect, sizeof expect, "\"x_test\":\"%ld-%d\"", id, i);
        struct curl_slist *hdrs = curl_slist_append(NULL, header);
        h = client(h, "127.0.0.1", g.port, path, r);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (i % 5 == 4)
            curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
        if (curl_easy_perform(h) == CURLE_OK && status_of(h) == 200 && strstr(r->body, expect))
            ok++;
        curl_slist_free_all(hdrs);
    }
    curl_easy_cleanup(h);
    free(r);
    return (void *)(intptr_t)ok;
}

static void test_concurrent(void **state)
{
    (void)state;
    int calls = atomic_load(&g.handler_calls);
    pthread_t threads[CLIENT_THREADS];
    for (long i = 0; i < CLIENT_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, client_thread, (void *)(intptr_t)i), 0);
    long ok = 0;
    for (int i = 0; i < CLIENT_THREADS; i++) {
        void *res = NULL;
        pthread_join(threads[i], &res);
        ok += (long)(intptr_t)res;
    }
    assert_int_equal(ok, CLIENT_THREADS * REQUESTS_PER_THREAD);
    assert_int_equal(atomic_load(&g.handler_calls) - calls, CLIENT_THREADS * REQUESTS_PER_THREAD);
}

/* ---- Stop and start -------------------------------------------------------------------------------- */

typedef struct {
    unsigned port;
    long status;
    reply r;
} slow_call;

static void *slow_thread(void *arg)
{
    slow_call *c = arg;
    CURL *h = client(NULL, "127.0.0.1", c->port, "/slow", &c->r);
    c->status = curl_easy_perform(h) == CURLE_OK ? status_of(h) : 0;
    curl_easy_cleanup(h);
    return NULL;
}

static void *release_later(void *arg)
{
    (void)arg;
    sleep_ms(200);
    atomic_store(&g.slow_release, 1);
    return NULL;
}

static void test_stop_with_request_in_flight(void **state)
{
    (void)state;
    ok_http_server *s = NULL;
    assert_int_equal(start_server(&s, 2), OK_OK);
    slow_call c = {.port = ok_http_port(s)};
    assert_int_not_equal(c.port, g.port);
    atomic_store(&g.slow_entered, 0);
    atomic_store(&g.slow_release, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_thread, &c), 0);
    for (int i = 0; i < 1000 && !atomic_load(&g.slow_entered); i++)
        sleep_ms(5);
    assert_true(atomic_load(&g.slow_entered));
    /* Release the handler a little after the stop has begun. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t releaser;
    assert_int_equal(pthread_create(&releaser, NULL, release_later, NULL), 0);
    ok_http_stop(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    pthread_join(releaser, NULL);
    /* The stop waited for the handler. */
    long waited_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(waited_ms >= 150);
    assert_int_equal(c.status, 200);
    json_t *doc = parse(&c.r);
    assert_string_equal(field(doc, "path"), "/slow");
    json_decref(doc);

    /* Nothing listens any more. */
    reply r;
    CURL *h = client(NULL, "127.0.0.1", c.port, "/gone", &r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 2L);
    assert_int_not_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
}

typedef struct {
    unsigned port;
    const uint8_t *data;
    size_t len;
    long status;
    reply r;
} upload_call;

static void *upload_thread(void *arg)
{
    upload_call *u = arg;
    u->status = put_stream(u->port, "/stream/slow", u->data, u->len, 0, 0, SIZE_MAX, &u->r, NULL);
    return NULL;
}

/* A stop lets a streamed upload in flight finish (each piece takes 2 ms: the upload takes ~0.5 s). */
static void test_stop_drains_a_streamed_upload(void **state)
{
    (void)state;
    ok_http_server *s = NULL;
    assert_int_equal(start_server(&s, 2), OK_OK);
    upload_call u = {.port = ok_http_port(s), .len = 4 * OK_HTTP_MAX_BODY};
    uint8_t *data = pattern(u.len);
    u.data = data;
    char expect[65];
    sha256_hex(data, u.len, expect);
    int body_calls = atomic_load(&g.body_calls), releases = atomic_load(&g.releases);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, upload_thread, &u), 0);
    for (int i = 0; i < 1000 && atomic_load(&g.body_calls) < body_calls + 3; i++)
        sleep_ms(2);
    assert_true(atomic_load(&g.body_calls) >= body_calls + 3);
    ok_http_stop(s);
    pthread_join(t, NULL);
    assert_int_equal(u.status, 200);
    json_t *doc = parse(&u.r);
    assert_string_equal(field(doc, "sha256"), expect);
    json_decref(doc);
    assert_int_equal(atomic_load(&g.releases), releases + 1); /* before the stop returned */
    free(data);
}

static void test_start_failures(void **state)
{
    (void)state;
    ok_http_server *s = NULL;
    ok_http_config cfg = {.listen = "127.0.0.1:0", .cert_pem_path = "/nonexistent/cert.pem",
                          .key_pem_path = g.key, .handler = echo_handler};
    assert_int_equal(ok_http_start(&cfg, &s), OK_ERR_IO);
    assert_null(s);

    cfg.cert_pem_path = g.cert;
    cfg.listen = "127.0.0.1";
    assert_int_equal(ok_http_start(&cfg, &s), OK_ERR_INVALID_ARG);
    cfg.listen = "127.0.0.1:70000";
    assert_int_equal(ok_http_start(&cfg, &s), OK_ERR_INVALID_ARG);

    /* The port is taken. */
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", g.port);
    cfg.listen = listen;
    assert_int_equal(ok_http_start(&cfg, &s), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), listen));

    /* A certificate file that is not a certificate. */
    cfg.listen = "127.0.0.1:0";
    cfg.cert_pem_path = g.key;
    assert_int_equal(ok_http_start(&cfg, &s), OK_ERR_IO);
    assert_null(s);
}

static void test_response_helpers(void **state)
{
    (void)state;
    ok_http_response resp = {0};
    ok_buf_init(&resp.body, 0);
    for (int i = 0; i < OK_HTTP_MAX_HEADERS; i++)
        assert_int_equal(ok_http_response_header(&resp, "X-A", "v"), OK_OK);
    assert_int_equal(ok_http_response_header(&resp, "X-A", "v"), OK_ERR_LIMIT);
    ok_http_response_free(&resp);
    assert_int_equal(resp.header_count, 0);
    assert_int_equal(ok_http_response_header(&resp, "X-A", "a\r\nSet-Cookie: x"), OK_ERR_INVALID_ARG);
    ok_http_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_versions),
        cmocka_unit_test(test_certificate),
        cmocka_unit_test(test_query_and_path),
        cmocka_unit_test(test_empty_post),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_stream_upload_past_the_limit),
        cmocka_unit_test(test_stream_answer_without_reading),
        cmocka_unit_test(test_stream_body_fails),
        cmocka_unit_test(test_stream_client_hangs_up),
        cmocka_unit_test(test_streamed_responses),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_healthz_and_metrics),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_stop_with_request_in_flight),
        cmocka_unit_test(test_stop_drains_a_streamed_upload),
        cmocka_unit_test(test_start_failures),
        cmocka_unit_test(test_response_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
