// SPDX-License-Identifier: BSD-2-Clause
/*
 * Structural JSON diff: table-driven cases (documents, rules, the records
 * expected as "kind path|kind path"), parser edge cases, and every prefix
 * of every fixture.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_diff.h"
#include "jsonpath.h"

struct jcase {
	const char *name;
	const char *a, *b;
	const char *ignore[4];
	const char *unordered[4];
	double tol;
	const char *want; /* "" for no difference */
};

static const struct jcase cases[] = {
	/* structure */
	{ "equal_objects", "{\"a\":1}", "{\"a\":1}", .want = "" },
	{ "key_order_ignored", "{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1}", .want = "" },
	{ "whitespace_ignored", "{ \"a\" : [ 1 , 2 ] }\n", "{\"a\":[1,2]}", .want = "" },
	{ "changed_string", "{\"name\":\"alice\"}", "{\"name\":\"bob\"}", .want = "changed $.name" },
	{ "added_member", "{}", "{\"x\":1}", .want = "added $.x" },
	{ "removed_member", "{\"x\":1}", "{}", .want = "removed $.x" },
	{ "type_number_string", "{\"x\":1}", "{\"x\":\"1\"}", .want = "type $.x" },
	{ "bool_changed", "{\"x\":true}", "{\"x\":false}", .want = "changed $.x" },
	{ "null_vs_false_is_type", "{\"x\":null}", "{\"x\":false}", .want = "type $.x" },
	{ "nested_change", "{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{\"c\":2}}}", .want = "changed $.a.b.c" },
	{ "array_element_member",
	  "{\"items\":[{\"price\":1},{\"price\":2},{\"price\":3}]}",
	  "{\"items\":[{\"price\":1},{\"price\":2},{\"price\":4}]}",
	  .want = "changed $.items[2].price" },
	{ "array_longer", "[1,2]", "[1,2,3]", .want = "added $[2]" },
	{ "array_shorter", "[1,2,3]", "[1]", .want = "removed $[1]|removed $[2]" },
	{ "array_order_matters", "[1,2]", "[2,1]", .want = "changed $[0]|changed $[1]" },
	{ "root_scalar", "1", "2", .want = "changed $" },
	{ "root_type", "{}", "[]", .want = "type $" },
	{ "diffs_in_primary_order", "{\"z\":1,\"a\":1,\"m\":1}", "{\"m\":2,\"a\":2,\"z\":2}",
	  .want = "changed $.z|changed $.a|changed $.m" },
	{ "several_kinds", "{\"name\":\"a\",\"items\":[1,2,3],\"tags\":[]}",
	  "{\"name\":\"b\",\"items\":[1,2,4],\"tags\":{}}",
	  .want = "changed $.name|changed $.items[2]|type $.tags" },
	/* numbers */
	{ "int_vs_real", "1", "1.0", .want = "" },
	{ "exponent_vs_int", "1e2", "100", .want = "" },
	{ "exponent_sign_case", "100", "1E+2", .want = "" },
	{ "negative_zero", "-0", "0.0", .want = "" },
	{ "fraction_exponent", "0.5", "5e-1", .want = "" },
	{ "trailing_zeros", "1.50", "1.5", .want = "" },
	{ "small_exponents", "0.00012", "1.2e-4", .want = "" },
	{ "beyond_2_53_exact", "9007199254740993", "9007199254740992", .want = "changed $" },
	{ "huge_ints_differ", "123456789012345678901234567890", "123456789012345678901234567891",
	  .want = "changed $" },
	{ "huge_int_spellings", "123456789012345678901234567890",
	  "1.2345678901234567890123456789e29", .want = "" },
	{ "sign_matters", "-1", "1", .want = "changed $" },
	{ "same_double_different_decimal", "0.1", "0.10000000000000001", .want = "changed $" },
	{ "huge_exponent_spellings", "1e400", "10e399", .want = "" },
	{ "overflowing_doubles_exact_only", "1e400", "2e400", .tol = 0.9, .want = "changed $" },
	{ "tolerance_inside", "1.0", "1.0000001", .tol = 1e-6, .want = "" },
	{ "tolerance_outside", "100", "100.1", .tol = 1e-4, .want = "changed $" },
	{ "tolerance_boundary_inclusive", "1", "2", .tol = 0.5, .want = "" },
	{ "tolerance_just_under_boundary", "1", "2", .tol = 0.49, .want = "changed $" },
	{ "tolerance_not_for_strings", "\"1.0\"", "\"1.00\"", .tol = 0.5, .want = "changed $" },
	{ "tolerance_relative_near_zero", "0", "1e-300", .tol = 0.1, .want = "changed $" },
	/* strings and unicode */
	{ "unicode_escape_vs_literal", "\"\\u00e9\"", "\"\xc3\xa9\"", .want = "" },
	{ "surrogate_pair_vs_literal", "\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"", .want = "" },
	{ "escaped_slash", "\"a\\/b\"", "\"a/b\"", .want = "" },
	{ "nul_escape_differs", "\"a\\u0000b\"", "\"a\\u0000c\"", .want = "changed $" },
	{ "nul_escape_not_terminator", "\"a\\u0000b\"", "\"a\"", .want = "changed $" },
	{ "nul_escape_equal", "{\"k\":\"a\\u0000\"}", "{\"k\":\"a\\u0000\"}", .want = "" },
	{ "escaped_key_matches", "{\"\\u0061\":1}", "{\"a\":1}", .want = "" },
	{ "key_with_space_bracketed", "{\"a b\":1}", "{\"a b\":2}", .want = "changed $['a b']" },
	{ "key_with_quote_escaped", "{\"it's\":1}", "{\"it's\":2}", .want = "changed $['it\\'s']" },
	{ "key_with_digit_first", "{\"1a\":1}", "{\"1a\":2}", .want = "changed $['1a']" },
	{ "key_non_ascii", "{\"\xc3\xa9\":1}", "{\"\xc3\xa9\":2}", .want = "changed $['\xc3\xa9']" },
	{ "key_with_newline", "{\"a\\nb\":1}", "{\"a\\nb\":2}", .want = "changed $['a\\nb']" },
	{ "empty_key", "{\"\":1}", "{\"\":2}", .want = "changed $['']" },
	/* duplicate keys: the last wins */
	{ "dup_last_wins_equal", "{\"a\":1,\"a\":2}", "{\"a\":2}", .want = "" },
	{ "dup_last_wins_differs", "{\"a\":2,\"a\":1}", "{\"a\":2}", .want = "changed $.a" },
	{ "dup_first_values_hidden", "{\"a\":1,\"a\":3}", "{\"a\":2,\"a\":3}", .want = "" },
	{ "dup_in_candidate", "{\"a\":3}", "{\"a\":1,\"b\":0,\"a\":3}", .want = "added $.b" },
	/* --ignore-json forms */
	{ "ignore_dot_path", "{\"a\":{\"b\":1,\"c\":1}}", "{\"a\":{\"b\":2,\"c\":1}}",
	  .ignore = { "$.a.b" }, .want = "" },
	{ "ignore_dot_path_sibling_kept", "{\"a\":{\"b\":1,\"c\":1}}", "{\"a\":{\"b\":2,\"c\":2}}",
	  .ignore = { "$.a.b" }, .want = "changed $.a.c" },
	{ "ignore_bracket_name", "{\"a b\":1,\"c\":1}", "{\"a b\":2,\"c\":1}",
	  .ignore = { "$['a b']" }, .want = "" },
	{ "ignore_wildcard_index",
	  "{\"items\":[{\"id\":1,\"n\":\"x\"},{\"id\":2,\"n\":\"y\"}]}",
	  "{\"items\":[{\"id\":7,\"n\":\"x\"},{\"id\":8,\"n\":\"z\"}]}",
	  .ignore = { "$.items[*].id" }, .want = "changed $.items[1].n" },
	{ "ignore_descendant",
	  "{\"updated_at\":1,\"a\":{\"updated_at\":2,\"b\":[{\"updated_at\":3}]}}",
	  "{\"updated_at\":9,\"a\":{\"updated_at\":8,\"b\":[{\"updated_at\":7}]}}",
	  .ignore = { "$..updated_at" }, .want = "" },
	{ "ignore_index", "{\"a\":[1,2]}", "{\"a\":[5,6]}", .ignore = { "$.a[0]" },
	  .want = "changed $.a[1]" },
	{ "ignore_added_member", "{}", "{\"ts\":1}", .ignore = { "$.ts" }, .want = "" },
	{ "ignore_removed_element", "[1,2,3]", "[1,2]", .ignore = { "$[2]" }, .want = "" },
	{ "ignore_root", "{\"a\":1}", "[2]", .ignore = { "$" }, .want = "" },
	{ "ignore_union", "{\"a\":1,\"b\":1,\"c\":1}", "{\"a\":2,\"b\":2,\"c\":2}",
	  .ignore = { "$['a','b']" }, .want = "changed $.c" },
	{ "ignore_member_wildcard", "{\"m\":{\"x\":1,\"y\":2},\"k\":1}",
	  "{\"m\":{\"x\":3,\"y\":4},\"k\":2}", .ignore = { "$.m.*" }, .want = "changed $.k" },
	{ "ignore_two_rules", "{\"a\":1,\"b\":1,\"c\":1}", "{\"a\":2,\"b\":2,\"c\":1}",
	  .ignore = { "$.a", "$.b" }, .want = "" },
	{ "ignore_not_prefix_name", "{\"ab\":1}", "{\"ab\":2}", .ignore = { "$.a" },
	  .want = "changed $.ab" },
	/* --unordered */
	{ "unordered_permutation", "{\"tags\":[\"a\",\"b\",\"c\"]}", "{\"tags\":[\"c\",\"a\",\"b\"]}",
	  .unordered = { "$.tags" }, .want = "" },
	{ "unordered_repeats_equal", "{\"t\":[1,1,2]}", "{\"t\":[1,2,1]}",
	  .unordered = { "$.t" }, .want = "" },
	{ "unordered_repeats_differ", "{\"t\":[1,1,2]}", "{\"t\":[1,2,2]}",
	  .unordered = { "$.t" }, .want = "removed $.t[1]|added $.t[2]" },
	{ "unordered_count_matters", "{\"t\":[1,1]}", "{\"t\":[1]}",
	  .unordered = { "$.t" }, .want = "removed $.t[1]" },
	{ "unordered_with_ignored_member",
	  "{\"items\":[{\"id\":1,\"ts\":5},{\"id\":2,\"ts\":6}]}",
	  "{\"items\":[{\"id\":2,\"ts\":9},{\"id\":1,\"ts\":0}]}",
	  .ignore = { "$.items[*].ts" }, .unordered = { "$.items" }, .want = "" },
	{ "unordered_number_spellings", "[1, 2.0]", "[2, 1e0]", .unordered = { "$" }, .want = "" },
	{ "unordered_tolerance", "[1.0, 2.0]", "[2.0000001, 1]", .unordered = { "$" },
	  .tol = 1e-6, .want = "" },
	{ "unordered_object_key_order", "[{\"a\":1,\"b\":2},{\"c\":3}]", "[{\"c\":3},{\"b\":2,\"a\":1}]",
	  .unordered = { "$" }, .want = "" },
	{ "unordered_descendant", "{\"x\":{\"tags\":[1,2]},\"tags\":[3,4]}",
	  "{\"x\":{\"tags\":[2,1]},\"tags\":[4,3]}", .unordered = { "$..tags" }, .want = "" },
	{ "unordered_only_where_asked", "{\"u\":[1,2],\"o\":[1,2]}", "{\"u\":[2,1],\"o\":[2,1]}",
	  .unordered = { "$.u" }, .want = "changed $.o[0]|changed $.o[1]" },
	{ "unordered_nested_multisets", "[[1,2],[3,4]]", "[[4,3],[2,1]]",
	  .unordered = { "$", "$[*]" }, .want = "" },
	{ "unordered_index_does_not_select", "{\"t\":[1,2]}", "{\"t\":[2,3]}",
	  .ignore = { "$.t[0]" }, .unordered = { "$.t" }, .want = "removed $.t[0]|added $.t[1]" },
	{ "unordered_dup_keys_in_elements", "[{\"a\":1,\"a\":2}]", "[{\"a\":2}]",
	  .unordered = { "$" }, .want = "" },
};

static void format_diffs(const json_t *diffs, char *out, size_t cap)
{
	size_t i, len = 0;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(diffs, i, v) {
		len += (size_t)snprintf(out + len, cap - len, "%s%s %s",
					i ? "|" : "",
					json_string_value(json_object_get(v, "kind")),
					json_string_value(json_object_get(v, "path")));
		cr_assert_lt(len, cap);
	}
}

static struct jsonpath_set *rules_for(const struct jcase *c)
{
	struct jsonpath_set *s = jsonpath_set_new();
	char err[200];

	cr_assert_not_null(s);
	for (int i = 0; i < 4 && c->ignore[i]; i++)
		cr_assert_eq(jsonpath_set_add(s, c->ignore[i], JSON_DIFF_IGNORE,
					      err, sizeof(err)), 0, "%s: %s",
			     c->ignore[i], err);
	for (int i = 0; i < 4 && c->unordered[i]; i++)
		cr_assert_eq(jsonpath_set_add(s, c->unordered[i],
					      JSON_DIFF_UNORDERED, err,
					      sizeof(err)), 0, "%s: %s",
			     c->unordered[i], err);
	return s;
}

/* Runs a diff; returns the records (new reference) and the total. */
static json_t *run(const char *a, size_t alen, const char *b, size_t blen,
		   const struct jsonpath_set *paths, double tol, size_t *total)
{
	struct json_doc *da, *db;
	char err[160];
	json_t *diffs = json_array();
	struct json_diff_opts o = { .paths = paths, .tolerance = tol,
				    .max_diffs = 1000, .value_cap = 256 };

	cr_assert_eq(json_doc_parse(a, alen, &da, err, sizeof(err)), JSON_DOC_OK,
		     "primary: %s", err);
	cr_assert_eq(json_doc_parse(b, blen, &db, err, sizeof(err)), JSON_DOC_OK,
		     "candidate: %s", err);
	cr_assert_eq(json_diff(&o, da, db, diffs, total), 0);
	json_doc_free(da);
	json_doc_free(db);
	return diffs;
}

Test(json_diff, table_cases)
{
	char got[1024];

	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		const struct jcase *c = &cases[k];
		struct jsonpath_set *s = rules_for(c);
		size_t total;
		json_t *d = run(c->a, strlen(c->a), c->b, strlen(c->b), s,
				c->tol, &total);

		format_diffs(d, got, sizeof(got));
		cr_expect_str_eq(got, c->want, "case %s: got '%s' want '%s'",
				 c->name, got, c->want);
		cr_expect_eq(total, json_array_size(d), "case %s: total", c->name);
		/* Symmetry of "equal": swapping sides finds nothing either. */
		if (!c->want[0]) {
			json_t *r = run(c->b, strlen(c->b), c->a, strlen(c->a),
					s, c->tol, &total);

			cr_expect_eq(total, 0, "case %s swapped", c->name);
			json_decref(r);
		}
		json_decref(d);
		jsonpath_set_free(s);
	}
}

