/*
** runtime.c -- pid files, control socket paths and unmounting; see
** runtime.h. Shared by the daemon (writes) and the CLI (reads).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

extern char **environ;

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void base_dir(char *buf, size_t n)
{
	const char *env = getenv("EDDYFS_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(buf, n, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, n, "/run/eddyfs");
	else if (xdg && *xdg)
		snprintf(buf, n, "%s/eddyfs", xdg);
	else
		snprintf(buf, n, "/tmp/eddyfs-%u", (unsigned)geteuid());
}

static void fill_paths(const char *dir, const char *mountpoint, struct eddy_runtime_paths *p)
{
	uint64_t h = fnv1a(mountpoint);

	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(p->pidfile, sizeof(p->pidfile), "%s/%016llx.pid", dir, (unsigned long long)h);
	if ((size_t)snprintf(p->sock, sizeof(p->sock), "%s/%016llx.sock", dir,
			     (unsigned long long)h) >= sizeof(p->sock))
		p->sock[0] = 0;
}

int eddy_runtime_paths(const char *mountpoint, struct eddy_runtime_paths *p, bool create)
{
	char dir[EDDY_PATH_MAX];
	struct stat st;

	base_dir(dir, sizeof(dir));
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (create && (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()))
		return -EPERM;
	fill_paths(dir, mountpoint, p);
	return 0;
}

/* Reads a pid file; the pid counts only if it names a live process whose
** pid file names MOUNTPOINT. */
static pid_t read_pidfile(const char *path, const char *mountpoint)
{
	char buf[EDDY_PATH_MAX + 32], *nl;
	ssize_t n;
	pid_t pid;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = 0;
	pid = (pid_t)strtol(buf, &nl, 10);
	if (pid <= 0 || *nl != '\n')
		return -ENOENT;
	nl++;
	n = (ssize_t)strcspn(nl, "\n");
	if ((size_t)n != strlen(mountpoint) || strncmp(nl, mountpoint, (size_t)n) != 0)
		return -ENOENT;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return -ENOENT;
	return pid;
}

pid_t eddy_runtime_find(const char *mountpoint, struct eddy_runtime_paths *p)
{
	char dir[EDDY_PATH_MAX];
	pid_t pid;
	DIR *tmp;
	struct dirent *de;

	base_dir(dir, sizeof(dir));
	fill_paths(dir, mountpoint, p);
	pid = read_pidfile(p->pidfile, mountpoint);
	if (pid > 0 || geteuid() != 0)
		return pid;
	/* root: look in every user's runtime dir too */
	fill_paths("/run/eddyfs", mountpoint, p);
	if ((pid = read_pidfile(p->pidfile, mountpoint)) > 0)
		return pid;
	tmp = opendir("/tmp");
	while (tmp && (de = readdir(tmp))) {
		if (strncmp(de->d_name, "eddyfs-", 7) != 0)
			continue;
		snprintf(dir, sizeof(dir), "/tmp/%s", de->d_name);
		fill_paths(dir, mountpoint, p);
		if ((pid = read_pidfile(p->pidfile, mountpoint)) > 0)
			break;
	}
	if (tmp)
		closedir(tmp);
	if (pid > 0)
		return pid;
	tmp = opendir("/run/user");
	while (tmp && (de = readdir(tmp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/run/user/%s/eddyfs", de->d_name);
		fill_paths(dir, mountpoint, p);
		if ((pid = read_pidfile(p->pidfile, mountpoint)) > 0)
			break;
	}
	if (tmp)
		closedir(tmp);
	return pid > 0 ? pid : -ENOENT;
}

int eddy_runtime_write_pid(const struct eddy_runtime_paths *p, const char *mountpoint)
{
	char tmp[EDDY_PATH_MAX + 8], buf[EDDY_PATH_MAX + 32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", p->pidfile);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n%s\n", (int)getpid(), mountpoint);
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		unlink(tmp);
		return -EIO;
	}
	close(fd);
	return rename(tmp, p->pidfile) < 0 ? -errno : 0;
}

static int run_fusermount(const char *opt, const char *mountpoint)
{
	char *argv[] = { "fusermount3", (char *)opt, (char *)mountpoint, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, "fusermount3", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

int eddy_unmount(const char *mountpoint, bool lazy_if_busy, bool *lazy)
{
	int r;

	if (lazy)
		*lazy = false;
	if (geteuid() == 0) {
		r = umount2(mountpoint, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
		if (r == -EBUSY && lazy_if_busy) {
			r = umount2(mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
			if (!r && lazy)
				*lazy = true;
		}
		return r;
	}
	r = run_fusermount("-u", mountpoint);
	if (r == -EBUSY && lazy_if_busy) {
		r = run_fusermount("-uz", mountpoint);
		if (!r && lazy)
			*lazy = true;
	}
	return r;
}
