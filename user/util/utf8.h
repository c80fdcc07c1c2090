/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF) for the JSON parsers and the JSON writers: checking a
 * sequence, encoding a code point, reading a JSON \u escape, and the one
 * rule for wire bytes that must become a JSON string.
 */
#ifndef SHADOW_UTF8_H
#define SHADOW_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

/* Length of the valid UTF-8 sequence at s[0..n), n > 0: 1 for any ASCII
 * byte (NUL too), 2 to 4 for a valid multi-byte sequence, 0 if s does not
 * start one. Inline because the JSON parser calls it for every non-ASCII
 * byte of a document. */
static inline size_t utf8_seq_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t k;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* no overlong 3-byte forms */
	else if (c == 0xed)
		hi = 0x9f; /* no UTF-16 surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* no overlong 4-byte forms */
	else if (c == 0xf4)
		hi = 0x8f; /* nothing above U+10FFFF */
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* Valid UTF-8 with no NUL byte: text a JSON string holds as it is. */
bool utf8_is_text(const void *s, size_t n);

/* Writes code point cp (at most U+10FFFF, not a surrogate) to o, which has
 * room for 4 bytes; returns how many it wrote (1 to 4). */
size_t utf8_put(uint8_t *o, uint32_t cp);

enum utf8_escape {
	UTF8_ESCAPE_OK,
	UTF8_ESCAPE_BAD_HEX,  /* not 4 hex digits where they must be */
	UTF8_ESCAPE_LONE_LOW, /* a low surrogate with no high one before it */
	UTF8_ESCAPE_NO_LOW,   /* a high surrogate not followed by "\u" */
	UTF8_ESCAPE_BAD_LOW,  /* a high surrogate followed by no low one */
};

/* Reads the code point of a JSON \u escape; s[0..n) is the text after its
 * "\u". A high surrogate takes the "\uXXXX" of its low half with it.
 * *used receives how many bytes of s were read: on success 4 or 10, on a
 * failure the offset where the escape went wrong (the bad hex digit, or
 * the end of the surrogate read last). *cp is set on success only. */
enum utf8_escape utf8_read_escape(const uint8_t *s, size_t n, uint32_t *cp,
				  size_t *used);

/* The JSON string for bytes from the wire (a header, a request target):
 * valid UTF-8 kept as it is, each byte that starts no valid sequence, and
 * each NUL, replaced by U+FFFD. Returns a new reference, NULL when out of
 * memory. */
struct json_t *utf8_json_string(const char *s, size_t n);

#endif /* SHADOW_UTF8_H */
