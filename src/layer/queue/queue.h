/*
** queue.h -- the queue layer: eventfs-style message-queue directories over
** any eddy_fs (reference/queue-semantics.md). See queue.c for what it
** guarantees.
*/
#ifndef EDDY_QUEUE_H
#define EDDY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "../../fs.h"

struct queue_options {
	bool root_queues;          /* --queues: every top-level dir is a queue,
				    * the root holds nothing else */
	const char *config;        /* eventfs-style quota INI file, or NULL */
	bool open_root;            /* make the root 1777 at start (mem:) */
};

/* Wraps INNER (taken over: destroying the layer destroys it). On failure
** returns a negative errno, writes a one-line reason into ERR and leaves
** INNER to the caller. */
int queue_fs_open(struct eddy_fs *inner, const struct queue_options *o, struct eddy_fs **out,
		  char *err, size_t errlen);

/* Reads a quota file without mounting: 0, or -EINVAL with a reason. */
int queue_config_check(const char *path, char *err, size_t errlen);

#endif /* EDDY_QUEUE_H */
