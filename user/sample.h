/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Sticky sampling (--sample RATE, --sample-key KEY).
 *
 * The decision is a pure function of the key bytes, so the same key gets the
 * same decision in every process, after every restart and on every host: a
 * fleet of agents samples the same users. To reproduce it elsewhere:
 *
 *     h     = XXH64(key bytes, length, seed = SAMPLE_SEED)   (xxHash 64-bit)
 *     value = (h >> 11) * 2^-53                               (in [0, 1))
 *     sampled iff value < RATE
 *
 * RATE 1 samples everything, RATE 0 nothing, and a larger RATE samples a
 * superset of the keys a smaller one does.
 *
 * Key bytes, by --sample-key (no percent-decoding, no case folding):
 *   request      method SP target, as captured: "GET /users/7?x=1"
 *   path         the target up to the first '?': "/users/7"
 *   client-ip    the address part of the client: "10.0.0.7", "::1"
 *   header:NAME  the first NAME header's value (name case-insensitive)
 *   cookie:NAME  the value of the first NAME=value pair in any Cookie header
 *                (name case-sensitive, value as sent, quotes kept)
 *   query:NAME   the value of the first NAME= parameter of the query
 *                ("?NAME" alone gives the empty value)
 * A request without the key (no such header/cookie/parameter, unknown client)
 * falls back to the `request` key.
 *
 * Test vectors (seed SAMPLE_SEED), computed with an independent XXH64:
 *   ""                  h = 0xda9d46c4cc8a32e8  value = 0.8539623480287808
 *   "alice"             h = 0x92b1565778760cb8  value = 0.5730184520293379
 *   "GET /"             h = 0xeeb2777ee6d8387c  value = 0.9324106869524663
 *   "user-42"           h = 0x4a68082dc1452c7b  value = 0.29064990155281534
 *   "GET /users/7?x=1"  h = 0x98dec4c65d1f1024  value = 0.5971491798674118
 */
#ifndef SHADOW_SAMPLE_H
#define SHADOW_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct exchange;

/* ASCII "shadow" as a big-endian integer. Never change it: it would move
 * every fleet's sample. */
#define SAMPLE_SEED 0x736861646F77ull

enum sample_key_kind {
	SAMPLE_KEY_REQUEST,
	SAMPLE_KEY_PATH,
	SAMPLE_KEY_CLIENT_IP,
	SAMPLE_KEY_HEADER,
	SAMPLE_KEY_COOKIE,
	SAMPLE_KEY_QUERY,
};

struct sample_stats {
	uint64_t seen;     /* exchanges decided */
	uint64_t sampled;  /* of which sampled */
	uint64_t fallback; /* had no key, used `request` (when 0 < rate < 1) */
};

struct sample;

/* Parses the key spec (NULL means "request") and checks 0 <= rate <= 1.
 * Returns 0 and a sampler in *out (caller frees with sample_free()), or
 * -EINVAL with a one-line message in err. */
int sample_new(double rate, const char *key_spec, struct sample **out,
	       char *err, size_t errlen) __attribute__((warn_unused_result));
/* Accepts NULL. */
void sample_free(struct sample *s);

/* Whether to replay x (borrowed). Counts the decision in the stats. */
bool sample_decide(struct sample *s, const struct exchange *x);
/* The value in [0, 1) that x's key maps to (see above); *fell_back (may be
 * NULL) tells whether the `request` key stood in for a missing one. */
double sample_exchange_value(const struct sample *s, const struct exchange *x,
			     bool *fell_back);
/* XXH64 of the bytes with SAMPLE_SEED. */
uint64_t sample_hash(const void *key, size_t len);
/* (sample_hash(key) >> 11) * 2^-53, in [0, 1). */
double sample_value(const void *key, size_t len);
/* The same decision in integers, as the kernel makes it: a key is sampled
 * iff (sample_hash(key) >> 11) < sample_below(rate), i.e.
 * ceil(rate * 2^53) (0 for rate 0, 2^53 for rate 1). */
uint64_t sample_below(double rate);
/* Whether the kernel can decide for s: the key is `request` or `path`
 * (both in the request line), or the rate is 0 or 1 (no key needed). */
bool sample_in_kernel(const struct sample *s);

const struct sample_stats *sample_stats(const struct sample *s);
enum sample_key_kind sample_kind(const struct sample *s);

#endif /* SHADOW_SAMPLE_H */
