// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "message.h"
#include "replay.h"
#include "servers.h"
#include "util/loop.h"

/* ---- fixtures ---------------------------------------------------------- */

struct result {
	enum replay_outcome outcome;
	enum replay_error error;
	int status;
	char *body; /* candidate raw body */
	char *decoded; /* candidate decoded body */
	unsigned flags;
	size_t body_len;
	double ms;
	bool has_noise;
	char *noise_body;
	enum replay_error noise_error;
	unsigned rechecks;
	bool has_recheck;
	char *recheck_body;
	enum replay_error recheck_error;
	char *x_echo; /* candidate's X-Echo header */
	unsigned inflight_seen;
	uint64_t done_ms; /* when the callback came */
};

struct collector {
	struct result res[64];
	size_t n;
	bool want_recheck;
	int recheck_rc;
	struct replay *r;
	unsigned max_inflight_seen;
};

static void on_done(void *ctx, struct replay_job *job)
{
	struct collector *c = ctx;
	struct result *res;
	const struct replay_stats *st = replay_stats(c->r);

	if (st->inflight > c->max_inflight_seen)
		c->max_inflight_seen = st->inflight;
	cr_assert_lt(c->n, 64);
	res = &c->res[c->n++];
	res->done_ms = loop_now_ms();
	res->outcome = job->outcome;
	res->error = job->error;
	res->rechecks = job->rechecks;
	cr_assert_not_null(job->x);
	if (job->outcome == REPLAY_OK) {
		const char *e = headers_get(&job->candidate.headers, "X-Echo");

		res->status = job->candidate.status;
		res->body = strdup((char *)job->candidate.raw.data);
		res->body_len = job->candidate.raw.len;
		res->decoded = strdup((char *)job->candidate.decoded.data);
		res->flags = job->candidate.flags;
		res->ms = job->candidate_ms;
		res->x_echo = e ? strdup(e) : NULL;
		cr_expect_not_null(job->candidate.decoded.data);
	} else {
		cr_expect_eq(job->candidate.status, 0);
	}
	res->has_noise = job->has_noise;
	res->noise_error = job->noise_error;
	if (job->has_noise)
		res->noise_body = strdup((char *)job->noise.raw.data);
	res->has_recheck = job->has_recheck;
	res->recheck_error = job->recheck_error;
	if (job->has_recheck)
		res->recheck_body = strdup((char *)job->recheck.raw.data);
	if (c->want_recheck && job->rechecks == 0)
		c->recheck_rc = replay_recheck(c->r, job);
	else if (job->rechecks)
		cr_expect_eq(replay_recheck(c->r, job), -EALREADY);
}

static void collector_clean(struct collector *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->res[i].body);
		free(c->res[i].decoded);
		free(c->res[i].noise_body);
		free(c->res[i].recheck_body);
		free(c->res[i].x_echo);
	}
}

