/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Prometheus metrics: the counters of `shadow-dump stats` (totals and per
 * endpoint), latency histograms for the primary and the candidate, and the
 * daemon's gauges, served in the text exposition format (version 0.0.4) by
 * libmicrohttpd on --metrics ADDR:PORT. Every name starts with
 * request_shadow_ and has HELP and TYPE lines.
 *
 * The daemon's loop thread updates the numbers; libmicrohttpd's own thread
 * renders them on a scrape, under one mutex held for microseconds.
 */
#ifndef SHADOW_METRICS_H
#define SHADOW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "store_counter.h"

struct metrics;

/* Daemon-wide numbers that are not per endpoint. */
enum metrics_gauge {
	METRICS_LOST_EVENTS,    /* counter: ring buffer overflow */
	METRICS_GAPS,           /* counter: stream gaps */
	METRICS_PARSE_ERRORS,   /* counter: exchanges lost to parse errors */
	METRICS_TRUNCATED,      /* counter: bodies over --max-body */
	METRICS_CONNECTIONS,    /* gauge: connections tracked */
	METRICS_QUEUE_DEPTH,    /* gauge: replays waiting */
	METRICS_INFLIGHT,       /* gauge: replays in flight */
	METRICS_BREAKER_OPEN,   /* gauge: 1 while the breaker is not closed */
	METRICS_RING_USED,      /* gauge: bytes waiting in the ring buffer */
	METRICS_RING_SIZE,      /* gauge: ring buffer size */
	METRICS_TARGETS,        /* gauge: processes traced */
	METRICS_TLS_UNDECODED,  /* counter: TLS connections not decrypted */
	METRICS_TLS_UNLINKED,   /* counter: TLS reads/writes without socket */
	METRICS_UNHOOKED,       /* counter: socket I/O the hooks cannot read */
	METRICS_UNCOPIED,       /* counter: unsampled answers not copied */
	METRICS_SAMPLE_MISMATCH, /* counter: kernel and user space disagreed */
	METRICS_SEND_RATE,      /* gauge: replays/s sending is held to, 0: none */
	METRICS_N_GAUGES
};

/* Returns a metrics table (no server yet) or NULL on ENOMEM. */
struct metrics *metrics_new(void);
/* Starts serving on "ADDR:PORT" ("127.0.0.1:9090", "[::1]:9090",
 * ":9090" for every address). Returns 0, or -errno with a one-line reason
 * in err. */
int metrics_serve(struct metrics *m, const char *addr, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Stops the server and frees; NULL ok. */
void metrics_free(struct metrics *m);

/* Adds n to a per-endpoint counter (endpoint borrowed): NULL or "" is
 * ENDPOINT_NONE, and past ENDPOINT_MAX_COUNTED endpoints new ones are
 * counted under ENDPOINT_OTHER (endpoint.h). */
void metrics_count(struct metrics *m, const char *endpoint,
		   enum store_counter c, uint64_t n);
/* Records one latency observation in ms; candidate_ms < 0 for none. */
void metrics_latency(struct metrics *m, double primary_ms, double candidate_ms);
/* Counts a candidate error of a class ("timeout", ...). */
void metrics_candidate_error(struct metrics *m, const char *class_name);
void metrics_set(struct metrics *m, enum metrics_gauge g, double v);
/* Renders the exposition text; the caller frees it. NULL on ENOMEM. */
char *metrics_render(struct metrics *m);

/* Splits "ADDR:PORT" into a sockaddr. 0 or -EINVAL. Shared with flag
 * validation in shadowd. */
struct sockaddr_storage;
int metrics_parse_addr(const char *s, struct sockaddr_storage *out)
	__attribute__((warn_unused_result));

#endif /* SHADOW_METRICS_H */
