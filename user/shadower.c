// SPDX-License-Identifier: BSD-2-Clause
/*
 * The in-process shadower's accounting and divergence ring (see
 * shadower.h). Counting follows shadowd's (DESIGN.md "Store"): sampled =
 * replayed + shed + unsafe_skipped; a candidate error is replayed and never
 * a divergence; divergence_rate = diverged / answered replays.
 */
#include "shadower.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diff.h"
#include "divergence.h"
#include "message.h"

/* The headers every record is redacted of, as the store does. */
static const char *const default_redact[] = {
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};
#define N_DEFAULT_REDACT (sizeof(default_redact) / sizeof(default_redact[0]))

struct shadower {
	pthread_mutex_t lock;
	struct store *store; /* NULL without one */
	struct rs_stats st;
	char **redact;       /* defaults first */
	size_t n_redact;
	json_t **ring;       /* log_size slots, ring[(head - 1) % size] newest */
	size_t log_size, head, n_ring;
	uint64_t next_id;
};

static void store_error(struct shadower *s, int rc)
{
	if (rc < 0)
		s->st.store_errors++;
}

int shadower_new(const struct shadower_config *cfg, struct shadower **out,
		 char *err, size_t errlen)
{
	struct store_config sc = { 0 };
	struct shadower *s;
	int rc = -ENOMEM;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
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
	*out = s;
	return 0;
fail:
	snprintf(err, errlen, "out of memory");
fail_quiet:
	shadower_free(s);
	return rc;
}

