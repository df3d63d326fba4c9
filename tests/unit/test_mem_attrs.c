/*
** test_mem_attrs.c -- the mem backend's metadata rules through
** struct eddy_fs_ops: xattr namespaces and flags, POSIX ACLs kept in sync
** with the mode (set, chmod, inheritance), ownership of new objects
** (setgid directories, umask), setuid/setgid clearing, times, the space
** and inode limits with statfs, a removed directory, option parsing.
*/
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>

#include "unit.h"
#include "mem_fixture.h"

static struct eddy_ctx user_ctx(uid_t uid, gid_t gid)
{
	struct eddy_ctx c;

	memset(&c, 0, sizeof(c));
	c.uid = uid;
	c.gid = gid;
	c.umask = 022;
	c.ngroups = 0;
	return c;
}

TEST(mem_xattr_namespaces)
{
	struct mfx x;
	struct eddy_entry e;
	struct eddy_ctx u = user_ctx(1000, 1000);
	char buf[256];
	uint64_t f, l, p;

	CHECK(mfx_open(&x, 0, 0) == 0);
	f = mfx_file(&x, EDDY_ROOT_INO, "f", NULL);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "user.a", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(x.op->removexattr(x.fs, &x.ctx, f, "user.a"), -ENODATA);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.a", "alpha", 5, XATTR_REPLACE), -ENODATA);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.a", "alpha", 5, XATTR_CREATE), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.a", "beta", 4, XATTR_REPLACE), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.empty", "", 0, 0), 0);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "user.a", NULL, 0), 4);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "user.a", buf, 2), -ERANGE);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "user.a", buf, 4), 4);
	CHECK(memcmp(buf, "beta", 4) == 0);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "user.empty", buf, sizeof(buf)), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "trusted.t", "T", 1, 0), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "security.s", "S", 1, 0), 0);
	CHECK_EQ(x.op->listxattr(x.fs, &x.ctx, f, NULL, 0), 7 + 11 + 10 + 11);
	CHECK_EQ(x.op->listxattr(x.fs, &x.ctx, f, buf, 5), -ERANGE);
	CHECK_EQ(x.op->listxattr(x.fs, &x.ctx, f, buf, sizeof(buf)), 39);
	CHECK(memcmp(buf, "user.a\0user.empty\0trusted.t\0security.s\0", 39) == 0);
	/* trusted.* is root's: others can neither change, read nor list it */
	CHECK_EQ(x.op->setxattr(x.fs, &u, f, "trusted.u", "1", 1, 0), -EPERM);
	CHECK_EQ(x.op->getxattr(x.fs, &u, f, "trusted.t", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(x.op->removexattr(x.fs, &u, f, "trusted.t"), -EPERM);
	CHECK_EQ(x.op->listxattr(x.fs, &u, f, NULL, 0), 7 + 11 + 11);
	/* names and values */
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "bogus.x", "1", 1, 0), -EOPNOTSUPP);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "system.other", "1", 1, 0), -EOPNOTSUPP);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.", "1", 1, 0), -EINVAL);
	memset(buf, 'n', 256);
	memcpy(buf, "user.", 5);
	buf[255] = 0;
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, buf, "1", 1, 0), 0);
	buf[255] = 'n';
	buf[sizeof(buf) - 1] = 0;
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, buf, "1", 1, 0), 0);   /* 255 bytes */
	{
		char longname[300];

		memset(longname, 'n', sizeof(longname));
		memcpy(longname, "user.", 5);
		longname[256] = 0;
		CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, longname, "1", 1, 0), -ERANGE);
	}
	{
		char *big = calloc(1, 65537);

		CHECK(big);
		CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.big", big, 65536, 0), 0);
		CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.big", big, 65537, 0), -E2BIG);
		free(big);
	}
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "user.a", "1", 1, 0x100), -EINVAL);
	/* user.* only on regular files and directories */
	CHECK_EQ(x.op->symlink(x.fs, &x.ctx, "f", EDDY_ROOT_INO, "l", &e), 0);
	l = e.ino;
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "p", S_IFIFO | 0644, 0, &e), 0);
	p = e.ino;
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, l, "user.x", "1", 1, 0), -EPERM);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, l, "user.x", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, p, "user.x", "1", 1, 0), -EPERM);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, p, "trusted.x", "1", 1, 0), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, EDDY_ROOT_INO, "user.d", "1", 1, 0), 0);
	x.op->forget(x.fs, f, 1);
	x.op->forget(x.fs, l, 1);
	x.op->forget(x.fs, p, 1);
	mfx_close(&x);
}

