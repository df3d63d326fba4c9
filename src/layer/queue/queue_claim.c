/*
** queue_claim.c -- the .claim file of every queue: atomic multi-consumer
** take-over of messages, with blocking reads and poll readiness.
**
** Contract (README "Claiming messages"):
**   - open(q/.claim, O_RDONLY) is cheap; it claims nothing.
**   - each read() claims, oldest first, as many whole messages as fit in
**     the buffer (at least one) and returns them as records:
**         "<size> <name>\n" followed by exactly <size> bytes of data.
**     A record larger than the buffer is claimed all the same and continues
**     (without a header) on the next read of the same descriptor.
**   - a claimed message is gone from the queue before its data is read:
**     no other consumer (claim, pop, unlink by name) can get it.
**   - a message still open for writing is not claimed until it is closed;
**     messages behind it wait too (the order is kept).
**   - with nothing to claim, read() blocks until a message arrives (the
**     frontend parks it; a signal interrupts it with EINTR), or fails with
**     EAGAIN under O_NONBLOCK; poll() reports POLLIN when a read would
**     return data. Once the queue is gone, read() returns 0 (end of file).
**   - data a descriptor claimed but did not deliver is lost when it is
**     closed (the consumer owned it).
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

int qclaim_open(struct qfs *q, struct qsynth *s, int flags, struct eddy_file **fp,
		struct eddy_open *how)
{
	struct qfile *f;

	(void)q;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->base.ino = s->ino;
	f->claim = true;
	f->qino = s->qino;
	memset(how, 0, sizeof(*how));
	how->direct_io = true;
	how->nonseekable = true;
	*fp = &f->base;
	return 0;
}

/* Reads the whole of inner file INO into a fresh buffer after HDR bytes. */
static int slurp(struct qfs *q, uint64_t ino, size_t hdr, char **out, size_t *len)
{
	struct eddy_fs *in = q->inner;
	struct eddy_open how = { 0 };
	struct eddy_file *f;
	struct stat st;
	double t;
	size_t cap, n = 0;
	char *buf;
	int r;

	r = in->ops->open(in, &q->self, ino, O_RDONLY, &f, &how);
	if (r < 0)
		return r;
	r = in->ops->getattr(in, &q->self, ino, f, &st, &t);
	/* room past the size: a short read then proves the end of the file
	 * (no message is written while claimable), with no second read */
	cap = (r == 0 && st.st_size > 0 ? (size_t)st.st_size : 0) + 64;
	buf = malloc(hdr + cap + 1);
	while (r == 0 && buf) {
		ssize_t got;

		if (n == cap) {            /* grew meanwhile? look once more */
			char *nb = realloc(buf, hdr + cap * 2 + 4096);

			if (!nb)
				break;
			buf = nb;
			cap = cap * 2 + 4096;
		}
		got = in->ops->read(in, f, buf + hdr + n, cap - n, (off_t)n);
		if (got < 0)
			r = (int)got;
		if (got <= 0)
			break;
		n += (size_t)got;
		if ((size_t)got < cap - (n - (size_t)got))
			break;             /* short read: the end of the file */
	}
	in->ops->release(in, f);
	if (!buf)
		return -ENOMEM;
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = n;
	return 0;
}

