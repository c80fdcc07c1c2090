/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A string-keyed hash map, chained, on XXH3: the one the store, the
 * metrics and the tally look endpoints, signatures and fields up in. Keys
 * are copied into their entries; values are the caller's. The buckets
 * double when there are as many entries as buckets. To walk every entry,
 * follow b[0 .. nb) and each chain's next.
 */
#ifndef SHADOW_STRMAP_H
#define SHADOW_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_ent {
	struct strmap_ent *next;
	uint64_t h;
	void *val;
	char key[];
};

struct strmap {
	struct strmap_ent **b;
	size_t nb, n;
};

/* The entry of key, or NULL. */
struct strmap_ent *strmap_find(const struct strmap *m, const char *key);
/* Inserts key (copied) with val; the key must not be present. NULL on
 * ENOMEM. */
struct strmap_ent *strmap_insert(struct strmap *m, const char *key, void *val);
/* Frees every entry (and its value with free_val, when given). */
void strmap_clear(struct strmap *m, void (*free_val)(void *));
/* strmap_clear(), then the buckets; the map is empty and reusable. */
void strmap_free(struct strmap *m, void (*free_val)(void *));

#endif /* SHADOW_STRMAP_H */
