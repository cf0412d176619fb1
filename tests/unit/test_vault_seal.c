/* Tests of the vault's life and sealing (vault.c, seal.c, seal_shamir.c, store_sqlite.c): init and open for
 * each seal kind, file modes, wrong share sets and wrong passphrases refused, sealing wipes every working
 * key and refuses operations, restart persistence, init refusals and cleanup, purge protection and status, one opener per data directory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ownkey/vault.h"
#include "test_support.h"
#include "vault/vault_internal.h"

#define PASS "correct horse battery staple"

typedef struct {
    char *tmp;      /* the temporary parent */
    char dir[512];  /* the vault directory inside it */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL || (f->tmp = test_make_tmpdir()) == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/vault", f->tmp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    test_remove_tree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

static void init_vault(const char *dir, ok_seal_kind kind, ok_vault_init_result *res)
{
    ok_vault_init_params p = {.kind = kind, .shares = 5, .threshold = 3};

    if (kind == OK_SEAL_PASSPHRASE) {
        p.passphrase = (const uint8_t *)PASS;
        p.passphrase_len = strlen(PASS);
    }
    assert_int_equal(ok_vault_init(dir, &p, res), OK_OK);
    assert_non_null(res->admin_token);
}

static mode_t file_mode(const char *dir, const char *file)
{
    char path[600];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 0777;
}

/* An oct key "k1" and a wrapped value that later opens only with the same key. */
static void make_key(ok_vault *v, uint8_t wrapped[40])
{
    ok_key_spec spec = {.kty = OK_KTY_OCT};
    ok_key_info info;
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "A256KW",
                             .value = (const uint8_t *)"0123456789abcdef0123456789abcdef", .value_len = 32};
    ok_key_op_result res;

    assert_int_equal(ok_vault_key_create(v, "k1", &spec, &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(ok_vault_key_op(v, "k1", NULL, &req, &res), OK_OK);
    assert_int_equal(res.value_len, 40);
    memcpy(wrapped, res.value, 40);
    ok_key_op_result_clear(&res);
}

static void expect_key(ok_vault *v, const uint8_t wrapped[40])
{
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = "A256KW", .value = wrapped, .value_len = 40};
    ok_key_op_result res;

    assert_int_equal(ok_vault_key_op(v, "k1", NULL, &req, &res), OK_OK);
    assert_int_equal(res.value_len, 32);
    assert_memory_equal(res.value, "0123456789abcdef0123456789abcdef", 32);
    ok_key_op_result_clear(&res);
}

static void expect_sealed(ok_vault *v)
{
    ok_key_spec spec = {.kty = OK_KTY_OCT};
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "A256KW", .value = (const uint8_t *)"0123456789abcdef",
                             .value_len = 16};
    ok_key_op_result res;
    ok_key_info info;
    ok_key_page page;
    ok_vault_status st;
    uint8_t buf[8], *blob = NULL;
    size_t len = 0;

    assert_null(v->master_key);
    assert_null(v->token_key);
    assert_null(v->audit_key);
    assert_null(v->material_key);
    assert_null(v->backup_key);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.sealed, 1);
    assert_int_equal(ok_vault_key_op(v, "k1", NULL, &req, &res), OK_ERR_SEALED);
    assert_int_equal(ok_vault_key_get(v, "k1", NULL, &info), OK_ERR_SEALED);
    assert_int_equal(ok_vault_key_create(v, "k2", &spec, &info), OK_ERR_SEALED);
    assert_int_equal(ok_vault_key_list(v, NULL, 0, &page), OK_ERR_SEALED);
    assert_int_equal(ok_vault_key_backup(v, "k1", &blob, &len), OK_ERR_SEALED);
    assert_int_equal(ok_vault_deleted_purge(v, "k1"), OK_ERR_SEALED);
    assert_int_equal(ok_vault_random(v, buf, sizeof buf), OK_ERR_SEALED);
}

/* ---- dev -------------------------------------------------------------------------------------------------- */

