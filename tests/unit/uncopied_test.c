// SPDX-License-Identifier: BSD-2-Clause
/*
 * Answers the kernel did not copy (SKIP records, sampling decided in the
 * kernel) through conn_table + http1: an uncopied answer pairs with its
 * request and is handed on marked MESSAGE_UNCOPIED; one the stream cannot
 * frame costs the exchanges it touches, counted, and never pairs a request
 * with another's answer.
 */
#include <criterion/criterion.h>

/* Records below leave their payload to be filled in. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fixture.h"
#include "http1.h"
#include "message.h"
#include "shadow_event.h"

enum { IN = SHADOW_DIR_IN, OUT = SHADOW_DIR_OUT };

struct feed {
	struct http1 *h;
	struct conn_table *t;
	struct fixture_result res;
	uint64_t off[2];
	uint64_t ts;
};

static void feed_open(struct feed *f, bool midstream)
{
	struct conn_limits lim = { 0 };
	struct {
		struct shadow_event h;
		struct shadow_open o;
	} rec = { { .tgid = 7, .fd = 9, .gen = 1, .kind = SHADOW_EV_OPEN,
		    .len = sizeof(struct shadow_open) } };

	memset(f, 0, sizeof(*f));
	f->h = http1_new(NULL, fixture_collect, &f->res);
	f->t = conn_table_new(&lim, &http1_sink_ops, f->h);
	cr_assert(f->h && f->t);
	rec.o.family = 2;
	rec.h.flags = midstream ? SHADOW_F_MIDSTREAM : 0;
	cr_assert_eq(conn_table_feed(f->t, &rec.h, &rec.o), 0);
}

static void feed_start(struct feed *f)
{
	feed_open(f, false);
}

/* The next bytes of a direction, at its stream offset, one record. */
static void data(struct feed *f, int dir, const char *s)
{
	struct shadow_event ev = { .ts_ns = f->ts += 10, .tgid = 7, .fd = 9,
				   .gen = 1, .kind = SHADOW_EV_DATA,
				   .dir = dir };

	ev.offset = f->off[dir];
	ev.len = ev.size = strlen(s);
	f->off[dir] += ev.size;
	cr_assert_eq(conn_table_feed(f->t, &ev, s), 0);
}

/* n outbound bytes not copied, starting `at` bytes past the stream's
 * offset (0: where it is). */
static int skip_at(struct feed *f, uint64_t at, uint32_t n)
{
	struct {
		struct shadow_event h;
		struct shadow_skip s;
	} rec = { { .tgid = 7, .fd = 9, .gen = 1, .kind = SHADOW_EV_SKIP,
		    .dir = OUT, .len = sizeof(struct shadow_skip) } };

	rec.h.ts_ns = f->ts += 10;
	rec.h.offset = f->off[OUT] + at;
	rec.h.size = n;
	rec.s.last_ts_ns = f->ts += 5;
	f->off[OUT] += at + n;
	return conn_table_feed(f->t, &rec.h, &rec.s);
}

static void feed_end(struct feed *f)
{
	conn_table_free(f->t);
	f->res.st = *http1_stats(f->h);
	http1_free(f->h);
}

#define GET(t) "GET " t " HTTP/1.1\r\nHost: a\r\n\r\n"
/* Every answer carries its request's target as body. */
#define OK(t) "HTTP/1.1 200 OK\r\nContent-Length: " t "\r\n\r\n"

static const char *answer(const char *target)
{
	static char buf[128];

	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(target), target);
	return buf;
}

/* A request and its copied answer. */
static void exchange(struct feed *f, const char *target)
{
	char req[64];

	snprintf(req, sizeof(req), GET("%s"), target);
	data(f, IN, req);
	data(f, OUT, answer(target));
}

/* Two whole exchanges after the case under test, then the close. */
static void tail_and_end(struct feed *f)
{
	exchange(f, "/c");
	exchange(f, "/d");
	feed_end(f);
}

