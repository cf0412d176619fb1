/* Keys, the shared part: the tables (keys, key_versions, key_notifications), the rules for names,
 * versions, key_ops and attributes (tags, nbf/exp), the tags' JSON column, and reading a version row into
 * an ok_key_info. Owns no operation that changes keys (key_lifecycle.c), no key material (material.c),
 * no crypto operation (key_ops.c), no backups (key_backup.c) and no rotation (rotation.c). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vault/keys_internal.h"
#include "vault/modules.h"

/* keys: one row per name; deleted/scheduled_purge are 0 while the key is live. key_versions: one row per
 * version, ordinal = creation order within the name; material is sealed (material.c). key_notifications:
 * the Notify lifetime actions the scheduler has recorded, once per version and action. byok_used: the
 * SHA-256 of every BYOK transfer blob's ciphertext ever imported (byok.c), kept after the key is purged so
 * that a blob imports once only. */
static const char *const keys_schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS keys ("
    " name TEXT PRIMARY KEY,"
    " created INTEGER NOT NULL,"
    " recoverable_days INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " scheduled_purge INTEGER NOT NULL DEFAULT 0,"
    " rotation_policy TEXT"
    ") WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS keys_by_state ON keys(deleted, name)",
    "CREATE TABLE IF NOT EXISTS key_versions ("
    " name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,"
    " version TEXT NOT NULL,"
    " ordinal INTEGER NOT NULL,"
    " kty INTEGER NOT NULL,"
    " bits INTEGER NOT NULL,"
    " curve INTEGER NOT NULL,"
    " ops INTEGER NOT NULL,"
    " enabled INTEGER NOT NULL,"
    " nbf INTEGER NOT NULL,"
    " exp INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " tags TEXT NOT NULL,"
    " public_der BLOB,"
    " material BLOB NOT NULL,"
    " hsm INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (name, version),"
    " UNIQUE (name, ordinal)"
    ")",
    "CREATE TABLE IF NOT EXISTS key_notifications ("
    " name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,"
    " version TEXT NOT NULL,"
    " action INTEGER NOT NULL,"
    " due INTEGER NOT NULL,"
    " recorded INTEGER NOT NULL,"
    " PRIMARY KEY (name, version, action)"
    ")",
    "CREATE TABLE IF NOT EXISTS byok_used ("
    " id BLOB PRIMARY KEY,"
    " kek TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " used INTEGER NOT NULL"
    ") WITHOUT ROWID",
};

static ok_err count_row(void *ctx, const ok_val *cols, size_t n)
{
    if (n == 1 && cols[0].type == OK_VAL_INT)
        *(int64_t *)ctx = cols[0].i;
    return OK_OK;
}

ok_err ok_keys_schema(ok_store *s)
{
    int64_t has_hsm = 0;

    for (size_t i = 0; i < sizeof keys_schema_sql / sizeof keys_schema_sql[0]; i++)
        OK_GUARD(s->vt->exec(s, keys_schema_sql[i], NULL, 0, NULL));
    /* Vaults made before HSM-backed keys lack key_versions.hsm (1: material holds the token object's label). */
    OK_GUARD(s->vt->query(s, "SELECT count(*) FROM pragma_table_info('key_versions') WHERE name = 'hsm'", NULL, 0,
                          count_row, &has_hsm));
    if (has_hsm == 0)
        OK_GUARD(s->vt->exec(s, "ALTER TABLE key_versions ADD COLUMN hsm INTEGER NOT NULL DEFAULT 0", NULL, 0, NULL));
    return OK_OK;
}

/* ---- names and versions ------------------------------------------------------------------------------ */

ok_err ok_key_check_name(const char *name)
{
    size_t n;

    if (name == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "a key name is required");
    n = strlen(name);
    if (n == 0 || n > OK_KEY_NAME_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "key names have 1 to %d characters", OK_KEY_NAME_MAX);
    if (!ok_name_valid(name, OK_KEY_NAME_MAX, "-"))
        return ok_fail(OK_ERR_INVALID_ARG, "key names may hold only letters, digits and '-'");
    return OK_OK;
}

ok_err ok_key_check_version(const char *name, const char *version, int *given)
{
    size_t n;

    *given = 0;
    if (version == NULL || *version == '\0')
        return OK_OK;
    n = strlen(version);
    for (size_t i = 0; i < n; i++) {
        if (!((version[i] >= '0' && version[i] <= '9') || (version[i] >= 'a' && version[i] <= 'f')))
            n = 0;
    }
    if (n != OK_KEY_VERSION_LEN)
        return ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" has no version \"%.40s\"", name, version);
    *given = 1;
    return OK_OK;
}

