/*
** test_chaos_layer.c -- the chaos layer driven through fs.h over the mem
** backend, without FUSE. The chaos layer is one client; calls made
** straight to the inner filesystem play "the truth and everybody else".
** Covers read-your-writes with delayed publication, the view of pending
** changes, cached attributes and absences, runtime knobs, seeded drops,
** and a multithreaded run (for the ThreadSanitizer build).
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "backend/mem/mem.h"
#include "layer/chaos/chaos.h"

struct cfx {
	struct eddy_fs *fs, *inner;
	struct eddy_ctx ctx;
};

static int cfx_open(struct cfx *x, long ttl, long wdelay, double drop, uint64_t seed)
{
	struct chaos_options co = { 0 };
	struct mem_options mo;
	char err[256];
	int r;

	mem_options_default(&mo);
	eddy_ctx_self(&x->ctx);
	x->ctx.umask = 022;
	if ((r = mem_fs_open(&mo, &x->inner, err, sizeof(err))) < 0)
		return r;
	chaos_knobs_default(&co.knobs);
	co.knobs.meta_ttl_ms = ttl;
	co.knobs.write_delay_ms = wdelay;
	co.knobs.drop_prob = drop;
	co.seeded = true;
	co.seed = seed;
	co.client_id = "unit";
	if ((r = chaos_fs_open(x->inner, &co, &x->fs, err, sizeof(err))) < 0) {
		fprintf(stderr, "  %s\n", err);
		x->inner->ops->destroy(x->inner);
	}
	return r;
}

static void cfx_close(struct cfx *x)
{
	x->fs->ops->destroy(x->fs);
}

static void ignore_line(void *arg, const char *key, long long value)
{
	(void)arg;
	(void)key;
	(void)value;
}

static int control(struct cfx *x, const char *req)
{
	char err[256];

	return x->fs->ops->control(x->fs, req, ignore_line, NULL, err, sizeof(err));
}

/* Reads up to LEN bytes at 0 through the inner filesystem (the truth). */
static ssize_t truth_read(struct cfx *x, uint64_t ino, char *buf, size_t len)
{
	struct eddy_open how;
	struct eddy_file *f;
	ssize_t n;

	if (x->inner->ops->open(x->inner, &x->ctx, ino, O_RDONLY, &f, &how))
		return -1;
	n = x->inner->ops->read(x->inner, f, buf, len, 0);
	x->inner->ops->release(x->inner, f);
	return n;
}

