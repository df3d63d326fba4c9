/*
** queue.c -- the queue layer: eventfs-compatible message-queue directories
** over any eddy_fs (reference/queue-semantics.md). This file holds the
** layer's life, open files, directory listings, xattrs and the ops table;
** queue_ns.c the namespace rules, queue_claim.c the .claim file,
** queue_fate.c fate-sharing, queue_quota.c limits, queue_state.c and
** queue_load.c the tables.
**
** Guarantees:
**   1. Which directories are queues: with --queues every directory in the
**      root; otherwise every directory carrying user.eddyfs.queue (such a
**      queue has no creator and lives until removed).
**   2. Pops, claims and unlinks by name remove each message exactly once,
**      oldest first, across any number of consumers.
**   3. A --queues queue dies with the process that created it, within
**      milliseconds, unless sticky; the kernel's caches are told at once.
**   4. Limits are exact and all-or-nothing (EDQUOT, nothing left behind).
**   5. Access rights are checked by the kernel (default_permissions).
** The layer keeps its state keyed by inode number, never by path.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

static struct eddy_file *inner_file(struct eddy_file *f)
{
	return f ? ((struct qfile *)f)->inner : NULL;
}

static struct qfile *wrap(struct eddy_file *inner, uint64_t ino)
{
	struct qfile *f = calloc(1, sizeof(*f));

	if (f) {
		f->base.ino = ino;
		f->inner = inner;
	}
	return f;
}

/* Counts F as a writer of message INO if INO is a message; true if so. */
static bool count_writer(struct qfs *q, struct qfile *f, uint64_t ino, int flags)
{
	struct qinode *qi;

	if ((flags & O_ACCMODE) == O_RDONLY)
		return false;
	pthread_mutex_lock(&q->lock);
	if ((qi = qinode_find(q, ino))) {
		qi->writers++;
		f->writer = true;
	}
	pthread_mutex_unlock(&q->lock);
	return f->writer;
}

/* A writer of message INO closed: the last one makes it claimable. */
static void writer_closed(struct qfs *q, uint64_t ino)
{
	struct qinode *qi;
	uint64_t ready = 0;

	pthread_mutex_lock(&q->lock);
	qi = qinode_find(q, ino);
	if (qi && qi->writers && !--qi->writers) {
		struct queue *qu = qi->links ? queue_find(q, qi->qino) : NULL;

		if (qu)
			ready = qu->claim_ino;
		if (!qi->links)
			qinode_put_link(q, qi);
	}
	pthread_mutex_unlock(&q->lock);
	if (ready)
		qns_up_ready(q, ready);     /* a complete message for claimers */
}

static int q_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
		  struct eddy_file **fp, struct eddy_open *how)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_file *in;
	struct qfile *f;
	int r;

	if (is_synth(ino)) {
		struct qsynth *s;
		struct qsynth copy;

		pthread_mutex_lock(&q->lock);
		s = synth_find(q, ino);
		if (s)
			copy = *s;
		pthread_mutex_unlock(&q->lock);
		if (!s)
			return -ENOENT;
		if (copy.kind != QS_CLAIM)
			return -ELOOP;
		return qclaim_open(q, &copy, flags, fp, how);
	}
	r = q->inner->ops->open(q->inner, c, ino, flags, &in, how);
	if (r < 0)
		return r;
	f = wrap(in, ino);
	if (!f) {
		q->inner->ops->release(q->inner, in);
		return -ENOMEM;
	}
	if (count_writer(q, f, ino, flags) && (flags & O_ACCMODE) == O_WRONLY)
		qns_write_only(how);
	*fp = &f->base;
	return 0;
}

