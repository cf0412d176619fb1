/* The vault HTTPS client on libcurl: one easy handle per client (so the TLS connection is kept alive and
 * reused between calls), https only, TLS 1.2+, peer and host verified (against ca_file, ca_pem or the
 * system), no redirects, bounded response bodies and headers, the api-version on keys API paths, the
 * response header lookup, and Azure error bodies mapped to ok_err. Streamed transfers are
 * vault_transfer.c's. Owns the transport only; request and response documents belong to the callers (the
 * vault provider, the CLI). Nothing here logs; the Authorization header is zeroized before it is freed. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ownkey/vault_client.h"
#include "providers/vault_client_internal.h"
#include "providers/vault_internal.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 60000L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    ok_vault_client *c = ctx;
    size_t n = size * nmemb;
    if (ok_buf_put(&c->in, data, n) != OK_OK)
        return 0; /* CURLE_WRITE_ERROR; the buffer's limit was reached */
    return n;
}

/* Keeps the header lines of the last response (a 100 Continue's are dropped when the next status line
 * comes), each as "Name: value\r\n"; the status line and the blank line are not kept. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ctx)
{
    ok_vault_client *c = ctx;
    size_t n = size * nmemb, len = n;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        ok_buf_reset(&c->head);
        const char *sp = memchr(line, ' ', len);
        c->head_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    if (len == 0)
        return n;
    if (ok_buf_put(&c->head, line, len) != OK_OK || ok_buf_put(&c->head, "\r\n", 2) != OK_OK) {
        c->head_overflow = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

void vault_client_free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        ok_zeroize(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static ok_err add_header(ok_vault_client *c, const char *line)
{
    struct curl_slist *h = curl_slist_append(c->headers, line);
    if (!h)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    c->headers = h;
    return OK_OK;
}

static ok_err set_headers(ok_vault_client *c, const char *token)
{
    OK_GUARD(add_header(c, "Accept: application/json"));
    OK_GUARD(add_header(c, "Content-Type: application/json"));
    OK_GUARD(add_header(c, "Expect:")); /* no 100-continue round trip */
    if (!token || !*token)
        return OK_OK;
    for (const char *p = token; *p; p++)
        if (!isgraph((unsigned char)*p))
            return ok_fail(OK_ERR_INVALID_ARG, "the token contains a space or control character");
    size_t n = strlen(token) + sizeof "Authorization: Bearer ";
    char *line = malloc(n);
    if (!line)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    snprintf(line, n, "Authorization: Bearer %s", token);
    ok_err rc = add_header(c, line);
    ok_zeroize(line, n);
    free(line);
    return rc;
}

static ok_err configure(ok_vault_client *c, const ok_vault_client_config *cfg)
{
    CURL *h = c->curl;
    long connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    long total_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    CURLcode e = CURLE_OK;
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (e == CURLE_OK && cfg->ca_pem && *cfg->ca_pem) {
        /* Only this CA: neither the CA file nor the system's directory of CAs. */
        struct curl_blob blob = {.data = (void *)cfg->ca_pem, .len = strlen(cfg->ca_pem), .flags = CURL_BLOB_COPY};
        e = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_CAINFO, (char *)NULL);
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL);
    } else if (e == CURLE_OK && cfg->ca_file && *cfg->ca_file) {
        e = curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_USERAGENT, "ownkey/0.1.0");
    if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    if (e != CURLE_OK)
        return ok_fail(OK_ERR_IO, "cannot configure the HTTPS client: %s", curl_easy_strerror(e));
    return OK_OK;
}

void vault_client_defaults(ok_vault_client *c)
{
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
}

