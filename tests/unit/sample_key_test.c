// SPDX-License-Identifier: BSD-2-Clause
/*
 * bpf/sample_key.h, compiled here as plain C: the kernel decides whether a
 * request is sampled, and that decision must be the one user/sample.c
 * makes for the same request, bit for bit. So the kernel's XXH64 is held
 * against libxxhash, its integer threshold against sample_value(), and its
 * request reader against a byte-by-byte reference over a table and over
 * random requests.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include <linux/types.h>
#include <stdbool.h>
/* <linux/types.h> already defines it (as __inline__, via linux/stddef.h):
 * inlining does not change what the functions compute. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "../../bpf/sample_key.h"

#include "http1.h"
#include "sample.h"

/* Asserts inside loops of thousands of runs: only a failure is recorded
 * (tests/run.sh passes --full-stats, which records every assertion). */
#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			cr_assert_fail(__VA_ARGS__); \
	} while (0)

_Static_assert(SK_SEED == SAMPLE_SEED, "kernel and user space seeds differ");

/* Fixed, so that a failure names an input that fails again. */
static __u64 rng_state = 0x5eed5eed5eed5eedull;

/* splitmix64 */
static __u64 rnd(void)
{
	__u64 z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static __u32 rnd_below(__u32 n)
{
	return (__u32)(rnd() % n);
}

/* What the kernel reads from: the header masks every offset to SK_MASK and
 * loads up to 8 bytes from there, so it needs SK_BUF_MIN bytes. */
static __u8 buf[SK_BUF_MIN];

static void fill_random(__u8 *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (__u8)rnd();
}

/* The bytes as the inside of a C string literal, for failure messages. */
static const char *quoted(const void *p, size_t n)
{
	static char out[4 * SK_BUF_MIN + 1];
	const __u8 *d = p;
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < sizeof(out); i++) {
		if (d[i] == '\r')
			o += (size_t)sprintf(out + o, "\\r");
		else if (d[i] == '\n')
			o += (size_t)sprintf(out + o, "\\n");
		else if (d[i] == '"' || d[i] == '\\')
			o += (size_t)sprintf(out + o, "\\%c", d[i]);
		else if (d[i] < 0x20 || d[i] >= 0x7f)
			o += (size_t)sprintf(out + o, "\\x%02x", d[i]);
		else
			out[o++] = (char)d[i];
	}
	out[o] = 0;
	return out;
}

/* ---- XXH64 ---- */

Test(sample_key, xxh64_is_libxxhash_at_every_length_and_offset)
{
	static const __u32 starts[] = { 0, 1, 7, 100 };

	fill_random(buf, sizeof(buf));
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		__u32 start = starts[s];

		for (__u32 len = 0; len <= SK_REQ_MAX; len++) {
			__u64 got = sk_xxh64(buf, start, len);
			__u64 want = XXH64(buf + start, len, SAMPLE_SEED);

			CHECK(got == want,
			      "start %u len %u: %#llx, libxxhash %#llx", start,
			      len, (unsigned long long)got,
			      (unsigned long long)want);
			CHECK(got == sample_hash(buf + start, len),
			      "start %u len %u: not sample_hash()", start, len);
		}
	}
}

/* ---- the threshold ---- */

/* The decision as user/sample.h spells it: value = (h >> 11) * 2^-53. */
static bool sampled_by_value(__u64 v53, double rate)
{
	return (double)v53 * 0x1.0p-53 < rate;
}

Test(sample_key, below_makes_the_same_decision_as_the_value)
{
	double rates[7 + 300] = { 0, 1e-9, 0.01, 0.1, 0.5, 0.999, 1 };
	size_t n = 7;

	cr_expect_eq(sample_below(0), 0);
	cr_expect_eq(sample_below(1), 1ull << 53);

	/* Uniform ones, ones that are exact multiples of 2^-53 (where the
	 * ceiling must not round up) and tiny ones. */
	while (n < 7 + 100)
		rates[n++] = (double)(rnd() >> 11) * 0x1.0p-53;
	while (n < 7 + 200)
		rates[n++] = (double)(rnd() >> (11 + rnd_below(40))) * 0x1.0p-53;
	while (n < 7 + 300)
		rates[n++] = 0x1.0p-60 * (double)(1 + rnd_below(1 << 20));

	for (size_t i = 0; i < n; i++) {
		double rate = rates[i];
		__u64 below = sample_below(rate);

		/* Random keys, through sample_value() itself. */
		for (int k = 0; k < 1000; k++) {
			__u64 key = rnd();
			__u64 h = sample_hash(&key, sizeof(key));
			bool kernel = (h >> 11) < below;
			bool user = sample_value(&key, sizeof(key)) < rate;

			CHECK(kernel == user,
			      "rate %a key %#llx: kernel %d, user space %d",
			      rate, (unsigned long long)key, kernel, user);
		}
		/* Random hashes never land at the edge: these do. */
		for (__u64 v = below ? below - 1 : 0; v <= below + 1; v++) {
			if (v >= 1ull << 53)
				break;
			CHECK((v < below) == sampled_by_value(v, rate),
			      "rate %a, h >> 11 = %llu, below %llu", rate,
			      (unsigned long long)v, (unsigned long long)below);
		}
	}
}

