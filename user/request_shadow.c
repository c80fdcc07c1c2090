// SPDX-License-Identifier: BSD-2-Clause
/*
 * The in-process shadower (request_shadow.h): the caller's side of
 * rs_shadow_call(), the bounded queue, the worker threads that call the
 * candidate, the keeper thread that cuts off calls over the timeout and
 * writes the store, and the breaker. Every call and every answer is
 * counted, judged and recorded by the daemon's pipeline core, through
 * shadower.c: the library and shadowd run the same code.
 *
 * Threads. Up to `replay-threads` workers take queued calls. A candidate
 * call that runs past `timeout` is abandoned by the keeper: counted as a
 * candidate error at once, and a new worker started in its place, so the
 * pool keeps its size; the stuck thread releases the late answer when the
 * call returns and then leaves (or takes the place of a worker that is
 * missing). `max-inflight` bounds the threads, stuck ones included: with
 * that many calls stuck, the queue fills and sheds.
 *
 * The breaker (as replay.c's, over backends instead of transfers): after
 * BREAKER_FAILURES consecutive candidate errors it opens and sheds every
 * sampled call for BREAKER_PAUSE_NS, then lets one probe through: an
 * answer closes it, another error opens it again.
 */
#include "request_shadow.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "diff.h"
#include "endpoint.h"
#include "message.h"
#include "rs_config.h"
#include "sample.h"
#include "shadower.h"
#include "util/loop.h"

#define BREAKER_FAILURES 20
#define BREAKER_PAUSE_NS (5000ull * 1000000ull)
#define STORE_FLUSH_NS (100ull * 1000000ull)

/* What a candidate call came to besides 0 or -errno. */
#define CALL_ABANDONED 1

struct job {
	struct job *next;
	struct exchange *x; /* the request and the primary's answer, owned */
	bool probe;         /* the breaker's half-open probe */
};

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_EXITED };

/* One worker thread; sh->lock guards every field but tid and sh. */
struct slot {
	struct rs_shadower *sh;
	pthread_t tid;
	enum slot_state state;
	struct job *job;      /* in the candidate's hands, or NULL */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC, while job */
	bool abandoned;       /* the keeper gave up on job */
};

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct rs_shadower {
	struct rs_backend primary, candidate;
	struct sample *sample;
	double rate;                  /* sample rate */
	struct diff_rules *rules;
	struct endpoint_rules *endpoints;
	struct shadower *acct;
	long timeout_ms;
	bool noise_recheck, replay_unsafe;
	size_t max_body;

	pthread_mutex_t lock;
	pthread_cond_t work;          /* a job was queued, or stop */
	pthread_cond_t idle;          /* a job ended, or a thread left */
	pthread_cond_t keeper_wake;   /* a nearer deadline, or keeper_stop */
	struct job *head, *tail;
	size_t queued;                /* in the list, or reserved for it; changed
				       * under lock, atomically: rs_shadow_call()
				       * reads it without the lock to shed */
	size_t max_queue;
	unsigned busy;                /* jobs taken and not yet judged or abandoned */
	struct slot *slots;
	unsigned n_slots;             /* max-inflight */
	unsigned target, live, total; /* workers wanted, free of stuck calls, threads */
	uint64_t abandoned_running;
	bool stop, keeper_stop, keeper_started;
	uint64_t keeper_at;           /* when the keeper wakes next */
	pthread_t keeper;

	enum breaker_state breaker;
	unsigned consecutive_failures;
	uint64_t breaker_until;       /* while open; also read without the lock */
	bool probe_out;

	uint64_t interval_ns, next_send; /* `rate` pacing; 0: none */
};

static struct timespec to_timespec(uint64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ull,
			       .tv_nsec = ns % 1000000000ull };

	return ts;
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, uint64_t until)
{
	struct timespec ts = to_timespec(until);

	pthread_cond_timedwait(c, m, &ts);
}

/* ---- messages ---- */

/* Copies a backend's response m (borrowed) into r (zeroed): the body cut
 * at max_body, its Content-Encoding undone for the differ. 0 or -ENOMEM. */
static int response_copy(const struct rs_message *m, size_t max_body,
			 struct http_response *r)
{
	size_t len = m->body_len;

