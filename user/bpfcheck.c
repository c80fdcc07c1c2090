// SPDX-License-Identifier: BSD-2-Clause
#include "bpfcheck.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	const char *needs;
} features[BPFCHECK_N_FEATURES] = {
	[BPFCHECK_BTF] = { "BTF", "a kernel built with CONFIG_DEBUG_INFO_BTF=y "
			   "(/sys/kernel/btf/vmlinux)" },
	[BPFCHECK_RINGBUF] = { "ring buffer", "Linux 5.8 or later" },
	[BPFCHECK_LOOP] = { "bpf_loop", "Linux 5.17 or later" },
	[BPFCHECK_TASK_STORAGE] = { "task storage", "Linux 5.11 or later" },
	[BPFCHECK_TP_BTF] = { "BTF tracepoints", "tp_btf on sched_process_fork"
			      "/exec/exit and inet_sock_set_state (Linux 5.5+)" },
	[BPFCHECK_SOCK_TP] = { "socket tracepoints", "Linux 6.4 or later on "
			       "x86-64 (sock_recv_length, sock_send_length)" },
	[BPFCHECK_TASK_PT_REGS] = { "bpf_task_pt_regs", "Linux 5.15 or later" },
	[BPFCHECK_SYSCALL_TP] = { "syscall tracepoints", "CONFIG_FTRACE_SYSCALLS"
				  "=y and tracefs (mount -t tracefs nodev "
				  "/sys/kernel/tracing)" },
	[BPFCHECK_UPROBE] = { "uprobes", "CONFIG_UPROBE_EVENTS=y" },
};

const char *bpfcheck_feature_name(enum bpfcheck_feature f)
{
	return f < BPFCHECK_N_FEATURES ? features[f].name : "?";
}

const char *bpfcheck_feature_needs(enum bpfcheck_feature f)
{
	return f < BPFCHECK_N_FEATURES ? features[f].needs : "?";
}

static bool btf_has_all(const struct btf *btf, const char *const *names)
{
	for (; *names; names++)
		if (btf__find_by_name_kind(btf, *names, BTF_KIND_TYPEDEF) < 0)
			return false;
	return true;
}

static bool helper(enum bpf_func_id id)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, id, NULL) == 1;
}

void bpfcheck_probe(struct bpfcheck_features *out)
{
	static const char *const tp_btf[] = {
		"btf_trace_sched_process_fork", "btf_trace_sched_process_exec",
		"btf_trace_sched_process_exit", "btf_trace_inet_sock_set_state",
		NULL,
	};
	static const char *const sock[] = {
		"btf_trace_sock_recv_length", "btf_trace_sock_send_length",
		NULL,
	};
	struct btf *btf = btf__load_vmlinux_btf();
	bool *h = out->have;

	memset(out, 0, sizeof(*out));
	if (btf) {
		h[BPFCHECK_BTF] = true;
		h[BPFCHECK_TP_BTF] = btf_has_all(btf, tp_btf);
#if defined(__x86_64__)
		/* The socket hooks read the syscall's arguments from x86-64's
		 * saved registers. */
		h[BPFCHECK_SOCK_TP] = btf_has_all(btf, sock);
#endif
		btf__free(btf);
	}
	h[BPFCHECK_RINGBUF] = helper(BPF_FUNC_ringbuf_output);
	h[BPFCHECK_LOOP] = helper(BPF_FUNC_loop);
	h[BPFCHECK_TASK_STORAGE] = helper(BPF_FUNC_task_storage_get) &&
				   helper(BPF_FUNC_get_current_task_btf);
	h[BPFCHECK_TASK_PT_REGS] = helper(BPF_FUNC_task_pt_regs);
	h[BPFCHECK_SYSCALL_TP] =
		access("/sys/kernel/tracing/events/syscalls/sys_enter_read",
		       F_OK) == 0 ||
		access("/sys/kernel/debug/tracing/events/syscalls/sys_enter_read",
		       F_OK) == 0;
	h[BPFCHECK_UPROBE] =
		access("/sys/bus/event_source/devices/uprobe/type", F_OK) == 0;
}

bool bpfcheck_sock_path(const struct bpfcheck_features *f)
{
	return f->have[BPFCHECK_SOCK_TP] && f->have[BPFCHECK_TASK_PT_REGS];
}

enum bpfcheck_feature bpfcheck_missing(const struct bpfcheck_features *f,
				       bool sock_path)
{
	static const enum bpfcheck_feature common[] = {
		BPFCHECK_BTF, BPFCHECK_RINGBUF, BPFCHECK_LOOP,
		BPFCHECK_TASK_STORAGE, BPFCHECK_TP_BTF,
	};

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (!f->have[common[i]])
			return common[i];
	if (sock_path) {
		if (!f->have[BPFCHECK_SOCK_TP])
			return BPFCHECK_SOCK_TP;
		if (!f->have[BPFCHECK_TASK_PT_REGS])
			return BPFCHECK_TASK_PT_REGS;
	} else if (!f->have[BPFCHECK_SYSCALL_TP]) {
		return BPFCHECK_SYSCALL_TP;
	}
	return BPFCHECK_N_FEATURES;
}

