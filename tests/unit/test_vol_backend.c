/*
** test_vol_backend.c -- the volume backend driven through struct
** eddy_fs_ops, without FUSE: format and open (and the volumes they
** refuse), create/write/read/fsync and persistence across a reopen,
** sparse files and truncation, hard links, rename (atomic replace,
** NOREPLACE, EXCHANGE, directory moves), open-unlinked files and the
** orphan cleanup of the next open, xattrs and ACL sync, capacity and
** inode limits, readdir cookies, a corrupt block, concurrent writers.
*/
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "unit.h"
#include "vol_fixture.h"

#define KB 1024

static void fill_pattern(char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)((i * 31 + seed) & 0xff);
}

/* Reads LEN bytes at OFF of INO into BUF through a fresh handle. */
static long long read_into(struct mfx *x, uint64_t ino, off_t off, size_t len, char *buf)
{
	struct eddy_open how;
	struct eddy_file *f;
	long long n;

	if (x->op->open(x->fs, &x->ctx, ino, O_RDONLY, &f, &how) != 0)
		return -1;
	n = x->op->read(x->fs, f, buf, len, off);
	x->op->release(x->fs, f);
	return n;
}

TEST(vol_format_refusals)
{
	struct vol_format_options fo;
	char err[512], path[160];
	struct vfx v;
	FILE *f;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	vfx_unmount(&v);
	vol_format_options_default(&fo);
	CHECK_EQ(vol_format(v.dir, &fo, err, sizeof(err)), -EEXIST);   /* a volume */
	CHECK(strstr(err, "already an eddyfs volume"));
	snprintf(path, sizeof(path), "%s/blocks", v.dir);
	CHECK_EQ(vol_format(path, &fo, err, sizeof(err)), -EEXIST);    /* not empty */
	fo.block_size = 3000;
	snprintf(path, sizeof(path), "%s-new", v.dir);
	CHECK_EQ(vol_format(path, &fo, err, sizeof(err)), -EINVAL);
	CHECK(access(path, F_OK) != 0);                               /* nothing made */
	/* not a volume, and left as it was */
	snprintf(path, sizeof(path), "%s/blocks/00", v.dir);
	CHECK(vol_check(path, err, sizeof(err)) < 0);
	CHECK(strstr(err, "not an eddyfs volume"));
	{
		struct vol_options o;
		struct eddy_fs *fs2;
		char lock[200];

		vol_options_default(&o);
		CHECK_EQ(vol_fs_open(path, &o, &fs2, err, sizeof(err)), -EINVAL);
		snprintf(lock, sizeof(lock), "%s/eddyfs.lock", path);
		CHECK(access(lock, F_OK) != 0);
	}
	CHECK(vol_check(v.dir, err, sizeof(err)) == 0);
	/* several opens share it; an exclusive tool's lock refuses them */
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(vol_check(v.dir, err, sizeof(err)), 0);
	{
		struct vol_options o;
		struct eddy_fs *fs2;
		char lock[200];
		int fd;

		vol_options_default(&o);
		CHECK_EQ(vol_fs_open(v.dir, &o, &fs2, err, sizeof(err)), 0);
		CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM sessions"), 2);
		fs2->ops->destroy(fs2);
		vfx_unmount(&v);
		CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM sessions"), 0);
		snprintf(lock, sizeof(lock), "%s/eddyfs.lock", v.dir);
		fd = open(lock, O_RDWR | O_CLOEXEC);
		CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
		CHECK_EQ(vol_check(v.dir, err, sizeof(err)), -EBUSY);
		CHECK_EQ(vol_fs_open(v.dir, &o, &fs2, err, sizeof(err)), -EBUSY);
		CHECK(strstr(err, "exclusive"));
		close(fd);
	}
	/* a newer format is refused, and left alone */
	CHECK_EQ(vfx_sql_int(&v, "UPDATE meta SET value = 99 WHERE key = 'format_version'"), 0);
	CHECK_EQ(vol_check(v.dir, err, sizeof(err)), -EPROTONOSUPPORT);
	CHECK(strstr(err, "format version 99"));
	CHECK(vfx_reopen(&v) != 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT value FROM meta WHERE key = 'format_version'"), 99);
	CHECK_EQ(vfx_sql_int(&v, "UPDATE meta SET value = 1 WHERE key = 'format_version'"), 0);
	CHECK(vfx_reopen(&v) == 0);
	vfx_unmount(&v);
	/* a corrupt database */
	snprintf(path, sizeof(path), "%s/eddyfs.db", v.dir);
	f = fopen(path, "r+");
	CHECK(f != NULL);
	fseek(f, 0, SEEK_SET);
	fputs("this is not a database, not at all, no", f);
	fclose(f);
	CHECK(vol_check(v.dir, err, sizeof(err)) < 0);
	CHECK(vfx_reopen(&v) != 0);
	vfx_close(&v);
}

TEST(vol_write_read_fsync_persist)
{
	static char data[40 * KB], back[40 * KB];
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct vfx v;
	uint64_t ino;

	CHECK(vfx_open(&v, 16 * KB, 0, 0) == 0);   /* small blocks: many chunks */
	fill_pattern(data, sizeof(data), 7);
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "f", 0644,
				O_RDWR | O_CREAT | O_EXCL, &e, &f, &how), 0);
	ino = e.ino;
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, 10000, 0), 10000);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data + 10000, sizeof(data) - 10000, 10000),
		 (long long)sizeof(data) - 10000);
	/* dirty data is visible to reads and attributes before any flush */
	CHECK_EQ(mfx_stat(&v.x, ino).st_size, sizeof(data));
	CHECK_EQ(v.x.op->read(v.x.fs, f, back, sizeof(back), 0), sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_EQ(v.x.op->fsync(v.x.fs, f, false), 0);
	CHECK(vfx_count_blocks(&v) >= 3);
	/* overwrite the middle, across a chunk boundary */
	memset(data + 15000, 'x', 3000);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data + 15000, 3000, 15000), 3000);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	v.x.op->release(v.x.fs, f);
	v.x.op->forget(v.x.fs, ino, 1);
	memset(back, 0, sizeof(back));
	CHECK_EQ(read_into(&v.x, ino, 0, sizeof(back), back), sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	/* a remount sees the same */
	vfx_unmount(&v);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "f"), ino);
	memset(back, 0, sizeof(back));
	CHECK_EQ(read_into(&v.x, ino, 0, sizeof(back), back), sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_EQ(read_into(&v.x, ino, sizeof(data) - 10, 100, back), 10);   /* short at EOF */
	/* O_APPEND writes at the end */
	CHECK_EQ(v.x.op->open(v.x.fs, &v.x.ctx, ino, O_WRONLY | O_APPEND, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "tail", 4, 0), 4);
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(mfx_stat(&v.x, ino).st_size, sizeof(data) + 4);
	/* O_TRUNC empties it and frees its blocks */
	CHECK_EQ(v.x.op->open(v.x.fs, &v.x.ctx, ino, O_WRONLY | O_TRUNC, &f, &how), 0);
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(mfx_stat(&v.x, ino).st_size, 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	vfx_close(&v);
}

TEST(vol_sparse_and_truncate)
{
	char buf[8 * KB];
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct stat st;
	struct vfx v;
	uint64_t ino;

	CHECK(vfx_open(&v, 4 * KB, 0, 0) == 0);
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "s", 0644,
				O_RDWR | O_CREAT, &e, &f, &how), 0);
	ino = e.ino;
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "end", 3, 1 << 20), 3);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "start", 5, 0), 5);
	v.x.op->release(v.x.fs, f);
	st = mfx_stat(&v.x, ino);
	CHECK_EQ(st.st_size, (1 << 20) + 3);
	CHECK(st.st_blocks <= 16);                    /* two 4 KiB chunks at most */
	CHECK_EQ(vfx_count_blocks(&v), 2);
	memset(buf, 1, sizeof(buf));
	CHECK_EQ(read_into(&v.x, ino, 500 * KB, sizeof(buf), buf), sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		CHECK(buf[i] == 0);
	CHECK_EQ(read_into(&v.x, ino, 0, 5, buf), 5);
	CHECK(memcmp(buf, "start", 5) == 0);
	/* a chunk of zeros is a hole, not a block */
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(v.x.op->open(v.x.fs, &v.x.ctx, ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, buf, 4 * KB, 64 * KB), 4 * KB);
	CHECK_EQ(v.x.op->fsync(v.x.fs, f, false), 0);
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(vfx_count_blocks(&v), 2);
	/* shrink into the first chunk, grow again: the cut bytes read as zeros */
	CHECK_EQ(mfx_truncate(&v.x, ino, 2), 0);
	CHECK_EQ(vfx_count_blocks(&v), 1);
	CHECK_EQ(mfx_truncate(&v.x, ino, 100), 0);
	memset(buf, 1, sizeof(buf));
	CHECK_EQ(read_into(&v.x, ino, 0, 100, buf), 100);
	CHECK(buf[0] == 's' && buf[1] == 't' && buf[2] == 0 && buf[4] == 0 && buf[99] == 0);
	CHECK_EQ(mfx_truncate(&v.x, ino, 0), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	CHECK_EQ(mfx_stat(&v.x, ino).st_blocks, 0);
	v.x.op->forget(v.x.fs, ino, 1);
	vfx_close(&v);
}

TEST(vol_hard_links_and_symlinks)
{
	struct eddy_entry e, d;
	char buf[64];
	struct vfx v;
	uint64_t f;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	f = mfx_file(&v.x, EDDY_ROOT_INO, "a", "shared");
	CHECK(f != 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	CHECK_EQ(v.x.op->link(v.x.fs, &v.x.ctx, f, d.ino, "b", &e), 0);
	CHECK_EQ(e.ino, f);
	CHECK_EQ(e.attr.st_nlink, 2);
	CHECK_EQ(v.x.op->link(v.x.fs, &v.x.ctx, f, d.ino, "b", &e), -EEXIST);
	CHECK_EQ(v.x.op->link(v.x.fs, &v.x.ctx, d.ino, EDDY_ROOT_INO, "dl", &e), -EPERM);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "a"), 0);
	CHECK_EQ(mfx_stat(&v.x, f).st_nlink, 1);
	CHECK_EQ(mfx_read(&v.x, f, 0, 64), 6);
	CHECK_EQ(v.x.op->symlink(v.x.fs, &v.x.ctx, "d/b", EDDY_ROOT_INO, "s", &e), 0);
	CHECK_EQ(v.x.op->readlink(v.x.fs, &v.x.ctx, e.ino, buf, sizeof(buf)), 3);
	CHECK(memcmp(buf, "d/b", 3) == 0);
	CHECK_EQ(v.x.op->rmdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d"), -ENOTEMPTY);
	CHECK_EQ(mfx_stat(&v.x, EDDY_ROOT_INO).st_nlink, 3);
	vfx_unmount(&v);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(mfx_lookup(&v.x, d.ino, "b"), f);
	CHECK_EQ(mfx_stat(&v.x, f).st_nlink, 1);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "a"), 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, d.ino, "b"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes"), 3);  /* root, d, s */
	CHECK_EQ(vfx_count_blocks(&v), 0);
	vfx_close(&v);
}

