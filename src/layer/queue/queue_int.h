/*
** queue_int.h -- internals of the queue layer, private to src/layer/queue/.
**
** State, all under qfs.lock (one mutex; it is never held across a call into
** the inner filesystem or up through the events):
**   - queues: inner directory inode -> struct queue (the deque of messages
**     in arrival order, a name index, the owner and its pidfd, limits);
**   - synths: inode numbers the layer mints at or above EDDY_LAYER_INO_BASE
**     for head, tail (a fresh one per target, so a cached symlink page is
**     never reused) and each queue's .claim file;
**   - inodes: per message inode, its owner, the bytes charged and how many
**     open files write it (per inode, not per link: quotas);
**   - plain: directories known not to be queues (xattr mode).
** A pop detaches the message under the lock, then unlinks it in the inner
** filesystem without the lock: concurrent pops never pick the same message,
** and a message being claimed is already gone for unlink-by-name (ENOENT).
*/
#ifndef EDDY_QUEUE_INT_H
#define EDDY_QUEUE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "queue.h"

#define Q_HEAD "head"
#define Q_TAIL "tail"
#define Q_CLAIM ".claim"
#define XA_QUEUE "user.eddyfs.queue"
#define XA_OWNER "user.eddyfs.owner"
#define XA_STICKY "user.eddyfs.sticky"
#define XA_STICKY_EVENTFS "user.eventfs_sticky"
#define XA_MAX "user.eddyfs.max_messages"
#define XA_MAX_EVENTFS "user.eventfs_max_files"

struct qmsg {
	uint64_t ino;              /* inner inode of the message */
	char *name;
	struct qmsg *prev, *next;  /* arrival order; prev = older */
	struct qmsg *next_name;    /* name index chain */
	bool detached;             /* being popped or claimed */
};

#define Q_GONE_BATCH 64        /* pops reported up together */

struct qgone {                     /* a popped message not yet reported up */
	uint64_t ino;
	char *name;
};

struct queue {
	uint64_t ino;              /* inner directory inode */
	uint64_t parent;           /* where it lives (for reaping) */
	char *name;
	uid_t uid;                 /* owner: head/tail owner, quotas */
	gid_t gid;
	mode_t mode;
	struct qmsg *first, *last; /* first = oldest = head */
	size_t count;              /* messages in the deque */
	size_t pending;            /* creates admitted, not yet appended */
	struct qmsg **names;       /* name index */
	size_t nbuckets;
	pid_t tgid;                /* creator process; 0: none (persistent) */
	int pidfd;                 /* -1: not watched */
	bool creator_dead;
	bool sticky;
	bool reaping;
	long long max_messages;    /* from xattr; 0: none */
	uint64_t claim_ino;        /* synthetic .claim inode */
	struct qsynth *head_syn, *tail_syn;   /* current head/tail inodes */
	struct qgone *gone;        /* Q_GONE_BATCH slots, allocated at the first pop */
	unsigned ngone;
	struct queue *next_hash;
};

enum qsynth_kind { QS_HEAD, QS_TAIL, QS_CLAIM };

struct qsynth {
	uint64_t ino;
	enum qsynth_kind kind;
	uint64_t qino;             /* its queue (may be gone) */
	uint64_t target_ino;       /* head/tail: the message */
	char *target;              /* head/tail: the message's name */
	uint64_t refs;             /* kernel references */
	bool current;              /* the queue still points at it */
	struct timespec made;      /* its times */
	struct qsynth *next_hash;
};

struct qinode {                    /* a message inode, for quotas/claim */
	uint64_t ino;
	uid_t uid;
	gid_t gid;
	off_t charged;             /* bytes charged to uid/gid */
	unsigned links;            /* queue entries naming it */
	unsigned writers;          /* open for writing */
	uint64_t qino;             /* the queue it arrived in (readiness) */
	bool pinned;               /* holds one inner reference: an inner
				    * inode number stays valid only while
				    * referenced */
	struct qinode *next_hash;
};

