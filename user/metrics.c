// SPDX-License-Identifier: BSD-2-Clause
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "endpoint.h"
#include "replay.h"

#define SLOTS 1024 /* a power of two */
_Static_assert(SLOTS > 2 * ENDPOINT_MAX_COUNTED,
	       "the endpoint table stays at most half full");

/* Latency buckets, ms (Prometheus "le" bounds); +Inf is implied. */
static const double buckets[] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250,
				  500, 1000, 2500, 5000, 10000 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct histogram {
	uint64_t le[N_BUCKETS + 1]; /* non-cumulative; last is +Inf */
	uint64_t count;
	double sum;
};

struct endpoint {
	char *name; /* NULL: empty slot */
	uint64_t c[STORE_N_COUNTERS];
};

static const char *const gauge_names[METRICS_N_GAUGES][3] = {
	/* name, type, help */
	{ "capture_lost_events_total", "counter",
	  "Capture records dropped because the ring buffer was full." },
	{ "capture_gaps_total", "counter",
	  "Jumps in a connection's byte stream (bytes not captured)." },
	{ "parse_errors_total", "counter",
	  "Exchanges dropped because HTTP framing could not be parsed." },
	{ "truncated_total", "counter",
	  "Bodies over --max-body (status and headers still compared)." },
	{ "connections", "gauge", "Connections tracked now." },
	{ "replay_queue_depth", "gauge", "Replays waiting to be sent." },
	{ "replay_inflight", "gauge", "Replays in flight to the candidate." },
	{ "breaker_open", "gauge",
	  "1 while the candidate circuit breaker is open or half-open." },
	{ "ring_buffer_used_bytes", "gauge",
	  "Bytes waiting in the capture ring buffer." },
	{ "ring_buffer_size_bytes", "gauge", "Size of the capture ring buffer." },
	{ "targets", "gauge", "Processes traced now." },
	{ "capture_tls_undecoded_total", "counter",
	  "TLS connections whose library is not hooked (never parsed)." },
	{ "capture_tls_unlinked_total", "counter",
	  "Decrypted TLS reads/writes dropped: their socket was never seen." },
	{ "capture_unhooked_total", "counter",
	  "Socket reads/writes by syscalls the hooks cannot read (recvmmsg, "
	  "splice, io_uring): not captured." },
	{ "capture_uncopied_total", "counter",
	  "Responses the kernel passed over uncopied: their request was left "
	  "unsampled there, or shed while the replay queue was full or the "
	  "breaker open." },
	{ "sample_mismatch_total", "counter",
	  "Exchanges the kernel decided otherwise than user space (left "
	  "unsampled what it would replay, or shed what it would not "
	  "sample): never expected (also in parse errors)." },
	{ "replay_send_rate", "gauge",
	  "Replays per second the sending is held to now: --rate, or, to a "
	  "slow candidate, max-inflight per average call time with a quarter "
	  "to spare (0: not held)." },
};

struct metrics {
	pthread_mutex_t lock;
	struct endpoint slots[SLOTS];
	size_t n_endpoints;
	struct endpoint other; /* past ENDPOINT_MAX_COUNTED */
	struct histogram primary, candidate;
	uint64_t errors[REPLAY_N_ERROR_CLASSES]; /* by class, see replay.h */
	double gauges[METRICS_N_GAUGES];
	struct MHD_Daemon *mhd;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->other.name = ENDPOINT_OTHER;
	return m;
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The endpoint's counters; called with the lock held. */
static struct endpoint *endpoint_get(struct metrics *m, const char *name)
{
	for (uint32_t i = hash_str(name) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
		struct endpoint *e = &m->slots[i];

		if (!e->name) {
			if (m->n_endpoints >= ENDPOINT_MAX_COUNTED)
				return &m->other;
			e->name = strdup(name);
			if (!e->name)
				return &m->other;
			m->n_endpoints++;
			return e;
		}
		if (strcmp(e->name, name) == 0)
			return e;
	}
}

void metrics_count(struct metrics *m, const char *endpoint,
		   enum store_counter c, uint64_t n)
{
	if (!m || c >= STORE_N_COUNTERS)
		return;
	pthread_mutex_lock(&m->lock);
	endpoint_get(m, endpoint && *endpoint ? endpoint : ENDPOINT_NONE)->c[c] += n;
	pthread_mutex_unlock(&m->lock);
}

static void observe(struct histogram *h, double ms)
{
	size_t i = 0;

	while (i < N_BUCKETS && ms > buckets[i])
		i++;
	h->le[i]++;
	h->count++;
	h->sum += ms;
}

void metrics_latency(struct metrics *m, double primary_ms, double candidate_ms)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	if (primary_ms >= 0)
		observe(&m->primary, primary_ms);
	if (candidate_ms >= 0)
		observe(&m->candidate, candidate_ms);
	pthread_mutex_unlock(&m->lock);
}

