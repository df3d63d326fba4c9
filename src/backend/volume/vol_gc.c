/*
** vol_gc.c -- what the exclusive volume tools share, and `eddyfs gc`:
** opening a volume alone (flock LOCK_EX|LOCK_NB on eddyfs.lock: no mount
** or client has it open), the set of block ids the database references,
** the walk over the block folder, and the collection of block files
** nothing references (blocks a crash left behind, stale NAME.tmp files).
**
** Guarantees:
**   1. gc deletes a block file only while it holds the volume alone and
**      only if no chunk row names its id, read in the same moment (one
**      read transaction); anything it cannot parse as a block name is
**      left alone.
**   2. --dry-run changes nothing.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vol_int.h"

int vol_tool_open(struct vol_tool *t, const char *dir, bool need_alone, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->dir = dir;
	t->blocks_fd = t->lock_fd = -1;
	t->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dir_fd < 0) {
		snprintf(err, errlen, "volume %s: %s", dir, strerror(errno));
		return -errno;
	}
	/* a volume first (nothing made in a directory that is not one) */
	{
		int r = vol_db_open_checked(t->dir_fd, dir, false, &t->db, &t->fo, err, errlen);

		if (r) {
			vol_tool_close(t);
			return r;
		}
	}
	t->lock_fd = openat(t->dir_fd, VOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	t->alone = t->lock_fd >= 0 && flock(t->lock_fd, LOCK_EX | LOCK_NB) == 0;
	if (need_alone && !t->alone) {
		snprintf(err, errlen, "volume %s is in use (mounted, or open in a client or "
			 "another tool): unmount it first", dir);
		vol_tool_close(t);
		return -EBUSY;
	}
	t->blocks_fd = openat(t->dir_fd, VOL_BLOCKS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->blocks_fd < 0) {
		snprintf(err, errlen, "volume %s: %s/: %s", dir, VOL_BLOCKS_DIR, strerror(errno));
		vol_tool_close(t);
		return -EIO;
	}
	return 0;
}

void vol_tool_close(struct vol_tool *t)
{
	if (t->db)
		sqlite3_close(t->db);
	if (t->blocks_fd >= 0)
		close(t->blocks_fd);
	if (t->lock_fd >= 0)
		close(t->lock_fd);       /* drops the flock */
	if (t->dir_fd >= 0)
		close(t->dir_fd);
	free(t->refs);
	memset(t, 0, sizeof(*t));
	t->dir_fd = t->blocks_fd = t->lock_fd = -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int vol_tool_load_refs(struct vol_tool *t)
{
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	free(t->refs);
	t->refs = NULL;
	t->nrefs = 0;
	rc = sqlite3_prepare_v2(t->db, "SELECT block FROM chunks", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (t->nrefs == cap) {
			uint64_t *p = realloc(t->refs, (cap = cap * 2 + 1024) * sizeof(*p));

			if (!p) {
				sqlite3_finalize(s);
				return -ENOMEM;
			}
			t->refs = p;
		}
		t->refs[t->nrefs++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return vol_db_errno(rc);
	if (t->nrefs)
		qsort(t->refs, t->nrefs, sizeof(*t->refs), cmp_u64);
	return 0;
}

bool vol_tool_referenced(const struct vol_tool *t, uint64_t id)
{
	return t->nrefs && bsearch(&id, t->refs, t->nrefs, sizeof(id), cmp_u64) != NULL;
}

/* "0123456789abcdef" or the same with ".tmp": the id; -1 otherwise. */
static int parse_block_name(const char *name, uint64_t *id, bool *tmp)
{
	size_t n = strlen(name), i;

	*tmp = n == 20 && strcmp(name + 16, ".tmp") == 0;
	if (n != 16 && !*tmp)
		return -1;
	*id = 0;
	for (i = 0; i < 16; i++) {
		char c = name[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			     c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;

		if (d == 16)
			return -1;
		*id = *id << 4 | d;
	}
	return 0;
}

int vol_tool_walk_blocks(struct vol_tool *t, vol_block_visit_fn fn, void *arg)
{
	unsigned x;

	for (x = 0; x < 256; x++) {
		char sub[8];
		struct dirent *de;
		struct stat st;
		DIR *d;
		int fd;

		snprintf(sub, sizeof(sub), "%02x", x);
		fd = openat(t->blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;               /* made lazily by format: may be absent */
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -errno;
		}
		while ((de = readdir(d))) {
			char rel[300];
			uint64_t id;
			bool tmp;

			if (de->d_name[0] == '.' || parse_block_name(de->d_name, &id, &tmp) < 0 ||
			    (id & 0xff) != x)
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name);
			fn(arg, rel, id, tmp, st.st_size, st.st_mtime);
		}
		closedir(d);
	}
	return 0;
}

struct gc_walk {
	struct vol_tool *t;
	const struct vol_gc_options *o;
	FILE *out;
	struct vol_gc_report *rep;
};

static void gc_visit(void *arg, const char *rel, uint64_t id, bool tmp, int64_t size,
		     time_t mtime)
{
	struct gc_walk *g = arg;

	(void)mtime;
	if (!tmp && vol_tool_referenced(g->t, id))
		return;
	if (!g->o->dry_run && unlinkat(g->t->blocks_fd, rel, 0) < 0) {
		fprintf(g->out, "cannot remove %s/%s: %s\n", VOL_BLOCKS_DIR, rel, strerror(errno));
		g->rep->failed++;
		return;
	}
	if (g->o->verbose || g->o->dry_run)
		fprintf(g->out, "%s %s/%s (%s, %" PRId64 " bytes)\n",
			g->o->dry_run ? "would remove" : "removed", VOL_BLOCKS_DIR, rel,
			tmp ? "unfinished write" : "unreferenced", size);
	if (tmp)
		g->rep->temps++;
	else
		g->rep->blocks++;
	g->rep->bytes += (uint64_t)size;
}

int vol_tool_collect(struct vol_tool *t, const struct vol_gc_options *o, FILE *out,
		     struct vol_gc_report *rep)
{
	struct gc_walk g = { t, o, out, rep };
	int r = vol_tool_load_refs(t);

	return r ? r : vol_tool_walk_blocks(t, gc_visit, &g);
}

int vol_gc(const char *dir, const struct vol_gc_options *o, FILE *out,
	   struct vol_gc_report *rep, char *err, size_t errlen)
{
	struct vol_tool t;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = vol_tool_open(&t, dir, true, err, errlen);
	if (r)
		return r;
	/* the references and the walk under one read transaction: alone,
	 * nothing can add a reference meanwhile anyway */
	r = vol_sql(t.db, "BEGIN");
	if (r == 0) {
		r = vol_tool_collect(&t, o, out, rep);
		vol_sql(t.db, "COMMIT");
	}
	if (r)
		snprintf(err, errlen, "volume %s: %s", dir, strerror(-r));
	vol_tool_close(&t);
	return r;
}
