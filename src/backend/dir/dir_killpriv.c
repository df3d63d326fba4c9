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

/* Supplementary groups of PID from /proc when the frontend did not pass them. */
static bool proc_in_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if ((gid_t)g == gid)
				found = true;
		}
		break;
	}
	fclose(f);
	return found;
}

static bool caller_in_group(const struct eddy_ctx *c, gid_t gid)
{
	int i;

	if (c->gid == gid)
		return true;
	if (c->ngroups < 0)
		return proc_in_group(c->pid, gid);
	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

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
	if ((m & S_ISGID) && ((m & S_IXGRP) || !caller_in_group(c, st.st_gid)))
		nm &= ~S_ISGID;
	if (nm != m && fchmod(fd, nm) < 0)
		return;
}
