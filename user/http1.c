// SPDX-License-Identifier: BSD-2-Clause
/*
 * HTTP/1.x framing and pairing. Each connection has two http_parsers (one
 * per direction) and a queue of request slots in stream order. Responses
 * are matched to the oldest slot that has none yet.
 *
 * Memory follows use, as thousands of keep-alive connections mostly sit
 * idle: a connection between exchanges holds no buffer (each is freed when
 * its message ends, a resync's candidate line when it is rejected), and its
 * queue lives inline until a pipelining client needs more slots, then on
 * the heap until it drains.
 *
 * A slot is LIVE (its exchange is being built), DROPPED (a placeholder: the
 * exchange is lost, but its response is known to come and is consumed in
 * its turn, which keeps the pairing of later slots exact) or VOID (taken
 * out of the pairing: whether its response will come is unknown).
 *
 * A slot marked !sync (a "barrier") follows a point where the number of
 * requests in between is unknown: an inbound gap across a message
 * boundary, a parse error, a midstream join. Such a slot pairs only with a
 * response that began after it was read, and only if the connection was
 * idle at that moment (see barrier_accepts()); otherwise it is dropped as
 * ambiguous and the barrier moves on to the next slot.
 */
#include "http1.h"

#include <errno.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "request_line.h"
#include "shadow_event.h"
#include "util/dbuf.h"
#include "util/decode.h"

#define SEQ_NONE UINT64_MAX
/* Longest start line a resync looks at (a request line past it is not
 * recognised; the stream stays unsynced until a shorter one comes). */
#define HUNT_MAX (16u << 10)
/* Slots kept inline: enough for a client that does not pipeline (one
 * request in flight, two while a pairing across a barrier is held, see
 * held_confirm()). The queue grows by doubling up to HTTP1_MAX_PIPELINE. */
#define Q_INLINE 2
_Static_assert((Q_INLINE & (Q_INLINE - 1)) == 0 &&
	       (HTTP1_MAX_PIPELINE & (HTTP1_MAX_PIPELINE - 1)) == 0 &&
	       Q_INLINE <= HTTP1_MAX_PIPELINE,
	       "slot seqs are masked: both sizes are powers of two");

enum side_mode {
	SIDE_SYNC, /* the parser runs */
	SIDE_HUNT, /* framing lost: looking for a start line */
	SIDE_DEAD, /* not HTTP any more (Upgrade, CONNECT) */
};

enum body_mode { BODY_NONE, BODY_CL, BODY_CHUNKED, BODY_EOF };

enum slot_state { SLOT_LIVE, SLOT_DROPPED, SLOT_VOID };

enum drop_reason {
	DROP_GAP,
	DROP_PARSE,
	DROP_OVERSIZE,
	DROP_UPGRADE,
	DROP_UNPAIRED,
	DROP_AMBIGUOUS,
	DROP_OVERFLOW,
	DROP_NOMEM,
};

struct slot {
	struct exchange *x; /* LIVE only; owned */
	uint64_t t_first;   /* ts of the read holding the first byte */
	uint8_t state;      /* enum slot_state */
	bool req_done;      /* the inbound side is finished with it */
	bool resp_assigned; /* a response was matched to it */
	bool resp_done;
	bool sync;          /* false: a barrier, see barrier_accepts() */
	bool at_read_start; /* its first byte began a read() */
	bool head;          /* HEAD: the response has no body */
	bool upgrade;       /* CONNECT or Upgrade: the connection ends here */
	bool held;          /* paired across a barrier, not confirmed yet */
};

struct side {
	http_parser p;
	struct h1_conn *c;
	int dir;
	uint8_t mode;  /* enum side_mode */
	uint8_t body;  /* enum body_mode of the current message */
	bool in_msg;   /* between message_begin and message_complete */
	bool in_chunk_data;
	bool stop;     /* a callback asked the parser to stop */
	bool oversize; /* this message's header section is over the cap */
	bool body_trunc;
	bool body_lost; /* a gap inside the body was skipped */
	bool value_open; /* a header value was read since the last field */
	uint64_t ts;     /* ts of the data() call being parsed */
	uint64_t call_id, last_complete_call;
	/* While hunting: the candidate start line. */
	struct dbuf hunt;
	bool at_line_start;
	uint64_t hunt_ts;
	bool hunt_at_read;
	/* Overrides for the message begun from the hunt buffer. */
	bool begin_override;
	uint64_t begin_ts;
	bool begin_at_read;
	size_t hdr_bytes;
	/* hdr holds the header line being read: the field name in
	 * [0, field_len), then the value. */
	struct dbuf url, hdr, bodybuf;
	size_t field_len;
	/* Responses only. */
	struct headers hdrs;
	uint64_t owner;     /* slot seq of the response being read */
	bool store;         /* owner is LIVE: keep what is read */
	bool keep_owner;    /* a 1xx went by: the final response follows */
};

struct h1_conn {
	struct http1 *h;
	struct conn_info info;
	struct side in, out;
	struct slot *q;          /* q_inline, or a heap array while deeper */
	uint32_t q_cap;          /* power of two <= HTTP1_MAX_PIPELINE */
	uint64_t q_first, q_end; /* slot seqs [q_first, q_end) are queued */
	uint64_t in_slot;        /* slot the inbound parser fills */
	bool barrier_pending;    /* the next slot created is a barrier */
	bool pipelined;          /* a request was read before the previous
				  * response was complete */
	bool upgraded;
	bool probation;          /* held slots exist: see held_confirm() */
	uint64_t confirm_at;     /* a request began at rest at this ts */
	uint64_t prev_resp_end;  /* ts of the last byte of the last response */
	uint64_t out_unknown_until; /* ts of the last outbound byte read
				     * without framing (skipped or lost) */
	uint64_t out_last_ts;    /* ts of the last outbound data() */
	struct slot q_inline[Q_INLINE];
};

struct http1 {
	struct http1_config cfg;
	http1_exchange_cb cb;
	void *ctx;
	uint64_t seq;
	struct http1_stats st;
	struct exchange *spare; /* http1_recycle()d, for the next request */
};

static const uint8_t zero_byte[1];

