/*
** fsrules.c -- local-filesystem rules shared by the mem and volume
** backends (see fsrules.h). Pure functions.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsrules.h"
#include "posix_acl.h"

int eddy_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > EDDY_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

bool eddy_parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i = 0;

	if (len == 0)
		return false;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return false;
	if (i + 1 == len) {
		switch (s[i]) {
		case 'k': case 'K': mul = UINT64_C(1) << 10; break;
		case 'm': case 'M': mul = UINT64_C(1) << 20; break;
		case 'g': case 'G': mul = UINT64_C(1) << 30; break;
		case 't': case 'T': mul = UINT64_C(1) << 40; break;
		default: return false;
		}
	} else if (i != len) {
		return false;
	}
	if (v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

mode_t eddy_mode_after_write(const struct eddy_ctx *c, mode_t type, mode_t mode, gid_t gid)
{
	if (!c || c->uid == 0 || type != S_IFREG || !(mode & (S_ISUID | S_ISGID)))
		return mode;
	mode &= ~(mode_t)S_ISUID;
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || !eddy_ctx_in_group(c, gid)))
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

mode_t eddy_mode_after_chown(const struct eddy_ctx *c, mode_t type, mode_t mode, gid_t gid)
{
	bool drop_sgid;

	if (type == S_IFDIR)
		return mode;
	drop_sgid = (mode & S_ISGID) &&
		    ((mode & S_IXGRP) || (c->uid != 0 && !eddy_ctx_in_group(c, gid)));
	mode &= ~(mode_t)S_ISUID;
	if (drop_sgid)
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

int eddy_mknod_type(mode_t mode)
{
	mode_t type = mode & S_IFMT;

	if (type == 0)
		return S_IFREG;
	if (type != S_IFREG && type != S_IFCHR && type != S_IFBLK && type != S_IFIFO &&
	    type != S_IFSOCK)
		return type == S_IFDIR ? -EPERM : -EINVAL;
	return (int)type;
}

void eddy_statvfs_fill(struct statvfs *out, unsigned long bsize, uint64_t blocks,
		       uint64_t bfree, uint64_t files, uint64_t used)
{
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = bsize;
	out->f_blocks = blocks;
	out->f_bfree = out->f_bavail = bfree;
	out->f_files = files;
	out->f_ffree = out->f_favail = files > used ? files - used : 0;
	out->f_namemax = EDDY_NAME_MAX;
}

mode_t eddy_mode_kill_suidgid(mode_t type, mode_t mode)
{
	if (type == S_IFDIR)
		return mode;
	mode &= ~(mode_t)S_ISUID;
	if (mode & S_IXGRP)
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

int eddy_new_object_mode(const struct eddy_ctx *c, mode_t type, mode_t perm, mode_t pmode,
			 gid_t pgid, void *acl, size_t acl_size, mode_t *mode, gid_t *gid)
{
	int inherit = 0;

	*gid = c->gid;
	if (pmode & S_ISGID) {
		*gid = pgid;
		if (type == S_IFDIR)
			perm |= S_ISGID;
	}
	if (type == S_IFLNK) {
		perm = 0777;
	} else if (acl) {
		/* the parent's default ACL replaces the umask */
		inherit = eddy_acl_inherit(acl, acl_size, &perm);
		if (inherit < 0) {
			inherit = 0;
			perm &= ~(c->umask & 0777);
		}
	} else {
		perm &= ~(c->umask & 0777);
	}
	*mode = perm;
	return inherit;
}

static bool has_prefix(const char *name, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(name, prefix, n) != 0)
		return false;
	*rest = name + n;
	return true;
}

int eddy_xattr_check(const struct eddy_ctx *c, mode_t type, const char *name, bool write)
{
	const char *rest;

	if (strlen(name) > EDDY_NAME_MAX)
		return -ERANGE;
	if (strcmp(name, EDDY_ACL_ACCESS) == 0 || strcmp(name, EDDY_ACL_DEFAULT) == 0)
		return type == S_IFLNK ? -EOPNOTSUPP : 0;
	if (has_prefix(name, "user.", &rest)) {
		if (!*rest)
			return -EINVAL;
		if (type != S_IFREG && type != S_IFDIR)
			return write ? -EPERM : -ENODATA;
		return 0;
	}
	if (has_prefix(name, "trusted.", &rest)) {
		if (!*rest)
			return -EINVAL;
		if (c->uid != 0)
			return write ? -EPERM : -ENODATA;
		return 0;
	}
	if (has_prefix(name, "security.", &rest))
		return *rest ? 0 : -EINVAL;
	return -EOPNOTSUPP;
}

bool eddy_xattr_listed(const struct eddy_ctx *c, const char *name)
{
	return c->uid == 0 || strncmp(name, "trusted.", 8) != 0;
}
