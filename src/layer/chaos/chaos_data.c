/*
** chaos_data.c -- the chaos client's unpublished data: writes and
** truncates stay in this client for write-delay before the truth (the
** inner filesystem) gets them, so other clients see them late while this
** client reads its own data at once.
**
** Invariants:
**   - The client's view of a file = the truth + its pending changes applied
**     in order (reads, sizes, mtimes). Re-applying changes the truth already
**     has gives the same bytes, and cnode.io makes a read and the
**     publication of a change to the same inode exclusive anyway.
**   - Changes are published in the order the client made them (one FIFO,
**     never one before an earlier one), by one publisher thread, or at once
**     by fsync (and everything before it), or when pending data passes
**     CHAOS_PENDING_MAX (memory pressure, as on NFS).
**   - A publication that fails is told at the next flush (close) or fsync
**     of the handle the write came through (deferred errors, as on NFS).
**   - The inner handle stays open until its last change is published.
**   - At unmount everything pending is published.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos_int.h"

#define CHAOS_PENDING_MAX ((size_t)256 << 20)

struct cfile *cfile_new(struct eddy_file *inner, uint64_t ino, int flags)
{
	struct cfile *f = calloc(1, sizeof(*f));

	if (f) {
		f->base.ino = ino;
		f->inner = inner;
		f->flags = flags;
		f->refs = 1;
	}
	return f;
}

/* Drops one reference to F; the last one releases the inner handle. */
void cfile_put(struct cfs *s, struct cfile *f)
{
	struct cnode *n;
	uint64_t iref = 0;
	bool last;

	uint64_t sparent = 0;
	char *sname = NULL;
	struct eddy_ctx sctx;
	bool silly = false;

	pthread_mutex_lock(&s->lock);
	last = --f->refs == 0;
	if (last && (n = cnode_find(s, f->base.ino))) {
		n->opens--;
		silly = chaos_nfs_silly_take(n, &sparent, &sname, &sctx);
		iref = cnode_release_if_unused(s, n);
	}
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	s->inner->ops->release(s->inner, f->inner);
	if (silly)
		chaos_nfs_silly_done(s, sparent, sname, &sctx);
	cnode_forget_inner(s, f->base.ino, iref);
	free(f);
}

/****************************** the view ******************************/

/* Size after the pending changes of N; called with s->lock held. */
static off_t view_size(const struct cnode *n, off_t size, struct timespec *mtime)
{
	const struct cpend *p;

	for (p = n->pfirst; p; p = p->inext) {
		if (p->kind == CP_WRITE) {
			if (p->off + (off_t)p->len > size)
				size = p->off + (off_t)p->len;
		} else if (p->kind == CP_TRUNCATE) {
			size = p->off;
		} else {
			continue;
		}
		*mtime = p->made;
	}
	return size;
}

void chaos_view_attr(struct cfs *s, uint64_t ino, struct stat *st)
{
	struct cnode *n;

	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);
	if (n && n->pfirst && S_ISREG(st->st_mode)) {
		struct timespec m = st->st_mtim;

		st->st_size = view_size(n, st->st_size, &m);
		if (m.tv_sec != st->st_mtim.tv_sec || m.tv_nsec != st->st_mtim.tv_nsec) {
			st->st_mtim = m;
			st->st_ctim = m;
		}
		if (st->st_blocks < (st->st_size + 511) / 512)
			st->st_blocks = (st->st_size + 511) / 512;
	}
	if (n && n->pfirst)
		chaos_view_setattr(n, st);
	if (n && n->nlink_delta) {
		long links = (long)st->st_nlink + n->nlink_delta;

		st->st_nlink = links > 0 ? (nlink_t)links : 0;
	}
	pthread_mutex_unlock(&s->lock);
	chaos_nfs_view_times(s, st);
}

