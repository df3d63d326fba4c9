/*
** vol_lock.c -- fcntl and flock locks of a volume, kept in its database
** (table `locks`) and shared by every mount and client that has it open.
**
** A row is one range of one lock owner: (ino, session, owner, flock,
** type, start, end (inclusive; INT64_MAX: to the end of file), pid).
**   1. POSIX byte-range locks (classic and OFD; OWNER is the kernel's lock
**      owner): a request conflicts with a write lock of another owner, or
**      any lock of another owner for a write request, on an overlapping
**      range, in any session. One owner's ranges are split, replaced and
**      merged with adjacent ranges of the same type as POSIX says, in one
**      transaction. F_GETLK reports the first conflicting range and the
**      pid that took it (0 if that pid is in another host's namespace).
**   2. flock locks: whole-file, shared or exclusive, per open file
**      (OWNER); a conversion replaces the owner's lock in one transaction
**      when nothing conflicts (never dropped on a failed conversion).
**      POSIX and flock locks do not conflict with each other (as Linux).
**   3. Release: flush_owner drops OWNER's POSIX locks on the inode (the
**      close rule); the last release of an open file drops the locks of
**      every owner that locked through it (OFD and flock locks); the end of
**      a session drops all of its locks, and the reaper those of a dead
**      session (vol_session.c).
**   4. A blocking request (F_SETLKW, flock without LOCK_NB) retries after
**      every commit of another connection (vol_bg_wait_commit: the
**      follower's data_version poll) and at least once a second; it holds
**      no lock of the volume while it waits, and occupies one FUSE thread.
*/
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "vol_int.h"

#define TO_EOF INT64_MAX

/* [*start, *end] of LK (whence SEEK_SET, as the frontend passes it). */
static int lock_range(const struct flock *lk, int64_t *start, int64_t *end)
{
	int64_t s = lk->l_start, len = lk->l_len;

	if (lk->l_whence != SEEK_SET)
		return -EINVAL;
	if (len < 0) {
		if (s + len < 0)
			return -EINVAL;
		*start = s + len;
		*end = s - 1;
	} else {
		if (s < 0)
			return -EINVAL;
		*start = s;
		*end = len == 0 || len > TO_EOF - s ? TO_EOF : s + len - 1;
	}
	return 0;
}

