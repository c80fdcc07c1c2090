// SPDX-License-Identifier: BSD-2-Clause
/*
 * Tier 2: load and attach the capture programs to real servers on loopback
 * (python's http.server, nginx with one worker attached through its
 * master's pid, node's http module), drive them with a client that keeps
 * every byte it sent and received, and check that the captured stream of
 * every connection equals those bytes exactly.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capharness.h"
#include "capture.h"
#include "conn.h"
#include "sample.h"
#include "servers.h"
#include "shadow_event.h"

/* A client that keeps what it sent and received. */
struct client {
	int fd;
	uint16_t lport;
	struct harness_bytes sent, recvd;
};

static void client_connect(struct client *c, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	socklen_t len = sizeof(a);

	memset(c, 0, sizeof(*c));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(c->fd, 0);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	cr_assert_eq(getsockname(c->fd, (struct sockaddr *)&a, &len), 0);
	c->lport = ntohs(a.sin_port);
}

static void client_send(struct client *c, const void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(c->fd, (const uint8_t *)p + done, n - done);

		cr_assert_gt(w, 0, "write: %s", strerror(errno));
		done += w;
	}
	harness_bytes_add(&c->sent, p, n);
}

/* Reads one response (head + Content-Length body) into recvd. */
static void client_read_response(struct client *c)
{
	size_t start = c->recvd.n;
	uint8_t buf[65536];

	for (;;) {
		ssize_t r;

		if (harness_response_complete(&c->recvd, start))
			return;
		r = read(c->fd, buf, sizeof(buf));
		cr_assert_gt(r, 0, "read: %s", r < 0 ? strerror(errno) : "EOF");
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
	close(c->fd);
	c->fd = -1;
}

static void client_free(struct client *c)
{
	free(c->sent.p);
	free(c->recvd.p);
}

/* The captured streams of c's connection equal what c sent and received,
 * from byte `from_in`/`from_out` of the client's record on. */
static void assert_same(const struct client *c, size_t from_in, size_t from_out)
{
	harness_assert_stream(c->lport, c->sent.p + from_in, c->sent.n - from_in,
			      c->recvd.p + from_out, c->recvd.n - from_out);
}

static void require_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("BPF tests need root (CAP_BPF, CAP_PERFMON)");
}

static struct servers_proc server;

static int start_python_mode(const char *mode)
{
	int port = servers_free_port();
	char p[16];
	const char *argv[] = { "python3", NULL, p, mode, NULL };

	argv[1] = strdup(servers_path("capture_server.py"));
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	free((char *)argv[1]);
	return port;
}

static int start_python(void)
{
	return start_python_mode(NULL);
}

static int start_node(void)
{
	int port = servers_free_port();
	char p[16];
	const char *argv[] = { "node", NULL, p, NULL };

	argv[1] = strdup(servers_path("capture_server.js"));
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	free((char *)argv[1]);
	return port;
}

static char nginx_dir[64];
/* More of nginx's server block, for the test that needs it. */
static char nginx_extra[256];

/* nginx with a master and one worker; /big is a 1 MiB static file (sent
 * with sendfile), /small a JSON body from memory (writev). */
static int start_nginx(void)
{
	int port = servers_free_port();
	char conf[4096], path[128];
	const char *argv[] = { "nginx", "-p", nginx_dir, "-c", "nginx.conf",
			       NULL };
	FILE *f;

	strcpy(nginx_dir, "/tmp/shadow-nginx-XXXXXX");
	cr_assert_not_null(mkdtemp(nginx_dir));
	snprintf(path, sizeof(path), "%s/big", nginx_dir);
	f = fopen(path, "w");
	for (int i = 0; i < (1 << 20); i++)
		fputc(i & 0xff, f);
	fclose(f);
	snprintf(conf, sizeof(conf),
		 "worker_processes 1; daemon off; master_process on;\n"
		 "pid %s/nginx.pid; error_log stderr error;\n"
		 "events { worker_connections 1024; }\n"
		 "http { access_log off; sendfile on; keepalive_requests 100000;\n"
		 " client_body_temp_path %s; proxy_temp_path %s;\n"
		 " fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
		 " client_max_body_size 16m;\n"
		 " server { listen 127.0.0.1:%d; root %s;\n"
		 "  location = /small { default_type application/json;"
		 "   return 200 '{\"ok\":true}'; }\n"
		 "  location = /big { default_type application/octet-stream; }\n"
		 "  %s\n"
		 " } }\n", nginx_dir, nginx_dir, nginx_dir, nginx_dir,
		 nginx_dir, nginx_dir, port, nginx_dir, nginx_extra);
	snprintf(path, sizeof(path), "%s/nginx.conf", nginx_dir);
	f = fopen(path, "w");
	fputs(conf, f);
	fclose(f);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	return port;
}

