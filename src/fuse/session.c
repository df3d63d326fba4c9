/*
** session.c -- the FUSE session's life: options, INIT negotiation, mount,
** the multithreaded loop, signals, and a clean shutdown.
**
** Shutdown (libfuse 3.14 cannot wake its MT loop with fuse_session_exit):
** SIGTERM/SIGINT/SIGHUP are blocked in every thread and taken by one signal
** thread with sigwait(); it unmounts the mountpoint (non-lazily, lazily only
** if busy), the kernel ends the connection, the loop returns, and the main
** thread stops the control socket and destroys the session. An external
** umount or fusermount3 -u takes the same path from the kernel side.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "frontend_int.h"
#include "../util/runtime.h"

/* libfuse's log hook takes no context argument: the one mount served by
** this process owns this pointer from mount to unmount. */
static struct eddy_log *libfuse_log;

static void libfuse_log_hook(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	eddy_log_write(libfuse_log, level <= FUSE_LOG_ERR ? EDDY_LOG_ERROR :
				    level <= FUSE_LOG_WARNING ? EDDY_LOG_WARN :
				    level <= FUSE_LOG_INFO ? EDDY_LOG_INFO : EDDY_LOG_DEBUG,
		       "libfuse: %s", line);
}

static void source_key(void *arg, const char *key, long long value)
{
	char *src = arg;

	if (value > 0 && strncmp(key, "change_source_", 14) == 0)
		snprintf(src, 32, "%s", key + 14);
}

/* Change detection started: say which source the backend chose. */
static void log_change_source(struct eddy_frontend *fe)
{
	char src[32] = "";

	atomic_store(&fe->watching, true);
	if (fe->fs->ops->report)
		fe->fs->ops->report(fe->fs, source_key, src);
	if (*src)
		eddy_log_write(fe->log, EDDY_LOG_INFO, "change detection: %s", src);
}

static void fe_init(void *userdata, struct fuse_conn_info *conn)
{
	struct eddy_frontend *fe = userdata;
	unsigned want = FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS |
			FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_DONT_MASK;

	/* DONT_MASK: implementations apply the umask, so that a default ACL of
	 * the parent can override it, as on a local filesystem. POSIX_ACL (the
	 * kernel enforces ACLs; it forces default_permissions, which costs a
	 * GETATTR of the parent after every create/unlink) only when the kernel
	 * checks permissions anyway; otherwise the backing filesystem checks
	 * them, ACLs included, as the daemon's user. */
	if (fe->kernel_permissions)
		want |= FUSE_CAP_POSIX_ACL;
	conn->want |= conn->capable & want;
	/* HANDLE_KILLPRIV stays on: implementations clear setuid/setgid on
	 * write and truncate with the current kernel rules (the kernel's own
	 * FUSE fallback uses an older rule). */
	conn->want |= conn->capable & FUSE_CAP_HANDLE_KILLPRIV;
	/* Always readdirplus: the AUTO heuristic falls back to plain READDIR
	 * when a program lists a whole directory before it stats the entries
	 * (find, ls -l of a large directory), costing one LOOKUP per entry. */
	conn->want &= ~(FUSE_CAP_READDIRPLUS_AUTO |
			FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ |
			FUSE_CAP_EXPORT_SUPPORT);
	/* Locks: the implementation's (shared across mounts) or the kernel's. */
	if (fe->locks)
		conn->want |= conn->capable & (FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	else
		conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (fe->opt->writeback_cache)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* No OPENDIR/RELEASEDIR round trip per opendir(3) when listings need no
	 * handle: git status and find open every directory they walk. */
	if (fe->no_opendir && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT))
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
	else
		fe->no_opendir = false;
	conn->want &= conn->capable;
	atomic_store(&fe->writeback, (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	eddy_log_write(fe->log, EDDY_LOG_INFO, "INIT: protocol 7.%u, want 0x%x, max_write %u",
		       conn->proto_minor, conn->want, conn->max_write);
	/* The connection is up: notifications can flow, changes be watched. */
	fe_waits_start(fe->waits);
	if (fe->notifier) {
		fe_notifier_start(fe->notifier);
		if (fe->fs->ops->watch_start) {
			int r = fe->fs->ops->watch_start(fe->fs, &fe->events);

			if (r < 0)
				eddy_log_write(fe->log, EDDY_LOG_WARN,
					       "change detection unavailable (%s): short timeouts",
					       strerror(-r));
			else
				log_change_source(fe);
		}
	}
}

/* Stops change news: the watcher first (it calls up), then the notifier. */
static void stop_news(struct eddy_frontend *fe)
{
	if (atomic_exchange(&fe->watching, false) && fe->fs->ops->watch_stop)
		fe->fs->ops->watch_stop(fe->fs);
	fe_notifier_stop(fe->notifier);
	fe_waits_stop(fe->waits);
}


/****************************** signals ******************************/

struct sig_thread {
	struct eddy_frontend *fe;
	const char *mountpoint;
	sigset_t set;
	pthread_t thread;
	atomic_bool stop;
};

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR2);        /* wakes the signal thread to stop it */
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void *sig_main(void *arg)
{
	struct sig_thread *st = arg;

	for (;;) {
		bool lazy;
		int sig, r;

		if (sigwait(&st->set, &sig) != 0 || atomic_load(&st->stop))
			break;
		if (sig == SIGUSR2)
			continue;
		eddy_log_write(st->fe->log, EDDY_LOG_INFO, "signal %d: unmounting %s", sig,
			       st->mountpoint);
		stop_news(st->fe);
		r = eddy_unmount(st->mountpoint, true, &lazy);
		if (r < 0)
			eddy_log_write(st->fe->log, EDDY_LOG_ERROR, "unmount %s failed: %s",
				       st->mountpoint, strerror(-r));
		else if (lazy)
			eddy_log_write(st->fe->log, EDDY_LOG_WARN,
				       "mount busy: detached lazily; exiting when the last file closes");
	}
	return NULL;
}

/****************************** readahead ******************************/

/*
** Sequential reads arrive as READ requests no larger than the mount's
** readahead window, which the kernel's bdi default caps at 128 KiB (and
** INIT cannot raise). Root may raise it once the mount exists: 1 MiB (the
** largest request libfuse 3.14 takes) cuts the round trips eightfold. This
** thread waits until the mount answers, then writes the bdi setting.
*/
static void *tune_readahead(void *arg)
{
	struct eddy_frontend *fe = arg;
	char path[96];
	struct stat st;
	FILE *f;

	if (stat(fe->opt->mountpoint, &st) < 0)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "we");
	if (!f)
		return NULL;
	fputs("1024\n", f);
	if (fclose(f) == 0)
		eddy_log_write(fe->log, EDDY_LOG_INFO, "readahead raised to 1 MiB (%s)", path);
	return NULL;
}

