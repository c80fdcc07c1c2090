// SPDX-License-Identifier: BSD-2-Clause
/* The differ: status, headers, body by media type, rules, noise pairs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "message.h"

/* headers: "Name: value\n..." */
static void resp_init(struct http_response *r, int status, const char *headers,
		      const char *body, size_t body_len, unsigned flags)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
	r->flags = flags;
	for (const char *h = headers; h && *h;) {
		const char *nl = strchr(h, '\n'), *colon = strchr(h, ':');
		size_t end = nl ? (size_t)(nl - h) : strlen(h);
		const char *v = colon + 1;

		while (*v == ' ')
			v++;
		cr_assert(colon && (size_t)(colon - h) < end);
		cr_assert_eq(headers_add(&r->headers, h, (size_t)(colon - h), v,
					 end - (size_t)(v - h)), 0);
		h += end + (nl ? 1 : 0);
	}
	if (body) {
		cr_assert_eq(body_set(&r->decoded, body, body_len), 0);
		cr_assert_eq(body_set(&r->raw, body, body_len), 0);
	}
}

static void resp(struct http_response *r, int status, const char *headers,
		 const char *body)
{
	resp_init(r, status, headers, body, body ? strlen(body) : 0, 0);
}

static void expect_json(const json_t *got, const char *want)
{
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
	char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);

	cr_assert_not_null(w, "bad expectation %s", want);
	cr_expect(json_equal(got, w), "got %s want %s", g, want);
	free(g);
	json_decref(w);
}

/* ---- table: one response pair, the expected part ------------------ */

struct dcase {
	const char *name;
	int ps, cs;
	const char *ph, *ch; /* headers */
	const char *pb, *cb; /* bodies */
	const char *part;    /* "status", "headers" or "body" */
	bool diverged;
	const char *summary;
	const char *diffs; /* JSON, NULL: not checked */
};

#define JSON_CT "Content-Type: application/json\n"

