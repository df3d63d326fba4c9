/*
** ops_count.c -- request counters: one relaxed atomic counter per FUSE
** request type in the session's context (struct eddy_frontend), bumped by
** a thin wrapper before the request's handler runs, and reported by
** `eddyfs stats` as fuse_req_<type> (plus fuse_requests, their sum). They
** count requests received from the kernel, whatever the answer (an ENOSYS
** that stops the kernel sending a type is counted once). INIT, DESTROY and
** INTERRUPT are handled inside libfuse and not counted.
*/
#include <stdio.h>

#include "frontend_int.h"

static const char *const req_names[FE_REQ_N] = {
	[FE_REQ_LOOKUP] = "lookup",
	[FE_REQ_FORGET] = "forget",
	[FE_REQ_FORGET_MULTI] = "batch_forget",
	[FE_REQ_GETATTR] = "getattr",
	[FE_REQ_SETATTR] = "setattr",
	[FE_REQ_READLINK] = "readlink",
	[FE_REQ_MKNOD] = "mknod",
	[FE_REQ_MKDIR] = "mkdir",
	[FE_REQ_UNLINK] = "unlink",
	[FE_REQ_RMDIR] = "rmdir",
	[FE_REQ_SYMLINK] = "symlink",
	[FE_REQ_RENAME] = "rename",
	[FE_REQ_LINK] = "link",
	[FE_REQ_OPEN] = "open",
	[FE_REQ_READ] = "read",
	[FE_REQ_WRITE] = "write",
	[FE_REQ_FLUSH] = "flush",
	[FE_REQ_RELEASE] = "release",
	[FE_REQ_FSYNC] = "fsync",
	[FE_REQ_OPENDIR] = "opendir",
	[FE_REQ_READDIR] = "readdir",
	[FE_REQ_READDIRPLUS] = "readdirplus",
	[FE_REQ_RELEASEDIR] = "releasedir",
	[FE_REQ_FSYNCDIR] = "fsyncdir",
	[FE_REQ_STATFS] = "statfs",
	[FE_REQ_SETXATTR] = "setxattr",
	[FE_REQ_GETXATTR] = "getxattr",
	[FE_REQ_LISTXATTR] = "listxattr",
	[FE_REQ_REMOVEXATTR] = "removexattr",
	[FE_REQ_ACCESS] = "access",
	[FE_REQ_CREATE] = "create",
	[FE_REQ_FALLOCATE] = "fallocate",
	[FE_REQ_COPY_FILE_RANGE] = "copy_file_range",
	[FE_REQ_LSEEK] = "lseek",
	[FE_REQ_GETLK] = "getlk",
	[FE_REQ_SETLK] = "setlk",
	[FE_REQ_FLOCK] = "flock",
	[FE_REQ_POLL] = "poll",
};

static inline void fe_count(fuse_req_t req, enum fe_req type)
{
	atomic_fetch_add_explicit(&fe_of(req)->reqs[type], 1, memory_order_relaxed);
}

static void c_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fe_count(req, FE_REQ_LOOKUP);
	fe_lookup(req, parent, name);
}

static void c_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fe_count(req, FE_REQ_FORGET);
	fe_forget(req, ino, nlookup);
}

static void c_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	fe_count(req, FE_REQ_FORGET_MULTI);
	fe_forget_multi(req, count, forgets);
}

static void c_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_GETATTR);
	fe_getattr(req, ino, fi);
}

static void c_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_SETATTR);
	fe_setattr(req, ino, attr, to_set, fi);
}

static void c_readlink(fuse_req_t req, fuse_ino_t ino)
{
	fe_count(req, FE_REQ_READLINK);
	fe_readlink(req, ino);
}

static void c_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fe_count(req, FE_REQ_MKNOD);
	fe_mknod(req, parent, name, mode, rdev);
}

static void c_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fe_count(req, FE_REQ_MKDIR);
	fe_mkdir(req, parent, name, mode);
}

static void c_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fe_count(req, FE_REQ_UNLINK);
	fe_unlink(req, parent, name);
}

static void c_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fe_count(req, FE_REQ_RMDIR);
	fe_rmdir(req, parent, name);
}

static void c_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fe_count(req, FE_REQ_SYMLINK);
	fe_symlink(req, link, parent, name);
}

static void c_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags)
{
	fe_count(req, FE_REQ_RENAME);
	fe_rename(req, parent, name, newparent, newname, flags);
}

static void c_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fe_count(req, FE_REQ_LINK);
	fe_link(req, ino, newparent, newname);
}

static void c_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_OPEN);
	fe_open(req, ino, fi);
}

static void c_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_READ);
	fe_read(req, ino, size, off, fi);
}

static void c_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_WRITE);
	fe_write(req, ino, buf, size, off, fi);
}

