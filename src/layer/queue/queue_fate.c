/*
** queue_fate.c -- fate-sharing: a queue dies with the process that made it.
**
** At mkdir the caller's thread id (the FUSE request's pid) is mapped to its
** thread group, and a pidfd is opened on that process; the start time is
** read before and after, so a pid reused in between is refused. Ownership
** is per process: threads may come and go and exec keeps it (the pid and
** the pidfd survive exec). The reaper thread sleeps in epoll over every
** creator pidfd; a pidfd becomes readable when its process exits (a zombie
** counts as dead), and the reaper then removes the queue and everything in
** it from the inner filesystem and sends the kernel a delete notification
** for each entry, so stat, ls and inotify watchers see it vanish at once.
** A sticky queue (user.eventfs_sticky or user.eddyfs.sticky) outlives its
** creator; removing the attribute later reaps it if the creator is gone.
** After a remount, "<tgid> <start time>" stored in user.eddyfs.owner tells
** whether the creator still lives (qfate_rebind).
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "queue_int.h"

static int pidfd_open_sys(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Tgid:", 5) == 0) {
			tgid = (pid_t)strtol(line + 5, NULL, 10);
			break;
		}
	fclose(f);
	return tgid;
}

/* Field 22 of /proc/PID/stat (start time in clock ticks); 0 if unknown. */
static unsigned long long start_time_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');    /* the command name may hold spaces */
	if (!p)
		return 0;
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	sscanf(p, "%llu", &v);
	return v;
}

int qfate_identify(pid_t tid, pid_t *tgid, int *pidfd, char *owner, size_t len)
{
	unsigned long long t0, t1;
	pid_t g;
	int fd;

	if (tid <= 0)
		return -EPERM;        /* caller outside our pid namespace */
	g = tgid_of(tid);
	if (g <= 0)
		return -ESRCH;
	t0 = start_time_of(g);
	fd = pidfd_open_sys(g);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	t1 = start_time_of(g);
	if (!t0 || t0 != t1) {
		close(fd);
		return -ESRCH;
	}
	*tgid = g;
	*pidfd = fd;
	snprintf(owner, len, "%d %llu", (int)g, t0);
	return 0;
}

void qfate_attach(struct qfs *q, struct queue *qu, pid_t tgid, int pidfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = qu->ino };

	qfate_unwatch(q, qu);
	qu->tgid = tgid;
	qu->pidfd = pidfd;
	qu->creator_dead = false;
	if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
		/* Cannot watch: treat the creator as gone only if it is. */
		close(pidfd);
		qu->pidfd = -1;
	}
}

bool qfate_rebind(struct qfs *q, struct queue *qu, const char *owner)
{
	unsigned long long start = 0;
	pid_t tgid = 0;
	int fd;

	if (sscanf(owner, "%d %llu", &tgid, &start) != 2 || tgid <= 0 || !start)
		return false;
	if (start_time_of(tgid) != start)
		return false;
	fd = pidfd_open_sys(tgid);
	if (fd < 0)
		return false;
	if (start_time_of(tgid) != start) {
		close(fd);
		return false;
	}
	qfate_attach(q, qu, tgid, fd);
	return true;
}

void qfate_unwatch(struct qfs *q, struct queue *qu)
{
	if (qu->pidfd < 0)
		return;
	epoll_ctl(q->epfd, EPOLL_CTL_DEL, qu->pidfd, NULL);
	close(qu->pidfd);
	qu->pidfd = -1;
}

/* Removes directory INO (named NAME in PARENT) and everything below it. */
static int remove_tree(struct qfs *q, uint64_t parent, const char *name, uint64_t ino)
{
	struct eddy_fs *in = q->inner;
	struct eddy_ctx self;
	struct qchild *v;
	size_t n;
	int r, tries = 0;

	eddy_ctx_self(&self);
	do {
		r = qload_children(q, ino, &v, &n);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			if (S_ISDIR(v[i].st.st_mode))
				r = remove_tree(q, ino, v[i].name, v[i].ino);
			else
				r = in->ops->unlink(in, &self, ino, v[i].name);
			if (r == 0 && !S_ISDIR(v[i].st.st_mode))
				qns_up_deleted(q, ino, v[i].name, v[i].ino);
		}
		qload_children_free(q, v, n);
		r = in->ops->rmdir(in, &self, parent, name);
	} while (r == -ENOTEMPTY && ++tries < 100);
	if (r == 0)
		qns_up_deleted(q, parent, name, ino);
	return r;
}

void qfate_reap(struct qfs *q, uint64_t qino)
{
	struct queue *qu;
	uint64_t parent;
	char *name;
	int r;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (!qu || qu->reaping) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	qu->reaping = true;
	parent = qu->parent;
	name = strdup(qu->name);
	pthread_mutex_unlock(&q->lock);
	r = -ENOMEM;
	if (name) {
		/* Pin the directory: an inner inode number is only valid while
		 * referenced. A different inode under the name is not ours. */
		struct eddy_entry e;
		struct eddy_ctx self;

		eddy_ctx_self(&self);
		r = q->inner->ops->lookup(q->inner, &self, parent, name, &e);
		if (r == 0 && !e.ino)
			r = -ENOENT;
		if (r == 0) {
			r = e.ino == qino ? remove_tree(q, parent, name, qino) : -ENOENT;
			q->inner->ops->forget(q->inner, e.ino, 1);
		}
	}
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (qu) {
		if (r == 0 || r == -ENOENT) {
			qquota_charge(q, qu->uid, qu->gid, -1, 0, 0, true);
			queue_remove(q, qu);
			atomic_fetch_add(&q->reaps, 1);
		} else {
			qu->reaping = false;   /* try again at the next death news */
		}
	}
	pthread_mutex_unlock(&q->lock);
	free(name);
}

static void on_death(struct qfs *q, uint64_t qino)
{
	struct queue *qu;
	bool reap;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (!qu) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	qfate_unwatch(q, qu);
	qu->creator_dead = true;
	reap = !qu->sticky;
	pthread_mutex_unlock(&q->lock);
	if (reap)
		qfate_reap(q, qino);
}

static void *reaper_main(void *arg)
{
	struct qfs *q = arg;
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(q->epfd, ev, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == 0)
				return NULL;  /* the stop eventfd */
			on_death(q, ev[i].data.u64);
		}
	}
	return NULL;
}

int qfate_start(struct qfs *q)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };

	q->epfd = epoll_create1(EPOLL_CLOEXEC);
	q->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->epfd < 0 || q->stopfd < 0 || epoll_ctl(q->epfd, EPOLL_CTL_ADD, q->stopfd, &ev) < 0)
		return -errno;
	{
		/* The reaper takes no signal: they belong to the frontend. */
		sigset_t all, old;
		int r;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = pthread_create(&q->reaper, NULL, reaper_main, q);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r != 0)
			return -EAGAIN;
	}
	q->reaper_running = true;
	return 0;
}

void qfate_stop(struct qfs *q)
{
	uint64_t one = 1;

	if (q->reaper_running) {
		if (write(q->stopfd, &one, sizeof(one)) < 0) {
			/* cannot happen with a fresh eventfd; join anyway */
		}
		pthread_join(q->reaper, NULL);
		q->reaper_running = false;
	}
}
