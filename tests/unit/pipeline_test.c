// SPDX-License-Identifier: BSD-2-Clause
/*
 * The pipeline over the recorded captures of tests/data: conn_table and
 * http1 feed it as in the daemon, and the test's own replayer answers each
 * exchange at once: with the primary's own response (an identical
 * candidate), with one planted difference, or with the outcomes a real
 * replayer reports (candidate errors, shed, unsafe skipped). The counters
 * are read back from the pipeline and from the store.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capfile.h"
#include "conn.h"
#include "diff.h"
#include "fixture.h"
#include "http1.h"
#include "message.h"
#include "pipeline.h"
#include "sample.h"
#include "shadow_event.h"
#include "store.h"

static const char *const captures[] = {
	"python_cl.cap", "node_chunked_gzip.cap", "nginx_pipeline.cap",
	"nginx_bench.cap",
};
#define N_CAPTURES (sizeof(captures) / sizeof(captures[0]))

/* What the test's replayer answers for the n-th exchange it is given
 * (from 0). */
enum answer {
	ANSWER_IDENTICAL,  /* the primary's response, copied */
	ANSWER_STATUS_418, /* the primary's, with status 418 */
	ANSWER_ERROR,      /* a candidate timeout */
	ANSWER_SHED,       /* the queue was full */
	ANSWER_UNSAFE,     /* what replay.c says of a POST by default */
};

struct run {
	struct pipeline *p;
	struct http1 *http1;
	enum answer (*answer)(const struct run *r, const struct exchange *x);
	size_t plant_at;   /* ANSWER_STATUS_418 for this submission ... */
	bool plant;        /* ... when set */
	size_t submitted;  /* exchanges the replayer was given */
	size_t exchanges;  /* exchanges http1 handed on */
	size_t kernel_shed_every; /* flag every n-th exchange shed; 0: none */
	size_t kernel_shed; /* exchanges flagged so */
	size_t divergences; /* records shown to on_divergence */
	int last_status;    /* the candidate status of the last record */
};

TestSuite(pipeline, .init = fixture_dir_init, .fini = fixture_dir_fini);

static int response_copy(struct http_response *dst,
			 const struct http_response *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->status = src->status;
	dst->flags = src->flags;
	if (headers_copy(&dst->headers, &src->headers) < 0 ||
	    body_set(&dst->raw, src->raw.data, src->raw.len) < 0 ||
	    body_set(&dst->decoded, src->decoded.data, src->decoded.len) < 0) {
		http_response_clean(dst);
		return -ENOMEM;
	}
	return 0;
}

static enum answer answer_identical(const struct run *r,
				    const struct exchange *x)
{
	return r->plant && r->submitted == r->plant_at ? ANSWER_STATUS_418 :
							 ANSWER_IDENTICAL;
}

/* Every outcome a replayer reports, in turn; unsafe methods as replay.c
 * treats them without --replay-unsafe. */
static enum answer answer_mixed(const struct run *r, const struct exchange *x)
{
	if (strcmp(x->req.method, "GET") && strcmp(x->req.method, "HEAD") &&
	    strcmp(x->req.method, "OPTIONS"))
		return ANSWER_UNSAFE;
	switch (r->submitted % 4) {
	case 1: return ANSWER_ERROR;
	case 2: return ANSWER_SHED;
	case 3: return ANSWER_STATUS_418;
	default: return ANSWER_IDENTICAL;
	}
}

/* The replayer: answers at once, from inside submit (as replay.c does
 * for what it sheds), and frees the exchange. */
static void test_submit(void *ctx, struct exchange *x)
{
	struct run *r = ctx;
	struct replay_job job = { .x = x, .candidate_ms = 1.5 };

	switch (r->answer(r, x)) {
	case ANSWER_STATUS_418:
	case ANSWER_IDENTICAL:
		job.outcome = REPLAY_OK;
		cr_assert_eq(response_copy(&job.candidate, &x->resp), 0);
		if (r->answer(r, x) == ANSWER_STATUS_418)
			job.candidate.status = 418;
		break;
	case ANSWER_ERROR:
		job.outcome = REPLAY_CANDIDATE_ERROR;
		job.error = REPLAY_ERR_TIMEOUT;
		job.candidate_ms = -1;
		break;
	case ANSWER_SHED:
		job.outcome = REPLAY_SHED_QUEUE;
		break;
	case ANSWER_UNSAFE:
		job.outcome = REPLAY_UNSAFE_SKIPPED;
		break;
	}
	r->submitted++;
	pipeline_replayed(r->p, &job);
	http_response_clean(&job.candidate);
	exchange_free(x);
}

static enum replay_outcome test_shed(void *ctx, const struct exchange *x,
				     enum replay_outcome why)
{
	return why;
}

static void test_divergence(void *ctx, json_t *record)
{
	struct run *r = ctx;
	json_t *cand = json_object_get(record, "candidate");

	r->divergences++;
	r->last_status = json_integer_value(json_object_get(cand, "status"));
}

