/* ownkey crypto layer: every primitive ownkey uses, on OpenSSL 3 libcrypto only. AEAD (AES-GCM), key
 * wrap (RFC 3394 / RFC 5649), RSA (OAEP, PKCS#1 v1.5), signatures (RS/PS/ES), HKDF, HMAC, randomness,
 * constant-time compare, and asymmetric key objects with JWK conversion. Knows nothing of formats,
 * providers or vaults. */
#ifndef OWNKEY_CRYPTO_H
#define OWNKEY_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

#define OK_AES256_KEY_LEN 32
#define OK_GCM_IV_LEN 12
#define OK_GCM_TAG_LEN 16
#define OK_SHA256_LEN 32
#define OK_HKDF_SHA256_MAX (255u * 32u)

/* ---- Randomness and comparisons ----------------------------------------------------------------- */
ok_err ok_random(void *out, size_t len);
/* 1 if the n bytes are equal, 0 otherwise; time depends only on n. */
int ok_ct_equal(const void *a, const void *b, size_t n);

/* ---- AES-GCM ------------------------------------------------------------------------------------
 * Keys of 16, 24 or 32 bytes; IVs of 1..128 bytes (OpenSSL 3.0's limit; 12 recommended and the only length ownkey's formats
 * use); 16-byte tags. Decryption returns OK_ERR_AUTH on a bad tag and then zeroizes the output. */
ok_err ok_aes_gcm_encrypt(const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                          uint8_t *ct, uint8_t tag[OK_GCM_TAG_LEN]);
ok_err ok_aes_gcm_decrypt(const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                          const uint8_t tag[OK_GCM_TAG_LEN], uint8_t *pt);

/* Incremental AES-GCM: the key schedule is set once, then any number of messages each with its own
 * IV (begin, aad*, update*, finish). One context per thread. In-place (in == out) is allowed. */
typedef struct ok_gcm ok_gcm;
ok_err ok_gcm_new(ok_gcm **out, const uint8_t *key, size_t key_len);
void ok_gcm_free(ok_gcm *g);
ok_err ok_gcm_begin(ok_gcm *g, int encrypt, const uint8_t *iv, size_t iv_len);
ok_err ok_gcm_aad(ok_gcm *g, const uint8_t *aad, size_t len);
ok_err ok_gcm_update(ok_gcm *g, const uint8_t *in, size_t len, uint8_t *out);
ok_err ok_gcm_finish_encrypt(ok_gcm *g, uint8_t tag[OK_GCM_TAG_LEN]);
ok_err ok_gcm_finish_decrypt(ok_gcm *g, const uint8_t tag[OK_GCM_TAG_LEN]); /* OK_ERR_AUTH on mismatch */
/* One whole message with a 12-byte IV. */
ok_err ok_gcm_seal(ok_gcm *g, const uint8_t iv[OK_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OK_GCM_TAG_LEN]);
ok_err ok_gcm_open(ok_gcm *g, const uint8_t iv[OK_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, const uint8_t tag[OK_GCM_TAG_LEN], uint8_t *out);

/* ---- AES key wrap --------------------------------------------------------------------------------
 * KW (RFC 3394): input a non-empty multiple of 8 bytes (at least 16), output in_len + 8.
 * KWP (RFC 5649): input 1..(2^32-1) bytes, output ((in_len + 7) / 8) * 8 + 8.
 * Unwrap returns OK_ERR_AUTH on an integrity failure. *out_len is set to the bytes written; the out
 * buffer must hold the wrapped size above (KW: in_len + 8; KWP: in_len rounded up to 8, plus 8) or
 * in_len (unwrap). KEKs of 16, 24 or 32 bytes. */
ok_err ok_aes_kw_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                      uint8_t *out, size_t *out_len);
ok_err ok_aes_kw_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                        uint8_t *out, size_t *out_len);
ok_err ok_aes_kwp_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len);
ok_err ok_aes_kwp_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                         uint8_t *out, size_t *out_len);

