/*
** queue_ns.c -- the queue layer's namespace operations: what may be
** created where, head/tail/.claim lookups, pops, and the rename rules.
**
** Rules (reference/queue-semantics.md, numbered statements):
**   - --queues root: only directories (queues); anything else EPERM (1);
**     renaming anything in it EPERM (28).
**   - In a queue: no subdirectory (EPERM, 2); "head"/"tail" are reserved
**     (EEXIST while they exist, EPERM while the queue is empty, 4); ".claim"
**     is reserved (EEXIST); regular files are messages, appended in
**     arrival order (create or link, 5); other objects are allowed and are
**     no messages (7); renaming head/tail EPERM, messages EXDEV (28).
**   - unlink(head|tail) pops the oldest|newest message (8, 9); unlinking a
**     message by name takes it out of the deque (11); a pop racing another
**     pop or a claim of the same message loses with ENOENT (13, 15).
**   - head/tail are symlinks owned by the queue owner, with timeouts 0 and
**     a fresh inode number per target, so the kernel never serves a stale
**     target from its symlink cache (6).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

#define CLAIM_TIMEOUT 3600.0

static bool is_head(const char *n)
{
	return strcmp(n, Q_HEAD) == 0;
}

static bool is_tail(const char *n)
{
	return strcmp(n, Q_TAIL) == 0;
}

static bool is_claim(const char *n)
{
	return strcmp(n, Q_CLAIM) == 0;
}

void qns_up_deleted(struct qfs *q, uint64_t parent, const char *name, uint64_t child)
{
	if (q->have_up && q->up.entry_deleted)
		q->up.entry_deleted(q->up.up, parent, name, child);
}

/*
** A message NAME (inode CHILD) of queue QINO was popped through
** unlink(head|tail). The kernel itself dropped the head/tail dentry and
** marked the queue's attributes stale; the message's own name is never
** cached (entry timeout 0), so reporting it up is only about resources:
** the kernel keeps the popped name's dentry and inode (and so the inner
** inode) until told. Each report also marks the queue's attributes stale,
** which costs the next path walk in the queue a GETATTR (default
** permissions): pops are reported in batches of Q_GONE_BATCH, and at once
** when the queue runs empty. At most Q_GONE_BATCH - 1 popped messages per
** queue wait to be reported; removing the queue drops them all.
*/
void qns_up_popped(struct qfs *q, uint64_t qino, const char *name, uint64_t child)
{
	struct qgone batch[Q_GONE_BATCH];
	struct queue *qu;
	unsigned n = 0;
	bool kept = false;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (qu && !qu->reaping) {
		if (!qu->gone)
			qu->gone = calloc(Q_GONE_BATCH, sizeof(*qu->gone));
		if (qu->gone && (qu->gone[qu->ngone].name = strdup(name))) {
			qu->gone[qu->ngone++].ino = child;
			kept = true;
		}
		if (qu->ngone == Q_GONE_BATCH || (qu->ngone && qu->count == 0)) {
			n = qu->ngone;
			memcpy(batch, qu->gone, n * sizeof(*batch));
			qu->ngone = 0;
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (!kept)
		qns_up_deleted(q, qino, name, child);
	for (unsigned i = 0; i < n; i++) {
		qns_up_deleted(q, qino, batch[i].name, batch[i].ino);
		free(batch[i].name);
	}
}

void qns_up_ready(struct qfs *q, uint64_t ino)
{
	if (q->have_up && q->up.ready)
		q->up.ready(q->up.up, ino);
}

void qns_fill_synth_attr(struct qfs *q, const struct qsynth *s, struct stat *st)
{
	struct queue *qu = queue_find(q, s->qino);
	mode_t qm = qu ? qu->mode : 0700;

	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = s->made;
	if (qu) {
		st->st_uid = qu->uid;
		st->st_gid = qu->gid;
	}
	if (s->kind == QS_CLAIM) {
		mode_t m = 0;

		/* Claiming reads and removes: readable by whoever may both
		 * read and write the queue. */
		if ((qm & S_IRUSR) && (qm & S_IWUSR))
			m |= S_IRUSR;
		if ((qm & S_IRGRP) && (qm & S_IWGRP))
			m |= S_IRGRP;
		if ((qm & S_IROTH) && (qm & S_IWOTH))
			m |= S_IROTH;
		st->st_mode = S_IFREG | m;
	} else {
		st->st_mode = S_IFLNK | 0777;
		st->st_size = s->target ? (off_t)strlen(s->target) : 0;
	}
}

static void synth_entry(struct qfs *q, struct qsynth *s, struct eddy_entry *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = s->ino;
	qns_fill_synth_attr(q, s, &out->attr);
	if (s->kind == QS_CLAIM) {
		out->entry_timeout = CLAIM_TIMEOUT;
		out->attr_timeout = 1.0;
	}
	s->refs++;
}

/* The head or tail inode of QU now, minted if the target changed. */
struct qsynth *qns_current_end(struct qfs *q, struct queue *qu, bool head)
{
	struct qmsg *m = head ? qu->first : qu->last;
	struct qsynth **cur = head ? &qu->head_syn : &qu->tail_syn, *s;

	if (!m)
		return NULL;
	if (*cur && (*cur)->target_ino == m->ino && strcmp((*cur)->target, m->name) == 0)
		return *cur;
	s = synth_new(q, head ? QS_HEAD : QS_TAIL, qu->ino);
	if (!s)
		return NULL;
	s->target = strdup(m->name);
	if (!s->target) {
		synth_drop(q, s);
		return NULL;
	}
	s->target_ino = m->ino;
	s->current = true;
	if (*cur)
		synth_drop(q, *cur);
	*cur = s;
	return s;
}

/* A directory seen for the first time: a queue of a --queues root that
** appeared in the inner filesystem, or (xattr mode) one marked by xattr. */
void qns_note_dir(struct qfs *q, uint64_t parent, const char *name, uint64_t ino)
{
	bool known;
	int err;

	if (q->opt.root_queues && parent != EDDY_ROOT_INO)
		return;
	pthread_mutex_lock(&q->lock);
	known = queue_find(q, ino) || qset_has(&q->plain, ino);
	pthread_mutex_unlock(&q->lock);
	if (!known)
		queue_load(q, parent, name, ino, &err);
}

/* Names in a queue are never cached: a pop through head or a claim removes
** a message under another name, and the invalidation the notifier sends
** for it is asynchronous. */
void qns_uncache_name(struct qfs *q, uint64_t parent, struct eddy_entry *e)
{
	bool isq;

	pthread_mutex_lock(&q->lock);
	isq = queue_find(q, parent) != NULL;
	pthread_mutex_unlock(&q->lock);
	if (isq && e->ino)
		e->entry_timeout = 0;
}

static int q_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, struct eddy_entry *out)
{
	struct qfs *q = qfs_of(fs);
	struct queue *qu;
	int r;

	if (is_synth(parent))
		return -ENOTDIR;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, parent);
	if (qu && (is_head(name) || is_tail(name) || is_claim(name))) {
		struct qsynth *s = is_claim(name) ? synth_find(q, qu->claim_ino) :
				   qns_current_end(q, qu, is_head(name));

		if (s)
			synth_entry(q, s, out);
		else
			memset(out, 0, sizeof(*out));   /* absent, not cached */
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	pthread_mutex_unlock(&q->lock);
	r = q->inner->ops->lookup(q->inner, c, parent, name, out);
	if (r == 0 && out->ino && S_ISDIR(out->attr.st_mode))
		qns_note_dir(q, parent, name, out->ino);
	else if (r == 0 && qu && out->ino)
		out->entry_timeout = 0;     /* see qns_uncache_name */
	return r;
}

static void q_forget(struct eddy_fs *fs, uint64_t ino, uint64_t n)
{
	struct qfs *q = qfs_of(fs);

	if (is_synth(ino)) {
		pthread_mutex_lock(&q->lock);
		synth_forget(q, ino, n);
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->inner->ops->forget(q->inner, ino, n);
}

/* Checks NAME for a new object in queue QU (lock held). */
static int reserved(struct queue *qu, const char *name)
{
	if (is_claim(name))
		return -EEXIST;
	if (is_head(name) || is_tail(name))
		return qu->count ? -EEXIST : -EPERM;
	return 0;
}

/*
** Admission of a new message NAME into queue QINO, for an inode owned by
** UID/GID; LINKED_INO: the existing inode a link() adds. Reserves a place
** (per-queue limit) and, for an inode not yet in any queue, charges its
** owner one message (*CHARGED). Returns 0, 1 when QINO is no queue, or a
** negative errno (nothing reserved or charged).
*/
static int admit(struct qfs *q, uint64_t qino, const char *name, uid_t uid, gid_t gid,
		 uint64_t linked_ino, bool *charged)
{
	struct queue *qu;
	long long lim;
	int r;

	*charged = false;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (!qu) {
		pthread_mutex_unlock(&q->lock);
		return 1;
	}
	r = qu->reaping ? -ENOENT : reserved(qu, name);
	lim = qquota_per_queue(q, qu);
	if (!r && lim >= 0 && (long long)(qu->count + qu->pending) + 1 > lim) {
		atomic_fetch_add(&q->quota_hits, 1);
		r = -EDQUOT;
	}
	if (!r && !(linked_ino && qinode_find(q, linked_ino))) {
		r = qquota_charge(q, uid, gid, 0, 1, 0, false);
		*charged = r == 0;
	}
	if (!r)
		qu->pending++;
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* Undoes admit() after the inner operation failed. */
static void admit_undo(struct qfs *q, uint64_t qino, uid_t uid, gid_t gid, bool charged)
{
	struct queue *qu;

	pthread_mutex_lock(&q->lock);
	if ((qu = queue_find(q, qino)) && qu->pending)
		qu->pending--;
	if (charged)
		qquota_charge(q, uid, gid, 0, -1, 0, true);
	pthread_mutex_unlock(&q->lock);
}

/* After the inner create/mknod/link of NAME (inode INO, attributes ST) in
** queue QINO: append it and wake claimers. WRITER: an open file writes it. */
bool qns_arrived(struct qfs *q, uint64_t qino, const char *name, uint64_t ino,
		 const struct stat *st, bool charged, bool writer, bool pinned)
{
	bool counted = false;

	struct queue *qu;
	struct qinode *qi;
	uint64_t claim;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (qu && qu->pending)
		qu->pending--;
	if (!qu || queue_msg_find(qu, name)) {
		/* an existing member opened again, or the queue is gone */
		if (charged)
			qquota_charge(q, st->st_uid, st->st_gid, 0, -1, 0, true);
		if (writer && (qi = qinode_find(q, ino))) {
			qi->writers++;
			counted = true;
		}
		if (pinned)
			q->inner->ops->forget(q->inner, ino, 1);
		pthread_mutex_unlock(&q->lock);
		return counted;
	}
	qi = qinode_find(q, ino);
	if (qi) {
		qi->links++;
		if (pinned)
			q->inner->ops->forget(q->inner, ino, 1);
	} else if ((qi = qinode_get(q, ino, st->st_uid, st->st_gid))) {
		qi->qino = qino;
		qi->pinned = pinned;
		if (!charged)          /* linked in from outside any queue */
			qquota_charge(q, qi->uid, qi->gid, 0, 1, 0, true);
		qquota_charge(q, qi->uid, qi->gid, 0, 0, st->st_size, true);
		qi->charged = st->st_size;
	}
	if (qi && writer) {
		qi->writers++;
		counted = true;
	}
	if (!qi && pinned)
		q->inner->ops->forget(q->inner, ino, 1);
	if (!queue_msg_append(qu, ino, name) && qi) {
		if (counted)
			qi->writers--;
		counted = false;
		qinode_put_link(q, qi);
	}
	claim = qu->claim_ino;
	pthread_mutex_unlock(&q->lock);
	qns_up_ready(q, claim);
	return counted;
}

/* One more inner reference on PARENT/NAME (inode INO) for the layer. */
static bool pin(struct qfs *q, uint64_t parent, const char *name, uint64_t ino)
{
	struct eddy_entry e;

	if (q->inner->ops->lookup(q->inner, &q->self, parent, name, &e) < 0 || !e.ino)
		return false;
	if (e.ino == ino)
		return true;
	q->inner->ops->forget(q->inner, e.ino, 1);
	return false;
}

static bool root_only_dirs(struct qfs *q, uint64_t parent)
{
	return q->opt.root_queues && parent == EDDY_ROOT_INO;
}

static int q_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	struct qfs *q = qfs_of(fs);
	bool charged = false;
	int a = 1, r;

	if (is_synth(parent))
		return -ENOTDIR;
	if (root_only_dirs(q, parent))
		return -EPERM;
	if (S_ISREG(mode)) {
		a = admit(q, parent, name, c->uid, c->gid, 0, &charged);
		if (a < 0)
			return a;
	} else {
		pthread_mutex_lock(&q->lock);
		struct queue *qu = queue_find(q, parent);

		r = qu ? reserved(qu, name) : 0;
		pthread_mutex_unlock(&q->lock);
		if (r)
			return r;
	}
	r = q->inner->ops->mknod(q->inner, c, parent, name, mode, rdev, out);
	if (r == 0)
		qns_uncache_name(q, parent, out);
	if (a == 0) {
		if (r < 0)
			admit_undo(q, parent, c->uid, c->gid, charged);
		else
			qns_arrived(q, parent, name, out->ino, &out->attr, charged, false,
				    pin(q, parent, name, out->ino));
	}
	return r;
}

/*
** A message opened write-only bypasses the page cache (direct I/O): the
** kernel then sends no GETXATTR security.capability before each write (it
** does for cached writes, lacking SB_NOSEC without KILLPRIV_V2 in libfuse
** 3.14): one round trip less per write. A write-only descriptor can never
** be mmapped, and a partial page written through the cache is not kept
** for readers anyway, so nothing else changes for small messages.
*/
void qns_write_only(struct eddy_open *how)
{
	how->direct_io = true;
	how->keep_cache = false;
}

/* Creates the inner file NAME in PARENT and admits it as a message. */
int qns_create(struct qfs *q, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct eddy_entry *out, struct eddy_file **fp,
	       struct eddy_open *how, bool *writer_counted)
{
	bool charged = false, writer = (flags & O_ACCMODE) != O_RDONLY;
	int a, r;

	*writer_counted = false;

	if (is_synth(parent))
		return -ENOTDIR;
	if (root_only_dirs(q, parent))
		return -EPERM;
	a = admit(q, parent, name, c->uid, c->gid, 0, &charged);
	if (a < 0 && !(flags & O_EXCL)) {
		/* O_CREAT without O_EXCL of an existing message is an open. */
		struct queue *qu;

		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, parent);
		if (qu && queue_msg_find(qu, name))
			a = 2;
		pthread_mutex_unlock(&q->lock);
	}
	if (a < 0)
		return a;
	r = q->inner->ops->create(q->inner, c, parent, name, mode, flags, out, fp, how);
	if (r == 0 && a != 1)
		out->entry_timeout = 0;
	if (r == 0 && a != 1 && (flags & O_ACCMODE) == O_WRONLY)
		qns_write_only(how);
	if (a == 0) {
		if (r < 0)
			admit_undo(q, parent, c->uid, c->gid, charged);
		else
			*writer_counted = qns_arrived(q, parent, name, out->ino, &out->attr,
						      charged, writer,
						      pin(q, parent, name, out->ino));
	} else if (a == 2 && r == 0 && writer) {
		*writer_counted = qns_arrived(q, parent, name, out->ino, &out->attr, false, true,
					      false);
	}
	return r;
}

static int q_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, struct eddy_entry *out)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_ctx self;
	struct queue *qu;
	char owner[64];
	pid_t tgid = 0;
	int pidfd = -1, r;

	if (is_synth(parent))
		return -ENOTDIR;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, parent);
	pthread_mutex_unlock(&q->lock);
	if (qu)
		return -EPERM;              /* no nesting */
	if (!root_only_dirs(q, parent))
		return q->inner->ops->mkdir(q->inner, c, parent, name, mode, out);

	pthread_mutex_lock(&q->lock);
	r = qquota_charge(q, c->uid, c->gid, 1, 0, 0, false);
	pthread_mutex_unlock(&q->lock);
	if (r < 0)
		return r;
	r = qfate_identify(c->pid, &tgid, &pidfd, owner, sizeof(owner));
	if (r == 0)
		r = q->inner->ops->mkdir(q->inner, c, parent, name, mode, out);
	if (r == 0) {
		eddy_ctx_self(&self);
		q->inner->ops->setxattr(q->inner, &self, out->ino, XA_OWNER, owner,
					strlen(owner), 0);
		pthread_mutex_lock(&q->lock);
		qu = queue_add(q, out->ino, parent, name);
		if (qu) {
			qu->uid = out->attr.st_uid;
			qu->gid = out->attr.st_gid;
			qu->mode = out->attr.st_mode;
			qfate_attach(q, qu, tgid, pidfd);
			pidfd = -1;
		} else {
			r = -ENOMEM;
		}
		pthread_mutex_unlock(&q->lock);
		if (r < 0) {
			q->inner->ops->rmdir(q->inner, &self, parent, name);
			q->inner->ops->forget(q->inner, out->ino, 1);
		}
	}
	if (r < 0) {
		pthread_mutex_lock(&q->lock);
		qquota_charge(q, c->uid, c->gid, -1, 0, 0, true);
		pthread_mutex_unlock(&q->lock);
		if (pidfd >= 0)
			close(pidfd);
	}
	return r;
}