TEST(vol_rename_cases)
{
	struct eddy_entry d1, d2, sub;
	struct vfx v;
	uint64_t a, b;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	a = mfx_file(&v.x, EDDY_ROOT_INO, "a", "AAAA");
	b = mfx_file(&v.x, EDDY_ROOT_INO, "b", "BB");
	CHECK(a && b);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "a", EDDY_ROOT_INO, "b",
				RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "a", EDDY_ROOT_INO, "b",
				RENAME_EXCHANGE), 0);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "a"), b);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "b"), a);
	/* replace: the victim (b's inode, now named a) goes with its block */
	v.x.op->forget(v.x.fs, a, 1);
	v.x.op->forget(v.x.fs, b, 1);
	CHECK_EQ(vfx_count_blocks(&v), 2);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "b", EDDY_ROOT_INO, "a", 0), 0);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "a"), a);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "b"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 1);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes"), 2);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "nope", EDDY_ROOT_INO, "x", 0),
		 -ENOENT);
	/* directories */
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d1", 0755, &d1), 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d2", 0755, &d2), 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, d1.ino, "sub", 0755, &sub), 0);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d1", sub.ino, "x", 0), -EINVAL);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "d1", 0),
		 -ENOTEMPTY);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "a", EDDY_ROOT_INO, "d2", 0),
		 -EISDIR);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "a", 0),
		 -ENOTDIR);
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, d1.ino, "sub", d2.ino, "moved", 0), 0);
	CHECK_EQ(mfx_stat(&v.x, d1.ino).st_nlink, 2);
	CHECK_EQ(mfx_stat(&v.x, d2.ino).st_nlink, 3);
	CHECK_EQ(mfx_dotdot(&v.x, sub.ino), d2.ino);
	/* a directory replaces an empty directory */
	CHECK_EQ(v.x.op->rename(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "d1", 0), 0);
	CHECK_EQ(mfx_stat(&v.x, EDDY_ROOT_INO).st_nlink, 3);
	CHECK_EQ(mfx_lookup(&v.x, EDDY_ROOT_INO, "d1"), d2.ino);
	CHECK_EQ(mfx_stat(&v.x, d1.ino).st_nlink, 0);        /* held by our ref */
	v.x.op->forget(v.x.fs, d1.ino, 1);
	CHECK_EQ(mfx_stat(&v.x, d1.ino).st_nlink, 9999);     /* then gone */
	v.x.op->forget(v.x.fs, d2.ino, 1);
	v.x.op->forget(v.x.fs, sub.ino, 1);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 0);
	vfx_close(&v);
}

