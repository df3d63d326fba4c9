/*
** mem_attr.c -- the mem backend's getattr and setattr, and the ownership
** rules that go with them.
**
** setattr applies what a local Linux filesystem applies, all or nothing
** (every check comes before the first change):
**   - chown/chgrp of a non-directory clears setuid, and setgid when the
**     file is group-executable or a caller other than root is not in its
**     group (the kernel's chown rule, root included);
**   - chmod rewrites a stored access ACL (mem_acl.c);
**   - truncate drops data past the new size, updates mtime and ctime (even
**     to the same size, as ext4), and clears setuid/setgid as a write does;
**   - every setattr updates ctime.
** The frontend keeps FUSE's HANDLE_KILLPRIV, so the kernel leaves all the
** clearing of setuid/setgid to us (mem_kill_priv on write and truncate).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem_int.h"


/* The kernel's rule (setattr_should_drop_suidgid) for a caller without
** CAP_FSETID, approximated as uid != 0: setuid always goes; setgid goes if
** the file is group-executable or the caller is not in its group. */
void mem_kill_priv(const struct eddy_ctx *c, struct mem_inode *in)
{
	in->mode = eddy_mode_after_write(c, in->type, in->mode, in->gid);
}

int mem_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		struct stat *st, double *attr_timeout)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;

	(void)c;
	*attr_timeout = m->opt.attr_timeout;
	pthread_rwlock_rdlock(&m->ns_lock);
	in = f ? mem_file(f)->inode : mem_inode_find(m, ino);
	if (in)
		mem_inode_stat(in, st);
	pthread_rwlock_unlock(&m->ns_lock);
	return in ? 0 : -ESTALE;
}

static int setattr_check(struct mem_inode *in, const struct stat *want, int mask)
{
	if (mask & EDDY_SET_SIZE) {
		if (in->type == S_IFDIR)
			return -EISDIR;
		if (in->type != S_IFREG || want->st_size < 0)
			return -EINVAL;
		if ((uint64_t)want->st_size > MEM_MAX_FILE_SIZE)
			return -EFBIG;
	}
	if ((mask & EDDY_SET_MODE) && in->type == S_IFLNK)
		return -EOPNOTSUPP;
	return 0;
}

static void set_owner(const struct eddy_ctx *c, struct mem_inode *in, const struct stat *want,
		      int mask)
{
	in->mode = eddy_mode_after_chown(c, in->type, in->mode, in->gid);
	if (mask & EDDY_SET_UID)
		in->uid = want->st_uid;
	if (mask & EDDY_SET_GID)
		in->gid = want->st_gid;
}

/* As ext4: mtime and ctime change even when the size does not. */
static void set_size(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *in,
		     uint64_t size)
{
	if (size < in->size) {
		uint64_t before = in->u.pages.count;

		mem_pages_truncate(&in->u.pages, size);
		mem_space_adjust(m, -(long long)((before - in->u.pages.count) * MEM_PAGE_SIZE));
	}
	in->size = size;
	mem_touch_locked(in, MEM_MTIME | MEM_CTIME);
	mem_kill_priv(c, in);
}

static void setattr_apply(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *in,
			  const struct stat *want, int mask)
{
	struct timespec now;

	mem_now(&now);
	if (mask & (EDDY_SET_UID | EDDY_SET_GID))
		set_owner(c, in, want, mask);
	if (mask & EDDY_SET_MODE) {
		struct mem_xattr *acl = mem_xattr_find(in, EDDY_ACL_ACCESS);

		in->mode = want->st_mode & 07777;
		if (acl)
			eddy_acl_chmod(acl->value, acl->size, in->mode);
	}
	if (mask & EDDY_SET_SIZE)
		set_size(m, c, in, (uint64_t)want->st_size);
	if (mask & EDDY_SET_KILL_SUIDGID)
		in->mode = eddy_mode_kill_suidgid(in->type, in->mode);
	if (mask & EDDY_SET_ATIME_NOW)
		in->atime = now;
	else if (mask & EDDY_SET_ATIME)
		in->atime = want->st_atim;
	if (mask & EDDY_SET_MTIME_NOW)
		in->mtime = now;
	else if (mask & EDDY_SET_MTIME)
		in->mtime = want->st_mtim;
	in->ctime = (mask & EDDY_SET_CTIME) ? want->st_ctim : now;
}

int mem_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		const struct stat *want, int mask, struct stat *st, double *attr_timeout)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	int err;

	*attr_timeout = m->opt.attr_timeout;
	pthread_rwlock_rdlock(&m->ns_lock);
	in = f ? mem_file(f)->inode : mem_inode_find(m, ino);
	if (!in) {
		pthread_rwlock_unlock(&m->ns_lock);
		return -ESTALE;
	}
	pthread_rwlock_wrlock(&in->lock);
	err = setattr_check(in, want, mask);
	if (!err)
		setattr_apply(m, c, in, want, mask);
	pthread_rwlock_unlock(&in->lock);
	if (!err)
		mem_inode_stat(in, st);
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}
