/*
** chaos.c -- the chaos layer: one client (one mount process) sees the
** shared truth the way a ChaosFS-style network client would, on purpose,
** per client and reproducibly (reference/nfs-semantics.md). This file holds
** the layer's life, the knobs, runtime control, the namespace and xattr
** operations and the ops table; chaos_cache.c the client's caches,
** chaos_data.c its unpublished data, chaos_decide.c drops, the random
** source and the decision log.
**
** Guarantees:
**   1. Read-your-writes: this client sees its own changes at once.
**   2. Another client sees this client's data writes and truncates only
**      once they are published, write-delay after they were made (or at
**      fsync), in this client's order.
**   3. This client serves attributes, names, absences and listings from its
**      own cache for meta-ttl after it fetched them, whatever others did
**      meanwhile; the kernel caches nothing (timeouts 0, direct I/O), so
**      there is no other staleness.
**   4. With drop-prob P every droppable operation fails with drop-errno
**      (EIO) with probability P, decided by this client's seeded random
**      source; lookup, forget, release, releasedir, unlocks and the rest of
**      a listing are never dropped (nothing leaks), nor getattr (the kernel
**      sends it on its own schedule: only a targeted rule fails it). A
**      dropped flush makes close() fail after the file was closed for
**      real, as on NFS.
**   5. State is keyed by inode number, never by path.
**   6. Locks go through to the inner filesystem: they conflict across
**      clients and with plain processes. Taking or releasing one publishes
**      this client's pending changes and refetches the file's attributes
**      (locks are coherency points, as on NFS).
**   7. Namespace and attribute changes (create, mkdir, mknod, symlink,
**      link, unlink, rmdir, rename, chmod, chown, utimens) reach the others
**      rename-delay after this client made them, in its order with its
**      data changes (chaos_ns.c).
*/
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "chaos_int.h"

double chaos_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct eddy_file *inner_file(struct eddy_file *f)
{
	return f ? ((struct cfile *)f)->inner : NULL;
}

/****************************** knobs ******************************/

void chaos_knobs_default(struct chaos_knobs *k)
{
	k->meta_ttl_ms = 1500;
	k->write_delay_ms = 800;
	k->rename_delay_ms = 1200;
	k->drop_prob = 0.0;
	k->drop_errno = EIO;
}

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "ESTALE", ESTALE },
	{ "ETIMEDOUT", ETIMEDOUT }, { "EACCES", EACCES }, { "EPERM", EPERM },
	{ "ENOENT", ENOENT }, { "EAGAIN", EAGAIN }, { "EINTR", EINTR }, { "EROFS", EROFS },
	{ "EBUSY", EBUSY }, { "ENOMEM", ENOMEM }, { "EFBIG", EFBIG }, { "ENOTCONN", ENOTCONN },
};

int chaos_errno_parse(const char *s)
{
	char *end;
	long v;
	size_t i;

	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strcasecmp(s, errnos[i].name) == 0)
			return errnos[i].value;
	v = strtol(s, &end, 10);
	if (*s && !*end && v > 0 && v < 4096)
		return (int)v;
	return -1;
}

static const char *errno_name(int e)
{
	size_t i;

	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].value == e)
			return errnos[i].name;
	return "errno";
}

