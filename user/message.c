// SPDX-License-Identifier: BSD-2-Clause
#include "message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "endpoint.h"
#include "util/dbuf.h"
#include "util/decode.h"

int headers_add(struct headers *h, const char *name, size_t name_len,
		const char *value, size_t value_len)
{
	char *n;

	if (vec_reserve(h->v, h->cap, h->n + 1) < 0)
		return -ENOMEM;
	n = malloc(name_len + 1 + value_len + 1);
	if (!n)
		return -ENOMEM;
	memcpy(n, name, name_len);
	n[name_len] = '\0';
	memcpy(n + name_len + 1, value, value_len);
	n[name_len + 1 + value_len] = '\0';
	h->v[h->n].name = n;
	h->v[h->n].value = n + name_len + 1;
	h->n++;
	return 0;
}

const char *headers_get(const struct headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	return NULL;
}

int headers_copy(struct headers *dst, const struct headers *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		const struct header *s = &src->v[i];

		if (headers_add(dst, s->name, strlen(s->name), s->value,
				strlen(s->value)) < 0) {
			headers_clean(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

void headers_clean(struct headers *h)
{
	if (!h->v)
		return; /* nothing was ever added: already clean */
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].name); /* and its value */
	free(h->v);
	memset(h, 0, sizeof(*h));
}

int body_set(struct body *b, const void *data, size_t len)
{
	uint8_t *d = malloc(len + 1);

	if (!d)
		return -ENOMEM;
	if (len)
		memcpy(d, data, len);
	d[len] = '\0';
	free(b->data);
	b->data = d;
	b->len = len;
	return 0;
}

void body_clean(struct body *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* Frees what r, a response and an exchange own, leaving dangling
 * pointers: the *_clean() and *_free() functions below finish the job. */
static void request_release(struct http_request *r)
{
	headers_clean(&r->headers);
	free(r->body.data);
}

static void response_release(struct http_response *r)
{
	headers_clean(&r->headers);
	free(r->raw.data);
	free(r->decoded.data);
}

static void exchange_release(struct exchange *x)
{
	free(x->names);
	request_release(&x->req);
	response_release(&x->resp);
}

void http_request_clean(struct http_request *r)
{
	request_release(r);
	memset(r, 0, sizeof(*r));
}

void http_response_clean(struct http_response *r)
{
	response_release(r);
	memset(r, 0, sizeof(*r));
}

struct exchange *exchange_new(void)
{
	/* Not calloc() (nor malloc() and memset(), which compilers turn
	 * into calloc()): glibc serves calloc() without its per-thread
	 * cache, at several times the cost, for every request captured. */
	struct exchange *x = malloc(sizeof(*x));

	if (x)
		*x = (struct exchange){ 0 };
	return x;
}

int exchange_set_line(struct exchange *x, const char *method, size_t mlen,
		      const char *target, size_t tlen,
		      const struct endpoint_rules *rules)
{
	size_t size = mlen + 1 + tlen + 1 +
		      endpoint_name_max(rules, mlen, tlen);
	char *p = x->names;

	if (size > x->names_size) {
		p = malloc(size);
		if (!p)
			return -ENOMEM;
		free(x->names);
		x->names = p;
		x->names_size = size;
	}
	memcpy(p, method, mlen);
	p[mlen] = '\0';
	memcpy(p + mlen + 1, target, tlen);
	p[mlen + 1 + tlen] = '\0';
	x->req.method = p;
	x->req.target = p + mlen + 1;
	x->endpoint = p + mlen + 1 + tlen + 1;
	endpoint_write(rules, x->req.method, x->req.target,
		       x->names + mlen + 1 + tlen + 1);
	return 0;
}

void exchange_clean(struct exchange *x)
{
	exchange_release(x);
	memset(x, 0, sizeof(*x));
}

void exchange_reset(struct exchange *x)
{
	char *names = x->names;
	size_t size = x->names_size;

	x->names = NULL;
	exchange_clean(x);
	x->names = names;
	x->names_size = size;
}

void exchange_free(struct exchange *x)
{
	if (!x)
		return;
	exchange_release(x);
	free(x);
}

int http_response_decode(struct http_response *resp, size_t max_body)
{
	const char *ce = headers_get(&resp->headers, "Content-Encoding");
	struct decode_result res;
	int rc;

	rc = decode_body(ce, resp->raw.data, resp->raw.len, max_body,
			 resp->flags & MESSAGE_TRUNCATED, &res);
	if (rc == 0) {
		resp->decoded.data = res.data;
		resp->decoded.len = res.len;
		if (res.truncated)
			resp->flags |= MESSAGE_TRUNCATED;
		return 0;
	}
	if (rc == -ENOMEM)
		return rc;
	resp->flags |= MESSAGE_DECODE_FAILED;
	return body_set(&resp->decoded, resp->raw.data, resp->raw.len);
}
