// SPDX-License-Identifier: BSD-2-Clause
#include "util/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "util/dbuf.h"

#define LOOP_MAX_EVENTS 256
/* fds above this are refused: the table is indexed by fd. */
#define LOOP_MAX_FD (1 << 24)

struct loop_fd {
	unsigned mask; /* 0: not watched */
	loop_fd_fn fn;
	void *ctx;
};

struct loop_timer {
	long long id; /* 0: deleted, slot reclaimed at the next sweep */
	uint64_t due_ns;
	loop_timer_fn fn;
	void *ctx;
};

struct loop {
	int epfd;
	bool stop;
	bool running_timers; /* in run_timers(): deletions only mark */
	struct loop_fd *fds;
	size_t nfds; /* entries in fds */
	struct loop_timer *timers;
	size_t ntimers, timers_cap;
	long long next_id;
	struct epoll_event events[LOOP_MAX_EVENTS];
};

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ms(void)
{
	return loop_now_ns() / 1000000ull;
}

int loop_new(struct loop **out)
{
	struct loop *l;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	l->next_id = 1;
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->fds);
	free(l->timers);
	free(l);
}

static uint32_t to_epoll(unsigned mask)
{
	return ((mask & LOOP_READ) ? EPOLLIN : 0) |
	       ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
}

int loop_fd_add(struct loop *l, int fd, unsigned mask, loop_fd_fn fn,
		void *ctx)
{
	struct epoll_event ev = { 0 };
	int op;

	mask &= LOOP_READ | LOOP_WRITE;
	if (fd < 0 || fd >= LOOP_MAX_FD || !mask || !fn)
		return -EINVAL;
	if ((size_t)fd >= l->nfds) {
		size_t n = l->nfds ? l->nfds : 64;
		struct loop_fd *v;

		while (n <= (size_t)fd)
			n *= 2;
		v = realloc(l->fds, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + l->nfds, 0, (n - l->nfds) * sizeof(*v));
		l->fds = v;
		l->nfds = n;
	}
	ev.events = to_epoll(mask);
	ev.data.fd = fd;
	op = l->fds[fd].mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0) {
		/* The fd was closed and its number reused behind our back
		 * (MOD -> ENOENT), or registered outside our table (EEXIST). */
		if (errno == ENOENT && op == EPOLL_CTL_MOD)
			op = EPOLL_CTL_ADD;
		else if (errno == EEXIST && op == EPOLL_CTL_ADD)
			op = EPOLL_CTL_MOD;
		else
			return -errno;
		if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
			return -errno;
	}
	l->fds[fd].mask = mask;
	l->fds[fd].fn = fn;
	l->fds[fd].ctx = ctx;
	return 0;
}

void loop_fd_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].mask)
		return;
	/* Fails harmlessly (EBADF/ENOENT) when the fd is already closed. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

unsigned loop_fd_mask(const struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds)
		return 0;
	return l->fds[fd].mask;
}

long long loop_timer_add(struct loop *l, long ms, loop_timer_fn fn, void *ctx)
{
	struct loop_timer *t;

	if (!fn)
		return -EINVAL;
	if (vec_reserve(l->timers, l->timers_cap, l->ntimers + 1) < 0)
		return -ENOMEM;
	t = &l->timers[l->ntimers++];
	t->id = l->next_id++;
	t->due_ns = loop_now_ns() + (ms > 0 ? (uint64_t)ms * 1000000ull : 0);
	t->fn = fn;
	t->ctx = ctx;
	return t->id;
}

int loop_timer_del(struct loop *l, long long id)
{
	if (id <= 0)
		return -ENOENT;
	for (size_t i = 0; i < l->ntimers; i++) {
		if (l->timers[i].id != id)
			continue;
		if (l->running_timers) {
			/* Only marked: run_timers() is iterating. */
			l->timers[i].id = 0;
		} else {
			/* Gone at once, so that a timer re-armed for every
			 * request (curl's) does not pile up dead slots for
			 * every scan to walk until the next sweep. */
			memmove(&l->timers[i], &l->timers[i + 1],
				(l->ntimers - i - 1) * sizeof(l->timers[0]));
			l->ntimers--;
		}
		return 0;
	}
	return -ENOENT;
}

static void sweep_timers(struct loop *l)
{
	size_t j = 0;

	for (size_t i = 0; i < l->ntimers; i++)
		if (l->timers[i].id)
			l->timers[j++] = l->timers[i];
	l->ntimers = j;
}

/* Milliseconds until the next timer (rounded up), -1 if there is none. */
static long next_timer_ms(const struct loop *l, uint64_t now)
{
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < l->ntimers; i++)
		if (l->timers[i].id && l->timers[i].due_ns < min)
			min = l->timers[i].due_ns;
	if (min == UINT64_MAX)
		return -1;
	if (min <= now)
		return 0;
	return (long)((min - now + 999999ull) / 1000000ull);
}

static int run_timers(struct loop *l)
{
	uint64_t now = loop_now_ns();
	size_t n;
	int ran = 0;

	sweep_timers(l);
	/* Timers added by callbacks land past n and wait for the next
	 * iteration, so a 0 ms timer re-adding itself cannot starve fds. */
	n = l->ntimers;
	l->running_timers = true;
	for (size_t i = 0; i < n; i++) {
		struct loop_timer t = l->timers[i];
		long again;

		if (!t.id || t.due_ns > now)
			continue;
		again = t.fn(l, t.id, t.ctx);
		ran++;
		/* The callback may have deleted its own timer. */
		if (l->timers[i].id != t.id)
			continue;
		if (again < 0)
			l->timers[i].id = 0;
		else
			l->timers[i].due_ns = loop_now_ns() +
					      (uint64_t)again * 1000000ull;
	}
	l->running_timers = false;
	return ran;
}

int loop_run_once(struct loop *l, long timeout_ms)
{
	long wait = next_timer_ms(l, loop_now_ns());
	int n, ran = 0;

	if (wait < 0 || (timeout_ms >= 0 && timeout_ms < wait))
		wait = timeout_ms;
	if (wait > 1000L * 3600)
		wait = 1000L * 3600;
	n = epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, (int)wait);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		int fd = l->events[i].data.fd;
		uint32_t e = l->events[i].events;
		unsigned got = 0;
		struct loop_fd *f;

		if (e & EPOLLIN)
			got |= LOOP_READ;
		if (e & EPOLLOUT)
			got |= LOOP_WRITE;
		if (e & (EPOLLERR | EPOLLHUP))
			got |= LOOP_ERROR;
		/* An earlier callback in this batch may have deleted fd. */
		if ((size_t)fd >= l->nfds || !l->fds[fd].mask)
			continue;
		f = &l->fds[fd];
		if (!(got & LOOP_ERROR))
			got &= f->mask;
		if (!got)
			continue;
		f->fn(l, fd, got, f->ctx);
		ran++;
	}
	return ran + run_timers(l);
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int rc = loop_run_once(l, -1);

		if (rc < 0)
			return rc;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
