/*
** dir_watch.c -- change detection for the dir backend: inotify on the
** directories the kernel knows, turned into struct eddy_events.
**
** Guarantees:
**   1. A watch is added when a directory node is created (the kernel first
**      learns the directory) and removed when the node is freed (forget);
**      the kernel's dentry cache therefore bounds the number of watches.
**      After adding a watch the directory is re-checked: if it changed
**      since it was looked up, its cached listing is invalidated.
**   2. Changes made through this mount are recognised and not echoed back:
**      namespace events by a count of expected (directory, name, kind)
**      events recorded before each operation; content and attribute events
**      by the ctime this mount last saw after its own change to the inode.
**      A doubt is resolved by invalidating (costs a round trip, never
**      correctness).
**   3. Queue overflow, a watch that cannot be added, or an event stream that
**      fails: everything the kernel holds is invalidated and the mount
**      degrades to short timeouts (dir_options.fallback_timeout), counted.
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
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "dir_int.h"

/* No IN_CLOSE_WRITE: IN_MODIFY reports every write, and close events of
** unchanged files (lock descriptors, read-write opens) would only cost
** invalidations. Writes through a shared mmap are seen when the writer
** changes the file otherwise (see README limits). */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | \
		    IN_ATTRIB | IN_ONLYDIR | IN_EXCL_UNLINK)
/* A hard-linked file: changed through a name in a directory this mount
** does not watch, or its link count changed (reported only to the inode). */
#define FILE_MASK (IN_MODIFY | IN_ATTRIB)
#define EXPECT_BUCKETS 1024
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

struct dir_watch {
	struct dir_fs *d;
	struct eddy_events ev;
	int ifd, stopfd;
	pthread_t thread;
	pthread_mutex_t lock;      /* guards the tables below; a leaf lock */
	uint64_t *wd_ino;          /* wd -> ino (wd are small integers) */
	size_t wd_cap;
	struct expect *expect[EXPECT_BUCKETS];
	struct own *own[EXPECT_BUCKETS];
	atomic_long nevents, nsuppressed, nfallbacks, nwatches, nfailures;
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

static void fallback(struct dir_watch *w, const char *why)
{
	atomic_fetch_add(&w->nfallbacks, 1);
	atomic_store(&w->d->degraded, true);
	(void)why;
	w->ev.everything_changed(w->ev.up);
}

/* Called when a directory node was created; FD is any fd of it. */
void dir_watch_add(struct dir_fs *d, uint64_t ino, int fd, const struct stat *seen,
		   uint32_t mask)
{
	struct dir_watch *w = d->watch;
	char proc[64];
	struct stat now;
	int wd;

	if (!w)
		return;
	dir_proc_path(proc, sizeof(proc), fd);
	wd = inotify_add_watch(w->ifd, proc, mask);
	if (wd < 0) {
		atomic_fetch_add(&w->nfailures, 1);
		fallback(w, "watch");
		return;
	}
	pthread_mutex_lock(&w->lock);
	if ((size_t)wd >= w->wd_cap) {
		size_t cap = (size_t)wd * 2 + 64;
		uint64_t *p = realloc(w->wd_ino, cap * sizeof(*p));

		if (p) {
			memset(p + w->wd_cap, 0, (cap - w->wd_cap) * sizeof(*p));
			w->wd_ino = p;
			w->wd_cap = cap;
		}
	}
	if ((size_t)wd < w->wd_cap) {
		if (!w->wd_ino[wd])
			atomic_fetch_add(&w->nwatches, 1);
		w->wd_ino[wd] = ino;
	}
	pthread_mutex_unlock(&w->lock);
	dir_node_set_wd(d, ino, wd);
	/* Re-check: a change between the lookup and the watch is not lost. */
	if (seen && fstat(fd, &now) == 0 &&
	    (now.st_mtim.tv_sec != seen->st_mtim.tv_sec ||
	     now.st_mtim.tv_nsec != seen->st_mtim.tv_nsec))
		w->ev.inode_changed(w->ev.up, ino, false);
}

/* Called (under the node table lock) when a directory node is freed. */
void dir_watch_remove(struct dir_fs *d, int wd)
{
	struct dir_watch *w = d->watch;

	if (!w || wd < 0)
		return;
	inotify_rm_watch(w->ifd, wd);
}

static uint64_t ino_of_wd(struct dir_watch *w, int wd, bool forget)
{
	uint64_t ino = 0;

	pthread_mutex_lock(&w->lock);
	if (wd >= 0 && (size_t)wd < w->wd_cap) {
		ino = w->wd_ino[wd];
		if (forget && ino) {
			w->wd_ino[wd] = 0;
			atomic_fetch_sub(&w->nwatches, 1);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return ino;
}

/****************************** events ******************************/

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
		if (own_ctime(w, child, &st))
			atomic_fetch_add(&w->nsuppressed, 1);
		else
			w->ev.inode_changed(w->ev.up, child, !data);
	}
	dir_node_fd_put(w->d, dir);
}

static void handle(struct dir_watch *w, const struct inotify_event *e)
{
	uint64_t dir;

	atomic_fetch_add(&w->nevents, 1);
	if (e->mask & IN_Q_OVERFLOW) {
		fallback(w, "overflow");
		return;
	}
	dir = ino_of_wd(w, e->wd, (e->mask & IN_IGNORED) != 0);
	if (!dir || (e->mask & IN_IGNORED))
		return;
	if (!e->len) {                       /* the watched inode itself */
		if (e->mask & IN_MODIFY)
			w->ev.inode_changed(w->ev.up, dir, false);
		else if (e->mask & IN_ATTRIB)
			w->ev.inode_changed(w->ev.up, dir, true);
		return;
	}
	if (e->mask & (IN_CREATE | IN_MOVED_TO)) {
		if (expected(w, dir, e->name, true)) {
			atomic_fetch_add(&w->nsuppressed, 1);
		} else {
			w->ev.entry_changed(w->ev.up, dir, e->name);
			/* a new name of a known inode (link, rename): its link
			 * count or ctime changed, and Linux reports that only to a
			 * watch on the inode itself */
			child_changed(w, dir, e->name, false);
		}
	} else if (e->mask & (IN_DELETE | IN_MOVED_FROM)) {
		if (expected(w, dir, e->name, false))
			atomic_fetch_add(&w->nsuppressed, 1);
		else
			w->ev.entry_deleted(w->ev.up, dir, e->name,
					    dir_node_find_named(w->d, dir, e->name));
	} else if (e->mask & (IN_MODIFY | IN_ATTRIB)) {
		child_changed(w, dir, e->name, (e->mask & IN_MODIFY) != 0);
	}
}

static void *watch_main(void *arg)
{
	struct dir_watch *w = arg;
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	long long last_purge = now_ns();
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pollfd p[2] = { { w->ifd, POLLIN, 0 }, { w->stopfd, POLLIN, 0 } };
		ssize_t n;
		char *q;

		int r = poll(p, 2, 1000);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			fallback(w, "poll");
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
		n = read(w->ifd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fallback(w, "read");
			break;
		}
		for (q = buf; q < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)q;

			handle(w, e);
			q += sizeof(*e) + e->len;
		}
	}
	return NULL;
}

