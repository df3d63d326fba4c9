/*
** test_dir_backend.c -- the dir backend driven through struct eddy_fs_ops,
** without FUSE: lookup accounting, the bounded fd cache and re-resolution,
** nameless (unlinked, replaced) nodes, rename flags, readdir cookies,
** confinement against a directory swapped for a symlink, xattrs, and a
** multithreaded stress run (meant for the ASan and TSan builds).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "unit.h"
#include "backend/dir/dir.h"

struct fixture {
	char root[256];
	char backing[300];
	char outside[300];
	struct eddy_fs *fs;
	struct eddy_ctx ctx;
};

static int fixture_open(struct fixture *fx, size_t fd_cache)
{
	struct dir_options o;
	char err[256];

	snprintf(fx->root, sizeof(fx->root), "/tmp/eddy-unit-XXXXXX");
	if (!mkdtemp(fx->root))
		return -1;
	snprintf(fx->backing, sizeof(fx->backing), "%s/b", fx->root);
	snprintf(fx->outside, sizeof(fx->outside), "%s/outside", fx->root);
	mkdir(fx->backing, 0755);
	mkdir(fx->outside, 0755);
	dir_options_default(&o);
	o.fd_cache = fd_cache;
	eddy_ctx_self(&fx->ctx);
	return dir_fs_open(fx->backing, &o, &fx->fs, err, sizeof(err));
}

static void rm_tree(const char *path)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

static void fixture_close(struct fixture *fx)
{
	if (fx->fs)
		fx->fs->ops->destroy(fx->fs);
	rm_tree(fx->root);
}

struct stat_pick {
	const char *key;
	long long value;
};

static void pick(void *arg, const char *key, long long value)
{
	struct stat_pick *p = arg;

	if (strcmp(p->key, key) == 0)
		p->value = value;
}

static long long report(struct eddy_fs *fs, const char *key)
{
	struct stat_pick p = { key, -1 };

	fs->ops->report(fs, pick, &p);
	return p.value;
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* Creates a file NAME with CONTENT in PARENT; returns its ino (1 ref). */
static uint64_t make_file(struct fixture *fx, uint64_t parent, const char *name,
			  const char *content)
{
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	const struct eddy_fs_ops *op = fx->fs->ops;

	if (op->create(fx->fs, &fx->ctx, parent, name, 0644, O_RDWR | O_CREAT, &e, &f, &how))
		return 0;
	if (content)
		op->write(fx->fs, &fx->ctx, f, content, strlen(content), 0);
	op->release(fx->fs, f);
	return e.ino;
}

static long long size_of(struct fixture *fx, uint64_t ino)
{
	struct stat st;
	double t;
	int r = fx->fs->ops->getattr(fx->fs, &fx->ctx, ino, NULL, &st, &t);

	return r ? r : (long long)st.st_size;
}

TEST(lookup_create_read_write)
{
	struct fixture fx;
	struct eddy_entry e;
	struct eddy_open how;
	struct eddy_file *f;
	char buf[64];
	uint64_t ino;

	CHECK(fixture_open(&fx, 0) == 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "missing", &e), 0);
	CHECK_EQ(e.ino, 0);                       /* cacheable absence */
	CHECK(e.entry_timeout > 0);
	ino = make_file(&fx, EDDY_ROOT_INO, "f", "hello world");
	CHECK(ino > EDDY_ROOT_INO);
	CHECK_EQ(size_of(&fx, ino), 11);
	CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "f", &e), 0);
	CHECK_EQ(e.ino, ino);                     /* same object, same ino */
	CHECK_EQ(op->open(fx.fs, &fx.ctx, ino, O_RDONLY, &f, &how), 0);
	CHECK_EQ(op->read(fx.fs, f, buf, sizeof(buf), 6), 5);
	CHECK(memcmp(buf, "world", 5) == 0);
	op->release(fx.fs, f);
	CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "..", &e), -EINVAL);
	memset(buf, 'a', sizeof(buf));
	{
		char longname[300];

		memset(longname, 'n', 256);
		longname[256] = 0;
		CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, longname, &e), -ENAMETOOLONG);
		longname[255] = 0;
		CHECK(make_file(&fx, EDDY_ROOT_INO, longname, "x") != 0);
	}
	op->forget(fx.fs, ino, 2);
	fixture_close(&fx);
}

