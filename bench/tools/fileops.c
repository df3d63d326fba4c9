/*
 * fileops - tight file-operation loops for the eddyfs benchmarks.
 *
 * Compiled at run time by bench/run and bench/scale (cc -O2) into a temp dir.
 * Every sub-command prints exactly one result line on stdout:
 *
 *     ok=<count> errors=<count> seconds=<wall seconds, CLOCK_MONOTONIC>
 *
 * and at most a few error messages on stderr.  Exit status 0 if errors == 0,
 * 1 if some operations failed, 2 on usage errors / setup failure.
 *
 *   fileops create DIR N        open(O_CREAT|O_EXCL|O_WRONLY)+close DIR/f0000000 .. N-1
 *   fileops stat   DIR N        fstatat(AT_SYMLINK_NOFOLLOW) each of those names
 *   fileops unlink DIR N        unlinkat each of those names
 *   fileops mkflat DIR N        mknodat(S_IFREG) each of those names (fast populate)
 *   fileops mktree DIR TOTAL PER_DIR
 *                               populate DIR with exactly TOTAL new inodes: two levels of
 *                               directories (dNNNNN/sNNNNN) holding PER_DIR empty files each
 *   fileops walk   DIR          recursive readdir + fstatat(AT_SYMLINK_NOFOLLOW) of every
 *                               entry below DIR; ok = number of entries seen
 *
 * The per-file loops use a directory fd and the *at() calls, so each operation
 * is a single-component lookup (one FUSE LOOKUP/CREATE/UNLINK on a FUSE mount).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long n_ok, n_err;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void err(const char *op, const char *name, int e)
{
	n_err++;
	if (n_err <= 5)
		fprintf(stderr, "fileops: %s %s: %s\n", op, name, strerror(e));
	else if (n_err == 6)
		fprintf(stderr, "fileops: (further errors suppressed)\n");
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fprintf(stderr, "fileops: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static long parse_long(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "fileops: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void name_of(char *buf, size_t len, long i)
{
	snprintf(buf, len, "f%07ld", i);
}

static void loop_create(int dfd, long n)
{
	char name[32];
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof name, i);
		int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0) {
			err("create", name, errno);
			continue;
		}
		if (close(fd) != 0)
			err("close", name, errno);
		else
			n_ok++;
	}
}

static void loop_stat(int dfd, long n)
{
	char name[32];
	struct stat st;
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof name, i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			err("stat", name, errno);
		else
			n_ok++;
	}
}

static void loop_unlink(int dfd, long n)
{
	char name[32];
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof name, i);
		if (unlinkat(dfd, name, 0) != 0)
			err("unlink", name, errno);
		else
			n_ok++;
	}
}

static void loop_mkflat(int dfd, long n)
{
	char name[32];
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof name, i);
		if (mknodat(dfd, name, S_IFREG | 0644, 0) != 0)
			err("mknod", name, errno);
		else
			n_ok++;
	}
}

static void mktree(int dfd, long total, long per_dir)
{
	/* leaves needed ~ total/(per_dir+1); top-level fan-out ~ sqrt(leaves) */
	long leaves = total / (per_dir + 1) + 1;
	long fan = (long)ceil(sqrt((double)leaves));
	if (fan < 1)
		fan = 1;
	long count = 0;
	char name[32], fname[32];
	for (long i = 0; count < total; i++) {
		snprintf(name, sizeof name, "d%05ld", i);
		if (mkdirat(dfd, name, 0755) != 0) {
			err("mkdir", name, errno);
			return;
		}
		count++, n_ok++;
		int d1 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d1 < 0) {
			err("open", name, errno);
			return;
		}
		for (long j = 0; j < fan && count < total; j++) {
			snprintf(name, sizeof name, "s%05ld", j);
			if (mkdirat(d1, name, 0755) != 0) {
				err("mkdir", name, errno);
				close(d1);
				return;
			}
			count++, n_ok++;
			int d2 = openat(d1, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (d2 < 0) {
				err("open", name, errno);
				close(d1);
				return;
			}
			for (long k = 0; k < per_dir && count < total; k++) {
				name_of(fname, sizeof fname, k);
				if (mknodat(d2, fname, S_IFREG | 0644, 0) != 0)
					err("mknod", fname, errno);
				else
					n_ok++;
				count++;
			}
			close(d2);
		}
		close(d1);
	}
}

static void walk(int dfd, const char *path)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		err("fdopendir", path, errno);
		close(dfd);
		return;
	}
	struct dirent *de;
	struct stat st;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				err("readdir", path, errno);
			break;
		}
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			err("stat", de->d_name, errno);
			continue;
		}
		n_ok++;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				err("opendir", de->d_name, errno);
				continue;
			}
			walk(sub, de->d_name);
		}
	}
	closedir(d);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fileops create|stat|unlink|mkflat DIR N\n"
		"       fileops mktree DIR TOTAL PER_DIR\n"
		"       fileops walk DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *cmd = argv[1], *dir = argv[2];
	int dfd = open_dir(dir);
	double t0 = now();

	if (!strcmp(cmd, "walk") && argc == 3) {
		walk(dfd, dir);
	} else if (!strcmp(cmd, "mktree") && argc == 5) {
		long per = parse_long(argv[4]);
		if (per < 1)
			usage();
		mktree(dfd, parse_long(argv[3]), per);
	} else if (argc == 4) {
		long n = parse_long(argv[3]);
		if (!strcmp(cmd, "create"))
			loop_create(dfd, n);
		else if (!strcmp(cmd, "stat"))
			loop_stat(dfd, n);
		else if (!strcmp(cmd, "unlink"))
			loop_unlink(dfd, n);
		else if (!strcmp(cmd, "mkflat"))
			loop_mkflat(dfd, n);
		else
			usage();
	} else {
		usage();
	}

	double t = now() - t0;
	printf("ok=%ld errors=%ld seconds=%.6f\n", n_ok, n_err, t);
	return n_err ? 1 : 0;
}
