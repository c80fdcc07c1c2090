// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"

static int freed;

static void count_free(void *v)
{
	freed++;
	free(v);
}

Test(strmap, finds_what_was_inserted_across_growth_and_nothing_else)
{
	struct strmap m = { 0 };
	char key[32];

	cr_assert_null(strmap_find(&m, "a"), "an empty map finds nothing");
	for (int i = 0; i < 5000; i++) {
		int *v = malloc(sizeof(*v));

		cr_assert_not_null(v);
		*v = i;
		snprintf(key, sizeof(key), "GET /users/%d", i);
		cr_assert_not_null(strmap_insert(&m, key, v));
	}
	cr_assert_eq(m.n, 5000);
	cr_assert_geq(m.nb, 5000, "the buckets grew: %zu", m.nb);
	for (int i = 0; i < 5000; i++) {
		struct strmap_ent *e;

		snprintf(key, sizeof(key), "GET /users/%d", i);
		e = strmap_find(&m, key);
		cr_assert_not_null(e, "%s", key);
		cr_assert_eq(*(int *)e->val, i);
		cr_assert_str_eq(e->key, key, "the key is copied");
	}
	cr_assert_null(strmap_find(&m, "GET /users/5000"));
	cr_assert_null(strmap_find(&m, ""));
	freed = 0;
	strmap_clear(&m, count_free);
	cr_assert_eq(freed, 5000);
	cr_assert_eq(m.n, 0);
	cr_assert_null(strmap_find(&m, "GET /users/1"));
	cr_assert_not_null(strmap_insert(&m, "", NULL), "reusable after clear");
	cr_assert_not_null(strmap_find(&m, ""));
	strmap_free(&m, NULL);
	cr_assert_null(m.b);
	cr_assert_null(strmap_find(&m, ""));
}
