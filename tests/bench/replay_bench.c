// SPDX-License-Identifier: BSD-2-Clause
/*
 * Replays per second against a local nginx candidate that answers
 * `return 200 '{"ok":true}'`: the replayer kept busy (max_inflight 64,
 * GET with a few headers), completions counted, with one thread (the
 * transfers on the loop, as shadowd runs by default) and with two
 * (--replay-threads 2: the loop hands the jobs to two threads). In
 * alternating stretches of the same run, libcurl alone sends the same
 * requests on as many connections (run_ceiling): what a replayer built on
 * libcurl can reach on one thread at best; and wrk -t1 -c32 on the same
 * nginx (run_wrk): all four measured side by side, in turn, three times.
 * Prints `replay_per_sec: N` (one thread), `replay_2threads_per_sec: N`,
 * `curl_ceiling_per_sec: N`, their ratios, the CPU each spent per request
 * (this process, its loop's thread alone, the nginx candidate's, the
 * machine's), errors, the rate all CPUs could give at most at the
 * two-thread cost per replay, and the candidate's port.
 * Usage: replay_bench [SECONDS] [MAX_INFLIGHT]
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "message.h"
#include "replay.h"
#include "servers.h"
#include "util/loop.h"

/* Stretches of each, alternating. */
#define ROUNDS 3

struct bench {
	struct replay *r;
	uint64_t end_ms;
	uint64_t ok, failed;
	uint64_t t_first, t_last;
};

static struct exchange *make_exchange(uint64_t i)
{
	struct exchange *x = calloc(1, sizeof(*x));
	char target[64];
	static const char *const h[][2] = {
		{ "Host", "bench.local" },
		{ "User-Agent", "bench/1.0" },
		{ "Accept", "application/json" },
		{ "X-Request-Id", "0123456789abcdef" },
	};

	if (!x)
		return NULL;
	snprintf(target, sizeof(target), "/users/%llu?full=1",
		 (unsigned long long)(i % 1000));
	if (exchange_set_line(x, "GET", 3, target, strlen(target), NULL)) {
		exchange_free(x);
		return NULL;
	}
	for (size_t k = 0; k < 4; k++)
		if (headers_add(&x->req.headers, h[k][0], strlen(h[k][0]),
				h[k][1], strlen(h[k][1])))
			break;
	return x;
}

static void on_done(void *ctx, struct replay_job *job)
{
	struct bench *b = ctx;
	struct exchange *x;

	if (job->outcome == REPLAY_OK && job->candidate.status == 200)
		b->ok++;
	else
		b->failed++;
	b->t_last = loop_now_ns();
	if (loop_now_ms() < b->end_ms) {
		x = make_exchange(b->ok + b->failed);
		if (x)
			replay_submit(b->r, x);
	}
}

static int write_conf(const char *dir, int port)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"worker_processes 1;\n"
		"error_log %s/error.log;\n"
		"pid %s/nginx.pid;\n"
		"events { worker_connections 1024; }\n"
		"http {\n"
		"  access_log off;\n"
		"  client_body_temp_path %s;\n"
		"  proxy_temp_path %s;\n"
		"  fastcgi_temp_path %s;\n"
		"  uwsgi_temp_path %s;\n"
		"  scgi_temp_path %s;\n"
		"  keepalive_requests 1000000;\n"
		"  server {\n"
		"    listen 127.0.0.1:%d;\n"
		"    location / { default_type application/json;"
		" return 200 '{\"ok\":true}'; }\n"
		"  }\n"
		"}\n",
		dir, dir, dir, dir, dir, dir, dir, port);
	fclose(f);
	return 0;
}

/* What the stretches of one kind gave: completions, failures, seconds
 * from the first send to the last completion, CPU seconds of this process,
 * of its main thread alone, of the candidate (nginx's processes), and of
 * the machine: every CPU's busy time, and the part of it in interrupts
 * and softirqs (loopback TCP's receive side), which is charged to no
 * process. */
struct tally {
	uint64_t ok, failed;
	double secs, cpu, main_cpu, cand_cpu, busy, irq, wall;
};

/* /proc/stat's first line: busy (everything but idle and iowait) and
 * irq + softirq, in seconds. */
static void machine_cpu(double *busy, double *irq)
{
	unsigned long long v[8] = { 0 };
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	*busy = *irq = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
		*irq = (double)(v[5] + v[6]) / tick;
	}
	fclose(f);
}

static double ru_secs(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double cpu_now(void)
{
	return ru_secs(RUSAGE_SELF);
}

/* The candidate's processes: nginx's master and worker, in the process
 * group servers_start() made. */
static pid_t cand_group;

/* CPU seconds (user + system) of every process in cand_group so far. */
static double cand_cpu_now(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	double sum = 0;
	long tick = sysconf(_SC_CLK_TCK);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], buf[1024], *p;
		unsigned long long ut, st;
		long pgrp;
		FILE *f;
		size_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* after "pid (comm) ": state ppid pgrp ... utime stime
		 * (fields 3, 4, 5 and 14, 15 of proc(5)) */
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %*d %ld %*d %*d %*d %*u %*u %*u "
				 "%*u %*u %llu %llu", &pgrp, &ut, &st) != 3)
			continue;
		if (pgrp == cand_group)
			sum += (double)(ut + st) / (double)tick;
	}
	closedir(d);
	return sum;
}

