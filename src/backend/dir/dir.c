/*
** dir.c -- the "dir" backend: exposes one existing directory (passthrough).
**
** Guarantees:
**   1. Confinement: every object is reached with *at() calls from directory
**      fds, one name component at a time, with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW,
**      and its identity (st_dev, st_ino) is checked after each re-resolution;
**      no symlink, ".." or concurrent rename inside the backing tree makes an
**      operation act outside it.
**   2. Bounded descriptors: at most opt.fd_cache O_PATH fds are cached; other
**      nodes are re-resolved through their parent chain. Open files and
**      nodes whose name was removed while the kernel held them keep one fd.
**   3. Inode numbers handed out are never reused for the life of the mount;
**      st_ino shows the backing inode number.
**   4. The backing directory is the only state: a crash loses nothing that
**      was written to it.
**   5. Change news (opt.watch): changes made elsewhere in the backing tree
**      are reported through eddy_events (dir_watch.c).
**   6. Locks (dir_lock.c): fcntl and flock locks conflict with those taken
**      through other mounts of the same backing tree and by plain processes.
** Does not provide:
**   1. Change news for backing trees on network filesystems (no events):
**      the CLI then chooses short timeouts instead.
** Only the frontend (and tests) call these functions, through dir_fs_ops.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_int.h"

void dir_options_default(struct dir_options *o)
{
	memset(o, 0, sizeof(*o));
	o->entry_timeout = 1.0;
	o->attr_timeout = 1.0;
	o->negative_timeout = 1.0;
	o->fallback_timeout = 1.0;
	o->keep_cache = true;
	o->cache_readdir = false;
	o->watch = DIR_WATCH_NONE;
	o->fd_cache = 0;               /* 0: derived from RLIMIT_NOFILE */
}

/* A quarter of the descriptor limit (at most 4096) for the cache; the rest
** stays free for open files and nameless nodes. */
static size_t default_fd_cache(void)
{
	struct rlimit rl;
	size_t n = 4096;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur / 4;
	if (n > 4096)
		n = 4096;
	if (n < 16)
		n = 16;
	return n;
}

int dir_fs_open(const char *backing, const struct dir_options *o, struct eddy_fs **out,
		char *err, size_t errlen)
{
	struct dir_fs *d;
	struct stat st;
	int fd, r;

	fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open backing directory %s: %s", backing,
			 strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot stat %s: %s", backing, strerror(errno));
		close(fd);
		return r;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->base.ops = &dir_fs_ops;
	/* Listings cached by the kernel across opens are invalidated by the
	 * watcher (events mode only). */
	if (o->cache_readdir && o->watch != DIR_WATCH_NONE)
		d->base.flags |= EDDY_FS_STATELESS_DIRS;
	d->opt = *o;
	if (d->opt.fd_cache == 0)
		d->opt.fd_cache = default_fd_cache();
	d->root_fd = fd;
	d->root_dev = st.st_dev;
	d->privileged = geteuid() == 0;
	pthread_mutex_init(&d->files_lock, NULL);
	r = dir_locks_init(d);
	if (!r)
		r = dir_nodes_init(d);
	if (r < 0) {
		snprintf(err, errlen, "cannot set up the node table: %s", strerror(-r));
		close(fd);
		free(d);
		return r;
	}
	*out = &d->base;
	return 0;
}

void dir_files_add(struct dir_fs *d, struct dir_file *f)
{
	pthread_mutex_lock(&d->files_lock);
	f->prev = NULL;
	f->next = d->files;
	if (d->files)
		d->files->prev = f;
	d->files = f;
	pthread_mutex_unlock(&d->files_lock);
	atomic_fetch_add(&d->nopen, 1);
	dir_node_opened(d, f->base.ino, 1);
}

void dir_files_remove(struct dir_fs *d, struct dir_file *f)
{
	pthread_mutex_lock(&d->files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		d->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&d->files_lock);
	atomic_fetch_sub(&d->nopen, 1);
	dir_node_opened(d, f->base.ino, -1);
}

/* Handles the kernel never released (a lazily detached mount whose
** connection ended first) are released here. */
static void dir_destroy(struct eddy_fs *fs)
{
	struct dir_fs *d = dir_fs(fs);

	dir_watch_stop(fs);
	while (d->files) {
		struct dir_file *f = d->files;

		if (f->is_dir)
			dir_releasedir(fs, &f->base);
		else
			dir_release(fs, &f->base);
	}
	pthread_mutex_destroy(&d->files_lock);
	dir_locks_free(d);

	dir_nodes_free(d);
	close(d->root_fd);
	free(d);
}

static void dir_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct dir_fs *d = dir_fs(fs);
	size_t nodes, cached, pinned;

	dir_node_stats(d, &nodes, &cached, &pinned);
	dir_watch_report(d, fn, arg);
	fn(arg, "backend_nodes", (long long)nodes);
	fn(arg, "cached_fds", (long long)cached);
	fn(arg, "pinned_fds", (long long)pinned);
	fn(arg, "fd_cache_capacity", (long long)d->opt.fd_cache);
	fn(arg, "open_files", atomic_load(&d->nopen));
	fn(arg, "fd_resolves", atomic_load(&d->nresolve));
	fn(arg, "fd_resolves_stale", atomic_load(&d->nstale));
}

const struct eddy_fs_ops dir_fs_ops = {
	.name = "dir",
	.destroy = dir_destroy,
	.report = dir_report,
	/* namespace */
	.lookup = dir_lookup,
	.forget = dir_forget,
	.getattr = dir_getattr,
	.setattr = dir_setattr,
	.mknod = dir_mknod,
	.mkdir = dir_mkdir,
	.symlink = dir_symlink,
	.link = dir_link,
	.unlink = dir_unlink,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.readlink = dir_readlink,
	.statfs = dir_statfs,
	/* open files */
	.open = dir_open,
	.create = dir_create,
	.read = dir_read,
	.write = dir_write,
	.flush = NULL,          /* nothing to do at close(): saves a round trip */
	.fsync = dir_fsync,
	.release = dir_release,
	.fallocate = dir_fallocate,
	.copy_file_range = dir_copy_file_range,
	.lseek = dir_lseek,
	/* directories */
	.opendir = dir_opendir,
	.readdir = dir_readdir,
	.fsyncdir = dir_fsyncdir,
	.releasedir = dir_releasedir,
	/* extended attributes */
	.setxattr = dir_setxattr,
	.getxattr = dir_getxattr,
	.listxattr = dir_listxattr,
	.removexattr = dir_removexattr,
	/* change news */
	.watch_start = dir_watch_start,
	.watch_stop = dir_watch_stop,
	/* locks shared with other mounts and plain processes */
	.getlk = dir_getlk,
	.setlk = dir_setlk,
	.flock = dir_flock,
	.flush_owner = dir_flush_owner,
};
