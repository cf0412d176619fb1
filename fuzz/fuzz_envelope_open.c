/* libFuzzer target: decrypting a whole envelope. The input is an envelope read through a memory reader
 * (in short, uneven reads) and decrypted with ok_env_decrypt_stream under one fixed AES-256 key (kid
 * "fuzz", bytes 00 01 .. 1f) into a writer that discards. This reaches the prefix and header checks,
 * recipient matching, unwrapping, the commitment and header tag, and (from seeds made with the fixed
 * key, see docs/FUZZING.md) frame location, frame authentication, truncation and trailing data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KID "fuzz"
#define FUZZ_MAX_READ 4093u /* reads return at most this much, to exercise short-read handling */

typedef struct {
    const uint8_t *data;
    size_t len, pos, reads;
} mem_reader;

typedef struct {
    uint64_t bytes;
} counting_writer;

static ok_err mem_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    mem_reader *r = ctx;
    /* Vary the read size a little from call to call, deterministically. */
    size_t max = FUZZ_MAX_READ - (r->reads++ % 7) * 311;
    size_t n = r->len - r->pos;
    if (n > len)
        n = len;
    if (n > max)
        n = max;
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    *got = n;
    return OK_OK;
}

static ok_err discard_write(void *ctx, const uint8_t *buf, size_t len)
{
    counting_writer *w = ctx;
    if (len && buf == NULL)
        abort();
    w->bytes += len;
    return OK_OK;
}

static ok_provider *fuzz_key(void)
{
    static ok_provider *key;
    if (key)
        return key;
    uint8_t k[OK_AES256_KEY_LEN];
    for (size_t i = 0; i < sizeof k; i++)
        k[i] = (uint8_t)i;
    ok_jwk jwk = {.kty = OK_JWK_OCT, .kid = (char *)FUZZ_KID, .k = k, .k_len = sizeof k};
    if (ok_file_provider_from_jwk(&jwk, &key) != OK_OK)
        abort();
    return key; /* kept for the life of the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ok_provider *keys[1] = {fuzz_key()};
    mem_reader r = {.data = data, .len = size};
    counting_writer w = {0};
    ok_stream_options opt = {.threads = 1};
    ok_err rc = ok_env_decrypt_stream(keys, 1, (ok_reader){.read = mem_read, .ctx = &r},
                                      (ok_writer){.write = discard_write, .ctx = &w}, &opt);
    /* Plaintext can never exceed the ciphertext it came from, and success means every input byte was
     * read (anything after the final frame is trailing data, an error). */
    if (w.bytes > size)
        abort();
    if (rc == OK_OK && r.pos != r.len)
        abort();
    ok_err_clear();
    return 0;
}
