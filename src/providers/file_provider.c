/* The `file` key provider: a local JWK key file. An oct key (256-bit) wraps data keys with A256KW
 * (RFC 3394); an RSA key wraps with RSA-OAEP-256 and unwraps only when it holds the private half. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ownkey/crypto.h"
#include "ownkey/provider.h"

typedef struct {
    ok_provider base;
    char *kid;
    uint8_t *k; /* oct: secure memory, 32 bytes */
    ok_pkey *pkey; /* RSA */
} file_provider;

#define ALG_A256KW "A256KW"
#define ALG_RSA_OAEP_256 "RSA-OAEP-256"
#define MAX_WRAPPED_KEY 64

static ok_err file_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    file_provider *fp = (file_provider *)p;
    if (fp->k) {
        if (key_len > MAX_WRAPPED_KEY)
            return ok_fail(OK_ERR_INVALID_ARG, "key of %zu bytes too long to wrap", key_len);
        uint8_t ct[MAX_WRAPPED_KEY + 8];
        size_t ct_len = 0;
        OK_GUARD(ok_aes_kw_wrap(fp->k, OK_AES256_KEY_LEN, key, key_len, ct, &ct_len));
        return ok_edk_set(out, OK_PROVIDER_FILE, fp->kid, "", ALG_A256KW, ct, ct_len);
    }
    uint8_t ct[1024];
    size_t ct_len = sizeof ct;
    if (ok_pkey_size(fp->pkey) > sizeof ct)
        return ok_fail(OK_ERR_KEY, "RSA key too large");
    OK_GUARD(ok_rsa_oaep_encrypt(fp->pkey, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, key, key_len, ct, &ct_len));
    return ok_edk_set(out, OK_PROVIDER_FILE, fp->kid, "", ALG_RSA_OAEP_256, ct, ct_len);
}

static int file_matches(const ok_provider *p, const ok_edk *edk)
{
    const file_provider *fp = (const file_provider *)p;
    return strcmp(edk->provider, OK_PROVIDER_FILE) == 0 && strcmp(edk->key_id, fp->kid) == 0;
}

static ok_err file_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    file_provider *fp = (file_provider *)p;
    if (!file_matches(p, edk))
        return OK_ERR_NO_RECIPIENT;
    uint8_t buf[1024];
    size_t n = 0;
    ok_err rc;
    if (fp->k) {
        if (strcmp(edk->wrap_alg, ALG_A256KW) != 0)
            return ok_fail(OK_ERR_AUTH, "wrapped key for %s uses %s, expected " ALG_A256KW, fp->kid, edk->wrap_alg);
        if (edk->ct_len > sizeof buf)
            return ok_fail(OK_ERR_AUTH, "wrapped key for %s has a bad length", fp->kid);
        rc = ok_aes_kw_unwrap(fp->k, OK_AES256_KEY_LEN, edk->ct, edk->ct_len, buf, &n);
    } else {
        if (strcmp(edk->wrap_alg, ALG_RSA_OAEP_256) != 0)
            return ok_fail(OK_ERR_AUTH, "wrapped key for %s uses %s, expected " ALG_RSA_OAEP_256, fp->kid, edk->wrap_alg);
        if (!ok_pkey_is_private(fp->pkey))
            return ok_fail(OK_ERR_KEY, "key %s is a public key: decryption needs the private key file", fp->kid);
        n = sizeof buf;
        rc = ok_pkey_size(fp->pkey) <= sizeof buf
                 ? ok_rsa_oaep_decrypt(fp->pkey, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, edk->ct, edk->ct_len, buf, &n)
                 : ok_fail(OK_ERR_KEY, "RSA key too large");
    }
    if (rc == OK_OK && n != key_len)
        rc = OK_ERR_AUTH;
    if (rc == OK_OK)
        memcpy(key, buf, key_len);
    ok_zeroize(buf, sizeof buf);
    if (rc == OK_ERR_AUTH)
        return ok_fail(OK_ERR_AUTH, "authentication failed: the wrapped data key for %s does not unwrap under this key", fp->kid);
    return rc;
}

