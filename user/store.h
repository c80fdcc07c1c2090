/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The divergence store: SQLite in WAL mode, the bounded divergence log of
 * DESIGN.md "Store". Records are grouped by signature (endpoint, diverging
 * parts, header names, body paths); each signature keeps its count, first
 * and last seen and at most `examples` records, and the store at most
 * `max_records` (evicting the oldest record of the signature holding the
 * most, so a rare signature keeps its example). Per-endpoint counters,
 * latency histograms, candidate error classes and diverging-field counts
 * are kept beside the records and add up across daemon restarts.
 *
 * Writer side (shadowd): every call below store_flush() only queues in
 * memory; store_flush() writes the queue in one transaction (call it from
 * the loop timer, at least every 100 ms; store_put() also flushes by itself
 * when its queue grows large). A store is used by one thread.
 *
 * Reader side (shadow-dump, tests): store_open_reader() and the query
 * functions, which read while a writer writes (WAL, busy timeout).
 */
#ifndef SHADOW_STORE_H
#define SHADOW_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_counter.h"

/* The schema version this build writes and reads (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 1
#define STORE_DEFAULT_MAX_RECORDS 10000
#define STORE_DEFAULT_EXAMPLES 10

struct store;

struct store_config {
	const char *path;           /* database file; created 0600 */
	size_t max_records;         /* 0: STORE_DEFAULT_MAX_RECORDS */
	size_t examples;            /* 0: STORE_DEFAULT_EXAMPLES */
	const char *const *redact;  /* extra header names to redact */
	size_t n_redact;
};

/*
 * Opens (creating it mode 0600 when missing) and migrates the store at
 * cfg->path for writing. cfg is copied. On success *out is the caller's
 * (store_close() it); on failure returns -errno (-EPROTO: written by a newer
 * schema, -EINVAL: not a store / corrupt) and writes one line into err.
 */
int store_open(const struct store_config *cfg, struct store **out, char *err,
	       size_t errlen) __attribute__((warn_unused_result));

/*
 * Opens an existing store for reading only (never creates or migrates).
 * -ENOENT when missing, -EPROTO when its schema is newer than this build,
 * -EINVAL when it is not a store or is corrupt; err gets one line.
 */
int store_open_reader(const char *path, struct store **out, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* Flushes (writer) and closes; accepts NULL. */
void store_close(struct store *s);

/*
 * Queues one divergence record. Takes the caller's reference to record in
 * every case (also on error): the store redacts it in place, sets "id" and
 * "time", and derives the signature from its "endpoint" and part objects
 * (hold a reference of your own first to read the id back).
 * Returns 0 or -errno (-ENOMEM, -EINVAL when the record is not an object,
 * -EROFS on a reader, -ENOBUFS when the disk has failed for so long that
 * the queue is full: the record is dropped and counted as evicted).
 * It does not bump any counter: count STORE_DIVERGED and the
 * STORE_DIVERGED_<PART> counters with store_count().
 */
int store_put(struct store *s, json_t *record)
	__attribute__((warn_unused_result));

/* Adds n to counter c of endpoint (NULL or "" counts as "(none)"). 0 or -errno. */
int store_count(struct store *s, const char *endpoint, enum store_counter c,
		uint64_t n) __attribute__((warn_unused_result));

/* Records one replay's latencies (candidate_ms < 0: the candidate gave no
 * answer, only the primary's is recorded). 0 or -errno. */
int store_latency(struct store *s, const char *endpoint, double primary_ms,
		  double candidate_ms) __attribute__((warn_unused_result));

/* Counts one candidate error of class_name (a replay_error_name() of
 * replay.h's classes, anything else is "other"). Also bumps STORE_CANDIDATE_ERRORS. 0 or -errno. */
int store_candidate_error(struct store *s, const char *endpoint,
			  const char *class_name) __attribute__((warn_unused_result));

/* Counts one diverging body path (or header) of endpoint: as a raw
 * divergence, or as noise (it also differed between two primaries, or
 * between two answers of the candidate). 0 or -errno. */
int store_field(struct store *s, const char *endpoint, const char *path,
		bool noise) __attribute__((warn_unused_result));

/* The capture object of stats: lost_events, gaps, parse_errors,
 * truncated, tls_undecoded (TLS connections no hooked library decrypted). */
#define STORE_N_CAPTURE 5

/* The capture layer's loss counters, absolute values since this daemon
 * started (latest call wins); they are added to what earlier runs left in
 * the store. 0 or -errno. */
int store_capture_counters(struct store *s, uint64_t lost_events, uint64_t gaps,
			   uint64_t parse_errors, uint64_t truncated,
			   uint64_t tls_undecoded)
	__attribute__((warn_unused_result));

/* Writes everything queued in one transaction (nothing when nothing is
 * queued). 0 or -errno (-EIO, -EBUSY, -ENOSPC); on failure the queue is
 * kept and retried by the next flush. Runs on the caller's thread: one
 * 100 ms batch costs a few ms, more when SQLite checkpoints the WAL. */
int store_flush(struct store *s) __attribute__((warn_unused_result));

/* ---- reading ---- */

enum store_part {
	STORE_PART_STATUS = 1,
	STORE_PART_HEADERS = 2,
	STORE_PART_BODY = 4,
};

struct store_filter {
	const char *endpoint_glob; /* fnmatch(3) pattern or NULL */
	unsigned parts;            /* enum store_part mask, 0: any */
	int64_t since_ms;          /* unix ms, 0: any */
	int64_t after_id;          /* only ids > after_id */
	size_t limit;              /* 0: no limit */
	bool newest_first;
};

/* Calls fn for each stored record that passes f (NULL: all), in id order
 * (f->newest_first: descending). rec is borrowed for the call. Stops when
 * fn returns non-zero and returns that; else 0 or -errno. */
int store_each_record(struct store *s, const struct store_filter *f,
		      int (*fn)(json_t *rec, void *arg), void *arg)
	__attribute__((warn_unused_result));

/* One record by id into *out (new reference). 0, -ENOENT or -errno. */
int store_get_record(struct store *s, int64_t id, json_t **out)
	__attribute__((warn_unused_result));

/* The highest record id stored (0 when none), or -errno. */
int64_t store_last_id(struct store *s);

/* The stats --json object of DESIGN.md (new reference), NULL on error.
 * Per endpoint it also carries "evicted" and "candidate_error_classes";
 * top_fields lists at most 10 paths, most diverging first, leaving out
 * those diff_noise_report() (Diffy's rule, rel 0.2, abs 0.0003, samples =
 * the endpoint's replayed) calls noise. */
json_t *store_stats(struct store *s);

/* The signatures, most frequent first, filtered by f's endpoint/parts/
 * since/limit (new reference: an array of {"signature", "endpoint",
 * "parts", "header_names", "paths", "count", "first_seen", "last_seen",
 * "examples"}), NULL on error. */
json_t *store_groups(struct store *s, const struct store_filter *f);

#endif /* SHADOW_STORE_H */
