/*
** vol_ns.c -- the volume backend's namespace operations: lookup, forget,
** the create family (mknod, mkdir, symlink), link, unlink, rmdir,
** readlink. (rename is vol_rename.c; create, which also opens, is
** vol_file.c.)
**
** Each change is ONE SQLite transaction under db_lock, from the first
** check to the last update: all or nothing, for other threads and across
** a crash. Times and link counts as a local filesystem keeps them: a new
** or removed entry updates the directory's mtime and ctime; link and
** unlink the inode's ctime; directories count 2 + subdirectories; a
** removed directory has nlink 0 and refuses new entries (-ENOENT).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vol_int.h"

int vol_dentry_get(struct vol_fs *v, uint64_t parent, const char *name, uint64_t *ino)
{
	sqlite3_stmt *s = vol_q(v, Q_DENTRY_GET);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(s);
	*ino = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : vol_db_errno(rc);
}

int vol_dir_get(struct vol_fs *v, uint64_t ino, struct vol_attr *a)
{
	int err = vol_attr_get(v, ino, a);

	if (err)
		return err;
	if (!S_ISDIR(a->mode))
		return -ENOTDIR;
	return a->nlink == 0 ? -ENOENT : 0;
}

int vol_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       struct eddy_entry *out)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr p, a;
	uint64_t ino;
	bool dir_ok;
	int err = eddy_check_name(name);

	if (err)
		return err;
	pthread_mutex_lock(&v->db_lock);
	err = vol_dir_get(v, parent, &p);
	dir_ok = !err;
	if (!err)
		err = vol_may(v, c, &p, X_OK);
	if (!err)
		err = vol_dentry_get(v, parent, name, &ino);
	if (!err)
		err = vol_attr_get(v, ino, &a);
	if (!err)
		err = vol_fill_entry(v, &a, out);
	pthread_mutex_unlock(&v->db_lock);
	if (err == -ENOENT && dir_ok && v->opt.negative_timeout > 0) {
		memset(out, 0, sizeof(*out));
		out->entry_timeout = v->opt.negative_timeout;
		err = 0;
	}
	return err;
}

void vol_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup)
{
	vol_inode_unref(vol_fs(fs), ino, nlookup, false);
}

/* Adds NAME -> INO to directory P (in the open transaction). */
static int dentry_add(struct vol_fs *v, struct vol_attr *p, const char *name, uint64_t ino)
{
	sqlite3_stmt *s = vol_q(v, Q_DENTRY_ADD);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)p->ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)ino);
	sqlite3_bind_int64(s, 4, (int64_t)p->next_cookie++);
	p->size += VOL_DIRENT_SIZE;
	return vol_exec(v, s);
}

static int dentry_del(struct vol_fs *v, uint64_t parent, const char *name)
{
	sqlite3_stmt *s = vol_q(v, Q_DENTRY_DEL);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	return vol_exec(v, s);
}

