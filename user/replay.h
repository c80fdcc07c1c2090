/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Replay of sampled exchanges against the candidate (and, for noise
 * cancellation, a second primary) with libcurl's multi interface, driven by
 * the daemon's event loop (util/loop.h): no busy polling.
 *
 * Threads (`threads`, shadowd's --replay-threads). With one, the
 * transfers run on the caller's loop, as everything else does. With N > 1,
 * N threads call the candidate, each with its own loop, curl multi handle
 * and share of max_inflight (max_inflight / N, the remainder to the first
 * ones); they only run transfers. Everything else stays on the caller's
 * loop, in its thread: the queue and its cap, the breaker, the rate and the
 * pace, the counters, and the done callback. A job leaves the queue for the
 * thread with the most free slots (a hand-off list and an eventfd per
 * thread, filled once per pump) and comes back, its transfers done, through
 * one list and an eventfd the caller's loop watches; the done callback then
 * runs there. So the breaker and the pace are shared across threads and
 * the callback has one caller, as with one thread.
 *
 * Path of a submitted exchange:
 *   unsafe method and !replay_unsafe       -> REPLAY_UNSAFE_SKIPPED
 *   breaker open (or half-open, probe out) -> REPLAY_SHED_BREAKER
 *   queue full (max_queue waiting)         -> REPLAY_SHED_QUEUE
 *   else queued; it leaves the queue when an in-flight slot (max_inflight)
 *   and a rate token (`rate` per second, bursts of max(1, rate/100)) are
 *   free, and is sent -> REPLAY_OK or REPLAY_CANDIDATE_ERROR.
 * The done callback runs exactly once per submitted exchange (plus once more
 * after a recheck). For the skipped/shed outcomes it runs from inside
 * replay_submit(); otherwise from the loop.
 *
 * The request sent is the captured one: method, target appended to the base
 * URL's path (http://h:1/v2 + /users/7 -> request-target /v2/users/7, sent
 * byte for byte: no normalisation), captured headers in order minus
 * hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade and those Connection names) and minus
 * Content-Length (recomputed), body. Host is kept (or replaced by
 * host_header; the candidate's host:port is sent only when the capture had
 * no Host). set_headers replace headers of the same name, drop_headers
 * remove them. curl adds nothing of its own: no Accept, User-Agent, Expect
 * or Content-Type; HTTP/1.1; no proxy from the environment; no redirects
 * followed; no Accept-Encoding negotiation (the response is kept as sent,
 * `decoded` is derived from it). The noise primary gets the same request
 * (same rewrites), appended to its own base path, in parallel; its failure
 * is recorded in the job (noise_error) but is not a candidate error.
 *
 * Candidate errors are transport failures only (an HTTP 500 is a response,
 * left to the differ): classified by enum replay_error, counted, returned
 * in the job, never a divergence. The circuit breaker opens after
 * breaker_failures consecutive candidate errors, sheds everything for
 * breaker_pause_ms, then lets one probe through (half-open): success
 * closes it, failure opens it again for another pause.
 */
#ifndef SHADOW_REPLAY_H
#define SHADOW_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct loop;
struct replay;

struct replay_config {
	const char *candidate_url;     /* http:// or https:// base URL */
	const char *noise_primary_url; /* NULL: no second primary */
	long timeout_ms;               /* whole shadow leg; <= 0: 2000 */
	unsigned max_inflight;         /* jobs in flight; 0: 64 (paced: replay_send_rate) */
	size_t max_queue;              /* jobs waiting; 0: 1024 */
	double rate;                   /* replays per second; <= 0: no limit */
	bool replay_unsafe;            /* replay methods other than GET/HEAD/OPTIONS */
	const char *host_header;       /* NULL: keep the captured Host */
	const char *const *set_headers; /* "Name: value" */
	size_t n_set;
	const char *const *drop_headers; /* names */
	size_t n_drop;
	const char *cacert;            /* PEM bundle for an https candidate */
	bool insecure;                 /* do not verify the candidate's cert */
	size_t max_body;               /* response body cap; 0: 1 MiB */
	unsigned breaker_failures;     /* 0: 20 */
	long breaker_pause_ms;         /* <= 0: 5000 */
	unsigned threads;              /* threads calling the candidate, 1 to
					* REPLAY_MAX_THREADS and at most
					* max_inflight; 0: 1 (on the loop) */
};

