// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>
#include <string.h>

#include "endpoint.h"
#include "message.h"

Test(message, request_line_and_endpoint_in_one_allocation)
{
	struct exchange *x = exchange_new();
	struct endpoint_rules *r = endpoint_rules_new();
	char err[128];

	cr_assert(x && r);
	cr_assert_eq(endpoint_rules_add(r, "/orders/{order}", err, sizeof(err)),
		     0, "%s", err);
	/* Lengths given, not NUL-terminated: a request line as read. */
	cr_assert_eq(exchange_set_line(x, "GET /orders/9?x=1 HTTP/1.1", 3,
				       "/orders/9?x=1 HTTP/1.1", 13, r), 0);
	cr_expect_str_eq(x->req.method, "GET");
	cr_expect_str_eq(x->req.target, "/orders/9?x=1");
	cr_expect_str_eq(x->endpoint, "GET /orders/{order}");
	cr_expect(x->req.method >= x->names &&
		  x->endpoint < x->names + x->names_size);
	/* A NUL ends a string as strndup() would have. */
	cr_assert_eq(exchange_set_line(x, "HEAD", 4, "/users/7\0/x", 11, NULL),
		     0);
	cr_expect_str_eq(x->req.target, "/users/7");
	cr_expect_str_eq(x->endpoint, "HEAD /users/{id}");
	exchange_free(x);
	endpoint_rules_free(r);
}

Test(message, reset_keeps_the_names_memory_and_nothing_else)
{
	struct exchange *x = exchange_new();
	char *names;

	cr_assert(x);
	cr_assert_eq(exchange_set_line(x, "GET", 3, "/a/long/enough/target", 21,
				       NULL), 0);
	cr_assert_eq(headers_add(&x->req.headers, "Host", 4, "a", 1), 0);
	cr_assert_eq(body_set(&x->resp.raw, "body", 4), 0);
	x->resp.status = 200;
	x->req.flags = MESSAGE_HEAD_UNCOPIED;
	names = x->names;
	exchange_reset(x);
	cr_expect_eq(x->names, names);
	cr_expect_null(x->req.method);
	cr_expect_null(x->endpoint);
	cr_expect_eq(x->req.headers.n, 0);
	cr_expect_null(x->resp.raw.data);
	cr_expect_eq(x->resp.status, 0);
	cr_expect_eq(x->req.flags, 0);
	/* A shorter line reuses the memory; a longer one gets more. */
	cr_assert_eq(exchange_set_line(x, "GET", 3, "/b", 2, NULL), 0);
	cr_expect_eq(x->names, names);
	cr_expect_str_eq(x->endpoint, "GET /b");
	cr_assert_eq(exchange_set_line(x, "GET", 3, "/c/much/longer/than/before"
				       "/by/far/and/then/some/more", 52, NULL),
		     0);
	cr_expect_str_eq(x->endpoint,
			 "GET /c/much/longer/than/before/by/far/and/then/some/more");
	exchange_free(x);
}

Test(message, header_name_and_value_are_copied)
{
	struct headers h = { 0 };
	char name[] = "X-A", value[] = "v1 ";

	cr_assert_eq(headers_add(&h, name, 3, value, 2), 0);
	name[0] = value[0] = '?';
	cr_expect_str_eq(h.v[0].name, "X-A");
	cr_expect_str_eq(h.v[0].value, "v1");
	cr_expect_str_eq(headers_get(&h, "x-a"), "v1");
	headers_clean(&h);
	cr_expect_null(h.v);
	headers_clean(&h);
}