/* The mode, group and ACLs of a new object (vol_make). */
static int new_inode(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *p,
		     mode_t mode, dev_t rdev, uint64_t size, struct vol_attr *a)
{
	mode_t type = mode & S_IFMT, perm;
	size_t dsize = 0;
	void *dflt = NULL, *access = NULL;
	sqlite3_stmt *s;
	int inherit, err = 0;
	gid_t gid;
	int64_t now = vol_now();

	if (v->max_inodes && (uint64_t)(v->ninodes + v->tx_inodes) >= v->max_inodes)
		return -ENOSPC;
	if (type != S_IFLNK)
		dflt = vol_xattr_load(v, p->ino, EDDY_ACL_DEFAULT, &dsize, &err);
	if (err)
		return err;
	if (dflt && (access = malloc(dsize ? dsize : 1)))
		memcpy(access, dflt, dsize);
	inherit = eddy_new_object_mode(c, type, mode & 07777, p->mode, p->gid, access, dsize,
				       &perm, &gid);
	s = vol_q(v, Q_INODE_NEW);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, type | perm);
	sqlite3_bind_int64(s, 2, c->uid);
	sqlite3_bind_int64(s, 3, gid);
	sqlite3_bind_int64(s, 4, type == S_IFDIR ? 2 : 1);
	sqlite3_bind_int64(s, 5, type == S_IFCHR || type == S_IFBLK ? (int64_t)rdev : 0);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, type == S_IFDIR ? (int64_t)p->ino : 0);
	sqlite3_bind_int64(s, 8, type == S_IFDIR ? 2 * VOL_DIRENT_SIZE : (int64_t)size);
	if ((err = vol_exec(v, s)) < 0)
		goto out;
	v->tx_inodes++;
	memset(a, 0, sizeof(*a));
	a->ino = (uint64_t)sqlite3_last_insert_rowid(v->db);
	if (a->ino >= EDDY_LAYER_INO_BASE) {
		err = -ENOSPC;
		goto out;
	}
	if (inherit == 1)
		err = vol_xattr_store(v, a->ino, EDDY_ACL_ACCESS, access, dsize);
	if (!err && type == S_IFDIR && dflt)
		err = vol_xattr_store(v, a->ino, EDDY_ACL_DEFAULT, dflt, dsize);
	if (!err)
		err = vol_attr_get(v, a->ino, a);
out:
	free(access);
	free(dflt);
	return err;
}

int vol_make(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent, const char *name,
	     mode_t mode, dev_t rdev, const char *target, struct vol_attr *out)
{
	size_t len = target ? strlen(target) : 0;
	struct vol_attr p;
	uint64_t ino;
	int err;

	if ((err = vol_dir_get(v, parent, &p)) || (err = vol_may(v, c, &p, X_OK)))
		return err;
	err = vol_dentry_get(v, parent, name, &ino);
	if (err != -ENOENT)
		return err ? err : -EEXIST;
	if ((err = vol_may(v, c, &p, W_OK | X_OK)))
		return err;
	if (len > VOL_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if (target && (err = vol_space_check(v, (int64_t)len)))
		return err;
	if ((err = new_inode(v, c, &p, mode, rdev, len, out)))
		return err;
	if (target) {
		sqlite3_stmt *s = vol_q(v, Q_SYMLINK_ADD);

		sqlite3_bind_int64(s, 1, (int64_t)out->ino);
		sqlite3_bind_blob(s, 2, target, (int)len, SQLITE_STATIC);
		if ((err = vol_exec(v, s)))
			return err;
		v->tx_used += (int64_t)len;
	}
	if ((err = dentry_add(v, &p, name, out->ino)))
		return err;
	if (S_ISDIR(mode))
		p.nlink++;
	p.mtime = p.ctime = out->ctime;
	return vol_attr_put(v, &p);
}

/* The create family without open: make PARENT/NAME and reference it. */
static int make_entry(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent,
		      const char *name, mode_t mode, dev_t rdev, const char *target,
		      struct eddy_entry *out)
{
	struct vol_attr a;
	int err = eddy_check_name(name);

	if (err)
		return err;
	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (!err)
		err = vol_tx_end(v, vol_make(v, c, parent, name, mode, rdev, target, &a));
	if (!err)
		err = vol_fill_entry(v, &a, out);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

int vol_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	int type = eddy_mknod_type(mode);

	if (type < 0)
		return type;
	return make_entry(vol_fs(fs), c, parent, name, (mode_t)type | (mode & 07777), rdev, NULL,
			  out);
}

int vol_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, struct eddy_entry *out)
{
	return make_entry(vol_fs(fs), c, parent, name, S_IFDIR | (mode & 01777), 0, NULL, out);
}

int vol_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		uint64_t parent, const char *name, struct eddy_entry *out)
{
	if (!*target)
		return -ENOENT;
	return make_entry(vol_fs(fs), c, parent, name, S_IFLNK | 0777, 0, target, out);
}

