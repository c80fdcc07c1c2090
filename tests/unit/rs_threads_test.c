// SPDX-License-Identifier: BSD-2-Clause
/*
 * The library's threaded cases: many callers at once, a full queue, a
 * candidate that hangs past the timeout. A plain program (tests/lib/tap.h)
 * rather than a Criterion one, because Criterion does not start under
 * ThreadSanitizer and `make check-tsan` runs exactly these.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "request_shadow.h"
#include "rs_service.h"
#include "tap.h"

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

struct caller {
	struct rs_shadower *sh;
	int first, n;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	char target[64];

	for (int i = c->first; i < c->first + c->n; i++) {
		snprintf(target, sizeof(target), "/users/%d?page=%d", i % 97, i);
		service_get(c->sh, target);
	}
	return NULL;
}

static void identical_candidate_over_10000_calls_from_8_threads(void)
{
	struct service p = SERVICE(), c = SERVICE();
	char dir[64], db[96];
	struct rs_shadower *sh;
	struct caller callers[8];
	pthread_t t[8];
	struct rs_stats st;
	char *ring;

	/* with a store: the keeper writes it while the callers count */
	service_tmpdir(dir, sizeof(dir), "rs_threads_test");
	snprintf(db, sizeof(db), "%s/shadow.db", dir);
	sh = service_shadower(&p, &c, "max-queue", "10000", "replay-threads", "4",
			      "store", db, NULL);
	for (int i = 0; i < 8; i++) {
		callers[i] = (struct caller){ sh, i * 1250, 1250 };
		if (pthread_create(&t[i], NULL, caller_main, &callers[i]))
			exit(1);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	EXPECT(rs_shadower_flush(sh, 120000) == 0, "flush timed out");
	st = service_stats(sh);
	EXPECT(st.captured == 10000 && st.sampled == 10000, "captured %lu sampled %lu",
	       (unsigned long)st.captured, (unsigned long)st.sampled);
	EXPECT(st.replayed == 10000 && st.shed == 0, "replayed %lu shed %lu",
	       (unsigned long)st.replayed, (unsigned long)st.shed);
	EXPECT(st.diverged == 0 && st.candidate_errors == 0,
	       "diverged %lu errors %lu", (unsigned long)st.diverged,
	       (unsigned long)st.candidate_errors);
	ring = rs_divergences_json(sh, 0);
	EXPECT(ring && !strcmp(ring, "[]"), "ring %s", ring ? ring : "NULL");
	free(ring);
	rs_shadower_free(sh);
	EXPECT(p.calls == 10000 && p.releases == 10000, "primary %d calls %d releases",
	       atomic_load(&p.calls), atomic_load(&p.releases));
	EXPECT(c.calls == 10000 && c.releases == 10000,
	       "candidate %d calls %d releases", atomic_load(&c.calls),
	       atomic_load(&c.releases));
	service_rmdir(dir);
}

static void a_full_queue_sheds_and_counts_what_it_shed(void)
{
	struct service p = SERVICE(), c = SERVICE(.hang_first = 1000);
	struct rs_shadower *sh = service_shadower(&p, &c, "replay-threads", "1",
						  "max-inflight", "1",
						  "max-queue", "2",
						  "timeout", "60000", NULL);
	struct rs_stats st;

	for (int i = 0; i < 10; i++)
		service_get(sh, "/users/7");
	st = service_stats(sh);
	EXPECT(st.sampled == 10, "sampled %lu", (unsigned long)st.sampled);
	/* one with the candidate at most, two queued */
	EXPECT(st.shed >= 7, "shed %lu", (unsigned long)st.shed);
	service_open(&c);
	EXPECT(rs_shadower_flush(sh, 10000) == 0, "flush timed out");
	st = service_stats(sh);
	EXPECT(st.replayed + st.shed == 10, "replayed %lu shed %lu",
	       (unsigned long)st.replayed, (unsigned long)st.shed);
	EXPECT(st.replayed == (uint64_t)atomic_load(&c.calls), "replayed %lu calls %d",
	       (unsigned long)st.replayed, atomic_load(&c.calls));
	EXPECT(st.diverged == 0, "diverged %lu", (unsigned long)st.diverged);
	rs_shadower_free(sh);
}

static void a_hanging_candidate_is_cut_off_and_its_worker_kept(void)
{
	struct service p = SERVICE(), c = SERVICE(.hang_first = 1);
	struct rs_shadower *sh = service_shadower(&p, &c, "replay-threads", "1",
						  "timeout", "100", NULL);
	struct timespec t0;
	struct rs_stats st;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	service_get(sh, "/users/1");
	EXPECT(rs_shadower_flush(sh, 5000) == 0, "flush timed out");
	ms = ms_since(&t0);
	st = service_stats(sh);
	EXPECT(st.timeouts == 1 && st.candidate_errors == 1 && st.replayed == 1,
	       "timeouts %lu errors %lu replayed %lu", (unsigned long)st.timeouts,
	       (unsigned long)st.candidate_errors, (unsigned long)st.replayed);
	EXPECT(st.abandoned_running == 1, "abandoned %lu",
	       (unsigned long)st.abandoned_running);
	EXPECT(st.diverged == 0, "diverged %lu", (unsigned long)st.diverged);
	EXPECT(ms >= 100 && ms < 3000, "cut off after %ld ms", ms);
	/* the pool still answers while the first call hangs */
	for (int i = 0; i < 5; i++)
		service_get(sh, "/users/2");
	EXPECT(rs_shadower_flush(sh, 5000) == 0, "flush timed out");
	st = service_stats(sh);
	EXPECT(st.replayed == 6 && st.candidate_errors == 1,
	       "replayed %lu errors %lu", (unsigned long)st.replayed,
	       (unsigned long)st.candidate_errors);
	EXPECT(atomic_load(&c.releases) == 5, "releases %d", atomic_load(&c.releases));
	/* the late answer is released when it finally comes */
	service_open(&c);
	for (int i = 0; i < 500 && service_stats(sh).abandoned_running; i++)
		usleep(10000);
	EXPECT(service_stats(sh).abandoned_running == 0, "still abandoned");
	EXPECT(atomic_load(&c.releases) == 6, "releases %d", atomic_load(&c.releases));
	EXPECT(service_stats(sh).replayed == 6, "replayed changed");
	rs_shadower_free(sh);
}

int main(int argc, char **argv)
{
	static const struct tap_case cases[] = {
		TAP_CASE(identical_candidate_over_10000_calls_from_8_threads),
		TAP_CASE(a_full_queue_sheds_and_counts_what_it_shed),
		TAP_CASE(a_hanging_candidate_is_cut_off_and_its_worker_kept),
	};

	return tap_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