void metrics_candidate_error(struct metrics *m, const char *class_name)
{
	size_t i;

	if (!m)
		return;
	i = replay_error_class(class_name) - REPLAY_ERR_CLASS_FIRST;
	pthread_mutex_lock(&m->lock);
	m->errors[i]++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_set(struct metrics *m, enum metrics_gauge g, double v)
{
	if (!m || g >= METRICS_N_GAUGES)
		return;
	pthread_mutex_lock(&m->lock);
	m->gauges[g] = v;
	pthread_mutex_unlock(&m->lock);
}

struct text {
	char *p;
	size_t n, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int need;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		need = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
		va_end(ap);
		if (need < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)need < t->cap - t->n) {
			t->n += need;
			return;
		}
		{
			size_t cap = (t->cap + need) * 2;
			char *p = realloc(t->p, cap);

			if (!p) {
				t->failed = true;
				return;
			}
			t->p = p;
			t->cap = cap;
		}
	}
}

/* Prometheus label values escape backslash, quote and newline. */
static void put_label(struct text *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(t, "\\%c", *v);
		else if (*v == '\n')
			put(t, "\\n");
		else
			put(t, "%c", *v);
	}
}

static void put_histogram(struct text *t, const char *name, const char *help,
			  const struct histogram *h)
{
	uint64_t cum = 0;

	put(t, "# HELP request_shadow_%s %s\n# TYPE request_shadow_%s histogram\n",
	    name, help, name);
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += h->le[i];
		put(t, "request_shadow_%s_bucket{le=\"%g\"} %llu\n", name,
		    buckets[i], (unsigned long long)cum);
	}
	cum += h->le[N_BUCKETS];
	put(t, "request_shadow_%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	put(t, "request_shadow_%s_sum %.6f\nrequest_shadow_%s_count %llu\n",
	    name, h->sum / 1000.0, name, (unsigned long long)h->count);
}

char *metrics_render(struct metrics *m)
{
	struct text t = { .cap = 16384 };

	t.p = malloc(t.cap);
	if (!t.p)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (int c = 0; c < STORE_N_COUNTERS; c++) {
		const char *name = store_counter_name(c);

		put(&t, "# HELP request_shadow_%s_total Exchanges %s, per "
		    "endpoint (see shadow-dump stats).\n", name, name);
		put(&t, "# TYPE request_shadow_%s_total counter\n", name);
		for (size_t i = 0; i <= SLOTS; i++) {
			const struct endpoint *e = i < SLOTS ? &m->slots[i] :
							       &m->other;

			if (!e->name || (i == SLOTS && !e->c[c]))
				continue;
			put(&t, "request_shadow_%s_total{endpoint=\"", name);
			put_label(&t, e->name);
			put(&t, "\"} %llu\n", (unsigned long long)e->c[c]);
		}
	}
	put(&t, "# HELP request_shadow_candidate_errors_by_class_total "
	    "Candidate errors by class (never counted as divergences).\n"
	    "# TYPE request_shadow_candidate_errors_by_class_total counter\n");
	for (int i = 0; i < REPLAY_N_ERROR_CLASSES; i++)
		put(&t, "request_shadow_candidate_errors_by_class_total"
		    "{class=\"%s\"} %llu\n",
		    replay_error_name(REPLAY_ERR_CLASS_FIRST + i),
		    (unsigned long long)m->errors[i]);
	for (int g = 0; g < METRICS_N_GAUGES; g++)
		put(&t, "# HELP request_shadow_%s %s\n# TYPE request_shadow_%s "
		    "%s\nrequest_shadow_%s %.17g\n", gauge_names[g][0],
		    gauge_names[g][2], gauge_names[g][0], gauge_names[g][1],
		    gauge_names[g][0], m->gauges[g]);
	put_histogram(&t, "primary_latency_seconds",
		      "Primary latency: first request byte read to last "
		      "response byte written.", &m->primary);
	put_histogram(&t, "candidate_latency_seconds",
		      "Candidate latency: replay sent to response complete.",
		      &m->candidate);
	pthread_mutex_unlock(&m->lock);
	if (t.failed) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn,
			     const char *url, const char *method,
			     const char *version, const char *upload,
			     size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result rc;
	char *text;
	unsigned status = MHD_HTTP_OK;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return MHD_NO;
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
		static char nf[] = "not found: try /metrics\n";

		r = MHD_create_response_from_buffer(strlen(nf), nf,
						    MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	} else {
		text = metrics_render(m);
		if (!text)
			return MHD_NO;
		r = MHD_create_response_from_buffer(strlen(text), text,
						    MHD_RESPMEM_MUST_FREE);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
				"text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

int metrics_parse_addr(const char *s, struct sockaddr_storage *out)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	memset(out, 0, sizeof(*out));
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port <= 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	if (host[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
		size_t n = strlen(host);

		if (n < 2 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ?
			0 : -EINVAL;
	}
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)out;

		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		if (!host[0]) {
			a4->sin_addr.s_addr = htonl(INADDR_ANY);
			return 0;
		}
		return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -EINVAL;
	}
}

int metrics_serve(struct metrics *m, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

	if (metrics_parse_addr(addr, &sa) < 0) {
		snprintf(err, errlen, "--metrics %s: expected ADDR:PORT, e.g. "
			 "127.0.0.1:9464", addr);
		return -EINVAL;
	}
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, serve, m,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "--metrics %s: cannot listen there (in "
			 "use, or not an address of this host)", addr);
		return -EADDRINUSE;
	}
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	for (size_t i = 0; i < SLOTS; i++)
		free(m->slots[i].name);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
