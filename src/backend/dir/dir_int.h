/*
** dir_int.h -- internals of the "dir" backend, shared by its files only.
** This header is private to src/backend/dir/: nothing else includes it.
**
** NODE TABLE INVARIANTS
** (1) A node exists while its references are held: nlookup (kernel
**     references handed out and not yet forgotten), fd_users (threads using
**     its fd right now), nchildren (known nodes whose parent it is).
**     When all three are zero the node is freed.
** (2) node->ino is never reused for the life of the table (a counter).
** (3) A node with name != NULL is reachable as parent/name from the root;
**     that path is how its fd is re-resolved after eviction. A node whose
**     last known name was removed (unlink, rename-over) has name == NULL;
**     if the object lives on (other hard links, open handles) it keeps a
**     pinned fd that is never evicted until the node is freed, otherwise
**     it is dead and answers -ESTALE until the kernel forgets it.
** (4) At most cache_cap unpinned fds are open at once (the clock cache);
**     pinned fds are bounded by what the kernel keeps alive (open or
**     looked-up files that lost their name).
** Lock order: table->lock is a leaf lock; no syscall that may block on
** the backing filesystem is made while holding it, except close().
*/
#ifndef EDDY_DIR_INT_H
#define EDDY_DIR_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../../fs.h"
#include "dir.h"

struct dir_node {
	uint64_t ino;
	dev_t bdev;                /* backing identity: device, inode number */
	ino_t bino;
	uint64_t birth;            /* and birth time (0: unknown): inode numbers
				    * are reused at once by ext4 */
	uint64_t parent;           /* 0 for the root and for nameless nodes */
	char *name;                /* NULL for the root and nameless nodes */
	uint32_t nlookup;          /* fields packed: the node is 104 bytes */
	uint32_t fd_users;
	uint32_t nchildren;
	uint32_t nopen;            /* open file/directory handles */
	int fd;                    /* O_PATH fd, or -1 */
	int32_t slot;              /* index in the clock cache, -1 if none */
	int32_t wd;                /* watch id (dir_watch_int.h), -1 if none */
	uint16_t type;             /* S_IFMT bits */
	uint8_t referenced : 1;    /* clock bit */
	uint8_t pinned : 1;        /* fd never evicted (root, nameless) */
	uint8_t dead : 1;          /* removed from the identity hash */
	struct dir_node *next_ino; /* hash chain by ino */
	struct dir_node *next_bid; /* hash chain by backing identity */
	struct dir_node *next_name; /* hash chain by (parent, name) */
};

struct dir_hash {
	struct dir_node **buckets;
	size_t nbuckets;           /* power of two */
};

struct dir_fs {
	struct eddy_fs base;       /* must be first */
	struct dir_options opt;
	int root_fd;               /* O_PATH of the backing root */
	dev_t root_dev;
	bool privileged;           /* euid 0: switch credentials to create */

	pthread_mutex_t lock;      /* guards everything below */
	struct dir_hash by_ino;
	struct dir_hash by_bid;
	struct dir_hash by_name;   /* nodes with a name, by (parent, name) */
	size_t nnodes;
	uint64_t next_ino;
	struct dir_node **clock;   /* cache_cap slots */
	size_t clock_hand;
	size_t clock_used;
	size_t npinned;

	pthread_mutex_t files_lock;
	struct dir_file *files;    /* every open handle (list), for destroy */
	atomic_long nopen;         /* open file and directory handles */
	struct dir_watch *_Atomic watch; /* change detection, NULL if off */
	pthread_mutex_t locks_lock;
	struct lock_owner **locks; /* (ino, owner) -> fd holding OFD locks */
	atomic_long nlock_owners;  /* entries in locks (release skips if 0) */
	atomic_bool degraded;      /* change news lost: short timeouts */
	atomic_long nresolve;      /* fd re-resolutions (cache misses) */
	atomic_long nstale;        /* re-resolutions that found another object */
};

static inline struct dir_fs *dir_fs(struct eddy_fs *fs)
{
	return (struct dir_fs *)fs;
}

/* An open file or directory. */
struct dir_file {
	struct eddy_file base;     /* must be first */
	int fd;
	int flags;
	bool is_dir;
	struct dir_file *prev, *next; /* dir_fs.files, under files_lock */
	/* directories only */
	pthread_mutex_t lock;
	uint64_t pos;              /* cookie of the next entry in buf */
	char *buf;
	size_t len, off;
	bool eof;
};

/* dir_node.c */
int dir_nodes_init(struct dir_fs *d);
void dir_nodes_free(struct dir_fs *d);
int dir_node_fd_get(struct dir_fs *d, uint64_t ino, mode_t *type);
void dir_node_fd_put(struct dir_fs *d, uint64_t ino);
int dir_node_ref(struct dir_fs *d, uint64_t parent, const char *name,
		 const struct stat *st, uint64_t birth, uint64_t *ino);
void dir_node_forget(struct dir_fs *d, uint64_t ino, uint64_t n);
uint64_t dir_node_hold_named(struct dir_fs *d, uint64_t parent, const char *name, int pfd);
void dir_node_release_named(struct dir_fs *d, uint64_t ino, uint64_t parent, const char *name,
			    bool removed);
void dir_node_rename_held(struct dir_fs *d, uint64_t ino, uint64_t newparent,
			  const char *newname);
int dir_node_ref_new(struct dir_fs *d, uint64_t parent, const char *name,
		     const struct stat *st, uint64_t birth, uint64_t *ino, bool *created);
