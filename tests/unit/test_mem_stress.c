/*
** test_mem_stress.c -- the mem backend under change and concurrency,
** through struct eddy_fs_ops (meant for the ASan and TSan builds):
** readdir cookies that stay valid while entries are added and removed
** between and during listings, a multithreaded namespace and data stress
** whose end state is checked, and destroy with handles and references
** the kernel never gave back (LeakSanitizer checks nothing is lost).
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"
#include "mem_fixture.h"

static int count_name(const struct mfx_listing *l, const char *name)
{
	int i, n = 0;

	for (i = 0; i < l->n; i++)
		n += strcmp(l->names[i], name) == 0;
	return n;
}

/* Lists D in calls of at most LIMIT entries, running BETWEEN before each
** call after the first; false if a call failed. */
static bool list_chunked(struct mfx *x, struct eddy_file *d, struct mfx_listing *l, int limit,
			 bool plus, void (*between)(struct mfx *, int), int *calls)
{
	int before;

	l->n = 0;
	*calls = 0;
	do {
		before = l->n;
		l->taken = 0;
		l->limit = limit;
		if (*calls && between)
			between(x, *calls);
		if (x->op->readdir(x->fs, &x->ctx, d, before ? l->last : 0, plus, mfx_collect, l))
			return false;
		mfx_forget_refs(x, l);
		(*calls)++;
	} while (l->n != before && *calls < 10000);
	return true;
}

/* Between listing calls: remove two "tmp" entries, add two new ones. */
static void churn(struct mfx *x, int call)
{
	char name[32];
	int k;

	for (k = 0; k < 2; k++) {
		snprintf(name, sizeof(name), "tmp%03d", (call * 2 + k) % 100);
		x->op->unlink(x->fs, &x->ctx, EDDY_ROOT_INO, name);
		snprintf(name, sizeof(name), "new%04d", call * 2 + k);
		x->op->forget(x->fs, mfx_file(x, EDDY_ROOT_INO, name, NULL), 1);
	}
}

TEST(mem_readdir_cookies_survive_changes)
{
	struct mfx x;
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_open how;
	struct eddy_file *d;
	char name[32];
	int i, calls, plus;

	CHECK(l && mfx_open(&x, 0, 0) == 0);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "keep%03d", i);
		x.op->forget(x.fs, mfx_file(&x, EDDY_ROOT_INO, name, NULL), 1);
		if (i < 100) {
			snprintf(name, sizeof(name), "tmp%03d", i);
			x.op->forget(x.fs, mfx_file(&x, EDDY_ROOT_INO, name, NULL), 1);
		}
	}
	CHECK_EQ(x.op->opendir(x.fs, &x.ctx, EDDY_ROOT_INO, &d, &how), 0);
	for (plus = 0; plus < 2; plus++) {
		CHECK(list_chunked(&x, d, l, 7, plus, churn, &calls));
		CHECK(calls > 40);
		CHECK_EQ(count_name(l, "."), 1);
		CHECK_EQ(count_name(l, ".."), 1);
		for (i = 0; i < 300; i++) {              /* present throughout: once */
			snprintf(name, sizeof(name), "keep%03d", i);
			CHECK_EQ(count_name(l, name), 1);
		}
		for (i = 0; i < l->n; i++)               /* nothing twice */
			CHECK_EQ(count_name(l, l->names[i]), 1);
	}
	/* a cookie handed out earlier still resumes at the same place */
	CHECK(list_chunked(&x, d, l, 0, false, NULL, &calls));
	{
		struct mfx_listing *r = calloc(1, sizeof(*r));
		uint64_t cookie = 0;
		int at = -1;

		CHECK(r);
		CHECK_EQ(x.op->readdir(x.fs, &x.ctx, d, 0, false, mfx_collect, r), 0);
		for (i = 0; i < r->n; i++)
			if (strcmp(r->names[i], "keep150") == 0)
				at = i;
		CHECK(at > 0);
		r->limit = at + 1;
		r->n = r->taken = 0;
		CHECK_EQ(x.op->readdir(x.fs, &x.ctx, d, 0, false, mfx_collect, r), 0);
		cookie = r->last;
		CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "keep150"), 0);
		CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "keep151"), 0);
		r->limit = 1;
		r->n = r->taken = 0;
		CHECK_EQ(x.op->readdir(x.fs, &x.ctx, d, cookie, false, mfx_collect, r), 0);
		CHECK(strcmp(r->names[0], "keep152") == 0);
		free(r);
	}
	x.op->releasedir(x.fs, d);
	CHECK_EQ(mfx_report(&x, "open_files"), 0);
	free(l);
	mfx_close(&x);
}

