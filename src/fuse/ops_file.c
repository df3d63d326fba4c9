/*
** ops_file.c -- FUSE handlers for open files and directories: open/create,
** read/write, flush/release/fsync, fallocate, copy_file_range, lseek,
** opendir/readdir/readdirplus/releasedir/fsyncdir.
**
** fi->fh holds the eddy_file pointer the implementation returned. An open
** or create whose reply the kernel drops is released here, since no
** RELEASE will follow. Locks (flock, fcntl) go to the implementation when it
** shares them (--locks=shared); otherwise the kernel keeps them, per mount.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_int.h"

static void reply_status(fuse_req_t req, int err)
{
	fuse_reply_err(req, err < 0 ? -err : 0);
}

static void set_open_flags(struct fuse_file_info *fi, const struct eddy_open *how,
			   struct eddy_file *f, bool fe_posix_flush)
{
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = how->keep_cache;
	fi->direct_io = how->direct_io;
	fi->cache_readdir = how->cache_readdir;
	fi->nonseekable = how->nonseekable;
	/* Without the exact POSIX close rule no FLUSH is needed: an owner's
	 * locks go when the open file it used is released. */
	fi->noflush = !fe_posix_flush && !how->wants_flush;
}

/* With the writeback cache the kernel reads pages through any open file
** (to fill partial pages before writing them back) and appends at its own
** idea of the size: implementations must open write-only files for reading
** too, and must not append themselves. */
static int open_flags(struct eddy_frontend *fe, int flags)
{
	if (!atomic_load(&fe->writeback))
		return flags;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~O_APPEND;
}

void fe_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_file *f = NULL;
	struct eddy_open how;
	struct eddy_ctx c;
	int err;

	fe_ctx(req, &c, false);
	err = fe->fs->ops->open(fe->fs, &c, ino, open_flags(fe, fi->flags), &f, &how);
	if (err) {
		reply_status(req, err);
		return;
	}
	set_open_flags(fi, &how, f, fe->posix_close || !fe->locks);
	if (fuse_reply_open(req, fi) == -ENOENT)
		fe->fs->ops->release(fe->fs, f);
}

void fe_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_file *f = NULL;
	struct fuse_entry_param p;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_ctx c;
	uint64_t seq = fe_seq(fe, parent);
	int err;

	fe_ctx(req, &c, true);
	err = fe->fs->ops->create(fe->fs, &c, parent, name, mode, open_flags(fe, fi->flags), &e,
				  &f, &how);
	if (err) {
		reply_status(req, err);
		return;
	}
	set_open_flags(fi, &how, f, fe->posix_close || !fe->locks);
	memset(&p, 0, sizeof(p));
	p.ino = e.ino;
	p.generation = e.generation;
	p.attr = e.attr;
	p.attr_timeout = e.attr_timeout;
	p.entry_timeout = e.entry_timeout;
	node_table_ref(&fe->nodes, e.ino, 1);
	if (fuse_reply_create(req, &p, fi) == -ENOENT) {
		fe->fs->ops->release(fe->fs, f);
		node_table_forget(&fe->nodes, e.ino, 1);
		fe->fs->ops->forget(fe->fs, e.ino, 1);
		return;
	}
	fe_recheck_entry(fe, parent, name, seq);
}

