/*
** chaos_nfs.c -- the nfs profile (--chaos=nfs[:options]): a client that
** caches the way the Linux NFS client does (nfs(5), reference/nfs-semantics.md).
**
**   - Attributes (ac/noac, acregmin/acregmax, acdirmin/acdirmax, actimeo):
**     each inode has its own timeout, starting at the minimum; a
**     revalidation that finds nothing changed doubles it up to the maximum,
**     a change resets it (A1-A5).
**   - Names and listings of a directory are trusted while the directory's
**     attributes are, and survive a revalidation that finds the directory
**     unchanged; a change of the directory drops them (L1, L2, A6).
**     lookupcache=pos never serves an absence, none never a name (L3, L4).
**   - cto: open revalidates the file's attributes (C1); nocto does not.
**   - Writes stay in the client until close, fsync or a lock (write-behind,
**     W1-W3; errors reported by close); sync makes them synchronous.
**   - Namespace changes are synchronous, as on NFS.
**   - Silly rename: unlinking (or renaming over) a file this client has
**     open renames it to .nfs<16 hex fileid><8 hex counter>, removed at its
**     last close; unlinking such a name again fails EBUSY (S1, S2).
**   - ESTALE: reading, writing or stat-ing an open file that another client
**     removed fails with ESTALE (E2).
**   - tsgran=MS: timestamps this client sees are cut to MS, so two changes
**     within one tick are not noticed (T1, T2).
*/
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos_int.h"

void chaos_nfs_default(struct chaos_nfs *n)
{
	memset(n, 0, sizeof(*n));
	n->ac = true;
	n->acregmin = 3;
	n->acregmax = 60;
	n->acdirmin = 30;
	n->acdirmax = 60;
	n->cto = true;
}

static int seconds(const char *key, const char *v, double *out, char *err, size_t errlen)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < 0 || x > 86400) {
		snprintf(err, errlen, "nfs option %s=%s: want seconds, 0-86400", key, v);
		return -EINVAL;
	}
	*out = (double)x;
	return 0;
}

static int option(struct chaos_nfs *n, const char *key, const char *v, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
		bool value;
	} flags[] = {
		{ "ac", offsetof(struct chaos_nfs, ac), true },
		{ "noac", offsetof(struct chaos_nfs, ac), false },
		{ "cto", offsetof(struct chaos_nfs, cto), true },
		{ "nocto", offsetof(struct chaos_nfs, cto), false },
		{ "sync", offsetof(struct chaos_nfs, sync), true },
		{ "async", offsetof(struct chaos_nfs, sync), false },
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (strcmp(key, flags[i].name) == 0) {
			if (v) {
				snprintf(err, errlen, "nfs option %s takes no value", key);
				return -EINVAL;
			}
			*(bool *)((char *)n + flags[i].off) = flags[i].value;
			if (strcmp(key, "noac") == 0)
				n->sync = true;         /* noac: synchronous writes too */
			return 0;
		}
	}
	if (!v) {
		snprintf(err, errlen, "unknown nfs option '%s' (ac, noac, acregmin=, acregmax=, "
			 "acdirmin=, acdirmax=, actimeo=, lookupcache=, cto, nocto, sync, "
			 "async, tsgran=)", key);
		return -EINVAL;
	}
	if (strcmp(key, "acregmin") == 0)
		return seconds(key, v, &n->acregmin, err, errlen);
	if (strcmp(key, "acregmax") == 0)
		return seconds(key, v, &n->acregmax, err, errlen);
	if (strcmp(key, "acdirmin") == 0)
		return seconds(key, v, &n->acdirmin, err, errlen);
	if (strcmp(key, "acdirmax") == 0)
		return seconds(key, v, &n->acdirmax, err, errlen);
	if (strcmp(key, "actimeo") == 0) {
		double t;

		if (seconds(key, v, &t, err, errlen) < 0)
			return -EINVAL;
		n->acregmin = n->acregmax = n->acdirmin = n->acdirmax = t;
		return 0;
	}
	if (strcmp(key, "lookupcache") == 0) {
		if (strcmp(v, "all") == 0)
			n->lookupcache = NFS_LOOKUP_ALL;
		else if (strcmp(v, "pos") == 0 || strcmp(v, "positive") == 0)
			n->lookupcache = NFS_LOOKUP_POS;
		else if (strcmp(v, "none") == 0)
			n->lookupcache = NFS_LOOKUP_NONE;
		else {
			snprintf(err, errlen, "nfs option lookupcache=%s: use all, pos or none", v);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "tsgran") == 0) {
		char *end;
		long x;

		errno = 0;
		x = strtol(v, &end, 10);
		if (!*v || *end || errno || x < 0 || x > 60000) {
			snprintf(err, errlen, "nfs option tsgran=%s: want milliseconds, 0-60000", v);
			return -EINVAL;
		}
		n->tsgran_ms = x;
		return 0;
	}
	snprintf(err, errlen, "unknown nfs option '%s'", key);
	return -EINVAL;
}