struct lister {
	struct mfx *x;
	atomic_bool stop;
	atomic_int listings;
	int bad;
};

/* Lists the root over and over: every "keep" entry exactly once. */
static void *lister_main(void *arg)
{
	struct lister *s = arg;
	struct mfx_listing *l = calloc(1, sizeof(*l));
	struct eddy_open how;
	struct eddy_file *d;
	int calls, i;

	if (!l || s->x->op->opendir(s->x->fs, &s->x->ctx, EDDY_ROOT_INO, &d, &how)) {
		s->bad++;
		free(l);
		return NULL;
	}
	while (!atomic_load(&s->stop)) {
		char name[32];

		if (!list_chunked(s->x, d, l, 5, atomic_load(&s->listings) % 2, NULL, &calls))
			s->bad++;
		for (i = 0; i < 50; i++) {
			snprintf(name, sizeof(name), "keep%02d", i);
			if (count_name(l, name) != 1)
				s->bad++;
		}
		atomic_fetch_add(&s->listings, 1);
	}
	s->x->op->releasedir(s->x->fs, d);
	free(l);
	return NULL;
}

TEST(mem_readdir_concurrent_with_changes)
{
	struct mfx x;
	struct lister s = { .x = &x };
	pthread_t th;
	char name[32];
	int i;

	CHECK(mfx_open(&x, 0, 0) == 0);
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "keep%02d", i);
		x.op->forget(x.fs, mfx_file(&x, EDDY_ROOT_INO, name, NULL), 1);
	}
	atomic_init(&s.stop, false);
	atomic_init(&s.listings, 0);
	CHECK(pthread_create(&th, NULL, lister_main, &s) == 0);
	for (i = 0; i < 3000 || atomic_load(&s.listings) < 20; i++) {
		snprintf(name, sizeof(name), "churn%d", i % 40);
		if (i % 2 == 0)
			x.op->forget(x.fs, mfx_file(&x, EDDY_ROOT_INO, name, NULL), 1);
		else
			x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, name);
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	CHECK(atomic_load(&s.listings) >= 20);
	CHECK_EQ(s.bad, 0);
	mfx_close(&x);
}

struct stress {
	struct mfx *x;
	unsigned seed;
	int ops;
	int errors;                /* unexpected results */
};

/* One file op on "fN" in directory D: create/write/read/truncate. */
static void stress_data(struct stress *s, uint64_t d, const char *a, unsigned r)
{
	struct mfx *x = s->x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	char buf[9000];
	ssize_t n;

	if (x->op->create(x->fs, &x->ctx, d, a, 0644, O_RDWR | O_CREAT, &e, &f, &how) != 0)
		return;                /* a directory of that name, or d removed */
	memset(buf, 'a' + (int)(r % 26), sizeof(buf));
	if (x->op->write(x->fs, &x->ctx, f, buf, 1 + r % 8999, (off_t)(r % 70000)) <= 0)
		s->errors++;
	n = x->op->read(x->fs, f, buf, sizeof(buf), (off_t)(r % 50000));
	if (n < 0)
		s->errors++;
	if (r % 5 == 0) {
		struct stat in, st;
		double t;

		memset(&in, 0, sizeof(in));
		in.st_size = r % 30000;
		if (x->op->setattr(x->fs, &x->ctx, e.ino, f, &in, EDDY_SET_SIZE, &st, &t) != 0)
			s->errors++;
	}
	if (r % 7 == 0) {
		off_t h = x->op->lseek(x->fs, f, 0, SEEK_HOLE);

		if (h < 0 && h != -ENXIO)
			s->errors++;
	}
	x->op->release(x->fs, f);
	x->op->forget(x->fs, e.ino, 1);
}

