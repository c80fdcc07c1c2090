// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "util/loop.h"

struct counter {
	int calls;
	int repeat; /* repeat this many more times */
	long every;
	long long del_other; /* timer to delete on first call */
	struct loop *l;
	unsigned last_events;
	uint64_t at_ms[8];
};

static long count_timer(struct loop *l, long long id, void *ctx)
{
	struct counter *c = ctx;

	if (c->calls < 8)
		c->at_ms[c->calls] = loop_now_ms();
	c->calls++;
	if (c->del_other) {
		cr_expect_eq(loop_timer_del(l, c->del_other), 0);
		c->del_other = 0;
	}
	if (c->repeat-- > 0)
		return c->every;
	return LOOP_TIMER_DONE;
}

Test(loop, one_shot_timer_fires_once_after_its_delay)
{
	struct loop *l;
	struct counter c = { 0 };
	uint64_t t0;
	int spins = 0;

	cr_assert_eq(loop_new(&l), 0);
	t0 = loop_now_ms();
	cr_assert_gt(loop_timer_add(l, 30, count_timer, &c), 0);
	while (c.calls == 0 && spins++ < 100)
		cr_assert_geq(loop_run_once(l, 1000), 0);
	cr_assert_eq(c.calls, 1);
	cr_expect_geq(c.at_ms[0] - t0, 30);
	cr_expect_lt(c.at_ms[0] - t0, 200);
	/* Nothing left: a non-blocking iteration runs nothing. */
	cr_expect_eq(loop_run_once(l, 0), 0);
	cr_expect_eq(c.calls, 1);
	loop_free(l);
}

Test(loop, repeating_timer_runs_until_it_returns_done)
{
	struct loop *l;
	struct counter c = { .repeat = 3, .every = 10 };
	uint64_t t0 = loop_now_ms();

	cr_assert_eq(loop_new(&l), 0);
	cr_assert_gt(loop_timer_add(l, 0, count_timer, &c), 0);
	for (int i = 0; i < 50 && c.calls < 4; i++)
		cr_assert_geq(loop_run_once(l, 1000), 0);
	cr_assert_eq(c.calls, 4);
	cr_expect_geq(c.at_ms[3] - t0, 30);
	cr_expect_eq(loop_run_once(l, 20), 0);
	cr_expect_eq(c.calls, 4);
	loop_free(l);
}

Test(loop, deleted_timer_never_fires_even_when_due_in_same_iteration)
{
	struct loop *l;
	struct counter a = { 0 }, b = { 0 };
	long long ida, idb;

	cr_assert_eq(loop_new(&l), 0);
	ida = loop_timer_add(l, 5, count_timer, &a);
	idb = loop_timer_add(l, 5, count_timer, &b);
	cr_assert_gt(ida, 0);
	cr_assert_gt(idb, 0);
	cr_assert_neq(ida, idb);
	a.del_other = idb; /* a runs first (added first) and deletes b */
	usleep(10000);
	cr_assert_eq(loop_run_once(l, 0), 1);
	cr_expect_eq(a.calls, 1);
	cr_expect_eq(b.calls, 0);
	cr_expect_eq(loop_timer_del(l, idb), -ENOENT);
	cr_expect_eq(loop_timer_del(l, ida), -ENOENT);
	loop_free(l);
}

Test(loop, timers_deleted_between_iterations_leave_the_others_intact)
{
	struct loop *l;
	struct counter a = { 0 }, b = { 0 }, c = { 0 };
	long long ida, idb, idc;

	cr_assert_eq(loop_new(&l), 0);
	ida = loop_timer_add(l, 5, count_timer, &a);
	idb = loop_timer_add(l, 5, count_timer, &b);
	idc = loop_timer_add(l, 5, count_timer, &c);
	cr_assert_gt(idc, 0);
	/* Outside an iteration: the timers after the deleted ones move. */
	cr_expect_eq(loop_timer_del(l, idb), 0);
	cr_expect_eq(loop_timer_del(l, idb), -ENOENT);
	cr_expect_eq(loop_timer_del(l, ida), 0);
	ida = loop_timer_add(l, 5, count_timer, &a);
	cr_assert_gt(ida, 0);
	usleep(10000);
	cr_expect_eq(loop_run_once(l, 0), 2);
	cr_expect_eq(a.calls, 1);
	cr_expect_eq(b.calls, 0);
	cr_expect_eq(c.calls, 1);
	cr_expect_eq(loop_timer_del(l, idc), -ENOENT);
	cr_expect_eq(loop_run_once(l, 20), 0);
	loop_free(l);
}

Test(loop, timeout_zero_does_not_block_and_negative_waits_for_timer)
{
	struct loop *l;
	struct counter c = { 0 };
	uint64_t t0;

	cr_assert_eq(loop_new(&l), 0);
	t0 = loop_now_ms();
	cr_expect_eq(loop_run_once(l, 0), 0);
	cr_expect_lt(loop_now_ms() - t0, 20);
	cr_assert_gt(loop_timer_add(l, 40, count_timer, &c), 0);
	/* -1 would wait forever, but the timer cuts the wait short. */
	while (c.calls == 0)
		cr_assert_geq(loop_run_once(l, -1), 0);
	cr_expect_geq(loop_now_ms() - t0, 40);
	loop_free(l);
}

struct pipe_ctx {
	int reads;
	int writes;
	char buf[64];
	size_t got;
	bool del_self;
};

static void on_fd(struct loop *l, int fd, unsigned ev, void *ctx)
{
	struct pipe_ctx *p = ctx;

	if (ev & LOOP_READ) {
		ssize_t n = read(fd, p->buf + p->got, sizeof(p->buf) - p->got);

		if (n > 0)
			p->got += (size_t)n;
		p->reads++;
	}
	if (ev & LOOP_WRITE)
		p->writes++;
	if (p->del_self)
		loop_fd_del(l, fd);
}