struct qusage {                    /* per uid or gid */
	unsigned id;
	bool is_group;
	long long queues, messages, bytes;
	struct qusage *next_hash;
};

struct qlimits {                   /* -1: unlimited */
	long long max_queues, max_messages, max_per_queue, max_bytes;
};

struct qquota_rule {
	unsigned id;
	bool is_group;
	struct qlimits lim;
	struct qquota_rule *next;
};

struct qset {                      /* a set of inode numbers */
	uint64_t *slots;
	size_t cap, len;
};

struct qfs {
	struct eddy_fs base;
	struct eddy_fs *inner;
	struct queue_options opt;
	pthread_mutex_t lock;
	struct queue **queues;
	size_t nqueue_buckets, nqueues;
	struct qsynth **synths;
	size_t nsynth_buckets, nsynths;
	uint64_t next_synth;
	struct qinode **inodes;
	size_t ninode_buckets, ninodes;
	struct qset plain;             /* dirs known not to be queues */
	struct qusage **usage;
	size_t nusage_buckets;
	struct qlimits defaults;
	struct qquota_rule *rules;
	bool have_quotas;
	/* change news: the frontend's, passed through */
	struct eddy_events up;
	atomic_bool have_up;
	struct eddy_fs_ops ops;        /* this instance's table */
	/* the daemon as caller of the inner filesystem, for the hot paths
	 * (pin, claim, pop unlink): set once at open (eddy_ctx_self costs five
	 * system calls); its pid is unused there (no locks taken as self) */
	struct eddy_ctx self;
	/* fate-sharing */
	int epfd;                      /* epoll over creator pidfds */
	int stopfd;                    /* eventfd: stop the reaper */
	pthread_t reaper;
	bool reaper_running;
	/* counters */
	atomic_llong pops, claims, reaps, refused, quota_hits;
};

struct qfile {
	struct eddy_file base;
	struct eddy_file *inner;       /* NULL for .claim */
	bool claim;
	bool writer;                   /* counted in qinode.writers */
	uint64_t qino;                 /* .claim: its queue */
	char *pending;                 /* .claim: message data not yet read */
	size_t pending_len, pending_off;
};

static inline struct qfs *qfs_of(struct eddy_fs *fs)
{
	return (struct qfs *)fs;
}

static inline bool is_synth(uint64_t ino)
{
	return ino >= EDDY_LAYER_INO_BASE;
}

/* queue_state.c (lock held unless said otherwise) */
int qstate_init(struct qfs *q);
void qstate_free(struct qfs *q);
struct queue *queue_find(struct qfs *q, uint64_t ino);
struct queue *queue_add(struct qfs *q, uint64_t ino, uint64_t parent, const char *name);
void queue_remove(struct qfs *q, struct queue *qu);
struct qmsg *queue_msg_find(struct queue *qu, const char *name);
struct qmsg *queue_msg_append(struct queue *qu, uint64_t ino, const char *name);
void queue_msg_detach(struct queue *qu, struct qmsg *m);
void queue_msg_reattach(struct queue *qu, struct qmsg *m, bool front);
void queue_msg_free(struct queue *qu, struct qmsg *m);
struct qsynth *synth_find(struct qfs *q, uint64_t ino);
struct qsynth *synth_new(struct qfs *q, enum qsynth_kind kind, uint64_t qino);
void synth_drop(struct qfs *q, struct qsynth *s);
void synth_forget(struct qfs *q, uint64_t ino, uint64_t n);
struct qinode *qinode_find(struct qfs *q, uint64_t ino);
struct qinode *qinode_get(struct qfs *q, uint64_t ino, uid_t uid, gid_t gid);
void qinode_put_link(struct qfs *q, struct qinode *qi);
bool qset_has(const struct qset *s, uint64_t ino);
int qset_add(struct qset *s, uint64_t ino);
void qset_del(struct qset *s, uint64_t ino);
struct qchild {
	char *name;
	uint64_t ino;
	struct stat st;
};
/* Children of inner directory INO with inode and attributes (no lock);
** each child inode is referenced until qload_children_free. */
int qload_children(struct qfs *q, uint64_t ino, struct qchild **v, size_t *n);
void qload_children_free(struct qfs *q, struct qchild *v, size_t n);
/* Loads the queue at PARENT/NAME (inode INO) from the inner filesystem if it
** is one; lock NOT held. Returns the queue, NULL if INO is no queue. */
struct queue *queue_load(struct qfs *q, uint64_t parent, const char *name, uint64_t ino,
			 int *err);

