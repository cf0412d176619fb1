/* API responses and request helpers: Azure-shaped errors, JSON bodies, base64url in both alphabets,
 * key attributes and tags, and the KeyBundle / KeyItem documents. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api/api.h"

void api_error(ok_api_call *c, int status, const char *code, const char *fmt, ...)
{
    char message[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    c->error_code = code;
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    ok_buf_reset(&c->resp->body);
    api_json(c, status, doc);
    c->error_code = code;
}

void api_json(ok_api_call *c, int status, json_t *doc)
{
    c->resp->status = status;
    ok_buf_reset(&c->resp->body);
    if (!doc) {
        c->resp->status = 500;
        ok_buf_put(&c->resp->body, "{\"error\":{\"code\":\"InternalError\",\"message\":\"out of memory\"}}", 60);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text) {
        ok_buf_put(&c->resp->body, text, strlen(text));
        free(text);
    }
}

void api_fail(ok_api_call *c, ok_err err)
{
    const char *msg = ok_err_message();
    if (!msg || !*msg)
        msg = ok_err_name(err);
    switch (err) {
    case OK_ERR_NOT_FOUND: api_error(c, 404, "KeyNotFound", "%s", msg); return;
    case OK_ERR_CONFLICT: api_error(c, 409, "Conflict", "%s", msg); return;
    case OK_ERR_FORBIDDEN: api_error(c, 403, "Forbidden", "%s", msg); return;
    case OK_ERR_SEALED: api_error(c, 503, "VaultSealed", "%s", msg); return;
    case OK_ERR_LOCKED: api_error(c, 403, "TenantLocked", "%s", msg); return;
    case OK_ERR_AUTH: api_error(c, 400, "BadParameter", "%s", msg); return;
    case OK_ERR_INVALID_ARG:
    case OK_ERR_FORMAT:
    case OK_ERR_LIMIT:
    case OK_ERR_UNSUPPORTED:
    case OK_ERR_TRUNCATED:
    case OK_ERR_KEY:
    case OK_ERR_NO_RECIPIENT: api_error(c, 400, "BadParameter", "%s", msg); return;
    case OK_OK:
    case OK_ERR_NOMEM:
    case OK_ERR_CRYPTO:
    case OK_ERR_IO: break;
    }
    api_error(c, 500, "InternalError", "%s", msg);
}

json_t *api_body(ok_api_call *c, int allow_empty)
{
    if (!c->req->body || c->req->body_len == 0) {
        if (allow_empty)
            return json_object();
        api_error(c, 400, "BadParameter", "a JSON request body is required");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        api_error(c, 400, "BadParameter", "malformed JSON body at line %d column %d", jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        api_error(c, 400, "BadParameter", "the JSON body must be an object");
        return NULL;
    }
    return doc;
}

ok_err api_b64_decode(const char *text, uint8_t **out, size_t *len)
{
    return ok_b64_decode_any(text, out, len);
}

json_t *api_b64_json(const uint8_t *p, size_t len)
{
    char *s = NULL;
    if (ok_b64url_encode(p, len, &s) != OK_OK)
        return NULL;
    json_t *j = json_string(s);
    free(s);
    return j;
}

int api_b64_member(ok_api_call *c, json_t *obj, const char *name, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        api_error(c, 400, "BadParameter", "\"%s\" must be a base64url string", name);
        return -1;
    }
    if (api_b64_decode(json_string_value(v), out, len) != OK_OK) {
        api_error(c, 400, "BadParameter", "\"%s\" is not valid base64url", name);
        return -1;
    }
    return 0;
}

/* ---- Attributes and tags ---------------------------------------------------------------------- */

static int read_time(ok_api_call *c, json_t *attrs, const char *name, int *has, int64_t *out)
{
    json_t *v = json_object_get(attrs, name);
    if (!v)
        return 0;
    *has = 1;
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        api_error(c, 400, "BadParameter", "attributes.%s must be a Unix time in seconds", name);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int read_ops(ok_api_call *c, json_t *ops, ok_key_attrs *attrs)
{
    if (!json_is_array(ops)) {
        api_error(c, 400, "BadParameter", "key_ops must be an array of strings");
        return -1;
    }
    attrs->has_ops = 1;
    attrs->ops = 0;
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        unsigned bit = 0;
        if (!json_is_string(op) || ok_keyop_parse(json_string_value(op), &bit) != OK_OK) {
            api_error(c, 400, "BadParameter", "unknown key operation in key_ops");
            return -1;
        }
        attrs->ops |= bit;
    }
    return 0;
}

int api_read_attrs(ok_api_call *c, json_t *body, ok_key_attrs *attrs, ok_tag *tags, size_t tags_cap)
{
    memset(attrs, 0, sizeof *attrs);
    json_t *a = json_object_get(body, "attributes");
    if (a && !json_is_null(a)) {
        if (!json_is_object(a)) {
            api_error(c, 400, "BadParameter", "attributes must be an object");
            return -1;
        }
        json_t *en = json_object_get(a, "enabled");
        if (en && !json_is_null(en)) {
            if (!json_is_boolean(en)) {
                api_error(c, 400, "BadParameter", "attributes.enabled must be true or false");
                return -1;
            }
            attrs->has_enabled = 1;
            attrs->enabled = json_is_true(en);
        }
        if (read_time(c, a, "nbf", &attrs->has_nbf, &attrs->nbf) || read_time(c, a, "exp", &attrs->has_exp, &attrs->exp))
            return -1;
    }
    json_t *ops = json_object_get(body, "key_ops");
    if (!ops && json_is_object(json_object_get(body, "key")))
        ops = json_object_get(json_object_get(body, "key"), "key_ops");
    if (ops && !json_is_null(ops) && read_ops(c, ops, attrs))
        return -1;
    json_t *t = json_object_get(body, "tags");
    if (t && !json_is_null(t)) {
        if (!json_is_object(t) || json_object_size(t) > tags_cap) {
            api_error(c, 400, "BadParameter", "tags must be an object of at most %zu strings", tags_cap);
            return -1;
        }
        const char *k;
        json_t *v;
        size_t n = 0;
        json_object_foreach(t, k, v) {
            if (!json_is_string(v)) {
                api_error(c, 400, "BadParameter", "tag \"%s\" must be a string", k);
                return -1;
            }
            tags[n].name = (char *)k;
            tags[n].value = (char *)json_string_value(v);
            n++;
        }
        attrs->has_tags = 1;
        attrs->tags = tags;
        attrs->tag_count = n;
    }
    return 0;
}

