// SPDX-License-Identifier: BSD-2-Clause
/*
 * shadow-dump: reads the divergence store shadowd writes. Every command
 * prints human tables by default and DESIGN.md's JSON shapes with --json.
 * Exit 0 on success, 1 with one line on stderr for anything the user can
 * fix; verdict also exits 2 when there is not enough evidence yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "store.h"
#include "verdict.h"
#include "util/dbuf.h"
#include "util/json_get.h"
#include "util/parse.h"

#define DEFAULT_STORE "shadow.db"
#define DEFAULT_MAX_RATE 0.01
#define DEFAULT_MIN_SAMPLES 100
#define FOLLOW_INTERVAL_MS 200
#define SHOW_BODY_MAX 4096

enum opt_bit {
	O_JSON = 1 << 0,
	O_ENDPOINT = 1 << 1,
	O_PART = 1 << 2,
	O_SINCE = 1 << 3,
	O_LIMIT = 1 << 4,
	O_MAX_RATE = 1 << 5,
	O_MIN_SAMPLES = 1 << 6,
	O_HTML = 1 << 7,
};

struct opts {
	const char *store;
	unsigned given; /* enum opt_bit */
	bool json, color;
	struct store_filter filter;
	double max_rate;
	uint64_t min_samples;
	const char *html;
};