#define MARKS 6

/* Starts counting one stretch. */
static void tally_start(double *mark)
{
	mark[0] = cpu_now();
	mark[1] = ru_secs(RUSAGE_THREAD);
	mark[2] = cand_cpu_now();
	machine_cpu(&mark[3], &mark[4]);
	mark[5] = (double)loop_now_ns() / 1e9;
}

static void tally_stop(struct tally *t, const double *mark)
{
	double busy, irq;

	t->cpu += cpu_now() - mark[0];
	t->main_cpu += ru_secs(RUSAGE_THREAD) - mark[1];
	t->cand_cpu += cand_cpu_now() - mark[2];
	machine_cpu(&busy, &irq);
	t->busy += busy - mark[3];
	t->irq += irq - mark[4];
	t->wall += (double)loop_now_ns() / 1e9 - mark[5];
}

/* Our replayer with `threads`, kept busy for `seconds`. */
static int run_replay(struct loop *l, const char *url, double seconds,
		      unsigned inflight, unsigned threads, struct tally *t)
{
	struct replay_config cfg = { .max_inflight = inflight,
				     .max_queue = 4096, .timeout_ms = 5000,
				     .candidate_url = url, .threads = threads };
	struct bench b = { 0 };
	double mark[MARKS];
	char err[256];

	tally_start(mark);
	if (replay_new(l, &cfg, on_done, &b, &b.r, err, sizeof(err))) {
		fprintf(stderr, "replay_bench: %s\n", err);
		return -1;
	}
	b.end_ms = loop_now_ms() + (uint64_t)(seconds * 1000);
	b.t_first = b.t_last = loop_now_ns();
	for (unsigned i = 0; i < inflight * 2; i++) {
		struct exchange *x = make_exchange(i);

		if (x)
			replay_submit(b.r, x);
	}
	while (loop_now_ms() < b.end_ms + 5000 &&
	       (replay_stats(b.r)->inflight || replay_stats(b.r)->queued))
		if (loop_run_once(l, 100) < 0)
			break;
	replay_free(b.r);
	t->ok += b.ok;
	t->failed += b.failed;
	t->secs += (double)(b.t_last - b.t_first) / 1e9;
	tally_stop(t, mark);
	return 0;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	return size * n;
}

/* libcurl alone, driven the way its documentation shows: handles reused,
 * curl_multi_perform() and curl_multi_poll(), the same requests with the
 * same headers as make_exchange()'s (and the "Expect:" the replayer adds),
 * the body thrown away. No replayer built on libcurl does less per
 * request: this is the ceiling the replayer is measured against. */
static int run_ceiling(const char *url, double seconds, unsigned inflight,
		       struct tally *t)
{
	static const char *const h[] = { "Host: bench.local",
					 "User-Agent: bench/1.0",
					 "Accept: application/json",
					 "X-Request-Id: 0123456789abcdef",
					 "Expect:" };
	CURLM *m = curl_multi_init();
	struct curl_slist *hl = NULL, *nl;
	uint64_t n = 0, end, t0;
	double mark[MARKS];
	char target[128];
	int running, rc = -1;

	if (!m)
		return -1;
	for (size_t k = 0; k < sizeof(h) / sizeof(h[0]); k++) {
		nl = curl_slist_append(hl, h[k]);
		if (!nl)
			goto out;
		hl = nl;
	}
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)inflight);
	tally_start(mark);
	t0 = loop_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	for (unsigned i = 0; i < inflight; i++) {
		CURL *e = curl_easy_init();

		if (!e)
			goto out;
		snprintf(target, sizeof(target), "%s/users/%llu?full=1", url,
			 (unsigned long long)(n++ % 1000));
		curl_easy_setopt(e, CURLOPT_URL, target);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
		curl_multi_add_handle(m, e);
	}
	for (;;) {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			CURL *e = msg->easy_handle;
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result == CURLE_OK && status == 200)
				t->ok++;
			else
				t->failed++;
			curl_multi_remove_handle(m, e);
			if (loop_now_ns() >= end) {
				curl_easy_cleanup(e);
				continue;
			}
			snprintf(target, sizeof(target), "%s/users/%llu?full=1",
				 url, (unsigned long long)(n++ % 1000));
			curl_easy_setopt(e, CURLOPT_URL, target);
			curl_multi_add_handle(m, e);
		}
		if (!running && loop_now_ns() >= end)
			break;
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	t->secs += (double)(loop_now_ns() - t0) / 1e9;
	tally_stop(t, mark);
	rc = 0;
out:
	curl_multi_cleanup(m);
	curl_slist_free_all(hl);
	return rc;
}

/* wrk's requests/s on the same nginx over `seconds` (at least 1; -t1
 * -c32, as make bench runs it): what the candidate serves a load
 * generator at most. 0, with a message, if wrk cannot be run. */
