/* Internal to the envelope: what the session hands the header writer. */
#ifndef OWNKEY_ENVELOPE_HEADER_INTERNAL_H
#define OWNKEY_ENVELOPE_HEADER_INTERNAL_H

#include "ownkey/envelope.h"

typedef struct {
    uint8_t message_id[OK_ENV_MESSAGE_ID_LEN];
    uint32_t frame_size;
    ok_env_mode mode;
    const ok_env_context_entry *context;
    size_t context_count;
    const ok_edk *edks;
    size_t edk_count;
    uint8_t commitment[OK_ENV_COMMITMENT_LEN];
} ok_env_header_fields;

/* Appends the header up to and including the commitment, with header_len set for the tag that the
 * caller appends next (16 bytes). */
ok_err ok_env_header_write_body(ok_buf *b, const ok_env_header_fields *f);

#endif
