/*
** vol_int.h -- internals of the volume backend, shared by its files only.
** Nothing outside src/backend/volume/ includes this header.
**
** LOCKS (taken in this order, never the other way round)
**   1. vol_inode.data_lock (rwlock): the dirty chunks of one file and the
**      order of its data operations: shared for reads (which may then load
**      blocks in parallel), exclusive for write, flush, truncate, setattr,
**      fallocate, lseek and release. At most one is held at a time.
**   2. vol_fs.db_lock (mutex): the one SQLite connection, its statement
**      cache, every transaction, and the counters a transaction changes
**      (used_bytes, ninodes, next_block). Every SQL statement runs under
**      it, so SQLite itself never sees two threads (it is opened
**      SQLITE_OPEN_NOMUTEX). Namespace operations take only this lock.
**   3. vol_fs.table_lock (mutex, leaf): the in-memory inode table (kernel
**      references, open counts, pins) and every inode's overlay.
**   4. vol_fs.cache.lock (mutex, leaf): the decoded-block cache.
**   5. vol_bg.lock (vol_follow.c): the follower's connection and its
**      state; taken with no other lock of the volume held, never held
**      while db_lock is taken (the heartbeat drops it first). Lock
**      waiters sleep on it (vol_bg_wait_commit) holding nothing else.
** Block files are read and written with no lock but data_lock.
**
** INODE LIFETIME
** (1) An inode row lives while nlink > 0 OR the mount holds it: kernel
**     references (nlookup), open handles (nopen). The decision to delete
**     a row is taken under db_lock (with table_lock to read the counts),
**     in the transaction that drops the last link or by forget/release
**     once the last reference goes, so it is taken exactly once.
** (2) Several opens (sessions) may share the volume. When this open
**     drops the last link of an inode it still holds, the same
**     transaction adds a `holds` row (session, ino); the last release or
**     forget deletes the row and, if no session holds the inode, the
**     inode. A row with nlink = 0 that no live session holds is an
**     orphan: the reaper (at open, every VOL_REAP_MS, and at a clean
**     close) deletes it with its blocks. A session dies with its process
**     (same host) or after VOL_EXPIRE_MS without a heartbeat; its holds
**     and locks go with it. An inode another open removed the last name
**     of is deleted at once only if no other session exists; otherwise
**     the reaper of every open that references it adopts it (a holds
**     row) within VOL_REAP_MS, and unadopted orphans go once their ctime
**     is VOL_EXPIRE_MS old (vol_session.c, rule 3).
** (3) Inode numbers come from AUTOINCREMENT: never reused in a volume.
** (4) The in-memory struct vol_inode exists while nlookup, nopen or pins
**     is non-zero; it holds nothing that is not also in the database
**     except dirty data (while open) and the overlay that describes it.
**
** DATA
** (1) File data is cut into chunks of block_size bytes; chunk IDX of a
**     file is row (ino, idx) of `chunks`, naming an immutable block and
**     its valid length LEN: bytes of the chunk past LEN read as zeros, a
**     missing row is a hole. A changed chunk gets a new block; the old
**     one is unlinked after the transaction that drops it commits.
** (2) Writes go to per-inode dirty chunks in memory. A chunk that fills
**     up is written ahead at once (its block file written under its
**     temporary name, the kernel's writeback started, no wait: ch->early)
**     and parked: its buffer goes back to the pool and reads come from
**     that file, while the writer goes on; a later change to it reads it
**     back and drops the early block. The write-out — when a file holds
**     more than VOL_DIRTY_MAX chunks in memory or VOL_PARKED_MAX parked,
**     at flush (close), fsync, truncate, setattr and release — writes
**     the other chunks the same way, then vol_block_sync waits for every
**     block's data, names the blocks and the folders are fsynced (one
**     journal commit on ext3/ext4/XFS); then ONE transaction references
**     all of them and sets the size and times. A crash at any point
**     leaves at worst unreferenced blocks (for a later gc).
** (3) While a file has dirty chunks its size and times live in the
**     overlay (guarded by table_lock, cleared under db_lock + table_lock
**     when they reach the database) and every attribute reply shows them.
*/
#ifndef EDDY_VOL_INT_H
#define EDDY_VOL_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "../../fs.h"
#include "../../util/access.h"
#include "../../util/fsrules.h"
#include "../../util/posix_acl.h"
#include "vol.h"