static int parse_ms_knob(const char *key, const char *value, long *out, char *err,
			 size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (!*value || *end || errno || v < 0 || v > 86400000L) {
		snprintf(err, errlen, "%s=%s: want milliseconds, 0-86400000", key, value);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int chaos_knob_set(struct chaos_knobs *k, const char *key, const char *value, char *err,
		   size_t errlen)
{
	if (strcmp(key, "meta-ttl") == 0)
		return parse_ms_knob(key, value, &k->meta_ttl_ms, err, errlen);
	if (strcmp(key, "write-delay") == 0)
		return parse_ms_knob(key, value, &k->write_delay_ms, err, errlen);
	if (strcmp(key, "rename-delay") == 0)
		return parse_ms_knob(key, value, &k->rename_delay_ms, err, errlen);
	if (strcmp(key, "drop-prob") == 0) {
		char *end;
		double p;

		errno = 0;
		p = strtod(value, &end);
		if (!*value || *end || errno || !isfinite(p) || p < 0 || p > 1) {
			snprintf(err, errlen, "%s=%s: want a probability, 0-1", key, value);
			return -EINVAL;
		}
		k->drop_prob = p;
		return 0;
	}
	if (strcmp(key, "drop-errno") == 0) {
		int e = chaos_errno_parse(value);

		if (e < 0) {
			snprintf(err, errlen, "%s=%s: want an errno name (EIO, ENOSPC, ...) "
				 "or number", key, value);
			return -EINVAL;
		}
		k->drop_errno = e;
		return 0;
	}
	snprintf(err, errlen, "unknown knob %s (meta-ttl, write-delay, rename-delay, "
		 "drop-prob, drop-errno)", key);
	return -EINVAL;
}

/****************************** namespace ******************************/

static int c_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file *f, const struct stat *in, int mask, struct stat *st,
		     double *attr_timeout)
{
	struct cfs *s = cfs_of(fs);
	int r;

	if ((r = chaos_drop(s, "setattr", ino)) < 0)
		return r;
	if ((mask & EDDY_SET_SIZE) && s->nfs.on) {
		/* NFS sends a truncate to the server at once, after what this
		 * client wrote before it */
		chaos_publish_through(s, ino);
	} else if ((mask & EDDY_SET_SIZE) && k_wdelay(s) > 0) {
		struct stat cur;
		double t;

		r = s->inner->ops->getattr(s->inner, c, ino, inner_file(f), &cur, &t);
		if (r < 0)
			return r;
		if (!S_ISREG(cur.st_mode))
			return S_ISDIR(cur.st_mode) ? -EISDIR : -EINVAL;
		r = c_truncate_delayed(s, c, ino, (struct cfile *)f, in->st_size);
		if (r < 0)
			return r;
		mask &= ~EDDY_SET_SIZE;
		if (!mask) {
			*st = cur;
			chaos_view_attr(s, ino, st);
			*attr_timeout = 0;
			return 0;
		}
	}
	if (k_rdelay(s) > 0) {
		double t;

		r = s->inner->ops->getattr(s->inner, c, ino, inner_file(f), st, &t);
		if (r == 0)
			r = chaos_ns_setattr(s, c, ino, in, mask);
		if (r < 0)
			return r;
		chaos_view_attr(s, ino, st);
		*attr_timeout = 0;
		return 0;
	}
	r = s->inner->ops->setattr(s->inner, c, ino, inner_file(f), in, mask, st, attr_timeout);
	if (r < 0)
		return r;
	chaos_attr_store(s, ino, st);
	chaos_view_attr(s, ino, st);
	*attr_timeout = 0;
	return 0;
}

/* After a create-family call: the new name is this client's truth now. */
static int took_new(struct cfs *s, int r, uint64_t parent, const char *name,
		    struct eddy_entry *out)
{
	if (r < 0)
		return r;
	chaos_own_change(s, parent, NULL, 0);
	chaos_took_entry(s, parent, name, out, true);
	return 0;
}

static int c_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop_named(s, "mknod", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0)
		return chaos_ns_create(s, c, (int)(mode & S_IFMT), parent, name, mode, rdev, NULL,
				       0, out, NULL, NULL);
	r = s->inner->ops->mknod(s->inner, c, parent, name, mode, rdev, out);
	return took_new(s, r, parent, name, out);
}

static int c_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, struct eddy_entry *out)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop_named(s, "mkdir", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0)
		return chaos_ns_create(s, c, S_IFDIR, parent, name, mode, 0, NULL, 0, out, NULL,
				       NULL);
	r = s->inner->ops->mkdir(s->inner, c, parent, name, mode, out);
	return took_new(s, r, parent, name, out);
}

static int c_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		     uint64_t parent, const char *name, struct eddy_entry *out)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop_named(s, "symlink", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0)
		return chaos_ns_create(s, c, S_IFLNK, parent, name, 0, 0, target, 0, out, NULL,
				       NULL);
	r = s->inner->ops->symlink(s->inner, c, target, parent, name, out);
	return took_new(s, r, parent, name, out);
}

static int c_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		  uint64_t newparent, const char *newname, struct eddy_entry *out)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop_named(s, "link", newparent, newname);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0)
		return chaos_ns_link(s, c, ino, newparent, newname, out);
	r = s->inner->ops->link(s->inner, c, ino, newparent, newname, out);
	return took_new(s, r, newparent, newname, out);
}

