/* Tests of the vault's sealed secrets and seal epoch (src/vault/secrets.c): round trip, the label bound,
 * tampering, another vault's master key, refusal while sealed, and an epoch that is 0 while sealed, stable
 * while unsealed and new after every unseal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vault_fixture.h"

static const uint8_t SECRET[] = "a service root key, 32 bytes...";

static void test_round_trip(void **state)
{
    vault_fixture *f = *state;
    uint8_t *blob = NULL, *back = NULL;
    size_t blob_len = 0, back_len = 0;

    assert_int_equal(ok_vault_wrap_secret(f->v, "ownkey-ds-srk", SECRET, sizeof SECRET, &blob, &blob_len), OK_OK);
    assert_int_equal(blob_len, sizeof SECRET + 1 + 12 + 16);
    assert_null(memmem(blob, blob_len, SECRET, 8)); /* not in the clear */
    assert_int_equal(ok_vault_unwrap_secret(f->v, "ownkey-ds-srk", blob, blob_len, &back, &back_len), OK_OK);
    assert_int_equal(back_len, sizeof SECRET);
    assert_memory_equal(back, SECRET, sizeof SECRET);
    ok_secure_free(back, back_len);

    /* two wraps of the same secret differ (fresh nonce) */
    uint8_t *blob2 = NULL;
    size_t blob2_len = 0;
    assert_int_equal(ok_vault_wrap_secret(f->v, "ownkey-ds-srk", SECRET, sizeof SECRET, &blob2, &blob2_len), OK_OK);
    assert_int_equal(blob2_len, blob_len);
    assert_memory_not_equal(blob, blob2, blob_len);
    free(blob2);
    free(blob);
}

static void test_label_and_tampering(void **state)
{
    vault_fixture *f = *state;
    uint8_t *blob = NULL, *back = NULL;
    size_t blob_len = 0, back_len = 0;

    assert_int_equal(ok_vault_wrap_secret(f->v, "ownkey-ds-cred|aaaa", SECRET, sizeof SECRET, &blob, &blob_len), OK_OK);
    assert_int_equal(ok_vault_unwrap_secret(f->v, "ownkey-ds-cred|bbbb", blob, blob_len, &back, &back_len), OK_ERR_AUTH);
    assert_null(back);
    for (size_t i = 0; i < blob_len; i++) {
        blob[i] ^= 1;
        ok_err rc = ok_vault_unwrap_secret(f->v, "ownkey-ds-cred|aaaa", blob, blob_len, &back, &back_len);
        assert_true(rc == OK_ERR_AUTH || (i == 0 && rc == OK_ERR_FORMAT));
        assert_null(back);
        blob[i] ^= 1;
    }
    assert_int_equal(ok_vault_unwrap_secret(f->v, "ownkey-ds-cred|aaaa", blob, blob_len - 1, &back, &back_len), OK_ERR_AUTH);
    assert_int_equal(ok_vault_unwrap_secret(f->v, "ownkey-ds-cred|aaaa", blob, 20, &back, &back_len), OK_ERR_FORMAT);

    /* another vault has another master key */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/other", f->tmp);
    ok_vault *other = fixture_new_vault(dir, 0);
    assert_int_equal(ok_vault_unwrap_secret(other, "ownkey-ds-cred|aaaa", blob, blob_len, &back, &back_len), OK_ERR_AUTH);
    ok_vault_close(other);
    free(blob);
    blob = NULL;

    /* arguments */
    assert_int_equal(ok_vault_wrap_secret(f->v, "", SECRET, sizeof SECRET, &blob, &blob_len), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_wrap_secret(f->v, NULL, SECRET, sizeof SECRET, &blob, &blob_len), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_wrap_secret(f->v, "x", SECRET, 0, &blob, &blob_len), OK_ERR_INVALID_ARG);
    assert_null(blob);
}

static void test_sealed_and_epoch(void **state)
{
    vault_fixture *f = *state;
    uint8_t *blob = NULL, *back = NULL;
    size_t blob_len = 0, back_len = 0;

    uint64_t e1 = ok_vault_seal_epoch(f->v);
    assert_true(e1 != 0);
    assert_int_equal(ok_vault_seal_epoch(f->v), e1); /* stable while unsealed */
    assert_int_equal(ok_vault_wrap_secret(f->v, "label", SECRET, sizeof SECRET, &blob, &blob_len), OK_OK);
    /* key operations do not change the epoch */
    fixture_create(f->v, "k1", OK_KTY_OCT, 256, NULL);
    uint8_t wrapped[64];
    (void)fixture_wrap(f->v, "k1", NULL, "A256KW", wrapped);
    assert_int_equal(ok_vault_seal_epoch(f->v), e1);

    assert_int_equal(ok_vault_seal(f->v), OK_OK);
    assert_int_equal(ok_vault_seal_epoch(f->v), 0);
    assert_int_equal(ok_vault_unwrap_secret(f->v, "label", blob, blob_len, &back, &back_len), OK_ERR_SEALED);
    assert_null(back);
    uint8_t *b2 = NULL;
    size_t b2_len = 0;
    assert_int_equal(ok_vault_wrap_secret(f->v, "label", SECRET, sizeof SECRET, &b2, &b2_len), OK_ERR_SEALED);
    assert_null(b2);

    assert_int_equal(ok_vault_unseal_auto(f->v), OK_OK);
    uint64_t e2 = ok_vault_seal_epoch(f->v);
    assert_true(e2 != 0 && e2 != e1);
    assert_int_equal(ok_vault_unwrap_secret(f->v, "label", blob, blob_len, &back, &back_len), OK_OK);
    assert_memory_equal(back, SECRET, sizeof SECRET);
    ok_secure_free(back, back_len);

    /* a seal and unseal between two looks is still seen */
    assert_int_equal(ok_vault_seal(f->v), OK_OK);
    assert_int_equal(ok_vault_unseal_auto(f->v), OK_OK);
    uint64_t e3 = ok_vault_seal_epoch(f->v);
    assert_true(e3 != 0 && e3 != e2 && e3 != e1);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_label_and_tampering, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sealed_and_epoch, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
