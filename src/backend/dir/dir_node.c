/*
** dir_node.c -- the dir backend's node table and its bounded fd cache.
**
** Maps eddyfs inode numbers to backing objects without keeping one open fd
** per inode: each node remembers (parent, name) and its backing identity
** (st_dev, st_ino); an O_PATH fd is opened on demand by walking the parent
** chain with openat(O_NOFOLLOW) and checking the identity, and is kept in a
** clock cache of cache_cap slots. See dir_int.h for the invariants.
**
** Divisions: hashing · node lifetime · fd cache · resolution · naming.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir_int.h"

/****************************** hashing ******************************/

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t)x;
}

static size_t bid_hash(dev_t dev, ino_t ino)
{
	return hash_u64((uint64_t)ino * 31 + (uint64_t)dev);
}

static size_t name_hash(uint64_t parent, const char *name)
{
	size_t h = hash_u64(parent);

	for (; *name; name++)
		h = h * 131 + (unsigned char)*name;
	return h;
}

static int hash_init(struct dir_hash *h, size_t n)
{
	h->buckets = calloc(n, sizeof(*h->buckets));
	h->nbuckets = n;
	return h->buckets ? 0 : -ENOMEM;
}

static struct dir_node *find_ino(struct dir_fs *d, uint64_t ino)
{
	struct dir_node *n = d->by_ino.buckets[hash_u64(ino) & (d->by_ino.nbuckets - 1)];

	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

static struct dir_node *find_bid(struct dir_fs *d, dev_t dev, ino_t bino)
{
	struct dir_node *n = d->by_bid.buckets[bid_hash(dev, bino) & (d->by_bid.nbuckets - 1)];