/* ---- HKDF and HMAC ------------------------------------------------------------------------------ */
/* HKDF-SHA256 (RFC 5869) extract+expand. out_len 1..8160, else OK_ERR_INVALID_ARG. */
ok_err ok_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);
ok_err ok_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                      uint8_t out[OK_SHA256_LEN]);
ok_err ok_sha256(const uint8_t *msg, size_t len, uint8_t out[OK_SHA256_LEN]);
/* scrypt (RFC 7914) for passphrases: n a power of two >= 2, r and p >= 1, out_len 1..64. Parameters needing
 * more than 1 GiB (128 * r * n bytes) or p > 16 are OK_ERR_LIMIT, so stored parameters cannot exhaust memory. */
#define OK_SCRYPT_MAX_MEM (1024u * 1024u * 1024u)
ok_err ok_scrypt(const uint8_t *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n, uint32_t r,
                 uint32_t p, uint8_t *out, size_t out_len);

/* ---- Asymmetric keys ------------------------------------------------------------------------------
 * An ok_pkey is an RSA or EC key, private (holding its public half) or public only. */
typedef struct ok_pkey ok_pkey;
typedef enum { OK_PKEY_RSA = 1, OK_PKEY_EC = 2 } ok_pkey_type;
typedef enum { OK_CURVE_P256 = 1, OK_CURVE_P384 = 2 } ok_curve;

ok_err ok_pkey_generate_rsa(ok_pkey **out, unsigned bits); /* 2048, 3072 or 4096 */
ok_err ok_pkey_generate_ec(ok_pkey **out, ok_curve curve);
/* DER: PKCS#8 PrivateKeyInfo (is_private) or SubjectPublicKeyInfo. PEM: either kind. */
ok_err ok_pkey_from_der(ok_pkey **out, const uint8_t *der, size_t len, int is_private);
ok_err ok_pkey_from_pem(ok_pkey **out, const char *pem, size_t len);
/* RSA public key from big-endian modulus and exponent (leading zero bytes allowed). */
ok_err ok_pkey_rsa_from_public(ok_pkey **out, const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len);
ok_err ok_pkey_public_der(const ok_pkey *k, uint8_t **der, size_t *len); /* SPKI, malloc'ed */
/* PKCS#8 PrivateKeyInfo of a private key, in ok_secure_alloc memory: free with ok_secure_free(*der, *len).
 * OK_ERR_KEY for a public-only key. Reads back with ok_pkey_from_der(..., 1). */
ok_err ok_pkey_private_der(const ok_pkey *k, uint8_t **der, size_t *len);
ok_err ok_pkey_public_copy(const ok_pkey *k, ok_pkey **out);  /* a public-only copy */
/* Another handle on the same key (reference counted; keys are immutable once made). */
ok_err ok_pkey_share(const ok_pkey *k, ok_pkey **out);
void ok_pkey_free(ok_pkey *k);
ok_pkey_type ok_pkey_kind(const ok_pkey *k);
int ok_pkey_is_private(const ok_pkey *k);
unsigned ok_pkey_bits(const ok_pkey *k);
size_t ok_pkey_size(const ok_pkey *k); /* modulus bytes (RSA); raw signature bytes (EC: 2 * field) */
/* For the layers above that must reach OpenSSL directly (TLS, PKCS#11 glue): an EVP_PKEY *. */
void *ok_pkey_evp(const ok_pkey *k);

/* ---- RSA encryption ------------------------------------------------------------------------------
 * out must hold ok_pkey_size(k) bytes; *out_len receives the length written. Decryption failures of any
 * kind (padding, length, label) return one uniform OK_ERR_AUTH with no detail. */
typedef enum { OK_HASH_SHA1 = 1, OK_HASH_SHA224, OK_HASH_SHA256, OK_HASH_SHA384, OK_HASH_SHA512 } ok_hash;
ok_err ok_rsa_oaep_encrypt(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, const uint8_t *label,
                           size_t label_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);
