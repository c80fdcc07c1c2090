// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target for the differ. Input: one flags byte, then two bodies
 * separated by the first 0xff byte (never valid in UTF-8, so JSON and text
 * bodies lose nothing). Checks no crash, no leak, and that "equal" is
 * symmetric when no tolerance is set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "json_diff.h"
#include "jsonpath.h"
#include "message.h"

static struct jsonpath_set *paths;
static struct diff_rules *rules;

static void setup(void)
{
	static const char *const ignore[] = { "$..updated_at", "$.a[1]", "$['x y']",
					      "$.items[*].id" };
	static const char *const unordered[] = { "$..tags", "$[*]", "$.items" };

	paths = jsonpath_set_new();
	rules = diff_rules_new();
	if (!paths || !rules)
		abort();
	for (size_t i = 0; i < sizeof(ignore) / sizeof(*ignore); i++)
		if (jsonpath_set_add(paths, ignore[i], JSON_DIFF_IGNORE, NULL, 0) ||
		    diff_rules_ignore_json(rules, ignore[i], NULL, 0))
			abort();
	for (size_t i = 0; i < sizeof(unordered) / sizeof(*unordered); i++)
		if (jsonpath_set_add(paths, unordered[i], JSON_DIFF_UNORDERED, NULL, 0) ||
		    diff_rules_unordered(rules, unordered[i], NULL, 0))
			abort();
}

static size_t diff_total(const struct json_diff_opts *o, const struct json_doc *a,
			 const struct json_doc *b)
{
	json_t *diffs = json_array();
	size_t total = 0;

	if (!diffs || json_diff(o, a, b, diffs, &total))
		abort();
	json_decref(diffs);
	return total;
}

static void response(struct http_response *r, int status, const char *ct,
		     const uint8_t *body, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
	if (headers_add(&r->headers, "Content-Type", 12, ct, strlen(ct)) ||
	    body_set(&r->decoded, body, len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b, *sep;
	size_t alen, blen;
	unsigned flags;

	if (!paths)
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	a = data + 1;
	sep = memchr(a, 0xff, size - 1);
	alen = sep ? (size_t)(sep - a) : size - 1;
	b = sep ? sep + 1 : a + alen;
	blen = size - 1 - alen - (sep ? 1 : 0);

	/* the JSON layer directly, with exact-size copies so ASan sees
	 * every overread */
	uint8_t *ca = malloc(alen ? alen : 1), *cb = malloc(blen ? blen : 1);
	struct json_doc *da = NULL, *db = NULL;

	memcpy(ca, a, alen);
	memcpy(cb, b, blen);
	if (json_doc_parse(ca, alen, &da, NULL, 0) == JSON_DOC_OK &&
	    json_doc_parse(cb, blen, &db, NULL, 0) == JSON_DOC_OK) {
		struct json_diff_opts o = {
			.paths = (flags & 1) ? paths : NULL,
			.tolerance = (flags & 2) ? 1e-6 : 0,
			.max_diffs = (flags & 4) ? 2 : 50,
			.value_cap = (flags & 8) ? 8 : 256,
		};
		size_t ab = diff_total(&o, da, db), ba = diff_total(&o, db, da);

		if (o.tolerance == 0 && (ab == 0) != (ba == 0))
			__builtin_trap();
		if (diff_total(&o, da, da) != 0)
			__builtin_trap();
	}
	json_doc_free(da);
	json_doc_free(db);

	/* the whole differ, with and without a noise pair */
	struct http_response p, c;
	struct diff_result r;
	const char *ct = (flags & 16) ? "text/plain" : "application/json";

	response(&p, 200, ct, ca, alen);
	response(&c, (flags & 32) ? 500 : 200, ct, cb, blen);
	if (diff_responses((flags & 1) ? rules : NULL, &p, &c,
			   (flags & 64) ? &c : NULL, (flags & 64) ? &p : NULL, &r))
		abort();
	/* the pair (c, p) itself as noise cancels every difference that was
	 * collected (past DIFF_MAX_COLLECTED only the count is known) */
	if ((flags & 64) && (r.status.diverged || r.headers.diverged ||
			     json_array_size(r.body.diffs) > 0))
		__builtin_trap();
	diff_result_clean(&r);
	http_response_clean(&p);
	http_response_clean(&c);
	free(ca);
	free(cb);
	return 0;
}
