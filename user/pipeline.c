// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline.h"

#include <errno.h>
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
#include "sample.h"
#include "store.h"
#include "tally.h"

struct pipeline {
	struct pipeline_config cfg;
	struct tally *tally; /* per-endpoint counts on their way to both */
	struct pipeline_counters c;
};

int pipeline_new(const struct pipeline_config *cfg, struct pipeline **out)
{
	struct pipeline *p;

	*out = NULL;
	if (!cfg->sample || !cfg->replayer.submit)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->tally = tally_new(cfg->store, cfg->metrics);
	if (!p->tally) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	tally_free(p->tally);
	free(p);
}

const struct pipeline_counters *pipeline_counters(const struct pipeline *p)
{
	return &p->c;
}

/* A store call's result: a failure loses what it wrote, counted. */
static void stored(struct pipeline *p, int rc)
{
	if (rc < 0)
		p->c.store_errors++;
}

/* Per-endpoint counting, in the store and the metrics alike: batched in
 * the tally until the next store flush. */
static void count(struct pipeline *p, const char *ep, enum store_counter c,
		  uint64_t n)
{
	tally_count(p->tally, ep, c, n);
}

/* Hands the tally's sums to the store and the metrics. */
static void count_flush(struct pipeline *p)
{
	p->c.store_errors += tally_flush(p->tally);
}

void pipeline_flush(struct pipeline *p)
{
	count_flush(p);
}

static void record_field(struct pipeline *p, const char *ep, const char *path,
			 bool noise)
{
	if (p->cfg.store)
		stored(p, store_field(p->cfg.store, ep, path, noise));
}

static void record_paths(struct pipeline *p, const char *ep,
			 const struct diff_part *part, bool noise)
{
	size_t i;
	json_t *v;

	if (!part->diffs)
		return;
	json_array_foreach(part->diffs, i, v) {
		const char *path = json_string_value(json_object_get(v, "path"));

		if (!path)
			path = json_string_value(json_object_get(v, "name"));
		if (path)
			record_field(p, ep, path, noise);
	}
}

/* Builds the divergence record of x against the candidate's answer, shows
 * it to on_divergence and hands it to the store. */
static void record_divergence(struct pipeline *p, const struct replay_job *job,
			      const struct diff_result *res)
{
	json_t *rec = NULL, *parts[3];

	parts[0] = diff_part_json(&res->status);
	parts[1] = diff_part_json(&res->headers);
	parts[2] = diff_part_json(&res->body);
	if (!parts[0] || !parts[1] || !parts[2] ||
	    divergence_build(job->x, &job->candidate, job->candidate_ms,
			     parts[0], parts[1], parts[2], &rec) < 0) {
		p->c.store_errors++;
		goto cleanup;
	}
	if (p->cfg.on_divergence)
		p->cfg.on_divergence(p->cfg.divergence_ctx, rec);
	if (p->cfg.store)
		stored(p, store_put(p->cfg.store, rec)); /* takes rec */
	else
		json_decref(rec);
cleanup:
	for (int i = 0; i < 3; i++)
		json_decref(parts[i]);
}

