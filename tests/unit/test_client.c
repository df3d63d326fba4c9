/*
** test_client.c -- unit tests of the volume client's library (src/client/)
** on a real volume, without FUSE: path resolution (".", "..", symlinks,
** ELOOP, trailing slashes), the kernel's access checks (mode bits, groups,
** the access ACL, root, the sticky bit), parents, listings, and that every
** lookup reference is given back (the backend's node table returns to its
** size before the call).
*/
#include "unit.h"
#include "vol_fixture.h"
#include "client/client.h"

struct cfx {
	struct vfx v;
	struct vclient c;          /* as root; c.fs borrowed from v */
	long long nodes0;          /* backend_nodes with nothing referenced */
};

static uint64_t cfx_mkdir(struct cfx *f, uint64_t parent, const char *name, mode_t mode)
{
	struct eddy_entry e;

	if (f->v.x.op->mkdir(f->v.x.fs, &f->v.x.ctx, parent, name, mode, &e))
		return 0;
	return e.ino;
}

static void cfx_symlink(struct cfx *f, uint64_t parent, const char *name, const char *target)
{
	struct eddy_entry e;

	if (f->v.x.op->symlink(f->v.x.fs, &f->v.x.ctx, target, parent, name, &e) == 0)
		f->v.x.op->forget(f->v.x.fs, e.ino, 1);
}

static void cfx_own(struct cfx *f, uint64_t ino, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat in;

	memset(&in, 0, sizeof(in));
	in.st_mode = mode;
	in.st_uid = uid;
	in.st_gid = gid;
	mfx_setattr(&f->v.x, &f->v.x.ctx, ino, &in, EDDY_SET_UID | EDDY_SET_GID, NULL);
	mfx_setattr(&f->v.x, &f->v.x.ctx, ino, &in, EDDY_SET_MODE, NULL);
}

/* /a (dir) /a/b (dir) /a/b/f ("hello") /f ("top") and links:
** /l -> a/b/f, /la -> /a, /up -> a/b/.., /loop1 <-> /loop2, /dangle -> nope,
** /a/b/rel -> ../../f */
static int cfx_open(struct cfx *f)
{
	uint64_t a, b;

	memset(f, 0, sizeof(*f));
	if (vfx_open(&f->v, 0, 0, 0))
		return -1;
	f->c.fs = f->v.x.fs;
	eddy_ctx_self(&f->c.ctx);
	f->c.ctx.ngroups = 0;
	a = cfx_mkdir(f, VC_ROOT, "a", 0755);
	b = cfx_mkdir(f, a, "b", 0755);
	f->v.x.op->forget(f->v.x.fs, mfx_file(&f->v.x, b, "f", "hello"), 1);
	f->v.x.op->forget(f->v.x.fs, mfx_file(&f->v.x, VC_ROOT, "f", "top"), 1);
	cfx_symlink(f, VC_ROOT, "l", "a/b/f");
	cfx_symlink(f, VC_ROOT, "la", "/a");
	cfx_symlink(f, VC_ROOT, "up", "a/b/..");
	cfx_symlink(f, VC_ROOT, "loop1", "loop2");
	cfx_symlink(f, VC_ROOT, "loop2", "/loop1");
	cfx_symlink(f, VC_ROOT, "dangle", "nope");
	cfx_symlink(f, b, "rel", "../../f");
	f->v.x.op->forget(f->v.x.fs, b, 1);
	f->v.x.op->forget(f->v.x.fs, a, 1);
	f->nodes0 = mfx_report(&f->v.x, "backend_nodes");
	return 0;
}

/* The size of what PATH resolves to (followed or not), or a negative errno;
** the reference is given back. */
static long long res(struct cfx *f, const char *path, bool follow)
{
	struct stat st;
	uint64_t ino;
	int r = vclient_resolve(&f->c, path, follow, &ino, &st);

	if (r)
		return r;
	vclient_put(&f->c, ino);
	return S_ISDIR(st.st_mode) ? 1000000 : S_ISLNK(st.st_mode) ? 2000000 + st.st_size
								   : st.st_size;
}