/* The most threads a replayer runs (--replay-threads). */
#define REPLAY_MAX_THREADS 64

enum replay_outcome {
	REPLAY_OK,              /* the candidate answered (any status) */
	REPLAY_CANDIDATE_ERROR, /* transport failure, see job->error */
	REPLAY_SHED_QUEUE,      /* queue full */
	REPLAY_SHED_BREAKER,    /* breaker open; error = REPLAY_ERR_BREAKER_OPEN */
	REPLAY_UNSAFE_SKIPPED,  /* not GET/HEAD/OPTIONS and !replay_unsafe */
	REPLAY_DROPPED,         /* out of memory building the request */
	REPLAY_OUTCOME__COUNT,
};

enum replay_error {
	REPLAY_ERR_NONE,
	REPLAY_ERR_REFUSED,      /* connection refused / could not connect */
	REPLAY_ERR_TIMEOUT,      /* timeout_ms elapsed */
	REPLAY_ERR_RESET,        /* reset or closed before the response ended */
	REPLAY_ERR_BAD_URL,      /* the target cannot be sent as a request */
	REPLAY_ERR_TLS,          /* handshake or certificate failure */
	REPLAY_ERR_BREAKER_OPEN, /* not sent: breaker open */
	REPLAY_ERR_PROTOCOL,     /* not HTTP, or an invalid/oversized head */
	REPLAY_ERR_OTHER,        /* DNS, local resources, anything else */
	REPLAY_ERR__COUNT,
};

/* "none", "refused", "timeout", "reset", "bad_url", "tls", "breaker_open",
 * "protocol", "other"; "unknown" out of range. Static strings. */
const char *replay_error_name(enum replay_error e);

/* The candidate error classes the store and the metrics count (stats'
 * candidate_error_classes, the candidate_errors_by_class metric): every
 * replay_error from REPLAY_ERR_CLASS_FIRST on, by replay_error_name(), in
 * this order. */
#define REPLAY_ERR_CLASS_FIRST REPLAY_ERR_REFUSED
#define REPLAY_N_ERROR_CLASSES (REPLAY_ERR__COUNT - REPLAY_ERR_CLASS_FIRST)
/* The class whose replay_error_name() is name: REPLAY_ERR_OTHER for any
 * other name (or NULL, or "none"). */
enum replay_error replay_error_class(const char *name);
/* "ok", "candidate_error", "shed_queue", "shed_breaker", "unsafe_skipped",
 * "dropped". */
const char *replay_outcome_name(enum replay_outcome o);

/*
 * One replayed exchange, handed to the done callback. Everything in it is
 * owned by the job and freed when the callback returns (unless it called
 * replay_recheck()); the callback may take any of x, candidate, noise,
 * recheck by copying the struct/pointer and zeroing/NULLing the field.
 */
struct replay_job {
	struct exchange *x;
	enum replay_outcome outcome;
	enum replay_error error;
	struct http_response candidate; /* valid when outcome == REPLAY_OK */
	double candidate_ms;            /* request sent -> response complete */

	bool has_noise;                 /* noise holds the second primary's answer */
	struct http_response noise;
	enum replay_error noise_error;  /* why !has_noise when a noise URL is set */
	double noise_ms;

	unsigned rechecks;              /* 0 on the first call, 1 after a recheck */
	bool has_recheck;               /* recheck holds the candidate's 2nd answer */
	struct http_response recheck;
	enum replay_error recheck_error;
	double recheck_ms;
};

/* Called once per submitted exchange, and once more after replay_recheck().
 * Must not call replay_free(). */
typedef void (*replay_done_fn)(void *ctx, struct replay_job *job);

enum replay_breaker_state {
	REPLAY_BREAKER_CLOSED,
	REPLAY_BREAKER_OPEN,
	REPLAY_BREAKER_HALF_OPEN,
};

