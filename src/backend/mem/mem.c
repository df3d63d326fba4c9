/*
** mem.c -- the "mem" backend: a POSIX filesystem that lives in RAM only.
**
** Guarantees:
**   1. Local-filesystem semantics for every operation of fs.h but the
**      shared-lock ops (the kernel keeps locks per mount) and change news
**      (nothing changes behind the backend's back): the errors, times,
**      link counts, ownership (setgid directories, setuid clearing) and
**      POSIX ACL rules of ext4/tmpfs. The backend checks no access rights:
**      it sets EDDY_FS_KERNEL_PERMISSIONS and the kernel checks them.
**   2. Thread safety with one namespace rwlock and one rwlock per inode
**      (mem_int.h, LOCKS); reads and writes of different files never wait
**      for each other or for lookups.
**   3. Inode numbers are sequential from 2 and never reused; an inode
**      lives while it has a name, a kernel reference or an open handle
**      (mem_int.h, INODE LIFETIME): open-unlinked files keep their data.
**   4. Sparse files (mem_pages.c): holes cost nothing, SEEK_DATA/SEEK_HOLE
**      and st_blocks have 4 KiB granularity; files up to 1 PiB.
**   5. Limits: max_bytes (data pages, xattrs and symlink targets; default
**      the size of physical RAM) and max_inodes (default none). A call
**      that would exceed one fails with -ENOSPC and changes nothing.
**   6. Readdir cookies stay valid while entries come and go (mem_dir.c).
** Does not provide:
**   1. Persistence: everything is gone when the filesystem is destroyed.
**   2. Swap-out or compression of data.
** Only the frontend (and tests) call these functions, through mem_fs_ops.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mem_int.h"

#define DAY 86400.0

void mem_options_default(struct mem_options *o)
{
	memset(o, 0, sizeof(*o));
	o->entry_timeout = DAY;
	o->attr_timeout = DAY;
	o->negative_timeout = DAY;
	o->keep_cache = true;
	o->cache_readdir = true;
}

int mem_options_parse(const char *params, struct mem_options *o, char *err, size_t errlen)
{
	const char *p = params;

	while (p && *p) {
		size_t len = strcspn(p, ","), klen;
		const char *eq = memchr(p, '=', len);
		uint64_t v;

		klen = eq ? (size_t)(eq - p) : len;
		if ((klen != 4 || strncmp(p, "size", 4) != 0) &&
		    (klen != 6 || strncmp(p, "inodes", 6) != 0)) {
			snprintf(err, errlen, "mem: unknown parameter '%.*s' (use size=, inodes=)",
				 (int)klen, p);
			return -EINVAL;
		}
		if (!eq || !eddy_parse_size(eq + 1, len - klen - 1, &v)) {
			snprintf(err, errlen, "mem: bad parameter '%.*s' (use size=N[K|M|G|T], "
				 "inodes=N[K|M|G])", (int)len, p);
			return -EINVAL;
		}
		if (klen == 4)
			o->max_bytes = v;
		else
			o->max_inodes = v;
		p += len;
		if (*p == ',' && !*++p) {
			snprintf(err, errlen, "mem: empty parameter after ','");
			return -EINVAL;
		}
	}
	return 0;
}

static uint64_t physical_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return UINT64_C(1) << 32;
	return (uint64_t)pages * (uint64_t)size;
}

int mem_fs_open(const struct mem_options *o, struct eddy_fs **out, char *err, size_t errlen)
{
	pthread_rwlockattr_t attr;
	struct mem_fs *m;

	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->base.ops = &mem_fs_ops;
	m->base.flags = EDDY_FS_KERNEL_PERMISSIONS |
			(o->cache_readdir ? EDDY_FS_STATELESS_DIRS : 0);
	m->opt = *o;
	m->capacity = o->max_bytes ? o->max_bytes : physical_ram();
	atomic_init(&m->used_bytes, 0);
	atomic_init(&m->nopen, 0);
	atomic_init(&m->nfreed, 0);
	/* Writers first: a stream of lookups must not starve a create. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&m->ns_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&m->files_lock, NULL);
	if (mem_table_init(m) < 0) {
		pthread_rwlock_destroy(&m->ns_lock);
		pthread_mutex_destroy(&m->files_lock);
		free(m);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = &m->base;
	return 0;
}

int mem_space_reserve(struct mem_fs *m, uint64_t bytes)
{
	long long cur = atomic_load(&m->used_bytes);

	if (bytes == 0)
		return 0;
	do {
		if ((uint64_t)cur + bytes > m->capacity || bytes > m->capacity)
			return -ENOSPC;
	} while (!atomic_compare_exchange_weak(&m->used_bytes, &cur, cur + (long long)bytes));
	return 0;
}

void mem_space_adjust(struct mem_fs *m, long long delta)
{
	if (delta)
		atomic_fetch_add(&m->used_bytes, delta);
}

void mem_files_add(struct mem_fs *m, struct mem_file *f)
{
	pthread_mutex_lock(&m->files_lock);
	f->prev = NULL;
	f->next = m->files;
	if (m->files)
		m->files->prev = f;
	m->files = f;
	pthread_mutex_unlock(&m->files_lock);
	atomic_fetch_add(&m->nopen, 1);
}

void mem_files_remove(struct mem_fs *m, struct mem_file *f)
{
	pthread_mutex_lock(&m->files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		m->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&m->files_lock);
	atomic_fetch_sub(&m->nopen, 1);
}

/* Handles the kernel never released (a lazily detached mount whose
** connection ended first) go with everything else. */
static void mem_destroy(struct eddy_fs *fs)
{
	struct mem_fs *m = mem_fs(fs);

	while (m->files) {
		struct mem_file *f = m->files;

		m->files = f->next;
		free(f);
	}
	mem_table_free(m);
	pthread_mutex_destroy(&m->files_lock);
	pthread_rwlock_destroy(&m->ns_lock);
	free(m);
}