#define VOL_DB_NAME "eddyfs.db"
#define VOL_BLOCKS_DIR "blocks"
#define VOL_LOCK_NAME "eddyfs.lock"
#define VOL_LINK_MAX 65000
/* A directory's size: a nominal 20 bytes per entry, "." and ".." included
** (as tmpfs), kept in its inode row. */
#define VOL_DIRENT_SIZE 20
#define VOL_SYMLINK_MAX 4095
#define VOL_MAX_FILE_SIZE (UINT64_C(1) << 50)
#define VOL_DIRTY_MAX 8             /* dirty chunks per file before write-out */
#define VOL_PARKED_MAX 64           /* parked chunks per file before write-out */
#define VOL_CACHE_BLOCKS 8          /* decoded blocks kept for reads */
#define VOL_POOL_BUFS 8             /* spare block buffers kept for reuse */
#define VOL_BLOCK_ID_BATCH 1024     /* block ids reserved per meta update */
/* sessions (vol_session.c) and news (vol_follow.c) */
#define VOL_HEARTBEAT_MS 1000       /* a session's heartbeat */
#define VOL_EXPIRE_MS 8000          /* no heartbeat for this long: dead */
#define VOL_REAP_MS 2000            /* dead sessions, orphans, old news */
#define VOL_FOLLOW_MS 2             /* data_version poll while watching */
#define VOL_BATCH_OPS 512           /* operations per commit, at most */
#define VOL_BATCH_FREE (64 << 20)   /* no commit window below this much free space */

/* Prepared statements, cached on the connection (vol_db.c). */
enum vol_query {
	Q_INODE_GET,
	Q_INODE_PUT,
	Q_INODE_NEW,
	Q_INODE_DEL,
	Q_INODE_NLINK,
	Q_INODE_TIMES,
	Q_INODE_COOKIE,
	Q_DENTRY_GET,
	Q_DENTRY_ADD,
	Q_DENTRY_DEL,
	Q_DENTRY_SET,
	Q_DENTRY_ANY,
	Q_DENTRY_LIST,
	Q_DENTRY_LIST_PLUS,
	Q_SYMLINK_GET,
	Q_SYMLINK_ADD,
	Q_SYMLINK_DEL,
	Q_XATTR_GET,
	Q_XATTR_PUT,
	Q_XATTR_DEL,
	Q_XATTR_LIST,
	Q_XATTR_DEL_ALL,
	Q_XATTR_BYTES,
	Q_CHUNK_GET,
	Q_CHUNK_PUT,
	Q_CHUNK_DEL,
	Q_CHUNK_FROM,
	Q_CHUNK_DEL_FROM,
	Q_CHUNK_TRIM,
	Q_META_GET,
	Q_META_SET,
	Q_ORPHANS,
	Q_TOTALS_GET,
	Q_TOTALS_ADD,
	Q_BLOCK_HWM,
	Q_HOLD_ADD,
	Q_HOLD_DEL,
	Q_HOLD_ANY,
	Q_OTHERS,                  /* sessions besides this one */
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
	Q_COUNT
};

/* One inode row. */
struct vol_attr {
	uint64_t ino;
	mode_t mode;               /* type and permission bits */
	uid_t uid;
	gid_t gid;
	uint64_t nlink;
	uint64_t size;
	uint64_t stored;           /* bytes held in blocks */
	dev_t rdev;
	int64_t atime, mtime, ctime, btime; /* ns since the epoch */
	uint64_t parent;           /* directories: ".." */
	uint64_t next_cookie;      /* directories: the next entry's cookie */
};

/* A chunk with changes not yet in a block (vol_data.c). */
struct vol_chunk {
	struct vol_chunk *next;
	uint64_t idx;
	uint32_t len;              /* valid bytes in buf (zeros past it; the
				    * buffer's bytes there are undefined) */
	uint32_t base_len;         /* valid bytes of the committed chunk */
	uint64_t reserved;         /* bytes counted against the capacity */
	uint64_t early;            /* a block written ahead with these bytes
				    * (not yet synced nor referenced), or 0 */
	char *buf;                 /* block_size bytes */
};

