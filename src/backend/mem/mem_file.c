/*
** mem_file.c -- the mem backend's open files: open/create, read/write,
** fsync/release, fallocate, copy_file_range, lseek (no flush: nothing to
** do at close()).
**
** A handle points at its inode, which stays alive while it is open (even
** unlinked). Data operations take only the inode's lock: exclusive to
** change data or size, shared to read. Space is reserved before a change
** (-ENOSPC, nothing changed) and settled after it. Files grow to at most
** MEM_MAX_FILE_SIZE (1 PiB): beyond it -EFBIG, a write across it is short. O_APPEND writes go to the end of file as it is at the time of
** the write. Reads update atime the relatime way (once after a change,
** else once a day), unless the file was opened O_NOATIME.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem_int.h"

#define DAY_SECONDS 86400

static void fill_open(struct mem_fs *m, struct eddy_open *how, bool dir)
{
	memset(how, 0, sizeof(*how));
	how->keep_cache = m->opt.keep_cache;
	how->cache_readdir = dir && m->opt.cache_readdir;
}

/* A handle on IN (ns_lock held, so IN is alive while nopen is raised). */
static int handle_new(struct mem_fs *m, struct mem_inode *in, int flags, bool dir,
		      struct eddy_file **fp)
{
	struct mem_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->base.ino = in->ino;
	f->inode = in;
	f->flags = flags;
	f->is_dir = dir;
	atomic_fetch_add(&in->nopen, 1);
	mem_files_add(m, f);
	*fp = &f->base;
	return 0;
}

static bool writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* O_TRUNC of an open by C: empty the file (in->lock taken here). */
static void truncate_on_open(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *in)
{
	pthread_rwlock_wrlock(&in->lock);
	mem_space_adjust(m, -(long long)(in->u.pages.count * MEM_PAGE_SIZE));
	mem_pages_free(&in->u.pages);
	in->size = 0;
	mem_touch_locked(in, MEM_MTIME | MEM_CTIME);
	mem_kill_priv(c, in);
	pthread_rwlock_unlock(&in->lock);
}

/* Opens IN with FLAGS (ns_lock held). */
static int open_inode(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *in,
		      int flags, struct eddy_file **fp)
{
	int err;

	if (in->type == S_IFLNK)
		return -ELOOP;
	if (in->type == S_IFDIR && writable(flags))
		return -EISDIR;
	err = handle_new(m, in, flags, in->type == S_IFDIR, fp);
	if (!err && (flags & O_TRUNC) && writable(flags) && in->type == S_IFREG)
		truncate_on_open(m, c, in);
	return err;
}

int mem_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
	     struct eddy_file **fp, struct eddy_open *how)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	int err;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	err = in ? open_inode(m, c, in, flags, fp) : -ESTALE;
	pthread_rwlock_unlock(&m->ns_lock);
	if (!err)
		fill_open(m, how, false);
	return err;
}

int mem_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct eddy_entry *out, struct eddy_file **fp,
	       struct eddy_open *how)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *p, *in = NULL;
	struct mem_dirent *de;
	int err = mem_check_name(name);

	if (err)
		return err;
	pthread_rwlock_wrlock(&m->ns_lock);
	p = mem_dir_of(m, parent, &err);
	if (p) {
		de = mem_dir_find(&p->u.dir, name);
		if (de && (flags & O_EXCL)) {
			err = -EEXIST;
		} else if (de) {                /* O_CREAT of an existing name: open it */
			in = de->inode;
			err = open_inode(m, c, in, flags, fp);
		} else {
			err = mem_make(m, c, p, name, S_IFREG | (mode & 07777), 0, NULL, &in);
			if (!err && (err = handle_new(m, in, flags, false, fp)) < 0) {
				/* undo: nobody has seen the new file yet */
				mem_dir_remove(&p->u.dir, mem_dir_find(&p->u.dir, name));
				mem_inode_free(m, in);
			}
		}
	}
	if (!err)
		mem_fill_entry(m, in, out);
	pthread_rwlock_unlock(&m->ns_lock);
	if (!err)
		fill_open(m, how, false);
	return err;
}