/* Applies N's pending changes to BUF, which holds GOT bytes of the truth
** read at OFF from a file of size SIZE; returns the view's byte count.
** Called with s->lock held. */
static size_t apply_pending(const struct cnode *n, char *buf, size_t want, off_t off,
			    size_t got, off_t size)
{
	const struct cpend *p;
	off_t end = off + (off_t)want;

	/* What the truth has beyond what was read is zeros (a hole). */
	if (got < want)
		memset(buf + got, 0, want - got);
	for (p = n->pfirst; p; p = p->inext) {
		if (p->kind == CP_SETATTR)
			continue;
		if (p->kind == CP_TRUNCATE) {
			if (p->off < end && p->off > off)
				memset(buf + (p->off - off), 0, (size_t)(end - p->off));
			else if (p->off <= off)
				memset(buf, 0, want);
			size = p->off;
			continue;
		}
		if (p->off + (off_t)p->len > size)
			size = p->off + (off_t)p->len;
		if (p->off < end && p->off + (off_t)p->len > off) {
			off_t from = p->off > off ? p->off : off;
			off_t to = p->off + (off_t)p->len < end ? p->off + (off_t)p->len : end;

			memcpy(buf + (from - off), p->data + (from - p->off), (size_t)(to - from));
		}
	}
	if (size <= off)
		return 0;
	return size - off < (off_t)want ? (size_t)(size - off) : want;
}

ssize_t c_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *cf = (struct cfile *)f;
	struct cnode *n;
	struct eddy_ctx c;
	struct stat st;
	ssize_t got;
	double t;
	int r;

	if ((r = chaos_drop(s, "read", f->ino)) < 0 || (r = chaos_nfs_stale(s, cf)) < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, f->ino);
	if (!n || !n->pfirst) {
		pthread_mutex_unlock(&s->lock);
		return s->inner->ops->read(s->inner, cf->inner, buf, size, off);
	}
	pthread_mutex_unlock(&s->lock);
	/* n stays: this open file holds it. */
	pthread_mutex_lock(&n->io);
	eddy_ctx_self(&c);
	r = s->inner->ops->getattr(s->inner, &c, f->ino, cf->inner, &st, &t);
	got = r < 0 ? r : s->inner->ops->read(s->inner, cf->inner, buf, size, off);
	if (got >= 0) {
		pthread_mutex_lock(&s->lock);
		got = (ssize_t)apply_pending(n, buf, size, off, (size_t)got, st.st_size);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&n->io);
	return got;
}

/****************************** queueing ******************************/

static void monotonic_due(struct cfs *s, struct cpend *p, long delay_ms)
{
	p->due = chaos_now() + (double)delay_ms / 1000.0;
	/* never before an earlier change */
	if (s->plast && s->plast->due > p->due)
		p->due = s->plast->due;
}

/* Queues P (takes it over), due DELAY_MS from now but never before an
** earlier change; N: the inode whose view P changes (NULL for names).
** Called with s->lock held. */
void chaos_enqueue(struct cfs *s, struct cnode *n, struct cpend *p, long delay_ms)
{
	monotonic_due(s, p, delay_ms);
	if (s->plast)
		s->plast->next = p;
	else
		s->pfirst = p;
	s->plast = p;
	s->npend++;
	s->pend_bytes += p->len;
	if (n) {
		if (n->plast)
			n->plast->inext = p;
		else
			n->pfirst = p;
		n->plast = p;
		n->npend++;
	}
	if (p->f)
		p->f->refs++;
	s->n_delayed++;
	pthread_cond_signal(&s->pend_cond);
}

/* Extends the client's last change when WRITE continues it (same handle,
** contiguous): sequential writes stay one change. s->lock held. */
static bool coalesce(struct cfs *s, struct cnode *n, struct cfile *f, const void *buf,
		     size_t size, off_t off)
{
	struct cpend *p = s->plast;
	char *d;

	if (!p || p != n->plast || p->publishing || p->kind != CP_WRITE || p->f != f ||
	    p->off + (off_t)p->len != off || p->len + size > ((size_t)4 << 20))
		return false;
	d = realloc(p->data, p->len + size);
	if (!d)
		return false;
	memcpy(d + p->len, buf, size);
	p->data = d;
	p->len += size;
	s->pend_bytes += size;
	clock_gettime(CLOCK_REALTIME, &p->made);
	return true;
}

