// SPDX-License-Identifier: BSD-2-Clause
#include "sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "message.h"

#define SAMPLE_MAX_NAME 256

struct sample {
	double rate;
	enum sample_key_kind kind;
	char *name; /* header/cookie/query name */
	struct sample_stats stats;
};

uint64_t sample_hash(const void *key, size_t len)
{
	return XXH64(key, len, SAMPLE_SEED);
}

static double to_unit(uint64_t h)
{
	/* 53 high bits: every value is an exact double in [0, 1). */
	return (double)(h >> 11) * 0x1.0p-53;
}

double sample_value(const void *key, size_t len)
{
	return to_unit(sample_hash(key, len));
}

uint64_t sample_below(double rate)
{
	if (!(rate > 0))
		return 0;
	if (rate >= 1)
		return 1ull << 53;
	/* rate * 2^53 is exact: v * 2^-53 < rate iff v < ceil(rate * 2^53). */
	return (uint64_t)ceil(rate * 0x1.0p53);
}

bool sample_in_kernel(const struct sample *s)
{
	return !(s->rate > 0 && s->rate < 1) ||
	       s->kind == SAMPLE_KEY_REQUEST || s->kind == SAMPLE_KEY_PATH;
}

int sample_new(double rate, const char *spec, struct sample **out, char *err,
	       size_t errlen)
{
	static const struct {
		const char *prefix;
		enum sample_key_kind kind;
	} named[] = {
		{ "header:", SAMPLE_KEY_HEADER },
		{ "cookie:", SAMPLE_KEY_COOKIE },
		{ "query:", SAMPLE_KEY_QUERY },
	};
	struct sample *s = NULL;
	int rc = -EINVAL;

	*out = NULL;
	if (isnan(rate) || rate < 0 || rate > 1) {
		snprintf(err, errlen,
			 "--sample %g: the rate must be between 0 and 1", rate);
		goto cleanup;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto cleanup;
	}
	s->rate = rate;
	if (!spec || !strcmp(spec, "request")) {
		s->kind = SAMPLE_KEY_REQUEST;
	} else if (!strcmp(spec, "path")) {
		s->kind = SAMPLE_KEY_PATH;
	} else if (!strcmp(spec, "client-ip")) {
		s->kind = SAMPLE_KEY_CLIENT_IP;
	} else {
		size_t i;

		for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
			if (!strncmp(spec, named[i].prefix,
				     strlen(named[i].prefix)))
				break;
		if (i == sizeof(named) / sizeof(named[0])) {
			snprintf(err, errlen,
				 "--sample-key '%s': expected request, path, "
				 "client-ip, header:NAME, cookie:NAME or "
				 "query:NAME", spec);
			goto cleanup;
		}
		spec += strlen(named[i].prefix);
		if (!*spec || strlen(spec) > SAMPLE_MAX_NAME ||
		    strpbrk(spec, " \t\r\n;=&:")) {
			snprintf(err, errlen,
				 "--sample-key %s'%s': NAME must be 1 to %d "
				 "characters without spaces or ;=&:",
				 named[i].prefix, spec, SAMPLE_MAX_NAME);
			goto cleanup;
		}
		s->kind = named[i].kind;
		s->name = strdup(spec);
		if (!s->name) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto cleanup;
		}
	}
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	sample_free(s);
	return rc;
}

void sample_free(struct sample *s)
{
	if (!s)
		return;
	free(s->name);
	free(s);
}