void shadower_free(struct shadower *s)
{
	if (!s)
		return;
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

/* Counts c for endpoint, in the stats and the store; s->lock held. */
static void count_locked(struct shadower *s, const char *endpoint,
			 enum store_counter c)
{
	uint64_t *v = NULL;

	switch (c) {
	case STORE_CAPTURED: v = &s->st.captured; break;
	case STORE_SAMPLED: v = &s->st.sampled; break;
	case STORE_REPLAYED: v = &s->st.replayed; break;
	case STORE_DIVERGED: v = &s->st.diverged; break;
	case STORE_DIVERGED_STATUS: v = &s->st.diverged_status; break;
	case STORE_DIVERGED_HEADERS: v = &s->st.diverged_headers; break;
	case STORE_DIVERGED_BODY: v = &s->st.diverged_body; break;
	case STORE_SHED: v = &s->st.shed; break;
	case STORE_UNSAFE_SKIPPED: v = &s->st.unsafe_skipped; break;
	case STORE_NOISE_SUPPRESSED: v = &s->st.noise_suppressed; break;
	default: break; /* candidate errors: shadower_candidate_error() */
	}
	if (v)
		(*v)++;
	if (s->store)
		store_error(s, store_count(s->store, endpoint, c, 1));
}

void shadower_count(struct shadower *s, const char *endpoint,
		    enum store_counter c)
{
	pthread_mutex_lock(&s->lock);
	count_locked(s, endpoint, c);
	pthread_mutex_unlock(&s->lock);
}

void shadower_count_call(struct shadower *s, const char *endpoint,
			 bool sampled, enum store_counter then)
{
	pthread_mutex_lock(&s->lock);
	count_locked(s, endpoint, STORE_CAPTURED);
	if (sampled)
		count_locked(s, endpoint, STORE_SAMPLED);
	if (then < STORE_N_COUNTERS)
		count_locked(s, endpoint, then);
	pthread_mutex_unlock(&s->lock);
}

/* The store's class of a backend's -errno. */
static const char *error_class(int err)
{
	switch (-err) {
	case ECONNREFUSED: return "refused";
	case ETIMEDOUT: return "timeout";
	case ECONNRESET: case EPIPE: return "reset";
	case EPROTO: return "tls";
	case EBADMSG: return "protocol";
	default: return "other";
	}
}

void shadower_candidate_error(struct shadower *s, const char *endpoint, int err)
{
	pthread_mutex_lock(&s->lock);
	count_locked(s, endpoint, STORE_REPLAYED);
	s->st.candidate_errors++;
	if (err == -ETIMEDOUT)
		s->st.timeouts++;
	if (s->store)
		store_error(s, store_candidate_error(s->store, endpoint,
						     error_class(err)));
	pthread_mutex_unlock(&s->lock);
}

/* Counts each diverging path (a body record's "path", a header's "name")
 * of part p as a field of endpoint; s->lock held. */
static void count_fields(struct shadower *s, const char *endpoint,
			 const struct diff_part *p)
{
	size_t i;
	json_t *v;

	if (!s->store || !p->diffs)
		return;
	json_array_foreach(p->diffs, i, v) {
		const char *path = json_string_value(json_object_get(v, "path"));

		if (!path)
			path = json_string_value(json_object_get(v, "name"));
		if (path)
			store_error(s, store_field(s->store, endpoint, path, false));
	}
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

/* Builds the record of a divergence, stores it and pushes it into the
 * ring; s->lock held. */
static void record(struct shadower *s, const struct exchange *x,
		   const struct http_response *cand, double cand_ms,
		   const struct diff_result *res)
{
	json_t *parts[3], *rec = NULL, *stamp;

	parts[0] = diff_part_json(&res->status);
	parts[1] = diff_part_json(&res->headers);
	parts[2] = diff_part_json(&res->body);
	if (!parts[0] || !parts[1] || !parts[2] ||
	    divergence_build(x, cand, cand_ms, parts[0], parts[1], parts[2],
			     &rec) < 0) {
		s->st.store_errors++;
		goto cleanup;
	}
	divergence_redact(rec, (const char *const *)s->redact, s->n_redact);
	if (s->store)
		/* the store serialises it now, with an id and time of its own */
		store_error(s, store_put(s->store, json_incref(rec)));
	if (!s->log_size)
		goto cleanup;
	if (!(stamp = stamped(s, rec))) {
		s->st.store_errors++;
		goto cleanup;
	}
	json_decref(s->ring[s->head]);
	s->ring[s->head] = stamp;
	s->head = (s->head + 1) % s->log_size;
	if (s->n_ring < s->log_size)
		s->n_ring++;
cleanup:
	json_decref(rec);
	for (int i = 0; i < 3; i++)
		json_decref(parts[i]);
}

void shadower_judge(struct shadower *s, const struct exchange *x,
		    const struct http_response *cand, double cand_ms,
		    const struct diff_result *res)
{
	const char *ep = x->endpoint;
	double primary_ms = (x->t_last_resp_ns - x->t_first_req_ns) / 1e6;
	size_t i;
	json_t *v;

	pthread_mutex_lock(&s->lock);
	count_locked(s, ep, STORE_REPLAYED);
	if (s->store)
		store_error(s, store_latency(s->store, ep, primary_ms, cand_ms));
	if (res->noise_suppressed) {
		count_locked(s, ep, STORE_NOISE_SUPPRESSED);
		json_array_foreach(res->noise_paths, i, v)
			if (s->store && json_is_string(v))
				store_error(s, store_field(s->store, ep,
							   json_string_value(v),
							   true));
	}
	if (res->diverged) {
		count_locked(s, ep, STORE_DIVERGED);
		if (res->status.diverged)
			count_locked(s, ep, STORE_DIVERGED_STATUS);
		if (res->headers.diverged) {
			count_locked(s, ep, STORE_DIVERGED_HEADERS);
			count_fields(s, ep, &res->headers);
		}
		if (res->body.diverged) {
			count_locked(s, ep, STORE_DIVERGED_BODY);
			count_fields(s, ep, &res->body);
		}
		record(s, x, cand, cand_ms, res);
	}
	pthread_mutex_unlock(&s->lock);
}

void shadower_stats(struct shadower *s, struct rs_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
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
	if (s->store)
		rc = store_flush(s->store);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
