/*
** chaos_net.c -- the network between a chaos client and the truth: a
** pass-through eddy_fs that the chaos layer calls instead of the inner
** filesystem, so that every request that would reach the server can be
** partitioned (nfs(5)'s hard, soft and softerr mounts, M2):
**   hard      a request waits until the partition heals;
**   soft      a request waits up to timeo, then fails EIO;
**   softerr   the same, failing ETIMEDOUT.
** What the client answers from its own cache never reaches this layer, so
** it keeps working during a partition, as on NFS. forget, release and
** releasedir always pass (they free things and cannot fail). Unmounting
** heals first.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos_int.h"

struct cnet {
	struct eddy_fs base;
	struct eddy_fs_ops ops;
	struct eddy_fs *inner;
	pthread_mutex_t lock;
	pthread_cond_t healed;
	enum chaos_partition state;
	long timeo_ms;
	long long waited, timed_out;
};

static struct cnet *net_of(struct eddy_fs *fs)
{
	return (struct cnet *)fs;
}

/* Lets a request through, or holds it as the partition says. */
static int gate(struct eddy_fs *fs)
{
	struct cnet *n = net_of(fs);
	struct timespec until;
	int r = 0;

	if (__atomic_load_n(&n->state, __ATOMIC_RELAXED) == CHAOS_NET_OK)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &until);
	pthread_mutex_lock(&n->lock);
	if (n->state != CHAOS_NET_OK)
		n->waited++;
	until.tv_sec += n->timeo_ms / 1000;
	until.tv_nsec += (n->timeo_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (n->state != CHAOS_NET_OK) {
		if (n->state == CHAOS_NET_HARD) {
			pthread_cond_wait(&n->healed, &n->lock);
		} else if (pthread_cond_timedwait(&n->healed, &n->lock, &until) == ETIMEDOUT) {
			if (n->state != CHAOS_NET_OK) {
				r = n->state == CHAOS_NET_SOFTERR ? -ETIMEDOUT : -EIO;
				n->timed_out++;
			}
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

void chaos_net_set(struct eddy_fs *fs, enum chaos_partition state, long timeo_ms)
{
	struct cnet *n = net_of(fs);

	pthread_mutex_lock(&n->lock);
	__atomic_store_n(&n->state, state, __ATOMIC_RELAXED);
	n->timeo_ms = timeo_ms;
	pthread_cond_broadcast(&n->healed);
	pthread_mutex_unlock(&n->lock);
}

void chaos_net_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	struct cnet *n = net_of(fs);
	long long v[3];

	pthread_mutex_lock(&n->lock);
	v[0] = n->state;
	v[1] = n->waited;
	v[2] = n->timed_out;
	pthread_mutex_unlock(&n->lock);
	fn(arg, "chaos_partition", v[0]);
	fn(arg, "chaos_partition_held", v[1]);
	fn(arg, "chaos_partition_timed_out", v[2]);
}

#define IN(fs) (net_of(fs)->inner)

static void n_destroy(struct eddy_fs *fs)
{
	struct cnet *n = net_of(fs);

	n->inner->ops->destroy(n->inner);
	pthread_cond_destroy(&n->healed);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static void n_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg)
{
	if (IN(fs)->ops->report)
		IN(fs)->ops->report(IN(fs), fn, arg);
}

static int n_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, struct eddy_entry *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->lookup(IN(fs), c, parent, name, out);
}

static void n_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup)
{
	IN(fs)->ops->forget(IN(fs), ino, nlookup);
}

static int n_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file *f, struct stat *st, double *t)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->getattr(IN(fs), c, ino, f, st, t);
}

static int n_setattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file *f, const struct stat *in, int mask, struct stat *st,
		     double *t)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->setattr(IN(fs), c, ino, f, in, mask, st, t);
}

static int n_mknod(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, dev_t rdev, struct eddy_entry *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->mknod(IN(fs), c, parent, name, mode, rdev, out);
}

static int n_mkdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name, mode_t mode, struct eddy_entry *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->mkdir(IN(fs), c, parent, name, mode, out);
}

static int n_symlink(struct eddy_fs *fs, const struct eddy_ctx *c, const char *target,
		     uint64_t parent, const char *name, struct eddy_entry *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->symlink(IN(fs), c, target, parent, name, out);
}

static int n_link(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		  uint64_t newparent, const char *newname, struct eddy_entry *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->link(IN(fs), c, ino, newparent, newname, out);
}

static int n_unlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->unlink(IN(fs), c, parent, name);
}

static int n_rmdir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		   const char *name)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->rmdir(IN(fs), c, parent, name);
}

static int n_rename(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, uint64_t newparent, const char *newname, unsigned flags)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->rename(IN(fs), c, parent, name, newparent, newname, flags);
}

static ssize_t n_readlink(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			  char *buf, size_t size)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->readlink(IN(fs), c, ino, buf, size);
}

static int n_statfs(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		    struct statvfs *out)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->statfs(IN(fs), c, ino, out);
}

static int n_open(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, int flags,
		  struct eddy_file **fp, struct eddy_open *how)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->open(IN(fs), c, ino, flags, fp, how);
}

static int n_create(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent,
		    const char *name, mode_t mode, int flags, struct eddy_entry *out,
		    struct eddy_file **fp, struct eddy_open *how)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->create(IN(fs), c, parent, name, mode, flags, out, fp, how);
}

static ssize_t n_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size,
		      off_t off)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->read(IN(fs), f, buf, size, off);
}

static ssize_t n_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		       const void *buf, size_t size, off_t off)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->write(IN(fs), c, f, buf, size, off);
}

