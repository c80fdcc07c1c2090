/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-exchange core that shadowd and the in-process library share:
 * exchange in, verdict and counters out. For each exchange it counts the
 * capture, asks the sampler, and hands what is sampled to a replayer (the
 * daemon's is replay.c over libcurl; the library brings its own backend).
 * For each exchange the replayer reports back it diffs the candidate's
 * answer against the primary's, stores the divergence and counts the
 * outcome. The accounting keeps, totals and per endpoint alike,
 *
 *   sampled = replayed + shed + unsafe_skipped
 *
 * once every sampled exchange has come back (a candidate error is
 * replayed, never a divergence; an exchange the differ could not judge
 * is shed).
 *
 * One set of counters: the totals here (pipeline_counters()), and per
 * endpoint in a tally that goes to the store and the metrics alike at
 * each pipeline_flush(). Used by one thread at a time: a caller with
 * worker threads serialises its calls.
 */
#ifndef SHADOW_PIPELINE_H
#define SHADOW_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "replay.h"

struct capture_stats;
struct conn_stats;
struct diff_rules;
struct exchange;
struct http1_stats;
struct metrics;
struct pipeline;
struct sample;
struct store;

/* Where sampled exchanges go. Every call gets ctx. */
struct pipeline_replayer {
	/* Takes x (freed with exchange_free()) and sends it to the
	 * candidate; its outcome comes back through pipeline_replayed(),
	 * exactly once, possibly before submit returns. Required. */
	void (*submit)(void *ctx, struct exchange *x);
	/* A sampled exchange the kernel passed over uncopied because the
	 * replayer shed for `why` (REPLAY_SHED_QUEUE or _BREAKER): counts it
	 * there and returns its outcome (`why`, or REPLAY_UNSAFE_SKIPPED).
	 * x is borrowed. NULL: the outcome is `why`. */
	enum replay_outcome (*shed)(void *ctx, const struct exchange *x,
				    enum replay_outcome why);
	/* --noise-recheck: asks the candidate once more for job. 0: the job
	 * comes back through pipeline_replayed() again, with rechecks = 1
	 * and has_recheck/recheck set (it may come back from inside this
	 * call); anything else: judged as it is. NULL: never rechecked. */
	int (*recheck)(void *ctx, struct replay_job *job);
	void *ctx;
};

struct pipeline_config {
	struct sample *sample;          /* required */
	const struct diff_rules *rules; /* NULL: the defaults */
	struct store *store;            /* NULL: nothing stored */
	struct metrics *metrics;        /* NULL: no metrics */
	struct pipeline_replayer replayer;
	/* Called with each divergence record (borrowed for the call) before
	 * the store takes it. NULL: none. */
	void (*on_divergence)(void *ctx, json_t *record);
	void *divergence_ctx;
	bool noise_recheck;             /* ask replayer.recheck on a divergence */
	int verbose;                    /* > 0: one stderr line per divergence */
};

/* Totals since pipeline_new(). */
struct pipeline_counters {
	uint64_t captured, sampled, replayed, diverged, candidate_errors, shed,
		unsafe_skipped, noise_suppressed;
	/* Store calls that failed (the record or count is lost). */
	uint64_t store_errors;
	/* Exchanges the kernel decided otherwise than the sampler: left
	 * unsampled what it would replay (the answer is gone), or shed what
	 * it would not sample. Never expected; counted as parse errors. */
	uint64_t sample_mismatch;
};

/* The other stages' loss counters and gauges, as they stand now, for
 * pipeline_publish(). Any pointer may be NULL (that stage is absent:
 * its counters are 0). */
struct pipeline_sources {
	const struct conn_stats *conns;
	const struct http1_stats *http1;
	const struct capture_stats *capture;
	const struct replay_stats *replay;
	double send_rate; /* replay_send_rate() */
};

/* Returns a pipeline in *out (pipeline_free() it), 0, or -EINVAL (no
 * sample or no submit) or -ENOMEM. Everything cfg points to is borrowed
 * until pipeline_free(); cfg itself is copied. */
int pipeline_new(const struct pipeline_config *cfg, struct pipeline **out)
	__attribute__((warn_unused_result));
/* Frees without flushing (pipeline_flush() first); NULL ok. */
void pipeline_free(struct pipeline *p);

/* Counts x as captured and, if it is sampled, hands it to the replayer's
 * submit. Returns true when the replayer took x; false when x is still
 * the caller's (not sampled, or only counted), to free or recycle. */
bool pipeline_exchange(struct pipeline *p, struct exchange *x)
	__attribute__((warn_unused_result));

/* The replayer's report on one submitted exchange (job borrowed: the
 * pipeline takes nothing out of it). REPLAY_OK: job->candidate (and
 * candidate_ms) is the candidate's answer, diffed against job->x->resp,
 * stored when it diverges; REPLAY_CANDIDATE_ERROR: job->error says why;
 * the shed and skipped outcomes are only counted. */
void pipeline_replayed(struct pipeline *p, struct replay_job *job);

/* Hands the per-endpoint counts to the store and the metrics. Before
 * store_flush(), so the store writes them in the same transaction. */
void pipeline_flush(struct pipeline *p);

/* Publishes the capture layer's loss counters to the store (its capture
 * object: parse_errors takes in every exchange http1 could not frame or
 * pair, and the sample mismatches) and the stages' gauges to the
 * metrics. */
void pipeline_publish(struct pipeline *p, const struct pipeline_sources *src);

/* Borrowed; valid until pipeline_free(). */
const struct pipeline_counters *pipeline_counters(const struct pipeline *p);

#endif /* SHADOW_PIPELINE_H */
