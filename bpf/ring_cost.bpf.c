// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Not the capture: make bench's measure of what the capture's ring-buffer
 * record costs when nothing is cold (tests/bench/ring_cost_bench.c runs it
 * with BPF_PROG_TEST_RUN). Back to back, every line the record touches is
 * in this CPU's cache: set beside the same record's price in the hot path
 * (the profile's ring region), the difference is what its cold lines cost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shadow_event.h"

#define CALLS 1000

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct line_rec);
} src SEC(".maps");

/* ns for CALLS of each; failed: records the ring had no room for. */
__u64 clock_ns, output_ns, reserve_ns, failed, rec_bytes;

SEC("raw_tp")
int ring_cost(void *ctx)
{
	__u32 zero = 0;
	struct line_rec *r = bpf_map_lookup_elem(&src, &zero);
	__u64 t0, sink = 0;

	if (!r)
		return 0;
	rec_bytes = sizeof(*r);
	r->h.kind = SHADOW_EV_REQLINE;
	r->h.len = sizeof(*r) - sizeof(r->h);
	t0 = bpf_ktime_get_ns();
	for (int i = 0; i < CALLS; i++)
		sink += bpf_ktime_get_ns();
	clock_ns = bpf_ktime_get_ns() - t0 + (sink & 0);
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
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
