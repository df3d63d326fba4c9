/*
** vol_fsck.c -- `eddyfs fsck`: checks a volume's database against the
** rules the backend keeps (vol_int.h, INODE LIFETIME and DATA) and its
** block folder, and with --repair fixes what it can prove.
**
** Checked, in one read transaction (a consistent view, also while
** mounts have the volume open): the SQLite integrity check (at open), the
** root, names whose inode or parent is missing or whose parent is not a
** directory, directories with more than one name or a wrong parent
** column, link counts (names; 2 + subdirectories for directories),
** objects no name reaches from the root, rows of missing inodes (chunks,
** xattrs, symlinks), symlinks without a target, per-inode stored bytes,
** the volume's totals (meta used_bytes, ninodes), the block id counter,
** every referenced block (present; unless --quick: header, checksum,
** zstd), and the block folder (files nothing references, unfinished
** writes).
**
** Not problems: orphans (nlink 0: open-unlinked files of a live mount,
** or left by a crash) and unreferenced blocks (a crash's, or a live
** mount's write in flight) -- both are reported and collected by
** --repair (orphans) and gc/--repair (blocks) when the volume is alone.
**
** --repair (the volume alone, one write transaction, then block files):
** deletes names whose inode is missing or whose parent is not a
** directory, extra names of directories, rows of missing inodes, orphans
** and stale session rows (sessions, holds, locks: nothing is open);
** links objects that have no name into /lost+found as "#<ino>"; sets
** link counts, parent columns, stored bytes, totals and the block id
** counter to what the rows say; then removes block files nothing
** references. Missing or corrupt blocks are reported, never invented:
** their ranges read as EIO.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vol_int.h"

#define MODE_DIR "(mode & 61440) = 16384"

struct fsck {
	struct vol_tool t;
	const struct vol_fsck_options *o;
	FILE *out;
	struct vol_fsck_report *rep;
	int err;                   /* first SQL error */
};

