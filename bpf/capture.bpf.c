// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel side of request-shadow: the bytes the target processes' server
 * sockets read and write go on a ring buffer (include/shadow_event.h).
 * Two feature paths, picked at load time by probing the kernel's BTF
 * (user/capture.c): on kernels with the sock_recv_length/sock_send_length
 * tracepoints (6.4+), tp_btf programs on those, which find the user
 * buffer in the syscall's saved registers; elsewhere the classic syscall
 * tracepoints. On either, a connection is its struct sock (the conns
 * map), so a socket handed to a forked child or dup()ed is one
 * connection, and it ends when TCP says so (inet_sock_set_state).
 * Filtering happens before any copy: only a target process's server-side
 * TCP sockets (accepted, or found at attach) on a port some server listens
 * on (and, with port filtering, on a listed port) are ever looked at.
 *
 * TLS: uprobes on a dynamically linked OpenSSL's SSL_read/SSL_write (and
 * their _ex forms) put the plaintext on the same streams, with the same
 * offsets. A connection is TLS when a syscall on it runs inside one of the
 * hooked SSL calls, or when its first inbound bytes are a TLS record
 * header; from then on its syscalls (the ciphertext) are neither emitted
 * nor counted in its offsets. A TLS connection no hooked SSL call ever
 * touches (static OpenSSL, BoringSSL, Go, rustls) is counted as undecoded.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "shadow_event.h"
#include "sample_key.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
/* Chunks one syscall may produce: 256 * 16 KiB = 4 MiB, then a gap. */
#define MAX_CHUNKS 256

/* Settings, written by user space between open and load. */
const volatile bool cfg_filter_ports = false;
/* The data comes from the socket tracepoints (else the syscall ones). */
const volatile bool cfg_sock_hooks = false;
const volatile __u64 cfg_wakeup_bytes = 256 * 1024;
/* Sampling decided here (see bpf/sample_key.h): 0 leaves every decision
 * to user space; SHADOW_SAMPLE_REQUEST or _PATH names the key. An
 * exchange is sampled iff (XXH64(key) >> 11) < cfg_sample_below. */
const volatile __u32 cfg_sample_key = 0;
const volatile __u64 cfg_sample_below = 0;
/* SHADOWD_PROFILE: time a few regions of the socket hooks (prof_end). */
const volatile bool cfg_profile = false;
/* Written by user space while attached (enum shadow_shed): while set,
 * sampled requests the daemon would shed anyway are passed over here. */
volatile __u32 shed_now = 0;
/* Written by user space once it has hooked a libssl for some target: from
 * then on, socket I/O that is no tracked connection's may still be an SSL
 * call's, whose fd the call needs (io_conn). */
volatile __u32 tls_hooked = 0;
/* Entries user space has put in `found` (added to before each), less those
 * taken: while it is 0, a connection's birth looks for none (conn_found).
 * One left behind (a found connection that closed before its next I/O,
 * or evicted) only keeps the lookups, as before there was a count. */
volatile __u32 found_pending = 0;

enum stat_idx {
	STAT_LOST = 0,    /* records the ring buffer had no room for */
	STAT_ACCEPTED,    /* connections that became tracked */
	STAT_ACTIVE_FULL, /* syscalls missed: in-flight table full */
	STAT_TRUNCATED,   /* syscalls longer than MAX_CHUNKS chunks */
	STAT_TLS_UNDECODED, /* TLS connections no hooked library decrypted */
	STAT_TLS_UNLINKED,  /* SSL calls with data whose socket was unknown */
	STAT_UNHOOKED,      /* socket I/O by a syscall the hooks cannot read */
	STAT_UNCOPIED,      /* unsampled responses passed over, not copied */
	STAT_WOKEN,         /* wakeups forced on user space (wake_flag) */
	STAT_MAX,
};

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

/* What the bytes of a connection's syscalls are. */
enum tls_state {
	TLS_UNKNOWN = 0, /* no inbound byte seen yet */
	TLS_PLAIN,       /* cleartext: the syscalls carry the stream */
	TLS_PENDING,     /* TLS records, no hooked SSL call seen on it yet */
	TLS_DECODED,     /* TLS through a hooked library: uprobes carry it */
	TLS_UNDECODED,   /* TLS nobody decrypts for us: counted, ignored */
};

/* Where a cleartext connection is, for the sampling decided here: a read
 * with bytes after a write (or the first one) starts a request; the first
 * write after it starts the response, which runs until the next request. */
enum phase { PH_NONE = 0, PH_REQUEST, PH_RESPONSE };

/* A tracked connection, by its socket (conns): whichever fd or process
 * moves its bytes (a dup'ed fd, a child it was handed to at fork), it is
 * one connection, named in records by where it was first seen. */
struct conn_state {
	__u64 off[2]; /* next stream offset per direction */
	__u64 skip_from;   /* outbound offset where that response began */
	__u64 skip_ts[2];  /* its first and its last write */
	__u32 tgid, fd;    /* its name in records: the first (tgid, fd) */
	__u32 gen;         /* ... and its generation */
	__u32 close_flags; /* enum shadow_close_flags seen so far */
	__u32 tls;         /* enum tls_state */
	__u8 phase;        /* enum phase */
	__u8 skip_next;    /* the request read was decided unsampled */
	__u8 skipping;     /* its response is being passed over */
	__u8 midstream;    /* joined after bytes had moved on it */
};

/* A connection user space found open at attach (found, by its socket's
 * inode): the name and generation it announced, taken by the socket at its
 * first I/O in a target, through whichever fd. */
struct found_conn {
	__u32 gen;
	__u32 tgid, fd;
	__u32 _pad;
};


enum act_kind { ACT_ACCEPT = 1, ACT_IO, ACT_SENDFILE };

/* A syscall between its enter and exit tracepoints, per thread. With the
 * socket hooks, the sendfile() a thread is in (kind ACT_SENDFILE): buf is
 * its count, file_off where it started, done what it sent so far. */
struct active {
	__u64 buf;    /* user buffer, or user iovec array when iovcnt > 0 */
	__u64 file_off;
	__u64 done;
	__u64 sk;     /* the connection's socket (syscall hooks) */
	__u32 fd;
	__u32 iovcnt;
	__u32 in_fd;
	__u8 kind;
	__u8 dir;
	__u8 peek; /* MSG_PEEK: the bytes stay queued */
	__u8 _pad;
};

enum ssl_kind { SSL_K_READ = 1, SSL_K_WRITE, SSL_K_HANDSHAKE };

/* A hooked SSL call between its uprobe and uretprobe, per thread. */
struct ssl_call {
	__u64 ssl;     /* the SSL object */
	__u64 buf;     /* plaintext buffer (read/write) */
	__u64 len_ptr; /* size_t * of the _ex forms, 0 otherwise */
	__u64 sk;      /* the socket seen inside the call, 0 if none */
	__u8 kind;     /* enum ssl_kind */
	__u8 _pad;
	__u16 depth;   /* nested hooked calls on the same object */
};

struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct exe_key {
	__u64 ino;
	__u32 dev; /* kernel encoding: major << 20 | minor */
	__u32 _pad;
};

/* State of one syscall's walk over its buffer or iovecs. The pieces are
 * copied back to back into one record of up to SHADOW_CHUNK_MAX bytes, so
 * a writev of headers and body costs one ring-buffer record, not two. */
struct walk {
	__u64 base;    /* iovec array (iovcnt > 0) or the buffer */
	__u64 cur;     /* user address of the current piece */
	__u64 cur_left; /* bytes left in the current piece */
	__u64 left;    /* bytes of the syscall's return still to copy */
	__u64 off;     /* stream offset of the next byte to copy */
	__u64 ts;      /* one timestamp for the whole syscall */
	__u32 fill;    /* bytes in the record being filled */
	__u32 iov_idx;
	__u32 iovcnt;
	__u32 chunks;  /* records emitted */
	__u32 tgid, fd, gen;
	__u8 dir;
};

/* One syscall's bytes to copy, set by the hook for io_copy(). */
struct io_args {
	__u64 buf;    /* user buffer, or user iovec array when iovcnt > 0 */
	__s64 ret;    /* bytes the syscall moved, or its error */
	__u32 iovcnt;
	__u8 dir;
	__u8 peek;    /* MSG_PEEK: the bytes stay queued */
	__u8 _pad[2];
};

/* Requests read with at most this many iovecs are copied in one pass. */
#define SMALL_IOV 4

/* What the data hooks work in, per CPU, instead of their stacks (which
 * the verifier adds up along calls and caps at 512 bytes): the record
 * being filled, whose data is twice the largest payload so that the
 * verifier can see every copy stays inside it (a fill below one chunk
 * plus a piece of at most one chunk); the walk over a syscall's pieces;
 * its arguments; the iovecs of a small request; the request line parsed.
 * Only process-context programs use it (inet_sock_set_state, in softirq,
 * does not). An SSL uprobe's program may be preempted while it holds it:
 * `busy` then turns the other program away, and its bytes are a gap. */
