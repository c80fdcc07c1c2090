// SPDX-License-Identifier: BSD-2-Clause
#include "diff.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_diff.h"
#include "jsonpath.h"
#include "message.h"
#include "util/dbuf.h"
#include "util/utf8.h"

/* Records collected per part before noise filtering and trimming. */
#define DIFF_MAX_COLLECTED 1000
/* Names listed in a summary before "and N more". */
#define DIFF_SUMMARY_NAMES 5
/* Bytes of a text line in a record. */
#define DIFF_LINE_CAP 256

static const char *const default_ignored[] = {
	"Date", "Connection", "Keep-Alive", "Transfer-Encoding",
	"Content-Length", "Content-Encoding",
};

struct diff_rules {
	char **headers; /* user-ignored header names */
	size_t n_headers, cap_headers;
	struct jsonpath_set *paths; /* JSON_DIFF_IGNORE / _UNORDERED */
	double tolerance;
};

struct diff_rules *diff_rules_new(void)
{
	struct diff_rules *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->paths = jsonpath_set_new();
	if (!r->paths) {
		free(r);
		return NULL;
	}
	return r;
}

void diff_rules_free(struct diff_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_headers; i++)
		free(r->headers[i]);
	free(r->headers);
	jsonpath_set_free(r->paths);
	free(r);
}

int diff_rules_ignore_header(struct diff_rules *r, const char *name)
{
	char *copy;

	if (!name || !*name)
		return -EINVAL;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	if (vec_reserve(r->headers, r->cap_headers, r->n_headers + 1) < 0) {
		free(copy);
		return -ENOMEM;
	}
	r->headers[r->n_headers++] = copy;
	return 0;
}

static int add_path(struct diff_rules *r, const char *flag, const char *path,
		    unsigned kind, char *err, size_t errlen)
{
	char msg[200];
	int ret = jsonpath_set_add(r->paths, path, kind, msg, sizeof(msg));

	if (ret && err && errlen)
		snprintf(err, errlen, "bad %s '%s': %s", flag, path, msg);
	return ret;
}

int diff_rules_ignore_json(struct diff_rules *r, const char *path, char *err,
			   size_t errlen)
{
	return add_path(r, "--ignore-json", path, JSON_DIFF_IGNORE, err,
			errlen);
}

int diff_rules_unordered(struct diff_rules *r, const char *path, char *err,
			 size_t errlen)
{
	return add_path(r, "--unordered", path, JSON_DIFF_UNORDERED, err,
			errlen);
}

int diff_rules_float_tolerance(struct diff_rules *r, double e)
{
	if (!(e >= 0) || isinf(e))
		return -EINVAL;
	r->tolerance = e;
	return 0;
}

bool diff_noise_report(uint64_t raw, uint64_t noise, uint64_t samples,
		       double rel, double abs)
{
	double d;

	if (raw <= noise || samples == 0)
		return false;
	d = (double)(raw - noise);
	return d / ((double)raw + (double)noise) > rel &&
	       d / (double)samples > abs;
}

/* ---- helpers ------------------------------------------------------ */

/* A summary being written: a dbuf, and whether an append failed. */
struct sbuf {
	struct dbuf b;
	bool nomem;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->nomem)
		return;
	va_start(ap, fmt);
	if (dbuf_vaddf(&b->b, fmt, ap) == -ENOMEM)
		b->nomem = true;
	va_end(ap);
}

/* Takes the string (never NULL on success: "" for empty). */
static char *sb_take(struct sbuf *b)
{
	char *s;

	if (b->nomem) {
		dbuf_free(&b->b);
		return NULL;
	}
	s = dbuf_take(&b->b, NULL);
	return s ? s : strdup("");
}

static bool header_ignored(const struct diff_rules *r, const char *name)
{
	for (size_t i = 0; i < sizeof(default_ignored) / sizeof(*default_ignored); i++)
		if (strcasecmp(name, default_ignored[i]) == 0)
			return true;
	for (size_t i = 0; r && i < r->n_headers; i++)
		if (strcasecmp(name, r->headers[i]) == 0)
			return true;
	return false;
}

/* ---- the raw comparison (before noise) ---------------------------- */

enum body_mode { BODY_EQUAL, BODY_SKIPPED, BODY_JSON, BODY_TEXT, BODY_BYTES };

/* A part as compared, before noise filtering and summaries. */
struct raw_part {
	json_t *diffs; /* records, at most `max` */
	size_t total;  /* differences found */
	enum body_mode mode;
	char note[320]; /* body: why not compared / which side is not JSON */
	char text[128]; /* body text/bytes summary */
};