ok_err ok_vault_client_new(const ok_vault_client_config *cfg, ok_vault_client **out)
{
    *out = NULL;
    if (!cfg || !cfg->addr || !*cfg->addr)
        return ok_fail(OK_ERR_INVALID_ARG, "no vault address: give --addr or set OWNKEY_ADDR (https://HOST:PORT)");
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return ok_fail(OK_ERR_IO, "cannot initialize libcurl: %s", curl_easy_strerror(curl_init_rc));
    ok_vault_client *c = calloc(1, sizeof *c);
    if (!c)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_buf_init(&c->in, OK_VAULT_MAX_RESPONSE);
    ok_buf_init(&c->head, VAULT_MAX_HEADERS - 1);
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    ok_err rc = vault_origin_parse(cfg->addr, strlen(cfg->addr), 1, c->addr);
    if (rc == OK_OK) {
        c->curl = curl_easy_init();
        if (!c->curl)
            rc = ok_fail(OK_ERR_NOMEM, "cannot create an HTTPS handle");
    }
    if (rc == OK_OK)
        rc = set_headers(c, cfg->token);
    if (rc == OK_OK)
        rc = configure(c, cfg);
    if (rc != OK_OK) {
        ok_vault_client_free(c);
        return rc;
    }
    *out = c;
    return OK_OK;
}

void ok_vault_client_free(ok_vault_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    vault_client_free_headers(c->headers);
    ok_buf_free(&c->in);
    ok_buf_free(&c->head);
    free(c);
}

const char *ok_vault_client_addr(const ok_vault_client *c)
{
    return c->addr;
}

void ok_vault_response_clear(ok_vault_response *r)
{
    if (!r)
        return;
    if (r->body) {
        ok_zeroize(r->body, r->body_len);
        free(r->body);
    }
    if (r->headers) {
        ok_zeroize(r->headers, r->headers_len);
        free(r->headers);
    }
    memset(r, 0, sizeof *r);
}

/* Keys API paths carry an api-version; the management API (/ownkey/...) takes none. */
static int is_keys_path(const char *path)
{
    static const char *const prefixes[] = {"/keys", "/deletedkeys", "/rng"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(path, prefixes[i], n) && (path[n] == '\0' || path[n] == '/' || path[n] == '?'))
            return 1;
    }
    return 0;
}

ok_err vault_client_url(const ok_vault_client *c, const char *path, char *url, size_t len)
{
    if (path[0] != '/')
        return ok_fail(OK_ERR_INVALID_ARG, "request path \"%s\" does not start with /", path);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
            return ok_fail(OK_ERR_INVALID_ARG, "request path has a character that must be escaped");
    const char *version = "";
    if (is_keys_path(path) && !strstr(path, "api-version="))
        version = strchr(path, '?') ? "&api-version=" OK_VAULT_API_VERSION : "?api-version=" OK_VAULT_API_VERSION;
    int n = snprintf(url, len, "%s%s%s", c->addr, path, version);
    if (n < 0 || (size_t)n >= len)
        return ok_fail(OK_ERR_LIMIT, "request URL too long");
    return OK_OK;
}

static ok_err set_method(CURL *h, const char *method, const char *body)
{
    CURLcode e = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    int post = !strcmp(method, "POST");
    if (body || post) {
        const char *data = body ? body : "";
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(data));
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    } else {
        if (e == CURLE_OK) e = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (e == CURLE_OK && !post && strcmp(method, "GET"))
        e = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (e != CURLE_OK)
        return ok_fail(OK_ERR_IO, "cannot prepare the request: %s", curl_easy_strerror(e));
    return OK_OK;
}

ok_err vault_client_transport_error(ok_vault_client *c, CURLcode e)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(e);
    if (c->head_overflow)
        return ok_fail(OK_ERR_LIMIT, "the vault's response headers are larger than %u bytes", VAULT_MAX_HEADERS);
    switch (e) {
    case CURLE_WRITE_ERROR:
        return ok_fail(OK_ERR_LIMIT, "the vault's response is larger than %u bytes", OK_VAULT_MAX_RESPONSE);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        return ok_fail(OK_ERR_IO, "TLS with %s failed: %s (is OWNKEY_CACERT / --cacert the vault's CA?)", c->addr,
                       detail);
    case CURLE_OPERATION_TIMEDOUT:
        return ok_fail(OK_ERR_IO, "no answer from %s in time: %s", c->addr, detail);
    default:
        return ok_fail(OK_ERR_IO, "cannot reach the vault at %s: %s", c->addr, detail);
    }
}

void vault_client_reset(ok_vault_client *c)
{
    ok_buf_reset(&c->in);
    ok_buf_reset(&c->head);
    c->head_status = 0;
    c->head_overflow = false;
    c->errbuf[0] = '\0';
}