/* ---- small helpers ---- */

/* Hands b's bytes to body (which takes ownership), leaving b empty. */
static int take_body(struct dbuf *b, struct body *body)
{
	size_t len;
	char *p = dbuf_take(b, &len);

	if (!p)
		return body_set(body, "", 0);
	body_clean(body);
	body->data = (uint8_t *)p;
	body->len = len;
	return 0;
}

/* Where slot seq is stored, queued or not. */
static struct slot *slot_ref(struct h1_conn *c, uint64_t seq)
{
	return &c->q[seq & (c->q_cap - 1)];
}

static struct slot *slot_at(struct h1_conn *c, uint64_t seq)
{
	if (seq == SEQ_NONE || seq < c->q_first || seq >= c->q_end)
		return NULL;
	return slot_ref(c, seq);
}

/* Doubles the queue (a client pipelines deeper than it holds). Slot
 * pointers taken before are stale after. Returns 0 or -ENOMEM. */
static int q_grow(struct h1_conn *c)
{
	uint32_t cap = c->q_cap * 2;
	struct slot *q = calloc(cap, sizeof(*q));

	if (!q)
		return -ENOMEM;
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++)
		q[seq & (cap - 1)] = *slot_ref(c, seq);
	if (c->q != c->q_inline)
		free(c->q);
	c->q = q;
	c->q_cap = cap;
	return 0;
}

/* An empty queue goes back inline. */
static void q_shrink(struct h1_conn *c)
{
	if (c->q == c->q_inline || c->q_first != c->q_end)
		return;
	free(c->q);
	c->q = c->q_inline;
	c->q_cap = Q_INLINE;
}

static void count_drop(struct http1 *h, enum drop_reason r)
{
	switch (r) {
	case DROP_GAP: h->st.gap_drops++; break;
	case DROP_PARSE: h->st.parse_errors++; break;
	case DROP_OVERSIZE: h->st.oversize++; break;
	case DROP_UPGRADE: break; /* counted once per connection */
	case DROP_UNPAIRED: h->st.unpaired++; break;
	case DROP_AMBIGUOUS: h->st.ambiguous++; break;
	case DROP_OVERFLOW: h->st.overflow++; break;
	case DROP_NOMEM: h->st.nomem++; break;
	}
}

/* A LIVE slot becomes a placeholder; its loss is counted once. */
static void slot_drop(struct h1_conn *c, struct slot *s, enum drop_reason r)
{
	if (s->state != SLOT_LIVE)
		return;
	count_drop(c->h, r);
	exchange_free(s->x);
	s->x = NULL;
	s->state = SLOT_DROPPED;
}

/* Takes a slot out of the pairing altogether. */
static void slot_void(struct h1_conn *c, struct slot *s, enum drop_reason r)
{
	slot_drop(c, s, r);
	s->state = SLOT_VOID;
}

static void mark_upgraded(struct h1_conn *c)
{
	if (!c->upgraded)
		c->h->st.upgrades++;
	c->upgraded = true;
}

/* ---- finishing exchanges ---- */

static void fill_response_body(struct h1_conn *c, struct exchange *x)
{
	struct http_response *r = &x->resp;
	struct decode_result res;
	const char *ce;
	int rc;

	if (r->flags & MESSAGE_BODY_UNAVAILABLE) {
		if (body_set(&r->decoded, "", 0) < 0)
			c->h->st.nomem++;
		return;
	}
	ce = headers_get(&r->headers, "Content-Encoding");
	rc = decode_body(ce, r->raw.data, r->raw.len, c->h->cfg.max_body,
			 r->flags & MESSAGE_TRUNCATED, &res);
	if (rc == 0) {
		r->decoded.data = res.data;
		r->decoded.len = res.len;
		if (res.truncated && !(r->flags & MESSAGE_TRUNCATED)) {
			r->flags |= MESSAGE_TRUNCATED;
			c->h->st.truncated++;
		}
		return;
	}
	if (rc == -ENOMEM) {
		c->h->st.nomem++;
	} else {
		r->flags |= MESSAGE_DECODE_FAILED;
		c->h->st.decode_errors++;
	}
	if (body_set(&r->decoded, r->raw.data, r->raw.len) < 0)
		c->h->st.nomem++;
}

/* Hands on or frees every finished slot at the head of the queue. Slot
 * pointers taken before may be stale after (the queue may move inline). */
static void finish(struct h1_conn *c)
{
	struct http1 *h = c->h;

	while (c->q_first < c->q_end) {
		struct slot *s = slot_ref(c, c->q_first);
		struct exchange *x;

		if (!s->req_done)
			return;
		if (s->state != SLOT_VOID && (!s->resp_done || s->held))
			return;
		x = s->x;
		s->x = NULL;
		if (s->state == SLOT_LIVE && x) {
			x->seq = ++h->seq;
			x->tgid = c->info.tgid;
			x->fd = c->info.fd;
			x->gen = c->info.gen;
			memcpy(x->client, c->info.client, sizeof(x->client));
			h->st.exchanges++;
			if (h->cb)
				h->cb(h->ctx, x);
			else
				exchange_free(x);
		} else {
			exchange_free(x);
		}
		memset(s, 0, sizeof(*s));
		c->q_first++;
	}
	q_shrink(c);
}

/* ---- pairing ---- */

static uint64_t assign_slot(struct h1_conn *c, uint64_t start);

/* Whether barrier slot s may take a response that began at `start` (after
 * s was read). The requests lost before s cannot be counted, so this holds
 * only when the connection was provably at rest when s was read: the
 * previous response had ended, every outbound byte not framed (skipped
 * while resyncing, or lost) was written before it,
 * and s began a read. A pipelining client may still have a lost request
 * waiting for its answer: that is why every pairing from the barrier on
 * is held until proven (held_confirm(), sink_end()) or refuted by a spare
 * answer (held_refute()). */
static bool barrier_accepts(const struct h1_conn *c, const struct slot *s)
{
	return c->prev_resp_end < s->t_first &&
	       c->out_unknown_until < s->t_first && s->at_read_start;
}

