/*
** cmd_stats.c -- `eddyfs stats --mount P`: ask a running mount for its
** counters over its control socket and print them ("key value" lines).
*/
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "../util/runtime.h"

static const char stats_usage[] =
	"Usage: eddyfs stats --mount P\n"
	"\n"
	"Print the counters of the running eddyfs mount at P, one \"key value\"\n"
	"per line: known_inodes (inodes the kernel holds), nlookup_total,\n"
	"lookups_counted, lookups_forgotten, backend_nodes, cached_fds,\n"
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
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct eddy_runtime_paths rt;
	const char *mnt = NULL;
	char abs[PATH_MAX], buf[4096];
	ssize_t n;
	int c, fd;

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
	if (cli_abspath(mnt, abs, sizeof(abs)) < 0 || eddy_runtime_find(abs, &rt) <= 0 ||
	    !rt.sock[0]) {
		cli_error("%s is not a running eddyfs mount of this user", mnt);
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, rt.sock, strlen(rt.sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, "stats\n", 6) != 6) {
		cli_error("cannot reach the daemon of %s: %s", mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}
