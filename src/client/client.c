/*
** client.c -- the volume client's path walk and access checks (client.h).
**
** Guarantees:
**   1. Every call goes through struct eddy_fs_ops, as the FUSE frontend's
**      do: the same transactions, change log rows and errors.
**   2. Every reference a lookup returns is given back (forget), on every
**      path, so the session holds nothing after a command.
**   3. Access is checked as the kernel does under default_permissions:
**      the owner by the mode bits; anyone else by the access ACL if the
**      inode has one (named users and groups, the mask), else the group
**      and other bits; root may read and write anything and search any
**      directory, and execute what has an x bit.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "../backend/volume/vol.h"

#define MAX_SYMLINKS 40
#define MAX_DEPTH 4096

int vclient_open(struct vclient *c, const char *dir, char *err, size_t errlen)
{
	struct vol_options o;
	int n;

	memset(c, 0, sizeof(*c));
	eddy_ctx_self(&c->ctx);
	n = getgroups(EDDY_MAX_GROUPS, c->ctx.groups);
	c->ctx.ngroups = n < 0 ? -1 : n;
	vol_options_default(&o);
	o.mountpoint = NULL;                 /* a client session */
	o.batch_ms = 0;                      /* every change commits before its answer */
	return vol_fs_open(dir, &o, &c->fs, err, errlen);
}

void vclient_close(struct vclient *c)
{
	if (c->fs)
		c->fs->ops->destroy(c->fs);
	c->fs = NULL;
}

void vclient_put(struct vclient *c, uint64_t ino)
{
	if (ino && ino != VC_ROOT)
		c->fs->ops->forget(c->fs, ino, 1);
}

static int getattr(struct vclient *c, uint64_t ino, struct stat *st)
{
	double t;

	return c->fs->ops->getattr(c->fs, &c->ctx, ino, NULL, st, &t);
}

/* The kernel's posix_acl_permission on an access ACL in its xattr form
** (a 4-byte version, then 8-byte entries: tag, perm, id, little-endian,
** sorted: owner, named users, owning group, named groups, mask, other). */
static int acl_check(const struct vclient *c, const struct stat *st, const unsigned char *a,
		     size_t size, unsigned mask)
{
	unsigned maskperm = 7, granted = 0;
	bool found = false, matched = false;

	for (size_t i = 4; i + 8 <= size; i += 8) {
		unsigned tag = a[i] | a[i + 1] << 8, perm = a[i + 2] | a[i + 3] << 8;
		uint32_t id = a[i + 4] | a[i + 5] << 8 | a[i + 6] << 16 | (uint32_t)a[i + 7] << 24;

		if (tag == 0x10)                     /* ACL_MASK */
			maskperm = perm;
		if (matched)
			continue;
		if (tag == 0x01 && st->st_uid == c->ctx.uid) {          /* ACL_USER_OBJ */
			return (mask & ~perm) & 7 ? -EACCES : 0;
		} else if (tag == 0x02 && id == c->ctx.uid) {            /* ACL_USER */
			matched = true;
			granted = perm;
		} else if ((tag == 0x04 && eddy_ctx_in_group(&c->ctx, st->st_gid)) ||
			   (tag == 0x08 && eddy_ctx_in_group(&c->ctx, id))) {
			found = true;                /* ACL_GROUP_OBJ, ACL_GROUP */
			if (!((mask & ~perm) & 7)) {
				matched = true;
				granted = perm;
			}
		} else if (tag == 0x20 && !found) {                     /* ACL_OTHER */
			return (mask & ~perm) & 7 ? -EACCES : 0;
		}
	}
	if (!matched)
		return -EACCES;
	return (mask & ~(granted & maskperm)) & 7 ? -EACCES : 0;
}