struct vol_inode {
	uint64_t ino;
	struct vol_inode *hnext;
	uint64_t nlookup;          /* table_lock */
	uint32_t nopen;            /* table_lock */
	uint32_t pins;             /* table_lock: operations in progress */
	pthread_rwlock_t data_lock;
	struct vol_chunk *dirty;   /* data_lock */
	unsigned ndirty;           /* data_lock */
	unsigned nparked;          /* of them parked: no buffer (DATA (2)) */
	bool unsynced;             /* data_lock: committed since the last sync */
	bool orphan;               /* table_lock: lost its last name while held */
	/* overlay (table_lock): size and times of dirty data */
	bool overlay;
	uint64_t size;
	int64_t mtime, ctime;
};

/* The decoded-block cache: immutable blocks, so entries never go stale. */
struct vol_cache_entry {
	uint64_t block;            /* 0: free */
	bool loading;              /* a thread reads the block in */
	unsigned pins;             /* readers copying from data */
	uint32_t len;
	uint64_t used;             /* LRU clock */
	char *data;
};

struct vol_cache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;     /* an entry stopped loading */
	struct vol_cache_entry e[VOL_CACHE_BLOCKS];
	uint64_t clock;
};

struct vol_fs {
	struct eddy_fs base;       /* must be first */
	struct vol_options opt;
	int dir_fd, blocks_fd, lock_fd;
	uint32_t block_size;
	bool compress;
	uint64_t capacity;         /* 0: the host filesystem's */
	uint64_t max_inodes;       /* 0: none */
	bool protected_hardlinks;  /* fs.protected_hardlinks, read at open */
	bool journal_orders;       /* vol_journal_orders(blocks_fd) */

	pthread_mutex_t db_lock;   /* see LOCKS */
	sqlite3 *db;
	sqlite3_stmt *stmt[Q_COUNT];
	bool in_tx;
	bool news;                 /* this transaction writes change news (others exist) */
	int tx_others;             /* other sessions when the write lock was taken */
	/* the commit window (vol_db.c, BATCHES) */
	bool batch_open;           /* a write transaction spans operations */
	bool broken;               /* a batch failed to commit: writes fail with EIO */
	unsigned batch_ops;        /* operations in it */
	int64_t batch_start;       /* when it began (monotonic ms) */
	atomic_llong batch_deadline; /* when the background thread commits it; 0: none */
	atomic_bool space_low;     /* under VOL_BATCH_FREE free: no window */
	atomic_llong batches, batch_lost;
	size_t tx_dead_mark;       /* tx_ndead when the operation's savepoint began */
	bool db_unsynced;          /* commits since the last synchronous=FULL one */
	int64_t used_bytes;        /* data + xattrs + symlink targets */
	int64_t ninodes;
	int64_t tx_used, tx_inodes; /* deltas of the open transaction */
	uint64_t *tx_dead;         /* blocks to unlink once it commits */
	size_t tx_ndead, tx_cap;
	uint64_t next_block, block_hwm;

	atomic_llong reserved;     /* capacity reserved by dirty chunks */

	pthread_mutex_t table_lock;
	struct vol_inode **table;
	size_t nbuckets, count;
	struct vol_file *files;    /* table_lock: every open handle, for destroy */

	struct vol_cache cache;
	/* block_size buffers kept for reuse: no mmap/munmap per block (and
	 * no TLB shootdown across the FUSE threads) */
	pthread_mutex_t pool_lock; /* leaf */
	char *pool[VOL_POOL_BUFS];
	int npool;
	atomic_long nopen;
	atomic_llong blocks_written, blocks_read, cache_hits, bad_blocks;

	/* sessions and change news (vol_session.c, vol_follow.c) */
	char *path;                /* the volume directory */
	int64_t session;           /* this open's row in `sessions` */
	char host[256];
	struct vol_bg *bg;         /* the background thread (heartbeat, follower) */
	atomic_llong news_rows, news_gaps, sessions_reaped, orphans_reaped;
	atomic_llong locks_taken;  /* vol_lock.c: granted lock requests */
};

static inline struct vol_fs *vol_fs(struct eddy_fs *fs)
{
	return (struct vol_fs *)fs;
}

struct vol_file {
	struct eddy_file base;     /* must be first */
	struct vol_inode *vi;      /* alive while open */
	int flags;
	bool is_dir;
	struct vol_file *prev, *next; /* vol_fs.files, table_lock */
	uint64_t *lk_owners;       /* db_lock: owners that locked through it */
	unsigned lk_n, lk_cap;
};

