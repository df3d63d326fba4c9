/*
** vol_inode.c -- the volume backend's in-memory inode table: what the
** mount holds of an inode (kernel references, open handles, pins of
** operations in progress, dirty data and its overlay), and the decision
** to delete an inode that has lost its last name and its last holder
** (vol_int.h, INODE LIFETIME).
**
** The table is a chained hash by inode number under table_lock; an entry
** goes as soon as nothing holds it (it keeps nothing the database lacks).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vol_int.h"

static size_t hash_ino(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

int vol_table_init(struct vol_fs *v)
{
	v->nbuckets = 1024;
	v->table = calloc(v->nbuckets, sizeof(*v->table));
	return v->table ? 0 : -ENOMEM;
}

static void inode_free(struct vol_inode *vi)
{
	pthread_rwlock_destroy(&vi->data_lock);
	free(vi);
}

void vol_table_free(struct vol_fs *v)
{
	for (size_t i = 0; v->table && i < v->nbuckets; i++) {
		while (v->table[i]) {
			struct vol_inode *vi = v->table[i];

			v->table[i] = vi->hnext;
			vol_data_discard(v, vi);
			inode_free(vi);
		}
	}
	free(v->table);
	v->table = NULL;
}

/* table_lock held. */
static struct vol_inode *find(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi = v->table[hash_ino(ino) & (v->nbuckets - 1)];

	while (vi && vi->ino != ino)
		vi = vi->hnext;
	return vi;
}

static void grow(struct vol_fs *v)
{
	size_t n = v->nbuckets * 2;
	struct vol_inode **t = calloc(n, sizeof(*t));

	if (!t)
		return;                 /* longer chains */
	for (size_t i = 0; i < v->nbuckets; i++) {
		struct vol_inode *vi = v->table[i], *next;

		for (; vi; vi = next) {
			next = vi->hnext;
			vi->hnext = t[hash_ino(vi->ino) & (n - 1)];
			t[hash_ino(vi->ino) & (n - 1)] = vi;
		}
	}
	free(v->table);
	v->table = t;
	v->nbuckets = n;
}

/* table_lock held: finds or adds INO. */
static struct vol_inode *find_or_add(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi = find(v, ino);
	size_t b;

	if (vi)
		return vi;
	vi = calloc(1, sizeof(*vi));
	if (!vi)
		return NULL;
	vi->ino = ino;
	pthread_rwlock_init(&vi->data_lock, NULL);
	if (v->count >= v->nbuckets)
		grow(v);
	b = hash_ino(ino) & (v->nbuckets - 1);
	vi->hnext = v->table[b];
	v->table[b] = vi;
	v->count++;
	return vi;
}

/* table_lock held: removes VI if nothing holds it. */
static void drop_if_unused(struct vol_fs *v, struct vol_inode *vi)
{
	struct vol_inode **p;

	if (vi->nlookup || vi->nopen || vi->pins || vi->dirty)
		return;
	for (p = &v->table[hash_ino(vi->ino) & (v->nbuckets - 1)]; *p && *p != vi;
	     p = &(*p)->hnext)
		;
	if (*p) {
		*p = vi->hnext;
		v->count--;
	}
	inode_free(vi);
}

struct vol_inode *vol_inode_pin(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi;

	pthread_mutex_lock(&v->table_lock);
	vi = find_or_add(v, ino);
	if (vi)
		vi->pins++;
	pthread_mutex_unlock(&v->table_lock);
	return vi;
}

void vol_inode_unpin(struct vol_fs *v, struct vol_inode *vi)
{
	pthread_mutex_lock(&v->table_lock);
	vi->pins--;
	drop_if_unused(v, vi);
	pthread_mutex_unlock(&v->table_lock);
}

bool vol_inode_held(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi;
	bool held;

	if (!v->table)
		return false;   /* the open is ending: it holds nothing */
	pthread_mutex_lock(&v->table_lock);
	vi = find(v, ino);
	held = vi && (vi->nlookup || vi->nopen || vi->pins);
	pthread_mutex_unlock(&v->table_lock);
	return held;
}

bool vol_inode_adopt(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi;
	bool held;

	if (!v->table)
		return false;
	pthread_mutex_lock(&v->table_lock);
	vi = find(v, ino);
	held = vi && (vi->nlookup || vi->nopen || vi->pins);
	if (held)
		vi->orphan = true;
	pthread_mutex_unlock(&v->table_lock);
	return held;
}

/* table_lock held. */
static void overlay(struct vol_inode *vi, struct stat *st)
{
	if (!vi || !vi->overlay)
		return;
	st->st_size = (off_t)vi->size;
	vol_ns_to_ts(vi->mtime, &st->st_mtim);
	vol_ns_to_ts(vi->ctime, &st->st_ctim);
}

void vol_stat_overlay(struct vol_fs *v, const struct vol_attr *a, struct stat *st)
{
	vol_attr_stat(v, a, st);
	if (!S_ISREG(a->mode))
		return;
	pthread_mutex_lock(&v->table_lock);
	overlay(find(v, a->ino), st);
	pthread_mutex_unlock(&v->table_lock);
}