static void test_dev_vault(void **state)
{
    fixture *f = *state;
    ok_vault_init_result res;
    ok_vault_status st;
    ok_vault *v = NULL;
    uint8_t wrapped[40];
    char path[600];

    init_vault(f->dir, OK_SEAL_DEV, &res);
    assert_null(res.shares);
    assert_int_equal(res.share_count, 0);
    ok_vault_init_result_clear(&res);
    assert_null(res.admin_token);
    assert_int_equal(file_mode(f->tmp, "vault"), 0700);
    assert_int_equal(file_mode(f->dir, "vault.db"), 0600);
    assert_int_equal(file_mode(f->dir, "master.key"), 0600);

    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    /* One opener at a time per data directory. */
    ok_vault *second = NULL;
    assert_int_equal(ok_vault_open(f->dir, &second), OK_ERR_CONFLICT);
    assert_null(second);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.sealed, 0);
    assert_int_equal(st.kind, OK_SEAL_DEV);
    assert_int_equal(st.retention_days, 90);
    assert_int_equal(st.purge_protection, 0);
    assert_int_equal(st.keys, 0);
    make_key(v, wrapped);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.keys, 1);

    /* seal wipes; a dev vault unseals again from its key file */
    assert_int_equal(ok_vault_seal(v), OK_OK);
    expect_sealed(v);
    assert_int_equal(ok_vault_unseal_share(v, "1-00"), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)PASS, 3), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_auto(v), OK_OK);
    expect_key(v, wrapped);
    ok_vault_close(v);

    /* restart: the same key works */
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    expect_key(v, wrapped);
    ok_vault_close(v);

    /* a key file others can read is refused; so is one that is not this vault's */
    snprintf(path, sizeof path, "%s/master.key", f->dir);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_ERR_KEY);
    assert_null(v);
    assert_int_equal(chmod(path, 0600), 0);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    int first = fgetc(fp); /* flipped, not overwritten: a fixed byte is already there once in 256 runs */
    assert_true(first != EOF);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    fputc(first ^ 0xff, fp);
    fclose(fp);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_ERR_AUTH);
    assert_null(v);
}

/* ---- shamir ------------------------------------------------------------------------------------------------- */

static void submit(ok_vault *v, const char *share, unsigned expect_held, int expect_sealed)
{
    ok_vault_status st;

    assert_int_equal(ok_vault_unseal_share(v, share), OK_OK);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.shares_submitted, expect_held);
    assert_int_equal(st.sealed, expect_sealed);
}