ok_err ok_key_new_version(char out[OK_KEY_VERSION_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[OK_KEY_VERSION_LEN / 2];

    OK_GUARD(ok_random(r, sizeof r));
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[OK_KEY_VERSION_LEN] = '\0';
    return OK_OK;
}

/* ---- key_ops -------------------------------------------------------------------------------------------- */

static const struct {
    unsigned bit;
    const char *name;
} keyop_names[] = {
    {OK_KEYOP_ENCRYPT, "encrypt"}, {OK_KEYOP_DECRYPT, "decrypt"}, {OK_KEYOP_SIGN, "sign"},
    {OK_KEYOP_VERIFY, "verify"},   {OK_KEYOP_WRAP, "wrapKey"},    {OK_KEYOP_UNWRAP, "unwrapKey"},
    {OK_KEYOP_IMPORT, "import"},   {OK_KEYOP_EXPORT, "export"},
};

ok_err ok_keyop_parse(const char *name, unsigned *bit)
{
    if (name == NULL || bit == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_keyop_parse: NULL argument");
    for (size_t i = 0; i < sizeof keyop_names / sizeof keyop_names[0]; i++) {
        if (strcmp(name, keyop_names[i].name) == 0) {
            *bit = keyop_names[i].bit;
            return OK_OK;
        }
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown key operation \"%.40s\"", name);
}

const char *ok_keyop_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof keyop_names / sizeof keyop_names[0]; i++) {
        if (keyop_names[i].bit == bit)
            return keyop_names[i].name;
    }
    return NULL;
}

unsigned ok_key_default_ops(ok_kty kty)
{
    switch (kty) {
    case OK_KTY_RSA:
        return OK_KEYOP_ENCRYPT | OK_KEYOP_DECRYPT | OK_KEYOP_SIGN | OK_KEYOP_VERIFY | OK_KEYOP_WRAP |
               OK_KEYOP_UNWRAP;
    case OK_KTY_EC:
        return OK_KEYOP_SIGN | OK_KEYOP_VERIFY;
    case OK_KTY_OCT:
        return OK_KEYOP_ENCRYPT | OK_KEYOP_DECRYPT | OK_KEYOP_WRAP | OK_KEYOP_UNWRAP;
    }
    return 0;
}

ok_err ok_key_check_ops_for(ok_kty kty, unsigned ops)
{
    if ((ops & OK_KEYOP_IMPORT) == 0)
        return OK_OK;
    if (kty != OK_KTY_RSA)
        return ok_fail(OK_ERR_INVALID_ARG, "only an RSA key can be a key exchange key (key_ops [\"import\"])");
    if (ops != OK_KEYOP_IMPORT)
        return ok_fail(OK_ERR_INVALID_ARG, "a key exchange key has key_ops [\"import\"] and no other operation");
    return OK_OK;
}

/* ---- attributes and tags ---------------------------------------------------------------------------------- */

