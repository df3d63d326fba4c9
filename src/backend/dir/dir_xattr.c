/*
** dir_xattr.c -- the dir backend's extended attributes.
**
** O_PATH fds do not support the f*xattr calls, so regular files,
** directories and special files go through /proc/self/fd/N of the node's
** fd (which names exactly that inode). Symlinks must not be followed: they
** are reached as /proc/self/fd/P/NAME through their parent P with the l*
** calls, after checking that the name still holds the same object.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dir_int.h"

enum xop { XSET, XGET, XLIST, XREMOVE };

struct xargs {
	enum xop op;
	const char *name;
	void *value;
	size_t size;
	int flags;
};

static ssize_t do_xattr(const char *path, bool nofollow, struct xargs *a)
{
	ssize_t r;

	switch (a->op) {
	case XSET:
		r = nofollow ? lsetxattr(path, a->name, a->value, a->size, a->flags)
			     : setxattr(path, a->name, a->value, a->size, a->flags);
		break;
	case XGET:
		r = nofollow ? lgetxattr(path, a->name, a->value, a->size)
			     : getxattr(path, a->name, a->value, a->size);
		break;
	case XLIST:
		r = nofollow ? llistxattr(path, a->value, a->size)
			     : listxattr(path, a->value, a->size);
		break;
	default:
		r = nofollow ? lremovexattr(path, a->name) : removexattr(path, a->name);
		break;
	}
	return r < 0 ? -errno : r;
}

/* A symlink node: reach it through its parent without following it. */
static ssize_t symlink_xattr(struct dir_fs *d, uint64_t ino, int fd, struct xargs *a)
{
	char path[64 + NAME_MAX + 2], name[NAME_MAX + 1];
	struct stat st, want;
	uint64_t parent;
	ssize_t r;
	int pfd;

	if (fstat(fd, &want) < 0)
		return -errno;
	if (!dir_node_name_of(d, ino, &parent, name))
		return -ESTALE;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", pfd, name);
	if (lstat(path, &st) < 0)
		r = -errno;
	else if (st.st_ino != want.st_ino || st.st_dev != want.st_dev)
		r = -ESTALE;
	else
		r = do_xattr(path, true, a);
	dir_node_fd_put(d, parent);
	return r;
}

static ssize_t node_xattr(struct dir_fs *d, uint64_t ino, struct xargs *a)
{
	char proc[64];
	mode_t type;
	ssize_t r;
	int fd;

	fd = dir_node_fd_get(d, ino, &type);
	if (fd < 0)
		return fd;
	if (type == S_IFLNK) {
		r = symlink_xattr(d, ino, fd, a);
	} else {
		dir_proc_path(proc, sizeof(proc), fd);
		r = do_xattr(proc, false, a);
	}
	if (r >= 0 && (a->op == XSET || a->op == XREMOVE))
		dir_watch_own_change(d, ino, fd);
	dir_node_fd_put(d, ino);
	return r;
}

int dir_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	struct xargs a = { XSET, name, (void *)value, size, flags };

	(void)c;
	return (int)node_xattr(dir_fs(fs), ino, &a);
}

ssize_t dir_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		     void *value, size_t size)
{
	struct xargs a = { XGET, name, value, size, 0 };

	(void)c;
	return node_xattr(dir_fs(fs), ino, &a);
}

ssize_t dir_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *list,
		      size_t size)
{
	struct xargs a = { XLIST, NULL, list, size, 0 };

	(void)c;
	return node_xattr(dir_fs(fs), ino, &a);
}

int dir_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name)
{
	struct xargs a = { XREMOVE, name, NULL, 0, 0 };

	(void)c;
	return (int)node_xattr(dir_fs(fs), ino, &a);
}