struct command {
	const char *name;
	int (*run)(struct store *s, struct opts *o, int argc, char **argv);
	unsigned allowed; /* enum opt_bit */
	int nargs;        /* positional arguments after the command */
	const char *usage, *help;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die_line(const char *fmt, ...)
{
	va_list ap;

	fputs("shadow-dump: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- colors ---- */

static const char *c_red(const struct opts *o) { return o->color ? "\033[31m" : ""; }
static const char *c_green(const struct opts *o) { return o->color ? "\033[32m" : ""; }
static const char *c_bold(const struct opts *o) { return o->color ? "\033[1m" : ""; }
static const char *c_dim(const struct opts *o) { return o->color ? "\033[2m" : ""; }
static const char *c_off(const struct opts *o) { return o->color ? "\033[0m" : ""; }

/* ---- aligned tables ---- */

struct table {
	size_t ncol, nrows;
	char **cells; /* nrows * ncol, owned */
	size_t cap;   /* cells allocated */
	unsigned right; /* bit i: column i right-aligned */
};

static void table_row(struct table *t, ...)
{
	va_list ap;

	if (vec_reserve(t->cells, t->cap, (t->nrows + 1) * t->ncol) < 0)
		return; /* the row is dropped; output stays aligned */
	va_start(ap, t);
	for (size_t c = 0; c < t->ncol; c++) {
		const char *s = va_arg(ap, const char *);

		t->cells[t->nrows * t->ncol + c] = strdup(s ? s : "");
	}
	va_end(ap);
	t->nrows++;
}

static size_t utf8_width(const char *s)
{
	size_t w = 0;

	for (; s && *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

/* Prints and frees the table; row 0 is the header (bold). */
static void table_print(struct table *t, const struct opts *o)
{
	size_t *w = calloc(t->ncol ? t->ncol : 1, sizeof(*w));

	for (size_t r = 0; w && r < t->nrows; r++)
		for (size_t c = 0; c < t->ncol; c++) {
			size_t l = utf8_width(t->cells[r * t->ncol + c]);

			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; w && r < t->nrows; r++) {
		if (r == 0)
			fputs(c_bold(o), stdout);
		for (size_t c = 0; c < t->ncol; c++) {
			const char *s = t->cells[r * t->ncol + c];
			size_t pad = w[c] - utf8_width(s);
			bool last = c + 1 == t->ncol;

			if (t->right & (1u << c))
				printf("%*s%s", (int)pad, "", s ? s : "");
			else if (last)
				fputs(s ? s : "", stdout);
			else
				printf("%s%*s", s ? s : "", (int)pad, "");
			if (!last)
				fputs("  ", stdout);
		}
		if (r == 0)
			fputs(c_off(o), stdout);
		fputc('\n', stdout);
	}
	for (size_t i = 0; i < t->nrows * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ---- small helpers ---- */

static bool jdiverged(const json_t *rec, const char *part)
{
	return json_is_true(json_object_get(json_object_get(rec, part), "diverged"));
}

static void parts_text(const json_t *rec, char *buf, size_t len)
{
	static const char *const parts[] = { "status", "headers", "body" };

	buf[0] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!jdiverged(rec, parts[i]))
			continue;
		if (buf[0])
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, parts[i], len - strlen(buf) - 1);
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

/* The first non-empty summary of the diverging parts. */
static const char *record_summary(const json_t *rec)
{
	static const char *const parts[] = { "status", "body", "headers" };

	for (int i = 0; i < 3; i++) {
		const char *s = json_get_str(json_object_get(rec, parts[i]), "summary");

		if (jdiverged(rec, parts[i]) && *s)
			return s;
	}
	return "";
}

static void fmt_u(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%" PRId64, v);
}

static void fmt_pct(char *buf, size_t len, double r)
{
	snprintf(buf, len, "%.2f%%", r * 100.0);
}

static void fmt_ms(char *buf, size_t len, double ms)
{
	if (ms >= 100)
		snprintf(buf, len, "%.0f", ms);
	else
		snprintf(buf, len, "%.3g", ms);
}

static int print_json(json_t *j, size_t flags)
{
	char *t = json_dumps(j, flags | JSON_ENCODE_ANY);

	if (!t)
		return -ENOMEM;
	puts(t);
	free(t);
	return 0;
}

/* print_json, then drops the reference it takes: for a command whose
 * --json output is the object it read, and nothing else. */
static int print_json_take(json_t *j, size_t flags)
{
	int rc = print_json(j, flags);

	json_decref(j);
	return rc;
}

/* ---- list / follow / export ---- */

static int collect(json_t *rec, void *arg)
{
	return json_array_append(arg, rec) ? -ENOMEM : 0;
}

static void list_row(struct table *t, const json_t *rec)
{
	char id[24], parts[32];

	fmt_u(id, sizeof(id), json_get_int(rec, "id"));
	parts_text(rec, parts, sizeof(parts));
	table_row(t, id, json_get_str(rec, "time"), json_get_str(rec, "endpoint"), parts,
		  record_summary(rec));
}

static int cmd_list(struct store *s, struct opts *o, int argc, char **argv)
{
	struct table t = { .ncol = 5, .right = 1 };
	json_t *arr = json_array(), *rec;
	size_t i;
	int rc;

	if (!arr)
		return -ENOMEM;
	o->filter.newest_first = true;
	rc = store_each_record(s, &o->filter, collect, arr);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	if (o->json)
		return print_json_take(arr, JSON_COMPACT);
	if (!json_array_size(arr)) {
		puts("no divergences recorded");
		json_decref(arr);
		return 0;
	}
	table_row(&t, "ID", "TIME", "ENDPOINT", "PARTS", "SUMMARY");
	json_array_foreach(arr, i, rec)
		list_row(&t, rec);
	table_print(&t, o);
	json_decref(arr);
	return 0;
}

static int export_one(json_t *rec, void *arg)
{
	(void)arg;
	return print_json(rec, JSON_COMPACT);
}

static int cmd_export(struct store *s, struct opts *o, int argc, char **argv)
{
	o->filter.newest_first = false;
	return store_each_record(s, &o->filter, export_one, NULL);
}

struct follow_ctx {
	struct opts *o;
	int64_t last;
};

static int follow_one(json_t *rec, void *arg)
{
	struct follow_ctx *f = arg;
	char parts[32];

	f->last = json_get_int(rec, "id");
	if (f->o->json)
		return print_json(rec, JSON_COMPACT);
	parts_text(rec, parts, sizeof(parts));
	printf("%s%" PRId64 "%s  %s  %s  %s%s%s  %s\n", c_bold(f->o), f->last,
	       c_off(f->o), json_get_str(rec, "time"), json_get_str(rec, "endpoint"),
	       c_red(f->o), parts, c_off(f->o), record_summary(rec));
	return 0;
}

static int cmd_follow(struct store *s, struct opts *o, int argc, char **argv)
{
	struct follow_ctx f = { .o = o };
	struct store_filter flt = o->filter;
	struct sigaction sa = { .sa_handler = on_signal };
	int64_t last = store_last_id(s);
	int rc = 0;

	if (last < 0)
		return (int)last;
	f.last = last;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	flt.newest_first = false;
	flt.limit = 0;
	while (!stop) {
		flt.after_id = f.last;
		rc = store_each_record(s, &flt, follow_one, &f);
		if (rc && rc != -EBUSY)
			break;
		rc = 0;
		fflush(stdout);
		usleep(FOLLOW_INTERVAL_MS * 1000);
	}
	return rc;
}

/* ---- show ---- */

static void show_value(const char *label, const char *color, const json_t *v,
		       const struct opts *o)
{
	char *t;

	if (!v)
		return;
	t = json_is_string(v) ? strdup(json_string_value(v))
			      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("    %s%s %s%s\n", color, label, t ? t : "?", c_off(o));
	free(t);
}

static void show_headers(const json_t *msg, const struct opts *o)
{
	size_t i;
	json_t *h;

	json_array_foreach(json_object_get(msg, "headers"), i, h)
		printf("    %s: %s\n", json_string_value(json_array_get(h, 0)),
		       json_string_value(json_array_get(h, 1)));
}

static void show_body(const json_t *msg, const struct opts *o)
{
	const char *b = json_string_value(json_object_get(msg, "body"));
	const char *b64 = json_string_value(json_object_get(msg, "body_base64"));
	size_t len;

	if (b64) {
		printf("    %s(binary body, %zu base64 characters)%s\n", c_dim(o),
		       strlen(b64), c_off(o));
		return;
	}
	if (!b || !*b)
		return;
	len = strlen(b);
	printf("\n    %.*s", (int)(len > SHOW_BODY_MAX ? SHOW_BODY_MAX : len), b);
	if (len > SHOW_BODY_MAX)
		printf("\n    %s... (%zu more bytes)%s", c_dim(o), len - SHOW_BODY_MAX,
		       c_off(o));
	if (json_is_true(json_object_get(msg, "body_truncated")))
		printf("\n    %s(body truncated when stored)%s", c_dim(o), c_off(o));
	fputc('\n', stdout);
}

static void show_message(const char *title, const json_t *msg, const struct opts *o)
{
	char ms[32];

	if (!json_is_object(msg)) {
		printf("%s%s%s  (no response)\n", c_bold(o), title, c_off(o));
		return;
	}
	fmt_ms(ms, sizeof(ms), json_get_num(msg, "latency_ms"));
	printf("%s%s%s  %" PRId64 "  %s ms\n", c_bold(o), title, c_off(o),
	       json_get_int(msg, "status"), ms);
	show_headers(msg, o);
	show_body(msg, o);
}

static void show_part(const char *name, const json_t *part, const struct opts *o)
{
	json_t *d, *v;
	const char *k;
	size_t i;

	if (!json_is_true(json_object_get(part, "diverged"))) {
		printf("%s%-8s%s same\n", c_bold(o), name, c_off(o));
		return;
	}
	printf("%s%-8s%s %s\n", c_bold(o), name, c_off(o), json_get_str(part, "summary"));
	json_array_foreach(json_object_get(part, "diffs"), i, d) {
		const char *what = json_string_value(json_object_get(d, "path"));

		if (!what)
			what = json_string_value(json_object_get(d, "name"));
		if (!json_is_object(d)) {
			show_value("", "", d, o);
			continue;
		}
		printf("  %s%s", what ? what : "", c_dim(o));
		if (json_object_get(d, "kind"))
			printf(" (%s)", json_get_str(d, "kind"));
		printf("%s\n", c_off(o));
		show_value("- primary:  ", c_red(o), json_object_get(d, "primary"), o);
		show_value("+ candidate:", c_green(o), json_object_get(d, "candidate"), o);
		json_object_foreach(d, k, v) {
			if (strcmp(k, "path") && strcmp(k, "name") && strcmp(k, "kind") &&
			    strcmp(k, "primary") && strcmp(k, "candidate")) {
				char label[64];

				snprintf(label, sizeof(label), "  %s:", k);
				show_value(label, "", v, o);
			}
		}
	}
}

static int cmd_show(struct store *s, struct opts *o, int argc, char **argv)
{
	json_t *rec = NULL, *req;
	char *end;
	long long id;
	int rc;

	errno = 0;
	id = strtoll(argv[0], &end, 10);
	if (errno || *end || end == argv[0] || id <= 0) {
		die_line("show: '%s' is not a divergence id (see shadow-dump list)",
			 argv[0]);
		return 1;
	}
	rc = store_get_record(s, id, &rec);
	if (rc == -ENOENT) {
		die_line("show: no divergence %lld in %s (evicted or never recorded; see shadow-dump list)",
			 id, o->store);
		return 1;
	}
	if (rc)
		return rc;
	if (o->json)
		return print_json_take(rec, JSON_INDENT(2));
	req = json_object_get(rec, "request");
	printf("%sdivergence %lld%s  %s  %s\n\n", c_bold(o), id, c_off(o),
	       json_get_str(rec, "time"), json_get_str(rec, "endpoint"));
	printf("%srequest%s  %s %s\n", c_bold(o), c_off(o), json_get_str(req, "method"),
	       json_get_str(req, "target"));
	show_headers(req, o);
	show_body(req, o);
	fputc('\n', stdout);
	show_message("primary", json_object_get(rec, "primary"), o);
	fputc('\n', stdout);
	show_message("candidate", json_object_get(rec, "candidate"), o);
	printf("\n%sdiff%s\n", c_bold(o), c_off(o));
	show_part("status", json_object_get(rec, "status"), o);
	show_part("headers", json_object_get(rec, "headers"), o);
	show_part("body", json_object_get(rec, "body"), o);
	json_decref(rec);
	return 0;
}

/* ---- groups ---- */

static void join_strings(const json_t *arr, char *buf, size_t len)
{
	json_t *v;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		char piece[64];

		if (json_is_integer(v))
			snprintf(piece, sizeof(piece), "%s%" JSON_INTEGER_FORMAT,
				 i ? "," : "", json_integer_value(v));
		else
			snprintf(piece, sizeof(piece), "%s%s", i ? "," : "",
				 json_string_value(v) ? json_string_value(v) : "");
		if (strlen(buf) + strlen(piece) + 4 >= len) {
			strcat(buf, "...");
			break;
		}
		strcat(buf, piece);
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

static int cmd_groups(struct store *s, struct opts *o, int argc, char **argv)
{
	struct table t = { .ncol = 7, .right = 1 };
	json_t *groups = store_groups(s, &o->filter), *g;
	size_t i;

	if (!groups)
		return -EIO;
	if (o->json)
		return print_json_take(groups, JSON_COMPACT);
	if (!json_array_size(groups)) {
		puts("no divergences recorded");
		json_decref(groups);
		return 0;
	}
	table_row(&t, "COUNT", "FIRST SEEN", "LAST SEEN", "ENDPOINT", "PARTS",
		  "FIELDS", "EXAMPLES");
	json_array_foreach(groups, i, g) {
		char count[24], parts[64], fields[256], names[256], ex[128];

		fmt_u(count, sizeof(count), json_get_int(g, "count"));
		join_strings(json_object_get(g, "parts"), parts, sizeof(parts));
		join_strings(json_object_get(g, "paths"), fields, sizeof(fields));
		join_strings(json_object_get(g, "header_names"), names, sizeof(names));
		if (strcmp(names, "-")) {
			if (!strcmp(fields, "-"))
				fields[0] = '\0';
			else
				strncat(fields, ",", sizeof(fields) - strlen(fields) - 1);
			strncat(fields, names, sizeof(fields) - strlen(fields) - 1);
		}
		join_strings(json_object_get(g, "examples"), ex, sizeof(ex));
		table_row(&t, count, json_get_str(g, "first_seen"), json_get_str(g, "last_seen"),
			  json_get_str(g, "endpoint"), parts, fields, ex);
	}
	table_print(&t, o);
	json_decref(groups);
	return 0;
}

/* ---- stats ---- */

static void stats_row(struct table *t, const char *name, const json_t *c)
{
	static const char *const keys[] = {
		"captured", "sampled", "replayed", "diverged", "diverged_status",
		"diverged_headers", "diverged_body", "candidate_errors", "shed",
		"noise_suppressed", "evicted",
	};
	char v[11][24], rate[24], p50[48], p99[48], a[16], b[16];
	const json_t *pl = json_object_get(c, "primary_latency_ms");
	const json_t *cl = json_object_get(c, "candidate_latency_ms");

	for (int i = 0; i < 11; i++)
		fmt_u(v[i], sizeof(v[i]), json_get_int(c, keys[i]));
	fmt_pct(rate, sizeof(rate), json_get_num(c, "divergence_rate"));
	if (pl) {
		fmt_ms(a, sizeof(a), json_get_num(pl, "p50"));
		fmt_ms(b, sizeof(b), json_get_num(cl, "p50"));
		snprintf(p50, sizeof(p50), "%s/%s", a, b);
		fmt_ms(a, sizeof(a), json_get_num(pl, "p99"));
		fmt_ms(b, sizeof(b), json_get_num(cl, "p99"));
		snprintf(p99, sizeof(p99), "%s/%s", a, b);
	} else {
		snprintf(p50, sizeof(p50), "-");
		snprintf(p99, sizeof(p99), "-");
	}
	table_row(t, name, v[0], v[1], v[2], v[3], rate, v[4], v[5], v[6], v[7],
		  v[8], v[9], v[10], p50, p99);
}

static int cmd_stats(struct store *s, struct opts *o, int argc, char **argv)
{
	struct table t = { .ncol = 15, .right = ~1u };
	json_t *st = store_stats(s), *e, *cap;
	bool any_fields = false;
	size_t i;

	if (!st)
		return -EIO;
	if (o->json)
		return print_json_take(st, JSON_COMPACT);
	table_row(&t, "ENDPOINT", "CAPTURED", "SAMPLED", "REPLAYED", "DIVERGED",
		  "RATE", "STATUS", "HEADERS", "BODY", "CAND-ERR", "SHED", "NOISE",
		  "EVICTED", "P50 ms P/C", "P99 ms P/C");
	json_array_foreach(json_object_get(st, "endpoints"), i, e)
		stats_row(&t, json_get_str(e, "endpoint"), e);
	stats_row(&t, "TOTAL", json_object_get(st, "totals"));
	table_print(&t, o);

	cap = json_object_get(st, "capture");
	printf("\ncapture: lost_events %" PRId64 ", gaps %" PRId64
	       ", parse_errors %" PRId64 ", truncated %" PRId64
	       ", tls_undecoded %" PRId64
	       "; replay: shed %" PRId64 ", unsafe_skipped %" PRId64 "\n",
	       json_get_int(cap, "lost_events"), json_get_int(cap, "gaps"),
	       json_get_int(cap, "parse_errors"), json_get_int(cap, "truncated"),
	       json_get_int(cap, "tls_undecoded"),
	       json_get_int(json_object_get(st, "totals"), "shed"),
	       json_get_int(json_object_get(st, "totals"), "unsafe_skipped"));
	json_array_foreach(json_object_get(st, "endpoints"), i, e) {
		json_t *f;
		size_t k;

		if (!json_array_size(json_object_get(e, "top_fields")))
			continue;
		if (!any_fields)
			printf("\n%stop diverging fields%s\n", c_bold(o), c_off(o));
		any_fields = true;
		printf("  %s\n", json_get_str(e, "endpoint"));
		json_array_foreach(json_object_get(e, "top_fields"), k, f)
			printf("    %8" PRId64 "  %s\n", json_get_int(f, "count"),
			       json_get_str(f, "path"));
	}
	json_decref(st);
	return 0;
}

/* ---- verdict ---- */

static int cmd_verdict(struct store *s, struct opts *o, int argc, char **argv)
{
	struct verdict_policy pol = { .max_rate = o->max_rate, .min_samples = o->min_samples };
	json_t *st = store_stats(s), *v;
	int code;

	if (!st)
		return -EIO;
	v = verdict_decide(st, &pol);
	json_decref(st);
	if (!v)
		return -ENOMEM;
	code = (int)json_get_int(v, "exit");
	if (o->json) {
		if (print_json(v, JSON_COMPACT))
			code = -ENOMEM;
	} else {
		printf("%s: %s\n", code == VERDICT_PASS ? "PASS" :
		       code == VERDICT_FAIL ? "FAIL" : "NOT ENOUGH EVIDENCE",
		       json_get_str(v, "reason"));
	}
	json_decref(v);
	/* exit codes 1 and 2 are answers here, not failures */
	return code == 1 ? 1001 : code == 2 ? 1002 : code;
}

/* ---- report --html ---- */

static int cmd_report(struct store *s, struct opts *o, int argc, char **argv)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, rc;

	if (!o->html) {
		die_line("report: give the output file with --html FILE");
		return 1;
	}
	if (asprintf(&tmp, "%s.tmp", o->html) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		die_line("report: cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return 1;
	}
	rc = report_write(s, o->store, f);
	if (!rc && (fflush(f) || ferror(f) || fsync(fileno(f))))
		rc = -errno ? -errno : -EIO;
	if (fclose(f) && !rc)
		rc = -EIO;
	if (!rc && rename(tmp, o->html))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		die_line("report: cannot write %s: %s", o->html, strerror(-rc));
		free(tmp);
		return 1;
	}
	free(tmp);
	if (!o->json)
		printf("wrote %s\n", o->html);
	return 0;
}

/* ---- commands and help ---- */

static const struct command commands[] = {
	{ "list", cmd_list, O_JSON | O_ENDPOINT | O_PART | O_SINCE | O_LIMIT, 0,
	  "list [--endpoint GLOB] [--part status|headers|body] [--since DUR] [--limit N] [--json]",
	  "Lists stored divergences, newest first.\n"
	  "  --endpoint GLOB  only endpoints matching the fnmatch(3) pattern\n"
	  "  --part PART      only divergences in status, headers or body (repeatable)\n"
	  "  --since DUR      only the last DUR: 30s, 10m, 2h, 1d\n"
	  "  --limit N        at most N records\n"
	  "  --json           one JSON array of divergence records\n"
	  "Examples:\n"
	  "  shadow-dump list --since 1h --limit 20\n"
	  "  shadow-dump list --endpoint 'GET /users/*' --part body --json | jq '.[0]'\n" },
	{ "show", cmd_show, O_JSON, 1, "show ID [--json]",
	  "Shows one divergence: the request, both responses and the diff.\n"
	  "Colors on a terminal; none in a pipe or with NO_COLOR set.\n"
	  "Examples:\n"
	  "  shadow-dump show 17\n"
	  "  shadow-dump show 17 --json | jq .body.diffs\n" },
	{ "groups", cmd_groups, O_JSON | O_ENDPOINT | O_PART | O_SINCE | O_LIMIT, 0,
	  "groups [--endpoint GLOB] [--part PART] [--since DUR] [--limit N] [--json]",
	  "Lists divergence signatures (endpoint, parts, header names, body paths),\n"
	  "most frequent first: count, first and last seen, example ids.\n"
	  "Examples:\n"
	  "  shadow-dump groups --limit 10\n"
	  "  shadow-dump groups --json | jq '.[] | {count, paths}'\n" },
	{ "stats", cmd_stats, O_JSON, 0, "stats [--json]",
	  "Per endpoint: captured, sampled, replayed, diverged (by part), candidate\n"
	  "errors, shed, noise, divergence rate, latency p50/p99 primary vs\n"
	  "candidate, top diverging fields; then capture and replay losses.\n"
	  "Examples:\n"
	  "  shadow-dump stats\n"
	  "  shadow-dump stats --json | jq .totals.divergence_rate\n" },
	{ "follow", cmd_follow, O_JSON | O_ENDPOINT | O_PART, 0,
	  "follow [--endpoint GLOB] [--part PART] [--json]",
	  "Prints divergences as shadowd records them, until interrupted (Ctrl-C).\n"
	  "Examples:\n"
	  "  shadow-dump follow\n"
	  "  shadow-dump follow --json --endpoint 'POST *'\n" },
	{ "export", cmd_export, O_JSON | O_ENDPOINT | O_PART | O_SINCE | O_LIMIT, 0,
	  "export [--endpoint GLOB] [--part PART] [--since DUR] [--limit N]",
	  "Prints every stored divergence as JSON Lines, oldest first.\n"
	  "Examples:\n"
	  "  shadow-dump export > divergences.jsonl\n"
	  "  shadow-dump --store /var/lib/shadow.db export --since 1d | gzip > day.jsonl.gz\n" },
	{ "verdict", cmd_verdict, O_JSON | O_MAX_RATE | O_MIN_SAMPLES, 0,
	  "verdict [--max-rate R] [--min-samples N] [--json]",
	  "Decides whether the candidate is fit to promote and says why.\n"
	  "Exit 0: fit (divergence rate <= R overall and on every endpoint with at\n"
	  "least N replays, candidate errors <= R of replays); 1: not fit; 2: not\n"
	  "enough evidence yet (fewer than N replays).\n"
	  "  --max-rate R      highest acceptable rate, 0..1 (default 0.01)\n"
	  "  --min-samples N   replays needed before deciding (default 100)\n"
	  "Examples:\n"
	  "  shadow-dump verdict --max-rate 0.001 --min-samples 1000 && deploy.sh\n"
	  "  shadow-dump verdict --json\n" },
	{ "report", cmd_report, O_JSON | O_HTML, 0, "report --html FILE",
	  "Writes a self-contained HTML report (no scripts, nothing loaded from the\n"
	  "network): divergence rate and latency per endpoint as charts, the top\n"
	  "signatures with an example diff each, capture and replay losses.\n"
	  "FILE is written whole or not at all (FILE.tmp, then renamed).\n"
	  "Examples:\n"
	  "  shadow-dump report --html shadow-report.html\n" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("Usage: shadow-dump [--store PATH] COMMAND [OPTIONS] [--json]\n"
	      "Reads the divergence store written by shadowd.\n\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fputs("  help COMMAND\n\n"
	      "Options:\n"
	      "  -o, --store PATH   the store (default ./shadow.db)\n"
	      "  -j, --json         JSON output (shapes documented in shadow-dump(1))\n"
	      "  -h, --help         this help; COMMAND --help for one command\n"
	      "      --version\n\n"
	      "Exit status: 0 success, 1 failure (one line on stderr says why);\n"
	      "verdict: 0 fit, 1 not fit, 2 not enough evidence.\n\n"
	      "Examples:\n"
	      "  shadow-dump stats\n"
	      "  shadow-dump --store /var/lib/shadow/shadow.db list --since 10m\n"
	      "  shadow-dump show 17\n"
	      "  shadow-dump groups --json | jq '.[0]'\n"
	      "  shadow-dump verdict --max-rate 0.005 --min-samples 500\n"
	      "  shadow-dump report --html report.html\n", f);
}

static void command_help(const struct command *c)
{
	printf("Usage: shadow-dump [--store PATH] %s\n%s", c->usage, c->help);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* --since DUR as the epoch milliseconds DUR ago. */
static int parse_since(const char *s, int64_t *out_ms)
{
	struct timespec ts;
	double sec;

	if (parse_duration(s, &sec))
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	*out_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
		  (int64_t)(sec * 1000);
	return 0;
}

static const char *opt_name(unsigned bit)
{
	switch (bit) {
	case O_JSON: return "--json";
	case O_ENDPOINT: return "--endpoint";
	case O_PART: return "--part";
	case O_SINCE: return "--since";
	case O_LIMIT: return "--limit";
	case O_MAX_RATE: return "--max-rate";
	case O_MIN_SAMPLES: return "--min-samples";
	case O_HTML: return "--html";
	default: return "?";
	}
}

enum { OPT_SINCE = 256, OPT_MAX_RATE, OPT_MIN_SAMPLES, OPT_HTML, OPT_VERSION };

/* What main's steps return to go on to the next; anything else is the
 * exit status, with what went wrong already said on stderr. */
#define GO_ON (-1)

static int parse_part(const char *arg, unsigned *parts)
{
	if (!strcmp(arg, "status"))
		*parts |= STORE_PART_STATUS;
	else if (!strcmp(arg, "headers"))
		*parts |= STORE_PART_HEADERS;
	else if (!strcmp(arg, "body"))
		*parts |= STORE_PART_BODY;
	else
		return -EINVAL;
	return 0;
}

/* One option getopt_long found (c), its value in optarg: into o, or
 * *help. GO_ON, 0 after --version, 1 on a bad value. */
static int take_option(int c, struct opts *o, bool *help)
{
	uint64_t u;

	switch (c) {
	case 'o':
		o->store = optarg;
		return GO_ON;
	case 'j':
		o->json = true;
		o->given |= O_JSON;
		return GO_ON;
	case 'e':
		o->filter.endpoint_glob = optarg;
		o->given |= O_ENDPOINT;
		return GO_ON;
	case 'p':
		if (parse_part(optarg, &o->filter.parts)) {
			die_line("--part takes status, headers or body, not '%s'", optarg);
			return 1;
		}
		o->given |= O_PART;
		return GO_ON;
	case OPT_SINCE:
		if (parse_since(optarg, &o->filter.since_ms)) {
			die_line("--since takes a duration like 30s, 10m, 2h or 1d, not '%s'",
				 optarg);
			return 1;
		}
		o->given |= O_SINCE;
		return GO_ON;
	case 'n':
		if (parse_unsigned(optarg, 1, SIZE_MAX, &u)) {
			die_line("--limit takes a positive number, not '%s'", optarg);
			return 1;
		}
		o->filter.limit = (size_t)u;
		o->given |= O_LIMIT;
		return GO_ON;
	case OPT_MAX_RATE:
		if (parse_number(optarg, 0, 1, &o->max_rate)) {
			die_line("--max-rate takes a fraction between 0 and 1 (0.01 = 1%%), not '%s'",
				 optarg);
			return 1;
		}
		o->given |= O_MAX_RATE;
		return GO_ON;
	case OPT_MIN_SAMPLES:
		if (parse_unsigned(optarg, 0, UINT64_MAX, &o->min_samples)) {
			die_line("--min-samples takes a number, not '%s'", optarg);
			return 1;
		}
		o->given |= O_MIN_SAMPLES;
		return GO_ON;
	case OPT_HTML:
		o->html = optarg;
		o->given |= O_HTML;
		return GO_ON;
	case 'h':
		*help = true;
		return GO_ON;
	case OPT_VERSION:
		printf("shadow-dump (request-shadow) store schema %d\n",
		       STORE_SCHEMA_VERSION);
		return 0;
	}
	return 1; /* getopt_long returns only the options above */
}

/* Every option, wherever it stands (getopt_long permutes argv, leaving the
 * command and its arguments from optind on). GO_ON or the exit status. */
static int parse_options(int argc, char **argv, struct opts *o, bool *help)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "part", required_argument, NULL, 'p' },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "limit", required_argument, NULL, 'n' },
		{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
		{ "min-samples", required_argument, NULL, OPT_MIN_SAMPLES },
		{ "html", required_argument, NULL, OPT_HTML },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	int c, rc = GO_ON;

	opterr = 0;
	while (rc == GO_ON &&
	       (c = getopt_long(argc, argv, ":o:je:p:n:h", longopts, NULL)) != -1) {
		if (c == ':') {
			die_line("%s needs a value (see shadow-dump --help)",
				 argv[optind - 1]);
			return 1;
		}
		if (c == '?') {
			if (optopt)
				die_line("unknown option '-%c' (see shadow-dump --help)", optopt);
			else
				die_line("unknown option '%s' (see shadow-dump --help)",
					 argv[optind - 1]);
			return 1;
		}
		rc = take_option(c, o, help);
	}
	return rc;
}

/* The command words[0] names (words: what follows the options), or the
 * help asked for instead. GO_ON with *out set, or the exit status. */
static int pick_command(int nwords, char **words, bool help,
			const struct command **out)
{
	const struct command *cmd;

	if (nwords < 1) {
		if (help) {
			usage(stdout);
			return 0;
		}
		die_line("no command given (see shadow-dump --help)");
		return 1;
	}
	if (!strcmp(words[0], "help")) {
		if (nwords < 2) {
			usage(stdout);
			return 0;
		}
		cmd = find_command(words[1]);
		if (!cmd) {
			die_line("no command '%s' (see shadow-dump --help)", words[1]);
			return 1;
		}
		command_help(cmd);
		return 0;
	}
	cmd = find_command(words[0]);
	if (!cmd) {
		die_line("unknown command '%s' (see shadow-dump --help)", words[0]);
		return 1;
	}
	if (help) {
		command_help(cmd);
		return 0;
	}
	*out = cmd;
	return GO_ON;
}

/* Refuses an option the command does not take, and a wrong number of
 * arguments, before the store is opened. GO_ON or 1. */
static int check_usage(const struct command *cmd, const struct opts *o, int nargs)
{
	for (unsigned bit = 1; bit <= O_HTML; bit <<= 1) {
		if ((o->given & bit) && !(cmd->allowed & bit)) {
			die_line("%s does not take %s (see shadow-dump help %s)",
				 cmd->name, opt_name(bit), cmd->name);
			return 1;
		}
	}
	if (nargs != cmd->nargs) {
		die_line("%s takes %s (see shadow-dump help %s)", cmd->name,
			 cmd->nargs ? "one argument" : "no argument", cmd->name);
		return 1;
	}
	return GO_ON;
}

/* Opens the store, runs the command over it and turns what it returned
 * into the exit status: verdict's 1 and 2 are answers, a negative errno
 * is a store that could not be read, a short write to stdout a failure. */
static int run_command(const struct command *cmd, struct opts *o, int nargs,
		       char **args)
{
	struct store *s = NULL;
	char err[512];
	int rc;

	rc = store_open_reader(o->store, &s, err, sizeof(err));
	if (rc) {
		die_line("%s", err);
		return 1;
	}
	rc = cmd->run(s, o, nargs, args);
	store_close(s);
	if (rc == 1001 || rc == 1002) /* verdict's answers */
		return rc - 1000;
	if (rc == 1)
		return 1; /* already reported */
	if (rc < 0) {
		die_line("%s: reading %s failed: %s (is it a request-shadow store?)",
			 cmd->name, o->store, strerror(-rc));
		return 1;
	}
	if (fflush(stdout) || ferror(stdout)) {
		die_line("%s: cannot write the output: %s", cmd->name, strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.store = DEFAULT_STORE,
		.max_rate = DEFAULT_MAX_RATE,
		.min_samples = DEFAULT_MIN_SAMPLES,
	};
	const struct command *cmd = NULL;
	bool help = false;
	int rc;

	rc = parse_options(argc, argv, &o, &help);
	if (rc == GO_ON)
		rc = pick_command(argc - optind, argv + optind, help, &cmd);
	if (rc == GO_ON)
		rc = check_usage(cmd, &o, argc - optind - 1);
	if (rc != GO_ON)
		return rc;
	o.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	return run_command(cmd, &o, argc - optind - 1, argv + optind + 1);
}
