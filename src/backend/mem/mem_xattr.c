/*
** mem_xattr.c -- the mem backend's extended attributes.
**
** Namespaces as on a local Linux filesystem: user.* (regular files and
** directories only: others answer -EPERM to changes, -ENODATA to reads),
** trusted.* (uid 0 only: others get -EPERM to changes, -ENODATA to reads,
** and do not see them listed), security.*, and the two POSIX ACL names
** (mem_acl.c keeps them in sync with the mode). Anything else is
** -EOPNOTSUPP. Values up to 64 KiB; names up to 255 bytes. Each change
** updates ctime. Attributes live in a list per inode, in creation order,
** under the inode's lock; their bytes count as used space.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "mem_int.h"

struct mem_xattr *mem_xattr_find(struct mem_inode *in, const char *name)
{
	struct mem_xattr *x;

	for (x = in->xattrs; x; x = x->next)
		if (strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

static long long cost(const char *name, size_t size)
{
	return (long long)(strlen(name) + size);
}

int mem_xattr_put(struct mem_fs *m, struct mem_inode *in, const char *name, const void *value,
		  size_t size)
{
	struct mem_xattr **p, *old = mem_xattr_find(in, name), *x;
	size_t len = strlen(name);
	long long delta = cost(name, size) - (old ? cost(name, old->size) : 0);
	int err;

	if (delta > 0 && (err = mem_space_reserve(m, (uint64_t)delta)) < 0)
		return err;
	x = malloc(sizeof(*x) + len + 1 + size);
	if (!x) {
		if (delta > 0)
			mem_space_adjust(m, -delta);
		return -ENOMEM;
	}
	memcpy(x->name, name, len + 1);
	x->value = x->name + len + 1;
	x->size = size;
	if (size)
		memcpy(x->value, value, size);
	/* replace in place (keeps the order) or append */
	for (p = &in->xattrs; *p && *p != old; p = &(*p)->next)
		;
	x->next = old ? old->next : NULL;
	*p = x;
	free(old);
	if (delta < 0)
		mem_space_adjust(m, delta);
	return 0;
}

int mem_xattr_drop(struct mem_fs *m, struct mem_inode *in, const char *name)
{
	struct mem_xattr **p, *x;

	for (p = &in->xattrs; *p; p = &(*p)->next)
		if (strcmp((*p)->name, name) == 0)
			break;
	if (!*p)
		return -ENODATA;
	x = *p;
	*p = x->next;
	mem_space_adjust(m, -cost(x->name, x->size));
	free(x);
	return 0;
}

void mem_xattrs_free(struct mem_fs *m, struct mem_inode *in)
{
	while (in->xattrs)
		mem_xattr_drop(m, in, in->xattrs->name);
}

/* May C read (WRITE false) or change NAME on IN? ns_lock held. */
static int check_name(const struct eddy_ctx *c, struct mem_inode *in, const char *name,
		      bool write)
{
	return eddy_xattr_check(c, in->type, name, write);
}

/* The inode INO, ns_lock held shared by the caller. */
static struct mem_inode *find(struct mem_fs *m, uint64_t ino, int *err)
{
	struct mem_inode *in = mem_inode_find(m, ino);

	*err = in ? 0 : -ESTALE;
	return in;
}

/* Sets the access ACL: the mode follows it; an ACL the mode expresses
** fully is not kept (in->lock held exclusive). */
static int set_access_acl(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *in,
			  const void *value, size_t size)
{
	mode_t mode = in->mode;
	int r = eddy_acl_valid(value, size);

	if (r < 0)
		return r;
	if (size <= 4) {                    /* no entries: remove the ACL */
		r = mem_xattr_drop(m, in, EDDY_ACL_ACCESS);
		return r == -ENODATA ? 0 : r;
	}
	r = eddy_acl_mode(value, size, &mode);
	if (r < 0)
		return r;
	if (r == 0)
		mem_xattr_drop(m, in, EDDY_ACL_ACCESS);
	else if ((r = mem_xattr_put(m, in, EDDY_ACL_ACCESS, value, size)) < 0)
		return r;
	if (c->uid != 0 && !eddy_ctx_in_group(c, in->gid))
		mode &= ~(mode_t)S_ISGID;
	in->mode = mode;
	return 0;
}

