/* libFuzzer target: the data service's request parsers, through the real data API handlers
 * (src/http/api/data_*.c), a real data service and a real dev vault in a temporary directory. The first
 * input byte picks what the rest is: a path under /data/v1/tenants/ (GET or HEAD: tenant and object names,
 * percent-decoded as the server hands them over, sub-resources), a Range header on a stored 200 000-byte
 * object, or the listing's prefix / marker / maxresults (NUL-separated). Each call must answer a status the
 * API documents; JSON replies must parse and errors carry a code; a streamed GET body must deliver exactly
 * the bytes its Content-Length announced, and those must be the stored ones (a HEAD body is never read, as
 * the server never reads it). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/api/api.h"
#include "ownkey/dataservice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OBJECT_SIZE 200000u

static ok_api api;
static char token_header[128];
static uint8_t *object_bytes;

typedef struct {
    const char *range;
    const char *prefix, *marker, *maxresults;
} fuzz_impl;

static const char *fuzz_query(const ok_http_request *r, const char *name)
{
    const fuzz_impl *impl = r->impl;
    if (!strcmp(name, "prefix"))
        return impl->prefix;
    if (!strcmp(name, "marker"))
        return impl->marker;
    if (!strcmp(name, "maxresults"))
        return impl->maxresults;
    return NULL;
}

static const char *fuzz_header(const ok_http_request *r, const char *name)
{
    const fuzz_impl *impl = r->impl;
    if (strcasecmp(name, "Authorization") == 0)
        return token_header;
    if (strcasecmp(name, "Range") == 0)
        return impl->range;
    return NULL;
}

static void fuzz_headers(const ok_http_request *r, int (*each)(void *cls, const char *name, const char *value),
                         void *cls)
{
    (void)r;
    each(cls, "Authorization", token_header);
}

/* Drains a streamed body; it must be exactly body_size bytes of the stored object from `first`. */
static void drain(ok_http_response *resp, uint64_t first)
{
    uint8_t buf[65536];
    uint64_t pos = 0;
    for (;;) {
        int64_t n = resp->body_read(resp->body_cls, pos, buf, sizeof buf);
        if (n < 0)
            abort(); /* a stored object always reads back */
        if (n == 0)
            break;
        if (first + pos + (uint64_t)n > OBJECT_SIZE || memcmp(buf, object_bytes + first + pos, (size_t)n) != 0)
            abort();
        pos += (uint64_t)n;
    }
    if (resp->body_size != UINT64_MAX && pos != resp->body_size)
        abort();
    resp->body_free(resp->body_cls);
    resp->body_read = NULL;
}

static uint64_t range_first(const ok_http_response *resp)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (!strcasecmp(resp->header_names[i], "Content-Range"))
            return strtoull(resp->header_values[i] + strlen("bytes "), NULL, 10);
    return 0;
}

static void call(const char *method, const char *path, const uint8_t *body, size_t len, fuzz_impl *impl)
{
    ok_http_request req = {.method = method, .path = path, .body = len ? body : NULL, .body_len = len,
                           .client = "127.0.0.1:1", .request_id = "fuzz", .base_url = "https://localhost:8443",
                           .query = fuzz_query, .header = fuzz_header, .headers = fuzz_headers, .impl = impl};
    ok_http_response resp = {0};
    ok_buf_init(&resp.body, 0);
    ok_api_handle(&api, &req, &resp);
    if (resp.status < 200 || resp.status > 599)
        abort();
    if (resp.body_read && !strcmp(method, "HEAD")) {
        /* The server sends a HEAD reply's headers only and never reads its body. */
        if (resp.status != 200 && resp.status != 206)
            abort();
        resp.body_free(resp.body_cls);
        resp.body_read = NULL;
    } else if (resp.body_read) {
        if (resp.status != 200 && resp.status != 206)
            abort();
        drain(&resp, resp.status == 206 ? range_first(&resp) : 0);
    } else if (resp.body.len > 0) {
        json_t *doc = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
        if (!doc) {
            fprintf(stderr, "fuzz_data_request: %s %s: reply is not JSON\n", method, path);
            abort();
        }
        if (resp.status >= 400 && !json_is_string(json_object_get(json_object_get(doc, "error"), "code")))
            abort();
        json_decref(doc);
    } else if (resp.status >= 400 && strcmp(method, "HEAD") != 0) {
        abort(); /* an error always says what went wrong */
    }
    ok_http_response_free(&resp);
}

static void setup(void)
{
    char dir[] = "/tmp/ownkey-fuzz-data-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char vault_dir[64];
    snprintf(vault_dir, sizeof vault_dir, "%s/v", dir);
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result r = {0};
    ok_vault *v = NULL;
    if (ok_vault_init(vault_dir, &p, &r) != OK_OK || ok_vault_open(vault_dir, &v) != OK_OK)
        abort();
    snprintf(token_header, sizeof token_header, "Bearer %s", r.admin_token);
    ok_vault_init_result_clear(&r);
    ok_ds_config cfg = {.dir = vault_dir, .vault = v};
    ok_ds *ds = NULL;
    if (ok_ds_open(&cfg, &ds) != OK_OK)
        abort();
    api.vault = v;
    api.ds = ds;
    /* One tenant with a few objects, put through the data service itself. */
    ok_ds_tenant_settings service = {0};
    if (ok_ds_tenant_create(ds, "fz", &service, NULL) != OK_OK)
        abort();
    object_bytes = malloc(OBJECT_SIZE);
    if (!object_bytes)
        abort();
    for (size_t i = 0; i < OBJECT_SIZE; i++)
        object_bytes[i] = (uint8_t)(i * 131 + 7);
    static const char *const names[] = {"obj", "a/b", "a/c", "z"};
    for (size_t i = 0; i < 4; i++) {
        ok_ds_put *put = NULL;
        size_t n = i == 0 ? OBJECT_SIZE : 10;
        if (ok_ds_put_begin(ds, "fz", names[i], NULL, NULL, 0, n, &put) != OK_OK ||
            ok_ds_put_write(put, object_bytes, n) != OK_OK || ok_ds_put_commit(put, NULL) != OK_OK)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1 || size > 4096)
        return 0;
    char text[4096];
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    fuzz_impl impl = {0};
    switch (data[0] % 4) {
    case 0:
    case 1: { /* a path under /data/v1/tenants/ */
        char path[4200];
        snprintf(path, sizeof path, "/data/v1/tenants/%s", text);
        call(data[0] % 4 == 0 ? "GET" : "HEAD", path, NULL, 0, &impl);
        break;
    }
    case 2: /* a Range header on the stored object */
        impl.range = text;
        call("GET", "/data/v1/tenants/fz/objects/obj", NULL, 0, &impl);
        break;
    default: { /* the listing's query: prefix, marker, maxresults separated by NULs */
        const char *parts[3] = {NULL, NULL, NULL};
        size_t k = 0, start = 0;
        for (size_t i = 0; i <= size - 1 && k < 3; i++) {
            if (i == size - 1 || text[i] == '\0') {
                parts[k++] = text + start;
                start = i + 1;
            }
        }
        impl.prefix = parts[0];
        impl.marker = parts[1];
        impl.maxresults = parts[2];
        call("GET", "/data/v1/tenants/fz/objects", NULL, 0, &impl);
        break;
    }
    }
    return 0;
}
