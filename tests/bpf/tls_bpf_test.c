// SPDX-License-Identifier: BSD-2-Clause
/*
 * Tier 2, TLS: the capture's uprobes on the system libssl decrypt what an
 * HTTPS nginx (master + worker) and python's http.server wrapped in ssl
 * read and write. Clients are curl -k and a TLS client in this file
 * (libssl through dlopen) that keeps every plaintext byte it sent and
 * received; the captured streams must equal them exactly, with no
 * ciphertext in them. node's https (OpenSSL linked into the binary) is the
 * TLS nothing here can decrypt: its connections carry no bytes and are
 * counted as undecoded.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capharness.h"
#include "capture.h"
#include "conn.h"
#include "servers.h"
#include "shadow_event.h"

/* libssl through dlopen: the test links no TLS library itself. */
static struct {
	void *h;
	const void *(*client_method)(void);
	void *(*ctx_new)(const void *method);
	void (*ctx_free)(void *ctx);
	void *(*ssl_new)(void *ctx);
	int (*set_fd)(void *ssl, int fd);
	int (*connect)(void *ssl);
	int (*read)(void *ssl, void *buf, int num);
	int (*write)(void *ssl, const void *buf, int num);
	int (*shutdown)(void *ssl);
	void (*ssl_free)(void *ssl);
	void *ctx;
} ossl;

static void *sym(const char *name)
{
	void *p = dlsym(ossl.h, name);

	cr_assert_not_null(p, "libssl has no %s", name);
	return p;
}

static void ossl_load(void)
{
	if (ossl.ctx)
		return;
	ossl.h = dlopen("libssl.so.3", RTLD_NOW);
	if (!ossl.h)
		ossl.h = dlopen("libssl.so.1.1", RTLD_NOW);
	cr_assert_not_null(ossl.h, "no libssl: %s", dlerror());
	ossl.client_method = sym("TLS_client_method");
	ossl.ctx_new = sym("SSL_CTX_new");
	ossl.ctx_free = sym("SSL_CTX_free");
	ossl.ssl_new = sym("SSL_new");
	ossl.set_fd = sym("SSL_set_fd");
	ossl.connect = sym("SSL_connect");
	ossl.read = sym("SSL_read");
	ossl.write = sym("SSL_write");
	ossl.shutdown = sym("SSL_shutdown");
	ossl.ssl_free = sym("SSL_free");
	ossl.ctx = ossl.ctx_new(ossl.client_method());
	cr_assert_not_null(ossl.ctx);
}

/* A TLS client that keeps the plaintext it sent and received. */
struct client {
	int fd;
	void *ssl;
	uint16_t lport;
	struct harness_bytes sent, recvd;
};

static void client_connect(struct client *c, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	socklen_t len = sizeof(a);

	ossl_load();
	memset(c, 0, sizeof(*c));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(c->fd, 0);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	cr_assert_eq(getsockname(c->fd, (struct sockaddr *)&a, &len), 0);
	c->lport = ntohs(a.sin_port);
	c->ssl = ossl.ssl_new(ossl.ctx);
	cr_assert_not_null(c->ssl);
	cr_assert_eq(ossl.set_fd(c->ssl, c->fd), 1);
	cr_assert_eq(ossl.connect(c->ssl), 1, "TLS handshake failed");
}

static void client_send(struct client *c, const void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t want = n - done > 65536 ? 65536 : n - done;
		int w = ossl.write(c->ssl, (const uint8_t *)p + done, want);

		cr_assert_gt(w, 0, "SSL_write failed");
		done += w;
	}
	harness_bytes_add(&c->sent, p, n);
}

/* Reads one response (head + Content-Length body) into recvd. */
static void client_read_response(struct client *c)
{
	size_t start = c->recvd.n;
	uint8_t buf[16384];

	for (;;) {
		int r;

		if (harness_response_complete(&c->recvd, start))
			return;
		r = ossl.read(c->ssl, buf, sizeof(buf));
		cr_assert_gt(r, 0, "SSL_read: EOF or error");
		harness_bytes_add(&c->recvd, buf, r);
	}
}

