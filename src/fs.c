/*
** fs.c -- small helpers shared by every user of the interface in fs.h.
*/
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
