/*
** vol_perm.c -- access checks of a volume that checks them itself
** (vol_options.check_access: mounted without default_permissions, so the
** kernel leaves them to us). The rules are access.h's; this file only
** finds what they need: the inode row and, for a caller other than root
** and the owner, the stored access ACL. With check_access off (the kernel
** checks, or the volume client does) every check passes.
** Called inside the operation's transaction, under db_lock.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vol_int.h"

int vol_may(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a, int mask)
{
	struct eddy_perm p = { a->mode, a->uid, a->gid, NULL, 0 };
	void *acl = NULL;
	int err = 0;

	if (!v->opt.check_access)
		return 0;
	if (eddy_access_needs_acl(c, &p)) {
		acl = vol_xattr_load(v, a->ino, EDDY_ACL_ACCESS, &p.acl_size, &err);
		if (err)
			return err;
		p.acl = acl;
	}
	err = eddy_access_check(c, &p, mask);
	free(acl);
	return err;
}

int vol_may_delete(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *dir,
		   const struct vol_attr *victim)
{
	struct eddy_perm d = { dir->mode, dir->uid, dir->gid, NULL, 0 };
	int err = vol_may(v, c, dir, W_OK | X_OK);

	if (err || !v->opt.check_access)
		return err;
	return eddy_sticky_check(c, &d, victim->uid);
}

int vol_may_setattr(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a,
		    const struct stat *want, int mask, bool file_open)
{
	struct eddy_perm p = { a->mode, a->uid, a->gid, NULL, 0 };
	int write_ok = 0;

	if (!v->opt.check_access || c->uid == 0)
		return 0;
	/* write access matters for a size change and for "now" times */
	if (((mask & EDDY_SET_SIZE) && !file_open) ||
	    ((mask & (EDDY_SET_ATIME_NOW | EDDY_SET_MTIME_NOW | EDDY_SET_MODE)) &&
	     c->uid != a->uid))
		write_ok = vol_may(v, c, a, W_OK);
	if (write_ok && write_ok != -EACCES)
		return write_ok;
	return eddy_setattr_check(c, &p, want, mask, file_open, write_ok);
}

/* fs.protected_hardlinks (the kernel's may_linkat, which without
** default_permissions takes every file for a safe source): a caller who
** neither owns A nor is root may link only a regular file without setuid
** (or setgid with group execute) that it may read and write. */
int vol_may_link(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a)
{
	if (!v->opt.check_access || !v->protected_hardlinks || c->uid == 0 || c->uid == a->uid)
		return 0;
	if (!S_ISREG(a->mode) || (a->mode & S_ISUID) ||
	    ((a->mode & S_ISGID) && (a->mode & S_IXGRP)) || vol_may(v, c, a, R_OK | W_OK))
		return -EPERM;
	return 0;
}

bool vol_protected_hardlinks(void)
{
	char b[8] = "";
	FILE *f = fopen("/proc/sys/fs/protected_hardlinks", "re");

	if (!f)
		return true;               /* the distributions' default */
	if (!fgets(b, sizeof(b), f))
		b[0] = '1';
	fclose(f);
	return b[0] != '0';
}

int vol_access(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int mask)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, ino, &a);
	if (!err && mask != F_OK)
		err = vol_may(v, c, &a, mask);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}
