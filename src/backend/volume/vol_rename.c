/*
** vol_rename.c -- rename in the volume backend: flags 0, RENAME_NOREPLACE
** and RENAME_EXCHANGE, in ONE transaction (atomic for other threads and
** across a crash: the old name or the new one, never neither or both).
**
** Checks first, then the change, with a local filesystem's errors:
**   - a missing source -ENOENT; EXCHANGE with a missing target -ENOENT;
**     NOREPLACE with an existing target -EEXIST;
**   - two names of one inode (or one name): nothing happens, success;
**   - a directory moved into itself or below itself -EINVAL (EXCHANGE:
**     either side), found by walking the parents of the destination;
**   - replacing: a directory only by a directory (-ENOTDIR), a
**     non-directory only by a non-directory (-EISDIR), and only an empty
**     directory (-ENOTEMPTY).
** A replaced inode loses a link and is deleted in the same transaction
** unless the mount still holds it (vol_inode_unlinked). Both parents get
** new mtime/ctime, moved inodes a new ctime; a directory that changes
** parent has its ".." and the parents' link counts fixed.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vol_int.h"

/* Does directory D lie at or below directory ANCESTOR? */
static int within(struct vol_fs *v, uint64_t d, uint64_t ancestor, bool *inside)
{
	struct vol_attr a;
	int err, depth = 0;

	*inside = false;
	while (depth++ < 100000) {
		if (d == ancestor) {
			*inside = true;
			return 0;
		}
		if (d == EDDY_ROOT_INO)
			return 0;
		if ((err = vol_attr_get(v, d, &a)))
			return err;
		d = a.parent;
	}
	return -ELOOP;
}

static bool empty_dir(struct vol_fs *v, uint64_t ino)
{
	sqlite3_stmt *s = vol_q(v, Q_DENTRY_ANY);
	bool any;

	sqlite3_bind_int64(s, 1, (int64_t)ino);
	any = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_reset(s);
	return !any;
}

static int check(struct vol_fs *v, uint64_t parent, const struct vol_attr *s, uint64_t newparent,
		 const struct vol_attr *t, unsigned int flags)
{
	bool inside;
	int err;

	if ((flags & RENAME_EXCHANGE) && !t)
		return -ENOENT;
	if ((flags & RENAME_NOREPLACE) && t)
		return -EEXIST;
	if (t && s->ino == t->ino)
		return 1;                   /* nothing to do */
	if (S_ISDIR(s->mode) && newparent != parent) {
		if ((err = within(v, newparent, s->ino, &inside)))
			return err;
		if (inside)
			return -EINVAL;
	}
	if ((flags & RENAME_EXCHANGE) && S_ISDIR(t->mode) && newparent != parent) {
		if ((err = within(v, parent, t->ino, &inside)))
			return err;
		if (inside)
			return -EINVAL;
	}
	if (!t || (flags & RENAME_EXCHANGE))
		return 0;
	if (S_ISDIR(s->mode) && !S_ISDIR(t->mode))
		return -ENOTDIR;
	if (!S_ISDIR(s->mode) && S_ISDIR(t->mode))
		return -EISDIR;
	if (S_ISDIR(t->mode) && !empty_dir(v, t->ino))
		return -ENOTEMPTY;
	return 0;
}

static int dentry_set(struct vol_fs *v, uint64_t parent, const char *name, uint64_t ino)
{
	sqlite3_stmt *s = vol_q(v, Q_DENTRY_SET);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)ino);
	return vol_exec(v, s);
}

/* Directory D moves from parent FROM to parent TO (link counts, ".."). */
static void move_dir(struct vol_attr *d, struct vol_attr *from, struct vol_attr *to)
{
	if (!S_ISDIR(d->mode) || from->ino == to->ino)
		return;
	from->nlink--;
	to->nlink++;
	d->parent = to->ino;
}

/* The kernel's may_delete / may_create of rename, and write access to a
** directory that changes parent (its ".." changes). */
static int rename_may(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *p,
		      const struct vol_attr *s, const struct vol_attr *np,
		      const struct vol_attr *t, unsigned int flags)
{
	int err = vol_may_delete(v, c, p, s);

	if (!err)
		err = t ? vol_may_delete(v, c, np, t) : vol_may(v, c, np, W_OK | X_OK);
	if (!err && p->ino != np->ino && S_ISDIR(s->mode))
		err = vol_may(v, c, s, W_OK);
	if (!err && p->ino != np->ino && t && (flags & RENAME_EXCHANGE) && S_ISDIR(t->mode))
		err = vol_may(v, c, t, W_OK);
	return err;
}

