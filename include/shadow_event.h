/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel <-> user ABI of request-shadow: the records the BPF programs put
 * on the ring buffer, and (with a file header in front) the records of a
 * capture file written by `shadowd --record`. Nothing else lives here.
 *
 * Every record is a struct shadow_event followed by `len` payload bytes.
 * Records are not padded to a fixed size: a 90-byte read costs
 * sizeof(struct shadow_event) + 90 bytes. A capture file stores records
 * back to back, each rounded up to 8 bytes.
 */
#ifndef SHADOW_SHADOW_EVENT_H
#define SHADOW_SHADOW_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Largest payload of one data record; longer syscalls are split. */
#define SHADOW_CHUNK_MAX 16384u
/* Most iovec entries walked per readv/writev/recvmsg/sendmsg. */
#define SHADOW_IOV_MAX 32u

enum shadow_event_kind {
	/* A connection became tracked. Payload: struct shadow_open. */
	SHADOW_EV_OPEN = 1,
	/* Bytes of one direction at `offset`. Payload: the bytes. `size` is
	 * the number of stream bytes the record stands for; when it exceeds
	 * `len` the rest was not captured (a gap the reader can see). */
	SHADOW_EV_DATA = 2,
	/* The target closed the fd. Payload: struct shadow_close (absent in
	 * version 1 files written before it existed), then, with
	 * SHADOW_F_AFTER_SKIP, the SKIP of the answer before it. */
	SHADOW_EV_CLOSE = 3,
	/* sendfile() wrote `size` bytes from another file at `offset` of the
	 * outbound stream. Payload: struct shadow_sendfile. User space turns
	 * it into DATA (reading the file) before anything else sees it. */
	SHADOW_EV_SENDFILE = 4,
	/* Capture files only: records lost before this point (ring buffer
	 * full). `offset` carries the count. No payload. */
	SHADOW_EV_LOST = 5,
	/* An outbound range the kernel did not copy: the whole answer to the
	 * request read just before it, which the sampling decided in the
	 * kernel left unsampled (or shed). `offset` and `size` give the range, ts_ns
	 * its first write. Payload: struct shadow_skip. */
	SHADOW_EV_SKIP = 6,
	/* Inbound: a request head the kernel did not copy whole. Its
	 * payload, "METHOD SP target", stands for the `size` bytes at
	 * `offset`: exactly one request head, of a method without a body
	 * (GET, HEAD, OPTIONS), that the kernel left unsampled (or shed:
	 * SHADOW_F_SHED_*). A SKIP for its answer follows, unless a later read of the same request undid
	 * the decision (the answer is then copied). With SHADOW_F_AFTER_SKIP
	 * the record also carries the SKIP of the answer before it. */
	SHADOW_EV_REQLINE = 7,
};

enum shadow_dir {
	SHADOW_DIR_IN = 0,  /* read by the server: requests */
	SHADOW_DIR_OUT = 1, /* written by the server: responses */
};

enum shadow_event_flags {
	/* OPEN: the connection existed before attach; its streams start at an
	 * arbitrary point and the reader must resync at a request boundary. */
	SHADOW_F_MIDSTREAM = 1u << 0,
	/* DATA: the bytes stand for part of a sendfile() whose source file
	 * could not be read; `len` is 0 and `size` bytes are missing. */
	SHADOW_F_UNAVAILABLE = 1u << 1,
	/* REQLINE, CLOSE: the payload ends with a struct shadow_skip_before,
	 * the SKIP of the previous answer, to be taken before the request
	 * line or the close (one record instead of two). */
	SHADOW_F_AFTER_SKIP = 1u << 2,
	/* REQLINE: the request was sampled, but the daemon was shedding when
	 * the kernel read it (enum shadow_shed, written to the program's
	 * shed_now while the replay queue is full or the candidate's breaker
	 * open), so it was passed over like an unsampled one. */
	SHADOW_F_SHED_QUEUE = 1u << 3,
	SHADOW_F_SHED_BREAKER = 1u << 4,
};