static int set_default_acl(struct mem_fs *m, struct mem_inode *in, const void *value,
			   size_t size)
{
	int r = eddy_acl_valid(value, size);

	if (r < 0)
		return r;
	if (in->type != S_IFDIR)
		return size <= 4 ? 0 : -EACCES;
	if (size <= 4) {                    /* no entries: remove the ACL */
		r = mem_xattr_drop(m, in, EDDY_ACL_DEFAULT);
		return r == -ENODATA ? 0 : r;
	}
	return mem_xattr_put(m, in, EDDY_ACL_DEFAULT, value, size);
}

int mem_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	struct mem_xattr *x;
	int err;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > MEM_XATTR_SIZE_MAX)
		return -E2BIG;
	pthread_rwlock_rdlock(&m->ns_lock);
	in = find(m, ino, &err);
	if (!err)
		err = check_name(c, in, name, true);
	if (err) {
		pthread_rwlock_unlock(&m->ns_lock);
		return err;
	}
	pthread_rwlock_wrlock(&in->lock);
	x = mem_xattr_find(in, name);
	if ((flags & XATTR_CREATE) && x)
		err = -EEXIST;
	else if ((flags & XATTR_REPLACE) && !x)
		err = -ENODATA;
	else if (strcmp(name, EDDY_ACL_ACCESS) == 0)
		err = set_access_acl(m, c, in, value, size);
	else if (strcmp(name, EDDY_ACL_DEFAULT) == 0)
		err = set_default_acl(m, in, value, size);
	else
		err = mem_xattr_put(m, in, name, value, size);
	if (!err)
		mem_touch_locked(in, MEM_CTIME);
	pthread_rwlock_unlock(&in->lock);
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

ssize_t mem_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		     void *value, size_t size)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	struct mem_xattr *x;
	ssize_t r;
	int err;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = find(m, ino, &err);
	if (!err)
		err = check_name(c, in, name, false);
	if (err) {
		pthread_rwlock_unlock(&m->ns_lock);
		return err;
	}
	pthread_rwlock_rdlock(&in->lock);
	x = mem_xattr_find(in, name);
	if (!x)
		r = -ENODATA;
	else if (size == 0)
		r = (ssize_t)x->size;
	else if (size < x->size)
		r = -ERANGE;
	else {
		memcpy(value, x->value, x->size);
		r = (ssize_t)x->size;
	}
	pthread_rwlock_unlock(&in->lock);
	pthread_rwlock_unlock(&m->ns_lock);
	return r;
}

static bool listed(const struct eddy_ctx *c, const struct mem_xattr *x)
{
	return eddy_xattr_listed(c, x->name);
}

ssize_t mem_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *list,
		      size_t size)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	struct mem_xattr *x;
	size_t total = 0;
	ssize_t r;
	int err;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = find(m, ino, &err);
	if (err) {
		pthread_rwlock_unlock(&m->ns_lock);
		return err;
	}
	pthread_rwlock_rdlock(&in->lock);
	for (x = in->xattrs; x; x = x->next)
		if (listed(c, x))
			total += strlen(x->name) + 1;
	if (size == 0) {
		r = (ssize_t)total;
	} else if (size < total) {
		r = -ERANGE;
	} else {
		char *p = list;

		for (x = in->xattrs; x; x = x->next) {
			size_t n = strlen(x->name) + 1;

			if (!listed(c, x))
				continue;
			memcpy(p, x->name, n);
			p += n;
		}
		r = (ssize_t)total;
	}
	pthread_rwlock_unlock(&in->lock);
	pthread_rwlock_unlock(&m->ns_lock);
	return r;
}

int mem_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	int err;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = find(m, ino, &err);
	if (!err)
		err = check_name(c, in, name, true);
	if (err) {
		pthread_rwlock_unlock(&m->ns_lock);
		return err;
	}
	pthread_rwlock_wrlock(&in->lock);
	err = mem_xattr_drop(m, in, name);
	if (!err)
		mem_touch_locked(in, MEM_CTIME);
	pthread_rwlock_unlock(&in->lock);
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}
