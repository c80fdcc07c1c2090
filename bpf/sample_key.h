/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The sampling decision made in the kernel, for --sample-key request and
 * path: what a request read must look like for the kernel to decide, and
 * XXH64 over the key, giving the same value as libxxhash and user/sample.c.
 *
 * Compiled twice: into bpf/capture.bpf.c, and into a unit test that holds
 * both against user space (tests/unit/sample_key_test.c). So it is plain C
 * over a byte buffer, with constant loop bounds and masked offsets the
 * verifier can follow, and no helper calls. The buffer must have at least
 * SK_BUF_MIN readable bytes.
 */
#ifndef SHADOW_SAMPLE_KEY_H
#define SHADOW_SAMPLE_KEY_H

#include "request_line.h"

/* Longest request read the kernel decides on; longer ones are copied and
 * decided by user space. */
#define SK_REQ_MAX 4096u
/* Offsets are masked to this window, reads are 8 bytes at most. */
#define SK_MASK 8191u
#define SK_BUF_MIN (SK_MASK + 1 + 8)
/* sample_below(1): every key is sampled. */
#define SK_ALL (1ull << 53)
/* user/sample.c's SAMPLE_SEED: "shadow" in ASCII. */
#define SK_SEED 0x736861646F77ull

#define SK_P1 0x9E3779B185EBCA87ull
#define SK_P2 0xC2B2AE3D27D4EB4Full
#define SK_P3 0x165667B19E3779F9ull
#define SK_P4 0x85EBCA77C2B2AE63ull
#define SK_P5 0x27D4EB2F165667C5ull

/* Unaligned little-endian loads: one instruction in BPF (x86-64 allows
 * them), memcpy in C. */
static __always_inline __u64 sk_load64(const __u8 *d, __u32 off)
{
#ifdef __bpf__
	return *(const __u64 *)(d + (off & SK_MASK));
#else
	__u64 v;

	__builtin_memcpy(&v, d + (off & SK_MASK), sizeof(v));
	return v;
#endif
}

static __always_inline __u32 sk_load32(const __u8 *d, __u32 off)
{
#ifdef __bpf__
	return *(const __u32 *)(d + (off & SK_MASK));
#else
	__u32 v;

	__builtin_memcpy(&v, d + (off & SK_MASK), sizeof(v));
	return v;
#endif
}

