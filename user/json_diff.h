/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Structural JSON comparison.
 *
 * Bodies are parsed by our own parser into a flat node array (jansson is
 * used only for the diff records): jansson holds integers in 64 bits and
 * everything else as a double, which cannot tell 9007199254740993 from
 * 9007199254740992, and it recurses once per nesting level.
 *
 * Defined outcomes for awkward input (each is tested):
 *  - Numbers are compared by exact decimal value whatever their size or
 *    spelling: 1 == 1.0 == 1e0 == 10e-1, -0 == 0, and integers of any
 *    length are exact. With a tolerance E > 0, numbers that are not
 *    exactly equal are equal when |a-b| <= E * max(|a|,|b|) (as doubles;
 *    the boundary is inclusive; values that overflow a double compare
 *    exactly only).
 *  - Duplicate member names: the last one wins, as in JavaScript's
 *    JSON.parse, Python and Go — the value a client actually sees.
 *  - "\u0000" inside strings is accepted and compared like any other
 *    character; a raw NUL or other control byte in a string is invalid.
 *  - Invalid UTF-8 and lone surrogate escapes are invalid JSON.
 *  - Nesting deeper than JSON_DIFF_MAX_DEPTH is invalid JSON; the parser
 *    and the comparison recurse at most that deep.
 *  - Unordered arrays (multisets): elements are bucketed by a structural
 *    hash and matched greedily inside a bucket by a full comparison;
 *    unmatched ones are "removed" (index in the primary) / "added" (index
 *    in the candidate). With a tolerance every number hashes alike, so a
 *    large array of numbers becomes one bucket: matching stops after
 *    200000 comparisons per array and reports what is left unmatched.
 * Invalid JSON is reported by json_doc_parse() with the byte offset; the
 * caller (diff.c) then compares the bodies as text.
 *
 * Diff records: {"path": "$.items[2].price", "kind": "changed"|"added"|
 * "removed"|"type", "primary": v, "candidate": v}. A missing side is null
 * (kind tells added/removed apart from a JSON null). v is the JSON value
 * when its compact text is at most value_cap bytes, else a string holding
 * the first value_cap bytes of that text, and "primary_truncated" /
 * "candidate_truncated" is true. Numbers that are not integers within
 * int64 are given as a string of their literal text (jansson would print
 * 0.1 as 0.10000000000000001 and cannot hold big integers).
 */
#ifndef SHADOW_JSON_DIFF_H
#define SHADOW_JSON_DIFF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct json_doc;
struct jsonpath_set;

#define JSON_DIFF_MAX_DEPTH 1024
/* Path tags understood in json_diff_opts.paths (jsonpath_set_add kind). */
#define JSON_DIFF_IGNORE    1u
#define JSON_DIFF_UNORDERED 2u

enum json_doc_result {
	JSON_DOC_OK = 0,
	JSON_DOC_INVALID = 1, /* err says what and at which byte */
	JSON_DOC_NOMEM = 2,
};

struct json_diff_opts {
	const struct jsonpath_set *paths; /* may be NULL: no rules */
	double tolerance;		  /* relative; 0 = exact */
	size_t max_diffs;		  /* records kept; the rest counted */
	size_t value_cap;		  /* bytes of JSON text per value */
};

/*
 * Parses len bytes at data. On JSON_DOC_OK *out is a new document that
 * borrows `data` (keep it alive and unchanged until json_doc_free()). On
 * JSON_DOC_INVALID err holds e.g. "unexpected character 'x' at byte 12"
 * (0-based offset).
 */
enum json_doc_result json_doc_parse(const void *data, size_t len,
				    struct json_doc **out, char *err,
				    size_t errlen)
	__attribute__((warn_unused_result));
/* Frees a document; accepts NULL. */
void json_doc_free(struct json_doc *d);
/* Nodes in the document (for tests and benchmarks). */
size_t json_doc_nodes(const struct json_doc *d);

/*
 * Compares documents a (primary) and b (candidate) under opts. Appends at
 * most opts->max_diffs records (new references) to the JSON array `diffs`,
 * in the primary's document order; *total receives how many differences
 * were found in all. Returns 0 or -ENOMEM (diffs may then hold a part).
 */
int json_diff(const struct json_diff_opts *opts, const struct json_doc *a,
	      const struct json_doc *b, json_t *diffs, size_t *total)
	__attribute__((warn_unused_result));

#endif /* SHADOW_JSON_DIFF_H */
