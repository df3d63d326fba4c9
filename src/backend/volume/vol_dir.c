/*
** vol_dir.c -- the volume backend's directory listing: opendir, readdir
** and readdirplus, fsyncdir, releasedir.
**
** "." (cookie 1) and ".." (cookie 2) come first, then the entries in
** cookie order: every entry gets the directory's next cookie when it is
** added (dentries_by_cookie index), cookies are never reused in that
** directory, so a listing resumed after any cookie it handed out goes on
** where it stopped whatever was added or removed since. Rows are read in
** batches under db_lock; the fill callback never calls back into the
** backend. For readdirplus every entry but "." and ".." carries one
** reference; an entry the caller's buffer did not take gives it back. A
** removed directory lists nothing (-ENOENT), as on Linux.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "vol_int.h"

#define BATCH 128

int vol_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file **fp,
		struct eddy_open *how)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr a;
	int err;

	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, ino, &a);
	if (!err && !S_ISDIR(a.mode))
		err = -ENOTDIR;
	if (!err)
		err = vol_may(v, c, &a, R_OK);
	pthread_mutex_unlock(&v->db_lock);
	if (!err)
		err = vol_handle_new(v, ino, O_RDONLY, true, fp);
	if (err)
		return err;
	memset(how, 0, sizeof(*how));
	how->keep_cache = v->opt.keep_cache;
	how->cache_readdir = v->opt.cache_readdir;
	return 0;
}

/* One row of Q_DENTRY_LIST(_PLUS); returns fill's answer or -errno. */
static int emit_row(struct vol_fs *v, sqlite3_stmt *s, bool plus, eddy_fill_fn fill, void *buf,
		    uint64_t *cookie)
{
	int len = sqlite3_column_bytes(s, 0);
	char name[EDDY_NAME_MAX + 1];
	struct eddy_entry e;
	struct vol_attr a;
	struct stat st;
	int r;

	if (len > EDDY_NAME_MAX)
		len = EDDY_NAME_MAX;
	memcpy(name, sqlite3_column_blob(s, 0), (size_t)len);
	name[len] = 0;
	*cookie = (uint64_t)sqlite3_column_int64(s, 1);
	if (!plus) {
		memset(&st, 0, sizeof(st));
		st.st_ino = (ino_t)sqlite3_column_int64(s, 2);
		st.st_mode = (mode_t)sqlite3_column_int64(s, 3) & S_IFMT;
		return fill(buf, name, &st, NULL, *cookie);
	}
	vol_attr_from_row(s, 2, &a);
	if ((r = vol_fill_entry(v, &a, &e)) < 0)
		return r;
	r = fill(buf, name, &e.attr, &e, *cookie);
	if (r)
		vol_inode_unref_named(v, a.ino);  /* not taken */
	return r;
}

int vol_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *df,
		uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf)
{
	struct vol_fs *v = vol_fs(fs);
	struct vol_attr d;
	int err, r = 0, rows;

	(void)c;
	pthread_mutex_lock(&v->db_lock);
	err = vol_attr_get(v, df->ino, &d);
	if (!err && d.nlink == 0)
		err = -ENOENT;
	if (err)
		goto out;
	if (cookie < 1 && eddy_fill_dot(fill, buf, ".", d.ino, 1, plus))
		goto out;
	if (cookie < 2 && eddy_fill_dot(fill, buf, "..", d.parent, 2, plus))
		goto out;
	if (cookie < 2)
		cookie = 2;
	do {
		sqlite3_stmt *s = vol_q(v, plus ? Q_DENTRY_LIST_PLUS : Q_DENTRY_LIST);
		int rc;

		if (!s) {
			err = -EIO;
			break;
		}
		sqlite3_bind_int64(s, 1, (int64_t)d.ino);
		sqlite3_bind_int64(s, 2, (int64_t)cookie);
		sqlite3_bind_int64(s, 3, BATCH);
		rows = 0;
		while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			rows++;
			r = emit_row(v, s, plus, fill, buf, &cookie);
		}
		if (r == 0 && rc != SQLITE_DONE)
			err = vol_db_errno(rc);
		sqlite3_reset(s);
		if (r < 0)
			err = r;
	} while (!err && r == 0 && rows == BATCH);
out:
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

int vol_fsyncdir(struct eddy_fs *fs, struct eddy_file *df, bool datasync)
{
	struct vol_fs *v = vol_fs(fs);
	int err;

	(void)df;
	(void)datasync;
	pthread_mutex_lock(&v->db_lock);
	err = vol_db_sync(v);
	pthread_mutex_unlock(&v->db_lock);
	return err;
}

void vol_releasedir(struct eddy_fs *fs, struct eddy_file *df)
{
	vol_handle_free(vol_fs(fs), vol_file(df));
}