/* ---- Key bundles ------------------------------------------------------------------------------- */

char *api_kid(ok_api_call *c, const char *collection, const char *name, const char *version)
{
    size_t n = strlen(c->req->base_url) + strlen(collection) + strlen(name) + (version ? strlen(version) : 0) + 8;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s/%s%s%s", c->req->base_url, collection, name, version ? "/" : "", version ? version : "");
    return s;
}

static const char *kty_name(const ok_key_info *k)
{
    switch (k->kty) {
    case OK_KTY_RSA: return k->hsm ? "RSA-HSM" : "RSA";
    case OK_KTY_EC: return k->hsm ? "EC-HSM" : "EC";
    case OK_KTY_OCT: return k->hsm ? "oct-HSM" : "oct";
    }
    return "unknown";
}

/* The public JWK members (n, e or crv, x, y) of an RSA/EC key, via the crypto layer's serializer. */
static void add_public_members(json_t *key, const ok_key_info *k)
{
    if (!k->public_key)
        return;
    ok_jwk jwk = {.kty = k->kty == OK_KTY_RSA ? OK_JWK_RSA : OK_JWK_EC, .pkey = k->public_key};
    char *text = NULL;
    if (ok_jwk_serialize(&jwk, 0, &text) != OK_OK)
        return;
    json_t *pub = json_loads(text, 0, NULL);
    free(text);
    static const char *const members[] = {"n", "e", "crv", "x", "y"};
    for (size_t i = 0; pub && i < sizeof members / sizeof *members; i++) {
        json_t *v = json_object_get(pub, members[i]);
        if (v)
            json_object_set(key, members[i], v);
    }
    json_decref(pub);
}

static json_t *key_ops_json(unsigned ops)
{
    json_t *a = json_array();
    for (unsigned bit = 1; bit <= OK_KEYOP_EXPORT; bit <<= 1)
        if (ops & bit)
            json_array_append_new(a, json_string(ok_keyop_name(bit)));
    return a;
}

static json_t *attributes_json(const ok_key_info *k)
{
    json_t *a = json_object();
    json_object_set_new(a, "enabled", json_boolean(k->enabled));
    if (k->nbf)
        json_object_set_new(a, "nbf", json_integer(k->nbf));
    if (k->exp)
        json_object_set_new(a, "exp", json_integer(k->exp));
    json_object_set_new(a, "created", json_integer(k->created));
    json_object_set_new(a, "updated", json_integer(k->updated));
    json_object_set_new(a, "recoveryLevel",
                        json_string(k->recoverable_days >= 90 ? "Recoverable+Purgeable" : "CustomizedRecoverable+Purgeable"));
    json_object_set_new(a, "recoverableDays", json_integer(k->recoverable_days));
    json_object_set_new(a, "exportable", json_false());
    return a;
}

static void add_tags_and_deletion(ok_api_call *c, json_t *doc, const ok_key_info *k)
{
    if (k->tag_count) {
        json_t *t = json_object();
        for (size_t i = 0; i < k->tag_count; i++)
            json_object_set_new(t, k->tags[i].name, json_string(k->tags[i].value));
        json_object_set_new(doc, "tags", t);
    }
    if (k->deleted) {
        char *rid = api_kid(c, "deletedkeys", k->name, NULL);
        json_object_set_new(doc, "recoveryId", json_string(rid ? rid : ""));
        free(rid);
        json_object_set_new(doc, "deletedDate", json_integer(k->deleted));
        json_object_set_new(doc, "scheduledPurgeDate", json_integer(k->scheduled_purge));
    }
}

json_t *api_key_bundle(ok_api_call *c, const ok_key_info *k)
{
    char *kid = api_kid(c, "keys", k->name, k->version);
    json_t *key = json_object();
    json_object_set_new(key, "kid", json_string(kid ? kid : ""));
    free(kid);
    json_object_set_new(key, "kty", json_string(kty_name(k)));
    json_object_set_new(key, "key_ops", key_ops_json(k->ops));
    add_public_members(key, k);
    json_t *doc = json_object();
    json_object_set_new(doc, "key", key);
    json_object_set_new(doc, "attributes", attributes_json(k));
    add_tags_and_deletion(c, doc, k);
    return doc;
}

json_t *api_key_item(ok_api_call *c, const ok_key_info *k, int with_version)
{
    char *kid = api_kid(c, "keys", k->name, with_version ? k->version : NULL);
    json_t *doc = json_object();
    json_object_set_new(doc, "kid", json_string(kid ? kid : ""));
    free(kid);
    json_object_set_new(doc, "attributes", attributes_json(k));
    add_tags_and_deletion(c, doc, k);
    return doc;
}
