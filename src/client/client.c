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
#include "../util/access.h"

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

int vclient_access(const struct vclient *c, uint64_t ino, const struct stat *st, int mask)
{
	struct eddy_perm p = { st->st_mode, st->st_uid, st->st_gid, NULL, 0 };
	unsigned char acl[1024];
	ssize_t n;

	/* a file without an access ACL answers ENODATA */
	if (eddy_access_needs_acl(&c->ctx, &p) && c->fs->ops->getxattr &&
	    (n = c->fs->ops->getxattr(c->fs, &c->ctx, ino, "system.posix_acl_access", acl,
				      sizeof(acl))) > 4) {
		p.acl = acl;
		p.acl_size = (size_t)n;
	}
	return eddy_access_check(&c->ctx, &p, mask);
}

int vclient_may_delete(const struct vclient *c, uint64_t dir, const struct stat *dst,
		       const struct stat *st)
{
	int r = vclient_access(c, dir, dst, W_OK | X_OK);

	if (r)
		return r;
	struct eddy_perm d = { dst->st_mode, dst->st_uid, dst->st_gid, NULL, 0 };

	return eddy_sticky_check(&c->ctx, &d, st->st_uid);
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
