// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Not the capture: make bench's measure of what the capture's fixed steps
 * cost when nothing is cold (tests/bench/helper_cost_bench.c runs it with
 * BPF_PROG_TEST_RUN, in its own process): a request line's ring-buffer
 * record, the read of a request from user memory, and a clock read (the
 * one bpf_stats makes around every program run, and the profile around
 * each region). Back to back, every line they touch is in this CPU's
 * cache: set beside the same steps' price in the hot path (the profile's
 * ring and read regions), the difference is what their cold lines cost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shadow_event.h"

#define CALLS 1000
/* The request wrk sends in make bench is ~50 bytes. */
#define READ_BYTES 48

/* The capture's ring buffer size (user space may set another). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} ring SEC(".maps");

/* A request line's record, as the capture builds it in its scratch. */
struct line_rec {
	struct shadow_event h;
	char line[24];
	struct shadow_skip_before b;
};

/* Where the capture copies a request to: a scratch as large as its own
 * (a map value the kernel allocates the same way). */
struct scratch {
	struct line_rec rec;
	char data[SHADOW_CHUNK_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratches SEC(".maps");

/* Set by user space: READ_BYTES of its memory. */
__u64 user_buf = 0;
/* ns for CALLS of each; failed: records the ring had no room for, or
 * reads that faulted. */
__u64 clock_ns, output_ns, reserve_ns, read_user_ns, read_kernel_ns;
__u64 failed, rec_bytes;

SEC("raw_tp")
int helper_cost(void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratches, &zero);
	struct line_rec *r;
	__u64 t0;

	if (!s)
		return 0;
	r = &s->rec;
	rec_bytes = sizeof(*r);
	r->h.kind = SHADOW_EV_REQLINE;
	r->h.len = sizeof(*r) - sizeof(r->h);
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++)
		bpf_ktime_get_ns();
	clock_ns = bpf_ktime_get_ns() - t0;
	/* What output() does: the record copied from the scratch. */
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++)
		if (bpf_ringbuf_output(&ring, r, sizeof(*r), BPF_RB_NO_WAKEUP) < 0)
			failed++;
	output_ns = bpf_ktime_get_ns() - t0;
	/* What the SKIP and CLOSE records do: filled in place. */
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++) {
		struct line_rec *o = bpf_ringbuf_reserve(&ring, sizeof(*o), 0);

		if (!o) {
			failed++;
			continue;
		}
		o->h.ts_ns = t0;
		o->h.kind = SHADOW_EV_REQLINE;
		o->b.size = i;
		bpf_ringbuf_submit(o, BPF_RB_NO_WAKEUP);
	}
	reserve_ns = bpf_ktime_get_ns() - t0;
	/* What copy_small does with a request read. */
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++)
		if (bpf_probe_read_user(s->data, READ_BYTES, (void *)user_buf) < 0)
			failed++;
	read_user_ns = bpf_ktime_get_ns() - t0;
	/* The same bytes from kernel memory: the price of the user access. */
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++)
		if (bpf_probe_read_kernel(s->data, READ_BYTES, s->data + 4096) < 0)
			failed++;
	read_kernel_ns = bpf_ktime_get_ns() - t0;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
