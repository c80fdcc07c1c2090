// SPDX-License-Identifier: BSD-2-Clause
/*
 * Connection table: an open-addressing hash of (tgid, fd) plus an LRU list.
 * The hash grows with the connections tracked and shrinks when most of them
 * are gone, so a daemon watching few connections holds a small table.
 * A (tgid, fd) slot holds one connection at a time; a record carrying a new
 * generation for the same (tgid, fd) closes the old connection first (the
 * fd number was reused and its CLOSE record was lost).
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shadow_event.h"

struct conn {
	uint32_t tgid, fd, gen;
	bool used;
	uint64_t next[2]; /* next expected offset per direction */
	uint64_t last_ns; /* last record seen: idle eviction */
	void *state;      /* the sink's */
	struct conn *lru_prev, *lru_next; /* most recent at head */
};

/* Load factor kept at or under 1/2 (short probe runs); halved when under
 * 1/8, which leaves a factor of two between growing and shrinking. */
#define TABLE_MIN_SLOTS 64

struct conn_table {
	struct conn *slots;
	size_t nslots; /* power of two >= TABLE_MIN_SLOTS */
	struct conn_limits lim;
	const struct conn_sink_ops *ops;
	void *ctx;
	struct conn *lru_head, *lru_tail;
	struct conn_stats st;
};

static size_t hash_key(uint32_t tgid, uint32_t fd)
{
	uint64_t k = ((uint64_t)tgid << 32) | fd;

	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

struct conn_table *conn_table_new(const struct conn_limits *lim,
				  const struct conn_sink_ops *ops, void *ctx)
{
	struct conn_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->lim = *lim;
	if (!t->lim.max_conns)
		t->lim.max_conns = 65536;
	t->slots = calloc(TABLE_MIN_SLOTS, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	t->nslots = TABLE_MIN_SLOTS;
	t->ops = ops;
	t->ctx = ctx;
	return t;
}

static void lru_unlink(struct conn_table *t, struct conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		t->lru_head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		t->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

static void lru_push_head(struct conn_table *t, struct conn *c)
{
	c->lru_prev = NULL;
	c->lru_next = t->lru_head;
	if (t->lru_head)
		t->lru_head->lru_prev = c;
	t->lru_head = c;
	if (!t->lru_tail)
		t->lru_tail = c;
}

/* The connection (tgid, fd, gen). Several generations of one (tgid, fd)
 * may be open at once: a server that accepts in one process and hands
 * each connection to a forked child reuses the fd number while the
 * children still serve the older ones. */
static struct conn *slot_find(struct conn_table *t, uint32_t tgid, uint32_t fd,
			      uint32_t gen)
{
	size_t mask = t->nslots - 1;

	for (size_t i = hash_key(tgid, fd) & mask;; i = (i + 1) & mask) {
		struct conn *c = &t->slots[i];

		if (!c->used)
			return NULL;
		if (c->tgid == tgid && c->fd == fd && c->gen == gen)
			return c;
	}
}

/* The free slot where a new (tgid, fd) goes; the table is never full. */
static struct conn *slot_free(struct conn_table *t, uint32_t tgid, uint32_t fd)
{
	size_t mask = t->nslots - 1;
	size_t i;

	for (i = hash_key(tgid, fd) & mask; t->slots[i].used;
	     i = (i + 1) & mask)
		;
	return &t->slots[i];
}

/* Rehashes every connection into n slots (n > conns_active), keeping the
 * LRU order. Returns 0, or -ENOMEM with the table unchanged. */
static int table_resize(struct conn_table *t, size_t n)
{
	struct conn *old = t->slots, *c, *prev;

	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->nslots = n;
	c = t->lru_tail;
	t->lru_head = t->lru_tail = NULL;
	/* Oldest first, each pushed to the head: the order comes out the
	 * same. The old array stays readable until the loop ends. */
	for (; c; c = prev) {
		struct conn *d = slot_free(t, c->tgid, c->fd);

		prev = c->lru_prev;
		*d = *c;
		lru_push_head(t, d);
	}
	free(old);
	return 0;
}

/* Removes c from the hash with backward-shift deletion (no tombstones),
 * fixing the LRU links of any entry that moves. */
static void slot_remove(struct conn_table *t, struct conn *c)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)(c - t->slots);

	lru_unlink(t, c);
	for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		struct conn *n = &t->slots[j];
		size_t home;

		if (!n->used)
			break;
		home = hash_key(n->tgid, n->fd) & mask;
		/* n may move to i only if i lies cyclically in [home, j). */
		if (((j - home) & mask) < ((j - i) & mask))
			continue;
		t->slots[i] = *n;
		if (n->lru_prev)
			n->lru_prev->lru_next = &t->slots[i];
		else
			t->lru_head = &t->slots[i];
		if (n->lru_next)
			n->lru_next->lru_prev = &t->slots[i];
		else
			t->lru_tail = &t->slots[i];
		i = j;
	}
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
}

