/* ownkey vault: the tamper-evident audit log DIR/audit.log (issue 3 §5). Owns the file, its line format,
 * the MAC chain, and verification. Does not own: the audit key (seal.c derives it from the master key),
 * what a request's record says (the HTTP layer fills ok_audit_record), when records are written.
 *
 * Format: one JSON object per line, members in this order: time (RFC 3339 UTC, milliseconds),
 * request_id, identity, client, operation, key, version, status, error (code or null), latency_ms, then
 * either "mac":"<64 lowercase hex>" or "sealed":true,"mac":null. String values are reduced to printable
 * ASCII (other bytes become '?'), cut to 256 bytes, and whatever follows an "okt_" (a token's prefix)
 * is replaced by '*', so a token a client puts in, say, its request id never reaches the file (the
 * record's form is audit_line.c's).
 *
 * Chain. c_0 = 32 zero bytes; v->audit_prev_mac holds the current head. For each line i:
 *   - written while unsealed: canonical_i = the line without its last member (the bytes before
 *     ,"mac":" followed by "}"), mac_i = HMAC-SHA256(audit_key, c_{i-1} || canonical_i), c_i = mac_i;
 *   - written while sealed (there is no audit key): c_i = SHA-256(c_{i-1} || line_i), the whole line
 *     without its newline. The next MAC'd line chains over c_i and so proves every sealed line before
 *     it; with no sealed lines the chain is exactly mac_i = HMAC(key, mac_{i-1} || canonical_i).
 * Sealed lines are authentic only once a MAC'd line follows them (on the running vault, the in-memory
 * head also vouches for those this process wrote).
 *
 * Durability: each line is one write() on an O_APPEND descriptor under v->audit_lock, then fdatasync()
 * outside the lock (concurrent appenders share the file system's journal commits instead of queueing
 * behind one another); ok_vault_audit returns OK only after its own line is durable, and OK_ERR_IO
 * otherwise, so the caller fails the request. A short write is cut back off the file and leaves the
 * chain as it was. If fdatasync fails the line stays in the file and in the chain, and the request
 * fails, as does every later one until the log is opened again. The group commit and the callers that
 * must not block are audit_sync.c's.
 *
 * Open: a trailing fragment without a newline (a write cut short by a crash, never acknowledged) is
 * truncated away; the head is restored without the key from the last MAC'd line's "mac" plus the sealed
 * lines after it, so a vault that opens sealed can append at once.
 *
 * Verify: re-reads the file and names the first line (1-based) that is malformed, overlong, fails its
 * MAC, or (file verifier) is a trailing sealed line no MAC covers yet. On the running vault the final
 * head must also equal the in-memory head, which catches lines removed from the end (reported as
 * lines + 1). The log must not be rotated or edited by other tools. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ownkey/crypto.h"
#include "vault/audit_line.h"
#include "vault/audit_sync.h"
#include "vault/modules.h"

#define CHAIN_LEN 32
#define AUDIT_LINE_MAX 65536          /* longer lines are corrupt by definition (ours stay under 4 KiB) */
#define READ_CHUNK 4096

static const char MAC_MEMBER[] = ",\"mac\":\"";
#define MAC_MEMBER_LEN (sizeof MAC_MEMBER - 1)
#define MAC_SUFFIX_LEN (MAC_MEMBER_LEN + 2 * CHAIN_LEN + 2) /* ,"mac":"<hex>"} */
static const char SEALED_SUFFIX[] = ",\"sealed\":true,\"mac\":null}";
#define SEALED_SUFFIX_LEN (sizeof SEALED_SUFFIX - 1)

typedef enum { LINE_BAD = 0, LINE_MACED, LINE_SEALED } line_kind;

