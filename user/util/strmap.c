// SPDX-License-Identifier: BSD-2-Clause
#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct strmap_ent *strmap_find(const struct strmap *m, const char *key)
{
	uint64_t h;

	if (!m->nb)
		return NULL;
	h = XXH3_64bits(key, strlen(key));
	for (struct strmap_ent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->h == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

struct strmap_ent *strmap_insert(struct strmap *m, const char *key, void *val)
{
	size_t klen = strlen(key);
	struct strmap_ent *e;

	if (m->n >= m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 64;
		struct strmap_ent **b = calloc(nb, sizeof(*b));

		if (!b)
			return NULL;
		for (size_t i = 0; i < m->nb; i++) {
			while (m->b[i]) {
				e = m->b[i];
				m->b[i] = e->next;
				e->next = b[e->h & (nb - 1)];
				b[e->h & (nb - 1)] = e;
			}
		}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, klen + 1);
	e->h = XXH3_64bits(key, klen);
	e->val = val;
	e->next = m->b[e->h & (m->nb - 1)];
	m->b[e->h & (m->nb - 1)] = e;
	m->n++;
	return e;
}

void strmap_clear(struct strmap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct strmap_ent *e = m->b[i];

			m->b[i] = e->next;
			if (free_val)
				free_val(e->val);
			free(e);
		}
	}
	m->n = 0;
}

void strmap_free(struct strmap *m, void (*free_val)(void *))
{
	strmap_clear(m, free_val);
	free(m->b);
	m->b = NULL;
	m->nb = 0;
}
