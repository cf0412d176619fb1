/* Management API under /ownkey/v1/ (ownkey's own, not Azure's): vault status, unseal and seal,
 * identities and their tokens, access policies, purge protection, audit verification. Status and
 * unseal need no token (the shares or passphrase are the authority; for a PKCS#11-sealed vault, unseal
 * with {"auto": true} asks the token again); everything else needs the admin permission. */
#include <stdlib.h>
#include <string.h>

#include "http/api/api.h"

static int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static const char *seal_kind_name(ok_seal_kind k)
{
    switch (k) {
    case OK_SEAL_DEV: return "dev";
    case OK_SEAL_SHAMIR: return "shamir";
    case OK_SEAL_PASSPHRASE: return "passphrase";
    case OK_SEAL_PKCS11: return "pkcs11";
    }
    return "unknown";
}

static json_t *status_json(ok_api *api)
{
    ok_vault_status st;
    ok_vault_get_status(api->vault, &st);
    json_t *doc = json_pack("{s:b, s:s, s:b, s:i, s:I}", "sealed", st.sealed, "seal_kind", seal_kind_name(st.kind),
                            "purge_protection", st.purge_protection, "retention_days", (int)st.retention_days, "keys",
                            (json_int_t)st.keys);
    if (st.kind == OK_SEAL_SHAMIR) {
        json_object_set_new(doc, "threshold", json_integer(st.threshold));
        json_object_set_new(doc, "shares_submitted", json_integer(st.shares_submitted));
    }
    if (st.kind == OK_SEAL_PKCS11) {
        json_object_set_new(doc, "hsm_key", json_string(st.hsm_key));
        if (st.seal_error[0])
            json_object_set_new(doc, "seal_error", json_string(st.seal_error));
    }
    return doc;
}

static void unseal(ok_api_call *c)
{
    c->resp->operation = "unseal";
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    json_t *share = json_object_get(body, "share"), *pass = json_object_get(body, "passphrase");
    int automatic = json_is_true(json_object_get(body, "auto"));
    ok_err rc;
    if (automatic)
        rc = ok_vault_unseal_auto(c->api->vault);
    else if (json_is_string(share))
        rc = ok_vault_unseal_share(c->api->vault, json_string_value(share));
    else if (json_is_string(pass))
        rc = ok_vault_unseal_passphrase(c->api->vault, (const uint8_t *)json_string_value(pass),
                                        json_string_length(pass));
    else
        rc = ok_fail(OK_ERR_INVALID_ARG, "unseal needs \"share\", \"passphrase\" or \"auto\": true");
    json_object_clear(body); /* the share or passphrase */
    json_decref(body);
    if (rc == OK_ERR_AUTH || (rc != OK_OK && automatic))
        api_error(c, 400, "UnsealFailed", "%s", ok_err_message()[0] ? ok_err_message() : "wrong shares or passphrase");
    else if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, status_json(c->api));
}

static void identity_create(ok_api_call *c)
{
    c->resp->operation = "identity.create";
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    json_t *name = json_object_get(body, "name"), *expires = json_object_get(body, "expires");
    if (!json_is_string(name)) {
        api_error(c, 400, "BadParameter", "\"name\" is required");
    } else if (expires && !json_is_null(expires) && !json_is_integer(expires)) {
        api_error(c, 400, "BadParameter", "\"expires\" must be a Unix time in seconds");
    } else {
        char *token = NULL, *token_id = NULL;
        ok_err rc = ok_vault_identity_create(c->api->vault, json_string_value(name),
                                             json_is_integer(expires) ? json_integer_value(expires) : 0, &token, &token_id);
        if (rc != OK_OK)
            api_fail(c, rc);
        else
            api_json(c, 200, json_pack("{s:s, s:s, s:s}", "name", json_string_value(name), "token", token, "token_id", token_id));
        if (token)
            ok_zeroize(token, strlen(token));
        free(token);
        free(token_id);
    }
    json_decref(body);
}

static void identity_list(ok_api_call *c)
{
    c->resp->operation = "identity.list";
    ok_identity_info *items = NULL;
    size_t n = 0;
    ok_err rc = ok_vault_identity_list(c->api->vault, &items, &n);
    if (rc != OK_OK) {
        api_fail(c, rc);
        return;
    }
    json_t *value = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *policies = json_array();
        for (size_t j = 0; j < items[i].policy_count; j++) {
            json_t *perms = json_array();
            for (unsigned bit = 1; bit < OK_PERM_ALL; bit <<= 1)
                if (items[i].policies[j].perms & bit)
                    json_array_append_new(perms, json_string(ok_perm_name(bit)));
            json_array_append_new(policies, json_pack("{s:s, s:o}", "keys", items[i].policies[j].pattern, "permissions", perms));
        }
        json_array_append_new(value, json_pack("{s:s, s:I, s:o}", "name", items[i].name, "created",
                                               (json_int_t)items[i].created, "policies", policies));
    }
    ok_identity_info_free(items, n);
    api_json(c, 200, json_pack("{s:o}", "value", value));
}

static void token_create(ok_api_call *c, const char *identity)
{
    c->resp->operation = "token.create";
    json_t *body = api_body(c, 1);
    if (!body)
        return;
    json_t *expires = json_object_get(body, "expires");
    char *token = NULL, *token_id = NULL;
    ok_err rc = ok_vault_token_create(c->api->vault, identity, json_is_integer(expires) ? json_integer_value(expires) : 0,
                                      &token, &token_id);
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, json_pack("{s:s, s:s, s:s}", "name", identity, "token", token, "token_id", token_id));
    if (token)
        ok_zeroize(token, strlen(token));
    free(token);
    free(token_id);
    json_decref(body);
}