_Static_assert(sizeof(cases) / sizeof(*cases) >= 60,
	       "the JSON diff table holds at least 60 cases");

Test(json_diff, record_values)
{
	size_t total;
	const char *a = "{\"name\":\"alice\",\"n\":9007199254740993,\"f\":0.1,\"x\":1}";
	const char *b = "{\"name\":\"bob\",\"n\":123456789012345678901234567890,"
			"\"f\":1e-1,\"y\":[1]}";
	json_t *d = run(a, strlen(a), b, strlen(b), NULL, 0, &total);
	json_t *want = json_loads(
		"[{\"path\":\"$.name\",\"kind\":\"changed\",\"primary\":\"alice\",\"candidate\":\"bob\"},"
		" {\"path\":\"$.n\",\"kind\":\"changed\",\"primary\":9007199254740993,"
		"  \"candidate\":\"123456789012345678901234567890\"},"
		" {\"path\":\"$.x\",\"kind\":\"removed\",\"primary\":1,\"candidate\":null},"
		" {\"path\":\"$.y\",\"kind\":\"added\",\"primary\":null,\"candidate\":[1]}]",
		0, NULL);

	cr_assert_not_null(want);
	if (!json_equal(d, want)) {
		char *got = json_dumps(d, 0);

		cr_expect_fail("got %s", got);
		free(got);
	}
	json_decref(d);
	json_decref(want);
}

