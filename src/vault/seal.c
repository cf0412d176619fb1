/* Sealing: the vault's master key and how it is protected at rest. A new vault gets 32 random bytes in
 * secure memory, a check value HMAC(HKDF(master, "ownkey check"), "check") in meta, and one protection,
 * chosen by a switch on the seal kind:
 *   dev         DIR/master.key, mode 0600, the raw 32 bytes; the vault unseals itself on open
 *   shamir      K-of-N shares printed once (seal_shamir.c); only the check value is stored
 *   passphrase  scrypt(passphrase, salt; N, r, p from meta) wraps the master key with AES-256-KWP
 *   pkcs11      the master key wrapped by a key in a PKCS#11 token (seal_pkcs11.c); the vault unseals
 *               itself while the token is present
 * While unsealed, the working keys derived from the master key (token, audit, key material, backup) sit
 * in secure memory; sealing wipes them all under the exclusive seal lock. Owns no key material at rest
 * (material.c, key_cache.c: emptied here on seal) and no share arithmetic (seal_shamir.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vault/meta.h"
#include "vault/modules.h"
#include "vault/seal.h"

#define SCRYPT_N (1 << 15)
#define SCRYPT_R 8
#define SCRYPT_P 1
#define PASSPHRASE_MIN 8
#define MASTER_FILE "master.key"

static ok_seal_state *state(ok_vault *v)
{
    return v->module_state;
}

ok_err ok_seal_state_new(ok_vault *v)
{
    ok_seal_state *st = calloc(1, sizeof *st);

    if (st == NULL || pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return ok_fail(OK_ERR_NOMEM, "seal state");
    }
    v->module_state = st;
    return OK_OK;
}

/* ---- the unsealed state ---------------------------------------------------------------------------- */

/* Frees every working key; the caller holds the seal lock exclusively (or is the only user). */
static void wipe_keys(ok_vault *v)
{
    uint8_t **slots[] = {&v->master_key, &v->token_key, &v->audit_key, &v->material_key, &v->backup_key};

    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        ok_secure_free(*slots[i], OK_MASTER_KEY_LEN);
        *slots[i] = NULL;
    }
    v->sealed = 1;
}

void ok_seal_state_free(ok_vault *v)
{
    ok_seal_state *st = state(v);

    wipe_keys(v);
    if (st == NULL)
        return;
    ok_shamir_drop(st);
    ok_seal_pkcs11_free_fields(st);
    pthread_mutex_destroy(&st->lock);
    ok_zeroize(st, sizeof *st);
    free(st);
    v->module_state = NULL;
}

