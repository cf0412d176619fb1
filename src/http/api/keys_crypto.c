/* Keys API: the cryptographic operations POST /keys/{name}/{version}/{op} for op in encrypt, decrypt,
 * wrapkey, unwrapkey, sign, verify. The body is {alg, value, iv?, aad?, tag?} (verify: {alg, digest,
 * value}); results are base64url. An empty version means the latest. */
#include <stdlib.h>
#include <string.h>

#include "http/api/api.h"

typedef struct {
    const char *path_op;
    const char *operation;
    ok_key_op op;
    unsigned perm;
} op_info;

static const op_info OPS[] = {
    {"encrypt", "encrypt", OK_KOP_ENCRYPT, OK_PERM_ENCRYPT},
    {"decrypt", "decrypt", OK_KOP_DECRYPT, OK_PERM_DECRYPT},
    {"wrapkey", "wrapkey", OK_KOP_WRAP, OK_PERM_WRAPKEY},
    {"unwrapkey", "unwrapkey", OK_KOP_UNWRAP, OK_PERM_UNWRAPKEY},
    {"sign", "sign", OK_KOP_SIGN, OK_PERM_SIGN},
    {"verify", "verify", OK_KOP_VERIFY, OK_PERM_VERIFY},
};

static const op_info *find_op(const char *path_op)
{
    for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
        if (!strcasecmp(OPS[i].path_op, path_op))
            return &OPS[i];
    return NULL;
}

typedef struct {
    uint8_t *value, *digest, *iv, *aad, *tag;
    size_t value_len, digest_len, iv_len, aad_len, tag_len;
} op_inputs;

static void inputs_free(op_inputs *in)
{
    if (in->value)
        ok_zeroize(in->value, in->value_len);
    free(in->value);
    free(in->digest);
    free(in->iv);
    free(in->aad);
    free(in->tag);
}

static json_t *result_json(ok_api_call *c, const char *name, const op_info *info, const ok_key_op_result *r,
                           const op_inputs *in)
{
    if (info->op == OK_KOP_VERIFY)
        return json_pack("{s:b}", "value", r->verified);
    char *kid = api_kid(c, "keys", name, r->version);
    json_t *doc = json_object();
    json_object_set_new(doc, "kid", json_string(kid ? kid : ""));
    free(kid);
    json_object_set_new(doc, "value", api_b64_json(r->value, r->value_len));
    if (info->op == OK_KOP_ENCRYPT && r->iv_len) {
        json_object_set_new(doc, "iv", api_b64_json(r->iv, r->iv_len));
        json_object_set_new(doc, "tag", api_b64_json(r->tag, r->tag_len));
        if (in->aad)
            json_object_set_new(doc, "aad", api_b64_json(in->aad, in->aad_len));
    }
    return doc;
}

void api_key_crypto(ok_api_call *c, const char *name, const char *version, const char *path_op)
{
    const op_info *info = find_op(path_op);
    c->key_name = name;
    c->key_version = version;
    if (!info) {
        c->resp->operation = "unknown";
        api_error(c, 404, "NotFound", "no such key operation \"%s\"", path_op);
        return;
    }
    c->resp->operation = info->operation;
    if (!api_allow(c, name, info->perm))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    op_inputs in = {0};
    json_t *alg = json_object_get(body, "alg");
    if (!json_is_string(alg)) {
        api_error(c, 400, "BadParameter", "\"alg\" is required");
        goto done;
    }
    if (api_b64_member(c, body, "value", &in.value, &in.value_len) || api_b64_member(c, body, "iv", &in.iv, &in.iv_len) ||
        api_b64_member(c, body, "aad", &in.aad, &in.aad_len) || api_b64_member(c, body, "tag", &in.tag, &in.tag_len) ||
        api_b64_member(c, body, "digest", &in.digest, &in.digest_len))
        goto done;
    if (!in.value) {
        api_error(c, 400, "BadParameter", "\"value\" is required");
        goto done;
    }
    if (info->op == OK_KOP_VERIFY && !in.digest) {
        api_error(c, 400, "BadParameter", "verify needs \"digest\" and \"value\" (the signature)");
        goto done;
    }
    ok_key_op_request req = {
        .op = info->op, .alg = json_string_value(alg), .value = in.value, .value_len = in.value_len,
        .digest = in.digest, .digest_len = in.digest_len, .iv = in.iv, .iv_len = in.iv_len,
        .aad = in.aad, .aad_len = in.aad_len, .tag = in.tag, .tag_len = in.tag_len,
    };
    ok_key_op_result r = {0};
    ok_err rc = ok_vault_key_op(c->api->vault, name, version, &req, &r);
    if (rc != OK_OK)
        api_fail(c, rc);
    else
        api_json(c, 200, result_json(c, name, info, &r, &in));
    ok_key_op_result_clear(&r);
done:
    inputs_free(&in);
    json_decref(body);
}