Test(json_diff, record_value_with_nul_and_object)
{
	const char *a = "{\"s\":\"a\\u0000b\",\"o\":{\"k\":[true,null],\"k2\":\"\\u00e9\"}}";
	const char *b = "{\"s\":\"a\",\"o\":{\"k\":[true,null],\"k2\":\"e\"}}";
	size_t total, len;
	json_t *d = run(a, strlen(a), b, strlen(b), NULL, 0, &total);
	json_t *s;

	cr_assert_eq(total, 2);
	s = json_object_get(json_array_get(d, 0), "primary");
	len = json_string_length(s);
	cr_expect_eq(len, 3);
	cr_expect_eq(memcmp(json_string_value(s), "a\0b", 3), 0);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 1), "primary")),
			 "\xc3\xa9");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 1), "path")),
			 "$.o.k2");
	json_decref(d);
}

Test(json_diff, long_values_are_cut)
{
	char *a = malloc(5000), *b = malloc(5000);
	size_t total, n;
	json_t *d, *r;

	n = (size_t)sprintf(a, "{\"v\":[");
	for (int i = 0; i < 500; i++)
		n += (size_t)sprintf(a + n, "%s%d", i ? ", " : "", i);
	strcpy(a + n, "]}");
	strcpy(b, "{\"v\":\"short\"}");
	d = run(a, strlen(a), b, strlen(b), NULL, 0, &total);
	cr_assert_eq(total, 1);
	r = json_array_get(d, 0);
	cr_expect_str_eq(json_string_value(json_object_get(r, "kind")), "type");
	cr_expect(json_is_true(json_object_get(r, "primary_truncated")));
	cr_expect_eq(json_string_length(json_object_get(r, "primary")), 256);
	/* blanks are squeezed out of the cut text */
	cr_expect_eq(strncmp(json_string_value(json_object_get(r, "primary")),
			     "[0,1,2,3,", 9), 0);
	cr_expect_str_eq(json_string_value(json_object_get(r, "candidate")), "short");
	cr_expect_null(json_object_get(r, "candidate_truncated"));
	json_decref(d);
	free(a);
	free(b);
}

