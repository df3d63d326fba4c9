/*
** client.h -- a volume opened without FUSE: path resolution, access
** checks and the few compound steps the `eddyfs ls|cat|put|...` commands
** need, all through the one interface (struct eddy_fs_ops) a mount uses,
** so a client sees and makes exactly what a mount would.
*/
#ifndef EDDY_CLIENT_H
#define EDDY_CLIENT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../fs.h"

#define VC_ROOT 1                  /* the root's inode number in every volume */

struct vclient {
	struct eddy_fs *fs;
	struct eddy_ctx ctx;       /* the caller: uid, gid, groups, umask */
};

/* Opens the volume in DIR as a client session. 0, or a negative errno and
** a one-line reason in ERR. */
int vclient_open(struct vclient *c, const char *dir, char *err, size_t errlen);
void vclient_close(struct vclient *c);

/* Resolves absolute PATH as the kernel would for the caller: search (x)
** permission on every directory walked, symlinks followed in the middle
** of the path (and at its end if FOLLOW), ELOOP after 40, "." and "..".
** On success *INO carries one reference (vclient_put) and *ST its
** attributes. */
int vclient_resolve(struct vclient *c, const char *path, bool follow, uint64_t *ino,
		    struct stat *st);
/* Resolves the directory PATH lives in (*DIR referenced, write and search
** checked if WRITE) and copies its last component into NAME. */
int vclient_parent(struct vclient *c, const char *path, bool write, uint64_t *dir,
		   char name[NAME_MAX + 1]);
/* NAME in directory DIR, not followed: 0 and a referenced *INO, -ENOENT. */
int vclient_lookup(struct vclient *c, uint64_t dir, const char *name, uint64_t *ino,
		   struct stat *st);
void vclient_put(struct vclient *c, uint64_t ino);

/* The kernel's permission check (R_OK/W_OK/X_OK bits of MASK) on inode
** INO with attributes ST for the caller: mode bits, and the access ACL
** for anyone but the owner; 0 or -EACCES. */
int vclient_access(const struct vclient *c, uint64_t ino, const struct stat *st, int mask);
/* May the caller remove or rename entry ST out of directory DIR (with
** attributes DST): write and search on DIR, and the sticky-bit rule? */
int vclient_may_delete(const struct vclient *c, uint64_t dir, const struct stat *dst,
		       const struct stat *st);

/* The names in directory INO ("." and ".." left out), sorted, in one
** allocation: *NAMES points at N strings. Read permission is checked. */
int vclient_list(struct vclient *c, uint64_t ino, const struct stat *st, char ***names,
		 size_t *n);
void vclient_list_free(char **names, size_t n);

#endif /* EDDY_CLIENT_H */