TEST(vol_unlinked_open_and_orphan_cleanup)
{
	char buf[16];
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f, *g;
	struct vfx v;
	uint64_t ino;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	/* normal life: the data stays while open, goes at the last close */
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "t", 0644, O_RDWR | O_CREAT,
				&e, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, "keep me", 7, 0), 7);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "t"), 0);
	CHECK_EQ(v.x.op->read(v.x.fs, f, buf, sizeof(buf), 0), 7);
	CHECK(memcmp(buf, "keep me", 7) == 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 1);
	v.x.op->forget(v.x.fs, e.ino, 1);
	CHECK_EQ(vfx_count_blocks(&v), 1);
	v.x.op->release(v.x.fs, f);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	/* a "crash" with an unlinked file open: the next open cleans it up */
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "u", 0644, O_RDWR | O_CREAT,
				&e, &g, &how), 0);
	ino = e.ino;
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, g, "orphan", 6, 0), 6);
	CHECK_EQ(v.x.op->fsync(v.x.fs, g, false), 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "u"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 1);
	vfx_unmount(&v);                          /* handle never released */
	/* a clean end lets go of its holds: the orphan goes with it */
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 0);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes WHERE nlink = 0"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM chunks"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	CHECK_EQ(mfx_stat(&v.x, ino).st_nlink, 9999);      /* gone: -ESTALE */
	vfx_close(&v);
}

