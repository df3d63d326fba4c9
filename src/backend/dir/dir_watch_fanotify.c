/*
** dir_watch_fanotify.c -- the fanotify event source of the dir backend:
** one filesystem mark (FAN_MARK_FILESYSTEM) on the backing filesystem,
** events reported with file handles (FAN_REPORT_DFID_NAME | FAN_REPORT_FID).
** Needs CAP_SYS_ADMIN; sees every change on the whole filesystem, with no
** watch per directory, so link-count changes made through directories the
** kernel never looked at are seen too.
**
** Mapping events to nodes: a handle table. Every node that would carry an
** inotify watch (a directory the kernel knows, a file with several links)
** records its file handle (name_to_handle_at) under a watch id; an event's
** directory handle (and, without a known directory, its object handle) is
** looked up there. Chosen over decoding every handle (open_by_handle_at on
** a mount fd, then fstat): the mark sees the whole filesystem, and most of
** its events (logs, builds, other trees) are of objects this mount does not
** know -- a hash lookup drops those without a system call, an fd or a
** dentry. The one case the table cannot answer, a link-count change of a
** file with one known link (an event with the file's handle only: link or
** unlink elsewhere), is decoded with open_by_handle_at + statx and looked
** up by backing identity (counted as change_handle_decodes); it is rare.
** Handles include the generation, so a reused inode number does not match.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "dir_watch_int.h"

/* No FAN_CLOSE_WRITE: FAN_MODIFY reports every write (see the inotify
** source). No FAN_DELETE_SELF / FAN_MOVE_SELF: every name of a known
** object is in a known directory, whose entry events say it all, and a
** removed directory is forgotten by the kernel. FAN_EVENT_ON_CHILD is
** implied by a filesystem mark. */
#define FAN_MASK (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY | \
		  FAN_ATTRIB | FAN_ONDIR)
#define FAN_FLAGS (FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME | \
		   FAN_REPORT_FID)

struct fid {
	struct fid *next;          /* hash chain */
	int id;
	int type;                  /* handle_type */
	unsigned len;              /* handle_bytes */
	unsigned char h[];
};

struct fan {
	int mount_fd;              /* readable fd of the backing root */
	struct fid **buckets;      /* by handle; nbuckets a power of two */
	size_t nbuckets, count;
	struct fid **by_id;        /* id -> entry (NULL: free) */
	size_t id_cap;
	int *free_ids;             /* stack of freed ids */
	size_t nfree;
	int next_id;
};

static size_t fid_hash(int type, unsigned len, const unsigned char *h)
{
	size_t x = 1469598103934665603ULL ^ (unsigned)type;
	unsigned i;

	for (i = 0; i < len; i++)
		x = (x ^ h[i]) * 1099511628211ULL;
	return x;
}

/* Under w->lock. */
static struct fid *fid_find(struct fan *f, int type, unsigned len, const unsigned char *h)
{
	struct fid *e = f->buckets[fid_hash(type, len, h) & (f->nbuckets - 1)];

	while (e && (e->type != type || e->len != len || memcmp(e->h, h, len) != 0))
		e = e->next;
	return e;
}

static void fid_grow(struct fan *f)
{
	size_t n = f->nbuckets * 2, i;
	struct fid **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (i = 0; i < f->nbuckets; i++)
		while (f->buckets[i]) {
			struct fid *e = f->buckets[i];
			size_t k = fid_hash(e->type, e->len, e->h) & (n - 1);

			f->buckets[i] = e->next;
			e->next = b[k];
			b[k] = e;
		}
	free(f->buckets);
	f->buckets = b;
	f->nbuckets = n;
}

/* The node of handle FH (0: none this mount knows). */
static uint64_t ino_of_handle(struct dir_watch *w, const struct file_handle *fh)
{
	struct fan *f = w->priv;
	struct fid *e;
	uint64_t ino = 0;

	pthread_mutex_lock(&w->lock);
	e = fid_find(f, fh->handle_type, fh->handle_bytes, fh->f_handle);
	if (e)
		ino = watch_id_ino_locked(w, e->id, false);
	pthread_mutex_unlock(&w->lock);
	return ino;
}

/****************************** source ops ******************************/

static int fan_init_group(void)
{
	int fd = fanotify_init(FAN_FLAGS | FAN_UNLIMITED_QUEUE, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && (errno == EPERM || errno == EINVAL))  /* bounded queue: */
		fd = fanotify_init(FAN_FLAGS, O_RDONLY | O_CLOEXEC); /* overflow counted */
	return fd < 0 ? -errno : fd;
}

