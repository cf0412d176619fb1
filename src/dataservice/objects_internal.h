/* Internal to the objects half of the data service: the seams between objects.c (rows, names, metadata,
 * head/delete/list, recovery), object_write.c (sealed object files and the put), seal_pipe.c (the
 * sealing thread of large writes), object_read.c (the get) and rekey.c (which re-encrypts objects with
 * the same writer and reader). */
#ifndef OWNKEY_DS_OBJECTS_INTERNAL_H
#define OWNKEY_DS_OBJECTS_INTERNAL_H

#include "dataservice/ds_internal.h"

#define DS_DEK_WRAP_MAX 72   /* AES-KWP of a 32-byte DEK is 40 bytes; room for up to 64-byte keys */
#define DS_PATH_MAX 4096
#define DS_TMP_PREFIX ".tmp-"

/* Where one stored version lives and how its DEK is wrapped: the parts of an objects row a reader needs. */
typedef struct {
    char file_id[DS_FILE_ID_LEN + 1];
    uint64_t size;
    uint64_t generation;
    uint8_t dek_wrap[DS_DEK_WRAP_MAX];
    size_t dek_wrap_len;
} ds_object_ref;

/* ---- objects.c ----------------------------------------------------------------------------------- */
/* The columns every object query selects, in the order ds_object_from_row reads them. */
#define DS_OBJECT_COLS "name, size, modified, etag, content_type, meta, file_id, tk_generation, dek_wrap"
/* Fills info and/or ref (either may be NULL) from a row of DS_OBJECT_COLS. */
ok_err ds_object_from_row(const ok_val *cols, size_t ncols, ok_ds_object_info *info, ds_object_ref *ref);
/* The current row of an object: OK_ERR_NOT_FOUND when there is none. */
ok_err ds_object_lookup(ok_ds *ds, const char *tenant, const char *name, ok_ds_object_info *info, ds_object_ref *ref);
/* DIR/objects/<uuid>[/<file>] into out; OK_ERR_LIMIT when it does not fit. file may be NULL. */
ok_err ds_object_path(const ok_ds *ds, const char *uuid, const char *file, char *out, size_t len);
/* Removes one object file, best effort (a leftover is garbage that the next recovery removes). */
void ds_object_unlink(ok_ds *ds, const char *uuid, const char *file_id);
/* fsync of a directory, so that a rename or unlink in it is durable. */
ok_err ds_fsync_dir(const char *dir);
/* write(2) until all of it is written (EINTR retried); OK_ERR_IO with the reason otherwise. */
ok_err ds_write_all(int fd, const uint8_t *p, size_t n);
/* Checks the user metadata and content type of a put and renders the metadata as its JSON column. */
ok_err ds_object_meta_json(const char *content_type, const ok_ds_meta *meta, size_t meta_count, char **json);

/* ---- object_write.c: one sealed object file being written --------------------------------------
 * The plaintext is sealed frame by frame (full frames as soon as they fill, so the final frame holds
 * size % frame_size bytes and may be empty) into DIR/objects/<uuid>/.tmp-<random>; finish makes it
 * durable under a new file id. Past DS_PIPE_MIN bytes the sealing and writing move to a ds_pipe thread
 * (an error of it comes back from a later write or from finish). Until finished, freeing the writer
 * (which stops the thread) removes the temporary file. */
typedef struct ds_writer ds_writer;
ok_err ds_writer_open(ok_ds *ds, const char *uuid, uint64_t generation, const uint8_t tk[DS_TK_LEN], ds_writer **out);
ok_err ds_writer_write(ds_writer *w, const uint8_t *data, size_t len);
uint64_t ds_writer_size(const ds_writer *w);
uint64_t ds_writer_generation(const ds_writer *w);
const uint8_t *ds_writer_dek_wrap(const ds_writer *w, size_t *len);
/* Re-wraps the file's DEK under another TK generation (a re-key started while the file was written). */
ok_err ds_writer_rewrap(ds_writer *w, uint64_t generation, const uint8_t tk[DS_TK_LEN]);
/* Seals the final frame, fsyncs, renames the file to a new file id and fsyncs the directory. */
ok_err ds_writer_finish(ds_writer *w, char file_id[DS_FILE_ID_LEN + 1]);
void ds_writer_free(ds_writer *w);