TEST(chaos_write_delay_read_your_writes)
{
	struct cfx x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	struct stat st;
	char buf[64];
	double t;

	CHECK_EQ(cfx_open(&x, 0, 60000, 0, 1), 0);
	CHECK_EQ(x.fs->ops->create(x.fs, &x.ctx, EDDY_ROOT_INO, "f", 0644, O_RDWR | O_CREAT,
				   &e, &f, &how), 0);
	CHECK(!how.keep_cache && how.wants_flush);
	CHECK_EQ(x.fs->ops->write(x.fs, &x.ctx, f, "hello world", 11, 0), 11);
	CHECK_EQ(x.fs->ops->write(x.fs, &x.ctx, f, "W", 1, 6), 1);
	CHECK_EQ(x.fs->ops->read(x.fs, f, buf, sizeof(buf), 0), 11);
	CHECK(memcmp(buf, "hello World", 11) == 0);
	CHECK_EQ(x.fs->ops->getattr(x.fs, &x.ctx, e.ino, f, &st, &t), 0);
	CHECK_EQ(st.st_size, 11);
	CHECK_EQ(truth_read(&x, e.ino, buf, sizeof(buf)), 0);
	/* a truncate is pending too, after the writes */
	{
		struct stat in = { .st_size = 5 }, out;

		CHECK_EQ(x.fs->ops->setattr(x.fs, &x.ctx, e.ino, f, &in, EDDY_SET_SIZE, &out,
					    &t), 0);
		CHECK_EQ(out.st_size, 5);
	}
	CHECK_EQ(x.fs->ops->read(x.fs, f, buf, sizeof(buf), 0), 5);
	CHECK_EQ(x.fs->ops->read(x.fs, f, buf, sizeof(buf), 3), 2);
	CHECK(memcmp(buf, "lo", 2) == 0);
	CHECK_EQ(x.fs->ops->fsync(x.fs, f, false), 0);
	CHECK_EQ(truth_read(&x, e.ino, buf, sizeof(buf)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	x.fs->ops->release(x.fs, f);
	x.fs->ops->forget(x.fs, e.ino, 1);
	cfx_close(&x);
}

TEST(chaos_cached_attributes_and_absence)
{
	struct cfx x;
	struct eddy_entry e, t_e;
	struct eddy_open how;
	struct eddy_file *f;
	struct stat st, in = { .st_size = 100 }, out;
	double t;

	CHECK_EQ(cfx_open(&x, 60000, 0, 0, 1), 0);
	CHECK_EQ(x.fs->ops->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "later", &e), -ENOENT);
	CHECK_EQ(x.fs->ops->create(x.fs, &x.ctx, EDDY_ROOT_INO, "f", 0644, O_RDWR | O_CREAT,
				   &e, &f, &how), 0);
	CHECK_EQ(e.entry_timeout, 0);
	CHECK_EQ(x.fs->ops->getattr(x.fs, &x.ctx, e.ino, NULL, &st, &t), 0);
	CHECK_EQ(st.st_size, 0);
	/* somebody else changes the truth */
	CHECK_EQ(x.inner->ops->setattr(x.inner, &x.ctx, e.ino, NULL, &in, EDDY_SET_SIZE, &out,
				       &t), 0);
	CHECK_EQ(x.inner->ops->mkdir(x.inner, &x.ctx, EDDY_ROOT_INO, "later", 0755, &t_e), 0);
	x.inner->ops->forget(x.inner, t_e.ino, 1);
	/* this client still serves what it fetched */
	CHECK_EQ(x.fs->ops->getattr(x.fs, &x.ctx, e.ino, NULL, &st, &t), 0);
	CHECK_EQ(st.st_size, 0);
	CHECK_EQ(x.fs->ops->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "later", &t_e), -ENOENT);
	/* a TTL of 0 applies to the cache at once */
	CHECK_EQ(control(&x, "chaos set meta-ttl=0"), 0);
	CHECK_EQ(x.fs->ops->getattr(x.fs, &x.ctx, e.ino, NULL, &st, &t), 0);
	CHECK_EQ(st.st_size, 100);
	CHECK_EQ(x.fs->ops->lookup(x.fs, &x.ctx, EDDY_ROOT_INO, "later", &t_e), 0);
	x.fs->ops->forget(x.fs, t_e.ino, 1);
	CHECK_EQ(control(&x, "chaos set meta-ttl=abc"), -EINVAL);
	CHECK_EQ(control(&x, "chaos frob"), -EINVAL);
	CHECK_EQ(control(&x, "stats-of-something-else"), -ENOSYS);
	x.fs->ops->release(x.fs, f);
	x.fs->ops->forget(x.fs, e.ino, 1);
	cfx_close(&x);
}

/* The drop pattern of 200 statfs calls as a bit string. */
static void drop_pattern(struct cfx *x, char *out, size_t n)
{
	struct statvfs sv;
	size_t i;

	for (i = 0; i < n - 1; i++)
		out[i] = x->fs->ops->statfs(x->fs, &x->ctx, EDDY_ROOT_INO, &sv) ? 'D' : '.';
	out[n - 1] = 0;
}

TEST(chaos_seeded_drops_repeat)
{
	struct cfx a, b, c;
	char pa[201], pb[201], pc[201];

	CHECK_EQ(cfx_open(&a, 0, 0, 0.3, 42), 0);
	CHECK_EQ(cfx_open(&b, 0, 0, 0.3, 42), 0);
	CHECK_EQ(cfx_open(&c, 0, 0, 0.3, 43), 0);
	drop_pattern(&a, pa, sizeof(pa));
	drop_pattern(&b, pb, sizeof(pb));
	drop_pattern(&c, pc, sizeof(pc));
	cfx_close(&a);
	cfx_close(&b);
	cfx_close(&c);
	CHECK(strcmp(pa, pb) == 0);
	CHECK(strcmp(pa, pc) != 0);
	CHECK(strchr(pa, 'D') && strchr(pa, '.'));
}

