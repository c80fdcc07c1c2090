// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "diff.h"
#include "message.h"
#include "divergence.h"

static void add_header(struct headers *h, const char *n, const char *v)
{
	cr_assert_eq(headers_add(h, n, strlen(n), v, strlen(v)), 0);
}

/* An exchange GET /users/7?x=1 -> 200 JSON, 1.5 ms. Caller cleans. */
static void make_exchange(struct exchange *x, struct http_response *cand)
{
	memset(x, 0, sizeof(*x));
	memset(cand, 0, sizeof(*cand));
	cr_assert_eq(exchange_set_line(x, "GET", 3, "/users/7?x=1", 12, NULL),
		     0);
	cr_assert_str_eq(x->endpoint, "GET /users/{id}");
	add_header(&x->req.headers, "Host", "api");
	add_header(&x->req.headers, "Authorization", "Bearer s3cr3t");
	cr_assert_eq(body_set(&x->req.body, "", 0), 0);
	x->resp.status = 200;
	add_header(&x->resp.headers, "Content-Type", "application/json");
	cr_assert_eq(body_set(&x->resp.decoded, "{\"name\":\"alice\"}", 16), 0);
	x->t_first_req_ns = 1000000000ull;
	x->t_last_resp_ns = 1001500000ull;
	cand->status = 200;
	add_header(&cand->headers, "Content-Type", "application/json");
	add_header(&cand->headers, "X-Api-Version", "2");
	cr_assert_eq(body_set(&cand->decoded, "{\"name\":\"bob\"}", 14), 0);
}

static json_t *part(bool diverged, const char *summary, const char *diffs)
{
	json_t *p = json_pack("{s b s s s o}", "diverged", diverged, "summary",
			      summary, "diffs", json_loads(diffs, 0, NULL));

	cr_assert_not_null(p);
	return p;
}

Test(record, shape_matches_design)
{
	struct exchange x;
	struct http_response cand;
	json_t *st = part(false, "", "[]");
	json_t *hd = part(true, "1 header differs: X-Api-Version",
			  "[{\"name\":\"X-Api-Version\",\"primary\":null,\"candidate\":\"2\"}]");
	json_t *bd = part(true, "1 field differs: $.name",
			  "[{\"path\":\"$.name\",\"kind\":\"changed\",\"primary\":\"alice\",\"candidate\":\"bob\"}]");
	json_t *rec = NULL, *req, *prim, *cnd, *h;

	make_exchange(&x, &cand);
	cr_assert_eq(divergence_build(&x, &cand, 3.25, st, hd, bd, &rec), 0);
	cr_assert_str_eq(json_string_value(json_object_get(rec, "endpoint")),
			 "GET /users/{id}");
	req = json_object_get(rec, "request");
	cr_assert_str_eq(json_string_value(json_object_get(req, "method")), "GET");
	cr_assert_str_eq(json_string_value(json_object_get(req, "target")), "/users/7?x=1");
	cr_assert_str_eq(json_string_value(json_object_get(req, "body")), "");
	h = json_object_get(req, "headers");
	cr_assert_eq(json_array_size(h), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_array_get(h, 1), 0)),
			 "Authorization");
	prim = json_object_get(rec, "primary");
	cr_assert_eq(json_integer_value(json_object_get(prim, "status")), 200);
	cr_assert_float_eq(json_real_value(json_object_get(prim, "latency_ms")), 1.5, 1e-9);
	cr_assert_str_eq(json_string_value(json_object_get(prim, "body")),
			 "{\"name\":\"alice\"}");
	cnd = json_object_get(rec, "candidate");
	cr_assert_float_eq(json_real_value(json_object_get(cnd, "latency_ms")), 3.25, 1e-9);
	cr_assert_str_eq(json_string_value(json_object_get(cnd, "body")),
			 "{\"name\":\"bob\"}");
	cr_assert_eq(json_array_size(json_object_get(cnd, "headers")), 2);
	cr_assert(json_is_false(json_object_get(json_object_get(rec, "status"), "diverged")));
	cr_assert(json_is_true(json_object_get(json_object_get(rec, "body"), "diverged")));
	cr_assert(json_equal(json_object_get(rec, "headers"), hd));
	cr_assert_null(json_object_get(prim, "body_base64"));
	cr_assert_null(json_object_get(prim, "body_truncated"));
	/* the record holds copies: changing it leaves the differ's objects alone */
	json_object_set_new(json_object_get(rec, "body"), "summary", json_string("x"));
	cr_assert_str_eq(json_string_value(json_object_get(bd, "summary")),
			 "1 field differs: $.name");
	json_decref(rec);
	json_decref(st);
	json_decref(hd);
	json_decref(bd);
	exchange_clean(&x);
	http_response_clean(&cand);
}

Test(record, binary_body_becomes_base64)
{
	static const uint8_t bin[] = { 0xff, 0x00, 0x41, 0xc3 };
	json_t *o = json_object();

	cr_assert_eq(divergence_set_body(o, bin, sizeof(bin), false), 0);
	cr_assert_null(json_object_get(o, "body"));
	cr_assert_str_eq(json_string_value(json_object_get(o, "body_base64")), "/wBBww==");
	json_decref(o);

	o = json_object();
	cr_assert_eq(divergence_set_body(o, "ab", 2, false), 0);
	cr_assert_str_eq(json_string_value(json_object_get(o, "body")), "ab");
	json_decref(o);
	/* every base64 tail length */
	o = json_object();
	cr_assert_eq(divergence_set_body(o, "\xff", 1, false), 0);
	cr_assert_str_eq(json_string_value(json_object_get(o, "body_base64")), "/w==");
	cr_assert_eq(divergence_set_body(o, "\xff\xfe\xfd", 3, false), 0);
	cr_assert_str_eq(json_string_value(json_object_get(o, "body_base64")), "//79");
	json_decref(o);
}

