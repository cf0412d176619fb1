/* Tests of the vault's keys (keys.c, material.c, key_lifecycle.c, key_list.c, key_deletion.c): create and
 * import of every type, get, update, rotate, paging, soft delete, recover and purge with and without purge
 * protection. Crypto operations, their rules and tampered material
 * are in test_vault_key_ops.c; backup/restore in test_vault_key_backup.c; rotation in test_vault_rotation.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault_fixture.h"

/* ---- create, import, get ------------------------------------------------------------------------------------ */

static void check_new(const ok_key_info *k, const char *name, ok_kty kty, unsigned bits, unsigned ops)
{
    assert_string_equal(k->name, name);
    assert_int_equal(strlen(k->version), 32);
    assert_int_equal(strspn(k->version, "0123456789abcdef"), 32);
    assert_int_equal(k->kty, kty);
    assert_int_equal(k->bits, bits);
    assert_int_equal(k->ops, ops);
    assert_int_equal(k->enabled, 1);
    assert_int_equal(k->hsm, 0);
    assert_true(k->created > 0 && k->created == k->updated);
    assert_int_equal(k->nbf, 0);
    assert_int_equal(k->exp, 0);
    assert_int_equal(k->deleted, 0);
    assert_int_equal(k->recoverable_days, 90);
    if (kty == OK_KTY_OCT) {
        assert_null(k->public_key);
    } else {
        assert_non_null(k->public_key);
        assert_int_equal(ok_pkey_is_private(k->public_key), 0);
        assert_int_equal(ok_pkey_bits(k->public_key), bits);
    }
}

static void test_create_types(void **state)
{
    vault_fixture *f = *state;
    const unsigned rsa_ops = OK_KEYOP_ENCRYPT | OK_KEYOP_DECRYPT | OK_KEYOP_SIGN | OK_KEYOP_VERIFY | OK_KEYOP_WRAP |
                             OK_KEYOP_UNWRAP;
    const unsigned oct_ops = OK_KEYOP_ENCRYPT | OK_KEYOP_DECRYPT | OK_KEYOP_WRAP | OK_KEYOP_UNWRAP;
    ok_key_spec spec = {.kty = OK_KTY_RSA};
    ok_key_info k;

    assert_int_equal(ok_vault_key_create(f->v, "rsa", &spec, &k), OK_OK); /* default 2048 */
    check_new(&k, "rsa", OK_KTY_RSA, 2048, rsa_ops);
    ok_key_info_clear(&k);
    fixture_create(f->v, "rsa3072", OK_KTY_RSA, 3072, &k);
    check_new(&k, "rsa3072", OK_KTY_RSA, 3072, rsa_ops);
    ok_key_info_clear(&k);
    spec = (ok_key_spec){.kty = OK_KTY_EC};
    assert_int_equal(ok_vault_key_create(f->v, "ec", &spec, &k), OK_OK); /* default P-256 */
    check_new(&k, "ec", OK_KTY_EC, 256, OK_KEYOP_SIGN | OK_KEYOP_VERIFY);
    assert_int_equal(k.curve, OK_CURVE_P256);
    ok_key_info_clear(&k);
    fixture_create(f->v, "ec384", OK_KTY_EC, 384, &k);
    check_new(&k, "ec384", OK_KTY_EC, 384, OK_KEYOP_SIGN | OK_KEYOP_VERIFY);
    assert_int_equal(k.curve, OK_CURVE_P384);
    ok_key_info_clear(&k);
    spec = (ok_key_spec){.kty = OK_KTY_OCT};
    assert_int_equal(ok_vault_key_create(f->v, "oct", &spec, &k), OK_OK); /* default 256 */
    check_new(&k, "oct", OK_KTY_OCT, 256, oct_ops);
    ok_key_info_clear(&k);
    fixture_create(f->v, "oct128", OK_KTY_OCT, 128, &k);
    check_new(&k, "oct128", OK_KTY_OCT, 128, oct_ops);
    ok_key_info_clear(&k);
    fixture_create(f->v, "oct192", OK_KTY_OCT, 192, &k);
    check_new(&k, "oct192", OK_KTY_OCT, 192, oct_ops);
    ok_key_info_clear(&k);

    /* explicit attributes at creation */
    ok_tag tags[2] = {{"env", "prod"}, {"owner", "\xc3\xa9quipe"}};
    spec = (ok_key_spec){.kty = OK_KTY_OCT,
                         .attrs = {.has_enabled = 1, .enabled = 0, .has_ops = 1, .ops = OK_KEYOP_WRAP, .has_exp = 1,
                                   .exp = 4000000000, .has_tags = 1, .tags = tags, .tag_count = 2}};
    assert_int_equal(ok_vault_key_create(f->v, "Attrs-1", &spec, &k), OK_OK);
    assert_int_equal(k.enabled, 0);
    assert_int_equal(k.ops, OK_KEYOP_WRAP);
    assert_int_equal(k.exp, 4000000000);
    assert_int_equal(k.tag_count, 2);
    assert_string_equal(k.tags[0].name, "env");
    assert_string_equal(k.tags[1].value, "\xc3\xa9quipe");
    ok_key_info_clear(&k);
}

