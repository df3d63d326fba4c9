/*
** chaos_int.h -- internals of the chaos layer, private to src/layer/chaos/.
**
** State, keyed by inode number (never by path), all under cfs.lock unless
** said otherwise; cfs.lock is never held across a call into the inner
** filesystem:
**   - cnodes: every inode this client holds for some reason: references
**     the kernel holds through us (kref), inner references we hold (iref,
**     returned with one forget when the cnode goes), cached attributes and
**     listing, open files, and the client's unpublished data changes;
**   - entries: cached lookups (parent, name) -> inode or absence (ino 0),
**     each with its expiry; a positive entry keeps its cnode alive;
**   - the pending FIFO: this client's unpublished changes in the order it
**     made them; the publisher applies them to the inner filesystem when
**     due, never one before an earlier one.
** Lock order: cfs.publish -> cnode.io -> cfs.lock. cnode.io serialises the
** client's view of one inode's data (inner read + pending changes) with
** the publication of a change to it.
*/
#ifndef EDDY_CHAOS_INT_H
#define EDDY_CHAOS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>

#include "chaos.h"

/* One entry of a listing snapshot. */
struct cdent {
	char *name;
	uint64_t ino;
	mode_t type;               /* S_IFMT bits */
};

struct clisting {
	struct cdent *v;
	size_t n;
	unsigned refs;             /* the cache and open handles share it */
};

enum cpend_kind {
	CP_WRITE, CP_TRUNCATE,             /* data: write-delay */
	CP_SETATTR,                        /* attributes: rename-delay */
	CP_LINKIN, CP_LINK, CP_UNLINK, CP_RMDIR, CP_RENAME,   /* names */
};

/* An unpublished change of file data. */
struct cpend {
	enum cpend_kind kind;
	uint64_t ino;
	struct cfile *f;           /* the handle it came through, or NULL */
	off_t off;                 /* write: offset; truncate: new size */
	size_t len;
	char *data;
	double due;                /* monotonic seconds */
	struct timespec made;      /* wall clock: the view's mtime */
	struct eddy_ctx ctx;
	/* namespace changes: (parent, name) [-> (newparent, newname)] */
	uint64_t parent, newparent;
	char *name, *newname;
	unsigned flags;            /* rename flags */
	uint64_t target;           /* the inode the change names (LINKIN, LINK) */
	uint64_t victim;           /* a non-directory losing a link (UNLINK, RENAME) */
	uint64_t stage;            /* LINKIN: its staged name is this number */
	uint64_t exch_ino;         /* RENAME_EXCHANGE: what the old name gets */
	mode_t exch_type;
	struct stat attr_in;       /* SETATTR */
	int attr_mask;
	bool publishing;           /* being applied: never extended again */
	struct cpend *next;        /* the client's FIFO */
	struct cpend *inext;       /* this inode's changes, in order */
};

struct cnode {
	uint64_t ino;
	uint64_t kref;             /* kernel references through this layer */
	uint64_t iref;             /* inner references held */
	unsigned eref;             /* positive cached entries naming it */
	unsigned opens;            /* open layer files */
	unsigned pins;             /* pending namespace changes naming it */
	int nlink_delta;           /* links added (+) or removed (-) by them */
	double ac;                 /* nfs: its attribute timeout now (seconds) */
	double changed_at;         /* nfs: when a change of it was last noticed */
	char *silly_name;          /* nfs: its .nfs name while open-unlinked */
	uint64_t silly_parent;
	struct eddy_ctx silly_ctx;
	uint64_t pparent;          /* the name this client last knew it by, */
	char *pname;               /* for path globs (NULL: unknown) */
	struct stat attr;          /* last known inner attributes */
	bool have_attr;
	double attr_at;            /* monotonic time fetched; CHAOS_STALE: dropped */
	struct clisting *listing;  /* directories: cached inner listing */
	double list_at;
	struct cpend *pfirst, *plast;   /* unpublished changes */
	size_t npend;
	pthread_mutex_t io;
	struct cnode *next_hash;
};

struct centry {
	uint64_t parent;
	char *name;
	uint64_t ino;              /* 0: cached absence */
	double at;                 /* monotonic time fetched */
	struct centry *next_hash;
};

