// SPDX-License-Identifier: BSD-2-Clause
/*
 * rs_config_*: the daemon's options without their dashes, read by the
 * daemon's readers (util/parse) with the same ranges; a bad value returns
 * -EINVAL and keeps the message, where shadowd exits.
 */
#include "rs_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diff.h"
#include "endpoint.h"
#include "sample.h"
#include "util/dbuf.h"
#include "util/parse.h"

enum opt_kind { OPT_DOUBLE, OPT_LONG, OPT_UINT, OPT_SIZE, OPT_BYTES, OPT_BOOL,
		OPT_STRING, OPT_LIST };

/* How a value is checked beyond its syntax. */
enum opt_check { CHECK_NONE, CHECK_SAMPLE_KEY, CHECK_JSONPATH,
		 CHECK_UNORDERED, CHECK_ENDPOINT };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
	double lo, hi;
	enum opt_check check;
};

#define F(field) offsetof(struct rs_config, field)

static const struct opt opts[] = {
	{ "sample", OPT_DOUBLE, F(sample), 0, 1, CHECK_NONE },
	{ "sample-key", OPT_STRING, F(sample_key), 0, 0, CHECK_SAMPLE_KEY },
	{ "timeout", OPT_LONG, F(timeout_ms), 1, 600000, CHECK_NONE },
	{ "max-inflight", OPT_UINT, F(max_inflight), 1, 100000, CHECK_NONE },
	{ "replay-threads", OPT_UINT, F(threads), 1, 1024, CHECK_NONE },
	{ "max-queue", OPT_SIZE, F(max_queue), 1, 1000000, CHECK_NONE },
	{ "rate", OPT_DOUBLE, F(rate), 0, 1e9, CHECK_NONE },
	{ "replay-unsafe", OPT_BOOL, F(replay_unsafe), 0, 0, CHECK_NONE },
	{ "noise-recheck", OPT_BOOL, F(noise_recheck), 0, 0, CHECK_NONE },
	{ "ignore-header", OPT_LIST, F(ignore_header), 0, 0, CHECK_NONE },
	{ "ignore-json", OPT_LIST, F(ignore_json), 0, 0, CHECK_JSONPATH },
	{ "unordered", OPT_LIST, F(unordered), 0, 0, CHECK_UNORDERED },
	{ "float-tolerance", OPT_DOUBLE, F(float_tolerance), 0, 1, CHECK_NONE },
	{ "endpoint", OPT_LIST, F(endpoint), 0, 0, CHECK_ENDPOINT },
	{ "store", OPT_STRING, F(store), 0, 0, CHECK_NONE },
	{ "max-records", OPT_SIZE, F(max_records), 1, 100000000, CHECK_NONE },
	{ "examples", OPT_SIZE, F(examples), 1, 100000, CHECK_NONE },
	{ "redact-header", OPT_LIST, F(redact), 0, 0, CHECK_NONE },
	{ "log-size", OPT_SIZE, F(log_size), 0, 1000000, CHECK_NONE },
	{ "max-body", OPT_BYTES, F(max_body), 1, 1 << 30, CHECK_NONE },
};

#undef F

struct rs_config *rs_config_new(void)
{
	struct rs_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->sample = 1;
	c->timeout_ms = 2000;
	c->max_inflight = 64;
	c->threads = 4;
	c->max_queue = 1024;
	c->max_records = 10000;
	c->examples = 10;
	c->log_size = 100;
	c->max_body = 1 << 20;
	return c;
}

static void strlist_clean(struct rs_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

void rs_config_free(struct rs_config *c)
{
	if (!c)
		return;
	free(c->sample_key);
	free(c->store);
	strlist_clean(&c->ignore_header);
	strlist_clean(&c->ignore_json);
	strlist_clean(&c->unordered);
	strlist_clean(&c->redact);
	strlist_clean(&c->endpoint);
	free(c->error);
	free(c);
}

/* Keeps the first error's message for rs_shadower_new(); returns -EINVAL. */
static int bad(struct rs_config *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct rs_config *c, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!c->error)
		c->error = msg;
	else
		free(msg);
	return -EINVAL;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "", "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	if (!s) {
		*out = true;
		return true;
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcasecmp(s, yes[i]))
			return (*out = true);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcasecmp(s, no[i]))
			return !(*out = false);
	return false;
}

