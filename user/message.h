/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * HTTP messages as every stage after http1 sees them: a captured request, a
 * response (the primary's, captured; the candidate's, received by replay),
 * and the exchange that pairs a captured request with the primary's
 * response. http1.c builds exchanges; replay.c builds candidate responses;
 * diff.c compares responses; the store records them. Each struct owns all
 * of its memory (a request's method and target belong to its exchange);
 * *_clean() frees it and leaves a zeroed struct.
 */
#ifndef SHADOW_MESSAGE_H
#define SHADOW_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct endpoint_rules;

struct header {
	char *name;  /* as sent (case kept), NUL-terminated */
	char *value; /* as sent, surrounding whitespace trimmed; in the
		      * allocation of name (one per header, not two) */
};

/* Headers in the order they were sent; repeats kept. */
struct headers {
	struct header *v;
	size_t n, cap;
};

/* A body. `data` is NUL-terminated one byte past `len` for convenience. */
struct body {
	uint8_t *data;
	size_t len;
};

enum message_flags {
	/* The body went over --max-body: `raw`/`decoded` hold a prefix only,
	 * and the differ does not compare bodies. */
	MESSAGE_TRUNCATED = 1u << 0,
	/* Content-Encoding is unknown or its data is corrupt: `decoded` is a
	 * copy of `raw`. */
	MESSAGE_DECODE_FAILED = 1u << 1,
	/* The body was not captured (sendfile from an unreadable file). */
	MESSAGE_BODY_UNAVAILABLE = 1u << 2,
	/* Response only: not captured at all, on purpose. The kernel left
	 * the exchange unsampled and passed its answer over (status 0, no
	 * headers, no body); only the request is here, to be counted. */
	MESSAGE_UNCOPIED = 1u << 3,
	/* Request only: the kernel copied its request line alone (an
	 * unsampled bodiless head): method and target, no headers. */
	MESSAGE_HEAD_UNCOPIED = 1u << 4,
	/* Request only, with MESSAGE_HEAD_UNCOPIED: sampled, but passed over
	 * by the kernel all the same, the daemon shedding at the time (its
	 * replay queue full, or the candidate's breaker open). */
	MESSAGE_SHED_QUEUE = 1u << 5,
	MESSAGE_SHED_BREAKER = 1u << 6,
};

struct http_request {
	const char *method; /* "GET"; in the exchange's names */
	const char *target; /* request-target as sent: "/users/7?x=1"; ditto */
	uint8_t http_major, http_minor;
	struct headers headers;
	struct body body; /* transfer coding removed (de-chunked) */
	unsigned flags;   /* enum message_flags */
};

struct http_response {
	int status;
	struct headers headers;
	struct body raw;     /* transfer coding removed, content coding kept */
	struct body decoded; /* content coding removed too (what is diffed) */
	unsigned flags;      /* enum message_flags */
};

struct exchange {
	uint64_t seq; /* capture order, from 1 */
	uint32_t tgid, fd, gen;
	char client[64];   /* "127.0.0.1:53412" or "[::1]:53412", "" if unknown */
	const char *endpoint; /* "GET /users/{id}"; in names */
	struct http_request req;
	struct http_response resp;
	uint64_t t_first_req_ns;  /* CLOCK_MONOTONIC: first request byte read */
	uint64_t t_last_resp_ns;  /* CLOCK_MONOTONIC: last response byte written */
	/* What req.method, req.target and endpoint point into, one after the
	 * other (exchange_set_line()): one allocation per request, not
	 * three. Owned; names_size bytes. */
	char *names;
	size_t names_size;
};

/* Appends a copy of name/value. Returns 0 or -ENOMEM. */
int headers_add(struct headers *h, const char *name, size_t name_len,
		const char *value, size_t value_len)
	__attribute__((warn_unused_result));
/* First value of `name` (case-insensitive) or NULL; borrowed from `h`. */
const char *headers_get(const struct headers *h, const char *name);
/* Deep copy of src into dst (dst is overwritten, not freed). 0 or -ENOMEM. */
int headers_copy(struct headers *dst, const struct headers *src)
	__attribute__((warn_unused_result));
void headers_clean(struct headers *h);

/* Sets b to a copy of len bytes (NUL-terminated). 0 or -ENOMEM. */
int body_set(struct body *b, const void *data, size_t len)
	__attribute__((warn_unused_result));
void body_clean(struct body *b);

/* Derives resp->decoded (empty, overwritten) from resp->raw by its
 * Content-Encoding, at most max_body bytes, so the differ sees both sides
 * decoded; a decoded body cut there flags MESSAGE_TRUNCATED. An unknown or
 * corrupt coding keeps a copy of the raw bytes and flags
 * MESSAGE_DECODE_FAILED. 0 or -ENOMEM. */
int http_response_decode(struct http_response *resp, size_t max_body)
	__attribute__((warn_unused_result));
void http_request_clean(struct http_request *r);
void http_response_clean(struct http_response *r);
/* Returns a zeroed heap exchange (exchange_free()), or NULL on ENOMEM. */
struct exchange *exchange_new(void);
/* Sets x's request line to copies of method (mlen bytes) and target (tlen
 * bytes), and x->endpoint to the endpoint name they make under rules
 * (borrowed, NULL ok: endpoint.h), replacing what x had; neither may
 * point into x. Bytes past a NUL in either do not count. Returns 0 or
 * -ENOMEM (x unchanged). */
int exchange_set_line(struct exchange *x, const char *method, size_t mlen,
		      const char *target, size_t tlen,
		      const struct endpoint_rules *rules)
	__attribute__((warn_unused_result));
void exchange_clean(struct exchange *x);
/* Empties x for another request like exchange_clean(), but keeps the
 * memory of x->names for exchange_set_line() to reuse. */
void exchange_reset(struct exchange *x);
/* Frees a heap exchange and everything it owns; accepts NULL. */
void exchange_free(struct exchange *x);

#endif /* SHADOW_MESSAGE_H */
