// SPDX-License-Identifier: BSD-2-Clause
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "diff.h"
#include "divergence.h"
#include "endpoint.h"
#include "replay.h"
#include "util/dbuf.h"
#include "util/hist.h"
#include "util/strmap.h"

/* 'SHDW': set on every store so a foreign SQLite file is recognised. */
#define STORE_APP_ID 0x53484457
/* store_put() flushes by itself once this many records are queued. */
#define STORE_BATCH_MAX 4096
/* A failing disk must not eat the daemon's memory: past this many queued
 * records new ones are dropped (and store_put says so). */
#define STORE_PENDING_HARD_MAX (16 * STORE_BATCH_MAX)
/* Distinct (endpoint, path) field counts queued before a flush is forced. */
#define STORE_FIELDS_MAX 65536
/* Header names and body paths that make up a signature, at most. */
#define SIG_MAX_KEYS 64
#define TOP_FIELDS 10

/* Counter slot after the public ones: records evicted from this endpoint. */
#define C_EVICTED STORE_N_COUNTERS
#define N_SLOTS (STORE_N_COUNTERS + 1)

/* A counter slot's stats key: the public counters' (store_counter.h),
 * then "evicted". */
static const char *slot_name(int c)
{
	return c == C_EVICTED ? "evicted" : store_counter_name(c);
}

static const char *const capture_names[STORE_N_CAPTURE] = {
	"lost_events", "gaps", "parse_errors", "truncated", "tls_undecoded",
};

static const char *const default_redact[] = {
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};

/* The schema, one step per version: migrations[v] takes v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE signatures(hash INTEGER PRIMARY KEY,"
	" endpoint TEXT NOT NULL, parts INTEGER NOT NULL,"
	" header_names TEXT NOT NULL, paths TEXT NOT NULL,"
	" count INTEGER NOT NULL, first_ms INTEGER NOT NULL,"
	" last_ms INTEGER NOT NULL);"
	"CREATE TABLE records(id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
	" sig INTEGER NOT NULL, endpoint TEXT NOT NULL, parts INTEGER NOT NULL,"
	" json TEXT NOT NULL);"
	"CREATE INDEX records_sig ON records(sig, id);"
	"CREATE TABLE counters(endpoint TEXT NOT NULL, name TEXT NOT NULL,"
	" value INTEGER NOT NULL, PRIMARY KEY(endpoint, name)) WITHOUT ROWID;"
	"CREATE TABLE latency(endpoint TEXT NOT NULL, side INTEGER NOT NULL,"
	" bucket INTEGER NOT NULL, count INTEGER NOT NULL,"
	" PRIMARY KEY(endpoint, side, bucket)) WITHOUT ROWID;"
	"CREATE TABLE errors(endpoint TEXT NOT NULL, class TEXT NOT NULL,"
	" count INTEGER NOT NULL, PRIMARY KEY(endpoint, class)) WITHOUT ROWID;"
	"CREATE TABLE fields(endpoint TEXT NOT NULL, path TEXT NOT NULL,"
	" raw INTEGER NOT NULL, noise INTEGER NOT NULL,"
	" PRIMARY KEY(endpoint, path)) WITHOUT ROWID;"
	"CREATE TABLE capture(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;",
};

/* ---- in-memory state of the writer ---- */

/* Per endpoint: deltas not yet written. */
struct ep {
	const char *name; /* the map key */
	uint64_t d[N_SLOTS];
	uint64_t err[REPLAY_N_ERROR_CLASSES]; /* by class, see replay.h */
	struct hist *lat[2]; /* primary, candidate; allocated on first use */
	bool dirty;
};

/* Per signature: what the database holds plus deltas not yet written. */
struct sig {
	int64_t hash;
	char *endpoint;
	unsigned parts;
	char *header_names; /* JSON array text */
	char *paths;        /* JSON array text */
	uint64_t count_delta;
	int64_t first_ms, last_ms;
	/* ids of the records this signature keeps, oldest first */
	int64_t *ids;
	size_t n_ids, cap_ids;
	size_t heap_idx; /* position in store.heap */
};

struct field {
	char *endpoint, *path;
	uint64_t raw, noise;
};

struct pending {
	char *text; /* the record's JSON; NULL: evicted before it was written */
	int64_t id, time_ms;
	struct sig *sig;
};

struct store {
	sqlite3 *db;
	bool writer;
	char *path;
	size_t max_records, examples;
	char **redact;
	size_t n_redact;

	struct strmap eps, sigs, fields;
	size_t n_records; /* kept records, written or queued */
	int64_t next_id;

	/* every signature, the one to evict from on top */
	struct sig **heap;
	size_t n_heap, cap_heap;

	struct pending *pend;
	size_t n_pend, cap_pend;
	int64_t *dels; /* written records evicted since the last flush */
	size_t n_dels, cap_dels;

	uint64_t cap_base[STORE_N_CAPTURE], cap_cur[STORE_N_CAPTURE];
	bool cap_dirty;
	bool dirty; /* anything queued since the last flush */
	char *dump_buf; /* reused by record_text() */
	size_t dump_cap;

	sqlite3_stmt *ins_rec, *del_rec, *up_sig, *up_cnt, *up_lat, *up_err,
		*up_fld, *up_cap, *up_meta;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-11-28T20:50:49.123Z" into buf (at least 32 bytes). */
static void iso_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	if (!strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf + strlen(buf), len - strlen(buf), ".%03uZ",
		 (unsigned)(ms % 1000 + 1000) % 1000);
}

static int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void free_ep(void *p)
{
	struct ep *e = p;

	if (!e)
		return;
	free(e->lat[0]);
	free(e->lat[1]);
	free(e);
}

static void free_sig(void *p)
{
	struct sig *g = p;

	if (!g)
		return;
	free(g->endpoint);
	free(g->header_names);
	free(g->paths);
	free(g->ids);
	free(g);
}

static void free_field(void *p)
{
	struct field *f = p;

	if (!f)
		return;
	free(f->endpoint);
	free(f->path);
	free(f);
}

/* The endpoint's delta slot, created on first use; NULL on ENOMEM. */
static struct ep *ep_get(struct store *s, const char *name)
{
	struct strmap_ent *me;
	struct ep *e;

