/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Content decoding (RFC 9110 Content-Encoding): gzip / x-gzip, deflate
 * (zlib-wrapped, or raw as some servers send it), br, zstd, identity, and
 * lists of them ("gzip, br" is undone right to left). A leaf helper: bytes
 * in, bytes out, with a hard cap on the output.
 */
#ifndef SHADOW_DECODE_H
#define SHADOW_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest number of codings in one Content-Encoding list. */
#define DECODE_MAX_LAYERS 4

struct decode_result {
	uint8_t *data;  /* malloc'd, NUL-terminated at len; caller frees */
	size_t len;
	bool truncated; /* output reached max_out: data holds a prefix */
	bool partial;   /* input ended inside the encoded stream */
};

/* Whether `coding` (a Content-Encoding value; NULL or "" = none) names
 * only codings this module can undo. */
bool decode_supported(const char *coding);

/* Decodes in[0..len) (borrowed) per `coding` into res, producing at most
 * max_out bytes. Input that ends inside the encoded stream is an error
 * unless allow_partial (a body cut at --max-body), in which case what was
 * decoded is returned with res->partial set. Returns 0, -ENOTSUP (unknown
 * coding), -EINVAL (corrupt data, or cut and !allow_partial) or -ENOMEM;
 * res->data is NULL on error. */
int decode_body(const char *coding, const uint8_t *in, size_t len,
		size_t max_out, bool allow_partial, struct decode_result *res)
	__attribute__((warn_unused_result));

#endif /* SHADOW_DECODE_H */