	r->status = m->status;
	for (size_t i = 0; i < m->n_headers; i++) {
		const char *n = m->headers[i].name, *v = m->headers[i].value;

		if (!n)
			continue;
		v = v ? v : "";
		if (headers_add(&r->headers, n, strlen(n), v, strlen(v)) < 0)
			return -ENOMEM;
	}
	if (len > max_body) {
		len = max_body;
		r->flags |= MESSAGE_TRUNCATED;
	}
	if (body_set(&r->raw, len ? m->body : "", len) < 0)
		return -ENOMEM;
	return http_response_decode(r, max_body);
}

/* A heap exchange of req and the primary's resp (both borrowed), answered
 * between t0 and t1; NULL on ENOMEM. */
static struct exchange *exchange_of(struct rs_shadower *sh,
				    const struct rs_message *req,
				    const struct rs_message *resp,
				    uint64_t t0, uint64_t t1)
{
	struct exchange *x = exchange_new();

	if (!x || exchange_set_line(x, req->method, strlen(req->method),
				    req->target, strlen(req->target),
				    sh->endpoints) < 0)
		goto fail;
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;

		if (!n)
			continue;
		v = v ? v : "";
		if (headers_add(&x->req.headers, n, strlen(n), v, strlen(v)) < 0)
			goto fail;
	}
	if (body_set(&x->req.body, req->body_len ? req->body : "",
		     req->body_len) < 0 ||
	    response_copy(resp, sh->max_body, &x->resp) < 0)
		goto fail;
	x->req.http_major = x->req.http_minor = 1;
	x->t_first_req_ns = t0;
	x->t_last_resp_ns = t1;
	return x;
fail:
	exchange_free(x);
	return NULL;
}

/* The request of x as a backend sees it; the header array is malloc'd
 * into *hv (caller frees), the strings borrowed from x. 0 or -ENOMEM. */
static int request_view(const struct exchange *x, struct rs_message *m,
			struct rs_header **hv)
{
	const struct headers *h = &x->req.headers;

	*hv = NULL;
	if (h->n && !(*hv = calloc(h->n, sizeof(**hv))))
		return -ENOMEM;
	for (size_t i = 0; i < h->n; i++) {
		(*hv)[i].name = h->v[i].name;
		(*hv)[i].value = h->v[i].value;
	}
	*m = (struct rs_message){
		.method = x->req.method, .target = x->req.target,
		.headers = *hv, .n_headers = h->n,
		.body = x->req.body.data, .body_len = x->req.body.len,
	};
	return 0;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	exchange_free(j->x);
	free(j);
}

/* ---- breaker (sh->lock held) ---- */

/* Whether a sampled call may be queued now; marks the half-open probe. */
static bool breaker_admits(struct rs_shadower *sh, bool *probe)
{
	*probe = false;
	if (sh->breaker == BREAKER_OPEN &&
	    loop_now_ns() >= __atomic_load_n(&sh->breaker_until, __ATOMIC_RELAXED)) {
		sh->breaker = BREAKER_HALF_OPEN;
		sh->probe_out = false;
	}
	if (sh->breaker == BREAKER_OPEN ||
	    (sh->breaker == BREAKER_HALF_OPEN && sh->probe_out))
		return false;
	if (sh->breaker == BREAKER_HALF_OPEN)
		*probe = sh->probe_out = true;
	return true;
}

static void breaker_record(struct rs_shadower *sh, bool ok, bool probe)
{
	if (ok) {
		sh->consecutive_failures = 0;
		if (probe)
			sh->breaker = BREAKER_CLOSED;
		return;
	}
	sh->consecutive_failures++;
	if (probe || (sh->breaker == BREAKER_CLOSED &&
		      sh->consecutive_failures >= BREAKER_FAILURES)) {
		sh->breaker = BREAKER_OPEN;
		__atomic_store_n(&sh->breaker_until, loop_now_ns() + BREAKER_PAUSE_NS,
				 __ATOMIC_RELAXED);
	}
}

/* ---- threads ---- */

static void *worker_main(void *arg);

/* Starts a worker in a free slot. Called with sh->lock held, which it
 * drops while the thread is created (that takes long enough to hold up
 * every rs_shadow_call() that wants the lock). 0 or -errno. */