static bool atime_due(const struct mem_inode *in, const struct timespec *now)
{
	const struct timespec *a = &in->atime;

	if (a->tv_sec < in->mtime.tv_sec ||
	    (a->tv_sec == in->mtime.tv_sec && a->tv_nsec <= in->mtime.tv_nsec))
		return true;
	if (a->tv_sec < in->ctime.tv_sec ||
	    (a->tv_sec == in->ctime.tv_sec && a->tv_nsec <= in->ctime.tv_nsec))
		return true;
	return now->tv_sec - a->tv_sec >= DAY_SECONDS;
}

ssize_t mem_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off)
{
	struct mem_file *mf = mem_file(f);
	struct mem_inode *in = mf->inode;
	struct timespec now;
	size_t n = 0;
	bool touch;

	(void)fs;
	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (off < 0)
		return -EINVAL;
	mem_now(&now);
	pthread_rwlock_rdlock(&in->lock);
	if ((uint64_t)off < in->size) {
		n = in->size - (uint64_t)off < size ? (size_t)(in->size - (uint64_t)off) : size;
		mem_pages_read(&in->u.pages, (uint64_t)off, buf, n);
	}
	touch = !(mf->flags & O_NOATIME) && atime_due(in, &now);
	pthread_rwlock_unlock(&in->lock);
	if (touch) {
		pthread_rwlock_wrlock(&in->lock);
		if (atime_due(in, &now))
			in->atime = now;
		pthread_rwlock_unlock(&in->lock);
	}
	return (ssize_t)n;
}

/* Settles a data change that reserved RESERVED pages and changed the
** page count from BEFORE to AFTER. */
static void settle(struct mem_fs *m, uint64_t reserved, uint64_t before, uint64_t after)
{
	mem_space_adjust(m, ((long long)after - (long long)before - (long long)reserved) *
				    MEM_PAGE_SIZE);
}

ssize_t mem_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		  const void *buf, size_t size, off_t off)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_file *mf = mem_file(f);
	struct mem_inode *in = mf->inode;
	uint64_t pos, need, before;
	ssize_t n;
	int err;

	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (!writable(mf->flags))
		return -EBADF;
	pthread_rwlock_wrlock(&in->lock);
	pos = (mf->flags & O_APPEND) ? in->size : (uint64_t)off;
	if (!(mf->flags & O_APPEND) && off < 0) {
		n = -EINVAL;
		goto out;
	}
	if (size == 0) {
		n = 0;
		goto out;
	}
	if (pos >= MEM_MAX_FILE_SIZE) {
		n = -EFBIG;
		goto out;
	}
	if (size > MEM_MAX_FILE_SIZE - pos)
		size = (size_t)(MEM_MAX_FILE_SIZE - pos);
	need = mem_pages_absent(&in->u.pages, pos, size);
	err = mem_space_reserve(m, need * MEM_PAGE_SIZE);
	if (err) {
		n = err;
		goto out;
	}
	before = in->u.pages.count;
	n = mem_pages_write(&in->u.pages, pos, buf, size);
	settle(m, need, before, in->u.pages.count);
	if (n > 0) {
		if (pos + (uint64_t)n > in->size)
			in->size = pos + (uint64_t)n;
		mem_touch_locked(in, MEM_MTIME | MEM_CTIME);
		mem_kill_priv(c, in);
	}
out:
	pthread_rwlock_unlock(&in->lock);
	return n;
}

int mem_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	(void)fs;
	(void)f;
	(void)datasync;
	return 0;
}

