/*
** wait.c -- readiness: parked reads and poll handles, woken by the
** implementation's events->ready(ino).
**
** A read that the implementation answers with -EAGAIN on a file the caller
** did not open O_NONBLOCK is parked here instead of replied: no worker
** thread waits for it. When ready(ino) comes, one waker thread first tells
** the kernel about every poll handle registered for INO, then retries the
** parked reads of INO in arrival order until one of them gets -EAGAIN
** again. A signal to the reader (FUSE_INTERRUPT) answers it with EINTR.
**
** Lost wakeups: every inode with a waiter or a read in flight has a record
** whose generation ready() increments. A read samples it before calling
** the implementation and parks only if it did not move; otherwise it tries
** again at once. Poll handles use the same check.
**
** Signals: once parked, a request belongs to the waker thread alone. It
** checks fuse_req_interrupted() of every parked read every 100 ms while any
** is parked and answers the interrupted ones with EINTR. (libfuse's
** interrupt callback would be quicker but runs under the request's own
** lock, at times inside fuse_req_interrupt_func(), where a reply from
** another thread frees the request under it.)
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "frontend_int.h"

#define WAIT_BUCKETS 256

struct parked_read {
	fuse_req_t req;
	struct eddy_file *file;
	size_t size;
	off_t off;
	struct wait_ino *w;
	struct parked_read *next;
};

struct parked_poll {
	struct fuse_pollhandle *ph;
	uint64_t fh;
	struct parked_poll *next;
};

struct wait_ino {
	uint64_t ino;
	uint64_t gen;              /* bumped by every ready(ino) */
	unsigned users;            /* reads in flight + parked + polls */
	bool woken;                /* on the waker's list */
	struct parked_read *reads, **reads_tail;
	struct parked_poll *polls;
	struct wait_ino *next_hash;
	struct wait_ino *next_woken;
};

struct fe_waits {
	struct eddy_frontend *fe;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
	struct wait_ino *table[WAIT_BUCKETS];
	struct wait_ino *woken;
	long nparked;                  /* reads parked now */
	long long parked, woken_reads, interrupted, polls_notified;
};

static struct wait_ino **slot_of(struct fe_waits *ws, uint64_t ino)
{
	struct wait_ino **pp = &ws->table[(ino * 0x9e3779b97f4a7c15ULL) >> 56];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next_hash;
	return pp;
}

/* The record of INO, created if needed, with one more user; lock held. */
static struct wait_ino *get_locked(struct fe_waits *ws, uint64_t ino)
{
	struct wait_ino **pp = slot_of(ws, ino), *w = *pp;

	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return NULL;
		w->ino = ino;
		w->reads_tail = &w->reads;
		*pp = w;
	}
	w->users++;
	return w;
}

static void put_locked(struct fe_waits *ws, struct wait_ino *w)
{
	struct wait_ino **pp;

	if (--w->users || w->woken)
		return;
	pp = slot_of(ws, w->ino);
	*pp = w->next_hash;
	free(w);
}

static void unlink_read(struct wait_ino *w, struct parked_read *p)
{
	struct parked_read **pp = &w->reads;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = p->next;
	if (w->reads_tail == &p->next)
		w->reads_tail = pp;
	p->next = NULL;
}

static bool want_park(struct fuse_file_info *fi)
{
	return !(fi->flags & O_NONBLOCK);
}

/*
** Serves a read; parks it if the implementation says "not yet". Returns
** false when there is no waits object (the caller then replies itself).
** Only a read answered -EAGAIN pays for the wait record: the generation is
** sampled after that first answer and the read is tried again, so a ready()
** between the two is never lost.
*/
bool fe_waits_read(struct fe_waits *ws, fuse_req_t req, uint64_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct eddy_frontend *fe = fe_of(req);
	struct parked_read *p = NULL;
	struct wait_ino *w = NULL;
	char *buf;
	ssize_t n;

	if (!ws)
		return false;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return true;
	}
	n = fe->fs->ops->read(fe->fs, fe_file(fi), buf, size, off);
	if (n == -EAGAIN && want_park(fi)) {
		p = calloc(1, sizeof(*p));
		pthread_mutex_lock(&ws->lock);
		w = p ? get_locked(ws, ino) : NULL;
		pthread_mutex_unlock(&ws->lock);
		if (!w)
			n = -ENOMEM;
	}
	while (w) {
		uint64_t gen;

		pthread_mutex_lock(&ws->lock);
		gen = w->gen;
		pthread_mutex_unlock(&ws->lock);
		n = fe->fs->ops->read(fe->fs, fe_file(fi), buf, size, off);
		if (n != -EAGAIN)
			break;
		pthread_mutex_lock(&ws->lock);
		if (ws->stop) {
			pthread_mutex_unlock(&ws->lock);
			n = -EINTR;
			break;
		}
		if (gen != w->gen) {
			pthread_mutex_unlock(&ws->lock);
			continue;
		}
		p->req = req;
		p->file = fe_file(fi);
		p->size = size;
		p->off = off;
		p->w = w;
		*w->reads_tail = p;
		w->reads_tail = &p->next;
		ws->parked++;
		if (ws->nparked++ == 0)
			pthread_cond_signal(&ws->cond);   /* start the signal checks */
		pthread_mutex_unlock(&ws->lock);
		free(buf);
		return true;
	}
	if (w) {
		pthread_mutex_lock(&ws->lock);
		put_locked(ws, w);
		pthread_mutex_unlock(&ws->lock);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	free(p);
	return true;
}