static struct servers_proc upstream;

static void teardown(void)
{
	harness_detach();
	servers_stop(&server);
	servers_stop(&upstream);
	nginx_extra[0] = '\0';
	if (nginx_dir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", nginx_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", nginx_dir);
		nginx_dir[0] = '\0';
	}
}

TestSuite(capture, .init = require_root, .fini = teardown, .timeout = 120);

/* Keep-alive with 1 MiB bodies both ways, then a second connection that
 * gets the closed one's fd number again. */
static void keepalive_big_bodies_and_fd_reuse(int port)
{
	const struct harness_stream *sa, *sb;
	struct client a, b;

	harness_attach(server.pid, 0);
	client_connect(&a, port);
	client_request(&a, "GET", "/small", 0);
	client_request(&a, "GET", "/big", 0);
	harness_drain(50);
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
	sa = harness_stream_of(a.lport);
	sb = harness_stream_of(b.lport);
	cr_assert(sa->closed, "close of the first not seen");
	cr_assert_geq(sa->dir[SHADOW_DIR_OUT].n, 1 << 20);
	/* The second really got the first's fd number, under a new
	 * generation: two connections, not one continued. */
	cr_assert(sa->tgid == sb->tgid && sa->fd == sb->fd,
		  "the fd was not reused: %u/%u then %u/%u", sa->tgid, sa->fd,
		  sb->tgid, sb->fd);
	cr_assert_neq(sa->gen, sb->gen, "one generation for both: %u", sa->gen);
	client_free(&a);
	client_free(&b);
}

Test(capture, python_keepalive_big_bodies_and_fd_reuse)
{
	keepalive_big_bodies_and_fd_reuse(start_python());
}

/* Bytes looked at with MSG_PEEK are read again afterwards: captured once. */
Test(capture, python_peeking_before_reading)
{
	keepalive_big_bodies_and_fd_reuse(start_python_mode("peek"));
}

Test(capture, node_keepalive_big_bodies_and_fd_reuse)
{
	keepalive_big_bodies_and_fd_reuse(start_node());
}

Test(capture, nginx_worker_via_master_pid_sendfile_and_writev)
{
	int port = start_nginx();
	struct capture_stats st;
	struct client a;

	usleep(200000); /* let the master fork its worker */
	harness_attach(server.pid, port);
	capture_get_stats(harness_cap, &st);
	cr_assert_geq(st.targets, 2, "master and worker: %u targets",
		      st.targets);
	client_connect(&a, port);
	client_request(&a, "GET", "/small", 0);
	client_request(&a, "GET", "/big", 0);
	harness_drain(50);
	client_request(&a, "POST", "/small", 1 << 20);
	client_request(&a, "GET", "/small", 0);
	client_close(&a);
	harness_drain(200);
	cr_assert_eq(harness_n_streams, 1);
	assert_same(&a, 0, 0);
	client_free(&a);
}

/* nginx proxying to a backend: the worker's own connection to it is a
 * client socket of the target, and must not be taken for a connection
 * it serves, whether or not a --port is given. */
