// SPDX-License-Identifier: BSD-2-Clause
#include "replay.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "message.h"
#include "util/dbuf.h"
#include "util/loop.h"

#define REPLAY_DEFAULT_TIMEOUT_MS 2000
#define REPLAY_DEFAULT_INFLIGHT 64
#define REPLAY_DEFAULT_QUEUE 1024
#define REPLAY_DEFAULT_MAX_BODY (1u << 20)
#define REPLAY_DEFAULT_FAILURES 20
#define REPLAY_DEFAULT_PAUSE_MS 5000
/* Caps on what the candidate sends back before the body. */
#define REPLAY_MAX_HEAD_BYTES (64u << 10)
#define REPLAY_MAX_HEADERS 256

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

enum leg_kind { LEG_CANDIDATE, LEG_NOISE };

struct job;
struct runner;

/* One transfer: the candidate's (or the recheck's) or the noise primary's. */
struct leg {
	struct runner *w; /* whose multi handle runs it */
	struct job *job;
	enum leg_kind kind;
	CURL *easy;     /* NULL when not in flight */
	char *target;   /* request-target sent */
	struct http_response resp;
	struct dbuf body; /* at most max_body bytes */
	size_t head_bytes;
	bool final_head; /* the head being read is not a 1xx */
	bool head_done;  /* the final head ended: later lines are trailers */
	bool proto_error;
	bool oom;
};

struct job {
	struct replay_job pub;
	struct job *next, *prev; /* a queue or list, or a runner's flying */
	struct curl_slist *hdrs; /* built once, shared by the legs */
	struct leg cand, noise;
	unsigned pending; /* legs in flight */
	bool probe;
	bool in_callback;
	bool recheck_requested;
	/* Set by the runner for the loop's thread (job_back()), which counts
	 * them: the runner touches no counter. */
	struct runner *w;        /* sent to it */
	bool unsent;             /* not sent, for unsent_outcome/_error */
	enum replay_outcome unsent_outcome;
	enum replay_error unsent_error;
	bool noise_sent;         /* a noise leg was tried */
	enum replay_error cand_error; /* the candidate leg (or recheck's) */
	curl_off_t cand_us;      /* its time in flight */
};

/* Jobs in a singly linked list (next), in order. */
struct job_list {
	struct job *head, *tail;
};

/* Jobs one thread posts and another takes (threads only): a list under a
 * lock, and an eventfd the taker's loop watches. The eventfd is written
 * only when a post finds the list empty: the taker reads it before it
 * takes the list, so a job posted after that finds the list empty and
 * wakes the taker again. */
struct mailbox {
	pthread_mutex_t lock;
	bool lock_ok;
	int fd; /* -1: not set up */
	struct job_list list;
};

/* A connection socket: opened by on_curl_open(), closed by on_curl_close(). */
struct sock_state {
	bool open;
	unsigned char mask; /* watched for (LOOP_READ | LOOP_WRITE); 0: not */
	bool parked;        /* curl let go of it: idle, kept watched */
};

struct url_base {
	char *url;  /* as configured */
	char *path; /* its path without the trailing '/': "" or "/v2" */
	CURLU *uh;  /* url, parsed once rather than by curl on every transfer */
};

/*
 * Where transfers run: a curl multi handle on a loop. With one thread the
 * replayer's only runner uses the replayer's loop; with more, each runner
 * has a thread and a loop of its own, and takes its jobs from `inbox`.
 * Only its thread touches the curl state, the pool, the sockets and
 * `flying`; the replayer's config it only reads.
 */
#define RUNNER_LINE 64

struct runner {
	struct replay *r;
	struct loop *loop;
	CURLM *multi;
	CURLU *uh[2];  /* by leg_kind: the base URLs, a copy of its own */
	long long curl_timer;
	CURL **pool;   /* idle easy handles */
	size_t npool, pool_cap;
	struct sock_state *socks; /* indexed by socket, see sock_conn() */
	size_t nsocks;
	struct job *flying; /* in flight (doubly linked) */
	bool closing;
	struct job_list done; /* ended, for hand_back() (threads only) */

	/* The loop's thread only; on a cache line of its own, as is what
	 * both threads write, so that neither thread's writes evict the
	 * other's. */
	_Alignas(RUNNER_LINE) unsigned share; /* its part of max_inflight */
	unsigned inflight;  /* jobs sent to it and not back */
	struct job_list batch; /* picked by pump(), handed over at its end */

	/* Threads only. */
	_Alignas(RUNNER_LINE) pthread_t tid;
	bool started;
	struct mailbox inbox; /* jobs to send; its wakeup also says stop */
	atomic_bool stop;
};

struct replay {
	struct loop *loop;
	replay_done_fn done;
	void *ctx;

	struct url_base cand_url, noise_url;
	bool has_noise;
	long timeout_ms;
	unsigned max_inflight;
	size_t max_queue;
	double rate; /* --rate, 0 for none */
	double tokens;
	uint64_t tokens_ns;
	double occ_us; /* a candidate call's time in flight, averaged */
	bool replay_unsafe;
	char *host_header;
	struct headers set; /* from set_headers */
	char **drop;
	size_t n_drop;
	char *cacert;
	bool insecure;
	size_t max_body;
	unsigned breaker_failures;
	long breaker_pause_ms;

	long long token_timer, breaker_timer, pump_timer;
	struct job_list queue;         /* waiting */
	unsigned consecutive_failures;
	bool probe_inflight;
	bool queue_closed; /* filled up, not yet drained to half */
	bool pumping;
	bool delivering; /* in check_done() or on_back() */
	bool closing;
	struct runner *runners;
	unsigned nrunners;
	bool threaded; /* nrunners > 1: the runners have threads */
	struct mailbox back; /* threads only: jobs back, for on_back() */
	struct replay_stats stats;
};

static const char *const error_names[] = {
	[REPLAY_ERR_NONE] = "none",
	[REPLAY_ERR_REFUSED] = "refused",
	[REPLAY_ERR_TIMEOUT] = "timeout",
	[REPLAY_ERR_RESET] = "reset",
	[REPLAY_ERR_BAD_URL] = "bad_url",
	[REPLAY_ERR_TLS] = "tls",
	[REPLAY_ERR_BREAKER_OPEN] = "breaker_open",
	[REPLAY_ERR_PROTOCOL] = "protocol",
	[REPLAY_ERR_OTHER] = "other",
};

static const char *const outcome_names[] = {
	[REPLAY_OK] = "ok",
	[REPLAY_CANDIDATE_ERROR] = "candidate_error",
	[REPLAY_SHED_QUEUE] = "shed_queue",
	[REPLAY_SHED_BREAKER] = "shed_breaker",
	[REPLAY_UNSAFE_SKIPPED] = "unsafe_skipped",
	[REPLAY_DROPPED] = "dropped",
};

const char *replay_error_name(enum replay_error e)
{
	if ((unsigned)e >= REPLAY_ERR__COUNT)
		return "unknown";
	return error_names[e];
}

enum replay_error replay_error_class(const char *name)
{
	for (int e = REPLAY_ERR_CLASS_FIRST; name && e < REPLAY_ERR__COUNT; e++)
		if (!strcmp(name, error_names[e]))
			return e;
	return REPLAY_ERR_OTHER;
}

const char *replay_outcome_name(enum replay_outcome o)
{
	if ((unsigned)o >= REPLAY_OUTCOME__COUNT)
		return "unknown";
	return outcome_names[o];
}