static int q_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		     uint64_t parent, const char *name, struct eddy_entry *out)
{
	struct qfs *q = qfs_of(fs);
	struct queue *qu;
	int r;

	if (is_synth(parent))
		return -ENOTDIR;
	if (root_only_dirs(q, parent))
		return -EPERM;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, parent);
	r = qu ? reserved(qu, name) : 0;
	pthread_mutex_unlock(&q->lock);
	if (r)
		return r;
	r = q->inner->ops->symlink(q->inner, c, target, parent, name, out);
	if (r == 0 && qu)
		out->entry_timeout = 0;
	return r;
}

static int q_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		  uint64_t newparent, const char *newname, struct eddy_entry *out)
{
	struct qfs *q = qfs_of(fs);
	struct stat st;
	bool charged = false;
	double t;
	int a = 1, r;

	if (is_synth(ino) || is_synth(newparent))
		return -EPERM;
	if (root_only_dirs(q, newparent))
		return -EPERM;
	r = q->inner->ops->getattr(q->inner, c, ino, NULL, &st, &t);
	if (r < 0)
		return r;
	if (S_ISREG(st.st_mode)) {
		a = admit(q, newparent, newname, st.st_uid, st.st_gid, ino, &charged);
		if (a < 0)
			return a;
	} else {
		struct queue *qu;

		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, newparent);
		r = qu ? reserved(qu, newname) : 0;
		pthread_mutex_unlock(&q->lock);
		if (r)
			return r;
	}
	r = q->inner->ops->link(q->inner, c, ino, newparent, newname, out);
	if (r == 0)
		qns_uncache_name(q, newparent, out);
	if (a == 0) {
		if (r < 0)
			admit_undo(q, newparent, st.st_uid, st.st_gid, charged);
		else
			qns_arrived(q, newparent, newname, out->ino, &out->attr, charged, false,
				    pin(q, newparent, newname, out->ino));
	}
	return r;
}