TEST(forget_frees_nodes)
{
	struct fixture fx;
	uint64_t inos[50];
	int i;

	CHECK(fixture_open(&fx, 0) == 0);
	for (i = 0; i < 50; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		inos[i] = make_file(&fx, EDDY_ROOT_INO, name, NULL);
		CHECK(inos[i] != 0);
	}
	CHECK_EQ(report(fx.fs, "backend_nodes"), 51);
	for (i = 0; i < 50; i++)
		fx.fs->ops->forget(fx.fs, inos[i], 1);
	CHECK_EQ(report(fx.fs, "backend_nodes"), 1);
	CHECK_EQ(report(fx.fs, "cached_fds"), 0);
	fixture_close(&fx);
}

TEST(fd_cache_is_bounded)
{
	struct fixture fx;
	uint64_t ino[600];
	int i, before;

	CHECK(fixture_open(&fx, 16) == 0);
	before = count_open_fds();
	for (i = 0; i < 600; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		ino[i] = make_file(&fx, EDDY_ROOT_INO, name, name);
		CHECK(ino[i] != 0);
	}
	for (i = 0; i < 600; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		CHECK_EQ(size_of(&fx, ino[i]), (long long)strlen(name));
	}
	CHECK(report(fx.fs, "cached_fds") <= 16);
	CHECK(count_open_fds() - before <= 17);
	CHECK(report(fx.fs, "fd_resolves") >= 600);
	for (i = 0; i < 600; i++)
		fx.fs->ops->forget(fx.fs, ino[i], 1);
	fixture_close(&fx);
}

TEST(rename_keeps_node_reachable)
{
	struct fixture fx;
	struct eddy_entry a, b;
	uint64_t f;

	CHECK(fixture_open(&fx, 1) == 0);   /* every access re-resolves */
	const struct eddy_fs_ops *op = fx.fs->ops;
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, EDDY_ROOT_INO, "a", 0755, &a), 0);
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, EDDY_ROOT_INO, "b", 0755, &b), 0);
	f = make_file(&fx, a.ino, "f", "12345");
	CHECK(f);
	CHECK_EQ(op->rename(fx.fs, &fx.ctx, a.ino, "f", b.ino, "g", 0), 0);
	CHECK_EQ(size_of(&fx, f), 5);
	/* a directory move keeps its children reachable */
	CHECK_EQ(op->rename(fx.fs, &fx.ctx, EDDY_ROOT_INO, "b", a.ino, "b2", 0), 0);
	CHECK_EQ(size_of(&fx, f), 5);
	CHECK_EQ(op->rename(fx.fs, &fx.ctx, a.ino, "b2", EDDY_ROOT_INO, "a", RENAME_NOREPLACE),
		 -EEXIST);
	op->forget(fx.fs, f, 1);
	op->forget(fx.fs, a.ino, 1);
	op->forget(fx.fs, b.ino, 1);
	CHECK_EQ(report(fx.fs, "backend_nodes"), 1);
	fixture_close(&fx);
}

TEST(rename_exchange_swaps_nodes)
{
	struct fixture fx;
	uint64_t x, y;

	CHECK(fixture_open(&fx, 1) == 0);
	x = make_file(&fx, EDDY_ROOT_INO, "x", "xx");
	y = make_file(&fx, EDDY_ROOT_INO, "y", "yyy");
	CHECK_EQ(fx.fs->ops->rename(fx.fs, &fx.ctx, EDDY_ROOT_INO, "x", EDDY_ROOT_INO, "y",
				    RENAME_EXCHANGE), 0);
	CHECK_EQ(size_of(&fx, x), 2);
	CHECK_EQ(size_of(&fx, y), 3);
	{
		struct eddy_entry e;

		CHECK_EQ(fx.fs->ops->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "y", &e), 0);
		CHECK_EQ(e.ino, x);
		fx.fs->ops->forget(fx.fs, e.ino, 1);
	}
	fixture_close(&fx);
}

