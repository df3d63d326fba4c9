/*
** cmd_dump.c -- `eddyfs dump <volume-dir> [-o FILE]` and `eddyfs load
** <dump.json|-> <new-volume-dir> [--blocks-from <old-volume-dir>]`: a
** volume's metadata as JSON and back (src/backend/volume/vol_dump.c).
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../backend/volume/vol.h"

static const char dump_usage[] =
	"Usage: eddyfs dump [-o FILE] <volume-dir>\n"
	"\n"
	"Write a volume's metadata (meta, inodes, names, symlink targets,\n"
	"xattrs, which blocks hold which file's data) as one JSON document, to\n"
	"standard output or FILE. Reads one consistent snapshot; the volume may\n"
	"be mounted. Data blocks are not copied: eddyfs load takes them from\n"
	"the old volume. Integers beyond 2^53 are {\"int\": \"...\"}, blobs\n"
	"{\"utf8\": ...} or {\"hex\": ...}, so nothing is rounded or lost.\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE   write the dump to FILE (made or truncated)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 done; 1 the dump could not be written; 2 usage error or\n"
	"not a volume.\n";

static const char load_usage[] =
	"Usage: eddyfs load [--blocks-from OLD] <dump.json|-> <new-volume-dir>\n"
	"\n"
	"Make a new volume in <new-volume-dir> (missing or empty) from a dump\n"
	"made by eddyfs dump: formatted with the dump's block size, compression\n"
	"and limits, every row loaded in one transaction, and the data blocks\n"
	"the dump refers to hard-linked (or copied, across filesystems) from\n"
	"the volume OLD. On any failure nothing is left behind.\n"
	"\n"
	"Options:\n"
	"  --blocks-from OLD   the volume the dump was made from (needed when\n"
	"                      files hold data)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 done; 2 usage error, not a dump, a directory that is\n"
	"not empty, or a block missing from OLD.\n";

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *outp = NULL;
	char err[600];
	FILE *out = stdout;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (c == 'o') {
			outp = optarg;
		} else if (c == 'h') {
			fputs(dump_usage, stdout);
			return 0;
		} else {
			cli_error("dump: bad option '%s' (see eddyfs dump --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_error("dump needs one <volume-dir> (see eddyfs dump --help)");
		return EXIT_USAGE;
	}
	if (outp && !(out = fopen(outp, "w"))) {
		cli_error("dump: %s: %s", outp, strerror(errno));
		return 1;
	}
	r = vol_dump(argv[optind], out, err, sizeof(err));
	if (out != stdout && fclose(out) != 0 && !r) {
		r = -errno;
		snprintf(err, sizeof(err), "%s: %s", outp, strerror(errno));
	}
	if (r) {
		cli_error("dump: %s", err);
		return r == -EIO || r == -ENOSPC ? 1 : EXIT_USAGE;
	}
	return 0;
}

int cmd_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "blocks-from", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL;
	char err[600];
	FILE *in;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'b') {
			from = optarg;
		} else if (c == 'h') {
			fputs(load_usage, stdout);
			return 0;
		} else {
			cli_error("load: bad option '%s' (see eddyfs load --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		cli_error("load needs <dump.json|-> <new-volume-dir> (see eddyfs load --help)");
		return EXIT_USAGE;
	}
	in = strcmp(argv[optind], "-") ? fopen(argv[optind], "r") : stdin;
	if (!in) {
		cli_error("load: %s: %s", argv[optind], strerror(errno));
		return EXIT_USAGE;
	}
	r = vol_load(in, argv[optind + 1], from, stdout, err, sizeof(err));
	if (in != stdin)
		fclose(in);
	if (r) {
		cli_error("load: %s", err);
		return EXIT_USAGE;
	}
	return 0;
}
