/*
** vol.h -- the "volume" backend: a filesystem of its own, metadata in a
** SQLite database and file data in immutable blocks of a block folder.
** See vol.c for what it guarantees; vol_format.c for the on-disk layout.
*/
#ifndef EDDY_VOL_H
#define EDDY_VOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../fs.h"

#define VOL_FORMAT_VERSION 1
#define VOL_DEFAULT_BLOCK_SIZE (UINT32_C(4) << 20)
#define VOL_DEFAULT_BATCH_MS 5      /* the commit window (vol_options.batch_ms) */
#define VOL_MIN_BLOCK_SIZE (UINT32_C(4) << 10)
#define VOL_MAX_BLOCK_SIZE (UINT32_C(64) << 20)

/* What `eddyfs format` writes into a new volume (fixed for its life). */
struct vol_format_options {
	uint32_t block_size;       /* power of two, 4 KiB .. 64 MiB */
	bool compress;             /* zstd-compress blocks that shrink */
	uint64_t capacity;         /* bytes of data, xattrs, symlinks; 0: the host fs */
	uint64_t max_inodes;       /* 0: unlimited */
};

/* Cache policy of one open, and what its session row says of it. Other
** opens' changes reach the kernel through change news (watch_start), so
** long timeouts stay coherent. */
struct vol_options {
	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	bool keep_cache;
	bool cache_readdir;
	const char *mountpoint;    /* NULL: a client without a mount */
	/* the commit window (vol_db.c, BATCHES): while this open is alone on
	 * the volume, operations commit together, at most this many ms apart;
	 * 0: one commit per operation */
	unsigned batch_ms;
	/* the volume checks access rights itself (vol_perm.c): for a mount
	 * without default_permissions, where every caller is the mounting
	 * user. false: the kernel checks them (EDDY_FS_KERNEL_PERMISSIONS),
	 * or the caller does (the volume client). */
	bool check_access;
};

void vol_format_options_default(struct vol_format_options *o);
void vol_options_default(struct vol_options *o);

/* Creates a volume in DIR (missing or empty). On failure returns a
** negative errno and writes a one-line reason into ERR; DIR is left as it
** was found (a directory this call created is removed again). */
int vol_format(const char *dir, const struct vol_format_options *o, char *err, size_t errlen);

/* Is DIR a volume this build can mount, not held by an exclusive tool? Reads only
** (the database as an immutable file: no -wal/-shm made, no lock taken);
** the full integrity check comes with vol_fs_open. 0, or a negative
** errno and a one-line reason in ERR. */
int vol_check(const char *dir, char *err, size_t errlen);

/* Opens the volume in DIR for one mount or client: a shared lock on
** eddyfs.lock (refused while an exclusive tool holds it), a session row,
** then the reaping of dead sessions and of the orphans nobody holds. */
int vol_fs_open(const char *dir, const struct vol_options *o, struct eddy_fs **out, char *err,
		size_t errlen);

/* Commits what the open's commit window holds (vol_options.batch_ms), so
** that other connections see it. 0 or a negative errno. */
int vol_fs_commit(struct eddy_fs *fs);

/* Prints DIR's sessions, usage and counters (eddyfs status) to OUT; reads
** only. 0, or a negative errno and a one-line reason in ERR. */
int vol_status(const char *dir, FILE *out, char *err, size_t errlen);

/* `eddyfs gc` (vol_gc.c): removes block files nothing references and
** unfinished writes (NAME.tmp); needs the volume alone (-EBUSY). */
struct vol_gc_options {
	bool dry_run;              /* list, remove nothing */
	bool verbose;              /* a line per file removed */
};
struct vol_gc_report {
	uint64_t blocks, temps, bytes, failed;
};
int vol_gc(const char *dir, const struct vol_gc_options *o, FILE *out,
	   struct vol_gc_report *rep, char *err, size_t errlen);

/* `eddyfs fsck` (vol_fsck.c): checks a volume, prints a line per problem
** to OUT; with repair (needs the volume alone: -EBUSY) fixes what it can
** prove and prints what it did. Returns 0 when it could run. */
struct vol_fsck_options {
	bool repair;
	bool quick;                /* no block reads: names and rows only */
};
struct vol_fsck_report {
	uint64_t problems;         /* found */
	uint64_t repaired;         /* of those, fixed */
	uint64_t orphans;          /* unlinked inodes (open somewhere, or a crash's) */
	uint64_t unreferenced;     /* block files and unfinished writes */
	uint64_t blocks_checked;
	bool alone;                /* nothing else had the volume open */
};
int vol_fsck(const char *dir, const struct vol_fsck_options *o, FILE *out,
	     struct vol_fsck_report *rep, char *err, size_t errlen);

/* `eddyfs dump` / `eddyfs load` (vol_dump.c): a volume's metadata as JSON
** (a read snapshot, also while mounted), and a new volume in DIR (missing
** or empty) made from such a dump, its blocks linked or copied from
** BLOCKS_FROM (NULL: only a dump without data). */
int vol_dump(const char *dir, FILE *out, char *err, size_t errlen);
int vol_load(FILE *in, const char *dir, const char *blocks_from, FILE *report, char *err,
	     size_t errlen);

#endif /* EDDY_VOL_H */