/* The differ's verdict on one replayed exchange, counted and stored. */
static void judge(struct pipeline *p, struct replay_job *job)
{
	const struct pipeline_replayer *r = &p->cfg.replayer;
	const struct exchange *x = job->x;
	const char *ep = x->endpoint;
	const struct http_response *na = NULL, *nb = NULL;
	struct diff_result res = { 0 };
	double primary_ms = (x->t_last_resp_ns - x->t_first_req_ns) / 1e6;
	int rc;

	if (job->has_recheck) {
		na = &job->candidate;
		nb = &job->recheck;
	} else if (job->has_noise) {
		na = &x->resp;
		nb = &job->noise;
	}
	rc = diff_responses(p->cfg.rules, &x->resp, &job->candidate, na, nb,
			    &res);
	if (rc < 0) {
		if (p->cfg.verbose)
			fprintf(stderr, "shadowd: cannot diff %s: %s\n", ep,
				strerror(-rc));
		count(p, ep, STORE_SHED, 1);
		p->c.shed++;
		return;
	}
	if (res.diverged && p->cfg.noise_recheck && !job->rechecks &&
	    r->recheck && r->recheck(r->ctx, job) == 0) {
		diff_result_clean(&res);
		return; /* judged again with the second answer */
	}
	p->c.replayed++;
	count(p, ep, STORE_REPLAYED, 1);
	if (p->cfg.store)
		stored(p, store_latency(p->cfg.store, ep, primary_ms,
					job->candidate_ms));
	metrics_latency(p->cfg.metrics, primary_ms, job->candidate_ms);
	if (res.noise_suppressed) {
		size_t i;
		json_t *v;

		p->c.noise_suppressed++;
		count(p, ep, STORE_NOISE_SUPPRESSED, 1);
		json_array_foreach(res.noise_paths, i, v)
			if (json_is_string(v))
				record_field(p, ep, json_string_value(v), true);
	}
	if (!res.diverged)
		goto cleanup;
	p->c.diverged++;
	count(p, ep, STORE_DIVERGED, 1);
	if (res.status.diverged)
		count(p, ep, STORE_DIVERGED_STATUS, 1);
	if (res.headers.diverged) {
		count(p, ep, STORE_DIVERGED_HEADERS, 1);
		record_paths(p, ep, &res.headers, false);
	}
	if (res.body.diverged) {
		count(p, ep, STORE_DIVERGED_BODY, 1);
		record_paths(p, ep, &res.body, false);
	}
	record_divergence(p, job, &res);
	if (p->cfg.verbose)
		fprintf(stderr, "shadowd: divergence %s %s: %s%s%s%s%s\n",
			x->req.method, x->req.target, res.status.summary,
			res.status.diverged ? "; " : "", res.headers.summary,
			res.headers.diverged ? "; " : "", res.body.summary);
cleanup:
	diff_result_clean(&res);
}

/* An exchange never sent (replay_outcome o: skipped as unsafe, or shed),
 * on endpoint ep: only counted. */
static void count_unsent(struct pipeline *p, const char *ep,
			 enum replay_outcome o)
{
	switch (o) {
	case REPLAY_UNSAFE_SKIPPED:
		p->c.unsafe_skipped++;
		count(p, ep, STORE_UNSAFE_SKIPPED, 1);
		break;
	case REPLAY_SHED_BREAKER:
		/* Never sent: shed, not a candidate error of its own. */
		metrics_candidate_error(p->cfg.metrics,
					replay_error_name(REPLAY_ERR_BREAKER_OPEN));
		__attribute__((fallthrough));
	default:
		p->c.shed++;
		count(p, ep, STORE_SHED, 1);
		break;
	}
}

void pipeline_replayed(struct pipeline *p, struct replay_job *job)
{
	const char *ep = job->x->endpoint;

	/* Where the store is called below with the endpoint directly, it
	 * must not reach the store ahead of endpoints counted before it: the
	 * tally goes first. Shed and skipped exchanges (most of them when the
	 * candidate is slow) are only counted. */
	if (job->outcome == REPLAY_OK ||
	    job->outcome == REPLAY_CANDIDATE_ERROR)
		count_flush(p);
	switch (job->outcome) {
	case REPLAY_OK:
		judge(p, job);
		break;
	case REPLAY_CANDIDATE_ERROR:
		/* Sent but unanswered: replayed, never a divergence. */
		p->c.candidate_errors++;
		p->c.replayed++;
		count(p, ep, STORE_REPLAYED, 1);
		/* The store counts candidate_errors with the class. */
		if (p->cfg.store)
			stored(p, store_candidate_error(p->cfg.store, ep,
						replay_error_name(job->error)));
		metrics_count(p->cfg.metrics, ep, STORE_CANDIDATE_ERRORS, 1);
		metrics_candidate_error(p->cfg.metrics,
					replay_error_name(job->error));
		break;
	default:
		count_unsent(p, ep, job->outcome);
		break;
	}
}