/* The request for target was dropped: not handed on at all. */
static void assert_dropped(const struct fixture_result *r, const char *target)
{
	for (size_t i = 0; i < r->n; i++)
		cr_assert_str_neq(r->x[i]->req.target, target,
				  "%s was handed on", target);
}

/* No exchange handed on with an answer that is not its own. */
static void assert_paired(const struct fixture_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct exchange *x = r->x[i];

		if (x->resp.flags & MESSAGE_UNCOPIED)
			continue;
		cr_assert_str_eq((const char *)x->resp.raw.data,
				 x->req.target, "exchange %zu mis-paired", i);
	}
}

Test(uncopied, answer_pairs_with_its_request_between_copied_ones)
{
	struct feed f;
	const struct exchange *x;

	feed_start(&f);
	exchange(&f, "/a");
	data(&f, IN, GET("/b"));
	cr_assert_eq(skip_at(&f, 0, 4321), 0);
	exchange(&f, "/c");
	feed_end(&f);

	cr_assert_eq(f.res.n, 3);
	assert_paired(&f.res);
	x = f.res.x[1];
	cr_assert_str_eq(x->req.target, "/b");
	cr_assert_str_eq(x->endpoint, "GET /b");
	cr_assert(x->resp.flags & MESSAGE_UNCOPIED);
	cr_assert_eq(x->resp.status, 0);
	cr_assert_eq(x->resp.raw.len, 0);
	/* Latency runs to the skipped answer's last write. */
	cr_assert_eq(x->t_last_resp_ns, 45);
	cr_assert_eq(f.res.st.uncopied, 1);
	cr_assert_eq(f.res.st.uncopied_unframed, 0);
	cr_assert_eq(f.res.st.responses, 3);
	fixture_result_clean(&f.res);
}

Test(uncopied, conn_counts_skips_and_no_gap)
{
	struct conn_limits lim = { 0 };
	struct shadow_event ev = { .tgid = 7, .fd = 9, .gen = 1,
				   .kind = SHADOW_EV_DATA, .dir = IN };
	struct {
		struct shadow_event h;
		struct shadow_skip s;
	} rec = { { .tgid = 7, .fd = 9, .gen = 1, .kind = SHADOW_EV_SKIP,
		    .dir = OUT, .len = sizeof(struct shadow_skip),
		    .size = 100 } };
	const char *req = GET("/x");
	struct http1 *h = http1_new(NULL, NULL, NULL);
	struct conn_table *t = conn_table_new(&lim, &http1_sink_ops, h);
	const struct conn_stats *st;

	cr_assert(h && t);
	ev.len = ev.size = strlen(req);
	cr_assert_eq(conn_table_feed(t, &ev, req), 0);
	cr_assert_eq(conn_table_feed(t, &rec.h, &rec.s), 0);
	/* The same range again: a duplicate. */
	cr_assert_eq(conn_table_feed(t, &rec.h, &rec.s), 0);
	st = conn_table_stats(t);
	cr_assert_eq(st->skips, 1);
	cr_assert_eq(st->skip_bytes, 100);
	cr_assert_eq(st->gaps, 0);
	cr_assert_eq(st->duplicates, 1);
	/* Malformed: inbound, empty, or without its payload. */
	rec.h.dir = IN;
	cr_assert_eq(conn_table_feed(t, &rec.h, &rec.s), -EINVAL);
	rec.h.dir = OUT;
	rec.h.size = 0;
	cr_assert_eq(conn_table_feed(t, &rec.h, &rec.s), -EINVAL);
	rec.h.size = 10;
	rec.h.len = 4;
	cr_assert_eq(conn_table_feed(t, &rec.h, &rec.s), -EINVAL);
	cr_assert_eq(conn_table_stats(t)->bad_records, 3);
	conn_table_free(t);
	http1_free(h);
}

