/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Numbers, sizes and durations from command-line flags. Each reader takes
 * the whole string or nothing (no trailing bytes), writes *out only on
 * success and returns 0, -EINVAL when the text is not one, or -ERANGE when
 * it is one outside [lo, hi]. The caller words the error: the flag's name
 * and what it expects are the caller's to say.
 */
#ifndef SHADOW_PARSE_H
#define SHADOW_PARSE_H

#include <stdint.h>

/* A decimal number as strtod(3) reads it (1.5, 1e-3); NaN never passes. */
int parse_number(const char *s, double lo, double hi, double *out)
	__attribute__((warn_unused_result));
/* A whole number in base 10, optionally signed. */
int parse_integer(const char *s, long long lo, long long hi, long long *out)
	__attribute__((warn_unused_result));
/* A whole number in base 10 with no sign: a minus is -EINVAL, never the
 * wrapped-around value strtoull(3) would give for it. */
int parse_unsigned(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
	__attribute__((warn_unused_result));
/* A byte count: a whole number with an optional k/K (KiB) or m/M (MiB)
 * suffix. Overflow in the suffix's multiplication is -ERANGE. */
int parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
	__attribute__((warn_unused_result));
/* A duration in seconds: a non-negative number with an optional unit
 * s, m, h or d (30s, 10m, 1.5h, 1d; no unit is seconds). */
int parse_duration(const char *s, double *out_sec)
	__attribute__((warn_unused_result));

#endif /* SHADOW_PARSE_H */