int vclient_access(const struct vclient *c, uint64_t ino, const struct stat *st, int mask)
{
	mode_t m = st->st_mode, bits;
	unsigned char acl[1024];
	ssize_t n;

	if (c->ctx.uid == 0) {
		if (!(mask & X_OK) || S_ISDIR(m) || (m & 0111))
			return 0;
		return -EACCES;
	}
	/* an access ACL decides for everyone but the owner (a file without
	 * one answers ENODATA; a minimal ACL says what the mode says) */
	if (st->st_uid != c->ctx.uid && !S_ISLNK(m) && c->fs->ops->getxattr &&
	    (n = c->fs->ops->getxattr(c->fs, &c->ctx, ino, "system.posix_acl_access", acl,
				      sizeof(acl))) > 4)
		return acl_check(c, st, acl, (size_t)n, (unsigned)mask);
	if (st->st_uid == c->ctx.uid)
		bits = (m >> 6) & 7;
	else if (eddy_ctx_in_group(&c->ctx, st->st_gid))
		bits = (m >> 3) & 7;
	else
		bits = m & 7;
	return ((unsigned)mask & ~bits) & 7 ? -EACCES : 0;
}

int vclient_may_delete(const struct vclient *c, uint64_t dir, const struct stat *dst,
		       const struct stat *st)
{
	int r = vclient_access(c, dir, dst, W_OK | X_OK);

	if (r)
		return r;
	if ((dst->st_mode & S_ISVTX) && c->ctx.uid != 0 && c->ctx.uid != st->st_uid &&
	    c->ctx.uid != dst->st_uid)
		return -EPERM;
	return 0;
}

int vclient_lookup(struct vclient *c, uint64_t dir, const char *name, uint64_t *ino,
		   struct stat *st)
{
	struct eddy_entry e;
	int r = c->fs->ops->lookup(c->fs, &c->ctx, dir, name, &e);

	if (r)
		return r;
	if (!e.ino)
		return -ENOENT;
	*ino = e.ino;
	if (st)
		*st = e.attr;
	return 0;
}

/* The walk: a stack of referenced directory inodes (the root at the
** bottom, unreferenced) and the rest of the path still to walk. */
struct walk {
	uint64_t *stack;
	size_t depth;
	char *rest;                /* malloc'ed, rewritten when a link is followed */
};

static void walk_free(struct vclient *c, struct walk *w, size_t keep)
{
	while (w->depth > keep)
		vclient_put(c, w->stack[--w->depth]);
}

/* Splices a symlink's TARGET in front of the unwalked REST. */
static int splice_link(struct walk *w, const char *target, const char *rest)
{
	size_t a = strlen(target), b = strlen(rest);
	char *p = malloc(a + b + 1);

	if (!p)
		return -ENOMEM;
	memcpy(p, target, a);          /* REST is empty or starts with '/' */
	memcpy(p + a, rest, b + 1);
	free(w->rest);
	w->rest = p;
	return 0;
}

int vclient_resolve(struct vclient *c, const char *path, bool follow, uint64_t *ino,
		    struct stat *st)
{
	struct walk w = { NULL, 0, NULL };
	int links = 0, r = 0;
	bool must_dir = false;     /* the last name had a '/' after it */
	char *p;

	if (path[0] != '/')
		return -EINVAL;          /* the commands say: paths are absolute */
	w.stack = malloc(MAX_DEPTH * sizeof(*w.stack));
	w.rest = strdup(path);
	if (!w.stack || !w.rest) {
		r = -ENOMEM;
		goto out;
	}
	w.stack[w.depth++] = VC_ROOT;
	p = w.rest;
	for (;;) {
		char comp[NAME_MAX + 1], *end;
		struct stat dst, cst;
		uint64_t child;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (len > NAME_MAX) {
			r = -ENAMETOOLONG;
			goto out;
		}
		memcpy(comp, p, len);
		comp[len] = 0;
		p = end;
		must_dir = *p == '/';
		if ((r = getattr(c, w.stack[w.depth - 1], &dst)))
			goto out;
		if (!S_ISDIR(dst.st_mode)) {
			r = -ENOTDIR;      /* "f/x", and "f/." as the kernel says */
			goto out;
		}
		if (!strcmp(comp, "."))
			continue;
		if ((r = vclient_access(c, w.stack[w.depth - 1], &dst, X_OK)))
			goto out;
		if (!strcmp(comp, "..")) {
			if (w.depth > 1)
				walk_free(c, &w, w.depth - 1);
			continue;
		}
		if ((r = vclient_lookup(c, w.stack[w.depth - 1], comp, &child, &cst)))
			goto out;
		if (S_ISLNK(cst.st_mode) && (*p || follow)) {
			char target[PATH_MAX];
			ssize_t n;

			n = c->fs->ops->readlink(c->fs, &c->ctx, child, target, sizeof(target) - 1);
			vclient_put(c, child);
			if (n < 0) {
				r = (int)n;
				goto out;
			}
			target[n] = 0;
			if (n == 0) {
				r = -ENOENT;       /* an empty target, as the kernel says */
				goto out;
			}
			if (++links > MAX_SYMLINKS) {
				r = -ELOOP;
				goto out;
			}
			if (target[0] == '/')
				walk_free(c, &w, 1);
			if ((r = splice_link(&w, target, p)))
				goto out;
			p = w.rest;
			continue;
		}
		if (w.depth == MAX_DEPTH) {
			vclient_put(c, child);
			r = -ENAMETOOLONG;
			goto out;
		}
		w.stack[w.depth++] = child;
	}
	r = getattr(c, w.stack[w.depth - 1], st);
	if (r == 0 && must_dir && !S_ISDIR(st->st_mode))
		r = -ENOTDIR;              /* "f/": a trailing slash wants a directory */
	if (r == 0) {
		/* hand the last reference over */
		*ino = w.stack[w.depth - 1];
		if (w.depth > 1)
			w.depth--;
	}
out:
	walk_free(c, &w, 0);
	free(w.stack);
	free(w.rest);
	return r;
}

