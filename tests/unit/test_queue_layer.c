/*
** test_queue_layer.c -- the queue layer driven through fs.h over the mem
** backend, without FUSE: queue creation bound to this process, messages in
** arrival order, head/tail, pops, reserved names, claims, and a quota.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "backend/mem/mem.h"
#include "layer/queue/queue.h"

struct qfx {
	struct eddy_fs *fs;
	const struct eddy_fs_ops *op;
	struct eddy_ctx ctx;
	uint64_t q;                /* the queue "q" in the root */
};

static int qfx_open(struct qfx *x, const char *config)
{
	struct queue_options qo = { .root_queues = true, .config = config };
	struct mem_options mo;
	struct eddy_fs *inner;
	struct eddy_entry e;
	char err[256];
	int r;

	mem_options_default(&mo);
	eddy_ctx_self(&x->ctx);
	x->ctx.umask = 022;
	if ((r = mem_fs_open(&mo, &inner, err, sizeof(err))) < 0)
		return r;
	if ((r = queue_fs_open(inner, &qo, &x->fs, err, sizeof(err))) < 0) {
		fprintf(stderr, "  %s\n", err);
		inner->ops->destroy(inner);
		return r;
	}
	x->op = x->fs->ops;
	r = x->op->mkdir(x->fs, &x->ctx, EDDY_ROOT_INO, "q", 0777, &e);
	x->q = e.ino;
	return r;
}

static int put(struct qfx *x, const char *name, const char *data)
{
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	int r = x->op->create(x->fs, &x->ctx, x->q, name, 0644, O_WRONLY | O_CREAT | O_EXCL, &e,
			      &f, &how);

	if (r)
		return r;
	x->op->write(x->fs, &x->ctx, f, data, strlen(data), 0);
	x->op->release(x->fs, f);
	x->op->forget(x->fs, e.ino, 1);
	return 0;
}

/* readlink of q/NAME into BUF; -errno, or 0 with an empty BUF if absent. */
static int end_of(struct qfx *x, const char *name, char *buf, size_t len)
{
	struct eddy_entry e;
	ssize_t n;
	int r = x->op->lookup(x->fs, &x->ctx, x->q, name, &e);

	buf[0] = 0;
	if (r || !e.ino)
		return r;
	n = x->op->readlink(x->fs, &x->ctx, e.ino, buf, len - 1);
	x->op->forget(x->fs, e.ino, 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	return 0;
}

TEST(queue_layer_order_pops_and_reserved_names)
{
	struct qfx x;
	struct eddy_entry e;
	char buf[64];

	CHECK_EQ(qfx_open(&x, NULL), 0);
	CHECK_EQ(x.op->mknod(x.fs, &x.ctx, EDDY_ROOT_INO, "f", S_IFREG | 0644, 0, &e), -EPERM);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, x.q, "sub", 0755, &e), -EPERM);
	CHECK_EQ(put(&x, "head", "x"), -EPERM);            /* empty queue */
	CHECK_EQ(put(&x, "b", "1"), 0);
	CHECK_EQ(put(&x, "a", "2"), 0);
	CHECK_EQ(put(&x, "c", "3"), 0);
	CHECK_EQ(put(&x, "tail", "x"), -EEXIST);
	CHECK_EQ(put(&x, ".claim", "x"), -EEXIST);
	CHECK_EQ(end_of(&x, "head", buf, sizeof(buf)), 0);
	CHECK(strcmp(buf, "b") == 0);
	CHECK_EQ(end_of(&x, "tail", buf, sizeof(buf)), 0);
	CHECK(strcmp(buf, "c") == 0);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, x.q, "a", x.q, "z", 0), -EXDEV);
	CHECK_EQ(x.op->rename(x.fs, &x.ctx, EDDY_ROOT_INO, "q", EDDY_ROOT_INO, "r", 0), -EPERM);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, x.q, "head"), 0);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, x.q, "tail"), 0);
	CHECK_EQ(end_of(&x, "head", buf, sizeof(buf)), 0);
	CHECK(strcmp(buf, "a") == 0);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, x.q, "a"), 0);
	CHECK_EQ(end_of(&x, "head", buf, sizeof(buf)), 0);
	CHECK_EQ(buf[0], 0);                                 /* empty: no head */
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, x.q, "head"), -ENOENT);
	CHECK_EQ(put(&x, "d", "4"), 0);                       /* eventfs bug B1 */
	CHECK_EQ(end_of(&x, "head", buf, sizeof(buf)), 0);
	CHECK(strcmp(buf, "d") == 0);
	x.op->destroy(x.fs);
}