static void test_shamir_vault(void **state)
{
    fixture *f = *state;
    ok_vault_init_result res, other;
    ok_vault_status st;
    ok_vault *v = NULL;
    uint8_t wrapped[40];
    char bad[80], other_dir[600];

    init_vault(f->dir, OK_SEAL_SHAMIR, &res);
    assert_int_equal(res.share_count, 5);
    for (size_t i = 0; i < 5; i++) {
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%zu-", i + 1);
        assert_int_equal(strncmp(res.shares[i], prefix, strlen(prefix)), 0);
        assert_int_equal(strlen(res.shares[i]), strlen(prefix) + 64);
        assert_int_equal(strspn(res.shares[i] + strlen(prefix), "0123456789abcdef"), 64);
    }
    assert_int_equal(access(f->dir, F_OK), 0);
    snprintf(other_dir, sizeof other_dir, "%s/master.key", f->dir);
    assert_int_not_equal(access(other_dir, F_OK), 0); /* nothing but the check value is stored */

    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.sealed, 1);
    assert_int_equal(st.kind, OK_SEAL_SHAMIR);
    assert_int_equal(st.threshold, 3);
    expect_sealed(v);
    assert_int_equal(ok_vault_unseal_auto(v), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)PASS, strlen(PASS)), OK_ERR_INVALID_ARG);

    /* malformed shares change nothing */
    assert_int_equal(ok_vault_unseal_share(v, "garbage"), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_share(v, "0-00"), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_share(v, res.shares[0] + 2), OK_ERR_INVALID_ARG);
    snprintf(bad, sizeof bad, "%.60s", res.shares[0]);
    assert_int_equal(ok_vault_unseal_share(v, bad), OK_ERR_INVALID_ARG);

    /* a wrong set: share 1 with one digit changed */
    snprintf(bad, sizeof bad, "%s", res.shares[0]);
    bad[10] = bad[10] == '0' ? '1' : '0';
    submit(v, bad, 1, 1);
    submit(v, res.shares[1], 2, 1);
    submit(v, res.shares[1], 2, 1); /* the same share twice counts once */
    assert_int_equal(ok_vault_unseal_share(v, res.shares[2]), OK_ERR_AUTH);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.sealed, 1);
    assert_int_equal(st.shares_submitted, 0); /* dropped */

    /* shares of another vault do not open this one */
    snprintf(other_dir, sizeof other_dir, "%s/other", f->tmp);
    init_vault(other_dir, OK_SEAL_SHAMIR, &other);
    submit(v, other.shares[0], 1, 1);
    submit(v, other.shares[1], 2, 1);
    assert_int_equal(ok_vault_unseal_share(v, other.shares[2]), OK_ERR_AUTH);
    ok_vault_init_result_clear(&other);

    /* the right shares, with white space around one */
    snprintf(bad, sizeof bad, "  %s\n", res.shares[0]);
    submit(v, bad, 1, 1);
    submit(v, res.shares[3], 2, 1);
    submit(v, res.shares[4], 0, 0);
    assert_non_null(v->master_key);
    assert_int_equal(ok_vault_unseal_share(v, res.shares[1]), OK_OK); /* already unsealed */
    make_key(v, wrapped);
    assert_int_equal(ok_vault_seal(v), OK_OK);
    expect_sealed(v);
    ok_vault_close(v);

    /* restart; any other three shares */
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    submit(v, res.shares[4], 1, 1);
    submit(v, res.shares[1], 2, 1);
    submit(v, res.shares[2], 0, 0);
    expect_key(v, wrapped);
    ok_vault_close(v);
    ok_vault_init_result_clear(&res);
}

/* ---- passphrase ----------------------------------------------------------------------------------------------- */

static void test_passphrase_vault(void **state)
{
    fixture *f = *state;
    ok_vault_init_params p = {.kind = OK_SEAL_PASSPHRASE, .passphrase = (const uint8_t *)"short", .passphrase_len = 5};
    ok_vault_init_result res;
    ok_vault_status st;
    ok_vault *v = NULL;
    uint8_t wrapped[40];

    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    assert_int_not_equal(access(f->dir, F_OK), 0); /* nothing left behind */
    init_vault(f->dir, OK_SEAL_PASSPHRASE, &res);
    ok_vault_init_result_clear(&res);

    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.sealed, 1);
    assert_int_equal(st.kind, OK_SEAL_PASSPHRASE);
    expect_sealed(v);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)"wrong passphrase", 16), OK_ERR_AUTH);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)PASS, strlen(PASS) - 1), OK_ERR_AUTH);
    assert_int_equal(ok_vault_unseal_passphrase(v, NULL, 0), OK_ERR_AUTH);
    expect_sealed(v);
    assert_int_equal(ok_vault_unseal_share(v, "1-00"), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)PASS, strlen(PASS)), OK_OK);
    make_key(v, wrapped);
    ok_vault_close(v);

    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    assert_int_equal(ok_vault_unseal_passphrase(v, (const uint8_t *)PASS, strlen(PASS)), OK_OK);
    expect_key(v, wrapped);
    ok_vault_close(v);
}

/* ---- init and open refusals, settings ---------------------------------------------------------------------- */