/****************************** run ******************************/

/*
** A worker that is reading a request while the kernel tears the connection
** down (the last reference to a lazily detached mount went away, or an
** umount raced with a request) gets ECONNABORTED instead of ENODEV. After an
** unmount that is the normal end of the session; a connection aborted through
** /sys/fs/fuse/connections leaves the mountpoint answering ENOTCONN instead.
*/
static int loop_result(struct eddy_frontend *fe, int r)
{
	struct stat st;

	if (r != -ECONNABORTED)
		return r;
	if (stat(fe->opt->mountpoint, &st) < 0 && errno == ENOTCONN)
		return r;
	eddy_log_write(fe->log, EDDY_LOG_INFO,
		       "connection ended while a request was being read (unmounted)");
	return 0;
}

static void notify_ready(int fd, const char *msg)
{
	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg)) < 0)
		return;
}

static bool has_opt(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p && *p) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

bool eddy_fuse_opts_kernel_checks(const char *fuse_opts)
{
	return fuse_opts &&
	       (has_opt(fuse_opts, "allow_other") || has_opt(fuse_opts, "default_permissions"));
}

static struct fuse_session *new_session(struct eddy_frontend *fe, const struct eddy_frontend_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_lowlevel_ops ops;
	char *mine = NULL, *fsname = NULL;

	if (asprintf(&fsname, "fsname=%s", o->fsname) < 0)
		return NULL;
	if (fuse_opt_add_arg(&args, "eddyfs") < 0 || fuse_opt_add_opt_escaped(&mine, fsname) < 0 ||
	    fuse_opt_add_opt(&mine, "subtype=eddyfs") < 0)
		goto out;
	/* With allow_other the kernel must check permissions, as on a local
	 * filesystem: the daemon itself may act as root. An implementation
	 * that checks no rights at all always needs the kernel to. */
	if (((o->fuse_opts && has_opt(o->fuse_opts, "allow_other") && !o->daemon_access) ||
	     (fe->fs && (fe->fs->flags & EDDY_FS_KERNEL_PERMISSIONS))) &&
	    !(o->fuse_opts && has_opt(o->fuse_opts, "default_permissions")) &&
	    fuse_opt_add_opt(&mine, "default_permissions") < 0)
		goto out;
	if (fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, mine) < 0)
		goto out;
	if (o->fuse_opts && *o->fuse_opts &&
	    (fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, o->fuse_opts) < 0))
		goto out;
	if (o->debug && fuse_opt_add_arg(&args, "-d") < 0)
		goto out;
	ops = fe_counted_ops;
	ops.init = fe_init;
	se = fuse_session_new(&args, &ops, sizeof(ops), fe);
out:
	fuse_opt_free_args(&args);
	free(mine);
	free(fsname);
	return se;
}

static void capture_log_hook(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
}

bool eddy_frontend_opts_valid(const struct eddy_frontend_opts *o)
{
	struct eddy_frontend fe = { .opt = o };
	struct fuse_session *se;

	fuse_set_log_func(capture_log_hook);
	se = new_session(&fe, o);
	if (se)
		fuse_session_destroy(se);
	return se != NULL;
}