static const struct dcase dcases[] = {
	{ "status_equal", 200, 200, .part = "status", .summary = "", .diffs = "[]" },
	{ "status_differs", 200, 500, .part = "status", .diverged = true,
	  .summary = "status 200 -> 500", .diffs = "[{\"primary\":200,\"candidate\":500}]" },
	{ "header_names_case_insensitive", 200, 200, "Content-Type: a\nX-A: 1",
	  "content-type: a\nx-a: 1", .part = "headers", .summary = "", .diffs = "[]" },
	{ "header_value_differs", 200, 200, "X-Api-Version: 1", "X-Api-Version: 2",
	  .part = "headers", .diverged = true, .summary = "1 header differs: X-Api-Version",
	  .diffs = "[{\"name\":\"X-Api-Version\",\"primary\":\"1\",\"candidate\":\"2\"}]" },
	{ "header_added", 200, 200, "", "X-New: y", .part = "headers", .diverged = true,
	  .summary = "1 header differs: X-New",
	  .diffs = "[{\"name\":\"X-New\",\"primary\":null,\"candidate\":\"y\"}]" },
	{ "header_removed", 200, 200, "X-Old: y", "", .part = "headers", .diverged = true,
	  .summary = "1 header differs: X-Old",
	  .diffs = "[{\"name\":\"X-Old\",\"primary\":\"y\",\"candidate\":null}]" },
	{ "repeated_header_order_matters", 200, 200, "Vary: a\nVary: b", "vary: b\nVary: a",
	  .part = "headers", .diverged = true, .summary = "1 header differs: Vary",
	  .diffs = "[{\"name\":\"Vary\",\"primary\":[\"a\",\"b\"],\"candidate\":[\"b\",\"a\"]}]" },
	{ "repeated_header_count_matters", 200, 200, "Vary: a\nVary: a", "Vary: a",
	  .part = "headers", .diverged = true, .summary = "1 header differs: Vary",
	  .diffs = "[{\"name\":\"Vary\",\"primary\":[\"a\",\"a\"],\"candidate\":\"a\"}]" },
	{ "repeated_header_equal_interleaved", 200, 200, "Vary: a\nX: 1\nVary: b",
	  "Vary: a\nVary: b\nX: 1", .part = "headers", .summary = "", .diffs = "[]" },
	{ "default_ignored_headers", 200, 200,
	  "Date: Mon\nConnection: close\nKeep-Alive: 5\nTransfer-Encoding: chunked\n"
	  "Content-Length: 10\nContent-Encoding: gzip",
	  "date: Tue\nKeep-Alive: 9\nContent-Length: 12\nCONTENT-ENCODING: br",
	  .part = "headers", .summary = "", .diffs = "[]" },
	{ "two_headers_in_primary_order", 200, 200, "Cache-Control: a\nX-Api-Version: 1",
	  "X-Api-Version: 2\nCache-Control: b", .part = "headers", .diverged = true,
	  .summary = "2 headers differ: Cache-Control, X-Api-Version" },
	{ "header_summary_capped", 200, 200, "A: 1\nB: 1\nC: 1\nD: 1\nE: 1\nF: 1\nG: 1",
	  "A: 2\nB: 2\nC: 2\nD: 2\nE: 2\nF: 2\nG: 2", .part = "headers", .diverged = true,
	  .summary = "7 headers differ: A, B, C, D, E and 2 more" },
	{ "header_invalid_utf8_shown_replaced", 200, 200, "X: a\xff", "X: b", .part = "headers",
	  .diverged = true, .summary = "1 header differs: X",
	  .diffs = "[{\"name\":\"X\",\"primary\":\"a\\ufffd\",\"candidate\":\"b\"}]" },
	/* body by media type */
	{ "json_key_order", 200, 200, JSON_CT, JSON_CT, "{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}",
	  .part = "body", .summary = "", .diffs = "[]" },
	{ "json_with_charset", 200, 200, "Content-Type: application/json; charset=utf-8", "",
	  "{\"a\":1,\"b\":2}", "{\"b\":2, \"a\":1}", .part = "body", .summary = "" },
	{ "json_plus_suffix", 200, 200, "Content-Type: application/problem+json", "",
	  "{\"a\":1}", "{ \"a\" : 1 }", .part = "body", .summary = "" },
	{ "json_type_upper_case", 200, 200, "Content-Type: Application/JSON", "",
	  "[1]", "[ 1 ]", .part = "body", .summary = "" },
	{ "json_from_candidate_content_type", 200, 200, "", JSON_CT, "{\"a\":1}", "{\"a\": 1}",
	  .part = "body", .summary = "" },
	{ "primary_content_type_wins", 200, 200, "Content-Type: text/plain", JSON_CT,
	  "{\"a\":1}", "{\"a\": 1}", .part = "body", .diverged = true,
	  .summary = "text differs from line 1" },
	{ "not_json_type_is_text", 200, 200, "Content-Type: application/jsonx", "",
	  "{\"a\":1}", "{\"a\": 1}", .part = "body", .diverged = true,
	  .summary = "text differs from line 1" },
	{ "json_fields_summary", 200, 200, JSON_CT, JSON_CT,
	  "{\"name\":\"a\",\"items\":[0,1,{\"price\":1}],\"tags\":[]}",
	  "{\"name\":\"b\",\"items\":[0,1,{\"price\":2}],\"tags\":{}}", .part = "body",
	  .diverged = true, .summary = "3 fields differ: $.name, $.items[2].price, $.tags" },
	{ "json_one_field", 200, 200, JSON_CT, JSON_CT, "{\"name\":\"alice\"}",
	  "{\"name\":\"bob\"}", .part = "body", .diverged = true,
	  .summary = "1 field differs: $.name",
	  .diffs = "[{\"path\":\"$.name\",\"kind\":\"changed\",\"primary\":\"alice\","
		   "\"candidate\":\"bob\"}]" },
	{ "json_summary_capped", 200, 200, JSON_CT, JSON_CT, "[1,2,3,4,5,6,7,8]", "[]",
	  .part = "body", .diverged = true,
	  .summary = "8 fields differ: $[0], $[1], $[2], $[3], $[4] and 3 more" },
	{ "invalid_json_primary", 200, 200, JSON_CT, JSON_CT, "oops", "{\"a\":1}",
	  .part = "body", .diverged = true,
	  .summary = "primary body is not valid JSON (unexpected character 'o', expected a "
		     "JSON value at byte 0); text differs from line 1" },
	{ "invalid_json_candidate", 200, 200, JSON_CT, JSON_CT, "{\"a\":1}\n", "{\"a\":1,}\n",
	  .part = "body", .diverged = true,
	  .summary = "candidate body is not valid JSON (unexpected character '}', expected a "
		     "member name at byte 7); text differs from line 1" },
	{ "invalid_json_both_equal", 200, 200, JSON_CT, JSON_CT, "{oops", "{oops",
	  .part = "body", .summary = "", .diffs = "[]" },
	{ "invalid_json_both_differ", 200, 200, JSON_CT, JSON_CT, "{", "[", .part = "body",
	  .diverged = true,
	  .summary = "neither body is valid JSON (primary: unexpected end, expected a member "
		     "name at byte 1; candidate: unexpected end, expected a JSON value at "
		     "byte 1); text differs from line 1" },
	{ "empty_json_body_vs_json", 200, 200, JSON_CT, JSON_CT, "", "{}", .part = "body",
	  .diverged = true,
	  .summary = "primary body is not valid JSON (unexpected end, expected a JSON value "
		     "at byte 0); text differs from line 1" },
	{ "both_empty", 200, 204, JSON_CT, "", "", "", .part = "body", .summary = "" },
	{ "text_line_with_context", 200, 200, "Content-Type: text/plain", "",
	  "a\nb\nc\nd\n", "a\nb\nX\nY\n", .part = "body", .diverged = true,
	  .summary = "text differs from line 3",
	  .diffs = "[{\"path\":\"body\",\"kind\":\"changed\",\"line\":3,\"primary\":\"c\","
		   "\"candidate\":\"X\",\"context_before\":\"b\",\"primary_next\":\"d\","
		   "\"candidate_next\":\"Y\"}]" },
	{ "text_first_line", 200, 200, "Content-Type: text/html", "", "<p>a</p>", "<p>b</p>",
	  .part = "body", .diverged = true, .summary = "text differs from line 1",
	  .diffs = "[{\"path\":\"body\",\"kind\":\"changed\",\"line\":1,\"primary\":\"<p>a</p>\","
		   "\"candidate\":\"<p>b</p>\",\"context_before\":null,\"primary_next\":null,"
		   "\"candidate_next\":null}]" },
	{ "text_extra_line", 200, 200, "", "", "a", "a\nb", .part = "body", .diverged = true,
	  .summary = "text differs from line 2",
	  .diffs = "[{\"path\":\"body\",\"kind\":\"changed\",\"line\":2,\"primary\":null,"
		   "\"candidate\":\"b\",\"context_before\":\"a\",\"primary_next\":null,"
		   "\"candidate_next\":null}]" },
	{ "text_crlf_matters", 200, 200, "", "", "a\r\nb", "a\nb", .part = "body",
	  .diverged = true, .summary = "text differs from line 1" },
	{ "utf8_without_type_is_text", 200, 200, "Content-Type: application/octet-stream", "",
	  "h\xc3\xa9llo", "hello", .part = "body", .diverged = true,
	  .summary = "text differs from line 1" },
	{ "invalid_utf8_is_bytes", 200, 200, "Content-Type: text/plain", "", "ab\xff",
	  "ab\xfe", .part = "body", .diverged = true,
	  .summary = "bytes differ from offset 2 (primary 3 bytes, candidate 3 bytes)",
	  .diffs = "[{\"path\":\"body\",\"kind\":\"changed\",\"offset\":2,\"primary_length\":3,"
		   "\"candidate_length\":3}]" },
	{ "bytes_prefix", 200, 200, "", "", "\xff\xfe", "\xff\xfe\xfd", .part = "body",
	  .diverged = true,
	  .summary = "bytes differ from offset 2 (primary 2 bytes, candidate 3 bytes)" },
};

