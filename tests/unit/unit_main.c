/*
** unit_main.c -- runs every registered unit test (or those named on the
** command line) and ends with the line "N passed, N failed".
*/
#include <stdio.h>
#include <string.h>

#include "unit.h"

static struct unit_case *cases;

void unit_register(struct unit_case *c)
{
	struct unit_case **p = &cases;

	while (*p)
		p = &(*p)->next;
	*p = c;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	struct unit_case *c;

	for (c = cases; c; c = c->next) {
		int f = 0, i, want = argc < 2;

		for (i = 1; i < argc; i++)
			want |= strcmp(argv[i], c->name) == 0;
		if (!want)
			continue;
		c->fn(&f);
		printf("%s %s\n", f ? "FAIL" : "ok  ", c->name);
		fflush(stdout);
		if (f)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