	if (!name || !*name)
		name = ENDPOINT_NONE;
	me = strmap_find(&s->eps, name);
	if (me)
		return me->val;
	if (s->eps.n >= ENDPOINT_MAX_COUNTED) {
		name = ENDPOINT_OTHER;
		me = strmap_find(&s->eps, name);
		if (me)
			return me->val;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	me = strmap_insert(&s->eps, name, e);
	if (!me) {
		free(e);
		return NULL;
	}
	e->name = me->key;
	return e;
}

static int sig_insert(struct store *s, struct sig *g);
static void heap_down(struct store *s, size_t i);

/* ---- opening ---- */

static int exec(sqlite3 *db, const char *sql)
{
	return sql_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* Checks the schema version and the application id; migrates when
 * `migrate`. 0 or -errno with one line in err. */
static int check_schema(struct store *s, bool migrate, char *err, size_t errlen)
{
	int64_t ver = 0, app = 0, ntables = 0;
	int rc;

	rc = pragma_int(s->db, "PRAGMA user_version", &ver);
	if (rc == SQLITE_OK)
		rc = pragma_int(s->db, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = pragma_int(s->db, "SELECT count(*) FROM sqlite_master", &ntables);
	if (rc != SQLITE_OK) {
		seterr(err, errlen, "%s: not a readable store (%s)", s->path,
		       sqlite3_errmsg(s->db));
		return sql_errno(rc) == -EBUSY ? -EBUSY : -EINVAL;
	}
	if ((ver > 0 && app != STORE_APP_ID) || (ver == 0 && ntables > 0)) {
		seterr(err, errlen, "%s: an SQLite file but not a request-shadow store",
		       s->path);
		return -EINVAL;
	}
	if (ver > STORE_SCHEMA_VERSION) {
		seterr(err, errlen,
		       "%s: written by a newer request-shadow (schema %lld, this build reads %d); upgrade shadow-dump",
		       s->path, (long long)ver, STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (ver == STORE_SCHEMA_VERSION)
		return 0;
	if (!migrate) {
		seterr(err, errlen, "%s: %s", s->path,
		       ver ? "written by an older schema; open it with shadowd once to migrate"
			   : "empty store (no divergence recorded yet)");
		return -EINVAL;
	}
	rc = exec(s->db, "BEGIN IMMEDIATE");
	for (int64_t v = ver; !rc && v < STORE_SCHEMA_VERSION; v++)
		rc = exec(s->db, migrations[v]);
	if (!rc) {
		char sql[96];

		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
			 STORE_SCHEMA_VERSION, STORE_APP_ID);
		rc = exec(s->db, sql);
	}
	if (!rc)
		rc = exec(s->db, "COMMIT");
	if (rc) {
		seterr(err, errlen, "%s: cannot create the schema: %s", s->path,
		       sqlite3_errmsg(s->db));
		exec(s->db, "ROLLBACK");
	}
	return rc;
}

static int prepare(struct store *s, sqlite3_stmt **st, const char *sql)
{
	return sql_errno(sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					    st, NULL));
}

static int prepare_writer(struct store *s)
{
	int rc = 0;

	rc = rc ? rc : prepare(s, &s->ins_rec,
		"INSERT OR REPLACE INTO records(id, time_ms, sig, endpoint, parts, json)"
		" VALUES(?, ?, ?, ?, ?, ?)");
	rc = rc ? rc : prepare(s, &s->del_rec, "DELETE FROM records WHERE id = ?");
	rc = rc ? rc : prepare(s, &s->up_sig,
		"INSERT INTO signatures(hash, endpoint, parts, header_names, paths,"
		" count, first_ms, last_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"
		" ON CONFLICT(hash) DO UPDATE SET count = count + excluded.count,"
		" first_ms = min(first_ms, excluded.first_ms),"
		" last_ms = max(last_ms, excluded.last_ms)");
	rc = rc ? rc : prepare(s, &s->up_cnt,
		"INSERT INTO counters(endpoint, name, value) VALUES(?, ?, ?)"
		" ON CONFLICT(endpoint, name) DO UPDATE SET value = value + excluded.value");
	rc = rc ? rc : prepare(s, &s->up_lat,
		"INSERT INTO latency(endpoint, side, bucket, count) VALUES(?, ?, ?, ?)"
		" ON CONFLICT(endpoint, side, bucket) DO UPDATE SET count = count + excluded.count");
	rc = rc ? rc : prepare(s, &s->up_err,
		"INSERT INTO errors(endpoint, class, count) VALUES(?, ?, ?)"
		" ON CONFLICT(endpoint, class) DO UPDATE SET count = count + excluded.count");
	rc = rc ? rc : prepare(s, &s->up_fld,
		"INSERT INTO fields(endpoint, path, raw, noise) VALUES(?, ?, ?, ?)"
		" ON CONFLICT(endpoint, path) DO UPDATE SET raw = raw + excluded.raw,"
		" noise = noise + excluded.noise");
	rc = rc ? rc : prepare(s, &s->up_cap,
		"INSERT OR REPLACE INTO capture(name, value) VALUES(?, ?)");
	rc = rc ? rc : prepare(s, &s->up_meta,
		"INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
	return rc;
}

static int sig_push_id(struct sig *g, int64_t id)
{
	if (vec_reserve(g->ids, g->cap_ids, g->n_ids + 1) < 0)
		return -ENOMEM;
	g->ids[g->n_ids++] = id;
	return 0;
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return strdup(t ? (const char *)t : "");
}

static struct sig *sig_lookup(struct store *s, int64_t hash)
{
	char key[24];
	struct strmap_ent *me;

	snprintf(key, sizeof(key), "%016llx", (unsigned long long)hash);
	me = strmap_find(&s->sigs, key);
	return me ? me->val : NULL;
}

/* Loads the signatures, the ids of the records they keep, the next id and
 * the capture counters' base into memory. */
static int load_state(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t max_id = 0, next = 0;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT hash, endpoint, parts, header_names,"
				" paths FROM signatures", -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sig *g = calloc(1, sizeof(*g));

		if (!g) {
			err = -ENOMEM;
			goto cleanup;
		}
		g->hash = sqlite3_column_int64(st, 0);
		g->endpoint = dup_col(st, 1);
		g->parts = (unsigned)sqlite3_column_int(st, 2);
		g->header_names = dup_col(st, 3);
		g->paths = dup_col(st, 4);
		if (sig_insert(s, g)) {
			err = -ENOMEM;
			goto cleanup;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);
	st = NULL;

	rc = sqlite3_prepare_v2(s->db, "SELECT id, sig FROM records ORDER BY id",
				-1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct sig *g = sig_lookup(s, sqlite3_column_int64(st, 1));

		max_id = id;
		rc = SQLITE_OK;
		if (!g)
			continue; /* orphan: never evicted, harmless */
		if (sig_push_id(g, id)) {
			err = -ENOMEM;
			goto cleanup;
		}
		s->n_records++;
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = s->n_heap / 2; i-- > 0;)
		heap_down(s, i);

	rc = pragma_int(s->db, "SELECT coalesce((SELECT value FROM meta"
			" WHERE key = 'next_id'), 1)", &next);
	if (rc != SQLITE_OK)
		goto sqlfail;
	s->next_id = next > max_id ? next : max_id + 1;

	rc = sqlite3_prepare_v2(s->db, "SELECT name, value FROM capture", -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);

		for (int i = 0; n && i < STORE_N_CAPTURE; i++)
			if (!strcmp(n, capture_names[i]))
				s->cap_base[i] = (uint64_t)sqlite3_column_int64(st, 1);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	goto cleanup;
sqlfail:
	err = sql_errno(rc) ? sql_errno(rc) : -EIO;
cleanup:
	sqlite3_finalize(st);
	return err;
}

static struct store *store_alloc(const char *path)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return NULL;
	}
	return s;
}

int store_open(const struct store_config *cfg, struct store **out, char *err,
	       size_t errlen)
{
	struct store *s = NULL;
	mode_t old_mask;
	int fd, rc = -ENOMEM;
	size_t n;

	if (!cfg || !cfg->path || !*cfg->path || !out) {
		seterr(err, errlen, "no store path given");
		return -EINVAL;
	}
	s = store_alloc(cfg->path);
	if (!s) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->writer = true;
	s->max_records = cfg->max_records ? cfg->max_records : STORE_DEFAULT_MAX_RECORDS;
	s->examples = cfg->examples ? cfg->examples : STORE_DEFAULT_EXAMPLES;
	n = 4 + cfg->n_redact;
	s->redact = calloc(n, sizeof(*s->redact));
	if (!s->redact)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const char *r = i < 4 ? default_redact[i] : cfg->redact[i - 4];

		if (!r)
			continue;
		s->redact[s->n_redact] = strdup(r);
		if (!s->redact[s->n_redact++])
			goto fail;
	}

	/* The database, its -wal and its -shm are all created 0600: SQLite
	 * gives the side files the main file's mode, and umask covers the
	 * moment in between. */
	old_mask = umask(077);
	fd = open(cfg->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		umask(old_mask);
		seterr(err, errlen, "%s: cannot create the store: %s", cfg->path,
		       strerror(-rc));
		goto fail_quiet;
	}
	close(fd);
	rc = sql_errno(sqlite3_open_v2(cfg->path, &s->db,
				       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				       NULL));
	if (!rc) {
		sqlite3_busy_timeout(s->db, 5000);
		rc = exec(s->db, "PRAGMA journal_mode = WAL");
		/* NORMAL in WAL mode: a commit is durable against a crash of the
		 * process (kill -9), fsync only at checkpoints. A larger WAL
		 * makes those rarer; it is cut back after each checkpoint. */
		if (!rc)
			rc = exec(s->db, "PRAGMA synchronous = NORMAL;"
				  "PRAGMA wal_autocheckpoint = 8192;"
				  "PRAGMA journal_size_limit = 67108864;"
				  "PRAGMA cache_size = -16384");
	}
	if (rc) {
		umask(old_mask);
		seterr(err, errlen, "%s: cannot open the store: %s", cfg->path,
		       s->db ? sqlite3_errmsg(s->db) : strerror(-rc));
		rc = rc == -EBUSY ? rc : -EINVAL;
		goto fail_quiet;
	}
	rc = check_schema(s, true, err, errlen);
	umask(old_mask);
	if (rc)
		goto fail_quiet;
	rc = prepare_writer(s);
	if (!rc)
		rc = load_state(s);
	if (rc) {
		seterr(err, errlen, "%s: cannot read the store: %s", cfg->path,
		       sqlite3_errmsg(s->db));
		goto fail_quiet;
	}
	*out = s;
	return 0;
fail:
	seterr(err, errlen, "out of memory");
fail_quiet:
	s->writer = false; /* nothing to flush */
	store_close(s);
	return rc;
}

int store_open_reader(const char *path, struct store **out, char *err,
		      size_t errlen)
{
	struct store *s = NULL;
	struct stat sb;
	int rc;

	if (!path || !out) {
		seterr(err, errlen, "no store path given");
		return -EINVAL;
	}
	if (stat(path, &sb) < 0) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, rc == -ENOENT ?
		       "no such store (give the path shadowd wrote with --store PATH)"
		       : strerror(-rc));
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		seterr(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	s = store_alloc(path);
	if (!s) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = sql_errno(sqlite3_open_v2(path, &s->db,
				       SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
				       NULL));
	if (rc) {
		seterr(err, errlen, "%s: cannot open the store: %s", path,
		       s->db ? sqlite3_errmsg(s->db) : strerror(-rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	rc = check_schema(s, false, err, errlen);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->writer && s->db && store_flush(s))
		fprintf(stderr, "store: %s: last flush failed: %s\n", s->path,
			sqlite3_errmsg(s->db));
	sqlite3_finalize(s->ins_rec);
	sqlite3_finalize(s->del_rec);
	sqlite3_finalize(s->up_sig);
	sqlite3_finalize(s->up_cnt);
	sqlite3_finalize(s->up_lat);
	sqlite3_finalize(s->up_err);
	sqlite3_finalize(s->up_fld);
	sqlite3_finalize(s->up_cap);
	sqlite3_finalize(s->up_meta);
	sqlite3_close(s->db);
	for (size_t i = 0; i < s->n_pend; i++)
		free(s->pend[i].text);
	free(s->pend);
	free(s->dels);
	free(s->dump_buf);
	strmap_free(&s->eps, free_ep);
	strmap_free(&s->sigs, free_sig);
	free(s->heap);
	strmap_free(&s->fields, free_field);
	for (size_t i = 0; i < s->n_redact; i++)
		free(s->redact[i]);
	free(s->redact);
	free(s->path);
	free(s);
}

/* ---- writer: queueing ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted, distinct header names or body paths of a record. */
struct keyset {
	char *k[SIG_MAX_KEYS];
	size_t n;
};

static void keyset_clean(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->k[i]);
	ks->n = 0;
}

/*
 * Collects the strings at key `field` of each element of `diffs` (header
 * names lowercased; array indices in paths become [*], so the same
 * divergence at another position is the same signature), sorted and
 * distinct. 0 or -ENOMEM.
 */
static int keyset_collect(struct keyset *ks, json_t *diffs, const char *field,
			  bool lower)
{
	size_t i, j;
	json_t *d;

	ks->n = 0;
	json_array_foreach(diffs, i, d) {
		const char *v = json_string_value(json_object_get(d, field));
		char *k, *o;

		if (!v || ks->n == SIG_MAX_KEYS)
			continue;
		k = malloc(strlen(v) * 3 + 1); /* "[7]" -> "[*]" never grows */
		if (!k) {
			keyset_clean(ks);
			return -ENOMEM;
		}
		for (o = k; *v; v++) {
			if (lower) {
				*o++ = (char)tolower((unsigned char)*v);
			} else if (*v == '[' && v[1] >= '0' && v[1] <= '9') {
				const char *e = v + 1;

				while (*e >= '0' && *e <= '9')
					e++;
				if (*e == ']') {
					memcpy(o, "[*]", 3);
					o += 3;
					v = e;
				} else {
					*o++ = *v;
				}
			} else {
				*o++ = *v;
			}
		}
		*o = '\0';
		ks->k[ks->n++] = k;
	}
	qsort(ks->k, ks->n, sizeof(ks->k[0]), cmp_str);
	for (i = j = 0; i < ks->n; i++) {
		if (j && !strcmp(ks->k[i], ks->k[j - 1]))
			free(ks->k[i]); /* duplicate */
		else
			ks->k[j++] = ks->k[i];
	}
	ks->n = j;
	return 0;
}

static uint64_t keyset_hash(const struct keyset *ks, uint64_t seed)
{
	seed = XXH3_64bits_withSeed("\x1e", 1, seed);
	for (size_t i = 0; i < ks->n; i++)
		seed = XXH3_64bits_withSeed(ks->k[i], strlen(ks->k[i]) + 1, seed);
	return seed;
}

/* The keys as JSON array text (caller frees), NULL on ENOMEM. */
static char *keyset_json(const struct keyset *ks)
{
	json_t *arr = json_array();
	char *out = NULL;

	if (!arr)
		return NULL;
	for (size_t i = 0; i < ks->n; i++)
		if (json_array_append_new(arr, json_string(ks->k[i])))
			goto cleanup;
	out = json_dumps(arr, JSON_COMPACT);
cleanup:
	json_decref(arr);
	return out;
}

static unsigned record_parts(json_t *rec)
{
	unsigned parts = 0;

	if (json_is_true(json_object_get(json_object_get(rec, "status"), "diverged")))
		parts |= STORE_PART_STATUS;
	if (json_is_true(json_object_get(json_object_get(rec, "headers"), "diverged")))
		parts |= STORE_PART_HEADERS;
	if (json_is_true(json_object_get(json_object_get(rec, "body"), "diverged")))
		parts |= STORE_PART_BODY;
	return parts;
}

/* ---- eviction order: a binary heap with the fullest signature on top,
 * ties broken by the oldest record ---- */

static bool sig_before(const struct sig *a, const struct sig *b)
{
	if (a->n_ids != b->n_ids)
		return a->n_ids > b->n_ids;
	return a->n_ids && a->ids[0] < b->ids[0];
}

static void heap_swap(struct store *s, size_t i, size_t j)
{
	struct sig *t = s->heap[i];

	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_idx = i;
	s->heap[j]->heap_idx = j;
}

static void heap_down(struct store *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->n_heap && sig_before(s->heap[l], s->heap[m]))
			m = l;
		if (r < s->n_heap && sig_before(s->heap[r], s->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(s, i, m);
		i = m;
	}
}

/* Restores the heap order after g's key (n_ids, ids[0]) changed. */
static void heap_fix(struct store *s, struct sig *g)
{
	size_t i = g->heap_idx;

	while (i > 0 && sig_before(s->heap[i], s->heap[(i - 1) / 2])) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	heap_down(s, i);
}

/* Adds a new signature to the map and the heap; on failure frees it. */
static int sig_insert(struct store *s, struct sig *g)
{
	char key[24];

	snprintf(key, sizeof(key), "%016llx", (unsigned long long)g->hash);
	if (vec_reserve(s->heap, s->cap_heap, s->n_heap + 1) < 0)
		goto fail;
	if (!g->endpoint || !g->header_names || !g->paths ||
	    !strmap_insert(&s->sigs, key, g))
		goto fail;
	g->heap_idx = s->n_heap;
	s->heap[s->n_heap++] = g;
	heap_fix(s, g);
	return 0;
fail:
	free_sig(g);
	return -ENOMEM;
}

/* The record's signature, created on first sight; NULL on ENOMEM. */
static struct sig *sig_of(struct store *s, json_t *rec, const char *endpoint)
{
	struct keyset names = { 0 }, paths = { 0 };
	unsigned parts = record_parts(rec);
	struct sig *g = NULL;
	uint64_t h;

	if (keyset_collect(&names, json_object_get(json_object_get(rec, "headers"),
						   "diffs"), "name", true) ||
	    keyset_collect(&paths, json_object_get(json_object_get(rec, "body"),
						   "diffs"), "path", false))
		goto cleanup;
	h = XXH3_64bits(endpoint, strlen(endpoint) + 1);
	h = XXH3_64bits_withSeed(&parts, sizeof(parts), h);
	h = keyset_hash(&paths, keyset_hash(&names, h));
	g = sig_lookup(s, (int64_t)h);
	if (g)
		goto cleanup;
	g = calloc(1, sizeof(*g));
	if (!g)
		goto cleanup;
	g->hash = (int64_t)h;
	g->parts = parts;
	g->endpoint = strdup(endpoint);
	g->header_names = keyset_json(&names);
	g->paths = keyset_json(&paths);
	if (sig_insert(s, g))
		g = NULL;
cleanup:
	keyset_clean(&names);
	keyset_clean(&paths);
	return g;
}

/* Drops the oldest record of g: from the queue if not yet written, else
 * remembered for deletion. Counts the eviction. */
static int evict_oldest(struct store *s, struct sig *g)
{
	int64_t id = g->ids[0];
	struct ep *e = ep_get(s, g->endpoint);

	if (s->n_pend && id >= s->pend[0].id) {
		/* queued ids are consecutive from pend[0].id */
		struct pending *p = &s->pend[id - s->pend[0].id];

		free(p->text);
		p->text = NULL;
	} else {
		if (vec_reserve(s->dels, s->cap_dels, s->n_dels + 1) < 0)
			return -ENOMEM;
		s->dels[s->n_dels++] = id;
	}
	memmove(g->ids, g->ids + 1, (g->n_ids - 1) * sizeof(*g->ids));
	g->n_ids--;
	heap_fix(s, g);
	s->n_records--;
	if (e) {
		e->d[C_EVICTED]++;
		e->dirty = true;
	}
	return 0;
}

/*
 * The stored text of a record: {"id": .., "time": .., then the record's own
 * members} (id and time first, as DESIGN.md shows them). Caller frees;
 * NULL on ENOMEM.
 */
static char *record_text(struct store *s, json_t *record, int64_t id, int64_t t)
{
	char head[96], when[32], *out;
	size_t hl, bl;

	iso_time(t, when, sizeof(when));
	json_object_del(record, "id");
	json_object_del(record, "time");
	/* into a reused buffer: cheaper than json_dumps()'s growing one */
	for (;;) {
		bl = json_dumpb(record, s->dump_buf, s->dump_cap, JSON_COMPACT);
		if (!bl)
			return NULL;
		if (bl <= s->dump_cap)
			break;
		free(s->dump_buf);
		s->dump_cap = bl + 4096;
		s->dump_buf = malloc(s->dump_cap);
		if (!s->dump_buf) {
			s->dump_cap = 0;
			return NULL;
		}
	}
	hl = (size_t)snprintf(head, sizeof(head), "{\"id\":%lld,\"time\":\"%s\"%s",
			      (long long)id, when, json_object_size(record) ? "," : "");
	/* the record's members follow without its opening brace */
	out = malloc(hl + bl);
	if (out) {
		memcpy(out, head, hl);
		memcpy(out + hl, s->dump_buf + 1, bl - 1);
		out[hl + bl - 1] = '\0';
	}
	return out;
}

int store_put(struct store *s, json_t *record)
{
	const char *endpoint;
	struct pending *p;
	struct sig *g;
	char *text;
	int64_t t;
	int rc = -EINVAL;

	if (!s || !json_is_object(record))
		goto cleanup;
	rc = -EROFS;
	if (!s->writer)
		goto cleanup;
	rc = -ENOBUFS;
	if (s->n_pend >= STORE_PENDING_HARD_MAX) {
		/* the disk has failed for a while: drop, but count it */
		struct ep *e = ep_get(s, json_string_value(json_object_get(record,
								       "endpoint")));

		if (e) {
			e->d[C_EVICTED]++;
			e->dirty = s->dirty = true;
		}
		goto cleanup;
	}
	rc = -ENOMEM;
	if (vec_reserve(s->pend, s->cap_pend, s->n_pend + 1) < 0)
		goto cleanup;
	divergence_redact(record, (const char *const *)s->redact, s->n_redact);
	endpoint = json_string_value(json_object_get(record, "endpoint"));
	if (!endpoint || !*endpoint)
		endpoint = ENDPOINT_NONE;
	g = sig_of(s, record, endpoint);
	if (!g || sig_push_id(g, s->next_id))
		goto cleanup;
	t = now_ms();
	text = record_text(s, record, s->next_id, t);
	if (!text) {
		g->n_ids--;
		goto cleanup;
	}
	heap_fix(s, g);
	p = &s->pend[s->n_pend++];
	p->text = text;
	p->id = s->next_id++;
	p->time_ms = t;
	p->sig = g;
	s->dirty = true;
	s->n_records++;
	g->count_delta++;
	if (!g->first_ms || t < g->first_ms)
		g->first_ms = t;
	if (t > g->last_ms)
		g->last_ms = t;

	rc = 0;
	while (!rc && g->n_ids > s->examples)
		rc = evict_oldest(s, g);
	while (!rc && s->n_records > s->max_records && s->n_heap &&
	       s->heap[0]->n_ids)
		rc = evict_oldest(s, s->heap[0]);
	if (!rc && s->n_pend >= STORE_BATCH_MAX)
		rc = store_flush(s);
cleanup:
	json_decref(record);
	return rc;
}

int store_count(struct store *s, const char *endpoint, enum store_counter c,
		uint64_t n)
{
	struct ep *e;

	if (!s || (unsigned)c >= STORE_N_COUNTERS)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	e = ep_get(s, endpoint);
	if (!e)
		return -ENOMEM;
	e->d[c] += n;
	e->dirty = s->dirty = true;
	return 0;
}

int store_latency(struct store *s, const char *endpoint, double primary_ms,
		  double candidate_ms)
{
	double v[2] = { primary_ms, candidate_ms };
	struct ep *e;

	if (!s)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	e = ep_get(s, endpoint);
	if (!e)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		if (!(v[i] >= 0))
			continue;
		if (!e->lat[i]) {
			e->lat[i] = malloc(sizeof(*e->lat[i]));
			if (!e->lat[i])
				return -ENOMEM;
			hist_init(e->lat[i]);
		}
		hist_add(e->lat[i], v[i]);
	}
	e->dirty = s->dirty = true;
	return 0;
}

int store_candidate_error(struct store *s, const char *endpoint,
			  const char *class_name)
{
	size_t k = replay_error_class(class_name) - REPLAY_ERR_CLASS_FIRST;
	struct ep *e;

	if (!s)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	e = ep_get(s, endpoint);
	if (!e)
		return -ENOMEM;
	e->err[k]++;
	e->d[STORE_CANDIDATE_ERRORS]++;
	e->dirty = s->dirty = true;
	return 0;
}

int store_field(struct store *s, const char *endpoint, const char *path,
		bool noise)
{
	struct strmap_ent *me;
	struct field *f;
	char *key;
	int rc;

	if (!s || !path)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	if (!endpoint || !*endpoint)
		endpoint = ENDPOINT_NONE;
	if (s->fields.n >= STORE_FIELDS_MAX) {
		rc = store_flush(s);
		if (rc)
			return rc;
	}
	if (asprintf(&key, "%s\n%s", endpoint, path) < 0)
		return -ENOMEM;
	if (path[0] != '$')
		for (char *k = key + strlen(endpoint) + 1; *k; k++)
			*k = (char)tolower((unsigned char)*k);
	me = strmap_find(&s->fields, key);
	if (!me) {
		f = calloc(1, sizeof(*f));
		if (f) {
			f->endpoint = strdup(endpoint);
			f->path = strdup(key + strlen(endpoint) + 1);
		}
		if (!f || !f->endpoint || !f->path ||
		    !(me = strmap_insert(&s->fields, key, f))) {
			free_field(f);
			free(key);
			return -ENOMEM;
		}
	}
	free(key);
	f = me->val;
	if (noise)
		f->noise++;
	else
		f->raw++;
	s->dirty = true;
	return 0;
}

int store_capture_counters(struct store *s, uint64_t lost_events, uint64_t gaps,
			   uint64_t parse_errors, uint64_t truncated,
			   uint64_t tls_undecoded)
{
	if (!s)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	s->cap_cur[0] = lost_events;
	s->cap_cur[1] = gaps;
	s->cap_cur[2] = parse_errors;
	s->cap_cur[3] = truncated;
	s->cap_cur[4] = tls_undecoded;
	s->cap_dirty = s->dirty = true;
	return 0;
}

/* ---- writer: flushing ---- */

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : (sql_errno(rc) ? sql_errno(rc) : -EIO);
}

