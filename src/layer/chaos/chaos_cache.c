/*
** chaos_cache.c -- the chaos client's own caches: attributes, names,
** absences (negative entries) and listings, each served unchanged until
** meta-ttl has passed since it was fetched from the truth (the inner
** filesystem), and the inode references behind them.
**
** The kernel caches nothing under chaos (timeouts 0, direct I/O): this
** client's caches are the only source of staleness, so they are exact and
** counted. The client's own changes update its caches at once
** (read-your-writes); nobody else's do.
**
** References: every entry the inner filesystem returns carries one inner
** reference, which the cnode keeps (iref) while the kernel holds the inode
** (kref), a cached name points to it (eref), a file is open on it or a
** change to it is unpublished. A lookup answered from the cache gives the
** kernel a reference without asking the inner filesystem, so the inner
** references are returned only when the cnode goes, all at once.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chaos_int.h"

/* Inner forgets collected under the lock, sent after it. */
struct forgets {
	uint64_t ino[8], n[8];
	size_t len;
};

static void forgets_add(struct cfs *s, struct forgets *fg, uint64_t ino, uint64_t n)
{
	if (!n)
		return;
	if (fg->len == 8) {
		/* Rare (a sweep): send one now, outside the lock. */
		pthread_mutex_unlock(&s->lock);
		cnode_forget_inner(s, ino, n);
		pthread_mutex_lock(&s->lock);
		return;
	}
	fg->ino[fg->len] = ino;
	fg->n[fg->len++] = n;
}

static void forgets_send(struct cfs *s, struct forgets *fg)
{
	size_t i;

	for (i = 0; i < fg->len; i++)
		cnode_forget_inner(s, fg->ino[i], fg->n[i]);
	fg->len = 0;
}

void cnode_forget_inner(struct cfs *s, uint64_t ino, uint64_t iref)
{
	if (iref)
		s->inner->ops->forget(s->inner, ino, iref);
}

bool chaos_fresh(struct cfs *s, double at)
{
	return k_ttl(s) > 0 && at + (double)k_ttl(s) / 1000.0 > chaos_now();
}

/****************************** cnodes ******************************/

static size_t ino_bucket(uint64_t ino, size_t nb)
{
	return (size_t)((ino * UINT64_C(0x9e3779b97f4a7c15)) >> 20) % nb;
}

struct cnode *cnode_find(struct cfs *s, uint64_t ino)
{
	struct cnode *n;

	for (n = s->nodes[ino_bucket(ino, s->nnodes_b)]; n; n = n->next_hash)
		if (n->ino == ino)
			return n;
	return NULL;
}

static void nodes_grow(struct cfs *s)
{
	size_t nb = s->nnodes_b * 2, i;
	struct cnode **v = calloc(nb, sizeof(*v));

	if (!v)
		return;
	for (i = 0; i < s->nnodes_b; i++) {
		struct cnode *n, *next;

		for (n = s->nodes[i]; n; n = next) {
			size_t b = ino_bucket(n->ino, nb);

			next = n->next_hash;
			n->next_hash = v[b];
			v[b] = n;
		}
	}
	free(s->nodes);
	s->nodes = v;
	s->nnodes_b = nb;
}

struct cnode *cnode_get(struct cfs *s, uint64_t ino)
{
	struct cnode *n = cnode_find(s, ino);
	size_t b;

	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ino = ino;
	pthread_mutex_init(&n->io, NULL);
	if (s->nnodes >= s->nnodes_b)
		nodes_grow(s);
	b = ino_bucket(ino, s->nnodes_b);
	n->next_hash = s->nodes[b];
	s->nodes[b] = n;
	s->nnodes++;
	return n;
}

void chaos_listing_put(struct clisting *l)
{
	size_t i;

	if (!l || --l->refs)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	free(l);
}

