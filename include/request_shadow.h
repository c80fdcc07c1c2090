/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * request-shadow, in process: shadow a migration inside one binary (an
 * encoder, an ORM, a pricing function swapped) with the daemon's sampling,
 * differ and divergence log. See request_shadow(3).
 *
 * A shadower wraps two backends. rs_shadow_call() calls the primary in the
 * caller's thread and returns its answer; when the request is sampled, a
 * copy of the request and of that answer goes to a bounded queue, and the
 * shadower's worker threads call the candidate under `timeout`, diff the
 * two answers (status, headers, body) and record any divergence: in an
 * in-memory ring (rs_divergences_json()) and, with `store`, in the SQLite
 * store that shadow-dump reads. The caller never waits for the candidate.
 *
 * Every function is thread-safe; every pointer argument may be NULL
 * (functions returning int then return -EINVAL, the others do nothing or
 * return NULL). Errors are 0 or -errno.
 */
#ifndef REQUEST_SHADOW_H
#define REQUEST_SHADOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rs_header {
	const char *name;
	const char *value;
};

/* A request or a response. Strings are NUL-terminated; the body is any
 * bytes. A backend's response belongs to the backend until its release()
 * is called. */
struct rs_message {
	const char *method, *target; /* requests only: "GET", "/users/7?x=1" */
	int status;                  /* responses only */
	const struct rs_header *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
};

/* A backend fills *resp for req (borrowed for the call) and returns 0, or
 * returns -errno (resp then holds nothing to release). release (may be
 * NULL) gives back what call() put into *resp. Both may be called from
 * several threads at once. */
struct rs_backend {
	int (*call)(void *ctx, const struct rs_message *req,
		    struct rs_message *resp);
	void (*release)(void *ctx, struct rs_message *resp);
	void *ctx;
};

struct rs_config;
struct rs_shadower;

/* Counters since rs_shadower_new(); see rs_shadower_stats(). Every
 * sampled call ends in exactly one of replayed, shed, unsafe_skipped, or
 * is still queued or in flight. */
struct rs_stats {
	uint64_t captured;         /* rs_shadow_call()s the primary answered */
	uint64_t sampled;          /* of which sampled */
	uint64_t replayed;         /* sent to the candidate (answered or not) */
	uint64_t diverged;         /* answered and diverged */
	uint64_t diverged_status, diverged_headers, diverged_body;
	uint64_t candidate_errors; /* sent, not answered: error or timeout */
	uint64_t timeouts;         /* of which cut off by `timeout` */
	uint64_t shed;             /* queue full or breaker open */
	uint64_t unsafe_skipped;   /* POST/PUT/PATCH/DELETE without replay-unsafe */
	uint64_t noise_suppressed; /* diverged only in what noise-recheck found volatile */
	uint64_t abandoned_running; /* timed-out candidate calls not yet returned */
	uint64_t store_errors;     /* records or counters the store refused */
};

/* A configuration with the defaults; NULL if out of memory. */
struct rs_config *rs_config_new(void);

/*
 * Sets one option, named and written as the daemon's flag without its
 * dashes: "sample" "0.1", "ignore-json" "$..ts", "noise-recheck" (value
 * NULL, "", "true" or "false"), ... Options that the daemon takes more than
 * once (ignore-header, ignore-json, unordered, redact-header, endpoint)
 * add one more value per call. Returns 0, or -EINVAL for an unknown
 * option or a bad value (the message is kept for rs_shadower_new()'s
 * *error, and the configuration is otherwise unchanged), or -ENOMEM.
 */
int rs_config_set(struct rs_config *cfg, const char *option, const char *value);

/* Frees a configuration; NULL ok. A shadower made from it keeps working. */
void rs_config_free(struct rs_config *cfg);

/*
 * A new shadower over primary and candidate (their ctx must outlive it),
 * configured by cfg (NULL: defaults; copied, so it may be freed at once).
 * Starts the worker threads. On failure returns NULL and, when error is
 * not NULL, a malloc'd one-line message in *error (the caller frees it):
 * the first bad rs_config_set() on cfg, a store that cannot be opened, ...
 */
struct rs_shadower *rs_shadower_new(const struct rs_config *cfg,
				    struct rs_backend primary,
				    struct rs_backend candidate, char **error);

/*
 * Calls the primary with req (borrowed; method and target are required)
 * in this thread and returns its answer in *resp, to be given back with
 * rs_release(). When req is sampled, a copy of both goes to the workers
 * (or is shed and counted when the queue is full or the breaker is open);
 * this never waits for the candidate. Returns 0, the primary's -errno
 * (nothing to release), or -EINVAL.
 */
int rs_shadow_call(struct rs_shadower *sh, const struct rs_message *req,
		   struct rs_message *resp);

/* Gives the primary's answer from rs_shadow_call() back to the primary
 * (its release()) and zeroes *resp. */
void rs_release(struct rs_shadower *sh, struct rs_message *resp);

/* Waits until nothing is queued or in flight (calls cut off by the timeout
 * do not count) and the store has been written, for at most timeout_ms
 * (< 0: no limit). Returns 0, -ETIMEDOUT, or the store's -errno. */
int rs_shadower_flush(struct rs_shadower *sh, int timeout_ms);

/* The last (at most max, 0: all) divergences of the ring as a JSON array,
 * newest first, in the record format of `shadow-dump show --json` (ids
 * are the ring's own). malloc'd, the caller frees it; NULL on ENOMEM. */
char *rs_divergences_json(struct rs_shadower *sh, size_t max);

/* Copies the counters into *st. 0 or -EINVAL. */
int rs_shadower_stats(struct rs_shadower *sh, struct rs_stats *st);

/* Flushes (without limit), stops the workers, waits for any candidate
 * call still running after its timeout (its response is released when it
 * returns), and frees everything. NULL ok. */
void rs_shadower_free(struct rs_shadower *sh);

/*
 * A backend over libcurl: the request's target is appended to base_url
 * ("http://127.0.0.1:8081/v2" + "/users/7"), sent with its method, headers
 * (minus hop-by-hop ones) and body; the answer is kept as sent (a
 * Content-Encoding is undone before diffing). Transport failures are
 * -ECONNREFUSED, -ETIMEDOUT (30 s), -ECONNRESET, -EPROTO (TLS), -EINVAL
 * (bad URL) or -EIO. base_url is borrowed and must outlive the backend's
 * use; each thread keeps its own connection.
 */
struct rs_backend rs_backend_http(const char *base_url);

#ifdef __cplusplus
}
#endif

#endif /* REQUEST_SHADOW_H */
