/*
** cmd_client.c -- the volume client: `eddyfs ls|stat|cat|get|put|mkdir|rm|
** mv|ln|tree|copy_into|echo_into sqlite:<volume-dir> ...`, with no FUSE
** mount, through the same interface a mount uses (src/client/).
** Paths inside the volume are absolute. Errors read as coreutils' do:
** "eddyfs cat: /a/b: No such file or directory", exit status 1; usage
** errors and a volume that cannot be opened: exit status 2.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../client/client.h"

#define IO_CHUNK (1u << 20)

static const char client_usage[] =
	"Usage: eddyfs <command> sqlite:<volume-dir> [options] <args>\n"
	"\n"
	"Use a volume made by eddyfs format without mounting it, mounted\n"
	"elsewhere or not (the client is a session of the volume, as a mount\n"
	"is: mounts see its changes at once). Paths inside the volume are\n"
	"absolute (/dir/file). Access is checked as a mount checks it, as the\n"
	"calling user.\n"
	"\n"
	"Commands:\n"
	"  ls [-l] [-a] [path...]     list directories (default /)\n"
	"  stat path...               inode, type, mode, links, owner, size,\n"
	"                             times (the link itself, not its target)\n"
	"  cat path...                write files to standard output\n"
	"  get <path> <local|->       copy a file out of the volume\n"
	"  put <local|-> <path>       copy a file (or standard input) in:\n"
	"                             create or truncate, durable (fsync) on exit\n"
	"  copy_into <local> <path>   put, from a local file\n"
	"  echo_into <string> <path>  write STRING and a newline into path\n"
	"  mkdir [-p] [-m mode] path...\n"
	"  rm [-r] [-f] [-d] path...  -r: trees, -d: empty directories,\n"
	"                             -f: no error for missing paths\n"
	"  mv <src> <dst>             rename (into dst if it is a directory)\n"
	"  ln [-s] <target> <link>    hard link, or symlink with -s\n"
	"  tree [path]                the tree below path (default /)\n"
	"\n"
	"Exit status: 0 success; 1 an operation failed (one line each, as\n"
	"coreutils); 2 usage error, or the volume cannot be opened (not a\n"
	"volume, a newer format, held by fsck --repair or gc).\n";

struct cc {
	const char *cmd;
	struct vclient c;
	int status;
};

static void fail(struct cc *x, const char *path, int err)
{
	fprintf(stderr, "eddyfs %s: %s: %s\n", x->cmd, path, strerror(-err));
	x->status = 1;
}

/****************************** reading ******************************/

static const char *type_name(mode_t m)
{
	return S_ISREG(m) ? "regular file" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ?
	       "symbolic link" : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket" :
	       S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" : "unknown";
}

static void mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' :
		 S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : '-';
	for (i = 0; i < 9; i++)
		out[i + 1] = (m & (0400 >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & 0100) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & 0010) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & 0001) ? 't' : 'T';
	out[10] = 0;
}