static void acl_entry(unsigned char *p, unsigned tag, unsigned perm, unsigned id)
{
	uint16_t t = htole16((uint16_t)tag), q = htole16((uint16_t)perm);
	uint32_t i = htole32(id);

	memcpy(p, &t, 2);
	memcpy(p + 2, &q, 2);
	memcpy(p + 4, &i, 4);
}

TEST(vol_xattrs_and_acl)
{
	unsigned char acl[4 + 5 * 8];
	uint32_t version = htole32(2);
	char buf[128];
	struct vfx v;
	uint64_t f;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	f = mfx_file(&v.x, EDDY_ROOT_INO, "x", NULL);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, "user.a", "1", 1, 0), 0);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, "user.a", "1", 1, XATTR_CREATE), -EEXIST);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, "user.b", "two", 3, 0), 0);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, "bogus.b", "two", 3, 0), -EOPNOTSUPP);
	CHECK_EQ(v.x.op->getxattr(v.x.fs, &v.x.ctx, f, "user.b", NULL, 0), 3);
	CHECK_EQ(v.x.op->getxattr(v.x.fs, &v.x.ctx, f, "user.b", buf, 2), -ERANGE);
	CHECK_EQ(v.x.op->getxattr(v.x.fs, &v.x.ctx, f, "user.b", buf, sizeof(buf)), 3);
	CHECK(memcmp(buf, "two", 3) == 0);
	CHECK_EQ(v.x.op->listxattr(v.x.fs, &v.x.ctx, f, NULL, 0), 14);
	CHECK_EQ(v.x.op->listxattr(v.x.fs, &v.x.ctx, f, buf, sizeof(buf)), 14);
	CHECK(memcmp(buf, "user.a\0user.b\0", 14) == 0);
	CHECK_EQ(v.x.op->removexattr(v.x.fs, &v.x.ctx, f, "user.a"), 0);
	CHECK_EQ(v.x.op->removexattr(v.x.fs, &v.x.ctx, f, "user.a"), -ENODATA);
	/* an access ACL with a named user: stored, and the mode follows it */
	memcpy(acl, &version, 4);
	acl_entry(acl + 4, 0x01, 6, 0xffffffff);       /* user::rw- */
	acl_entry(acl + 12, 0x02, 4, 1000);            /* user:1000:r-- */
	acl_entry(acl + 20, 0x04, 4, 0xffffffff);      /* group::r-- */
	acl_entry(acl + 28, 0x10, 5, 0xffffffff);      /* mask::r-x */
	acl_entry(acl + 36, 0x20, 0, 0xffffffff);      /* other::--- */
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, EDDY_ACL_ACCESS, acl, sizeof(acl), 0), 0);
	CHECK_EQ(mfx_stat(&v.x, f).st_mode & 0777, 0650);
	/* chmod rewrites it */
	{
		struct stat in;

		memset(&in, 0, sizeof(in));
		in.st_mode = 0604;
		CHECK_EQ(mfx_setattr(&v.x, &v.x.ctx, f, &in, EDDY_SET_MODE, NULL), 0);
	}
	CHECK_EQ(v.x.op->getxattr(v.x.fs, &v.x.ctx, f, EDDY_ACL_ACCESS, buf, sizeof(buf)),
		 sizeof(acl));
	CHECK_EQ(buf[28 + 2], 0);                      /* mask::--- */
	CHECK_EQ(buf[36 + 2], 4);                      /* other::r-- */
	vfx_unmount(&v);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(v.x.op->getxattr(v.x.fs, &v.x.ctx, f, "user.b", buf, sizeof(buf)), 3);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "x"), 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM xattrs"), 0);
	vfx_close(&v);
}

