// SPDX-License-Identifier: BSD-2-Clause
#include "capture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include "bpfcheck.h"
#include "capture.skel.h"
#include "shadow_event.h"
#include "util/dbuf.h"

/* Mirrors of bpf/capture.bpf.c's private types (not part of the ABI). */
struct bpf_found_conn {
	__u32 gen;
	__u32 tgid, fd;
	__u32 _pad;
};
struct bpf_exe_key {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};
enum { STAT_LOST, STAT_ACCEPTED, STAT_ACTIVE_FULL, STAT_TRUNCATED,
       STAT_TLS_UNDECODED, STAT_TLS_UNLINKED, STAT_UNHOOKED, STAT_UNCOPIED,
       STAT_WOKEN, STAT_MAX };

/* Generations of connections found at attach: disjoint from the kernel's. */
#define MIDSTREAM_GEN_BASE 0x80000000u

/* How often targets' maps are looked at again for libssl: new pids every
 * 250 ms (a worker forked meanwhile is hooked by then: its SSL calls
 * before that are not seen, and its connections count as undecoded until
 * an SSL call reads from the socket), all every 10 s (a process may load
 * libssl long after it started, and targets come and go). */
#define TLS_SCAN_NEW_NS 250000000ull
#define TLS_SCAN_ALL_NS 10000000000ull

/* A libssl file one target has mapped, hooked for that process only. A
 * system-wide uprobe would put its breakpoint in every process that maps
 * the library, and each of their SSL calls would trap into the kernel to
 * be turned away by the target check: the load generator's, a sidecar's,
 * other services'. `failed`: the file could not be hooked (no SSL_read or
 * SSL_write in it), remembered so that it is not tried again. */
struct tls_hook {
	dev_t dev;
	ino_t ino;
	pid_t pid;
	bool failed;
	/* tls_inner_offsets() of the file, 0 0 when it has none: read once
	 * per file, whichever process maps it. */
	size_t read_off, write_off;
	struct bpf_link *links[10];
	unsigned n_links;
};

struct capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	capture_event_fn fn;
	void *ctx;
	uint64_t lost_reported;
	uint64_t midstream;
	uint64_t sendfile_unavailable;
	uint64_t records;
	size_t ring_size;
	unsigned programs;
	bool sock_hooks; /* data from the sock_*_length tracepoints */
	/* The ring's position pages, mapped read-only for the fill level
	 * (libbpf 1.1 has no accessor for them). */
	unsigned long *cons_pos, *prod_pos;
	/* TLS: libssl files hooked per target, and the target pids whose
	 * maps were read (sorted), with when that was last done. */
	struct tls_hook *tls_hooks;
	size_t n_tls_hooks, cap_tls_hooks;
	pid_t *scanned;
	size_t n_scanned, cap_scanned;
	uint64_t last_scan_ns, last_full_scan_ns;
	uint8_t chunk[sizeof(struct shadow_event) + SHADOW_CHUNK_MAX];
};

static uint32_t kernel_dev(dev_t d)
{
	return (major(d) << 20) | minor(d);
}

/* Marks a local port server-side connections can have (the programs'
 * srv_ports; I/O on sockets with other local ports returns at once). One
 * element per port: nothing the kernel sets is written over. */
static void srv_port_add(struct capture *c, __u16 port)
{
	__u32 k = port;
	__u8 one = 1;

	bpf_map__update_elem(c->skel->maps.srv_ports, &k, sizeof(k), &one,
			     sizeof(one), BPF_ANY);
}

static bool verbose_libbpf;

/* libbpf's warnings while loading, kept to name the program the kernel
 * refused and why in one line (the whole of it is printed with -vv). */
static struct {
	char *buf;
	size_t len, cap;
} load_log;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_WARN && load_log.cap) {
		va_list copy;
		int n;

		va_copy(copy, ap);
		n = vsnprintf(load_log.buf + load_log.len,
			      load_log.cap - load_log.len, fmt, copy);
		va_end(copy);
		if (n > 0)
			load_log.len += (size_t)n < load_log.cap - load_log.len ?
					(size_t)n : load_log.cap - load_log.len - 1;
	}
	if (!verbose_libbpf && level != LIBBPF_WARN)
		return 0;
	if (!verbose_libbpf && load_log.cap)
		return 0; /* summed up in one line by the caller */
	return vfprintf(stderr, fmt, ap);
}

static void load_log_start(void)
{
	static char buf[1 << 16];

	buf[0] = '\0';
	load_log.buf = buf;
	load_log.len = 0;
	load_log.cap = sizeof(buf);
}

static void load_log_stop(void)
{
	load_log.cap = 0;
}

/* From libbpf's warnings of a failed load: the program it names, and the
 * verifier's reason (the last line of its log that is no statistics), or
 * libbpf's own message when the kernel never saw the program. */
static void load_log_refusal(char *prog, size_t prog_len, char *why,
			     size_t why_len)
{
	const char *log = load_log.buf ? load_log.buf : "";
	const char *p = strstr(log, "prog '"), *begin, *end;

	snprintf(prog, prog_len, "?");
	snprintf(why, why_len, "see -vv for libbpf's messages");
	if (p) {
		const char *q = strchr(p + 6, '\'');

		if (q)
			snprintf(prog, prog_len, "%.*s", (int)(q - p - 6), p + 6);
	}
	begin = strstr(log, "-- BEGIN PROG LOAD LOG --\n");
	end = begin ? strstr(begin, "-- END PROG LOAD LOG --") : NULL;
	if (begin && end) {
		char tmp[1 << 16];
		size_t n = end - begin - strlen("-- BEGIN PROG LOAD LOG --\n");

		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		memcpy(tmp, begin + strlen("-- BEGIN PROG LOAD LOG --\n"), n);
		tmp[n] = '\0';
		bpfcheck_reason(tmp, why, why_len);
	} else if (p) {
		const char *nl = strchr(p, '\n');

		snprintf(why, why_len, "%.*s", nl ? (int)(nl - p) : (int)strlen(p),
			 p);
	}
}

static int check_privileges(char *err, size_t errlen)
{
	static const struct {
		cap_value_t cap;
		const char *name;
	} need[] = {
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	char missing[128] = "";
	cap_flag_value_t v;
	cap_t caps;

	caps = cap_get_proc();
	if (!caps)
		return 0; /* cannot tell: let the kernel decide */
	if (cap_get_flag(caps, CAP_SYS_ADMIN, CAP_EFFECTIVE, &v) == 0 &&
	    v == CAP_SET) {
		cap_free(caps);
		return 0;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (cap_get_flag(caps, need[i].cap, CAP_EFFECTIVE, &v) == 0 &&
		    v == CAP_SET)
			continue;
		strncat(missing, missing[0] ? ", " : "",
			sizeof(missing) - strlen(missing) - 1);
		strncat(missing, need[i].name,
			sizeof(missing) - strlen(missing) - 1);
	}
	cap_free(caps);
	if (!missing[0])
		return 0;
	snprintf(err, errlen,
		 "attaching needs root or %s (missing: %s); run as root, or use "
		 "--from-capture FILE to replay a recording without privileges",
		 "CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE", missing);
	return -EPERM;
}

/* libbpf finds tracepoints through tracefs; mount it if nobody did. */
static void ensure_tracefs(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events", &st) == 0 ||
	    stat("/sys/kernel/debug/tracing/events", &st) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0 &&
	    errno != EBUSY)
		fprintf(stderr, "shadowd: cannot mount tracefs on "
			"/sys/kernel/tracing: %s\n", strerror(errno));
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static pid_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	return (pid_t)strtol(p + 3, NULL, 10);
}

