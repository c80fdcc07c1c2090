// SPDX-License-Identifier: BSD-2-Clause
/*
 * shadowd: capture -> conn -> http1 -> sample -> replay -> diff -> store and
 * metrics, on one event loop. This file only parses flags, wires the
 * stages together and handles signals; each stage lives in its module.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capfile.h"
#include "capture.h"
#include "conn.h"
#include "diff.h"
#include "endpoint.h"
#include "http1.h"
#include "message.h"
#include "metrics.h"
#include "pipeline.h"
#include "replay.h"
#include "sample.h"
#include "shadow_event.h"
#include "store.h"
#include "util/loop.h"
#include "util/parse.h"

#define SHADOWD_VERSION "0.1.0"
#define MAX_LIST 64

struct list {
	const char *v[MAX_LIST];
	size_t n;
};

struct options {
	const char *candidate;
	pid_t pids[MAX_LIST];
	size_t n_pids;
	struct list exes;
	uint16_t ports[MAX_LIST];
	size_t n_ports;
	double sample;
	const char *sample_key;
	long timeout_ms;
	unsigned max_inflight;
	unsigned replay_threads;
	double rate;
	bool replay_unsafe;
	const char *host_header;
	struct list set_headers, drop_headers, ignore_headers, ignore_json,
		unordered, endpoints, redact;
	double float_tolerance;
	const char *noise_primary;
	bool noise_recheck;
	const char *cacert;
	bool insecure;
	size_t max_body;
	const char *store;
	size_t max_records, examples;
	const char *metrics;
	const char *record;
	const char *from_capture;
	double duration;
	bool check;
	int verbose;
};

/* Everything the running daemon holds. */
struct daemon {
	struct options o;
	struct loop *loop;
	struct capture *cap;
	struct capfile_reader *reader;
	struct capfile_writer *recorder;
	bool record_failed;
	struct conn_table *conns;
	struct http1 *http1;
	struct endpoint_rules *endpoints;
	struct sample *sample;
	struct replay *replay;
	struct diff_rules *rules;
	struct store *store;
	struct metrics *metrics;
	struct pipeline *pipe;
	bool input_done; /* --from-capture reached its end */
	long long poll_timer;
	long poll_delay_ms;
};

