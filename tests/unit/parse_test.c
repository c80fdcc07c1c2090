// SPDX-License-Identifier: BSD-2-Clause
/*
 * The flag readers of util/parse: whole strings only, the range checked
 * after the syntax, a minus never read as a huge unsigned value, and a
 * size suffix that cannot overflow into a small size.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "util/parse.h"

/* Signed readers: parse_number (N) and parse_integer (I, its bounds and
 * value exact in a double). */
struct ncase {
	char fn;
	const char *s;
	double lo, hi;
	int rc;
	double v;
};

static const struct ncase ncases[] = {
	{ 'N', "0.5", 0, 1, 0, 0.5 },
	{ 'N', "1", 0, 1, 0, 1 },
	{ 'N', "1e-3", 0, 1, 0, 0.001 },
	{ 'N', " 0.25", 0, 1, 0, 0.25 },
	{ 'N', "-0.1", 0, 1, -ERANGE, 0 },
	{ 'N', "2", 0, 1, -ERANGE, 0 },
	{ 'N', "1e999", 0, 1e9, -ERANGE, 0 },
	{ 'N', "nan", 0, 1, -EINVAL, 0 },
	{ 'N', "", 0, 1, -EINVAL, 0 },
	{ 'N', "x", 0, 1, -EINVAL, 0 },
	{ 'N', "0.5x", 0, 1, -EINVAL, 0 },
	{ 'N', "0.5 ", 0, 1, -EINVAL, 0 },
	{ 'I', "1", 1, 65535, 0, 1 },
	{ 'I', "65535", 1, 65535, 0, 65535 },
	{ 'I', "+7", 1, 10, 0, 7 },
	{ 'I', "-3", -5, 5, 0, -3 },
	{ 'I', "0", 1, 65535, -ERANGE, 0 },
	{ 'I', "65536", 1, 65535, -ERANGE, 0 },
	{ 'I', "-3", 1, 10, -ERANGE, 0 },
	{ 'I', "99999999999999999999", 1, 10, -ERANGE, 0 },
	{ 'I', "1e3", 1, 100000, -EINVAL, 0 },
	{ 'I', "1x", 1, 10, -EINVAL, 0 },
	{ 'I', "", 1, 10, -EINVAL, 0 },
	{ 'I', "0x10", 1, 100, -EINVAL, 0 },
};

Test(parse, numbers_take_the_whole_string_within_their_range)
{
	for (size_t i = 0; i < sizeof(ncases) / sizeof(*ncases); i++) {
		const struct ncase *c = &ncases[i];
		double v = -42;
		long long iv = -42;
		int rc;

		if (c->fn == 'N') {
			rc = parse_number(c->s, c->lo, c->hi, &v);
		} else {
			rc = parse_integer(c->s, (long long)c->lo, (long long)c->hi, &iv);
			v = (double)iv;
		}
		cr_expect_eq(rc, c->rc, "%c '%s'", c->fn, c->s);
		cr_expect_eq(v, c->rc ? -42 : c->v, "%c '%s': %g", c->fn, c->s, v);
	}
}

typedef int (*u64_reader)(const char *, uint64_t, uint64_t, uint64_t *);

struct ucase {
	u64_reader fn;
	const char *s;
	uint64_t lo, hi;
	int rc;
	uint64_t v;
};

#define GIB (1ull << 30)
#define U parse_unsigned
#define B parse_bytes

static const struct ucase ucases[] = {
	{ U, "0", 0, UINT64_MAX, 0, 0 },
	{ U, "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ U, " 5", 1, 10, 0, 5 },
	{ U, "+5", 1, 10, 0, 5 },
	{ U, "0", 1, 10, -ERANGE, 0 },
	{ U, "11", 1, 10, -ERANGE, 0 },
	{ U, "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
	{ U, "-1", 0, UINT64_MAX, -EINVAL, 0 },
	{ U, " -5", 0, UINT64_MAX, -EINVAL, 0 },
	{ U, "-0", 0, UINT64_MAX, -EINVAL, 0 },
	{ U, "", 0, UINT64_MAX, -EINVAL, 0 },
	{ U, "1x", 0, UINT64_MAX, -EINVAL, 0 },
	{ U, "1.0", 0, UINT64_MAX, -EINVAL, 0 },
	{ B, "65536", 1, GIB, 0, 65536 },
	{ B, "64k", 1, GIB, 0, 64 << 10 },
	{ B, "64K", 1, GIB, 0, 64 << 10 },
	{ B, "1M", 1, GIB, 0, 1 << 20 },
	{ B, "1024m", 1, GIB, 0, GIB },
	{ B, "1025m", 1, GIB, -ERANGE, 0 },
	{ B, "0", 1, GIB, -ERANGE, 0 },
	{ B, "0k", 1, GIB, -ERANGE, 0 },
	/* 2^44 + 1 MiB is 2^64 + 2^20: it must not wrap to 1 MiB */
	{ B, "17592186044417M", 1, GIB, -ERANGE, 0 },
	{ B, "99999999999999999999k", 1, GIB, -ERANGE, 0 },
	{ B, "-1", 1, GIB, -EINVAL, 0 },
	{ B, " -1k", 1, GIB, -EINVAL, 0 },
	{ B, "2G", 1, GIB, -EINVAL, 0 },
	{ B, "64kb", 1, GIB, -EINVAL, 0 },
	{ B, "k", 1, GIB, -EINVAL, 0 },
	{ B, "", 1, GIB, -EINVAL, 0 },
};

Test(parse, unsigned_and_bytes_never_read_a_minus_or_wrap_around)
{
	for (size_t i = 0; i < sizeof(ucases) / sizeof(*ucases); i++) {
		const struct ucase *c = &ucases[i];
		const char *fn = c->fn == U ? "parse_unsigned" : "parse_bytes";
		uint64_t v = 42;

		cr_expect_eq(c->fn(c->s, c->lo, c->hi, &v), c->rc, "%s('%s')", fn, c->s);
		cr_expect_eq(v, c->rc ? 42 : c->v, "%s('%s'): %llu", fn, c->s,
			     (unsigned long long)v);
	}
}

struct dcase {
	const char *s;
	int rc;
	double sec;
};

static const struct dcase dcases[] = {
	{ "30", 0, 30 },
	{ "30s", 0, 30 },
	{ "10m", 0, 600 },
	{ "1.5h", 0, 5400 },
	{ "1d", 0, 86400 },
	{ "0", 0, 0 },
	{ "-1", -EINVAL, 0 },
	{ "5x", -EINVAL, 0 },
	{ "5 m", -EINVAL, 0 },
	{ "5ms", -EINVAL, 0 },
	{ "inf", -EINVAL, 0 },
	{ "nan", -EINVAL, 0 },
	{ "h", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
};

Test(parse, duration_takes_one_unit_of_s_m_h_d)
{
	for (size_t i = 0; i < sizeof(dcases) / sizeof(*dcases); i++) {
		const struct dcase *c = &dcases[i];
		double v = -42;

		cr_expect_eq(parse_duration(c->s, &v), c->rc, "'%s'", c->s);
		cr_expect_eq(v, c->rc ? -42 : c->sec, "'%s': %g", c->s, v);
	}
}