/* Records that OWNER locked through F (released with F). db_lock held. */
static void note_owner(struct vol_file *f, uint64_t owner)
{
	for (unsigned i = 0; i < f->lk_n; i++)
		if (f->lk_owners[i] == owner)
			return;
	if (f->lk_n == f->lk_cap) {
		unsigned cap = f->lk_cap ? f->lk_cap * 2 : 4;
		uint64_t *o = realloc(f->lk_owners, cap * sizeof(*o));

		if (!o)
			return;         /* dropped at the session's end instead */
		f->lk_owners = o;
		f->lk_cap = cap;
	}
	f->lk_owners[f->lk_n++] = owner;
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

static sqlite3_stmt *prep(struct vol_fs *v, const char *sql)
{
	sqlite3_stmt *s;

	return sqlite3_prepare_v2(v->db, sql, -1, &s, NULL) == SQLITE_OK ? s : NULL;
}

/* The first lock of another owner that conflicts with TYPE on [start,
** end] of INO (FLOCK: flock locks); 1 and *OUT filled, 0 if none. */
static int conflict(struct vol_fs *v, uint64_t ino, uint64_t owner, bool flock_kind, int type,
		    int64_t start, int64_t end, struct flock *out)
{
	sqlite3_stmt *s = prep(v, "SELECT type, start, end, pid, session FROM locks"
				  " WHERE ino = ?1 AND flock = ?2 AND NOT (session = ?3 AND owner = ?4)"
				  " AND start <= ?6 AND end >= ?5 AND (type = ?7 OR ?8 = ?7)"
				  " ORDER BY start LIMIT 1");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int(s, 2, flock_kind);
	sqlite3_bind_int64(s, 3, v->session);
	sqlite3_bind_int64(s, 4, (int64_t)owner);
	sqlite3_bind_int64(s, 5, start);
	sqlite3_bind_int64(s, 6, end);
	sqlite3_bind_int(s, 7, F_WRLCK);
	sqlite3_bind_int(s, 8, type);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && out) {
		int64_t st = sqlite3_column_int64(s, 1), en = sqlite3_column_int64(s, 2);

		memset(out, 0, sizeof(*out));
		out->l_type = (short)sqlite3_column_int(s, 0);
		out->l_whence = SEEK_SET;
		out->l_start = st;
		out->l_len = en == TO_EOF ? 0 : en - st + 1;
		out->l_pid = (pid_t)sqlite3_column_int64(s, 3);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

static int row_add(struct vol_fs *v, uint64_t ino, uint64_t owner, bool flock_kind, int type,
		   int64_t start, int64_t end, pid_t pid)
{
	sqlite3_stmt *s = prep(v, "INSERT INTO locks(ino, session, owner, flock, type, start, end,"
				  " pid) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, v->session);
	sqlite3_bind_int64(s, 3, (int64_t)owner);
	sqlite3_bind_int(s, 4, flock_kind);
	sqlite3_bind_int(s, 5, type);
	sqlite3_bind_int64(s, 6, start);
	sqlite3_bind_int64(s, 7, end);
	sqlite3_bind_int64(s, 8, pid);
	return step_done(s);
}

struct range {
	int64_t rowid, start, end;
	int type;
};

/* OWNER's POSIX ranges on INO that overlap or touch [start, end]. */
static int own_ranges(struct vol_fs *v, uint64_t ino, uint64_t owner, int64_t start,
		      int64_t end, struct range **out, size_t *n)
{
	sqlite3_stmt *s = prep(v, "SELECT rowid, start, end, type FROM locks WHERE ino = ?1"
				  " AND session = ?2 AND owner = ?3 AND flock = 0"
				  " AND start <= ?5 AND end >= ?4");
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, v->session);
	sqlite3_bind_int64(s, 3, (int64_t)owner);
	sqlite3_bind_int64(s, 4, start > 0 ? start - 1 : 0);
	sqlite3_bind_int64(s, 5, end < TO_EOF ? end + 1 : TO_EOF);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			struct range *r = realloc(*out, (cap = cap ? cap * 2 : 8) * sizeof(*r));

			if (!r) {
				sqlite3_finalize(s);
				return -ENOMEM;
			}
			*out = r;
		}
		(*out)[*n].rowid = sqlite3_column_int64(s, 0);
		(*out)[*n].start = sqlite3_column_int64(s, 1);
		(*out)[*n].end = sqlite3_column_int64(s, 2);
		(*out)[*n].type = sqlite3_column_int(s, 3);
		(*n)++;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

static int row_del(struct vol_fs *v, int64_t rowid)
{
	sqlite3_stmt *s = prep(v, "DELETE FROM locks WHERE rowid = ?1");

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rowid);
	return step_done(s);
}

/* In a transaction: OWNER's POSIX locks on [start, end] become TYPE
** (F_UNLCK: none), splitting and merging its other ranges. */
static int posix_apply(struct vol_fs *v, uint64_t ino, uint64_t owner, int type, int64_t start,
		       int64_t end, pid_t pid)
{
	struct range *r;
	size_t n;
	int64_t ns = start, ne = end;
	int err = own_ranges(v, ino, owner, start, end, &r, &n);

	for (size_t i = 0; !err && i < n; i++) {
		bool overlaps = r[i].start <= end && r[i].end >= start;

		if (!overlaps && r[i].type != type)
			continue;       /* only touching, of another type: stays */
		if ((err = row_del(v, r[i].rowid)))
			break;
		if (r[i].type == type) {
			/* same type, overlapping or adjacent: one range */
			if (r[i].start < ns)
				ns = r[i].start;
			if (r[i].end > ne)
				ne = r[i].end;
			continue;
		}
		/* another type: the parts outside [start, end] stay */
		if (r[i].start < start)
			err = row_add(v, ino, owner, false, r[i].type, r[i].start, start - 1, pid);
		if (!err && r[i].end > end)
			err = row_add(v, ino, owner, false, r[i].type, end + 1, r[i].end, pid);
	}
	free(r);
	if (!err && type != F_UNLCK)
		err = row_add(v, ino, owner, false, type, ns, ne, pid);
	return err;
}

int vol_getlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f, uint64_t owner,
	      struct flock *lk)
{
	struct vol_fs *v = vol_fs(fs);
	int64_t start, end;
	struct flock found;
	int r;

	(void)c;
	if ((r = lock_range(lk, &start, &end)))
		return r;
	if (lk->l_type != F_RDLCK && lk->l_type != F_WRLCK)
		return -EINVAL;
	pthread_mutex_lock(&v->db_lock);
	r = conflict(v, f->ino, owner, false, lk->l_type, start, end, &found);
	pthread_mutex_unlock(&v->db_lock);
	if (r < 0)
		return r;
	if (r)
		*lk = found;
	else
		lk->l_type = F_UNLCK;
	return 0;
}

