/*
** fs.c -- small helpers shared by every user of the interface in fs.h.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

void eddy_ctx_self(struct eddy_ctx *c)
{
	mode_t m = umask(0);

	umask(m);
	memset(c, 0, sizeof(*c));
	c->uid = geteuid();
	c->gid = getegid();
	c->pid = getpid();
	c->umask = m;
	c->ngroups = -1;
}

int eddy_fill_dot(eddy_fill_fn fill, void *buf, const char *name, uint64_t ino, uint64_t next,
		  bool plus)
{
	struct eddy_entry e;
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = S_IFDIR;
	if (!plus)
		return fill(buf, name, &st, NULL, next);
	memset(&e, 0, sizeof(e));
	e.attr = st;
	return fill(buf, name, &st, &e, next);
}

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

bool eddy_ctx_in_group(const struct eddy_ctx *c, gid_t gid)
{
	if (c->gid == gid)
		return true;
	if (c->ngroups < 0)
		return c->pid > 0 && proc_in_group(c->pid, gid);
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}
