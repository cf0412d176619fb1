/* A fixture shared by the vault's key tests: a dev vault in a fresh temporary directory, opened (and so
 * unsealed) for each test, and a few helpers. Header-only (static inline) so that only the tests that use
 * the vault include it. */
#ifndef OWNKEY_TEST_VAULT_FIXTURE_H
#define OWNKEY_TEST_VAULT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/vault.h"
#include "test_support.h"
#include "vault/vault_internal.h"

#define DAY 86400
#define SECRET32 "0123456789abcdef0123456789abcdef"

typedef struct {
    char *tmp;
    char dir[512];
    ok_vault *v;
} vault_fixture;

static inline ok_vault *fixture_new_vault(const char *dir, int purge_protection)
{
    ok_vault_init_params p = {.kind = OK_SEAL_DEV, .purge_protection = purge_protection};
    ok_vault_init_result res;
    ok_vault *v = NULL;

    assert_int_equal(ok_vault_init(dir, &p, &res), OK_OK);
    ok_vault_init_result_clear(&res);
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    return v;
}

static inline int fixture_setup(void **state)
{
    vault_fixture *f = calloc(1, sizeof *f);

    if (f == NULL || (f->tmp = test_make_tmpdir()) == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/vault", f->tmp);
    f->v = fixture_new_vault(f->dir, 0);
    *state = f;
    return 0;
}

static inline int fixture_teardown(void **state)
{
    vault_fixture *f = *state;

    ok_vault_close(f->v);
    test_remove_tree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* Creates a key (EC: bits 256 or 384 picks the curve); out may be NULL. */
static inline void fixture_create(ok_vault *v, const char *name, ok_kty kty, unsigned bits, ok_key_info *out)
{
    ok_key_spec spec = {.kty = kty, .bits = kty == OK_KTY_EC ? 0 : bits,
                        .curve = kty == OK_KTY_EC ? (bits == 384 ? OK_CURVE_P384 : OK_CURVE_P256) : 0};
    ok_key_info info;

    assert_int_equal(ok_vault_key_create(v, name, &spec, out ? out : &info), OK_OK);
    if (out == NULL)
        ok_key_info_clear(&info);
}

/* Wraps SECRET32 with alg; returns the wrapped length written to out. */
static inline size_t fixture_wrap(ok_vault *v, const char *name, const char *version, const char *alg, uint8_t *out)
{
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = alg, .value = (const uint8_t *)SECRET32, .value_len = 32};
    ok_key_op_result res;
    size_t n;

    assert_int_equal(ok_vault_key_op(v, name, version, &req, &res), OK_OK);
    n = res.value_len;
    memcpy(out, res.value, n);
    ok_key_op_result_clear(&res);
    return n;
}

/* Unwraps; on success the result must be SECRET32. */
static inline ok_err fixture_unwrap(ok_vault *v, const char *name, const char *version, const char *alg,
                                    const uint8_t *in, size_t len)
{
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = alg, .value = in, .value_len = len};
    ok_key_op_result res;
    ok_err rc = ok_vault_key_op(v, name, version, &req, &res);

    if (rc == OK_OK) {
        assert_int_equal(res.value_len, 32);
        assert_memory_equal(res.value, SECRET32, 32);
    }
    ok_key_op_result_clear(&res);
    return rc;
}

#endif