struct raw_result {
	struct raw_part status, headers, body;
};

static void raw_clean(struct raw_result *r)
{
	json_decref(r->status.diffs);
	json_decref(r->headers.diffs);
	json_decref(r->body.diffs);
	memset(r, 0, sizeof(*r));
}

static int cmp_status(const struct http_response *p,
		      const struct http_response *c, struct raw_part *out)
{
	json_t *rec;

	if (p->status == c->status)
		return 0;
	out->total = 1;
	rec = json_pack("{s:i, s:i}", "primary", p->status, "candidate",
			c->status);
	if (!rec || json_array_append_new(out->diffs, rec))
		return -ENOMEM;
	return 0;
}

/* Values of header `name` in h: null, a string, or an array of them. */
static json_t *header_values(const struct headers *h, const char *name)
{
	json_t *arr = NULL, *one = NULL;
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, name) != 0)
			continue;
		json_t *v = utf8_json_string(h->v[i].value, strlen(h->v[i].value));

		if (!v)
			goto nomem;
		if (n == 0) {
			one = v;
		} else {
			if (n == 1) {
				arr = json_array();
				if (!arr || json_array_append_new(arr, one)) {
					one = NULL;
					json_decref(v);
					goto nomem;
				}
				one = NULL;
			}
			if (json_array_append_new(arr, v))
				goto nomem;
		}
		n++;
	}
	if (n == 0)
		return json_null();
	return n == 1 ? one : arr;
nomem:
	json_decref(one);
	json_decref(arr);
	return NULL;
}

/* Do h1 and h2 carry the same ordered list of values for `name`? */
static bool same_values(const struct headers *h1, const struct headers *h2,
			const char *name)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < h1->n && strcasecmp(h1->v[i].name, name) != 0)
			i++;
		while (j < h2->n && strcasecmp(h2->v[j].name, name) != 0)
			j++;
		if (i == h1->n || j == h2->n)
			return i == h1->n && j == h2->n;
		if (strcmp(h1->v[i].value, h2->v[j].value) != 0)
			return false;
		i++;
		j++;
	}
}

/* Is h->v[k].name the first occurrence of its name in h? */
static bool first_of_name(const struct headers *h, size_t k)
{
	for (size_t i = 0; i < k; i++)
		if (strcasecmp(h->v[i].name, h->v[k].name) == 0)
			return false;
	return true;
}

static int header_record(const struct headers *p, const struct headers *c,
			 const char *name, struct raw_part *out, size_t max)
{
	json_t *rec;

	out->total++;
	if (json_array_size(out->diffs) >= max)
		return 0;
	rec = json_object();
	if (!rec || json_object_set_new(rec, "name", utf8_json_string(name, strlen(name))) ||
	    json_object_set_new(rec, "primary", header_values(p, name)) ||
	    json_object_set_new(rec, "candidate", header_values(c, name)) ||
	    json_array_append_new(out->diffs, rec))
		return -ENOMEM;
	return 0;
}

static int cmp_headers(const struct diff_rules *rules,
		       const struct headers *p, const struct headers *c,
		       struct raw_part *out, size_t max)
{
	int ret;

	/* Names in the primary's order, then names only the candidate has. */
	for (size_t k = 0; k < p->n; k++) {
		const char *name = p->v[k].name;

		if (!first_of_name(p, k) || header_ignored(rules, name) ||
		    same_values(p, c, name))
			continue;
		ret = header_record(p, c, name, out, max);
		if (ret)
			return ret;
	}
	for (size_t k = 0; k < c->n; k++) {
		const char *name = c->v[k].name;

		if (!first_of_name(c, k) || header_ignored(rules, name) ||
		    headers_get(p, name))
			continue;
		ret = header_record(p, c, name, out, max);
		if (ret)
			return ret;
	}
	return 0;
}

static bool media_is_json(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0 &&
	       memchr(ct, '/', n);
}

/* One line of s (from *pos); advances *pos past its '\n'. */
static bool next_line(const uint8_t *s, size_t n, size_t *pos,
		      const uint8_t **line, size_t *len)
{
	const uint8_t *nl;

	if (*pos > n)
		return false;
	*line = s + *pos;
	nl = memchr(s + *pos, '\n', n - *pos);
	*len = nl ? (size_t)(nl - (s + *pos)) : n - *pos;
	*pos += *len + 1;
	return true;
}

