// SPDX-License-Identifier: BSD-2-Clause
#include "json_diff.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "jsonpath.h"
#include "util/dbuf.h"
#include "util/utf8.h"

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

/* Set in jnode.flags when the decoded string lives in the arena. */
#define JNODE_ESCAPED 1u

/*
 * One value, in document (pre-)order. An object's children are its
 * members as key (J_STR), value subtree, key, value subtree...; an array's
 * are its elements. `next` is the index one past the subtree.
 */
struct jnode {
	uint8_t type;
	uint8_t flags;
	uint32_t next;
	uint32_t count; /* members / elements / decoded string bytes */
	uint32_t start, end; /* the value's text in the source */
	uint32_t str;	     /* strings: decoded bytes (source or arena) */
};

struct json_doc {
	const uint8_t *src;
	size_t len;
	struct jnode *nodes;
	size_t n, cap;
	uint8_t *arena; /* decoded escaped strings, `len` bytes at most */
	size_t arena_len;
};

struct pstate {
	const uint8_t *s;
	size_t n, pos;
	struct json_doc *d;
	char *err;
	size_t errlen;
};

#define P_INVALID (-1)

static int pfail(struct pstate *p, const char *fmt, ...)
{
	char msg[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s at byte %zu", msg, p->pos);
	return P_INVALID;
}

static int unexpected(struct pstate *p, const char *what)
{
	if (p->pos >= p->n)
		return pfail(p, "unexpected end, expected %s", what);
	unsigned char c = p->s[p->pos];

	if (c >= 0x20 && c < 0x7f)
		return pfail(p, "unexpected character '%c', expected %s", c,
			     what);
	return pfail(p, "unexpected byte 0x%02x, expected %s", c, what);
}

static inline long new_node(struct pstate *p, enum jtype t)
{
	struct json_doc *d = p->d;

	if (d->n == d->cap && vec_reserve(d->nodes, d->cap, d->n + 1) < 0)
		return -ENOMEM;
	d->nodes[d->n] = (struct jnode){ .type = (uint8_t)t,
					 .start = (uint32_t)p->pos };
	return (long)d->n++;
}

static inline void finish_node(struct pstate *p, long idx)
{
	p->d->nodes[idx].end = (uint32_t)p->pos;
	p->d->nodes[idx].next = (uint32_t)p->d->n;
}

static inline void skip_ws(struct pstate *p)
{
	size_t pos = p->pos, n = p->n;
	const uint8_t *s = p->s;

	while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' ||
			   s[pos] == '\t'))
		pos++;
	p->pos = pos;
}

/* Decodes the rest of a string with escapes into the arena; p->pos is on
 * the first backslash, the plain prefix starts at `from`. */
static int parse_escaped(struct pstate *p, long idx, size_t from)
{
	struct json_doc *d = p->d;
	uint8_t *o;
	size_t k;

	if (!d->arena) {
		/* Decoding never grows a string, so the source length bounds
		 * every decoded string together. */
		d->arena = malloc(d->len + 1);
		if (!d->arena)
			return -ENOMEM;
	}
	o = d->arena + d->arena_len;
	k = p->pos - from;
	memcpy(o, p->s + from, k);
	for (;;) {
		if (p->pos >= p->n)
			return pfail(p, "unterminated string");
		uint8_t c = p->s[p->pos];

		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20)
			return pfail(p, "control character in string");
		if (c >= 0x80) {
			size_t u = utf8_seq_len(p->s + p->pos, p->n - p->pos);

			if (!u)
				return pfail(p, "invalid UTF-8");
			memcpy(o + k, p->s + p->pos, u);
			k += u;
			p->pos += u;
			continue;
		}
		if (c != '\\') {
			o[k++] = c;
			p->pos++;
			continue;
		}
		if (p->pos + 1 >= p->n)
			return pfail(p, "unterminated string");
		c = p->s[p->pos + 1];
		switch (c) {
		case '"': case '\\': case '/':
			o[k++] = c; break;
		case 'b': o[k++] = '\b'; break;
		case 'f': o[k++] = '\f'; break;
		case 'n': o[k++] = '\n'; break;
		case 'r': o[k++] = '\r'; break;
		case 't': o[k++] = '\t'; break;
		case 'u': {
			enum utf8_escape e;
			uint32_t cp;
			size_t used;

			e = utf8_read_escape(p->s + p->pos + 2, p->n - p->pos - 2,
					     &cp, &used);
			/* bad digits in a low half leave a lone surrogate too */
			if (e == UTF8_ESCAPE_BAD_HEX && used < 4)
				return pfail(p, "invalid \\u escape");
			if (e != UTF8_ESCAPE_OK)
				return pfail(p, "lone surrogate in \\u escape");
			k += utf8_put(o + k, cp);
			p->pos += used;
			break;
		}
		default:
			p->pos++;
			return pfail(p, "invalid escape");
		}
		p->pos += 2;
	}
	d->nodes[idx].flags |= JNODE_ESCAPED;
	d->nodes[idx].str = (uint32_t)d->arena_len;
	d->nodes[idx].count = (uint32_t)k;
	d->arena_len += k;
	return 0;
}

