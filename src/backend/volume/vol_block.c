/*
** vol_block.c -- the block folder of a volume, and the cache of decoded
** blocks that reads go through.
**
** Guarantees:
**   1. A block file is never changed once it has its name: it is written
**      as blocks/XX/<id>.tmp (at once when its chunk fills up, or at the
**      write-out), and at the write-out its data is waited for (and
**      fdatasynced, unless the filesystem's journal orders commits), it
**      is renamed to blocks/XX/<id>, and the folders are fsynced (see
**      vol_block_sync) before any transaction refers to it. Ids come from a counter persisted in
**      meta.block_hwm in steps of VOL_BLOCK_ID_BATCH (one UPDATE ...
**      RETURNING in its own transaction, outside any other), so an id is
**      never handed out twice, across crashes and across mounts.
**   2. Every read verifies the header and the XXH3-64 checksum of the
**      stored bytes, and zstd-decodes compressed blocks; a missing,
**      short or corrupt block is -EIO (and counted in bad_blocks).
**   3. The cache holds VOL_CACHE_BLOCKS decoded blocks by id (LRU). Blocks
**      are immutable, so a cached block is never stale. A block is read
**      once: readers that want it while another thread loads it wait. A reader that
**      enters a chunk at its start has the next block read ahead
**      (vol_block_prefetch: the kernel reads it while this one is served).
*/
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "vol_int.h"

#define BLOCK_MAGIC "EDDYBLK1"
#define FLAG_ZSTD 1u
#define ZSTD_LEVEL 1

struct block_header {
	char magic[8];
	uint32_t raw_len;          /* little-endian */
	uint32_t stored_len;
	uint32_t flags;
	uint32_t pad;
	uint64_t hash;             /* XXH3-64 of the stored bytes */
};

_Static_assert(sizeof(struct block_header) == 32, "block header is 32 bytes");

static void block_name(uint64_t id, char *buf, size_t size, bool tmp)
{
	snprintf(buf, size, "%02x/%016" PRIx64 "%s", (unsigned)(id & 0xff), id, tmp ? ".tmp" : "");
}

int vol_block_alloc(struct vol_fs *v, uint64_t *id)
{
	if (v->next_block >= v->block_hwm) {
		/* one statement: atomic against every other mount's batch */
		sqlite3_stmt *s = vol_q(v, Q_BLOCK_HWM);
		int rc;

		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, VOL_BLOCK_ID_BATCH);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			v->block_hwm = (uint64_t)sqlite3_column_int64(s, 0);
			v->next_block = v->block_hwm - VOL_BLOCK_ID_BATCH;
		}
		sqlite3_reset(s);
		if (rc != SQLITE_ROW)
			return rc == SQLITE_DONE ? -EIO : vol_db_errno(rc);
	}
	*id = v->next_block++;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vol_block_write(struct vol_fs *v, uint64_t id, const void *data, uint32_t len)
{
	struct block_header h;
	char tmp[64];
	void *packed = NULL;
	const void *payload = data;
	uint32_t stored = len, flags = 0;
	int fd, err;

	if (v->compress) {
		size_t bound = ZSTD_compressBound(len);

		packed = malloc(bound);
		if (packed) {
			size_t n = ZSTD_compress(packed, bound, data, len, ZSTD_LEVEL);

			if (!ZSTD_isError(n) && n < len) {
				payload = packed;
				stored = (uint32_t)n;
				flags = FLAG_ZSTD;
			}
		}
	}
	memcpy(h.magic, BLOCK_MAGIC, 8);
	h.raw_len = htole32(len);
	h.stored_len = htole32(stored);
	h.flags = htole32(flags);
	h.pad = 0;
	h.hash = htole64(XXH3_64bits(payload, stored));
	block_name(id, tmp, sizeof(tmp), true);
	fd = openat(v->blocks_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(packed);
		return -errno;
	}
	err = write_all(fd, &h, sizeof(h));
	if (!err)
		err = write_all(fd, payload, stored);
	if (!err)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);   /* a hint */
	close(fd);
	free(packed);
	if (err) {
		unlinkat(v->blocks_fd, tmp, 0);
		return err;
	}
	atomic_fetch_add(&v->blocks_written, 1);
	return 0;                   /* named by vol_block_sync */
}

/* Block ID written ahead: its data on the disk (the kernel's writeback
** waited for; each file's fdatasync too unless the journal's commit will
** cover it), then its final name. A block already named is only synced. */
static int sync_one(struct vol_fs *v, uint64_t id, struct vol_dirs *dirs)
{
	char tmp[64], name[64];
	bool named = false;
	int fd, err = 0;

	block_name(id, tmp, sizeof(tmp), true);
	block_name(id, name, sizeof(name), false);
	fd = openat(v->blocks_fd, tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		named = true;           /* an earlier, failed sync got this far */
		fd = openat(v->blocks_fd, name, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			    SYNC_FILE_RANGE_WAIT_AFTER) < 0 ||
	    (!v->journal_orders && fdatasync(fd) < 0))
		err = -errno;
	close(fd);
	if (!err && !named && renameat(v->blocks_fd, tmp, v->blocks_fd, name) < 0)
		err = -errno;
	dirs->mark[id & 0xff] = 1;
	dirs->last = (int)(id & 0xff);
	return err;
}

