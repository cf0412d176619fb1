/* Shared helpers for unit tests: reading whole files and locating test vectors. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long size = ftell(f);
    rewind(f);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        if (len)
            *len = (size_t)size;
    }
    return buf;
}

const char *test_vector_path(const char *relative)
{
    static char path[4096];
    const char *dir = getenv("OWNKEY_VECTORS_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/vectors", relative);
    return path;
}
