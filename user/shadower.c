// SPDX-License-Identifier: BSD-2-Clause
/*
 * The in-process shadower's accounting (see shadower.h): the pipeline
 * core under a mutex, and the divergence ring it shows records to.
 */
#include "shadower.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "divergence.h"
#include "pipeline.h"
#include "store.h"

/* The headers every record is redacted of, as the store does. */
static const char *const default_redact[] = {
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};
#define N_DEFAULT_REDACT (sizeof(default_redact) / sizeof(default_redact[0]))

struct shadower {
	pthread_mutex_t lock;
	struct pipeline *pipe;
	struct store *store; /* NULL without one */
	struct shadower_config cfg;
	uint64_t diverged_status, diverged_headers, diverged_body, timeouts;
	uint64_t ring_errors;
	bool recheck_wanted; /* set by the pipeline's recheck, under lock */
	char **redact;       /* defaults first */
	size_t n_redact;
	json_t **ring;       /* log_size slots, ring[(head - 1) % size] newest */
	size_t log_size, head, n_ring;
	uint64_t next_id;
};

/* The pipeline's replayer.recheck: noted, and done by the caller of
 * shadower_replayed() once the lock is let go. */
static int want_recheck(void *ctx, struct replay_job *job)
{
	struct shadower *s = ctx;

	s->recheck_wanted = true;
	return 0;
}

static void submit(void *ctx, struct exchange *x)
{
	struct shadower *s = ctx;

	s->cfg.submit(s->cfg.ctx, x);
}

static enum replay_outcome shed(void *ctx, const struct exchange *x,
				enum replay_outcome why)
{
	struct shadower *s = ctx;

	return s->cfg.shed(s->cfg.ctx, x, why);
}

static void on_divergence(void *ctx, json_t *rec);

int shadower_new(const struct shadower_config *cfg, struct shadower **out,
		 char *err, size_t errlen)
{
	struct store_config sc = { 0 };
	struct pipeline_config pc = { 0 };
	struct shadower *s;
	int rc = -ENOMEM;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
	s->cfg = *cfg;
	s->cfg.store = NULL;
	s->cfg.redact = NULL;
	s->next_id = 1;
	s->log_size = cfg->log_size;
	if (s->log_size && !(s->ring = calloc(s->log_size, sizeof(*s->ring))))
		goto fail;
	s->redact = calloc(N_DEFAULT_REDACT + cfg->n_redact, sizeof(*s->redact));
	if (!s->redact)
		goto fail;
	for (size_t i = 0; i < N_DEFAULT_REDACT + cfg->n_redact; i++) {
		const char *r = i < N_DEFAULT_REDACT ? default_redact[i] :
				cfg->redact[i - N_DEFAULT_REDACT];

		if (!(s->redact[s->n_redact] = strdup(r)))
			goto fail;
		s->n_redact++;
	}
	if (cfg->store) {
		sc.path = cfg->store;
		sc.max_records = cfg->max_records;
		sc.examples = cfg->examples;
		sc.redact = cfg->redact;
		sc.n_redact = cfg->n_redact;
		rc = store_open(&sc, &s->store, err, errlen);
		if (rc < 0)
			goto fail_quiet;
	}
	pc = (struct pipeline_config){
		.sample = cfg->sample, .rules = cfg->rules, .store = s->store,
		.replayer = { .submit = submit, .shed = shed,
			      .recheck = want_recheck, .ctx = s },
		.on_divergence = on_divergence, .divergence_ctx = s,
		.noise_recheck = cfg->noise_recheck,
	};
	rc = pipeline_new(&pc, &s->pipe);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	snprintf(err, errlen, rc == -ENOMEM ? "out of memory" :
		 "cannot set up the pipeline");
fail_quiet:
	shadower_free(s);
	return rc;
}

