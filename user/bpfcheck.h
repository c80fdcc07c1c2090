/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the running kernel offers the capture, found by probing (BTF, the
 * helpers the programs call, the tracepoints they hook), never by version
 * strings; and what the verifier said of a loaded program: instructions
 * processed and the stack of its deepest call chain. shadowd --check, the
 * loader and the budget test all read these.
 */
#ifndef SHADOW_BPFCHECK_H
#define SHADOW_BPFCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct bpf_insn;

/* The budget every program keeps, well under the verifier's own limits
 * (512 bytes of stack, 1M instructions processed), so that a point
 * release's verifier change does not take the capture down. */
#define BPFCHECK_STACK_BUDGET 448u
#define BPFCHECK_INSNS_BUDGET 500000u

enum bpfcheck_feature {
	BPFCHECK_BTF,           /* /sys/kernel/btf/vmlinux */
	BPFCHECK_RINGBUF,       /* BPF ring buffer (bpf_ringbuf_output) */
	BPFCHECK_LOOP,          /* bpf_loop() */
	BPFCHECK_TASK_STORAGE,  /* task local storage, bpf_get_current_task_btf */
	BPFCHECK_TP_BTF,        /* tp_btf on sched_process_* and
				 * inet_sock_set_state */
	BPFCHECK_SOCK_TP,       /* tp_btf on sock_recv_length/sock_send_length
				   and inet_sock_set_state, x86-64 */
	BPFCHECK_TASK_PT_REGS,  /* bpf_task_pt_regs(), for the socket hooks */
	BPFCHECK_SYSCALL_TP,    /* syscalls/sys_enter_* tracepoints */
	BPFCHECK_UPROBE,        /* uprobes (the TLS hooks) */
	BPFCHECK_N_FEATURES,
};

struct bpfcheck_features {
	bool have[BPFCHECK_N_FEATURES];
};

/* The name a feature is printed by ("bpf_loop"), and what a kernel that
 * lacks it needs ("Linux 5.17 or later"). Static strings. */
const char *bpfcheck_feature_name(enum bpfcheck_feature f);
const char *bpfcheck_feature_needs(enum bpfcheck_feature f);

/* Probes the running kernel (needs the privileges a BPF load needs for
 * the helper probes; without them those read as absent). */
void bpfcheck_probe(struct bpfcheck_features *out);

/* Whether the data can come from the socket tracepoints (else from the
 * syscall ones), given what the kernel has. */
bool bpfcheck_sock_path(const struct bpfcheck_features *f);

/* The first feature both data paths need that f lacks, with the path's
 * own (socket or syscall tracepoints); BPFCHECK_N_FEATURES if none. */
enum bpfcheck_feature bpfcheck_missing(const struct bpfcheck_features *f,
				       bool sock_path);

/* What a verifier log written at BPF_LOG_STATS says. */
struct bpfcheck_stats {
	unsigned insns;           /* instructions processed; 0: not found */
	unsigned n_depths;        /* functions the program was made of */
	unsigned depths[64];      /* each one's own stack, in insn order */
};

/* Parses the "stack depth A+B+..." and "processed N insns" lines of log.
 * Returns 0, or -EINVAL when the log has neither. */
int bpfcheck_parse_log(const char *log, struct bpfcheck_stats *out)
	__attribute__((warn_unused_result));

/* The stack the verifier adds up for a program: the largest sum of frame
 * sizes (each rounded up to 32 bytes, as the interpreter's) along any
 * chain of calls from the main function, counting a callback (bpf_loop's)
 * as called where it is referenced. insns as loaded (subprograms
 * appended); depths as parsed, one per function in insn order. Returns
 * the bytes, and the chain's length in *frames (NULL ok); 0 when the
 * depths do not match the functions found. */
unsigned bpfcheck_stack_chain(const struct bpf_insn *insns, size_t n,
			      const unsigned *depths, unsigned n_depths,
			      unsigned *frames);

/* The line of a refused program's log that says why (the last one that
 * is no statistics line), copied to out (NUL-terminated). */
void bpfcheck_reason(const char *log, char *out, size_t outlen);

#endif /* SHADOW_BPFCHECK_H */