/* ---- Lines and the chain ------------------------------------------------------------------------------ */

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* What a line (without its newline) is; for a MAC'd line, its MAC. Says nothing of authenticity. */
static line_kind line_classify(const char *line, size_t len, uint8_t mac[CHAIN_LEN])
{
    if (len < 2 || line[0] != '{')
        return LINE_BAD;
    if (len > SEALED_SUFFIX_LEN && memcmp(line + len - SEALED_SUFFIX_LEN, SEALED_SUFFIX, SEALED_SUFFIX_LEN) == 0)
        return LINE_SEALED;
    if (len <= MAC_SUFFIX_LEN || memcmp(line + len - MAC_SUFFIX_LEN, MAC_MEMBER, MAC_MEMBER_LEN) != 0 ||
        line[len - 2] != '"' || line[len - 1] != '}')
        return LINE_BAD;
    const char *hex = line + len - MAC_SUFFIX_LEN + MAC_MEMBER_LEN;
    for (size_t i = 0; i < CHAIN_LEN; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return LINE_BAD;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return LINE_MACED;
}

/* out = HMAC(key, c || prefix || "}"): prefix is a line's bytes before its mac member. */
static ok_err chain_mac(const uint8_t key[CHAIN_LEN], const uint8_t c[CHAIN_LEN], const char *prefix, size_t len,
                        uint8_t out[CHAIN_LEN])
{
    size_t n = CHAIN_LEN + len + 1;
    uint8_t *msg = malloc(n);
    if (!msg)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    memcpy(msg, c, CHAIN_LEN);
    memcpy(msg + CHAIN_LEN, prefix, len);
    msg[n - 1] = '}';
    ok_err rc = ok_hmac_sha256(key, CHAIN_LEN, msg, n, out);
    free(msg);
    return rc;
}

/* out = SHA-256(c || line), for a line written while sealed. out may be c. */
static ok_err chain_fold(const uint8_t c[CHAIN_LEN], const char *line, size_t len, uint8_t out[CHAIN_LEN])
{
    uint8_t *msg = malloc(CHAIN_LEN + len);
    if (!msg)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    memcpy(msg, c, CHAIN_LEN);
    memcpy(msg + CHAIN_LEN, line, len);
    ok_err rc = ok_sha256(msg, CHAIN_LEN + len, out);
    free(msg);
    return rc;
}

/* ---- Building a record --------------------------------------------------------------------------------- */

/* ---- File helpers --------------------------------------------------------------------------------------- */

static ok_err io_fail(const char *what)
{
    return ok_fail(OK_ERR_IO, "audit log: %s failed (errno %d)", what, errno);
}

static ok_err pread_full(int fd, void *buf, size_t len, off_t at)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, at + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return io_fail("read");
        if (n == 0)
            return ok_fail(OK_ERR_TRUNCATED, "audit log: the file shrank while being read");
        done += (size_t)n;
    }
    return OK_OK;
}

/* One write() of the whole line; on a short write the partial line is cut off again. */
static ok_err append_line(int fd, const char *line, size_t len)
{
    ssize_t n;
    do
        n = write(fd, line, len);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)len)
        return OK_OK;
    if (n >= 0)
        errno = ENOSPC; /* a short write on a regular file: the device is full */
    ok_err rc = io_fail("write");
    if (n > 0) {
        off_t end = lseek(fd, 0, SEEK_CUR); /* O_APPEND: the end of what was just written */
        if (end >= n && ftruncate(fd, end - n) != 0) {
            /* nothing more to do: the fragment fails verification, and open drops it */
        }
    }
    return rc;
}

/* Offset just after the last '\n' before `end` (0 if none). */
static ok_err line_start_before(int fd, off_t end, off_t *start)
{
    char chunk[READ_CHUNK];
    off_t pos = end;
    while (pos > 0) {
        size_t n = pos < READ_CHUNK ? (size_t)pos : READ_CHUNK;
        off_t at = pos - (off_t)n;
        OK_GUARD(pread_full(fd, chunk, n, at));
        for (size_t i = n; i-- > 0;) {
            if (chunk[i] == '\n') {
                *start = at + (off_t)i + 1;
                return OK_OK;
            }
        }
        pos = at;
    }
    *start = 0;
    return OK_OK;
}

/* Bounded forward line reader over [next, limit) of a file. */
typedef struct {
    int fd;
    off_t next, limit;
    char *buf; /* AUDIT_LINE_MAX + 1 bytes: the longest line and its newline */
    size_t start, end;
} line_reader;

enum { READ_LINE = 0, READ_OVERLONG = 1, READ_NO_NEWLINE = 2 };

/* *got = 0 at the end. Otherwise a line in *line, *len (without '\n') and *status: READ_LINE, or
 * READ_OVERLONG (its content dropped), or READ_NO_NEWLINE (a final fragment). */
