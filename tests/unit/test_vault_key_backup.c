/* Tests of key backup and restore (key_backup.c): a backup holds every version and its attributes; restore
 * into the same vault after a purge brings back keys that open old data; restore is refused over a live or
 * soft-deleted name (OK_ERR_CONFLICT), in a vault with another master key (OK_ERR_AUTH), and for altered,
 * truncated or foreign blobs (OK_ERR_AUTH / OK_ERR_INVALID_ARG), changing nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault_fixture.h"

static void test_backup_restore(void **state)
{
    vault_fixture *f = *state;
    ok_tag tags[1] = {{"k", "v"}};
    ok_key_spec spec = {.kty = OK_KTY_RSA, .attrs = {.has_tags = 1, .tags = tags, .tag_count = 1}};
    ok_rotation_policy pol = {.actions = {{OK_ROTATION_NOTIFY, 0, 7 * DAY}}, .count = 1, .expiry_time = 90 * DAY};
    ok_key_info a, b, k;
    ok_key_page page;
    uint8_t *blob = NULL, old_a[256], old_b[256];
    size_t len = 0;
    ok_key_attrs attrs = {.has_enabled = 1, .enabled = 0};

    assert_int_equal(ok_vault_key_create(f->v, "bk", &spec, &a), OK_OK);
    assert_int_equal(ok_vault_key_rotate(f->v, "bk", &b), OK_OK);
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "bk", &pol, NULL), OK_OK);
    assert_int_equal(fixture_wrap(f->v, "bk", a.version, "RSA-OAEP", old_a), 256);
    assert_int_equal(fixture_wrap(f->v, "bk", b.version, "RSA-OAEP", old_b), 256);
    assert_int_equal(ok_vault_key_update(f->v, "bk", a.version, &attrs, NULL), OK_OK);

    assert_int_equal(ok_vault_key_backup(f->v, "bk", &blob, &len), OK_OK);
    assert_true(len > 1000);
    assert_memory_equal(blob, "OKBK", 4);
    /* the name is taken: live, then soft-deleted */
    assert_int_equal(ok_vault_key_restore(f->v, blob, len, &k), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_key_delete(f->v, "bk", NULL), OK_OK);
    assert_int_equal(ok_vault_key_restore(f->v, blob, len, &k), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_key_backup(f->v, "bk", &(uint8_t *){NULL}, &(size_t){0}), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_deleted_purge(f->v, "bk"), OK_OK);

    /* after the purge: everything comes back */
    assert_int_equal(ok_vault_key_restore(f->v, blob, len, &k), OK_OK);
    assert_string_equal(k.name, "bk");
    assert_string_equal(k.version, b.version);
    assert_int_equal(k.tag_count, 1);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_versions(f->v, "bk", NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 2);
    assert_string_equal(page.items[0].version, a.version);
    assert_int_equal(page.items[0].enabled, 0);
    assert_int_equal(page.items[0].created, a.created);
    assert_string_equal(page.items[1].version, b.version);
    ok_key_page_clear(&page);
    assert_int_equal(fixture_unwrap(f->v, "bk", b.version, "RSA-OAEP", old_b, 256), OK_OK);
    assert_int_equal(fixture_unwrap(f->v, "bk", a.version, "RSA-OAEP", old_a, 256), OK_ERR_FORBIDDEN); /* disabled */
    ok_rotation_policy got;
    assert_int_equal(ok_vault_rotation_policy_get(f->v, "bk", &got), OK_OK);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.expiry_time, 90 * DAY);
    assert_int_equal(ok_vault_key_restore(f->v, blob, len, &k), OK_ERR_CONFLICT);
    free(blob);
    ok_key_info_clear(&a);
    ok_key_info_clear(&b);
    assert_int_equal(ok_vault_key_backup(f->v, "none", &blob, &len), OK_ERR_NOT_FOUND);
    assert_null(blob);
}

static void test_restore_refusals(void **state)
{
    vault_fixture *f = *state;
    char dir[600];
    ok_vault *other;
    ok_key_info k;
    uint8_t *blob = NULL, *copy;
    size_t len = 0;
    ok_vault_status st;

    fixture_create(f->v, "x", OK_KTY_OCT, 256, NULL);
    assert_int_equal(ok_vault_key_backup(f->v, "x", &blob, &len), OK_OK);
    assert_int_equal(ok_vault_key_delete(f->v, "x", NULL), OK_OK);
    assert_int_equal(ok_vault_deleted_purge(f->v, "x"), OK_OK);
    copy = malloc(len);

    /* another vault (another master key) cannot open it */
    snprintf(dir, sizeof dir, "%s/other", f->tmp);
    other = fixture_new_vault(dir, 0);
    assert_int_equal(ok_vault_key_restore(other, blob, len, &k), OK_ERR_AUTH);
    ok_vault_get_status(other, &st);
    assert_int_equal(st.keys, 0);
    ok_vault_close(other);

    /* any altered byte past the header fails authentication; header damage is a format error */
    for (size_t pos = 5; pos < len; pos += len / 7) {
        memcpy(copy, blob, len);
        copy[pos] ^= 0x01;
        assert_int_equal(ok_vault_key_restore(f->v, copy, len, &k), OK_ERR_AUTH);
    }
    memcpy(copy, blob, len);
    copy[0] = 'X';
    assert_int_equal(ok_vault_key_restore(f->v, copy, len, &k), OK_ERR_INVALID_ARG);
    copy[0] = 'O';
    copy[4] = 9;
    assert_int_equal(ok_vault_key_restore(f->v, copy, len, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_restore(f->v, blob, len - 1, &k), OK_ERR_AUTH);
    assert_int_equal(ok_vault_key_restore(f->v, blob, 20, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_restore(f->v, blob, 0, &k), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_restore(f->v, NULL, 0, &k), OK_ERR_INVALID_ARG);
    ok_vault_get_status(f->v, &st);
    assert_int_equal(st.keys, 0);

    /* and the original still restores */
    assert_int_equal(ok_vault_key_restore(f->v, blob, len, &k), OK_OK);
    ok_key_info_clear(&k);
    free(copy);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_restore, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_restore_refusals, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests_name("vault_key_backup", tests, NULL, NULL);
}
