/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helpers for the HTTP/1 stage: run capture bytes through
 * conn_table + http1 (optionally cutting one record in two at a given
 * stream byte), collect the exchanges, describe them canonically.
 */
#ifndef SHADOW_FIXTURE_H
#define SHADOW_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

struct exchange;

struct fixture_result {
	struct exchange **x; /* owned */
	size_t n, cap;
	struct http1_stats st;
};

/* Makes a fresh directory /tmp/<prefix>.XXXXXX for a test's files into
 * dir (room for 64 bytes) and dbpath (128) its "shadow.db"; asserts. */
void fixture_tmpdir(char *dir, char *dbpath, const char *prefix);
/* Removes dir and everything in it (complains on stderr if it cannot). */
void fixture_rmdir(const char *dir);
/* A suite's .init and .fini: a fresh fixture_dir, named after the test
 * program, with fixture_db its "shadow.db" path; removed afterwards. */
extern char fixture_dir[64], fixture_db[128];
void fixture_dir_init(void);
void fixture_dir_fini(void);
/* Opens a store for writing at path with the default bounds; asserts. */
struct store *fixture_store_open(const char *path);
/* Reads tests/data/<name> (relative to the repository root, or to
 * $SHADOW_TEST_DATA) into a malloc'd buffer. Returns 0 or -errno. */
int fixture_load(const char *name, uint8_t **buf, size_t *len)
	__attribute__((warn_unused_result));
/* Feeds the capture file image cap[0..len) (borrowed) through a
 * conn_table and an http1 built with cfg (NULL: defaults). If split_at is
 * nonzero, the data record holding payload byte number split_at (counted
 * over all data records in file order) is fed as two records cut before
 * that byte. Returns 0 or -errno; res is filled (fixture_result_clean). */
int fixture_run(const uint8_t *cap, size_t len, const struct http1_config *cfg,
		size_t split_at, struct fixture_result *res)
	__attribute__((warn_unused_result));
/* Total payload bytes of the data records of a capture image. */
size_t fixture_payload_bytes(const uint8_t *cap, size_t len);
/* Whether a and b are equal in every field fixture_describe() shows. */
bool fixture_equal(const struct exchange *a, const struct exchange *b);
/* A malloc'd canonical text of everything in x (caller frees). */
char *fixture_describe(const struct exchange *x);
/* Collector usable as an http1_exchange_cb with a fixture_result ctx. */
void fixture_collect(void *ctx, struct exchange *x);
void fixture_result_clean(struct fixture_result *res);

#endif /* SHADOW_FIXTURE_H */