/* An ACL in xattr form: N entries of (tag, perm, id). */
static size_t acl(unsigned char *buf, const unsigned (*ent)[3], size_t n)
{
	uint32_t v = htole32(2);
	size_t i;

	memcpy(buf, &v, 4);
	for (i = 0; i < n; i++) {
		uint16_t tag = htole16((uint16_t)ent[i][0]), perm = htole16((uint16_t)ent[i][1]);
		uint32_t id = htole32(ent[i][2]);

		memcpy(buf + 4 + 8 * i, &tag, 2);
		memcpy(buf + 6 + 8 * i, &perm, 2);
		memcpy(buf + 8 + 8 * i, &id, 4);
	}
	return 4 + 8 * n;
}

static unsigned acl_perm(const unsigned char *buf, size_t size, unsigned tag)
{
	size_t i;

	for (i = 0; i < (size - 4) / 8; i++) {
		uint16_t t, p;

		memcpy(&t, buf + 4 + 8 * i, 2);
		memcpy(&p, buf + 6 + 8 * i, 2);
		if (le16toh(t) == tag)
			return le16toh(p);
	}
	return 99;
}

TEST(mem_posix_acls_follow_the_mode)
{
	static const unsigned grant[][3] = {
		{ 1, 6, ~0u }, { 2, 4, 1001 }, { 4, 0, ~0u }, { 0x10, 4, ~0u }, { 0x20, 0, ~0u },
	};
	static const unsigned plain[][3] = { { 1, 7, ~0u }, { 4, 5, ~0u }, { 0x20, 1, ~0u } };
	static const unsigned dflt[][3] = { { 1, 7, ~0u }, { 4, 7, ~0u }, { 0x20, 7, ~0u } };
	static const unsigned dflt_named[][3] = {
		{ 1, 7, ~0u }, { 2, 5, 1001 }, { 4, 7, ~0u }, { 0x10, 7, ~0u }, { 0x20, 0, ~0u },
	};
	struct mfx x;
	struct eddy_entry e, d;
	struct eddy_ctx u = user_ctx(1000, 1000);
	unsigned char buf[128], got[128];
	struct stat in;
	size_t n;
	uint64_t f;

	CHECK(mfx_open(&x, 0, 0) == 0);
	f = mfx_file(&x, EDDY_ROOT_INO, "f", NULL);
	memset(&in, 0, sizeof(in));
	in.st_mode = 0600;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, f, &in, EDDY_SET_MODE, NULL), 0);
	/* u:1001:r on a 0600 file: the group class bits become the mask */
	n = acl(buf, grant, 5);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "system.posix_acl_access", buf, n, 0), 0);
	CHECK_EQ(mfx_stat(&x, f).st_mode & 07777, 0640);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "system.posix_acl_access", got, sizeof(got)),
		 (long long)n);
	/* chmod rewrites owner, mask and other */
	in.st_mode = 0751;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, f, &in, EDDY_SET_MODE, NULL), 0);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "system.posix_acl_access", got, sizeof(got)),
		 (long long)n);
	CHECK_EQ(acl_perm(got, n, 1), 7);
	CHECK_EQ(acl_perm(got, n, 0x10), 5);
	CHECK_EQ(acl_perm(got, n, 0x20), 1);
	CHECK_EQ(acl_perm(got, n, 4), 0);                 /* group entry untouched */
	/* an ACL the mode says all of is not stored */
	n = acl(buf, plain, 3);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "system.posix_acl_access", buf, n, 0), 0);
	CHECK_EQ(mfx_stat(&x, f).st_mode & 07777, 0751);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, f, "system.posix_acl_access", got, sizeof(got)),
		 -ENODATA);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "system.posix_acl_access", "junk", 4, 0),
		 -EINVAL);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, f, "system.posix_acl_default", buf, n, 0),
		 -EACCES);
	/* a default ACL replaces the umask and is inherited by directories */
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "dacl", 0777, &d), 0);
	n = acl(buf, dflt, 3);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, d.ino, "system.posix_acl_default", buf, n, 0), 0);
	CHECK_EQ(x.op->mknod(x.fs, &u, d.ino, "g", S_IFREG | 0666, 0, &e), 0);
	CHECK_EQ(e.attr.st_mode & 07777, 0666);           /* umask 022 ignored */
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, e.ino, "system.posix_acl_access", got,
				sizeof(got)), -ENODATA);
	x.op->forget(x.fs, e.ino, 1);
	CHECK_EQ(x.op->mkdir(x.fs, &u, d.ino, "sub", 0750, &e), 0);
	CHECK_EQ(e.attr.st_mode & 07777, 0750);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, e.ino, "system.posix_acl_default", got,
				sizeof(got)), (long long)n);
	x.op->forget(x.fs, e.ino, 1);
	/* a default ACL with a named entry: the child gets an access ACL */
	n = acl(buf, dflt_named, 5);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, d.ino, "system.posix_acl_default", buf, n, 0), 0);
	CHECK_EQ(x.op->mknod(x.fs, &u, d.ino, "h", S_IFREG | 0640, 0, &e), 0);
	CHECK_EQ(e.attr.st_mode & 07777, 0640);
	CHECK_EQ(x.op->getxattr(x.fs, &x.ctx, e.ino, "system.posix_acl_access", got,
				sizeof(got)), (long long)n);
	CHECK_EQ(acl_perm(got, n, 0x10), 4);              /* mask &= group bits */
	CHECK_EQ(acl_perm(got, n, 0x20), 0);
	CHECK_EQ(x.op->symlink(x.fs, &u, "t", d.ino, "s", &e), 0);
	CHECK_EQ(e.attr.st_mode & 07777, 0777);
	CHECK_EQ(x.op->removexattr(x.fs, &x.ctx, d.ino, "system.posix_acl_default"), 0);
	x.op->forget(x.fs, e.ino, 1);
	mfx_close(&x);
}