/* ---- the request reader: a table ---- */

struct parse_case {
	const char *name;
	const char *req;
	bool ok;
	__u32 method_len, target_len, path_len;
	const char *key;  /* method SP target: what --sample-key request hashes */
	const char *path; /* the target up to '?': --sample-key path */
};

#define OK(name, req, m, t, p, key, path) \
	{ name, req, true, m, t, p, key, path }
#define NO(name, req) { name, req, false, 0, 0, 0, NULL, NULL }

static const struct parse_case cases[] = {
	OK("plain", "GET /users/17 HTTP/1.1\r\nHost: a\r\n\r\n",
	   3, 9, 9, "GET /users/17", "/users/17"),
	OK("query", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: a\r\n\r\n",
	   3, 12, 4, "GET /a/b?x=1&y=2", "/a/b"),
	OK("only a query: the path is empty",
	   "GET ?x HTTP/1.1\r\nHost: a\r\n\r\n", 3, 2, 0, "GET ?x", ""),
	OK("the first '?' ends the path",
	   "GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n", 3, 6, 2, "GET /a?b?c",
	   "/a"),
	/* The kernel reads the target eight bytes at a time. */
	OK("'?' in two of them",
	   "GET /a?bcdefghijklmn?p HTTP/1.1\r\n\r\n", 3, 18, 2,
	   "GET /a?bcdefghijklmn?p", "/a"),
	OK("'?' last", "GET /a? HTTP/1.1\r\n\r\n", 3, 3, 2, "GET /a?", "/a"),
	OK("no headers, the shortest read decided (18 bytes)",
	   "GET / HTTP/1.1\r\n\r\n", 3, 1, 1, "GET /", "/"),
	OK("HEAD, HTTP/1.0", "HEAD / HTTP/1.0\r\n\r\n", 4, 1, 1, "HEAD /", "/"),
	OK("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 7, 1, 1,
	   "OPTIONS *", "*"),
	OK("absolute form", "GET http://a.example/p?q HTTP/1.1\r\n\r\n", 3,
	   20, 18, "GET http://a.example/p?q", "http://a.example/p"),
	OK("method with a hyphen", "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
	   8, 1, 1, "M-SEARCH *", "*"),
	OK("a 15-letter method", "ABCDEFGHIJKLMNO /x HTTP/1.1\r\n\r\n", 15, 2,
	   2, "ABCDEFGHIJKLMNO /x", "/x"),
	OK("visible ASCII of every kind in the target",
	   "GET /!\"#$%&'()*+,-.:;<=>@[\\]^_`{|}~ HTTP/1.1\r\n\r\n", 3, 31, 31,
	   "GET /!\"#$%&'()*+,-.:;<=>@[\\]^_`{|}~",
	   "/!\"#$%&'()*+,-.:;<=>@[\\]^_`{|}~"),
	OK("headers with all kinds of bytes",
	   "PUT /k HTTP/1.1\r\nX: a\tb \x01\x7f\xff\rc\r\nY:\r\n\r\n", 3, 2, 2,
	   "PUT /k", "/k"),
	/* The body follows in a later read, which cancels the decision. */
	OK("bodiless so far",
	   "POST /f HTTP/1.1\r\nContent-Length: 4\r\n\r\n", 4, 2, 2,
	   "POST /f", "/f"),
	/* Not CRLF, but a lone LF cannot make an empty line: the framing is
	 * the same whether it ends a line (as http_parser takes it) or not. */
	OK("a lone LF inside the header section",
	   "GET /l HTTP/1.1\r\nA: b\nC: d\r\n\r\n", 3, 2, 2, "GET /l", "/l"),

	NO("empty", ""),
	NO("17 bytes: shorter than the reader decides on",
	   "AB / HTTP/1.1\r\n\r\n"),
	NO("two requests in one read",
	   "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("bare LF", "GET / HTTP/1.1\nHost: a\n\n"),
	NO("bare LF after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"),
	NO("LF LF before the end",
	   "GET / HTTP/1.1\r\nA: b\n\nC: d\r\n\r\n"),
	NO("LF CR LF before the end",
	   "GET / HTTP/1.1\r\nA: b\n\r\nC: d\r\n\r\n"),
	NO("LF CR before the end",
	   "GET / HTTP/1.1\r\nA: b\r\n\rC: d\r\n\r\n"),
	NO("last header line ends in a lone LF",
	   "GET / HTTP/1.1\r\nHost: a\n\r\n"),
	NO("body in the same read",
	   "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"),
	NO("body that looks like an empty line",
	   "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n"),
	NO("truncated", "GET / HTTP/1.1\r\nHost: a\r\n"),
	NO("truncated in the empty line", "GET / HTTP/1.1\r\nHost: a\r\n\r"),
	NO("lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("a 16-letter method", "ABCDEFGHIJKLMNOP /x HTTP/1.1\r\n\r\n"),
	NO("no method", " / HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("empty target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("two SP after the target", "GET /a  HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("no SP after the target", "GET /abc\r\nHost: a\r\n\r\n"),
	NO("HTTP/0.9", "GET /abcdefghijklmnopq\r\n\r\n"),
	NO("tab in the target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("DEL in the target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("0x80 in the target", "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("0xff in the target", "GET /abcdefg\xff HTTP/1.1\r\nHost: a\r\n\r\n"),
	NO("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
	NO("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
	NO("HTTP/1.9", "GET / HTTP/1.9\r\nHost: a\r\n\r\n"),
	NO("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n"),
	NO("no minor digit", "GET / HTTP/1.x\r\nHost: a\r\n\r\n"),
	NO("'/' is no digit", "GET / HTTP/1./\r\nHost: a\r\n\r\n"),
	NO("':' is no digit", "GET / HTTP/1.:\r\nHost: a\r\n\r\n"),
	NO("SP after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
	NO("two-digit minor", "GET / HTTP/1.12\r\nHost: a\r\n\r\n"),
};

/* Bytes after the read: they must not matter. -1 is random. */
static const int fills[] = { 0, -1, '\n', ' ', '\r' };

/* Copies the n bytes of req to the start of buf, fill after them. */
static void put(const void *req, size_t n, int fill)
{
	if (fill < 0)
		fill_random(buf, sizeof(buf));
	else
		memset(buf, fill, sizeof(buf));
	memcpy(buf, req, n);
}

/* For an accepted read in buf: the keys the kernel hashes are the bytes
 * user space hashes. */
static void expect_keys(const struct sk_request *r, const char *key,
			size_t key_len, const char *path, size_t path_len,
			const char *what)
{
	cr_expect_eq(sk_xxh64(buf, 0, r->method_len + 1 + r->target_len),
		     XXH64(key, key_len, SAMPLE_SEED), "%s: request key", what);
	cr_expect_eq(sk_xxh64(buf, r->method_len + 1, r->path_len),
		     XXH64(path, path_len, SAMPLE_SEED), "%s: path key", what);
}

Test(sample_key, parse_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];
		size_t n = strlen(c->req);

		for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
			struct sk_request r = { 0 };
			bool ok;

			put(c->req, n, fills[f]);
			ok = sk_parse_request(buf, (__u32)n, &r);
			cr_assert_eq(ok, c->ok, "%s (fill %d): \"%s\" %s",
				     c->name, fills[f], quoted(c->req, n),
				     ok ? "accepted" : "refused");
			if (!ok)
				continue;
			cr_expect_eq(r.method_len, c->method_len,
				     "%s: method_len %u", c->name, r.method_len);
			cr_expect_eq(r.target_len, c->target_len,
				     "%s: target_len %u", c->name, r.target_len);
			cr_expect_eq(r.path_len, c->path_len, "%s: path_len %u",
				     c->name, r.path_len);
			expect_keys(&r, c->key, strlen(c->key), c->path,
				    strlen(c->path), c->name);
		}
	}
}

/* "GET /bcd... HTTP/1.1\r\nHost: a\r\n\r\n", n bytes in all, with a '?'
 * at target offset q (0: none). Returns the target's length. */
static size_t long_request(char *out, size_t n, size_t q)
{
	static const char tail[] = " HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t t = n - 4 - (sizeof(tail) - 1);

	memcpy(out, "GET ", 4);
	for (size_t i = 0; i < t; i++)
		out[4 + i] = (char)('a' + i % 26);
	out[4] = '/';
	if (q)
		out[4 + q] = '?';
	memcpy(out + 4 + t, tail, sizeof(tail) - 1);
	return t;
}

Test(sample_key, long_targets_up_to_the_read_limit)
{
	static const struct {
		size_t n, q;
		bool ok;
	} longs[] = {
		{ 3026, 2500, true },            /* a 3000-byte target */
		{ 3026, 0, true },
		{ SK_REQ_MAX, 0, true },
		{ SK_REQ_MAX, SK_REQ_MAX - 27, true }, /* '?' ends the target */
		{ SK_REQ_MAX + 1, 0, false },    /* user space decides */
		{ SK_REQ_MAX + 1, 100, false },
	};
	static char req[SK_REQ_MAX + 1];

	for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
		size_t t = long_request(req, longs[i].n, longs[i].q);
		struct sk_request r = { 0 };
		bool ok;

		put(req, longs[i].n, -1);
		ok = sk_parse_request(buf, (__u32)longs[i].n, &r);
		cr_assert_eq(ok, longs[i].ok, "%zu bytes, '?' at %zu",
			     longs[i].n, longs[i].q);
		if (!ok)
			continue;
		cr_expect_eq(r.method_len, 3);
		cr_expect_eq(r.target_len, t, "%zu bytes", longs[i].n);
		cr_expect_eq(r.path_len, longs[i].q ? longs[i].q : t,
			     "%zu bytes", longs[i].n);
		expect_keys(&r, req, 4 + t, req + 4,
			    longs[i].q ? longs[i].q : t, "long");
	}
}

/* ---- the request reader against a reference, on random requests ---- */

/*
 * What sk_parse_request() promises, one byte at a time:
 *   METHOD     1 to 15 of A-Z, '-', '_' (longer: left to user space)
 *   SP target  1 or more bytes of visible ASCII, 0x21 to 0x7e
 *   SP "HTTP/1." ("0" / "1") CRLF
 *   header lines, each running to an LF, up to the first line that
 *   begins with CR or LF: the empty line. It is CRLF, comes after a
 *   CRLF, and is the last thing in the read: anything after it would be
 *   a body or another request.
 * in a read of 18 to SK_REQ_MAX bytes (shorter ones are not worth the
 * kernel's while).
 */
static bool ref_parse(const __u8 *d, size_t len, struct sk_request *r)
{
	size_t i = 0, target, query = 0;

	if (len < 18 || len > SK_REQ_MAX)
		return false;
	while (i < len && ((d[i] >= 'A' && d[i] <= 'Z') || d[i] == '-' ||
			   d[i] == '_'))
		i++;
	if (i == 0 || i > 15 || i == len || d[i] != ' ')
		return false;
	r->method_len = (__u32)i++;

	target = i;
	while (i < len && d[i] >= 0x21 && d[i] <= 0x7e) {
		if (d[i] == '?' && !query)
			query = i;
		i++;
	}
	if (i == target || i == len || d[i] != ' ')
		return false;
	r->target_len = (__u32)(i - target);
	r->path_len = (__u32)((query ? query : i) - target);
	i++;

	if (len - i < 10 || memcmp(d + i, "HTTP/1.", 7) != 0 ||
	    (d[i + 7] != '0' && d[i + 7] != '1') || d[i + 8] != '\r' ||
	    d[i + 9] != '\n')
		return false;
	i += 10;

	/* i is at the start of a line. */
	for (;;) {
		if (i == len)
			return false;
		if (d[i] == '\r' || d[i] == '\n')
			break;
		while (i < len && d[i] != '\n')
			i++;
		if (i == len)
			return false;
		i++;
	}
	return len - i == 2 && d[i] == '\r' && d[i + 1] == '\n' &&
	       d[i - 2] == '\r';
}

struct gen {
	__u8 d[SK_REQ_MAX + 1024];
	size_t n;
};

static void gen_put(struct gen *g, const void *s, size_t n)
{
	if (g->n + n > sizeof(g->d))
		n = sizeof(g->d) - g->n;
	memcpy(g->d + g->n, s, n);
	g->n += n;
}

static void gen_str(struct gen *g, const char *s)
{
	gen_put(g, s, strlen(s));
}

static void gen_byte(struct gen *g, __u8 ch)
{
	gen_put(g, &ch, 1);
}

/* A target of visible ASCII, '?' more often than its share; now and then
 * long enough to cross SK_REQ_MAX, or empty. */
static void gen_target(struct gen *g)
{
	__u32 r = rnd_below(100), n;

	if (r < 70)
		n = 1 + rnd_below(32);
	else if (r < 90)
		n = 33 + rnd_below(300);
	else if (r < 98)
		n = 333 + rnd_below(SK_REQ_MAX);
	else
		n = 0;
	for (__u32 i = 0; i < n; i++)
		gen_byte(g, rnd_below(10) ? (__u8)(0x21 + rnd_below(0x5e))
					  : '?');
}

static void gen_headers(struct gen *g)
{
	for (__u32 h = rnd_below(6); h > 0; h--) {
		for (__u32 i = 1 + rnd_below(12); i > 0; i--)
			gen_byte(g, (__u8)('A' + rnd_below(26)));
		gen_str(g, ": ");
		for (__u32 i = rnd_below(40); i > 0; i--)
			gen_byte(g, (__u8)(0x20 + rnd_below(0x5f)));
		gen_str(g, "\r\n");
	}
}

/* A request, usually well-formed, then now and then something that should
 * make it refused: a body, a second request, a cut, a byte changed to one
 * that means something to a parser. */
static void gen_request(struct gen *g)
{
	static const char *const methods[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
		"A", "AB", "ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNOP", "M-SEARCH",
		"X_Y", "-", "ABCDEFGHIJKLMN-P", "get", "",
	};
	static const char *const versions[] = {
		"HTTP/1.0", "HTTP/1.9", "HTTP/2.0", "HTTP/1.1 ", "http/1.1",
		"HTTP/1.", "HTTP/1./", "HTTP/1.:",
	};
	static const __u8 flips[] = { '\n', ' ', 0x7f, '\r', '\t', 0x80, '?', 0 };
	__u32 r;

	g->n = 0;
	gen_str(g, methods[rnd_below(sizeof(methods) / sizeof(methods[0]))]);
	gen_byte(g, ' ');
	gen_target(g);
	gen_byte(g, ' ');
	gen_str(g, rnd_below(10) ? "HTTP/1.1"
				 : versions[rnd_below(sizeof(versions) /
						      sizeof(versions[0]))]);
	gen_str(g, "\r\n");
	gen_headers(g);
	gen_str(g, "\r\n");

	r = rnd_below(100);
	if (r < 4)
		gen_str(g, "abcd");
	else if (r < 8)
		gen_str(g, "GET /next HTTP/1.1\r\n\r\n");
	else if (r < 12)
		g->n -= 1 + rnd_below(4);

	if (g->n && rnd_below(3) == 0)
		for (__u32 k = 1 + rnd_below(2); k > 0; k--)
			g->d[rnd_below((__u32)g->n)] =
				flips[rnd_below(sizeof(flips))];
}

Test(sample_key, parse_agrees_with_the_reference_on_random_requests)
{
	static struct gen g;
	size_t accepted = 0;

	/* What lies past each read is what the requests before it left in
	 * buf: often line ends and spaces, which must not count. */
	fill_random(buf, sizeof(buf));
	for (int i = 0; i < 20000; i++) {
		struct sk_request got = { 0 }, want = { 0 };
		bool got_ok, want_ok;

		gen_request(&g);
		memcpy(buf, g.d, g.n);
		got_ok = sk_parse_request(buf, (__u32)g.n, &got);
		want_ok = ref_parse(g.d, g.n, &want);
		CHECK(got_ok == want_ok,
		      "request %d (%zu bytes) %s, the reference %s it: \"%s\"",
		      i, g.n, got_ok ? "accepted" : "refused",
		      want_ok ? "accepts" : "refuses", quoted(g.d, g.n));
		if (!got_ok)
			continue;
		accepted++;
		CHECK(got.method_len == want.method_len &&
		      got.target_len == want.target_len &&
		      got.path_len == want.path_len,
		      "request %d: method/target/path %u/%u/%u, the reference "
		      "%u/%u/%u: \"%s\"", i, got.method_len, got.target_len,
		      got.path_len, want.method_len, want.target_len,
		      want.path_len, quoted(g.d, g.n));
		CHECK(sk_xxh64(buf, 0, got.method_len + 1 + got.target_len) ==
			      XXH64(g.d, want.method_len + 1 + want.target_len,
				    SAMPLE_SEED) &&
		      sk_xxh64(buf, got.method_len + 1, got.path_len) ==
			      XXH64(g.d + want.method_len + 1, want.path_len,
				    SAMPLE_SEED),
		      "request %d: keys differ: \"%s\"", i, quoted(g.d, g.n));
	}
	/* Both answers must be common, or the comparison says little. */
	cr_expect(accepted > 20000 / 4 && accepted < 20000 * 3 / 4,
		  "%zu of 20000 accepted", accepted);
}

/* ---- one grammar: the kernel's reader and user space's ---- */

/* Request lines, CRLF included, and whether include/request_line.h's
 * grammar takes them. The kernel reads each with a header after it (its
 * reader wants a whole head of at least 18 bytes); user/http1.c resumes
 * after a gap at such a line. Both must answer as the table does. */
static const struct {
	const char *line;
	bool ok;
} lines[] = {
	{ "GET / HTTP/1.1\r\n", true },
	{ "GET / HTTP/1.0\r\n", true },
	{ "A /x HTTP/1.1\r\n", true },
	{ "M-SEARCH * HTTP/1.1\r\n", true },
	{ "X_Y /x HTTP/1.1\r\n", true },
	{ "- /x HTTP/1.1\r\n", true },
	{ "ABCDEFGHIJKLMNO /x HTTP/1.1\r\n", true },
	{ "ABCDEFGHIJKLM-_ /x HTTP/1.1\r\n", true },
	{ "GET http://a.example/p?q HTTP/1.1\r\n", true },
	{ "GET /!\"#$%&'()*+,-.:;<=>@[\\]^_`{|}~ HTTP/1.1\r\n", true },
	{ "ABCDEFGHIJKLMNOP /x HTTP/1.1\r\n", false },
	{ "ABCDEFGHIJKLMNOPQRSTUVWX /x HTTP/1.1\r\n", false },
	{ "get / HTTP/1.1\r\n", false },
	{ "Get / HTTP/1.1\r\n", false },
	{ "GE1 / HTTP/1.1\r\n", false },
	{ "GET.X / HTTP/1.1\r\n", false },
	{ " / HTTP/1.1\r\n", false },
	{ "GET  HTTP/1.1\r\n", false },
	{ "GET /a  HTTP/1.1\r\n", false },
	{ "GET /a\tb HTTP/1.1\r\n", false },
	{ "GET /a\x01 HTTP/1.1\r\n", false },
	{ "GET /a\x7f HTTP/1.1\r\n", false },
	{ "GET /\x80 HTTP/1.1\r\n", false },
	{ "GET / HTTP/1.2\r\n", false },
	{ "GET / HTTP/1.9\r\n", false },
	{ "GET / HTTP/2.0\r\n", false },
	{ "GET / HTTP/1.x\r\n", false },
	{ "GET / http/1.1\r\n", false },
	{ "GET / HTTP/1.12\r\n", false },
	{ "GET / HTTP/1.1 \r\n", false },
	{ "GET / HTTP/1.1\n", false },
	{ "GET / HTTP/1.1\r\r\n", false },
	{ "GET /abcdefghijklmnopq\r\n", false },
};

Test(sample_key, kernel_and_user_space_read_one_request_line_grammar)
{
	static const char head_rest[] = "Host: a\r\n\r\n";
	char req[256];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = strlen(lines[i].line);
		struct sk_request r = { 0 };
		bool kernel, user;

		cr_assert_lt(n + sizeof(head_rest), sizeof(req));
		memcpy(req, lines[i].line, n);
		memcpy(req + n, head_rest, sizeof(head_rest));
		put(req, n + sizeof(head_rest) - 1, -1);
		kernel = sk_parse_request(buf, (__u32)(n + sizeof(head_rest) - 1),
					  &r);
		user = http1_request_line_ok(lines[i].line, n);
		cr_expect_eq(kernel, lines[i].ok, "kernel %s \"%s\"",
			     kernel ? "accepts" : "refuses",
			     quoted(lines[i].line, n));
		cr_expect_eq(user, lines[i].ok, "user space %s \"%s\"",
			     user ? "accepts" : "refuses",
			     quoted(lines[i].line, n));
	}
}
