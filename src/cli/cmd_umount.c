/*
** cmd_umount.c -- `eddyfs umount`: unmount eddyfs mounts (and only those:
** a target must appear in /proc/self/mounts with type fuse.eddyfs), then
** wait until each daemon has exited.
*/
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../util/runtime.h"

static const char umount_usage[] =
	"Usage: eddyfs umount --mount P [--mount P ...]\n"
	"       eddyfs umount --mount-base D\n"
	"\n"
	"Unmount eddyfs mounts and wait until their daemons have exited.\n"
	"\n"
	"Options:\n"
	"  --mount P        unmount the eddyfs mount at P (repeatable)\n"
	"  --mount-base D   unmount every eddyfs mount at or below D\n"
	"  --lazy           detach a busy mount lazily (its daemon exits when the\n"
	"                   last file on it is closed; not waited for)\n"
	"  --timeout S      seconds to wait for each daemon to exit (default: 30)\n"
	"  -h, --help       show this help\n"
	"\n"
	"Works for mounts made by root and by ordinary users (fusermount3).\n"
	"Prints \"unmounted P\" per mount. A target that is not an eddyfs mount is\n"
	"refused with exit status 2; a busy mount fails with exit status 1.\n";

#define EDDY_FSTYPE "fuse.eddyfs"

static bool is_eddy_mount(const char *abs)
{
	struct cli_mount *m;
	int n = cli_mounts_read(&m), i;
	bool found = false;

	for (i = 0; i < n && !found; i++)
		found = strcmp(m[i].target, abs) == 0 && strcmp(m[i].fstype, EDDY_FSTYPE) == 0;
	if (n >= 0)
		cli_mounts_free(m, n);
	return found;
}

/* A zombie has exited too: its parent just has not reaped it yet. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL;
	return p && (p[2] == 'Z' || p[2] == 'X');
}

static int umount_one(const char *abs, bool lazy_ok, long timeout)
{
	struct eddy_runtime_paths rt;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	bool lazy = false;
	pid_t pid;
	long waited;
	int r;

	if (!is_eddy_mount(abs)) {
		cli_error("%s is not an eddyfs mount", abs);
		return EXIT_USAGE;
	}
	pid = eddy_runtime_find(abs, &rt);
	r = eddy_unmount(abs, lazy_ok, &lazy);
	if (r < 0) {
		if (r == -EBUSY)
			cli_error("%s is busy (files open or a process inside); close them or use "
				  "--lazy", abs);
		else
			cli_error("unmounting %s failed: %s", abs, strerror(-r));
		return 1;
	}
	if (lazy) {
		printf("unmounted %s (lazily: busy)\n", abs);
		return 0;
	}
	for (waited = 0; pid > 0 && !process_gone(pid); waited += 10) {
		if (waited >= timeout * 1000) {
			cli_error("unmounted %s but its daemon (pid %d) is still running after "
				  "%ld s", abs, (int)pid, timeout);
			return 1;
		}
		nanosleep(&ts, NULL);
	}
	printf("unmounted %s\n", abs);
	return 0;
}

static int cmp_depth_desc(const void *a, const void *b)
{
	return (int)strlen(*(char *const *)b) - (int)strlen(*(char *const *)a);
}

static int umount_base(const char *base, bool lazy, long timeout)
{
	struct cli_mount *m;
	char **targets;
	int n = cli_mounts_read(&m), i, k = 0, rc = 0;

	if (n < 0) {
		cli_error("cannot read the mount table: %s", strerror(-n));
		return 1;
	}
	targets = calloc((size_t)n + 1, sizeof(*targets));
	for (i = 0; targets && i < n; i++)
		if (strcmp(m[i].fstype, EDDY_FSTYPE) == 0 && cli_path_within(m[i].target, base))
			targets[k++] = strdup(m[i].target);
	cli_mounts_free(m, n);
	if (!targets)
		return 1;
	qsort(targets, (size_t)k, sizeof(*targets), cmp_depth_desc);
	for (i = 0; i < k; i++) {
		int r = umount_one(targets[i], lazy, timeout);

		if (r > rc)
			rc = r;
		free(targets[i]);
	}
	free(targets);
	if (k == 0)
		printf("no eddyfs mounts under %s\n", base);
	return rc;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "mount-base", required_argument, NULL, 'B' },
		{ "lazy", no_argument, NULL, 'z' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char **mounts = calloc((size_t)argc, sizeof(char *));
	const char *base = NULL;
	bool lazy = false;
	long timeout = 30;
	int c, n = 0, i, rc = 0;

	opterr = 0;
	optind = 1;
	while (mounts && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': mounts[n++] = optarg; break;
		case 'B': base = optarg; break;
		case 'z': lazy = true; break;
		case 't':
			if (cli_parse_int("--timeout", optarg, 1, 86400, &timeout) < 0)
				rc = EXIT_USAGE;
			break;
		case 'h':
			fputs(umount_usage, stdout);
			free(mounts);
			return 0;
		case ':':
			cli_error("option %s needs a value (see eddyfs umount --help)", argv[optind - 1]);
			rc = EXIT_USAGE;
			break;
		default:
			cli_error("unknown option %s (see eddyfs umount --help)", argv[optind - 1]);
			rc = EXIT_USAGE;
			break;
		}
		if (rc)
			break;
	}
	if (!rc && (optind < argc || (n == 0) == (base == NULL))) {
		cli_error("umount needs --mount P (repeatable) or --mount-base D "
			  "(see eddyfs umount --help)");
		rc = EXIT_USAGE;
	}
	if (rc || !mounts) {
		free(mounts);
		return rc ? rc : 1;
	}
	if (base) {
		char abs[PATH_MAX];

		rc = cli_abspath(base, abs, sizeof(abs)) < 0 ? EXIT_USAGE : umount_base(abs, lazy, timeout);
	}
	for (i = 0; i < n; i++) {
		char abs[PATH_MAX];
		int r = cli_abspath(mounts[i], abs, sizeof(abs)) < 0 ? EXIT_USAGE
								    : umount_one(abs, lazy, timeout);

		if (r > rc)
			rc = r;
	}
	free(mounts);
	return rc;
}
