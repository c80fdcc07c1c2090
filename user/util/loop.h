/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's one event loop: epoll for file descriptors plus a handful of
 * millisecond timers, in the spirit of redis's ae.c. Everything that waits
 * (the capture ring buffer fd, curl's sockets and timer, the store flush)
 * registers here; nothing spins or sleeps elsewhere in the daemon's main
 * thread. The metrics server is the exception: libmicrohttpd runs it in a
 * thread of its own (see metrics.h).
 *
 * Single-threaded: every function must be called from the thread that runs
 * the loop. Callbacks may add and delete fds and timers (their own included)
 * and call loop_stop(); they must not call loop_free() or loop_run().
 *
 * Timers live in a small array scanned linearly (like ae.c): meant for tens
 * of timers, not one per request.
 */
#ifndef SHADOW_LOOP_H
#define SHADOW_LOOP_H

#include <stdint.h>

struct loop;

/* Interest and readiness bits. LOOP_ERROR is only ever reported (EPOLLERR or
 * EPOLLHUP), never requested. */
enum loop_events {
	LOOP_READ = 1u << 0,
	LOOP_WRITE = 1u << 1,
	LOOP_ERROR = 1u << 2,
};

/* Returned by a timer callback that does not want to run again. */
#define LOOP_TIMER_DONE (-1L)

/* Called when fd is ready; `events` is a mask of enum loop_events. */
typedef void (*loop_fd_fn)(struct loop *l, int fd, unsigned events,
			   void *ctx);
/* Called when a timer is due. Returns the delay (ms, >= 0) until it runs
 * again, or LOOP_TIMER_DONE to delete it. */
typedef long (*loop_timer_fn)(struct loop *l, long long id, void *ctx);

/* Creates a loop in *out. Returns 0 or -errno; the caller owns *out and frees
 * it with loop_free(). */
int loop_new(struct loop **out) __attribute__((warn_unused_result));
/* Frees the loop (accepts NULL). Watched fds are not closed (the loop never
 * owns them) and pending timers are dropped without being called. */
void loop_free(struct loop *l);

/* Watches fd for `mask` (LOOP_READ | LOOP_WRITE), calling fn(ctx) when ready.
 * Called again for a watched fd, replaces its mask, fn and ctx. The fd stays
 * the caller's. Returns 0 or -errno (-EINVAL for a bad fd or empty mask). */
int loop_fd_add(struct loop *l, int fd, unsigned mask, loop_fd_fn fn,
		void *ctx) __attribute__((warn_unused_result));
/* Stops watching fd; a no-op if it is not watched. Safe on an fd that was
 * already closed. After it returns, fn is not called for fd again even if
 * events for it were already collected in the current iteration. */
void loop_fd_del(struct loop *l, int fd);
/* The mask fd is watched for, 0 if none. */
unsigned loop_fd_mask(const struct loop *l, int fd);

/* Runs fn(ctx) once after ms milliseconds (ms <= 0: at the next iteration),
 * and again as long as fn returns a delay. Returns the timer id (> 0) or
 * -errno. */
long long loop_timer_add(struct loop *l, long ms, loop_timer_fn fn, void *ctx)
	__attribute__((warn_unused_result));
/* Deletes a timer. Returns 0, or -ENOENT if id is not a pending timer (it
 * already ran for the last time or was deleted). */
int loop_timer_del(struct loop *l, long long id);

/* Runs one iteration: waits at most timeout_ms (< 0: until something
 * happens, 0: does not block; the wait is cut short by the next due timer),
 * then calls the ready fd callbacks and the due timers. Returns the number
 * of callbacks called, or -errno if epoll failed (EINTR counts as 0). */
int loop_run_once(struct loop *l, long timeout_ms);
/* Runs iterations until loop_stop(). Returns 0 or -errno from epoll. */
int loop_run(struct loop *l);
/* Makes loop_run() return after the current iteration. */
void loop_stop(struct loop *l);

/* CLOCK_MONOTONIC in milliseconds, the clock timers use. */
uint64_t loop_now_ms(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t loop_now_ns(void);

#endif /* SHADOW_LOOP_H */
