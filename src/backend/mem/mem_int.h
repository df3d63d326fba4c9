/*
** mem_int.h -- internals of the "mem" backend, shared by its files only.
** This header is private to src/backend/mem/: nothing else includes it.
**
** LOCKS (taken in this order, never the other way round)
**   1. mem_fs.ns_lock (rwlock, writer-preferring): the namespace. Held
**      shared by every operation that finds an inode by number or name
**      (lookup, getattr, open, setattr, readdir, xattrs, forget, release)
**      and exclusive by every operation that changes a directory or the
**      inode table (create family, link, unlink, rmdir, rename, freeing).
**      Guards: the inode table, every mem_dir, mem_inode.nlink.
**   2. mem_inode.lock (rwlock): attributes (mode, uid, gid, size, times),
**      file data and xattrs of that inode. Taken for every read or write
**      of those fields, also under an exclusive ns_lock, because reads and
**      writes of open files take no ns_lock at all. At most one inode lock
**      is held at a time, except copy_file_range (two, in inode order).
**   3. mem_fs.files_lock (mutex, leaf): the list of open handles.
**
** INODE LIFETIME
** (1) An inode lives while nlink > 0 (it has a name; directories: until
**     rmdir) OR nlookup > 0 (kernel references) OR nopen > 0 (open
**     handles). The first moment all three are zero it is freed, under the
**     exclusive ns_lock: by unlink/rmdir/rename directly, or by forget and
**     release, which find all three zero under the shared lock and then
**     re-find the inode by number under the exclusive lock before freeing
**     (mem_inode_release), so two threads never free it twice.
** (2) Inode numbers come from a counter starting at 2 and are never
**     reused; the root is EDDY_ROOT_INO and is never freed.
** (3) A handle holds a pointer to its inode: valid because nopen > 0.
** (4) Space: used_bytes counts present data pages (4 KiB each, also
**     reserved-but-unwritten ones), xattr names and values, and symlink
**     targets. An operation reserves what it may add before changing
**     anything (-ENOSPC, nothing changed) and settles the difference after.
*/
#ifndef EDDY_MEM_INT_H
#define EDDY_MEM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "../../fs.h"
#include "mem.h"
#include "../../util/fsrules.h"
#include "../../util/posix_acl.h"

#define MEM_PAGE_SHIFT 12
#define MEM_PAGE_SIZE (1u << MEM_PAGE_SHIFT)
/* Files up to 1 PiB: far beyond ext4's 16 TiB, so programs tested against
** it see no EFBIG here; tmpfs goes to 8 EiB. */
#define MEM_MAX_FILE_SIZE (UINT64_C(1) << 50)
#define MEM_LINK_MAX 65000
#define MEM_SYMLINK_MAX 4095
#define MEM_NAME_MAX 255
#define MEM_XATTR_SIZE_MAX 65536

/* mem_pages.c: the data of a regular file, a sparse radix tree of 4 KiB
** pages. A page is absent (a hole), reserved (fallocated: counts as space,
** reads as zeros, is a hole to SEEK_DATA/SEEK_HOLE as unwritten extents
** are on ext4 and tmpfs, no memory yet) or written. */
struct mem_pages {
	void *root;
	unsigned height;           /* levels of 64 slots; 0: empty */
	uint64_t count;            /* present pages (reserved or written) */
};

void mem_pages_free(struct mem_pages *p);
/* Pages of the byte range [off, off+len) that are absent. */
uint64_t mem_pages_absent(const struct mem_pages *p, uint64_t off, uint64_t len);
/* Writes LEN bytes at OFF; returns the bytes written (short only when
** memory ran out) or -ENOMEM if none. */
ssize_t mem_pages_write(struct mem_pages *p, uint64_t off, const void *buf, size_t len);
/* Reads LEN bytes at OFF; holes read as zeros. */
void mem_pages_read(const struct mem_pages *p, uint64_t off, void *buf, size_t len);
/* Zeroes [off, off+len). KEEP: every page of the range becomes present
** (zero range); otherwise pages wholly inside are dropped (punch hole). */
int mem_pages_zero(struct mem_pages *p, uint64_t off, uint64_t len, bool keep);
/* Makes every absent page of [off, off+len) reserved (fallocate). */
int mem_pages_allocate(struct mem_pages *p, uint64_t off, uint64_t len);
/* Drops what lies at or beyond SIZE (a partial last page is zeroed). */
void mem_pages_truncate(struct mem_pages *p, uint64_t size);
/* The first present page index >= IDX; false if none. */
bool mem_pages_next(const struct mem_pages *p, uint64_t idx, uint64_t *found);
/* SEEK_DATA (hole false) or SEEK_HOLE from OFF in a file of SIZE bytes. */
off_t mem_pages_seek(const struct mem_pages *p, uint64_t off, uint64_t size, bool hole);

