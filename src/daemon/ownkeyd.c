/* ownkeyd: the key vault daemon. `init` creates a vault in a data directory; `serve` opens it and
 * serves, by role, the keys API (vault role, with the rotation scheduler alongside) and the data API
 * (data role: the data service in the same directory), plus the management API, over HTTPS until
 * SIGTERM/SIGINT. Thin: parses arguments and wires the vault, the data service, the API and the server
 * together (and the pkcs11 provider into the vault, for a vault sealed by an HSM key, which serve keeps
 * trying to unseal every --unseal-retry seconds until it is unsealed once). */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/api/api.h"
#include "http/http.h"
#include "ownkey/dataservice.h"
#include "ownkey/provider.h"
#include "ownkey/vault.h"
#include "providers/pkcs11_hsm.h"

static const char USAGE[] =
    "usage: ownkeyd init --data-dir DIR [--dev | --shares N --threshold K | --passphrase-file F |\n"
    "                    --pkcs11 'pkcs11:token=T;object=K?module-path=M&pin-source=file:P']\n"
    "                    [--retention-days N] [--purge-protection] [--output text|json]\n"
    "       ownkeyd serve --data-dir DIR [--listen HOST:PORT] [--cert PEM --key PEM] [--threads N]\n"
    "                     [--challenge-resource URL] [--rotation-interval SECONDS]\n"
    "                     [--roles vault,data] [--key-cache-ttl SECONDS] [--probe-max-backoff SECONDS]\n"
    "                     [--unseal-retry SECONDS] [--hsm 'pkcs11:token=T?module-path=M&pin-source=file:P']\n"
    "                     [--sched batch|normal]\n"
    "\n"
    "init --pkcs11: the master key is wrapped by that key inside the token (AES-KWP or RSA-OAEP) and the\n"
    "vault unseals itself while the token is present; the URI is stored, so pin-value is refused (use\n"
    "pin-source=file:PATH, read at each login). serve: a PKCS#11 vault whose token is absent starts sealed\n"
    "and is retried every --unseal-retry seconds (default 5) until it unseals once; after an operator's\n"
    "seal it stays sealed until 'ownkey operator unseal --auto'. serve --hsm: keys of type RSA-HSM, EC-HSM\n"
    "and oct-HSM are made and used inside that token (non-extractable); without it they are refused.\n"
    "\n"
    "serve roles: vault = the keys API (/keys, /deletedkeys, /rng) and key rotation; data = the data API\n"
    "(/data/v1/, objects encrypted at rest under tenant keys, kept in DIR). Default: both. The management\n"
    "API (/ownkey/v1/) is served either way. --key-cache-ttl: seconds an unwrapped tenant key is used\n"
    "before its root key is asked again (default 3600), the bound on how long a revoked customer key\n"
    "still works. --probe-max-backoff: the longest wait between probes of a locked tenant's key\n"
    "(default 60). --sched: the Linux scheduling policy of the daemon's threads, SCHED_BATCH by default\n"
    "(a thread woken by a socket waits for the running one's time slice instead of preempting it; see\n"
    "docs/DESIGN.md), or the normal SCHED_OTHER.\n";

static int fail(ok_err rc)
{
    const char *msg = ok_err_message();
    fprintf(stderr, "ownkeyd: %s\n", msg && *msg ? msg : ok_err_name(rc));
    return 1;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "ownkeyd: %s\n%s", msg, USAGE);
    return 2;
}

/* ---- init ------------------------------------------------------------------------------------------ */