static int spawn_worker(struct rs_shadower *sh)
{
	struct slot *s = NULL;
	bool join;
	int rc;

	for (unsigned i = 0; i < sh->n_slots && !s; i++)
		if (sh->slots[i].state != SLOT_RUNNING)
			s = &sh->slots[i];
	if (!s)
		return -EAGAIN;
	join = s->state == SLOT_EXITED;
	/* counted now, so that no one else takes the slot meanwhile */
	s->state = SLOT_RUNNING;
	s->job = NULL;
	s->abandoned = false;
	sh->total++;
	sh->live++;
	pthread_mutex_unlock(&sh->lock);
	if (join)
		/* it had only its unlock and return left */
		pthread_join(s->tid, NULL);
	rc = pthread_create(&s->tid, NULL, worker_main, s);
	pthread_mutex_lock(&sh->lock);
	if (rc) {
		s->state = SLOT_FREE;
		sh->total--;
		sh->live--;
		pthread_cond_broadcast(&sh->idle);
	}
	return -rc;
}

/* The replayer's error class of a backend's -errno. */
static enum replay_error error_of(int err)
{
	switch (-err) {
	case ECONNREFUSED: return REPLAY_ERR_REFUSED;
	case ETIMEDOUT: return REPLAY_ERR_TIMEOUT;
	case ECONNRESET: case EPIPE: return REPLAY_ERR_RESET;
	case EPROTO: return REPLAY_ERR_TLS;
	case EBADMSG: return REPLAY_ERR_PROTOCOL;
	case EINVAL: return REPLAY_ERR_BAD_URL;
	default: return REPLAY_ERR_OTHER;
	}
}

/* Reports x (borrowed) sent and unanswered for reason e: a candidate
 * error, never a divergence. */
static void unanswered(struct rs_shadower *sh, struct exchange *x,
		       enum replay_error e)
{
	struct replay_job job = { .x = x, .outcome = REPLAY_CANDIDATE_ERROR,
				  .error = e };

	shadower_replayed(sh->acct, &job);
}

/* The keeper gives up on slot s's call: a candidate error now, the
 * worker's place taken by a new one; sh->lock held. */
static void abandon(struct rs_shadower *sh, struct slot *s)
{
	s->abandoned = true;
	sh->abandoned_running++;
	sh->live--;
	sh->busy--;
	breaker_record(sh, false, s->job->probe);
	unanswered(sh, s->job->x, REPLAY_ERR_TIMEOUT);
	if (!sh->stop && sh->live < sh->target && sh->total < sh->n_slots &&
	    spawn_worker(sh) < 0)
		fprintf(stderr, "request-shadow: cannot start a worker in place "
			"of one stuck in the candidate\n");
	pthread_cond_broadcast(&sh->idle);
}

/*
 * Calls the candidate for j's request (view req) from worker s, its
 * answer into *resp, the time it took into *ms. Returns 0, the backend's
 * -errno, -ETIMEDOUT when it answered past the timeout (the answer then
 * released), or CALL_ABANDONED when the keeper gave up on it meanwhile
 * (counted there; the late answer released here).
 */
static int call_candidate(struct rs_shadower *sh, struct slot *s,
			  struct job *j, const struct rs_message *req,
			  struct rs_message *resp, double *ms)
{
	const struct rs_backend *c = &sh->candidate;
	uint64_t t0, t1, deadline;
	bool abandoned;
	int rc;

	memset(resp, 0, sizeof(*resp));
	pthread_mutex_lock(&sh->lock);
	t0 = loop_now_ns();
	deadline = t0 + (uint64_t)sh->timeout_ms * 1000000ull;
	s->job = j;
	s->deadline_ns = deadline;
	if (deadline < sh->keeper_at)
		pthread_cond_signal(&sh->keeper_wake);
	pthread_mutex_unlock(&sh->lock);

	rc = c->call(c->ctx, req, resp);
	t1 = loop_now_ns();

	pthread_mutex_lock(&sh->lock);
	s->job = NULL;
	abandoned = s->abandoned;
	pthread_mutex_unlock(&sh->lock);
	*ms = (t1 - t0) / 1e6;
	if (rc > 0)
		rc = -EIO;
	if (rc == 0 && (abandoned || t1 >= deadline)) {
		if (c->release)
			c->release(c->ctx, resp);
		rc = -ETIMEDOUT;
	}
	return abandoned ? CALL_ABANDONED : rc;
}

