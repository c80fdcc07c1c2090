// SPDX-License-Identifier: BSD-2-Clause
#include "endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dbuf.h"

/* Longest path kept in a name: past it, segments are cut (bounded memory
 * for a hostile target, stable names for the store). */
#define ENDPOINT_PATH_MAX 512
#define ENDPOINT_SEG_MAX 64

struct pattern_seg {
	const char *lit; /* NULL: a {name} placeholder */
	size_t len;
	bool rest;       /* {name...}: one or more segments, last only */
};

struct pattern {
	char *method;    /* NULL: any method */
	char *path;      /* the template as given, for the name */
	char *buf;       /* segment storage */
	struct pattern_seg seg[ENDPOINT_SEG_MAX];
	size_t nseg;
};

struct endpoint_rules {
	struct pattern *v;
	size_t n, cap;
	size_t longest; /* strlen() of the longest pattern path */
};

struct endpoint_rules *endpoint_rules_new(void)
{
	return calloc(1, sizeof(struct endpoint_rules));
}

static void pattern_clean(struct pattern *p)
{
	free(p->method);
	free(p->path);
	free(p->buf);
}

void endpoint_rules_free(struct endpoint_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		pattern_clean(&r->v[i]);
	free(r->v);
	free(r);
}

size_t endpoint_rules_count(const struct endpoint_rules *r)
{
	return r ? r->n : 0;
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Splits p->buf (a copy of the path after its leading '/') into segments.
 * Returns 0 or -EINVAL with a reason. */
static int pattern_split(struct pattern *p, char *err, size_t errlen)
{
	char *s = p->buf;

	for (;;) {
		char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		struct pattern_seg *g;

		if (p->nseg == ENDPOINT_SEG_MAX) {
			snprintf(err, errlen, "more than %d segments",
				 ENDPOINT_SEG_MAX);
			return -EINVAL;
		}
		g = &p->seg[p->nseg++];
		if (len && s[0] == '{') {
			size_t nl = len - 2;

			if (len < 3 || s[len - 1] != '}') {
				snprintf(err, errlen, "a placeholder must be a "
					 "whole segment: {name}");
				return -EINVAL;
			}
			if (nl > 3 && memcmp(s + 1 + nl - 3, "...", 3) == 0) {
				g->rest = true;
				nl -= 3;
			}
			if (nl == 0) {
				snprintf(err, errlen, "empty placeholder name");
				return -EINVAL;
			}
			for (size_t i = 0; i < nl; i++)
				if (!is_name_char(s[1 + i])) {
					snprintf(err, errlen, "bad character "
						 "'%c' in placeholder name",
						 s[1 + i]);
					return -EINVAL;
				}
			if (g->rest && e) {
				snprintf(err, errlen, "{name...} must be the "
					 "last segment");
				return -EINVAL;
			}
			g->lit = NULL;
		} else {
			if (memchr(s, '{', len) || memchr(s, '}', len)) {
				snprintf(err, errlen, "a placeholder must be a "
					 "whole segment: {name}");
				return -EINVAL;
			}
			g->lit = s;
			g->len = len;
		}
		if (!e)
			return 0;
		*e = '\0';
		s = e + 1;
	}
}

int endpoint_rules_add(struct endpoint_rules *r, const char *pattern,
		       char *err, size_t errlen)
{
	struct pattern p = { 0 };
	const char *path = pattern;
	const char *sp;
	int rc = -ENOMEM;

	sp = strchr(pattern, ' ');
	if (sp) {
		for (const char *c = pattern; c < sp; c++)
			if (!isupper((unsigned char)*c)) {
				snprintf(err, errlen, "bad method in '%s' "
					 "(want 'METHOD /path' or '/path')",
					 pattern);
				return -EINVAL;
			}
		if (sp == pattern) {
			snprintf(err, errlen, "pattern '%s' starts with a space",
				 pattern);
			return -EINVAL;
		}
		p.method = strndup(pattern, sp - pattern);
		if (!p.method)
			goto cleanup;
		path = sp + 1;
	}
	if (path[0] != '/' || strpbrk(path, " ?#\t")) {
		snprintf(err, errlen, "pattern '%s' must be a path starting "
			 "with '/' without spaces or query", pattern);
		rc = -EINVAL;
		goto cleanup;
	}
	if (strlen(path) > ENDPOINT_PATH_MAX) {
		snprintf(err, errlen, "pattern longer than %d bytes",
			 ENDPOINT_PATH_MAX);
		rc = -EINVAL;
		goto cleanup;
	}
	p.path = strdup(path);
	p.buf = strdup(path + 1);
	if (!p.path || !p.buf)
		goto cleanup;
	rc = pattern_split(&p, err, errlen);
	if (rc < 0)
		goto cleanup;
	rc = vec_reserve(r->v, r->cap, r->n + 1);
	if (rc < 0)
		goto cleanup;
	r->v[r->n++] = p;
	if (strlen(p.path) > r->longest)
		r->longest = strlen(p.path);
	return 0;
cleanup:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	pattern_clean(&p);
	return rc;
}

/* The path of a request-target: [*path, *len). */
static void target_path(const char *target, const char **path, size_t *len)
{
	const char *s = target, *e;

	if (s[0] != '/' && s[0] != '*') {
		const char *scheme = strstr(s, "://");

		if (scheme && !memchr(s, '/', scheme - s)) {
			s = scheme + 3;
			s += strcspn(s, "/?#");
			if (*s != '/') {
				*path = "/";
				*len = 1;
				return;
			}
		}
	}
	e = s + strcspn(s, "?#");
	*path = s;
	*len = (size_t)(e - s);
	if (*len > ENDPOINT_PATH_MAX)
		*len = ENDPOINT_PATH_MAX;
	if (*len == 0) {
		*path = "/";
		*len = 1;
	}
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_uuid(const char *s, size_t n)
{
	static const size_t dash[] = { 8, 13, 18, 23 };

	if (n != 36)
		return false;
	for (size_t i = 0, d = 0; i < n; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Whether a path segment is an identifier the automatic rule templates. */
static bool is_id_segment(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n && isdigit((unsigned char)s[i]); i++)
		;
	if (i == n)
		return true;
	return is_uuid(s, n) || (n >= 16 && all_hex(s, n));
}

static bool pattern_match(const struct pattern *p, const char *method,
			  const char *path, size_t len)
{
	const char *s = path + 1, *end = path + len;
	size_t i;

	if (p->method && strcmp(p->method, method) != 0)
		return false;
	if (path[0] != '/')
		return false;
	for (i = 0; i < p->nseg; i++) {
		const struct pattern_seg *g = &p->seg[i];
		const char *e = memchr(s, '/', end - s);
		size_t n;

		if (!e)
			e = end;
		n = (size_t)(e - s);
		if (g->rest)
			return s < end && n > 0;
		if (g->lit ? n != g->len || memcmp(s, g->lit, n) != 0 : n == 0)
			return false;
		if (i + 1 < p->nseg) {
			if (e == end)
				return false;
			s = e + 1;
		} else if (e != end) {
			return false;
		}
	}
	return true;
}

size_t endpoint_name_max(const struct endpoint_rules *r, size_t mlen,
			 size_t tlen)
{
	/* The path is at most the target, cut at ENDPOINT_PATH_MAX, or "/".
	 * "{id}" (4 bytes) never outgrows the segment it replaces by more
	 * than 3 bytes; segments are at least 1 byte plus a '/'. */
	size_t plen = tlen < 1 ? 1 : tlen > ENDPOINT_PATH_MAX ?
		      ENDPOINT_PATH_MAX : tlen;
	size_t n = plen * 3 + 8;

	if (r && r->longest + 1 > n)
		n = r->longest + 1;
	return mlen + 1 + n;
}

size_t endpoint_write(const struct endpoint_rules *r, const char *method,
		      const char *target, char *out)
{
	size_t mlen = strlen(method), plen, o;
	const char *path, *s, *end;

	target_path(target, &path, &plen);
	memcpy(out, method, mlen);
	out[mlen] = ' ';
	o = mlen + 1;
	for (size_t i = 0; r && i < r->n; i++) {
		size_t n;

		if (!pattern_match(&r->v[i], method, path, plen))
			continue;
		n = strlen(r->v[i].path);
		memcpy(out + o, r->v[i].path, n + 1);
		return o + n;
	}
	for (s = path, end = path + plen; s < end;) {
		const char *e = memchr(s, '/', end - s);
		size_t n;

		if (!e)
			e = end;
		n = (size_t)(e - s);
		if (is_id_segment(s, n)) {
			memcpy(out + o, "{id}", 4);
			o += 4;
		} else {
			memcpy(out + o, s, n);
			o += n;
		}
		if (e < end)
			out[o++] = '/';
		s = e + 1;
	}
	out[o] = '\0';
	return o;
}

char *endpoint_name(const struct endpoint_rules *r, const char *method,
		    const char *target)
{
	char *out = malloc(endpoint_name_max(r, strlen(method),
					     strlen(target)));

	if (out)
		endpoint_write(r, method, target, out);
	return out;
}