static int write_counter(struct store *s, const char *ep, const char *name,
			 uint64_t v)
{
	sqlite3_bind_text(s->up_cnt, 1, ep, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->up_cnt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->up_cnt, 3, (int64_t)v);
	return step_reset(s->up_cnt);
}

static int write_ep(struct store *s, struct ep *e)
{
	int rc = 0;

	for (int c = 0; !rc && c < N_SLOTS; c++)
		if (e->d[c])
			rc = write_counter(s, e->name, slot_name(c), e->d[c]);
	for (int k = 0; !rc && k < REPLAY_N_ERROR_CLASSES; k++) {
		if (!e->err[k])
			continue;
		sqlite3_bind_text(s->up_err, 1, e->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->up_err, 2,
				  replay_error_name(REPLAY_ERR_CLASS_FIRST + k), -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(s->up_err, 3, (int64_t)e->err[k]);
		rc = step_reset(s->up_err);
	}
	for (int side = 0; !rc && side < 2; side++) {
		struct hist *h = e->lat[side];

		for (size_t b = 0; !rc && h && h->total && b < HIST_BUCKETS; b++) {
			if (!h->counts[b])
				continue;
			sqlite3_bind_text(s->up_lat, 1, e->name, -1, SQLITE_STATIC);
			sqlite3_bind_int(s->up_lat, 2, side);
			sqlite3_bind_int64(s->up_lat, 3, (int64_t)b);
			sqlite3_bind_int64(s->up_lat, 4, (int64_t)h->counts[b]);
			rc = step_reset(s->up_lat);
		}
	}
	return rc;
}

static int write_sig(struct store *s, struct sig *g)
{
	sqlite3_stmt *st = s->up_sig;

	sqlite3_bind_int64(st, 1, g->hash);
	sqlite3_bind_text(st, 2, g->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)g->parts);
	sqlite3_bind_text(st, 4, g->header_names, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, g->paths, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)g->count_delta);
	sqlite3_bind_int64(st, 7, g->first_ms);
	sqlite3_bind_int64(st, 8, g->last_ms);
	return step_reset(st);
}