static char *read_passphrase(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = ok_secure_alloc(4096);
    size_t n = buf ? fread(buf, 1, 4095, f) : 0;
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"dev", no_argument, NULL, 'D'},
        {"shares", required_argument, NULL, 'n'}, {"threshold", required_argument, NULL, 'k'},
        {"passphrase-file", required_argument, NULL, 'p'}, {"output", required_argument, NULL, 'o'},
        {"retention-days", required_argument, NULL, 'r'}, {"purge-protection", no_argument, NULL, 'P'},
        {"pkcs11", required_argument, NULL, 'H'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *pass_file = NULL, *output = "text", *pkcs11 = NULL;
    int dev = 0, c;
    ok_vault_init_params p = {0};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'D': dev = 1; break;
        case 'n': p.shares = (unsigned)atoi(optarg); break;
        case 'k': p.threshold = (unsigned)atoi(optarg); break;
        case 'p': pass_file = optarg; break;
        case 'o': output = optarg; break;
        case 'r': p.retention_days = (unsigned)atoi(optarg); break;
        case 'P': p.purge_protection = 1; break;
        case 'H': pkcs11 = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return usage_error("bad option");
        }
    }
    if (!dir)
        return usage_error("--data-dir is required");
    if (dev + (p.shares > 0) + (pass_file != NULL) + (pkcs11 != NULL) != 1)
        return usage_error("choose exactly one of --dev, --shares N --threshold K, --passphrase-file F, --pkcs11 URI");
    if (strcmp(output, "text") && strcmp(output, "json"))
        return usage_error("--output must be text or json");
    char *pass = NULL;
    size_t pass_len = 0;
    if (dev) {
        p.kind = OK_SEAL_DEV;
    } else if (pkcs11) {
        p.kind = OK_SEAL_PKCS11;
        p.pkcs11_uri = pkcs11;
        ok_vault_set_hsm_opener(ok_pkcs11_provider_open);
    } else if (p.shares) {
        p.kind = OK_SEAL_SHAMIR;
    } else {
        p.kind = OK_SEAL_PASSPHRASE;
        pass = read_passphrase(pass_file, &pass_len);
        if (!pass || pass_len == 0) {
            ok_secure_free(pass, 4096);
            return usage_error("cannot read a passphrase from --passphrase-file");
        }
        p.passphrase = (const uint8_t *)pass;
        p.passphrase_len = pass_len;
    }
    ok_vault_init_result r = {0};
    ok_err rc = ok_vault_init(dir, &p, &r);
    ok_secure_free(pass, 4096);
    if (rc != OK_OK)
        return fail(rc);
    if (!strcmp(output, "json")) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "data_dir", dir, "admin_identity", "admin", "admin_token",
                            r.admin_token, "seal_kind", pkcs11 ? "pkcs11" : dev ? "dev" : p.shares ? "shamir" : "passphrase");
        if (r.share_count) {
            json_t *shares = json_array();
            for (size_t i = 0; i < r.share_count; i++)
                json_array_append_new(shares, json_string(r.shares[i]));
            json_object_set_new(doc, "shares", shares);
            json_object_set_new(doc, "threshold", json_integer(p.threshold));
        }
        json_dumpf(doc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(doc);
    } else {
        printf("Vault created in %s.\n\nAdmin token (shown once; store it safely):\n  %s\n", dir, r.admin_token);
        for (size_t i = 0; i < r.share_count; i++)
            printf("%sUnseal share %zu of %zu:\n  %s\n", i ? "" : "\nShares (any " , i + 1, r.share_count, r.shares[i]);
        if (pkcs11)
            printf("\nThe master key is wrapped by the PKCS#11 token key; the vault unseals itself while the token is present.\n");
        if (dev)
            printf("\nWARNING: --dev keeps the master key in %s/master.key beside the data. Never use it in production.\n", dir);
    }
    fflush(stdout);
    ok_vault_init_result_clear(&r);
    return 0;
}

/* ---- serve ----------------------------------------------------------------------------------------- */

/* A background task of the daemon: `before` (may be NULL), then a wait of `interval` seconds, then `after`,
 * again and again until the daemon stops or a step returns 0. */
typedef struct periodic {
    ok_vault *vault;
    unsigned interval;
    int (*before)(struct periodic *p);
    int (*after)(struct periodic *p);
    char last[256];                  /* the unsealer's last logged reason */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
} periodic;

