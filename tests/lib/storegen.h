/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Generated divergence records for the store's tests and benchmark: the
 * shape divergence_build() produces, without needing an exchange.
 */
#ifndef SHADOW_STOREGEN_H
#define SHADOW_STOREGEN_H

#include <jansson.h>
#include <stdbool.h>

/*
 * A new divergence record (caller owns) for endpoint, diverging in the
 * body at body_path (NULL: no body divergence) and in header hdr_name
 * (NULL: none), status diverging when status_diff. Headers carry an
 * Authorization and a Cookie whose values contain `secret` (NULL: none).
 * NULL on ENOMEM.
 */
json_t *storegen_record(const char *endpoint, const char *body_path,
			const char *hdr_name, bool status_diff, const char *secret);

#endif /* SHADOW_STOREGEN_H */