TEST(vol_statfs_and_limits)
{
	static char data[64 * KB];
	struct statvfs sv;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	char name[16];
	struct vfx v;
	int i, made = 0;

	CHECK(vfx_open(&v, 4 * KB, 32 * KB, 6) == 0);
	CHECK_EQ(v.x.op->statfs(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK_EQ(sv.f_blocks * sv.f_frsize, 32 * KB);
	CHECK_EQ(sv.f_files, 6);
	CHECK_EQ(sv.f_ffree, 5);                        /* the root is one */
	memset(data, 'd', sizeof(data));
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "big", 0644, O_RDWR | O_CREAT,
				&e, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, 16 * KB, 0), 16 * KB);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, sizeof(data), 16 * KB), 16 * KB);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, 4 * KB, 32 * KB), -ENOSPC);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	v.x.op->release(v.x.fs, f);
	v.x.op->forget(v.x.fs, e.ino, 1);
	CHECK_EQ(v.x.op->statfs(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK_EQ(sv.f_bfree, 0);
	CHECK_EQ(v.x.op->symlink(v.x.fs, &v.x.ctx, "t", EDDY_ROOT_INO, "s", &e), -ENOSPC);
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		if (v.x.op->mknod(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, name, S_IFREG | 0644, 0, &e))
			break;
		v.x.op->forget(v.x.fs, e.ino, 1);
		made++;
	}
	CHECK_EQ(made, 4);                              /* root + big + 4 = 6 */
	CHECK_EQ(v.x.op->mknod(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "n9", S_IFREG | 0644, 0, &e),
		 -ENOSPC);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "big"), 0);
	CHECK_EQ(v.x.op->statfs(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK_EQ(sv.f_bfree, 8);
	CHECK_EQ(sv.f_ffree, 1);
	vfx_close(&v);
}

TEST(vol_readdir_cookies)
{
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_open how;
	struct eddy_file *d;
	char name[16];
	struct vfx v;
	uint64_t resume;
	int i;

	CHECK(l != NULL);
	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		CHECK(mfx_file(&v.x, EDDY_ROOT_INO, name, NULL) != 0);
		v.x.op->forget(v.x.fs, (uint64_t)i + 2, 1);
	}
	CHECK_EQ(v.x.op->opendir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, &d, &how), 0);
	l->limit = 10;
	CHECK_EQ(v.x.op->readdir(v.x.fs, &v.x.ctx, d, 0, true, mfx_collect, l), 0);
	CHECK_EQ(l->n, 10);
	CHECK(strcmp(l->names[0], ".") == 0 && strcmp(l->names[2], "f000") == 0);
	CHECK_EQ(l->refs, 8);
	mfx_forget_refs(&v.x, l);
	resume = l->last;
	/* entries removed and added meanwhile do not disturb the rest */
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "f100"), 0);
	CHECK(mfx_file(&v.x, EDDY_ROOT_INO, "zz", NULL) != 0);
	l->limit = 0;
	l->taken = 0;
	l->n = 0;
	CHECK_EQ(v.x.op->readdir(v.x.fs, &v.x.ctx, d, resume, false, mfx_collect, l), 0);
	CHECK_EQ(l->n, 300 - 8 - 1 + 1);
	CHECK(strcmp(l->names[0], "f008") == 0);
	CHECK(strcmp(l->names[l->n - 1], "zz") == 0);
	v.x.op->releasedir(v.x.fs, d);
	CHECK_EQ(mfx_report(&v.x, "open_files"), 0);
	free(l);
	vfx_close(&v);
}

