// SPDX-License-Identifier: BSD-2-Clause
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int parse_number(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || isnan(v))
		return -EINVAL;
	if (errno || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_integer(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	if (errno || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

/* strtoull(3) of a digit string: a sign it would accept and negate is
 * refused here, so "-1" never reads as 2^64 - 1. Sets *end like strtoull. */
static int read_unsigned(const char *s, unsigned long long *v, char **end)
{
	const char *p = s;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	if (*end == s)
		return -EINVAL;
	return errno ? -ERANGE : 0;
}

int parse_unsigned(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int rc = read_unsigned(s, &v, &end);

	if (rc == -EINVAL || (!rc && *end))
		return -EINVAL;
	if (rc || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;
	int rc = read_unsigned(s, &v, &end);

	if (rc == -EINVAL)
		return rc;
	if (*end == 'k' || *end == 'K')
		shift = 10, end++;
	else if (*end == 'm' || *end == 'M')
		shift = 20, end++;
	if (*end)
		return -EINVAL;
	if (rc || v > UINT64_MAX >> shift)
		return -ERANGE;
	v <<= shift;
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_duration(const char *s, double *out_sec)
{
	static const struct {
		const char *unit;
		double sec;
	} units[] = { { "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 } };
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || !isfinite(v))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].unit)) {
			*out_sec = v * units[i].sec;
			return 0;
		}
	return -EINVAL;
}
