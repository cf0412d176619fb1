/* libFuzzer target: the envelope header parser. Feeds the input to ok_env_header_prefix (its first 11
 * bytes) and to ok_env_header_parse (all of it), and checks what a successful parse promises. Owns
 * nothing but this harness; the parser lives in src/envelope/header.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= OK_ENV_PREFIX_LEN) {
        uint32_t header_len = 0;
        if (ok_env_header_prefix(data, &header_len) == OK_OK &&
            (header_len < OK_ENV_MIN_HEADER || header_len > OK_ENV_MAX_HEADER))
            abort(); /* the prefix check promised a length within the limits */
    }
    ok_env_header *h = NULL;
    if (ok_env_header_parse(data, size, &h) == OK_OK) {
        /* A parsed header must describe exactly the bytes given and stay within every limit. */
        if (h->header_len != size || memcmp(h->raw, data, size) != 0)
            abort();
        if (h->frame_size < OK_ENV_MIN_FRAME || h->frame_size > OK_ENV_MAX_FRAME)
            abort();
        if (h->context_count > OK_ENV_MAX_CONTEXT || h->edk_count < 1 || h->edk_count > OK_ENV_MAX_EDKS)
            abort();
        for (size_t i = 0; i < h->context_count; i++)
            if (strlen(h->context[i].key) > OK_ENV_MAX_CONTEXT_KEY ||
                strlen(h->context[i].value) > OK_ENV_MAX_CONTEXT_VALUE)
                abort();
        for (size_t i = 0; i < h->edk_count; i++)
            if (h->edks[i].ct_len < 1 || h->edks[i].ct_len > OK_EDK_CT_MAX ||
                strlen(h->edks[i].key_id) > OK_EDK_KEY_ID_MAX)
                abort();
        ok_env_header_free(h);
    } else if (h != NULL) {
        abort(); /* a failed parse must not hand anything out */
    }
    ok_err_clear();
    return 0;
}