static void test_create_rsa4096(void **state)
{
    vault_fixture *f = *state;
    ok_key_info k;
    uint8_t out[512];

    fixture_create(f->v, "big", OK_KTY_RSA, 4096, &k);
    assert_int_equal(k.bits, 4096);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_wrap(f->v, "big", NULL, "RSA-OAEP-256", out), 512);
    assert_int_equal(fixture_unwrap(f->v, "big", NULL, "RSA-OAEP-256", out, 512), OK_OK);
}

static void test_create_refusals(void **state)
{
    vault_fixture *f = *state;
    char longname[130];
    ok_key_spec spec = {.kty = OK_KTY_OCT};
    ok_key_info k;
    ok_tag many[16], big = {"x", NULL}, dup[2] = {{"a", "1"}, {"a", "2"}};
    char value[258];

    memset(longname, 'a', sizeof longname);
    longname[128] = '\0';
    assert_int_equal(ok_vault_key_create(f->v, longname, &spec, &k), OK_ERR_INVALID_ARG);
    longname[127] = '\0';
    assert_int_equal(ok_vault_key_create(f->v, longname, &spec, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_create(f->v, "", &spec, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_create(f->v, NULL, &spec, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_create(f->v, "a_b", &spec, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_create(f->v, "a/b", &spec, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_create(f->v, "a b", &spec, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_create(f->v, "k", NULL, &k), OK_ERR_INVALID_ARG);

    spec = (ok_key_spec){.kty = OK_KTY_RSA, .bits = 1024};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec = (ok_key_spec){.kty = OK_KTY_OCT, .bits = 512};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec = (ok_key_spec){.kty = OK_KTY_EC, .curve = (ok_curve)9};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec = (ok_key_spec){.kty = (ok_kty)7};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);

    /* attribute limits: 15 tags of at most 256 characters, distinct names, known ops, exp after nbf */
    for (int i = 0; i < 16; i++) {
        many[i].name = malloc(8);
        snprintf(many[i].name, 8, "t%d", i);
        many[i].value = (char *)"v";
    }
    spec = (ok_key_spec){.kty = OK_KTY_OCT, .attrs = {.has_tags = 1, .tags = many, .tag_count = 16}};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec.attrs.tag_count = 15;
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_OK);
    assert_int_equal(k.tag_count, 15);
    ok_key_info_clear(&k);
    for (int i = 0; i < 16; i++)
        free(many[i].name);
    memset(value, 'v', sizeof value);
    value[257] = '\0';
    big.value = value;
    spec.attrs = (ok_key_attrs){.has_tags = 1, .tags = &big, .tag_count = 1};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    value[256] = '\0';
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_OK);
    ok_key_info_clear(&k);
    spec.attrs = (ok_key_attrs){.has_tags = 1, .tags = dup, .tag_count = 2};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec.attrs = (ok_key_attrs){.has_ops = 1, .ops = 1u << 12};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec.attrs = (ok_key_attrs){.has_nbf = 1, .nbf = 2000, .has_exp = 1, .exp = 1000};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
    spec.attrs = (ok_key_attrs){.has_exp = 1, .exp = -1};
    assert_int_equal(ok_vault_key_create(f->v, "k", &spec, &k), OK_ERR_INVALID_ARG);
}

static void test_import(void **state)
{
    vault_fixture *f = *state;
    ok_pkey *rsa = NULL, *ec = NULL, *pub = NULL;
    ok_jwk jwk = {.kty = OK_JWK_RSA};
    ok_key_info k;
    ok_key_op_request req = {.op = OK_KOP_SIGN, .alg = "PS256"};
    ok_key_op_result res;
    uint8_t digest[32], key[24] = {1, 2, 3}, wrapped[40];

    assert_int_equal(ok_pkey_generate_rsa(&rsa, 2048), OK_OK);
    jwk.pkey = rsa;
    assert_int_equal(ok_vault_key_import(f->v, "imp", &jwk, NULL, &k), OK_OK);
    assert_int_equal(k.kty, OK_KTY_RSA);
    assert_int_equal(k.bits, 2048);
    ok_key_info_clear(&k);
    /* the vault signs with the imported key */
    assert_int_equal(ok_sha256((const uint8_t *)"msg", 3, digest), OK_OK);
    req.value = digest;
    req.value_len = 32;
    assert_int_equal(ok_vault_key_op(f->v, "imp", NULL, &req, &res), OK_OK);
    assert_int_equal(ok_verify(rsa, OK_SIG_PS256, (const uint8_t *)"msg", 3, res.value, res.value_len), OK_OK);
    ok_key_op_result_clear(&res);

    /* a public-only JWK is refused */
    assert_int_equal(ok_pkey_public_copy(rsa, &pub), OK_OK);
    jwk.pkey = pub;
    assert_int_equal(ok_vault_key_import(f->v, "pub", &jwk, NULL, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_get(f->v, "pub", NULL, &k), OK_ERR_NOT_FOUND);

    /* EC and oct, with attributes */
    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P384), OK_OK);
    jwk = (ok_jwk){.kty = OK_JWK_EC, .pkey = ec};
    ok_key_attrs attrs = {.has_ops = 1, .ops = OK_KEYOP_SIGN};
    assert_int_equal(ok_vault_key_import(f->v, "imp-ec", &jwk, &attrs, &k), OK_OK);
    assert_int_equal(k.kty, OK_KTY_EC);
    assert_int_equal(k.curve, OK_CURVE_P384);
    assert_int_equal(k.ops, OK_KEYOP_SIGN);
    ok_key_info_clear(&k);
    jwk = (ok_jwk){.kty = OK_JWK_OCT, .k = key, .k_len = sizeof key};
    assert_int_equal(ok_vault_key_import(f->v, "imp-oct", &jwk, NULL, &k), OK_OK);
    assert_int_equal(k.bits, 192);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_wrap(f->v, "imp-oct", NULL, "A192KW", wrapped), 40);
    assert_int_equal(ok_aes_kw_unwrap(key, sizeof key, wrapped, 40, digest, &(size_t){0}), OK_OK);
    assert_memory_equal(digest, SECRET32, 32);
    jwk.k_len = 20;
    assert_int_equal(ok_vault_key_import(f->v, "imp-oct", &jwk, NULL, &k), OK_ERR_INVALID_ARG);
    jwk.k = NULL;
    jwk.k_len = 0;
    assert_int_equal(ok_vault_key_import(f->v, "imp-oct", &jwk, NULL, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_import(f->v, "imp-oct", NULL, NULL, &k), OK_ERR_INVALID_ARG);
    ok_pkey_free(rsa);
    ok_pkey_free(pub);
    ok_pkey_free(ec);
}

static void test_get_versions(void **state)
{
    vault_fixture *f = *state;
    ok_key_info a, b, k;

    fixture_create(f->v, "multi", OK_KTY_OCT, 256, &a);
    fixture_create(f->v, "multi", OK_KTY_OCT, 128, &b); /* a new version under the same name */
    assert_string_not_equal(a.version, b.version);
    assert_int_equal(ok_vault_key_get(f->v, "multi", NULL, &k), OK_OK);
    assert_string_equal(k.version, b.version);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_get(f->v, "multi", "", &k), OK_OK);
    assert_string_equal(k.version, b.version);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_get(f->v, "multi", a.version, &k), OK_OK);
    assert_string_equal(k.version, a.version);
    assert_int_equal(k.bits, 256);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_get(f->v, "multi", SECRET32, &k), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_get(f->v, "multi", "nothex", &k), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_get(f->v, "nope", NULL, &k), OK_ERR_NOT_FOUND);
    assert_string_equal(ok_err_message(), "key \"nope\" not found");
    assert_int_equal(ok_vault_key_get(f->v, "bad name", NULL, &k), OK_ERR_INVALID_ARG);
    ok_key_info_clear(&a);
    ok_key_info_clear(&b);
}

