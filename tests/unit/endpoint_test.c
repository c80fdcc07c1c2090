// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

static const struct {
	const char *method, *target, *want;
} autos[] = {
	{ "GET", "/users/17", "GET /users/{id}" },
	{ "GET", "/users/17?x=1&y=2", "GET /users/{id}" },
	{ "GET", "/users/17#frag", "GET /users/{id}" },
	{ "GET", "/users/17/", "GET /users/{id}/" },
	{ "GET", "/", "GET /" },
	{ "GET", "", "GET /" },
	{ "GET", "?q=1", "GET /" },
	{ "DELETE", "/orders/9/items/3", "DELETE /orders/{id}/items/{id}" },
	{ "GET", "/u/0b6f2a64-1c1e-4a5e-9a43-3b1c5d0e9f11/x",
	  "GET /u/{id}/x" },
	{ "GET", "/u/0B6F2A64-1C1E-4A5E-9A43-3B1C5D0E9F11", "GET /u/{id}" },
	/* Not quite a UUID: dash misplaced, 35 chars. */
	{ "GET", "/u/0b6f2a6-41c1e-4a5e-9a43-3b1c5d0e9f11", "GET /u/0b6f2a6-41c1e-4a5e-9a43-3b1c5d0e9f11" },
	{ "GET", "/blob/0123456789abcdef", "GET /blob/{id}" },
	{ "GET", "/blob/0123456789abcde", "GET /blob/0123456789abcde" },
	{ "GET", "/blob/deadbeefdeadbeefdeadbeefdeadbeef", "GET /blob/{id}" },
	{ "GET", "/v2/users", "GET /v2/users" },
	{ "GET", "/a//b", "GET /a//b" },
	{ "GET", "/12a", "GET /12a" },
	{ "GET", "http://example.com/users/5?x", "GET /users/{id}" },
	{ "GET", "http://example.com", "GET /" },
	{ "OPTIONS", "*", "OPTIONS *" },
	{ "CONNECT", "example.com:443", "CONNECT example.com:443" },
};

Test(endpoint, automatic_templates_table)
{
	for (size_t i = 0; i < sizeof(autos) / sizeof(autos[0]); i++) {
		char *n = endpoint_name(NULL, autos[i].method, autos[i].target);

		cr_assert(n);
		cr_expect_str_eq(n, autos[i].want, "target '%s'",
				 autos[i].target);
		free(n);
	}
}

Test(endpoint, explicit_patterns_win_first_match)
{
	struct endpoint_rules *r = endpoint_rules_new();
	char err[128];
	char *n;

	cr_assert(r);
	cr_assert_eq(endpoint_rules_add(r, "/orders/{order}/items/{item}",
					err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(endpoint_rules_add(r, "POST /users/{name}", err,
					sizeof(err)), 0, "%s", err);
	cr_assert_eq(endpoint_rules_add(r, "/static/{path...}", err,
					sizeof(err)), 0, "%s", err);
	cr_assert_eq(endpoint_rules_add(r, "/orders/{any}/items/{x}", err,
					sizeof(err)), 0, "%s", err);
	cr_expect_eq(endpoint_rules_count(r), 4);

	n = endpoint_name(r, "GET", "/orders/abc/items/7?z=1");
	cr_expect_str_eq(n, "GET /orders/{order}/items/{item}");
	free(n);
	n = endpoint_name(r, "POST", "/users/alice");
	cr_expect_str_eq(n, "POST /users/{name}");
	free(n);
	/* Method-restricted: GET falls back to the automatic rule. */
	n = endpoint_name(r, "GET", "/users/alice");
	cr_expect_str_eq(n, "GET /users/alice");
	free(n);
	n = endpoint_name(r, "GET", "/static/css/site.css");
	cr_expect_str_eq(n, "GET /static/{path...}");
	free(n);
	n = endpoint_name(r, "GET", "/static/");
	cr_expect_str_eq(n, "GET /static/", "rest needs one segment");
	free(n);
	/* Segment counts must match. */
	n = endpoint_name(r, "GET", "/orders/1/items/2/extra");
	cr_expect_str_eq(n, "GET /orders/{id}/items/{id}/extra");
	free(n);
	n = endpoint_name(r, "GET", "/orders/1/items");
	cr_expect_str_eq(n, "GET /orders/{id}/items");
	free(n);
	/* Empty segments do not match a placeholder. */
	n = endpoint_name(r, "GET", "/orders//items/2");
	cr_expect_str_eq(n, "GET /orders//items/{id}");
	free(n);
	endpoint_rules_free(r);
	endpoint_rules_free(NULL);
}

Test(endpoint, bad_patterns_rejected_with_reason)
{
	static const char *bad[] = {
		"orders/{id}", "/a/{}", "/a/x{id}", "/a/{id}x", "/a/{i d}",
		"/a/{rest...}/b", "get /a", " /a", "/a?x=1", "/a b",
	};
	struct endpoint_rules *r = endpoint_rules_new();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[128] = "";

		cr_expect_eq(endpoint_rules_add(r, bad[i], err, sizeof(err)),
			     -EINVAL, "'%s' accepted", bad[i]);
		cr_expect_neq(err[0], '\0', "no reason for '%s'", bad[i]);
	}
	cr_expect_eq(endpoint_rules_count(r), 0);
	endpoint_rules_free(r);
}

Test(endpoint, long_paths_are_cut)
{
	char *t = malloc(5000), *n;

	t[0] = '/';
	memset(t + 1, 'z', 4998);
	t[4999] = '\0';
	n = endpoint_name(NULL, "GET", t);
	cr_assert(n);
	cr_expect_eq(strlen(n), 4 + 512);
	free(n);
	free(t);
}

/* endpoint_write() stays within endpoint_name_max(): one-byte identifiers
 * (each grows to "{id}"), cut paths, and a long template named by a short
 * target. */
Test(endpoint, names_fit_endpoint_name_max)
{
	struct endpoint_rules *r = endpoint_rules_new();
	char t[700], pattern[420], out[2200], err[128];
	size_t n;

	cr_assert(r);
	for (size_t len = 0; len < sizeof(t); len += 7) {
		for (size_t i = 0; i < len; i++)
			t[i] = i % 2 ? '/' : '1';
		t[len] = '\0';
		n = endpoint_write(NULL, "GET", t, out);
		cr_assert_eq(n, strlen(out));
		cr_assert_leq(n + 1, endpoint_name_max(NULL, 3, len),
			      "target of %zu bytes", len);
	}
	memcpy(pattern, "/{", 2);
	memset(pattern + 2, 'p', 400);
	memcpy(pattern + 402, "}", 2);
	cr_assert_eq(endpoint_rules_add(r, pattern, err, sizeof(err)), 0,
		     "%s", err);
	n = endpoint_write(r, "GET", "/1", out);
	cr_expect_eq(n, 4 + strlen(pattern));
	cr_expect_eq(strncmp(out, "GET /{ppp", 9), 0, "%s", out);
	cr_assert_leq(n + 1, endpoint_name_max(r, 3, 2));
	endpoint_rules_free(r);
}