static int q_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, mode_t mode, int flags, struct eddy_entry *out,
		    struct eddy_file **fp, struct eddy_open *how)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_file *in;
	struct qfile *f;
	bool counted;
	int r;

	r = qns_create(q, c, parent, name, mode, flags, out, &in, how, &counted);
	if (r < 0)
		return r;
	f = wrap(in, out->ino);
	if (!f) {
		/* The file exists now; only the handle failed. */
		q->inner->ops->release(q->inner, in);
		if (counted)
			writer_closed(q, out->ino);
		q->inner->ops->forget(q->inner, out->ino, 1);
		return -ENOMEM;
	}
	f->writer = counted;
	*fp = &f->base;
	return 0;
}

static ssize_t q_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;

	if (qf->claim)
		return qclaim_read(q, qf, buf, size);
	return q->inner->ops->read(q->inner, qf->inner, buf, size, off);
}

/* Charges the growth a write or fallocate to END may cause; returns the
** bytes charged (to undo), or a negative errno. */
static long long charge_growth(struct qfs *q, uint64_t ino, off_t end)
{
	struct qinode *qi;
	long long d = 0;
	int r = 0;

	pthread_mutex_lock(&q->lock);
	qi = qinode_find(q, ino);
	if (qi && end > qi->charged) {
		d = (long long)(end - qi->charged);
		r = qquota_charge(q, qi->uid, qi->gid, 0, 0, d, false);
		if (r == 0)
			qi->charged = end;
	}
	pthread_mutex_unlock(&q->lock);
	return r < 0 ? r : d;
}

static void uncharge_growth(struct qfs *q, uint64_t ino, long long d)
{
	struct qinode *qi;

	if (d <= 0)
		return;
	pthread_mutex_lock(&q->lock);
	if ((qi = qinode_find(q, ino))) {
		qquota_charge(q, qi->uid, qi->gid, 0, 0, -d, true);
		qi->charged -= d;
	}
	pthread_mutex_unlock(&q->lock);
}

static ssize_t q_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		       const void *buf, size_t size, off_t off)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;
	long long d;
	ssize_t n;

	if (qf->claim)
		return -EBADF;
	d = charge_growth(q, f->ino, off + (off_t)size);
	if (d < 0)
		return (ssize_t)d;
	n = q->inner->ops->write(q->inner, c, qf->inner, buf, size, off);
	if (n < 0)
		uncharge_growth(q, f->ino, d);
	return n;
}

static int q_flush(struct eddy_fs *fs, struct eddy_file *f)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;

	if (qf->claim || !q->inner->ops->flush)
		return 0;
	return q->inner->ops->flush(q->inner, qf->inner);
}

static int q_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;

	return qf->claim ? 0 : q->inner->ops->fsync(q->inner, qf->inner, datasync);
}

static void q_release(struct eddy_fs *fs, struct eddy_file *f)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;

	if (qf->claim) {
		qclaim_release(q, qf);
		return;
	}
	q->inner->ops->release(q->inner, qf->inner);
	if (qf->writer)
		writer_closed(q, f->ino);
	free(qf);
}

static int q_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;
	long long d = 0;
	int r;

	if (qf->claim)
		return -EBADF;
	if (!(mode & FALLOC_FL_KEEP_SIZE)) {
		d = charge_growth(q, f->ino, off + len);
		if (d < 0)
			return (int)d;
	}
	r = q->inner->ops->fallocate(q->inner, qf->inner, mode, off, len);
	if (r < 0)
		uncharge_growth(q, f->ino, d);
	return r;
}

static ssize_t q_copy_file_range(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
				 struct eddy_file *out, off_t off_out, size_t len, int flags)
{
	struct qfs *q = qfs_of(fs);
	long long d;
	ssize_t n;

	if (((struct qfile *)in)->claim || ((struct qfile *)out)->claim)
		return -EINVAL;
	d = charge_growth(q, out->ino, off_out + (off_t)len);
	if (d < 0)
		return (ssize_t)d;
	n = q->inner->ops->copy_file_range(q->inner, inner_file(in), off_in, inner_file(out),
					   off_out, len, flags);
	if (n < 0)
		uncharge_growth(q, out->ino, d);
	return n;
}

