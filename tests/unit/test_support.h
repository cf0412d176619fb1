/* Shared helpers for unit tests: reading whole files, locating test vectors, temporary directories. */
#ifndef OWNKEY_TEST_SUPPORT_H
#define OWNKEY_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into malloc'ed memory (NUL-terminated); NULL on failure. */
char *test_read_file(const char *path, size_t *len);
/* Path of a vector file under OWNKEY_VECTORS_DIR (static buffer). */
const char *test_vector_path(const char *relative);

/* A new empty directory under /tmp (malloc'ed path); NULL on failure. */
char *test_make_tmpdir(void);
/* Removes a directory tree (no symlinks followed). */
void test_remove_tree(const char *path);

#endif