TEST(vol_corrupt_block_reads_eio)
{
	char path[256], buf[64];
	struct vfx v;
	uint64_t f;
	FILE *fp;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	f = mfx_file(&v.x, EDDY_ROOT_INO, "c", "precious data");
	CHECK(f != 0);
	vfx_unmount(&v);                                /* and the block cache */
	snprintf(path, sizeof(path), "%s/blocks/01/0000000000000001", v.dir);
	fp = fopen(path, "r+");
	CHECK(fp != NULL);
	fseek(fp, 40, SEEK_SET);
	fputc('X', fp);
	fclose(fp);
	CHECK(vfx_reopen(&v) == 0);
	CHECK_EQ(read_into(&v.x, f, 0, sizeof(buf), buf), -EIO);
	CHECK_EQ(mfx_report(&v.x, "vol_blocks_bad"), 1);
	unlink(path);
	CHECK_EQ(read_into(&v.x, f, 0, sizeof(buf), buf), -EIO);
	vfx_close(&v);
}

struct worker {
	struct vfx *v;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mfx *x = &w->v->x;
	char name[32], buf[8192], back[8192];

	for (int i = 0; i < 40; i++) {
		struct eddy_entry e;
		struct eddy_open how;
		struct eddy_file *f;

		snprintf(name, sizeof(name), "w%d-%d", w->id, i);
		fill_pattern(buf, sizeof(buf), (unsigned)(w->id * 100 + i));
		if (x->op->create(x->fs, &x->ctx, EDDY_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &e,
				  &f, &how)) {
			w->failures++;
			continue;
		}
		if (x->op->write(x->fs, &x->ctx, f, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    x->op->read(x->fs, f, back, sizeof(back), 0) != (ssize_t)sizeof(back) ||
		    memcmp(buf, back, sizeof(buf)) != 0)
			w->failures++;
		x->op->release(x->fs, f);
		if (mfx_stat(x, e.ino).st_size != (off_t)sizeof(buf))
			w->failures++;
		if (i % 3 == 0 && x->op->unlink(x->fs, &x->ctx, EDDY_ROOT_INO, name))
			w->failures++;
		x->op->forget(x->fs, e.ino, 1);
	}
	return NULL;
}

TEST(vol_concurrent_writers)
{
	struct worker w[4];
	pthread_t t[4];
	struct vfx v;
	int i;

	CHECK(vfx_open(&v, 4 * KB, 0, 0) == 0);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ &v, i, 0 };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 4; i++)
		CHECK_EQ(w[i].failures, 0);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM inodes"), 1 + 4 * 26);
	CHECK_EQ(vfx_count_blocks(&v), 4 * 26 * 2);
	vfx_close(&v);
}