static off_t q_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	struct qfs *q = qfs_of(fs);

	if (((struct qfile *)f)->claim)
		return -ESPIPE;
	return q->inner->ops->lseek(q->inner, inner_file(f), off, whence);
}

static int q_poll(struct eddy_fs *fs, struct eddy_file *f, unsigned events, unsigned *revents)
{
	struct qfile *qf = (struct qfile *)f;

	if (qf->claim)
		return qclaim_poll(qfs_of(fs), qf, revents);
	*revents = events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
	return 0;
}

/******************************* directories *******************************/

struct qdent {
	char *name;
	struct stat st;
	struct eddy_entry e;       /* plus: e.ino != 0 carries a reference */
	uint64_t next;
};

struct qdir {
	struct eddy_file base;
	struct eddy_file *inner;
	bool queue;                /* listed from a snapshot */
	struct qdent *v;
	size_t n, cap;
	bool built, nomem;
	/* plain dirs with plus: directories to look at after the listing */
	struct qdent *seen;
	size_t nseen, capseen;
};

static int q_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file **fp, struct eddy_open *how)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_file *in;
	struct qdir *d;
	int r;

	if (is_synth(ino))
		return -ENOTDIR;
	r = q->inner->ops->opendir(q->inner, c, ino, &in, how);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d) {
		q->inner->ops->releasedir(q->inner, in);
		return -ENOMEM;
	}
	d->base.ino = ino;
	d->inner = in;
	pthread_mutex_lock(&q->lock);
	d->queue = queue_find(q, ino) != NULL;
	pthread_mutex_unlock(&q->lock);
	if (d->queue)
		how->cache_readdir = false;
	*fp = &d->base;
	return 0;
}

static bool push_dent(struct qdent **v, size_t *n, size_t *cap, const char *name,
		      const struct stat *st, const struct eddy_entry *e)
{
	struct qdent *x;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct qdent *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return false;
		*v = nv;
		*cap = nc;
	}
	x = &(*v)[*n];
	memset(x, 0, sizeof(*x));
	if (!(x->name = strdup(name)))
		return false;
	if (st)
		x->st = *st;
	if (e)
		x->e = *e;
	(*n)++;
	return true;
}

static int snap_fill(void *buf, const char *name, const struct stat *st,
		     const struct eddy_entry *e, uint64_t next)
{
	struct qdir *d = buf;

	(void)next;
	if (!push_dent(&d->v, &d->n, &d->cap, name, st, e)) {
		d->nomem = true;
		return 1;          /* an entry with a reference is handed back */
	}
	return 0;
}

static void drop_snapshot(struct qfs *q, struct qdir *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].e.ino && !is_synth(d->v[i].e.ino))
			q->inner->ops->forget(q->inner, d->v[i].e.ino, 1);
		free(d->v[i].name);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
	d->built = false;
}

static int build_snapshot(struct qfs *q, const struct eddy_ctx *c, struct qdir *d, bool plus)
{
	struct queue *qu;
	int r;

	drop_snapshot(q, d);
	d->nomem = false;
	r = q->inner->ops->readdir(q->inner, c, d->inner, 0, plus, snap_fill, d);
	if (r >= 0 && d->nomem)
		r = -ENOMEM;
	if (r < 0)
		return r;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, d->base.ino);
	if (qu && qu->count) {
		const char *ends[2] = { Q_HEAD, Q_TAIL };

		for (int i = 0; i < 2; i++) {
			struct qsynth *s = qns_current_end(q, qu, i == 0);
			struct eddy_entry e = { 0 };

			if (!s)
				continue;
			qns_fill_synth_attr(q, s, &e.attr);
			/* ino 0: listed without an inode for the kernel to keep */
			if (!push_dent(&d->v, &d->n, &d->cap, ends[i], &e.attr,
				       plus ? &e : NULL))
				r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&q->lock);
	d->built = r >= 0;
	return r < 0 ? r : 0;
}

