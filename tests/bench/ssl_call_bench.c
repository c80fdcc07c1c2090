// SPDX-License-Identifier: BSD-2-Clause
/*
 * What an SSL call costs a process while shadowd hooks libssl: the best of
 * 5 loops of 200k SSL_write() calls on an unconnected SSL object (each
 * fails at once, inside libssl: the call's own cost, plus the traps into
 * the kernel of its uprobes if the process carries the hooks). Run alone,
 * it is an unrelated process (the hooks go into targets only); with
 * --wait it prints "ready" once libssl is loaded and waits for a line on
 * stdin before measuring, so that shadowd can make it a target first.
 * libssl through dlopen: nothing links it at build time.
 * Prints `ssl_write_ns: N`.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CALLS 200000

int main(int argc, char **argv)
{
	void *h = dlopen("libssl.so.3", RTLD_NOW);
	const void *(*method)(void);
	void *(*ctx_new)(const void *);
	void *(*ssl_new)(void *);
	int (*ssl_write)(void *, const void *, int);
	void *ctx, *ssl;
	double best = 1e30;

	if (!h)
		h = dlopen("libssl.so.1.1", RTLD_NOW);
	if (!h) {
		fprintf(stderr, "ssl_call_bench: no libssl: %s\n", dlerror());
		return 1;
	}
	method = (const void *(*)(void))dlsym(h, "TLS_client_method");
	ctx_new = (void *(*)(const void *))dlsym(h, "SSL_CTX_new");
	ssl_new = (void *(*)(void *))dlsym(h, "SSL_new");
	ssl_write = (int (*)(void *, const void *, int))dlsym(h, "SSL_write");
	if (!method || !ctx_new || !ssl_new || !ssl_write)
		return 1;
	ctx = ctx_new(method());
	ssl = ctx ? ssl_new(ctx) : NULL;
	if (!ssl)
		return 1;
	if (argc > 1 && strcmp(argv[1], "--wait") == 0) {
		char line[16];

		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	for (int r = 0; r < 5; r++) {
		struct timespec t0, t1;
		double ns;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < CALLS; i++)
			ssl_write(ssl, "x", 1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		      (double)(t1.tv_nsec - t0.tv_nsec)) / CALLS;
		if (ns < best)
			best = ns;
	}
	printf("ssl_write_ns: %.1f\n", best);
	return 0;
}
