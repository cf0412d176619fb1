/* bench_providers: data-key (32-byte) unwrap ops/s through each key provider, in one run.
 * - pkcs11: the provider next to the same operation called directly on the token (C_UnwrapKey +
 *   C_GetAttributeValue + C_DestroyObject on one session, a bare loop), alternated, best of 3, for an AES
 *   key (CKM_AES_KEY_WRAP_PAD) and an RSA key (CKM_RSA_PKCS_OAEP), with the ratio and PASS/MISS against
 *   the target (provider >= 0.9x direct); also C_Decrypt with the key-wrap mechanism (the cheaper
 *   alternative, when the token offers it) and the provider on all cores (its session pool).
 * - vault: the provider against an ownkeyd (HTTPS + a durable audit line per call), for the keys given by
 *   --vault-oct / --vault-rsa, with the token from OWNKEY_TOKEN and the CA from OWNKEY_CACERT.
 * - kmip: the provider against a KMIP server (--kmip-host etc.); the AES-256 key named --kmip-name is
 *   created (and activated) when the server has none.
 * The vault and kmip rows run with 1 and 2 threads, one provider (one client connection) per thread,
 * best of 3. Each section runs only when its arguments are given. Run through bench/providers, which makes
 * the SoftHSM2 token, a dev ownkeyd and a PyKMIP server.
 * Usage: bench_providers [--module PATH --token LABEL --pin-file PATH [--aes LABEL] [--rsa LABEL]]
 *          [--vault-oct URL] [--vault-rsa URL] [--kmip-host H --kmip-port P --kmip-cert PEM --kmip-key PEM
 *          --kmip-ca PEM [--kmip-name NAME]] [--seconds N] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ownkey/provider.h"
#include "providers/kmip_client.h"
#include "providers/pkcs11_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct {
    const char *module, *token, *pin_file, *aes, *rsa;
    const char *vault_oct, *vault_rsa;
    const char *kmip_host, *kmip_cert, *kmip_key, *kmip_ca, *kmip_name;
    unsigned kmip_port;
    double seconds;
} opt = {.aes = "kek-aes", .rsa = "kek-rsa", .kmip_name = "bench-kek", .seconds = 3.0};

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM mech;
    const ok_edk *edk;
    int use_decrypt;
} direct_ctx;

static int direct_once(direct_ctx *d)
{
    uint8_t out[64];
    if (d->use_decrypt) {
        CK_ULONG n = sizeof out;
        if (d->f->C_DecryptInit(d->s, &d->mech, d->key) != CKR_OK)
            return 0;
        return d->f->C_Decrypt(d->s, d->edk->ct, d->edk->ct_len, out, &n) == CKR_OK && n == 32;
    }
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_TOKEN, &no, 1},
                        {CKA_SENSITIVE, &no, 1},       {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE h;
    if (d->f->C_UnwrapKey(d->s, &d->mech, d->key, d->edk->ct, d->edk->ct_len, t, 5, &h) != CKR_OK)
        return 0;
    CK_ATTRIBUTE v = {CKA_VALUE, out, sizeof out};
    int ok = d->f->C_GetAttributeValue(d->s, h, &v, 1) == CKR_OK && v.ulValueLen == 32;
    d->f->C_DestroyObject(d->s, h);
    return ok;
}

/* ops/s of a loop of fn for opt.seconds (scaled down for slow operations by the caller). */
static double run_direct(direct_ctx *d, double seconds)
{
    unsigned long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 16; i++)
            if (!direct_once(d)) {
                fprintf(stderr, "bench_providers: direct operation failed\n");
                exit(1);
            }
        n += 16;
    } while ((t = now_s() - t0) < seconds);
    return n / t;
}

typedef struct {
    ok_provider *p;
    const ok_edk *edk;
    double seconds;
    unsigned long n;
} prov_ctx;

static void *run_provider_thread(void *arg)
{
    prov_ctx *c = arg;
    uint8_t out[32];
    double t0 = now_s();
    do {
        for (int i = 0; i < 16; i++)
            if (ok_provider_unwrap(c->p, c->edk, out, 32) != OK_OK) {
                fprintf(stderr, "bench_providers: provider unwrap failed: %s\n", ok_err_message());
                exit(1);
            }
        c->n += 16;
    } while (now_s() - t0 < c->seconds);
    return NULL;
}

