/*
** vol.c -- the "volume" backend: a POSIX filesystem of its own, metadata
** in SQLite (eddyfs.db, WAL) and file data in immutable blocks (blocks/).
** Mounted as `eddyfs mount sqlite:<volume-dir> <mnt>`; made by `eddyfs
** format` (vol_format.c describes the layout).
**
** Guarantees:
**   1. Local-filesystem semantics for every operation of fs.h: errors,
**      times, link counts, hard links, symlinks, special files, ownership
**      (setgid directories, setuid clearing), xattrs and POSIX ACLs as
**      ext4. Access rights are checked by the kernel
**      (EDDY_FS_KERNEL_PERMISSIONS: default_permissions), or, with
**      vol_options.check_access, by the backend itself (vol_perm.c), which
**      spares the kernel's GETATTR of the parent after every change.
**   2. Every namespace operation is one SQLite transaction: rename
**      (also RENAME_NOREPLACE and RENAME_EXCHANGE) of files and
**      directories is atomic, also across a crash.
**   3. Data written is durable once close(2) or fsync(2) returned 0; a
**      kill -9 or power loss at any moment leaves a consistent volume
**      (at worst unreferenced blocks, for a later gc) (vol_int.h, DATA).
**   4. Open-unlinked files live until their last close in every mount
**      (`holds` rows, vol_session.c rule 3); after a crash the orphans are
**      deleted once the dead session is reaped.
**   5. Sparse files: missing chunks and all-zero chunks cost no block.
**   6. Blocks are checksummed (XXH3-64); a missing or corrupt block reads
**      as -EIO for its range. A full disk is -ENOSPC and the volume stays
**      intact. statfs shows real usage; the volume's capacity and inode
**      limits (set by format) give -ENOSPC.
**   7. Thread safety with one connection under db_lock and a lock per
**      open file's data (vol_int.h, LOCKS).
**   8. Several mounts (and CLI clients) of one volume on one host share it
**      (flock LOCK_SH on eddyfs.lock; exclusive tools take LOCK_EX):
**      each is a session with a heartbeat (vol_session.c); totals and
**      block ids are kept in the database by every transaction; every
**      change is logged in the same transaction and followed by the other
**      mounts, which invalidate the kernel's caches (vol_follow.c), so
**      day-long cache timeouts stay coherent. Data reaches the other
**      mounts when it is written out (close, fsync, a full chunk):
**      close-to-open consistency, within the follower's delay (ms).
**   9. fcntl and flock locks live in the database and conflict across
**      every mount of the volume (vol_lock.c).
** Does not provide (yet): gc of unreferenced blocks, fsck, several hosts
** (PostgreSQL); see README Limits.
** Only the frontend (and tests) call these functions, through vol_fs_ops.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "vol_int.h"

#define DAY 86400.0

void vol_options_default(struct vol_options *o)
{
	memset(o, 0, sizeof(*o));
	o->entry_timeout = DAY;
	o->attr_timeout = DAY;
	o->negative_timeout = DAY;
	o->keep_cache = true;
	o->cache_readdir = true;
	o->batch_ms = VOL_DEFAULT_BATCH_MS;
}

/* Joins the volume: session, change triggers, reaping, the background
** thread. */
static int volume_start(struct vol_fs *v, char *err, size_t errlen)
{
	int r;

	vol_free_check(v);
	if ((r = vol_schema_upgrade(v))) {
		snprintf(err, errlen, "upgrading the database: %s", sqlite3_errmsg(v->db));
		return r;
	}
	if ((r = vol_session_register(v, v->opt.mountpoint ? "mount" : "client",
				      v->opt.mountpoint)) ||
	    (r = vol_changes_triggers(v))) {
		snprintf(err, errlen, "registering the session: %s", sqlite3_errmsg(v->db));
		return r;
	}
	if ((r = vol_session_reap(v))) {
		snprintf(err, errlen, "deleting orphans: %s", strerror(-r));
		return r;
	}
	if ((r = vol_db_sync(v))) {
		snprintf(err, errlen, "database: %s", strerror(-r));
		return r;
	}
	pthread_mutex_unlock(&v->db_lock);
	r = vol_bg_start(v, err, errlen);
	pthread_mutex_lock(&v->db_lock);
	return r;
}

static void vol_destroy(struct eddy_fs *fs);

