// SPDX-License-Identifier: BSD-2-Clause
/* The verifier's statistics as shadowd --check and the budget test read
 * them: its log lines, and the stack of a program's deepest call chain. */
#include <criterion/criterion.h>

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>

#include "bpfcheck.h"

static const char stats_log[] =
	"Func#2 ('request_decide') is safe for any args that match its prototype\n"
	"verification time 4121 usec\n"
	"stack depth 112+24+128+72+0\n"
	"processed 13922 insns (limit 1000000) max_states_per_insn 6 "
	"total_states 764 peak_states 825 mark_read 0\n";

Test(bpfcheck, parses_insns_and_every_functions_stack)
{
	struct bpfcheck_stats st;

	cr_assert_eq(bpfcheck_parse_log(stats_log, &st), 0);
	cr_assert_eq(st.insns, 13922);
	cr_assert_eq(st.n_depths, 5);
	cr_assert_eq(st.depths[0], 112);
	cr_assert_eq(st.depths[2], 128);
	cr_assert_eq(st.depths[4], 0);
}

Test(bpfcheck, a_log_without_statistics_is_an_error)
{
	struct bpfcheck_stats st;

	cr_assert_eq(bpfcheck_parse_log("R1 invalid mem access 'scalar'\n", &st),
		     -EINVAL);
}

Test(bpfcheck, the_reason_is_the_last_line_that_is_no_statistics)
{
	char why[128];

	bpfcheck_reason("Func#2 ('x') is safe for any args\n"
			"combined stack size of 2 calls is 528. Too large\n"
			"verification time 12 usec\nstack depth 400+128\n"
			"processed 202571 insns (limit 1000000)\n", why,
			sizeof(why));
	cr_assert_str_eq(why, "combined stack size of 2 calls is 528. Too large");
	bpfcheck_reason("", why, sizeof(why));
	cr_assert_str_eq(why, "no reason in the verifier log");
	/* Cut to the buffer, still NUL-terminated. */
	bpfcheck_reason("a very long reason indeed\n", why, 7);
	cr_assert_str_eq(why, "a very");
}

/* A call to the function `rel` instructions after the next one. */
#define CALL(rel) { .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL, \
		    .imm = (rel) }
/* A callback's address (bpf_loop's argument): two instructions. */
#define FUNC_REF(rel) { .code = BPF_LD | BPF_IMM | BPF_DW,                 \
			.src_reg = BPF_PSEUDO_FUNC, .imm = (rel) }, { 0 }
#define EXIT { .code = BPF_JMP | BPF_EXIT }
#define NOP { .code = BPF_ALU64 | BPF_MOV | BPF_K }

/* main (0-3) calls f (4-7) and g (8-9); f references callback h (10-11). */
static const struct bpf_insn prog[] = {
	/* 0 */ CALL(3),      /* -> 4 */
	/* 1 */ CALL(6),      /* -> 8 */
	/* 2 */ NOP,
	/* 3 */ EXIT,
	/* 4 */ FUNC_REF(5),  /* -> 10 */
	/* 6 */ NOP,
	/* 7 */ EXIT,
	/* 8 */ NOP,
	/* 9 */ EXIT,
	/* 10 */ NOP,
	/* 11 */ EXIT,
};

Test(bpfcheck, stack_is_the_deepest_chain_rounded_per_frame)
{
	/* main 100 (-> 128), f 40 (-> 64), g 200 (-> 224), h 8 (-> 32):
	 * main+f+h = 224, main+g = 352. */
	unsigned depths[] = { 100, 40, 200, 8 }, frames;

	cr_assert_eq(bpfcheck_stack_chain(prog, sizeof(prog) / sizeof(*prog),
					  depths, 4, &frames), 352);
	cr_assert_eq(frames, 2);
	/* Now the callback's side is the deep one: main+f+h. */
	depths[2] = 0;
	depths[3] = 300;
	cr_assert_eq(bpfcheck_stack_chain(prog, sizeof(prog) / sizeof(*prog),
					  depths, 4, &frames), 128 + 64 + 320);
	cr_assert_eq(frames, 3);
}

Test(bpfcheck, depths_that_do_not_match_the_functions_give_zero)
{
	unsigned depths[] = { 100, 40, 200 };

	cr_assert_eq(bpfcheck_stack_chain(prog, sizeof(prog) / sizeof(*prog),
					  depths, 3, NULL), 0);
}

Test(bpfcheck, every_missing_feature_is_named_with_what_it_needs)
{
	struct bpfcheck_features f;

	memset(&f, 0, sizeof(f));
	cr_assert_eq(bpfcheck_missing(&f, false), BPFCHECK_BTF);
	cr_assert(strstr(bpfcheck_feature_needs(BPFCHECK_BTF),
			 "CONFIG_DEBUG_INFO_BTF"));
	for (int i = 0; i < BPFCHECK_N_FEATURES; i++)
		f.have[i] = true;
	cr_assert_eq(bpfcheck_missing(&f, true), BPFCHECK_N_FEATURES);
	f.have[BPFCHECK_LOOP] = false;
	cr_assert_eq(bpfcheck_missing(&f, true), BPFCHECK_LOOP);
	f.have[BPFCHECK_LOOP] = true;
	f.have[BPFCHECK_SOCK_TP] = false;
	cr_assert(!bpfcheck_sock_path(&f));
	cr_assert_eq(bpfcheck_missing(&f, false), BPFCHECK_N_FEATURES);
	cr_assert_eq(bpfcheck_missing(&f, true), BPFCHECK_SOCK_TP);
	f.have[BPFCHECK_SYSCALL_TP] = false;
	cr_assert_eq(bpfcheck_missing(&f, false), BPFCHECK_SYSCALL_TP);
}
