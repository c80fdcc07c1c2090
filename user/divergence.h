/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The divergence record: the JSON object DESIGN.md ("The divergence record")
 * specifies, built from an exchange, the candidate's response and the three
 * part objects the differ produced. The store adds "id" and "time" and
 * redacts secrets; this module only shapes the record.
 */
#ifndef SHADOW_DIVERGENCE_H
#define SHADOW_DIVERGENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct exchange;
struct http_response;
struct headers;

/* Bodies are stored up to this many bytes; longer ones are cut (at a UTF-8
 * character boundary when the body is text) and get "body_truncated": true. */
#define DIVERGENCE_BODY_MAX (64 * 1024)

/*
 * Builds a divergence record into *out (a new reference the caller owns).
 * x: the request and the primary's response (borrowed); cand: the
 * candidate's response, NULL when there is none ("candidate": null);
 * cand_latency_ms: the shadow leg's latency; status/headers/body: the
 * differ's {diverged, summary, diffs} objects, borrowed (the record holds
 * deep copies, so later redaction never touches the caller's objects); a
 * NULL part becomes {"diverged": false, "summary": ""}.
 * Returns 0, -EINVAL (x NULL) or -ENOMEM (*out untouched).
 */
int divergence_build(const struct exchange *x, const struct http_response *cand,
		 double cand_latency_ms, const json_t *status,
		 const json_t *headers, const json_t *body, json_t **out)
	__attribute__((warn_unused_result));

/*
 * Sets "body" (valid UTF-8) or "body_base64" (anything else) on obj from
 * len bytes at data, at most DIVERGENCE_BODY_MAX of them, plus
 * "body_truncated": true when cut or when `truncated` says the capture was
 * already cut. Returns 0 or -ENOMEM.
 */
int divergence_set_body(json_t *obj, const void *data, size_t len, bool truncated)
	__attribute__((warn_unused_result));

/* A new JSON array [[name, value], ...] of h (caller owns), NULL on ENOMEM. */
json_t *divergence_headers(const struct headers *h);

/*
 * Replaces with "[redacted]" every value in obj's "request", "primary" and
 * "candidate" header arrays whose name (case-insensitive) is one of
 * names[0..n), and the "primary"/"candidate" values of the header diffs
 * under "headers"."diffs" of such names. Returns how many values it
 * replaced. obj is modified in place.
 */
size_t divergence_redact(json_t *obj, const char *const *names, size_t n);

#endif /* SHADOW_DIVERGENCE_H */
