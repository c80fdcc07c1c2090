// SPDX-License-Identifier: BSD-2-Clause
/*
 * rs_backend_http(): a backend over libcurl's easy interface, one handle
 * per thread (kept for its connections, freed when the thread exits). The
 * request goes out as given, like replay.c sends a captured one: the
 * target appended to the base URL byte for byte, the headers in order
 * minus hop-by-hop ones and Content-Length, nothing of curl's own added,
 * no redirects followed, no encoding negotiated.
 */
#include "request_shadow.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/dbuf.h"

#define HTTP_TIMEOUT_MS 30000L
/* Largest response body kept; past it the call fails (-EFBIG). */
#define HTTP_MAX_BODY (64u << 20)
#define HTTP_MAX_HEADERS 256

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;
static bool curl_ok;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void http_init(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
		  pthread_key_create(&handle_key, handle_free) == 0;
}

/* A response as it arrives; its headers and body become the rs_message's
 * (released by http_release()). */
struct reply {
	struct rs_header *h;
	size_t n_h;
	struct dbuf body; /* at most HTTP_MAX_BODY bytes */
	bool too_big;
};

static void reply_clear_headers(struct reply *r)
{
	for (size_t i = 0; i < r->n_h; i++)
		free((char *)r->h[i].name); /* value is in the same block */
	r->n_h = 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t len = size * n, nl, vl;
	const char *colon;
	char *name;

	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		/* a status line: a 1xx's headers are not the answer's */
		reply_clear_headers(r);
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon || r->n_h == HTTP_MAX_HEADERS)
		return len;
	nl = (size_t)(colon - buf);
	colon++;
	while (colon < buf + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	vl = (size_t)(buf + len - colon);
	while (vl && (colon[vl - 1] == '\r' || colon[vl - 1] == '\n' ||
		      colon[vl - 1] == ' ' || colon[vl - 1] == '\t'))
		vl--;
	if (!r->h && !(r->h = calloc(HTTP_MAX_HEADERS, sizeof(*r->h))))
		return 0;
	name = malloc(nl + vl + 2);
	if (!name)
		return 0;
	memcpy(name, buf, nl);
	name[nl] = '\0';
	memcpy(name + nl + 1, colon, vl);
	name[nl + 1 + vl] = '\0';
	r->h[r->n_h].name = name;
	r->h[r->n_h++].value = name + nl + 1;
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t len = size * n;

	switch (dbuf_add(&r->body, buf, len)) {
	case 0:
		return len;
	case -E2BIG:
		r->too_big = true;
		return 0;
	default:
		return 0;
	}
}

/* Whether name is a hop-by-hop header (or one curl recomputes). */
static bool hop_by_hop(const char *name)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (!strcasecmp(name, hop[i]))
			return true;
	return false;
}

static int errno_of(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
		return -EPROTO;
	case CURLE_URL_MALFORMAT: return -EINVAL;
	case CURLE_WEIRD_SERVER_REPLY: return -EBADMSG;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	default: return -EIO;
	}
}

/* Headers curl adds of its own unless told not to. */
static const char *const no_curl[] = { "Accept:", "Expect:", "User-Agent:" };

/* Whether req has the header blank ("Name:") names. */
static bool has_header(const struct rs_message *req, const char *blank)
{
	size_t len = strlen(blank) - 1;

	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i].name &&
		    strlen(req->headers[i].name) == len &&
		    !strncasecmp(req->headers[i].name, blank, len))
			return true;
	return false;
}

static int http_call(void *ctx, const struct rs_message *req,
		     struct rs_message *resp)
{
	const char *base = ctx;
	struct curl_slist *hl = NULL, *nl;
	struct reply r = { .body = DBUF_INIT(HTTP_MAX_BODY) };
	char *url = NULL, *line = NULL;
	long status = 0;
	CURL *h;
	int rc = -ENOMEM;
	CURLcode cc;

	if (!base || !req || !req->method || !req->target || !resp)
		return -EINVAL;
	pthread_once(&once, http_init);
	if (!curl_ok)
		return -ENOMEM;
	h = pthread_getspecific(handle_key);
	if (!h) {
		if (!(h = curl_easy_init()))
			return -ENOMEM;
		pthread_setspecific(handle_key, h);
	} else {
		curl_easy_reset(h);
	}
	if (asprintf(&url, "%s%s", base, req->target) < 0) {
		url = NULL;
		goto cleanup;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;

		if (!n || hop_by_hop(n))
			continue;
		/* "Name;" sends a header with an empty value */
		if (asprintf(&line, v && *v ? "%s: %s" : "%s;", n, v) < 0)
			goto cleanup;
		nl = curl_slist_append(hl, line);
		free(line);
		if (!nl)
			goto cleanup;
		hl = nl;
	}
	/* curl's own additions, off */
	for (size_t i = 0; i < sizeof(no_curl) / sizeof(no_curl[0]); i++) {
		if (has_header(req, no_curl[i]))
			continue;
		if (!(nl = curl_slist_append(hl, no_curl[i])))
			goto cleanup;
		hl = nl;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (!strcasecmp(req->method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body_len) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		if (!strcmp(req->method, "GET"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "GET");
	}
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		rc = r.too_big ? -EFBIG : errno_of(cc);
		goto cleanup;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	*resp = (struct rs_message){
		.status = (int)status, .headers = r.h, .n_headers = r.n_h,
		.body_len = r.body.len,
	};
	resp->body = dbuf_take(&r.body, NULL);
	r.h = NULL;
	r.n_h = 0;
	rc = 0;
cleanup:
	/* the handle keeps no pointer to these past perform */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	free(url);
	reply_clear_headers(&r);
	free(r.h);
	dbuf_free(&r.body);
	return rc;
}

static void http_release(void *ctx, struct rs_message *resp)
{
	if (!resp)
		return;
	for (size_t i = 0; i < resp->n_headers; i++)
		free((char *)resp->headers[i].name);
	free((void *)resp->headers);
	free((void *)resp->body);
	memset(resp, 0, sizeof(*resp));
}

struct rs_backend rs_backend_http(const char *base_url)
{
	struct rs_backend b = {
		.call = http_call, .release = http_release,
		.ctx = (void *)base_url,
	};

	return b;
}