static void *stress_main(void *arg)
{
	struct stress *s = arg;
	struct mfx *x = s->x;
	struct mfx_listing *l = calloc(1, sizeof(*l));
	int i;

	for (i = 0; l && i < s->ops; i++) {
		unsigned r = (unsigned)rand_r(&s->seed);
		uint64_t d = mfx_lookup(x, EDDY_ROOT_INO, r & 1 ? "d1" : "d2");
		uint64_t d2 = mfx_lookup(x, EDDY_ROOT_INO, r & 2 ? "d1" : "d2");
		struct eddy_entry e;
		struct eddy_open how;
		struct eddy_file *h;
		char a[8], b[8];

		snprintf(a, sizeof(a), "f%u", (r >> 4) % 6);
		snprintf(b, sizeof(b), "f%u", (r >> 8) % 6);
		if (!d || !d2)
			continue;
		switch ((r >> 12) % 9) {
		case 0:
		case 1:
			stress_data(s, d, a, r >> 16);
			break;
		case 2:
			x->op->unlink(x->fs, &x->ctx, d, a);
			break;
		case 3:
			x->op->rename(x->fs, &x->ctx, d, a, d2, b, (r >> 20) % 3 == 0 ?
				      RENAME_EXCHANGE : 0);
			break;
		case 4:
			if (x->op->link(x->fs, &x->ctx, mfx_lookup(x, d, a), d2, b, &e) == 0)
				x->op->forget(x->fs, e.ino, 1);
			break;
		case 5:
			if (x->op->mkdir(x->fs, &x->ctx, d, a, 0755, &e) == 0)
				x->op->forget(x->fs, e.ino, 1);
			break;
		case 6:
			x->op->rmdir(x->fs, &x->ctx, d, a);
			break;
		case 7:
			if (x->op->opendir(x->fs, &x->ctx, d, &h, &how) == 0) {
				l->n = l->taken = 0;
				l->limit = 0;
				if (x->op->readdir(x->fs, &x->ctx, h, 0, true, mfx_collect, l) != 0)
					s->errors++;
				mfx_forget_refs(x, l);
				x->op->releasedir(x->fs, h);
			}
			break;
		default:
			if (x->op->setxattr(x->fs, &x->ctx, d, "user.s", a, 2, 0) != 0)
				s->errors++;
			break;
		}
	}
	free(l);
	return NULL;
}

TEST(mem_concurrent_stress)
{
	struct mfx x;
	struct eddy_entry e;
	struct stress s[4];
	pthread_t th[4];
	int i;

	CHECK(mfx_open(&x, 0, 0) == 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d1", 0755, &e), 0);
	x.op->forget(x.fs, e.ino, 1);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d2", 0755, &e), 0);
	x.op->forget(x.fs, e.ino, 1);
	for (i = 0; i < 4; i++) {
		s[i].x = &x;
		s[i].seed = 4321u + (unsigned)i;
		s[i].ops = 4000;
		s[i].errors = 0;
		CHECK(pthread_create(&th[i], NULL, stress_main, &s[i]) == 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		CHECK_EQ(s[i].errors, 0);
	CHECK_EQ(mfx_report(&x, "open_files"), 0);
	CHECK_EQ(mfx_report(&x, "mem_inodes_unlinked"), 0);  /* all refs returned */
	/* the link counts add up: root 2 + d1 + d2 */
	CHECK_EQ(mfx_stat(&x, EDDY_ROOT_INO).st_nlink, 4);
	mfx_close(&x);
}

TEST(mem_destroy_frees_what_the_kernel_kept)
{
	struct mfx x;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f, *d;
	uint64_t ino;

	CHECK(mfx_open(&x, 0, 0) == 0);
	ino = mfx_file(&x, EDDY_ROOT_INO, "open", "data");
	CHECK_EQ(x.op->open(x.fs, &x.ctx, ino, O_RDWR, &f, &how), 0);
	CHECK_EQ(x.op->write(x.fs, &x.ctx, f, "x", 1, 1 << 24), 1);
	CHECK_EQ(x.op->unlink(x.fs, &x.ctx, EDDY_ROOT_INO, "open"), 0);
	CHECK_EQ(x.op->mkdir(x.fs, &x.ctx, EDDY_ROOT_INO, "d", 0755, &e), 0);
	CHECK_EQ(x.op->opendir(x.fs, &x.ctx, e.ino, &d, &how), 0);
	CHECK_EQ(x.op->setxattr(x.fs, &x.ctx, e.ino, "user.x", "1", 1, 0), 0);
	CHECK_EQ(x.op->symlink(x.fs, &x.ctx, "target", e.ino, "l", &e), 0);
	CHECK_EQ(mfx_report(&x, "open_files"), 2);
	mfx_close(&x);              /* f and d never released, refs never forgotten */
}