static inline struct vol_file *vol_file(struct eddy_file *f)
{
	return (struct vol_file *)f;
}

/* vol_session.c: sessions, holds, totals, reaping (db_lock held unless said) */
/* Adds the tables of shared use to an older volume, the totals to meta. */
int vol_schema_upgrade(struct vol_fs *v);
/* Registers this open in `sessions` (KIND "mount" or "client"). */
int vol_session_register(struct vol_fs *v, const char *kind, const char *mountpoint);
/* Heartbeat; re-registers a session another mount reaped (returns 1). */
int vol_session_heartbeat(struct vol_fs *v, int64_t cursor, bool following);
/* Removes dead sessions (their holds and locks), then the orphans no live
** session holds, then the change rows every follower has read. */
int vol_session_reap(struct vol_fs *v);
/* Clean close: this session's holds and locks go, then its orphans. */
void vol_session_end(struct vol_fs *v);
/* Is the process PID started at START (clock ticks) still there? */
bool vol_pid_alive(pid_t pid, int64_t start);
int64_t vol_pid_start(pid_t pid);
/* Sessions other than this one (live or not yet reaped). */
int vol_session_others(struct vol_fs *v);
/* In a transaction: this session keeps INO (open-unlinked) alive. */
int vol_hold_add(struct vol_fs *v, uint64_t ino);
/* Does any session hold INO? (1 yes, 0 no, negative errno) */
int vol_hold_any(struct vol_fs *v, uint64_t ino);

/* vol_follow.c: change news */
/* Temporary triggers on this connection that log every change to
** `changes` with this session's id, in the changing transaction. */
int vol_changes_triggers(struct vol_fs *v);
int vol_bg_start(struct vol_fs *v, char *err, size_t errlen);
void vol_bg_stop(struct vol_fs *v);
int vol_watch_start(struct eddy_fs *fs, const struct eddy_events *ev);
void vol_watch_stop(struct eddy_fs *fs);
/* The last change row read by the follower; is it following? */
int64_t vol_bg_cursor(struct vol_fs *v);
bool vol_bg_following(struct vol_fs *v);
/* Waits (no lock of the volume held) until another connection commits
** after the *SEEN'th commit seen, or TIMEOUT_MS; updates *SEEN. */
int vol_bg_wait_commit(struct vol_fs *v, uint64_t *seen, int timeout_ms);
uint64_t vol_bg_commits(struct vol_fs *v);

/* vol_lock.c: fcntl and flock locks in the database */
int vol_getlk(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t,
	      struct flock *);
int vol_setlk(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t,
	      const struct flock *, bool);
int vol_flock(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t, int);
int vol_flush_owner(struct eddy_fs *, struct eddy_file *, uint64_t);
/* F's last release: the locks of every owner that locked through it go. */
void vol_locks_release_file(struct vol_fs *v, struct vol_file *f);

/* vol_format.c: schema and meta */
/* Removes what a format (or a load) made in DIR: everything if CREATED,
** else the volume's files in the directory it was given. */
void vol_format_undo(const char *dir, bool created);
int vol_schema_create(sqlite3 *db, const struct vol_format_options *o, char *err,
		      size_t errlen);
/* Opens DIR's database (READONLY or read-write) and checks that it is a
** volume this build can mount; fills the format fields of O. */
int vol_db_open_checked(int dir_fd, const char *dir, bool readonly, sqlite3 **db,
			struct vol_format_options *o, char *err, size_t errlen);