static void client_request(struct client *c, const char *method,
			   const char *path, size_t body_len)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n"
		     "Content-Length: %zu\r\n\r\n", method, path, body_len);
	client_send(c, head, n);
	if (body_len) {
		uint8_t *body = malloc(body_len);

		for (size_t i = 0; i < body_len; i++)
			body[i] = (uint8_t)(i * 7 + 3);
		client_send(c, body, body_len);
		free(body);
	}
	client_read_response(c);
}

static void client_close(struct client *c)
{
	ossl.shutdown(c->ssl);
	ossl.ssl_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
}

static void client_free(struct client *c)
{
	free(c->sent.p);
	free(c->recvd.p);
}

/* The captured streams of c's connection equal the plaintext c sent and
 * received, from byte from_in/from_out of the client's record on. */
static void assert_same(const struct client *c, size_t from_in, size_t from_out)
{
	harness_assert_stream(c->lport, c->sent.p + from_in, c->sent.n - from_in,
			      c->recvd.p + from_out, c->recvd.n - from_out);
}

static void require_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("BPF tests need root (CAP_BPF, CAP_PERFMON)");
	/* close_notify to a server that already hung up must not kill us. */
	signal(SIGPIPE, SIG_IGN);
}

static struct servers_proc server;
static char dir[64];
static char cert[128], key[128];

/* A scratch dir with a self-signed certificate for localhost. */
static void make_cert(void)
{
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048",
			       "-nodes", "-subj", "/CN=localhost", "-days", "1",
			       "-keyout", key, "-out", cert, NULL };

	strcpy(dir, "/tmp/shadow-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	cr_assert_eq(servers_run(argv), 0, "openssl req failed");
}

/* nginx (master + one worker) serving only HTTPS: /small from memory,
 * /big a 1 MiB file, POST /small reads and discards the body. */
static int start_nginx(void)
{
	int port = servers_free_port();
	const char *argv[] = { "nginx", "-p", dir, "-c", "nginx.conf", NULL };
	char path[128];
	FILE *f;

	make_cert();
	snprintf(path, sizeof(path), "%s/big", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < (1 << 20); i++)
		fputc(i & 0xff, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"worker_processes 1; daemon off; master_process on;\n"
		"pid %s/nginx.pid; error_log stderr error;\n"
		"events { worker_connections 1024; }\n"
		"http { access_log off; sendfile on; keepalive_requests 100000;\n"
		" client_body_temp_path %s; proxy_temp_path %s;\n"
		" fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
		" client_max_body_size 16m;\n"
		" server { listen 127.0.0.1:%d ssl; root %s;\n"
		"  ssl_certificate %s; ssl_certificate_key %s;\n"
		"  location = /small { default_type application/json;"
		"   return 200 '{\"ok\":true}'; }\n"
		"  location = /big { default_type application/octet-stream; }\n"
		" } }\n", dir, dir, dir, dir, dir, dir, port, dir, cert, key);
	fclose(f);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	usleep(200000); /* let the master fork its worker */
	return port;
}

static int start_script(const char *interp, const char *script)
{
	int port = servers_free_port();
	char p[16];
	const char *argv[] = { interp, NULL, p, cert, key, NULL };

	make_cert();
	argv[1] = strdup(servers_path(script));
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	free((char *)argv[1]);
	return port;
}

static void teardown(void)
{
	harness_detach();
	servers_stop(&server);
	if (dir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		dir[0] = '\0';
	}
}

TestSuite(tls, .init = require_root, .fini = teardown, .timeout = 120);

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long len;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	p = malloc(len + 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, len, f), (size_t)len);
	fclose(f);
	*n = len;
	return p;
}

/* The stream's inbound side is exactly the requests for `paths`, in
 * order, as curl writes them (request line, then Host first). */
