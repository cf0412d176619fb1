/* Backup and restore of one key with all its versions. The blob is
 *   "OKBK" || format (1) || nonce(12) || AES-256-GCM(backup_key, AAD "ownkey:backup", inner) || tag(16)
 * with backup_key = HKDF(master, "ownkey backup"), so only a vault with the same master key opens it. The
 * inner structure (big-endian) is: u8 1, u16 name length, name, u64 created, u32 policy length, rotation
 * policy JSON, u32 version count, then per version in creation order: 32-byte version, u8 kty, u16 bits,
 * u8 curve, u32 ops, u8 enabled, u64 nbf, exp, created, updated, u32 + tags JSON, u32 + public SPKI, u32 +
 * sealed material exactly as stored (still sealed under the material key with its name/version AAD).
 * Restore refuses a name that exists, live or soft-deleted (OK_ERR_CONFLICT), and a blob that fails
 * authentication (OK_ERR_AUTH) or parsing (OK_ERR_INVALID_ARG). */
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"
#include "vault/meta.h"

#define MAGIC "OKBK"
#define FORMAT 1
#define INNER_FORMAT 1
#define AAD "ownkey:backup"
#define BACKUP_MAX (64u * 1024u * 1024u)
#define MAX_VERSIONS 100000u
#define HEADER_LEN (4 + 1 + OK_GCM_IV_LEN)

typedef struct {
    char version[OK_KEY_VERSION_LEN + 1];
    int64_t kty, bits, curve, ops, enabled, nbf, exp, created, updated;
    const char *tags;     /* points into the source (row or plaintext) */
    size_t tags_len;
    const uint8_t *pub, *mat;
    size_t pub_len, mat_len;
} version_rec;

/* ---- backup ----------------------------------------------------------------------------------------- */

static ok_err put_bytes32(ok_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return ok_fail(OK_ERR_LIMIT, "backup field too large");
    OK_GUARD(ok_buf_u32(b, (uint32_t)n));
    return ok_buf_put(b, p, n);
}

typedef struct {
    ok_buf *b;
    uint32_t count;
} backup_ctx;

static ok_err version_out(void *ctx, const ok_val *c, size_t n)
{
    backup_ctx *bc = ctx;
    ok_buf *b = bc->b;

    if (n != 13 || c[0].type != OK_VAL_TEXT || c[0].len != OK_KEY_VERSION_LEN || c[10].type != OK_VAL_TEXT ||
        c[12].type != OK_VAL_BLOB)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    for (size_t i = 1; i <= 9; i++) {
        if (c[i].type != OK_VAL_INT)
            return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    }
    OK_GUARD(ok_buf_put(b, c[0].s, OK_KEY_VERSION_LEN));
    OK_GUARD(ok_buf_u8(b, (uint8_t)c[1].i));
    OK_GUARD(ok_buf_u16(b, (uint16_t)c[2].i));
    OK_GUARD(ok_buf_u8(b, (uint8_t)c[3].i));
    OK_GUARD(ok_buf_u32(b, (uint32_t)c[4].i));
    OK_GUARD(ok_buf_u8(b, (uint8_t)(c[5].i != 0)));
    for (size_t i = 6; i <= 9; i++)
        OK_GUARD(ok_buf_u64(b, (uint64_t)c[i].i));
    OK_GUARD(put_bytes32(b, c[10].s, c[10].len));
    if (c[11].type == OK_VAL_BLOB)
        OK_GUARD(put_bytes32(b, c[11].b, c[11].len));
    else
        OK_GUARD(ok_buf_u32(b, 0));
    OK_GUARD(put_bytes32(b, c[12].b, c[12].len));
    bc->count++;
    return OK_OK;
}

typedef struct {
    int found;
    int64_t created;
    char *policy;
} name_rec;

