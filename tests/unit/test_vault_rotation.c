/* Tests of rotation policies and the scheduler tick (rotation.c): validation of policies, get/set with
 * created/updated, rotation when latest.created + timeAfterCreate has passed, exp on new versions from
 * expiryTime, Notify recorded once per version and action (timeBeforeExpiry), deleted keys skipped, and
 * the scheduler's audit lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault_fixture.h"

static void test_policy_validation(void **state)
{
    vault_fixture *f = *state;
    ok_rotation_policy p, out;

    fixture_create(f->v, "k", OK_KTY_OCT, 256, NULL);
    assert_int_equal(ok_vault_rotation_policy_get(f->v, "k", &out), OK_OK);
    assert_int_equal(out.count, 0);
    assert_int_equal(out.created, 0);

    memset(&p, 0, sizeof p);
    p.count = 9;
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG);
    p = (ok_rotation_policy){.actions = {{OK_ROTATION_ROTATE, 10, 10}}, .count = 1};
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG); /* two triggers */
    p = (ok_rotation_policy){.actions = {{OK_ROTATION_ROTATE, 0, 0}}, .count = 1};
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG); /* none */
    p = (ok_rotation_policy){.actions = {{OK_ROTATION_ROTATE, -5, 0}}, .count = 1};
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG);
    p = (ok_rotation_policy){.actions = {{(ok_rotation_action)7, 5, 0}}, .count = 1};
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG);
    p = (ok_rotation_policy){.count = 0, .expiry_time = -1};
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "none", &p, &out), OK_ERR_INVALID_ARG);
    p.expiry_time = 0;
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "none", &p, &out), OK_ERR_NOT_FOUND);
    assert_int_equal(ok_vault_rotation_policy_get(f->v, "none", &out), OK_ERR_NOT_FOUND);

    /* eight actions are fine; created stays, updated moves */
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < 8; i++) {
        p.actions[i].action = i % 2 ? OK_ROTATION_NOTIFY : OK_ROTATION_ROTATE;
        if (i % 2)
            p.actions[i].before_expiry = (int64_t)(i + 1) * DAY;
        else
            p.actions[i].after_create = (int64_t)(i + 1) * DAY;
    }
    p.count = 8;
    p.expiry_time = 400 * DAY;
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_OK);
    assert_true(out.created > 0 && out.updated == out.created);
    assert_int_equal(ok_vault_rotation_policy_get(f->v, "k", &out), OK_OK);
    assert_int_equal(out.count, 8);
    assert_int_equal(out.actions[3].action, OK_ROTATION_NOTIFY);
    assert_int_equal(out.actions[3].before_expiry, 4 * DAY);
    assert_int_equal(out.actions[4].after_create, 5 * DAY);
    assert_int_equal(out.expiry_time, 400 * DAY);
    int64_t created = out.created;
    p.count = 1;
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "k", &p, &out), OK_OK);
    assert_int_equal(out.created, created);
    assert_int_equal(out.count, 1);
}

