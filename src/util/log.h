/*
** log.h -- the daemon's log: one line per event, timestamped, to one fd.
*/
#ifndef EDDY_LOG_H
#define EDDY_LOG_H

#include <stdarg.h>

enum eddy_log_level { EDDY_LOG_ERROR, EDDY_LOG_WARN, EDDY_LOG_INFO, EDDY_LOG_DEBUG };

struct eddy_log {
	int fd;                    /* -1: discard */
	int level;                 /* highest level written */
	char client[64];
};

void eddy_log_init(struct eddy_log *l, int fd, int level, const char *client);
void eddy_log_write(struct eddy_log *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void eddy_log_vwrite(struct eddy_log *l, int level, const char *fmt, va_list ap);

#endif /* EDDY_LOG_H */
