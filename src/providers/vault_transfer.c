/* Streamed transfers for the vault HTTPS client (vault_client.c): a request body pulled from the caller's
 * reader as curl sends it (Content-Length when the size is known, else chunked), and a 2xx response body
 * pushed to the caller's writer as it arrives, both in constant memory on the client's keep-alive handle.
 * A non-2xx body is collected (bounded) for the error mapping, as for any request. Owns the options a
 * transfer sets and their reset afterwards; the client, URLs, headers and errors are vault_client.c's.
 * Nothing here logs; the Authorization line is copied from the client's list and zeroized when freed. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "providers/vault_client_internal.h"

/* Uploads from this size on (or of unknown size) wait for 100 Continue, so that a refusal (401, 403,
 * 404) costs a round trip instead of the whole body. */
#define EXPECT_CONTINUE_FROM (1024u * 1024u)
#define METHOD_MAX 16

typedef struct {
    ok_vault_client *c;
    const ok_vault_upload *up;
    const ok_vault_download *down;
    uint64_t sent;
    ok_err failed; /* the reader's or writer's error, which stopped the transfer */
} transfer;

static size_t upload_read(char *buf, size_t size, size_t nmemb, void *ctx)
{
    transfer *t = ctx;
    size_t len = size * nmemb;
    bool sized = t->up->size != UINT64_MAX;
    if (sized) {
        uint64_t left = t->up->size - t->sent;
        if (left == 0)
            return 0; /* all announced bytes are out; the reader is not asked again */
        if (len > left)
            len = (size_t)left;
    }
    size_t got = 0;
    ok_err rc = t->up->read(t->up->ctx, (uint8_t *)buf, len, &got);
    if (rc == OK_OK && got > len)
        rc = ok_fail(OK_ERR_INVALID_ARG, "the upload's reader gave more bytes than asked for");
    if (rc == OK_OK && got == 0 && sized)
        rc = ok_fail(OK_ERR_TRUNCATED, "the upload ended after %" PRIu64 " of %" PRIu64 " bytes", t->sent,
                     t->up->size);
    if (rc != OK_OK) {
        t->failed = rc;
        return CURL_READFUNC_ABORT;
    }
    t->sent += got;
    return got;
}

static size_t download_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    transfer *t = ctx;
    size_t n = size * nmemb;
    if (t->c->head_status >= 200 && t->c->head_status < 300) {
        if (!t->down)
            return n;
        ok_err rc = t->down->write(t->down->ctx, (const uint8_t *)data, n);
        if (rc != OK_OK) {
            t->failed = rc;
            return 0;
        }
        return n;
    }
    if (ok_buf_put(&t->c->in, data, n) != OK_OK)
        return 0; /* CURLE_WRITE_ERROR: the error body is past OK_VAULT_MAX_RESPONSE */
    return n;
}

/* "Name: value" with a token for a name and nothing that could end the line. */
static bool header_line_valid(const char *line)
{
    size_t name_len = strcspn(line, ":");
    if (name_len == 0 || line[name_len] != ':' || strpbrk(line, "\r\n"))
        return false;
    for (size_t i = 0; i < name_len; i++)
        if (!strchr("!#$%&'*+-.^_`|~", line[i]) && !((line[i] >= '0' && line[i] <= '9') ||
                                                     (line[i] >= 'a' && line[i] <= 'z') ||
                                                     (line[i] >= 'A' && line[i] <= 'Z')))
            return false;
    return true;
}

static bool header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return !strncasecmp(line, name, n) && line[n] == ':';
}

static ok_err append(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    *list = l;
    return OK_OK;
}

/* The transfer's header list: the caller's lines, the client's Authorization, and the defaults the caller
 * did not set (Expect, and Content-Type for an upload). */