static int link_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t ino,
		   uint64_t newparent, const char *newname, struct vol_attr *a)
{
	struct vol_attr p;
	uint64_t other;
	int err = vol_attr_get(v, ino, a);

	if (err)
		return err;
	if ((err = vol_dir_get(v, newparent, &p)) || (err = vol_may(v, c, &p, X_OK)))
		return err;
	if (S_ISDIR(a->mode))
		return -EPERM;
	if ((err = vol_may_link(v, c, a)))
		return err;
	err = vol_dentry_get(v, newparent, newname, &other);
	if (err != -ENOENT)
		return err ? err : -EEXIST;
	if ((err = vol_may(v, c, &p, W_OK | X_OK)))
		return err;
	if (a->nlink == 0)
		return -ENOENT;
	if (a->nlink >= VOL_LINK_MAX)
		return -EMLINK;
	if ((err = dentry_add(v, &p, newname, ino)))
		return err;
	a->nlink++;
	a->ctime = p.mtime = p.ctime = vol_now();
	if ((err = vol_attr_put(v, &p)))
		return err;
	return vol_attr_put(v, a);
}

int vol_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, uint64_t newparent,
	     const char *newname, struct eddy_entry *out)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	int err = eddy_check_name(newname);

	if (err)
		return err;
	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (!err)
		err = vol_tx_end(v, link_tx(v, c, ino, newparent, newname, &a));
	if (!err)
		err = vol_fill_entry(v, &a, out);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

/* unlink (DIR false) or rmdir (DIR true) of PARENT/NAME, in a transaction. */
static int remove_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent,
		     const char *name, bool dir)
{
	struct vol_attr p, a;
	uint64_t ino, any;
	bool gone;
	int err;

	if ((err = vol_dir_get(v, parent, &p)) || (err = vol_may(v, c, &p, X_OK)) ||
	    (err = vol_dentry_get(v, parent, name, &ino)) || (err = vol_attr_get(v, ino, &a)) ||
	    (err = vol_may_delete(v, c, &p, &a)))
		return err;
	if (!dir && S_ISDIR(a.mode))
		return -EISDIR;
	if (dir && !S_ISDIR(a.mode))
		return -ENOTDIR;
	if (dir) {
		sqlite3_stmt *s = vol_q(v, Q_DENTRY_ANY);

		sqlite3_bind_int64(s, 1, (int64_t)ino);
		any = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_reset(s);
		if (any)
			return -ENOTEMPTY;
	}
	if ((err = dentry_del(v, parent, name)))
		return err;
	p.size -= VOL_DIRENT_SIZE;
	if (dir) {
		a.nlink = 0;
		p.nlink--;
	} else {
		a.nlink--;
	}
	a.ctime = p.mtime = p.ctime = vol_now();
	if ((err = vol_attr_put(v, &p)) || (err = vol_inode_unlinked(v, &a, &gone)))
		return err;
	return gone ? 0 : vol_attr_put(v, &a);   /* a deleted row needs no update */
}

static int remove_entry(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent,
			const char *name, bool dir)
{
	int err = eddy_check_name(name);

	if (err)
		return err;
	if (!(err = vol_tx_open(v)))
		err = vol_tx_close(v, remove_tx(v, c, parent, name, dir));
	return err;
}

int vol_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	return remove_entry(vol_fs(fs), c, parent, name, false);
}

int vol_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	return remove_entry(vol_fs(fs), c, parent, name, true);
}

ssize_t vol_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *buf,
		     size_t size)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	sqlite3_stmt *s;
	ssize_t n;

	(void)c;
	pthread_mutex_lock(&v->db_lock);
	n = vol_attr_get(v, ino, &a);
	if (!n && !S_ISLNK(a.mode))
		n = -EINVAL;
	if (!n && (s = vol_q(v, Q_SYMLINK_GET))) {
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		if (sqlite3_step(s) == SQLITE_ROW) {
			size_t len = (size_t)sqlite3_column_bytes(s, 0);

			n = (ssize_t)(len < size ? len : size);
			memcpy(buf, sqlite3_column_blob(s, 0), (size_t)n);
		} else {
			n = -EIO;
		}
		sqlite3_reset(s);
	}
	pthread_mutex_unlock(&v->db_lock);
	return n;
}