static unsigned pump(struct replay *r);
static void pump_soon(struct replay *r);

/* ---- configuration ---------------------------------------------------- */

static bool is_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    !strchr("!#$%&'*+-.^_`|~", s[i]))
			return false;
	return true;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
	return false;
}

static int parse_base(const char *what, const char *url, struct url_base *b,
		      char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL,
	     *frag = NULL;
	int rc = -EINVAL;
	size_t n;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!url || !*url) {
		snprintf(err, errlen, "%s: a URL is required", what);
		goto cleanup;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		snprintf(err, errlen,
			 "%s '%s': not a URL (expected http://HOST[:PORT][/PATH])",
			 what, url);
		goto cleanup;
	}
	if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
		snprintf(err, errlen,
			 "%s '%s': scheme must be http:// or https://", what,
			 url);
		goto cleanup;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		snprintf(err, errlen,
			 "%s '%s': a base URL takes no ?query or #fragment",
			 what, url);
		goto cleanup;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	b->url = strdup(url);
	b->path = strdup(path ? path : "");
	if (!b->url || !b->path) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto cleanup;
	}
	n = strlen(b->path);
	while (n && b->path[n - 1] == '/')
		b->path[--n] = '\0';
	b->uh = u;
	u = NULL;
	rc = 0;
cleanup:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

/* 10 ms worth of tokens at `rate`, at least one: smooth, yet a 1 ms timer
 * keeps up with high rates. */
static double token_burst(double rate)
{
	return rate / 100 > 1 ? rate / 100 : 1;
}

/* The rate replays go out at: --rate, and, once the candidate's calls
 * take long, no faster than slots free up (max_inflight calls per call
 * time) with a quarter to spare. Replays to a slow candidate then go out
 * evenly instead of in waves of max_inflight sent together, answered
 * together, and diffed and refilled in one burst of daemon work that a
 * busy primary shares a core with. It never holds a slot idle for long,
 * and a fast candidate is not held at all: 10 ms worth of tokens is more
 * than max_inflight whenever a call takes under 12.5 ms. 0: no limit. */
#define PACE_SPARE 1.25

static double send_rate(const struct replay *r)
{
	double pace = r->occ_us > 0 ? PACE_SPARE * r->max_inflight * 1e6 /
					      r->occ_us
				    : 0;

	if (r->rate > 0 && (pace <= 0 || r->rate < pace))
		return r->rate;
	return pace;
}

/* Learns how long a candidate call holds its slot (a running average
 * over the last ~8 calls; a timeout counts its full wait). */
static void pace_learn(struct replay *r, curl_off_t total_us)
{
	double us = total_us > 0 ? (double)total_us : 1;

	r->occ_us = r->occ_us > 0 ? r->occ_us + (us - r->occ_us) / 8 : us;
}

