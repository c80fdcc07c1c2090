/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The JSONPath subset used by --ignore-json and --unordered, and the
 * normalized paths the differ reports.
 *
 * Accepted (a subset of RFC 9535):
 *   $                  the root
 *   .name  .*          child member by shorthand name / every child
 *   ['a b']  ["x"]     child member by quoted name (RFC 9535 escapes)
 *   [3]  [*]           array element by index (non-negative) / every child
 *   [0, 'a', *]        a union of the selectors above
 *   ..name  ..*  ..[…] the same, at any depth below (descendant segment)
 * Blanks are allowed between segments and inside brackets. Rejected with
 * the column of the error: filters (?), slices (:), negative indices,
 * function calls, anything else.
 *
 * Matching runs as a small NFA over the document while the differ walks
 * it: a set of states (path, next segment) is stepped into each child.
 */
#ifndef SHADOW_JSONPATH_H
#define SHADOW_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonpath_set;

/* One NFA state: path `path` of the set has matched its first `seg`
 * segments at the current node. */
struct jsonpath_state {
	uint16_t path;
	uint16_t seg;
};

/* At most this many paths per set (each --ignore-json / --unordered). */
#define JSONPATH_MAX_PATHS 1024
/* Index meaning "an element of an unordered array": only [*] selects it. */
#define JSONPATH_ANY_INDEX (-1L)

/* A new empty set, or NULL on allocation failure. Free with
 * jsonpath_set_free(). */
struct jsonpath_set *jsonpath_set_new(void);
/* Frees the set; accepts NULL. */
void jsonpath_set_free(struct jsonpath_set *s);

/*
 * Compiles `text` and adds it to the set with the caller's tag bits `kind`
 * (e.g. ignore vs unordered; reported back by jsonpath_matched()).
 * Returns 0, -EINVAL with a message "expected ... at column N" in err (1 =
 * first character), or -ENOMEM / -E2BIG. `text` is copied.
 */
int jsonpath_set_add(struct jsonpath_set *s, const char *text, unsigned kind,
		     char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Number of paths in the set (0 for NULL). */
size_t jsonpath_set_count(const struct jsonpath_set *s);

/*
 * Writes the states for the root into out (room for jsonpath_set_count()
 * entries) and returns how many.
 */
size_t jsonpath_root(const struct jsonpath_set *s, struct jsonpath_state *out);

/*
 * Steps the states in[0..n) into a child: a member named name[0..name_len)
 * when name is non-NULL, else the array element at index idx (or
 * JSONPATH_ANY_INDEX). Writes at most 2*n states (deduplicated) into out
 * and returns how many.
 */
size_t jsonpath_step(const struct jsonpath_set *s,
		     const struct jsonpath_state *in, size_t n,
		     const char *name, size_t name_len, long idx,
		     struct jsonpath_state *out);

/* OR of the `kind` bits of every path that is complete in states[0..n). */
unsigned jsonpath_matched(const struct jsonpath_set *s,
			  const struct jsonpath_state *states, size_t n);

/*
 * Appends the normalized form of a member step to buf (".name" for plain
 * identifiers, "['a b']" otherwise, escaped as RFC 9535 §2.7 says), at
 * most cap-1 bytes plus NUL, starting at *len, which is advanced. Returns
 * false if it did not fit (buf then holds a cut path).
 */
bool jsonpath_append_name(char *buf, size_t cap, size_t *len,
			  const char *name, size_t name_len);
/* Same for an index step "[7]". */
bool jsonpath_append_index(char *buf, size_t cap, size_t *len, size_t idx);

#endif /* SHADOW_JSONPATH_H */
