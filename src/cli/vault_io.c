/* Raw bytes in and out for the vault commands (backup blobs, wrapped keys, ciphertexts, signatures):
 * whole inputs read into a bounded buffer that is zeroized when freed, outputs written to a file
 * atomically (mode 0600: it may be plaintext) or to stdout, but never binary to a terminal. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli/vault_cli.h"

int vault_read_input(const char *path, size_t max, ok_buf *out)
{
    ok_buf_init(out, max);
    if ((!path || !strcmp(path, "-")) && isatty(STDIN_FILENO))
        return cli_report(ok_fail(OK_ERR_INVALID_ARG, "no input: give -i FILE or pipe the input in"));
    cli_file in;
    ok_err rc = cli_input_open(&in, path);
    uint8_t chunk[65536];
    while (rc == OK_OK) {
        ssize_t n = read(in.io.fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = ok_fail(OK_ERR_IO, "cannot read %s: %s", path && strcmp(path, "-") ? path : "stdin", strerror(errno));
        else if (n == 0)
            break;
        else if (ok_buf_put(out, chunk, (size_t)n) != OK_OK)
            rc = ok_fail(OK_ERR_LIMIT, "the input is larger than %zu bytes", max);
    }
    ok_zeroize(chunk, sizeof chunk);
    cli_file_close(&in);
    if (rc != OK_OK) {
        ok_buf_free(out);
        return cli_report(rc);
    }
    return EXIT_OK;
}

int vault_check_output(const char *path)
{
    if ((!path || !strcmp(path, "-")) && isatty(STDOUT_FILENO))
        return cli_report(ok_fail(OK_ERR_INVALID_ARG, "refusing to write binary output to a terminal: give -o FILE"));
    return EXIT_OK;
}

int vault_write_output(const char *path, const uint8_t *p, size_t n)
{
    int check = vault_check_output(path);
    if (check != EXIT_OK)
        return check;
    cli_file out;
    ok_err rc = cli_output_open(&out, path, 0600);
    if (rc == OK_OK)
        rc = ok_fd_writer(&out.io).write(&out.io, p, n);
    if (rc == OK_OK)
        rc = cli_output_commit(&out);
    cli_file_close(&out);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}
