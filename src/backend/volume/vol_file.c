/*
** vol_file.c -- the volume backend's open files: open/create, read/write,
** flush/fsync/release, and fallocate, copy_file_range, lseek.
**
** Durability (vol_int.h, DATA): write() lands in the file's dirty chunks;
** flush (every close(2)), fsync and release write them out and make the
** result durable (blocks fsynced, then a synchronous=FULL commit), so a
** file is on disk once close(2) or fsync(2) has returned 0; a failed
** write-out (full disk: ENOSPC) is reported by that close or fsync.
** Reads see the dirty chunks. Data operations of one file are ordered by
** its data_lock. atime is not updated by reads (as with noatime).
** fallocate: mode 0 only sets the size (no space is set aside), punch
** hole and zero range drop whole chunks and zero the partial ones.
** lseek finds data and holes with the granularity of a block.
** copy_file_range answers -ENOSYS: the kernel then copies through read
** and write.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vol_int.h"

static bool writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

static void fill_open(struct vol_fs *v, struct eddy_open *how, bool dir)
{
	memset(how, 0, sizeof(*how));
	how->keep_cache = v->opt.keep_cache;
	how->cache_readdir = dir && v->opt.cache_readdir;
	/* close(2) writes the data out (and, with shared locks, drops the
	 * closing owner's POSIX locks: the exact close rule) */
	how->wants_flush = !dir;
}

/* O_TRUNC of an open by C: the file becomes empty (one transaction). */
static int truncate_on_open(struct vol_fs *v, const struct eddy_ctx *c, struct vol_inode *vi)
{
	struct vol_attr a;
	int err;

	pthread_rwlock_wrlock(&vi->data_lock);
	err = vol_data_flush(v, vi, false);
	if (!err) {
		pthread_mutex_lock(&v->db_lock);
		err = vol_tx_begin(v);
		if (!err)
			err = vol_attr_get(v, vi->ino, &a);
		if (!err)
			err = vol_data_truncate(v, &a, 0);
		if (!err) {
			a.mtime = a.ctime = vol_now();
			a.mode = S_IFREG | eddy_mode_after_write(c, S_IFREG, a.mode & 07777, a.gid);
			err = vol_attr_put(v, &a);
		}
		err = vol_tx_end(v, err);
		pthread_mutex_unlock(&v->db_lock);
		vi->unsynced = true;
	}
	pthread_rwlock_unlock(&vi->data_lock);
	return err;
}

static int open_ino(struct vol_fs *v, const struct eddy_ctx *c, uint64_t ino, int flags,
		    struct eddy_file **fp)
{
	struct vol_attr a;
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, ino, &a);
	if (!err && !S_ISLNK(a.mode))
		err = vol_may(v, c, &a, eddy_open_mask(flags));
	pthread_mutex_unlock(&v->db_lock);
	if (err)
		return err;
	if (S_ISLNK(a.mode))
		return -ELOOP;
	if (S_ISDIR(a.mode) && writable(flags))
		return -EISDIR;
	err = vol_handle_new(v, ino, flags, S_ISDIR(a.mode), fp);
	if (!err && (flags & O_TRUNC) && writable(flags) && S_ISREG(a.mode) &&
	    (err = truncate_on_open(v, c, vol_file(*fp)->vi)) < 0) {
		vol_handle_free(v, vol_file(*fp));
		*fp = NULL;
	}
	return err;
}

int vol_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
	     struct eddy_file **fp, struct eddy_open *how)
{
	struct vol_fs *v = vol_fs(fs);
	int err = open_ino(v, c, ino, flags, fp);

	if (!err)
		fill_open(v, how, false);
	return err;
}

int vol_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct eddy_entry *out, struct eddy_file **fp,
	       struct eddy_open *how)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	uint64_t ino = 0;
	bool made = false;
	int err = eddy_check_name(name);

	if (err)
		return err;
	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (!err) {
		int found = vol_dentry_get(v, parent, name, &ino);

		if (found == 0 && (flags & O_EXCL))
			err = -EEXIST;
		else if (found == 0)
			err = 0;                 /* O_CREAT of an existing name: open it */
		else if (found != -ENOENT)
			err = found;
		else if (!(err = vol_make(v, c, parent, name, S_IFREG | (mode & 07777), 0, NULL,
					  &a)))
			made = true;
		err = vol_tx_end(v, err);
	}
	/* the new inode is held by its reference before anyone can unlink it */
	if (!err && made)
		err = vol_fill_entry(v, &a, out);
	pthread_mutex_unlock(&v->db_lock);
	if (err)
		return err;
	if (made) {
		err = vol_handle_new(v, a.ino, flags, false, fp);
		if (err)
			vol_inode_unref(v, a.ino, 1, false);
	} else {
		err = open_ino(v, c, ino, flags, fp);
		if (!err) {
			pthread_mutex_lock(&v->db_lock);
			err = vol_attr_get(v, ino, &a);
			if (!err)
				err = vol_fill_entry(v, &a, out);
			pthread_mutex_unlock(&v->db_lock);
			if (err) {
				vol_release(fs, *fp);
				*fp = NULL;
			}
		}
	}
	if (!err)
		fill_open(v, how, false);
	return err;
}