static ok_err reader_next(line_reader *r, const char **line, size_t *len, int *status, int *got)
{
    const size_t cap = AUDIT_LINE_MAX + 1;
    int overlong = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl || r->next >= r->limit) {
            if (!nl && r->end == r->start && !overlong) {
                *got = 0;
                return OK_OK;
            }
            size_t stop = nl ? (size_t)(nl - r->buf) : r->end;
            *line = r->buf + r->start;
            *len = stop - r->start;
            *status = overlong ? READ_OVERLONG : nl ? READ_LINE : READ_NO_NEWLINE;
            r->start = nl ? stop + 1 : stop;
            *got = 1;
            return OK_OK;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == cap) { /* no newline in a full buffer: drop what we have, keep looking */
            overlong = 1;
            r->end = 0;
        }
        size_t want = cap - r->end;
        if ((off_t)want > r->limit - r->next)
            want = (size_t)(r->limit - r->next);
        ssize_t n = pread(r->fd, r->buf + r->end, want, r->next);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return io_fail("read");
        if (n == 0)
            r->limit = r->next; /* the file is shorter than it was */
        r->end += (size_t)n;
        r->next += n;
    }
}

static ok_err reader_init(line_reader *r, int fd, off_t from, off_t limit)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->next = from;
    r->limit = limit;
    if (!(r->buf = malloc(AUDIT_LINE_MAX + 1)))
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    return OK_OK;
}

/* ---- Open and close ------------------------------------------------------------------------------------ */

/* Cuts a trailing fragment without a newline; *size becomes the new length. */
static ok_err drop_partial_tail(int fd, off_t *size)
{
    if (*size == 0)
        return OK_OK;
    char last;
    OK_GUARD(pread_full(fd, &last, 1, *size - 1));
    if (last == '\n')
        return OK_OK;
    off_t start;
    OK_GUARD(line_start_before(fd, *size, &start));
    if (ftruncate(fd, start) != 0)
        return io_fail("ftruncate");
    OK_GUARD(ok_audit_sync_file(fd));
    *size = start;
    return OK_OK;
}

/* The chain head of a well-terminated file: the last MAC'd line's MAC, folded over the lines after it. */
static ok_err restore_head(int fd, off_t size, uint8_t head[CHAIN_LEN])
{
    memset(head, 0, CHAIN_LEN);
    char *buf = malloc(AUDIT_LINE_MAX);
    if (!buf)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_err rc = OK_OK;
    off_t end = size, anchor = 0;
    while (end > 0 && rc == OK_OK) { /* end is just past a line's '\n' */
        off_t start;
        OK_GUARD_GOTO(rc, line_start_before(fd, end - 1, &start), out);
        size_t len = (size_t)(end - 1 - start);
        if (len <= AUDIT_LINE_MAX) {
            OK_GUARD_GOTO(rc, pread_full(fd, buf, len, start), out);
            uint8_t mac[CHAIN_LEN];
            if (line_classify(buf, len, mac) == LINE_MACED) {
                memcpy(head, mac, CHAIN_LEN);
                anchor = end;
                break;
            }
        }
        end = start;
    }
    line_reader r;
    OK_GUARD_GOTO(rc, reader_init(&r, fd, anchor, size), out);
    for (;;) {
        const char *line;
        size_t len;
        int status, got;
        OK_GUARD_GOTO(rc, reader_next(&r, &line, &len, &status, &got), done);
        if (!got)
            break;
        if (status == READ_LINE) /* sealed lines (or corrupt ones, which verification reports) */
            OK_GUARD_GOTO(rc, chain_fold(head, line, len, head), done);
    }
done:
    free(r.buf);
out:
    free(buf);
    return rc;
}

