/*
** test_mem_backend.c -- the mem backend driven through struct eddy_fs_ops,
** without FUSE: namespace and errors, link counts, sparse data (holes,
** SEEK_DATA/SEEK_HOLE, fallocate, copy_file_range, the size limit),
** O_APPEND/O_TRUNC, open-unlinked lifetime with forget/release in either
** order, lookup counting (readdirplus included), rename cases, xattrs and
** POSIX ACLs, ownership and setuid rules, times, space and inode limits,
** option parsing. Concurrency is in test_mem_stress.c.
*/
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "unit.h"
#include "mem_fixture.h"

TEST(mem_namespace_basics)
{
	struct mfx x;
	struct eddy_entry e, d, s;
	char buf[64], longname[300];
	uint64_t f;

	CHECK(mfx_open(&x, 0, 0) == 0);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "missing", &e), 0);
	CHECK_EQ(e.ino, 0);                               /* cacheable absence */
	CHECK(e.entry_timeout >= 3600);
	f = mfx_file(&x, EDDY_ROOT_INO, "f", "hello");
	CHECK_EQ(f, 2);                                   /* sequential from 2 */
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	CHECK_EQ(d.ino, 3);
	CHECK(S_ISDIR(d.attr.st_mode));
	CHECK_EQ(d.attr.st_nlink, 2);
	CHECK_EQ(mfx_stat(&x, EDDY_ROOT_INO).st_nlink, 3);    /* 2 + subdir */
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "f", &e), 0);
	CHECK_EQ(e.ino, f);
	CHECK_EQ(e.attr.st_size, 5);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "f", 0755, &e), -EEXIST);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, f, "sub", 0755, &e), -ENOTDIR);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, f, "x", &e), -ENOTDIR);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, 999, "x", &e), -ESTALE);
	memset(longname, 'n', 256);
	longname[256] = 0;
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, longname, &e), -ENAMETOOLONG);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, longname, 0755, &e), -ENAMETOOLONG);
	longname[255] = 0;
	CHECK(mfx_file(&x, EDDY_ROOT_INO, longname, NULL) != 0);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "d"), -EISDIR);
	CHECK_EQ(x.op->rmdir(x.fs, &x.ctx, EDDY_ROOT_INO, "f"), -ENOTDIR);
	CHECK_EQ(x.op->link(x.fs, &x.ctx, d.ino, EDDY_ROOT_INO, "dl", &e), -EPERM);
	CHECK(mfx_file(&x, d.ino, "inner", NULL) != 0);
	CHECK_EQ(x.op->rmdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d"), -ENOTEMPTY);
	/* symlinks, special files */
	CHECK_EQ(x.op->symlink(x.fs, &x.ctx, "some/target", EDDY_ROOT_INO, "s", &s), 0);
	CHECK(S_ISLNK(s.attr.st_mode));
	CHECK_EQ(s.attr.st_size, 11);
	CHECK_EQ(x.op->readlink(x.fs, &x.ctx, s.ino, buf, sizeof(buf)), 11);
	CHECK(memcmp(buf, "some/target", 11) == 0);
	CHECK_EQ(x.op->readlink(x.fs, &x.ctx, f, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "fifo", S_IFIFO | 0644, 0, &e), 0);
	CHECK(S_ISFIFO(e.attr.st_mode));
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "chr", S_IFCHR | 0600, makedev(1, 3),
			     &e), 0);
	CHECK(S_ISCHR(e.attr.st_mode) && e.attr.st_rdev == makedev(1, 3));
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "sock", S_IFSOCK | 0755, 0, &e), 0);
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "reg", 0640, 0, &e), 0);
	CHECK(S_ISREG(e.attr.st_mode));
	/* numbers are never reused */
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "reg"), 0);
	x.op->forget(x.fs, e.ino, 1);
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "reg", 0640, 0, &d), 0);
	CHECK(d.ino > e.ino);
	mfx_close(&x);
}

TEST(mem_hard_links_count)
{
	struct mfx x;
	struct eddy_entry e, d;
	uint64_t f;

	CHECK(mfx_open(&x, 0, 0) == 0);
	f = mfx_file(&x, EDDY_ROOT_INO, "a", "data");
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	CHECK_EQ(x.op->link(x.fs, &x.ctx, f, d.ino, "b", &e), 0);
	CHECK_EQ(e.ino, f);
	CHECK_EQ(e.attr.st_nlink, 2);
	CHECK_EQ(x.op->link(x.fs, &x.ctx, f, d.ino, "b", &e), -EEXIST);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "a"), 0);
	CHECK_EQ(mfx_stat(&x, f).st_nlink, 1);
	CHECK_EQ(mfx_read(&x, f, 0, 100), 4);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, d.ino, "b"), 0);
	CHECK_EQ(mfx_stat(&x, f).st_nlink, 0);            /* kernel refs keep it */
	CHECK_EQ(x.op->link(x.fs, &x.ctx, f, EDDY_ROOT_INO, "back", &e), -ENOENT);
	x.op->forget(x.fs, f, 2);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 2);     /* root and d */
	mfx_close(&x);
}