/* The size of VI's file now (overlay, else the row); data_lock held. */
static int file_size(struct vol_fs *v, struct vol_inode *vi, struct vol_attr *a)
{
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, vi->ino, a);
	pthread_mutex_unlock(&v->db_lock);
	pthread_mutex_lock(&v->table_lock);
	if (vi->overlay)
		a->size = vi->size;
	pthread_mutex_unlock(&v->table_lock);
	return err;
}

ssize_t vol_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_inode *vi = vol_file(f)->vi;
	struct vol_attr a;
	ssize_t n;

	if (vol_file(f)->is_dir)
		return -EISDIR;
	if (off < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&vi->data_lock);
	n = file_size(v, vi, &a);
	if (!n && !S_ISREG(a.mode))
		n = -EINVAL;
	if (!n && (uint64_t)off < a.size) {
		if (size > a.size - (uint64_t)off)
			size = (size_t)(a.size - (uint64_t)off);
		n = vol_data_read(v, vi, buf, size, (uint64_t)off);
	}
	pthread_rwlock_unlock(&vi->data_lock);
	return n;
}

/* Clears setuid/setgid after a write by C, if the mode has them. */
static int kill_priv(struct vol_fs *v, const struct eddy_ctx *c, struct vol_attr *a)
{
	mode_t m = eddy_mode_after_write(c, S_IFREG, a->mode & 07777, a->gid);
	int err;

	if (m == (a->mode & 07777))
		return 0;
	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (!err) {
		a->mode = S_IFREG | m;
		err = vol_tx_end(v, vol_attr_put(v, a));
	}
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

ssize_t vol_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		  const void *buf, size_t size, off_t off)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_file *vf = vol_file(f);
	struct vol_inode *vi = vf->vi;
	struct vol_attr a;
	ssize_t n;

	if (vf->is_dir)
		return -EISDIR;
	if (!writable(vf->flags))
		return -EBADF;
	if (!(vf->flags & O_APPEND) && off < 0)
		return -EINVAL;
	if (size == 0)
		return 0;
	pthread_rwlock_wrlock(&vi->data_lock);
	n = file_size(v, vi, &a);
	if (!n && !S_ISREG(a.mode))
		n = -EINVAL;
	if (!n && (a.mode & (S_ISUID | S_ISGID)))
		n = kill_priv(v, c, &a);
	if (!n)
		n = vol_data_write(v, vi, buf, size, (vf->flags & O_APPEND) ? a.size : (uint64_t)off,
				   a.size);
	pthread_rwlock_unlock(&vi->data_lock);
	return n;
}

int vol_flush(struct eddy_fs *fs, struct eddy_file *f)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_inode *vi = vol_file(f)->vi;
	int err;

	pthread_rwlock_wrlock(&vi->data_lock);
	err = vol_data_flush(v, vi, true);
	pthread_rwlock_unlock(&vi->data_lock);
	return err;
}

int vol_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_inode *vi = vol_file(f)->vi;
	int err;

	(void)datasync;
	pthread_rwlock_wrlock(&vi->data_lock);
	err = vol_data_flush(v, vi, true);
	if (!err) {
		/* namespace changes too: fsync after create must keep the name */
		pthread_mutex_lock(&v->db_lock);
		err = vol_db_sync(v);
		pthread_mutex_unlock(&v->db_lock);
	}
	pthread_rwlock_unlock(&vi->data_lock);
	return err;
}

void vol_release(struct eddy_fs *fs, struct eddy_file *f)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_file *vf = vol_file(f);
	struct vol_inode *vi = vf->vi;

	if (!vf->is_dir) {
		pthread_rwlock_wrlock(&vi->data_lock);
		vol_data_flush(v, vi, true);
		pthread_rwlock_unlock(&vi->data_lock);
	}
	vol_handle_free(v, vf);
}

/* In a transaction: drops the chunks wholly inside [off, end) of A. */
static int drop_chunks(struct vol_fs *v, struct vol_attr *a, uint64_t off, uint64_t end)
{
	uint64_t first = (off + v->block_size - 1) / v->block_size, last = end / v->block_size;
	int err = 0;

	for (uint64_t idx = first; idx < last && !err; idx++) {
		sqlite3_stmt *s = vol_q(v, Q_CHUNK_GET);
		int64_t block = 0, len = 0;

		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, (int64_t)idx);
		if (sqlite3_step(s) == SQLITE_ROW) {
			block = sqlite3_column_int64(s, 0);
			len = sqlite3_column_int64(s, 1);
		}
		sqlite3_reset(s);
		if (!block)
			continue;
		s = vol_q(v, Q_CHUNK_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, (int64_t)idx);
		err = vol_exec(v, s);
		vol_tx_dead_block(v, (uint64_t)block);
		a->stored -= (uint64_t)len;
		v->tx_used -= len;
	}
	return err;
}

