/* Internal to the envelope: data key wrapping, recovery and derivation. */
#ifndef OWNKEY_ENVELOPE_DATAKEY_H
#define OWNKEY_ENVELOPE_DATAKEY_H

#include "ownkey/envelope.h"

ok_err ok_env_derive_keys(const uint8_t message_id[OK_ENV_MESSAGE_ID_LEN], const uint8_t dk[OK_ENV_DATA_KEY_LEN],
                          uint8_t content_key[32], uint8_t commitment[OK_ENV_COMMITMENT_LEN]);
/* Fills edks[0..count) (zero-initialized by the caller). */
ok_err ok_env_wrap_data_key(const uint8_t dk[OK_ENV_DATA_KEY_LEN], ok_env_mode mode, ok_provider *const *recipients,
                            size_t count, ok_edk *edks);
ok_err ok_env_unwrap_data_key(const ok_env_header *h, ok_provider *const *keys, size_t key_count,
                              uint8_t dk[OK_ENV_DATA_KEY_LEN]);

#endif
