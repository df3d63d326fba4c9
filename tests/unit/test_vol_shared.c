/*
** test_vol_shared.c -- unit tests of several opens of one volume in one
** process: sessions, totals and block ids shared through the database,
** change news from one open reaching the other's events, holds of
** open-unlinked files, and the reaping of a dead session.
** Waits for news are bounded polls (never a timing threshold).
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "vol_fixture.h"

#define NEWS_BOUND_MS 20000        /* a failure only if still missing after this */

struct news {
	pthread_mutex_t lock;
	char log[8192];            /* "kind parent name ino;" records */
	size_t len;
	int everything;
};

static void news_add(struct news *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void news_add(struct news *n, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&n->lock);
	va_start(ap, fmt);
	if (n->len < sizeof(n->log) - 128)
		n->len += (size_t)vsnprintf(n->log + n->len, sizeof(n->log) - n->len, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&n->lock);
}

static void ev_entry(void *up, uint64_t parent, const char *name)
{
	news_add(up, "add %llu %s;", (unsigned long long)parent, name);
}

static void ev_deleted(void *up, uint64_t parent, const char *name, uint64_t child)
{
	news_add(up, "del %llu %s %llu;", (unsigned long long)parent, name,
		 (unsigned long long)child);
}

static void ev_inode(void *up, uint64_t ino, bool attr_only)
{
	news_add(up, "%s %llu;", attr_only ? "attr" : "data", (unsigned long long)ino);
}

static void ev_all(void *up)
{
	struct news *n = up;

	pthread_mutex_lock(&n->lock);
	n->everything++;
	pthread_mutex_unlock(&n->lock);
}

/* Polls until the news log contains WANT (bounded). */
static bool news_seen(struct news *n, const char *want)
{
	for (int waited = 0; waited < NEWS_BOUND_MS; waited += 5) {
		bool found;

		pthread_mutex_lock(&n->lock);
		found = strstr(n->log, want) != NULL;
		pthread_mutex_unlock(&n->lock);
		if (found)
			return true;
		usleep(5000);
	}
	fprintf(stderr, "  news missing: %s (log: %s)\n", want, n->log);
	return false;
}

static int open_second(struct vfx *v, struct mfx *b)
{
	return vfx_open_more(v, b, VOL_DEFAULT_BATCH_MS);
}

TEST(vol_two_opens_share_names_totals_and_blocks)
{
	struct vfx v;
	struct mfx b;
	struct statvfs sa, sb;
	uint64_t ino;

	CHECK(vfx_open(&v, 4096, 0, 0) == 0);
	CHECK(open_second(&v, &b) == 0);
	/* a name made by one open is there for the other */
	ino = mfx_file(&v.x, EDDY_ROOT_INO, "a", "from a");
	CHECK(ino != 0);
	CHECK_EQ(mfx_lookup(&b, EDDY_ROOT_INO, "a"), ino);
	CHECK_EQ(mfx_read(&b, ino, 0, 100), 6);
	/* both write blocks: ids never collide */
	CHECK(mfx_file(&b, EDDY_ROOT_INO, "b", "from b") != 0);
	CHECK(mfx_file(&v.x, EDDY_ROOT_INO, "c", "from c") != 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(DISTINCT block) FROM chunks"), 3);
	CHECK_EQ(vfx_count_blocks(&v), 3);
	/* totals are the database's: both opens agree */
	CHECK_EQ(v.x.op->statfs(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, &sa), 0);
	CHECK_EQ(b.op->statfs(b.fs, &b.ctx, EDDY_ROOT_INO, &sb), 0);
	CHECK_EQ(sa.f_files - sa.f_ffree, 4);
	CHECK_EQ(sb.f_files - sb.f_ffree, 4);
	CHECK_EQ(mfx_report(&b, "vol_bytes_used"), 18);
	CHECK_EQ(vfx_sql_int(&v, "SELECT value FROM meta WHERE key = 'ninodes'"), 4);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM sessions"), 2);
	/* b's end: a's session stays */
	b.fs->ops->destroy(b.fs);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM sessions"), 1);
	vfx_close(&v);
}

TEST(vol_news_reach_the_other_open)
{
	struct news n = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct eddy_events ev = { .entry_changed = ev_entry, .entry_deleted = ev_deleted,
				  .inode_changed = ev_inode, .everything_changed = ev_all,
				  .up = &n };
	struct stat st = { 0 };
	struct vfx v;
	struct mfx b;
	uint64_t ino;
	char want[128];

	CHECK(vfx_open(&v, 4096, 0, 0) == 0);
	CHECK(open_second(&v, &b) == 0);
	CHECK_EQ(b.op->watch_start(b.fs, &ev), 0);
	ino = mfx_file(&v.x, EDDY_ROOT_INO, "f", "hello");
	CHECK(ino != 0);
	CHECK(news_seen(&n, "add 1 f;"));
	snprintf(want, sizeof(want), "data %llu;", (unsigned long long)ino);
	CHECK(news_seen(&n, want));
	st.st_mode = 0600;
	CHECK_EQ(mfx_setattr(&v.x, &v.x.ctx, ino, &st, EDDY_SET_MODE, NULL), 0);
	snprintf(want, sizeof(want), "attr %llu;", (unsigned long long)ino);
	CHECK(news_seen(&n, want));
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "f", EDDY_ROOT_INO, "g", 0), 0);
	snprintf(want, sizeof(want), "del 1 f %llu;", (unsigned long long)ino);
	CHECK(news_seen(&n, want));
	CHECK(news_seen(&n, "add 1 g;"));
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, ino, "user.k", "v", 1, 0), 0);
	/* b's own changes are not echoed back */
	CHECK(mfx_file(&b, EDDY_ROOT_INO, "mine", "x") != 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "g"), 0);
	snprintf(want, sizeof(want), "del 1 g %llu;", (unsigned long long)ino);
	CHECK(news_seen(&n, want));
	pthread_mutex_lock(&n.lock);
	CHECK(strstr(n.log, "add 1 mine;") == NULL);
	CHECK_EQ(n.everything, 0);
	pthread_mutex_unlock(&n.lock);
	CHECK(mfx_report(&b, "vol_news_rows") > 0);
	b.op->watch_stop(b.fs);
	b.fs->ops->destroy(b.fs);
	vfx_close(&v);
}