static int copy_config(struct replay *r, const struct replay_config *c,
		       char *err, size_t errlen)
{
	int rc;

	rc = parse_base("--candidate", c->candidate_url, &r->cand_url, err,
			errlen);
	if (rc)
		return rc;
	if (c->noise_primary_url) {
		rc = parse_base("--noise-primary", c->noise_primary_url,
				&r->noise_url, err, errlen);
		if (rc)
			return rc;
		r->has_noise = true;
	}
	if (isnan(c->rate)) {
		snprintf(err, errlen, "--rate: not a number");
		return -EINVAL;
	}
	r->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms
					  : REPLAY_DEFAULT_TIMEOUT_MS;
	r->max_inflight = c->max_inflight ? c->max_inflight
					  : REPLAY_DEFAULT_INFLIGHT;
	r->max_queue = c->max_queue ? c->max_queue : REPLAY_DEFAULT_QUEUE;
	r->rate = c->rate > 0 ? c->rate : 0;
	r->tokens = token_burst(r->rate);
	r->tokens_ns = loop_now_ns();
	r->replay_unsafe = c->replay_unsafe;
	r->insecure = c->insecure;
	r->max_body = c->max_body ? c->max_body : REPLAY_DEFAULT_MAX_BODY;
	r->breaker_failures = c->breaker_failures ? c->breaker_failures
						  : REPLAY_DEFAULT_FAILURES;
	r->breaker_pause_ms = c->breaker_pause_ms > 0
				      ? c->breaker_pause_ms
				      : REPLAY_DEFAULT_PAUSE_MS;
	if (c->host_header) {
		if (!*c->host_header || has_ctl(c->host_header) ||
		    strchr(c->host_header, ' ')) {
			snprintf(err, errlen,
				 "--host-header '%s': not a host name",
				 c->host_header);
			return -EINVAL;
		}
		r->host_header = strdup(c->host_header);
		if (!r->host_header)
			goto oom;
	}
	for (size_t i = 0; i < c->n_set; i++) {
		const char *s = c->set_headers[i];
		const char *colon = s ? strchr(s, ':') : NULL;
		const char *v;
		size_t vlen;

		if (!colon || !is_token(s, (size_t)(colon - s)) ||
		    has_ctl(colon)) {
			snprintf(err, errlen,
				 "--set-header '%s': expected 'Name: value'",
				 s ? s : "");
			return -EINVAL;
		}
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		vlen = strlen(v);
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (headers_add(&r->set, s, (size_t)(colon - s), v, vlen))
			goto oom;
	}
	if (c->n_drop) {
		r->drop = calloc(c->n_drop, sizeof(*r->drop));
		if (!r->drop)
			goto oom;
	}
	for (size_t i = 0; i < c->n_drop; i++) {
		const char *s = c->drop_headers[i];

		if (!s || !is_token(s, strlen(s))) {
			snprintf(err, errlen,
				 "--drop-header '%s': not a header name",
				 s ? s : "");
			return -EINVAL;
		}
		r->drop[i] = strdup(s);
		if (!r->drop[i])
			goto oom;
		r->n_drop++;
	}
	if (c->cacert) {
		if (access(c->cacert, R_OK) != 0) {
			snprintf(err, errlen, "--cacert %s: %s", c->cacert,
				 strerror(errno));
			return -EINVAL;
		}
		r->cacert = strdup(c->cacert);
		if (!r->cacert)
			goto oom;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* ---- curl <-> loop ---------------------------------------------------- */

static void check_done(struct runner *w);

/* Connection sockets are tracked so that the steady state of a reused
 * connection costs no epoll_ctl(): when a transfer ends, curl lets go of
 * its socket (CURL_POLL_REMOVE) and the next transfer on that connection
 * asks for it again (CURL_POLL_IN). In between, the socket stays watched
 * for reading ("parked"): if the server closes it or sends something
 * unasked, on_fd() stops watching it, and curl finds the connection dead
 * when it next tries to reuse it. This relies on knowing when the socket
 * is closed: curl closes connection sockets through on_curl_close(),
 * which stops watching first. Other sockets curl may report (a resolver's
 * socketpair) are closed by curl itself and watched the plain way. */
static struct sock_state *sock_conn(const struct runner *w, curl_socket_t s)
{
	if (s < 0 || (size_t)s >= w->nsocks || !w->socks[s].open)
		return NULL;
	return &w->socks[s];
}

static void sock_unwatch(struct runner *w, curl_socket_t s)
{
	struct sock_state *st = sock_conn(w, s);

	loop_fd_del(w->loop, s);
	if (st) {
		st->mask = 0;
		st->parked = false;
	}
}

/* CURLOPT_OPENSOCKETFUNCTION: curl's own way of opening the socket, and
 * the start of its tracking (none if it cannot be recorded). */
static curl_socket_t on_curl_open(void *clientp, curlsocktype purpose,
				  struct curl_sockaddr *a)
{
	struct runner *w = clientp;
	curl_socket_t s = socket(a->family, a->socktype, a->protocol);

	if (s < 0)
		return CURL_SOCKET_BAD;
	if ((size_t)s >= w->nsocks) {
		size_t n = w->nsocks ? w->nsocks * 2 : 64;
		struct sock_state *v;

		while (n <= (size_t)s)
			n *= 2;
		v = realloc(w->socks, n * sizeof(*v));
		if (!v)
			return s;
		memset(v + w->nsocks, 0, (n - w->nsocks) * sizeof(*v));
		w->socks = v;
		w->nsocks = n;
	}
	w->socks[s] = (struct sock_state){ .open = true };
	return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: no REMOVE comes for a parked socket, which
 * curl no longer knows of, so it is unwatched here, before it closes. */
static int on_curl_close(void *clientp, curl_socket_t s)
{
	struct runner *w = clientp;

	sock_unwatch(w, s);
	if ((size_t)s < w->nsocks)
		w->socks[s].open = false;
	return close(s);
}

static void on_fd(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct runner *w = ctx;
	struct sock_state *st = sock_conn(w, fd);
	int flags = 0, running;

	if (st && st->parked) {
		/* An idle connection closed or spoke: curl will notice. */
		sock_unwatch(w, fd);
		return;
	}
	if (events & LOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & LOOP_ERROR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(w->multi, fd, flags, &running);
	check_done(w);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp,
			  void *socketp)
{
	struct runner *w = userp;
	struct sock_state *st;
	unsigned mask = 0;

	if (what & CURL_POLL_IN)
		mask |= LOOP_READ;
	if (what & CURL_POLL_OUT)
		mask |= LOOP_WRITE;
	st = sock_conn(w, s); /* NULL: watched the plain way */
	if (!mask) { /* CURL_POLL_REMOVE (or NONE) */
		/* Park it, unless it would wake us up for nothing. */
		if (st && st->mask == LOOP_READ)
			st->parked = true;
		else
			sock_unwatch(w, s);
		return 0;
	}
	if (st && st->mask == mask) {
		st->parked = false;
		return 0;
	}
	if (loop_fd_add(w->loop, s, mask, on_fd, w)) {
		sock_unwatch(w, s);
		return -1;
	}
	if (st) {
		st->mask = (unsigned char)mask;
		st->parked = false;
	}
	return 0;
}

/* Lets curl do what is due, starting the transfers added since it last
 * ran, and collects those that ended. */
static void run_due(struct runner *w)
{
	int running;

	curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(w);
}

static long on_curl_timeout(struct loop *l, long long id, void *ctx)
{
	struct runner *w = ctx;

	w->curl_timer = 0;
	run_due(w);
	return LOOP_TIMER_DONE;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct runner *w = userp;
	long long id;

	if (w->curl_timer) {
		loop_timer_del(w->loop, w->curl_timer);
		w->curl_timer = 0;
	}
	if (timeout_ms < 0 || w->closing)
		return 0;
	/* Even 0 goes through the loop: curl must not be re-entered from
	 * its own callback. */
	id = loop_timer_add(w->loop, timeout_ms, on_curl_timeout, w);
	if (id < 0)
		return -1;
	w->curl_timer = id;
	return 0;
}

/* ---- responses -------------------------------------------------------- */

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct leg *g = ud;
	size_t len = size * n, end = len;
	const char *colon, *v;

	g->head_bytes += len;
	if (g->head_bytes > REPLAY_MAX_HEAD_BYTES) {
		g->proto_error = true;
		return 0;
	}
	if (len >= 5 && !memcmp(buf, "HTTP/", 5)) {
		const char *sp = memchr(buf, ' ', len);
		int status = 0;

		headers_clean(&g->resp.headers);
		if (sp && (size_t)(sp - buf) + 4 <= len)
			status = atoi(sp + 1);
		g->final_head = status < 100 || status >= 200;
		g->head_done = false;
		return len;
	}
	while (end && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
		end--;
	if (!end) {
		if (g->final_head)
			g->head_done = true;
		return len;
	}
	if (g->head_done)
		return len; /* a trailer: not part of the head */
	colon = memchr(buf, ':', end);
	if (!colon || colon == buf)
		return len; /* obsolete folding: curl has vetted the head */
	if (g->resp.headers.n >= REPLAY_MAX_HEADERS) {
		g->proto_error = true;
		return 0;
	}
	v = colon + 1;
	while (v < buf + end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > (size_t)(v - buf) && (buf[end - 1] == ' ' ||
					   buf[end - 1] == '\t'))
		end--;
	if (headers_add(&g->resp.headers, buf, (size_t)(colon - buf), v,
			(size_t)(buf + end - v))) {
		g->oom = true;
		return 0;
	}
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
	struct leg *g = ud;
	size_t len = size * n, room, take;

	/* Past max_body the rest is read and dropped, which keeps the
	 * connection reusable; the timeout bounds an endless body. */
	room = g->w->r->max_body - g->body.len;
	take = len < room ? len : room;
	if (take < len)
		g->resp.flags |= MESSAGE_TRUNCATED;
	if (!take)
		return len;
	if (dbuf_add(&g->body, buf, take) < 0) {
		g->oom = true;
		return 0;
	}
	return len;
}

/* Moves the collected body into resp.raw and derives resp.decoded. */
static int finish_body(struct leg *g)
{
	size_t len;
	uint8_t *p = (uint8_t *)dbuf_take(&g->body, &len);

	if (!p && !(p = calloc(1, 1)))
		return -ENOMEM;
	g->resp.raw.data = p;
	g->resp.raw.len = len;
	return http_response_decode(&g->resp, g->w->r->max_body);
}

static enum replay_error classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return REPLAY_ERR_NONE;
	case CURLE_COULDNT_CONNECT:
		return REPLAY_ERR_REFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return REPLAY_ERR_TIMEOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return REPLAY_ERR_RESET;
	case CURLE_URL_MALFORMAT:
		return REPLAY_ERR_BAD_URL;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return REPLAY_ERR_TLS;
	case CURLE_UNSUPPORTED_PROTOCOL: /* HTTP/0.9: the URL was vetted */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_FILESIZE_EXCEEDED:
		return REPLAY_ERR_PROTOCOL;
	default:
		return REPLAY_ERR_OTHER;
	}
}

/* ---- jobs ------------------------------------------------------------- */

static void leg_clean(struct leg *g)
{
	if (g->easy) {
		curl_multi_remove_handle(g->w->multi, g->easy);
		curl_easy_cleanup(g->easy);
		g->easy = NULL;
	}
	free(g->target);
	dbuf_free(&g->body);
	http_response_clean(&g->resp);
	g->target = NULL;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	leg_clean(&j->cand);
	leg_clean(&j->noise);
	curl_slist_free_all(j->hdrs);
	exchange_free(j->pub.x);
	http_response_clean(&j->pub.candidate);
	http_response_clean(&j->pub.noise);
	http_response_clean(&j->pub.recheck);
	free(j);
}

static void flying_add(struct runner *w, struct job *j)
{
	j->prev = NULL;
	j->next = w->flying;
	if (w->flying)
		w->flying->prev = j;
	w->flying = j;
}

static void flying_del(struct runner *w, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		w->flying = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

static void list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

/* Appends `from` to `to` and empties it. */
static void list_splice(struct job_list *to, struct job_list *from)
{
	if (!from->head)
		return;
	if (to->tail)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	from->head = from->tail = NULL;
}

static void list_free(struct job_list *l)
{
	struct job *j, *next;

	for (j = l->head; j; j = next) {
		next = j->next;
		job_free(j);
	}
	l->head = l->tail = NULL;
}

static int mailbox_init(struct mailbox *mb)
{
	mb->fd = -1;
	if (pthread_mutex_init(&mb->lock, NULL))
		return -ENOMEM;
	mb->lock_ok = true;
	mb->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return mb->fd < 0 ? -errno : 0;
}

/* Frees the jobs left in it (no callback). */
static void mailbox_clean(struct mailbox *mb)
{
	list_free(&mb->list);
	if (mb->fd >= 0)
		close(mb->fd);
	if (mb->lock_ok)
		pthread_mutex_destroy(&mb->lock);
	mb->fd = -1;
	mb->lock_ok = false;
}

/* Appends the jobs of `from` (emptied), one lock and at most one wakeup
 * for all of them. */
static void mailbox_post(struct mailbox *mb, struct job_list *from)
{
	bool wake;

	if (!from->head)
		return;
	pthread_mutex_lock(&mb->lock);
	wake = !mb->list.head;
	list_splice(&mb->list, from);
	pthread_mutex_unlock(&mb->lock);
	if (wake)
		eventfd_write(mb->fd, 1);
}

/* Takes every job posted (a list linked by next), for the taker's loop
 * when the eventfd is ready. */
static struct job *mailbox_take(struct mailbox *mb)
{
	struct job *j;
	eventfd_t n;

	(void)eventfd_read(mb->fd, &n);
	pthread_mutex_lock(&mb->lock);
	j = mb->list.head;
	mb->list.head = mb->list.tail = NULL;
	pthread_mutex_unlock(&mb->lock);
	return j;
}

static void queue_push(struct replay *r, struct job *j, bool front)
{
	j->prev = NULL;
	if (front) {
		j->next = r->queue.head;
		r->queue.head = j;
		if (!r->queue.tail)
			r->queue.tail = j;
	} else {
		list_push(&r->queue, j);
	}
	r->stats.queued++;
}

static struct job *queue_pop(struct replay *r)
{
	struct job *j = r->queue.head;

	if (!j)
		return NULL;
	r->queue.head = j->next;
	if (!r->queue.head)
		r->queue.tail = NULL;
	j->next = NULL;
	r->stats.queued--;
	if (r->stats.queued <= r->max_queue / 2)
		r->queue_closed = false;
	return j;
}

/* Hands the job to the done callback; frees it afterwards unless a
 * recheck was asked for, which puts it back at the head of the queue. */
static void deliver(struct replay *r, struct job *j)
{
	j->in_callback = true;
	r->done(r->ctx, &j->pub);
	j->in_callback = false;
	if (j->recheck_requested && !r->closing) {
		j->recheck_requested = false;
		j->pub.rechecks = 1;
		queue_push(r, j, true);
		return;
	}
	job_free(j);
}

/* Counts an exchange that is not going to be sent. */
static void count_unsent(struct replay *r, enum replay_outcome o,
			 enum replay_error e)
{
	switch (o) {
	case REPLAY_SHED_QUEUE:
		r->stats.shed_queue++;
		break;
	case REPLAY_SHED_BREAKER:
		r->stats.shed_breaker++;
		r->stats.errors[REPLAY_ERR_BREAKER_OPEN]++;
		break;
	case REPLAY_UNSAFE_SKIPPED:
		r->stats.unsafe_skipped++;
		break;
	case REPLAY_CANDIDATE_ERROR:
		r->stats.replayed++;
		r->stats.candidate_errors++;
		r->stats.errors[e]++;
		break;
	default:
		r->stats.dropped++;
		break;
	}
}

/* Ends a job that is not going to be sent (or whose recheck is not). */
static void finish_unsent(struct replay *r, struct job *j,
			  enum replay_outcome o, enum replay_error e)
{
	if (j->pub.rechecks) {
		j->pub.recheck_error = e;
	} else {
		j->pub.outcome = o;
		j->pub.error = e;
		count_unsent(r, o, e);
	}
	deliver(r, j);
}

static long on_breaker_timer(struct loop *l, long long id, void *ctx)
{
	struct replay *r = ctx;

	r->breaker_timer = 0;
	if (r->stats.breaker == REPLAY_BREAKER_OPEN)
		r->stats.breaker = REPLAY_BREAKER_HALF_OPEN;
	pump(r);
	return LOOP_TIMER_DONE;
}

static void breaker_open(struct replay *r)
{
	long long id;

	r->stats.breaker = REPLAY_BREAKER_OPEN;
	r->stats.breaker_opened++;
	r->probe_inflight = false;
	if (r->breaker_timer)
		loop_timer_del(r->loop, r->breaker_timer);
	r->breaker_timer = 0;
	id = loop_timer_add(r->loop, r->breaker_pause_ms, on_breaker_timer, r);
	/* Without a timer the next submission re-probes (see breaker_due). */
	if (id > 0)
		r->breaker_timer = id;
	else
		r->stats.breaker = REPLAY_BREAKER_HALF_OPEN;
}

/* A candidate transfer ended: success closes a half-open breaker, enough
 * consecutive failures (or a failed probe) open it. */
static void breaker_record(struct replay *r, bool ok, bool probe)
{
	if (probe)
		r->probe_inflight = false;
	if (ok) {
		r->consecutive_failures = 0;
		if (probe)
			r->stats.breaker = REPLAY_BREAKER_CLOSED;
		return;
	}
	r->consecutive_failures++;
	if (probe || (r->stats.breaker == REPLAY_BREAKER_CLOSED &&
		      r->consecutive_failures >= r->breaker_failures))
		breaker_open(r);
}

static bool breaker_blocks(const struct replay *r)
{
	return r->stats.breaker == REPLAY_BREAKER_OPEN ||
	       (r->stats.breaker == REPLAY_BREAKER_HALF_OPEN &&
		r->probe_inflight);
}


static void job_back(struct replay *r, struct job *j);

/* A job's transfers are over (or it could not be sent): back to the loop's
 * thread, at once with one runner; with threads, collected in w->done for
 * hand_back(). */
static void runner_finished(struct runner *w, struct job *j)
{
	if (!w->r->threaded)
		job_back(w->r, j);
	else
		list_push(&w->done, j);
}

/* The runner's side of a job that is not going to be sent: its outcome is
 * counted and delivered by job_back(). */
static void runner_unsent(struct runner *w, struct job *j,
			  enum replay_outcome o, enum replay_error e)
{
	j->unsent = true;
	j->unsent_outcome = o;
	j->unsent_error = e;
	runner_finished(w, j);
}

static void leg_done(struct runner *w, struct leg *g, CURLcode rc)
{
	struct job *j = g->job;
	enum replay_error e = g->proto_error ? REPLAY_ERR_PROTOCOL
					     : classify(rc);
	curl_off_t pre = 0, total = 0;
	long status = 0;
	double ms;

	if (g->oom && !g->proto_error)
		e = REPLAY_ERR_OTHER;
	curl_easy_getinfo(g->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
	curl_easy_getinfo(g->easy, CURLINFO_TOTAL_TIME_T, &total);
	curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &status);
	ms = total > pre ? (double)(total - pre) / 1000.0 : 0;
	curl_multi_remove_handle(w->multi, g->easy);
	if (w->npool < w->pool_cap)
		w->pool[w->npool++] = g->easy;
	else
		curl_easy_cleanup(g->easy);
	g->easy = NULL;
	if (e == REPLAY_ERR_NONE) {
		g->resp.status = (int)status;
		if (finish_body(g))
			e = REPLAY_ERR_OTHER;
	}
	if (e != REPLAY_ERR_NONE)
		http_response_clean(&g->resp);

	if (g->kind == LEG_NOISE) {
		j->pub.has_noise = e == REPLAY_ERR_NONE;
		j->pub.noise_error = e;
		j->pub.noise_ms = ms;
		j->pub.noise = g->resp;
	} else if (j->pub.rechecks) {
		j->pub.has_recheck = e == REPLAY_ERR_NONE;
		j->pub.recheck_error = e;
		j->pub.recheck_ms = ms;
		j->pub.recheck = g->resp;
	} else {
		j->pub.outcome = e == REPLAY_ERR_NONE ? REPLAY_OK
						      : REPLAY_CANDIDATE_ERROR;
		j->pub.error = e;
		j->pub.candidate_ms = ms;
		j->pub.candidate = g->resp;
	}
	if (g->kind == LEG_CANDIDATE) {
		j->cand_error = e;
		j->cand_us = total;
	}
	memset(&g->resp, 0, sizeof(g->resp));
	free(g->target);
	g->target = NULL;
	if (--j->pending == 0) {
		flying_del(w, j);
		runner_finished(w, j);
	}
}

/* Threads only: hands the jobs that ended to the loop's thread. */
static void hand_back(struct runner *w)
{
	mailbox_post(&w->r->back, &w->done);
}

/* Hands the transfers that ended to their jobs. With one runner, the jobs
 * they make room for, and those their done callbacks submit, are started
 * by pump_soon() once every ready socket was served, not from here: each
 * would leave from inside curl's handling of the next response, one
 * request at a time between responses, and the candidate would be woken
 * up for every one. With threads the jobs go back in one batch. */
static void check_done(struct runner *w)
{
	struct replay *r = w->r;
	CURLMsg *m;
	int left;

	if (!r->threaded)
		r->delivering = true;
	while ((m = curl_multi_info_read(w->multi, &left))) {
		struct leg *g = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &g);
		if (g)
			leg_done(w, g, m->data.result);
	}
	if (r->threaded)
		return; /* runner_main() hands them back */
	r->delivering = false;
	pump_soon(r);
}

/* The loop's side of a job back from its runner: the counters, the
 * breaker and the pace for what its transfers came to, then the done
 * callback. */
static void job_back(struct replay *r, struct job *j)
{
	struct runner *w = j->w;

	w->inflight--;
	r->stats.inflight--;
	if (j->unsent) {
		/* A probe that never left does not hold the breaker. */
		if (j->probe)
			r->probe_inflight = false;
		j->probe = false;
		j->unsent = false;
		finish_unsent(r, j, j->unsent_outcome, j->unsent_error);
		return;
	}
	if (j->noise_sent) {
		r->stats.noise_sent++;
		r->stats.noise_errors += !j->pub.has_noise;
		j->noise_sent = false;
	}
	if (!j->pub.rechecks) {
		r->stats.replayed++;
		if (j->cand_error == REPLAY_ERR_NONE) {
			r->stats.ok++;
		} else {
			r->stats.candidate_errors++;
			r->stats.errors[j->cand_error]++;
		}
	}
	/* A first call or a recheck: the candidate answered. */
	breaker_record(r, j->cand_error == REPLAY_ERR_NONE, j->probe);
	pace_learn(r, j->cand_us);
	j->probe = false;
	deliver(r, j);
}

/* Threads only: the jobs the runners handed back, delivered in one batch;
 * the queue then refills the slots they freed, in one pump. */
static void on_back(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct replay *r = ctx;
	struct job *j = mailbox_take(&r->back), *next;

	r->delivering = true;
	for (; j; j = next) {
		next = j->next;
		j->next = NULL;
		job_back(r, j);
	}
	r->delivering = false;
	pump(r);
}

/* ---- requests --------------------------------------------------------- */

static bool is_safe(const char *m)
{
	return m && (!strcmp(m, "GET") || !strcmp(m, "HEAD") ||
		     !strcmp(m, "OPTIONS"));
}

/* Whether `name` is listed in a Connection header value. */
static bool in_connection(const struct headers *h, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < h->n; i++) {
		const char *v = h->v[i].value;

		if (strcasecmp(h->v[i].name, "Connection"))
			continue;
		while (*v) {
			size_t len;

			v += strspn(v, " \t,");
			len = strcspn(v, " \t,");
			if (len == n && !strncasecmp(v, name, n))
				return true;
			v += len;
		}
	}
	return false;
}

/* Whether a captured header is left out. conn: the captured headers if
 * they have a Connection header (whose names are left out too), else NULL,
 * which spares a scan of all the headers for each one. */
static bool dropped(const struct replay *r, const struct headers *conn,
		    const char *name)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "TE",
		"Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (!strcasecmp(name, hop[i]))
			return true;
	if (r->host_header && !strcasecmp(name, "Host"))
		return true;
	for (size_t i = 0; i < r->n_drop; i++)
		if (!strcasecmp(name, r->drop[i]))
			return true;
	if (headers_get(&r->set, name))
		return true;
	return conn && in_connection(conn, name);
}