/* An exchange: headers as NULL-terminated name, value pairs. */
static struct exchange *mkx(const char *method, const char *target,
			    const char *body, ...)
{
	struct exchange *x = calloc(1, sizeof(*x));
	va_list ap;
	const char *n;

	cr_assert_not_null(x);
	cr_assert_eq(exchange_set_line(x, method, strlen(method), target,
				       strlen(target), NULL), 0);
	x->req.http_major = 1;
	x->req.http_minor = 1;
	if (body)
		cr_assert_eq(body_set(&x->req.body, body, strlen(body)), 0);
	va_start(ap, body);
	while ((n = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		cr_assert_eq(headers_add(&x->req.headers, n, strlen(n), v,
					 strlen(v)), 0);
	}
	va_end(ap);
	snprintf(x->client, sizeof(x->client), "127.0.0.1:40000");
	return x;
}

struct env {
	struct loop *loop;
	struct replay *r;
	struct collector c;
	struct servers_proc cand, noise;
	char url[128], noise_url[128];
	int port;
};

/* Starts `node candidate.js PORT MODE DELAY [KEY CERT]`. */
static void start_candidate(struct servers_proc *s, int port,
			    const char *mode, int delay, const char *key,
			    const char *cert)
{
	char p[16], d[16];
	const char *argv[] = { "node", servers_path("candidate.js"), p, mode,
			       d, key, cert, NULL };

	snprintf(p, sizeof(p), "%d", port);
	snprintf(d, sizeof(d), "%d", delay);
	cr_assert_eq(servers_start(s, argv, port, 5000), 0,
		     "cannot start candidate %s", mode);
}

static void env_start(struct env *e, const char *mode, int delay)
{
	memset(e, 0, sizeof(*e));
	cr_assert_eq(loop_new(&e->loop), 0);
	e->port = servers_free_port();
	cr_assert_gt(e->port, 0);
	if (mode)
		start_candidate(&e->cand, e->port, mode, delay, NULL, NULL);
	snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", e->port);
}

static void env_replay(struct env *e, struct replay_config *cfg)
{
	char err[256] = "";

	if (!cfg->candidate_url)
		cfg->candidate_url = e->url;
	cr_assert_eq(replay_new(e->loop, cfg, on_done, &e->c, &e->r, err,
				sizeof(err)), 0, "%s", err);
	e->c.r = e->r;
}

static void env_stop(struct env *e)
{
	replay_free(e->r);
	loop_free(e->loop);
	servers_stop(&e->cand);
	servers_stop(&e->noise);
	collector_clean(&e->c);
}

static void drain(struct env *e, long ms)
{
	cr_assert_eq(replay_drain(e->r, ms), 0, "drain timed out");
}

/* The echo's headers as "Name: value\n" lines, minus Content-Length. */
static void echo_parse(const char *body, char *method, char *url,
		       char *headers, size_t hcap, char *rbody,
		       char *content_length)
{
	json_error_t jerr;
	json_t *j = json_loads(body, 0, &jerr), *h;
	size_t i;
	json_t *pair;
	size_t off = 0;

	cr_assert_not_null(j, "echo is not JSON: %s", body);
	strcpy(method, json_string_value(json_object_get(j, "method")));
	strcpy(url, json_string_value(json_object_get(j, "url")));
	strcpy(rbody, json_string_value(json_object_get(j, "body")));
	h = json_object_get(j, "headers");
	headers[0] = 0;
	content_length[0] = 0;
	json_array_foreach(h, i, pair) {
		const char *n = json_string_value(json_array_get(pair, 0));
		const char *v = json_string_value(json_array_get(pair, 1));

		if (!strcasecmp(n, "Content-Length")) {
			strcpy(content_length, v);
			continue;
		}
		off += (size_t)snprintf(headers + off, hcap - off, "%s: %s\n",
					n, v);
	}
	json_decref(j);
}

/* A string member of the echo, in a static buffer. */
static const char *echo_str(const char *body, const char *key)
{
	static char out[256];
	json_t *j = json_loads(body, 0, NULL);

	cr_assert_not_null(j, "not JSON: %.80s", body);
	snprintf(out, sizeof(out), "%s",
		 json_string_value(json_object_get(j, key)) ?: "");
	json_decref(j);
	return out;
}

static int echo_int(const char *body, const char *key)
{
	json_t *j = json_loads(body, 0, NULL);
	int v;

	cr_assert_not_null(j);
	v = (int)json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

/* ---- request fidelity --------------------------------------------------- */

Test(replay, sends_the_captured_request_minus_hop_by_hop_headers)
{
	struct env e;
	struct replay_config cfg = { 0 };
	char url[160], m[16], u[256], h[2048], b[256], cl[16];

	env_start(&e, "echo", 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/", e.port);
	cfg.candidate_url = url;
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/users/7?x=1&y=%20", NULL,
			       "Host", "api.example",
			       "X-A", "1",
			       "Connection", "keep-alive, X-Hop",
			       "X-Hop", "secret",
			       "Keep-Alive", "timeout=5",
			       "TE", "trailers",
			       "Proxy-Connection", "keep-alive",
			       "Upgrade", "h2c",
			       "Trailer", "X-T",
			       "Accept-Encoding", "gzip, br",
			       "X-Empty", "",
			       "Cookie", "a=b",
			       "x-a", "repeat",
			       NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 1);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK, "error %s",
		     replay_error_name(e.c.res[0].error));
	cr_expect_eq(e.c.res[0].status, 200);
	cr_expect_str_eq(e.c.res[0].x_echo, "yes");
	echo_parse(e.c.res[0].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "GET");
	cr_expect_str_eq(u, "/v2/users/7?x=1&y=%20");
	/* No Accept, User-Agent or Expect of curl's own. */
	cr_expect_str_eq(h, "Host: api.example\n"
			    "X-A: 1\n"
			    "Accept-Encoding: gzip, br\n"
			    "X-Empty: \n"
			    "Cookie: a=b\n"
			    "x-a: repeat\n");
	cr_expect_str_eq(cl, "");
	cr_expect_str_eq(b, "");
	cr_expect_eq(replay_stats(e.r)->ok, 1);
	cr_expect_eq(replay_stats(e.r)->replayed, 1);
	env_stop(&e);
}

Test(replay, host_header_set_header_and_drop_header_rewrite)
{
	struct env e;
	const char *set[] = { "X-A: 2", "X-New:  new value " };
	const char *drop[] = { "cookie" };
	struct replay_config cfg = { .host_header = "candidate.local",
				     .set_headers = set, .n_set = 2,
				     .drop_headers = drop, .n_drop = 1 };
	char m[16], u[256], h[2048], b[256], cl[16];

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("OPTIONS", "/", NULL, "Host", "api.example",
			       "X-A", "1", "Cookie", "sid=1", "Accept",
			       "*/*", "X-B", "b", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 1);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	echo_parse(e.c.res[0].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "OPTIONS");
	cr_expect_str_eq(u, "/");
	cr_expect_str_eq(h, "Host: candidate.local\n"
			    "Accept: */*\n"
			    "X-B: b\n"
			    "X-A: 2\n"
			    "X-New: new value\n");
	env_stop(&e);
}

Test(replay, without_captured_host_the_candidate_host_is_sent)
{
	struct env e;
	struct replay_config cfg = { 0 };
	char m[16], u[256], h[2048], b[256], cl[16], want[128];

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/old", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	echo_parse(e.c.res[0].body, m, u, h, sizeof(h), b, cl);
	snprintf(want, sizeof(want), "Host: 127.0.0.1:%d\n", e.port);
	cr_expect_str_eq(h, want);
	env_stop(&e);
}

Test(replay, post_is_skipped_by_default)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("POST", "/orders", "{}", "Host", "h", NULL));
	replay_submit(e.r, mkx("DELETE", "/orders/1", NULL, "Host", "h", NULL));
	/* Reported at once, from inside replay_submit(). */
	cr_expect_eq(e.c.n, 2);
	replay_submit(e.r, mkx("GET", "/orders", NULL, "Host", "h", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 3);
	cr_expect_eq(e.c.res[0].outcome, REPLAY_UNSAFE_SKIPPED);
	cr_expect_eq(e.c.res[1].outcome, REPLAY_UNSAFE_SKIPPED);
	cr_assert_eq(e.c.res[2].outcome, REPLAY_OK);
	/* The candidate saw the GET only. */
	cr_expect_eq(echo_int(e.c.res[2].body, "count"), 1);
	cr_expect_eq(replay_stats(e.r)->unsafe_skipped, 2);
	cr_expect_eq(replay_stats(e.r)->submitted, 3);
	cr_expect_eq(replay_stats(e.r)->replayed, 1);
	env_stop(&e);
}

