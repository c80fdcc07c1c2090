// SPDX-License-Identifier: BSD-2-Clause
/*
 * shadow-dump report --html: one self-contained HTML page (no scripts,
 * nothing loaded from the network) from the store's stats and groups.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "util/json_get.h"

#define REPORT_TOP_SIGS 10

static void html_esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void html_value(FILE *f, const json_t *v)
{
	char *t;

	if (!v)
		return;
	t = json_is_string(v) ? strdup(json_string_value(v))
			      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	html_esc(f, t ? t : "");
	free(t);
}

static void html_rate_chart(FILE *f, const json_t *eps)
{
	size_t n = json_array_size(eps), i;
	double max = 0;
	const int label_w = 260, bar_w = 400, row_h = 22;
	json_t *e;

	json_array_foreach(eps, i, e)
		if (json_get_num(e, "divergence_rate") > max)
			max = json_get_num(e, "divergence_rate");
	if (max <= 0)
		max = 1;
	fprintf(f, "<svg width='%d' height='%zu'"
		" role='img' aria-label='divergence rate per endpoint'>\n",
		label_w + bar_w + 80, n * row_h + 10);
	json_array_foreach(eps, i, e) {
		double r = json_get_num(e, "divergence_rate");
		int w = (int)(r / max * bar_w);

		fprintf(f, "<text x='%d' y='%zu' text-anchor='end' class='l'>",
			label_w - 6, i * row_h + 16);
		html_esc(f, json_get_str(e, "endpoint"));
		fprintf(f, "</text><rect x='%d' y='%zu' width='%d' height='16' class='%s'/>"
			"<text x='%d' y='%zu' class='v'>%.2f%% (%" PRId64 "/%" PRId64
			")</text>\n", label_w, i * row_h + 4, w > 0 ? w : 1,
			r > 0 ? "bad" : "ok", label_w + (w > 0 ? w : 1) + 6,
			i * row_h + 16, r * 100, json_get_int(e, "diverged"),
			json_get_int(e, "replayed"));
	}
	fputs("</svg>\n", f);
}

static void html_latency_chart(FILE *f, const json_t *eps)
{
	static const char *const series[4][3] = {
		{ "primary_latency_ms", "p50", "prim" },
		{ "candidate_latency_ms", "p50", "cand" },
		{ "primary_latency_ms", "p99", "prim99" },
		{ "candidate_latency_ms", "p99", "cand99" },
	};
	size_t n = json_array_size(eps), i;
	const int label_w = 260, bar_w = 400, bar_h = 9, group_h = 4 * bar_h + 12;
	double max = 0;
	json_t *e;

	json_array_foreach(eps, i, e)
		for (int k = 0; k < 4; k++) {
			double v = json_get_num(json_object_get(e, series[k][0]), series[k][1]);

			if (v > max)
				max = v;
		}
	if (max <= 0)
		max = 1;
	fputs("<p class='legend'><span class='sw prim'></span>primary p50 "
	      "<span class='sw cand'></span>candidate p50 "
	      "<span class='sw prim99'></span>primary p99 "
	      "<span class='sw cand99'></span>candidate p99</p>\n", f);
	fprintf(f, "<svg width='%d' height='%zu'"
		" role='img' aria-label='latency per endpoint'>\n",
		label_w + bar_w + 90, n * group_h + 10);
	json_array_foreach(eps, i, e) {
		fprintf(f, "<text x='%d' y='%zu' text-anchor='end' class='l'>",
			label_w - 6, i * group_h + 4 * bar_h / 2 + 8);
		html_esc(f, json_get_str(e, "endpoint"));
		fputs("</text>\n", f);
		for (int k = 0; k < 4; k++) {
			double v = json_get_num(json_object_get(e, series[k][0]), series[k][1]);
			int w = (int)(v / max * bar_w);
			size_t y = i * group_h + 4 + (size_t)k * bar_h;

			fprintf(f, "<rect x='%d' y='%zu' width='%d' height='%d' class='%s'/>"
				"<text x='%d' y='%zu' class='v s'>%.3g ms</text>\n",
				label_w, y, w > 0 ? w : 1, bar_h - 1, series[k][2],
				label_w + (w > 0 ? w : 1) + 4, y + bar_h - 1, v);
		}
	}
	fputs("</svg>\n", f);
}

static void html_diff(FILE *f, const json_t *rec)
{
	static const char *const parts[] = { "status", "headers", "body" };

	fputs("<pre class='diff'>", f);
	for (int p = 0; p < 3; p++) {
		const json_t *part = json_object_get(rec, parts[p]), *d;
		size_t i;

		if (!json_is_true(json_object_get(part, "diverged")))
			continue;
		fprintf(f, "<b>%s</b>: ", parts[p]);
		html_esc(f, json_get_str(part, "summary"));
		fputc('\n', f);
		if (p == 0) {
			fprintf(f, "<span class='m'>- %" PRId64 "</span>\n"
				"<span class='p'>+ %" PRId64 "</span>\n",
				json_get_int(json_object_get(rec, "primary"), "status"),
				json_get_int(json_object_get(rec, "candidate"), "status"));
			continue;
		}
		json_array_foreach(json_object_get(part, "diffs"), i, d) {
			const char *what = json_string_value(json_object_get(d, "path"));

			if (!what)
				what = json_get_str(d, "name");
			fputs("  ", f);
			html_esc(f, what);
			fputs("\n<span class='m'>  - ", f);
			html_value(f, json_object_get(d, "primary"));
			fputs("</span>\n<span class='p'>  + ", f);
			html_value(f, json_object_get(d, "candidate"));
			fputs("</span>\n", f);
			if (i >= 20) {
				fputs("  ...\n", f);
				break;
			}
		}
	}
	fputs("</pre>\n", f);
}

/* The fixed top of the page: styles, title, which store, when. */
static void report_head(FILE *f, const char *store_path)
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
	      "<title>request-shadow report</title>\n<style>\n"
	      "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;"
	      "margin:2em;color:#222;max-width:1100px}\n"
	      "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;"
	      "border-bottom:1px solid #ddd}\n"
	      "table{border-collapse:collapse}td,th{padding:3px 10px;"
	      "border-bottom:1px solid #eee;text-align:right}"
	      "td:first-child,th:first-child{text-align:left}\n"
	      ".l{font-size:12px;fill:#222}.v{font-size:11px;fill:#444}.s{font-size:9px}\n"
	      ".bad{fill:#d9534f}.ok{fill:#5cb85c}.prim{fill:#4a7bd0;background:#4a7bd0}"
	      ".cand{fill:#e8a33d;background:#e8a33d}"
	      ".prim99{fill:#9db5e6;background:#9db5e6}.cand99{fill:#f3cf98;"
	      "background:#f3cf98}\n"
	      ".sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}\n"
	      "pre.diff{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}"
	      ".m{color:#b52a1d}.p{color:#1e7b34}\n"
	      ".sig{margin-bottom:1.5em}code{font-size:12px}\n"
	      "</style></head><body>\n<h1>request-shadow report</h1>\n<p>Store <code>", f);
	html_esc(f, store_path);
	fprintf(f, "</code>, generated %s.</p>\n", when);
}