static int rename_tx(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent,
		     const char *name, uint64_t newparent, const char *newname, unsigned int flags)
{
	struct vol_attr p, np_row, *np = &np_row, s, t;
	uint64_t sino, tino = 0;
	bool have_t;
	int64_t now = vol_now();
	int err;

	if ((err = vol_dir_get(v, parent, &p)))
		return err;
	if (newparent == parent)
		np = &p;
	else if ((err = vol_dir_get(v, newparent, np)))
		return err;
	if ((err = vol_may(v, c, &p, X_OK)) || (np != &p && (err = vol_may(v, c, np, X_OK))))
		return err;
	if ((err = vol_dentry_get(v, parent, name, &sino)) || (err = vol_attr_get(v, sino, &s)))
		return err;
	err = vol_dentry_get(v, newparent, newname, &tino);
	if (err && err != -ENOENT)
		return err;
	have_t = !err;
	if (have_t && (err = vol_attr_get(v, tino, &t)))
		return err;
	if (!(flags & RENAME_EXCHANGE && !have_t) && !(flags & RENAME_NOREPLACE && have_t) &&
	    !(have_t && s.ino == t.ino) &&
	    (err = rename_may(v, c, &p, &s, np, have_t ? &t : NULL, flags)))
		return err;
	err = check(v, parent, &s, newparent, have_t ? &t : NULL, flags);
	if (err)
		return err < 0 ? err : 0;
	if (flags & RENAME_EXCHANGE) {
		if ((err = dentry_set(v, parent, name, t.ino)) ||
		    (err = dentry_set(v, newparent, newname, s.ino)))
			return err;
		move_dir(&s, &p, np);
		move_dir(&t, np, &p);
		s.ctime = t.ctime = now;
	} else {
		if (have_t) {
			if ((err = dentry_set(v, newparent, newname, s.ino)))
				return err;
			if (S_ISDIR(t.mode)) {
				t.nlink = 0;
				np->nlink--;
			} else {
				t.nlink--;
			}
			t.ctime = now;
		} else {
			/* a new entry: a new cookie in the new parent */
			sqlite3_stmt *q = vol_q(v, Q_DENTRY_ADD);

			sqlite3_bind_int64(q, 1, (int64_t)np->ino);
			sqlite3_bind_blob(q, 2, newname, (int)strlen(newname), SQLITE_STATIC);
			sqlite3_bind_int64(q, 3, (int64_t)s.ino);
			sqlite3_bind_int64(q, 4, (int64_t)np->next_cookie++);
			if ((err = vol_exec(v, q)))
				return err;
			np->size += VOL_DIRENT_SIZE;
		}
		{
			sqlite3_stmt *q = vol_q(v, Q_DENTRY_DEL);

			sqlite3_bind_int64(q, 1, (int64_t)parent);
			sqlite3_bind_blob(q, 2, name, (int)strlen(name), SQLITE_STATIC);
			if ((err = vol_exec(v, q)))
				return err;
			p.size -= VOL_DIRENT_SIZE;
		}
		move_dir(&s, &p, np);
		s.ctime = now;
	}
	p.mtime = p.ctime = np->mtime = np->ctime = now;
	if ((err = vol_attr_put(v, &p)) || (np != &p && (err = vol_attr_put(v, np))) ||
	    (err = vol_attr_put(v, &s)))
		return err;
	if (have_t && (err = vol_attr_put(v, &t)))
		return err;
	if (have_t && !(flags & RENAME_EXCHANGE))
		err = vol_inode_unlinked(v, &t, NULL);
	return err;
}

int vol_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned int flags)
{
	struct vol_fs *v = vol_fs(fs);
	int err;

	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	if ((err = eddy_check_name(name)) || (err = eddy_check_name(newname)))
		return err;
	if (!(err = vol_tx_open(v)))
		err = vol_tx_close(v, rename_tx(v, c, parent, name, newparent, newname, flags));
	return err;
}
