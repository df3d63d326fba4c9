/*
** posix_acl.h -- POSIX ACLs in their xattr form (system.posix_acl_*), kept
** in sync with the mode as a local filesystem keeps them. Pure functions on
** the attribute value; used by the backends that own their inodes (mem,
** volume). See posix_acl.c for the rules.
*/
#ifndef EDDY_POSIX_ACL_H
#define EDDY_POSIX_ACL_H

#include <stddef.h>
#include <sys/types.h>

#define EDDY_ACL_ACCESS "system.posix_acl_access"
#define EDDY_ACL_DEFAULT "system.posix_acl_default"

/* The entry tags of the xattr form (a 4-byte version, then 8-byte
** entries: tag, perm, id, little-endian). */
#define EDDY_ACL_USER_OBJ 0x01
#define EDDY_ACL_USER 0x02
#define EDDY_ACL_GROUP_OBJ 0x04
#define EDDY_ACL_GROUP 0x08
#define EDDY_ACL_MASK 0x10
#define EDDY_ACL_OTHER 0x20

int eddy_acl_valid(const void *value, size_t size);
/* The mode bits an access ACL gives (into *MODE's 0777 bits); returns 1
** if the ACL says more than the mode can (it must be stored), 0 if not. */
int eddy_acl_mode(const void *value, size_t size, mode_t *mode);
/* After chmod: the ACL's owner, group-class and other entries follow MODE. */
void eddy_acl_chmod(void *value, size_t size, mode_t mode);
/* A new object of *MODE under a default ACL: masks *MODE with it; returns
** 1 if the object needs its own copy of the ACL (in place in ACL), 0 if
** the mode says it all, -EINVAL if the ACL is malformed. */
int eddy_acl_inherit(void *acl, size_t size, mode_t *mode);

#endif /* EDDY_POSIX_ACL_H */