static void conn_end(struct conn_table *t, struct conn *c, uint64_t ts_ns,
		     bool evicted)
{
	if (t->ops->close)
		t->ops->close(t->ctx, c->state, ts_ns);
	if (evicted)
		t->st.conns_evicted++;
	else
		t->st.conns_closed++;
	t->st.conns_active--;
	slot_remove(t, c);
	/* A failed shrink keeps the larger table: nothing is lost. */
	if (t->nslots > TABLE_MIN_SLOTS && t->st.conns_active * 8 < t->nslots)
		(void)table_resize(t, t->nslots / 2);
}

static void format_client(const struct shadow_open *o, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "";

	if (o->family == AF_INET) {
		inet_ntop(AF_INET, o->raddr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, o->rport);
	} else if (o->family == AF_INET6) {
		inet_ntop(AF_INET6, o->raddr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, o->rport);
	} else {
		out[0] = '\0';
	}
}

static struct conn *conn_start(struct conn_table *t,
			       const struct shadow_event *ev,
			       const struct shadow_open *o, bool midstream)
{
	struct conn_info info = { .tgid = ev->tgid, .fd = ev->fd,
				  .gen = ev->gen, .midstream = midstream };
	struct conn *c;

	if (t->st.conns_active >= t->lim.max_conns && t->lru_tail)
		conn_end(t, t->lru_tail, ev->ts_ns, true);
	/* Out of memory to grow: past a load of 3/4 the least recently used
	 * connection makes room (counted as evicted), so probes still end. */
	if ((t->st.conns_active + 1) * 2 > t->nslots &&
	    table_resize(t, t->nslots * 2) < 0 &&
	    (t->st.conns_active + 1) * 4 > t->nslots * 3 && t->lru_tail)
		conn_end(t, t->lru_tail, ev->ts_ns, true);
	c = slot_free(t, ev->tgid, ev->fd);
	c->used = true;
	c->tgid = ev->tgid;
	c->fd = ev->fd;
	c->gen = ev->gen;
	c->last_ns = ev->ts_ns;
	lru_push_head(t, c);
	if (o) {
		info.lport = o->lport;
		format_client(o, info.client, sizeof(info.client));
	}
	t->st.conns_opened++;
	t->st.conns_active++;
	if (midstream)
		t->st.conns_midstream++;
	c->state = t->ops->open ? t->ops->open(t->ctx, &info, ev->ts_ns) : NULL;
	return c;
}

/* The connection a record belongs to. Data (or a request line) for a
 * connection never seen opening joins it midstream: its OPEN was lost, or
 * it was evicted while idle. One whose CLOSE was lost (counted as lost
 * events) ends when it has been idle for the limit, or is evicted. */
static struct conn *conn_for(struct conn_table *t, const struct shadow_event *ev)
{
	struct conn *c = slot_find(t, ev->tgid, ev->fd, ev->gen);

	if (!c && (ev->kind == SHADOW_EV_DATA ||
		   ev->kind == SHADOW_EV_REQLINE))
		c = conn_start(t, ev, NULL, true);
	if (c) {
		c->last_ns = ev->ts_ns;
		lru_unlink(t, c);
		lru_push_head(t, c);
	}
	return c;
}

static void conn_data(struct conn_table *t, struct conn *c,
		      const struct shadow_event *ev, const uint8_t *p)
{
	uint64_t *next = &c->next[ev->dir];
	uint64_t off = ev->offset, end = ev->offset + ev->size;
	uint64_t skip;
	size_t len = ev->len;

	if (end <= *next) {
		t->st.duplicates++;
		return;
	}
	if (off > *next) {
		t->st.gaps++;
		t->st.gap_bytes += off - *next;
		if (t->ops->gap)
			t->ops->gap(t->ctx, c->state, ev->dir, off - *next,
				    ev->ts_ns);
		*next = off;
	}
	/* Overlap with what was handed on already: skip its head. */
	skip = *next - off;
	if (skip < len) {
		if (t->ops->data)
			t->ops->data(t->ctx, c->state, ev->dir, p + skip,
				     len - skip, ev->ts_ns);
		t->st.bytes += len - skip;
		*next += len - skip;
	} else {
		*next = off + len > *next ? off + len : *next;
	}
	/* Bytes the record stands for but does not carry: a gap now. */
	if (end > *next) {
		t->st.gaps++;
		t->st.gap_bytes += end - *next;
		if (t->ops->gap)
			t->ops->gap(t->ctx, c->state, ev->dir, end - *next,
				    ev->ts_ns);
		*next = end;
	}
}

