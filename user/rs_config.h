/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The library's configuration (struct rs_config of request_shadow.h): the
 * daemon's option names and value syntax, checked as they are set, so
 * that rs_shadower_new() only builds. Internal to the library.
 */
#ifndef SHADOW_RS_CONFIG_H
#define SHADOW_RS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "request_shadow.h"

/* The values an option given more than once keeps, in order. */
struct rs_strlist {
	char **v;
	size_t n, cap;
};

struct rs_config {
	double sample;          /* sample */
	char *sample_key;       /* sample-key; NULL: request */
	long timeout_ms;        /* timeout */
	unsigned max_inflight;  /* max-inflight: candidate calls at once, those
				 * cut off by the timeout included */
	unsigned threads;       /* replay-threads: workers */
	size_t max_queue;       /* max-queue: sampled calls waiting */
	double rate;            /* rate: candidate calls per second, 0: any */
	bool replay_unsafe;     /* replay-unsafe */
	bool noise_recheck;     /* noise-recheck */
	double float_tolerance; /* float-tolerance */
	struct rs_strlist ignore_header, ignore_json, unordered, redact,
		endpoint;
	char *store;            /* store; NULL: none */
	size_t max_records, examples, log_size, max_body;
	char *error;            /* the first bad rs_config_set(), or NULL */
};

#endif /* SHADOW_RS_CONFIG_H */
