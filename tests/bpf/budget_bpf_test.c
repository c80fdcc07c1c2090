// SPDX-License-Identifier: BSD-2-Clause
/*
 * Tier 2, the verifier's budget: every program the data path chosen here
 * needs (the socket tracepoints', or the syscall ones' under
 * SHADOWD_SYSCALL_HOOKS) loads on this kernel, in the configuration that
 * makes them largest, and keeps headroom under the verifier's limits: at
 * most BPFCHECK_STACK_BUDGET bytes of stack along its deepest chain of
 * calls and BPFCHECK_INSNS_BUDGET instructions processed. A refusal or a
 * program over the budget fails with the figures of every program.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpfcheck.h"
#include "capture.h"

static void require_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("BPF tests need root (CAP_BPF, CAP_PERFMON)");
}

/* Every program's figures, for the failure message and the log. */
static void figures(const struct capture_report *r, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < r->n_progs && o < n; i++) {
		const struct capture_prog_report *p = &r->progs[i];

		if (p->loaded)
			o += snprintf(out + o, n - o, "\n  %-28s %7u insns %4u B "
				      "stack (%s)", p->name, p->insns, p->stack,
				      p->depths);
		else
			o += snprintf(out + o, n - o, "\n  %-28s refused: %s",
				      p->name, p->reason);
	}
}

/* Loads every program of the path and holds each to the budget. */
static void check_budget(void)
{
	struct capture_config cfg = { 0 };
	struct capture_report r;
	static char text[16384];
	char err[512] = "";
	int rc;

	rc = capture_check(&cfg, &r, err, sizeof(err));
	figures(&r, text, sizeof(text));
	cr_assert(rc == 0 || rc == -EPERM, "capture_check: %s", err);
	cr_log_info("%s data hooks, %u programs:%s",
		    r.sock_hooks ? "socket" : "syscall", r.n_progs, text);
	cr_assert_eq(r.loaded, r.n_progs, "%u of %u programs refused:%s",
		     r.n_progs - r.loaded, r.n_progs, text);
	cr_assert_eq(r.sock_hooks, bpfcheck_sock_path(&r.features) &&
				   !capture_syscall_hooks_forced(),
		     "the data path is not the one the probes choose");
	for (unsigned i = 0; i < r.n_progs; i++) {
		const struct capture_prog_report *p = &r.progs[i];

		cr_assert_gt(p->insns, 0, "%s: no statistics in its log", p->name);
		cr_assert_gt(p->stack, 0, "%s: its stack was not found", p->name);
		cr_assert_leq(p->stack, BPFCHECK_STACK_BUDGET,
			      "%s: %u B of stack along its deepest calls, over "
			      "the budget of %u:%s", p->name, p->stack,
			      BPFCHECK_STACK_BUDGET, text);
		cr_assert_leq(p->insns, BPFCHECK_INSNS_BUDGET,
			      "%s: %u instructions processed, over the budget "
			      "of %u:%s", p->name, p->insns,
			      BPFCHECK_INSNS_BUDGET, text);
	}
	capture_report_clean(&r);
}

Test(budget, every_program_loads_within_the_budget)
{
	require_root();
	check_budget();
}

/* make bench loads them with the hooks' regions timed (SHADOWD_PROFILE):
 * larger programs, the same budget. */
Test(budget, profiled_programs_load_within_the_budget)
{
	require_root();
	cr_assert_eq(setenv("SHADOWD_PROFILE", "1", 1), 0);
	check_budget();
}

Test(budget, every_program_of_the_path_is_checked)
{
	static const char *const sock[] = {
		"handle_sock_recv", "handle_sock_send",
	};
	static const char *const sys[] = {
		"handle_sys_exit_read", "handle_sys_exit_writev",
		"handle_sys_exit_accept4", "handle_sys_exit_sendfile64",
	};
	static const char *const both[] = {
		"handle_tcp_set_state", "handle_ssl_read", "handle_ssl_return",
		"handle_sched_process_fork", "handle_sched_process_exec",
		"handle_sched_process_exit",
	};
	struct capture_config cfg = { 0 };
	struct capture_report r;
	char err[512] = "";
	const char *const *path;
	size_t n_path;
	int rc;

	require_root();
	rc = capture_check(&cfg, &r, err, sizeof(err));
	cr_assert(rc == 0 || rc == -EPERM, "capture_check: %s", err);
	path = r.sock_hooks ? sock : sys;
	n_path = r.sock_hooks ? sizeof(sock) / sizeof(*sock) :
				sizeof(sys) / sizeof(*sys);
	for (size_t i = 0; i < n_path + sizeof(both) / sizeof(*both); i++) {
		const char *name = i < n_path ? path[i] : both[i - n_path];
		bool found = false;

		for (unsigned j = 0; j < r.n_progs; j++)
			found |= !strcmp(r.progs[j].name, name);
		cr_assert(found, "%s was not loaded by the check", name);
	}
	/* And none of the other path's. */
	for (unsigned j = 0; j < r.n_progs; j++)
		cr_assert(r.sock_hooks ? strncmp(r.progs[j].name, "handle_sys_", 11)
				       : strncmp(r.progs[j].name, "handle_sock_", 12),
			  "%s belongs to the other data path", r.progs[j].name);
	capture_report_clean(&r);
}
