// SPDX-License-Identifier: BSD-2-Clause
#include "json_get.h"

const char *json_get_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int64_t json_get_int(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

double json_get_num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}
