// SPDX-License-Identifier: BSD-2-Clause
#include "jsonpath.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dbuf.h"
#include "util/utf8.h"

/* A path longer than this many segments is refused (states hold a u16). */
#define JSONPATH_MAX_SEGS 256
/* Selectors in one bracket union. */
#define JSONPATH_MAX_SELS 64

enum sel_type { SEL_NAME, SEL_INDEX, SEL_WILD };

struct sel {
	enum sel_type type;
	char *name; /* SEL_NAME: decoded, may hold NUL bytes */
	size_t len;
	size_t idx; /* SEL_INDEX */
};

struct seg {
	bool desc; /* descendant segment (..): this level or any below */
	struct sel *sels;
	size_t nsel;
};

struct path {
	unsigned kind;
	struct seg *segs;
	size_t nseg;
};

struct jsonpath_set {
	struct path *v;
	size_t n, cap;
};

/* Parser state for one path text. */
struct parser {
	const char *s;
	size_t pos;
	char *err;
	size_t errlen;
	struct path path;
	bool failed_nomem;
};

struct jsonpath_set *jsonpath_set_new(void)
{
	return calloc(1, sizeof(struct jsonpath_set));
}

static void path_clean(struct path *p)
{
	for (size_t i = 0; i < p->nseg; i++) {
		for (size_t j = 0; j < p->segs[i].nsel; j++)
			free(p->segs[i].sels[j].name);
		free(p->segs[i].sels);
	}
	free(p->segs);
	memset(p, 0, sizeof(*p));
}

void jsonpath_set_free(struct jsonpath_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		path_clean(&s->v[i]);
	free(s->v);
	free(s);
}

size_t jsonpath_set_count(const struct jsonpath_set *s)
{
	return s ? s->n : 0;
}

static int fail(struct parser *p, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s at column %zu", msg, p->pos + 1);
	return -EINVAL;
}

static void skip_blank(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	       p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
		p->pos++;
}

static bool is_name_first(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c >= 0x80;
}

static bool is_name_char(unsigned char c)
{
	return is_name_first(c) || (c >= '0' && c <= '9');
}

/* A quoted name ('...' or "...") with RFC 9535 escapes, decoded. */
static int parse_string(struct parser *p, struct sel *out)
{
	char q = p->s[p->pos];
	size_t cap = strlen(p->s + p->pos) + 1, n = 0;
	char *buf = malloc(cap);
	int err;

	if (!buf) {
		p->failed_nomem = true;
		return -ENOMEM;
	}
	p->pos++;
	for (;;) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '\0') {
			err = fail(p, "unterminated string");
			goto cleanup;
		}
		if (c == (unsigned char)q) {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			err = fail(p, "control character in string");
			goto cleanup;
		}
		if (c != '\\') {
			buf[n++] = (char)c;
			p->pos++;
			continue;
		}
		p->pos++;
		c = (unsigned char)p->s[p->pos];
		switch (c) {
		case 'b': buf[n++] = '\b'; p->pos++; continue;
		case 'f': buf[n++] = '\f'; p->pos++; continue;
		case 'n': buf[n++] = '\n'; p->pos++; continue;
		case 'r': buf[n++] = '\r'; p->pos++; continue;
		case 't': buf[n++] = '\t'; p->pos++; continue;
		case '/': buf[n++] = '/'; p->pos++; continue;
		case '\\': buf[n++] = '\\'; p->pos++; continue;
		case 'u':
			break;
		default:
			if (c == (unsigned char)q) {
				buf[n++] = (char)c;
				p->pos++;
				continue;
			}
			err = fail(p, "invalid escape");
			goto cleanup;
		}
		p->pos++;
		uint32_t cp;
		size_t used;
		enum utf8_escape e = utf8_read_escape(
			(const uint8_t *)p->s + p->pos, strnlen(p->s + p->pos, 10),
			&cp, &used);

		/* an error points at where the escape went wrong */
		p->pos += used;
		if (e != UTF8_ESCAPE_OK) {
			err = fail(p, "%s", e == UTF8_ESCAPE_BAD_HEX ?
				   "expected 4 hex digits after \\u" :
				   e == UTF8_ESCAPE_LONE_LOW ? "lone low surrogate" :
				   "expected low surrogate");
			goto cleanup;
		}
		/* \uXXXX (6 bytes) decodes to at most 3, a pair (12) to 4. */
		n += utf8_put((uint8_t *)buf + n, cp);
	}
	out->type = SEL_NAME;
	out->name = buf;
	out->len = n;
	return 0;
cleanup:
	free(buf);
	return err;
}

