/* Keys API: managing keys (Azure Key Vault paths): create, import, get, update, list, versions, delete,
 * deleted keys, recover, purge, backup, restore, rotate, rotation policy and random bytes. Each handler
 * checks the caller's permission, parses and validates the body (400 with a precise message, nothing
 * changed), calls the vault, and shapes the reply as the SDK expects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api/api.h"

#define MAX_PAGE 25

static void reply_bundle(ok_api_call *c, ok_err rc, ok_key_info *info)
{
    if (rc != OK_OK) {
        api_fail(c, rc);
        return;
    }
    c->key_version = NULL;
    api_json(c, 200, api_key_bundle(c, info));
    ok_key_info_clear(info);
}

static int parse_kty(const char *s, ok_kty *kty)
{
    if (!strcmp(s, "RSA") || !strcmp(s, "RSA-HSM"))
        *kty = OK_KTY_RSA;
    else if (!strcmp(s, "EC") || !strcmp(s, "EC-HSM"))
        *kty = OK_KTY_EC;
    else if (!strcmp(s, "oct") || !strcmp(s, "oct-HSM"))
        *kty = OK_KTY_OCT;
    else
        return -1;
    return 0;
}

void api_key_create(ok_api_call *c, const char *name)
{
    c->resp->operation = "create";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_CREATE))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    ok_key_spec spec = {0};
    ok_tag tags[OK_KEY_MAX_TAGS];
    json_t *kty = json_object_get(body, "kty"), *size = json_object_get(body, "key_size");
    json_t *crv = json_object_get(body, "crv");
    if (json_is_string(kty))
        spec.hsm = strstr(json_string_value(kty), "-HSM") != NULL; /* the vault refuses it without an HSM */
    if (!json_is_string(kty) || parse_kty(json_string_value(kty), &spec.kty) != 0) {
        api_error(c, 400, "BadParameter", "kty must be one of RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM");
    } else if (size && !json_is_null(size) && (!json_is_integer(size) || json_integer_value(size) <= 0 ||
                                                json_integer_value(size) > 16384)) {
        api_error(c, 400, "BadParameter", "key_size must be a positive integer");
    } else if (crv && !json_is_null(crv) && (!json_is_string(crv) || (strcmp(json_string_value(crv), "P-256") &&
                                                                       strcmp(json_string_value(crv), "P-384")))) {
        api_error(c, 400, "BadParameter", "crv must be P-256 or P-384");
    } else if (api_read_attrs(c, body, &spec.attrs, tags, OK_KEY_MAX_TAGS) == 0) {
        spec.bits = size && json_is_integer(size) ? (unsigned)json_integer_value(size) : 0;
        spec.curve = crv && json_is_string(crv) && !strcmp(json_string_value(crv), "P-384") ? OK_CURVE_P384 : OK_CURVE_P256;
        ok_key_info info = {0};
        reply_bundle(c, ok_vault_key_create(c->api->vault, name, &spec, &info), &info);
    }
    json_decref(body);
}

/* The JWK of an import body as the crypto layer's parser takes it: "-HSM" dropped from kty, and the
 * Azure-only members left out. */
static char *import_jwk_text(json_t *key)
{
    json_t *copy = json_deep_copy(key);
    if (!copy)
        return NULL;
    json_t *kty = json_object_get(copy, "kty");
    if (json_is_string(kty)) {
        char base[16];
        snprintf(base, sizeof base, "%s", json_string_value(kty));
        char *dash = strstr(base, "-HSM");
        if (dash && dash[4] == '\0')
            *dash = '\0';
        json_object_set_new(copy, "kty", json_string(base));
    }
    json_object_del(copy, "key_ops");
    json_object_del(copy, "kid");
    char *text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return text;
}

/* A BYOK import: key.key_hsm is the base64url (or base64) of a transfer blob made for one of the vault's key
 * exchange keys (docs/BYOK.md). kty (and crv) say what it holds. "-HSM" (or "Hsm": true) asks for the key in
 * the vault's token: it goes there when the KEK is an RSA-HSM key in that token, and is otherwise stored and
 * reported as a software key (the vault never claims HSM protection it does not have). */
