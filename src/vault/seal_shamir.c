/* Shamir sealing: splitting the master key into K-of-N shares with libgfshare (GF(2^8), one polynomial per
 * byte) and recombining the shares operators submit. A share is printed as "N-<64 lowercase hex>", N being
 * its x coordinate 1..255. Submitted shares are held in secure memory until K distinct ones are there;
 * then they are recombined, checked against the stored check value, and dropped either way. Owns no
 * storage of shares: the vault stores only the check value (seal.c). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libgfshare.h>

#include "vault/seal.h"

#define SHARE_LEN OK_MASTER_KEY_LEN
#define SHARE_TEXT_MAX (3 + 1 + 2 * SHARE_LEN) /* "255-" + hex */

/* libgfshare draws its polynomial coefficients, and the bytes it overwrites freed contexts with, from a
 * global hook that is NULL by default: point it at OpenSSL's generator once. */
static pthread_once_t rand_once = PTHREAD_ONCE_INIT;
static _Thread_local int rand_failed;

static void fill_rand(unsigned char *buf, unsigned int n)
{
    if (ok_random(buf, n) != OK_OK)
        rand_failed = 1;
}

static void install_rand(void)
{
    gfshare_fill_rand = fill_rand;
}

static char *share_text(unsigned nr, const uint8_t *share)
{
    static const char hex[] = "0123456789abcdef";
    char *s = malloc(SHARE_TEXT_MAX + 1);
    int n;

    if (s == NULL)
        return NULL;
    n = snprintf(s, SHARE_TEXT_MAX + 1, "%u-", nr);
    for (size_t i = 0; i < SHARE_LEN; i++) {
        s[n++] = hex[share[i] >> 4];
        s[n++] = hex[share[i] & 15];
    }
    s[n] = '\0';
    return s;
}

static void free_texts(char **texts, unsigned n)
{
    for (unsigned i = 0; texts != NULL && i < n; i++) {
        if (texts[i] != NULL)
            ok_zeroize(texts[i], strlen(texts[i]));
        free(texts[i]);
    }
    free(texts);
}

ok_err ok_shamir_split(const uint8_t *master, unsigned n, unsigned k, char ***shares)
{
    uint8_t nrs[OK_SHAMIR_MAX_SHARES], *secret = NULL, *share = NULL;
    gfshare_ctx *ctx = NULL;
    char **texts = NULL;
    ok_err rc = OK_OK;

    *shares = NULL;
    if (k < 2 || k > n || n > OK_SHAMIR_MAX_SHARES)
        return ok_fail(OK_ERR_INVALID_ARG, "shamir: need 2 <= threshold <= shares <= 255");
    pthread_once(&rand_once, install_rand);
    rand_failed = 0;
    for (unsigned i = 0; i < n; i++)
        nrs[i] = (uint8_t)(i + 1);
    secret = ok_secure_alloc(SHARE_LEN);
    share = ok_secure_alloc(SHARE_LEN);
    texts = calloc(n, sizeof *texts);
    ctx = gfshare_ctx_init_enc(nrs, n, (unsigned char)k, SHARE_LEN);
    if (secret == NULL || share == NULL || texts == NULL || ctx == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "shamir split");
        goto done;
    }
    memcpy(secret, master, SHARE_LEN); /* the library takes a non-const pointer */
    gfshare_ctx_enc_setsecret(ctx, secret);
    if (rand_failed) {
        rc = ok_fail(OK_ERR_CRYPTO, "shamir split: no randomness");
        goto done;
    }
    for (unsigned i = 0; i < n; i++) {
        gfshare_ctx_enc_getshare(ctx, (unsigned char)i, share);
        texts[i] = share_text(nrs[i], share);
        if (texts[i] == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "shamir split");
            goto done;
        }
    }
    *shares = texts;
    texts = NULL;
done:
    if (ctx != NULL)
        gfshare_ctx_free(ctx); /* overwrites the coefficients */
    free_texts(texts, n);
    ok_secure_free(secret, SHARE_LEN);
    ok_secure_free(share, SHARE_LEN);
    return rc;
}