void shadower_free(struct shadower *s)
{
	if (!s)
		return;
	if (s->pipe)
		pipeline_flush(s->pipe);
	pipeline_free(s->pipe);
	store_close(s->store);
	for (size_t i = 0; s->ring && i < s->log_size; i++)
		json_decref(s->ring[i]);
	free(s->ring);
	for (size_t i = 0; i < s->n_redact; i++)
		free(s->redact[i]);
	free(s->redact);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

bool shadower_exchange(struct shadower *s, struct exchange *x)
{
	bool taken;

	pthread_mutex_lock(&s->lock);
	taken = pipeline_exchange(s->pipe, x);
	pthread_mutex_unlock(&s->lock);
	return taken;
}

bool shadower_replayed(struct shadower *s, struct replay_job *job)
{
	bool again;

	pthread_mutex_lock(&s->lock);
	if (job->outcome == REPLAY_CANDIDATE_ERROR &&
	    job->error == REPLAY_ERR_TIMEOUT)
		s->timeouts++;
	s->recheck_wanted = false;
	pipeline_replayed(s->pipe, job);
	again = s->recheck_wanted;
	s->recheck_wanted = false;
	pthread_mutex_unlock(&s->lock);
	return again;
}

/* A new record: "id" (the ring's) and "time" (now, UTC, ms) first, as
 * shadow-dump shows them, then rec's members; NULL on ENOMEM. */
static json_t *stamped(struct shadower *s, json_t *rec)
{
	struct timespec ts;
	struct tm tm;
	char when[48], secs[32];
	json_t *out;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%03ldZ", secs, ts.tv_nsec / 1000000);
	out = json_pack("{s I s s}", "id", (json_int_t)s->next_id, "time", when);
	if (!out || json_object_update(out, rec) < 0) {
		json_decref(out);
		return NULL;
	}
	s->next_id++;
	return out;
}

/* Whether part of rec diverged. */
static bool part_diverged(json_t *rec, const char *part)
{
	return json_is_true(json_object_get(json_object_get(rec, part),
					    "diverged"));
}

/* The pipeline's on_divergence (s->lock held): counted by part, and a
 * redacted copy pushed into the ring (the store redacts its own). */
static void on_divergence(void *ctx, json_t *rec)
{
	struct shadower *s = ctx;
	json_t *copy, *stamp;

	s->diverged_status += part_diverged(rec, "status");
	s->diverged_headers += part_diverged(rec, "headers");
	s->diverged_body += part_diverged(rec, "body");
	if (!s->log_size)
		return;
	copy = json_deep_copy(rec);
	if (copy)
		divergence_redact(copy, (const char *const *)s->redact,
				  s->n_redact);
	stamp = copy ? stamped(s, copy) : NULL;
	json_decref(copy);
	if (!stamp) {
		s->ring_errors++;
		return;
	}
	json_decref(s->ring[s->head]);
	s->ring[s->head] = stamp;
	s->head = (s->head + 1) % s->log_size;
	if (s->n_ring < s->log_size)
		s->n_ring++;
}

void shadower_stats(struct shadower *s, struct rs_stats *st)
{
	const struct pipeline_counters *c;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	c = pipeline_counters(s->pipe);
	st->captured = c->captured;
	st->sampled = c->sampled;
	st->replayed = c->replayed;
	st->diverged = c->diverged;
	st->diverged_status = s->diverged_status;
	st->diverged_headers = s->diverged_headers;
	st->diverged_body = s->diverged_body;
	st->candidate_errors = c->candidate_errors;
	st->timeouts = s->timeouts;
	st->shed = c->shed;
	st->unsafe_skipped = c->unsafe_skipped;
	st->noise_suppressed = c->noise_suppressed;
	st->store_errors = c->store_errors + s->ring_errors;
	pthread_mutex_unlock(&s->lock);
}

char *shadower_ring_json(struct shadower *s, size_t max)
{
	json_t *arr = json_array();
	char *text = NULL;

	if (!arr)
		return NULL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_ring && (!max || i < max); i++) {
		size_t k = (s->head + s->log_size - 1 - i) % s->log_size;

		if (json_array_append(arr, s->ring[k]) < 0)
			goto cleanup;
	}
	/* dumped under the lock: the records are shared with the ring */
	text = json_dumps(arr, JSON_COMPACT);
cleanup:
	pthread_mutex_unlock(&s->lock);
	json_decref(arr);
	return text;
}

int shadower_flush(struct shadower *s)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	pipeline_flush(s->pipe);
	if (s->store)
		rc = store_flush(s->store);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