struct scratch {
	struct shadow_event h;
	__u8 data[SHADOW_CHUNK_MAX * 2];
	struct walk w;
	struct io_args io;
	struct iovec iov[SMALL_IOV];
	struct sk_request req;
	__u32 busy;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* The targets as a bitmap over tgids (pid_max is at most 2^22). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, (1 << 22) / 64);
	__type(key, __u32);
	__type(value, __u64);
} target_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct exe_key);
	__type(value, __u8);
} exes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* the struct sock's address */
	__type(value, struct conn_state);
} conns SEC(".maps");

/* Connections found at attach, by socket inode, until their first I/O. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct found_conn);
} found SEC(".maps");

/* Socket hooks: server-side sockets (made by a listener, of any process
 * on the host) by address, from their birth to their first I/O... */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} srv_new SEC(".maps");

/* ... and the local ports listened on at attach (of --port, if given): a
 * socket on one of them made before attach (in a listener's queue then,
 * accepted after) has no mark, and is a server-side one too ... */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} listen_ports SEC(".maps");

/* ... and, by port, every local port those can have: the ports above,
 * and the ports of the sockets listeners made since (a transparent proxy's
 * may differ from its listener's). I/O on a socket with any other local
 * port, a target's connections to its database or a proxy's upstream ones,
 * is no server-side connection's and returns before any hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} srv_ports SEC(".maps");


/* The syscall a thread is in, between its enter and exit tracepoints: task
 * local storage, so the hot path takes no hash-map lock. kind 0 = none. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct active);
} actives SEC(".maps");

/* Indexed by CPU (user space sizes it to the possible CPUs): a per-CPU
 * array cannot hold values this large. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratches SEC(".maps");

/* Threads inside a hooked SSL call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

/* (tgid, SSL object) -> the socket it was last seen doing I/O on. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __u64);
} ssl_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Profiling (SHADOWD_PROFILE=1, make bench's kernel section): time spent
 * in regions of the socket hooks' path for a tracked connection, per
 * CPU: the sum of nanoseconds at [region], the count at [PROF_MAX +
 * region]. PROF_CLOCK is an empty region, the price of the clock reads
 * in every other one. Off, the verifier drops it all as dead code. */
enum prof_region {
	PROF_CLOCK = 0, /* nothing: the measurement's own cost */
	PROF_CONN,      /* finding the connection (sock_conn, io_conn) */
	PROF_READ,      /* copying a request read from user memory */
	PROF_DECIDE,    /* parsing it, and hashing its key when sampling */
	PROF_RING,      /* one record onto the ring buffer (output) */
	PROF_COPY,      /* all of io_copy, for one read or write */
	PROF_BIRTH,     /* a connection's birth at its first I/O (OPEN) */
	PROF_LISTEN,    /* a listener's new socket marked (SYN_RECV) */
	PROF_END,       /* a tracked connection's end (CLOSE) */
	PROF_UNTRACKED, /* any other socket's end state */
	PROF_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * PROF_MAX);
	__type(key, __u32);
	__type(value, __u64);
} profile SEC(".maps");

static __always_inline __u64 prof_start(void)
{
	return cfg_profile ? bpf_ktime_get_ns() : 0;
}

static __always_inline void prof_end(__u32 region, __u64 t0)
{
	__u32 k = region, n = PROF_MAX + region;
	__u64 *v;

	if (!cfg_profile)
		return;
	v = bpf_map_lookup_elem(&profile, &k);
	if (v)
		*v += bpf_ktime_get_ns() - t0;
	v = bpf_map_lookup_elem(&profile, &n);
	if (v)
		*v += 1;
}

__u32 gen_seq = 0;
/* A new connection's state before its fields are set, copied into conns. */
static const struct conn_state conn_zero = {};

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/* Records the syscall the current thread entered. */
static __always_inline void active_put(const struct active *a)
{
	struct active *slot = bpf_task_storage_get(&actives,
						   bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (slot)
		*slot = *a;
	else
		stat_inc(STAT_ACTIVE_FULL);
}

/* The syscall the current thread is in, or NULL. */
static __always_inline struct active *active_get(void)
{
	struct active *a = bpf_task_storage_get(&actives,
						bpf_get_current_task_btf(), 0, 0);

	return a && a->kind ? a : NULL;
}

/* When a wakeup was last forced on user space (wake_flag). */
__u64 last_wake_ns = 0;
#define WAKE_EVERY_NS 1000000ull

/* Batch wakeups: user space drains on a short timer, so only a filling
 * ring buffer needs to wake it early, and then once a millisecond at
 * most. A wakeup is an interrupt on the producer's CPU: forced on every
 * record while a daemon that is not draining (stopped, starved of CPU)
 * leaves the backlog over the mark, it cost the primary several us a
 * request (docs/benchmarks.md). Two CPUs may both force one. */
static __always_inline __u64 wake_flag(void)
{
	__u64 now;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) <= cfg_wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	now = bpf_ktime_get_ns();
	if (now - last_wake_ns < WAKE_EVERY_NS)
		return BPF_RB_NO_WAKEUP;
	last_wake_ns = now;
	stat_inc(STAT_WOKEN);
	return BPF_RB_FORCE_WAKEUP;
}

static __always_inline void output(void *rec, __u64 size)
{
	__u64 t0 = prof_start();

	if (bpf_ringbuf_output(&events, rec, size, wake_flag()) < 0)
		stat_inc(STAT_LOST);
	prof_end(PROF_RING, t0);
}

/* The file behind fd in the current process, or NULL. */
static __always_inline struct file *fd_file(__u32 fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file **fdarr = BPF_CORE_READ(task, files, fdt, fd);
	struct file *f = NULL;

	if (bpf_probe_read_kernel(&f, sizeof(f), &fdarr[fd]) < 0)
		return NULL;
	return f;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* The socket behind fd in the current process, or NULL. */
static __always_inline struct sock *fd_sock(__u32 fd)
{
	struct file *f = fd_file(fd);
	struct socket *sock;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* The inode number of sk's socket, as /proc/PID/fd names it. */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* Whether tgid is a target: one bit in an array, so that the syscalls of
 * every other process on the host (the load generator, the candidate, the
 * whole machine) cost an array index and nothing more. `targets` keeps the
 * same set as a hash for user space to list. */
static __always_inline bool is_target(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *v = bpf_map_lookup_elem(&target_bits, &word);

	return v && ((*v >> (tgid % 64)) & 1);
}

static __always_inline bool srv_port(__u16 port)
{
	__u32 k = port;
	__u8 *v = bpf_map_lookup_elem(&srv_ports, &k);

	return v && *v;
}

static __always_inline void srv_port_add(__u16 port)
{
	__u32 k = port;
	__u8 *v = bpf_map_lookup_elem(&srv_ports, &k);

	if (v && !*v)
		*v = 1;
}

static __always_inline void target_mark(__u32 tgid, bool on)
{
	__u32 word = tgid / 64;
	__u64 *v = bpf_map_lookup_elem(&target_bits, &word);
	__u64 bit = 1ull << (tgid % 64);
	__u8 one = 1;

	if (on) {
		bpf_map_update_elem(&targets, &tgid, &one, BPF_ANY);
		if (v)
			__sync_fetch_and_or(v, bit);
	} else {
		bpf_map_delete_elem(&targets, &tgid);
		if (v)
			__sync_fetch_and_and(v, ~bit);
	}
}

/* Socket I/O on socket sk inside a hooked SSL call ties the SSL object to
 * the socket (the first socket I/O of the call is its socket's), and makes
 * a tracked connection a decoded TLS one. A TLS connection that writes
 * outside any hooked call is one no hooked library handles: undecoded.
 * Returns the tracked connection c (sk's, if any) or NULL. */
static __always_inline struct conn_state *io_conn(__u64 id, __u64 sk, __u8 dir,
						  struct conn_state *c)
{
	struct ssl_call *sc;

	/* Cleartext from its first bytes: no SSL call ever runs on it. */
	if (c && c->tls == TLS_PLAIN)
		return c;
	/* Nothing to tie to an SSL call while no libssl is hooked. */
	if (!c && !tls_hooked)
		return NULL;
	sc = bpf_map_lookup_elem(&ssl_calls, &id);
	if (sc && !sc->sk && sk) {
		sc->sk = sk;
		if (c) {
			struct ssl_key k = { .ssl = sc->ssl, .tgid = id >> 32 };

			bpf_map_update_elem(&ssl_socks, &k, &sk, BPF_ANY);
		}
	}
	if (!c)
		return NULL;
	if (sc && sc->sk == sk) {
		c->tls = TLS_DECODED;
	} else if (c->tls == TLS_PENDING && dir == SHADOW_DIR_OUT) {
		c->tls = TLS_UNDECODED;
		stat_inc(STAT_TLS_UNDECODED);
	}
	return c;
}

/* Whether the first inbound bytes of a connection are a TLS record: a
 * handshake record from the start, or (joined midstream) any record type
 * with a plausible version. No HTTP/1 request starts with these bytes. */
static __always_inline bool first_bytes_tls(__u64 buf, __u32 iovcnt, long ret,
					    bool midstream)
{
	__u8 b[3] = {};
	__u64 p = buf;

	if (iovcnt) {
		struct iovec iov;

		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)buf) < 0)
			return false;
		p = (__u64)iov.iov_base;
		if (ret > iov.iov_len)
			ret = iov.iov_len;
	}
	if (ret > 3)
		ret = 3;
	if (ret < 1 || bpf_probe_read_user(b, ret & 3, (void *)p) < 0)
		return false;
	if (!midstream)
		/* nginx peeks at one byte before its handshake. */
		return b[0] == 0x16 && (ret < 2 || b[1] == 0x03);
	return ret >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03 &&
	       b[2] <= 0x04;
}

