/* The API entry point: splits the path, authenticates (the 401 challenge the Azure SDK expects, bearer
 * tokens), refuses calls to a sealed vault, checks api-version, dispatches to the handlers (the keys API
 * only with the vault role, /data/ to data_router.c), and writes one audit record per request, whatever
 * its outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/api/api.h"

static const char *const API_VERSIONS[] = {
    "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "7.6-preview.1", "7.6-preview.2", "2025-07-01", NULL,
};

double api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Splits "/a/b//c" into a, b, "", c (empty segments kept; a trailing "/" gives a last empty segment). */
static int split_path(ok_api_call *c)
{
    const char *path = c->req->path;
    if (path[0] != '/')
        return -1;
    c->path_copy = strdup(path + 1);
    if (!c->path_copy)
        return -1;
    char *p = c->path_copy;
    for (;;) {
        if (c->nsegments == sizeof c->segments / sizeof *c->segments)
            return -1;
        c->segments[c->nsegments++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return 0;
}

/* The challenge resource: configured, or the parent domain of the host the client used (so that the
 * SDK's check `host endsWith "." + resource host` passes for e.g. vault.example.internal). */
static void challenge(ok_api_call *c, const char *message)
{
    char resource[300];
    if (c->api->challenge_resource) {
        snprintf(resource, sizeof resource, "%s", c->api->challenge_resource);
    } else {
        const char *host = c->req->base_url + strlen("https://");
        char name[256];
        snprintf(name, sizeof name, "%s", host);
        char *colon = strrchr(name, ':');
        if (colon && !strchr(name, ']'))
            *colon = '\0';
        const char *dot = strchr(name, '.');
        int is_ip = strspn(name, "0123456789.") == strlen(name);
        snprintf(resource, sizeof resource, "https://%s", dot && !is_ip && strchr(dot + 1, '.') ? dot + 1 : name);
    }
    char value[700];
    snprintf(value, sizeof value, "Bearer authorization=\"%s\", resource=\"%s\"",
             c->api->challenge_authority ? c->api->challenge_authority : "https://login.ownkey.invalid/ownkey", resource);
    ok_http_response_header(c->resp, "WWW-Authenticate", value);
    api_error(c, 401, "Unauthorized", "%s", message);
}

int api_authenticate(ok_api_call *c)
{
    const char *auth = c->req->header(c->req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
        challenge(c, "AKV10000: Request is missing a Bearer or PoP token.");
        return 0;
    }
    ok_err rc = ok_vault_authenticate(c->api->vault, auth + 7, &c->who);
    if (rc == OK_ERR_SEALED) {
        api_error(c, 503, "VaultSealed", "the vault is sealed; an operator must unseal it");
        return 0;
    }
    if (rc != OK_OK) {
        challenge(c, "AKV10032: Invalid, expired or revoked token.");
        return 0;
    }
    c->authenticated = 1;
    return 1;
}

/* Key names as Azure has them: ^[0-9a-zA-Z-]{1,127}$. */
static int valid_key_name(const char *name)
{
    return ok_name_valid(name, OK_KEY_NAME_MAX, "-");
}

int api_allow(ok_api_call *c, const char *key_name, unsigned perm)
{
    if (key_name && !valid_key_name(key_name)) {
        api_error(c, 400, "BadParameter", "invalid key name \"%s\": use 1 to 127 letters, digits and dashes", key_name);
        return 0;
    }
    if (ok_vault_allowed(c->api->vault, &c->who, key_name, perm))
        return 1;
    api_error(c, 403, "Forbidden", "identity \"%s\" lacks the %s permission on %s%s%s", c->who.name,
              ok_perm_name(perm), key_name ? "key \"" : "the vault", key_name ? key_name : "", key_name ? "\"" : "");
    return 0;
}

static int check_api_version(ok_api_call *c)
{
    const char *v = c->req->query(c->req, "api-version");
    if (!v || !*v) {
        api_error(c, 400, "BadParameter", "the api-version query parameter is required");
        return 0;
    }
    for (size_t i = 0; API_VERSIONS[i]; i++)
        if (!strcmp(v, API_VERSIONS[i])) {
            c->api_version = API_VERSIONS[i];
            return 1;
        }
    api_error(c, 400, "BadParameter", "api-version \"%s\" is not supported (use 7.4, 7.5, 7.6 or 2025-07-01)", v);
    return 0;
}

static int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void not_found(ok_api_call *c)
{
    api_error(c, 404, "NotFound", "no such operation: %s %s", c->req->method, c->req->path);
}

static void route_keys(ok_api_call *c)
{
    const char *m = c->req->method, *const *s = c->segments;
    size_t n = c->nsegments;
    if (is(s[0], "rng") && n == 1 && is(m, "POST")) {
        api_random(c);
        return;
    }
    if (is(s[0], "deletedkeys")) {
        if (n == 1 && is(m, "GET")) {
            api_deleted_list(c);
            return;
        }
        if (n == 2 && is(m, "GET")) {
            api_deleted_get(c, s[1]);
            return;
        }
        if (n == 2 && is(m, "DELETE")) {
            api_deleted_purge(c, s[1]);
            return;
        }
        if (n == 3 && is(s[2], "recover") && is(m, "POST")) {
            api_deleted_recover(c, s[1]);
            return;
        }
        not_found(c);
        return;
    }
    /* s[0] == "keys" */
    if (n == 1 || (n == 2 && !*s[1])) {
        if (is(m, "GET")) {
            api_key_list(c);
            return;
        }
        not_found(c);
        return;
    }
    const char *name = s[1];
    if (n == 2) {
        if (is(name, "restore") && is(m, "POST")) {
            api_key_restore(c);
            return;
        }
        if (is(m, "PUT")) {
            api_key_import(c, name);
            return;
        }
        if (is(m, "DELETE")) {
            api_key_delete(c, name);
            return;
        }
        if (is(m, "GET")) {
            api_key_get(c, name, NULL);
            return;
        }
        if (is(m, "PATCH")) {
            api_key_update(c, name, NULL);
            return;
        }
        not_found(c);
        return;
    }
    if (n == 3) {
        const char *third = s[2];
        if (is(m, "POST") && is(third, "create")) {
            api_key_create(c, name);
            return;
        }
        if (is(m, "POST") && is(third, "backup")) {
            api_key_backup(c, name);
            return;
        }
        if (is(m, "POST") && is(third, "rotate")) {
            api_key_rotate(c, name);
            return;
        }
        if (is(third, "rotationpolicy")) {
            if (is(m, "GET")) {
                api_rotation_policy_get(c, name);
                return;
            }
            if (is(m, "PUT")) {
                api_rotation_policy_set(c, name);
                return;
            }
            not_found(c);
            return;
        }
        if (is(m, "GET") && is(third, "versions")) {
            api_key_versions(c, name);
            return;
        }
        if (is(m, "GET")) {
            api_key_get(c, name, third);
            return;
        }
        if (is(m, "PATCH")) {
            api_key_update(c, name, third);
            return;
        }
        not_found(c);
        return;
    }
    if (n == 4 && is(m, "POST")) {
        api_key_crypto(c, name, s[2], s[3]);
        return;
    }
    not_found(c);
}

/* Drops whatever the handler prepared (extra headers, a body produced on demand) before an error replaces
 * the response. */
static void discard_response(ok_http_response *resp)
{
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->header_values[i]);
        resp->header_values[i] = NULL;
        resp->header_names[i] = NULL;
    }
    resp->header_count = 0;
    if (resp->body_free)
        resp->body_free(resp->body_cls);
    resp->body_read = NULL;
    resp->body_free = NULL;
    resp->body_cls = NULL;
    resp->body_size = 0;
    resp->content_type = NULL;
    ok_buf_reset(&resp->body);
}