int eddy_frontend_run(struct eddy_fs *fs, const struct eddy_frontend_opts *o)
{
	struct eddy_frontend fe = { .fs = fs, .log = o->log, .opt = o };
	struct sig_thread sig = { .fe = &fe, .mountpoint = o->mountpoint };
	struct eddy_runtime_paths rt;
	struct fuse_loop_config *cfg;
	struct fe_control *ctl = NULL;
	pthread_t ra_thread;
	bool have_rt, have_ra = false;
	int r;

	fe.privileged = geteuid() == 0;
	fe.locks = o->shared_locks && fs->ops->setlk && fs->ops->getlk && fs->ops->flock &&
		   fs->ops->flush_owner;
	fe.posix_close = o->posix_close;
	fe.kernel_permissions = (fs->flags & EDDY_FS_KERNEL_PERMISSIONS) ||
				(o->fuse_opts && ((has_opt(o->fuse_opts, "allow_other") &&
						   !o->daemon_access) ||
						  has_opt(o->fuse_opts, "default_permissions")));
	/* opendir is where a backend that checks permissions itself refuses an
	 * unreadable directory: skip it only when the kernel checks them. */
	fe.no_opendir = (fs->flags & EDDY_FS_STATELESS_DIRS) && fe.kernel_permissions;
	if (node_table_init(&fe.nodes) < 0) {
		notify_ready(o->ready_fd, "error: out of memory\n");
		return 1;
	}
	if (fs->ops->poll && !(fe.waits = fe_waits_new(&fe))) {
		notify_ready(o->ready_fd, "error: out of memory\n");
		node_table_free(&fe.nodes);
		return 1;
	}
	if (o->notify) {
		fe.notifier = fe_notifier_new(&fe);
		if (fe.notifier)
			fe_notifier_events(fe.notifier, &fe.events);
	}
	libfuse_log = o->log;
	fuse_set_log_func(libfuse_log_hook);
	block_signals(&sig.set);

	fe.se = new_session(&fe, o);
	if (!fe.se) {
		notify_ready(o->ready_fd, "error: invalid FUSE options (see the log)\n");
		fe_notifier_free(fe.notifier);
	fe_waits_free(fe.waits);
		node_table_free(&fe.nodes);
		return 1;
	}
	if (fuse_session_mount(fe.se, o->mountpoint) != 0) {
		notify_ready(o->ready_fd, "error: mounting failed (see the log)\n");
		fuse_session_destroy(fe.se);
		fe_notifier_free(fe.notifier);
	fe_waits_free(fe.waits);
		node_table_free(&fe.nodes);
		return 1;
	}
	eddy_log_write(fe.log, EDDY_LOG_INFO, "mounted %s at %s (pid %d, %d threads)", o->fsname,
		       o->mountpoint, (int)getpid(), o->threads);

	have_rt = eddy_runtime_paths(o->mountpoint, &rt, true) == 0;
	if (have_rt) {
		if (eddy_runtime_write_pid(&rt, o->mountpoint) < 0)
			eddy_log_write(fe.log, EDDY_LOG_WARN, "cannot write %s", rt.pidfile);
		ctl = fe_control_start(&fe, rt.sock);
	} else {
		eddy_log_write(fe.log, EDDY_LOG_WARN, "no runtime dir: stats unavailable");
	}
	if (pthread_create(&sig.thread, NULL, sig_main, &sig) != 0) {
		eddy_log_write(fe.log, EDDY_LOG_ERROR, "cannot start the signal thread");
		sig.thread = 0;
	}
	notify_ready(o->ready_fd, "ok\n");
	if (fe.privileged && pthread_create(&ra_thread, NULL, tune_readahead, &fe) == 0)
		have_ra = true;

	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)o->threads);
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	r = loop_result(&fe, fuse_session_loop_mt(fe.se, cfg));
	fuse_loop_cfg_destroy(cfg);
	eddy_log_write(fe.log, r == 0 ? EDDY_LOG_INFO : EDDY_LOG_ERROR,
		       "session loop ended (%d); shutting down", r);

	if (have_ra)
		pthread_join(ra_thread, NULL);
	if (sig.thread) {
		atomic_store(&sig.stop, true);
		pthread_kill(sig.thread, SIGUSR2);
		pthread_join(sig.thread, NULL);
	}
	stop_news(&fe);
	fe_control_stop(ctl);
	if (have_rt)
		unlink(rt.pidfile);
	fuse_session_unmount(fe.se);
	fuse_session_destroy(fe.se);
	fe_notifier_free(fe.notifier);
	fe_waits_free(fe.waits);
	node_table_free(&fe.nodes);
	eddy_log_write(fe.log, EDDY_LOG_INFO, "unmounted %s", o->mountpoint);
	libfuse_log = NULL;
	return r == 0 ? 0 : 1;
}
