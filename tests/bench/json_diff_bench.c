// SPDX-License-Identifier: BSD-2-Clause
/*
 * JSON diff throughput. A generated ~1 MiB document pair (an API-style
 * list of objects) with five differences is compared through
 * diff_responses(), as shadowd does. Throughput counts the primary's bytes
 * only (MB = 10^6 bytes), parse of both documents included, over the
 * thread's CPU time.
 *   json_diff_mb_per_sec            same formatting, five values changed
 *   json_diff_reordered_mb_per_sec  candidate pretty-printed with keys in
 *                                   another order: no identical-text
 *                                   shortcut anywhere
 *   json_parse_mb_per_sec           json_doc_parse() alone
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diff.h"
#include "json_diff.h"
#include "message.h"

#define TARGET_BYTES (1u << 20)

struct buf {
	char *s;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len + 512 > b->cap) {
		b->cap = b->cap * 2 + 4096;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			exit(1);
	}
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* variant 0: primary; 1: five changes; 2: five changes, reordered and
 * pretty-printed */
static struct buf generate(int variant, size_t items)
{
	struct buf b = { 0 };
	const char *nl = variant == 2 ? "\n  " : "";

	put(&b, "{\"total\":%zu,\"items\":[", items);
	for (size_t i = 0; i < items; i++) {
		bool changed = variant && i % (items / 5) == items / 10;
		double price = (double)i * 1.25 + (changed ? 1 : 0);

		if (i)
			put(&b, ",");
		if (variant == 2)
			put(&b, "%s{ \"meta\": {\"flags\": [true, false, null], "
				"\"created_at\": \"2024-05-01T12:00:%02zuZ\"},%s"
				"\"tags\": [\"red\", \"green\", \"blue\"],%s"
				"\"price\": %.2f, \"name\": \"item number %zu\", \"id\": %zu }",
			    nl, i % 60, nl, nl, price, i, i);
		else
			put(&b, "{\"id\":%zu,\"name\":\"item number %zu\",\"price\":%.2f,"
				"\"tags\":[\"red\",\"green\",\"blue\"],"
				"\"meta\":{\"created_at\":\"2024-05-01T12:00:%02zuZ\","
				"\"flags\":[true,false,null]}}",
			    i, i, price, i % 60);
	}
	put(&b, "]}");
	return b;
}

static double now(void)
{
	struct timespec ts;

	/* CPU time of this thread: the figure should not depend on what else
	 * the machine runs (the differ is single-threaded). */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void response(struct http_response *r, const struct buf *b)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	if (headers_add(&r->headers, "Content-Type", 12, "application/json", 16) ||
	    body_set(&r->decoded, b->s, b->len))
		exit(1);
}

static double bench_diff(const struct buf *pa, const struct buf *pb, size_t want_diffs)
{
	struct http_response p, c;
	struct diff_result r;
	double t0, t;
	int iters = 0;

	response(&p, pa);
	response(&c, pb);
	t0 = now();
	do {
		if (diff_responses(NULL, &p, &c, NULL, NULL, &r))
			exit(1);
		if (json_array_size(r.body.diffs) != want_diffs) {
			fprintf(stderr, "unexpected result: %s\n", r.body.summary);
			exit(1);
		}
		diff_result_clean(&r);
		iters++;
		t = now() - t0;
	} while (t < 1.0 || iters < 5);
	http_response_clean(&p);
	http_response_clean(&c);
	return (double)pa->len * iters / t / 1e6;
}

int main(void)
{
	size_t items = TARGET_BYTES / 160;
	struct buf a = generate(0, items), b = generate(1, items), c = generate(2, items);
	struct json_doc *d;
	double t0, t;
	int iters = 0;

	fprintf(stderr, "primary %zu bytes, candidate %zu / %zu bytes\n", a.len, b.len,
		c.len);
	printf("json_diff_mb_per_sec: %.0f MB/s\n", bench_diff(&a, &b, 5));
	printf("json_diff_reordered_mb_per_sec: %.0f MB/s\n", bench_diff(&a, &c, 5));
	t0 = now();
	do {
		if (json_doc_parse(a.s, a.len, &d, NULL, 0) != JSON_DOC_OK)
			return 1;
		json_doc_free(d);
		iters++;
		t = now() - t0;
	} while (t < 1.0);
	printf("json_parse_mb_per_sec: %.0f MB/s\n", (double)a.len * iters / t / 1e6);
	free(a.s);
	free(b.s);
	free(c.s);
	return 0;
}
