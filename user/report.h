/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTML report of shadow-dump report --html. */
#ifndef SHADOW_REPORT_H
#define SHADOW_REPORT_H

#include <stdio.h>

struct store;

/*
 * Writes the report for store s (borrowed; store_path is only shown) to f:
 * divergence rate and latency per endpoint as SVG charts, the top
 * signatures with an example diff each, the capture and replay losses.
 * Returns 0, or -EIO when the store cannot be read (nothing is written
 * then). Errors writing f are the caller's to check (ferror).
 */
int report_write(struct store *s, const char *store_path, FILE *f)
	__attribute__((warn_unused_result));

#endif /* SHADOW_REPORT_H */
