/*
** dir_lock.c -- locks shared with every other user of the backing files.
**
** Byte-range (fcntl) locks of one kernel lock owner on one inode live as
** open file description (OFD) locks on one backing fd opened for that
** (inode, owner) pair: locks of different owners, of other eddyfs mounts
** and of plain processes on the backing file all conflict as POSIX says;
** one owner's locks merge and split as POSIX says. The pair's fd is closed
** when the owner closes any descriptor of the file (flush), which drops
** its locks: the POSIX close rule; an OFD lock's pair goes when its open
** file is released. flock() locks go onto the backing fd of
** the open file itself, so they follow the open file description.
** F_GETLK reports the holder's pid when it is a plain process (classic
** POSIX lock); for OFD holders (other mounts) Linux reports -1, and so do
** we, unless the holder is another owner of this mount on the same inode.
** A blocking request (F_SETLKW, flock without LOCK_NB) occupies one FUSE
** worker thread until it is granted.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dir_int.h"

#define LOCK_BUCKETS 256

struct lock_owner {
	uint64_t ino, owner;
	int fd;
	pid_t pid;
	struct dir_file *file;  /* the open file that used it last */
	struct lock_owner *next;
};

static size_t bucket(uint64_t ino, uint64_t owner)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) ^ owner) % LOCK_BUCKETS;
}

int dir_locks_init(struct dir_fs *d)
{
	d->locks = calloc(LOCK_BUCKETS, sizeof(*d->locks));
	if (!d->locks)
		return -ENOMEM;
	pthread_mutex_init(&d->locks_lock, NULL);
	return 0;
}

void dir_locks_free(struct dir_fs *d)
{
	size_t i;

	for (i = 0; d->locks && i < LOCK_BUCKETS; i++)
		while (d->locks[i]) {
			struct lock_owner *o = d->locks[i];

			d->locks[i] = o->next;
			close(o->fd);
			free(o);
		}
	free(d->locks);
	pthread_mutex_destroy(&d->locks_lock);
}

/* Opens a backing fd for INO that can hold both lock types if it can. */
static int open_for_locks(struct dir_fs *d, uint64_t ino, int accmode)
{
	char proc[64];
	int pfd, fd;

	pfd = dir_node_fd_get(d, ino, NULL);
	if (pfd < 0)
		return pfd;
	dir_proc_path(proc, sizeof(proc), pfd);
	fd = open(proc, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		fd = open(proc, accmode | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		fd = -errno;
	dir_node_fd_put(d, ino);
	return fd;
}

/* The fd of (INO, OWNER), opened if CREATE. Returns -ENOENT if none. */
static int owner_fd(struct dir_fs *d, struct dir_file *f, uint64_t owner, pid_t pid, bool create)
{
	struct lock_owner *o, **head = &d->locks[bucket(f->base.ino, owner)];
	int fd;

	pthread_mutex_lock(&d->locks_lock);
	for (o = *head; o; o = o->next)
		if (o->ino == f->base.ino && o->owner == owner)
			break;
	if (o) {
		if (pid > 0)
			o->pid = pid;
		o->file = f;
		fd = o->fd;
		pthread_mutex_unlock(&d->locks_lock);
		return fd;
	}
	pthread_mutex_unlock(&d->locks_lock);
	if (!create)
		return -ENOENT;
	fd = open_for_locks(d, f->base.ino, f->flags & O_ACCMODE);
	if (fd < 0)
		return fd;
	o = calloc(1, sizeof(*o));
	if (!o) {
		close(fd);
		return -ENOMEM;
	}
	o->ino = f->base.ino;
	o->owner = owner;
	o->fd = fd;
	o->pid = pid;
	o->file = f;
	pthread_mutex_lock(&d->locks_lock);
	{
		struct lock_owner *p;

		for (p = *head; p; p = p->next)
			if (p->ino == o->ino && p->owner == owner)
				break;
		if (p) {                /* raced: keep the first */
			pthread_mutex_unlock(&d->locks_lock);
			close(fd);
			free(o);
			return p->fd;
		}
	}
	o->next = *head;
	*head = o;
	atomic_fetch_add(&d->nlock_owners, 1);
	pthread_mutex_unlock(&d->locks_lock);
	return fd;
}

/* The pid of another owner of this mount with locks on INO, or -1. */
static pid_t other_local_holder(struct dir_fs *d, uint64_t ino, uint64_t owner)
{
	pid_t pid = -1;
	size_t i;

	pthread_mutex_lock(&d->locks_lock);
	for (i = 0; i < LOCK_BUCKETS && pid < 0; i++) {
		struct lock_owner *o;

		for (o = d->locks[i]; o; o = o->next)
			if (o->ino == ino && o->owner != owner && o->pid > 0) {
				pid = o->pid;
				break;
			}
	}
	pthread_mutex_unlock(&d->locks_lock);
	return pid;
}

int dir_getlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *ef, uint64_t owner,
	      struct flock *lk)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_file *f = (struct dir_file *)ef;
	struct flock fl = *lk;
	int fd;

	(void)c;
	fd = owner_fd(d, f, owner, 0, false);
	if (fd < 0)
		fd = f->fd;     /* the owner holds nothing: any OFD will do */
	fl.l_pid = 0;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	if (fl.l_type != F_UNLCK && fl.l_pid <= 0)
		fl.l_pid = other_local_holder(d, f->base.ino, owner);
	*lk = fl;
	return 0;
}

