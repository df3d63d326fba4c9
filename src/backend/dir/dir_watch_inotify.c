/*
** dir_watch_inotify.c -- the inotify event source of the dir backend: one
** watch per directory the kernel knows (and per regular file with several
** links), the watch descriptor being the watch id. Unprivileged; misses a
** link-count change made through a directory this mount does not watch
** (Linux reports it only to a watch on the inode itself).
** Events are turned into watch_dir_event() calls (dir_watch_int.h).
*/
#include <errno.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "dir_watch_int.h"

/* No IN_CLOSE_WRITE: IN_MODIFY reports every write, and close events of
** unchanged files (lock descriptors, read-write opens) would only cost
** invalidations. Writes through a shared mmap are seen when the writer
** changes the file otherwise (see README limits). */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | \
		    IN_ATTRIB | IN_ONLYDIR | IN_EXCL_UNLINK)
/* A hard-linked file: changed through a name in a directory this mount
** does not watch, or its link count changed (reported only to the inode). */
#define FILE_MASK (IN_MODIFY | IN_ATTRIB)

static int in_open(struct dir_watch *w)
{
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return w->fd < 0 ? -errno : 0;
}

static int in_add(struct dir_watch *w, int fd, bool dir)
{
	char proc[64];
	int wd;

	dir_proc_path(proc, sizeof(proc), fd);
	wd = inotify_add_watch(w->fd, proc, dir ? WATCH_MASK : FILE_MASK);
	return wd < 0 ? -errno : wd;
}

/* The id is freed when IN_IGNORED arrives (the kernel may still report
** events of the watch until then). */
static void in_remove(struct dir_watch *w, int wd)
{
	inotify_rm_watch(w->fd, wd);
}

static void handle(struct dir_watch *w, const struct inotify_event *e)
{
	unsigned what = 0;
	uint64_t dir;

	if (e->mask & IN_Q_OVERFLOW) {
		atomic_fetch_add(&w->nevents, 1);
		watch_fallback(w, "overflow");
		return;
	}
	dir = watch_id_ino(w, e->wd, (e->mask & IN_IGNORED) != 0);
	if (!dir || (e->mask & IN_IGNORED))
		return;
	if (e->mask & (IN_CREATE | IN_MOVED_TO))
		what = WE_ADD;
	else if (e->mask & (IN_DELETE | IN_MOVED_FROM))
		what = WE_DEL;
	else if (e->mask & IN_MODIFY)
		what = WE_DATA;
	else if (e->mask & IN_ATTRIB)
		what = WE_ATTR;
	if (what)
		watch_dir_event(w, dir, e->len ? e->name : NULL, what);
}

static int in_drain(struct dir_watch *w)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(w->fd, buf, sizeof(buf));
	char *q;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	for (q = buf; q < buf + n;) {
		const struct inotify_event *e = (const struct inotify_event *)q;

		handle(w, e);
		q += sizeof(*e) + e->len;
	}
	return 0;
}

static void in_close(struct dir_watch *w)
{
	close(w->fd);
}

const struct watch_source watch_inotify = {
	.name = "inotify",
	.open = in_open,
	.add = in_add,
	.remove = in_remove,
	.drain = in_drain,
	.close = in_close,
};