/* The headline: overall rate and the counts it stands on. */
static void report_totals(FILE *f, const json_t *tot)
{
	fprintf(f, "<p><b>Divergence rate %.2f%%</b>: %" PRId64 " divergences in %"
		PRId64 " replays; %" PRId64 " candidate errors; %" PRId64
		" captured, %" PRId64 " sampled.</p>\n",
		json_get_num(tot, "divergence_rate") * 100, json_get_int(tot, "diverged"),
		json_get_int(tot, "replayed"), json_get_int(tot, "candidate_errors"),
		json_get_int(tot, "captured"), json_get_int(tot, "sampled"));
}

static void report_charts(FILE *f, const json_t *eps)
{
	fputs("<h2>Divergence rate per endpoint</h2>\n", f);
	if (json_array_size(eps))
		html_rate_chart(f, eps);
	else
		fputs("<p>No endpoint recorded yet.</p>\n", f);
	fputs("<h2>Latency per endpoint: primary vs candidate</h2>\n", f);
	if (json_array_size(eps))
		html_latency_chart(f, eps);
}

/* Each string of the array at g[key], " <code>"-wrapped or space-led. */
static void html_strings(FILE *f, const json_t *g, const char *key, bool code)
{
	const json_t *v;
	size_t k;

	json_array_foreach(json_object_get(g, key), k, v) {
		fputs(code ? " <code>" : " ", f);
		html_esc(f, json_string_value(v));
		if (code)
			fputs("</code>", f);
	}
}