struct cfile {
	struct eddy_file base;
	struct eddy_file *inner;
	int flags;
	unsigned refs;             /* the kernel's handle + pending changes */
	bool released;
	int pub_err;               /* a failed publication, told at flush/fsync */
	bool dir;
	struct clisting *snap;     /* directories: the listing being read */
};

/* This client's view of a name while a change to it is unpublished. */
struct cname {
	uint64_t parent;
	char *name;
	uint64_t ino;              /* 0: removed (a whiteout) */
	mode_t type;
	unsigned changes;          /* pending changes that set it */
	struct cname *next, *prev; /* every overlaid name */
	struct cname *next_hash;   /* by (parent, name) */
};

#define CHAOS_NAME_BUCKETS 4096

/* A targeted fault (chaos_rules.c). */
struct crule {
	unsigned id;
	char *text;
	char *ops;                 /* "a|b|c", NULL: any */
	char *glob;                /* NULL: any path */
	char *client;              /* NULL: any client */
	double prob;
	long after, every, count, delay_ms;
	bool err_given;
	int err;                   /* with err_given; 0: only delay */
	long long matched, fired;
	struct crule *next;
};

struct creplay {
	uint64_t seq;
	char op[24];
	bool drop;
	int err;
};

struct cfs {
	struct eddy_fs base;
	struct eddy_fs_ops ops;
	struct eddy_fs *inner;     /* the truth, through the network (chaos_net.c) */
	char *client;
	pthread_mutex_t lock;
	struct chaos_knobs k;
	struct chaos_nfs nfs;      /* nfs.on: the nfs profile (fixed at mount) */
	unsigned silly_counter;

	struct cnode **nodes;
	size_t nnodes_b, nnodes;
	struct centry **entries;
	size_t nentries_b, nentries;
	size_t inserts_since_sweep;

	/* unpublished changes */
	struct cpend *pfirst, *plast;
	size_t npend;
	size_t pend_bytes;
	pthread_mutex_t publish;
	pthread_cond_t pend_cond;
	pthread_t publisher;
	bool publisher_running;
	bool stopping;

	/* unpublished names; the staging directory of created objects */
	struct cname *names;
	struct cname *name_hash[CHAOS_NAME_BUCKETS];
	pthread_mutex_t stage_lock;
	uint64_t stage_dir;        /* inner inode of .eddyfs-chaos/<client> */
	uint64_t stage_top;        /* inner inode of .eddyfs-chaos */
	uint64_t next_stage;

	/* targeted faults */
	struct crule *rules;
	unsigned next_rule;
	int nrules;                /* read without the lock: atomic */

	/* decisions */
	uint64_t seed;
	uint64_t rng[4];
	uint64_t seq;
	FILE *dlog;
	struct creplay *replay;
	size_t nreplay, replay_pos;
	bool diverged;
	double t0;
	void (*log)(void *arg, const char *line);
	void *log_arg;

	/* counters (under lock) */
	long long n_dropped, n_passed, n_attr_hits, n_entry_hits, n_neg_hits, n_list_hits;
	long long n_delayed, n_published, n_publish_failed, n_divergences, n_lost;
};

/* The knobs change at run time (chaos set): read and written atomically. */
static inline long k_ttl(struct cfs *s)
{
	return __atomic_load_n(&s->k.meta_ttl_ms, __ATOMIC_RELAXED);
}

static inline long k_wdelay(struct cfs *s)
{
	return __atomic_load_n(&s->k.write_delay_ms, __ATOMIC_RELAXED);
}

static inline long k_rdelay(struct cfs *s)
{
	return __atomic_load_n(&s->k.rename_delay_ms, __ATOMIC_RELAXED);
}

static inline int k_drop_errno(struct cfs *s)
{
	return __atomic_load_n(&s->k.drop_errno, __ATOMIC_RELAXED);
}

static inline double k_drop_prob(struct cfs *s)
{
	double p;

	__atomic_load(&s->k.drop_prob, &p, __ATOMIC_RELAXED);
	return p;
}

static inline struct cfs *cfs_of(struct eddy_fs *fs)
{
	return (struct cfs *)fs;
}