/* Bounded polls of the volume's tables (the reapers run every 2 s). */
static bool holds_become(struct vfx *v, long long n)
{
	for (int waited = 0; waited < NEWS_BOUND_MS; waited += 20) {
		if (vfx_sql_int(v, "SELECT count(*) FROM holds") == n)
			return true;
		usleep(20000);
	}
	return false;
}

static bool orphans_become(struct vfx *v, long long n)
{
	for (int waited = 0; waited < NEWS_BOUND_MS; waited += 20) {
		if (vfx_sql_int(v, "SELECT count(*) FROM inodes WHERE nlink = 0") == n)
			return true;
		usleep(20000);
	}
	return false;
}

TEST(vol_open_unlinked_held_across_opens)
{
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct vfx v;
	struct mfx b;
	char buf[16];

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	CHECK(open_second(&v, &b) == 0);
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "t", 0644, O_RDWR | O_CREAT,
				&e, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "keep me", 7, 0), 7);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	/* b removes the name of a file a has open: a's reaper adopts it */
	v.x.op->forget(v.x.fs, e.ino, 1);
	CHECK_EQ(b.op->unlink(b.fs, &b.ctx, EDDY_ROOT_INO, "t"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 1);
	CHECK(holds_become(&v, 1));
	CHECK_EQ(v.x.op->read(v.x.fs, f, buf, sizeof(buf), 0), 7);
	CHECK(memcmp(buf, "keep me", 7) == 0);
	/* a's last close: b still exists, so the reaper deletes it later */
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM holds"), 0);
	CHECK_EQ(vfx_sql_int(&v, "UPDATE inodes SET ctime = 0 WHERE nlink = 0"), 0);
	CHECK(orphans_become(&v, 0));
	/* a removes a name it holds open: the hold keeps it from b's reaper */
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "u", 0644, O_RDWR | O_CREAT,
				&e, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "keep me", 7, 0), 7);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "u"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM holds"), 1);
	b.fs->ops->destroy(b.fs);          /* its end reaps orphans nobody holds */
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 1);
	CHECK_EQ(v.x.op->read(v.x.fs, f, buf, sizeof(buf), 0), 7);
	v.x.op->forget(v.x.fs, e.ino, 1);
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM holds"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	vfx_close(&v);
}

TEST(vol_dead_session_is_reaped)
{
	struct vfx v;
	char sql[512], host[256] = "";
	pid_t child;
	int status;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	CHECK(mfx_file(&v.x, EDDY_ROOT_INO, "x", "data") != 0);
	vfx_unmount(&v);
	/* a session of a process that is gone (same host), holding an
	 * orphan and a lock; and one whose heartbeat expired long ago */
	child = fork();
	if (child == 0)
		_exit(0);
	CHECK(waitpid(child, &status, 0) == child);
	gethostname(host, sizeof(host) - 1);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO sessions(id, host, pid, pid_start, kind, started, heartbeat)"
		 " VALUES(77, '%s', %d, 1, 'mount', 0, %lld)", host, (int)child,
		 (long long)time(NULL) * 1000000000LL);
	CHECK_EQ(vfx_sql_int(&v, sql), 0);
	CHECK_EQ(vfx_sql_int(&v, "INSERT INTO sessions(id, host, pid, pid_start, kind, started,"
			     " heartbeat) VALUES(78, 'elsewhere', 1, 1, 'mount', 0, 0)"), 0);
	/* our own pid with another start time: a reused pid, so dead too */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO sessions(id, host, pid, pid_start, kind, started, heartbeat)"
		 " VALUES(79, '%s', %d, 1, 'client', 0, %lld)", host, (int)getpid(),
		 (long long)time(NULL) * 1000000000LL);
	CHECK_EQ(vfx_sql_int(&v, sql), 0);
	CHECK_EQ(vfx_sql_int(&v, "UPDATE inodes SET nlink = 0 WHERE ino = 2"), 0);
	CHECK_EQ(vfx_sql_int(&v, "DELETE FROM dentries WHERE ino = 2"), 0);
	CHECK_EQ(vfx_sql_int(&v, "INSERT INTO holds(ino, session) VALUES(2, 77)"), 0);
	CHECK_EQ(vfx_sql_int(&v, "INSERT INTO locks(ino, session, owner, flock, type, start,"
			     " end, pid) VALUES(2, 77, 1, 0, 1, 0, -1, 1)"), 0);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM sessions"), 1);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM holds"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM locks"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE ino = 2"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	CHECK_EQ(mfx_report(&v.x, "vol_sessions_reaped"), 3);
	CHECK_EQ(mfx_report(&v.x, "vol_orphans_reaped"), 1);
	CHECK_EQ(vfx_sql_int(&v, "SELECT value FROM meta WHERE key = 'ninodes'"), 1);
	vfx_close(&v);
}