/* One signature: count, endpoint, parts, fields, when, and the diff of its
 * newest example (the store keeps the examples oldest first). */
static void report_signature(FILE *f, struct store *s, const json_t *g)
{
	const json_t *ex = json_object_get(g, "examples");
	json_t *rec = NULL;

	fprintf(f, "<div class='sig'><p><b>%" PRId64 "&times;</b> <code>",
		json_get_int(g, "count"));
	html_esc(f, json_get_str(g, "endpoint"));
	fputs("</code> parts:", f);
	html_strings(f, g, "parts", false);
	fputs("; fields:", f);
	html_strings(f, g, "paths", true);
	html_strings(f, g, "header_names", true);
	fprintf(f, "<br>first seen %s, last seen %s</p>\n",
		json_get_str(g, "first_seen"), json_get_str(g, "last_seen"));
	if (json_array_size(ex) &&
	    !store_get_record(s, json_integer_value(
			json_array_get(ex, json_array_size(ex) - 1)), &rec)) {
		fprintf(f, "<p>Example %" PRId64 ": <code>",
			json_get_int(rec, "id"));
		html_esc(f, json_get_str(json_object_get(rec, "request"), "method"));
		fputc(' ', f);
		html_esc(f, json_get_str(json_object_get(rec, "request"), "target"));
		fputs("</code></p>\n", f);
		html_diff(f, rec);
		json_decref(rec);
	}
	fputs("</div>\n", f);
}

static void report_signatures(FILE *f, struct store *s, const json_t *groups)
{
	const json_t *g;
	size_t i;

	fputs("<h2>Top signatures</h2>\n", f);
	if (!json_array_size(groups))
		fputs("<p>No divergence recorded.</p>\n", f);
	json_array_foreach(groups, i, g)
		report_signature(f, s, g);
}

/* Every counter of what was not compared, so a clean rate over a lossy
 * capture does not pass for a clean one. */
static void report_losses(FILE *f, const json_t *tot, const json_t *cap)
{
	fputs("<h2>Losses</h2>\n<table><tr><th>counter</th><th>value</th></tr>\n", f);
	fprintf(f, "<tr><td>capture: lost ring-buffer events</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>capture: stream gaps</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>capture: parse errors</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>capture: truncated bodies</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>capture: TLS connections not decoded</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>replay: shed</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>replay: unsafe methods skipped</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>replay: candidate errors</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>replay: noise suppressed</td><td>%" PRId64 "</td></tr>\n"
		"<tr><td>store: records evicted</td><td>%" PRId64 "</td></tr>\n</table>\n",
		json_get_int(cap, "lost_events"), json_get_int(cap, "gaps"),
		json_get_int(cap, "parse_errors"), json_get_int(cap, "truncated"),
		json_get_int(cap, "tls_undecoded"), json_get_int(tot, "shed"),
		json_get_int(tot, "unsafe_skipped"),
		json_get_int(tot, "candidate_errors"), json_get_int(tot, "noise_suppressed"),
		json_get_int(tot, "evicted"));
}

int report_write(struct store *s, const char *store_path, FILE *f)
{
	struct store_filter gf = { .limit = REPORT_TOP_SIGS };
	json_t *st = store_stats(s), *groups;

	if (!st)
		return -EIO;
	groups = store_groups(s, &gf);
	if (!groups) {
		json_decref(st);
		return -EIO;
	}
	report_head(f, store_path);
	report_totals(f, json_object_get(st, "totals"));
	report_charts(f, json_object_get(st, "endpoints"));
	report_signatures(f, s, groups);
	report_losses(f, json_object_get(st, "totals"), json_object_get(st, "capture"));
	fputs("</body></html>\n", f);
	json_decref(groups);
	json_decref(st);
	return 0;
}
