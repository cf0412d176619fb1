/* Envelope data keys: drawing the data key, wrapping it for recipients (any-of: the key itself; all-of:
 * XOR shares), recovering it from a header with the keys at hand, and deriving the content key and the
 * commitment from it (docs/FORMAT.md, suite 0x0001). */
#include <stdio.h>
#include <string.h>

#include "envelope/datakey.h"
#include "ownkey/crypto.h"

static ok_err derive(const uint8_t message_id[OK_ENV_MESSAGE_ID_LEN], const uint8_t dk[OK_ENV_DATA_KEY_LEN],
                     const char *label, uint8_t out[32])
{
    uint8_t info[64];
    size_t n = strlen(label);
    memcpy(info, label, n);
    info[n] = (uint8_t)(OK_ENV_SUITE_AES256GCM_HKDF_COMMIT >> 8);
    info[n + 1] = (uint8_t)OK_ENV_SUITE_AES256GCM_HKDF_COMMIT;
    return ok_hkdf_sha256(message_id, OK_ENV_MESSAGE_ID_LEN, dk, OK_ENV_DATA_KEY_LEN, info, n + 2, out, 32);
}

ok_err ok_env_derive_keys(const uint8_t message_id[OK_ENV_MESSAGE_ID_LEN], const uint8_t dk[OK_ENV_DATA_KEY_LEN],
                          uint8_t content_key[32], uint8_t commitment[OK_ENV_COMMITMENT_LEN])
{
    OK_GUARD(derive(message_id, dk, "ownkey v1 content key", content_key));
    return derive(message_id, dk, "ownkey v1 commitment", commitment);
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] ^= src[i];
}

ok_err ok_env_wrap_data_key(const uint8_t dk[OK_ENV_DATA_KEY_LEN], ok_env_mode mode, ok_provider *const *recipients,
                            size_t count, ok_edk *edks)
{
    uint8_t share[OK_ENV_DATA_KEY_LEN], last[OK_ENV_DATA_KEY_LEN];
    memcpy(last, dk, sizeof last);
    ok_err rc = OK_OK;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *wrap_me = dk;
        if (mode == OK_ENV_ALL_OF) {
            if (i + 1 < count) {
                OK_GUARD_GOTO(rc, ok_random(share, sizeof share), out);
                xor_into(last, share, sizeof share);
                wrap_me = share;
            } else {
                wrap_me = last;
            }
        }
        OK_GUARD_GOTO(rc, ok_provider_wrap(recipients[i], wrap_me, OK_ENV_DATA_KEY_LEN, &edks[i]), out);
    }
out:
    ok_zeroize(share, sizeof share);
    ok_zeroize(last, sizeof last);
    return rc;
}

/* Unwraps one EDK with the first key that names it. OK_ERR_NO_RECIPIENT when no key names it. */
static ok_err unwrap_one(const ok_edk *edk, ok_provider *const *keys, size_t key_count, uint8_t out[OK_ENV_DATA_KEY_LEN])
{
    ok_err rc = OK_ERR_NO_RECIPIENT;
    for (size_t k = 0; k < key_count; k++) {
        if (!ok_provider_matches(keys[k], edk))
            continue;
        rc = ok_provider_unwrap(keys[k], edk, out, OK_ENV_DATA_KEY_LEN);
        if (rc == OK_OK)
            return OK_OK;
    }
    return rc;
}

/* Lists the EDKs' recipients for the "no recipient matches" message. */
static void list_recipients(const ok_env_header *h, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->edk_count && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s:%s", i ? ", " : "", h->edks[i].provider, h->edks[i].key_id);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

ok_err ok_env_unwrap_data_key(const ok_env_header *h, ok_provider *const *keys, size_t key_count,
                              uint8_t dk[OK_ENV_DATA_KEY_LEN])
{
    char names[256];
    uint8_t share[OK_ENV_DATA_KEY_LEN];
    ok_err rc = OK_ERR_NO_RECIPIENT;
    if (h->mode == OK_ENV_ANY_OF) {
        for (size_t i = 0; i < h->edk_count; i++) {
            ok_err r = unwrap_one(&h->edks[i], keys, key_count, dk);
            if (r == OK_OK)
                return OK_OK;
            if (rc == OK_ERR_NO_RECIPIENT)
                rc = r;
        }
        if (rc == OK_ERR_NO_RECIPIENT) {
            list_recipients(h, names, sizeof names);
            return ok_fail(OK_ERR_NO_RECIPIENT, "no recipient matches: the envelope is for %s", names);
        }
        return rc;
    }
    memset(dk, 0, OK_ENV_DATA_KEY_LEN);
    for (size_t i = 0; i < h->edk_count; i++) {
        rc = unwrap_one(&h->edks[i], keys, key_count, share);
        if (rc == OK_ERR_NO_RECIPIENT)
            rc = ok_fail(OK_ERR_NO_RECIPIENT, "no recipient matches layer %zu of %zu (%s:%s): all-of needs every key",
                         i + 1, h->edk_count, h->edks[i].provider, h->edks[i].key_id);
        if (rc != OK_OK)
            break;
        xor_into(dk, share, sizeof share);
    }
    ok_zeroize(share, sizeof share);
    if (rc != OK_OK)
        ok_zeroize(dk, OK_ENV_DATA_KEY_LEN);
    return rc;
}