static ok_err name_out(void *ctx, const ok_val *c, size_t n)
{
    name_rec *nr = ctx;

    if (n != 2 || c[0].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    nr->found = 1;
    nr->created = c[0].i;
    if (c[1].type == OK_VAL_TEXT && (nr->policy = strdup(c[1].s)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "backup");
    return OK_OK;
}

/* The inner structure of a live key, read in one transaction so that it is consistent. */
static ok_err build_inner(ok_vault *v, const char *name, ok_buf *b)
{
    ok_store *s = v->store;
    ok_val p[1] = {OK_VTEXT(name)};
    name_rec nr = {0, 0, NULL};
    backup_ctx bc = {b, 0};
    size_t count_at;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, s->vt->query(s, "SELECT created, rotation_policy FROM keys WHERE name = ? AND deleted = 0", p, 1,
                                   name_out, &nr),
                  done);
    if (!nr.found) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
        goto done;
    }
    OK_GUARD_GOTO(rc, ok_buf_u8(b, INNER_FORMAT), done);
    OK_GUARD_GOTO(rc, ok_buf_u16(b, (uint16_t)strlen(name)), done);
    OK_GUARD_GOTO(rc, ok_buf_put(b, name, strlen(name)), done);
    OK_GUARD_GOTO(rc, ok_buf_u64(b, (uint64_t)nr.created), done);
    OK_GUARD_GOTO(rc, put_bytes32(b, nr.policy, nr.policy ? strlen(nr.policy) : 0), done);
    count_at = b->len;
    OK_GUARD_GOTO(rc, ok_buf_u32(b, 0), done);
    OK_GUARD_GOTO(rc,
                  s->vt->query(s,
                               "SELECT version, kty, bits, curve, ops, enabled, nbf, exp, created, updated, tags, "
                               "public_der, material FROM key_versions WHERE name = ? ORDER BY ordinal",
                               p, 1, version_out, &bc),
                  done);
    ok_store_u32(b->data + count_at, bc.count);
done:
    s->vt->rollback(s); /* read only */
    free(nr.policy);
    return rc;
}

static ok_err seal_blob(ok_vault *v, const ok_buf *inner, uint8_t **blob, size_t *len)
{
    size_t n = HEADER_LEN + inner->len + OK_GCM_TAG_LEN;
    uint8_t *out = malloc(n);
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_NOMEM, "backup");
    memcpy(out, MAGIC, 4);
    out[4] = FORMAT;
    rc = ok_random(out + 5, OK_GCM_IV_LEN);
    if (rc == OK_OK)
        rc = ok_aes_gcm_encrypt(v->backup_key, OK_AES256_KEY_LEN, out + 5, OK_GCM_IV_LEN, (const uint8_t *)AAD,
                                strlen(AAD), inner->data, inner->len, out + HEADER_LEN, out + HEADER_LEN + inner->len);
    if (rc != OK_OK) {
        free(out);
        return rc;
    }
    *blob = out;
    *len = n;
    return OK_OK;
}

ok_err ok_vault_key_backup(ok_vault *v, const char *name, uint8_t **blob, size_t *len)
{
    ok_buf inner;
    ok_err rc;

    if (v == NULL || blob == NULL || len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_backup: NULL argument");
    *blob = NULL;
    *len = 0;
    OK_GUARD(ok_key_check_name(name));
    ok_buf_init(&inner, BACKUP_MAX - HEADER_LEN - OK_GCM_TAG_LEN);
    OK_GUARD_GOTO(rc, ok_seal_read_begin(v), out);
    rc = build_inner(v, name, &inner);
    if (rc == OK_OK) {
        /* An HSM key's material never leaves the token, so there is nothing a backup could carry. */
        int64_t hsm_versions = 0;
        rc = ok_key_hsm_scan(v, name, 0, &hsm_versions);
        if (rc == OK_OK && hsm_versions > 0)
            rc = ok_fail(OK_ERR_INVALID_ARG, "HSM-backed keys cannot be backed up");
    }
    if (rc == OK_OK)
        rc = seal_blob(v, &inner, blob, len);
    ok_seal_read_end(v);
out:
    ok_buf_free(&inner);
    return rc;
}

/* ---- restore ----------------------------------------------------------------------------------------- */

#define BAD_BLOB(what) ok_fail(OK_ERR_INVALID_ARG, "the backup blob is malformed (%s)", what)

static ok_err take_bytes32(ok_cursor *c, const uint8_t **p, size_t *n)
{
    uint32_t len;

    if (ok_cursor_u32(c, &len) != OK_OK || ok_cursor_bytes(c, len, p) != OK_OK)
        return BAD_BLOB("truncated field");
    *n = len;
    return OK_OK;
}

static ok_err take_u(ok_cursor *c, size_t width, int64_t *out)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    ok_err rc;

    switch (width) {
    case 1: rc = ok_cursor_u8(c, &u8); *out = u8; break;
    case 2: rc = ok_cursor_u16(c, &u16); *out = u16; break;
    case 4: rc = ok_cursor_u32(c, &u32); *out = u32; break;
    default: rc = ok_cursor_u64(c, &u64); *out = (int64_t)u64; break;
    }
    return rc == OK_OK ? OK_OK : BAD_BLOB("truncated");
}