/* Runs job j (taken by worker s, owned): the candidate's answer (and,
 * when noise-recheck asks, a second one) reported to the pipeline.
 * Returns CALL_ABANDONED when the keeper gave up on it, else 0. */
static int run_job(struct rs_shadower *sh, struct slot *s, struct job *j)
{
	struct replay_job job = { .x = j->x };
	struct rs_header *hv = NULL;
	struct rs_message req, m;
	uint64_t wait_until;
	int rc;

	if (sh->interval_ns) {
		struct timespec ts;

		pthread_mutex_lock(&sh->lock);
		wait_until = sh->next_send > loop_now_ns() ? sh->next_send : loop_now_ns();
		sh->next_send = wait_until + sh->interval_ns;
		pthread_mutex_unlock(&sh->lock);
		ts = to_timespec(wait_until);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
	}
	if (request_view(j->x, &req, &hv) < 0) {
		job.outcome = REPLAY_DROPPED; /* counted as shed */
		shadower_replayed(sh->acct, &job);
		goto done;
	}
	rc = call_candidate(sh, s, j, &req, &m, &job.candidate_ms);
	if (rc == CALL_ABANDONED)
		goto abandoned;
	pthread_mutex_lock(&sh->lock);
	breaker_record(sh, rc == 0, j->probe);
	pthread_mutex_unlock(&sh->lock);
	if (rc < 0) {
		unanswered(sh, j->x, error_of(rc));
		goto done;
	}
	rc = response_copy(&m, sh->max_body, &job.candidate);
	if (sh->candidate.release)
		sh->candidate.release(sh->candidate.ctx, &m);
	job.outcome = rc < 0 ? REPLAY_DROPPED : REPLAY_OK;
	if (!shadower_replayed(sh->acct, &job))
		goto done;
	/* noise-recheck: the same request once more */
	rc = call_candidate(sh, s, j, &req, &m, &job.recheck_ms);
	if (rc == CALL_ABANDONED)
		goto abandoned;
	job.rechecks = 1;
	if (rc == 0) {
		job.has_recheck = response_copy(&m, sh->max_body,
						&job.recheck) == 0;
		if (sh->candidate.release)
			sh->candidate.release(sh->candidate.ctx, &m);
	}
	job.recheck_error = rc < 0 ? error_of(rc) : REPLAY_ERR_NONE;
	shadower_replayed(sh->acct, &job); /* the first answer alone if not */
done:
	pthread_mutex_lock(&sh->lock);
	sh->busy--;
	pthread_cond_broadcast(&sh->idle);
	pthread_mutex_unlock(&sh->lock);
	rc = 0;
	goto cleanup;
abandoned:
	rc = CALL_ABANDONED;
cleanup:
	http_response_clean(&job.candidate);
	http_response_clean(&job.recheck);
	free(hv);
	job_free(j);
	return rc;
}

static void *worker_main(void *arg)
{
	struct slot *s = arg;
	struct rs_shadower *sh = s->sh;
	struct job *j;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		while (!sh->head && !sh->stop)
			pthread_cond_wait(&sh->work, &sh->lock);
		if (!sh->head)
			break;
		j = sh->head;
		sh->head = j->next;
		if (!sh->head)
			sh->tail = NULL;
		__atomic_sub_fetch(&sh->queued, 1, __ATOMIC_RELAXED);
		sh->busy++;
		pthread_mutex_unlock(&sh->lock);
		if (run_job(sh, s, j) == 0) {
			pthread_mutex_lock(&sh->lock);
			continue;
		}
		/* Back from a call the keeper gave up on: a replacement may
		 * have our place already. */
		pthread_mutex_lock(&sh->lock);
		s->abandoned = false;
		sh->abandoned_running--;
		if (sh->stop || sh->live >= sh->target) {
			sh->live++; /* undone below */
			break;
		}
		sh->live++;
	}
	sh->live--;
	sh->total--;
	s->state = SLOT_EXITED;
	pthread_cond_broadcast(&sh->idle);
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

/* Cuts off calls past their deadline and writes the store every
 * STORE_FLUSH_NS. */