static const struct diff_part *part_of(const struct diff_result *r, const char *name)
{
	if (!strcmp(name, "status"))
		return &r->status;
	if (!strcmp(name, "headers"))
		return &r->headers;
	return &r->body;
}

Test(diff, table_cases)
{
	for (size_t i = 0; i < sizeof(dcases) / sizeof(*dcases); i++) {
		const struct dcase *c = &dcases[i];
		struct http_response p, q;
		struct diff_result r;
		const struct diff_part *part;

		resp(&p, c->ps, c->ph, c->pb);
		resp(&q, c->cs, c->ch, c->cb);
		cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
		part = part_of(&r, c->part);
		cr_expect_eq(part->diverged, c->diverged, "%s: diverged", c->name);
		cr_expect_str_eq(part->summary, c->summary, "%s: got '%s'", c->name,
				 part->summary);
		if (c->diffs)
			expect_json(part->diffs, c->diffs);
		cr_expect_eq(json_array_size(part->diffs) > 0, c->diverged, "%s", c->name);
		diff_result_clean(&r);
		http_response_clean(&p);
		http_response_clean(&q);
	}
}

Test(diff, identical_responses_never_diverge)
{
	struct http_response p, q;
	struct diff_result r;

	resp(&p, 200, JSON_CT "X-A: 1\nVary: a\nVary: b", "{\"a\":[1,2,{\"b\":null}]}");
	resp(&q, 200, JSON_CT "X-A: 1\nVary: a\nVary: b", "{\"a\":[1,2,{\"b\":null}]}");
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect_not(r.diverged);
	cr_expect_not(r.status.diverged || r.headers.diverged || r.body.diverged);
	cr_expect_eq(json_array_size(r.noise_paths), 0);
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
}