static int c_remove(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, bool dir)
{
	struct cfs *s = cfs_of(fs);
	uint64_t child;
	int r = chaos_drop_named(s, dir ? "rmdir" : "unlink", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0)
		return chaos_ns_remove(s, c, parent, name, dir);
	child = chaos_peek_child(s, c, parent, name);
	if (!dir && (r = chaos_nfs_silly(s, c, parent, name, child)) != 0)
		return r < 0 ? r : 0;
	r = dir ? s->inner->ops->rmdir(s->inner, c, parent, name)
		: s->inner->ops->unlink(s->inner, c, parent, name);
	if (r < 0)
		return r;
	chaos_own_change(s, parent, name, 0);
	if (child)
		chaos_attr_drop(s, child);
	return 0;
}

static int c_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name)
{
	return c_remove(fs, c, parent, name, false);
}

static int c_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name)
{
	return c_remove(fs, c, parent, name, true);
}

/* After a delayed rename: the moved inodes' names, for path globs. */
static void renamed_nodes(struct cfs *s, const struct eddy_ctx *c, uint64_t parent,
			  const char *name, uint64_t newparent, const char *newname,
			  unsigned flags)
{
	uint64_t ino;
	mode_t type;

	if (chaos_view_name(s, newparent, newname, &ino, &type) > 0)
		chaos_name_node(s, ino, newparent, newname);
	if ((flags & RENAME_EXCHANGE) && chaos_view_name(s, parent, name, &ino, &type) > 0)
		chaos_name_node(s, ino, parent, name);
	(void)c;
}

static int c_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, uint64_t newparent, const char *newname, unsigned int flags)
{
	struct cfs *s = cfs_of(fs);
	uint64_t src, dst;
	int r = chaos_drop_named(s, "rename", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0) {
		r = chaos_ns_rename(s, c, parent, name, newparent, newname, flags);
		if (r == 0)
			renamed_nodes(s, c, parent, name, newparent, newname, flags);
		return r;
	}
	src = chaos_peek_child(s, c, parent, name);
	dst = chaos_peek_child(s, c, newparent, newname);
	if (dst && dst != src && !(flags & RENAME_EXCHANGE) &&
	    (r = chaos_nfs_silly(s, c, newparent, newname, dst)) < 0)
		return r;
	r = s->inner->ops->rename(s->inner, c, parent, name, newparent, newname, flags);
	if (r < 0)
		return r;
	if (src)
		chaos_name_node(s, src, newparent, newname);
	if (dst && (flags & RENAME_EXCHANGE))
		chaos_name_node(s, dst, parent, name);
	if (flags & RENAME_EXCHANGE) {
		chaos_own_change(s, parent, name, dst);
		chaos_own_change(s, newparent, newname, src);
	} else {
		chaos_own_change(s, parent, name, 0);
		chaos_own_change(s, newparent, newname, src);
		if (dst)
			chaos_attr_drop(s, dst);
	}
	return 0;
}

static ssize_t c_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			  char *buf, size_t size)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "readlink", ino);

	if (r < 0)
		return r;
	return s->inner->ops->readlink(s->inner, c, ino, buf, size);
}

static int c_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		    struct statvfs *out)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "statfs", ino);

	if (r < 0)
		return r;
	return s->inner->ops->statfs(s->inner, c, ino, out);
}

/****************************** open files ******************************/

/*
** The kernel's page cache is dropped at every open and checked against the
** attributes this client serves at every read (auto_inval_data with
** attribute timeouts of 0): cached data is exactly as stale as this
** client's attributes, as on NFS, and shared mmap works.
*/
static void no_kernel_cache(struct eddy_open *how)
{
	how->direct_io = false;
	how->keep_cache = false;
	how->cache_readdir = false;
	how->wants_flush = true;        /* a dropped flush fails close() */
}

static int opened(struct cfs *s, const struct eddy_ctx *c, uint64_t ino,
		  struct eddy_file *in, int flags, struct eddy_file **fp, struct eddy_open *how)
{
	struct cfile *f = cfile_new(in, ino, flags);
	struct cnode *n = NULL;

	if (f) {
		pthread_mutex_lock(&s->lock);
		if ((n = cnode_get(s, ino)))
			n->opens++;
		pthread_mutex_unlock(&s->lock);
	}
	if (!n) {
		free(f);
		s->inner->ops->release(s->inner, in);
		return -ENOMEM;
	}
	no_kernel_cache(how);
	*fp = &f->base;
	if ((flags & O_TRUNC) && k_wdelay(s) > 0 && !s->nfs.on &&
	    (flags & O_ACCMODE) != O_RDONLY)
		return c_truncate_delayed(s, c, ino, f, 0) < 0 ? -ENOMEM : 0;
	return 0;
}