struct writer_arg {
	struct cfx *x;
	int id;
	int failed;
};

/* Each thread writes its own file in 64-byte pieces and reads each piece
** back at once (its view), while the publisher publishes underneath. */
static void *writer_main(void *arg)
{
	struct writer_arg *w = arg;
	struct cfx *x = w->x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	char name[16], piece[64], back[64];
	int i;

	snprintf(name, sizeof(name), "w%d", w->id);
	if (x->fs->ops->create(x->fs, &x->ctx, EDDY_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &e,
			       &f, &how)) {
		w->failed = 1;
		return NULL;
	}
	for (i = 0; i < 300 && !w->failed; i++) {
		memset(piece, 'a' + (i + w->id) % 26, sizeof(piece));
		if (x->fs->ops->write(x->fs, &x->ctx, f, piece, sizeof(piece),
				      (off_t)i * 64) != 64 ||
		    x->fs->ops->read(x->fs, f, back, sizeof(back), (off_t)i * 64) != 64 ||
		    memcmp(piece, back, 64) != 0)
			w->failed = 1;
		if (i % 50 == 0 && x->fs->ops->fsync(x->fs, f, true))
			w->failed = 1;
	}
	x->fs->ops->release(x->fs, f);
	x->fs->ops->forget(x->fs, e.ino, 1);
	return NULL;
}

TEST(chaos_threads_write_read_publish)
{
	struct cfx x;
	struct writer_arg w[4];
	pthread_t th[4];
	int i;

	CHECK_EQ(cfx_open(&x, 5, 2, 0, 1), 0);
	for (i = 0; i < 4; i++) {
		w[i] = (struct writer_arg){ .x = &x, .id = i };
		CHECK_EQ(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (i = 0; i < 20; i++)
		control(&x, i % 2 ? "chaos set write-delay=0" : "chaos set write-delay=3");
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		CHECK_EQ(w[i].failed, 0);
	/* everything published, in order: the truth has every piece */
	CHECK_EQ(control(&x, "chaos clear"), 0);
	for (i = 0; i < 4; i++) {
		static char data[300 * 64];
		struct eddy_entry e;
		char name[16];
		int k;

		snprintf(name, sizeof(name), "w%d", i);
		CHECK_EQ(x.inner->ops->lookup(x.inner, &x.ctx, EDDY_ROOT_INO, name, &e), 0);
		CHECK_EQ(truth_read(&x, e.ino, data, sizeof(data)), (long long)sizeof(data));
		x.inner->ops->forget(x.inner, e.ino, 1);
		for (k = 0; k < 300; k++)
			CHECK_EQ(data[k * 64 + 63], 'a' + (k + i) % 26);
	}
	cfx_close(&x);
}

TEST(chaos_rules_and_partition)
{
	struct cfx x;
	struct statvfs sv;
	int i, got[4];

	CHECK_EQ(cfx_open(&x, 0, 0, 0, 1), 0);
	CHECK_EQ(control(&x, "chaos fault op=statfs,after=1,count=2,errno=ENOSPC"), 0);
	CHECK_EQ(control(&x, "chaos fault op=nothing"), -EINVAL);
	for (i = 0; i < 4; i++)
		got[i] = x.fs->ops->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv);
	CHECK_EQ(got[0], 0);
	CHECK_EQ(got[1], -ENOSPC);
	CHECK_EQ(got[2], -ENOSPC);
	CHECK_EQ(got[3], 0);
	CHECK_EQ(control(&x, "chaos partition softerr=10"), 0);
	CHECK_EQ(x.fs->ops->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv), -ETIMEDOUT);
	CHECK_EQ(control(&x, "chaos partition later"), -EINVAL);
	CHECK_EQ(control(&x, "chaos heal"), 0);
	CHECK_EQ(x.fs->ops->statfs(x.fs, &x.ctx, EDDY_ROOT_INO, &sv), 0);
	/* a hard partition is healed by unmounting (destroy) */
	CHECK_EQ(control(&x, "chaos partition hard"), 0);
	cfx_close(&x);
}