	while (n && (n->bino != bino || n->bdev != dev))
		n = n->next_bid;
	return n;
}

static void link_ino(struct dir_fs *d, struct dir_node *n)
{
	size_t b = hash_u64(n->ino) & (d->by_ino.nbuckets - 1);

	n->next_ino = d->by_ino.buckets[b];
	d->by_ino.buckets[b] = n;
}

static void link_bid(struct dir_fs *d, struct dir_node *n)
{
	size_t b = bid_hash(n->bdev, n->bino) & (d->by_bid.nbuckets - 1);

	n->next_bid = d->by_bid.buckets[b];
	d->by_bid.buckets[b] = n;
}

static void link_name(struct dir_fs *d, struct dir_node *n)
{
	size_t b;

	if (!n->name)
		return;
	b = name_hash(n->parent, n->name) & (d->by_name.nbuckets - 1);
	n->next_name = d->by_name.buckets[b];
	d->by_name.buckets[b] = n;
}

static void unlink_name(struct dir_fs *d, struct dir_node *n)
{
	struct dir_node **p;

	if (!n->name)
		return;
	p = &d->by_name.buckets[name_hash(n->parent, n->name) & (d->by_name.nbuckets - 1)];
	while (*p && *p != n)
		p = &(*p)->next_name;
	if (*p)
		*p = n->next_name;
}

static void unlink_ino(struct dir_fs *d, struct dir_node *n)
{
	struct dir_node **p = &d->by_ino.buckets[hash_u64(n->ino) & (d->by_ino.nbuckets - 1)];

	while (*p && *p != n)
		p = &(*p)->next_ino;
	if (*p)
		*p = n->next_ino;
}

static void unlink_bid(struct dir_fs *d, struct dir_node *n)
{
	struct dir_node **p;

	if (n->dead)
		return;
	p = &d->by_bid.buckets[bid_hash(n->bdev, n->bino) & (d->by_bid.nbuckets - 1)];
	while (*p && *p != n)
		p = &(*p)->next_bid;
	if (*p)
		*p = n->next_bid;
	n->dead = 1;
}

/* Doubles both hash tables when the load passes 1; failure to grow is
** harmless (chains get longer). */
static void maybe_grow(struct dir_fs *d)
{
	struct dir_hash oi = d->by_ino, ob = d->by_bid, on = d->by_name;
	size_t i;

	if (d->nnodes < d->by_ino.nbuckets)
		return;
	if (hash_init(&d->by_ino, oi.nbuckets * 2) < 0) {
		d->by_ino = oi;
		return;
	}
	if (hash_init(&d->by_bid, ob.nbuckets * 2) < 0) {
		free(d->by_ino.buckets);
		d->by_ino = oi;
		d->by_bid = ob;
		return;
	}
	if (hash_init(&d->by_name, on.nbuckets * 2) < 0) {
		free(d->by_ino.buckets);
		free(d->by_bid.buckets);
		d->by_ino = oi;
		d->by_bid = ob;
		d->by_name = on;
		return;
	}
	for (i = 0; i < on.nbuckets; i++) {
		struct dir_node *n = on.buckets[i], *next;

		for (; n; n = next) {
			next = n->next_name;
			link_name(d, n);
		}
	}
	free(on.buckets);
	for (i = 0; i < oi.nbuckets; i++) {
		struct dir_node *n = oi.buckets[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			link_ino(d, n);
		}
	}
	for (i = 0; i < ob.nbuckets; i++) {
		struct dir_node *n = ob.buckets[i], *next;

		for (; n; n = next) {
			next = n->next_bid;
			link_bid(d, n);
		}
	}
	free(oi.buckets);
	free(ob.buckets);
}

/****************************** fd cache ******************************/

static void slot_clear(struct dir_fs *d, struct dir_node *n)
{
	if (n->slot >= 0) {
		d->clock[n->slot] = NULL;
		d->clock_used--;
		n->slot = -1;
	}
}

/* Gives N's fd a slot, evicting an unreferenced one (clock). If every slot
** is busy the fd stays transient: closed when its last user puts it. */
static void slot_add(struct dir_fs *d, struct dir_node *n)
{
	size_t cap = d->opt.fd_cache, i;

	if (n->pinned || n->slot >= 0 || cap == 0)
		return;
	for (i = 0; i < 3 * cap; i++) {
		size_t s = d->clock_hand;
		struct dir_node *m = d->clock[s];

		d->clock_hand = (s + 1) % cap;
		if (m && (m->fd_users > 0 || m->referenced)) {
			m->referenced = 0;
			continue;
		}
		if (m) {
			close(m->fd);
			m->fd = -1;
			m->slot = -1;
			d->clock_used--;
		}
		d->clock[s] = n;
		d->clock_used++;
		n->slot = (int32_t)s;
		n->referenced = 1;
		return;
	}
}

/****************************** node lifetime ******************************/

static void node_free_chain(struct dir_fs *d, struct dir_node *n)
{
	while (n && n->nlookup == 0 && n->fd_users == 0 && n->nchildren == 0 &&
	       n->ino != EDDY_ROOT_INO) {
		uint64_t parent = n->parent;

		unlink_ino(d, n);
		unlink_bid(d, n);
		unlink_name(d, n);
		slot_clear(d, n);
		if (n->wd >= 0)
			dir_watch_remove(d, n->wd);
		if (n->fd >= 0)
			close(n->fd);
		if (n->pinned)
			d->npinned--;
		free(n->name);
		free(n);
		d->nnodes--;
		n = parent ? find_ino(d, parent) : NULL;
		if (n)
			n->nchildren--;
	}
}

/* Drops one fd user of N and closes a transient fd. Caller holds the lock. */
static void node_unuse(struct dir_fs *d, struct dir_node *n)
{
	n->fd_users--;
	if (n->fd_users == 0 && n->fd >= 0 && !n->pinned && n->slot < 0) {
		close(n->fd);
		n->fd = -1;
	}
	node_free_chain(d, n);
}

static void node_set_name(struct dir_fs *d, struct dir_node *n, uint64_t parent,
			  const char *name)
{
	struct dir_node *p = find_ino(d, parent), *old;
	char *copy;

	if (!p || n->ino == EDDY_ROOT_INO)
		return;
	if (n->name && n->parent == parent && strcmp(n->name, name) == 0)
		return;
	copy = strdup(name);
	if (!copy)
		return;
	p->nchildren++;
	old = n->parent ? find_ino(d, n->parent) : NULL;
	unlink_name(d, n);
	free(n->name);
	n->name = copy;
	n->parent = parent;
	link_name(d, n);
	if (n->pinned) {
		n->pinned = 0;
		d->npinned--;
		if (n->fd >= 0)
			slot_add(d, n);
	}
	if (old) {
		old->nchildren--;
		node_free_chain(d, old);
	}
}

/* N lost its name: keep it reachable through a pinned fd if it has one
** (the caller made sure it has when the object lives on). */
static void node_make_nameless(struct dir_fs *d, struct dir_node *n)
{
	struct dir_node *old;

	if (!n->name)
		return;
	old = find_ino(d, n->parent);
	unlink_name(d, n);
	free(n->name);
	n->name = NULL;
	n->parent = 0;
	if (n->fd >= 0) {
		slot_clear(d, n);
		if (!n->pinned) {
			n->pinned = 1;
			d->npinned++;
		}
	}
	if (old) {
		old->nchildren--;
		node_free_chain(d, old);
	}
}

int dir_nodes_init(struct dir_fs *d)
{
	struct dir_node *root;
	struct stat st;

	if (pthread_mutex_init(&d->lock, NULL) != 0)
		return -ENOMEM;
	if (hash_init(&d->by_ino, 1024) < 0 || hash_init(&d->by_bid, 1024) < 0 ||
	    hash_init(&d->by_name, 1024) < 0)
		return -ENOMEM;
	d->clock = calloc(d->opt.fd_cache ? d->opt.fd_cache : 1, sizeof(*d->clock));
	root = calloc(1, sizeof(*root));
	if (!d->clock || !root) {
		free(root);
		return -ENOMEM;
	}
	if (fstat(d->root_fd, &st) < 0) {
		free(root);
		return -errno;
	}
	root->ino = EDDY_ROOT_INO;
	root->bdev = st.st_dev;
	root->bino = st.st_ino;
	root->fd = d->root_fd;
	root->slot = -1;
	root->wd = -1;
	root->pinned = 1;
	root->type = S_IFDIR;
	root->nlookup = 1;
	link_ino(d, root);
	link_bid(d, root);
	d->nnodes = 1;
	d->npinned = 1;
	d->next_ino = EDDY_ROOT_INO + 1;
	return 0;
}

void dir_nodes_free(struct dir_fs *d)
{
	size_t i;

	for (i = 0; i < d->by_ino.nbuckets; i++) {
		struct dir_node *n = d->by_ino.buckets[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			if (n->fd >= 0 && n->ino != EDDY_ROOT_INO)
				close(n->fd);
			free(n->name);
			free(n);
		}
	}
	free(d->by_ino.buckets);
	free(d->by_bid.buckets);
	free(d->by_name.buckets);
	free(d->clock);
	pthread_mutex_destroy(&d->lock);
}

/****************************** resolution ******************************/

/*
** Returns an O_PATH fd for INO that stays valid until dir_node_fd_put(), or
** a negative errno (-ESTALE when the object is no longer where the node
** says, e.g. renamed or replaced outside eddyfs).
*/
int dir_node_fd_get(struct dir_fs *d, uint64_t ino, mode_t *type)
{
	char name[NAME_MAX + 1];
	int attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		struct dir_node *n;
		uint64_t parent;
		dev_t bdev;
		ino_t bino;
		mode_t ntype;
		uint64_t nbirth;
		int fd, pfd, err = 0;
		bool changed;

		pthread_mutex_lock(&d->lock);
		n = find_ino(d, ino);
		if (!n) {
			pthread_mutex_unlock(&d->lock);
			return -ESTALE;
		}
		if (type)
			*type = n->type;
		n->fd_users++;
		n->referenced = 1;
		if (n->fd >= 0) {
			fd = n->fd;
			pthread_mutex_unlock(&d->lock);
			return fd;
		}
		if (!n->name) {
			node_unuse(d, n);
			pthread_mutex_unlock(&d->lock);
			return -ESTALE;
		}
		parent = n->parent;
		bdev = n->bdev;
		bino = n->bino;
		ntype = n->type;
		nbirth = n->birth;
		strcpy(name, n->name);
		pthread_mutex_unlock(&d->lock);

		atomic_fetch_add(&d->nresolve, 1);
		fd = -1;
		pfd = dir_node_fd_get(d, parent, NULL);
		if (pfd < 0) {
			err = pfd;
		} else {
			fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				err = -errno;
			dir_node_fd_put(d, parent);
		}
		if (fd >= 0) {
			struct stat st;
			uint64_t birth;

			/* type and birth too: a reused inode number may now be
			 * another object, which the kernel would mark bad (EIO) */
			if (dir_stat_at(fd, "", &st, &birth) < 0 || st.st_dev != bdev ||
			    st.st_ino != bino || (st.st_mode & S_IFMT) != ntype ||
			    (birth && nbirth && birth != nbirth)) {
				close(fd);
				fd = -1;
				err = -ESTALE;
				atomic_fetch_add(&d->nstale, 1);
			}
		}
		if (err == -ENOENT || err == -ENOTDIR || err == -ELOOP)
			err = -ESTALE;

		pthread_mutex_lock(&d->lock);
		if (fd >= 0) {
			if (n->fd >= 0) {
				close(fd);      /* another thread won the race */
			} else {
				n->fd = fd;
				slot_add(d, n);
			}
			fd = n->fd;
			pthread_mutex_unlock(&d->lock);
			return fd;
		}
		changed = !n->name || n->parent != parent || strcmp(n->name, name) != 0 ||
			  n->fd >= 0;
		node_unuse(d, n);
		pthread_mutex_unlock(&d->lock);
		if (!changed)
			return err;
	}
	return -ESTALE;
}

