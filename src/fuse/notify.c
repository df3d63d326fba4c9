/*
** notify.c -- the notifier: the one owner of every fuse_lowlevel_notify_*
** call. It turns "the truth changed" news (struct eddy_events, from any
** thread) into kernel cache invalidations.
**
** Guarantees:
**   1. Producers never block on the kernel: they add a note to a bounded
**      queue under a mutex and signal a condition variable.
**   2. Notes coalesce by key (kind group, inode, name): a burst of changes to
**      one entry or inode is sent once; a data invalidation supersedes an
**      attribute-only one.
**   3. Only inodes and entries the kernel holds (node table) are sent; the
**      rest are counted as skipped.
**   4. When the queue is full the backlog is replaced by one "invalidate
**      everything known" (counted as an overflow).
**   5. The worker holds no filesystem lock while it calls libfuse, blocks
**      every signal, starts after INIT and is stopped before the session is
**      destroyed. ENOENT, ENOTDIR, ENOTEMPTY, ENOSYS, EBADF and ENOTCONN
**      are normal answers (the kernel forgot, or the connection is going);
**      anything else is counted and logged at a limited rate.
** Deadlock rules (reference/fuse-libfuse314.md §3): notifications are only
** ever sent from this thread, never from a request handler.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend_int.h"

#define NQ_CAP 65536

enum nk {
	NK_ATTR,        /* inode attributes only */
	NK_DATA,        /* inode attributes and cached data / listing */
	NK_ENTRY,       /* one directory entry */
	NK_DELETE,      /* one directory entry, removed: the kernel tells
			 * inotify watchers (IN_DELETE, IN_DELETE_SELF) */
};

struct note {
	enum nk kind;
	uint64_t ino;           /* inode, or the parent for NK_ENTRY */
	char *name;             /* NK_ENTRY and NK_DELETE only */
	uint64_t child;         /* NK_DELETE: the inode removed */
	size_t hash;
	struct note *next_hash; /* chain in the coalescing table */
	struct note *next;      /* FIFO order */
};

struct fe_notifier {
	struct eddy_frontend *fe;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop, overflow;
	struct note *head, *tail;
	struct note **table;    /* coalescing hash, NQ_CAP buckets */
	size_t len;
	time_t last_log;
	/* counters (under lock) */
	long long queued, sent, coalesced, skipped, failed, overflows, everything;
};

static size_t note_hash(int group, uint64_t ino, const char *name)
{
	size_t h = (size_t)ino * 0x9e3779b97f4a7c15ULL + (size_t)group;

	for (; name && *name; name++)
		h = h * 131 + (unsigned char)*name;
	return h;
}

static int group_of(enum nk k)
{
	return k == NK_ENTRY || k == NK_DELETE ? 1 : 0;
}

static struct note *find_note(struct fe_notifier *n, size_t h, int group, uint64_t ino,
			      const char *name)
{
	struct note *p = n->table[h % NQ_CAP];

	for (; p; p = p->next_hash)
		if (p->hash == h && group_of(p->kind) == group && p->ino == ino &&
		    (!name || (p->name && strcmp(p->name, name) == 0)))
			return p;
	return NULL;
}

