/*
** fs.h -- the one internal filesystem interface of eddyfs.
**
** Every backend (dir, later volume, mem) and every layer (later chaos, queue)
** implements struct eddy_fs_ops; the FUSE frontend (src/fuse/) is the only
** caller that talks to the kernel, and the FUSE-less CLI client can drive the
** same table. Nothing that includes this header may include a libfuse header.
**
** Contract common to every operation:
**   - Inode numbers are 64-bit, never 0; EDDY_ROOT_INO is the root and is
**     always known. An implementation never reuses an inode number for the
**     life of one struct eddy_fs (so generation stays 0 unless it says so).
**   - Errors are returned as negative errno; success is 0 (or a byte count).
**   - Every call may come from any FUSE worker thread concurrently; an
**     implementation locks what it needs itself.
**   - Cache policy is the implementation's decision: it fills the timeouts in
**     struct eddy_entry and the flags in struct eddy_open; the frontend only
**     passes them on.
**   - Lookup accounting: each successful call that returns an entry with
**     ino != 0 (lookup, mknod, mkdir, symlink, link, create, and every entry
**     handed to a readdir fill callback with plus set) gives the caller one
**     reference; the caller returns references with forget(ino, n). The
**     implementation may drop what it keeps for an inode when its references
**     reach zero and no file is open on it.
**   - Names given to an operation are single path components: never empty,
**     never ".", "..", never containing '/'. The frontend guarantees it.
**   - Backends use inode numbers below EDDY_LAYER_INO_BASE; layers mint
**     their own (synthetic) inode numbers at or above it.
*/
#ifndef EDDY_FS_H
#define EDDY_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#define EDDY_ROOT_INO 1
#define EDDY_MAX_GROUPS 64
#define EDDY_LAYER_INO_BASE (UINT64_C(1) << 62)

struct eddy_fs;
struct eddy_file;
struct eddy_events;

/* The caller of an operation. */
struct eddy_ctx {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	mode_t umask;
	int ngroups;                     /* -1: supplementary groups unknown */
	gid_t groups[EDDY_MAX_GROUPS];
};

/* What lookup and the create family return. */
struct eddy_entry {
	uint64_t ino;                    /* 0 with return 0: cacheable absence */
	uint64_t generation;
	struct stat attr;
	double attr_timeout;             /* seconds */
	double entry_timeout;            /* seconds */
};

/* What open, create and opendir return besides the handle. */
struct eddy_open {
	bool keep_cache;                 /* keep the page cache across opens */
	bool direct_io;                  /* bypass the page cache */
	bool cache_readdir;              /* directories: cache the listing */
	bool nonseekable;
	bool may_block;                  /* read may return -EAGAIN meaning "not
					  * yet": unless the file was opened
					  * O_NONBLOCK the frontend parks the
					  * read until events->ready(ino) */
	bool wants_flush;                /* send a flush at every close(), even
					  * when locks do not need it (errors
					  * reported by close, as on NFS) */
};

/* Fields of setattr that are valid (same bits as FUSE_SET_ATTR_*). */
enum eddy_setattr_mask {
	EDDY_SET_MODE = 1 << 0,
	EDDY_SET_UID = 1 << 1,
	EDDY_SET_GID = 1 << 2,
	EDDY_SET_SIZE = 1 << 3,
	EDDY_SET_ATIME = 1 << 4,
	EDDY_SET_MTIME = 1 << 5,
	EDDY_SET_ATIME_NOW = 1 << 7,
	EDDY_SET_MTIME_NOW = 1 << 8,
	EDDY_SET_CTIME = 1 << 10,
	EDDY_SET_KILL_SUIDGID = 1 << 11,
};

/*
** readdir fill callback: hand one entry to the caller. NEXT is the cookie
** that resumes the listing after this entry (stable while entries come and
** go; never 0). ENTRY is non-NULL only for readdirplus, and then carries one
** reference if entry->ino != 0. Returns 0 if the entry was taken, 1 if the
** caller's buffer is full (the entry was NOT taken: an implementation that
** gave a reference for it must take it back by itself).
*/
typedef int (*eddy_fill_fn)(void *buf, const char *name, const struct stat *st,
			    const struct eddy_entry *entry, uint64_t next);