static void print_long(struct cc *x, uint64_t ino, const struct stat *st, const char *name)
{
	char mode[11], when[32], target[PATH_MAX];
	struct tm tm;
	ssize_t n = -1;

	mode_string(st->st_mode, mode);
	localtime_r(&st->st_mtime, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	if (S_ISLNK(st->st_mode))
		n = x->c.fs->ops->readlink(x->c.fs, &x->c.ctx, ino, target, sizeof(target) - 1);
	printf("%s %3lu %5u %5u %10lld %s %s%s%.*s\n", mode, (unsigned long)st->st_nlink,
	       (unsigned)st->st_uid, (unsigned)st->st_gid, (long long)st->st_size, when, name,
	       n >= 0 ? " -> " : "", n >= 0 ? (int)n : 0, n >= 0 ? target : "");
}

static void ls_one(struct cc *x, const char *path, bool lng, bool all, bool header)
{
	char **names;
	size_t n, i;
	uint64_t ino;
	struct stat st;
	int r = vclient_resolve(&x->c, path, true, &ino, &st);

	if (r)
		return fail(x, path, r);
	if (!S_ISDIR(st.st_mode)) {
		if (lng)
			print_long(x, ino, &st, path);
		else
			printf("%s\n", path);
		vclient_put(&x->c, ino);
		return;
	}
	r = vclient_list(&x->c, ino, &st, &names, &n);
	if (r) {
		vclient_put(&x->c, ino);
		return fail(x, path, r);
	}
	if (header)
		printf("%s:\n", path);
	for (i = 0; i < n; i++) {
		uint64_t child;
		struct stat cst;

		if (names[i][0] == '.' && !all)
			continue;
		if (!lng) {
			printf("%s\n", names[i]);
		} else if ((r = vclient_lookup(&x->c, ino, names[i], &child, &cst)) == 0) {
			print_long(x, child, &cst, names[i]);
			vclient_put(&x->c, child);
		} else {
			fail(x, names[i], r);
		}
	}
	vclient_list_free(names, n);
	vclient_put(&x->c, ino);
}

static int cmd_ls(struct cc *x, int argc, char **argv)
{
	bool lng = false, all = false;
	int c, i;

	while ((c = getopt(argc, argv, "+la")) != -1) {
		if (c == 'l')
			lng = true;
		else if (c == 'a')
			all = true;
		else
			return EXIT_USAGE;
	}
	if (optind == argc)
		ls_one(x, "/", lng, all, false);
	for (i = optind; i < argc; i++)
		ls_one(x, argv[i], lng, all, argc - optind > 1);
	return 0;
}

static void print_time(const char *what, const struct timespec *ts)
{
	char buf[64];
	struct tm tm;

	localtime_r(&ts->tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s: %s.%09ld\n", what, buf, ts->tv_nsec);
}

static int cmd_stat(struct cc *x, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return EXIT_USAGE;
	for (i = 1; i < argc; i++) {
		char mode[11];
		uint64_t ino;
		struct stat st;
		int r = vclient_resolve(&x->c, argv[i], false, &ino, &st);

		if (r) {
			fail(x, argv[i], r);
			continue;
		}
		mode_string(st.st_mode, mode);
		printf("  File: %s\n  Size: %lld\tBlocks: %lld\tType: %s\n", argv[i],
		       (long long)st.st_size, (long long)st.st_blocks, type_name(st.st_mode));
		printf(" Inode: %llu\tLinks: %lu\n", (unsigned long long)st.st_ino,
		       (unsigned long)st.st_nlink);
		printf("Access: (%04o/%s)  Uid: %u  Gid: %u\n", (unsigned)(st.st_mode & 07777),
		       mode, (unsigned)st.st_uid, (unsigned)st.st_gid);
		print_time("Access", &st.st_atim);
		print_time("Modify", &st.st_mtim);
		print_time("Change", &st.st_ctim);
		vclient_put(&x->c, ino);
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies volume file PATH to FD. 0, or a negative errno (reported). */
static int copy_out(struct cc *x, const char *path, int fd)
{
	struct eddy_file *f;
	struct eddy_open how;
	struct stat st;
	uint64_t ino;
	char *buf;
	off_t off = 0;
	int r = vclient_resolve(&x->c, path, true, &ino, &st);

	if (r)
		goto done;
	r = S_ISDIR(st.st_mode) ? -EISDIR : vclient_access(&x->c, ino, &st, R_OK);
	memset(&how, 0, sizeof(how));
	if (!r)
		r = x->c.fs->ops->open(x->c.fs, &x->c.ctx, ino, O_RDONLY, &f, &how);
	if (r) {
		vclient_put(&x->c, ino);
		goto done;
	}
	buf = malloc(IO_CHUNK);
	r = buf ? 0 : -ENOMEM;
	while (!r) {
		ssize_t n = x->c.fs->ops->read(x->c.fs, f, buf, IO_CHUNK, off);

		if (n <= 0) {
			r = (int)n;
			break;
		}
		off += n;
		if ((r = write_all(fd, buf, (size_t)n)))
			path = "(output)";
	}
	free(buf);
	if (x->c.fs->ops->flush)
		x->c.fs->ops->flush(x->c.fs, f);
	x->c.fs->ops->release(x->c.fs, f);
	vclient_put(&x->c, ino);
done:
	if (r)
		fail(x, path, r);
	return r;
}

static int cmd_cat(struct cc *x, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		copy_out(x, argv[i], STDOUT_FILENO);
	return 0;
}

static int cmd_get(struct cc *x, int argc, char **argv)
{
	int fd;

	if (argc != 3)
		return EXIT_USAGE;
	fd = strcmp(argv[2], "-") ? open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)
				 : STDOUT_FILENO;
	if (fd < 0) {
		fail(x, argv[2], -errno);
		return 0;
	}
	if (copy_out(x, argv[1], fd) == 0 && fd != STDOUT_FILENO && fsync(fd) < 0)
		fail(x, argv[2], -errno);
	if (fd != STDOUT_FILENO && close(fd) < 0)
		fail(x, argv[2], -errno);
	return 0;
}

/****************************** writing ******************************/

/* Opens PATH for writing from the start: the existing file (followed)
** truncated, or a new one. */
static int open_for_put(struct cc *x, const char *path, struct eddy_file **f, uint64_t *ino)
{
	char name[NAME_MAX + 1];
	struct eddy_entry e;
	struct eddy_open how;
	struct stat st;
	uint64_t dir;
	int r = vclient_resolve(&x->c, path, true, ino, &st);

	memset(&how, 0, sizeof(how));
	if (r == 0) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : vclient_access(&x->c, *ino, &st, W_OK);
		if (!r)
			r = x->c.fs->ops->open(x->c.fs, &x->c.ctx, *ino, O_WRONLY | O_TRUNC, f,
					       &how);
		if (r)
			vclient_put(&x->c, *ino);
		return r;
	}
	if (r != -ENOENT)
		return r;
	if ((r = vclient_parent(&x->c, path, true, &dir, name)))
		return r;
	r = x->c.fs->ops->create(x->c.fs, &x->c.ctx, dir, name, S_IFREG | 0666,
				 O_WRONLY | O_CREAT | O_EXCL, &e, f, &how);
	vclient_put(&x->c, dir);
	if (!r)
		*ino = e.ino;
	return r;
}

/* Writes what READ_FD holds (or TEXT) into volume file PATH, durably. */
static int put(struct cc *x, const char *path, int read_fd, const char *text)
{
	struct eddy_file *f;
	uint64_t ino;
	char *buf = NULL;
	off_t off = 0;
	int r = open_for_put(x, path, &f, &ino), r2;

	if (r) {
		fail(x, path, r);
		return r;
	}
	if (text) {
		size_t n = strlen(text);
		ssize_t w = x->c.fs->ops->write(x->c.fs, &x->c.ctx, f, text, n, 0);

		r = w < 0 ? (int)w : 0;
		if (!r && (w = x->c.fs->ops->write(x->c.fs, &x->c.ctx, f, "\n", 1, (off_t)n)) < 0)
			r = (int)w;
	} else if (!(buf = malloc(IO_CHUNK))) {
		r = -ENOMEM;
	}
	while (!text && !r) {
		ssize_t n = read(read_fd, buf, IO_CHUNK), w = 0, done = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		while (done < n && w >= 0) {
			w = x->c.fs->ops->write(x->c.fs, &x->c.ctx, f, buf + done,
						(size_t)(n - done), off + done);
			if (w == 0)
				w = -EIO;  /* no progress: never loop on it */
			done += w > 0 ? w : 0;
		}
		r = w < 0 ? (int)w : 0;
		off += n;
	}
	free(buf);
	if (!r)
		r = x->c.fs->ops->fsync(x->c.fs, f, false);
	r2 = x->c.fs->ops->flush ? x->c.fs->ops->flush(x->c.fs, f) : 0;
	x->c.fs->ops->release(x->c.fs, f);
	vclient_put(&x->c, ino);
	if (!r)
		r = r2;
	if (r)
		fail(x, path, r);
	return r;
}

static int cmd_put(struct cc *x, int argc, char **argv, bool local_only)
{
	int fd;

	if (argc != 3)
		return EXIT_USAGE;
	if (!local_only && !strcmp(argv[1], "-"))
		fd = STDIN_FILENO;
	else if ((fd = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0) {
		fail(x, argv[1], -errno);
		return 0;
	}
	put(x, argv[2], fd, NULL);
	if (fd != STDIN_FILENO)
		close(fd);
	return 0;
}

static int mkdir_one(struct cc *x, const char *path, mode_t mode, bool parents)
{
	char name[NAME_MAX + 1];
	struct eddy_entry e;
	struct stat st;
	uint64_t dir, ino;
	int r = vclient_parent(&x->c, path, true, &dir, name);

	if (r == -ENOENT && parents) {
		char *up = strdup(path), *s = up ? strrchr(up, '/') : NULL;

		if (s && s != up) {
			*s = 0;
			r = mkdir_one(x, up, 0777, true);
		}
		free(up);
		if (r == 0)
			r = vclient_parent(&x->c, path, true, &dir, name);
	}
	if (r == -EBUSY && parents)
		return 0;                /* "/" exists */
	if (r)
		return r;
	r = x->c.fs->ops->mkdir(x->c.fs, &x->c.ctx, dir, name, mode, &e);
	if (r == 0)
		vclient_put(&x->c, e.ino);
	vclient_put(&x->c, dir);
	if (r == -EEXIST && parents && vclient_resolve(&x->c, path, true, &ino, &st) == 0) {
		r = S_ISDIR(st.st_mode) ? 0 : -EEXIST;
		vclient_put(&x->c, ino);
	}
	return r;
}

static int cmd_mkdir(struct cc *x, int argc, char **argv)
{
	bool parents = false, given = false;
	mode_t mode = 0777;
	int c, i;

	while ((c = getopt(argc, argv, "+pm:")) != -1) {
		char *end;

		if (c == 'p') {
			parents = true;
		} else if (c == 'm') {
			mode = (mode_t)strtoul(optarg, &end, 8);
			given = true;
			if (*end || !*optarg || mode > 07777)
				return EXIT_USAGE;
		} else {
			return EXIT_USAGE;
		}
	}
	if (optind == argc)
		return EXIT_USAGE;
	if (given)
		x->c.ctx.umask = 0;       /* -m sets the mode exactly */
	for (i = optind; i < argc; i++) {
		int r = mkdir_one(x, argv[i], mode, parents);

		if (r)
			fail(x, argv[i], r);
	}
	return 0;
}

/* Removes NAME from directory DIR (whose attributes are DST). */
/* Does PATH end in '/' after a name? Then, as in the kernel, the name must
** be a directory (ENOTDIR otherwise). */
static bool slashed(const char *path)
{
	size_t n = strlen(path);

	return n > 1 && path[n - 1] == '/';
}

/* -ENOTDIR if SLASH and NAME in DIR exists and is no directory. */
static int slash_rule(struct cc *x, uint64_t dir, const char *name, bool slash)
{
	struct stat st;
	uint64_t ino;

	if (!slash || vclient_lookup(&x->c, dir, name, &ino, &st))
		return 0;
	vclient_put(&x->c, ino);
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int rm_at(struct cc *x, uint64_t dir, const struct stat *dst, const char *name,
		 bool recursive, bool empty_dirs)
{
	struct stat st;
	uint64_t ino;
	int r = vclient_lookup(&x->c, dir, name, &ino, &st);

	if (r)
		return r;
	r = vclient_may_delete(&x->c, dir, dst, &st);
	if (!r && S_ISDIR(st.st_mode) && recursive) {
		char **names;
		size_t n, i;

		r = vclient_list(&x->c, ino, &st, &names, &n);
		if (r == 0) {
			for (i = 0; !r && i < n; i++)
				r = rm_at(x, ino, &st, names[i], true, true);
			vclient_list_free(names, n);
		}
	}
	vclient_put(&x->c, ino);
	if (r)
		return r;
	if (S_ISDIR(st.st_mode))
		return recursive || empty_dirs ? x->c.fs->ops->rmdir(x->c.fs, &x->c.ctx, dir, name)
					       : -EISDIR;
	return x->c.fs->ops->unlink(x->c.fs, &x->c.ctx, dir, name);
}

static int cmd_rm(struct cc *x, int argc, char **argv)
{
	bool recursive = false, force = false, empty = false;
	int c, i;

	while ((c = getopt(argc, argv, "+rRfd")) != -1) {
		if (c == 'r' || c == 'R')
			recursive = true;
		else if (c == 'f')
			force = true;
		else if (c == 'd')
			empty = true;
		else
			return EXIT_USAGE;
	}
	if (optind == argc && !force)
		return EXIT_USAGE;
	for (i = optind; i < argc; i++) {
		char name[NAME_MAX + 1];
		struct stat dst;
		uint64_t dir;
		int r = vclient_parent(&x->c, argv[i], false, &dir, name);

		if (r == 0) {
			double t;

			r = x->c.fs->ops->getattr(x->c.fs, &x->c.ctx, dir, NULL, &dst, &t);
			if (!r)
				r = slash_rule(x, dir, name, slashed(argv[i]));
			if (!r)
				r = rm_at(x, dir, &dst, name, recursive, empty);
			vclient_put(&x->c, dir);
		}
		if (r && !(force && r == -ENOENT))
			fail(x, argv[i], r == -EBUSY ? -EPERM : r);
	}
	return 0;
}

/* DST as given, or DST/<last component of SRC> when DST is a directory. */
static char *into_dir(struct cc *x, const char *src, const char *dst)
{
	struct stat st;
	uint64_t ino;
	const char *base = strrchr(src, '/');
	char *out;

	if (vclient_resolve(&x->c, dst, true, &ino, &st) != 0)
		return strdup(dst);
	vclient_put(&x->c, ino);
	if (!S_ISDIR(st.st_mode) || !base || !base[1])
		return strdup(dst);
	if ((out = malloc(strlen(dst) + strlen(base) + 1)))
		sprintf(out, "%s%s", strcmp(dst, "/") ? dst : "", base);
	return out;
}

/* The kernel's checks of a rename beyond the source's removal (ST is the
** source, moved from directory SD into DD as DNAME): a replaced entry
** obeys the removal rules of DD (sticky bit), and a directory that
** changes parent needs write permission on itself (its ".." changes). */
static int mv_allowed(struct cc *x, uint64_t sd, const struct stat *st, uint64_t dd,
		      const char *dname)
{
	struct stat ddir, old;
	uint64_t ino;
	double t;
	int r;

	if ((r = x->c.fs->ops->getattr(x->c.fs, &x->c.ctx, dd, NULL, &ddir, &t)))
		return r;
	if (!vclient_lookup(&x->c, dd, dname, &ino, &old)) {
		r = old.st_ino == st->st_ino ? 0 : vclient_may_delete(&x->c, dd, &ddir, &old);
		vclient_put(&x->c, ino);
		if (r)
			return r;
	}
	if (S_ISDIR(st->st_mode) && sd != dd)
		r = vclient_access(&x->c, st->st_ino, st, W_OK);
	return r;
}

static int cmd_mv(struct cc *x, int argc, char **argv)
{
	char sname[NAME_MAX + 1], dname[NAME_MAX + 1], *dst;
	struct stat sdir, st;
	uint64_t sd, dd, ino;
	double t;
	int r;

	if (argc != 3)
		return EXIT_USAGE;
	if (!(dst = into_dir(x, argv[1], argv[2])))
		return EXIT_USAGE;
	r = vclient_parent(&x->c, argv[1], true, &sd, sname);
	if (r) {
		fail(x, argv[1], r == -EBUSY ? -EINVAL : r);
		free(dst);
		return 0;
	}
	r = x->c.fs->ops->getattr(x->c.fs, &x->c.ctx, sd, NULL, &sdir, &t);
	if (!r && !(r = vclient_lookup(&x->c, sd, sname, &ino, &st))) {
		r = vclient_may_delete(&x->c, sd, &sdir, &st);
		vclient_put(&x->c, ino);
		/* a trailing '/' on either name needs a directory to move */
		if (!r && !S_ISDIR(st.st_mode) && (slashed(argv[1]) || slashed(dst)))
			r = -ENOTDIR;
	}
	if (!r && !(r = vclient_parent(&x->c, dst, true, &dd, dname))) {
		r = mv_allowed(x, sd, &st, dd, dname);
		if (!r)
			r = x->c.fs->ops->rename(x->c.fs, &x->c.ctx, sd, sname, dd, dname, 0);
		vclient_put(&x->c, dd);
		if (r)
			fail(x, dst, r);
	} else if (r) {
		fail(x, r == -EBUSY ? dst : argv[1], r == -EBUSY ? -EINVAL : r);
	}
	vclient_put(&x->c, sd);
	free(dst);
	return 0;
}

static int cmd_ln(struct cc *x, int argc, char **argv)
{
	char name[NAME_MAX + 1], *link;
	struct eddy_entry e;
	bool sym = argc > 1 && !strcmp(argv[1], "-s");
	struct stat st;
	uint64_t dir, ino;
	int r;

	if (argc != (sym ? 4 : 3))
		return EXIT_USAGE;
	if (!(link = into_dir(x, argv[argc - 2], argv[argc - 1])))
		return EXIT_USAGE;
	r = vclient_parent(&x->c, link, true, &dir, name);
	if (r) {
		fail(x, link, r);
	} else if (sym) {
		r = x->c.fs->ops->symlink(x->c.fs, &x->c.ctx, argv[2], dir, name, &e);
		if (r)
			fail(x, link, r);
		else
			vclient_put(&x->c, e.ino);
		vclient_put(&x->c, dir);
	} else {
		r = vclient_resolve(&x->c, argv[1], false, &ino, &st);
		if (r) {
			fail(x, argv[1], r);
		} else {
			r = S_ISDIR(st.st_mode) ? -EPERM :
			    x->c.fs->ops->link(x->c.fs, &x->c.ctx, ino, dir, name, &e);
			if (r)
				fail(x, S_ISDIR(st.st_mode) ? argv[1] : link, r);
			else
				vclient_put(&x->c, e.ino);
			vclient_put(&x->c, ino);
		}
		vclient_put(&x->c, dir);
	}
	free(link);
	return 0;
}

static void tree_at(struct cc *x, uint64_t ino, const struct stat *st, const char *prefix,
		    unsigned long counts[2])
{
	char **names;
	size_t n, i;
	int r = vclient_list(&x->c, ino, st, &names, &n);

	if (r) {
		printf("%s[%s]\n", prefix, strerror(-r));
		return;
	}
	for (i = 0; i < n; i++) {
		bool last = i + 1 == n;
		struct stat cst;
		uint64_t child;
		char *sub;

		printf("%s%s%s\n", prefix, last ? "`-- " : "|-- ", names[i]);
		if (vclient_lookup(&x->c, ino, names[i], &child, &cst))
			continue;
		counts[S_ISDIR(cst.st_mode) ? 0 : 1]++;
		if (S_ISDIR(cst.st_mode) && (sub = malloc(strlen(prefix) + 5))) {
			sprintf(sub, "%s%s", prefix, last ? "    " : "|   ");
			tree_at(x, child, &cst, sub, counts);
			free(sub);
		}
		vclient_put(&x->c, child);
	}
	vclient_list_free(names, n);
}

static int cmd_tree(struct cc *x, int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/";
	unsigned long counts[2] = { 0, 0 };
	struct stat st;
	uint64_t ino;
	int r;

	if (argc > 2)
		return EXIT_USAGE;
	if ((r = vclient_resolve(&x->c, path, true, &ino, &st))) {
		fail(x, path, r);
		return 0;
	}
	printf("%s\n", path);
	if (S_ISDIR(st.st_mode))
		tree_at(x, ino, &st, "", counts);
	vclient_put(&x->c, ino);
	printf("\n%lu directories, %lu files\n", counts[0], counts[1]);
	return 0;
}

/****************************** dispatch ******************************/

static const char *const commands[] = { "ls", "stat", "cat", "get", "put", "copy_into",
					"echo_into", "mkdir", "rm", "mv", "ln", "tree", NULL };

bool cli_is_client_command(const char *cmd)
{
	size_t i;

	for (i = 0; commands[i]; i++)
		if (!strcmp(cmd, commands[i]))
			return true;
	return false;
}

static int run(struct cc *x, int argc, char **argv)
{
	const char *c = x->cmd;

	if (!strcmp(c, "ls"))
		return cmd_ls(x, argc, argv);
	if (!strcmp(c, "stat"))
		return cmd_stat(x, argc, argv);
	if (!strcmp(c, "cat"))
		return argc < 2 ? EXIT_USAGE : cmd_cat(x, argc, argv);
	if (!strcmp(c, "get"))
		return cmd_get(x, argc, argv);
	if (!strcmp(c, "put") || !strcmp(c, "copy_into"))
		return cmd_put(x, argc, argv, !strcmp(c, "copy_into"));
	if (!strcmp(c, "echo_into")) {
		if (argc != 3)
			return EXIT_USAGE;
		put(x, argv[2], -1, argv[1]);
		return 0;
	}
	if (!strcmp(c, "mkdir"))
		return cmd_mkdir(x, argc, argv);
	if (!strcmp(c, "rm"))
		return cmd_rm(x, argc, argv);
	if (!strcmp(c, "mv"))
		return cmd_mv(x, argc, argv);
	if (!strcmp(c, "ln"))
		return cmd_ln(x, argc, argv);
	return cmd_tree(x, argc, argv);
}

int cmd_client(const char *cmd, int argc, char **argv)
{
	struct cc x = { .cmd = cmd };
	char err[600];
	const char *vol;
	int r;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(client_usage, stdout);
		return 0;
	}
	if (argc < 2 || strncmp(argv[1], "sqlite:", 7) != 0 || !argv[1][7]) {
		cli_error("%s needs a volume first: eddyfs %s sqlite:<volume-dir> ... (see "
			  "eddyfs %s --help)", cmd, cmd, cmd);
		return EXIT_USAGE;
	}
	vol = argv[1] + 7;
	r = vclient_open(&x.c, vol, err, sizeof(err));
	if (r) {
		cli_error("%s: %s", cmd, err);
		return EXIT_USAGE;
	}
	/* the command sees its own argv: [cmd, args...] */
	argv[1] = (char *)cmd;
	optind = 1;
	opterr = 0;
	r = run(&x, argc - 1, argv + 1);
	vclient_close(&x.c);
	if (r == EXIT_USAGE) {
		cli_error("%s: bad arguments (see eddyfs %s --help)", cmd, cmd);
		return EXIT_USAGE;
	}
	return x.status;
}
