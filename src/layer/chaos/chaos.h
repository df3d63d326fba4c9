/*
** chaos.h -- the chaos layer: makes one client (one mount process) see the
** shared truth the way a ChaosFS or network-filesystem client would, on
** purpose and deterministically (reference/nfs-semantics.md). See chaos.c
** for what it guarantees.
*/
#ifndef EDDY_CHAOS_H
#define EDDY_CHAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../fs.h"

/* The knobs; every delay in milliseconds. */
struct chaos_knobs {
	long meta_ttl_ms;          /* attributes, names, absences, listings */
	long write_delay_ms;       /* data writes and truncates */
	long rename_delay_ms;      /* (accepted; namespace ops are not delayed yet) */
	double drop_prob;          /* per operation, [0, 1] */
	int drop_errno;            /* what a dropped operation fails with */
};

enum { NFS_LOOKUP_ALL, NFS_LOOKUP_POS, NFS_LOOKUP_NONE };

/* The nfs profile's options (nfs(5) names; times in seconds). */
struct chaos_nfs {
	bool on;
	bool ac, cto, sync;
	double acregmin, acregmax, acdirmin, acdirmax;
	int lookupcache;           /* NFS_LOOKUP_* */
	long tsgran_ms;            /* timestamp granularity; 0: exact */
};

/* nfs(5)'s defaults. */
void chaos_nfs_default(struct chaos_nfs *n);

/* Parses the options of --chaos=nfs:OPTS (comma-separated); 0, or -EINVAL
** with a one-line reason in ERR. */
int chaos_nfs_parse(const char *opts, struct chaos_nfs *n, char *err, size_t errlen);

struct chaos_options {
	struct chaos_knobs knobs;
	bool seeded;               /* false: a random seed, logged */
	uint64_t seed;
	const char *client_id;
	const char *decision_log;  /* JSON lines of every decision, or NULL */
	const char *replay;        /* a decision log to repeat, or NULL */
	const char *const *rules;  /* targeted faults, NULL-terminated, or NULL */
	struct chaos_nfs nfs;      /* the nfs profile (nfs.on), else ChaosFS's */
	void (*log)(void *arg, const char *line);    /* the mount's log */
	void *log_arg;
};

/* ChaosFS's defaults (1500, 800, 1200 ms, 0.0, EIO). */
void chaos_knobs_default(struct chaos_knobs *k);

/* Parses "key=value" (meta-ttl, write-delay, rename-delay, drop-prob,
** drop-errno) into K: 0, or -EINVAL with a one-line reason in ERR. */
int chaos_knob_set(struct chaos_knobs *k, const char *key, const char *value, char *err,
		   size_t errlen);

/* An errno by name (EIO, ENOSPC, ...) or number; -1 if unknown. */
int chaos_errno_parse(const char *s);

/* Wraps INNER (taken over: destroying the layer destroys it). On failure
** returns a negative errno with a one-line reason in ERR and leaves INNER
** to the caller. */
int chaos_fs_open(struct eddy_fs *inner, const struct chaos_options *o, struct eddy_fs **out,
		  char *err, size_t errlen);

/* Checks a targeted fault rule (see chaos_rules.c): 0, or -EINVAL with a
** one-line reason in ERR. */
int chaos_rule_check(const char *text, char *err, size_t errlen);

/* Checks a decision log can be replayed: 0, or -EINVAL with a reason. */
int chaos_replay_check(const char *path, char *err, size_t errlen);

#endif /* EDDY_CHAOS_H */