/* vol_db.c: statements and transactions (db_lock held) */
sqlite3_stmt *vol_q(struct vol_fs *v, enum vol_query q);
int vol_db_errno(int rc);
/* Steps a statement that returns no row; resets it. */
int vol_exec(struct vol_fs *v, sqlite3_stmt *s);
int vol_sql(sqlite3 *db, const char *sql);
/* Starts one operation's write transaction: a savepoint in the open
** batch, else BEGIN IMMEDIATE (then the totals as the database has them)
** that opens a batch when the window allows (vol_db.c, BATCHES). */
int vol_tx_begin(struct vol_fs *v);
/* BEGIN IMMEDIATE of a transaction of its own, committed by vol_tx_end:
** commits the open batch first. For locks, sessions and durable commits. */
int vol_tx_begin_direct(struct vol_fs *v);
/* Commits the open batch, if any (not inside an operation). */
int vol_batch_commit(struct vol_fs *v);
/* Monotonic milliseconds. */
int64_t vol_mono_ms(void);
/* Sets space_low from the free space of the volume's filesystem. */
void vol_free_check(struct vol_fs *v);
/* vol_follow.c: wakes the background thread (a batch began). */
void vol_bg_kick(struct vol_fs *v);
/* Refreshes used_bytes and ninodes from meta. */
int vol_totals_read(struct vol_fs *v);
/* Ends the operation: when ERR is 0 it is kept (committed now, or with
** its batch; the dead blocks are unlinked after that commit), else rolled
** back alone; returns ERR or the commit's error. */
int vol_tx_end(struct vol_fs *v, int err);
/* vol_tx_begin with db_lock taken first (released again on failure), and
** vol_tx_end followed by the release of db_lock. */
int vol_tx_open(struct vol_fs *v);
int vol_tx_close(struct vol_fs *v, int err);
/* Makes every commit so far durable (one synchronous=FULL transaction). */
int vol_db_sync(struct vol_fs *v);
void vol_tx_dead_block(struct vol_fs *v, uint64_t block);
int vol_attr_get(struct vol_fs *v, uint64_t ino, struct vol_attr *a);
int vol_attr_put(struct vol_fs *v, const struct vol_attr *a);
void vol_attr_stat(const struct vol_fs *v, const struct vol_attr *a, struct stat *st);
void vol_attr_from_row(sqlite3_stmt *s, int col, struct vol_attr *a);
int64_t vol_now(void);
void vol_ns_to_ts(int64_t ns, struct timespec *ts);
int64_t vol_ts_to_ns(const struct timespec *ts);
/* Deletes inode A's rows (in the open transaction), its blocks after. */
int vol_inode_delete_rows(struct vol_fs *v, const struct vol_attr *a);
/* An xattr value (malloc'd, *size) or NULL if absent. */
void *vol_xattr_load(struct vol_fs *v, uint64_t ino, const char *name, size_t *size, int *err);
int vol_xattr_store(struct vol_fs *v, uint64_t ino, const char *name, const void *value,
		    size_t size);
int vol_xattr_remove(struct vol_fs *v, uint64_t ino, const char *name);
int vol_space_check(struct vol_fs *v, int64_t more);

/* vol_inode.c: the in-memory inode table */
int vol_table_init(struct vol_fs *v);
void vol_table_free(struct vol_fs *v);
/* Finds or adds INO and pins it (table_lock taken here). */
struct vol_inode *vol_inode_pin(struct vol_fs *v, uint64_t ino);
void vol_inode_unpin(struct vol_fs *v, struct vol_inode *vi);
/* db_lock held: is INO held by the mount (references or opens)? */
bool vol_inode_held(struct vol_fs *v, uint64_t ino);
/* db_lock held: fills E from A (with the overlay) and gives one reference. */
int vol_fill_entry(struct vol_fs *v, const struct vol_attr *a, struct eddy_entry *e);
/* db_lock held: A as struct stat with the overlay applied. */
void vol_stat_overlay(struct vol_fs *v, const struct vol_attr *a, struct stat *st);
/* Drops N kernel references; deletes the inode if nothing holds it. */
void vol_inode_unref(struct vol_fs *v, uint64_t ino, uint64_t n, bool opened);
/* In a transaction, after A lost a link: if A has none left, deletes it
** now (*DELETED true, if DELETED is not NULL), or marks it for deletion
** when the last holder lets go. */
int vol_inode_unlinked(struct vol_fs *v, const struct vol_attr *a, bool *deleted);
/* db_lock may be held: gives back one reference to INO, which has a
** name (so it is never deleted here). */
void vol_inode_unref_named(struct vol_fs *v, uint64_t ino);
/* Does the mount hold INO? If so it is marked an orphan (its last release
** lets go of the session's hold). */
bool vol_inode_adopt(struct vol_fs *v, uint64_t ino);
/* db_lock held, no transaction: deletes INO if it has no name and nothing holds it. */
void vol_inode_reap(struct vol_fs *v, uint64_t ino);

/* A handle on INO (which the caller has checked); nopen is raised. */
int vol_handle_new(struct vol_fs *v, uint64_t ino, int flags, bool dir, struct eddy_file **fp);
void vol_handle_free(struct vol_fs *v, struct vol_file *f);