Test(json_diff, pretty_value_that_compacts_under_the_cap_is_whole)
{
	char a[600];
	size_t total;
	json_t *d;

	/* 300 bytes of text, 100 without the blanks */
	snprintf(a, sizeof(a), "{\"v\":[%*s1,%*s2]}", 150, "", 150, "");
	d = run(a, strlen(a), "{\"v\":0}", 7, NULL, 0, &total);
	cr_assert_eq(total, 1);
	json_t *want = json_pack("[i,i]", 1, 2);

	cr_expect(json_equal(json_object_get(json_array_get(d, 0), "primary"), want));
	json_decref(want);
	json_decref(d);
}

Test(json_diff, long_array_one_change)
{
	size_t cap = 10000 * 8 + 16, na = 0, nb = 0, total;
	char *a = malloc(cap), *b = malloc(cap);
	json_t *d;

	a[na++] = '[';
	b[nb++] = '[';
	for (int i = 0; i < 10000; i++) {
		na += (size_t)sprintf(a + na, "%s%d", i ? "," : "", i);
		nb += (size_t)sprintf(b + nb, "%s%d", i ? "," : "", i == 5000 ? -1 : i);
	}
	a[na++] = ']';
	b[nb++] = ']';
	d = run(a, na, b, nb, NULL, 0, &total);
	cr_expect_eq(total, 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "path")),
			 "$[5000]");
	json_decref(d);
	free(a);
	free(b);
}

