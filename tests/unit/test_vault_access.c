/* Tests of the vault's access module (src/vault/access.c, policies.c): permission names, identities,
 * tokens (format, revocation, expiry, sealed vault), policies and their patterns, the deny-by-default
 * decision, cascading deletes, and the rate of authenticate + allowed. The vault is built by hand (store,
 * random token key, locks) so that these tests need nothing of vault.c or seal.c. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ownkey/vault.h"
#include "vault/modules.h"

/* ---- A hand-built vault ---------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static ok_vault *vault_new(void)
{
    ok_vault *v = calloc(1, sizeof *v);
    assert_non_null(v);
    char tmpl[] = "/tmp/ownkey-access-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    v->dir = strdup(tmpl);
    char path[512];
    snprintf(path, sizeof path, "%s/vault.db", v->dir);
    assert_int_equal(ok_store_open_sqlite(path, &v->store), OK_OK);
    assert_int_equal(ok_access_schema(v->store), OK_OK);
    assert_int_equal(ok_access_schema(v->store), OK_OK); /* idempotent */
    assert_int_equal(pthread_rwlock_init(&v->seal_lock, NULL), 0);
    assert_int_equal(pthread_mutex_init(&v->audit_lock, NULL), 0);
    v->kind = OK_SEAL_DEV;
    v->token_key = ok_secure_alloc(32);
    assert_non_null(v->token_key);
    assert_int_equal(ok_random(v->token_key, 32), OK_OK);
    v->audit_fd = -1;
    return v;
}

static void vault_free(ok_vault *v)
{
    v->store->vt->close(v->store);
    ok_secure_free(v->token_key, 32);
    pthread_rwlock_destroy(&v->seal_lock);
    pthread_mutex_destroy(&v->audit_lock);
    nftw(v->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(v->dir);
    free(v);
}

static int setup(void **state)
{
    *state = vault_new();
    return 0;
}

static int teardown(void **state)
{
    vault_free(*state);
    return 0;
}

static void free_token(char *t)
{
    if (t) {
        ok_zeroize(t, strlen(t));
        free(t);
    }
}

/* Creates an identity, authenticates its token into *who, and frees the token. */
static void make_identity(ok_vault *v, const char *name, ok_identity *who)
{
    char *token = NULL, *id = NULL;
    assert_int_equal(ok_vault_identity_create(v, name, 0, &token, &id), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, token, who), OK_OK);
    assert_string_equal(who->name, name);
    free_token(token);
    free(id);
}

static ok_err read_count(void *ctx, const ok_val *cols, size_t ncols)
{
    assert_int_equal(ncols, 1);
    *(int64_t *)ctx = cols[0].i;
    return OK_OK;
}

/* The single integer a query with one parameter returns. */
static int64_t count(ok_vault *v, const char *sql, ok_val param)
{
    int64_t n = -1;
    assert_int_equal(v->store->vt->query(v->store, sql, &param, 1, read_count, &n), OK_OK);
    return n;
}

/* ---- Permission names ------------------------------------------------------------------------------ */

static void test_perm_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {
        "get", "list", "create", "update", "import", "delete", "recover", "purge", "backup", "restore",
        "rotate", "getrotationpolicy", "setrotationpolicy", "encrypt", "decrypt", "wrapKey", "unwrapKey",
        "sign", "verify", "admin", "dataRead", "dataWrite", "dataAdmin",
    };
    unsigned seen = 0;
    for (unsigned i = 0; i < 23; i++) {
        unsigned bit = 0;
        assert_string_equal(ok_perm_name(1u << i), names[i]);
        assert_int_equal(ok_perm_parse(names[i], &bit), OK_OK);
        assert_int_equal(bit, 1u << i);
        char upper[32];
        snprintf(upper, sizeof upper, "%s", names[i]);
        for (char *p = upper; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        assert_int_equal(ok_perm_parse(upper, &bit), OK_OK);
        assert_int_equal(bit, 1u << i);
        seen |= bit;
    }
    assert_int_equal(seen, OK_PERM_ALL);
    unsigned bit = 0;
    assert_int_equal(ok_perm_parse("wrapkey", &bit), OK_OK);
    assert_int_equal(bit, OK_PERM_WRAPKEY);
    assert_int_equal(ok_perm_parse("ALL", &bit), OK_OK);
    assert_int_equal(bit, OK_PERM_ALL);
    assert_string_equal(ok_perm_name(OK_PERM_ALL), "all");
    assert_int_equal(ok_perm_parse("bogus", &bit), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_perm_parse("", &bit), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_perm_parse("get ", &bit), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_perm_parse(NULL, &bit), OK_ERR_INVALID_ARG);
    assert_null(ok_perm_name(0));
    assert_null(ok_perm_name(OK_PERM_GET | OK_PERM_LIST));
    assert_null(ok_perm_name(1u << 23));
}

