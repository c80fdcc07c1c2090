// SPDX-License-Identifier: BSD-2-Clause
/*
 * The divergence store and the real shadow-dump binary on stores generated
 * here. shadow-dump is found as $SHADOW_DUMP or ./shadow-dump (make builds
 * it before the unit tests and runs them from the top directory).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diff.h"
#include "fixture.h"
#include "store.h"
#include "storegen.h"
#include "util/hist.h"

/* For checks inside long loops: fails like cr_assert, but sends nothing to
 * criterion when it holds (--full-stats would report every one). */
#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			cr_assert_fail(__VA_ARGS__); \
	} while (0)

static char dir[64];
static char db[128];

static void setup(void)
{
	fixture_tmpdir(dir, db, "store_test");
}

static void teardown(void)
{
	fixture_rmdir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);
TestSuite(dump, .init = setup, .fini = teardown);

static struct store *open_store(size_t max_records, size_t examples,
				const char *const *redact, size_t n_redact)
{
	struct store_config cfg = {
		.path = db, .max_records = max_records, .examples = examples,
		.redact = redact, .n_redact = n_redact,
	};
	struct store *s = NULL;
	char err[256] = "";

	cr_assert_eq(store_open(&cfg, &s, err, sizeof(err)), 0, "%s", err);
	return s;
}

static struct store *open_reader(void)
{
	struct store *s = NULL;
	char err[256] = "";

	cr_assert_eq(store_open_reader(db, &s, err, sizeof(err)), 0, "%s", err);
	return s;
}

static void put(struct store *s, const char *ep, const char *path, const char *hdr,
		bool status)
{
	json_t *r = storegen_record(ep, path, hdr, status, "s3cr3t-T0KEN");

	CHECK(r, "storegen_record");
	CHECK(store_put(s, r) == 0, "store_put");
}

static int count_cb(json_t *rec, void *arg)
{
	(void)rec;
	(*(size_t *)arg)++;
	return 0;
}

static size_t count_records(struct store *s, const struct store_filter *f)
{
	size_t n = 0;

	cr_assert_eq(store_each_record(s, f, count_cb, &n), 0);
	return n;
}

static json_t *group_of(json_t *groups, const char *endpoint)
{
	json_t *g;
	size_t i;

	json_array_foreach(groups, i, g)
		if (!strcmp(json_string_value(json_object_get(g, "endpoint")), endpoint))
			return g;
	return NULL;
}

static int64_t stat_int(json_t *stats, const char *endpoint, const char *key)
{
	json_t *e;
	size_t i;

	if (!endpoint)
		return json_integer_value(json_object_get(json_object_get(stats, "totals"), key));
	json_array_foreach(json_object_get(stats, "endpoints"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "endpoint")), endpoint))
			return json_integer_value(json_object_get(e, key));
	return -1;
}

/* ---- running the real shadow-dump ---- */

struct run {
	int code;
	char *out, *err;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static const char *dump_path(void)
{
	const char *p = getenv("SHADOW_DUMP");

	p = p ? p : "./shadow-dump";
	cr_assert_eq(access(p, X_OK), 0, "%s not built (make shadow-dump)", p);
	return p;
}

/* Runs shadow-dump with the NULL-terminated arguments; env NO_COLOR set. */
static struct run dump_run(const char *first, ...)
{
	const char *argv[32];
	char outp[160], errp[160];
	struct run r = { 0 };
	va_list ap;
	int n = 0, st;
	pid_t pid;