static void problem(struct fsck *f, bool fixed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct fsck *f, bool fixed, const char *fmt, ...)
{
	va_list ap;

	f->rep->problems++;
	if (fixed)
		f->rep->repaired++;
	fputs(fixed ? "repaired: " : "problem: ", f->out);
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

static void sql_failed(struct fsck *f, int rc)
{
	if (!f->err) {
		f->err = vol_db_errno(rc);
		fprintf(f->out, "database error: %s\n", sqlite3_errmsg(f->t.db));
	}
}

static sqlite3_stmt *prep(struct fsck *f, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(f->t.db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK) {
		sql_failed(f, rc);
		return NULL;
	}
	return s;
}

/* One statement with up to three integer parameters, run for its effect. */
static void run3(struct fsck *f, const char *sql, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *s = prep(f, sql);
	int rc, n;

	if (!s)
		return;
	n = sqlite3_bind_parameter_count(s);
	if (n >= 1)
		sqlite3_bind_int64(s, 1, a);
	if (n >= 2)
		sqlite3_bind_int64(s, 2, b);
	if (n >= 3)
		sqlite3_bind_int64(s, 3, c);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		sql_failed(f, rc);
	sqlite3_finalize(s);
}

static int64_t one(struct fsck *f, const char *sql)
{
	sqlite3_stmt *s = prep(f, sql);
	int64_t v = 0;

	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static bool has_table(struct fsck *f, const char *name)
{
	sqlite3_stmt *s = prep(f, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
	bool yes = false;

	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		yes = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_finalize(s);
	}
	return yes;
}

/* The rows of SQL (columns: integers, column 1 may be a name), each
** reported with FMT (ino-ish a, name, b, c); FIX run per row with (a, b, c)
** when repairing. Rows are collected first: FIX changes the tables. */
struct row {
	int64_t a, b, c;
	char name[256];
};

static void each(struct fsck *f, const char *sql, const char *what, const char *fix)
{
	sqlite3_stmt *s = prep(f, sql);
	struct row *rows = NULL;
	size_t n = 0, cap = 0, i;
	int rc;

	if (!s)
		return;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *nm = sqlite3_column_text(s, 1);

		if (n == cap) {
			struct row *p = realloc(rows, (cap = cap * 2 + 16) * sizeof(*p));

			if (!p) {
				f->err = -ENOMEM;
				break;
			}
			rows = p;
		}
		rows[n].a = sqlite3_column_int64(s, 0);
		rows[n].b = sqlite3_column_int64(s, 2);
		rows[n].c = sqlite3_column_int64(s, 3);
		snprintf(rows[n].name, sizeof(rows[n].name), "%s", nm ? (const char *)nm : "");
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		sql_failed(f, rc);
	sqlite3_finalize(s);
	for (i = 0; i < n; i++) {
		bool fixing = f->o->repair && fix;
		char line[600];

		snprintf(line, sizeof(line), what, (long long)rows[i].a, rows[i].name,
			 (long long)rows[i].b, (long long)rows[i].c);
		if (fixing)
			run3(f, fix, rows[i].a, rows[i].b, rows[i].c);
		problem(f, fixing && !f->err, "%s", line);
	}
	free(rows);
}

/****************************** namespace ******************************/

/* The ino of /lost+found, made if missing (repair only); 0 on failure. */
static int64_t lost_found(struct fsck *f)
{
	int64_t ino = one(f, "SELECT ino FROM dentries WHERE parent = 1 AND name = "
			     "CAST('lost+found' AS BLOB)");
	int64_t now = vol_now();

	if (ino)
		return ino;
	run3(f, "INSERT INTO inodes(mode, uid, gid, nlink, atime, mtime, ctime, btime, parent,"
		" size) VALUES(16832, 0, 0, 2, ?1, ?1, ?1, ?1, 1, 40)", now, 0, 0);
	ino = sqlite3_last_insert_rowid(f->t.db);
	run3(f, "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'ninodes'", 0, 0, 0);
	run3(f, "INSERT INTO dentries(parent, name, ino, cookie) SELECT 1,"
		" CAST('lost+found' AS BLOB), ?1, next_cookie FROM inodes WHERE ino = 1", ino, 0, 0);
	run3(f, "UPDATE inodes SET next_cookie = next_cookie + 1, nlink = nlink + 1,"
		" size = size + 20, mtime = ?1, ctime = ?1 WHERE ino = 1", now, 0, 0);
	if (!f->err)
		fprintf(f->out, "repaired: made /lost+found (inode %lld)\n", (long long)ino);
	return f->err ? 0 : ino;
}

/* Links inode INO (nameless) into /lost+found as "#<ino>". */
static void adopt(struct fsck *f, int64_t ino, bool dir)
{
	int64_t lf = lost_found(f);
	char name[32];
	sqlite3_stmt *s;

	if (!lf)
		return;
	snprintf(name, sizeof(name), "#%lld", (long long)ino);
	s = prep(f, "INSERT INTO dentries(parent, name, ino, cookie) SELECT ?1, CAST(?2 AS BLOB),"
		    " ?3, next_cookie FROM inodes WHERE ino = ?1");
	if (!s)
		return;
	sqlite3_bind_int64(s, 1, lf);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, ino);
	if (sqlite3_step(s) != SQLITE_DONE)
		sql_failed(f, sqlite3_errcode(f->t.db));
	sqlite3_finalize(s);
	run3(f, "UPDATE inodes SET next_cookie = next_cookie + 1, size = size + 20,"
		" nlink = nlink + ?2 WHERE ino = ?1", lf, dir ? 1 : 0, 0);
	if (dir)
		run3(f, "UPDATE inodes SET parent = ?2 WHERE ino = ?1", ino, lf, 0);
}

static void check_names(struct fsck *f)
{
	sqlite3_stmt *s;
	int64_t root = one(f, "SELECT count(*) FROM inodes WHERE ino = 1 AND " MODE_DIR);

	if (!root)
		problem(f, false, "the root directory (inode 1) is missing or not a directory");
	each(f, "SELECT d.parent, d.name, d.ino, 0 FROM dentries d WHERE d.ino NOT IN"
		" (SELECT ino FROM inodes)",
	     "name %lld/'%s' names inode %lld, which does not exist",
	     "DELETE FROM dentries WHERE parent = ?1 AND ino = ?2");
	each(f, "SELECT d.parent, d.name, d.ino, 0 FROM dentries d LEFT JOIN inodes p"
		" ON p.ino = d.parent WHERE p.ino IS NULL OR (p.mode & 61440) != 16384",
	     "name %lld/'%s' (inode %lld) is in something that is not a directory",
	     "DELETE FROM dentries WHERE parent = ?1 AND ino = ?2");
	each(f, "SELECT d.ino, d.name, d.parent, i.parent FROM dentries d JOIN inodes i"
		" ON i.ino = d.ino WHERE (i.mode & 61440) = 16384 AND d.ino IN (SELECT ino FROM"
		" dentries GROUP BY ino HAVING count(*) > 1) AND d.parent != i.parent",
	     "directory %lld has an extra name '%s' in %lld (its parent is %lld)",
	     "DELETE FROM dentries WHERE ino = ?1 AND parent = ?2");
	each(f, "SELECT i.ino, '', i.parent, d.parent FROM inodes i JOIN dentries d"
		" ON d.ino = i.ino WHERE (i.mode & 61440) = 16384 AND i.parent != d.parent",
	     "directory %lld%s records parent %lld but is named in %lld",
	     "UPDATE inodes SET parent = ?3 WHERE ino = ?1");
	/* nameless objects that are not orphans: into /lost+found */
	s = prep(f, "SELECT ino, mode & 61440 FROM inodes WHERE ino != 1 AND nlink > 0 AND"
		    " ino NOT IN (SELECT ino FROM dentries)");
	if (s) {
		int64_t (*list)[2] = NULL;
		size_t n = 0, cap = 0, i;

		while (sqlite3_step(s) == SQLITE_ROW) {
			if (n == cap) {
				int64_t (*p)[2] = realloc(list, (cap = cap * 2 + 64) * sizeof(*p));

				if (!p) {
					f->err = -ENOMEM;
					break;
				}
				list = p;
			}
			list[n][0] = sqlite3_column_int64(s, 0);
			list[n][1] = sqlite3_column_int64(s, 1);
			n++;
		}
		sqlite3_finalize(s);
		for (i = 0; i < n; i++) {
			if (f->o->repair)
				adopt(f, list[i][0], list[i][1] == S_IFDIR);
			if (f->o->repair)
				problem(f, !f->err, "inode %lld has links but no name (now "
					"/lost+found/#%lld)", (long long)list[i][0],
					(long long)list[i][0]);
			else
				problem(f, false, "inode %lld has links but no name",
					(long long)list[i][0]);
		}
		free(list);
	}
	each(f, "SELECT i.ino, '', i.nlink, (SELECT count(*) FROM dentries d WHERE d.ino = i.ino)"
		" FROM inodes i WHERE NOT " MODE_DIR " AND i.ino IN (SELECT ino FROM dentries)"
		" AND i.nlink != (SELECT count(*) FROM dentries d WHERE d.ino = i.ino)",
	     "inode %lld%s has link count %lld, names %lld",
	     "UPDATE inodes SET nlink = ?3 WHERE ino = ?1");
	each(f, "SELECT i.ino, '', i.nlink, 2 + (SELECT count(*) FROM dentries d JOIN inodes c"
		" ON c.ino = d.ino WHERE d.parent = i.ino AND (c.mode & 61440) = 16384)"
		" FROM inodes i WHERE " MODE_DIR " AND (i.ino = 1 OR i.ino IN (SELECT ino FROM"
		" dentries)) AND i.nlink != 2 +"
		" (SELECT count(*) FROM dentries d JOIN inodes c ON c.ino = d.ino"
		" WHERE d.parent = i.ino AND (c.mode & 61440) = 16384)",
	     "directory %lld%s has link count %lld, should be %lld",
	     "UPDATE inodes SET nlink = ?3 WHERE ino = ?1");
	each(f, "WITH RECURSIVE r(ino) AS (SELECT 1 UNION SELECT d.ino FROM dentries d JOIN r"
		" ON d.parent = r.ino JOIN inodes p ON p.ino = r.ino WHERE (p.mode & 61440) = 16384)"
		" SELECT ino, '', 0, 0 FROM inodes WHERE ino IN (SELECT ino FROM dentries) AND"
		" ino NOT IN r",
	     "inode %lld%s has names but none reaches the root (a directory cycle?)", NULL);
}

/****************************** rows, totals ******************************/

static void check_rows(struct fsck *f)
{
	each(f, "SELECT ino, '', idx, block FROM chunks WHERE ino NOT IN (SELECT ino FROM inodes)",
	     "inode %lld%s does not exist but has data chunk %lld (block %lld)",
	     "DELETE FROM chunks WHERE ino = ?1 AND idx = ?2");
	each(f, "SELECT ino, name, 0, 0 FROM xattrs WHERE ino NOT IN (SELECT ino FROM inodes)",
	     "inode %lld does not exist but has xattr '%s'",
	     "DELETE FROM xattrs WHERE ino = ?1");
	each(f, "SELECT ino, '', 0, 0 FROM symlinks WHERE ino NOT IN (SELECT ino FROM inodes)",
	     "inode %lld%s does not exist but has a symlink target",
	     "DELETE FROM symlinks WHERE ino = ?1");
	each(f, "SELECT ino, '', 0, 0 FROM inodes WHERE (mode & 61440) = 40960 AND ino NOT IN"
		" (SELECT ino FROM symlinks)",
	     "symlink %lld%s has no target", NULL);
	each(f, "SELECT i.ino, '', i.stored, coalesce((SELECT sum(len) FROM chunks c"
		" WHERE c.ino = i.ino), 0) FROM inodes i WHERE i.stored != coalesce((SELECT"
		" sum(len) FROM chunks c WHERE c.ino = i.ino), 0)",
	     "inode %lld%s records %lld stored bytes, its chunks hold %lld",
	     "UPDATE inodes SET stored = ?3 WHERE ino = ?1");
	each(f, "SELECT ino, '', idx, len FROM chunks WHERE len < 0 OR len > (SELECT value FROM"
		" meta WHERE key = 'block_size')",
	     "inode %lld%s chunk %lld has an impossible length %lld", NULL);
}

static void collect_orphans(struct fsck *f)
{
	f->rep->orphans = (uint64_t)one(f, "SELECT count(*) FROM inodes WHERE nlink = 0");
	if (!f->rep->orphans)
		return;
	if (!f->o->repair) {
		fprintf(f->out, "note: %llu orphan(s) (unlinked inodes: %s)\n",
			(unsigned long long)f->rep->orphans,
			f->t.alone ? "left by a crash; --repair collects them"
				   : "open in a live mount, or left by a crash");
		return;
	}
	/* the totals lose what the orphans held, as the backend's own
	 * delete would do: only a real mismatch is a problem below */
	run3(f, "UPDATE meta SET value = CAST(value AS INTEGER) - CAST((SELECT total(len) FROM"
		" chunks WHERE ino IN (SELECT ino FROM inodes WHERE nlink = 0)) + (SELECT"
		" total(length(name) + length(value)) FROM xattrs WHERE ino IN (SELECT ino FROM"
		" inodes WHERE nlink = 0)) + (SELECT total(length(target)) FROM symlinks WHERE ino"
		" IN (SELECT ino FROM inodes WHERE nlink = 0)) AS INTEGER) WHERE key = 'used_bytes'",
	     0, 0, 0);
	run3(f, "UPDATE meta SET value = CAST(value AS INTEGER) - (SELECT count(*) FROM inodes"
		" WHERE nlink = 0) WHERE key = 'ninodes'", 0, 0, 0);
	run3(f, "DELETE FROM chunks WHERE ino IN (SELECT ino FROM inodes WHERE nlink = 0)", 0, 0, 0);
	run3(f, "DELETE FROM xattrs WHERE ino IN (SELECT ino FROM inodes WHERE nlink = 0)", 0, 0, 0);
	run3(f, "DELETE FROM symlinks WHERE ino IN (SELECT ino FROM inodes WHERE nlink = 0)", 0, 0,
	     0);
	run3(f, "DELETE FROM inodes WHERE nlink = 0", 0, 0, 0);
	if (!f->err)
		fprintf(f->out, "collected: %llu orphan(s)\n", (unsigned long long)f->rep->orphans);
}

static void clear_sessions(struct fsck *f)
{
	static const char *const tables[] = { "holds", "locks", "sessions" };
	size_t i;

	/* alone: nobody has the volume open, every row is a dead one's */
	for (i = 0; i < 3; i++) {
		char sql[64];
		int64_t n;

		if (!has_table(f, tables[i]))
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		n = one(f, sql);
		if (!n)
			continue;
		snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i]);
		run3(f, sql, 0, 0, 0);
		if (!f->err)
			fprintf(f->out, "cleared: %lld stale %s row(s)\n", (long long)n, tables[i]);
	}
}