/* Unlinks NAME in PARENT in the inner filesystem as the daemon. */
int qns_unlink_inner(struct qfs *q, uint64_t parent, const char *name)
{
	return q->inner->ops->unlink(q->inner, &q->self, parent, name);
}

/* A message M of QU left: return its charges once no queue names it. */
void qns_departed(struct qfs *q, struct queue *qu, struct qmsg *m)
{
	struct qinode *qi = qinode_find(q, m->ino);

	if (qi)
		qinode_put_link(q, qi);
	queue_msg_free(qu, m);
}

/*
** Pops the oldest (HEAD) or newest message of queue QINO: detaches it
** under the lock, then unlinks it. Returns 0, -ENOENT on an empty queue,
** 1 if QINO is no queue.
*/
static int pop(struct qfs *q, const struct eddy_ctx *c, uint64_t qino, bool head)
{
	for (;;) {
		struct queue *qu;
		struct qmsg *m;
		char *name;
		uint64_t ino;
		int r;

		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, qino);
		if (!qu) {
			pthread_mutex_unlock(&q->lock);
			return 1;
		}
		m = head ? qu->first : qu->last;
		if (!m) {
			pthread_mutex_unlock(&q->lock);
			return -ENOENT;
		}
		name = strdup(m->name);
		if (!name) {
			pthread_mutex_unlock(&q->lock);
			return -ENOMEM;
		}
		queue_msg_detach(qu, m);
		ino = m->ino;
		pthread_mutex_unlock(&q->lock);
		r = q->inner->ops->unlink(q->inner, c, qino, name);
		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, qino);
		if (qu && (m = queue_msg_find(qu, name)) && m->detached) {
			if (r == 0 || r == -ENOENT)
				qns_departed(q, qu, m);
			else
				queue_msg_reattach(qu, m, head);
		}
		pthread_mutex_unlock(&q->lock);
		if (r == 0) {
			atomic_fetch_add(&q->pops, 1);
			qns_up_popped(q, qino, name, ino);
		}
		free(name);
		if (r != -ENOENT)
			return r;
		/* removed behind our back: pop the next one */
	}
}

