/*
** queue_state.c -- the queue layer's tables: queues and their deques,
** synthetic inodes (head, tail, .claim), message inodes, and loading a
** queue's state from the inner filesystem (after a remount, or for a
** directory made a queue by xattr).
**
** Every function here runs with qfs.lock held; queue_load.c, which calls
** the inner filesystem, takes the lock itself. Hash tables grow by doubling; nothing is ever reused by
** inode number once removed (inner inode numbers are not reused either).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

static size_t hash64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v;
}

static size_t hash_name(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int qstate_init(struct qfs *q)
{
	q->nqueue_buckets = 64;
	q->nsynth_buckets = 256;
	q->ninode_buckets = 1024;
	q->nusage_buckets = 64;
	q->queues = calloc(q->nqueue_buckets, sizeof(*q->queues));
	q->synths = calloc(q->nsynth_buckets, sizeof(*q->synths));
	q->inodes = calloc(q->ninode_buckets, sizeof(*q->inodes));
	q->usage = calloc(q->nusage_buckets, sizeof(*q->usage));
	q->next_synth = EDDY_LAYER_INO_BASE;
	return q->queues && q->synths && q->inodes && q->usage ? 0 : -ENOMEM;
}

/********************************* queues *********************************/

struct queue *queue_find(struct qfs *q, uint64_t ino)
{
	struct queue *qu = q->queues[hash64(ino) % q->nqueue_buckets];

	while (qu && qu->ino != ino)
		qu = qu->next_hash;
	return qu;
}

static void queues_grow(struct qfs *q)
{
	size_t n = q->nqueue_buckets * 2;
	struct queue **t = calloc(n, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < q->nqueue_buckets; i++)
		while (q->queues[i]) {
			struct queue *qu = q->queues[i];

			q->queues[i] = qu->next_hash;
			qu->next_hash = t[hash64(qu->ino) % n];
			t[hash64(qu->ino) % n] = qu;
		}
	free(q->queues);
	q->queues = t;
	q->nqueue_buckets = n;
}

struct queue *queue_add(struct qfs *q, uint64_t ino, uint64_t parent, const char *name)
{
	struct queue *qu = calloc(1, sizeof(*qu));
	struct qsynth *claim;
	size_t b;

	if (!qu)
		return NULL;
	qu->nbuckets = 16;
	qu->names = calloc(qu->nbuckets, sizeof(*qu->names));
	qu->name = strdup(name);
	claim = synth_new(q, QS_CLAIM, ino);
	if (!qu->names || !qu->name || !claim) {
		if (claim)
			synth_drop(q, claim);
		free(qu->names);
		free(qu->name);
		free(qu);
		return NULL;
	}
	claim->current = true;
	qu->claim_ino = claim->ino;
	qu->ino = ino;
	qu->parent = parent;
	qu->pidfd = -1;
	if (q->nqueues >= q->nqueue_buckets)
		queues_grow(q);
	b = hash64(ino) % q->nqueue_buckets;
	qu->next_hash = q->queues[b];
	q->queues[b] = qu;
	q->nqueues++;
	return qu;
}

/* Drops QU from the table and frees it with its messages; the synthetic
** inodes it pointed at live on until the kernel forgets them. */
void queue_remove(struct qfs *q, struct queue *qu)
{
	struct queue **pp = &q->queues[hash64(qu->ino) % q->nqueue_buckets];
	struct qsynth *s;

	while (*pp && *pp != qu)
		pp = &(*pp)->next_hash;
	if (*pp) {
		*pp = qu->next_hash;
		q->nqueues--;
	}
	qfate_unwatch(q, qu);
	while (qu->first) {
		struct qmsg *m = qu->first;
		struct qinode *qi = qinode_find(q, m->ino);

		if (qi)
			qinode_put_link(q, qi);
		queue_msg_detach(qu, m);
		queue_msg_free(qu, m);
	}
	for (unsigned i = 0; i < qu->ngone; i++)
		free(qu->gone[i].name);    /* the kernel drops the whole directory */
	free(qu->gone);
	if (qu->head_syn)
		synth_drop(q, qu->head_syn);
	if (qu->tail_syn)
		synth_drop(q, qu->tail_syn);
	if ((s = synth_find(q, qu->claim_ino)))
		synth_drop(q, s);
	free(qu->names);
	free(qu->name);
	free(qu);
}

/***************************** the deque *****************************/

struct qmsg *queue_msg_find(struct queue *qu, const char *name)
{
	struct qmsg *m = qu->names[hash_name(name) % qu->nbuckets];

	while (m && strcmp(m->name, name) != 0)
		m = m->next_name;
	return m;
}