TEST(mem_ownership_and_setuid)
{
	struct mfx x;
	struct eddy_entry e, sg, sub;
	struct eddy_ctx u = user_ctx(1000, 1000), other = user_ctx(1001, 1001);
	struct eddy_open how;
	struct eddy_file *f;
	struct stat in, st;

	CHECK(mfx_open(&x, 0, 0) == 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "sg", 02775, &sg), 0);
	memset(&in, 0, sizeof(in));
	in.st_gid = 1500;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sg.ino, &in, EDDY_SET_GID, NULL), 0);
	in.st_mode = 02777;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sg.ino, &in, EDDY_SET_MODE, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 02777);              /* dirs keep S_ISGID */
	CHECK_EQ(x.op->mknod(x.fs, &u, sg.ino, "f", S_IFREG | 0666, 0, &e), 0);
	CHECK_EQ(e.attr.st_uid, 1000);
	CHECK_EQ(e.attr.st_gid, 1500);
	CHECK_EQ(e.attr.st_mode & 07777, 0644);           /* umask */
	x.op->forget(x.fs, e.ino, 1);
	CHECK_EQ(x.op->mkdir(x.fs, &u, sg.ino, "sub", 0777, &sub), 0);
	CHECK_EQ(sub.attr.st_gid, 1500);
	CHECK_EQ(sub.attr.st_mode & 07777, 02755);        /* inherits S_ISGID */
	x.op->forget(x.fs, sub.ino, 1);
	/* a write by another user clears setuid, and setgid when group-exec */
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "s", S_IFREG | 06777, 0, &e), 0);
	in.st_mode = 06777;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, e.ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "root", 4, 0), 4);
	CHECK_EQ(mfx_stat(&x, e.ino).st_mode & 07777, 06777);
	CHECK_EQ(x.op->write(x.fs, &other, f, "user", 4, 0), 4);
	CHECK_EQ(mfx_stat(&x, e.ino).st_mode & 07777, 0777);
	/* setgid without group-exec stays for group members, goes for others */
	in.st_mode = 02666;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	CHECK_EQ(x.op->write(x.fs, &(struct eddy_ctx){ .uid = 5, .gid = 0 }, f, "m", 1, 0), 1);
	CHECK_EQ(mfx_stat(&x, e.ino).st_mode & 07777, 02666);
	CHECK_EQ(x.op->write(x.fs, &other, f, "o", 1, 0), 1);
	CHECK_EQ(mfx_stat(&x, e.ino).st_mode & 07777, 0666);
	/* truncate by a user clears too; chown clears even for root */
	in.st_mode = 06755;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	in.st_size = 1;
	CHECK_EQ(x.op->setattr(x.fs, &other, e.ino, f, &in, EDDY_SET_SIZE, &st, &(double){ 0 }), 0);
	CHECK_EQ(st.st_mode & 07777, 0755);
	in.st_mode = 06755;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	in.st_uid = 1000;
	in.st_gid = 1000;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_UID | EDDY_SET_GID, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0755);
	CHECK(st.st_uid == 1000 && st.st_gid == 1000);
	in.st_mode = 06755;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_KILL_SUIDGID, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0755);
	/* O_TRUNC by a user */
	in.st_mode = 04755;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, e.ino, &in, EDDY_SET_MODE, NULL), 0);
	x.op->release(x.fs, f);
	CHECK_EQ(x.op->open(x.fs, &other, e.ino, O_WRONLY | O_TRUNC, &f, &how), 0);
	CHECK_EQ(mfx_stat(&x, e.ino).st_mode & 07777, 0755);
	x.op->release(x.fs, f);
	/* directories: chown keeps their bits; symlinks refuse chmod */
	in.st_uid = 7;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sg.ino, &in, EDDY_SET_UID, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 02777);
	CHECK_EQ(x.op->symlink(x.fs, &x.ctx, "t", EDDY_ROOT_INO, "l", &sub), 0);
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sub.ino, &in, EDDY_SET_MODE, NULL), -EOPNOTSUPP);
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sub.ino, &in, EDDY_SET_UID, &st), 0);
	CHECK_EQ(st.st_uid, 7);
	in.st_size = 0;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sg.ino, &in, EDDY_SET_SIZE, NULL), -EISDIR);
	CHECK_EQ(mfx_setattr(&x, &x.ctx, sub.ino, &in, EDDY_SET_SIZE, NULL), -EINVAL);
	x.op->forget(x.fs, e.ino, 1);
	x.op->forget(x.fs, sub.ino, 1);
	x.op->forget(x.fs, sg.ino, 1);
	mfx_close(&x);
}