/* n, at most max, in a way every kernel's verifier follows. The compiler
 * drops a clamp it can prove redundant (n was bounded against another
 * bounded value), and verifiers before 6.2 or so cannot prove it from
 * such a comparison themselves: the empty asm hides what the compiler
 * knows, so the clamp against a constant stays. */
static __always_inline __u64 verifier_clamp(__u64 n, __u64 max)
{
	asm volatile("" : "+r"(n));
	return n > max ? max : n;
}

static __always_inline struct scratch *scratch_get(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratches, &cpu);
}

/* The CPU's scratch for one syscall's copy, or NULL (counted) when
 * another program holds it; give it back with scratch_release(). */
static __always_inline struct scratch *scratch_claim(void)
{
	struct scratch *s = scratch_get();

	if (!s || s->busy) {
		stat_inc(STAT_ACTIVE_FULL);
		return NULL;
	}
	s->busy = 1;
	return s;
}

static __always_inline void scratch_release(struct scratch *s)
{
	s->busy = 0;
}

/* The header of the record in s: `len` payload bytes standing for the
 * `size` stream bytes the walk copied last (`fill` of them). */
static __always_inline void walk_head(struct walk *w, struct scratch *s,
				      __u8 kind, __u32 fill, __u32 len,
				      __u32 size)
{
	s->h.ts_ns = w->ts;
	s->h.offset = w->off - fill;
	s->h.tgid = w->tgid;
	s->h.fd = w->fd;
	s->h.gen = w->gen;
	s->h.len = len;
	s->h.size = size;
	s->h.kind = kind;
	s->h.dir = w->dir;
	s->h.flags = 0;
}

/* Emits a record of the `fill` bytes copied followed by `lost` bytes that
 * could not be copied (size = fill + lost). */
static __always_inline void walk_emit(struct walk *w, struct scratch *s,
				      __u64 lost)
{
	__u32 fill = w->fill;

	if (!fill && !lost)
		return;
	if (fill > SHADOW_CHUNK_MAX)
		fill = SHADOW_CHUNK_MAX;
	walk_head(w, s, SHADOW_EV_DATA, fill, fill, fill + lost);
	output(s, sizeof(s->h) + fill);
	w->off += lost;
	w->fill = 0;
	w->chunks++;
}

/* One step of bpf_loop() over the walk in the CPU's scratch: a piece, or
 * the step to the next iovec. */
static long walk_chunk(__u32 i, void *unused)
{
	struct scratch *s = scratch_get();
	struct walk *w;
	__u64 n, fill;

	if (!s)
		return 1;
	w = &s->w;
	if (!w->left) {
		walk_emit(w, s, 0);
		return 1;
	}
	if (!w->cur_left) {
		/* Step to the next iovec; one loop iteration each. */
		struct iovec iov;

		if (!w->iovcnt || w->iov_idx >= w->iovcnt ||
		    w->iov_idx >= SHADOW_IOV_MAX ||
		    bpf_probe_read_user(&iov, sizeof(iov),
					(void *)(w->base + w->iov_idx *
						 sizeof(struct iovec))) < 0) {
			/* What we cannot walk is a visible gap. */
			stat_inc(STAT_TRUNCATED);
			walk_emit(w, s, w->left);
			return 1;
		}
		w->iov_idx++;
		w->cur = (__u64)iov.iov_base;
		w->cur_left = iov.iov_len;
		return 0;
	}
	if (w->chunks >= MAX_CHUNKS) {
		/* Too long to copy whole: the rest is a visible gap. */
		stat_inc(STAT_TRUNCATED);
		walk_emit(w, s, w->left);
		return 1;
	}
	fill = w->fill & (SHADOW_CHUNK_MAX - 1);
	n = w->cur_left < w->left ? w->cur_left : w->left;
	if (n > SHADOW_CHUNK_MAX - fill)
		n = SHADOW_CHUNK_MAX - fill;
	n = verifier_clamp(n, SHADOW_CHUNK_MAX);
	if (bpf_probe_read_user(s->data + fill, n, (void *)w->cur) < 0) {
		/* An unreadable buffer: what was copied, then a gap. */
		walk_emit(w, s, n);
	} else {
		w->fill += n;
		w->off += n;
		if (w->fill >= SHADOW_CHUNK_MAX)
			walk_emit(w, s, 0);
	}
	w->cur += n;
	w->cur_left -= n;
	w->left -= n;
	return 0;
}

/* Starts the walk of n bytes that moved in direction dir on tracked
 * connection c, taking their stream offsets: from the user buffer at buf,
 * or from its iovcnt iovecs at buf. */
static __always_inline void walk_start(struct walk *w, struct conn_state *c,
				       __u8 dir, __u64 n, __u64 buf,
				       __u32 iovcnt)
{
	w->dir = dir;
	w->off = __sync_fetch_and_add(&c->off[dir & 1], n);
	w->base = buf;
	w->iovcnt = iovcnt;
	w->iov_idx = 0;
	w->cur = iovcnt ? 0 : buf;
	w->cur_left = iovcnt ? 0 : n;
	w->left = n;
	w->fill = 0;
	w->chunks = 0;
	w->ts = bpf_ktime_get_ns();
	w->tgid = c->tgid;
	w->fd = c->fd;
	w->gen = c->gen;
}

/* Copies what is left of the walk in s, record by record. */
static __always_inline void walk_all(void)
{
	bpf_loop(2 * MAX_CHUNKS + SHADOW_IOV_MAX + 1, walk_chunk, NULL, 0);
}

/* What the kernel does with a request read it decides on. */
enum req_decision {
	REQ_COPY = 0,   /* sampled (or undecidable here): user space decides */
	REQ_UNSAMPLED,  /* its answer is passed over */
	REQ_SHED_QUEUE, /* sampled, but passed over: the daemon is shedding */
	REQ_SHED_BREAKER,
};

/* request_decide()'s answer: the decision in the low byte, the length of
 * the request line above it. */
#define REQ_DECISION(v) ((v) & 0xff)
#define REQ_LINE(v) ((__u32)(v) >> 8)

/* Whether s->data[0, len) is one whole request head, parsed into s->req.
 * A global function: the verifier walks its loops once, not once per
 * caller's path, and its frame is its own. */
__noinline int request_parse(struct scratch *s, __u32 len)
{
	if (!s)
		return 0;
	return sk_parse_request(s->data, len, &s->req);
}

/* XXH64 of the request's sampling key (cfg_sample_key), parsed into
 * s->req, the high bits of which decide. */
__noinline __u64 request_key_hash(struct scratch *s)
{
	struct sk_request *r;

	if (!s)
		return 0;
	r = &s->req;
	if (cfg_sample_key == SHADOW_SAMPLE_PATH)
		return sk_xxh64(s->data, r->method_len + 1, r->path_len);
	return sk_xxh64(s->data, 0, r->method_len + 1 + r->target_len);
}

/* The decision for the request read just copied to s (len bytes): only one
 * whole request head is decided, unsampled when its key hashes at or over
 * the rate, shed when sampled while the daemon sheds (and bodiless: the
 * daemon must see everything else it sheds). When the method is one that
 * carries no body (GET, HEAD, OPTIONS), the answer carries the length of
 * "METHOD SP target" (REQ_LINE): all user space needs of the head (else
 * 0). Inline, so that the parse and the hash below are each called from
 * the copy's frame, not one from the other's. */
