// SPDX-License-Identifier: BSD-2-Clause
/*
 * Throughput of the capture -> conn_table -> http1 path on one core:
 * replays a recorded capture of small JSON exchanges (default
 * tests/data/nginx_bench.cap: 240 keep-alive exchanges against nginx)
 * over and over for about two seconds.
 *
 *   .output/tests/bench/http1_bench [CAPTURE] [SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capfile.h"
#include "conn.h"
#include "http1.h"
#include "message.h"
#include "shadow_event.h"

static void on_exchange(void *ctx, struct exchange *x)
{
	(*(uint64_t *)ctx)++;
	exchange_free(x);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "tests/data/nginx_bench.cap";
	double secs = argc > 2 ? atof(argv[2]) : 2.0;
	struct conn_limits lim = { .max_conns = 1024 };
	struct http1_config cfg = { 0 };
	uint64_t got = 0, rounds = 0, bytes = 0;
	struct capfile_reader *r;
	struct http1 *h;
	struct conn_table *t;
	double t0, el;
	char err[256];

	r = capfile_open_reader(path, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "http1_bench: %s\n", err);
		return 1;
	}
	capfile_close_reader(r);
	h = http1_new(&cfg, on_exchange, &got);
	t = h ? conn_table_new(&lim, &http1_sink_ops, h) : NULL;
	if (!t) {
		fprintf(stderr, "http1_bench: out of memory\n");
		return 1;
	}
	t0 = now();
	do {
		const struct shadow_event *ev;
		const void *pl;

		r = capfile_open_reader(path, err, sizeof(err));
		if (!r) {
			fprintf(stderr, "http1_bench: %s\n", err);
			return 1;
		}
		while (capfile_next(r, &ev, &pl, err, sizeof(err)) == 1) {
			struct shadow_event e = *ev;

			/* Each round is a new set of connections. */
			e.gen += (uint32_t)rounds;
			bytes += e.len;
			(void)conn_table_feed(t, &e, pl);
		}
		capfile_close_reader(r);
		rounds++;
		el = now() - t0;
	} while (el < secs);
	conn_table_free(t);
	if (http1_stats(h)->parse_errors || http1_stats(h)->unpaired) {
		fprintf(stderr, "http1_bench: capture did not parse cleanly\n");
		return 1;
	}
	http1_free(h);
	printf("http1_exchanges_per_sec: %.0f\n", got / el);
	printf("http1_mbytes_per_sec: %.1f\n", bytes / el / 1e6);
	printf("http1_bench_exchanges: %llu\n", (unsigned long long)got);
	return 0;
}