/* Where an O_APPEND write goes: the end of file as this client knows it —
** the truth's, or (nfs profile, P1) the size it has cached, so that
** appenders on two clients overwrite each other as on NFS. */
static int appending_size(struct cfs *s, const struct eddy_ctx *c, struct cfile *cf,
			  struct stat *st)
{
	struct cnode *n;
	bool cached = false;
	double t;

	if (s->nfs.on) {
		pthread_mutex_lock(&s->lock);
		n = cnode_find(s, cf->base.ino);
		if (n && chaos_attr_fresh(s, n)) {
			*st = n->attr;
			cached = true;
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (!cached)
		return s->inner->ops->getattr(s->inner, c, cf->base.ino, cf->inner, st, &t);
	return 0;
}

ssize_t c_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		const void *buf, size_t size, off_t off)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *cf = (struct cfile *)f;
	struct cnode *n;
	struct cpend *p;
	bool over;
	int r;

	if ((r = chaos_drop(s, "write", f->ino)) < 0 || (r = chaos_nfs_stale(s, cf)) < 0)
		return r;
	if (k_wdelay(s) <= 0) {
		ssize_t w = s->inner->ops->write(s->inner, c, cf->inner, buf, size, off);

		chaos_attr_drop(s, f->ino);
		return w;
	}
	if (cf->flags & O_APPEND) {
		struct stat st;
		double t;

		r = appending_size(s, c, cf, &st);
		if (r < 0)
			return r;
		(void)t;
		chaos_view_attr(s, f->ino, &st);
		off = st.st_size;
	}
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, f->ino);
	if (n && coalesce(s, n, cf, buf, size, off)) {
		over = s->pend_bytes > CHAOS_PENDING_MAX;
		pthread_mutex_unlock(&s->lock);
		goto done;
	}
	pthread_mutex_unlock(&s->lock);
	p = calloc(1, sizeof(*p));
	if (!p || !(p->data = malloc(size ? size : 1))) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->data, buf, size);
	p->kind = CP_WRITE;
	p->ino = f->ino;
	p->f = cf;
	p->off = off;
	p->len = size;
	p->ctx = *c;
	clock_gettime(CLOCK_REALTIME, &p->made);
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, f->ino);
	chaos_enqueue(s, n, p, k_wdelay(s));
	over = s->pend_bytes > CHAOS_PENDING_MAX;
	pthread_mutex_unlock(&s->lock);
	chaos_decision(s, "write", f->ino, NULL, "delay", (double)k_wdelay(s));
done:
	if (over)
		chaos_publish_through(s, f->ino);
	return (ssize_t)size;
}

int c_truncate_delayed(struct cfs *s, const struct eddy_ctx *c, uint64_t ino, struct cfile *f,
		       off_t size)
{
	struct cnode *n;
	struct cpend *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->kind = CP_TRUNCATE;
	p->ino = ino;
	p->f = f;
	p->off = size;
	p->ctx = *c;
	clock_gettime(CLOCK_REALTIME, &p->made);
	pthread_mutex_lock(&s->lock);
	n = cnode_get(s, ino);
	if (!n) {
		pthread_mutex_unlock(&s->lock);
		free(p);
		return -ENOMEM;
	}
	chaos_enqueue(s, n, p, k_wdelay(s));
	pthread_mutex_unlock(&s->lock);
	chaos_decision(s, "truncate", ino, NULL, "delay", (double)k_wdelay(s));
	return 0;
}

/****************************** publishing ******************************/

/* Applies P to the truth; returns 0 or a negative errno. */
static int apply(struct cfs *s, struct cpend *p)
{
	if (p->kind != CP_WRITE && p->kind != CP_TRUNCATE)
		return chaos_ns_apply(s, p);
	if (p->kind == CP_WRITE) {
		size_t done = 0;

		while (done < p->len) {
			ssize_t w = s->inner->ops->write(s->inner, &p->ctx, p->f->inner,
							 p->data + done, p->len - done,
							 p->off + (off_t)done);

			if (w < 0)
				return (int)w;
			if (w == 0)
				return -EIO;
			done += (size_t)w;
		}
		return 0;
	} else {
		struct stat in, out;
		double t;

		memset(&in, 0, sizeof(in));
		in.st_size = p->off;
		return s->inner->ops->setattr(s->inner, &p->ctx, p->ino,
					      p->f ? p->f->inner : NULL, &in, EDDY_SET_SIZE,
					      &out, &t);
	}
}