void fe_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	char *buf;
	ssize_t n;

	if (fe->waits) {
		fe_waits_read(fe->waits, req, ino, size, off, fi);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fe->fs->ops->read(fe->fs, fe_file(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void fe_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	ssize_t n;

	(void)ino;
	fe_ctx(req, &c, false);
	n = fe->fs->ops->write(fe->fs, &c, fe_file(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void fe_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);

	int err = 0;

	(void)ino;
	if (!fe->locks && !fe->fs->ops->flush) {
		fuse_reply_err(req, ENOSYS);    /* the kernel stops sending FLUSH */
		return;
	}
	if (fe->locks)                      /* POSIX: close drops the owner's locks */
		err = fe->fs->ops->flush_owner(fe->fs, fe_file(fi), fi->lock_owner);
	if (!err && fe->fs->ops->flush)
		err = fe->fs->ops->flush(fe->fs, fe_file(fi));
	reply_status(req, err);
}

void fe_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);

	(void)ino;
	fe->fs->ops->release(fe->fs, fe_file(fi));
	fuse_reply_err(req, 0);
}

void fe_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph)
{
	struct eddy_frontend *fe = fe_of(req);

	if (!fe->fs->ops->poll) {
		/* ENOSYS: the kernel stops asking and reports "always ready". */
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fe_waits_poll(fe->waits, req, ino, fi, ph);
}

void fe_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);

	(void)ino;
	reply_status(req, fe->fs->ops->fsync(fe->fs, fe_file(fi), datasync != 0));
}

void fe_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);

	(void)ino;
	if (!fe->fs->ops->fallocate) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	reply_status(req, fe->fs->ops->fallocate(fe->fs, fe_file(fi), mode, off, len));
}

void fe_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct eddy_frontend *fe = fe_of(req);
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	if (!fe->fs->ops->copy_file_range) {
		fuse_reply_err(req, ENOSYS);    /* the kernel copies by read/write */
		return;
	}
	n = fe->fs->ops->copy_file_range(fe->fs, fe_file(fi_in), off_in, fe_file(fi_out), off_out,
					 len, flags);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void fe_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	int err;

	(void)ino;
	fe_ctx(req, &c, false);
	err = fe->fs->ops->getlk(fe->fs, &c, fe_file(fi), fi->lock_owner, lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_lock(req, lock);
}

void fe_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
	      int sleep)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	(void)ino;
	fe_ctx(req, &c, false);
	reply_status(req, fe->fs->ops->setlk(fe->fs, &c, fe_file(fi), fi->lock_owner, lock,
					     sleep != 0));
}

void fe_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	(void)ino;
	fe_ctx(req, &c, false);
	reply_status(req, fe->fs->ops->flock(fe->fs, &c, fe_file(fi), fi->lock_owner, op));
}