static int c_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
		  struct eddy_file **fp, struct eddy_open *how)
{
	struct cfs *s = cfs_of(fs);
	struct eddy_file *in;
	int inner_flags = flags;
	int r = chaos_drop(s, "open", ino);

	if (r < 0)
		return r;
	/* close-to-open: an open revalidates the file's attributes */
	if (s->nfs.on && s->nfs.cto)
		chaos_attr_drop(s, ino);
	/* An O_TRUNC is a delayed truncate like any other. */
	/* This client decides where its appends go (its view of the end of
	 * file), not the truth at publication. */
	inner_flags &= ~O_APPEND;
	if (k_wdelay(s) > 0 && !s->nfs.on)
		inner_flags &= ~O_TRUNC;
	if ((flags & O_TRUNC) && s->nfs.on)
		chaos_publish_through(s, ino);
	r = s->inner->ops->open(s->inner, c, ino, inner_flags, &in, how);
	if (r < 0)
		return r;
	r = opened(s, c, ino, in, flags, fp, how);
	if (r == 0 && (flags & O_TRUNC))
		chaos_attr_drop(s, ino);
	return r;
}

static int c_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, mode_t mode, int flags, struct eddy_entry *out,
		    struct eddy_file **fp, struct eddy_open *how)
{
	struct cfs *s = cfs_of(fs);
	struct eddy_file *in;
	int r = chaos_drop_named(s, "create", parent, name);

	if (r < 0)
		return r;
	if (k_rdelay(s) > 0) {
		in = NULL;
		r = chaos_ns_create(s, c, S_IFREG, parent, name, mode, 0, NULL,
				    flags & ~(O_TRUNC | O_APPEND), out, &in, how);
		if (r < 0)
			return r;
	} else {
		r = s->inner->ops->create(s->inner, c, parent, name, mode,
					  flags & ~(O_TRUNC | O_APPEND), out, &in, how);
		if (r < 0)
			return r;
		took_new(s, 0, parent, name, out);
	}
	r = opened(s, c, out->ino, in, flags & ~O_TRUNC, fp, how);
	if (r < 0)
		c_forget(fs, out->ino, 1);
	return r;
}

/* Operations that see the whole file publish what this client has first. */
static int c_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "fallocate", f->ino);

	if (r < 0)
		return r;
	chaos_publish_through(s, f->ino);
	r = s->inner->ops->fallocate(s->inner, inner_file(f), mode, off, len);
	chaos_attr_drop(s, f->ino);
	return r;
}

static ssize_t c_copy_file_range(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
				 struct eddy_file *out, off_t off_out, size_t len, int flags)
{
	struct cfs *s = cfs_of(fs);
	ssize_t r = chaos_drop(s, "copy_file_range", out->ino);

	if (r < 0)
		return r;
	chaos_publish_through(s, in->ino);
	chaos_publish_through(s, out->ino);
	r = s->inner->ops->copy_file_range(s->inner, inner_file(in), off_in, inner_file(out),
					   off_out, len, flags);
	chaos_attr_drop(s, out->ino);
	return r;
}

static off_t c_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	struct cfs *s = cfs_of(fs);

	chaos_publish_through(s, f->ino);
	return s->inner->ops->lseek(s->inner, inner_file(f), off, whence);
}

static int c_fsyncdir(struct eddy_fs *fs, struct eddy_file *d, bool datasync)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "fsyncdir", d->ino);

	if (r < 0)
		return r;
	return s->inner->ops->fsyncdir(s->inner, inner_file(d), datasync);
}

/****************************** xattrs, locks ******************************/

static int c_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      const char *name, const void *value, size_t size, int flags)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "setxattr", ino);

	if (r < 0)
		return r;
	r = s->inner->ops->setxattr(s->inner, c, ino, name, value, size, flags);
	chaos_attr_drop(s, ino);
	return r;
}

static ssize_t c_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			  const char *name, void *value, size_t size)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "getxattr", ino);

	if (r < 0)
		return r;
	return s->inner->ops->getxattr(s->inner, c, ino, name, value, size);
}

static ssize_t c_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			   char *list, size_t size)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "listxattr", ino);

	if (r < 0)
		return r;
	return s->inner->ops->listxattr(s->inner, c, ino, list, size);
}