static void assert_curl_requests(const struct harness_stream *s, int port,
				 const char *const *paths, int n)
{
	const struct harness_bytes *in = &s->dir[SHADOW_DIR_IN];
	size_t at = 0;

	for (int i = 0; i < n; i++) {
		char want[256];
		const char *end;
		int wl;

		wl = snprintf(want, sizeof(want),
			      "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n",
			      paths[i], port);
		cr_assert_geq(in->n - at, (size_t)wl, "request %d missing", i);
		cr_assert(memcmp(in->p + at, want, wl) == 0,
			  "request %d is not '%s': '%.*s'", i, paths[i],
			  (int)(in->n - at > 80 ? 80 : in->n - at),
			  (const char *)in->p + at);
		end = memmem(in->p + at, in->n - at, "\r\n\r\n", 4);
		cr_assert_not_null(end, "request %d has no end", i);
		at = (const uint8_t *)end + 4 - in->p;
	}
	cr_assert_eq(at, in->n, "bytes after the last request");
}

/* The outbound side is exactly the head curl dumped and the body it
 * saved, for each response in order. */
static void assert_curl_responses(const struct harness_stream *s, const char *hdrs,
				  const char *const *bodies, int n)
{
	const struct harness_bytes *out = &s->dir[SHADOW_DIR_OUT];
	struct harness_bytes want = { 0 };
	size_t hn, bn;
	uint8_t *h = slurp(hdrs, &hn);
	size_t hat = 0;

	/* -D writes every response's head to one file, back to back. */
	for (int i = 0; i < n; i++) {
		const uint8_t *end = memmem(h + hat, hn - hat, "\r\n\r\n", 4);
		uint8_t *b = slurp(bodies[i], &bn);

		cr_assert_not_null(end, "head %d missing in %s", i, hdrs);
		harness_bytes_add(&want, h + hat, end + 4 - (h + hat));
		hat = end + 4 - h;
		harness_bytes_add(&want, b, bn);
		free(b);
	}
	cr_assert_eq(out->n, want.n, "captured %zu response bytes, curl got %zu",
		     out->n, want.n);
	cr_assert(memcmp(out->p, want.p, want.n) == 0, "response bytes differ");
	free(h);
	free(want.p);
}

/* 20 curl -k requests, one connection each, then one connection with
 * three keep-alive requests: 21 streams of plaintext, exactly what curl
 * sent and received. */
Test(tls, nginx_https_20_curl_and_keepalive_three)
{
	int port = start_nginx();
	struct capture_stats st;
	char url[3][128], hdrs[128], body[3][128];
	const char *paths[3];
	char pathbuf[3][32];

	harness_attach(server.pid, port);
	capture_get_stats(harness_cap, &st);
	cr_assert_geq(st.tls_libs, 1, "no libssl hooked");
	snprintf(hdrs, sizeof(hdrs), "%s/h", dir);
	for (int i = 0; i < 20; i++) {
		const char *argv[] = { "curl", "-k", "-s", "--http1.1", "-D", hdrs,
				       "-o", body[0], url[0], NULL };

		snprintf(body[0], sizeof(body[0]), "%s/b%d", dir, i);
		snprintf(url[0], sizeof(url[0]),
			 "https://127.0.0.1:%d/small?i=%d", port, i);
		unlink(hdrs);
		cr_assert_eq(servers_run(argv), 0, "curl %d failed", i);
		harness_drain(30);
		cr_assert_eq(harness_n_streams, (size_t)i + 1, "%zu streams after %d curls",
			     harness_n_streams, i + 1);
		snprintf(pathbuf[0], sizeof(pathbuf[0]), "/small?i=%d", i);
		paths[0] = pathbuf[0];
		assert_curl_requests(&harness_streams[i], port, paths, 1);
		assert_curl_responses(&harness_streams[i], hdrs,
				      (const char *const[]){ body[0] }, 1);
		cr_assert(harness_streams[i].closed, "curl %d: close not seen", i);
	}
	unlink(hdrs);
	{
		const char *argv[] = { "curl", "-k", "-s", "--http1.1", "-D", hdrs,
				       "-o", body[0], url[0], "-o", body[1], url[1],
				       "-o", body[2], url[2], NULL };

		for (int i = 0; i < 3; i++) {
			static const char *const p[3] = { "/small?ka=1", "/big",
							  "/small?ka=3" };

			snprintf(body[i], sizeof(body[i]), "%s/ka%d", dir, i);
			snprintf(url[i], sizeof(url[i]), "https://127.0.0.1:%d%s",
				 port, p[i]);
			paths[i] = p[i];
		}
		cr_assert_eq(servers_run(argv), 0, "keep-alive curl failed");
	}
	harness_drain(100);
	cr_assert_eq(harness_n_streams, 21, "three keep-alive requests on one "
		     "connection: %zu streams", harness_n_streams);
	assert_curl_requests(&harness_streams[20], port, paths, 3);
	assert_curl_responses(&harness_streams[20], hdrs,
			      (const char *const[]){ body[0], body[1], body[2] }, 3);
	cr_assert_eq(harness_streams[20].gaps, 0);
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(st.tls_undecoded, 0);
	cr_assert_eq(st.tls_unlinked, 0);
	cr_assert_eq(st.lost, 0);
}

