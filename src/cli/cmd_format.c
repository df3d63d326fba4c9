/*
** cmd_format.c -- `eddyfs format <dir>`: make a new volume (the volume
** backend's metadata database and block folder) in a missing or empty
** directory. Refuses, with a one-line error and exit status 2, anything
** else: a non-empty directory, an existing volume, bad sizes.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../backend/volume/vol.h"
#include "../util/fsrules.h"

static const char format_usage[] =
	"Usage: eddyfs format [options] <dir>\n"
	"\n"
	"Make a new eddyfs volume in <dir> (created if missing, else it must be\n"
	"empty): eddyfs.db (SQLite metadata, WAL mode) and blocks/ (immutable,\n"
	"checksummed data blocks). Mount it with\n"
	"  eddyfs mount sqlite:<dir> <mountpoint>\n"
	"\n"
	"Options (fixed for the life of the volume):\n"
	"  --block-size N   data block size, a power of two from 4K to 64M\n"
	"                   (suffix K or M) [default: 4M]\n"
	"  --compress zstd  zstd-compress blocks that shrink [default: none]\n"
	"  --capacity N     bytes of data, xattrs and symlinks the volume may\n"
	"                   hold, N[K|M|G|T]; past it: ENOSPC [default: no\n"
	"                   limit but the host filesystem's]\n"
	"  --inodes N       most inodes the volume may hold, N[K|M|G]; past it:\n"
	"                   ENOSPC [default: no limit]\n"
	"  -h, --help       show this help\n"
	"\n"
	"Refused with exit status 2, touching nothing: a non-empty <dir>, an\n"
	"existing volume, bad sizes.\n";

static int size_arg(const char *what, const char *s, uint64_t *out)
{
	if (!eddy_parse_size(s, strlen(s), out) || *out == 0) {
		cli_error("%s %s: use a positive number with an optional K, M, G or T", what, s);
		return -1;
	}
	return 0;
}

int cmd_format(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "compress", required_argument, NULL, 'z' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "inodes", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vol_format_options o;
	char err[512];
	uint64_t v;
	int c, r;

	vol_format_options_default(&o);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (size_arg("--block-size", optarg, &v) < 0)
				return EXIT_USAGE;
			if (v < VOL_MIN_BLOCK_SIZE || v > VOL_MAX_BLOCK_SIZE || (v & (v - 1))) {
				cli_error("--block-size %s: use a power of two from 4K to 64M",
					  optarg);
				return EXIT_USAGE;
			}
			o.block_size = (uint32_t)v;
			break;
		case 'z':
			if (strcmp(optarg, "zstd") != 0 && strcmp(optarg, "none") != 0) {
				cli_error("--compress %s: use zstd or none", optarg);
				return EXIT_USAGE;
			}
			o.compress = strcmp(optarg, "zstd") == 0;
			break;
		case 'c':
			if (size_arg("--capacity", optarg, &o.capacity) < 0)
				return EXIT_USAGE;
			break;
		case 'i':
			if (size_arg("--inodes", optarg, &o.max_inodes) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			fputs(format_usage, stdout);
			return 0;
		case ':':
			cli_error("option %s needs a value (see eddyfs format --help)",
				  argv[optind - 1]);
			return EXIT_USAGE;
		default:
			cli_error("unknown option %s (see eddyfs format --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_error("format needs one <dir> (see eddyfs format --help)");
		return EXIT_USAGE;
	}
	r = vol_format(argv[optind], &o, err, sizeof(err));
	if (r < 0) {
		cli_error("%s", err);
		return r == -EEXIST || r == -EINVAL || r == -ENOTDIR ? EXIT_USAGE : 1;
	}
	printf("eddyfs: formatted volume %s (block size %u%s)\n", argv[optind], o.block_size,
	       o.compress ? ", zstd" : "");
	return 0;
}
