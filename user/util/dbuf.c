// SPDX-License-Identifier: BSD-2-Clause
#include "util/dbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbuf_init(struct dbuf *b, size_t max)
{
	*b = (struct dbuf)DBUF_INIT(max);
}

/* Grows the allocation to hold want bytes and a NUL (want <= max). */
static int grow(struct dbuf *b, size_t want)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (want < b->cap)
		return 0;
	while (cap <= want && cap < SIZE_MAX / 2)
		cap *= 2;
	if (cap <= want)
		return -ENOMEM;
	/* No more than the cap ever needs. */
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int dbuf_add_grow(struct dbuf *b, const void *p, size_t n)
{
	int rc;

	if (n > b->max - b->len)
		return -E2BIG;
	rc = grow(b, b->len + n);
	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int dbuf_addc(struct dbuf *b, char c)
{
	return dbuf_add(b, &c, 1);
}

int dbuf_vaddf(struct dbuf *b, const char *fmt, va_list ap)
{
	char small[256];
	char *big;
	va_list again;
	int n, rc;

	va_copy(again, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0 || (size_t)n < sizeof(small)) {
		va_end(again);
		return n < 0 ? -EINVAL : dbuf_add(b, small, (size_t)n);
	}
	big = malloc((size_t)n + 1);
	if (!big) {
		va_end(again);
		return -ENOMEM;
	}
	vsnprintf(big, (size_t)n + 1, fmt, again);
	va_end(again);
	rc = dbuf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

int dbuf_addf(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = dbuf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

size_t dbuf_room(struct dbuf *b, size_t n)
{
	size_t left = b->max - b->len;

	if (n > left)
		n = left;
	if (grow(b, b->len + n) < 0)
		return (size_t)-1;
	if (!b->p)
		return 0;
	b->p[b->len] = '\0';
	return b->cap - 1 - b->len < left ? b->cap - 1 - b->len : left;
}

const char *dbuf_str(const struct dbuf *b)
{
	return b->p ? b->p : "";
}

void dbuf_reset(struct dbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void dbuf_free(struct dbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *dbuf_take(struct dbuf *b, size_t *len)
{
	char *p = b->p;

	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

int vec_reserve_(void **v, size_t *cap, size_t need, size_t el)
{
	size_t n = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (n > SIZE_MAX / el)
		return -ENOMEM;
	p = realloc(*v, n * el);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}