double chaos_now(void);

/* Cached things are fresh while fetched + meta-ttl (the knob now in force,
** so that chaos set/clear applies to what is cached too) is in the future. */
#define CHAOS_STALE (-1e18)
bool chaos_fresh(struct cfs *s, double at);

/* chaos_cache.c: the client's caches and inode references */
struct cnode *cnode_find(struct cfs *s, uint64_t ino);
struct cnode *cnode_get(struct cfs *s, uint64_t ino);
uint64_t cnode_release_if_unused(struct cfs *s, struct cnode *n);
void cnode_forget_inner(struct cfs *s, uint64_t ino, uint64_t iref);
void chaos_took_entry(struct cfs *s, uint64_t parent, const char *name,
		      struct eddy_entry *e, bool cache_name);
void chaos_own_change(struct cfs *s, uint64_t parent, const char *name, uint64_t child);
void chaos_entry_absent(struct cfs *s, uint64_t parent, const char *name);
void chaos_attr_drop(struct cfs *s, uint64_t ino);
void chaos_attr_store(struct cfs *s, uint64_t ino, const struct stat *st);
void chaos_forget_name(struct cfs *s, uint64_t parent, const char *name);
uint64_t chaos_peek_child(struct cfs *s, const struct eddy_ctx *c, uint64_t parent,
			  const char *name);
void chaos_listing_put(struct clisting *l);
void chaos_cache_free(struct cfs *s);
int c_lookup(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t parent, const char *name,
	     struct eddy_entry *out);
void c_forget(struct eddy_fs *fs, uint64_t ino, uint64_t nlookup);
int c_getattr(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file *f,
	      struct stat *st, double *attr_timeout);
int c_opendir(struct eddy_fs *fs, const struct eddy_ctx *c, uint64_t ino, struct eddy_file **fp,
	      struct eddy_open *how);
int c_readdir(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *d, uint64_t cookie,
	      bool plus, eddy_fill_fn fill, void *buf);
void c_releasedir(struct eddy_fs *fs, struct eddy_file *d);

/* chaos_data.c: the client's unpublished data and its publisher */
void chaos_view_attr(struct cfs *s, uint64_t ino, struct stat *st);
int chaos_publish_through(struct cfs *s, uint64_t ino);
int chaos_publisher_start(struct cfs *s);
void chaos_publisher_stop(struct cfs *s);
void cfile_put(struct cfs *s, struct cfile *f);
struct cfile *cfile_new(struct eddy_file *inner, uint64_t ino, int flags);
ssize_t c_read(struct eddy_fs *fs, struct eddy_file *f, void *buf, size_t size, off_t off);
ssize_t c_write(struct eddy_fs *fs, const struct eddy_ctx *c, struct eddy_file *f,
		const void *buf, size_t size, off_t off);
int c_truncate_delayed(struct cfs *s, const struct eddy_ctx *c, uint64_t ino, struct cfile *f,
		       off_t size);
int c_flush(struct eddy_fs *fs, struct eddy_file *f);
int c_fsync(struct eddy_fs *fs, struct eddy_file *f, bool datasync);
void c_release(struct eddy_fs *fs, struct eddy_file *f);

/* chaos_ns.c: this client's unpublished namespace and attribute changes */
#define CHAOS_STAGE_TOP ".eddyfs-chaos"
int chaos_view_name(struct cfs *s, uint64_t parent, const char *name, uint64_t *ino,
		    mode_t *type);
int chaos_ns_lookup(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    struct eddy_entry *out);
struct clisting *chaos_view_listing(struct cfs *s, uint64_t dir, struct clisting *l);
void chaos_view_setattr(const struct cnode *n, struct stat *st);
int chaos_ns_create(struct cfs *s, const struct eddy_ctx *c, int kind, uint64_t parent,
		    const char *name, mode_t mode, dev_t rdev, const char *target, int flags,
		    struct eddy_entry *out, struct eddy_file **fp, struct eddy_open *how);
int chaos_ns_link(struct cfs *s, const struct eddy_ctx *c, uint64_t ino, uint64_t parent,
		  const char *name, struct eddy_entry *out);