static double run_provider(ok_provider *p, const ok_edk *edk, double seconds, int threads)
{
    pthread_t th[64];
    prov_ctx c[64];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        c[i] = (prov_ctx){p, edk, seconds, 0};
        pthread_create(&th[i], NULL, run_provider_thread, &c[i]);
    }
    unsigned long n = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        n += c[i].n;
    }
    return n / (now_s() - t0);
}

static CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, t, 2) == CKR_OK) {
        f->C_FindObjects(s, &h, 1, &n);
        f->C_FindObjectsFinal(s);
    }
    if (n != 1) {
        fprintf(stderr, "bench_providers: no key %s\n", label);
        exit(1);
    }
    return h;
}

/* One key: the provider's unwrap and the direct loop, alternated, best of 3 each. */
static void bench_key(const char *name, const char *label, int rsa, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                      int cores)
{
    char uri[2048];
    snprintf(uri, sizeof uri, "pkcs11:token=%s;object=%s?module-path=%s&pin-source=file:%s", opt.token, label,
             opt.module, opt.pin_file);
    ok_provider *p = NULL;
    if (ok_pkcs11_provider_open(uri, &p) != OK_OK) {
        fprintf(stderr, "bench_providers: %s\n", ok_err_message());
        exit(1);
    }
    uint8_t dek[32] = {1, 2, 3};
    ok_edk edk = {0};
    if (ok_provider_wrap(p, dek, 32, &edk) != OK_OK) {
        fprintf(stderr, "bench_providers: wrap: %s\n", ok_err_message());
        exit(1);
    }
    CK_RSA_PKCS_OAEP_PARAMS params = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    if (strcmp(edk.wrap_alg, "RSA-OAEP-256") == 0)
        params = (CK_RSA_PKCS_OAEP_PARAMS){CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    direct_ctx d = {f, s, find_key(f, s, rsa ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, label),
                    rsa ? (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &params, sizeof params}
                        : (CK_MECHANISM){CKM_AES_KEY_WRAP_PAD, NULL, 0},
                    &edk, 0};
    double secs = opt.seconds;
    double best_d = 0, best_p = 0;
    for (int r = 0; r < 3; r++) {
        double a, b; /* alternate which goes first, so that drift favours neither */
        if (r % 2 == 0) {
            a = run_direct(&d, secs);
            b = run_provider(p, &edk, secs, 1);
        } else {
            b = run_provider(p, &edk, secs, 1);
            a = run_direct(&d, secs);
        }
        best_d = a > best_d ? a : best_d;
        best_p = b > best_p ? b : best_p;
    }
    printf("%-8s %-16s direct C_UnwrapKey loop  %10.0f ops/s\n", name, edk.wrap_alg, best_d);
    printf("%-8s %-16s pkcs11 provider (1 thr) %10.0f ops/s   ratio %.3f  %s (target >= 0.9)\n", name,
           edk.wrap_alg, best_p, best_p / best_d, best_p / best_d >= 0.9 ? "PASS" : "MISS");
    if (cores > 1) {
        double m = run_provider(p, &edk, secs, cores);
        printf("%-8s %-16s pkcs11 provider (%d thr) %10.0f ops/s   (session pool)\n", name, edk.wrap_alg, cores, m);
    }
    /* The alternative: C_Decrypt with the same mechanism (no session object), if the token offers it. */
    d.use_decrypt = 1;
    if (direct_once(&d))
        printf("%-8s %-16s direct C_Decrypt loop    %10.0f ops/s   (alternative)\n", name, edk.wrap_alg,
               run_direct(&d, secs));
    else
        printf("%-8s %-16s direct C_Decrypt         not offered by this token for the mechanism\n", name,
               edk.wrap_alg);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

/* ---- Remote providers (vault, kmip): one provider, so one client connection, per thread ---------- */

typedef ok_err (*open_fn)(const void *arg, ok_provider **out);

typedef struct {
    open_fn open;
    const void *arg;
    const ok_edk *edk;
    double seconds;
    pthread_barrier_t *ready;
    unsigned long n;
    double elapsed;
} remote_ctx;

static void die_provider(const char *what)
{
    fprintf(stderr, "bench_providers: %s: %s\n", what, ok_err_message());
    exit(1);
}

static void *run_remote_thread(void *arg)
{
    remote_ctx *c = arg;
    ok_provider *p = NULL;
    uint8_t out[32];
    if (c->open(c->arg, &p) != OK_OK)
        die_provider("open");
    if (ok_provider_unwrap(p, c->edk, out, 32) != OK_OK) /* connects: not part of the timing */
        die_provider("unwrap");
    pthread_barrier_wait(c->ready);
    double t0 = now_s();
    do {
        if (ok_provider_unwrap(p, c->edk, out, 32) != OK_OK)
            die_provider("unwrap");
        c->n++;
    } while ((c->elapsed = now_s() - t0) < c->seconds);
    ok_zeroize(out, sizeof out);
    ok_provider_free(p);
    return NULL;
}

/* Sum over threads of each thread's ops/s. */
static double run_remote(open_fn open, const void *arg, const ok_edk *edk, double seconds, int threads)
{
    pthread_t th[64];
    remote_ctx c[64];
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        c[i] = (remote_ctx){open, arg, edk, seconds, &ready, 0, 0};
        pthread_create(&th[i], NULL, run_remote_thread, &c[i]);
    }
    double rate = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        rate += c[i].n / c[i].elapsed;
    }
    pthread_barrier_destroy(&ready);
    return rate;
}

