/*
** mount_chaos.h -- the chaos options of `eddyfs mount` (mount_chaos.c).
*/
#ifndef EDDY_MOUNT_CHAOS_H
#define EDDY_MOUNT_CHAOS_H

#include <limits.h>
#include <stdbool.h>

#include "../layer/chaos/chaos.h"

/* The flags as given (NULL: not given). */
struct chaos_flags {
	bool chaos_flag;           /* --chaos given */
	const char *profile;       /* --chaos=PROFILE */
	const char *meta_ttl, *write_delay, *rename_delay, *drop_prob, *drop_errno;
	const char *seed, *decision_log, *replay;
	const char *faults[33];    /* --fault RULE, repeatable */
	int nfaults;
};

struct mount_chaos {
	bool on;
	struct chaos_options opt;
	char dlog_abs[PATH_MAX];
	char replay_abs[PATH_MAX];
	const char *rules[65];     /* --fault rules, then EDDYFS_FAULTS ones */
	char env_rules[4096];      /* the copy EDDYFS_FAULTS is split in */
};

/* Flags > EDDYFS_* > CHAOSFS_* > ChaosFS's defaults; refuses bad values
** with a one-line error. Returns 0 or EXIT_USAGE. */
int mount_chaos_parse(const struct chaos_flags *f, const char *client_id,
		      struct mount_chaos *m);

#endif /* EDDY_MOUNT_CHAOS_H */