void ok_shamir_drop(ok_seal_state *st)
{
    ok_secure_free(st->held, (size_t)OK_SHAMIR_MAX_SHARES * SHARE_LEN);
    st->held = NULL;
    memset(st->held_nrs, 0, sizeof st->held_nrs);
    st->held_count = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "N-<64 hex>" (surrounding white space ignored) -> nr and 32 bytes. */
static ok_err parse_share(const char *text, unsigned *nr, uint8_t *out)
{
    const char *p = text, *end;
    unsigned v = 0;
    size_t digits = 0;

    while (isspace((unsigned char)*p))
        p++;
    end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    while (p < end && *p >= '0' && *p <= '9' && digits < 3) {
        v = v * 10 + (unsigned)(*p++ - '0');
        digits++;
    }
    if (digits == 0 || v == 0 || v > OK_SHAMIR_MAX_SHARES || p >= end || *p != '-' ||
        (size_t)(end - p - 1) != 2 * SHARE_LEN)
        return ok_fail(OK_ERR_INVALID_ARG, "a share looks like \"3-\" followed by 64 hex digits");
    p++;
    for (size_t i = 0; i < SHARE_LEN; i++) {
        int hi = hexval((unsigned char)p[2 * i]), lo = hexval((unsigned char)p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            ok_zeroize(out, SHARE_LEN);
            return ok_fail(OK_ERR_INVALID_ARG, "a share looks like \"3-\" followed by 64 hex digits");
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *nr = v;
    return OK_OK;
}

/* Recombines the held shares into new secure memory. */
static ok_err combine(ok_seal_state *st, uint8_t **master)
{
    gfshare_ctx *ctx;

    pthread_once(&rand_once, install_rand);
    *master = ok_secure_alloc(SHARE_LEN);
    ctx = gfshare_ctx_init_dec(st->held_nrs, st->held_count, SHARE_LEN);
    if (*master == NULL || ctx == NULL) {
        if (ctx != NULL)
            gfshare_ctx_free(ctx);
        ok_secure_free(*master, SHARE_LEN);
        *master = NULL;
        return ok_fail(OK_ERR_NOMEM, "shamir combine");
    }
    for (unsigned i = 0; i < st->held_count; i++)
        gfshare_ctx_dec_giveshare(ctx, (unsigned char)i, st->held + (size_t)i * SHARE_LEN);
    gfshare_ctx_dec_extract(ctx, *master);
    gfshare_ctx_free(ctx);
    return OK_OK;
}

/* Adds one share to the held set: a share number already held is ignored. */
static ok_err hold(ok_seal_state *st, unsigned nr, const uint8_t *share)
{
    for (unsigned i = 0; i < st->held_count; i++) {
        if (st->held_nrs[i] == nr)
            return OK_OK;
    }
    if (st->held == NULL) {
        st->held = ok_secure_alloc((size_t)OK_SHAMIR_MAX_SHARES * SHARE_LEN);
        if (st->held == NULL)
            return ok_fail(OK_ERR_NOMEM, "secure memory");
    }
    memcpy(st->held + (size_t)st->held_count * SHARE_LEN, share, SHARE_LEN);
    st->held_nrs[st->held_count++] = (uint8_t)nr;
    return OK_OK;
}

ok_err ok_vault_unseal_share(ok_vault *v, const char *share)
{
    ok_seal_state *st;
    uint8_t bytes[SHARE_LEN], *master = NULL;
    unsigned nr = 0;
    int sealed;
    ok_err rc;

    if (v == NULL || share == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_unseal_share: NULL argument");
    if (v->kind != OK_SEAL_SHAMIR)
        return ok_fail(OK_ERR_INVALID_ARG, "this vault is not sealed with shares");
    pthread_rwlock_rdlock(&v->seal_lock);
    sealed = v->sealed;
    pthread_rwlock_unlock(&v->seal_lock);
    if (!sealed)
        return OK_OK;
    OK_GUARD(parse_share(share, &nr, bytes));

    st = v->module_state;
    pthread_mutex_lock(&st->lock);
    rc = hold(st, nr, bytes);
    ok_zeroize(bytes, sizeof bytes);
    if (rc != OK_OK || st->held_count < st->threshold)
        goto done;
    rc = combine(st, &master);
    ok_shamir_drop(st);
    if (rc != OK_OK)
        goto done;
    rc = ok_seal_install(v, master); /* frees master */
    if (rc == OK_ERR_AUTH)
        rc = ok_fail(OK_ERR_AUTH, "the shares do not recombine to this vault's master key; submit them again");
done:
    pthread_mutex_unlock(&st->lock);
    return rc;
}
