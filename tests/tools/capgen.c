// SPDX-License-Identifier: BSD-2-Clause
/*
 * Capture files of shapes no recording of a server holds, written with
 * the daemon's own writer (user/capfile.c). Every other fixture is
 * recorded by `shadowd --record` from a real server (tests/data/mkcap.py).
 *
 *   capgen uncopied FILE   one connection, six GETs: the heads copied
 *                          whole or as their request line alone (REQLINE),
 *                          every answer passed over (SKIP), as the kernel
 *                          sends them when it decides the sampling;
 *                          --record asks it to copy everything instead.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "capfile.h"
#include "shadow_event.h"

struct gen {
	struct capfile_writer *w;
	uint64_t ts;
	int err;
};

/* Appends one record of connection (40, 7), a microsecond after the last. */
static void put(struct gen *g, uint8_t kind, uint8_t dir, uint64_t offset,
		const void *payload, uint32_t len, uint32_t size)
{
	struct shadow_event ev = {
		.offset = offset, .tgid = 40, .fd = 7, .gen = 1, .len = len,
		.size = size, .kind = kind, .dir = dir,
	};

	g->ts += 1000;
	ev.ts_ns = g->ts;
	if (!g->err)
		g->err = capfile_write(g->w, &ev, payload);
}

static void gen_uncopied(struct gen *g)
{
	struct shadow_open op = { .family = 2, .lport = 8080, .rport = 5000 };
	struct shadow_close cl = { .flags = SHADOW_CLOSE_PEER_EOF };
	uint64_t off_in = 0, off_out = 0;

	memcpy(op.laddr, "\x7f\0\0\x01", 4);
	memcpy(op.raddr, "\x7f\0\0\x01", 4);
	put(g, SHADOW_EV_OPEN, SHADOW_DIR_IN, 0, &op, sizeof(op), sizeof(op));
	for (int i = 0; i < 6; i++) {
		char req[64], line[32];
		int n = snprintf(req, sizeof(req),
				 "GET /users/%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
		int m = snprintf(line, sizeof(line), "GET /users/%d", i);
		struct shadow_skip sk;

		if (i % 2)
			put(g, SHADOW_EV_REQLINE, SHADOW_DIR_IN, off_in, line,
			    (uint32_t)m, (uint32_t)n);
		else
			put(g, SHADOW_EV_DATA, SHADOW_DIR_IN, off_in, req,
			    (uint32_t)n, (uint32_t)n);
		off_in += (uint64_t)n;
		/* 300 answer bytes, written over half a microsecond. */
		sk.last_ts_ns = g->ts + 1000 + 500;
		put(g, SHADOW_EV_SKIP, SHADOW_DIR_OUT, off_out, &sk, sizeof(sk),
		    300);
		off_out += 300;
	}
	cl.final_offset[SHADOW_DIR_IN] = off_in;
	cl.final_offset[SHADOW_DIR_OUT] = off_out;
	put(g, SHADOW_EV_CLOSE, SHADOW_DIR_IN, 0, &cl, sizeof(cl), sizeof(cl));
}

int main(int argc, char **argv)
{
	struct gen g = { 0 };
	struct timespec now;
	int err;

	if (argc != 3 || strcmp(argv[1], "uncopied") != 0) {
		fprintf(stderr, "usage: capgen uncopied FILE\n");
		return 2;
	}
	g.w = capfile_open_writer(argv[2]);
	if (!g.w) {
		fprintf(stderr, "capgen: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	g.ts = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	gen_uncopied(&g);
	err = capfile_close_writer(g.w);
	if (g.err || err) {
		fprintf(stderr, "capgen: %s: %s\n", argv[2],
			strerror(-(g.err ? g.err : err)));
		return 1;
	}
	return 0;
}