uint64_t dir_node_find(struct dir_fs *d, const struct stat *st, uint64_t birth);
uint64_t dir_node_find_named(struct dir_fs *d, uint64_t parent, const char *name);
void dir_node_set_wd(struct dir_fs *d, uint64_t ino, int wd);
bool dir_node_has_wd(struct dir_fs *d, uint64_t ino);
void dir_node_watch_known(struct dir_fs *d);
void dir_node_opened(struct dir_fs *d, uint64_t ino, int delta);
bool dir_node_name_of(struct dir_fs *d, uint64_t ino, uint64_t *parent, char *name);
void dir_node_stats(struct dir_fs *d, size_t *nodes, size_t *cached, size_t *pinned);

/* dir_ns.c */
void dir_fill_entry(struct dir_fs *d, uint64_t ino, const struct stat *st,
		    struct eddy_entry *e);
void dir_fix_attr(struct dir_fs *d, struct stat *st);
int dir_check_name(const char *name);
/* lstat of NAME in DIRFD ("" = DIRFD itself) with the birth time. */
int dir_stat_at(int dirfd, const char *name, struct stat *st, uint64_t *birth);
mode_t dir_create_mode(int pfd, mode_t mode, const struct eddy_ctx *c);
int dir_proc_path(char *buf, size_t size, int fd);

/* dir.c: the list of open handles */
void dir_files_add(struct dir_fs *d, struct dir_file *f);
void dir_files_remove(struct dir_fs *d, struct dir_file *f);

/* dir_killpriv.c: clear setuid/setgid after an unprivileged write. */
void dir_kill_priv(const struct eddy_ctx *c, int fd);

/* dir_watch*.c: change detection (see the header comment of dir_watch.c). */
struct dir_watch;
int dir_watch_start(struct eddy_fs *fs, const struct eddy_events *ev);
void dir_watch_stop(struct eddy_fs *fs);
/* "fanotify" or "inotify" while change detection runs, else NULL. */
const char *dir_watch_source(struct dir_fs *d);
void dir_watch_remove(struct dir_fs *d, int wd);
void dir_watch_expect(struct dir_fs *d, uint64_t parent, const char *name, bool add, int delta);
void dir_watch_own_change(struct dir_fs *d, uint64_t ino, int fd);
void dir_watch_report(struct dir_fs *d, eddy_stat_fn fn, void *arg);
/* A new directory node: watch it (no-op without change detection). */
void dir_watch_new_dir(struct dir_fs *d, uint64_t ino, const struct stat *seen);
/* A regular file with several links: watch the inode itself. */
void dir_watch_new_multilink(struct dir_fs *d, uint64_t ino);
double dir_timeout(struct dir_fs *d, double t);

/* dir_lock.c: locks shared through the backing files. */
struct lock_owner;
int dir_locks_init(struct dir_fs *d);
void dir_locks_free(struct dir_fs *d);
int dir_getlk(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t,
	      struct flock *);
int dir_setlk(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t,
	      const struct flock *, bool);
int dir_flock(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t, int);
int dir_flush_owner(struct eddy_fs *, struct eddy_file *, uint64_t);
void dir_locks_release_file(struct dir_fs *d, struct dir_file *f);

/* dir_creds.c: act as the caller while creating objects (root only). */
struct dir_creds {
	bool switched;
};
int dir_creds_enter(struct dir_fs *d, const struct eddy_ctx *c, struct dir_creds *s);
void dir_creds_leave(struct dir_creds *s);

extern const struct eddy_fs_ops dir_fs_ops;

/* operations, one group per file */
int dir_lookup(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
	       struct eddy_entry *);
void dir_forget(struct eddy_fs *, uint64_t, uint64_t);
int dir_getattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		struct stat *, double *);
int dir_setattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		const struct stat *, int, struct stat *, double *);
int dir_mknod(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t,
	      dev_t, struct eddy_entry *);
int dir_mkdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t,
	      struct eddy_entry *);
int dir_symlink(struct eddy_fs *, const struct eddy_ctx *, const char *, uint64_t,
		const char *, struct eddy_entry *);
int dir_link(struct eddy_fs *, const struct eddy_ctx *, uint64_t, uint64_t, const char *,
	     struct eddy_entry *);
int dir_unlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
int dir_rmdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
int dir_rename(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, uint64_t,
	       const char *, unsigned int);
ssize_t dir_readlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
int dir_statfs(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct statvfs *);

int dir_open(struct eddy_fs *, const struct eddy_ctx *, uint64_t, int, struct eddy_file **,
	     struct eddy_open *);
int dir_create(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t, int,
	       struct eddy_entry *, struct eddy_file **, struct eddy_open *);
ssize_t dir_read(struct eddy_fs *, struct eddy_file *, void *, size_t, off_t);
ssize_t dir_write(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, const void *,
		  size_t, off_t);
int dir_fsync(struct eddy_fs *, struct eddy_file *, bool);
void dir_release(struct eddy_fs *, struct eddy_file *);
int dir_fallocate(struct eddy_fs *, struct eddy_file *, int, off_t, off_t);
ssize_t dir_copy_file_range(struct eddy_fs *, struct eddy_file *, off_t, struct eddy_file *,
			    off_t, size_t, int);
off_t dir_lseek(struct eddy_fs *, struct eddy_file *, off_t, int);

int dir_opendir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file **,
		struct eddy_open *);
int dir_readdir(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t, bool,
		eddy_fill_fn, void *);
int dir_fsyncdir(struct eddy_fs *, struct eddy_file *, bool);
void dir_releasedir(struct eddy_fs *, struct eddy_file *);

int dir_setxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
		 const void *, size_t, int);
ssize_t dir_getxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, void *,
		     size_t);
ssize_t dir_listxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
int dir_removexattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);

#endif /* EDDY_DIR_INT_H */