	argv[n++] = dump_path();
	va_start(ap, first);
	for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/out", dir);
	snprintf(errp, sizeof(errp), "%s/err", dir);
	/* no cr_assert in a child: it would talk to criterion's runner */
	pid = fork();
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		setenv("NO_COLOR", "1", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "shadow-dump died by signal %d", WTERMSIG(st));
	r.code = WEXITSTATUS(st);
	r.out = slurp(outp, NULL);
	r.err = slurp(errp, NULL);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Exit 1 with exactly one line on stderr, nothing on stdout. */
static void assert_one_line_failure(struct run *r, const char *what)
{
	cr_assert_eq(r->code, 1, "%s: exit %d (%s)", what, r->code, r->err);
	cr_assert_eq(count_lines(r->err), 1, "%s: stderr [%s]", what, r->err);
	cr_assert_str_eq(r->out, "", "%s: stdout [%s]", what, r->out);
	cr_assert(strncmp(r->err, "shadow-dump: ", 13) == 0, "%s", r->err);
}

/* A store with two endpoints, counters, latencies, errors and fields. */
static void make_sample_store(void)
{
	struct store *s = open_store(0, 0, NULL, 0);

	put(s, "GET /users/{id}", "$.name", NULL, false);
	put(s, "GET /users/{id}", "$.name", NULL, false);
	put(s, "GET /orders", NULL, "X-Api-Version", true);
	cr_assert_eq(store_count(s, "GET /users/{id}", STORE_CAPTURED, 1000), 0);
	cr_assert_eq(store_count(s, "GET /users/{id}", STORE_SAMPLED, 500), 0);
	cr_assert_eq(store_count(s, "GET /users/{id}", STORE_REPLAYED, 400), 0);
	cr_assert_eq(store_count(s, "GET /users/{id}", STORE_DIVERGED, 2), 0);
	cr_assert_eq(store_count(s, "GET /users/{id}", STORE_DIVERGED_BODY, 2), 0);
	cr_assert_eq(store_count(s, "GET /orders", STORE_REPLAYED, 100), 0);
	cr_assert_eq(store_count(s, "GET /orders", STORE_DIVERGED, 1), 0);
	cr_assert_eq(store_count(s, "GET /orders", STORE_DIVERGED_STATUS, 1), 0);
	cr_assert_eq(store_count(s, "GET /orders", STORE_DIVERGED_HEADERS, 1), 0);
	for (int i = 1; i <= 100; i++)
		CHECK(store_latency(s, "GET /users/{id}", i, 2.0 * i) == 0, "latency");
	cr_assert_eq(store_candidate_error(s, "GET /orders", "timeout"), 0);
	cr_assert_eq(store_field(s, "GET /users/{id}", "$.name", false), 0);
	cr_assert_eq(store_field(s, "GET /users/{id}", "$.name", false), 0);
	cr_assert_eq(store_capture_counters(s, 3, 2, 1, 4, 5), 0);
	store_close(s);
}

/* ---- store ---- */

Test(store, flood_of_one_signature_keeps_the_rare_example)
{
	struct store_filter only_rare = { .endpoint_glob = "GET /rare" };
	struct store *s = open_store(50, 10, NULL, 0);
	json_t *groups, *g, *stats;
	size_t total;

	put(s, "GET /rare", "$.rare", NULL, false);
	for (int i = 0; i < 20000; i++) {
		char ep[32];

		snprintf(ep, sizeof(ep), "GET /flood/%d", i % 8);
		put(s, ep, "$.items[7].id", "X-Flood", (i / 8) % 2);
		if (i % 1000 == 0)
			CHECK(store_flush(s) == 0, "store_flush");
	}
	store_close(s);

	s = open_reader();
	total = count_records(s, NULL);
	cr_assert_eq(total, 50, "global bound: %zu records", total);
	cr_assert_eq(count_records(s, &only_rare), 1, "the rare example survived");
	groups = store_groups(s, NULL);
	cr_assert_not_null(groups);
	/* 8 endpoints x 2 status variants + the rare one */
	cr_assert_eq(json_array_size(groups), 17);
	json_array_foreach(groups, total, g) {
		size_t n = json_array_size(json_object_get(g, "examples"));

		cr_assert_leq(n, 10, "per-signature bound");
		cr_assert_geq(n, 1);
	}
	g = group_of(groups, "GET /rare");
	cr_assert_eq(json_integer_value(json_object_get(g, "count")), 1);
	g = json_array_get(groups, 0);
	cr_assert_eq(json_integer_value(json_object_get(g, "count")), 1250,
		     "counts are not bounded: every divergence is counted");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(g, "paths"), 0)),
			 "$.items[*].id");
	stats = store_stats(s);
	cr_assert_eq(stat_int(stats, NULL, "evicted"), 20001 - 50);
	json_decref(stats);
	json_decref(groups);
	store_close(s);
}

Test(store, per_signature_bound_keeps_the_newest_examples)
{
	struct store *s = open_store(1000, 3, NULL, 0);
	json_t *groups, *ex;

	for (int i = 0; i < 10; i++)
		put(s, "GET /a", "$.x", NULL, false);
	store_close(s);
	/* a restarted daemon goes on with the same bounds and ids */
	s = open_store(1000, 3, NULL, 0);
	put(s, "GET /a", "$.x", NULL, false);
	store_close(s);
	s = open_reader();
	groups = store_groups(s, NULL);
	ex = json_object_get(json_array_get(groups, 0), "examples");
	cr_assert_eq(json_array_size(ex), 3);
	cr_assert_eq(json_integer_value(json_array_get(ex, 0)), 9);
	cr_assert_eq(json_integer_value(json_array_get(ex, 2)), 11);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(groups, 0), "count")), 11);
	cr_assert_eq(store_last_id(s), 11);
	json_decref(groups);
	store_close(s);
}

static bool file_has(const char *path, const char *needle)
{
	size_t len, nl = strlen(needle);
	char *buf = slurp(path, &len);
	bool found = false;

	for (size_t i = 0; buf && i + nl <= len && !found; i++)
		found = !memcmp(buf + i, needle, nl);
	free(buf);
	return found;
}

static void assert_no_secret(const char *secret)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[192];

	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		cr_assert(!file_has(path, secret), "%s found in %s", secret, path);
	}
}

Test(store, secrets_are_in_no_file_of_the_store)
{
	const char *extra[] = { "X-Api-Key" };
	struct store *s = open_store(0, 0, extra, 1);
	json_t *r = storegen_record("GET /a", "$.x", "Set-Cookie", false, "s3cr3t-T0KEN");
	json_t *diffs, *rec = NULL;
	char path[192];
	char *text;

	cr_assert_not_null(r);
	/* the secret also in a custom header and in a header diff */
	json_array_append_new(json_object_get(json_object_get(r, "request"), "headers"),
			      json_pack("[s s]", "x-api-key", "s3cr3t-T0KEN-2"));
	diffs = json_object_get(json_object_get(r, "headers"), "diffs");
	json_object_set_new(json_array_get(diffs, 0), "primary",
			    json_string("sid=s3cr3t-T0KEN"));
	cr_assert_eq(store_put(s, r), 0);
	for (int i = 0; i < 200; i++)
		put(s, "GET /b", "$.y", NULL, false);
	cr_assert_eq(store_flush(s), 0);
	snprintf(path, sizeof(path), "%s-wal", db);
	cr_assert(file_has(path, "[redacted]"), "the WAL holds the records");
	assert_no_secret("s3cr3t-T0KEN");
	store_close(s);
	assert_no_secret("s3cr3t-T0KEN");

	s = open_reader();
	cr_assert_eq(store_get_record(s, 1, &rec), 0);
	text = json_dumps(rec, JSON_COMPACT);
	cr_assert_not_null(strstr(text, "[\"Authorization\",\"[redacted]\"]"), "%s", text);
	cr_assert_not_null(strstr(text, "[\"Cookie\",\"[redacted]\"]"), "%s", text);
	cr_assert_not_null(strstr(text, "[\"Set-Cookie\",\"[redacted]\"]"), "%s", text);
	cr_assert_not_null(strstr(text, "[\"x-api-key\",\"[redacted]\"]"), "%s", text);
	cr_assert_not_null(strstr(text, "[\"Host\",\"api\"]"), "%s", text);
	free(text);
	json_decref(rec);
	store_close(s);
}

