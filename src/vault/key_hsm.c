/* HSM-backed keys on the vault's side: attaching the HSM (a vtable the program hands in, so that the vault
 * never links the providers), the token object's label for a version, making a version's key in the token,
 * running a private operation there, unwrapping a BYOK target into it, destroying the objects (purge), and the rules that keep HSM keys in
 * the token (backup refused). Owns no rows (key_lifecycle.c adds them with hsm = 1), no algorithm table
 * (key_ops.c decides what runs here and what runs in OpenSSL on the public key) and no PKCS#11 code
 * (src/providers/pkcs11_hsm.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"

#define NO_HSM "this vault has no HSM; create RSA, EC or oct (or start ownkeyd with --hsm)"

ok_err ok_vault_attach_hsm(ok_vault *v, ok_vault_hsm *h)
{
    if (h == NULL || h->vt == NULL || h->vt->size < sizeof(ok_vault_hsm_vtable))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_attach_hsm: not an HSM");
    if (v == NULL || v->hsm != NULL) {
        h->vt->close(h);
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_attach_hsm: %s", v == NULL ? "NULL vault" : "an HSM is attached");
    }
    v->hsm = h;
    return OK_OK;
}

int ok_vault_has_hsm(ok_vault *v)
{
    return v != NULL && v->hsm != NULL;
}

void ok_key_hsm_label(const char *name, const char *version, char label[OK_HSM_LABEL_MAX])
{
    snprintf(label, OK_HSM_LABEL_MAX, "ownkey:%s/%s", name, version);
}

ok_err ok_key_hsm_generate(ok_vault *v, const char *name, ok_kty kty, unsigned bits, ok_curve curve,
                           ok_key_material *out)
{
    char label[OK_HSM_LABEL_MAX];
    ok_pkey *pub = NULL;

    memset(out, 0, sizeof *out);
    if (v->hsm == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, NO_HSM);
    if (kty == OK_KTY_RSA && bits != 2048 && bits != 3072 && bits != 4096)
        return ok_fail(OK_ERR_INVALID_ARG, "RSA keys have 2048, 3072 or 4096 bits, not %u", bits);
    if (kty == OK_KTY_EC && curve != OK_CURVE_P256 && curve != OK_CURVE_P384)
        return ok_fail(OK_ERR_INVALID_ARG, "EC keys are on P-256 or P-384");
    if (kty == OK_KTY_OCT && bits != 128 && bits != 192 && bits != 256)
        return ok_fail(OK_ERR_INVALID_ARG, "oct keys have 128, 192 or 256 bits, not %u", bits);
    OK_GUARD(ok_key_new_version(out->hsm_version));
    ok_key_hsm_label(name, out->hsm_version, label);
    OK_GUARD(v->hsm->vt->generate(v->hsm, label, kty, bits, curve, &pub));
    if ((kty == OK_KTY_OCT) != (pub == NULL)) {
        ok_pkey_free(pub);
        (void)v->hsm->vt->destroy_key(v->hsm, label);
        return ok_fail(OK_ERR_CRYPTO, "the HSM returned no public key for the new key");
    }
    out->hsm = 1;
    out->kty = kty;
    out->bits = kty == OK_KTY_EC ? (curve == OK_CURVE_P384 ? 384u : 256u) : bits;
    out->curve = kty == OK_KTY_EC ? curve : 0;
    out->pkey = pub;
    return OK_OK;
}

ok_err ok_key_hsm_unwrap_into(ok_vault *v, const char *name, ok_kty kty, const uint8_t *aes, size_t aes_len,
                              const uint8_t *wrapped, size_t wrapped_len, ok_key_material *out)
{
    char label[OK_HSM_LABEL_MAX];
    ok_pkey *pub = NULL;
    unsigned bits = 0;
    ok_err rc;

    memset(out, 0, sizeof *out);
    if (v->hsm == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, NO_HSM);
    if (v->hsm->vt->unwrap_into == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "importing into the token is not supported by this HSM; import the key "
                                           "without -HSM");
    if (kty != OK_KTY_RSA && kty != OK_KTY_OCT)
        return ok_fail(OK_ERR_INVALID_ARG, "importing into the token is supported for RSA-HSM and oct-HSM; import "
                                           "an EC key as EC");
    OK_GUARD(ok_key_new_version(out->hsm_version));
    ok_key_hsm_label(name, out->hsm_version, label);
    OK_GUARD(v->hsm->vt->unwrap_into(v->hsm, label, kty, aes, aes_len, wrapped, wrapped_len, &pub, &bits));
    if ((kty == OK_KTY_OCT) != (pub == NULL))
        rc = ok_fail(OK_ERR_CRYPTO, "the HSM returned no public key for the imported key");
    else if (kty == OK_KTY_RSA && bits != 2048 && bits != 3072 && bits != 4096)
        rc = ok_fail(OK_ERR_INVALID_ARG, "RSA keys have 2048, 3072 or 4096 bits; the blob holds one of %u", bits);
    else if (kty == OK_KTY_OCT && bits != 128 && bits != 192 && bits != 256)
        rc = ok_fail(OK_ERR_INVALID_ARG, "oct keys have 128, 192 or 256 bits; the blob holds %u bytes", bits / 8);
    else
        rc = OK_OK;
    if (rc != OK_OK) {
        ok_pkey_free(pub);
        (void)v->hsm->vt->destroy_key(v->hsm, label);
        return rc;
    }
    out->hsm = 1;
    out->kty = kty;
    out->bits = bits;
    out->pkey = pub;
    return OK_OK;
}

ok_err ok_key_hsm_run(ok_vault *v, const char *name, const char *version, ok_kty kty, ok_hsm_op op, ok_sig_alg sig,
                      const uint8_t *in, size_t in_len, size_t out_cap, ok_key_op_result *out)
{
    char label[OK_HSM_LABEL_MAX];
    size_t n = out_cap;
    uint8_t *scratch;
    ok_err rc;

    if (v->hsm == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "key \"%s\" is held in an HSM, and this vault has no HSM attached "
                                           "(start ownkeyd with --hsm)", name);
    ok_key_hsm_label(name, version, label);
    if ((scratch = ok_secure_alloc(out_cap)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "result");
    rc = v->hsm->vt->run(v->hsm, label, kty, op, sig, in, in_len, scratch, &n);
    if (rc == OK_OK && (n == 0 || n > out_cap))
        rc = ok_fail(OK_ERR_CRYPTO, "the HSM returned a malformed result");
    if (rc == OK_OK) {
        if ((out->value = ok_secure_alloc(n)) == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "result");
        } else {
            memcpy(out->value, scratch, n);
            out->value_len = n;
        }
    }
    ok_secure_free(scratch, out_cap);
    return rc;
}

ok_err ok_key_hsm_destroy(ok_vault *v, const char *name, const char *version)
{
    char label[OK_HSM_LABEL_MAX];

    if (v->hsm == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "key \"%s\" is held in an HSM, and this vault has no HSM attached to "
                                           "destroy it (start ownkeyd with --hsm)", name);
    ok_key_hsm_label(name, version, label);
    return v->hsm->vt->destroy_key(v->hsm, label);
}

typedef struct {
    ok_vault *v;
    const char *name;
    int64_t count;
    int destroy;
} hsm_scan;

static ok_err hsm_version_row(void *ctx, const ok_val *cols, size_t n)
{
    hsm_scan *hs = ctx;

    if (n != 1 || cols[0].type != OK_VAL_TEXT || cols[0].len != OK_KEY_VERSION_LEN)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    hs->count++;
    return hs->destroy ? ok_key_hsm_destroy(hs->v, hs->name, cols[0].s) : OK_OK;
}

ok_err ok_key_hsm_scan(ok_vault *v, const char *name, int destroy, int64_t *count)
{
    hsm_scan hs = {v, name, 0, destroy};
    ok_val p[1] = {OK_VTEXT(name)};

    OK_GUARD(v->store->vt->query(v->store, "SELECT version FROM key_versions WHERE name = ? AND hsm != 0", p, 1,
                                 hsm_version_row, &hs));
    if (count != NULL)
        *count = hs.count;
    return OK_OK;
}