static void check_totals(struct fsck *f)
{
	each(f, "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'used_bytes'), '',"
		" CAST((SELECT total(len) FROM chunks) + (SELECT total(length(name) +"
		" length(value)) FROM xattrs) + (SELECT total(length(target)) FROM symlinks)"
		" AS INTEGER), 0 WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'used_bytes') AND"
		" (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'used_bytes') !="
		" CAST((SELECT total(len) FROM chunks) + (SELECT total(length(name) +"
		" length(value)) FROM xattrs) + (SELECT total(length(target)) FROM symlinks)"
		" AS INTEGER)",
	     "the volume's used bytes say %lld%s, its rows hold %lld",
	     "UPDATE meta SET value = ?2 WHERE key = 'used_bytes'");
	each(f, "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'ninodes'), '',"
		" (SELECT count(*) FROM inodes), 0 WHERE EXISTS (SELECT 1 FROM meta WHERE key ="
		" 'ninodes') AND (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'ninodes')"
		" != (SELECT count(*) FROM inodes)",
	     "the volume's inode count says %lld%s, it has %lld",
	     "UPDATE meta SET value = ?2 WHERE key = 'ninodes'");
	each(f, "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'block_hwm'), '',"
		" (SELECT max(block) FROM chunks) + 1, 0 WHERE (SELECT max(block) FROM chunks) >="
		" (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'block_hwm')",
	     "the block id counter is at %lld%s but a chunk uses id %lld - 1",
	     "UPDATE meta SET value = ?2 WHERE key = 'block_hwm'");
}