void dir_node_fd_put(struct dir_fs *d, uint64_t ino)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n)
		node_unuse(d, n);
	pthread_mutex_unlock(&d->lock);
}

/****************************** naming ******************************/

/*
** Gives the caller one reference to the object ST found as PARENT/NAME,
** creating its node if needed, and records PARENT/NAME as its path.
*/
int dir_node_ref(struct dir_fs *d, uint64_t parent, const char *name, const struct stat *st,
		 uint64_t birth, uint64_t *ino)
{
	bool created;
	int r = dir_node_ref_new(d, parent, name, st, birth, ino, &created);

	if (r == 0 && created && S_ISDIR(st->st_mode))
		dir_watch_new_dir(d, *ino, st);
	else if (r == 0 && S_ISREG(st->st_mode) && st->st_nlink > 1)
		dir_watch_new_multilink(d, *ino);
	return r;
}

int dir_node_ref_new(struct dir_fs *d, uint64_t parent, const char *name,
		     const struct stat *st, uint64_t birth, uint64_t *ino, bool *created)
{
	struct dir_node *n, *p;
	mode_t type = st->st_mode & S_IFMT;

	*created = false;
	pthread_mutex_lock(&d->lock);
	n = find_bid(d, st->st_dev, st->st_ino);
	if (n && (n->type != type || (birth && n->birth && n->birth != birth))) {
		unlink_bid(d, n);       /* backing inode number reused */
		n = NULL;
	}
	if (n) {
		n->nlookup++;
		node_set_name(d, n, parent, name);
		*ino = n->ino;
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	p = find_ino(d, parent);
	n = calloc(1, sizeof(*n));
	if (!p || !n || !(n->name = strdup(name))) {
		pthread_mutex_unlock(&d->lock);
		free(n);
		return p ? -ENOMEM : -ESTALE;
	}
	n->ino = d->next_ino++;
	n->bdev = st->st_dev;
	n->bino = st->st_ino;
	n->birth = birth;
	n->parent = parent;
	n->fd = -1;
	n->slot = -1;
	n->wd = -1;
	n->type = type;
	n->nlookup = 1;
	*created = true;
	p->nchildren++;
	link_ino(d, n);
	link_bid(d, n);
	link_name(d, n);
	d->nnodes++;
	maybe_grow(d);
	*ino = n->ino;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void dir_node_forget(struct dir_fs *d, uint64_t ino, uint64_t nlookup)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n && n->ino != EDDY_ROOT_INO) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - (uint32_t)nlookup;
		node_free_chain(d, n);
	}
	pthread_mutex_unlock(&d->lock);
}