/* Adds pid to both forms of the target set (the kernel's fast bitmap and
 * the hash user space lists). */
static void target_add(struct capture *c, pid_t pid)
{
	__u32 k = pid, word = (__u32)pid / 64;
	__u64 bits = 0;
	__u8 one = 1;

	bpf_map__update_elem(c->skel->maps.targets, &k, sizeof(k), &one,
			     sizeof(one), BPF_ANY);
	bpf_map__lookup_elem(c->skel->maps.target_bits, &word, sizeof(word),
			     &bits, sizeof(bits), 0);
	bits |= 1ull << ((__u32)pid % 64);
	bpf_map__update_elem(c->skel->maps.target_bits, &word, sizeof(word),
			     &bits, sizeof(bits), BPF_ANY);
}

static bool target_has(struct capture *c, pid_t pid)
{
	__u32 k = pid;
	__u8 v;

	return bpf_map__lookup_elem(c->skel->maps.targets, &k, sizeof(k), &v,
				    sizeof(v), 0) == 0;
}

static bool exe_matches(struct capture *c, pid_t pid)
{
	struct bpf_exe_key k = {};
	char path[64];
	struct stat st;
	__u8 v;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (stat(path, &st) < 0)
		return false;
	k.ino = st.st_ino;
	k.dev = kernel_dev(st.st_dev);
	return bpf_map__lookup_elem(c->skel->maps.exes, &k, sizeof(k), &v,
				    sizeof(v), 0) == 0;
}

/* Adds every process that runs a --exe executable, then every descendant
 * of a target, repeating until nothing changes (a child may be listed
 * before its parent). */
static void scan_processes(struct capture *c, bool any_exe)
{
	bool changed = true;

	for (int round = 0; changed && round < 64; round++) {
		struct dirent *d;
		DIR *dir = opendir("/proc");

		changed = false;
		if (!dir)
			return;
		while ((d = readdir(dir))) {
			pid_t pid, ppid;

			if (!is_number(d->d_name))
				continue;
			pid = atoi(d->d_name);
			if (target_has(c, pid))
				continue;
			ppid = read_ppid(pid);
			if ((ppid > 0 && target_has(c, ppid)) ||
			    (any_exe && exe_matches(c, pid))) {
				target_add(c, pid);
				changed = true;
			}
		}
		closedir(dir);
	}
}

struct tcp_sock {
	unsigned long inode;
	uint16_t lport, rport;
	uint16_t family;
	uint8_t laddr[16], raddr[16];
	bool announced; /* registered under the first fd found on it */
};

struct tcp_table {
	struct tcp_sock *v;
	size_t n, cap;
	uint16_t listen[1024];
	size_t n_listen;
};

static void parse_addr(const char *hex, int family, uint8_t *out)
{
	size_t words = family == AF_INET ? 1 : 4;

	/* /proc/net/tcp prints each 32-bit word in host order. */
	for (size_t w = 0; w < words; w++) {
		char part[9];
		uint32_t v;

		memcpy(part, hex + w * 8, 8);
		part[8] = '\0';
		v = (uint32_t)strtoul(part, NULL, 16);
		memcpy(out + w * 4, &v, 4);
	}
}

static void read_tcp_table(struct tcp_table *t, const char *path, int family)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64];
		unsigned lport, rport, state;
		unsigned long inode;
		struct tcp_sock *s;
		char *colon;

		if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*d %*d %lu",
			   local, remote, &state, &inode) != 4)
			continue;
		colon = strchr(local, ':');
		if (!colon)
			continue;
		*colon = '\0';
		lport = strtoul(colon + 1, NULL, 16);
		colon = strchr(remote, ':');
		if (!colon)
			continue;
		*colon = '\0';
		rport = strtoul(colon + 1, NULL, 16);
		if (state == 0x0A) { /* TCP_LISTEN */
			if (t->n_listen < sizeof(t->listen) / sizeof(t->listen[0]))
				t->listen[t->n_listen++] = lport;
			continue;
		}
		if (state != 0x01) /* TCP_ESTABLISHED */
			continue;
		if (vec_reserve(t->v, t->cap, t->n + 1) < 0)
			break;
		s = &t->v[t->n++];
		memset(s, 0, sizeof(*s));
		s->inode = inode;
		s->lport = lport;
		s->rport = rport;
		s->family = family;
		parse_addr(local, family, s->laddr);
		parse_addr(remote, family, s->raddr);
	}
	fclose(f);
}

static bool port_in(const uint16_t *v, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == port)
			return true;
	return false;
}

/* Registers the target's established server-side connections (local port
 * is a listening port) so they are captured from their next byte on, each
 * once, by its socket's inode: under the first (pid, fd) found on it, the
 * same connection whichever process or fd moves its bytes. */
static void scan_connections(struct capture *c, const struct capture_config *cfg,
			     struct tcp_table *t)
{
	__u32 key = 0, next;
	uint32_t seq = 0;

	while (bpf_map__get_next_key(c->skel->maps.targets, key ? &key : NULL,
				     &next, sizeof(next)) == 0) {
		char dpath[64];
		struct dirent *d;
		DIR *dir;

		key = next;
		snprintf(dpath, sizeof(dpath), "/proc/%u/fd", next);
		dir = opendir(dpath);
		if (!dir)
			continue;
		while ((d = readdir(dir))) {
			char lpath[600], link[64];
			unsigned long inode;
			ssize_t n;

			if (!is_number(d->d_name))
				continue;
			snprintf(lpath, sizeof(lpath), "%s/%s", dpath, d->d_name);
			n = readlink(lpath, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%lu]", &inode) != 1)
				continue;
			for (size_t i = 0; i < t->n; i++) {
				struct tcp_sock *s = &t->v[i];
				struct bpf_found_conn fc = { .tgid = next,
							     .fd = atoi(d->d_name) };
				__u64 ino = inode;
				struct {
					struct shadow_event h;
					struct shadow_open o;
				} rec = {};

				if (s->inode != inode || s->announced ||
				    !port_in(t->listen, t->n_listen, s->lport) ||
				    (cfg->n_ports &&
				     !port_in(cfg->ports, cfg->n_ports, s->lport)))
					continue;
				fc.gen = MIDSTREAM_GEN_BASE | ++seq;
				rec.h.tgid = fc.tgid;
				rec.h.fd = fc.fd;
				rec.h.gen = fc.gen;
				rec.h.kind = SHADOW_EV_OPEN;
				rec.h.flags = SHADOW_F_MIDSTREAM;
				rec.h.len = sizeof(rec.o);
				{
					struct timespec ts;

					clock_gettime(CLOCK_MONOTONIC, &ts);
					rec.h.ts_ns = ts.tv_sec * 1000000000ull +
						      ts.tv_nsec;
				}
				rec.o.family = s->family;
				rec.o.lport = s->lport;
				rec.o.rport = s->rport;
				memcpy(rec.o.laddr, s->laddr, 16);
				memcpy(rec.o.raddr, s->raddr, 16);
				/* Announce before the kernel can see its bytes. */
				c->fn(c->ctx, &rec.h, &rec.o);
				c->records++;
				srv_port_add(c, s->lport);
				/* Counted first: the programs look while the
				 * count is not 0. */
				__atomic_fetch_add(&c->skel->bss->found_pending,
						   1, __ATOMIC_SEQ_CST);
				bpf_map__update_elem(c->skel->maps.found, &ino,
						     sizeof(ino), &fc,
						     sizeof(fc), BPF_NOEXIST);
				s->announced = true;
				c->midstream++;
				break;
			}
		}
		closedir(dir);
	}
}