/* ---- Identities and tokens -------------------------------------------------------------------------- */

static void test_identity_and_tokens(void **state)
{
    ok_vault *v = *state;
    char *token = NULL, *id = NULL;
    assert_int_equal(ok_vault_identity_create(v, "alice.svc_1-x", 0, &token, &id), OK_OK);
    assert_int_equal(strlen(token), 47);
    assert_memory_equal(token, "okt_", 4);
    assert_int_equal(strspn(token + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);

    /* What is stored is HMAC-SHA256(token_key, token), and the token text appears in no column. */
    uint8_t mac[32];
    assert_int_equal(ok_hmac_sha256(v->token_key, 32, (const uint8_t *)token, strlen(token), mac), OK_OK);
    assert_int_equal(count(v, "SELECT count(*) FROM tokens WHERE mac = ?", OK_VBLOB(mac, 32)), 1);
    assert_int_equal(count(v, "SELECT count(*) FROM tokens WHERE instr(id || identity || hex(mac), ?) > 0",
                           OK_VTEXT(token + 4)), 0);

    ok_identity who;
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_OK);
    assert_string_equal(who.name, "alice.svc_1-x");
    assert_string_equal(who.token_id, id);

    char *t2 = NULL, *id2 = NULL;
    assert_int_equal(ok_vault_identity_create(v, "alice.svc_1-x", 0, &t2, &id2), OK_ERR_CONFLICT);
    assert_null(t2);
    assert_int_equal(ok_vault_token_create(v, "alice.svc_1-x", ok_vault_now() + 3600, &t2, &id2), OK_OK);
    assert_string_not_equal(t2, token);
    assert_string_not_equal(id2, id);
    assert_int_equal(ok_vault_authenticate(v, t2, &who), OK_OK);
    assert_string_equal(who.token_id, id2);

    /* Revoking one token leaves the other. */
    assert_int_equal(ok_vault_token_revoke(v, id), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_ERR_AUTH);
    assert_string_equal(who.name, "");
    assert_int_equal(ok_vault_authenticate(v, t2, &who), OK_OK);
    assert_int_equal(ok_vault_token_revoke(v, id), OK_OK); /* again: still revoked */
    assert_int_equal(ok_vault_token_revoke(v, "0123456789abcdef0123456789abcdef"), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_token_revoke(v, "0123456789ABCDEF0123456789ABCDEF"), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_token_revoke(v, "abc"), OK_ERR_INVALID_ARG);

    free_token(t2);
    free(id2);
    assert_int_equal(ok_vault_token_create(v, "nobody", 0, &t2, &id2), OK_ERR_NOT_FOUND);
    assert_null(t2);
    assert_null(id2);
    free_token(token);
    free(id);
}

static void test_identity_names(void **state)
{
    ok_vault *v = *state;
    const char *bad[] = {"", "a b", "a/b", "a\xc3\xa9", "a*", "tab\t",
                         "12345678901234567890123456789012345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = NULL, *id = NULL;
        assert_int_equal(ok_vault_identity_create(v, bad[i], 0, &t, &id), OK_ERR_INVALID_ARG);
        assert_null(t);
    }
    char *t = NULL, *id = NULL;
    const char *max = "1234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(ok_vault_identity_create(v, max, 0, &t, &id), OK_OK);
    free_token(t);
    free(id);
    assert_int_equal(ok_vault_identity_create(v, "past", ok_vault_now() - 1, &t, &id), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_identity_create(v, "negative", -5, &t, &id), OK_ERR_INVALID_ARG);
}