/****************************** blocks ******************************/

static void check_blocks(struct fsck *f)
{
	sqlite3_stmt *s = prep(f, "SELECT ino, idx, block FROM chunks ORDER BY block");
	char *data = NULL;

	if (!s)
		return;
	if (!f->o->quick && !(data = malloc(f->t.fo.block_size))) {
		sqlite3_finalize(s);
		f->err = -ENOMEM;
		return;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		int64_t ino = sqlite3_column_int64(s, 0), idx = sqlite3_column_int64(s, 1);
		uint64_t id = (uint64_t)sqlite3_column_int64(s, 2);
		char name[64];
		uint32_t raw;
		int fd, r = 0;

		snprintf(name, sizeof(name), "%02x/%016" PRIx64, (unsigned)(id & 0xff), id);
		fd = openat(f->t.blocks_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			problem(f, false, "inode %lld chunk %lld: block %s is missing (reads of "
				"that range give EIO)", (long long)ino, (long long)idx, name);
			continue;
		}
		if (data) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
			r = vol_block_decode(fd, f->t.fo.block_size, data, &raw);
			f->rep->blocks_checked++;
		}
		close(fd);
		if (r)
			problem(f, false, "inode %lld chunk %lld: block %s is corrupt (%s; reads "
				"of that range give EIO)", (long long)ino, (long long)idx, name,
				r == -EIO ? "bad header, length or checksum" : strerror(-r));
	}
	sqlite3_finalize(s);
	free(data);
}