bool pipeline_exchange(struct pipeline *p, struct exchange *x)
{
	const struct pipeline_replayer *r = &p->cfg.replayer;
	const unsigned shed = MESSAGE_SHED_QUEUE | MESSAGE_SHED_BREAKER;

	p->c.captured++;
	count(p, x->endpoint, STORE_CAPTURED, 1);
	if (!sample_decide(p->cfg.sample, x)) {
		/* Passed over as shed, so sampled as the kernel saw it. */
		if (x->req.flags & shed)
			p->c.sample_mismatch++;
		return false;
	}
	if (x->req.flags & shed) {
		/* Sampled, and passed over by the kernel while shedding. */
		enum replay_outcome why = x->req.flags & MESSAGE_SHED_BREAKER ?
					  REPLAY_SHED_BREAKER :
					  REPLAY_SHED_QUEUE;

		p->c.sampled++;
		count(p, x->endpoint, STORE_SAMPLED, 1);
		count_unsent(p, x->endpoint,
			     r->shed ? r->shed(r->ctx, x, why) : why);
		return false;
	}
	if ((x->resp.flags & MESSAGE_UNCOPIED) ||
	    (x->req.flags & MESSAGE_HEAD_UNCOPIED)) {
		/* The kernel left it unsampled and this decision disagrees:
		 * the answer is gone. Never expected; counted as a loss. */
		p->c.sample_mismatch++;
		return false;
	}
	p->c.sampled++;
	count(p, x->endpoint, STORE_SAMPLED, 1);
	r->submit(r->ctx, x);
	return true;
}

void pipeline_publish(struct pipeline *p, const struct pipeline_sources *src)
{
	static const struct conn_stats no_conns;
	static const struct http1_stats no_http1;
	static const struct capture_stats no_capture;
	static const struct replay_stats no_replay;
	const struct conn_stats *cs = src->conns ? src->conns : &no_conns;
	const struct http1_stats *hs = src->http1 ? src->http1 : &no_http1;
	const struct capture_stats *st = src->capture ? src->capture :
						       &no_capture;
	const struct replay_stats *rs = src->replay ? src->replay : &no_replay;
	struct metrics *m = p->cfg.metrics;
	/* Every exchange that could not be framed or paired: the store's
	 * parse_errors. */
	uint64_t parse_errors = hs->parse_errors + hs->oversize +
				hs->ambiguous + hs->unpaired + hs->overflow +
				hs->nomem + p->c.sample_mismatch;

	if (src->capture) {
		metrics_set(m, METRICS_RING_USED, st->ring_used);
		metrics_set(m, METRICS_RING_SIZE, st->ring_size);
		metrics_set(m, METRICS_TARGETS, st->targets);
	}
	if (p->cfg.store)
		stored(p, store_capture_counters(p->cfg.store, cs->lost_events,
						 cs->gaps, parse_errors,
						 hs->truncated,
						 st->tls_undecoded));
	metrics_set(m, METRICS_TLS_UNDECODED, st->tls_undecoded);
	metrics_set(m, METRICS_TLS_UNLINKED, st->tls_unlinked);
	metrics_set(m, METRICS_UNHOOKED, st->unhooked);
	metrics_set(m, METRICS_UNCOPIED, hs->uncopied);
	metrics_set(m, METRICS_SAMPLE_MISMATCH, p->c.sample_mismatch);
	metrics_set(m, METRICS_LOST_EVENTS, cs->lost_events);
	metrics_set(m, METRICS_GAPS, cs->gaps);
	metrics_set(m, METRICS_PARSE_ERRORS, parse_errors);
	metrics_set(m, METRICS_TRUNCATED, hs->truncated);
	metrics_set(m, METRICS_CONNECTIONS, cs->conns_active);
	metrics_set(m, METRICS_QUEUE_DEPTH, rs->queued);
	metrics_set(m, METRICS_INFLIGHT, rs->inflight);
	metrics_set(m, METRICS_BREAKER_OPEN, rs->breaker != 0);
	metrics_set(m, METRICS_SEND_RATE, src->send_rate);
}