/* Checks a string value as the shadower will use it; the message in err. */
static int check_value(enum opt_check k, const char *v, char *err, size_t len)
{
	struct diff_rules *r = NULL;
	struct endpoint_rules *e = NULL;
	struct sample *s = NULL;
	int rc = 0;

	switch (k) {
	case CHECK_NONE:
		break;
	case CHECK_SAMPLE_KEY:
		rc = sample_new(0.5, v, &s, err, len);
		break;
	case CHECK_JSONPATH:
	case CHECK_UNORDERED:
		rc = -ENOMEM;
		if (!(r = diff_rules_new()))
			break;
		rc = k == CHECK_JSONPATH ? diff_rules_ignore_json(r, v, err, len) :
					   diff_rules_unordered(r, v, err, len);
		break;
	case CHECK_ENDPOINT:
		rc = -ENOMEM;
		if (!(e = endpoint_rules_new()))
			break;
		rc = endpoint_rules_add(e, v, err, len);
		break;
	}
	sample_free(s);
	diff_rules_free(r);
	endpoint_rules_free(e);
	return rc;
}

static int set_string(char **field, const char *v)
{
	char *copy = strdup(v);

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int list_add(struct rs_strlist *l, const char *v)
{
	char *copy = strdup(v);

	if (!copy)
		return -ENOMEM;
	if (vec_reserve(l->v, l->cap, l->n + 1) < 0) {
		free(copy);
		return -ENOMEM;
	}
	l->v[l->n++] = copy;
	return 0;
}

int rs_config_set(struct rs_config *c, const char *option, const char *value)
{
	const struct opt *o = NULL;
	char err[256] = "";
	char *base = (char *)c;
	uint64_t n;
	double d;
	bool b;
	int rc;

	if (!c || !option)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]) && !o; i++)
		if (!strcmp(opts[i].name, option))
			o = &opts[i];
	if (!o)
		return bad(c, "unknown option '%s'", option);
	if (o->kind == OPT_BOOL) {
		if (!parse_bool(value, &b))
			return bad(c, "%s %s: expected true or false", option,
				   value);
		*(bool *)(base + o->off) = b;
		return 0;
	}
	if (!value)
		return bad(c, "%s needs a value", option);
	switch (o->kind) {
	case OPT_DOUBLE:
		if (parse_number(value, o->lo, o->hi, &d))
			return bad(c, "%s %s: expected a number from %g to %g",
				   option, value, o->lo, o->hi);
		*(double *)(base + o->off) = d;
		return 0;
	case OPT_LONG:
	case OPT_UINT:
	case OPT_SIZE:
	case OPT_BYTES:
		if ((o->kind == OPT_BYTES
		     ? parse_bytes(value, (uint64_t)o->lo, (uint64_t)o->hi, &n)
		     : parse_unsigned(value, (uint64_t)o->lo, (uint64_t)o->hi, &n)))
			return bad(c, o->kind == OPT_BYTES ?
				   "%s %s: expected a size from 1 to 1G, e.g. 65536, 64k, 1M" :
				   "%s %s: expected a whole number from %.0f to %.0f",
				   option, value, o->lo, o->hi);
		if (o->kind == OPT_LONG)
			*(long *)(base + o->off) = (long)n;
		else if (o->kind == OPT_UINT)
			*(unsigned *)(base + o->off) = (unsigned)n;
		else
			*(size_t *)(base + o->off) = (size_t)n;
		return 0;
	default:
		break;
	}
	if (!*value)
		return bad(c, "%s needs a value", option);
	rc = check_value(o->check, value, err, sizeof(err));
	if (rc == -EINVAL)
		return bad(c, "%s %s: %s", option, value,
			   err[0] ? err : "bad value");
	if (rc < 0)
		return rc;
	return o->kind == OPT_STRING ? set_string((char **)(base + o->off), value) :
				       list_add((struct rs_strlist *)(base + o->off),
						value);
}
