/* Tests of the data service's re-key jobs (src/dataservice/rekey.c): re-wrap and re-encrypt of a
 * tenant's objects, a job interrupted after a batch and resumed from its cursor, a put straddling the
 * start, a job waiting while the vault is sealed, puts racing a re-encryption, and a job failing on a row
 * whose DEK does not unwrap. Batching is bounded through OWNKEY_DS_REKEY_BATCH and
 * OWNKEY_DS_REKEY_MAX_BATCHES (unset by the teardown). The fixture is in ds_fixture.h. */
#include <time.h>

#include "ds_fixture.h"

#define WAIT_STEPS 6000 /* polls of 10 ms: a bound against hanging, not a timing check */

/* ---- Helpers ----------------------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the tenant's job leaves RUNNING (or, with done_at_least > 0, has done that many rows). */
static int64_t wait_job(ok_ds *ds, int64_t done_at_least)
{
    for (int i = 0; i < WAIT_STEPS; i++) {
        int64_t state = query_int(ds, "SELECT state FROM rekey_jobs WHERE tenant = ?", TENANT);
        int64_t done = query_int(ds, "SELECT done FROM rekey_jobs WHERE tenant = ?", TENANT);
        if (done_at_least > 0 ? done >= done_at_least : state != OK_DS_REKEY_RUNNING)
            return state;
        sleep_ms(10);
    }
    fail_msg("the re-key job did not get there");
    return -1;
}

/* ---- Re-key ------------------------------------------------------------------------------------- */

#define REKEY_OBJECTS 12

static uint8_t *rekey_objects(ds_fixture *f, size_t *lens)
{
    uint8_t *pt = malloc(3 * F);
    pattern(pt, 3 * F, 10);
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        lens[i] = (i * 37 * 1024 + i) % (3 * F);
        assert_int_equal(put_bytes(f->ds, name, pt, lens[i], 0, NULL), OK_OK);
    }
    return pt;
}

static void expect_rekeyed(ds_fixture *f, const uint8_t *pt, const size_t *lens)
{
    int64_t gen = query_int(f->ds, "SELECT tk_generation FROM tenants WHERE name = ?", TENANT);
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        expect_content(f->ds, name, pt, lens[i]);
    }
    ok_val p[] = {OK_VTEXT(TENANT), OK_VINT(gen)};
    int64_t stale = -1, keys = -1;
    assert_int_equal(f->ds->store->vt->query(f->ds->store, "SELECT count(*) FROM objects WHERE tenant = ? AND tk_generation != ?",
                                             p, 2, take_int, &stale), OK_OK);
    assert_int_equal(stale, 0);
    assert_int_equal(f->ds->store->vt->query(f->ds->store, "SELECT count(*) FROM tenant_keys WHERE tenant = ?",
                                             p, 1, take_int, &keys), OK_OK);
    assert_int_equal(keys, 1);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(f->ds, TENANT, &info), OK_OK);
    assert_int_equal(info.tk_generation, (uint64_t)gen);
    assert_int_equal(info.rekey_state, OK_DS_REKEY_DONE);
}

static void rekey_whole(void **state, int reencrypt)
{
    ds_fixture *f = *state;
    size_t lens[REKEY_OBJECTS];
    uint8_t *pt = rekey_objects(f, lens);
    char dir[700], before[REKEY_OBJECTS][64], after[64];
    tenant_dir(f, dir, sizeof dir, NULL);
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        file_id_of(f->ds, name, before[i]);
    }
    int64_t gen0 = query_int(f->ds, "SELECT tk_generation FROM tenants WHERE name = ?", TENANT);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, reencrypt, &info), OK_OK);
    assert_int_equal(info.tk_generation, (uint64_t)gen0 + 1);
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_DONE);
    expect_rekeyed(f, pt, lens);
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        file_id_of(f->ds, name, after);
        if (reencrypt)
            assert_string_not_equal(after, before[i]);
        else
            assert_string_equal(after, before[i]);
    }
    assert_int_equal(count_files(dir), REKEY_OBJECTS); /* re-encryption removed the old files */
    assert_int_equal(ok_ds_tenant_get(f->ds, TENANT, &info), OK_OK);
    assert_int_equal(info.rekey_done, REKEY_OBJECTS);
    assert_int_equal(info.rekey_total, REKEY_OBJECTS);
    assert_int_equal(info.rekey_reencrypt, reencrypt);
    /* Another re-key may start once this one is done; new puts use the new generation. */
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, 0, &info), OK_OK);
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_DONE);
    expect_rekeyed(f, pt, lens);
    free(pt);
}