struct plain_fill {
	struct qdir *d;
	eddy_fill_fn fill;
	void *buf;
};

static int plain_fill_cb(void *arg, const char *name, const struct stat *st,
			 const struct eddy_entry *e, uint64_t next)
{
	struct plain_fill *p = arg;
	int r = p->fill(p->buf, name, st, e, next);

	/* Directories the kernel now knows without a lookup through us: look
	 * at them after the listing (never call down from inside it). */
	if (r == 0 && e && e->ino && S_ISDIR(e->attr.st_mode) && strcmp(name, ".") &&
	    strcmp(name, ".."))
		push_dent(&p->d->seen, &p->d->nseen, &p->d->capseen, name, NULL, e);
	return r;
}

static int q_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		     uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf)
{
	struct qfs *q = qfs_of(fs);
	struct qdir *d = (struct qdir *)f;
	int r;

	if (!d->queue) {
		struct plain_fill p = { d, fill, buf };
		bool watch = plus && (!q->opt.root_queues || f->ino == EDDY_ROOT_INO);

		r = q->inner->ops->readdir(q->inner, c, d->inner, cookie, plus,
					   watch ? plain_fill_cb : fill, watch ? (void *)&p : buf);
		for (size_t i = 0; i < d->nseen; i++) {
			qns_note_dir(q, f->ino, d->seen[i].name, d->seen[i].e.ino);
			free(d->seen[i].name);
		}
		d->nseen = 0;
		return r;
	}
	if (cookie == 0 || !d->built) {
		r = build_snapshot(q, c, d, plus);
		if (r < 0)
			return r;
	}
	for (size_t i = cookie; i < d->n; i++) {
		struct qdent *x = &d->v[i];
		struct eddy_entry *e = plus ? &x->e : NULL;

		if (e)
			e->entry_timeout = 0;      /* see qns_uncache_name */
		if (fill(buf, x->name, &x->st, e, i + 1))
			break;
		if (plus)
			x->e.ino = 0;      /* the reference went to the caller */
	}
	return 0;
}

static void q_releasedir(struct eddy_fs *fs, struct eddy_file *f)
{
	struct qfs *q = qfs_of(fs);
	struct qdir *d = (struct qdir *)f;

	drop_snapshot(q, d);
	free(d->seen);
	q->inner->ops->releasedir(q->inner, d->inner);
	free(d);
}

static int q_fsyncdir(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	struct qfs *q = qfs_of(fs);

	return q->inner->ops->fsyncdir(q->inner, ((struct qdir *)f)->inner, datasync);
}

/******************************* xattrs *******************************/

static bool is_sticky_name(const char *n)
{
	return strcmp(n, XA_STICKY) == 0 || strcmp(n, XA_STICKY_EVENTFS) == 0;
}

static bool is_max_name(const char *n)
{
	return strcmp(n, XA_MAX) == 0 || strcmp(n, XA_MAX_EVENTFS) == 0;
}

/* Only the queue's owner (or root) may change its queue attributes. */
static int queue_owner_check(struct qfs *q, const struct eddy_ctx *c, uint64_t ino, bool *isq)
{
	struct queue *qu;
	int r = 0;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, ino);
	*isq = qu != NULL;
	if (qu && c->uid != 0 && c->uid != qu->uid)
		r = -EPERM;
	pthread_mutex_unlock(&q->lock);
	return r;
}

static bool inner_has(struct qfs *q, uint64_t ino, const char *name)
{
	struct eddy_ctx self;

	eddy_ctx_self(&self);
	return q->inner->ops->getxattr(q->inner, &self, ino, name, NULL, 0) >= 0;
}