static int c_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			 const char *name)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "removexattr", ino);

	if (r < 0)
		return r;
	r = s->inner->ops->removexattr(s->inner, c, ino, name);
	chaos_attr_drop(s, ino);
	return r;
}

/* Locks are coherency points (as on NFS): taking or releasing one
** publishes this client's pending changes first, and the attributes of the
** file are fetched fresh afterwards. */
static void lock_point(struct cfs *s, uint64_t ino)
{
	chaos_publish_through(s, ino);
}

static int c_getlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, struct flock *lk)
{
	struct cfs *s = cfs_of(fs);
	int r = chaos_drop(s, "getlk", f->ino);

	if (r < 0)
		return r;
	return s->inner->ops->getlk(s->inner, c, inner_file(f), owner, lk);
}

static int c_setlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, const struct flock *lk, bool wait)
{
	struct cfs *s = cfs_of(fs);
	int r = lk->l_type == F_UNLCK ? 0 : chaos_drop(s, "setlk", f->ino);

	if (r < 0)
		return r;
	lock_point(s, f->ino);
	r = s->inner->ops->setlk(s->inner, c, inner_file(f), owner, lk, wait);
	chaos_attr_drop(s, f->ino);
	return r;
}

static int c_flock(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, int op)
{
	struct cfs *s = cfs_of(fs);
	int r = (op & LOCK_UN) ? 0 : chaos_drop(s, "flock", f->ino);

	if (r < 0)
		return r;
	lock_point(s, f->ino);
	r = s->inner->ops->flock(s->inner, c, inner_file(f), owner, op);
	chaos_attr_drop(s, f->ino);
	return r;
}

static int c_flush_owner(struct eddy_fs *fs, struct eddy_file *f, uint64_t owner)
{
	struct cfs *s = cfs_of(fs);

	return s->inner->ops->flush_owner(s->inner, inner_file(f), owner);
}

static int c_poll(struct eddy_fs *fs, struct eddy_file *f, unsigned events, unsigned *revents)
{
	struct cfs *s = cfs_of(fs);

	return s->inner->ops->poll(s->inner, inner_file(f), events, revents);
}

/****************************** control, report ******************************/

static void report_knobs(struct cfs *s, eddy_stat_fn fn, void *arg)
{
	struct chaos_knobs k;

	pthread_mutex_lock(&s->lock);
	k = s->k;
	pthread_mutex_unlock(&s->lock);
	fn(arg, "chaos_meta_ttl_ms", k.meta_ttl_ms);
	fn(arg, "chaos_write_delay_ms", k.write_delay_ms);
	fn(arg, "chaos_rename_delay_ms", k.rename_delay_ms);
	fn(arg, "chaos_drop_ppm", llround(k.drop_prob * 1e6));
	fn(arg, "chaos_drop_errno", k.drop_errno);
	fn(arg, "chaos_seed", (long long)s->seed);
}

static void c_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct cfs *s = cfs_of(fs);
	long long v[14];

	report_knobs(s, fn, arg);
	pthread_mutex_lock(&s->lock);
	v[0] = s->n_dropped;
	v[1] = s->n_passed;
	v[2] = s->n_attr_hits;
	v[3] = s->n_entry_hits;
	v[4] = s->n_neg_hits;
	v[5] = s->n_list_hits;
	v[6] = s->n_delayed;
	v[7] = s->n_published;
	v[8] = s->n_publish_failed;
	v[9] = (long long)s->npend;
	v[10] = (long long)s->pend_bytes;
	v[11] = s->n_divergences;
	v[12] = (long long)s->nnodes;
	v[13] = (long long)s->nentries;
	pthread_mutex_unlock(&s->lock);
	fn(arg, "chaos_dropped", v[0]);
	fn(arg, "chaos_passed", v[1]);
	fn(arg, "chaos_stale_attr_hits", v[2]);
	fn(arg, "chaos_stale_entry_hits", v[3]);
	fn(arg, "chaos_stale_absent_hits", v[4]);
	fn(arg, "chaos_stale_listing_hits", v[5]);
	fn(arg, "chaos_delayed", v[6]);
	fn(arg, "chaos_published", v[7]);
	fn(arg, "chaos_publish_failed", v[8]);
	fn(arg, "chaos_lost", s->n_lost);
	fn(arg, "chaos_pending", v[9]);
	fn(arg, "chaos_pending_bytes", v[10]);
	fn(arg, "chaos_replay_divergences", v[11]);
	fn(arg, "chaos_cached_inodes", v[12]);
	fn(arg, "chaos_cached_names", v[13]);
	chaos_rules_report(s, fn, arg);
	chaos_net_report(s->inner, fn, arg);
	if (s->inner->ops->report)
		s->inner->ops->report(s->inner, fn, arg);
}