/* Opens the file a sendfile() read from, only if it is the same inode:
 * through the sending process's fd if it is still open, else by the path
 * its dentries give, in that process's root (a container's files too), in
 * the connection's process's, or, when both have exited (a forked
 * handler often has by now), in ours. Returns an fd or -1. */
static int open_sendfile_source(const struct shadow_event *ev,
				const struct shadow_sendfile *sf)
{
	char path[SHADOW_PATH_MAX + 64];
	bool have_path = memchr(sf->path, '\0', sizeof(sf->path)) &&
			 sf->path[0] == '/';
	struct stat st;
	int fd;

	for (int attempt = 0; attempt < 4; attempt++) {
		if (attempt == 0)
			snprintf(path, sizeof(path), "/proc/%u/fd/%u", sf->tgid,
				 sf->in_fd);
		else if (!have_path || (attempt == 2 && sf->tgid == ev->tgid))
			continue;
		else if (attempt < 3)
			snprintf(path, sizeof(path), "/proc/%u/root%s",
				 attempt == 1 ? sf->tgid : ev->tgid, sf->path);
		else
			snprintf(path, sizeof(path), "%s", sf->path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == sf->ino &&
		    kernel_dev(st.st_dev) == sf->dev)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

/* Turns a SENDFILE record into DATA records read from the source file. */
static void resolve_sendfile(struct capture *c, const struct shadow_event *ev,
			     const struct shadow_sendfile *sf)
{
	struct shadow_event *h = (struct shadow_event *)c->chunk;
	uint8_t *data = c->chunk + sizeof(*h);
	int fd = open_sendfile_source(ev, sf);
	uint64_t done = 0;

	while (done < ev->size) {
		size_t want = ev->size - done;
		ssize_t n = -1;

		if (want > SHADOW_CHUNK_MAX)
			want = SHADOW_CHUNK_MAX;
		*h = *ev;
		h->kind = SHADOW_EV_DATA;
		h->offset = ev->offset + done;
		if (fd >= 0)
			n = pread(fd, data, want, sf->file_offset + done);
		if (n <= 0) {
			/* Unreadable: the rest is a visible gap. */
			h->len = 0;
			h->size = ev->size - done;
			h->flags |= SHADOW_F_UNAVAILABLE;
			c->sendfile_unavailable += h->size;
			c->fn(c->ctx, h, data);
			c->records++;
			break;
		}
		h->len = n;
		h->size = n;
		c->fn(c->ctx, h, data);
		c->records++;
		done += n;
	}
	if (fd >= 0)
		close(fd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

static void tls_hook_drop(struct tls_hook *h)
{
	for (unsigned i = 0; i < h->n_links; i++)
		bpf_link__destroy(h->links[i]);
	h->n_links = 0;
}

/* Distinct libssl files hooked (or, `failed`, not hookable). */
static unsigned tls_files(const struct capture *c, bool failed)
{
	unsigned n = 0;

	for (size_t i = 0; i < c->n_tls_hooks; i++) {
		const struct tls_hook *h = &c->tls_hooks[i];
		bool seen = false;

		if (failed ? !h->failed : !h->n_links)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = c->tls_hooks[j].dev == h->dev &&
			       c->tls_hooks[j].ino == h->ino &&
			       (failed ? c->tls_hooks[j].failed
				       : c->tls_hooks[j].n_links > 0);
		n += !seen;
	}
	return n;
}

/* The file offset of a function at address vaddr of e, from the
 * executable section holding it; 0 when none does. */
static size_t elf_text_offset(Elf *e, GElf_Addr vaddr)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_EXECINSTR) ||
		    sh.sh_type != SHT_PROGBITS)
			continue;
		if (vaddr >= sh.sh_addr && vaddr < sh.sh_addr + sh.sh_size)
			return (size_t)(vaddr - sh.sh_addr + sh.sh_offset);
	}
	return 0;
}

/* The address of the defined function `name` in e's dynamic symbols. */
static GElf_Addr elf_dynsym(Elf *e, const char *name)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e, scn))) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM ||
		    !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			n = elf_strptr(e, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0)
				return sym.st_value;
		}
	}
	return 0;
}

/*
 * Where one probe catches every SSL_read and SSL_read_ex (or SSL_write
 * and SSL_write_ex) call, and costs one trap instead of two.
 *
 * In OpenSSL 3 both wrappers call one internal function with
 * SSL_read_ex's arguments (ssl_read_internal(s, buf, num, &readbytes));
 * SSL_read_ex is just `sub $8,%rsp; call rel32`. The wrappers begin with
 * that sub, which x86 uprobes cannot emulate: each hit also single-steps
 * it out of line, a second trap. The internal function begins with a
 * push, which they emulate. So when the code has exactly that shape (the
 * _ex wrapper's call, the other wrapper calling the same function within
 * its first 64 bytes, a push at the callee), the callee's file offset is
 * returned, to be hooked with the _ex programs; else 0, and the exported
 * functions are hooked as before.
 */
