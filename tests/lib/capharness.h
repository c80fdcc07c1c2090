/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * For the BPF tests: attach the capture to a target, collect what it saw
 * per connection (both directions' bytes, gaps, close) through a real
 * conn_table, and find a connection by its client port. One capture at a
 * time; Criterion assertions inside, so for test processes only.
 */
#ifndef SHADOW_CAPHARNESS_H
#define SHADOW_CAPHARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct capture;
struct capture_config;
struct conn_table;

#define HARNESS_MAX_STREAMS 512

struct harness_bytes {
	uint8_t *p;
	size_t n, cap;
};

/* Appends n bytes (aborts the test on ENOMEM). */
void harness_bytes_add(struct harness_bytes *b, const void *p, size_t n);

/* Whether b holds one whole response (head + Content-Length body) from
 * byte `start` on; asserts it holds no more than that. */
bool harness_response_complete(const struct harness_bytes *b, size_t start);

/* What the capture saw of one connection. */
struct harness_stream {
	uint16_t rport; /* the client's port */
	uint32_t tgid, fd, gen; /* its name in the records */
	bool midstream, closed;
	uint64_t gaps;
	uint64_t skips; /* uncopied answers: zero bytes in dir[1] */
	uint64_t reqlines; /* heads sent as their line: line + zeros */
	uint64_t shed[3];  /* ... of which by enum shadow_shed */
	struct harness_bytes dir[2]; /* enum shadow_dir */
};

extern struct harness_stream harness_streams[HARNESS_MAX_STREAMS];
extern size_t harness_n_streams;
extern struct capture *harness_cap;
extern struct conn_table *harness_table;

/* Attaches to pid (and its descendants), only port when nonzero. Skips the
 * test only without root; a program the kernel refuses fails it, with the
 * verifier's reason. */
void harness_attach(pid_t pid, uint16_t port);
/* The same with a full config (--exe targets). */
void harness_attach_cfg(const struct capture_config *cfg);
/* Polls until no record arrived for quiet_ms. */
void harness_drain(int quiet_ms);
/* Detaches and frees every stream; safe when not attached. */
void harness_detach(void);
/* The one stream whose client port is lport (asserts there is one). */
struct harness_stream *harness_stream_of(uint16_t lport);

/* Asserts the connection of client port lport was captured whole: no
 * gap, and its inbound/outbound streams equal sent[0..sent_n) and
 * recvd[0..recvd_n) byte for byte (what the client wrote and read). */
void harness_assert_stream(uint16_t lport, const uint8_t *sent, size_t sent_n,
			   const uint8_t *recvd, size_t recvd_n);

#endif /* SHADOW_CAPHARNESS_H */
