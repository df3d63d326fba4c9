/*
** cmd_stats.c -- `eddyfs stats --mount P`: ask a running mount for its
** counters over its control socket and print them ("key value" lines).
*/
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char stats_usage[] =
	"Usage: eddyfs stats --mount P\n"
	"\n"
	"Print the counters of the running eddyfs mount at P, one \"key value\"\n"
	"per line: known_inodes (inodes the kernel holds), nlookup_total,\n"
	"lookups_counted, lookups_forgotten, fuse_requests (FUSE requests\n"
	"received) and fuse_req_<type> for each type (lookup, getattr, read,\n"
	"...), backend_nodes, cached_fds,\n"
	"pinned_fds, open_files, fd_resolves, ...; on mem: mem_bytes_used,\n"
	"mem_bytes_max, mem_inodes_max, mem_inodes_unlinked, mem_inodes_freed;\n"
	"on a volume: vol_inodes, vol_bytes_used, vol_bytes_max, vol_bytes_dirty,\n"
	"vol_blocks_written, vol_blocks_read, vol_block_cache_hits, vol_blocks_bad\n"
	"\n"
	"Options:\n"
	"  --mount P    the mountpoint\n"
	"  -h, --help   show this help\n";

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mnt = NULL;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'm') {
			mnt = optarg;
		} else if (c == 'h') {
			fputs(stats_usage, stdout);
			return 0;
		} else {
			cli_error("bad option %s (see eddyfs stats --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (!mnt || optind < argc) {
		cli_error("stats needs --mount P (see eddyfs stats --help)");
		return EXIT_USAGE;
	}
	return cli_control_request(mnt, "stats");
}
