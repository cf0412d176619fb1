/* The data API's router (/data/v1/): splits the path (object names hold slashes, so not with the keys
 * API's splitter), authenticates as the keys API does, dispatches to the tenant and object handlers, and
 * owns what they share: the tenant-name and permission checks, the mapping of the data service's errors
 * to HTTP statuses and codes, and the JSON documents. The audit record is written by the router's entry
 * point (router.c) after the handler returns; the streamed PUT is data_put.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/api/data_api.h"

static int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* ---- Paths --------------------------------------------------------------------------------------- */

int data_path_parse(const char *path, data_path *out)
{
    static const char ROOT[] = "/data/v1/tenants";
    memset(out, 0, sizeof *out);
    if (strncmp(path, ROOT, sizeof ROOT - 1) != 0)
        return 0;
    const char *p = path + sizeof ROOT - 1;
    if (!*p || is(p, "/")) {
        out->kind = DATA_PATH_TENANTS;
        return 0;
    }
    if (*p != '/')
        return 0;
    out->copy = strdup(p + 1);
    if (!out->copy)
        return -1;
    out->tenant = out->copy;
    char *slash = strchr(out->copy, '/');
    if (!slash) {
        out->kind = DATA_PATH_TENANT;
        return 0;
    }
    *slash = '\0';
    const char *rest = slash + 1;
    if (!*rest)
        out->kind = DATA_PATH_TENANT;
    else if (is(rest, "customer-key"))
        out->kind = DATA_PATH_CUSTOMER_KEY;
    else if (is(rest, "rekey"))
        out->kind = DATA_PATH_REKEY;
    else if (is(rest, "objects") || is(rest, "objects/"))
        out->kind = DATA_PATH_OBJECTS;
    else if (!strncmp(rest, "objects/", 8)) {
        out->kind = DATA_PATH_OBJECT;
        out->object = rest + 8;
    }
    return 0;
}

void data_path_free(data_path *p)
{
    free(p->copy);
    memset(p, 0, sizeof *p);
}

/* ---- Checks -------------------------------------------------------------------------------------- */

int data_allow(ok_api_call *c, const char *tenant, unsigned perm)
{
    if (tenant && !ok_ds_tenant_name_valid(tenant)) {
        /* Not echoed: it may be anything, and the error body must stay valid JSON. */
        api_error(c, 400, "BadParameter", "invalid tenant name: use 1 to %d letters, digits and dashes",
                  OK_DS_TENANT_NAME_MAX);
        return 0;
    }
    c->key_name = tenant;
    if (ok_vault_allowed(c->api->vault, &c->who, tenant, perm))
        return 1;
    api_error(c, 403, "Forbidden", "identity \"%s\" lacks the %s permission on %s%s%s", c->who.name, ok_perm_name(perm),
              tenant ? "tenant \"" : "all tenants", tenant ? tenant : "", tenant ? "\"" : "");
    return 0;
}

int data_object_name_ok(ok_api_call *c, const char *object)
{
    if (!object || !ok_ds_object_name_valid(object)) {
        api_error(c, 400, "BadParameter",
                  "invalid object name: use 1 to %d bytes of UTF-8 without control characters", OK_DS_OBJECT_NAME_MAX);
        return 0;
    }
    c->key_version = object;
    return 1;
}

/* ---- Errors -------------------------------------------------------------------------------------- */

static void locked(ok_api_call *c, const char *tenant, const char *cause)
{
    ok_ds_tenant_info t;
    if (tenant && ok_ds_tenant_get(c->api->ds, tenant, &t) == OK_OK && t.state == OK_DS_LOCKED && t.reason_code[0])
        api_error(c, 403, "TenantLocked", "tenant %s is locked: %s: %s", tenant, t.reason_code, t.reason[0] ? t.reason : cause);
    else
        api_error(c, 403, "TenantLocked", "tenant %s is locked: %s", tenant ? tenant : "?", cause);
}

void data_fail(ok_api_call *c, ok_err err, const char *tenant, const char *object, const char *message)
{
    /* A copy: the look-ups below may replace the thread's message. */
    char msg[OK_DS_REASON_MAX + 64];
    if (!message)
        message = ok_err_message();
    snprintf(msg, sizeof msg, "%s", message && *message ? message : ok_err_name(err));
    ok_ds_tenant_info t;
    switch (err) {
    case OK_ERR_NOT_FOUND:
        if (object && tenant && ok_ds_tenant_get(c->api->ds, tenant, &t) == OK_OK)
            api_error(c, 404, "ObjectNotFound", "tenant \"%s\" has no object \"%s\"", tenant, object);
        else
            api_error(c, 404, "TenantNotFound", "no tenant \"%s\"", tenant ? tenant : "");
        return;
    case OK_ERR_LOCKED: locked(c, tenant, msg); return;
    case OK_ERR_CONFLICT: api_error(c, 409, "Conflict", "%s", msg); return;
    case OK_ERR_FORBIDDEN: api_error(c, 403, "Forbidden", "%s", msg); return;
    case OK_ERR_SEALED: api_error(c, 503, "VaultSealed", "%s", msg); return;
    case OK_ERR_KEY: api_error(c, 400, "CustomerKeyInvalid", "%s", msg); return;
    case OK_ERR_TRUNCATED: api_error(c, 400, "IncompleteBody", "%s", msg); return;
    case OK_ERR_INVALID_ARG:
    case OK_ERR_FORMAT:
    case OK_ERR_LIMIT:
    case OK_ERR_UNSUPPORTED:
    case OK_ERR_NO_RECIPIENT: api_error(c, 400, "BadParameter", "%s", msg); return;
    case OK_OK:
    case OK_ERR_AUTH: /* stored bytes that fail authentication are the service's failure, not the caller's */
    case OK_ERR_NOMEM:
    case OK_ERR_CRYPTO:
    case OK_ERR_IO: break;
    }
    api_error(c, 500, "InternalError", "%s", msg);
}