Test(store, files_are_created_0600)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	mode_t old = umask(0);
	struct store *s = open_store(0, 0, NULL, 0);
	char path[192];
	struct stat sb;

	umask(old);
	put(s, "GET /a", "$.x", NULL, false);
	cr_assert_eq(store_flush(s), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		cr_assert_eq(stat(path, &sb), 0, "%s missing", path);
		cr_assert_eq(sb.st_mode & 0777, 0600, "%s is %o", path, sb.st_mode & 0777);
	}
	store_close(s);
	cr_assert_eq(stat(db, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
}

Test(store, counters_add_up_across_daemon_restarts)
{
	struct store *s;
	json_t *st, *e;

	for (int run = 0; run < 2; run++) {
		s = open_store(0, 0, NULL, 0);
		cr_assert_eq(store_count(s, "GET /a", STORE_REPLAYED, 10), 0);
		cr_assert_eq(store_count(s, "GET /a", STORE_DIVERGED, 1), 0);
		cr_assert_eq(store_count(s, "GET /a", STORE_SHED, 2), 0);
		cr_assert_eq(store_candidate_error(s, "GET /a", "refused"), 0);
		cr_assert_eq(store_candidate_error(s, "GET /a", "no-such-class"), 0);
		cr_assert_eq(store_capture_counters(s, 1, 1, 1, 1, 1), 0);
		cr_assert_eq(store_capture_counters(s, 5, 6, 7, 8, 9), 0); /* latest wins */
		cr_assert_eq(store_flush(s), 0);
		store_close(s);
	}
	s = open_reader();
	st = store_stats(s);
	cr_assert_not_null(st);
	cr_assert_eq(stat_int(st, "GET /a", "replayed"), 20);
	cr_assert_eq(stat_int(st, "GET /a", "diverged"), 2);
	cr_assert_eq(stat_int(st, "GET /a", "shed"), 4);
	cr_assert_eq(stat_int(st, "GET /a", "candidate_errors"), 4);
	cr_assert_eq(stat_int(st, NULL, "candidate_errors"), 4);
	/* 2 diverged of 20 sent, 4 of which were candidate errors. */
	cr_assert_float_eq(json_real_value(json_object_get(json_object_get(st, "totals"),
							   "divergence_rate")), 2.0 / 16, 1e-9);
	e = json_object_get(json_array_get(json_object_get(st, "endpoints"), 0),
			    "candidate_error_classes");
	cr_assert_eq(json_integer_value(json_object_get(e, "refused")), 2);
	cr_assert_eq(json_integer_value(json_object_get(e, "other")), 2);
	cr_assert_eq(json_integer_value(json_object_get(e, "timeout")), 0);
	e = json_object_get(st, "capture");
	cr_assert_eq(json_integer_value(json_object_get(e, "lost_events")), 10);
	cr_assert_eq(json_integer_value(json_object_get(e, "truncated")), 16);
	cr_assert_eq(json_integer_value(json_object_get(e, "tls_undecoded")), 18);
	json_decref(st);
	store_close(s);
}

Test(store, latency_quantiles_come_out_of_the_store)
{
	struct store *s = open_store(0, 0, NULL, 0);
	json_t *st, *e, *p, *c;

	/* two runs: histograms merge across restarts */
	for (int i = 1; i <= 500; i++)
		CHECK(store_latency(s, "GET /a", i, i * 3.0) == 0, "latency");
	store_close(s);
	s = open_store(0, 0, NULL, 0);
	for (int i = 501; i <= 1000; i++)
		CHECK(store_latency(s, "GET /a", i, i < 990 ? i * 3.0 : -1) == 0, "latency");
	store_close(s);
	s = open_reader();
	st = store_stats(s);
	e = json_array_get(json_object_get(st, "endpoints"), 0);
	p = json_object_get(e, "primary_latency_ms");
	c = json_object_get(e, "candidate_latency_ms");
	cr_assert_float_eq(json_real_value(json_object_get(p, "p50")), 500, 500 * 0.02);
	cr_assert_float_eq(json_real_value(json_object_get(p, "p99")), 990, 990 * 0.02);
	/* 989 candidate values: p50 is the 495th, 1485 ms */
	cr_assert_float_eq(json_real_value(json_object_get(c, "p50")), 1485, 1485 * 0.02);
	cr_assert_float_eq(json_real_value(json_object_get(c, "p99")), 2937, 2937 * 0.02);
	json_decref(st);
	store_close(s);
}

Test(store, hist_error_is_bounded_over_the_whole_range)
{
	struct hist h;

	for (double v = 0.001; v < 1e7; v *= 1.37) {
		double got = hist_bucket_value(hist_bucket(v));

		CHECK(fabs(got - v) <= v * 0.016 + 0.0005, "%g -> %g", v, got);
	}
	hist_init(&h);
	cr_assert_float_eq(hist_quantile(&h, 0.5), 0.0, 0);
	hist_add(&h, -5);
	hist_add(&h, 1e300);
	cr_assert_eq(h.counts[0], 1);
	cr_assert_eq(h.counts[HIST_BUCKETS - 1], 1);
}

/* The writer's store closed, the reader's stats: the first endpoint's
 * top_fields (borrowed from *st, which the caller frees). */
static json_t *reopen_top_fields(struct store **s, json_t **st)
{
	store_close(*s);
	*s = open_reader();
	*st = store_stats(*s);
	return json_object_get(json_array_get(json_object_get(*st, "endpoints"), 0),
			       "top_fields");
}

/* Path and count of top field i. */
static void expect_top(json_t *top, size_t i, const char *path, long long count)
{
	json_t *f = json_array_get(top, i);

	cr_assert_str_eq(json_string_value(json_object_get(f, "path")), path);
	if (count >= 0)
		cr_assert_eq(json_integer_value(json_object_get(f, "count")), count);
}

Test(store, top_fields_drop_paths_that_are_mostly_noise)
{
	struct store *s = open_store(0, 0, NULL, 0);
	json_t *st, *top;

	cr_assert_eq(store_count(s, "GET /a", STORE_REPLAYED, 1000), 0);
	for (int i = 0; i < 50; i++)
		CHECK(store_field(s, "GET /a", "$.real", false) == 0, "field");
	for (int i = 0; i < 60; i++) {
		CHECK(store_field(s, "GET /a", "$.updated_at", false) == 0, "field");
		CHECK(store_field(s, "GET /a", "$.updated_at", true) == 0, "field");
	}
	for (int i = 0; i < 40; i++)
		CHECK(store_field(s, "GET /a", "$.rarely_noise", false) == 0, "field");
	cr_assert_eq(store_field(s, "GET /a", "$.rarely_noise", true), 0);
	top = reopen_top_fields(&s, &st);
	cr_assert_eq(json_array_size(top), 2, "top_fields has %zu paths", json_array_size(top));
	expect_top(top, 0, "$.real", 50);
	expect_top(top, 1, "$.rarely_noise", -1);
	cr_assert(!diff_noise_report(10, 9, 1000, 0.2, 0.0003));
	cr_assert(diff_noise_report(10, 0, 1000, 0.2, 0.0003));
	cr_assert(!diff_noise_report(1, 0, 1000000, 0.2, 0.0003));
	json_decref(st);
	store_close(s);
}

/* Header names are case-insensitive: the fields of stats name a header
 * once, lowercased, as the groups' signatures do, whichever case each
 * side wrote it in; JSONPaths keep their case. */
Test(store, header_fields_are_one_whatever_their_case)
{
	struct store *s = open_store(0, 0, NULL, 0);
	json_t *st, *top;

	cr_assert_eq(store_count(s, "GET /v", STORE_REPLAYED, 10), 0);
	cr_assert_eq(store_field(s, "GET /v", "X-Api-Version", false), 0);
	cr_assert_eq(store_field(s, "GET /v", "x-api-version", false), 0);
	cr_assert_eq(store_field(s, "GET /v", "X-API-VERSION", false), 0);
	cr_assert_eq(store_field(s, "GET /v", "$.Name", false), 0);
	top = reopen_top_fields(&s, &st);
	cr_assert_eq(json_array_size(top), 2, "top_fields has %zu entries",
		     json_array_size(top));
	expect_top(top, 0, "x-api-version", 3);
	expect_top(top, 1, "$.Name", -1);
	json_decref(st);
	store_close(s);
}

Test(store, newer_schema_and_foreign_files_are_refused)
{
	struct store_config cfg = { .path = db };
	struct store *s = open_store(0, 0, NULL, 0);
	char err[256] = "";
	sqlite3 *h;
	FILE *f;

	store_close(s);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	s = NULL;
	cr_assert_eq(store_open(&cfg, &s, err, sizeof(err)), -EPROTO);
	cr_assert_null(s);
	cr_assert_not_null(strstr(err, "newer"), "%s", err);
	cr_assert_eq(store_open_reader(db, &s, err, sizeof(err)), -EPROTO);

	unlink(db);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	cr_assert_eq(store_open(&cfg, &s, err, sizeof(err)), -EINVAL, "%s", err);
	cr_assert_not_null(strstr(err, "not a request-shadow store"), "%s", err);

	unlink(db);
	f = fopen(db, "w");
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite file at all\n", f);
	fclose(f);
	cr_assert_eq(store_open(&cfg, &s, err, sizeof(err)), -EINVAL, "%s", err);
	cr_assert_eq(store_open_reader(db, &s, err, sizeof(err)), -EINVAL, "%s", err);
	unlink(db);
	cr_assert_eq(store_open_reader(db, &s, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "no such store"), "%s", err);
}

/* The child: ~1000 records a second, flushed every 10 ms; after each flush
 * it reports the last id it knows is committed. */
static void writer_child(int fd)
{
	struct store_config cfg = { .path = db, .max_records = 1000000,
				    .examples = 1000000 };
	struct store *s = NULL;
	char err[256];
	int64_t id = 0;

	if (store_open(&cfg, &s, err, sizeof(err)))
		_exit(3);
	for (;;) {
		for (int i = 0; i < 10; i++) {
			char ep[32];

			snprintf(ep, sizeof(ep), "GET /k/%lld", (long long)(id % 7));
			if (store_put(s, storegen_record(ep, "$.x", NULL, false, NULL)))
				_exit(4);
			id++;
		}
		if (store_flush(s))
			_exit(5);
		if (write(fd, &id, sizeof(id)) != sizeof(id))
			_exit(6);
		usleep(10000);
	}
}

Test(store, kill_9_mid_writes_leaves_a_sound_store_with_every_commit)
{
	int64_t committed = 0, v;
	size_t stored;
	struct timespec t0, t;
	char **rows = NULL, *errmsg = NULL, id[32];
	int fds[2], st, nr, nc;
	struct run r;
	sqlite3 *h;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		writer_child(fds[1]);
	}
	cr_assert_gt(pid, 0);
	close(fds[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		CHECK(read(fds[0], &v, sizeof(v)) == sizeof(v), "writer died");
		committed = v;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
	usleep(3000); /* land somewhere inside a batch */
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st));
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		committed = v;
	close(fds[0]);
	cr_assert_geq(committed, 500, "only %lld records in 1.5 s", (long long)committed);

	r = dump_run("--store", db, "export", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_geq(count_lines(r.out), (size_t)committed);
	cr_assert_leq(count_lines(r.out), (size_t)committed + 10);
	stored = count_lines(r.out);
	/* ids 1..committed all there, in order */
	{
		char *line = r.out;

		for (int64_t want = 1; want <= committed; want++) {
			json_t *rec = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);

			CHECK(rec, "line %lld", (long long)want);
			CHECK(json_integer_value(json_object_get(rec, "id")) == want,
			      "id %lld missing", (long long)want);
			json_decref(rec);
			line = strchr(line, '\n') + 1;
		}
	}
	snprintf(id, sizeof(id), "%lld", (long long)committed);
	run_free(&r);
	r = dump_run("--store", db, "show", id, "--json", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	run_free(&r);

	/* shadow-dump read first (it recovers nothing); now check the file */
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_get_table(h, "PRAGMA integrity_check", &rows, &nr, &nc,
				       &errmsg), SQLITE_OK, "%s", errmsg);
	cr_assert_eq(nr, 1);
	cr_assert_str_eq(rows[1], "ok");
	sqlite3_free_table(rows);
	sqlite3_close(h);

	/* a restarted daemon goes on after the last committed id */
	{
		struct store *w = open_store(1000000, 1000000, NULL, 0), *rd;

		put(w, "GET /after", "$.x", NULL, false);
		store_close(w);
		rd = open_reader();
		cr_assert_eq(store_last_id(rd), (int64_t)stored + 1);
		store_close(rd);
	}
}

