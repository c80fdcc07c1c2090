/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fields of the store's JSON (records, stats, groups) for printing: a
 * missing or mistyped field, or a NULL object, reads as empty or zero, so
 * a printer shows what is there without checking every field first.
 */
#ifndef SHADOW_JSON_GET_H
#define SHADOW_JSON_GET_H

#include <jansson.h>
#include <stdint.h>

/* The string at o[key], borrowed from o; "" when absent or not a string. */
const char *json_get_str(const json_t *o, const char *key);
/* The integer at o[key]; 0 when absent or not an integer. */
int64_t json_get_int(const json_t *o, const char *key);
/* The number (integer or real) at o[key]; 0.0 when absent or not one. */
double json_get_num(const json_t *o, const char *key);

#endif /* SHADOW_JSON_GET_H */