static void *keeper_main(void *arg)
{
	struct rs_shadower *sh = arg;
	uint64_t next_flush = loop_now_ns() + STORE_FLUSH_NS, now, wake;
	bool failing = false;
	int rc;

	pthread_mutex_lock(&sh->lock);
	while (!sh->keeper_stop) {
		now = loop_now_ns();
		wake = next_flush;
		for (unsigned i = 0; i < sh->n_slots; i++) {
			struct slot *s = &sh->slots[i];

			if (s->state != SLOT_RUNNING || !s->job || s->abandoned)
				continue;
			if (s->deadline_ns <= now)
				abandon(sh, s);
			else if (s->deadline_ns < wake)
				wake = s->deadline_ns;
		}
		if (now >= next_flush) {
			pthread_mutex_unlock(&sh->lock);
			rc = shadower_flush(sh->acct);
			/* said once per outage, not every 100 ms */
			if (rc < 0 && !failing)
				fprintf(stderr, "request-shadow: cannot write "
					"the store (%s); retrying\n",
					strerror(-rc));
			failing = rc < 0;
			pthread_mutex_lock(&sh->lock);
			next_flush = loop_now_ns() + STORE_FLUSH_NS;
			continue;
		}
		sh->keeper_at = wake;
		timed_wait(&sh->keeper_wake, &sh->lock, wake);
	}
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

/* ---- the API ---- */

static void on_submit(void *ctx, struct exchange *x);
static enum replay_outcome on_shed(void *ctx, const struct exchange *x,
				   enum replay_outcome why);

static void set_error(char **error, const char *msg)
{
	if (error)
		*error = strdup(msg);
}

static int build_rules(struct rs_shadower *sh, const struct rs_config *c,
		       char *err, size_t len)
{
	int rc;

	sh->rules = diff_rules_new();
	sh->endpoints = endpoint_rules_new();
	if (!sh->rules || !sh->endpoints)
		return -ENOMEM;
	for (size_t i = 0; i < c->ignore_header.n; i++)
		if ((rc = diff_rules_ignore_header(sh->rules,
						   c->ignore_header.v[i])) < 0)
			return rc;
	for (size_t i = 0; i < c->ignore_json.n; i++)
		if ((rc = diff_rules_ignore_json(sh->rules, c->ignore_json.v[i],
						 err, len)) < 0)
			return rc;
	for (size_t i = 0; i < c->unordered.n; i++)
		if ((rc = diff_rules_unordered(sh->rules, c->unordered.v[i], err,
					       len)) < 0)
			return rc;
	for (size_t i = 0; i < c->endpoint.n; i++)
		if ((rc = endpoint_rules_add(sh->endpoints, c->endpoint.v[i], err,
					     len)) < 0)
			return rc;
	return diff_rules_float_tolerance(sh->rules, c->float_tolerance);
}

/* The condition variables wait on CLOCK_MONOTONIC. */
static int init_sync(struct rs_shadower *sh)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&sh->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&sh->work, &ca);
	rc = rc ? rc : pthread_cond_init(&sh->idle, &ca);
	rc = rc ? rc : pthread_cond_init(&sh->keeper_wake, &ca);
	pthread_condattr_destroy(&ca);
	return -rc;
}

struct rs_shadower *rs_shadower_new(const struct rs_config *cfg,
				    struct rs_backend primary,
				    struct rs_backend candidate, char **error)
{
	struct rs_config *defaults = NULL;
	struct rs_shadower *sh = NULL;
	struct shadower_config ac;
	char err[512] = "";
	int rc;