static int make_queue(struct qfs *q, const struct eddy_ctx *c, uint64_t ino, const char *name,
		      const void *value, size_t size, int flags)
{
	struct stat st;
	double t;
	int r, err;

	if (q->opt.root_queues || ino == EDDY_ROOT_INO)
		return -EPERM;
	r = q->inner->ops->getattr(q->inner, c, ino, NULL, &st, &t);
	if (r < 0)
		return r;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (c->uid != 0 && c->uid != st.st_uid)
		return -EPERM;
	r = q->inner->ops->setxattr(q->inner, c, ino, name, value, size, flags);
	if (r < 0)
		return r;
	pthread_mutex_lock(&q->lock);
	qset_del(&q->plain, ino);
	pthread_mutex_unlock(&q->lock);
	queue_load(q, 0, "", ino, &err);
	return err;
}

static int q_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      const char *name, const void *value, size_t size, int flags)
{
	struct qfs *q = qfs_of(fs);
	long long max = 0;
	bool isq;
	int r;

	if (is_synth(ino))
		return -EPERM;
	if (strcmp(name, XA_OWNER) == 0)
		return -EPERM;
	if (strcmp(name, XA_QUEUE) == 0) {
		pthread_mutex_lock(&q->lock);
		isq = queue_find(q, ino) != NULL;
		pthread_mutex_unlock(&q->lock);
		if (!isq)
			return make_queue(q, c, ino, name, value, size, flags);
	}
	if (!is_sticky_name(name) && !is_max_name(name))
		return q->inner->ops->setxattr(q->inner, c, ino, name, value, size, flags);
	r = queue_owner_check(q, c, ino, &isq);
	if (r < 0 || !isq)
		return r < 0 ? r : q->inner->ops->setxattr(q->inner, c, ino, name, value, size,
							    flags);
	if (is_max_name(name)) {
		char num[32], *end;

		if (size == 0 || size >= sizeof(num))
			return -EINVAL;
		memcpy(num, value, size);
		num[size] = 0;
		max = strtoll(num, &end, 10);
		if (end == num || (*end && *end != '\n') || max < 0)
			return -EINVAL;
	}
	r = q->inner->ops->setxattr(q->inner, c, ino, name, value, size, flags);
	if (r < 0)
		return r;
	pthread_mutex_lock(&q->lock);
	struct queue *qu = queue_find(q, ino);

	if (qu && is_sticky_name(name))
		qu->sticky = true;
	if (qu && is_max_name(name))
		qu->max_messages = max;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static int q_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			 const char *name)
{
	struct qfs *q = qfs_of(fs);
	struct queue *qu;
	bool isq, sticky, reap = false;
	int r;

	if (is_synth(ino))
		return -EPERM;
	if (strcmp(name, XA_OWNER) == 0)
		return -EPERM;
	if (!is_sticky_name(name) && !is_max_name(name) && strcmp(name, XA_QUEUE) != 0)
		return q->inner->ops->removexattr(q->inner, c, ino, name);
	r = queue_owner_check(q, c, ino, &isq);
	if (r < 0)
		return r;
	if (isq && strcmp(name, XA_QUEUE) == 0 && q->opt.root_queues)
		return -EPERM;
	r = q->inner->ops->removexattr(q->inner, c, ino, name);
	if (r < 0 || !isq)
		return r;
	sticky = inner_has(q, ino, XA_STICKY) || inner_has(q, ino, XA_STICKY_EVENTFS);
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, ino);
	if (qu && strcmp(name, XA_QUEUE) == 0) {
		/* a plain directory again: its messages are plain files */
		qquota_charge(q, qu->uid, qu->gid, -1, 0, 0, true);
		queue_remove(q, qu);
		qset_add(&q->plain, ino);
	} else if (qu && is_sticky_name(name)) {
		qu->sticky = sticky;
		reap = !sticky && qu->creator_dead;
	} else if (qu) {
		qu->max_messages = 0;
	}
	pthread_mutex_unlock(&q->lock);
	if (reap)
		qfate_reap(q, ino);   /* its creator died while it was sticky */
	return 0;
}

