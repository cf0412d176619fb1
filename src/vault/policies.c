/* ownkey vault: permission names, access policies and the access decision (issue 3 §4). Owns the
 * `policies` table's rows (access.c creates the table with the others). A policy grants an identity a
 * set of OK_PERM_* bits on keys whose name matches a glob pattern of 1..128 characters from
 * [0-9a-zA-Z-*?] ('*' any run, '?' one character; whole-name, case-sensitive match). Deny by default:
 * ok_vault_allowed answers 1 only when the matching policies together grant every requested bit.
 * Policies are read from the store on each decision (an indexed primary-key range; see the rate the
 * unit test prints); there is no cache to invalidate. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vault/access_internal.h"

#define PATTERN_MAX 128

static const char *const perm_names[] = {
    "get",     "list",    "create", "update", "import",            "delete",            "recover",
    "purge",   "backup",  "restore", "rotate", "getrotationpolicy", "setrotationpolicy", "encrypt",
    "decrypt", "wrapKey", "unwrapKey", "sign", "verify",            "admin",             "dataRead",
    "dataWrite", "dataAdmin",
};
_Static_assert(sizeof perm_names / sizeof perm_names[0] == 23, "one name per OK_PERM_* bit");
_Static_assert(OK_PERM_ALL == (1u << 23) - 1, "OK_PERM_ALL covers exactly the named bits");

ok_err ok_perm_parse(const char *name, unsigned *bit)
{
    if (!name || !bit)
        return ok_fail(OK_ERR_INVALID_ARG, "no permission name");
    if (strcasecmp(name, "all") == 0) {
        *bit = OK_PERM_ALL;
        return OK_OK;
    }
    for (unsigned i = 0; i < sizeof perm_names / sizeof perm_names[0]; i++) {
        if (strcasecmp(name, perm_names[i]) == 0) {
            *bit = 1u << i;
            return OK_OK;
        }
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown permission");
}

const char *ok_perm_name(unsigned bit)
{
    if (bit == OK_PERM_ALL)
        return "all";
    for (unsigned i = 0; i < sizeof perm_names / sizeof perm_names[0]; i++)
        if (bit == 1u << i)
            return perm_names[i];
    return NULL;
}

/* ---- Patterns ---------------------------------------------------------------------------------------- */

static int pattern_valid(const char *p)
{
    return ok_name_valid(p, PATTERN_MAX, "-*?");
}

/* Key names as the keys module accepts them: ^[0-9a-zA-Z-]{1,127}$. Anything else matches nothing. */
static int key_name_valid(const char *s)
{
    return ok_name_valid(s, OK_KEY_NAME_MAX, "-");
}

/* Whole-string glob match, '*' any run (also empty), '?' one character. Backtracks only to the last
 * '*', so the time is O(len(p) * len(s)) at worst. */
static int glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = ++p;
            resume = s;
        } else if (*p && (*p == '?' || *p == *s)) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- Policies ---------------------------------------------------------------------------------------- */

ok_err ok_access_policy_put(ok_store *s, const char *identity, const char *pattern, unsigned perms)
{
    ok_val p[] = {OK_VTEXT(identity), OK_VTEXT(pattern), OK_VINT((int64_t)perms)};
    /* Standard upsert syntax that SQLite (3.24+) and PostgreSQL share. */
    return s->vt->exec(s,
                       "INSERT INTO policies(identity, pattern, perms) VALUES(?, ?, ?) "
                       "ON CONFLICT(identity, pattern) DO UPDATE SET perms = excluded.perms",
                       p, 3, NULL);
}

static ok_err read_count(void *ctx, const ok_val *c, size_t n)
{
    if (n != 1 || c[0].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "malformed count");
    *(int64_t *)ctx = c[0].i;
    return OK_OK;
}

