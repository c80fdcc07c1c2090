// SPDX-License-Identifier: BSD-2-Clause
/*
 * What shadowing costs the caller of rs_shadow_call(): its latency with a
 * candidate that sleeps 500 ms on every call and everything sampled,
 * against the same shadower at `sample 0` (no candidate call at all).
 * The primary is an encoder that spends about 6 us building a 1 KiB JSON
 * body. Rounds alternate the two, so a neighbour's load on a shared
 * machine falls on both.
 *
 *   .output/tests/bench/rs_shadow_bench [--threads T] [--calls N] [--rounds R]
 *                                        [--timeout MS] [--queue N]
 *
 * The default timeout (2000) lets the candidate answer; --timeout 100
 * cuts every call off, so the shadower also abandons and replaces its
 * workers meanwhile. Each round ends by freeing the shadower, which waits
 * for the queue (max-queue calls of 500 ms over 4 workers).
 *
 * Prints p50/p99/p99.9 per round, the p99 ratio over all rounds pooled,
 * and the median of the rounds' own ratios.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "request_shadow.h"

static const struct rs_header json[] = { { "Content-Type", "application/json" } };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int encode(void *ctx, const struct rs_message *req,
		  struct rs_message *resp)
{
	size_t cap = 4096, len = 0;
	char *body = malloc(cap);

	if (!body)
		return -ENOMEM;
	len += (size_t)snprintf(body, cap, "{\"target\":\"%s\",\"items\":[",
				req->target);
	for (int i = 0; i < 40 && len < cap - 64; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"id\":%d,\"price\":%.4f}", i ? "," : "",
					i, i * 1.0375);
	len += (size_t)snprintf(body + len, cap - len, "]}");
	resp->status = 200;
	resp->headers = json;
	resp->n_headers = 1;
	resp->body = body;
	resp->body_len = len;
	return 0;
}

static int slow_encode(void *ctx, const struct rs_message *req,
		       struct rs_message *resp)
{
	usleep(500 * 1000);
	return encode(ctx, req, resp);
}

static void release(void *ctx, struct rs_message *resp)
{
	free((void *)resp->body);
}

struct run {
	struct rs_shadower *sh;
	uint64_t *lat; /* ns, one per call */
	int n;
};

static void *caller(void *arg)
{
	struct run *r = arg;
	char target[48];

	for (int i = 0; i < r->n; i++) {
		struct rs_message req = { .method = "GET", .target = target }, resp;
		uint64_t t0;

		snprintf(target, sizeof(target), "/orders/%d?i=%d", i % 1000, i);
		t0 = now_ns();
		if (rs_shadow_call(r->sh, &req, &resp) == 0)
			rs_release(r->sh, &resp);
		r->lat[i] = now_ns() - t0;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	return v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

/* One round: threads x calls through a shadower at sample `rate`; the
 * latencies appended to all[*n_all...]; returns the round's p99 (us). */
static const char *timeout = "2000", *queue = "16";

static double round_of(const char *rate, int threads, int calls, uint64_t *all,
		     size_t *n_all, const char *label)
{
	struct rs_backend p = { encode, release, NULL };
	struct rs_backend c = { slow_encode, release, NULL };
	struct rs_config *cfg = rs_config_new();
	struct run runs[64];
	pthread_t t[64];
	struct rs_shadower *sh;
	struct rs_stats st;
	uint64_t *lat = all + *n_all;
	size_t n = (size_t)threads * (size_t)calls;
	char *err = NULL;

	if (!cfg || rs_config_set(cfg, "sample", rate) ||
	    rs_config_set(cfg, "timeout", timeout) ||
	    rs_config_set(cfg, "max-queue", queue)) {
		fprintf(stderr, "rs_shadow_bench: bad configuration\n");
		exit(1);
	}
	sh = rs_shadower_new(cfg, p, c, &err);
	rs_config_free(cfg);
	if (!sh) {
		fprintf(stderr, "rs_shadow_bench: %s\n", err);
		exit(1);
	}
	for (int i = 0; i < threads; i++) {
		runs[i] = (struct run){ sh, lat + (size_t)i * calls, calls };
		pthread_create(&t[i], NULL, caller, &runs[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	rs_shadower_stats(sh, &st);
	rs_shadower_free(sh);
	*n_all += n;
	qsort(lat, n, sizeof(*lat), cmp);
	printf("%-22s p50 %7.1f us  p99 %7.1f us  p99.9 %7.1f us  "
	       "(sampled %lu, queued %lu, shed %lu)\n", label, pct(lat, n, 0.5),
	       pct(lat, n, 0.99), pct(lat, n, 0.999), (unsigned long)st.sampled,
	       (unsigned long)(st.sampled - st.shed), (unsigned long)st.shed);
	fflush(stdout);
	return pct(lat, n, 0.99);
}

int main(int argc, char **argv)
{
	int threads = 4, calls = 20000, rounds = 3;
	uint64_t *base, *shadow;
	size_t nb = 0, ns = 0;
	double b99, s99, ratio[256];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--calls"))
			calls = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--timeout"))
			timeout = argv[i + 1];
		else if (!strcmp(argv[i], "--queue"))
			queue = argv[i + 1];
	}
	if (threads < 1 || threads > 64 || calls < 100 || rounds < 1 ||
	    rounds > 256) {
		fprintf(stderr, "usage: rs_shadow_bench [--threads 1..64] "
			"[--calls >=100] [--rounds 1..256] [--timeout MS] "
			"[--queue N]\n");
		return 1;
	}
	base = calloc((size_t)rounds * threads * calls, sizeof(*base));
	shadow = calloc((size_t)rounds * threads * calls, sizeof(*shadow));
	if (!base || !shadow)
		return 1;
	printf("%d caller threads x %d calls per round, %d rounds; candidate "
	       "sleeps 500 ms, timeout %s ms, max-queue %s\n", threads, calls,
	       rounds, timeout, queue);
	for (int r = 0; r < rounds; r++) {
		b99 = round_of("0", threads, calls, base, &nb, "sample 0");
		s99 = round_of("1", threads, calls, shadow, &ns,
			       "sample 1, 500 ms cand.");
		ratio[r] = s99 / b99;
	}
	/* the median of the rounds' ratios: a neighbour's burst in one
	 * round moves it less than the pooled p99 */
	for (int i = 1; i < rounds; i++)
		for (int j = i; j > 0 && ratio[j] < ratio[j - 1]; j--) {
			double t = ratio[j];

			ratio[j] = ratio[j - 1];
			ratio[j - 1] = t;
		}
	qsort(base, nb, sizeof(*base), cmp);
	qsort(shadow, ns, sizeof(*shadow), cmp);
	b99 = pct(base, nb, 0.99);
	s99 = pct(shadow, ns, 0.99);
	printf("all rounds: p99 sample 0 %.1f us, sample 1 with the slow "
	       "candidate %.1f us: %+.1f%%; median of the rounds' p99 ratios "
	       "%+.1f%%\n", b99, s99, (s99 / b99 - 1) * 100,
	       (ratio[rounds / 2] - 1) * 100);
	free(base);
	free(shadow);
	return 0;
}
