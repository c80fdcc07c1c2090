// SPDX-License-Identifier: BSD-2-Clause
/*
 * The table: entries in the order their endpoint was first counted, found
 * through an open-addressing index of twice their number (no deletions:
 * a full table is emptied whole). The entries with sums pending are also
 * listed, in the order they got them, so a flush costs what is pending.
 */
#include "tally.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "endpoint.h"
#include "metrics.h"
#include "store.h"

/* Distinct endpoints held between two emptyings; a power of two. More
 * than the store and the metrics count apart (ENDPOINT_MAX_COUNTED), so a
 * full table is rare. */
#define TALLY_MAX 1024
#define TALLY_SLOTS (2 * TALLY_MAX)

struct tally_ent {
	char *name;
	uint64_t hash;
	uint64_t c[STORE_N_COUNTERS];
	bool pending;
};

struct tally {
	struct store *store;
	struct metrics *metrics;
	struct tally_ent ent[TALLY_MAX];
	uint32_t n;
	uint32_t slot[TALLY_SLOTS]; /* entry index + 1; 0: empty */
	uint32_t pending[TALLY_MAX]; /* entry indexes with sums */
	uint32_t n_pending;
	uint64_t store_errors; /* since the last flush */
};

struct tally *tally_new(struct store *s, struct metrics *m)
{
	struct tally *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->store = s;
	t->metrics = m;
	return t;
}

static void tally_clear(struct tally *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->ent[i].name);
	memset(t->ent, 0, sizeof(t->ent));
	memset(t->slot, 0, sizeof(t->slot));
	t->n = 0;
}

void tally_free(struct tally *t)
{
	if (!t)
		return;
	tally_clear(t);
	free(t);
}

/* One count, as shadowd made each before there was a tally. */
static void count_now(struct tally *t, const char *endpoint,
		      enum store_counter c, uint64_t n)
{
	if (t->store && store_count(t->store, endpoint, c, n) < 0)
		t->store_errors++;
	metrics_count(t->metrics, endpoint, c, n);
}

/* Hands the pending sums on; store errors are kept for tally_flush(). */
static void flush_pending(struct tally *t)
{
	for (uint32_t i = 0; i < t->n_pending; i++) {
		struct tally_ent *e = &t->ent[t->pending[i]];

		for (int c = 0; c < STORE_N_COUNTERS; c++) {
			if (!e->c[c])
				continue;
			count_now(t, e->name, c, e->c[c]);
			e->c[c] = 0;
		}
		e->pending = false;
	}
	t->n_pending = 0;
}

uint64_t tally_flush(struct tally *t)
{
	uint64_t errors;

	flush_pending(t);
	errors = t->store_errors;
	t->store_errors = 0;
	return errors;
}

/* The entry of endpoint (len bytes, hash h), added if missing; NULL on
 * ENOMEM. */
static struct tally_ent *ent_get(struct tally *t, const char *endpoint,
				 size_t len, uint64_t h)
{
	uint32_t i = h & (TALLY_SLOTS - 1);
	struct tally_ent *e;

	for (; t->slot[i]; i = (i + 1) & (TALLY_SLOTS - 1)) {
		e = &t->ent[t->slot[i] - 1];
		if (e->hash == h && !strcmp(e->name, endpoint))
			return e;
	}
	if (t->n == TALLY_MAX) {
		flush_pending(t);
		tally_clear(t);
		i = h & (TALLY_SLOTS - 1);
	}
	e = &t->ent[t->n];
	e->name = malloc(len + 1);
	if (!e->name)
		return NULL;
	memcpy(e->name, endpoint, len + 1);
	e->hash = h;
	t->slot[i] = ++t->n;
	return e;
}

void tally_count(struct tally *t, const char *endpoint, enum store_counter c,
		 uint64_t n)
{
	struct tally_ent *e = NULL;
	size_t len;

	if (!endpoint)
		endpoint = "";
	len = strlen(endpoint);
	if ((unsigned)c < STORE_N_COUNTERS)
		e = ent_get(t, endpoint, len, XXH3_64bits(endpoint, len));
	if (!e) {
		flush_pending(t);
		count_now(t, endpoint, c, n);
		return;
	}
	if (!e->pending) {
		e->pending = true;
		t->pending[t->n_pending++] = (uint32_t)(e - t->ent);
	}
	e->c[c] += n;
}