/* Appends the header line for name and value to *l: 0 or -ENOMEM. Built
 * by hand, not with asprintf(): this runs for every header of every
 * replay, and curl copies the line anyway. */
static int slist_add(struct curl_slist **l, const char *name,
		     const char *value)
{
	size_t nlen = strlen(name), vlen = value ? strlen(value) : 0;
	size_t len = nlen + (vlen ? 2 + vlen : 1);
	char buf[256], *line = len < sizeof(buf) ? buf : malloc(len + 1);
	struct curl_slist *n;

	if (!line)
		return -ENOMEM;
	memcpy(line, name, nlen);
	if (vlen) {
		memcpy(line + nlen, ": ", 2);
		memcpy(line + nlen + 2, value, vlen);
	} else {
		/* "Name;" is curl's spelling of a header with an empty
		 * value; "Name:" alone deletes one of curl's own headers. */
		line[nlen] = value ? ';' : ':';
	}
	line[len] = '\0';
	n = curl_slist_append(*l, line);
	if (line != buf)
		free(line);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* The header list sent: 0, -EINVAL (unsendable bytes), -ENOMEM. */
static int build_headers(const struct replay *r, const struct http_request *q,
			 bool with_body, struct curl_slist **out)
{
	const struct headers *h = &q->headers;
	const struct headers *conn = headers_get(h, "Connection") ? h : NULL;
	struct curl_slist *l = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (r->host_header && slist_add(&l, "Host", r->host_header))
		goto cleanup;
	for (size_t i = 0; i < h->n; i++) {
		const char *name = h->v[i].name, *value = h->v[i].value;

		if (dropped(r, conn, name))
			continue;
		if (!is_token(name, strlen(name)) || has_ctl(value)) {
			rc = -EINVAL;
			goto cleanup;
		}
		if (slist_add(&l, name, value))
			goto cleanup;
	}
	for (size_t i = 0; i < r->set.n; i++)
		if (slist_add(&l, r->set.v[i].name, r->set.v[i].value))
			goto cleanup;
	/* Switch off what curl would add on its own. */
	if (!headers_get(h, "Accept") && !headers_get(&r->set, "Accept") &&
	    slist_add(&l, "Accept", NULL))
		goto cleanup;
	if (!headers_get(h, "Expect") && !headers_get(&r->set, "Expect") &&
	    slist_add(&l, "Expect", NULL))
		goto cleanup;
	if (with_body && !headers_get(h, "Content-Type") &&
	    !headers_get(&r->set, "Content-Type") &&
	    slist_add(&l, "Content-Type", NULL))
		goto cleanup;
	*out = l;
	l = NULL;
	rc = 0;
cleanup:
	curl_slist_free_all(l);
	return rc;
}

/* base path + target, or NULL with *bad set if the target cannot be sent. */
static char *make_target(const struct url_base *b, const char *t, bool *bad)
{
	size_t plen, tlen;
	char *out;

	*bad = true;
	if (!t || !*t)
		return NULL;
	for (const char *p = t; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return NULL;
	if (!strcmp(t, "*")) {
		*bad = false;
		return strdup(*b->path ? b->path : "*");
	}
	if (*t != '/') {
		/* absolute-form (a request to a proxy): keep path and query */
		const char *s = strstr(t, "://");

		if (!s)
			return NULL;
		t = strchr(s + 3, '/');
		if (!t)
			t = "/";
	}
	*bad = false;
	plen = strlen(b->path);
	tlen = strlen(t);
	out = malloc(plen + tlen + 1);
	if (!out)
		return NULL;
	memcpy(out, b->path, plen);
	memcpy(out + plen, t, tlen + 1);
	return out;
}

/* An easy handle with the options every transfer shares. Handles go back
 * to the pool without curl_easy_reset(): start_leg() sets every option
 * that differs between requests. */
static CURL *get_easy(struct runner *w)
{
	const struct replay *r = w->r;
	CURL *e;

	if (w->npool)
		return w->pool[--w->npool];
	e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	/* Also keeps curl from reading no_proxy from the environment on
	 * every transfer. */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_curl_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, w);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, w);
	if (r->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, r->cacert);
	if (r->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return e;
}

/* Starts one leg: 0, -EINVAL (target not sendable), -ENOMEM/-EIO. */
static int start_leg(struct runner *w, struct job *j, struct leg *g,
		     enum leg_kind kind, const struct url_base *b)
{
	const struct http_request *q = &j->pub.x->req;
	bool bad = false;
	CURL *e;

	memset(g, 0, sizeof(*g));
	dbuf_init(&g->body, w->r->max_body);
	g->w = w;
	g->job = j;
	g->kind = kind;
	g->target = make_target(b, q->target, &bad);
	if (!g->target)
		return bad ? -EINVAL : -ENOMEM;
	e = get_easy(w);
	if (!e)
		return -ENOMEM;
	/* CURLOPT_CURLU overrides the URL string, which keeps what curl
	 * reports about the transfer right. */
	curl_easy_setopt(e, CURLOPT_URL, b->url);
	curl_easy_setopt(e, CURLOPT_CURLU, w->uh[kind]);
	curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, g->target);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(e, CURLOPT_PRIVATE, g);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, g);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
	/* Back to a plain GET first: the handle may have sent a POST (whose
	 * body pointer is stale now) or a HEAD before. */
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(q->method, "GET"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
		if (q->body.len || headers_get(&q->headers, "Content-Length")) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)q->body.len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS,
					 q->body.data ? (char *)q->body.data
						      : "");
		}
	}
	if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		return -EIO;
	}
	g->easy = e;
	j->pending++;
	return 0;
}