/* "" or " hard": hang; " soft[=MS]", " softerr[=MS]": fail after MS
** (default 2000). */
static int parse_partition(const char *mode, enum chaos_partition *state, long *timeo,
			   char *err, size_t errlen)
{
	const char *eq;

	*timeo = 2000;
	if (!*mode || strcmp(mode, " hard") == 0) {
		*state = CHAOS_NET_HARD;
		return 0;
	}
	if (strncmp(mode, " softerr", 8) == 0) {
		*state = CHAOS_NET_SOFTERR;
		eq = mode + 8;
	} else if (strncmp(mode, " soft", 5) == 0) {
		*state = CHAOS_NET_SOFT;
		eq = mode + 5;
	} else {
		snprintf(err, errlen, "partition%s: use hard, soft[=MS] or softerr[=MS]", mode);
		return -EINVAL;
	}
	if (*eq == '=') {
		char *end;

		errno = 0;
		*timeo = strtol(eq + 1, &end, 10);
		if (!eq[1] || *end || errno || *timeo < 0 || *timeo > 3600000) {
			snprintf(err, errlen, "partition%s: want milliseconds, 0-3600000", mode);
			return -EINVAL;
		}
	} else if (*eq) {
		snprintf(err, errlen, "partition%s: use hard, soft[=MS] or softerr[=MS]", mode);
		return -EINVAL;
	}
	return 0;
}

static void *crash_main(void *arg)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)arg;
	nanosleep(&ts, NULL);       /* the reply leaves first */
	kill(getpid(), SIGKILL);
	return NULL;
}

/* Ends the daemon like a power cut, just after the control reply. */
static void chaos_crash_soon(struct cfs *s)
{
	pthread_t t;

	if (pthread_create(&t, NULL, crash_main, s) == 0)
		pthread_detach(t);
	else
		kill(getpid(), SIGKILL);
}

