/*
** log.c -- the daemon's log. Each line is written with a single write() so
** that lines from concurrent threads never interleave:
**   2026-11-22T03:58:10.123Z client INFO message
*/
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void eddy_log_init(struct eddy_log *l, int fd, int level, const char *client)
{
	l->fd = fd;
	l->level = level;
	snprintf(l->client, sizeof(l->client), "%s", client ? client : "client");
}

void eddy_log_vwrite(struct eddy_log *l, int level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	if (!l || l->fd < 0 || level > l->level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000,
		     l->client, level_names[level]);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		n = r < 0 ? n : n + (size_t)r;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(l->fd, line, n) < 0)
		return;
}

void eddy_log_write(struct eddy_log *l, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	eddy_log_vwrite(l, level, fmt, ap);
	va_end(ap);
}