static const char usage_text[] =
"Usage: shadowd --candidate URL (--pid PID | --exe PATH)... [options]\n"
"       shadowd --candidate URL --from-capture FILE [options]\n"
"\n"
"Attach to an unmodified HTTP/1.x server (the primary), capture every\n"
"request it reads and every response it writes with eBPF, replay a sample\n"
"of the requests against a candidate, and record where the candidate's\n"
"responses differ. The primary is never proxied, restarted or slowed by\n"
"the candidate. Read the results with shadow-dump(1).\n"
"\n"
"Target:\n"
"  -c, --candidate URL       candidate base URL (http:// or https://); the\n"
"                            captured target is appended to it\n"
"  -p, --pid PID             trace this process and its descendants, also\n"
"                            ones forked later (repeatable)\n"
"  -e, --exe PATH            trace every process running this executable,\n"
"                            also ones started later (repeatable)\n"
"  -P, --port PORT           only connections accepted on this local port\n"
"                            (repeatable; default: every accepted socket)\n"
"      --endpoint PATTERN    name endpoints by this template, e.g.\n"
"                            '/orders/{order}/items/{item}' (repeatable;\n"
"                            numbers, UUIDs and long hex are templated anyway)\n"
"\n"
"Sampling and replay:\n"
"  -s, --sample RATE         fraction of exchanges to replay, 0..1 (default 1)\n"
"      --sample-key KEY      request | path | client-ip | header:NAME |\n"
"                            cookie:NAME | query:NAME (default request =\n"
"                            method and target). The same key always gets\n"
"                            the same decision, on every host; a request\n"
"                            without the key falls back to `request`.\n"
"                            With request or path (and RATE < 1) the kernel\n"
"                            decides and never copies an unsampled answer\n"
"      --timeout MS          shadow-leg timeout (default 2000)\n"
"      --max-inflight N      concurrent candidate requests (default 64); to a\n"
"                            slow candidate they go out spread evenly, not N\n"
"                            at a time\n"
"      --rate N              replays per second at most (default unlimited)\n"
"      --replay-threads N    threads that call the candidate, 1 to 64\n"
"                            (default 1: on the event loop); each runs its\n"
"                            own curl multi handle with its share of\n"
"                            --max-inflight. Queue, --rate, breaker, diff\n"
"                            and store stay on the event loop\n"
"      --replay-unsafe       also replay POST, PUT, PATCH, DELETE (only if the\n"
"                            candidate shares no database with production)\n"
"      --host-header HOST    send this Host instead of the captured one\n"
"      --set-header 'N: V'   add or replace a header on replays (repeatable)\n"
"      --drop-header NAME    remove a header from replays (repeatable)\n"
"      --cacert FILE         trust this CA for an https candidate\n"
"      --insecure            do not verify the candidate's certificate\n"
"      --max-body BYTES      capture and compare at most this much of a body\n"
"                            (default 1M; k and M suffixes)\n"
"\n"
"Comparison:\n"
"      --ignore-header NAME  never compare this header (repeatable; Date,\n"
"                            Connection, Keep-Alive, Transfer-Encoding,\n"
"                            Content-Length, Content-Encoding always ignored)\n"
"      --ignore-json PATH    ignore JSON fields: $.a.b, $['a b'],\n"
"                            $.items[*].id, $..updated_at (repeatable)\n"
"      --unordered PATH      compare this JSON array as a multiset\n"
"      --float-tolerance E   relative tolerance for JSON numbers (default 0)\n"
"      --noise-primary URL   a second primary instance: fields that differ\n"
"                            between the two primaries are noise\n"
"      --noise-recheck       on a divergence, ask the candidate once more;\n"
"                            fields that differ between its two answers are\n"
"                            volatile and reported as noise\n"
"\n"
"Store and output:\n"
"  -o, --store PATH          divergence store (default ./shadow.db)\n"
"      --max-records N       divergence log bound (default 10000)\n"
"      --examples N          full records kept per signature (default 10)\n"
"      --redact-header NAME  redact this header too (Authorization,\n"
"                            Proxy-Authorization, Cookie, Set-Cookie always)\n"
"      --metrics ADDR:PORT   serve Prometheus metrics at /metrics\n"
"      --record FILE         also write the captured event stream to FILE\n"
"                            (every byte: sampling is then left to user\n"
"                            space, so the file replays at any rate)\n"
"      --from-capture FILE   read events from FILE instead of attaching (no\n"
"                            root needed)\n"
"      --duration SEC        stop after SEC seconds (default: until SIGINT or\n"
"                            SIGTERM)\n"
"      --check               will it work on this kernel? Load every program\n"
"                            the capture needs here, attach nothing, print\n"
"                            each one loaded (instructions, stack) or refused\n"
"                            (the verifier's reason) and the hooks chosen;\n"
"                            exit 0 if all load, 1 if not (-v: whole log)\n"
"  -v, --verbose             more detail (twice: libbpf and the verifier log)\n"
"  -h, --help                this text\n"
"      --version             print the version\n"
"\n"
"Examples:\n"
"  # Shadow nginx (master pid 1234) on port 80 to a candidate, 10% of users\n"
"  shadowd -p 1234 -P 80 -c http://10.0.0.7:8080 -s 0.1 \\\n"
"          --sample-key header:X-User-Id --ignore-json '$..request_id'\n"
"  # Every process running /usr/bin/node, with noise cancellation\n"
"  shadowd -e /usr/bin/node -c http://127.0.0.1:9000 --noise-recheck\n"
"  # Record now, diff later without root\n"
"  shadowd -p 1234 -c http://127.0.0.1:9000 --record traffic.cap --duration 60\n"
"  shadowd --from-capture traffic.cap -c http://127.0.0.1:9001 -o again.db\n"
"  shadow-dump stats; shadow-dump verdict\n"
"\n"
"Needs root, or CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE, to attach; after\n"
"attaching it keeps only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.\n";

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("shadowd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void list_add(struct list *l, const char *flag, const char *v)
{
	if (l->n == MAX_LIST)
		die("%s given more than %d times", flag, MAX_LIST);
	l->v[l->n++] = v;
}

static double parse_double(const char *flag, const char *s, double lo,
			   double hi)
{
	double v;

	if (parse_number(s, lo, hi, &v))
		die("%s %s: expected a number from %g to %g", flag, s, lo, hi);
	return v;
}

static long long parse_int(const char *flag, const char *s, long long lo,
			   long long hi)
{
	long long v;

	if (parse_integer(s, lo, hi, &v))
		die("%s %s: expected a whole number from %lld to %lld", flag, s,
		    lo, hi);
	return v;
}

static size_t parse_size(const char *flag, const char *s)
{
	uint64_t v;

	if (parse_bytes(s, 1, 1ull << 30, &v))
		die("%s %s: expected a size from 1 to 1G, e.g. 65536, 64k, 1M",
		    flag, s);
	return v;
}

enum {
	OPT_SAMPLE_KEY = 1000, OPT_TIMEOUT, OPT_MAX_INFLIGHT, OPT_RATE,
	OPT_REPLAY_UNSAFE, OPT_HOST_HEADER, OPT_SET_HEADER, OPT_DROP_HEADER,
	OPT_IGNORE_HEADER, OPT_IGNORE_JSON, OPT_UNORDERED, OPT_FLOAT_TOL,
	OPT_NOISE_PRIMARY, OPT_NOISE_RECHECK, OPT_CACERT, OPT_INSECURE,
	OPT_MAX_BODY, OPT_MAX_RECORDS, OPT_EXAMPLES, OPT_REDACT, OPT_METRICS,
	OPT_RECORD, OPT_FROM_CAPTURE, OPT_DURATION, OPT_VERSION, OPT_ENDPOINT,
	OPT_CHECK, OPT_REPLAY_THREADS,
};

static const struct option long_opts[] = {
	{ "candidate", required_argument, 0, 'c' },
	{ "pid", required_argument, 0, 'p' },
	{ "exe", required_argument, 0, 'e' },
	{ "port", required_argument, 0, 'P' },
	{ "sample", required_argument, 0, 's' },
	{ "sample-key", required_argument, 0, OPT_SAMPLE_KEY },
	{ "timeout", required_argument, 0, OPT_TIMEOUT },
	{ "max-inflight", required_argument, 0, OPT_MAX_INFLIGHT },
	{ "rate", required_argument, 0, OPT_RATE },
	{ "replay-threads", required_argument, 0, OPT_REPLAY_THREADS },
	{ "replay-unsafe", no_argument, 0, OPT_REPLAY_UNSAFE },
	{ "host-header", required_argument, 0, OPT_HOST_HEADER },
	{ "set-header", required_argument, 0, OPT_SET_HEADER },
	{ "drop-header", required_argument, 0, OPT_DROP_HEADER },
	{ "ignore-header", required_argument, 0, OPT_IGNORE_HEADER },
	{ "ignore-json", required_argument, 0, OPT_IGNORE_JSON },
	{ "unordered", required_argument, 0, OPT_UNORDERED },
	{ "float-tolerance", required_argument, 0, OPT_FLOAT_TOL },
	{ "noise-primary", required_argument, 0, OPT_NOISE_PRIMARY },
	{ "noise-recheck", no_argument, 0, OPT_NOISE_RECHECK },
	{ "cacert", required_argument, 0, OPT_CACERT },
	{ "insecure", no_argument, 0, OPT_INSECURE },
	{ "max-body", required_argument, 0, OPT_MAX_BODY },
	{ "store", required_argument, 0, 'o' },
	{ "max-records", required_argument, 0, OPT_MAX_RECORDS },
	{ "examples", required_argument, 0, OPT_EXAMPLES },
	{ "redact-header", required_argument, 0, OPT_REDACT },
	{ "metrics", required_argument, 0, OPT_METRICS },
	{ "record", required_argument, 0, OPT_RECORD },
	{ "from-capture", required_argument, 0, OPT_FROM_CAPTURE },
	{ "duration", required_argument, 0, OPT_DURATION },
	{ "endpoint", required_argument, 0, OPT_ENDPOINT },
	{ "check", no_argument, 0, OPT_CHECK },
	{ "verbose", no_argument, 0, 'v' },
	{ "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, OPT_VERSION },
	{ 0 },
};

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	o->sample = 1;
	o->timeout_ms = 2000;
	o->max_inflight = 64;
	o->replay_threads = 1;
	o->max_body = 1 << 20;
	o->store = "shadow.db";
	o->max_records = 10000;
	o->examples = 10;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:p:e:P:s:o:vh", long_opts,
				NULL)) != -1) {
		switch (c) {
		case 'c': o->candidate = optarg; break;
		case 'p':
			if (o->n_pids == MAX_LIST)
				die("--pid given more than %d times", MAX_LIST);
			o->pids[o->n_pids++] = parse_int("--pid", optarg, 1,
							 4194304);
			break;
		case 'e': list_add(&o->exes, "--exe", optarg); break;
		case 'P':
			if (o->n_ports == MAX_LIST)
				die("--port given more than %d times", MAX_LIST);
			o->ports[o->n_ports++] = parse_int("--port", optarg, 1,
							   65535);
			break;
		case 's': o->sample = parse_double("--sample", optarg, 0, 1); break;
		case OPT_SAMPLE_KEY: o->sample_key = optarg; break;
		case OPT_TIMEOUT:
			o->timeout_ms = parse_int("--timeout", optarg, 1, 600000);
			break;
		case OPT_MAX_INFLIGHT:
			o->max_inflight = parse_int("--max-inflight", optarg, 1,
						    100000);
			break;
		case OPT_RATE:
			o->rate = parse_double("--rate", optarg, 0, 1e9);
			break;
		case OPT_REPLAY_THREADS:
			o->replay_threads = parse_int("--replay-threads", optarg,
						      1, REPLAY_MAX_THREADS);
			break;
		case OPT_REPLAY_UNSAFE: o->replay_unsafe = true; break;
		case OPT_HOST_HEADER: o->host_header = optarg; break;
		case OPT_SET_HEADER:
			list_add(&o->set_headers, "--set-header", optarg);
			break;
		case OPT_DROP_HEADER:
			list_add(&o->drop_headers, "--drop-header", optarg);
			break;
		case OPT_IGNORE_HEADER:
			list_add(&o->ignore_headers, "--ignore-header", optarg);
			break;
		case OPT_IGNORE_JSON:
			list_add(&o->ignore_json, "--ignore-json", optarg);
			break;
		case OPT_UNORDERED:
			list_add(&o->unordered, "--unordered", optarg);
			break;
		case OPT_FLOAT_TOL:
			o->float_tolerance = parse_double("--float-tolerance",
							  optarg, 0, 1);
			break;
		case OPT_NOISE_PRIMARY: o->noise_primary = optarg; break;
		case OPT_NOISE_RECHECK: o->noise_recheck = true; break;
		case OPT_CACERT: o->cacert = optarg; break;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_MAX_BODY: o->max_body = parse_size("--max-body", optarg); break;
		case 'o': o->store = optarg; break;
		case OPT_MAX_RECORDS:
			o->max_records = parse_int("--max-records", optarg, 1,
						   100000000);
			break;
		case OPT_EXAMPLES:
			o->examples = parse_int("--examples", optarg, 1, 100000);
			break;
		case OPT_REDACT: list_add(&o->redact, "--redact-header", optarg); break;
		case OPT_METRICS: o->metrics = optarg; break;
		case OPT_RECORD: o->record = optarg; break;
		case OPT_FROM_CAPTURE: o->from_capture = optarg; break;
		case OPT_DURATION:
			o->duration = parse_double("--duration", optarg, 0.001,
						   1e9);
			break;
		case OPT_ENDPOINT: list_add(&o->endpoints, "--endpoint", optarg); break;
		case OPT_CHECK: o->check = true; break;
		case 'v': o->verbose++; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case OPT_VERSION: printf("shadowd %s\n", SHADOWD_VERSION); exit(0);
		case ':':
			die("%s needs a value; see shadowd --help", argv[optind - 1]);
		default:
			die("unknown option %s; see shadowd --help",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'; see shadowd --help", argv[optind]);
	if (o->check) {
		if (o->candidate || o->n_pids || o->exes.n || o->from_capture)
			die("--check loads the programs and attaches nothing; it "
			    "takes no --candidate, --pid, --exe or --from-capture");
		return;
	}
	if (!o->candidate)
		die("--candidate URL is required, e.g. -c http://127.0.0.1:8081");
	if (!o->from_capture && !o->n_pids && !o->exes.n)
		die("no target: give --pid PID or --exe PATH (or --from-capture FILE)");
	if (o->from_capture && (o->n_pids || o->exes.n || o->n_ports))
		die("--from-capture replays a recording; it takes no --pid, "
		    "--exe or --port");
	if (o->host_header && !*o->host_header)
		die("--host-header needs a host name");
	if (o->replay_threads > o->max_inflight)
		die("--replay-threads %u is more than --max-inflight %u: each "
		    "thread needs an in-flight slot", o->replay_threads,
		    o->max_inflight);
}

static void on_exchange(void *ctx, struct exchange *x)
{
	struct daemon *d = ctx;

	if (!pipeline_exchange(d->pipe, x))
		http1_recycle(d->http1, x);
}

static void on_replayed(void *ctx, struct replay_job *job)
{
	struct daemon *d = ctx;

	pipeline_replayed(d->pipe, job);
}

/* The pipeline's replayer is replay.c while there is one. The
 * connections still open at exit end after it is gone, and an exchange
 * that only their close completes (a body delimited by it) is shed. */
static void replayer_submit(void *ctx, struct exchange *x)
{
	struct daemon *d = ctx;
	struct replay_job job = { .x = x, .outcome = REPLAY_SHED_QUEUE };

	if (d->replay) {
		replay_submit(d->replay, x);
		return;
	}
	pipeline_replayed(d->pipe, &job);
	exchange_free(x);
}

static enum replay_outcome replayer_shed(void *ctx, const struct exchange *x,
					 enum replay_outcome why)
{
	struct daemon *d = ctx;

	return d->replay ? replay_shed(d->replay, x, why) : why;
}

static int replayer_recheck(void *ctx, struct replay_job *job)
{
	struct daemon *d = ctx;

	return d->replay ? replay_recheck(d->replay, job) : -EINVAL;
}

/* The other stages' counters and gauges, to the store and the metrics. */
static void publish(struct daemon *d)
{
	struct capture_stats st;
	struct pipeline_sources src = {
		.conns = conn_table_stats(d->conns),
		.http1 = http1_stats(d->http1),
		.replay = replay_stats(d->replay),
		.send_rate = replay_send_rate(d->replay),
	};

	if (d->cap) {
		capture_get_stats(d->cap, &st);
		src.capture = &st;
	}
	pipeline_publish(d->pipe, &src);
}

static void on_event(void *ctx, const struct shadow_event *ev,
		     const void *payload)
{
	struct daemon *d = ctx;

	if (d->recorder && !d->record_failed &&
	    capfile_write(d->recorder, ev, payload) < 0) {
		d->record_failed = true;
		fprintf(stderr, "shadowd: --record %s: write failed (%s); "
			"recording stopped, shadowing goes on\n", d->o.record,
			strerror(errno));
	}
	conn_table_feed(d->conns, ev, payload);
}

/* While records flow, the ring buffer is drained every millisecond: the
 * daemon then runs in short bursts, and a core it takes from the primary
 * is given back sooner. That lowers the primary's p99 more than the extra
 * wakeups cost the daemon (docs/benchmarks.md has the figures). */
#define POLL_BUSY_MS 1

/* Tells the kernel what the replayer would shed now (a full queue, an
 * open breaker), so that it passes those requests over instead of copying
 * them for nothing: a slow or failing candidate must not cost the primary
 * more than capture does. */
static void shed_sync(struct daemon *d)
{
	enum replay_outcome o = replay_shedding(d->replay);

	capture_set_shed(d->cap, o == REPLAY_SHED_BREAKER ? SHADOW_SHED_BREAKER :
				 o == REPLAY_SHED_QUEUE ? SHADOW_SHED_QUEUE :
				 SHADOW_SHED_NONE);
}

static long poll_capture(struct loop *l, long long id, void *ctx)
{
	struct daemon *d = ctx;
	int n = capture_poll(d->cap);

	shed_sync(d);
	/* Busy: poll often; idle: back off to 100 ms (the kernel still forces
	 * a wakeup when the ring buffer fills). */
	if (n > 0)
		d->poll_delay_ms = POLL_BUSY_MS;
	else if (d->poll_delay_ms < 100)
		d->poll_delay_ms *= 2;
	return d->poll_delay_ms;
}

static void on_ring_ready(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct daemon *d = ctx;

	capture_poll(d->cap);
	shed_sync(d);
	d->poll_delay_ms = POLL_BUSY_MS;
}

/* --from-capture: feed records while the replay queue has room, so a
 * recording replays without shedding what live capture would not. */
static long feed_capture(struct loop *l, long long id, void *ctx)
{
	struct daemon *d = ctx;
	const struct replay_stats *rs = replay_stats(d->replay);
	const struct shadow_event *ev;
	const void *payload;
	char err[256];

	if (rs->queued >= 256)
		return 5;
	for (int i = 0; i < 2000; i++) {
		int rc = capfile_next(d->reader, &ev, &payload, err, sizeof(err));

		if (rc == 0) {
			d->input_done = true;
			return LOOP_TIMER_DONE;
		}
		if (rc < 0) {
			fprintf(stderr, "shadowd: --from-capture %s: %s; the "
				"records before it were used\n",
				d->o.from_capture, err);
			d->input_done = true;
			return LOOP_TIMER_DONE;
		}
		on_event(d, ev, payload);
		if (replay_stats(d->replay)->queued >= 256)
			break;
	}
	return 0;
}

static long tick(struct loop *l, long long id, void *ctx)
{
	struct daemon *d = ctx;

	if (d->cap)
		conn_table_expire(d->conns, loop_now_ns());
	publish(d);
	if (d->input_done && !replay_stats(d->replay)->queued &&
	    !replay_stats(d->replay)->inflight)
		loop_stop(l);
	return 1000;
}

static long flush_store(struct loop *l, long long id, void *ctx)
{
	struct daemon *d = ctx;
	int rc;

	pipeline_flush(d->pipe);
	rc = store_flush(d->store);
	if (rc < 0 && d->o.verbose)
		fprintf(stderr, "shadowd: store flush failed: %s (retrying)\n",
			strerror(-rc));
	return 100;
}

static long stop_after(struct loop *l, long long id, void *ctx)
{
	loop_stop(l);
	return LOOP_TIMER_DONE;
}

static void on_signal(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == sizeof(si))
		loop_stop(l);
}

/* After attaching, only reading the targets' files is still needed (the
 * sources of sendfile()); every other capability goes. */
static void drop_capabilities(void)
{
	const cap_value_t keep[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
	cap_t caps = cap_init();

	if (!caps)
		return;
	if (cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) < 0 ||
	    cap_set_proc(caps) < 0)
		fprintf(stderr, "shadowd: could not drop capabilities: %s\n",
			strerror(errno));
	cap_free(caps);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void build_rules(struct daemon *d)
{
	const struct options *o = &d->o;
	char err[256];

	d->rules = diff_rules_new();
	d->endpoints = endpoint_rules_new();
	if (!d->rules || !d->endpoints)
		die("out of memory");
	for (size_t i = 0; i < o->ignore_headers.n; i++)
		if (diff_rules_ignore_header(d->rules, o->ignore_headers.v[i]) < 0)
			die("--ignore-header '%s': not a header name",
			    o->ignore_headers.v[i]);
	for (size_t i = 0; i < o->ignore_json.n; i++)
		if (diff_rules_ignore_json(d->rules, o->ignore_json.v[i], err,
					   sizeof(err)) < 0)
			die("%s", err);
	for (size_t i = 0; i < o->unordered.n; i++)
		if (diff_rules_unordered(d->rules, o->unordered.v[i], err,
					 sizeof(err)) < 0)
			die("%s", err);
	if (diff_rules_float_tolerance(d->rules, o->float_tolerance) < 0)
		die("--float-tolerance %g: out of range", o->float_tolerance);
	for (size_t i = 0; i < o->endpoints.n; i++)
		if (endpoint_rules_add(d->endpoints, o->endpoints.v[i], err,
				       sizeof(err)) < 0)
			die("%s", err);
}

static void setup(struct daemon *d)
{
	const struct options *o = &d->o;
	struct replay_config rc = {
		.candidate_url = o->candidate,
		.noise_primary_url = o->noise_primary,
		.timeout_ms = o->timeout_ms,
		.max_inflight = o->max_inflight,
		.threads = o->replay_threads,
		.rate = o->rate,
		.replay_unsafe = o->replay_unsafe,
		.host_header = o->host_header,
		.set_headers = o->set_headers.v,
		.n_set = o->set_headers.n,
		.drop_headers = o->drop_headers.v,
		.n_drop = o->drop_headers.n,
		.cacert = o->cacert,
		.insecure = o->insecure,
		.max_body = o->max_body,
	};
	struct http1_config hc = { .max_body = o->max_body };
	struct conn_limits lim = { .max_conns = 65536,
				   .idle_ns = 600ull * 1000000000ull };
	char err[512];

	build_rules(d);
	hc.endpoints = d->endpoints;
	if (sample_new(o->sample, o->sample_key, &d->sample, err, sizeof(err)) < 0)
		die("%s", err);
	if (loop_new(&d->loop) < 0)
		die("out of memory");
	if (replay_new(d->loop, &rc, on_replayed, d, &d->replay, err,
		       sizeof(err)) < 0)
		die("%s", err);
	d->metrics = metrics_new();
	if (!d->metrics)
		die("out of memory");
	if (o->metrics && metrics_serve(d->metrics, o->metrics, err,
					sizeof(err)) < 0)
		die("%s", err);
	d->http1 = http1_new(&hc, on_exchange, d);
	d->conns = d->http1 ? conn_table_new(&lim, &http1_sink_ops, d->http1) :
			      NULL;
	if (!d->conns)
		die("out of memory");
	if (o->from_capture) {
		d->reader = capfile_open_reader(o->from_capture, err, sizeof(err));
		if (!d->reader)
			die("--from-capture: %s", err);
	}
	if (o->record) {
		d->recorder = capfile_open_writer(o->record);
		if (!d->recorder)
			die("--record %s: %s", o->record, strerror(errno));
	}
}

/* After attaching, so a failed start leaves no empty store behind, and
 * before dropping capabilities. Nothing reaches the store before the loop
 * runs. */
static void open_store(struct daemon *d)
{
	const struct options *o = &d->o;
	struct pipeline_config pc = {
		.sample = d->sample,
		.rules = d->rules,
		.metrics = d->metrics,
		.replayer = {
			.submit = replayer_submit,
			.shed = replayer_shed,
			.recheck = replayer_recheck,
			.ctx = d,
		},
		.noise_recheck = o->noise_recheck,
		.verbose = o->verbose,
	};
	struct store_config sc = {
		.path = o->store,
		.max_records = o->max_records,
		.examples = o->examples,
		.redact = o->redact.v,
		.n_redact = o->redact.n,
	};
	char err[512];

	if (store_open(&sc, &d->store, err, sizeof(err)) < 0)
		die("%s", err);
	pc.store = d->store;
	if (pipeline_new(&pc, &d->pipe) < 0)
		die("out of memory");
}

static void attach(struct daemon *d)
{
	const struct options *o = &d->o;
	struct capture_config cc = {
		.pids = d->o.pids, .n_pids = o->n_pids,
		.exes = o->exes.v, .n_exes = o->exes.n,
		.ports = d->o.ports, .n_ports = o->n_ports,
		.verbose = o->verbose > 1,
	};
	/* With the key in the request line (or a rate of 0 or 1) the kernel
	 * decides, copies no unsampled response, and passes over what the
	 * daemon sheds; a recording keeps every byte instead, so that it can
	 * be replayed at any rate. */
	bool in_kernel = sample_in_kernel(d->sample) && !o->record;
	struct capture_stats st;
	char err[512], ports[256] = "";
	int rc;

	if (in_kernel) {
		cc.sample_key = sample_kind(d->sample) == SAMPLE_KEY_PATH ?
				SHADOW_SAMPLE_PATH : SHADOW_SAMPLE_REQUEST;
		cc.sample_below = sample_below(o->sample);
	}
	rc = capture_open(&cc, on_event, d, &d->cap, err, sizeof(err));
	if (rc < 0)
		die("%s", err);
	capture_get_stats(d->cap, &st);
	for (size_t i = 0; i < o->n_ports; i++)
		snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports),
			 "%s%u", i ? "," : "", o->ports[i]);
	fprintf(stderr, "shadowd: attached to %u process%s (%u programs, "
		"data from %s tracepoints), %s%s; %llu connection%s joined "
		"midstream; replaying %g%%%s to %s\n",
		st.targets, st.targets == 1 ? "" : "es", st.programs,
		st.sock_hooks ? "socket" : "syscall",
		o->n_ports ? "ports " : "every accepted port",
		ports, (unsigned long long)st.midstream,
		st.midstream == 1 ? "" : "s", o->sample * 100,
		in_kernel ? " (decided in the kernel)" : "", o->candidate);
	d->poll_timer = loop_timer_add(d->loop, 10, poll_capture, d);
	if (d->poll_timer < 0 ||
	    loop_fd_add(d->loop, capture_fd(d->cap), LOOP_READ, on_ring_ready,
			d) < 0)
		die("out of memory");
	d->poll_delay_ms = 10;
}