struct shadow_event {
	__u64 ts_ns;  /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 offset; /* byte offset of the first byte in its direction */
	/* The connection: the process and fd it was first seen on (a forked
	 * child or a dup'ed fd moving its bytes later does not rename it),
	 * and a generation that changes whenever (tgid, fd) names a new one. */
	__u32 tgid;
	__u32 fd;
	__u32 gen;
	__u32 len;  /* payload bytes following this header */
	__u32 size; /* stream bytes this record stands for (>= len) */
	__u8 kind;  /* enum shadow_event_kind */
	__u8 dir;   /* enum shadow_dir */
	__u16 flags;
};
_Static_assert(sizeof(struct shadow_event) == 40, "shadow_event ABI");

struct shadow_open {
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 lport;  /* host byte order */
	__u16 rport;  /* host byte order */
	__u16 _pad;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
};
_Static_assert(sizeof(struct shadow_open) == 40, "shadow_open ABI");

/* Longest source-file path a SENDFILE record carries. */
#define SHADOW_PATH_MAX 256

struct shadow_sendfile {
	__u64 file_offset; /* where in the source file the bytes came from */
	__u64 ino;         /* the source file's inode number ... */
	__u32 dev;         /* ... and device (kernel encoding MAJOR<<20|MINOR) */
	__u32 in_fd;       /* the source fd ... */
	__u32 tgid;        /* ... in this process (the connection may be
	                    * named after another, see shadow_event) */
	__u32 _pad;
	/* The path the target opened it by (NUL-terminated, "" if unknown):
	 * the fd is often closed before user space can read through it. */
	char path[SHADOW_PATH_MAX];
};
_Static_assert(sizeof(struct shadow_sendfile) == 288, "shadow_sendfile ABI");

enum shadow_close_flags {
	/* The target read end-of-file before closing: the client closed. */
	SHADOW_CLOSE_PEER_EOF = 1u << 0,
};

struct shadow_close {
	/* Stream offsets at the close, per direction: what the reader did
	 * not receive before this record was lost at the end. */
	__u64 final_offset[2];
	__u32 flags; /* enum shadow_close_flags */
	__u32 _pad;
};
_Static_assert(sizeof(struct shadow_close) == 24, "shadow_close ABI");

struct shadow_skip {
	__u64 last_ts_ns; /* the range's last write */
};
_Static_assert(sizeof(struct shadow_skip) == 8, "shadow_skip ABI");

/* A SKIP carried at the end of a REQLINE or CLOSE (SHADOW_F_AFTER_SKIP): the
 * outbound range's offset, size, first and last write. */
struct shadow_skip_before {
	__u64 offset;
	__u64 size;
	__u64 ts_ns;
	__u64 last_ts_ns;
};
_Static_assert(sizeof(struct shadow_skip_before) == 32,
	       "shadow_skip_before ABI");

/* Not a record: the key of the sampling decided in the kernel, which user
 * space sets in the programs before loading them (bpf/sample_key.h). */
enum shadow_sample_key {
	SHADOW_SAMPLE_NONE = 0,    /* user space decides; all is copied */
	SHADOW_SAMPLE_REQUEST = 1, /* "METHOD SP target" */
	SHADOW_SAMPLE_PATH = 2,    /* the target up to '?' */
};

/* Not a record either: why the kernel passes sampled requests over, which
 * the daemon writes to the programs' shed_now while attached. */
enum shadow_shed {
	SHADOW_SHED_NONE = 0,
	SHADOW_SHED_QUEUE = 1,   /* the replay queue is full */
	SHADOW_SHED_BREAKER = 2, /* the candidate's breaker is open */
};

/* Capture file: this header, then records. */
#define SHADOW_CAP_MAGIC "SHDWCAP\0"
#define SHADOW_CAP_VERSION 1u

struct shadow_cap_header {
	char magic[8];     /* SHADOW_CAP_MAGIC */
	__u32 version;     /* SHADOW_CAP_VERSION */
	__u32 header_size; /* sizeof(struct shadow_cap_header) */
	__u64 mono_base_ns; /* CLOCK_MONOTONIC at recording start ... */
	__u64 real_base_ns; /* ... and CLOCK_REALTIME at the same moment */
};
_Static_assert(sizeof(struct shadow_cap_header) == 32, "cap header ABI");

#endif /* SHADOW_SHADOW_EVENT_H */