/* A response came that no request is waiting for while exchanges paired
 * across a barrier are held: a request lost before the barrier was
 * answered late, so every held pairing is one off. Drop them all. */
static void held_refute(struct h1_conn *c)
{
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++) {
		struct slot *s = slot_at(c, seq);

		if (s->held) {
			slot_void(c, s, DROP_AMBIGUOUS);
			s->held = false;
		}
	}
	/* Every slot after the barrier was held: the next one starts over. */
	c->barrier_pending = true;
	c->probation = false;
	c->confirm_at = 0;
}

/* Whether the connection is at rest at ts: every held slot answered and
 * the last answer ended before ts. */
static bool held_at_rest(struct h1_conn *c, uint64_t ts)
{
	if (!c->probation || c->out.in_msg || c->prev_resp_end >= ts)
		return false;
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++) {
		struct slot *s = slot_at(c, seq);

		if (s->held && (!s->resp_done || !s->req_done))
			return false;
	}
	return true;
}

/* A request began at ts with the connection at rest. Once the outbound
 * stream is known whole up to ts (its next record is later and no gap
 * came first), no answer to spare went by: under the idle rule of
 * barrier_accepts() that proves the held pairings. */
static void held_confirm_candidate(struct h1_conn *c, uint64_t ts)
{
	if (held_at_rest(c, ts) && !c->confirm_at)
		c->confirm_at = ts;
}

static void held_confirm(struct h1_conn *c)
{
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++)
		slot_at(c, seq)->held = false;
	c->probation = false;
	c->confirm_at = 0;
	finish(c);
}

/* The slot the response beginning at `start` belongs to, or SEQ_NONE when
 * it belongs to none that can be told (it is then read and discarded). */
static uint64_t assign_response(struct h1_conn *c, uint64_t start)
{
	uint64_t r = assign_slot(c, start);

	if (r == SEQ_NONE && c->probation)
		held_refute(c);
	return r;
}

static uint64_t assign_slot(struct h1_conn *c, uint64_t start)
{
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++) {
		struct slot *s = slot_at(c, seq);

		if (s->state == SLOT_VOID || s->resp_assigned)
			continue;
		/* A response written before the request was read is not its
		 * response (an unsolicited 408, or the answer to a request
		 * lost in a gap). */
		if (start <= s->t_first)
			break;
		if (!s->sync && !barrier_accepts(c, s)) {
			/* The barrier moves on to the next slot still in the
			 * pairing, and this response is dropped with s (it
			 * may be s's). */
			uint64_t k = seq + 1;

			slot_void(c, s, DROP_AMBIGUOUS);
			while (k < c->q_end && slot_at(c, k)->state == SLOT_VOID)
				k++;
			if (k < c->q_end)
				slot_at(c, k)->sync = false;
			else
				c->barrier_pending = true;
			break;
		}
		if (!s->sync) {
			c->h->st.resyncs++;
			c->probation = true;
			for (uint64_t k = seq; k < c->q_end; k++)
				slot_at(c, k)->held = true;
		}
		s->sync = true;
		s->resp_assigned = true;
		return seq;
	}
	c->h->st.unpaired++;
	return SEQ_NONE;
}

/* The outbound stream lost its framing (or gave up): no slot still waiting
 * for a response can be paired any more. */
static void out_lost(struct h1_conn *c, enum drop_reason r)
{
	/* The bytes that would prove or refute held pairings are gone. */
	if (c->probation)
		held_refute(c);
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++) {
		struct slot *s = slot_at(c, seq);

		if (!s->resp_done && s->state != SLOT_VOID)
			slot_void(c, s, r);
	}
	c->out.owner = SEQ_NONE;
	c->out.store = false;
	c->out.keep_owner = false;
	c->barrier_pending = true;
}

/* ---- parser plumbing ---- */

static size_t header_cap(const struct side *sd)
{
	return sd->c->h->cfg.max_header_bytes;
}

/* Frees what the current message was read into: called when it ends, so
 * an idle connection holds no buffer. */
static void side_msg_release(struct side *sd)
{
	sd->value_open = false;
	sd->field_len = 0;
	dbuf_free(&sd->url);
	dbuf_free(&sd->hdr);
	dbuf_free(&sd->bodybuf);
	headers_clean(&sd->hdrs);
}

static void side_msg_reset(struct side *sd)
{
	sd->body = BODY_NONE;
	sd->in_chunk_data = false;
	sd->oversize = false;
	sd->body_trunc = false;
	sd->body_lost = false;
	sd->hdr_bytes = 0;
	side_msg_release(sd);
}

static struct slot *in_cur(struct side *sd)
{
	struct slot *s = slot_at(sd->c, sd->c->in_slot);

	return s && s->state == SLOT_LIVE ? s : NULL;
}

/* Where header bytes of the current message go, or NULL to skip them. */
static struct headers *cur_headers(struct side *sd)
{
	if (sd->dir == SHADOW_DIR_IN) {
		struct slot *s = in_cur(sd);

		return s ? &s->x->req.headers : NULL;
	}
	return sd->store ? &sd->hdrs : NULL;
}

static void count_header_bytes(struct side *sd, size_t n)
{
	sd->hdr_bytes += n;
	if (sd->hdr_bytes > header_cap(sd))
		sd->oversize = true;
}

static void flush_header(struct side *sd)
{
	struct headers *hs = cur_headers(sd);
	const char *line = sd->hdr.p ? sd->hdr.p : "";
	const char *value = line + sd->field_len;
	size_t vl = sd->hdr.len - sd->field_len;

	if (!sd->value_open)
		return;
	sd->value_open = false;
	while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
		vl--;
	if (hs && !sd->oversize &&
	    headers_add(hs, line, sd->field_len, value, vl) < 0)
		sd->c->h->st.nomem++;
	sd->hdr.len = 0;
	sd->field_len = 0;
}

/* The field name and its value share sd->hdr; both are under the header
 * cap together whenever the section is (count_header_bytes()). */