static const char *const kind_names[] = {
	[CP_WRITE] = "write", [CP_TRUNCATE] = "truncate", [CP_SETATTR] = "setattr",
	[CP_LINKIN] = "create", [CP_LINK] = "link", [CP_UNLINK] = "unlink",
	[CP_RMDIR] = "rmdir", [CP_RENAME] = "rename",
};

/* Changes to one inode's view sit in its list too (cnode.pfirst). */
static bool in_inode_list(const struct cpend *p)
{
	return p->kind == CP_WRITE || p->kind == CP_TRUNCATE || p->kind == CP_SETATTR;
}

/* What becomes of the oldest change. */
enum pub_mode {
	PUB_APPLY,          /* published */
	PUB_DISCARD,        /* lost (drop-unsynced, crash) */
	PUB_TORN,           /* lost, but a write leaves a random prefix behind */
};

/* A write torn by a crash: a random prefix of it reached the truth. */
static int apply_torn(struct cfs *s, struct cpend *p)
{
	size_t keep;
	int r = 0;

	if (p->kind != CP_WRITE || !p->len)
		return 0;
	keep = (size_t)chaos_random_below(s, p->len);
	if (keep) {
		size_t full = p->len;

		p->len = keep;
		r = apply(s, p);
		p->len = full;
	}
	chaos_decision(s, "write", p->ino, NULL, "torn", (double)keep);
	return r;
}

/* Publishes (or discards, MODE) the client's oldest change if it is due
** (or FORCE): 1 if there was one, 0 if none. Called with s->publish held. */
static int publish_one(struct cfs *s, bool force, enum pub_mode mode)
{
	struct cnode *n = NULL;
	struct cpend *p;
	uint64_t iref;
	int r;

	pthread_mutex_lock(&s->lock);
	p = s->pfirst;
	if (!p || (!force && p->due > chaos_now())) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (in_inode_list(p))
		n = cnode_find(s, p->ino);
	p->publishing = true;
	pthread_mutex_unlock(&s->lock);

	if (n)
		pthread_mutex_lock(&n->io);
	if (mode == PUB_APPLY)
		r = apply(s, p);
	else
		r = mode == PUB_TORN ? apply_torn(s, p) : 0;
	if (mode != PUB_APPLY && p->kind == CP_LINKIN)
		chaos_stage_remove(s, p);
	pthread_mutex_lock(&s->lock);
	s->pfirst = p->next;
	if (!s->pfirst)
		s->plast = NULL;
	s->npend--;
	s->pend_bytes -= p->len;
	if (n) {
		n->pfirst = p->inext;
		if (!n->pfirst)
			n->plast = NULL;
		n->npend--;
		n->attr_at = CHAOS_STALE;        /* our own change is the truth now */
	}
	if (mode != PUB_APPLY) {
		s->n_lost++;
	} else if (r < 0) {
		s->n_publish_failed++;
		if (p->f && !p->f->pub_err)
			p->f->pub_err = r;
	} else {
		s->n_published++;
	}
	pthread_mutex_unlock(&s->lock);
	if (n)
		pthread_mutex_unlock(&n->io);
	if (r < 0 && mode == PUB_APPLY)
		chaos_logf(s, "publishing a %s failed: %s (the change is lost)",
			   kind_names[p->kind], strerror(-r));
	chaos_decision(s, kind_names[p->kind], p->ino ? p->ino : p->parent, p->name,
		       mode != PUB_APPLY ? "lost" : r < 0 ? "publish-failed" : "published", -1);
	if (!in_inode_list(p)) {
		chaos_ns_published(s, p, r);
	} else if (p->f) {
		cfile_put(s, p->f);     /* the last one lets go of n too */
	} else {
		pthread_mutex_lock(&s->lock);
		iref = cnode_release_if_unused(s, n);
		pthread_mutex_unlock(&s->lock);
		cnode_forget_inner(s, p->ino, iref);
	}
	free(p->data);
	free(p->name);
	free(p->newname);
	free(p);
	return 1;
}

