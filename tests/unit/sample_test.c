// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "message.h"
#include "sample.h"

/* Computed with an independent (pure Python, from the xxHash spec) XXH64. */
static const struct {
	const char *key;
	uint64_t h;
	double v;
} vectors[] = {
	{ "", 0xda9d46c4cc8a32e8ull, 0.8539623480287808 },
	{ "alice", 0x92b1565778760cb8ull, 0.5730184520293379 },
	{ "GET /", 0xeeb2777ee6d8387cull, 0.9324106869524663 },
	{ "user-42", 0x4a68082dc1452c7bull, 0.29064990155281534 },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0x8972768adb9d60a5ull,
	  0.5369028176315758 },
	{ "GET /users/7?x=1", 0x98dec4c65d1f1024ull, 0.5971491798674118 },
};

Test(sample, xxh64_test_vectors)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *k = vectors[i].key;

		cr_expect_eq(sample_hash(k, strlen(k)), vectors[i].h,
			     "hash of '%s'", k);
		cr_expect_eq(sample_value(k, strlen(k)), vectors[i].v,
			     "value of '%s': %.17g", k,
			     sample_value(k, strlen(k)));
	}
}

static void req(struct exchange *x, const char *method, const char *target,
		const char *client)
{
	memset(x, 0, sizeof(*x));
	cr_assert_eq(exchange_set_line(x, method, strlen(method), target,
				       strlen(target), NULL), 0);
	snprintf(x->client, sizeof(x->client), "%s", client);
}

static void hdr(struct exchange *x, const char *n, const char *v)
{
	cr_assert_eq(headers_add(&x->req.headers, n, strlen(n), v, strlen(v)),
		     0);
}

static double value_for(const char *spec, struct exchange *x, bool *fb)
{
	struct sample *s;
	char err[256];
	double v;

	cr_assert_eq(sample_new(0.5, spec, &s, err, sizeof(err)), 0, "%s",
		     err);
	v = sample_exchange_value(s, x, fb);
	sample_free(s);
	return v;
}

#define V(str) sample_value(str, strlen(str))

Test(sample, each_key_kind_hashes_the_documented_bytes)
{
	struct exchange x;
	bool fb;

	req(&x, "GET", "/users/7?x=1&uid=u%2042&flag&e=", "10.1.2.3:5555");
	hdr(&x, "X-User-Id", "u-1");
	hdr(&x, "cookie", "a=1; sid=\"s 9\" ; b=2");
	hdr(&x, "Cookie", "sid=second");

	cr_expect_eq(value_for("request", &x, &fb),
		     V("GET /users/7?x=1&uid=u%2042&flag&e="));
	cr_expect_not(fb);
	cr_expect_eq(value_for(NULL, &x, &fb), V("GET /users/7?x=1&uid=u%2042&flag&e="));
	cr_expect_eq(value_for("path", &x, &fb), V("/users/7"));
	cr_expect_eq(value_for("client-ip", &x, &fb), V("10.1.2.3"));
	cr_expect_eq(value_for("header:x-user-id", &x, &fb), V("u-1"));
	cr_expect_not(fb);
	cr_expect_eq(value_for("cookie:sid", &x, &fb), V("\"s 9\""));
	cr_expect_eq(value_for("cookie:b", &x, &fb), V("2"));
	cr_expect_eq(value_for("query:uid", &x, &fb), V("u%2042"));
	cr_expect_eq(value_for("query:x", &x, &fb), V("1"));
	cr_expect_eq(value_for("query:flag", &x, &fb), V(""));
	cr_expect_not(fb);
	cr_expect_eq(value_for("query:e", &x, &fb), V(""));
	exchange_clean(&x);

	req(&x, "HEAD", "/", "[::1]:80");
	cr_expect_eq(value_for("client-ip", &x, &fb), V("::1"));
	cr_expect_eq(value_for("path", &x, &fb), V("/"));
	exchange_clean(&x);
}

