/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Live capture: loads and attaches bpf/capture.bpf.c, keeps the set of
 * target processes (--pid and descendants, --exe), picks up connections
 * that were open before attach, and turns ring-buffer samples into the
 * event stream of include/shadow_event.h (sendfile resolved into data).
 *
 * HTTPS: every libssl.so* a target maps (found in /proc/PID/maps at open
 * and again from capture_poll) gets uprobes on SSL_read, SSL_write, their
 * _ex forms and SSL_do_handshake; the plaintext arrives as ordinary DATA
 * records. TLS no hooked library decrypts is counted, never emitted.
 */
#ifndef SHADOW_CAPTURE_H
#define SHADOW_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bpfcheck.h"

struct shadow_event;
struct capture;

/* Receives every record in order: ev and payload (ev->len bytes) are
 * borrowed for the call only. */
typedef void (*capture_event_fn)(void *ctx, const struct shadow_event *ev,
				 const void *payload);

struct capture_config {
	const pid_t *pids;
	size_t n_pids;
	const char *const *exes;
	size_t n_exes;
	const uint16_t *ports;
	size_t n_ports;
	size_t ring_bytes;  /* power of two; 0 = 16 MiB */
	bool verbose;       /* libbpf's messages and the verifier log */
	/* Sampling decided in the kernel: the key (0: none, every response
	 * is copied) and the bound below which (XXH64(key) >> 11) is
	 * sampled (1 << 53: all). */
	uint32_t sample_key; /* enum shadow_sample_key */
	uint64_t sample_below;
};

struct capture_stats {
	uint64_t lost;          /* ring buffer full: records dropped */
	uint64_t accepted;      /* connections that became tracked */
	uint64_t active_full;   /* syscalls missed: in-flight table full */
	uint64_t truncated;     /* syscalls too long to capture whole */
	uint64_t midstream;     /* connections picked up at attach */
	uint64_t sendfile_unavailable; /* sendfile bytes not readable */
	uint64_t tls_undecoded; /* TLS connections nothing here decrypted */
	uint64_t tls_unlinked;  /* SSL reads/writes lost: socket unknown */
	uint64_t unhooked;      /* socket I/O by syscalls we cannot read */
	uint64_t uncopied;      /* unsampled responses the kernel passed over */
	uint64_t woken;         /* wakeups the programs forced (a filling ring) */
	uint64_t tls_attach_failed; /* libssl files that could not be hooked */
	unsigned tls_libs;      /* libssl files hooked */
	uint64_t records;       /* records delivered */
	size_t ring_used;       /* bytes waiting in the ring buffer now */
	size_t ring_size;
	unsigned targets;       /* processes traced now */
	unsigned programs;      /* programs attached */
	bool sock_hooks;        /* data from sock tracepoints, not syscalls */
};

/* Checks privileges and targets, loads, attaches, fills the target set
 * and registers connections open before attach (announced through fn as
 * OPEN records flagged SHADOW_F_MIDSTREAM). fn/ctx are borrowed for the
 * capture's lifetime. Returns 0, or -errno with a one-line reason that
 * says what to do in err. */
int capture_open(const struct capture_config *cfg, capture_event_fn fn,
		 void *ctx, struct capture **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* An fd that becomes readable when the kernel forces a wakeup (ring
 * buffer filling); callers also call capture_poll() on a short timer,
 * since wakeups are batched. */
int capture_fd(const struct capture *c);
/* Delivers every record waiting, then a LOST record if the ring buffer
 * dropped any since the last call; at most once a second also hooks
 * libssl files that targets mapped since. Returns records delivered or
 * -errno. */
int capture_poll(struct capture *c);
/* With sampling decided in the kernel (sample_key set): from now on, the
 * sampled requests the daemon would shed anyway for reason `shed` (enum
 * shadow_shed; SHADOW_SHED_NONE stops it) are passed over in the kernel
 * like unsampled ones, their REQLINE records flagged SHADOW_F_SHED_*. Only
 * bodiless heads read whole are passed over; the rest is copied as usual.
 * A store into the programs' memory: cheap enough for every poll. */
void capture_set_shed(struct capture *c, unsigned shed);
/* Reads the counters (sums the kernel's per-CPU ones). */
void capture_get_stats(struct capture *c, struct capture_stats *out);
/* Whether SHADOWD_SYSCALL_HOOKS asks for the syscall-tracepoint data hooks
 * (set, and not "0") instead of the socket tracepoints. */
bool capture_syscall_hooks_forced(void);
/* One program, as capture_check() found it. */
struct capture_prog_report {
	char name[64];
	bool loaded;
	unsigned insns;   /* instructions the verifier processed */
	unsigned stack;   /* bytes of stack on its deepest chain of calls */
	unsigned frames;  /* functions on that chain */
	char reason[256]; /* refused: why, in the verifier's words */
	char depths[128]; /* loaded: each function's own stack, "112+72+..." */
	char *log;        /* refused, with cfg->verbose: its whole log */
};

struct capture_report {
	struct bpfcheck_features features;
	bool sock_hooks;  /* the data path: socket or syscall tracepoints */
	struct capture_prog_report progs[64];
	unsigned n_progs, loaded;
	unsigned max_insns, max_stack; /* over the loaded programs */
};

/* Loads every program the data path chosen for this kernel needs (and
 * the TLS ones), in the configuration that makes them largest (sampling
 * decided in the kernel at a fractional rate, ports filtered), with the
 * verifier's statistics, and attaches nothing. Needs the privileges of
 * capture_open(). Fills out; returns 0 when every program loaded, -EPERM
 * when one was refused, or another -errno with a one-line reason in err
 * when nothing could be tried (err also says which feature is missing).
 * Free out with capture_report_clean(). */
int capture_check(const struct capture_config *cfg,
		  struct capture_report *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Prints a report for people: the kernel, the features probed and the
 * path chosen, then (with progs) one line per program and a summary line
 * "N programs loaded (max Nk insns, N B stack)[, N refused]"; verbose
 * adds each function's own stack. */
void capture_report_print(FILE *out, const struct capture_report *r,
			  bool progs, bool verbose);
/* Frees what a report owns (the logs); NULL ok. */
void capture_report_clean(struct capture_report *r);
/* Detaches and frees; NULL ok. */
void capture_close(struct capture *c);

#endif /* SHADOW_CAPTURE_H */
