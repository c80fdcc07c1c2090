/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Endpoint names: method + path template, the key every per-endpoint
 * counter and divergence signature is grouped by. "/users/17?x=1" becomes
 * "/users/{id}": segments that are all digits, UUIDs, or runs of 16 or more
 * hex digits are templated as {id}. Explicit patterns (--endpoint), such
 * as "/orders/{order}/items/{item}" or "POST /orders/{id}", win over the
 * automatic rule; the first pattern added that matches is used.
 */
#ifndef SHADOW_ENDPOINT_H
#define SHADOW_ENDPOINT_H

#include <stddef.h>

struct endpoint_rules;

/*
 * Counting by endpoint, one rule for the store (shadow-dump stats) and the
 * metrics (the endpoint label) alike, so that both list the same names: an
 * exchange without an endpoint counts as ENDPOINT_NONE; the first
 * ENDPOINT_MAX_COUNTED names a daemon counts are each counted apart, and
 * every later one together under ENDPOINT_OTHER. The bound is the metrics'
 * (one series per endpoint and counter: a flood of untemplated paths must
 * not flood Prometheus); neither name can be an endpoint's, which starts
 * with a method.
 */
#define ENDPOINT_MAX_COUNTED 500
#define ENDPOINT_NONE "(none)"
#define ENDPOINT_OTHER "(other)"

/* Returns an empty rule set, or NULL on ENOMEM. */
struct endpoint_rules *endpoint_rules_new(void);
/* Adds an explicit template: "[METHOD ]/seg/{name}/...". A {name} stands
 * for exactly one non-empty segment; a trailing "{name...}" for one or
 * more. Returns 0, -EINVAL with a one-line reason in err for a bad
 * pattern, or -ENOMEM. pattern is copied. */
int endpoint_rules_add(struct endpoint_rules *r, const char *pattern,
		       char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Number of patterns added. */
size_t endpoint_rules_count(const struct endpoint_rules *r);
/* Returns the malloc'd endpoint name "METHOD /path/{template}" (caller
 * frees) for a request-target in origin form ("/a/b?q"), absolute form
 * ("http://h/a/b") or "*"; r may be NULL (automatic rule only). NULL on
 * ENOMEM. The path part is cut at 512 bytes. */
char *endpoint_name(const struct endpoint_rules *r, const char *method,
		    const char *target);
/* The same name written into out, which has room for
 * endpoint_name_max() bytes; returns its length (the NUL not counted). */
size_t endpoint_write(const struct endpoint_rules *r, const char *method,
		      const char *target, char *out);
/* The most bytes endpoint_write() writes, NUL included, for a method of
 * at most mlen bytes and a target of at most tlen. */
size_t endpoint_name_max(const struct endpoint_rules *r, size_t mlen,
			 size_t tlen);
/* Frees the rule set; NULL ok. */
void endpoint_rules_free(struct endpoint_rules *r);

#endif /* SHADOW_ENDPOINT_H */
