/*
** vol_dump.c -- `eddyfs dump` and `eddyfs load`: a volume's metadata as
** one JSON document, and a new volume made from one (to move a volume to
** another metadata engine later, or to inspect and edit it).
**
** The document:
**   {"eddyfs_dump": 1, "format_version": N,
**    "tables": {"meta": {"columns": [...], "rows": [[...], ...]}, "inodes": ...,
**               "dentries": ..., "symlinks": ..., "xattrs": ..., "chunks": ...}}
** A value is exactly the database's: an integer is a JSON number when a
** double holds it exactly (|v| < 2^53) and {"int": "<decimal>"} beyond
** (nanosecond times), text is a string, a blob is {"utf8": "..."} when it
** is UTF-8 without NUL (names, targets) and {"hex": "..."} otherwise, NULL
** is null. Session state (sessions, holds, locks, the change log) is not
** dumped: a loaded volume starts with none.
**
** Guarantees:
**   1. dump reads one snapshot (one read transaction), also while mounted.
**   2. load makes the new volume in one transaction after `eddyfs format`
**      with the dump's block size, compression and limits, then links
**      (or copies, across filesystems) every referenced block from the old
**      volume and fsyncs; on any failure it removes what it made. Dump ->
**      load -> dump gives the same document but for meta.uuid and
**      meta.created.
*/
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vol_int.h"

#define DUMP_VERSION 1
#define EXACT_INT (INT64_C(1) << 53)

static const char *const tables[] = { "meta", "inodes", "dentries", "symlinks", "xattrs",
				      "chunks", NULL };

/****************************** values ******************************/

static bool utf8_ok(const unsigned char *p, int n)
{
	int i = 0;

	while (i < n) {
		unsigned c = p[i], k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 :
				       (c >> 3) == 30 ? 3 : 9;

		if (c == 0 || k == 9 || i + (int)k >= n + (k ? 0 : 1))
			return false;
		for (unsigned j = 1; j <= k; j++)
			if ((p[i + (int)j] & 0xc0) != 0x80)
				return false;
		i += (int)k + 1;
	}
	return true;
}

static cJSON *value_json(sqlite3_stmt *s, int col)
{
	switch (sqlite3_column_type(s, col)) {
	case SQLITE_INTEGER: {
		int64_t v = sqlite3_column_int64(s, col);
		char buf[32];
		cJSON *o;

		if (v > -EXACT_INT && v < EXACT_INT)
			return cJSON_CreateNumber((double)v);
		o = cJSON_CreateObject();
		snprintf(buf, sizeof(buf), "%" PRId64, v);
		cJSON_AddStringToObject(o, "int", buf);
		return o;
	}
	case SQLITE_FLOAT:
		return cJSON_CreateNumber(sqlite3_column_double(s, col));
	case SQLITE_TEXT:
		return cJSON_CreateString((const char *)sqlite3_column_text(s, col));
	case SQLITE_BLOB: {
		const unsigned char *p = sqlite3_column_blob(s, col);
		int n = sqlite3_column_bytes(s, col), i;
		cJSON *o = cJSON_CreateObject();
		char *buf = malloc((size_t)n * 2 + 1);

		if (!buf)
			return o;
		if (utf8_ok(p, n)) {
			memcpy(buf, p, (size_t)n);
			buf[n] = 0;
			cJSON_AddStringToObject(o, "utf8", buf);
		} else {
			for (i = 0; i < n; i++)
				snprintf(buf + 2 * i, 3, "%02x", p[i]);
			buf[2 * n] = 0;
			cJSON_AddStringToObject(o, "hex", buf);
		}
		free(buf);
		return o;
	}
	default:
		return cJSON_CreateNull();
	}
}