int chaos_nfs_parse(const char *opts, struct chaos_nfs *n, char *err, size_t errlen)
{
	char buf[512], *tok, *save = NULL;

	chaos_nfs_default(n);
	n->on = true;
	if (!opts || !*opts)
		return 0;
	if (strlen(opts) >= sizeof(buf)) {
		snprintf(err, errlen, "nfs options too long");
		return -EINVAL;
	}
	memcpy(buf, opts, strlen(opts) + 1);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = 0;
		if (option(n, tok, eq, err, errlen) < 0)
			return -EINVAL;
	}
	if (n->acregmin > n->acregmax || n->acdirmin > n->acdirmax) {
		snprintf(err, errlen, "nfs options: a minimum above its maximum");
		return -EINVAL;
	}
	return 0;
}

/****************************** attribute cache ******************************/

static bool is_dir(const struct cnode *c)
{
	return c->have_attr && S_ISDIR(c->attr.st_mode);
}

bool chaos_attr_fresh(struct cfs *s, const struct cnode *c)
{
	if (!c->have_attr)
		return false;
	if (!s->nfs.on)
		return chaos_fresh(s, c->attr_at);
	return s->nfs.ac && c->attr_at + c->ac > chaos_now();
}

static bool same_attr(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec && a->st_nlink == b->st_nlink &&
	       a->st_mode == b->st_mode;
}

void chaos_attr_observed(struct cfs *s, struct cnode *c, const struct stat *st)
{
	double min, max;

	if (!s->nfs.on)
		return;
	min = S_ISDIR(st->st_mode) ? s->nfs.acdirmin : s->nfs.acregmin;
	max = S_ISDIR(st->st_mode) ? s->nfs.acdirmax : s->nfs.acregmax;
	if (c->have_attr && same_attr(&c->attr, st)) {
		c->ac = c->ac * 2 > max ? max : (c->ac * 2 < min ? min : c->ac * 2);
		return;
	}
	if (c->have_attr)
		c->changed_at = chaos_now();   /* names and listing cached before: gone */
	c->ac = min;
}

bool chaos_nfs_names_valid(struct cfs *s, const struct cnode *dir, double at, bool absent)
{
	if (s->nfs.lookupcache == NFS_LOOKUP_NONE ||
	    (absent && s->nfs.lookupcache == NFS_LOOKUP_POS))
		return false;
	return dir && is_dir(dir) && at >= dir->changed_at && chaos_attr_fresh(s, dir);
}

/* Revalidates directory DIR's attributes if they expired (nfs profile),
** so that its names and listing can be judged. */
void chaos_nfs_revalidate(struct cfs *s, uint64_t dir)
{
	struct eddy_ctx self;
	struct cnode *c;
	struct stat st;
	bool fresh;
	double t;

	if (!s->nfs.on)
		return;
	pthread_mutex_lock(&s->lock);
	c = cnode_find(s, dir);
	fresh = !c || chaos_attr_fresh(s, c);
	pthread_mutex_unlock(&s->lock);
	if (fresh)
		return;
	eddy_ctx_self(&self);
	if (s->inner->ops->getattr(s->inner, &self, dir, NULL, &st, &t) == 0)
		chaos_attr_store(s, dir, &st);
}