/* One key of a remote provider: wraps a data key once, then unwraps it with 1 and 2 threads, best of 3. */
static void bench_remote(const char *name, const char *kind, open_fn open, const void *arg, const char *note)
{
    ok_provider *p = NULL;
    if (open(arg, &p) != OK_OK)
        die_provider(kind);
    uint8_t dek[32] = {1, 2, 3};
    ok_edk edk = {0};
    if (ok_provider_wrap(p, dek, 32, &edk) != OK_OK)
        die_provider("wrap");
    ok_provider_free(p);
    for (int threads = 1; threads <= 2; threads++) {
        double best = 0;
        for (int r = 0; r < 3; r++) {
            double v = run_remote(open, arg, &edk, opt.seconds, threads);
            best = v > best ? v : best;
        }
        printf("%-8s %-16s %-6s provider (%d thr) %10.0f ops/s   (%s)\n", name, edk.wrap_alg, kind, threads, best,
               note);
    }
    ok_edk_clear(&edk);
}

static ok_err open_vault(const void *arg, ok_provider **out)
{
    return ok_vault_provider_from_env(arg, out);
}

static ok_err open_kmip(const void *arg, ok_provider **out)
{
    return ok_kmip_provider_open(arg, out);
}

/* The KMIP key: located by name, created (and activated) when the server has none. */
static void kmip_ensure_key(void)
{
    ok_kmip_client_config cc = {.host = opt.kmip_host, .port = opt.kmip_port, .cert_file = opt.kmip_cert,
                                .key_file = opt.kmip_key, .ca_file = opt.kmip_ca, .timeout_ms = 30000};
    ok_kmip_client *c = NULL;
    char uid[OK_KMIP_UID_MAX];
    if (ok_kmip_client_new(&cc, &c) != OK_OK)
        die_provider("kmip client");
    ok_err rc = ok_kmip_locate_name(c, opt.kmip_name, uid);
    if (rc == OK_ERR_NOT_FOUND)
        rc = ok_kmip_create_aes256(c, opt.kmip_name, uid);
    if (rc != OK_OK)
        die_provider("kmip key");
    ok_kmip_client_free(c);
}

