/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The in-process shadower's accounting: what the library makes of a call
 * once it is decided (captured, sampled, shed, skipped) and of a candidate
 * answer once it is diffed (replayed, diverged by part, noise, candidate
 * errors), counted in struct rs_stats and, with a store, in the same
 * per-endpoint counters, latencies, fields and records shadowd writes; and
 * the ring of the last divergences. The library's threads (request_shadow.c)
 * decide and diff; only this file counts and records, so it can be swapped
 * for the daemon's pipeline core without touching them.
 *
 * Thread-safe: one mutex guards the counters, the store and the ring.
 */
#ifndef SHADOW_SHADOWER_H
#define SHADOW_SHADOWER_H

#include <stdbool.h>
#include <stddef.h>

#include "request_shadow.h"
#include "store.h"

struct diff_result;
struct exchange;
struct http_response;
struct shadower;

#define SHADOWER_DEFAULT_LOG_SIZE 100

struct shadower_config {
	const char *store;          /* NULL: no store, the ring only */
	size_t max_records;         /* 0: the store's default */
	size_t examples;            /* 0: the store's default */
	const char *const *redact;  /* header names redacted beside the defaults */
	size_t n_redact;
	size_t log_size;            /* divergences in the ring; 0: no ring */
};

/* Opens the store (if any) and sets up the ring; cfg and its strings are
 * copied. Returns 0 and *out (shadower_free()), or -errno with one line in
 * err. */
int shadower_new(const struct shadower_config *cfg, struct shadower **out,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
/* Writes and closes the store, frees the ring; NULL ok. */
void shadower_free(struct shadower *s);

/* Counts one call of endpoint (borrowed) as c: STORE_CAPTURED,
 * STORE_SAMPLED, STORE_SHED or STORE_UNSAFE_SKIPPED. */
void shadower_count(struct shadower *s, const char *endpoint,
		    enum store_counter c);
/* Counts one call the primary answered on endpoint (borrowed): captured,
 * sampled if `sampled`, and `then` (STORE_SHED, STORE_UNSAFE_SKIPPED;
 * STORE_N_COUNTERS: nothing more), under one lock. */
void shadower_count_call(struct shadower *s, const char *endpoint,
			 bool sampled, enum store_counter then);

/* A candidate call that was sent and got no answer: err is its -errno
 * (-ETIMEDOUT when the shadower's timeout cut it off). Counted as replayed
 * and as a candidate error of the class err maps to; never a divergence. */
void shadower_candidate_error(struct shadower *s, const char *endpoint, int err);

/* Counts and records the differ's verdict res (borrowed) on x's primary
 * response against cand (both borrowed), which took cand_ms. */
void shadower_judge(struct shadower *s, const struct exchange *x,
		    const struct http_response *cand, double cand_ms,
		    const struct diff_result *res);

/* Copies the counters into *st (abandoned_running is the caller's). */
void shadower_stats(struct shadower *s, struct rs_stats *st);

/* The ring, newest first, at most max records (0: all), as a malloc'd
 * JSON array; NULL on ENOMEM. */
char *shadower_ring_json(struct shadower *s, size_t max);

/* Writes what is queued for the store. 0 (also without a store) or the
 * store's -errno. */
int shadower_flush(struct shadower *s) __attribute__((warn_unused_result));

#endif /* SHADOW_SHADOWER_H */