/* Frees N if nothing holds it; returns the inner references to forget
** (the caller sends them after unlocking). Called with s->lock held. */
uint64_t cnode_release_if_unused(struct cfs *s, struct cnode *n)
{
	struct cnode **pp;
	uint64_t iref;

	if (n->kref || n->eref || n->opens || n->npend || n->pins || n->ino == EDDY_ROOT_INO)
		return 0;
	for (pp = &s->nodes[ino_bucket(n->ino, s->nnodes_b)]; *pp; pp = &(*pp)->next_hash) {
		if (*pp == n) {
			*pp = n->next_hash;
			break;
		}
	}
	s->nnodes--;
	iref = n->iref;
	free(n->pname);
	free(n->silly_name);
	chaos_listing_put(n->listing);
	pthread_mutex_destroy(&n->io);
	free(n);
	return iref;
}

void chaos_attr_store(struct cfs *s, uint64_t ino, const struct stat *st)
{
	struct cnode *n;

	pthread_mutex_lock(&s->lock);
	if ((n = cnode_find(s, ino))) {
		chaos_attr_observed(s, n, st);
		n->attr = *st;
		n->have_attr = true;
		n->attr_at = chaos_now();
	}
	pthread_mutex_unlock(&s->lock);
}

static void attr_drop_locked(struct cfs *s, uint64_t ino)
{
	struct cnode *n = cnode_find(s, ino);

	if (n)
		n->attr_at = CHAOS_STALE;
}

void chaos_attr_drop(struct cfs *s, uint64_t ino)
{
	pthread_mutex_lock(&s->lock);
	attr_drop_locked(s, ino);
	pthread_mutex_unlock(&s->lock);
}

/****************************** names ******************************/

static size_t entry_bucket(uint64_t parent, const char *name, size_t nb)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^ (parent * UINT64_C(0x9e3779b97f4a7c15));

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * UINT64_C(0x100000001b3);
	return (size_t)(h % nb);
}

static struct centry **entry_slot(struct cfs *s, uint64_t parent, const char *name)
{
	struct centry **pp = &s->entries[entry_bucket(parent, name, s->nentries_b)];

	for (; *pp; pp = &(*pp)->next_hash)
		if ((*pp)->parent == parent && strcmp((*pp)->name, name) == 0)
			return pp;
	return pp;
}

static void entry_unref(struct cfs *s, struct centry *e, struct forgets *fg)
{
	struct cnode *n;

	if (e->ino && (n = cnode_find(s, e->ino))) {
		uint64_t iref;

		n->eref--;
		iref = cnode_release_if_unused(s, n);      /* may free n */
		forgets_add(s, fg, e->ino, iref);
	}
}

static void entry_remove(struct cfs *s, struct centry **pp, struct forgets *fg)
{
	struct centry *e = *pp;

	*pp = e->next_hash;
	s->nentries--;
	entry_unref(s, e, fg);
	free(e->name);
	free(e);
}

static void entries_grow(struct cfs *s)
{
	size_t nb = s->nentries_b * 2, i;
	struct centry **v = calloc(nb, sizeof(*v));

	if (!v)
		return;
	for (i = 0; i < s->nentries_b; i++) {
		struct centry *e, *next;

		for (e = s->entries[i]; e; e = next) {
			size_t b = entry_bucket(e->parent, e->name, nb);

			next = e->next_hash;
			e->next_hash = v[b];
			v[b] = e;
		}
	}
	free(s->entries);
	s->entries = v;
	s->nentries_b = nb;
}

/* Whether a name cached at AT may still be served some day. */
static bool entry_kept(struct cfs *s, double at)
{
	if (s->nfs.on)
		return at + s->nfs.acdirmax + 1 > chaos_now();
	return chaos_fresh(s, at);
}