/*
** On a journaling filesystem that orders its commits (ext4, XFS:
** journal_orders) the blocks' data is waited for first, then all are
** renamed: every allocation of their data then lies in a journal
** transaction no later than the renames', and vol_block_sync_dirs' fsync
** of the folder renamed in last commits that transaction and every one
** before it, flushing the disk's cache first: one commit per write-out
** instead of a cache flush per block and per folder.
** Elsewhere each block is fdatasynced.
*/
int vol_block_sync(struct vol_fs *v, const uint64_t *ids, size_t n, struct vol_dirs *dirs)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++)
		err = sync_one(v, ids[i] & ~VOL_BLOCK_EARLY, dirs);
	return err;
}

/* The filesystem type of FD's mount, from /proc/self/mountinfo (ext2
** and ext4 share a magic number, and ext2 has no journal). */
bool vol_journal_orders(int fd)
{
	char line[4096], want[32];
	struct stat st;
	bool yes = false;
	FILE *f;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/self/mountinfo", "re")))
		return false;
	snprintf(want, sizeof(want), " %u:%u ", major(st.st_dev), minor(st.st_dev));
	while (fgets(line, sizeof(line), f)) {
		char *dash, type[32];

		if (!strstr(line, want) || !(dash = strstr(line, " - ")) ||
		    sscanf(dash + 3, "%31s", type) != 1)
			continue;
		yes = !strcmp(type, "ext4") || !strcmp(type, "ext3") || !strcmp(type, "xfs");
		break;
	}
	fclose(f);
	return yes;
}

