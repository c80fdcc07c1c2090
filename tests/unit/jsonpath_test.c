// SPDX-License-Identifier: BSD-2-Clause
/* The JSONPath subset: parsing, errors with columns, matching, and the
 * normalized paths the differ prints pasting back as rules. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

struct perr {
	const char *path;
	const char *err;
};

static const struct perr errors[] = {
	{ "", "expected '$' at column 1" },
	{ "a.b", "expected '$' at column 1" },
	{ "$.a[", "expected index, quoted name or '*' at column 5" },
	{ "$.", "expected member name or '*' at column 3" },
	{ "$.1a", "expected member name or '*' at column 3" },
	{ "$a", "expected '.', '..' or '[' at column 2" },
	{ "$.a[1", "expected ',' or ']' at column 6" },
	{ "$['a]", "unterminated string at column 6" },
	{ "$['a\\x']", "invalid escape at column 6" },
	{ "$[-1]", "negative indices are not supported at column 3" },
	{ "$[01]", "leading zero in index at column 3" },
	{ "$[1:2]", "slices are not supported at column 4" },
	{ "$[:2]", "slices are not supported at column 3" },
	{ "$[?@.a]", "filter expressions are not supported at column 3" },
	{ "$.length()", "function calls are not supported at column 9" },
	{ "$...a", "expected member name or '*' at column 4" },
	{ "$['\\ud800']", "expected low surrogate at column 10" },
	{ "$['\\u12g4']", "expected 4 hex digits after \\u at column 8" },
	{ "$['\\udc00']", "lone low surrogate at column 10" },
	{ "$['\\ud800\\u0041']", "expected low surrogate at column 16" },
	{ "$['\\ud800\\u00g1']", "expected 4 hex digits after \\u at column 14" },
	{ "$['\\u12", "expected 4 hex digits after \\u at column 8" },
};

Test(jsonpath, bad_paths_report_the_column)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(*errors); i++) {
		struct jsonpath_set *s = jsonpath_set_new();
		char err[200] = "";

		cr_expect_eq(jsonpath_set_add(s, errors[i].path, 1, err, sizeof(err)),
			     -EINVAL, "%s", errors[i].path);
		cr_expect_str_eq(err, errors[i].err, "'%s': got '%s'", errors[i].path, err);
		cr_expect_eq(jsonpath_set_count(s), 0);
		jsonpath_set_free(s);
	}
}

/*
 * Steps are written as a '/'-separated list: "name", "#3" (index 3) or
 * "#*" (an element of an unordered array).
 */
struct pmatch {
	const char *path;
	const char *steps;
	bool match;
};

static const struct pmatch matches[] = {
	{ "$", "", true },
	{ "$.a", "", false },
	{ "$.a", "a", true },
	{ "$.a", "b", false },
	{ "$.a.b", "a/b", true },
	{ "$.a.b", "a/c", false },
	{ "$.a.b", "a/b/c", false },
	{ "$['a b']", "a b", true },
	{ "$[\"a b\"]", "a b", true },
	{ "$['a\\'b']", "a'b", true },
	{ "$['\\u00e9']", "\xc3\xa9", true },
	{ "$['\\ud83d\\ude00']", "\xf0\x9f\x98\x80", true },
	{ "$.\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9", true },
	{ "$.items[*].id", "items/#0/id", true },
	{ "$.items[*].id", "items/#7/id", true },
	{ "$.items[*].id", "items/x/id", true },
	{ "$.items[*].id", "items/#*/id", true },
	{ "$.items[*].id", "items/#0/name", false },
	{ "$.a[0]", "a/#0", true },
	{ "$.a[0]", "a/#1", false },
	{ "$.a[0]", "a/#*", false },
	{ "$.a[0]", "a/0", false },
	{ "$..updated_at", "updated_at", true },
	{ "$..updated_at", "a/b/#3/updated_at", true },
	{ "$..updated_at", "a/b/#3/created_at", false },
	{ "$..*", "a", true },
	{ "$..[1]", "x/#1", true },
	{ "$..[1]", "x/#2", false },
	{ "$.a..b", "b", false },
	{ "$.a..b", "a/x/y/b", true },
	{ "$.a..b.c", "a/b/b/c", true },
	{ "$[0,'x',2]", "#2", true },
	{ "$[0,'x',2]", "x", true },
	{ "$[0,'x',2]", "#1", false },
	{ "$ .a [ 'b' ]", "a/b", true },
	{ "$.*", "anything", true },
	{ "$.*", "#4", true },
};

static bool run_match(const struct jsonpath_set *s, const char *steps)
{
	struct jsonpath_state cur[64], next[128];
	size_t n = jsonpath_root(s, cur);
	char buf[256];
	char *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", steps);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		size_t m;

		if (tok[0] == '#')
			m = jsonpath_step(s, cur, n, NULL, 0,
					  tok[1] == '*' ? JSONPATH_ANY_INDEX : atol(tok + 1),
					  next);
		else
			m = jsonpath_step(s, cur, n, tok, strlen(tok), 0, next);
		cr_assert_leq(m, 2 * n);
		memcpy(cur, next, m * sizeof(*cur));
		n = m;
	}
	return jsonpath_matched(s, cur, n) & 4;
}

