/* BYOK (bring your own key) import, the software case: Azure Key Vault's transfer blob (the .byok file,
 * CKM_RSA_AES_KEY_WRAP) opened with a key exchange key (KEK) the vault holds. Owns the blob's parsing, the
 * rules a KEK must meet, the unwrapping (RSA-OAEP of the ephemeral AES key, then AES-KWP of the target),
 * and the records of used blobs (table byok_used, created in keys.c). Does not own adding the version
 * (key_lifecycle.c, which claims the blob in the same transaction), material encoding (material.c) or the
 * KEK's refusal of every other operation (key_ops.c refuses what key_ops lacks; keys.c keeps import alone).
 * The imported key is an ordinary software key: it never claims HSM protection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vault/keys_internal.h"

#define SCHEMA_VERSION "1.0.0"
#define OPEN_FAILED "the transfer blob does not open with key exchange key \"%s\": it was made for another key, " \
                    "or altered"

/* The enc values accepted, and the OAEP hash (also MGF1's) each names. Azure's BYOK uses the first; the
 * other two are the key-release variants, accepted as an extension. */
static const struct {
    const char *enc;
    ok_hash hash;
} encs[] = {
    {"CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1},
    {"RSA_AES_KEY_WRAP_256", OK_HASH_SHA256},
    {"RSA_AES_KEY_WRAP_384", OK_HASH_SHA384},
};

void ok_byok_blob_clear(ok_byok_blob *b)
{
    if (b == NULL)
        return;
    free(b->ciphertext);
    memset(b, 0, sizeof *b);
}

static int lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* "https://HOST[:PORT]/keys/NAME[/VERSION]": only the path counts (the host is whatever address the
 * customer reached the vault by). No version, or an empty one, means the KEK's latest version. */
static ok_err parse_kid(const char *kid, ok_byok_blob *out)
{
    const char *p = strstr(kid, "://"), *slash, *version;
    size_t n;

    p = p != NULL ? strchr(p + 3, '/') : NULL;
    if (p == NULL || strncmp(p, "/keys/", 6) != 0)
        goto bad;
    p += 6;
    slash = strchr(p, '/');
    n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n > OK_KEY_NAME_MAX)
        goto bad;
    memcpy(out->kek_name, p, n);
    out->kek_name[n] = '\0';
    if (!ok_name_valid(out->kek_name, OK_KEY_NAME_MAX, "-"))
        goto bad;
    version = slash != NULL ? slash + 1 : "";
    n = strlen(version);
    if (n != 0 && (n != OK_KEY_VERSION_LEN || !lower_hex(version, n)))
        goto bad;
    memcpy(out->kek_version, version, n + 1);
    return OK_OK;
bad:
    return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's header.kid must be a key identifier "
                                       "https://HOST/keys/NAME/VERSION, not \"%.200s\"", kid);
}