static int write_all(struct store *s)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < s->n_dels; i++) {
		sqlite3_bind_int64(s->del_rec, 1, s->dels[i]);
		rc = step_reset(s->del_rec);
	}
	for (size_t i = 0; !rc && i < s->n_pend; i++) {
		struct pending *p = &s->pend[i];

		if (!p->text)
			continue;
		sqlite3_bind_int64(s->ins_rec, 1, p->id);
		sqlite3_bind_int64(s->ins_rec, 2, p->time_ms);
		sqlite3_bind_int64(s->ins_rec, 3, p->sig->hash);
		sqlite3_bind_text(s->ins_rec, 4, p->sig->endpoint, -1, SQLITE_STATIC);
		sqlite3_bind_int(s->ins_rec, 5, (int)p->sig->parts);
		sqlite3_bind_text(s->ins_rec, 6, p->text, -1, SQLITE_STATIC);
		rc = step_reset(s->ins_rec);
	}
	for (size_t i = 0; !rc && i < s->sigs.nb; i++)
		for (struct strmap_ent *me = s->sigs.b[i]; !rc && me; me = me->next)
			if (((struct sig *)me->val)->count_delta)
				rc = write_sig(s, me->val);
	for (size_t i = 0; !rc && i < s->eps.nb; i++)
		for (struct strmap_ent *me = s->eps.b[i]; !rc && me; me = me->next)
			if (((struct ep *)me->val)->dirty)
				rc = write_ep(s, me->val);
	for (size_t i = 0; !rc && i < s->fields.nb; i++) {
		for (struct strmap_ent *me = s->fields.b[i]; !rc && me; me = me->next) {
			struct field *f = me->val;

			sqlite3_bind_text(s->up_fld, 1, f->endpoint, -1, SQLITE_STATIC);
			sqlite3_bind_text(s->up_fld, 2, f->path, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s->up_fld, 3, (int64_t)f->raw);
			sqlite3_bind_int64(s->up_fld, 4, (int64_t)f->noise);
			rc = step_reset(s->up_fld);
		}
	}
	for (int i = 0; !rc && s->cap_dirty && i < STORE_N_CAPTURE; i++) {
		sqlite3_bind_text(s->up_cap, 1, capture_names[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->up_cap, 2,
				   (int64_t)(s->cap_base[i] + s->cap_cur[i]));
		rc = step_reset(s->up_cap);
	}
	if (!rc && s->n_pend) {
		sqlite3_bind_text(s->up_meta, 1, "next_id", -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->up_meta, 2, s->next_id);
		rc = step_reset(s->up_meta);
	}
	return rc;
}

