// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target for the HTTP/1 stage. The first input byte picks the
 * mode:
 *   even: the rest is raw capture records (no file header) fed through
 *         conn_table + http1, as --from-capture would;
 *   odd:  the rest is raw bytes for one connection: byte 1 holds flags
 *         (midstream, small caps), then segments of [dir|gap, len] + bytes
 *         fed straight into http1_sink_ops.
 * Every exchange handed on is checked for the invariants later stages
 * rely on, then freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capfile.h"
#include "conn.h"
#include "http1.h"
#include "message.h"
#include "shadow_event.h"

static void check_body(const struct body *b)
{
	if (b->len && !b->data)
		abort();
	if (b->data && b->data[b->len] != '\0')
		abort();
}

static void on_exchange(void *ctx, struct exchange *x)
{
	size_t *max_body = ctx;

	if (!x->req.method || !x->req.target || !x->endpoint)
		abort();
	/* An answer the kernel did not copy carries nothing but its flag. */
	if ((x->resp.flags & MESSAGE_UNCOPIED) &&
	    (x->resp.status || x->resp.headers.n || x->resp.raw.len))
		abort();
	if (!(x->resp.flags & MESSAGE_UNCOPIED) &&
	    (x->resp.status < 100 || x->resp.status > 999))
		abort();
	if ((x->req.flags & MESSAGE_HEAD_UNCOPIED) && x->req.headers.n)
		abort();
	check_body(&x->req.body);
	check_body(&x->resp.raw);
	check_body(&x->resp.decoded);
	if (x->req.body.len > *max_body || x->resp.raw.len > *max_body ||
	    x->resp.decoded.len > *max_body)
		abort();
	for (size_t i = 0; i < x->resp.headers.n; i++)
		if (!x->resp.headers.v[i].name || !x->resp.headers.v[i].value)
			abort();
	exchange_free(x);
}

static void run_records(const uint8_t *p, size_t n)
{
	static size_t max_body = 4096;
	struct http1_config cfg = { .max_body = max_body,
				    .max_header_bytes = 2048 };
	struct conn_limits lim = { .max_conns = 8 };
	struct http1 *h = http1_new(&cfg, on_exchange, &max_body);
	struct conn_table *t = h ? conn_table_new(&lim, &http1_sink_ops, h)
				 : NULL;
	struct capfile_reader *r = capfile_open_reader_mem(p, n, 1, NULL, 0);
	const struct shadow_event *ev;
	const void *pl;
	char err[64];

	if (t && r) {
		while (capfile_next(r, &ev, &pl, err, sizeof(err)) == 1) {
			if (ev->kind == SHADOW_EV_SENDFILE)
				continue;
			(void)conn_table_feed(t, ev, pl);
		}
	}
	capfile_close_reader(r);
	conn_table_free(t);
	http1_free(h);
}

static void run_bytes(const uint8_t *p, size_t n)
{
	static size_t max_body;
	struct conn_info info = { .tgid = 1, .fd = 3, .gen = 1 };
	struct http1_config cfg = { 0 };
	struct http1 *h;
	uint64_t ts = 1;
	void *c;

	if (n < 1)
		return;
	info.midstream = p[0] & 1;
	cfg.max_body = p[0] & 2 ? 16 : 65536;
	cfg.max_header_bytes = p[0] & 4 ? 64 : 0;
	max_body = cfg.max_body;
	p++;
	n--;
	h = http1_new(&cfg, on_exchange, &max_body);
	if (!h)
		return;
	c = http1_sink_ops.open(h, &info, ts);
	while (n >= 2) {
		int dir = p[0] & 1, gap = p[0] & 2;
		size_t len = p[1];

		ts += 1 + ((p[0] >> 2) & 3);
		p += 2;
		n -= 2;
		if (gap) {
			http1_sink_ops.gap(h, c, dir, len + 1, ts);
			continue;
		}
		if (len > n)
			len = n;
		http1_sink_ops.data(h, c, dir, p, len, ts);
		p += len;
		n -= len;
	}
	http1_sink_ops.close(h, c, ts + 1);
	http1_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		run_bytes(data + 1, size - 1);
	} else {
		/* Records are 8-byte aligned in a real (mmap'd) file. */
		uint8_t *copy = malloc(size);

		if (!copy)
			return 0;
		memcpy(copy, data + 1, size - 1);
		run_records(copy, size - 1);
		free(copy);
	}
	return 0;
}
