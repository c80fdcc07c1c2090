// SPDX-License-Identifier: BSD-2-Clause
/*
 * The table: entries in the order their endpoint was first counted, found
 * by name through a util/strmap (no deletions: a full table is emptied
 * whole). The entries with sums pending are also listed, in the order
 * they got them, so a flush costs what is pending.
 */
#include "tally.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "metrics.h"
#include "store.h"
#include "util/strmap.h"

/* Distinct endpoints held between two emptyings. More than the store and
 * the metrics count apart (ENDPOINT_MAX_COUNTED), so a full table is
 * rare. */
#define TALLY_MAX 1024

struct tally_ent {
	const char *name; /* the index's key */
	uint64_t c[STORE_N_COUNTERS];
	bool pending;
};

struct tally {
	struct store *store;
	struct metrics *metrics;
	struct tally_ent ent[TALLY_MAX];
	uint32_t n;
	struct strmap index; /* name -> entry */
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
	strmap_clear(&t->index, NULL);
	memset(t->ent, 0, sizeof(t->ent));
	t->n = 0;
}

void tally_free(struct tally *t)
{
	if (!t)
		return;
	strmap_free(&t->index, NULL);
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

/* The entry of endpoint, added if missing; NULL on ENOMEM. */
static struct tally_ent *ent_get(struct tally *t, const char *endpoint)
{
	struct strmap_ent *me = strmap_find(&t->index, endpoint);
	struct tally_ent *e;

	if (me)
		return me->val;
	if (t->n == TALLY_MAX) {
		flush_pending(t);
		tally_clear(t);
	}
	e = &t->ent[t->n];
	me = strmap_insert(&t->index, endpoint, e);
	if (!me)
		return NULL;
	e->name = me->key;
	t->n++;
	return e;
}

void tally_count(struct tally *t, const char *endpoint, enum store_counter c,
		 uint64_t n)
{
	struct tally_ent *e = NULL;

	if (!endpoint)
		endpoint = "";
	if ((unsigned)c < STORE_N_COUNTERS)
		e = ent_get(t, endpoint);
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
