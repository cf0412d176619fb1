/* libFuzzer target: the daemon's request parsers, through the real API handlers (src/http/api) and a real
 * dev vault in a temporary directory. The first input byte picks a route (create, import, update, the
 * cryptographic operations, rotation policy, restore, random bytes, listing with a paging token,
 * identities and policies, unseal); the rest is the request body, or the $skiptoken for listing. Each
 * call must return a well-formed JSON reply (or an empty 204) with a status the API documents. Routes
 * that would end the session (seal, delete, purge) are left out. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *method;
    const char *path;
} route;

static const route ROUTES[] = {
    {"POST", "/keys/fz/create"},       {"PUT", "/keys/fz"},
    {"PATCH", "/keys/oct1/"},          {"POST", "/keys/oct1//wrapkey"},
    {"POST", "/keys/oct1//unwrapkey"}, {"POST", "/keys/oct1//encrypt"},
    {"POST", "/keys/oct1//decrypt"},   {"POST", "/keys/rsa1//decrypt"},
    {"POST", "/keys/rsa1//unwrapkey"}, {"POST", "/keys/rsa1//sign"},
    {"POST", "/keys/rsa1//verify"},    {"POST", "/keys/ec1//sign"},
    {"POST", "/keys/ec1//verify"},     {"PUT", "/keys/oct1/rotationpolicy"},
    {"POST", "/keys/restore"},         {"POST", "/rng"},
    {"GET", "/keys"},                  {"GET", "/keys/oct1/versions"},
    {"POST", "/ownkey/v1/identities"}, {"PUT", "/ownkey/v1/identities/fz/policies"},
    {"POST", "/ownkey/v1/unseal"},
};
#define NROUTES (sizeof ROUTES / sizeof *ROUTES)

static ok_api api;
static char token_header[128];

typedef struct {
    const char *skiptoken;
} fuzz_impl;

static const char *fuzz_query(const ok_http_request *r, const char *name)
{
    const fuzz_impl *impl = r->impl;
    if (!strcmp(name, "api-version"))
        return "7.5";
    if (!strcmp(name, "$skiptoken"))
        return impl->skiptoken;
    return NULL;
}

static const char *fuzz_header(const ok_http_request *r, const char *name)
{
    (void)r;
    return strcasecmp(name, "Authorization") == 0 ? token_header : NULL;
}

static void call(const char *method, const char *path, const uint8_t *body, size_t len, const char *skiptoken)
{
    fuzz_impl impl = {.skiptoken = skiptoken};
    ok_http_request req = {.method = method, .path = path, .body = len ? body : NULL, .body_len = len,
                           .client = "127.0.0.1:1", .request_id = "fuzz", .base_url = "https://localhost:8443",
                           .query = fuzz_query, .header = fuzz_header, .impl = &impl};
    ok_http_response resp = {0};
    ok_buf_init(&resp.body, 0);
    ok_api_handle(&api, &req, &resp);
    if (resp.status < 200 || resp.status > 599)
        abort();
    if (resp.status != 204) {
        json_t *doc = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
        if (!doc) {
            fprintf(stderr, "fuzz_api_request: %s %s: reply is not JSON\n", method, path);
            abort();
        }
        if (resp.status >= 400 && !json_is_string(json_object_get(json_object_get(doc, "error"), "code")))
            abort();
        json_decref(doc);
    }
    ok_http_response_free(&resp);
}

static void setup(void)
{
    char dir[] = "/tmp/ownkey-fuzz-api-XXXXXX";
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
    api.vault = v;
    static const char *const seeds[][2] = {
        {"/keys/oct1/create", "{\"kty\":\"oct\",\"key_size\":256}"},
        {"/keys/rsa1/create", "{\"kty\":\"RSA\",\"key_size\":2048}"},
        {"/keys/ec1/create", "{\"kty\":\"EC\",\"crv\":\"P-256\"}"},
    };
    for (size_t i = 0; i < 3; i++)
        call("POST", seeds[i][0], (const uint8_t *)seeds[i][1], strlen(seeds[i][1]), NULL);
    static const char identity[] = "{\"name\":\"fz\"}";
    call("POST", "/ownkey/v1/identities", (const uint8_t *)identity, strlen(identity), NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1 || size > 64 * 1024)
        return 0;
    const route *r = &ROUTES[data[0] % NROUTES];
    if (!strcmp(r->method, "GET")) {
        char token[512];
        size_t n = size - 1 < sizeof token - 1 ? size - 1 : sizeof token - 1;
        memcpy(token, data + 1, n);
        token[n] = '\0';
        call(r->method, r->path, NULL, 0, token);
    } else {
        call(r->method, r->path, data + 1, size - 1, NULL);
    }
    return 0;
}
