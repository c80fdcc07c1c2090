// SPDX-License-Identifier: BSD-2-Clause
/* The connection table and capture files, fed with hand-made records. */
#include <criterion/criterion.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capfile.h"
#include "conn.h"
#include "shadow_event.h"

/* A log of what the sink was told, one line per call. */
static char log_buf[8192];

static void logf_(const char *fmt, ...)
{
	size_t n = strlen(log_buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log_buf + n, sizeof(log_buf) - n, fmt, ap);
	va_end(ap);
}

static int conn_ids;

static void *s_open(void *ctx, const struct conn_info *i, uint64_t ts)
{
	logf_("open %u/%u/%u%s %s\n", i->tgid, i->fd, i->gen,
	      i->midstream ? " mid" : "", i->client);
	return (void *)(intptr_t)++conn_ids;
}

static void s_data(void *ctx, void *st, int dir, const uint8_t *p, size_t n,
		   uint64_t ts)
{
	logf_("data c%d %s %.*s\n", (int)(intptr_t)st, dir ? "out" : "in",
	      (int)n, (const char *)p);
}

static void s_gap(void *ctx, void *st, int dir, uint64_t n, uint64_t ts)
{
	logf_("gap c%d %s %llu\n", (int)(intptr_t)st, dir ? "out" : "in",
	      (unsigned long long)n);
}

static void s_close(void *ctx, void *st, uint64_t ts)
{
	logf_("close c%d\n", (int)(intptr_t)st);
}

static void s_end(void *ctx, void *st, uint64_t ts)
{
	logf_("end c%d\n", (int)(intptr_t)st);
}

static const struct conn_sink_ops ops = {
	.open = s_open, .data = s_data, .gap = s_gap, .end = s_end,
	.close = s_close,
};
static struct conn_table *t;

static void setup(void)
{
	struct conn_limits lim = { .max_conns = 4, .idle_ns = 1000 };

	log_buf[0] = '\0';
	conn_ids = 0;
	t = conn_table_new(&lim, &ops, NULL);
	cr_assert_not_null(t);
}

static void teardown(void)
{
	conn_table_free(t);
}

TestSuite(conn, .init = setup, .fini = teardown);

static void open_conn(uint32_t fd, uint32_t gen, uint64_t ts)
{
	struct shadow_event ev = { .ts_ns = ts, .tgid = 7, .fd = fd, .gen = gen,
				   .kind = SHADOW_EV_OPEN,
				   .len = sizeof(struct shadow_open) };
	struct shadow_open o = { .family = AF_INET, .lport = 80, .rport = 5555,
				 .raddr = { 127, 0, 0, 1 } };

	cr_assert_eq(conn_table_feed(t, &ev, &o), 0);
}

static void data(uint32_t fd, uint32_t gen, int dir, uint64_t off,
		 const char *s, uint32_t size, uint64_t ts)
{
	struct shadow_event ev = { .ts_ns = ts, .tgid = 7, .fd = fd, .gen = gen,
				   .kind = SHADOW_EV_DATA, .dir = dir,
				   .offset = off, .len = strlen(s),
				   .size = size ? size : strlen(s) };

	cr_assert_eq(conn_table_feed(t, &ev, s), 0);
}

static void close_conn(uint32_t fd, uint32_t gen, uint64_t ts)
{
	struct shadow_event ev = { .ts_ns = ts, .tgid = 7, .fd = fd, .gen = gen,
				   .kind = SHADOW_EV_CLOSE };

	cr_assert_eq(conn_table_feed(t, &ev, NULL), 0);
}

Test(conn, in_order_bytes_pass_through_with_client_address)
{
	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "GET / ", 0, 2);
	data(4, 1, 0, 6, "HTTP/1.1", 0, 3);
	data(4, 1, 1, 0, "HTTP/1.1 200", 0, 4);
	close_conn(4, 1, 5);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 in GET / \n"
				  "data c1 in HTTP/1.1\n"
				  "data c1 out HTTP/1.1 200\n"
				  "close c1\n");
	cr_assert_eq(conn_table_stats(t)->bytes, 26);
	cr_assert_eq(conn_table_stats(t)->conns_active, 0);
}

static void close_final(uint32_t fd, uint32_t gen, uint64_t in, uint64_t out)
{
	struct shadow_event ev = { .ts_ns = 9, .tgid = 7, .fd = fd, .gen = gen,
				   .kind = SHADOW_EV_CLOSE,
				   .len = sizeof(struct shadow_close) };
	struct shadow_close c = { .final_offset = { in, out },
				  .flags = SHADOW_CLOSE_PEER_EOF };

	cr_assert_eq(conn_table_feed(t, &ev, &c), 0);
}

