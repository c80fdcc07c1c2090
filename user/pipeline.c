// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "conn.h"
#include "diff.h"
#include "divergence.h"
#include "http1.h"
#include "message.h"
#include "metrics.h"
#include "replay.h"
#include "sample.h"
#include "store.h"
#include "tally.h"

struct pipeline {
	int verbose;
	bool noise_recheck;
	struct capture *cap;
	struct conn_table *conns;
	struct http1 *http1;
	struct sample *sample;
	struct replay *replay;
	const struct diff_rules *rules;
	struct store *store;
	struct metrics *metrics;
	struct tally *tally; /* per-endpoint counts on their way to both */
	uint64_t captured, sampled, replayed, diverged, cand_errors, shed,
		unsafe_skipped, noise_suppressed, store_errors;
	/* Answers the kernel passed over as unsampled that sample_decide()
	 * would have replayed (never expected: a loss, counted). */
	uint64_t sample_mismatch;
};

struct pipeline *pipeline_new(const struct pipeline_config *cfg)
{
	struct pipeline *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->verbose = cfg->verbose;
	p->noise_recheck = cfg->noise_recheck;
	p->cap = cfg->cap;
	p->conns = cfg->conns;
	p->http1 = cfg->http1;
	p->sample = cfg->sample;
	p->replay = cfg->replay;
	p->rules = cfg->rules;
	p->store = cfg->store;
	p->metrics = cfg->metrics;
	p->tally = tally_new(p->store, p->metrics);
	if (!p->tally) {
		free(p);
		return NULL;
	}
	return p;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	tally_free(p->tally);
	free(p);
}

/* Per-endpoint counting, in the store and the metrics alike: batched in
 * the tally until the next store flush. */
static void count(struct pipeline *d, const char *ep, enum store_counter c,
		  uint64_t n)
{
	tally_count(d->tally, ep, c, n);
}

/* Hands the tally's sums to the store and the metrics. */
static void count_flush(struct pipeline *d)
{
	d->store_errors += tally_flush(d->tally);
}

static void record_paths(struct pipeline *d, const char *ep,
			 const struct diff_part *p, bool noise)
{
	size_t i;
	json_t *v;

	if (!p->diffs)
		return;
	json_array_foreach(p->diffs, i, v) {
		const char *path = json_string_value(json_object_get(v, "path"));

		if (!path)
			path = json_string_value(json_object_get(v, "name"));
		if (path && store_field(d->store, ep, path, noise) < 0)
			d->store_errors++;
	}
}

