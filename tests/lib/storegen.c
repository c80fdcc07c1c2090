// SPDX-License-Identifier: BSD-2-Clause
#include "storegen.h"

#include <stdio.h>

json_t *storegen_record(const char *endpoint, const char *body_path,
			const char *hdr_name, bool status_diff, const char *secret)
{
	char auth[256], cookie[256], body_p[256], body_c[256];
	json_t *bdiffs, *hdiffs;

	snprintf(auth, sizeof(auth), "Bearer %s", secret ? secret : "none");
	snprintf(cookie, sizeof(cookie), "session=%s", secret ? secret : "none");
	snprintf(body_p, sizeof(body_p), "{\"name\":\"alice\",\"n\":1}");
	snprintf(body_c, sizeof(body_c), "{\"name\":\"%s\",\"n\":1}",
		 body_path ? "bob" : "alice");
	bdiffs = body_path ? json_pack("[{s s s s s s s s}]", "path", body_path,
				       "kind", "changed", "primary", "alice",
				       "candidate", "bob")
			   : json_array();
	hdiffs = hdr_name ? json_pack("[{s s s s s s}]", "name", hdr_name,
				      "primary", "1", "candidate", "2")
			  : json_array();
	return json_pack(
		"{s s"
		" s {s s s s s [[s s] [s s] [s s]] s s}"
		" s {s i s [[s s] [s s]] s s s f}"
		" s {s i s [[s s]] s s s f}"
		" s {s b s s s []}"
		" s {s b s s s o}"
		" s {s b s s s o}}",
		"endpoint", endpoint,
		"request", "method", "GET", "target", "/users/7?x=1", "headers",
			"Host", "api", "Authorization", auth, "Cookie", cookie,
			"body", "",
		"primary", "status", 200, "headers", "Content-Type",
			"application/json", "Set-Cookie", cookie, "body", body_p,
			"latency_ms", 1.25,
		"candidate", "status", status_diff ? 500 : 200, "headers",
			"Content-Type", "application/json", "body", body_c,
			"latency_ms", 3.5,
		"status", "diverged", status_diff, "summary",
			status_diff ? "200 != 500" : "", "diffs",
		"headers", "diverged", hdr_name != NULL, "summary",
			hdr_name ? "1 header differs" : "", "diffs", hdiffs,
		"body", "diverged", body_path != NULL, "summary",
			body_path ? "1 field differs" : "", "diffs", bdiffs);
}
