/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-exchange accounting of shadowd: each exchange http1 hands on is
 * counted, sampled and submitted for replay; each replayed one is judged
 * by the differ, counted and stored. It keeps the invariant
 * sampled = replayed + shed + unsafe_skipped.
 */
#ifndef SHADOW_PIPELINE_H
#define SHADOW_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

struct capture;
struct conn_table;
struct diff_rules;
struct exchange;
struct http1;
struct metrics;
struct pipeline;
struct replay;
struct replay_job;
struct sample;
struct store;

/* Every stage the pipeline counts for, borrowed until pipeline_free(). */
struct pipeline_config {
	int verbose;
	bool noise_recheck;
	struct capture *cap; /* NULL: reading a capture file */
	struct conn_table *conns;
	struct http1 *http1;
	struct sample *sample;
	struct replay *replay;
	const struct diff_rules *rules;
	struct store *store;
	struct metrics *metrics;
};

struct pipeline_counters {
	uint64_t captured, sampled, replayed, diverged, cand_errors, shed,
		unsafe_skipped, noise_suppressed, store_errors;
	uint64_t sample_mismatch;
};

/* Returns a pipeline over cfg's stages (cfg is copied) or NULL on ENOMEM. */
struct pipeline *pipeline_new(const struct pipeline_config *cfg);
/* Frees without flushing; NULL ok. */
void pipeline_free(struct pipeline *p);

/* http1's exchange callback: takes x. */
void pipeline_exchange(struct pipeline *p, struct exchange *x);
/* replay's done callback. */
void pipeline_replayed(struct pipeline *p, struct replay_job *job);
/* Hands the per-endpoint counts to the store and the metrics. */
void pipeline_flush(struct pipeline *p);
/* The stages' loss counters and gauges to the store and the metrics. */
void pipeline_publish(struct pipeline *p);
void pipeline_get_counters(const struct pipeline *p,
			   struct pipeline_counters *out);

#endif /* SHADOW_PIPELINE_H */
