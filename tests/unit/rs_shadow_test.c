// SPDX-License-Identifier: BSD-2-Clause
/*
 * librequest-shadow through its public header only, with in-process
 * backends (the library's natural case, tests/lib/rs_service.h) and
 * rs_backend_http() against a real python3 http.server. The threaded
 * cases are rs_threads_test.c's. With `store`, the real ./shadow-dump (or
 * $SHADOW_DUMP) reads what the library wrote.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "request_shadow.h"
#include "rs_service.h"

/* SERVICE() gives the defaults and each test overrides some of them. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* The ring as parsed JSON (new reference). */
static json_t *ring(struct rs_shadower *sh, size_t max)
{
	char *text = rs_divergences_json(sh, max);
	json_error_t e;
	json_t *v;

	cr_assert_not_null(text);
	v = json_loads(text, 0, &e);
	cr_assert(json_is_array(v), "not a JSON array: %s", text);
	free(text);
	return v;
}

/* ---- the differ through the library ---- */

/* n calls of GET target through sh, flushed; the counters after. */
static struct rs_stats settled(struct rs_shadower *sh, const char *target,
			       int n)
{
	for (int i = 0; i < n; i++)
		service_get(sh, target);
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	return service_stats(sh);
}

/* The one divergence a single call on sh left, as a new reference. */
static json_t *only_divergence(struct rs_shadower *sh)
{
	json_t *r, *d;

	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	r = ring(sh, 0);
	cr_assert_eq(json_array_size(r), 1, "%zu divergences", json_array_size(r));
	d = json_incref(json_array_get(r, 0));
	json_decref(r);
	return d;
}

static void assert_part(json_t *d, const char *part, bool diverged)
{
	json_t *p = json_object_get(d, part);

	cr_assert(json_is_object(p), "no %s part", part);
	cr_assert_eq(json_is_true(json_object_get(p, "diverged")), diverged,
		     "%s diverged should be %d", part, diverged);
}

/* The first diff record of part, its `key` member. */
static const char *first_diff(json_t *d, const char *part, const char *key)
{
	json_t *diffs = json_object_get(json_object_get(d, part), "diffs");

	cr_assert(json_array_size(diffs) >= 1, "no %s diffs", part);
	return json_string_value(json_object_get(json_array_get(diffs, 0), key));
}

Test(rs_shadow, planted_status_divergence_is_found_in_the_status_part)
{
	struct service p = SERVICE(), c = SERVICE(.status = 503);
	struct rs_shadower *sh = service_shadower(&p, &c, NULL);
	json_t *d;

	service_get(sh, "/users/7");
	d = only_divergence(sh);
	assert_part(d, "status", true);
	assert_part(d, "headers", false);
	assert_part(d, "body", false);
	cr_assert_str_eq(json_string_value(json_object_get(d, "endpoint")),
			 "GET /users/{id}");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(d,
		     "candidate"), "status")), 503);
	json_decref(d);
	rs_shadower_free(sh);
}

Test(rs_shadow, planted_header_divergence_is_found_by_name_and_redacted)
{
	struct service p = SERVICE(), c = SERVICE(.version = "2");
	struct rs_shadower *sh = service_shadower(&p, &c, NULL);
	json_t *d, *h;
	size_t i;
	json_t *v;

	service_get(sh, "/users/7");
	d = only_divergence(sh);
	assert_part(d, "status", false);
	assert_part(d, "headers", true);
	assert_part(d, "body", false);
	cr_assert_str_eq(first_diff(d, "headers", "name"), "X-Api-Version");
	h = json_object_get(json_object_get(d, "request"), "headers");
	cr_assert_gt(json_array_size(h), 0);
	json_array_foreach(h, i, v)
		if (!strcmp(json_string_value(json_array_get(v, 0)), "Authorization"))
			cr_assert_str_eq(json_string_value(json_array_get(v, 1)),
					 "[redacted]");
	json_decref(d);
	rs_shadower_free(sh);
}