static double run_wrk(const char *url, double seconds)
{
	char cmd[256], line[256];
	double rps = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "wrk -t1 -c32 -d%.0fs %s/users/17 2>/dev/null",
		 seconds < 1 ? 1 : seconds, url);
	f = popen(cmd, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		sscanf(line, "Requests/sec: %lf", &rps);
	if (pclose(f) != 0 || rps <= 0) {
		fprintf(stderr, "replay_bench: wrk did not run\n");
		return 0;
	}
	return rps;
}

static double per_sec(const struct tally *t)
{
	return t->secs ? (double)t->ok / t->secs : 0;
}

/* NAME_per_sec, NAME_errors, and the CPU per UNIT: this process's, its
 * main thread's, the candidate's. */
static void print_tally(const char *name, const char *unit,
			const struct tally *t)
{
	double n = t->ok ? (double)t->ok : 1;

	printf("%s_per_sec: %.0f\n", name, per_sec(t));
	printf("%s_errors: %llu\n", name, (unsigned long long)t->failed);
	printf("%s_cpu_us_per_%s: %.1f us (main thread %.1f, candidate "
	       "%.1f)\n", name, unit, t->cpu * 1e6 / n, t->main_cpu * 1e6 / n,
	       t->cand_cpu * 1e6 / n);
	printf("%s_machine_us_per_%s: %.1f us of %ld CPUs busy (irq+softirq "
	       "%.1f), %.0f%% idle\n", name, unit, t->busy * 1e6 / n,
	       sysconf(_SC_NPROCESSORS_ONLN), t->irq * 1e6 / n,
	       t->wall > 0 ? 100 * (1 - t->busy / (t->wall *
				sysconf(_SC_NPROCESSORS_ONLN))) : 0);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	unsigned inflight = argc > 2 ? (unsigned)atoi(argv[2]) : 64;
	char dir[] = "/tmp/replay_bench_XXXXXX", conf[600], url[64];
	struct servers_proc ngx = { 0 };
	struct tally rp = { 0 }, rp2 = { 0 }, ce = { 0 };
	double wrk_sum = 0, w;
	bool have_wrk = true;
	struct loop *l = NULL;
	int port, rc = 1;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	port = servers_free_port();
	if (port < 0 || write_conf(dir, port)) {
		fprintf(stderr, "replay_bench: cannot set up nginx in %s\n",
			dir);
		goto cleanup;
	}
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	{
		const char *nargv[] = { "nginx", "-p", dir, "-c", conf, "-g",
					"daemon off;", NULL };

		if (servers_start(&ngx, nargv, port, 5000)) {
			fprintf(stderr, "replay_bench: nginx did not start\n");
			goto cleanup;
		}
		cand_group = ngx.pid;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	if (loop_new(&l))
		goto cleanup;
	/* Alternating stretches, so that both see the same machine. */
	for (int round = 0; round < ROUNDS; round++) {
		if (run_replay(l, url, seconds / ROUNDS, inflight, 1, &rp) ||
		    run_replay(l, url, seconds / ROUNDS, inflight, 2, &rp2) ||
		    run_ceiling(url, seconds / ROUNDS, inflight, &ce))
			goto cleanup;
		if (have_wrk) {
			w = run_wrk(url, seconds / ROUNDS);
			have_wrk = w > 0;
			wrk_sum += w;
		}
	}
	print_tally("replay", "replay", &rp);
	print_tally("replay_2threads", "replay", &rp2);
	print_tally("curl_ceiling", "request", &ce);
	if (rp.secs && ce.ok)
		printf("replay_vs_curl_ceiling: %.3f\n",
		       per_sec(&rp) / per_sec(&ce));
	if (rp.ok && rp2.secs)
		printf("replay_2threads_vs_1: %.3f\n",
		       per_sec(&rp2) / per_sec(&rp));
	/* What any number of threads could give here at most: every CPU
	 * busy at what the machine spent per replay with two threads (the
	 * candidate's and the kernel's share included). The processes'
	 * figures above overlap the interrupts' (a tick in a softirq is
	 * charged to the task it interrupted too): they are not added. */
	if (rp2.busy > 0 && rp.ok) {
		double bound = (double)sysconf(_SC_NPROCESSORS_ONLN) *
			       (double)rp2.ok / rp2.busy;

		printf("replay_all_cpus_bound_per_sec: %.0f (%.3f of one "
		       "thread)\n", bound, bound / per_sec(&rp));
	}
	if (have_wrk) {
		w = wrk_sum / ROUNDS;
		printf("wrk_per_sec: %.0f\n", w);
		printf("replay_vs_wrk: %.3f\n",
		       rp.secs ? (double)rp.ok / rp.secs / w : 0);
		printf("curl_ceiling_vs_wrk: %.3f\n",
		       ce.secs ? (double)ce.ok / ce.secs / w : 0);
	}
	printf("replay_candidate_port: %d\n", port);
	rc = rp.ok && rp2.ok && ce.ok && !rp.failed && !rp2.failed &&
	     !ce.failed ? 0 : 1;
cleanup:
	loop_free(l);
	servers_stop(&ngx);
	{
		const char *rm[] = { "rm", "-rf", dir, NULL };

		servers_run(rm);
	}
	return rc;
}
