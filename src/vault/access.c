/* ownkey vault: identities and their bearer tokens (issue 3 §4). Owns the tables `identities` and
 * `tokens` and the token format: "okt_" + base64url(32 random bytes). A token is shown once and stored
 * only as HMAC-SHA256(token_key, token); authentication looks the MAC up through its UNIQUE index and
 * compares the stored MAC in constant time. Token buffers are zeroized after use and never logged.
 * Access policies, permission names and ok_vault_allowed live in policies.c. Does not own: the
 * token_key (seal.c derives it from the master key), the HTTP mapping, auditing. */
#include <stdlib.h>
#include <string.h>

#include "ownkey/crypto.h"
#include "vault/access_internal.h"
#include "vault/modules.h"

#define TOKEN_PREFIX "okt_"
#define TOKEN_PREFIX_LEN 4
#define TOKEN_RAW_LEN 32
#define TOKEN_LEN (TOKEN_PREFIX_LEN + 43) /* 43 = base64url(32 bytes) without padding */
#define TOKEN_ID_LEN 32                   /* hex of 16 random bytes */
#define TOKEN_MAC_LEN OK_SHA256_LEN

/* One statement each: the store interface takes single statements. */
static const char *const access_schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS identities("
    " name TEXT PRIMARY KEY,"
    " created INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens("
    " id TEXT PRIMARY KEY,"
    " identity TEXT NOT NULL REFERENCES identities(name) ON DELETE CASCADE,"
    " mac BLOB NOT NULL UNIQUE,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0)",
    /* Cascading deletes and per-identity revocation look tokens up by identity. */
    "CREATE INDEX IF NOT EXISTS tokens_by_identity ON tokens(identity)",
    "CREATE TABLE IF NOT EXISTS policies("
    " identity TEXT NOT NULL REFERENCES identities(name) ON DELETE CASCADE,"
    " pattern TEXT NOT NULL,"
    " perms INTEGER NOT NULL,"
    " PRIMARY KEY(identity, pattern))",
};

ok_err ok_access_schema(ok_store *s)
{
    if (!s)
        return ok_fail(OK_ERR_INVALID_ARG, "no store");
    for (size_t i = 0; i < sizeof access_schema_sql / sizeof access_schema_sql[0]; i++)
        OK_GUARD(s->vt->exec(s, access_schema_sql[i], NULL, 0, NULL));
    return OK_OK;
}

/* ---- Validation ----------------------------------------------------------------------------------- */

int ok_access_identity_name_valid(const char *name)
{
    return ok_name_valid(name, OK_IDENTITY_NAME_MAX, "._-");
}

static int token_id_valid(const char *id)
{
    if (!id)
        return 0;
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= TOKEN_ID_LEN || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return n == TOKEN_ID_LEN;
}

static ok_err check_expiry(int64_t expires)
{
    if (expires < 0)
        return ok_fail(OK_ERR_INVALID_ARG, "token expiry must be a Unix time or 0 (never)");
    if (expires != 0 && expires <= ok_vault_now())
        return ok_fail(OK_ERR_INVALID_ARG, "token expiry is in the past");
    return OK_OK;
}

/* ---- Small store helpers ---------------------------------------------------------------------------- */

static ok_err count_rows(void *ctx, const ok_val *cols, size_t ncols)
{
    (void)cols;
    (void)ncols;
    ++*(int64_t *)ctx;
    return OK_OK;
}

ok_err ok_access_identity_exists(ok_store *s, const char *name, int *exists)
{
    int64_t rows = 0;
    ok_val p[] = {OK_VTEXT(name)};
    OK_GUARD(s->vt->query(s, "SELECT 1 FROM identities WHERE name = ?", p, 1, count_rows, &rows));
    *exists = rows > 0;
    return OK_OK;
}

/* ---- Tokens --------------------------------------------------------------------------------------- */

/* MAC of a token under token_key. The key is used only under the shared seal lock. */
static ok_err token_mac(ok_vault *v, const char *token, size_t len, uint8_t mac[TOKEN_MAC_LEN])
{
    ok_err rc;
    pthread_rwlock_rdlock(&v->seal_lock);
    if (v->sealed || !v->token_key)
        rc = ok_fail(OK_ERR_SEALED, "the vault is sealed");
    else
        rc = ok_hmac_sha256(v->token_key, 32, (const uint8_t *)token, len, mac);
    pthread_rwlock_unlock(&v->seal_lock);
    return rc;
}