static bool later(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static bool same(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void tick(void)
{
	struct timespec t = { 0, 2000000 };

	nanosleep(&t, NULL);
}

TEST(mem_times_follow_posix)
{
	struct mfx x;
	struct eddy_entry d;
	struct eddy_open how;
	struct eddy_file *f;
	struct stat a, b, in;
	uint64_t ino;
	char buf[8];

	CHECK(mfx_open(&x, 0, 0) == 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	a = mfx_stat(&x, d.ino);
	tick();
	ino = mfx_file(&x, d.ino, "f", NULL);
	b = mfx_stat(&x, d.ino);
	CHECK(later(b.st_mtim, a.st_mtim) && later(b.st_ctim, a.st_ctim));
	a = mfx_stat(&x, ino);
	tick();
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "data", 4, 0), 4);
	b = mfx_stat(&x, ino);
	CHECK(later(b.st_mtim, a.st_mtim) && later(b.st_ctim, a.st_ctim));
	/* read: atime, once after a change (relatime) */
	tick();
	CHECK_EQ(x.op->read(x.fs, f, buf, sizeof(buf), 0), 4);
	a = mfx_stat(&x, ino);
	CHECK(later(a.st_atim, b.st_atim) && same(a.st_mtim, b.st_mtim));
	tick();
	CHECK_EQ(x.op->read(x.fs, f, buf, sizeof(buf), 0), 4);
	CHECK(same(mfx_stat(&x, ino).st_atim, a.st_atim));
	/* chmod, setxattr: ctime only */
	tick();
	memset(&in, 0, sizeof(in));
	in.st_mode = 0600;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, ino, &in, EDDY_SET_MODE, NULL), 0);
	b = mfx_stat(&x, ino);
	CHECK(same(b.st_mtim, a.st_mtim) && later(b.st_ctim, a.st_ctim));
	tick();
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, ino, "user.t", "1", 1, 0), 0);
	a = mfx_stat(&x, ino);
	CHECK(same(a.st_mtim, b.st_mtim) && later(a.st_ctim, b.st_ctim));
	/* explicit times and *_NOW */
	in.st_atim.tv_sec = -1;
	in.st_atim.tv_nsec = 5;
	in.st_mtim.tv_sec = 1LL << 33;
	in.st_mtim.tv_nsec = 6;
	CHECK_EQ(mfx_setattr(&x, &x.ctx, ino, &in, EDDY_SET_ATIME | EDDY_SET_MTIME, &b), 0);
	CHECK(same(b.st_atim, in.st_atim) && same(b.st_mtim, in.st_mtim));
	CHECK_EQ(mfx_setattr(&x, &x.ctx, ino, &in, EDDY_SET_MTIME | EDDY_SET_MTIME_NOW, &b), 0);
	CHECK(b.st_mtim.tv_sec < (1LL << 33) && same(b.st_atim, in.st_atim));
	/* link: the inode's ctime and the directory's mtime */
	a = mfx_stat(&x, d.ino);
	tick();
	CHECK_EQ(x.op->link(x.fs, &x.ctx, ino, d.ino, "g", &(struct eddy_entry){ 0 }), 0);
	x.op->forget(x.fs, ino, 1);
	CHECK(later(mfx_stat(&x, d.ino).st_mtim, a.st_mtim));
	CHECK(later(mfx_stat(&x, ino).st_ctim, b.st_ctim));
	x.op->release(x.fs, f);
	x.op->forget(x.fs, ino, 1);
	x.op->forget(x.fs, d.ino, 1);
	mfx_close(&x);
}