/* Breakpoints in process pid's executable mappings of the file called
 * like `lib`: int3 bytes (0xcc) in its memory where the file has none. */
static size_t count_breakpoints(pid_t pid, const char *lib)
{
	const char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
	char path[64], line[512], file[512] = "";
	size_t n = 0;
	FILE *f;
	int mem, fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDONLY);
	cr_assert_geq(mem, 0, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi, foff;
		char perms[8];
		uint8_t *m, *d;
		size_t len;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &lo, &hi, perms,
			   &foff, file) != 5 || perms[2] != 'x' ||
		    strcmp(strrchr(file, '/') ? strrchr(file, '/') + 1 : file,
			   base) != 0)
			continue;
		if (fd < 0)
			fd = open(file, O_RDONLY);
		cr_assert_geq(fd, 0, "%s: %s", file, strerror(errno));
		len = hi - lo;
		m = malloc(len);
		d = malloc(len);
		cr_assert(m && d);
		cr_assert_eq(pread(mem, m, len, (off_t)lo), (ssize_t)len);
		len = (size_t)pread(fd, d, len, (off_t)foff);
		for (size_t i = 0; i < len; i++)
			n += m[i] == 0xcc && d[i] != 0xcc;
		free(m);
		free(d);
	}
	fclose(f);
	close(mem);
	if (fd >= 0)
		close(fd);
	return n;
}

/* The SSL hooks go into the targets only: a process that maps the same
 * libssl and is no target (here the test itself, a client) must not trap
 * into the kernel on every SSL call, as it would under a system-wide
 * uprobe. A breakpoint is an int3 (0xcc) written over a hooked
 * instruction's first byte in that process's memory: at least a read and
 * a write hook in the target, none in the test. */
Test(tls, only_targets_carry_the_ssl_breakpoints)
{
	int port = start_nginx();
	struct capture_stats st;
	Dl_info di;
	size_t n;

	harness_attach(server.pid, port);
	capture_get_stats(harness_cap, &st);
	cr_assert_geq(st.tls_libs, 1, "no libssl hooked");
	ossl_load();
	cr_assert(dladdr((void *)ossl.read, &di) && di.dli_fname);
	n = count_breakpoints(server.pid, di.dli_fname);
	cr_expect_geq(n, 2, "the target's libssl carries %zu breakpoints", n);
	n = count_breakpoints(getpid(), di.dli_fname);
	cr_expect_eq(n, 0, "%zu breakpoints in a process that is no target", n);
	/* And the target's calls are still seen. */
	{
		struct client c;

		client_connect(&c, port);
		client_request(&c, "GET", "/small", 0);
		client_close(&c);
		harness_drain(50);
		assert_same(&c, 0, 0);
		client_free(&c);
	}
}

/* Exact plaintext both ways over keep-alive: a 1 MiB response (many TLS
 * records), a 1 MiB request body, then a second connection. */
static void exact_bytes_big_bodies(int port)
{
	struct client a, b;

	client_connect(&a, port);
	client_request(&a, "GET", "/small", 0);
	client_request(&a, "GET", "/big", 0);
	client_request(&a, "POST", "/small", 1 << 20);
	client_request(&a, "GET", "/small?x=2", 0);
	client_close(&a);
	harness_drain(100);
	client_connect(&b, port);
	client_request(&b, "GET", "/small?after=reuse", 0);
	client_close(&b);
	harness_drain(200);

	cr_assert_eq(harness_n_streams, 2, "expected 2 connections, saw %zu", harness_n_streams);
	assert_same(&a, 0, 0);
	assert_same(&b, 0, 0);
	cr_assert_geq(harness_stream_of(a.lport)->dir[SHADOW_DIR_OUT].n, 1 << 20);
	cr_assert(harness_stream_of(a.lport)->closed);
	client_free(&a);
	client_free(&b);
}

