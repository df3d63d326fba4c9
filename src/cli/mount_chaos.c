/*
** mount_chaos.c -- the chaos options of `eddyfs mount`: ChaosFS's flags and
** environment variables plus eddyfs's own, in the order flag >
** EDDYFS_* > CHAOSFS_* > default (ChaosFS's defaults). Chaos is on when
** --chaos[=PROFILE] or any knob is given (flag or environment). Unlike
** ChaosFS, an unparsable or out-of-range value is refused, never ignored.
*/
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mount_chaos.h"

/* The knob's value: the flag, else EDDYFS_<env>, else CHAOSFS_<env>. */
static const char *pick(const char *flag, const char *env, const char **source)
{
	static const char *const prefixes[] = { "EDDYFS_", "CHAOSFS_" };
	char name[64];
	size_t i;

	if (flag) {
		*source = "flag";
		return flag;
	}
	if (!env)
		return NULL;
	for (i = 0; i < 2; i++) {
		const char *v;

		snprintf(name, sizeof(name), "%s%s", prefixes[i], env);
		v = getenv(name);
		if (v && *v) {
			*source = prefixes[i];
			return v;
		}
	}
	return NULL;
}

static int knob(struct chaos_knobs *k, const char *key, const char *flag, const char *env,
		bool *on)
{
	const char *source = NULL;
	const char *v = pick(flag, env, &source);
	char err[256];

	if (!v)
		return 0;
	*on = true;
	if (chaos_knob_set(k, key, v, err, sizeof(err)) < 0) {
		if (strcmp(source, "flag") == 0)
			cli_error("--%s", err);
		else
			cli_error("%s%s: %s", source, env, err);
		return EXIT_USAGE;
	}
	return 0;
}

/* --fault RULE (repeatable) and EDDYFS_FAULTS (rules separated by ';'). */
static int collect_rules(const struct chaos_flags *f, struct mount_chaos *m, bool *on)
{
	const char *env = getenv("EDDYFS_FAULTS");
	char err[256], *tok, *save = NULL;
	int n = 0, i;

	for (i = 0; i < f->nfaults; i++)
		m->rules[n++] = f->faults[i];
	if (env && *env) {
		if (strlen(env) >= sizeof(m->env_rules)) {
			cli_error("EDDYFS_FAULTS: longer than %zu bytes", sizeof(m->env_rules) - 1);
			return EXIT_USAGE;
		}
		memcpy(m->env_rules, env, strlen(env) + 1);
		for (tok = strtok_r(m->env_rules, ";", &save); tok;
		     tok = strtok_r(NULL, ";", &save)) {
			if (n == 64) {
				cli_error("EDDYFS_FAULTS: more than 64 rules");
				return EXIT_USAGE;
			}
			m->rules[n++] = tok;
		}
	}
	for (i = 0; i < n; i++) {
		if (chaos_rule_check(m->rules[i], err, sizeof(err)) < 0) {
			cli_error("--fault %s: %s", m->rules[i], err);
			return EXIT_USAGE;
		}
	}
	m->rules[n] = NULL;
	if (n) {
		m->opt.rules = m->rules;
		*on = true;
	}
	return 0;
}

int mount_chaos_parse(const struct chaos_flags *f, const char *client_id,
		      struct mount_chaos *m)
{
	const char *profile = f->profile, *source = NULL, *seed, *dlog, *replay;
	struct chaos_options *o = &m->opt;
	bool on = f->chaos_flag;
	char err[256];

	memset(m, 0, sizeof(*m));
	chaos_knobs_default(&o->knobs);
	if (!profile) {
		profile = getenv("EDDYFS_CHAOS");
		if (profile && (!*profile || strcmp(profile, "0") == 0))
			profile = NULL;
		else if (profile)
			on = true;
		if (profile && strcmp(profile, "1") == 0)
			profile = "chaosfs";
	}
	if (profile && (strcmp(profile, "nfs") == 0 || strncmp(profile, "nfs:", 4) == 0)) {
		if (chaos_nfs_parse(profile[3] ? profile + 4 : "", &o->nfs, err, sizeof(err)) < 0) {
			cli_error("--chaos=%s: %s", profile, err);
			return EXIT_USAGE;
		}
		/* NFS: names change at once; data is written back at close,
		 * fsync or a lock (or at once with sync); attributes cache
		 * per inode (meta-ttl unused) */
		o->knobs.meta_ttl_ms = 0;
		o->knobs.rename_delay_ms = 0;
		o->knobs.write_delay_ms = o->nfs.sync ? 0 : 86400000L;
	} else if (profile && strcmp(profile, "chaosfs") != 0) {
		cli_error("--chaos=%s: unknown profile (available: chaosfs, nfs[:options])",
			  profile);
		return EXIT_USAGE;
	}
	if (knob(&o->knobs, "meta-ttl", f->meta_ttl, "META_TTL_MS", &on) ||
	    knob(&o->knobs, "write-delay", f->write_delay, "WRITE_DELAY_MS", &on) ||
	    knob(&o->knobs, "rename-delay", f->rename_delay, "RENAME_DELAY_MS", &on) ||
	    knob(&o->knobs, "drop-prob", f->drop_prob, "DROP_PROB", &on) ||
	    knob(&o->knobs, "drop-errno", f->drop_errno, "DROP_ERRNO", &on))
		return EXIT_USAGE;
	if ((seed = pick(f->seed, "SEED", &source))) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(seed, &end, 10);
		if (!*seed || *end || errno || seed[0] == '-' || v > INT64_MAX) {
			cli_error("%s%s: want a whole number, 0-%lld",
				  strcmp(source, "flag") == 0 ? "--seed " : source,
				  strcmp(source, "flag") == 0 ? seed : "SEED", (long long)INT64_MAX);
			return EXIT_USAGE;
		}
		o->seeded = true;
		o->seed = v;
		on = true;
	}
	dlog = f->decision_log ? f->decision_log : getenv("EDDYFS_DECISION_LOG");
	replay = f->replay ? f->replay : getenv("EDDYFS_REPLAY");
	if (dlog) {
		if (*dlog) {
			if (cli_abspath(dlog, m->dlog_abs, sizeof(m->dlog_abs)) < 0) {
				cli_error("--decision-log: path too long");
				return EXIT_USAGE;
			}
			o->decision_log = m->dlog_abs;
			on = true;
		}
	}
	if (replay) {
		if (*replay) {
			if (cli_abspath(replay, m->replay_abs, sizeof(m->replay_abs)) < 0) {
				cli_error("--replay: path too long");
				return EXIT_USAGE;
			}
			if (chaos_replay_check(m->replay_abs, err, sizeof(err)) < 0) {
				cli_error("--replay %s", err);
				return EXIT_USAGE;
			}
			o->replay = m->replay_abs;
			on = true;
		}
	}
	if (collect_rules(f, m, &on) != 0)
		return EXIT_USAGE;
	o->client_id = client_id;
	m->on = on;
	return 0;
}