Test(replay, unsafe_methods_are_sent_with_their_body_when_allowed)
{
	struct env e;
	/* One at a time: results in submission order. */
	struct replay_config cfg = { .replay_unsafe = true, .max_inflight = 1 };
	char m[16], u[256], h[2048], b[256], cl[16];

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	/* A stale Content-Length is recomputed from the body. */
	replay_submit(e.r, mkx("POST", "/orders", "hello=1&x=\x01", "Host", "h",
			       "Content-Type", "text/plain", "Content-Length",
			       "999", "Expect", "100-continue", NULL));
	replay_submit(e.r, mkx("PUT", "/a", "raw", "Host", "h",
			       "Content-Length", "3", NULL));
	replay_submit(e.r, mkx("DELETE", "/a/1", NULL, "Host", "h", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(e.c.res[i].outcome, REPLAY_OK, "%d: %s", i,
			     replay_error_name(e.c.res[i].error));
	echo_parse(e.c.res[0].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "POST");
	cr_expect_str_eq(b, "hello=1&x=\x01");
	cr_expect_str_eq(cl, "11");
	cr_expect_str_eq(h, "Host: h\nContent-Type: text/plain\n"
			    "Expect: 100-continue\n");
	/* No Content-Type invented for a body without one. */
	echo_parse(e.c.res[1].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "PUT");
	cr_expect_str_eq(b, "raw");
	cr_expect_str_eq(cl, "3");
	cr_expect_str_eq(h, "Host: h\n");
	/* No body, no Content-Length: none sent. */
	echo_parse(e.c.res[2].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "DELETE");
	cr_expect_str_eq(cl, "");
	cr_expect_str_eq(b, "");
	cr_expect_eq(replay_stats(e.r)->unsafe_skipped, 0);
	env_stop(&e);
}

Test(replay, head_gets_status_and_headers_without_body)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("HEAD", "/x", NULL, "Host", "h", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_expect_eq(e.c.res[0].status, 200);
	cr_expect_eq(e.c.res[0].body_len, 0);
	cr_expect_str_eq(e.c.res[0].x_echo, "yes");
	env_stop(&e);
}

/* The differ compares decoded bodies: a gzip answer is decoded here as
 * http1 decodes the primary's, and its raw bytes are kept as sent. */
Test(replay, gzip_answer_is_decoded_and_raw_kept)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "gzip", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/zipped", NULL, "Host", "h", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_assert_eq((unsigned char)e.c.res[0].body[0], 0x1f, "raw is gzip");
	cr_assert_eq(e.c.res[0].flags & MESSAGE_DECODE_FAILED, 0);
	cr_assert_str_eq(echo_str(e.c.res[0].decoded, "url"), "/zipped");
	env_stop(&e);
}

Test(replay, response_body_is_capped_at_max_body)
{
	struct env e;
	struct replay_config cfg = { .max_body = 10 };

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/long/enough/to/pass/ten", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_expect_eq(e.c.res[0].body_len, 10);
	cr_expect_str_eq(e.c.res[0].body, "{\"method\":");
	cr_expect(e.c.res[0].flags & MESSAGE_TRUNCATED);
	env_stop(&e);
}

Test(replay, unsendable_target_is_a_bad_url_error)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, NULL, 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/a b", NULL, NULL));
	replay_submit(e.r, mkx("GET", "relative", NULL, NULL));
	replay_submit(e.r, mkx("GET", "/ok", NULL, "X-Bad", "a\r\nInjected: 1",
			       NULL));
	drain(&e, 2000);
	cr_assert_eq(e.c.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(e.c.res[i].outcome, REPLAY_CANDIDATE_ERROR);
		cr_expect_eq(e.c.res[i].error, REPLAY_ERR_BAD_URL);
	}
	cr_expect_eq(replay_stats(e.r)->errors[REPLAY_ERR_BAD_URL], 3);
	/* Not the candidate's fault: the breaker is not fed. */
	cr_expect_eq(replay_stats(e.r)->breaker, REPLAY_BREAKER_CLOSED);
	env_stop(&e);
}

/* ---- candidate errors --------------------------------------------------- */

static void expect_errors(const char *mode, int delay, long timeout,
			  enum replay_error want)
{
	struct env e;
	struct replay_config cfg = { .timeout_ms = timeout };
	uint64_t t0;

