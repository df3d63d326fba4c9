/*
** vol_data.c -- file data of the volume backend: dirty chunks in memory,
** their write-out into blocks, reads that see them, truncation.
** (vol_int.h, DATA, states the rules; the caller holds data_lock.)
**
** Space: a dirty chunk reserves, against the volume capacity, the bytes
** by which it outgrows its committed length; a write past the capacity is
** -ENOSPC at once. A chunk that holds only zeros is written out as a hole
** (no block). A write-out that fails (a full disk: -ENOSPC) keeps the
** chunks dirty, references nothing, and leaves the volume as it was; the
** error comes back from the next write that finds VOL_DIRTY_MAX chunks
** waiting, or from flush/fsync (close).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vol_int.h"

static bool all_zero(const char *p, size_t n);

static struct vol_chunk *chunk_find(struct vol_inode *vi, uint64_t idx)
{
	struct vol_chunk *ch;

	for (ch = vi->dirty; ch; ch = ch->next)
		if (ch->idx == idx)
			return ch;
	return NULL;
}

/* The committed chunk IDX of VI: block id (0: hole) and valid length. */
static int chunk_row(struct vol_fs *v, uint64_t ino, uint64_t idx, uint64_t *block,
		     uint32_t *len)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&v->db_lock);
	s = vol_q(v, Q_CHUNK_GET);
	if (!s) {
		pthread_mutex_unlock(&v->db_lock);
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)idx);
	rc = sqlite3_step(s);
	*block = 0;
	*len = 0;
	if (rc == SQLITE_ROW) {
		*block = (uint64_t)sqlite3_column_int64(s, 0);
		*len = (uint32_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	pthread_mutex_unlock(&v->db_lock);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

/* A dirty chunk for IDX holding the committed data. */
static int chunk_load(struct vol_fs *v, struct vol_inode *vi, uint64_t idx,
		      struct vol_chunk **out)
{
	struct vol_chunk *ch = calloc(1, sizeof(*ch));
	uint64_t block;
	uint32_t len;
	int err;

	if (!ch)
		return -ENOMEM;
	ch->buf = vol_buf_get(v, false);   /* bytes past len are never read */
	if (!ch->buf) {
		free(ch);
		return -ENOMEM;
	}
	err = chunk_row(v, vi->ino, idx, &block, &len);
	if (!err && block)
		err = vol_block_read(v, block, len, 0, len, ch->buf);
	if (err) {
		vol_buf_put(v, ch->buf);
		free(ch);
		return err;
	}
	ch->idx = idx;
	ch->len = ch->base_len = block ? len : 0;
	ch->next = vi->dirty;
	vi->dirty = ch;
	vi->ndirty++;
	*out = ch;
	return 0;
}

/* CH changes: a block written ahead with its old bytes is no use. */
static void drop_early(struct vol_fs *v, struct vol_chunk *ch)
{
	if (ch->early) {
		vol_block_unlink(v, ch->early);
		ch->early = 0;
	}
}

/* Writes full chunks ahead and parks them (vol_int.h, DATA (2)): the
** block file holds the bytes, the buffer goes back to the pool. Errors
** are left for the write-out, which writes the chunk then. */
static void write_ahead(struct vol_fs *v, struct vol_inode *vi)
{
	struct vol_chunk *ch;

	for (ch = vi->dirty; ch; ch = ch->next) {
		uint64_t id;
		int err;

		if (ch->early || ch->len != v->block_size || all_zero(ch->buf, ch->len))
			continue;
		pthread_mutex_lock(&v->db_lock);
		err = vol_block_alloc(v, &id);
		pthread_mutex_unlock(&v->db_lock);
		if (err || vol_block_write(v, id, ch->buf, ch->len) != 0)
			continue;
		ch->early = id | VOL_BLOCK_EARLY;
		vol_buf_put(v, ch->buf);
		ch->buf = NULL;
		vi->nparked++;
	}
}

/* A parked chunk gets its bytes back from its early block, which it
** then no longer needs (it is about to change). */
static int unpark(struct vol_fs *v, struct vol_inode *vi, struct vol_chunk *ch)
{
	int err;

	if (ch->buf)
		return 0;
	if (!(ch->buf = vol_buf_get(v, false)))
		return -ENOMEM;
	if ((err = vol_block_read(v, ch->early, ch->len, 0, ch->len, ch->buf)) < 0) {
		vol_buf_put(v, ch->buf);
		ch->buf = NULL;
		return err;
	}
	vi->nparked--;
	return 0;
}

static void chunk_free(struct vol_fs *v, struct vol_chunk *ch)
{
	atomic_fetch_sub(&v->reserved, (long long)ch->reserved);
	vol_buf_put(v, ch->buf);
	free(ch);
}

/* Counts GROW more bytes of CH against the capacity. */
static int reserve(struct vol_fs *v, struct vol_chunk *ch, uint32_t new_len)
{
	uint64_t want = new_len > ch->base_len ? new_len - ch->base_len : 0;
	int err = 0;

	if (want <= ch->reserved)
		return 0;
	if (v->capacity) {
		pthread_mutex_lock(&v->db_lock);
		err = vol_space_check(v, (int64_t)(want - ch->reserved));
		pthread_mutex_unlock(&v->db_lock);
	}
	if (!err) {
		atomic_fetch_add(&v->reserved, (long long)(want - ch->reserved));
		ch->reserved = want;
	}
	return err;
}

ssize_t vol_data_write(struct vol_fs *v, struct vol_inode *vi, const void *buf, size_t size,
		       uint64_t off, uint64_t cur_size)
{
	const char *p = buf;
	size_t done = 0;
	bool full = false;
	int err = 0;

	if (off >= VOL_MAX_FILE_SIZE)
		return -EFBIG;
	/* at most VOL_DIRTY_MAX chunks wait in memory (and VOL_PARKED_MAX
	 * parked): when they cannot be written out (a full disk) the write
	 * fails instead of piling up */
	if ((vi->ndirty - vi->nparked >= VOL_DIRTY_MAX || vi->nparked >= VOL_PARKED_MAX) &&
	    (err = vol_data_flush(v, vi, false)) < 0)
		return err;
	if (size > VOL_MAX_FILE_SIZE - off)
		size = (size_t)(VOL_MAX_FILE_SIZE - off);
	while (done < size) {
		uint64_t pos = off + done, idx = pos / v->block_size;
		uint32_t coff = (uint32_t)(pos % v->block_size);
		size_t n = v->block_size - coff;
		struct vol_chunk *ch = chunk_find(vi, idx);

		if (n > size - done)
			n = size - done;
		if (!ch && (err = chunk_load(v, vi, idx, &ch)) < 0)
			break;
		if ((err = unpark(v, vi, ch)) < 0)
			break;
		if (coff + n > ch->len && (err = reserve(v, ch, (uint32_t)(coff + n))) < 0)
			break;
		drop_early(v, ch);
		if (coff > ch->len)                /* a gap reads as zeros */
			memset(ch->buf + ch->len, 0, coff - ch->len);
		memcpy(ch->buf + coff, p + done, n);
		if (coff + n > ch->len)
			ch->len = (uint32_t)(coff + n);
		full |= coff + n == v->block_size;
		done += n;
	}
	if (done) {
		int64_t now = vol_now();

		pthread_mutex_lock(&v->table_lock);
		if (!vi->overlay)
			vi->size = cur_size;
		vi->overlay = true;
		if (off + done > vi->size)
			vi->size = off + done;
		vi->mtime = vi->ctime = now;
		pthread_mutex_unlock(&v->table_lock);
	}
	if (done && (vi->ndirty - vi->nparked > VOL_DIRTY_MAX || vi->nparked > VOL_PARKED_MAX))
		vol_data_flush(v, vi, false);   /* an error shows at fsync/close */
	else if (full)
		write_ahead(v, vi);
	return done ? (ssize_t)done : err;
}

ssize_t vol_data_read(struct vol_fs *v, struct vol_inode *vi, void *buf, size_t size,
		      uint64_t off)
{
	char *p = buf;
	size_t done = 0;
	int err = 0;

	while (done < size) {
		uint64_t pos = off + done, idx = pos / v->block_size, block;
		uint32_t coff = (uint32_t)(pos % v->block_size), len;
		size_t n = v->block_size - coff, have;
		struct vol_chunk *ch = chunk_find(vi, idx);

		if (n > size - done)
			n = size - done;
		if (ch) {
			have = coff >= ch->len ? 0 : ch->len - coff < n ? ch->len - coff : n;
			if (!ch->buf && have &&
			    (err = vol_block_read(v, ch->early, ch->len, coff, (uint32_t)have,
						  p + done)) < 0)
				break;
			if (ch->buf)
				memcpy(p + done, ch->buf + coff, have);
			memset(p + done + have, 0, n - have);
			done += n;
			continue;
		}
		if ((err = chunk_row(v, vi->ino, idx, &block, &len)) < 0)
			break;
		if (coff == 0 && !err) {
			uint64_t next;
			uint32_t next_len;

			if (chunk_row(v, vi->ino, idx + 1, &next, &next_len) == 0 && next)
				vol_block_prefetch(v, next);
		}
		have = !block || coff >= len ? 0 : len - coff < n ? len - coff : n;
		if (have && (err = vol_block_read(v, block, len, coff, (uint32_t)have, p + done)) < 0)
			break;
		memset(p + done + have, 0, n - have);
		done += n;
	}
	/* all or nothing: the kernel takes a short read for the end of the
	 * file, so a bad block past good ones fails the whole request (a
	 * smaller read of the good part then succeeds) */
	return err < 0 ? err : (ssize_t)done;
}

static bool all_zero(const char *p, size_t n)
{
	static const char zeros[4096];

	while (n) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);

		if (memcmp(p, zeros, k) != 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* In the open transaction: chunk CH of A now is block BLOCK (0: a hole). */
static int chunk_commit(struct vol_fs *v, struct vol_attr *a, struct vol_chunk *ch,
			uint64_t block)
{
	uint64_t old_block;
	uint32_t old_len;
	sqlite3_stmt *s = vol_q(v, Q_CHUNK_GET);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)a->ino);
	sqlite3_bind_int64(s, 2, (int64_t)ch->idx);
	rc = sqlite3_step(s);
	old_block = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	old_len = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return vol_db_errno(rc);
	if (old_block)
		vol_tx_dead_block(v, old_block);
	s = vol_q(v, block ? Q_CHUNK_PUT : Q_CHUNK_DEL);
	sqlite3_bind_int64(s, 1, (int64_t)a->ino);
	sqlite3_bind_int64(s, 2, (int64_t)ch->idx);
	if (block) {
		sqlite3_bind_int64(s, 3, (int64_t)block);
		sqlite3_bind_int64(s, 4, ch->len);
	}
	if ((rc = vol_exec(v, s)) < 0)
		return rc;
	a->stored = a->stored - old_len + (block ? ch->len : 0);
	v->tx_used += (int64_t)(block ? ch->len : 0) - (int64_t)old_len;
	return 0;
}

/* Writes the dirty chunks into blocks (ids in BLOCKS, 0 for holes): the
** chunks not written ahead are written now the same way, then all are
** made durable and named together (one journal commit on ext4/XFS). */
static int write_blocks(struct vol_fs *v, struct vol_inode *vi, uint64_t *blocks)
{
	struct vol_dirs dirs = VOL_DIRS_INIT;
	struct vol_chunk *ch;
	uint64_t *ids;
	size_t i, n = 0;
	int err = 0;

	if (!(ids = calloc(vi->ndirty, sizeof(*ids))))
		return -ENOMEM;
	for (ch = vi->dirty, i = 0; ch && !err; ch = ch->next, i++) {
		uint64_t id;

		blocks[i] = ch->early;
		if (!ch->early && !all_zero(ch->buf, ch->len)) {
			pthread_mutex_lock(&v->db_lock);
			err = vol_block_alloc(v, &id);
			pthread_mutex_unlock(&v->db_lock);
			if (!err && !(err = vol_block_write(v, id, ch->buf, ch->len)))
				blocks[i] = id | VOL_BLOCK_EARLY;
		}
		if (blocks[i])
			ids[n++] = blocks[i];
	}
	/* a parked chunk has no other copy: on failure nothing changes */
	if (!err)
		err = vol_block_sync(v, ids, n, &dirs);
	if (!err)
		err = vol_block_sync_dirs(v, &dirs);
	free(ids);
	if (!err)
		for (i = 0; i < vi->ndirty; i++)
			blocks[i] &= ~VOL_BLOCK_EARLY;
	return err;
}

/* After a failed write-out: the blocks it made (not the early ones,
** which their chunks keep) go, under either name. */
static void unlink_new_blocks(struct vol_fs *v, struct vol_inode *vi, const uint64_t *blocks)
{
	struct vol_chunk *ch;
	size_t i;

	for (ch = vi->dirty, i = 0; ch; ch = ch->next, i++)
		if (blocks[i] && !ch->early)
			vol_block_unlink(v, blocks[i]);
}

int vol_data_flush(struct vol_fs *v, struct vol_inode *vi, bool durable)
{
	struct vol_chunk *ch;
	struct vol_attr a;
	uint64_t *blocks;
	size_t i;
	int err;

	if (!vi->dirty) {
		if (!durable || !vi->unsynced)
			return 0;
		pthread_mutex_lock(&v->db_lock);
		err = vol_db_sync(v);
		pthread_mutex_unlock(&v->db_lock);
		if (!err)
			vi->unsynced = false;
		return err;
	}
	blocks = calloc(vi->ndirty, sizeof(*blocks));
	if (!blocks)
		return -ENOMEM;
	err = write_blocks(v, vi, blocks);
	if (err) {
		unlink_new_blocks(v, vi, blocks);
		free(blocks);
		return err;
	}
	pthread_mutex_lock(&v->db_lock);
	err = vol_tx_begin(v);
	if (!err)
		err = vol_attr_get(v, vi->ino, &a);
	for (ch = vi->dirty, i = 0; ch && !err; ch = ch->next, i++)
		err = chunk_commit(v, &a, ch, blocks[i]);
	if (!err) {
		pthread_mutex_lock(&v->table_lock);
		a.size = vi->size;
		a.mtime = vi->mtime;
		a.ctime = vi->ctime;
		pthread_mutex_unlock(&v->table_lock);
		err = vol_attr_put(v, &a);
	}
	err = vol_tx_end(v, err);
	if (err) {
		/* nothing references the new blocks; the chunks stay dirty */
		pthread_mutex_unlock(&v->db_lock);
		unlink_new_blocks(v, vi, blocks);
		free(blocks);
		return err;
	}
	pthread_mutex_lock(&v->table_lock);
	vi->overlay = false;
	pthread_mutex_unlock(&v->table_lock);
	if (durable)
		err = vol_db_sync(v);
	pthread_mutex_unlock(&v->db_lock);
	free(blocks);
	while (vi->dirty) {
		ch = vi->dirty;
		vi->dirty = ch->next;
		ch->early = 0;              /* referenced now */
		chunk_free(v, ch);
	}
	vi->ndirty = vi->nparked = 0;
	vi->unsynced = !durable || err;
	return err;
}

void vol_data_discard(struct vol_fs *v, struct vol_inode *vi)
{
	while (vi->dirty) {
		struct vol_chunk *ch = vi->dirty;

		vi->dirty = ch->next;
		drop_early(v, ch);
		chunk_free(v, ch);
	}
	vi->ndirty = vi->nparked = 0;
	pthread_mutex_lock(&v->table_lock);
	vi->overlay = false;
	pthread_mutex_unlock(&v->table_lock);
}

int vol_data_truncate(struct vol_fs *v, struct vol_attr *a, uint64_t size)
{
	uint64_t keep = (size + v->block_size - 1) / v->block_size;
	uint32_t tail = (uint32_t)(size % v->block_size);
	sqlite3_stmt *s;
	int64_t freed = 0;
	int rc, err;

	if (size < a->size) {
		s = vol_q(v, Q_CHUNK_FROM);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, (int64_t)keep);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			vol_tx_dead_block(v, (uint64_t)sqlite3_column_int64(s, 1));
			freed += sqlite3_column_int64(s, 2);
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return vol_db_errno(rc);
		s = vol_q(v, Q_CHUNK_DEL_FROM);
		sqlite3_bind_int64(s, 1, (int64_t)a->ino);
		sqlite3_bind_int64(s, 2, (int64_t)keep);
		if ((err = vol_exec(v, s)) < 0)
			return err;
		if (tail) {
			s = vol_q(v, Q_CHUNK_GET);
			sqlite3_bind_int64(s, 1, (int64_t)a->ino);
			sqlite3_bind_int64(s, 2, (int64_t)(size / v->block_size));
			rc = sqlite3_step(s);
			int64_t len = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;

			sqlite3_reset(s);
			if (len > tail) {
				s = vol_q(v, Q_CHUNK_TRIM);
				sqlite3_bind_int64(s, 1, (int64_t)a->ino);
				sqlite3_bind_int64(s, 2, (int64_t)(size / v->block_size));
				sqlite3_bind_int64(s, 3, tail);
				if ((err = vol_exec(v, s)) < 0)
					return err;
				freed += len - tail;
			}
		}
	}
	a->stored -= (uint64_t)freed;
	v->tx_used -= freed;
	a->size = size;
	return 0;
}
