/* Keys and their versions: create, import, get, update, rotate. Creating, importing and rotating add a
 * version (creating the name on first use) in one transaction; a soft-deleted name refuses new versions.
 * Owns no deletion (key_deletion.c), listing (key_list.c), material encoding (material.c), crypto
 * operation (key_ops.c) or rotation policy (rotation.c). */
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"
#include "vault/meta.h"

#define RETENTION_FALLBACK 90

/* The values a new version's row gets. */
typedef struct {
    unsigned ops;
    int enabled;
    int64_t nbf, exp;
    char *tags_json;
    uint8_t *public_der;
    size_t public_len;
    uint8_t *sealed;
    size_t sealed_len;
} new_row;

static void new_row_free(new_row *r)
{
    free(r->tags_json);
    free(r->public_der);
    free(r->sealed);
    memset(r, 0, sizeof *r);
}

static ok_err build_row(ok_vault *v, const char *name, const char *version, const ok_key_material *m,
                        const ok_key_attrs *a, int64_t exp_default, new_row *r)
{
    memset(r, 0, sizeof *r);
    r->ops = a != NULL && a->has_ops ? a->ops : ok_key_default_ops(m->kty);
    r->enabled = a != NULL && a->has_enabled ? a->enabled != 0 : 1;
    r->nbf = a != NULL && a->has_nbf ? a->nbf : 0;
    r->exp = a != NULL && a->has_exp ? a->exp : exp_default;
    if (a != NULL && a->has_tags)
        OK_GUARD(ok_key_tags_to_json(a->tags, a->tag_count, &r->tags_json));
    else if ((r->tags_json = strdup("{}")) == NULL)
        return ok_fail(OK_ERR_NOMEM, "tags");
    if (m->pkey != NULL)
        OK_GUARD(ok_pkey_public_der(m->pkey, &r->public_der, &r->public_len));
    if (m->hsm) {
        /* No material leaves the token: the row holds the token object's label (not secret). */
        char label[OK_HSM_LABEL_MAX];
        ok_key_hsm_label(name, version, label);
        r->sealed_len = strlen(label);
        if ((r->sealed = malloc(r->sealed_len)) == NULL)
            return ok_fail(OK_ERR_NOMEM, "key row");
        memcpy(r->sealed, label, r->sealed_len);
        return OK_OK;
    }
    return ok_key_material_seal(v, name, version, m, &r->sealed, &r->sealed_len);
}

typedef struct {
    int64_t value;
} int_result;

static ok_err int_row(void *ctx, const ok_val *cols, size_t n)
{
    int_result *ir = ctx;

    if (n == 1 && cols[0].type == OK_VAL_INT)
        ir->value = cols[0].i;
    return OK_OK;
}

/* Inside the transaction: the name row (created if new; refused if soft-deleted) and the next ordinal. */
static ok_err claim_name(ok_store *s, const char *name, int64_t now, int64_t *ordinal)
{
    int exists = 0, deleted = 0;
    int64_t retention = RETENTION_FALLBACK;
    int_result next = {1};
    ok_val p[1] = {OK_VTEXT(name)};

    OK_GUARD(ok_key_name_state(s, name, &exists, &deleted));
    if (deleted)
        return ok_fail(OK_ERR_CONFLICT, "key \"%s\" is deleted but recoverable; recover or purge it first", name);
    if (!exists) {
        (void)ok_meta_get_int(s, OK_META_RETENTION_DAYS, &retention);
        ok_val k[3] = {OK_VTEXT(name), OK_VINT(now), OK_VINT(retention)};
        OK_GUARD(s->vt->exec(s, "INSERT INTO keys(name, created, recoverable_days) VALUES(?, ?, ?)", k, 3, NULL));
    }
    OK_GUARD(s->vt->query(s, "SELECT coalesce(max(ordinal), 0) + 1 FROM key_versions WHERE name = ?", p, 1, int_row,
                          &next));
    *ordinal = next.value;
    return OK_OK;
}

