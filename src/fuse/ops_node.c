/*
** ops_node.c -- FUSE handlers for the namespace and attributes: lookup and
** forget, getattr/setattr, the create family, unlink/rmdir/rename/link,
** readlink, statfs and extended attributes. Each translates one request
** into one call of the eddy_fs table and replies exactly once.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_int.h"

#define FE_SYMLINK_MAX 4096

void fe_ctx(fuse_req_t req, struct eddy_ctx *c, bool want_groups)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct eddy_frontend *fe = fe_of(req);

	c->uid = fc->uid;
	c->gid = fc->gid;
	c->pid = fc->pid;
	c->umask = fc->umask;
	c->ngroups = -1;
	if (want_groups && fe->privileged && c->uid != 0) {
		int n = fuse_req_getgroups(req, EDDY_MAX_GROUPS, c->groups);

		c->ngroups = n < 0 ? -1 : (n > EDDY_MAX_GROUPS ? EDDY_MAX_GROUPS : n);
	}
}

static void reply_err(fuse_req_t req, int err)
{
	if (err < 0 && err != -ENOENT)
		atomic_fetch_add(&fe_of(req)->nerrors, 1);
	fuse_reply_err(req, err < 0 ? -err : err);
}

static void entry_param(const struct eddy_entry *e, struct fuse_entry_param *p)
{
	memset(p, 0, sizeof(*p));
	p->ino = e->ino;
	p->generation = e->generation;
	p->attr = e->attr;
	p->attr_timeout = e->attr_timeout;
	p->entry_timeout = e->entry_timeout;
}

/* Replies with an entry that carries one reference (if ino != 0): counted
** before the reply, given back if the kernel dropped the reply. */
void fe_reply_entry(fuse_req_t req, const struct eddy_entry *e)
{
	struct eddy_frontend *fe = fe_of(req);
	struct fuse_entry_param p;

	entry_param(e, &p);
	if (e->ino)
		node_table_ref(&fe->nodes, e->ino, 1);
	if (fuse_reply_entry(req, &p) == -ENOENT && e->ino) {
		node_table_forget(&fe->nodes, e->ino, 1);
		fe->fs->ops->forget(fe->fs, e->ino, 1);
	}
}

void fe_recheck_entry(struct eddy_frontend *fe, uint64_t parent, const char *name, uint64_t seq)
{
	if (fe->notifier && fe_seq(fe, parent) != seq)
		fe_notify_entry(fe, parent, name);
}

void fe_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct eddy_frontend *fe = fe_of(req);
	uint64_t seq = fe_seq(fe, parent);
	struct eddy_entry e;
	struct eddy_ctx c;
	int err;

	fe_ctx(req, &c, false);
	err = fe->fs->ops->lookup(fe->fs, &c, parent, name, &e);
	if (err) {
		reply_err(req, err);
		return;
	}
	fe_reply_entry(req, &e);
	fe_recheck_entry(fe, parent, name, seq);
}

static void forget_one(struct eddy_frontend *fe, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino == FUSE_ROOT_ID)
		return;
	node_table_forget(&fe->nodes, ino, nlookup);
	fe->fs->ops->forget(fe->fs, ino, nlookup);
}

void fe_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fe_of(req), ino, nlookup);
	fuse_reply_none(req);
}

void fe_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct eddy_frontend *fe = fe_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		forget_one(fe, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void fe_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	struct stat st;
	double timeout;
	int err;

	fe_ctx(req, &c, false);
	err = fe->fs->ops->getattr(fe->fs, &c, ino, fe_file(fi), &st, &timeout);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, timeout);
}

void fe_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	struct stat st;
	double timeout;
	int err;

	fe_ctx(req, &c, false);
	err = fe->fs->ops->setattr(fe->fs, &c, ino, fe_file(fi), attr, to_set, &st, &timeout);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, timeout);
}

void fe_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct eddy_frontend *fe = fe_of(req);
	char buf[FE_SYMLINK_MAX + 1];
	struct eddy_ctx c;
	ssize_t n;

	fe_ctx(req, &c, false);
	n = fe->fs->ops->readlink(fe->fs, &c, ino, buf, FE_SYMLINK_MAX);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

void fe_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_entry e;
	struct eddy_ctx c;
	int err;

	uint64_t seq = fe_seq(fe, parent);

	fe_ctx(req, &c, true);
	err = fe->fs->ops->mknod(fe->fs, &c, parent, name, mode, rdev, &e);
	if (err) {
		reply_err(req, err);
		return;
	}
	fe_reply_entry(req, &e);
	fe_recheck_entry(fe, parent, name, seq);
}

void fe_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_entry e;
	struct eddy_ctx c;
	int err;

	uint64_t seq = fe_seq(fe, parent);

	fe_ctx(req, &c, true);
	err = fe->fs->ops->mkdir(fe->fs, &c, parent, name, mode, &e);
	if (err) {
		reply_err(req, err);
		return;
	}
	fe_reply_entry(req, &e);
	fe_recheck_entry(fe, parent, name, seq);
}

void fe_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_entry e;
	struct eddy_ctx c;
	int err;

	uint64_t seq = fe_seq(fe, parent);

	fe_ctx(req, &c, true);
	err = fe->fs->ops->symlink(fe->fs, &c, link, parent, name, &e);
	if (err) {
		reply_err(req, err);
		return;
	}
	fe_reply_entry(req, &e);
	fe_recheck_entry(fe, parent, name, seq);
}

void fe_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_entry e;
	struct eddy_ctx c;
	int err;

	uint64_t seq = fe_seq(fe, newparent);

	fe_ctx(req, &c, true);
	err = fe->fs->ops->link(fe->fs, &c, ino, newparent, newname, &e);
	if (err) {
		reply_err(req, err);
		return;
	}
	fe_reply_entry(req, &e);
	fe_recheck_entry(fe, newparent, newname, seq);
}

void fe_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->unlink(fe->fs, &c, parent, name));
}

void fe_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->rmdir(fe->fs, &c, parent, name));
}

void fe_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->rename(fe->fs, &c, parent, name, newparent, newname, flags));
}

void fe_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	struct statvfs sv;
	int err;

	fe_ctx(req, &c, false);
	err = fe->fs->ops->statfs(fe->fs, &c, ino, &sv);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_statfs(req, &sv);
}

void fe_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->setxattr(fe->fs, &c, ino, name, value, size, flags));
}

void fe_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	char *buf = NULL;
	ssize_t n;

	fe_ctx(req, &c, false);
	if (size && !(buf = malloc(size))) {
		reply_err(req, -ENOMEM);
		return;
	}
	n = fe->fs->ops->getxattr(fe->fs, &c, ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);   /* ENODATA is the common answer */
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void fe_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;
	char *buf = NULL;
	ssize_t n;

	fe_ctx(req, &c, false);
	if (size && !(buf = malloc(size))) {
		reply_err(req, -ENOMEM);
		return;
	}
	n = fe->fs->ops->listxattr(fe->fs, &c, ino, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void fe_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->removexattr(fe->fs, &c, ino, name));
}

/* access(2), chdir: sent only when the kernel does not check permissions
** itself. Without the implementation's answer the kernel allows all. */
void fe_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct eddy_frontend *fe = fe_of(req);
	struct eddy_ctx c;

	if (!fe->fs->ops->access) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fe_ctx(req, &c, false);
	reply_err(req, fe->fs->ops->access(fe->fs, &c, ino, mask));
}