Test(rs_shadow, planted_body_divergences_are_found_with_their_jsonpath)
{
	static const struct {
		struct service c;
		const char *path;
	} cases[] = {
		{ SERVICE(.name = "bob"), "$.name" },
		{ SERVICE(.price = 2.75), "$.items[1].price" },
		{ SERVICE(.volatile_ts = true), "$.meta.ts" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct service p = SERVICE(), c = cases[i].c;
		struct rs_shadower *sh = service_shadower(&p, &c, "replay-threads", "1",
						  NULL);
		json_t *d;

		service_get(sh, "/users/7");
		cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
		service_get(sh, "/users/8");
		cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
		d = ring(sh, 1); /* the newest only */
		cr_assert_eq(json_array_size(d), 1, "case %zu", i);
		assert_part(json_array_get(d, 0), "status", false);
		assert_part(json_array_get(d, 0), "body", true);
		cr_assert_str_eq(first_diff(json_array_get(d, 0), "body", "path"),
				 cases[i].path);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
			json_array_get(d, 0), "request"), "target")), "/users/8");
		json_decref(d);
		rs_shadower_free(sh);
	}
}

Test(rs_shadow, ignore_rules_remove_the_planted_divergences)
{
	struct service p = SERVICE(), c = SERVICE(.name = "bob", .version = "2",
						  .price = 9, .volatile_ts = true);
	struct rs_shadower *sh = service_shadower(&p, &c, "ignore-json", "$.name",
					  "ignore-json", "$.items[*].price",
					  "ignore-json", "$..ts",
					  "ignore-header", "x-api-version", NULL);
	json_t *r;

	for (int i = 0; i < 20; i++)
		service_get(sh, "/users/7");
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	cr_assert_eq(service_stats(sh).replayed, 20);
	cr_assert_eq(service_stats(sh).diverged, 0);
	r = ring(sh, 0);
	cr_assert_eq(json_array_size(r), 0);
	json_decref(r);
	rs_shadower_free(sh);
}

Test(rs_shadow, noise_recheck_reports_a_volatile_field_as_noise)
{
	struct service p = SERVICE(), c = SERVICE(.volatile_ts = true);
	struct rs_shadower *sh = service_shadower(&p, &c, "noise-recheck", NULL, NULL);
	struct rs_stats st = settled(sh, "/users/7", 5);

	cr_assert_eq(st.replayed, 5);
	cr_assert_eq(st.diverged, 0);
	cr_assert_eq(st.noise_suppressed, 5);
	rs_shadower_free(sh);
}

Test(rs_shadow, the_ring_keeps_the_newest_log_size_divergences_newest_first)
{
	struct service p = SERVICE(), c = SERVICE(.name = "bob");
	struct rs_shadower *sh = service_shadower(&p, &c, "log-size", "3",
					  "replay-threads", "1", NULL);
	char target[32];
	json_t *r;

	for (int i = 1; i <= 10; i++) {
		snprintf(target, sizeof(target), "/users/%d", i);
		service_get(sh, target);
		cr_assert_eq(rs_shadower_flush(sh, 10000), 0); /* in order */
	}
	r = ring(sh, 0);
	cr_assert_eq(json_array_size(r), 3);
	for (int i = 0; i < 3; i++) {
		json_t *d = json_array_get(r, i);

		snprintf(target, sizeof(target), "/users/%d", 10 - i);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
			d, "request"), "target")), target);
		cr_assert_eq(json_integer_value(json_object_get(d, "id")), 10 - i);
		cr_assert(json_is_string(json_object_get(d, "time")));
	}
	json_decref(r);
	r = ring(sh, 2);
	cr_assert_eq(json_array_size(r), 2);
	json_decref(r);
	cr_assert_eq(service_stats(sh).diverged, 10);
	rs_shadower_free(sh);
}

/* ---- options and bad input ---- */