static int parse_index(struct parser *p, struct sel *out)
{
	size_t v = 0, start = p->pos;

	if (p->s[p->pos] == '-')
		return fail(p, "negative indices are not supported");
	if (p->s[p->pos] == '0' && p->s[p->pos + 1] >= '0' &&
	    p->s[p->pos + 1] <= '9')
		return fail(p, "leading zero in index");
	while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		if (p->pos - start >= 15)
			return fail(p, "index too large");
		v = v * 10 + (size_t)(p->s[p->pos] - '0');
		p->pos++;
	}
	out->type = SEL_INDEX;
	out->idx = v;
	return 0;
}

static int add_sel(struct parser *p, struct seg *seg, const struct sel *sel)
{
	struct sel *v;

	if (seg->nsel >= JSONPATH_MAX_SELS)
		return fail(p, "too many selectors");
	v = realloc(seg->sels, (seg->nsel + 1) * sizeof(*v));
	if (!v) {
		p->failed_nomem = true;
		return -ENOMEM;
	}
	seg->sels = v;
	seg->sels[seg->nsel++] = *sel;
	return 0;
}

/* "[" selector ("," selector)* "]", p->pos on the '['. */
static int parse_bracket(struct parser *p, struct seg *seg)
{
	int err;

	p->pos++;
	for (;;) {
		struct sel sel = { 0 };
		char c;

		skip_blank(p);
		c = p->s[p->pos];
		if (c == '\'' || c == '"') {
			err = parse_string(p, &sel);
		} else if (c == '*') {
			sel.type = SEL_WILD;
			p->pos++;
			err = 0;
		} else if ((c >= '0' && c <= '9') || c == '-') {
			err = parse_index(p, &sel);
			if (!err) {
				skip_blank(p);
				if (p->s[p->pos] == ':')
					err = fail(p, "slices are not supported");
			}
		} else if (c == '?') {
			err = fail(p, "filter expressions are not supported");
		} else if (c == ':') {
			err = fail(p, "slices are not supported");
		} else {
			err = fail(p, "expected index, quoted name or '*'");
		}
		if (err) {
			free(sel.name);
			return err;
		}
		err = add_sel(p, seg, &sel);
		if (err) {
			free(sel.name);
			return err;
		}
		skip_blank(p);
		c = p->s[p->pos];
		if (c == ']') {
			p->pos++;
			return 0;
		}
		if (c != ',')
			return fail(p, "expected ',' or ']'");
		p->pos++;
	}
}

/* ".name", ".*", "..name", "..*", "..[...]", "[...]"; p->pos on it. */
static int parse_segment(struct parser *p, struct seg *seg)
{
	struct sel sel = { 0 };
	int err;

	if (p->s[p->pos] == '[')
		return parse_bracket(p, seg);
	/* a '.' */
	p->pos++;
	if (p->s[p->pos] == '.') {
		seg->desc = true;
		p->pos++;
		if (p->s[p->pos] == '[')
			return parse_bracket(p, seg);
	}
	if (p->s[p->pos] == '*') {
		p->pos++;
		sel.type = SEL_WILD;
		return add_sel(p, seg, &sel);
	}
	if (!is_name_first((unsigned char)p->s[p->pos]))
		return fail(p, "expected member name or '*'");
	size_t start = p->pos;

	while (is_name_char((unsigned char)p->s[p->pos]))
		p->pos++;
	if (p->s[p->pos] == '(')
		return fail(p, "function calls are not supported");
	sel.type = SEL_NAME;
	sel.len = p->pos - start;
	sel.name = strndup(p->s + start, sel.len);
	if (!sel.name) {
		p->failed_nomem = true;
		return -ENOMEM;
	}
	err = add_sel(p, seg, &sel);
	if (err)
		free(sel.name);
	return err;
}

static int parse_path(struct parser *p)
{
	int err;

	skip_blank(p);
	if (p->s[p->pos] != '$')
		return fail(p, "expected '$'");
	p->pos++;
	for (;;) {
		struct seg *v;

		skip_blank(p);
		if (p->s[p->pos] == '\0')
			return 0;
		if (p->s[p->pos] != '.' && p->s[p->pos] != '[')
			return fail(p, "expected '.', '..' or '['");
		if (p->path.nseg >= JSONPATH_MAX_SEGS)
			return fail(p, "too many segments");
		v = realloc(p->path.segs, (p->path.nseg + 1) * sizeof(*v));
		if (!v) {
			p->failed_nomem = true;
			return -ENOMEM;
		}
		p->path.segs = v;
		memset(&v[p->path.nseg], 0, sizeof(*v));
		p->path.nseg++;
		err = parse_segment(p, &v[p->path.nseg - 1]);
		if (err)
			return err;
	}
}