	env_start(&e, mode, delay);
	env_replay(&e, &cfg);
	t0 = loop_now_ms();
	for (int i = 0; i < 3; i++)
		replay_submit(e.r, mkx("GET", "/e", NULL, "Host", "h", NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(e.c.res[i].outcome, REPLAY_CANDIDATE_ERROR);
		cr_expect_eq(e.c.res[i].error, want, "%s: got %s", mode,
			     replay_error_name(e.c.res[i].error));
	}
	cr_expect_eq(replay_stats(e.r)->errors[want], 3);
	cr_expect_eq(replay_stats(e.r)->candidate_errors, 3);
	cr_expect_eq(replay_stats(e.r)->replayed, 3);
	cr_expect_eq(replay_stats(e.r)->ok, 0);
	if (want == REPLAY_ERR_TIMEOUT)
		cr_expect_lt(loop_now_ms() - t0, 450);
	env_stop(&e);
}

Test(replay, slow_candidate_times_out)
{
	expect_errors("echo", 500, 100, REPLAY_ERR_TIMEOUT);
}

Test(replay, refused_connection)
{
	expect_errors(NULL, 0, 1000, REPLAY_ERR_REFUSED);
}

Test(replay, reset_mid_response)
{
	expect_errors("reset", 0, 1000, REPLAY_ERR_RESET);
}

Test(replay, close_without_answer_is_a_reset)
{
	expect_errors("close", 0, 1000, REPLAY_ERR_RESET);
}

Test(replay, garbage_is_a_protocol_error)
{
	expect_errors("garbage", 0, 1000, REPLAY_ERR_PROTOCOL);
}

Test(replay, error_names)
{
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_REFUSED), "refused");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_TIMEOUT), "timeout");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_RESET), "reset");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_BAD_URL), "bad_url");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_TLS), "tls");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_BREAKER_OPEN),
			 "breaker_open");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_PROTOCOL), "protocol");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR_OTHER), "other");
	cr_expect_str_eq(replay_error_name(REPLAY_ERR__COUNT), "unknown");
	cr_expect_str_eq(replay_outcome_name(REPLAY_UNSAFE_SKIPPED),
			 "unsafe_skipped");
}

/* The classes the store and the metrics count, in the order their stats
 * and metrics list them. */
Test(replay, error_classes_by_name)
{
	static const char *const classes[] = {
		"refused", "timeout", "reset", "bad_url", "tls",
		"breaker_open", "protocol", "other",
	};

	cr_assert_eq(REPLAY_N_ERROR_CLASSES, 8);
	for (int k = 0; k < REPLAY_N_ERROR_CLASSES; k++) {
		cr_expect_str_eq(replay_error_name(REPLAY_ERR_CLASS_FIRST + k),
				 classes[k]);
		cr_expect_eq(replay_error_class(classes[k]),
			     REPLAY_ERR_CLASS_FIRST + k);
	}
	cr_expect_eq(replay_error_class("none"), REPLAY_ERR_OTHER);
	cr_expect_eq(replay_error_class("dns"), REPLAY_ERR_OTHER);
	cr_expect_eq(replay_error_class(NULL), REPLAY_ERR_OTHER);
}

Test(replay, latency_is_measured)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "echo", 80);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/slow", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_expect_geq(e.c.res[0].ms, 75);
	cr_expect_lt(e.c.res[0].ms, 1000);
	env_stop(&e);
}

/* ---- flow control ------------------------------------------------------- */

Test(replay, max_inflight_is_respected)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 3 };
	int max_active = 0;

	env_start(&e, "echo", 100);
	env_replay(&e, &cfg);
	for (int i = 0; i < 10; i++)
		replay_submit(e.r, mkx("GET", "/c", NULL, NULL));
	cr_expect_eq(replay_stats(e.r)->inflight, 3);
	cr_expect_eq(replay_stats(e.r)->queued, 7);
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 10);
	for (int i = 0; i < 10; i++) {
		int a;

		cr_assert_eq(e.c.res[i].outcome, REPLAY_OK);
		a = echo_int(e.c.res[i].body, "max_active");
		if (a > max_active)
			max_active = a;
	}
	/* The candidate itself saw at most, and at some point exactly, 3. */
	cr_expect_eq(max_active, 3);
	cr_expect_leq(e.c.max_inflight_seen, 3);
	env_stop(&e);
}

Test(replay, full_queue_sheds)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 1, .max_queue = 2 };

	env_start(&e, "echo", 50);
	env_replay(&e, &cfg);
	for (int i = 0; i < 5; i++)
		replay_submit(e.r, mkx("GET", "/q", NULL, NULL));
	cr_expect_eq(e.c.n, 2);
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 5);
	cr_expect_eq(e.c.res[0].outcome, REPLAY_SHED_QUEUE);
	cr_expect_eq(e.c.res[1].outcome, REPLAY_SHED_QUEUE);
	for (int i = 2; i < 5; i++)
		cr_expect_eq(e.c.res[i].outcome, REPLAY_OK);
	cr_expect_eq(replay_stats(e.r)->shed_queue, 2);
	cr_expect_eq(replay_stats(e.r)->replayed, 3);
	env_stop(&e);
}

