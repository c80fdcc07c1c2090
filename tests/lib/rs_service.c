// SPDX-License-Identifier: BSD-2-Clause
#include "rs_service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const struct rs_header json_headers[2][2] = {
	{ { "Content-Type", "application/json" }, { "X-Api-Version", "1" } },
	{ { "Content-Type", "application/json" }, { "X-Api-Version", "2" } },
};

int service_call(void *ctx, const struct rs_message *req,
		 struct rs_message *resp)
{
	struct service *s = ctx;
	int n = atomic_fetch_add(&s->calls, 1);
	char *body;

	if (n < s->hang_first) {
		pthread_mutex_lock(&s->lock);
		while (!s->gate)
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
	}
	if (s->sleep_ms)
		usleep(s->sleep_ms * 1000);
	if (s->fail)
		return s->fail;
	if (asprintf(&body, "{\"name\":\"%s\",\"target\":\"%s\",\"items\":"
		     "[{\"id\":1,\"price\":1.5},{\"id\":2,\"price\":%g}],"
		     "\"meta\":{\"ts\":%d}}", s->name, req->target, s->price,
		     s->volatile_ts ? n + 1 : 0) < 0)
		return -ENOMEM;
	resp->status = s->status ? s->status : 200;
	resp->headers = json_headers[strcmp(s->version, "1") != 0];
	resp->n_headers = 2;
	resp->body = body;
	resp->body_len = strlen(body);
	return 0;
}

void service_release(void *ctx, struct rs_message *resp)
{
	struct service *s = ctx;

	atomic_fetch_add(&s->releases, 1);
	free((void *)resp->body);
}

void service_open(struct service *s)
{
	pthread_mutex_lock(&s->lock);
	s->gate = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

struct rs_backend service_backend(struct service *s)
{
	return (struct rs_backend){ service_call, service_release, s };
}

struct rs_shadower *service_shadower(struct service *p, struct service *c, ...)
{
	struct rs_config *cfg = rs_config_new();
	struct rs_shadower *sh;
	char *err = NULL;
	const char *k, *v;
	va_list ap;

	if (!cfg)
		die("rs_config_new: out of memory");
	va_start(ap, c);
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		if (rs_config_set(cfg, k, v) < 0)
			die("rs_config_set %s %s refused", k, v ? v : "(null)");
	}
	va_end(ap);
	sh = rs_shadower_new(cfg, service_backend(p), service_backend(c), &err);
	if (!sh)
		die("rs_shadower_new: %s", err);
	rs_config_free(cfg);
	return sh;
}

void service_get(struct rs_shadower *sh, const char *target)
{
	static const struct rs_header h[] = { { "Host", "api" },
					      { "Authorization", "secret" } };
	struct rs_message req = { .method = "GET", .target = target,
				  .headers = h, .n_headers = 2 };
	struct rs_message resp;
	int rc = rs_shadow_call(sh, &req, &resp);

	if (rc != 0 || resp.status != 200 || !resp.body_len)
		die("rs_shadow_call GET %s: %d, status %d", target, rc, resp.status);
	rs_release(sh, &resp);
	if (resp.body)
		die("rs_release left the body");
}

struct rs_stats service_stats(struct rs_shadower *sh)
{
	struct rs_stats st;

	if (rs_shadower_stats(sh, &st) < 0)
		die("rs_shadower_stats refused");
	return st;
}

void service_tmpdir(char *dir, size_t len, const char *prefix)
{
	snprintf(dir, len, "/tmp/%s.XXXXXX", prefix);
	if (!mkdtemp(dir))
		die("mkdtemp %s: %s", dir, strerror(errno));
}

void service_rmdir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}
