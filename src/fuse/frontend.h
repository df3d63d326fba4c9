/*
** frontend.h -- the FUSE frontend: serves one struct eddy_fs at a mountpoint.
** The only part of eddyfs that includes libfuse headers (in its .c files).
*/
#ifndef EDDY_FRONTEND_H
#define EDDY_FRONTEND_H

#include <stdbool.h>

#include "../fs.h"
#include "../util/log.h"

struct eddy_frontend_opts {
	const char *mountpoint;    /* absolute */
	const char *fsname;        /* shown in /proc/mounts (the backing path) */
	const char *fuse_opts;     /* user's -o list, may be NULL */
	int threads;               /* max FUSE worker threads */
	bool debug;                /* libfuse request trace on stderr */
	int ready_fd;              /* >= 0: write "ok\n" once mounted, then close */
	bool notify;               /* run the notifier (coherence=events) */
	bool writeback_cache;      /* ask the kernel for its writeback cache */
	bool shared_locks;         /* locks through the implementation, if it can */
	bool posix_close;          /* exact POSIX close rule: a FLUSH per close */
	/* the implementation checks access even with allow_other (a test
	 * knob: EDDYFS_TEST_DAEMON_ACCESS; safe only without entry caching) */
	bool daemon_access;
	struct eddy_log *log;
};

/* True if libfuse accepts the options (checked without mounting). */
bool eddy_frontend_opts_valid(const struct eddy_frontend_opts *o);
/* Do the FUSE options FUSE_OPTS (-o) make the kernel check permissions
** (allow_other, default_permissions)? */
bool eddy_fuse_opts_kernel_checks(const char *fuse_opts);

/* Mounts, serves until unmounted (umount, fusermount3 -u, SIGINT, SIGTERM,
** SIGHUP), cleans up. Returns 0 after a clean unmount, 1 on failure (the
** reason is logged, and written to ready_fd if mounting failed). */
int eddy_frontend_run(struct eddy_fs *fs, const struct eddy_frontend_opts *o);

#endif /* EDDY_FRONTEND_H */