ok_err ok_access_keep_an_admin(ok_store *s, const char *identity)
{
    static const char SQL[] = "SELECT COUNT(*) FROM policies WHERE pattern = '*' AND (perms & ?) != 0 AND identity %s ?";
    char sql[160];
    int64_t mine = 0, others = 0;
    ok_val p[] = {OK_VINT(OK_PERM_ADMIN), OK_VTEXT(identity)};
    snprintf(sql, sizeof sql, SQL, "=");
    OK_GUARD(s->vt->query(s, sql, p, 2, read_count, &mine));
    snprintf(sql, sizeof sql, SQL, "<>");
    OK_GUARD(s->vt->query(s, sql, p, 2, read_count, &others));
    if (mine > 0 && others == 0)
        return ok_fail(OK_ERR_CONFLICT, "%s is the last identity with admin on \"*\": removing that would lock "
                                        "everyone out of the management API; make another administrator first", identity);
    return OK_OK;
}

ok_err ok_vault_policy_set(ok_vault *v, const char *identity, const char *pattern, unsigned perms)
{
    if (!v || !ok_access_identity_name_valid(identity))
        return ok_fail(OK_ERR_INVALID_ARG, "identity names match ^[0-9a-zA-Z._-]{1,64}$");
    if (!pattern_valid(pattern))
        return ok_fail(OK_ERR_INVALID_ARG, "policy patterns are 1..128 characters of [0-9a-zA-Z-*?]");
    if (perms == 0 || (perms & ~(unsigned)OK_PERM_ALL))
        return ok_fail(OK_ERR_INVALID_ARG, "a policy grants at least one known permission");
    ok_store *s = v->store;
    int exists = 0;
    ok_err rc;
    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_access_identity_exists(s, identity, &exists), fail);
    if (!exists) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no identity %s", identity);
        goto fail;
    }
    if (strcmp(pattern, "*") == 0 && !(perms & OK_PERM_ADMIN))
        OK_GUARD_GOTO(rc, ok_access_keep_an_admin(s, identity), fail);
    OK_GUARD_GOTO(rc, ok_access_policy_put(s, identity, pattern, perms), fail);
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

ok_err ok_vault_policy_delete(ok_vault *v, const char *identity, const char *pattern)
{
    if (!v || !ok_access_identity_name_valid(identity))
        return ok_fail(OK_ERR_INVALID_ARG, "identity names match ^[0-9a-zA-Z._-]{1,64}$");
    if (!pattern_valid(pattern))
        return ok_fail(OK_ERR_INVALID_ARG, "policy patterns are 1..128 characters of [0-9a-zA-Z-*?]");
    int64_t changes = 0;
    ok_val p[] = {OK_VTEXT(identity), OK_VTEXT(pattern)};
    ok_store *s = v->store;
    ok_err rc;
    OK_GUARD(s->vt->begin(s));
    if (strcmp(pattern, "*") == 0)
        OK_GUARD_GOTO(rc, ok_access_keep_an_admin(s, identity), fail);
    OK_GUARD_GOTO(rc, s->vt->exec(s, "DELETE FROM policies WHERE identity = ? AND pattern = ?", p, 2, &changes), fail);
    if (changes == 0) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "identity %s has no policy for %s", identity, pattern);
        goto fail;
    }
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

/* ---- The decision -------------------------------------------------------------------------------------- */

typedef struct {
    const char *key_name; /* NULL: a call not about one key; only the pattern "*" applies */
    unsigned granted;
} grant_ctx;

static ok_err add_grant(void *ctx, const ok_val *c, size_t n)
{
    grant_ctx *g = ctx;
    if (n != 2 || c[0].type != OK_VAL_TEXT || c[1].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "malformed policy row");
    int match = g->key_name ? glob_match(c[0].s, g->key_name) : strcmp(c[0].s, "*") == 0;
    if (match)
        g->granted |= (unsigned)c[1].i & (unsigned)OK_PERM_ALL;
    return OK_OK;
}