/* Counters since replay_new(). Every submitted exchange ends in exactly one
 * of replayed, shed_queue, shed_breaker, unsafe_skipped, dropped, or is still
 * queued/inflight (or cancelled by replay_free()). */
struct replay_stats {
	uint64_t submitted;
	uint64_t replayed;          /* sent: ok + candidate_errors */
	uint64_t ok;
	uint64_t candidate_errors;  /* sum of errors[] except BREAKER_OPEN */
	uint64_t errors[REPLAY_ERR__COUNT]; /* errors[BREAKER_OPEN] == shed_breaker */
	uint64_t shed_queue;
	uint64_t shed_breaker;
	uint64_t unsafe_skipped;
	uint64_t dropped;
	uint64_t rechecks;          /* recheck requests accepted */
	uint64_t noise_sent, noise_errors;
	uint64_t breaker_opened;    /* transitions to open */
	unsigned inflight;          /* jobs sent and not yet back (with
				     * threads: handed to one) */
	size_t queued;
	enum replay_breaker_state breaker;
};

/* Replays per second the sending is held to now: --rate, or, while the
 * candidate's calls take long, max_inflight per average call time with a
 * quarter to spare, whichever is lower. 0: not held. */
double replay_send_rate(const struct replay *r);

/* Validates the config (URLs parse, scheme http/https, host present, no
 * query or fragment in a base URL, cacert readable, set_headers are
 * "Name: value", numbers sane) and sets up curl on the loop, or starts the
 * threads (their signals blocked: the caller's thread keeps taking them).
 * Returns 0 and
 * the replayer in *out (caller frees with replay_free()), or -EINVAL with a
 * one-line message in err, or -ENOMEM. The loop is borrowed and must
 * outlive the replayer; the config and its strings are copied. */
int replay_new(struct loop *l, const struct replay_config *cfg,
	       replay_done_fn done, void *ctx, struct replay **out, char *err,
	       size_t errlen) __attribute__((warn_unused_result));
/* Cancels everything queued or in flight WITHOUT calling the done callback
 * (use replay_drain() first to let work finish), stops and joins the
 * threads (each leaves at its next wakeup: transfers never block it), frees
 * the jobs and their exchanges, and unregisters from the loop. Accepts
 * NULL. */
void replay_free(struct replay *r);

/* Takes ownership of x (heap, freed with exchange_free()) and replays it;
 * the done callback reports the outcome, possibly before this returns. */
void replay_submit(struct replay *r, struct exchange *x);
/* An exchange the kernel passed over, uncopied, because replay_shedding()
 * said `why` (REPLAY_SHED_QUEUE or _BREAKER): counted as submitted and
 * shed for that reason (or unsafe_skipped, as replay_submit() would have),
 * and that outcome returned. x stays the caller's; no callback runs (most
 * exchanges go this way when the candidate is slow). */
enum replay_outcome replay_shed(struct replay *r, const struct exchange *x,
				enum replay_outcome why);
/* Whether a new exchange would be shed, and why: REPLAY_SHED_BREAKER while
 * the breaker blocks, REPLAY_SHED_QUEUE from the moment the queue was
 * found full until half of it has drained (so that the kernel, told to
 * pass sampled requests over meanwhile, does not flap with every slot
 * freed), else REPLAY_OK. */
enum replay_outcome replay_shedding(const struct replay *r);

/* From inside the done callback only: sends the same request to the
 * candidate once more (at the head of the queue, still subject to the
 * in-flight cap, rate and breaker); the job is kept and the callback runs
 * again with rechecks = 1 and has_recheck/recheck/recheck_error set.
 * Returns 0, -EALREADY if the job was already rechecked, -EINVAL outside its
 * callback or when the job was never sent. */
int replay_recheck(struct replay *r, struct replay_job *job)
	__attribute__((warn_unused_result));

/* Runs the loop until nothing is queued or in flight, or max_ms passed.
 * Returns 0, -ETIMEDOUT, or -errno from the loop. */
int replay_drain(struct replay *r, long max_ms)
	__attribute__((warn_unused_result));

/* Borrowed; valid until replay_free(). */
const struct replay_stats *replay_stats(const struct replay *r);

#endif /* SHADOW_REPLAY_H */
