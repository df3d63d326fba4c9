/*
** vol_fixture.h -- helpers of the volume backend's unit tests: a fresh
** volume in a temporary directory per test, reopening it (a remount),
** and direct looks into its database. The mem fixture's wrappers around
** struct eddy_fs_ops (mfx_*) work on any struct mfx, so they are reused.
*/
#ifndef EDDY_VOL_FIXTURE_H
#define EDDY_VOL_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "mem_fixture.h"
#include "backend/volume/vol.h"
#include "util/posix_acl.h"

struct vfx {
	struct mfx x;              /* x.fs is the open volume */
	char dir[96];              /* the volume directory */
};

static inline int vfx_reopen(struct vfx *v)
{
	struct vol_options o;
	char err[512];
	int r;

	vol_options_default(&o);
	r = vol_fs_open(v->dir, &o, &v->x.fs, err, sizeof(err));
	v->x.op = r == 0 ? v->x.fs->ops : NULL;
	return r;
}

/* Another open of V's volume into X (another mount, as far as the volume
** can tell), with the commit window BATCH_MS. */
static inline int vfx_open_more(struct vfx *v, struct mfx *x, unsigned batch_ms)
{
	struct vol_options o;
	char err[512];
	int r;

	memset(x, 0, sizeof(*x));
	eddy_ctx_self(&x->ctx);
	vol_options_default(&o);
	o.batch_ms = batch_ms;
	r = vol_fs_open(v->dir, &o, &x->fs, err, sizeof(err));
	if (r)
		fprintf(stderr, "  open: %s\n", err);
	x->op = r ? NULL : x->fs->ops;
	return r;
}

/* A new volume with BLOCK_SIZE (0: default), CAPACITY, MAX_INODES. */
static inline int vfx_open(struct vfx *v, uint32_t block_size, uint64_t capacity,
			   uint64_t max_inodes)
{
	struct vol_format_options fo;
	char err[512], base[] = "/var/tmp/eddy-vol-XXXXXX";
	int r;

	memset(v, 0, sizeof(*v));
	eddy_ctx_self(&v->x.ctx);
	if (!mkdtemp(base))
		return -errno;
	snprintf(v->dir, sizeof(v->dir), "%s/v", base);
	vol_format_options_default(&fo);
	if (block_size)
		fo.block_size = block_size;
	fo.capacity = capacity;
	fo.max_inodes = max_inodes;
	r = vol_format(v->dir, &fo, err, sizeof(err));
	if (r) {
		fprintf(stderr, "  vol_format: %s\n", err);
		return r;
	}
	return vfx_reopen(v);
}

static inline int vfx_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Destroys the filesystem (as at unmount; no release of open handles). */
static inline void vfx_unmount(struct vfx *v)
{
	if (v->x.fs)
		v->x.fs->ops->destroy(v->x.fs);
	v->x.fs = NULL;
}

static inline void vfx_close(struct vfx *v)
{
	char base[96];

	vfx_unmount(v);
	snprintf(base, sizeof(base), "%s", v->dir);
	*strrchr(base, '/') = 0;
	nftw(base, vfx_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* One integer from SQL run on the volume's database (another connection). */
static inline long long vfx_sql_int(struct vfx *v, const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *s;
	long long r = -1;

	if (v->x.fs)
		vol_fs_commit(v->x.fs);        /* what the commit window holds */
	snprintf(path, sizeof(path), "%s/eddyfs.db", v->dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(s);

		r = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : rc == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return r;
}

/* Block files in the volume's block folder. */
static inline int vfx_count_blocks(struct vfx *v)
{
	char path[160];
	int n = 0;

	if (v->x.fs)
		vol_fs_commit(v->x.fs);        /* dead blocks go after the commit */
	for (int i = 0; i < 256; i++) {
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/blocks/%02x", v->dir, i);
		if (!(d = opendir(path)))
			continue;
		while ((de = readdir(d)))
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

#endif /* EDDY_VOL_FIXTURE_H */
