// SPDX-License-Identifier: BSD-2-Clause
#include "fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capfile.h"
#include "conn.h"
#include "message.h"
#include "shadow_event.h"
#include "store.h"

int fixture_load(const char *name, uint8_t **buf, size_t *len)
{
	const char *dir = getenv("SHADOW_TEST_DATA");
	char path[4096];
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc(n ? n : 1);
	if (!*buf || fread(*buf, 1, n, f) != (size_t)n) {
		free(*buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*len = n;
	return 0;
}

void fixture_collect(void *ctx, struct exchange *x)
{
	struct fixture_result *r = ctx;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct exchange **v = realloc(r->x, cap * sizeof(*v));

		if (!v) {
			exchange_free(x);
			return;
		}
		r->x = v;
		r->cap = cap;
	}
	r->x[r->n++] = x;
}

size_t fixture_payload_bytes(const uint8_t *cap, size_t len)
{
	char err[128];
	struct capfile_reader *rd = capfile_open_reader_mem(cap, len, 0, err,
						     sizeof(err));
	const struct shadow_event *ev;
	const void *pl;
	size_t total = 0;

	if (!rd)
		return 0;
	while (capfile_next(rd, &ev, &pl, err, sizeof(err)) == 1)
		if (ev->kind == SHADOW_EV_DATA)
			total += ev->len;
	capfile_close_reader(rd);
	return total;
}

int fixture_run(const uint8_t *cap, size_t len, const struct http1_config *cfg,
		size_t split_at, struct fixture_result *res)
{
	struct conn_limits lim = { .max_conns = 64 };
	struct capfile_reader *rd = NULL;
	struct conn_table *t = NULL;
	struct http1 *h = NULL;
	const struct shadow_event *ev;
	const void *pl;
	char err[128];
	size_t seen = 0;
	int rc = -ENOMEM;

	memset(res, 0, sizeof(*res));
	rd = capfile_open_reader_mem(cap, len, 0, err, sizeof(err));
	if (!rd) {
		rc = -EINVAL;
		goto cleanup;
	}
	h = http1_new(cfg, fixture_collect, res);
	if (!h)
		goto cleanup;
	t = conn_table_new(&lim, &http1_sink_ops, h);
	if (!t)
		goto cleanup;
	while ((rc = capfile_next(rd, &ev, &pl, err, sizeof(err))) == 1) {
		if (ev->kind == SHADOW_EV_DATA && split_at > seen &&
		    split_at < seen + ev->len) {
			struct shadow_event a = *ev, b = *ev;
			size_t k = split_at - seen;

			a.len = a.size = k;
			b.offset += k;
			b.len = b.size = ev->len - k;
			(void)conn_table_feed(t, &a, pl);
			(void)conn_table_feed(t, &b, (const uint8_t *)pl + k);
		} else {
			(void)conn_table_feed(t, ev, pl);
		}
		if (ev->kind == SHADOW_EV_DATA)
			seen += ev->len;
	}
	conn_table_free(t);
	t = NULL;
	res->st = *http1_stats(h);
cleanup:
	conn_table_free(t);
	http1_free(h);
	capfile_close_reader(rd);
	return rc < 0 ? rc : 0;
}

static void put(char **s, size_t *n, FILE *f, const char *k, const void *p,
		size_t len)
{
	(void)s;
	(void)n;
	fprintf(f, "%s[%zu]=", k, len);
	if (len) /* p may be NULL then: no body at all */
		fwrite(p, 1, len, f);
	fputc('\n', f);
}

char *fixture_describe(const struct exchange *x)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	if (!f)
		return NULL;
	fprintf(f, "tgid=%u fd=%u gen=%u client=%s endpoint=%s\n", x->tgid,
		x->fd, x->gen, x->client, x->endpoint);
	fprintf(f, "t=%llu..%llu\n", (unsigned long long)x->t_first_req_ns,
		(unsigned long long)x->t_last_resp_ns);
	fprintf(f, "%s %s HTTP/%u.%u flags=%u\n", x->req.method, x->req.target,
		x->req.http_major, x->req.http_minor, x->req.flags);
	for (size_t i = 0; i < x->req.headers.n; i++)
		fprintf(f, "%s: %s\n", x->req.headers.v[i].name,
			x->req.headers.v[i].value);
	put(&s, &n, f, "req.body", x->req.body.data, x->req.body.len);
	fprintf(f, "status=%d flags=%u\n", x->resp.status, x->resp.flags);
	for (size_t i = 0; i < x->resp.headers.n; i++)
		fprintf(f, "%s: %s\n", x->resp.headers.v[i].name,
			x->resp.headers.v[i].value);
	put(&s, &n, f, "raw", x->resp.raw.data, x->resp.raw.len);
	put(&s, &n, f, "decoded", x->resp.decoded.data, x->resp.decoded.len);
	fclose(f);
	return s;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool body_eq(const struct body *a, const struct body *b)
{
	return a->len == b->len && (!a->len ||
				    memcmp(a->data, b->data, a->len) == 0);
}

static bool headers_eq(const struct headers *a, const struct headers *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!str_eq(a->v[i].name, b->v[i].name) ||
		    !str_eq(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

bool fixture_equal(const struct exchange *a, const struct exchange *b)
{
	return a->tgid == b->tgid && a->fd == b->fd && a->gen == b->gen &&
	       !strcmp(a->client, b->client) &&
	       str_eq(a->endpoint, b->endpoint) &&
	       a->t_first_req_ns == b->t_first_req_ns &&
	       a->t_last_resp_ns == b->t_last_resp_ns &&
	       str_eq(a->req.method, b->req.method) &&
	       str_eq(a->req.target, b->req.target) &&
	       a->req.http_major == b->req.http_major &&
	       a->req.http_minor == b->req.http_minor &&
	       a->req.flags == b->req.flags &&
	       headers_eq(&a->req.headers, &b->req.headers) &&
	       body_eq(&a->req.body, &b->req.body) &&
	       a->resp.status == b->resp.status &&
	       a->resp.flags == b->resp.flags &&
	       headers_eq(&a->resp.headers, &b->resp.headers) &&
	       body_eq(&a->resp.raw, &b->resp.raw) &&
	       body_eq(&a->resp.decoded, &b->resp.decoded);
}

void fixture_result_clean(struct fixture_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		exchange_free(res->x[i]);
	free(res->x);
	memset(res, 0, sizeof(*res));
}

void fixture_tmpdir(char *dir, char *dbpath, const char *prefix)
{
	snprintf(dir, 64, "/tmp/%s.XXXXXX", prefix);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(dbpath, 128, "%s/shadow.db", dir);
}

void fixture_rmdir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

char fixture_dir[64], fixture_db[128];

void fixture_dir_init(void)
{
	fixture_tmpdir(fixture_dir, fixture_db, program_invocation_short_name);
}

void fixture_dir_fini(void)
{
	fixture_rmdir(fixture_dir);
}

struct store *fixture_store_open(const char *path)
{
	struct store_config cfg = { .path = path };
	struct store *s = NULL;
	char err[256] = "";

	cr_assert_eq(store_open(&cfg, &s, err, sizeof(err)), 0, "%s", err);
	return s;
}