static ok_err parse_version(ok_cursor *c, version_rec *r)
{
    static const size_t widths[9] = {1, 2, 1, 4, 1, 8, 8, 8, 8};
    int64_t *fields[9] = {&r->kty, &r->bits,    &r->curve, &r->ops, &r->enabled,
                          &r->nbf, &r->exp, &r->created, &r->updated};
    const uint8_t *p;
    int given = 0;

    if (ok_cursor_copy(c, r->version, OK_KEY_VERSION_LEN) != OK_OK)
        return BAD_BLOB("truncated");
    r->version[OK_KEY_VERSION_LEN] = '\0';
    if (ok_key_check_version("", r->version, &given) != OK_OK)
        return BAD_BLOB("version");
    for (size_t i = 0; i < 9; i++)
        OK_GUARD(take_u(c, widths[i], fields[i]));
    if (r->kty < OK_KTY_RSA || r->kty > OK_KTY_OCT || (r->ops & ~(int64_t)OK_KEYOPS_ALL) != 0)
        return BAD_BLOB("attributes");
    OK_GUARD(take_bytes32(c, &p, &r->tags_len));
    r->tags = (const char *)p;
    OK_GUARD(take_bytes32(c, &r->pub, &r->pub_len));
    OK_GUARD(take_bytes32(c, &r->mat, &r->mat_len));
    if ((r->kty != OK_KTY_OCT) != (r->pub_len != 0) || r->mat_len == 0)
        return BAD_BLOB("key");
    return OK_OK;
}

typedef struct {
    char name[OK_KEY_NAME_MAX + 1];
    int64_t created;
    char *policy;        /* NULL if none */
    version_rec *versions;
    size_t count;
} backup_rec;

static void backup_rec_free(backup_rec *r)
{
    free(r->policy);
    free(r->versions);
    memset(r, 0, sizeof *r);
}

