/*
** vol_db.c -- the volume backend's SQL: the prepared-statement cache, one
** transaction per operation (grouped into batches while this open is
** alone), inode rows as struct vol_attr, xattr rows, and the deletion of
** an inode with everything it owns.
**
** Every function here runs with db_lock held (vol_int.h, LOCKS). The
** connection runs in WAL mode with synchronous=NORMAL: a commit is atomic
** and survives a process crash at once, and a power loss once the next
** synchronous=FULL commit (vol_db_sync) has been made; fsync, fsyncdir and
** close of a written file make one. Several mounts may write the volume:
** every write transaction is BEGIN IMMEDIATE (the busy timeout waits for
** another connection's transaction to end) and, on a volume with limits,
** re-reads the totals (meta.used_bytes, meta.ninodes) inside it; the
** deltas it makes are added to those rows in the same transaction. Blocks it unreferences are
** unlinked only after the commit.
**
** BATCHES (the commit window). A commit costs about twenty system calls
** (WAL frames, lock bytes), more than the operation itself. So while no
** other session exists and the open has a window (vol_options.batch_ms,
** the mount's --commit-window), the write transaction an operation opens
** stays open for the operations that follow, each inside a savepoint of
** its own: an operation that fails is rolled back alone. The batch is
** committed when it is batch_ms old (by the next operation, or by the
** background thread), after VOL_BATCH_OPS operations, before anything
** that needs a commit of its own (vol_tx_begin_direct: durable commits,
** session rows), and at close. Why this keeps every promise:
**   - other sessions: none exists while a batch is open, and one that
**     comes must register in a write transaction, which waits for the
**     batch to commit; the next transaction sees it and commits alone;
**   - this open reads through the same connection: its own changes at once;
**   - fsync, fsyncdir and the close of a written file commit the batch
**     (vol_db_sync); a kill -9 loses at most the last batch_ms of
**     operations nobody asked to be durable, and the volume stays
**     consistent (the batch is one transaction);
**   - a full disk: under VOL_BATCH_FREE free bytes (checked by the
**     heartbeat) there is no window, so ENOSPC comes back from the
**     operation that meets it. If a batch still fails to commit, its
**     operations are lost: the open is marked broken, says so on stderr
**     and fails every later write with EIO (remount to go on), as a
**     kernel filesystem remounts read-only after a journal error.
** The change news (vol_follow.c) is written only by transactions that
** began while another session existed (news): nobody else reads it.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "vol_int.h"

#define INODE_COLS "ino, mode, uid, gid, nlink, size, stored, rdev, atime, mtime, ctime, " \
		   "btime, parent, next_cookie"

static const char *const query_sql[Q_COUNT] = {
	[Q_INODE_GET] = "SELECT " INODE_COLS " FROM inodes WHERE ino = ?1",
	[Q_INODE_PUT] = "UPDATE inodes SET mode = ?2, uid = ?3, gid = ?4, nlink = ?5, size = ?6,"
			" stored = ?7, rdev = ?8, atime = ?9, mtime = ?10, ctime = ?11,"
			" parent = ?12, next_cookie = ?13 WHERE ino = ?1",
	[Q_INODE_NEW] = "INSERT INTO inodes(mode, uid, gid, nlink, rdev, atime, mtime, ctime,"
			" btime, parent, size) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?6, ?7, ?8)",
	[Q_INODE_DEL] = "DELETE FROM inodes WHERE ino = ?1",
	[Q_INODE_NLINK] = "UPDATE inodes SET nlink = nlink + ?2, ctime = ?3 WHERE ino = ?1",
	[Q_INODE_TIMES] = "UPDATE inodes SET mtime = ?2, ctime = ?2 WHERE ino = ?1",
	[Q_INODE_COOKIE] = "UPDATE inodes SET next_cookie = next_cookie + 1 WHERE ino = ?1"
			   " RETURNING next_cookie - 1",
	[Q_DENTRY_GET] = "SELECT ino FROM dentries WHERE parent = ?1 AND name = ?2",
	[Q_DENTRY_ADD] = "INSERT INTO dentries(parent, name, ino, cookie) VALUES(?1, ?2, ?3, ?4)",
	[Q_DENTRY_DEL] = "DELETE FROM dentries WHERE parent = ?1 AND name = ?2",
	[Q_DENTRY_SET] = "UPDATE dentries SET ino = ?3 WHERE parent = ?1 AND name = ?2",
	[Q_DENTRY_ANY] = "SELECT 1 FROM dentries WHERE parent = ?1 LIMIT 1",
	[Q_DENTRY_LIST] = "SELECT d.name, d.cookie, d.ino, i.mode FROM dentries d"
			  " JOIN inodes i ON i.ino = d.ino WHERE d.parent = ?1 AND d.cookie > ?2"
			  " ORDER BY d.cookie LIMIT ?3",
	[Q_DENTRY_LIST_PLUS] = "SELECT d.name, d.cookie, i.ino, i.mode, i.uid, i.gid, i.nlink,"
			       " i.size, i.stored, i.rdev, i.atime, i.mtime, i.ctime, i.btime,"
			       " i.parent, i.next_cookie FROM dentries d JOIN inodes i"
			       " ON i.ino = d.ino WHERE d.parent = ?1 AND d.cookie > ?2"
			       " ORDER BY d.cookie LIMIT ?3",
	[Q_SYMLINK_GET] = "SELECT target FROM symlinks WHERE ino = ?1",
	[Q_SYMLINK_ADD] = "INSERT INTO symlinks(ino, target) VALUES(?1, ?2)",
	[Q_SYMLINK_DEL] = "DELETE FROM symlinks WHERE ino = ?1",
	[Q_XATTR_GET] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
	[Q_XATTR_PUT] = "INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES(?1, ?2, ?3)",
	[Q_XATTR_DEL] = "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2",
	[Q_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino = ?1",
	[Q_XATTR_DEL_ALL] = "DELETE FROM xattrs WHERE ino = ?1",
	[Q_XATTR_BYTES] = "SELECT total(length(name) + length(value)) FROM xattrs WHERE ino = ?1",
	[Q_CHUNK_GET] = "SELECT block, len FROM chunks WHERE ino = ?1 AND idx = ?2",
	[Q_CHUNK_PUT] = "INSERT OR REPLACE INTO chunks(ino, idx, block, len) VALUES(?1, ?2, ?3, ?4)",
	[Q_CHUNK_DEL] = "DELETE FROM chunks WHERE ino = ?1 AND idx = ?2",
	[Q_CHUNK_FROM] = "SELECT idx, block, len FROM chunks WHERE ino = ?1 AND idx >= ?2",
	[Q_CHUNK_DEL_FROM] = "DELETE FROM chunks WHERE ino = ?1 AND idx >= ?2",
	[Q_CHUNK_TRIM] = "UPDATE chunks SET len = ?3 WHERE ino = ?1 AND idx = ?2",
	[Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[Q_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	/* orphans no session holds (vol_session.c) */
	[Q_ORPHANS] = "SELECT " INODE_COLS " FROM inodes WHERE nlink = 0"
		      " AND ino NOT IN (SELECT ino FROM holds)",
	[Q_TOTALS_GET] = "SELECT (SELECT value FROM meta WHERE key = 'used_bytes'),"
			 " (SELECT value FROM meta WHERE key = 'ninodes')",
	[Q_TOTALS_ADD] = "UPDATE meta SET value = value + ?2 WHERE key = ?1",
	[Q_BLOCK_HWM] = "UPDATE meta SET value = value + ?1 WHERE key = 'block_hwm'"
			" RETURNING value",
	[Q_HOLD_ADD] = "INSERT OR IGNORE INTO holds(ino, session) VALUES(?1, ?2)",
	[Q_HOLD_DEL] = "DELETE FROM holds WHERE ino = ?1 AND session = ?2",
	[Q_HOLD_ANY] = "SELECT 1 FROM holds WHERE ino = ?1 LIMIT 1",
	[Q_OTHERS] = "SELECT count(*) FROM sessions WHERE id != ?1",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT eddy_op",
	[Q_RELEASE] = "RELEASE eddy_op",
	[Q_ROLLBACK_TO] = "ROLLBACK TO eddy_op",
};

