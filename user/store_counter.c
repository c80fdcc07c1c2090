// SPDX-License-Identifier: BSD-2-Clause
#include "store_counter.h"

#include <stddef.h>

static const char *const counter_names[STORE_N_COUNTERS] = {
	[STORE_CAPTURED] = "captured",
	[STORE_SAMPLED] = "sampled",
	[STORE_REPLAYED] = "replayed",
	[STORE_DIVERGED] = "diverged",
	[STORE_DIVERGED_STATUS] = "diverged_status",
	[STORE_DIVERGED_HEADERS] = "diverged_headers",
	[STORE_DIVERGED_BODY] = "diverged_body",
	[STORE_CANDIDATE_ERRORS] = "candidate_errors",
	[STORE_SHED] = "shed",
	[STORE_UNSAFE_SKIPPED] = "unsafe_skipped",
	[STORE_NOISE_SUPPRESSED] = "noise_suppressed",
};

const char *store_counter_name(enum store_counter c)
{
	return (unsigned)c < STORE_N_COUNTERS ? counter_names[c] : "unknown";
}