Test(conn, close_with_final_offsets_reports_the_lost_tail_or_a_whole_end)
{
	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "GET", 0, 2);
	data(4, 1, 1, 0, "HTTP", 0, 3);
	close_final(4, 1, 3, 4);
	open_conn(5, 2, 4);
	data(5, 2, 0, 0, "GET", 0, 5);
	data(5, 2, 1, 0, "HTTP", 0, 6);
	/* The last response record was lost: a gap, and no end. */
	close_final(5, 2, 3, 10);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 in GET\n"
				  "data c1 out HTTP\n"
				  "end c1\n"
				  "close c1\n"
				  "open 7/5/2 127.0.0.1:5555\n"
				  "data c2 in GET\n"
				  "data c2 out HTTP\n"
				  "gap c2 out 6\n"
				  "close c2\n");
	cr_assert_eq(conn_table_stats(t)->gap_bytes, 6);
}

Test(conn, server_initiated_close_is_not_a_whole_end)
{
	struct shadow_event ev = { .ts_ns = 9, .tgid = 7, .fd = 4, .gen = 1,
				   .kind = SHADOW_EV_CLOSE,
				   .len = sizeof(struct shadow_close) };
	struct shadow_close c = { .final_offset = { 3, 4 } };

	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "GET", 0, 2);
	data(4, 1, 1, 0, "HTTP", 0, 3);
	cr_assert_eq(conn_table_feed(t, &ev, &c), 0);
	cr_assert(!strstr(log_buf, "end c1"), "%s", log_buf);
	cr_assert(strstr(log_buf, "close c1"), "%s", log_buf);
}

Test(conn, offset_jump_is_a_gap_of_exactly_the_missing_bytes)
{
	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "abc", 0, 2);
	data(4, 1, 0, 10, "xyz", 0, 3);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 in abc\n"
				  "gap c1 in 7\n"
				  "data c1 in xyz\n");
	cr_assert_eq(conn_table_stats(t)->gaps, 1);
	cr_assert_eq(conn_table_stats(t)->gap_bytes, 7);
}

Test(conn, record_standing_for_more_than_it_carries_ends_in_a_gap)
{
	open_conn(4, 1, 1);
	data(4, 1, 1, 0, "HTTP", 100, 2);
	data(4, 1, 1, 100, "more", 0, 3);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 out HTTP\n"
				  "gap c1 out 96\n"
				  "data c1 out more\n");
}

Test(conn, duplicate_dropped_and_overlap_trimmed)
{
	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "abcdef", 0, 2);
	data(4, 1, 0, 0, "abc", 0, 3);
	data(4, 1, 0, 4, "efgh", 0, 4);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 in abcdef\n"
				  "data c1 in gh\n");
	cr_assert_eq(conn_table_stats(t)->duplicates, 1);
}

/* A forking server's fd number names the next connection while a child
 * still serves the last: the two generations are two connections. */
Test(conn, generations_on_one_fd_are_separate_connections)
{
	open_conn(4, 1, 1);
	data(4, 1, 0, 0, "one", 0, 2);
	open_conn(4, 2, 3);
	data(4, 2, 0, 0, "two", 0, 4);
	data(4, 1, 0, 3, "more", 0, 5);
	cr_assert_str_eq(log_buf, "open 7/4/1 127.0.0.1:5555\n"
				  "data c1 in one\n"
				  "open 7/4/2 127.0.0.1:5555\n"
				  "data c2 in two\n"
				  "data c1 in more\n");
	cr_assert_eq(conn_table_stats(t)->conns_active, 2);
	/* Each ends by its own CLOSE. */
	close_conn(4, 1, 6);
	cr_assert_eq(conn_table_stats(t)->conns_active, 1);
	data(4, 2, 0, 3, "!", 0, 7);
	cr_assert(strstr(log_buf, "close c1\ndata c2 in !\n"), "%s", log_buf);
}

Test(conn, data_for_an_unknown_connection_joins_it_midstream)
{
	data(9, 3, 1, 500, "tail", 0, 1);
	cr_assert_str_eq(log_buf, "open 7/9/3 mid \n"
				  "gap c1 out 500\n"
				  "data c1 out tail\n");
	cr_assert_eq(conn_table_stats(t)->conns_midstream, 1);
}