	if (error)
		*error = NULL;
	if (!primary.call || !candidate.call) {
		set_error(error, "the primary and the candidate backend each "
			  "need a call function");
		return NULL;
	}
	if (!cfg && !(cfg = defaults = rs_config_new()))
		goto nomem;
	if (cfg->error) {
		set_error(error, cfg->error);
		goto fail;
	}
	sh = calloc(1, sizeof(*sh));
	if (!sh || init_sync(sh) < 0)
		goto nomem;
	sh->primary = primary;
	sh->candidate = candidate;
	sh->rate = cfg->sample;
	sh->timeout_ms = cfg->timeout_ms;
	sh->noise_recheck = cfg->noise_recheck;
	sh->replay_unsafe = cfg->replay_unsafe;
	sh->max_body = cfg->max_body;
	sh->max_queue = cfg->max_queue;
	sh->n_slots = cfg->max_inflight;
	sh->target = cfg->threads < cfg->max_inflight ? cfg->threads :
						      cfg->max_inflight;
	sh->interval_ns = cfg->rate > 0 ? (uint64_t)(1e9 / cfg->rate) : 0;
	sh->keeper_at = UINT64_MAX;
	rc = build_rules(sh, cfg, err, sizeof(err));
	if (rc == -ENOMEM)
		goto nomem;
	if (rc < 0 ||
	    sample_new(cfg->sample, cfg->sample_key, &sh->sample, err,
		       sizeof(err)) < 0) {
		set_error(error, err[0] ? err : "bad option");
		goto fail;
	}
	ac = (struct shadower_config){
		.store = cfg->store, .max_records = cfg->max_records,
		.examples = cfg->examples,
		.redact = (const char *const *)cfg->redact.v,
		.n_redact = cfg->redact.n, .log_size = cfg->log_size,
		.sample = sh->sample, .rules = sh->rules,
		.noise_recheck = cfg->noise_recheck,
		.submit = on_submit, .shed = on_shed, .ctx = sh,
	};
	if (shadower_new(&ac, &sh->acct, err, sizeof(err)) < 0) {
		set_error(error, err);
		goto fail;
	}
	sh->slots = calloc(sh->n_slots, sizeof(*sh->slots));
	if (!sh->slots)
		goto nomem;
	for (unsigned i = 0; i < sh->n_slots; i++)
		sh->slots[i].sh = sh;
	pthread_mutex_lock(&sh->lock);
	rc = 0;
	for (unsigned i = 0; i < sh->target && rc == 0; i++)
		rc = spawn_worker(sh);
	pthread_mutex_unlock(&sh->lock);
	if (rc == 0)
		rc = -pthread_create(&sh->keeper, NULL, keeper_main, sh);
	if (rc < 0) {
		snprintf(err, sizeof(err), "cannot start threads: %s",
			 strerror(-rc));
		set_error(error, err);
		goto fail;
	}
	sh->keeper_started = true;
	rs_config_free(defaults);
	return sh;
nomem:
	set_error(error, "out of memory");
fail:
	rs_shadower_free(sh);
	rs_config_free(defaults);
	return NULL;
}

/* Whether method is one replay-unsafe guards (DESIGN.md "Replay"). */
static bool unsafe_method(const char *m)
{
	return !strcasecmp(m, "POST") || !strcasecmp(m, "PUT") ||
	       !strcasecmp(m, "PATCH") || !strcasecmp(m, "DELETE");
}

/* A view of req as an exchange on endpoint ep, for the sampler and for
 * counting a call that is not copied: its strings borrowed, the header
 * array malloc'd into *hv (caller frees) when the sample key reads
 * headers. */
static void view_of(const struct rs_shadower *sh, const struct rs_message *req,
		    const char *ep, struct exchange *v, struct header **hv)
{
	memset(v, 0, sizeof(*v));
	*hv = NULL;
	v->req.method = req->method;
	v->req.target = req->target;
	v->endpoint = ep;
	if (!req->n_headers || (sample_kind(sh->sample) != SAMPLE_KEY_HEADER &&
				sample_kind(sh->sample) != SAMPLE_KEY_COOKIE))
		return;
	*hv = calloc(req->n_headers, sizeof(**hv));
	for (size_t i = 0; *hv && i < req->n_headers; i++) {
		(*hv)[i].name = (char *)(req->headers[i].name ?
					 req->headers[i].name : "");
		(*hv)[i].value = (char *)(req->headers[i].value ?
					  req->headers[i].value : "");
	}
	v->req.headers.v = *hv;
	v->req.headers.n = *hv ? req->n_headers : 0;
}

/* The sampler's decision on v, read without its lock: the pipeline makes
 * the same one when it counts the call. */
static bool sampled(const struct rs_shadower *sh, const struct exchange *v)
{
	if (sh->rate >= 1 || sh->rate <= 0)
		return sh->rate >= 1;
	return sample_exchange_value(sh->sample, v, NULL) < sh->rate;
}

