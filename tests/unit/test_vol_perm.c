/*
** test_vol_perm.c -- the volume's own access checks (vol_perm.c, with
** vol_options.check_access) through struct eddy_fs_ops: root's rules, the
** owner's bits, others' group/other bits and access ACLs, search
** permission on lookups, write and search on parents, the sticky rule,
** setattr ownership, protected hard links and access(2). And with
** check_access off (the kernel checks) nothing is refused.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "vol_fixture.h"

static int open_checked(struct vfx *v, bool check)
{
	struct vol_options o;
	char err[512];
	int r;

	vol_options_default(&o);
	o.check_access = check;
	r = vol_fs_open(v->dir, &o, &v->x.fs, err, sizeof(err));
	v->x.op = r == 0 ? v->x.fs->ops : NULL;
	return r;
}

static struct eddy_ctx user(uid_t uid, gid_t gid)
{
	struct eddy_ctx c = { .uid = uid, .gid = gid, .pid = 0, .umask = 022, .ngroups = 0 };

	return c;
}

static int chmod_as(struct vfx *v, const struct eddy_ctx *c, uint64_t ino, mode_t mode)
{
	struct stat in = { .st_mode = mode }, out;
	double t;

	return v->x.op->setattr(v->x.fs, c, ino, NULL, &in, EDDY_SET_MODE, &out, &t);
}

static int chown_as(struct vfx *v, const struct eddy_ctx *c, uint64_t ino, uid_t uid, gid_t gid)
{
	struct stat in = { .st_uid = uid, .st_gid = gid }, out;
	double t;

	return v->x.op->setattr(v->x.fs, c, ino, NULL, &in, EDDY_SET_UID | EDDY_SET_GID, &out, &t);
}

static int open_as(struct vfx *v, const struct eddy_ctx *c, uint64_t ino, int flags)
{
	struct eddy_open how;
	struct eddy_file *f;
	int r = v->x.op->open(v->x.fs, c, ino, flags, &f, &how);

	if (r == 0)
		v->x.op->release(v->x.fs, f);
	return r;
}

TEST(vol_perm_mode_bits_acl_and_root)
{
	struct eddy_ctx u1 = user(1000, 1000), u2 = user(1001, 1001), g = user(1002, 1000);
	struct eddy_entry e;
	struct vfx v;
	uint64_t f, d;
	/* user::rw- user:1001:r-- group::--- mask::r-- other::--- */
	static const unsigned char acl[] = {
		2, 0, 0, 0, 0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 4, 0, 0xe9, 3, 0, 0,
		0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	vfx_unmount(&v);
	CHECK(open_checked(&v, true) == 0);
	CHECK_EQ(v.x.fs->flags & EDDY_FS_KERNEL_PERMISSIONS, 0u);
	f = mfx_file(&v.x, EDDY_ROOT_INO, "f", "data");
	CHECK(f != 0);
	CHECK_EQ(chown_as(&v, &v.x.ctx, f, 1000, 1000), 0);
	CHECK_EQ(chmod_as(&v, &v.x.ctx, f, 0640), 0);
	/* owner: owner bits; group: group bits; others: other bits */
	CHECK_EQ(open_as(&v, &u1, f, O_RDWR), 0);
	CHECK_EQ(open_as(&v, &g, f, O_RDONLY), 0);
	CHECK_EQ(open_as(&v, &g, f, O_WRONLY), -EACCES);
	CHECK_EQ(open_as(&v, &u2, f, O_RDONLY), -EACCES);
	CHECK_EQ(open_as(&v, &u1, f, O_RDONLY | O_TRUNC), 0);
	CHECK_EQ(v.x.op->access(v.x.fs, &u2, f, R_OK), -EACCES);
	CHECK_EQ(v.x.op->access(v.x.fs, &u2, f, F_OK), 0);
	/* root: anything but executing what has no x bit */
	CHECK_EQ(chmod_as(&v, &v.x.ctx, f, 0), 0);
	CHECK_EQ(open_as(&v, &v.x.ctx, f, O_RDWR), 0);
	CHECK_EQ(v.x.op->access(v.x.fs, &v.x.ctx, f, X_OK), -EACCES);
	CHECK_EQ(chmod_as(&v, &v.x.ctx, f, 0010), 0);
	CHECK_EQ(v.x.op->access(v.x.fs, &v.x.ctx, f, X_OK), 0);
	CHECK_EQ(open_as(&v, &u1, f, O_RDONLY), -EACCES);       /* owner bits rule the owner */
	/* an access ACL decides for everyone but the owner */
	CHECK_EQ(chmod_as(&v, &v.x.ctx, f, 0600), 0);
	CHECK_EQ(v.x.op->setxattr(v.x.fs, &v.x.ctx, f, EDDY_ACL_ACCESS, acl, sizeof(acl), 0), 0);
	CHECK_EQ(open_as(&v, &u2, f, O_RDONLY), 0);
	CHECK_EQ(open_as(&v, &u2, f, O_WRONLY), -EACCES);
	CHECK_EQ(open_as(&v, &g, f, O_RDONLY), -EACCES);
	/* ownership rules of setattr */
	CHECK_EQ(chmod_as(&v, &u2, f, 0777), -EPERM);
	CHECK_EQ(chmod_as(&v, &u1, f, 0644), 0);
	CHECK_EQ(chown_as(&v, &u1, f, 1001, 1000), -EPERM);
	CHECK_EQ(chown_as(&v, &u1, f, 1000, 1001), -EPERM);     /* not in group 1001 */
	/* search permission on lookups; write and search on the parent */
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d", 0700, &e), 0);
	d = e.ino;
	CHECK_EQ(v.x.op->lookup(v.x.fs, &u1, d, "nothing", &e), -EACCES);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &u1, d, "x", 0755, &e), -EACCES);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &u1, EDDY_ROOT_INO, "d", 0755, &e), -EEXIST);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &u1, EDDY_ROOT_INO, "f"), -EACCES);
	CHECK_EQ(v.x.op->rename(v.x.fs, &u1, EDDY_ROOT_INO, "f", EDDY_ROOT_INO, "g", 0), -EACCES);
	CHECK_EQ(v.x.op->link(v.x.fs, &u2, f, EDDY_ROOT_INO, "l", &e), -EPERM);  /* protected */
	{
		struct eddy_open how;
		struct eddy_file *h;

		CHECK_EQ(v.x.op->opendir(v.x.fs, &u1, d, &h, &how), -EACCES);
	}
	vfx_close(&v);
}