Test(json_diff, long_unordered_array_reversed)
{
	size_t cap = 20000 * 24 + 16, na = 0, nb = 0, total;
	char *a = malloc(cap), *b = malloc(cap);
	struct jsonpath_set *s = jsonpath_set_new();
	json_t *d;

	cr_assert_eq(jsonpath_set_add(s, "$", JSON_DIFF_UNORDERED, NULL, 0), 0);
	a[na++] = '[';
	b[nb++] = '[';
	for (int i = 0; i < 20000; i++) {
		na += (size_t)sprintf(a + na, "%s{\"id\":%d}", i ? "," : "", i % 1000);
		nb += (size_t)sprintf(b + nb, "%s{\"id\":%d}", i ? "," : "",
				      (19999 - i) % 1000);
	}
	a[na++] = ']';
	b[nb++] = ']';
	d = run(a, na, b, nb, s, 0, &total);
	cr_expect_eq(total, 0);
	json_decref(d);
	jsonpath_set_free(s);
	free(a);
	free(b);
}

Test(json_diff, max_diffs_caps_records_not_total)
{
	struct json_doc *da, *db;
	json_t *diffs = json_array();
	struct json_diff_opts o = { .max_diffs = 3, .value_cap = 256 };
	size_t total;

	cr_assert_eq(json_doc_parse("[1,2,3,4,5]", 11, &da, NULL, 0), JSON_DOC_OK);
	cr_assert_eq(json_doc_parse("[]", 2, &db, NULL, 0), JSON_DOC_OK);
	cr_assert_eq(json_diff(&o, da, db, diffs, &total), 0);
	cr_expect_eq(total, 5);
	cr_expect_eq(json_array_size(diffs), 3);
	json_decref(diffs);
	json_doc_free(da);
	json_doc_free(db);
}

