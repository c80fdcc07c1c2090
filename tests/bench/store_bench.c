// SPDX-License-Identifier: BSD-2-Clause
/*
 * Sustained divergences written per second, batched as shadowd does it
 * (store_flush() every 100 ms). Only the time spent in the store's calls
 * (store_put, store_count, store_latency, store_flush, store_close) is
 * counted; building the records (json_deep_copy here, divergence_build() in
 * shadowd) is not. Figures:
 *  store_writes_per_sec: 1008 signatures, default bounds (10 examples,
 *    10000 records): every signature keeps examples, so nearly every record
 *    reaches the disk and evicts an older one;
 *  store_writes_per_sec_all_kept: bounds large enough that every record
 *    is written and kept;
 *  store_writes_per_sec_flood: 4 signatures, default bounds (one
 *    divergence flooding: most records are evicted before they are written);
 *  store_writes_per_sec_end_to_end: the first case, building records
 *    included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "storegen.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double run(const char *dir, size_t max_records, size_t examples, int n,
		  int n_paths, double *end_to_end)
{
	char path[200], cmd[700], err[256], ep[64], p[64];
	struct store_config cfg = { .path = path, .max_records = max_records,
				    .examples = examples };
	json_t *tmpl[16];
	struct store *s;
	double t0, last, t, in_store = 0, a;

	snprintf(path, sizeof(path), "%s/bench.db", dir);
	snprintf(cmd, sizeof(cmd), "rm -f %s %s-wal %s-shm", path, path, path);
	if (system(cmd))
		return -1;
	for (int i = 0; i < 16; i++) {
		snprintf(ep, sizeof(ep), "GET /bench/%d/{id}", i);
		tmpl[i] = storegen_record(ep, "$.name", i % 3 ? NULL : "X-Version",
					  i % 5 == 0, "token");
	}
	if (store_open(&cfg, &s, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	t0 = last = now_s();
	for (int i = 0; i < n; i++) {
		json_t *r = json_deep_copy(tmpl[i % 16]);

		snprintf(p, sizeof(p), "$.f%d", i % n_paths);
		json_object_set_new(json_array_get(json_object_get(json_object_get(r,
			"body"), "diffs"), 0), "path", json_string(p));
		a = now_s();
		if (store_put(s, r) || store_count(s, "GET /bench", STORE_DIVERGED, 1) ||
		    store_latency(s, "GET /bench", 1.0 + i % 50, 2.0 + i % 70))
			return -1;
		t = now_s();
		in_store += t - a;
		if (t - last >= 0.1) {
			if (store_flush(s))
				return -1;
			last = now_s();
			in_store += last - t;
		}
	}
	a = now_s();
	store_close(s); /* the last flush counts too */
	t = now_s();
	in_store += t - a;
	if (end_to_end)
		*end_to_end = n / (t - t0);
	for (int i = 0; i < 16; i++)
		json_decref(tmpl[i]);
	return n / in_store;
}

int main(void)
{
	char dir[] = "/tmp/store_bench.XXXXXX", cmd[64];
	double a, b, c, e2e = 0;

	if (!mkdtemp(dir))
		return 1;
	a = run(dir, 10000, 10, 200000, 63, &e2e);
	b = run(dir, 1000000, 1000000, 100000, 63, NULL);
	c = run(dir, 10000, 10, 200000, 1, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
	if (a < 0 || b < 0 || c < 0) {
		fprintf(stderr, "store_bench: store failed\n");
		return 1;
	}
	printf("store_writes_per_sec: %.0f\n", a);
	printf("store_writes_per_sec_all_kept: %.0f\n", b);
	printf("store_writes_per_sec_flood: %.0f\n", c);
	printf("store_writes_per_sec_end_to_end: %.0f\n", e2e);
	return 0;
}