/* Drops expired names now and then, so the table stays the size of what
** was looked up within one meta-ttl. */
static void entries_sweep(struct cfs *s, struct forgets *fg)
{
	size_t i;

	if (++s->inserts_since_sweep < 1024 || s->nentries < 1024)
		return;
	s->inserts_since_sweep = 0;
	for (i = 0; i < s->nentries_b; i++) {
		struct centry **pp = &s->entries[i];

		while (*pp) {
			if (!entry_kept(s, (*pp)->at))
				entry_remove(s, pp, fg);
			else
				pp = &(*pp)->next_hash;
		}
	}
}

/* Caches (parent, name) -> ino (0: absent), fresh for meta-ttl. */
static void entry_set(struct cfs *s, uint64_t parent, const char *name, uint64_t ino,
		      struct forgets *fg)
{
	struct centry **pp, *e;
	struct cnode *n = NULL;

	if (!chaos_caches(s))
		return;
	if (ino && !(n = cnode_find(s, ino)))
		ino = 0;        /* not held: forget the name rather than cache it */
	pp = entry_slot(s, parent, name);
	if (*pp) {
		e = *pp;
		entry_unref(s, e, fg);
	} else {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->name = strdup(name))) {
			free(e);
			return;
		}
		e->parent = parent;
		if (s->nentries >= s->nentries_b * 2) {
			entries_grow(s);
			pp = entry_slot(s, parent, name);
		}
		e->next_hash = *pp;
		*pp = e;
		s->nentries++;
		entries_sweep(s, fg);
	}
	e->ino = ino;
	e->at = chaos_now();
	if (n)
		n->eref++;
}

static void name_node_locked(struct cnode *n, uint64_t parent, const char *name)
{
	char *copy;

	if (n->pname && n->pparent == parent && strcmp(n->pname, name) == 0)
		return;
	if ((copy = strdup(name))) {
		free(n->pname);
		n->pname = copy;
		n->pparent = parent;
	}
}

/* INO is now known to this client as NAME in PARENT (its own rename). */
void chaos_name_node(struct cfs *s, uint64_t ino, uint64_t parent, const char *name)
{
	struct cnode *n;

	pthread_mutex_lock(&s->lock);
	if ((n = cnode_find(s, ino)))
		name_node_locked(n, parent, name);
	pthread_mutex_unlock(&s->lock);
}

void chaos_took_entry(struct cfs *s, uint64_t parent, const char *name, struct eddy_entry *e,
		      bool cache_name)
{
	struct forgets fg = { .len = 0 };
	struct cnode *n;

	pthread_mutex_lock(&s->lock);
	n = cnode_get(s, e->ino);
	if (n) {
		n->kref++;
		n->iref++;
		chaos_attr_observed(s, n, &e->attr);
		n->attr = e->attr;
		n->have_attr = true;
		n->attr_at = chaos_now();
		if (name)
			name_node_locked(n, parent, name);
		if (cache_name && name)
			entry_set(s, parent, name, e->ino, &fg);
	}
	pthread_mutex_unlock(&s->lock);
	forgets_send(s, &fg);
	e->attr_timeout = 0;
	e->entry_timeout = 0;
}

void chaos_own_change(struct cfs *s, uint64_t parent, const char *name, uint64_t child)
{
	struct forgets fg = { .len = 0 };
	struct cnode *p;

	pthread_mutex_lock(&s->lock);
	if ((p = cnode_find(s, parent))) {
		p->attr_at = CHAOS_STALE;
		p->list_at = CHAOS_STALE;
	}
	if (name)
		entry_set(s, parent, name, child, &fg);
	if (child)
		attr_drop_locked(s, child);
	pthread_mutex_unlock(&s->lock);
	forgets_send(s, &fg);
}

void chaos_forget_name(struct cfs *s, uint64_t parent, const char *name)
{
	struct forgets fg = { .len = 0 };
	struct centry **pp;

	pthread_mutex_lock(&s->lock);
	pp = entry_slot(s, parent, name);
	if (*pp)
		entry_remove(s, pp, &fg);
	pthread_mutex_unlock(&s->lock);
	forgets_send(s, &fg);
}