/* ---- shadow-dump ---- */

static json_t *run_json(struct run *r)
{
	json_error_t e;
	json_t *j;

	cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
	cr_assert_str_eq(r->err, "");
	j = json_loads(r->out, 0, &e);
	cr_assert_not_null(j, "%s: %s", e.text, r->out);
	return j;
}

static void assert_record_shape(json_t *rec)
{
	static const char *const msg_keys[] = { "request", "primary", "candidate" };
	static const char *const parts[] = { "status", "headers", "body" };

	cr_assert(json_is_integer(json_object_get(rec, "id")));
	cr_assert(json_is_string(json_object_get(rec, "time")));
	cr_assert_eq(strlen(json_string_value(json_object_get(rec, "time"))), 24);
	cr_assert_eq(json_string_value(json_object_get(rec, "time"))[23], 'Z');
	cr_assert(json_is_string(json_object_get(rec, "endpoint")));
	for (int i = 0; i < 3; i++) {
		json_t *m = json_object_get(rec, msg_keys[i]);

		cr_assert(json_is_object(m), "%s", msg_keys[i]);
		cr_assert(json_is_array(json_object_get(m, "headers")));
		cr_assert(json_is_string(json_object_get(m, "body")) ||
			  json_is_string(json_object_get(m, "body_base64")));
		if (i) {
			cr_assert(json_is_integer(json_object_get(m, "status")));
			cr_assert(json_is_number(json_object_get(m, "latency_ms")));
		}
	}
	for (int i = 0; i < 3; i++) {
		json_t *p = json_object_get(rec, parts[i]);

		cr_assert(json_is_boolean(json_object_get(p, "diverged")), "%s", parts[i]);
		cr_assert(json_is_string(json_object_get(p, "summary")));
	}
}

