/*
** mem_inode.c -- the mem backend's inode table: numbering, creation with
** a local filesystem's ownership and mode rules, lifetime (see the
** INODE LIFETIME invariants in mem_int.h), attributes as struct stat.
**
** The table is a chained hash by inode number, guarded by ns_lock; it
** doubles when the load passes 1.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem_int.h"

static size_t hash_ino(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

void mem_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

void mem_touch_locked(struct mem_inode *in, unsigned what)
{
	struct timespec now;

	mem_now(&now);
	if (what & MEM_ATIME)
		in->atime = now;
	if (what & MEM_MTIME)
		in->mtime = now;
	if (what & MEM_CTIME)
		in->ctime = now;
}

void mem_touch(struct mem_inode *in, unsigned what)
{
	pthread_rwlock_wrlock(&in->lock);
	mem_touch_locked(in, what);
	pthread_rwlock_unlock(&in->lock);
}

int mem_check_name(const char *name)
{
	return eddy_check_name(name);
}

struct mem_inode *mem_inode_find(struct mem_fs *m, uint64_t ino)
{
	struct mem_inode *in = m->table[hash_ino(ino) & (m->nbuckets - 1)];

	while (in && in->ino != ino)
		in = in->hnext;
	return in;
}

static void table_insert(struct mem_fs *m, struct mem_inode *in)
{
	size_t b;

	if (m->ninodes >= m->nbuckets) {
		size_t n = m->nbuckets * 2, i;
		struct mem_inode **t = calloc(n, sizeof(*t));

		if (t) {            /* else: longer chains */
			for (i = 0; i < m->nbuckets; i++) {
				struct mem_inode *p = m->table[i], *next;

				for (; p; p = next) {
					next = p->hnext;
					p->hnext = t[hash_ino(p->ino) & (n - 1)];
					t[hash_ino(p->ino) & (n - 1)] = p;
				}
			}
			free(m->table);
			m->table = t;
			m->nbuckets = n;
		}
	}
	b = hash_ino(in->ino) & (m->nbuckets - 1);
	in->hnext = m->table[b];
	m->table[b] = in;
	m->ninodes++;
}

static void table_remove(struct mem_fs *m, struct mem_inode *in)
{
	struct mem_inode **p = &m->table[hash_ino(in->ino) & (m->nbuckets - 1)];

	while (*p && *p != in)
		p = &(*p)->hnext;
	if (*p) {
		*p = in->hnext;
		m->ninodes--;
	}
}

static struct mem_inode *inode_alloc(mode_t type)
{
	struct mem_inode *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	if (pthread_rwlock_init(&in->lock, NULL) != 0) {
		free(in);
		return NULL;
	}
	in->type = type;
	atomic_init(&in->nlookup, 0);
	atomic_init(&in->nopen, 0);
	mem_now(&in->btime);
	in->atime = in->mtime = in->ctime = in->btime;
	return in;
}

int mem_table_init(struct mem_fs *m)
{
	struct mem_inode *root;

	m->nbuckets = 1024;
	m->table = calloc(m->nbuckets, sizeof(*m->table));
	root = inode_alloc(S_IFDIR);
	if (!m->table || !root) {
		free(m->table);
		free(root);
		return -ENOMEM;
	}
	root->ino = EDDY_ROOT_INO;
	root->mode = 0755;
	root->uid = geteuid();
	root->gid = getegid();
	root->nlink = 2;
	mem_dir_init(&root->u.dir, EDDY_ROOT_INO);
	table_insert(m, root);
	m->next_ino = EDDY_ROOT_INO + 1;
	return 0;
}

/* Copies the default ACL of directory P (NULL if it has none). */
static void *default_acl_of(struct mem_inode *p, size_t *size)
{
	struct mem_xattr *x = mem_xattr_find(p, EDDY_ACL_DEFAULT);
	void *copy;

	if (!x || !(copy = malloc(x->size ? x->size : 1)))
		return NULL;
	memcpy(copy, x->value, x->size);
	*size = x->size;
	return copy;
}