static void c_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_FLUSH);
	fe_flush(req, ino, fi);
}

static void c_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_RELEASE);
	fe_release(req, ino, fi);
}

static void c_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_FSYNC);
	fe_fsync(req, ino, datasync, fi);
}

static void c_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_OPENDIR);
	fe_opendir(req, ino, fi);
}

static void c_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_READDIR);
	fe_readdir(req, ino, size, off, fi);
}

static void c_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_READDIRPLUS);
	fe_readdirplus(req, ino, size, off, fi);
}

static void c_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_RELEASEDIR);
	fe_releasedir(req, ino, fi);
}

static void c_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_FSYNCDIR);
	fe_fsyncdir(req, ino, datasync, fi);
}

static void c_statfs(fuse_req_t req, fuse_ino_t ino)
{
	fe_count(req, FE_REQ_STATFS);
	fe_statfs(req, ino);
}

static void c_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		size_t size, int flags)
{
	fe_count(req, FE_REQ_SETXATTR);
	fe_setxattr(req, ino, name, value, size, flags);
}

static void c_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	fe_count(req, FE_REQ_GETXATTR);
	fe_getxattr(req, ino, name, size);
}

static void c_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fe_count(req, FE_REQ_LISTXATTR);
	fe_listxattr(req, ino, size);
}

static void c_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fe_count(req, FE_REQ_REMOVEXATTR);
	fe_removexattr(req, ino, name);
}

static void c_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	fe_count(req, FE_REQ_ACCESS);
	fe_access(req, ino, mask);
}

static void c_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_CREATE);
	fe_create(req, parent, name, mode, fi);
}

static void c_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_FALLOCATE);
	fe_fallocate(req, ino, mode, off, len, fi);
}

static void c_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
		struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
		struct fuse_file_info *fi_out, size_t len, int flags)
{
	fe_count(req, FE_REQ_COPY_FILE_RANGE);
	fe_copy_file_range(req, ino_in, off_in, fi_in, ino_out, off_out, fi_out, len, flags);
}

static void c_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		struct fuse_file_info *fi)
{
	fe_count(req, FE_REQ_LSEEK);
	fe_lseek(req, ino, off, whence, fi);
}

static void c_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	fe_count(req, FE_REQ_GETLK);
	fe_getlk(req, ino, fi, lock);
}

static void c_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		struct flock *lock, int sleep)
{
	fe_count(req, FE_REQ_SETLK);
	fe_setlk(req, ino, fi, lock, sleep);
}

static void c_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	fe_count(req, FE_REQ_FLOCK);
	fe_flock(req, ino, fi, op);
}

static void c_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		struct fuse_pollhandle *ph)
{
	fe_count(req, FE_REQ_POLL);
	fe_poll(req, ino, fi, ph);
}

const struct fuse_lowlevel_ops fe_counted_ops = {
	.lookup = c_lookup,
	.forget = c_forget,
	.forget_multi = c_forget_multi,
	.getattr = c_getattr,
	.setattr = c_setattr,
	.readlink = c_readlink,
	.mknod = c_mknod,
	.mkdir = c_mkdir,
	.unlink = c_unlink,
	.rmdir = c_rmdir,
	.symlink = c_symlink,
	.rename = c_rename,
	.link = c_link,
	.open = c_open,
	.read = c_read,
	.write = c_write,
	.flush = c_flush,
	.release = c_release,
	.fsync = c_fsync,
	.opendir = c_opendir,
	.readdir = c_readdir,
	.readdirplus = c_readdirplus,
	.releasedir = c_releasedir,
	.fsyncdir = c_fsyncdir,
	.statfs = c_statfs,
	.setxattr = c_setxattr,
	.getxattr = c_getxattr,
	.listxattr = c_listxattr,
	.removexattr = c_removexattr,
	.access = c_access,
	.create = c_create,
	.fallocate = c_fallocate,
	.copy_file_range = c_copy_file_range,
	.lseek = c_lseek,
	.getlk = c_getlk,
	.setlk = c_setlk,
	.flock = c_flock,
	.poll = c_poll,
};

void fe_requests_report(struct eddy_frontend *fe, eddy_stat_fn fn, void *arg)
{
	char key[48];
	unsigned long long total = 0;

	for (int i = 0; i < FE_REQ_N; i++)
		total += atomic_load_explicit(&fe->reqs[i], memory_order_relaxed);
	fn(arg, "fuse_requests", (long long)total);
	for (int i = 0; i < FE_REQ_N; i++) {
		snprintf(key, sizeof(key), "fuse_req_%s", req_names[i]);
		fn(arg, key, (long long)atomic_load_explicit(&fe->reqs[i], memory_order_relaxed));
	}
}
