/*
** runtime.h -- where a running mount leaves its pid file and control
** socket, and how the CLI finds them again from the mountpoint alone.
**
** Directory: $EDDYFS_RUNTIME_DIR, else /run/eddyfs for root, else
** $XDG_RUNTIME_DIR/eddyfs, else /tmp/eddyfs-<uid>. Per mount, named by a
** hash of the mountpoint's absolute path: <hash>.pid ("pid\nmountpoint\n")
** and <hash>.sock. Unmounting also needs the tools in unmount.c.
*/
#ifndef EDDY_RUNTIME_H
#define EDDY_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define EDDY_PATH_MAX 4096

struct eddy_runtime_paths {
	char dir[EDDY_PATH_MAX];
	char pidfile[EDDY_PATH_MAX];
	char sock[108];
};

/* Paths for MOUNTPOINT (absolute) in this user's runtime dir; creates it. */
int eddy_runtime_paths(const char *mountpoint, struct eddy_runtime_paths *p, bool create);
/* Finds the daemon of MOUNTPOINT (searching every user's dir when root).
** Returns its pid (> 0) and fills P, or -ENOENT. */
pid_t eddy_runtime_find(const char *mountpoint, struct eddy_runtime_paths *p);
int eddy_runtime_write_pid(const struct eddy_runtime_paths *p, const char *mountpoint);

/* Unmounts MOUNTPOINT: umount2() as root, fusermount3 -u otherwise; if the
** mount is busy and LAZY_IF_BUSY, detaches it lazily. Sets *lazy if it did. */
int eddy_unmount(const char *mountpoint, bool lazy_if_busy, bool *lazy);

#endif /* EDDY_RUNTIME_H */
