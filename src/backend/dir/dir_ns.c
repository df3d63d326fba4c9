/*
** dir_ns.c -- the dir backend's namespace operations: lookup, attributes,
** create-family, unlink/rmdir/rename, readlink, statfs.
**
** Every call resolves its inode to an O_PATH fd (dir_node.c) and works
** relative to it with *at() calls and no-follow flags; a name is always a
** single component, so nothing here can leave the backing tree.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dir_int.h"

int dir_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int dir_stat_at(int dirfd, const char *name, struct stat *st, uint64_t *birth)
{
	struct statx sx;
	int flags = AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT | (*name ? 0 : AT_EMPTY_PATH);

	if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st->st_ino = sx.stx_ino;
	st->st_mode = sx.stx_mode;
	st->st_nlink = sx.stx_nlink;
	st->st_uid = sx.stx_uid;
	st->st_gid = sx.stx_gid;
	st->st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
	st->st_size = (off_t)sx.stx_size;
	st->st_blksize = sx.stx_blksize;
	st->st_blocks = (blkcnt_t)sx.stx_blocks;
	st->st_atim.tv_sec = sx.stx_atime.tv_sec;
	st->st_atim.tv_nsec = sx.stx_atime.tv_nsec;
	st->st_mtim.tv_sec = sx.stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = sx.stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = sx.stx_ctime.tv_nsec;
	*birth = (sx.stx_mask & STATX_BTIME) ?
		((uint64_t)sx.stx_btime.tv_sec << 30) ^ sx.stx_btime.tv_nsec ^ 1 : 0;
	return 0;
}

int dir_proc_path(char *buf, size_t size, int fd)
{
	int n = snprintf(buf, size, "/proc/self/fd/%d", fd);

	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Attributes as the mount shows them: objects on other devices than the
** backing root get distinct inode numbers. */
void dir_fix_attr(struct dir_fs *d, struct stat *st)
{
	if (st->st_dev != d->root_dev)
		st->st_ino ^= ((uint64_t)major(st->st_dev) << 56) ^ ((uint64_t)minor(st->st_dev) << 40);
}

void dir_fill_entry(struct dir_fs *d, uint64_t ino, const struct stat *st, struct eddy_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr = *st;
	dir_fix_attr(d, &e->attr);
	e->attr_timeout = dir_timeout(d, d->opt.attr_timeout);
	e->entry_timeout = dir_timeout(d, d->opt.entry_timeout);
}

/* Looks NAME up in the directory open as PFD and references it. */
static int lookup_at(struct dir_fs *d, uint64_t parent, int pfd, const char *name,
		     struct eddy_entry *out)
{
	struct stat st;
	uint64_t ino, birth;
	int err;

	err = dir_stat_at(pfd, name, &st, &birth);
	if (err)
		return err;
	err = dir_node_ref(d, parent, name, &st, birth, &ino);
	if (err)
		return err;
	dir_fill_entry(d, ino, &st, out);
	return 0;
}

int dir_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       struct eddy_entry *out)
{
	struct dir_fs *d = dir_fs(fs);
	int pfd, err;

	(void)c;
	err = dir_check_name(name);
	if (err)
		return err;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	err = lookup_at(d, parent, pfd, name, out);
	dir_node_fd_put(d, parent);
	if (err == -ENOENT && d->opt.negative_timeout > 0) {
		memset(out, 0, sizeof(*out));
		out->entry_timeout = dir_timeout(d, d->opt.negative_timeout);
		return 0;
	}
	return err;
}

void dir_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup)
{
	dir_node_forget(dir_fs(fs), ino, nlookup);
}

int dir_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		struct stat *st, double *attr_timeout)
{
	struct dir_fs *d = dir_fs(fs);
	int fd, err = 0;

	(void)c;
	*attr_timeout = dir_timeout(d, d->opt.attr_timeout);
	if (f) {
		if (fstat(((struct dir_file *)f)->fd, st) < 0)
			return -errno;
		dir_fix_attr(d, st);
		return 0;
	}
	fd = dir_node_fd_get(d, ino, NULL);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0)
		err = -errno;
	dir_node_fd_put(d, ino);
	if (!err)
		dir_fix_attr(d, st);
	return err;
}