static size_t tls_inner_offset(int fd, Elf *e, const char *ex_name,
			       const char *plain_name)
{
	static const uint8_t head[] = { 0x48, 0x83, 0xec, 0x08, 0xe8 };
	GElf_Addr ex = elf_dynsym(e, ex_name), plain = elf_dynsym(e, plain_name);
	uint8_t code[64], push[2];
	size_t ex_off = ex ? elf_text_offset(e, ex) : 0, plain_off, off;
	GElf_Addr inner;
	int32_t rel;
	bool called = false;

	if (!ex_off || !plain ||
	    pread(fd, code, 9, (off_t)ex_off) != 9 ||
	    memcmp(code, head, sizeof(head)) != 0)
		return 0;
	memcpy(&rel, code + 5, sizeof(rel));
	inner = ex + 9 + (GElf_Addr)(int64_t)rel;
	off = elf_text_offset(e, inner);
	plain_off = elf_text_offset(e, plain);
	if (!off || !plain_off ||
	    pread(fd, code, sizeof(code), (off_t)plain_off) != sizeof(code) ||
	    pread(fd, push, sizeof(push), (off_t)off) != sizeof(push))
		return 0;
	for (size_t i = 0; i + 5 <= sizeof(code) && !called; i++) {
		if (code[i] != 0xe8)
			continue;
		memcpy(&rel, code + i + 1, sizeof(rel));
		called = plain + i + 5 + (GElf_Addr)(int64_t)rel == inner;
	}
	if (!called)
		return 0;
	if ((push[0] & 0xf8) == 0x50 ||
	    (push[0] == 0x41 && (push[1] & 0xf8) == 0x50))
		return off;
	return 0;
}

/* The internal read and write functions of the libssl at path, when both
 * are found (tls_inner_offset); else 0 and 0. */
static void tls_inner_offsets(const char *path, size_t *read_off,
			      size_t *write_off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *e;

	*read_off = *write_off = 0;
	if (fd < 0)
		return;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (e) {
		*read_off = tls_inner_offset(fd, e, "SSL_read_ex", "SSL_read");
		*write_off = tls_inner_offset(fd, e, "SSL_write_ex", "SSL_write");
		elf_end(e);
	}
	close(fd);
	if (!*read_off || !*write_off)
		*read_off = *write_off = 0;
}

/* Attaches the SSL uprobes to one libssl file for one target (the
 * programs filter by target again). SSL_read and SSL_write are required;
 * the _ex forms (OpenSSL >= 1.1.1) and SSL_do_handshake are used when
 * present. Where the wrappers share an internal function that a probe
 * can hit without single-stepping (tls_inner_offsets), that function is
 * hooked instead of the four. */
static void tls_attach_lib(struct capture *c, const char *path,
			   const struct stat *st, pid_t pid)
{
	struct {
		struct bpf_program *prog;
		const char *func;
		size_t offset; /* with func NULL */
		bool required;
	} hooks[] = {
		{ c->skel->progs.handle_ssl_read, "SSL_read", 0, true },
		{ c->skel->progs.handle_ssl_write, "SSL_write", 0, true },
		{ c->skel->progs.handle_ssl_read_ex, "SSL_read_ex", 0, false },
		{ c->skel->progs.handle_ssl_write_ex, "SSL_write_ex", 0, false },
		{ c->skel->progs.handle_ssl_do_handshake, "SSL_do_handshake", 0,
		  false },
	};
	size_t n_hooks = sizeof(hooks) / sizeof(hooks[0]);
	size_t read_off = 0, write_off = 0;
	bool known = false; /* the offsets, from another process's hook */
	struct tls_hook *h;
	int err;

	for (size_t i = 0; i < c->n_tls_hooks; i++) {
		h = &c->tls_hooks[i];
		if (h->dev != st->st_dev || h->ino != st->st_ino)
			continue;
		if (h->pid == pid || h->failed)
			return;
		read_off = h->read_off;
		write_off = h->write_off;
		known = true;
	}
	if (vec_reserve(c->tls_hooks, c->cap_tls_hooks, c->n_tls_hooks + 1) < 0)
		return; /* tried again at the next scan */
	h = &c->tls_hooks[c->n_tls_hooks];
	memset(h, 0, sizeof(*h));
	h->dev = st->st_dev;
	h->ino = st->st_ino;
	h->pid = pid;
	if (!known)
		tls_inner_offsets(path, &read_off, &write_off);
	h->read_off = read_off;
	h->write_off = write_off;
	if (h->read_off) {
		hooks[0].prog = c->skel->progs.handle_ssl_read_ex;
		hooks[0].func = NULL;
		hooks[0].offset = h->read_off;
		hooks[1].prog = c->skel->progs.handle_ssl_write_ex;
		hooks[1].func = NULL;
		hooks[1].offset = h->write_off;
		hooks[2] = hooks[4];
		n_hooks = 3;
	}
	for (size_t i = 0; i < n_hooks; i++) {
		/* The return probe first: an entry without its return would
		 * leave a marker behind. */
		for (int ret = 1; ret >= 0; ret--) {
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = hooks[i].func,
				    .retprobe = ret);
			struct bpf_program *prog = ret ?
				c->skel->progs.handle_ssl_return : hooks[i].prog;
			struct bpf_link *l;

			l = bpf_program__attach_uprobe_opts(prog, pid, path,
							    hooks[i].offset,
							    &opts);
			if (!l) {
				if (hooks[i].required)
					goto failed;
				break;
			}
			h->links[h->n_links++] = l;
		}
	}
	c->n_tls_hooks++;
	/* From now on, socket I/O outside tracked connections may be an
	 * SSL call's (bpf/capture.bpf.c, io_conn). */
	__atomic_store_n(&c->skel->bss->tls_hooked, 1, __ATOMIC_RELEASE);
	return;
failed:
	err = errno;
	tls_hook_drop(h);
	/* Gone meanwhile: nothing to remember. */
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return;
	fprintf(stderr, "shadowd: %s: cannot hook SSL_read/SSL_write (%s); "
		"TLS through it is counted as not decoded\n", path,
		strerror(err));
	/* Remember it, hookless, so it is not tried again. */
	h->failed = true;
	c->n_tls_hooks++;
}

/* Lets go of the hooks of processes that are no longer targets. */
static void tls_prune(struct capture *c)
{
	for (size_t i = 0; i < c->n_tls_hooks;) {
		struct tls_hook *h = &c->tls_hooks[i];
		__u8 v;

		if (h->failed ||
		    bpf_map__lookup_elem(c->skel->maps.targets, &h->pid,
					 sizeof(__u32), &v, sizeof(v), 0) == 0) {
			i++;
			continue;
		}
		tls_hook_drop(h);
		*h = c->tls_hooks[--c->n_tls_hooks];
	}
}

/* Finds the libssl files pid has mapped (through its root, so a library
 * inside a container resolves) and hooks each new one. */
static void tls_scan_pid(struct capture *c, pid_t pid)
{
	char path[64], line[4096];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/'), *nl, *base, full[4200];
		struct stat st;

		if (!file)
			continue;
		nl = strchr(file, '\n');
		if (nl)
			*nl = '\0';
		base = strrchr(file, '/') + 1;
		if (strncmp(base, "libssl.so", 9) != 0 ||
		    strstr(file, " (deleted)"))
			continue;
		snprintf(full, sizeof(full), "/proc/%d/root%s", pid, file);
		if (stat(full, &st) < 0)
			continue;
		tls_attach_lib(c, full, &st, pid);
	}
	fclose(f);
}

/* Looks at the maps of targets not looked at yet (all of them again when
 * `all`): targets appear through fork, exec and --exe at any time. */