/****************************** lifecycle ******************************/

int dir_watch_start(struct eddy_fs *fs, const struct eddy_events *ev)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_watch *w;

	if (d->opt.watch != DIR_WATCH_INOTIFY || d->watch)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->d = d;
	w->ev = *ev;
	pthread_mutex_init(&w->lock, NULL);
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->stopfd = eventfd(0, EFD_CLOEXEC);
	if (w->ifd < 0 || w->stopfd < 0) {
		int err = -errno;

		if (w->ifd >= 0)
			close(w->ifd);
		if (w->stopfd >= 0)
			close(w->stopfd);
		free(w);
		atomic_store(&d->degraded, true);
		return err;
	}
	d->watch = w;
	/* the root, and every directory already known */
	dir_watch_add(d, EDDY_ROOT_INO, d->root_fd, NULL, WATCH_MASK);
	dir_node_watch_known(d);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		d->watch = NULL;
		close(w->ifd);
		close(w->stopfd);
		free(w);
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
	size_t i;

	if (!w)
		return;
	if (write(w->stopfd, &one, sizeof(one)) < 0)
		return;
	pthread_join(w->thread, NULL);
	pthread_mutex_lock(&d->lock);
	d->watch = NULL;
	pthread_mutex_unlock(&d->lock);
	close(w->ifd);
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
	free(w->wd_ino);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void dir_watch_report(struct dir_fs *d, eddy_stat_fn fn, void *arg)
{
	struct dir_watch *w = d->watch;

	fn(arg, "change_source_inotify", w ? 1 : 0);
	fn(arg, "change_degraded", atomic_load(&d->degraded) ? 1 : 0);
	if (!w)
		return;
	fn(arg, "change_events", atomic_load(&w->nevents));
	fn(arg, "change_own_suppressed", atomic_load(&w->nsuppressed));
	fn(arg, "change_fallbacks", atomic_load(&w->nfallbacks));
	fn(arg, "watches", atomic_load(&w->nwatches));
	fn(arg, "watch_failures", atomic_load(&w->nfailures));
}

/* Watches node INO with MASK (no-op without change detection). */
static void watch_node(struct dir_fs *d, uint64_t ino, const struct stat *seen, uint32_t mask)
{
	int fd = dir_node_fd_get(d, ino, NULL);

	if (fd < 0)
		return;
	dir_watch_add(d, ino, fd, seen, mask);
	dir_node_fd_put(d, ino);
}

void dir_watch_new_dir(struct dir_fs *d, uint64_t ino, const struct stat *seen)
{
	if (d->watch)
		watch_node(d, ino, seen, WATCH_MASK);
}

void dir_watch_new_multilink(struct dir_fs *d, uint64_t ino)
{
	if (d->watch && !dir_node_has_wd(d, ino))
		watch_node(d, ino, NULL, FILE_MASK);
}

/* A timeout the kernel may use: the configured one, or the fallback one
** once change news was lost. */
double dir_timeout(struct dir_fs *d, double t)
{
	if (atomic_load(&d->degraded) && t > d->opt.fallback_timeout)
		return d->opt.fallback_timeout;
	return t;
}