/* Full chunks are written ahead (vol_data.c, write_ahead): reads see the
** chunk, a later change drops the early block, the write-out reuses the
** rest, and a file unlinked before its write-out leaves no block. */
TEST(vol_write_ahead_blocks)
{
	static char data[48 * KB], back[48 * KB];
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct vfx v;
	uint64_t ino;

	CHECK(vfx_open(&v, 16 * KB, 0, 0) == 0);
	fill_pattern(data, sizeof(data), 11);
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "f", 0644,
				O_RDWR | O_CREAT | O_EXCL, &e, &f, &how), 0);
	ino = e.ino;
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, sizeof(data), 0), sizeof(data));
	CHECK_EQ(vfx_count_blocks(&v), 3);            /* written ahead, not referenced */
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM chunks"), 0);
	memset(data + 20 * KB, 'y', 100);             /* chunk 1 changes */
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data + 20 * KB, 100, 20 * KB), 100);
	CHECK_EQ(vfx_count_blocks(&v), 2);            /* its early block went */
	CHECK_EQ(v.x.op->read(v.x.fs, f, back, sizeof(back), 0), sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_EQ(v.x.op->flush(v.x.fs, f), 0);
	CHECK_EQ(vfx_count_blocks(&v), 3);
	CHECK_EQ(vfx_sql_int(&v, "SELECT count(*) FROM chunks"), 3);
	v.x.op->release(v.x.fs, f);
	memset(back, 0, sizeof(back));
	CHECK_EQ(read_into(&v.x, ino, 0, sizeof(back), back), sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	v.x.op->forget(v.x.fs, ino, 1);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "f"), 0);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	/* written ahead, then unlinked while open: nothing stays behind */
	CHECK_EQ(v.x.op->create(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "g", 0644,
				O_RDWR | O_CREAT | O_EXCL, &e, &f, &how), 0);
	CHECK_EQ(v.x.op->write(v.x.fs, &v.x.ctx, f, data, 32 * KB, 0), 32 * KB);
	CHECK_EQ(vfx_count_blocks(&v), 2);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "g"), 0);
	v.x.op->release(v.x.fs, f);
	v.x.op->forget(v.x.fs, e.ino, 1);
	CHECK_EQ(vfx_count_blocks(&v), 0);
	vfx_close(&v);
}
