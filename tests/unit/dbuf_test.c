// SPDX-License-Identifier: BSD-2-Clause
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dbuf.h"

Test(dbuf, appends_stay_nul_terminated_and_grow_past_the_first_block)
{
	struct dbuf b = DBUF_INIT(1 << 20);
	char chunk[100];

	cr_assert_str_eq(dbuf_str(&b), "");
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 50; i++)
		cr_assert_eq(dbuf_add(&b, chunk, sizeof(chunk)), 0);
	cr_assert_eq(dbuf_addc(&b, 'y'), 0);
	cr_assert_eq(dbuf_addf(&b, "%d-%s", 42, "z"), 0);
	cr_assert_eq(b.len, 5000 + 1 + 4);
	cr_assert_eq(strlen(dbuf_str(&b)), b.len);
	cr_assert_str_eq(dbuf_str(&b) + 5000, "y42-z");
	dbuf_free(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_str_eq(dbuf_str(&b), "");
}

Test(dbuf, the_cap_refuses_whole_appends_and_keeps_what_was_there)
{
	struct dbuf b;

	dbuf_init(&b, 10);
	cr_assert_eq(dbuf_add(&b, "abcdefgh", 8), 0);
	cr_assert_eq(dbuf_add(&b, "ijk", 3), -E2BIG);
	cr_assert_str_eq(dbuf_str(&b), "abcdefgh");
	cr_assert_eq(dbuf_add(&b, "ij", 2), 0);
	cr_assert_eq(dbuf_addc(&b, 'k'), -E2BIG);
	cr_assert_eq(dbuf_addf(&b, "%s", "k"), -E2BIG);
	cr_assert_str_eq(dbuf_str(&b), "abcdefghij");
	cr_assert_leq(b.cap, 11, "no more memory than the cap needs: %zu",
		      b.cap);
	dbuf_free(&b);
}

Test(dbuf, addf_longer_than_its_stack_buffer)
{
	struct dbuf b = DBUF_INIT(SIZE_MAX);
	char want[1001];

	memset(want, 'q', 1000);
	want[1000] = '\0';
	cr_assert_eq(dbuf_addf(&b, "%s", want), 0);
	cr_assert_str_eq(dbuf_str(&b), want);
	dbuf_free(&b);
}

Test(dbuf, room_reset_and_take)
{
	struct dbuf b = DBUF_INIT(100);
	size_t room, len;
	char *p;

	room = dbuf_room(&b, 30);
	cr_assert_geq(room, 30);
	cr_assert_leq(room, 100);
	memcpy(b.p, "hello", 5);
	b.len = 5;
	cr_assert_eq(dbuf_room(&b, 1000), 95, "room is cut at the cap");
	dbuf_reset(&b);
	cr_assert_str_eq(dbuf_str(&b), "");
	cr_assert_eq(dbuf_add(&b, "abc", 3), 0);
	p = dbuf_take(&b, &len);
	cr_assert_str_eq(p, "abc");
	cr_assert_eq(len, 3);
	cr_assert_null(b.p);
	cr_assert_eq(b.max, 100);
	free(p);
	cr_assert_null(dbuf_take(&b, NULL), "never grown: nothing to hand");
}

Test(vec, reserve_doubles_and_refuses_overflow)
{
	int *v = NULL;
	size_t cap = 0;
	uint64_t *big = NULL;
	size_t bigcap = 0;

	cr_assert_eq(vec_reserve(v, cap, 1), 0);
	cr_assert_eq(cap, 8);
	cr_assert_eq(vec_reserve(v, cap, 8), 0);
	cr_assert_eq(cap, 8);
	cr_assert_eq(vec_reserve(v, cap, 9), 0);
	cr_assert_eq(cap, 16);
	for (int i = 0; i < 16; i++)
		v[i] = i;
	cr_assert_eq(vec_reserve(v, cap, 1000), 0);
	cr_assert_eq(cap, 1024);
	cr_assert_eq(v[15], 15);
	cr_assert_eq(vec_reserve(big, bigcap, SIZE_MAX / 4), -ENOMEM);
	cr_assert_null(big);
	cr_assert_eq(bigcap, 0);
	free(v);
}