/* A fresh token (malloc'ed, the caller zeroizes it) and token id. */
static ok_err token_generate(char **token, char id[TOKEN_ID_LEN + 1])
{
    uint8_t raw[TOKEN_RAW_LEN], id_raw[TOKEN_ID_LEN / 2];
    char *b64 = NULL, *id_hex = NULL, *tok = NULL;
    ok_err rc;
    OK_GUARD_GOTO(rc, ok_random(raw, sizeof raw), out);
    OK_GUARD_GOTO(rc, ok_random(id_raw, sizeof id_raw), out);
    OK_GUARD_GOTO(rc, ok_b64url_encode(raw, sizeof raw, &b64), out);
    OK_GUARD_GOTO(rc, ok_hex_encode(id_raw, sizeof id_raw, &id_hex), out);
    if (strlen(b64) != TOKEN_LEN - TOKEN_PREFIX_LEN || strlen(id_hex) != TOKEN_ID_LEN) {
        rc = ok_fail(OK_ERR_CRYPTO, "unexpected token encoding length");
        goto out;
    }
    tok = malloc(TOKEN_LEN + 1);
    if (!tok) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    memcpy(tok + TOKEN_PREFIX_LEN, b64, TOKEN_LEN - TOKEN_PREFIX_LEN + 1);
    memcpy(id, id_hex, TOKEN_ID_LEN + 1);
    *token = tok;
out:
    ok_zeroize(raw, sizeof raw);
    if (b64) {
        ok_zeroize(b64, strlen(b64));
        free(b64);
    }
    free(id_hex);
    return rc;
}

static void token_free(char *token)
{
    if (token) {
        ok_zeroize(token, strlen(token));
        free(token);
    }
}

/* Inside a transaction: inserts a token row for an existing identity. */
static ok_err token_insert(ok_store *s, const char *identity, const char *id, const uint8_t mac[TOKEN_MAC_LEN],
                           int64_t created, int64_t expires)
{
    ok_val p[] = {OK_VTEXT(id), OK_VTEXT(identity), OK_VBLOB(mac, TOKEN_MAC_LEN), OK_VINT(created), OK_VINT(expires)};
    return s->vt->exec(s, "INSERT INTO tokens(id, identity, mac, created, expires, revoked) VALUES(?, ?, ?, ?, ?, 0)",
                       p, 5, NULL);
}

/* What identity create, bootstrap and token create share: a new token for `identity`, which is created
 * first (with a policy "*" granting admin_perms when nonzero) if create_identity is set. */
static ok_err issue_token(ok_vault *v, const char *identity, int create_identity, unsigned admin_perms,
                          int64_t expires, char **token_out, char **token_id_out)
{
    if (!v || !token_out || !ok_access_identity_name_valid(identity))
        return ok_fail(OK_ERR_INVALID_ARG, "identity names match ^[0-9a-zA-Z._-]{1,64}$");
    OK_GUARD(check_expiry(expires));
    *token_out = NULL;
    if (token_id_out)
        *token_id_out = NULL;

    char *token = NULL, id[TOKEN_ID_LEN + 1], *id_copy = NULL;
    uint8_t mac[TOKEN_MAC_LEN];
    ok_store *s = v->store;
    ok_err rc;
    int exists = 0, in_tx = 0;
    OK_GUARD_GOTO(rc, token_generate(&token, id), out);
    OK_GUARD_GOTO(rc, token_mac(v, token, TOKEN_LEN, mac), out);
    if (token_id_out && !(id_copy = strdup(id))) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto out;
    }
    int64_t now = ok_vault_now();
    OK_GUARD_GOTO(rc, s->vt->begin(s), out);
    in_tx = 1;
    OK_GUARD_GOTO(rc, ok_access_identity_exists(s, identity, &exists), out);
    if (create_identity && exists) {
        rc = ok_fail(OK_ERR_CONFLICT, "identity %s exists", identity);
        goto out;
    }
    if (!create_identity && !exists) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no identity %s", identity);
        goto out;
    }
    if (create_identity) {
        ok_val p[] = {OK_VTEXT(identity), OK_VINT(now)};
        OK_GUARD_GOTO(rc, s->vt->exec(s, "INSERT INTO identities(name, created) VALUES(?, ?)", p, 2, NULL), out);
        if (admin_perms)
            OK_GUARD_GOTO(rc, ok_access_policy_put(s, identity, "*", admin_perms), out);
    }
    OK_GUARD_GOTO(rc, token_insert(s, identity, id, mac, now, expires), out);
    in_tx = 0;
    OK_GUARD_GOTO(rc, s->vt->commit(s), out);
    *token_out = token;
    token = NULL;
    if (token_id_out) {
        *token_id_out = id_copy;
        id_copy = NULL;
    }
out:
    if (in_tx)
        s->vt->rollback(s);
    ok_zeroize(mac, sizeof mac);
    token_free(token);
    free(id_copy);
    return rc;
}

ok_err ok_vault_identity_create(ok_vault *v, const char *name, int64_t expires, char **token, char **token_id)
{
    return issue_token(v, name, 1, 0, expires, token, token_id);
}

