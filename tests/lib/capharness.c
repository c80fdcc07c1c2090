// SPDX-License-Identifier: BSD-2-Clause
#include "capharness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "conn.h"
#include "shadow_event.h"

struct harness_stream harness_streams[HARNESS_MAX_STREAMS];
size_t harness_n_streams;
struct capture *harness_cap;
struct conn_table *harness_table;

void harness_bytes_add(struct harness_bytes *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

bool harness_response_complete(const struct harness_bytes *b, size_t start)
{
	size_t have = b->n - start, hlen, blen;
	const char *head, *end, *cl;

	if (!have)
		return false;
	head = (const char *)b->p + start;
	end = memmem(head, have, "\r\n\r\n", 4);
	if (!end)
		return false;
	cl = strcasestr(head, "Content-Length:");
	hlen = end + 4 - head;
	blen = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
	if (have < hlen + blen)
		return false;
	cr_assert_eq(have, hlen + blen, "more bytes than one response");
	return true;
}

static void *sink_open(void *ctx, const struct conn_info *info, uint64_t ts)
{
	const char *colon = strrchr(info->client, ':');
	struct harness_stream *s;

	cr_assert_lt(harness_n_streams, HARNESS_MAX_STREAMS);
	s = &harness_streams[harness_n_streams++];
	memset(s, 0, sizeof(*s));
	s->rport = colon ? atoi(colon + 1) : 0;
	s->tgid = info->tgid;
	s->fd = info->fd;
	s->gen = info->gen;
	s->midstream = info->midstream;
	return s;
}

static void sink_data(void *ctx, void *state, int dir, const uint8_t *p,
		      size_t n, uint64_t ts)
{
	struct harness_stream *s = state;

	harness_bytes_add(&s->dir[dir], p, n);
}

static void sink_gap(void *ctx, void *state, int dir, uint64_t n, uint64_t ts)
{
	((struct harness_stream *)state)->gaps++;
}

/* Uncopied answers stand in the outbound bytes as that many zero bytes. */
static void sink_skip(void *ctx, void *state, uint64_t n, uint64_t ts,
		      uint64_t last)
{
	struct harness_stream *s = state;
	static const uint8_t zeros[4096];

	s->skips++;
	while (n) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);

		harness_bytes_add(&s->dir[1], zeros, k);
		n -= k;
	}
}

/* A head sent as its request line alone stands in the inbound bytes as
 * the line, then zero bytes up to its size. */
static void sink_reqline(void *ctx, void *state, const uint8_t *line,
			 size_t len, uint64_t n, unsigned shed, uint64_t ts)
{
	struct harness_stream *s = state;
	uint8_t *zeros = calloc(1, n - len + 1);

	cr_assert_not_null(zeros);
	cr_assert_leq(shed, SHADOW_SHED_BREAKER);
	s->reqlines++;
	s->shed[shed]++;
	harness_bytes_add(&s->dir[0], line, len);
	harness_bytes_add(&s->dir[0], zeros, n - len);
	free(zeros);
}

static void sink_close(void *ctx, void *state, uint64_t ts)
{
	((struct harness_stream *)state)->closed = true;
}

static const struct conn_sink_ops collect_ops = {
	.open = sink_open, .data = sink_data, .gap = sink_gap,
	.skip = sink_skip, .reqline = sink_reqline, .close = sink_close,
};

static void on_event(void *ctx, const struct shadow_event *ev,
		     const void *payload)
{
	conn_table_feed(harness_table, ev, payload);
}

/* Each run of the BPF tests must exercise the data hooks it is meant to:
 * the socket tracepoints wherever this x86-64 kernel has them, the
 * syscall ones when SHADOWD_SYSCALL_HOOKS forces them. */
static void harness_assert_hooks(void)
{
	struct capture_stats st;

	capture_get_stats(harness_cap, &st);
	if (capture_syscall_hooks_forced())
		cr_assert(!st.sock_hooks, "SHADOWD_SYSCALL_HOOKS is set, yet "
			  "the data came from the socket tracepoints");
#if defined(__x86_64__)
	else if (access("/sys/kernel/tracing/events/sock/sock_recv_length",
			F_OK) == 0)
		cr_assert(st.sock_hooks, "this kernel has the sock_*_length "
			  "tracepoints, yet the syscall hooks were loaded");
#endif
}

void harness_attach_cfg(const struct capture_config *cfg)
{
	struct conn_limits lim = { .max_conns = 4096 };
	char err[256] = "";
	int rc;

	harness_n_streams = 0;
	harness_table = conn_table_new(&lim, &collect_ops, NULL);
	cr_assert_not_null(harness_table);
	rc = capture_open(cfg, on_event, NULL, &harness_cap, err, sizeof(err));
	/* Only the lack of privileges is a reason to skip: a program this
	 * kernel refuses is the product not working here. */
	if (rc == -EPERM && geteuid() != 0)
		cr_skip_test("BPF tests need root: %s", err);
	cr_assert_eq(rc, 0, "capture_open: %s", err);
	harness_assert_hooks();
}

void harness_attach(pid_t pid, uint16_t port)
{
	struct capture_config cfg = { .pids = &pid, .n_pids = 1,
				      .ports = &port, .n_ports = port ? 1 : 0 };

	harness_attach_cfg(&cfg);
}

void harness_drain(int quiet_ms)
{
	int idle = 0;

	while (idle < quiet_ms) {
		int n = capture_poll(harness_cap);

		cr_assert_geq(n, 0);
		idle = n ? 0 : idle + 10;
		usleep(10000);
	}
}

void harness_detach(void)
{
	capture_close(harness_cap);
	harness_cap = NULL;
	conn_table_free(harness_table);
	harness_table = NULL;
	for (size_t i = 0; i < harness_n_streams; i++) {
		free(harness_streams[i].dir[0].p);
		free(harness_streams[i].dir[1].p);
	}
	harness_n_streams = 0;
}

struct harness_stream *harness_stream_of(uint16_t lport)
{
	struct harness_stream *found = NULL;

	for (size_t i = 0; i < harness_n_streams; i++)
		if (harness_streams[i].rport == lport) {
			cr_assert_null(found, "two streams for client port %u",
				       lport);
			found = &harness_streams[i];
		}
	cr_assert_not_null(found, "no stream for client port %u", lport);
	return found;
}

void harness_assert_stream(uint16_t lport, const uint8_t *sent, size_t sent_n,
			   const uint8_t *recvd, size_t recvd_n)
{
	const struct harness_stream *s = harness_stream_of(lport);

	cr_assert_eq(s->gaps, 0, "port %u: %lu gaps", lport,
		     (unsigned long)s->gaps);
	cr_assert_eq(s->dir[SHADOW_DIR_IN].n, sent_n,
		     "port %u: captured %zu request bytes, client sent %zu",
		     lport, s->dir[SHADOW_DIR_IN].n, sent_n);
	cr_assert_eq(s->dir[SHADOW_DIR_OUT].n, recvd_n,
		     "port %u: captured %zu response bytes, client got %zu",
		     lport, s->dir[SHADOW_DIR_OUT].n, recvd_n);
	cr_assert(memcmp(s->dir[SHADOW_DIR_IN].p, sent, sent_n) == 0,
		  "port %u: request bytes differ", lport);
	cr_assert(memcmp(s->dir[SHADOW_DIR_OUT].p, recvd, recvd_n) == 0,
		  "port %u: response bytes differ", lport);
}
