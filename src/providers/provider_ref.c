/* Key references as users write them, resolved to providers: "file:PATH", a vault key
 * "https://HOST[:PORT]/keys/NAME[/VERSION]", a PKCS#11 token key "pkcs11:…" (RFC 7512), a KMIP server key
 * "kmip://HOST[:PORT]/NAME". */
#include <string.h>
#include <strings.h>

#include "ownkey/provider.h"

ok_err ok_provider_from_ref(const char *ref, ok_provider **out)
{
    static const char FILE_SCHEME[] = "file:";
    static const char HTTPS_SCHEME[] = "https://";
    if (strncmp(ref, FILE_SCHEME, sizeof FILE_SCHEME - 1) == 0) {
        const char *path = ref + sizeof FILE_SCHEME - 1;
        if (!*path)
            return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\" has no path", ref);
        return ok_file_provider_open(path, out);
    }
    if (strncasecmp(ref, HTTPS_SCHEME, sizeof HTTPS_SCHEME - 1) == 0 || strncasecmp(ref, "http://", 7) == 0)
        return ok_vault_provider_from_env(ref, out);
    if (strncasecmp(ref, "pkcs11:", 7) == 0)
        return ok_pkcs11_provider_open(ref, out);
    if (strncmp(ref, "kmip://", 7) == 0)
        return ok_kmip_provider_from_ref(ref, out);
    return ok_fail(OK_ERR_INVALID_ARG,
                   "unknown key reference \"%s\" (expected file:PATH, https://HOST[:PORT]/keys/NAME[/VERSION], "
                   "pkcs11:… or kmip://HOST[:PORT]/NAME)", ref);
}