static ok_err file_describe(const ok_provider *p, char *buf, size_t len)
{
    const file_provider *fp = (const file_provider *)p;
    if (fp->k)
        snprintf(buf, len, "file AES-256 kid=%s", fp->kid);
    else
        snprintf(buf, len, "file RSA-%u%s kid=%s", ok_pkey_bits(fp->pkey), ok_pkey_is_private(fp->pkey) ? "" : " (public)", fp->kid);
    return OK_OK;
}

static void file_destroy(ok_provider *p)
{
    file_provider *fp = (file_provider *)p;
    free(fp->kid);
    ok_secure_free(fp->k, OK_AES256_KEY_LEN);
    ok_pkey_free(fp->pkey);
    free(fp);
}

static const ok_provider_vtable FILE_VTABLE = {
    .size = sizeof(ok_provider_vtable),
    .wrap = file_wrap,
    .unwrap = file_unwrap,
    .describe = file_describe,
    .matches = file_matches,
    .destroy = file_destroy,
};

ok_err ok_file_provider_from_jwk(const ok_jwk *jwk, ok_provider **out)
{
    file_provider *fp = calloc(1, sizeof *fp);
    if (!fp)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    fp->base.vt = &FILE_VTABLE;
    ok_err rc = OK_OK;
    if (jwk->kty == OK_JWK_OCT) {
        if (jwk->k_len != OK_AES256_KEY_LEN) {
            rc = ok_fail(OK_ERR_KEY, "oct key is %zu bits; the file provider needs a 256-bit key", jwk->k_len * 8);
            goto fail;
        }
        fp->k = ok_secure_alloc(OK_AES256_KEY_LEN);
        if (!fp->k) {
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(fp->k, jwk->k, OK_AES256_KEY_LEN);
    } else if (jwk->kty == OK_JWK_RSA) {
        OK_GUARD_GOTO(rc, ok_pkey_share(jwk->pkey, &fp->pkey), fail);
    } else {
        rc = ok_fail(OK_ERR_KEY, "EC keys cannot wrap data keys; use an oct or RSA key");
        goto fail;
    }
    if (jwk->kid && jwk->kid[0]) {
        fp->kid = strdup(jwk->kid);
    } else if (fp->pkey) {
        OK_GUARD_GOTO(rc, ok_jwk_thumbprint(fp->pkey, &fp->kid), fail);
    } else {
        rc = ok_fail(OK_ERR_KEY, "oct key has no \"kid\"");
        goto fail;
    }
    if (!fp->kid) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = &fp->base;
    return OK_OK;
fail:
    file_destroy(&fp->base);
    return rc;
}

ok_err ok_file_provider_open(const char *path, ok_provider **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ok_fail(OK_ERR_KEY, "cannot read key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ok_fail(OK_ERR_KEY, "key file %s is not a regular file", path);
    }
    if (st.st_size > (off_t)OK_JWK_MAX_LEN) {
        close(fd);
        return ok_fail(OK_ERR_KEY, "key file %s is too large to be a JWK", path);
    }
    size_t len = (size_t)st.st_size;
    char *text = ok_secure_alloc(len + 1);
    size_t have = 0;
    while (text && have < len) {
        ssize_t n = read(fd, text + have, len - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    if (!text)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_err rc;
    ok_jwk *jwk = NULL;
    if (have != len) {
        rc = ok_fail(OK_ERR_KEY, "cannot read key file %s", path);
    } else {
        rc = ok_jwk_parse(text, len, &jwk);
        if (rc != OK_OK)
            rc = ok_fail(OK_ERR_KEY, "key file %s is not a usable JWK: %s", path, ok_err_message());
    }
    ok_secure_free(text, len + 1);
    if (rc == OK_OK) {
        rc = ok_file_provider_from_jwk(jwk, out);
        if (rc != OK_OK && rc != OK_ERR_NOMEM)
            rc = ok_fail(OK_ERR_KEY, "key file %s: %s", path, ok_err_message());
    }
    ok_jwk_free(jwk);
    return rc;
}