#define DIRSZ 1000000
#define LNK(n) (2000000 + (n))

TEST(client_resolve_names)
{
	struct cfx f;

	CHECK(cfx_open(&f) == 0);
	CHECK(f.nodes0 >= 0);
	CHECK_EQ(res(&f, "/", true), DIRSZ);
	CHECK_EQ(res(&f, "/a/b/f", true), 5);
	CHECK_EQ(res(&f, "//a//b///f", true), 5);
	CHECK_EQ(res(&f, "/a/./b/../b/f", true), 5);
	CHECK_EQ(res(&f, "/../../a/b/f", true), 5);      /* ".." of the root is the root */
	CHECK_EQ(res(&f, "/a/b/", true), DIRSZ);
	CHECK_EQ(res(&f, "/a/b/.", true), DIRSZ);
	CHECK_EQ(res(&f, "/a/nope", true), -ENOENT);
	CHECK_EQ(res(&f, "/nope/f", true), -ENOENT);
	CHECK_EQ(res(&f, "/f/x", true), -ENOTDIR);
	CHECK_EQ(res(&f, "/f/", true), -ENOTDIR);
	CHECK_EQ(res(&f, "/f/.", true), -ENOTDIR);
	CHECK_EQ(res(&f, "/f/..", true), -ENOTDIR);
	CHECK_EQ(res(&f, "a/b/f", true), -EINVAL);       /* paths are absolute */
	{
		char longname[NAME_MAX + 3];

		longname[0] = '/';
		memset(longname + 1, 'x', NAME_MAX + 1);
		longname[NAME_MAX + 2] = 0;
		CHECK_EQ(res(&f, longname, true), -ENAMETOOLONG);
	}
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}

TEST(client_resolve_symlinks)
{
	struct cfx f;

	CHECK(cfx_open(&f) == 0);
	CHECK_EQ(res(&f, "/l", true), 5);
	CHECK_EQ(res(&f, "/l", false), LNK(5));             /* the link itself */
	CHECK_EQ(res(&f, "/l/", true), -ENOTDIR);
	CHECK_EQ(res(&f, "/la/b/f", false), 5);              /* followed in the middle */
	CHECK_EQ(res(&f, "/la", false), LNK(2));
	CHECK_EQ(res(&f, "/la/", false), DIRSZ);             /* a slash follows it */
	CHECK_EQ(res(&f, "/la/b/rel", true), 3);             /* relative to its directory */
	CHECK_EQ(res(&f, "/up/b/f", true), 5);               /* ".." of the real a/b */
	CHECK_EQ(res(&f, "/la/../f", true), 3);              /* ".." of /a, not of / */
	CHECK_EQ(res(&f, "/loop1", true), -ELOOP);
	CHECK_EQ(res(&f, "/loop1", false), LNK(5));
	CHECK_EQ(res(&f, "/loop1/x", false), -ELOOP);
	CHECK_EQ(res(&f, "/dangle", true), -ENOENT);
	CHECK_EQ(res(&f, "/dangle", false), LNK(4));
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}

TEST(client_parent)
{
	char name[NAME_MAX + 1];
	struct cfx f;
	uint64_t dir, a;

	CHECK(cfx_open(&f) == 0);
	CHECK_EQ(vclient_parent(&f.c, "/a/b/new", true, &dir, name), 0);
	CHECK(strcmp(name, "new") == 0);
	a = mfx_lookup(&f.v.x, VC_ROOT, "a");
	CHECK(a != 0);
	CHECK(dir == mfx_lookup(&f.v.x, a, "b"));
	vclient_put(&f.c, dir);
	CHECK_EQ(vclient_parent(&f.c, "/a/b/", false, &dir, name), 0);  /* slash dropped */
	CHECK(strcmp(name, "b") == 0 && dir == a);
	vclient_put(&f.c, dir);
	CHECK_EQ(vclient_parent(&f.c, "/x", false, &dir, name), 0);
	CHECK(dir == VC_ROOT && strcmp(name, "x") == 0);
	CHECK_EQ(vclient_parent(&f.c, "/", false, &dir, name), -EBUSY);
	CHECK_EQ(vclient_parent(&f.c, "/a/..", false, &dir, name), -EBUSY);
	CHECK_EQ(vclient_parent(&f.c, "/nope/x", false, &dir, name), -ENOENT);
	CHECK_EQ(vclient_parent(&f.c, "/f/x", false, &dir, name), -ENOTDIR);
	CHECK_EQ(vclient_parent(&f.c, "rel", false, &dir, name), -EINVAL);
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}