static ssize_t q_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			  const char *name, void *value, size_t size)
{
	struct qfs *q = qfs_of(fs);

	if (is_synth(ino))
		return -ENODATA;
	return q->inner->ops->getxattr(q->inner, c, ino, name, value, size);
}

static ssize_t q_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			   char *list, size_t size)
{
	struct qfs *q = qfs_of(fs);

	if (is_synth(ino))
		return 0;
	return q->inner->ops->listxattr(q->inner, c, ino, list, size);
}

static int q_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		    struct statvfs *out)
{
	struct qfs *q = qfs_of(fs);

	return q->inner->ops->statfs(q->inner, c, is_synth(ino) ? EDDY_ROOT_INO : ino, out);
}

/******************************* locks *******************************/

static int q_getlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, struct flock *lk)
{
	struct qfs *q = qfs_of(fs);

	if (((struct qfile *)f)->claim)
		return -EINVAL;
	return q->inner->ops->getlk(q->inner, c, inner_file(f), owner, lk);
}

static int q_setlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, const struct flock *lk, bool wait)
{
	struct qfs *q = qfs_of(fs);

	if (((struct qfile *)f)->claim)
		return -EINVAL;
	return q->inner->ops->setlk(q->inner, c, inner_file(f), owner, lk, wait);
}

static int q_flock(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, int op)
{
	struct qfs *q = qfs_of(fs);

	if (((struct qfile *)f)->claim)
		return -EINVAL;
	return q->inner->ops->flock(q->inner, c, inner_file(f), owner, op);
}

static int q_flush_owner(struct eddy_fs *fs, struct eddy_file *f, uint64_t owner)
{
	struct qfs *q = qfs_of(fs);

	if (((struct qfile *)f)->claim)
		return 0;
	return q->inner->ops->flush_owner(q->inner, inner_file(f), owner);
}

/******************************* life *******************************/

static int q_watch_start(struct eddy_fs *fs, const struct eddy_events *ev)
{
	struct qfs *q = qfs_of(fs);

	q->up = *ev;
	atomic_store(&q->have_up, true);
	return q->inner->ops->watch_start ? q->inner->ops->watch_start(q->inner, ev) : 0;
}

static void q_watch_stop(struct eddy_fs *fs)
{
	struct qfs *q = qfs_of(fs);

	if (q->inner->ops->watch_stop)
		q->inner->ops->watch_stop(q->inner);
	atomic_store(&q->have_up, false);
}

static void q_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct qfs *q = qfs_of(fs);
	long long nq;

	pthread_mutex_lock(&q->lock);
	nq = (long long)q->nqueues;
	pthread_mutex_unlock(&q->lock);
	fn(arg, "queue_count", nq);
	fn(arg, "queue_pops", atomic_load(&q->pops));
	fn(arg, "queue_claims", atomic_load(&q->claims));
	fn(arg, "queue_reaps", atomic_load(&q->reaps));
	fn(arg, "queue_quota_refusals", atomic_load(&q->quota_hits));
	qquota_report(q, fn, arg);
	if (q->inner->ops->report)
		q->inner->ops->report(q->inner, fn, arg);
}