Test(dump, list_json_is_one_array_newest_first)
{
	struct run r;
	json_t *arr, *rec;
	size_t i;

	make_sample_store();
	r = dump_run("--store", db, "list", "--json", NULL);
	arr = run_json(&r);
	cr_assert(json_is_array(arr));
	cr_assert_eq(json_array_size(arr), 3);
	json_array_foreach(arr, i, rec) {
		assert_record_shape(rec);
		cr_assert_eq(json_integer_value(json_object_get(rec, "id")), 3 - (int)i);
	}
	json_decref(arr);
	run_free(&r);

	r = dump_run("--store", db, "list", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert_eq(count_lines(r.out), 4, "header + 3 rows: %s", r.out);
	cr_assert_not_null(strstr(r.out, "GET /orders"));
	cr_assert_null(strstr(r.out, "\033["), "no color in a pipe");
	run_free(&r);
}

Test(dump, filters_select_records)
{
	struct run r;
	json_t *arr;

	make_sample_store();
	r = dump_run("--store", db, "list", "--json", "--endpoint", "GET /users/*", NULL);
	arr = run_json(&r);
	cr_assert_eq(json_array_size(arr), 2);
	json_decref(arr);
	run_free(&r);
	r = dump_run("--store", db, "list", "--json", "--part", "status", NULL);
	arr = run_json(&r);
	cr_assert_eq(json_array_size(arr), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0),
							   "endpoint")), "GET /orders");
	json_decref(arr);
	run_free(&r);
	r = dump_run("--store", db, "list", "--json", "--limit", "2", "--since", "1h", NULL);
	arr = run_json(&r);
	cr_assert_eq(json_array_size(arr), 2);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(arr, 0), "id")), 3);
	json_decref(arr);
	run_free(&r);
	r = dump_run("--store", db, "export", "--since", "0s", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert_eq(count_lines(r.out), 0, "nothing recorded in the future: %s", r.out);
	run_free(&r);
}