TEST(client_list)
{
	struct cfx f;
	struct stat st;
	char **names;
	uint64_t ino;
	size_t n;

	CHECK(cfx_open(&f) == 0);
	CHECK_EQ(vclient_resolve(&f.c, "/", true, &ino, &st), 0);
	CHECK_EQ(vclient_list(&f.c, ino, &st, &names, &n), 0);
	CHECK_EQ(n, 8);                                        /* no "." nor ".." */
	CHECK(strcmp(names[0], "a") == 0 && strcmp(names[1], "dangle") == 0 &&
	      strcmp(names[7], "up") == 0);
	vclient_list_free(names, n);
	CHECK_EQ(vclient_resolve(&f.c, "/f", true, &ino, &st), 0);
	CHECK_EQ(vclient_list(&f.c, ino, &st, &names, &n), -ENOTDIR);
	vclient_put(&f.c, ino);
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}

/* An access ACL in its xattr form: user::rw- user:UID:PERM group::r--
** mask::MASK other::--- */
static void put_acl(struct cfx *f, uint64_t ino, uid_t uid, unsigned perm, unsigned mask)
{
	unsigned char a[4 + 5 * 8];
	struct { unsigned tag, perm; uint32_t id; } e[5] = {
		{ 0x01, 6, 0xffffffff }, { 0x02, perm, uid }, { 0x04, 4, 0xffffffff },
		{ 0x10, mask, 0xffffffff }, { 0x20, 0, 0xffffffff } };

	memset(a, 0, sizeof(a));
	a[0] = 2;                                              /* version 2 */
	for (int i = 0; i < 5; i++) {
		unsigned char *p = a + 4 + 8 * i;

		p[0] = (unsigned char)e[i].tag;
		p[2] = (unsigned char)e[i].perm;
		for (int k = 0; k < 4; k++)
			p[4 + k] = (unsigned char)(e[i].id >> (8 * k));
	}
	f->v.x.op->setxattr(f->v.x.fs, &f->v.x.ctx, ino, "system.posix_acl_access", a,
			    sizeof(a), 0);
}