static void test_rekey_rewrap(void **state)
{
    rekey_whole(state, 0);
}

static void test_rekey_reencrypt(void **state)
{
    rekey_whole(state, 1);
}

/* A re-key interrupted after one batch resumes from its cursor after a restart; a put that began
 * before the re-key and commits after it lands on the new generation. */
static void rekey_resume(void **state, int reencrypt)
{
    ds_fixture *f = *state;
    size_t lens[REKEY_OBJECTS];
    uint8_t *pt = rekey_objects(f, lens);
    char dir[700];
    tenant_dir(f, dir, sizeof dir, NULL);
    setenv("OWNKEY_DS_REKEY_BATCH", "5", 1);
    setenv("OWNKEY_DS_REKEY_MAX_BATCHES", "0", 1);
    ds_reopen(f);

    ok_ds_put *p = NULL;
    assert_int_equal(ok_ds_put_begin(f->ds, TENANT, "o03", NULL, NULL, 0, lens[3], &p), OK_OK);
    assert_int_equal(ok_ds_put_write(p, pt, lens[3]), OK_OK);
    int64_t gen0 = query_int(f->ds, "SELECT tk_generation FROM tenants WHERE name = ?", TENANT);
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, reencrypt, NULL), OK_OK);
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, reencrypt, NULL), OK_ERR_CONFLICT);
    assert_int_equal(ok_ds_put_commit(p, NULL), OK_OK);
    assert_int_equal(query_int(f->ds, "SELECT tk_generation FROM objects WHERE name = 'o03' AND tenant = ?", TENANT),
                     gen0 + 1);

    /* One batch of five, then a "crash". */
    setenv("OWNKEY_DS_REKEY_MAX_BATCHES", "1", 1);
    ds_reopen(f);
    assert_int_equal(wait_job(f->ds, 5), OK_DS_REKEY_RUNNING);
    ok_ds_close(f->ds);
    f->ds = NULL;
    setenv("OWNKEY_DS_REKEY_MAX_BATCHES", "0", 1);
    ds_reopen(f);
    char cursor[64] = "";
    ok_val t[] = {OK_VTEXT(TENANT)};
    assert_int_equal(f->ds->store->vt->query(f->ds->store, "SELECT cursor FROM rekey_jobs WHERE tenant = ?", t, 1,
                                             take_text, cursor), OK_OK);
    assert_string_equal(cursor, "o04");
    assert_int_equal(query_int(f->ds, "SELECT done FROM rekey_jobs WHERE tenant = ?", TENANT), 5);
    assert_int_equal(query_int(f->ds, "SELECT count(*) FROM objects WHERE tenant = ? AND tk_generation = "
                                      "(SELECT tk_generation FROM tenants WHERE name = 't1')", TENANT), 5);
    /* Mid-way, every object reads (old and new generations both held). */
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        expect_content(f->ds, name, pt, lens[i]);
    }
    assert_int_equal(count_files(dir), REKEY_OBJECTS);

    /* Restarted without limits: the job finishes from the cursor. */
    unsetenv("OWNKEY_DS_REKEY_MAX_BATCHES");
    ds_reopen(f);
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_DONE);
    expect_rekeyed(f, pt, lens);
    assert_int_equal(query_int(f->ds, "SELECT done FROM rekey_jobs WHERE tenant = ?", TENANT), REKEY_OBJECTS);
    assert_int_equal(count_files(dir), REKEY_OBJECTS);
    free(pt);
}

static void test_rekey_resume_rewrap(void **state)
{
    rekey_resume(state, 0);
}

static void test_rekey_resume_reencrypt(void **state)
{
    rekey_resume(state, 1);
}

/* While the tenant's keys cannot be had (here: the vault sealed), the job waits without progress and
 * without failing; it finishes once they can. */