/*
** Before PARENT/NAME is removed or replaced: if a known node lives there,
** make sure it holds an fd (so it stays reachable without a name) and pin
** it for the caller. Returns its ino, or 0 if nothing known lives there.
*/
uint64_t dir_node_hold_named(struct dir_fs *d, uint64_t parent, const char *name, int pfd)
{
	struct dir_node *n;
	struct stat st;
	uint64_t ino, birth;
	int fd;

	if (dir_stat_at(pfd, name, &st, &birth) < 0)
		return 0;
	pthread_mutex_lock(&d->lock);
	n = find_bid(d, st.st_dev, st.st_ino);
	if (!n || n->ino == EDDY_ROOT_INO || (birth && n->birth && n->birth != birth)) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	n->fd_users++;
	ino = n->ino;
	/* An object that dies with this name needs no fd to stay reachable. */
	if (n->fd >= 0 || (n->nopen == 0 && (st.st_nlink <= 1 || S_ISDIR(st.st_mode)))) {
		pthread_mutex_unlock(&d->lock);
		return ino;
	}
	pthread_mutex_unlock(&d->lock);
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st2;

		if (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev ||
		    ((st2.st_mode ^ st.st_mode) & S_IFMT)) {
			close(fd);
			fd = -1;
		}
	}
	pthread_mutex_lock(&d->lock);
	if (fd >= 0 && n->fd < 0)
		n->fd = fd;     /* transient until pinned or put */
	else if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&d->lock);
	return ino;
}