static void import_byok(ok_api_call *c, const char *name, json_t *key, int hsm_flag, const ok_key_attrs *attrs)
{
    json_t *kty = json_object_get(key, "kty"), *crv = json_object_get(key, "crv");
    const char *text = json_string_value(json_object_get(key, "key_hsm"));
    ok_kty type;
    ok_curve curve = 0;
    uint8_t *blob = NULL;
    size_t len = 0;
    if (!json_is_string(kty) || parse_kty(json_string_value(kty), &type) != 0) {
        api_error(c, 400, "BadParameter", "kty must be one of RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM");
    } else if (crv && !json_is_null(crv) && (!json_is_string(crv) || (strcmp(json_string_value(crv), "P-256") &&
                                                                       strcmp(json_string_value(crv), "P-384")))) {
        api_error(c, 400, "BadParameter", "crv must be P-256 or P-384");
    } else if (!text || !*text || ok_b64_decode_any(text, &blob, &len) != OK_OK || len == 0) {
        api_error(c, 400, "BadParameter", "key_hsm must be the base64url of a BYOK transfer blob");
    } else {
        if (json_is_string(crv))
            curve = strcmp(json_string_value(crv), "P-384") ? OK_CURVE_P256 : OK_CURVE_P384;
        const char *k = json_string_value(kty);
        size_t klen = strlen(k);
        int hsm = hsm_flag || (klen > 4 && strcmp(k + klen - 4, "-HSM") == 0);
        ok_key_info info = {0};
        reply_bundle(c, ok_vault_key_import_byok_ex(c->api->vault, name, type, hsm, curve, blob, len, attrs, &info),
                     &info);
    }
    free(blob);
}

void api_key_import(ok_api_call *c, const char *name)
{
    c->resp->operation = "import";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_IMPORT))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    json_t *key = json_object_get(body, "key");
    ok_key_attrs attrs;
    ok_tag tags[OK_KEY_MAX_TAGS];
    if (!json_is_object(key)) {
        api_error(c, 400, "BadParameter", "import needs a \"key\" object (a JSON Web Key)");
    } else if (api_read_attrs(c, body, &attrs, tags, OK_KEY_MAX_TAGS) != 0) {
        /* the 400 is sent */
    } else if (json_object_get(key, "key_hsm")) {
        import_byok(c, name, key, json_is_true(json_object_get(body, "Hsm")), &attrs);
    } else {
        char *text = import_jwk_text(key);
        ok_jwk *jwk = NULL;
        ok_err rc = text ? ok_jwk_parse(text, strlen(text), &jwk) : OK_ERR_NOMEM;
        if (text) {
            ok_zeroize(text, strlen(text));
            free(text);
        }
        if (rc != OK_OK) {
            api_error(c, 400, "BadParameter", "the key is not a usable JSON Web Key: %s", ok_err_message());
        } else {
            ok_key_info info = {0};
            reply_bundle(c, ok_vault_key_import(c->api->vault, name, jwk, &attrs, &info), &info);
        }
        ok_jwk_free(jwk);
    }
    json_decref(body);
}

void api_key_get(ok_api_call *c, const char *name, const char *version)
{
    c->resp->operation = "get";
    c->key_name = name;
    c->key_version = version;
    if (!api_allow(c, name, OK_PERM_GET))
        return;
    ok_key_info info = {0};
    reply_bundle(c, ok_vault_key_get(c->api->vault, name, version, &info), &info);
}

void api_key_update(ok_api_call *c, const char *name, const char *version)
{
    c->resp->operation = "update";
    c->key_name = name;
    c->key_version = version;
    if (!api_allow(c, name, OK_PERM_UPDATE))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    ok_key_attrs attrs;
    ok_tag tags[OK_KEY_MAX_TAGS];
    if (api_read_attrs(c, body, &attrs, tags, OK_KEY_MAX_TAGS) == 0) {
        ok_key_info info = {0};
        reply_bundle(c, ok_vault_key_update(c->api->vault, name, version, &attrs, &info), &info);
    }
    json_decref(body);
}

