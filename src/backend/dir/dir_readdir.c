/*
** dir_readdir.c -- the dir backend's directory listing: opendir, readdir and
** readdirplus, fsyncdir, releasedir.
**
** Cookies are the backing filesystem's own d_off values (getdents64), so a
** listing resumes correctly while entries come and go, as on the backing
** filesystem itself. For readdirplus every entry but "." and ".." is looked
** up and referenced; an entry the caller's buffer did not take gives its
** reference back at once.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dir_int.h"

#define DIRBUF_SIZE 32768

struct linux_dirent64 {
	ino64_t d_ino;
	off64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int dir_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file **fp,
		struct eddy_open *how)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_file *f;
	int pfd, fd;

	(void)c;
	pfd = dir_node_fd_get(d, ino, NULL);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir_node_fd_put(d, ino);
	if (fd < 0)
		return -errno;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->buf = malloc(DIRBUF_SIZE))) {
		free(f);
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&f->lock, NULL);
	f->base.ino = ino;
	f->fd = fd;
	f->is_dir = true;
	dir_files_add(d, f);
	memset(how, 0, sizeof(*how));
	how->keep_cache = d->opt.keep_cache;
	how->cache_readdir = d->opt.cache_readdir && !atomic_load(&d->degraded);
	*fp = &f->base;
	return 0;
}

/* Fills the buffer from the current position; 0 at end of directory. */
static int refill(struct dir_file *f)
{
	long n = syscall(SYS_getdents64, f->fd, f->buf, DIRBUF_SIZE);

	if (n < 0)
		return -errno;
	f->len = (size_t)n;
	f->off = 0;
	f->eof = n == 0;
	return 0;
}

static int seek_to(struct dir_file *f, uint64_t cookie)
{
	if (cookie == f->pos && (f->len || f->eof || cookie == 0))
		return 0;
	if (lseek(f->fd, (off_t)cookie, SEEK_SET) < 0)
		return -errno;
	f->pos = cookie;
	f->len = f->off = 0;
	f->eof = false;
	return 0;
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

static int emit(struct dir_fs *d, struct dir_file *f, struct linux_dirent64 *de, bool plus,
		eddy_fill_fn fill, void *buf)
{
	struct eddy_entry e, *ep = NULL;
	struct stat st;
	int r;

	memset(&st, 0, sizeof(st));
	st.st_ino = de->d_ino;
	st.st_mode = (mode_t)DTTOIF(de->d_type);
	if (plus) {
		memset(&e, 0, sizeof(e));
		e.attr = st;
		ep = &e;
		if (!is_dot(de->d_name)) {
			struct stat bst;
			uint64_t ino, birth;

			if (dir_stat_at(f->fd, de->d_name, &bst, &birth) == 0 &&
			    dir_node_ref(d, f->base.ino, de->d_name, &bst, birth, &ino) == 0)
				dir_fill_entry(d, ino, &bst, &e);
			st = e.attr;
		}
	}
	r = fill(buf, de->d_name, &st, ep, (uint64_t)de->d_off);
	if (r && ep && ep->ino)
		dir_node_forget(d, ep->ino, 1);
	return r;
}

int dir_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *df,
		uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_file *f = (struct dir_file *)df;
	int err;

	(void)c;
	pthread_mutex_lock(&f->lock);
	err = seek_to(f, cookie);
	while (!err) {
		struct linux_dirent64 *de;

		if (f->off >= f->len) {
			if (f->eof)
				break;
			err = refill(f);
			if (err || f->eof)
				break;
		}
		de = (struct linux_dirent64 *)(f->buf + f->off);
		if (emit(d, f, de, plus, fill, buf))
			break;
		f->off += de->d_reclen;
		f->pos = (uint64_t)de->d_off;
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

int dir_fsyncdir(struct eddy_fs *fs, struct eddy_file *df, bool datasync)
{
	int fd = ((struct dir_file *)df)->fd;

	(void)fs;
	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

void dir_releasedir(struct eddy_fs *fs, struct eddy_file *df)
{
	struct dir_file *f = (struct dir_file *)df;

	dir_files_remove(dir_fs(fs), f);
	close(f->fd);
	pthread_mutex_destroy(&f->lock);
	free(f->buf);
	free(f);
}