struct unref {
	struct fsck *f;
	uint64_t blocks, temps, bytes;
};

static void unref_visit(void *arg, const char *rel, uint64_t id, bool tmp, int64_t size,
			time_t mtime)
{
	struct unref *u = arg;

	(void)rel;
	(void)mtime;
	if (!tmp && vol_tool_referenced(&u->f->t, id))
		return;
	if (tmp)
		u->temps++;
	else
		u->blocks++;
	u->bytes += (uint64_t)size;
}

static void report_unreferenced(struct fsck *f)
{
	struct unref u = { f, 0, 0, 0 };

	if (vol_tool_load_refs(&f->t) || vol_tool_walk_blocks(&f->t, unref_visit, &u)) {
		fprintf(f->out, "cannot list %s/\n", VOL_BLOCKS_DIR);
		return;
	}
	f->rep->unreferenced = u.blocks + u.temps;
	if (f->rep->unreferenced && !f->o->repair)
		fprintf(f->out, "note: %llu unreferenced block file(s) and %llu unfinished "
			"write(s), %llu bytes (%s)\n", (unsigned long long)u.blocks,
			(unsigned long long)u.temps, (unsigned long long)u.bytes,
			f->t.alone ? "left by a crash or a removal; eddyfs gc removes them"
				   : "a live mount's writes in flight, or a crash's");
}