static bool has_body(const struct http_request *q)
{
	return strcmp(q->method, "HEAD") &&
	       (q->body.len || headers_get(&q->headers, "Content-Length"));
}

/* Sends a job popped from the queue (its first send or its recheck), in
 * the runner's thread. Returns 0 if it is in flight; otherwise it went to
 * runner_unsent() (and, with one runner, may be freed already). */
static int runner_start(struct runner *w, struct job *j)
{
	const struct replay *r = w->r;
	const struct http_request *q = &j->pub.x->req;
	int rc;

	if (!q->method || !is_token(q->method, strlen(q->method))) {
		runner_unsent(w, j, REPLAY_CANDIDATE_ERROR, REPLAY_ERR_BAD_URL);
		return -EINVAL;
	}
	if (!j->hdrs) {
		rc = build_headers(r, q, has_body(q), &j->hdrs);
		if (rc) {
			runner_unsent(w, j, rc == -EINVAL ? REPLAY_CANDIDATE_ERROR
							  : REPLAY_DROPPED,
				      rc == -EINVAL ? REPLAY_ERR_BAD_URL
						    : REPLAY_ERR_OTHER);
			return rc;
		}
	}
	rc = start_leg(w, j, &j->cand, LEG_CANDIDATE, &r->cand_url);
	if (rc) {
		bool bad = rc == -EINVAL;

		leg_clean(&j->cand);
		runner_unsent(w, j, bad ? REPLAY_CANDIDATE_ERROR : REPLAY_DROPPED,
			      bad ? REPLAY_ERR_BAD_URL : REPLAY_ERR_OTHER);
		return rc;
	}
	if (r->has_noise && !j->pub.rechecks) {
		j->noise_sent = true;
		rc = start_leg(w, j, &j->noise, LEG_NOISE, &r->noise_url);
		if (rc) {
			leg_clean(&j->noise);
			j->pub.noise_error = rc == -EINVAL ? REPLAY_ERR_BAD_URL
							   : REPLAY_ERR_OTHER;
		}
	}
	flying_add(w, j);
	return 0;
}

