/*
** access.h -- the kernel's access rules for a backend that checks them
** itself (a volume mounted without default_permissions, the volume
** client): generic_permission with POSIX access ACLs, the sticky-directory
** rule, and the ownership rules of setattr (chown, chgrp, chmod, times).
** CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN are approximated as uid 0, as
** in fsrules.h. Pure functions: no locks, no I/O.
*/
#ifndef EDDY_ACCESS_H
#define EDDY_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../fs.h"

/* What an access decision needs of an object. */
struct eddy_perm {
	mode_t mode;               /* type and permission bits */
	uid_t uid;
	gid_t gid;
	const void *acl;           /* the access ACL (xattr form), or NULL */
	size_t acl_size;
};

/* Does C's access to P need P's access ACL? (Not for root, not for the
** owner, whose rights the mode's owner bits always give.) */
bool eddy_access_needs_acl(const struct eddy_ctx *c, const struct eddy_perm *p);

/* May C access P for MASK (R_OK | W_OK | X_OK)? 0 or -EACCES. Root may
** read and write anything and search any directory, and execute what has
** an x bit; the owner is judged by the owner bits; anyone else by the
** access ACL if there is one (named users and groups, the mask), else by
** the group and other bits. */
int eddy_access_check(const struct eddy_ctx *c, const struct eddy_perm *p, int mask);

/* The sticky rule, after write and search access to directory DIR was
** granted: in a sticky directory only root, the directory's owner and the
** victim's owner (VICTIM_UID) may remove or rename a name. 0 or -EPERM. */
int eddy_sticky_check(const struct eddy_ctx *c, const struct eddy_perm *dir, uid_t victim_uid);

/*
** May C make the setattr change MASK (EDDY_SET_*) with the values in WANT
** to P? (The kernel's setattr_prepare and utimes rules.) chown only by
** root (or to the same owner by the owner); chgrp by root or by the owner
** to a group the owner is in; chmod and explicit times by root or the
** owner; "now" times also by anyone who may write; a size change through
** no open file (FILE_OPEN false) needs write access; a chmod that only
** clears setuid/setgid also by anyone who may write (the kernel's own,
** before a write). -EPERM or -EACCES; WRITE_OK is the caller's write
** access to P (eddy_access_check), needed for those three cases.
*/
int eddy_setattr_check(const struct eddy_ctx *c, const struct eddy_perm *p,
		       const struct stat *want, int mask, bool file_open, int write_ok);

/* The permission bits chmod stores: setgid goes when C (not root) is not
** in the object's group GID (the kernel's setattr_prepare rule). */
mode_t eddy_mode_after_chmod(const struct eddy_ctx *c, mode_t perm, gid_t gid);

/* The access MASK (R_OK | W_OK | X_OK) that an open with FLAGS needs:
** the access mode, O_TRUNC needs write, an exec open (__FMODE_EXEC)
** needs execute. */
int eddy_open_mask(int flags);

#endif /* EDDY_ACCESS_H */