int ok_vault_allowed(ok_vault *v, const ok_identity *who, const char *key_name, unsigned perm)
{
    if (!v || !who || perm == 0 || (perm & ~(unsigned)OK_PERM_ALL))
        return 0;
    if (!ok_access_identity_name_valid(who->name) || (key_name && !key_name_valid(key_name)))
        return 0;
    grant_ctx g = {.key_name = key_name, .granted = 0};
    ok_val p[] = {OK_VTEXT(who->name)};
    if (v->store->vt->query_cached(v->store, "SELECT pattern, perms FROM policies WHERE identity = ?", p, 1, add_grant,
                                   &g) != OK_OK)
        return 0; /* a store failure denies */
    return (g.granted & perm) == perm;
}

/* ---- Listing ---------------------------------------------------------------------------------------------- */

typedef struct {
    ok_identity_info *items;
    size_t count, cap;
} identity_list;

static ok_err add_identity(void *ctx, const ok_val *c, size_t n)
{
    identity_list *l = ctx;
    if (n != 2 || c[0].type != OK_VAL_TEXT || c[1].type != OK_VAL_INT || strlen(c[0].s) > OK_IDENTITY_NAME_MAX)
        return ok_fail(OK_ERR_FORMAT, "malformed identity row");
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        ok_identity_info *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        l->items = items;
        l->cap = cap;
    }
    ok_identity_info *it = &l->items[l->count++];
    memset(it, 0, sizeof *it);
    strcpy(it->name, c[0].s);
    it->created = c[1].i;
    return OK_OK;
}

static int cmp_identity_name(const void *key, const void *item)
{
    return strcmp(key, ((const ok_identity_info *)item)->name);
}

static ok_err add_policy(void *ctx, const ok_val *c, size_t n)
{
    identity_list *l = ctx;
    if (n != 3 || c[0].type != OK_VAL_TEXT || c[1].type != OK_VAL_TEXT || c[2].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "malformed policy row");
    /* Both queries order by name (byte order), so the identities are sorted for bsearch. A policy whose
     * identity appeared between the two queries is skipped. */
    ok_identity_info *it = bsearch(c[0].s, l->items, l->count, sizeof *l->items, cmp_identity_name);
    if (!it)
        return OK_OK;
    ok_policy *ps = realloc(it->policies, (it->policy_count + 1) * sizeof *ps);
    if (!ps)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    it->policies = ps;
    ok_policy *p = &ps[it->policy_count];
    if (!(p->pattern = strdup(c[1].s)))
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    p->perms = (unsigned)c[2].i & (unsigned)OK_PERM_ALL;
    it->policy_count++;
    return OK_OK;
}

ok_err ok_vault_identity_list(ok_vault *v, ok_identity_info **out, size_t *count)
{
    if (!v || !out || !count)
        return ok_fail(OK_ERR_INVALID_ARG, "identity list needs outputs");
    *out = NULL;
    *count = 0;
    identity_list l = {0};
    ok_store *s = v->store;
    ok_err rc;
    /* One transaction so that both reads see the same state. */
    OK_GUARD(s->vt->begin(s));
    rc = s->vt->query(s, "SELECT name, created FROM identities ORDER BY name", NULL, 0, add_identity, &l);
    if (rc == OK_OK)
        rc = s->vt->query(s, "SELECT identity, pattern, perms FROM policies ORDER BY identity, pattern", NULL, 0,
                          add_policy, &l);
    s->vt->rollback(s); /* read only */
    if (rc != OK_OK) {
        ok_identity_info_free(l.items, l.count);
        return rc;
    }
    *out = l.items;
    *count = l.count;
    return OK_OK;
}

void ok_identity_info_free(ok_identity_info *items, size_t count)
{
    if (!items)
        return;
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < items[i].policy_count; j++)
            free(items[i].policies[j].pattern);
        free(items[i].policies);
    }
    free(items);
}