/* The value of the first `name`=value pair in a Cookie header value. */
static bool find_cookie(const char *h, const char *name, const char **v,
			size_t *vlen)
{
	size_t nlen = strlen(name);

	while (*h) {
		const char *end, *eq;

		while (*h == ' ' || *h == '\t' || *h == ';')
			h++;
		end = strchr(h, ';');
		if (!end)
			end = h + strlen(h);
		eq = memchr(h, '=', (size_t)(end - h));
		if (eq && (size_t)(eq - h) == nlen && !memcmp(h, name, nlen)) {
			const char *e = end;

			while (e > eq + 1 && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*v = eq + 1;
			*vlen = (size_t)(e - (eq + 1));
			return true;
		}
		h = end;
	}
	return false;
}

static bool find_query(const char *target, const char *name, const char **v,
		       size_t *vlen)
{
	const char *q = strchr(target, '?');
	size_t nlen = strlen(name);

	if (!q)
		return false;
	q++;
	while (*q && *q != '#') {
		size_t plen = strcspn(q, "&#");
		const char *eq = memchr(q, '=', plen);
		size_t klen = eq ? (size_t)(eq - q) : plen;

		if (klen == nlen && !memcmp(q, name, nlen)) {
			*v = eq ? eq + 1 : q + plen;
			*vlen = eq ? plen - klen - 1 : 0;
			return true;
		}
		q += plen;
		if (*q == '&')
			q++;
	}
	return false;
}

/* "127.0.0.1:53412" -> "127.0.0.1", "[::1]:53412" -> "::1". */
static bool client_ip(const char *c, const char **v, size_t *vlen)
{
	const char *colon;

	if (!*c)
		return false;
	if (*c == '[') {
		const char *close = strchr(c, ']');

		if (!close || close == c + 1)
			return false;
		*v = c + 1;
		*vlen = (size_t)(close - c - 1);
		return true;
	}
	colon = strrchr(c, ':');
	*v = c;
	*vlen = colon ? (size_t)(colon - c) : strlen(c);
	return *vlen > 0;
}

static bool key_of(const struct sample *s, const struct exchange *x,
		   const char **v, size_t *vlen)
{
	const char *target = x->req.target ? x->req.target : "";

	switch (s->kind) {
	case SAMPLE_KEY_REQUEST:
		return false;
	case SAMPLE_KEY_PATH:
		*v = target;
		*vlen = strcspn(target, "?");
		return true;
	case SAMPLE_KEY_CLIENT_IP:
		return client_ip(x->client, v, vlen);
	case SAMPLE_KEY_HEADER: {
		const char *h = headers_get(&x->req.headers, s->name);

		if (!h)
			return false;
		*v = h;
		*vlen = strlen(h);
		return true;
	}
	case SAMPLE_KEY_COOKIE:
		for (size_t i = 0; i < x->req.headers.n; i++) {
			const struct header *h = &x->req.headers.v[i];

			if (!strcasecmp(h->name, "Cookie") &&
			    find_cookie(h->value, s->name, v, vlen))
				return true;
		}
		return false;
	case SAMPLE_KEY_QUERY:
		return find_query(target, s->name, v, vlen);
	}
	return false;
}

double sample_exchange_value(const struct sample *s, const struct exchange *x,
			     bool *fell_back)
{
	const char *v = NULL;
	size_t vlen = 0;
	XXH64_state_t st;
	bool found = key_of(s, x, &v, &vlen);

	if (fell_back)
		*fell_back = !found && s->kind != SAMPLE_KEY_REQUEST;
	if (found)
		return sample_value(v, vlen);
	/* method SP target, hashed in pieces: no allocation per exchange. */
	XXH64_reset(&st, SAMPLE_SEED);
	if (x->req.method)
		XXH64_update(&st, x->req.method, strlen(x->req.method));
	XXH64_update(&st, " ", 1);
	if (x->req.target)
		XXH64_update(&st, x->req.target, strlen(x->req.target));
	return to_unit(XXH64_digest(&st));
}

bool sample_decide(struct sample *s, const struct exchange *x)
{
	bool fell_back = false;
	bool yes;

	if (s->rate >= 1) {
		yes = true;
	} else if (s->rate <= 0) {
		yes = false;
	} else {
		yes = sample_exchange_value(s, x, &fell_back) < s->rate;
	}
	s->stats.seen++;
	s->stats.sampled += yes;
	s->stats.fallback += fell_back;
	return yes;
}

const struct sample_stats *sample_stats(const struct sample *s)
{
	return &s->stats;
}

enum sample_key_kind sample_kind(const struct sample *s)
{
	return s->kind;
}