ok_err ok_rsa_oaep_decrypt(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, const uint8_t *label,
                           size_t label_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);
ok_err ok_rsa_pkcs1_encrypt(const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);
ok_err ok_rsa_pkcs1_decrypt(const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

/* ---- Signatures ---------------------------------------------------------------------------------
 * JOSE algorithms over a message (the hash is computed inside). ES* signatures are raw r||s as JOSE
 * wants; OK_SIG_ES256_DER takes/produces an ASN.1 DER ECDSA-Sig-Value instead. PS* use MGF1 with the
 * same hash and a salt as long as the hash. Verify returns OK_OK or OK_ERR_AUTH. sig must hold
 * ok_pkey_size(k) bytes (DER: ok_pkey_size(k) + 16). */
typedef enum {
    OK_SIG_RS256 = 1, OK_SIG_RS384, OK_SIG_RS512,
    OK_SIG_PS256, OK_SIG_PS384, OK_SIG_PS512,
    OK_SIG_ES256, OK_SIG_ES384,
    OK_SIG_ES256_DER,
} ok_sig_alg;
ok_err ok_sign(const ok_pkey *k, ok_sig_alg alg, const uint8_t *msg, size_t msg_len, uint8_t *sig, size_t *sig_len);
ok_err ok_verify(const ok_pkey *k, ok_sig_alg alg, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                 size_t sig_len);
/* The same over a digest the caller computed (Azure Key Vault's sign/verify): len must equal the algorithm's
 * hash length (32, 48, 64), else OK_ERR_INVALID_ARG. RS* builds the DigestInfo; PS* and ES* as above. */
ok_err ok_sign_digest(const ok_pkey *k, ok_sig_alg alg, const uint8_t *digest, size_t len, uint8_t *sig,
                      size_t *sig_len);
ok_err ok_verify_digest(const ok_pkey *k, ok_sig_alg alg, const uint8_t *digest, size_t len, const uint8_t *sig,
                        size_t sig_len);
/* Generic forms for test vectors and the vault: RSASSA-PKCS1-v1_5 or RSASSA-PSS with explicit hashes and
 * salt length (bytes). */
ok_err ok_rsa_pkcs1_sign(const ok_pkey *k, ok_hash hash, const uint8_t *msg, size_t msg_len, uint8_t *sig, size_t *sig_len);
ok_err ok_rsa_pkcs1_verify(const ok_pkey *k, ok_hash hash, const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len);
ok_err ok_rsa_pss_verify(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, int salt_len, const uint8_t *msg,
                         size_t msg_len, const uint8_t *sig, size_t sig_len);

/* ---- JWK (RFC 7517/7518) ------------------------------------------------------------------------
 * A parsed JWK: an oct key (k), or an RSA/EC key as ok_pkey. kid and alg are optional strings. */
typedef struct {
    enum { OK_JWK_OCT = 1, OK_JWK_RSA, OK_JWK_EC } kty;
    char *kid;        /* NULL if absent */
    char *alg;        /* NULL if absent */
    uint8_t *k;       /* oct: secure memory, k_len bytes */
    size_t k_len;
    ok_pkey *pkey;    /* RSA/EC */
} ok_jwk;

#define OK_JWK_MAX_LEN (64u * 1024u) /* refuse larger JWK texts before parsing */
/* Parses JSON text. Refuses unknown kty, missing or malformed members, inconsistent RSA keys, keys
 * of unsupported sizes (RSA < 2048 or > 8192 bits). */
ok_err ok_jwk_parse(const char *json, size_t len, ok_jwk **out);
/* Serializes; with include_private = 0 only the public half (refused for oct). malloc'ed text. */
ok_err ok_jwk_serialize(const ok_jwk *jwk, int include_private, char **out);
void ok_jwk_free(ok_jwk *jwk);
/* RFC 7638 thumbprint of the public key (RSA/EC), base64url. malloc'ed. */
ok_err ok_jwk_thumbprint(const ok_pkey *k, char **out);

#endif