static __always_inline int request_decide(struct scratch *s, __u32 len)
{
	__u32 shed = shed_now, line = 0;
	/* At rate 0 or 1 the key need not be hashed. */
	bool sampled = cfg_sample_below >= SK_ALL;
	struct sk_request *r;
	__u32 m;

	if (!s)
		return REQ_COPY;
	r = &s->req;
	/* At rate 1 there is nothing to decide unless shedding. */
	if ((cfg_sample_below >= SK_ALL && shed == SHADOW_SHED_NONE) ||
	    len > SK_REQ_MAX || !request_parse(s, len))
		return REQ_COPY;
	if (cfg_sample_below && cfg_sample_below < SK_ALL)
		sampled = (request_key_hash(s) >> 11) < cfg_sample_below;
	if (sampled && shed == SHADOW_SHED_NONE)
		return REQ_COPY;
	m = sk_load32(s->data, 0);
	if ((r->method_len == 3 && (m & 0xffffff) == 0x544547) || /* GET */
	    (r->method_len == 4 && m == 0x44414548) ||            /* HEAD */
	    (r->method_len == 7 && m == 0x4954504f &&             /* OPTI */
	     sk_load32(s->data, 3) == 0x534e4f49))                /* IONS */
		line = (r->method_len + 1 + r->target_len) & (SK_REQ_MAX - 1);
	if (!sampled)
		return REQ_UNSAMPLED | line << 8;
	if (!line)
		return REQ_COPY;
	return (shed == SHADOW_SHED_BREAKER ? REQ_SHED_BREAKER : REQ_SHED_QUEUE) |
	       line << 8;
}

/* Ends a response passed over: one SKIP record stands for all of it, put
 * before the next request's bytes or the close. */
static __always_inline void skip_end(struct conn_state *c)
{
	struct {
		struct shadow_event h;
		struct shadow_skip s;
	} *rec;

	if (!c->skipping)
		return;
	c->skipping = 0;
	stat_inc(STAT_UNCOPIED);
	/* Lost, it leaves a gap in the outbound stream: still visible. */
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		stat_inc(STAT_LOST);
		return;
	}
	rec->h.ts_ns = c->skip_ts[0];
	rec->h.offset = c->skip_from;
	rec->h.tgid = c->tgid;
	rec->h.fd = c->fd;
	rec->h.gen = c->gen;
	rec->h.len = sizeof(rec->s);
	rec->h.size = c->off[SHADOW_DIR_OUT] - c->skip_from;
	rec->h.kind = SHADOW_EV_SKIP;
	rec->h.dir = SHADOW_DIR_OUT;
	rec->h.flags = 0;
	rec->s.last_ts_ns = c->skip_ts[1];
	bpf_ringbuf_submit(rec, wake_flag());
}

/* Ends a response passed over inside the next record, which carries its
 * SKIP at its end in b (SHADOW_F_AFTER_SKIP): a request line or the
 * connection's CLOSE. */
static __always_inline void skip_carry(struct conn_state *c,
				       struct shadow_skip_before *b)
{
	b->offset = c->skip_from;
	b->size = c->off[SHADOW_DIR_OUT] - c->skip_from;
	b->ts_ns = c->skip_ts[0];
	b->last_ts_ns = c->skip_ts[1];
	c->skipping = 0;
	stat_inc(STAT_UNCOPIED);
}

/* The common case in one pass, without bpf_loop's call per piece: at most
 * one record's worth of bytes in a buffer or in up to SMALL_IOV iovecs
 * (a request read; headers and body written together), walked by s->w.
 * Returns false, having emitted nothing, when the walk is needed. */
static __always_inline bool copy_small(struct scratch *s, struct conn_state *c,
				       bool decide)
{
	struct walk *w = &s->w;
	__u64 left = w->left, fill = 0;
	int d = REQ_COPY;
	__u32 line = 0;

	if (left > SHADOW_CHUNK_MAX || w->iovcnt > SMALL_IOV)
		return false;
	if (!w->iovcnt) {
		__u64 t0 = prof_start();

		if (bpf_probe_read_user(s->data, left, (void *)w->cur) < 0)
			return false;
		if (decide)
			prof_end(PROF_READ, t0);
		fill = left;
	} else {
		__u64 sz = w->iovcnt * sizeof(s->iov[0]);

		if (sz > sizeof(s->iov) ||
		    bpf_probe_read_user(s->iov, sz, (void *)w->base) < 0)
			return false;
#pragma unroll
		for (int i = 0; i < SMALL_IOV; i++) {
			__u64 n = s->iov[i].iov_len;
			void *dst, *src;

			if (!left || i >= w->iovcnt)
				break;
			if (n > left)
				n = left;
			/* Bounds the verifier can follow: fill < one chunk
			 * while bytes are left, n at most one chunk (clamped
			 * as the call's argument, where no spill loses it). */
			dst = s->data + (fill & (SHADOW_CHUNK_MAX - 1));
			src = s->iov[i].iov_base;
			if (bpf_probe_read_user(dst, verifier_clamp(n,
							SHADOW_CHUNK_MAX),
						src) < 0)
				return false;
			fill += n;
			left -= n;
		}
		if (left)
			return false;
	}
	w->fill = fill;
	w->off += fill;
	w->left = 0;
	if (decide) {
		__u64 t0 = prof_start();
		int v = request_decide(s, fill);

		prof_end(PROF_DECIDE, t0);
		d = REQ_DECISION(v);
		line = REQ_LINE(v);
		c->skip_next = d != REQ_COPY;
	}
	if (d != REQ_COPY && line && line <= fill) {
		/* A bodiless head passed over: its request line stands for
		 * all of it, and carries the answer passed over before it. */
		__u32 len = line;
		__u16 flags = d == REQ_SHED_QUEUE ? SHADOW_F_SHED_QUEUE :
			      d == REQ_SHED_BREAKER ? SHADOW_F_SHED_BREAKER : 0;

		if (c->skipping) {
			struct shadow_skip_before *b =
				(void *)(s->data + (line & (SK_REQ_MAX - 1)));

			skip_carry(c, b);
			len += sizeof(*b);
			flags |= SHADOW_F_AFTER_SKIP;
		}
		walk_head(w, s, SHADOW_EV_REQLINE, fill, len, fill);
		s->h.flags = flags;
		output(s, sizeof(s->h) + (len & (SK_REQ_MAX * 2 - 1)));
		w->chunks++;
		return true;
	}
	skip_end(c);
	walk_emit(w, s, 0);
	return true;
}