Test(dump, export_is_json_lines_oldest_first)
{
	struct run r;
	char *line;

	make_sample_store();
	r = dump_run("--store", db, "export", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_eq(count_lines(r.out), 3);
	line = r.out;
	for (int id = 1; id <= 3; id++) {
		json_t *rec = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);

		cr_assert_not_null(rec);
		assert_record_shape(rec);
		cr_assert_eq(json_integer_value(json_object_get(rec, "id")), id);
		json_decref(rec);
		line = strchr(line, '\n') + 1;
	}
	run_free(&r);
}

Test(dump, stats_json_has_every_counter)
{
	static const char *const counters[] = {
		"captured", "sampled", "replayed", "diverged", "diverged_status",
		"diverged_headers", "diverged_body", "candidate_errors", "shed",
		"unsafe_skipped", "noise_suppressed",
	};
	struct run r;
	json_t *st, *tot, *e, *cap;
	size_t i;

	make_sample_store();
	r = dump_run("--store", db, "stats", "--json", NULL);
	st = run_json(&r);
	tot = json_object_get(st, "totals");
	for (size_t k = 0; k < 11; k++)
		cr_assert(json_is_integer(json_object_get(tot, counters[k])), "%s", counters[k]);
	cr_assert(json_is_integer(json_object_get(tot, "evicted")));
	cr_assert(json_is_real(json_object_get(tot, "divergence_rate")));
	/* diverged / (replayed - candidate_errors): errors are sent, not
	 * answered, and never divergences. */
	cr_assert_float_eq(json_real_value(json_object_get(tot, "divergence_rate")),
			   3.0 / 499, 1e-9);
	cr_assert_eq(json_integer_value(json_object_get(tot, "replayed")), 500);
	cap = json_object_get(st, "capture");
	cr_assert_eq(json_integer_value(json_object_get(cap, "lost_events")), 3);
	cr_assert_eq(json_integer_value(json_object_get(cap, "gaps")), 2);
	cr_assert_eq(json_integer_value(json_object_get(cap, "parse_errors")), 1);
	cr_assert_eq(json_integer_value(json_object_get(cap, "truncated")), 4);
	cr_assert_eq(json_integer_value(json_object_get(cap, "tls_undecoded")), 5);
	cr_assert_eq(json_array_size(json_object_get(st, "endpoints")), 2);
	json_array_foreach(json_object_get(st, "endpoints"), i, e) {
		cr_assert(json_is_string(json_object_get(e, "endpoint")));
		for (size_t k = 0; k < 11; k++)
			cr_assert(json_is_integer(json_object_get(e, counters[k])),
				  "%s", counters[k]);
		cr_assert(json_is_real(json_object_get(e, "divergence_rate")));
		cr_assert(json_is_real(json_object_get(json_object_get(e,
				"primary_latency_ms"), "p50")));
		cr_assert(json_is_real(json_object_get(json_object_get(e,
				"candidate_latency_ms"), "p99")));
		cr_assert(json_is_array(json_object_get(e, "top_fields")));
	}
	e = json_array_get(json_object_get(st, "endpoints"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(e, "endpoint")), "GET /users/{id}");
	cr_assert_float_eq(json_real_value(json_object_get(json_object_get(e,
			"primary_latency_ms"), "p50")), 50, 1);
	cr_assert_float_eq(json_real_value(json_object_get(json_object_get(e,
			"candidate_latency_ms"), "p99")), 198, 4);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(e, "top_fields"), 0), "path")), "$.name");
	json_decref(st);
	run_free(&r);

	r = dump_run("--store", db, "stats", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert_not_null(strstr(r.out, "TOTAL"));
	cr_assert_not_null(strstr(r.out, "lost_events 3"));
	run_free(&r);
}