/* Counters an implementation can report (eddyfs stats); a KEY starting
** with '#' is a line of text (VALUE ignored). */
typedef void (*eddy_stat_fn)(void *arg, const char *key, long long value);

struct eddy_fs_ops {
	const char *name;

	/* lifecycle */
	void (*destroy)(struct eddy_fs *fs);
	void (*report)(struct eddy_fs *fs, eddy_stat_fn fn, void *arg);

	/* namespace */
	int (*lookup)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		      const char *name, struct eddy_entry *out);
	void (*forget)(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup);
	int (*getattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		       struct eddy_file *f, struct stat *st, double *attr_timeout);
	/* f: open file the change comes through (may be NULL). */
	int (*setattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		       struct eddy_file *f, const struct stat *in, int mask,
		       struct stat *st, double *attr_timeout);
	int (*mknod)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		     const char *name, mode_t mode, dev_t rdev, struct eddy_entry *out);
	int (*mkdir)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		     const char *name, mode_t mode, struct eddy_entry *out);
	int (*symlink)(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		       uint64_t parent, const char *name, struct eddy_entry *out);
	int (*link)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		    uint64_t newparent, const char *newname, struct eddy_entry *out);
	int (*unlink)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		      const char *name);
	int (*rmdir)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		     const char *name);
	/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. */
	int (*rename)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		      const char *name, uint64_t newparent, const char *newname,
		      unsigned int flags);
	/* Fills BUF with at most SIZE bytes (no NUL); returns the length. */
	ssize_t (*readlink)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			    char *buf, size_t size);
	int (*statfs)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      struct statvfs *out);

	/* open files */
	int (*open)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
		    struct eddy_file **fp, struct eddy_open *how);
	int (*create)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		      const char *name, mode_t mode, int flags, struct eddy_entry *out,
		      struct eddy_file **fp, struct eddy_open *how);
	ssize_t (*read)(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size,
			off_t off);
	/* With O_APPEND opens the implementation writes at the real end of file. */
	ssize_t (*write)(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
			 const void *buf, size_t size, off_t off);
	/* close() of one descriptor; NULL: nothing to do (the kernel then
	 * stops sending flushes for the whole mount). */
	int (*flush)(struct eddy_fs *fs, struct eddy_file *f);
	int (*fsync)(struct eddy_fs *fs, struct eddy_file *f, bool datasync);
	/* Never fails in a way the caller can act on; frees F. */
	void (*release)(struct eddy_fs *fs, struct eddy_file *f);
	int (*fallocate)(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off,
			 off_t len);
	ssize_t (*copy_file_range)(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
				   struct eddy_file *out, off_t off_out, size_t len,
				   int flags);
	/* whence: SEEK_DATA or SEEK_HOLE; returns the offset. */
	off_t (*lseek)(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence);

	/* directories */
	int (*opendir)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		       struct eddy_file **fp, struct eddy_open *how);
	/* Lists from COOKIE (0 = start) until the end or until fill returns 1. */
	int (*readdir)(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *d,
		       uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf);
	int (*fsyncdir)(struct eddy_fs *fs, struct eddy_file *d, bool datasync);
	void (*releasedir)(struct eddy_fs *fs, struct eddy_file *d);

	/* extended attributes: get/list return the size (size 0: just the size). */
	int (*setxattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			const char *name, const void *value, size_t size, int flags);
	ssize_t (*getxattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			    const char *name, void *value, size_t size);
	ssize_t (*listxattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			     char *list, size_t size);
	int (*removexattr)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			   const char *name);
	/* Slots above are version 1; append only after this line. */

	/* change news: start reporting changes made outside the requests this
	 * implementation answers through EV (copied); stop before the caller
	 * frees what EV points to. NULL: the implementation reports nothing. */
	int (*watch_start)(struct eddy_fs *fs, const struct eddy_events *ev);
	void (*watch_stop)(struct eddy_fs *fs);

	/* locks shared with every other user of the same storage. OWNER is the
	 * kernel's lock owner (one per process and file table). NULL: the
	 * frontend leaves locks to the kernel (per mount only). flush then
	 * also drops OWNER's byte-range locks on the file (POSIX close rule). */
	int (*getlk)(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		     uint64_t owner, struct flock *lk);
	int (*setlk)(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		     uint64_t owner, const struct flock *lk, bool wait);
	int (*flock)(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		     uint64_t owner, int op);
	int (*flush_owner)(struct eddy_fs *fs, struct eddy_file *f, uint64_t owner);

	/* readiness: the poll(2) events (POLLIN, POLLOUT, ...) of F now. When
	 * none of EVENTS is ready the implementation calls events->ready(ino)
	 * once some may be. NULL: always readable and writable. */
	int (*poll)(struct eddy_fs *fs, struct eddy_file *f, unsigned events,
		    unsigned *revents);

	/* runtime control (eddyfs chaos ... --mount P): one request line;
	 * answers through FN ("key value") once the change is in effect, or
	 * returns a negative errno with a one-line reason in ERR; -ENOSYS if
	 * no layer knows the request. A layer passes what is not its own to
	 * the filesystem it wraps. NULL: no runtime control. */
	int (*control)(struct eddy_fs *fs, const char *request, eddy_stat_fn fn, void *arg,
		       char *err, size_t errlen);

	/* access(2) and chdir on a mount where the kernel does not check
	 * permissions (no EDDY_FS_KERNEL_PERMISSIONS): 0, or -EACCES if C
	 * may not MASK (R_OK | W_OK | X_OK; F_OK: exists). NULL: the kernel
	 * is told ENOSYS and then allows every access(2) call. */
	int (*access)(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int mask);
};