static int q_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name)
{
	struct qfs *q = qfs_of(fs);
	struct queue *qu;
	struct qmsg *m;
	bool member = false;
	int r;

	if (is_synth(parent))
		return -ENOTDIR;
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, parent);
	if (qu && is_claim(name)) {
		pthread_mutex_unlock(&q->lock);
		return -EPERM;
	}
	if (qu && (is_head(name) || is_tail(name))) {
		pthread_mutex_unlock(&q->lock);
		r = pop(q, c, parent, is_head(name));
		return r == 1 ? -ENOENT : r;
	}
	if (qu && (m = queue_msg_find(qu, name))) {
		if (m->detached) {
			pthread_mutex_unlock(&q->lock);
			return -ENOENT;          /* popped or claimed just now */
		}
		queue_msg_detach(qu, m);
		member = true;
	}
	pthread_mutex_unlock(&q->lock);
	r = q->inner->ops->unlink(q->inner, c, parent, name);
	if (member) {
		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, parent);
		if (qu && (m = queue_msg_find(qu, name)) && m->detached) {
			if (r == 0 || r == -ENOENT)
				qns_departed(q, qu, m);
			else
				queue_msg_reattach(qu, m, true);
		}
		pthread_mutex_unlock(&q->lock);
	}
	return r;
}