/* blob_id/kek_kid: a BYOK import's blob, claimed inside the transaction (NULL otherwise). */
static ok_err add_version(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                          int64_t exp_default, const uint8_t *blob_id, const char *kek_kid, ok_key_info *out)
{
    ok_store *s = v->store;
    char version[OK_KEY_VERSION_LEN + 1];
    int64_t now = ok_vault_now(), ordinal = 0;
    new_row r;
    ok_err rc;

    if (m->hsm)
        memcpy(version, m->hsm_version, sizeof version);
    else
        OK_GUARD(ok_key_new_version(version));
    OK_GUARD_GOTO(rc, build_row(v, name, version, m, attrs, exp_default, &r), done);
    if (r.nbf != 0 && r.exp != 0 && r.exp <= r.nbf) {
        rc = ok_fail(OK_ERR_INVALID_ARG, "exp must come after nbf");
        goto done;
    }
    OK_GUARD_GOTO(rc, s->vt->begin(s), done);
    OK_GUARD_GOTO(rc, claim_name(s, name, now, &ordinal), rollback);
    if (blob_id != NULL)
        OK_GUARD_GOTO(rc, ok_byok_claim(s, blob_id, kek_kid, name, version, now), rollback);
    ok_val p[16] = {
        OK_VTEXT(name),    OK_VTEXT(version), OK_VINT(ordinal),   OK_VINT(m->kty),
        OK_VINT(m->bits),  OK_VINT(m->kty == OK_KTY_EC ? m->curve : 0),  OK_VINT(r.ops),
        OK_VINT(r.enabled), OK_VINT(r.nbf),   OK_VINT(r.exp),     OK_VINT(now),
        OK_VINT(now),      OK_VTEXT(r.tags_json),
        r.public_der ? OK_VBLOB(r.public_der, r.public_len) : OK_VNULL,
        OK_VBLOB(r.sealed, r.sealed_len), OK_VINT(m->hsm != 0),
    };
    OK_GUARD_GOTO(rc,
                  s->vt->exec(s,
                              "INSERT INTO key_versions(name, version, ordinal, kty, bits, curve, ops, enabled, nbf, "
                              "exp, created, updated, tags, public_der, material, hsm) "
                              "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              p, 16, NULL),
                  rollback);
    OK_GUARD_GOTO(rc, s->vt->commit(s), rollback);
    if (out != NULL)
        rc = ok_key_load(v, OK_KEYS_LIVE, name, version, out);
    goto done;
rollback:
    s->vt->rollback(s);
done:
    new_row_free(&r);
    return rc;
}

ok_err ok_key_add_version(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                          int64_t exp_default, ok_key_info *out)
{
    return add_version(v, name, m, attrs, exp_default, NULL, NULL, out);
}

ok_err ok_key_add_version_once(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                               const uint8_t blob_id[OK_SHA256_LEN], const char *kek_kid, ok_key_info *out)
{
    if (blob_id == NULL || kek_kid == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_key_add_version_once: NULL argument");
    return add_version(v, name, m, attrs, 0, blob_id, kek_kid, out);
}

/* ---- create and import ------------------------------------------------------------------------------ */

static ok_err spec_defaults(const ok_key_spec *spec, unsigned *bits, ok_curve *curve)
{
    *bits = spec->bits;
    *curve = spec->curve;
    switch (spec->kty) {
    case OK_KTY_RSA:
        if (*bits == 0)
            *bits = 2048;
        return OK_OK;
    case OK_KTY_EC:
        if (*curve == 0)
            *curve = OK_CURVE_P256;
        if (*bits != 0 && *bits != (*curve == OK_CURVE_P384 ? 384u : 256u))
            return ok_fail(OK_ERR_INVALID_ARG, "EC keys take a curve, not a size");
        return OK_OK;
    case OK_KTY_OCT:
        if (*bits == 0)
            *bits = 256;
        return OK_OK;
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown key type %d", (int)spec->kty);
}

/* Fails fast when sealed, before a possibly slow key generation that runs without the seal lock. */
static ok_err require_unsealed(ok_vault *v)
{
    OK_GUARD(ok_seal_read_begin(v));
    ok_seal_read_end(v);
    return OK_OK;
}

static ok_err add_locked(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                         ok_key_info *out)
{
    ok_err rc;

    OK_GUARD(ok_seal_read_begin(v));
    rc = ok_key_add_version(v, name, m, attrs, 0, out);
    ok_seal_read_end(v);
    return rc;
}

ok_err ok_vault_key_create(ok_vault *v, const char *name, const ok_key_spec *spec, ok_key_info *out)
{
    ok_key_material m;
    unsigned bits;
    ok_curve curve;
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || spec == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_create: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(spec_defaults(spec, &bits, &curve));
    OK_GUARD(ok_key_check_attrs(&spec->attrs));
    if (spec->attrs.has_ops)
        OK_GUARD(ok_key_check_ops_for(spec->kty, spec->attrs.ops));
    if (spec->attrs.has_ops && (spec->attrs.ops & OK_KEYOP_IMPORT) != 0) {
        /* a key exchange key (software or RSA-HSM): 3072 (the default) or 4096 bits */
        if (spec->bits == 0)
            bits = 3072;
        else if (bits != 3072 && bits != 4096)
            return ok_fail(OK_ERR_INVALID_ARG, "a key exchange key has 3072 or 4096 bits, not %u", bits);
    }
    OK_GUARD(require_unsealed(v));
    if (spec->hsm)
        OK_GUARD(ok_key_hsm_generate(v, name, spec->kty, bits, curve, &m));
    else
        OK_GUARD(ok_key_material_generate(spec->kty, bits, curve, &m));
    rc = add_locked(v, name, &m, &spec->attrs, out);
    if (rc != OK_OK && m.hsm)
        (void)ok_key_hsm_destroy(v, name, m.hsm_version); /* no row names it: do not leave it in the token */
    ok_key_material_clear(&m);
    return rc;
}

ok_err ok_vault_key_import(ok_vault *v, const char *name, const ok_jwk *key, const ok_key_attrs *attrs,
                           ok_key_info *out)
{
    ok_key_material m;
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || key == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_import: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_key_check_attrs(attrs));
    if (attrs != NULL && attrs->has_ops && (attrs->ops & OK_KEYOP_IMPORT) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "a key exchange key (key_ops [\"import\"]) is made by the vault with "
                                           "create, never imported");
    OK_GUARD(ok_key_material_from_jwk(key, &m));
    rc = add_locked(v, name, &m, attrs, out);
    ok_key_material_clear(&m);
    return rc;
}

/* ---- get and update ------------------------------------------------------------------------------------ */

ok_err ok_vault_key_get(ok_vault *v, const char *name, const char *version, ok_key_info *out)
{
    ok_err rc;

    if (v == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_get: NULL argument");
    memset(out, 0, sizeof *out);
    OK_GUARD(ok_seal_read_begin(v));
    rc = ok_key_load(v, OK_KEYS_LIVE, name, version, out);
    ok_seal_read_end(v);
    return rc;
}

static ok_err update_row(ok_vault *v, const ok_key_info *cur, const ok_key_attrs *a)
{
    unsigned ops = a->has_ops ? a->ops : cur->ops;
    int enabled = a->has_enabled ? a->enabled != 0 : cur->enabled;
    int64_t nbf = a->has_nbf ? a->nbf : cur->nbf, exp = a->has_exp ? a->exp : cur->exp;
    char *tags = NULL;
    ok_err rc;

    if (nbf != 0 && exp != 0 && exp <= nbf)
        return ok_fail(OK_ERR_INVALID_ARG, "exp must come after nbf");
    if (((ops ^ cur->ops) & OK_KEYOP_IMPORT) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the import operation is fixed when a key is created: a key exchange key "
                                           "stays one, and no other key can become one");
    OK_GUARD(ok_key_check_ops_for(cur->kty, ops));
    if (a->has_tags)
        OK_GUARD(ok_key_tags_to_json(a->tags, a->tag_count, &tags));
    else
        OK_GUARD(ok_key_tags_to_json(cur->tags, cur->tag_count, &tags));
    ok_val p[8] = {OK_VINT(ops), OK_VINT(enabled), OK_VINT(nbf),           OK_VINT(exp),
                   OK_VTEXT(tags), OK_VINT(ok_vault_now()), OK_VTEXT(cur->name), OK_VTEXT(cur->version)};
    rc = v->store->vt->exec(v->store,
                            "UPDATE key_versions SET ops = ?, enabled = ?, nbf = ?, exp = ?, tags = ?, updated = ? "
                            "WHERE name = ? AND version = ?",
                            p, 8, NULL);
    free(tags);
    return rc;
}

static ok_err update_locked(ok_vault *v, const char *name, const char *version, const ok_key_attrs *attrs,
                            ok_key_info *out)
{
    ok_store *s = v->store;
    ok_key_info cur;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_key_load(v, OK_KEYS_LIVE, name, version, &cur), rollback);
    rc = update_row(v, &cur, attrs);
    if (rc == OK_OK)
        rc = s->vt->commit(s);
    if (rc == OK_OK && out != NULL)
        rc = ok_key_load(v, OK_KEYS_LIVE, name, cur.version, out);
    ok_key_info_clear(&cur);
    if (rc == OK_OK)
        return OK_OK;
rollback:
    s->vt->rollback(s); /* nothing to do if the commit went through */
    return rc;
}

ok_err ok_vault_key_update(ok_vault *v, const char *name, const char *version, const ok_key_attrs *attrs,
                           ok_key_info *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || attrs == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_update: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_key_check_attrs(attrs));
    OK_GUARD(ok_seal_read_begin(v));
    rc = update_locked(v, name, version, attrs, out);
    ok_seal_read_end(v);
    return rc;
}

/* ---- rotate ----------------------------------------------------------------------------------------------- */

ok_err ok_key_rotate_locked(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_key_info latest;
    ok_key_material m;
    ok_key_attrs attrs;
    int64_t expiry = 0;
    ok_err rc;

    OK_GUARD(ok_key_load(v, OK_KEYS_LIVE, name, NULL, &latest));
    OK_GUARD_GOTO(rc, ok_rotation_expiry(v->store, name, &expiry), done);
    if (latest.hsm) /* an HSM key rotates to a new object in the token */
        OK_GUARD_GOTO(rc, ok_key_hsm_generate(v, name, latest.kty, latest.bits, latest.curve, &m), done);
    else
        OK_GUARD_GOTO(rc, ok_key_material_generate(latest.kty, latest.bits, latest.curve, &m), done);
    memset(&attrs, 0, sizeof attrs);
    attrs.has_ops = 1;
    attrs.ops = latest.ops;
    attrs.has_tags = 1;
    attrs.tags = latest.tags;
    attrs.tag_count = latest.tag_count;
    rc = ok_key_add_version(v, name, &m, &attrs, expiry > 0 ? ok_vault_now() + expiry : 0, out);
    if (rc != OK_OK && m.hsm)
        (void)ok_key_hsm_destroy(v, name, m.hsm_version);
    ok_key_material_clear(&m);
done:
    ok_key_info_clear(&latest);
    return rc;
}

ok_err ok_vault_key_rotate(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_rotate: NULL vault");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = ok_key_rotate_locked(v, name, out);
    ok_seal_read_end(v);
    return rc;
}
