/*
** chaos_ns.c -- the chaos client's unpublished namespace and attribute
** changes (rename-delay): create, mknod, mkdir, symlink, link, unlink,
** rmdir, rename, chmod, chown and utimens reach the truth (and so the other
** clients) rename-delay after this client made them, in its order, while
** this client sees them at once.
**
** How:
**   - A new object is made at once, under a staged name in this client's
**     staging directory .eddyfs-chaos/<client-id> (hidden from every chaos
**     client; left-overs of a crashed client are removed at its next
**     mount), and renamed into place when published: it has its inode from
**     the start, so writes to it, and objects made inside a new directory,
**     need nothing special.
**   - Names changed by unpublished changes live in an overlay (struct
**     cname, the latest value wins, kept until the last change that set it
**     is published): lookups and listings of this client consult it first.
**   - Attribute changes sit in the inode's list of changes like writes and
**     are applied to what this client sees of the inode.
**   - The checks a filesystem makes (ENOENT, EEXIST, ENOTEMPTY, EISDIR,
**     ENOTDIR) are made against this client's view when the change is
**     made; a change that fails when published (another client got there
**     first) is lost, logged and counted, as a late server error would be.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos_int.h"

/****************************** the overlay ******************************/

static size_t name_bucket(uint64_t parent, const char *name)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^ (parent * UINT64_C(0x9e3779b97f4a7c15));

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * UINT64_C(0x100000001b3);
	return (size_t)(h % CHAOS_NAME_BUCKETS);
}

static struct cname *name_find(struct cfs *s, uint64_t parent, const char *name)
{
	struct cname *c;