/* Announces a connection on (tgid, fd): its addresses, its generation. */
static __always_inline void open_emit(__u32 tgid, __u32 fd, __u32 gen,
				      struct sock *sk, __u32 flags)
{
	struct {
		struct shadow_event h;
		struct shadow_open o;
	} *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec) {
		stat_inc(STAT_LOST);
		return;
	}
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->h.ts_ns = bpf_ktime_get_ns();
	rec->h.tgid = tgid;
	rec->h.fd = fd;
	rec->h.gen = gen;
	rec->h.len = sizeof(rec->o);
	rec->h.kind = SHADOW_EV_OPEN;
	rec->h.flags = flags;
	rec->o.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	rec->o.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	rec->o.rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (rec->o.family == AF_INET) {
		BPF_CORE_READ_INTO(rec->o.laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(rec->o.raddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(rec->o.laddr, sk,
				   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(rec->o.raddr, sk,
				   __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	bpf_ringbuf_submit(rec, wake_flag());
}

/* Ends tracked connection c of socket sk: its CLOSE with the final
 * offsets, carrying the SKIP of the answer it was passing over (one record
 * instead of two); it is forgotten. A global function: its record is in
 * its own frame, off the copy's. */
__noinline int conn_end(struct conn_state *c, __u64 sk)
{
	struct {
		struct shadow_event h;
		struct shadow_close c;
		struct shadow_skip_before b;
	} *rec;

	if (!c)
		return 0;
	if (c->tls == TLS_PENDING)
		stat_inc(STAT_TLS_UNDECODED);
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		if (c->skipping)
			stat_inc(STAT_UNCOPIED);
		stat_inc(STAT_LOST);
		bpf_map_delete_elem(&conns, &sk);
		return 0;
	}
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->h.ts_ns = bpf_ktime_get_ns();
	rec->h.tgid = c->tgid;
	rec->h.fd = c->fd;
	rec->h.gen = c->gen;
	rec->h.kind = SHADOW_EV_CLOSE;
	rec->h.len = sizeof(rec->c);
	rec->c.final_offset[0] = c->off[0];
	rec->c.final_offset[1] = c->off[1];
	rec->c.flags = c->close_flags;
	if (c->skipping) {
		skip_carry(c, &rec->b);
		rec->h.flags = SHADOW_F_AFTER_SKIP;
		rec->h.len += sizeof(rec->b);
	}
	bpf_map_delete_elem(&conns, &sk);
	bpf_ringbuf_submit(rec, wake_flag());
	return 0;
}

/* Starts tracking socket sk as a connection first seen on (tgid, fd), of
 * generation gen (0: the next of the kernel's), joined after bytes had
 * moved on it when midstream; announces it. Returns its state or NULL. */
static __always_inline struct conn_state *conn_start(__u64 sk, __u32 tgid,
						     __u32 fd, __u32 gen,
						     bool midstream)
{
	struct conn_state *c;

	if (bpf_map_update_elem(&conns, &sk, &conn_zero, BPF_ANY) < 0)
		return NULL;
	c = bpf_map_lookup_elem(&conns, &sk);
	if (!c)
		return NULL;
	c->tgid = tgid;
	c->fd = fd;
	c->midstream = midstream;
	if (gen) {
		/* Found at attach: user space announced it. */
		c->gen = gen;
		return c;
	}
	c->gen = __sync_fetch_and_add(&gen_seq, 1) + 1;
	stat_inc(STAT_ACCEPTED);
	open_emit(tgid, fd, c->gen, (struct sock *)sk,
		  midstream ? SHADOW_F_MIDSTREAM : 0);
	return c;
}

/* Starts tracking socket sk if it is a connection user space found open at
 * attach, under the name it announced. Returns its state or NULL. */
static __always_inline struct conn_state *conn_found(__u64 sk)
{
	struct conn_state *c;
	struct found_conn *f;
	__u64 ino;

	if (!found_pending)
		return NULL;
	ino = sock_ino((struct sock *)sk);
	f = bpf_map_lookup_elem(&found, &ino);
	if (!f)
		return NULL;
	c = conn_start(sk, f->tgid, f->fd, f->gen, true);
	if (bpf_map_delete_elem(&found, &ino) == 0)
		__sync_fetch_and_sub(&found_pending, 1);
	return c;
}

/* ret bytes written on a cleartext connection whose sampling the kernel
 * decides: the first write after a request starts its answer, which runs
 * until the next request and is passed over (only the offset moves) when
 * the request was left unsampled. Nothing but its answer follows a whole
 * HTTP/1.x request head the server read, so its first bytes are not
 * looked at (two reads of user memory would cost the primary more than
 * the rest of the hook). Returns whether these bytes are passed over. */
static __always_inline bool answer_passed_over(struct conn_state *c, long ret)
{
	__u64 now;

	if (c->phase != PH_REQUEST && !c->skipping)
		return false;
	now = bpf_ktime_get_ns();
	if (c->phase == PH_REQUEST) {
		c->phase = PH_RESPONSE;
		if (c->skip_next) {
			c->skipping = 1;
			c->skip_from = c->off[SHADOW_DIR_OUT];
			c->skip_ts[0] = now;
		}
		c->skip_next = 0;
		if (!c->skipping)
			return false;
	}
	__sync_fetch_and_add(&c->off[SHADOW_DIR_OUT], ret);
	c->skip_ts[1] = now;
	return true;
}

/* The bytes one socket I/O moved on tracked connection c, as s->io says:
 * ret bytes at buf (or over iovcnt iovecs at buf), copied as DATA records
 * at the stream's next offset. A peek only shows the first bytes (TLS
 * detection); 0 bytes inbound is the client's EOF. s is claimed by the
 * caller. A global function, verified once for all its callers. */
__noinline int io_copy(struct conn_state *c, struct scratch *s)
{
	struct io_args *a;
	struct walk *w;
	bool decide = false;
	__s64 ret;
	__u8 dir;

	if (!c || !s)
		return 0;
	a = &s->io;
	w = &s->w;
	ret = a->ret;
	dir = a->dir & 1;
	if (ret < 0)
		return 0;
	if (ret == 0) {
		if (dir == SHADOW_DIR_IN && !a->peek)
			c->close_flags |= SHADOW_CLOSE_PEER_EOF;
		return 0;
	}
	if (c->tls == TLS_UNKNOWN && dir == SHADOW_DIR_IN)
		c->tls = first_bytes_tls(a->buf, a->iovcnt, ret, c->midstream) ?
			 TLS_PENDING : TLS_PLAIN;
	/* Ciphertext: the plaintext comes from the SSL hooks, if at all. */
	if (a->peek || c->tls >= TLS_PENDING)
		return 0;
	/* An answer passed over never gets here: io_copy_claimed moved its
	 * offset without a scratch. */
	if (cfg_sample_key && c->tls == TLS_PLAIN && dir == SHADOW_DIR_IN) {
		/* The answer passed over ends here: its SKIP goes before this
		 * request's bytes, or inside its request line (copy_small). */
		if (c->phase != PH_REQUEST) {
			c->phase = PH_REQUEST;
			decide = true;
		}
		/* A second read before any answer (a body, the rest of the
		 * headers) undoes a decision: nothing was passed over yet. */
		c->skip_next = 0;
	}
	walk_start(w, c, dir, ret, a->buf, a->iovcnt);
	if (!copy_small(s, c, decide)) {
		skip_end(c);
		walk_all();
	}
	return 0;
}

/* Copies ret bytes of one I/O on tracked connection c (see io_copy), in
 * the CPU's scratch; with the scratch taken, they are a gap. */
static __always_inline void io_copy_claimed(struct conn_state *c, __u64 buf,
					    __u32 iovcnt, __u8 dir, long ret,
					    bool peek)
{
	struct scratch *s;
	__u64 t0;

	if (ret < 0)
		return;
	if (ret == 0) {
		if (dir == SHADOW_DIR_IN && !peek)
			c->close_flags |= SHADOW_CLOSE_PEER_EOF;
		return;
	}
	/* An answer passed over moves its offset only: no scratch, no copy. */
	if (dir == SHADOW_DIR_OUT && cfg_sample_key && c->tls == TLS_PLAIN &&
	    answer_passed_over(c, ret))
		return;
	s = scratch_claim();
	if (!s) {
		if (ret > 0 && !peek)
			__sync_fetch_and_add(&c->off[dir & 1], ret);
		return;
	}
	s->io.buf = buf;
	s->io.ret = ret;
	s->io.iovcnt = iovcnt;
	s->io.dir = dir;
	s->io.peek = peek;
	t0 = prof_start();
	io_copy(c, s);
	prof_end(PROF_COPY, t0);
	scratch_release(s);
}

/* A file's path, found by walking its dentries up to the root (crossing
 * mount points): what sendfile() read from, for user space to open when
 * the process has closed it or exited (a forked handler often has, by
 * the time the record is read). Directories
 * deeper than PATH_DEPTH or paths longer than SHADOW_PATH_MAX give "". */
#define PATH_DEPTH 32

/* Per CPU, the walk's state: the dentries walked (the file's first), and
 * the path built (twice its limit, so that each name's copy is bounded).
 * In a map rather than in the loops' context on the stack, the verifier
 * takes the counters as unknown and checks each step once, instead of
 * once per value they could have reached. */
struct path_wide {
	struct dentry *d[PATH_DEPTH];
	char path[SHADOW_PATH_MAX * 2];
	struct dentry *cur;
	struct mount *mnt;
	__u32 n;
	__u32 pos;    /* bytes of the path built so far */
	__u32 rooted; /* the walk reached the root */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_wide);
} path_wide SEC(".maps");

static long path_up(__u32 i, void *unused)
{
	__u32 zero = 0;
	struct path_wide *b = bpf_map_lookup_elem(&path_wide, &zero);
	struct dentry *d, *parent;
	struct mount *mnt, *up;

	if (!b)
		return 1;
	d = b->cur;
	mnt = b->mnt;
	/* (Locals: CO-RE relocates every access inside BPF_CORE_READ.) */
	if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
		up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt) {
			b->rooted = 1;
			return 1;
		}
		b->cur = BPF_CORE_READ(mnt, mnt_mountpoint);
		b->mnt = up;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d) {
		b->rooted = 1;
		return 1;
	}
	if (b->n >= PATH_DEPTH)
		return 1;
	b->d[b->n & (PATH_DEPTH - 1)] = d;
	b->n++;
	b->cur = parent;
	return 0;
}

static long path_put(__u32 i, void *unused)
{
	__u32 zero = 0, pos;
	struct path_wide *b = bpf_map_lookup_elem(&path_wide, &zero);
	const unsigned char *name;
	struct dentry *d;
	long n;

	if (!b)
		return 1;
	pos = b->pos;
	if (i >= b->n || pos >= SHADOW_PATH_MAX - 1) {
		if (i < b->n)
			b->rooted = 0; /* too long */
		return 1;
	}
	d = b->d[(b->n - 1 - i) & (PATH_DEPTH - 1)];
	name = BPF_CORE_READ(d, d_name.name);
	b->path[pos & (SHADOW_PATH_MAX - 1)] = '/';
	pos++;
	n = bpf_probe_read_kernel_str(b->path + (pos & (SHADOW_PATH_MAX - 1)),
				      SHADOW_PATH_MAX, name);
	if (n <= 1) {
		b->rooted = 0;
		return 1;
	}
	b->pos = pos + n - 1;
	return 0;
}

/* The path of f into out (SHADOW_PATH_MAX bytes; "" when unknown). */
static __always_inline void file_path(struct file *f, char *out)
{
	struct path_wide *b;
	__u32 zero = 0;

	out[0] = '\0';
	b = bpf_map_lookup_elem(&path_wide, &zero);
	if (!f || !b)
		return;
	b->cur = BPF_CORE_READ(f, f_path.dentry);
	b->mnt = (void *)BPF_CORE_READ(f, f_path.mnt) -
		 bpf_core_field_offset(struct mount, mnt);
	b->n = 0;
	b->pos = 0;
	b->rooted = 0;
	bpf_loop(2 * PATH_DEPTH, path_up, NULL, 0);
	if (!b->rooted || !b->n)
		return;
	bpf_loop(PATH_DEPTH, path_put, NULL, 0);
	if (!b->rooted || b->pos >= SHADOW_PATH_MAX)
		return;
	b->path[b->pos & (SHADOW_PATH_MAX - 1)] = '\0';
	__builtin_memcpy(out, b->path, SHADOW_PATH_MAX);
}

