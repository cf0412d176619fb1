/* The server's TLS files: reading the PEM certificate and key it serves, and making the self-signed
 * certificate ownkeyd uses when none is given (EC P-256, one year, SAN DNS:localhost and IP:127.0.0.1,
 * CA:TRUE so that clients can trust the certificate itself). Files are written atomically (temporary
 * file, fsync, rename, fsync of the directory); the key is mode 0600 from its creation. Knows nothing of
 * libmicrohttpd. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http/server_internal.h"

#define PEM_MAX (1024u * 1024u)
#define CERT_DAYS 365

static ok_err ssl_fail(const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return ok_fail(OK_ERR_CRYPTO, "%s: %s", what, reason);
}

ok_err ok_http_read_pem(const char *path, char **out, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ok_fail(OK_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > PEM_MAX) {
        close(fd);
        return ok_fail(OK_ERR_IO, "%s: not a regular PEM file of at most %u bytes", path, PEM_MAX);
    }
    size_t len = (size_t)st.st_size, got = 0;
    char *text = ok_secure_alloc(len + 1);
    if (!text) {
        close(fd);
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes for %s", len + 1, path);
    }
    while (got < len) {
        ssize_t n = read(fd, text + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            ok_secure_free(text, len + 1);
            return ok_fail(OK_ERR_IO, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
        }
        got += (size_t)n;
    }
    close(fd);
    text[len] = '\0';
    *out = text;
    *cap = len + 1;
    return OK_OK;
}

/* ---- Writing files atomically ---------------------------------------------------------------------- */

static ok_err write_all(int fd, const char *data, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ok_fail(OK_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return OK_OK;
}

static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

/* Writes data to path through a temporary file in the same directory, created with mode. */
static ok_err write_atomically(const char *path, const char *data, size_t len, mode_t mode)
{
    size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
    char *tmp = malloc(n);
    if (!tmp)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate a path");
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 from the start */
    if (fd < 0) {
        ok_err rc = ok_fail(OK_ERR_IO, "cannot create a file beside %s: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    ok_err rc = write_all(fd, data, len, tmp);
    if (rc == OK_OK && fchmod(fd, mode) != 0)
        rc = ok_fail(OK_ERR_IO, "cannot set the mode of %s: %s", tmp, strerror(errno));
    if (rc == OK_OK && fsync(fd) != 0)
        rc = ok_fail(OK_ERR_IO, "cannot fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == OK_OK)
        rc = ok_fail(OK_ERR_IO, "cannot close %s: %s", tmp, strerror(errno));
    if (rc == OK_OK && rename(tmp, path) != 0)
        rc = ok_fail(OK_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != OK_OK)
        unlink(tmp);
    else
        fsync_parent(path);
    free(tmp);
    return rc;
}

/* Writes the contents of a memory BIO to path. */
static ok_err write_bio(BIO *bio, const char *path, mode_t mode)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data)
        return ok_fail(OK_ERR_CRYPTO, "empty PEM output for %s", path);
    return write_atomically(path, data, (size_t)len, mode);
}

/* ---- The certificate -------------------------------------------------------------------------------- */

static ok_err add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return ssl_fail("cannot build a certificate extension");
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? OK_OK : ssl_fail("cannot add a certificate extension");
}

/* A positive random 128-bit serial number. */
static ok_err set_serial(X509 *cert)
{
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return ssl_fail("RAND_bytes");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; /* never zero, never shorter than the others by chance */
    BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    ok_err rc = OK_OK;
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        rc = ssl_fail("cannot set the serial number");
    BN_free(bn);
    return rc;
}

static ok_err build_cert(EVP_PKEY *key, X509 *cert)
{
    if (!X509_set_version(cert, X509_VERSION_3))
        return ssl_fail("X509_set_version");
    OK_GUARD(set_serial(cert));
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), (long)CERT_DAYS * 86400))
        return ssl_fail("cannot set the validity period");
    if (!X509_set_pubkey(cert, key))
        return ssl_fail("X509_set_pubkey");
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ownkey", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) ||
        !X509_set_issuer_name(cert, name))
        return ssl_fail("cannot set the certificate names");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    OK_GUARD(add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
    OK_GUARD(add_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign"));
    OK_GUARD(add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth"));
    OK_GUARD(add_ext(cert, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"));
    OK_GUARD(add_ext(cert, &ctx, NID_subject_key_identifier, "hash"));
    OK_GUARD(add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!X509_sign(cert, key, EVP_sha256()))
        return ssl_fail("cannot sign the certificate");
    return OK_OK;
}

ok_err ok_http_ensure_self_signed(const char *cert_path, const char *key_path)
{
    if (!cert_path || !key_path)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_http_ensure_self_signed: missing path");
    if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
        return OK_OK;

    ok_err rc = OK_OK;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIO *key_pem = BIO_new(BIO_s_secmem()); /* cleared when freed */
    BIO *cert_pem = BIO_new(BIO_s_mem());
    if (!key || !cert || !key_pem || !cert_pem) {
        rc = ssl_fail("cannot generate the TLS key");
        goto done;
    }
    OK_GUARD_GOTO(rc, build_cert(key, cert), done);
    if (!PEM_write_bio_PrivateKey(key_pem, key, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509(cert_pem, cert)) {
        rc = ssl_fail("cannot encode the TLS key and certificate");
        goto done;
    }
    /* The key first: a crash between the two leaves no certificate, so the next start makes both again. */
    OK_GUARD_GOTO(rc, write_bio(key_pem, key_path, 0600), done);
    OK_GUARD_GOTO(rc, write_bio(cert_pem, cert_path, 0644), done);
done:
    BIO_free(cert_pem);
    BIO_free(key_pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}