static void tls_scan(struct capture *c, bool all)
{
	__u32 key = 0, next;
	bool first = true;

	if (all) {
		c->n_scanned = 0;
		tls_prune(c);
	}
	while (bpf_map__get_next_key(c->skel->maps.targets,
				     first ? NULL : &key, &next,
				     sizeof(next)) == 0) {
		pid_t pid = next;

		first = false;
		key = next;
		if (c->n_scanned && bsearch(&pid, c->scanned, c->n_scanned,
					    sizeof(pid), pid_cmp))
			continue;
		tls_scan_pid(c, pid);
		if (vec_reserve(c->scanned, c->cap_scanned, c->n_scanned + 1) < 0)
			continue; /* scanned again next time */
		c->scanned[c->n_scanned++] = pid;
		qsort(c->scanned, c->n_scanned, sizeof(pid), pid_cmp);
	}
}

static void tls_scan_due(struct capture *c)
{
	uint64_t now = now_ns();

	if (now - c->last_full_scan_ns >= TLS_SCAN_ALL_NS) {
		c->last_full_scan_ns = c->last_scan_ns = now;
		tls_scan(c, true);
	} else if (now - c->last_scan_ns >= TLS_SCAN_NEW_NS) {
		c->last_scan_ns = now;
		tls_scan(c, false);
	}
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct capture *c = ctx;
	const struct shadow_event *ev = data;

	if (size < sizeof(*ev) || ev->len > size - sizeof(*ev))
		return 0;
	if (ev->kind == SHADOW_EV_SENDFILE) {
		if (ev->len >= sizeof(struct shadow_sendfile))
			resolve_sendfile(c, ev, (const void *)(ev + 1));
		return 0;
	}
	c->fn(c->ctx, ev, ev + 1);
	c->records++;
	return 0;
}

static uint64_t stat_sum(struct capture *c, __u32 idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sum = 0;
	__u64 *v;

	if (ncpu <= 0)
		return 0;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return 0;
	if (bpf_map__lookup_elem(c->skel->maps.stats, &idx, sizeof(idx), v,
				 ncpu * sizeof(*v), 0) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	return sum;
}

static void map_positions(struct capture *c)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = bpf_map__fd(c->skel->maps.events);
	void *p;

	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	c->cons_pos = p == MAP_FAILED ? NULL : p;
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, page);
	c->prod_pos = p == MAP_FAILED ? NULL : p;
}

static int check_targets(const struct capture_config *cfg,
			 const struct tcp_table *t, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_pids; i++)
		if (cfg->pids[i] <= 0 || (kill(cfg->pids[i], 0) < 0 &&
		    errno == ESRCH)) {
			snprintf(err, errlen, "no process with pid %d; check "
				 "the pid (pgrep NAME)", cfg->pids[i]);
			return -ESRCH;
		}
	for (size_t i = 0; i < cfg->n_exes; i++) {
		struct stat st;

		if (stat(cfg->exes[i], &st) < 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "--exe %s: %s", cfg->exes[i],
				 errno ? strerror(errno) : "not a regular file");
			return -ENOENT;
		}
	}
	for (size_t i = 0; i < cfg->n_ports; i++)
		if (!port_in(t->listen, t->n_listen, cfg->ports[i])) {
			snprintf(err, errlen, "nothing listens on TCP port %u; "
				 "check --port (ss -ltn)", cfg->ports[i]);
			return -ENOENT;
		}
	if (!cfg->n_pids && !cfg->n_exes) {
		snprintf(err, errlen, "no target: give --pid PID or --exe PATH");
		return -EINVAL;
	}
	return 0;
}

/* Whether environment variable name is set to anything but "" or "0". */
static bool env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

/* The hooks: the sock_recv_length/sock_send_length tracepoints (Linux
 * 6.4+, x86-64 register layout) for the bytes, and inet_sock_set_state for
 * connections' births and ends, cost nothing to syscalls that are not
 * socket I/O. Any syscall tracepoint, by contrast, sends every syscall of
 * every process on the host through the slow entry and exit path, and the
 * ones on read/write/... also run for all file and pipe I/O (see
 * docs/benchmarks.md). SHADOWD_SYSCALL_HOOKS=1 forces the syscall
 * tracepoints, for the bytes and for accept/sendfile. */
bool capture_syscall_hooks_forced(void)
{
	return env_flag("SHADOWD_SYSCALL_HOOKS");
}

/* Loads the data hooks of one path: the socket tracepoints', or the
 * syscall tracepoints' (for the bytes and for accept/sendfile).
 * Both end connections by their TCP state (inet_sock_set_state): an fd's
 * close() is not the connection's end when a forked child or a dup'ed fd
 * still holds the socket. */
static void choose_data_hooks(struct capture_bpf *s, bool sock)
{
	struct bpf_program *syscall_hooks[] = {
		s->progs.handle_sys_enter_read, s->progs.handle_sys_exit_read,
		s->progs.handle_sys_enter_recvfrom,
		s->progs.handle_sys_exit_recvfrom,
		s->progs.handle_sys_enter_readv, s->progs.handle_sys_exit_readv,
		s->progs.handle_sys_enter_recvmsg,
		s->progs.handle_sys_exit_recvmsg,
		s->progs.handle_sys_enter_write, s->progs.handle_sys_exit_write,
		s->progs.handle_sys_enter_sendto,
		s->progs.handle_sys_exit_sendto,
		s->progs.handle_sys_enter_writev,
		s->progs.handle_sys_exit_writev,
		s->progs.handle_sys_enter_sendmsg,
		s->progs.handle_sys_exit_sendmsg,
		s->progs.handle_sys_enter_accept,
		s->progs.handle_sys_exit_accept,
		s->progs.handle_sys_enter_accept4,
		s->progs.handle_sys_exit_accept4,
		s->progs.handle_sys_enter_sendfile64,
		s->progs.handle_sys_exit_sendfile64,
	};

	bpf_program__set_autoload(s->progs.handle_sock_recv, sock);
	bpf_program__set_autoload(s->progs.handle_sock_send, sock);
	for (size_t i = 0; i < sizeof(syscall_hooks) / sizeof(*syscall_hooks);
	     i++)
		bpf_program__set_autoload(syscall_hooks[i], !sock);
}

/* The data path this kernel gets, by probing (bpf/capture.bpf.c): the
 * socket tracepoints where they exist, unless SHADOWD_SYSCALL_HOOKS asks
 * for the syscall ones. Fails, saying what the kernel lacks, when a
 * feature the path needs is missing. */
static int choose_path(struct bpfcheck_features *f, bool *sock, char *err,
		       size_t errlen)
{
	enum bpfcheck_feature miss;

	bpfcheck_probe(f);
	*sock = bpfcheck_sock_path(f) && !capture_syscall_hooks_forced();
	miss = bpfcheck_missing(f, *sock);
	if (miss == BPFCHECK_N_FEATURES)
		return 0;
	snprintf(err, errlen, "this kernel has no %s, which the capture needs: "
		 "it takes %s", bpfcheck_feature_name(miss),
		 bpfcheck_feature_needs(miss));
	return -EOPNOTSUPP;
}