/* mem_dir.c: the entries of one directory. Names are found through a
** hash table; the listing order is a cookie that grows with each entry
** added and is never reused in that directory, so a readdir cookie stays
** valid while entries come and go. Guarded by ns_lock. */
struct mem_inode;

struct mem_dirent {
	struct mem_dirent *hnext;  /* hash chain */
	struct mem_inode *inode;
	uint64_t cookie;           /* >= 3 (1 and 2 are "." and "..") */
	uint32_t hash;
	char name[];
};

struct mem_slot {
	uint64_t cookie;           /* ascending */
	struct mem_dirent *de;     /* NULL: removed, compacted away later */
};

struct mem_dir {
	struct mem_dirent **buckets; /* NULL until the first entry */
	size_t nbuckets;           /* power of two */
	size_t count;              /* live entries */
	struct mem_slot *order;    /* listing order */
	size_t norder, cap;
	uint64_t next_cookie;
	uint64_t parent;           /* ino of ".." (the root: itself) */
};

void mem_dir_init(struct mem_dir *d, uint64_t parent);
void mem_dir_free(struct mem_dir *d);
struct mem_dirent *mem_dir_find(const struct mem_dir *d, const char *name);
int mem_dir_add(struct mem_dir *d, const char *name, struct mem_inode *in);
void mem_dir_remove(struct mem_dir *d, struct mem_dirent *de);
/* The first live entry whose cookie is > COOKIE, or NULL. */
struct mem_dirent *mem_dir_next(const struct mem_dir *d, uint64_t cookie);

/* mem_xattr.c: one extended attribute (name, then value, one block). */
struct mem_xattr {
	struct mem_xattr *next;
	size_t size;               /* of the value */
	char *value;
	char name[];
};

struct mem_inode {
	uint64_t ino;              /* immutable */
	mode_t type;               /* S_IFMT bits; immutable */
	struct mem_inode *hnext;   /* inode table chain; ns_lock */
	uint32_t nlink;            /* ns_lock; directories: 2 + subdirectories */
	atomic_uint_least64_t nlookup; /* kernel references */
	atomic_uint nopen;         /* open handles */
	pthread_rwlock_t lock;     /* guards the fields below (but u.dir) */
	mode_t mode;               /* permission bits (07777) */
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	uint64_t size;             /* regular files and symlinks */
	struct timespec atime, mtime, ctime, btime;
	struct mem_xattr *xattrs;
	union {
		struct mem_pages pages; /* S_IFREG */
		struct mem_dir dir;     /* S_IFDIR, guarded by ns_lock */
		char *target;           /* S_IFLNK, immutable */
	} u;
};

struct mem_file;

struct mem_fs {
	struct eddy_fs base;       /* must be first */
	struct mem_options opt;
	uint64_t capacity;         /* bytes: max_bytes, else physical RAM */

	pthread_rwlock_t ns_lock;  /* see LOCKS above */
	struct mem_inode **table;  /* inodes by number (chained hash) */
	size_t nbuckets;           /* power of two */
	size_t ninodes;
	uint64_t next_ino;

	atomic_llong used_bytes;   /* see INODE LIFETIME (4) */
	atomic_long nopen;         /* open file and directory handles */
	atomic_long nfreed;        /* inodes freed so far */

	pthread_mutex_t files_lock;
	struct mem_file *files;    /* every open handle, for destroy */
};

static inline struct mem_fs *mem_fs(struct eddy_fs *fs)
{
	return (struct mem_fs *)fs;
}

/* An open file or directory. */
struct mem_file {
	struct eddy_file base;     /* must be first */
	struct mem_inode *inode;   /* alive while open (nopen > 0) */
	int flags;                 /* open flags */
	bool is_dir;
	struct mem_file *prev, *next; /* mem_fs.files, under files_lock */
};

static inline struct mem_file *mem_file(struct eddy_file *f)
{
	return (struct mem_file *)f;
}

/* mem.c: space accounting and the list of open handles */
int mem_space_reserve(struct mem_fs *m, uint64_t bytes);
/* Adds DELTA (may be negative) to the bytes in use, unconditionally. */
void mem_space_adjust(struct mem_fs *m, long long delta);
void mem_files_add(struct mem_fs *m, struct mem_file *f);
void mem_files_remove(struct mem_fs *m, struct mem_file *f);

/* mem_inode.c: the inode table, lifetime and attributes */
enum mem_times { MEM_ATIME = 1, MEM_MTIME = 2, MEM_CTIME = 4 };