/* --check: loads and reports, attaches nothing. */
static int check_kernel(const struct options *o)
{
	struct capture_config cc = {
		.ports = o->ports, .n_ports = o->n_ports,
		.verbose = o->verbose > 0,
	};
	struct capture_report r;
	char err[512] = "";
	int rc = capture_check(&cc, &r, err, sizeof(err));

	if (rc < 0 && rc != -EPERM) {
		capture_report_print(stdout, &r, false, false);
		fprintf(stderr, "shadowd: %s\n", err);
		return 1;
	}
	capture_report_print(stdout, &r, true, o->verbose > 0);
	capture_report_clean(&r);
	return rc < 0;
}

static int signal_fd(void)
{
	sigset_t set;

	/* A shell starts background jobs with SIGINT ignored; a daemon that
	 * must stop cleanly on it takes it back. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int main(int argc, char **argv)
{
	static struct daemon d;
	const struct conn_stats *cs;
	const struct pipeline_counters *pc;
	uint64_t store_errors;
	int sfd, drained;

	parse_args(argc, argv, &d.o);
	if (d.o.check)
		return check_kernel(&d.o);
	sfd = signal_fd(); /* before any thread starts: they inherit the mask */
	setup(&d);
	if (sfd < 0 || loop_fd_add(d.loop, sfd, LOOP_READ, on_signal, &d) < 0 ||
	    loop_timer_add(d.loop, 100, flush_store, &d) < 0 ||
	    loop_timer_add(d.loop, 1000, tick, &d) < 0 ||
	    (d.o.duration > 0 &&
	     loop_timer_add(d.loop, (long)(d.o.duration * 1000), stop_after,
			    &d) < 0))
		die("cannot set up the event loop: %s", strerror(errno));
	if (d.reader) {
		if (loop_timer_add(d.loop, 0, feed_capture, &d) < 0)
			die("out of memory");
		fprintf(stderr, "shadowd: reading %s; replaying %g%% to %s\n",
			d.o.from_capture, d.o.sample * 100, d.o.candidate);
	} else {
		attach(&d);
	}
	open_store(&d);
	/* Only once the store's files are open: they may live in a directory
	 * only the dropped capabilities could write to. */
	if (d.cap)
		drop_capabilities();
	if (loop_run(d.loop) < 0)
		fprintf(stderr, "shadowd: event loop failed: %s\n",
			strerror(errno));

	/* Stop capturing, finish what is in flight, then flush. */
	if (d.cap) {
		capture_poll(d.cap);
		loop_fd_del(d.loop, capture_fd(d.cap));
		loop_timer_del(d.loop, d.poll_timer);
	}
	drained = replay_drain(d.replay, d.o.timeout_ms + 100);
	publish(&d);
	pc = pipeline_counters(d.pipe);
	cs = conn_table_stats(d.conns);
	fprintf(stderr, "shadowd: %llu exchanges captured, %llu replayed, "
		"%llu diverged, %llu candidate errors, %llu shed, %llu unsafe "
		"skipped; %llu lost events, %llu gaps%s; store %s\n",
		(unsigned long long)pc->captured,
		(unsigned long long)pc->replayed,
		(unsigned long long)pc->diverged,
		(unsigned long long)pc->candidate_errors,
		(unsigned long long)pc->shed,
		(unsigned long long)pc->unsafe_skipped,
		(unsigned long long)cs->lost_events,
		(unsigned long long)cs->gaps,
		drained < 0 ? "; replays still in flight were abandoned" : "",
		d.o.store);
	replay_free(d.replay);
	d.replay = NULL;
	capture_close(d.cap);
	conn_table_free(d.conns);
	http1_free(d.http1);
	if (d.recorder && capfile_close_writer(d.recorder) < 0)
		fprintf(stderr, "shadowd: --record %s: final write failed\n",
			d.o.record);
	capfile_close_reader(d.reader);
	/* The last counts, with any of exchanges the connections closed
	 * above handed on. */
	pipeline_flush(d.pipe);
	store_errors = pipeline_counters(d.pipe)->store_errors;
	pipeline_free(d.pipe);
	store_close(d.store);
	metrics_free(d.metrics);
	sample_free(d.sample);
	diff_rules_free(d.rules);
	endpoint_rules_free(d.endpoints);
	loop_free(d.loop);
	if (sfd >= 0)
		close(sfd);
	if (store_errors)
		fprintf(stderr, "shadowd: %llu store writes failed (see -v)\n",
			(unsigned long long)store_errors);
	return 0;
}