Test(tls, nginx_https_exact_plaintext_big_bodies)
{
	int port = start_nginx();

	harness_attach(server.pid, port);
	exact_bytes_big_bodies(port);
}

Test(tls, python_ssl_http_server_exact_plaintext)
{
	int port = start_script("/usr/bin/python3", "tls_server.py");

	harness_attach(server.pid, 0);
	exact_bytes_big_bodies(port);
}

/* A keep-alive HTTPS connection whose handshake happened before attach is
 * picked up at its next request: exactly the plaintext after attach. */
Test(tls, nginx_https_connection_opened_before_attach)
{
	int port = start_nginx();
	struct client a;
	size_t in0, out0;

	client_connect(&a, port);
	client_request(&a, "GET", "/small?before", 0);
	in0 = a.sent.n;
	out0 = a.recvd.n;
	harness_attach(server.pid, port);
	client_request(&a, "GET", "/small?after1", 0);
	client_request(&a, "GET", "/big", 0);
	client_close(&a);
	harness_drain(200);
	cr_assert_eq(harness_n_streams, 1);
	cr_assert(harness_stream_of(a.lport)->midstream);
	assert_same(&a, in0, out0);
	client_free(&a);
}

/* node's https carries its own OpenSSL: nothing decrypts it, so its
 * connections are tracked but carry no bytes (never ciphertext parsed as
 * HTTP), and each is counted as undecoded. */
Test(tls, node_https_counted_undecoded_and_never_emitted)
{
	int port = start_script("node", "tls_server.js");
	struct capture_stats st;
	struct client c[3];

	harness_attach(server.pid, 0);
	for (int i = 0; i < 3; i++) {
		client_connect(&c[i], port);
		client_request(&c[i], "GET", "/small", 0);
		client_request(&c[i], "GET", "/small?again", 0);
	}
	harness_drain(100);
	capture_get_stats(harness_cap, &st);
	/* The server's handshake writes already told: no hooked call. */
	cr_assert_eq(st.tls_undecoded, 3, "undecoded while open: %llu",
		     (unsigned long long)st.tls_undecoded);
	for (int i = 0; i < 3; i++)
		client_close(&c[i]);
	harness_drain(200);
	cr_assert_eq(harness_n_streams, 3);
	for (int i = 0; i < 3; i++) {
		const struct harness_stream *s = harness_stream_of(c[i].lport);

		cr_assert_eq(s->dir[0].n + s->dir[1].n, 0,
			     "%zu/%zu bytes of ciphertext emitted", s->dir[0].n,
			     s->dir[1].n);
		cr_assert(s->closed);
		client_free(&c[i]);
	}
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(st.tls_undecoded, 3, "each counted once: %llu",
		     (unsigned long long)st.tls_undecoded);
}

/* A client that sends the start of a ClientHello and hangs up before any
 * answer: the TLS connection is counted at its close. */
Test(tls, node_hello_then_close_counted_at_close)
{
	int port = start_script("node", "tls_server.js");
	struct capture_stats st;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	/* A TLS handshake record header and the start of a ClientHello. */
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0x40, 0x01 };
	int fd;

	harness_attach(server.pid, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
	usleep(100000);
	harness_drain(50);
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(st.tls_undecoded, 0, "counted before it was known");
	close(fd);
	for (int i = 0; i < 40 && !(harness_n_streams == 1 && harness_streams[0].closed); i++)
		harness_drain(50);
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(harness_n_streams, 1);
	cr_assert(harness_streams[0].closed, "node did not close it");
	cr_assert_eq(harness_streams[0].dir[0].n + harness_streams[0].dir[1].n, 0,
		     "ciphertext emitted");
	cr_assert_eq(st.tls_undecoded, 1, "undecoded: %llu",
		     (unsigned long long)st.tls_undecoded);
}