Test(capture, upstream_connections_of_a_proxy_are_not_captured)
{
	int up = servers_free_port(), port;
	const char *argv[] = { "python3", NULL, NULL, NULL };
	char p[16];
	struct client a;

	argv[1] = strdup(servers_path("capture_server.py"));
	snprintf(p, sizeof(p), "%d", up);
	argv[2] = p;
	cr_assert_eq(servers_start(&upstream, argv, up, 10000), 0);
	free((char *)argv[1]);
	snprintf(nginx_extra, sizeof(nginx_extra),
		 "location /up/ { proxy_pass http://127.0.0.1:%d/; }", up);
	port = start_nginx();
	usleep(200000); /* let the master fork its worker */
	harness_attach(server.pid, 0);
	client_connect(&a, port);
	client_request(&a, "GET", "/up/small", 0);
	client_request(&a, "GET", "/small", 0);
	client_request(&a, "GET", "/up/big", 0);
	client_close(&a);
	harness_drain(200);
	cr_assert(memmem(a.recvd.p, a.recvd.n, "HTTP/1.1 200", 12));
	cr_assert_eq(harness_n_streams, 1, "%zu connections captured",
		     harness_n_streams);
	assert_same(&a, 0, 0);
	client_free(&a);
}

/* A connection made before attach but still in its listener's queue then
 * (accepted after): neither its accept() nor its birth is seen, and it is
 * captured whole all the same. The server accepts only once signalled. */
Test(capture, connection_queued_at_attach_is_captured)
{
	int port = start_python_mode("late");
	struct client a;

	client_connect(&a, port);
	client_send(&a, "GET /queued HTTP/1.1\r\nHost: q\r\n\r\n", 33);
	harness_attach(server.pid, 0);
	cr_assert_eq(kill(server.pid, SIGUSR1), 0);
	client_read_response(&a);
	client_close(&a);
	harness_drain(200);
	cr_assert_not_null(harness_stream_of(a.lport), "not captured");
	assert_same(&a, 0, 0);
	client_free(&a);
}

/* A client that resets its connection: the server's end of it is seen
 * (its socket closes without a FIN from the server), whole. */
Test(capture, python_connection_reset_by_the_client_ends)
{
	int port = start_python();
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct client a;

	harness_attach(server.pid, 0);
	client_connect(&a, port);
	client_request(&a, "GET", "/small", 0);
	client_request(&a, "GET", "/small?again", 0);
	cr_assert_eq(setsockopt(a.fd, SOL_SOCKET, SO_LINGER, &lg,
				sizeof(lg)), 0);
	client_close(&a);
	harness_drain(300);
	cr_assert_eq(harness_n_streams, 1);
	cr_assert(harness_stream_of(a.lport)->closed, "its end was not seen");
	assert_same(&a, 0, 0);
	client_free(&a);
}

/* busybox httpd accepts in its own process and forks a handler per
 * connection, which dup2()s the socket onto its stdin and stdout, reads
 * the request through fd 0, answers through fd 1 (the body by sendfile())
 * and exits; the parent closes its fd at once. Each connection is one
 * stream all the same, whole, with its end, though no fd it was seen on
 * is the accepted one and its bytes are read back after the handler died. */
