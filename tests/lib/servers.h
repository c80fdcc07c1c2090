/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Real servers for tests: start a command (python3, node, nginx, openssl
 * s_server...) in its own process group, wait until it accepts TCP
 * connections on a loopback port, kill the whole group on teardown.
 *
 *     struct servers_proc s;
 *     int port = servers_free_port();
 *     char p[16]; snprintf(p, sizeof(p), "%d", port);
 *     const char *argv[] = { "node", servers_path("candidate.js"), p, NULL };
 *     cr_assert_eq(servers_start(&s, argv, port, 5000), 0);
 *     ... http://127.0.0.1:<port>/ ...
 *     servers_stop(&s);
 *
 * Every function is for tests only: failures print one line to stderr.
 */
#ifndef SHADOW_SERVERS_H
#define SHADOW_SERVERS_H

#include <sys/types.h>

struct servers_proc {
	pid_t pid; /* 0: not running */
	int port;
};

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
 * it back, close). Returns the port or -errno. */
int servers_free_port(void);

/* Absolute path of tests/servers/<name>, found by walking up from the test
 * binary (works from .output/tests/unit and .output/asan/tests/unit) or from
 * $SHADOW_SRCDIR. Returns a static buffer (overwritten by the next call);
 * the name alone if nothing is found. */
const char *servers_path(const char *name);
/* Absolute path of the source tree's root (the dir holding tests/servers),
 * in a static buffer, or "." */
const char *servers_srcdir(void);

/* Starts argv[0] (searched in PATH) with argv, stdout to /dev/null and
 * stderr kept, in a new process group, and waits up to wait_ms until
 * 127.0.0.1:port accepts a connection (port <= 0: no wait). Returns 0, or
 * -ETIMEDOUT (the process is killed) or -errno; -ECHILD if it exited. */
int servers_start(struct servers_proc *s, const char *const argv[], int port,
		  long wait_ms);
/* SIGTERM to the process group, SIGKILL after 1 s, reaps it. Accepts a
 * stopped or never-started struct (pid 0). */
void servers_stop(struct servers_proc *s);

/* Runs argv to completion (stdout/stderr to /dev/null). Returns its exit
 * status, or -errno if it could not run or was killed by a signal. */
int servers_run(const char *const argv[]);

/* Whether 127.0.0.1:port accepts a TCP connection right now. */
int servers_port_open(int port);

#endif /* SHADOW_SERVERS_H */