/* No unaudited key use: when its line cannot be made durable, the response is replaced, whatever it was. */
static void audit_failed(ok_http_response *resp)
{
    discard_response(resp);
    ok_api_call c = {.resp = resp};
    api_error(&c, 500, "AuditFailure", "the audit log could not be written; the request was refused");
}

/* A reply held until its audit line is durable (the server holds it without holding a thread). */
typedef struct {
    ok_vault *vault;
    ok_audit_ticket ticket;
    void (*release)(void *arg, int ok);
    void *arg;
} audit_hold;

static void audit_hold_done(void *cls, ok_err rc)
{
    audit_hold *h = cls;
    void (*release)(void *, int) = h->release;
    void *arg = h->arg;
    free(h);
    release(arg, rc == OK_OK);
}

static void audit_hold_start(void *cls, void (*release)(void *arg, int ok), void *arg)
{
    audit_hold *h = cls;
    h->release = release;
    h->arg = arg;
    ok_vault_audit_when_durable(h->vault, h->ticket, audit_hold_done, h);
}

void api_audit(ok_api_call *c, double started)
{
    ok_audit_record r = {
        .request_id = c->req->request_id,
        .identity = c->authenticated ? c->who.name : NULL,
        .client = c->req->client,
        .operation = c->resp->operation ? c->resp->operation : "unknown",
        .key_name = c->key_name,
        .key_version = c->key_version,
        .status = c->resp->status,
        .error_code = c->error_code,
        .latency_ms = api_now_ms() - started,
    };
    ok_vault *v = c->api->vault;
    ok_audit_ticket t;
    ok_err rc = ok_vault_audit_append(v, &r, &t);
    if (rc == OK_OK && c->req->can_hold) {
        audit_hold *h = malloc(sizeof *h);
        if (h) { /* the server sends the reply once the line is durable (or audit_failed's instead) */
            *h = (audit_hold){.vault = v, .ticket = t};
            c->resp->hold = audit_hold_start;
            c->resp->hold_cls = h;
            c->resp->hold_failed = audit_failed;
            return;
        }
    }
    if (rc == OK_OK)
        rc = ok_vault_audit_wait(v, t);
    if (rc != OK_OK)
        audit_failed(c->resp);
}

void ok_api_handle(void *ctx, const ok_http_request *req, ok_http_response *resp)
{
    double started = api_now_ms();
    ok_api_call c = {.api = ctx, .req = req, .resp = resp};
    ok_err_clear();
    if (!strcmp(req->path, "/data") || !strncmp(req->path, "/data/", 6)) {
        /* Object names hold slashes: the data API splits its paths itself. */
        resp->operation = "unknown";
        api_data_route(&c);
    } else if (split_path(&c) != 0 || c.nsegments == 0) {
        resp->operation = "unknown";
        not_found(&c);
    } else if (is(c.segments[0], "ownkey")) {
        if (!api_admin_route(&c)) {
            resp->operation = "unknown";
            not_found(&c);
        }
    } else if ((is(c.segments[0], "keys") || is(c.segments[0], "deletedkeys") || is(c.segments[0], "rng")) &&
               !c.api->vault_role_off) {
        resp->operation = "unknown";
        if (api_authenticate(&c) && check_api_version(&c))
            route_keys(&c);
    } else {
        resp->operation = "unknown";
        not_found(&c);
    }
    api_audit(&c, started);
    free(c.path_copy);
}
