// SPDX-License-Identifier: BSD-2-Clause
/*
 * The replayer with threads calling the candidate (replay_config.threads,
 * shadowd's --replay-threads), against a real node candidate that echoes
 * each request: every job back exactly once, on the loop's thread, with
 * its own answer; a full queue shed and counted; one breaker for all the
 * threads; replay_free() with transfers in flight. A plain program
 * (tests/lib/tap.h), so that `make check-tsan` runs it too. Every wait
 * has a deadline.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "replay.h"
#include "servers.h"
#include "tap.h"
#include "util/loop.h"

#define JOBS 2000

struct env {
	struct loop *loop;
	struct replay *r;
	struct servers_proc cand;
	char url[64];
	int port;
	pthread_t loop_thread;
	/* what the done callback saw */
	unsigned calls, off_thread, bad_pairs, not_ok;
	unsigned char seen[JOBS];
	unsigned max_active; /* the candidate's, at most */
	bool want_recheck;
	unsigned rechecked;
};

/* "/pair/N" -> N, or -1. */
static int pair_index(const char *target)
{
	int i;

	if (!target || sscanf(target, "/pair/%d", &i) != 1 || i < 0 ||
	    i >= JOBS)
		return -1;
	return i;
}

/* The echo's member `key` (a string) into out, or "". */
static void echo_member(const struct http_response *resp, const char *key,
			char *out, size_t len, unsigned *max_active)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)resp->raw.data, resp->raw.len, 0,
			       &jerr);
	const char *v = json_string_value(json_object_get(j, key));
	json_int_t a = json_integer_value(json_object_get(j, "max_active"));

	snprintf(out, len, "%s", v ? v : "");
	if (max_active && a > (json_int_t)*max_active)
		*max_active = (unsigned)a;
	json_decref(j);
}

static void on_done(void *ctx, struct replay_job *job)
{
	struct env *e = ctx;
	int i = pair_index(job->x ? job->x->req.target : NULL);
	char url[64];

	e->calls++;
	if (!pthread_equal(pthread_self(), e->loop_thread))
		e->off_thread++;
	if (i >= 0 && e->seen[i] < 255)
		e->seen[i]++;
	if (job->outcome != REPLAY_OK) {
		e->not_ok++;
		return;
	}
	echo_member(job->rechecks ? &job->recheck : &job->candidate, "url",
		    url, sizeof(url), &e->max_active);
	if (i < 0 || strcmp(url, job->x->req.target))
		e->bad_pairs++;
	if (e->want_recheck && !job->rechecks &&
	    replay_recheck(e->r, job) == 0)
		e->rechecked++;
}

static struct exchange *mkx(int i)
{
	struct exchange *x = calloc(1, sizeof(*x));
	char target[32];

	if (!x)
		exit(1);
	snprintf(target, sizeof(target), "/pair/%d", i);
	if (exchange_set_line(x, "GET", 3, target, strlen(target), NULL) ||
	    headers_add(&x->req.headers, "Host", 4, "shadow.test", 11))
		exit(1);
	x->req.http_major = 1;
	x->req.http_minor = 1;
	return x;
}

/* A loop and, unless mode is NULL, `node candidate.js PORT MODE DELAY`. */
static void env_start(struct env *e, const char *mode, int delay)
{
	char p[16], d[16];
	const char *argv[] = { "node", servers_path("candidate.js"), p, mode,
			       d, NULL };

	memset(e, 0, sizeof(*e));
	e->loop_thread = pthread_self();
	if (loop_new(&e->loop) < 0)
		exit(1);
	e->port = servers_free_port();
	snprintf(p, sizeof(p), "%d", e->port);
	snprintf(d, sizeof(d), "%d", delay);
	snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", e->port);
	if (mode && servers_start(&e->cand, argv, e->port, 5000)) {
		fprintf(stderr, "cannot start the candidate\n");
		exit(1);
	}
}

static void env_replay(struct env *e, struct replay_config *cfg)
{
	char err[256] = "";

	cfg->candidate_url = e->url;
	if (replay_new(e->loop, cfg, on_done, e, &e->r, err, sizeof(err))) {
		fprintf(stderr, "replay_new: %s\n", err);
		exit(1);
	}
}

static void env_stop(struct env *e)
{
	replay_free(e->r);
	loop_free(e->loop);
	servers_stop(&e->cand);
}

/* Runs the loop for ms. */
static void run_for(struct env *e, long ms)
{
	uint64_t end = loop_now_ms() + (uint64_t)ms;

	for (uint64_t now; (now = loop_now_ms()) < end;)
		loop_run_once(e->loop, (long)(end - now));
}

