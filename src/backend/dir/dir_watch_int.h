/*
** dir_watch_int.h -- the change detection of the dir backend, between its
** source-independent part (dir_watch.c: own-change recognition, watch ids,
** the event thread, dispatch to struct eddy_events) and its event sources
** (dir_watch_inotify.c, dir_watch_fanotify.c). Private to those files.
**
** A source turns the kernel's events into calls of watch_dir_event() (a
** name in a directory node, or the directory itself) and watch_inode_event()
** (a node known by identity only); everything else -- which changes were
** this mount's own, which node a name is -- is decided here, once.
** Watch ids: small integers >= 0 that the source hands out per watched
** node (inotify: the wd; fanotify: a slot of its handle table); the common
** part maps them to node inode numbers (watch_id_set / watch_id_ino) and
** stores them in the node (dir_node_set_wd) so that freeing the node
** removes the watch.
*/
#ifndef EDDY_DIR_WATCH_INT_H
#define EDDY_DIR_WATCH_INT_H

#include <sys/stat.h>

#include "dir_int.h"

#define EXPECT_BUCKETS 1024

struct expect;
struct own;

struct watch_source {
	const char *name;          /* stats: change_source_<name> */
	/* Creates w->fd (readable when events are queued); -errno. */
	int (*open)(struct dir_watch *w);
	/* Watches the node whose fd is FD (a directory, or a file with several
	 * links); returns a watch id >= 0 or -errno. Reuses the id of an object
	 * already watched. */
	int (*add)(struct dir_watch *w, int fd, bool dir);
	/* The node holding ID was freed. Called under the node table lock. */
	void (*remove)(struct dir_watch *w, int id);
	/* Reads and handles what is queued; <0: the stream failed. */
	int (*drain)(struct dir_watch *w);
	void (*close)(struct dir_watch *w);
};

extern const struct watch_source watch_inotify;
extern const struct watch_source watch_fanotify;

struct dir_watch {
	struct dir_fs *d;
	const struct watch_source *src;
	void *priv;                /* the source's own state */
	struct eddy_events ev;
	int fd, stopfd;
	pthread_t thread;
	pthread_mutex_t lock;      /* guards the tables below (and the source's
				    * tables); a leaf lock */
	uint64_t *id_ino;          /* watch id -> node ino (0: free) */
	size_t id_cap;
	struct expect *expect[EXPECT_BUCKETS];
	struct own *own[EXPECT_BUCKETS];
	atomic_long nevents, nsuppressed, nfallbacks, nwatches, nfailures, ndecodes;
};

/* What a source reports about a name or an inode (may be combined: the
** kernel merges events of one name that are still queued). */
enum {
	WE_ADD = 1,                /* the name appeared (create, link, move in) */
	WE_DEL = 2,                /* the name went away (unlink, move out) */
	WE_DATA = 4,               /* content changed */
	WE_ATTR = 8,               /* attributes changed */
};

/* DIR is a node's ino; NAME NULL: the directory itself. */
void watch_dir_event(struct dir_watch *w, uint64_t dir, const char *name, unsigned what);
/* A node known by identity; ST its attributes now (NULL: stat it here). */
void watch_inode_event(struct dir_watch *w, uint64_t ino, const struct stat *st,
		       unsigned what);
/* News was lost: invalidate everything, short timeouts from now on. */
void watch_fallback(struct dir_watch *w, const char *why);
/* Watch id bookkeeping, under w->lock: watch_id_set_locked maps ID to INO;
** watch_id_ino_locked returns the ino of ID (0: none) and with FORGET frees
** the id. */
void watch_id_set_locked(struct dir_watch *w, int id, uint64_t ino);
uint64_t watch_id_ino_locked(struct dir_watch *w, int id, bool forget);
uint64_t watch_id_ino(struct dir_watch *w, int id, bool forget);

#endif /* EDDY_DIR_WATCH_INT_H */
