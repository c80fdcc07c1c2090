// SPDX-License-Identifier: BSD-2-Clause
#include "hist.h"

#include <math.h>
#include <string.h>

#define SUB (1u << HIST_SUB_BITS)

size_t hist_bucket(double ms)
{
	uint64_t v;
	unsigned e;

	if (!(ms > 0)) /* also NaN */
		return 0;
	if (ms * 1000.0 >= (double)(1ull << (HIST_MAX_EXP + 1)))
		return HIST_BUCKETS - 1;
	v = (uint64_t)(ms * 1000.0 + 0.5);
	if (v < 2 * SUB)
		return v;
	e = 63 - __builtin_clzll(v);
	return (size_t)(e - HIST_SUB_BITS) * SUB + (v >> (e - HIST_SUB_BITS));
}

double hist_bucket_value(size_t bucket)
{
	unsigned shift;
	uint64_t m;

	if (bucket >= HIST_BUCKETS)
		bucket = HIST_BUCKETS - 1;
	if (bucket < 2 * SUB)
		return bucket / 1000.0;
	shift = bucket / SUB - 1;
	m = bucket % SUB + SUB;
	/* middle of [m << shift, (m + 1) << shift) */
	return ((double)(m << shift) + (double)(1ull << shift) / 2.0) / 1000.0;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void hist_add(struct hist *h, double ms)
{
	h->counts[hist_bucket(ms)]++;
	h->total++;
}

void hist_add_bucket(struct hist *h, size_t bucket, uint64_t n)
{
	if (bucket >= HIST_BUCKETS)
		return;
	h->counts[bucket] += n;
	h->total += n;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
}

double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->total)
		return 0.0;
	if (!(q > 0))
		q = 0;
	if (q > 1)
		q = 1;
	rank = (uint64_t)ceil(q * (double)h->total);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			return hist_bucket_value(i);
	}
	return hist_bucket_value(HIST_BUCKETS - 1);
}
