/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-endpoint counters of `shadow-dump stats`, as every stage that
 * keeps them names them: the pipeline counts them, the tally batches
 * them, the store and the metrics keep them. Here so that none of those
 * has to include another's header for the list.
 */
#ifndef SHADOW_STORE_COUNTER_H
#define SHADOW_STORE_COUNTER_H

enum store_counter {
	STORE_CAPTURED,
	STORE_SAMPLED,
	STORE_REPLAYED,
	STORE_DIVERGED,
	STORE_DIVERGED_STATUS,
	STORE_DIVERGED_HEADERS,
	STORE_DIVERGED_BODY,
	STORE_CANDIDATE_ERRORS,
	STORE_SHED,
	STORE_UNSAFE_SKIPPED,
	STORE_NOISE_SUPPRESSED,
	STORE_N_COUNTERS
};

/* "captured", "diverged_status", ...: the stats --json key of a counter. */
const char *store_counter_name(enum store_counter c);

#endif /* SHADOW_STORE_COUNTER_H */