/* 1 for bytes that need no attention inside a string: printable ASCII
 * but '"' and '\\'. */
static const uint8_t plain[256] = {
	[0x20 ... 0x21] = 1, /* 0x22 is '"' */
	[0x23 ... 0x5b] = 1, /* 0x5c is '\\' */
	[0x5d ... 0x7f] = 1,
};

static int parse_string(struct pstate *p)
{
	long idx = new_node(p, J_STR);
	const uint8_t *s = p->s;
	size_t from, pos, n = p->n;
	int rc;

	if (idx < 0)
		return (int)idx;
	/* Locals, not p->pos: stores through uint8_t pointers may alias
	 * anything, which would reload p->pos on every byte. */
	from = pos = p->pos + 1;
	for (;;) {
		while (pos + 4 <= n && plain[s[pos]] && plain[s[pos + 1]] &&
		       plain[s[pos + 2]] && plain[s[pos + 3]])
			pos += 4;
		while (pos < n && plain[s[pos]])
			pos++;
		if (pos >= n) {
			p->pos = pos;
			return pfail(p, "unterminated string");
		}
		uint8_t c = s[pos];

		if (c == '"') {
			p->d->nodes[idx].str = (uint32_t)from;
			p->d->nodes[idx].count = (uint32_t)(pos - from);
			p->pos = pos + 1;
			break;
		}
		p->pos = pos;
		if (c == '\\') {
			rc = parse_escaped(p, idx, from);
			if (rc)
				return rc;
			break;
		}
		if (c < 0x20)
			return pfail(p, "control character in string");
		size_t u = utf8_seq_len(s + pos, n - pos);

		if (!u)
			return pfail(p, "invalid UTF-8");
		pos += u;
	}
	finish_node(p, idx);
	return 0;
}

static bool is_digit(const struct pstate *p)
{
	return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

static int parse_number(struct pstate *p)
{
	long idx = new_node(p, J_NUM);

	if (idx < 0)
		return (int)idx;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p))
		return unexpected(p, "digit");
	if (p->s[p->pos] == '0')
		p->pos++;
	else
		while (is_digit(p))
			p->pos++;
	if (p->pos < p->n && p->s[p->pos] == '.') {
		p->pos++;
		if (!is_digit(p))
			return unexpected(p, "digit after '.'");
		while (is_digit(p))
			p->pos++;
	}
	if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p))
			return unexpected(p, "digit in exponent");
		while (is_digit(p))
			p->pos++;
	}
	finish_node(p, idx);
	return 0;
}

static int parse_literal(struct pstate *p, const char *word, enum jtype t)
{
	size_t k = strlen(word);
	long idx;

	if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
		return unexpected(p, "a JSON value");
	idx = new_node(p, t);
	if (idx < 0)
		return (int)idx;
	p->pos += k;
	finish_node(p, idx);
	return 0;
}

static int parse_value(struct pstate *p, unsigned depth);

static int parse_container(struct pstate *p, unsigned depth, bool obj)
{
	long idx = new_node(p, obj ? J_OBJ : J_ARR);
	uint32_t count = 0;
	uint8_t close = obj ? '}' : ']';
	int rc;

	if (idx < 0)
		return (int)idx;
	if (depth >= JSON_DIFF_MAX_DEPTH)
		return pfail(p, "nesting deeper than %d", JSON_DIFF_MAX_DEPTH);
	p->pos++;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == close) {
		p->pos++;
		goto done;
	}
	for (;;) {
		if (obj) {
			skip_ws(p);
			if (p->pos >= p->n || p->s[p->pos] != '"')
				return unexpected(p, "a member name");
			rc = parse_string(p);
			if (rc)
				return rc;
			skip_ws(p);
			if (p->pos >= p->n || p->s[p->pos] != ':')
				return unexpected(p, "':'");
			p->pos++;
		}
		rc = parse_value(p, depth + 1);
		if (rc)
			return rc;
		count++;
		skip_ws(p);
		if (p->pos < p->n && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->n && p->s[p->pos] == close) {
			p->pos++;
			break;
		}
		return unexpected(p, obj ? "',' or '}'" : "',' or ']'");
	}
done:
	p->d->nodes[idx].count = count;
	finish_node(p, idx);
	return 0;
}

static int parse_value(struct pstate *p, unsigned depth)
{
	skip_ws(p);
	if (p->pos >= p->n)
		return unexpected(p, "a JSON value");
	switch (p->s[p->pos]) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", J_TRUE);
	case 'f':
		return parse_literal(p, "false", J_FALSE);
	case 'n':
		return parse_literal(p, "null", J_NULL);
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return parse_number(p);
	default:
		return unexpected(p, "a JSON value");
	}
}