void fe_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	off_t r;

	(void)ino;
	if (!fe->fs->ops->lseek) {
		fuse_reply_err(req, ENOSYS);    /* the kernel's generic lseek */
		return;
	}
	r = fe->fs->ops->lseek(fe->fs, fe_file(fi), off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

/****************************** directories ******************************/

void fe_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_file *f = NULL;
	struct eddy_open how;
	struct eddy_ctx c;
	int err;

	if (fe->no_opendir) {
		/* the kernel keeps and caches listings without a handle */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fe_ctx(req, &c, false);
	err = fe->fs->ops->opendir(fe->fs, &c, ino, &f, &how);
	if (err) {
		reply_status(req, err);
		return;
	}
	set_open_flags(fi, &how, f, true);
	if (fuse_reply_open(req, fi) == -ENOENT)
		fe->fs->ops->releasedir(fe->fs, f);
}

/* The reply buffer a readdir fills, and the references it has taken. */
struct fill_state {
	fuse_req_t req;
	struct eddy_frontend *fe;
	char *buf;
	size_t size, pos;
	uint64_t *refs;
	size_t nrefs, caprefs;
	char *names;            /* readdirplus: names placed, NUL-separated */
	size_t nlen, ncap;
};

static void remember_name(struct fill_state *s, const char *name)
{
	size_t len = strlen(name) + 1;

	if (s->nlen + len > s->ncap) {
		size_t cap = (s->ncap + len) * 2;
		char *p = realloc(s->names, cap);

		if (!p)
			return;
		s->names = p;
		s->ncap = cap;
	}
	memcpy(s->names + s->nlen, name, len);
	s->nlen += len;
}

static int fill_entry(void *arg, const char *name, const struct stat *st,
		      const struct eddy_entry *e, uint64_t next)
{
	struct fill_state *s = arg;
	size_t need;

	if (!e) {
		need = fuse_add_direntry(s->req, s->buf + s->pos, s->size - s->pos, name, st,
					 (off_t)next);
	} else {
		struct fuse_entry_param p;

		memset(&p, 0, sizeof(p));
		p.ino = e->ino;
		p.generation = e->generation;
		p.attr = e->attr;
		p.attr_timeout = e->attr_timeout;
		p.entry_timeout = e->entry_timeout;
		if (e->ino && s->nrefs == s->caprefs) {
			size_t cap = s->caprefs ? s->caprefs * 2 : 64;
			uint64_t *r = realloc(s->refs, cap * sizeof(*r));

			if (!r)
				return 1;
			s->refs = r;
			s->caprefs = cap;
		}
		need = fuse_add_direntry_plus(s->req, s->buf + s->pos, s->size - s->pos, name, &p,
					      (off_t)next);
		if (need <= s->size - s->pos && e->ino) {
			node_table_ref(&s->fe->nodes, e->ino, 1);
			s->refs[s->nrefs++] = e->ino;
			if (s->fe->notifier)
				remember_name(s, name);
		}
	}
	if (need > s->size - s->pos)
		return 1;
	s->pos += need;
	return 0;
}

/* The directory handle of a request: the one OPENDIR made, or (no
** OPENDIR: EDDY_FS_STATELESS_DIRS) one opened for this request only. */
static int dir_handle(struct eddy_frontend *fe, const struct eddy_ctx *c, fuse_ino_t ino,
		      struct fuse_file_info *fi, struct eddy_file **d, bool *temp)
{
	struct eddy_open how;

	*d = fi ? fe_file(fi) : NULL;
	*temp = !*d;
	if (*d)
		return 0;
	return fe->fs->ops->opendir(fe->fs, c, ino, d, &how);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct eddy_frontend *fe = fe_of(req);
	struct fill_state s = { .req = req, .fe = fe, .size = size };
	uint64_t seq = fe_seq(fe, ino);
	struct eddy_file *d;
	struct eddy_ctx c;
	bool temp;
	int err;

	fe_ctx(req, &c, false);
	err = dir_handle(fe, &c, ino, fi, &d, &temp);
	if (err) {
		reply_status(req, err);
		return;
	}
	s.buf = malloc(size ? size : 1);
	if (!s.buf) {
		if (temp)
			fe->fs->ops->releasedir(fe->fs, d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	err = fe->fs->ops->readdir(fe->fs, &c, d, (uint64_t)off, plus, fill_entry, &s);
	if (temp)
		fe->fs->ops->releasedir(fe->fs, d);
	if (err && s.pos == 0) {
		fuse_reply_err(req, -err);
	} else if (fuse_reply_buf(req, s.buf, s.pos) == -ENOENT) {
		size_t i;

		for (i = 0; i < s.nrefs; i++) {
			node_table_forget(&fe->nodes, s.refs[i], 1);
			fe->fs->ops->forget(fe->fs, s.refs[i], 1);
		}
	}
	/* a change raced the listing: drop it and the entries it brought */
	if (plus && fe->notifier && fe_seq(fe, ino) != seq) {
		size_t i;

		fe_notify_inode(fe, ino, false);
		for (i = 0; i < s.nlen; i += strlen(s.names + i) + 1)
			fe_notify_entry(fe, ino, s.names + i);
	}
	free(s.names);
	free(s.refs);
	free(s.buf);
}

void fe_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void fe_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void fe_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);

	(void)ino;
	fe->fs->ops->releasedir(fe->fs, fe_file(fi));
	fuse_reply_err(req, 0);
}

void fe_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_file *d;
	struct eddy_ctx c;
	bool temp;
	int err;

	fe_ctx(req, &c, false);
	err = dir_handle(fe, &c, ino, fi, &d, &temp);
	if (err == 0) {
		err = fe->fs->ops->fsyncdir(fe->fs, d, datasync != 0);
		if (temp)
			fe->fs->ops->releasedir(fe->fs, d);
	}
	reply_status(req, err);
}
