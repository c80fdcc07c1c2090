// SPDX-License-Identifier: BSD-2-Clause
#include "message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

int headers_add(struct headers *h, const char *name, size_t name_len,
		const char *value, size_t value_len)
{
	struct header *v;
	char *n, *val;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;

		v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	n = dup_n(name, name_len);
	val = dup_n(value, value_len);
	if (!n || !val) {
		free(n);
		free(val);
		return -ENOMEM;
	}
	h->v[h->n].name = n;
	h->v[h->n].value = val;
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
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
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

void http_request_clean(struct http_request *r)
{
	free(r->method);
	free(r->target);
	headers_clean(&r->headers);
	body_clean(&r->body);
	memset(r, 0, sizeof(*r));
}

void http_response_clean(struct http_response *r)
{
	headers_clean(&r->headers);
	body_clean(&r->raw);
	body_clean(&r->decoded);
	memset(r, 0, sizeof(*r));
}

void exchange_clean(struct exchange *x)
{
	free(x->endpoint);
	http_request_clean(&x->req);
	http_response_clean(&x->resp);
	memset(x, 0, sizeof(*x));
}

void exchange_free(struct exchange *x)
{
	if (!x)
		return;
	exchange_clean(x);
	free(x);
}
