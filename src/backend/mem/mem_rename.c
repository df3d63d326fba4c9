/*
** mem_rename.c -- rename in the mem backend: flags 0, RENAME_NOREPLACE
** and RENAME_EXCHANGE, with a local filesystem's errors.
**
** Under the exclusive ns_lock, all checks first, then the change:
**   - a missing source -ENOENT; EXCHANGE with a missing target -ENOENT;
**     NOREPLACE with an existing target -EEXIST;
**   - two names of one inode (or one name): nothing happens, success;
**   - a directory moved into itself or below itself -EINVAL (EXCHANGE:
**     either side);
**   - replacing: a directory only by a directory (-ENOTDIR), a
**     non-directory only by a non-directory (-EISDIR), and only an empty
**     directory (-ENOTEMPTY).
** A replaced target keeps its directory entry (and so its place in the
** listing) and gets the source inode; the old inode loses a link and is
** freed if nothing else holds it. EXCHANGE swaps the inodes of the two
** entries. Both parents get new mtime/ctime, the moved inodes a new ctime;
** a directory that changes parent has its ".." and the link counts fixed.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mem_int.h"

/* True if directory D is ANCESTOR or lies below it. */
static bool within(struct mem_fs *m, struct mem_inode *d, struct mem_inode *ancestor)
{
	while (d) {
		if (d == ancestor)
			return true;
		if (d->ino == EDDY_ROOT_INO)
			return false;
		d = mem_inode_find(m, d->u.dir.parent);
	}
	return false;
}

/* Directory IN moves from parent FROM to parent TO. */
static void move_dir(struct mem_inode *in, struct mem_inode *from, struct mem_inode *to)
{
	if (in->type != S_IFDIR || from == to)
		return;
	from->nlink--;
	to->nlink++;
	in->u.dir.parent = to->ino;
}

static int check(struct mem_fs *m, struct mem_inode *p, struct mem_dirent *src,
		 struct mem_inode *np, struct mem_dirent *dst, unsigned int flags)
{
	struct mem_inode *s = src->inode, *t = dst ? dst->inode : NULL;

	if ((flags & RENAME_EXCHANGE) && !t)
		return -ENOENT;
	if ((flags & RENAME_NOREPLACE) && t)
		return -EEXIST;
	if (s == t)
		return 1;                   /* nothing to do */
	if (s->type == S_IFDIR && within(m, np, s))
		return -EINVAL;
	if ((flags & RENAME_EXCHANGE) && t->type == S_IFDIR && within(m, p, t))
		return -EINVAL;
	if (!t || (flags & RENAME_EXCHANGE))
		return 0;
	if (s->type == S_IFDIR && t->type != S_IFDIR)
		return -ENOTDIR;
	if (s->type != S_IFDIR && t->type == S_IFDIR)
		return -EISDIR;
	if (t->type == S_IFDIR && t->u.dir.count > 0)
		return -ENOTEMPTY;
	return 0;
}

static void exchange(struct mem_inode *p, struct mem_dirent *src, struct mem_inode *np,
		     struct mem_dirent *dst)
{
	struct mem_inode *s = src->inode, *t = dst->inode;

	src->inode = t;
	dst->inode = s;
	move_dir(s, p, np);
	move_dir(t, np, p);
	mem_touch(s, MEM_CTIME);
	mem_touch(t, MEM_CTIME);
}

/* Moves SRC to NEWNAME in NP, replacing DST if there is one. */
static int move(struct mem_fs *m, struct mem_inode *p, struct mem_dirent *src,
		struct mem_inode *np, struct mem_dirent *dst, const char *newname)
{
	struct mem_inode *s = src->inode, *victim = NULL;
	int err;

	if (dst) {
		victim = dst->inode;
		dst->inode = s;
	} else if ((err = mem_dir_add(&np->u.dir, newname, s)) < 0) {
		return err;
	}
	mem_dir_remove(&p->u.dir, src);
	move_dir(s, p, np);
	mem_touch(s, MEM_CTIME);
	if (victim) {
		if (victim->type == S_IFDIR) {
			victim->nlink = 0;
			np->nlink--;
		} else {
			victim->nlink--;
		}
		mem_touch(victim, MEM_CTIME);
		if (mem_inode_unused(victim))
			mem_inode_free(m, victim);
	}
	return 0;
}

int mem_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned int flags)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_dirent *src = NULL, *dst = NULL;
	struct mem_inode *p, *np = NULL;
	int err;

	(void)c;
	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	if ((err = mem_check_name(name)) || (err = mem_check_name(newname)))
		return err;
	pthread_rwlock_wrlock(&m->ns_lock);
	p = mem_dir_of(m, parent, &err);
	if (p)
		np = mem_dir_of(m, newparent, &err);
	if (np && !(src = mem_dir_find(&p->u.dir, name)))
		err = -ENOENT;
	if (src) {
		dst = mem_dir_find(&np->u.dir, newname);
		err = check(m, p, src, np, dst, flags);
	}
	if (err == 0) {
		if (flags & RENAME_EXCHANGE)
			exchange(p, src, np, dst);
		else
			err = move(m, p, src, np, dst, newname);
	}
	if (err == 0) {
		mem_touch(p, MEM_MTIME | MEM_CTIME);
		if (np != p)
			mem_touch(np, MEM_MTIME | MEM_CTIME);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	return err < 0 ? err : 0;
}