int mem_table_init(struct mem_fs *m);
void mem_table_free(struct mem_fs *m);
struct mem_inode *mem_inode_find(struct mem_fs *m, uint64_t ino);
/* A new inode of MODE (type and permissions) made by C in PARENT (ns_lock
** exclusive): owner, group and mode as a local filesystem would set them
** (setgid directories, umask or the parent's default ACL). nlink 0. */
int mem_inode_new(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *parent,
		  mode_t mode, dev_t rdev, struct mem_inode **out);
void mem_inode_free(struct mem_fs *m, struct mem_inode *in);
bool mem_inode_unused(struct mem_inode *in);
/* No lock held: frees INO if it is unused (see INODE LIFETIME (1)). */
void mem_inode_release(struct mem_fs *m, uint64_t ino);
/* ns_lock held; takes in->lock. */
void mem_inode_stat(struct mem_inode *in, struct stat *st);
/* ns_lock held: fills E for IN and gives the caller one reference. */
void mem_fill_entry(struct mem_fs *m, struct mem_inode *in, struct eddy_entry *e);
void mem_now(struct timespec *ts);
/* Sets the WHAT times (enum mem_times) to now; in->lock held exclusive. */
void mem_touch_locked(struct mem_inode *in, unsigned what);
void mem_touch(struct mem_inode *in, unsigned what);
int mem_check_name(const char *name);

/* mem_attr.c: ownership rules */
/* Clears setuid/setgid after a write or truncate by C (in->lock held
** exclusive), with the kernel's rule; nothing for uid 0. */
void mem_kill_priv(const struct eddy_ctx *c, struct mem_inode *in);

/* mem_xattr.c: storage used by the xattr ops and by ACL inheritance
** (in->lock held) */
struct mem_xattr *mem_xattr_find(struct mem_inode *in, const char *name);
int mem_xattr_put(struct mem_fs *m, struct mem_inode *in, const char *name, const void *value,
		  size_t size);
int mem_xattr_drop(struct mem_fs *m, struct mem_inode *in, const char *name);
void mem_xattrs_free(struct mem_fs *m, struct mem_inode *in);

/* POSIX ACLs and the local-filesystem rules: src/util/posix_acl.h,
** src/util/fsrules.h (shared with the volume backend). */

extern const struct eddy_fs_ops mem_fs_ops;

/* operations, one group per file */
int mem_lookup(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
	       struct eddy_entry *);
void mem_forget(struct eddy_fs *, uint64_t, uint64_t);
int mem_mknod(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t,
	      dev_t, struct eddy_entry *);
int mem_mkdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t,
	      struct eddy_entry *);
int mem_symlink(struct eddy_fs *, const struct eddy_ctx *, const char *, uint64_t,
		const char *, struct eddy_entry *);
int mem_link(struct eddy_fs *, const struct eddy_ctx *, uint64_t, uint64_t, const char *,
	     struct eddy_entry *);
int mem_unlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
int mem_rmdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
ssize_t mem_readlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
/* mem_ns.c, for create: makes PARENT/NAME of MODE (ns_lock exclusive). */
int mem_make(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *parent,
	     const char *name, mode_t mode, dev_t rdev, const char *target,
	     struct mem_inode **out);
struct mem_inode *mem_dir_of(struct mem_fs *m, uint64_t ino, int *err);

int mem_rename(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, uint64_t,
	       const char *, unsigned int);

int mem_getattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		struct stat *, double *);
int mem_setattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		const struct stat *, int, struct stat *, double *);

int mem_open(struct eddy_fs *, const struct eddy_ctx *, uint64_t, int, struct eddy_file **,
	     struct eddy_open *);
int mem_create(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t, int,
	       struct eddy_entry *, struct eddy_file **, struct eddy_open *);
ssize_t mem_read(struct eddy_fs *, struct eddy_file *, void *, size_t, off_t);
ssize_t mem_write(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, const void *,
		  size_t, off_t);
int mem_fsync(struct eddy_fs *, struct eddy_file *, bool);
void mem_release(struct eddy_fs *, struct eddy_file *);
int mem_fallocate(struct eddy_fs *, struct eddy_file *, int, off_t, off_t);
ssize_t mem_copy_file_range(struct eddy_fs *, struct eddy_file *, off_t, struct eddy_file *,
			    off_t, size_t, int);
off_t mem_lseek(struct eddy_fs *, struct eddy_file *, off_t, int);

int mem_opendir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file **,
		struct eddy_open *);
int mem_readdir(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t, bool,
		eddy_fill_fn, void *);
int mem_fsyncdir(struct eddy_fs *, struct eddy_file *, bool);
void mem_releasedir(struct eddy_fs *, struct eddy_file *);

int mem_setxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
		 const void *, size_t, int);
ssize_t mem_getxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, void *,
		     size_t);
ssize_t mem_listxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
int mem_removexattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);

#endif /* EDDY_MEM_INT_H */
