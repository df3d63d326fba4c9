/*
** control.c -- the running mount's control socket (a Unix stream socket in
** the runtime dir, mode 0600). One request per connection, one line in,
** "key value" lines out, then the connection closes:
**   stats    counters of the frontend and of the filesystem implementation
**   other    handed to the implementation's control op (chaos set/show/
**            clear); a refusal is one "error: <reason>" line
** The CLI's `eddyfs stats --mount P` is its client. One thread, signals
** blocked, stopped by shutdown() of the listening socket.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "frontend_int.h"

struct fe_control {
	struct eddy_frontend *fe;
	int fd;
	pthread_t thread;
	char path[108];
};

struct report_buf {
	char *p;
	size_t len, cap;
};

static void report_line(void *arg, const char *key, long long value)
{
	struct report_buf *b = arg;
	int n;

	if (b->cap - b->len < 128 + strlen(key)) {
		size_t cap = b->cap * 2 + 1024 + strlen(key);
		char *p = realloc(b->p, cap);

		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
	/* a key starting with '#' is a comment line (text, no value) */
	if (key[0] == '#')
		n = snprintf(b->p + b->len, b->cap - b->len, "%s\n", key);
	else
		n = snprintf(b->p + b->len, b->cap - b->len, "%s %lld\n", key, value);
	if (n > 0)
		b->len += (size_t)n;
}

void fe_report(struct eddy_frontend *fe, eddy_stat_fn fn, void *arg)
{
	size_t known;
	uint64_t total, refs, forgets;

	node_table_counts(&fe->nodes, &known, &total, &refs, &forgets);
	fn(arg, "pid", (long long)getpid());
	fn(arg, "known_inodes", (long long)known);
	fn(arg, "nlookup_total", (long long)total);
	fn(arg, "lookups_counted", (long long)refs);
	fn(arg, "lookups_forgotten", (long long)forgets);
	fn(arg, "requests_failed", atomic_load(&fe->nerrors));
	fe_requests_report(fe, fn, arg);
	fe_notifier_report(fe->notifier, fn, arg);
	fe_waits_report(fe->waits, fn, arg);
	if (fe->fs->ops->report)
		fe->fs->ops->report(fe->fs, fn, arg);
}

static void serve(struct fe_control *ctl, int cfd)
{
	struct report_buf b = { 0 };
	char cmd[1024];
	ssize_t n;
	size_t off = 0;

	n = read(cfd, cmd, sizeof(cmd) - 1);
	if (n <= 0)
		return;
	cmd[n] = 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
	if (strcmp(cmd, "stats") == 0) {
		fe_report(ctl->fe, report_line, &b);
	} else {
		struct eddy_fs *fs = ctl->fe->fs;
		char err[256] = "";
		int r = fs->ops->control ? fs->ops->control(fs, cmd, report_line, &b, err,
							    sizeof(err))
					 : -ENOSYS;

		if (r == -ENOSYS)
			snprintf(err, sizeof(err), "this mount does not know '%.100s'", cmd);
		if (r < 0) {
			char line[300];

			free(b.p);
			n = snprintf(line, sizeof(line), "error: %.256s\n",
				     err[0] ? err : strerror(-r));
			if (n > 0 && write(cfd, line, (size_t)n) < 0)
				return;
			return;
		}
	}
	while (b.p && off < b.len) {
		n = write(cfd, b.p + off, b.len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(b.p);
}

static void *control_main(void *arg)
{
	struct fe_control *ctl = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int cfd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;          /* EINVAL after shutdown(): stop */
		}
		serve(ctl, cfd);
		close(cfd);
	}
	return NULL;
}

struct fe_control *fe_control_start(struct eddy_frontend *fe, const char *sock_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fe_control *ctl;

	if (!sock_path || !*sock_path || strlen(sock_path) >= sizeof(sa.sun_path))
		return NULL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->fe = fe;
	snprintf(ctl->path, sizeof(ctl->path), "%s", sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(sock_path);
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sock_path, 0600) < 0 || listen(ctl->fd, 16) < 0) {
		eddy_log_write(fe->log, EDDY_LOG_WARN, "control socket %s: %s", sock_path,
			       strerror(errno));
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		return NULL;
	}
	if (pthread_create(&ctl->thread, NULL, control_main, ctl) != 0) {
		close(ctl->fd);
		unlink(sock_path);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void fe_control_stop(struct fe_control *ctl)
{
	if (!ctl)
		return;
	shutdown(ctl->fd, SHUT_RDWR);
	pthread_join(ctl->thread, NULL);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}