/* Every length is checked against what remains before it is used; the versions point into p. */
static ok_err parse_inner(const uint8_t *p, size_t len, backup_rec *r)
{
    ok_cursor c;
    int64_t format, name_len, count;
    const uint8_t *name, *policy;
    size_t policy_len = 0;

    ok_cursor_init(&c, p, len);
    OK_GUARD(take_u(&c, 1, &format));
    if (format != INNER_FORMAT)
        return BAD_BLOB("format");
    OK_GUARD(take_u(&c, 2, &name_len));
    if (name_len < 1 || name_len > OK_KEY_NAME_MAX || ok_cursor_bytes(&c, (size_t)name_len, &name) != OK_OK)
        return BAD_BLOB("name");
    memcpy(r->name, name, (size_t)name_len);
    r->name[name_len] = '\0';
    if (ok_key_check_name(r->name) != OK_OK)
        return BAD_BLOB("name");
    OK_GUARD(take_u(&c, 8, &r->created));
    OK_GUARD(take_bytes32(&c, &policy, &policy_len));
    if (policy_len > 0 && (r->policy = strndup((const char *)policy, policy_len)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "restore");
    OK_GUARD(take_u(&c, 4, &count));
    if (count < 1 || (uint64_t)count > MAX_VERSIONS || (size_t)count > ok_cursor_remaining(&c) / 64)
        return BAD_BLOB("version count");
    r->versions = calloc((size_t)count, sizeof *r->versions);
    if (r->versions == NULL)
        return ok_fail(OK_ERR_NOMEM, "restore");
    for (r->count = 0; r->count < (size_t)count; r->count++)
        OK_GUARD(parse_version(&c, &r->versions[r->count]));
    if (ok_cursor_remaining(&c) != 0)
        return BAD_BLOB("trailing bytes");
    return OK_OK;
}

/* Every version's material must open under this vault's material key for its name and version. */
static ok_err check_materials(ok_vault *v, const backup_rec *r)
{
    for (size_t i = 0; i < r->count; i++) {
        const version_rec *vr = &r->versions[i];
        ok_key_material m;

        OK_GUARD(ok_key_material_open(v, r->name, vr->version, (ok_kty)vr->kty, vr->mat, vr->mat_len, &m));
        ok_key_material_clear(&m);
    }
    return OK_OK;
}

static ok_err insert_version(ok_store *s, const char *name, const version_rec *vr, int64_t ordinal)
{
    char *tags = strndup(vr->tags, vr->tags_len);
    ok_err rc;

    if (tags == NULL)
        return ok_fail(OK_ERR_NOMEM, "restore");
    ok_val p[15] = {
        OK_VTEXT(name),        OK_VTEXT(vr->version), OK_VINT(ordinal),     OK_VINT(vr->kty),
        OK_VINT(vr->bits),     OK_VINT(vr->curve),    OK_VINT(vr->ops),     OK_VINT(vr->enabled),
        OK_VINT(vr->nbf),      OK_VINT(vr->exp),      OK_VINT(vr->created), OK_VINT(vr->updated),
        OK_VTEXT(tags),        vr->pub_len ? OK_VBLOB(vr->pub, vr->pub_len) : OK_VNULL,
        OK_VBLOB(vr->mat, vr->mat_len),
    };
    rc = s->vt->exec(s,
                     "INSERT INTO key_versions(name, version, ordinal, kty, bits, curve, ops, enabled, nbf, exp, "
                     "created, updated, tags, public_der, material) "
                     "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     p, 15, NULL);
    free(tags);
    return rc;
}

static ok_err insert_all(ok_vault *v, const backup_rec *r)
{
    ok_store *s = v->store;
    int exists = 0, deleted = 0;
    int64_t retention = 90;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_key_name_state(s, r->name, &exists, &deleted), fail);
    if (exists) {
        rc = ok_fail(OK_ERR_CONFLICT, deleted ? "key \"%s\" is deleted but recoverable; purge it before restoring"
                                              : "key \"%s\" already exists",
                     r->name);
        goto fail;
    }
    (void)ok_meta_get_int(s, OK_META_RETENTION_DAYS, &retention);
    ok_val k[4] = {OK_VTEXT(r->name), OK_VINT(r->created), OK_VINT(retention),
                   r->policy ? OK_VTEXT(r->policy) : OK_VNULL};
    OK_GUARD_GOTO(rc,
                  s->vt->exec(s,
                              "INSERT INTO keys(name, created, recoverable_days, rotation_policy) "
                              "VALUES(?, ?, ?, ?)",
                              k, 4, NULL),
                  fail);
    for (size_t i = 0; i < r->count; i++)
        OK_GUARD_GOTO(rc, insert_version(s, r->name, &r->versions[i], (int64_t)i + 1), fail);
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

static ok_err open_blob(ok_vault *v, const uint8_t *blob, size_t len, ok_buf *inner)
{
    size_t n;

    if (len < HEADER_LEN + OK_GCM_TAG_LEN + 1 || len > BACKUP_MAX || memcmp(blob, MAGIC, 4) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "not an ownkey key backup");
    if (blob[4] != FORMAT)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key backup format %u", blob[4]);
    n = len - HEADER_LEN - OK_GCM_TAG_LEN;
    OK_GUARD(ok_buf_reserve(inner, n));
    if (ok_aes_gcm_decrypt(v->backup_key, OK_AES256_KEY_LEN, blob + 5, OK_GCM_IV_LEN, (const uint8_t *)AAD,
                           strlen(AAD), blob + HEADER_LEN, n, blob + HEADER_LEN + n, inner->data) != OK_OK)
        return ok_fail(OK_ERR_AUTH, "the backup does not open in this vault (altered, or from a vault with another "
                                    "master key)");
    inner->len = n;
    return OK_OK;
}

static ok_err restore_locked(ok_vault *v, const uint8_t *blob, size_t len, ok_key_info *out)
{
    backup_rec r;
    ok_buf inner;
    ok_err rc;

    memset(&r, 0, sizeof r);
    ok_buf_init(&inner, BACKUP_MAX);
    OK_GUARD_GOTO(rc, open_blob(v, blob, len, &inner), done);
    OK_GUARD_GOTO(rc, parse_inner(inner.data, inner.len, &r), done);
    OK_GUARD_GOTO(rc, check_materials(v, &r), done);
    OK_GUARD_GOTO(rc, insert_all(v, &r), done);
    if (out != NULL)
        rc = ok_key_load(v, OK_KEYS_LIVE, r.name, NULL, out);
done:
    backup_rec_free(&r);
    ok_buf_free(&inner);
    return rc;
}

ok_err ok_vault_key_restore(ok_vault *v, const uint8_t *blob, size_t len, ok_key_info *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || blob == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_restore: NULL argument");
    OK_GUARD(ok_seal_read_begin(v));
    rc = restore_locked(v, blob, len, out);
    ok_seal_read_end(v);
    return rc;
}