static int q_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name)
{
	struct qfs *q = qfs_of(fs);
	struct eddy_entry e;
	struct queue *qu;
	int r;

	if (is_synth(parent))
		return -ENOTDIR;
	r = q->inner->ops->lookup(q->inner, c, parent, name, &e);
	if (r < 0)
		return r;
	if (!e.ino)
		return -ENOENT;
	r = q->inner->ops->rmdir(q->inner, c, parent, name);
	if (r == 0) {
		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, e.ino);
		if (qu) {
			qquota_charge(q, qu->uid, qu->gid, -1, 0, 0, true);
			queue_remove(q, qu);
		}
		qset_del(&q->plain, e.ino);
		pthread_mutex_unlock(&q->lock);
	}
	q->inner->ops->forget(q->inner, e.ino, 1);
	return r;
}

/* EPERM for queues and head/tail/.claim, EXDEV for messages (28). */
static int rename_rule(struct qfs *q, const struct eddy_ctx *c, uint64_t parent,
		       const char *name)
{
	struct eddy_entry e;
	bool isq;

	if (is_synth(parent))
		return -ENOTDIR;
	if (root_only_dirs(q, parent))
		return -EPERM;
	pthread_mutex_lock(&q->lock);
	isq = queue_find(q, parent) != NULL;
	pthread_mutex_unlock(&q->lock);
	if (isq)
		return is_head(name) || is_tail(name) || is_claim(name) ? -EPERM : -EXDEV;
	if (q->opt.root_queues)
		return 0;
	/* xattr mode: a queue directory itself may not move */
	if (q->inner->ops->lookup(q->inner, c, parent, name, &e) == 0 && e.ino) {
		pthread_mutex_lock(&q->lock);
		isq = queue_find(q, e.ino) != NULL;
		pthread_mutex_unlock(&q->lock);
		q->inner->ops->forget(q->inner, e.ino, 1);
		if (isq)
			return -EPERM;
	}
	return 0;
}

