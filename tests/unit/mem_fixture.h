/*
** mem_fixture.h -- helpers of the mem backend's unit tests: a fresh
** filesystem per test, and small wrappers around struct eddy_fs_ops.
** Every helper that takes a reference gives it back unless it says so.
*/
#ifndef EDDY_MEM_FIXTURE_H
#define EDDY_MEM_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/mem/mem.h"

struct mfx {
	struct eddy_fs *fs;
	const struct eddy_fs_ops *op;
	struct eddy_ctx ctx;       /* the test process: root */
};

static inline int mfx_open(struct mfx *x, uint64_t max_bytes, uint64_t max_inodes)
{
	struct mem_options o;
	char err[256];
	int r;

	mem_options_default(&o);
	o.max_bytes = max_bytes;
	o.max_inodes = max_inodes;
	eddy_ctx_self(&x->ctx);
	r = mem_fs_open(&o, &x->fs, err, sizeof(err));
	x->op = r == 0 ? x->fs->ops : NULL;
	return r;
}

static inline void mfx_close(struct mfx *x)
{
	if (x->fs)
		x->fs->ops->destroy(x->fs);
	x->fs = NULL;
}

/* A regular file NAME in PARENT with CONTENT; its ino (one reference), 0 on error. */
static inline uint64_t mfx_file(struct mfx *x, uint64_t parent, const char *name,
				const char *content)
{
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;

	if (x->op->create(x->fs, &x->ctx, parent, name, 0644, O_RDWR | O_CREAT | O_EXCL, &e, &f,
			  &how))
		return 0;
	if (content)
		x->op->write(x->fs, &x->ctx, f, content, strlen(content), 0);
	x->op->release(x->fs, f);
	return e.ino;
}

static inline struct stat mfx_stat(struct mfx *x, uint64_t ino)
{
	struct stat st;
	double t;

	if (x->op->getattr(x->fs, &x->ctx, ino, NULL, &st, &t) != 0) {
		memset(&st, 0, sizeof(st));
		st.st_nlink = 9999;
	}
	return st;
}

static inline long long mfx_read(struct mfx *x, uint64_t ino, off_t off, size_t len)
{
	struct eddy_open how;
	struct eddy_file *f;
	char *buf = malloc(len ? len : 1);
	long long n;

	if (!buf || x->op->open(x->fs, &x->ctx, ino, O_RDONLY, &f, &how) != 0) {
		free(buf);
		return -1;
	}
	n = x->op->read(x->fs, f, buf, len, off);
	x->op->release(x->fs, f);
	free(buf);
	return n;
}

static inline int mfx_setattr(struct mfx *x, const struct eddy_ctx *c, uint64_t ino,
			      const struct stat *in, int mask, struct stat *out)
{
	struct stat st;
	double t;

	return x->op->setattr(x->fs, c, ino, NULL, in, mask, out ? out : &st, &t);
}

static inline int mfx_truncate(struct mfx *x, uint64_t ino, long long size)
{
	struct stat in;

	memset(&in, 0, sizeof(in));
	in.st_size = (off_t)size;
	return mfx_setattr(x, &x->ctx, ino, &in, EDDY_SET_SIZE, NULL);
}

struct mfx_pick {
	const char *key;
	long long value;
};

static inline void mfx_pick_fn(void *arg, const char *key, long long value)
{
	struct mfx_pick *p = arg;

	if (strcmp(p->key, key) == 0)
		p->value = value;
}

static inline long long mfx_report(struct mfx *x, const char *key)
{
	struct mfx_pick p = { key, -1 };

	x->op->report(x->fs, mfx_pick_fn, &p);
	return p.value;
}

/* The ino of PARENT/NAME (reference given back), 0 if absent. */
static inline uint64_t mfx_lookup(struct mfx *x, uint64_t parent, const char *name)
{
	struct eddy_entry e;

	if (x->op->lookup(x->fs, &x->ctx, parent, name, &e) != 0 || !e.ino)
		return 0;
	x->op->forget(x->fs, e.ino, 1);
	return e.ino;
}

/* What a readdir fill callback collected; references are kept in ref[]. */
#define MFX_NAMES 4096
struct mfx_listing {
	char names[MFX_NAMES][32];
	uint64_t inos[MFX_NAMES];
	int n;
	int limit, taken;          /* limit 0: take everything */
	uint64_t last;             /* cookie after the last entry taken */
	uint64_t ref[MFX_NAMES];
	int nrefs, refs;
};

static inline int mfx_collect(void *arg, const char *name, const struct stat *st,
			      const struct eddy_entry *e, uint64_t next)
{
	struct mfx_listing *l = arg;

	if ((l->limit && l->taken == l->limit) || l->n == MFX_NAMES)
		return 1;
	l->taken++;
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->inos[l->n++] = st->st_ino;
	l->last = next;
	if (e && e->ino) {
		l->refs++;
		l->ref[l->nrefs++] = e->ino;
	}
	return 0;
}

static inline void mfx_forget_refs(struct mfx *x, struct mfx_listing *l)
{
	int i;

	for (i = 0; i < l->nrefs; i++)
		x->op->forget(x->fs, l->ref[i], 1);
	l->nrefs = 0;
}

/* The st_ino readdir gives for ".." of directory DIR. */
static inline uint64_t mfx_dotdot(struct mfx *x, uint64_t dir)
{
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_open how;
	struct eddy_file *d;
	uint64_t ino = 0;
	int i;

	if (!l || x->op->opendir(x->fs, &x->ctx, dir, &d, &how) != 0) {
		free(l);
		return 0;
	}
	x->op->readdir(x->fs, &x->ctx, d, 0, false, mfx_collect, l);
	x->op->releasedir(x->fs, d);
	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], "..") == 0)
			ino = l->inos[i];
	free(l);
	return ino;
}

#endif /* EDDY_MEM_FIXTURE_H */
