/* Output of the vault commands: tables (aligned under a header on a terminal, tab-separated without a
 * header otherwise, for cut and awk), "name: value" records, and times. Strings that came from the server
 * are printed with control characters replaced, so a reply cannot drive the terminal. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/vault_cli.h"

void vault_format_time(json_t *v, char *buf, size_t len)
{
    if (!json_is_integer(v)) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)json_integer_value(v);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
}

const char *vault_last_segment(const char *url)
{
    if (!url)
        return "-";
    const char *slash = strrchr(url, '/');
    return slash ? slash + 1 : url;
}

static void put_clean(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

void vault_print_field(const char *name, const char *value)
{
    printf("%-18s ", name);
    put_clean(stdout, value ? value : "-");
    putchar('\n');
}

void cli_table_init(cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols < CLI_TABLE_MAX_COLS ? ncols : CLI_TABLE_MAX_COLS;
    for (size_t i = 0; i < t->ncols; i++)
        t->headers[i] = headers[i];
}

int cli_table_add(cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof *p);
        if (!p)
            return -1;
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (!row[i]) {
            while (i--)
                free(row[i]);
            return -1;
        }
    }
    t->rows++;
    return 0;
}

void cli_table_print(const cli_table *t, FILE *f)
{
    if (!isatty(fileno(f))) {
        for (size_t r = 0; r < t->rows; r++)
            for (size_t i = 0; i < t->ncols; i++) {
                put_clean(f, t->cells[r * t->ncols + i]);
                fputc(i + 1 < t->ncols ? '\t' : '\n', f);
            }
        return;
    }
    size_t width[CLI_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++) {
        width[i] = strlen(t->headers[i]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t n = strlen(t->cells[r * t->ncols + i]);
            if (n > width[i])
                width[i] = n;
        }
    }
    for (size_t i = 0; i < t->ncols; i++)
        fprintf(f, "%-*s%s", i + 1 < t->ncols ? (int)width[i] : 0, t->headers[i], i + 1 < t->ncols ? "  " : "\n");
    for (size_t r = 0; r < t->rows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *cell = t->cells[r * t->ncols + i];
            put_clean(f, cell);
            if (i + 1 < t->ncols)
                fprintf(f, "%*s", (int)(width[i] - strlen(cell) + 2), "");
            else
                fputc('\n', f);
        }
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