TEST(client_access)
{
	struct cfx f;
	struct stat st;
	uint64_t a, file;

	CHECK(cfx_open(&f) == 0);
	a = mfx_lookup(&f.v.x, VC_ROOT, "a");
	file = mfx_lookup(&f.v.x, VC_ROOT, "f");
	cfx_own(&f, a, 0750, 0, 500);
	cfx_own(&f, file, 0640, 0, 500);

	/* a user in no group: "other" bits, so /a cannot be searched */
	f.c.ctx.uid = 1000;
	f.c.ctx.gid = 1000;
	f.c.ctx.ngroups = 0;
	CHECK_EQ(res(&f, "/a/b/f", true), -EACCES);
	CHECK_EQ(res(&f, "/la/b", true), -EACCES);             /* through a link too */
	CHECK_EQ(res(&f, "/f", true), 3);                       /* resolving needs no read */
	st = mfx_stat(&f.v.x, file);
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), -EACCES);

	/* a supplementary group member: the group bits */
	f.c.ctx.ngroups = 1;
	f.c.ctx.groups[0] = 500;
	CHECK_EQ(res(&f, "/a/b/f", true), 5);
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), 0);
	CHECK_EQ(vclient_access(&f.c, file, &st, W_OK), -EACCES);

	/* the owner: the owner bits, even where the group has more */
	cfx_own(&f, file, 0470, 1000, 500);
	st = mfx_stat(&f.v.x, file);
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), 0);
	CHECK_EQ(vclient_access(&f.c, file, &st, W_OK), -EACCES);

	/* the access ACL: a named user, limited by the mask */
	cfx_own(&f, file, 0600, 0, 500);
	put_acl(&f, file, 1000, 6, 4);
	st = mfx_stat(&f.v.x, file);
	f.c.ctx.ngroups = 0;
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), 0);
	CHECK_EQ(vclient_access(&f.c, file, &st, W_OK), -EACCES);   /* masked */
	f.c.ctx.uid = 1001;                                         /* other: --- */
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), -EACCES);
	f.c.ctx.ngroups = 1;                                        /* group::r-- */
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK), 0);
	CHECK_EQ(vclient_access(&f.c, file, &st, W_OK), -EACCES);

	/* root reads and writes anything, searches any directory, executes
	 * only what has an x bit */
	f.c.ctx.uid = 0;
	f.c.ctx.gid = 0;
	f.c.ctx.ngroups = 0;
	cfx_own(&f, a, 0000, 7, 7);
	cfx_own(&f, file, 0000, 7, 7);
	st = mfx_stat(&f.v.x, file);
	CHECK_EQ(res(&f, "/a/b/f", true), 5);
	CHECK_EQ(vclient_access(&f.c, file, &st, R_OK | W_OK), 0);
	CHECK_EQ(vclient_access(&f.c, file, &st, X_OK), -EACCES);
	cfx_own(&f, file, 0010, 7, 7);
	st = mfx_stat(&f.v.x, file);
	CHECK_EQ(vclient_access(&f.c, file, &st, X_OK), 0);

	f.v.x.op->forget(f.v.x.fs, a, 1);
	f.v.x.op->forget(f.v.x.fs, file, 1);
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}

TEST(client_sticky_delete)
{
	struct cfx f;
	struct stat dst, st;
	uint64_t t, mine, theirs;

	CHECK(cfx_open(&f) == 0);
	t = cfx_mkdir(&f, VC_ROOT, "tmp", 01777);
	CHECK(t != 0);
	cfx_own(&f, t, 01777, 0, 0);
	mine = mfx_file(&f.v.x, t, "mine", "m");
	theirs = mfx_file(&f.v.x, t, "theirs", "t");
	cfx_own(&f, mine, 0644, 1000, 1000);
	cfx_own(&f, theirs, 0644, 2000, 2000);
	dst = mfx_stat(&f.v.x, t);
	f.c.ctx.uid = 1000;
	f.c.ctx.gid = 1000;
	st = mfx_stat(&f.v.x, mine);
	CHECK_EQ(vclient_may_delete(&f.c, t, &dst, &st), 0);
	st = mfx_stat(&f.v.x, theirs);
	CHECK_EQ(vclient_may_delete(&f.c, t, &dst, &st), -EPERM);
	cfx_own(&f, t, 0777, 0, 0);                          /* no sticky bit */
	dst = mfx_stat(&f.v.x, t);
	CHECK_EQ(vclient_may_delete(&f.c, t, &dst, &st), 0);
	cfx_own(&f, t, 0755, 0, 0);                          /* no write */
	dst = mfx_stat(&f.v.x, t);
	CHECK_EQ(vclient_may_delete(&f.c, t, &dst, &st), -EACCES);
	f.c.ctx.uid = 0;
	CHECK_EQ(vclient_may_delete(&f.c, t, &dst, &st), 0);
	f.v.x.op->forget(f.v.x.fs, mine, 1);
	f.v.x.op->forget(f.v.x.fs, theirs, 1);
	f.v.x.op->forget(f.v.x.fs, t, 1);
	CHECK_EQ(mfx_report(&f.v.x, "backend_nodes"), f.nodes0);
	vfx_close(&f.v);
}
