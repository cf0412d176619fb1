/* The CLI progress bar: bytes (or counted items), rate and ETA on stderr, redrawn at most five times a
 * second, and only when stderr is a terminal. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(double bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

void cli_progress_init(cli_progress *p, const char *verb, uint64_t total, int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->total = total;
    p->start = p->last = now();
    p->verb = verb;
    p->unit = NULL;
}

void cli_progress_items(cli_progress *p, const char *unit)
{
    p->unit = unit;
}

static void draw(cli_progress *p, uint64_t bytes, double t)
{
    char done[48], rate[48];
    double elapsed = t - p->start;
    double bps = elapsed > 0 ? (double)bytes / elapsed : 0;
    if (p->unit) {
        snprintf(done, sizeof done, "%llu/%llu", (unsigned long long)bytes, (unsigned long long)p->total);
        snprintf(rate, sizeof rate, "%.0f %s", bps, p->unit);
    } else {
        human((double)bytes, done, sizeof done);
        human(bps, rate, sizeof rate);
    }
    if (p->total) {
        double frac = (double)bytes / (double)p->total;
        if (frac > 1)
            frac = 1;
        int filled = (int)(frac * 30);
        char bar[31];
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        double eta = bps > 0 ? (double)(p->total - (bytes < p->total ? bytes : p->total)) / bps : 0;
        fprintf(stderr, "\r%s [%s] %3.0f%% %s  %s/s  ETA %02d:%02d ", p->verb, bar, frac * 100, done, rate,
                (int)eta / 60, (int)eta % 60);
    } else {
        fprintf(stderr, "\r%s %s  %s/s ", p->verb, done, rate);
    }
}

void cli_progress_update(void *ctx, uint64_t bytes)
{
    cli_progress *p = ctx;
    if (!p->enabled)
        return;
    double t = now();
    if (t - p->last < 0.2)
        return;
    p->last = t;
    draw(p, bytes, t);
}

void cli_progress_finish(cli_progress *p, uint64_t bytes)
{
    if (!p->enabled || now() - p->start < 0.2)
        return;
    draw(p, bytes, now());
    fputc('\n', stderr);
}
