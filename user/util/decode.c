// SPDX-License-Identifier: BSD-2-Clause
#include "util/decode.h"

#include <brotli/decode.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#include "util/dbuf.h"

enum coding {
	CODING_IDENTITY,
	CODING_GZIP,
	CODING_DEFLATE,
	CODING_BR,
	CODING_ZSTD,
};

/* Output is made in steps of this many bytes at most. */
#define STEP 16384

/* How a decoder's run stopped, when it did not fail. */
enum run_end {
	RUN_PARTIAL, /* the input ended inside the stream */
	RUN_ENDED,   /* the stream ended */
	RUN_FULL,    /* the output reached its cap */
};

static int parse_codings(const char *s, enum coding *v, size_t *n)
{
	*n = 0;
	if (!s)
		return 0;
	while (*s) {
		size_t len;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		len = strcspn(s, ", \t");
		if (!len)
			break;
		if (*n == DECODE_MAX_LAYERS)
			return -ENOTSUP;
		if ((len == 4 && !strncasecmp(s, "gzip", 4)) ||
		    (len == 6 && !strncasecmp(s, "x-gzip", 6)))
			v[(*n)++] = CODING_GZIP;
		else if (len == 7 && !strncasecmp(s, "deflate", 7))
			v[(*n)++] = CODING_DEFLATE;
		else if (len == 2 && !strncasecmp(s, "br", 2))
			v[(*n)++] = CODING_BR;
		else if (len == 4 && !strncasecmp(s, "zstd", 4))
			v[(*n)++] = CODING_ZSTD;
		else if (len == 8 && !strncasecmp(s, "identity", 8))
			;
		else
			return -ENOTSUP;
		s += len;
	}
	return 0;
}

bool decode_supported(const char *coding)
{
	enum coding v[DECODE_MAX_LAYERS];
	size_t n;

	return parse_codings(coding, v, &n) == 0;
}

/* windowBits: 16+MAX_WBITS gzip, MAX_WBITS zlib, -MAX_WBITS raw deflate. */
static int run_zlib(const uint8_t *in, size_t len, int wbits, struct dbuf *o,
		    enum run_end *end)
{
	z_stream z = { 0 };
	int rc = 0, zr;

	*end = RUN_PARTIAL;
	if (inflateInit2(&z, wbits) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = 0;
	for (;;) {
		size_t room, before;

		if (z.avail_in == 0 && len) {
			size_t step = len > (1u << 30) ? (1u << 30) : len;

			z.next_in = (Bytef *)in;
			z.avail_in = (uInt)step;
			in += step;
			len -= step;
		}
		room = dbuf_room(o, STEP);
		if (room == (size_t)-1) {
			rc = -ENOMEM;
			break;
		}
		if (room == 0) {
			*end = RUN_FULL;
			break;
		}
		if (room > (1u << 30))
			room = 1u << 30;
		z.next_out = (Bytef *)o->p + o->len;
		z.avail_out = (uInt)room;
		before = z.avail_out;
		zr = inflate(&z, Z_NO_FLUSH);
		o->len += before - z.avail_out;
		if (zr == Z_STREAM_END) {
			/* gzip allows several members back to back. */
			if (wbits > MAX_WBITS && (z.avail_in || len) &&
			    z.next_in[0] == 0x1f) {
				if (inflateReset(&z) != Z_OK) {
					rc = -EINVAL;
					break;
				}
				continue;
			}
			*end = RUN_ENDED;
			break;
		}
		if (zr == Z_BUF_ERROR && z.avail_in == 0 && len == 0)
			break; /* input ended inside the stream */
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			rc = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
	}
	inflateEnd(&z);
	return rc;
}

static int run_brotli(const uint8_t *in, size_t len, struct dbuf *o,
		      enum run_end *end)
{
	BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
	size_t avail_in = len;
	const uint8_t *next_in = in;
	int rc = 0;