static int n_flush(struct eddy_fs *fs, struct eddy_file *f)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->flush(IN(fs), f);
}

static int n_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->fsync(IN(fs), f, datasync);
}

static void n_release(struct eddy_fs *fs, struct eddy_file *f)
{
	IN(fs)->ops->release(IN(fs), f);
}

static int n_fallocate(struct eddy_fs *fs, struct eddy_file *f, int mode, off_t off, off_t len)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->fallocate(IN(fs), f, mode, off, len);
}

static ssize_t n_copy_file_range(struct eddy_fs *fs, struct eddy_file *in, off_t off_in,
				 struct eddy_file *out, off_t off_out, size_t len, int flags)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->copy_file_range(IN(fs), in, off_in, out, off_out, len,
						    flags);
}

static off_t n_lseek(struct eddy_fs *fs, struct eddy_file *f, off_t off, int whence)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->lseek(IN(fs), f, off, whence);
}

static int n_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		     struct eddy_file **fp, struct eddy_open *how)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->opendir(IN(fs), c, ino, fp, how);
}

static int n_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *d,
		     uint64_t cookie, bool plus, eddy_fill_fn fill, void *buf)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->readdir(IN(fs), c, d, cookie, plus, fill, buf);
}

static int n_fsyncdir(struct eddy_fs *fs, struct eddy_file *d, bool datasync)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->fsyncdir(IN(fs), d, datasync);
}

static void n_releasedir(struct eddy_fs *fs, struct eddy_file *d)
{
	IN(fs)->ops->releasedir(IN(fs), d);
}

static int n_setxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
		      const char *name, const void *value, size_t size, int flags)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->setxattr(IN(fs), c, ino, name, value, size, flags);
}

static ssize_t n_getxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			  const char *name, void *value, size_t size)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->getxattr(IN(fs), c, ino, name, value, size);
}

static ssize_t n_listxattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			   char *list, size_t size)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->listxattr(IN(fs), c, ino, list, size);
}

static int n_removexattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino,
			 const char *name)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->removexattr(IN(fs), c, ino, name);
}

static int n_getlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, struct flock *lk)
{
	int r = gate(fs);

	return r ? r : IN(fs)->ops->getlk(IN(fs), c, f, owner, lk);
}

static int n_setlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, const struct flock *lk, bool wait)
{
	/* an unlock always passes: it frees something */
	int r = lk->l_type == F_UNLCK ? 0 : gate(fs);

	return r ? r : IN(fs)->ops->setlk(IN(fs), c, f, owner, lk, wait);
}

static int n_flock(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		   uint64_t owner, int op)
{
	int r = (op & LOCK_UN) ? 0 : gate(fs);

	return r ? r : IN(fs)->ops->flock(IN(fs), c, f, owner, op);
}

static int n_flush_owner(struct eddy_fs *fs, struct eddy_file *f, uint64_t owner)
{
	return IN(fs)->ops->flush_owner(IN(fs), f, owner);
}

static int n_poll(struct eddy_fs *fs, struct eddy_file *f, unsigned events, unsigned *revents)
{
	return IN(fs)->ops->poll(IN(fs), f, events, revents);
}

static int n_control(struct eddy_fs *fs, const char *req, eddy_stat_fn fn, void *arg,
		     char *err, size_t errlen)
{
	return IN(fs)->ops->control ? IN(fs)->ops->control(IN(fs), req, fn, arg, err, errlen)
				    : -ENOSYS;
}

/* Frees the network without destroying what it wraps (a failed open). */
void chaos_net_unwrap(struct eddy_fs *fs)
{
	struct cnet *n = net_of(fs);

	pthread_cond_destroy(&n->healed);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

int chaos_net_open(struct eddy_fs *inner, struct eddy_fs **out)
{
	const struct eddy_fs_ops *in = inner->ops;
	struct cnet *n = calloc(1, sizeof(*n));
	pthread_condattr_t ca;
	struct eddy_fs_ops *o;

	if (!n)
		return -ENOMEM;
	n->inner = inner;
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->healed, &ca);
	pthread_condattr_destroy(&ca);
	o = &n->ops;
	*o = (struct eddy_fs_ops){
		.name = "chaos-net", .destroy = n_destroy, .report = n_report,
		.lookup = n_lookup, .forget = n_forget, .getattr = n_getattr,
		.setattr = n_setattr, .mknod = n_mknod, .mkdir = n_mkdir, .symlink = n_symlink,
		.link = n_link, .unlink = n_unlink, .rmdir = n_rmdir, .rename = n_rename,
		.readlink = n_readlink, .statfs = n_statfs, .open = n_open, .create = n_create,
		.read = n_read, .write = n_write, .flush = in->flush ? n_flush : NULL,
		.fsync = n_fsync, .release = n_release,
		.fallocate = in->fallocate ? n_fallocate : NULL,
		.copy_file_range = in->copy_file_range ? n_copy_file_range : NULL,
		.lseek = in->lseek ? n_lseek : NULL, .opendir = n_opendir, .readdir = n_readdir,
		.fsyncdir = n_fsyncdir, .releasedir = n_releasedir, .setxattr = n_setxattr,
		.getxattr = n_getxattr, .listxattr = n_listxattr, .removexattr = n_removexattr,
		.getlk = in->getlk ? n_getlk : NULL, .setlk = in->setlk ? n_setlk : NULL,
		.flock = in->flock ? n_flock : NULL,
		.flush_owner = in->flush_owner ? n_flush_owner : NULL,
		.poll = in->poll ? n_poll : NULL, .control = n_control,
	};
	n->base.ops = o;
	n->base.flags = inner->flags;
	*out = &n->base;
	return 0;
}