TEST(unlinked_open_and_replaced_nodes_stay_reachable)
{
	struct fixture fx;
	struct eddy_open how;
	struct eddy_file *f;
	char buf[16];
	uint64_t a, b;

	CHECK(fixture_open(&fx, 1) == 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	a = make_file(&fx, EDDY_ROOT_INO, "a", "aaaa");
	b = make_file(&fx, EDDY_ROOT_INO, "b", "bb");
	CHECK_EQ(op->open(fx.fs, &fx.ctx, a, O_RDWR, &f, &how), 0);
	CHECK_EQ(op->unlink(fx.fs, &fx.ctx, EDDY_ROOT_INO, "a"), 0);
	CHECK_EQ(size_of(&fx, a), 4);            /* nameless, pinned fd */
	CHECK_EQ(report(fx.fs, "pinned_fds"), 2); /* root + a */
	CHECK_EQ(op->read(fx.fs, f, buf, sizeof(buf), 0), 4);
	op->release(fx.fs, f);
	/* rename over b while b is open: b loses its name, stays reachable */
	CHECK_EQ(op->open(fx.fs, &fx.ctx, b, O_RDONLY, &f, &how), 0);
	make_file(&fx, EDDY_ROOT_INO, "c", "ccccccc");
	CHECK_EQ(op->rename(fx.fs, &fx.ctx, EDDY_ROOT_INO, "c", EDDY_ROOT_INO, "b", 0), 0);
	CHECK_EQ(size_of(&fx, b), 2);
	CHECK_EQ(op->read(fx.fs, f, buf, sizeof(buf), 0), 2);
	op->release(fx.fs, f);
	/* rename over d while d is closed and has one link: d is gone */
	{
		uint64_t dd = make_file(&fx, EDDY_ROOT_INO, "d", "dd");

		make_file(&fx, EDDY_ROOT_INO, "e", "e");
		CHECK_EQ(op->rename(fx.fs, &fx.ctx, EDDY_ROOT_INO, "e", EDDY_ROOT_INO, "d", 0), 0);
		CHECK_EQ(size_of(&fx, dd), -ESTALE);
		op->forget(fx.fs, dd, 1);
	}
	op->forget(fx.fs, a, 1);
	op->forget(fx.fs, b, 1);
	CHECK_EQ(report(fx.fs, "pinned_fds"), 1);
	fixture_close(&fx);
}

TEST(hard_link_survives_unlink_of_known_name)
{
	struct fixture fx;
	struct eddy_entry e;
	uint64_t f;

	CHECK(fixture_open(&fx, 1) == 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	f = make_file(&fx, EDDY_ROOT_INO, "one", "abc");
	CHECK_EQ(op->link(fx.fs, &fx.ctx, f, EDDY_ROOT_INO, "two", &e), 0);
	CHECK_EQ(e.ino, f);
	CHECK_EQ(e.attr.st_nlink, 2);
	CHECK_EQ(op->unlink(fx.fs, &fx.ctx, EDDY_ROOT_INO, "two"), 0);
	CHECK_EQ(size_of(&fx, f), 3);
	CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "one", &e), 0);
	CHECK_EQ(e.ino, f);                      /* renamed back to a live name */
	CHECK_EQ(report(fx.fs, "pinned_fds"), 1);
	op->forget(fx.fs, f, 3);
	fixture_close(&fx);
}

struct listing {
	char names[300][32];
	int n;
	int limit;                 /* take at most this many per call */
	int taken;
	struct eddy_fs *fs;
	uint64_t last;
};

static int collect(void *arg, const char *name, const struct stat *st,
		   const struct eddy_entry *e, uint64_t next)
{
	struct listing *l = arg;

	(void)st;
	if (l->taken == l->limit)
		return 1;
	l->taken++;
	snprintf(l->names[l->n++], 32, "%s", name);
	l->last = next;
	if (e && e->ino)
		l->fs->ops->forget(l->fs, e->ino, 1);
	return 0;
}

TEST(readdir_cookies_resume_exactly)
{
	struct fixture fx;
	struct listing *l = calloc(1, sizeof(*l));
	struct eddy_open how;
	struct eddy_file *d;
	int i, j, guard = 0;

	CHECK(l && fixture_open(&fx, 4) == 0);
	for (i = 0; i < 200; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%03d", i);
		fx.fs->ops->forget(fx.fs, make_file(&fx, EDDY_ROOT_INO, name, NULL), 1);
	}
	l->fs = fx.fs;
	CHECK_EQ(fx.fs->ops->opendir(fx.fs, &fx.ctx, EDDY_ROOT_INO, &d, &how), 0);
	do {
		int before = l->n;

		l->taken = 0;
		l->limit = 7;
		CHECK_EQ(fx.fs->ops->readdir(fx.fs, &fx.ctx, d, before ? l->last : 0,
					     guard % 2 == 1, collect, l), 0);
		if (l->n == before)
			break;
	} while (++guard < 100);
	fx.fs->ops->releasedir(fx.fs, d);
	CHECK_EQ(l->n, 202);                     /* 200 + "." + ".." */
	for (i = 0; i < l->n; i++)
		for (j = i + 1; j < l->n; j++)
			CHECK(strcmp(l->names[i], l->names[j]) != 0);
	CHECK_EQ(report(fx.fs, "backend_nodes"), 1);   /* plus refs all returned */
	free(l);
	fixture_close(&fx);
}