/* One attempt: 0 done, 1 conflict, negative errno. */
static int try_lock(struct vol_fs *v, struct vol_file *vf, uint64_t owner, bool flock_kind,
		    int type, int64_t start, int64_t end, pid_t pid)
{
	int r = vol_tx_open(v);

	if (r)
		return r;
	r = type == F_UNLCK ? 0 : conflict(v, vf->base.ino, owner, flock_kind, type, start, end,
					   NULL);
	if (r == 0) {
		if (flock_kind) {
			sqlite3_stmt *s = prep(v, "DELETE FROM locks WHERE ino = ?1 AND session = ?2"
						  " AND owner = ?3 AND flock = 1");

			r = s ? 0 : -EIO;
			if (s) {
				sqlite3_bind_int64(s, 1, (int64_t)vf->base.ino);
				sqlite3_bind_int64(s, 2, v->session);
				sqlite3_bind_int64(s, 3, (int64_t)owner);
				r = step_done(s);
			}
			if (!r && type != F_UNLCK)
				r = row_add(v, vf->base.ino, owner, true, type, 0, TO_EOF, pid);
		} else {
			r = posix_apply(v, vf->base.ino, owner, type, start, end, pid);
		}
		if (!r && type != F_UNLCK) {
			note_owner(vf, owner);
			atomic_fetch_add(&v->locks_taken, 1);
		}
	}
	if (r == 1) {
		vol_tx_close(v, -EAGAIN);
		return 1;
	}
	return vol_tx_close(v, r);
}

static int lock_loop(struct vol_fs *v, struct vol_file *vf, uint64_t owner, bool flock_kind,
		     int type, int64_t start, int64_t end, pid_t pid, bool wait)
{
	for (;;) {
		uint64_t seen = vol_bg_commits(v);
		int r = try_lock(v, vf, owner, flock_kind, type, start, end, pid);

		if (r != 1)
			return r;
		if (!wait)
			return -EAGAIN;
		if (vol_bg_wait_commit(v, &seen, 1000) == -ENOSYS)
			return -EAGAIN;
	}
}

int vol_setlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f, uint64_t owner,
	      const struct flock *lk, bool wait)
{
	int64_t start, end;
	int r;

	if ((r = lock_range(lk, &start, &end)))
		return r;
	if (lk->l_type != F_RDLCK && lk->l_type != F_WRLCK && lk->l_type != F_UNLCK)
		return -EINVAL;
	return lock_loop(vol_fs(fs), vol_file(f), owner, false, lk->l_type, start, end, c->pid,
			 wait);
}

int vol_flock(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f, uint64_t owner,
	      int op)
{
	int type, r;

	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		type = F_RDLCK;
		break;
	case LOCK_EX:
		type = F_WRLCK;
		break;
	case LOCK_UN:
		type = F_UNLCK;
		break;
	default:
		return -EINVAL;
	}
	r = lock_loop(vol_fs(fs), vol_file(f), owner, true, type, 0, TO_EOF, c->pid,
		      !(op & LOCK_NB));
	return r == -EAGAIN ? -EWOULDBLOCK : r;
}

/* Runs SQL (?1 ino, ?2 session, ?3 owner): 1 if it gave a row, 0 if
** not, or a negative errno. */
static int owner_sql(struct vol_fs *v, const char *sql, uint64_t ino, uint64_t owner)
{
	sqlite3_stmt *s = prep(v, sql);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, v->session);
	sqlite3_bind_int64(s, 3, (int64_t)owner);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

int vol_flush_owner(struct eddy_fs *fs, struct eddy_file *f, uint64_t owner)
{
	struct vol_fs *v = vol_fs(fs);
	int r;

	if (!atomic_load(&v->locks_taken))
		return 0;       /* the common case: this open never locked */
	pthread_mutex_lock(&v->db_lock);
	/* a look first: a DELETE would take the write lock even for nothing */
	r = owner_sql(v, "SELECT 1 FROM locks WHERE ino = ?1 AND session = ?2 AND owner = ?3"
		      " AND flock = 0 LIMIT 1", f->ino, owner);
	if (r == 1)
		r = owner_sql(v, "DELETE FROM locks WHERE ino = ?1 AND session = ?2"
			      " AND owner = ?3 AND flock = 0", f->ino, owner);
	pthread_mutex_unlock(&v->db_lock);
	return r < 0 ? r : 0;
}

void vol_locks_release_file(struct vol_fs *v, struct vol_file *f)
{
	pthread_mutex_lock(&v->db_lock);
	if (!f->lk_n) {
		pthread_mutex_unlock(&v->db_lock);
		return;
	}
	for (unsigned i = 0; i < f->lk_n; i++) {
		sqlite3_stmt *s = prep(v, "DELETE FROM locks WHERE ino = ?1 AND session = ?2"
					  " AND owner = ?3");

		if (!s)
			break;
		sqlite3_bind_int64(s, 1, (int64_t)f->base.ino);
		sqlite3_bind_int64(s, 2, v->session);
		sqlite3_bind_int64(s, 3, (int64_t)f->lk_owners[i]);
		step_done(s);
	}
	pthread_mutex_unlock(&v->db_lock);
	free(f->lk_owners);
	f->lk_owners = NULL;
	f->lk_n = f->lk_cap = 0;
}