/* Forgets the deltas a committed transaction wrote. */
static void flushed(struct store *s)
{
	for (size_t i = 0; i < s->n_pend; i++)
		free(s->pend[i].text);
	s->n_pend = 0;
	s->n_dels = 0;
	for (size_t i = 0; i < s->sigs.nb; i++)
		for (struct strmap_ent *me = s->sigs.b[i]; me; me = me->next) {
			struct sig *g = me->val;

			g->count_delta = 0;
			g->first_ms = g->last_ms = 0;
		}
	for (size_t i = 0; i < s->eps.nb; i++)
		for (struct strmap_ent *me = s->eps.b[i]; me; me = me->next) {
			struct ep *e = me->val;

			if (!e->dirty)
				continue;
			memset(e->d, 0, sizeof(e->d));
			memset(e->err, 0, sizeof(e->err));
			for (int k = 0; k < 2; k++)
				if (e->lat[k] && e->lat[k]->total)
					hist_init(e->lat[k]);
			e->dirty = false;
		}
	strmap_clear(&s->fields, free_field);
	s->cap_dirty = false;
	s->dirty = false;
}

int store_flush(struct store *s)
{
	int rc;

	if (!s)
		return -EINVAL;
	if (!s->writer)
		return -EROFS;
	if (!s->dirty)
		return 0;
	rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = write_all(s);
	if (!rc)
		rc = exec(s->db, "COMMIT");
	if (rc) {
		exec(s->db, "ROLLBACK");
		return rc;
	}
	flushed(s);
	return 0;
}