static void on_exchange(void *ctx, struct exchange *x)
{
	struct run *r = ctx;

	r->exchanges++;
	if (r->kernel_shed_every && r->exchanges % r->kernel_shed_every == 0) {
		/* As the kernel marks a sampled request it passed over. */
		x->req.flags |= MESSAGE_HEAD_UNCOPIED | MESSAGE_SHED_QUEUE;
		x->resp.flags |= MESSAGE_UNCOPIED;
		r->kernel_shed++;
	}
	if (!pipeline_exchange(r->p, x))
		http1_recycle(r->http1, x);
}

/* Feeds tests/data/name through conn_table, http1 and a pipeline over
 * store s (NULL: none) sampling at rate; r->p is freed on return, its
 * counters copied to *out. */
static void run_capture(const char *name, double rate, struct store *s,
			struct run *r, struct pipeline_counters *out)
{
	struct conn_limits lim = { .max_conns = 64 };
	struct capfile_reader *rd;
	struct conn_table *t;
	struct sample *smp = NULL;
	struct diff_rules *rules = diff_rules_new();
	const struct shadow_event *ev;
	const void *pl;
	uint8_t *cap;
	size_t len;
	char err[256];
	struct pipeline_config pc = {
		.rules = rules,
		.store = s,
		.replayer = { .submit = test_submit, .shed = test_shed, .ctx = r },
		.on_divergence = test_divergence,
		.divergence_ctx = r,
	};

	cr_assert_not_null(rules);
	cr_assert_eq(fixture_load(name, &cap, &len), 0, "cannot read %s", name);
	cr_assert_eq(sample_new(rate, NULL, &smp, err, sizeof(err)), 0, "%s", err);
	pc.sample = smp;
	cr_assert_eq(pipeline_new(&pc, &r->p), 0);
	r->http1 = http1_new(NULL, on_exchange, r);
	cr_assert_not_null(r->http1);
	t = conn_table_new(&lim, &http1_sink_ops, r->http1);
	cr_assert_not_null(t);
	rd = capfile_open_reader_mem(cap, len, 0, err, sizeof(err));
	cr_assert_not_null(rd, "%s: %s", name, err);
	while (capfile_next(rd, &ev, &pl, err, sizeof(err)) == 1)
		(void)conn_table_feed(t, ev, pl);
	conn_table_free(t); /* hands on what only a close ends */
	pipeline_flush(r->p);
	*out = *pipeline_counters(r->p);
	pipeline_free(r->p);
	r->p = NULL;
	http1_free(r->http1);
	capfile_close_reader(rd);
	sample_free(smp);
	diff_rules_free(rules);
	free(cap);
}

static struct store *open_store(void)
{
	return fixture_store_open(fixture_db);
}

static int64_t stat_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "no counter %s", key);
	return json_integer_value(v);
}

/* sampled = replayed + shed + unsafe_skipped, in o (the totals or one
 * endpoint of store_stats()). */
static void assert_balanced(json_t *o, const char *what)
{
	cr_assert_eq(stat_of(o, "sampled"),
		     stat_of(o, "replayed") + stat_of(o, "shed") +
		     stat_of(o, "unsafe_skipped"),
		     "%s: sampled %lld != replayed %lld + shed %lld + "
		     "unsafe_skipped %lld", what,
		     (long long)stat_of(o, "sampled"),
		     (long long)stat_of(o, "replayed"),
		     (long long)stat_of(o, "shed"),
		     (long long)stat_of(o, "unsafe_skipped"));
}

static void assert_store_balanced(struct store *s, const struct pipeline_counters *c)
{
	json_t *st, *totals, *e;
	size_t i;

	cr_assert_eq(store_flush(s), 0);
	st = store_stats(s);
	cr_assert_not_null(st);
	totals = json_object_get(st, "totals");
	assert_balanced(totals, "totals");
	json_array_foreach(json_object_get(st, "endpoints"), i, e)
		assert_balanced(e, json_string_value(json_object_get(e, "endpoint")));
	cr_assert_eq(stat_of(totals, "captured"), (int64_t)c->captured);
	cr_assert_eq(stat_of(totals, "sampled"), (int64_t)c->sampled);
	cr_assert_eq(stat_of(totals, "replayed"), (int64_t)c->replayed);
	cr_assert_eq(stat_of(totals, "diverged"), (int64_t)c->diverged);
	cr_assert_eq(stat_of(totals, "candidate_errors"),
		     (int64_t)c->candidate_errors);
	cr_assert_eq(stat_of(totals, "shed"), (int64_t)c->shed);
	cr_assert_eq(stat_of(totals, "unsafe_skipped"), (int64_t)c->unsafe_skipped);
	json_decref(st);
}

static void assert_counters_balanced(const struct pipeline_counters *c,
				     const char *name)
{
	cr_assert_eq(c->sampled, c->replayed + c->shed + c->unsafe_skipped,
		     "%s: sampled %llu != replayed %llu + shed %llu + "
		     "unsafe_skipped %llu", name,
		     (unsigned long long)c->sampled,
		     (unsigned long long)c->replayed,
		     (unsigned long long)c->shed,
		     (unsigned long long)c->unsafe_skipped);
}

