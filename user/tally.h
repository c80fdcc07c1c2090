/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-endpoint counters of shadowd, batched on their way to the store and
 * the metrics. Every exchange bumps at least one counter of its endpoint;
 * counted one by one, each bump looked the endpoint up twice (once in the
 * store, once in the metrics, under its mutex). Here it is looked up once,
 * in a table of this thread's own, and tally_flush() hands each endpoint's
 * sums on with one store_count() and one metrics_count() per counter.
 *
 * Endpoints reach the store and the metrics in the order they were first
 * counted, as they would one by one, so both count the same endpoints
 * apart and the rest as ENDPOINT_OTHER (endpoint.h), provided the tally is also
 * flushed before any other per-endpoint store call (store_latency(),
 * store_field(), ...) that could be the first to name an endpoint. The
 * store sees the same sums at its next flush if the tally is flushed just
 * before it; the metrics lag by at most that interval.
 */
#ifndef SHADOW_TALLY_H
#define SHADOW_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "store_counter.h"

struct metrics;
struct store;
struct tally;

/* Returns an empty tally feeding s and m (borrowed until tally_free();
 * either may be NULL), or NULL on ENOMEM. */
struct tally *tally_new(struct store *s, struct metrics *m);
/* Frees the tally without flushing it; NULL ok. */
void tally_free(struct tally *t);

/* Adds n to counter c of endpoint (borrowed; NULL counts as ""). When
 * the table is full it is flushed and emptied first. Without memory for a
 * new entry (or for a counter that does not exist) it counts straight
 * into the store and the metrics instead, after what is pending: nothing
 * is lost, and a failed store_count() is a store error (tally_flush()). */
void tally_count(struct tally *t, const char *endpoint, enum store_counter c,
		 uint64_t n);

/* Hands every pending sum to the store and the metrics, in the order the
 * endpoints were first counted, and zeroes them. Returns how many
 * store_count() calls failed since the last flush (here or in
 * tally_count()). */
uint64_t tally_flush(struct tally *t);

#endif /* SHADOW_TALLY_H */