static int fan_open(struct dir_watch *w)
{
	struct fan *f = calloc(1, sizeof(*f));
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int mnt, r;

	if (!f)
		return -ENOMEM;
	f->nbuckets = 1024;
	f->buckets = calloc(f->nbuckets, sizeof(*f->buckets));
	f->mount_fd = openat(w->d->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!f->buckets || f->mount_fd < 0) {
		r = f->buckets ? -errno : -ENOMEM;
		goto fail;
	}
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(f->mount_fd, "", &u.fh, &mnt, AT_EMPTY_PATH) < 0) {
		r = -errno;                /* no file handles on this filesystem */
		goto fail;
	}
	w->fd = fan_init_group();
	if (w->fd < 0) {
		r = w->fd;
		goto fail;
	}
	if (fanotify_mark(w->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MASK, f->mount_fd,
			  NULL) < 0) {
		r = -errno;
		close(w->fd);
		goto fail;
	}
	w->priv = f;
	return 0;
fail:
	if (f->mount_fd >= 0)
		close(f->mount_fd);
	free(f->buckets);
	free(f);
	return r;
}

static int fan_add(struct dir_watch *w, int fd, bool dir)
{
	struct fan *f = w->priv;
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	struct fid *e;
	int mnt, id;

	(void)dir;
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &u.fh, &mnt, AT_EMPTY_PATH) < 0)
		return -errno;
	pthread_mutex_lock(&w->lock);
	e = fid_find(f, u.fh.handle_type, u.fh.handle_bytes, u.fh.f_handle);
	if (e) {
		id = e->id;
		goto out;
	}
	if (f->nfree) {
		id = f->free_ids[--f->nfree];
	} else {
		if ((size_t)f->next_id >= f->id_cap) {
			size_t cap = f->id_cap * 2 + 64;
			struct fid **p = realloc(f->by_id, cap * sizeof(*p));
			int *q = realloc(f->free_ids, cap * sizeof(*q));

			if (p)
				f->by_id = p;
			if (q)
				f->free_ids = q;
			if (!p || !q) {
				id = -ENOMEM;
				goto out;
			}
			memset(p + f->id_cap, 0, (cap - f->id_cap) * sizeof(*p));
			f->id_cap = cap;
		}
		id = f->next_id++;
	}
	e = malloc(sizeof(*e) + u.fh.handle_bytes);
	if (!e) {
		f->free_ids[f->nfree++] = id;
		id = -ENOMEM;
		goto out;
	}
	e->id = id;
	e->type = u.fh.handle_type;
	e->len = u.fh.handle_bytes;
	memcpy(e->h, u.fh.f_handle, e->len);
	if (++f->count > f->nbuckets * 2)
		fid_grow(f);
	{
		size_t k = fid_hash(e->type, e->len, e->h) & (f->nbuckets - 1);

		e->next = f->buckets[k];
		f->buckets[k] = e;
	}
	f->by_id[id] = e;
out:
	pthread_mutex_unlock(&w->lock);
	return id;
}

