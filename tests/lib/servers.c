// SPDX-License-Identifier: BSD-2-Clause
#include "servers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

int servers_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd, port = -EIO;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		port = -errno;
	else
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

const char *servers_srcdir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("SHADOW_SRCDIR");
	char probe[PATH_MAX + 32];
	struct stat st;
	ssize_t n;

	if (env && *env) {
		snprintf(dir, sizeof(dir), "%s", env);
		return dir;
	}
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		return ".";
	dir[n] = '\0';
	for (;;) {
		char *slash = strrchr(dir, '/');

		if (!slash || slash == dir)
			break;
		*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/tests/servers", dir);
		if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode))
			return dir;
	}
	snprintf(dir, sizeof(dir), ".");
	return dir;
}

const char *servers_path(const char *name)
{
	static char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/tests/servers/%s", servers_srcdir(),
		 name);
	return path;
}

int servers_port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd, ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static pid_t spawn(const char *const argv[], int quiet_stderr, int pgroup)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	if (pgroup)
		setpgid(0, 0);
	int null = open("/dev/null", O_RDWR);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (quiet_stderr)
			dup2(null, 2);
	}
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "servers: cannot run %s: %s\n", argv[0],
		strerror(errno));
	_exit(127);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int servers_start(struct servers_proc *s, const char *const argv[], int port,
		  long wait_ms)
{
	pid_t pid;
	int status;

	memset(s, 0, sizeof(*s));
	pid = spawn(argv, 0, 1);
	if (pid < 0)
		return (int)pid;
	s->pid = pid;
	s->port = port;
	if (port <= 0)
		return 0;
	for (long waited = 0; waited <= wait_ms; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->pid = 0;
			fprintf(stderr, "servers: %s exited before port %d "
				"opened\n", argv[0], port);
			return -ECHILD;
		}
		if (servers_port_open(port))
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "servers: %s: port %d not open after %ld ms\n",
		argv[0], port, wait_ms);
	servers_stop(s);
	return -ETIMEDOUT;
}

void servers_stop(struct servers_proc *s)
{
	int status;

	if (!s || s->pid <= 0)
		return;
	kill(-s->pid, SIGTERM);
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid)
			goto done;
		sleep_ms(10);
	}
	kill(-s->pid, SIGKILL);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
done:
	/* Children the server forked (nginx workers) go with the group. */
	kill(-s->pid, SIGKILL);
	s->pid = 0;
}

int servers_run(const char *const argv[])
{
	pid_t pid = spawn(argv, 1, 0);
	int status;

	if (pid < 0)
		return (int)pid;
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	if (!WIFEXITED(status))
		return -EINTR;
	return WEXITSTATUS(status);
}
