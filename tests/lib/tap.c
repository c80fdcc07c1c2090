// SPDX-License-Identifier: BSD-2-Clause
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static FILE *tap;
static int failures;
static const char *current;

void tap_fail(const char *file, int line, const char *what, const char *fmt,
	      ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: %s: %s: ", file, line, current, what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

static void report(int n, const char *name, int before)
{
	const char *verdict = failures == before ? "ok" : "not ok";

	printf("%s %d - %s\n", verdict, n, name);
	fflush(stdout);
	if (tap)
		fprintf(tap, "%s %d - %s\n", verdict, n, name);
}

int tap_main(int argc, char **argv, const struct tap_case *cases, size_t n)
{
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--tap=", 6) && !(tap = fopen(argv[i] + 6, "w")))
			return 1;
	printf("1..%zu\n", n);
	if (tap)
		fprintf(tap, "1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int before = failures;

		current = cases[i].name;
		cases[i].fn();
		report((int)i + 1, cases[i].name, before);
	}
	if (tap)
		fclose(tap);
	return failures ? 1 : 0;
}