static void test_unknown_malformed_expired_tokens(void **state)
{
    ok_vault *v = *state;
    ok_identity who;
    const char *bad[] = {"", "okt_", "Bearer x", "okt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "okt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "xxx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ok_vault_authenticate(v, bad[i], &who), OK_ERR_AUTH);
    char unknown_msg[256];
    snprintf(unknown_msg, sizeof unknown_msg, "%s", ok_err_message());

    char *token = NULL, *id = NULL;
    assert_int_equal(ok_vault_identity_create(v, "exp", ok_vault_now() + 3600, &token, &id), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_OK);
    ok_val p[] = {OK_VINT(ok_vault_now() - 1), OK_VTEXT(id)};
    assert_int_equal(v->store->vt->exec(v->store, "UPDATE tokens SET expires = ? WHERE id = ?", p, 2, NULL), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), unknown_msg); /* the message does not say why */
    assert_int_equal(ok_vault_token_revoke(v, id), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), unknown_msg);

    /* A token one character off is unknown. */
    char *t2 = NULL, *id2 = NULL;
    assert_int_equal(ok_vault_token_create(v, "exp", 0, &t2, &id2), OK_OK);
    t2[10] = t2[10] == 'A' ? 'B' : 'A';
    assert_int_equal(ok_vault_authenticate(v, t2, &who), OK_ERR_AUTH);
    free_token(token);
    free_token(t2);
    free(id);
    free(id2);
}

static void test_sealed_vault_authenticates_no_one(void **state)
{
    ok_vault *v = *state;
    char *token = NULL, *id = NULL;
    assert_int_equal(ok_vault_identity_create(v, "carol", 0, &token, &id), OK_OK);
    uint8_t *key = v->token_key;
    v->token_key = NULL;
    v->sealed = 1;
    ok_identity who;
    char *t2 = NULL, *id2 = NULL;
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_ERR_SEALED);
    assert_int_equal(ok_vault_authenticate(v, "garbage", &who), OK_ERR_SEALED);
    assert_int_equal(ok_vault_identity_create(v, "dave", 0, &t2, &id2), OK_ERR_SEALED);
    assert_int_equal(ok_vault_token_create(v, "carol", 0, &t2, &id2), OK_ERR_SEALED);
    assert_null(t2);
    v->token_key = key;
    v->sealed = 0;
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_OK);
    /* A different token key (another master key) knows no token. */
    uint8_t saved[32];
    memcpy(saved, v->token_key, 32);
    v->token_key[0] ^= 1;
    assert_int_equal(ok_vault_authenticate(v, token, &who), OK_ERR_AUTH);
    memcpy(v->token_key, saved, 32);
    free_token(token);
    free(id);
}

/* ---- Policies ---------------------------------------------------------------------------------------- */

static void test_deny_by_default(void **state)
{
    ok_vault *v = *state;
    ok_identity who;
    make_identity(v, "nopol", &who);
    for (unsigned i = 0; i < 20; i++) {
        assert_false(ok_vault_allowed(v, &who, "anykey", 1u << i));
        assert_false(ok_vault_allowed(v, &who, NULL, 1u << i));
    }
    assert_false(ok_vault_allowed(v, NULL, "anykey", OK_PERM_GET));
    ok_identity ghost = {.name = "ghost"};
    assert_false(ok_vault_allowed(v, &ghost, "anykey", OK_PERM_GET));
}

static void test_each_permission_alone(void **state)
{
    ok_vault *v = *state;
    ok_identity who;
    make_identity(v, "single", &who);
    for (unsigned i = 0; i < 20; i++) {
        assert_int_equal(ok_vault_policy_set(v, "single", "k-*", 1u << i), OK_OK);
        for (unsigned j = 0; j < 20; j++) {
            assert_int_equal(ok_vault_allowed(v, &who, "k-1", 1u << j), i == j);
            assert_false(ok_vault_allowed(v, &who, "other", 1u << j));
            assert_false(ok_vault_allowed(v, &who, NULL, 1u << j)); /* "k-*" is not "*" */
        }
        /* A request for several bits needs all of them. */
        assert_false(ok_vault_allowed(v, &who, "k-1", (1u << i) | (1u << ((i + 1) % 20))));
    }
    assert_false(ok_vault_allowed(v, &who, "k-1", 0));
    assert_false(ok_vault_allowed(v, &who, "k-1", 1u << 23));
}