/* queue_fate.c */
int qfate_start(struct qfs *q);
void qfate_stop(struct qfs *q);
/* Finds the process of thread TID and opens a pidfd on it (no lock);
** OWNER gets "<tgid> <start time>" to store with the queue. */
int qfate_identify(pid_t tid, pid_t *tgid, int *pidfd, char *owner, size_t len);
/* Watches PIDFD (taken over) as QU's creator; lock held. */
void qfate_attach(struct qfs *q, struct queue *qu, pid_t tgid, int pidfd);
/* Rebinds from a stored "tgid starttime"; lock held. False: creator dead. */
bool qfate_rebind(struct qfs *q, struct queue *qu, const char *owner);
/* Removes QU and everything in it (lock NOT held). */
void qfate_reap(struct qfs *q, uint64_t qino);
void qfate_unwatch(struct qfs *q, struct queue *qu);

/* queue_quota.c */
int qquota_load(struct qfs *q, const char *path, char *err, size_t errlen);
void qquota_free(struct qfs *q);
/* Charges queues, messages and bytes to UID and GID (lock held). Unless
** FORCE, a positive delta beyond a limit fails with -EDQUOT and charges
** nothing. Negative deltas always apply. */
int qquota_charge(struct qfs *q, uid_t uid, gid_t gid, long long dqueues, long long dmessages,
		  long long dbytes, bool force);
/* The per-queue message limit of QU (owner's quota, xattr); -1: none. */
long long qquota_per_queue(struct qfs *q, const struct queue *qu);
void qquota_uncharge_inode(struct qfs *q, struct qinode *qi);
void qquota_report(struct qfs *q, eddy_stat_fn fn, void *arg);

/* queue_ns.c */
const struct eddy_fs_ops *qns_fill_ops(struct eddy_fs_ops *ops);
int qns_create(struct qfs *q, const struct eddy_ctx *c, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct eddy_entry *out, struct eddy_file **fp,
	       struct eddy_open *how, bool *writer_counted);
bool qns_arrived(struct qfs *q, uint64_t qino, const char *name, uint64_t ino,
		 const struct stat *st, bool charged, bool writer, bool pinned);
void qns_departed(struct qfs *q, struct queue *qu, struct qmsg *m);
void qns_uncache_name(struct qfs *q, uint64_t parent, struct eddy_entry *e);
/* The current head (HEAD) or tail inode of QU, NULL if empty; lock held. */
struct qsynth *qns_current_end(struct qfs *q, struct queue *qu, bool head);
/* A directory the kernel learnt of: load it if it is a queue (no lock). */
void qns_note_dir(struct qfs *q, uint64_t parent, const char *name, uint64_t ino);
void qns_fill_synth_attr(struct qfs *q, const struct qsynth *s, struct stat *st);
void qns_up_deleted(struct qfs *q, uint64_t parent, const char *name, uint64_t child);
void qns_write_only(struct eddy_open *how);
void qns_up_popped(struct qfs *q, uint64_t qino, const char *name, uint64_t child);
void qns_up_ready(struct qfs *q, uint64_t ino);
int qns_unlink_inner(struct qfs *q, uint64_t parent, const char *name);

/* queue_claim.c */
int qclaim_open(struct qfs *q, struct qsynth *s, int flags, struct eddy_file **fp,
		struct eddy_open *how);
ssize_t qclaim_read(struct qfs *q, struct qfile *f, char *buf, size_t size);
int qclaim_poll(struct qfs *q, struct qfile *f, unsigned *revents);
void qclaim_release(struct qfs *q, struct qfile *f);

#endif /* EDDY_QUEUE_INT_H */