static void names_grow(struct queue *qu)
{
	size_t n = qu->nbuckets * 2;
	struct qmsg **t = calloc(n, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < qu->nbuckets; i++)
		while (qu->names[i]) {
			struct qmsg *m = qu->names[i];
			size_t b = hash_name(m->name) % n;

			qu->names[i] = m->next_name;
			m->next_name = t[b];
			t[b] = m;
		}
	free(qu->names);
	qu->names = t;
	qu->nbuckets = n;
}

struct qmsg *queue_msg_append(struct queue *qu, uint64_t ino, const char *name)
{
	struct qmsg *m = calloc(1, sizeof(*m));
	size_t b;

	if (!m || !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	m->ino = ino;
	if (qu->count >= qu->nbuckets)
		names_grow(qu);
	b = hash_name(name) % qu->nbuckets;
	m->next_name = qu->names[b];
	qu->names[b] = m;
	m->prev = qu->last;
	if (qu->last)
		qu->last->next = m;
	else
		qu->first = m;
	qu->last = m;
	qu->count++;
	return m;
}

/* Takes M out of the deque (not out of the name index: a detached message
** still names an inner entry until it is unlinked). */
void queue_msg_detach(struct queue *qu, struct qmsg *m)
{
	if (m->detached)
		return;
	if (m->prev)
		m->prev->next = m->next;
	else
		qu->first = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		qu->last = m->prev;
	m->prev = m->next = NULL;
	m->detached = true;
	qu->count--;
}

/* Undoes a detach whose inner unlink failed: back to the FRONT (oldest
** end) or to the back. */
void queue_msg_reattach(struct queue *qu, struct qmsg *m, bool front)
{
	if (!m->detached)
		return;
	m->detached = false;
	if (front) {
		m->prev = NULL;
		m->next = qu->first;
		if (qu->first)
			qu->first->prev = m;
		else
			qu->last = m;
		qu->first = m;
	} else {
		m->next = NULL;
		m->prev = qu->last;
		if (qu->last)
			qu->last->next = m;
		else
			qu->first = m;
		qu->last = m;
	}
	qu->count++;
}

/* Frees a detached M and drops it from the name index. */
void queue_msg_free(struct queue *qu, struct qmsg *m)
{
	struct qmsg **pp = &qu->names[hash_name(m->name) % qu->nbuckets];

	while (*pp && *pp != m)
		pp = &(*pp)->next_name;
	if (*pp)
		*pp = m->next_name;
	free(m->name);
	free(m);
}

/************************ synthetic inodes ************************/

struct qsynth *synth_find(struct qfs *q, uint64_t ino)
{
	struct qsynth *s = q->synths[hash64(ino) % q->nsynth_buckets];

	while (s && s->ino != ino)
		s = s->next_hash;
	return s;
}

static void synths_grow(struct qfs *q)
{
	size_t n = q->nsynth_buckets * 2;
	struct qsynth **t = calloc(n, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < q->nsynth_buckets; i++)
		while (q->synths[i]) {
			struct qsynth *s = q->synths[i];

			q->synths[i] = s->next_hash;
			s->next_hash = t[hash64(s->ino) % n];
			t[hash64(s->ino) % n] = s;
		}
	free(q->synths);
	q->synths = t;
	q->nsynth_buckets = n;
}

struct qsynth *synth_new(struct qfs *q, enum qsynth_kind kind, uint64_t qino)
{
	struct qsynth *s = calloc(1, sizeof(*s));
	size_t b;

	if (!s)
		return NULL;
	s->ino = q->next_synth++;
	s->kind = kind;
	s->qino = qino;
	clock_gettime(CLOCK_REALTIME, &s->made);
	if (q->nsynths >= q->nsynth_buckets)
		synths_grow(q);
	b = hash64(s->ino) % q->nsynth_buckets;
	s->next_hash = q->synths[b];
	q->synths[b] = s;
	q->nsynths++;
	return s;
}

static void synth_free(struct qfs *q, struct qsynth *s)
{
	struct qsynth **pp = &q->synths[hash64(s->ino) % q->nsynth_buckets];

	while (*pp && *pp != s)
		pp = &(*pp)->next_hash;
	if (*pp) {
		*pp = s->next_hash;
		q->nsynths--;
	}
	free(s->target);
	free(s);
}

/* The queue no longer points at S: free it once the kernel forgot it. */
void synth_drop(struct qfs *q, struct qsynth *s)
{
	s->current = false;
	if (!s->refs)
		synth_free(q, s);
}

void synth_forget(struct qfs *q, uint64_t ino, uint64_t n)
{
	struct qsynth *s = synth_find(q, ino);

	if (!s)
		return;
	s->refs = n >= s->refs ? 0 : s->refs - n;
	if (!s->refs && !s->current)
		synth_free(q, s);
}

/************************ message inodes ************************/

struct qinode *qinode_find(struct qfs *q, uint64_t ino)
{
	struct qinode *qi = q->inodes[hash64(ino) % q->ninode_buckets];