Test(rs_shadow, bad_options_are_einval_and_reported_by_rs_shadower_new)
{
	static const char *const bad[][2] = {
		{ "no-such-option", "1" }, { "sample", "1.5" }, { "sample", "x" },
		{ "sample", NULL }, { "sample-key", "header:" },
		{ "sample-key", "bogus" }, { "timeout", "0" }, { "timeout", "10ms" },
		{ "max-inflight", "-1" }, { "rate", "fast" },
		{ "ignore-json", "$.a[" }, { "ignore-json", "name" },
		{ "unordered", "$[" }, { "float-tolerance", "2" },
		{ "noise-recheck", "maybe" }, { "max-records", "0" },
		{ "examples", "many" }, { "log-size", "-3" }, { "store", "" },
		{ "ignore-header", "" }, { "max-body", "1G5" },
		/* 2^44 + 1 MiB wraps to 1 MiB in a 64-bit shift */
		{ "max-body", "17592186044417M" }, { "log-size", " -1" },
		{ "endpoint", "users/{id}" },
	};
	struct service p = SERVICE(), c = SERVICE();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rs_config *cfg = rs_config_new();
		char *err = NULL;

		cr_assert_eq(rs_config_set(cfg, bad[i][0], bad[i][1]), -EINVAL,
			     "%s %s", bad[i][0], bad[i][1]);
		/* a good option after it does not hide it */
		cr_assert_eq(rs_config_set(cfg, "sample", "0.5"), 0);
		cr_assert_null(rs_shadower_new(cfg, service_backend(&p), service_backend(&c), &err));
		cr_assert_not_null(err);
		cr_assert(strstr(err, bad[i][0]) || strstr(err, "bad") ||
			  strstr(err, "expected"), "%s: %s", bad[i][0], err);
		free(err);
		rs_config_free(cfg);
	}
}

Test(rs_shadow, good_options_in_the_daemons_syntax_are_taken)
{
	struct service p = SERVICE(), c = SERVICE();
	struct rs_shadower *sh = service_shadower(&p, &c, "sample", "0.25",
		"sample-key", "header:Host", "timeout", "1500", "max-inflight", "8",
		"rate", "0", "ignore-header", "X-A", "ignore-json", "$..updated_at",
		"unordered", "$.items", "float-tolerance", "1e-9", "noise-recheck",
		"false", "max-records", "50", "examples", "2", "redact-header",
		"X-Token", "log-size", "0", "max-body", "64k", "endpoint",
		"/orders/{order}", "replay-unsafe", "", NULL);

	service_get(sh, "/users/1");
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	rs_shadower_free(sh);
}

Test(rs_shadow, null_arguments_are_einval_and_never_crash)
{
	struct service p = SERVICE(), c = SERVICE();
	struct rs_shadower *sh = service_shadower(&p, &c, NULL);
	struct rs_message req = { .method = "GET", .target = NULL }, resp;
	struct rs_backend none = { 0 };
	struct rs_stats st;
	char *err = NULL;

	cr_assert_eq(rs_config_set(NULL, "sample", "1"), -EINVAL);
	cr_assert_eq(rs_shadow_call(NULL, &req, &resp), -EINVAL);
	cr_assert_eq(rs_shadow_call(sh, NULL, &resp), -EINVAL);
	cr_assert_eq(rs_shadow_call(sh, &req, NULL), -EINVAL);
	cr_assert_eq(rs_shadow_call(sh, &req, &resp), -EINVAL); /* no target */
	cr_assert_eq(rs_shadower_flush(NULL, 0), -EINVAL);
	cr_assert_eq(rs_shadower_stats(NULL, &st), -EINVAL);
	cr_assert_eq(rs_shadower_stats(sh, NULL), -EINVAL);
	cr_assert_null(rs_divergences_json(NULL, 0));
	cr_assert_null(rs_shadower_new(NULL, none, service_backend(&c), &err));
	cr_assert_not_null(err);
	free(err);
	cr_assert_null(rs_shadower_new(NULL, none, none, NULL));
	rs_release(NULL, &resp);
	rs_release(sh, NULL);
	rs_config_free(NULL);
	rs_shadower_free(NULL);
	rs_shadower_free(sh);
	cr_assert_eq(atomic_load(&p.calls), 0);
}

Test(rs_shadow, the_primarys_error_is_the_callers_and_nothing_is_shadowed)
{
	struct service p = SERVICE(.fail = -ECONNRESET), c = SERVICE();
	struct rs_shadower *sh = service_shadower(&p, &c, NULL);
	struct rs_message req = { .method = "GET", .target = "/" }, resp;

	cr_assert_eq(rs_shadow_call(sh, &req, &resp), -ECONNRESET);
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	cr_assert_eq(service_stats(sh).sampled, 0);
	rs_shadower_free(sh);
	cr_assert_eq(atomic_load(&c.calls), 0);
}

/* ---- failures, shedding, timeouts ---- */

