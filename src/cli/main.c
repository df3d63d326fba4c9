/*
** main.c -- the eddyfs command: dispatch to a subcommand, --help, --version.
*/
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"Usage: eddyfs <command> [options]\n"
	"\n"
	"eddyfs: a shared userspace filesystem (FUSE).\n"
	"\n"
	"Commands:\n"
	"  mount [options] <backing-dir> <mountpoint>\n"
	"                            expose a directory at a mountpoint\n"
	"  mount [options] mem:[size=N,inodes=N] <mountpoint>\n"
	"                            mount a new filesystem that lives in RAM\n"
	"  mount [options] sqlite:<volume-dir> <mountpoint>\n"
	"                            mount a volume (see format)\n"
	"  format [options] <dir>    make a new volume: SQLite metadata and a\n"
	"                            block folder\n"
	"  umount --mount P [--mount P ...] | --mount-base D\n"
	"                            unmount eddyfs mounts, wait for their daemons\n"
	"  status <volume-dir>       a volume's sessions, usage and counters\n"
	"  fsck [--repair] <volume-dir>\n"
	"                            check (and repair) a volume\n"
	"  gc [--dry-run] <volume-dir>\n"
	"                            remove block files nothing refers to\n"
	"  dump [-o FILE] <volume-dir>\n"
	"                            a volume's metadata as JSON\n"
	"  load [--blocks-from OLD] <dump.json> <new-volume-dir>\n"
	"                            make a volume from a dump\n"
	"  ls|stat|cat|get|put|copy_into|echo_into|mkdir|rm|mv|ln|tree\n"
	"       sqlite:<volume-dir> ...\n"
	"                            use a volume without mounting it\n"
	"  stats --mount P           print a running mount's counters\n"
	"  chaos show|set|fault|clear|partition|heal|drop-unsynced|crash --mount P\n"
	"                            control a chaos client at run time\n"
	"  trace [--html OUT] LOG...  merge chaos clients' decision logs into a\n"
	"                            timeline (text, or an HTML page)\n"
	"\n"
	"Options:\n"
	"  -h, --help      show this help; eddyfs <command> --help for a command\n"
	"  -V, --version   show the version\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error or refused request.\n";

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("eddyfs %s\n", EDDY_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(cmd, "umount"))
		return cmd_umount(argc - 1, argv + 1);
	if (!strcmp(cmd, "format"))
		return cmd_format(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "fsck"))
		return cmd_fsck(argc - 1, argv + 1);
	if (!strcmp(cmd, "gc"))
		return cmd_gc(argc - 1, argv + 1);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc - 1, argv + 1);
	if (!strcmp(cmd, "load"))
		return cmd_load(argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(cmd, "chaos"))
		return cmd_chaos(argc - 1, argv + 1);
	if (!strcmp(cmd, "trace"))
		return cmd_trace(argc - 1, argv + 1);
	if (cli_is_client_command(cmd))
		return cmd_client(cmd, argc - 1, argv + 1);
	cli_error("unknown command '%s' (see eddyfs --help)", cmd);
	return EXIT_USAGE;
}
