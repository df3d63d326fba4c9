/*
** vol_attr.c -- the volume backend's getattr and setattr.
**
** getattr reads the inode row and shows the overlay of dirty data (size,
** mtime, ctime) over it. setattr first writes the file's dirty data out
** (so that an explicit time or size is never overtaken by an older
** write), then applies what a local Linux filesystem applies, all or
** nothing in one transaction: chown/chgrp rules for setuid/setgid, chmod
** rewriting a stored access ACL, truncate (mtime and ctime change even to
** the same size, setuid/setgid cleared as by a write), ctime always.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vol_int.h"

int vol_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		struct stat *st, double *attr_timeout)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	int err;

	(void)c;
	*attr_timeout = v->opt.attr_timeout;
	if (f)
		ino = f->ino;
	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, ino, &a);
	if (!err)
		vol_stat_overlay(v, &a, st);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

static int setattr_check(const struct vol_attr *a, const struct stat *want, int mask)
{
	if (mask & EDDY_SET_SIZE) {
		if (S_ISDIR(a->mode))
			return -EISDIR;
		if (!S_ISREG(a->mode) || want->st_size < 0)
			return -EINVAL;
		if ((uint64_t)want->st_size > VOL_MAX_FILE_SIZE)
			return -EFBIG;
	}
	if ((mask & EDDY_SET_MODE) && S_ISLNK(a->mode))
		return -EOPNOTSUPP;
	return 0;
}

static int set_mode(struct vol_fs *v, const struct eddy_ctx *c, struct vol_attr *a, mode_t perm)
{
	size_t size = 0;
	int err;
	void *acl = vol_xattr_load(v, a->ino, EDDY_ACL_ACCESS, &size, &err);

	a->mode = (a->mode & S_IFMT) | eddy_mode_after_chmod(c, perm & 07777, a->gid);
	if (acl) {
		eddy_acl_chmod(acl, size, a->mode & 07777);
		err = vol_xattr_store(v, a->ino, EDDY_ACL_ACCESS, acl, size);
		free(acl);
	}
	return err;
}

static int setattr_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t ino,
		      const struct stat *want, int mask, bool file_open, struct vol_attr *a)
{
	mode_t type;
	int64_t now = vol_now();
	int err;

	if ((err = vol_attr_get(v, ino, a)) ||
	    (err = vol_may_setattr(v, c, a, want, mask, file_open)) ||
	    (err = setattr_check(a, want, mask)))
		return err;
	type = a->mode & S_IFMT;
	if (mask & (EDDY_SET_UID | EDDY_SET_GID)) {
		a->mode = type | eddy_mode_after_chown(c, type, a->mode & 07777, a->gid);
		if (mask & EDDY_SET_UID)
			a->uid = want->st_uid;
		if (mask & EDDY_SET_GID)
			a->gid = want->st_gid;
	}
	if ((mask & EDDY_SET_MODE) && (err = set_mode(v, c, a, want->st_mode)))
		return err;
	if (mask & EDDY_SET_SIZE) {
		if ((err = vol_data_truncate(v, a, (uint64_t)want->st_size)))
			return err;
		a->mtime = now;
		a->mode = type | eddy_mode_after_write(c, type, a->mode & 07777, a->gid);
	}
	if (mask & EDDY_SET_KILL_SUIDGID)
		a->mode = type | eddy_mode_kill_suidgid(type, a->mode & 07777);
	if (mask & EDDY_SET_ATIME_NOW)
		a->atime = now;
	else if (mask & EDDY_SET_ATIME)
		a->atime = vol_ts_to_ns(&want->st_atim);
	if (mask & EDDY_SET_MTIME_NOW)
		a->mtime = now;
	else if (mask & EDDY_SET_MTIME)
		a->mtime = vol_ts_to_ns(&want->st_mtim);
	a->ctime = (mask & EDDY_SET_CTIME) ? vol_ts_to_ns(&want->st_ctim) : now;
	return vol_attr_put(v, a);
}

int vol_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
		const struct stat *want, int mask, struct stat *st, double *attr_timeout)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_inode *vi;
	struct vol_attr a;
	bool file_open;
	int err;

	*attr_timeout = v->opt.attr_timeout;
	file_open = f != NULL;
	if (f)
		ino = f->ino;
	vi = vol_inode_pin(v, ino);
	if (!vi)
		return -ENOMEM;
	pthread_rwlock_wrlock(&vi->data_lock);
	err = vol_data_flush(v, vi, false);
	if (!err) {
		pthread_mutex_lock(&v->db_lock);
		err = vol_tx_begin(v);
		if (!err)
			err = vol_tx_end(v, setattr_tx(v, c, ino, want, mask, file_open, &a));
		if (!err)
			vol_stat_overlay(v, &a, st);
		pthread_mutex_unlock(&v->db_lock);
		if (!err && (mask & EDDY_SET_SIZE))
			vi->unsynced = true;
	}
	pthread_rwlock_unlock(&vi->data_lock);
	vol_inode_unpin(v, vi);
	return err;
}
