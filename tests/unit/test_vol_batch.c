/*
** test_vol_batch.c -- the volume's commit window (vol_db.c, BATCHES)
** through struct eddy_fs_ops: operations of an open alone on its volume
** commit together (invisible to other connections until then, visible to
** the open at once), a failed operation is rolled back alone, fsync
** commits, a second open waits for the batch and then every transaction
** commits by itself (with change news) while both are open.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "vol_fixture.h"

/* A connection of its own (no commit of the open first, as vfx_sql_int does). */
static long long peek_int(struct vfx *v, const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *s;
	long long r = -1;

	snprintf(path, sizeof(path), "%s/eddyfs.db", v->dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			r = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return r;
}

TEST(vol_batch_groups_commits_and_rolls_back_one_op)
{
	struct eddy_entry e, d;
	struct vfx v;
	char target[300];
	uint64_t a;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	vfx_unmount(&v);
	CHECK(vfx_open_more(&v, &v.x, 600000) == 0);   /* only we commit */
	a = mfx_file(&v.x, EDDY_ROOT_INO, "a", "data");
	CHECK(a != 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	/* the open sees its operations; another connection does not yet */
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "d"), d.ino);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'd'"), 0);
	/* a failed operation inside the batch leaves nothing and ends nothing */
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d", 0755, &e), -EEXIST);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "a", d.ino, "x/y", 0), -EINVAL);
	memset(target, 'x', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	CHECK_EQ(v.x.op->symlink(v.x.fs, &v.x.ctx, target, d.ino, "s", &e), 0);
	v.x.op->forget(v.x.fs, e.ino, 1);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, d.ino, "s"), 0);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM inodes"), 2);   /* root, a (closed) */
	CHECK_EQ(vol_fs_commit(v.x.fs), 0);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries"), 2);
	CHECK_EQ(peek_int(&v, "SELECT value FROM meta WHERE key = 'ninodes'"), 3);
	CHECK_EQ(peek_int(&v, "SELECT value FROM meta WHERE key = 'used_bytes'"), 4);
	CHECK(mfx_report(&v.x, "vol_batches") >= 1);
	/* alone: no change news is written */
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM changes"), 0);
	/* fsync commits (durably) */
	{
		struct eddy_open how;
		struct eddy_file *f;

		CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, d.ino, "synced", 0644,
					O_CREAT | O_WRONLY, &e, &f, &how), 0);
		CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "xyz", 3, 0), 3);
		CHECK_EQ(v.x.op->fsync(v.x.fs, f, false), 0);
		CHECK_EQ(peek_int(&v, "SELECT size FROM inodes i JOIN dentries n ON n.ino = i.ino"
				  " WHERE CAST(n.name AS TEXT) = 'synced'"), 3);
		v.x.op->release(v.x.fs, f);
		v.x.op->forget(v.x.fs, e.ino, 1);
	}
	/* uncommitted operations go with the open (a crash) */
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "late", 0755, &e), 0);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'late'"), 0);
	vfx_unmount(&v);               /* a clean close commits */
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'late'"), 1);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "a"), a);
	CHECK_EQ(mfx_read(&v.x, a, 0, 64), 4);
	vfx_close(&v);
}

TEST(vol_batch_ends_when_a_second_open_comes)
{
	struct eddy_entry e;
	struct vfx v;
	struct mfx b;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	vfx_unmount(&v);
	CHECK(vfx_open_more(&v, &v.x, 50) == 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d1", 0755, &e), 0);
	/* the second open registers in a write transaction: after the batch */
	CHECK(vfx_open_more(&v, &b, 50) == 0);
	CHECK(mfx_lookup(&b, EDDY_ROOT_INO, "d1") != 0);
	/* from now on every transaction commits by itself, with news */
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d2", 0755, &e), 0);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'd2'"), 1);
	CHECK(peek_int(&v, "SELECT count(*) FROM changes WHERE CAST(name AS TEXT) = 'd2'") >= 1);
	CHECK(mfx_lookup(&b, EDDY_ROOT_INO, "d2") != 0);
	CHECK_EQ(b.op->mkdir(b.fs, &b.ctx, EDDY_ROOT_INO, "d3", 0755, &e), 0);
	CHECK_EQ(peek_int(&v, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'd3'"), 1);
	b.fs->ops->destroy(b.fs);
	vfx_close(&v);
}