Test(rs_shadow, unsafe_methods_reach_the_candidate_only_with_replay_unsafe)
{
	struct rs_message req = { .method = "POST", .target = "/orders" }, resp;

	for (int unsafe = 0; unsafe < 2; unsafe++) {
		struct service p = SERVICE(), c = SERVICE();
		struct rs_shadower *sh = service_shadower(&p, &c, "replay-unsafe",
							  unsafe ? "true" : "false",
							  NULL);
		struct rs_stats st;

		cr_assert_eq(rs_shadow_call(sh, &req, &resp), 0);
		rs_release(sh, &resp);
		service_get(sh, "/orders/1");
		cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
		st = service_stats(sh);
		cr_assert_eq(st.sampled, 2);
		cr_assert_eq(st.unsafe_skipped, unsafe ? 0 : 1);
		cr_assert_eq(st.replayed, unsafe ? 2 : 1);
		cr_assert_eq(st.sampled, st.replayed + st.shed + st.unsafe_skipped);
		cr_assert_eq(atomic_load(&c.calls), unsafe ? 2 : 1);
		rs_shadower_free(sh);
	}
}

Test(rs_shadow, a_failing_candidate_is_a_candidate_error_never_a_divergence)
{
	struct service p = SERVICE(), c = SERVICE(.fail = -ECONNREFUSED);
	struct rs_shadower *sh = service_shadower(&p, &c, NULL);
	struct rs_stats st = settled(sh, "/users/7", 5);

	cr_assert_eq(st.replayed, 5);
	cr_assert_eq(st.candidate_errors, 5);
	cr_assert_eq(st.diverged, 0);
	rs_shadower_free(sh);
}

Test(rs_shadow, the_breaker_opens_after_consecutive_failures_and_sheds)
{
	struct service p = SERVICE(), c = SERVICE(.fail = -ECONNREFUSED);
	struct rs_shadower *sh = service_shadower(&p, &c, "replay-threads", "1", NULL);
	struct rs_stats st;

	for (int i = 0; i < 30; i++) {
		service_get(sh, "/users/7");
		cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	}
	st = service_stats(sh);
	cr_assert_eq(st.candidate_errors, 20);
	cr_assert_eq(st.shed, 10);
	cr_assert_eq(st.sampled, st.replayed + st.shed);
	cr_assert_eq(atomic_load(&c.calls), 20);
	rs_shadower_free(sh);
}

Test(rs_shadow, a_candidate_slower_than_the_timeout_is_never_waited_for)
{
	struct service p = SERVICE(), c = SERVICE(.sleep_ms = 300);
	struct rs_shadower *sh = service_shadower(&p, &c, "timeout", "50", NULL);
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 4; i++)
		service_get(sh, "/users/3");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_lt((t1.tv_sec - t0.tv_sec) * 1000 +
		     (t1.tv_nsec - t0.tv_nsec) / 1000000, 200);
	cr_assert_eq(rs_shadower_flush(sh, 5000), 0);
	cr_assert_eq(service_stats(sh).timeouts, 4);
	rs_shadower_free(sh); /* waits for the four sleeping calls */
	cr_assert_eq(atomic_load(&c.releases), 4);
}

/* ---- the store and shadow-dump ---- */

static char tmp[64];

static void tmp_setup(void)
{
	service_tmpdir(tmp, sizeof(tmp), "rs_shadow_test");
}

static void tmp_teardown(void)
{
	service_rmdir(tmp);
}

/* Runs shadow-dump with args (a shell word list) on store db; its stdout
 * into *out (malloc'd, may be NULL); returns its exit code. */
static int dump(const char *db, const char *args, char **out)
{
	const char *bin = getenv("SHADOW_DUMP") ? getenv("SHADOW_DUMP") :
						  "./shadow-dump";
	char cmd[512], buf[4096];
	size_t n, len = 0;
	char *text = NULL;
	FILE *f;
	int st;

	cr_assert_eq(access(bin, X_OK), 0, "%s not built", bin);
	snprintf(cmd, sizeof(cmd), "NO_COLOR=1 %s --store '%s' %s", bin, db, args);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		text = realloc(text, len + n + 1);
		memcpy(text + len, buf, n);
		len += n;
		text[len] = '\0';
	}
	st = pclose(f);
	cr_assert(WIFEXITED(st), "%s died", cmd);
	if (out)
		*out = text;
	else
		free(text);
	return WEXITSTATUS(st);
}