/* The truth has no (parent, name): cache the absence (nothing changed). */
void chaos_entry_absent(struct cfs *s, uint64_t parent, const char *name)
{
	struct forgets fg = { .len = 0 };

	pthread_mutex_lock(&s->lock);
	entry_set(s, parent, name, 0, &fg);
	pthread_mutex_unlock(&s->lock);
	forgets_send(s, &fg);
}

/* The inode a cached name points to (0: not cached or absent). */
static uint64_t cached_child(struct cfs *s, uint64_t parent, const char *name)
{
	struct centry **pp;
	uint64_t ino = 0;

	pthread_mutex_lock(&s->lock);
	pp = entry_slot(s, parent, name);
	if (*pp)
		ino = (*pp)->ino;
	pthread_mutex_unlock(&s->lock);
	return ino;
}

/****************************** lookup, getattr ******************************/

/* Answers from the cache: 1 (OUT filled, one kernel reference given),
** -ENOENT (a cached absence) or 0 (not cached). */
static int lookup_cached(struct cfs *s, uint64_t parent, const char *name,
			 struct eddy_entry *out)
{
	struct centry **pp;
	struct cnode *n;
	bool fresh_attr;
	uint64_t ino;

	chaos_nfs_revalidate(s, parent);
	pthread_mutex_lock(&s->lock);
	pp = entry_slot(s, parent, name);
	if (!*pp || !(s->nfs.on ? chaos_nfs_names_valid(s, cnode_find(s, parent), (*pp)->at,
							!(*pp)->ino)
				: chaos_fresh(s, (*pp)->at))) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	ino = (*pp)->ino;
	if (!ino) {
		s->n_neg_hits++;
		pthread_mutex_unlock(&s->lock);
		chaos_decision(s, "lookup", parent, name, "cached-absent", -1);
		return -ENOENT;
	}
	n = cnode_find(s, ino);
	if (!n) {               /* cannot happen: the entry holds it */
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	n->kref++;
	s->n_entry_hits++;
	fresh_attr = chaos_attr_fresh(s, n);
	memset(out, 0, sizeof(*out));
	out->ino = ino;
	out->attr = n->attr;
	pthread_mutex_unlock(&s->lock);
	chaos_decision(s, "lookup", parent, name, "cached", -1);
	if (!fresh_attr) {
		struct eddy_ctx c;
		struct stat st;
		double t;

		eddy_ctx_self(&c);
		if (s->inner->ops->getattr(s->inner, &c, ino, NULL, &st, &t) == 0) {
			chaos_attr_store(s, ino, &st);
			out->attr = st;
		}
		/* else: the inode is gone from the truth; the cached name still
		 * leads to it, with its last known attributes (as on NFS). */
	}
	return 1;
}

int c_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	     struct eddy_entry *out)
{
	struct cfs *s = cfs_of(fs);
	int r;

	/* this client's unpublished names first */
	r = chaos_ns_lookup(s, c, parent, name, out);
	if (r < 0)
		return r;
	if (r > 0)
		goto done;
	if (chaos_caches(s)) {
		r = lookup_cached(s, parent, name, out);
		if (r < 0)
			return r;
		if (r > 0)
			goto view;
	}
	r = s->inner->ops->lookup(s->inner, c, parent, name, out);
	if (r == 0 && out->ino == 0)
		r = -ENOENT;
	if (r == -ENOENT) {
		chaos_entry_absent(s, parent, name);
		return r;
	}
	if (r < 0)
		return r;
	chaos_took_entry(s, parent, name, out, true);
view:
	chaos_view_attr(s, out->ino, &out->attr);
done:
	out->attr_timeout = 0;
	out->entry_timeout = 0;
	return 0;
}

void c_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct cfs *s = cfs_of(fs);
	struct cnode *n;
	uint64_t iref;

	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);
	if (!n) {
		pthread_mutex_unlock(&s->lock);
		s->inner->ops->forget(s->inner, ino, nlookup);
		return;
	}
	n->kref = n->kref > nlookup ? n->kref - nlookup : 0;
	iref = cnode_release_if_unused(s, n);
	pthread_mutex_unlock(&s->lock);
	cnode_forget_inner(s, ino, iref);
}