/* Cuts T to G milliseconds. */
static void cut(struct timespec *t, long g)
{
	long long ms = (long long)t->tv_sec * 1000 + t->tv_nsec / 1000000;

	ms -= ms % g;
	t->tv_sec = (time_t)(ms / 1000);
	t->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Timestamps as this client sees them (tsgran). */
void chaos_nfs_view_times(struct cfs *s, struct stat *st)
{
	if (!s->nfs.on || s->nfs.tsgran_ms <= 0)
		return;
	cut(&st->st_mtim, s->nfs.tsgran_ms);
	cut(&st->st_ctim, s->nfs.tsgran_ms);
}

/****************************** silly rename, ESTALE ******************************/

/* unlink or rename-over of (PARENT, NAME), which is INO, while this client
** has INO open: rename it to a .nfs name instead. 1 if done (the caller
** reports success), 0 if not needed, or a negative errno. */
int chaos_nfs_silly(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    uint64_t ino)
{
	char silly[48];
	struct cnode *n;
	bool open;
	int r;

	if (!s->nfs.on || !ino)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);
	open = n && n->opens > 0;
	if (open && n->silly_name) {
		pthread_mutex_unlock(&s->lock);
		return strcmp(name, n->silly_name) == 0 ? -EBUSY : 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (!open)
		return 0;
	pthread_mutex_lock(&s->lock);
	snprintf(silly, sizeof(silly), ".nfs%016llx%08x", (unsigned long long)ino,
		 ++s->silly_counter);
	pthread_mutex_unlock(&s->lock);
	r = s->inner->ops->rename(s->inner, c, parent, name, parent, silly, RENAME_NOREPLACE);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);
	if (n && !n->silly_name && (n->silly_name = strdup(silly))) {
		n->silly_parent = parent;
		n->silly_ctx = *c;
	}
	pthread_mutex_unlock(&s->lock);
	chaos_decision(s, "unlink", parent, name, "silly-rename", -1);
	chaos_own_change(s, parent, name, 0);
	chaos_own_change(s, parent, silly, ino);
	return 1;
}

/* The last close of a silly-renamed file: remove its .nfs name. Called
** with s->lock held; the removal happens in chaos_nfs_silly_done. */
bool chaos_nfs_silly_take(struct cnode *n, uint64_t *parent, char **name, struct eddy_ctx *c)
{
	if (!n->silly_name || n->opens)
		return false;
	*parent = n->silly_parent;
	*name = n->silly_name;
	*c = n->silly_ctx;
	n->silly_name = NULL;
	return true;
}

void chaos_nfs_silly_done(struct cfs *s, uint64_t parent, char *name, const struct eddy_ctx *c)
{
	s->inner->ops->unlink(s->inner, c, parent, name);
	chaos_own_change(s, parent, name, 0);
	free(name);
}

/* nfs: whether INO, which the truth says has no links left, is open here
** (an open file another client removed: its handle is stale, E2). */
bool chaos_nfs_removed_elsewhere(struct cfs *s, uint64_t ino)
{
	struct cnode *n;
	bool open;

	if (!s->nfs.on)
		return false;
	pthread_mutex_lock(&s->lock);
	n = cnode_find(s, ino);
	open = n && n->opens > 0 && !n->silly_name;
	pthread_mutex_unlock(&s->lock);
	return open;
}

/* An open file another client removed: its handle is stale. */
int chaos_nfs_stale(struct cfs *s, struct cfile *f)
{
	struct eddy_ctx self;
	struct stat st;
	double t;

	if (!s->nfs.on)
		return 0;
	eddy_ctx_self(&self);
	if (s->inner->ops->getattr(s->inner, &self, f->base.ino, f->inner, &st, &t) < 0)
		return -ESTALE;
	return st.st_nlink == 0 ? -ESTALE : 0;
}