TEST(confinement_directory_swapped_for_symlink)
{
	struct fixture fx;
	struct eddy_entry d, e;
	struct eddy_open how;
	struct eddy_file *f;
	char path[700], real[700];
	struct stat st;

	CHECK(fixture_open(&fx, 1) == 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, EDDY_ROOT_INO, "d", 0755, &d), 0);
	CHECK(make_file(&fx, EDDY_ROOT_INO, "other", "o"));   /* evicts d's fd */
	/* outside eddyfs: d becomes a symlink to a directory outside */
	snprintf(path, sizeof(path), "%s/d", fx.backing);
	snprintf(real, sizeof(real), "%s/d.real", fx.backing);
	CHECK(rename(path, real) == 0);
	CHECK(symlink(fx.outside, path) == 0);
	CHECK_EQ(op->create(fx.fs, &fx.ctx, d.ino, "evil", 0644, O_RDWR | O_CREAT, &e, &f, &how),
		 -ESTALE);
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, d.ino, "evildir", 0755, &e), -ESTALE);
	snprintf(path, sizeof(path), "%s/evil", fx.outside);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/evildir", fx.outside);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	/* the symlink itself is an object of the backing tree, not followed */
	CHECK_EQ(op->lookup(fx.fs, &fx.ctx, EDDY_ROOT_INO, "d", &e), 0);
	CHECK(S_ISLNK(e.attr.st_mode));
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, e.ino, "x", 0755, &d), -ENOTDIR);
	CHECK_EQ(op->open(fx.fs, &fx.ctx, e.ino, O_RDONLY, &f, &how), -ELOOP);
	fixture_close(&fx);
}