/* "chaos set k=v ...", "chaos clear", "chaos show", "chaos drop-unsynced
** [torn]", "chaos crash [torn]": the change is in effect when the reply is
** sent (a crash: the daemon dies right after). */
static int c_control(struct eddy_fs *fs, const char *req, eddy_stat_fn fn, void *arg,
		     char *err, size_t errlen)
{
	struct cfs *s = cfs_of(fs);
	struct chaos_knobs k;
	char buf[512], *tok, *save = NULL;

	if (strncmp(req, "chaos ", 6) != 0)
		return s->inner->ops->control ? s->inner->ops->control(s->inner, req, fn, arg,
								       err, errlen)
					      : -ENOSYS;
	req += 6;
	if (strcmp(req, "show") == 0) {
		c_report(fs, fn, arg);
		return 0;
	}
	if (strncmp(req, "drop-unsynced", 13) == 0 || strncmp(req, "crash", 5) == 0) {
		bool crash = req[0] == 'c';
		const char *opt = req + (crash ? 5 : 13);
		bool torn = strcmp(opt, " torn") == 0;

		if (*opt && !torn) {
			snprintf(err, errlen, "chaos %s: unknown argument%s", crash ? "crash" :
				 "drop-unsynced", opt);
			return -EINVAL;
		}
		fn(arg, "chaos_lost", chaos_lose_unpublished(s, torn));
		if (crash) {
			chaos_logf(s, "crash requested: ending like a power cut");
			fn(arg, "chaos_crash_pid", (long long)getpid());
			chaos_crash_soon(s);
		}
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	k = s->k;
	pthread_mutex_unlock(&s->lock);
	if (strncmp(req, "partition", 9) == 0 || strcmp(req, "heal") == 0) {
		enum chaos_partition state = CHAOS_NET_OK;
		const char *mode = req[0] == 'p' ? req + 9 : "";
		long timeo = 0;

		if (req[0] == 'p' && parse_partition(mode, &state, &timeo, err, errlen) < 0)
			return -EINVAL;
		chaos_net_set(s->inner, state, timeo);
		chaos_logf(s, "network: %s", req);
		chaos_net_report(s->inner, fn, arg);
		return 0;
	}
	if (strncmp(req, "fault ", 6) == 0) {
		if (chaos_rule_add(s, req + 6, err, errlen) < 0)
			return -EINVAL;
		chaos_rules_report(s, fn, arg);
		return 0;
	}
	if (strcmp(req, "clear") == 0) {
		chaos_rules_clear(s);
		k.meta_ttl_ms = k.write_delay_ms = k.rename_delay_ms = 0;
		k.drop_prob = 0;
		k.drop_errno = EIO;
	} else if (strncmp(req, "set ", 4) == 0) {
		snprintf(buf, sizeof(buf), "%s", req + 4);
		for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(tok, '=');

			if (!eq) {
				snprintf(err, errlen, "%s: want key=value", tok);
				return -EINVAL;
			}
			*eq = 0;
			if (chaos_knob_set(&k, tok, eq + 1, err, errlen) < 0)
				return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "unknown chaos command: %s", req);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->k.meta_ttl_ms, k.meta_ttl_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k.write_delay_ms, k.write_delay_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k.rename_delay_ms, k.rename_delay_ms, __ATOMIC_RELAXED);
	__atomic_store(&s->k.drop_prob, &k.drop_prob, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k.drop_errno, k.drop_errno, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	/* Shorter delays apply to what is pending too: publish what is due. */
	if (k.write_delay_ms == 0)
		chaos_publish_through(s, 0);
	chaos_logf(s, "chaos knobs now: meta-ttl=%ld write-delay=%ld rename-delay=%ld "
		   "drop-prob=%g drop-errno=%s", k.meta_ttl_ms, k.write_delay_ms,
		   k.rename_delay_ms, k.drop_prob, errno_name(k.drop_errno));
	report_knobs(s, fn, arg);
	return 0;
}

/****************************** life ******************************/

static void c_destroy(struct eddy_fs *fs)
{
	struct cfs *s = cfs_of(fs);

	chaos_net_set(s->inner, CHAOS_NET_OK, 0);       /* heal: publish what is left */
	chaos_publisher_stop(s);
	chaos_rules_clear(s);
	chaos_stage_free(s);
	chaos_cache_free(s);
	if (s->dlog)
		fclose(s->dlog);
	free(s->replay);
	s->inner->ops->destroy(s->inner);
	pthread_cond_destroy(&s->pend_cond);
	pthread_mutex_destroy(&s->publish);
	pthread_mutex_destroy(&s->stage_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->client);
	free(s);
}

static void fill_ops(struct cfs *s)
{
	const struct eddy_fs_ops *in = s->inner->ops;
	struct eddy_fs_ops *o = &s->ops;

	o->name = "chaos";
	o->destroy = c_destroy;
	o->report = c_report;
	o->lookup = c_lookup;
	o->forget = c_forget;
	o->getattr = c_getattr;
	o->setattr = c_setattr;
	o->mknod = c_mknod;
	o->mkdir = c_mkdir;
	o->symlink = c_symlink;
	o->link = c_link;
	o->unlink = c_unlink;
	o->rmdir = c_rmdir;
	o->rename = c_rename;
	o->readlink = c_readlink;
	o->statfs = c_statfs;
	o->open = c_open;
	o->create = c_create;
	o->read = c_read;
	o->write = c_write;
	o->flush = c_flush;
	o->fsync = c_fsync;
	o->release = c_release;
	o->fallocate = in->fallocate ? c_fallocate : NULL;
	o->copy_file_range = in->copy_file_range ? c_copy_file_range : NULL;
	o->lseek = in->lseek ? c_lseek : NULL;
	o->opendir = c_opendir;
	o->readdir = c_readdir;
	o->fsyncdir = c_fsyncdir;
	o->releasedir = c_releasedir;
	o->setxattr = c_setxattr;
	o->getxattr = c_getxattr;
	o->listxattr = c_listxattr;
	o->removexattr = c_removexattr;
	/* No change news: the kernel caches nothing, this client's caches
	 * expire by themselves. */
	o->watch_start = NULL;
	o->watch_stop = NULL;
	if (in->getlk && in->setlk && in->flock && in->flush_owner) {
		o->getlk = c_getlk;
		o->setlk = c_setlk;
		o->flock = c_flock;
		o->flush_owner = c_flush_owner;
	}
	o->poll = in->poll ? c_poll : NULL;
	o->control = c_control;
}

static int open_decision_log(struct cfs *s, const char *path, char *err, size_t errlen)
{
	s->dlog = fopen(path, "ae");
	if (!s->dlog) {
		snprintf(err, errlen, "decision log %s: %s", path, strerror(errno));
		return -errno;
	}
	setvbuf(s->dlog, NULL, _IOLBF, 0);
	chaos_decision_start(s);
	return 0;
}

int chaos_fs_open(struct eddy_fs *inner, const struct chaos_options *o, struct eddy_fs **out,
		  char *err, size_t errlen)
{
	struct cfs *s = calloc(1, sizeof(*s));
	uint64_t seed = o->seed;
	size_t i;
	int r;

	if (!s || !(s->client = strdup(o->client_id ? o->client_id : "client"))) {
		free(s);
		snprintf(err, errlen, "chaos: out of memory");
		return -ENOMEM;
	}
	if (chaos_net_open(inner, &s->inner) < 0) {
		free(s->client);
		free(s);
		snprintf(err, errlen, "chaos: out of memory");
		return -ENOMEM;
	}
	s->k = o->knobs;
	s->nfs = o->nfs;
	s->log = o->log;
	s->log_arg = o->log_arg;
	s->t0 = chaos_now();
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->publish, NULL);
	pthread_mutex_init(&s->stage_lock, NULL);
	s->nnodes_b = 256;
	s->nentries_b = 256;
	s->nodes = calloc(s->nnodes_b, sizeof(*s->nodes));
	s->entries = calloc(s->nentries_b, sizeof(*s->entries));
	if (!o->seeded && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL);
	if (!o->seeded)
		seed &= INT64_MAX;      /* printable as given back to --seed */
	chaos_rng_seed(s, seed);
	fill_ops(s);
	s->base.ops = &s->ops;
	s->base.flags = inner->flags & ~EDDY_FS_STATELESS_DIRS;
	r = (!s->nodes || !s->entries) ? -ENOMEM : 0;
	if (r == 0 && !cnode_get(s, EDDY_ROOT_INO))
		r = -ENOMEM;
	if (r == -ENOMEM)
		snprintf(err, errlen, "chaos: out of memory");
	if (r == 0 && o->decision_log)
		r = open_decision_log(s, o->decision_log, err, errlen);
	if (r == 0 && o->replay)
		r = chaos_replay_load(s, o->replay, err, errlen);
	if (r == 0)
		r = chaos_stage_cleanup(s, err, errlen);
	for (i = 0; r == 0 && o->rules && o->rules[i]; i++)
		r = chaos_rule_add(s, o->rules[i], err, errlen);
	if (r == 0 && (r = chaos_publisher_start(s)) < 0)
		snprintf(err, errlen, "chaos: cannot start the publisher: %s", strerror(-r));
	if (r < 0) {
		chaos_net_unwrap(s->inner);
		s->inner = NULL;
		chaos_rules_clear(s);
		chaos_cache_free(s);
		if (s->dlog)
			fclose(s->dlog);
		free(s->replay);
		pthread_mutex_destroy(&s->publish);
		pthread_mutex_destroy(&s->stage_lock);
		pthread_mutex_destroy(&s->lock);
		free(s->client);
		free(s);
		return r;
	}
	if (s->nfs.on)
		chaos_logf(s, "nfs profile: %s acregmin=%g acregmax=%g acdirmin=%g acdirmax=%g "
			   "lookupcache=%s %s %s tsgran=%ld", s->nfs.ac ? "ac" : "noac",
			   s->nfs.acregmin, s->nfs.acregmax, s->nfs.acdirmin, s->nfs.acdirmax,
			   s->nfs.lookupcache == NFS_LOOKUP_ALL ? "all" :
			   s->nfs.lookupcache == NFS_LOOKUP_POS ? "pos" : "none",
			   s->nfs.cto ? "cto" : "nocto", s->nfs.sync ? "sync" : "async",
			   s->nfs.tsgran_ms);
	chaos_logf(s, "chaos client %s: meta-ttl=%ld write-delay=%ld rename-delay=%ld "
		   "drop-prob=%g drop-errno=%s seed=%llu%s", s->client, k_ttl(s),
		   k_wdelay(s), s->k.rename_delay_ms, k_drop_prob(s),
		   errno_name(k_drop_errno(s)), (unsigned long long)seed,
		   o->replay ? " (replaying)" : "");
	*out = &s->base;
	return 0;
}