/* A record that stands for [offset, offset + size) of a direction
 * without carrying the bytes (SKIP, REQLINE) must start where the stream
 * is. Bytes missing before it are a gap first; one overlapping what was
 * handed on means the kernel and the stream disagree, and all of it is a
 * gap. Returns whether the sink still gets the record. */
static bool conn_align(struct conn_table *t, struct conn *c, int dir,
		       const struct shadow_event *ev)
{
	uint64_t *next = &c->next[dir];
	uint64_t end = ev->offset + ev->size, to;

	if (end <= *next) {
		t->st.duplicates++;
		return false;
	}
	if (ev->offset == *next)
		return true;
	to = ev->offset > *next ? ev->offset : end;
	t->st.gaps++;
	t->st.gap_bytes += to - *next;
	if (t->ops->gap)
		t->ops->gap(t->ctx, c->state, dir, to - *next, ev->ts_ns);
	*next = to;
	return to != end;
}

/* An answer the kernel did not copy (the sink decides whether it can
 * still be framed). */
static void conn_skip(struct conn_table *t, struct conn *c,
		      const struct shadow_event *ev, const void *payload)
{
	struct shadow_skip sk;

	memcpy(&sk, payload, sizeof(sk));
	if (!conn_align(t, c, SHADOW_DIR_OUT, ev))
		return;
	t->st.skips++;
	t->st.skip_bytes += ev->size;
	if (t->ops->skip)
		t->ops->skip(t->ctx, c->state, ev->size, ev->ts_ns,
			     sk.last_ts_ns);
	else if (t->ops->gap)
		t->ops->gap(t->ctx, c->state, SHADOW_DIR_OUT, ev->size,
			    ev->ts_ns);
	c->next[SHADOW_DIR_OUT] += ev->size;
}

/* A request head of which the kernel copied the line alone (len bytes). */
static void conn_reqline(struct conn_table *t, struct conn *c,
			 const struct shadow_event *ev, const uint8_t *line,
			 size_t len, unsigned shed)
{
	if (!conn_align(t, c, SHADOW_DIR_IN, ev))
		return;
	t->st.reqlines++;
	if (t->ops->reqline)
		t->ops->reqline(t->ctx, c->state, line, len, ev->size, shed,
				ev->ts_ns);
	else if (t->ops->gap)
		t->ops->gap(t->ctx, c->state, SHADOW_DIR_IN, ev->size,
			    ev->ts_ns);
	c->next[SHADOW_DIR_IN] += ev->size;
}

/* A CLOSE with the final offsets: what never arrived is a gap; if nothing
 * is missing and the client closed first, the sink learns the streams
 * ended whole. */
static void conn_final(struct conn_table *t, struct conn *c,
		       const struct shadow_event *ev, const void *payload)
{
	struct shadow_close fin;
	bool whole = true;

	memcpy(&fin, payload, sizeof(fin));
	for (int dir = 0; dir < 2; dir++) {
		uint64_t lost;

		if (fin.final_offset[dir] <= c->next[dir])
			continue;
		lost = fin.final_offset[dir] - c->next[dir];
		whole = false;
		t->st.gaps++;
		t->st.gap_bytes += lost;
		if (t->ops->gap)
			t->ops->gap(t->ctx, c->state, dir, lost, ev->ts_ns);
		c->next[dir] = fin.final_offset[dir];
	}
	if (whole && (fin.flags & SHADOW_CLOSE_PEER_EOF) && t->ops->end)
		t->ops->end(t->ctx, c->state, ev->ts_ns);
}

/* The SKIP that record ev carries at its end (SHADOW_F_AFTER_SKIP), taken
 * as its own record would have been, before the record's own content. */
static void conn_skip_before(struct conn_table *t, struct conn *c,
			     const struct shadow_event *ev,
			     const struct shadow_skip_before *b)
{
	struct shadow_event sk = *ev;
	struct shadow_skip last = { .last_ts_ns = b->last_ts_ns };

	sk.kind = SHADOW_EV_SKIP;
	sk.dir = SHADOW_DIR_OUT;
	sk.flags = 0;
	sk.offset = b->offset;
	sk.size = b->size;
	sk.ts_ns = b->ts_ns;
	sk.len = sizeof(last);
	conn_skip(t, c, &sk, &last);
}

/* A REQLINE record, checked: its shed reason from the flags, and, with
 * SHADOW_F_AFTER_SKIP, the SKIP it carries at its end, which comes first,
 * as its own record would have. 0, or -EINVAL for a malformed record. */