void mem_release(struct eddy_fs *fs, struct eddy_file *f)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_file *mf = mem_file(f);
	struct mem_inode *in = mf->inode;
	uint64_t ino = in->ino;
	bool unused;

	mem_files_remove(m, mf);
	pthread_rwlock_rdlock(&m->ns_lock);
	atomic_fetch_sub(&in->nopen, 1);
	unused = mem_inode_unused(in);
	pthread_rwlock_unlock(&m->ns_lock);
	if (unused)
		mem_inode_release(m, ino);
	free(mf);
}

int mem_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_file *mf = mem_file(f);
	struct mem_inode *in = mf->inode;
	int op = mode & ~FALLOC_FL_KEEP_SIZE;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t end, need = 0, before;
	int err;

	if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE)
		return -EOPNOTSUPP;
	if (op == FALLOC_FL_PUNCH_HOLE && !keep)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -ENODEV;
	if (!writable(mf->flags))
		return -EBADF;
	if ((uint64_t)off > MEM_MAX_FILE_SIZE || (uint64_t)len > MEM_MAX_FILE_SIZE - (uint64_t)off)
		return -EFBIG;
	end = (uint64_t)off + (uint64_t)len;
	pthread_rwlock_wrlock(&in->lock);
	if (op != FALLOC_FL_PUNCH_HOLE)
		need = mem_pages_absent(&in->u.pages, (uint64_t)off, (uint64_t)len);
	err = mem_space_reserve(m, need * MEM_PAGE_SIZE);
	if (!err) {
		before = in->u.pages.count;
		if (op == 0)
			err = mem_pages_allocate(&in->u.pages, (uint64_t)off, (uint64_t)len);
		else
			err = mem_pages_zero(&in->u.pages, (uint64_t)off, (uint64_t)len,
					     op == FALLOC_FL_ZERO_RANGE);
		settle(m, need, before, in->u.pages.count);
	}
	if (!err) {
		if (!keep && end > in->size)
			in->size = end;
		mem_touch_locked(in, MEM_MTIME | MEM_CTIME);
	}
	pthread_rwlock_unlock(&in->lock);
	return err;
}

/* Locks the inodes of a copy, in inode order (once if they are one). */
static void lock_pair(struct mem_inode *src, struct mem_inode *dst, bool lock)
{
	if (!lock) {
		pthread_rwlock_unlock(&dst->lock);
		if (src != dst)
			pthread_rwlock_unlock(&src->lock);
	} else if (src == dst) {
		pthread_rwlock_wrlock(&dst->lock);
	} else if (src->ino < dst->ino) {
		pthread_rwlock_rdlock(&src->lock);
		pthread_rwlock_wrlock(&dst->lock);
	} else {
		pthread_rwlock_wrlock(&dst->lock);
		pthread_rwlock_rdlock(&src->lock);
	}
}

/* Destination pages the source's present pages of [soff, soff+n) map to
** (at most this many pages are added by copying them to DOFF). */
static uint64_t copy_need(const struct mem_pages *src, uint64_t soff, uint64_t doff, uint64_t n)
{
	uint64_t idx = soff >> MEM_PAGE_SHIFT, f, need = 0, last = UINT64_MAX;

	while (mem_pages_next(src, idx, &f) && (f << MEM_PAGE_SHIFT) < soff + n) {
		uint64_t s0 = f << MEM_PAGE_SHIFT, s1 = s0 + MEM_PAGE_SIZE, d;

		if (s0 < soff)
			s0 = soff;
		if (s1 > soff + n)
			s1 = soff + n;
		for (d = (doff + s0 - soff) >> MEM_PAGE_SHIFT;
		     d <= (doff + s1 - soff - 1) >> MEM_PAGE_SHIFT; d++) {
			if (last == UINT64_MAX || d > last) {
				need++;
				last = d;
			}
		}
		idx = f + 1;
	}
	return need;
}