static int set_times(int fd, mode_t type, const char *proc, const struct stat *in, int mask)
{
	struct timespec tv[2];

	tv[0].tv_sec = 0;
	tv[0].tv_nsec = UTIME_OMIT;
	tv[1] = tv[0];
	if (mask & EDDY_SET_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (mask & EDDY_SET_ATIME)
		tv[0] = in->st_atim;
	if (mask & EDDY_SET_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (mask & EDDY_SET_MTIME)
		tv[1] = in->st_mtim;
	if (type == S_IFLNK)
		return utimensat(fd, "", tv, AT_EMPTY_PATH) < 0 ? -errno : 0;
	return utimensat(AT_FDCWD, proc, tv, 0) < 0 ? -errno : 0;
}

int dir_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		const struct stat *in, int mask, struct stat *st, double *attr_timeout)
{
	struct dir_fs *d = dir_fs(fs);
	char proc[64];
	mode_t type;
	int fd, err = 0;
	int ffd = f ? ((struct dir_file *)f)->fd : -1;

	fd = dir_node_fd_get(d, ino, &type);
	if (fd < 0)
		return fd;
	dir_proc_path(proc, sizeof(proc), fd);
	if (mask & (EDDY_SET_UID | EDDY_SET_GID)) {
		uid_t uid = (mask & EDDY_SET_UID) ? in->st_uid : (uid_t)-1;
		gid_t gid = (mask & EDDY_SET_GID) ? in->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			err = -errno;
	}
	if (!err && (mask & EDDY_SET_MODE)) {
		if (type == S_IFLNK)
			err = -EOPNOTSUPP;
		else if (ffd >= 0 ? fchmod(ffd, in->st_mode & 07777) < 0
				  : chmod(proc, in->st_mode & 07777) < 0)
			err = -errno;
	}
	if (!err && (mask & EDDY_SET_SIZE)) {
		if (ffd >= 0 && (((struct dir_file *)f)->flags & O_ACCMODE) != O_RDONLY) {
			if (ftruncate(ffd, in->st_size) < 0)
				err = -errno;
			else
				dir_kill_priv(c, ffd);
		} else if (type != S_IFREG) {
			err = type == S_IFDIR ? -EISDIR : -EINVAL;
		} else {
			int wfd = open(proc, O_WRONLY | O_CLOEXEC | O_NONBLOCK);

			if (wfd < 0 || ftruncate(wfd, in->st_size) < 0)
				err = -errno;
			else
				dir_kill_priv(c, wfd);
			if (wfd >= 0)
				close(wfd);
		}
	}
	if (!err && (mask & (EDDY_SET_ATIME | EDDY_SET_MTIME | EDDY_SET_ATIME_NOW |
			     EDDY_SET_MTIME_NOW)))
		err = set_times(fd, type, proc, in, mask);
	if (!err) {
		if (fstat(fd, st) < 0)
			err = -errno;
		else
			dir_fix_attr(d, st);
		dir_watch_own_change(d, ino, fd);
	}
	dir_node_fd_put(d, ino);
	*attr_timeout = dir_timeout(d, d->opt.attr_timeout);
	return err;
}

/*
** The mode a new object gets, as a local filesystem would give it: the
** caller's umask applies unless the parent directory has a default ACL
** (then the backing filesystem applies the ACL). The frontend negotiates
** DONT_MASK so that the kernel leaves the umask to us.
*/
mode_t dir_create_mode(int pfd, mode_t mode, const struct eddy_ctx *c)
{
	char proc[64];

	dir_proc_path(proc, sizeof(proc), pfd);
	if (getxattr(proc, "system.posix_acl_default", NULL, 0) > 0)
		return mode;
	return mode & ~(c->umask & 0777);
}

/* The create family: make the object as the caller, then look it up. */
enum make_kind { MAKE_NOD, MAKE_DIR, MAKE_LINK };

static int make_at(struct dir_fs *d, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, enum make_kind kind, mode_t mode, dev_t rdev,
		   const char *target, struct eddy_entry *out)
{
	struct dir_creds cr;
	int pfd, err, r;

	err = dir_check_name(name);
	if (err)
		return err;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	if (kind != MAKE_LINK)
		mode = (mode & S_IFMT) | dir_create_mode(pfd, mode & 07777, c);
	dir_watch_expect(d, parent, name, true, 1);
	err = dir_creds_enter(d, c, &cr);
	if (!err) {
		if (kind == MAKE_DIR)
			r = mkdirat(pfd, name, mode);
		else if (kind == MAKE_LINK)
			r = symlinkat(target, pfd, name);
		else
			r = mknodat(pfd, name, mode, rdev);
		err = r < 0 ? -errno : 0;
		dir_creds_leave(&cr);
	}
	if (err)
		dir_watch_expect(d, parent, name, true, -1);
	else
		err = lookup_at(d, parent, pfd, name, out);
	/* Another client replaced the new name at once: the object made here
	 * cannot be described, and describing the other one would make the
	 * kernel fail the call with EIO. */
	if (!err && (out->attr.st_mode & S_IFMT) !=
		    (kind == MAKE_DIR ? S_IFDIR : kind == MAKE_LINK ? S_IFLNK :
		     (mode & S_IFMT) ? (mode & S_IFMT) : S_IFREG)) {
		dir_node_forget(d, out->ino, 1);
		err = -ESTALE;
	}
	dir_node_fd_put(d, parent);
	return err;
}

int dir_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	return make_at(dir_fs(fs), c, parent, name, MAKE_NOD, mode, rdev, NULL, out);
}

int dir_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, struct eddy_entry *out)
{
	return make_at(dir_fs(fs), c, parent, name, MAKE_DIR, mode, 0, NULL, out);
}

int dir_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		uint64_t parent, const char *name, struct eddy_entry *out)
{
	return make_at(dir_fs(fs), c, parent, name, MAKE_LINK, 0, 0, target, out);
}

