// SPDX-License-Identifier: BSD-2-Clause
/*
 * The tally: per-endpoint counts reach the store and the metrics with the
 * same sums, and in the order the endpoints were first counted, as if each
 * had been counted there one by one; only when flushed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "fixture.h"
#include "metrics.h"
#include "store.h"
#include "tally.h"

TestSuite(tally, .init = fixture_dir_init, .fini = fixture_dir_fini);

static struct store *open_store(void)
{
	return fixture_store_open(fixture_db);
}

/* The metrics line of counter name for endpoint ep: its value, or -1. */
static long long metric(struct metrics *m, const char *name, const char *ep)
{
	char *text = metrics_render(m), key[256];
	const char *at;
	long long v = -1;

	cr_assert_not_null(text);
	snprintf(key, sizeof(key), "request_shadow_%s_total{endpoint=\"%s\"} ",
		 name, ep);
	at = strstr(text, key);
	if (at)
		v = strtoll(at + strlen(key), NULL, 10);
	free(text);
	return v;
}

/* Counter name of endpoint ep in store_stats() st, or -1 when st has no
 * such endpoint. */
static long long stat_of(json_t *st, const char *name, const char *ep)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(st, "endpoints"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "endpoint")),
			    ep))
			return json_integer_value(json_object_get(e, name));
	return -1;
}

/* The store's count of counter name for endpoint ep (after a flush), or
 * -1 when the store has no such endpoint. */
static long long stored(struct store *s, const char *name, const char *ep)
{
	json_t *st;
	long long v;

	cr_assert_eq(store_flush(s), 0);
	st = store_stats(s);
	cr_assert_not_null(st);
	v = stat_of(st, name, ep);
	json_decref(st);
	return v;
}

Test(tally, sums_reach_store_and_metrics_when_flushed)
{
	struct store *s = open_store();
	struct metrics *m = metrics_new();
	struct tally *t = tally_new(s, m);

	cr_assert(m && t);
	for (int i = 0; i < 3; i++)
		tally_count(t, "GET /a", STORE_CAPTURED, 1);
	tally_count(t, "GET /b", STORE_CAPTURED, 1);
	tally_count(t, "GET /a", STORE_SAMPLED, 2);
	cr_expect_eq(metric(m, "captured", "GET /a"), -1, "counted early");
	cr_expect_eq(stored(s, "captured", "GET /a"), -1, "stored early");
	cr_expect_eq(tally_flush(t), 0);
	cr_expect_eq(metric(m, "captured", "GET /a"), 3);
	cr_expect_eq(metric(m, "sampled", "GET /a"), 2);
	cr_expect_eq(metric(m, "captured", "GET /b"), 1);
	cr_expect_eq(stored(s, "captured", "GET /a"), 3);
	cr_expect_eq(stored(s, "sampled", "GET /a"), 2);
	cr_expect_eq(stored(s, "captured", "GET /b"), 1);
	/* A flush hands on what came since the last one only. */
	tally_count(t, "GET /b", STORE_CAPTURED, 4);
	cr_expect_eq(tally_flush(t), 0);
	cr_expect_eq(tally_flush(t), 0);
	cr_expect_eq(metric(m, "captured", "GET /b"), 5);
	cr_expect_eq(stored(s, "captured", "GET /b"), 5);
	tally_free(t);
	tally_free(NULL);
	metrics_free(m);
	store_close(s);
}

/* The store and the metrics keep ENDPOINT_MAX_COUNTED endpoints apart,
 * then count the rest as ENDPOINT_OTHER: which ones are kept must not
 * change because counts were batched, also across more endpoints than the
 * tally holds at once, and must be the same ones in both. */
Test(tally, endpoints_arrive_in_the_order_first_counted)
{
	enum { N = 1500 };
	struct store *s = open_store();
	struct metrics *m = metrics_new();
	struct tally *t = tally_new(s, m);
	char ep[32];
	long long kept = 0;
	json_t *st;

	cr_assert(m && t);
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "GET /e%d", i);
		tally_count(t, ep, STORE_CAPTURED, 1);
	}
	/* The last ones are counted most: a table walked in any other order
	 * than the first counts' would let some of them in. */
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "GET /e%d", N - 1 - i % 50);
		tally_count(t, ep, STORE_SHED, 1);
	}
	cr_expect_eq(tally_flush(t), 0);
	cr_assert_eq(store_flush(s), 0);
	st = store_stats(s);
	cr_assert_not_null(st);
	for (int i = 0; i < N; i++) {
		long long v;

		snprintf(ep, sizeof(ep), "GET /e%d", i);
		v = metric(m, "captured", ep);
		if (i < ENDPOINT_MAX_COUNTED && v != 1)
			cr_assert_fail("%s: %lld", ep, v);
		if (i >= ENDPOINT_MAX_COUNTED && v != -1)
			cr_assert_fail("%s has a line of its own", ep);
		if (stat_of(st, "captured", ep) != (v > 0 ? v : -1))
			cr_assert_fail("%s: the store kept other endpoints "
				       "than the metrics", ep);
		kept += v > 0 ? v : 0;
	}
	cr_expect_eq(kept + metric(m, "captured", ENDPOINT_OTHER), N);
	cr_expect_eq(metric(m, "shed", ENDPOINT_OTHER), N);
	cr_expect_eq(stored(s, "captured", ENDPOINT_OTHER), N - kept);
	cr_expect_eq(stored(s, "shed", ENDPOINT_OTHER), N);
	json_decref(st);
	tally_free(t);
	metrics_free(m);
	store_close(s);
}

Test(tally, no_endpoint_counts_as_the_empty_one)
{
	struct store *s = open_store();
	struct metrics *m = metrics_new();
	struct tally *t = tally_new(s, m);

	cr_assert(m && t);
	tally_count(t, NULL, STORE_CAPTURED, 1);
	tally_count(t, "", STORE_CAPTURED, 1);
	cr_expect_eq(tally_flush(t), 0);
	cr_expect_eq(metric(m, "captured", ENDPOINT_NONE), 2);
	cr_expect_eq(stored(s, "captured", ENDPOINT_NONE), 2);
	tally_free(t);
	metrics_free(m);
	store_close(s);
}
