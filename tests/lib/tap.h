/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A test program without Criterion, for the threaded cases that run under
 * ThreadSanitizer (Criterion does not start under it, Snaipe/Criterion#274).
 * It speaks TAP, to stdout and to the file of --tap=FILE, as tests/run.sh
 * asks Criterion binaries to; other arguments are ignored.
 *
 *     static void a_case(void) { EXPECT(1 + 1 == 2, "arithmetic"); }
 *     int main(int argc, char **argv)
 *     {
 *             static const struct tap_case cases[] = { TAP_CASE(a_case) };
 *             return tap_main(argc, argv, cases, 1);
 *     }
 */
#ifndef SHADOW_TAP_H
#define SHADOW_TAP_H

#include <stddef.h>

struct tap_case {
	const char *name;
	void (*fn)(void);
};

#define TAP_CASE(f) { #f, f }

/* Fails the current case with a message (the case goes on). */
#define EXPECT(cond, ...) \
	do { \
		if (!(cond)) \
			tap_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

void tap_fail(const char *file, int line, const char *what, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));

/* Runs the n cases in order, one TAP line each. Returns main()'s exit
 * status: 0 if none failed, 1 otherwise. */
int tap_main(int argc, char **argv, const struct tap_case *cases, size_t n);

#endif /* SHADOW_TAP_H */
