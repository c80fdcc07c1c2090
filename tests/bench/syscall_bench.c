// SPDX-License-Identifier: BSD-2-Clause
/*
 * The price every process on the host pays per syscall: the median over
 * 7 runs of 2M getppid() calls, in ns per call. make bench runs it with
 * shadowd detached and attached; the difference is what the hooks cost a
 * syscall that has nothing to do with sockets (syscall tracepoints in use
 * send every syscall through the slow entry and exit path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALLS 2000000
#define RUNS 7

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	double ns[RUNS];

	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();

		for (int i = 0; i < CALLS; i++)
			syscall(SYS_getppid);
		ns[r] = (now_ns() - t0) / CALLS;
	}
	qsort(ns, RUNS, sizeof(ns[0]), cmp);
	printf("syscall_ns: %.1f\n", ns[RUNS / 2]);
	return 0;
}