Test(record, long_body_cut_at_cap_on_a_character_boundary)
{
	size_t len = DIVERGENCE_BODY_MAX + 100;
	char *b = malloc(len);
	json_t *o = json_object();
	const char *s;

	/* "é" is two bytes; an odd first byte puts the cap inside one */
	b[0] = 'x';
	for (size_t i = 1; i + 1 < len; i += 2) {
		b[i] = (char)0xc3;
		b[i + 1] = (char)0xa9;
	}
	b[len - 1] = 'y';
	cr_assert_eq(divergence_set_body(o, b, len, false), 0);
	s = json_string_value(json_object_get(o, "body"));
	cr_assert_not_null(s, "a cut UTF-8 body must stay text");
	cr_assert_leq(strlen(s), DIVERGENCE_BODY_MAX);
	cr_assert_geq(strlen(s), DIVERGENCE_BODY_MAX - 3);
	cr_assert(json_is_true(json_object_get(o, "body_truncated")));
	json_decref(o);

	o = json_object();
	cr_assert_eq(divergence_set_body(o, "abc", 3, true), 0);
	cr_assert(json_is_true(json_object_get(o, "body_truncated")),
		  "a body the capture cut says so");
	json_decref(o);
	free(b);
}

Test(record, missing_candidate_and_parts)
{
	struct exchange x;
	struct http_response cand;
	json_t *rec = NULL;

	make_exchange(&x, &cand);
	x.t_last_resp_ns = 0; /* clock went wrong: never negative */
	cr_assert_eq(divergence_build(&x, NULL, -1, NULL, NULL, NULL, &rec), 0);
	cr_assert(json_is_null(json_object_get(rec, "candidate")));
	cr_assert(json_is_false(json_object_get(json_object_get(rec, "status"), "diverged")));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(rec, "body"),
							   "summary")), "");
	cr_assert_float_eq(json_real_value(json_object_get(json_object_get(rec, "primary"),
							   "latency_ms")), 0.0, 1e-12);
	cr_assert_eq(divergence_build(NULL, NULL, 0, NULL, NULL, NULL, &rec), -EINVAL);
	json_decref(rec);
	exchange_clean(&x);
	http_response_clean(&cand);
}

Test(record, redact_replaces_values_everywhere_they_appear)
{
	const char *names[] = { "authorization", "Set-Cookie", "X-Api-Key" };
	json_t *rec = json_loads(
		"{\"request\":{\"headers\":[[\"AUTHORIZATION\",\"Bearer t\"],[\"Host\",\"a\"]]},"
		" \"primary\":{\"headers\":[[\"set-cookie\",\"a=1\"],[\"Set-Cookie\",\"b=2\"]]},"
		" \"candidate\":{\"headers\":[[\"x-api-key\",\"k\"]]},"
		" \"headers\":{\"diverged\":true,\"diffs\":["
		"  {\"name\":\"Set-Cookie\",\"primary\":[\"a=1\",\"b=2\"],\"candidate\":\"c=3\"},"
		"  {\"name\":\"X-Api-Key\",\"primary\":null,\"candidate\":\"k\"},"
		"  {\"name\":\"Vary\",\"primary\":\"x\",\"candidate\":\"y\"}]}}", 0, NULL);
	char *text;

	cr_assert_not_null(rec);
	cr_assert_eq(divergence_redact(rec, names, 3), 7);
	text = json_dumps(rec, JSON_COMPACT);
	cr_assert_null(strstr(text, "Bearer t"));
	cr_assert_null(strstr(text, "a=1"));
	cr_assert_null(strstr(text, "c=3"));
	cr_assert_null(strstr(text, "\"k\""));
	cr_assert_not_null(strstr(text, "[\"Host\",\"a\"]"), "%s", text);
	cr_assert_not_null(strstr(text, "\"primary\":\"x\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"primary\":null"), "absent stays absent: %s", text);
	free(text);
	json_decref(rec);
}

/* A header value from the wire that is not valid UTF-8 reads the same in
 * the record's headers and in the header diff: the valid sequence kept,
 * the one bad byte U+FFFD. */
Test(record, invalid_utf8_header_reads_alike_in_headers_and_diff)
{
	struct http_response p, c;
	struct diff_result r;
	json_t *hs, *in_headers, *in_diff;

	memset(&p, 0, sizeof(p));
	memset(&c, 0, sizeof(c));
	p.status = c.status = 200;
	add_header(&p.headers, "X-Name", "caf\xc3\xa9\xff");
	add_header(&c.headers, "X-Name", "cafe");
	cr_assert_eq(diff_responses(NULL, &p, &c, NULL, NULL, &r), 0);
	hs = divergence_headers(&p.headers);
	cr_assert_not_null(hs);
	in_headers = json_array_get(json_array_get(hs, 0), 1);
	in_diff = json_object_get(json_array_get(r.headers.diffs, 0), "primary");
	cr_assert_str_eq(json_string_value(in_headers), "caf\xc3\xa9\xef\xbf\xbd");
	cr_assert(json_equal(in_headers, in_diff), "diff has '%s'",
		  json_string_value(in_diff));
	json_decref(hs);
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&c);
}
