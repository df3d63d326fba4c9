/*
** cmd_fsck.c -- `eddyfs fsck <volume-dir>` and `eddyfs gc <volume-dir>`:
** the offline checks and collection of a volume (src/backend/volume/
** vol_fsck.c, vol_gc.c say what they check and change).
*/
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../backend/volume/vol.h"

/* fsck's exit status, as e2fsck's: */
#define FSCK_CLEAN 0               /* no problems */
#define FSCK_FIXED 1               /* problems found, all repaired */
#define FSCK_LEFT 4                /* problems left (found without --repair, or unrepairable) */

static const char fsck_usage[] =
	"Usage: eddyfs fsck [--repair] [--quick] <volume-dir>\n"
	"\n"
	"Check a volume made by eddyfs format: the database's integrity, the\n"
	"root, names (missing inodes, parents that are not directories,\n"
	"directories with several names), link counts, objects no name reaches\n"
	"from the root, rows of missing inodes, symlink targets, stored bytes,\n"
	"the volume's totals and block id counter, every referenced block\n"
	"(present, header, XXH3 checksum, zstd) and the block folder. One line\n"
	"per problem, then a summary. Orphans (unlinked inodes) and block\n"
	"files nothing references are noted, not counted as problems: a live\n"
	"mount may be using them, or a crash left them.\n"
	"\n"
	"Without --repair fsck changes nothing and may run while the volume is\n"
	"mounted (it reads one consistent snapshot).\n"
	"\n"
	"Options:\n"
	"  --repair     fix what can be proven (needs the volume unmounted):\n"
	"               remove names of missing inodes and names in\n"
	"               non-directories, extra names of directories and rows of\n"
	"               missing inodes; link objects without a name into\n"
	"               /lost+found as #<ino>; set link counts, parents, stored\n"
	"               bytes, totals and the block id counter from the rows;\n"
	"               collect orphans, stale session rows and unreferenced\n"
	"               block files. Missing or corrupt blocks are reported,\n"
	"               never invented (their ranges read as EIO).\n"
	"  --quick      do not read blocks (names and rows only)\n"
	"  -h, --help   show this help\n"
	"\n"
	"Exit status: 0 no problems; 1 problems found and all repaired; 4\n"
	"problems left (found without --repair, or not repairable); 2 usage\n"
	"error, not a volume, a newer format, a corrupt database, or --repair\n"
	"on a volume in use.\n";

static const char gc_usage[] =
	"Usage: eddyfs gc [--dry-run] [--verbose] <volume-dir>\n"
	"\n"
	"Remove the block files of a volume that no file refers to (left by a\n"
	"crash between writing a block and recording it, or by removals that a\n"
	"crash interrupted) and unfinished block writes (*.tmp). Needs the\n"
	"volume unmounted. Prints what it removed.\n"
	"\n"
	"Options:\n"
	"  -n, --dry-run   list what would be removed, remove nothing\n"
	"  -v, --verbose   a line per file removed\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0 done; 1 a file could not be removed; 2 usage error, not\n"
	"a volume, or a volume in use.\n";

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vol_fsck_options o = { false, false };
	struct vol_fsck_report rep;
	char err[600];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.repair = true;
			break;
		case 'q':
			o.quick = true;
			break;
		case 'h':
			fputs(fsck_usage, stdout);
			return 0;
		default:
			cli_error("fsck: unknown option '%s' (see eddyfs fsck --help)",
				  argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_error("fsck needs one <volume-dir> (see eddyfs fsck --help)");
		return EXIT_USAGE;
	}
	if (vol_fsck(argv[optind], &o, stdout, &rep, err, sizeof(err)) < 0) {
		fflush(stdout);
		cli_error("fsck: %s", err);
		return EXIT_USAGE;
	}
	printf("%s: %llu problem(s)", argv[optind], (unsigned long long)rep.problems);
	if (o.repair)
		printf(", %llu repaired", (unsigned long long)rep.repaired);
	printf("; %llu orphan(s); %llu unreferenced block file(s); %llu block(s) read%s\n",
	       (unsigned long long)rep.orphans, (unsigned long long)rep.unreferenced,
	       (unsigned long long)rep.blocks_checked,
	       rep.alone ? "" : " (volume in use: a snapshot was checked)");
	if (!rep.problems)
		return FSCK_CLEAN;
	return rep.repaired == rep.problems ? FSCK_FIXED : FSCK_LEFT;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vol_gc_options o = { false, false };
	struct vol_gc_report rep;
	char err[600];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "nvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.dry_run = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			fputs(gc_usage, stdout);
			return 0;
		default:
			cli_error("gc: unknown option '%s' (see eddyfs gc --help)",
				  argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_error("gc needs one <volume-dir> (see eddyfs gc --help)");
		return EXIT_USAGE;
	}
	if (vol_gc(argv[optind], &o, stdout, &rep, err, sizeof(err)) < 0) {
		fflush(stdout);
		cli_error("gc: %s", err);
		return EXIT_USAGE;
	}
	printf("%s: %s %llu unreferenced block file(s) and %llu unfinished write(s), "
	       "%llu bytes\n", argv[optind], o.dry_run ? "would remove" : "removed",
	       (unsigned long long)rep.blocks, (unsigned long long)rep.temps,
	       (unsigned long long)rep.bytes);
	return rep.failed ? 1 : 0;
}
