/*
** mem_readdir.c -- the mem backend's directory listing: opendir, readdir
** and readdirplus, fsyncdir, releasedir.
**
** "." (cookie 1) and ".." (cookie 2) come first, then the entries in
** cookie order (mem_dir.c): a listing resumed after any cookie it handed
** out continues where it stopped, whatever was added or removed since.
** The whole call holds ns_lock shared (the fill callback never calls back
** into the backend). For readdirplus every entry but "." and ".." carries
** one reference; an entry the caller's buffer did not take gives it back
** at once. A removed directory lists nothing (-ENOENT), as on Linux.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem_int.h"

int mem_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file **fp,
		struct eddy_open *how)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	struct mem_file *f;
	int err = 0;

	(void)c;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_rwlock_rdlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	if (!in)
		err = -ESTALE;
	else if (in->type != S_IFDIR)
		err = -ENOTDIR;
	if (!err) {
		f->base.ino = ino;
		f->inode = in;
		f->is_dir = true;
		atomic_fetch_add(&in->nopen, 1);
		mem_files_add(m, f);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	if (err) {
		free(f);
		return err;
	}
	memset(how, 0, sizeof(*how));
	how->keep_cache = m->opt.keep_cache;
	how->cache_readdir = m->opt.cache_readdir;
	*fp = &f->base;
	return 0;
}

static int emit(struct mem_fs *m, struct mem_dirent *de, bool plus, eddy_fill_fn fill, void *buf)
{
	struct eddy_entry e;
	struct stat st;
	int r;

	if (!plus) {
		memset(&st, 0, sizeof(st));
		st.st_ino = de->inode->ino;
		st.st_mode = de->inode->type;
		return fill(buf, de->name, &st, NULL, de->cookie);
	}
	mem_fill_entry(m, de->inode, &e);
	r = fill(buf, de->name, &e.attr, &e, de->cookie);
	if (r)
		atomic_fetch_sub(&de->inode->nlookup, 1);      /* not taken */
	return r;
}

int mem_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *df,
		uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *d = mem_file(df)->inode;
	struct mem_dirent *de;
	int err = 0;

	(void)c;
	pthread_rwlock_rdlock(&m->ns_lock);
	if (d->nlink == 0) {
		err = -ENOENT;
		goto out;
	}
	if (cookie < 1 && eddy_fill_dot(fill, buf, ".", d->ino, 1, plus))
		goto out;
	if (cookie < 2 && eddy_fill_dot(fill, buf, "..", d->u.dir.parent, 2, plus))
		goto out;
	for (de = mem_dir_next(&d->u.dir, cookie < 2 ? 2 : cookie); de;
	     de = mem_dir_next(&d->u.dir, de->cookie))
		if (emit(m, de, plus, fill, buf))
			break;
out:
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

int mem_fsyncdir(struct eddy_fs *fs, struct eddy_file *df, bool datasync)
{
	(void)fs;
	(void)df;
	(void)datasync;
	return 0;
}

void mem_releasedir(struct eddy_fs *fs, struct eddy_file *df)
{
	mem_release(fs, df);
}
