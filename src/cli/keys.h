/* CLI key references: --to/--key arguments resolved into providers. */
#ifndef OWNKEY_CLI_KEYS_H
#define OWNKEY_CLI_KEYS_H

#include "ownkey/provider.h"

#define CLI_MAX_KEYS 64

typedef struct {
    ok_provider *items[CLI_MAX_KEYS];
    size_t count;
} cli_keys;

ok_err cli_keys_add(cli_keys *k, const char *ref);
void cli_keys_free(cli_keys *k);

#endif