TEST(xattrs_on_files_and_symlinks)
{
	struct fixture fx;
	struct eddy_entry e;
	char buf[64];
	uint64_t f;

	CHECK(fixture_open(&fx, 0) == 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	f = make_file(&fx, EDDY_ROOT_INO, "f", NULL);
	CHECK_EQ(op->setxattr(fx.fs, &fx.ctx, f, "user.k", "v1", 2, XATTR_CREATE), 0);
	CHECK_EQ(op->setxattr(fx.fs, &fx.ctx, f, "user.k", "v2", 2, XATTR_CREATE), -EEXIST);
	CHECK_EQ(op->getxattr(fx.fs, &fx.ctx, f, "user.k", NULL, 0), 2);
	CHECK_EQ(op->getxattr(fx.fs, &fx.ctx, f, "user.k", buf, 1), -ERANGE);
	CHECK_EQ(op->getxattr(fx.fs, &fx.ctx, f, "user.k", buf, sizeof(buf)), 2);
	CHECK(memcmp(buf, "v1", 2) == 0);
	CHECK(op->listxattr(fx.fs, &fx.ctx, f, buf, sizeof(buf)) >= 7);
	CHECK_EQ(op->removexattr(fx.fs, &fx.ctx, f, "user.k"), 0);
	CHECK_EQ(op->getxattr(fx.fs, &fx.ctx, f, "user.k", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(op->symlink(fx.fs, &fx.ctx, fx.outside, EDDY_ROOT_INO, "l", &e), 0);
	/* user.* xattrs are not allowed on symlinks; the target is untouched */
	CHECK_EQ(op->setxattr(fx.fs, &fx.ctx, e.ino, "user.k", "v", 1, 0), -EPERM);
	CHECK(getxattr(fx.outside, "user.k", buf, sizeof(buf)) < 0);
	{
		ssize_t n = op->readlink(fx.fs, &fx.ctx, e.ino, buf, sizeof(buf));

		CHECK_EQ(n, (long long)strlen(fx.outside));
	}
	fixture_close(&fx);
}

/* Many threads racing namespace operations on a tiny name pool with a
** tiny fd cache; the sanitizer builds catch what goes wrong. */
struct stress {
	struct fixture *fx;
	unsigned seed;
	int ops;
};

static void *stress_main(void *arg)
{
	struct stress *s = arg;
	struct eddy_fs *fs = s->fx->fs;
	const struct eddy_fs_ops *op = fs->ops;
	int i;

	for (i = 0; i < s->ops; i++) {
		char a[8], b[8];
		struct eddy_entry e;
		struct eddy_open how;
		struct eddy_file *f;
		struct stat st;
		double t;
		unsigned r = rand_r(&s->seed);

		snprintf(a, sizeof(a), "n%u", r % 8);
		snprintf(b, sizeof(b), "n%u", (r >> 8) % 8);
		switch ((r >> 16) % 6) {
		case 0:
			if (op->create(fs, &s->fx->ctx, EDDY_ROOT_INO, a, 0644, O_RDWR | O_CREAT,
				       &e, &f, &how) == 0) {
				op->write(fs, &s->fx->ctx, f, "x", 1, 0);
				op->release(fs, f);
				op->forget(fs, e.ino, 1);
			}
			break;
		case 1:
			op->unlink(fs, &s->fx->ctx, EDDY_ROOT_INO, a);
			break;
		case 2:
			op->rename(fs, &s->fx->ctx, EDDY_ROOT_INO, a, EDDY_ROOT_INO, b, 0);
			break;
		case 3:
			if (op->lookup(fs, &s->fx->ctx, EDDY_ROOT_INO, a, &e) == 0 && e.ino) {
				op->getattr(fs, &s->fx->ctx, e.ino, NULL, &st, &t);
				op->forget(fs, e.ino, 1);
			}
			break;
		case 4:
			if (op->mkdir(fs, &s->fx->ctx, EDDY_ROOT_INO, a, 0755, &e) == 0)
				op->forget(fs, e.ino, 1);
			break;
		default:
			op->rmdir(fs, &s->fx->ctx, EDDY_ROOT_INO, a);
			break;
		}
	}
	return NULL;
}

TEST(concurrent_namespace_stress)
{
	struct fixture fx;
	struct stress s[4];
	pthread_t th[4];
	int i;

	CHECK(fixture_open(&fx, 3) == 0);
	for (i = 0; i < 4; i++) {
		s[i].fx = &fx;
		s[i].seed = 1234u + (unsigned)i;
		s[i].ops = 3000;
		pthread_create(&th[i], NULL, stress_main, &s[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(report(fx.fs, "backend_nodes"), 1);
	CHECK_EQ(report(fx.fs, "open_files"), 0);
	fixture_close(&fx);
}

TEST(unlink_of_closed_single_link_file_pins_nothing)
{
	struct fixture fx;
	uint64_t f;
	int before;

	CHECK(fixture_open(&fx, 0) == 0);
	f = make_file(&fx, EDDY_ROOT_INO, "gone", "x");
	before = count_open_fds();
	CHECK_EQ(fx.fs->ops->unlink(fx.fs, &fx.ctx, EDDY_ROOT_INO, "gone"), 0);
	CHECK_EQ(report(fx.fs, "pinned_fds"), 1);           /* only the root */
	CHECK(count_open_fds() <= before);
	CHECK_EQ(size_of(&fx, f), -ESTALE);                  /* dead until forgotten */
	fx.fs->ops->forget(fx.fs, f, 1);
	CHECK_EQ(report(fx.fs, "backend_nodes"), 1);
	fixture_close(&fx);
}

/* Change news through the interface: what the watcher reports for changes
** made directly in the backing directory, and what it suppresses as the
** mount's own. */
struct news {
	pthread_mutex_t lock;
	char log[4096];
};

static void news_add(struct news *n, const char *fmt, unsigned long long a, const char *name)
{
	size_t len;

	pthread_mutex_lock(&n->lock);
	len = strlen(n->log);
	snprintf(n->log + len, sizeof(n->log) - len, fmt, a, name ? name : "");
	pthread_mutex_unlock(&n->lock);
}

static void ev_changed(void *up, uint64_t parent, const char *name)
{
	news_add(up, "changed %llu %s;", parent, name);
}

static void ev_deleted(void *up, uint64_t parent, const char *name, uint64_t child)
{
	(void)child;
	news_add(up, "deleted %llu %s;", parent, name);
}

static void ev_inode(void *up, uint64_t ino, bool attr_only)
{
	news_add(up, attr_only ? "attr %llu%s;" : "data %llu%s;", ino, NULL);
}

static void ev_all(void *up)
{
	news_add(up, "all %llu%s;", 0, NULL);
}

static bool news_has(struct news *n, const char *what)
{
	int i;

	for (i = 0; i < 200; i++) {     /* bounded wait for the event thread */
		bool found;

		pthread_mutex_lock(&n->lock);
		found = strstr(n->log, what) != NULL;
		pthread_mutex_unlock(&n->lock);
		if (found)
			return true;
		usleep(10000);
	}
	return false;
}

static void watch_case(int *unit_failed, enum dir_watch_kind kind)
{
	struct fixture fx;
	struct dir_options o;
	struct news n = { PTHREAD_MUTEX_INITIALIZER, "" };
	struct eddy_events ev = { ev_changed, ev_deleted, ev_inode, ev_all, &n, NULL };
	struct eddy_entry sub;
	char path[400], err[128], want[64];
	uint64_t f;
	int fd;

	snprintf(fx.root, sizeof(fx.root), "/tmp/eddy-unit-XXXXXX");
	CHECK(mkdtemp(fx.root));
	snprintf(fx.backing, sizeof(fx.backing), "%s/b", fx.root);
	mkdir(fx.backing, 0755);
	dir_options_default(&o);
	o.watch = kind;
	eddy_ctx_self(&fx.ctx);
	CHECK_EQ(dir_fs_open(fx.backing, &o, &fx.fs, err, sizeof(err)), 0);
	CHECK_EQ(fx.fs->ops->watch_start(fx.fs, &ev), 0);
	const struct eddy_fs_ops *op = fx.fs->ops;
	/* own changes: no news */
	f = make_file(&fx, EDDY_ROOT_INO, "own", "1");
	CHECK_EQ(op->mkdir(fx.fs, &fx.ctx, EDDY_ROOT_INO, "sub", 0755, &sub), 0);
	/* outside changes: news */
	snprintf(path, sizeof(path), "%s/outside", fx.backing);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK(news_has(&n, "changed 1 outside;"));
	snprintf(path, sizeof(path), "%s/sub/inner", fx.backing);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	close(fd);
	snprintf(want, sizeof(want), "changed %llu inner;", (unsigned long long)sub.ino);
	CHECK(news_has(&n, want));                   /* the new directory is watched */
	snprintf(path, sizeof(path), "%s/own", fx.backing);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	snprintf(want, sizeof(want), "data %llu;", (unsigned long long)f);
	CHECK(news_has(&n, want));                   /* content changed elsewhere */
	CHECK(unlink(path) == 0);
	CHECK(news_has(&n, "deleted 1 own;"));
	pthread_mutex_lock(&n.lock);
	CHECK(strstr(n.log, "changed 1 own;") == NULL);   /* own create suppressed */
	CHECK(strstr(n.log, "changed 1 sub;") == NULL);   /* own mkdir suppressed */
	pthread_mutex_unlock(&n.lock);
	CHECK(report(fx.fs, "change_own_suppressed") >= 2);
	if (kind == DIR_WATCH_FANOTIFY) {
		char other[400];

		/* a file with one known link gains a second one in a directory
		 * the mount never looked at: only fanotify tells (its inode
		 * alone changed: the link count) */
		f = make_file(&fx, EDDY_ROOT_INO, "solo", "1");
		snprintf(path, sizeof(path), "%s/elsewhere", fx.backing);
		CHECK(mkdir(path, 0755) == 0);
		snprintf(path, sizeof(path), "%s/solo", fx.backing);
		snprintf(other, sizeof(other), "%s/elsewhere/second", fx.backing);
		CHECK(link(path, other) == 0);
		snprintf(want, sizeof(want), "attr %llu;", (unsigned long long)f);
		CHECK(news_has(&n, want));
		CHECK_EQ(report(fx.fs, "change_source_fanotify"), 1);
	} else {
		CHECK_EQ(report(fx.fs, "change_source_inotify"), 1);
	}
	op->watch_stop(fx.fs);
	fixture_close(&fx);
}

TEST(watch_inotify_reports_outside_changes_and_suppresses_own)
{
	watch_case(unit_failed, DIR_WATCH_INOTIFY);
}

TEST(watch_fanotify_reports_outside_changes_and_suppresses_own)
{
	char why[300];

	if (dir_watch_fanotify_probe("/tmp", why, sizeof(why)) < 0) {
		printf("  (skipped: %s)\n", why);
		return;
	}
	watch_case(unit_failed, DIR_WATCH_FANOTIFY);
}
