/*
** posix_acl.c -- POSIX ACLs of the own-inode backends (mem, volume), in
** the xattr form the kernel hands over (system.posix_acl_access / _default: a little-endian
** header with version 2, then entries of tag, perm, id).
**
** With FUSE_POSIX_ACL the kernel enforces ACLs but leaves it to the
** filesystem to keep them in sync with the mode, as ext4 does with the
** kernel's helpers; these are the same rules:
**   - setting an access ACL sets the mode's permission bits from it, and
**     an ACL that says no more than the mode is not stored at all
**     (posix_acl_equiv_mode / posix_acl_update_mode);
**   - chmod rewrites the owner, group class (mask, else group) and other
**     entries of a stored access ACL (posix_acl_chmod);
**   - a new object under a directory with a default ACL gets its mode
**     masked by that ACL instead of the umask, and a copy of it as access
**     ACL unless the mode says it all (posix_acl_create).
** Nothing here locks; the callers hold the inode's lock.
*/
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "posix_acl.h"

#define ACL_VERSION 2
#define TAG_USER_OBJ EDDY_ACL_USER_OBJ
#define TAG_USER EDDY_ACL_USER
#define TAG_GROUP_OBJ EDDY_ACL_GROUP_OBJ
#define TAG_GROUP EDDY_ACL_GROUP
#define TAG_MASK EDDY_ACL_MASK
#define TAG_OTHER EDDY_ACL_OTHER
#define HEADER 4
#define ENTRY 8

static size_t entries(size_t size)
{
	return (size - HEADER) / ENTRY;
}

static unsigned tag_at(const unsigned char *v, size_t i)
{
	uint16_t t;

	memcpy(&t, v + HEADER + ENTRY * i, sizeof(t));
	return le16toh(t);
}

static unsigned perm_at(const unsigned char *v, size_t i)
{
	uint16_t p;

	memcpy(&p, v + HEADER + ENTRY * i + 2, sizeof(p));
	return le16toh(p);
}

static void set_perm(unsigned char *v, size_t i, unsigned perm)
{
	uint16_t p = htole16((uint16_t)perm);

	memcpy(v + HEADER + ENTRY * i + 2, &p, sizeof(p));
}

int eddy_acl_valid(const void *value, size_t size)
{
	const unsigned char *v = value;
	unsigned seen = 0, named = 0;
	uint32_t version;
	size_t i;

	if (size < HEADER || (size - HEADER) % ENTRY)
		return -EINVAL;
	memcpy(&version, v, sizeof(version));
	if (le32toh(version) != ACL_VERSION)
		return -EINVAL;
	for (i = 0; i < entries(size); i++) {
		unsigned tag = tag_at(v, i);

		switch (tag) {
		case TAG_USER_OBJ:
		case TAG_GROUP_OBJ:
		case TAG_MASK:
		case TAG_OTHER:
			if (seen & tag)
				return -EINVAL;
			seen |= tag;
			break;
		case TAG_USER:
		case TAG_GROUP:
			named = 1;
			break;
		default:
			return -EINVAL;
		}
		if (perm_at(v, i) & ~7u)
			return -EINVAL;
	}
	if (entries(size) == 0)
		return 0;
	if ((seen & (TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER)) !=
	    (TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER))
		return -EINVAL;
	if (named && !(seen & TAG_MASK))
		return -EINVAL;
	return 0;
}

int eddy_acl_mode(const void *value, size_t size, mode_t *mode)
{
	const unsigned char *v = value;
	mode_t m = 0;
	int not_equiv = 0;
	size_t i;

	if (eddy_acl_valid(value, size) < 0)
		return -EINVAL;
	for (i = 0; i < entries(size); i++) {
		unsigned perm = perm_at(v, i) & 7;

		switch (tag_at(v, i)) {
		case TAG_USER_OBJ:
			m |= perm << 6;
			break;
		case TAG_GROUP_OBJ:
			m |= perm << 3;
			break;
		case TAG_OTHER:
			m |= perm;
			break;
		case TAG_MASK:
			m = (m & ~(mode_t)S_IRWXG) | (perm << 3);
			not_equiv = 1;
			break;
		default:
			not_equiv = 1;
			break;
		}
	}
	*mode = (*mode & ~(mode_t)0777) | m;
	return not_equiv;
}

void eddy_acl_chmod(void *value, size_t size, mode_t mode)
{
	unsigned char *v = value;
	size_t i, group_obj = (size_t)-1, mask = (size_t)-1;

	if (eddy_acl_valid(value, size) < 0)
		return;
	for (i = 0; i < entries(size); i++) {
		switch (tag_at(v, i)) {
		case TAG_USER_OBJ:
			set_perm(v, i, (mode >> 6) & 7);
			break;
		case TAG_GROUP_OBJ:
			group_obj = i;
			break;
		case TAG_MASK:
			mask = i;
			break;
		case TAG_OTHER:
			set_perm(v, i, mode & 7);
			break;
		}
	}
	if (mask != (size_t)-1)
		set_perm(v, mask, (mode >> 3) & 7);
	else if (group_obj != (size_t)-1)
		set_perm(v, group_obj, (mode >> 3) & 7);
}

int eddy_acl_inherit(void *acl, size_t size, mode_t *mode)
{
	unsigned char *v = acl;
	size_t i, group_obj = (size_t)-1, mask = (size_t)-1;
	mode_t m = *mode;
	int not_equiv = 0;

	if (eddy_acl_valid(acl, size) < 0 || entries(size) == 0)
		return -EINVAL;
	for (i = 0; i < entries(size); i++) {
		unsigned perm = perm_at(v, i);

		switch (tag_at(v, i)) {
		case TAG_USER_OBJ:
			perm &= (m >> 6) & 7;
			set_perm(v, i, perm);
			m &= (perm << 6) | ~(mode_t)S_IRWXU;
			break;
		case TAG_USER:
		case TAG_GROUP:
			not_equiv = 1;
			break;
		case TAG_GROUP_OBJ:
			group_obj = i;
			break;
		case TAG_OTHER:
			perm &= m & 7;
			set_perm(v, i, perm);
			m &= perm | ~(mode_t)S_IRWXO;
			break;
		case TAG_MASK:
			mask = i;
			not_equiv = 1;
			break;
		}
	}
	i = mask != (size_t)-1 ? mask : group_obj;
	{
		unsigned perm = perm_at(v, i) & ((m >> 3) & 7);

		set_perm(v, i, perm);
		m &= (perm << 3) | ~(mode_t)S_IRWXG;
	}
	*mode = m;
	return not_equiv;
}