/* Frees the layer's own state (not the inner filesystem). */
static void qfs_free(struct qfs *q)
{
	qfate_stop(q);
	pthread_mutex_lock(&q->lock);
	qstate_free(q);
	pthread_mutex_unlock(&q->lock);
	qquota_free(q);
	if (q->epfd >= 0)
		close(q->epfd);
	if (q->stopfd >= 0)
		close(q->stopfd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void q_destroy(struct eddy_fs *fs)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_fs *inner = q->inner;

	qfs_free(q);
	inner->ops->destroy(inner);
}

static void fill_ops(struct qfs *q)
{
	struct eddy_fs_ops *o = &q->ops;
	const struct eddy_fs_ops *in = q->inner->ops;

	qns_fill_ops(o);
	o->name = "queue";
	o->destroy = q_destroy;
	o->report = q_report;
	o->statfs = q_statfs;
	o->open = q_open;
	o->create = q_create;
	o->read = q_read;
	o->write = q_write;
	/* no flush at all when the inner filesystem needs none: a round trip
	 * less per close (per pop) */
	o->flush = in->flush ? q_flush : NULL;
	o->fsync = q_fsync;
	o->release = q_release;
	o->fallocate = q_fallocate;
	o->copy_file_range = q_copy_file_range;
	o->lseek = q_lseek;
	o->opendir = q_opendir;
	o->readdir = q_readdir;
	o->fsyncdir = q_fsyncdir;
	o->releasedir = q_releasedir;
	o->setxattr = q_setxattr;
	o->getxattr = q_getxattr;
	o->listxattr = q_listxattr;
	o->removexattr = q_removexattr;
	o->watch_start = q_watch_start;
	o->watch_stop = q_watch_stop;
	o->poll = q_poll;
	if (in->getlk && in->setlk && in->flock && in->flush_owner) {
		o->getlk = q_getlk;
		o->setlk = q_setlk;
		o->flock = q_flock;
		o->flush_owner = q_flush_owner;
	}
}

/* --queues: load every queue of the root; reap those whose creator died
** while nobody served them. */
static int load_root(struct qfs *q, char *err, size_t errlen)
{
	struct qchild *v;
	size_t n;
	int r = qload_children(q, EDDY_ROOT_INO, &v, &n), e;

	if (r < 0) {
		snprintf(err, errlen, "cannot list the root: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		struct queue *qu;
		bool dead;

		if (!S_ISDIR(v[i].st.st_mode))
			continue;
		qu = queue_load(q, EDDY_ROOT_INO, v[i].name, v[i].ino, &e);
		if (!qu)
			continue;
		pthread_mutex_lock(&q->lock);
		dead = qu->creator_dead && !qu->sticky;
		pthread_mutex_unlock(&q->lock);
		if (dead)
			qfate_reap(q, v[i].ino);
	}
	qload_children_free(q, v, n);
	return 0;
}

int queue_fs_open(struct eddy_fs *inner, const struct queue_options *o, struct eddy_fs **out,
		  char *err, size_t errlen)
{
	struct qfs *q = calloc(1, sizeof(*q));
	int r;

	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->inner = inner;
	eddy_ctx_self(&q->self);
	q->opt = *o;
	q->opt.config = NULL;
	q->epfd = q->stopfd = -1;
	pthread_mutex_init(&q->lock, NULL);
	fill_ops(q);
	q->base.ops = &q->ops;
	q->base.flags = (inner->flags & ~EDDY_FS_STATELESS_DIRS) | EDDY_FS_KERNEL_PERMISSIONS;
	r = qstate_init(q);
	if (r < 0)
		snprintf(err, errlen, "out of memory");
	if (r == 0)
		r = qquota_load(q, o->config, err, errlen);
	if (r == 0) {
		r = qfate_start(q);
		if (r < 0)
			snprintf(err, errlen, "cannot start the reaper: %s", strerror(-r));
	}
	if (r == 0 && o->open_root) {
		struct eddy_ctx self;
		struct stat in = { .st_mode = S_IFDIR | 01777 }, st;
		double t;

		eddy_ctx_self(&self);
		r = inner->ops->setattr(inner, &self, EDDY_ROOT_INO, NULL, &in, EDDY_SET_MODE, &st,
					&t);
		if (r < 0)
			snprintf(err, errlen, "cannot open up the root: %s", strerror(-r));
	}
	if (r == 0 && o->root_queues)
		r = load_root(q, err, errlen);
	if (r < 0) {
		qfs_free(q);
		return r;
	}
	*out = &q->base;
	return 0;
}
