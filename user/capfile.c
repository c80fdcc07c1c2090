// SPDX-License-Identifier: BSD-2-Clause
#include "capfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shadow_event.h"

/* Most payload bytes one record may claim; larger is corruption. */
#define CAPFILE_MAX_PAYLOAD (SHADOW_CHUNK_MAX * 4)

struct capfile_writer {
	FILE *f;
};

struct capfile_reader {
	const uint8_t *buf; /* whole input */
	size_t len, pos;
	void *map;          /* mmap of a file, or NULL for memory input */
	size_t map_len;
	struct shadow_cap_header hdr;
	struct shadow_event ev; /* aligned copy of the current header */
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

struct capfile_writer *capfile_open_writer(const char *path)
{
	struct shadow_cap_header h = { .version = SHADOW_CAP_VERSION,
				       .header_size = sizeof(h) };
	struct capfile_writer *w = NULL;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->f = fdopen(fd, "wb"))) {
		int e = errno;

		close(fd);
		free(w);
		errno = e;
		return NULL;
	}
	memcpy(h.magic, SHADOW_CAP_MAGIC, sizeof(h.magic));
	h.mono_base_ns = clock_ns(CLOCK_MONOTONIC);
	h.real_base_ns = clock_ns(CLOCK_REALTIME);
	if (fwrite(&h, sizeof(h), 1, w->f) != 1) {
		int e = errno;

		fclose(w->f);
		free(w);
		errno = e;
		return NULL;
	}
	return w;
}

int capfile_write(struct capfile_writer *w, const struct shadow_event *ev,
		  const void *payload)
{
	static const uint8_t zeros[8];
	size_t total = sizeof(*ev) + ev->len;

	if (fwrite(ev, sizeof(*ev), 1, w->f) != 1 ||
	    (ev->len && fwrite(payload, ev->len, 1, w->f) != 1) ||
	    (pad8(total) != total &&
	     fwrite(zeros, pad8(total) - total, 1, w->f) != 1))
		return errno ? -errno : -EIO;
	return 0;
}

int capfile_close_writer(struct capfile_writer *w)
{
	int rc = 0;

	if (!w)
		return 0;
	if (fclose(w->f) != 0)
		rc = -errno;
	free(w);
	return rc;
}

struct capfile_reader *capfile_open_reader_mem(const void *buf, size_t len, int raw,
					char *err, size_t errlen)
{
	struct capfile_reader *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->buf = buf;
	r->len = len;
	if (raw)
		return r;
	if (len < sizeof(r->hdr) ||
	    memcmp(buf, SHADOW_CAP_MAGIC, sizeof(r->hdr.magic)) != 0) {
		snprintf(err, errlen, "not a request-shadow capture file");
		goto fail;
	}
	memcpy(&r->hdr, buf, sizeof(r->hdr));
	if (r->hdr.version > SHADOW_CAP_VERSION) {
		snprintf(err, errlen,
			 "capture file version %u is newer than this shadowd "
			 "reads (%u); upgrade shadowd", r->hdr.version,
			 SHADOW_CAP_VERSION);
		goto fail;
	}
	if (r->hdr.header_size < sizeof(r->hdr) || r->hdr.header_size > len) {
		snprintf(err, errlen, "capture file header is damaged");
		goto fail;
	}
	r->pos = r->hdr.header_size;
	return r;
fail:
	free(r);
	return NULL;
}

struct capfile_reader *capfile_open_reader(const char *path, char *err, size_t errlen)
{
	struct capfile_reader *r;
	struct stat st;
	void *map = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_size > 0) {
		map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %s: %s", path,
				 strerror(errno));
			close(fd);
			return NULL;
		}
	}
	close(fd);
	r = capfile_open_reader_mem(map ? map : "", st.st_size, 0, err, errlen);
	if (!r) {
		if (map)
			munmap(map, st.st_size);
		return NULL;
	}
	r->map = map;
	r->map_len = st.st_size;
	return r;
}

int capfile_next(struct capfile_reader *r, const struct shadow_event **ev,
		 const void **payload, char *err, size_t errlen)
{
	size_t left = r->len - r->pos;

	if (left == 0)
		return 0;
	if (left < sizeof(r->ev)) {
		snprintf(err, errlen, "capture truncated at byte %zu", r->pos);
		return -EINVAL;
	}
	memcpy(&r->ev, r->buf + r->pos, sizeof(r->ev));
	if (r->ev.len > CAPFILE_MAX_PAYLOAD ||
	    r->ev.len > left - sizeof(r->ev)) {
		snprintf(err, errlen, "capture record at byte %zu is %s",
			 r->pos, r->ev.len > CAPFILE_MAX_PAYLOAD ?
			 "malformed" : "truncated");
		return -EINVAL;
	}
	*ev = &r->ev;
	*payload = r->buf + r->pos + sizeof(r->ev);
	r->pos += sizeof(r->ev) + r->ev.len;
	/* The final record's padding may be cut by a killed writer. */
	r->pos = pad8(r->pos) <= r->len ? pad8(r->pos) : r->len;
	return 1;
}

uint64_t capfile_mono_base(const struct capfile_reader *r)
{
	return r->hdr.mono_base_ns;
}

uint64_t capfile_real_base(const struct capfile_reader *r)
{
	return r->hdr.real_base_ns;
}

void capfile_close_reader(struct capfile_reader *r)
{
	if (!r)
		return;
	if (r->map)
		munmap(r->map, r->map_len);
	free(r);
}
