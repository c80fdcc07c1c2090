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

struct ncase {
	const char *s;
	double lo, hi;
	int rc;
	double v;
};

static const struct ncase ncases[] = {
	{ "0.5", 0, 1, 0, 0.5 },
	{ "1", 0, 1, 0, 1 },
	{ "1e-3", 0, 1, 0, 0.001 },
	{ " 0.25", 0, 1, 0, 0.25 },
	{ "-0.1", 0, 1, -ERANGE, 0 },
	{ "2", 0, 1, -ERANGE, 0 },
	{ "1e999", 0, 1e9, -ERANGE, 0 },
	{ "nan", 0, 1, -EINVAL, 0 },
	{ "", 0, 1, -EINVAL, 0 },
	{ "x", 0, 1, -EINVAL, 0 },
	{ "0.5x", 0, 1, -EINVAL, 0 },
	{ "0.5 ", 0, 1, -EINVAL, 0 },
};

Test(parse, number_takes_the_whole_string_within_its_range)
{
	for (size_t i = 0; i < sizeof(ncases) / sizeof(*ncases); i++) {
		const struct ncase *c = &ncases[i];
		double v = -42;

		cr_expect_eq(parse_number(c->s, c->lo, c->hi, &v), c->rc, "'%s'", c->s);
		cr_expect_eq(v, c->rc ? -42 : c->v, "'%s': %g", c->s, v);
	}
}

struct icase {
	const char *s;
	long long lo, hi;
	int rc;
	long long v;
};

static const struct icase icases[] = {
	{ "1", 1, 65535, 0, 1 },
	{ "65535", 1, 65535, 0, 65535 },
	{ "+7", 1, 10, 0, 7 },
	{ "-3", -5, 5, 0, -3 },
	{ "0", 1, 65535, -ERANGE, 0 },
	{ "65536", 1, 65535, -ERANGE, 0 },
	{ "-3", 1, 10, -ERANGE, 0 },
	{ "99999999999999999999", 1, 10, -ERANGE, 0 },
	{ "1e3", 1, 100000, -EINVAL, 0 },
	{ "1x", 1, 10, -EINVAL, 0 },
	{ "", 1, 10, -EINVAL, 0 },
	{ "0x10", 1, 100, -EINVAL, 0 },
};

Test(parse, integer_is_base_ten_and_whole)
{
	for (size_t i = 0; i < sizeof(icases) / sizeof(*icases); i++) {
		const struct icase *c = &icases[i];
		long long v = -42;

		cr_expect_eq(parse_integer(c->s, c->lo, c->hi, &v), c->rc, "'%s'", c->s);
		cr_expect_eq(v, c->rc ? -42 : c->v, "'%s': %lld", c->s, v);
	}
}

struct ucase {
	const char *s;
	uint64_t lo, hi;
	int rc;
	uint64_t v;
};

static const struct ucase ucases[] = {
	{ "0", 0, UINT64_MAX, 0, 0 },
	{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ " 5", 1, 10, 0, 5 },
	{ "+5", 1, 10, 0, 5 },
	{ "0", 1, 10, -ERANGE, 0 },
	{ "11", 1, 10, -ERANGE, 0 },
	{ "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
	{ "-1", 0, UINT64_MAX, -EINVAL, 0 },
	{ " -5", 0, UINT64_MAX, -EINVAL, 0 },
	{ "-0", 0, UINT64_MAX, -EINVAL, 0 },
	{ "", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1x", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1.0", 0, UINT64_MAX, -EINVAL, 0 },
};

Test(parse, unsigned_never_reads_a_minus_as_a_huge_number)
{
	for (size_t i = 0; i < sizeof(ucases) / sizeof(*ucases); i++) {
		const struct ucase *c = &ucases[i];
		uint64_t v = 42;

		cr_expect_eq(parse_unsigned(c->s, c->lo, c->hi, &v), c->rc, "'%s'", c->s);
		cr_expect_eq(v, c->rc ? 42 : c->v, "'%s': %llu", c->s,
			     (unsigned long long)v);
	}
}

#define GIB (1ull << 30)

static const struct ucase bcases[] = {
	{ "65536", 1, GIB, 0, 65536 },
	{ "64k", 1, GIB, 0, 64 << 10 },
	{ "64K", 1, GIB, 0, 64 << 10 },
	{ "1M", 1, GIB, 0, 1 << 20 },
	{ "1024m", 1, GIB, 0, GIB },
	{ "1025m", 1, GIB, -ERANGE, 0 },
	{ "0", 1, GIB, -ERANGE, 0 },
	{ "0k", 1, GIB, -ERANGE, 0 },
	/* 2^44 + 1 MiB is 2^64 + 2^20: it must not wrap to 1 MiB */
	{ "17592186044417M", 1, GIB, -ERANGE, 0 },
	{ "99999999999999999999k", 1, GIB, -ERANGE, 0 },
	{ "-1", 1, GIB, -EINVAL, 0 },
	{ "2G", 1, GIB, -EINVAL, 0 },
	{ "64kb", 1, GIB, -EINVAL, 0 },
	{ "k", 1, GIB, -EINVAL, 0 },
	{ "", 1, GIB, -EINVAL, 0 },
};

Test(parse, bytes_take_k_and_m_and_never_overflow)
{
	for (size_t i = 0; i < sizeof(bcases) / sizeof(*bcases); i++) {
		const struct ucase *c = &bcases[i];
		uint64_t v = 42;

		cr_expect_eq(parse_bytes(c->s, c->lo, c->hi, &v), c->rc, "'%s'", c->s);
		cr_expect_eq(v, c->rc ? 42 : c->v, "'%s': %llu", c->s,
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