static void *periodic_main(void *arg)
{
    periodic *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        if (p->before) {
            pthread_mutex_unlock(&p->lock);
            int go = p->before(p);
            pthread_mutex_lock(&p->lock);
            if (!go)
                break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->interval;
        pthread_cond_timedwait(&p->wake, &p->lock, &until);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        int go = p->after(p);
        pthread_mutex_lock(&p->lock);
        if (!go)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void periodic_start(periodic *p, int wanted)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->started = wanted && pthread_create(&p->thread, NULL, periodic_main, p) == 0;
}

static void periodic_stop(periodic *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
}

/* HSM auto-unseal: while a PKCS#11 vault is sealed because its token is absent (or its PIN file wrong),
 * retry every interval, logging each new reason once (the messages never hold the PIN). Stops once the
 * vault is unsealed: a later seal is an operator's, which `ownkey operator unseal --auto` undoes. */
static int unsealer_check(periodic *p)
{
    ok_vault_status st;
    ok_vault_get_status(p->vault, &st);
    if (!st.sealed)
        return 0;
    if (strcmp(p->last, st.seal_error) != 0) {
        fprintf(stderr, "ownkeyd: vault sealed: %s; retrying every %u s\n", st.seal_error, p->interval);
        snprintf(p->last, sizeof p->last, "%s", st.seal_error);
    }
    return 1;
}

static int unsealer_try(periodic *p)
{
    if (ok_vault_unseal_auto(p->vault) == OK_OK)
        fprintf(stderr, "ownkeyd: vault unsealed by its PKCS#11 token\n");
    return 1; /* the next check stops the task once unsealed */
}

/* The rotation scheduler: applies due lifetime actions every interval. */
static int rotation_tick(periodic *p)
{
    unsigned rotated = 0, notified = 0;
    ok_err rc = ok_vault_rotation_tick(p->vault, (int64_t)time(NULL), &rotated, &notified);
    if (rc != OK_OK && rc != OK_ERR_SEALED)
        fprintf(stderr, "ownkeyd: rotation scheduler: %s\n", ok_err_message());
    else if (rotated || notified)
        fprintf(stderr, "ownkeyd: rotation scheduler: %u rotated, %u notified\n", rotated, notified);
    return 1;
}

static void metrics_extra(void *ctx, ok_buf *out)
{
    ok_api *api = ctx;
    ok_vault_status st;
    ok_vault_get_status(api->vault, &st);
    char text[256];
    int n = snprintf(text, sizeof text,
                     "# TYPE ownkey_vault_sealed gauge\nownkey_vault_sealed %d\n"
                     "# TYPE ownkey_vault_keys gauge\nownkey_vault_keys %llu\n",
                     st.sealed, (unsigned long long)st.keys);
    ok_buf_put(out, text, (size_t)n);
    if (api->ds)
        ok_ds_metrics(api->ds, out);
}

enum { ROLE_VAULT = 1, ROLE_DATA = 2 };

/* "vault", "data", or both separated by a comma, in any order; 0 when it is anything else. */
static unsigned parse_roles(const char *text)
{
    char copy[64];
    if (!text || !*text || strlen(text) >= sizeof copy)
        return 0;
    memcpy(copy, text, strlen(text) + 1);
    unsigned roles = 0;
    char *save = NULL;
    for (char *p = copy;; p = NULL) {
        char *tok = strtok_r(p, ",", &save);
        if (!tok)
            break;
        if (!strcmp(tok, "vault"))
            roles |= ROLE_VAULT;
        else if (!strcmp(tok, "data"))
            roles |= ROLE_DATA;
        else
            return 0;
    }
    /* strtok_r skips empty pieces: ",vault" and "vault,,data" are refused here. */
    if (text[0] == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,"))
        return 0;
    return roles;
}

/* A positive number of seconds (at most INT_MAX); 0 when it is anything else. */
static int64_t parse_seconds(const char *text)
{
    if (!text || *text < '0' || *text > '9')
        return 0;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0 || v > INT_MAX)
        return 0;
    return (int64_t)v;
}

/* The daemon's threads run as SCHED_BATCH unless told otherwise: under load their work is CPU-bound
 * (TLS, JSON, RSA) and a worker woken by its socket preempting another (or the audit syncer preempting a
 * worker the moment its gathering pause ends) only adds context switches and cold caches. Set on the
 * main thread before any other exists; every thread inherits it. Measured in docs/BENCHMARKS.md. */
static int set_sched(const char *mode)
{
    int policy = !strcmp(mode, "batch") ? SCHED_BATCH : !strcmp(mode, "normal") ? SCHED_OTHER : -1;
    if (policy < 0)
        return -1;
    struct sched_param p = {.sched_priority = 0};
    if (sched_setscheduler(0, policy, &p) != 0) /* unprivileged on Linux; a hint, so only noted */
        fprintf(stderr, "ownkeyd: cannot set the scheduling policy %s (errno %d); running as started\n", mode,
                errno);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},
        {"cert", required_argument, NULL, 'c'}, {"key", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'}, {"challenge-resource", required_argument, NULL, 'r'},
        {"rotation-interval", required_argument, NULL, 'i'}, {"roles", required_argument, NULL, 'R'},
        {"key-cache-ttl", required_argument, NULL, 'T'}, {"probe-max-backoff", required_argument, NULL, 'B'},
        {"unseal-retry", required_argument, NULL, 'U'}, {"hsm", required_argument, NULL, 'S'},
        {"sched", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *listen = "127.0.0.1:8443", *cert = NULL, *key = NULL, *resource = NULL, *hsm = NULL;
    const char *sched_policy = "batch";
    unsigned threads = 0, interval = 60, roles = ROLE_VAULT | ROLE_DATA;
    int64_t key_cache_ttl = 3600, probe_max_backoff = 60, unseal_retry = 5;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'l': listen = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 't': threads = (unsigned)atoi(optarg); break;
        case 'r': resource = optarg; break;
        case 'i': interval = (unsigned)atoi(optarg); break;
        case 'R':
            if (!(roles = parse_roles(optarg)))
                return usage_error("--roles must be vault, data or vault,data");
            break;
        case 'T':
            if (!(key_cache_ttl = parse_seconds(optarg)))
                return usage_error("--key-cache-ttl must be a positive number of seconds");
            break;
        case 'B':
            if (!(probe_max_backoff = parse_seconds(optarg)))
                return usage_error("--probe-max-backoff must be a positive number of seconds");
            break;
        case 'U':
            if (!(unseal_retry = parse_seconds(optarg)))
                return usage_error("--unseal-retry must be a positive number of seconds");
            break;
        case 'S': hsm = optarg; break;
        case 'P': sched_policy = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: return usage_error("bad option");
        }
    }
    if (!dir)
        return usage_error("--data-dir is required");
    if (!cert != !key)
        return usage_error("--cert and --key go together");
    if (interval == 0)
        return usage_error("--rotation-interval must be at least 1 second");
    if (set_sched(sched_policy) != 0)
        return usage_error("--sched must be batch or normal");

    char cert_path[4096], key_path[4096];
    if (!cert) {
        snprintf(cert_path, sizeof cert_path, "%s/tls", dir);
        mkdir(cert_path, 0700);
        snprintf(cert_path, sizeof cert_path, "%s/tls/cert.pem", dir);
        snprintf(key_path, sizeof key_path, "%s/tls/key.pem", dir);
        ok_err rc = ok_http_ensure_self_signed(cert_path, key_path);
        if (rc != OK_OK)
            return fail(rc);
        cert = cert_path;
        key = key_path;
    }
    ok_vault *vault = NULL;
    ok_vault_set_hsm_opener(ok_pkcs11_provider_open);
    ok_err rc = ok_vault_open(dir, &vault);
    if (rc != OK_OK)
        return fail(rc);
    if (hsm) { /* HSM-backed keys: the token is wired into the vault here, the vault never links providers */
        ok_vault_hsm *h = NULL;
        rc = ok_pkcs11_hsm_open(hsm, &h);
        if (rc == OK_OK)
            rc = ok_vault_attach_hsm(vault, h);
        if (rc != OK_OK) {
            ok_vault_close(vault);
            return fail(rc);
        }
    }
    ok_vault_status st;
    ok_vault_get_status(vault, &st);
    if (st.kind == OK_SEAL_DEV)
        fprintf(stderr, "ownkeyd: WARNING: development vault: the master key lies beside the data in %s/master.key; "
                        "anyone who can read the directory can read every key. Never use --dev in production.\n", dir);

    /* Signals are taken by sigwait in this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The data service keeps DIR/data.db and DIR/objects/ beside the vault, whose master key seals it. */
    ok_ds *ds = NULL;
    if (roles & ROLE_DATA) {
        ok_ds_config dcfg = {.dir = dir, .vault = vault, .key_cache_ttl = key_cache_ttl,
                             .probe_max_backoff = (unsigned)probe_max_backoff};
        rc = ok_ds_open(&dcfg, &ds);
        if (rc != OK_OK) {
            ok_vault_close(vault);
            return fail(rc);
        }
    }
    ok_api api = {.vault = vault, .challenge_resource = resource, .ds = ds, .vault_role_off = !(roles & ROLE_VAULT)};
    ok_http_config cfg = {.listen = listen, .cert_pem_path = cert, .key_pem_path = key, .threads = threads,
                          .handler = ok_api_handle, .handler_ctx = &api, .stream = ds ? &ok_api_stream : NULL,
                          .metrics_extra = metrics_extra};
    ok_http_server *server = NULL;
    rc = ok_http_start(&cfg, &server);
    if (rc != OK_OK) {
        ok_ds_close(ds);
        ok_vault_close(vault);
        return fail(rc);
    }
    /* Key rotation belongs to the vault role; the unsealer to a PKCS#11-sealed vault. */
    periodic sched = {.vault = vault, .interval = interval, .after = rotation_tick};
    periodic_start(&sched, (roles & ROLE_VAULT) != 0);
    periodic unseal = {.vault = vault, .interval = (unsigned)unseal_retry, .before = unsealer_check,
                       .after = unsealer_try};
    periodic_start(&unseal, st.kind == OK_SEAL_PKCS11);

    fprintf(stderr, "ownkeyd: serving https://%s (vault %s, %s; roles %s)\n", listen, dir, st.sealed ? "sealed" : "unsealed",
            roles == (ROLE_VAULT | ROLE_DATA) ? "vault,data" : roles == ROLE_VAULT ? "vault" : "data");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "ownkeyd: %s received, finishing requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");

    ok_http_stop(server);
    periodic_stop(&sched);
    periodic_stop(&unseal);
    ok_ds_close(ds); /* before the vault, whose master key sealed its keys */
    ok_vault_close(vault);
    fprintf(stderr, "ownkeyd: stopped\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* Master key, derived keys, cached key material and private-key bignums live in a locked arena. */
    if (ok_secure_heap_init(8u * 1024u * 1024u) != 1)
        fprintf(stderr, "ownkeyd: warning: key material cannot be locked in memory (RLIMIT_MEMLOCK); it may be swapped\n");
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "init"))
        return cmd_init(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, stdout);
        return 0;
    }
    return usage_error("unknown command");
}