/* ---- Lists ------------------------------------------------------------------------------------- */

typedef ok_err (*page_fn)(ok_vault *v, const char *name, const char *after, size_t max, ok_key_page *out);

static ok_err list_keys(ok_vault *v, const char *name, const char *after, size_t max, ok_key_page *out)
{
    (void)name;
    return ok_vault_key_list(v, after, max, out);
}

static ok_err list_deleted(ok_vault *v, const char *name, const char *after, size_t max, ok_key_page *out)
{
    (void)name;
    return ok_vault_deleted_list(v, after, max, out);
}

/* Reads maxresults (1..25) and $skiptoken; 0 on success, -1 after a 400. */
static int page_params(ok_api_call *c, size_t *max, char **after)
{
    *max = MAX_PAGE;
    *after = NULL;
    const char *m = c->req->query(c->req, "maxresults");
    if (m && *m) {
        char *end = NULL;
        long v = strtol(m, &end, 10);
        if (*end || v < 1 || v > MAX_PAGE) {
            api_error(c, 400, "BadParameter", "maxresults must be between 1 and %d", MAX_PAGE);
            return -1;
        }
        *max = (size_t)v;
    }
    const char *skip = c->req->query(c->req, "$skiptoken");
    if (skip && *skip) {
        uint8_t *raw = NULL;
        size_t len = 0;
        if (ok_b64url_decode(skip, strlen(skip), &raw, &len) != OK_OK || len == 0 || memchr(raw, 0, len)) {
            free(raw);
            api_error(c, 400, "BadParameter", "malformed $skiptoken");
            return -1;
        }
        *after = malloc(len + 1);
        if (*after) {
            memcpy(*after, raw, len);
            (*after)[len] = '\0';
        }
        free(raw);
    }
    return 0;
}

static void reply_page(ok_api_call *c, page_fn fn, const char *name, int versioned)
{
    size_t max;
    char *after;
    if (page_params(c, &max, &after) != 0)
        return;
    ok_key_page page = {0};
    ok_err rc = fn(c->api->vault, name, after, max, &page);
    free(after);
    if (rc != OK_OK) {
        api_fail(c, rc);
        return;
    }
    json_t *value = json_array();
    for (size_t i = 0; i < page.count; i++)
        json_array_append_new(value, api_key_item(c, &page.items[i], versioned));
    json_t *doc = json_object();
    json_object_set_new(doc, "value", value);
    if (page.next) {
        char *token = NULL;
        ok_b64url_encode((const uint8_t *)page.next, strlen(page.next), &token);
        size_t n = strlen(c->req->base_url) + strlen(c->req->path) + strlen(c->api_version) + (token ? strlen(token) : 0) + 80;
        char *link = malloc(n);
        if (link && token) {
            snprintf(link, n, "%s%s?api-version=%s&$skiptoken=%s&maxresults=%zu", c->req->base_url, c->req->path,
                     c->api_version, token, max);
            json_object_set_new(doc, "nextLink", json_string(link));
        }
        free(link);
        free(token);
    } else {
        json_object_set_new(doc, "nextLink", json_null());
    }
    ok_key_page_clear(&page);
    api_json(c, 200, doc);
}

void api_key_list(ok_api_call *c)
{
    c->resp->operation = "list";
    if (api_allow(c, NULL, OK_PERM_LIST))
        reply_page(c, list_keys, NULL, 0);
}

void api_key_versions(ok_api_call *c, const char *name)
{
    c->resp->operation = "versions";
    c->key_name = name;
    if (api_allow(c, name, OK_PERM_LIST))
        reply_page(c, ok_vault_key_versions, name, 1);
}

void api_deleted_list(ok_api_call *c)
{
    c->resp->operation = "listdeleted";
    if (api_allow(c, NULL, OK_PERM_LIST))
        reply_page(c, list_deleted, NULL, 0);
}

/* ---- Deletion and recovery ---------------------------------------------------------------------- */

void api_key_delete(ok_api_call *c, const char *name)
{
    c->resp->operation = "delete";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_DELETE))
        return;
    ok_key_info info = {0};
    reply_bundle(c, ok_vault_key_delete(c->api->vault, name, &info), &info);
}