static void push_child(struct fe_notifier *n, enum nk kind, uint64_t ino, const char *name,
		       uint64_t child)
{
	int group = group_of(kind);
	size_t h = note_hash(group, ino, name);
	struct note *p;

	pthread_mutex_lock(&n->lock);
	if (!n->running || n->stop) {
		pthread_mutex_unlock(&n->lock);
		return;
	}
	n->queued++;
	if (n->overflow) {
		n->coalesced++;
	} else if ((p = find_note(n, h, group, ino, name))) {
		if (kind > p->kind)
			p->kind = kind;
		if (kind == NK_DELETE)
			p->child = child;
		n->coalesced++;
	} else if (n->len >= NQ_CAP || !(p = calloc(1, sizeof(*p))) ||
		   (name && !(p->name = strdup(name)))) {
		if (p)
			free(p);
		n->overflow = true;
		n->overflows++;
	} else {
		p->kind = kind;
		p->ino = ino;
		p->child = child;
		p->hash = h;
		p->next_hash = n->table[h % NQ_CAP];
		n->table[h % NQ_CAP] = p;
		if (n->tail)
			n->tail->next = p;
		else
			n->head = p;
		n->tail = p;
		n->len++;
	}
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

static void push(struct fe_notifier *n, enum nk kind, uint64_t ino, const char *name)
{
	push_child(n, kind, ino, name, 0);
}

/* Takes the oldest note off the queue; caller holds the lock. */
static struct note *pop(struct fe_notifier *n)
{
	struct note *p = n->head, **pp;

	if (!p)
		return NULL;
	n->head = p->next;
	if (!n->head)
		n->tail = NULL;
	for (pp = &n->table[p->hash % NQ_CAP]; *pp != p; pp = &(*pp)->next_hash)
		;
	*pp = p->next_hash;
	n->len--;
	return p;
}

static void drop_all(struct fe_notifier *n)
{
	struct note *p;

	while ((p = pop(n))) {
		free(p->name);
		free(p);
	}
}

static bool normal_error(int r)
{
	return r == -ENOENT || r == -ENOTDIR || r == -ENOTEMPTY || r == -ENOSYS ||
	       r == -EBADF || r == -ENOTCONN || r == -ENODEV;
}

static void count_result(struct fe_notifier *n, int r, const struct note *p)
{
	pthread_mutex_lock(&n->lock);
	if (r == 0 || normal_error(r)) {
		n->sent++;
	} else {
		time_t now = time(NULL);

		n->failed++;
		if (now != n->last_log) {
			n->last_log = now;
			eddy_log_write(n->fe->log, EDDY_LOG_WARN,
				       "notify kind %d ino %llu%s%s failed: %s", (int)p->kind,
				       (unsigned long long)p->ino, p->name ? " name " : "",
				       p->name ? p->name : "", strerror(-r));
		}
	}
	pthread_mutex_unlock(&n->lock);
}

static void send_note(struct fe_notifier *n, const struct note *p)
{
	struct eddy_frontend *fe = n->fe;
	int r;

	if (!node_table_known(&fe->nodes, p->ino)) {
		pthread_mutex_lock(&n->lock);
		n->skipped++;
		pthread_mutex_unlock(&n->lock);
		return;
	}
	if (p->kind == NK_DELETE && node_table_known(&fe->nodes, p->child)) {
		r = fuse_lowlevel_notify_delete(fe->se, p->ino, p->child, p->name,
						strlen(p->name));
		/* A directory with cached children: drop the subtree instead. */
		if (r == -ENOTEMPTY)
			r = fuse_lowlevel_notify_inval_entry(fe->se, p->ino, p->name,
							     strlen(p->name));
	} else if (p->kind == NK_ENTRY || p->kind == NK_DELETE)
		r = fuse_lowlevel_notify_inval_entry(fe->se, p->ino, p->name, strlen(p->name));
	else
		r = fuse_lowlevel_notify_inval_inode(fe->se, p->ino, p->kind == NK_DATA ? 0 : -1, 0);
	count_result(n, r, p);
}

struct all_ctx {
	struct fe_notifier *n;
	uint64_t *inos;
	size_t len, cap;
};

static void collect_ino(void *arg, uint64_t ino)
{
	struct all_ctx *a = arg;

	if (a->len == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1024;
		uint64_t *p = realloc(a->inos, cap * sizeof(*p));

		if (!p)
			return;
		a->inos = p;
		a->cap = cap;
	}
	a->inos[a->len++] = ino;
}

/* Invalidates every inode the kernel holds: attributes, data and, for
** directories, every cached entry below them (inval_inode with off 0
** drops the listing; entries are re-validated as their attributes go). */
static void invalidate_everything(struct fe_notifier *n)
{
	struct all_ctx a = { .n = n };
	size_t i;

	node_table_each(&n->fe->nodes, collect_ino, &a);
	for (i = 0; i < a.len; i++) {
		struct note p = { .kind = NK_DATA, .ino = a.inos[i] };
		int r = fuse_lowlevel_notify_inval_inode(n->fe->se, a.inos[i], 0, 0);

		count_result(n, r, &p);
	}
	free(a.inos);
	pthread_mutex_lock(&n->lock);
	n->everything++;
	pthread_mutex_unlock(&n->lock);
}

static void *worker(void *arg)
{
	struct fe_notifier *n = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&n->lock);
	for (;;) {
		struct note *p;

		while (!n->stop && !n->head && !n->overflow)
			pthread_cond_wait(&n->cond, &n->lock);
		if (n->stop)
			break;
		if (n->overflow) {
			drop_all(n);
			n->overflow = false;
			pthread_mutex_unlock(&n->lock);
			invalidate_everything(n);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		p = pop(n);
		pthread_mutex_unlock(&n->lock);
		send_note(n, p);
		free(p->name);
		free(p);
		pthread_mutex_lock(&n->lock);
	}
	drop_all(n);
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/****************************** the upward path ******************************/

static void ev_entry_changed(void *up, uint64_t parent, const char *name)
{
	struct fe_notifier *n = up;

	node_table_bump(&n->fe->nodes, parent);
	push(n, NK_ENTRY, parent, name);
	push(n, NK_DATA, parent, NULL);
}

static void ev_entry_deleted(void *up, uint64_t parent, const char *name, uint64_t child)
{
	struct fe_notifier *n = up;

	node_table_bump(&n->fe->nodes, parent);
	push_child(n, child ? NK_DELETE : NK_ENTRY, parent, name, child);
	push(n, NK_DATA, parent, NULL);
	if (child)
		push(n, NK_ATTR, child, NULL);
}

static void ev_inode_changed(void *up, uint64_t ino, bool attr_only)
{
	struct fe_notifier *n = up;

	push(n, attr_only ? NK_ATTR : NK_DATA, ino, NULL);
}

static void ev_everything_changed(void *up)
{
	struct fe_notifier *n = up;

	node_table_bump_all(&n->fe->nodes);
	pthread_mutex_lock(&n->lock);
	if (n->running && !n->stop) {
		n->overflow = true;
		pthread_cond_signal(&n->cond);
	}
	pthread_mutex_unlock(&n->lock);
}

static void ev_ready(void *up, uint64_t ino)
{
	struct fe_notifier *n = up;

	fe_waits_ready(n->fe->waits, ino);
}

/* Another invalidation of PARENT/NAME, for a reply that may have raced a
** change (the lookup/invalidate race; see fe_reply_entry). */
void fe_notify_entry(struct eddy_frontend *fe, uint64_t parent, const char *name)
{
	if (fe->notifier)
		push(fe->notifier, NK_ENTRY, parent, name);
}

void fe_notify_inode(struct eddy_frontend *fe, uint64_t ino, bool attr_only)
{
	if (fe->notifier)
		push(fe->notifier, attr_only ? NK_ATTR : NK_DATA, ino, NULL);
}

/****************************** lifecycle ******************************/

struct fe_notifier *fe_notifier_new(struct eddy_frontend *fe)
{
	struct fe_notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->table = calloc(NQ_CAP, sizeof(*n->table));
	if (!n->table) {
		free(n);
		return NULL;
	}
	n->fe = fe;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	return n;
}

void fe_notifier_events(struct fe_notifier *n, struct eddy_events *ev)
{
	ev->entry_changed = ev_entry_changed;
	ev->entry_deleted = ev_entry_deleted;
	ev->inode_changed = ev_inode_changed;
	ev->everything_changed = ev_everything_changed;
	ev->ready = ev_ready;
	ev->up = n;
}

/* Called from INIT: the connection is up, notifications can be sent. */
void fe_notifier_start(struct fe_notifier *n)
{
	pthread_mutex_lock(&n->lock);
	if (!n->running && !n->stop &&
	    pthread_create(&n->thread, NULL, worker, n) == 0)
		n->running = true;
	pthread_mutex_unlock(&n->lock);
}

void fe_notifier_stop(struct fe_notifier *n)
{
	bool joined;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	joined = n->running;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (joined)
		pthread_join(n->thread, NULL);
	pthread_mutex_lock(&n->lock);
	n->running = false;
	pthread_mutex_unlock(&n->lock);
}

void fe_notifier_free(struct fe_notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	drop_all(n);
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->cond);
	free(n->table);
	free(n);
}

void fe_notifier_report(struct fe_notifier *n, eddy_stat_fn fn, void *arg)
{
	long long v[8];

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	v[0] = n->sent;
	v[1] = n->coalesced;
	v[2] = n->skipped;
	v[3] = n->failed;
	v[4] = n->overflows;
	v[5] = n->queued;
	v[6] = n->everything;
	v[7] = (long long)n->len;
	pthread_mutex_unlock(&n->lock);
	fn(arg, "notify_sent", v[0]);
	fn(arg, "notify_coalesced", v[1]);
	fn(arg, "notify_skipped", v[2]);
	fn(arg, "notify_failed", v[3]);
	fn(arg, "notify_overflows", v[4]);
	fn(arg, "notify_queued", v[5]);
	fn(arg, "notify_invalidate_all", v[6]);
	fn(arg, "notify_pending", v[7]);
}
