/* CLI input and output files: stdin/stdout or paths; outputs go to a temporary file that is fsync'ed and
 * renamed into place only after success, so a failed run never leaves partial output behind. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

ok_err cli_input_open(cli_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    if (!path || !strcmp(path, "-")) {
        f->io.fd = STDIN_FILENO;
    } else {
        f->io.fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->io.fd < 0)
            return ok_fail(OK_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(f->io.fd, &st) == 0 && S_ISREG(st.st_mode))
        f->size = (uint64_t)st.st_size;
    return OK_OK;
}

ok_err cli_output_open(cli_file *f, const char *path, int mode)
{
    memset(f, 0, sizeof *f);
    if (!path || !strcmp(path, "-")) {
        f->io.fd = STDOUT_FILENO;
        return OK_OK;
    }
    size_t n = strlen(path);
    f->path = strdup(path);
    f->tmp = malloc(n + 16);
    if (!f->path || !f->tmp)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    snprintf(f->tmp, n + 16, "%s.tmp.XXXXXX", path);
    f->io.fd = mkstemp(f->tmp);
    if (f->io.fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        return ok_fail(OK_ERR_IO, "cannot create output beside %s: %s", path, strerror(e));
    }
    if (fchmod(f->io.fd, (mode_t)mode) != 0)
        return ok_fail(OK_ERR_IO, "cannot set mode of %s: %s", f->tmp, strerror(errno));
    return OK_OK;
}

static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

ok_err cli_output_commit(cli_file *f)
{
    if (!f->tmp)
        return OK_OK;
    if (fsync(f->io.fd) != 0)
        return ok_fail(OK_ERR_IO, "cannot flush %s: %s", f->tmp, strerror(errno));
    if (close(f->io.fd) != 0) {
        f->io.fd = -1;
        return ok_fail(OK_ERR_IO, "cannot close %s: %s", f->tmp, strerror(errno));
    }
    f->io.fd = -1;
    if (rename(f->tmp, f->path) != 0)
        return ok_fail(OK_ERR_IO, "cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
    fsync_parent(f->path);
    free(f->tmp);
    f->tmp = NULL;
    return OK_OK;
}

void cli_file_close(cli_file *f)
{
    if (f->io.fd > STDERR_FILENO)
        close(f->io.fd);
    f->io.fd = -1;
    if (f->tmp) {
        unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
    }
    free(f->path);
    f->path = NULL;
}