int mem_inode_new(struct mem_fs *m, const struct eddy_ctx *c, struct mem_inode *parent,
		  mode_t mode, dev_t rdev, struct mem_inode **out)
{
	mode_t type = mode & S_IFMT, perm = mode & 07777;
	void *dflt = NULL, *access = NULL;
	size_t dsize = 0;
	struct mem_inode *in;
	gid_t gid;
	int inherit = 0, err = 0;

	if (m->opt.max_inodes && m->ninodes >= m->opt.max_inodes)
		return -ENOSPC;
	if (m->next_ino >= EDDY_LAYER_INO_BASE)
		return -ENOSPC;
	in = inode_alloc(type);
	if (!in)
		return -ENOMEM;
	pthread_rwlock_rdlock(&parent->lock);
	if (type != S_IFLNK)
		dflt = default_acl_of(parent, &dsize);
	if (dflt && (access = malloc(dsize ? dsize : 1)))
		memcpy(access, dflt, dsize);
	inherit = eddy_new_object_mode(c, type, perm, parent->mode, parent->gid, access, dsize,
				       &perm, &gid);
	pthread_rwlock_unlock(&parent->lock);
	in->mode = perm;
	in->uid = c->uid;
	in->gid = gid;
	if (type == S_IFCHR || type == S_IFBLK)
		in->rdev = rdev;
	if (type == S_IFDIR)
		mem_dir_init(&in->u.dir, parent->ino);
	if (inherit == 1)
		err = mem_xattr_put(m, in, EDDY_ACL_ACCESS, access, dsize);
	if (!err && type == S_IFDIR && dflt)
		err = mem_xattr_put(m, in, EDDY_ACL_DEFAULT, dflt, dsize);
	free(access);
	free(dflt);
	if (err) {
		mem_xattrs_free(m, in);
		pthread_rwlock_destroy(&in->lock);
		free(in);
		return err;
	}
	in->ino = m->next_ino++;
	table_insert(m, in);
	*out = in;
	return 0;
}

void mem_inode_free(struct mem_fs *m, struct mem_inode *in)
{
	table_remove(m, in);
	switch (in->type) {
	case S_IFREG:
		mem_space_adjust(m, -(long long)(in->u.pages.count * MEM_PAGE_SIZE));
		mem_pages_free(&in->u.pages);
		break;
	case S_IFDIR:
		mem_dir_free(&in->u.dir);
		break;
	case S_IFLNK:
		mem_space_adjust(m, -(long long)in->size);
		free(in->u.target);
		break;
	default:
		break;
	}
	mem_xattrs_free(m, in);
	pthread_rwlock_destroy(&in->lock);
	free(in);
	atomic_fetch_add(&m->nfreed, 1);
}

bool mem_inode_unused(struct mem_inode *in)
{
	return in->ino != EDDY_ROOT_INO && in->nlink == 0 && atomic_load(&in->nlookup) == 0 &&
	       atomic_load(&in->nopen) == 0;
}

void mem_inode_release(struct mem_fs *m, uint64_t ino)
{
	struct mem_inode *in;

	pthread_rwlock_wrlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	if (in && mem_inode_unused(in))
		mem_inode_free(m, in);
	pthread_rwlock_unlock(&m->ns_lock);
}

void mem_inode_stat(struct mem_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_nlink = in->nlink;
	st->st_blksize = MEM_PAGE_SIZE;
	pthread_rwlock_rdlock(&in->lock);
	st->st_mode = in->type | in->mode;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
	if (in->type == S_IFREG) {
		st->st_size = (off_t)in->size;
		st->st_blocks = (blkcnt_t)(in->u.pages.count * (MEM_PAGE_SIZE / 512));
	} else if (in->type == S_IFLNK) {
		st->st_size = (off_t)in->size;
	} else if (in->type == S_IFDIR) {
		/* as tmpfs: a nominal 20 bytes per entry, "." and ".." included */
		st->st_size = (off_t)(20 * (in->u.dir.count + 2));
	}
	pthread_rwlock_unlock(&in->lock);
}

void mem_fill_entry(struct mem_fs *m, struct mem_inode *in, struct eddy_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->ino;
	mem_inode_stat(in, &e->attr);
	e->attr_timeout = m->opt.attr_timeout;
	e->entry_timeout = m->opt.entry_timeout;
	atomic_fetch_add(&in->nlookup, 1);
}

void mem_table_free(struct mem_fs *m)
{
	size_t i;

	for (i = 0; i < m->nbuckets; i++) {
		while (m->table[i])
			mem_inode_free(m, m->table[i]);
	}
	free(m->table);
	m->table = NULL;
}