TEST(mem_limits_are_all_or_nothing)
{
	struct mfx x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct statvfs sv;
	char *buf = calloc(1, 1 << 20);
	uint64_t ino;
	int i;

	CHECK(buf && mfx_open(&x, 1 << 20, 10) == 0);
	CHECK_EQ(x.op->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK(sv.f_bsize == 4096 && sv.f_frsize == 4096 && sv.f_namemax == 255);
	CHECK_EQ(sv.f_blocks, 256);
	CHECK_EQ(sv.f_bfree, 256);
	CHECK_EQ(sv.f_files, 10);
	CHECK_EQ(sv.f_ffree, 9);                          /* the root */
	ino = mfx_file(&x, EDDY_ROOT_INO, "f", NULL);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, 1 << 19, 0), 1 << 19);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, (1 << 19) + 1, 1 << 19), -ENOSPC);
	CHECK_EQ(mfx_stat(&x, ino).st_size, 1 << 19);     /* nothing written */
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, buf, 1 << 19, 1 << 19), 1 << 19);
	CHECK_EQ(x.op->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK_EQ(sv.f_bfree, 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "x", 1, 100), 1);     /* no new page */
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "x", 1, 1 << 20), -ENOSPC);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 1 << 20, 4096), -ENOSPC);
	CHECK_EQ(x.op->fallocate(x.fs, f, 0, 0, 1 << 20), 0);      /* all present */
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, ino, "user.x", "1", 1, 0), -ENOSPC);
	CHECK_EQ(x.op->symlink(x.fs, &x.ctx, "t", EDDY_ROOT_INO, "l", &e), -ENOSPC);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "l", &e), 0);
	CHECK_EQ(e.ino, 0);
	CHECK_EQ(mfx_truncate(&x, ino, 1 << 19), 0);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), 1 << 19);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, ino, "user.x", "1", 1, 0), 0);
	CHECK_EQ(mfx_report(&x, "mem_bytes_used"), (1 << 19) + 7);
	CHECK_EQ(x.op->removexattr(x.fs, &x.ctx, ino, "user.x"), 0);
	x.op->release(x.fs, f);
	/* inodes: root + f + 8 more */
	for (i = 0; i < 8; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, name, 0755, &e), 0);
		x.op->forget(x.fs, e.ino, 1);
	}
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "full", 0755, &e), -ENOSPC);
	CHECK_EQ(x.op->create(x.fs, &x.ctx, EDDY_ROOT_INO, "full", 0644, O_CREAT | O_RDWR, &e, &f,
			      &how), -ENOSPC);
	CHECK_EQ(x.op->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv), 0);
	CHECK_EQ(sv.f_ffree, 0);
	CHECK_EQ(x.op->rmdir(x.fs, &x.ctx, EDDY_ROOT_INO, "n0"), 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "full", 0755, &e), 0);
	x.op->forget(x.fs, e.ino, 1);
	x.op->forget(x.fs, ino, 1);
	free(buf);
	mfx_close(&x);
}

