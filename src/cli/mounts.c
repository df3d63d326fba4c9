/*
** mounts.c -- the mount table as the eddyfs command sees it
** (/proc/self/mounts, with its octal escapes decoded).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Decodes \ooo escapes in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = 0;
}

int cli_mounts_read(struct cli_mount **out)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	struct cli_mount *m = NULL;
	char *line = NULL;
	size_t cap = 0;
	int n = 0, max = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save, *src = strtok_r(line, " ", &save);
		char *dst = strtok_r(NULL, " ", &save);
		char *type = strtok_r(NULL, " ", &save);

		if (!src || !dst || !type)
			continue;
		if (n == max) {
			struct cli_mount *nm = realloc(m, (size_t)(max = max ? max * 2 : 64) *
							     sizeof(*m));

			if (!nm)
				break;
			m = nm;
		}
		unescape(src);
		unescape(dst);
		m[n].source = strdup(src);
		m[n].target = strdup(dst);
		m[n].fstype = strdup(type);
		n++;
	}
	free(line);
	fclose(f);
	*out = m;
	return n;
}

void cli_mounts_free(struct cli_mount *m, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(m[i].source);
		free(m[i].target);
		free(m[i].fstype);
	}
	free(m);
}

bool cli_is_mountpoint(const char *abs)
{
	struct cli_mount *m;
	int n = cli_mounts_read(&m), i;
	bool found = false;

	for (i = 0; i < n && !found; i++)
		found = strcmp(m[i].target, abs) == 0;
	if (n >= 0)
		cli_mounts_free(m, n);
	return found;
}

/* True if PATH is DIR or lies below it (both absolute and normalised). */
bool cli_path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}