/* ret bytes a sendfile() in process tgid sent on tracked connection c from
 * its in_fd, starting at file_off: one SENDFILE record, which user space
 * turns into DATA by reading the file, through the fd or by the path its
 * dentries give. */
static __always_inline void sendfile_emit(struct conn_state *c, __u32 tgid,
					  __u32 in_fd, __u64 file_off, long ret)
{
	struct {
		struct shadow_event h;
		struct shadow_sendfile s;
	} *rec;
	struct file *f;

	if (ret <= 0 || c->tls == TLS_PENDING || c->tls == TLS_UNDECODED)
		return;
	if (cfg_sample_key && c->tls == TLS_PLAIN && answer_passed_over(c, ret))
		return;
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		stat_inc(STAT_LOST);
		/* Still advance the stream, so the reader sees the gap. */
		__sync_fetch_and_add(&c->off[SHADOW_DIR_OUT], ret);
		return;
	}
	rec->h.ts_ns = bpf_ktime_get_ns();
	rec->h.offset = __sync_fetch_and_add(&c->off[SHADOW_DIR_OUT], ret);
	rec->h.tgid = c->tgid;
	rec->h.fd = c->fd;
	rec->h.gen = c->gen;
	rec->h.len = sizeof(rec->s);
	rec->h.size = ret;
	rec->h.kind = SHADOW_EV_SENDFILE;
	rec->h.dir = SHADOW_DIR_OUT;
	rec->h.flags = 0;
	rec->s.file_offset = file_off;
	rec->s.in_fd = in_fd;
	rec->s.tgid = tgid;
	rec->s._pad = 0;
	f = fd_file(in_fd);
	rec->s.ino = f ? BPF_CORE_READ(f, f_inode, i_ino) : 0;
	rec->s.dev = f ? BPF_CORE_READ(f, f_inode, i_sb, s_dev) : 0;
	file_path(f, rec->s.path);
	bpf_ringbuf_submit(rec, wake_flag());
}

/* The data hooks: the sock_recv_length and sock_send_length tracepoints,
 * which fire inside sock_recvmsg/sock_sendmsg, that is only for socket I/O,
 * after the bytes moved, and which cost no other syscall anything. The
 * syscall's own arguments (the fd, the buffer or iovecs) come from the
 * thread's saved registers. Syscall numbers and registers are x86-64's; on
 * kernels without these tracepoints (before 6.4) or on other
 * architectures, user space loads the syscall tracepoint programs below
 * instead. */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDFILE 40
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define MSG_PEEK 2
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000

/* Bytes read from (written to) a TCP socket since it was made, by its
 * own counters, modulo 2^32; *seq gets the sequence number read, for the
 * caller to see whether a segment landed meanwhile. */
static __always_inline __u32 tcp_in_before(struct tcp_sock *tp, __u32 *seq)
{
	__u32 br;

	/* The kernel adds to the count, then moves the sequence number. */
	*seq = BPF_CORE_READ(tp, rcv_nxt);
	br = BPF_CORE_READ(tp, bytes_received);
	return BPF_CORE_READ(tp, copied_seq) - (*seq - br);
}

static __always_inline __u32 tcp_out_before(struct tcp_sock *tp, __u32 *seq)
{
	__u32 ba;

	*seq = BPF_CORE_READ(tp, snd_una);
	ba = BPF_CORE_READ(tp, bytes_acked);
	return BPF_CORE_READ(tp, write_seq) - (*seq - ba);
}

/* Whether bytes moved on TCP socket sk before the I/O of ret bytes in
 * direction dir that the hook is reporting: its own counters, read twice
 * when a segment lands between the reads. */
static __always_inline bool tcp_moved_before(struct sock *sk, __u8 dir,
					     long ret, bool peek)
{
	struct tcp_sock *tp = (void *)sk;
	__u32 in, out, rn, su;

	in = tcp_in_before(tp, &rn);
	out = tcp_out_before(tp, &su);
	if (rn != BPF_CORE_READ(tp, rcv_nxt))
		in = tcp_in_before(tp, &rn);
	if (su != BPF_CORE_READ(tp, snd_una))
		out = tcp_out_before(tp, &su);
	if (dir == SHADOW_DIR_IN && !peek)
		in -= ret;
	else if (dir == SHADOW_DIR_OUT)
		out -= ret;
	return in || out;
}

/* A pointer's value as a number, which global functions may take (the
 * verifier keeps the pointer's type through a cast). */
static __always_inline __u64 ptr_value(void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* Whether sk, unmarked, is a TCP connection on a port listened on at
 * attach: made before attach, and accepted after. One that our side has
 * begun to close (after its end, a lingering close's reads) is not. */
static __always_inline bool queued_at_attach(struct sock *sk)
{
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	__u16 family;

	if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT)
		return false;
	if (!bpf_map_lookup_elem(&listen_ports, &lport))
		return false;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return (family == AF_INET || family == AF_INET6) &&
	       BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) == IPPROTO_TCP;
}

/* Starts tracking socket skp, first seen in I/O on (tgid, fd) of a target,
 * when it is a connection user space found at attach (see conn_found) or a server-side one (a listener made it, or it was in a
 * listener's queue at attach). ret: the bytes the I/O moved (0 when it is
 * yet to run, on the syscall path); dir_peek: its direction, and 2 for a
 * peek. Returns whether it is tracked now. A global function: the birth
 * of a connection is rare, and its records stay off the copy's frames. */
__noinline int sock_conn_new(__u64 skp, __u32 tgid, __u32 fd, __s64 ret,
			     __u32 dir_peek)
{
	struct sock *sk = (struct sock *)skp;
	__u64 t0 = prof_start();
	int born;

	if (conn_found(skp))
		return 1;
	if (!bpf_map_lookup_elem(&srv_new, &skp) && !queued_at_attach(sk))
		return 0;
	bpf_map_delete_elem(&srv_new, &skp);
	born = conn_start(skp, tgid, fd, 0,
			  tcp_moved_before(sk, dir_peek & 1, ret,
					   dir_peek & 2)) != NULL;
	prof_end(PROF_BIRTH, t0);
	return born;
}

/* The tracked connection of socket sk, for the socket hooks, which see no
 * accept() and no close(): a socket becomes one at its first I/O in a
 * target (see sock_conn_new), whichever process and fd that is. NULL for
 * any other socket. */
static __always_inline struct conn_state *sock_conn(__u32 tgid, __u32 fd,
						    struct sock *sk, __u8 dir,
						    long ret, bool peek)
{
	__u64 skp = (__u64)sk;
	struct conn_state *c;

	c = bpf_map_lookup_elem(&conns, &skp);
	if (c)
		return c;
	if (!sock_conn_new(ptr_value(sk), tgid, fd, ret, dir | (peek ? 2 : 0)))
		return NULL;
	return bpf_map_lookup_elem(&conns, &skp);
}

/* A sendfile() chunk seen by the socket hooks: a sendfile() sends its file
 * through the socket in pieces, and the file offset it started at (*offset
 * or the file position) is written back only at its end, so the thread
 * keeps what the current call sent so far. A call is the same as the last
 * one while fds, start and count match and it has not sent all of count. */