TEST(vol_perm_sticky_directory_and_unchecked_open)
{
	struct eddy_ctx u1 = user(1000, 1000), u2 = user(1001, 1001);
	struct eddy_entry e;
	struct vfx v;
	uint64_t t;

	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	vfx_unmount(&v);
	CHECK(open_checked(&v, true) == 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "tmp", 0777, &e), 0);
	t = e.ino;
	CHECK_EQ(chmod_as(&v, &v.x.ctx, t, 01777), 0);
	CHECK_EQ(v.x.op->mknod(v.x.fs, &u1, t, "mine", S_IFREG | 0666, 0, &e), 0);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &u2, t, "mine"), -EPERM);
	CHECK_EQ(v.x.op->rename(v.x.fs, &u2, t, "mine", t, "stolen", 0), -EPERM);
	CHECK_EQ(v.x.op->unlink(v.x.fs, &u1, t, "mine"), 0);
	vfx_close(&v);
	/* check_access off: the kernel checks, the volume refuses nothing */
	CHECK(vfx_open(&v, 0, 0, 0) == 0);
	CHECK_EQ(v.x.fs->flags & EDDY_FS_KERNEL_PERMISSIONS, EDDY_FS_KERNEL_PERMISSIONS);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &v.x.ctx, EDDY_ROOT_INO, "d", 0, &e), 0);
	CHECK_EQ(v.x.op->mkdir(v.x.fs, &u1, e.ino, "x", 0755, &e), 0);
	vfx_close(&v);
}
