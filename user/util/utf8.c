// SPDX-License-Identifier: BSD-2-Clause
#include "utf8.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool utf8_is_text(const void *s, size_t n)
{
	const uint8_t *u = s;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(u + i, n - i);

		if (!l || !u[i])
			return false;
		i += l;
	}
	return true;
}

size_t utf8_put(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Four hex digits at s[0..n) into *v; the index of the first bad one (or
 * of the end of s) otherwise, 4 on success. Stops at the first bad digit,
 * so a NUL-terminated s is never read past its NUL. */
static size_t hex4(const uint8_t *s, size_t n, uint32_t *v)
{
	*v = 0;
	for (size_t i = 0; i < 4; i++) {
		uint8_t c = i < n ? s[i] : 0;
		uint32_t h;

		if (c >= '0' && c <= '9')
			h = c - '0';
		else if (c >= 'a' && c <= 'f')
			h = c - 'a' + 10u;
		else if (c >= 'A' && c <= 'F')
			h = c - 'A' + 10u;
		else
			return i;
		*v = *v << 4 | h;
	}
	return 4;
}

enum utf8_escape utf8_read_escape(const uint8_t *s, size_t n, uint32_t *cp,
				  size_t *used)
{
	uint32_t hi, lo;
	size_t k = hex4(s, n, &hi);

	*used = k;
	if (k < 4)
		return UTF8_ESCAPE_BAD_HEX;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return UTF8_ESCAPE_LONE_LOW;
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = hi;
		return UTF8_ESCAPE_OK;
	}
	if (n < 6 || s[4] != '\\' || s[5] != 'u')
		return UTF8_ESCAPE_NO_LOW;
	k = hex4(s + 6, n - 6, &lo);
	*used = 6 + k;
	if (k < 4)
		return UTF8_ESCAPE_BAD_HEX;
	if (lo < 0xdc00 || lo > 0xdfff)
		return UTF8_ESCAPE_BAD_LOW;
	*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return UTF8_ESCAPE_OK;
}

json_t *utf8_json_string(const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	char *buf;
	size_t k = 0;
	json_t *v;

	if (utf8_is_text(s, n))
		return json_stringn(s, n);
	/* each byte becomes at most the 3 bytes of U+FFFD */
	buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = u[i] ? utf8_seq_len(u + i, n - i) : 0;

		if (l) {
			memcpy(buf + k, s + i, l);
			k += l;
			i += l;
		} else {
			memcpy(buf + k, "\xef\xbf\xbd", 3);
			k += 3;
			i++;
		}
	}
	v = json_stringn(buf, k);
	free(buf);
	return v;
}