__noinline int sock_sendfile(struct conn_state *c, __u64 tgid_fd, __u64 uoff,
			     __u64 count, __u64 in_fd_ret)
{
	struct active *a = bpf_task_storage_get(&actives,
						bpf_get_current_task_btf(), 0,
						BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u32 tgid = tgid_fd >> 32, fd = tgid_fd, in_fd = in_fd_ret >> 32;
	__s32 ret = in_fd_ret;
	__u64 start = 0, at;

	if (!c || ret <= 0)
		return 0;
	if (uoff) {
		bpf_probe_read_user(&start, sizeof(start), (void *)uoff);
	} else {
		struct file *f = fd_file(in_fd);

		if (f)
			start = BPF_CORE_READ(f, f_pos);
	}
	if (!a) {
		stat_inc(STAT_ACTIVE_FULL);
		__sync_fetch_and_add(&c->off[SHADOW_DIR_OUT], ret);
		return 0;
	}
	if (a->kind == ACT_SENDFILE && a->fd == fd && a->in_fd == in_fd &&
	    a->file_off == start && a->buf == count && a->done < count) {
		at = start + a->done;
		a->done += ret;
	} else {
		a->kind = ACT_SENDFILE;
		a->fd = fd;
		a->in_fd = in_fd;
		a->file_off = start;
		a->buf = count;
		a->done = ret;
		at = start;
	}
	sendfile_emit(c, tgid, in_fd, at, ret);
	return 0;
}

static __always_inline void sock_io(struct sock *sk, long ret, int flags,
				    __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	__u64 mi[2];
	struct conn_state *c;
	struct pt_regs *regs;
	__u64 buf = 0, t0;
	__u32 fd, iovcnt = 0;
	bool peek;
	long nr;

	/* Every tracked connection's local port is a server port: the other
	 * sockets of a target (its upstream and database connections, a
	 * --port left out) cost an array index, nothing more. */
	if (!is_target(id >> 32) || !srv_port(sk->__sk_common.skc_num))
		return;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	fd = regs->di;
	/* io_uring's workers are not inside a syscall of their own. */
	nr = task->flags & (PF_KTHREAD | PF_IO_WORKER) ? -1 : regs->orig_ax;
	switch (nr) {
	case NR_READ:
	case NR_RECVFROM:
	case NR_WRITE:
	case NR_SENDTO:
		buf = regs->si;
		break;
	case NR_READV:
	case NR_WRITEV:
		buf = regs->si;
		iovcnt = regs->dx;
		if (!iovcnt)
			return;
		break;
	case NR_RECVMSG:
	case NR_SENDMSG:
		/* msg_iov and msg_iovlen, side by side. */
		if (bpf_probe_read_user(mi, sizeof(mi), (void *)regs->si +
					offsetof(struct user_msghdr, msg_iov)) < 0)
			break;
		buf = mi[0];
		iovcnt = mi[1];
		break;
	case NR_SENDFILE:
		break;
	default:
		/* recvmmsg, splice, io_uring...: no buffer we know how to
		 * find. Only when di really is this socket's fd do its bytes
		 * become a visible gap on the connection. */
		if (ret <= 0)
			return;
		stat_inc(STAT_UNHOOKED);
		if (nr < 0 || (void *)fd_sock(fd) != (void *)sk)
			return;
		break;
	}
	peek = dir == SHADOW_DIR_IN && (flags & MSG_PEEK);
	t0 = prof_start();
	c = io_conn(id, (__u64)sk, dir,
		    sock_conn(id >> 32, fd, sk, dir, ret, peek));
	if (!c)
		return;
	prof_end(PROF_CONN, t0);
	prof_end(PROF_CLOCK, prof_start());
	if (nr == NR_SENDFILE && dir == SHADOW_DIR_OUT) {
		sock_sendfile(c, (id & ~0xffffffffull) | fd, regs->dx, regs->r10,
			      (__u64)regs->si << 32 | (__u32)ret);
		return;
	}
	if (!buf && ret > 0) {
		/* Bytes we cannot locate: a visible gap, not a silent one. */
		__sync_fetch_and_add(&c->off[dir & 1], ret);
		return;
	}
	io_copy_claimed(c, buf, iovcnt, dir, ret, peek);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_sock_recv, struct sock *sk, int ret, int flags)
{
	if (ret >= 0)
		sock_io(sk, ret, flags, SHADOW_DIR_IN);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(handle_sock_send, struct sock *sk, int ret, int flags)
{
	if (ret > 0)
		sock_io(sk, ret, flags, SHADOW_DIR_OUT);
	return 0;
}

/* Connections' ends, on either path: our FIN (FIN_WAIT1, LAST_ACK) or a
 * reset (CLOSE), when the last fd on the socket in any process is closed;
 * a close() of one of several fds (a parent's after it forked the
 * connection's handler, a dup's) is none. With the socket hooks, also
 * their births: a listener making a socket (LISTEN -> SYN_RECV, in
 * softirq: the process is not known yet) marks it server-side. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_tcp_set_state, struct sock *sk, int oldstate,
	     int newstate)
{
	__u64 skp = (__u64)sk;
	__u64 t0 = prof_start();
	struct conn_state *c;
	__u8 one = 1;

	if (newstate == TCP_SYN_RECV) {
		__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);

		if (!cfg_sock_hooks || oldstate != TCP_LISTEN ||
		    (cfg_filter_ports && !bpf_map_lookup_elem(&ports, &lport)))
			return 0;
		bpf_map_update_elem(&srv_new, &skp, &one, BPF_ANY);
		srv_port_add(lport);
		prof_end(PROF_LISTEN, t0);
		return 0;
	}
	if (newstate != TCP_FIN_WAIT1 && newstate != TCP_LAST_ACK &&
	    newstate != TCP_CLOSE)
		return 0;
	/* A connection ends once, when it leaves ESTABLISHED or CLOSE_WAIT
	 * (or SYN_RECV): its later end states (FIN_WAIT1 -> FIN_WAIT2 ->
	 * CLOSE, LAST_ACK -> CLOSE) find nothing to end. And only a server
	 * port's sockets are tracked or marked: the clients' (a load
	 * generator's, a target's upstream ones) end here too, but for a
	 * reset's CLOSE, which comes after the port was let go (0). */
	if (oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 ||
	    oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK ||
	    (newstate != TCP_CLOSE && !srv_port(sk->__sk_common.skc_num)))
		return 0;
	c = bpf_map_lookup_elem(&conns, &skp);
	if (c) {
		conn_end(c, ptr_value(sk));
		prof_end(PROF_END, t0);
	} else if (cfg_sock_hooks) {
		/* Ended before any I/O in a target, if it was one. */
		bpf_map_delete_elem(&srv_new, &skp);
		prof_end(PROF_UNTRACKED, t0);
	}
	return 0;
}

/* The same through syscall tracepoints, for kernels without the sock
 * ones: the arguments are kept from enter to exit per thread. */

/* The socket behind fd of target tgid and its tracked connection in *c
 * (NULL if none), before an I/O in direction dir: the fd table names the
 * socket on every call, so that a forked child's or a dup'ed fd is the
 * same connection and a reused fd number never names the old one. A
 * server-side socket accepted out of our sight (by an accept() that began
 * before attach) starts as the socket hooks' do. 0 if fd is no socket. */
static __always_inline __u64 sys_conn(__u32 tgid, __u32 fd, __u8 dir,
				      struct conn_state **c)
{
	struct sock *sk = fd_sock(fd);
	__u64 skp = (__u64)sk;

	*c = NULL;
	if (!sk)
		return 0;
	/* As sock_conn: only a server port's sockets can be tracked. */
	if (!srv_port(BPF_CORE_READ(sk, __sk_common.skc_num)))
		return skp;
	*c = bpf_map_lookup_elem(&conns, &skp);
	if (!*c && sock_conn_new(skp, tgid, fd, 0, dir))
		*c = bpf_map_lookup_elem(&conns, &skp);
	return skp;
}

static __always_inline void enter_call(__u32 fd, __u64 buf, __u32 iovcnt,
				       __u8 dir, bool peek)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct active a = { .buf = buf, .fd = fd, .iovcnt = iovcnt,
			    .kind = ACT_IO, .dir = dir, .peek = peek };
	struct conn_state *c;

	if (!is_target(id >> 32))
		return;
	a.sk = sys_conn(id >> 32, fd, dir, &c);
	if (a.sk && io_conn(id, a.sk, dir, c))
		active_put(&a);
}

static __always_inline void exit_call(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_state *c;
	struct active *a;

	if (!is_target(id >> 32))
		return;
	a = active_get();
	if (!a)
		return;
	c = a->kind == ACT_IO ? bpf_map_lookup_elem(&conns, &a->sk) : NULL;
	if (c)
		io_copy_claimed(c, a->buf, a->iovcnt, a->dir, ret, a->peek);
	a->kind = 0;
}

/* accept(2) and accept4(2): a new server-side connection maybe. */
static __always_inline void enter_accept(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct active a = { .kind = ACT_ACCEPT };

	if (!is_target(id >> 32))
		return;
	active_put(&a);
}

static __always_inline void exit_accept(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct active *a = active_get();
	struct sock *sk;
	__u16 lport, family;
	__u8 kind;

	if (!a)
		return;
	kind = a->kind;
	a->kind = 0;
	if (ret < 0 || kind != ACT_ACCEPT)
		return;
	sk = fd_sock(ret);
	if (!sk)
		return;
	/* TCP only: the connection ends by its TCP state. */
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) ||
	    BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return;
	lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (cfg_filter_ports && !bpf_map_lookup_elem(&ports, &lport))
		return;
	srv_port_add(lport);
	conn_start((__u64)sk, id >> 32, ret, 0, false);
}

SEC("tracepoint/syscalls/sys_enter_accept")
int handle_sys_enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	enter_accept();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int handle_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	exit_accept(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int handle_sys_enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	enter_accept();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int handle_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	exit_accept(ctx->ret);
	return 0;
}

