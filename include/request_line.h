/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one grammar of an HTTP/1 request line, for the two places that
 * recognise one without http_parser: the kernel's sampling decision
 * (bpf/sample_key.h) and user space's hunt for a request start after a
 * gap (user/http1.c). tests/unit/sample_key_test.c feeds both one table
 * and requires the same answers.
 *
 *   request-line = method SP target SP "HTTP/1." ("0" / "1") CRLF
 *   method       = 1 to REQUEST_METHOD_MAX of "A"-"Z" "-" "_"
 *   target       = 1 or more visible ASCII characters (0x21-0x7e)
 *
 * That is RFC 9112's request-line with the method's token characters cut
 * to the ones registered methods use (M-SEARCH has the longest name
 * class), so that a line of body or binary bytes is not taken for a
 * request; http_parser then checks the method by name.
 *
 * Plain C over bytes, with no helper calls, so that BPF compiles it too.
 */
#ifndef SHADOW_REQUEST_LINE_H
#define SHADOW_REQUEST_LINE_H

#define REQUEST_METHOD_MAX 15

static inline __attribute__((always_inline)) int
request_method_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_';
}

static inline __attribute__((always_inline)) int
request_target_char(unsigned char ch)
{
	return ch > ' ' && ch < 0x7f;
}

/* The minor version's digit after "HTTP/1.". */
static inline __attribute__((always_inline)) int
request_minor_ok(unsigned char ch)
{
	return ch == '0' || ch == '1';
}

#endif /* SHADOW_REQUEST_LINE_H */