ok_err ok_access_bootstrap_admin(ok_vault *v, char **token)
{
    return issue_token(v, "admin", 1, OK_PERM_ALL, 0, token, NULL);
}

ok_err ok_vault_token_create(ok_vault *v, const char *identity, int64_t expires, char **token, char **token_id)
{
    return issue_token(v, identity, 0, 0, expires, token, token_id);
}

ok_err ok_vault_token_revoke(ok_vault *v, const char *token_id)
{
    if (!v || !token_id_valid(token_id))
        return ok_fail(OK_ERR_INVALID_ARG, "token ids are 32 lowercase hex characters");
    int64_t changes = 0;
    ok_val p[] = {OK_VTEXT(token_id)};
    OK_GUARD(v->store->vt->exec(v->store, "UPDATE tokens SET revoked = 1 WHERE id = ?", p, 1, &changes));
    if (changes == 0)
        return ok_fail(OK_ERR_NOT_FOUND, "no token %s", token_id);
    return OK_OK;
}

ok_err ok_vault_identity_delete(ok_vault *v, const char *name)
{
    if (!v || !ok_access_identity_name_valid(name))
        return ok_fail(OK_ERR_INVALID_ARG, "identity names match ^[0-9a-zA-Z._-]{1,64}$");
    int64_t changes = 0;
    ok_val p[] = {OK_VTEXT(name)};
    ok_store *s = v->store;
    ok_err rc;
    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_access_keep_an_admin(s, name), fail);
    /* Tokens and policies go with it (ON DELETE CASCADE; the store turns foreign keys on). */
    OK_GUARD_GOTO(rc, s->vt->exec(s, "DELETE FROM identities WHERE name = ?", p, 1, &changes), fail);
    if (changes == 0) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no identity %s", name);
        goto fail;
    }
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

/* ---- Authentication -------------------------------------------------------------------------------- */

typedef struct {
    int found;
    char id[TOKEN_ID_LEN + 1];
    char identity[OK_IDENTITY_NAME_MAX + 1];
    uint8_t mac[TOKEN_MAC_LEN];
    int64_t expires, revoked;
} token_row;

static ok_err read_token_row(void *ctx, const ok_val *c, size_t n)
{
    token_row *r = ctx;
    if (n != 5 || c[0].type != OK_VAL_TEXT || c[1].type != OK_VAL_TEXT || c[2].type != OK_VAL_BLOB ||
        c[2].len != TOKEN_MAC_LEN || c[3].type != OK_VAL_INT || c[4].type != OK_VAL_INT ||
        strlen(c[0].s) > TOKEN_ID_LEN || strlen(c[1].s) > OK_IDENTITY_NAME_MAX)
        return ok_fail(OK_ERR_FORMAT, "malformed token row");
    r->found = 1;
    strcpy(r->id, c[0].s);
    strcpy(r->identity, c[1].s);
    memcpy(r->mac, c[2].b, TOKEN_MAC_LEN);
    r->expires = c[3].i;
    r->revoked = c[4].i;
    return OK_OK;
}

ok_err ok_vault_authenticate(ok_vault *v, const char *token, ok_identity *out)
{
    if (!v || !token || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "authenticate needs a vault, a token and an output");
    memset(out, 0, sizeof *out);
    /* The sealed check comes first: a sealed vault authenticates no one, whatever is presented. */
    size_t len = strnlen(token, TOKEN_LEN + 1);
    uint8_t mac[TOKEN_MAC_LEN];
    OK_GUARD(token_mac(v, token, len, mac));

    token_row row = {0};
    ok_err rc = OK_OK;
    if (len == TOKEN_LEN && memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) == 0) {
        ok_val p[] = {OK_VBLOB(mac, sizeof mac)};
        rc = v->store->vt->query_cached(v->store,
                                        "SELECT id, identity, mac, expires, revoked FROM tokens WHERE mac = ?", p, 1,
                                        read_token_row, &row);
    }
    /* The index found the row by MAC; comparing the stored MAC again in constant time keeps the decision
     * itself independent of how the store compares blobs. */
    int valid = rc == OK_OK && row.found && ok_ct_equal(row.mac, mac, sizeof mac);
    valid = valid && !row.revoked && (row.expires == 0 || ok_vault_now() < row.expires);
    ok_zeroize(mac, sizeof mac);
    ok_zeroize(row.mac, sizeof row.mac);
    if (rc != OK_OK)
        return rc;
    if (!valid)
        return ok_fail(OK_ERR_AUTH, "the token is not valid");
    memcpy(out->name, row.identity, sizeof out->name);
    memcpy(out->token_id, row.id, sizeof out->token_id);
    return OK_OK;
}
