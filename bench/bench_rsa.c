/* bench_rsa: RSA-OAEP-256 decryptions per second of a 32-byte key through ownkey's crypto layer
 * (ok_rsa_oaep_decrypt), in-process, on N threads sharing one key as the vault's threads do. Run by
 * bench/vault beside `openssl speed`, so the report separates what the crypto layer costs from what the
 * server adds around it.
 * Usage: bench_rsa BITS THREADS SECONDS -> prints "decrypts/s". */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ownkey/crypto.h"

static ok_pkey *key;
static uint8_t ct[512];
static size_t ct_len;
static atomic_int stop, failed;
static atomic_long done;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    (void)arg;
    uint8_t out[512];
    while (!atomic_load(&stop)) {
        size_t n = 0;
        if (ok_rsa_oaep_decrypt(key, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, ct, ct_len, out, &n) != OK_OK || n != 32)
            atomic_store(&failed, 1);
        atomic_fetch_add(&done, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned bits = argc > 1 ? (unsigned)atoi(argv[1]) : 2048;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    double seconds = argc > 3 ? atof(argv[3]) : 5;
    if (threads < 1 || threads > 256 || seconds <= 0) {
        fprintf(stderr, "usage: bench_rsa BITS THREADS SECONDS\n");
        return 2;
    }
    uint8_t dek[32] = {1, 2, 3};
    if (ok_pkey_generate_rsa(&key, bits) != OK_OK ||
        ok_rsa_oaep_encrypt(key, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, dek, sizeof dek, ct, &ct_len) != OK_OK) {
        fprintf(stderr, "bench_rsa: cannot make the key: %s\n", ok_err_message());
        return 1;
    }
    pthread_t tid[256];
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, run, NULL);
    while (now_s() - t0 < seconds) {
        struct timespec nap = {0, 50 * 1000000L};
        nanosleep(&nap, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double elapsed = now_s() - t0;
    ok_pkey_free(key);
    if (atomic_load(&failed)) {
        fprintf(stderr, "bench_rsa: a decryption failed\n");
        return 1;
    }
    printf("%.0f\n", (double)atomic_load(&done) / elapsed);
    return 0;
}