/* ---- the parser --------------------------------------------------- */

static char *nested(size_t depth)
{
	char *s = malloc(2 * depth + 2);

	for (size_t i = 0; i < depth; i++) {
		s[i] = '[';
		s[2 * depth - 1 - i] = ']';
	}
	s[2 * depth] = '\0';
	return s;
}

Test(json_doc, nesting_at_the_limit_parses)
{
	char *s = nested(JSON_DIFF_MAX_DEPTH);
	struct json_doc *d;
	size_t total;
	json_t *r;

	cr_assert_eq(json_doc_parse(s, strlen(s), &d, NULL, 0), JSON_DOC_OK);
	json_doc_free(d);
	/* a difference at the bottom is found with its full path */
	char *t = strdup(s);

	t[JSON_DIFF_MAX_DEPTH - 1] = '1';
	t[JSON_DIFF_MAX_DEPTH] = ' ';
	r = run(s, strlen(s), t, strlen(t), NULL, 0, &total);
	cr_expect_eq(total, 1);
	cr_expect_eq(strlen(json_string_value(json_object_get(json_array_get(r, 0), "path"))),
		     1 + 3 * (JSON_DIFF_MAX_DEPTH - 1));
	json_decref(r);
	free(t);
	free(s);
}

Test(json_doc, nesting_over_the_limit_is_invalid)
{
	size_t depths[] = { JSON_DIFF_MAX_DEPTH + 1, 100000 };

	for (size_t i = 0; i < 2; i++) {
		char *s = nested(depths[i]);
		struct json_doc *d = (void *)1;
		char err[160];

		cr_expect_eq(json_doc_parse(s, strlen(s), &d, err, sizeof(err)),
			     JSON_DOC_INVALID);
		cr_expect_null(d);
		cr_expect(strstr(err, "nesting deeper than") != NULL, "%s", err);
		free(s);
	}
}

struct bad {
	const char *name;
	const char *text;
	size_t len; /* 0: strlen */
	const char *err;
};

