/*
** dir_creds.c -- act as the caller while creating objects.
**
** When the daemon runs as root (typically with -o allow_other), objects
** created through the mount must belong to the calling user and group,
** exactly as on a local filesystem (setgid directories included). The
** kernel has already checked permissions (default_permissions), so only
** creation runs with the caller's filesystem credentials: setfsuid,
** setfsgid and the supplementary groups, all per thread (raw setgroups
** syscall: glibc's wrapper would change every thread of the process).
*/
#include <errno.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dir_int.h"

int dir_creds_enter(struct dir_fs *d, const struct eddy_ctx *c, struct dir_creds *s)
{
	s->switched = false;
	if (!d->privileged || (c->uid == 0 && c->gid == 0))
		return 0;
	if (syscall(SYS_setgroups, c->ngroups > 0 ? c->ngroups : 0,
		    c->ngroups > 0 ? c->groups : NULL) < 0)
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	s->switched = true;
	return 0;
}

void dir_creds_leave(struct dir_creds *s)
{
	gid_t none[1] = { 0 };

	if (!s->switched)
		return;
	setfsuid(0);
	setfsgid(0);
	syscall(SYS_setgroups, 0, none);
	s->switched = false;
}