static ok_err derive(const uint8_t *master, const char *label, uint8_t **out)
{
    ok_err rc;

    *out = ok_secure_alloc(OK_MASTER_KEY_LEN);
    if (*out == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    rc = ok_hkdf_sha256(NULL, 0, master, OK_MASTER_KEY_LEN, (const uint8_t *)label, strlen(label), *out,
                        OK_MASTER_KEY_LEN);
    if (rc != OK_OK) {
        ok_secure_free(*out, OK_MASTER_KEY_LEN);
        *out = NULL;
    }
    return rc;
}

ok_err ok_seal_check_value(const uint8_t *master, uint8_t out[32])
{
    uint8_t *k = NULL;
    ok_err rc;

    OK_GUARD(derive(master, OK_LABEL_CHECK, &k));
    rc = ok_hmac_sha256(k, OK_MASTER_KEY_LEN, (const uint8_t *)"check", 5, out);
    ok_secure_free(k, OK_MASTER_KEY_LEN);
    return rc;
}

ok_err ok_seal_install(ok_vault *v, uint8_t *master)
{
    static const char *const labels[] = {OK_LABEL_TOKEN, OK_LABEL_AUDIT, OK_LABEL_MATERIAL, OK_LABEL_BACKUP};
    uint8_t *derived[4] = {NULL, NULL, NULL, NULL}, check[32];
    ok_err rc;

    OK_GUARD_GOTO(rc, ok_seal_check_value(master, check), fail);
    if (!ok_ct_equal(check, state(v)->check, sizeof check)) {
        rc = ok_fail(OK_ERR_AUTH, "the key material does not open this vault");
        goto fail;
    }
    for (size_t i = 0; i < 4; i++)
        OK_GUARD_GOTO(rc, derive(master, labels[i], &derived[i]), fail);

    pthread_rwlock_wrlock(&v->seal_lock);
    if (v->sealed) {
        v->master_key = master;
        v->token_key = derived[0];
        v->audit_key = derived[1];
        v->material_key = derived[2];
        v->backup_key = derived[3];
        v->sealed = 0;
        v->unseal_count++;
        master = NULL;
        memset(derived, 0, sizeof derived);
    }
    pthread_rwlock_unlock(&v->seal_lock);
    rc = OK_OK; /* a concurrent unseal that won is fine too */
fail:
    ok_secure_free(master, OK_MASTER_KEY_LEN);
    for (size_t i = 0; i < 4; i++)
        ok_secure_free(derived[i], OK_MASTER_KEY_LEN);
    return rc;
}

ok_err ok_seal_read_begin(ok_vault *v)
{
    pthread_rwlock_rdlock(&v->seal_lock);
    if (v->sealed) {
        pthread_rwlock_unlock(&v->seal_lock);
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    }
    return OK_OK;
}

void ok_seal_read_end(ok_vault *v)
{
    pthread_rwlock_unlock(&v->seal_lock);
}

ok_err ok_vault_seal(ok_vault *v)
{
    ok_seal_state *st;

    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_seal: NULL vault");
    st = state(v);
    pthread_rwlock_wrlock(&v->seal_lock); /* waits for every operation in flight */
    wipe_keys(v);
    ok_key_cache_clear(v);
    pthread_rwlock_unlock(&v->seal_lock);
    pthread_mutex_lock(&st->lock);
    ok_shamir_drop(st);
    pthread_mutex_unlock(&st->lock);
    return OK_OK;
}

/* ---- dev: DIR/master.key --------------------------------------------------------------------------- */

static char *master_path(const ok_vault *v)
{
    size_t n = strlen(v->dir) + sizeof "/" MASTER_FILE;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", v->dir, MASTER_FILE);
    return p;
}

static ok_err write_master_file(ok_vault *v, const uint8_t *master)
{
    char *path = master_path(v);
    ok_err rc = OK_OK;
    int fd;

    if (path == NULL)
        return ok_fail(OK_ERR_NOMEM, "master key path");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = ok_fail(OK_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    } else {
        if (write(fd, master, OK_MASTER_KEY_LEN) != OK_MASTER_KEY_LEN || fsync(fd) != 0)
            rc = ok_fail(OK_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
    }
    free(path);
    return rc;
}

/* Reads DIR/master.key into new secure memory. The file must be a regular file of 32 bytes that only its
 * owner can read. */
static ok_err read_master_file(ok_vault *v, uint8_t **out)
{
    char *path = master_path(v);
    struct stat sb;
    ok_err rc = OK_OK;
    int fd = -1;

    *out = NULL;
    if (path == NULL)
        return ok_fail(OK_ERR_NOMEM, "master key path");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = ok_fail(OK_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size != OK_MASTER_KEY_LEN) {
        rc = ok_fail(OK_ERR_KEY, "%s is not a 32-byte master key file", path);
        goto done;
    }
    if ((sb.st_mode & 077) != 0) {
        rc = ok_fail(OK_ERR_KEY, "%s is readable by others; it must have mode 0600", path);
        goto done;
    }
    *out = ok_secure_alloc(OK_MASTER_KEY_LEN);
    if (*out == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "secure memory");
    } else if (read(fd, *out, OK_MASTER_KEY_LEN) != OK_MASTER_KEY_LEN) {
        rc = ok_fail(OK_ERR_IO, "cannot read %s", path);
        ok_secure_free(*out, OK_MASTER_KEY_LEN);
        *out = NULL;
    }
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static ok_err unseal_dev(ok_vault *v)
{
    uint8_t *master = NULL;

    OK_GUARD(read_master_file(v, &master));
    return ok_seal_install(v, master);
}

/* ---- passphrase ------------------------------------------------------------------------------------- */

static ok_err passphrase_kek(const ok_seal_state *st, const uint8_t *pass, size_t len, uint8_t **kek)
{
    ok_err rc;

    *kek = ok_secure_alloc(OK_AES256_KEY_LEN);
    if (*kek == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    rc = ok_scrypt(pass, len, st->salt, sizeof st->salt, (uint64_t)st->scrypt_n, (uint32_t)st->scrypt_r,
                   (uint32_t)st->scrypt_p, *kek, OK_AES256_KEY_LEN);
    if (rc != OK_OK) {
        ok_secure_free(*kek, OK_AES256_KEY_LEN);
        *kek = NULL;
    }
    return rc;
}

static ok_err create_passphrase(ok_vault *v, const ok_vault_init_params *p, const uint8_t *master)
{
    ok_seal_state *st = state(v);
    uint8_t *kek = NULL;
    size_t n = 0;
    ok_err rc;

    st->scrypt_n = SCRYPT_N;
    st->scrypt_r = SCRYPT_R;
    st->scrypt_p = SCRYPT_P;
    OK_GUARD(ok_random(st->salt, sizeof st->salt));
    OK_GUARD(passphrase_kek(st, p->passphrase, p->passphrase_len, &kek));
    rc = ok_aes_kwp_wrap(kek, OK_AES256_KEY_LEN, master, OK_MASTER_KEY_LEN, st->wrapped, &n);
    ok_secure_free(kek, OK_AES256_KEY_LEN);
    OK_GUARD(rc);
    if (n != sizeof st->wrapped)
        return ok_fail(OK_ERR_CRYPTO, "wrapped master key of %zu bytes", n);
    OK_GUARD(ok_meta_put_int(v->store, OK_META_SCRYPT_N, st->scrypt_n));
    OK_GUARD(ok_meta_put_int(v->store, OK_META_SCRYPT_R, st->scrypt_r));
    OK_GUARD(ok_meta_put_int(v->store, OK_META_SCRYPT_P, st->scrypt_p));
    OK_GUARD(ok_meta_put_blob(v->store, OK_META_SCRYPT_SALT, st->salt, sizeof st->salt));
    return ok_meta_put_blob(v->store, OK_META_WRAPPED_MASTER, st->wrapped, sizeof st->wrapped);
}

ok_err ok_vault_unseal_passphrase(ok_vault *v, const uint8_t *passphrase, size_t len)
{
    ok_seal_state *st;
    uint8_t *kek = NULL, *scratch = NULL, *master = NULL;
    size_t n = 0;
    ok_err rc;

    if (v == NULL || (passphrase == NULL && len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_unseal_passphrase: NULL argument");
    if (v->kind != OK_SEAL_PASSPHRASE)
        return ok_fail(OK_ERR_INVALID_ARG, "this vault is not sealed with a passphrase");
    st = state(v);
    /* KWP unwrap may write as many bytes as it reads: unwrap into scratch of the wrapped size */
    scratch = ok_secure_alloc(sizeof st->wrapped);
    master = ok_secure_alloc(OK_MASTER_KEY_LEN);
    if (scratch == NULL || master == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "secure memory");
        goto fail;
    }
    OK_GUARD_GOTO(rc, passphrase_kek(st, passphrase, len, &kek), fail);
    rc = ok_aes_kwp_unwrap(kek, OK_AES256_KEY_LEN, st->wrapped, sizeof st->wrapped, scratch, &n);
    ok_secure_free(kek, OK_AES256_KEY_LEN);
    if (rc != OK_OK || n != OK_MASTER_KEY_LEN) {
        rc = ok_fail(OK_ERR_AUTH, "wrong passphrase");
        goto fail;
    }
    memcpy(master, scratch, OK_MASTER_KEY_LEN);
    ok_secure_free(scratch, sizeof st->wrapped);
    rc = ok_seal_install(v, master); /* frees master */
    if (rc == OK_ERR_AUTH)
        return ok_fail(OK_ERR_AUTH, "wrong passphrase");
    return rc;
fail:
    ok_secure_free(scratch, sizeof st->wrapped);
    ok_secure_free(master, OK_MASTER_KEY_LEN);
    return rc;
}

/* ---- creating and loading --------------------------------------------------------------------------- */

static ok_err check_params(const ok_vault_init_params *p)
{
    switch (p->kind) {
    case OK_SEAL_DEV:
        return OK_OK;
    case OK_SEAL_SHAMIR:
        if (p->threshold < 2 || p->threshold > p->shares || p->shares > OK_SHAMIR_MAX_SHARES)
            return ok_fail(OK_ERR_INVALID_ARG, "shares must satisfy 2 <= threshold (%u) <= shares (%u) <= %d",
                           p->threshold, p->shares, OK_SHAMIR_MAX_SHARES);
        return OK_OK;
    case OK_SEAL_PASSPHRASE:
        if (p->passphrase == NULL || p->passphrase_len < PASSPHRASE_MIN)
            return ok_fail(OK_ERR_INVALID_ARG, "the passphrase must have at least %d bytes", PASSPHRASE_MIN);
        return OK_OK;
    case OK_SEAL_PKCS11:
        return ok_seal_pkcs11_check_uri(p->pkcs11_uri);
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown seal kind %d", (int)p->kind);
}

ok_err ok_seal_create(ok_vault *v, const ok_vault_init_params *p, ok_vault_init_result *out)
{
    ok_seal_state *st = state(v);
    uint8_t *master;
    ok_err rc;

    OK_GUARD(check_params(p));
    master = ok_secure_alloc(OK_MASTER_KEY_LEN);
    if (master == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    OK_GUARD_GOTO(rc, ok_random(master, OK_MASTER_KEY_LEN), fail);
    OK_GUARD_GOTO(rc, ok_seal_check_value(master, st->check), fail);
    OK_GUARD_GOTO(rc, ok_meta_put_int(v->store, OK_META_SEAL_KIND, p->kind), fail);
    OK_GUARD_GOTO(rc, ok_meta_put_blob(v->store, OK_META_CHECK, st->check, sizeof st->check), fail);
    v->kind = p->kind;
    switch (p->kind) {
    case OK_SEAL_DEV:
        rc = write_master_file(v, master);
        break;
    case OK_SEAL_SHAMIR:
        st->shares = p->shares;
        st->threshold = p->threshold;
        rc = ok_meta_put_int(v->store, OK_META_SHAMIR_SHARES, p->shares);
        if (rc == OK_OK)
            rc = ok_meta_put_int(v->store, OK_META_SHAMIR_THRESHOLD, p->threshold);
        if (rc == OK_OK)
            rc = ok_shamir_split(master, p->shares, p->threshold, &out->shares);
        if (rc == OK_OK)
            out->share_count = p->shares;
        break;
    case OK_SEAL_PASSPHRASE:
        rc = create_passphrase(v, p, master);
        break;
    case OK_SEAL_PKCS11:
        rc = ok_seal_pkcs11_create(v, p->pkcs11_uri, master);
        break;
    }
    if (rc != OK_OK)
        goto fail;
    return ok_seal_install(v, master); /* frees master */
fail:
    ok_secure_free(master, OK_MASTER_KEY_LEN);
    return rc;
}

static ok_err get_small(ok_store *s, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    OK_GUARD(ok_meta_get_int(s, name, out));
    if (*out < lo || *out > hi)
        return ok_fail(OK_ERR_FORMAT, "vault meta \"%s\" = %lld is out of range", name, (long long)*out);
    return OK_OK;
}

ok_err ok_seal_load(ok_vault *v)
{
    ok_seal_state *st = state(v);
    int64_t kind, shares, threshold;

    OK_GUARD(get_small(v->store, OK_META_SEAL_KIND, OK_SEAL_DEV, OK_SEAL_PKCS11, &kind));
    OK_GUARD(ok_meta_get_blob(v->store, OK_META_CHECK, st->check, sizeof st->check));
    v->kind = (ok_seal_kind)kind;
    switch (v->kind) {
    case OK_SEAL_DEV:
        return unseal_dev(v);
    case OK_SEAL_SHAMIR:
        OK_GUARD(get_small(v->store, OK_META_SHAMIR_SHARES, 2, OK_SHAMIR_MAX_SHARES, &shares));
        OK_GUARD(get_small(v->store, OK_META_SHAMIR_THRESHOLD, 2, shares, &threshold));
        st->shares = (unsigned)shares;
        st->threshold = (unsigned)threshold;
        return OK_OK;
    case OK_SEAL_PASSPHRASE:
        /* ok_scrypt bounds the costs, so that a tampered meta row cannot exhaust memory */
        OK_GUARD(get_small(v->store, OK_META_SCRYPT_N, 2, INT32_MAX, &st->scrypt_n));
        OK_GUARD(get_small(v->store, OK_META_SCRYPT_R, 1, 1024, &st->scrypt_r));
        OK_GUARD(get_small(v->store, OK_META_SCRYPT_P, 1, 1024, &st->scrypt_p));
        OK_GUARD(ok_meta_get_blob(v->store, OK_META_SCRYPT_SALT, st->salt, sizeof st->salt));
        return ok_meta_get_blob(v->store, OK_META_WRAPPED_MASTER, st->wrapped, sizeof st->wrapped);
    case OK_SEAL_PKCS11:
        OK_GUARD(ok_seal_pkcs11_load(v));
        /* Token absent or PIN refused: the vault opens sealed; status tells why, and a retry
         * (ok_vault_unseal_auto) works once the token is back. */
        if (ok_seal_pkcs11_unseal(v) != OK_OK)
            ok_err_clear();
        return OK_OK;
    }
    return ok_fail(OK_ERR_FORMAT, "unknown seal kind");
}

ok_err ok_vault_unseal_auto(ok_vault *v)
{
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_unseal_auto: NULL vault");
    switch (v->kind) {
    case OK_SEAL_DEV:
        return unseal_dev(v);
    case OK_SEAL_PKCS11:
        return ok_vault_seal_epoch(v) != 0 ? OK_OK : ok_seal_pkcs11_unseal(v);
    case OK_SEAL_SHAMIR:
    case OK_SEAL_PASSPHRASE:
        break;
    }
    return ok_fail(OK_ERR_INVALID_ARG, "this vault needs its operators to unseal it");
}