TEST(mem_removed_directory)
{
	struct mfx x;
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_entry d, e;
	struct eddy_open how;
	struct eddy_file *h, *f;

	CHECK(l && mfx_open(&x, 0, 0) == 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	CHECK_EQ(x.op->opendir(x.fs, &x.ctx, d.ino, &h, &how), 0);
	CHECK_EQ(x.op->readdir(x.fs, &x.ctx, h, 0, false, mfx_collect, l), 0);
	CHECK_EQ(l->n, 2);
	CHECK_EQ(x.op->rmdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d"), 0);
	CHECK_EQ(mfx_stat(&x, d.ino).st_nlink, 0);
	CHECK_EQ(x.op->readdir(x.fs, &x.ctx, h, 0, false, mfx_collect, l), -ENOENT);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, d.ino, "x", 0755, &e), -ENOENT);
	CHECK_EQ(x.op->create(x.fs, &x.ctx, d.ino, "x", 0644, O_CREAT | O_RDWR, &e, &f, &how),
		 -ENOENT);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, d.ino, "x", &e), -ENOENT);
	x.op->forget(x.fs, d.ino, 1);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 2);     /* the open handle */
	x.op->releasedir(x.fs, h);
	CHECK_EQ(mfx_report(&x, "backend_nodes"), 1);
	free(l);
	mfx_close(&x);
}

TEST(mem_parse_options)
{
	struct mem_options o;
	char err[256];

	mem_options_default(&o);
	CHECK(o.entry_timeout >= 3600 && o.attr_timeout >= 3600 && o.keep_cache &&
	      o.cache_readdir && o.max_bytes == 0 && o.max_inodes == 0);
	CHECK_EQ(mem_options_parse("", &o, err, sizeof(err)), 0);
	CHECK_EQ(mem_options_parse("size=1G,inodes=100000", &o, err, sizeof(err)), 0);
	CHECK_EQ(o.max_bytes, 1LL << 30);
	CHECK_EQ(o.max_inodes, 100000);
	CHECK_EQ(mem_options_parse("inodes=2k,size=512m", &o, err, sizeof(err)), 0);
	CHECK_EQ(o.max_bytes, 512LL << 20);
	CHECK_EQ(o.max_inodes, 2048);
	CHECK_EQ(mem_options_parse("size=3T", &o, err, sizeof(err)), 0);
	CHECK_EQ(o.max_bytes, 3LL << 40);
	CHECK_EQ(mem_options_parse("size=1X", &o, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "size=1X") != NULL);
	CHECK_EQ(mem_options_parse("color=blue", &o, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown") != NULL);
	CHECK_EQ(mem_options_parse("size", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mem_options_parse("size=", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mem_options_parse("size=1G,", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mem_options_parse("size=99999999999999999999", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mem_options_parse("size=-1", &o, err, sizeof(err)), -EINVAL);
}