Test(dump, groups_and_show)
{
	struct run r;
	json_t *g, *rec;

	make_sample_store();
	r = dump_run("--store", db, "groups", "--json", NULL);
	g = run_json(&r);
	cr_assert_eq(json_array_size(g), 2);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(g, 0), "count")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "endpoint")),
			 "GET /users/{id}");
	cr_assert_eq(json_array_size(json_object_get(json_array_get(g, 0), "examples")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_array_get(g, 1),
		"header_names"), 0)), "x-api-version");
	cr_assert(json_is_string(json_object_get(json_array_get(g, 1), "first_seen")));
	json_decref(g);
	run_free(&r);

	r = dump_run("--store", db, "show", "3", "--json", NULL);
	rec = run_json(&r);
	assert_record_shape(rec);
	cr_assert_eq(json_integer_value(json_object_get(rec, "id")), 3);
	json_decref(rec);
	run_free(&r);

	r = dump_run("--store", db, "show", "3", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert_not_null(strstr(r.out, "X-Api-Version"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "- primary"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "+ candidate"), "%s", r.out);
	cr_assert_null(strstr(r.out, "\033["));
	run_free(&r);

	r = dump_run("--store", db, "show", "42", NULL);
	assert_one_line_failure(&r, "unknown id");
	run_free(&r);
	r = dump_run("--store", db, "show", "abc", NULL);
	assert_one_line_failure(&r, "bad id");
	run_free(&r);
}

static void counts(struct store *s, const char *ep, uint64_t replayed,
		   uint64_t diverged, uint64_t errors)
{
	cr_assert_eq(store_count(s, ep, STORE_REPLAYED, replayed), 0);
	cr_assert_eq(store_count(s, ep, STORE_DIVERGED, diverged), 0);
	for (uint64_t i = 0; i < errors; i++)
		CHECK(store_candidate_error(s, ep, "timeout") == 0, "candidate_error");
}

Test(dump, verdict_answers_with_three_exit_codes)
{
	struct store *s = open_store(0, 0, NULL, 0);
	struct run r;
	json_t *j;

	counts(s, "GET /a", 50, 0, 0);
	store_close(s);
	r = dump_run("--store", db, "verdict", NULL);
	cr_assert_eq(r.code, 2, "%s", r.out);
	cr_assert_eq(count_lines(r.out), 1);
	cr_assert_not_null(strstr(r.out, "50"), "%s", r.out);
	run_free(&r);

	s = open_store(0, 0, NULL, 0);
	counts(s, "GET /a", 950, 5, 0); /* 5 / 1000 */
	store_close(s);
	r = dump_run("--store", db, "verdict", NULL);
	cr_assert_eq(r.code, 0, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "0.50%"), "%s", r.out);
	run_free(&r);
	r = dump_run("--store", db, "verdict", "--max-rate", "0.001", "--json", NULL);
	cr_assert_eq(r.code, 1, "%s", r.out);
	j = json_loads(r.out, 0, NULL);
	cr_assert_not_null(j, "%s", r.out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "verdict")), "fail");
	cr_assert_eq(json_integer_value(json_object_get(j, "exit")), 1);
	cr_assert_eq(json_array_size(json_object_get(j, "endpoints_over_limit")), 1);
	json_decref(j);
	run_free(&r);
	r = dump_run("--store", db, "verdict", "--min-samples", "5000", NULL);
	cr_assert_eq(r.code, 2, "%s", r.out);
	run_free(&r);

	/* one endpoint with enough samples of its own fails the whole */
	s = open_store(0, 0, NULL, 0);
	counts(s, "GET /b", 200, 30, 0);
	counts(s, "GET /a", 10000, 0, 0);
	store_close(s);
	r = dump_run("--store", db, "verdict", NULL);
	cr_assert_eq(r.code, 1, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "GET /b"), "%s", r.out);
	run_free(&r);

	/* a candidate that mostly fails is not fit either */
	s = open_store(0, 0, NULL, 0);
	counts(s, "GET /c", 0, 0, 2000);
	store_close(s);
	r = dump_run("--store", db, "verdict", NULL);
	cr_assert_eq(r.code, 1, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "candidate errors"), "%s", r.out);
	run_free(&r);
}