Test(jsonpath, matching_table)
{
	for (size_t i = 0; i < sizeof(matches) / sizeof(*matches); i++) {
		struct jsonpath_set *s = jsonpath_set_new();
		char err[200];

		cr_assert_eq(jsonpath_set_add(s, matches[i].path, 4, err, sizeof(err)), 0,
			     "%s: %s", matches[i].path, err);
		cr_expect_eq(run_match(s, matches[i].steps), matches[i].match,
			     "%s on %s", matches[i].path, matches[i].steps);
		jsonpath_set_free(s);
	}
}

Test(jsonpath, kinds_are_reported_per_path)
{
	struct jsonpath_set *s = jsonpath_set_new();
	struct jsonpath_state root[4], st[8];
	size_t n, m;

	cr_assert_eq(jsonpath_set_add(s, "$.a", 1, NULL, 0), 0);
	cr_assert_eq(jsonpath_set_add(s, "$..a", 2, NULL, 0), 0);
	cr_assert_eq(jsonpath_set_add(s, "$.b", 4, NULL, 0), 0);
	n = jsonpath_root(s, root);
	cr_assert_eq(n, 3);
	m = jsonpath_step(s, root, n, "a", 1, 0, st);
	cr_expect_eq(jsonpath_matched(s, st, m), 3);
	m = jsonpath_step(s, root, n, "b", 1, 0, st);
	cr_expect_eq(jsonpath_matched(s, st, m), 4);
	jsonpath_set_free(s);
}

Test(jsonpath, normalized_names)
{
	static const struct {
		const char *name;
		size_t len;
		const char *want;
	} t[] = {
		{ "name", 4, ".name" },
		{ "_x9", 3, "._x9" },
		{ "a b", 3, "['a b']" },
		{ "9a", 2, "['9a']" },
		{ "", 0, "['']" },
		{ "it's", 4, "['it\\'s']" },
		{ "back\\slash", 10, "['back\\\\slash']" },
		{ "a\nb\tc", 5, "['a\\nb\\tc']" },
		{ "a\0b", 3, "['a\\u0000b']" },
		{ "\x1f", 1, "['\\u001f']" },
		{ "\xc3\xa9", 2, "['\xc3\xa9']" },
		{ "a.b", 3, "['a.b']" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char buf[64] = "$";
		size_t len = 1;

		cr_expect(jsonpath_append_name(buf, sizeof(buf), &len, t[i].name, t[i].len));
		cr_expect_str_eq(buf + 1, t[i].want);
		cr_expect_eq(len, strlen(buf));
	}
}

/* Every normalized path pastes back as a rule selecting the same member. */
Test(jsonpath, normalized_names_round_trip)
{
	static const char *names[] = { "name", "a b", "it's", "back\\slash", "a\nb",
				       "\x01", "\xc3\xa9", "a]b['c", "\"q\"" };

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		struct jsonpath_set *s = jsonpath_set_new();
		char buf[128] = "$";
		size_t len = 1;
		struct jsonpath_state root[2], st[4];
		char err[200];
		size_t m;

		cr_assert(jsonpath_append_index(buf, sizeof(buf), &len, 12));
		cr_assert(jsonpath_append_name(buf, sizeof(buf), &len, names[i],
					       strlen(names[i])));
		cr_assert_eq(jsonpath_set_add(s, buf, 1, err, sizeof(err)), 0, "%s: %s", buf, err);
		m = jsonpath_step(s, root, jsonpath_root(s, root), NULL, 0, 12, st);
		m = jsonpath_step(s, st, m, names[i], strlen(names[i]), 0, root);
		cr_expect_eq(jsonpath_matched(s, root, m), 1, "%s", buf);
		jsonpath_set_free(s);
	}
}

Test(jsonpath, append_reports_overflow)
{
	char buf[8] = "$";
	size_t len = 1;

	cr_expect_not(jsonpath_append_name(buf, sizeof(buf), &len, "abcdefghij", 10));
	cr_expect_eq(len, 7);
	cr_expect_str_eq(buf, "$.abcde");
	cr_expect_eq(jsonpath_set_count(NULL), 0);
	jsonpath_set_free(NULL);
}

Test(jsonpath, too_many_paths)
{
	struct jsonpath_set *s = jsonpath_set_new();
	char err[100];

	for (int i = 0; i < JSONPATH_MAX_PATHS; i++)
		cr_assert_eq(jsonpath_set_add(s, "$.a", 1, NULL, 0), 0);
	cr_expect_eq(jsonpath_set_add(s, "$.a", 1, err, sizeof(err)), -E2BIG);
	jsonpath_set_free(s);
}