int vol_db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

sqlite3_stmt *vol_q(struct vol_fs *v, enum vol_query q)
{
	sqlite3_stmt *s = v->stmt[q];

	if (!s) {
		if (sqlite3_prepare_v3(v->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK)
			return NULL;
		v->stmt[q] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int vol_exec(struct vol_fs *v, sqlite3_stmt *s)
{
	int rc;

	(void)v;
	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : vol_db_errno(rc);
}

int vol_sql(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : vol_db_errno(rc);
}

int64_t vol_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vol_free_check(struct vol_fs *v)
{
	struct statvfs sv;

	if (fstatvfs(v->dir_fd, &sv) == 0)
		atomic_store(&v->space_low,
			     (uint64_t)sv.f_bavail * sv.f_frsize < (uint64_t)VOL_BATCH_FREE);
}

static int tx_do(struct vol_fs *v, enum vol_query q)
{
	return vol_exec(v, vol_q(v, q));
}

/* The batch's operations are gone (a failed commit, or SQLite rolled the
** transaction back after an I/O error): nothing may pretend otherwise. */
static void batch_lost(struct vol_fs *v, int err)
{
	if (v->batch_ops) {
		v->broken = true;
		atomic_fetch_add(&v->batch_lost, v->batch_ops);
		fprintf(stderr, "eddyfs: volume %s: a commit failed (%s): the last %u operations"
			" are lost; every write now fails with EIO: unmount, run eddyfs fsck,"
			" mount again\n", v->path ? v->path : "?", strerror(-err), v->batch_ops);
	}
	v->batch_open = false;
	v->batch_ops = 0;
	v->news = true;
	atomic_store(&v->batch_deadline, 0);
	v->tx_ndead = 0;     /* referenced again by the rows that came back */
	vol_totals_read(v);
}

static int tx_begin(struct vol_fs *v, bool batchable)
{
	int others, r;

	if (v->broken)
		return -EIO;
	if (v->batch_open && !batchable && (r = vol_batch_commit(v)))
		return r;
	if (v->batch_open) {
		if ((r = tx_do(v, Q_SAVEPOINT)))
			return r;
		v->in_tx = true;
		v->tx_used = v->tx_inodes = 0;
		v->tx_dead_mark = v->tx_ndead;
		return 0;
	}
	if ((r = tx_do(v, Q_BEGIN)))
		return r;
	v->in_tx = true;
	v->tx_used = v->tx_inodes = 0;
	v->tx_ndead = v->tx_dead_mark = 0;
	/* who else is there (nobody can register while the write lock is ours) */
	v->tx_others = -1;
	others = vol_session_others(v);
	r = others < 0 ? others : 0;
	v->news = others != 0;
	v->tx_others = others;      /* stays true while the write lock is ours */
	/* the totals as every mount left them (the write lock is ours), for
	 * the limit checks; statfs and report read them themselves */
	if (!r && (v->capacity || v->max_inodes))
		r = vol_totals_read(v);
	if (!r && batchable && others == 0 && v->opt.batch_ms > 0 &&
	    !atomic_load(&v->space_low) && !(r = tx_do(v, Q_SAVEPOINT))) {
		v->batch_open = true;
		v->batch_ops = 0;
		v->batch_start = vol_mono_ms();
		atomic_store(&v->batch_deadline, v->batch_start + v->opt.batch_ms);
		vol_bg_kick(v);
	}
	if (r) {
		tx_do(v, Q_ROLLBACK);
		v->in_tx = false;
		v->news = true;
	}
	return r;
}

int vol_tx_begin(struct vol_fs *v)
{
	return tx_begin(v, true);
}

int vol_tx_begin_direct(struct vol_fs *v)
{
	return tx_begin(v, false);
}

int vol_batch_commit(struct vol_fs *v)
{
	int r;

	if (!v->batch_open || v->in_tx)
		return 0;
	if (!v->batch_ops) {              /* nothing in it: let the write lock go */
		tx_do(v, Q_ROLLBACK);
		v->batch_open = false;
		v->news = true;
		atomic_store(&v->batch_deadline, 0);
		return 0;
	}
	r = tx_do(v, Q_COMMIT);
	if (r) {
		if (!sqlite3_get_autocommit(v->db))
			tx_do(v, Q_ROLLBACK);
		batch_lost(v, r);
		return r;
	}
	v->batch_open = false;
	v->batch_ops = 0;
	v->news = true;            /* statements outside transactions: news */
	atomic_store(&v->batch_deadline, 0);
	atomic_fetch_add(&v->batches, 1);
	v->db_unsynced = true;
	for (size_t i = 0; i < v->tx_ndead; i++)
		vol_block_unlink(v, v->tx_dead[i]);
	v->tx_ndead = 0;
	return 0;
}

int vol_totals_read(struct vol_fs *v)
{
	sqlite3_stmt *s = vol_q(v, Q_TOTALS_GET);
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		v->used_bytes = sqlite3_column_int64(s, 0);
		v->ninodes = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : vol_db_errno(rc);
}

/* Adds this transaction's deltas to the totals in meta. */
static int totals_add(struct vol_fs *v)
{
	static const char *const key[2] = { "used_bytes", "ninodes" };
	int64_t delta[2] = { v->tx_used, v->tx_inodes };
	int err = 0;

	for (int i = 0; i < 2 && !err; i++) {
		sqlite3_stmt *s;

		if (!delta[i])
			continue;
		if (!(s = vol_q(v, Q_TOTALS_ADD)))
			return -EIO;
		sqlite3_bind_text(s, 1, key[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, delta[i]);
		err = vol_exec(v, s);
	}
	return err;
}

/* The end of one operation inside the batch. */
static int batch_op_end(struct vol_fs *v, int err)
{
	if (!err)
		err = totals_add(v);
	if (!err)
		err = tx_do(v, Q_RELEASE);
	if (err && !sqlite3_get_autocommit(v->db)) {
		tx_do(v, Q_ROLLBACK_TO);  /* this operation only */
		tx_do(v, Q_RELEASE);
		v->tx_ndead = v->tx_dead_mark;
	}
	v->in_tx = false;
	if (sqlite3_get_autocommit(v->db)) {
		/* SQLite ended the whole transaction (an I/O error, a full disk) */
		v->tx_used = v->tx_inodes = 0;
		batch_lost(v, err ? err : -EIO);
		return err ? err : -EIO;
	}
	if (!err) {
		v->used_bytes += v->tx_used;
		v->ninodes += v->tx_inodes;
		v->batch_ops++;
	}
	v->tx_used = v->tx_inodes = 0;
	if (!v->batch_ops || v->batch_ops >= VOL_BATCH_OPS ||
	    vol_mono_ms() >= v->batch_start + v->opt.batch_ms) {
		int r = vol_batch_commit(v);

		if (!err)
			err = r;
	}
	return err;
}

int vol_tx_end(struct vol_fs *v, int err)
{
	size_t i;

	if (!v->in_tx)
		return err;
	if (v->batch_open)
		return batch_op_end(v, err);
	if (!err)
		err = totals_add(v);
	if (!err)
		err = tx_do(v, Q_COMMIT);
	v->news = true;
	if (err) {
		tx_do(v, Q_ROLLBACK);
		v->in_tx = false;
		v->tx_ndead = 0;
		v->tx_used = v->tx_inodes = 0;
		return err;
	}
	v->in_tx = false;
	v->db_unsynced = true;
	v->used_bytes += v->tx_used;
	v->ninodes += v->tx_inodes;
	v->tx_used = v->tx_inodes = 0;
	for (i = 0; i < v->tx_ndead; i++)
		vol_block_unlink(v, v->tx_dead[i]);
	v->tx_ndead = 0;
	return 0;
}

int vol_tx_open(struct vol_fs *v)
{
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (err)
		pthread_mutex_unlock(&v->db_lock);
	return err;
}

int vol_tx_close(struct vol_fs *v, int err)
{
	err = vol_tx_end(v, err);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

int vol_db_sync(struct vol_fs *v)
{
	int r;

	if ((r = vol_batch_commit(v)))
		return r;
	if (!v->db_unsynced)
		return 0;
	if ((r = vol_sql(v->db, "PRAGMA synchronous=FULL")))
		return r;
	r = vol_tx_begin_direct(v);
	if (!r) {
		sqlite3_stmt *s = vol_q(v, Q_META_SET);

		sqlite3_bind_text(s, 1, "synced", -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, vol_now());
		r = vol_tx_end(v, vol_exec(v, s));
	}
	vol_sql(v->db, "PRAGMA synchronous=NORMAL");
	if (!r)
		v->db_unsynced = false;
	return r;
}

void vol_tx_dead_block(struct vol_fs *v, uint64_t block)
{
	if (v->tx_ndead == v->tx_cap) {
		size_t cap = v->tx_cap ? v->tx_cap * 2 : 64;
		uint64_t *d = realloc(v->tx_dead, cap * sizeof(*d));

		if (!d)
			return;          /* the block stays behind, for gc */
		v->tx_dead = d;
		v->tx_cap = cap;
	}
	v->tx_dead[v->tx_ndead++] = block;
}

int64_t vol_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return vol_ts_to_ns(&ts);
}

void vol_ns_to_ts(int64_t ns, struct timespec *ts)
{
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;

	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)rem;
}

int64_t vol_ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

void vol_attr_from_row(sqlite3_stmt *s, int c, struct vol_attr *a)
{
	a->ino = (uint64_t)sqlite3_column_int64(s, c);
	a->mode = (mode_t)sqlite3_column_int64(s, c + 1);
	a->uid = (uid_t)sqlite3_column_int64(s, c + 2);
	a->gid = (gid_t)sqlite3_column_int64(s, c + 3);
	a->nlink = (uint64_t)sqlite3_column_int64(s, c + 4);
	a->size = (uint64_t)sqlite3_column_int64(s, c + 5);
	a->stored = (uint64_t)sqlite3_column_int64(s, c + 6);
	a->rdev = (dev_t)sqlite3_column_int64(s, c + 7);
	a->atime = sqlite3_column_int64(s, c + 8);
	a->mtime = sqlite3_column_int64(s, c + 9);
	a->ctime = sqlite3_column_int64(s, c + 10);
	a->btime = sqlite3_column_int64(s, c + 11);
	a->parent = (uint64_t)sqlite3_column_int64(s, c + 12);
	a->next_cookie = (uint64_t)sqlite3_column_int64(s, c + 13);
}

int vol_attr_get(struct vol_fs *v, uint64_t ino, struct vol_attr *a)
{
	sqlite3_stmt *s = vol_q(v, Q_INODE_GET);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		vol_attr_from_row(s, 0, a);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ESTALE : vol_db_errno(rc);
}

int vol_attr_put(struct vol_fs *v, const struct vol_attr *a)
{
	sqlite3_stmt *s = vol_q(v, Q_INODE_PUT);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)a->ino);
	sqlite3_bind_int64(s, 2, a->mode);
	sqlite3_bind_int64(s, 3, a->uid);
	sqlite3_bind_int64(s, 4, a->gid);
	sqlite3_bind_int64(s, 5, (int64_t)a->nlink);
	sqlite3_bind_int64(s, 6, (int64_t)a->size);
	sqlite3_bind_int64(s, 7, (int64_t)a->stored);
	sqlite3_bind_int64(s, 8, (int64_t)a->rdev);
	sqlite3_bind_int64(s, 9, a->atime);
	sqlite3_bind_int64(s, 10, a->mtime);
	sqlite3_bind_int64(s, 11, a->ctime);
	sqlite3_bind_int64(s, 12, (int64_t)a->parent);
	sqlite3_bind_int64(s, 13, (int64_t)a->next_cookie);
	return vol_exec(v, s);
}

void vol_attr_stat(const struct vol_fs *v, const struct vol_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = (nlink_t)a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->stored + 4095) / 4096 * 8);
	vol_ns_to_ts(a->atime, &st->st_atim);
	vol_ns_to_ts(a->mtime, &st->st_mtim);
	vol_ns_to_ts(a->ctime, &st->st_ctim);
	(void)v;
}