Test(conn, least_recently_used_evicted_past_max_conns)
{
	for (uint32_t fd = 10; fd < 15; fd++)
		open_conn(fd, fd, fd);
	cr_assert_eq(conn_table_stats(t)->conns_active, 4);
	cr_assert_eq(conn_table_stats(t)->conns_evicted, 1);
	cr_assert(strstr(log_buf, "close c1\n"), "%s", log_buf);
	/* The survivors are still found after the hash moved entries. */
	for (uint32_t fd = 11; fd < 15; fd++)
		data(fd, fd, 0, 0, "x", 0, 20);
	cr_assert_eq(conn_table_stats(t)->conns_opened, 5);
}

/* The hash grows from 64 slots to hold 1000 connections and shrinks back
 * as they close: every survivor keeps its sink state, and the LRU order
 * survives each rehash. */
Test(conn, table_grows_and_shrinks_keeping_connections_and_lru_order)
{
	struct conn_limits lim = { .max_conns = 1000, .idle_ns = 1000 };
	char want[64];

	conn_table_free(t);
	t = conn_table_new(&lim, &ops, NULL);
	cr_assert_not_null(t);
	for (uint32_t fd = 0; fd < 1000; fd++)
		open_conn(fd, 1, 10 + fd);
	/* Touched in reverse: fd 999 is now the least recently used. */
	for (uint32_t fd = 1000; fd-- > 0;)
		data(fd, 1, 0, 0, "x", 0, 2000 - fd);
	cr_assert_eq(conn_table_stats(t)->conns_active, 1000);
	cr_assert_eq(conn_table_stats(t)->conns_midstream, 0);
	log_buf[0] = '\0';
	open_conn(5000, 1, 3000);
	cr_assert_str_eq(log_buf, "close c1000\n"
				  "open 7/5000/1 127.0.0.1:5555\n");
	/* Close all but fds 0..9 and 5000: the table shrinks on the way. */
	for (uint32_t fd = 10; fd < 999; fd++)
		close_conn(fd, 1, 3001);
	cr_assert_eq(conn_table_stats(t)->conns_active, 11);
	cr_assert_eq(conn_table_stats(t)->conns_closed, 989);
	for (uint32_t fd = 0; fd < 10; fd++) {
		log_buf[0] = '\0';
		data(fd, 1, 0, 1, "y", 0, 4000 + fd);
		snprintf(want, sizeof(want), "data c%u in y\n", fd + 1);
		cr_assert_str_eq(log_buf, want);
	}
	/* Last seen at 3000 (fd 5000), then at 4000 + fd. */
	cr_assert_eq(conn_table_expire(t, 4000 + 1000 + 4), 5);
	log_buf[0] = '\0';
	cr_assert_eq(conn_table_expire(t, 4000 + 1000 + 9), 5);
	cr_assert_str_eq(log_buf, "close c5\nclose c6\nclose c7\nclose c8\n"
				  "close c9\n");
	cr_assert_eq(conn_table_stats(t)->conns_active, 1);
	cr_assert_eq(conn_table_stats(t)->conns_opened, 1001);
}

/* Heap bytes in use (glibc's accounting; sanitizers replace malloc). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* The table's memory follows the connections, not max_conns. */
Test(conn, table_memory_follows_connections_not_max_conns)
{
	struct conn_limits lim = { .max_conns = 1 << 20 };
	size_t base, empty, full;

#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("ASan's malloc keeps no glibc heap accounting");
#endif
	conn_table_free(t);
	base = heap_in_use();
	t = conn_table_new(&lim, &ops, NULL);
	cr_assert_not_null(t);
	empty = heap_in_use() - base;
	cr_expect_lt(empty, 16 << 10, "empty table: %zu bytes", empty);
	for (uint32_t fd = 0; fd < 4000; fd++)
		open_conn(fd, 1, 1);
	full = heap_in_use() - base;
	/* 4000 connections at a load of at most 1/2: 8192 slots of 64
	 * bytes each. */
	cr_expect_lt(full, 8192 * 64 + (16 << 10), "4000 connections: %zu",
		     full);
	for (uint32_t fd = 0; fd < 4000; fd++)
		close_conn(fd, 1, 2);
	empty = heap_in_use() - base;
	cr_expect_lt(empty, 16 << 10, "after the closes: %zu bytes", empty);
}

Test(conn, idle_connections_expire)
{
	open_conn(4, 1, 1);
	open_conn(5, 2, 5000);
	cr_assert_eq(conn_table_expire(t, 3000), 1);
	cr_assert_eq(conn_table_stats(t)->conns_active, 1);
	cr_assert_eq(conn_table_stats(t)->conns_evicted, 1);
}