int vclient_parent(struct vclient *c, const char *path, bool write, uint64_t *dir,
		   char name[NAME_MAX + 1])
{
	size_t len = strlen(path);
	char *copy, *slash;
	struct stat st;
	int r;

	if (path[0] != '/')
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = 0;
	slash = strrchr(copy, '/');
	if (!slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, "..")) {
		free(copy);
		return -EBUSY;           /* the root, or a name that is not one */
	}
	if (strlen(slash + 1) > NAME_MAX) {
		free(copy);
		return -ENAMETOOLONG;
	}
	strcpy(name, slash + 1);
	if (slash == copy)
		slash[1] = 0;
	else
		*slash = 0;
	r = vclient_resolve(c, copy, true, dir, &st);
	free(copy);
	if (r)
		return r;
	if (!S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	else if (write)
		r = vclient_access(c, *dir, &st, W_OK | X_OK);
	if (r)
		vclient_put(c, *dir);
	return r;
}

struct names {
	char **v;
	size_t n, cap;
	int err;
};

static int collect(void *buf, const char *name, const struct stat *st,
		   const struct eddy_entry *entry, uint64_t next)
{
	struct names *a = buf;

	(void)st;
	(void)entry;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (a->n == a->cap) {
		char **p = realloc(a->v, (a->cap = a->cap * 2 + 64) * sizeof(*p));

		if (!p) {
			a->err = -ENOMEM;
			return 1;
		}
		a->v = p;
	}
	if (!(a->v[a->n] = strdup(name))) {
		a->err = -ENOMEM;
		return 1;
	}
	a->n++;
	return 0;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

int vclient_list(struct vclient *c, uint64_t ino, const struct stat *st, char ***names,
		 size_t *n)
{
	struct names a = { NULL, 0, 0, 0 };
	struct eddy_file *d = NULL;
	struct eddy_open how;
	int r;

	if (!S_ISDIR(st->st_mode))
		return -ENOTDIR;
	if ((r = vclient_access(c, ino, st, R_OK)))
		return r;
	memset(&how, 0, sizeof(how));
	if (c->fs->ops->opendir && (r = c->fs->ops->opendir(c->fs, &c->ctx, ino, &d, &how)))
		return r;
	/* one call lists until the end (fill never asks to stop but on ENOMEM) */
	r = c->fs->ops->readdir(c->fs, &c->ctx, d, 0, false, collect, &a);
	if (c->fs->ops->releasedir && d)
		c->fs->ops->releasedir(c->fs, d);
	if (!r)
		r = a.err;
	if (r) {
		vclient_list_free(a.v, a.n);
		return r;
	}
	if (a.n)
		qsort(a.v, a.n, sizeof(*a.v), cmp_names);
	*names = a.v;
	*n = a.n;
	return 0;
}

void vclient_list_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