static const struct bad bads[] = {
	{ "empty", "", 0, "unexpected end, expected a JSON value at byte 0" },
	{ "blank", "  ", 0, "unexpected end, expected a JSON value at byte 2" },
	{ "trailing_comma", "[1,]", 0, "unexpected character ']', expected a JSON value at byte 3" },
	{ "trailing_data", "1 2", 0, "trailing data after the JSON value at byte 2" },
	{ "leading_zero", "01", 0, "trailing data after the JSON value at byte 1" },
	{ "bare_word", "nul", 0, "unexpected character 'n', expected a JSON value at byte 0" },
	{ "unterminated_string", "\"abc", 0, "unterminated string at byte 4" },
	{ "raw_nul_in_string", "\"a\0b\"", 5, "control character in string at byte 2" },
	{ "raw_newline_in_string", "\"a\nb\"", 0, "control character in string at byte 2" },
	{ "invalid_utf8", "\"a\xff\"", 0, "invalid UTF-8 at byte 2" },
	{ "overlong_utf8", "\"\xc0\xaf\"", 0, "invalid UTF-8 at byte 1" },
	{ "utf8_surrogate", "\"\xed\xa0\x80\"", 0, "invalid UTF-8 at byte 1" },
	{ "lone_high_surrogate", "\"\\ud800\"", 0, "lone surrogate in \\u escape at byte 1" },
	{ "lone_low_surrogate", "\"\\udc00x\"", 0, "lone surrogate in \\u escape at byte 1" },
	{ "bad_escape", "\"\\x\"", 0, "invalid escape at byte 2" },
	{ "bad_hex", "\"\\u12g4\"", 0, "invalid \\u escape at byte 1" },
	{ "missing_colon", "{\"a\" 1}", 0, "unexpected character '1', expected ':' at byte 5" },
	{ "unquoted_key", "{a:1}", 0, "unexpected character 'a', expected a member name at byte 1" },
	{ "bom", "\xef\xbb\xbf{}", 0, "unexpected byte 0xef, expected a JSON value at byte 0" },
	{ "dot_without_digit", "1.", 0, "unexpected end, expected digit after '.' at byte 2" },
	{ "exponent_without_digit", "1e+", 0, "unexpected end, expected digit in exponent at byte 3" },
	{ "nan", "NaN", 0, "unexpected character 'N', expected a JSON value at byte 0" },
	{ "unclosed_array", "[1", 0, "unexpected end, expected ',' or ']' at byte 2" },
};

Test(json_doc, invalid_documents_say_where)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(*bads); i++) {
		const struct bad *b = &bads[i];
		struct json_doc *d;
		char err[160];
		size_t len = b->len ? b->len : strlen(b->text);

		cr_expect_eq(json_doc_parse(b->text, len, &d, err, sizeof(err)),
			     JSON_DOC_INVALID, "%s", b->name);
		cr_expect_str_eq(err, b->err, "%s: got '%s'", b->name, err);
	}
}

/* The parser works on whole buffers; the analogue of splitting at every
 * byte is that every prefix of a fixture is handled (accepted only when
 * it is itself a document, like "12" of "123") and never read past. */
Test(json_doc, every_prefix_of_every_fixture)
{
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		const char *texts[2] = { cases[k].a, cases[k].b };

		for (int t = 0; t < 2; t++) {
			size_t n = strlen(texts[t]);

			for (size_t cut = 0; cut <= n; cut++) {
				/* an exact-size heap copy: ASan sees overreads */
				char *p = malloc(cut ? cut : 1);
				struct json_doc *d;
				char err[160];
				enum json_doc_result r;

				memcpy(p, texts[t], cut);
				r = json_doc_parse(p, cut, &d, err, sizeof(err));
				if (cut == n)
					cr_expect_eq(r, JSON_DOC_OK, "%s", cases[k].name);
				else if (r == JSON_DOC_INVALID)
					cr_expect(strstr(err, " at byte ") != NULL);
				else
					cr_expect_eq(r, JSON_DOC_OK);
				json_doc_free(d);
				free(p);
			}
		}
	}
}

Test(json_doc, prefix_that_is_a_document)
{
	struct json_doc *d;

	cr_expect_eq(json_doc_parse("12", 2, &d, NULL, 0), JSON_DOC_OK);
	json_doc_free(d);
	cr_expect_eq(json_doc_parse("{\"a\":1", 6, &d, NULL, 0), JSON_DOC_INVALID);
	cr_expect_eq(json_doc_nodes(NULL), 0);
	json_doc_free(NULL);
}

Test(json_doc, node_count)
{
	struct json_doc *d;

	cr_assert_eq(json_doc_parse("{\"a\":[1,2,{\"b\":null}]}", 22, &d, NULL, 0),
		     JSON_DOC_OK);
	/* obj, key a, arr, 1, 2, obj, key b, null */
	cr_expect_eq(json_doc_nodes(d), 8);
	json_doc_free(d);
}