Test(conn, malformed_records_are_counted_not_followed)
{
	struct shadow_event ev = { .kind = 99 };
	struct shadow_event short_open = { .kind = SHADOW_EV_OPEN, .len = 3 };
	struct shadow_event bad_dir = { .kind = SHADOW_EV_DATA, .dir = 7 };

	cr_assert_eq(conn_table_feed(t, &ev, NULL), -EINVAL);
	cr_assert_eq(conn_table_feed(t, &short_open, "abc"), -EINVAL);
	cr_assert_eq(conn_table_feed(t, &bad_dir, NULL), -EINVAL);
	cr_assert_eq(conn_table_stats(t)->bad_records, 3);
	cr_assert_eq(conn_table_stats(t)->conns_opened, 0);
}

Test(conn, lost_records_counted)
{
	struct shadow_event ev = { .kind = SHADOW_EV_LOST, .offset = 12 };

	cr_assert_eq(conn_table_feed(t, &ev, NULL), 0);
	conn_table_lost(t, 3);
	cr_assert_eq(conn_table_stats(t)->lost_events, 15);
}

/* Capture files. */

static char tmp_path[64];

static void write_sample(const char *path)
{
	struct capfile_writer *w = capfile_open_writer(path);
	struct shadow_event ev = { .kind = SHADOW_EV_DATA, .tgid = 1, .fd = 2,
				   .len = 5, .size = 5 };

	cr_assert_not_null(w);
	cr_assert_eq(capfile_write(w, &ev, "hello"), 0);
	ev.offset = 5;
	ev.len = 3;
	ev.size = 3;
	cr_assert_eq(capfile_write(w, &ev, "abc"), 0);
	cr_assert_eq(capfile_close_writer(w), 0);
}

Test(capfile, round_trip_and_mode_0600)
{
	const struct shadow_event *ev;
	const void *p;
	char err[128];
	struct capfile_reader *r;
	struct stat st;

	strcpy(tmp_path, "/tmp/shadow-cap-XXXXXX");
	close(mkstemp(tmp_path));
	unlink(tmp_path);
	write_sample(tmp_path);
	cr_assert_eq(stat(tmp_path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	r = capfile_open_reader(tmp_path, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert_gt(capfile_real_base(r), 0);
	cr_assert_eq(capfile_next(r, &ev, &p, err, sizeof(err)), 1);
	cr_assert_eq(ev->len, 5);
	cr_assert(memcmp(p, "hello", 5) == 0);
	cr_assert_eq(capfile_next(r, &ev, &p, err, sizeof(err)), 1);
	cr_assert_eq(ev->offset, 5);
	cr_assert(memcmp(p, "abc", 3) == 0);
	cr_assert_eq(capfile_next(r, &ev, &p, err, sizeof(err)), 0);
	capfile_close_reader(r);
	unlink(tmp_path);
}

Test(capfile, truncated_file_is_an_error_at_its_offset)
{
	const struct shadow_event *ev;
	const void *p;
	char err[128];
	struct capfile_reader *r;
	struct stat st;

	strcpy(tmp_path, "/tmp/shadow-cap-XXXXXX");
	close(mkstemp(tmp_path));
	write_sample(tmp_path);
	cr_assert_eq(stat(tmp_path, &st), 0);
	cr_assert_eq(truncate(tmp_path, st.st_size - 10), 0);
	r = capfile_open_reader(tmp_path, err, sizeof(err));
	cr_assert_not_null(r);
	cr_assert_eq(capfile_next(r, &ev, &p, err, sizeof(err)), 1);
	cr_assert_eq(capfile_next(r, &ev, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "truncated at byte"), "%s", err);
	capfile_close_reader(r);
	unlink(tmp_path);
}

Test(capfile, foreign_and_newer_files_refused_with_a_reason)
{
	static const char foreign[] = "GET / HTTP/1.1\r\n\r\nthis is no capture";
	struct shadow_cap_header h = { .magic = SHADOW_CAP_MAGIC,
				       .version = SHADOW_CAP_VERSION + 1,
				       .header_size = sizeof(h) };
	char err[160];

	cr_assert_null(capfile_open_reader_mem(foreign, sizeof(foreign), 0, err,
					sizeof(err)));
	cr_assert(strstr(err, "not a request-shadow capture file"), "%s", err);
	cr_assert_null(capfile_open_reader_mem(&h, sizeof(h), 0, err, sizeof(err)));
	cr_assert(strstr(err, "newer"), "%s", err);
	cr_assert_null(capfile_open_reader("/nonexistent/x.cap", err, sizeof(err)));
	cr_assert(strstr(err, "cannot open"), "%s", err);
}