static int q_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, uint64_t newparent, const char *newname, unsigned int flags)
{
	struct qfs *q = qfs_of(fs);
	int r = rename_rule(q, c, parent, name);

	if (!r)
		r = rename_rule(q, c, newparent, newname);
	if (r == -EXDEV) {
		/* head/tail as target are EPERM even if the source is fine */
		struct queue *qu;

		pthread_mutex_lock(&q->lock);
		qu = queue_find(q, newparent);
		if (qu && (is_head(newname) || is_tail(newname) || is_claim(newname)))
			r = -EPERM;
		pthread_mutex_unlock(&q->lock);
	}
	if (r)
		return r;
	return q->inner->ops->rename(q->inner, c, parent, name, newparent, newname, flags);
}

static ssize_t q_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *buf,
			  size_t size)
{
	struct qfs *q = qfs_of(fs);

	if (is_synth(ino)) {
		struct qsynth *s;
		size_t n = 0;

		pthread_mutex_lock(&q->lock);
		s = synth_find(q, ino);
		if (s && s->target) {
			n = strlen(s->target);
			if (n > size)
				n = size;
			memcpy(buf, s->target, n);
		}
		pthread_mutex_unlock(&q->lock);
		return s && s->target ? (ssize_t)n : -EINVAL;
	}
	return q->inner->ops->readlink(q->inner, c, ino, buf, size);
}

