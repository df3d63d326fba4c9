/*
** queue_load.c -- building a queue's state from what the inner filesystem
** holds: at start (every queue of a --queues root over a backing
** directory) and when a directory marked with user.eddyfs.queue is first
** seen in xattr mode.
**
** Order after a reload: the inner filesystem keeps no arrival order, so
** messages are ordered by change time, then by name (documented). Owner
** identity comes from user.eddyfs.owner ("<tgid> <start time>"); a queue
** without it has no creator and lives until removed.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

struct collect {
	struct qchild *v;
	size_t len, cap;
	bool nomem;
};

static int collect_fill(void *buf, const char *name, const struct stat *st,
			const struct eddy_entry *e, uint64_t next)
{
	struct collect *c = buf;

	(void)st;
	(void)e;
	(void)next;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	if (c->len == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct qchild *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			c->nomem = true;
			return 1;
		}
		c->v = v;
		c->cap = cap;
	}
	memset(&c->v[c->len], 0, sizeof(c->v[0]));
	if (!(c->v[c->len].name = strdup(name))) {
		c->nomem = true;
		return 1;
	}
	c->len++;
	return 0;
}

/* Lists directory INO of the inner filesystem with each child's inode and
** attributes; each child's inode carries one reference (an inner inode
** number is only valid while referenced) until qload_children_free. */
static int list_children(struct qfs *q, uint64_t ino, struct collect *c)
{
	struct eddy_fs *in = q->inner;
	struct eddy_file *d;
	struct eddy_open how = { 0 };
	struct eddy_ctx self;
	size_t j = 0;
	int r;

	eddy_ctx_self(&self);
	r = in->ops->opendir(in, &self, ino, &d, &how);
	if (r < 0)
		return r;
	r = in->ops->readdir(in, &self, d, 0, false, collect_fill, c);
	in->ops->releasedir(in, d);
	if (r >= 0 && c->nomem)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < c->len; i++) {
		struct eddy_entry e;

		if (in->ops->lookup(in, &self, ino, c->v[i].name, &e) < 0 || !e.ino) {
			free(c->v[i].name);
			continue;         /* gone meanwhile */
		}
		c->v[i].ino = e.ino;
		c->v[i].st = e.attr;
		c->v[j++] = c->v[i];
	}
	if (r >= 0)
		c->len = j;
	return r;
}

static void collect_free(struct qfs *q, struct collect *c)
{
	qload_children_free(q, c->v, c->len);
}

int qload_children(struct qfs *q, uint64_t ino, struct qchild **v, size_t *n)
{
	struct collect c = { 0 };
	int r = list_children(q, ino, &c);

	if (r < 0) {
		collect_free(q, &c);
		return r;
	}
	*v = c.v;
	*n = c.len;
	return 0;
}

void qload_children_free(struct qfs *q, struct qchild *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].ino)
			q->inner->ops->forget(q->inner, v[i].ino, 1);
		free(v[i].name);
	}
	free(v);
}

static int by_ctime_name(const void *a, const void *b)
{
	const struct qchild *x = a, *y = b;

	if (x->st.st_ctim.tv_sec != y->st.st_ctim.tv_sec)
		return x->st.st_ctim.tv_sec < y->st.st_ctim.tv_sec ? -1 : 1;
	if (x->st.st_ctim.tv_nsec != y->st.st_ctim.tv_nsec)
		return x->st.st_ctim.tv_nsec < y->st.st_ctim.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

static ssize_t get_xattr(struct qfs *q, uint64_t ino, const char *name, char *buf, size_t size)
{
	struct eddy_ctx self;
	ssize_t n;

	eddy_ctx_self(&self);
	n = q->inner->ops->getxattr(q->inner, &self, ino, name, buf, size - 1);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

struct queue *queue_load(struct qfs *q, uint64_t parent, const char *name, uint64_t ino,
			 int *err)
{
	struct collect c = { 0 };
	struct eddy_ctx self;
	struct stat st;
	struct queue *qu;
	char owner[64], val[32];
	bool sticky;
	long long max = 0;
	double t;
	int r;

	*err = 0;
	if (!q->opt.root_queues && get_xattr(q, ino, XA_QUEUE, val, sizeof(val)) < 0) {
		pthread_mutex_lock(&q->lock);
		qset_add(&q->plain, ino);
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	eddy_ctx_self(&self);
	r = q->inner->ops->getattr(q->inner, &self, ino, NULL, &st, &t);
	if (r == 0 && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (r == 0)
		r = list_children(q, ino, &c);
	if (r < 0) {
		collect_free(q, &c);
		*err = r;
		return NULL;
	}
	sticky = get_xattr(q, ino, XA_STICKY, val, sizeof(val)) >= 0 ||
		 get_xattr(q, ino, XA_STICKY_EVENTFS, val, sizeof(val)) >= 0;
	if (get_xattr(q, ino, XA_MAX, val, sizeof(val)) >= 0 ||
	    get_xattr(q, ino, XA_MAX_EVENTFS, val, sizeof(val)) >= 0)
		max = strtoll(val, NULL, 10);
	if (get_xattr(q, ino, XA_OWNER, owner, sizeof(owner)) < 0)
		owner[0] = 0;
	qsort(c.v, c.len, sizeof(*c.v), by_ctime_name);

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, ino);
	if (qu) {                       /* loaded by another thread meanwhile */
		pthread_mutex_unlock(&q->lock);
		collect_free(q, &c);
		return qu;
	}
	qu = queue_add(q, ino, parent, name);
	if (!qu) {
		pthread_mutex_unlock(&q->lock);
		collect_free(q, &c);
		*err = -ENOMEM;
		return NULL;
	}
	qu->uid = st.st_uid;
	qu->gid = st.st_gid;
	qu->mode = st.st_mode;
	qu->sticky = sticky;
	qu->max_messages = max > 0 ? max : 0;
	for (size_t i = 0; i < c.len; i++) {
		struct qinode *qi;

		if (!S_ISREG(c.v[i].st.st_mode) || strcmp(c.v[i].name, Q_HEAD) == 0 ||
		    strcmp(c.v[i].name, Q_TAIL) == 0)
			continue;
		qi = qinode_get(q, c.v[i].ino, c.v[i].st.st_uid, c.v[i].st.st_gid);
		if (!qi || !queue_msg_append(qu, c.v[i].ino, c.v[i].name)) {
			if (qi)
				qinode_put_link(q, qi);
			continue;
		}
		if (qi->links == 1) {
			qi->pinned = true;         /* keeps the listing's reference */
			c.v[i].ino = 0;
			qquota_charge(q, qi->uid, qi->gid, 0, 1, c.v[i].st.st_size, true);
			qi->charged = c.v[i].st.st_size;
		}
	}
	qquota_charge(q, qu->uid, qu->gid, 1, 0, 0, true);
	/* No creator recorded: a persistent queue. */
	if (owner[0] && !qfate_rebind(q, qu, owner))
		qu->creator_dead = true;
	pthread_mutex_unlock(&q->lock);
	collect_free(q, &c);
	return qu;
}
