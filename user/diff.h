/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The differ: compares the candidate's response with the primary's under
 * the user's rules, part by part (status, headers, body), and cancels
 * noise with an optional second pair of responses.
 *
 * Each part is {diverged, summary, diffs}, as in the divergence record of
 * DESIGN.md:
 *  - status:  [{"primary": 200, "candidate": 500}], "status 200 -> 500".
 *  - headers: names case-insensitive, repeated headers compared as ordered
 *    value lists; [{"name", "primary", "candidate"}] where a side is a
 *    string (one value), an array of strings (repeated header) or null
 *    (absent). Ignored always: Date, Connection, Keep-Alive,
 *    Transfer-Encoding, Content-Length, Content-Encoding; plus
 *    diff_rules_ignore_header(). Summary "2 headers differ: A, B".
 *  - body: the decoded bodies. Not compared when either side is
 *    MESSAGE_TRUNCATED ("not compared: body over --max-body") or
 *    MESSAGE_BODY_UNAVAILABLE ("not compared: body not captured").
 *    Byte-identical bodies are equal without parsing. Then by the media
 *    type of the primary's Content-Type (the candidate's if the primary
 *    has none):
 *      JSON (application/json, or any type ending in "+json"; parameters
 *        such as charset ignored): structural, see json_diff.h;
 *        records {"path","kind","primary","candidate"}; summary
 *        "3 fields differ: $.name, $.items[2].price, $.tags" (five names
 *        at most, then "and N more"). A side that is not valid JSON
 *        makes the pair compare as below, and the summary starts with
 *        "primary body is not valid JSON (...)".
 *      anything else (any media type, or none): as text when both
 *        bodies are valid UTF-8 without NUL bytes, else as bytes — binary
 *        formats are practically never valid UTF-8, and a text/plain body
 *        that is not cannot be shown line by line. Text: one record {"path": "body",
 *        "kind": "changed", "line": N (from 1), "primary", "candidate"
 *        (that line, null past the end), "context_before" (line N-1,
 *        the same on both sides, null for line 1), "primary_next",
 *        "candidate_next"}; summary "text differs from line N". Bytes:
 *        {"path": "body", "kind": "changed", "offset", "primary_length",
 *        "candidate_length"}; summary "bytes differ from offset K
 *        (primary N bytes, candidate M bytes)". Lines are cut to 256
 *        bytes; invalid UTF-8 in header values is shown as U+FFFD.
 *    At most DIFF_MAX_REPORTED records are kept per part; the summary
 *    counts all.
 *
 * Paths (what noise and the store's signatures use): "status", the
 * header name, the JSONPath of a body record ("body" for text/bytes).
 *
 * Noise: given a pair (noise_a, noise_b) of responses to the same request,
 * every path that differs between them is noise for this exchange: a
 * primary/candidate record whose path is that path or lies below it
 * ($.meta noise covers $.meta.id) is dropped and listed in noise_paths. A
 * part whose records were all noise is not diverged.
 */
#ifndef SHADOW_DIFF_H
#define SHADOW_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_response;
struct diff_rules;

/* Records kept per part in diff_result (the summary counts every one). */
#define DIFF_MAX_REPORTED 100
/* Bytes of JSON text per value in a body record. */
#define DIFF_VALUE_CAP 256

struct diff_part {
	bool diverged;
	char *summary; /* owned, "" when not diverged (or why not compared) */
	json_t *diffs; /* JSON array, owned */
};

struct diff_result {
	struct diff_part status, headers, body;
	bool diverged;	     /* any part diverged */
	json_t *noise_paths; /* strings: the paths suppressed as noise */
	size_t noise_suppressed; /* records suppressed (>0: noise seen) */
};

/* New rules holding the default ignored headers only; NULL if out of
 * memory. Free with diff_rules_free(). */
struct diff_rules *diff_rules_new(void);
/* Frees rules; accepts NULL. */
void diff_rules_free(struct diff_rules *r);

/* Ignores header `name` (any case; copied). 0, -EINVAL (empty) or
 * -ENOMEM. */
int diff_rules_ignore_header(struct diff_rules *r, const char *name)
	__attribute__((warn_unused_result));

/*
 * Ignores body JSON values matching `path` (the JSONPath subset of
 * jsonpath.h). 0, -ENOMEM, or -EINVAL with err set to e.g. "bad
 * --ignore-json '$.a[': expected index, quoted name or '*' at column 5".
 */
int diff_rules_ignore_json(struct diff_rules *r, const char *path, char *err,
			   size_t errlen)
	__attribute__((warn_unused_result));

/* Compares arrays matching `path` as multisets. Inside such an array only
 * [*] (not [N]) selects its elements. Errors as diff_rules_ignore_json(),
 * "bad --unordered ...". */
int diff_rules_unordered(struct diff_rules *r, const char *path, char *err,
			 size_t errlen)
	__attribute__((warn_unused_result));

/* Relative tolerance for JSON numbers (see json_diff.h). 0 or -EINVAL
 * unless 0 <= e < infinity. */
int diff_rules_float_tolerance(struct diff_rules *r, double e)
	__attribute__((warn_unused_result));

/*
 * Compares candidate with primary under rules (NULL: defaults), noise
 * cancelled by the pair noise_a/noise_b (both NULL for none; both are
 * borrowed, as are the responses). Fills *out (overwritten, not freed),
 * which the caller releases with diff_result_clean(). Returns 0 or
 * -ENOMEM (out is then clean).
 */
int diff_responses(const struct diff_rules *rules,
		   const struct http_response *primary,
		   const struct http_response *candidate,
		   const struct http_response *noise_a,
		   const struct http_response *noise_b,
		   struct diff_result *out)
	__attribute__((warn_unused_result));

/* New reference: {"diverged": .., "summary": .., "diffs": [..]}; NULL if
 * out of memory. The part is borrowed. */
json_t *diff_part_json(const struct diff_part *p);

/* Frees what the result owns and zeroes it; accepts a zeroed result. */
void diff_result_clean(struct diff_result *r);

/*
 * Diffy's reporting rule for one path over many exchanges: report only if
 * raw > noise, |raw-noise|/(raw+noise) > rel (e.g. 0.20) and
 * |raw-noise|/samples > abs (e.g. 0.0003). raw: exchanges where the path
 * differed between primary and candidate; noise: where it differed
 * between the two noise responses; samples: exchanges compared.
 */
bool diff_noise_report(uint64_t raw, uint64_t noise, uint64_t samples,
		       double rel, double abs);

#endif /* SHADOW_DIFF_H */