/* The differ's verdict on one replayed exchange, counted and stored. */
static void judge(struct pipeline *d, struct replay_job *job)
{
	const struct exchange *x = job->x;
	const char *ep = x->endpoint;
	const struct http_response *na = NULL, *nb = NULL;
	struct diff_result res = { 0 };
	json_t *rec = NULL, *parts[3] = { NULL, NULL, NULL };
	double primary_ms = (x->t_last_resp_ns - x->t_first_req_ns) / 1e6;
	int rc;

	if (job->has_recheck) {
		na = &job->candidate;
		nb = &job->recheck;
	} else if (job->has_noise) {
		na = &x->resp;
		nb = &job->noise;
	}
	rc = diff_responses(d->rules, &x->resp, &job->candidate, na, nb, &res);
	if (rc < 0) {
		if (d->verbose)
			fprintf(stderr, "shadowd: cannot diff %s: %s\n", ep,
				strerror(-rc));
		count(d, ep, STORE_SHED, 1);
		d->shed++;
		return;
	}
	if (res.diverged && d->noise_recheck && !job->rechecks &&
	    replay_recheck(d->replay, job) == 0) {
		diff_result_clean(&res);
		return; /* judged again with the second answer */
	}
	d->replayed++;
	count(d, ep, STORE_REPLAYED, 1);
	if (store_latency(d->store, ep, primary_ms, job->candidate_ms) < 0)
		d->store_errors++;
	metrics_latency(d->metrics, primary_ms, job->candidate_ms);
	if (res.noise_suppressed) {
		size_t i;
		json_t *v;

		d->noise_suppressed++;
		count(d, ep, STORE_NOISE_SUPPRESSED, 1);
		json_array_foreach(res.noise_paths, i, v)
			if (json_is_string(v) &&
			    store_field(d->store, ep, json_string_value(v),
					true) < 0)
				d->store_errors++;
	}
	if (!res.diverged)
		goto cleanup;
	d->diverged++;
	count(d, ep, STORE_DIVERGED, 1);
	if (res.status.diverged)
		count(d, ep, STORE_DIVERGED_STATUS, 1);
	if (res.headers.diverged) {
		count(d, ep, STORE_DIVERGED_HEADERS, 1);
		record_paths(d, ep, &res.headers, false);
	}
	if (res.body.diverged) {
		count(d, ep, STORE_DIVERGED_BODY, 1);
		record_paths(d, ep, &res.body, false);
	}
	parts[0] = diff_part_json(&res.status);
	parts[1] = diff_part_json(&res.headers);
	parts[2] = diff_part_json(&res.body);
	if (!parts[0] || !parts[1] || !parts[2] ||
	    divergence_build(x, &job->candidate, job->candidate_ms, parts[0],
			 parts[1], parts[2], &rec) < 0 ||
	    store_put(d->store, rec) < 0)
		d->store_errors++;
	if (d->verbose)
		fprintf(stderr, "shadowd: divergence %s %s: %s%s%s%s%s\n",
			x->req.method, x->req.target, res.status.summary,
			res.status.diverged ? "; " : "", res.headers.summary,
			res.headers.diverged ? "; " : "", res.body.summary);
cleanup:
	for (int i = 0; i < 3; i++)
		json_decref(parts[i]);
	diff_result_clean(&res);
}

/* An exchange never sent (replay_outcome o: skipped as unsafe, or shed),
 * on endpoint ep: only counted. */
static void count_unsent(struct pipeline *d, const char *ep,
			 enum replay_outcome o)
{
	switch (o) {
	case REPLAY_UNSAFE_SKIPPED:
		d->unsafe_skipped++;
		count(d, ep, STORE_UNSAFE_SKIPPED, 1);
		break;
	case REPLAY_SHED_BREAKER:
		/* Never sent: shed, not a candidate error of its own. */
		metrics_candidate_error(d->metrics, "breaker_open");
		__attribute__((fallthrough));
	default:
		d->shed++;
		count(d, ep, STORE_SHED, 1);
		break;
	}
}

void pipeline_replayed(struct pipeline *d, struct replay_job *job)
{
	const char *ep = job->x->endpoint;

	/* Where the store is called below with the endpoint directly, it
	 * must not reach the store ahead of endpoints counted before it: the
	 * tally goes first. Shed and skipped exchanges (most of them when the
	 * candidate is slow) are only counted. */
	if (job->outcome == REPLAY_OK ||
	    job->outcome == REPLAY_CANDIDATE_ERROR)
		count_flush(d);
	switch (job->outcome) {
	case REPLAY_OK:
		judge(d, job);
		break;
	case REPLAY_CANDIDATE_ERROR:
		/* Sent but unanswered: replayed, never a divergence. */
		d->cand_errors++;
		d->replayed++;
		count(d, ep, STORE_REPLAYED, 1);
		/* The store counts candidate_errors with the class. */
		if (store_candidate_error(d->store, ep,
					  replay_error_name(job->error)) < 0)
			d->store_errors++;
		metrics_count(d->metrics, ep, STORE_CANDIDATE_ERRORS, 1);
		metrics_candidate_error(d->metrics, replay_error_name(job->error));
		break;
	default:
		count_unsent(d, ep, job->outcome);
		break;
	}
}

