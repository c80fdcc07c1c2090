/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The in-process shadower's accounting: the daemon's pipeline core
 * (pipeline.h) driven under one lock, so the library counts, judges and
 * stores exactly as shadowd does, plus what only the library has: the
 * ring of the last divergences, redacted, and the counters of struct
 * rs_stats that the pipeline does not keep (diverged by part, timeouts).
 * The library's threads (request_shadow.c) call the backends; every
 * exchange and every candidate answer goes through here.
 */
#ifndef SHADOW_SHADOWER_H
#define SHADOW_SHADOWER_H

#include <stdbool.h>
#include <stddef.h>

#include "replay.h"
#include "request_shadow.h"

struct diff_rules;
struct exchange;
struct sample;
struct shadower;

struct shadower_config {
	const char *store;          /* NULL: no store, the ring only */
	size_t max_records;         /* 0: the store's default */
	size_t examples;            /* 0: the store's default */
	const char *const *redact;  /* header names redacted beside the defaults */
	size_t n_redact;
	size_t log_size;            /* divergences in the ring; 0: no ring */
	struct sample *sample;      /* borrowed; required */
	const struct diff_rules *rules; /* borrowed; NULL: the defaults */
	bool noise_recheck;
	/* The pipeline's replayer (pipeline.h), called with the lock held:
	 * submit takes a sampled exchange, shed says what became of one
	 * passed over with MESSAGE_SHED_QUEUE or MESSAGE_SHED_BREAKER. */
	void (*submit)(void *ctx, struct exchange *x);
	enum replay_outcome (*shed)(void *ctx, const struct exchange *x,
				    enum replay_outcome why);
	void *ctx;
};

/* Opens the store (if any), sets up the pipeline and the ring; cfg's
 * strings are copied. Returns 0 and *out (shadower_free()), or -errno with
 * one line in err. */
int shadower_new(const struct shadower_config *cfg, struct shadower **out,
		 char *err, size_t errlen) __attribute__((warn_unused_result));
/* Writes and closes the store, frees the pipeline and the ring; NULL ok. */
void shadower_free(struct shadower *s);

/* pipeline_exchange(): counts x, and if it is sampled hands it to submit
 * (true: x was taken) or counts it shed by its MESSAGE_SHED_* flag. x is
 * the caller's when this returns false. */
bool shadower_exchange(struct shadower *s, struct exchange *x);

/* pipeline_replayed(): counts and judges job (borrowed). Returns true
 * when noise-recheck wants the candidate asked once more: the caller then
 * sets job->rechecks = 1 and has_recheck/recheck (or recheck_error) and
 * reports the job again. */
bool shadower_replayed(struct shadower *s, struct replay_job *job);

/* Copies the counters into *st (abandoned_running is the caller's). */
void shadower_stats(struct shadower *s, struct rs_stats *st);

/* The ring, newest first, at most max records (0: all), as a malloc'd
 * JSON array; NULL on ENOMEM. */
char *shadower_ring_json(struct shadower *s, size_t max);

/* Hands the pipeline's counts to the store and writes it. 0 (also without
 * a store) or the store's -errno. */
int shadower_flush(struct shadower *s) __attribute__((warn_unused_result));

#endif /* SHADOW_SHADOWER_H */