/* Runs the loop until at most n jobs wait (5 s at most). */
static void run_until_queued(struct env *e, size_t n)
{
	uint64_t end = loop_now_ms() + 5000;

	while (replay_stats(e->r)->queued > n && loop_now_ms() < end)
		if (loop_run_once(e->loop, 100) < 0)
			break;
	cr_expect_leq(replay_stats(e->r)->queued, n);
}

/* What the daemon tells the kernel to pass over: a full queue stays
 * closed until half of it has drained, not for one slot at a time. */
Test(replay, full_queue_sheds_until_half_of_it_drains)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 1, .max_queue = 4 };
	const struct replay_stats *st;
	struct exchange *x;
	size_t n;

	env_start(&e, "echo", 40);
	env_replay(&e, &cfg);
	st = replay_stats(e.r);
	for (int i = 0; i < 5; i++)
		replay_submit(e.r, mkx("GET", "/q", NULL, NULL));
	cr_expect_eq(st->queued, 4);
	cr_expect_eq(replay_shedding(e.r), REPLAY_OK, "full, but not refused");
	replay_submit(e.r, mkx("GET", "/q", NULL, NULL));
	cr_expect_eq(e.c.n, 1);
	cr_expect_eq(e.c.res[0].outcome, REPLAY_SHED_QUEUE);
	cr_expect_eq(replay_shedding(e.r), REPLAY_SHED_QUEUE);
	run_until_queued(&e, 3);
	cr_expect_eq(replay_shedding(e.r), REPLAY_SHED_QUEUE,
		     "one slot free: still closed");
	/* A request passed over in the kernel meanwhile: counted as shed,
	 * never sent, no callback. */
	n = e.c.n;
	x = mkx("GET", "/k", NULL, NULL);
	cr_expect_eq(replay_shed(e.r, x, REPLAY_SHED_QUEUE), REPLAY_SHED_QUEUE);
	exchange_free(x);
	cr_expect_eq(e.c.n, n);
	cr_expect_eq(st->shed_queue, 2);
	run_until_queued(&e, 2);
	cr_expect_eq(replay_shedding(e.r), REPLAY_OK, "half drained: open");
	drain(&e, 5000);
	cr_expect_eq(e.c.n, 6);
	cr_expect_eq(st->replayed, 5);
	cr_expect_eq(st->submitted, 7);
	env_stop(&e);
}

/* What the kernel passes over is counted under the reason it was given,
 * unless it would not have been replayed at all; nothing is sent, no
 * callback runs. */
Test(replay, shed_in_the_kernel_is_counted_by_reason)
{
	static const struct {
		const char *method, *body;
		enum replay_outcome why, outcome;
	} cases[] = {
		{ "GET", NULL, REPLAY_SHED_BREAKER, REPLAY_SHED_BREAKER },
		{ "HEAD", NULL, REPLAY_SHED_QUEUE, REPLAY_SHED_QUEUE },
		{ "POST", "x", REPLAY_SHED_QUEUE, REPLAY_UNSAFE_SKIPPED },
	};
	struct env e;
	struct replay_config cfg = { 0 };
	const struct replay_stats *st;

	env_start(&e, NULL, 0); /* nothing listens: nothing may be sent */
	env_replay(&e, &cfg);
	st = replay_stats(e.r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct exchange *x = mkx(cases[i].method, "/a", cases[i].body,
					 NULL);

		cr_expect_eq(replay_shed(e.r, x, cases[i].why),
			     cases[i].outcome, "%s", cases[i].method);
		exchange_free(x);
	}
	cr_expect_eq(e.c.n, 0);
	cr_expect_eq(st->submitted, 3);
	cr_expect_eq(st->shed_breaker, 1);
	cr_expect_eq(st->errors[REPLAY_ERR_BREAKER_OPEN], 1);
	cr_expect_eq(st->shed_queue, 1);
	cr_expect_eq(st->unsafe_skipped, 1);
	cr_expect_eq(st->replayed + st->inflight + st->queued, 0);
	cr_expect_eq(replay_shedding(e.r), REPLAY_OK,
		     "the kernel's sheds do not close anything");
	env_stop(&e);
}

Test(replay, rate_limit_spaces_replays)
{
	struct env e;
	struct replay_config cfg = { .rate = 50 };
	uint64_t t0;
	long el;

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	t0 = loop_now_ms();
	for (int i = 0; i < 21; i++)
		replay_submit(e.r, mkx("GET", "/r", NULL, NULL));
	drain(&e, 5000);
	el = (long)(loop_now_ms() - t0);
	cr_assert_eq(e.c.n, 21);
	for (int i = 0; i < 21; i++)
		cr_expect_eq(e.c.res[i].outcome, REPLAY_OK);
	/* One token at once, then one per 20 ms. */
	cr_expect_geq(el, 390, "21 replays at 50/s took %ld ms", el);
	cr_expect_lt(el, 1500, "21 replays at 50/s took %ld ms", el);
	env_stop(&e);
}