TEST(mem_data_holes_and_seek)
{
	struct mfx x;
	struct eddy_open how;
	struct eddy_file *f;
	char *buf = malloc(1 << 16);
	struct stat st;
	uint64_t ino;

	CHECK(buf && mfx_open(&x, 0, 0) == 0);
	ino = mfx_file(&x, EDDY_ROOT_INO, "sparse", NULL);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
	memset(buf, 'A', 4096);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, 4096, 0), 4096);
	memset(buf, 'B', 4096);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, 4096, 1 << 20), 4096);
	st = mfx_stat(&x, ino);
	CHECK_EQ(st.st_size, (1 << 20) + 4096);
	CHECK_EQ(st.st_blocks, 16);                       /* two 4 KiB pages */
	CHECK_EQ(x.op->read(x.fs, f, buf, 8192, 4096 - 10), 8192);
	CHECK(buf[0] == 'A' && buf[9] == 'A' && buf[10] == 0 && buf[8191] == 0);
	CHECK_EQ(x.op->lseek(x.fs, f, 0, SEEK_HOLE), 4096);
	CHECK_EQ(x.op->lseek(x.fs, f, 100, SEEK_DATA), 100);
	CHECK_EQ(x.op->lseek(x.fs, f, 8192, SEEK_DATA), 1 << 20);
	CHECK_EQ(x.op->lseek(x.fs, f, 1 << 20, SEEK_HOLE), (1 << 20) + 4096);
	CHECK_EQ(x.op->lseek(x.fs, f, (1 << 20) + 4096, SEEK_DATA), -ENXIO);
	CHECK_EQ(x.op->lseek(x.fs, f, -1, SEEK_HOLE), -ENXIO);
	CHECK_EQ(x.op->lseek(x.fs, f, 0, SEEK_SET), -EINVAL);
	/* a terabyte of hole costs nothing */
	CHECK_EQ(mfx_truncate(&x, ino, 1LL << 40), 0);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), 8192);
	CHECK_EQ(x.op->lseek(x.fs, f, (1 << 20) + 4096, SEEK_HOLE), (1 << 20) + 4096);
	CHECK_EQ(x.op->lseek(x.fs, f, 1LL << 39, SEEK_DATA), -ENXIO);
	CHECK_EQ(x.op->read(x.fs, f, buf, 100, (1LL << 40) - 50), 50);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "end", 3, (1LL << 40) - 3), 3);
	CHECK_EQ(x.op->lseek(x.fs, f, 1LL << 39, SEEK_DATA), (1LL << 40) - 4096);
	/* truncating into a page zeroes its tail for later growth */
	CHECK_EQ(mfx_truncate(&x, ino, 10), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_blocks, 8);
	CHECK_EQ(mfx_truncate(&x, ino, 100), 0);
	CHECK_EQ(x.op->read(x.fs, f, buf, 200, 0), 100);
	CHECK(buf[9] == 'A' && buf[10] == 0 && buf[99] == 0);
	/* the size limit: 1 PiB */
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "x", 1, 1LL << 50), -EFBIG);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "xyz", 3, (1LL << 50) - 1), 1);
	CHECK_EQ(mfx_truncate(&x, ino, (1LL << 50) + 1), -EFBIG);
	CHECK_EQ(mfx_truncate(&x, ino, -1), -EINVAL);
	x.op->release(x.fs, f);
	CHECK_EQ(mfx_truncate(&x, ino, 0), 0);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), 0);
	x.op->forget(x.fs, ino, 1);
	free(buf);
	mfx_close(&x);
}