/* ---- update and rotate ----------------------------------------------------------------------------------------- */

static void test_update(void **state)
{
    vault_fixture *f = *state;
    ok_key_info a, b, k;
    ok_tag tags[1] = {{"team", "blue"}};
    ok_key_attrs attrs = {.has_enabled = 1, .enabled = 0, .has_tags = 1, .tags = tags, .tag_count = 1};
    uint8_t out[40];

    fixture_create(f->v, "upd", OK_KTY_OCT, 256, &a);
    fixture_create(f->v, "upd", OK_KTY_OCT, 256, &b);
    assert_int_equal(ok_vault_key_update(f->v, "upd", a.version, &attrs, &k), OK_OK);
    assert_string_equal(k.version, a.version);
    assert_int_equal(k.enabled, 0);
    assert_int_equal(k.tag_count, 1);
    assert_string_equal(k.tags[0].value, "blue");
    assert_true(k.updated >= a.updated);
    ok_key_info_clear(&k);
    /* only the given attributes change; the latest version stays enabled */
    assert_int_equal(ok_vault_key_get(f->v, "upd", NULL, &k), OK_OK);
    assert_int_equal(k.enabled, 1);
    assert_int_equal(k.tag_count, 0);
    ok_key_info_clear(&k);
    attrs = (ok_key_attrs){.has_exp = 1, .exp = 4100000000};
    assert_int_equal(ok_vault_key_update(f->v, "upd", a.version, &attrs, &k), OK_OK);
    assert_int_equal(k.enabled, 0);
    assert_int_equal(k.tag_count, 1);
    assert_int_equal(k.exp, 4100000000);
    ok_key_info_clear(&k);
    /* NULL version = latest; clearing tags and exp */
    attrs = (ok_key_attrs){.has_tags = 1, .tag_count = 0, .has_ops = 1, .ops = OK_KEYOP_WRAP | OK_KEYOP_UNWRAP};
    assert_int_equal(ok_vault_key_update(f->v, "upd", NULL, &attrs, &k), OK_OK);
    assert_string_equal(k.version, b.version);
    assert_int_equal(k.ops, OK_KEYOP_WRAP | OK_KEYOP_UNWRAP);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_wrap(f->v, "upd", NULL, "A256KW", out), 40);
    attrs = (ok_key_attrs){.has_exp = 1, .exp = 0};
    assert_int_equal(ok_vault_key_update(f->v, "upd", a.version, &attrs, &k), OK_OK);
    assert_int_equal(k.exp, 0);
    ok_key_info_clear(&k);

    /* refusals change nothing */
    attrs = (ok_key_attrs){.has_nbf = 1, .nbf = 5000000000};
    assert_int_equal(ok_vault_key_update(f->v, "upd", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    attrs = (ok_key_attrs){.has_exp = 1, .exp = 4000000000}; /* before nbf */
    assert_int_equal(ok_vault_key_update(f->v, "upd", NULL, &attrs, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_update(f->v, "nope", NULL, &attrs, &k), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_update(f->v, "upd", "ffffffffffffffffffffffffffffffff", &attrs, &k),
                     OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_update(f->v, "upd", NULL, NULL, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_get(f->v, "upd", NULL, &k), OK_OK);
    assert_int_equal(k.exp, 0);
    assert_int_equal(k.nbf, 5000000000);
    ok_key_info_clear(&k);
    ok_key_info_clear(&a);
    ok_key_info_clear(&b);
}

static void test_rotate(void **state)
{
    vault_fixture *f = *state;
    ok_tag tags[1] = {{"a", "b"}};
    ok_key_spec spec = {.kty = OK_KTY_RSA, .attrs = {.has_ops = 1, .ops = OK_KEYOP_WRAP | OK_KEYOP_UNWRAP,
                                                     .has_tags = 1, .tags = tags, .tag_count = 1}};
    ok_key_info a, b, k;
    uint8_t old[256];

    assert_int_equal(ok_vault_key_create(f->v, "rot", &spec, &a), OK_OK);
    assert_int_equal(fixture_wrap(f->v, "rot", NULL, "RSA-OAEP", old), 256);
    assert_int_equal(ok_vault_key_rotate(f->v, "rot", &b), OK_OK);
    assert_string_not_equal(a.version, b.version);
    assert_int_equal(b.kty, OK_KTY_RSA);
    assert_int_equal(b.bits, 2048);
    assert_int_equal(b.ops, OK_KEYOP_WRAP | OK_KEYOP_UNWRAP);
    assert_int_equal(b.tag_count, 1);
    assert_int_equal(b.exp, 0);
    assert_int_equal(ok_vault_key_get(f->v, "rot", NULL, &k), OK_OK);
    assert_string_equal(k.version, b.version);
    ok_key_info_clear(&k);
    /* old data opens with the old version only */
    assert_int_equal(fixture_unwrap(f->v, "rot", a.version, "RSA-OAEP", old, 256), OK_OK);
    assert_int_equal(fixture_unwrap(f->v, "rot", NULL, "RSA-OAEP", old, 256), OK_ERR_AUTH);
    assert_int_equal(ok_vault_key_rotate(f->v, "none", &k), OK_ERR_NOT_FOUND);
    ok_key_info_clear(&a);
    ok_key_info_clear(&b);
}

/* ---- listing ---------------------------------------------------------------------------------------------------- */

static void test_paging(void **state)
{
    vault_fixture *f = *state;
    const char *names[7] = {"a1", "a2", "b1", "b2", "c1", "c2", "d1"};
    ok_key_page page;
    char *next = NULL, seen[8][OK_KEY_NAME_MAX + 1];
    size_t total = 0;

    for (size_t i = 0; i < 7; i++)
        fixture_create(f->v, names[6 - i], OK_KTY_OCT, 128, NULL);
    fixture_create(f->v, "c1", OK_KTY_OCT, 256, NULL); /* a second version: still one item */
    do {
        assert_int_equal(ok_vault_key_list(f->v, next, 3, &page), OK_OK);
        assert_true(page.count <= 3);
        for (size_t i = 0; i < page.count; i++)
            snprintf(seen[total++], sizeof seen[0], "%s", page.items[i].name);
        free(next);
        next = page.next ? strdup(page.next) : NULL;
        assert_true(page.next == NULL || page.count == 3);
        ok_key_page_clear(&page);
    } while (next != NULL);
    assert_int_equal(total, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(seen[i], names[i]);
    /* the latest version is what a list shows */
    assert_int_equal(ok_vault_key_list(f->v, "b2", 1, &page), OK_OK);
    assert_int_equal(page.count, 1);
    assert_string_equal(page.items[0].name, "c1");
    assert_int_equal(page.items[0].bits, 256);
    assert_string_equal(page.next, "c1");
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_key_list(f->v, NULL, 0, &page), OK_OK); /* 0 = default */
    assert_int_equal(page.count, 7);
    assert_null(page.next);
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_key_list(f->v, "not a token", 3, &page), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_list(f->v, NULL, 1001, &page), OK_ERR_INVALID_ARG);

    /* versions, in creation order */
    for (int i = 0; i < 4; i++)
        fixture_create(f->v, "v", OK_KTY_OCT, 128, NULL);
    assert_int_equal(ok_vault_key_versions(f->v, "v", NULL, 3, &page), OK_OK);
    assert_int_equal(page.count, 3);
    assert_non_null(page.next);
    next = strdup(page.next);
    char first[33];
    snprintf(first, sizeof first, "%s", page.items[0].version);
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_key_versions(f->v, "v", next, 3, &page), OK_OK);
    assert_int_equal(page.count, 1);
    assert_null(page.next);
    ok_key_page_clear(&page);
    free(next);
    ok_key_info k;
    assert_int_equal(ok_vault_key_get(f->v, "v", first, &k), OK_OK);
    assert_int_equal(ok_vault_key_versions(f->v, "v", NULL, 1, &page), OK_OK);
    assert_string_equal(page.items[0].version, k.version);
    ok_key_page_clear(&page);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_versions(f->v, "v", "0", 3, &page), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_versions(f->v, "v", "x1", 3, &page), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_versions(f->v, "v", "99999999999999999", 3, &page), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_versions(f->v, "nope", NULL, 3, &page), OK_ERR_NOT_FOUND);
}