	while (qi && qi->ino != ino)
		qi = qi->next_hash;
	return qi;
}

static void inodes_grow(struct qfs *q)
{
	size_t n = q->ninode_buckets * 2;
	struct qinode **t = calloc(n, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < q->ninode_buckets; i++)
		while (q->inodes[i]) {
			struct qinode *qi = q->inodes[i];

			q->inodes[i] = qi->next_hash;
			qi->next_hash = t[hash64(qi->ino) % n];
			t[hash64(qi->ino) % n] = qi;
		}
	free(q->inodes);
	q->inodes = t;
	q->ninode_buckets = n;
}

/* The record of message inode INO with one more queue link. */
struct qinode *qinode_get(struct qfs *q, uint64_t ino, uid_t uid, gid_t gid)
{
	struct qinode *qi = qinode_find(q, ino);
	size_t b;

	if (qi) {
		qi->links++;
		return qi;
	}
	qi = calloc(1, sizeof(*qi));
	if (!qi)
		return NULL;
	qi->ino = ino;
	qi->uid = uid;
	qi->gid = gid;
	qi->links = 1;
	if (q->ninodes >= q->ninode_buckets)
		inodes_grow(q);
	b = hash64(ino) % q->ninode_buckets;
	qi->next_hash = q->inodes[b];
	q->inodes[b] = qi;
	q->ninodes++;
	return qi;
}

/* One queue entry fewer names QI; at none, its charges are returned. */
void qinode_put_link(struct qfs *q, struct qinode *qi)
{
	struct qinode **pp;

	if (qi->links && --qi->links)
		return;
	if (qi->writers)
		return;           /* freed by the last writer's release */
	qquota_uncharge_inode(q, qi);
	if (qi->pinned)
		q->inner->ops->forget(q->inner, qi->ino, 1);
	pp = &q->inodes[hash64(qi->ino) % q->ninode_buckets];
	while (*pp && *pp != qi)
		pp = &(*pp)->next_hash;
	if (*pp) {
		*pp = qi->next_hash;
		q->ninodes--;
	}
	free(qi);
}

/***************************** inode sets *****************************/

bool qset_has(const struct qset *s, uint64_t ino)
{
	if (!s->cap)
		return false;
	for (size_t i = hash64(ino) % s->cap;; i = (i + 1) % s->cap) {
		if (s->slots[i] == ino)
			return true;
		if (!s->slots[i])
			return false;
	}
}

int qset_add(struct qset *s, uint64_t ino)
{
	if (qset_has(s, ino))
		return 0;
	if ((s->len + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i] && s->slots[i] != UINT64_MAX) {
				size_t j = hash64(s->slots[i]) % cap;

				while (t[j])
					j = (j + 1) % cap;
				t[j] = s->slots[i];
			}
		free(s->slots);
		s->slots = t;
		s->cap = cap;
	}
	for (size_t i = hash64(ino) % s->cap;; i = (i + 1) % s->cap)
		if (!s->slots[i] || s->slots[i] == UINT64_MAX) {
			s->slots[i] = ino;
			s->len++;
			return 0;
		}
}

void qset_del(struct qset *s, uint64_t ino)
{
	if (!s->cap)
		return;
	for (size_t i = hash64(ino) % s->cap; s->slots[i]; i = (i + 1) % s->cap)
		if (s->slots[i] == ino) {
			s->slots[i] = UINT64_MAX;   /* tombstone */
			return;
		}
}

void qstate_free(struct qfs *q)
{
	for (size_t i = 0; q->queues && i < q->nqueue_buckets; i++)
		while (q->queues[i])
			queue_remove(q, q->queues[i]);
	for (size_t i = 0; q->synths && i < q->nsynth_buckets; i++)
		while (q->synths[i]) {
			q->synths[i]->refs = 0;
			synth_drop(q, q->synths[i]);
		}
	for (size_t i = 0; q->inodes && i < q->ninode_buckets; i++)
		while (q->inodes[i]) {
			struct qinode *qi = q->inodes[i];

			q->inodes[i] = qi->next_hash;
			if (qi->pinned)
				q->inner->ops->forget(q->inner, qi->ino, 1);
			free(qi);
		}
	for (size_t i = 0; q->usage && i < q->nusage_buckets; i++)
		while (q->usage[i]) {
			struct qusage *u = q->usage[i];

			q->usage[i] = u->next_hash;
			free(u);
		}
	free(q->queues);
	free(q->synths);
	free(q->inodes);
	free(q->usage);
	free(q->plain.slots);
}