TEST(mem_fallocate_modes)
{
	struct mfx x;
	struct eddy_open how;
	struct eddy_file *f;
	char buf[8192];
	uint64_t ino;

	CHECK(mfx_open(&x, 0, 0) == 0);
	ino = mfx_file(&x, EDDY_ROOT_INO, "f", NULL);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 0, 1 << 20), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_size, 1 << 20);
	CHECK_EQ(mfx_stat(&x, ino).st_blocks, 2048);
	CHECK_EQ(x.op->read(x.fs, f, buf, 100, 5000), 100);
	CHECK(buf[0] == 0 && buf[99] == 0);
	CHECK_EQ(x.op->lseek(x.fs, f, 0, SEEK_DATA), -ENXIO); /* unwritten: a hole */
	CHECK_EQ(x.op->fallocate(x.fs, f, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_size, 1 << 20);
	CHECK_EQ(mfx_stat(&x, ino).st_blocks, 4096);
	memset(buf, 'W', sizeof(buf));
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, sizeof(buf), 65536 - 100), 8192);
	CHECK_EQ(x.op->fallocate(x.fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536,
				 262144), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_blocks, 4096 - 512);
	CHECK_EQ(x.op->read(x.fs, f, buf, 200, 65536 - 100), 200);
	CHECK(buf[99] == 'W' && buf[100] == 0 && buf[199] == 0);
	CHECK_EQ(x.op->lseek(x.fs, f, 65536, SEEK_HOLE), 65536);
	CHECK_EQ(x.op->lseek(x.fs, f, 0, SEEK_DATA), 61440);    /* the written page */
	CHECK_EQ(x.op->lseek(x.fs, f, 65536, SEEK_DATA), -ENXIO);
	/* zero range: present and zero, extends the size without KEEP_SIZE */
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "QQQQ", 4, 10), 4);
	CHECK_EQ(x.op->fallocate(x.fs, f, FALLOC_FL_ZERO_RANGE, 8, 3 << 20), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_size, (3 << 20) + 8);
	CHECK_EQ(x.op->read(x.fs, f, buf, 20, 0), 20);
	CHECK(buf[10] == 0 && buf[13] == 0);
	CHECK_EQ(x.op->fallocate(x.fs, f, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(x.op->fallocate(x.fs, f, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 0, 0), -EINVAL);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 1LL << 50, 1), -EFBIG);
	x.op->release(x.fs, f);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDONLY, &f, &how), 0);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 0, 10), -EBADF);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "x", 1, 0), -EBADF);
	x.op->release(x.fs, f);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "f"), 0);
	x.op->forget(x.fs, ino, 1);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), 0);
	mfx_close(&x);
}

TEST(mem_copy_file_range_sparse)
{
	struct mfx x;
	struct eddy_open how;
	struct eddy_file *s, *d;
	char buf[100];
	uint64_t si, di;

	CHECK(mfx_open(&x, 0, 0) == 0);
	si = mfx_file(&x, EDDY_ROOT_INO, "src", "0123456789");
	di = mfx_file(&x, EDDY_ROOT_INO, "dst", "ZZZZZZZZZZZZZZZZZZZZ");
	CHECK_EQ(x.op->open(x.fs, &x.ctx, si, O_RDWR, &s, &how), 0);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, di, O_RDWR, &d, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, s, "far", 3, 1LL << 30), 3);
	CHECK_EQ(x.op->copy_file_range(x.fs, s, 2, d, 5, 5, 0), 5);
	CHECK_EQ(x.op->read(x.fs, d, buf, sizeof(buf), 0), 20);
	CHECK(memcmp(buf, "ZZZZZ23456ZZZZZZZZZZ", 20) == 0);
	/* a gigabyte with a hole in the middle: only the data is copied */
	CHECK_EQ(x.op->copy_file_range(x.fs, s, 0, d, 1000, (1LL << 30) + 3, 0),
		 (1LL << 30) + 3);
	CHECK_EQ(mfx_stat(&x, di).st_size, 1000 + (1LL << 30) + 3);
	CHECK_EQ(mfx_stat(&x, di).st_blocks, 16);
	CHECK_EQ(x.op->read(x.fs, d, buf, 10, 1000), 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0);
	CHECK_EQ(x.op->read(x.fs, d, buf, 3, 1000 + (1LL << 30)), 3);
	CHECK(memcmp(buf, "far", 3) == 0);
	CHECK_EQ(x.op->copy_file_range(x.fs, s, 2LL << 30, d, 0, 10, 0), 0); /* past EOF */
	CHECK_EQ(x.op->copy_file_range(x.fs, s, 0, s, 5, 10, 0), -EINVAL);  /* overlap */
	CHECK_EQ(x.op->copy_file_range(x.fs, s, 0, s, 4096, 10, 0), 10);
	CHECK_EQ(x.op->read(x.fs, s, buf, 10, 4096), 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0);
	x.op->release(x.fs, s);
	x.op->release(x.fs, d);
	x.op->forget(x.fs, si, 1);
	x.op->forget(x.fs, di, 1);
	mfx_close(&x);
}