int chaos_ns_remove(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    bool dir);
int chaos_ns_rename(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname, unsigned flags);
int chaos_ns_setattr(struct cfs *s, const struct eddy_ctx *c, uint64_t ino,
		     const struct stat *in, int mask);
int chaos_ns_apply(struct cfs *s, struct cpend *p);
void chaos_ns_published(struct cfs *s, struct cpend *p, int r);
int chaos_stage_cleanup(struct cfs *s, char *err, size_t errlen);
void chaos_stage_free(struct cfs *s);

/* chaos_data.c, used by chaos_ns.c */
void chaos_enqueue(struct cfs *s, struct cnode *n, struct cpend *p, long delay_ms);
long chaos_lose_unpublished(struct cfs *s, bool torn);
void chaos_stage_remove(struct cfs *s, const struct cpend *p);

/* chaos_rules.c: targeted faults */
int chaos_rule_add(struct cfs *s, const char *text, char *err, size_t errlen);
void chaos_rules_clear(struct cfs *s);
void chaos_rules_report(struct cfs *s, eddy_stat_fn fn, void *arg);
const struct crule *chaos_rule_fire(struct cfs *s, const char *op, uint64_t ino,
				    const char *name, double (*draw)(struct cfs *s));
int chaos_rule_errno(const struct crule *r, const char *op);
void chaos_rule_free(struct crule *r);
void chaos_name_node(struct cfs *s, uint64_t ino, uint64_t parent, const char *name);

/* chaos_net.c: the network to the truth (partitions) */
enum chaos_partition { CHAOS_NET_OK, CHAOS_NET_HARD, CHAOS_NET_SOFT, CHAOS_NET_SOFTERR };
int chaos_net_open(struct eddy_fs *inner, struct eddy_fs **out);
void chaos_net_unwrap(struct eddy_fs *fs);
void chaos_net_set(struct eddy_fs *fs, enum chaos_partition state, long timeo_ms);
void chaos_net_report(struct eddy_fs *fs, eddy_stat_fn fn, void *arg);

/* chaos_nfs.c: the nfs profile */
bool chaos_attr_fresh(struct cfs *s, const struct cnode *c);
void chaos_attr_observed(struct cfs *s, struct cnode *c, const struct stat *st);
bool chaos_nfs_names_valid(struct cfs *s, const struct cnode *dir, double at, bool absent);
void chaos_nfs_revalidate(struct cfs *s, uint64_t dir);
void chaos_nfs_view_times(struct cfs *s, struct stat *st);
int chaos_nfs_silly(struct cfs *s, const struct eddy_ctx *c, uint64_t parent, const char *name,
		    uint64_t ino);
bool chaos_nfs_silly_take(struct cnode *n, uint64_t *parent, char **name, struct eddy_ctx *c);
void chaos_nfs_silly_done(struct cfs *s, uint64_t parent, char *name, const struct eddy_ctx *c);
int chaos_nfs_stale(struct cfs *s, struct cfile *f);
bool chaos_nfs_removed_elsewhere(struct cfs *s, uint64_t ino);

/* Whether this client caches names and attributes at all. */
static inline bool chaos_caches(struct cfs *s)
{
	return s->nfs.on ? (s->nfs.ac || s->nfs.lookupcache != NFS_LOOKUP_NONE) : k_ttl(s) > 0;
}

/* chaos_decide.c: the seeded random source, drops, the decision log */
void chaos_rng_seed(struct cfs *s, uint64_t seed);
int chaos_drop(struct cfs *s, const char *op, uint64_t ino);
int chaos_drop_named(struct cfs *s, const char *op, uint64_t parent, const char *name);
int chaos_fault_only(struct cfs *s, const char *op, uint64_t ino);
uint64_t chaos_random_below(struct cfs *s, uint64_t n);
void chaos_decision(struct cfs *s, const char *op, uint64_t ino, const char *name,
		    const char *decision, double ms);
/* The log's first line: wall clock at t_ms 0, seed (for eddyfs trace). */
void chaos_decision_start(struct cfs *s);
int chaos_replay_load(struct cfs *s, const char *path, char *err, size_t errlen);
void chaos_logf(struct cfs *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* EDDY_CHAOS_INT_H */
