/* The vault object's life: init (a new data directory: DIR 0700, DIR/vault.db 0600, the meta table, every
 * module's tables, the sealed master key, the first admin identity, the audit log), open (meta, schema
 * upgrades, audit, dev auto-unseal), close, status, and the vault-wide settings (purge protection,
 * retention) and random bytes. Owns no key material (seal.c), keys (keys.c and friends), identities
 * (access.c) or audit lines (audit.c). Holds the data directory's lock while open. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vault/meta.h"
#include "vault/modules.h"
#include "vault/seal.h"

#define DB_FILE "vault.db"
#define RETENTION_DEFAULT 90
#define RETENTION_MIN 7
#define RETENTION_MAX 90

int64_t ok_vault_now(void)
{
    return (int64_t)time(NULL);
}

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* ---- the object ------------------------------------------------------------------------------------ */

static ok_err vault_new(const char *dir, ok_vault **out)
{
    ok_vault *v = calloc(1, sizeof *v);

    *out = NULL;
    if (v == NULL)
        return ok_fail(OK_ERR_NOMEM, "vault");
    v->dir = strdup(dir);
    v->sealed = 1;
    v->audit_fd = -1;
    v->dir_lock_fd = -1;
    if (v->dir == NULL || pthread_rwlock_init(&v->seal_lock, NULL) != 0) {
        free(v->dir);
        free(v);
        return ok_fail(OK_ERR_NOMEM, "vault");
    }
    if (pthread_mutex_init(&v->audit_lock, NULL) != 0 || ok_seal_state_new(v) != OK_OK ||
        ok_key_cache_new(v) != OK_OK) {
        ok_seal_state_free(v);
        pthread_rwlock_destroy(&v->seal_lock);
        free(v->dir);
        free(v);
        return ok_fail(OK_ERR_NOMEM, "vault");
    }
    *out = v;
    return OK_OK;
}

void ok_vault_close(ok_vault *v)
{
    if (v == NULL)
        return;
    if (v->audit_fd >= 0)
        ok_audit_close(v);
    ok_seal_state_free(v); /* wipes the master key and everything derived from it */
    ok_key_cache_free(v);
    if (v->hsm != NULL)
        v->hsm->vt->close(v->hsm);
    if (v->store != NULL)
        v->store->vt->close(v->store);
    pthread_mutex_destroy(&v->audit_lock);
    pthread_rwlock_destroy(&v->seal_lock);
    if (v->dir_lock_fd >= 0)
        close(v->dir_lock_fd);
    free(v->dir);
    free(v);
}

/* One process at a time per data directory: an exclusive flock on the directory itself, held while the
 * vault is open. Two processes appending to one audit log would break its chain, and the store's read
 * cache (store_cache.c) relies on this process being the database's only writer. */
static ok_err lock_dir(ok_vault *v)
{
    int fd = open(v->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ok_fail(OK_ERR_IO, "cannot open %s: %s", v->dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return ok_fail(OK_ERR_CONFLICT, "the vault in %s is in use by another process", v->dir);
        return ok_fail(OK_ERR_IO, "cannot lock %s: %s", v->dir, strerror(e));
    }
    v->dir_lock_fd = fd;
    return OK_OK;
}

/* The vault's store: SQLite, with the read cache for the reads on every request's path. */
static ok_err open_store(const char *db, ok_store **out)
{
    ok_store *inner = NULL;
    OK_GUARD(ok_store_open_sqlite(db, &inner));
    return ok_store_cache_wrap(inner, out);
}

/* Every module's tables, in one transaction; each uses CREATE TABLE IF NOT EXISTS. */
static ok_err create_schema(ok_store *s)
{
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_meta_schema(s), fail);
    OK_GUARD_GOTO(rc, ok_keys_schema(s), fail);
    OK_GUARD_GOTO(rc, ok_access_schema(s), fail);
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

/* ---- init ---------------------------------------------------------------------------------------- */

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* Creates DIR with mode 0700, or takes an existing empty directory (made 0700). */
static ok_err make_dir(const char *dir, int *created)
{
    struct stat sb;

    *created = 0;
    if (mkdir(dir, 0700) == 0) {
        *created = 1;
        return OK_OK;
    }
    if (errno != EEXIST)
        return ok_fail(OK_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ok_fail(OK_ERR_CONFLICT, "%s exists and is not a directory", dir);
    if (!dir_is_empty(dir))
        return ok_fail(OK_ERR_CONFLICT, "%s is not empty; a vault needs a new directory", dir);
    if (chmod(dir, 0700) != 0)
        return ok_fail(OK_ERR_IO, "cannot chmod %s: %s", dir, strerror(errno));
    return OK_OK;
}

/* vault.db is created 0600 before SQLite opens it (SQLite gives the -wal and -shm files the same mode). */
static ok_err create_db_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0)
        return ok_fail(errno == EEXIST ? OK_ERR_CONFLICT : OK_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    close(fd);
    return OK_OK;
}

/* Removes what a failed init made. */
static void remove_vault_files(const char *dir, int created_dir)
{
    static const char *const files[] = {"vault.db", "vault.db-wal", "vault.db-shm", "master.key", "audit.log"};

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = join(dir, files[i]);
        if (p != NULL)
            (void)unlink(p);
        free(p);
    }
    if (created_dir)
        (void)rmdir(dir);
}

