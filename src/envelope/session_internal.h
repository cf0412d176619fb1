/* Internal to the envelope: the two halves of ok_env_seal and ok_env_open, so that the stream can read
 * and write while the pool seals or opens the batch in flight (one batch at a time per session). */
#ifndef OWNKEY_ENVELOPE_SESSION_INTERNAL_H
#define OWNKEY_ENVELOPE_SESSION_INTERNAL_H

#include "ownkey/envelope.h"

/* The buffers must stay untouched until the matching collect. */
ok_err ok_env_seal_submit(ok_env_session *s, const uint8_t *in, size_t in_len, int final, uint8_t *out);
ok_err ok_env_seal_collect(ok_env_session *s, size_t *out_len);
/* *consumed and *final are known at submit (frames are located then); the plaintext length at collect. */
ok_err ok_env_open_submit(ok_env_session *s, const uint8_t *in, size_t in_len, size_t *consumed, uint8_t *out,
                          int *final);
ok_err ok_env_open_collect(ok_env_session *s, size_t *out_len);
/* Waits for and discards a batch in flight (on an error path, before its buffers are freed); the
 * session is then failed. Nothing happens when no batch is in flight. */
void ok_env_drain(ok_env_session *s);

#endif
