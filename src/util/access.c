/*
** access.c -- the kernel's access rules (access.h): generic_permission and
** posix_acl_permission on the ACL's xattr form (a 4-byte version, then
** 8-byte entries: tag, perm, id, little-endian, sorted: owner, named users,
** owning group, named groups, mask, other), the sticky rule, and
** setattr_prepare's ownership rules.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "access.h"
#include "posix_acl.h"

/* The kernel's open flag of an exec open (include/linux/fs.h). */
#define EDDY_FMODE_EXEC 040

static int denied(unsigned want, unsigned perm)
{
	return (want & ~perm) & 7 ? -EACCES : 0;
}

static int acl_check(const struct eddy_ctx *c, const struct eddy_perm *p, unsigned want)
{
	const unsigned char *a = p->acl;
	unsigned maskperm = 7, granted = 0;
	bool found = false, matched = false;

	for (size_t i = 4; i + 8 <= p->acl_size; i += 8) {
		unsigned tag = a[i] | a[i + 1] << 8, perm = a[i + 2] | a[i + 3] << 8;
		uint32_t id = a[i + 4] | a[i + 5] << 8 | a[i + 6] << 16 | (uint32_t)a[i + 7] << 24;

		if (tag == EDDY_ACL_MASK)
			maskperm = perm;
		if (matched)
			continue;
		if (tag == EDDY_ACL_USER_OBJ && p->uid == c->uid) {
			return denied(want, perm);
		} else if (tag == EDDY_ACL_USER && id == c->uid) {
			matched = true;
			granted = perm;
		} else if ((tag == EDDY_ACL_GROUP_OBJ && eddy_ctx_in_group(c, p->gid)) ||
			   (tag == EDDY_ACL_GROUP && eddy_ctx_in_group(c, id))) {
			found = true;
			if (!denied(want, perm)) {
				matched = true;
				granted = perm;
			}
		} else if (tag == EDDY_ACL_OTHER && !found) {
			return denied(want, perm);
		}
	}
	if (!matched)
		return -EACCES;
	return denied(want, granted & maskperm);
}

bool eddy_access_needs_acl(const struct eddy_ctx *c, const struct eddy_perm *p)
{
	return c->uid != 0 && c->uid != p->uid && !S_ISLNK(p->mode);
}

int eddy_access_check(const struct eddy_ctx *c, const struct eddy_perm *p, int mask)
{
	unsigned want = (unsigned)mask & 7, bits;
	mode_t m = p->mode;

	if (c->uid == 0) {
		if (!(want & X_OK) || S_ISDIR(m) || (m & 0111))
			return 0;
		return -EACCES;
	}
	if (p->uid == c->uid)
		return denied(want, (m >> 6) & 7);
	/* an access ACL decides for everyone but the owner; a minimal one
	 * says what the mode says, so it is not stored */
	if (p->acl && p->acl_size > 4 && !S_ISLNK(m))
		return acl_check(c, p, want);
	if (eddy_ctx_in_group(c, p->gid))
		bits = (m >> 3) & 7;
	else
		bits = m & 7;
	return denied(want, bits);
}

int eddy_sticky_check(const struct eddy_ctx *c, const struct eddy_perm *dir, uid_t victim_uid)
{
	if ((dir->mode & S_ISVTX) && c->uid != 0 && c->uid != dir->uid && c->uid != victim_uid)
		return -EPERM;
	return 0;
}

int eddy_setattr_check(const struct eddy_ctx *c, const struct eddy_perm *p,
		       const struct stat *want, int mask, bool file_open, int write_ok)
{
	bool root = c->uid == 0, owner = c->uid == p->uid;

	if ((mask & EDDY_SET_SIZE) && !file_open && write_ok)
		return write_ok;
	if (root)
		return 0;
	if ((mask & EDDY_SET_UID) && !(owner && want->st_uid == p->uid))
		return -EPERM;
	if ((mask & EDDY_SET_GID) &&
	    !(owner && (want->st_gid == p->gid || eddy_ctx_in_group(c, want->st_gid))))
		return -EPERM;
	if ((mask & EDDY_SET_MODE) && !owner) {
		/* the kernel kills setuid/setgid before a write by a non-owner
		 * with a chmod of its own (indistinguishable from one by the
		 * caller): let it through for a caller who may write, since
		 * writing would clear the bits anyway */
		mode_t old = p->mode & 07777, perm = want->st_mode & 07777;

		if (!(perm != old && perm == (old & ~(mode_t)(S_ISUID | S_ISGID)) && !write_ok &&
		      !(mask & ~(EDDY_SET_MODE | EDDY_SET_CTIME))))
			return -EPERM;
	}
	if ((((mask & EDDY_SET_ATIME) && !(mask & EDDY_SET_ATIME_NOW)) ||
	     ((mask & EDDY_SET_MTIME) && !(mask & EDDY_SET_MTIME_NOW))) && !owner)
		return -EPERM;             /* an explicit time: the owner only */
	if ((mask & (EDDY_SET_ATIME_NOW | EDDY_SET_MTIME_NOW)) && !owner && write_ok)
		return write_ok;           /* "now": the owner or a writer */
	return 0;
}

mode_t eddy_mode_after_chmod(const struct eddy_ctx *c, mode_t perm, gid_t gid)
{
	if ((perm & S_ISGID) && c->uid != 0 && !eddy_ctx_in_group(c, gid))
		perm &= ~(mode_t)S_ISGID;
	return perm;
}

int eddy_open_mask(int flags)
{
	int mask = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY: mask = R_OK; break;
	case O_WRONLY: mask = W_OK; break;
	default: mask = R_OK | W_OK; break;
	}
	if (flags & O_TRUNC)
		mask |= W_OK;
	if (flags & EDDY_FMODE_EXEC)
		mask |= X_OK;
	return mask;
}