static void bench_pkcs11_section(int cores)
{
    ok_p11_module *mod = NULL;
    if (ok_p11_module_get(opt.module, &mod) != OK_OK)
        die_provider("pkcs11 module");
    CK_FUNCTION_LIST *f = ok_p11_module_functions(mod);
    /* The direct side: its own session on the token, logged in with the same PIN. */
    CK_SLOT_ID slots[16];
    CK_ULONG ns = 16;
    CK_SLOT_ID slot = 0;
    int found = 0;
    f->C_GetSlotList(CK_TRUE, slots, &ns);
    for (CK_ULONG i = 0; i < ns && !found; i++) {
        CK_TOKEN_INFO ti;
        size_t n = strlen(opt.token);
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && n <= sizeof ti.label && memcmp(ti.label, opt.token, n) == 0 &&
            (n == sizeof ti.label || ti.label[n] == ' '))
            slot = slots[i], found = 1;
    }
    char pin[128] = {0};
    FILE *pf = fopen(opt.pin_file, "r");
    if (!found || !pf || !fgets(pin, sizeof pin, pf)) {
        fprintf(stderr, "bench_providers: token %s or PIN file not found\n", opt.token);
        exit(1);
    }
    fclose(pf);
    pin[strcspn(pin, "\r\n")] = 0;
    CK_SESSION_HANDLE s;
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
        fprintf(stderr, "bench_providers: C_OpenSession failed\n");
        exit(1);
    }
    CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
    ok_zeroize(pin, sizeof pin);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        fprintf(stderr, "bench_providers: login refused\n");
        exit(1);
    }
    printf("pkcs11: best of 3 runs of %.1f s each, alternating direct and provider:\n", opt.seconds);
    bench_key("AES-256", opt.aes, 0, f, s, cores);
    bench_key("RSA-3072", opt.rsa, 1, f, s, cores);
    f->C_CloseSession(s);
    ok_p11_module_put(mod);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--module") == 0)
            opt.module = v;
        else if (strcmp(a, "--token") == 0)
            opt.token = v;
        else if (strcmp(a, "--pin-file") == 0)
            opt.pin_file = v;
        else if (strcmp(a, "--aes") == 0)
            opt.aes = v;
        else if (strcmp(a, "--rsa") == 0)
            opt.rsa = v;
        else if (strcmp(a, "--vault-oct") == 0)
            opt.vault_oct = v;
        else if (strcmp(a, "--vault-rsa") == 0)
            opt.vault_rsa = v;
        else if (strcmp(a, "--kmip-host") == 0)
            opt.kmip_host = v;
        else if (strcmp(a, "--kmip-port") == 0)
            opt.kmip_port = (unsigned)atoi(v);
        else if (strcmp(a, "--kmip-cert") == 0)
            opt.kmip_cert = v;
        else if (strcmp(a, "--kmip-key") == 0)
            opt.kmip_key = v;
        else if (strcmp(a, "--kmip-ca") == 0)
            opt.kmip_ca = v;
        else if (strcmp(a, "--kmip-name") == 0)
            opt.kmip_name = v;
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = atof(v);
        else {
            fprintf(stderr, "bench_providers: unknown option %s\n", a);
            return 2;
        }
    }
    int p11 = opt.module || opt.token || opt.pin_file;
    int kmip = opt.kmip_host != NULL;
    if ((p11 && (!opt.module || !opt.token || !opt.pin_file)) ||
        (kmip && (!opt.kmip_cert || !opt.kmip_key || !opt.kmip_ca)) || opt.seconds <= 0 ||
        (!p11 && !kmip && !opt.vault_oct && !opt.vault_rsa)) {
        fprintf(stderr, "usage: bench_providers [--module PATH --token LABEL --pin-file PATH [--aes LABEL] "
                        "[--rsa LABEL]] [--vault-oct URL] [--vault-rsa URL] [--kmip-host H --kmip-port P "
                        "--kmip-cert PEM --kmip-key PEM --kmip-ca PEM [--kmip-name NAME]] [--seconds N]\n");
        return 2;
    }
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores < 1 ? 1 : cores > 64 ? 64 : cores;
    printf("data-key (32 B) unwrap ops/s\n");
    if (p11)
        bench_pkcs11_section(cores);
    if (opt.vault_oct || opt.vault_rsa) {
        printf("vault: best of 3 runs of %.1f s each, one provider (HTTPS keep-alive connection) per thread:\n",
               opt.seconds);
        if (opt.vault_oct)
            bench_remote("oct-256", "vault", open_vault, opt.vault_oct, "HTTPS + audit per call");
        if (opt.vault_rsa)
            bench_remote("RSA-3072", "vault", open_vault, opt.vault_rsa, "HTTPS + audit per call");
    }
    if (kmip) {
        kmip_ensure_key();
        ok_kmip_config cfg = {.host = opt.kmip_host, .port = opt.kmip_port, .key_name = opt.kmip_name,
                              .cert_file = opt.kmip_cert, .key_file = opt.kmip_key, .ca_file = opt.kmip_ca,
                              .timeout_ms = 30000};
        ok_provider *p = NULL;
        if (ok_kmip_provider_open(&cfg, &p) != OK_OK)
            die_provider("kmip");
        printf("kmip (KMIP %s): best of 3 runs of %.1f s each, one provider (mutual-TLS connection) per thread:\n",
               ok_kmip_provider_version(p), opt.seconds);
        ok_provider_free(p);
        bench_remote("AES-256", "kmip", open_kmip, &cfg, "server-side Decrypt");
    }
    return 0;
}