static int q_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file *f, struct stat *st, double *attr_timeout)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;

	if (is_synth(ino)) {
		struct qsynth *s;

		pthread_mutex_lock(&q->lock);
		s = synth_find(q, ino);
		if (s)
			qns_fill_synth_attr(q, s, st);
		pthread_mutex_unlock(&q->lock);
		*attr_timeout = s && s->kind == QS_CLAIM ? 1.0 : 0;
		return s ? 0 : -ENOENT;
	}
	return q->inner->ops->getattr(q->inner, c, ino, qf ? qf->inner : NULL, st, attr_timeout);
}

static int q_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file *f, const struct stat *in, int mask, struct stat *st,
		     double *attr_timeout)
{
	struct qfs *q = qfs_of(fs);
	struct qfile *qf = (struct qfile *)f;
	struct qinode *qi;
	long long delta = 0;
	int r;

	if (is_synth(ino))
		return -EPERM;
	if (qf && qf->claim)
		return -EPERM;
	if (mask & EDDY_SET_SIZE) {
		pthread_mutex_lock(&q->lock);
		qi = qinode_find(q, ino);
		r = 0;
		if (qi) {
			delta = (long long)in->st_size - (long long)qi->charged;
			r = qquota_charge(q, qi->uid, qi->gid, 0, 0, delta, delta < 0);
			if (r == 0)
				qi->charged = in->st_size;
		}
		pthread_mutex_unlock(&q->lock);
		if (r < 0)
			return r;
	}
	r = q->inner->ops->setattr(q->inner, c, ino, qf ? qf->inner : NULL, in, mask, st,
				   attr_timeout);
	pthread_mutex_lock(&q->lock);
	if (r < 0 && delta && (qi = qinode_find(q, ino))) {
		qquota_charge(q, qi->uid, qi->gid, 0, 0, -delta, true);
		qi->charged -= delta;
	}
	if (r == 0 && S_ISDIR(st->st_mode)) {
		struct queue *qu = queue_find(q, ino);

		if (qu) {
			if (qu->uid != st->st_uid || qu->gid != st->st_gid) {
				qquota_charge(q, qu->uid, qu->gid, -1, 0, 0, true);
				qquota_charge(q, st->st_uid, st->st_gid, 1, 0, 0, true);
			}
			qu->uid = st->st_uid;
			qu->gid = st->st_gid;
			qu->mode = st->st_mode;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

const struct eddy_fs_ops *qns_fill_ops(struct eddy_fs_ops *ops)
{
	ops->lookup = q_lookup;
	ops->forget = q_forget;
	ops->getattr = q_getattr;
	ops->setattr = q_setattr;
	ops->mknod = q_mknod;
	ops->mkdir = q_mkdir;
	ops->symlink = q_symlink;
	ops->link = q_link;
	ops->unlink = q_unlink;
	ops->rmdir = q_rmdir;
	ops->rename = q_rename;
	ops->readlink = q_readlink;
	return ops;
}