static void test_policy_patterns(void **state)
{
    ok_vault *v = *state;
    ok_identity who;
    make_identity(v, "pat", &who);
    struct {
        const char *pattern, *name;
        int match;
    } cases[] = {
        {"*", "a", 1},         {"*", "Some-Key-1", 1},  {"abc", "abc", 1},     {"abc", "abcd", 0},
        {"abc", "ab", 0},      {"abc", "ABC", 0},       {"a?c", "abc", 1},     {"a?c", "ac", 0},
        {"a?c", "abbc", 0},    {"a*c", "ac", 1},        {"a*c", "abbbc", 1},   {"a*c", "abcd", 0},
        {"pre-*-post", "pre-x-post", 1},                {"pre-*-post", "pre--post", 1},
        {"pre-*-post", "pre-post", 0},                  {"*-x*", "a-b-x", 1},  {"*-x*", "a-b-y", 0},
        {"**", "z", 1},        {"?", "z", 1},           {"?", "zz", 0},        {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ok_vault_policy_set(v, "pat", cases[i].pattern, OK_PERM_GET), OK_OK);
        if (ok_vault_allowed(v, &who, cases[i].name, OK_PERM_GET) != cases[i].match)
            fail_msg("pattern %s, name %s: expected %d", cases[i].pattern, cases[i].name, cases[i].match);
        assert_int_equal(ok_vault_policy_delete(v, "pat", cases[i].pattern), OK_OK);
    }
    /* Key names outside the key-name alphabet match nothing, even "*". */
    assert_int_equal(ok_vault_policy_set(v, "pat", "*", OK_PERM_GET), OK_OK);
    assert_false(ok_vault_allowed(v, &who, "", OK_PERM_GET));
    assert_false(ok_vault_allowed(v, &who, "a*", OK_PERM_GET));
    assert_false(ok_vault_allowed(v, &who, "a.b", OK_PERM_GET));
    assert_true(ok_vault_allowed(v, &who, NULL, OK_PERM_GET));

    /* Bad patterns, identities and permission sets. */
    char max[130];
    memset(max, '?', 129);
    max[129] = '\0';
    const char *bad[] = {"", "a/b", "a b", "a.b", "a_b", max};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ok_vault_policy_set(v, "pat", bad[i], OK_PERM_GET), OK_ERR_INVALID_ARG);
    max[128] = '\0'; /* 128 characters is the most */
    assert_int_equal(ok_vault_policy_set(v, "pat", max, OK_PERM_GET), OK_OK);
    assert_int_equal(ok_vault_policy_set(v, "pat", "x", 0), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_policy_set(v, "pat", "x", 1u << 23), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_policy_set(v, "nobody", "x", OK_PERM_GET), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_policy_delete(v, "pat", "x"), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_policy_delete(v, "pat", "a/b"), OK_ERR_INVALID_ARG);
}

static void test_policy_replace_union_and_admin(void **state)
{
    ok_vault *v = *state;
    ok_identity who;
    make_identity(v, "mix", &who);
    /* Setting the same pattern replaces its permissions. */
    assert_int_equal(ok_vault_policy_set(v, "mix", "app-*", OK_PERM_GET | OK_PERM_LIST), OK_OK);
    assert_true(ok_vault_allowed(v, &who, "app-1", OK_PERM_GET));
    assert_int_equal(ok_vault_policy_set(v, "mix", "app-*", OK_PERM_ENCRYPT), OK_OK);
    assert_false(ok_vault_allowed(v, &who, "app-1", OK_PERM_GET));
    assert_true(ok_vault_allowed(v, &who, "app-1", OK_PERM_ENCRYPT));
    /* Matching policies combine. */
    assert_int_equal(ok_vault_policy_set(v, "mix", "*-1", OK_PERM_DECRYPT), OK_OK);
    assert_true(ok_vault_allowed(v, &who, "app-1", OK_PERM_ENCRYPT | OK_PERM_DECRYPT));
    assert_false(ok_vault_allowed(v, &who, "app-2", OK_PERM_ENCRYPT | OK_PERM_DECRYPT));
    /* Management calls (key_name NULL) need the pattern "*" exactly. */
    assert_int_equal(ok_vault_policy_set(v, "mix", "app*", OK_PERM_ADMIN), OK_OK);
    assert_false(ok_vault_allowed(v, &who, NULL, OK_PERM_ADMIN));
    assert_true(ok_vault_allowed(v, &who, "app-1", OK_PERM_ADMIN));
    assert_int_equal(ok_vault_policy_set(v, "mix", "*", OK_PERM_ADMIN), OK_OK);
    assert_true(ok_vault_allowed(v, &who, NULL, OK_PERM_ADMIN));
    assert_false(ok_vault_allowed(v, &who, NULL, OK_PERM_GET));
    /* The last administrator cannot drop admin on "*"; with another one, it can. */
    assert_int_equal(ok_vault_policy_delete(v, "mix", "*"), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_policy_set(v, "mix", "*", OK_PERM_GET), OK_ERR_CONFLICT);
    assert_true(ok_vault_allowed(v, &who, NULL, OK_PERM_ADMIN));
    ok_identity keeper;
    make_identity(v, "keeper", &keeper);
    assert_int_equal(ok_vault_policy_set(v, "keeper", "*", OK_PERM_ADMIN), OK_OK);
    assert_int_equal(ok_vault_policy_delete(v, "mix", "*"), OK_OK);
    assert_false(ok_vault_allowed(v, &who, NULL, OK_PERM_ADMIN));
}