static __always_inline __u64 sk_rotl(__u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static __always_inline __u64 sk_round(__u64 acc, __u64 in)
{
	return sk_rotl(acc + in * SK_P2, 31) * SK_P1;
}

static __always_inline __u64 sk_merge(__u64 h, __u64 v)
{
	return (h ^ sk_round(0, v)) * SK_P1 + SK_P4;
}

/* Loops go through SK_LOOP(n, step, ctx): bpf_loop() in BPF, whose
 * callback the verifier checks once (an open-coded loop is checked once
 * per exit point, times everything after it), a plain loop in C. A step
 * returns 1 to stop. */
#ifdef __bpf__
#define SK_LOOP(n, step, ctx) bpf_loop((n), (step), (ctx), 0)
#else
#define SK_LOOP(n, step, ctx)                                          \
	do {                                                           \
		for (__u32 sk_i_ = 0; sk_i_ < (__u32)(n); sk_i_++)     \
			if ((step)(sk_i_, (ctx)))                      \
				break;                                 \
	} while (0)
#endif

#define SK_ONES 0x0101010101010101ull
#define SK_HIGH 0x8080808080808080ull

/* 0x80 in each byte of t that is zero, 0 in the others (no false hits). */
static __always_inline __u64 sk_zero_bytes(__u64 t)
{
	const __u64 lo7 = 0x7f7f7f7f7f7f7f7full;

	return ~(((t & lo7) + lo7) | t | lo7);
}

/* Index of the lowest byte flagged 0x80 in m (m != 0). */
static __always_inline __u32 sk_first_byte(__u64 m)
{
	__u32 j = 0;

	if (!(m & 0xffffffffull)) {
		j += 4;
		m >>= 32;
	}
	if (!(m & 0xffffull)) {
		j += 2;
		m >>= 16;
	}
	if (!(m & 0xffull))
		j += 1;
	return j;
}

/* Flags the bytes of x at positions >= n (n < 8), beyond the data. */
static __always_inline __u64 sk_beyond(__u32 n)
{
	return n >= 8 ? 0 : SK_HIGH & ~((1ull << (n * 8)) - 1);
}

struct sk_hash {
	const __u8 *d;
	__u32 start;
	__u64 v[4];
};

static long sk_hash_step(__u32 i, void *ctx)
{
	struct sk_hash *h = ctx;
	__u32 o = h->start + i * 32;

	h->v[0] = sk_round(h->v[0], sk_load64(h->d, o));
	h->v[1] = sk_round(h->v[1], sk_load64(h->d, o + 8));
	h->v[2] = sk_round(h->v[2], sk_load64(h->d, o + 16));
	h->v[3] = sk_round(h->v[3], sk_load64(h->d, o + 24));
	return 0;
}

/* XXH64(d + start, len, SK_SEED) on a little-endian machine, for
 * len <= SK_REQ_MAX. */
static __always_inline __u64 sk_xxh64(const __u8 *d, __u32 start, __u32 len)
{
	struct sk_hash st = { .d = d, .start = start };
	__u32 i;
	__u64 h;

	if (len > SK_REQ_MAX)
		return 0;
	i = len & ~31u;
	if (len >= 32) {
		st.v[0] = SK_SEED + SK_P1 + SK_P2;
		st.v[1] = SK_SEED + SK_P2;
		st.v[2] = SK_SEED;
		st.v[3] = SK_SEED - SK_P1;
		SK_LOOP(len / 32, sk_hash_step, &st);
		h = sk_rotl(st.v[0], 1) + sk_rotl(st.v[1], 7) +
		    sk_rotl(st.v[2], 12) + sk_rotl(st.v[3], 18);
		h = sk_merge(h, st.v[0]);
		h = sk_merge(h, st.v[1]);
		h = sk_merge(h, st.v[2]);
		h = sk_merge(h, st.v[3]);
	} else {
		h = SK_SEED + SK_P5;
	}
	h += len;
	for (int k = 0; k < 3; k++) {
		if (i + 8 > len)
			break;
		h ^= sk_round(0, sk_load64(d, start + i));
		h = sk_rotl(h, 27) * SK_P1 + SK_P4;
		i += 8;
	}
	if (i + 4 <= len) {
		h ^= (__u64)sk_load32(d, start + i) * SK_P1;
		h = sk_rotl(h, 23) * SK_P2 + SK_P3;
		i += 4;
	}
	for (int k = 0; k < 3; k++) {
		if (i >= len)
			break;
		h ^= (__u64)d[(start + i) & SK_MASK] * SK_P5;
		h = sk_rotl(h, 11) * SK_P1;
		i++;
	}
	h ^= h >> 33;
	h *= SK_P2;
	h ^= h >> 29;
	h *= SK_P3;
	h ^= h >> 32;
	return h;
}

struct sk_request {
	__u32 method_len; /* "GET" */
	__u32 target_len; /* "/users/17?x=1" */
	__u32 path_len;   /* "/users/17" */
};

/* The target's scan, eight bytes a step: up to the first byte that is not
 * visible ASCII, which must be the SP before the version. */
struct sk_target {
	const __u8 *d;
	__u32 len, start;
	__u32 end;  /* offset of that SP; 0: none found */
	__u32 qpos; /* offset of the first '?'; 0: none */
};

static long sk_target_step(__u32 i, void *ctx)
{
	struct sk_target *t = ctx;
	__u32 o = t->start + i * 8;
	__u64 x, t7, stop, q;
	__u32 j;

	if (o >= t->len)
		return 1;
	x = sk_load64(t->d, o);
	t7 = x & 0x7f7f7f7f7f7f7f7full;
	/* Bytes < 0x21 (high bit clear, +0x5f stays under 0x80) and bytes
	 * >= 0x7f (high bit set, or 0x7f + 1 sets it), past the data too. */
	stop = (~((t7 + 0x5f5f5f5f5f5f5f5full) | x) & SK_HIGH) |
	       ((x | (t7 + SK_ONES)) & SK_HIGH) | sk_beyond(t->len - o);
	q = sk_zero_bytes(x ^ (SK_ONES * '?'));
	if (stop)
		q &= (stop & -stop) - 1;
	if (q && !t->qpos)
		t->qpos = o + sk_first_byte(q);
	if (!stop)
		return 0;
	j = sk_first_byte(stop);
	if (o + j < t->len && t->d[(o + j) & SK_MASK] == ' ')
		t->end = o + j;
	return 1;
}

/* The check that the empty line ending the read is the first one: no LF
 * followed by CR or LF before it (the LF at len - 3 is its own). */
struct sk_lines {
	const __u8 *d;
	__u32 lim;
	__u32 bad;
};

/* Whether the 8 bytes at o hold an LF followed by CR or LF, before lim. */
static __always_inline bool sk_lines_word(const struct sk_lines *l, __u32 o)
{
	__u64 x = sk_load64(l->d, o), y = sk_load64(l->d, o + 1);
	__u64 hit = sk_zero_bytes(x ^ (SK_ONES * '\n')) &
		    (sk_zero_bytes(y ^ (SK_ONES * '\r')) |
		     sk_zero_bytes(y ^ (SK_ONES * '\n')));

	return hit & ~sk_beyond(l->lim - o);
}

/* 64 bytes a step: a call of bpf_loop's costs more than a word's check. */
static long sk_lines_step(__u32 i, void *ctx)
{
	struct sk_lines *l = ctx;
	__u32 o = i * 64;

	for (int k = 0; k < 8; k++, o += 8) {
		if (o >= l->lim)
			return 1;
		if (sk_lines_word(l, o)) {
			l->bad = 1;
			return 1;
		}
	}
	return 0;
}

/* Whether d[0, len) is exactly one whole request head: "METHOD SP target
 * SP HTTP/1.x CRLF", header lines, and one empty line, CRLF CRLF, which
 * ends the read, the request line in include/request_line.h's grammar.
 * No LF before the end is followed by CR or LF, so no
 * earlier empty line can end a first request: a read holding two, or a
 * head and its body, is not decided here (nor one shorter than 18 bytes).
 * Header lines are not looked into: the key is in the request line. A
 * body announced by the headers reaches the server in a later read, which
 * cancels the decision before any answer byte is passed over. */
static __always_inline bool sk_parse_request(const __u8 *d, __u32 len,
					     struct sk_request *r)
{
	struct sk_target t = { .d = d, .len = len };
	struct sk_lines l = { .d = d };
	__u32 pos;

	if (len < 18 || len > SK_REQ_MAX)
		return false;
	/* "\r\n\r\n" at the end, as a little-endian word. */
	if (sk_load32(d, len - 4) != 0x0a0d0a0du)
		return false;
	r->method_len = 0;
	for (int k = 0; k <= REQUEST_METHOD_MAX; k++) {
		__u8 ch = d[k];

		if (ch == ' ') {
			r->method_len = k;
			break;
		}
		if (!request_method_char(ch))
			return false;
	}
	if (!r->method_len)
		return false;
	t.start = r->method_len + 1;
	SK_LOOP(SK_REQ_MAX / 8, sk_target_step, &t);
	if (t.end <= t.start || t.end >= SK_REQ_MAX)
		return false;
	r->target_len = t.end - t.start;
	r->path_len = t.qpos && t.qpos < t.end ? t.qpos - t.start
					       : r->target_len;
	pos = t.end + 1;
	/* "HTTP/1." then the minor version, CR, LF. */
	if (pos + 10 > len ||
	    (sk_load64(d, pos) & 0x00ffffffffffffffull) !=
		    0x002e312f50545448ull ||
	    !request_minor_ok(d[(pos + 7) & SK_MASK]) ||
	    d[(pos + 8) & SK_MASK] != '\r' || d[(pos + 9) & SK_MASK] != '\n')
		return false;
	l.lim = len - 3;
	SK_LOOP(SK_REQ_MAX / 64, sk_lines_step, &l);
	return !l.bad;
}

#endif /* SHADOW_SAMPLE_KEY_H */
