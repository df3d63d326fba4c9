/*
** dir_file.c -- the dir backend's open files: open/create, read/write,
** fsync/release, fallocate, copy_file_range, lseek (no flush: nothing
** to do at close()).
**
** An open file holds one real fd on the backing file, opened through
** /proc/self/fd/N of the node's O_PATH fd, so it reaches exactly the inode
** the node verified (even after it was unlinked or renamed) and never
** follows a symlink inside the backing tree. O_APPEND is kept on the
** backing fd, so pwrite() appends atomically at the real end of file.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir_int.h"

static int file_new(struct dir_fs *d, uint64_t ino, int fd, int flags, struct eddy_file **fp)
{
	struct dir_file *f = calloc(1, sizeof(*f));

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->base.ino = ino;
	f->fd = fd;
	f->flags = flags;
	dir_files_add(d, f);
	*fp = &f->base;
	return 0;
}

static void fill_open(struct dir_fs *d, struct eddy_open *how)
{
	memset(how, 0, sizeof(*how));
	how->keep_cache = d->opt.keep_cache && !atomic_load(&d->degraded);
}

/* Flags the backing open gets: the caller's, minus creation, tty,
** O_NOFOLLOW (the kernel resolved the name already; the reopen goes
** through the /proc/self/fd magic link, which O_NOFOLLOW would refuse) and
** O_DIRECT (libfuse's buffers are not aligned for it; the kernel already
** bypasses its own page cache for the caller). */
static int backing_flags(int flags)
{
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_DIRECT);
	return flags | O_CLOEXEC;
}

int dir_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
	     struct eddy_file **fp, struct eddy_open *how)
{
	struct dir_fs *d = dir_fs(fs);
	char proc[64];
	mode_t type;
	int pfd, fd;

	(void)c;
	pfd = dir_node_fd_get(d, ino, &type);
	if (pfd < 0)
		return pfd;
	if (type == S_IFLNK) {
		dir_node_fd_put(d, ino);
		return -ELOOP;
	}
	dir_proc_path(proc, sizeof(proc), pfd);
	fd = open(proc, backing_flags(flags));
	dir_node_fd_put(d, ino);
	if (fd < 0)
		return -errno;
	if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
		dir_kill_priv(c, fd);
		dir_watch_own_change(d, ino, fd);
	}
	fill_open(d, how);
	return file_new(d, ino, fd, flags, fp);
}

int dir_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct eddy_entry *out, struct eddy_file **fp,
	       struct eddy_open *how)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_creds cr;
	struct stat st;
	uint64_t ino, birth;
	int pfd, fd = -1, err;

	err = dir_check_name(name);
	if (err)
		return err;
	pfd = dir_node_fd_get(d, parent, NULL);
	if (pfd < 0)
		return pfd;
	mode = dir_create_mode(pfd, mode, c);
	dir_watch_expect(d, parent, name, true, 1);
	err = dir_creds_enter(d, c, &cr);
	if (!err) {
		fd = openat(pfd, name, backing_flags(flags) | O_CREAT | O_NOFOLLOW |
					       (flags & O_EXCL), mode);
		if (fd < 0)
			err = -errno;
		dir_creds_leave(&cr);
	}
	if (err)
		dir_watch_expect(d, parent, name, true, -1);
	if (!err)
		err = dir_stat_at(fd, "", &st, &birth);
	if (!err)
		err = dir_node_ref(d, parent, name, &st, birth, &ino);
	dir_node_fd_put(d, parent);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	dir_fill_entry(d, ino, &st, out);
	fill_open(d, how);
	err = file_new(d, ino, fd, flags, fp);
	if (err)
		dir_node_forget(d, ino, 1);
	return err;
}

static int file_fd(struct eddy_file *f)
{
	return ((struct dir_file *)f)->fd;
}

ssize_t dir_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off)
{
	ssize_t n;

	(void)fs;
	n = pread(file_fd(f), buf, size, off);
	return n < 0 ? -errno : n;
}

ssize_t dir_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		  const void *buf, size_t size, off_t off)
{
	ssize_t n;

	dir_kill_priv(c, file_fd(f));
	n = pwrite(file_fd(f), buf, size, off);
	if (n < 0)
		return -errno;
	dir_watch_own_change(dir_fs(fs), f->ino, file_fd(f));
	return n;
}

int dir_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	int r;

	(void)fs;
	r = datasync ? fdatasync(file_fd(f)) : fsync(file_fd(f));
	return r < 0 ? -errno : 0;
}

void dir_release(struct eddy_fs *fs, struct eddy_file *f)
{
	struct dir_fs *d = dir_fs(fs);

	dir_files_remove(d, (struct dir_file *)f);
	dir_locks_release_file(d, (struct dir_file *)f);
	close(file_fd(f));
	free(f);
}

int dir_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	if (fallocate(file_fd(f), mode, off, len) < 0)
		return -errno;
	dir_watch_own_change(dir_fs(fs), f->ino, file_fd(f));
	return 0;
}

ssize_t dir_copy_file_range(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
			    struct eddy_file *out, off_t off_out, size_t len, int flags)
{
	ssize_t n;

	n = copy_file_range(file_fd(in), &off_in, file_fd(out), &off_out, len, (unsigned)flags);
	if (n < 0)
		return -errno;
	dir_watch_own_change(dir_fs(fs), out->ino, file_fd(out));
	return n;
}

off_t dir_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	off_t r;

	(void)fs;
	r = lseek(file_fd(f), off, whence);
	return r < 0 ? -errno : r;
}