Test(replay, slow_candidate_gets_replays_spread_out_not_in_waves)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 8 };
	uint64_t t0;
	long span, el;

	env_start(&e, "echo", 200);
	env_replay(&e, &cfg);
	cr_expect_eq(replay_send_rate(e.r), 0, "held before any call came back");
	t0 = loop_now_ms();
	for (int i = 0; i < 24; i++)
		replay_submit(e.r, mkx("GET", "/w", NULL, NULL));
	drain(&e, 10000);
	/* 1.25 x 8 calls per ~200 ms; shown as the metric replay_send_rate. */
	cr_expect(replay_send_rate(e.r) > 20 && replay_send_rate(e.r) < 51,
		  "send rate %.1f/s", replay_send_rate(e.r));
	el = (long)(loop_now_ms() - t0);
	cr_assert_eq(e.c.n, 24);
	for (int i = 0; i < 24; i++)
		cr_expect_eq(e.c.res[i].outcome, REPLAY_OK);
	/* The first 8 go out together, nothing being known of the
	 * candidate yet, and come back together. Their slots are refilled
	 * one by one, at 1.25 x 8 per 200 ms (one per 20 ms), so the next 8
	 * come back over ~140 ms rather than within a few. */
	span = (long)(e.c.res[15].done_ms - e.c.res[8].done_ms);
	cr_expect_geq(span, 70, "the second 8 came back within %ld ms", span);
	/* Spread, not held back: three rounds of 200 ms and the spreading. */
	cr_expect_lt(el, 2000, "24 replays, 8 at a time, took %ld ms", el);
	env_stop(&e);
}

/* ---- circuit breaker ---------------------------------------------------- */

static void run_for(struct env *e, long ms)
{
	uint64_t end = loop_now_ms() + (uint64_t)ms;

	while (loop_now_ms() < end)
		cr_assert_geq(loop_run_once(e->loop, (long)(end - loop_now_ms())),
			      0);
}

Test(replay, breaker_opens_half_opens_and_closes)
{
	struct env e;
	struct replay_config cfg = { .breaker_failures = 3,
				     .breaker_pause_ms = 200,
				     .max_inflight = 1, .timeout_ms = 1000 };
	const struct replay_stats *st;

	env_start(&e, NULL, 0); /* nothing listens: refused */
	env_replay(&e, &cfg);
	st = replay_stats(e.r);
	for (int i = 0; i < 3; i++)
		replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	drain(&e, 3000);
	cr_assert_eq(e.c.n, 3);
	cr_expect_eq(st->errors[REPLAY_ERR_REFUSED], 3);
	cr_assert_eq(st->breaker, REPLAY_BREAKER_OPEN);
	cr_expect_eq(st->breaker_opened, 1);
	cr_expect_eq(replay_shedding(e.r), REPLAY_SHED_BREAKER);

	/* Open: shed at once, never sent. */
	replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	cr_assert_eq(e.c.n, 5);
	cr_expect_eq(e.c.res[3].outcome, REPLAY_SHED_BREAKER);
	cr_expect_eq(e.c.res[4].error, REPLAY_ERR_BREAKER_OPEN);
	cr_expect_eq(st->shed_breaker, 2);
	cr_expect_eq(st->replayed, 3);

	/* After the pause: one probe; it fails, so open again. */
	run_for(&e, 250);
	cr_assert_eq(st->breaker, REPLAY_BREAKER_HALF_OPEN);
	cr_expect_eq(replay_shedding(e.r), REPLAY_OK, "a probe may go");
	replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	cr_expect_eq(replay_shedding(e.r), REPLAY_SHED_BREAKER,
		     "the probe is out");
	replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	drain(&e, 3000);
	cr_assert_eq(e.c.n, 7);
	cr_expect_eq(e.c.res[5].outcome, REPLAY_SHED_BREAKER,
		     "only one probe while half-open");
	cr_expect_eq(e.c.res[6].error, REPLAY_ERR_REFUSED);
	cr_expect_eq(st->breaker, REPLAY_BREAKER_OPEN);
	cr_expect_eq(st->breaker_opened, 2);

	/* The candidate comes back: the next probe closes the breaker. */
	start_candidate(&e.cand, e.port, "echo", 0, NULL, NULL);
	run_for(&e, 250);
	cr_assert_eq(st->breaker, REPLAY_BREAKER_HALF_OPEN);
	replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	drain(&e, 3000);
	cr_assert_eq(e.c.n, 8);
	cr_expect_eq(e.c.res[7].outcome, REPLAY_OK);
	cr_expect_eq(st->breaker, REPLAY_BREAKER_CLOSED);
	for (int i = 0; i < 4; i++)
		replay_submit(e.r, mkx("GET", "/b", NULL, NULL));
	drain(&e, 3000);
	cr_assert_eq(e.c.n, 12);
	for (int i = 8; i < 12; i++)
		cr_expect_eq(e.c.res[i].outcome, REPLAY_OK);
	cr_expect_eq(st->shed_breaker, 3);
	env_stop(&e);
}

/* ---- https -------------------------------------------------------------- */