/* ---- reading ---- */

int store_each_record(struct store *s, const struct store_filter *f,
		      int (*fn)(json_t *rec, void *arg), void *arg)
{
	static const struct store_filter none = { 0 };
	sqlite3_stmt *st = NULL;
	size_t seen = 0;
	char sql[256];
	int rc, ret = 0;

	if (!s || !fn)
		return -EINVAL;
	if (!f)
		f = &none;
	snprintf(sql, sizeof(sql),
		 "SELECT json, endpoint FROM records WHERE id > ? AND time_ms >= ?"
		 " AND (? = 0 OR (parts & ?) != 0) ORDER BY id %s",
		 f->newest_first ? "DESC" : "ASC");
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc) ? sql_errno(rc) : -EIO;
	sqlite3_bind_int64(st, 1, f->after_id);
	sqlite3_bind_int64(st, 2, f->since_ms);
	sqlite3_bind_int(st, 3, (int)f->parts);
	sqlite3_bind_int(st, 4, (int)f->parts);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		const char *ep = (const char *)sqlite3_column_text(st, 1);
		json_t *rec;

		if (f->endpoint_glob && fnmatch(f->endpoint_glob, ep ? ep : "", 0))
			continue;
		rec = json_loads(text ? text : "", 0, NULL);
		if (!rec) {
			ret = -EINVAL;
			break;
		}
		ret = fn(rec, arg);
		json_decref(rec);
		if (ret || (f->limit && ++seen >= f->limit))
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sql_errno(rc) ? sql_errno(rc) : -EIO;
	sqlite3_finalize(st);
	return ret;
}