Test(sample, missing_key_falls_back_to_request)
{
	struct exchange x;
	bool fb;
	const char *specs[] = { "header:X-User-Id", "cookie:sid", "query:uid",
				"client-ip", "cookie:si", "query:ui" };

	req(&x, "GET", "/a?uidx=1&xuid=2", "");
	hdr(&x, "Cookie", "sidx=1; xsid=2");
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		fb = false;
		cr_expect_eq(value_for(specs[i], &x, &fb),
			     V("GET /a?uidx=1&xuid=2"), "%s", specs[i]);
		cr_expect(fb, "%s", specs[i]);
	}
	exchange_clean(&x);
}

Test(sample, bad_specs_and_rates_are_refused_with_a_message)
{
	const char *bad[] = { "", "Request", "header:", "cookie:", "query:",
			      "header:a b", "ip", "query:a=b" };
	struct sample *s = (struct sample *)1;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		cr_expect_eq(sample_new(0.1, bad[i], &s, err, sizeof(err)),
			     -EINVAL, "%s", bad[i]);
		cr_expect_null(s);
		cr_expect_gt(strlen(err), 10);
	}
	cr_expect_eq(sample_new(-0.1, "path", &s, err, sizeof(err)), -EINVAL);
	cr_expect_eq(sample_new(1.5, "path", &s, err, sizeof(err)), -EINVAL);
	cr_expect_eq(sample_new(NAN, "path", &s, err, sizeof(err)), -EINVAL);
	cr_expect_neq(strstr(err, "between 0 and 1"), NULL);
	cr_assert_eq(sample_new(0, "header:X-A", &s, err, sizeof(err)), 0);
	cr_expect_eq(sample_kind(s), SAMPLE_KEY_HEADER);
	sample_free(s);
	sample_free(NULL);
}

/* Decisions for n users who each send a different request with their uid
 * cookie. No criterion assertion in here: it also runs in a forked child,
 * where reporting to the runner is not allowed. Returns 0 or -1. */
static int decide_users_raw(const char *spec, double rate, unsigned char *out,
			    size_t n)
{
	struct sample *s;
	char err[256];
	char cookie[64], target[64];
	int rc = 0;

	if (sample_new(rate, spec, &s, err, sizeof(err)))
		return -1;
	for (size_t u = 0; u < n; u++) {
		struct exchange x = { 0 };

		snprintf(target, sizeof(target), "/items/%zu", u * 7919 % 1000);
		snprintf(x.client, sizeof(x.client), "127.0.0.1:1");
		snprintf(cookie, sizeof(cookie), "theme=dark; uid=user-%zu",
			 u);
		if (exchange_set_line(&x, u % 2 ? "GET" : "HEAD",
				      u % 2 ? 3 : 4, target, strlen(target),
				      NULL) ||
		    headers_add(&x.req.headers, "Cookie", 6, cookie,
				strlen(cookie)))
			rc = -1;
		out[u] = sample_decide(s, &x);
		exchange_clean(&x);
	}
	sample_free(s);
	return rc;
}

static void decide_users(const char *spec, double rate, unsigned char *out,
			 size_t n)
{
	cr_assert_eq(decide_users_raw(spec, rate, out, n), 0);
}

Test(sample, about_ten_percent_of_1000_users_and_each_user_sticks)
{
	unsigned char a[1000], b[1000];
	size_t n = 0;

	decide_users("cookie:uid", 0.1, a, 1000);
	for (size_t i = 0; i < 1000; i++)
		n += a[i];
	/* Binomial(1000, 0.1): sd 9.5; 4 sd either side. */
	cr_expect(n >= 62 && n <= 138, "sampled %zu of 1000", n);

	/* Same user, other requests: same decision. */
	for (size_t u = 0; u < 1000; u++) {
		struct sample *s;
		char err[64], cookie[64];
		struct exchange x;

		cr_assert_eq(sample_new(0.1, "cookie:uid", &s, err, sizeof(err)), 0);
		snprintf(cookie, sizeof(cookie), "uid=user-%zu", u);
		req(&x, "GET", "/something/else?q=1", "10.9.9.9:2");
		hdr(&x, "Cookie", cookie);
		cr_expect_eq(sample_decide(s, &x), a[u], "user %zu", u);
		cr_expect_eq(sample_stats(s)->seen, 1);
		exchange_clean(&x);
		sample_free(s);
	}

	/* A larger rate samples a superset. */
	decide_users("cookie:uid", 0.3, b, 1000);
	for (size_t i = 0; i < 1000; i++)
		cr_expect(!a[i] || b[i], "user %zu", i);
}

