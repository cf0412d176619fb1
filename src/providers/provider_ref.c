/* Key references as users write them ("file:PATH"), resolved to providers. Later issues add schemes. */
#include <string.h>

#include "ownkey/provider.h"

ok_err ok_provider_from_ref(const char *ref, ok_provider **out)
{
    static const char FILE_SCHEME[] = "file:";
    if (strncmp(ref, FILE_SCHEME, sizeof FILE_SCHEME - 1) == 0) {
        const char *path = ref + sizeof FILE_SCHEME - 1;
        if (!*path)
            return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\" has no path", ref);
        return ok_file_provider_open(path, out);
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown key reference \"%s\" (expected file:PATH)", ref);
}
