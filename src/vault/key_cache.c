/* The cache of unsealed key material for the crypto operations. Opening a version's material means an
 * AES-GCM open and, for RSA and EC, a PKCS#8 parse whose fresh key then needs its Montgomery and blinding
 * set-up: measured on RSA-2048 that is about twice the private-key operation itself, which would keep
 * the vault far from the throughput of the primitive. So the operations keep what they opened here, keyed
 * by (name, version) — material never changes under a version, which is 128 random bits — bounded to
 * CACHE_MAX entries (least recently used evicted). Entries hold a reference on the key object (OpenSSL
 * cleanses it when the last reference goes) or the oct key in secure memory. The cache is emptied when the
 * vault seals (under the exclusive seal lock, so no operation holds the lock or reads the cache then) and
 * a name's entries go when the name is purged. Owns no decision about what may be used (key_ops.c). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"
#include "vault/modules.h"

#define CACHE_MAX 1024
#define BUCKETS 2048

typedef struct cache_entry {
    struct cache_entry *next;
    char name[OK_KEY_NAME_MAX + 1];
    char version[OK_KEY_VERSION_LEN + 1];
    ok_key_material m;
    uint64_t used;
} cache_entry;

struct ok_key_cache {
    pthread_mutex_t lock;
    cache_entry *buckets[BUCKETS];
    size_t count;
    uint64_t clock;
};

ok_err ok_key_cache_new(ok_vault *v)
{
    struct ok_key_cache *c = calloc(1, sizeof *c);

    if (c == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return ok_fail(OK_ERR_NOMEM, "key cache");
    }
    v->key_cache = c;
    return OK_OK;
}

static void entry_free(cache_entry *e)
{
    ok_key_material_clear(&e->m);
    ok_zeroize(e, sizeof *e);
    free(e);
}

static size_t bucket_of(const char *version)
{
    uint32_t h = 2166136261u; /* FNV-1a; versions are random, so any mixing will do */

    for (; *version; version++)
        h = (h ^ (uint8_t)*version) * 16777619u;
    return h % BUCKETS;
}

/* Removes the entries for which drop(e, arg) says so; the caller holds the lock. */
static void remove_if(struct ok_key_cache *c, int (*drop)(const cache_entry *, const void *), const void *arg)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        cache_entry **link = &c->buckets[b];
        while (*link != NULL) {
            cache_entry *e = *link;
            if (drop(e, arg)) {
                *link = e->next;
                entry_free(e);
                c->count--;
            } else {
                link = &e->next;
            }
        }
    }
}

static int drop_all(const cache_entry *e, const void *arg)
{
    (void)e;
    (void)arg;
    return 1;
}

static int drop_name(const cache_entry *e, const void *arg)
{
    return strcmp(e->name, (const char *)arg) == 0;
}

static int drop_oldest(const cache_entry *e, const void *arg)
{
    return e->used == *(const uint64_t *)arg;
}

void ok_key_cache_clear(ok_vault *v)
{
    struct ok_key_cache *c = v->key_cache;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    remove_if(c, drop_all, NULL);
    pthread_mutex_unlock(&c->lock);
}

void ok_key_cache_free(ok_vault *v)
{
    struct ok_key_cache *c = v->key_cache;

    if (c == NULL)
        return;
    remove_if(c, drop_all, NULL);
    pthread_mutex_destroy(&c->lock);
    free(c);
    v->key_cache = NULL;
}

void ok_key_cache_forget(ok_vault *v, const char *name)
{
    struct ok_key_cache *c = v->key_cache;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    remove_if(c, drop_name, name);
    pthread_mutex_unlock(&c->lock);
}

/* A copy the caller owns: another reference on the key object, or the oct key in new secure memory. */
static ok_err copy_material(const ok_key_material *from, ok_key_material *to)
{
    memset(to, 0, sizeof *to);
    to->kty = from->kty;
    to->bits = from->bits;
    to->curve = from->curve;
    if (from->pkey != NULL)
        return ok_pkey_share(from->pkey, &to->pkey);
    to->k = ok_secure_alloc(from->k_len);
    if (to->k == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    memcpy(to->k, from->k, from->k_len);
    to->k_len = from->k_len;
    return OK_OK;
}

int ok_key_cache_get(ok_vault *v, const char *name, const char *version, ok_key_material *out)
{
    struct ok_key_cache *c = v->key_cache;
    int hit = 0;

    memset(out, 0, sizeof *out);
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    for (cache_entry *e = c->buckets[bucket_of(version)]; e != NULL; e = e->next) {
        if (strcmp(e->version, version) == 0 && strcmp(e->name, name) == 0) {
            e->used = ++c->clock;
            hit = copy_material(&e->m, out) == OK_OK;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!hit)
        ok_key_material_clear(out);
    return hit;
}

void ok_key_cache_put(ok_vault *v, const char *name, const char *version, const ok_key_material *m)
{
    struct ok_key_cache *c = v->key_cache;
    cache_entry *e;
    size_t b = bucket_of(version);
    uint64_t oldest = UINT64_MAX;

    if (c == NULL || strlen(name) > OK_KEY_NAME_MAX || strlen(version) != OK_KEY_VERSION_LEN)
        return;
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return; /* a cache: failing to fill it only costs time */
    if (copy_material(m, &e->m) != OK_OK) {
        entry_free(e);
        return;
    }
    memcpy(e->name, name, strlen(name) + 1);
    memcpy(e->version, version, OK_KEY_VERSION_LEN + 1);
    pthread_mutex_lock(&c->lock);
    for (cache_entry *x = c->buckets[b]; x != NULL; x = x->next) {
        if (strcmp(x->version, version) == 0 && strcmp(x->name, name) == 0) {
            pthread_mutex_unlock(&c->lock); /* another thread was first */
            entry_free(e);
            return;
        }
    }
    if (c->count >= CACHE_MAX) {
        for (size_t i = 0; i < BUCKETS; i++) {
            for (cache_entry *x = c->buckets[i]; x != NULL; x = x->next)
                oldest = x->used < oldest ? x->used : oldest;
        }
        remove_if(c, drop_oldest, &oldest);
    }
    e->used = ++c->clock;
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->count++;
    pthread_mutex_unlock(&c->lock);
}