/* Binds JSON value V as parameter I; -EINVAL for what no dump holds. */
static int value_bind(sqlite3_stmt *s, int i, const cJSON *v)
{
	const cJSON *x;

	if (cJSON_IsNull(v))
		return sqlite3_bind_null(s, i) == SQLITE_OK ? 0 : -EIO;
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == (double)(int64_t)d)
			sqlite3_bind_int64(s, i, (int64_t)d);
		else
			sqlite3_bind_double(s, i, d);
		return 0;
	}
	if (cJSON_IsString(v)) {
		sqlite3_bind_text(s, i, v->valuestring, -1, SQLITE_TRANSIENT);
		return 0;
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(v, "int")) && cJSON_IsString(x)) {
		char *end;
		long long n;

		errno = 0;
		n = strtoll(x->valuestring, &end, 10);
		if (errno || *end || !*x->valuestring)
			return -EINVAL;
		sqlite3_bind_int64(s, i, n);
		return 0;
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(v, "utf8")) && cJSON_IsString(x)) {
		sqlite3_bind_blob(s, i, x->valuestring, (int)strlen(x->valuestring),
				  SQLITE_TRANSIENT);
		return 0;
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(v, "hex")) && cJSON_IsString(x)) {
		size_t n = strlen(x->valuestring), k;
		unsigned char *b = malloc(n / 2 + 1);

		if (!b || n % 2) {
			free(b);
			return -EINVAL;
		}
		for (k = 0; k < n / 2; k++) {
			unsigned hi, lo;

			if (sscanf(x->valuestring + 2 * k, "%1x%1x", &hi, &lo) != 2) {
				free(b);
				return -EINVAL;
			}
			b[k] = (unsigned char)(hi << 4 | lo);
		}
		sqlite3_bind_blob(s, i, b, (int)(n / 2), SQLITE_TRANSIENT);
		free(b);
		return 0;
	}
	return -EINVAL;
}

/****************************** dump ******************************/

static int dump_table(sqlite3 *db, const char *table, cJSON *tabs)
{
	char sql[128];
	sqlite3_stmt *s;
	cJSON *t = cJSON_AddObjectToObject(tabs, table), *cols, *rows;
	int rc, n, i;

	/* a stable order: the primary key (rowid or WITHOUT ROWID key) */
	snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1, 2", table);
	if (!strcmp(table, "symlinks"))
		snprintf(sql, sizeof(sql), "SELECT * FROM symlinks ORDER BY 1");
	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	cols = cJSON_AddArrayToObject(t, "columns");
	rows = cJSON_AddArrayToObject(t, "rows");
	n = sqlite3_column_count(s);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(cols, cJSON_CreateString(sqlite3_column_name(s, i)));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cJSON *row = cJSON_CreateArray();

		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(row, value_json(s, i));
		cJSON_AddItemToArray(rows, row);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

int vol_dump(const char *dir, FILE *out, char *err, size_t errlen)
{
	struct vol_tool t;
	cJSON *doc, *tabs;
	char *text;
	int r, i;

	r = vol_tool_open(&t, dir, false, err, errlen);
	if (r)
		return r;
	doc = cJSON_CreateObject();
	cJSON_AddNumberToObject(doc, "eddyfs_dump", DUMP_VERSION);
	cJSON_AddNumberToObject(doc, "format_version", VOL_FORMAT_VERSION);
	tabs = cJSON_AddObjectToObject(doc, "tables");
	r = vol_sql(t.db, "BEGIN");
	for (i = 0; !r && tables[i]; i++)
		r = dump_table(t.db, tables[i], tabs);
	vol_sql(t.db, "COMMIT");
	text = r ? NULL : cJSON_Print(doc);
	if (!r && !text)
		r = -ENOMEM;
	if (r)
		snprintf(err, errlen, "volume %s: %s", dir, sqlite3_errmsg(t.db));
	else if (fputs(text, out) < 0 || fputc('\n', out) < 0 || fflush(out) != 0) {
		r = -errno;
		snprintf(err, errlen, "writing the dump: %s", strerror(errno));
	}
	free(text);
	cJSON_Delete(doc);
	vol_tool_close(&t);
	return r;
}

/****************************** load ******************************/

static int64_t meta_get(const cJSON *meta, const char *key)
{
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(meta, "rows"), *row;

	cJSON_ArrayForEach(row, rows) {
		const cJSON *k = cJSON_GetArrayItem(row, 0), *v = cJSON_GetArrayItem(row, 1);

		if (cJSON_IsString(k) && !strcmp(k->valuestring, key)) {
			if (cJSON_IsNumber(v))
				return (int64_t)v->valuedouble;
			if (cJSON_IsString(v))
				return !strcmp(v->valuestring, "zstd");
		}
	}
	return -1;
}

static int load_table(sqlite3 *db, const char *table, const cJSON *t, char *err, size_t errlen)
{
	const cJSON *cols = cJSON_GetObjectItemCaseSensitive(t, "columns");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(t, "rows"), *c, *row;
	char sql[1024];
	size_t len;
	sqlite3_stmt *s;
	int n = cJSON_GetArraySize(cols), i, rc, r = 0;

	if (!cJSON_IsArray(cols) || !cJSON_IsArray(rows) || n < 1) {
		snprintf(err, errlen, "the dump's table %s has no columns or rows", table);
		return -EINVAL;
	}
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO %s(", table);
	i = 0;
	cJSON_ArrayForEach(c, cols) {
		if (!cJSON_IsString(c) || strspn(c->valuestring, "abcdefghijklmnopqrstuvwxyz_") !=
					   strlen(c->valuestring)) {
			snprintf(err, errlen, "the dump's table %s has a bad column name", table);
			return -EINVAL;
		}
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s", i++ ? ", " : "",
					c->valuestring);
	}
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, ") VALUES(");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s?", i ? ", " : "");
	snprintf(sql + len, sizeof(sql) - len, ")");
	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "the dump's table %s does not fit this format: %s", table,
			 sqlite3_errmsg(db));
		return -EINVAL;
	}
	cJSON_ArrayForEach(row, rows) {
		if (cJSON_GetArraySize(row) != n) {
			snprintf(err, errlen, "a row of table %s has %d values, not %d", table,
				 cJSON_GetArraySize(row), n);
			r = -EINVAL;
			break;
		}
		for (i = 0; !r && i < n; i++)
			r = value_bind(s, i + 1, cJSON_GetArrayItem(row, i));
		if (r) {
			snprintf(err, errlen, "a value of table %s is not one a dump holds", table);
			break;
		}
		if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
			snprintf(err, errlen, "table %s: %s", table, sqlite3_errmsg(db));
			r = vol_db_errno(rc);
			break;
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	return r;
}