void api_deleted_get(ok_api_call *c, const char *name)
{
    c->resp->operation = "getdeleted";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_GET))
        return;
    ok_key_info info = {0};
    reply_bundle(c, ok_vault_deleted_get(c->api->vault, name, &info), &info);
}

void api_deleted_recover(ok_api_call *c, const char *name)
{
    c->resp->operation = "recover";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_RECOVER))
        return;
    ok_key_info info = {0};
    reply_bundle(c, ok_vault_deleted_recover(c->api->vault, name, &info), &info);
}

void api_deleted_purge(ok_api_call *c, const char *name)
{
    c->resp->operation = "purge";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_PURGE))
        return;
    ok_err rc = ok_vault_deleted_purge(c->api->vault, name);
    if (rc != OK_OK) {
        api_fail(c, rc);
        return;
    }
    c->resp->status = 204;
    ok_buf_reset(&c->resp->body);
}

/* ---- Backup, restore, rotate ------------------------------------------------------------------------ */

void api_key_backup(ok_api_call *c, const char *name)
{
    c->resp->operation = "backup";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_BACKUP))
        return;
    uint8_t *blob = NULL;
    size_t len = 0;
    ok_err rc = ok_vault_key_backup(c->api->vault, name, &blob, &len);
    if (rc != OK_OK) {
        api_fail(c, rc);
        return;
    }
    api_json(c, 200, json_pack("{s:o}", "value", api_b64_json(blob, len)));
    free(blob);
}

void api_key_restore(ok_api_call *c)
{
    c->resp->operation = "restore";
    if (!api_allow(c, NULL, OK_PERM_RESTORE))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    uint8_t *blob = NULL;
    size_t len = 0;
    if (api_b64_member(c, body, "value", &blob, &len) == 0) {
        if (!blob) {
            api_error(c, 400, "BadParameter", "restore needs \"value\", a backup blob");
        } else {
            ok_key_info info = {0};
            reply_bundle(c, ok_vault_key_restore(c->api->vault, blob, len, &info), &info);
        }
    }
    free(blob);
    json_decref(body);
}

void api_key_rotate(ok_api_call *c, const char *name)
{
    c->resp->operation = "rotate";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_ROTATE))
        return;
    ok_key_info info = {0};
    reply_bundle(c, ok_vault_key_rotate(c->api->vault, name, &info), &info);
}

/* ---- Rotation policy ------------------------------------------------------------------------------ */

static json_t *policy_json(ok_api_call *c, const char *name, const ok_rotation_policy *p)
{
    char *base = api_kid(c, "keys", name, "rotationpolicy");
    json_t *actions = json_array();
    char d[32];
    for (size_t i = 0; i < p->count; i++) {
        const ok_lifetime_action *a = &p->actions[i];
        json_t *trigger = json_object();
        ok_duration_format(a->after_create ? a->after_create : a->before_expiry, d, sizeof d);
        json_object_set_new(trigger, a->after_create ? "timeAfterCreate" : "timeBeforeExpiry", json_string(d));
        json_array_append_new(actions, json_pack("{s:o, s:{s:s}}", "trigger", trigger, "action", "type",
                                                 a->action == OK_ROTATION_ROTATE ? "Rotate" : "Notify"));
    }
    json_t *attrs = json_object();
    if (p->expiry_time) {
        ok_duration_format(p->expiry_time, d, sizeof d);
        json_object_set_new(attrs, "expiryTime", json_string(d));
    }
    if (p->created)
        json_object_set_new(attrs, "created", json_integer(p->created));
    if (p->updated)
        json_object_set_new(attrs, "updated", json_integer(p->updated));
    json_t *doc = json_pack("{s:s, s:o, s:o}", "id", base ? base : "", "lifetimeActions", actions, "attributes", attrs);
    free(base);
    return doc;
}

void api_rotation_policy_get(ok_api_call *c, const char *name)
{
    c->resp->operation = "getrotationpolicy";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_GETROTATIONPOLICY))
        return;
    ok_rotation_policy p;
    ok_err rc = ok_vault_rotation_policy_get(c->api->vault, name, &p);
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, policy_json(c, name, &p));
}