/* A NUL-terminated malloc'ed copy of b (NULL when out of memory). */
static char *copy_text(const ok_buf *b)
{
    char *t = malloc(b->len + 1);
    if (!t)
        return NULL;
    if (b->len)
        memcpy(t, b->data, b->len);
    t[b->len] = '\0';
    return t;
}

ok_err vault_client_respond(ok_vault_client *c, long status, ok_vault_response *resp)
{
    resp->status = status;
    resp->body = copy_text(&c->in);
    resp->body_len = c->in.len;
    if (c->head.len) {
        resp->headers = copy_text(&c->head);
        resp->headers_len = resp->headers ? c->head.len : 0;
    }
    bool missing = !resp->body || (c->head.len && !resp->headers);
    vault_client_reset(c);
    if (missing) {
        ok_vault_response_clear(resp);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    return ok_vault_error_from_response(status, resp->body, resp->body_len, resp->error_code, sizeof resp->error_code);
}

ok_err ok_vault_client_request(ok_vault_client *c, const char *method, const char *path, const char *json_body,
                               ok_vault_response *resp)
{
    memset(resp, 0, sizeof *resp);
    char url[VAULT_MAX_URL];
    OK_GUARD(vault_client_url(c, path, url, sizeof url));
    OK_GUARD(set_method(c->curl, method, json_body));
    if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK)
        return ok_fail(OK_ERR_INVALID_ARG, "bad request URL");
    vault_client_reset(c);
    CURLcode e = curl_easy_perform(c->curl);
    /* POSTFIELDS points at the caller's body: forget it before the caller frees it. */
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (char *)NULL);
    if (e != CURLE_OK) {
        ok_err rc = vault_client_transport_error(c, e);
        vault_client_reset(c);
        return rc;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    return vault_client_respond(c, status, resp);
}

const char *ok_vault_response_header(const ok_vault_response *r, const char *name, char *buf, size_t len)
{
    if (!r || !r->headers || !name || !buf || !len)
        return NULL;
    size_t name_len = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        const char *colon = memchr(line, ':', line_len);
        if (colon && (size_t)(colon - line) == name_len && !strncasecmp(line, name, name_len)) {
            const char *v = colon + 1, *v_end = line + line_len;
            while (v < v_end && (*v == ' ' || *v == '\t'))
                v++;
            while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                v_end--;
            size_t v_len = (size_t)(v_end - v);
            if (v_len + 1 > len)
                return NULL;
            memcpy(buf, v, v_len);
            buf[v_len] = '\0';
            return buf;
        }
        line += line_len + (end ? 2 : 0);
    }
    return NULL;
}

/* Copies a server-chosen string for a terminal: printable ASCII only. */
static void copy_printable(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < len; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

static ok_err status_error(long status)
{
    switch (status) {
    case 400: return OK_ERR_INVALID_ARG;
    case 401: return OK_ERR_AUTH;
    case 403: return OK_ERR_FORBIDDEN;
    case 404: return OK_ERR_NOT_FOUND;
    case 409: return OK_ERR_CONFLICT;
    case 413: return OK_ERR_LIMIT;
    case 503: return OK_ERR_SEALED;
    default: return OK_ERR_IO;
    }
}

ok_err ok_vault_error_from_response(long status, const char *body, size_t body_len, char *code, size_t code_len)
{
    if (code && code_len)
        code[0] = '\0';
    if (status >= 200 && status < 300)
        return OK_OK;
    char c[64] = "", m[400] = "";
    json_t *doc = body && body_len ? json_loadb(body, body_len, 0, NULL) : NULL;
    json_t *error = json_object_get(doc, "error");
    json_t *jc = json_object_get(error, "code"), *jm = json_object_get(error, "message");
    if (json_is_string(jc))
        copy_printable(c, sizeof c, json_string_value(jc));
    if (json_is_string(jm))
        copy_printable(m, sizeof m, json_string_value(jm));
    json_decref(doc);
    if (code && code_len)
        copy_printable(code, code_len, c);
    ok_err err = status_error(status);
    if (c[0] && m[0])
        return ok_fail(err, "%s: %s", c, m);
    if (c[0])
        return ok_fail(err, "%s: HTTP %ld", c, status);
    return ok_fail(err, "the vault answered HTTP %ld%s", status, status == 503 ? " (unavailable or sealed)" : "");
}