/* vol_gc.c: what the offline tools (fsck, gc) share */
struct vol_tool {
	const char *dir;
	int dir_fd, blocks_fd, lock_fd;
	bool alone;                /* holds LOCK_EX: no mount or client */
	sqlite3 *db;               /* read-write connection, no session */
	struct vol_format_options fo;
	uint64_t *refs;            /* block ids chunks name, sorted */
	size_t nrefs;
};
typedef void (*vol_block_visit_fn)(void *arg, const char *rel, uint64_t id, bool tmp,
				   int64_t size, time_t mtime);
int vol_tool_open(struct vol_tool *t, const char *dir, bool need_alone, char *err,
		  size_t errlen);
void vol_tool_close(struct vol_tool *t);
int vol_tool_load_refs(struct vol_tool *t);
bool vol_tool_referenced(const struct vol_tool *t, uint64_t id);
int vol_tool_walk_blocks(struct vol_tool *t, vol_block_visit_fn fn, void *arg);
/* Removes (or lists, dry_run) the block files no chunk names. */
int vol_tool_collect(struct vol_tool *t, const struct vol_gc_options *o, FILE *out,
		     struct vol_gc_report *rep);

/* vol_block.c: the block folder and the decoded-block cache */
/* Reads and checks the block open as FD (header, length, XXH3-64, zstd)
** into DATA (BLOCK_SIZE bytes); 0 and its length in *RAW_LEN, -EIO if it
** is corrupt. Also used by fsck (vol_fsck.c). */
int vol_block_decode(int fd, uint32_t block_size, char *data, uint32_t *raw_len);
int vol_block_alloc(struct vol_fs *v, uint64_t *id);      /* db_lock held */
/* The block folders a write-out renamed blocks in, and the last one. */
struct vol_dirs {
	uint8_t mark[256];
	int last;                  /* -1: none */
};
#define VOL_DIRS_INIT { { 0 }, -1 }

/* Writes block ID under its temporary name, the kernel's writeback
** started; vol_block_sync makes it durable and names it. */
int vol_block_write(struct vol_fs *v, uint64_t id, const void *data, uint32_t len);
/* Block ids with this bit name a block written ahead (DATA (2)), still
** under its temporary name until vol_block_sync. */
#define VOL_BLOCK_EARLY (UINT64_C(1) << 63)
/* Makes the blocks IDS[0..N) (written by vol_block_write) durable and
** names them; the caller then fsyncs the folders in DIRS
** (vol_block_sync_dirs). */
int vol_block_sync(struct vol_fs *v, const uint64_t *ids, size_t n, struct vol_dirs *dirs);
/* Does the filesystem of FD commit its journal in order, data first
** (ext4, XFS)? Then one folder fsync makes a write-out durable. */
bool vol_journal_orders(int fd);
/* fsyncs the folders of DIRS: with journal_orders only the last one
** (its commit covers every earlier rename), else each. */
int vol_block_sync_dirs(struct vol_fs *v, const struct vol_dirs *dirs);
void vol_block_unlink(struct vol_fs *v, uint64_t id);
/* Copies N bytes at OFF of block ID (LEN valid bytes) into DST; -EIO if
** the block is missing or fails its checksum. */
int vol_block_pin(struct vol_fs *v, uint64_t id, uint32_t len, struct vol_cache_entry **out);
void vol_block_unpin(struct vol_fs *v, struct vol_cache_entry *e);
int vol_block_read(struct vol_fs *v, uint64_t id, uint32_t len, uint32_t off, uint32_t n,
		   void *dst);
/* A buffer of block_size bytes (zeroed if ZERO), and its return. */
char *vol_buf_get(struct vol_fs *v, bool zero);
void vol_buf_put(struct vol_fs *v, char *buf);
/* Asks the kernel to read block ID ahead (sequential readers). A thread
** that loaded the next block into the cache instead was measured no
** faster: reading the block files is the limit (bench/README.md). */
void vol_block_prefetch(struct vol_fs *v, uint64_t id);
void vol_cache_init(struct vol_cache *c);
void vol_cache_free(struct vol_fs *v);

/* vol_data.c: dirty chunks (data_lock held) */
ssize_t vol_data_write(struct vol_fs *v, struct vol_inode *vi, const void *buf, size_t size,
		       uint64_t off, uint64_t cur_size);
