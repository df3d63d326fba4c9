/*
** vol_follow.c -- change news between the opens of one volume, and the
** background thread of an open (heartbeat, reaper, follower).
**
** Guarantees:
**   1. Every transaction that changes a name, an inode row, a chunk or an
**      xattr appends rows to `changes` (seq, session, kind, ino, parent,
**      name) in the same transaction: temporary triggers on this open's
**      connection (vol_changes_triggers) carry its session id. So a
**      change and its news commit together or not at all, whichever code
**      path made it.
**   2. The follower (this open's background thread, on a read connection
**      of its own) looks every VOL_FOLLOW_MS, while the frontend watches,
**      at the WAL-index header (mapped read-only: no system call while
**      nothing happens) and, when it moved, at `PRAGMA data_version`;
**      when another connection committed it reads
**      the rows after its cursor that other sessions wrote, in seq order,
**      and turns them into struct eddy_events calls: an entry added or
**      replaced -> entry_changed, removed -> entry_deleted, an inode's
**      size or mtime -> inode_changed(data: page cache too), anything
**      else about an inode -> inode_changed(attr_only).
**   3. A gap (rows trimmed before this open read them, or its session
**      was reaped and registered again) -> everything_changed.
**   4. The heartbeat (VOL_HEARTBEAT_MS) stores the cursor; the reaper
**      (VOL_REAP_MS) trims rows every following session has read.
**   5. Waiters for other opens' commits (lock waits) sleep on
**      vol_bg_wait_commit, woken when data_version moves.
** The callbacks run on this thread with bg->lock held (watch_stop waits
** for them), never with db_lock or another lock of the volume.
*/
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vol_int.h"

enum { CH_ADD = 1, CH_DEL = 2, CH_ATTR = 3, CH_DATA = 4 };

struct vol_bg {
	struct vol_fs *v;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;       /* stop */
	pthread_cond_t commit;     /* data_version moved */
	bool stop, running;
	bool watching;             /* lock */
	struct eddy_events ev;     /* lock */
	sqlite3 *db;               /* the follower's connection: lock */
	sqlite3_stmt *version, *rows;
	int64_t last_version;
	const uint32_t *shm;       /* the WAL-index header (read only), or NULL */
	uint32_t shm_key[10];      /* its words 2..11 at the last look */
	uint64_t commits;          /* lock: data_version moves seen */
	int waiters;               /* lock: threads in vol_bg_wait_commit */
	atomic_llong cursor;       /* last seq read (written under lock) */
};

/* eddy_news(): does the running transaction write change news (vol_fs.news)? */
static void news_fn(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const struct vol_fs *v = sqlite3_user_data(cx);

	(void)argc;
	(void)argv;
	sqlite3_result_int(cx, v->news);
}

int vol_changes_triggers(struct vol_fs *v)
{
	static const char *const fmt[] = {
		"CREATE TEMP TRIGGER eddy_d_add AFTER INSERT ON main.dentries WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino, parent, name)"
		" VALUES(%1$" PRId64 ", 1, new.ino, new.parent, new.name); END",
		"CREATE TEMP TRIGGER eddy_d_del AFTER DELETE ON main.dentries WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino, parent, name)"
		" VALUES(%1$" PRId64 ", 2, old.ino, old.parent, old.name); END",
		"CREATE TEMP TRIGGER eddy_d_set AFTER UPDATE ON main.dentries WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino, parent, name)"
		" VALUES(%1$" PRId64 ", 2, old.ino, old.parent, old.name);"
		" INSERT INTO changes(session, kind, ino, parent, name)"
		" VALUES(%1$" PRId64 ", 1, new.ino, new.parent, new.name); END",
		/* rows written back unchanged (or only next_cookie) are no news */
		"CREATE TEMP TRIGGER eddy_i_set AFTER UPDATE ON main.inodes WHEN eddy_news() AND ("
		" new.mode IS NOT old.mode OR new.uid IS NOT old.uid OR new.gid IS NOT old.gid"
		" OR new.nlink IS NOT old.nlink OR new.size IS NOT old.size"
		" OR new.stored IS NOT old.stored OR new.rdev IS NOT old.rdev"
		" OR new.atime IS NOT old.atime OR new.mtime IS NOT old.mtime"
		" OR new.ctime IS NOT old.ctime OR new.parent IS NOT old.parent) BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ","
		" CASE WHEN new.size IS NOT old.size OR new.mtime IS NOT old.mtime THEN 4"
		" ELSE 3 END, new.ino); END",
		"CREATE TEMP TRIGGER eddy_i_del AFTER DELETE ON main.inodes WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 3, old.ino); END",
		"CREATE TEMP TRIGGER eddy_c_add AFTER INSERT ON main.chunks WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 4, new.ino); END",
		"CREATE TEMP TRIGGER eddy_c_del AFTER DELETE ON main.chunks WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 4, old.ino); END",
		"CREATE TEMP TRIGGER eddy_c_set AFTER UPDATE ON main.chunks WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 4, new.ino); END",
		"CREATE TEMP TRIGGER eddy_x_add AFTER INSERT ON main.xattrs WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 3, new.ino); END",
		"CREATE TEMP TRIGGER eddy_x_del AFTER DELETE ON main.xattrs WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 3, old.ino); END",
		"CREATE TEMP TRIGGER eddy_x_set AFTER UPDATE ON main.xattrs WHEN eddy_news() BEGIN"
		" INSERT INTO changes(session, kind, ino) VALUES(%1$" PRId64 ", 3, new.ino); END",
	};
	char sql[1024];
	int r;

	if (sqlite3_create_function_v2(v->db, "eddy_news", 0, SQLITE_UTF8, v, news_fn, NULL,
				       NULL, NULL) != SQLITE_OK)
		return -EIO;
	for (size_t i = 0; i < sizeof(fmt) / sizeof(*fmt); i++) {
		snprintf(sql, sizeof(sql), fmt[i], v->session);
		if ((r = vol_sql(v->db, sql)))
			return r;
	}
	return 0;
}