/* Characters (UTF-8 code points) in s; the JSON layer refuses invalid UTF-8 later. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static ok_err check_tags(const ok_tag *tags, size_t n)
{
    if (n > OK_KEY_MAX_TAGS)
        return ok_fail(OK_ERR_INVALID_ARG, "a key has at most %d tags, not %zu", OK_KEY_MAX_TAGS, n);
    if (n > 0 && tags == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "tags: NULL array");
    for (size_t i = 0; i < n; i++) {
        if (tags[i].name == NULL || tags[i].value == NULL || tags[i].name[0] == '\0')
            return ok_fail(OK_ERR_INVALID_ARG, "a tag needs a name and a value");
        if (utf8_chars(tags[i].name) > OK_KEY_TAG_MAX || utf8_chars(tags[i].value) > OK_KEY_TAG_MAX)
            return ok_fail(OK_ERR_INVALID_ARG, "tag names and values have at most %d characters", OK_KEY_TAG_MAX);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(tags[i].name, tags[j].name) == 0)
                return ok_fail(OK_ERR_INVALID_ARG, "tag \"%.64s\" is given twice", tags[i].name);
        }
    }
    return OK_OK;
}

ok_err ok_key_check_attrs(const ok_key_attrs *a)
{
    if (a == NULL)
        return OK_OK;
    if (a->has_ops && (a->ops & ~OK_KEYOPS_ALL) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key_ops bits 0x%x", a->ops & ~OK_KEYOPS_ALL);
    if ((a->has_nbf && a->nbf < 0) || (a->has_exp && a->exp < 0))
        return ok_fail(OK_ERR_INVALID_ARG, "nbf and exp are Unix seconds (0 clears them)");
    if (a->has_nbf && a->has_exp && a->nbf != 0 && a->exp != 0 && a->exp <= a->nbf)
        return ok_fail(OK_ERR_INVALID_ARG, "exp must come after nbf");
    if (a->has_tags)
        OK_GUARD(check_tags(a->tags, a->tag_count));
    return OK_OK;
}

ok_err ok_key_tags_to_json(const ok_tag *tags, size_t n, char **json)
{
    json_t *obj = json_object();
    ok_err rc = OK_OK;

    *json = NULL;
    if (obj == NULL)
        return ok_fail(OK_ERR_NOMEM, "tags");
    for (size_t i = 0; i < n; i++) {
        json_t *val = json_string(tags[i].value);
        if (val == NULL || json_object_set_new(obj, tags[i].name, val) != 0) {
            rc = ok_fail(OK_ERR_INVALID_ARG, "tags must be valid UTF-8");
            goto done;
        }
    }
    *json = json_dumps(obj, JSON_COMPACT);
    if (*json == NULL)
        rc = ok_fail(OK_ERR_NOMEM, "tags");
done:
    json_decref(obj);
    return rc;
}

void ok_key_tags_free(ok_tag *tags, size_t n)
{
    for (size_t i = 0; tags != NULL && i < n; i++) {
        free(tags[i].name);
        free(tags[i].value);
    }
    free(tags);
}

ok_err ok_key_tags_from_json(const char *text, ok_tag **tags, size_t *n)
{
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *val;
    const char *name;
    ok_err rc = OK_OK;
    size_t count;

    *tags = NULL;
    *n = 0;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return ok_fail(OK_ERR_FORMAT, "stored tags are not a JSON object");
    }
    count = json_object_size(obj);
    if (count > OK_KEY_MAX_TAGS) {
        rc = ok_fail(OK_ERR_FORMAT, "stored tags: too many");
        goto done;
    }
    if (count > 0 && (*tags = calloc(count, sizeof **tags)) == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "tags");
        goto done;
    }
    json_object_foreach(obj, name, val) {
        if (!json_is_string(val)) {
            rc = ok_fail(OK_ERR_FORMAT, "stored tags: a value is not a string");
            goto done;
        }
        (*tags)[*n].name = strdup(name);
        (*tags)[*n].value = strdup(json_string_value(val));
        (*n)++;
        if ((*tags)[*n - 1].name == NULL || (*tags)[*n - 1].value == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "tags");
            goto done;
        }
    }
done:
    json_decref(obj);
    if (rc != OK_OK) {
        ok_key_tags_free(*tags, *n);
        *tags = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- rows ------------------------------------------------------------------------------------------------ */

static int col_int(const ok_val *c, int64_t *out)
{
    if (c->type != OK_VAL_INT)
        return 0;
    *out = c->i;
    return 1;
}

static int col_text(const ok_val *c, char *out, size_t cap)
{
    if (c->type != OK_VAL_TEXT || c->len >= cap)
        return 0;
    memcpy(out, c->s, c->len + 1);
    return 1;
}