static void test_rekey_waits_while_sealed(void **state)
{
    ds_fixture *f = *state;
    size_t lens[REKEY_OBJECTS];
    uint8_t *pt = rekey_objects(f, lens);
    setenv("OWNKEY_DS_REKEY_MAX_BATCHES", "0", 1);
    ds_reopen(f);
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, 0, NULL), OK_OK);
    assert_int_equal(ok_vault_seal(f->v), OK_OK);
    unsetenv("OWNKEY_DS_REKEY_MAX_BATCHES");
    ds_reopen(f);
    ok_ds_get *g = NULL;
    ok_err rc = ok_ds_get_open(f->ds, TENANT, "o01", NULL, &g);
    assert_true(rc == OK_ERR_SEALED || rc == OK_ERR_LOCKED);
    sleep_ms(600); /* the worker's period is 250 ms: it has tried; whether it did is not asserted */
    assert_int_equal(query_int(f->ds, "SELECT state FROM rekey_jobs WHERE tenant = ?", TENANT), OK_DS_REKEY_RUNNING);
    assert_int_equal(query_int(f->ds, "SELECT done FROM rekey_jobs WHERE tenant = ?", TENANT), 0);
    assert_int_equal(ok_vault_unseal_auto(f->v), OK_OK);
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_DONE);
    expect_rekeyed(f, pt, lens);
    free(pt);
}

/* Puts racing a re-encrypting re-key (one object per batch): whatever the interleaving, every object
 * reads as its last put, every row ends on the new generation, and no file is left over or missing. */
static void test_rekey_races_puts(void **state)
{
    ds_fixture *f = *state;
    size_t lens[REKEY_OBJECTS];
    uint8_t *pt = rekey_objects(f, lens);
    char dir[700];
    tenant_dir(f, dir, sizeof dir, NULL);
    setenv("OWNKEY_DS_REKEY_BATCH", "1", 1);
    ds_reopen(f);
    uint8_t *v2 = malloc(2 * F);
    pattern(v2, 2 * F, 11);
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, 1, NULL), OK_OK);
    size_t rounds = 0;
    while (query_int(f->ds, "SELECT state FROM rekey_jobs WHERE tenant = ?", TENANT) == OK_DS_REKEY_RUNNING &&
           rounds < 200) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", rounds % REKEY_OBJECTS);
        lens[rounds % REKEY_OBJECTS] = (rounds * 4099) % (2 * F);
        assert_int_equal(put_bytes(f->ds, name, v2, lens[rounds % REKEY_OBJECTS], 0, NULL), OK_OK);
        rounds++;
    }
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_DONE);
    int64_t gen = query_int(f->ds, "SELECT tk_generation FROM tenants WHERE name = ?", TENANT);
    for (size_t i = 0; i < REKEY_OBJECTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%02zu", i);
        expect_content(f->ds, name, i < rounds ? v2 : pt, lens[i]);
    }
    assert_int_equal(query_int(f->ds, "SELECT count(*) FROM objects WHERE tenant = ? AND tk_generation != "
                                      "(SELECT tk_generation FROM tenants WHERE name = 't1')", TENANT), 0);
    assert_true(gen > 1);
    assert_int_equal(count_files(dir), REKEY_OBJECTS);
    free(v2);
    free(pt);
}

/* A row whose DEK does not unwrap fails the job (with the reason), and nothing older is dropped. */
static void test_rekey_fails_on_bad_row(void **state)
{
    ds_fixture *f = *state;
    size_t lens[REKEY_OBJECTS];
    uint8_t *pt = rekey_objects(f, lens);
    uint8_t junk[40] = {1, 2, 3};
    ok_val p[] = {OK_VBLOB(junk, sizeof junk), OK_VTEXT(TENANT)};
    assert_int_equal(f->ds->store->vt->exec(f->ds->store, "UPDATE objects SET dek_wrap = ? WHERE tenant = ? AND name = 'o05'",
                                            p, 2, NULL), OK_OK);
    assert_int_equal(ok_ds_rekey_start(f->ds, TENANT, 0, NULL), OK_OK);
    assert_int_equal(wait_job(f->ds, 0), OK_DS_REKEY_FAILED);
    char error[64] = "";
    ok_val t[] = {OK_VTEXT(TENANT)};
    assert_int_equal(f->ds->store->vt->query(f->ds->store, "SELECT error FROM rekey_jobs WHERE tenant = ?", t, 1,
                                             take_text, error), OK_OK);
    assert_true(strlen(error) > 0);
    assert_int_equal(query_int(f->ds, "SELECT count(*) FROM tenant_keys WHERE tenant = ?", TENANT), 2);
    expect_content(f->ds, "o01", pt, lens[1]);
    expect_content(f->ds, "o11", pt, lens[11]);
    ok_ds_tenant_info info;
    assert_int_equal(ok_ds_tenant_get(f->ds, TENANT, &info), OK_OK);
    assert_int_equal(info.rekey_state, OK_DS_REKEY_FAILED);
    free(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rekey_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_reencrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_resume_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_resume_reencrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_waits_while_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_races_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_fails_on_bad_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
