// SPDX-License-Identifier: BSD-2-Clause
/*
 * The price every process on the host pays: the median over 7 runs of 2M
 * getppid() calls, in ns per call (syscall tracepoints in use send every
 * syscall through the slow entry and exit path), and over 7 runs of 200k
 * round trips of 64 bytes over a socketpair, a send() and a recv() each,
 * in ns per round trip (the socket hooks run on every socket read and
 * write on the host, and must return at once in a process that is no
 * target). make bench runs it with shadowd detached and attached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALLS 2000000
#define TRIPS 200000
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
	double ns[RUNS], sock[RUNS];
	char buf[64] = { 0 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("syscall_bench: socketpair");
		return 1;
	}
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();

		for (int i = 0; i < CALLS; i++)
			syscall(SYS_getppid);
		ns[r] = (now_ns() - t0) / CALLS;
		t0 = now_ns();
		for (int i = 0; i < TRIPS; i++)
			if (send(sv[0], buf, sizeof(buf), 0) != sizeof(buf) ||
			    recv(sv[1], buf, sizeof(buf), 0) != sizeof(buf))
				return 1;
		sock[r] = (now_ns() - t0) / TRIPS;
	}
	qsort(ns, RUNS, sizeof(ns[0]), cmp);
	qsort(sock, RUNS, sizeof(sock[0]), cmp);
	printf("syscall_ns: %.1f\nsocket_round_trip_ns: %.1f\n", ns[RUNS / 2],
	       sock[RUNS / 2]);
	return 0;
}