Test(uncopied, lost_bytes_before_the_skip_drop_its_exchange)
{
	struct feed f;

	feed_start(&f);
	exchange(&f, "/a");
	data(&f, IN, GET("/b"));
	/* 50 outbound bytes lost, then the uncopied range. */
	cr_assert_eq(skip_at(&f, 50, 300), 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	assert_dropped(&f.res, "/b"); /* its answer was partly lost */
	cr_assert_str_eq(f.res.x[0]->req.target, "/a");
	cr_assert_eq(f.res.st.uncopied, 0);
	cr_assert_geq(f.res.st.gap_drops, 1);
	fixture_result_clean(&f.res);
}

Test(uncopied, skip_inside_an_answer_is_unframed_and_counted)
{
	struct feed f;

	feed_start(&f);
	data(&f, IN, GET("/a"));
	/* Only the head of /a's answer was copied. */
	data(&f, OUT, OK("2"));
	cr_assert_eq(skip_at(&f, 0, 200), 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	assert_dropped(&f.res, "/a");
	for (size_t i = 0; i < f.res.n; i++)
		cr_assert(!(f.res.x[i]->resp.flags & MESSAGE_UNCOPIED));
	cr_assert_eq(f.res.st.uncopied_unframed, 1);
	cr_assert_eq(f.res.st.uncopied, 0);
	fixture_result_clean(&f.res);
}

Test(uncopied, skip_answering_two_pipelined_requests_drops_both)
{
	struct feed f;

	feed_start(&f);
	data(&f, IN, GET("/a") GET("/b"));
	cr_assert_eq(skip_at(&f, 0, 400), 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	assert_dropped(&f.res, "/a");
	assert_dropped(&f.res, "/b");
	cr_assert_eq(f.res.st.uncopied_unframed, 1);
	cr_assert_geq(f.res.st.unpaired, 2);
	fixture_result_clean(&f.res);
}

/* nginx answers a `return` before it reads the body: the kernel passed
 * the answer over, and the body read that followed ended it. */
Test(uncopied, early_answer_before_the_body_pairs_once_the_body_is_read)
{
	struct feed f;
	const struct exchange *x;

	feed_start(&f);
	data(&f, IN, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
	cr_assert_eq(skip_at(&f, 0, 90), 0);
	data(&f, IN, "abc");
	exchange(&f, "/c");
	feed_end(&f);

	assert_paired(&f.res);
	cr_assert_eq(f.res.n, 2);
	x = f.res.x[0];
	cr_assert_str_eq(x->req.target, "/p");
	cr_assert(x->resp.flags & MESSAGE_UNCOPIED);
	cr_assert_eq(x->req.body.len, 3);
	cr_assert_eq(f.res.st.uncopied, 1);
	cr_assert_eq(f.res.st.uncopied_unframed, 0);
	fixture_result_clean(&f.res);
}

/* An answer written partly before and partly after a read: the kernel
 * passed over the first part only; the rest is no response start. */
Test(uncopied, rest_of_a_split_answer_is_not_taken_for_the_next)
{
	struct feed f;

	feed_start(&f);
	data(&f, IN, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
	cr_assert_eq(skip_at(&f, 0, 40), 0);
	data(&f, IN, "abc");
	data(&f, OUT, "tail of /p's body");
	tail_and_end(&f);

	assert_paired(&f.res);
	for (size_t i = 0; i < f.res.n; i++)
		cr_assert(!(f.res.x[i]->resp.flags & MESSAGE_UNCOPIED) ||
			  !strcmp(f.res.x[i]->req.target, "/p"));
	/* The stream finds its framing again at /c's answer. */
	cr_assert_eq(f.res.n, 3, "%zu exchanges", f.res.n);
	cr_assert_str_eq(f.res.x[2]->req.target, "/d");
	cr_assert_eq(f.res.st.parse_errors, 0);
	cr_assert_geq(f.res.st.resyncs, 1);
	fixture_result_clean(&f.res);
}

Test(uncopied, close_after_an_uncopied_answer_hands_it_on)
{
	struct feed f;
	struct {
		struct shadow_event h;
		struct shadow_close c;
	} rec = { { .tgid = 7, .fd = 9, .gen = 1, .kind = SHADOW_EV_CLOSE,
		    .len = sizeof(struct shadow_close) } };

	feed_start(&f);
	data(&f, IN, GET("/a"));
	cr_assert_eq(skip_at(&f, 0, 77), 0);
	rec.h.ts_ns = f.ts += 10;
	rec.c.final_offset[IN] = f.off[IN];
	rec.c.final_offset[OUT] = f.off[OUT];
	cr_assert_eq(conn_table_feed(f.t, &rec.h, &rec.c), 0);
	cr_assert_eq(conn_table_stats(f.t)->gaps, 0);
	feed_end(&f);

	cr_assert_eq(f.res.n, 1);
	cr_assert(f.res.x[0]->resp.flags & MESSAGE_UNCOPIED);
	fixture_result_clean(&f.res);
}

/* A keep-alive connection joined before attach, at --sample 0: no answer
 * is ever copied, yet its exchanges are counted once it is seen at rest. */
Test(uncopied, connection_joined_midstream_is_counted_without_copies)
{
	struct feed f;
	size_t n_uncopied = 0;

	feed_open(&f, true);
	/* The tail of an answer written before attach. */
	data(&f, OUT, "123\"}");
	for (int i = 0; i < 5; i++) {
		char req[64];

		f.ts += 1000; /* the client thinks between requests */
		snprintf(req, sizeof(req), GET("/u/%d"), i);
		data(&f, IN, req);
		cr_assert_eq(skip_at(&f, 0, 120), 0);
	}
	feed_end(&f);

	for (size_t i = 0; i < f.res.n; i++)
		n_uncopied += !!(f.res.x[i]->resp.flags & MESSAGE_UNCOPIED);
	cr_assert_eq(n_uncopied, f.res.n);
	/* The last is held until something proves it: the close cannot. */
	cr_assert_geq(f.res.n, 3, "%zu of 5 counted", f.res.n);
	fixture_result_clean(&f.res);
}

/* The head of a request the kernel left unsampled, as its line alone
 * (REQLINE): "GET target" standing for the whole head. With skipped > 0
 * it carries, as the kernel's usual form does (SHADOW_F_AFTER_SKIP), the
 * SKIP of the skipped outbound bytes before it; flags adds to the
 * record's. */
static void reqline_flagged(struct feed *f, const char *target,
			    uint32_t skipped, uint16_t flags)
{
	char head[128];
	uint8_t payload[128];
	struct shadow_skip_before b = { .offset = f->off[OUT],
					.size = skipped };
	struct shadow_event ev = { .tgid = 7, .fd = 9, .gen = 1,
				   .kind = SHADOW_EV_REQLINE, .dir = IN };
	int n;

	if (skipped) {
		b.ts_ns = f->ts += 10;
		b.last_ts_ns = f->ts += 5;
		f->off[OUT] += skipped;
	}
	ev.ts_ns = f->ts += 10;
	snprintf(head, sizeof(head), GET("%s"), target);
	n = snprintf((char *)payload, sizeof(payload), "GET %s", target);
	ev.len = n;
	if (skipped) {
		memcpy(payload + n, &b, sizeof(b));
		ev.len += sizeof(b);
		ev.flags = SHADOW_F_AFTER_SKIP;
	}
	ev.flags |= flags;
	ev.offset = f->off[IN];
	ev.size = strlen(head);
	f->off[IN] += ev.size;
	cr_assert_eq(conn_table_feed(f->t, &ev, payload), 0);
}

static void reqline_carrying(struct feed *f, const char *target,
			     uint32_t skipped)
{
	reqline_flagged(f, target, skipped, 0);
}

static void reqline(struct feed *f, const char *target)
{
	reqline_carrying(f, target, 0);
}

/* The kernel's usual form of a close after an uncopied answer: one CLOSE carrying the SKIP of
 * the last answer (SHADOW_F_AFTER_SKIP), no SKIP record of its own. The
 * answer pairs with its request, ends at the close, and nothing is a gap;
 * a carried SKIP cut short is a malformed record, counted. */
Test(uncopied, close_carrying_the_last_answers_skip_pairs_it)
{
	struct feed f;
	struct {
		struct shadow_event h;
		struct shadow_close c;
		struct shadow_skip_before b;
	} rec = { { .tgid = 7, .fd = 9, .gen = 1, .kind = SHADOW_EV_CLOSE,
		    .flags = SHADOW_F_AFTER_SKIP,
		    .len = sizeof(struct shadow_close) +
			   sizeof(struct shadow_skip_before) } };

	feed_start(&f);
	data(&f, IN, GET("/a"));
	data(&f, OUT, answer("/a"));
	reqline(&f, "/b");
	rec.b.offset = f.off[OUT];
	rec.b.size = 77;
	rec.b.ts_ns = f.ts += 10;
	rec.b.last_ts_ns = f.ts += 5;
	f.off[OUT] += 77;
	rec.h.ts_ns = f.ts += 10;
	rec.c.final_offset[IN] = f.off[IN];
	rec.c.final_offset[OUT] = f.off[OUT];
	rec.c.flags = SHADOW_CLOSE_PEER_EOF;
	rec.h.len -= 1;
	cr_assert_eq(conn_table_feed(f.t, &rec.h, &rec.c), -EINVAL);
	cr_assert_eq(conn_table_stats(f.t)->bad_records, 1);
	rec.h.len += 1;
	cr_assert_eq(conn_table_feed(f.t, &rec.h, &rec.c), 0);
	cr_assert_eq(conn_table_stats(f.t)->gaps, 0);
	feed_end(&f);

	assert_paired(&f.res);
	cr_assert_eq(f.res.n, 2, "%zu exchanges", f.res.n);
	cr_assert_str_eq(f.res.x[1]->req.target, "/b");
	cr_assert(f.res.x[1]->resp.flags & MESSAGE_UNCOPIED);
	cr_assert(!(f.res.x[0]->resp.flags & MESSAGE_UNCOPIED));
	fixture_result_clean(&f.res);
}

Test(uncopied, head_sent_as_its_line_pairs_with_the_uncopied_answer)
{
	struct feed f;
	const struct exchange *x;

	feed_start(&f);
	exchange(&f, "/a");
	reqline(&f, "/users/42?x=1");
	cr_assert_eq(skip_at(&f, 0, 500), 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	cr_assert_eq(f.res.n, 4);
	x = f.res.x[1];
	cr_assert_str_eq(x->req.method, "GET");
	cr_assert_str_eq(x->req.target, "/users/42?x=1");
	cr_assert_str_eq(x->endpoint, "GET /users/{id}");
	cr_assert(x->req.flags & MESSAGE_HEAD_UNCOPIED);
	cr_assert(x->resp.flags & MESSAGE_UNCOPIED);
	cr_assert_eq(x->req.headers.n, 0);
	fixture_result_clean(&f.res);
}

/* A GET with a body in a later read: the kernel undid its decision, so
 * the answer is copied; the head's line still pairs with it, and the body
 * is no request of its own. */
Test(uncopied, undone_decision_after_a_line_never_mis_pairs)
{
	struct feed f;

	feed_start(&f);
	reqline(&f, "/b");
	data(&f, IN, "{\"unexpected\":\"body\"}");
	data(&f, OUT, answer("/b"));
	tail_and_end(&f);

	assert_paired(&f.res);
	for (size_t i = 0; i < f.res.n; i++)
		cr_assert(!(f.res.x[i]->resp.flags & MESSAGE_UNCOPIED));
	cr_assert_str_eq(f.res.x[f.res.n - 1]->req.target, "/d");
	fixture_result_clean(&f.res);
}

/* The kernel's line while the stream is inside a copied request: the two
 * disagree on where requests begin. The cut request is dropped, and the
 * server may still answer it: the uncopied answer cannot be told to be
 * the line's, so that exchange is dropped too (counted), never
 * mis-paired. */
Test(uncopied, line_inside_a_copied_request_drops_that_request)
{
	struct feed f;

	feed_start(&f);
	data(&f, IN, "GET /half HTTP/1.1\r\nHost: a\r\n");
	reqline(&f, "/b");
	cr_assert_eq(skip_at(&f, 0, 200), 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	assert_dropped(&f.res, "/half");
	assert_dropped(&f.res, "/b");
	cr_assert_eq(f.res.st.parse_errors, 1);
	cr_assert_eq(f.res.st.uncopied_unframed, 1);
	cr_assert_str_eq(f.res.x[f.res.n - 1]->req.target, "/d");
	fixture_result_clean(&f.res);
}

/* Joined before attach at --sample 0: nothing of the exchanges is copied
 * but their lines, and they are counted once the connection is at rest. */
Test(uncopied, midstream_lines_and_skips_are_counted)
{
	struct feed f;

	feed_open(&f, true);
	data(&f, IN, "ody of a request before attach");
	for (int i = 0; i < 5; i++) {
		char t[16];

		f.ts += 1000;
		snprintf(t, sizeof(t), "/u/%d", i);
		reqline(&f, t);
		cr_assert_eq(skip_at(&f, 0, 120), 0);
	}
	feed_end(&f);

	cr_assert_geq(f.res.n, 3, "%zu of 5 counted", f.res.n);
	for (size_t i = 0; i < f.res.n; i++)
		cr_assert(f.res.x[i]->req.flags & MESSAGE_HEAD_UNCOPIED);
	fixture_result_clean(&f.res);
}

/* The kernel's usual form: the line of the next unsampled request
 * carries the SKIP of the answer before it, which must count and pair
 * exactly as the two records would. */
Test(uncopied, line_carrying_the_skip_before_it_counts_as_both)
{
	struct feed f;
	const struct conn_stats *cs;

	feed_start(&f);
	exchange(&f, "/a");
	reqline(&f, "/users/1");
	reqline_carrying(&f, "/users/2", 300);
	reqline_carrying(&f, "/users/3", 1000);
	cr_assert_eq(skip_at(&f, 0, 70), 0);
	cs = conn_table_stats(f.t);
	cr_assert_eq(cs->skips, 3);
	cr_assert_eq(cs->skip_bytes, 1370);
	cr_assert_eq(cs->reqlines, 3);
	cr_assert_eq(cs->gaps, 0);
	cr_assert_eq(cs->bad_records, 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	cr_assert_eq(f.res.n, 6);
	for (int i = 1; i <= 3; i++) {
		const struct exchange *x = f.res.x[i];
		char t[32];

		snprintf(t, sizeof(t), "/users/%d", i);
		cr_assert_str_eq(x->req.target, t);
		cr_assert(x->req.flags & MESSAGE_HEAD_UNCOPIED);
		cr_assert(x->resp.flags & MESSAGE_UNCOPIED);
	}
	cr_assert_eq(f.res.st.parse_errors, 0);
	fixture_result_clean(&f.res);
}

/* Sampled requests the kernel passed over while the daemon was shedding
 * reach it flagged with the reason, so that they count as sampled and
 * shed, not as unsampled (a record giving both reasons is malformed:
 * malformed_lines_are_counted_bad). */
Test(uncopied, lines_passed_over_while_shedding_say_why)
{
	struct feed f;
	const unsigned shed = MESSAGE_SHED_QUEUE | MESSAGE_SHED_BREAKER;

	feed_start(&f);
	exchange(&f, "/a");
	reqline_flagged(&f, "/q", 0, SHADOW_F_SHED_QUEUE);
	reqline_flagged(&f, "/b", 120, SHADOW_F_SHED_BREAKER);
	reqline_carrying(&f, "/u", 80);
	cr_assert_eq(skip_at(&f, 0, 70), 0);
	cr_assert_eq(conn_table_stats(f.t)->bad_records, 0);
	tail_and_end(&f);

	assert_paired(&f.res);
	cr_assert_eq(f.res.n, 6);
	cr_assert_eq(f.res.x[0]->req.flags & shed, 0);
	cr_assert_eq(f.res.x[1]->req.flags & shed, MESSAGE_SHED_QUEUE);
	cr_assert_eq(f.res.x[2]->req.flags & shed, MESSAGE_SHED_BREAKER);
	cr_assert_eq(f.res.x[3]->req.flags & shed, 0);
	for (int i = 1; i <= 3; i++)
		cr_assert(f.res.x[i]->resp.flags & MESSAGE_UNCOPIED);
	fixture_result_clean(&f.res);
}

/* A carried SKIP shorter than its own struct, or of no bytes, is a
 * malformed record: counted, and nothing of it is taken. */
Test(uncopied, malformed_carried_skips_are_counted_bad)
{
	struct feed f;
	uint8_t payload[64] = "GET /x";
	struct shadow_event ev = { .tgid = 7, .fd = 9, .gen = 1,
				   .kind = SHADOW_EV_REQLINE, .dir = IN,
				   .flags = SHADOW_F_AFTER_SKIP, .len = 6,
				   .size = 30 };

	feed_start(&f);
	cr_assert_eq(conn_table_feed(f.t, &ev, payload), -EINVAL);
	ev.len = 6 + sizeof(struct shadow_skip_before); /* size 0 */
	cr_assert_eq(conn_table_feed(f.t, &ev, payload), -EINVAL);
	cr_assert_eq(conn_table_stats(f.t)->bad_records, 2);
	cr_assert_eq(conn_table_stats(f.t)->skips, 0);
	cr_assert_eq(conn_table_stats(f.t)->reqlines, 0);
	feed_end(&f);
	fixture_result_clean(&f.res);
}

Test(uncopied, malformed_lines_are_counted_bad)
{
	struct feed f;
	struct shadow_event ev = { .tgid = 7, .fd = 9, .gen = 1,
				   .kind = SHADOW_EV_REQLINE, .dir = OUT,
				   .len = 5, .size = 30 };

	feed_start(&f);
	cr_assert_eq(conn_table_feed(f.t, &ev, "GET /"), -EINVAL);
	ev.dir = IN;
	ev.len = 0;
	cr_assert_eq(conn_table_feed(f.t, &ev, ""), -EINVAL);
	ev.len = 40;
	cr_assert_eq(conn_table_feed(f.t, &ev, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		     -EINVAL);
	/* Shed for two reasons at once. */
	ev.len = 5;
	ev.flags = SHADOW_F_SHED_QUEUE | SHADOW_F_SHED_BREAKER;
	cr_assert_eq(conn_table_feed(f.t, &ev, "GET /"), -EINVAL);
	cr_assert_eq(conn_table_stats(f.t)->bad_records, 4);
	feed_end(&f);
	fixture_result_clean(&f.res);
}

/* Joined before attach in the middle of a status line the hunt kept: those
 * bytes were written before the first request, so its uncopied answer
 * still pairs (the hunt's bytes are not dated with the answer). */
Test(uncopied, midstream_hunt_bytes_are_dated_when_written)
{
	struct feed f;
	size_t plain, hunted;

	for (int k = 0; k < 2; k++) {
		feed_open(&f, true);
		data(&f, OUT, k ? "abc\r\nHTTP/1.1 20" : "abc\r\n");
		for (int i = 0; i < 5; i++) {
			f.ts += 1000;
			reqline(&f, "/u/1");
			cr_assert_eq(skip_at(&f, 0, 120), 0);
		}
		feed_end(&f);
		*(k ? &hunted : &plain) = f.res.n;
		fixture_result_clean(&f.res);
	}
	cr_assert_eq(hunted, plain, "%zu counted after a kept partial status "
		     "line, %zu without", hunted, plain);
	cr_assert_geq(plain, 4);
}