/*
** Ends dir_node_hold_named(). REMOVED: the name was really removed, so the
** node becomes nameless (if that name was the one it was reached by).
*/
void dir_node_release_named(struct dir_fs *d, uint64_t ino, uint64_t parent, const char *name,
			    bool removed)
{
	struct dir_node *n;

	if (!ino)
		return;
	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n) {
		if (removed && n->name && n->parent == parent && strcmp(n->name, name) == 0)
			node_make_nameless(d, n);
		node_unuse(d, n);
	}
	pthread_mutex_unlock(&d->lock);
}

/* A held node now lives at NEWPARENT/NEWNAME. */
void dir_node_rename_held(struct dir_fs *d, uint64_t ino, uint64_t newparent, const char *newname)
{
	struct dir_node *n;

	if (!ino)
		return;
	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n)
		node_set_name(d, n, newparent, newname);
	pthread_mutex_unlock(&d->lock);
}

void dir_node_stats(struct dir_fs *d, size_t *nodes, size_t *cached, size_t *pinned)
{
	pthread_mutex_lock(&d->lock);
	*nodes = d->nnodes;
	*cached = d->clock_used;
	*pinned = d->npinned;
	pthread_mutex_unlock(&d->lock);
}

/* An open handle on INO came (+1) or went (-1). */
void dir_node_opened(struct dir_fs *d, uint64_t ino, int delta)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n)
		n->nopen = (uint32_t)((int)n->nopen + delta);
	pthread_mutex_unlock(&d->lock);
}

/* Copies INO's current parent and name; false if it has none. */
bool dir_node_name_of(struct dir_fs *d, uint64_t ino, uint64_t *parent, char *name)
{
	struct dir_node *n;
	bool ok = false;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n && n->name) {
		*parent = n->parent;
		strcpy(name, n->name);
		ok = true;
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}

uint64_t dir_node_find(struct dir_fs *d, const struct stat *st, uint64_t birth)
{
	struct dir_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&d->lock);
	n = find_bid(d, st->st_dev, st->st_ino);
	if (n && n->type == (st->st_mode & S_IFMT) && (!birth || !n->birth || n->birth == birth))
		ino = n->ino;
	pthread_mutex_unlock(&d->lock);
	return ino;
}

void dir_node_set_wd(struct dir_fs *d, uint64_t ino, int wd)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n)
		n->wd = wd;
	pthread_mutex_unlock(&d->lock);
}

bool dir_node_has_wd(struct dir_fs *d, uint64_t ino)
{
	struct dir_node *n;
	bool has;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	has = !n || n->wd >= 0;
	pthread_mutex_unlock(&d->lock);
	return has;
}

/* Watches every directory node that exists already (watch start). */
void dir_node_watch_known(struct dir_fs *d)
{
	uint64_t *inos;
	size_t i, n = 0;

	pthread_mutex_lock(&d->lock);
	inos = malloc(d->nnodes * sizeof(*inos) + 1);
	for (i = 0; inos && i < d->by_ino.nbuckets; i++) {
		struct dir_node *p;

		for (p = d->by_ino.buckets[i]; p; p = p->next_ino)
			if (p->type == S_IFDIR && p->ino != EDDY_ROOT_INO && p->wd < 0)
				inos[n++] = p->ino;
	}
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < n; i++)
		dir_watch_new_dir(d, inos[i], NULL);
	free(inos);
}

/* The node last known as PARENT/NAME, or 0. */
uint64_t dir_node_find_named(struct dir_fs *d, uint64_t parent, const char *name)
{
	struct dir_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&d->lock);
	n = d->by_name.buckets[name_hash(parent, name) & (d->by_name.nbuckets - 1)];
	for (; n; n = n->next_name)
		if (n->parent == parent && strcmp(n->name, name) == 0) {
			ino = n->ino;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return ino;
}