static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct side *sd = p->data;

	flush_header(sd);
	count_header_bytes(sd, n);
	if (!sd->oversize && dbuf_add(&sd->hdr, at, n) < 0)
		sd->oversize = true;
	sd->field_len = sd->hdr.len;
	return sd->stop;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct side *sd = p->data;

	sd->value_open = true;
	count_header_bytes(sd, n);
	if (!sd->oversize && dbuf_add(&sd->hdr, at, n) < 0)
		sd->oversize = true;
	return sd->stop;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct side *sd = p->data;

	count_header_bytes(sd, n);
	if (!sd->oversize && dbuf_add(&sd->url, at, n) < 0)
		sd->oversize = true;
	return sd->stop;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
	struct side *sd = p->data;

	count_header_bytes(sd, n);
	return sd->stop;
}

static void body_mode_set(struct side *sd, bool skip)
{
	http_parser *p = &sd->p;

	if (skip)
		sd->body = BODY_NONE;
	else if (p->flags & F_CHUNKED)
		sd->body = BODY_CHUNKED;
	else if (p->content_length > 0 && p->content_length != UINT64_MAX)
		sd->body = BODY_CL;
	else if (sd->dir == SHADOW_DIR_OUT && p->status_code / 100 != 1 &&
		 p->status_code != 204 && p->status_code != 304 &&
		 p->content_length == UINT64_MAX)
		sd->body = BODY_EOF;
	else
		sd->body = BODY_NONE;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct side *sd = p->data;
	size_t max = sd->c->h->cfg.max_body, take;
	bool keep = sd->dir == SHADOW_DIR_IN ? in_cur(sd) != NULL : sd->store;

	if (!keep || sd->body_lost)
		return sd->stop;
	take = n;
	if (sd->bodybuf.len + take > max) {
		take = max - sd->bodybuf.len;
		sd->body_trunc = true;
	}
	if (take && dbuf_add(&sd->bodybuf, at, take) < 0) {
		sd->c->h->st.nomem++;
		sd->body_lost = true;
	}
	return sd->stop;
}

static int on_chunk_header(http_parser *p)
{
	struct side *sd = p->data;

	sd->in_chunk_data = p->content_length > 0;
	return sd->stop;
}

static int on_chunk_complete(http_parser *p)
{
	struct side *sd = p->data;

	sd->in_chunk_data = false;
	return sd->stop;
}

/* ---- inbound: requests ---- */

static int req_begin(http_parser *p)
{
	struct side *sd = p->data;
	struct h1_conn *c = sd->c;
	struct http1 *h = c->h;
	struct slot *s, *prev;
	uint64_t ts = sd->begin_override ? sd->begin_ts : sd->ts;
	bool at_read = sd->begin_override ? sd->begin_at_read
					  : sd->last_complete_call != sd->call_id;

	sd->begin_override = false;
	side_msg_reset(sd);
	sd->in_msg = true;
	h->st.requests++;
	c->in_slot = SEQ_NONE;
	if (c->q_end - c->q_first == c->q_cap &&
	    (c->q_cap == HTTP1_MAX_PIPELINE || q_grow(c) < 0)) {
		enum drop_reason r = c->q_cap == HTTP1_MAX_PIPELINE
				     ? DROP_OVERFLOW : DROP_NOMEM;

		/* Too deep to track (or no memory to): give up the pairing of
		 * everything in flight; the connection resyncs when it is
		 * idle again. */
		count_drop(h, r);
		for (uint64_t seq = c->q_first; seq < c->q_end; seq++)
			slot_void(c, slot_at(c, seq), r);
		c->pipelined = true;
		c->barrier_pending = true;
		return 0;
	}
	/* Only positive evidence of pipelining counts (a request sharing a
	 * read with the one before; see also resp_complete()): an answer
	 * not seen yet may just have been lost. */
	prev = slot_at(c, c->q_end - 1);
	if (!at_read && prev)
		c->pipelined = true;
	s = slot_ref(c, c->q_end);
	memset(s, 0, sizeof(*s));
	s->t_first = ts;
	s->at_read_start = at_read;
	s->sync = !c->barrier_pending;
	c->barrier_pending = false;
	held_confirm_candidate(c, ts);
	s->held = c->probation;
	s->x = h->spare ? h->spare : exchange_new();
	h->spare = NULL;
	s->state = SLOT_LIVE;
	if (!s->x) {
		s->state = SLOT_DROPPED;
		h->st.nomem++;
	} else {
		s->x->t_first_req_ns = ts;
	}
	c->in_slot = c->q_end++;
	return 0;
}

static int req_headers_complete(http_parser *p)
{
	struct side *sd = p->data;
	struct slot *s = slot_at(sd->c, sd->c->in_slot);
	struct slot *live;
	const char *method;

	flush_header(sd);
	body_mode_set(sd, false);
	if (!s)
		return sd->stop;
	s->head = p->method == HTTP_HEAD;
	s->upgrade = p->upgrade || p->method == HTTP_CONNECT;
	live = in_cur(sd);
	if (!live || sd->oversize)
		return sd->stop;
	method = http_method_str(p->method);
	live->x->req.http_major = p->http_major;
	live->x->req.http_minor = p->http_minor;
	if (exchange_set_line(live->x, method, strlen(method),
			      sd->url.p ? sd->url.p : "", sd->url.len,
			      sd->c->h->cfg.endpoints) < 0)
		slot_drop(sd->c, live, DROP_NOMEM);
	return sd->stop;
}

static int req_end(http_parser *p)
{
	struct side *sd = p->data;
	struct h1_conn *c = sd->c;
	struct http1 *h = c->h;
	struct slot *s = slot_at(c, c->in_slot);

	sd->in_msg = false;
	sd->last_complete_call = sd->call_id;
	if (!s)
		return sd->stop;
	if (s->state == SLOT_LIVE && sd->oversize)
		slot_drop(c, s, DROP_OVERSIZE);
	if (s->state == SLOT_LIVE && sd->body_lost)
		slot_drop(c, s, DROP_GAP);
	if (s->state == SLOT_LIVE) {
		struct exchange *x = s->x;

		if (take_body(&sd->bodybuf, &x->req.body) < 0) {
			slot_drop(c, s, DROP_NOMEM);
		} else if (sd->body_trunc) {
			x->req.flags |= MESSAGE_TRUNCATED;
			h->st.truncated++;
		}
	}
	if (s->upgrade) {
		/* Whatever follows is another protocol. */
		mark_upgraded(c);
		slot_drop(c, s, DROP_UPGRADE);
		sd->mode = SIDE_DEAD;
		sd->stop = true;
	}
	s->req_done = true;
	c->in_slot = SEQ_NONE;
	finish(c);
	return sd->stop;
}