Test(capture, fork_per_connection_server_with_dup_and_sendfile)
{
	int port = servers_free_port();
	char p[32], path[128];
	const char *argv[] = { "busybox", "httpd", "-f", "-p", p, "-h",
			       nginx_dir, NULL };
	struct client c[4];
	FILE *f;

	strcpy(nginx_dir, "/tmp/shadow-busybox-XXXXXX");
	cr_assert_not_null(mkdtemp(nginx_dir));
	snprintf(path, sizeof(path), "%s/file.bin", nginx_dir);
	f = fopen(path, "w");
	for (int i = 0; i < 100000; i++)
		fputc((i * 13) & 0xff, f);
	fclose(f);
	snprintf(p, sizeof(p), "127.0.0.1:%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	harness_attach(server.pid, 0);
	/* Two one after the other, two at once. */
	for (int i = 0; i < 2; i++) {
		client_connect(&c[i], port);
		client_request(&c[i], "GET", "/file.bin", 0);
		client_close(&c[i]);
	}
	client_connect(&c[2], port);
	client_connect(&c[3], port);
	client_request(&c[3], "GET", "/file.bin", 0);
	client_request(&c[2], "GET", "/file.bin", 0);
	client_close(&c[2]);
	client_close(&c[3]);
	harness_drain(300);
	/* Besides these, at most the readiness probe's, made before attach
	 * and empty, whose handler may only read its end after. */
	cr_assert(harness_n_streams == 4 || harness_n_streams == 5,
		  "expected 4 connections, saw %zu", harness_n_streams);
	for (size_t i = 0; i < harness_n_streams; i++) {
		const struct harness_stream *st = &harness_streams[i];
		bool ours = false;

		for (int j = 0; j < 4; j++)
			ours |= st->rport == c[j].lport;
		cr_assert(ours || (st->dir[0].n == 0 && st->dir[1].n == 0),
			  "a connection of no client's, with bytes (port %u)",
			  st->rport);
	}
	for (int i = 0; i < 4; i++) {
		struct harness_stream *st = harness_stream_of(c[i].lport);

		cr_assert_not_null(st, "connection %d not captured", i);
		cr_assert(st->closed, "connection %d: its end was not seen", i);
		cr_assert_eq(st->gaps, 0, "connection %d: %llu gaps", i,
			     (unsigned long long)st->gaps);
		cr_assert_gt(c[i].recvd.n, 100000, "connection %d: a short answer", i);
		assert_same(&c[i], 0, 0);
		client_free(&c[i]);
	}
}

Test(capture, node_writev_response)
{
	int port = start_node();
	struct client a;

	harness_attach(server.pid, 0);
	client_connect(&a, port);
	for (int i = 0; i < 5; i++)
		client_request(&a, "GET", "/writev", 0);
	client_close(&a);
	harness_drain(200);
	assert_same(&a, 0, 0);
	cr_assert(memmem(a.recvd.p, a.recvd.n, "{\"part\":\"one\",\"and\":\"two\"}",
			 26), "the writev'd body is in the response");
	client_free(&a);
}

Test(capture, python_100_concurrent_connections)
{
	int port = start_python();
	static struct client c[100];

	harness_attach(server.pid, 0);
	for (int i = 0; i < 100; i++)
		client_connect(&c[i], port);
	for (int i = 0; i < 100; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/small?c=%d", i);
		client_request(&c[i], "GET", path, 0);
	}
	for (int i = 0; i < 100; i++)
		client_request(&c[i], "GET", "/small?second", 0);
	for (int i = 0; i < 100; i++)
		client_close(&c[i]);
	harness_drain(300);
	cr_assert_eq(harness_n_streams, 100);
	for (int i = 0; i < 100; i++) {
		assert_same(&c[i], 0, 0);
		client_free(&c[i]);
	}
}

/* A keep-alive connection opened before attach is picked up at its next
 * request: its captured streams are exactly the bytes after attach. */
Test(capture, keepalive_connection_opened_before_attach)
{
	int port = start_node();
	struct client a;
	size_t in0, out0;

	client_connect(&a, port);
	client_request(&a, "GET", "/small?before", 0);
	in0 = a.sent.n;
	out0 = a.recvd.n;
	harness_attach(server.pid, 0);
	client_request(&a, "GET", "/small?after1", 0);
	client_request(&a, "GET", "/big", 0);
	client_close(&a);
	harness_drain(200);
	cr_assert_eq(harness_n_streams, 1);
	cr_assert(harness_stream_of(a.lport)->midstream,
		  "the connection was not marked as joined midstream");
	assert_same(&a, in0, out0);
	client_free(&a);
}

/* Sampling decided in the kernel (--sample-key request at 50%): the
 * answer of each GET that user space's sample.c leaves unsampled is passed
 * over as exactly its own bytes (here: zero bytes in their place), and its
 * head comes as its request line alone (the line, then zero bytes); every
 * sampled exchange is copied whole. A POST whose body comes in a second
 * write is passed over only if the server answers before it reads the
 * body (nginx may), and then whole; the read of that body looks like the
 * next request's start, so the kernel leaves the GET after it to user
 * space (copied whole: `exact` is false). */
static void kernel_sampling_run(int port, pid_t pid, bool exact)
{
	uint16_t p = port;
	struct capture_config cfg = {
		.pids = &pid, .n_pids = 1, .ports = &p, .n_ports = 1,
		.sample_key = SHADOW_SAMPLE_REQUEST,
		.sample_below = sample_below(0.5),
	};
	struct capture_stats st;
	struct client c[2];
	/* Exchanges that may be passed over: their head's [in0, in1) and
	 * answer's [out0, out1), their line's length, and whether sample.c
	 * leaves them unsampled for sure (GET) or maybe (POST). */
	struct { size_t in0, in1, out0, out1, line; bool get; } may[2][80];
	size_t n_may[2] = { 0, 0 }, gets = 0, skipped = 0, lines = 0;

	harness_attach_cfg(&cfg);
	for (int k = 0; k < 2; k++)
		client_connect(&c[k], port);
	for (int i = 0; i < 80; i++) {
		struct client *cl = &c[i % 2];
		char path[64], key[80];
		size_t in0 = cl->sent.n, out0 = cl->recvd.n;
		bool post = i % 20 == 7;

		snprintf(path, sizeof(path), i % 10 == 3 ? "/big?k=%d"
							  : "/small?k=%d", i);
		client_request(cl, post ? "POST" : "GET", path,
			       post ? 300 : 0);
		snprintf(key, sizeof(key), "GET %s", path);
		if (post || sample_value(key, strlen(key)) >= 0.5) {
			typeof(may[0][0]) *m = &may[i % 2][n_may[i % 2]++];

			m->in0 = in0;
			m->in1 = cl->sent.n;
			m->out0 = out0;
			m->out1 = cl->recvd.n;
			m->line = strlen(key);
			m->get = !post;
			gets += !post;
		}
	}
	cr_assert_gt(gets, 10);
	cr_assert_lt(gets, 70);
	for (int k = 0; k < 2; k++)
		client_close(&c[k]);
	harness_drain(200);
	for (int k = 0; k < 2; k++) {
		const struct harness_stream *hs = harness_stream_of(c[k].lport);
		size_t n = 0, nl = 0;

		/* Passed over: zero bytes, all of them; a head sent as its
		 * line: the line, then zeros. Anything else must then equal
		 * what the client sent and read. */
		for (size_t j = 0; j < n_may[k]; j++) {
			typeof(may[0][0]) *m = &may[k][j];
			bool zero = hs->dir[1].n >= m->out1, line;

			for (size_t b = m->out0; zero && b < m->out1; b++)
				zero = hs->dir[1].p[b] == 0;
			if (zero) {
				memset(c[k].recvd.p + m->out0, 0,
				       m->out1 - m->out0);
				n++;
			} else {
				cr_assert(!exact || !m->get, "client %d: the "
					  "unsampled answer at %zu was copied",
					  k, m->out0);
			}
			line = m->get && hs->dir[0].n >= m->in1 &&
			       !memcmp(hs->dir[0].p + m->in0,
				       c[k].sent.p + m->in0, m->line);
			for (size_t b = m->in0 + m->line; line && b < m->in1; b++)
				line = hs->dir[0].p[b] == 0;
			if (line) {
				memset(c[k].sent.p + m->in0 + m->line, 0,
				       m->in1 - m->in0 - m->line);
				nl++;
			} else {
				cr_assert(!exact || !m->get, "client %d: the "
					  "unsampled head at %zu was copied",
					  k, m->in0);
			}
		}
		assert_same(&c[k], 0, 0);
		cr_assert_eq(hs->skips, n, "client %d: %llu answers passed "
			     "over, %zu seen as zero bytes", k,
			     (unsigned long long)hs->skips, n);
		cr_assert_eq(hs->reqlines, nl, "client %d: %llu heads as their "
			     "line, %zu seen", k,
			     (unsigned long long)hs->reqlines, nl);
		skipped += n;
		lines += nl;
		client_free(&c[k]);
	}
	cr_assert_geq(skipped, exact ? gets : gets / 2, "%zu of %zu unsampled "
		      "GET answers passed over", skipped, gets);
	cr_assert_geq(lines, exact ? gets : gets / 2, "%zu of %zu unsampled "
		      "GET heads sent as their line", lines, gets);
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(st.uncopied, skipped, "%llu answers passed over, %zu "
		     "seen", (unsigned long long)st.uncopied, skipped);
}

Test(capture, kernel_sampling_nginx_writev_and_sendfile)
{
	int port = start_nginx();

	usleep(200000);
	kernel_sampling_run(port, server.pid, false);
}

Test(capture, kernel_sampling_python_two_writes_per_answer)
{
	int port = start_python();

	kernel_sampling_run(port, server.pid, true);
}

Test(capture, kernel_sampling_node)
{
	int port = start_node();

	kernel_sampling_run(port, server.pid, true);
}

/* What the daemon would shed anyway (its replay queue full, the breaker
 * open) the kernel passes over while told to, at --sample 1 too: a GET's
 * head as its line flagged with the reason, its answer uncopied. A POST
 * (a body) is still copied whole, and once told to stop, everything is
 * copied again. Without the telling, all of it is copied. */
Test(capture, kernel_passes_over_what_the_daemon_sheds)
{
	static const unsigned plan[] = {
		SHADOW_SHED_NONE, SHADOW_SHED_QUEUE, SHADOW_SHED_QUEUE,
		SHADOW_SHED_QUEUE, SHADOW_SHED_BREAKER, SHADOW_SHED_BREAKER,
		SHADOW_SHED_BREAKER, SHADOW_SHED_NONE, SHADOW_SHED_NONE,
	};
	int port = start_python();
	uint16_t p = port;
	struct capture_config cfg = {
		.pids = &server.pid, .n_pids = 1, .ports = &p, .n_ports = 1,
		.sample_key = SHADOW_SAMPLE_REQUEST,
		.sample_below = sample_below(1),
	};
	const struct harness_stream *hs;
	struct client c;

	harness_attach_cfg(&cfg);
	client_connect(&c, port);
	for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
		size_t in0 = c.sent.n, out0 = c.recvd.n;
		bool post = i == 5;
		char path[32];
		size_t line;

		snprintf(path, sizeof(path), "/small?k=%zu", i);
		capture_set_shed(harness_cap, plan[i]);
		client_request(&c, post ? "POST" : "GET", path, post ? 300 : 0);
		if (plan[i] == SHADOW_SHED_NONE || post)
			continue;
		/* As the capture stands for it: the line, then zeros. */
		line = strlen("GET ") + strlen(path);
		memset(c.sent.p + in0 + line, 0, c.sent.n - in0 - line);
		memset(c.recvd.p + out0, 0, c.recvd.n - out0);
	}
	capture_set_shed(harness_cap, SHADOW_SHED_NONE);
	client_close(&c);
	harness_drain(200);
	hs = harness_stream_of(c.lport);
	assert_same(&c, 0, 0);
	cr_assert_eq(hs->reqlines, 5);
	cr_assert_eq(hs->skips, 5);
	cr_assert_eq(hs->shed[SHADOW_SHED_QUEUE], 3);
	cr_assert_eq(hs->shed[SHADOW_SHED_BREAKER], 2);
	client_free(&c);
}