TEST(queue_layer_claim_batches_and_waits_for_writers)
{
	struct qfx x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *claim, *w;
	char buf[256];
	unsigned rev;
	uint64_t cino;
	ssize_t n;

	CHECK_EQ(qfx_open(&x, NULL), 0);
	CHECK_EQ(x.op->lookup(x.fs, &x.ctx, x.q, ".claim", &e), 0);
	cino = e.ino;
	CHECK(cino >= EDDY_LAYER_INO_BASE);
	CHECK_EQ(x.op->open(x.fs, &x.ctx, cino, O_RDONLY, &claim, &how), 0);
	CHECK(how.direct_io);
	CHECK_EQ(x.op->read(x.fs, claim, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_EQ(x.op->poll(x.fs, claim, POLLIN, &rev), 0);
	CHECK_EQ(rev & POLLIN, 0);
	CHECK_EQ(put(&x, "m1", "one"), 0);
	CHECK_EQ(put(&x, "m2", "two!"), 0);
	CHECK_EQ(x.op->poll(x.fs, claim, POLLIN, &rev), 0);
	CHECK(rev & POLLIN);
	n = x.op->read(x.fs, claim, buf, sizeof(buf) - 1, 0);
	CHECK_EQ(n, (ssize_t)strlen("3 m1\none4 m2\ntwo!"));
	buf[n] = 0;
	CHECK(strcmp(buf, "3 m1\none4 m2\ntwo!") == 0);
	/* a message still open for writing is not claimed */
	CHECK_EQ(x.op->create(x.fs, &x.ctx, x.q, "w", 0644, O_WRONLY | O_CREAT | O_EXCL, &e, &w,
			      &how), 0);
	CHECK_EQ(x.op->read(x.fs, claim, buf, sizeof(buf), 0), -EAGAIN);
	x.op->write(x.fs, &x.ctx, w, "late", 4, 0);
	x.op->release(x.fs, w);
	x.op->forget(x.fs, e.ino, 1);
	/* a record larger than the buffer continues on the next read */
	n = x.op->read(x.fs, claim, buf, 3, 0);
	CHECK_EQ(n, 3);
	CHECK(memcmp(buf, "4 w", 3) == 0);
	n = x.op->read(x.fs, claim, buf, sizeof(buf), 0);
	CHECK_EQ(n, 5);
	CHECK(memcmp(buf, "\nlate", 5) == 0);
	x.op->release(x.fs, claim);
	x.op->forget(x.fs, cino, 1);
	x.op->destroy(x.fs);
}

TEST(queue_layer_per_queue_quota_is_exact)
{
	char path[] = "/tmp/eddyfs-unit-qcfg-XXXXXX";
	const char cfg[] = "[eventfs-config]\ndefault_max_files_per_dir=2\n";
	struct qfx x;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, cfg, sizeof(cfg) - 1), (ssize_t)(sizeof(cfg) - 1));
	close(fd);
	CHECK_EQ(qfx_open(&x, path), 0);
	unlink(path);
	CHECK_EQ(put(&x, "a", "1"), 0);
	CHECK_EQ(put(&x, "b", "2"), 0);
	CHECK_EQ(put(&x, "c", "3"), -EDQUOT);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, x.q, "head"), 0);
	CHECK_EQ(put(&x, "c", "3"), 0);
	x.op->destroy(x.fs);
}