Test(sample, same_decisions_in_another_process)
{
	unsigned char mine[1000], theirs[1000];
	int p[2];
	pid_t pid;
	size_t got = 0;
	int status;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	/* The child reports nothing to criterion: only the parent may. */
	if (pid == 0) {
		unsigned char d[1000];

		close(p[0]);
		if (decide_users_raw("cookie:uid", 0.1, d, 1000))
			_exit(1);
		if (write(p[1], d, sizeof(d)) != (ssize_t)sizeof(d))
			_exit(1);
		_exit(0);
	}
	cr_assert_geq(pid, 0);
	close(p[1]);
	while (got < sizeof(theirs)) {
		ssize_t n = read(p[0], theirs + got, sizeof(theirs) - got);

		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	decide_users("cookie:uid", 0.1, mine, 1000);
	cr_expect_arr_eq(mine, theirs, sizeof(mine));
}

Test(sample, rate_one_takes_all_rate_zero_none_and_stats_count)
{
	struct sample *all, *none, *half;
	char err[64];
	struct exchange x;
	size_t n = 0;

	cr_assert_eq(sample_new(1, "path", &all, err, sizeof(err)), 0);
	cr_assert_eq(sample_new(0, "path", &none, err, sizeof(err)), 0);
	cr_assert_eq(sample_new(0.5, "header:X-U", &half, err, sizeof(err)), 0);
	for (int i = 0; i < 200; i++) {
		char t[32];

		snprintf(t, sizeof(t), "/p/%d", i);
		req(&x, "GET", t, "");
		cr_expect(sample_decide(all, &x));
		cr_expect_not(sample_decide(none, &x));
		n += sample_decide(half, &x);
		exchange_clean(&x);
	}
	cr_expect_eq(sample_stats(all)->sampled, 200);
	cr_expect_eq(sample_stats(none)->sampled, 0);
	cr_expect_eq(sample_stats(none)->seen, 200);
	cr_expect_eq(sample_stats(half)->sampled, n);
	cr_expect_eq(sample_stats(half)->fallback, 200);
	cr_expect(n > 60 && n < 140, "%zu", n);
	sample_free(all);
	sample_free(none);
	sample_free(half);
}

/* Where the kernel can make the decision: a key in the request line at
 * any rate, any key at rate 0 (none) or 1 (all), never a header's key in
 * between (the kernel does not see headers whole). */
Test(sample, the_kernel_decides_when_the_key_or_the_rate_allows)
{
	static const struct {
		double rate;
		const char *spec;
		bool in_kernel;
	} cases[] = {
		{ 0.5, "request", true },     { 0.01, "path", true },
		{ 0.5, "header:X-U", false }, { 0.5, "client-ip", false },
		{ 0.5, "cookie:s", false },   { 0.5, "query:u", false },
		{ 1, "header:X-U", true },    { 0, "cookie:s", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sample *s;
		char err[64];

		cr_assert_eq(sample_new(cases[i].rate, cases[i].spec, &s, err,
					sizeof(err)), 0, "%s", err);
		cr_expect_eq(sample_in_kernel(s), cases[i].in_kernel,
			     "--sample %g --sample-key %s", cases[i].rate,
			     cases[i].spec);
		sample_free(s);
	}
}