static long on_token_timer(struct loop *l, long long id, void *ctx)
{
	struct replay *r = ctx;

	r->token_timer = 0;
	pump(r);
	return LOOP_TIMER_DONE;
}

/* Takes a rate token, or arms a timer for when one will be there. */
static bool take_token(struct replay *r)
{
	double rate = send_rate(r), burst = token_burst(rate);
	uint64_t now;
	long long id;
	long wait;

	if (rate <= 0)
		return true;
	now = loop_now_ns();
	r->tokens += (double)(now - r->tokens_ns) * rate / 1e9;
	r->tokens_ns = now;
	if (r->tokens > burst)
		r->tokens = burst;
	if (r->tokens >= 1) {
		r->tokens -= 1;
		return true;
	}
	if (!r->token_timer) {
		wait = (long)ceil((1 - r->tokens) * 1000 / rate);
		id = loop_timer_add(r->loop, wait > 0 ? wait : 1,
				    on_token_timer, r);
		if (id > 0)
			r->token_timer = id;
	}
	return false;
}

/* The runner with the most free slots. The shares add up to max_inflight,
 * so below that total one always has a free slot. */
static struct runner *pick_runner(struct replay *r)
{
	struct runner *best = &r->runners[0];

	for (unsigned i = 1; i < r->nrunners; i++) {
		struct runner *w = &r->runners[i];

		if (w->share - w->inflight > best->share - best->inflight)
			best = w;
	}
	return best;
}

