// SPDX-License-Identifier: BSD-2-Clause
#include "verdict.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/json_get.h"

/* Appends to bad every endpoint with min_samples answered replays of its
 * own and a rate over max_rate, and names them in worst (cut short, never
 * overrun): one endpoint can fail a candidate whose overall rate passes. */
static void endpoints_over_limit(const json_t *eps, const struct verdict_policy *p,
				 json_t *bad, char *worst, size_t len)
{
	const json_t *e;
	size_t i;

	worst[0] = '\0';
	json_array_foreach(eps, i, e) {
		int64_t r = json_get_int(e, "replayed") - json_get_int(e, "candidate_errors");
		double er = json_get_num(e, "divergence_rate");

		if ((uint64_t)r < p->min_samples || er <= p->max_rate)
			continue;
		json_array_append_new(bad, json_pack("{s s s I s I s f}",
			"endpoint", json_get_str(e, "endpoint"), "replayed", (json_int_t)r,
			"diverged", (json_int_t)json_get_int(e, "diverged"),
			"divergence_rate", er));
		if (strlen(worst) < len - 128)
			snprintf(worst + strlen(worst), len - strlen(worst),
				 "%s%s %.2f%% (%" PRId64 "/%" PRId64 ")",
				 worst[0] ? ", " : "", json_get_str(e, "endpoint"), er * 100,
				 json_get_int(e, "diverged"), r);
	}
}

json_t *verdict_decide(const json_t *stats, const struct verdict_policy *p)
{
	const json_t *tot = json_object_get(stats, "totals");
	const json_t *eps = json_object_get(stats, "endpoints");
	int64_t replayed, diverged, errors, attempts;
	char reason[1024], worst[512];
	enum verdict_exit code;
	const char *verdict;
	double rate, err_rate;
	json_t *bad, *out;

	bad = json_array();
	if (!bad)
		return NULL;
	/* replayed counts every request sent; errors are among them and are
	 * never divergences: the rate is over the answered ones. */
	attempts = json_get_int(tot, "replayed");
	diverged = json_get_int(tot, "diverged");
	errors = json_get_int(tot, "candidate_errors");
	replayed = attempts > errors ? attempts - errors : 0;
	rate = json_get_num(tot, "divergence_rate");
	err_rate = attempts ? (double)errors / (double)attempts : 0.0;
	endpoints_over_limit(eps, p, bad, worst, sizeof(worst));

	if ((uint64_t)attempts < p->min_samples) {
		code = VERDICT_INSUFFICIENT;
		verdict = "insufficient";
		snprintf(reason, sizeof(reason),
			 "not enough evidence: %" PRId64 " replays, need %" PRIu64
			 " (--min-samples)", attempts, p->min_samples);
	} else if (err_rate > p->max_rate) {
		code = VERDICT_FAIL;
		verdict = "fail";
		snprintf(reason, sizeof(reason),
			 "candidate errors: %" PRId64 " of %" PRId64
			 " replays failed (%.2f%% > %.2f%%)", errors, attempts,
			 err_rate * 100, p->max_rate * 100);
	} else if ((uint64_t)replayed < p->min_samples) {
		code = VERDICT_INSUFFICIENT;
		verdict = "insufficient";
		snprintf(reason, sizeof(reason),
			 "not enough evidence: %" PRId64 " answered replays, need %"
			 PRIu64 " (--min-samples)", replayed, p->min_samples);
	} else if (rate > p->max_rate || json_array_size(bad)) {
		code = VERDICT_FAIL;
		verdict = "fail";
		snprintf(reason, sizeof(reason),
			 "divergence rate %.2f%% (%" PRId64 "/%" PRId64
			 " replays), limit %.2f%%%s%s", rate * 100, diverged,
			 replayed, p->max_rate * 100, worst[0] ? "; over the limit: " : "",
			 worst);
	} else {
		code = VERDICT_PASS;
		verdict = "pass";
		snprintf(reason, sizeof(reason),
			 "divergence rate %.2f%% (%" PRId64 "/%" PRId64
			 " replays over %zu endpoints) within %.2f%%, %" PRId64
			 " candidate errors", rate * 100, diverged, replayed,
			 json_array_size(eps), p->max_rate * 100, errors);
	}
	out = json_pack("{s s s i s s s I s I s I s f s f s I s O}",
		"verdict", verdict, "exit", (int)code, "reason", reason,
		"replayed", (json_int_t)replayed,
		"diverged", (json_int_t)diverged,
		"candidate_errors", (json_int_t)errors,
		"divergence_rate", rate, "max_rate", p->max_rate,
		"min_samples", (json_int_t)p->min_samples,
		"endpoints_over_limit", bad);
	json_decref(bad);
	return out;
}