int dir_setlk(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *ef, uint64_t owner,
	      const struct flock *lk, bool wait)
{
	struct dir_fs *d = dir_fs(fs);
	struct dir_file *f = (struct dir_file *)ef;
	struct flock fl = *lk;
	int fd;

	fd = owner_fd(d, f, owner, c->pid, lk->l_type != F_UNLCK);
	if (fd == -ENOENT)
		return 0;       /* unlocking what was never locked */
	if (fd < 0)
		return fd;
	fl.l_pid = 0;
	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
		if (errno != EINTR)
			return errno == EACCES ? -EAGAIN : -errno;
	}
	return 0;
}

int dir_flock(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *ef, uint64_t owner,
	      int op)
{
	struct dir_file *f = (struct dir_file *)ef;

	(void)fs;
	(void)c;
	(void)owner;
	while (flock(f->fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
** The open file F is released. OFD locks (owner = the open file) are never
** unlocked by the kernel at the last close of a FUSE file, so every lock
** owner that F used last goes now; POSIX owners were flushed already.
*/
void dir_locks_release_file(struct dir_fs *d, struct dir_file *f)
{
	struct lock_owner *gone = NULL;
	size_t i;

	if (atomic_load(&d->nlock_owners) == 0)
		return;         /* the common case: no lock was ever taken */
	pthread_mutex_lock(&d->locks_lock);
	for (i = 0; d->locks && i < LOCK_BUCKETS; i++) {
		struct lock_owner **pp = &d->locks[i], *o;

		while ((o = *pp)) {
			if (o->file == f) {
				*pp = o->next;
				o->next = gone;
				gone = o;
				atomic_fetch_sub(&d->nlock_owners, 1);
			} else {
				pp = &o->next;
			}
		}
	}
	pthread_mutex_unlock(&d->locks_lock);
	while (gone) {
		struct lock_owner *o = gone;

		gone = o->next;
		close(o->fd);
		free(o);
	}
}

/* OWNER closed a descriptor of the file: its byte-range locks go. */
int dir_flush_owner(struct eddy_fs *fs, struct eddy_file *ef, uint64_t owner)
{
	struct dir_fs *d = dir_fs(fs);
	struct lock_owner *o, **pp = &d->locks[bucket(ef->ino, owner)];

	pthread_mutex_lock(&d->locks_lock);
	for (; (o = *pp); pp = &o->next)
		if (o->ino == ef->ino && o->owner == owner) {
			*pp = o->next;
			atomic_fetch_sub(&d->nlock_owners, 1);
			break;
		}
	pthread_mutex_unlock(&d->locks_lock);
	if (o) {
		close(o->fd);
		free(o);
	}
	return 0;
}
