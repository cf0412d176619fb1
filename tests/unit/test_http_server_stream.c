/* Tests of the HTTPS server's streamed bodies (src/http/server_stream.c) over real TLS with libcurl,
 * against the fixture in http_server_fixture.h. Proves: uploads past 1 MiB (sized and chunked) hashed by a
 * stream handler, a refusal before the body, a body() failing mid-way, a client hanging up mid-body, a stop
 * draining an upload in flight; sized, chunked and HEAD on-demand responses, a reader failing mid-way, a
 * client leaving early; large replies sent corked and no connection left corked after a HEAD or a GET;
 * and release()/body_free() counted to run exactly once each time. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http_server_fixture.h"

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

/* ---- Corked replies ----------------------------------------------------------------------------------- */

/* The server runs in this process: its connections are the sockets whose local port is the server's.
 * Returns how many of them have TCP_CORK on. */
static int corked_server_sockets(void)
{
    int corked = 0;
    for (int fd = 0; fd < 4096; fd++) {
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0 || a.sin_family != AF_INET ||
            ntohs(a.sin_port) != g.port)
            continue;
        int on = 0;
        socklen_t olen = sizeof on;
        if (getsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, &olen) == 0 && on)
            corked++;
    }
    return corked;
}

typedef struct {
    sink k;
    int corked_mid_body; /* seen once 64 KiB of the body had arrived (-1: not looked yet) */
} corked_sink;

static size_t corked_sink_write(char *data, size_t size, size_t n, void *cls)
{
    corked_sink *c = cls;
    if (c->corked_mid_body < 0 && c->k.got >= 64 * 1024)
        c->corked_mid_body = corked_server_sockets();
    return sink_write(data, size, n, &c->k);
}

/* A large reply is sent corked (the cork is on while its body streams: 24 MiB is more than the loopback
 * socket buffers hold, so the server is still reading it when the client has 64 KiB), and no reply
 * leaves its keep-alive connection corked: not a HEAD (whose body is never read), not a GET once its
 * last piece is read. A corked idle connection would hold the next reply up to the kernel's 200 ms. */
static void test_large_replies_leave_no_cork(void **state)
{
    (void)state;
    const uint64_t len = 24u << 20;
    char path[64];
    snprintf(path, sizeof path, "/download/%llu", (unsigned long long)len);
    reply r;
    CURL *h = client(NULL, "127.0.0.1", g.port, path, &r);
    corked_sink c = {.corked_mid_body = -1};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, corked_sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);

    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(status_of(h), 200);
    assert_int_equal(corked_server_sockets(), 0);

    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(status_of(h), 200);
    long connects = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0); /* the same connection as the HEAD */
    assert_int_equal(c.k.got, len);
    assert_false(c.k.mismatch);
    assert_int_equal(c.corked_mid_body, 1);
    assert_int_equal(corked_server_sockets(), 0);

    /* Below the threshold nothing is corked, also mid-body. */
    snprintf(path, sizeof path, "/download/%u", 512u * 1024u);
    client(h, "127.0.0.1", g.port, path, &r);
    memset(&c, 0, sizeof c);
    c.corked_mid_body = -1;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, corked_sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(c.k.got, 512u * 1024u);
    assert_true(c.corked_mid_body <= 0);
    assert_int_equal(corked_server_sockets(), 0);
    curl_easy_cleanup(h);
}

/* ---- Stop ------------------------------------------------------------------------------------------- */

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_upload_past_the_limit),
        cmocka_unit_test(test_stream_answer_without_reading),
        cmocka_unit_test(test_stream_body_fails),
        cmocka_unit_test(test_stream_client_hangs_up),
        cmocka_unit_test(test_streamed_responses),
        cmocka_unit_test(test_large_replies_leave_no_cork),
        cmocka_unit_test(test_stop_drains_a_streamed_upload),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