Test(dump, report_is_one_self_contained_file)
{
	char html[192], tmp[200];
	struct stat sb;
	struct run r;
	char *text;

	make_sample_store();
	snprintf(html, sizeof(html), "%s/report.html", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", html);
	r = dump_run("--store", db, "report", "--html", html, NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	run_free(&r);
	cr_assert_neq(stat(tmp, &sb), 0, "no temporary left behind");
	text = slurp(html, NULL);
	cr_assert_not_null(text);
	cr_assert(strncmp(text, "<!DOCTYPE html>", 15) == 0);
	cr_assert_not_null(strstr(text, "</html>"));
	cr_assert_not_null(strstr(text, "<style>"));
	cr_assert_not_null(strstr(text, "<svg"), "charts");
	cr_assert_not_null(strstr(strstr(text, "<svg") + 4, "<svg"), "two charts");
	cr_assert_null(strstr(text, "<script"));
	cr_assert_null(strstr(text, "src="));
	cr_assert_null(strstr(text, "href="));
	cr_assert_null(strstr(text, "@import"));
	cr_assert_null(strstr(text, "http:"), "nothing from the network");
	cr_assert_null(strstr(text, "https:"), "nothing from the network");
	cr_assert_null(strstr(text, "url("), "nothing from the network");
	cr_assert_not_null(strstr(text, "GET /users/{id}"));
	cr_assert_not_null(strstr(text, "$.name"), "an example diff");
	cr_assert_not_null(strstr(text, "lost ring-buffer events"));
	free(text);

	/* a directory that cannot be written: exit 1, nothing half-written */
	snprintf(html, sizeof(html), "%s/no/such/dir/report.html", dir);
	r = dump_run("--store", db, "report", "--html", html, NULL);
	assert_one_line_failure(&r, "unwritable report");
	run_free(&r);
}

Test(dump, bad_input_is_one_line_and_exit_1)
{
	char path[192];
	struct run r;
	sqlite3 *h;
	FILE *f;

	r = dump_run("--store", db, "stats", NULL);
	assert_one_line_failure(&r, "missing store");
	cr_assert_not_null(strstr(r.err, "no such store"), "%s", r.err);
	run_free(&r);

	make_sample_store();
	r = dump_run("--store", db, "lsit", NULL);
	assert_one_line_failure(&r, "unknown command");
	run_free(&r);
	r = dump_run("--store", db, "list", "--bogus", NULL);
	assert_one_line_failure(&r, "unknown option");
	run_free(&r);
	r = dump_run("--store", db, "list", "--limit", "-3", NULL);
	assert_one_line_failure(&r, "bad limit");
	run_free(&r);
	r = dump_run("--store", db, "list", "--since", "yesterday", NULL);
	assert_one_line_failure(&r, "bad since");
	run_free(&r);
	r = dump_run("--store", db, "list", "--part", "cookies", NULL);
	assert_one_line_failure(&r, "bad part");
	run_free(&r);
	r = dump_run("--store", db, "stats", "--max-rate", "0.1", NULL);
	assert_one_line_failure(&r, "option of another command");
	run_free(&r);
	r = dump_run("--store", db, "verdict", "--max-rate", "2", NULL);
	assert_one_line_failure(&r, "rate over 1");
	run_free(&r);
	r = dump_run("--store", db, "show", NULL);
	assert_one_line_failure(&r, "missing id");
	run_free(&r);
	r = dump_run("--store", NULL);
	assert_one_line_failure(&r, "--store without a value");
	run_free(&r);
	r = dump_run(NULL);
	assert_one_line_failure(&r, "no command");
	run_free(&r);

	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	r = dump_run("--store", db, "list", NULL);
	assert_one_line_failure(&r, "newer schema");
	cr_assert_not_null(strstr(r.err, "newer"), "%s", r.err);
	run_free(&r);

	snprintf(path, sizeof(path), "%s/garbage.db", dir);
	f = fopen(path, "w");
	for (int i = 0; i < 1000; i++)
		fputs("garbage garbage garbage\n", f);
	fclose(f);
	r = dump_run("--store", path, "stats", "--json", NULL);
	assert_one_line_failure(&r, "not SQLite");
	run_free(&r);

	/* a real store whose pages were overwritten */
	unlink(db);
	make_sample_store();
	{
		int fd = open(db, O_WRONLY);
		char junk[4096];

		memset(junk, 0xA5, sizeof(junk));
		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, junk, sizeof(junk), 4096), (ssize_t)sizeof(junk));
		cr_assert_eq(pwrite(fd, junk, 100, 0), 100);
		close(fd);
	}
	r = dump_run("--store", db, "export", NULL);
	assert_one_line_failure(&r, "corrupt store");
	run_free(&r);
}

Test(dump, help_includes_examples)
{
	static const char *const cmds[] = { "list", "show", "groups", "stats",
					     "follow", "export", "verdict", "report" };
	struct run r = dump_run("--help", NULL);

	cr_assert_eq(r.code, 0);
	cr_assert_not_null(strstr(r.out, "Examples:"));
	for (int i = 0; i < 8; i++)
		cr_assert_not_null(strstr(r.out, cmds[i]), "%s", cmds[i]);
	run_free(&r);
	for (int i = 0; i < 8; i++) {
		r = dump_run("help", cmds[i], NULL);
		cr_assert_eq(r.code, 0);
		cr_assert_not_null(strstr(r.out, "Examples:"), "%s", cmds[i]);
		cr_assert_not_null(strstr(r.out, "shadow-dump"), "%s", cmds[i]);
		run_free(&r);
		r = dump_run(cmds[i], "--help", NULL);
		cr_assert_eq(r.code, 0, "%s --help", cmds[i]);
		cr_assert_not_null(strstr(r.out, "Examples:"), "%s", cmds[i]);
		run_free(&r);
	}
}

Test(dump, follow_prints_new_records_until_sigint)
{
	char outp[160];
	const char *path;
	struct store *s;
	pid_t pid;
	int st;
	char *out;

	make_sample_store(); /* ids 1..3 exist before follow starts */
	snprintf(outp, sizeof(outp), "%s/follow.out", dir);
	path = dump_path();
	pid = fork();
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		execl(path, "shadow-dump", "--store", db, "follow", "--json", NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	usleep(400000);
	s = open_store(0, 0, NULL, 0);
	put(s, "GET /new", "$.n", NULL, false);
	put(s, "GET /new", "$.n", NULL, false);
	cr_assert_eq(store_flush(s), 0);
	usleep(700000);
	kill(pid, SIGINT);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "follow exits 0 on SIGINT");
	store_close(s);
	out = slurp(outp, NULL);
	cr_assert_eq(count_lines(out), 2, "only the new records: %s", out);
	cr_assert(strstr(out, "\"id\":4") || strstr(out, "\"id\": 4"), "%s", out);
	cr_assert_not_null(strstr(out, "GET /new"));
	free(out);
}