/* Links (or copies) block ID from FROM_FD's blocks into TO_FD's. */
static int bring_block(int from_fd, int to_fd, uint64_t id)
{
	char name[64], buf[65536];
	int in, out, r = 0;
	ssize_t n;

	snprintf(name, sizeof(name), "%02x/%016" PRIx64, (unsigned)(id & 0xff), id);
	if (linkat(from_fd, name, to_fd, name, 0) == 0 || errno == EEXIST)
		return 0;
	if (errno != EXDEV && errno != EPERM)
		return -errno;
	if ((in = openat(from_fd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	out = openat(to_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	if (n < 0)
		r = -errno;
	if (!r && fsync(out) < 0)
		r = -errno;
	close(in);
	close(out);
	return r;
}

static int bring_blocks(sqlite3 *db, const char *from, const char *dir, uint64_t *count,
			char *err, size_t errlen)
{
	char path[4200];
	sqlite3_stmt *s;
	int from_fd, to_fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", from, VOL_BLOCKS_DIR);
	from_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/%s", dir, VOL_BLOCKS_DIR);
	to_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (from_fd < 0 || to_fd < 0) {
		snprintf(err, errlen, "%s/%s: %s", from_fd < 0 ? from : dir, VOL_BLOCKS_DIR,
			 strerror(errno));
		r = -errno;
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT DISTINCT block FROM chunks", -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (!r && sqlite3_step(s) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);

		r = bring_block(from_fd, to_fd, id);
		if (r)
			snprintf(err, errlen, "block %016" PRIx64 " from %s: %s", id, from,
				 strerror(-r));
		else
			(*count)++;
	}
	sqlite3_finalize(s);
	for (unsigned x = 0; !r && x < 256; x++) {
		char sub[4];
		int fd;

		snprintf(sub, sizeof(sub), "%02x", x);
		if ((fd = openat(to_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			fsync(fd);
			close(fd);
		}
	}
out:
	if (from_fd >= 0)
		close(from_fd);
	if (to_fd >= 0)
		close(to_fd);
	return r;
}

static int load_into(const cJSON *doc, const char *dir, const char *from, FILE *report,
		     char *err, size_t errlen)
{
	const cJSON *tabs = cJSON_GetObjectItemCaseSensitive(doc, "tables");
	char path[4200];
	sqlite3 *db = NULL;
	uint64_t nblocks = 0;
	int r, i;

	snprintf(path, sizeof(path), "%s/%s", dir, VOL_DB_NAME);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return -EIO;
	}
	/* the format's rows make way for the dump's; uuid and created stay */
	r = vol_sql(db, "BEGIN IMMEDIATE; DELETE FROM inodes; DELETE FROM dentries;"
			" CREATE TEMP TABLE keep AS SELECT * FROM meta WHERE key IN"
			" ('uuid', 'created')");
	for (i = 1; !r && tables[i]; i++)
		r = load_table(db, tables[i], cJSON_GetObjectItemCaseSensitive(tabs, tables[i]),
			       err, errlen);
	if (!r)
		r = load_table(db, "meta", cJSON_GetObjectItemCaseSensitive(tabs, "meta"), err,
			       errlen);
	if (!r)
		r = vol_sql(db, "INSERT OR REPLACE INTO meta SELECT * FROM temp.keep;"
				" UPDATE meta SET value = " "(SELECT coalesce(max(block), 0) + 1 FROM"
				" chunks) WHERE key = 'block_hwm' AND CAST(value AS INTEGER) <="
				" (SELECT coalesce(max(block), 0) FROM chunks)");
	if (!r && (r = vol_sql(db, "COMMIT")) != 0)
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
	if (r) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		vol_sql(db, "ROLLBACK");
	}
	if (!r) {
		sqlite3_stmt *s;
		bool data = false;

		if (sqlite3_prepare_v2(db, "SELECT 1 FROM chunks LIMIT 1", -1, &s, NULL) ==
		    SQLITE_OK) {
			data = sqlite3_step(s) == SQLITE_ROW;
			sqlite3_finalize(s);
		}
		if (data && !from) {
			snprintf(err, errlen, "the dump refers to data blocks: say where they are "
				 "with --blocks-from <old-volume-dir>");
			r = -EINVAL;
		} else if (data) {
			r = bring_blocks(db, from, dir, &nblocks, err, errlen);
		}
	}
	sqlite3_close(db);
	if (!r)
		fprintf(report, "loaded %s: %" PRIu64 " block(s) %s\n", dir, nblocks,
			nblocks ? "linked or copied" : "(no data)");
	return r;
}

int vol_load(FILE *in, const char *dir, const char *blocks_from, FILE *report, char *err,
	     size_t errlen)
{
	struct vol_format_options fo;
	char *text = NULL;
	size_t len = 0;
	cJSON *doc, *meta;
	const cJSON *v;
	struct stat st;
	bool existed = stat(dir, &st) == 0;
	int r;

	err[0] = 0;
	{
		FILE *m = open_memstream(&text, &len);
		char buf[65536];
		size_t n;

		if (!m)
			return -ENOMEM;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	}
	doc = cJSON_ParseWithLength(text, len);
	free(text);
	v = cJSON_GetObjectItemCaseSensitive(doc, "eddyfs_dump");
	if (!doc || !cJSON_IsNumber(v) || v->valuedouble != DUMP_VERSION) {
		snprintf(err, errlen, "not an eddyfs dump (version %d)", DUMP_VERSION);
		cJSON_Delete(doc);
		return -EINVAL;
	}
	v = cJSON_GetObjectItemCaseSensitive(doc, "format_version");
	if (!cJSON_IsNumber(v) || v->valuedouble > VOL_FORMAT_VERSION) {
		snprintf(err, errlen, "the dump is of a volume format this eddyfs does not know");
		cJSON_Delete(doc);
		return -EPROTONOSUPPORT;
	}
	meta = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"),
						"meta");
	vol_format_options_default(&fo);
	if (meta_get(meta, "block_size") > 0)
		fo.block_size = (uint32_t)meta_get(meta, "block_size");
	fo.compress = meta_get(meta, "compress") == 1;
	fo.capacity = meta_get(meta, "capacity") > 0 ? (uint64_t)meta_get(meta, "capacity") : 0;
	fo.max_inodes = meta_get(meta, "max_inodes") > 0 ? (uint64_t)meta_get(meta, "max_inodes")
							 : 0;
	r = vol_format(dir, &fo, err, errlen);
	if (r == 0) {
		r = load_into(doc, dir, blocks_from, report, err, errlen);
		if (r)
			vol_format_undo(dir, !existed);
	}
	cJSON_Delete(doc);
	return r;
}