/* Between messages a side holds no buffer: an idle keep-alive connection
 * costs its struct h1_conn alone. */
static int req_complete(http_parser *p)
{
	int rc = req_end(p);

	side_msg_release(p->data);
	return rc;
}

/* ---- outbound: responses ---- */

static int resp_begin(http_parser *p)
{
	struct side *sd = p->data;
	struct h1_conn *c = sd->c;
	struct slot *s;

	side_msg_reset(sd);
	sd->in_msg = true;
	if (sd->keep_owner) {
		sd->keep_owner = false;
		s = slot_at(c, sd->owner);
		if (!s || s->state == SLOT_VOID)
			sd->owner = SEQ_NONE;
	} else {
		sd->owner = assign_response(c, sd->ts);
	}
	s = slot_at(c, sd->owner);
	sd->store = s && s->state == SLOT_LIVE;
	if (s && s->upgrade) {
		/* The answer to CONNECT or Upgrade: the rest is a tunnel. */
		sd->mode = SIDE_DEAD;
		sd->stop = true;
		s->resp_done = true;
		finish(c);
	}
	return sd->stop;
}

static int resp_headers_complete(http_parser *p)
{
	struct side *sd = p->data;
	struct slot *s = slot_at(sd->c, sd->owner);
	/* No body, whatever Content-Length says: HEAD, 1xx, 204, 304. */
	bool skip = (s && s->head) || p->status_code / 100 == 1 ||
		    p->status_code == 204 || p->status_code == 304;

	flush_header(sd);
	if (p->status_code < 100)
		return -1; /* http_parser takes any 3 digits: a parse error */
	if (p->status_code == 101) {
		/* Switched protocols without an Upgrade we saw. */
		mark_upgraded(sd->c);
		out_lost(sd->c, DROP_UPGRADE);
		sd->c->in.mode = SIDE_DEAD;
		sd->mode = SIDE_DEAD;
		sd->stop = true;
		/* Neither side parses again: free what they read into. */
		side_msg_release(&sd->c->in);
		side_msg_release(sd);
		return sd->stop;
	}
	body_mode_set(sd, skip);
	if (skip)
		return 1;
	return sd->stop;
}

static int resp_end(http_parser *p)
{
	struct side *sd = p->data;
	struct h1_conn *c = sd->c;
	struct http1 *h = c->h;
	struct slot *s, *next;

	sd->in_msg = false;
	sd->last_complete_call = sd->call_id;
	if (p->status_code / 100 == 1) {
		h->st.interim++;
		sd->keep_owner = true;
		return sd->stop;
	}
	h->st.responses++;
	c->prev_resp_end = c->out_last_ts;
	s = slot_at(c, sd->owner);
	next = s ? slot_at(c, sd->owner + 1) : NULL;
	sd->owner = SEQ_NONE;
	if (!s)
		return sd->stop;
	/* The next request was read before this answer was complete: the
	 * client pipelines (see barrier_accepts()). */
	if (next && next->state != SLOT_VOID && next->t_first < c->out_last_ts)
		c->pipelined = true;
	if (s->state == SLOT_LIVE && sd->oversize)
		slot_drop(c, s, DROP_OVERSIZE);
	if (s->state == SLOT_LIVE) {
		struct http_response *r = &s->x->resp;

		r->status = p->status_code;
		r->headers = sd->hdrs;
		memset(&sd->hdrs, 0, sizeof(sd->hdrs));
		if (sd->body_lost)
			r->flags |= MESSAGE_BODY_UNAVAILABLE;
		if (sd->body_trunc) {
			r->flags |= MESSAGE_TRUNCATED;
			h->st.truncated++;
		}
		if (take_body(&sd->bodybuf, &r->raw) < 0)
			slot_drop(c, s, DROP_NOMEM);
		else
			fill_response_body(c, s->x);
		if (s->x)
			s->x->t_last_resp_ns = c->out_last_ts;
	}
	s->resp_done = true;
	finish(c);
	return sd->stop;
}

static int resp_complete(http_parser *p)
{
	int rc = resp_end(p);

	side_msg_release(p->data);
	return rc;
}

static const http_parser_settings req_settings = {
	.on_message_begin = req_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = req_headers_complete,
	.on_body = on_body,
	.on_message_complete = req_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_complete = on_chunk_complete,
};

static const http_parser_settings resp_settings = {
	.on_message_begin = resp_begin,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = resp_headers_complete,
	.on_body = on_body,
	.on_message_complete = resp_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_complete = on_chunk_complete,
};

static void side_parser_reset(struct side *sd)
{
	void *self = sd;

	http_parser_init(&sd->p, sd->dir == SHADOW_DIR_IN ? HTTP_REQUEST
							  : HTTP_RESPONSE);
	sd->p.data = self;
	sd->in_msg = false;
	sd->stop = false;
}

/* ---- losing and finding the framing ---- */

/* The current stream lost its framing: start hunting for a start line. */
static void side_lose(struct side *sd, enum drop_reason r)
{
	struct h1_conn *c = sd->c;

	if (sd->dir == SHADOW_DIR_IN) {
		struct slot *s = slot_at(c, c->in_slot);

		/* The server read the cut request too and will answer it:
		 * keep it as a placeholder so its answer is consumed. */
		if (s) {
			slot_drop(c, s, r);
			s->req_done = true;
		}
		c->in_slot = SEQ_NONE;
		c->barrier_pending = true;
	} else {
		out_lost(c, r);
	}
	side_msg_reset(sd);
	sd->mode = SIDE_HUNT;
	sd->in_msg = false;
	dbuf_free(&sd->hunt);
	sd->at_line_start = false;
	finish(c);
}