TEST(mem_append_and_trunc)
{
	struct mfx x;
	struct eddy_open how;
	struct eddy_file *a, *b;
	char buf[64];
	uint64_t ino;

	CHECK(mfx_open(&x, 0, 0) == 0);
	ino = mfx_file(&x, EDDY_ROOT_INO, "log", "start;");
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_WRONLY | O_APPEND, &a, &how), 0);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &b, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, b, "mid;", 4, 6), 4);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, a, "end;", 4, 0), 4);  /* offset ignored */
	CHECK_EQ(x.op->read(x.fs, b, buf, sizeof(buf), 0), 14);
	CHECK(memcmp(buf, "start;mid;end;", 14) == 0);
	x.op->release(x.fs, a);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_WRONLY | O_TRUNC, &a, &how), 0);
	CHECK_EQ(mfx_stat(&x, ino).st_size, 0);
	CHECK_EQ(mfx_stat(&x, ino).st_blocks, 0);
	x.op->release(x.fs, a);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDONLY | O_TRUNC, &a, &how), 0);
	x.op->release(x.fs, a);
	x.op->release(x.fs, b);
	/* create of an existing name: opens it (O_EXCL: -EEXIST) */
	CHECK_EQ(x.op->create(x.fs, &x.ctx, EDDY_ROOT_INO, "log", 0600, O_RDWR | O_CREAT | O_EXCL,
			      &(struct eddy_entry){ 0 }, &a, &how), -EEXIST);
	{
		struct eddy_entry e;

		CHECK_EQ(x.op->create(x.fs, &x.ctx, EDDY_ROOT_INO, "log", 0600, O_RDWR | O_CREAT,
				      &e, &a, &how), 0);
		CHECK_EQ(e.ino, ino);
		CHECK(how.keep_cache);
		x.op->release(x.fs, a);
		x.op->forget(x.fs, ino, 1);
	}
	x.op->forget(x.fs, ino, 1);
	mfx_close(&x);
}

TEST(mem_open_unlinked_lifetime)
{
	struct mfx x;
	struct eddy_open how;
	struct eddy_file *f;
	struct stat st;
	char buf[16];
	double t;
	uint64_t ino;
	int order;

	CHECK(mfx_open(&x, 0, 0) == 0);
	for (order = 0; order < 2; order++) {
		ino = mfx_file(&x, EDDY_ROOT_INO, "victim", "still here");
		CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
		CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "victim"), 0);
		CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 1);
		CHECK_EQ(x.op->getattr(x.fs, &x.ctx, ino, f, &st, &t), 0);
		CHECK_EQ(st.st_nlink, 0);
		CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "!", 1, 10), 1);
		CHECK_EQ(x.op->read(x.fs, f, buf, sizeof(buf), 0), 11);
		CHECK(memcmp(buf, "still here!", 11) == 0);
		/* a new file of the same name is another inode */
		CHECK(mfx_file(&x, EDDY_ROOT_INO, "victim", "new") > ino);
		if (order == 0) {
			x.op->forget(x.fs, ino, 1);          /* the kernel lets go first */
			CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 1);
			x.op->release(x.fs, f);
		} else {
			x.op->release(x.fs, f);              /* the file is closed first */
			CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 1);
			CHECK_EQ(x.op->getattr(x.fs, &x.ctx, ino, NULL, &st, &t), 0);
			x.op->forget(x.fs, ino, 1);
		}
		CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 0);
		CHECK_EQ(x.op->getattr(x.fs, &x.ctx, ino, NULL, &st, &t), -ESTALE);
		CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "victim"), 0);
		x.op->forget(x.fs, ino + 1, 1);
	}
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 1);
	CHECK_EQ(mfx_report(&x, "open_files"), 0);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), 0);
	mfx_close(&x);
}

TEST(mem_lookup_counting)
{
	struct mfx x;
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *d;
	uint64_t ino;
	int i;

	CHECK(l && mfx_open(&x, 0, 0) == 0);
	ino = mfx_file(&x, EDDY_ROOT_INO, "f", NULL);
	for (i = 0; i < 3; i++)
		CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "f", &e), 0);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "f"), 0);
	x.op->forget(x.fs, ino, 3);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 2);     /* one reference left */
	x.op->forget(x.fs, ino, 1);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 1);
	/* readdirplus: taken entries carry a reference, refused ones do not */
	for (i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%02d", i);
		x.op->forget(x.fs, mfx_file(&x, EDDY_ROOT_INO, name, NULL), 1);
	}
	CHECK_EQ(x.op->opendir(x.fs, &x.ctx, EDDY_ROOT_INO, &d, &how), 0);
	CHECK(how.cache_readdir);
	l->limit = 5;
	CHECK_EQ(x.op->readdir(x.fs, &x.ctx, d, 0, true, mfx_collect, l), 0);
	CHECK_EQ(l->n, 5);                                /* ".", "..", e00-e02 */
	CHECK_EQ(l->refs, 3);
	for (i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%02d", i);
		CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, name), 0);
	}
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 4);     /* the three referenced */
	for (i = 0; i < l->nrefs; i++)
		x.op->forget(x.fs, l->ref[i], 1);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 1);
	x.op->releasedir(x.fs, d);
	free(l);
	mfx_close(&x);
}