static json_t *line_json(const uint8_t *line, size_t len, bool present)
{
	if (!present)
		return json_null();
	if (len > DIFF_LINE_CAP) {
		len = DIFF_LINE_CAP;
		while (len > 0 && (line[len] & 0xc0) == 0x80)
			len--;
	}
	return json_stringn((const char *)line, len);
}

static int cmp_text(const struct body *p, const struct body *c,
		    struct raw_part *out)
{
	size_t pp = 0, cp = 0, no = 0;
	const uint8_t *pl = NULL, *cl = NULL, *prev = NULL;
	size_t plen = 0, clen = 0, prevlen = 0;
	bool ph, ch;
	json_t *rec;

	for (;;) {
		ph = next_line(p->data, p->len, &pp, &pl, &plen);
		ch = next_line(c->data, c->len, &cp, &cl, &clen);
		no++;
		if (ph != ch || (ph && (plen != clen ||
					memcmp(pl, cl, plen) != 0)))
			break;
		if (!ph)
			return 0; /* unreachable: the bodies differ */
		prev = pl;
		prevlen = plen;
	}
	const uint8_t *pn = NULL, *cn = NULL;
	size_t pnl = 0, cnl = 0;
	bool pnh = ph && next_line(p->data, p->len, &pp, &pn, &pnl);
	bool cnh = ch && next_line(c->data, c->len, &cp, &cn, &cnl);

	out->total = 1;
	snprintf(out->text, sizeof(out->text), "text differs from line %zu",
		 no);
	rec = json_object();
	if (!rec || json_object_set_new(rec, "path", json_string("body")) ||
	    json_object_set_new(rec, "kind", json_string("changed")) ||
	    json_object_set_new(rec, "line", json_integer((json_int_t)no)) ||
	    json_object_set_new(rec, "primary", line_json(pl, plen, ph)) ||
	    json_object_set_new(rec, "candidate", line_json(cl, clen, ch)) ||
	    json_object_set_new(rec, "context_before",
				line_json(prev, prevlen, no > 1)) ||
	    json_object_set_new(rec, "primary_next", line_json(pn, pnl, pnh)) ||
	    json_object_set_new(rec, "candidate_next",
				line_json(cn, cnl, cnh)) ||
	    json_array_append_new(out->diffs, rec))
		return -ENOMEM;
	return 0;
}

static int cmp_bytes(const struct body *p, const struct body *c,
		     struct raw_part *out)
{
	size_t n = p->len < c->len ? p->len : c->len, off = 0;
	json_t *rec;

	while (off < n && p->data[off] == c->data[off])
		off++;
	out->total = 1;
	snprintf(out->text, sizeof(out->text),
		 "bytes differ from offset %zu (primary %zu bytes, candidate %zu bytes)",
		 off, p->len, c->len);
	rec = json_pack("{s:s, s:s, s:I, s:I, s:I}", "path", "body", "kind",
			"changed", "offset", (json_int_t)off, "primary_length",
			(json_int_t)p->len, "candidate_length",
			(json_int_t)c->len);
	if (!rec || json_array_append_new(out->diffs, rec))
		return -ENOMEM;
	return 0;
}