/* Whether a sampled call gets a place in the queue: REPLAY_OK (the place
 * reserved, *probe set for the breaker's probe), or why not. */
static enum replay_outcome admit(struct rs_shadower *sh,
				 const struct rs_message *req, bool *probe)
{
	enum replay_outcome o = REPLAY_OK;

	*probe = false;
	if (!sh->replay_unsafe && unsafe_method(req->method))
		return REPLAY_UNSAFE_SKIPPED;
	/* A full queue sheds without the lock: the common case under a slow
	 * candidate, and the one rs_shadow_call() must not queue behind. */
	if (__atomic_load_n(&sh->queued, __ATOMIC_RELAXED) >= sh->max_queue)
		return REPLAY_SHED_QUEUE;
	/* and so does a breaker open for a while yet (its pause is set when
	 * it opens and only then) */
	if (loop_now_ns() < __atomic_load_n(&sh->breaker_until, __ATOMIC_RELAXED))
		return REPLAY_SHED_BREAKER;
	pthread_mutex_lock(&sh->lock);
	if (sh->stop ||
	    __atomic_load_n(&sh->queued, __ATOMIC_RELAXED) >= sh->max_queue)
		o = REPLAY_SHED_QUEUE;
	else if (!breaker_admits(sh, probe))
		o = REPLAY_SHED_BREAKER;
	else
		__atomic_add_fetch(&sh->queued, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sh->lock);
	return o;
}

/* Gives back a place admit() reserved, or queues j in it. */
static void place(struct rs_shadower *sh, struct job *j, bool probe)
{
	pthread_mutex_lock(&sh->lock);
	if (j) {
		if (sh->tail)
			sh->tail->next = j;
		else
			sh->head = j;
		sh->tail = j;
		pthread_cond_signal(&sh->work);
	} else {
		__atomic_sub_fetch(&sh->queued, 1, __ATOMIC_RELAXED);
		if (probe)
			sh->probe_out = false;
		pthread_cond_broadcast(&sh->idle);
	}
	pthread_mutex_unlock(&sh->lock);
}

/* The job this thread's rs_shadow_call() is handing to the pipeline: its
 * submit (on_submit(), under the accounting lock) only fills it in, and
 * the call queues it after, so that lock is never held with sh->lock. */
static __thread struct job *submitting;

/* The pipeline's replayer.submit: takes x into the job being handed on. */
static void on_submit(void *ctx, struct exchange *x)
{
	submitting->x = x;
}

/* The pipeline's replayer.shed, for the calls rs_shadow_call() did not
 * copy: `why`, or unsafe_skipped for a method replay-unsafe guards. */
static enum replay_outcome on_shed(void *ctx, const struct exchange *x,
				   enum replay_outcome why)
{
	const struct rs_shadower *sh = ctx;

	if (!sh->replay_unsafe && unsafe_method(x->req.method))
		return REPLAY_UNSAFE_SKIPPED;
	return why;
}

/* Hands a sampled call with a place in the queue to the pipeline as a
 * copy of req and resp; false (the place given back) without memory. */
static bool submit(struct rs_shadower *sh, const struct rs_message *req,
		   const struct rs_message *resp, uint64_t t0, uint64_t t1,
		   bool probe)
{
	struct job *j = calloc(1, sizeof(*j));
	struct exchange *x = j ? exchange_of(sh, req, resp, t0, t1) : NULL;

	if (x) {
		j->probe = probe;
		submitting = j;
		if (!shadower_exchange(sh->acct, x)) {
			/* the sampler disagreed: never expected */
			exchange_free(x);
			place(sh, NULL, probe);
			free(j);
		} else {
			place(sh, j, probe);
		}
		submitting = NULL;
		return true;
	}
	free(j);
	place(sh, NULL, probe);
	return false;
}

int rs_shadow_call(struct rs_shadower *sh, const struct rs_message *req,
		   struct rs_message *resp)
{
	char small[640], *ep = small;
	enum replay_outcome why = REPLAY_OK;
	struct header *hv = NULL;
	struct exchange v;
	bool probe;
	size_t need;
	uint64_t t0, t1;
	int rc;