/* Zeroes the partial chunks at the edges of [off, end) (data_lock held). */
static int zero_edges(struct vol_fs *v, struct vol_inode *vi, uint64_t off, uint64_t end,
		      uint64_t size)
{
	uint64_t b = v->block_size, edges[2][2] = { { off, end }, { 0, 0 } };
	char *zeros;
	int err = 0;

	if (off / b != end / b || off % b == 0) {
		edges[0][1] = off % b ? (off / b + 1) * b : off;
		edges[1][0] = end / b * b > edges[0][1] ? end / b * b : edges[0][1];
		edges[1][1] = end;
	}
	zeros = calloc(1, v->block_size);
	if (!zeros)
		return -ENOMEM;
	for (int i = 0; i < 2 && !err; i++) {
		uint64_t from = edges[i][0], to = edges[i][1] < end ? edges[i][1] : end;
		ssize_t n;

		if (to <= from)
			continue;
		n = vol_data_write(v, vi, zeros, (size_t)(to - from), from, size);
		if (n < 0)
			err = (int)n;
	}
	free(zeros);
	return err;
}

int vol_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_file *vf = vol_file(f);
	struct vol_inode *vi = vf->vi;
	int op = mode & ~FALLOC_FL_KEEP_SIZE;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	struct vol_attr a;
	uint64_t end, zero_end;
	int err;

	if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE)
		return -EOPNOTSUPP;
	if (op == FALLOC_FL_PUNCH_HOLE && !keep)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (vf->is_dir)
		return -EISDIR;
	if (!writable(vf->flags))
		return -EBADF;
	if ((uint64_t)off > VOL_MAX_FILE_SIZE ||
	    (uint64_t)len > VOL_MAX_FILE_SIZE - (uint64_t)off)
		return -EFBIG;
	end = (uint64_t)off + (uint64_t)len;
	pthread_rwlock_wrlock(&vi->data_lock);
	err = vol_data_flush(v, vi, false);
	if (!err) {
		pthread_mutex_lock(&v->db_lock);
		err = vol_tx_begin(v);
		if (!err)
			err = vol_attr_get(v, vi->ino, &a);
		if (!err && !S_ISREG(a.mode))
			err = -ENODEV;
		zero_end = err ? 0 : end < a.size ? end : a.size;
		if (!err && op != 0)
			err = drop_chunks(v, &a, (uint64_t)off, zero_end);
		if (!err && !keep && end > a.size)
			a.size = end;
		if (!err) {
			a.mtime = a.ctime = vol_now();
			err = vol_attr_put(v, &a);
		}
		err = vol_tx_end(v, err);
		pthread_mutex_unlock(&v->db_lock);
		vi->unsynced = true;
		if (!err && op != 0 && zero_end > (uint64_t)off)
			err = zero_edges(v, vi, (uint64_t)off, zero_end, a.size);
	}
	pthread_rwlock_unlock(&vi->data_lock);
	return err;
}

ssize_t vol_copy_file_range(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
			    struct eddy_file *out, off_t off_out, size_t len, int flags)
{
	(void)fs;
	(void)in;
	(void)off_in;
	(void)out;
	(void)off_out;
	(void)len;
	(void)flags;
	return -ENOSYS;
}

/* The first chunk index >= IDX with data (DATA) or without (hole). */
static int next_chunk(struct vol_fs *v, uint64_t ino, uint64_t idx, bool data, uint64_t *found)
{
	sqlite3_stmt *s = vol_q(v, Q_CHUNK_FROM);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)idx);
	*found = UINT64_MAX;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t row = (uint64_t)sqlite3_column_int64(s, 0);

		if (data || row != idx) {
			*found = data ? row : idx;
			break;
		}
		idx++;
	}
	if (!data && *found == UINT64_MAX)
		*found = idx;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

/* SEEK_DATA / SEEK_HOLE with the granularity of a block: a chunk with a
** block is data (its zero tail too), a chunk without one is a hole. */
off_t vol_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_file *vf = vol_file(f);
	struct vol_inode *vi = vf->vi;
	struct vol_attr a;
	uint64_t idx = UINT64_MAX, pos;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (vf->is_dir || off < 0)
		return -ENXIO;
	pthread_rwlock_wrlock(&vi->data_lock);
	r = vol_data_flush(v, vi, false);
	if (!r) {
		pthread_mutex_lock(&v->db_lock);
		r = vol_attr_get(v, vi->ino, &a);
		if (!r && (uint64_t)off >= a.size)
			r = -ENXIO;
		if (!r)
			r = next_chunk(v, vi->ino, (uint64_t)off / v->block_size,
				       whence == SEEK_DATA, &idx);
		pthread_mutex_unlock(&v->db_lock);
	}
	pthread_rwlock_unlock(&vi->data_lock);
	if (r)
		return r;
	pos = idx == UINT64_MAX ? UINT64_MAX : idx * v->block_size;
	if (pos < (uint64_t)off)
		pos = (uint64_t)off;
	if (whence == SEEK_DATA)
		return pos >= a.size ? -ENXIO : (off_t)pos;
	return (off_t)(pos > a.size ? a.size : pos);
}