Test(diff, truncated_and_unavailable_bodies_are_not_compared)
{
	static const struct {
		unsigned pf, cf;
		const char *summary;
	} t[] = {
		{ MESSAGE_TRUNCATED, 0, "not compared: body over --max-body" },
		{ 0, MESSAGE_TRUNCATED, "not compared: body over --max-body" },
		{ MESSAGE_BODY_UNAVAILABLE, 0, "not compared: body not captured" },
	};

	for (size_t i = 0; i < 3; i++) {
		struct http_response p, q;
		struct diff_result r;

		resp_init(&p, 200, JSON_CT, "{\"a\":1", 6, t[i].pf);
		resp_init(&q, 200, JSON_CT, "{\"a\":2", 6, t[i].cf);
		cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
		cr_expect_not(r.body.diverged);
		cr_expect_not(r.diverged);
		cr_expect_str_eq(r.body.summary, t[i].summary);
		cr_expect_eq(json_array_size(r.body.diffs), 0);
		diff_result_clean(&r);
		http_response_clean(&p);
		http_response_clean(&q);
	}
}

Test(diff, deep_nesting_is_compared_as_text)
{
	size_t depth = 100000;
	char *a = malloc(2 * depth + 1), *b;
	struct http_response p, q;
	struct diff_result r;

	memset(a, '[', depth);
	memset(a + depth, ']', depth);
	a[2 * depth] = '\0';
	b = strdup(a);
	b[depth] = '1';
	resp_init(&p, 200, JSON_CT, a, 2 * depth, 0);
	resp_init(&q, 200, JSON_CT, b, 2 * depth, 0);
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect(r.body.diverged);
	cr_expect_str_eq(r.body.summary,
			 "neither body is valid JSON (primary: nesting deeper than 1024 at byte "
			 "1024; candidate: nesting deeper than 1024 at byte 1024); text differs "
			 "from line 1");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
	free(a);
	free(b);
}

Test(diff, nul_bytes_in_json_strings)
{
	static const char a[] = "{\"s\":\"x\\u0000y\"}";
	static const char b[] = "{\"s\":\"x\\u0000z\"}";
	struct http_response p, q;
	struct diff_result r;

	resp(&p, 200, JSON_CT, a);
	resp(&q, 200, JSON_CT, b);
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect_str_eq(r.body.summary, "1 field differs: $.s");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
	/* a raw NUL is not JSON: the bodies are compared as bytes */
	resp_init(&p, 200, JSON_CT, "\"a\0b\"", 5, 0);
	resp_init(&q, 200, JSON_CT, "\"a\0c\"", 5, 0);
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect_str_eq(r.body.summary,
			 "neither body is valid JSON (primary: control character in string at "
			 "byte 2; candidate: control character in string at byte 2); bytes "
			 "differ from offset 3 (primary 5 bytes, candidate 5 bytes)");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
}