void *vol_xattr_load(struct vol_fs *v, uint64_t ino, const char *name, size_t *size, int *err)
{
	sqlite3_stmt *s = vol_q(v, Q_XATTR_GET);
	void *copy = NULL;
	int rc;

	*err = 0;
	if (!s) {
		*err = -EIO;
		return NULL;
	}
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 0);

		copy = malloc(n ? (size_t)n : 1);
		if (copy) {
			if (n)
				memcpy(copy, sqlite3_column_blob(s, 0), (size_t)n);
			*size = (size_t)n;
		} else {
			*err = -ENOMEM;
		}
	} else if (rc != SQLITE_DONE) {
		*err = vol_db_errno(rc);
	}
	sqlite3_reset(s);
	return copy;
}

static int64_t xattr_cost(const char *name, size_t size)
{
	return (int64_t)(strlen(name) + size);
}

int vol_xattr_store(struct vol_fs *v, uint64_t ino, const char *name, const void *value,
		    size_t size)
{
	size_t old_size = 0;
	int err;
	void *old = vol_xattr_load(v, ino, name, &old_size, &err);
	int64_t delta = xattr_cost(name, size) - (old ? xattr_cost(name, old_size) : 0);
	sqlite3_stmt *s;

	free(old);
	if (err)
		return err;
	if ((err = vol_space_check(v, delta)))
		return err;
	s = vol_q(v, Q_XATTR_PUT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, size ? value : "", (int)size, SQLITE_STATIC);
	err = vol_exec(v, s);
	if (!err)
		v->tx_used += delta;
	return err;
}

