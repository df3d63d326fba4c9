/*
** fsrules.h -- the rules of a local Linux filesystem that every backend
** owning its inodes (mem, volume) applies the same way: name checks, the
** ownership and setuid/setgid rules of chown, write and new objects, the
** xattr namespaces, and size arguments. Pure functions: no locks, no I/O.
*/
#ifndef EDDY_FSRULES_H
#define EDDY_FSRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "../fs.h"

#define EDDY_NAME_MAX 255
#define EDDY_XATTR_SIZE_MAX 65536

/* 0, -EINVAL (empty, ".", "..", '/') or -ENAMETOOLONG. */
int eddy_check_name(const char *name);

/* A number with an optional binary suffix (K, M, G, T) in S[0..len);
** false if malformed or out of range. */
bool eddy_parse_size(const char *s, size_t len, uint64_t *out);

/* The mode after a write or truncate by C (the kernel's rule for a caller
** without CAP_FSETID, approximated as uid != 0): setuid goes; setgid goes
** if group-executable or C is not in group GID. TYPE is S_IFMT bits. */
mode_t eddy_mode_after_write(const struct eddy_ctx *c, mode_t type, mode_t mode, gid_t gid);
/* The mode after chown/chgrp by C of an object of TYPE owned by group GID:
** non-directories lose setuid, and setgid when group-executable or a
** caller other than root is not in the group. */
mode_t eddy_mode_after_chown(const struct eddy_ctx *c, mode_t type, mode_t mode, gid_t gid);
/* The type mknod makes for MODE (0 means a regular file): S_IFREG,
** S_IFCHR, S_IFBLK, S_IFIFO or S_IFSOCK; -EPERM for a directory, -EINVAL
** for anything else. */
int eddy_mknod_type(mode_t mode);

/* Fills OUT: BLOCKS blocks of BSIZE bytes of which BFREE are free, FILES
** inodes of which USED are in use, names up to EDDY_NAME_MAX. */
void eddy_statvfs_fill(struct statvfs *out, unsigned long bsize, uint64_t blocks,
		       uint64_t bfree, uint64_t files, uint64_t used);

/* EDDY_SET_KILL_SUIDGID of setattr. */
mode_t eddy_mode_kill_suidgid(mode_t type, mode_t mode);

/*
** A new object of TYPE with requested permissions PERM made by C in a
** directory of mode PMODE and group PGID: fills *MODE (permission bits)
** and *GID (setgid directories pass their group on, and their setgid bit
** to subdirectories). ACL is NULL or a copy of the parent's default ACL
** (ACL_SIZE bytes): it then replaces the umask and becomes in place the
** new object's access ACL. Returns 1 if that access ACL must be stored,
** else 0.
*/
int eddy_new_object_mode(const struct eddy_ctx *c, mode_t type, mode_t perm, mode_t pmode,
			 gid_t pgid, void *acl, size_t acl_size, mode_t *mode, gid_t *gid);

/*
** May C read (WRITE false) or change NAME on an object of TYPE? The
** namespaces of a local filesystem: user.* (regular files and directories
** only: others answer -EPERM to changes, -ENODATA to reads), trusted.*
** (uid 0 only: -EPERM / -ENODATA otherwise), security.*, the two POSIX
** ACL names (not on symlinks); anything else -EOPNOTSUPP; names over 255
** bytes -ERANGE.
*/
int eddy_xattr_check(const struct eddy_ctx *c, mode_t type, const char *name, bool write);
/* Is NAME listed to C (trusted.* only for uid 0)? */
bool eddy_xattr_listed(const struct eddy_ctx *c, const char *name);

#endif /* EDDY_FSRULES_H */