Test(diff, record_cap_keeps_total_in_summary)
{
	char a[8192], *p0 = a;
	struct http_response p, q;
	struct diff_result r;

	p0 += sprintf(p0, "[");
	for (int i = 0; i < 500; i++)
		p0 += sprintf(p0, "%s%d", i ? "," : "", i);
	sprintf(p0, "]");
	resp(&p, 200, JSON_CT, a);
	resp(&q, 200, JSON_CT, "[]");
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect_eq(json_array_size(r.body.diffs), DIFF_MAX_REPORTED);
	cr_expect_str_eq(r.body.summary,
			 "500 fields differ: $[0], $[1], $[2], $[3], $[4] and 495 more");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
}

/* ---- rules -------------------------------------------------------- */

Test(diff_rules, ignore_header_any_case)
{
	struct diff_rules *rules = diff_rules_new();
	struct http_response p, q;
	struct diff_result r;

	cr_assert_eq(diff_rules_ignore_header(rules, "x-request-id"), 0);
	cr_expect_eq(diff_rules_ignore_header(rules, ""), -EINVAL);
	resp(&p, 200, "X-Request-Id: 1\nX-B: 1", NULL);
	resp(&q, 200, "X-REQUEST-ID: 2\nX-B: 2", NULL);
	cr_assert_eq(diff_responses(rules, &p, &q, NULL, NULL, &r), 0);
	cr_expect_str_eq(r.headers.summary, "1 header differs: X-B");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
	diff_rules_free(rules);
	diff_rules_free(NULL);
}

Test(diff_rules, json_rules_apply)
{
	struct diff_rules *rules = diff_rules_new();
	struct http_response p, q;
	struct diff_result r;
	char err[200];

	cr_assert_eq(diff_rules_ignore_json(rules, "$..updated_at", err, sizeof(err)), 0);
	cr_assert_eq(diff_rules_unordered(rules, "$.tags", err, sizeof(err)), 0);
	cr_assert_eq(diff_rules_float_tolerance(rules, 0.01), 0);
	resp(&p, 200, JSON_CT,
	     "{\"updated_at\":1,\"tags\":[\"a\",\"b\"],\"price\":100,\"x\":{\"updated_at\":3}}");
	resp(&q, 200, JSON_CT,
	     "{\"updated_at\":2,\"tags\":[\"b\",\"a\"],\"price\":100.5,\"x\":{\"updated_at\":4}}");
	cr_assert_eq(diff_responses(rules, &p, &q, NULL, NULL, &r), 0);
	cr_expect_not(r.diverged, "%s", r.body.summary);
	diff_result_clean(&r);
	/* and without the rules all four show */
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect_str_eq(r.body.summary,
			 "5 fields differ: $.updated_at, $.tags[0], $.tags[1], $.price, "
			 "$.x.updated_at");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
	diff_rules_free(rules);
}