/* ---- delete, recover, purge ------------------------------------------------------------------------------------- */

static void test_soft_delete(void **state)
{
    vault_fixture *f = *state;
    ok_key_spec spec = {.kty = OK_KTY_OCT};
    ok_key_info k, d;
    ok_key_page page;
    ok_vault_status st;
    uint8_t wrapped[40];

    fixture_create(f->v, "del", OK_KTY_OCT, 256, NULL);
    fixture_create(f->v, "keep", OK_KTY_OCT, 256, NULL);
    assert_int_equal(fixture_wrap(f->v, "del", NULL, "A256KW", wrapped), 40);
    assert_int_equal(ok_vault_key_delete(f->v, "del", &d), OK_OK);
    assert_true(d.deleted > 0);
    assert_int_equal(d.scheduled_purge, d.deleted + 90 * DAY);
    assert_int_equal(d.recoverable_days, 90);
    ok_key_info_clear(&d);
    ok_vault_get_status(f->v, &st);
    assert_int_equal(st.keys, 1);

    /* gone from the live API, present in the deleted one */
    assert_int_equal(ok_vault_key_get(f->v, "del", NULL, &k), OK_ERR_NOT_FOUND);
    assert_int_equal(fixture_unwrap(f->v, "del", NULL, "A256KW", wrapped, 40), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_delete(f->v, "del", &d), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_versions(f->v, "del", NULL, 0, &page), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_list(f->v, NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 1);
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_deleted_list(f->v, NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 1);
    assert_string_equal(page.items[0].name, "del");
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_deleted_get(f->v, "del", &d), OK_OK);
    ok_key_info_clear(&d);
    assert_int_equal(ok_vault_deleted_get(f->v, "keep", &d), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_deleted_recover(f->v, "keep", &d), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_deleted_purge(f->v, "keep"), OK_ERR_NOT_FOUND);

    /* the name cannot be reused while soft-deleted */
    assert_int_equal(ok_vault_key_create(f->v, "del", &spec, &k), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_key_rotate(f->v, "del", &k), OK_ERR_NOT_FOUND);

    /* recover brings every version back */
    assert_int_equal(ok_vault_deleted_recover(f->v, "del", &k), OK_OK);
    assert_int_equal(k.deleted, 0);
    assert_int_equal(k.scheduled_purge, 0);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_unwrap(f->v, "del", NULL, "A256KW", wrapped, 40), OK_OK);
    assert_int_equal(ok_vault_deleted_get(f->v, "del", &d), OK_ERR_NOT_FOUND);

    /* purge erases everything and frees the name */
    assert_int_equal(ok_vault_key_delete(f->v, "del", NULL), OK_OK);
    assert_int_equal(ok_vault_deleted_purge(f->v, "del"), OK_OK);
    assert_int_equal(ok_vault_deleted_get(f->v, "del", &d), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_deleted_purge(f->v, "del"), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_key_create(f->v, "del", &spec, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_unwrap(f->v, "del", NULL, "A256KW", wrapped, 40), OK_ERR_AUTH); /* a new key */
    int64_t rows = -1;
    ok_val p[1] = {OK_VTEXT("del")};
    assert_int_equal(f->v->store->vt->exec(f->v->store, "DELETE FROM key_versions WHERE name = ? AND ordinal > 1", p, 1,
                                           &rows),
                     OK_OK);
    assert_int_equal(rows, 0); /* only the new version exists */
}

