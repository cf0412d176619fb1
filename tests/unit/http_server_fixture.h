/* The fixture shared by the HTTPS server tests (test_http_server.c, test_http_server_stream.c): a
 * self-signed certificate made by ok_http_ensure_self_signed in a temporary directory and trusted as the
 * CA, a server on 127.0.0.1 port 0 (group setup/teardown), its handlers (an echo handler that reports what
 * it was given, on-demand /download bodies, a /stream handler hashing streamed uploads) with the counters
 * they keep, and a small libcurl client (GET, buffered POST, JSON replies). Header-only (static inline):
 * each test executable includes it once. */
#ifndef OWNKEY_TEST_HTTP_SERVER_FIXTURE_H
#define OWNKEY_TEST_HTTP_SERVER_FIXTURE_H

#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    /* Held replies (/held): the release the server handed over, for the test to call. */
    void (*_Atomic held_release)(void *arg, int ok);
    void *_Atomic held_arg;
} g;

#define CHECK(cond)                                    \
    do {                                               \
        if (!(cond))                                   \
            atomic_fetch_add(&g.callback_errors, 1);   \
    } while (0)

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- On-demand response bodies: /download/N (N bytes), /download-chunked/N (size unknown),
 * /download-fail/N and /download-chunked-fail/N (the read fails half-way), /download-nostatus/N. */

static inline uint8_t pattern_byte(uint64_t pos)
{
    return (uint8_t)((pos * 2654435761u) >> 13 ^ pos);
}

typedef struct {
    uint64_t size, fail_at;
} download;

static inline int64_t download_read(void *cls, uint64_t pos, uint8_t *buf, size_t max)
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

static inline void download_free(void *cls)
{
    atomic_fetch_add(&g.body_frees, 1);
    free(cls);
}

static inline bool download_handler(const ok_http_request *req, ok_http_response *resp)
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

/* /held: the reply is held until the test calls g.held_release (ok = 0: 503 HoldFailed instead). */
static inline void fixture_hold(void *cls, void (*release)(void *arg, int ok), void *arg)
{
    (void)cls;
    atomic_store(&g.held_arg, arg);
    atomic_store(&g.held_release, release);
}

static inline void fixture_hold_failed(ok_http_response *resp)
{
    static const char BODY[] = "{\"error\":{\"code\":\"HoldFailed\",\"message\":\"released with ok = 0\"}}";
    ok_buf_reset(&resp->body);
    ok_buf_put(&resp->body, BODY, sizeof BODY - 1);
    resp->status = 503;
}

/* Echoes the request as JSON; "/slow" waits until released (at most 5 s) before answering; "/held" is
 * answered with a hold (when the server offers one). */
static inline void echo_handler(void *ctx, const ok_http_request *req, ok_http_response *resp)
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
    if (strcmp(req->path, "/held") == 0) {
        CHECK(req->can_hold);
        resp->hold = fixture_hold;
        resp->hold_failed = fixture_hold_failed;
    }
}

static inline void metrics_extra(void *ctx, ok_buf *out)
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

static inline int stream_begin(void *ctx, const ok_http_request *req, ok_http_response *resp, void **state)
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

static inline ok_err stream_body(void *ctx, void *state, const uint8_t *data, size_t len)
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

static inline void stream_finish(void *ctx, void *state, ok_err failed, const ok_http_request *req,
                                 ok_http_response *resp)
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

static inline void stream_release(void *ctx, void *state)
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

static inline ok_err start_server(ok_http_server **out, unsigned threads)
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

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int group_setup(void **state)
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

static inline int group_teardown(void **state)
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

static inline size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    reply *r = cls;
    size_t len = size * n, room = sizeof r->body - 1 - r->body_len;
    memcpy(r->body + r->body_len, data, len < room ? len : room);
    r->body_len += len < room ? len : room;
    r->body[r->body_len] = '\0';
    return len;
}

static inline void copy_header(const char *line, size_t len, const char *name, char *out, size_t out_len)
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

static inline size_t on_header(char *line, size_t size, size_t n, void *cls)
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
static inline CURL *client(CURL *h, const char *host, unsigned port, const char *path, reply *r)
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

static inline long status_of(CURL *h)
{
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

/* GET path on 127.0.0.1; returns the status (0 if the transfer failed). */
static inline long get(const char *path, reply *r)
{
    CURL *h = client(NULL, "127.0.0.1", g.port, path, r);
    CURLcode rc = curl_easy_perform(h);
    long code = rc == CURLE_OK ? status_of(h) : 0;
    curl_easy_cleanup(h);
    return code;
}

static inline json_t *parse(const reply *r)
{
    json_error_t err;
    json_t *doc = json_loads(r->body, 0, &err);
    if (!doc)
        print_error("not JSON: %s\n", r->body);
    assert_non_null(doc);
    return doc;
}

static inline const char *field(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(doc, name));
}

/* ---- Buffered uploads --------------------------------------------------------------------------- */

typedef struct {
    size_t left;
} upload;

static inline size_t on_read(char *buf, size_t size, size_t n, void *cls)
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

static inline long post_bytes(size_t len, int chunked, int expect100, reply *r)
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

#endif /* OWNKEY_TEST_HTTP_SERVER_FIXTURE_H */