int vol_block_sync_dirs(struct vol_fs *v, const struct vol_dirs *dirs)
{
	for (int i = 0; i < 256; i++) {
		char sub[4];
		int fd, err = 0;

		if (!dirs->mark[i] || (v->journal_orders && i != dirs->last))
			continue;
		snprintf(sub, sizeof(sub), "%02x", i);
		fd = openat(v->blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fsync(fd) < 0)
			err = -errno;
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

void vol_block_unlink(struct vol_fs *v, uint64_t id)
{
	char name[64];

	block_name(id & ~VOL_BLOCK_EARLY, name, sizeof(name), false);
	unlinkat(v->blocks_fd, name, 0);
	if (id & VOL_BLOCK_EARLY) {
		block_name(id & ~VOL_BLOCK_EARLY, name, sizeof(name), true);
		unlinkat(v->blocks_fd, name, 0);
	}
}

char *vol_buf_get(struct vol_fs *v, bool zero)
{
	char *buf = NULL;

	pthread_mutex_lock(&v->pool_lock);
	if (v->npool)
		buf = v->pool[--v->npool];
	pthread_mutex_unlock(&v->pool_lock);
	if (!buf)
		return zero ? calloc(1, v->block_size) : malloc(v->block_size);
	if (zero)
		memset(buf, 0, v->block_size);
	return buf;
}

void vol_buf_put(struct vol_fs *v, char *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&v->pool_lock);
	if (v->npool < VOL_POOL_BUFS) {
		v->pool[v->npool++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&v->pool_lock);
	free(buf);
}

int vol_block_decode(int fd, uint32_t block_size, char *data, uint32_t *raw_len)
{
	struct block_header h;
	char *stored = NULL;
	uint32_t raw, slen, flags;
	struct stat st;
	int err = -EIO;

	if (fstat(fd, &st) < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, BLOCK_MAGIC, 8) != 0)
		return -EIO;
	raw = le32toh(h.raw_len);
	slen = le32toh(h.stored_len);
	flags = le32toh(h.flags);
	if (raw > block_size || slen > ZSTD_compressBound(block_size) ||
	    (uint64_t)st.st_size != sizeof(h) + slen || (flags & ~FLAG_ZSTD))
		return -EIO;
	/* uncompressed blocks are read in place, compressed ones beside */
	stored = (flags & FLAG_ZSTD) ? malloc(slen ? slen : 1) : data;
	if (!stored)
		return -ENOMEM;
	if ((!(flags & FLAG_ZSTD) && slen != raw) ||
	    pread(fd, stored, slen, sizeof(h)) != (ssize_t)slen ||
	    XXH3_64bits(stored, slen) != le64toh(h.hash))
		goto out;
	if (flags & FLAG_ZSTD) {
		size_t n = ZSTD_decompress(data, raw, stored, slen);

		if (ZSTD_isError(n) || n != raw)
			goto out;
	}
	*raw_len = raw;
	err = 0;
out:
	if (stored != data)
		free(stored);
	return err;
}

/* Reads and checks block ID into a pool buffer (bytes past what the block
** holds are undefined: readers stop at the chunk's valid length). */
static int block_load(struct vol_fs *v, uint64_t id, uint32_t len, char **out)
{
	char name[64];
	char *data = NULL;
	uint32_t raw;
	int fd, err = -EIO;

	(void)len;
	/* a block written ahead has its temporary name until vol_block_sync */
	block_name(id & ~VOL_BLOCK_EARLY, name, sizeof(name), (id & VOL_BLOCK_EARLY) != 0);
	fd = openat(v->blocks_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && (id & VOL_BLOCK_EARLY)) {
		block_name(id & ~VOL_BLOCK_EARLY, name, sizeof(name), false);
		fd = openat(v->blocks_fd, name, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		goto out;
	/* one read of the whole block rather than the kernel's small
	 * readahead steps on a file it has not seen read yet */
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	data = vol_buf_get(v, false);
	err = data ? vol_block_decode(fd, v->block_size, data, &raw) : -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		vol_buf_put(v, data);
		if (err == -EIO)
			atomic_fetch_add(&v->bad_blocks, 1);
		return err;
	}
	atomic_fetch_add(&v->blocks_read, 1);
	*out = data;
	return 0;
}

void vol_block_prefetch(struct vol_fs *v, uint64_t id)
{
	char name[64];
	int fd;

	block_name(id, name, sizeof(name), false);
	fd = openat(v->blocks_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		close(fd);
	}
}

void vol_cache_init(struct vol_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
}

void vol_cache_free(struct vol_fs *v)
{
	struct vol_cache *c = &v->cache;

	for (int i = 0; i < VOL_CACHE_BLOCKS; i++)
		free(c->e[i].data);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	while (v->npool)
		free(v->pool[--v->npool]);
}

/* cache lock held: the entry for ID, or NULL. */
static struct vol_cache_entry *cache_find(struct vol_cache *c, uint64_t id)
{
	for (int i = 0; i < VOL_CACHE_BLOCKS; i++)
		if (c->e[i].block == id)
			return &c->e[i];
	return NULL;
}

/* cache lock held: the least recently used entry nobody loads or reads. */
static struct vol_cache_entry *cache_victim(struct vol_cache *c)
{
	struct vol_cache_entry *victim = NULL;

	for (int i = 0; i < VOL_CACHE_BLOCKS; i++)
		if (!c->e[i].loading && !c->e[i].pins &&
		    (!victim || c->e[i].used < victim->used))
			victim = &c->e[i];
	return victim;
}

/* Block ID (LEN valid bytes) in the cache, pinned: 0 and *OUT; -EAGAIN
** when every entry is being loaded or read; -EIO. A block is loaded once:
** readers that want it while another loads it wait. */
int vol_block_pin(struct vol_fs *v, uint64_t id, uint32_t len, struct vol_cache_entry **out)
{
	struct vol_cache *c = &v->cache;
	struct vol_cache_entry *e;
	char *data, *old = NULL;
	int err;

	pthread_mutex_lock(&c->lock);
	while ((e = cache_find(c, id)) && e->loading)
		pthread_cond_wait(&c->loaded, &c->lock);
	if (e && e->len == len) {
		e->used = ++c->clock;
		e->pins++;
		pthread_mutex_unlock(&c->lock);
		atomic_fetch_add(&v->cache_hits, 1);
		*out = e;
		return 0;
	}
	if (e && e->pins)
		e = NULL;               /* in use with another length: not here */
	if (!e)
		e = cache_victim(c);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -EAGAIN;
	}
	old = e->data;
	e->data = NULL;
	e->block = id;
	e->loading = true;
	pthread_mutex_unlock(&c->lock);
	vol_buf_put(v, old);
	err = block_load(v, id, len, &data);
	pthread_mutex_lock(&c->lock);
	e->loading = false;
	if (err) {
		e->block = 0;
	} else {
		e->data = data;
		e->len = len;
		e->used = ++c->clock;
		e->pins++;
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	*out = e;
	return err;
}

void vol_block_unpin(struct vol_fs *v, struct vol_cache_entry *e)
{
	pthread_mutex_lock(&v->cache.lock);
	e->pins--;
	pthread_mutex_unlock(&v->cache.lock);
}

/* OFF + N <= LEN: the caller zero-fills past the valid length. */
int vol_block_read(struct vol_fs *v, uint64_t id, uint32_t len, uint32_t off, uint32_t n,
		   void *dst)
{
	struct vol_cache_entry *e;
	char *data;
	int err = vol_block_pin(v, id, len, &e);

	if (!err) {
		memcpy(dst, e->data + off, n);      /* the pin keeps the entry */
		vol_block_unpin(v, e);
		return 0;
	}
	if (err != -EAGAIN)
		return err;
	/* every entry is being loaded: read it for this call alone */
	if ((err = block_load(v, id, len, &data)) == 0) {
		memcpy(dst, data + off, n);
		vol_buf_put(v, data);
	}
	return err;
}