static int64_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* shadow-dump report --html on db writes a page. */
static void assert_report(const char *db)
{
	char args[192], html[128];
	FILE *f;

	snprintf(html, sizeof(html), "%s/report.html", tmp);
	snprintf(args, sizeof(args), "report --html '%s'", html);
	cr_assert_eq(dump(db, args, NULL), 0);
	f = fopen(html, "r");
	cr_assert_not_null(f, "no %s", html);
	cr_assert_gt(fread(args, 1, sizeof(args) - 1, f), 100);
	fclose(f);
}

/* 200 calls over two endpoints; the candidate diverges on every 10th. */
struct every_tenth {
	struct service good, bad;
};

static int tenth_call(void *ctx, const struct rs_message *req,
		      struct rs_message *resp)
{
	struct every_tenth *t = ctx;

	return service_call(strstr(req->target, "0?") ? &t->bad : &t->good,
			    req, resp);
}

static void tenth_release(void *ctx, struct rs_message *resp)
{
	free((void *)resp->body);
}

TestSuite(rs_store, .init = tmp_setup, .fini = tmp_teardown);

Test(rs_store, shadow_dump_stats_and_verdict_read_what_the_library_wrote)
{
	struct every_tenth t = { SERVICE(), SERVICE(.name = "bob") };
	struct service p = SERVICE();
	struct rs_config *cfg = rs_config_new();
	struct rs_shadower *sh;
	char db[128], target[64], *out = NULL, *err = NULL;
	json_t *st, *tot, *ep;
	json_error_t je;

	snprintf(db, sizeof(db), "%s/shadow.db", tmp);
	cr_assert_eq(rs_config_set(cfg, "store", db), 0);
	sh = rs_shadower_new(cfg, service_backend(&p),
			     (struct rs_backend){ tenth_call, tenth_release, &t },
			     &err);
	cr_assert_not_null(sh, "%s", err);
	rs_config_free(cfg);
	for (int i = 0; i < 200; i++) {
		snprintf(target, sizeof(target), "/%s/%d?x=%d",
			 i % 2 ? "users" : "orders", i, i);
		service_get(sh, target);
	}
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	/* read while the shadower is still open, as shadow-dump does */
	cr_assert_eq(dump(db, "stats --json", &out), 0);
	st = json_loads(out, 0, &je);
	cr_assert_not_null(st, "stats --json: %s", out);
	tot = json_object_get(st, "totals");
	cr_assert_eq(jint(tot, "captured"), 200);
	cr_assert_eq(jint(tot, "sampled"), 200);
	cr_assert_eq(jint(tot, "replayed"), 200);
	cr_assert_eq(jint(tot, "diverged"), 20);
	cr_assert_eq(jint(tot, "diverged_body"), 20);
	cr_assert_eq(jint(tot, "candidate_errors"), 0);
	cr_assert_eq(json_array_size(json_object_get(st, "endpoints")), 2);
	ep = json_array_get(json_object_get(st, "endpoints"), 0);
	cr_assert(!strcmp(json_string_value(json_object_get(ep, "endpoint")),
			  "GET /orders/{id}") ||
		  !strcmp(json_string_value(json_object_get(ep, "endpoint")),
			  "GET /users/{id}"));
	json_decref(st);
	free(out);
	rs_shadower_free(sh);

	/* 10% diverged: fails at 5%, passes at 20% */
	cr_assert_eq(dump(db, "verdict --max-rate 0.05 --min-samples 100", NULL), 1);
	cr_assert_eq(dump(db, "verdict --max-rate 0.2 --min-samples 50", NULL), 0);
	cr_assert_eq(dump(db, "verdict --min-samples 1000", NULL), 2);
	cr_assert_eq(dump(db, "groups --json", &out), 0);
	st = json_loads(out, 0, &je);
	cr_assert_eq(json_array_size(st), 1, "groups --json: %s", out);
	cr_assert_eq(jint(json_array_get(st, 0), "count"), 20);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(st, 0),
			 "endpoint")), "GET /orders/{id}");
	json_decref(st);
	free(out);
	assert_report(db);
	cr_assert_eq(dump(db, "list --json", &out), 0);
	st = json_loads(out, 0, &je);
	/* all 20 are one signature (GET /orders/{id}, $.name): --examples 10 */
	cr_assert_eq(json_array_size(st), 10, "list --json: %s", out);
	cr_assert_str_eq(first_diff(json_array_get(st, 0), "body", "path"),
			 "$.name");
	json_decref(st);
	free(out);
}

