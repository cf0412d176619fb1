/* The ownkey CLI: shared pieces of the commands (exit codes, error reporting, input/output files,
 * progress). Each command lives in its own cmd_<name>.c. */
#ifndef OWNKEY_CLI_H
#define OWNKEY_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "ownkey/envelope.h"
#include "ownkey/util.h"

/* Documented exit codes (docs/ownkey.1). */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1,  /* internal or unexpected failure */
    EXIT_USAGE = 2,          /* bad command line */
    EXIT_IO = 3,             /* cannot read input or write output */
    EXIT_KEY = 4,            /* key file unreadable, invalid or of the wrong kind */
    EXIT_NO_RECIPIENT = 5,   /* no given key opens the envelope */
    EXIT_AUTH = 6,           /* authentication failed: tampered or corrupted */
    EXIT_TRUNCATED = 7,      /* input ends early */
    EXIT_UNSUPPORTED = 8,    /* unknown format version or suite */
    EXIT_FORMAT = 9,         /* malformed envelope or limit exceeded */
    EXIT_NOT_FOUND = 10,     /* vault: no such key, version or identity */
    EXIT_CONFLICT = 11,      /* vault: name exists or is soft-deleted */
    EXIT_FORBIDDEN = 12,     /* vault: not permitted (policy, disabled key, key_ops, validity window) */
    EXIT_SEALED = 13,        /* vault: sealed */
};

int cmd_keygen(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

/* Prints "ownkey: <message>" for err and returns its exit code. */
int cli_report(ok_err err);
/* Prints a usage error and returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_exit_code(ok_err err);
/* Parses a positive integer within [min, max]; 0 on success. */
int cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Input: a path or "-"/NULL for stdin. Output: with a path, a temporary file beside it that is fsync'ed
 * and renamed into place only by cli_output_commit; without, stdout. */
typedef struct {
    ok_fd_io io;
    uint64_t size; /* input: bytes if known (regular file), else 0 */
    char *path;    /* output: the final path (NULL for stdout) */
    char *tmp;     /* output: the temporary path */
} cli_file;

ok_err cli_input_open(cli_file *f, const char *path);
ok_err cli_output_open(cli_file *f, const char *path, int mode);
ok_err cli_output_commit(cli_file *f);
void cli_file_close(cli_file *f); /* removes an uncommitted temporary output */

/* A progress bar on stderr, shown only when stderr is a terminal. */
typedef struct {
    int enabled;
    uint64_t total;
    double start;
    double last;
    const char *verb;
    const char *unit;  /* NULL: bytes; else counted items ("objects"), set with cli_progress_items */
} cli_progress;

void cli_progress_init(cli_progress *p, const char *verb, uint64_t total, int quiet);
/* Counts items (done of total unit) instead of bytes; total may change between updates. */
void cli_progress_items(cli_progress *p, const char *unit);
void cli_progress_update(void *ctx, uint64_t bytes);
void cli_progress_finish(cli_progress *p, uint64_t bytes);

#endif