Test(pipeline, identical_candidate_gives_no_divergence_over_every_capture)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct store *s = open_store();
		struct run r = { .answer = answer_identical };
		struct pipeline_counters c;

		run_capture(captures[i], 1, s, &r, &c);
		cr_assert_gt(r.exchanges, 0, "%s: no exchange", captures[i]);
		cr_assert_eq(c.captured, r.exchanges, "%s", captures[i]);
		cr_assert_eq(c.sampled, c.captured, "%s", captures[i]);
		cr_assert_eq(c.replayed, c.sampled, "%s", captures[i]);
		cr_assert_eq(c.diverged, 0, "%s: %llu divergences", captures[i],
			     (unsigned long long)c.diverged);
		cr_assert_eq(r.divergences, 0, "%s", captures[i]);
		cr_assert_eq(c.store_errors, 0, "%s", captures[i]);
		assert_counters_balanced(&c, captures[i]);
		assert_store_balanced(s, &c);
		cr_assert_eq(store_last_id(s), 0, "%s: a record was stored",
			     captures[i]);
		store_close(s);
		cr_assert_eq(remove(fixture_db), 0);
	}
}

Test(pipeline, planted_status_difference_is_one_divergence)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct store *s = open_store();
		struct run r = { .answer = answer_identical, .plant = true,
				 .plant_at = 2 };
		struct pipeline_counters c;
		json_t *st, *rec = NULL;

		run_capture(captures[i], 1, s, &r, &c);
		cr_assert_eq(c.diverged, 1, "%s: %llu divergences", captures[i],
			     (unsigned long long)c.diverged);
		cr_assert_eq(r.divergences, 1);
		cr_assert_eq(r.last_status, 418);
		assert_store_balanced(s, &c);
		st = store_stats(s);
		cr_assert_eq(stat_of(json_object_get(st, "totals"),
				     "diverged_status"), 1);
		json_decref(st);
		cr_assert_eq(store_last_id(s), 1);
		cr_assert_eq(store_get_record(s, 1, &rec), 0);
		cr_assert(json_is_true(json_object_get(
			json_object_get(rec, "status"), "diverged")));
		cr_assert_eq(json_integer_value(json_object_get(
			json_object_get(rec, "candidate"), "status")), 418);
		json_decref(rec);
		store_close(s);
		cr_assert_eq(remove(fixture_db), 0);
	}
}

Test(pipeline, every_outcome_keeps_sampled_the_sum_of_its_parts)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct store *s = open_store();
		struct run r = { .answer = answer_mixed, .kernel_shed_every = 5 };
		struct pipeline_counters c;

		run_capture(captures[i], 0.6, s, &r, &c);
		assert_counters_balanced(&c, captures[i]);
		assert_store_balanced(s, &c);
		cr_assert_lt(c.sampled, c.captured, "%s: 0.6 sampled all",
			     captures[i]);
		/* A candidate error is replayed and never a divergence. */
		cr_assert_eq(c.diverged, r.divergences);
		cr_assert_leq(c.candidate_errors, c.replayed);
		store_close(s);
		cr_assert_eq(remove(fixture_db), 0);
	}
}

/* The bench capture has enough exchanges for every outcome to occur. */
Test(pipeline, every_outcome_is_counted_where_it_belongs)
{
	struct run r = { .answer = answer_mixed, .kernel_shed_every = 5 };
	struct pipeline_counters c;

	run_capture("nginx_bench.cap", 1, NULL, &r, &c);
	assert_counters_balanced(&c, "nginx_bench.cap");
	cr_assert_gt(r.kernel_shed, 0);
	/* Kernel-shed exchanges never reach the replayer. */
	cr_assert_eq(r.submitted + r.kernel_shed, c.sampled);
	cr_assert_gt(c.candidate_errors, 0);
	cr_assert_gt(c.diverged, 0);
	cr_assert_eq(c.diverged, r.divergences);
	cr_assert_geq(c.shed, r.kernel_shed);
	cr_assert_eq(c.store_errors, 0, "no store: nothing to fail");
}

Test(pipeline, a_shed_request_the_sampler_would_skip_is_a_mismatch)
{
	struct run r = { .answer = answer_identical, .kernel_shed_every = 1 };
	struct pipeline_counters c;

	run_capture("python_cl.cap", 0, NULL, &r, &c);
	cr_assert_eq(c.sampled, 0);
	cr_assert_eq(c.sample_mismatch, c.captured);
	cr_assert_eq(r.submitted, 0);
}

Test(pipeline, refuses_a_config_without_sampler_or_replayer)
{
	struct pipeline_config pc = { 0 };
	struct pipeline *p = (struct pipeline *)&pc;
	struct sample *smp = NULL;
	char err[128];

	cr_assert_eq(pipeline_new(&pc, &p), -EINVAL);
	cr_assert_null(p);
	cr_assert_eq(sample_new(1, NULL, &smp, err, sizeof(err)), 0);
	pc.sample = smp;
	cr_assert_eq(pipeline_new(&pc, &p), -EINVAL);
	pc.replayer.submit = test_submit;
	cr_assert_eq(pipeline_new(&pc, &p), 0);
	pipeline_free(p);
	pipeline_free(NULL);
	sample_free(smp);
}