Test(loop, fd_read_callback_gets_data_and_del_stops_it)
{
	struct loop *l;
	struct pipe_ctx p = { 0 };
	int fds[2];

	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	cr_assert_eq(loop_new(&l), 0);
	cr_assert_eq(loop_fd_add(l, fds[0], LOOP_READ, on_fd, &p), 0);
	cr_expect_eq(loop_fd_mask(l, fds[0]), LOOP_READ);
	cr_expect_eq(loop_run_once(l, 0), 0);
	cr_assert_eq(write(fds[1], "hello", 5), 5);
	cr_expect_eq(loop_run_once(l, 1000), 1);
	cr_expect_eq(p.got, 5);
	cr_expect_str_eq(p.buf, "hello");
	loop_fd_del(l, fds[0]);
	cr_expect_eq(loop_fd_mask(l, fds[0]), 0);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	cr_expect_eq(loop_run_once(l, 20), 0);
	cr_expect_eq(p.reads, 1);
	/* Deleting twice, or an fd never added, is harmless. */
	loop_fd_del(l, fds[0]);
	loop_fd_del(l, 12345);
	loop_free(l);
	close(fds[0]);
	close(fds[1]);
}

Test(loop, fd_mask_is_replaced_by_a_second_add)
{
	struct loop *l;
	struct pipe_ctx p = { 0 };
	int fds[2];

	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	cr_assert_eq(loop_new(&l), 0);
	/* An empty pipe's write end is writable at once. */
	cr_assert_eq(loop_fd_add(l, fds[1], LOOP_WRITE, on_fd, &p), 0);
	cr_expect_eq(loop_run_once(l, 1000), 1);
	cr_expect_eq(p.writes, 1);
	cr_assert_eq(loop_fd_add(l, fds[1], LOOP_READ, on_fd, &p), 0);
	cr_expect_eq(loop_run_once(l, 20), 0);
	cr_expect_eq(p.writes, 1);
	cr_expect_eq(loop_fd_add(l, -1, LOOP_READ, on_fd, &p), -EINVAL);
	cr_expect_eq(loop_fd_add(l, fds[1], 0, on_fd, &p), -EINVAL);
	loop_free(l);
	close(fds[0]);
	close(fds[1]);
}

Test(loop, closed_and_reused_fd_number_can_be_added_again)
{
	struct loop *l;
	struct pipe_ctx p = { 0 };
	int a[2], b[2];

	cr_assert_eq(loop_new(&l), 0);
	cr_assert_eq(pipe2(a, O_NONBLOCK), 0);
	cr_assert_eq(loop_fd_add(l, a[0], LOOP_READ, on_fd, &p), 0);
	/* Closed without loop_fd_del: epoll forgets it, our table does not. */
	close(a[0]);
	close(a[1]);
	cr_assert_eq(pipe2(b, O_NONBLOCK), 0);
	cr_assert_eq(b[0], a[0]);
	cr_assert_eq(loop_fd_add(l, b[0], LOOP_READ, on_fd, &p), 0);
	cr_assert_eq(write(b[1], "ab", 2), 2);
	cr_expect_eq(loop_run_once(l, 1000), 1);
	cr_expect_eq(p.got, 2);
	loop_free(l);
	close(b[0]);
	close(b[1]);
}

Test(loop, hangup_is_reported_as_error)
{
	struct loop *l;
	struct pipe_ctx p = { .del_self = true };
	int fds[2];

	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	cr_assert_eq(loop_new(&l), 0);
	cr_assert_eq(loop_fd_add(l, fds[0], LOOP_READ, on_fd, &p), 0);
	close(fds[1]);
	cr_expect_eq(loop_run_once(l, 1000), 1);
	cr_expect_eq(loop_fd_mask(l, fds[0]), 0);
	loop_free(l);
	close(fds[0]);
}

static long stop_timer(struct loop *l, long long id, void *ctx)
{
	int *n = ctx;

	if (++*n == 3) {
		loop_stop(l);
		return LOOP_TIMER_DONE;
	}
	return 5;
}

Test(loop, run_returns_after_stop)
{
	struct loop *l;
	int n = 0;

	cr_assert_eq(loop_new(&l), 0);
	cr_assert_gt(loop_timer_add(l, 1, stop_timer, &n), 0);
	cr_expect_eq(loop_run(l), 0);
	cr_expect_eq(n, 3);
	loop_free(l);
	loop_free(NULL);
}

static long readd_timer(struct loop *l, long long id, void *ctx)
{
	int *n = ctx;

	++*n;
	cr_assert_gt(loop_timer_add(l, 0, readd_timer, ctx), 0);
	return LOOP_TIMER_DONE;
}

Test(loop, zero_ms_timer_added_from_a_timer_waits_for_next_iteration)
{
	struct loop *l;
	int n = 0;

	cr_assert_eq(loop_new(&l), 0);
	cr_assert_gt(loop_timer_add(l, 0, readd_timer, &n), 0);
	cr_expect_eq(loop_run_once(l, 0), 1);
	cr_expect_eq(n, 1);
	cr_expect_eq(loop_run_once(l, 0), 1);
	cr_expect_eq(n, 2);
	/* Many timers force the array to grow while iterating. */
	for (int i = 0; i < 40; i++)
		cr_assert_gt(loop_timer_add(l, 0, readd_timer, &n), 0);
	cr_expect_eq(loop_run_once(l, 0), 41);
	loop_free(l);
}