/* Sets what the programs are loaded with (cfg's settings, ring_size
 * bytes of ring buffer, the data path). Nothing is loaded yet. */
static void configure(struct capture_bpf *s, const struct capture_config *cfg,
		      size_t ring_size, bool sock)
{
	s->rodata->cfg_filter_ports = cfg->n_ports > 0;
	s->rodata->cfg_sock_hooks = sock;
	s->rodata->cfg_wakeup_bytes = ring_size / 8;
	s->rodata->cfg_sample_key = cfg->sample_key;
	s->rodata->cfg_sample_below = cfg->sample_below;
	s->rodata->cfg_profile = env_flag("SHADOWD_PROFILE");
	bpf_map__set_max_entries(s->maps.events, ring_size);
	/* The SSL hooks attach per libssl file, later (tls_scan). */
	bpf_program__set_autoattach(s->progs.handle_ssl_read, false);
	bpf_program__set_autoattach(s->progs.handle_ssl_read_ex, false);
	bpf_program__set_autoattach(s->progs.handle_ssl_write, false);
	bpf_program__set_autoattach(s->progs.handle_ssl_write_ex, false);
	bpf_program__set_autoattach(s->progs.handle_ssl_do_handshake, false);
	bpf_program__set_autoattach(s->progs.handle_ssl_return, false);
	choose_data_hooks(s, sock);
	/* One record scratch buffer per CPU (see bpf/capture.bpf.c). */
	bpf_map__set_max_entries(s->maps.scratches,
				 libbpf_num_possible_cpus() > 0 ?
				 libbpf_num_possible_cpus() : 1);
}

/* Opens the programs with cfg's settings and loads them into the kernel;
 * a refusal names the program and the verifier's reason. */
static int load_programs(struct capture *c, const struct capture_config *cfg,
			 char *err, size_t errlen)
{
	int rc;

	c->skel = capture_bpf__open();
	if (!c->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s",
			 strerror(errno));
		return rc;
	}
	c->ring_size = cfg->ring_bytes ? cfg->ring_bytes : 16u << 20;
	configure(c->skel, cfg, c->ring_size, c->sock_hooks);
	load_log_start();
	rc = capture_bpf__load(c->skel);
	load_log_stop();
	if (rc < 0) {
		char prog[64], why[256];

		load_log_refusal(prog, sizeof(prog), why, sizeof(why));
		snprintf(err, errlen, "the kernel refused BPF program %s: %s "
			 "(shadowd --check lists every program%s)", prog, why,
			 cfg->verbose ? "" : "; -vv shows the verifier log");
	}
	return rc;
}

/* Tells the loaded programs what to look at: the --port list, the ports
 * listened on now, the --exe files and the --pid targets. */
static void fill_maps(struct capture *c, const struct capture_config *cfg,
		      const struct tcp_table *tcp)
{
	__u8 one = 1;

	for (size_t i = 0; i < cfg->n_ports; i++) {
		__u16 p = cfg->ports[i];

		bpf_map__update_elem(c->skel->maps.ports, &p, sizeof(p), &one,
				     sizeof(one), BPF_ANY);
	}
	/* Ports listened on now: connections still in their listeners'
	 * queues were made before attach, and are known by their port. */
	for (size_t i = 0; i < tcp->n_listen; i++) {
		__u16 p = tcp->listen[i];

		if (cfg->n_ports && !port_in(cfg->ports, cfg->n_ports, p))
			continue;
		bpf_map__update_elem(c->skel->maps.listen_ports, &p, sizeof(p),
				     &one, sizeof(one), BPF_ANY);
		srv_port_add(c, p);
	}
	for (size_t i = 0; i < cfg->n_exes; i++) {
		struct bpf_exe_key k = {};
		struct stat st;

		if (stat(cfg->exes[i], &st) < 0)
			continue;
		k.ino = st.st_ino;
		k.dev = kernel_dev(st.st_dev);
		bpf_map__update_elem(c->skel->maps.exes, &k, sizeof(k), &one,
				     sizeof(one), BPF_ANY);
	}
	for (size_t i = 0; i < cfg->n_pids; i++)
		target_add(c, cfg->pids[i]);
}

/* Attaches the programs and counts them. */
static int attach_programs(struct capture *c, char *err, size_t errlen)
{
	struct bpf_program *prog;
	int rc = capture_bpf__attach(c->skel);

	if (rc < 0) {
		snprintf(err, errlen, "cannot attach the BPF programs: %s "
			 "(is tracefs mounted at /sys/kernel/tracing?)",
			 strerror(-rc));
		return rc;
	}
	bpf_object__for_each_program(prog, c->skel->obj)
		if (bpf_program__autoload(prog) &&
		    bpf_program__autoattach(prog))
			c->programs++;
	return 0;
}

/* Once attached: the processes and libssl files there already, the ring
 * buffer, and the connections open before attach. */
static int start_reading(struct capture *c, const struct capture_config *cfg,
			 struct tcp_table *tcp, char *err, size_t errlen)
{
	int rc;

	/* After attach, so a fork in between is caught by one or the other. */
	scan_processes(c, cfg->n_exes > 0);
	/* Before connections are registered: their next SSL call is hooked. */
	c->last_scan_ns = c->last_full_scan_ns = now_ns();
	tls_scan(c, true);
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_sample,
				 c, NULL);
	if (!c->rb) {
		rc = -errno;
		snprintf(err, errlen, "cannot map the ring buffer: %s",
			 strerror(errno));
		return rc;
	}
	map_positions(c);
	scan_connections(c, cfg, tcp);
	return 0;
}

int capture_open(const struct capture_config *cfg, capture_event_fn fn,
		 void *ctx, struct capture **out, char *err, size_t errlen)
{
	struct bpfcheck_features features;
	struct tcp_table tcp = {};
	struct capture *c = NULL;
	bool sock;
	int rc;

	*out = NULL;
	read_tcp_table(&tcp, "/proc/net/tcp", AF_INET);
	read_tcp_table(&tcp, "/proc/net/tcp6", AF_INET6);
	rc = check_targets(cfg, &tcp, err, errlen);
	if (rc < 0)
		goto cleanup;
	rc = check_privileges(err, errlen);
	if (rc < 0)
		goto cleanup;
	ensure_tracefs();
	verbose_libbpf = cfg->verbose;
	libbpf_set_print(libbpf_print);
	rc = choose_path(&features, &sock, err, errlen);
	if (rc < 0)
		goto cleanup;

	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	c->sock_hooks = sock;
	c->fn = fn;
	c->ctx = ctx;
	rc = load_programs(c, cfg, err, errlen);
	if (rc < 0)
		goto cleanup;
	fill_maps(c, cfg, &tcp);
	rc = attach_programs(c, err, errlen);
	if (rc < 0)
		goto cleanup;
	rc = start_reading(c, cfg, &tcp, err, errlen);
	if (rc < 0)
		goto cleanup;
	*out = c;
	c = NULL;
cleanup:
	free(tcp.v);
	capture_close(c);
	return rc;
}

