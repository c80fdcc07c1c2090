// SPDX-License-Identifier: BSD-2-Clause
/*
 * The metrics table and its text: the endpoint rule of endpoint.h, the
 * candidate error classes, and the ADDR:PORT of --metrics. Nothing here
 * listens on a socket.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "endpoint.h"
#include "metrics.h"
#include "replay.h"

/* Lines of text that start with prefix. */
static size_t lines_starting(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);
	const char *l = text;

	while (l && *l) {
		if (!strncmp(l, prefix, len))
			n++;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return n;
}

/* The value of the metrics line that starts with key, or -1. */
static long long value_of(const char *text, const char *key)
{
	const char *at = strstr(text, key);

	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

Test(metrics, endpoints_past_the_cap_are_counted_as_other)
{
	enum { N = ENDPOINT_MAX_COUNTED + 100 };
	struct metrics *m = metrics_new();
	char ep[32], key[96], *text;
	long long kept = 0;

	cr_assert_not_null(m);
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "GET /e%d", i);
		metrics_count(m, ep, STORE_CAPTURED, 2);
	}
	/* One already kept stays apart after the cap is reached. */
	metrics_count(m, "GET /e0", STORE_CAPTURED, 1);
	text = metrics_render(m);
	cr_assert_not_null(text);
	for (int i = 0; i < N; i++) {
		long long v;

		snprintf(key, sizeof(key),
			 "request_shadow_captured_total{endpoint=\"GET /e%d\"} ", i);
		v = value_of(text, key);
		if (i < ENDPOINT_MAX_COUNTED && v != (i ? 2 : 3))
			cr_assert_fail("GET /e%d: %lld", i, v);
		if (i >= ENDPOINT_MAX_COUNTED && v != -1)
			cr_assert_fail("GET /e%d has a line of its own", i);
		kept += v > 0 ? v : 0;
	}
	cr_expect_eq(kept, 2 * ENDPOINT_MAX_COUNTED + 1);
	cr_expect_eq(value_of(text, "request_shadow_captured_total{endpoint=\""
			      ENDPOINT_OTHER "\"} "), 2 * 100);
	/* Every kept endpoint and the overflow, one line each. */
	cr_expect_eq(lines_starting(text, "request_shadow_captured_total{"),
		     ENDPOINT_MAX_COUNTED + 1);
	/* A counter nothing overflowed into has no overflow line. */
	cr_expect_eq(value_of(text, "request_shadow_shed_total{endpoint=\""
			      ENDPOINT_OTHER "\"} "), -1);
	free(text);
	metrics_free(m);
}

Test(metrics, no_endpoint_is_none_and_labels_are_escaped)
{
	struct metrics *m = metrics_new();
	char *text;

	cr_assert_not_null(m);
	metrics_count(m, NULL, STORE_SHED, 1);
	metrics_count(m, "", STORE_SHED, 2);
	metrics_count(m, "GET /a\"b\\c\nd", STORE_SHED, 4);
	metrics_count(m, "GET /a", STORE_N_COUNTERS, 8); /* no such counter */
	text = metrics_render(m);
	cr_assert_not_null(text);
	cr_expect_eq(value_of(text, "request_shadow_shed_total{endpoint=\""
			      ENDPOINT_NONE "\"} "), 3);
	cr_expect_eq(value_of(text, "request_shadow_shed_total{endpoint="
			      "\"GET /a\\\"b\\\\c\\nd\"} "), 4);
	cr_expect_null(strstr(text, "endpoint=\"GET /a\"}"));
	free(text);
	metrics_free(m);
	metrics_free(NULL);
}

Test(metrics, candidate_errors_by_class_in_replay_order)
{
	struct metrics *m = metrics_new();
	char key[128], *text, *prev = NULL;

	cr_assert_not_null(m);
	metrics_candidate_error(m, "timeout");
	metrics_candidate_error(m, "timeout");
	metrics_candidate_error(m, "no such class");
	metrics_candidate_error(m, NULL);
	text = metrics_render(m);
	cr_assert_not_null(text);
	for (int k = 0; k < REPLAY_N_ERROR_CLASSES; k++) {
		const char *name = replay_error_name(REPLAY_ERR_CLASS_FIRST + k);
		char *at;

		snprintf(key, sizeof(key), "request_shadow_candidate_errors_by_"
			 "class_total{class=\"%s\"} ", name);
		at = strstr(text, key);
		cr_assert_not_null(at, "no line for %s", name);
		cr_expect(!prev || at > prev, "%s out of order", name);
		prev = at;
		cr_expect_eq(value_of(text, key),
			     !strcmp(name, "timeout") ? 2 :
			     !strcmp(name, "other") ? 2 : 0, "%s", name);
	}
	free(text);
	metrics_free(m);
}

struct addr_case {
	const char *in;
	int family; /* 0: refused */
	const char *host;
	unsigned port;
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:9464", AF_INET, "127.0.0.1", 9464 },
	{ "0.0.0.0:1", AF_INET, "0.0.0.0", 1 },
	{ ":9090", AF_INET, "0.0.0.0", 9090 },
	{ "[::1]:9090", AF_INET6, "::1", 9090 },
	{ "[::]:65535", AF_INET6, "::", 65535 },
	{ "[fe80::1:2]:80", AF_INET6, "fe80::1:2", 80 },
	{ "127.0.0.1", 0, NULL, 0 }, /* no port */
	{ "127.0.0.1:", 0, NULL, 0 },
	{ "127.0.0.1:0", 0, NULL, 0 },
	{ "127.0.0.1:65536", 0, NULL, 0 },
	{ "127.0.0.1:-1", 0, NULL, 0 },
	{ "127.0.0.1:80x", 0, NULL, 0 },
	{ "localhost:80", 0, NULL, 0 }, /* no names: an address of this host */
	{ "256.0.0.1:80", 0, NULL, 0 },
	{ "::1:9090", 0, NULL, 0 }, /* IPv6 without brackets */
	{ "[::1:9090", 0, NULL, 0 },
	{ "[]:9090", 0, NULL, 0 },
	{ "[127.0.0.1]:80", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ ":", 0, NULL, 0 },
};

Test(metrics, parse_addr_table)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(*addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct sockaddr_storage sa;
		char host[INET6_ADDRSTRLEN] = "";
		unsigned port = 0;
		int rc = metrics_parse_addr(c->in, &sa);

		if (!c->family) {
			cr_expect_eq(rc, -EINVAL, "'%s' accepted", c->in);
			continue;
		}
		cr_assert_eq(rc, 0, "'%s' refused", c->in);
		cr_expect_eq(sa.ss_family, c->family, "'%s'", c->in);
		if (sa.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)&sa;

			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else {
			const struct sockaddr_in6 *a = (const void *)&sa;

			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
		cr_expect_str_eq(host, c->host, "'%s'", c->in);
		cr_expect_eq(port, c->port, "'%s'", c->in);
	}
}

/* A longer host than any address is refused, not cut. */
Test(metrics, parse_addr_refuses_an_overlong_host)
{
	struct sockaddr_storage sa;
	char in[300];

	memset(in, '1', 200);
	strcpy(in + 200, ":80");
	cr_expect_eq(metrics_parse_addr(in, &sa), -EINVAL);
}

Test(metrics, serve_refuses_a_bad_address_with_a_reason)
{
	struct metrics *m = metrics_new();
	char err[256] = "";

	cr_assert_not_null(m);
	cr_expect_eq(metrics_serve(m, "localhost", err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "--metrics localhost: expected ADDR:PORT, e.g. "
			 "127.0.0.1:9464");
	metrics_free(m);
}