/* "METHOD SP target SP HTTP/1.x CRLF", as include/request_line.h states. */
bool http1_request_line_ok(const char *s, size_t n)
{
	size_t i = 0, m;

	while (i < n && request_method_char((uint8_t)s[i]))
		i++;
	if (i == 0 || i > REQUEST_METHOD_MAX || i >= n || s[i] != ' ')
		return false;
	m = ++i;
	while (i < n && request_target_char((uint8_t)s[i]))
		i++;
	if (i == m || i >= n || s[i] != ' ')
		return false;
	i++;
	return n - i == 10 && memcmp(s + i, "HTTP/1.", 7) == 0 &&
	       request_minor_ok((uint8_t)s[i + 7]) &&
	       s[i + 8] == '\r' && s[i + 9] == '\n';
}

/* "HTTP/1.x SP NNN [SP reason] CRLF" */
static bool status_line_ok(const char *s, size_t n)
{
	if (n < 14 || memcmp(s, "HTTP/1.", 7) != 0 ||
	    (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
	    s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' ||
	    s[11] < '0' || s[11] > '9' || s[n - 2] != '\r' || s[n - 1] != '\n')
		return false;
	if (n == 14)
		return true;
	if (s[12] != ' ')
		return false;
	for (size_t i = 13; i < n - 2; i++)
		if ((uint8_t)s[i] < ' ' && s[i] != '\t')
			return false;
	return true;
}

static void side_feed(struct side *sd, const uint8_t *p, size_t n);

/* Bytes passed over without framing; outbound ones may have held the
 * start of any response written at that time. */
static void hunt_skip(struct side *sd, size_t n)
{
	sd->c->h->st.skipped_bytes += n;
	if (sd->dir == SHADOW_DIR_OUT && n)
		sd->c->out_unknown_until = sd->ts;
}

/* Scans for a start line; on finding one, resumes parsing with it. */
static void side_hunt(struct side *sd, const uint8_t *p, size_t n,
		      bool call_start)
{
	size_t pos = 0;

	while (pos < n) {
		const uint8_t *nl;
		size_t take;

		if (sd->hunt.len == 0) {
			bool start = (pos == 0 && call_start) ||
				     sd->at_line_start;
			uint8_t first = p[pos];

			if (!start || (sd->dir == SHADOW_DIR_IN
				       ? !request_method_char(first) : first != 'H')) {
				nl = memchr(p + pos, '\n', n - pos);
				take = nl ? (size_t)(nl - (p + pos)) + 1
					  : n - pos;
				hunt_skip(sd, take);
				pos += take;
				sd->at_line_start = nl != NULL;
				continue;
			}
			sd->hunt_ts = sd->ts;
			sd->hunt_at_read = pos == 0 && call_start;
		}
		nl = memchr(p + pos, '\n', n - pos);
		take = nl ? (size_t)(nl - (p + pos)) + 1 : n - pos;
		if (dbuf_add(&sd->hunt, (const char *)p + pos, take) < 0) {
			hunt_skip(sd, sd->hunt.len + take);
			dbuf_free(&sd->hunt);
			pos += take;
			sd->at_line_start = nl != NULL;
			continue;
		}
		pos += take;
		if (!nl)
			return;
		if (sd->dir == SHADOW_DIR_IN
		    ? http1_request_line_ok(sd->hunt.p, sd->hunt.len)
		    : status_line_ok(sd->hunt.p, sd->hunt.len)) {
			size_t line_len;
			char *line = dbuf_take(&sd->hunt, &line_len);

			sd->c->h->st.resyncs++;
			sd->mode = SIDE_SYNC;
			side_parser_reset(sd);
			sd->begin_override = true;
			sd->begin_ts = sd->hunt_ts;
			sd->begin_at_read = sd->hunt_at_read;
			side_feed(sd, (const uint8_t *)line, line_len);
			sd->begin_override = false;
			free(line);
			if (pos < n)
				side_feed(sd, p + pos, n - pos);
			return;
		}
		hunt_skip(sd, sd->hunt.len);
		dbuf_free(&sd->hunt);
		sd->at_line_start = true;
	}
}

/* Runs the parser over p[0..n) (SYNC mode), handling errors and stops. */
static void side_feed(struct side *sd, const uint8_t *p, size_t n)
{
	const http_parser_settings *set = sd->dir == SHADOW_DIR_IN
					  ? &req_settings : &resp_settings;
	size_t done;
	enum http_errno e;

	if (sd->mode == SIDE_DEAD) {
		sd->c->h->st.skipped_bytes += n;
		return;
	}
	if (sd->mode == SIDE_HUNT) {
		side_hunt(sd, p, n, false);
		return;
	}
	done = http_parser_execute(&sd->p, set, (const char *)p, n);
	if (sd->stop || sd->mode == SIDE_DEAD) {
		sd->stop = false;
		if (sd->mode == SIDE_DEAD)
			sd->c->h->st.skipped_bytes += n - done;
		return;
	}
	e = HTTP_PARSER_ERRNO(&sd->p);
	if (e == HPE_OK) {
		if (done < n && sd->p.upgrade) {
			/* Parser stopped at an upgrade it recognised; the
			 * completion callback has handled the connection. */
			sd->c->h->st.skipped_bytes += n - done;
			sd->mode = SIDE_DEAD;
		}
		return;
	}
	side_lose(sd, e == HPE_HEADER_OVERFLOW ? DROP_OVERSIZE : DROP_PARSE);
	if (done < n)
		side_hunt(sd, p + done, n - done, false);
}

/* ---- the sink ---- */

static void side_init(struct side *sd, struct h1_conn *c, int dir,
		      bool midstream)
{
	size_t hcap = c->h->cfg.max_header_bytes;

	sd->c = c;
	sd->dir = dir;
	sd->owner = SEQ_NONE;
	dbuf_init(&sd->url, hcap);
	dbuf_init(&sd->hdr, hcap);
	dbuf_init(&sd->bodybuf, c->h->cfg.max_body);
	dbuf_init(&sd->hunt, hcap < HUNT_MAX ? hcap : HUNT_MAX);
	side_parser_reset(sd);
	sd->mode = midstream ? SIDE_HUNT : SIDE_SYNC;
}

static void side_clean(struct side *sd)
{
	dbuf_free(&sd->hunt);
	side_msg_release(sd);
}

static void *sink_open(void *ctx, const struct conn_info *info, uint64_t ts)
{
	struct http1 *h = ctx;
	struct h1_conn *c = calloc(1, sizeof(*c));

	h->st.conns++;
	if (!c) {
		h->st.nomem++;
		return NULL;
	}
	c->h = h;
	c->info = *info;
	c->q = c->q_inline;
	c->q_cap = Q_INLINE;
	c->in_slot = SEQ_NONE;
	side_init(&c->in, c, SHADOW_DIR_IN, info->midstream);
	side_init(&c->out, c, SHADOW_DIR_OUT, info->midstream);
	if (info->midstream) {
		h->st.conns_midstream++;
		c->barrier_pending = true;
	}
	return c;
}

static void sink_data(void *ctx, void *state, int dir, const uint8_t *p,
		      size_t n, uint64_t ts)
{
	struct h1_conn *c = state;
	struct side *sd;

	if (!c) {
		((struct http1 *)ctx)->st.skipped_bytes += n;
		return;
	}
	sd = dir == SHADOW_DIR_IN ? &c->in : &c->out;
	sd->ts = ts;
	sd->call_id++;
	if (dir == SHADOW_DIR_OUT) {
		c->out_last_ts = ts;
		if (c->confirm_at && ts > c->confirm_at && c->probation)
			held_confirm(c);
	}
	if (sd->mode == SIDE_HUNT)
		side_hunt(sd, p, n, true);
	else
		side_feed(sd, p, n);
}

/* Skips n lost bytes inside a body of known extent; false if the gap may
 * reach past the current message. */
static bool side_skip_body(struct side *sd, uint64_t n)
{
	http_parser *p = &sd->p;
	const http_parser_settings *set = sd->dir == SHADOW_DIR_IN
					  ? &req_settings : &resp_settings;

	if (!sd->in_msg)
		return false;
	if (sd->body == BODY_EOF) {
		sd->body_lost = true;
		return true;
	}
	if (!(sd->body == BODY_CL ||
	      (sd->body == BODY_CHUNKED && sd->in_chunk_data)) ||
	    p->content_length == 0 || p->content_length == UINT64_MAX ||
	    n > p->content_length || n == 0)
		return false;
	sd->body_lost = true;
	/* Leave one byte for the parser to take, so it makes its own state
	 * change at the end of the body. */
	p->content_length -= n - 1;
	http_parser_execute(p, set, (const char *)zero_byte, 1);
	if (sd->stop) {
		sd->stop = false;
		return true;
	}
	return HTTP_PARSER_ERRNO(p) == HPE_OK;
}

static void sink_gap(void *ctx, void *state, int dir, uint64_t n, uint64_t ts)
{
	struct h1_conn *c = state;
	struct side *sd;

	if (!c)
		return;
	sd = dir == SHADOW_DIR_IN ? &c->in : &c->out;
	sd->ts = ts;
	sd->call_id++;
	if (dir == SHADOW_DIR_OUT)
		c->out_last_ts = ts;
	if (sd->mode == SIDE_DEAD)
		return;
	if (sd->mode == SIDE_HUNT) {
		dbuf_free(&sd->hunt);
		sd->at_line_start = false;
		if (dir == SHADOW_DIR_OUT)
			c->out_unknown_until = ts;
		return;
	}
	if (side_skip_body(sd, n)) {
		if (dir == SHADOW_DIR_IN) {
			struct slot *s = slot_at(c, c->in_slot);

			if (s)
				slot_drop(c, s, DROP_GAP);
		}
		return;
	}
	if (dir == SHADOW_DIR_OUT)
		c->out_unknown_until = ts;
	side_lose(sd, DROP_GAP);
}

/* A hunting side resyncs where the kernel saw a message begin a read or
 * a write (an uncopied answer, a request sent as its line): what the hunt
 * held is passed over, unframed. */
static void side_found_by_kernel(struct side *sd)
{
	if (sd->mode != SIDE_HUNT)
		return;
	hunt_skip(sd, sd->hunt.len);
	dbuf_free(&sd->hunt);
	sd->at_line_start = false;
	sd->mode = SIDE_SYNC;
	side_parser_reset(sd);
	sd->c->h->st.resyncs++;
}

/* A whole answer the kernel did not copy, having left its request
 * unsampled (conn.h, skip). It pairs like any response and is handed on
 * without status, headers or body, marked MESSAGE_UNCOPIED. The kernel
 * decided on a read ending with one whole request head and on a write
 * starting "HTTP/" before the next read; here the answer must also come
 * between responses, and answer the last request read (its body may still
 * be on its way: servers answer early). Otherwise the stream and the
 * kernel disagree: every request waiting is dropped (the outbound framing
 * holds: the next write starts the next answer). */
static void sink_skip(void *ctx, void *state, uint64_t n, uint64_t ts,
		      uint64_t last)
{
	struct h1_conn *c = state;
	struct side *sd;
	struct slot *s;
	uint64_t owner;

	if (!c)
		return;
	sd = &c->out;
	if (sd->mode == SIDE_DEAD) {
		c->h->st.skipped_bytes += n;
		return;
	}
	/* The kernel saw this answer's status line begin a write: the
	 * framing a hunt looks for (a connection joined before attach finds
	 * it here when no answer is ever copied). What the hunt held was
	 * written before: at the last data's time, not this answer's. */
	side_found_by_kernel(sd);
	if (sd->in_msg || sd->keep_owner) {
		c->h->st.uncopied_unframed++;
		c->out_unknown_until = last;
		side_lose(sd, DROP_UNPAIRED);
		return;
	}
	sd->ts = ts;
	sd->call_id++;
	c->out_last_ts = ts;
	if (c->confirm_at && ts > c->confirm_at && c->probation)
		held_confirm(c);
	owner = assign_response(c, ts);
	c->out_last_ts = last;
	s = slot_at(c, owner);
	if (!s) {
		/* An answer to no request that can be told: passed over
		 * (with any barrier it voided). */
		c->prev_resp_end = last;
		c->h->st.skipped_bytes += n;
		finish(c);
		return;
	}
	if (owner != c->q_end - 1 || s->upgrade) {
		c->h->st.uncopied_unframed++;
		c->out_unknown_until = last;
		out_lost(c, DROP_UNPAIRED);
		finish(c);
		return;
	}
	c->h->st.responses++;
	c->h->st.uncopied++;
	c->prev_resp_end = last;
	if (s->state == SLOT_LIVE) {
		s->x->resp.flags |= MESSAGE_UNCOPIED;
		s->x->t_last_resp_ns = last;
	}
	s->resp_done = true;
	finish(c);
}

/* A request head the kernel sent as its line alone (conn.h, reqline): a
 * whole request, bodiless, with a method and a target and no headers,
 * marked MESSAGE_HEAD_UNCOPIED (and MESSAGE_SHED_* when it was sampled
 * but shed). The kernel saw it begin and end a read: the start line a hunt
 * resyncs at. */
static void sink_reqline(void *ctx, void *state, const uint8_t *line,
			 size_t len, uint64_t n, unsigned shed, uint64_t ts)
{
	struct h1_conn *c = state;
	const uint8_t *sp = memchr(line, ' ', len);
	struct side *sd;
	struct slot *s;

	if (!c || c->in.mode == SIDE_DEAD) {
		((struct http1 *)ctx)->st.skipped_bytes += n;
		return;
	}
	sd = &c->in;
	sd->ts = ts;
	sd->call_id++;
	/* The kernel and the stream disagree on where requests begin. */
	if (sd->mode == SIDE_SYNC && sd->in_msg)
		side_lose(sd, DROP_PARSE);
	side_found_by_kernel(sd);
	req_begin(&sd->p);
	s = slot_at(c, c->in_slot);
	if (s && s->state == SLOT_LIVE) {
		struct http_request *r = &s->x->req;
		size_t ml = sp ? (size_t)(sp - line) : len;

		r->http_major = 1;
		r->http_minor = 1;
		r->flags |= MESSAGE_HEAD_UNCOPIED;
		if (shed == SHADOW_SHED_QUEUE)
			r->flags |= MESSAGE_SHED_QUEUE;
		else if (shed == SHADOW_SHED_BREAKER)
			r->flags |= MESSAGE_SHED_BREAKER;
		if (exchange_set_line(s->x, (const char *)line, ml,
				      (const char *)line + ml + !!sp,
				      len - ml - !!sp,
				      c->h->cfg.endpoints) < 0)
			slot_drop(c, s, DROP_NOMEM);
		s->head = ml == 4 && !memcmp(line, "HEAD", 4);
	}
	sd->in_msg = false;
	sd->last_complete_call = sd->call_id;
	if (s)
		s->req_done = true;
	c->in_slot = SEQ_NONE;
	side_msg_release(sd);
	finish(c);
}

/* Whether the last answered exchange's response said Connection: close:
 * the server closing on its own may leave a request it read unanswered. */
static bool last_response_closes(const struct h1_conn *c)
{
	for (uint64_t seq = c->q_end; seq > c->q_first; seq--) {
		const struct slot *s = &c->q[(seq - 1) & (c->q_cap - 1)];
		const char *v;

		if (s->state != SLOT_LIVE || !s->resp_done || !s->x)
			continue;
		v = headers_get(&s->x->resp.headers, "Connection");
		return v && strcasestr(v, "close");
	}
	return false;
}

/* The connection closed and both streams arrived whole up to the close.
 * Held pairings are proven when every held request was answered before
 * the close and the client closed (a spare answer would have shown up,
 * since the server answers in order and wrote nothing unaccounted for);
 * a server that announced the close may have dropped a request, so its
 * held pairings stay unproven. */
static void sink_end(void *ctx, void *state, uint64_t ts)
{
	struct h1_conn *c = state;

	if (!c || !c->probation || !held_at_rest(c, ts) ||
	    last_response_closes(c))
		return;
	held_confirm(c);
}

static void sink_close(void *ctx, void *state, uint64_t ts)
{
	struct h1_conn *c = state;

	if (!c)
		return;
	/* A body delimited by the close ends here. */
	if (c->out.mode == SIDE_SYNC && c->out.in_msg) {
		http_parser_execute(&c->out.p, &resp_settings, NULL, 0);
		c->out.stop = false;
	}
	/* Held pairings not confirmed by sink_end() are dropped: the last
	 * outbound record may have been lost with nothing to show the gap. */
	for (uint64_t seq = c->q_first; seq < c->q_end; seq++) {
		struct slot *s = slot_at(c, seq);

		if (s->req_done && s->resp_done && !s->held)
			continue;
		slot_void(c, s, s->held ? DROP_AMBIGUOUS : DROP_UNPAIRED);
		s->req_done = true;
	}
	finish(c);
	side_clean(&c->in);
	side_clean(&c->out);
	if (c->q != c->q_inline)
		free(c->q);
	free(c);
}

const struct conn_sink_ops http1_sink_ops = {
	.open = sink_open,
	.data = sink_data,
	.gap = sink_gap,
	.skip = sink_skip,
	.reqline = sink_reqline,
	.end = sink_end,
	.close = sink_close,
};

struct http1 *http1_new(const struct http1_config *cfg, http1_exchange_cb cb,
			void *ctx)
{
	struct http1 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	if (cfg)
		h->cfg = *cfg;
	if (!h->cfg.max_body)
		h->cfg.max_body = HTTP1_DEFAULT_MAX_BODY;
	if (!h->cfg.max_header_bytes)
		h->cfg.max_header_bytes = HTTP1_DEFAULT_MAX_HEADER_BYTES;
	h->cb = cb;
	h->ctx = ctx;
	return h;
}

void http1_free(struct http1 *h)
{
	if (!h)
		return;
	exchange_free(h->spare);
	free(h);
}

void http1_recycle(struct http1 *h, struct exchange *x)
{
	if (h->spare) {
		exchange_free(x);
		return;
	}
	exchange_reset(x);
	h->spare = x;
}

const struct http1_stats *http1_stats(const struct http1 *h)
{
	return &h->st;
}