	for (c = s->name_hash[name_bucket(parent, name)]; c; c = c->next_hash)
		if (c->parent == parent && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Called with s->lock held. */
static int name_set(struct cfs *s, uint64_t parent, const char *name, uint64_t ino,
		    mode_t type)
{
	struct cname *c = name_find(s, parent, name);

	if (!c) {
		size_t b = name_bucket(parent, name);

		c = calloc(1, sizeof(*c));
		if (!c || !(c->name = strdup(name))) {
			free(c);
			return -ENOMEM;
		}
		c->parent = parent;
		c->next = s->names;
		if (s->names)
			s->names->prev = c;
		s->names = c;
		c->next_hash = s->name_hash[b];
		s->name_hash[b] = c;
	}
	c->ino = ino;
	c->type = type & S_IFMT;
	c->changes++;
	return 0;
}

static void name_free(struct cfs *s, struct cname *c)
{
	struct cname **pp;

	for (pp = &s->name_hash[name_bucket(c->parent, c->name)]; *pp; pp = &(*pp)->next_hash) {
		if (*pp == c) {
			*pp = c->next_hash;
			break;
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->names = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->name);
	free(c);
}

/* A change that set (parent, name) was published. s->lock held. */
static void name_unset(struct cfs *s, uint64_t parent, const char *name)
{
	struct cname *c = name_find(s, parent, name);

	if (c && --c->changes == 0)
		name_free(s, c);
}

int chaos_view_name(struct cfs *s, uint64_t parent, const char *name, uint64_t *ino,
		    mode_t *type)
{
	struct cname *c;
	int r = 0;

	if (parent == EDDY_ROOT_INO && strcmp(name, CHAOS_STAGE_TOP) == 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	if ((c = name_find(s, parent, name))) {
		*ino = c->ino;
		*type = c->type;
		r = c->ino ? 1 : -1;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int chaos_ns_lookup(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    struct eddy_entry *out)
{
	struct cnode *n;
	uint64_t ino = 0;
	mode_t type;
	double t;
	int r = chaos_view_name(s, parent, name, &ino, &type);

	if (r <= 0)
		return r < 0 ? -ENOENT : 0;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);         /* pinned by the change */
	if (n) {
		n->kref++;
		out->attr = n->attr;
	}
	pthread_mutex_unlock(&s->lock);
	if (!n)
		return 0;
	out->ino = ino;
	if (s->inner->ops->getattr(s->inner, c, ino, NULL, &out->attr, &t) == 0)
		chaos_attr_store(s, ino, &out->attr);
	chaos_view_attr(s, ino, &out->attr);
	return 1;
}

static bool push(struct clisting *l, size_t *cap, const char *name, uint64_t ino, mode_t type)
{
	if (l->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct cdent *v = realloc(l->v, ncap * sizeof(*v));

		if (!v)
			return false;
		l->v = v;
		*cap = ncap;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return false;
	l->v[l->n].ino = ino;
	l->v[l->n].type = type;
	l->n++;
	return true;
}

struct clisting *chaos_view_listing(struct cfs *s, uint64_t dir, struct clisting *l)
{
	struct clisting *v;
	struct cname *c;
	size_t cap = 0, i;
	bool any = dir == EDDY_ROOT_INO;

	pthread_mutex_lock(&s->lock);
	for (c = s->names; c && !any; c = c->next)
		any = c->parent == dir;
	if (!any || !(v = calloc(1, sizeof(*v)))) {
		pthread_mutex_unlock(&s->lock);
		return l;
	}
	v->refs = 1;
	for (i = 0; i < l->n; i++) {
		const struct cdent *d = &l->v[i];

		if (dir == EDDY_ROOT_INO && strcmp(d->name, CHAOS_STAGE_TOP) == 0)
			continue;
		if (name_find(s, dir, d->name))
			continue;
		if (!push(v, &cap, d->name, d->ino, d->type))
			goto fail;
	}
	for (c = s->names; c; c = c->next)
		if (c->parent == dir && c->ino && !push(v, &cap, c->name, c->ino, c->type))
			goto fail;
	chaos_listing_put(l);
	pthread_mutex_unlock(&s->lock);
	return v;
fail:
	chaos_listing_put(v);
	pthread_mutex_unlock(&s->lock);
	return l;
}

static bool ts_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

void chaos_view_setattr(const struct cnode *n, struct stat *st)
{
	const struct cpend *p;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);

	for (p = n->pfirst; p; p = p->inext) {
		if (p->kind != CP_SETATTR)
			continue;
		if (p->attr_mask & EDDY_SET_MODE)
			st->st_mode = (st->st_mode & S_IFMT) | (p->attr_in.st_mode & 07777);
		if (p->attr_mask & EDDY_SET_UID)
			st->st_uid = p->attr_in.st_uid;
		if (p->attr_mask & EDDY_SET_GID)
			st->st_gid = p->attr_in.st_gid;
		/* an access after the change (relatime: the truth's atime is
		 * between the change and now) is newer news */
		if ((p->attr_mask & EDDY_SET_ATIME) &&
		    !(ts_le(&p->made, &st->st_atim) && ts_le(&st->st_atim, &now)))
			st->st_atim = p->attr_in.st_atim;
		if (p->attr_mask & EDDY_SET_MTIME)
			st->st_mtim = p->attr_in.st_mtim;
		st->st_ctim = p->made;
	}
}

/****************************** the staging directory ******************************/

/* Looks NAME up in PARENT, or makes it a 1777 directory; one inner
** reference is kept. */
static int stage_mkdir(struct cfs *s, uint64_t parent, const char *name, uint64_t *ino)
{
	struct eddy_ctx self;
	struct eddy_entry e;
	struct stat in, out;
	double t;
	int r;

	eddy_ctx_self(&self);
	self.umask = 0;
	r = s->inner->ops->lookup(s->inner, &self, parent, name, &e);
	if (r == 0 && e.ino) {
		*ino = e.ino;
		return S_ISDIR(e.attr.st_mode) ? 0 : -ENOTDIR;
	}
	r = s->inner->ops->mkdir(s->inner, &self, parent, name, 01777, &e);
	if (r == -EEXIST)
		return stage_mkdir(s, parent, name, ino);
	if (r < 0)
		return r;
	*ino = e.ino;
	memset(&in, 0, sizeof(in));
	in.st_mode = S_IFDIR | 01777;
	s->inner->ops->setattr(s->inner, &self, e.ino, NULL, &in, EDDY_SET_MODE, &out, &t);
	return 0;
}

static int stage_dir(struct cfs *s, uint64_t *ino)
{
	int r = 0;

	pthread_mutex_lock(&s->stage_lock);
	if (!s->stage_dir) {
		r = stage_mkdir(s, EDDY_ROOT_INO, CHAOS_STAGE_TOP, &s->stage_top);
		if (r == 0)
			r = stage_mkdir(s, s->stage_top, s->client, &s->stage_dir);
		if (r < 0)
			chaos_logf(s, "cannot make the staging directory %s/%s: %s",
				   CHAOS_STAGE_TOP, s->client, strerror(-r));
	}
	*ino = s->stage_dir;
	pthread_mutex_unlock(&s->stage_lock);
	return r;
}

struct name_list {
	char **v;
	mode_t *type;
	size_t n, cap;
};

static int list_fill(void *arg, const char *name, const struct stat *st,
		     const struct eddy_entry *e, uint64_t next)
{
	struct name_list *nl = arg;

	(void)e;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (nl->n == nl->cap) {
		size_t cap = nl->cap ? nl->cap * 2 : 16;
		char **v = realloc(nl->v, cap * sizeof(*v));
		mode_t *t = realloc(nl->type, cap * sizeof(*t));

		if (v)
			nl->v = v;
		if (t)
			nl->type = t;
		if (!v || !t)
			return 1;
		nl->cap = cap;
	}
	if (!(nl->v[nl->n] = strdup(name)))
		return 1;
	nl->type[nl->n++] = st->st_mode & S_IFMT;
	return 0;
}

/* The names in inner directory INO (without . and ..). */
static int inner_names(struct cfs *s, const struct eddy_ctx *c, uint64_t ino,
		       struct name_list *nl)
{
	struct eddy_file *d;
	struct eddy_open how;
	int r = s->inner->ops->opendir(s->inner, c, ino, &d, &how);

	memset(nl, 0, sizeof(*nl));
	if (r < 0)
		return r;
	r = s->inner->ops->readdir(s->inner, c, d, 0, false, list_fill, nl);
	s->inner->ops->releasedir(s->inner, d);
	return r;
}

static void names_free(struct name_list *nl)
{
	size_t i;

	for (i = 0; i < nl->n; i++)
		free(nl->v[i]);
	free(nl->v);
	free(nl->type);
}

/* Removes everything below inner directory INO. */
static void remove_below(struct cfs *s, const struct eddy_ctx *c, uint64_t ino, int depth)
{
	struct name_list nl;
	size_t i;

	if (depth > 64 || inner_names(s, c, ino, &nl) < 0)
		return;
	for (i = 0; i < nl.n; i++) {
		if (S_ISDIR(nl.type[i])) {
			struct eddy_entry e;

			if (s->inner->ops->lookup(s->inner, c, ino, nl.v[i], &e) == 0 && e.ino) {
				remove_below(s, c, e.ino, depth + 1);
				s->inner->ops->forget(s->inner, e.ino, 1);
			}
			s->inner->ops->rmdir(s->inner, c, ino, nl.v[i]);
		} else {
			s->inner->ops->unlink(s->inner, c, ino, nl.v[i]);
		}
	}
	names_free(&nl);
}

/* A staged object whose creation is lost: remove it from the staging area. */
void chaos_stage_remove(struct cfs *s, const struct cpend *p)
{
	struct eddy_ctx self;
	struct eddy_entry e;
	char sname[48];

	eddy_ctx_self(&self);
	snprintf(sname, sizeof(sname), "%d.%llu", (int)getpid(), (unsigned long long)p->stage);
	if (s->inner->ops->lookup(s->inner, &self, s->stage_dir, sname, &e) < 0 || !e.ino)
		return;
	if (S_ISDIR(e.attr.st_mode)) {
		remove_below(s, &self, e.ino, 0);
		s->inner->ops->rmdir(s->inner, &self, s->stage_dir, sname);
	} else {
		s->inner->ops->unlink(s->inner, &self, s->stage_dir, sname);
	}
	s->inner->ops->forget(s->inner, e.ino, 1);
}

int chaos_stage_cleanup(struct cfs *s, char *err, size_t errlen)
{
	struct eddy_ctx self;
	struct eddy_entry top, mine;

	(void)err;
	(void)errlen;
	eddy_ctx_self(&self);
	if (s->inner->ops->lookup(s->inner, &self, EDDY_ROOT_INO, CHAOS_STAGE_TOP, &top) < 0 ||
	    !top.ino)
		return 0;
	if (s->inner->ops->lookup(s->inner, &self, top.ino, s->client, &mine) == 0 && mine.ino) {
		chaos_logf(s, "removing what a previous run of client %s left unpublished",
			   s->client);
		remove_below(s, &self, mine.ino, 0);
		s->inner->ops->forget(s->inner, mine.ino, 1);
	}
	s->inner->ops->forget(s->inner, top.ino, 1);
	return 0;
}

void chaos_stage_free(struct cfs *s)
{
	if (s->stage_dir)
		s->inner->ops->forget(s->inner, s->stage_dir, 1);
	if (s->stage_top)
		s->inner->ops->forget(s->inner, s->stage_top, 1);
	while (s->names)
		name_free(s, s->names);
}

/****************************** this client's view ******************************/

/* Whether (parent, name) exists for this client: 1 (INO, TYPE set), 0, or
** a negative errno. */
static int view_exists(struct cfs *s, const struct eddy_ctx *c, uint64_t parent,
		       const char *name, uint64_t *ino, mode_t *type)
{
	struct eddy_entry e;
	int r = chaos_view_name(s, parent, name, ino, type);

	if (r)
		return r > 0;
	r = s->inner->ops->lookup(s->inner, c, parent, name, &e);
	if (r == -ENOENT || (r == 0 && !e.ino))
		return 0;
	if (r < 0)
		return r;
	s->inner->ops->forget(s->inner, e.ino, 1);
	*ino = e.ino;
	*type = e.attr.st_mode & S_IFMT;
	return 1;
}

/* Whether directory INO is empty for this client. */
static int view_empty(struct cfs *s, const struct eddy_ctx *c, uint64_t ino)
{
	struct name_list nl;
	struct cname *cn;
	size_t i;
	int r = inner_names(s, c, ino, &nl), empty = 1;

	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < nl.n && empty; i++) {
		cn = name_find(s, ino, nl.v[i]);
		if (!cn || cn->ino)
			empty = 0;
	}
	for (cn = s->names; cn && empty; cn = cn->next)
		if (cn->parent == ino && cn->ino)
			empty = 0;
	pthread_mutex_unlock(&s->lock);
	names_free(&nl);
	return empty;
}

static struct cnode *pin(struct cfs *s, uint64_t ino)
{
	struct cnode *n = ino ? cnode_get(s, ino) : NULL;

	if (n)
		n->pins++;
	return n;
}

/* The link counts this client sees before the truth has the change. */
static void nlink_change(struct cfs *s, const struct cpend *p, int sign)
{
	struct cnode *n;

	if (p->kind == CP_LINK && (n = cnode_find(s, p->target)))
		n->nlink_delta += sign;
	if (p->victim && (n = cnode_find(s, p->victim)))
		n->nlink_delta -= sign;
}

static struct cpend *new_change(enum cpend_kind kind, const struct eddy_ctx *c, uint64_t parent,
				const char *name)
{
	struct cpend *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->kind = kind;
	p->ctx = *c;
	p->parent = parent;
	clock_gettime(CLOCK_REALTIME, &p->made);
	if (name && !(p->name = strdup(name))) {
		free(p);
		return NULL;
	}
	return p;
}

/* Queues P, pinning the inodes it names, and sets the overlay. */
static int queue_change(struct cfs *s, struct cpend *p, mode_t type)
{
	char name[NAME_MAX + 1];
	const char *what;
	uint64_t parent;
	bool has_name;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	pin(s, p->parent);
	pin(s, p->newparent);
	pin(s, p->target);
	pin(s, p->victim);
	nlink_change(s, p, 1);
	switch (p->kind) {
	case CP_LINKIN:
	case CP_LINK:
		r = name_set(s, p->parent, p->name, p->target, type);
		break;
	case CP_UNLINK:
	case CP_RMDIR:
		r = name_set(s, p->parent, p->name, 0, 0);
		break;
	case CP_RENAME:
		r = name_set(s, p->parent, p->name, p->exch_ino, p->exch_type);
		if (r == 0)
			r = name_set(s, p->newparent, p->newname, p->target, type);
		break;
	default:
		break;
	}
	/* What the decision log says is copied while P is ours: once
	** enqueued and unlocked, the publisher may coalesce and free it. */
	what = p->kind == CP_LINKIN ? "create" : p->kind == CP_LINK ? "link" :
	       p->kind == CP_UNLINK ? "unlink" : p->kind == CP_RMDIR ? "rmdir" : "rename";
	parent = p->parent;
	has_name = p->name != NULL;
	snprintf(name, sizeof(name), "%s", has_name ? p->name : "");
	chaos_enqueue(s, NULL, p, k_rdelay(s));
	pthread_mutex_unlock(&s->lock);
	chaos_decision(s, what, parent, has_name ? name : NULL, "delay", (double)k_rdelay(s));
	return r;
}

/****************************** the changes ******************************/

/* An object made in the staging directory gets what its real parent would
** have given it: the group and, for directories, the setgid bit of a
** setgid parent. */
static void inherit_setgid(struct cfs *s, uint64_t parent, struct eddy_entry *out)
{
	struct eddy_ctx self;
	struct stat pst, in, st;
	mode_t want = out->attr.st_mode & 07777;
	double t;

	eddy_ctx_self(&self);
	if (s->inner->ops->getattr(s->inner, &self, parent, NULL, &pst, &t) < 0)
		return;
	chaos_view_attr(s, parent, &pst);
	if (!(pst.st_mode & S_ISGID) || S_ISLNK(out->attr.st_mode))
		return;
	memset(&in, 0, sizeof(in));
	in.st_uid = (uid_t)-1;
	in.st_gid = pst.st_gid;
	if (out->attr.st_gid != pst.st_gid &&
	    s->inner->ops->setattr(s->inner, &self, out->ino, NULL, &in, EDDY_SET_GID, &st, &t) == 0)
		out->attr = st;
	/* a change of group may clear setuid/setgid: put the mode back */
	in.st_mode = want | (S_ISDIR(out->attr.st_mode) ? S_ISGID : 0);
	if ((out->attr.st_mode & 07777) != in.st_mode &&
	    s->inner->ops->setattr(s->inner, &self, out->ino, NULL, &in, EDDY_SET_MODE, &st, &t) == 0)
		out->attr = st;
}

int chaos_ns_create(struct cfs *s, const struct eddy_ctx *c, int kind, uint64_t parent,
		    const char *name, mode_t mode, dev_t rdev, const char *target, int flags,
		    struct eddy_entry *out, struct eddy_file **fp, struct eddy_open *how)
{
	struct cpend *p;
	uint64_t stage, ino;
	mode_t type;
	char sname[48];
	int r;

	r = view_exists(s, c, parent, name, &ino, &type);
	if (r != 0)
		return r < 0 ? r : -EEXIST;
	if ((r = stage_dir(s, &stage)) < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	ino = ++s->next_stage;
	pthread_mutex_unlock(&s->lock);
	snprintf(sname, sizeof(sname), "%d.%llu", (int)getpid(), (unsigned long long)ino);
	if (fp)
		r = s->inner->ops->create(s->inner, c, stage, sname, mode, flags, out, fp, how);
	else if (kind == S_IFDIR)
		r = s->inner->ops->mkdir(s->inner, c, stage, sname, mode, out);
	else if (kind == S_IFLNK)
		r = s->inner->ops->symlink(s->inner, c, target, stage, sname, out);
	else
		r = s->inner->ops->mknod(s->inner, c, stage, sname, mode, rdev, out);
	if (r < 0)
		return r;
	inherit_setgid(s, parent, out);
	if (!(p = new_change(CP_LINKIN, c, parent, name))) {
		/* keep the object: it is in the staging area, cleaned later */
		if (fp && *fp)
			s->inner->ops->release(s->inner, *fp);
		s->inner->ops->forget(s->inner, out->ino, 1);
		return -ENOMEM;
	}
	p->target = out->ino;
	p->stage = ino;
	chaos_own_change(s, parent, NULL, 0);
	chaos_took_entry(s, parent, name, out, true);
	queue_change(s, p, out->attr.st_mode);   /* ENOMEM there costs the view only */
	return 0;
}

int chaos_ns_link(struct cfs *s, const struct eddy_ctx *c, uint64_t ino, uint64_t parent,
		  const char *name, struct eddy_entry *out)
{
	struct cpend *p;
	struct cnode *n;
	uint64_t other;
	mode_t type;
	double t;
	int r = view_exists(s, c, parent, name, &other, &type);

	if (r != 0)
		return r < 0 ? r : -EEXIST;
	memset(out, 0, sizeof(*out));
	r = s->inner->ops->getattr(s->inner, c, ino, NULL, &out->attr, &t);
	if (r < 0)
		return r;
	if (S_ISDIR(out->attr.st_mode))
		return -EPERM;
	if (!(p = new_change(CP_LINK, c, parent, name)))
		return -ENOMEM;
	p->target = ino;
	pthread_mutex_lock(&s->lock);
	n = cnode_get(s, ino);
	if (n)
		n->kref++;
	pthread_mutex_unlock(&s->lock);
	if (!n) {
		free(p->name);
		free(p);
		return -ENOMEM;
	}
	out->ino = ino;
	chaos_own_change(s, parent, NULL, 0);
	queue_change(s, p, out->attr.st_mode);
	chaos_view_attr(s, ino, &out->attr);
	return 0;
}

int chaos_ns_remove(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    bool dir)
{
	struct cpend *p;
	uint64_t ino = 0;
	mode_t type = 0;
	int r = view_exists(s, c, parent, name, &ino, &type);

	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	if (dir && !S_ISDIR(type))
		return -ENOTDIR;
	if (!dir && S_ISDIR(type))
		return -EISDIR;
	if (dir && (r = view_empty(s, c, ino)) <= 0)
		return r < 0 ? r : -ENOTEMPTY;
	if (!(p = new_change(dir ? CP_RMDIR : CP_UNLINK, c, parent, name)))
		return -ENOMEM;
	if (!dir)
		p->victim = ino;
	chaos_own_change(s, parent, NULL, 0);
	chaos_attr_drop(s, ino);
	queue_change(s, p, 0);
	return 0;
}

int chaos_ns_rename(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname, unsigned flags)
{
	struct cpend *p;
	uint64_t src = 0, dst = 0;
	mode_t stype = 0, dtype = 0;
	int r, have_dst;

	if (parent == newparent && strcmp(name, newname) == 0)
		return 0;
	r = view_exists(s, c, parent, name, &src, &stype);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	have_dst = view_exists(s, c, newparent, newname, &dst, &dtype);
	if (have_dst < 0)
		return have_dst;
	if ((flags & RENAME_NOREPLACE) && have_dst)
		return -EEXIST;
	if ((flags & RENAME_EXCHANGE) && !have_dst)
		return -ENOENT;
	if (have_dst && !(flags & RENAME_EXCHANGE)) {
		if (src == dst)
			return 0;
		if (S_ISDIR(stype) && !S_ISDIR(dtype))
			return -ENOTDIR;
		if (!S_ISDIR(stype) && S_ISDIR(dtype))
			return -EISDIR;
		if (S_ISDIR(dtype) && (r = view_empty(s, c, dst)) <= 0)
			return r < 0 ? r : -ENOTEMPTY;
	}
	if (!(p = new_change(CP_RENAME, c, parent, name)))
		return -ENOMEM;
	if (!(p->newname = strdup(newname))) {
		free(p->name);
		free(p);
		return -ENOMEM;
	}
	p->newparent = newparent;
	p->flags = flags;
	p->target = src;
	if (have_dst && !(flags & RENAME_EXCHANGE) && !S_ISDIR(dtype))
		p->victim = dst;
	if (flags & RENAME_EXCHANGE) {
		p->exch_ino = dst;
		p->exch_type = dtype;
	}
	chaos_own_change(s, parent, NULL, 0);
	chaos_own_change(s, newparent, NULL, 0);
	chaos_attr_drop(s, src);
	if (dst)
		chaos_attr_drop(s, dst);
	queue_change(s, p, stype);
	return 0;
}

int chaos_ns_setattr(struct cfs *s, const struct eddy_ctx *c, uint64_t ino,
		     const struct stat *in, int mask)
{
	struct cpend *p = new_change(CP_SETATTR, c, 0, NULL);
	struct cnode *n;

	if (!p)
		return -ENOMEM;
	p->ino = ino;
	p->attr_in = *in;
	p->attr_mask = mask & (EDDY_SET_MODE | EDDY_SET_UID | EDDY_SET_GID | EDDY_SET_ATIME |
			       EDDY_SET_MTIME | EDDY_SET_KILL_SUIDGID);
	/* "now" is when this client made the change */
	if (mask & EDDY_SET_ATIME_NOW) {
		p->attr_in.st_atim = p->made;
		p->attr_mask |= EDDY_SET_ATIME;
	}
	if (mask & EDDY_SET_MTIME_NOW) {
		p->attr_in.st_mtim = p->made;
		p->attr_mask |= EDDY_SET_MTIME;
	}
	pthread_mutex_lock(&s->lock);
	n = cnode_get(s, ino);
	if (n)
		chaos_enqueue(s, n, p, k_rdelay(s));
	pthread_mutex_unlock(&s->lock);
	if (!n) {
		free(p);
		return -ENOMEM;
	}
	chaos_decision(s, "setattr", ino, NULL, "delay", (double)k_rdelay(s));
	return 0;
}

/****************************** publishing ******************************/

int chaos_ns_apply(struct cfs *s, struct cpend *p)
{
	const struct eddy_fs_ops *o = s->inner->ops;
	struct eddy_entry e;
	struct stat out;
	char sname[48];
	double t;
	int r;

	switch (p->kind) {
	case CP_SETATTR:
		return o->setattr(s->inner, &p->ctx, p->ino, NULL, &p->attr_in, p->attr_mask, &out,
				  &t);
	case CP_LINKIN:
		snprintf(sname, sizeof(sname), "%d.%llu", (int)getpid(),
			 (unsigned long long)p->stage);
		return o->rename(s->inner, &p->ctx, s->stage_dir, sname, p->parent, p->name, 0);
	case CP_LINK:
		r = o->link(s->inner, &p->ctx, p->target, p->parent, p->name, &e);
		if (r == 0 && e.ino)
			o->forget(s->inner, e.ino, 1);
		return r;
	case CP_UNLINK:
		return o->unlink(s->inner, &p->ctx, p->parent, p->name);
	case CP_RMDIR:
		return o->rmdir(s->inner, &p->ctx, p->parent, p->name);
	case CP_RENAME:
		return o->rename(s->inner, &p->ctx, p->parent, p->name, p->newparent, p->newname,
				 p->flags);
	default:
		return -EINVAL;
	}
}

static uint64_t unpin(struct cfs *s, uint64_t ino)
{
	struct cnode *n = ino ? cnode_find(s, ino) : NULL;

	if (!n)
		return 0;
	n->pins--;
	return cnode_release_if_unused(s, n);
}

void chaos_ns_published(struct cfs *s, struct cpend *p, int r)
{
	uint64_t ino[4] = { p->parent, p->newparent, p->target, p->victim }, iref[4];
	int i;

	pthread_mutex_lock(&s->lock);
	nlink_change(s, p, -1);
	/* the link counts (and ctimes) cached from before are this client's
	 * own news now */
	for (i = 2; i < 4; i++) {
		struct cnode *n = ino[i] ? cnode_find(s, ino[i]) : NULL;

		if (n)
			n->attr_at = CHAOS_STALE;
	}
	if (p->name)
		name_unset(s, p->parent, p->name);
	if (p->newname)
		name_unset(s, p->newparent, p->newname);
	for (i = 0; i < 4; i++)
		iref[i] = unpin(s, ino[i]);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < 4; i++)
		cnode_forget_inner(s, ino[i], iref[i]);
	(void)r;
	/* What this client sees next comes from the truth, which has its change
	 * now (or not, if it failed): nothing cached from before it may hide it. */
	if (p->name)
		chaos_own_change(s, p->parent, NULL, 0);
	if (p->newname)
		chaos_own_change(s, p->newparent, NULL, 0);
	if (p->name)
		chaos_forget_name(s, p->parent, p->name);
	if (p->newname)
		chaos_forget_name(s, p->newparent, p->newname);
}
