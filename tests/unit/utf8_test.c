// SPDX-License-Identifier: BSD-2-Clause
/*
 * util/utf8: which sequences are valid (RFC 3629), the encoder against
 * the checker for every code point, the \u reader's answers and offsets,
 * and the one rule that turns wire bytes into a JSON string.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

struct scase {
	const char *name;
	const char *s;
	size_t n;
	size_t len;
};

static const struct scase scases[] = {
	{ "ascii", "a", 1, 1 },
	{ "nul_is_ascii", "\0", 1, 1 },
	{ "two_bytes", "\xc3\xa9", 2, 2 },
	{ "three_bytes", "\xe2\x82\xac", 3, 3 },
	{ "four_bytes", "\xf0\x9f\x98\x80", 4, 4 },
	{ "last_code_point", "\xf4\x8f\xbf\xbf", 4, 4 },
	{ "above_last_code_point", "\xf4\x90\x80\x80", 4, 0 },
	{ "overlong_two", "\xc0\xaf", 2, 0 },
	{ "overlong_three", "\xe0\x80\xaf", 3, 0 },
	{ "overlong_four", "\xf0\x80\x80\xaf", 4, 0 },
	{ "surrogate", "\xed\xa0\x80", 3, 0 },
	{ "lone_continuation", "\x80", 1, 0 },
	{ "truncated", "\xe2\x82", 2, 0 },
	{ "bad_continuation", "\xe2\x28\xa1", 3, 0 },
	{ "ff", "\xff", 1, 0 },
};

Test(utf8, seq_len_follows_rfc3629)
{
	for (size_t i = 0; i < sizeof(scases) / sizeof(*scases); i++) {
		const struct scase *c = &scases[i];

		cr_expect_eq(utf8_seq_len((const uint8_t *)c->s, c->n), c->len,
			     "%s", c->name);
	}
}

Test(utf8, put_writes_what_seq_len_accepts_for_every_code_point)
{
	uint8_t b[4];

	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		size_t n = utf8_put(b, cp);
		size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

		if (n != want || utf8_seq_len(b, n) != n)
			cr_assert_fail("U+%04X: %zu bytes", cp, n);
	}
}

Test(utf8, is_text_refuses_nul_and_invalid_bytes)
{
	cr_expect(utf8_is_text("", 0));
	cr_expect(utf8_is_text("caf\xc3\xa9", 5));
	cr_expect_not(utf8_is_text("a\0b", 3));
	cr_expect_not(utf8_is_text("caf\xc3", 4));
	cr_expect_not(utf8_is_text("\xff", 1));
}

struct ecase {
	const char *name;
	const char *s; /* the text after "\u" */
	enum utf8_escape rc;
	size_t used;
	uint32_t cp;
};

static const struct ecase ecases[] = {
	{ "bmp", "00e9", UTF8_ESCAPE_OK, 4, 0xe9 },
	{ "upper_hex", "00E9x", UTF8_ESCAPE_OK, 4, 0xe9 },
	{ "nul", "0000", UTF8_ESCAPE_OK, 4, 0 },
	{ "pair", "d83d\\ude00", UTF8_ESCAPE_OK, 10, 0x1f600 },
	{ "last_pair", "dbff\\udfff", UTF8_ESCAPE_OK, 10, 0x10ffff },
	{ "bad_digit", "12g4", UTF8_ESCAPE_BAD_HEX, 2, 0 },
	{ "short", "12", UTF8_ESCAPE_BAD_HEX, 2, 0 },
	{ "lone_low", "dc00", UTF8_ESCAPE_LONE_LOW, 4, 0 },
	{ "high_alone", "d800", UTF8_ESCAPE_NO_LOW, 4, 0 },
	{ "high_then_text", "d800ab", UTF8_ESCAPE_NO_LOW, 4, 0 },
	{ "high_then_bad_digit", "d800\\u00g1", UTF8_ESCAPE_BAD_HEX, 8, 0 },
	{ "high_then_short", "d800\\udc", UTF8_ESCAPE_BAD_HEX, 8, 0 },
	{ "high_then_not_low", "d800\\u0041", UTF8_ESCAPE_BAD_LOW, 10, 0 },
	{ "high_then_high", "d800\\ud800", UTF8_ESCAPE_BAD_LOW, 10, 0 },
};

Test(utf8, read_escape_answers_and_says_where)
{
	for (size_t i = 0; i < sizeof(ecases) / sizeof(*ecases); i++) {
		const struct ecase *c = &ecases[i];
		uint32_t cp = 0xfffffff;
		size_t used = 99;

		cr_expect_eq(utf8_read_escape((const uint8_t *)c->s, strlen(c->s),
					      &cp, &used), c->rc, "%s", c->name);
		cr_expect_eq(used, c->used, "%s: used %zu", c->name, used);
		cr_expect_eq(cp, c->rc == UTF8_ESCAPE_OK ? c->cp : 0xfffffff,
			     "%s: U+%04X", c->name, cp);
	}
}

/* The reader stops at the first byte that is no hex digit: given a
 * length past a NUL, it still never reads beyond it. */
Test(utf8, read_escape_stops_at_a_nul)
{
	char *s = malloc(3);
	uint32_t cp;
	size_t used;

	memcpy(s, "1\0", 3);
	cr_expect_eq(utf8_read_escape((const uint8_t *)s, 10, &cp, &used),
		     UTF8_ESCAPE_BAD_HEX);
	cr_expect_eq(used, 1);
	free(s);
}

struct jcase {
	const char *name;
	const char *in;
	size_t n;
	const char *out; /* UTF-8 */
};

static const struct jcase jcases[] = {
	{ "ascii", "text/html", 9, "text/html" },
	{ "valid_utf8_kept", "caf\xc3\xa9", 5, "caf\xc3\xa9" },
	{ "empty", "", 0, "" },
	{ "invalid_byte_replaced", "a\xff", 2, "a\xef\xbf\xbd" },
	/* the valid sequence beside an invalid byte stays as it is */
	{ "valid_beside_invalid", "\xc3\xa9\xff", 3, "\xc3\xa9\xef\xbf\xbd" },
	/* each byte of a broken sequence is one U+FFFD */
	{ "truncated_sequence", "\xe2\x82x", 3, "\xef\xbf\xbd\xef\xbf\xbdx" },
	{ "latin1", "caf\xe9", 4, "caf\xef\xbf\xbd" },
	{ "nul", "a\0b", 3, "a\xef\xbf\xbd" "b" },
	{ "surrogate_bytes", "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
};

Test(utf8, json_string_keeps_valid_text_and_replaces_each_bad_byte)
{
	for (size_t i = 0; i < sizeof(jcases) / sizeof(*jcases); i++) {
		const struct jcase *c = &jcases[i];
		json_t *v = utf8_json_string(c->in, c->n);

		cr_assert(v, "%s", c->name);
		cr_expect_eq(json_string_length(v), strlen(c->out), "%s", c->name);
		cr_expect_eq(memcmp(json_string_value(v), c->out, strlen(c->out)), 0,
			     "%s: '%s'", c->name, json_string_value(v));
		json_decref(v);
	}
}
