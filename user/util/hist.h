/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A mergeable log-linear latency histogram. Values are milliseconds,
 * recorded at microsecond resolution: exact below 64 us, then 32 linear
 * sub-buckets per power of two, so a quantile is off by at most 1/64 of
 * its value (about 1.6 %). Two histograms merge by adding bucket counts,
 * which is how the store keeps them per endpoint across daemon restarts.
 */
#ifndef SHADOW_HIST_H
#define SHADOW_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_MAX_EXP 40 /* values are clamped to 2^41 us (25 days) */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) << HIST_SUB_BITS)

struct hist {
	uint64_t total;
	uint64_t counts[HIST_BUCKETS];
};

/* Bucket index (0 .. HIST_BUCKETS-1) for a value in ms; negative, NaN and
 * huge values are clamped to the first/last bucket. */
size_t hist_bucket(double ms);
/* The value (ms) a bucket stands for: the middle of its range. */
double hist_bucket_value(size_t bucket);

/* Zeroes a caller-owned histogram. */
void hist_init(struct hist *h);
/* Records one value (ms). */
void hist_add(struct hist *h, double ms);
/* Adds n to one bucket (used to load stored counts); out-of-range ignored. */
void hist_add_bucket(struct hist *h, size_t bucket, uint64_t n);
/* dst += src, bucket by bucket. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The q-quantile (0 <= q <= 1) in ms, 0.0 when the histogram is empty. */
double hist_quantile(const struct hist *h, double q);

#endif /* SHADOW_HIST_H */
