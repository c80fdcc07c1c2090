/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Growable buffers, in the spirit of curl's dynbuf: a byte buffer with a
 * cap it refuses to grow past, always NUL-terminated once grown, and the
 * reallocation of arrays of any element type. Every piece of memory the
 * daemon grows from untrusted input (captured heads, bodies, JSON) grows
 * through here, so that the cap and the doubling are written once.
 */
#ifndef SHADOW_DBUF_H
#define SHADOW_DBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct dbuf {
	char *p;    /* NULL until the first byte is added */
	size_t len; /* bytes held, the NUL after them not counted */
	size_t cap; /* bytes allocated */
	size_t max; /* len never passes it */
};

#define DBUF_INIT(max_len) { NULL, 0, 0, (max_len) }

/* An empty buffer that holds at most max bytes. */
void dbuf_init(struct dbuf *b, size_t max);
/* dbuf_add() when the bytes do not fit the allocation. */
int dbuf_add_grow(struct dbuf *b, const void *p, size_t n)
	__attribute__((warn_unused_result));
/* Appends n bytes (n may be 0). Returns 0, -E2BIG when len would pass max
 * (nothing is added), or -ENOMEM (nothing is added). Inline where the
 * bytes fit: the HTTP parser appends every header piece through it. */
static inline __attribute__((warn_unused_result)) int
dbuf_add(struct dbuf *b, const void *p, size_t n)
{
	if (n < b->cap - b->len && n <= b->max - b->len) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
		b->p[b->len] = '\0';
		return 0;
	}
	return dbuf_add_grow(b, p, n);
}
int dbuf_addc(struct dbuf *b, char c) __attribute__((warn_unused_result));
int dbuf_addf(struct dbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));
int dbuf_vaddf(struct dbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0), warn_unused_result));
/* Room for n more bytes and the NUL after them, without adding any; the
 * room may be less than asked only at max. Returns the room (0 at max),
 * or (size_t)-1 on ENOMEM. */
size_t dbuf_room(struct dbuf *b, size_t n);
/* The contents as a string: "" when empty. Borrowed. */
const char *dbuf_str(const struct dbuf *b);
/* Empties the buffer, keeping its memory for the next use. */
void dbuf_reset(struct dbuf *b);
/* Frees the memory; the buffer is empty and keeps its max. */
void dbuf_free(struct dbuf *b);
/* Hands the bytes over (NUL-terminated, caller frees; NULL if never
 * grown), their length in *len if len is not NULL; the buffer is empty. */
char *dbuf_take(struct dbuf *b, size_t *len);

/* Makes room for at least `need` elements of el bytes in the array *v of
 * *cap elements: doubling from 8, so appends are amortised O(1). Returns
 * 0, or -ENOMEM (on overflow too) leaving *v and *cap as they were. */
int vec_reserve_(void **v, size_t *cap, size_t need, size_t el)
	__attribute__((warn_unused_result));
#define vec_reserve(v, cap, need) \
	((size_t)(need) <= (cap) ? 0 \
	 : vec_reserve_((void **)&(v), &(cap), (need), sizeof(*(v))))

#endif /* SHADOW_DBUF_H */