/* Serves poll: the implementation's answer, and a handle kept for later. */
void fe_waits_poll(struct fe_waits *ws, fuse_req_t req, uint64_t ino, struct fuse_file_info *fi,
		   struct fuse_pollhandle *ph)
{
	struct eddy_frontend *fe = fe_of(req);
	unsigned events = fi->poll_events ? (unsigned)fi->poll_events :
			  (unsigned)(POLLIN | POLLOUT | POLLPRI), revents = 0;
	struct wait_ino *w = NULL;
	uint64_t gen = 0;
	int r;

	if (ws && ph) {
		pthread_mutex_lock(&ws->lock);
		w = get_locked(ws, ino);
		if (w)
			gen = w->gen;
		pthread_mutex_unlock(&ws->lock);
	}
	r = fe->fs->ops->poll(fe->fs, fe_file(fi), events, &revents);
	if (r < 0) {
		revents = POLLERR;
	} else if (w && !(revents & events)) {
		struct parked_poll *pp = calloc(1, sizeof(*pp));

		pthread_mutex_lock(&ws->lock);
		if (pp && gen == w->gen && !ws->stop) {
			struct parked_poll **q = &w->polls;

			/* One handle per open file is enough. */
			while (*q && (*q)->fh != fi->fh)
				q = &(*q)->next;
			if (*q) {
				fuse_pollhandle_destroy((*q)->ph);
				(*q)->ph = ph;
				free(pp);
			} else {
				pp->ph = ph;
				pp->fh = fi->fh;
				pp->next = w->polls;
				w->polls = pp;
				w->users++;
			}
			ph = NULL;
		} else {
			free(pp);
		}
		pthread_mutex_unlock(&ws->lock);
		if (ph) /* readiness raced the answer: let the kernel ask again */
			fuse_lowlevel_notify_poll(ph);
	}
	if (w) {
		pthread_mutex_lock(&ws->lock);
		put_locked(ws, w);
		pthread_mutex_unlock(&ws->lock);
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, revents);
}

/* events->ready, through the notifier's upward path or directly. */
void fe_waits_ready(struct fe_waits *ws, uint64_t ino)
{
	struct wait_ino *w;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	w = *slot_of(ws, ino);
	if (w) {
		w->gen++;
		if (!w->woken && (w->reads || w->polls)) {
			w->woken = true;
			w->next_woken = ws->woken;
			ws->woken = w;
			pthread_cond_signal(&ws->cond);
		}
	}
	pthread_mutex_unlock(&ws->lock);
}

/* Waker: poll handles first, then parked reads in order. Lock held on
** entry and exit, dropped around calls into libfuse and the implementation. */
static void wake(struct fe_waits *ws, struct wait_ino *w)
{
	struct eddy_frontend *fe = ws->fe;
	struct parked_poll *polls = w->polls;

	w->polls = NULL;
	pthread_mutex_unlock(&ws->lock);
	while (polls) {
		struct parked_poll *next = polls->next;

		fuse_lowlevel_notify_poll(polls->ph);
		fuse_pollhandle_destroy(polls->ph);
		free(polls);
		polls = next;
		pthread_mutex_lock(&ws->lock);
		ws->polls_notified++;
		put_locked(ws, w);    /* cannot free: w->woken is still set */
		pthread_mutex_unlock(&ws->lock);
	}
	pthread_mutex_lock(&ws->lock);
	while (w->reads && !ws->stop) {
		struct parked_read *p = w->reads;
		uint64_t gen = w->gen;
		char *buf;
		ssize_t n;

		unlink_read(w, p);
		pthread_mutex_unlock(&ws->lock);
		buf = malloc(p->size ? p->size : 1);
		n = buf ? fe->fs->ops->read(fe->fs, p->file, buf, p->size, p->off) : -ENOMEM;
		pthread_mutex_lock(&ws->lock);
		if (n == -EAGAIN) {
			/* Not for this one after all: back to the front. */
			p->next = w->reads;
			w->reads = p;
			if (w->reads_tail == &w->reads)
				w->reads_tail = &p->next;
			free(buf);
			if (gen == w->gen)
				break;
			continue;
		}
		ws->woken_reads++;
		ws->nparked--;
		put_locked(ws, w);
		pthread_mutex_unlock(&ws->lock);
		if (n < 0)
			fuse_reply_err(p->req, (int)-n);
		else
			fuse_reply_buf(p->req, buf, (size_t)n);
		free(buf);
		free(p);
		pthread_mutex_lock(&ws->lock);
	}
}

