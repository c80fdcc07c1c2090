// SPDX-License-Identifier: BSD-2-Clause
/*
 * A codec migration shadowed in process: the old JSON encoder answers,
 * the new one is tried on every call beside it, and what differs is kept.
 * The new encoder writes an order's total as a string with two decimals
 * ("12.50") where the old one wrote a number (12.5): the one divergence
 * rs_divergences_json() prints, at $.total. `tax` is formatted
 * differently too, but numbers are compared as numbers, so it is equal.
 *
 *   cc codec_migration.c $(pkg-config --cflags --libs request-shadow)
 *   ./a.out            # prints the divergences as a JSON array
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <request_shadow.h>

struct order {
	int id;
	const char *customer;
	double total, tax;
};

static const struct order orders[] = {
	{ 1, "alice", 12.5, 1.25 }, { 2, "bob", 7, 0.7 },
	{ 3, "carol", 99.99, 10 },
};

static const struct rs_header json[] = {
	{ "Content-Type", "application/json" },
};

/* The order the request's target names ("/orders/2"), or NULL. */
static const struct order *order_of(const struct rs_message *req)
{
	int id = atoi(strrchr(req->target, '/') + 1);

	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
		if (orders[i].id == id)
			return &orders[i];
	return NULL;
}

/* Fills resp with a malloc'd body (released by release()). */
static int answer(struct rs_message *resp, char *body, int len)
{
	if (len < 0)
		return -ENOMEM;
	resp->status = 200;
	resp->headers = json;
	resp->n_headers = 1;
	resp->body = body;
	resp->body_len = (size_t)len;
	return 0;
}

static int old_encoder(void *ctx, const struct rs_message *req,
		       struct rs_message *resp)
{
	const struct order *o = order_of(req);
	char *body;
	int len;

	if (!o)
		return -ENOENT;
	len = asprintf(&body, "{\"id\":%d,\"customer\":\"%s\",\"total\":%g,"
		       "\"tax\":%g}", o->id, o->customer, o->total, o->tax);
	return answer(resp, body, len);
}

static int new_encoder(void *ctx, const struct rs_message *req,
		       struct rs_message *resp)
{
	const struct order *o = order_of(req);
	char *body;
	int len;

	if (!o)
		return -ENOENT;
	len = asprintf(&body, "{\"tax\":%.2f,\"customer\":\"%s\",\"id\":%d,"
		       "\"total\":\"%.2f\"}", o->tax, o->customer, o->id, o->total);
	return answer(resp, body, len);
}

static void release(void *ctx, struct rs_message *resp)
{
	free((void *)resp->body);
}

int main(void)
{
	struct rs_backend old = { old_encoder, release, NULL };
	struct rs_backend new = { new_encoder, release, NULL };
	struct rs_config *cfg = rs_config_new();
	struct rs_shadower *sh;
	char *err = NULL, *out, target[32];

	/* every call shadowed; the daemon's option names and syntax */
	if (!cfg || rs_config_set(cfg, "sample", "1") < 0 ||
	    rs_config_set(cfg, "timeout", "500") < 0) {
		fprintf(stderr, "codec_migration: bad configuration\n");
		return 1;
	}
	sh = rs_shadower_new(cfg, old, new, &err);
	rs_config_free(cfg);
	if (!sh) {
		fprintf(stderr, "codec_migration: %s\n", err);
		free(err);
		return 1;
	}
	for (int id = 1; id <= 3; id++) {
		struct rs_message req = { .method = "GET", .target = target };
		struct rs_message resp;

		snprintf(target, sizeof(target), "/orders/%d", id);
		if (rs_shadow_call(sh, &req, &resp) < 0)
			return 1;
		/* the caller has the old encoder's answer at once */
		fwrite(resp.body, 1, resp.body_len, stderr);
		fputc('\n', stderr);
		rs_release(sh, &resp);
	}
	rs_shadower_flush(sh, 2000);
	out = rs_divergences_json(sh, 0);
	if (!out)
		return 1;
	puts(out);
	free(out);
	rs_shadower_free(sh);
	return 0;
}