int store_get_record(struct store *s, int64_t id, json_t **out)
{
	sqlite3_stmt *st = NULL;
	int rc, err;

	if (!s || !out)
		return -EINVAL;
	rc = sqlite3_prepare_v2(s->db, "SELECT json FROM records WHERE id = ?", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc) ? sql_errno(rc) : -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		err = *out ? 0 : -EINVAL;
	} else if (rc == SQLITE_DONE) {
		err = -ENOENT;
	} else {
		err = sql_errno(rc) ? sql_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return err;
}

int64_t store_last_id(struct store *s)
{
	int64_t v = 0;
	int rc;

	if (!s)
		return -EINVAL;
	rc = pragma_int(s->db, "SELECT coalesce(max(id), 0) FROM records", &v);
	return rc == SQLITE_OK ? v : (sql_errno(rc) ? sql_errno(rc) : -EIO);
}

/* The per-endpoint object of stats, created with every counter at 0. */
static json_t *stats_ep(json_t *eps, struct strmap *idx, const char *name)
{
	struct strmap_ent *me = strmap_find(idx, name);
	json_t *o;

	if (me)
		return me->val;
	o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "endpoint", json_string(name));
	for (int c = 0; c < N_SLOTS; c++)
		json_object_set_new(o, slot_name(c), json_integer(0));
	if (json_array_append_new(eps, o) || !strmap_insert(idx, name, o))
		return NULL;
	return o;
}

static void add_int(json_t *o, const char *key, int64_t v)
{
	json_object_set_new(o, key, json_integer(json_integer_value(
				       json_object_get(o, key)) + v));
}

static int cmp_ep(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "endpoint")),
		      json_string_value(json_object_get(*(json_t *const *)b, "endpoint")));
}

static json_t *quantiles(const struct hist *h)
{
	return json_pack("{s f s f}", "p50", hist_quantile(h, 0.5),
			 "p99", hist_quantile(h, 0.99));
}