/* Answers parked reads whose reader got a signal (or all of them when
** ALL); lock held, dropped around replies. */
static void answer_interrupted(struct fe_waits *ws, bool all)
{
	for (size_t i = 0; i < WAIT_BUCKETS; i++) {
		struct wait_ino *w = ws->table[i];

		while (w) {
			struct parked_read *p = w->reads, *next;
			struct wait_ino *wnext;

			w->users++;            /* keep w while the lock is dropped */
			for (; p; p = next) {
				next = p->next;
				if (!all && !fuse_req_interrupted(p->req))
					continue;
				unlink_read(w, p);
				ws->interrupted++;
				ws->nparked--;
				put_locked(ws, w);
				pthread_mutex_unlock(&ws->lock);
				fuse_reply_err(p->req, EINTR);
				free(p);
				pthread_mutex_lock(&ws->lock);
				next = w->reads;   /* the list may have changed */
			}
			wnext = w->next_hash;
			put_locked(ws, w);
			w = wnext;
		}
	}
}

static void *waker_main(void *arg)
{
	struct fe_waits *ws = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&ws->lock);
	while (!ws->stop) {
		struct wait_ino *w;

		if (!ws->woken) {
			if (ws->nparked) {
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 100 * 1000 * 1000;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				if (pthread_cond_timedwait(&ws->cond, &ws->lock, &ts) == ETIMEDOUT)
					answer_interrupted(ws, false);
			} else {
				pthread_cond_wait(&ws->cond, &ws->lock);
			}
			continue;
		}
		w = ws->woken;
		ws->woken = w->next_woken;
		wake(ws, w);
		w->woken = false;
		w->users++;
		put_locked(ws, w);
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

struct fe_waits *fe_waits_new(struct eddy_frontend *fe)
{
	struct fe_waits *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	ws->fe = fe;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->cond, NULL);
	return ws;
}

void fe_waits_start(struct fe_waits *ws)
{
	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	if (!ws->running && !ws->stop && pthread_create(&ws->thread, NULL, waker_main, ws) == 0)
		ws->running = true;
	pthread_mutex_unlock(&ws->lock);
}

/* Stops the waker, answers every parked read with EINTR and drops every
** poll handle. Called after the session loop ended: no worker runs. */
void fe_waits_stop(struct fe_waits *ws)
{
	bool join;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->stop = true;
	join = ws->running;
	ws->running = false;
	pthread_cond_signal(&ws->cond);
	pthread_mutex_unlock(&ws->lock);
	if (join)
		pthread_join(ws->thread, NULL);
	pthread_mutex_lock(&ws->lock);
	answer_interrupted(ws, true);
	for (size_t i = 0; i < WAIT_BUCKETS; i++)
		for (struct wait_ino *w = ws->table[i]; w; w = w->next_hash)
			while (w->polls) {
				struct parked_poll *pp = w->polls;

				w->polls = pp->next;
				fuse_pollhandle_destroy(pp->ph);
				free(pp);
			}
	pthread_mutex_unlock(&ws->lock);
}

void fe_waits_free(struct fe_waits *ws)
{
	if (!ws)
		return;
	for (size_t i = 0; i < WAIT_BUCKETS; i++)
		while (ws->table[i]) {
			struct wait_ino *w = ws->table[i];

			ws->table[i] = w->next_hash;
			free(w);
		}
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->cond);
	free(ws);
}

void fe_waits_report(struct fe_waits *ws, eddy_stat_fn fn, void *arg)
{
	long long v[4];

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	v[0] = ws->parked;
	v[1] = ws->woken_reads;
	v[2] = ws->interrupted;
	v[3] = ws->polls_notified;
	pthread_mutex_unlock(&ws->lock);
	fn(arg, "reads_parked", v[0]);
	fn(arg, "reads_woken", v[1]);
	fn(arg, "reads_interrupted", v[2]);
	fn(arg, "polls_notified", v[3]);
}
