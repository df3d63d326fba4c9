/*
** cmd_status.c -- `eddyfs status <volume-dir>`: the sessions of a volume
** (every mount and client that has it open, live or expired), its usage
** and counters. Reads only; works while the volume is mounted.
*/
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../backend/volume/vol.h"

static const char status_usage[] =
	"Usage: eddyfs status <volume-dir>\n"
	"\n"
	"Show a volume made by eddyfs format, mounted or not, without changing\n"
	"it:\n"
	"  sessions  every mount and client that has it open: id, kind, host,\n"
	"            pid, age of the last heartbeat, live or expired (no\n"
	"            heartbeat for 8 s, or its process is gone on this host;\n"
	"            the next mount or client reaps it), mountpoint\n"
	"  usage     bytes of data, xattrs and symlinks, inodes, blocks (rows\n"
	"            and files), database size\n"
	"  counters  orphans (unlinked, still open), change log rows, holds,\n"
	"            locks\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n"
	"\n"
	"Refused with exit status 2: a directory that is not a volume.\n";

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[512];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(status_usage, stdout);
			return 0;
		}
		cli_error("status: unknown option '%s' (see eddyfs status --help)",
			  argv[optind - 1]);
		return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		cli_error("status needs one <volume-dir> (see eddyfs status --help)");
		return EXIT_USAGE;
	}
	if (vol_status(argv[optind], stdout, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}