static void make_cert(char *dir, char *key, char *cert)
{
	const char *argv[] = { "openssl", "req", "-x509", "-newkey",
			       "rsa:2048", "-nodes", "-days", "1", "-subj",
			       "/CN=127.0.0.1", "-addext",
			       "subjectAltName=IP:127.0.0.1", "-keyout", key,
			       "-out", cert, NULL };

	strcpy(dir, "/tmp/replay_tls_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sprintf(key, "%s/key.pem", dir);
	sprintf(cert, "%s/cert.pem", dir);
	argv[13] = key;
	argv[15] = cert;
	cr_assert_eq(servers_run(argv), 0, "openssl req failed");
}

static enum replay_error https_try(struct env *e, const char *cacert,
				   bool insecure)
{
	struct replay_config cfg = { .cacert = cacert, .insecure = insecure };
	char url[128];
	enum replay_error err;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/s", e->port);
	cfg.candidate_url = url;
	env_replay(e, &cfg);
	replay_submit(e->r, mkx("GET", "/t", NULL, "Host", "h", NULL));
	drain(e, 5000);
	cr_assert_eq(e->c.n, 1);
	err = e->c.res[0].error;
	if (err == REPLAY_ERR_NONE) {
		char m[16], u[64], h[256], b[16], cl[16];

		echo_parse(e->c.res[0].body, m, u, h, sizeof(h), b, cl);
		cr_expect_str_eq(u, "/s/t");
	}
	replay_free(e->r);
	e->r = NULL;
	collector_clean(&e->c);
	memset(&e->c, 0, sizeof(e->c));
	return err;
}

Test(replay, https_candidate_with_cacert_or_insecure)
{
	struct env e;
	char dir[64], key[128], cert[128];
	const char *rm[] = { "rm", "-rf", dir, NULL };

	make_cert(dir, key, cert);
	env_start(&e, NULL, 0);
	start_candidate(&e.cand, e.port, "https", 0, key, cert);
	cr_expect_eq(https_try(&e, cert, false), REPLAY_ERR_NONE);
	cr_expect_eq(https_try(&e, NULL, true), REPLAY_ERR_NONE);
	/* Neither: the self-signed cert is refused. */
	cr_expect_eq(https_try(&e, "/etc/ssl/certs/ca-certificates.crt",
			       false), REPLAY_ERR_TLS);
	env_stop(&e);
	servers_run(rm);
}

/* ---- noise and recheck -------------------------------------------------- */

Test(replay, noise_primary_gets_the_same_request_in_parallel)
{
	struct env e;
	struct replay_config cfg = { .replay_unsafe = true };
	int nport;
	char m1[16], u1[256], h1[1024], b1[64], c1[16];
	char m2[16], u2[256], h2[1024], b2[64], c2[16];
	uint64_t t0;

	env_start(&e, "echo", 200);
	nport = servers_free_port();
	start_candidate(&e.noise, nport, "echo", 200, NULL, NULL);
	snprintf(e.noise_url, sizeof(e.noise_url), "http://127.0.0.1:%d",
		 nport);
	cfg.noise_primary_url = e.noise_url;
	env_replay(&e, &cfg);
	t0 = loop_now_ms();
	replay_submit(e.r, mkx("PATCH", "/n?a=1", "data", "Host", "h", "X-Q",
			       "q", "Content-Length", "4", NULL));
	drain(&e, 5000);
	/* Both legs take 200 ms: in parallel, not one after the other. */
	cr_expect_lt(loop_now_ms() - t0, 380);
	cr_assert_eq(e.c.n, 1);
	cr_assert_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_assert(e.c.res[0].has_noise, "noise error %s",
		  replay_error_name(e.c.res[0].noise_error));
	echo_parse(e.c.res[0].body, m1, u1, h1, sizeof(h1), b1, c1);
	echo_parse(e.c.res[0].noise_body, m2, u2, h2, sizeof(h2), b2, c2);
	cr_expect_str_eq(m1, "PATCH");
	cr_expect_str_eq(m2, m1);
	cr_expect_str_eq(u2, u1);
	cr_expect_str_eq(h2, h1);
	cr_expect_str_eq(b2, "data");
	cr_expect_str_eq(c2, c1);
	cr_expect_eq(replay_stats(e.r)->noise_sent, 1);
	env_stop(&e);
}

Test(replay, noise_primary_down_still_delivers_the_candidate)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "echo", 0);
	snprintf(e.noise_url, sizeof(e.noise_url), "http://127.0.0.1:%d",
		 servers_free_port());
	cfg.noise_primary_url = e.noise_url;
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("GET", "/n", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 1);
	cr_expect_eq(e.c.res[0].outcome, REPLAY_OK);
	cr_expect_not(e.c.res[0].has_noise);
	cr_expect_eq(e.c.res[0].noise_error, REPLAY_ERR_REFUSED);
	cr_expect_eq(replay_stats(e.r)->noise_errors, 1);
	cr_expect_eq(replay_stats(e.r)->candidate_errors, 0);
	env_stop(&e);
}

