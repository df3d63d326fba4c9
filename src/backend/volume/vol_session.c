/*
** vol_session.c -- several opens of one volume: the tables they share
** (sessions, holds, changes, locks), the totals in meta, and the reaping
** of what a dead open left behind.
**
** Rules:
**   1. Every open (a mount, or a CLI client through vol_fs_open) is one
**      row of `sessions`: host, pid, the process's start time (so a reused
**      pid is not taken for the dead one), kind, mountpoint, started and
**      heartbeat (ns since the epoch). The background thread (vol_follow.c)
**      beats every VOL_HEARTBEAT_MS.
**   2. A session is dead when its heartbeat is older than VOL_EXPIRE_MS,
**      or, on this host, when its process is gone (or another process
**      has its pid). A dead session's holds and locks go with its row;
**      a session that finds itself reaped while alive registers again
**      (under the same id) and tells the kernel that anything may have
**      changed.
**   3. An inode with nlink 0 lives while some session has a `holds` row
**      for it: the row is written in the transaction that drops the last
**      link while this open still references the inode, or by the reaper
**      of an open that references an inode another open unlinked (it
**      "adopts" it), and deleted when that open lets go. An nlink-0 inode
**      that no session holds is deleted by whoever notices: the
**      transaction that drops the last link or the last release when no
**      other session exists, else the reaper (at open and every
**      VOL_REAP_MS) once its ctime (the unlink) is VOL_EXPIRE_MS old: by
**      then every live session has adopted what it references (a
**      session that did not reap for that long has no heartbeat either:
**      it is dead).
**   4. Totals (meta.used_bytes, meta.ninodes) and meta.block_hwm are
**      changed inside the transactions that change what they count
**      (vol_db.c, vol_block.c). A volume without them (made by an older
**      build) gets them, computed, at its first open.
**   5. The new tables are added by CREATE TABLE IF NOT EXISTS at open:
**      no format version bump. An older build takes eddyfs.lock
**      exclusively, so it never runs beside a newer one, and it ignores
**      the new tables (it deletes every orphan at open, as it always did).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "vol_int.h"

static const char upgrade_sql[] =
	"CREATE TABLE IF NOT EXISTS sessions(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" host TEXT NOT NULL, pid INTEGER NOT NULL, pid_start INTEGER NOT NULL,"
	" kind TEXT NOT NULL, mountpoint TEXT, started INTEGER NOT NULL,"
	" heartbeat INTEGER NOT NULL, cursor INTEGER);"
	"CREATE TABLE IF NOT EXISTS holds(ino INTEGER NOT NULL, session INTEGER NOT NULL,"
	" PRIMARY KEY(ino, session)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS holds_by_session ON holds(session);"
	"CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" session INTEGER NOT NULL, kind INTEGER NOT NULL, ino INTEGER NOT NULL,"
	" parent INTEGER NOT NULL DEFAULT 0, name BLOB);"
	"CREATE TABLE IF NOT EXISTS locks(ino INTEGER NOT NULL, session INTEGER NOT NULL,"
	" owner INTEGER NOT NULL, flock INTEGER NOT NULL, type INTEGER NOT NULL,"
	" start INTEGER NOT NULL, end INTEGER NOT NULL, pid INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS locks_by_ino ON locks(ino);"
	"CREATE INDEX IF NOT EXISTS locks_by_session ON locks(session);";

static int64_t one_int(sqlite3 *db, const char *sql, bool *found)
{
	sqlite3_stmt *s;
	int64_t r = 0;

	if (found)
		*found = false;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		r = sqlite3_column_int64(s, 0);
		if (found)
			*found = true;
	}
	sqlite3_finalize(s);
	return r;
}

int vol_schema_upgrade(struct vol_fs *v)
{
	bool have;
	int r;

	if (one_int(v->db, "SELECT count(*) FROM sqlite_master WHERE name = 'locks_by_session'",
		    NULL) == 0 && (r = vol_sql(v->db, upgrade_sql)))
		return r;
	one_int(v->db, "SELECT value FROM meta WHERE key = 'used_bytes'", &have);
	if (have)
		return 0;
	/* computed under the write lock, so two first opens agree */
	if ((r = vol_sql(v->db, "BEGIN IMMEDIATE")))
		return r;
	r = vol_sql(v->db,
		    "INSERT OR IGNORE INTO meta(key, value) VALUES('used_bytes',"
		    " (SELECT total(len) FROM chunks) +"
		    " (SELECT total(length(name) + length(value)) FROM xattrs) +"
		    " (SELECT total(length(target)) FROM symlinks));"
		    "UPDATE meta SET value = CAST(value AS INTEGER) WHERE key = 'used_bytes';"
		    "INSERT OR IGNORE INTO meta(key, value) VALUES('ninodes',"
		    " (SELECT count(*) FROM inodes));");
	if (!r)
		return vol_sql(v->db, "COMMIT");
	vol_sql(v->db, "ROLLBACK");
	return r;
}