int capture_fd(const struct capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int capture_poll(struct capture *c)
{
	uint64_t before = c->records, lost;
	int rc = ring_buffer__consume(c->rb);

	if (rc < 0)
		return rc;
	tls_scan_due(c);
	lost = stat_sum(c, STAT_LOST);
	if (lost > c->lost_reported) {
		struct shadow_event ev = { .kind = SHADOW_EV_LOST,
					   .offset = lost - c->lost_reported };

		c->lost_reported = lost;
		c->fn(c->ctx, &ev, NULL);
	}
	return (int)(c->records - before);
}

void capture_set_shed(struct capture *c, unsigned shed)
{
	if (c->skel->rodata->cfg_sample_key &&
	    c->skel->bss->shed_now != shed)
		__atomic_store_n(&c->skel->bss->shed_now, shed,
				 __ATOMIC_RELAXED);
}

void capture_get_stats(struct capture *c, struct capture_stats *out)
{
	unsigned long long cons = 0, prod = 0;
	__u32 key = 0, next;

	memset(out, 0, sizeof(*out));
	out->lost = stat_sum(c, STAT_LOST);
	out->accepted = stat_sum(c, STAT_ACCEPTED);
	out->active_full = stat_sum(c, STAT_ACTIVE_FULL);
	out->truncated = stat_sum(c, STAT_TRUNCATED);
	out->tls_undecoded = stat_sum(c, STAT_TLS_UNDECODED);
	out->tls_unlinked = stat_sum(c, STAT_TLS_UNLINKED);
	out->unhooked = stat_sum(c, STAT_UNHOOKED);
	out->uncopied = stat_sum(c, STAT_UNCOPIED);
	out->woken = stat_sum(c, STAT_WOKEN);
	out->tls_libs = tls_files(c, false);
	out->tls_attach_failed = tls_files(c, true);
	out->midstream = c->midstream;
	out->sendfile_unavailable = c->sendfile_unavailable;
	out->records = c->records;
	out->programs = c->programs;
	out->sock_hooks = c->sock_hooks;
	out->ring_size = c->ring_size;
	if (c->cons_pos && c->prod_pos) {
		cons = __atomic_load_n(c->cons_pos, __ATOMIC_ACQUIRE);
		prod = __atomic_load_n(c->prod_pos, __ATOMIC_ACQUIRE);
	}
	out->ring_used = prod - cons;
	while (bpf_map__get_next_key(c->skel->maps.targets,
				     out->targets ? &key : NULL, &next,
				     sizeof(next)) == 0) {
		key = next;
		out->targets++;
	}
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	if (c->cons_pos)
		munmap(c->cons_pos, sysconf(_SC_PAGESIZE));
	if (c->prod_pos)
		munmap(c->prod_pos, sysconf(_SC_PAGESIZE));
	ring_buffer__free(c->rb);
	for (size_t i = 0; i < c->n_tls_hooks; i++)
		tls_hook_drop(&c->tls_hooks[i]);
	free(c->tls_hooks);
	free(c->scanned);
	capture_bpf__destroy(c->skel);
	free(c);
}

/* Per-program verifier logs of a check: statistics only (BPF_LOG_STATS),
 * which also carry the error of a refused program. */
#define CHECK_LOG_BYTES (64u << 10)
/* With -v, a refused program's whole log; kernels from 6.4 keep its end
 * when it is longer. */
#define CHECK_FULL_LOG_BYTES (16u << 20)

static struct capture_prog_report *report_find(struct capture_report *r,
					       const char *name)
{
	for (unsigned i = 0; i < r->n_progs; i++)
		if (!strcmp(r->progs[i].name, name))
			return &r->progs[i];
	return NULL;
}

/* Marks the programs this round loads (every one not refused in an
 * earlier round), each with a log buffer of its own in logs, verifier
 * statistics on. */
static int check_prepare(struct capture_bpf *s, struct capture_report *r,
			 char (*logs)[CHECK_LOG_BYTES])
{
	struct bpf_program *prog;
	unsigned i = 0;

	bpf_object__for_each_program(prog, s->obj) {
		const char *name = bpf_program__name(prog);
		struct capture_prog_report *p = report_find(r, name);

		if (!bpf_program__autoload(prog))
			continue;
		if (p && !p->loaded) {
			bpf_program__set_autoload(prog, false);
			continue;
		}
		if (!p) {
			if (r->n_progs == sizeof(r->progs) / sizeof(r->progs[0]))
				return -E2BIG;
			p = &r->progs[r->n_progs++];
			snprintf(p->name, sizeof(p->name), "%s", name);
		}
		p->loaded = true;
		bpf_program__set_log_level(prog, 4); /* BPF_LOG_STATS */
		bpf_program__set_log_buf(prog, logs[i++], CHECK_LOG_BYTES);
	}
	return 0;
}

/* After a refused load: marks the refused program, with the kernel's
 * words from its own log. -EAGAIN (another round), or the load's rc when
 * the refusal is no program's. */
static int check_refusal(struct capture_bpf *s, struct capture_report *r,
			 char (*logs)[CHECK_LOG_BYTES], int rc)
{
	char name[64], why[256];
	struct capture_prog_report *p;
	struct bpf_program *prog;
	unsigned i = 0;

	load_log_refusal(name, sizeof(name), why, sizeof(why));
	p = report_find(r, name);
	if (!p)
		return rc; /* not a program's refusal: say so */
	p->loaded = false;
	bpf_object__for_each_program(prog, s->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		if (!strcmp(bpf_program__name(prog), name) && logs[i][0])
			bpfcheck_reason(logs[i], why, sizeof(why));
		i++;
	}
	snprintf(p->reason, sizeof(p->reason), "%s", why);
	return -EAGAIN;
}

/* After a load: each program's instructions processed and stack, from
 * its log and its code. */
static void check_figures(struct capture_bpf *s, struct capture_report *r,
			  char (*logs)[CHECK_LOG_BYTES])
{
	struct bpf_program *prog;
	unsigned i = 0;

	bpf_object__for_each_program(prog, s->obj) {
		struct capture_prog_report *p;
		struct bpfcheck_stats st;

		if (!bpf_program__autoload(prog))
			continue;
		p = report_find(r, bpf_program__name(prog));
		if (p && bpfcheck_parse_log(logs[i], &st) == 0) {
			size_t o = 0;

			for (unsigned f = 0; f < st.n_depths && o < sizeof(p->depths); f++)
				o += snprintf(p->depths + o, sizeof(p->depths) - o,
					      "%s%u", f ? "+" : "", st.depths[f]);
			p->insns = st.insns;
			p->stack = bpfcheck_stack_chain(bpf_program__insns(prog),
							bpf_program__insn_cnt(prog),
							st.depths, st.n_depths,
							&p->frames);
		}
		i++;
	}
}

/* Loads what is not refused yet, in one object; on a refusal, marks the
 * program refused and returns -EAGAIN for the caller to go on without it.
 * Returns 0 once everything left loaded. */
static int check_round(const struct capture_config *cfg, bool sock,
		       struct capture_report *r)
{
	struct capture_bpf *s = capture_bpf__open();
	char (*logs)[CHECK_LOG_BYTES] = NULL;
	int rc;

	if (!s)
		return -errno;
	configure(s, cfg, 4096 * 16, sock);
	logs = calloc(sizeof(r->progs) / sizeof(r->progs[0]), sizeof(*logs));
	if (!logs) {
		rc = -ENOMEM;
		goto cleanup;
	}
	rc = check_prepare(s, r, logs);
	if (rc < 0)
		goto cleanup;
	load_log_start();
	rc = capture_bpf__load(s);
	load_log_stop();
	if (rc < 0)
		rc = check_refusal(s, r, logs, rc);
	else
		check_figures(s, r, logs);
cleanup:
	free(logs);
	capture_bpf__destroy(s);
	return rc;
}

/* The whole verifier log of a refused program, loaded alone. */
static char *check_full_log(const struct capture_config *cfg, bool sock,
			    const char *name)
{
	struct capture_bpf *s = capture_bpf__open();
	struct bpf_program *prog;
	char *log = NULL;
	int rc;

	if (!s)
		return NULL;
	configure(s, cfg, 4096 * 16, sock);
	log = calloc(1, CHECK_FULL_LOG_BYTES);
	bpf_object__for_each_program(prog, s->obj) {
		bool it = !strcmp(bpf_program__name(prog), name);

		bpf_program__set_autoload(prog, it);
		if (it && log) {
			bpf_program__set_log_level(prog, 1);
			bpf_program__set_log_buf(prog, log, CHECK_FULL_LOG_BYTES);
		}
	}
	load_log_start();
	rc = capture_bpf__load(s);
	load_log_stop();
	capture_bpf__destroy(s);
	if (rc == 0 || !log || !log[0]) {
		free(log);
		return NULL;
	}
	return log;
}

int capture_check(const struct capture_config *user_cfg,
		  struct capture_report *out, char *err, size_t errlen)
{
	/* The largest programs: sampling decided in the kernel at a
	 * fractional rate, ports filtered. */
	struct capture_config cfg = *user_cfg;
	uint16_t port = 1;
	int rc;

	memset(out, 0, sizeof(*out));
	cfg.sample_key = SHADOW_SAMPLE_REQUEST;
	cfg.sample_below = 1ull << 52;
	if (!cfg.n_ports) {
		cfg.ports = &port;
		cfg.n_ports = 1;
	}
	rc = check_privileges(err, errlen);
	if (rc < 0)
		return rc;
	ensure_tracefs();
	verbose_libbpf = false; /* -v here means the refused programs' logs */
	libbpf_set_print(libbpf_print);
	rc = choose_path(&out->features, &out->sock_hooks, err, errlen);
	if (rc < 0)
		return rc;
	for (int round = 0; round < 64; round++) {
		rc = check_round(&cfg, out->sock_hooks, out);
		if (rc != -EAGAIN)
			break;
	}
	if (rc < 0 && rc != -EAGAIN) {
		char prog[64], why[256];

		load_log_refusal(prog, sizeof(prog), why, sizeof(why));
		snprintf(err, errlen, "cannot load the BPF object: %s (%s)",
			 strerror(-rc), why);
		return rc;
	}
	for (unsigned i = 0; i < out->n_progs; i++) {
		struct capture_prog_report *p = &out->progs[i];

		if (!p->loaded) {
			if (cfg.verbose)
				p->log = check_full_log(&cfg, out->sock_hooks,
							p->name);
			continue;
		}
		out->loaded++;
		if (p->insns > out->max_insns)
			out->max_insns = p->insns;
		if (p->stack > out->max_stack)
			out->max_stack = p->stack;
	}
	return out->loaded == out->n_progs ? 0 : -EPERM;
}

void capture_report_clean(struct capture_report *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->n_progs; i++) {
		free(r->progs[i].log);
		r->progs[i].log = NULL;
	}
}

