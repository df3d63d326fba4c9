/*
** dir.h -- the "dir" backend: exposes one existing directory (passthrough).
** See dir.c for what it guarantees.
*/
#ifndef EDDY_DIR_H
#define EDDY_DIR_H

#include <stddef.h>

#include "../../fs.h"

enum dir_watch_kind {
	DIR_WATCH_NONE,            /* report nothing (ttl/off coherence, poll) */
	DIR_WATCH_INOTIFY,         /* inotify on the directories the kernel knows */
	DIR_WATCH_FANOTIFY,        /* fanotify: one mark on the whole filesystem */
	DIR_WATCH_AUTO,            /* fanotify if it can be set up, else inotify */
};

struct dir_options {
	double entry_timeout;      /* seconds the kernel may cache a name */
	double attr_timeout;       /* seconds the kernel may cache attributes */
	double negative_timeout;   /* seconds the kernel may cache an absence */
	double fallback_timeout;   /* all three, once change news was lost */
	bool keep_cache;           /* keep page cache across opens */
	bool cache_readdir;        /* let the kernel cache directory listings */
	enum dir_watch_kind watch; /* how changes made elsewhere are noticed */
	size_t fd_cache;           /* max cached O_PATH fds (unpinned) */
};

void dir_options_default(struct dir_options *o);

/* Opens BACKING. On failure returns a negative errno and writes a one-line
** reason into ERR. */
int dir_fs_open(const char *backing, const struct dir_options *o, struct eddy_fs **out,
		char *err, size_t errlen);

/* 0 if a fanotify filesystem mark with directory file handles and names
** can watch BACKING (privilege, kernel, backing filesystem); else a
** negative errno and a one-line reason in WHY. */
int dir_watch_fanotify_probe(const char *backing, char *why, size_t len);

#endif /* EDDY_DIR_H */