Test(replay, recheck_asks_the_candidate_again_in_the_same_job)
{
	struct env e;
	struct replay_config cfg = { 0 };

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	e.c.want_recheck = true;
	replay_submit(e.r, mkx("GET", "/r", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 2);
	cr_expect_eq(e.c.recheck_rc, 0);
	cr_expect_eq(e.c.res[0].rechecks, 0);
	cr_expect_not(e.c.res[0].has_recheck);
	cr_expect_eq(e.c.res[1].rechecks, 1);
	cr_assert(e.c.res[1].has_recheck);
	/* The first answer is still there, the second is a new request. */
	cr_expect_eq(echo_int(e.c.res[1].body, "count"), 1);
	cr_expect_eq(echo_int(e.c.res[1].recheck_body, "count"), 2);
	cr_expect_eq(replay_stats(e.r)->rechecks, 1);
	cr_expect_eq(replay_stats(e.r)->replayed, 1);
	env_stop(&e);
}

/* ---- configuration ------------------------------------------------------ */

Test(replay, bad_config_is_refused_with_a_clear_message)
{
	struct loop *l;
	struct replay *r = NULL;
	struct collector c = { 0 };
	char err[256];
	const char *bad_set[] = { "NoColon" };
	const char *bad_drop[] = { "a b" };
	struct {
		struct replay_config cfg;
		const char *needle;
	} cases[] = {
		{ { .candidate_url = NULL }, "URL is required" },
		{ { .candidate_url = "ftp://h/" }, "http:// or https://" },
		{ { .candidate_url = "not a url" }, "not a URL" },
		{ { .candidate_url = "http://h:1/?q=1" }, "no ?query" },
		{ { .candidate_url = "http://h:1",
		    .noise_primary_url = "gopher://x" }, "--noise-primary" },
		{ { .candidate_url = "http://h:1",
		    .cacert = "/nonexistent/ca.pem" }, "--cacert" },
		{ { .candidate_url = "http://h:1", .set_headers = bad_set,
		    .n_set = 1 }, "--set-header" },
		{ { .candidate_url = "http://h:1", .drop_headers = bad_drop,
		    .n_drop = 1 }, "--drop-header" },
		{ { .candidate_url = "http://h:1", .host_header = "a b" },
		  "--host-header" },
		{ { .candidate_url = "http://h:1", .threads = 65 },
		  "--replay-threads 65: at most 64" },
		{ { .candidate_url = "http://h:1", .threads = 4,
		    .max_inflight = 3 }, "more than --max-inflight 3" },
	};

	cr_assert_eq(loop_new(&l), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		cr_expect_eq(replay_new(l, &cases[i].cfg, on_done, &c, &r, err,
					sizeof(err)), -EINVAL, "case %zu", i);
		cr_expect_null(r);
		cr_expect_neq(strstr(err, cases[i].needle), NULL,
			      "case %zu: '%s'", i, err);
	}
	replay_free(NULL);
	loop_free(l);
}

Test(replay, idle_connection_closed_by_the_candidate_is_let_go)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 1 };

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	for (int i = 0; i < 3; i++)
		replay_submit(e.r, mkx("GET", "/k", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 3);
	/* One kept-alive connection served all three. */
	cr_expect_eq(echo_int(e.c.res[2].body, "count"), 3);
	/* Its server goes away while it is idle: the loop hears of it once,
	 * then has nothing to do (no busy loop on a dead socket). */
	servers_stop(&e.cand);
	run_for(&e, 100);
	cr_expect_eq(loop_run_once(e.loop, 50), 0);
	/* A new server on the port: the next replay gets there. */
	start_candidate(&e.cand, e.port, "echo", 0, NULL, NULL);
	replay_submit(e.r, mkx("GET", "/k", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 4);
	cr_expect_eq(e.c.res[3].outcome, REPLAY_OK);
	cr_expect_eq(echo_int(e.c.res[3].body, "count"), 1);
	env_stop(&e);
}

Test(replay, free_with_work_in_flight_cancels_without_callbacks)
{
	struct env e;
	struct replay_config cfg = { .max_inflight = 2 };

	env_start(&e, "echo", 300);
	env_replay(&e, &cfg);
	for (int i = 0; i < 5; i++)
		replay_submit(e.r, mkx("GET", "/f", NULL, NULL));
	run_for(&e, 50);
	cr_expect_eq(replay_stats(e.r)->inflight, 2);
	cr_expect_eq(replay_drain(e.r, 20), -ETIMEDOUT);
	replay_free(e.r);
	e.r = NULL;
	cr_expect_eq(e.c.n, 0);
	/* The loop has nothing of the replayer's left to run. */
	cr_expect_eq(loop_run_once(e.loop, 50), 0);
	env_stop(&e);
}

Test(replay, reused_handles_forget_the_previous_method_and_body)
{
	struct env e;
	/* One slot: every request goes through the same pooled handle. */
	struct replay_config cfg = { .replay_unsafe = true, .max_inflight = 1 };
	char m[16], u[256], h[2048], b[256], cl[16];

	env_start(&e, "echo", 0);
	env_replay(&e, &cfg);
	replay_submit(e.r, mkx("HEAD", "/1", NULL, NULL));
	replay_submit(e.r, mkx("POST", "/2", "body", NULL));
	replay_submit(e.r, mkx("GET", "/3", NULL, NULL));
	replay_submit(e.r, mkx("OPTIONS", "/4", NULL, NULL));
	drain(&e, 5000);
	cr_assert_eq(e.c.n, 4);
	cr_expect_eq(e.c.res[0].body_len, 0);
	echo_parse(e.c.res[1].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "POST");
	cr_expect_str_eq(b, "body");
	echo_parse(e.c.res[2].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "GET");
	cr_expect_str_eq(u, "/3");
	cr_expect_str_eq(b, "");
	cr_expect_str_eq(cl, "");
	echo_parse(e.c.res[3].body, m, u, h, sizeof(h), b, cl);
	cr_expect_str_eq(m, "OPTIONS");
	cr_expect_str_eq(cl, "");
	env_stop(&e);
}