/* read(fd, buf, count), recvfrom(fd, buf, size, ...): inbound bytes. */
SEC("tracepoint/syscalls/sys_enter_read")
int handle_sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	enter_call(ctx->args[0], ctx->args[1], 0, SHADOW_DIR_IN, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int handle_sys_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int handle_sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	enter_call(ctx->args[0], ctx->args[1], 0, SHADOW_DIR_IN,
		   ctx->args[3] & MSG_PEEK);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int handle_sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

/* readv(fd, iov, iovcnt) */
SEC("tracepoint/syscalls/sys_enter_readv")
int handle_sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	__u32 n = ctx->args[2];

	if (n)
		enter_call(ctx->args[0], ctx->args[1], n, SHADOW_DIR_IN, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_readv")
int handle_sys_exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

static __always_inline void enter_msg(__u32 fd, __u64 umsg, __u8 dir,
				     bool peek)
{
	__u64 mi[2];

	if (!is_target(bpf_get_current_pid_tgid() >> 32))
		return;
	/* msg_iov and msg_iovlen, side by side. */
	if (bpf_probe_read_user(mi, sizeof(mi), (void *)umsg +
				offsetof(struct user_msghdr, msg_iov)) < 0 ||
	    !mi[1])
		return;
	enter_call(fd, mi[0], mi[1], dir, peek);
}

/* recvmsg(fd, msg, flags) */
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int handle_sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	enter_msg(ctx->args[0], ctx->args[1], SHADOW_DIR_IN,
		  ctx->args[2] & MSG_PEEK);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int handle_sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

/* write(fd, buf, count), sendto(fd, buf, len, ...): outbound bytes. */
SEC("tracepoint/syscalls/sys_enter_write")
int handle_sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	enter_call(ctx->args[0], ctx->args[1], 0, SHADOW_DIR_OUT, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int handle_sys_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int handle_sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	enter_call(ctx->args[0], ctx->args[1], 0, SHADOW_DIR_OUT, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int handle_sys_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

/* writev(fd, iov, iovcnt) */
SEC("tracepoint/syscalls/sys_enter_writev")
int handle_sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	__u32 n = ctx->args[2];

	if (n)
		enter_call(ctx->args[0], ctx->args[1], n, SHADOW_DIR_OUT, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int handle_sys_exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

/* sendmsg(fd, msg, flags) */
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int handle_sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	enter_msg(ctx->args[0], ctx->args[1], SHADOW_DIR_OUT, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int handle_sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	exit_call(ctx->ret);
	return 0;
}

/* sendfile(out_fd, in_fd, offset *, count): the bytes come from a file;
 * user space reads them from it, knowing where they started. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int handle_sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct active a = { .kind = ACT_SENDFILE, .fd = ctx->args[0],
			    .in_fd = ctx->args[1], .dir = SHADOW_DIR_OUT };
	__u64 uoff = ctx->args[2];
	struct conn_state *c;

	if (!is_target(id >> 32))
		return 0;
	a.sk = sys_conn(id >> 32, a.fd, SHADOW_DIR_OUT, &c);
	if (!c)
		return 0;
	if (uoff) {
		bpf_probe_read_user(&a.file_off, sizeof(a.file_off),
				    (void *)uoff);
	} else {
		struct file *f = fd_file(a.in_fd);

		if (f)
			a.file_off = BPF_CORE_READ(f, f_pos);
	}
	active_put(&a);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int handle_sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct active *a = is_target(id >> 32) ? active_get() : NULL;
	struct conn_state *c;

	if (!a)
		return 0;
	c = a->kind == ACT_SENDFILE ? bpf_map_lookup_elem(&conns, &a->sk) :
				      NULL;
	if (c)
		sendfile_emit(c, id >> 32, a->in_fd, a->file_off, ctx->ret);
	a->kind = 0;
	return 0;
}

/* SSL_read/SSL_write and friends, in whichever libssl files user space
 * attached these to (per target process, which other processes mapping
 * the same file do not see): only targets count still. */
static __always_inline void ssl_enter(__u64 ssl, __u64 buf, __u64 len_ptr,
				      __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call n = { .ssl = ssl, .buf = buf, .len_ptr = len_ptr,
			      .kind = kind, .depth = 1 };
	struct ssl_call *sc;

	if (!is_target(id >> 32))
		return;
	sc = bpf_map_lookup_elem(&ssl_calls, &id);
	/* A hooked call made from inside another: the outer one's buffer is
	 * what the caller sees. A stale marker (a lost uretprobe) is replaced. */
	if (sc && sc->ssl == ssl && sc->depth < 16) {
		sc->depth++;
		return;
	}
	if (bpf_map_update_elem(&ssl_calls, &id, &n, BPF_ANY) < 0)
		stat_inc(STAT_ACTIVE_FULL);
}

/* ret: the hooked functions return int; the upper half of the register
 * is not theirs. */
static __always_inline void ssl_exit(int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *sc = bpf_map_lookup_elem(&ssl_calls, &id);
	struct conn_state *c;
	struct scratch *s;
	__u64 n = 0, sk;
	__u8 dir;

	if (!sc)
		return;
	if (sc->depth > 1) {
		sc->depth--;
		return;
	}
	if (sc->kind == SSL_K_HANDSHAKE)
		goto out;
	if (sc->len_ptr) {
		/* SSL_read_ex/SSL_write_ex: 1 and the count through a pointer. */
		if (ret == 1 && bpf_probe_read_user(&n, sizeof(n),
						    (void *)sc->len_ptr) < 0)
			n = 0;
	} else if (ret > 0) {
		n = ret;
	}
	if (!n)
		goto out;
	if (sc->sk) {
		sk = sc->sk;
	} else {
		struct ssl_key k = { .ssl = sc->ssl, .tgid = id >> 32 };
		__u64 *v = bpf_map_lookup_elem(&ssl_socks, &k);

		if (!v) {
			/* Buffered plaintext of an object never seen on a
			 * socket (joined after its handshake): lost. */
			stat_inc(STAT_TLS_UNLINKED);
			goto out;
		}
		sk = *v;
	}
	c = bpf_map_lookup_elem(&conns, &sk);
	if (!c)
		goto out;
	c->tls = TLS_DECODED;
	dir = sc->kind == SSL_K_WRITE ? SHADOW_DIR_OUT : SHADOW_DIR_IN;
	s = scratch_claim();
	if (!s) {
		__sync_fetch_and_add(&c->off[dir], n);
		goto out;
	}
	walk_start(&s->w, c, dir, n, sc->buf, 0);
	walk_all();
	scratch_release(s);
out:
	bpf_map_delete_elem(&ssl_calls, &id);
}

/* int SSL_read(SSL *, void *buf, int num) */
SEC("uprobe")
int BPF_KPROBE(handle_ssl_read, void *ssl, void *buf)
{
	ssl_enter((__u64)ssl, (__u64)buf, 0, SSL_K_READ);
	return 0;
}

/* int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes) */
SEC("uprobe")
int BPF_KPROBE(handle_ssl_read_ex, void *ssl, void *buf, __u64 num,
	       __u64 *readbytes)
{
	ssl_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, SSL_K_READ);
	return 0;
}

/* int SSL_write(SSL *, const void *buf, int num) */
SEC("uprobe")
int BPF_KPROBE(handle_ssl_write, void *ssl, void *buf)
{
	ssl_enter((__u64)ssl, (__u64)buf, 0, SSL_K_WRITE);
	return 0;
}

/* int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(handle_ssl_write_ex, void *ssl, void *buf, __u64 num,
	       __u64 *written)
{
	ssl_enter((__u64)ssl, (__u64)buf, (__u64)written, SSL_K_WRITE);
	return 0;
}

/* int SSL_do_handshake(SSL *): its socket I/O ties the object to its fd
 * before any data, and marks the handshake's ciphertext as decodable. */
SEC("uprobe")
int BPF_KPROBE(handle_ssl_do_handshake, void *ssl)
{
	ssl_enter((__u64)ssl, 0, 0, SSL_K_HANDSHAKE);
	return 0;
}

/* One return probe serves all five: the marker says which call it was. */
SEC("uretprobe")
int BPF_KRETPROBE(handle_ssl_return, long ret)
{
	ssl_exit((int)ret);
	return 0;
}

/* A target's children are targets: nginx's workers under its master. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_sched_process_fork, struct task_struct *parent,
	     struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (ctgid != ptgid && is_target(ptgid))
		target_mark(ctgid, true);
	return 0;
}

/* A process that starts running a --exe executable becomes a target. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);
	struct exe_key k = {};
	__u32 tgid = BPF_CORE_READ(p, tgid);

	k.ino = BPF_CORE_READ(ino, i_ino);
	k.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	if (bpf_map_lookup_elem(&exes, &k))
		target_mark(tgid, true);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_sched_process_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 pid = BPF_CORE_READ(p, pid);
	__u64 id = (__u64)tgid << 32 | pid;

	/* A thread that dies inside an SSL call leaves no marker behind. */
	bpf_map_delete_elem(&ssl_calls, &id);
	if (pid == tgid && is_target(tgid))
		target_mark(tgid, false);
	return 0;
}