/* wrk -c32 against nginx for 5 s: every record arrives (no loss, no gap). */
Test(capture, wrk_c32_nginx_no_loss, .timeout = 60)
{
	int port = start_nginx();
	struct capture_stats st;
	const struct conn_stats *cs;
	char url[64], out[] = "/tmp/shadow-wrk-XXXXXX";
	int ofd = mkstemp(out), status;
	pid_t w;

	usleep(200000);
	harness_attach(server.pid, port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/small", port);
	w = fork();
	if (w == 0) {
		dup2(ofd, 1);
		execlp("wrk", "wrk", "-t2", "-c32", "-d5s", url, (char *)NULL);
		_exit(127);
	}
	while (waitpid(w, &status, WNOHANG) == 0) {
		cr_assert_geq(capture_poll(harness_cap), 0);
		usleep(10000);
	}
	harness_drain(300);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wrk failed");
	capture_get_stats(harness_cap, &st);
	cs = conn_table_stats(harness_table);
	{
		char buf[4096] = "";
		ssize_t n = pread(ofd, buf, sizeof(buf) - 1, 0);
		const char *rps = n > 0 ? strstr(buf, "Requests/sec:") : NULL;

		fprintf(stderr, "wrk -c32 5s: %s; records %llu, lost %llu, "
			"gaps %llu\n", rps ? strtok((char *)rps, "\n") : "?",
			(unsigned long long)st.records,
			(unsigned long long)st.lost,
			(unsigned long long)cs->gaps);
	}
	close(ofd);
	unlink(out);
	cr_assert_gt(st.records, 1000);
	cr_assert_eq(st.lost, 0, "lost events: %llu",
		     (unsigned long long)st.lost);
	cr_assert_eq(cs->gaps, 0, "gaps: %llu", (unsigned long long)cs->gaps);
	cr_assert_eq(st.truncated, 0);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A daemon that does not drain (stopped, starved of CPU) while the ring
 * fills past its wakeup mark is woken once a millisecond at most, not on
 * every record: each wakeup is an interrupt on the target's CPU. */
Test(capture, a_ring_left_undrained_wakes_the_reader_once_a_ms_at_most,
     .timeout = 60)
{
	int port = start_nginx();
	uint16_t p16 = (uint16_t)port;
	struct capture_config cfg = { .pids = &server.pid, .n_pids = 1,
				      .ports = &p16, .n_ports = 1,
				      .ring_bytes = 1u << 20 };
	struct capture_stats st;
	char url[64];
	uint64_t t0, ms;
	int status;
	pid_t w;

	usleep(200000);
	harness_attach_cfg(&cfg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/small", port);
	t0 = mono_ms();
	w = fork();
	if (w == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execlp("wrk", "wrk", "-t1", "-c8", "-d2s", url, (char *)NULL);
		_exit(127);
	}
	/* Nothing is read from the ring meanwhile. */
	cr_assert_eq(waitpid(w, &status, 0), w);
	ms = mono_ms() - t0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wrk failed");
	capture_get_stats(harness_cap, &st);
	fprintf(stderr, "undrained ring: %llu records lost, %llu wakeups in "
		"%llu ms\n", (unsigned long long)st.lost,
		(unsigned long long)st.woken, (unsigned long long)ms);
	cr_assert_gt(st.lost, 0, "the 1 MiB ring never filled");
	cr_assert_geq(st.woken, 1, "the reader was never woken");
	/* Two CPUs may each force one in the same millisecond. */
	cr_assert_leq(st.woken, 2 * ms + 2, "%llu wakeups in %llu ms",
		      (unsigned long long)st.woken, (unsigned long long)ms);
	harness_drain(300);
}

/* --exe: a process started after attach is traced, and so is its
 * replacement after a restart; an exited target leaves the target set. */
Test(capture, exe_target_started_later_and_after_restart)
{
	struct capture_config cfg = { 0 };
	char node[PATH_MAX], p[16];
	const char *exes[1] = { node };
	const char *argv[] = { "node", NULL, p, NULL };
	struct capture_stats st;
	struct client a, b;
	unsigned before;
	int port;

	cr_assert_not_null(realpath("/usr/bin/node", node));
	cfg.exes = exes;
	cfg.n_exes = 1;
	harness_attach_cfg(&cfg);
	capture_get_stats(harness_cap, &st);
	before = st.targets;

	argv[1] = strdup(servers_path("capture_server.js"));
	port = servers_free_port();
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	capture_get_stats(harness_cap, &st);
	cr_assert_geq(st.targets, before + 1, "the new node is a target");
	client_connect(&a, port);
	client_request(&a, "GET", "/small?first", 0);
	client_close(&a);
	harness_drain(100);
	assert_same(&a, 0, 0);

	servers_stop(&server);
	harness_drain(100);
	capture_get_stats(harness_cap, &st);
	cr_assert_eq(st.targets, before, "the exited node left the target set");
	port = servers_free_port();
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(servers_start(&server, argv, port, 10000), 0);
	client_connect(&b, port);
	client_request(&b, "GET", "/small?restarted", 0);
	client_close(&b);
	harness_drain(100);
	assert_same(&b, 0, 0);
	free((char *)argv[1]);
	client_free(&a);
	client_free(&b);
}