int jsonpath_set_add(struct jsonpath_set *s, const char *text, unsigned kind,
		     char *err, size_t errlen)
{
	struct parser p = { .s = text, .err = err, .errlen = errlen };
	int ret;

	if (s->n >= JSONPATH_MAX_PATHS) {
		if (err && errlen)
			snprintf(err, errlen, "more than %d paths",
				 JSONPATH_MAX_PATHS);
		return -E2BIG;
	}
	ret = parse_path(&p);
	if (ret)
		goto cleanup;
	if (vec_reserve(s->v, s->cap, s->n + 1) < 0) {
		ret = -ENOMEM;
		goto cleanup;
	}
	p.path.kind = kind;
	s->v[s->n++] = p.path;
	return 0;
cleanup:
	if (p.failed_nomem && err && errlen)
		snprintf(err, errlen, "out of memory");
	path_clean(&p.path);
	return p.failed_nomem ? -ENOMEM : ret;
}

size_t jsonpath_root(const struct jsonpath_set *s, struct jsonpath_state *out)
{
	size_t n = jsonpath_set_count(s);

	for (size_t i = 0; i < n; i++) {
		out[i].path = (uint16_t)i;
		out[i].seg = 0;
	}
	return n;
}

static bool seg_matches(const struct seg *seg, const char *name,
			size_t name_len, long idx)
{
	for (size_t i = 0; i < seg->nsel; i++) {
		const struct sel *sel = &seg->sels[i];

		switch (sel->type) {
		case SEL_WILD:
			return true;
		case SEL_NAME:
			if (name && sel->len == name_len &&
			    memcmp(sel->name, name, name_len) == 0)
				return true;
			break;
		case SEL_INDEX:
			if (!name && idx >= 0 && (size_t)idx == sel->idx)
				return true;
			break;
		}
	}
	return false;
}

static size_t push_state(struct jsonpath_state *out, size_t n, uint16_t path,
			 uint16_t seg)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].path == path && out[i].seg == seg)
			return n;
	out[n].path = path;
	out[n].seg = seg;
	return n + 1;
}

size_t jsonpath_step(const struct jsonpath_set *s,
		     const struct jsonpath_state *in, size_t n,
		     const char *name, size_t name_len, long idx,
		     struct jsonpath_state *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		const struct path *p = &s->v[in[i].path];
		const struct seg *seg;

		if (in[i].seg >= p->nseg)
			continue;
		seg = &p->segs[in[i].seg];
		if (seg_matches(seg, name, name_len, idx))
			m = push_state(out, m, in[i].path,
				       (uint16_t)(in[i].seg + 1));
		if (seg->desc)
			m = push_state(out, m, in[i].path, in[i].seg);
	}
	return m;
}

unsigned jsonpath_matched(const struct jsonpath_set *s,
			  const struct jsonpath_state *states, size_t n)
{
	unsigned kinds = 0;

	for (size_t i = 0; i < n; i++) {
		const struct path *p = &s->v[states[i].path];

		if (states[i].seg == p->nseg)
			kinds |= p->kind;
	}
	return kinds;
}

static bool put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (cap == 0)
		return false;
	if (*len + n + 1 > cap) {
		size_t room = cap - 1 - *len;

		memcpy(buf + *len, s, room);
		*len += room;
		buf[*len] = '\0';
		return false;
	}
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return true;
}

bool jsonpath_append_name(char *buf, size_t cap, size_t *len,
			  const char *name, size_t name_len)
{
	bool ident = name_len > 0 &&
		     !(name[0] >= '0' && name[0] <= '9');
	bool ok;

	for (size_t i = 0; i < name_len && ident; i++) {
		unsigned char c = (unsigned char)name[i];

		ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_';
	}
	if (ident)
		return put(buf, cap, len, ".", 1) &&
		       put(buf, cap, len, name, name_len);
	ok = put(buf, cap, len, "['", 2);
	for (size_t i = 0; i < name_len && ok; i++) {
		unsigned char c = (unsigned char)name[i];
		char esc[8];

		switch (c) {
		case '\b': ok = put(buf, cap, len, "\\b", 2); break;
		case '\f': ok = put(buf, cap, len, "\\f", 2); break;
		case '\n': ok = put(buf, cap, len, "\\n", 2); break;
		case '\r': ok = put(buf, cap, len, "\\r", 2); break;
		case '\t': ok = put(buf, cap, len, "\\t", 2); break;
		case '\'': ok = put(buf, cap, len, "\\'", 2); break;
		case '\\': ok = put(buf, cap, len, "\\\\", 2); break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				ok = put(buf, cap, len, esc, 6);
			} else {
				ok = put(buf, cap, len, (const char *)&name[i],
					 1);
			}
		}
	}
	return ok && put(buf, cap, len, "']", 2);
}

bool jsonpath_append_index(char *buf, size_t cap, size_t *len, size_t idx)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "[%zu]", idx);

	return put(buf, cap, len, tmp, (size_t)n);
}