TEST(mem_rename_cases)
{
	struct mfx x;
	struct eddy_entry d1, d2, d3, e;
	struct eddy_open how;
	struct eddy_file *f;
	char buf[16];
	uint64_t a, b, h;

	CHECK(mfx_open(&x, 0, 0) == 0);
	a = mfx_file(&x, EDDY_ROOT_INO, "a", "A");
	b = mfx_file(&x, EDDY_ROOT_INO, "b", "B");
	CHECK_EQ(x.op->open(x.fs, &x.ctx, b, O_RDONLY, &f, &how), 0);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "a", EDDY_ROOT_INO, "b", 0), 0);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "b", &e), 0);
	CHECK_EQ(e.ino, a);
	x.op->forget(x.fs, a, 1);
	CHECK_EQ(x.op->read(x.fs, f, buf, sizeof(buf), 0), 1);  /* replaced, still open */
	CHECK(buf[0] == 'B');
	CHECK_EQ(mfx_stat(&x, b).st_nlink, 0);
	x.op->release(x.fs, f);
	x.op->forget(x.fs, b, 1);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "a", EDDY_ROOT_INO, "c", 0), -ENOENT);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d1", 0755, &d1), 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d2", 0755, &d2), 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, d1.ino, "d3", 0755, &d3), 0);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "d1", d3.ino, "x", 0), -EINVAL);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "d1", d1.ino, "x", 0), -EINVAL);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", EDDY_ROOT_INO, "d2", 0), -EISDIR);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "b", 0),
		 -ENOTDIR);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "d1", 0),
		 -ENOTEMPTY);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", EDDY_ROOT_INO, "d1",
			      RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", EDDY_ROOT_INO, "zz",
			      RENAME_EXCHANGE), -ENOENT);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", EDDY_ROOT_INO, "zz",
			      RENAME_EXCHANGE | RENAME_NOREPLACE), -EINVAL);
	/* a directory moves across parents: link counts and ".." follow */
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, d1.ino, "d3", d2.ino, "d3", 0), 0);
	CHECK_EQ(mfx_stat(&x, d1.ino).st_nlink, 2);
	CHECK_EQ(mfx_stat(&x, d2.ino).st_nlink, 3);
	CHECK_EQ(mfx_dotdot(&x, d3.ino), d2.ino);
	/* over an empty directory: it is gone (nlink 0) */
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "d2", EDDY_ROOT_INO, "d1", 0), 0);
	CHECK_EQ(mfx_stat(&x, d1.ino).st_nlink, 0);
	CHECK_EQ(mfx_stat(&x, EDDY_ROOT_INO).st_nlink, 3);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, d1.ino, "no", 0755, &e), -ENOENT);
	/* exchange a file and a directory across directories */
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", d2.ino, "d3", RENAME_EXCHANGE), 0);
	CHECK_EQ(mfx_lookup(&x, EDDY_ROOT_INO, "b"), d3.ino);
	CHECK_EQ(mfx_lookup(&x, d2.ino, "d3"), a);
	CHECK_EQ(mfx_stat(&x, d2.ino).st_nlink, 2);
	CHECK_EQ(mfx_stat(&x, EDDY_ROOT_INO).st_nlink, 4);
	CHECK_EQ(mfx_dotdot(&x, d3.ino), EDDY_ROOT_INO);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "b", d3.ino, "in",
			      RENAME_EXCHANGE), -ENOENT);
	/* two names of one inode: nothing happens */
	CHECK_EQ(x.op->link(x.fs, &x.ctx, a, EDDY_ROOT_INO, "h", &e), 0);
	h = e.ino;
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "h", d2.ino, "d3", 0), 0);
	CHECK_EQ(mfx_lookup(&x, EDDY_ROOT_INO, "h"), a);
	CHECK_EQ(mfx_stat(&x, a).st_nlink, 2);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "h", EDDY_ROOT_INO, "h", 0), 0);
	x.op->forget(x.fs, h, 1);
	x.op->forget(x.fs, d1.ino, 1);
	x.op->forget(x.fs, d2.ino, 1);
	x.op->forget(x.fs, d3.ino, 1);
	CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 0);
	mfx_close(&x);
}