ok_err ok_audit_open(ok_vault *v)
{
    if (!v || !v->dir)
        return ok_fail(OK_ERR_INVALID_ARG, "no vault directory");
    if (v->audit_fd >= 0)
        return ok_fail(OK_ERR_INVALID_ARG, "audit log: already open");
    size_t plen = strlen(v->dir) + sizeof "/audit.log";
    char *path = malloc(plen);
    if (!path)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    snprintf(path, plen, "%s/audit.log", v->dir);
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    free(path);
    if (fd < 0)
        return io_fail("open");
    ok_err rc;
    struct stat st;
    uint8_t head[CHAIN_LEN];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ok_fail(OK_ERR_IO, "audit log: not a regular file");
        goto fail;
    }
    off_t size = st.st_size;
    OK_GUARD_GOTO(rc, drop_partial_tail(fd, &size), fail);
    OK_GUARD_GOTO(rc, restore_head(fd, size, head), fail);
    int dfd = open(v->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* make a new file's name durable */
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    OK_GUARD_GOTO(rc, ok_audit_sync_open(v), fail);
    pthread_mutex_lock(&v->audit_lock);
    v->audit_fd = fd;
    memcpy(v->audit_prev_mac, head, CHAIN_LEN);
    pthread_mutex_unlock(&v->audit_lock);
    return OK_OK;
fail:
    close(fd);
    return rc;
}

void ok_audit_close(ok_vault *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->audit_lock);
    if (v->audit_fd >= 0)
        close(v->audit_fd);
    v->audit_fd = -1;
    memset(v->audit_prev_mac, 0, CHAIN_LEN);
    pthread_mutex_unlock(&v->audit_lock);
    ok_audit_sync_close(v);
}

/* ---- Appending ----------------------------------------------------------------------------------------- */

ok_err ok_vault_audit_append(ok_vault *v, const ok_audit_record *r, ok_audit_ticket *t)
{
    if (!v || !r || !r->operation || !t)
        return ok_fail(OK_ERR_INVALID_ARG, "an audit record needs an operation");
    t->seq = 0;
    t->fd = -1;
    char now[OK_AUDIT_TIME_LEN];
    char line[OK_AUDIT_RECORD_MAX + SEALED_SUFFIX_LEN + MAC_SUFFIX_LEN + 1];
    size_t len = 0;
    ok_audit_time_now(now);
    OK_GUARD(ok_audit_record_json(r, now, line, OK_AUDIT_RECORD_MAX, &len));
    len--; /* without the closing brace: the suffix closes the object */
    uint8_t next[CHAIN_LEN];
    ok_err rc = OK_OK;

    pthread_rwlock_rdlock(&v->seal_lock); /* audit_key is used only under the shared seal lock */
    pthread_mutex_lock(&v->audit_lock);
    if (v->audit_fd < 0) {
        rc = ok_fail(OK_ERR_IO, "audit log: not open");
    } else if (v->audit_sync && ok_audit_sync_failed(v->audit_sync)) {
        rc = ok_audit_sync_failure();
    } else if (v->sealed || !v->audit_key) {
        memcpy(line + len, SEALED_SUFFIX, SEALED_SUFFIX_LEN);
        len += SEALED_SUFFIX_LEN;
        rc = chain_fold(v->audit_prev_mac, line, len, next);
    } else {
        rc = chain_mac(v->audit_key, v->audit_prev_mac, line, len, next);
        if (rc == OK_OK) {
            memcpy(line + len, MAC_MEMBER, MAC_MEMBER_LEN);
            len += MAC_MEMBER_LEN;
            for (size_t i = 0; i < CHAIN_LEN; i++) {
                static const char digits[] = "0123456789abcdef";
                line[len++] = digits[next[i] >> 4];
                line[len++] = digits[next[i] & 15];
            }
            line[len++] = '"';
            line[len++] = '}';
        }
    }
    if (rc == OK_OK) {
        line[len++] = '\n';
        rc = append_line(v->audit_fd, line, len);
    }
    struct ok_audit_sync *g = v->audit_sync;
    if (rc == OK_OK) {
        memcpy(v->audit_prev_mac, next, CHAIN_LEN);
        t->fd = v->audit_fd;
        if (g)
            t->seq = ok_audit_sync_note_written(g);
        else
            rc = ok_audit_sync_file(v->audit_fd); /* (an audit log is opened with its group commit) */
    }
    pthread_mutex_unlock(&v->audit_lock);
    pthread_rwlock_unlock(&v->seal_lock);
    return rc;
}

ok_err ok_vault_audit(ok_vault *v, const ok_audit_record *r)
{
    ok_audit_ticket t;
    OK_GUARD(ok_vault_audit_append(v, r, &t));
    return ok_vault_audit_wait(v, t);
}


