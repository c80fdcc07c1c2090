// SPDX-License-Identifier: BSD-2-Clause
/*
 * Replays per second against a local nginx candidate that answers
 * `return 200 '{"ok":true}'`: the replayer kept busy for a few seconds
 * (max_inflight 64, GET with a few headers), completions counted.
 * Prints `replay_per_sec: N` (and the port and errors for the record).
 * Usage: replay_bench [SECONDS] [MAX_INFLIGHT]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "message.h"
#include "replay.h"
#include "servers.h"
#include "util/loop.h"

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

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	unsigned inflight = argc > 2 ? (unsigned)atoi(argv[2]) : 64;
	char dir[] = "/tmp/replay_bench_XXXXXX", conf[600], url[64], err[256];
	struct servers_proc ngx = { 0 };
	struct bench b = { 0 };
	struct loop *l = NULL;
	int port, rc = 1;
	struct replay_config cfg = { .max_inflight = inflight,
				     .max_queue = 4096, .timeout_ms = 5000 };

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
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	cfg.candidate_url = url;
	if (loop_new(&l) ||
	    replay_new(l, &cfg, on_done, &b, &b.r, err, sizeof(err))) {
		fprintf(stderr, "replay_bench: %s\n", err);
		goto cleanup;
	}
	b.end_ms = loop_now_ms() + (uint64_t)(seconds * 1000);
	b.t_first = loop_now_ns();
	for (unsigned i = 0; i < inflight * 2; i++) {
		struct exchange *x = make_exchange(i);

		if (x)
			replay_submit(b.r, x);
	}
	while (loop_now_ms() < b.end_ms + 5000 &&
	       (replay_stats(b.r)->inflight || replay_stats(b.r)->queued))
		if (loop_run_once(l, 100) < 0)
			break;
	printf("replay_per_sec: %.0f\n",
	       (double)b.ok * 1e9 / (double)(b.t_last - b.t_first));
	printf("replay_errors: %llu\n", (unsigned long long)b.failed);
	{
		struct rusage ru;
		double cpu;

		getrusage(RUSAGE_SELF, &ru);
		cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
		printf("replay_cpu_us_per_replay: %.1f us\n",
		       b.ok ? cpu * 1e6 / (double)b.ok : 0);
	}
	printf("replay_candidate_port: %d\n", port);
	rc = b.ok ? 0 : 1;
cleanup:
	replay_free(b.r);
	loop_free(l);
	servers_stop(&ngx);
	{
		const char *rm[] = { "rm", "-rf", dir, NULL };

		servers_run(rm);
	}
	return rc;
}