int c_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
	      struct stat *st, double *attr_timeout)
{
	struct cfs *s = cfs_of(fs);
	struct cnode *n;
	bool hit = false;
	double t;
	int r;

	if ((r = chaos_fault_only(s, "getattr", ino)) < 0)
		return r;
	if (chaos_caches(s)) {
		pthread_mutex_lock(&s->lock);
		n = cnode_find(s, ino);
		if (n && chaos_attr_fresh(s, n)) {
			*st = n->attr;
			hit = true;
			s->n_attr_hits++;
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (f && (r = chaos_nfs_stale(s, (struct cfile *)f)) < 0)
		return r;
	if (hit) {
		chaos_decision(s, "getattr", ino, NULL, "cached", -1);
	} else {
		r = s->inner->ops->getattr(s->inner, c, ino,
					   f ? ((struct cfile *)f)->inner : NULL, st, &t);
		if (r < 0)
			return r;
		if (st->st_nlink == 0 && chaos_nfs_removed_elsewhere(s, ino))
			return -ESTALE;
		chaos_attr_store(s, ino, st);
	}
	chaos_view_attr(s, ino, st);
	*attr_timeout = 0;
	return 0;
}

/* For unlink and rmdir: the inode behind (parent, name), so that its
** cached attributes (link count) can be dropped; 0 if unknown. */
uint64_t chaos_peek_child(struct cfs *s, const struct eddy_ctx *c, uint64_t parent,
			  const char *name)
{
	struct eddy_entry e;
	uint64_t ino = cached_child(s, parent, name);

	if (ino || !chaos_caches(s))
		return ino;
	if (s->inner->ops->lookup(s->inner, c, parent, name, &e) < 0 || !e.ino)
		return 0;
	s->inner->ops->forget(s->inner, e.ino, 1);
	return e.ino;
}

/****************************** listings ******************************/

struct collect {
	struct clisting *l;
	size_t cap;
	int err;
};

static int collect_fill(void *arg, const char *name, const struct stat *st,
			const struct eddy_entry *entry, uint64_t next)
{
	struct collect *co = arg;
	struct clisting *l = co->l;

	(void)entry;
	(void)next;
	if (l->n == co->cap) {
		size_t cap = co->cap ? co->cap * 2 : 32;
		struct cdent *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			co->err = -ENOMEM;
			return 1;
		}
		l->v = v;
		co->cap = cap;
	}
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name) {
		co->err = -ENOMEM;
		return 1;
	}
	l->v[l->n].ino = st->st_ino;
	l->v[l->n].type = st->st_mode & S_IFMT;
	l->n++;
	return 0;
}

/* The truth's listing of D, read in full. */
static int read_listing(struct cfs *s, const struct eddy_ctx *c, struct cfile *d,
			struct clisting **out)
{
	struct collect co = { 0 };
	int r;

	co.l = calloc(1, sizeof(*co.l));
	if (!co.l)
		return -ENOMEM;
	co.l->refs = 1;
	r = s->inner->ops->readdir(s->inner, c, d->inner, 0, false, collect_fill, &co);
	if (r == 0)
		r = co.err;
	if (r < 0) {
		chaos_listing_put(co.l);
		return r;
	}
	*out = co.l;
	return 0;
}

int c_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file **fp,
	      struct eddy_open *how)
{
	struct cfs *s = cfs_of(fs);
	struct eddy_file *in;
	struct cfile *d;
	int r;

	r = chaos_drop(s, "opendir", ino);
	if (r < 0)
		return r;
	r = s->inner->ops->opendir(s->inner, c, ino, &in, how);
	if (r < 0)
		return r;
	d = cfile_new(in, ino, O_RDONLY);
	if (!d) {
		s->inner->ops->releasedir(s->inner, in);
		return -ENOMEM;
	}
	d->dir = true;
	how->cache_readdir = false;
	how->keep_cache = false;
	*fp = &d->base;
	return 0;
}