Test(diff_rules, bad_paths_are_rejected_with_the_column)
{
	struct diff_rules *rules = diff_rules_new();
	char err[200];

	cr_expect_eq(diff_rules_ignore_json(rules, "$.a[", err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "bad --ignore-json '$.a[': expected index, quoted name or '*' "
			      "at column 5");
	cr_expect_eq(diff_rules_unordered(rules, "$.a[?@.x]", err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "bad --unordered '$.a[?@.x]': filter expressions are not "
			      "supported at column 5");
	diff_rules_free(rules);
}

Test(diff_rules, tolerance_must_be_finite_and_not_negative)
{
	struct diff_rules *rules = diff_rules_new();

	cr_expect_eq(diff_rules_float_tolerance(rules, -0.1), -EINVAL);
	cr_expect_eq(diff_rules_float_tolerance(rules, NAN), -EINVAL);
	cr_expect_eq(diff_rules_float_tolerance(rules, INFINITY), -EINVAL);
	cr_expect_eq(diff_rules_float_tolerance(rules, 0), 0);
	cr_expect_eq(diff_rules_float_tolerance(rules, 1e-9), 0);
	diff_rules_free(rules);
}

/* ---- noise -------------------------------------------------------- */

struct ncase {
	const char *name;
	const char *pb, *cb, *ab, *bb; /* bodies: primary, candidate, noise a, b */
	const char *ph, *chh, *ah, *bh; /* extra headers */
	int ps, cs, as, bs;
	bool diverged;
	const char *noise_paths;
	const char *body_summary;
};

static const struct ncase ncases[] = {
	{ "timestamp_is_noise", "{\"ts\":1,\"a\":1}", "{\"ts\":2,\"a\":1}",
	  "{\"ts\":3,\"a\":1}", "{\"ts\":4,\"a\":1}", .diverged = false,
	  .noise_paths = "[\"$.ts\"]", .body_summary = "" },
	{ "noise_does_not_hide_real_change", "{\"ts\":1,\"a\":1}", "{\"ts\":2,\"a\":2}",
	  "{\"ts\":3,\"a\":1}", "{\"ts\":4,\"a\":1}", .diverged = true,
	  .noise_paths = "[\"$.ts\"]", .body_summary = "1 field differs: $.a" },
	{ "noise_covers_paths_below", "{\"meta\":{\"id\":1}}", "{\"meta\":{\"id\":2}}",
	  "{\"meta\":{\"id\":1}}", "{\"meta\":null}", .diverged = false,
	  .noise_paths = "[\"$.meta.id\"]", .body_summary = "" },
	{ "noise_below_does_not_cover_above", "{\"meta\":{\"id\":1}}", "{\"meta\":null}",
	  "{\"meta\":{\"id\":1}}", "{\"meta\":{\"id\":2}}", .diverged = true,
	  .noise_paths = "[]", .body_summary = "1 field differs: $.meta" },
	{ "noise_name_prefix_is_not_parent", "{\"a\":1,\"ab\":1}", "{\"a\":1,\"ab\":2}",
	  "{\"a\":1}", "{\"a\":2}", .diverged = true, .noise_paths = "[]",
	  .body_summary = "1 field differs: $.ab" },
	{ "quiet_noise_pair", "{\"a\":1}", "{\"a\":2}", "{\"a\":1}", "{\"a\":1}",
	  .diverged = true, .noise_paths = "[]", .body_summary = "1 field differs: $.a" },
	{ "noise_header", "{}", "{}", "{}", "{}", "X-Req: 1\nX-V: 1", "x-req: 2\nX-V: 2",
	  "X-Req: 3", "X-Req: 4", .diverged = true, .noise_paths = "[\"X-Req\"]",
	  .body_summary = "" },
	{ "noise_status", "{}", "{}", "{}", "{}", .ps = 200, .cs = 503, .as = 200, .bs = 503,
	  .diverged = false, .noise_paths = "[\"status\"]", .body_summary = "" },
	{ "noise_text_body", "t=1", "t=2", "t=3", "t=4", "Content-Type: text/plain",
	  "Content-Type: text/plain", "Content-Type: text/plain", "Content-Type: text/plain",
	  .diverged = false, .noise_paths = "[\"body\"]", .body_summary = "" },
	{ "noise_everything", "{\"a\":1,\"b\":[1]}", "{\"a\":2,\"b\":[2]}", "[1]", "{}",
	  .diverged = false, .noise_paths = "[\"$.a\",\"$.b[0]\"]", .body_summary = "" },
};

Test(diff_noise, pair_suppresses_volatile_paths)
{
	for (size_t i = 0; i < sizeof(ncases) / sizeof(*ncases); i++) {
		const struct ncase *c = &ncases[i];
		struct http_response p, q, a, b;
		struct diff_result r;
		char h[4][200];
		const char *extra[4] = { c->ph, c->chh, c->ah, c->bh };

		for (int k = 0; k < 4; k++)
			snprintf(h[k], sizeof(h[k]), "%s%s",
				 extra[k] && strstr(extra[k], "Content-Type") ? "" : JSON_CT,
				 extra[k] ? extra[k] : "");
		resp(&p, c->ps ? c->ps : 200, h[0], c->pb);
		resp(&q, c->cs ? c->cs : 200, h[1], c->cb);
		resp(&a, c->as ? c->as : 200, h[2], c->ab);
		resp(&b, c->bs ? c->bs : 200, h[3], c->bb);
		cr_assert_eq(diff_responses(NULL, &p, &q, &a, &b, &r), 0);
		cr_expect_eq(r.diverged, c->diverged, "%s", c->name);
		expect_json(r.noise_paths, c->noise_paths);
		cr_expect_eq(r.noise_suppressed, json_array_size(r.noise_paths), "%s", c->name);
		cr_expect_str_eq(r.body.summary, c->body_summary, "%s: got '%s'", c->name,
				 r.body.summary);
		diff_result_clean(&r);
		/* without the pair nothing is suppressed */
		cr_assert_eq(diff_responses(NULL, &p, &q, &a, NULL, &r), 0);
		cr_expect_eq(r.noise_suppressed, 0);
		diff_result_clean(&r);
		http_response_clean(&p);
		http_response_clean(&q);
		http_response_clean(&a);
		http_response_clean(&b);
	}
}

Test(diff_noise, headers_part_after_noise)
{
	struct http_response p, q, a, b;
	struct diff_result r;

	resp(&p, 200, "X-Req: 1\nX-V: 1", NULL);
	resp(&q, 200, "X-Req: 2\nX-V: 2", NULL);
	resp(&a, 200, "X-Req: 3", NULL);
	resp(&b, 200, "X-Req: 4", NULL);
	cr_assert_eq(diff_responses(NULL, &p, &q, &a, &b, &r), 0);
	cr_expect_str_eq(r.headers.summary, "1 header differs: X-V");
	expect_json(r.headers.diffs, "[{\"name\":\"X-V\",\"primary\":\"1\",\"candidate\":\"2\"}]");
	expect_json(r.noise_paths, "[\"X-Req\"]");
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&q);
	http_response_clean(&a);
	http_response_clean(&b);
}

struct rcase {
	uint64_t raw, noise, samples;
	double rel, abs;
	bool want;
};

static const struct rcase rcases[] = {
	{ 10, 0, 100, 0.2, 0.0003, true },
	{ 10, 10, 100, 0.2, 0.0003, false },	/* raw not above noise */
	{ 9, 10, 100, 0.2, 0.0003, false },
	{ 11, 10, 100, 0.2, 0.0003, false },	/* 1/21 under rel */
	{ 20, 10, 100, 0.2, 0.0003, true },	/* 10/30, 10/100 */
	{ 6, 4, 100, 0.2, 0.0003, false },	/* 2/10 == rel: not above */
	{ 7, 4, 100, 0.2, 0.0003, true },
	{ 3, 0, 100000, 0.2, 0.0003, false },	/* 3e-5 under abs */
	{ 40, 0, 100000, 0.2, 0.0003, true },	/* 4e-4 */
	{ 0, 0, 0, 0.2, 0.0003, false },
	{ 5, 0, 0, 0.2, 0.0003, false },	/* no samples: no verdict */
	{ 1, 0, 1, 0, 0, true },
};

Test(diff_noise, diffy_reporting_rule)
{
	for (size_t i = 0; i < sizeof(rcases) / sizeof(*rcases); i++) {
		const struct rcase *c = &rcases[i];

		cr_expect_eq(diff_noise_report(c->raw, c->noise, c->samples, c->rel, c->abs),
			     c->want, "case %zu", i);
	}
}

Test(diff, part_json_shape)
{
	struct http_response p, q;
	struct diff_result r;
	json_t *j;

	resp(&p, 200, "X-Api-Version: 1", NULL);
	resp(&q, 500, "X-Api-Version: 2", NULL);
	cr_assert_eq(diff_responses(NULL, &p, &q, NULL, NULL, &r), 0);
	cr_expect(r.diverged);
	j = diff_part_json(&r.headers);
	expect_json(j, "{\"diverged\":true,\"summary\":\"1 header differs: X-Api-Version\","
		       "\"diffs\":[{\"name\":\"X-Api-Version\",\"primary\":\"1\","
		       "\"candidate\":\"2\"}]}");
	json_decref(j);
	j = diff_part_json(&r.body);
	expect_json(j, "{\"diverged\":false,\"summary\":\"\",\"diffs\":[]}");
	json_decref(j);
	diff_result_clean(&r);
	diff_result_clean(&r); /* a clean result cleans again */
	http_response_clean(&p);
	http_response_clean(&q);
}

/* The tables' size is known when this file is compiled: the compiler
 * checks it, no test run needed. */
_Static_assert(sizeof(dcases) / sizeof(*dcases) + sizeof(ncases) / sizeof(*ncases) +
		       sizeof(rcases) / sizeof(*rcases) >= 50,
	       "the diff tables hold at least 50 cases");