/* Sends j to a runner, which counts as in flight until job_back(). With
 * one runner it starts now: 0 if it is in flight, else it was delivered.
 * With threads it waits in the runner's batch for hand_over(): 0. */
static int send_job(struct replay *r, struct job *j)
{
	struct runner *w = pick_runner(r);

	j->w = w;
	w->inflight++;
	r->stats.inflight++;
	if (!r->threaded)
		return runner_start(w, j);
	list_push(&w->batch, j);
	return 0;
}

/* Threads only: each runner's batch to its inbox. */
static void hand_over(struct replay *r)
{
	for (unsigned i = 0; i < r->nrunners; i++)
		mailbox_post(&r->runners[i].inbox, &r->runners[i].batch);
}

/* Moves work from the queue to the candidate as slots, tokens and the
 * breaker allow. Re-entry (from a callback) is folded into the running
 * call, which re-reads the state on every turn; so is a call from
 * check_done(), which pump_soon() makes up for. Returns the number of jobs
 * it put in flight (or handed to the threads). */
static unsigned pump(struct replay *r)
{
	unsigned started = 0;

	if (r->pumping || r->closing || r->delivering)
		return 0;
	r->pumping = true;
	while (r->queue.head) {
		struct job *j;

		if (breaker_blocks(r)) {
			j = queue_pop(r);
			finish_unsent(r, j, REPLAY_SHED_BREAKER,
				      REPLAY_ERR_BREAKER_OPEN);
			continue;
		}
		if (r->stats.inflight >= r->max_inflight || !take_token(r))
			break;
		bool probe = r->stats.breaker == REPLAY_BREAKER_HALF_OPEN;

		j = queue_pop(r);
		if (probe) {
			j->probe = true;
			r->probe_inflight = true;
		}
		if (send_job(r, j) == 0)
			started++;
	}
	if (r->threaded)
		hand_over(r);
	r->pumping = false;
	return started;
}

static long on_pump_timer(struct loop *l, long long id, void *ctx)
{
	struct replay *r = ctx;

	r->pump_timer = 0;
	/* curl would send them from its next 0 ms timeout, an iteration
	 * later: send them now, back to back. (A thread's runner does so
	 * when it takes them.) */
	if (pump(r) && !r->threaded)
		run_due(&r->runners[0]);
	return LOOP_TIMER_DONE;
}

/* pump() once the loop has served every ready socket of this iteration:
 * a 0 ms timer runs after them. */
static void pump_soon(struct replay *r)
{
	long long id;

	if (!r->queue.head || r->pump_timer || r->closing ||
	    (r->stats.inflight >= r->max_inflight && !breaker_blocks(r)))
		return;
	id = loop_timer_add(r->loop, 0, on_pump_timer, r);
	if (id > 0)
		r->pump_timer = id;
	else
		pump(r); /* no timer: now rather than never */
}

/* ---- public ----------------------------------------------------------- */

void replay_submit(struct replay *r, struct exchange *x)
{
	struct job *j;

	r->stats.submitted++;
	j = calloc(1, sizeof(*j));
	if (!j) {
		struct replay_job tmp = { .x = x, .outcome = REPLAY_DROPPED,
					  .error = REPLAY_ERR_OTHER };

		r->stats.dropped++;
		r->done(r->ctx, &tmp);
		exchange_free(tmp.x);
		return;
	}
	j->pub.x = x;
	if (!x || !x->req.method) {
		finish_unsent(r, j, REPLAY_CANDIDATE_ERROR, REPLAY_ERR_BAD_URL);
	} else if (!r->replay_unsafe && !is_safe(x->req.method)) {
		finish_unsent(r, j, REPLAY_UNSAFE_SKIPPED, REPLAY_ERR_NONE);
	} else if (breaker_blocks(r)) {
		finish_unsent(r, j, REPLAY_SHED_BREAKER,
			      REPLAY_ERR_BREAKER_OPEN);
	} else if (r->stats.queued >= r->max_queue) {
		/* Closed to the kernel's copies until half of it drains. */
		r->queue_closed = true;
		finish_unsent(r, j, REPLAY_SHED_QUEUE, REPLAY_ERR_NONE);
	} else {
		queue_push(r, j, false);
		/* Threads: a batch for each, at the end of this iteration (or
		 * of the delivery this comes from). */
		if (!r->threaded)
			pump(r);
		else if (!r->delivering)
			pump_soon(r);
	}
}

enum replay_outcome replay_shed(struct replay *r, const struct exchange *x,
				enum replay_outcome why)
{
	enum replay_outcome o = why == REPLAY_SHED_BREAKER ? REPLAY_SHED_BREAKER
							   : REPLAY_SHED_QUEUE;

	r->stats.submitted++;
	if (!r->replay_unsafe && x->req.method && !is_safe(x->req.method))
		o = REPLAY_UNSAFE_SKIPPED;
	count_unsent(r, o, o == REPLAY_SHED_BREAKER ? REPLAY_ERR_BREAKER_OPEN
						    : REPLAY_ERR_NONE);
	return o;
}

enum replay_outcome replay_shedding(const struct replay *r)
{
	if (breaker_blocks(r))
		return REPLAY_SHED_BREAKER;
	return r->queue_closed ? REPLAY_SHED_QUEUE : REPLAY_OK;
}

int replay_recheck(struct replay *r, struct replay_job *job)
{
	struct job *j = container_of(job, struct job, pub);

	if (!j->in_callback)
		return -EINVAL;
	if (j->pub.rechecks || j->recheck_requested)
		return -EALREADY;
	if (j->pub.outcome != REPLAY_OK &&
	    j->pub.outcome != REPLAY_CANDIDATE_ERROR)
		return -EINVAL;
	j->recheck_requested = true;
	r->stats.rechecks++;
	return 0;
}

int replay_drain(struct replay *r, long max_ms)
{
	uint64_t end = loop_now_ms() + (max_ms > 0 ? (uint64_t)max_ms : 0);

	while (r->stats.inflight || r->stats.queued) {
		uint64_t now = loop_now_ms();
		int rc;

		if (now >= end)
			return -ETIMEDOUT;
		rc = loop_run_once(r->loop, (long)(end - now));
		if (rc < 0)
			return rc;
	}
	return 0;
}

const struct replay_stats *replay_stats(const struct replay *r)
{
	return &r->stats;
}

double replay_send_rate(const struct replay *r)
{
	return send_rate(r);
}

/* ---- runners ---------------------------------------------------------- */

/* A thread's wakeup: its inbox filled, or it is to stop. */
static void on_wake(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct runner *w = ctx;
	struct job *j = mailbox_take(&w->inbox), *next;

	for (; j; j = next) {
		next = j->next;
		j->next = NULL;
		runner_start(w, j);
	}
	/* Send them now, back to back. */
	run_due(w);
}

/* The thread: the loop's iterations, each one's ended jobs handed back
 * together at its end (not one by one as each socket is served), until
 * stop (set before the wakeup that makes the iteration return). */
