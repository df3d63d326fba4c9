/*
** vol_xattr.c -- the volume backend's extended attributes: rows of the
** xattrs table, the namespaces and limits of a local filesystem
** (fsrules.h: user.*, trusted.*, security.*, the POSIX ACL names), values
** up to 64 KiB, and the POSIX ACLs kept in sync with the mode as ext4 does
** (posix_acl.h). Each change is one transaction and updates ctime; the
** bytes of names and values count against the volume capacity.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "vol_int.h"

/* Sets the access ACL: the mode follows it; an ACL the mode expresses
** fully is not kept. */
static int set_access_acl(struct vol_fs *v, const struct eddy_ctx *c, struct vol_attr *a,
			  const void *value, size_t size)
{
	mode_t mode = a->mode;
	int r = eddy_acl_valid(value, size);

	if (r < 0)
		return r;
	if (size <= 4) {                    /* no entries: remove the ACL */
		r = vol_xattr_remove(v, a->ino, EDDY_ACL_ACCESS);
		return r == -ENODATA ? 0 : r;
	}
	r = eddy_acl_mode(value, size, &mode);
	if (r < 0)
		return r;
	if (r == 0) {
		r = vol_xattr_remove(v, a->ino, EDDY_ACL_ACCESS);
		if (r && r != -ENODATA)
			return r;
	} else if ((r = vol_xattr_store(v, a->ino, EDDY_ACL_ACCESS, value, size)) < 0) {
		return r;
	}
	if (c->uid != 0 && !eddy_ctx_in_group(c, a->gid))
		mode &= ~(mode_t)S_ISGID;
	a->mode = mode;
	return 0;
}

static int set_default_acl(struct vol_fs *v, struct vol_attr *a, const void *value, size_t size)
{
	int r = eddy_acl_valid(value, size);

	if (r < 0)
		return r;
	if (!S_ISDIR(a->mode))
		return size <= 4 ? 0 : -EACCES;
	if (size <= 4) {
		r = vol_xattr_remove(v, a->ino, EDDY_ACL_DEFAULT);
		return r == -ENODATA ? 0 : r;
	}
	return vol_xattr_store(v, a->ino, EDDY_ACL_DEFAULT, value, size);
}

/* The kernel's xattr_permission for user.* names (others: the namespace
** rules of eddy_xattr_check only): read or write access, and in a sticky
** directory only its owner may change them. */
static int xattr_may(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a,
		     const char *name, bool write)
{
	if (strncmp(name, "user.", 5) != 0 || !v->opt.check_access)
		return 0;
	if (write && S_ISDIR(a->mode) && (a->mode & S_ISVTX) && c->uid != 0 && c->uid != a->uid)
		return -EPERM;
	return vol_may(v, c, a, write ? W_OK : R_OK);
}

static int setxattr_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t ino,
		       const char *name, const void *value, size_t size, int flags)
{
	struct vol_attr a;
	size_t old_size;
	void *old;
	int err;

	if ((err = vol_attr_get(v, ino, &a)) ||
	    (err = eddy_xattr_check(c, a.mode & S_IFMT, name, true)) ||
	    (err = xattr_may(v, c, &a, name, true)))
		return err;
	old = vol_xattr_load(v, ino, name, &old_size, &err);
	free(old);
	if (err)
		return err;
	if ((flags & XATTR_CREATE) && old)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !old)
		return -ENODATA;
	if (strcmp(name, EDDY_ACL_ACCESS) == 0)
		err = set_access_acl(v, c, &a, value, size);
	else if (strcmp(name, EDDY_ACL_DEFAULT) == 0)
		err = set_default_acl(v, &a, value, size);
	else
		err = vol_xattr_store(v, ino, name, value, size);
	if (err)
		return err;
	a.ctime = vol_now();
	return vol_attr_put(v, &a);
}

int vol_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	struct vol_fs *v = vol_fs(fs);
	int err;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > EDDY_XATTR_SIZE_MAX)
		return -E2BIG;
	if (!(err = vol_tx_open(v)))
		err = vol_tx_close(v, setxattr_tx(v, c, ino, name, value, size, flags));
	return err;
}

ssize_t vol_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name,
		     void *value, size_t size)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	size_t have = 0;
	void *x = NULL;
	ssize_t r;
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, ino, &a);
	if (!err)
		err = eddy_xattr_check(c, a.mode & S_IFMT, name, false);
	if (!err)
		err = xattr_may(v, c, &a, name, false);
	if (!err)
		x = vol_xattr_load(v, ino, name, &have, &err);
	pthread_mutex_unlock(&v->db_lock);
	if (err)
		r = err;
	else if (!x)
		r = -ENODATA;
	else if (size == 0)
		r = (ssize_t)have;
	else if (size < have)
		r = -ERANGE;
	else {
		memcpy(value, x, have);
		r = (ssize_t)have;
	}
	free(x);
	return r;
}

ssize_t vol_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *list,
		      size_t size)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	sqlite3_stmt *s;
	size_t total = 0;
	ssize_t r = 0;
	int rc;

	pthread_mutex_lock(&v->db_lock);
	r = vol_attr_get(v, ino, &a);
	s = r ? NULL : vol_q(v, Q_XATTR_LIST);
	if (!r && !s)
		r = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			char name[EDDY_NAME_MAX + 1];
			int len = sqlite3_column_bytes(s, 0);

			if (len > EDDY_NAME_MAX)
				continue;
			memcpy(name, sqlite3_column_blob(s, 0), (size_t)len);
			name[len] = 0;
			if (!eddy_xattr_listed(c, name))
				continue;
			if (size && total + (size_t)len + 1 <= size)
				memcpy(list + total, name, (size_t)len + 1);
			total += (size_t)len + 1;
		}
		if (rc != SQLITE_DONE)
			r = vol_db_errno(rc);
		sqlite3_reset(s);
	}
	pthread_mutex_unlock(&v->db_lock);
	if (r < 0)
		return r;
	if (size && size < total)
		return -ERANGE;
	return (ssize_t)total;
}

static int removexattr_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t ino,
			  const char *name)
{
	struct vol_attr a;
	int err;

	if ((err = vol_attr_get(v, ino, &a)) ||
	    (err = eddy_xattr_check(c, a.mode & S_IFMT, name, true)) ||
	    (err = xattr_may(v, c, &a, name, true)) || (err = vol_xattr_remove(v, ino, name)))
		return err;
	a.ctime = vol_now();
	return vol_attr_put(v, &a);
}

int vol_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, const char *name)
{
	struct vol_fs *v = vol_fs(fs);
	int err;

	if (!(err = vol_tx_open(v)))
		err = vol_tx_close(v, removexattr_tx(v, c, ino, name));
	return err;
}