int vol_xattr_remove(struct vol_fs *v, uint64_t ino, const char *name)
{
	size_t old_size = 0;
	int err;
	void *old = vol_xattr_load(v, ino, name, &old_size, &err);
	sqlite3_stmt *s;

	if (!old)
		return err ? err : -ENODATA;
	free(old);
	s = vol_q(v, Q_XATTR_DEL);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	err = vol_exec(v, s);
	if (!err)
		v->tx_used -= xattr_cost(name, old_size);
	return err;
}

int vol_space_check(struct vol_fs *v, int64_t more)
{
	if (more <= 0 || !v->capacity)
		return 0;
	if (v->used_bytes + v->tx_used + atomic_load(&v->reserved) + more > (int64_t)v->capacity)
		return -ENOSPC;
	return 0;
}

int vol_inode_delete_rows(struct vol_fs *v, const struct vol_attr *a)
{
	sqlite3_stmt *s;
	int64_t freed = (int64_t)a->stored;
	int err = 0, rc;

	/* an empty file has no chunk rows (truncate deletes them) */
	if (S_ISREG(a->mode) && (a->size || a->stored)) {
		s = vol_q(v, Q_CHUNK_FROM);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, 0);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			vol_tx_dead_block(v, (uint64_t)sqlite3_column_int64(s, 1));
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return vol_db_errno(rc);
		s = vol_q(v, Q_CHUNK_DEL_FROM);
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, 0);
		err = vol_exec(v, s);
	} else if (S_ISLNK(a->mode)) {
		freed += (int64_t)a->size;
		s = vol_q(v, Q_SYMLINK_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		err = vol_exec(v, s);
	}
	if (!err && (s = vol_q(v, Q_XATTR_BYTES))) {
		int64_t bytes = 0;

		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		if (sqlite3_step(s) == SQLITE_ROW)
			bytes = (int64_t)sqlite3_column_double(s, 0);
		sqlite3_reset(s);
		freed += bytes;
		if (bytes > 0) {           /* every xattr has a name */
			s = vol_q(v, Q_XATTR_DEL_ALL);
			sqlite3_bind_int64(s, 1, (int64_t)a->ino);
			err = vol_exec(v, s);
		}
	}
	if (!err) {
		s = vol_q(v, Q_INODE_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		err = vol_exec(v, s);
	}
	if (!err) {
		v->tx_used -= freed;
		v->tx_inodes--;
	}
	return err;
}