ok_err ok_key_row_to_info(const ok_val *cols, size_t n, ok_key_info *out, int64_t *ordinal)
{
    int64_t x[11];
    ok_err rc;

    memset(out, 0, sizeof *out);
    if (n != OK_KEY_NCOLS || !col_text(&cols[0], out->name, sizeof out->name) ||
        !col_text(&cols[1], out->version, sizeof out->version) || cols[11].type != OK_VAL_TEXT)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    static const int ints[11] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14};
    for (size_t i = 0; i < 11; i++) {
        if (!col_int(&cols[ints[i]], &x[i]))
            return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    }
    out->kty = (ok_kty)x[0];
    out->bits = (unsigned)x[1];
    out->curve = (ok_curve)x[2];
    out->ops = (unsigned)x[3];
    out->enabled = x[4] != 0;
    out->nbf = x[5];
    out->exp = x[6];
    out->created = x[7];
    out->updated = x[8];
    out->deleted = x[9];
    out->scheduled_purge = x[10];
    out->recoverable_days = cols[15].type == OK_VAL_INT ? (unsigned)cols[15].i : 0;
    if (ordinal != NULL)
        *ordinal = cols[16].type == OK_VAL_INT ? cols[16].i : 0;
    out->hsm = cols[17].type == OK_VAL_INT && cols[17].i != 0;
    if (out->kty != OK_KTY_RSA && out->kty != OK_KTY_EC && out->kty != OK_KTY_OCT)
        return ok_fail(OK_ERR_FORMAT, "a stored key row has an unknown type");
    OK_GUARD_GOTO(rc, ok_key_tags_from_json(cols[11].s, &out->tags, &out->tag_count), fail);
    if (out->kty != OK_KTY_OCT) {
        if (cols[12].type != OK_VAL_BLOB) {
            rc = ok_fail(OK_ERR_FORMAT, "a stored key row lacks its public key");
            goto fail;
        }
        OK_GUARD_GOTO(rc, ok_pkey_from_der(&out->public_key, cols[12].b, cols[12].len, 0), fail);
    }
    return OK_OK;
fail:
    ok_key_info_clear(out);
    return rc;
}

void ok_key_info_clear(ok_key_info *k)
{
    if (k == NULL)
        return;
    ok_key_tags_free(k->tags, k->tag_count);
    ok_pkey_free(k->public_key);
    memset(k, 0, sizeof *k);
}

void ok_key_page_clear(ok_key_page *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->items != NULL && i < p->count; i++)
        ok_key_info_clear(&p->items[i]);
    free(p->items);
    free(p->next);
    memset(p, 0, sizeof *p);
}

typedef struct {
    ok_key_info *out;
    int found;
} load_ctx;

static ok_err load_row(void *ctx, const ok_val *cols, size_t n)
{
    load_ctx *lc = ctx;

    if (lc->found)
        return OK_OK;
    OK_GUARD(ok_key_row_to_info(cols, n, lc->out, NULL));
    lc->found = 1;
    return OK_OK;
}

ok_err ok_key_load(ok_vault *v, ok_key_state state, const char *name, const char *version, ok_key_info *out)
{
    load_ctx lc = {out, 0};
    int given = 0;

    memset(out, 0, sizeof *out);
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_key_check_version(name, version, &given));
    if (given) {
        ok_val p[3] = {OK_VTEXT(name), OK_VTEXT(version), OK_VINT(state == OK_KEYS_DELETED)};
        OK_GUARD(v->store->vt->query(v->store,
                                     "SELECT " OK_KEY_COLS " FROM key_versions v JOIN keys k ON k.name = v.name"
                                     " WHERE v.name = ? AND v.version = ? AND (k.deleted != 0) = ?",
                                     p, 3, load_row, &lc));
    } else {
        ok_val p[2] = {OK_VTEXT(name), OK_VINT(state == OK_KEYS_DELETED)};
        OK_GUARD(v->store->vt->query(v->store,
                                     "SELECT " OK_KEY_COLS " FROM key_versions v JOIN keys k ON k.name = v.name"
                                     " WHERE v.name = ? AND (k.deleted != 0) = ? ORDER BY v.ordinal DESC LIMIT 1",
                                     p, 2, load_row, &lc));
    }
    if (lc.found)
        return OK_OK;
    if (state == OK_KEYS_DELETED)
        return ok_fail(OK_ERR_NOT_FOUND, "no deleted key \"%s\"", name);
    if (given)
        return ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" has no version \"%s\"", name, version);
    return ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
}

typedef struct {
    int exists, deleted;
} name_state;

static ok_err name_row(void *ctx, const ok_val *cols, size_t n)
{
    name_state *ns = ctx;

    ns->exists = 1;
    ns->deleted = n == 1 && cols[0].type == OK_VAL_INT && cols[0].i != 0;
    return OK_OK;
}

ok_err ok_key_name_state(ok_store *s, const char *name, int *exists, int *deleted)
{
    name_state ns = {0, 0};
    ok_val p[1] = {OK_VTEXT(name)};

    OK_GUARD(s->vt->query(s, "SELECT deleted FROM keys WHERE name = ?", p, 1, name_row, &ns));
    *exists = ns.exists;
    *deleted = ns.deleted;
    return OK_OK;
}