enum json_doc_result json_doc_parse(const void *data, size_t len,
				    struct json_doc **out, char *err,
				    size_t errlen)
{
	struct json_doc *d = NULL;
	struct pstate p = { .s = data, .n = len, .err = err, .errlen = errlen };
	enum json_doc_result res = JSON_DOC_NOMEM;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len >= UINT32_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "document over 4 GiB");
		return JSON_DOC_INVALID;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		goto cleanup;
	d->src = data;
	d->len = len;
	d->cap = len / 4 + 16; /* rarely outgrown: ~1 node per 4 bytes */
	d->nodes = malloc(d->cap * sizeof(*d->nodes));
	if (!d->nodes)
		goto cleanup;
	p.d = d;
	rc = parse_value(&p, 0);
	if (rc == 0) {
		skip_ws(&p);
		if (p.pos != p.n)
			rc = pfail(&p, "trailing data after the JSON value");
	}
	if (rc == P_INVALID) {
		res = JSON_DOC_INVALID;
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	*out = d;
	return JSON_DOC_OK;
cleanup:
	if (res == JSON_DOC_NOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	json_doc_free(d);
	return res;
}

void json_doc_free(struct json_doc *d)
{
	if (!d)
		return;
	free(d->nodes);
	free(d->arena);
	free(d);
}

size_t json_doc_nodes(const struct json_doc *d)
{
	return d ? d->n : 0;
}

/* ---- values ------------------------------------------------------- */

static const char *node_str(const struct json_doc *d, const struct jnode *nd)
{
	return (const char *)((nd->flags & JNODE_ESCAPED) ? d->arena + nd->str
							  : d->src + nd->str);
}

/*
 * A number literal as digits * 10^exp with no leading or trailing zero
 * digit. digits points into a caller buffer of at least the literal's
 * length. Exponents are saturated at +-1e17 (far beyond any double).
 */
struct canon {
	bool neg, zero;
	const char *digits;
	size_t nd;
	int64_t exp;
};

static void canon_number(const char *s, size_t n, char *buf, struct canon *c)
{
	size_t i = 0, nd = 0, frac = 0;
	int64_t e = 0;
	bool eneg = false, seen_nonzero = false;

	c->neg = n > 0 && s[0] == '-';
	if (c->neg)
		i++;
	for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] == '.') {
			frac = 1;
			continue;
		}
		if (frac)
			frac++;
		if (s[i] == '0' && !seen_nonzero)
			continue;
		seen_nonzero = true;
		buf[nd++] = s[i];
	}
	frac = frac ? frac - 1 : 0;
	if (i < n) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		for (; i < n; i++) {
			if (e < 100000000000000000LL)
				e = e * 10 + (s[i] - '0');
		}
		if (eneg)
			e = -e;
	}
	e -= (int64_t)frac;
	while (nd > 0 && buf[nd - 1] == '0') {
		nd--;
		e++;
	}
	c->digits = buf;
	c->nd = nd;
	c->zero = nd == 0;
	c->exp = c->zero ? 0 : e;
}

static bool canon_equal(const struct canon *a, const struct canon *b)
{
	if (a->zero || b->zero)
		return a->zero && b->zero;
	return a->neg == b->neg && a->nd == b->nd && a->exp == b->exp &&
	       memcmp(a->digits, b->digits, a->nd) == 0;
}

static double literal_double(const char *s, size_t n)
{
	char small[64];
	char *buf = n < sizeof(small) ? small : malloc(n + 1);
	double v;

	if (!buf)
		return NAN;
	memcpy(buf, s, n);
	buf[n] = '\0';
	v = strtod(buf, NULL);
	if (buf != small)
		free(buf);
	return v;
}

/* Number equality: exact decimal value, else within relative tolerance. */
static bool num_equal(const char *a, size_t an, const char *b, size_t bn,
		      double tol)
{
	char sa[64], sb[64];
	char *ba = an <= sizeof(sa) ? sa : malloc(an);
	char *bb = bn <= sizeof(sb) ? sb : malloc(bn);
	struct canon ca, cb;
	bool eq;

	if (!ba || !bb) {
		/* No memory for the digits: fall back to the spelling. */
		eq = an == bn && memcmp(a, b, an) == 0;
		goto cleanup;
	}
	canon_number(a, an, ba, &ca);
	canon_number(b, bn, bb, &cb);
	eq = canon_equal(&ca, &cb);
	if (!eq && tol > 0) {
		double x = literal_double(a, an), y = literal_double(b, bn);

		if (isfinite(x) && isfinite(y))
			eq = fabs(x - y) <= tol * fmax(fabs(x), fabs(y));
	}
cleanup:
	if (ba != sa)
		free(ba);
	if (bb != sb)
		free(bb);
	return eq;
}

/* ---- rendering values for diff records ---------------------------- */

static json_t *node_json(const struct json_doc *d, uint32_t idx);