/*
** Claims the oldest message of the queue if it can be claimed and (unless
** FIRST) its record likely fits in ROOM. Returns 1 with the record in
** *REC, 0 if nothing was claimed, -ENOENT if the queue is gone.
*/
static int claim_one(struct qfs *q, uint64_t qino, bool first, size_t room, char **rec,
		     size_t *reclen)
{
	struct queue *qu;
	struct qmsg *m;
	struct qinode *qi;
	char *name, hdr[64], *buf = NULL;
	size_t hlen, len = 0;
	uint64_t ino;
	int r;

	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (!qu || qu->reaping) {
		pthread_mutex_unlock(&q->lock);
		return -ENOENT;
	}
	m = qu->first;
	qi = m ? qinode_find(q, m->ino) : NULL;
	if (!m || (qi && qi->writers) ||
	    (!first && qi && strlen(m->name) + 24 + (size_t)qi->charged > room)) {
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	name = strdup(m->name);
	if (!name) {
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	queue_msg_detach(qu, m);
	ino = m->ino;
	pthread_mutex_unlock(&q->lock);
	/* The header's size is known only after reading: reserve room. The
	 * message is looked up (pinned) by name for as long as it is read. */
	hlen = sizeof(hdr);
	{
		struct eddy_entry e;
		int lr;

		lr = q->inner->ops->lookup(q->inner, &q->self, qino, name, &e);
		if (lr == 0 && e.ino == ino)
			r = slurp(q, ino, hlen + strlen(name), &buf, &len);
		else
			r = lr < 0 ? lr : -ENOENT;
		if (lr == 0 && e.ino)
			q->inner->ops->forget(q->inner, e.ino, 1);
	}
	if (r == 0)
		r = qns_unlink_inner(q, qino, name);
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, qino);
	if (qu && (m = queue_msg_find(qu, name)) && m->detached) {
		if (r == 0 || r == -ENOENT)
			qns_departed(q, qu, m);
		else
			queue_msg_reattach(qu, m, true);
	}
	pthread_mutex_unlock(&q->lock);
	if (r < 0) {
		free(buf);
		free(name);
		return 0;
	}
	qns_up_deleted(q, qino, name, ino);
	atomic_fetch_add(&q->claims, 1);
	{
		int h = snprintf(hdr, sizeof(hdr), "%zu ", len);
		size_t nl = strlen(name);
		size_t off = hlen + nl - (size_t)h - nl - 1;

		/* Lay the header out right before the data. */
		memcpy(buf + off, hdr, (size_t)h);
		memcpy(buf + off + (size_t)h, name, nl);
		buf[off + (size_t)h + nl] = '\n';
		memmove(buf, buf + off, (size_t)h + nl + 1 + len);
		*reclen = (size_t)h + nl + 1 + len;
	}
	free(name);
	*rec = buf;
	return 1;
}

ssize_t qclaim_read(struct qfs *q, struct qfile *f, char *buf, size_t size)
{
	size_t pos = 0;
	bool gone = false;

	while (pos < size) {
		char *rec;
		size_t len, n;
		int r;

		if (f->pending) {
			n = f->pending_len - f->pending_off;
			if (n > size - pos)
				n = size - pos;
			memcpy(buf + pos, f->pending + f->pending_off, n);
			pos += n;
			f->pending_off += n;
			if (f->pending_off == f->pending_len) {
				free(f->pending);
				f->pending = NULL;
			}
			continue;
		}
		r = claim_one(q, f->qino, pos == 0, size - pos, &rec, &len);
		if (r == -ENOENT)
			gone = true;
		if (r <= 0)
			break;
		f->pending = rec;
		f->pending_len = len;
		f->pending_off = 0;
	}
	if (pos)
		return (ssize_t)pos;
	return gone ? 0 : -EAGAIN;
}

int qclaim_poll(struct qfs *q, struct qfile *f, unsigned *revents)
{
	struct queue *qu;
	struct qmsg *m;
	struct qinode *qi;

	*revents = 0;
	if (f->pending) {
		*revents = POLLIN | POLLRDNORM;
		return 0;
	}
	pthread_mutex_lock(&q->lock);
	qu = queue_find(q, f->qino);
	if (!qu || qu->reaping) {
		*revents = POLLIN | POLLRDNORM | POLLHUP;
	} else if ((m = qu->first) &&
		   (!(qi = qinode_find(q, m->ino)) || !qi->writers)) {
		*revents = POLLIN | POLLRDNORM;
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void qclaim_release(struct qfs *q, struct qfile *f)
{
	(void)q;
	free(f->pending);
	free(f);
}