static ok_err build_headers(const ok_vault_client *c, const char *const *extra, size_t count,
                            const ok_vault_upload *up, struct curl_slist **out)
{
    static const char *const reserved[] = {"Authorization", "Host", "Content-Length", "Transfer-Encoding"};
    struct curl_slist *list = NULL;
    bool has_type = false, has_expect = false;
    ok_err rc = OK_OK;
    for (size_t i = 0; rc == OK_OK && i < count; i++) {
        if (!extra[i] || !header_line_valid(extra[i])) {
            rc = ok_fail(OK_ERR_INVALID_ARG, "request header %zu is not a \"Name: value\" line", i);
            break;
        }
        for (size_t j = 0; j < sizeof reserved / sizeof *reserved; j++)
            if (header_is(extra[i], reserved[j]))
                rc = ok_fail(OK_ERR_INVALID_ARG, "the %s request header is the client's to set", reserved[j]);
        has_type = has_type || header_is(extra[i], "Content-Type");
        has_expect = has_expect || header_is(extra[i], "Expect");
        if (rc == OK_OK)
            rc = append(&list, extra[i]);
    }
    for (const struct curl_slist *p = c->headers; rc == OK_OK && p; p = p->next)
        if (header_is(p->data, "Authorization"))
            rc = append(&list, p->data);
    if (rc == OK_OK && !has_expect)
        rc = append(&list, up && (up->size == UINT64_MAX || up->size >= EXPECT_CONTINUE_FROM) ? "Expect: 100-continue"
                                                                                               : "Expect:");
    if (rc == OK_OK && up && !has_type)
        rc = append(&list, "Content-Type: application/octet-stream");
    if (rc != OK_OK) {
        vault_client_free_headers(list);
        return rc;
    }
    *out = list;
    return OK_OK;
}

static bool method_valid(const char *m)
{
    size_t n = strlen(m);
    return n > 0 && n <= METHOD_MAX && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

/* The options of one transfer. The total timeout becomes a stall timeout: a large object may take long,
 * but never timeout_ms without a byte. */
static CURLcode set_transfer(ok_vault_client *c, transfer *t, const char *method, const char *url,
                             struct curl_slist *list)
{
    CURL *h = c->curl;
    long stall_s = c->timeout_ms / 1000 > 0 ? c->timeout_ms / 1000 : 1;
    bool head = !strcmp(method, "HEAD");
    bool plain = t->up ? !strcmp(method, "PUT") : (head || !strcmp(method, "GET"));
    CURLcode e = curl_easy_setopt(h, CURLOPT_URL, url);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, download_write);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
    if (t->up) {
        curl_off_t size = t->up->size == UINT64_MAX ? (curl_off_t)-1 : (curl_off_t)t->up->size;
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_READDATA, t);
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
    } else if (head) {
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, plain ? NULL : method);
    return e;
}

/* Back to what ok_vault_client_request expects of the handle. */
static void reset_transfer(ok_vault_client *c)
{
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, (curl_read_callback)NULL);
    curl_easy_setopt(h, CURLOPT_READDATA, (void *)NULL);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 0L);
    vault_client_defaults(c);
}

ok_err ok_vault_client_transfer(ok_vault_client *c, const char *method, const char *path,
                                const char *const *headers, size_t header_count, const ok_vault_upload *up,
                                const ok_vault_download *down, ok_vault_response *resp)
{
    if (!resp)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_client_transfer: no response");
    memset(resp, 0, sizeof *resp);
    if (!c || !method || !path || (header_count && !headers) || (up && !up->read) || (down && !down->write))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_client_transfer: missing argument");
    if (!method_valid(method) || (up && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_client_transfer: bad method");
    char url[VAULT_MAX_URL];
    OK_GUARD(vault_client_url(c, path, url, sizeof url));
    struct curl_slist *list = NULL;
    OK_GUARD(build_headers(c, headers, header_count, up, &list));

    transfer t = {.c = c, .up = up, .down = down};
    vault_client_reset(c);
    CURLcode e = set_transfer(c, &t, method, url, list);
    if (e == CURLE_OK)
        e = curl_easy_perform(c->curl);
    reset_transfer(c);
    vault_client_free_headers(list);

    long status = c->head_status;
    if (t.failed != OK_OK) {
        /* The caller's reader or writer stopped it; its message stands. */
        vault_client_reset(c);
        resp->status = status;
        return t.failed;
    }
    /* A refusal while the body was still going out: the server answered and closed, which curl reports as a
     * send or receive error. The answer is what counts. */
    bool answered_early = t.up && status >= 300 && (e == CURLE_SEND_ERROR || e == CURLE_RECV_ERROR);
    if (e != CURLE_OK && !answered_early) {
        ok_err rc = vault_client_transport_error(c, e);
        vault_client_reset(c);
        return rc;
    }
    return vault_client_respond(c, status, resp);
}