static json_t *number_json(const char *s, size_t n)
{
	bool integer = n < 21;

	for (size_t i = 0; i < n && integer; i++)
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			integer = false;
	if (integer) {
		char buf[24];
		char *end;
		long long v;

		memcpy(buf, s, n);
		buf[n] = '\0';
		errno = 0;
		v = strtoll(buf, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(v);
	}
	return json_stringn(s, n);
}

/* Recursion here is bounded by value_cap: only values whose compact text
 * fits are built. */
static json_t *node_json(const struct json_doc *d, uint32_t idx)
{
	const struct jnode *nd = &d->nodes[idx];
	json_t *v = NULL, *child;
	uint32_t i;

	switch (nd->type) {
	case J_NULL:
		return json_null();
	case J_TRUE:
		return json_true();
	case J_FALSE:
		return json_false();
	case J_NUM:
		return number_json((const char *)d->src + nd->start,
				   nd->end - nd->start);
	case J_STR:
		return json_stringn(node_str(d, nd), nd->count);
	case J_ARR:
		v = json_array();
		for (i = idx + 1; v && i < nd->next; i = d->nodes[i].next) {
			child = node_json(d, i);
			if (!child || json_array_append_new(v, child)) {
				json_decref(v);
				return NULL;
			}
		}
		return v;
	case J_OBJ:
		v = json_object();
		for (i = idx + 1; v && i < nd->next;) {
			const struct jnode *k = &d->nodes[i];

			child = node_json(d, i + 1);
			if (!child || json_object_setn_new(v, node_str(d, k),
							   k->count, child)) {
				json_decref(v);
				return NULL;
			}
			i = d->nodes[i + 1].next;
		}
		return v;
	}
	return NULL;
}

/*
 * Copies the value's text without insignificant blanks into buf (cap + 1
 * bytes); returns the compact length, or cap + 1 when it is longer.
 */
static size_t compact_text(const struct json_doc *d, const struct jnode *nd,
			   char *buf, size_t cap)
{
	bool in_str = false, esc = false;
	size_t k = 0;

	for (uint32_t i = nd->start; i < nd->end; i++) {
		uint8_t c = d->src[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
			continue;
		} else if (c == '"') {
			in_str = true;
		}
		buf[k++] = (char)c;
		if (k > cap)
			return cap + 1; /* buf[cap] tells where a cut may go */
	}
	return k;
}

/* Sets rec[side] (and side_truncated) to the node's value, bounded. */
static int put_value(json_t *rec, const char *side, const struct json_doc *d,
		     long idx, size_t cap)
{
	const struct jnode *nd;
	char *buf = NULL;
	json_t *v;
	size_t k;
	int ret = -ENOMEM;

	if (idx < 0)
		return json_object_set_new(rec, side, json_null()) ? -ENOMEM : 0;
	nd = &d->nodes[idx];
	if (nd->end - nd->start <= cap) {
		v = node_json(d, (uint32_t)idx);
	} else {
		buf = malloc(cap + 1);
		if (!buf)
			goto cleanup;
		k = compact_text(d, nd, buf, cap);
		if (k <= cap) {
			v = node_json(d, (uint32_t)idx);
		} else {
			char key[32];

			/* Cut on a character boundary: the source is valid
			 * UTF-8, so is every whole-character prefix. */
			k = cap;
			while (k > 0 && ((uint8_t)buf[k] & 0xc0) == 0x80)
				k--;
			v = json_stringn(buf, k);
			snprintf(key, sizeof(key), "%s_truncated", side);
			if (json_object_set_new(rec, key, json_true()))
				goto cleanup;
		}
	}
	if (!v || json_object_set_new(rec, side, v))
		goto cleanup;
	ret = 0;
cleanup:
	free(buf);
	return ret;
}

/* ---- comparison --------------------------------------------------- */

struct member {
	const char *k;
	uint32_t klen;
	uint32_t val;   /* value node */
	uint32_t order; /* position in the object */
	uint32_t matched;
};

struct cmp {
	const struct json_diff_opts *o;
	const struct json_doc *a, *b;
	json_t *diffs;
	size_t total;
	int err;
	/* probe mode: only "equal or not", nothing recorded */
	bool probe, hit;
	char *path;
	size_t path_len, path_cap;
	struct jsonpath_state *st;
	size_t st_n, st_cap;
	struct member *mem;
	size_t mem_n, mem_cap;
};

#define NONE (-1L)

static void emit(struct cmp *c, const char *kind, long ai, long bi)
{
	json_t *rec;

	if (c->probe) {
		c->hit = true;
		return;
	}
	c->total++;
	if (c->err || json_array_size(c->diffs) >= c->o->max_diffs)
		return;
	rec = json_object();
	if (!rec || json_object_set_new(rec, "path",
					json_stringn(c->path, c->path_len)) ||
	    json_object_set_new(rec, "kind", json_string(kind)) ||
	    put_value(rec, "primary", c->a, ai, c->o->value_cap) ||
	    put_value(rec, "candidate", c->b, bi, c->o->value_cap) ||
	    json_array_append(c->diffs, rec))
		c->err = -ENOMEM;
	json_decref(rec);
}

static bool path_reserve(struct cmp *c, size_t more)
{
	if (vec_reserve(c->path, c->path_cap, c->path_len + more + 1) < 0) {
		c->err = -ENOMEM;
		return false;
	}
	return true;
}

static bool st_reserve(struct cmp *c, size_t more)
{
	if (vec_reserve(c->st, c->st_cap, c->st_n + more) < 0) {
		c->err = -ENOMEM;
		return false;
	}
	return true;
}

static int class_of(uint8_t t)
{
	return t == J_TRUE ? J_FALSE : t;
}

static void cmp_value(struct cmp *c, long ai, long bi, size_t so, size_t sn,
		      unsigned depth);

static bool same_text(const struct cmp *c, long ai, long bi)
{
	const struct jnode *an = &c->a->nodes[ai], *bn = &c->b->nodes[bi];
	uint32_t len = an->end - an->start;

	return len == bn->end - bn->start &&
	       memcmp(c->a->src + an->start, c->b->src + bn->start, len) == 0;
}

/*
 * Steps into a child (member name or index) of both sides: extends the
 * path and the states, skips ignored children, reports a child present on
 * one side only, compares the rest. ai/bi are NONE for a missing side.
 */
static void descend(struct cmp *c, size_t so, size_t sn, const char *name,
		    size_t name_len, long idx, long ai, long bi,
		    unsigned depth)
{
	size_t saved_path = c->path_len, saved_st = c->st_n, cs, cn = 0;

	if (c->err || (c->probe && c->hit))
		return;
	/* Identical text is equal under any rule: the common case, checked
	 * before any path or state work. */
	if (ai != NONE && bi != NONE && same_text(c, ai, bi))
		return;
	if (!c->probe) {
		if (!path_reserve(c, name ? name_len * 6 + 8 : 24))
			return;
		if (name)
			jsonpath_append_name(c->path, c->path_cap, &c->path_len,
					     name, name_len);
		else if (idx >= 0)
			jsonpath_append_index(c->path, c->path_cap,
					      &c->path_len, (size_t)idx);
	}
	cs = c->st_n;
	if (sn) {
		if (!st_reserve(c, 2 * sn))
			goto out;
		cn = jsonpath_step(c->o->paths, c->st + so, sn, name, name_len,
				   name ? 0 : idx, c->st + cs);
		c->st_n += cn;
		if (jsonpath_matched(c->o->paths, c->st + cs, cn) &
		    JSON_DIFF_IGNORE)
			goto out;
	}
	if (ai == NONE)
		emit(c, "added", NONE, bi);
	else if (bi == NONE)
		emit(c, "removed", ai, NONE);
	else
		cmp_value(c, ai, bi, cs, cn, depth + 1);
out:
	c->path_len = saved_path;
	if (c->path)
		c->path[saved_path] = '\0';
	c->st_n = saved_st;
}

static int member_cmp(const void *x, const void *y)
{
	const struct member *a = x, *b = y;

	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	int r = memcmp(a->k, b->k, a->klen);

	if (r)
		return r;
	return a->order < b->order ? -1 : a->order > b->order;
}

static void sort_members(struct member *m, size_t n)
{
	if (n > 16) {
		qsort(m, n, sizeof(*m), member_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct member t = m[i];
		size_t j = i;

		while (j > 0 && member_cmp(&m[j - 1], &t) > 0) {
			m[j] = m[j - 1];
			j--;
		}
		m[j] = t;
	}
}

/* Pushes the members of object idx onto c->mem sorted by name; returns the
 * base index in c->mem, or -1 on allocation failure. */
static long collect_members(struct cmp *c, const struct json_doc *d,
			    uint32_t idx)
{
	const struct jnode *nd = &d->nodes[idx];
	size_t base = c->mem_n, k = 0;

	if (vec_reserve(c->mem, c->mem_cap, c->mem_n + nd->count + 1) < 0) {
		c->err = -ENOMEM;
		return -1;
	}
	for (uint32_t i = idx + 1; i < nd->next; k++) {
		struct member *m = &c->mem[base + k];

		m->k = node_str(d, &d->nodes[i]);
		m->klen = d->nodes[i].count;
		m->val = i + 1;
		m->order = (uint32_t)k;
		m->matched = 0;
		i = d->nodes[i + 1].next;
	}
	c->mem_n += k;
	sort_members(c->mem + base, k);
	return (long)base;
}

/* Index (relative to base) of the last member named k, or -1. Duplicate
 * names: the last one wins, so only it is ever looked up. */
static long find_member(const struct member *m, size_t n, const char *k,
			uint32_t klen)
{
	size_t lo = 0, hi = n;
	struct member key = { .k = k, .klen = klen, .order = UINT32_MAX };

	while (lo < hi) { /* first member > key (ignoring order: max) */
		size_t mid = lo + (hi - lo) / 2;

		if (member_cmp(&m[mid], &key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || m[lo - 1].klen != klen ||
	    memcmp(m[lo - 1].k, k, klen) != 0)
		return -1;
	return (long)lo - 1;
}

static void cmp_object(struct cmp *c, uint32_t ai, uint32_t bi, size_t so,
		       size_t sn, unsigned depth)
{
	const struct jnode *an = &c->a->nodes[ai], *bn = &c->b->nodes[bi];
	size_t na = an->count, nb = bn->count, saved = c->mem_n;
	long abase, bbase;
	uint32_t i, k;

	abase = collect_members(c, c->a, ai);
	if (abase < 0)
		return;
	bbase = collect_members(c, c->b, bi);
	if (bbase < 0)
		goto out;
	for (i = ai + 1, k = 0; i < an->next && !c->err; k++) {
		const struct jnode *kn = &c->a->nodes[i];
		const char *key = node_str(c->a, kn);
		uint32_t val = i + 1;
		long la, lb;

		i = c->a->nodes[i + 1].next;
		la = find_member(c->mem + abase, na, key, kn->count);
		if (la < 0 || c->mem[abase + la].order != k)
			continue; /* an earlier duplicate: overridden */
		lb = find_member(c->mem + bbase, nb, key, kn->count);
		if (lb >= 0)
			c->mem[bbase + lb].matched = 1;
		descend(c, so, sn, key, kn->count, 0, val,
			lb < 0 ? NONE : (long)c->mem[bbase + lb].val, depth);
		if (c->probe && c->hit)
			goto out;
	}
	for (i = bi + 1, k = 0; i < bn->next && !c->err; k++) {
		const struct jnode *kn = &c->b->nodes[i];
		const char *key = node_str(c->b, kn);
		uint32_t val = i + 1;
		long lb;

		i = c->b->nodes[i + 1].next;
		lb = find_member(c->mem + bbase, nb, key, kn->count);
		if (lb < 0 || c->mem[bbase + lb].order != k ||
		    c->mem[bbase + lb].matched)
			continue;
		descend(c, so, sn, key, kn->count, 0, NONE, val, depth);
		if (c->probe && c->hit)
			goto out;
	}
out:
	c->mem_n = saved;
}

static void cmp_array(struct cmp *c, uint32_t ai, uint32_t bi, size_t so,
		      size_t sn, unsigned depth)
{
	const struct jnode *an = &c->a->nodes[ai], *bn = &c->b->nodes[bi];
	uint32_t i = ai + 1, j = bi + 1;
	long idx = 0;

	for (; i < an->next && j < bn->next; idx++) {
		descend(c, so, sn, NULL, 0, idx, i, j, depth);
		if (c->err || (c->probe && c->hit))
			return;
		i = c->a->nodes[i].next;
		j = c->b->nodes[j].next;
	}
	for (; i < an->next; i = c->a->nodes[i].next, idx++) {
		descend(c, so, sn, NULL, 0, idx, i, NONE, depth);
		if (c->err || (c->probe && c->hit))
			return;
	}
	for (; j < bn->next; j = c->b->nodes[j].next, idx++) {
		descend(c, so, sn, NULL, 0, idx, NONE, j, depth);
		if (c->err || (c->probe && c->hit))
			return;
	}
}

/* ---- unordered arrays (multisets) --------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/*
 * A structural hash consistent with cmp_value() equality under the same
 * states: ignored members left out, object members and unordered elements
 * combined order-independently, numbers by canonical value (by type only
 * when a tolerance makes near values equal). Equal values hash equal; the
 * converse is checked by a probe comparison.
 */
static uint64_t hash_value(struct cmp *c, const struct json_doc *d,
			   uint32_t idx, size_t so, size_t sn);

static uint64_t hash_child(struct cmp *c, const struct json_doc *d,
			   uint32_t idx, size_t so, size_t sn,
			   const char *name, size_t name_len, long pos,
			   bool *ignored)
{
	size_t saved = c->st_n, cs = c->st_n, cn = 0;
	uint64_t h = 0;

	*ignored = false;
	if (sn) {
		if (!st_reserve(c, 2 * sn))
			return 0;
		cn = jsonpath_step(c->o->paths, c->st + so, sn, name, name_len,
				   pos, c->st + cs);
		c->st_n += cn;
		if (jsonpath_matched(c->o->paths, c->st + cs, cn) &
		    JSON_DIFF_IGNORE) {
			*ignored = true;
			goto out;
		}
	}
	h = hash_value(c, d, idx, cs, cn);
out:
	c->st_n = saved;
	return h;
}

static uint64_t hash_value(struct cmp *c, const struct json_doc *d,
			   uint32_t idx, size_t so, size_t sn)
{
	const struct jnode *nd = &d->nodes[idx];
	uint64_t h = mix((uint64_t)class_of(nd->type) + 1);
	bool unordered, ignored;
	long pos = 0;

	if (c->err)
		return 0;
	switch (nd->type) {
	case J_NULL:
	case J_TRUE:
	case J_FALSE:
		return h ^ nd->type;
	case J_NUM: {
		char small[64];
		size_t n = nd->end - nd->start;
		char *buf;
		struct canon cn;

		if (c->o->tolerance > 0)
			return h;
		buf = n <= sizeof(small) ? small : malloc(n);
		if (!buf) {
			c->err = -ENOMEM;
			return 0;
		}
		canon_number((const char *)d->src + nd->start, n, buf, &cn);
		if (!cn.zero)
			h ^= XXH3_64bits(cn.digits, cn.nd) ^
			     mix((uint64_t)cn.exp * 2 + cn.neg);
		if (buf != small)
			free(buf);
		return h;
	}
	case J_STR:
		return h ^ XXH3_64bits(node_str(d, nd), nd->count);
	case J_ARR:
		unordered = sn && (jsonpath_matched(c->o->paths, c->st + so,
						    sn) & JSON_DIFF_UNORDERED);
		for (uint32_t i = idx + 1; i < nd->next;
		     i = d->nodes[i].next, pos++) {
			uint64_t e = hash_child(c, d, i, so, sn, NULL, 0,
						unordered ? JSONPATH_ANY_INDEX
							  : pos,
						&ignored);

			if (ignored)
				continue;
			if (unordered)
				h += mix(e);
			else
				h = mix(h ^ e) + (uint64_t)pos;
		}
		return h;
	case J_OBJ: {
		size_t saved = c->mem_n;
		long base = collect_members(c, d, idx);

		if (base < 0)
			return 0;
		for (size_t k = 0; k < nd->count; k++) {
			struct member m = c->mem[base + k];
			uint64_t e;

			/* last of a run of duplicates wins */
			if (k + 1 < nd->count &&
			    c->mem[base + k + 1].klen == m.klen &&
			    memcmp(c->mem[base + k + 1].k, m.k, m.klen) == 0)
				continue;
			e = hash_child(c, d, m.val, so, sn, m.k, m.klen, 0,
				       &ignored);
			if (!ignored)
				h += mix(XXH3_64bits(m.k, m.klen) ^ mix(e));
		}
		c->mem_n = saved;
		return h;
	}
	}
	return h;
}

struct elem {
	uint64_t hash;
	uint32_t node;
	uint32_t pos;
	bool matched;
};

static int elem_cmp(const void *x, const void *y)
{
	const struct elem *a = x, *b = y;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int elem_pos_cmp(const void *x, const void *y)
{
	const struct elem *a = x, *b = y;

	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Probe comparisons one multiset may spend before giving up matching. */
#define MULTISET_PROBE_BUDGET 200000

static struct elem *collect_elems(struct cmp *c, const struct json_doc *d,
				  uint32_t idx, size_t so, size_t sn)
{
	const struct jnode *nd = &d->nodes[idx];
	struct elem *v = calloc(nd->count ? nd->count : 1, sizeof(*v));
	uint32_t k = 0;

	if (!v) {
		c->err = -ENOMEM;
		return NULL;
	}
	for (uint32_t i = idx + 1; i < nd->next; i = d->nodes[i].next, k++) {
		bool ignored;

		v[k].node = i;
		v[k].pos = k;
		v[k].hash = hash_child(c, d, i, so, sn, NULL, 0,
				       JSONPATH_ANY_INDEX, &ignored);
		/* An ignored element matches anything: mark it matched. */
		v[k].matched = ignored;
	}
	qsort(v, k, sizeof(*v), elem_cmp);
	return v;
}

/* Elements are equal when a probe comparison finds no difference. */
static bool probe_equal(struct cmp *c, uint32_t ai, uint32_t bi, size_t so,
			size_t sn, unsigned depth)
{
	bool probe = c->probe, hit = c->hit;
	size_t saved_st = c->st_n, cs, cn = 0;
	bool eq;

	c->probe = true;
	c->hit = false;
	cs = c->st_n;
	if (sn && st_reserve(c, 2 * sn)) {
		cn = jsonpath_step(c->o->paths, c->st + so, sn, NULL, 0,
				   JSONPATH_ANY_INDEX, c->st + cs);
		c->st_n += cn;
	}
	cmp_value(c, ai, bi, cs, cn, depth + 1);
	eq = !c->hit;
	c->st_n = saved_st;
	c->probe = probe;
	c->hit = hit;
	return eq;
}

static void cmp_multiset(struct cmp *c, uint32_t ai, uint32_t bi, size_t so,
			 size_t sn, unsigned depth)
{
	size_t na = c->a->nodes[ai].count, nb = c->b->nodes[bi].count;
	struct elem *ea = NULL, *eb = NULL;
	size_t i = 0, j = 0, budget = MULTISET_PROBE_BUDGET;

	ea = collect_elems(c, c->a, ai, so, sn);
	if (!ea)
		goto cleanup;
	eb = collect_elems(c, c->b, bi, so, sn);
	if (!eb)
		goto cleanup;
	/* Walk equal-hash groups; match greedily inside each group. */
	while (i < na && j < nb && !c->err) {
		if (ea[i].hash < eb[j].hash) {
			i++;
			continue;
		}
		if (ea[i].hash > eb[j].hash) {
			j++;
			continue;
		}
		size_t ie = i, je = j;

		while (ie < na && ea[ie].hash == ea[i].hash)
			ie++;
		while (je < nb && eb[je].hash == eb[j].hash)
			je++;
		for (size_t x = i; x < ie; x++) {
			if (ea[x].matched)
				continue;
			/* matched ones at the front are skipped once */
			while (j < je && eb[j].matched)
				j++;
			for (size_t y = j; y < je && budget; y++) {
				if (eb[y].matched)
					continue;
				budget--;
				if (probe_equal(c, ea[x].node, eb[y].node, so,
						sn, depth)) {
					ea[x].matched = eb[y].matched = true;
					break;
				}
			}
		}
		i = ie;
		j = je;
	}
	qsort(ea, na, sizeof(*ea), elem_pos_cmp);
	qsort(eb, nb, sizeof(*eb), elem_pos_cmp);
	for (i = 0; i < na && !c->err; i++) {
		if (!ea[i].matched)
			descend(c, so, 0, NULL, 0, ea[i].pos, ea[i].node, NONE,
				depth);
		if (c->probe && c->hit)
			goto cleanup;
	}
	for (j = 0; j < nb && !c->err; j++) {
		if (!eb[j].matched)
			descend(c, so, 0, NULL, 0, eb[j].pos, NONE, eb[j].node,
				depth);
		if (c->probe && c->hit)
			goto cleanup;
	}
cleanup:
	free(ea);
	free(eb);
}

static void cmp_value(struct cmp *c, long ai, long bi, size_t so, size_t sn,
		      unsigned depth)
{
	const struct jnode *an = &c->a->nodes[ai], *bn = &c->b->nodes[bi];
	uint32_t alen = an->end - an->start, blen = bn->end - bn->start;

	/* Identical text is equal under any rule: the common case. */
	if (alen == blen &&
	    memcmp(c->a->src + an->start, c->b->src + bn->start, alen) == 0)
		return;
	if (class_of(an->type) != class_of(bn->type)) {
		emit(c, "type", ai, bi);
		return;
	}
	switch (an->type) {
	case J_NULL:
		return;
	case J_TRUE:
	case J_FALSE:
		if (an->type != bn->type)
			emit(c, "changed", ai, bi);
		return;
	case J_NUM:
		if (!num_equal((const char *)c->a->src + an->start, alen,
			       (const char *)c->b->src + bn->start, blen,
			       c->o->tolerance))
			emit(c, "changed", ai, bi);
		return;
	case J_STR:
		if (an->count != bn->count ||
		    memcmp(node_str(c->a, an), node_str(c->b, bn),
			   an->count) != 0)
			emit(c, "changed", ai, bi);
		return;
	case J_ARR:
		if (sn && (jsonpath_matched(c->o->paths, c->st + so, sn) &
			   JSON_DIFF_UNORDERED))
			cmp_multiset(c, (uint32_t)ai, (uint32_t)bi, so, sn,
				     depth);
		else
			cmp_array(c, (uint32_t)ai, (uint32_t)bi, so, sn, depth);
		return;
	case J_OBJ:
		cmp_object(c, (uint32_t)ai, (uint32_t)bi, so, sn, depth);
		return;
	}
}

int json_diff(const struct json_diff_opts *opts, const struct json_doc *a,
	      const struct json_doc *b, json_t *diffs, size_t *total)
{
	struct cmp c = { .o = opts, .a = a, .b = b, .diffs = diffs };
	size_t sn;
	int ret;

	*total = 0;
	c.path_cap = 256;
	c.path = malloc(c.path_cap);
	sn = jsonpath_set_count(opts->paths);
	c.st_cap = sn * 4 + 16;
	c.st = malloc(c.st_cap * sizeof(*c.st));
	if (!c.path || !c.st) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c.path[0] = '$';
	c.path[1] = '\0';
	c.path_len = 1;
	c.st_n = jsonpath_root(opts->paths, c.st);
	if (!(jsonpath_matched(opts->paths, c.st, c.st_n) & JSON_DIFF_IGNORE))
		cmp_value(&c, 0, 0, 0, c.st_n, 0);
	*total = c.total;
	ret = c.err;
cleanup:
	free(c.path);
	free(c.st);
	free(c.mem);
	return ret;
}