/* Reads lifetimeActions and attributes.expiryTime; 0 on success, -1 after a 400. */
static int read_policy(ok_api_call *c, json_t *body, ok_rotation_policy *p)
{
    memset(p, 0, sizeof *p);
    json_t *actions = json_object_get(body, "lifetimeActions");
    if (actions && !json_is_null(actions)) {
        if (!json_is_array(actions) || json_array_size(actions) > OK_ROTATION_MAX_ACTIONS) {
            api_error(c, 400, "BadParameter", "lifetimeActions must be an array of at most %d actions", OK_ROTATION_MAX_ACTIONS);
            return -1;
        }
        size_t i;
        json_t *a;
        json_array_foreach(actions, i, a) {
            json_t *trigger = json_object_get(a, "trigger"), *action = json_object_get(a, "action");
            json_t *type = json_object_get(action, "type");
            json_t *after = json_object_get(trigger, "timeAfterCreate"), *before = json_object_get(trigger, "timeBeforeExpiry");
            ok_lifetime_action *la = &p->actions[i];
            if (!json_is_string(type) || (strcasecmp(json_string_value(type), "rotate") &&
                                          strcasecmp(json_string_value(type), "notify"))) {
                api_error(c, 400, "BadParameter", "lifetimeActions[%zu].action.type must be Rotate or Notify", i);
                return -1;
            }
            la->action = strcasecmp(json_string_value(type), "rotate") ? OK_ROTATION_NOTIFY : OK_ROTATION_ROTATE;
            if (!json_is_string(after) == !json_is_string(before)) {
                api_error(c, 400, "BadParameter", "lifetimeActions[%zu].trigger needs exactly one of timeAfterCreate, timeBeforeExpiry", i);
                return -1;
            }
            int64_t secs = 0;
            if (ok_duration_parse(json_string_value(after ? after : before), &secs) != OK_OK || secs <= 0) {
                api_error(c, 400, "BadParameter", "lifetimeActions[%zu].trigger: %s", i, ok_err_message());
                return -1;
            }
            if (json_is_string(after))
                la->after_create = secs;
            else
                la->before_expiry = secs;
            p->count++;
        }
    }
    json_t *expiry = json_object_get(json_object_get(body, "attributes"), "expiryTime");
    if (expiry && !json_is_null(expiry)) {
        if (!json_is_string(expiry) || ok_duration_parse(json_string_value(expiry), &p->expiry_time) != OK_OK ||
            p->expiry_time <= 0) {
            api_error(c, 400, "BadParameter", "attributes.expiryTime must be an ISO 8601 duration such as P90D");
            return -1;
        }
    }
    return 0;
}

void api_rotation_policy_set(ok_api_call *c, const char *name)
{
    c->resp->operation = "setrotationpolicy";
    c->key_name = name;
    if (!api_allow(c, name, OK_PERM_SETROTATIONPOLICY))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    ok_rotation_policy in, out;
    if (read_policy(c, body, &in) == 0) {
        ok_err rc = ok_vault_rotation_policy_set(c->api->vault, name, &in, &out);
        if (rc != OK_OK)
            api_fail(c, rc);
        else
            api_json(c, 200, policy_json(c, name, &out));
    }
    json_decref(body);
}

void api_random(ok_api_call *c)
{
    c->resp->operation = "rng";
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    json_t *count = json_object_get(body, "count");
    if (!json_is_integer(count) || json_integer_value(count) < 1 || json_integer_value(count) > 128) {
        api_error(c, 400, "BadParameter", "count must be an integer from 1 to 128");
    } else {
        uint8_t bytes[128];
        size_t n = (size_t)json_integer_value(count);
        ok_err rc = ok_vault_random(c->api->vault, bytes, n);
        if (rc != OK_OK)
            api_fail(c, rc);
        else
            api_json(c, 200, json_pack("{s:o}", "value", api_b64_json(bytes, n)));
        ok_zeroize(bytes, sizeof bytes);
    }
    json_decref(body);
}