int vol_fill_entry(struct vol_fs *v, const struct vol_attr *a, struct eddy_entry *e)
{
	struct vol_inode *vi;

	memset(e, 0, sizeof(*e));
	vol_attr_stat(v, a, &e->attr);
	pthread_mutex_lock(&v->table_lock);
	vi = find_or_add(v, a->ino);
	if (vi) {
		vi->nlookup++;
		overlay(vi, &e->attr);
	}
	pthread_mutex_unlock(&v->table_lock);
	if (!vi)
		return -ENOMEM;
	e->ino = a->ino;
	e->attr_timeout = v->opt.attr_timeout;
	e->entry_timeout = v->opt.entry_timeout;
	return 0;
}

void vol_inode_reap(struct vol_fs *v, uint64_t ino)
{
	struct vol_attr a;
	sqlite3_stmt *s;
	int err;

	if (vol_inode_held(v, ino) || ino == EDDY_ROOT_INO)
		return;
	err = vol_tx_begin(v);
	if (err)
		return;         /* the hold stays: the reaper of our session end */
	s = vol_q(v, Q_HOLD_DEL);
	if (!s)
		err = -EIO;
	if (!err) {
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		sqlite3_bind_int64(s, 2, v->session);
		err = vol_exec(v, s);
	}
	/* deleted now only if no other session may reference it unadopted;
	 * else the reaper deletes it when it is old enough (vol_session.c) */
	if (!err && !(err = vol_attr_get(v, ino, &a)) && a.nlink == 0 &&
	    (err = vol_hold_any(v, ino)) == 0 && (err = vol_session_others(v)) == 0)
		err = vol_inode_delete_rows(v, &a);
	if (err == -ESTALE || err > 0)
		err = 0;        /* gone already, or another session holds it */
	vol_tx_end(v, err);
	/* on failure the row stays an orphan: the reaper deletes it */
}

void vol_inode_unref(struct vol_fs *v, uint64_t ino, uint64_t n, bool opened)
{
	struct vol_inode *vi;
	bool unused = false;

	pthread_mutex_lock(&v->table_lock);
	vi = find(v, ino);
	if (vi) {
		if (opened)
			vi->nopen--;
		else
			vi->nlookup = n > vi->nlookup ? 0 : vi->nlookup - n;
		unused = vi->orphan && !vi->nlookup && !vi->nopen && !vi->pins;
		drop_if_unused(v, vi);
	}
	pthread_mutex_unlock(&v->table_lock);
	if (unused) {
		pthread_mutex_lock(&v->db_lock);
		vol_inode_reap(v, ino);
		pthread_mutex_unlock(&v->db_lock);
	}
}

int vol_inode_unlinked(struct vol_fs *v, const struct vol_attr *a, bool *deleted)
{
	struct vol_inode *vi;
	bool held;
	int any;

	if (deleted)
		*deleted = false;
	if (a->nlink > 0)
		return 0;
	pthread_mutex_lock(&v->table_lock);
	vi = find(v, a->ino);
	/* The kernel's lookup reference alone does not keep a file alive:
	 * with no open file and no name, nothing can reach it but a request
	 * already racing with this unlink, which then fails as if it came
	 * after it. A directory stays: it may be a process's working
	 * directory, and stat(".") there answers until the last reference. */
	held = vi && (vi->nopen || vi->pins || (vi->nlookup && S_ISDIR(a->mode)));
	if (held)
		vi->orphan = true;
	pthread_mutex_unlock(&v->table_lock);
	if (held)
		return vol_hold_add(v, a->ino);
	/* another session may have it open: its reaper adopts it, or ours
	 * deletes it once it is old enough (vol_session.c, rule 3). Alone,
	 * nobody else can hold it (holds go with their session's row). */
	if ((any = vol_session_others(v)))
		return any < 0 ? any : 0;
	if ((any = vol_inode_delete_rows(v, a)) == 0 && deleted)
		*deleted = true;
	return any;
}

int vol_handle_new(struct vol_fs *v, uint64_t ino, int flags, bool dir, struct eddy_file **fp)
{
	struct vol_file *f = calloc(1, sizeof(*f));
	struct vol_inode *vi;

	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&v->table_lock);
	vi = find_or_add(v, ino);
	if (vi) {
		vi->nopen++;
		f->base.ino = ino;
		f->vi = vi;
		f->flags = flags;
		f->is_dir = dir;
		f->next = v->files;
		if (v->files)
			v->files->prev = f;
		v->files = f;
	}
	pthread_mutex_unlock(&v->table_lock);
	if (!vi) {
		free(f);
		return -ENOMEM;
	}
	atomic_fetch_add(&v->nopen, 1);
	*fp = &f->base;
	return 0;
}

void vol_handle_free(struct vol_fs *v, struct vol_file *f)
{
	uint64_t ino = f->vi->ino;

	vol_locks_release_file(v, f);
	pthread_mutex_lock(&v->table_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		v->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&v->table_lock);
	atomic_fetch_sub(&v->nopen, 1);
	free(f);
	vol_inode_unref(v, ino, 0, true);
}

void vol_inode_unref_named(struct vol_fs *v, uint64_t ino)
{
	struct vol_inode *vi;

	pthread_mutex_lock(&v->table_lock);
	vi = find(v, ino);
	if (vi && vi->nlookup) {
		vi->nlookup--;
		drop_if_unused(v, vi);
	}
	pthread_mutex_unlock(&v->table_lock);
}