static int cmp_body(const struct diff_rules *rules,
		    const struct http_response *p,
		    const struct http_response *c, struct raw_part *out,
		    size_t max)
{
	const struct body *pb = &p->decoded, *cb = &c->decoded;
	struct json_doc *da = NULL, *db = NULL;
	enum json_doc_result ra = JSON_DOC_INVALID, rb = JSON_DOC_INVALID;
	char ea[128] = "", eb[128] = "";
	const char *ct;
	int ret = 0;

	if ((p->flags | c->flags) & MESSAGE_TRUNCATED) {
		out->mode = BODY_SKIPPED;
		snprintf(out->note, sizeof(out->note),
			 "not compared: body over --max-body");
		return 0;
	}
	if ((p->flags | c->flags) & MESSAGE_BODY_UNAVAILABLE) {
		out->mode = BODY_SKIPPED;
		snprintf(out->note, sizeof(out->note),
			 "not compared: body not captured");
		return 0;
	}
	if (pb->len == cb->len &&
	    (pb->len == 0 || memcmp(pb->data, cb->data, pb->len) == 0)) {
		out->mode = BODY_EQUAL;
		return 0;
	}
	ct = headers_get(&p->headers, "Content-Type");
	if (!ct)
		ct = headers_get(&c->headers, "Content-Type");
	if (media_is_json(ct)) {
		ra = json_doc_parse(pb->data, pb->len, &da, ea, sizeof(ea));
		rb = json_doc_parse(cb->data, cb->len, &db, eb, sizeof(eb));
		if (ra == JSON_DOC_NOMEM || rb == JSON_DOC_NOMEM) {
			ret = -ENOMEM;
			goto cleanup;
		}
		if (ra == JSON_DOC_OK && rb == JSON_DOC_OK) {
			struct json_diff_opts o = {
				.paths = rules ? rules->paths : NULL,
				.tolerance = rules ? rules->tolerance : 0,
				.max_diffs = max,
				.value_cap = DIFF_VALUE_CAP,
			};

			out->mode = BODY_JSON;
			ret = json_diff(&o, da, db, out->diffs, &out->total);
			goto cleanup;
		}
		if (ra != JSON_DOC_OK && rb != JSON_DOC_OK)
			snprintf(out->note, sizeof(out->note),
				 "neither body is valid JSON (primary: %s; candidate: %s)",
				 ea, eb);
		else
			snprintf(out->note, sizeof(out->note),
				 "%s body is not valid JSON (%s)",
				 ra != JSON_DOC_OK ? "primary" : "candidate",
				 ra != JSON_DOC_OK ? ea : eb);
	}
	if (utf8_is_text(pb->data, pb->len) && utf8_is_text(cb->data, cb->len)) {
		out->mode = BODY_TEXT;
		ret = cmp_text(pb, cb, out);
	} else {
		out->mode = BODY_BYTES;
		ret = cmp_bytes(pb, cb, out);
	}
cleanup:
	json_doc_free(da);
	json_doc_free(db);
	return ret;
}

static int compare(const struct diff_rules *rules,
		   const struct http_response *p,
		   const struct http_response *c, size_t max,
		   struct raw_result *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->status.diffs = json_array();
	out->headers.diffs = json_array();
	out->body.diffs = json_array();
	if (!out->status.diffs || !out->headers.diffs || !out->body.diffs) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = cmp_status(p, c, &out->status);
	if (!ret)
		ret = cmp_headers(rules, &p->headers, &c->headers,
				  &out->headers, max);
	if (!ret)
		ret = cmp_body(rules, p, c, &out->body, max);
	if (!ret)
		return 0;
cleanup:
	raw_clean(out);
	return ret;
}

/* ---- noise -------------------------------------------------------- */

/* Does `path` equal a noise path or lie below one? */
static bool body_path_is_noise(const json_t *noise, const char *path)
{
	size_t i;
	json_t *v;

	json_array_foreach(noise, i, v) {
		const char *n = json_object_get(v, "path") ?
			json_string_value(json_object_get(v, "path")) : NULL;
		size_t len;

		if (!n)
			continue;
		len = strlen(n);
		if (strncmp(path, n, len) == 0 &&
		    (path[len] == '\0' || path[len] == '.' || path[len] == '['))
			return true;
	}
	return false;
}

static bool header_is_noise(const json_t *noise, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(noise, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && strcasecmp(n, name) == 0)
			return true;
	}
	return false;
}

/*
 * Moves records of `part` that the noise pair also shows into
 * res->noise_paths. key is "status", "name" or "path".
 */
static int drop_noise(struct raw_part *part, const struct raw_part *noise,
		      const char *key, struct diff_result *res)
{
	json_t *kept = json_array();
	size_t i, dropped = 0;
	json_t *v;

	if (!kept)
		return -ENOMEM;
	json_array_foreach(part->diffs, i, v) {
		const char *path;
		bool is_noise;

		if (strcmp(key, "status") == 0) {
			path = "status";
			is_noise = noise->total > 0;
		} else {
			path = json_string_value(json_object_get(v, key));
			if (!path)
				path = "";
			is_noise = strcmp(key, "name") == 0 ?
					   header_is_noise(noise->diffs, path) :
					   body_path_is_noise(noise->diffs, path);
		}
		if (is_noise) {
			if (json_array_append_new(res->noise_paths,
						  json_string(path)))
				goto nomem;
			dropped++;
			continue;
		}
		if (json_array_append(kept, v))
			goto nomem;
	}
	json_decref(part->diffs);
	part->diffs = kept;
	part->total -= dropped;
	res->noise_suppressed += dropped;
	return 0;
nomem:
	json_decref(kept);
	return -ENOMEM;
}

/* ---- summaries ---------------------------------------------------- */