/* PUT .../policies {"keys": PATTERN, "permissions": [...]}; DELETE .../policies?keys=PATTERN */
static void policy(ok_api_call *c, const char *identity)
{
    if (is(c->req->method, "DELETE")) {
        c->resp->operation = "policy.delete";
        const char *pattern = c->req->query(c->req, "keys");
        ok_err rc = pattern ? ok_vault_policy_delete(c->api->vault, identity, pattern)
                            : ok_fail(OK_ERR_INVALID_ARG, "the keys query parameter names the policy's pattern");
        if (rc != OK_OK)
            api_fail(c, rc);
        else
            api_json(c, 200, json_pack("{s:s, s:s}", "name", identity, "keys", pattern));
        return;
    }
    c->resp->operation = "policy.set";
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    json_t *keys = json_object_get(body, "keys"), *perms = json_object_get(body, "permissions");
    unsigned bits = 0;
    size_t i;
    json_t *p;
    if (!json_is_string(keys) || !json_is_array(perms)) {
        api_error(c, 400, "BadParameter", "a policy needs \"keys\" (a pattern) and \"permissions\" (an array)");
        goto done;
    }
    json_array_foreach(perms, i, p) {
        unsigned bit = 0;
        if (!json_is_string(p) || ok_perm_parse(json_string_value(p), &bit) != OK_OK) {
            api_error(c, 400, "BadParameter", "unknown permission \"%s\"", json_is_string(p) ? json_string_value(p) : "?");
            goto done;
        }
        bits |= bit;
    }
    ok_err rc = ok_vault_policy_set(c->api->vault, identity, json_string_value(keys), bits);
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, json_pack("{s:s, s:s, s:O}", "name", identity, "keys", json_string_value(keys), "permissions", perms));
done:
    json_decref(body);
}

static void simple_result(ok_api_call *c, ok_err rc)
{
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, status_json(c->api));
}

static void audit_verify(ok_api_call *c)
{
    c->resp->operation = "audit.verify";
    uint64_t lines = 0, bad = 0;
    ok_err rc = ok_vault_audit_verify(c->api->vault, &lines, &bad);
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, json_pack("{s:b, s:I, s:I}", "intact", bad == 0, "lines", (json_int_t)lines, "first_bad_line",
                                   (json_int_t)bad));
}

/* Routes authenticated admin calls; the identity must hold the admin permission. */
static void admin_routes(ok_api_call *c)
{
    const char *m = c->req->method, *const *s = c->segments;
    size_t n = c->nsegments;
    c->resp->operation = "admin";
    if (!api_authenticate(c) || !api_allow(c, NULL, OK_PERM_ADMIN))
        return;
    if (n == 3 && is(s[2], "seal") && is(m, "POST")) {
        c->resp->operation = "seal";
        simple_result(c, ok_vault_seal(c->api->vault));
        return;
    }
    if (n == 3 && is(s[2], "purge-protection") && is(m, "POST")) {
        c->resp->operation = "purgeprotection";
        simple_result(c, ok_vault_enable_purge_protection(c->api->vault));
        return;
    }
    if (n == 4 && is(s[2], "audit") && is(s[3], "verify") && is(m, "GET")) {
        audit_verify(c);
        return;
    }
    if (n == 3 && is(s[2], "identities") && is(m, "POST")) {
        identity_create(c);
        return;
    }
    if (n == 3 && is(s[2], "identities") && is(m, "GET")) {
        identity_list(c);
        return;
    }
    if (n == 4 && is(s[2], "identities") && is(m, "DELETE")) {
        c->resp->operation = "identity.delete";
        ok_err rc = ok_vault_identity_delete(c->api->vault, s[3]);
        if (rc == OK_OK)
            api_json(c, 200, json_pack("{s:s}", "name", s[3]));
        else
            api_fail(c, rc);
        return;
    }
    if (n == 5 && is(s[2], "identities") && is(s[4], "tokens") && is(m, "POST")) {
        token_create(c, s[3]);
        return;
    }
    if (n == 5 && is(s[2], "identities") && is(s[4], "policies") && (is(m, "PUT") || is(m, "DELETE"))) {
        policy(c, s[3]);
        return;
    }
    if (n == 4 && is(s[2], "tokens") && is(m, "DELETE")) {
        c->resp->operation = "token.revoke";
        ok_err rc = ok_vault_token_revoke(c->api->vault, s[3]);
        if (rc == OK_OK)
            api_json(c, 200, json_pack("{s:s}", "token_id", s[3]));
        else
            api_fail(c, rc);
        return;
    }
    c->resp->operation = "unknown";
    api_error(c, 404, "NotFound", "no such operation: %s %s", m, c->req->path);
}

int api_admin_route(ok_api_call *c)
{
    const char *const *s = c->segments;
    if (c->nsegments < 3 || !is(s[1], "v1"))
        return 0;
    if (c->nsegments == 3 && is(s[2], "status") && is(c->req->method, "GET")) {
        c->resp->operation = "status";
        api_json(c, 200, status_json(c->api));
        return 1;
    }
    if (c->nsegments == 3 && is(s[2], "unseal") && is(c->req->method, "POST")) {
        unseal(c);
        return 1;
    }
    admin_routes(c);
    return 1;
}