static const char *string_member(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

static ok_err parse_doc(json_t *doc, ok_byok_blob *out)
{
    json_t *header = json_object_get(doc, "header"), *generator = json_object_get(doc, "generator");
    const char *sv = string_member(doc, "schema_version"), *kid, *alg, *enc, *ct;
    size_t i;

    if (sv == NULL || strcmp(sv, SCHEMA_VERSION) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's schema_version must be \"" SCHEMA_VERSION "\"");
    if (!json_is_object(header))
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob has no header object");
    kid = string_member(header, "kid");
    alg = string_member(header, "alg");
    enc = string_member(header, "enc");
    if (kid == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's header has no kid (the key exchange key)");
    if (alg == NULL || strcmp(alg, "dir") != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's header.alg must be \"dir\"");
    for (i = 0; enc != NULL && i < sizeof encs / sizeof encs[0]; i++) {
        if (strcmp(enc, encs[i].enc) == 0)
            break;
    }
    if (enc == NULL || i == sizeof encs / sizeof encs[0])
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's header.enc must be CKM_RSA_AES_KEY_WRAP "
                                           "(or RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384)");
    out->oaep_hash = encs[i].hash;
    if (generator != NULL && !json_is_string(generator))
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's generator must be a string");
    OK_GUARD(parse_kid(kid, out));
    ct = string_member(doc, "ciphertext");
    if (ct == NULL || *ct == '\0')
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob has no ciphertext");
    if (ok_b64_decode_any(ct, &out->ciphertext, &out->ciphertext_len) != OK_OK)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's ciphertext is not base64url");
    return OK_OK;
}

ok_err ok_byok_blob_parse(const uint8_t *json, size_t len, ok_byok_blob *out)
{
    json_t *doc;
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_byok_blob_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (json == NULL || len == 0 || len > OK_BYOK_BLOB_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "a transfer blob has 1 to %u bytes", OK_BYOK_BLOB_MAX);
    doc = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob (key_hsm) is not a JSON object");
    }
    rc = parse_doc(doc, out);
    json_decref(doc);
    if (rc != OK_OK)
        ok_byok_blob_clear(out);
    return rc;
}

/* ---- used blobs ---------------------------------------------------------------------------------- */

static ok_err found_row(void *ctx, const ok_val *cols, size_t n)
{
    (void)cols;
    (void)n;
    *(int *)ctx = 1;
    return OK_OK;
}

ok_err ok_byok_check_unused(ok_store *s, const uint8_t blob_id[OK_SHA256_LEN])
{
    ok_val p[1] = {OK_VBLOB(blob_id, OK_SHA256_LEN)};
    int found = 0;

    OK_GUARD(s->vt->query(s, "SELECT 1 FROM byok_used WHERE id = ?", p, 1, found_row, &found));
    if (found)
        return ok_fail(OK_ERR_INVALID_ARG, "this transfer blob was imported before; a blob can be used only once "
                                           "(make a new one)");
    return OK_OK;
}

ok_err ok_byok_claim(ok_store *s, const uint8_t blob_id[OK_SHA256_LEN], const char *kek_kid, const char *name,
                     const char *version, int64_t now)
{
    OK_GUARD(ok_byok_check_unused(s, blob_id));
    ok_val p[5] = {OK_VBLOB(blob_id, OK_SHA256_LEN), OK_VTEXT(kek_kid), OK_VTEXT(name), OK_VTEXT(version),
                   OK_VINT(now)};
    return s->vt->exec(s, "INSERT INTO byok_used(id, kek, name, version, used) VALUES(?, ?, ?, ?, ?)", p, 5, NULL);
}

/* ---- the import -------------------------------------------------------------------------------------- */

/* The KEK the blob names: live, RSA, key_ops exactly import, enabled, within [nbf, exp). */
static ok_err load_kek(ok_vault *v, const ok_byok_blob *b, ok_key_info *kek)
{
    int64_t now = ok_vault_now();
    ok_err rc = ok_key_load(v, OK_KEYS_LIVE, b->kek_name, b->kek_version, kek);

    if (rc == OK_ERR_NOT_FOUND)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's key exchange key \"%s%s%s\" is not in this vault",
                       b->kek_name, b->kek_version[0] ? "/" : "", b->kek_version);
    OK_GUARD(rc);
    if (kek->kty != OK_KTY_RSA || kek->ops != OK_KEYOP_IMPORT || kek->public_key == NULL)
        rc = ok_fail(OK_ERR_INVALID_ARG, "key \"%s\" is not a key exchange key: a KEK is an RSA key whose key_ops "
                                         "are exactly [\"import\"]", kek->name);
    else if (!kek->enabled)
        rc = ok_fail(OK_ERR_FORBIDDEN, "key exchange key \"%s\" is disabled", kek->name);
    else if ((kek->nbf != 0 && now < kek->nbf) || (kek->exp != 0 && now >= kek->exp))
        rc = ok_fail(OK_ERR_FORBIDDEN, "key exchange key \"%s\" is outside its validity window", kek->name);
    if (rc != OK_OK)
        ok_key_info_clear(kek);
    return rc;
}

static int open_failure(ok_err rc)
{
    return rc == OK_ERR_AUTH || rc == OK_ERR_FORMAT || rc == OK_ERR_CRYPTO || rc == OK_ERR_INVALID_ARG;
}

/* The ephemeral AES key: RSA-OAEP of the ciphertext's first k bytes under the KEK, in the token when the KEK
 * is an RSA-HSM key (which opens the SHA-1 enc only). aes has k bytes of secure memory. */
static ok_err open_aes(ok_vault *v, const ok_key_info *kek, const ok_byok_blob *b, size_t k, uint8_t *aes,
                       size_t *aes_len)
{
    ok_key_material m;
    ok_key_op_result r;
    ok_err rc;

    *aes_len = 0;
    if (!kek->hsm) {
        OK_GUARD(ok_key_material_load(v, kek->name, kek->version, OK_KTY_RSA, &m));
        rc = ok_rsa_oaep_decrypt(m.pkey, b->oaep_hash, b->oaep_hash, NULL, 0, b->ciphertext, k, aes, aes_len);
        ok_key_material_clear(&m);
        if (open_failure(rc))
            rc = OK_ERR_AUTH;
    } else {
        if (b->oaep_hash != OK_HASH_SHA1)
            return ok_fail(OK_ERR_INVALID_ARG, "key exchange key \"%s\" is held in the HSM, which opens "
                                               "CKM_RSA_AES_KEY_WRAP (RSA-OAEP with SHA-1) blobs only", kek->name);
        memset(&r, 0, sizeof r);
        rc = ok_key_hsm_run(v, kek->name, kek->version, OK_KTY_RSA, OK_HSM_RSA_OAEP_DECRYPT, (ok_sig_alg)0,
                            b->ciphertext, k, k, &r);
        if (rc == OK_OK) {
            memcpy(aes, r.value, r.value_len);
            *aes_len = r.value_len;
        }
        ok_key_op_result_clear(&r);
    }
    if (rc == OK_OK && *aes_len != 16 && *aes_len != 24 && *aes_len != 32)
        rc = OK_ERR_AUTH;
    return rc == OK_ERR_AUTH ? ok_fail(OK_ERR_INVALID_ARG, OPEN_FAILED, kek->name) : rc;
}

/* ciphertext = RSA-OAEP(KEK, AES key) (modulus bytes) || AES-KWP(AES key, target). With into_name NULL, *plain
 * is secure memory of *cap bytes (free with ok_secure_free(*plain, *cap)), *plain_len bytes of it the target;
 * otherwise the target is unwrapped into the HSM as a new version of into_name, described by *into. */
static ok_err unwrap_target(ok_vault *v, const ok_key_info *kek, const ok_byok_blob *b, const char *into_name,
                            ok_kty kty, uint8_t **plain, size_t *cap, size_t *plain_len, ok_key_material *into)
{
    size_t k = ok_pkey_size(kek->public_key), aes_len = 0, wlen;
    uint8_t *aes = NULL;
    ok_err rc;

    *plain = NULL;
    *cap = *plain_len = 0;
    memset(into, 0, sizeof *into);
    if (b->ciphertext_len < k + 16 || (b->ciphertext_len - k) % 8 != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the transfer blob's ciphertext must be %zu bytes of RSA-OAEP followed by "
                                           "an AES-KWP wrapped key (a multiple of 8 bytes, at least 16)", k);
    wlen = b->ciphertext_len - k;
    aes = ok_secure_alloc(k);
    if (into_name == NULL && (*plain = ok_secure_alloc(wlen)) != NULL)
        *cap = wlen;
    if (aes == NULL || (into_name == NULL && *plain == NULL)) {
        rc = ok_fail(OK_ERR_NOMEM, "secure memory");
        goto done;
    }
    OK_GUARD_GOTO(rc, open_aes(v, kek, b, k, aes, &aes_len), done);
    if (into_name != NULL) {
        rc = ok_key_hsm_unwrap_into(v, into_name, kty, aes, aes_len, b->ciphertext + k, wlen, into);
        if (rc == OK_ERR_AUTH)
            rc = ok_fail(OK_ERR_INVALID_ARG, OPEN_FAILED " (or does not hold %s key)", kek->name,
                         kty == OK_KTY_RSA ? "an RSA" : "a 128, 192 or 256-bit AES");
    } else {
        rc = ok_aes_kwp_unwrap(aes, aes_len, b->ciphertext + k, wlen, *plain, plain_len);
        if (open_failure(rc))
            rc = ok_fail(OK_ERR_INVALID_ARG, OPEN_FAILED, kek->name);
    }
done:
    ok_secure_free(aes, k);
    if (rc != OK_OK) {
        ok_secure_free(*plain, *cap);
        *plain = NULL;
        *cap = *plain_len = 0;
    }
    return rc;
}

/* hsm: the request said -HSM. Under an RSA-HSM KEK the target then goes into the token; otherwise it is a
 * software key (and reported so). */
static ok_err import_locked(ok_vault *v, const char *name, ok_kty kty, int hsm, ok_curve curve,
                            const ok_byok_blob *b, const uint8_t id[OK_SHA256_LEN], const ok_key_attrs *attrs,
                            ok_key_info *out)
{
    char kek_kid[OK_KEY_NAME_MAX + OK_KEY_VERSION_LEN + 2];
    size_t cap = 0, len = 0;
    uint8_t *plain = NULL;
    ok_key_material m;
    ok_key_info kek;
    int into;
    ok_err rc;

    OK_GUARD(ok_byok_check_unused(v->store, id));
    OK_GUARD(load_kek(v, b, &kek));
    snprintf(kek_kid, sizeof kek_kid, "%s/%s", kek.name, kek.version);
    into = hsm && kek.hsm;
    rc = unwrap_target(v, &kek, b, into ? name : NULL, kty, &plain, &cap, &len, &m);
    ok_key_info_clear(&kek);
    OK_GUARD(rc);
    if (!into) {
        rc = ok_key_material_from_plain(kty, plain, len, &m);
        ok_secure_free(plain, cap);
        OK_GUARD(rc);
    }
    if (kty == OK_KTY_EC && curve != 0 && m.curve != curve)
        rc = ok_fail(OK_ERR_INVALID_ARG, "crv says %s, but the blob holds a key on %s",
                     curve == OK_CURVE_P384 ? "P-384" : "P-256", m.curve == OK_CURVE_P384 ? "P-384" : "P-256");
    else
        rc = ok_key_add_version_once(v, name, &m, attrs, id, kek_kid, out);
    if (rc != OK_OK && m.hsm) /* no row names it (a replay that lost the race, a deleted name): not left behind */
        (void)ok_key_hsm_destroy(v, name, m.hsm_version);
    ok_key_material_clear(&m);
    return rc;
}

ok_err ok_vault_key_import_byok(ok_vault *v, const char *name, ok_kty kty, ok_curve curve, const uint8_t *blob,
                                size_t blob_len, const ok_key_attrs *attrs, ok_key_info *out)
{
    return ok_vault_key_import_byok_ex(v, name, kty, 0, curve, blob, blob_len, attrs, out);
}

ok_err ok_vault_key_import_byok_ex(ok_vault *v, const char *name, ok_kty kty, int hsm, ok_curve curve,
                                   const uint8_t *blob, size_t blob_len, const ok_key_attrs *attrs, ok_key_info *out)
{
    uint8_t id[OK_SHA256_LEN];
    ok_byok_blob b;
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || blob == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_import_byok: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    if (kty != OK_KTY_RSA && kty != OK_KTY_EC && kty != OK_KTY_OCT)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key type %d", (int)kty);
    if (curve != 0 && (kty != OK_KTY_EC || (curve != OK_CURVE_P256 && curve != OK_CURVE_P384)))
        return ok_fail(OK_ERR_INVALID_ARG, "a curve is for EC keys, P-256 or P-384");
    OK_GUARD(ok_key_check_attrs(attrs));
    if (attrs != NULL && attrs->has_ops && (attrs->ops & OK_KEYOP_IMPORT) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "a key exchange key (key_ops [\"import\"]) is made by the vault with "
                                           "create, never imported");
    OK_GUARD(ok_byok_blob_parse(blob, blob_len, &b));
    rc = ok_sha256(b.ciphertext, b.ciphertext_len, id);
    if (rc == OK_OK && (rc = ok_seal_read_begin(v)) == OK_OK) {
        rc = import_locked(v, name, kty, hsm, curve, &b, id, attrs, out);
        ok_seal_read_end(v);
    }
    ok_byok_blob_clear(&b);
    return rc;
}