static void *runner_main(void *arg)
{
	struct runner *w = arg;
	int rc = 0;

	while (!atomic_load(&w->stop) && rc >= 0) {
		rc = loop_run_once(w->loop, -1);
		hand_back(w);
	}
	if (rc < 0)
		fprintf(stderr, "shadowd: a replay thread's event loop failed "
			"(%s); its replays are abandoned\n", strerror(-rc));
	return NULL;
}

/* Sets up w with `share` in-flight slots: on the replayer's loop, or,
 * with threads, on a loop of its own (the thread is started later). */
static int runner_init(struct replay *r, struct runner *w, unsigned share)
{
	w->r = r;
	w->share = share;
	w->inbox.fd = -1;
	w->pool_cap = (size_t)share * 2 + 2;
	w->pool = calloc(w->pool_cap, sizeof(*w->pool));
	w->multi = curl_multi_init();
	w->uh[LEG_CANDIDATE] = curl_url_dup(r->cand_url.uh);
	if (r->has_noise)
		w->uh[LEG_NOISE] = curl_url_dup(r->noise_url.uh);
	if (!w->pool || !w->multi || !w->uh[LEG_CANDIDATE] ||
	    (r->has_noise && !w->uh[LEG_NOISE]))
		return -ENOMEM;
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	/* Keep a warm connection per in-flight slot and leg. */
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)share * 2 + 4);
	if (!r->threaded) {
		w->loop = r->loop;
		return 0;
	}
	if (mailbox_init(&w->inbox) < 0 || loop_new(&w->loop) < 0 ||
	    loop_fd_add(w->loop, w->inbox.fd, LOOP_READ, on_wake, w) < 0)
		return -ENOMEM;
	return 0;
}

/* Starts w's thread with every signal blocked: they are the caller's. */
static int runner_thread(struct runner *w)
{
	sigset_t all, old;
	char name[16];
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->tid, NULL, runner_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	w->started = true;
	/* "replay 0".. in top -H and perf */
	snprintf(name, sizeof(name), "replay %u",
		 (unsigned)(w - w->r->runners));
	pthread_setname_np(w->tid, name);
	return 0;
}

/* Stops w's thread (it leaves at its next wakeup) and waits for it. */
static void runner_join(struct runner *w)
{
	if (!w->started)
		return;
	atomic_store(&w->stop, true);
	eventfd_write(w->inbox.fd, 1);
	pthread_join(w->tid, NULL);
	w->started = false;
}

/* Frees what w holds, its jobs included (no callback). Its thread, if
 * any, has been joined: what it wrote is visible here. */
static void runner_clean(struct runner *w)
{
	struct job *j;

	if (!w->r)
		return; /* never set up */
	w->closing = true;
	while ((j = w->flying)) {
		flying_del(w, j);
		job_free(j);
	}
	list_free(&w->batch);
	list_free(&w->done);
	for (size_t i = 0; i < w->npool; i++)
		curl_easy_cleanup(w->pool[i]);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	if (w->loop) {
		/* Closing the connections unwatched their sockets; nothing
		 * should be left, but the loop must not call back into a
		 * freed replayer. */
		for (size_t i = 0; i < w->nsocks; i++)
			if (w->socks[i].mask)
				loop_fd_del(w->loop, (int)i);
		if (w->curl_timer)
			loop_timer_del(w->loop, w->curl_timer);
	}
	if (w->loop != w->r->loop) {
		if (w->inbox.fd >= 0)
			loop_fd_del(w->loop, w->inbox.fd);
		loop_free(w->loop);
	}
	mailbox_clean(&w->inbox);
	curl_url_cleanup(w->uh[LEG_CANDIDATE]);
	curl_url_cleanup(w->uh[LEG_NOISE]);
	free(w->pool);
	free(w->socks);
}

/* The runners and, with threads, the way back and the threads. */
static int start_runners(struct replay *r, unsigned n, char *err,
			 size_t errlen)
{
	int rc;

	/* Aligned, so that each runner's lines are its own. */
	r->runners = aligned_alloc(RUNNER_LINE, n * sizeof(*r->runners));
	if (!r->runners)
		goto oom;
	memset(r->runners, 0, n * sizeof(*r->runners));
	r->nrunners = n;
	r->threaded = n > 1;
	for (unsigned i = 0; i < n; i++) {
		unsigned share = r->max_inflight / n + (i < r->max_inflight % n);

		if (runner_init(r, &r->runners[i], share) < 0)
			goto oom;
	}
	if (!r->threaded)
		return 0;
	if (mailbox_init(&r->back) < 0 ||
	    loop_fd_add(r->loop, r->back.fd, LOOP_READ, on_back, r) < 0)
		goto oom;
	for (unsigned i = 0; i < n; i++) {
		rc = runner_thread(&r->runners[i]);
		if (rc < 0) {
			snprintf(err, errlen, "cannot start replay thread: %s",
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int replay_new(struct loop *l, const struct replay_config *cfg,
	       replay_done_fn done, void *ctx, struct replay **out, char *err,
	       size_t errlen)
{
	struct replay *r = NULL;
	unsigned threads;
	int rc = -ENOMEM;

	*out = NULL;
	if (!l || !cfg || !done) {
		snprintf(err, errlen, "replay: loop, config and callback are "
			 "required");
		return -EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl failed to initialise");
		return -EIO;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	r->loop = l;
	r->done = done;
	r->ctx = ctx;
	r->back.fd = -1;
	rc = copy_config(r, cfg, err, errlen);
	if (rc)
		goto cleanup;
	threads = cfg->threads ? cfg->threads : 1;
	rc = -EINVAL;
	if (threads > REPLAY_MAX_THREADS) {
		snprintf(err, errlen, "--replay-threads %u: at most %d", threads,
			 REPLAY_MAX_THREADS);
		goto cleanup;
	}
	if (threads > r->max_inflight) {
		snprintf(err, errlen, "--replay-threads %u is more than "
			 "--max-inflight %u: each thread needs an in-flight "
			 "slot", threads, r->max_inflight);
		goto cleanup;
	}
	rc = start_runners(r, threads, err, errlen);
	if (rc)
		goto cleanup;
	*out = r;
	r = NULL;
cleanup:
	if (r)
		replay_free(r);
	else if (rc)
		curl_global_cleanup();
	return rc;
}

static void free_base(struct url_base *b)
{
	free(b->url);
	free(b->path);
	curl_url_cleanup(b->uh);
}

void replay_free(struct replay *r)
{
	struct job *j;

	if (!r)
		return;
	r->closing = true;
	for (unsigned i = 0; i < r->nrunners; i++)
		runner_join(&r->runners[i]);
	for (unsigned i = 0; i < r->nrunners; i++)
		runner_clean(&r->runners[i]);
	free(r->runners);
	if (r->back.fd >= 0)
		loop_fd_del(r->loop, r->back.fd);
	mailbox_clean(&r->back);
	while ((j = queue_pop(r)))
		job_free(j);
	if (r->token_timer)
		loop_timer_del(r->loop, r->token_timer);
	if (r->breaker_timer)
		loop_timer_del(r->loop, r->breaker_timer);
	if (r->pump_timer)
		loop_timer_del(r->loop, r->pump_timer);
	free_base(&r->cand_url);
	free_base(&r->noise_url);
	free(r->host_header);
	headers_clean(&r->set);
	for (size_t i = 0; i < r->n_drop; i++)
		free(r->drop[i]);
	free(r->drop);
	free(r->cacert);
	free(r);
	curl_global_cleanup();
}
