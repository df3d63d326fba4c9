/*
** dir_killpriv.c -- clear setuid/setgid bits as the kernel would.
**
** The frontend keeps libfuse 3.14's HANDLE_KILLPRIV: the kernel leaves the
** clearing to the filesystem, and the backend, running as root, would never
** lose the bits on its own writes. So on write, truncate and O_TRUNC by a
** caller without CAP_FSETID (approximated as: uid != 0) the backend applies
** the current kernel rule (setattr_should_drop_suidgid): setuid always goes;
** setgid goes if the file is group-executable or the caller is not in the
** file's group. File capabilities (security.capability) are not removed.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dir_int.h"


void dir_kill_priv(const struct eddy_ctx *c, int fd)
{
	struct stat st;
	mode_t m, nm;

	if (!c || c->uid == 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	m = st.st_mode & 07777;
	if (!(m & (S_ISUID | S_ISGID)))
		return;
	nm = m & ~S_ISUID;
	if ((m & S_ISGID) && ((m & S_IXGRP) || !eddy_ctx_in_group(c, st.st_gid)))
		nm &= ~S_ISGID;
	if (nm != m && fchmod(fd, nm) < 0)
		return;
}