/* Adds latency, error classes and top_fields to one endpoint object. */
static int stats_ep_details(struct store *s, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "endpoint"));
	uint64_t samples = (uint64_t)json_integer_value(json_object_get(o, "replayed"));
	struct hist *h = NULL;
	sqlite3_stmt *st = NULL;
	json_t *classes = NULL, *top = NULL;
	int rc, err = -ENOMEM;

	h = calloc(2, sizeof(*h));
	classes = json_object();
	top = json_array();
	if (!h || !classes || !top)
		goto cleanup;
	err = -EIO;
	rc = sqlite3_prepare_v2(s->db, "SELECT side, bucket, count FROM latency"
				" WHERE endpoint = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int side = sqlite3_column_int(st, 0);

		if (side == 0 || side == 1)
			hist_add_bucket(&h[side], (size_t)sqlite3_column_int64(st, 1),
					(uint64_t)sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto cleanup;
	json_object_set_new(o, "primary_latency_ms", quantiles(&h[0]));
	json_object_set_new(o, "candidate_latency_ms", quantiles(&h[1]));

	for (int k = 0; k < REPLAY_N_ERROR_CLASSES; k++)
		json_object_set_new(classes,
				    replay_error_name(REPLAY_ERR_CLASS_FIRST + k),
				    json_integer(0));
	rc = sqlite3_prepare_v2(s->db, "SELECT class, count FROM errors"
				" WHERE endpoint = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_object_set_new(classes, (const char *)sqlite3_column_text(st, 0),
				    json_integer(sqlite3_column_int64(st, 1)));
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto cleanup;

	rc = sqlite3_prepare_v2(s->db, "SELECT path, raw, noise FROM fields"
				" WHERE endpoint = ? ORDER BY raw DESC, path", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t raw = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t noise = (uint64_t)sqlite3_column_int64(st, 2);

		if (json_array_size(top) >= TOP_FIELDS ||
		    !diff_noise_report(raw, noise, samples, 0.2, 0.0003))
			continue;
		json_array_append_new(top, json_pack("{s s s I s I}", "path",
				(const char *)sqlite3_column_text(st, 0),
				"count", (json_int_t)raw, "noise", (json_int_t)noise));
	}
	if (rc != SQLITE_DONE)
		goto cleanup;
	json_object_set(o, "candidate_error_classes", classes);
	json_object_set(o, "top_fields", top);
	err = 0;
cleanup:
	sqlite3_finalize(st);
	json_decref(classes);
	json_decref(top);
	free(h);
	return err;
}

/* diverged / answered replays: `replayed` counts every request sent to
 * the candidate, and candidate errors are never divergences, so they are
 * left out of both sides of the ratio. */
static double rate_of(const json_t *counters)
{
	json_int_t replayed = json_integer_value(json_object_get(counters,
								 "replayed"));
	json_int_t errors = json_integer_value(json_object_get(counters,
							       "candidate_errors"));
	json_int_t diverged = json_integer_value(json_object_get(counters,
								 "diverged"));

	return replayed > errors ? (double)diverged / (double)(replayed - errors) :
				   0.0;
}

json_t *store_stats(struct store *s)
{
	json_t *out = NULL, *totals = NULL, *capture = NULL, *eps = NULL, *o;
	struct strmap idx = { 0 };
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc;

	if (!s)
		return NULL;
	totals = json_object();
	capture = json_object();
	eps = json_array();
	if (!totals || !capture || !eps)
		goto fail;
	for (int c = 0; c < N_SLOTS; c++)
		json_object_set_new(totals, slot_name(c), json_integer(0));
	for (int c = 0; c < STORE_N_CAPTURE; c++)
		json_object_set_new(capture, capture_names[c], json_integer(0));

	/* every endpoint anything was counted for, counters first */
	rc = sqlite3_prepare_v2(s->db,
		"SELECT endpoint, name, value FROM counters UNION ALL"
		" SELECT DISTINCT endpoint, NULL, 0 FROM latency UNION ALL"
		" SELECT DISTINCT endpoint, NULL, 0 FROM errors UNION ALL"
		" SELECT DISTINCT endpoint, NULL, 0 FROM fields", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ep = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		int64_t v = sqlite3_column_int64(st, 2);

		o = stats_ep(eps, &idx, ep ? ep : ENDPOINT_NONE);
		if (!o)
			goto fail;
		if (!name)
			continue;
		for (int c = 0; c < N_SLOTS; c++) {
			if (strcmp(name, slot_name(c)))
				continue;
			add_int(o, name, v);
			add_int(totals, name, v);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;

	rc = sqlite3_prepare_v2(s->db, "SELECT name, value FROM capture", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (int c = 0; c < STORE_N_CAPTURE; c++)
			if (!strcmp((const char *)sqlite3_column_text(st, 0),
				    capture_names[c]))
				json_object_set_new(capture, capture_names[c],
					json_integer(sqlite3_column_int64(st, 1)));
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;

	{
		size_t n = json_array_size(eps);
		json_t **v = calloc(n ? n : 1, sizeof(*v));
		json_t *sorted = json_array();

		if (!v || !sorted) {
			free(v);
			json_decref(sorted);
			goto fail;
		}
		for (i = 0; i < n; i++)
			v[i] = json_array_get(eps, i);
		qsort(v, n, sizeof(*v), cmp_ep);
		for (i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
		free(v);
		json_decref(eps);
		eps = sorted;
	}
	json_array_foreach(eps, i, o) {
		json_object_set_new(o, "divergence_rate", json_real(rate_of(o)));
		if (stats_ep_details(s, o))
			goto fail;
	}
	json_object_set_new(totals, "divergence_rate", json_real(rate_of(totals)));
	out = json_pack("{s o s o s o}", "totals", totals, "capture", capture,
			"endpoints", eps);
	strmap_free(&idx, NULL);
	return out;
fail:
	sqlite3_finalize(st);
	strmap_free(&idx, NULL);
	json_decref(totals);
	json_decref(capture);
	json_decref(eps);
	return NULL;
}

static json_t *parts_array(unsigned parts)
{
	json_t *a = json_array();

	if (parts & STORE_PART_STATUS)
		json_array_append_new(a, json_string("status"));
	if (parts & STORE_PART_HEADERS)
		json_array_append_new(a, json_string("headers"));
	if (parts & STORE_PART_BODY)
		json_array_append_new(a, json_string("body"));
	return a;
}

json_t *store_groups(struct store *s, const struct store_filter *f)
{
	static const struct store_filter none = { 0 };
	sqlite3_stmt *st = NULL, *ex = NULL;
	json_t *out = NULL;
	int rc;

	if (!s)
		return NULL;
	if (!f)
		f = &none;
	out = json_array();
	if (!out)
		return NULL;
	rc = sqlite3_prepare_v2(s->db, "SELECT hash, endpoint, parts, header_names,"
		" paths, count, first_ms, last_ms FROM signatures"
		" WHERE last_ms >= ? AND (? = 0 OR (parts & ?) != 0)"
		" ORDER BY count DESC, last_ms DESC", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "SELECT id FROM records WHERE sig = ?"
					" ORDER BY id", -1, &ex, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, f->since_ms);
	sqlite3_bind_int(st, 2, (int)f->parts);
	sqlite3_bind_int(st, 3, (int)f->parts);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ep = (const char *)sqlite3_column_text(st, 1);
		char sig[24], first[32], last[32];
		json_t *g, *ids;

		if (f->endpoint_glob && fnmatch(f->endpoint_glob, ep ? ep : "", 0))
			continue;
		if (f->limit && json_array_size(out) >= f->limit)
			break;
		snprintf(sig, sizeof(sig), "%016llx",
			 (unsigned long long)sqlite3_column_int64(st, 0));
		iso_time(sqlite3_column_int64(st, 6), first, sizeof(first));
		iso_time(sqlite3_column_int64(st, 7), last, sizeof(last));
		ids = json_array();
		sqlite3_bind_int64(ex, 1, sqlite3_column_int64(st, 0));
		while (ids && (rc = sqlite3_step(ex)) == SQLITE_ROW)
			json_array_append_new(ids, json_integer(sqlite3_column_int64(ex, 0)));
		sqlite3_reset(ex);
		g = json_pack("{s s s s s o s o s o s I s s s s s o}",
			"signature", sig, "endpoint", ep ? ep : "",
			"parts", parts_array((unsigned)sqlite3_column_int(st, 2)),
			"header_names", json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL),
			"paths", json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL),
			"count", (json_int_t)sqlite3_column_int64(st, 5),
			"first_seen", first, "last_seen", last, "examples", ids);
		if (!g || json_array_append_new(out, g))
			goto fail;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail;
	sqlite3_finalize(st);
	sqlite3_finalize(ex);
	return out;
fail:
	sqlite3_finalize(st);
	sqlite3_finalize(ex);
	json_decref(out);
	return NULL;
}
