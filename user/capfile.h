/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Capture files: the event stream of include/shadow_event.h on disk, as
 * written by `shadowd --record` and read back by `--from-capture`, the unit
 * tests and the fuzzers. Layout: struct shadow_cap_header, then records
 * (struct shadow_event + len payload bytes), each padded to 8 bytes.
 */
#ifndef SHADOW_CAPFILE_H
#define SHADOW_CAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct shadow_event;
struct capfile_writer;
struct capfile_reader;

/* Creates (truncates) path, mode 0600, and writes the header. Returns the
 * writer or NULL with errno set. */
struct capfile_writer *capfile_open_writer(const char *path);
/* Appends one record; ev and payload (ev->len bytes) are borrowed.
 * Returns 0 or -errno. */
int capfile_write(struct capfile_writer *w, const struct shadow_event *ev,
		  const void *payload) __attribute__((warn_unused_result));
/* Flushes and closes; returns 0 or -errno (a failed flush). NULL ok. */
int capfile_close_writer(struct capfile_writer *w);

/* Opens a capture file (or reads from memory with capfile_open_reader_mem).
 * Returns NULL and a one-line reason in err on failure: missing file,
 * not a capture file, newer version. */
struct capfile_reader *capfile_open_reader(const char *path, char *err, size_t errlen);
/* Reads records from buf[0..len) (borrowed until capfile_close_reader);
 * no file header is expected when raw is nonzero (the fuzzers use it). */
struct capfile_reader *capfile_open_reader_mem(const void *buf, size_t len, int raw,
					char *err, size_t errlen);
/* The next record: *ev and *payload are borrowed until the next call.
 * Returns 1 for a record, 0 at a clean end of file, -EINVAL for a
 * truncated or malformed record (err says which byte offset). */
int capfile_next(struct capfile_reader *r, const struct shadow_event **ev,
		 const void **payload, char *err, size_t errlen);
/* Header time bases (0 for raw memory input). */
uint64_t capfile_mono_base(const struct capfile_reader *r);
uint64_t capfile_real_base(const struct capfile_reader *r);
void capfile_close_reader(struct capfile_reader *r);

#endif /* SHADOW_CAPFILE_H */