void vol_bg_kick(struct vol_fs *v)
{
	/* without bg->lock (db_lock is held): a wakeup lost to the race with
	 * the thread's next wait only delays the commit to its next look */
	if (v->bg)
		pthread_cond_signal(&v->bg->wake);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bg->lock held: the highest seq handed out so far. */
static int64_t last_seq(struct vol_bg *bg)
{
	sqlite3_stmt *s;
	int64_t seq = 0;

	if (sqlite3_prepare_v2(bg->db, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
			       -1, &s, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(s) == SQLITE_ROW)
		seq = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return seq;
}

/* bg->lock held: one row to the frontend. */
static void dispatch(struct vol_bg *bg, sqlite3_stmt *s)
{
	const struct eddy_events *ev = &bg->ev;
	int kind = sqlite3_column_int(s, 2);
	uint64_t ino = (uint64_t)sqlite3_column_int64(s, 3);
	uint64_t parent = (uint64_t)sqlite3_column_int64(s, 4);
	char name[512];
	int n = sqlite3_column_bytes(s, 5);

	if (n >= (int)sizeof(name))
		n = sizeof(name) - 1;
	if (n > 0)
		memcpy(name, sqlite3_column_blob(s, 5), (size_t)n);
	name[n > 0 ? n : 0] = 0;
	switch (kind) {
	case CH_ADD:
		if (name[0] && ev->entry_changed)
			ev->entry_changed(ev->up, parent, name);
		break;
	case CH_DEL:
		if (name[0] && ev->entry_deleted)
			ev->entry_deleted(ev->up, parent, name, ino);
		break;
	case CH_ATTR:
	case CH_DATA:
		if (ev->inode_changed)
			ev->inode_changed(ev->up, ino, kind == CH_ATTR);
		break;
	}
}

/* bg->lock held: reads and dispatches the news after the cursor. */
static void follow(struct vol_bg *bg)
{
	struct vol_fs *v = bg->v;
	int64_t cursor = atomic_load(&bg->cursor);
	bool first = true;
	int rc;

	if (!bg->rows && sqlite3_prepare_v3(bg->db,
					    "SELECT seq, session, kind, ino, parent, name"
					    " FROM changes WHERE seq > ?1 ORDER BY seq LIMIT 512",
					    -1, SQLITE_PREPARE_PERSISTENT, &bg->rows,
					    NULL) != SQLITE_OK)
		return;
	for (;;) {
		int nrows = 0;

		sqlite3_reset(bg->rows);
		sqlite3_bind_int64(bg->rows, 1, cursor);
		while ((rc = sqlite3_step(bg->rows)) == SQLITE_ROW) {
			int64_t seq = sqlite3_column_int64(bg->rows, 0);

			if (first && seq > cursor + 1 && bg->watching) {
				/* rows this open never read were trimmed */
				atomic_fetch_add(&v->news_gaps, 1);
				if (bg->ev.everything_changed)
					bg->ev.everything_changed(bg->ev.up);
			}
			first = false;
			cursor = seq;
			nrows++;
			if (sqlite3_column_int64(bg->rows, 1) == v->session || !bg->watching)
				continue;
			atomic_fetch_add(&v->news_rows, 1);
			dispatch(bg, bg->rows);
		}
		sqlite3_reset(bg->rows);
		atomic_store(&bg->cursor, cursor);
		if (rc != SQLITE_DONE || nrows < 512)
			break;
	}
}

/* bg->lock held: has the WAL-index header moved since the last look?
** Its words 2..11 (iChange, isInit/page size, mxFrame, nPage, frame
** checksum, salts: https://www.sqlite.org/walformat.html) change with
** every commit, checkpoint reset and recovery. A plain memory read: no
** system call while nothing happens. A read torn by a concurrent commit
** only shows the change one poll later. */
static bool shm_moved(struct vol_bg *bg)
{
	uint32_t now[10];
	bool moved;

	if (!bg->shm)
		return true;
	for (int i = 0; i < 10; i++)
		now[i] = __atomic_load_n(&bg->shm[2 + i], __ATOMIC_ACQUIRE);
	moved = memcmp(now, bg->shm_key, sizeof(now)) != 0;
	memcpy(bg->shm_key, now, sizeof(now));
	return moved;
}

/* bg->lock held: did another connection commit since the last look? */
static bool committed(struct vol_bg *bg)
{
	int64_t ver = bg->last_version;

	if (!shm_moved(bg))
		return false;
	if (!bg->version && sqlite3_prepare_v3(bg->db, "PRAGMA data_version", -1,
					       SQLITE_PREPARE_PERSISTENT, &bg->version,
					       NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(bg->version) == SQLITE_ROW)
		ver = sqlite3_column_int64(bg->version, 0);
	sqlite3_reset(bg->version);
	if (ver == bg->last_version)
		return false;
	bg->last_version = ver;
	return true;
}

static void *bg_main(void *arg)
{
	struct vol_bg *bg = arg;
	struct vol_fs *v = bg->v;
	int64_t next_beat = mono_ms() + VOL_HEARTBEAT_MS, next_reap = mono_ms() + VOL_REAP_MS;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&bg->lock);
	while (!bg->stop) {
		struct timespec until;
		int64_t now = mono_ms(), wait_ms, dl;

		if ((bg->watching || bg->waiters) && committed(bg)) {
			bg->commits++;
			pthread_cond_broadcast(&bg->commit);
			if (bg->watching)
				follow(bg);
		}
		if ((dl = atomic_load(&v->batch_deadline)) && now >= dl) {
			/* a batch that nobody's next operation committed */
			pthread_mutex_unlock(&bg->lock);
			pthread_mutex_lock(&v->db_lock);
			if (v->batch_open && vol_mono_ms() >= v->batch_start + v->opt.batch_ms)
				vol_batch_commit(v);
			pthread_mutex_unlock(&v->db_lock);
			pthread_mutex_lock(&bg->lock);
			continue;
		}
		if (now >= next_beat || now >= next_reap) {
			bool following = bg->watching, beat = now >= next_beat;
			bool reap = now >= next_reap;
			int64_t cursor = atomic_load(&bg->cursor);
			int r = 0;

			pthread_mutex_unlock(&bg->lock);
			pthread_mutex_lock(&v->db_lock);
			if (beat) {
				r = vol_session_heartbeat(v, cursor, following);
				vol_free_check(v);
			}
			if (reap)
				vol_session_reap(v);
			pthread_mutex_unlock(&v->db_lock);
			pthread_mutex_lock(&bg->lock);
			if (r == 1 && bg->watching && bg->ev.everything_changed) {
				/* reaped while alive: news may be lost */
				atomic_fetch_add(&v->news_gaps, 1);
				bg->ev.everything_changed(bg->ev.up);
			}
			if (beat)
				next_beat = now + VOL_HEARTBEAT_MS;
			if (reap)
				next_reap = now + VOL_REAP_MS;
			continue;
		}
		wait_ms = (bg->watching || bg->waiters) ? VOL_FOLLOW_MS : next_beat - now;
		if ((dl = atomic_load(&v->batch_deadline)) && dl - now < wait_ms)
			wait_ms = dl > now ? dl - now : 1;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		until.tv_sec += wait_ms / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&bg->wake, &bg->lock, &until);
	}
	pthread_mutex_unlock(&bg->lock);
	return NULL;
}

/* The WAL index as SQLite mapped it for the follower's connection (valid
** while that connection is open). Never open(2) and close(2) the -shm
** file here: closing any descriptor of it would drop every fcntl lock the
** process holds on it, SQLite's included. Without it every poll asks
** SQLite. */
static void map_shm(struct vol_bg *bg)
{
	sqlite3_file *f = NULL;
	volatile void *p = NULL;

	if (sqlite3_file_control(bg->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
	    !f || !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
		return;
	if (f->pMethods->xShmMap(f, 0, 32768, 0, &p) == SQLITE_OK && p)
		bg->shm = (const uint32_t *)(const void *)p;
}

int vol_bg_start(struct vol_fs *v, char *err, size_t errlen)
{
	struct vol_bg *bg = calloc(1, sizeof(*bg));
	pthread_condattr_t ca;
	char path[4200];
	int rc;

	if (!bg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	bg->v = v;
	pthread_mutex_init(&bg->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bg->wake, &ca);
	pthread_cond_init(&bg->commit, NULL);
	pthread_condattr_destroy(&ca);
	atomic_init(&bg->cursor, 0);
	v->bg = bg;
	snprintf(path, sizeof(path), "%s/%s", v->path, VOL_DB_NAME);
	rc = sqlite3_open_v2(path, &bg->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, bg->db ? sqlite3_errmsg(bg->db) : "cannot open");
		return vol_db_errno(rc);
	}
	sqlite3_busy_timeout(bg->db, 5000);
	committed(bg);          /* the connection now has the WAL index open */
	map_shm(bg);
	committed(bg);
	if ((rc = pthread_create(&bg->thread, NULL, bg_main, bg))) {
		snprintf(err, errlen, "background thread: %s", strerror(rc));
		return -rc;
	}
	bg->running = true;
	return 0;
}

void vol_bg_stop(struct vol_fs *v)
{
	struct vol_bg *bg = v->bg;

	if (!bg)
		return;
	if (bg->running) {
		pthread_mutex_lock(&bg->lock);
		bg->stop = true;
		pthread_cond_signal(&bg->wake);
		pthread_mutex_unlock(&bg->lock);
		pthread_join(bg->thread, NULL);
	}
	if (bg->rows)
		sqlite3_finalize(bg->rows);
	if (bg->version)
		sqlite3_finalize(bg->version);
	if (bg->db)
		sqlite3_close(bg->db);
	pthread_cond_destroy(&bg->commit);
	pthread_cond_destroy(&bg->wake);
	pthread_mutex_destroy(&bg->lock);
	free(bg);
	v->bg = NULL;
}

int vol_watch_start(struct eddy_fs *fs, const struct eddy_events *ev)
{
	struct vol_bg *bg = vol_fs(fs)->bg;

	if (!bg)
		return -ENOSYS;
	pthread_mutex_lock(&bg->lock);
	bg->ev = *ev;
	/* the kernel knows nothing yet: news from now on */
	atomic_store(&bg->cursor, last_seq(bg));
	committed(bg);
	bg->watching = true;
	pthread_cond_signal(&bg->wake);
	pthread_mutex_unlock(&bg->lock);
	return 0;
}

void vol_watch_stop(struct eddy_fs *fs)
{
	struct vol_bg *bg = vol_fs(fs)->bg;

	if (!bg)
		return;
	pthread_mutex_lock(&bg->lock);
	bg->watching = false;
	memset(&bg->ev, 0, sizeof(bg->ev));
	pthread_mutex_unlock(&bg->lock);
}

int64_t vol_bg_cursor(struct vol_fs *v)
{
	return v->bg ? atomic_load(&v->bg->cursor) : 0;
}

bool vol_bg_following(struct vol_fs *v)
{
	bool w = false;

	if (v->bg) {
		pthread_mutex_lock(&v->bg->lock);
		w = v->bg->watching;
		pthread_mutex_unlock(&v->bg->lock);
	}
	return w;
}

int vol_bg_wait_commit(struct vol_fs *v, uint64_t *seen, int timeout_ms)
{
	struct vol_bg *bg = v->bg;
	struct timespec until;
	int r = 0;

	if (!bg)
		return -ENOSYS;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	until.tv_sec += timeout_ms / 1000 + until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&bg->lock);
	bg->waiters++;
	pthread_cond_signal(&bg->wake);
	while (bg->commits == *seen && !bg->stop && r == 0)
		r = pthread_cond_timedwait(&bg->commit, &bg->lock, &until);
	*seen = bg->commits;
	bg->waiters--;
	pthread_mutex_unlock(&bg->lock);
	return r == ETIMEDOUT ? -ETIMEDOUT : 0;
}

uint64_t vol_bg_commits(struct vol_fs *v)
{
	uint64_t n = 0;

	if (v->bg) {
		pthread_mutex_lock(&v->bg->lock);
		n = v->bg->commits;
		pthread_mutex_unlock(&v->bg->lock);
	}
	return n;
}