static void every_job_comes_back_once_with_its_own_answer(void)
{
	struct replay_config cfg = { .threads = 2, .max_inflight = 16,
				     .max_queue = JOBS };
	const struct replay_stats *st;
	struct env e;
	unsigned missing = 0, twice = 0;

	env_start(&e, "echo", 1);
	env_replay(&e, &cfg);
	for (int i = 0; i < JOBS; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(replay_drain(e.r, 60000) == 0, "drain timed out");
	for (int i = 0; i < JOBS; i++) {
		missing += !e.seen[i];
		twice += e.seen[i] > 1;
	}
	EXPECT(e.calls == JOBS, "%u callbacks for %d jobs", e.calls, JOBS);
	EXPECT(!missing && !twice, "%u never back, %u back twice", missing,
	       twice);
	EXPECT(!e.bad_pairs, "%u answers paired with another request",
	       e.bad_pairs);
	EXPECT(!e.not_ok, "%u not ok", e.not_ok);
	EXPECT(!e.off_thread, "%u callbacks off the loop's thread",
	       e.off_thread);
	/* The threads' shares add up to the cap, never more. */
	EXPECT(e.max_active >= 2 && e.max_active <= 16,
	       "the candidate saw %u at once", e.max_active);
	st = replay_stats(e.r);
	EXPECT(st->submitted == JOBS && st->replayed == JOBS && st->ok == JOBS,
	       "submitted %llu replayed %llu ok %llu",
	       (unsigned long long)st->submitted,
	       (unsigned long long)st->replayed, (unsigned long long)st->ok);
	EXPECT(!st->inflight && !st->queued, "inflight %u queued %zu",
	       st->inflight, st->queued);
	env_stop(&e);
}

static void a_recheck_goes_out_again_from_a_thread(void)
{
	struct replay_config cfg = { .threads = 2, .max_inflight = 4 };
	const struct replay_stats *st;
	struct env e;

	env_start(&e, "echo", 0);
	e.want_recheck = true;
	env_replay(&e, &cfg);
	for (int i = 0; i < 20; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(replay_drain(e.r, 20000) == 0, "drain timed out");
	st = replay_stats(e.r);
	EXPECT(e.rechecked == 20 && e.calls == 40, "rechecked %u, %u callbacks",
	       e.rechecked, e.calls);
	EXPECT(!e.bad_pairs && !e.not_ok, "bad pairs %u, not ok %u",
	       e.bad_pairs, e.not_ok);
	EXPECT(st->replayed == 20 && st->rechecks == 20,
	       "replayed %llu rechecks %llu", (unsigned long long)st->replayed,
	       (unsigned long long)st->rechecks);
	env_stop(&e);
}

static void a_full_queue_sheds_and_counts_what_it_shed(void)
{
	struct replay_config cfg = { .threads = 2, .max_inflight = 2,
				     .max_queue = 4 };
	const struct replay_stats *st;
	struct env e;

	env_start(&e, "echo", 100);
	env_replay(&e, &cfg);
	/* All at once: the threads get them at the end of the iteration. */
	for (int i = 0; i < 20; i++)
		replay_submit(e.r, mkx(i));
	st = replay_stats(e.r);
	EXPECT(st->shed_queue == 16 && st->queued == 4,
	       "shed %llu queued %zu", (unsigned long long)st->shed_queue,
	       st->queued);
	EXPECT(replay_shedding(e.r) == REPLAY_SHED_QUEUE, "not shedding");
	EXPECT(e.calls == 16, "%u callbacks for the shed", e.calls);
	EXPECT(replay_drain(e.r, 10000) == 0, "drain timed out");
	EXPECT(e.calls == 20 && st->replayed == 4 && st->ok == 4,
	       "%u callbacks, replayed %llu", e.calls,
	       (unsigned long long)st->replayed);
	EXPECT(st->submitted == st->replayed + st->shed_queue,
	       "submitted %llu != replayed + shed",
	       (unsigned long long)st->submitted);
	EXPECT(e.max_active <= 2, "the candidate saw %u at once",
	       e.max_active);
	EXPECT(replay_shedding(e.r) == REPLAY_OK, "still shedding");
	env_stop(&e);
}

static void one_breaker_counts_the_failures_of_every_thread(void)
{
	/* One slot per thread: neither thread alone sees four failures in
	 * a row, together they do. */
	struct replay_config cfg = { .threads = 2, .max_inflight = 2,
				     .breaker_failures = 4,
				     .breaker_pause_ms = 300 };
	const struct replay_stats *st;
	char p[16];
	const char *argv[] = { "node", servers_path("candidate.js"), p,
			       "echo", "0", NULL };
	struct env e;

	env_start(&e, NULL, 0); /* nothing listens: refused */
	env_replay(&e, &cfg);
	st = replay_stats(e.r);
	for (int i = 0; i < 4; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(replay_drain(e.r, 10000) == 0, "drain timed out");
	EXPECT(st->candidate_errors == 4 &&
	       st->errors[REPLAY_ERR_REFUSED] == 4,
	       "candidate errors %llu", (unsigned long long)st->candidate_errors);
	EXPECT(st->breaker == REPLAY_BREAKER_OPEN && st->breaker_opened == 1,
	       "breaker %d, opened %llu", st->breaker,
	       (unsigned long long)st->breaker_opened);
	for (int i = 4; i < 7; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(st->shed_breaker == 3, "shed by the breaker %llu",
	       (unsigned long long)st->shed_breaker);
	EXPECT(replay_shedding(e.r) == REPLAY_SHED_BREAKER, "not shedding");

	/* After the pause one probe goes out, whichever thread takes it;
	 * the rest wait for it or are shed, and its answer closes the
	 * breaker for all. */
	snprintf(p, sizeof(p), "%d", e.port);
	EXPECT(servers_start(&e.cand, argv, e.port, 5000) == 0,
	       "candidate did not start");
	run_for(&e, 400);
	EXPECT(st->breaker == REPLAY_BREAKER_HALF_OPEN, "breaker %d",
	       st->breaker);
	for (int i = 7; i < 12; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(replay_drain(e.r, 10000) == 0, "drain timed out");
	EXPECT(st->breaker == REPLAY_BREAKER_CLOSED, "breaker %d", st->breaker);
	EXPECT(st->ok == 1 && st->shed_breaker == 7,
	       "ok %llu, shed by the breaker %llu", (unsigned long long)st->ok,
	       (unsigned long long)st->shed_breaker);
	for (int i = 12; i < 22; i++)
		replay_submit(e.r, mkx(i));
	EXPECT(replay_drain(e.r, 10000) == 0, "drain timed out");
	EXPECT(st->ok == 11, "ok %llu", (unsigned long long)st->ok);
	EXPECT(e.calls == 22 && !e.bad_pairs && !e.off_thread,
	       "%u callbacks, %u bad pairs, %u off thread", e.calls,
	       e.bad_pairs, e.off_thread);
	EXPECT(st->submitted == st->replayed + st->shed_breaker,
	       "submitted %llu != replayed + shed",
	       (unsigned long long)st->submitted);
	env_stop(&e);
}

/* replay_free() with transfers in flight on both threads, and with jobs
 * handed over but not yet taken: quick, no callback, nothing leaked (ASan
 * says). */
static void free_with_transfers_in_flight_is_quick_and_silent(void)
{
	struct replay_config cfg = { .threads = 2, .max_inflight = 8,
				     .timeout_ms = 30000 };
	struct env e;
	uint64_t t0, deadline;

	env_start(&e, "echo", 20000);
	env_replay(&e, &cfg);
	for (int i = 0; i < 20; i++)
		replay_submit(e.r, mkx(i));
	deadline = loop_now_ms() + 5000;
	while (loop_now_ms() < deadline && replay_stats(e.r)->inflight < 8)
		loop_run_once(e.loop, 50);
	EXPECT(replay_stats(e.r)->inflight == 8, "inflight %u",
	       replay_stats(e.r)->inflight);
	run_for(&e, 200); /* the requests reach the candidate */
	t0 = loop_now_ms();
	replay_free(e.r);
	e.r = NULL;
	EXPECT(loop_now_ms() - t0 < 2000, "replay_free took %llu ms",
	       (unsigned long long)(loop_now_ms() - t0));
	EXPECT(e.calls == 0, "%u callbacks", e.calls);
	env_stop(&e);

	/* Handed over, not yet taken by the threads. */
	env_start(&e, "echo", 20000);
	env_replay(&e, &cfg);
	for (int i = 0; i < 20; i++)
		replay_submit(e.r, mkx(i));
	loop_run_once(e.loop, 0);
	replay_free(e.r);
	e.r = NULL;
	EXPECT(e.calls == 0, "%u callbacks", e.calls);
	env_stop(&e);
}

int main(int argc, char **argv)
{
	static const struct tap_case cases[] = {
		TAP_CASE(every_job_comes_back_once_with_its_own_answer),
		TAP_CASE(a_recheck_goes_out_again_from_a_thread),
		TAP_CASE(a_full_queue_sheds_and_counts_what_it_shed),
		TAP_CASE(one_breaker_counts_the_failures_of_every_thread),
		TAP_CASE(free_with_transfers_in_flight_is_quick_and_silent),
	};

	return tap_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
