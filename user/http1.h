/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * HTTP/1.x exchange stage: a conn_sink (user/conn.h) that parses each
 * connection's inbound stream as requests and its outbound stream as
 * responses (http_parser), pairs them in order (pipelining included) and
 * hands each complete pair on as a struct exchange.
 *
 * Pairing is never guessed. Where a gap, a parse error or a midstream join
 * loses track of how many messages went by, the affected exchanges are
 * dropped (counted by reason) and the streams resync: the inbound one at a
 * recognised request line, the outbound one at a status line. A gap that
 * falls inside a body of known length keeps the framing: the request is
 * dropped, a response is handed on marked MESSAGE_BODY_UNAVAILABLE.
 *
 * A request found by a resync (a "barrier") is paired only with a response
 * that began after it was read, and only if the connection was at rest
 * then: the previous response had ended, no unframed outbound byte came
 * after it, the request began a read() and the client was never seen
 * pipelining. Such pairings (and the ones after them) are held back until
 * a later request begins at rest with no spare response seen and the
 * outbound stream is known whole past it; a spare response or outbound
 * loss drops them instead, as does the close. The remaining assumption:
 * a client not seen pipelining does not pipeline.
 *
 * Exchanges are handed on in request order, from inside data()/close().
 */
#ifndef SHADOW_HTTP1_H
#define SHADOW_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct exchange;
struct endpoint_rules;

#define HTTP1_DEFAULT_MAX_BODY (1u << 20)
#define HTTP1_DEFAULT_MAX_HEADER_BYTES (64u << 10)
/* Requests in flight on one connection (pipelining depth) tracked; a power
 * of two. */
#define HTTP1_MAX_PIPELINE 64

struct http1_config {
	size_t max_body;         /* 0: HTTP1_DEFAULT_MAX_BODY */
	size_t max_header_bytes; /* request/status line + headers; 0: default */
	const struct endpoint_rules *endpoints; /* borrowed; NULL ok */
};

/* A request that is not handed on is counted once, under gap_drops,
 * parse_errors, oversize, upgrades (once per connection), unpaired,
 * ambiguous, overflow or nomem; unpaired also counts responses that no
 * request could be matched to (their request was lost, or unsolicited). */
struct http1_stats {
	uint64_t requests;      /* request messages seen (started) */
	uint64_t responses;     /* final (non-1xx) responses seen */
	uint64_t interim;       /* 1xx responses skipped */
	uint64_t exchanges;     /* handed on */
	uint64_t parse_errors;  /* exchanges lost to a parse error */
	uint64_t gap_drops;     /* exchanges lost to a gap in either stream */
	uint64_t truncated;     /* bodies cut at max_body (still handed on) */
	uint64_t upgrades;      /* connections left for Upgrade / CONNECT */
	uint64_t oversize;      /* header sections over max_header_bytes */
	uint64_t resyncs;       /* times a stream found its framing again */
	uint64_t skipped_bytes; /* bytes passed over while resyncing/untracked */
	uint64_t unpaired;      /* requests without response, or responses
				 * without request (close, unsolicited) */
	uint64_t ambiguous;     /* requests found by a resync whose response
				 * could not be told apart: dropped */
	uint64_t overflow;      /* past HTTP1_MAX_PIPELINE in flight */
	uint64_t decode_errors; /* Content-Encoding unknown or corrupt */
	uint64_t uncopied;      /* answers the kernel passed over, handed on
				 * as MESSAGE_UNCOPIED (also in responses) */
	uint64_t uncopied_unframed; /* of those, ones that could not be
				     * paired: a gap instead */
	uint64_t nomem;         /* allocation failures */
	uint64_t conns;         /* connections opened */
	uint64_t conns_midstream;
};

struct http1;

/* Receives each exchange; takes ownership of x (heap: exchange_free(), or
 * http1_recycle() when it is not kept). */
typedef void (*http1_exchange_cb)(void *ctx, struct exchange *x);

/* Returns a new stage or NULL on ENOMEM. cfg is copied (cfg->endpoints is
 * borrowed for the stage's lifetime); cb/ctx are borrowed. */
struct http1 *http1_new(const struct http1_config *cfg, http1_exchange_cb cb,
			void *ctx);
/* Frees the stage; NULL ok. Close every connection first
 * (conn_table_free() does), or their state leaks. */
void http1_free(struct http1 *h);
/* Counters, borrowed; valid until http1_free(). */
const struct http1_stats *http1_stats(const struct http1 *h);
/* Takes back an exchange h handed on, instead of exchange_free(): its
 * memory serves a later request. Most exchanges are only counted, never
 * kept, and this spares each of them its allocations. */
void http1_recycle(struct http1 *h, struct exchange *x);

/* Whether s[0, n) is one request line, CRLF included, in the grammar of
 * include/request_line.h: where the stage resumes after a gap. */
bool http1_request_line_ok(const char *s, size_t n);

/* The conn_sink_ops to hand conn_table_new() with the struct http1 * as
 * its ctx. */
extern const struct conn_sink_ops http1_sink_ops;

#endif /* SHADOW_HTTP1_H */