static void test_tick_rotates(void **state)
{
    vault_fixture *f = *state;
    ok_rotation_policy p = {.actions = {{OK_ROTATION_ROTATE, 30 * DAY, 0}}, .count = 1, .expiry_time = 60 * DAY};
    ok_key_info first, k;
    ok_key_page page;
    unsigned rotated = 9, notified = 9;
    int64_t now = ok_vault_now();
    uint8_t wrapped[40];
    uint64_t lines = 0, bad = 1;

    fixture_create(f->v, "auto", OK_KTY_OCT, 256, &first);
    fixture_create(f->v, "manual", OK_KTY_OCT, 256, NULL); /* no policy: never touched */
    assert_int_equal(fixture_wrap(f->v, "auto", NULL, "A256KW", wrapped), 40);
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "auto", &p, NULL), OK_OK);

    assert_int_equal(ok_vault_rotation_tick(f->v, now, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 0);
    assert_int_equal(notified, 0);
    assert_int_equal(ok_vault_rotation_tick(f->v, now + 31 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 1);
    assert_int_equal(ok_vault_key_get(f->v, "auto", NULL, &k), OK_OK);
    assert_string_not_equal(k.version, first.version);
    assert_true(k.exp >= now + 60 * DAY && k.exp <= ok_vault_now() + 60 * DAY); /* expiryTime */
    ok_key_info_clear(&k);
    /* the new version is young again */
    assert_int_equal(ok_vault_rotation_tick(f->v, now + 1 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 0);
    assert_int_equal(ok_vault_key_versions(f->v, "auto", NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 2);
    ok_key_page_clear(&page);
    assert_int_equal(ok_vault_key_versions(f->v, "manual", NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 1);
    ok_key_page_clear(&page);
    /* old data still opens with the old version */
    assert_int_equal(fixture_unwrap(f->v, "auto", first.version, "A256KW", wrapped, 40), OK_OK);
    /* a manual rotation also takes expiryTime */
    assert_int_equal(ok_vault_key_rotate(f->v, "auto", &k), OK_OK);
    assert_true(k.exp > now);
    ok_key_info_clear(&k);

    /* deleted keys are skipped */
    assert_int_equal(ok_vault_key_delete(f->v, "auto", NULL), OK_OK);
    assert_int_equal(ok_vault_rotation_tick(f->v, now + 365 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 0);

    /* the scheduler's work is audited, and the log verifies */
    assert_int_equal(ok_vault_audit_verify(f->v, &lines, &bad), OK_OK);
    assert_true(lines >= 1);
    assert_int_equal(bad, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/audit.log", f->dir);
    char *log = test_read_file(path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"identity\":\"scheduler\""));
    assert_non_null(strstr(log, "\"operation\":\"rotate\""));
    free(log);
    ok_key_info_clear(&first);

    /* sealed: nothing happens */
    assert_int_equal(ok_vault_seal(f->v), OK_OK);
    assert_int_equal(ok_vault_rotation_tick(f->v, now, &rotated, &notified), OK_ERR_SEALED);
}

static void test_tick_notifies(void **state)
{
    vault_fixture *f = *state;
    int64_t now = ok_vault_now(), exp = now + 100 * DAY;
    ok_key_spec spec = {.kty = OK_KTY_EC, .attrs = {.has_exp = 1, .exp = exp}};
    ok_rotation_policy p = {.actions = {{OK_ROTATION_NOTIFY, 0, 10 * DAY}, {OK_ROTATION_ROTATE, 0, 2 * DAY}},
                            .count = 2};
    ok_key_info k;
    unsigned rotated = 0, notified = 0;

    assert_int_equal(ok_vault_key_create(f->v, "n", &spec, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_rotation_policy_set(f->v, "n", &p, NULL), OK_OK);
    assert_int_equal(ok_vault_rotation_tick(f->v, exp - 11 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(notified, 0);
    assert_int_equal(ok_vault_rotation_tick(f->v, exp - 9 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(notified, 1);
    assert_int_equal(rotated, 0);
    assert_int_equal(ok_vault_rotation_tick(f->v, exp - 8 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(notified, 0); /* once per version */
    /* close to expiry: notify already done, rotate now; the new version has no exp, so nothing more */
    assert_int_equal(ok_vault_rotation_tick(f->v, exp - 1 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 1);
    assert_int_equal(notified, 0);
    assert_int_equal(ok_vault_key_get(f->v, "n", NULL, &k), OK_OK);
    assert_int_equal(k.exp, 0);
    assert_int_equal(k.kty, OK_KTY_EC);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_rotation_tick(f->v, exp + 5 * DAY, &rotated, &notified), OK_OK);
    assert_int_equal(rotated, 0);
    assert_int_equal(notified, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {T(test_policy_validation), T(test_tick_rotates), T(test_tick_notifies)};
    return cmocka_run_group_tests_name("vault_rotation", tests, NULL, NULL);
}