static void test_identity_delete_cascades(void **state)
{
    ok_vault *v = *state;
    char *t1 = NULL, *id1 = NULL, *t2 = NULL, *id2 = NULL;
    assert_int_equal(ok_vault_identity_create(v, "gone", 0, &t1, &id1), OK_OK);
    assert_int_equal(ok_vault_token_create(v, "gone", 0, &t2, &id2), OK_OK);
    assert_int_equal(ok_vault_policy_set(v, "gone", "*", OK_PERM_ALL), OK_OK);
    ok_identity who;
    assert_int_equal(ok_vault_authenticate(v, t1, &who), OK_OK);
    assert_true(ok_vault_allowed(v, &who, "k", OK_PERM_GET));
    assert_int_equal(count(v, "SELECT count(*) FROM tokens WHERE identity = ?", OK_VTEXT("gone")), 2);

    /* "gone" is the only administrator: deleting it would lock everyone out. */
    assert_int_equal(ok_vault_identity_delete(v, "gone"), OK_ERR_CONFLICT);
    assert_int_equal(count(v, "SELECT count(*) FROM tokens WHERE identity = ?", OK_VTEXT("gone")), 2);
    ok_identity heir;
    make_identity(v, "heir", &heir);
    assert_int_equal(ok_vault_policy_set(v, "heir", "*", OK_PERM_ADMIN), OK_OK);

    assert_int_equal(ok_vault_identity_delete(v, "gone"), OK_OK);
    assert_int_equal(count(v, "SELECT count(*) FROM tokens WHERE identity = ?", OK_VTEXT("gone")), 0);
    assert_int_equal(count(v, "SELECT count(*) FROM policies WHERE identity = ?", OK_VTEXT("gone")), 0);
    assert_int_equal(ok_vault_authenticate(v, t1, &who), OK_ERR_AUTH);
    assert_int_equal(ok_vault_authenticate(v, t2, &who), OK_ERR_AUTH);
    ok_identity stale = {.name = "gone"};
    assert_false(ok_vault_allowed(v, &stale, "k", OK_PERM_GET));
    assert_int_equal(ok_vault_identity_delete(v, "gone"), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_token_revoke(v, id1), OK_ERR_NOT_FOUND);

    /* A new identity of the same name inherits nothing. */
    char *t3 = NULL, *id3 = NULL;
    assert_int_equal(ok_vault_identity_create(v, "gone", 0, &t3, &id3), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, t1, &who), OK_ERR_AUTH);
    assert_int_equal(ok_vault_authenticate(v, t3, &who), OK_OK);
    assert_false(ok_vault_allowed(v, &who, "k", OK_PERM_GET));
    free_token(t1);
    free_token(t2);
    free_token(t3);
    free(id1);
    free(id2);
    free(id3);
}