static ok_err check_init_params(const ok_vault_init_params *p, unsigned *retention)
{
    *retention = p->retention_days == 0 ? RETENTION_DEFAULT : p->retention_days;
    if (*retention < RETENTION_MIN || *retention > RETENTION_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "retention must be %d..%d days", RETENTION_MIN, RETENTION_MAX);
    if (p->kind != OK_SEAL_DEV && p->kind != OK_SEAL_SHAMIR && p->kind != OK_SEAL_PASSPHRASE &&
        p->kind != OK_SEAL_PKCS11)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown seal kind %d", (int)p->kind);
    return OK_OK;
}

/* The new vault's meta rows and sealed master key, in one transaction. */
static ok_err write_new_vault(ok_vault *v, const ok_vault_init_params *p, unsigned retention,
                              ok_vault_init_result *out)
{
    ok_store *s = v->store;
    ok_err rc;

    OK_GUARD(create_schema(s));
    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, ok_meta_put_int(s, OK_META_SCHEMA_VERSION, OK_VAULT_SCHEMA_VERSION), fail);
    OK_GUARD_GOTO(rc, ok_meta_put_int(s, OK_META_RETENTION_DAYS, retention), fail);
    OK_GUARD_GOTO(rc, ok_meta_put_int(s, OK_META_PURGE_PROTECTION, p->purge_protection ? 1 : 0), fail);
    OK_GUARD_GOTO(rc, ok_seal_create(v, p, out), fail);
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

ok_err ok_vault_init(const char *dir, const ok_vault_init_params *p, ok_vault_init_result *out)
{
    ok_vault *v = NULL;
    char *db = NULL;
    unsigned retention = 0;
    int created_dir = 0, files_made = 0;
    ok_err rc;

    if (dir == NULL || *dir == '\0' || p == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_init: NULL argument");
    memset(out, 0, sizeof *out);
    OK_GUARD(check_init_params(p, &retention));
    OK_GUARD(make_dir(dir, &created_dir));
    db = join(dir, DB_FILE);
    if (db == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "path");
        goto fail;
    }
    OK_GUARD_GOTO(rc, create_db_file(db), fail);
    files_made = 1;
    OK_GUARD_GOTO(rc, vault_new(dir, &v), fail);
    OK_GUARD_GOTO(rc, lock_dir(v), fail);
    OK_GUARD_GOTO(rc, open_store(db, &v->store), fail);
    OK_GUARD_GOTO(rc, write_new_vault(v, p, retention, out), fail); /* leaves v unsealed */
    OK_GUARD_GOTO(rc, ok_audit_open(v), fail);
    OK_GUARD_GOTO(rc, ok_access_bootstrap_admin(v, &out->admin_token), fail);
    ok_vault_close(v);
    free(db);
    return OK_OK;
fail:
    ok_vault_close(v);
    ok_vault_init_result_clear(out);
    if (files_made || created_dir)
        remove_vault_files(dir, created_dir);
    free(db);
    return rc;
}

void ok_vault_init_result_clear(ok_vault_init_result *r)
{
    if (r == NULL)
        return;
    if (r->admin_token != NULL)
        ok_zeroize(r->admin_token, strlen(r->admin_token));
    free(r->admin_token);
    for (size_t i = 0; r->shares != NULL && i < r->share_count; i++) {
        if (r->shares[i] != NULL)
            ok_zeroize(r->shares[i], strlen(r->shares[i]));
        free(r->shares[i]);
    }
    free(r->shares);
    memset(r, 0, sizeof *r);
}

/* ---- open ---------------------------------------------------------------------------------------- */

