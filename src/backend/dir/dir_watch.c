/*
** dir_watch.c -- change detection for the dir backend, the part that does
** not depend on the event source: own-change recognition, watch ids, the
** event thread and the dispatch to struct eddy_events. The sources:
** dir_watch_fanotify.c (one filesystem mark, privileged) and
** dir_watch_inotify.c (a watch per directory the kernel knows); see
** dir_watch_int.h for the interface between them.
**
** Guarantees:
**   1. A node is watched when it is created (the kernel first learns the
**      directory, or a file gains a second link) and unwatched when it is
**      freed (forget): the kernel's dentry cache bounds the watches. After
**      adding a watch the directory is re-checked: if it changed since it
**      was looked up, its cached listing is invalidated.
**   2. Changes made through this mount are recognised and not echoed back:
**      namespace events by a count of expected (directory, name, kind)
**      events recorded before each operation; content and attribute events
**      by the ctime this mount last saw after its own change to the inode.
**      A doubt is resolved by invalidating (costs a round trip, never
**      correctness).
**   3. Queue overflow, a watch that cannot be added, or an event stream that
**      fails: everything the kernel holds is invalidated and the mount
**      degrades to short timeouts (dir_options.fallback_timeout), counted.
**   4. --watch=auto uses fanotify when it can be set up (privilege, kernel
**      support, file handles on the backing filesystem), else inotify.
** The event thread blocks every signal and holds no lock while it calls up.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dir_watch_int.h"

#define EXPECT_TTL_NS (5LL * 1000 * 1000 * 1000)

enum expect_kind { EXPECT_ADD, EXPECT_DEL };

struct expect {
	uint64_t parent;
	int kind;
	int count;
	long long when;
	struct expect *next;
	char name[];
};

/* An inode this mount changed itself, and the ctime it left. */
struct own {
	uint64_t ino;
	struct timespec ctime;
	long long when;
	struct own *next;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t name_hash(uint64_t parent, const char *name)
{
	size_t h = (size_t)parent * 0x9e3779b97f4a7c15ULL;