static void list_names(struct sbuf *b, const json_t *diffs, const char *key,
		       size_t total)
{
	size_t i, shown = 0;
	json_t *v;

	json_array_foreach(diffs, i, v) {
		const char *s = json_string_value(json_object_get(v, key));

		if (shown == DIFF_SUMMARY_NAMES)
			break;
		sb_printf(b, "%s%s", shown ? ", " : ": ", s ? s : "?");
		shown++;
	}
	if (total > shown)
		sb_printf(b, "%s%zu more", shown ? " and " : ": ", total - shown);
}

/* Keeps DIFF_MAX_REPORTED records and writes the part's summary. */
static int finish_part(struct diff_part *out, struct raw_part *raw,
		       const char *what)
{
	struct sbuf b = { .b = DBUF_INIT(SIZE_MAX) };

	while (json_array_size(raw->diffs) > DIFF_MAX_REPORTED)
		json_array_remove(raw->diffs, json_array_size(raw->diffs) - 1);
	out->diverged = raw->total > 0;
	if (!strcmp(what, "status")) {
		json_t *r = json_array_get(raw->diffs, 0);

		if (out->diverged && r)
			sb_printf(&b, "status %lld -> %lld",
				  (long long)json_integer_value(json_object_get(r, "primary")),
				  (long long)json_integer_value(json_object_get(r, "candidate")));
	} else if (!strcmp(what, "headers")) {
		if (out->diverged) {
			sb_printf(&b, "%zu %s", raw->total,
				  raw->total == 1 ? "header differs" :
						    "headers differ");
			list_names(&b, raw->diffs, "name", raw->total);
		}
	} else if (raw->mode == BODY_SKIPPED) {
		sb_printf(&b, "%s", raw->note);
	} else if (out->diverged) {
		if (raw->note[0])
			sb_printf(&b, "%s; ", raw->note);
		if (raw->mode == BODY_JSON) {
			sb_printf(&b, "%zu %s", raw->total,
				  raw->total == 1 ? "field differs" :
						    "fields differ");
			list_names(&b, raw->diffs, "path", raw->total);
		} else {
			sb_printf(&b, "%s", raw->text);
		}
	}
	out->summary = sb_take(&b);
	out->diffs = raw->diffs;
	raw->diffs = NULL;
	return out->summary ? 0 : -ENOMEM;
}

int diff_responses(const struct diff_rules *rules,
		   const struct http_response *primary,
		   const struct http_response *candidate,
		   const struct http_response *noise_a,
		   const struct http_response *noise_b,
		   struct diff_result *out)
{
	struct raw_result raw = { 0 }, noise = { 0 };
	bool with_noise = noise_a && noise_b;
	int ret;

	memset(out, 0, sizeof(*out));
	out->noise_paths = json_array();
	if (!out->noise_paths) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = compare(rules, primary, candidate, DIFF_MAX_COLLECTED, &raw);
	if (ret)
		goto cleanup;
	if (with_noise) {
		ret = compare(rules, noise_a, noise_b, DIFF_MAX_COLLECTED,
			      &noise);
		if (ret)
			goto cleanup;
		ret = drop_noise(&raw.status, &noise.status, "status", out);
		if (!ret)
			ret = drop_noise(&raw.headers, &noise.headers, "name",
					 out);
		if (!ret)
			ret = drop_noise(&raw.body, &noise.body, "path", out);
		if (ret)
			goto cleanup;
	}
	ret = finish_part(&out->status, &raw.status, "status");
	if (!ret)
		ret = finish_part(&out->headers, &raw.headers, "headers");
	if (!ret)
		ret = finish_part(&out->body, &raw.body, "body");
	if (ret)
		goto cleanup;
	out->diverged = out->status.diverged || out->headers.diverged ||
			out->body.diverged;
cleanup:
	raw_clean(&raw);
	raw_clean(&noise);
	if (ret)
		diff_result_clean(out);
	return ret;
}

json_t *diff_part_json(const struct diff_part *p)
{
	json_t *diffs = p->diffs ? json_incref(p->diffs) : json_array();

	/* "o" steals the reference, even when packing fails. */
	return json_pack("{s:b, s:s, s:o}", "diverged", p->diverged,
			 "summary", p->summary ? p->summary : "", "diffs",
			 diffs);
}

static void part_clean(struct diff_part *p)
{
	free(p->summary);
	json_decref(p->diffs);
	memset(p, 0, sizeof(*p));
}

void diff_result_clean(struct diff_result *r)
{
	if (!r)
		return;
	part_clean(&r->status);
	part_clean(&r->headers);
	part_clean(&r->body);
	json_decref(r->noise_paths);
	memset(r, 0, sizeof(*r));
}
