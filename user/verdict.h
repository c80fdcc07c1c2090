/* SPDX-License-Identifier: BSD-2-Clause */
/* shadow-dump verdict: whether the candidate is fit to promote. */
#ifndef SHADOW_VERDICT_H
#define SHADOW_VERDICT_H

#include <jansson.h>
#include <stdint.h>

struct verdict_policy {
	double max_rate;      /* the highest divergence and error rate that pass */
	uint64_t min_samples; /* replays needed before deciding at all */
};

enum verdict_exit { VERDICT_PASS = 0, VERDICT_FAIL = 1, VERDICT_INSUFFICIENT = 2 };

/*
 * The verdict over a store's stats (the object of stats --json; borrowed)
 * under policy p. Pure: the same stats and policy give the same answer.
 * Returns a new object, what verdict --json prints: {"verdict": "pass" |
 * "fail" | "insufficient", "exit": 0 | 1 | 2, "reason", "replayed" (answered
 * ones), "diverged", "candidate_errors", "divergence_rate", "max_rate",
 * "min_samples", "endpoints_over_limit": [...]}; NULL if out of memory.
 */
json_t *verdict_decide(const json_t *stats, const struct verdict_policy *p);

#endif /* SHADOW_VERDICT_H */
