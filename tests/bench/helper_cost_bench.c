// SPDX-License-Identifier: BSD-2-Clause
/*
 * What the capture's fixed steps cost when their cache lines are hot: the
 * median over 9 runs of bpf/helper_cost.bpf.c, in ns per call: a request
 * line's ring-buffer record (1000 back to back, copied with
 * bpf_ringbuf_output as the capture's output() does, and 1000 reserved and
 * filled in place), a 48-byte read of user memory (this process's, as
 * copy_small reads the request) beside the same read of kernel memory,
 * and one bpf_ktime_get_ns(), the clock read bpf_stats makes around every
 * program run and the profile around each region. make bench prints it
 * beside the profile, the same steps in the hot path.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_cost.skel.h"

#define RUNS 9
#define CALLS 1000.0

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(v[0]), cmp);
	return v[RUNS / 2];
}

static int drop(void *ctx, void *data, size_t size)
{
	return 0;
}

int main(void)
{
	double clk[RUNS], out[RUNS], res[RUNS], ru[RUNS], rk[RUNS];
	static char request[64] = "GET /users/17 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct helper_cost_bpf *s = helper_cost_bpf__open_and_load();
	struct ring_buffer *rb;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	if (!s) {
		perror("helper_cost_bench: loading bpf/helper_cost.bpf.c");
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(s->maps.ring), drop, NULL, NULL);
	if (!rb) {
		perror("helper_cost_bench: ring_buffer__new");
		return 1;
	}
	s->bss->user_buf = (unsigned long)request;
	for (int r = 0; r < RUNS; r++) {
		int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.helper_cost), &o);

		if (err) {
			fprintf(stderr, "helper_cost_bench: BPF_PROG_TEST_RUN: %s\n",
				strerror(-err));
			return 1;
		}
		clk[r] = s->bss->clock_ns / CALLS;
		out[r] = s->bss->output_ns / CALLS;
		res[r] = s->bss->reserve_ns / CALLS;
		ru[r] = s->bss->read_user_ns / CALLS;
		rk[r] = s->bss->read_kernel_ns / CALLS;
		/* Emptied between runs: each run starts with room. */
		ring_buffer__consume(rb);
	}
	if (s->bss->failed) {
		fprintf(stderr, "helper_cost_bench: %llu calls failed (no room, "
			"or a fault)\n", (unsigned long long)s->bss->failed);
		return 1;
	}
	printf("hot_ring_record_ns: %.1f copied (%llu bytes), %.1f filled in place\n"
	       "hot_read_48_bytes_ns: %.1f from user memory, %.1f from kernel memory\n"
	       "clock_read_ns: %.1f\n", median(out),
	       (unsigned long long)s->bss->rec_bytes, median(res), median(ru),
	       median(rk), median(clk));
	ring_buffer__free(rb);
	helper_cost_bpf__destroy(s);
	return 0;
}