int dir_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, uint64_t newparent,
	     const char *newname, struct eddy_entry *out)
{
	struct dir_fs *d = dir_fs(fs);
	char proc[64];
	int fd, pfd, err;

	(void)c;
	err = dir_check_name(newname);
	if (err)
		return err;
	fd = dir_node_fd_get(d, ino, NULL);
	if (fd < 0)
		return fd;
	pfd = dir_node_fd_get(d, newparent, NULL);
	if (pfd < 0) {
		dir_node_fd_put(d, ino);
		return pfd;
	}
	dir_proc_path(proc, sizeof(proc), fd);
	dir_watch_expect(d, newparent, newname, true, 1);
	if (linkat(fd, "", pfd, newname, AT_EMPTY_PATH) < 0 &&
	    linkat(AT_FDCWD, proc, pfd, newname, AT_SYMLINK_FOLLOW) < 0)
		err = -errno;
	if (err) {
		dir_watch_expect(d, newparent, newname, true, -1);
	} else {
		dir_watch_own_change(d, ino, fd);
		err = lookup_at(d, newparent, pfd, newname, out);
		if (!err && out->ino != ino) {          /* replaced at once */
			dir_node_forget(d, out->ino, 1);
			err = -ESTALE;
		}
	}
	dir_node_fd_put(d, newparent);
	dir_node_fd_put(d, ino);
	return err;
}

static int remove_at(struct dir_fs *d, uint64_t parent, const char *name, int flags)
{
	uint64_t held;
	int pfd, err;

	err = dir_check_name(name);
	if (err)
		return err;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	held = dir_node_hold_named(d, parent, name, pfd);
	dir_watch_expect(d, parent, name, false, 1);
	err = unlinkat(pfd, name, flags) < 0 ? -errno : 0;
	if (err)
		dir_watch_expect(d, parent, name, false, -1);
	dir_node_release_named(d, held, parent, name, err == 0);
	dir_node_fd_put(d, parent);
	return err;
}

int dir_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	(void)c;
	return remove_at(dir_fs(fs), parent, name, 0);
}

int dir_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	(void)c;
	return remove_at(dir_fs(fs), parent, name, AT_REMOVEDIR);
}

int dir_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned int flags)
{
	struct dir_fs *d = dir_fs(fs);
	uint64_t src, dst;
	int pfd, npfd, err;

	(void)c;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((err = dir_check_name(name)) || (err = dir_check_name(newname)))
		return err;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	npfd = dir_node_fd_get(d, newparent, NULL);
	if (npfd < 0) {
		dir_node_fd_put(d, parent);
		return npfd;
	}
	src = dir_node_hold_named(d, parent, name, pfd);
	dst = dir_node_hold_named(d, newparent, newname, npfd);
	if (src && src == dst) {
		/* two names of one file: rename does nothing */
		dir_node_release_named(d, dst, 0, "", false);
		dst = 0;
	}
	dir_watch_expect(d, parent, name, false, 1);
	dir_watch_expect(d, newparent, newname, true, 1);
	if (flags & RENAME_EXCHANGE) {
		dir_watch_expect(d, parent, name, true, 1);
		dir_watch_expect(d, newparent, newname, false, 1);
	}
	err = renameat2(pfd, name, npfd, newname, flags) < 0 ? -errno : 0;
	if (err) {
		dir_watch_expect(d, parent, name, false, -1);
		dir_watch_expect(d, newparent, newname, true, -1);
		if (flags & RENAME_EXCHANGE) {
			dir_watch_expect(d, parent, name, true, -1);
			dir_watch_expect(d, newparent, newname, false, -1);
		}
	}
	if (!err && (flags & RENAME_EXCHANGE)) {
		dir_node_rename_held(d, dst, parent, name);
		dir_node_rename_held(d, src, newparent, newname);
		dir_node_release_named(d, dst, 0, "", false);
	} else {
		dir_node_release_named(d, dst, newparent, newname, err == 0);
		if (!err)
			dir_node_rename_held(d, src, newparent, newname);
	}
	dir_node_release_named(d, src, 0, "", false);
	dir_node_fd_put(d, newparent);
	dir_node_fd_put(d, parent);
	return err;
}

ssize_t dir_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *buf,
		     size_t size)
{
	struct dir_fs *d = dir_fs(fs);
	ssize_t n;
	int fd;

	(void)c;
	fd = dir_node_fd_get(d, ino, NULL);
	if (fd < 0)
		return fd;
	n = readlinkat(fd, "", buf, size);
	if (n < 0)
		n = -errno;
	dir_node_fd_put(d, ino);
	return n;
}

int dir_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct statvfs *out)
{
	struct dir_fs *d = dir_fs(fs);
	int fd, err = 0;

	(void)c;
	fd = dir_node_fd_get(d, ino, NULL);
	if (fd < 0) {
		ino = EDDY_ROOT_INO;
		fd = dir_node_fd_get(d, ino, NULL);
		if (fd < 0)
			return fd;
	}
	if (fstatvfs(fd, out) < 0)
		err = -errno;
	dir_node_fd_put(d, ino);
	return err;
}
