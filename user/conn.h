/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The connection table: turns capture records (include/shadow_event.h) into
 * per-connection, per-direction ordered byte streams for the next stage.
 *
 * Each (tgid, fd, gen) is one connection. Bytes are handed on in stream
 * order; a record whose offset lies past the expected one is a gap (the
 * missing byte count is handed on, never invented), a record that lies
 * wholly before it is a duplicate and is dropped. The table does not buffer
 * stream bytes itself: its memory follows the number of connections
 * tracked, up to max_conns (least recently used evicted first).
 *
 * The next stage implements struct conn_sink_ops; the table never looks
 * inside the per-connection state the sink returns.
 */
#ifndef SHADOW_CONN_H
#define SHADOW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shadow_event;

struct conn_info {
	uint32_t tgid, fd, gen;
	bool midstream;  /* joined an established connection: resync first */
	uint16_t lport;  /* 0 if unknown */
	char client[64]; /* "127.0.0.1:53412", "[::1]:5", "" if unknown */
};

struct conn_sink_ops {
	/* A connection starts being tracked. Returns the sink's state for it
	 * (NULL is allowed and passed back as is). */
	void *(*open)(void *ctx, const struct conn_info *info, uint64_t ts_ns);
	/* The next n bytes of direction dir (enum shadow_dir), in order. p is
	 * borrowed for the call only. */
	void (*data)(void *ctx, void *state, int dir, const uint8_t *p,
		     size_t n, uint64_t ts_ns);
	/* n bytes of direction dir were lost; the next data() follows them. */
	void (*gap)(void *ctx, void *state, int dir, uint64_t n, uint64_t ts_ns);
	/* The next n outbound bytes, written from ts_ns to last_ns, were not
	 * copied on purpose: the kernel says they are the whole answer to
	 * the request read just before, which it left unsampled (a SKIP
	 * record). May be NULL: they are then a gap. */
	void (*skip)(void *ctx, void *state, uint64_t n, uint64_t ts_ns,
		     uint64_t last_ns);
	/* The next n inbound bytes are one whole request head without a
	 * body, left unsampled by the kernel, which copied only its
	 * "METHOD SP target" (line[0..len), borrowed); or sampled and passed
	 * over all the same while the daemon was shedding: `shed` (enum
	 * shadow_shed) says why, SHADOW_SHED_NONE when unsampled. May be
	 * NULL: they are then a gap. */
	void (*reqline)(void *ctx, void *state, const uint8_t *line,
			size_t len, uint64_t n, unsigned shed, uint64_t ts_ns);
	/* The client closed the connection (the target read end-of-file),
	 * then the target closed it, and every byte of both streams up to the
	 * close was handed on (no loss at the end). Called just before
	 * close(); never for evicted connections, server-initiated closes or
	 * closes whose record carries no final offsets. May be NULL. */
	void (*end)(void *ctx, void *state, uint64_t ts_ns);
	/* The connection is gone (closed, evicted or table freed). The sink
	 * frees its state here. */
	void (*close)(void *ctx, void *state, uint64_t ts_ns);
};

struct conn_limits {
	size_t max_conns;      /* least recently used evicted past this */
	uint64_t idle_ns;      /* conn_table_expire() evicts idler ones */
};

struct conn_stats {
	uint64_t events;          /* records fed */
	uint64_t bytes;           /* stream bytes handed on */
	uint64_t lost_events;     /* ring buffer overflow, as reported */
	uint64_t gaps;            /* jumps in a stream's offset */
	uint64_t gap_bytes;       /* bytes those jumps skipped */
	uint64_t duplicates;      /* records wholly before the stream point */
	uint64_t skips;           /* uncopied answers (SKIP records) ... */
	uint64_t skip_bytes;      /* ... and the bytes they stood for */
	uint64_t reqlines;        /* request heads sent as their line alone */
	uint64_t conns_opened;    /* connections seen, midstream included */
	uint64_t conns_midstream; /* of which joined established */
	uint64_t conns_closed;
	uint64_t conns_evicted;   /* idle or over max_conns */
	uint64_t conns_active;
	uint64_t bad_records;     /* malformed records (unknown kind, sizes) */
};

struct conn_table;

/* Returns a new table handing streams to ops/ctx, or NULL on ENOMEM. ops
 * and ctx are borrowed for the table's lifetime. */
struct conn_table *conn_table_new(const struct conn_limits *lim,
				  const struct conn_sink_ops *ops, void *ctx);
/* Closes every connection (sink close() for each) and frees; NULL ok. */
void conn_table_free(struct conn_table *t);

/* Feeds one record: ev followed by ev->len payload bytes, both borrowed.
 * SENDFILE records must have been resolved to DATA first (capture.c).
 * Returns 0, or -EINVAL for a malformed record (counted, then ignored). */
int conn_table_feed(struct conn_table *t, const struct shadow_event *ev,
		    const void *payload);
/* Evicts connections idle since before now_ns - idle_ns. Returns how many. */
size_t conn_table_expire(struct conn_table *t, uint64_t now_ns);
/* Adds n to the lost-events counter (from the ring buffer or a capture
 * file's LOST record). */
void conn_table_lost(struct conn_table *t, uint64_t n);
const struct conn_stats *conn_table_stats(const struct conn_table *t);

#endif /* SHADOW_CONN_H */