static void fan_remove(struct dir_watch *w, int id)
{
	struct fan *f = w->priv;
	struct fid **pp, *e;

	pthread_mutex_lock(&w->lock);
	if (id >= 0 && (size_t)id < f->id_cap && (e = f->by_id[id])) {
		for (pp = &f->buckets[fid_hash(e->type, e->len, e->h) & (f->nbuckets - 1)];
		     *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
		free(e);
		f->by_id[id] = NULL;
		f->count--;
		f->free_ids[f->nfree++] = id;   /* room: one slot per id */
		watch_id_ino_locked(w, id, true);
	}
	pthread_mutex_unlock(&w->lock);
}

/****************************** events ******************************/

/* A link-count change of an object known by its handle only. */
static void decode(struct dir_watch *w, const struct file_handle *fh, unsigned what)
{
	struct fan *f = w->priv;
	struct stat st;
	uint64_t birth, ino;
	int fd;

	atomic_fetch_add(&w->ndecodes, 1);
	fd = open_by_handle_at(f->mount_fd, (struct file_handle *)fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;                    /* gone (ESTALE): nothing to refresh */
	if (dir_stat_at(fd, "", &st, &birth) == 0 && (ino = dir_node_find(w->d, &st, birth)))
		watch_inode_event(w, ino, &st, what);
	close(fd);
}

/* M: the event's metadata; Q..END: its information records. */
static void handle(struct dir_watch *w, const struct fanotify_event_metadata *m,
		   const char *q, const char *end)
{
	const struct file_handle *dfh = NULL, *fh = NULL;
	const char *name = NULL;
	unsigned what = 0;
	uint64_t dir = 0, ino;

	if (m->mask & FAN_Q_OVERFLOW) {
		atomic_fetch_add(&w->nevents, 1);
		watch_fallback(w, "overflow");
		return;
	}
	while (q + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)q;
		const struct fanotify_event_info_fid *fi = (const void *)q;
		const struct file_handle *hd = (const void *)fi->handle;

		if (h->len < sizeof(*fi) || q + h->len > end)
			break;
		if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
			dfh = hd;
			name = (const char *)hd->f_handle + hd->handle_bytes;
		} else if (h->info_type == FAN_EVENT_INFO_TYPE_DFID) {
			dfh = hd;
		} else if (h->info_type == FAN_EVENT_INFO_TYPE_FID) {
			fh = hd;
		}
		q += h->len;
	}
	if (m->mask & (FAN_CREATE | FAN_MOVED_TO))
		what |= WE_ADD;
	if (m->mask & (FAN_DELETE | FAN_MOVED_FROM))
		what |= WE_DEL;
	if (m->mask & FAN_MODIFY)
		what |= WE_DATA;
	if (m->mask & FAN_ATTRIB)
		what |= WE_ATTR;
	if (!what)
		return;
	if (name && strcmp(name, ".") == 0)  /* an event on the directory itself */
		name = NULL;
	if (dfh)
		dir = ino_of_handle(w, dfh);
	if (dir && name) {
		watch_dir_event(w, dir, name, what);
	} else if (dir && !(what & (WE_ADD | WE_DEL))) {
		watch_dir_event(w, dir, NULL, what);
	} else if (fh && !(what & (WE_ADD | WE_DEL))) {
		/* a file changed through a directory the kernel does not know,
		 * or its link count changed (no directory: link, unlink) */
		if ((ino = ino_of_handle(w, fh)))
			watch_inode_event(w, ino, NULL, what);
		else if (!dfh && (what & WE_ATTR))
			decode(w, fh, what);
	}
}

static int fan_drain(struct dir_watch *w)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	ssize_t n = read(w->fd, buf, sizeof(buf));
	const char *q = buf;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	/* Records are only 4-byte aligned (names are padded to 4): the
	 * metadata (with its 64-bit mask) is copied out before use. */
	while (buf + n - q >= (ssize_t)sizeof(struct fanotify_event_metadata)) {
		struct fanotify_event_metadata m;

		memcpy(&m, q, sizeof(m));
		if (m.vers != FANOTIFY_METADATA_VERSION)
			return -EPROTO;
		if (m.event_len < sizeof(m) || m.event_len > (size_t)(buf + n - q))
			break;
		if (m.fd >= 0)             /* not with FAN_REPORT_FID; to be sure */
			close(m.fd);
		handle(w, &m, q + m.metadata_len, q + m.event_len);
		q += m.event_len;
	}
	return 0;
}

static void fan_close(struct dir_watch *w)
{
	struct fan *f = w->priv;
	size_t i;

	close(w->fd);
	if (!f)
		return;
	for (i = 0; i < f->nbuckets; i++)
		while (f->buckets[i]) {
			struct fid *e = f->buckets[i];

			f->buckets[i] = e->next;
			free(e);
		}
	free(f->buckets);
	free(f->by_id);
	free(f->free_ids);
	close(f->mount_fd);
	free(f);
	w->priv = NULL;
}

const struct watch_source watch_fanotify = {
	.name = "fanotify",
	.open = fan_open,
	.add = fan_add,
	.remove = fan_remove,
	.drain = fan_drain,
	.close = fan_close,
};

int dir_watch_fanotify_probe(const char *backing, char *why, size_t len)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int dfd, gfd, mnt, r = 0;

	dfd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		snprintf(why, len, "cannot open %s: %s", backing, strerror(errno));
		return r;
	}
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dfd, "", &u.fh, &mnt, AT_EMPTY_PATH) < 0) {
		r = -errno;
		snprintf(why, len, "the backing filesystem has no file handles: %s",
			 strerror(errno));
	} else if ((gfd = fan_init_group()) < 0) {
		r = gfd;
		snprintf(why, len, "fanotify_init with directory handles and names: %s%s",
			 strerror(-r), r == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	} else {
		if (fanotify_mark(gfd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MASK, dfd, NULL) < 0) {
			r = -errno;
			snprintf(why, len, "filesystem mark on %s: %s", backing, strerror(errno));
		}
		close(gfd);
	}
	close(dfd);
	return r;
}
