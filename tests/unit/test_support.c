/* Shared helpers for unit tests: reading whole files, locating test vectors, temporary directories. */
#include "test_support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

char *test_make_tmpdir(void)
{
    char tmpl[] = "/tmp/ownkey-test-XXXXXX";

    return mkdtemp(tmpl) != NULL ? strdup(tmpl) : NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_remove_tree(const char *path)
{
    if (path != NULL)
        (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
