// SPDX-License-Identifier: BSD-2-Clause
/*
 * A slow candidate for make bench: answers every request with BODY
 * (application/json, 200) DELAY_MS after it arrived, on 127.0.0.1:PORT,
 * keep-alive. Built on libmicrohttpd: each request's connection is
 * suspended, and one thread resumes them in arrival order when they are
 * due. It costs a few microseconds of CPU per request, so that on a
 * 2-core machine the primary's figures show what shadowing costs it, not
 * what the candidate's own work costs (node's echo candidate spent ~0.8
 * ms of CPU per request there: about 10% of a core at 128 replays/s).
 * Usage: slow_candidate PORT DELAY_MS BODY     (runs until killed)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A request waiting for its time: all wait as long, so a FIFO is in
 * order of when they are due. */
struct waiting {
	struct MHD_Connection *conn;
	struct timespec due;
	struct waiting *next;
	bool resumed;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct waiting *head, *tail;
static struct MHD_Response *answer;
static long delay_ms;

static void *resumer(void *arg)
{
	pthread_mutex_lock(&mu);
	for (;;) {
		struct waiting *w;

		while (!head)
			pthread_cond_wait(&cv, &mu);
		w = head;
		if (pthread_cond_timedwait(&cv, &mu, &w->due) != ETIMEDOUT &&
		    head == w) {
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec < w->due.tv_sec ||
			    (now.tv_sec == w->due.tv_sec &&
			     now.tv_nsec < w->due.tv_nsec))
				continue;
		}
		head = w->next;
		if (!head)
			tail = NULL;
		w->resumed = true;
		MHD_resume_connection(w->conn);
	}
	return arg;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct waiting *w = *state;

	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return MHD_NO;
		*state = w;
		return MHD_YES; /* the headers; the body (if any) comes next */
	}
	if (*upload_size) {
		*upload_size = 0; /* read and dropped */
		return MHD_YES;
	}
	if (!w->conn) {
		w->conn = conn;
		clock_gettime(CLOCK_MONOTONIC, &w->due);
		w->due.tv_sec += delay_ms / 1000;
		w->due.tv_nsec += (delay_ms % 1000) * 1000000L;
		if (w->due.tv_nsec >= 1000000000L) {
			w->due.tv_sec++;
			w->due.tv_nsec -= 1000000000L;
		}
		MHD_suspend_connection(conn);
		pthread_mutex_lock(&mu);
		if (tail)
			tail->next = w;
		else
			head = w;
		tail = w;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&mu);
		return MHD_YES;
	}
	if (!w->resumed)
		return MHD_YES;
	return MHD_queue_response(conn, MHD_HTTP_OK, answer);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **state,
		    enum MHD_RequestTerminationCode why)
{
	free(*state);
	*state = NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	pthread_condattr_t ca;
	struct MHD_Daemon *d;
	pthread_t t;
	sigset_t set;
	int sig;

	if (argc != 4 || atoi(argv[1]) <= 0 || atol(argv[2]) < 0) {
		fprintf(stderr, "usage: slow_candidate PORT DELAY_MS BODY\n");
		return 2;
	}
	delay_ms = atol(argv[2]);
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	answer = MHD_create_response_from_buffer(strlen(argv[3]), argv[3],
						 MHD_RESPMEM_PERSISTENT);
	if (!answer ||
	    MHD_add_response_header(answer, "Content-Type",
				    "application/json") != MHD_YES)
		return 1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&t, NULL, resumer, NULL))
		return 1;
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
				     MHD_ALLOW_SUSPEND_RESUME,
			     0, NULL, NULL, on_request, NULL,
			     MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, 0U,
			     MHD_OPTION_CONNECTION_LIMIT, 10000U,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "slow_candidate: cannot listen on port %s\n",
			argv[1]);
		return 1;
	}
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