static int feed_reqline(struct conn_table *t, const struct shadow_event *ev,
			const void *payload)
{
	struct shadow_skip_before b;
	size_t line = ev->len;
	unsigned shed = SHADOW_SHED_NONE;
	struct conn *c;

	if (ev->flags & SHADOW_F_SHED_QUEUE)
		shed = SHADOW_SHED_QUEUE;
	if (ev->flags & SHADOW_F_SHED_BREAKER) {
		if (shed)
			return -EINVAL;
		shed = SHADOW_SHED_BREAKER;
	}
	if (ev->flags & SHADOW_F_AFTER_SKIP) {
		if (line < sizeof(b))
			return -EINVAL;
		line -= sizeof(b);
		memcpy(&b, (const uint8_t *)payload + line, sizeof(b));
		if (!b.size || b.size > UINT32_MAX)
			return -EINVAL;
	}
	if (ev->dir != SHADOW_DIR_IN || !line || line > ev->size ||
	    line > SHADOW_CHUNK_MAX)
		return -EINVAL;
	c = conn_for(t, ev);
	if (!c)
		return 0;
	if (ev->flags & SHADOW_F_AFTER_SKIP)
		conn_skip_before(t, c, ev, &b);
	conn_reqline(t, c, ev, payload, line, shed);
	return 0;
}

/* A CLOSE record: with SHADOW_F_AFTER_SKIP, the SKIP of the answer passed
 * over before it comes first, then the final offsets. 0, or -EINVAL for a
 * malformed record. */
static int feed_close(struct conn_table *t, const struct shadow_event *ev,
		      const void *payload)
{
	struct shadow_skip_before b;
	struct conn *c;

	if (ev->flags & SHADOW_F_AFTER_SKIP) {
		if (ev->len < sizeof(struct shadow_close) + sizeof(b))
			return -EINVAL;
		memcpy(&b, (const uint8_t *)payload + sizeof(struct shadow_close),
		       sizeof(b));
		if (!b.size || b.size > UINT32_MAX)
			return -EINVAL;
	}
	c = slot_find(t, ev->tgid, ev->fd, ev->gen);
	if (!c)
		return 0;
	if (ev->flags & SHADOW_F_AFTER_SKIP)
		conn_skip_before(t, c, ev, &b);
	if (ev->len >= sizeof(struct shadow_close))
		conn_final(t, c, ev, payload);
	conn_end(t, c, ev->ts_ns, false);
	return 0;
}

int conn_table_feed(struct conn_table *t, const struct shadow_event *ev,
		    const void *payload)
{
	struct conn *c;

	t->st.events++;
	switch (ev->kind) {
	case SHADOW_EV_OPEN: {
		struct shadow_open o;

		if (ev->len < sizeof(o))
			goto bad;
		memcpy(&o, payload, sizeof(o)); /* payload may be unaligned */
		c = slot_find(t, ev->tgid, ev->fd, ev->gen);
		if (c)
			conn_end(t, c, ev->ts_ns, false);
		conn_start(t, ev, &o, ev->flags & SHADOW_F_MIDSTREAM);
		return 0;
	}
	case SHADOW_EV_DATA:
		if (ev->dir > SHADOW_DIR_OUT || ev->len > ev->size ||
		    ev->len > SHADOW_CHUNK_MAX * 4)
			goto bad;
		c = conn_for(t, ev);
		if (c)
			conn_data(t, c, ev, payload);
		return 0;
	case SHADOW_EV_CLOSE:
		if (feed_close(t, ev, payload) < 0)
			goto bad;
		return 0;
	case SHADOW_EV_SKIP:
		if (ev->dir != SHADOW_DIR_OUT ||
		    ev->len < sizeof(struct shadow_skip) || !ev->size)
			goto bad;
		/* Unknown: its request went with the connection. */
		c = conn_for(t, ev);
		if (c)
			conn_skip(t, c, ev, payload);
		return 0;
	case SHADOW_EV_REQLINE:
		if (feed_reqline(t, ev, payload) < 0)
			goto bad;
		return 0;
	case SHADOW_EV_LOST:
		t->st.lost_events += ev->offset;
		return 0;
	default:
		goto bad;
	}
bad:
	t->st.bad_records++;
	return -EINVAL;
}

size_t conn_table_expire(struct conn_table *t, uint64_t now_ns)
{
	size_t n = 0;

	while (t->lru_tail && t->lim.idle_ns &&
	       t->lru_tail->last_ns + t->lim.idle_ns < now_ns) {
		conn_end(t, t->lru_tail, now_ns, true);
		n++;
	}
	return n;
}

void conn_table_lost(struct conn_table *t, uint64_t n)
{
	t->st.lost_events += n;
}

const struct conn_stats *conn_table_stats(const struct conn_table *t)
{
	return &t->st;
}

void conn_table_free(struct conn_table *t)
{
	if (!t)
		return;
	while (t->lru_head)
		conn_end(t, t->lru_head, t->lru_head->last_ns, false);
	free(t->slots);
	free(t);
}