/* ---- Verification -------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t lines, first_bad;
    uint64_t unproven;           /* first line of the trailing run of sealed lines; 0 if none */
    uint8_t head[CHAIN_LEN];
} verify_result;

/* Checks [0, limit) of the file; stops judging (but keeps counting) at the first bad line. */
static ok_err verify_fd(int fd, off_t limit, const uint8_t key[CHAIN_LEN], verify_result *res)
{
    memset(res, 0, sizeof *res);
    line_reader r;
    OK_GUARD(reader_init(&r, fd, 0, limit));
    ok_err rc = OK_OK;
    for (;;) {
        const char *line;
        size_t len;
        int status, got;
        OK_GUARD_GOTO(rc, reader_next(&r, &line, &len, &status, &got), out);
        if (!got)
            break;
        res->lines++;
        if (res->first_bad)
            continue;
        uint8_t mac[CHAIN_LEN], expect[CHAIN_LEN];
        line_kind kind = status == READ_LINE ? line_classify(line, len, mac) : LINE_BAD;
        if (kind == LINE_MACED) {
            OK_GUARD_GOTO(rc, chain_mac(key, res->head, line, len - MAC_SUFFIX_LEN, expect), out);
            if (ok_ct_equal(expect, mac, CHAIN_LEN)) {
                memcpy(res->head, mac, CHAIN_LEN);
                res->unproven = 0;
            } else {
                kind = LINE_BAD;
            }
        } else if (kind == LINE_SEALED) {
            OK_GUARD_GOTO(rc, chain_fold(res->head, line, len, res->head), out);
            if (!res->unproven)
                res->unproven = res->lines;
        }
        if (kind == LINE_BAD)
            res->first_bad = res->lines;
    }
out:
    free(r.buf);
    return rc;
}

ok_err ok_audit_verify_file(const char *path, const uint8_t key[32], uint64_t *lines, uint64_t *first_bad)
{
    if (!path || !key || !lines || !first_bad)
        return ok_fail(OK_ERR_INVALID_ARG, "audit verify needs a path, a key and outputs");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail("open");
    struct stat st;
    verify_result res;
    ok_err rc = fstat(fd, &st) == 0 ? verify_fd(fd, st.st_size, key, &res) : io_fail("fstat");
    close(fd);
    if (rc != OK_OK)
        return rc;
    if (!res.first_bad && res.unproven)
        res.first_bad = res.unproven; /* sealed lines no MAC'd line covers: unproven here */
    *lines = res.lines;
    *first_bad = res.first_bad;
    return OK_OK;
}

ok_err ok_vault_audit_verify(ok_vault *v, uint64_t *lines, uint64_t *first_bad)
{
    if (!v || !lines || !first_bad)
        return ok_fail(OK_ERR_INVALID_ARG, "audit verify needs a vault and outputs");
    uint8_t key[CHAIN_LEN], head[CHAIN_LEN];
    pthread_rwlock_rdlock(&v->seal_lock);
    int sealed = v->sealed || !v->audit_key;
    if (!sealed)
        memcpy(key, v->audit_key, CHAIN_LEN);
    pthread_rwlock_unlock(&v->seal_lock);
    if (sealed)
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");

    /* A consistent snapshot: the file's length and the head that goes with it. Appends continue
     * meanwhile; only the bytes up to `end` are checked. */
    struct stat st;
    int fd, stat_ok;
    pthread_mutex_lock(&v->audit_lock);
    fd = v->audit_fd;
    stat_ok = fd >= 0 && fstat(fd, &st) == 0;
    memcpy(head, v->audit_prev_mac, CHAIN_LEN);
    pthread_mutex_unlock(&v->audit_lock);
    ok_err rc;
    verify_result res;
    if (!stat_ok)
        rc = ok_fail(OK_ERR_IO, "audit log: not open");
    else
        rc = verify_fd(fd, st.st_size, key, &res);
    ok_zeroize(key, sizeof key);
    if (rc != OK_OK)
        return rc;
    if (!res.first_bad && !ok_ct_equal(res.head, head, CHAIN_LEN))
        res.first_bad = res.unproven ? res.unproven : res.lines + 1; /* changed or removed at the end */
    *lines = res.lines;
    *first_bad = res.first_bad;
    return OK_OK;
}
