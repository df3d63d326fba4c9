/*
** mem_ns.c -- the mem backend's namespace operations: lookup, forget, the
** create family (mknod, mkdir, symlink), link, unlink, rmdir, readlink.
** (rename is mem_rename.c; create, which also opens, is mem_file.c.)
**
** Every change holds ns_lock exclusive from the first check to the last
** update, so it is all or nothing and atomic for every other caller.
** Times as POSIX and Linux have them: a new entry or a removed one updates
** the directory's mtime and ctime; link and unlink update the inode's
** ctime. Directories count 2 + subdirectories links; a removed directory
** has 0 and refuses new entries (-ENOENT) until it is freed.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem_int.h"

struct mem_inode *mem_dir_of(struct mem_fs *m, uint64_t ino, int *err)
{
	struct mem_inode *d = mem_inode_find(m, ino);

	*err = !d ? -ESTALE : d->type != S_IFDIR ? -ENOTDIR : d->nlink == 0 ? -ENOENT : 0;
	return *err ? NULL : d;
}

int mem_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       struct eddy_entry *out)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_dirent *de = NULL;
	struct mem_inode *p;
	int err;

	(void)c;
	err = mem_check_name(name);
	if (err)
		return err;
	pthread_rwlock_rdlock(&m->ns_lock);
	p = mem_dir_of(m, parent, &err);
	if (p)
		de = mem_dir_find(&p->u.dir, name);
	if (de) {
		mem_fill_entry(m, de->inode, out);
	} else if (p) {
		err = -ENOENT;
		if (m->opt.negative_timeout > 0) {
			memset(out, 0, sizeof(*out));
			out->entry_timeout = m->opt.negative_timeout;
			err = 0;
		}
	}
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

void mem_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	bool unused = false;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	if (in) {
		uint_least64_t cur = atomic_load(&in->nlookup), next;

		do
			next = nlookup > cur ? 0 : cur - nlookup;
		while (!atomic_compare_exchange_weak(&in->nlookup, &cur, next));
		unused = mem_inode_unused(in);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	if (unused)
		mem_inode_release(m, ino);
}

int mem_make(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *p, const char *name,
	     mode_t mode, dev_t rdev, const char *target, struct mem_inode **out)
{
	size_t len = target ? strlen(target) : 0;
	struct mem_inode *in;
	int err;

	if (mem_dir_find(&p->u.dir, name))
		return -EEXIST;
	if (len > MEM_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if (target && (err = mem_space_reserve(m, len)) < 0)
		return err;
	err = mem_inode_new(m, c, p, mode, rdev, &in);
	if (err) {
		mem_space_adjust(m, -(long long)len);
		return err;
	}
	if (target) {
		in->u.target = malloc(len + 1);
		if (!in->u.target) {
			mem_inode_free(m, in);
			mem_space_adjust(m, -(long long)len);
			return -ENOMEM;
		}
		memcpy(in->u.target, target, len + 1);
		in->size = len;
	}
	err = mem_dir_add(&p->u.dir, name, in);
	if (err) {
		mem_inode_free(m, in);
		return err;
	}
	in->nlink = in->type == S_IFDIR ? 2 : 1;
	if (in->type == S_IFDIR)
		p->nlink++;
	mem_touch(p, MEM_MTIME | MEM_CTIME);
	*out = in;
	return 0;
}

/* The create family without open: make PARENT/NAME and reference it. */
static int make_entry(struct mem_fs *m, const struct eddy_ctx *c, uint64_t parent,
		      const char *name, mode_t mode, dev_t rdev, const char *target,
		      struct eddy_entry *out)
{
	struct mem_inode *p, *in;
	int err = mem_check_name(name);

	if (err)
		return err;
	pthread_rwlock_wrlock(&m->ns_lock);
	p = mem_dir_of(m, parent, &err);
	if (p)
		err = mem_make(m, c, p, name, mode, rdev, target, &in);
	if (!err)
		mem_fill_entry(m, in, out);
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

int mem_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	int type = eddy_mknod_type(mode);

	if (type < 0)
		return type;
	return make_entry(mem_fs(fs), c, parent, name, (mode_t)type | (mode & 07777), rdev, NULL,
			  out);
}

int mem_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	      mode_t mode, struct eddy_entry *out)
{
	return make_entry(mem_fs(fs), c, parent, name, S_IFDIR | (mode & 01777), 0, NULL, out);
}

int mem_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		uint64_t parent, const char *name, struct eddy_entry *out)
{
	if (!*target)
		return -ENOENT;
	return make_entry(mem_fs(fs), c, parent, name, S_IFLNK | 0777, 0, target, out);
}

int mem_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, uint64_t newparent,
	     const char *newname, struct eddy_entry *out)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in, *p;
	int err = mem_check_name(newname);

	(void)c;
	if (err)
		return err;
	pthread_rwlock_wrlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	p = mem_dir_of(m, newparent, &err);
	if (!in)
		err = -ESTALE;
	else if (!err && in->type == S_IFDIR)
		err = -EPERM;
	else if (!err && mem_dir_find(&p->u.dir, newname))
		err = -EEXIST;
	else if (!err && in->nlink == 0)
		err = -ENOENT;
	else if (!err && in->nlink >= MEM_LINK_MAX)
		err = -EMLINK;
	if (!err)
		err = mem_dir_add(&p->u.dir, newname, in);
	if (!err) {
		in->nlink++;
		mem_touch(in, MEM_CTIME);
		mem_touch(p, MEM_MTIME | MEM_CTIME);
		mem_fill_entry(m, in, out);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

/* unlink (DIR false) or rmdir (DIR true) of PARENT/NAME. */
static int remove_entry(struct mem_fs *m, uint64_t parent, const char *name, bool dir)
{
	struct mem_dirent *de = NULL;
	struct mem_inode *p, *in;
	int err = mem_check_name(name);

	if (err)
		return err;
	pthread_rwlock_wrlock(&m->ns_lock);
	p = mem_dir_of(m, parent, &err);
	if (p && !(de = mem_dir_find(&p->u.dir, name)))
		err = -ENOENT;
	if (err)
		goto out;
	in = de->inode;
	if (!dir && in->type == S_IFDIR) {
		err = -EISDIR;
		goto out;
	}
	if (dir && in->type != S_IFDIR) {
		err = -ENOTDIR;
		goto out;
	}
	if (dir && in->u.dir.count > 0) {
		err = -ENOTEMPTY;
		goto out;
	}
	mem_dir_remove(&p->u.dir, de);
	if (dir) {
		in->nlink = 0;
		p->nlink--;
	} else {
		in->nlink--;
	}
	mem_touch(in, MEM_CTIME);
	mem_touch(p, MEM_MTIME | MEM_CTIME);
	if (mem_inode_unused(in))
		mem_inode_free(m, in);
out:
	pthread_rwlock_unlock(&m->ns_lock);
	return err;
}

int mem_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	(void)c;
	return remove_entry(mem_fs(fs), parent, name, false);
}

int mem_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name)
{
	(void)c;
	return remove_entry(mem_fs(fs), parent, name, true);
}

ssize_t mem_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, char *buf,
		     size_t size)
{
	struct mem_fs *m = mem_fs(fs);
	struct mem_inode *in;
	ssize_t n;

	(void)c;
	pthread_rwlock_rdlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	if (!in) {
		n = -ESTALE;
	} else if (in->type != S_IFLNK) {
		n = -EINVAL;
	} else {
		n = (ssize_t)(in->size < size ? in->size : size);
		memcpy(buf, in->u.target, (size_t)n);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	return n;
}