	for (; *name; name++)
		h = h * 131 + (unsigned char)*name;
	return h % EXPECT_BUCKETS;
}

/****************************** own changes ******************************/

void dir_watch_expect(struct dir_fs *d, uint64_t parent, const char *name, bool add, int delta)
{
	struct dir_watch *w = d->watch;
	struct expect **pp, *e;
	long long t = now_ns();
	int kind = add ? EXPECT_ADD : EXPECT_DEL;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	for (pp = &w->expect[name_hash(parent, name)]; (e = *pp);) {
		if (t - e->when > EXPECT_TTL_NS) {        /* never matched: drop */
			*pp = e->next;
			free(e);
			continue;
		}
		if (e->parent == parent && e->kind == kind && strcmp(e->name, name) == 0)
			break;
		pp = &e->next;
	}
	if (!e && delta > 0 && (e = calloc(1, sizeof(*e) + strlen(name) + 1))) {
		e->parent = parent;
		e->kind = kind;
		strcpy(e->name, name);
		e->next = NULL;
		*pp = e;
	}
	if (e) {
		e->count += delta;
		e->when = t;
		if (e->count <= 0) {
			*pp = e->next;
			free(e);
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/* Consumes one expected event; true if it was this mount's own. */
static bool expected(struct dir_watch *w, uint64_t parent, const char *name, bool add)
{
	struct expect **pp, *e;
	int kind = add ? EXPECT_ADD : EXPECT_DEL;
	bool hit = false;

	pthread_mutex_lock(&w->lock);
	for (pp = &w->expect[name_hash(parent, name)]; (e = *pp); pp = &e->next)
		if (e->parent == parent && e->kind == kind && strcmp(e->name, name) == 0)
			break;
	if (e) {
		hit = true;
		if (--e->count <= 0) {
			*pp = e->next;
			free(e);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return hit;
}

/* After this mount changed INO (data or attributes), remember its ctime. */
void dir_watch_own_change(struct dir_fs *d, uint64_t ino, int fd)
{
	struct dir_watch *w = d->watch;
	struct own **pp, *o;
	struct stat st;
	long long t;

	if (!w || fstat(fd, &st) < 0)
		return;
	t = now_ns();
	pthread_mutex_lock(&w->lock);
	for (pp = &w->own[(size_t)ino % EXPECT_BUCKETS]; (o = *pp);) {
		if (o->ino == ino)
			break;
		if (t - o->when > EXPECT_TTL_NS) {
			*pp = o->next;
			free(o);
			continue;
		}
		pp = &o->next;
	}
	if (!o && (o = calloc(1, sizeof(*o)))) {
		o->ino = ino;
		*pp = o;
	}
	if (o) {
		o->ctime = st.st_ctim;
		o->when = t;
	}
	pthread_mutex_unlock(&w->lock);
}

static bool own_ctime(struct dir_watch *w, uint64_t ino, const struct stat *st)
{
	struct own *o;
	bool hit = false;

	pthread_mutex_lock(&w->lock);
	for (o = w->own[(size_t)ino % EXPECT_BUCKETS]; o; o = o->next)
		if (o->ino == ino) {
			hit = o->ctime.tv_sec == st->st_ctim.tv_sec &&
			      o->ctime.tv_nsec == st->st_ctim.tv_nsec;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	return hit;
}

/* Drops expectations and own-change records older than their TTL; run by
** the event thread every second so the tables stay small. */
static void purge(struct dir_watch *w)
{
	long long t = now_ns();
	size_t i;

	pthread_mutex_lock(&w->lock);
	for (i = 0; i < EXPECT_BUCKETS; i++) {
		struct expect **pe = &w->expect[i], *e;
		struct own **po = &w->own[i], *o;

		while ((e = *pe)) {
			if (t - e->when > EXPECT_TTL_NS) {
				*pe = e->next;
				free(e);
			} else {
				pe = &e->next;
			}
		}
		while ((o = *po)) {
			if (t - o->when > EXPECT_TTL_NS) {
				*po = o->next;
				free(o);
			} else {
				po = &o->next;
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/****************************** watches ******************************/

void watch_fallback(struct dir_watch *w, const char *why)
{
	atomic_fetch_add(&w->nfallbacks, 1);
	atomic_store(&w->d->degraded, true);
	(void)why;
	w->ev.everything_changed(w->ev.up);
}

void watch_id_set_locked(struct dir_watch *w, int id, uint64_t ino)
{
	if ((size_t)id >= w->id_cap) {
		size_t cap = (size_t)id * 2 + 64;
		uint64_t *p = realloc(w->id_ino, cap * sizeof(*p));

		if (!p)
			return;
		memset(p + w->id_cap, 0, (cap - w->id_cap) * sizeof(*p));
		w->id_ino = p;
		w->id_cap = cap;
	}
	if (!w->id_ino[id])
		atomic_fetch_add(&w->nwatches, 1);
	w->id_ino[id] = ino;
}

uint64_t watch_id_ino_locked(struct dir_watch *w, int id, bool forget)
{
	uint64_t ino = 0;

	if (id >= 0 && (size_t)id < w->id_cap) {
		ino = w->id_ino[id];
		if (forget && ino) {
			w->id_ino[id] = 0;
			atomic_fetch_sub(&w->nwatches, 1);
		}
	}
	return ino;
}

uint64_t watch_id_ino(struct dir_watch *w, int id, bool forget)
{
	uint64_t ino;

	pthread_mutex_lock(&w->lock);
	ino = watch_id_ino_locked(w, id, forget);
	pthread_mutex_unlock(&w->lock);
	return ino;
}

#define RECENT_NS 100000000LL     /* 100 ms: many clock ticks */

static bool changed_recently(const struct stat *st)
{
	struct timespec t;
	long long age;

	if (clock_gettime(CLOCK_REALTIME, &t) < 0)
		return true;
	age = (long long)(t.tv_sec - st->st_mtim.tv_sec) * 1000000000LL +
	      (t.tv_nsec - st->st_mtim.tv_nsec);
	return age < RECENT_NS;
}

/* Called when a node is to be watched; FD is any fd of it. */
static void watch_add(struct dir_fs *d, uint64_t ino, int fd, const struct stat *seen, bool dir)
{
	struct dir_watch *w = d->watch;
	struct stat now;
	int id;

	if (!w)
		return;
	id = w->src->add(w, fd, dir);
	if (id < 0) {
		atomic_fetch_add(&w->nfailures, 1);
		watch_fallback(w, "watch");
		return;
	}
	pthread_mutex_lock(&w->lock);
	watch_id_set_locked(w, id, ino);
	pthread_mutex_unlock(&w->lock);
	dir_node_set_wd(d, ino, id);
	/* Re-check: a change between the lookup and the watch is not lost.
	 * Timestamps move in clock ticks: a directory changed within the
	 * last RECENT_NS may have changed again in the same tick (a new
	 * directory filled at once by another client), unseen by mtime. */
	if (seen && fstat(fd, &now) == 0 &&
	    (now.st_mtim.tv_sec != seen->st_mtim.tv_sec ||
	     now.st_mtim.tv_nsec != seen->st_mtim.tv_nsec || now.st_nlink != seen->st_nlink ||
	     changed_recently(&now)))
		w->ev.inode_changed(w->ev.up, ino, false);
}

/* Called (under the node table lock) when a watched node is freed. */
void dir_watch_remove(struct dir_fs *d, int wd)
{
	struct dir_watch *w = d->watch;

	if (!w || wd < 0)
		return;
	w->src->remove(w, wd);
}

/****************************** events ******************************/

static bool suppressed_own(struct dir_watch *w, uint64_t ino, const struct stat *st)
{
	if (!own_ctime(w, ino, st))
		return false;
	atomic_fetch_add(&w->nsuppressed, 1);
	return true;
}

/* A child's content or attributes changed: find its node and report it. */
static void child_changed(struct dir_watch *w, uint64_t dir, const char *name, bool data)
{
	struct stat st;
	uint64_t child, birth;
	int pfd = dir_node_fd_get(w->d, dir, NULL);

	if (pfd < 0)
		return;
	if (dir_stat_at(pfd, name, &st, &birth) == 0 &&
	    (child = dir_node_find(w->d, &st, birth)) != 0) {
		if (S_ISREG(st.st_mode) && st.st_nlink > 1)
			dir_watch_new_multilink(w->d, child);
		if (!suppressed_own(w, child, &st))
			w->ev.inode_changed(w->ev.up, child, !data);
	}
	dir_node_fd_put(w->d, dir);
}

void watch_inode_event(struct dir_watch *w, uint64_t ino, const struct stat *st,
		       unsigned what)
{
	struct stat now;
	uint64_t birth;

	atomic_fetch_add(&w->nevents, 1);
	if (!st) {
		int fd = dir_node_fd_get(w->d, ino, NULL);

		if (fd < 0)
			return;
		if (dir_stat_at(fd, "", &now, &birth) < 0) {
			dir_node_fd_put(w->d, ino);
			return;
		}
		dir_node_fd_put(w->d, ino);
		st = &now;
	}
	if (S_ISREG(st->st_mode) && st->st_nlink > 1)
		dir_watch_new_multilink(w->d, ino);
	if (!suppressed_own(w, ino, st))
		w->ev.inode_changed(w->ev.up, ino, !(what & WE_DATA));
}

void watch_dir_event(struct dir_watch *w, uint64_t dir, const char *name, unsigned what)
{
	atomic_fetch_add(&w->nevents, 1);
	if (!name) {                         /* the watched inode itself */
		if (what & WE_DATA)
			w->ev.inode_changed(w->ev.up, dir, false);
		else if (what & WE_ATTR)
			w->ev.inode_changed(w->ev.up, dir, true);
		return;
	}
	if ((what & WE_ADD) && (what & WE_DEL)) {
		/* merged by the kernel, order unknown: consume both
		 * expectations; unless both were ours, the name changed */
		bool ea = expected(w, dir, name, true);
		bool ed = expected(w, dir, name, false);

		if (ea && ed) {
			atomic_fetch_add(&w->nsuppressed, 1);
		} else {
			w->ev.entry_changed(w->ev.up, dir, name);
			child_changed(w, dir, name, false);
		}
	} else if (what & WE_ADD) {
		if (expected(w, dir, name, true)) {
			atomic_fetch_add(&w->nsuppressed, 1);
		} else {
			w->ev.entry_changed(w->ev.up, dir, name);
			/* a new name of a known inode (link, rename): its link
			 * count or ctime changed, and inotify reports that only
			 * to a watch on the inode itself */
			child_changed(w, dir, name, false);
		}
	} else if (what & WE_DEL) {
		if (expected(w, dir, name, false))
			atomic_fetch_add(&w->nsuppressed, 1);
		else
			w->ev.entry_deleted(w->ev.up, dir, name,
					    dir_node_find_named(w->d, dir, name));
	} else if (what & (WE_DATA | WE_ATTR)) {
		child_changed(w, dir, name, (what & WE_DATA) != 0);
	}
}

static void *watch_main(void *arg)
{
	struct dir_watch *w = arg;
	long long last_purge = now_ns();
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pollfd p[2] = { { w->fd, POLLIN, 0 }, { w->stopfd, POLLIN, 0 } };
		int r = poll(p, 2, 1000);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			watch_fallback(w, "poll");
			break;
		}
		if (p[1].revents)
			break;
		if (now_ns() - last_purge > 1000000000LL) {
			purge(w);
			last_purge = now_ns();
		}
		if (r == 0)
			continue;
		if (w->src->drain(w) < 0) {
			watch_fallback(w, "read");
			break;
		}
	}
	return NULL;
}

/****************************** lifecycle ******************************/

static void watch_free(struct dir_watch *w)
{
	size_t i;

	if (w->fd >= 0)
		w->src->close(w);
	if (w->stopfd >= 0)
		close(w->stopfd);
	for (i = 0; i < EXPECT_BUCKETS; i++) {
		while (w->expect[i]) {
			struct expect *e = w->expect[i];

			w->expect[i] = e->next;
			free(e);
		}
		while (w->own[i]) {
			struct own *o = w->own[i];

			w->own[i] = o->next;
			free(o);
		}
	}
	free(w->id_ino);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* A watcher with SRC, its event stream open; NULL with *ERR set. */
static struct dir_watch *watch_new(struct dir_fs *d, const struct eddy_events *ev,
				   const struct watch_source *src, int *err)
{
	struct dir_watch *w = calloc(1, sizeof(*w));

	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	w->d = d;
	w->ev = *ev;
	w->src = src;
	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	w->stopfd = eventfd(0, EFD_CLOEXEC);
	if (w->stopfd < 0) {
		*err = -errno;
		watch_free(w);
		return NULL;
	}
	*err = src->open(w);
	if (*err < 0) {
		w->fd = -1;
		watch_free(w);
		return NULL;
	}
	return w;
}

int dir_watch_start(struct eddy_fs *fs, const struct eddy_events *ev)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_watch *w = NULL;
	int err = 0;

	if (d->opt.watch == DIR_WATCH_NONE || d->watch)
		return 0;
	if (d->opt.watch == DIR_WATCH_FANOTIFY || d->opt.watch == DIR_WATCH_AUTO)
		w = watch_new(d, ev, &watch_fanotify, &err);
	if (!w && d->opt.watch != DIR_WATCH_FANOTIFY)
		w = watch_new(d, ev, &watch_inotify, &err);
	if (!w) {
		atomic_store(&d->degraded, true);
		return err;
	}
	d->watch = w;
	/* the root, and every directory already known */
	watch_add(d, EDDY_ROOT_INO, d->root_fd, NULL, true);
	dir_node_watch_known(d);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		d->watch = NULL;
		watch_free(w);
		atomic_store(&d->degraded, true);
		return -EAGAIN;
	}
	return 0;
}

void dir_watch_stop(struct eddy_fs *fs)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_watch *w = d->watch;
	uint64_t one = 1;

	if (!w)
		return;
	if (write(w->stopfd, &one, sizeof(one)) < 0)
		return;
	pthread_join(w->thread, NULL);
	pthread_mutex_lock(&d->lock);
	d->watch = NULL;
	pthread_mutex_unlock(&d->lock);
	watch_free(w);
}

const char *dir_watch_source(struct dir_fs *d)
{
	struct dir_watch *w = d->watch;

	return w ? w->src->name : NULL;
}

void dir_watch_report(struct dir_fs *d, eddy_stat_fn fn, void *arg)
{
	struct dir_watch *w = d->watch;

	fn(arg, "change_source_fanotify", w && w->src == &watch_fanotify ? 1 : 0);
	fn(arg, "change_source_inotify", w && w->src == &watch_inotify ? 1 : 0);
	fn(arg, "change_degraded", atomic_load(&d->degraded) ? 1 : 0);
	if (!w)
		return;
	fn(arg, "change_events", atomic_load(&w->nevents));
	fn(arg, "change_own_suppressed", atomic_load(&w->nsuppressed));
	fn(arg, "change_fallbacks", atomic_load(&w->nfallbacks));
	fn(arg, "watches", atomic_load(&w->nwatches));
	fn(arg, "watch_failures", atomic_load(&w->nfailures));
	if (w->src == &watch_fanotify)
		fn(arg, "change_handle_decodes", atomic_load(&w->ndecodes));
}

/* Watches node INO (no-op without change detection). */
static void watch_node(struct dir_fs *d, uint64_t ino, const struct stat *seen, bool dir)
{
	int fd = dir_node_fd_get(d, ino, NULL);

	if (fd < 0)
		return;
	watch_add(d, ino, fd, seen, dir);
	dir_node_fd_put(d, ino);
}

void dir_watch_new_dir(struct dir_fs *d, uint64_t ino, const struct stat *seen)
{
	if (d->watch)
		watch_node(d, ino, seen, true);
}

void dir_watch_new_multilink(struct dir_fs *d, uint64_t ino)
{
	if (d->watch && !dir_node_has_wd(d, ino))
		watch_node(d, ino, NULL, false);
}

/* A timeout the kernel may use: the configured one, or the fallback one
** once change news was lost. */
double dir_timeout(struct dir_fs *d, double t)
{
	if (atomic_load(&d->degraded) && t > d->opt.fallback_timeout)
		return d->opt.fallback_timeout;
	return t;
}