	if (!sh || !req || !resp || !req->method || !req->target)
		return -EINVAL;
	memset(resp, 0, sizeof(*resp));
	t0 = loop_now_ns();
	rc = sh->primary.call(sh->primary.ctx, req, resp);
	t1 = loop_now_ns();
	if (rc) {
		memset(resp, 0, sizeof(*resp));
		return rc < 0 ? rc : -EIO;
	}
	need = endpoint_name_max(sh->endpoints, strlen(req->method),
				 strlen(req->target));
	if (need > sizeof(small) && !(ep = malloc(need)))
		return 0; /* the caller has its answer; this one goes uncounted */
	endpoint_write(sh->endpoints, req->method, req->target, ep);
	view_of(sh, req, ep, &v, &hv);
	if (sampled(sh, &v)) {
		why = admit(sh, req, &probe);
		if (why == REPLAY_OK && submit(sh, req, resp, t0, t1, probe))
			goto cleanup;
		/* counted as passed over, as the kernel's sheds are */
		v.req.flags = why == REPLAY_SHED_BREAKER ? MESSAGE_SHED_BREAKER :
							  MESSAGE_SHED_QUEUE;
	}
	/* never taken: unsampled, or marked shed */
	shadower_exchange(sh->acct, &v);
cleanup:
	free(hv);
	if (ep != small)
		free(ep);
	return 0;
}

void rs_release(struct rs_shadower *sh, struct rs_message *resp)
{
	if (!sh || !resp)
		return;
	if (sh->primary.release)
		sh->primary.release(sh->primary.ctx, resp);
	memset(resp, 0, sizeof(*resp));
}

int rs_shadower_flush(struct rs_shadower *sh, int timeout_ms)
{
	uint64_t until;
	int rc = 0;

	if (!sh)
		return -EINVAL;
	until = loop_now_ns() + (timeout_ms < 0 ? 0 : (uint64_t)timeout_ms * 1000000ull);
	pthread_mutex_lock(&sh->lock);
	while ((__atomic_load_n(&sh->queued, __ATOMIC_RELAXED) || sh->busy) &&
	       rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&sh->idle, &sh->lock);
		else if (loop_now_ns() >= until)
			rc = -ETIMEDOUT;
		else
			timed_wait(&sh->idle, &sh->lock, until);
	}
	pthread_mutex_unlock(&sh->lock);
	if (rc == 0)
		rc = shadower_flush(sh->acct);
	return rc;
}

char *rs_divergences_json(struct rs_shadower *sh, size_t max)
{
	return sh ? shadower_ring_json(sh->acct, max) : NULL;
}

int rs_shadower_stats(struct rs_shadower *sh, struct rs_stats *st)
{
	if (!sh || !st)
		return -EINVAL;
	shadower_stats(sh->acct, st);
	pthread_mutex_lock(&sh->lock);
	st->abandoned_running = sh->abandoned_running;
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

void rs_shadower_free(struct rs_shadower *sh)
{
	if (!sh)
		return;
	if (sh->slots) {
		if (rs_shadower_flush(sh, -1) < 0)
			fprintf(stderr, "request-shadow: cannot write the store\n");
		pthread_mutex_lock(&sh->lock);
		sh->stop = true;
		pthread_cond_broadcast(&sh->work);
		/* threads stuck in the candidate leave when it returns */
		while (sh->total)
			pthread_cond_wait(&sh->idle, &sh->lock);
		pthread_mutex_unlock(&sh->lock);
		for (unsigned i = 0; i < sh->n_slots; i++)
			if (sh->slots[i].state == SLOT_EXITED)
				pthread_join(sh->slots[i].tid, NULL);
	}
	if (sh->keeper_started) {
		pthread_mutex_lock(&sh->lock);
		sh->keeper_stop = true;
		pthread_cond_signal(&sh->keeper_wake);
		pthread_mutex_unlock(&sh->lock);
		pthread_join(sh->keeper, NULL);
	}
	while (sh->head) {
		struct job *j = sh->head;

		sh->head = j->next;
		job_free(j);
	}
	shadower_free(sh->acct);
	sample_free(sh->sample);
	diff_rules_free(sh->rules);
	endpoint_rules_free(sh->endpoints);
	free(sh->slots);
	pthread_cond_destroy(&sh->work);
	pthread_cond_destroy(&sh->idle);
	pthread_cond_destroy(&sh->keeper_wake);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}