/* The listing to serve from the start: the cached one while fresh. */
static int listing_for(struct cfs *s, const struct eddy_ctx *c, struct cfile *d,
		       struct clisting **out)
{
	struct clisting *l = NULL;
	struct cnode *n;
	int r;

	if (chaos_caches(s)) {
		chaos_nfs_revalidate(s, d->base.ino);
		pthread_mutex_lock(&s->lock);
		n = cnode_find(s, d->base.ino);
		if (n && n->listing &&
		    (s->nfs.on ? n->list_at >= n->changed_at && chaos_attr_fresh(s, n)
			       : chaos_fresh(s, n->list_at))) {
			l = n->listing;
			l->refs++;
			s->n_list_hits++;
		}
		pthread_mutex_unlock(&s->lock);
		if (l) {
			chaos_decision(s, "readdir", d->base.ino, NULL, "cached", -1);
			*out = l;
			return 0;
		}
	}
	r = read_listing(s, c, d, &l);
	if (r < 0)
		return r;
	if (chaos_caches(s)) {
		pthread_mutex_lock(&s->lock);
		n = cnode_find(s, d->base.ino);
		if (n) {
			chaos_listing_put(n->listing);
			n->listing = l;
			l->refs++;
			n->list_at = chaos_now();
		}
		pthread_mutex_unlock(&s->lock);
	}
	*out = l;
	return 0;
}

int c_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f, uint64_t cookie,
	      bool plus, eddy_fill_fn fill, void *buf)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *d = (struct cfile *)f;
	size_t i;
	int r;

	if (cookie == 0 || !d->snap) {
		struct clisting *l;

		if (cookie == 0 && (r = chaos_drop(s, "readdir", f->ino)) < 0)
			return r;
		r = listing_for(s, c, d, &l);
		if (r < 0)
			return r;
		l = chaos_view_listing(s, f->ino, l);
		pthread_mutex_lock(&s->lock);
		chaos_listing_put(d->snap);
		d->snap = l;
		pthread_mutex_unlock(&s->lock);
	}
	for (i = (size_t)cookie; i < d->snap->n; i++) {
		const struct cdent *de = &d->snap->v[i];
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = de->ino;
		st.st_mode = de->type;
		if (plus) {
			/* No reference and no attributes: the kernel looks the
			 * name up (through this client's cache) when it needs it. */
			struct eddy_entry e;

			memset(&e, 0, sizeof(e));
			e.attr = st;
			if (fill(buf, de->name, &st, &e, i + 1))
				break;
		} else if (fill(buf, de->name, &st, NULL, i + 1)) {
			break;
		}
	}
	return 0;
}

void c_releasedir(struct eddy_fs *fs, struct eddy_file *f)
{
	struct cfs *s = cfs_of(fs);
	struct cfile *d = (struct cfile *)f;

	s->inner->ops->releasedir(s->inner, d->inner);
	pthread_mutex_lock(&s->lock);
	chaos_listing_put(d->snap);
	pthread_mutex_unlock(&s->lock);
	free(d);
}

void chaos_cache_free(struct cfs *s)
{
	struct forgets fg = { .len = 0 };
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nentries_b; i++)
		while (s->entries[i])
			entry_remove(s, &s->entries[i], &fg);
	pthread_mutex_unlock(&s->lock);
	forgets_send(s, &fg);
	for (i = 0; i < s->nnodes_b; i++) {
		struct cnode *n, *next;

		for (n = s->nodes[i]; n; n = next) {
			next = n->next_hash;
			free(n->pname);
			free(n->silly_name);
			chaos_listing_put(n->listing);
			pthread_mutex_destroy(&n->io);
			free(n);
		}
	}
	free(s->nodes);
	free(s->entries);
}
