/* Tests of the HTTPS server (src/http/server.c, metrics.c, response.c, tls_cert.c) over real TLS with
 * libcurl, against the fixture in http_server_fixture.h. Proves: TLS 1.1 refused and 1.2/1.3 accepted; the
 * certificate verifies for localhost and 127.0.0.1; "api%2Dversion" is seen as "api-version";
 * "/keys/a//sign" and "/keys/a/" reach the handler unchanged; a body-less POST with Content-Length: 0;
 * buffered bodies up to 1 MiB accepted and past it 413 without the handler being called (announced,
 * chunked, with and without Expect: 100-continue); keep-alive reuse; request ids; /healthz; /metrics;
 * concurrent clients; a stop that completes the request in flight; start failures; the response helpers.
 * Streamed bodies (server_stream.c) are tested in test_http_server_stream.c. */
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "http_server_fixture.h"

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
        assert_int_equal(strspn(id, "0123456789abcdef-"), 36);
        assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
        assert_int_equal(id[14], '4');
        assert_non_null(strchr("89ab", id[19]));
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

/* A GET of path on port on a thread of its own (the reply comes back in status, -1 if none, and r). */
typedef struct {
    unsigned port;
    const char *path;
    long status;
    reply r;
} background_get;

static void *background_get_thread(void *arg)
{
    background_get *c = arg;
    CURL *h = client(NULL, "127.0.0.1", c->port, c->path, &c->r);
    c->status = curl_easy_perform(h) == CURLE_OK ? status_of(h) : -1;
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
    background_get c = {.port = ok_http_port(s), .path = "/slow"};
    assert_int_not_equal(c.port, g.port);
    atomic_store(&g.slow_entered, 0);
    atomic_store(&g.slow_release, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, background_get_thread, &c), 0);
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

/* ---- Held replies --------------------------------------------------------------------------------- */

/* Starts GET /held on port and waits until the server hands over its release. */
static void start_held(background_get *c, unsigned port, pthread_t *t)
{
    *c = (background_get){.port = port, .path = "/held"};
    atomic_store(&g.held_release, NULL);
    assert_int_equal(pthread_create(t, NULL, background_get_thread, c), 0);
    for (int i = 0; i < 1000 && !atomic_load(&g.held_release); i++)
        sleep_ms(5);
    assert_non_null(atomic_load(&g.held_release));
}

static void *release_held_later(void *arg)
{
    (void)arg;
    sleep_ms(200);
    atomic_load(&g.held_release)(atomic_load(&g.held_arg), 1);
    return NULL;
}

/* A held reply holds no server thread: with one thread, other requests are answered while it waits; it
 * goes out as it is when released, or as hold_failed made it; a stop waits for it. */
static void test_held_reply(void **state)
{
    (void)state;
    ok_http_server *s = NULL;
    assert_int_equal(start_server(&s, 1), OK_OK);
    unsigned port = ok_http_port(s);
    background_get c;
    pthread_t t;
    reply r;

    start_held(&c, port, &t);
    for (int i = 0; i < 3; i++) { /* the one thread is free */
        CURL *h = client(NULL, "127.0.0.1", port, "/echo", &r);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_int_equal(status_of(h), 200);
        curl_easy_cleanup(h);
    }
    assert_int_equal(c.status, 0); /* still held */
    atomic_load(&g.held_release)(atomic_load(&g.held_arg), 1);
    pthread_join(t, NULL);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.r.echo, "yes");
    json_t *doc = parse(&c.r);
    assert_string_equal(field(doc, "path"), "/held");
    json_decref(doc);

    start_held(&c, port, &t);
    atomic_load(&g.held_release)(atomic_load(&g.held_arg), 0);
    pthread_join(t, NULL);
    assert_int_equal(c.status, 503);
    assert_non_null(strstr(c.r.body, "HoldFailed"));

    /* A stop lets a held reply finish. */
    start_held(&c, port, &t);
    pthread_t releaser;
    assert_int_equal(pthread_create(&releaser, NULL, release_held_later, NULL), 0);
    ok_http_stop(s);
    pthread_join(releaser, NULL);
    pthread_join(t, NULL);
    assert_int_equal(c.status, 200);
    assert_int_equal(atomic_load(&g.callback_errors), 0);
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
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_healthz_and_metrics),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_stop_with_request_in_flight),
        cmocka_unit_test(test_held_reply),
        cmocka_unit_test(test_start_failures),
        cmocka_unit_test(test_response_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