/* Copies the data of [soff, soff+n) of SRC to DOFF of DST, whose range
** has been zeroed: only the source's present pages are visited, and only
** the destination pages that receive non-zero bytes are written (a copy
** stays as sparse as its source). */
static int copy_pages(struct mem_pages *dst, const struct mem_pages *src, uint64_t soff,
		      uint64_t doff, uint64_t n)
{
	static const char zeros[MEM_PAGE_SIZE];
	char buf[MEM_PAGE_SIZE];
	uint64_t idx = soff >> MEM_PAGE_SHIFT, f;

	while (mem_pages_next(src, idx, &f) && (f << MEM_PAGE_SHIFT) < soff + n) {
		uint64_t s0 = f << MEM_PAGE_SHIFT, s1 = s0 + MEM_PAGE_SIZE;

		if (s0 < soff)
			s0 = soff;
		if (s1 > soff + n)
			s1 = soff + n;
		while (s0 < s1) {      /* in pieces that end at destination pages */
			uint64_t d = doff + s0 - soff;
			size_t len = MEM_PAGE_SIZE - (size_t)(d & (MEM_PAGE_SIZE - 1));

			if (len > s1 - s0)
				len = (size_t)(s1 - s0);
			mem_pages_read(src, s0, buf, len);
			if (memcmp(buf, zeros, len) != 0 &&
			    mem_pages_write(dst, d, buf, len) != (ssize_t)len)
				return -ENOMEM;
			s0 += len;
		}
		idx = f + 1;
	}
	return 0;
}

ssize_t mem_copy_file_range(struct eddy_fs *fs, struct eddy_file *fin, off_t off_in,
			    struct eddy_file *fout, off_t off_out, size_t len, int flags)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *src = mem_file(fin)->inode, *dst = mem_file(fout)->inode;
	uint64_t n = 0, need, before;
	ssize_t r = 0;

	if (flags)
		return -EINVAL;
	if (src->type != S_IFREG || dst->type != S_IFREG)
		return src->type == S_IFDIR || dst->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (off_in < 0 || off_out < 0)
		return -EINVAL;
	if (!writable(mem_file(fout)->flags) || (mem_file(fin)->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	lock_pair(src, dst, true);
	if ((uint64_t)off_in < src->size)
		n = src->size - (uint64_t)off_in < len ? src->size - (uint64_t)off_in : len;
	if (n == 0)
		goto out;
	if ((uint64_t)off_out >= MEM_MAX_FILE_SIZE) {
		r = -EFBIG;
		goto out;
	}
	if (n > MEM_MAX_FILE_SIZE - (uint64_t)off_out)
		n = MEM_MAX_FILE_SIZE - (uint64_t)off_out;
	if (src == dst && (uint64_t)off_in < (uint64_t)off_out + n &&
	    (uint64_t)off_out < (uint64_t)off_in + n) {
		r = -EINVAL;
		goto out;
	}
	need = copy_need(&src->u.pages, (uint64_t)off_in, (uint64_t)off_out, n);
	r = mem_space_reserve(m, need * MEM_PAGE_SIZE);
	if (r < 0)
		goto out;
	before = dst->u.pages.count;
	r = mem_pages_zero(&dst->u.pages, (uint64_t)off_out, n, false);
	if (!r)
		r = copy_pages(&dst->u.pages, &src->u.pages, (uint64_t)off_in,
			       (uint64_t)off_out, n);
	settle(m, need, before, dst->u.pages.count);
	if (!r) {
		if ((uint64_t)off_out + n > dst->size)
			dst->size = (uint64_t)off_out + n;
		mem_touch_locked(dst, MEM_MTIME | MEM_CTIME);
		r = (ssize_t)n;
	}
out:
	lock_pair(src, dst, false);
	return r;
}

off_t mem_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	struct mem_inode *in = mem_file(f)->inode;
	off_t r;

	(void)fs;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (in->type != S_IFREG)
		return -ENXIO;
	if (off < 0)
		return -ENXIO;
	pthread_rwlock_rdlock(&in->lock);
	r = mem_pages_seek(&in->u.pages, (uint64_t)off, in->size, whence == SEEK_HOLE);
	pthread_rwlock_unlock(&in->lock);
	return r;
}