static void test_identity_list_and_bootstrap(void **state)
{
    ok_vault *v = *state;
    char *admin = NULL;
    assert_int_equal(ok_access_bootstrap_admin(v, &admin), OK_OK);
    ok_identity who;
    assert_int_equal(ok_vault_authenticate(v, admin, &who), OK_OK);
    assert_string_equal(who.name, "admin");
    for (unsigned i = 0; i < 20; i++) {
        assert_true(ok_vault_allowed(v, &who, "any-key", 1u << i));
        assert_true(ok_vault_allowed(v, &who, NULL, 1u << i));
    }
    char *again = NULL;
    assert_int_equal(ok_access_bootstrap_admin(v, &again), OK_ERR_CONFLICT);
    assert_null(again);

    ok_identity b;
    make_identity(v, "bob", &b);
    assert_int_equal(ok_vault_policy_set(v, "bob", "x-*", OK_PERM_SIGN), OK_OK);
    assert_int_equal(ok_vault_policy_set(v, "bob", "a", OK_PERM_VERIFY), OK_OK);
    make_identity(v, "Zed", &b);

    ok_identity_info *items = NULL;
    size_t n = 0;
    assert_int_equal(ok_vault_identity_list(v, &items, &n), OK_OK);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].name, "Zed"); /* byte order */
    assert_int_equal(items[0].policy_count, 0);
    assert_string_equal(items[1].name, "admin");
    assert_int_equal(items[1].policy_count, 1);
    assert_string_equal(items[1].policies[0].pattern, "*");
    assert_int_equal(items[1].policies[0].perms, OK_PERM_ALL);
    assert_string_equal(items[2].name, "bob");
    assert_int_equal(items[2].policy_count, 2);
    assert_string_equal(items[2].policies[0].pattern, "a");
    assert_int_equal(items[2].policies[0].perms, OK_PERM_VERIFY);
    assert_string_equal(items[2].policies[1].pattern, "x-*");
    assert_true(items[2].created > 0);
    ok_identity_info_free(items, n);
    free_token(admin);
}

/* Through the real vault: init creates "admin" whose token opens everything; sealing locks everyone out. */
static void test_real_vault_bootstrap(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ownkey-access-XXXXXX", dir[64];
    assert_non_null(mkdtemp(tmpl));
    snprintf(dir, sizeof dir, "%s/v", tmpl);
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result res;
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_OK);
    assert_non_null(res.admin_token);
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    ok_identity who;
    assert_int_equal(ok_vault_authenticate(v, res.admin_token, &who), OK_OK);
    assert_string_equal(who.name, "admin");
    assert_true(ok_vault_allowed(v, &who, NULL, OK_PERM_ADMIN));
    assert_true(ok_vault_allowed(v, &who, "k", OK_PERM_ALL));
    assert_int_equal(ok_vault_seal(v), OK_OK);
    assert_int_equal(ok_vault_authenticate(v, res.admin_token, &who), OK_ERR_SEALED);
    ok_vault_close(v);
    assert_int_equal(ok_vault_open(dir, &v), OK_OK); /* a dev vault unseals itself */
    assert_int_equal(ok_vault_authenticate(v, res.admin_token, &who), OK_OK);
    ok_vault_close(v);
    ok_vault_init_result_clear(&res);
    nftw(tmpl, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Authentication runs on every request: print how fast authenticate + allowed are (no assertion on time). */
static void test_auth_rate(void **state)
{
    ok_vault *v = *state;
    char *token = NULL, *id = NULL;
    assert_int_equal(ok_vault_identity_create(v, "fast", 0, &token, &id), OK_OK);
    for (int i = 0; i < 20; i++) {
        char pat[32];
        snprintf(pat, sizeof pat, "app%d-*", i);
        assert_int_equal(ok_vault_policy_set(v, "fast", pat, OK_PERM_WRAPKEY | OK_PERM_UNWRAPKEY), OK_OK);
    }
    const int n = 20000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        ok_identity who;
        assert_int_equal(ok_vault_authenticate(v, token, &who), OK_OK);
        assert_true(ok_vault_allowed(v, &who, "app19-key", OK_PERM_UNWRAPKEY));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("authenticate + allowed (20 policies): %d in %.3f s = %.0f/s (one thread)\n", n, s, n / s);
    free_token(token);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perm_names_round_trip),
        cmocka_unit_test_setup_teardown(test_identity_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_malformed_expired_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_vault_authenticates_no_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deny_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_permission_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_replace_union_and_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_list_and_bootstrap, setup, teardown),
        cmocka_unit_test(test_real_vault_bootstrap),
        cmocka_unit_test_setup_teardown(test_auth_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