/* ---- Documents ----------------------------------------------------------------------------------- */

void data_rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

void data_http_date(int64_t t, char out[40])
{
    static const char *const DAYS[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, 40, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    /* Not strftime: %a and %b follow the locale. */
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[tm.tm_wday % 7], tm.tm_mday, MONTHS[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static json_t *string_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static const char *rekey_state_name(ok_ds_rekey_state s)
{
    switch (s) {
    case OK_DS_REKEY_NONE: return "none";
    case OK_DS_REKEY_RUNNING: return "running";
    case OK_DS_REKEY_DONE: return "done";
    case OK_DS_REKEY_FAILED: return "failed";
    }
    return "none";
}

static const char *key_source_name(ok_ds_key_source s)
{
    switch (s) {
    case OK_DS_KEYS_SERVICE: return "service";
    case OK_DS_KEYS_CUSTOMER: return "customer";
    case OK_DS_KEYS_DOUBLE: return "double";
    }
    return "service";
}

json_t *data_rekey_json(const ok_ds_tenant_info *t)
{
    return json_pack("{s:s, s:b, s:I, s:I}", "state", rekey_state_name(t->rekey_state), "reencrypt", t->rekey_reencrypt,
                     "done", (json_int_t)t->rekey_done, "total", (json_int_t)t->rekey_total);
}

json_t *data_tenant_json(const ok_ds_tenant_info *t)
{
    char since[32];
    data_rfc3339(t->since, since);
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    json_object_set_new(doc, "name", json_string(t->name));
    json_object_set_new(doc, "state", json_string(t->state == OK_DS_LOCKED ? "locked" : "active"));
    json_object_set_new(doc, "reason", string_or_null(t->reason));
    json_object_set_new(doc, "reason_code", string_or_null(t->reason_code));
    json_object_set_new(doc, "since", json_string(since));
    json_object_set_new(doc, "since_unix", json_integer(t->since));
    json_object_set_new(doc, "created", json_integer(t->created));
    json_object_set_new(doc, "key_source", json_string(key_source_name(t->source)));
    json_object_set_new(doc, "customer_key", string_or_null(t->customer_uri));
    json_object_set_new(doc, "customer_kid", string_or_null(t->customer_kid));
    json_object_set_new(doc, "permanent", json_boolean(t->permanent));
    json_object_set_new(doc, "tk_generation", json_integer((json_int_t)t->tk_generation));
    json_object_set_new(doc, "objects", json_integer((json_int_t)t->objects));
    json_object_set_new(doc, "bytes", json_integer((json_int_t)t->bytes));
    json_object_set_new(doc, "rekey", data_rekey_json(t));
    return doc;
}

json_t *data_object_json(const ok_ds_object_info *o)
{
    return json_pack("{s:s, s:I, s:s, s:I, s:s}", "name", o->name, "size", (json_int_t)o->size, "etag", o->etag,
                     "modified", (json_int_t)o->modified, "content_type",
                     o->content_type[0] ? o->content_type : "application/octet-stream");
}

/* ---- Routing ------------------------------------------------------------------------------------- */

static void no_route(ok_api_call *c)
{
    c->resp->operation = "unknown";
    api_error(c, 404, "NotFound", "no such operation: %s on this data API path", c->req->method);
}

/* 1 when the method has a handler on this path (and it ran). */
static int route(ok_api_call *c, const data_path *p)
{
    const char *m = c->req->method, *t = p->tenant;
    switch (p->kind) {
    case DATA_PATH_TENANTS:
        if (is(m, "GET"))
            data_tenant_list(c);
        else
            return 0;
        return 1;
    case DATA_PATH_TENANT:
        if (is(m, "PUT"))
            data_tenant_create(c, t);
        else if (is(m, "GET"))
            data_tenant_get(c, t);
        else if (is(m, "DELETE"))
            data_tenant_delete(c, t);
        else
            return 0;
        return 1;
    case DATA_PATH_CUSTOMER_KEY:
        if (is(m, "PUT"))
            data_customer_key_set(c, t);
        else if (is(m, "DELETE"))
            data_customer_key_remove(c, t);
        else
            return 0;
        return 1;
    case DATA_PATH_REKEY:
        if (is(m, "POST"))
            data_rekey_start(c, t);
        else if (is(m, "GET"))
            data_rekey_get(c, t);
        else
            return 0;
        return 1;
    case DATA_PATH_OBJECTS:
        if (is(m, "GET"))
            data_object_list(c, t);
        else
            return 0;
        return 1;
    case DATA_PATH_OBJECT:
        if (is(m, "GET") || is(m, "HEAD"))
            data_object_get(c, t, p->object, is(m, "HEAD"));
        else if (is(m, "DELETE"))
            data_object_delete(c, t, p->object);
        else if (is(m, "PUT"))
            data_object_put_buffered(c, t, p->object); /* only without a stream handler */
        else
            return 0;
        return 1;
    case DATA_PATH_NONE: break;
    }
    return 0;
}

void api_data_route(ok_api_call *c)
{
    if (!c->api->ds) {
        api_error(c, 404, "NotFound", "the data API is not served here: this node runs without the data role");
        return;
    }
    data_path p;
    if (data_path_parse(c->req->path, &p) != 0) {
        api_error(c, 500, "InternalError", "out of memory");
        return;
    }
    /* The names the audit record points to live until the router frees path_copy, after the audit. */
    c->path_copy = p.copy;
    if (api_authenticate(c) && !route(c, &p))
        no_route(c);
}