static void test_init_refusals(void **state)
{
    fixture *f = *state;
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result res;
    ok_vault *v = NULL;
    char path[600];

    p.retention_days = 6;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    p.retention_days = 91;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    p.retention_days = 0;
    p.kind = (ok_seal_kind)9;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    p.kind = OK_SEAL_SHAMIR;
    p.shares = 3;
    p.threshold = 1;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    p.shares = 256;
    p.threshold = 2;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_INVALID_ARG);
    assert_int_not_equal(access(f->dir, F_OK), 0);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_ERR_NOT_FOUND);

    /* an existing empty directory is taken; a vault or any other content is not overwritten */
    assert_int_equal(mkdir(f->dir, 0755), 0);
    p.kind = OK_SEAL_DEV;
    p.retention_days = 7;
    p.purge_protection = 1;
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_OK);
    ok_vault_init_result_clear(&res);
    assert_int_equal(file_mode(f->tmp, "vault"), 0700);
    assert_int_equal(ok_vault_init(f->dir, &p, &res), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_init(f->tmp, &p, &res), OK_ERR_CONFLICT);
    snprintf(path, sizeof path, "%s/vault.db", f->dir);
    assert_int_equal(ok_vault_init(path, &p, &res), OK_ERR_CONFLICT);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    ok_vault_status st;
    ok_vault_get_status(v, &st);
    assert_int_equal(st.retention_days, 7);
    assert_int_equal(st.purge_protection, 1);
    ok_vault_close(v);
    assert_int_equal(ok_vault_open(f->tmp, &v), OK_ERR_NOT_FOUND);

    /* a SQLite file that is not a vault */
    snprintf(path, sizeof path, "%s/notavault", f->tmp);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/notavault/vault.db", f->tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/notavault", f->tmp);
    assert_int_equal(ok_vault_open(path, &v), OK_ERR_FORMAT);
}

static void test_purge_protection_setting(void **state)
{
    fixture *f = *state;
    ok_vault_init_result res;
    ok_vault_status st;
    ok_vault *v = NULL;
    uint8_t a[128], b[128];

    init_vault(f->dir, OK_SEAL_DEV, &res);
    ok_vault_init_result_clear(&res);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    assert_int_equal(ok_vault_enable_purge_protection(v), OK_OK);
    assert_int_equal(ok_vault_enable_purge_protection(v), OK_OK);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.purge_protection, 1);
    assert_int_equal(ok_vault_random(v, a, 128), OK_OK);
    assert_int_equal(ok_vault_random(v, b, 128), OK_OK);
    assert_memory_not_equal(a, b, 128);
    assert_int_equal(ok_vault_random(v, a, 0), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_random(v, a, 129), OK_ERR_INVALID_ARG);
    ok_vault_close(v);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    ok_vault_get_status(v, &st);
    assert_int_equal(st.purge_protection, 1);
    ok_vault_close(v);
}

/* ---- sealing under load ------------------------------------------------------------------------------------------ */

typedef struct {
    ok_vault *v;
    const uint8_t *wrapped;
    int ok, sealed, other;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = "A256KW", .value = w->wrapped, .value_len = 40};
    ok_key_op_result res;

    for (int i = 0; i < 300; i++) {
        ok_err rc = ok_vault_key_op(w->v, "k1", NULL, &req, &res);
        if (rc == OK_OK && res.value_len == 32 && memcmp(res.value, "0123456789abcdef0123456789abcdef", 32) == 0)
            w->ok++;
        else if (rc == OK_ERR_SEALED)
            w->sealed++;
        else
            w->other++;
        ok_key_op_result_clear(&res);
    }
    return NULL;
}

/* Operations racing with seal/unseal either succeed with the right answer or see OK_ERR_SEALED. */
static void test_seal_while_busy(void **state)
{
    fixture *f = *state;
    ok_vault_init_result res;
    ok_vault *v = NULL;
    uint8_t wrapped[40];
    pthread_t th[4];
    worker w[4];

    init_vault(f->dir, OK_SEAL_DEV, &res);
    ok_vault_init_result_clear(&res);
    assert_int_equal(ok_vault_open(f->dir, &v), OK_OK);
    make_key(v, wrapped);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){v, wrapped, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ok_vault_seal(v), OK_OK);
        usleep(500);
        assert_int_equal(ok_vault_unseal_auto(v), OK_OK);
        usleep(500);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].other, 0);
        assert_int_equal(w[i].ok + w[i].sealed, 300);
    }
    ok_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dev_vault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shamir_vault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passphrase_vault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_protection_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_while_busy, setup, teardown),
    };
    return cmocka_run_group_tests_name("vault_seal", tests, NULL, NULL);
}
