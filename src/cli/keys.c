/* CLI key references: --to/--key arguments resolved into providers. */
#include "cli/keys.h"

ok_err cli_keys_add(cli_keys *k, const char *ref)
{
    if (k->count >= CLI_MAX_KEYS)
        return ok_fail(OK_ERR_INVALID_ARG, "at most %d keys", CLI_MAX_KEYS);
    OK_GUARD(ok_provider_from_ref(ref, &k->items[k->count]));
    k->count++;
    return OK_OK;
}

void cli_keys_free(cli_keys *k)
{
    for (size_t i = 0; i < k->count; i++)
        ok_provider_free(k->items[i]);
    k->count = 0;
}