static void mem_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct mem_fs *m = mem_fs(fs);
	size_t n, orphans = 0, i;

	pthread_rwlock_rdlock(&m->ns_lock);
	n = m->ninodes;
	for (i = 0; i < m->nbuckets; i++) {
		struct mem_inode *in;

		for (in = m->table[i]; in; in = in->hnext)
			orphans += in->nlink == 0;
	}
	pthread_rwlock_unlock(&m->ns_lock);
	fn(arg, "backend_nodes", (long long)n);
	fn(arg, "open_files", atomic_load(&m->nopen));
	fn(arg, "mem_inodes_unlinked", (long long)orphans);
	fn(arg, "mem_inodes_freed", atomic_load(&m->nfreed));
	fn(arg, "mem_inodes_max", (long long)m->opt.max_inodes);
	fn(arg, "mem_bytes_used", atomic_load(&m->used_bytes));
	fn(arg, "mem_bytes_max", (long long)m->capacity);
}

static int mem_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      struct statvfs *out)
{
	struct mem_fs *m = mem_fs(fs);
	uint64_t blocks = m->capacity / MEM_PAGE_SIZE, used, files, n, bfree;

	(void)c;
	(void)ino;
	used = ((uint64_t)atomic_load(&m->used_bytes) + MEM_PAGE_SIZE - 1) / MEM_PAGE_SIZE;
	pthread_rwlock_rdlock(&m->ns_lock);
	n = m->ninodes;
	pthread_rwlock_unlock(&m->ns_lock);
	bfree = blocks > used ? blocks - used : 0;
	/* without a limit: as many more inodes as free blocks */
	files = m->opt.max_inodes ? m->opt.max_inodes : n + bfree;
	eddy_statvfs_fill(out, MEM_PAGE_SIZE, blocks, bfree, files, n);
	return 0;
}

const struct eddy_fs_ops mem_fs_ops = {
	.name = "mem",
	.destroy = mem_destroy,
	.report = mem_report,
	/* namespace */
	.lookup = mem_lookup,
	.forget = mem_forget,
	.getattr = mem_getattr,
	.setattr = mem_setattr,
	.mknod = mem_mknod,
	.mkdir = mem_mkdir,
	.symlink = mem_symlink,
	.link = mem_link,
	.unlink = mem_unlink,
	.rmdir = mem_rmdir,
	.rename = mem_rename,
	.readlink = mem_readlink,
	.statfs = mem_statfs,
	/* open files */
	.open = mem_open,
	.create = mem_create,
	.read = mem_read,
	.write = mem_write,
	.flush = NULL,          /* nothing to do at close(): saves a round trip */
	.fsync = mem_fsync,
	.release = mem_release,
	.fallocate = mem_fallocate,
	.copy_file_range = mem_copy_file_range,
	.lseek = mem_lseek,
	/* directories */
	.opendir = mem_opendir,
	.readdir = mem_readdir,
	.fsyncdir = mem_fsyncdir,
	.releasedir = mem_releasedir,
	/* extended attributes */
	.setxattr = mem_setxattr,
	.getxattr = mem_getxattr,
	.listxattr = mem_listxattr,
	.removexattr = mem_removexattr,
	/* no change news (nothing changes behind our back), no shared locks
	 * (the kernel keeps them per mount), no poll (always ready) */
	.watch_start = NULL,
	.watch_stop = NULL,
	.getlk = NULL,
	.setlk = NULL,
	.flock = NULL,
	.flush_owner = NULL,
	.poll = NULL,
};
