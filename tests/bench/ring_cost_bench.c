// SPDX-License-Identifier: BSD-2-Clause
/*
 * What a ring-buffer record costs when its cache lines are hot: the
 * median over 9 runs of bpf/ring_cost.bpf.c (1000 request-line records
 * back to back, copied with bpf_ringbuf_output as the capture's output()
 * does, and 1000 reserved and filled in place), in ns per record, and of
 * one bpf_ktime_get_ns(), the clock read that bpf_stats makes around
 * every program run and the profile around each region. make bench prints
 * it beside the profile's ring region, the same record in the hot path.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_cost.skel.h"

#define RUNS 9
#define CALLS 1000.0

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int drop(void *ctx, void *data, size_t size)
{
	return 0;
}

int main(void)
{
	double clk[RUNS], out[RUNS], res[RUNS];
	struct ring_cost_bpf *s = ring_cost_bpf__open_and_load();
	struct ring_buffer *rb;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	if (!s) {
		perror("ring_cost_bench: loading bpf/ring_cost.bpf.c");
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(s->maps.ring), drop, NULL, NULL);
	if (!rb) {
		perror("ring_cost_bench: ring_buffer__new");
		return 1;
	}
	for (int r = 0; r < RUNS; r++) {
		int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.ring_cost), &o);

		if (err) {
			fprintf(stderr, "ring_cost_bench: BPF_PROG_TEST_RUN: %s\n",
				strerror(-err));
			return 1;
		}
		clk[r] = s->bss->clock_ns / CALLS;
		out[r] = s->bss->output_ns / CALLS;
		res[r] = s->bss->reserve_ns / CALLS;
		/* Emptied between runs: each run starts with room. */
		ring_buffer__consume(rb);
	}
	if (s->bss->failed) {
		fprintf(stderr, "ring_cost_bench: %llu records found no room\n",
			(unsigned long long)s->bss->failed);
		return 1;
	}
	qsort(clk, RUNS, sizeof(clk[0]), cmp);
	qsort(out, RUNS, sizeof(out[0]), cmp);
	qsort(res, RUNS, sizeof(res[0]), cmp);
	printf("ring_record_hot_ns: %.1f (copied, %llu bytes)\n"
	       "ring_record_hot_reserved_ns: %.1f (filled in place)\n"
	       "clock_read_ns: %.1f\n", out[RUNS / 2],
	       (unsigned long long)s->bss->rec_bytes, res[RUNS / 2],
	       clk[RUNS / 2]);
	ring_buffer__free(rb);
	ring_cost_bpf__destroy(s);
	return 0;
}
