// SPDX-License-Identifier: BSD-2-Clause
#include "divergence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message.h"
#include "util/utf8.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A new NUL-terminated base64 string of data (caller frees), NULL on ENOMEM. */
static char *base64(const uint8_t *p, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64[p[i] >> 2];
		*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64[p[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64[p[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = b64[(p[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

int divergence_set_body(json_t *obj, const void *data, size_t len, bool truncated)
{
	const uint8_t *p = data ? data : (const uint8_t *)"";
	size_t cut = len;
	json_t *s;
	char *enc;
	int err = -ENOMEM;

	if (!data)
		len = cut = 0;
	if (len > DIVERGENCE_BODY_MAX) {
		cut = DIVERGENCE_BODY_MAX;
		/* do not split a UTF-8 sequence: back off continuation bytes */
		for (int k = 0; k < 3 && cut > 0 && (p[cut] & 0xC0) == 0x80; k++)
			cut--;
		truncated = true;
	}
	/* jansson rejects invalid UTF-8, which is exactly the test we need */
	s = json_stringn((const char *)p, cut);
	if (s) {
		if (json_object_set_new(obj, "body", s))
			goto cleanup;
	} else {
		if (len > DIVERGENCE_BODY_MAX)
			cut = DIVERGENCE_BODY_MAX;
		enc = base64(p, cut);
		if (!enc)
			goto cleanup;
		s = json_string(enc);
		free(enc);
		if (!s || json_object_set_new(obj, "body_base64", s))
			goto cleanup;
	}
	if (truncated && json_object_set_new(obj, "body_truncated", json_true()))
		goto cleanup;
	err = 0;
cleanup:
	return err;
}

/* A JSON string of a C string from the wire (method, target, a header
 * name or value), by the rule diff.c's header records follow too, so one
 * header value reads the same in a record's headers and in its diff. */
static json_t *wire_string(const char *s)
{
	return s ? utf8_json_string(s, strlen(s)) : NULL;
}

json_t *divergence_headers(const struct headers *h)
{
	json_t *arr = json_array(), *pair;

	if (!arr)
		return NULL;
	for (size_t i = 0; h && i < h->n; i++) {
		pair = json_pack("[o o]", wire_string(h->v[i].name),
				 wire_string(h->v[i].value));
		if (!pair || json_array_append_new(arr, pair)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* A deep copy of a differ part, or the "no divergence" part when NULL. */
static json_t *part_copy(const json_t *part)
{
	if (!part)
		return json_pack("{s b s s}", "diverged", 0, "summary", "");
	return json_deep_copy(part);
}

static json_t *response_object(const struct http_response *r, double latency_ms)
{
	json_t *o = json_object(), *h = NULL;

	if (!o)
		return NULL;
	h = divergence_headers(&r->headers);
	if (!h || json_object_set_new(o, "status", json_integer(r->status)) ||
	    json_object_set_new(o, "headers", h))
		goto fail;
	h = NULL;
	if (divergence_set_body(o, r->decoded.data, r->decoded.len,
			    r->flags & MESSAGE_TRUNCATED))
		goto fail;
	if (json_object_set_new(o, "latency_ms", json_real(latency_ms)))
		goto fail;
	return o;
fail:
	json_decref(h);
	json_decref(o);
	return NULL;
}

int divergence_build(const struct exchange *x, const struct http_response *cand,
		 double cand_latency_ms, const json_t *status,
		 const json_t *headers, const json_t *body, json_t **out)
{
	json_t *rec = NULL, *req = NULL, *prim = NULL, *cnd = NULL;
	double prim_ms = 0;
	int err = -ENOMEM;

	if (!x || !out)
		return -EINVAL;
	if (x->t_last_resp_ns >= x->t_first_req_ns)
		prim_ms = (double)(x->t_last_resp_ns - x->t_first_req_ns) / 1e6;

	req = json_pack("{s o s o s o}",
			"method", wire_string(x->req.method ? x->req.method : ""),
			"target", wire_string(x->req.target ? x->req.target : ""),
			"headers", divergence_headers(&x->req.headers));
	if (!req || divergence_set_body(req, x->req.body.data, x->req.body.len,
				    x->req.flags & MESSAGE_TRUNCATED))
		goto cleanup;
	prim = response_object(&x->resp, prim_ms);
	if (!prim)
		goto cleanup;
	cnd = cand ? response_object(cand, cand_latency_ms) : json_null();
	if (!cnd)
		goto cleanup;
	rec = json_pack("{s o s O s O s O s o s o s o}",
			"endpoint", wire_string(x->endpoint ? x->endpoint : ""),
			"request", req, "primary", prim, "candidate", cnd,
			"status", part_copy(status),
			"headers", part_copy(headers),
			"body", part_copy(body));
	if (!rec)
		goto cleanup;
	*out = rec;
	err = 0;
cleanup:
	json_decref(req);
	json_decref(prim);
	json_decref(cnd);
	return err;
}

static bool name_redacted(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; name && i < n; i++)
		if (names[i] && !strcasecmp(name, names[i]))
			return true;
	return false;
}

static size_t redact_array(json_t *arr, const char *const *names, size_t n)
{
	size_t i, hits = 0;
	json_t *pair;

	json_array_foreach(arr, i, pair) {
		if (json_array_size(pair) < 2 ||
		    !name_redacted(json_string_value(json_array_get(pair, 0)),
				   names, n))
			continue;
		if (!json_array_set_new(pair, 1, json_string("[redacted]")))
			hits++;
	}
	return hits;
}

size_t divergence_redact(json_t *obj, const char *const *names, size_t n)
{
	static const char *const sides[] = { "request", "primary", "candidate" };
	size_t hits = 0, i;
	json_t *d;

	for (size_t s = 0; s < 3; s++)
		hits += redact_array(json_object_get(json_object_get(obj, sides[s]),
						     "headers"), names, n);
	json_array_foreach(json_object_get(json_object_get(obj, "headers"), "diffs"),
			   i, d) {
		if (!name_redacted(json_string_value(json_object_get(d, "name")),
				   names, n))
			continue;
		for (size_t s = 1; s < 3; s++) {
			json_t *v = json_object_get(d, sides[s]);

			if (v && !json_is_null(v) &&
			    !json_object_set_new(d, sides[s], json_string("[redacted]")))
				hits++;
		}
	}
	return hits;
}