int vol_fs_open(const char *dir, const struct vol_options *o, struct eddy_fs **out, char *err,
		size_t errlen)
{
	struct vol_format_options fo;
	pthread_mutexattr_t ma;
	struct vol_fs *v;
	int r;

	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->base.ops = &vol_fs_ops;
	v->base.flags = o->check_access ? 0 : EDDY_FS_KERNEL_PERMISSIONS;
	v->opt = *o;
	v->protected_hardlinks = o->check_access && vol_protected_hardlinks();
	v->news = true;
	v->tx_others = -1;
	v->dir_fd = v->blocks_fd = v->lock_fd = -1;
	/* db_lock is held for microseconds at a time by many threads: an
	 * adaptive mutex spins briefly before it sleeps, sparing a context
	 * switch per hand-over (the FORGET that follows every unlink, the
	 * background commit). */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&v->db_lock, &ma);
	pthread_mutex_init(&v->table_lock, &ma);
	pthread_mutexattr_destroy(&ma);
	vol_cache_init(&v->cache);
	pthread_mutex_init(&v->pool_lock, NULL);
	atomic_init(&v->reserved, 0);
	r = vol_table_init(v);
	if (r) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	v->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->dir_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "volume %s: %s", dir, strerror(errno));
		goto fail;
	}
	/* no lock file is made in a directory that is not a volume (the
	 * checks below refuse it, and must leave it as it was) */
	if (faccessat(v->dir_fd, VOL_DB_NAME, F_OK, 0) < 0) {
		r = vol_db_open_checked(v->dir_fd, dir, false, &v->db, &fo, err, errlen);
		goto fail;
	}
	/* shared by every mount and client; exclusive tools (fsck --repair,
	 * gc, load) take it exclusively */
	v->lock_fd = openat(v->dir_fd, VOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (v->lock_fd < 0 || flock(v->lock_fd, LOCK_SH | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, r == -EBUSY ? "volume %s is in use by an exclusive tool "
			 "(fsck --repair, gc, load)" : "volume %s: lock file: %s", dir,
			 strerror(-r));
		goto fail;
	}
	if (!(v->path = strdup(dir))) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = vol_db_open_checked(v->dir_fd, dir, false, &v->db, &fo, err, errlen);
	if (r)
		goto fail;
	v->block_size = fo.block_size;
	v->compress = fo.compress;
	v->capacity = fo.capacity;
	v->max_inodes = fo.max_inodes;
	v->blocks_fd = openat(v->dir_fd, VOL_BLOCKS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->blocks_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "volume %s: %s: %s", dir, VOL_BLOCKS_DIR, strerror(errno));
		goto fail;
	}
	v->journal_orders = vol_journal_orders(v->blocks_fd);
	if ((r = vol_sql(v->db, "PRAGMA journal_mode=WAL")) ||
	    (r = vol_sql(v->db, "PRAGMA synchronous=NORMAL")) ||
	    (r = vol_sql(v->db, "PRAGMA cache_size=-32768")) ||
	    (r = vol_sql(v->db, "PRAGMA temp_store=MEMORY")) ||
	    /* fewer, larger checkpoints: hot pages (directories, indexes)
	     * are written once per checkpoint, and each costs two fsyncs */
	    (r = vol_sql(v->db, "PRAGMA wal_autocheckpoint=8192"))) {
		snprintf(err, errlen, "volume %s: %s", dir, sqlite3_errmsg(v->db));
		goto fail;
	}
	pthread_mutex_lock(&v->db_lock);
	r = volume_start(v, err, errlen);
	pthread_mutex_unlock(&v->db_lock);
	if (r)
		goto fail;
	*out = &v->base;
	return 0;
fail:
	vol_destroy(&v->base);
	return r;
}

/* Handles the kernel never released (a lazily detached mount whose
** connection ended first) go with everything else; their data is
** written out first. */
static void vol_destroy(struct eddy_fs *fs)
{
	struct vol_fs *v = vol_fs(fs);

	vol_bg_stop(v);
	while (v->files) {
		struct vol_file *f = v->files;

		v->files = f->next;
		if (!f->is_dir && f->vi->dirty) {
			pthread_rwlock_wrlock(&f->vi->data_lock);
			vol_data_flush(v, f->vi, true);
			pthread_rwlock_unlock(&f->vi->data_lock);
		}
		free(f->lk_owners);  /* the rows go with the session */
		free(f);
	}
	vol_table_free(v);
	if (v->db) {
		/* our holds, locks and session row go; orphans nobody holds too */
		pthread_mutex_lock(&v->db_lock);
		vol_session_end(v);
		vol_db_sync(v);
		pthread_mutex_unlock(&v->db_lock);
	}
	for (int i = 0; i < Q_COUNT; i++)
		if (v->stmt[i])
			sqlite3_finalize(v->stmt[i]);
	if (v->db)
		sqlite3_close(v->db);
	vol_cache_free(v);
	pthread_mutex_destroy(&v->pool_lock);
	free(v->tx_dead);
	if (v->blocks_fd >= 0)
		close(v->blocks_fd);
	if (v->lock_fd >= 0)
		close(v->lock_fd);
	if (v->dir_fd >= 0)
		close(v->dir_fd);
	pthread_mutex_destroy(&v->table_lock);
	pthread_mutex_destroy(&v->db_lock);
	free(v->path);
	free(v);
}