ssize_t vol_data_read(struct vol_fs *v, struct vol_inode *vi, void *buf, size_t size,
		      uint64_t off);
/* Writes every dirty chunk out (one transaction); DURABLE: then syncs. */
int vol_data_flush(struct vol_fs *v, struct vol_inode *vi, bool durable);
/* Drops dirty chunks (the file is gone). */
void vol_data_discard(struct vol_fs *v, struct vol_inode *vi);
/* In a transaction: cuts the chunks of A to SIZE. */
int vol_data_truncate(struct vol_fs *v, struct vol_attr *a, uint64_t size);

extern const struct eddy_fs_ops vol_fs_ops;

/* operations */
int vol_lookup(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
	       struct eddy_entry *);
void vol_forget(struct eddy_fs *, uint64_t, uint64_t);
int vol_mknod(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t, dev_t,
	      struct eddy_entry *);
int vol_mkdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t,
	      struct eddy_entry *);
int vol_symlink(struct eddy_fs *, const struct eddy_ctx *, const char *, uint64_t, const char *,
		struct eddy_entry *);
int vol_link(struct eddy_fs *, const struct eddy_ctx *, uint64_t, uint64_t, const char *,
	     struct eddy_entry *);
int vol_unlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
int vol_rmdir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);
ssize_t vol_readlink(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
int vol_rename(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, uint64_t,
	       const char *, unsigned int);
/* vol_ns.c, for create: makes PARENT/NAME in the open transaction. */
int vol_make(struct vol_fs *v, const struct eddy_ctx *c, uint64_t parent, const char *name,
	     mode_t mode, dev_t rdev, const char *target, struct vol_attr *out);
int vol_dentry_get(struct vol_fs *v, uint64_t parent, const char *name, uint64_t *ino);
int vol_dir_get(struct vol_fs *v, uint64_t ino, struct vol_attr *a);

/* vol_perm.c: access checks when vol_options.check_access (else they
** pass): C's MASK access to A, removal of VICTIM from DIR (write and
** search, the sticky rule), a setattr change; access(2). */
int vol_may(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a, int mask);
int vol_may_delete(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *dir,
		   const struct vol_attr *victim);
int vol_may_setattr(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a,
		    const struct stat *want, int mask, bool file_open);
int vol_access(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int mask);
int vol_may_link(struct vol_fs *v, const struct eddy_ctx *c, const struct vol_attr *a);
bool vol_protected_hardlinks(void);

int vol_getattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		struct stat *, double *);
int vol_setattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file *,
		const struct stat *, int, struct stat *, double *);

int vol_open(struct eddy_fs *, const struct eddy_ctx *, uint64_t, int, struct eddy_file **,
	     struct eddy_open *);
int vol_create(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, mode_t, int,
	       struct eddy_entry *, struct eddy_file **, struct eddy_open *);
ssize_t vol_read(struct eddy_fs *, struct eddy_file *, void *, size_t, off_t);
ssize_t vol_write(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, const void *,
		  size_t, off_t);
int vol_flush(struct eddy_fs *, struct eddy_file *);
int vol_fsync(struct eddy_fs *, struct eddy_file *, bool);
void vol_release(struct eddy_fs *, struct eddy_file *);
int vol_fallocate(struct eddy_fs *, struct eddy_file *, int, off_t, off_t);
ssize_t vol_copy_file_range(struct eddy_fs *, struct eddy_file *, off_t, struct eddy_file *,
			    off_t, size_t, int);
off_t vol_lseek(struct eddy_fs *, struct eddy_file *, off_t, int);

int vol_opendir(struct eddy_fs *, const struct eddy_ctx *, uint64_t, struct eddy_file **,
		struct eddy_open *);
int vol_readdir(struct eddy_fs *, const struct eddy_ctx *, struct eddy_file *, uint64_t, bool,
		eddy_fill_fn, void *);
int vol_fsyncdir(struct eddy_fs *, struct eddy_file *, bool);
void vol_releasedir(struct eddy_fs *, struct eddy_file *);

int vol_setxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *,
		 const void *, size_t, int);
ssize_t vol_getxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *, void *,
		     size_t);
ssize_t vol_listxattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, char *, size_t);
int vol_removexattr(struct eddy_fs *, const struct eddy_ctx *, uint64_t, const char *);

#endif /* EDDY_VOL_INT_H */