/*
** The upward path: an implementation tells whoever sits above it that the
** truth changed outside the requests it answered. Set by the frontend with
** the watch_start op; may be called from any thread, must not block.
*/
struct eddy_events {
	void (*entry_changed)(void *up, uint64_t parent, const char *name);
	void (*entry_deleted)(void *up, uint64_t parent, const char *name, uint64_t child);
	void (*inode_changed)(void *up, uint64_t ino, bool attr_only);
	/* News was lost (queue overflow, lost watch): assume anything changed. */
	void (*everything_changed)(void *up);
	void *up;
	/* Files of inode INO may have become readable or writable (poll). */
	void (*ready)(void *up, uint64_t ino);
};

/* The base of every filesystem object; implementations embed it first. */
struct eddy_fs {
	const struct eddy_fs_ops *ops;
	unsigned flags;                  /* EDDY_FS_* */
};

/* The implementation checks no access rights itself (unlike the dir
** backend, where the backing filesystem does): the frontend always mounts
** with default_permissions so that the kernel checks them. */
#define EDDY_FS_KERNEL_PERMISSIONS 1u

/* Directory listings need no open handle: readdir cookies stay valid on
** any handle of the directory, and the implementation tells the kernel of
** every change to a listing it may cache (events). The frontend then lets
** the kernel skip OPENDIR/RELEASEDIR (and cache listings across opens) when
** the kernel also checks permissions; readdir and fsyncdir then get a
** handle opened for that one request. Layers clear it. */
#define EDDY_FS_STATELESS_DIRS 2u

/* The base of every open file or directory handle; embedded first. */
struct eddy_file {
	uint64_t ino;
};

/* Hands "." or ".." (NAME) of inode INO to FILL with cookie NEXT: the
** inode number and directory type only, and no reference (readdirplus
** gets an entry with ino 0 in it). Returns what FILL returns. */
int eddy_fill_dot(eddy_fill_fn fill, void *buf, const char *name, uint64_t ino, uint64_t next,
		  bool plus);

/* A context for calls made by the daemon itself (tests, the CLI client). */
void eddy_ctx_self(struct eddy_ctx *c);

/* True if the caller is in group GID (primary or supplementary; read from
** /proc when the frontend did not pass the supplementary groups). */
bool eddy_ctx_in_group(const struct eddy_ctx *c, gid_t gid);

#endif /* EDDY_FS_H */
