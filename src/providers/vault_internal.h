/* Internal to the vault client and provider (src/providers/vault_*.c): the origin parser they share. */
#ifndef OWNKEY_PROVIDERS_VAULT_INTERNAL_H
#define OWNKEY_PROVIDERS_VAULT_INTERNAL_H

#include <stddef.h>

#include "ownkey/vault_client.h"

/* Parses "https://HOST[:PORT]" (the first len bytes of s; with allow_slash, one trailing "/" is fine)
 * into its normal form: host lowercased, ":443" dropped. */
ok_err vault_origin_parse(const char *s, size_t len, int allow_slash, char out[OK_VAULT_ADDR_MAX + 1]);

#endif
