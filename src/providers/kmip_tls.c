/* The kmip provider's transport: one TCP connection with a connect timeout, then mutual TLS 1.2+ with
 * OpenSSL (client certificate and key, the configured CA, the server's name or IP checked against its
 * certificate), and exact reads and writes with I/O timeouts. SIGPIPE is blocked around TLS writes so a
 * closed connection is an error, not a dead process. Knows nothing of KMIP messages (kmip_client.c). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "providers/kmip_client.h"

/* The most useful line of OpenSSL's error queue (which it then clears). */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!last)
        return "connection closed";
    ERR_error_string_n(last, buf, len);
    const char *r = ERR_reason_error_string(last);
    if (r)
        snprintf(buf, len, "%s", r);
    return buf;
}

static ok_err make_ctx(SSL_CTX **out, const ok_kmip_client_config *cfg)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return ok_fail(OK_ERR_CRYPTO, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ok_err rc = OK_OK;
    if (!cfg->ca_file || !*cfg->ca_file)
        rc = ok_fail(OK_ERR_KEY, "no CA file for the KMIP server");
    else if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1)
        rc = ok_fail(OK_ERR_KEY, "cannot load KMIP CA file %s: %s", cfg->ca_file, ssl_reason(why, sizeof why));
    else if (!cfg->cert_file || !*cfg->cert_file || !cfg->key_file || !*cfg->key_file)
        rc = ok_fail(OK_ERR_KEY, "KMIP needs a client certificate and key");
    else if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
        rc = ok_fail(OK_ERR_KEY, "cannot load KMIP client certificate %s: %s", cfg->cert_file,
                     ssl_reason(why, sizeof why));
    else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1)
        rc = ok_fail(OK_ERR_KEY, "cannot load KMIP client key %s: %s", cfg->key_file, ssl_reason(why, sizeof why));
    else if (SSL_CTX_check_private_key(ctx) != 1)
        rc = ok_fail(OK_ERR_KEY, "KMIP client key %s does not match certificate %s", cfg->key_file, cfg->cert_file);
    if (rc != OK_OK) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return OK_OK;
}

static void set_io_timeout(int fd, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A connected blocking socket, or -1 with errno-derived detail in why. */
static int tcp_connect(const ok_kmip_client_config *cfg, char *why, size_t why_len)
{
    char port[16];
    snprintf(port, sizeof port, "%u", cfg->port ? cfg->port : OK_KMIP_DEFAULT_PORT);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(cfg->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_len, "%s", gai_strerror(gai));
        return -1;
    }
    long timeout = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    int fd = -1;
    snprintf(why, why_len, "no address");
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int n = poll(&pfd, 1, (int)timeout);
                socklen_t sl = sizeof err;
                if (n == 0)
                    err = ETIMEDOUT;
                else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
                    err = errno;
            }
        }
        if (err) {
            snprintf(why, why_len, "%s", strerror(err));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        set_io_timeout(fd, cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000);
    }
    return fd;
}

/* Runs an OpenSSL call with SIGPIPE blocked, discarding a SIGPIPE it raised. */
#define WITHOUT_SIGPIPE(stmt)                                                                                  \
    do {                                                                                                       \
        sigset_t pipe_set_, old_set_, pending_;                                                                \
        sigemptyset(&pipe_set_);                                                                               \
        sigaddset(&pipe_set_, SIGPIPE);                                                                        \
        pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_set_);                                                     \
        sigpending(&pending_);                                                                                 \
        int was_pending_ = sigismember(&pending_, SIGPIPE);                                                    \
        stmt;                                                                                                  \
        sigpending(&pending_);                                                                                 \
        if (!was_pending_ && sigismember(&pending_, SIGPIPE)) {                                                \
            struct timespec zero_ = {0, 0};                                                                    \
            sigtimedwait(&pipe_set_, NULL, &zero_);                                                            \
        }                                                                                                      \
        pthread_sigmask(SIG_SETMASK, &old_set_, NULL);                                                         \
    } while (0)

ok_err ok_kmip_tls_open(ok_kmip_tls *t, const ok_kmip_client_config *cfg, const char *server)
{
    t->fd = -1;
    t->ssl = NULL;
    if (!t->ctx) {
        SSL_CTX *ctx = NULL;
        OK_GUARD(make_ctx(&ctx, cfg));
        t->ctx = ctx;
    }
    char why[256];
    int fd = tcp_connect(cfg, why, sizeof why);
    if (fd < 0)
        return ok_fail(OK_ERR_IO, "KMIP server %s unreachable: %s", server, why);
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        close(fd);
        return ok_fail(OK_ERR_CRYPTO, "cannot set up TLS");
    }
    /* The certificate must name the host: an IP SAN for an IP literal, else a DNS name (and SNI). */
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, cfg->host, ip) == 1 || inet_pton(AF_INET6, cfg->host, ip) == 1;
    int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cfg->host)
                    : (SSL_set1_host(ssl, cfg->host) && SSL_set_tlsext_host_name(ssl, cfg->host));
    if (set != 1) {
        SSL_free(ssl);
        close(fd);
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP host name %s cannot be checked", cfg->host);
    }
    int r = 0;
    WITHOUT_SIGPIPE(r = SSL_connect(ssl));
    if (r != 1) {
        long verify = SSL_get_verify_result(ssl);
        const char *reason = ssl_reason(why, sizeof why);
        ok_err rc = verify != X509_V_OK
                        ? ok_fail(OK_ERR_IO, "TLS handshake with KMIP server %s failed: its certificate is not trusted (%s)",
                                  server, X509_verify_cert_error_string(verify))
                        : ok_fail(OK_ERR_IO, "TLS handshake with KMIP server %s failed: %s (is the client certificate "
                                  "accepted by the server?)", server, reason);
        SSL_free(ssl);
        close(fd);
        return rc;
    }
    t->ssl = ssl;
    t->fd = fd;
    return OK_OK;
}

void ok_kmip_tls_close(ok_kmip_tls *t)
{
    if (t->ssl) {
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); /* no close_notify round trip */
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

ok_err ok_kmip_tls_write(ok_kmip_tls *t, const uint8_t *p, size_t len)
{
    if (!t->ssl)
        return ok_fail(OK_ERR_IO, "not connected");
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        int r = 0;
        WITHOUT_SIGPIPE(r = SSL_write_ex(t->ssl, p + done, len - done, &n));
        if (r != 1) {
            char why[256];
            int e = errno;
            const char *reason = ssl_reason(why, sizeof why);
            return ok_fail(OK_ERR_IO, "%s", e == EAGAIN || e == EWOULDBLOCK ? "timed out" : reason);
        }
        done += n;
    }
    return OK_OK;
}

ok_err ok_kmip_tls_read(ok_kmip_tls *t, uint8_t *p, size_t len, size_t *got)
{
    *got = 0;
    if (!t->ssl)
        return ok_fail(OK_ERR_IO, "not connected");
    while (*got < len) {
        size_t n = 0;
        errno = 0;
        int r = 0;
        WITHOUT_SIGPIPE(r = SSL_read_ex(t->ssl, p + *got, len - *got, &n));
        if (r != 1) {
            char why[256];
            int e = errno;
            const char *reason = ssl_reason(why, sizeof why);
            return ok_fail(OK_ERR_IO, "%s", e == EAGAIN || e == EWOULDBLOCK ? "timed out" : reason);
        }
        *got += n;
    }
    return OK_OK;
}