int bpfcheck_parse_log(const char *log, struct bpfcheck_stats *out)
{
	const char *p;

	memset(out, 0, sizeof(*out));
	p = strstr(log, "stack depth ");
	if (p) {
		p += strlen("stack depth ");
		while (out->n_depths < sizeof(out->depths) / sizeof(out->depths[0])) {
			char *end;
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			out->depths[out->n_depths++] = v;
			if (*end != '+')
				break;
			p = end + 1;
		}
	}
	p = strstr(log, "processed ");
	while (p) {
		/* The last one: a log may hold more than one program's. */
		const char *next = strstr(p + 1, "processed ");
		unsigned v;

		if (sscanf(p, "processed %u insns", &v) == 1)
			out->insns = v;
		p = next;
	}
	return out->insns || out->n_depths ? 0 : -EINVAL;
}

/* Functions of a loaded program, by their first instruction. */
struct fn_graph {
	size_t start[64];
	unsigned n;
	/* calls[i] has bit j when function i calls (or references) j */
	unsigned long long calls[64];
};

static bool is_call(const struct bpf_insn *in)
{
	return in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL;
}

static bool is_func_ref(const struct bpf_insn *in)
{
	return in->code == (BPF_LD | BPF_IMM | BPF_DW) &&
	       in->src_reg == BPF_PSEUDO_FUNC;
}

static int fn_index(const struct fn_graph *g, size_t insn)
{
	for (unsigned i = 0; i < g->n; i++)
		if (g->start[i] == insn)
			return i;
	return -1;
}

static int fn_of(const struct fn_graph *g, size_t insn)
{
	int f = 0;

	for (unsigned i = 0; i < g->n; i++)
		if (g->start[i] <= insn)
			f = i;
	return f;
}

static int start_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The deepest chain from f: frame sizes summed, with memo (the call graph
 * has no cycles: the verifier refuses recursion). */
static unsigned chain(const struct fn_graph *g, const unsigned *depths,
		      unsigned f, unsigned *memo, unsigned *len, unsigned *lens,
		      unsigned guard)
{
	unsigned best = 0, best_len = 0, own;

	if (memo[f] != ~0u) {
		*len = lens[f];
		return memo[f];
	}
	if (guard > 64)
		return 0;
	for (unsigned j = 0; j < g->n; j++) {
		unsigned l, v;

		if (!(g->calls[f] & (1ull << j)))
			continue;
		v = chain(g, depths, j, memo, &l, lens, guard + 1);
		if (v > best) {
			best = v;
			best_len = l;
		}
	}
	own = depths[f] ? (depths[f] + 31) / 32 * 32 : 32;
	memo[f] = own + best;
	lens[f] = best_len + 1;
	*len = lens[f];
	return memo[f];
}

unsigned bpfcheck_stack_chain(const struct bpf_insn *insns, size_t n,
			      const unsigned *depths, unsigned n_depths,
			      unsigned *frames)
{
	struct fn_graph g = { .n = 1 };
	unsigned memo[64], lens[64], len = 0, total;

	if (frames)
		*frames = 0;
	if (!insns || !n)
		return 0;
	g.start[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t target;

		if (!is_call(&insns[i]) && !is_func_ref(&insns[i]))
			continue;
		target = i + insns[i].imm + 1;
		if (target >= n || fn_index(&g, target) >= 0)
			continue;
		if (g.n == sizeof(g.start) / sizeof(g.start[0]))
			return 0;
		g.start[g.n++] = target;
	}
	qsort(g.start, g.n, sizeof(g.start[0]), start_cmp);
	if (g.n != n_depths || g.start[0] != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int to;

		if (!is_call(&insns[i]) && !is_func_ref(&insns[i]))
			continue;
		to = fn_index(&g, i + insns[i].imm + 1);
		if (to >= 0)
			g.calls[fn_of(&g, i)] |= 1ull << to;
	}
	memset(memo, 0xff, sizeof(memo));
	total = chain(&g, depths, 0, memo, &len, lens, 0);
	if (frames)
		*frames = len;
	return total;
}

static bool stats_line(const char *line, size_t len)
{
	static const char *const prefixes[] = {
		"processed ", "verification time", "stack depth", "Func#",
		"-- ", "libbpf:", NULL,
	};

	if (!len)
		return true;
	for (const char *const *p = prefixes; *p; p++)
		if (len >= strlen(*p) && !strncmp(line, *p, strlen(*p)))
			return true;
	return false;
}

void bpfcheck_reason(const char *log, char *out, size_t outlen)
{
	const char *best = NULL, *p = log;
	size_t best_len = 0;

	if (!outlen)
		return;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (!stats_line(p, len)) {
			best = p;
			best_len = len;
		}
		p = nl ? nl + 1 : NULL;
	}
	if (!best) {
		snprintf(out, outlen, "no reason in the verifier log");
		return;
	}
	if (best_len >= outlen)
		best_len = outlen - 1;
	memcpy(out, best, best_len);
	out[best_len] = '\0';
}