void pipeline_exchange(struct pipeline *d, struct exchange *x)
{

	d->captured++;
	count(d, x->endpoint, STORE_CAPTURED, 1);
	if (!sample_decide(d->sample, x)) {
		/* Passed over as shed, so sampled as the kernel saw it. */
		if (x->req.flags & (MESSAGE_SHED_QUEUE | MESSAGE_SHED_BREAKER))
			d->sample_mismatch++;
		http1_recycle(d->http1, x);
		return;
	}
	if (x->req.flags & (MESSAGE_SHED_QUEUE | MESSAGE_SHED_BREAKER)) {
		/* Sampled, and passed over by the kernel while shedding. */
		d->sampled++;
		count(d, x->endpoint, STORE_SAMPLED, 1);
		count_unsent(d, x->endpoint,
			     replay_shed(d->replay, x,
					 x->req.flags & MESSAGE_SHED_BREAKER ?
					 REPLAY_SHED_BREAKER :
					 REPLAY_SHED_QUEUE));
		http1_recycle(d->http1, x);
		return;
	}
	if ((x->resp.flags & MESSAGE_UNCOPIED) ||
	    (x->req.flags & MESSAGE_HEAD_UNCOPIED)) {
		/* The kernel left it unsampled and this decision disagrees:
		 * the answer is gone. Never expected; counted as a loss. */
		d->sample_mismatch++;
		http1_recycle(d->http1, x);
		return;
	}
	d->sampled++;
	count(d, x->endpoint, STORE_SAMPLED, 1);
	replay_submit(d->replay, x);
}

void pipeline_publish(struct pipeline *d)
{
	const struct conn_stats *cs = conn_table_stats(d->conns);
	const struct http1_stats *hs = http1_stats(d->http1);
	const struct replay_stats *rs = replay_stats(d->replay);
	/* Every exchange that could not be framed or paired: the store's
	 * parse_errors. */
	uint64_t parse_errors = hs->parse_errors + hs->oversize +
				hs->ambiguous + hs->unpaired + hs->overflow +
				hs->nomem + d->sample_mismatch;
	struct capture_stats st = { 0 };

	if (d->cap) {
		capture_get_stats(d->cap, &st);
		metrics_set(d->metrics, METRICS_RING_USED, st.ring_used);
		metrics_set(d->metrics, METRICS_RING_SIZE, st.ring_size);
		metrics_set(d->metrics, METRICS_TARGETS, st.targets);
	}
	if (store_capture_counters(d->store, cs->lost_events, cs->gaps,
				   parse_errors, hs->truncated,
				   st.tls_undecoded) < 0)
		d->store_errors++;
	metrics_set(d->metrics, METRICS_TLS_UNDECODED, st.tls_undecoded);
	metrics_set(d->metrics, METRICS_TLS_UNLINKED, st.tls_unlinked);
	metrics_set(d->metrics, METRICS_UNHOOKED, st.unhooked);
	metrics_set(d->metrics, METRICS_UNCOPIED, hs->uncopied);
	metrics_set(d->metrics, METRICS_SAMPLE_MISMATCH, d->sample_mismatch);
	metrics_set(d->metrics, METRICS_LOST_EVENTS, cs->lost_events);
	metrics_set(d->metrics, METRICS_GAPS, cs->gaps);
	metrics_set(d->metrics, METRICS_PARSE_ERRORS, parse_errors);
	metrics_set(d->metrics, METRICS_TRUNCATED, hs->truncated);
	metrics_set(d->metrics, METRICS_CONNECTIONS, cs->conns_active);
	metrics_set(d->metrics, METRICS_QUEUE_DEPTH, rs->queued);
	metrics_set(d->metrics, METRICS_INFLIGHT, rs->inflight);
	metrics_set(d->metrics, METRICS_BREAKER_OPEN, rs->breaker != 0);
	metrics_set(d->metrics, METRICS_SEND_RATE, replay_send_rate(d->replay));
}


void pipeline_flush(struct pipeline *p)
{
	count_flush(p);
}

void pipeline_get_counters(const struct pipeline *p,
			   struct pipeline_counters *out)
{
	*out = (struct pipeline_counters){
		.captured = p->captured, .sampled = p->sampled,
		.replayed = p->replayed, .diverged = p->diverged,
		.cand_errors = p->cand_errors, .shed = p->shed,
		.unsafe_skipped = p->unsafe_skipped,
		.noise_suppressed = p->noise_suppressed,
		.store_errors = p->store_errors,
		.sample_mismatch = p->sample_mismatch,
	};
}