int64_t vol_pid_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	long long start = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* field 22 (starttime), counted after the ")" that ends the name */
	if (!(p = strrchr(buf, ')')))
		return -1;
	p++;
	if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
		return -1;      /* a zombie has no open files left */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %lld", &start) != 1)
		return -1;
	return start;
}

bool vol_pid_alive(pid_t pid, int64_t start)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	return vol_pid_start(pid) == start;
}

int vol_session_register(struct vol_fs *v, const char *kind, const char *mountpoint)
{
	sqlite3_stmt *s;
	int64_t now = vol_now();
	int rc;

	if (gethostname(v->host, sizeof(v->host) - 1) < 0)
		snprintf(v->host, sizeof(v->host), "localhost");
	rc = sqlite3_prepare_v2(v->db,
				"INSERT INTO sessions(host, pid, pid_start, kind, mountpoint, started,"
				" heartbeat) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	sqlite3_bind_text(s, 1, v->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, getpid());
	sqlite3_bind_int64(s, 3, vol_pid_start(getpid()));
	sqlite3_bind_text(s, 4, kind, -1, SQLITE_STATIC);
	if (mountpoint)
		sqlite3_bind_text(s, 5, mountpoint, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return vol_db_errno(rc);
	v->session = sqlite3_last_insert_rowid(v->db);
	return 0;
}

/* The row of a session that was reaped while alive, under its old id. */
static int reregister(struct vol_fs *v, int64_t cursor, bool following)
{
	sqlite3_stmt *s;
	int64_t now = vol_now();
	int rc;

	rc = sqlite3_prepare_v2(v->db,
				"INSERT OR REPLACE INTO sessions(id, host, pid, pid_start, kind,"
				" mountpoint, started, heartbeat, cursor)"
				" VALUES(?1, ?2, ?3, ?4, ?7, ?8, ?5, ?5, ?6)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	sqlite3_bind_int64(s, 1, v->session);
	sqlite3_bind_text(s, 2, v->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, getpid());
	sqlite3_bind_int64(s, 4, vol_pid_start(getpid()));
	sqlite3_bind_int64(s, 5, now);
	if (following)
		sqlite3_bind_int64(s, 6, cursor);
	sqlite3_bind_text(s, 7, v->opt.mountpoint ? "mount" : "client", -1, SQLITE_STATIC);
	if (v->opt.mountpoint)
		sqlite3_bind_text(s, 8, v->opt.mountpoint, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 1 : vol_db_errno(rc);
}

int vol_session_heartbeat(struct vol_fs *v, int64_t cursor, bool following)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(v->db,
				"UPDATE sessions SET heartbeat = ?2,"
				" cursor = CASE WHEN ?4 THEN ?3 ELSE cursor END WHERE id = ?1",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	sqlite3_bind_int64(s, 1, v->session);
	sqlite3_bind_int64(s, 2, vol_now());
	sqlite3_bind_int64(s, 3, cursor);
	sqlite3_bind_int(s, 4, following);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return vol_db_errno(rc);
	if (sqlite3_changes(v->db) == 0)
		return reregister(v, cursor, following);
	return 0;
}

/* Deletes SESSION's row, holds and locks (one transaction). */
static int session_drop(struct vol_fs *v, int64_t session)
{
	static const char *const sql[] = { "DELETE FROM sessions WHERE id = ?1",
					   "DELETE FROM holds WHERE session = ?1",
					   "DELETE FROM locks WHERE session = ?1" };
	int r = vol_tx_begin_direct(v);

	for (size_t i = 0; !r && i < sizeof(sql) / sizeof(*sql); i++) {
		sqlite3_stmt *s;
		int rc = sqlite3_prepare_v2(v->db, sql[i], -1, &s, NULL);

		if (rc != SQLITE_OK) {
			r = vol_db_errno(rc);
			break;
		}
		sqlite3_bind_int64(s, 1, session);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			r = vol_db_errno(rc);
	}
	return vol_tx_end(v, r);
}

int vol_session_others(struct vol_fs *v)
{
	sqlite3_stmt *s;
	int n, rc;

	/* inside a transaction (a batch too) the count taken at its start
	 * holds: nobody registers or leaves without the write lock */
	if (v->in_tx && v->tx_others >= 0)
		return v->tx_others;
	if (!(s = vol_q(v, Q_OTHERS)))
		return -EIO;
	sqlite3_bind_int64(s, 1, v->session);
	rc = sqlite3_step(s);
	n = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : vol_db_errno(rc);
	sqlite3_reset(s);
	return n;
}

/* Orphans nobody holds: the ones this open references are adopted (a
** hold row: another open removed their last name); the others are
** deleted if no other session exists, or once they are VOL_EXPIRE_MS old
** (by then every live session has adopted what it references). */
static int reap_orphans(struct vol_fs *v)
{
	int64_t old = vol_now() - (int64_t)VOL_EXPIRE_MS * 1000000;
	struct vol_attr *o = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s = vol_q(v, Q_ORPHANS);
	int others, r = 0, rc;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			struct vol_attr *m = realloc(o, (cap = cap ? cap * 2 : 16) * sizeof(*m));

			if (!m) {
				r = -ENOMEM;
				break;
			}
			o = m;
		}
		vol_attr_from_row(s, 0, &o[n++]);
	}
	sqlite3_reset(s);
	if (!r && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = vol_db_errno(rc);
	others = n && !r ? vol_session_others(v) : 0;
	if (others < 0)
		r = others;
	for (size_t i = 0; !r && i < n; i++) {
		struct vol_attr a;
		bool mine = vol_inode_adopt(v, o[i].ino);

		if (!mine && others > 0 && o[i].ctime > old)
			continue;       /* young: another session may adopt it */
		if ((r = vol_tx_begin_direct(v)))
			break;
		/* again inside the write lock: still an orphan nobody holds? */
		r = vol_attr_get(v, o[i].ino, &a);
		if (!r && a.nlink == 0 && vol_hold_any(v, a.ino) == 0) {
			if (mine) {
				r = vol_hold_add(v, a.ino);
			} else {
				r = vol_inode_delete_rows(v, &a);
				if (!r)
					atomic_fetch_add(&v->orphans_reaped, 1);
			}
		}
		r = vol_tx_end(v, r == -ESTALE ? 0 : r);
	}
	free(o);
	return r;
}

int vol_session_reap(struct vol_fs *v)
{
	int64_t limit = vol_now() - (int64_t)VOL_EXPIRE_MS * 1000000;
	int64_t dead[64];
	size_t n = 0;
	sqlite3_stmt *s;
	int r = 0, rc;

	rc = sqlite3_prepare_v2(v->db, "SELECT id, host, pid, pid_start, heartbeat FROM sessions"
				" WHERE id != ?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	sqlite3_bind_int64(s, 1, v->session);
	while (n < sizeof(dead) / sizeof(*dead) && sqlite3_step(s) == SQLITE_ROW) {
		const char *host = (const char *)sqlite3_column_text(s, 1);
		bool here = host && strcmp(host, v->host) == 0;

		if (sqlite3_column_int64(s, 4) < limit ||
		    (here && !vol_pid_alive((pid_t)sqlite3_column_int64(s, 2),
					    sqlite3_column_int64(s, 3))))
			dead[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	for (size_t i = 0; i < n && !r; i++) {
		r = session_drop(v, dead[i]);
		if (!r)
			atomic_fetch_add(&v->sessions_reaped, 1);
	}
	if (!r)
		r = reap_orphans(v);
	/* change rows every follower has read (a session that does not
	 * follow has no cursor; if nobody follows, every row goes) */
	if (!r)
		r = vol_sql(v->db, "DELETE FROM changes WHERE seq <= coalesce("
				   "(SELECT min(cursor) FROM sessions WHERE cursor IS NOT NULL),"
				   " (SELECT max(seq) FROM changes))");
	return r;
}

void vol_session_end(struct vol_fs *v)
{
	if (!v->session)
		return;
	if (session_drop(v, v->session) == 0)
		reap_orphans(v);
	v->session = 0;
}

int vol_hold_add(struct vol_fs *v, uint64_t ino)
{
	sqlite3_stmt *s = vol_q(v, Q_HOLD_ADD);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, v->session);
	return vol_exec(v, s);
}

int vol_hold_any(struct vol_fs *v, uint64_t ino)
{
	sqlite3_stmt *s = vol_q(v, Q_HOLD_ANY);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}