Test(rs_store, an_unopenable_store_is_reported_by_rs_shadower_new)
{
	struct service p = SERVICE(), c = SERVICE();
	struct rs_config *cfg = rs_config_new();
	char db[128], *err = NULL;

	snprintf(db, sizeof(db), "%s/no/such/dir/shadow.db", tmp);
	cr_assert_eq(rs_config_set(cfg, "store", db), 0);
	cr_assert_null(rs_shadower_new(cfg, service_backend(&p), service_backend(&c), &err));
	cr_assert_not_null(err);
	cr_assert_gt(strlen(err), 0);
	free(err);
	rs_config_free(cfg);
}

/* ---- rs_backend_http against python3 -m http.server ---- */

static pid_t server = -1;
static char base[64];

/* A free loopback port (the kernel's pick, closed again). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void http_setup(void)
{
	char port[16], path[128];
	FILE *f;

	tmp_setup();
	snprintf(path, sizeof(path), "%s/users.json", tmp);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("{\"users\":[{\"id\":1,\"name\":\"alice\"}]}\n", f);
	fclose(f);
	snprintf(port, sizeof(port), "%d", free_port());
	snprintf(base, sizeof(base), "http://127.0.0.1:%s", port);
	server = fork();
	if (server == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execlp("python3", "python3", "-m", "http.server", port, "--bind",
		       "127.0.0.1", "--directory", tmp, (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(server, 0);
}

static void http_teardown(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	tmp_teardown();
}

TestSuite(rs_http, .init = http_setup, .fini = http_teardown);

/* Calls GET target through b until the server is up (5 s at most). */
static void wait_for_server(struct rs_backend b)
{
	struct rs_message req = { .method = "GET", .target = "/users.json" }, resp;

	for (int i = 0; i < 500; i++) {
		if (b.call(b.ctx, &req, &resp) == 0) {
			b.release(b.ctx, &resp);
			return;
		}
		usleep(10000);
	}
	cr_assert_fail("python3 http.server did not come up on %s", base);
}

Test(rs_http, an_identical_http_candidate_gives_no_divergence)
{
	struct rs_backend b = rs_backend_http(base);
	struct rs_message req = { .method = "GET", .target = "/users.json" }, resp;
	struct rs_shadower *sh;
	char *err = NULL;
	struct rs_stats st;

	wait_for_server(b);
	cr_assert_eq(b.call(b.ctx, &req, &resp), 0);
	cr_assert_eq(resp.status, 200);
	cr_assert(resp.body_len > 10 && strstr(resp.body, "alice"));
	b.release(b.ctx, &resp);
	/* python's Date and Last-Modified may tick: Date is ignored */
	sh = rs_shadower_new(NULL, b, rs_backend_http(base), &err);
	cr_assert_not_null(sh, "%s", err);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(rs_shadow_call(sh, &req, &resp), 0);
		cr_assert_eq(resp.status, 200);
		rs_release(sh, &resp);
	}
	req.target = "/missing";
	cr_assert_eq(rs_shadow_call(sh, &req, &resp), 0);
	cr_assert_eq(resp.status, 404);
	rs_release(sh, &resp);
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	st = service_stats(sh);
	cr_assert_eq(st.replayed, 21);
	cr_assert_eq(st.candidate_errors, 0);
	if (st.diverged) {
		char *d = rs_divergences_json(sh, 1);

		cr_assert_fail("%lu divergences, the last: %s",
			       (unsigned long)st.diverged, d);
	}
	rs_shadower_free(sh);
}

Test(rs_http, a_refused_http_candidate_is_a_candidate_error)
{
	struct rs_backend b = rs_backend_http(base);
	struct rs_message req = { .method = "GET", .target = "/users.json" }, resp;
	char nobody[64];
	struct rs_shadower *sh;
	struct rs_stats st;

	wait_for_server(b);
	snprintf(nobody, sizeof(nobody), "http://127.0.0.1:%d", free_port());
	sh = rs_shadower_new(NULL, b, rs_backend_http(nobody), NULL);
	cr_assert_not_null(sh);
	cr_assert_eq(rs_shadow_call(sh, &req, &resp), 0);
	rs_release(sh, &resp);
	cr_assert_eq(rs_shadower_flush(sh, 10000), 0);
	st = service_stats(sh);
	cr_assert_eq(st.candidate_errors, 1);
	cr_assert_eq(st.diverged, 0);
	rs_shadower_free(sh);
}
