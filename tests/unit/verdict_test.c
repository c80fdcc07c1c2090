// SPDX-License-Identifier: BSD-2-Clause
/*
 * The verdict policy over stats objects as shadow-dump stats --json prints
 * them: not enough evidence before min_samples replays (sent, then
 * answered), candidate errors over the limit fail, then the rate overall
 * and on every endpoint with min_samples answered replays of its own.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>

#include "verdict.h"

struct vcase {
	const char *name;
	const char *stats;
	double max_rate;
	uint64_t min_samples;
	int exit;
	const char *reason;
	size_t over_limit;
};

#define TOT(r, d, e, rate) \
	"{\"totals\": {\"replayed\": " #r ", \"diverged\": " #d \
	", \"candidate_errors\": " #e ", \"divergence_rate\": " #rate "}, "
#define EP(name, r, d, e, rate) \
	"{\"endpoint\": \"" name "\", \"replayed\": " #r ", \"diverged\": " #d \
	", \"candidate_errors\": " #e ", \"divergence_rate\": " #rate "}"

static const struct vcase vcases[] = {
	{ "too_few_replays", TOT(50, 0, 0, 0.0) "\"endpoints\": []}", 0.01, 100,
	  2, "not enough evidence: 50 replays, need 100 (--min-samples)", 0 },
	{ "candidate_errors_over_the_limit", TOT(200, 0, 10, 0.0) "\"endpoints\": []}",
	  0.01, 100, 1, "candidate errors: 10 of 200 replays failed (5.00% > 1.00%)", 0 },
	/* 1 error in 100 is within 1%, but leaves 99 answered: too few */
	{ "too_few_answered", TOT(100, 0, 1, 0.0) "\"endpoints\": []}", 0.01, 100,
	  2, "not enough evidence: 99 answered replays, need 100 (--min-samples)", 0 },
	{ "rate_over_the_limit", TOT(1000, 20, 0, 0.02) "\"endpoints\": []}", 0.01, 100,
	  1, "divergence rate 2.00% (20/1000 replays), limit 1.00%", 0 },
	/* the overall rate passes; one endpoint with enough replays does not */
	{ "one_endpoint_over_the_limit",
	  TOT(2000, 10, 0, 0.005) "\"endpoints\": [" EP("GET /a", 160, 10, 0, 0.0625)
	  ", " EP("GET /b", 1840, 0, 0, 0.0) "]}", 0.01, 100,
	  1, "divergence rate 0.50% (10/2000 replays), limit 1.00%; over the limit: "
	  "GET /a 6.25% (10/160)", 1 },
	/* an endpoint under min_samples answered replays (errors do not count)
	 * is not judged on its own */
	{ "endpoint_with_too_few_answered_is_not_judged",
	  TOT(1000, 5, 60, 0.0053) "\"endpoints\": [" EP("GET /a", 150, 5, 60, 0.0556)
	  ", " EP("GET /b", 850, 0, 0, 0.0) "]}", 0.1, 100,
	  0, "divergence rate 0.53% (5/940 replays over 2 endpoints) within 10.00%, "
	  "60 candidate errors", 0 },
	{ "pass", TOT(1000, 5, 0, 0.005) "\"endpoints\": [" EP("GET /a", 1000, 5, 0, 0.005) "]}",
	  0.01, 100, 0, "divergence rate 0.50% (5/1000 replays over 1 endpoints) within "
	  "1.00%, 0 candidate errors", 0 },
	{ "rate_at_the_limit_passes", TOT(100, 1, 0, 0.01) "\"endpoints\": []}", 0.01, 100,
	  0, "divergence rate 1.00% (1/100 replays over 0 endpoints) within 1.00%, "
	  "0 candidate errors", 0 },
	{ "empty_store_with_no_minimum", "{}", 0.01, 0,
	  0, "divergence rate 0.00% (0/0 replays over 0 endpoints) within 1.00%, "
	  "0 candidate errors", 0 },
	{ "empty_store", "{}", 0.01, 100,
	  2, "not enough evidence: 0 replays, need 100 (--min-samples)", 0 },
};

Test(verdict, decides_by_evidence_errors_then_rates)
{
	for (size_t i = 0; i < sizeof(vcases) / sizeof(*vcases); i++) {
		const struct vcase *c = &vcases[i];
		struct verdict_policy p = { .max_rate = c->max_rate,
					    .min_samples = c->min_samples };
		json_error_t jerr;
		json_t *st = json_loads(c->stats, 0, &jerr), *v;
		static const char *const names[] = { "pass", "fail", "insufficient" };

		cr_assert_not_null(st, "%s: %s", c->name, jerr.text);
		v = verdict_decide(st, &p);
		cr_assert_not_null(v, "%s", c->name);
		cr_expect_eq(json_integer_value(json_object_get(v, "exit")), c->exit,
			     "%s", c->name);
		cr_expect_str_eq(json_string_value(json_object_get(v, "verdict")),
				 names[c->exit], "%s", c->name);
		cr_expect_str_eq(json_string_value(json_object_get(v, "reason")), c->reason,
				 "%s", c->name);
		cr_expect_eq(json_array_size(json_object_get(v, "endpoints_over_limit")),
			     c->over_limit, "%s", c->name);
		json_decref(v);
		json_decref(st);
	}
}

/* The whole object, as verdict --json prints it (key order included). */
Test(verdict, json_shape)
{
	struct verdict_policy p = { .max_rate = 0.01, .min_samples = 100 };
	json_t *st = json_loads(TOT(2000, 10, 0, 0.005) "\"endpoints\": ["
				EP("GET /a", 160, 10, 0, 0.0625) "]}", 0, NULL);
	json_t *v = verdict_decide(st, &p);
	char *got = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(6));

	cr_assert_not_null(got);
	cr_expect_str_eq(got,
		"{\"verdict\":\"fail\",\"exit\":1,\"reason\":\"divergence rate 0.50% "
		"(10/2000 replays), limit 1.00%; over the limit: GET /a 6.25% (10/160)\","
		"\"replayed\":2000,\"diverged\":10,\"candidate_errors\":0,"
		"\"divergence_rate\":0.005,\"max_rate\":0.01,\"min_samples\":100,"
		"\"endpoints_over_limit\":[{\"endpoint\":\"GET /a\",\"replayed\":160,"
		"\"diverged\":10,\"divergence_rate\":0.0625}]}");
	free(got);
	json_decref(v);
	json_decref(st);
}