static void test_purge_protection(void **state)
{
    vault_fixture *f = *state;
    char dir[600];
    ok_vault *v;
    ok_key_info d;

    snprintf(dir, sizeof dir, "%s/protected", f->tmp);
    v = fixture_new_vault(dir, 1);
    fixture_create(v, "p", OK_KTY_OCT, 128, NULL);
    assert_int_equal(ok_vault_key_delete(v, "p", &d), OK_OK);
    ok_key_info_clear(&d);
    assert_int_equal(ok_vault_deleted_purge(v, "p"), OK_ERR_FORBIDDEN);
    assert_int_equal(ok_vault_deleted_get(v, "p", &d), OK_OK); /* still there */
    ok_key_info_clear(&d);
    /* once the retention period is over, purge goes through */
    ok_val p[1] = {OK_VTEXT("p")};
    assert_int_equal(v->store->vt->exec(v->store, "UPDATE keys SET scheduled_purge = 1 WHERE name = ?", p, 1, NULL),
                     OK_OK);
    assert_int_equal(ok_vault_deleted_purge(v, "p"), OK_OK);
    assert_int_equal(ok_vault_deleted_get(v, "p", &d), OK_ERR_NOT_FOUND);
    ok_vault_close(v);

    /* turning protection on later applies to keys deleted before */
    fixture_create(f->v, "q", OK_KTY_OCT, 128, NULL);
    assert_int_equal(ok_vault_key_delete(f->v, "q", NULL), OK_OK);
    assert_int_equal(ok_vault_enable_purge_protection(f->v), OK_OK);
    assert_int_equal(ok_vault_deleted_purge(f->v, "q"), OK_ERR_FORBIDDEN);
    assert_int_equal(ok_vault_deleted_recover(f->v, "q", NULL), OK_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_types), T(test_create_rsa4096), T(test_create_refusals), T(test_import),
        T(test_get_versions), T(test_update), T(test_rotate), T(test_paging), T(test_soft_delete),
        T(test_purge_protection),
    };
    return cmocka_run_group_tests_name("vault_keys", tests, NULL, NULL);
}