/****************************** the run ******************************/

int vol_fsck(const char *dir, const struct vol_fsck_options *o, FILE *out,
	     struct vol_fsck_report *rep, char *err, size_t errlen)
{
	struct fsck f = { .o = o, .out = out, .rep = rep };
	int r;

	memset(rep, 0, sizeof(*rep));
	r = vol_tool_open(&f.t, dir, o->repair, err, errlen);
	if (r)
		return r;
	rep->alone = f.t.alone;
	r = vol_sql(f.t.db, o->repair ? "BEGIN IMMEDIATE" : "BEGIN");
	if (r == 0 && !o->repair)
		one(&f, "SELECT count(*) FROM meta");   /* the snapshot starts here */
	if (r) {
		snprintf(err, errlen, "volume %s: %s", dir, sqlite3_errmsg(f.t.db));
		vol_tool_close(&f.t);
		return r;
	}
	check_names(&f);
	collect_orphans(&f);
	check_rows(&f);
	if (o->repair)
		clear_sessions(&f);
	check_totals(&f);
	check_blocks(&f);
	r = f.err ? f.err : vol_sql(f.t.db, "COMMIT");
	if (r) {
		vol_sql(f.t.db, "ROLLBACK");
		snprintf(err, errlen, "volume %s: %s (nothing was changed)", dir, strerror(-r));
		vol_tool_close(&f.t);
		return r;
	}
	report_unreferenced(&f);
	if (o->repair && rep->unreferenced) {
		struct vol_gc_report g;
		struct vol_gc_options go = { false, false };

		memset(&g, 0, sizeof(g));
		r = vol_tool_collect(&f.t, &go, out, &g);
		if (r == 0)
			fprintf(out, "removed: %llu unreferenced block file(s) and %llu unfinished "
				"write(s), %llu bytes\n", (unsigned long long)g.blocks,
				(unsigned long long)g.temps, (unsigned long long)g.bytes);
		else
			snprintf(err, errlen, "volume %s: %s/: %s", dir, VOL_BLOCKS_DIR,
				 strerror(-r));
		vol_tool_close(&f.t);
		return r;
	}
	vol_tool_close(&f.t);
	return 0;
}