int vol_fs_commit(struct eddy_fs *fs)
{
	struct vol_fs *v = vol_fs(fs);
	int r;

	pthread_mutex_lock(&v->db_lock);
	r = vol_batch_commit(v);
	pthread_mutex_unlock(&v->db_lock);
	return r;
}

static void vol_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct vol_fs *v = vol_fs(fs);
	long long used, inodes, nodes;

	pthread_mutex_lock(&v->db_lock);
	vol_totals_read(v);
	used = v->used_bytes;
	inodes = v->ninodes;
	pthread_mutex_unlock(&v->db_lock);
	pthread_mutex_lock(&v->table_lock);
	nodes = (long long)v->count;
	pthread_mutex_unlock(&v->table_lock);
	fn(arg, "backend_nodes", nodes);
	fn(arg, "open_files", atomic_load(&v->nopen));
	fn(arg, "vol_inodes", inodes);
	fn(arg, "vol_inodes_max", (long long)v->max_inodes);
	fn(arg, "vol_bytes_used", used);
	fn(arg, "vol_bytes_max", (long long)v->capacity);
	fn(arg, "vol_bytes_dirty", atomic_load(&v->reserved));
	fn(arg, "vol_block_size", (long long)v->block_size);
	fn(arg, "vol_blocks_written", atomic_load(&v->blocks_written));
	fn(arg, "vol_blocks_read", atomic_load(&v->blocks_read));
	fn(arg, "vol_block_cache_hits", atomic_load(&v->cache_hits));
	fn(arg, "vol_blocks_bad", atomic_load(&v->bad_blocks));
	fn(arg, "vol_session", (long long)v->session);
	fn(arg, "vol_news_rows", atomic_load(&v->news_rows));
	fn(arg, "vol_news_gaps", atomic_load(&v->news_gaps));
	fn(arg, "vol_sessions_reaped", atomic_load(&v->sessions_reaped));
	fn(arg, "vol_orphans_reaped", atomic_load(&v->orphans_reaped));
	fn(arg, "vol_batches", atomic_load(&v->batches));
	fn(arg, "vol_batch_ops_lost", atomic_load(&v->batch_lost));
}

static int vol_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      struct statvfs *out)
{
	struct vol_fs *v = vol_fs(fs);
	uint64_t blocks, bfree, used, n, files;
	struct statvfs host;

	(void)c;
	(void)ino;
	pthread_mutex_lock(&v->db_lock);
	vol_totals_read(v);
	used = (uint64_t)(v->used_bytes + atomic_load(&v->reserved) + 4095) / 4096;
	n = (uint64_t)v->ninodes;
	pthread_mutex_unlock(&v->db_lock);
	if (fstatvfs(v->dir_fd, &host) < 0)
		return -errno;
	if (v->capacity) {
		blocks = v->capacity / 4096;
		bfree = blocks > used ? blocks - used : 0;
	} else {
		blocks = host.f_blocks * host.f_frsize / 4096;
		bfree = host.f_bavail * host.f_frsize / 4096;
	}
	files = v->max_inodes ? v->max_inodes : n + host.f_favail;
	eddy_statvfs_fill(out, 4096, blocks, bfree, files, n);
	return 0;
}

const struct eddy_fs_ops vol_fs_ops = {
	.name = "volume",
	.destroy = vol_destroy,
	.report = vol_report,
	/* namespace */
	.lookup = vol_lookup,
	.forget = vol_forget,
	.getattr = vol_getattr,
	.setattr = vol_setattr,
	.mknod = vol_mknod,
	.mkdir = vol_mkdir,
	.symlink = vol_symlink,
	.link = vol_link,
	.unlink = vol_unlink,
	.rmdir = vol_rmdir,
	.rename = vol_rename,
	.readlink = vol_readlink,
	.statfs = vol_statfs,
	/* open files */
	.open = vol_open,
	.create = vol_create,
	.read = vol_read,
	.write = vol_write,
	.flush = vol_flush,       /* close(2) makes written data durable */
	.fsync = vol_fsync,
	.release = vol_release,
	.fallocate = vol_fallocate,
	.copy_file_range = vol_copy_file_range,
	.lseek = vol_lseek,
	/* directories */
	.opendir = vol_opendir,
	.readdir = vol_readdir,
	.fsyncdir = vol_fsyncdir,
	.releasedir = vol_releasedir,
	/* extended attributes */
	.setxattr = vol_setxattr,
	.getxattr = vol_getxattr,
	.listxattr = vol_listxattr,
	.removexattr = vol_removexattr,
	/* change news from the other opens of the volume (vol_follow.c) */
	.watch_start = vol_watch_start,
	.watch_stop = vol_watch_stop,
	/* locks in the database, shared by every open (vol_lock.c) */
	.getlk = vol_getlk,
	.setlk = vol_setlk,
	.flock = vol_flock,
	.flush_owner = vol_flush_owner,
	/* no poll (always ready) */
	.poll = NULL,
	.access = vol_access,     /* vol_perm.c */
};