	*end = RUN_PARTIAL;
	if (!s)
		return -ENOMEM;
	for (;;) {
		size_t room = dbuf_room(o, STEP), avail_out;
		uint8_t *next_out;
		BrotliDecoderResult br;

		if (room == (size_t)-1) {
			rc = -ENOMEM;
			break;
		}
		if (room == 0) {
			*end = RUN_FULL;
			break;
		}
		avail_out = room;
		next_out = (uint8_t *)o->p + o->len;
		br = BrotliDecoderDecompressStream(s, &avail_in, &next_in,
						   &avail_out, &next_out, NULL);
		o->len += room - avail_out;
		if (br == BROTLI_DECODER_RESULT_SUCCESS) {
			*end = RUN_ENDED;
			break;
		}
		if (br == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
			break;
		if (br == BROTLI_DECODER_RESULT_ERROR) {
			rc = -EINVAL;
			break;
		}
	}
	BrotliDecoderDestroyInstance(s);
	return rc;
}

static int run_zstd(const uint8_t *in, size_t len, struct dbuf *o,
		    enum run_end *end)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t last = 1;
	int rc = 0;

	*end = RUN_PARTIAL;
	if (!d)
		return -ENOMEM;
	/* Refuse windows above 128 MiB: memory bound for hostile frames. */
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
	for (;;) {
		size_t room = dbuf_room(o, STEP);
		ZSTD_outBuffer ob;

		if (room == (size_t)-1) {
			rc = -ENOMEM;
			break;
		}
		if (room == 0) {
			*end = RUN_FULL;
			break;
		}
		ob.dst = o->p + o->len;
		ob.size = room;
		ob.pos = 0;
		last = ZSTD_decompressStream(d, &ob, &ib);
		o->len += ob.pos;
		if (ZSTD_isError(last)) {
			rc = -EINVAL;
			break;
		}
		if (last == 0 && ib.pos == ib.size) {
			*end = RUN_ENDED;
			break;
		}
		if (ob.pos == 0 && ib.pos == ib.size)
			break; /* needs input we do not have */
	}
	ZSTD_freeDStream(d);
	return rc;
}

int decode_body(const char *coding, const uint8_t *in, size_t len,
		size_t max_out, bool allow_partial, struct decode_result *res)
{
	enum coding v[DECODE_MAX_LAYERS];
	uint8_t *cur = NULL; /* owned intermediate result */
	size_t n, cur_len = len;
	bool partial = false, truncated = false;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = parse_codings(coding, v, &n);
	if (rc < 0)
		return rc;
	for (size_t i = n; i-- > 0;) {
		struct dbuf o = DBUF_INIT(max_out);
		const uint8_t *src = cur ? cur : in;
		enum run_end end = RUN_PARTIAL;

		switch (v[i]) {
		case CODING_GZIP:
			rc = run_zlib(src, cur_len, 16 + MAX_WBITS, &o, &end);
			break;
		case CODING_DEFLATE:
			rc = run_zlib(src, cur_len, MAX_WBITS, &o, &end);
			if (rc == -EINVAL && o.len == 0) {
				rc = run_zlib(src, cur_len, -MAX_WBITS, &o,
					      &end);
			}
			break;
		case CODING_BR:
			rc = run_brotli(src, cur_len, &o, &end);
			break;
		case CODING_ZSTD:
			rc = run_zstd(src, cur_len, &o, &end);
			break;
		default:
			rc = -EINVAL;
			break;
		}
		free(cur);
		cur = (uint8_t *)dbuf_take(&o, &cur_len);
		if (rc < 0)
			goto cleanup;
		if (end == RUN_FULL)
			truncated = true;
		else if (end == RUN_PARTIAL)
			partial = true;
		if (partial && !allow_partial && !truncated) {
			rc = -EINVAL;
			goto cleanup;
		}
		/* A cut intermediate layer makes every later one partial. */
		if (truncated || partial)
			allow_partial = true;
	}
	if (n == 0) {
		size_t keep = len > max_out ? max_out : len;

		cur = malloc(keep + 1);
		if (!cur)
			return -ENOMEM;
		if (keep)
			memcpy(cur, in, keep);
		cur_len = keep;
		truncated = len > max_out;
	} else if (!cur) {
		/* No output at all (max_out 0 or an empty stream). */
		cur = malloc(1);
		if (!cur)
			return -ENOMEM;
		cur_len = 0;
	}
	cur[cur_len] = '\0';
	res->data = cur;
	res->len = cur_len;
	res->truncated = truncated;
	res->partial = partial;
	return 0;
cleanup:
	free(cur);
	return rc;
}