/* Publishes every change up to and including INO's last one (all of them
** if INO is 0): fsync, memory pressure, unmount. */
int chaos_publish_through(struct cfs *s, uint64_t ino)
{
	struct cpend *last = NULL, *p;

	pthread_mutex_lock(&s->publish);
	pthread_mutex_lock(&s->lock);
	for (p = s->pfirst; p; p = p->next)
		if (!ino || p->ino == ino || p->target == ino)
			last = p;
	pthread_mutex_unlock(&s->lock);
	while (last) {
		bool was_last;

		pthread_mutex_lock(&s->lock);
		was_last = s->pfirst == last;
		pthread_mutex_unlock(&s->lock);
		if (!publish_one(s, true, PUB_APPLY) || was_last)
			break;
	}
	pthread_mutex_unlock(&s->publish);
	return 0;
}

/* Loses every unpublished change of this client (a client crash, or
** drop-unsynced); with TORN a random prefix of each pending write reaches
** the truth. Returns how many changes were lost. */
long chaos_lose_unpublished(struct cfs *s, bool torn)
{
	long lost = 0;

	pthread_mutex_lock(&s->publish);
	while (publish_one(s, true, torn ? PUB_TORN : PUB_DISCARD))
		lost++;
	pthread_mutex_unlock(&s->publish);
	chaos_logf(s, "lost %ld unpublished change%s%s", lost, lost == 1 ? "" : "s",
		   torn ? " (writes torn)" : "");
	return lost;
}

static void *publisher_main(void *arg)
{
	struct cfs *s = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		double now = chaos_now();

		if (!s->pfirst) {
			pthread_cond_wait(&s->pend_cond, &s->lock);
			continue;
		}
		if (s->pfirst->due > now) {
			struct timespec ts;
			double until = s->pfirst->due - now;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)until;
			ts.tv_nsec += (long)((until - (double)(time_t)until) * 1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&s->pend_cond, &s->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&s->publish);
		while (publish_one(s, false, PUB_APPLY))
			;
		pthread_mutex_unlock(&s->publish);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int chaos_publisher_start(struct cfs *s)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->pend_cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&s->publisher, NULL, publisher_main, s);
	if (r != 0)
		return -r;
	s->publisher_running = true;
	return 0;
}

void chaos_publisher_stop(struct cfs *s)
{
	if (s->publisher_running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->pend_cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->publisher, NULL);
		s->publisher_running = false;
	}
	chaos_publish_through(s, 0);
}

/****************************** close, fsync ******************************/

static int take_pub_err(struct cfs *s, struct cfile *f)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = f->pub_err;
	f->pub_err = 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int c_flush(struct eddy_fs *fs, struct eddy_file *f)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *cf = (struct cfile *)f;
	int r = 0, r2;

	/* nfs: close writes back what this client holds of the file */
	if (s->nfs.on)
		chaos_publish_through(s, f->ino);
	if (s->inner->ops->flush)
		r = s->inner->ops->flush(s->inner, cf->inner);
	if ((r2 = take_pub_err(s, cf)) < 0)
		return r2;
	if (r < 0)
		return r;
	return chaos_drop(s, "flush", f->ino);
}

int c_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *cf = (struct cfile *)f;
	int r, r2;

	if ((r = chaos_drop(s, "fsync", f->ino)) < 0)
		return r;
	chaos_publish_through(s, f->ino);
	r = s->inner->ops->fsync(s->inner, cf->inner, datasync);
	r2 = take_pub_err(s, cf);
	return r2 < 0 ? r2 : r;
}

void c_release(struct eddy_fs *fs, struct eddy_file *f)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *cf = (struct cfile *)f;

	pthread_mutex_lock(&s->lock);
	cf->released = true;
	pthread_mutex_unlock(&s->lock);
	cfile_put(s, cf);
}
