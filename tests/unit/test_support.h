/* Shared helpers for unit tests: reading whole files and locating test vectors. */
#ifndef OWNKEY_TEST_SUPPORT_H
#define OWNKEY_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into malloc'ed memory (NUL-terminated); NULL on failure. */
char *test_read_file(const char *path, size_t *len);
/* Path of a vector file under OWNKEY_VECTORS_DIR (static buffer). */
const char *test_vector_path(const char *relative);

#endif
