/*
** frontend_int.h -- internals of the FUSE frontend, private to src/fuse/.
**
** The frontend only translates: decode a request, build the caller context,
** call the eddy_fs table, encode the reply. Every handler replies exactly
** once on every path. Lookup counts are recorded in the node table before
** an entry reply is sent and rolled back if the reply is dropped.
*/
#ifndef EDDY_FRONTEND_INT_H
#define EDDY_FRONTEND_INT_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdatomic.h>

#include "frontend.h"
#include "node_table.h"

/* FUSE request types counted by ops_count.c (stats keys fuse_req_<type>). */
enum fe_req {
	FE_REQ_LOOKUP,
	FE_REQ_FORGET,
	FE_REQ_FORGET_MULTI,
	FE_REQ_GETATTR,
	FE_REQ_SETATTR,
	FE_REQ_READLINK,
	FE_REQ_MKNOD,
	FE_REQ_MKDIR,
	FE_REQ_UNLINK,
	FE_REQ_RMDIR,
	FE_REQ_SYMLINK,
	FE_REQ_RENAME,
	FE_REQ_LINK,
	FE_REQ_OPEN,
	FE_REQ_READ,
	FE_REQ_WRITE,
	FE_REQ_FLUSH,
	FE_REQ_RELEASE,
	FE_REQ_FSYNC,
	FE_REQ_OPENDIR,
	FE_REQ_READDIR,
	FE_REQ_READDIRPLUS,
	FE_REQ_RELEASEDIR,
	FE_REQ_FSYNCDIR,
	FE_REQ_STATFS,
	FE_REQ_SETXATTR,
	FE_REQ_GETXATTR,
	FE_REQ_LISTXATTR,
	FE_REQ_REMOVEXATTR,
	FE_REQ_CREATE,
	FE_REQ_FALLOCATE,
	FE_REQ_COPY_FILE_RANGE,
	FE_REQ_LSEEK,
	FE_REQ_GETLK,
	FE_REQ_SETLK,
	FE_REQ_FLOCK,
	FE_REQ_POLL,
	FE_REQ_ACCESS,
	FE_REQ_N
};

struct eddy_frontend {
	struct eddy_fs *fs;
	struct fuse_session *se;
	struct node_table nodes;
	struct eddy_log *log;
	const struct eddy_frontend_opts *opt;
	bool privileged;           /* daemon runs as root: pass caller groups */
	bool kernel_permissions;   /* default_permissions: the kernel checks */
	bool no_opendir;           /* OPENDIR answered ENOSYS (STATELESS_DIRS) */
	atomic_long nerrors;
	struct fe_notifier *notifier;  /* NULL: no change news */
	struct fe_waits *waits;        /* NULL: the implementation has no poll */
	struct eddy_events events;     /* what the implementation calls up */
	atomic_bool watching;
	bool locks;                    /* lock requests go to the implementation */
	bool posix_close;              /* FLUSH on every close drops locks */
	atomic_bool writeback;         /* the kernel's writeback cache is on */
	/* requests received, per type: relaxed atomics (only ever added to
	 * and read for stats; no ordering with anything else) */
	atomic_uint_least64_t reqs[FE_REQ_N];
};

static inline struct eddy_frontend *fe_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The change sequence of directory INO (node_table_seq), or 0 when no
** notifier runs: then nothing can race a reply and no lock is taken. */
static inline uint64_t fe_seq(struct eddy_frontend *fe, uint64_t ino)
{
	return fe->notifier ? node_table_seq(&fe->nodes, ino) : 0;
}

static inline struct eddy_file *fe_file(struct fuse_file_info *fi)
{
	return fi ? (struct eddy_file *)(uintptr_t)fi->fh : NULL;
}

/* ops_node.c */
void fe_ctx(fuse_req_t req, struct eddy_ctx *c, bool want_groups);
void fe_reply_entry(fuse_req_t req, const struct eddy_entry *e);
/* After an entry reply for PARENT/NAME computed while the parent's change
** sequence was SEQ: if a change raced it, invalidate the entry again. */
void fe_recheck_entry(struct eddy_frontend *fe, uint64_t parent, const char *name, uint64_t seq);
void fe_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fe_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fe_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fe_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void fe_readlink(fuse_req_t req, fuse_ino_t ino);
void fe_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fe_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fe_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fe_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fe_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fe_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void fe_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fe_statfs(fuse_req_t req, fuse_ino_t ino);
void fe_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void fe_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fe_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fe_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fe_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* ops_file.c */
void fe_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void fe_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fe_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void fe_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fe_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fe_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void fe_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fe_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fe_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void fe_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags);
void fe_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock);
void fe_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
	      int sleep);
void fe_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
void fe_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);

/* notify.c: the notifier (the only caller of fuse_lowlevel_notify_*). */
struct fe_notifier;
struct fe_notifier *fe_notifier_new(struct eddy_frontend *fe);
void fe_notifier_events(struct fe_notifier *n, struct eddy_events *ev);
void fe_notifier_start(struct fe_notifier *n);
void fe_notifier_stop(struct fe_notifier *n);
void fe_notifier_free(struct fe_notifier *n);
void fe_notifier_report(struct fe_notifier *n, eddy_stat_fn fn, void *arg);
void fe_notify_entry(struct eddy_frontend *fe, uint64_t parent, const char *name);
void fe_notify_inode(struct eddy_frontend *fe, uint64_t ino, bool attr_only);

/* wait.c: parked reads and poll handles, woken by events->ready. */
struct fe_waits;
struct fe_waits *fe_waits_new(struct eddy_frontend *fe);
void fe_waits_start(struct fe_waits *ws);
void fe_waits_stop(struct fe_waits *ws);
void fe_waits_free(struct fe_waits *ws);
void fe_waits_report(struct fe_waits *ws, eddy_stat_fn fn, void *arg);
void fe_waits_ready(struct fe_waits *ws, uint64_t ino);
bool fe_waits_read(struct fe_waits *ws, fuse_req_t req, uint64_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fe_waits_poll(struct fe_waits *ws, fuse_req_t req, uint64_t ino, struct fuse_file_info *fi,
		   struct fuse_pollhandle *ph);
void fe_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph);

/* ops_count.c: the handlers above behind per-type request counters (the
** table given to libfuse; session.c adds init), and their report. */
extern const struct fuse_lowlevel_ops fe_counted_ops;
void fe_requests_report(struct eddy_frontend *fe, eddy_stat_fn fn, void *arg);

/* control.c: the control socket (stats now; chaos control later). */
struct fe_control;
struct fe_control *fe_control_start(struct eddy_frontend *fe, const char *sock_path);
void fe_control_stop(struct fe_control *ctl);
void fe_report(struct eddy_frontend *fe, eddy_stat_fn fn, void *arg);

#endif /* EDDY_FRONTEND_INT_H */
