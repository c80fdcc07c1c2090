/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An in-process JSON service for the library's tests, as primary or
 * candidate: what it answers, and how it misbehaves (fails, sleeps, hangs
 * behind a gate), is set per test. Free of Criterion, so that the threaded
 * tests run under ThreadSanitizer too (Criterion does not start under it).
 * Helpers that cannot go on print why and exit(1).
 */
#ifndef SHADOW_RS_SERVICE_H
#define SHADOW_RS_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "request_shadow.h"

struct service {
	const char *name;     /* the body's $.name */
	int status;           /* 0: 200 */
	const char *version;  /* X-Api-Version: "1" or anything else for "2" */
	double price;         /* $.items[1].price */
	bool volatile_ts;     /* $.meta.ts differs on every call */
	int fail;             /* -errno to return instead of answering */
	long sleep_ms;        /* before answering */
	int hang_first;       /* the first calls wait until the gate opens */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate;
	atomic_int calls, releases;
};

/* The defaults, then the fields given: SERVICE(.name = "bob"). */
#define SERVICE(...) { .name = "alice", .version = "1", .price = 2.5, \
		       .lock = PTHREAD_MUTEX_INITIALIZER, \
		       .cond = PTHREAD_COND_INITIALIZER, __VA_ARGS__ }

/* The backend of s (borrowed). */
struct rs_backend service_backend(struct service *s);
/* Its call and release, for backends that choose between services. */
int service_call(void *ctx, const struct rs_message *req,
		 struct rs_message *resp);
void service_release(void *ctx, struct rs_message *resp);
/* Opens the gate: hung calls answer. */
void service_open(struct service *s);

/* A shadower over p and c with the options given as name, value pairs,
 * NULL-ended. */
struct rs_shadower *service_shadower(struct service *p, struct service *c, ...);
/* One GET target through sh (with a Host and an Authorization header);
 * the primary's answer checked and released. */
void service_get(struct rs_shadower *sh, const char *target);
struct rs_stats service_stats(struct rs_shadower *sh);

/* Makes a fresh /tmp/<prefix>.XXXXXX into dir (len bytes). */
void service_tmpdir(char *dir, size_t len, const char *prefix);
/* Removes dir and everything in it. */
void service_rmdir(const char *dir);

#endif /* SHADOW_RS_SERVICE_H */