static ok_err check_schema_version(ok_store *s)
{
    int64_t version = 0;
    ok_err rc = ok_meta_get_int(s, OK_META_SCHEMA_VERSION, &version);

    if (rc != OK_OK) /* no meta table, no row, a row of the wrong type */
        return ok_fail(OK_ERR_FORMAT, "not an ownkey vault (no schema version)");
    if (version < 1 || version > OK_VAULT_SCHEMA_VERSION)
        return ok_fail(OK_ERR_UNSUPPORTED, "vault schema version %lld; this build knows up to %d", (long long)version,
                       OK_VAULT_SCHEMA_VERSION);
    return OK_OK;
}

ok_err ok_vault_open(const char *dir, ok_vault **out)
{
    ok_vault *v = NULL;
    struct stat sb;
    char *db;
    ok_err rc;

    if (dir == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_open: NULL argument");
    *out = NULL;
    db = join(dir, DB_FILE);
    if (db == NULL)
        return ok_fail(OK_ERR_NOMEM, "path");
    if (stat(db, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = ok_fail(OK_ERR_NOT_FOUND, "no vault in %s (run `ownkeyd init` first)", dir);
        goto fail;
    }
    OK_GUARD_GOTO(rc, vault_new(dir, &v), fail);
    OK_GUARD_GOTO(rc, lock_dir(v), fail);
    OK_GUARD_GOTO(rc, open_store(db, &v->store), fail);
    OK_GUARD_GOTO(rc, check_schema_version(v->store), fail);
    OK_GUARD_GOTO(rc, create_schema(v->store), fail);
    OK_GUARD_GOTO(rc, ok_seal_load(v), fail); /* a dev vault unseals here */
    OK_GUARD_GOTO(rc, ok_audit_open(v), fail);
    free(db);
    *out = v;
    return OK_OK;
fail:
    ok_vault_close(v);
    free(db);
    return rc;
}

/* ---- status and settings ------------------------------------------------------------------------------ */

static ok_err count_row(void *ctx, const ok_val *cols, size_t n)
{
    uint64_t *count = ctx;

    if (n == 1 && cols[0].type == OK_VAL_INT && cols[0].i >= 0)
        *count = (uint64_t)cols[0].i;
    return OK_OK;
}

void ok_vault_get_status(ok_vault *v, ok_vault_status *st)
{
    ok_seal_state *ss;
    int64_t value = 0;

    if (st == NULL)
        return;
    memset(st, 0, sizeof *st);
    if (v == NULL)
        return;
    ss = v->module_state;
    pthread_rwlock_rdlock(&v->seal_lock);
    st->sealed = v->sealed;
    pthread_rwlock_unlock(&v->seal_lock);
    st->kind = v->kind;
    pthread_mutex_lock(&ss->lock);
    st->threshold = v->kind == OK_SEAL_SHAMIR ? ss->threshold : 0;
    st->shares_submitted = ss->held_count;
    if (v->kind == OK_SEAL_PKCS11) {
        if (st->sealed)
            snprintf(st->seal_error, sizeof st->seal_error, "%s", ss->p11_error);
        snprintf(st->hsm_key, sizeof st->hsm_key, "%s", ss->p11_key_id ? ss->p11_key_id : "");
    }
    pthread_mutex_unlock(&ss->lock);
    if (ok_meta_get_int(v->store, OK_META_PURGE_PROTECTION, &value) == OK_OK)
        st->purge_protection = value != 0;
    if (ok_meta_get_int(v->store, OK_META_RETENTION_DAYS, &value) == OK_OK && value > 0)
        st->retention_days = (unsigned)value;
    (void)v->store->vt->query(v->store, "SELECT count(*) FROM keys WHERE deleted = 0", NULL, 0, count_row,
                              &st->keys);
}

ok_err ok_vault_enable_purge_protection(ok_vault *v)
{
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_enable_purge_protection: NULL vault");
    /* one statement: the setting only ever goes from 0 to 1 */
    return ok_meta_put_int(v->store, OK_META_PURGE_PROTECTION, 1);
}

ok_err ok_vault_random(ok_vault *v, uint8_t *out, size_t len)
{
    ok_err rc;

    if (v == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_random: NULL argument");
    if (len < 1 || len > 128)
        return ok_fail(OK_ERR_INVALID_ARG, "random bytes: count must be 1..128, not %zu", len);
    OK_GUARD(ok_seal_read_begin(v));
    rc = ok_random(out, len);
    ok_seal_read_end(v);
    return rc;
}