void capture_report_print(FILE *out, const struct capture_report *r,
			  bool progs, bool verbose)
{
	const bool *have = r->features.have;
	struct utsname u;
	unsigned over = 0;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "?");
	fprintf(out, "kernel %s (%s)\n", u.release, u.machine);
	fprintf(out, "features:");
	for (int f = 0; f < BPFCHECK_N_FEATURES; f++)
		fprintf(out, " %s %s%s", bpfcheck_feature_name(f),
			have[f] ? "yes" : "no",
			f + 1 < BPFCHECK_N_FEATURES ? "," : "\n");
	fprintf(out, "data hooks: %s\n", r->sock_hooks ?
		"socket tracepoints (tp_btf sock_recv_length, sock_send_length, "
		"inet_sock_set_state)" :
		"syscall tracepoints (sys_enter/exit of accept, read, write, "
		"their vector and socket forms, sendfile; tp_btf "
		"inet_sock_set_state)");
	fprintf(out, "TLS hooks: %s\n", have[BPFCHECK_UPROBE] ?
		"uprobes on SSL_read/SSL_write (_ex) and SSL_do_handshake in "
		"each target's libssl, attached per target at run time" :
		"none (no uprobes: HTTPS is counted as undecoded)");
	if (!progs)
		return;
	for (unsigned i = 0; i < r->n_progs; i++) {
		const struct capture_prog_report *p = &r->progs[i];
		bool big = p->stack > BPFCHECK_STACK_BUDGET ||
			   p->insns > BPFCHECK_INSNS_BUDGET;

		if (p->loaded) {
			over += big;
			fprintf(out, "  loaded   %-28s %7u insns %4u B stack "
				"(%u frame%s)%s\n", p->name, p->insns, p->stack,
				p->frames, p->frames == 1 ? "" : "s",
				big ? "  over the budget" : "");
			if (verbose && p->depths[0])
				fprintf(out, "           (each function's own stack, "
					"in order: %s)\n", p->depths);
		} else {
			fprintf(out, "  refused  %-28s %s\n", p->name, p->reason);
			if (p->log)
				fprintf(out, "-- verifier log of %s --\n%s\n"
					"-- end of log --\n", p->name, p->log);
		}
	}
	fprintf(out, "%u programs loaded (max %uk insns, %u B stack)", r->loaded,
		(r->max_insns + 999) / 1000, r->max_stack);
	if (r->loaded < r->n_progs)
		fprintf(out, ", %u refused", r->n_progs - r->loaded);
	if (over)
		fprintf(out, ", %u over the budget of %u B stack and %uk insns",
			over, BPFCHECK_STACK_BUDGET, BPFCHECK_INSNS_BUDGET / 1000);
	fputc('\n', out);
}
