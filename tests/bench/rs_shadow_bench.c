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
 *                                        [--interleave]
 *
 * --interleave runs both shadowers in every round, each caller thread's
 * calls going to one and the other in turn: both then see the same
 * moments of the machine (a neighbour's burst, a timer tick), which
 * rounds of one then the other do not.
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
#include <stdbool.h>
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

/* One caller thread's calls: through sh[0] only, or (interleaved)
 * through sh[0] and sh[1] in turn, call by call, the latencies of each
 * shadower's calls in lat[0] and lat[1]. */
struct run {
	struct rs_shadower *sh[2];
	uint64_t *lat[2]; /* ns, one per call */
	int ways;         /* shadowers: 1 or 2 */
	int n;            /* calls per shadower */
};

static void *caller(void *arg)
{
	struct run *r = arg;
	int ways = r->ways;
	char target[48];

	for (int i = 0; i < r->n * ways; i++) {
		struct rs_message req = { .method = "GET", .target = target }, resp;
		struct rs_shadower *sh = r->sh[i % ways];
		uint64_t t0;

		snprintf(target, sizeof(target), "/orders/%d?i=%d", i % 1000, i);
		t0 = now_ns();
		if (rs_shadow_call(sh, &req, &resp) == 0)
			rs_release(sh, &resp);
		r->lat[i % ways][i / ways] = now_ns() - t0;
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

static const char *timeout = "2000", *queue = "16";

static struct rs_shadower *shadower_at(const char *rate)
{
	struct rs_backend p = { encode, release, NULL };
	struct rs_backend c = { slow_encode, release, NULL };
	struct rs_config *cfg = rs_config_new();
	struct rs_shadower *sh;
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
	return sh;
}

/* One round: threads x calls through the shadower of each slot in
 * `slots` (bit 0: sample 0, bit 1: sample 1), in turn call by call when
 * both; slot k's latencies appended to all[k] at n_all[k], its p99 (us)
 * in p99[k]. */
static void round_of(unsigned slots, int threads, int calls, uint64_t *all[2],
		     size_t n_all[2], double p99[2])
{
	static const char *const label[] = { "sample 0", "sample 1, 500 ms cand." };
	struct rs_shadower *sh[2];
	int slot[2], ways = 0;
	struct run runs[64];
	pthread_t t[64];
	size_t n = (size_t)threads * (size_t)calls;

	for (int k = 0; k < 2; k++)
		if (slots & (1u << k)) {
			slot[ways] = k;
			sh[ways++] = shadower_at(k ? "1" : "0");
		}
	for (int i = 0; i < threads; i++) {
		runs[i] = (struct run){ { sh[0], ways > 1 ? sh[1] : NULL },
					{ NULL, NULL }, ways, calls };
		for (int w = 0; w < ways; w++)
			runs[i].lat[w] = all[slot[w]] + n_all[slot[w]] +
					 (size_t)i * calls;
		pthread_create(&t[i], NULL, caller, &runs[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	for (int w = 0; w < ways; w++) {
		int k = slot[w];
		uint64_t *lat = all[k] + n_all[k];
		struct rs_stats st;

		rs_shadower_stats(sh[w], &st);
		rs_shadower_free(sh[w]);
		n_all[k] += n;
		qsort(lat, n, sizeof(*lat), cmp);
		p99[k] = pct(lat, n, 0.99);
		printf("%-22s p50 %7.1f us  p99 %7.1f us  p99.9 %7.1f us  "
		       "(sampled %lu, queued %lu, shed %lu)\n", label[k],
		       pct(lat, n, 0.5), p99[k], pct(lat, n, 0.999),
		       (unsigned long)st.sampled,
		       (unsigned long)(st.sampled - st.shed),
		       (unsigned long)st.shed);
	}
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: rs_shadow_bench [--threads 1..64] "
		"[--calls >=100] [--rounds 1..256] [--timeout MS] "
		"[--queue N] [--interleave]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	int threads = 4, calls = 20000, rounds = 3;
	bool interleave = false;
	uint64_t *all[2];
	size_t n_all[2] = { 0, 0 };
	double p99[2], ratio[256];

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--interleave")) {
			interleave = true;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(argv[i], "--threads"))
			threads = atoi(v);
		else if (!strcmp(argv[i], "--calls"))
			calls = atoi(v);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(v);
		else if (!strcmp(argv[i], "--timeout"))
			timeout = v;
		else if (!strcmp(argv[i], "--queue"))
			queue = v;
		else
			usage();
		i++;
	}
	if (threads < 1 || threads > 64 || calls < 100 || rounds < 1 ||
	    rounds > 256)
		usage();
	for (int k = 0; k < 2; k++) {
		all[k] = calloc((size_t)rounds * threads * calls, sizeof(*all[k]));
		if (!all[k])
			return 1;
	}
	printf("%d caller threads x %d calls per round, %d rounds%s; candidate "
	       "sleeps 500 ms, timeout %s ms, max-queue %s\n", threads, calls,
	       rounds, interleave ? ", the two shadowers' calls interleaved" :
	       "", timeout, queue);
	for (int r = 0; r < rounds; r++) {
		if (interleave) {
			round_of(3, threads, calls, all, n_all, p99);
		} else {
			round_of(1, threads, calls, all, n_all, p99);
			round_of(2, threads, calls, all, n_all, p99);
		}
		ratio[r] = p99[1] / p99[0];
	}
	/* the median of the rounds' ratios: a neighbour's burst in one
	 * round moves it less than the pooled p99 */
	for (int i = 1; i < rounds; i++)
		for (int j = i; j > 0 && ratio[j] < ratio[j - 1]; j--) {
			double t = ratio[j];

			ratio[j] = ratio[j - 1];
			ratio[j - 1] = t;
		}
	for (int k = 0; k < 2; k++) {
		qsort(all[k], n_all[k], sizeof(*all[k]), cmp);
		p99[k] = pct(all[k], n_all[k], 0.99);
		free(all[k]);
	}
	printf("all rounds: p99 sample 0 %.1f us, sample 1 with the slow "
	       "candidate %.1f us: %+.1f%%; median of the rounds' p99 ratios "
	       "%+.1f%%\n", p99[0], p99[1], (p99[1] / p99[0] - 1) * 100,
	       (ratio[rounds / 2] - 1) * 100);
	return 0;
}