/* ---- seal_pipe.c: the sealing thread of a large write ---------------------------------------------
 * Takes over sealing and appending to fd (at its current offset) from the writer: ds_pipe_write copies
 * the plaintext into a few fixed buffers that a thread seals and writes (the caller waits when all are
 * queued) while a second thread makes what is written durable every few MiB (fdatasync) and drops it
 * from the page cache; ds_pipe_finish seals the rest with the final frame and waits for both threads,
 * leaving the caller's fsync only the last few MiB. The first error of either thread comes back from the
 * next write or from finish (and the pipe is then unusable but for free). ds_pipe_free stops and joins
 * the threads and wipes the buffers (they hold plaintext). The session and fd stay the caller's. */
#define DS_PIPE_MIN (1u << 20) /* a write uses the pipe once its body is past this many bytes */
typedef struct ds_pipe ds_pipe;
ok_err ds_pipe_start(ok_env_session *session, int fd, ds_pipe **out);
ok_err ds_pipe_write(ds_pipe *p, const uint8_t *data, size_t len);
ok_err ds_pipe_finish(ds_pipe *p);
void ds_pipe_free(ds_pipe *p);

/* ---- object_read.c / open_ahead.c: frames of a stored object ------------------------------------- */
typedef struct {
    int fd;
    ok_env_session *session;   /* opened with the object's DEK */
    uint32_t header_len;
    uint32_t frame_size;
    uint64_t size;             /* plaintext bytes (the row's) */
    uint64_t last;             /* index of the final frame */
} ds_frame_src;
/* Reads frame idx into wire (frame_size + 20 bytes) and opens it into plain (frame_size bytes), checking
 * that it is final exactly when it is the last one and holds what the size says; *n = its length. */
ok_err ds_frame_read_open(const ds_frame_src *src, uint64_t idx, uint8_t *wire, uint8_t *plain, size_t *n);

/* Opening ahead: for a long read in order, a thread of its own reads and opens the frames after `first`
 * into a few buffers ahead of the reader, so opening (AES-GCM) runs beside the sending (TLS) on another
 * core. The source's session is the thread's until stop. Memory: DS_AHEAD_SLOTS frames. */
#define DS_AHEAD_SLOTS 8
#define DS_AHEAD_MIN_FRAMES 16    /* objects with fewer frames are read inline */
typedef struct ds_open_ahead ds_open_ahead;
ok_err ds_open_ahead_start(const ds_frame_src *src, uint64_t first, ds_open_ahead **out);
/* Takes frame idx, which must be the next one in order: *plain (a frame_size buffer of the caller's) is
 * swapped with the buffer holding the opened frame; *n its length. A failure of the thread on that frame
 * comes back here, with its message. */
ok_err ds_open_ahead_take(ds_open_ahead *a, uint64_t idx, uint8_t **plain, size_t *n);
/* The next frame index take() expects. */
uint64_t ds_open_ahead_next(const ds_open_ahead *a);
/* Stops and joins the thread and wipes what it opened. NULL is fine. */
void ds_open_ahead_stop(ds_open_ahead *a);

/* ---- object_read.c ------------------------------------------------------------------------------- */
/* Opens the version a row names, without the tenant checks of ok_ds_get_open (the caller made them).
 * OK_ERR_NOT_FOUND when the file is gone (the row was replaced since it was read: read it again). */
ok_err ds_get_open_ref(ok_ds *ds, const char *tenant, const char *uuid, const ds_object_ref *ref, ok_ds_get **out);

#endif
