/*
** cmd_mount.c -- `eddyfs mount`: parse options (flag > environment >
** default), refuse bad requests before touching anything, then serve the
** mount in the foreground or as a background daemon that reports back
** only once the mount answers. The source is a backing directory (the dir
** backend), "mem:[params]" (the mem backend: a RAM filesystem) or
** "sqlite:<volume-dir>" (the volume backend: a volume made by eddyfs format).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "../backend/dir/dir.h"
#include "../backend/mem/mem.h"
#include "../backend/volume/vol.h"
#include "../fuse/frontend.h"
#include "../util/log.h"
#include "../layer/queue/queue.h"
#include "mount_chaos.h"

#define FUSE_SUPER_MAGIC 0x65735546

static const char mount_usage[] =
	"Usage: eddyfs mount [options] <backing-dir> <mountpoint>\n"
	"       eddyfs mount [options] mem:[size=N,inodes=N] <mountpoint>\n"
	"       eddyfs mount [options] sqlite:<volume-dir> <mountpoint>\n"
	"\n"
	"Expose <backing-dir> at <mountpoint> through FUSE, or with mem: a new\n"
	"filesystem that lives in RAM only (gone at unmount). mem: parameters:\n"
	"size=N[K|M|G|T] (data, xattrs and symlinks; default: physical RAM),\n"
	"inodes=N[K|M|G] (default: no limit); past a limit: ENOSPC.\n"
	"With sqlite: the volume made by eddyfs format in <volume-dir>: metadata\n"
	"in its SQLite database, data in its block folder; several mounts of one\n"
	"volume share it, coherently.\n"
	"Data written is durable once close(2) or fsync(2) returned.\n"
	"\n"
	"Options (flag beats environment variable beats default):\n"
	"  --client-id ID   name of this client; names the log file\n"
	"                   [EDDYFS_CLIENT_ID, default: client]\n"
	"  --log-file F     append the log to file F [EDDYFS_LOG_FILE]\n"
	"  --log-dir D      append the log to D/<client-id>.log [EDDYFS_LOG_DIR]\n"
	"  --background     return once the mount answers, leaving the daemon\n"
	"                   running; warns without a log target [EDDYFS_BACKGROUND=1]\n"
	"  --debug          log every FUSE request [EDDYFS_DEBUG=1]\n"
	"  -o OPTS          FUSE mount options, comma-separated: allow_other,\n"
	"                   default_permissions, ro, ... (allow_other implies\n"
	"                   default_permissions; without it a volume checks\n"
	"                   access itself) [EDDYFS_OPTIONS]\n"
	"  --threads N      maximum FUSE worker threads, 1-1024\n"
	"                   [EDDYFS_THREADS, default: 16]\n"
	"  --coherence=M    cache policy [EDDYFS_COHERENCE, default: events]\n"
	"                   events: the kernel caches names, absences, attributes,\n"
	"                     file data and listings for a day; changes made\n"
	"                     elsewhere are invalidated precisely within ms\n"
	"                     (mem: nothing changes elsewhere: day-long caches;\n"
	"                     sqlite: other mounts' changes come through the\n"
	"                     volume's change log)\n"
	"                   ttl:<ms>: fixed cache timeouts, no invalidation\n"
	"                   off: no caching (like bindfs)\n"
	"  --watch=S        how events mode notices changes [EDDYFS_WATCH,\n"
	"                   default: auto = fanotify when privileged, else\n"
	"                   inotify; poll:1000 when the backing dir is on a\n"
	"                   network or FUSE filesystem]\n"
	"                   fanotify: one mark on the whole backing filesystem\n"
	"                     (CAP_SYS_ADMIN; refused if it cannot be set up)\n"
	"                   inotify: a watch per directory the kernel knows\n"
	"                   poll:<ms>: no events, behaves as ttl:<ms>;\n"
	"                   refused with mem: and sqlite:\n"
	"  --locks=L        shared: fcntl/flock locks conflict across mounts and\n"
	"                   with plain processes on the backing files; an owner's\n"
	"                   byte-range locks go when the open file it used is\n"
	"                   closed for the last time (default)\n"
	"                   posix: shared, with the exact POSIX rule (closing any\n"
	"                   descriptor of the file drops them; one more round\n"
	"                   trip per close)\n"
	"                   local: the kernel keeps locks per mount [EDDYFS_LOCKS]\n"
	"                   (mem: always local; sqlite: shared and posix keep\n"
	"                   the locks in the volume, shared by all its mounts)\n"
	"  --writeback-cache  let the kernel buffer writes (faster small writes;\n"
	"                   only for backing dirs nobody else writes)\n"
	"                   [EDDYFS_WRITEBACK_CACHE=1]\n"
	"  --queues[=MODE]  queue directories (eventfs semantics) [EDDYFS_QUEUES]\n"
	"                   root (the default MODE): every top-level directory is\n"
	"                     a message queue that dies with the process that\n"
	"                     created it; the root holds nothing else\n"
	"                   xattr: a directory given the user.eddyfs.queue\n"
	"                     attribute becomes a (persistent) queue\n"
	"  --queue-config F eventfs-style quota file (INI) for queues\n"
	"                   [EDDYFS_QUEUE_CONFIG]\n"	"  --commit-window MS  sqlite: while this mount is the volume's only\n"
	"                   user, its metadata changes commit together, at most\n"
	"                   MS ms apart (fsync, fsyncdir and the close of a\n"
	"                   written file commit at once; a kill -9 loses at most\n"
	"                   the last MS ms of the rest); with other mounts every\n"
	"                   change commits alone. 0-1000, 0: each change alone\n"
	"                   [EDDYFS_COMMIT_WINDOW, default: 5]\n"
	"\n"
	"Chaos (a client that sees the others late, like a network filesystem\n"
	"client; on with --chaos or any knob; environment: EDDYFS_<VAR>, else\n"
	"ChaosFS's CHAOSFS_<VAR>):\n"
	"  --chaos[=PROFILE] profile [EDDYFS_CHAOS]: chaosfs (the default: the\n"
	"                   knobs below), or nfs[:OPTS] — a Linux NFS client,\n"
	"                   OPTS from nfs(5): ac|noac, acregmin=S, acregmax=S,\n"
	"                   acdirmin=S, acdirmax=S, actimeo=S, lookupcache=all|pos|\n"
	"                   none, cto|nocto, sync|async, and tsgran=MS\n"
	"  --meta-ttl MS    serve cached attributes, names, absences and listings\n"
	"                   for MS after fetching them [META_TTL_MS, default: 1500]\n"
	"  --write-delay MS others see this client's writes and truncates MS\n"
	"                   later (at once after fsync) [WRITE_DELAY_MS, 800]\n"
	"  --rename-delay MS accepted; namespace changes are not delayed yet\n"
	"                   [RENAME_DELAY_MS, 1200]\n"
	"  --drop-prob P    fail each droppable operation with probability P\n"
	"                   [DROP_PROB, 0.0]\n"
	"  --drop-errno E   what a dropped operation fails with [DROP_ERRNO, EIO]\n"
	"  --seed N         seed of this client's random source (default: random,\n"
	"                   logged) [SEED]\n"
	"  --decision-log F append every decision to F (JSON lines)\n"
	"                   [EDDYFS_DECISION_LOG]\n"
	"  --replay F       take the drop decisions from decision log F\n"
	"                   [EDDYFS_REPLAY]\n"
	"  --fault RULE     a targeted fault, repeatable [EDDYFS_FAULTS, rules\n"
	"                   separated by ';']: comma-separated key=value of\n"
	"                   op=OP[|OP..] path=GLOB client=ID prob=P after=N\n"
	"                   every=N count=N errno=E|none delay=MS (see README)\n"
	"  -h, --help       show this help\n"
	"\n"
	"Refused with exit status 2, touching nothing: a missing or non-directory\n"
	"backing dir or mountpoint, a non-empty mountpoint, a mountpoint that is\n"
	"already a mount, a backing dir inside the mountpoint or the reverse,\n"
	"bad mem: parameters; with sqlite: a directory that is not a volume, a\n"
	"volume of a newer format, a corrupt database, a volume an exclusive tool\n"
	"(fsck --repair, gc, load) holds.\n"
	"In the foreground, SIGINT and SIGTERM unmount cleanly (exit status 0).\n";

struct mount_args {
	const char *client_id;
	const char *log_file;
	const char *log_dir;
	bool background;
	bool debug;
	const char *fuse_opts;
	long threads;
	const char *coherence;
	const char *watch;
	bool writeback;
	bool local_locks;
	bool posix_locks;
	int queues;                /* 0 none, 1 root, 2 xattr */
	const char *queue_config;
	char queue_config_abs[PATH_MAX];
	struct mount_chaos chaos;
	long commit_window;        /* sqlite: ms; -1: the default */
	bool mem;                  /* source "mem:[params]": the mem backend */
	bool vol;                  /* source "sqlite:<dir>": the volume backend */
	struct mem_options mopt;
	char backing[PATH_MAX];
	char mountpoint[PATH_MAX];
};

static int parse_args(int argc, char **argv, struct mount_args *a)
{
	static const struct option longopts[] = {
		{ "client-id", required_argument, NULL, 'c' },
		{ "log-file", required_argument, NULL, 'f' },
		{ "log-dir", required_argument, NULL, 'l' },
		{ "background", no_argument, NULL, 'b' },
		{ "debug", no_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "coherence", required_argument, NULL, 'C' },
		{ "watch", required_argument, NULL, 'W' },
		{ "writeback-cache", no_argument, NULL, 'B' },
		{ "locks", required_argument, NULL, 'K' },
		{ "queues", optional_argument, NULL, 'Q' },
		{ "queue-config", required_argument, NULL, 'q' },
		{ "chaos", optional_argument, NULL, 'X' },
		{ "meta-ttl", required_argument, NULL, 1001 },
		{ "write-delay", required_argument, NULL, 1002 },
		{ "rename-delay", required_argument, NULL, 1003 },
		{ "drop-prob", required_argument, NULL, 1004 },
		{ "drop-errno", required_argument, NULL, 1005 },
		{ "seed", required_argument, NULL, 1006 },
		{ "decision-log", required_argument, NULL, 1007 },
		{ "replay", required_argument, NULL, 1008 },
		{ "fault", required_argument, NULL, 1009 },
		{ "commit-window", required_argument, NULL, 1010 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *threads = NULL, *f_log = NULL, *f_dir = NULL, *o = NULL, *id = NULL;
	const char *coh = NULL, *watch = NULL, *locks = NULL, *queues = NULL, *qcfg = NULL;
	const char *cwin = NULL;
	bool f_bg = false, f_debug = false, f_wb = false;
	struct chaos_flags cf = { 0 };
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': id = optarg; break;
		case 'f': f_log = optarg; break;
		case 'l': f_dir = optarg; break;
		case 'b': f_bg = true; break;
		case 'd': f_debug = true; break;
		case 't': threads = optarg; break;
		case 'C': coh = optarg; break;
		case 'W': watch = optarg; break;
		case 'B': f_wb = true; break;
		case 'K': locks = optarg; break;
		case 'Q': queues = optarg ? optarg : "root"; break;
		case 'q': qcfg = optarg; break;
		case 'X': cf.chaos_flag = true; cf.profile = optarg; break;
		case 1001: cf.meta_ttl = optarg; break;
		case 1002: cf.write_delay = optarg; break;
		case 1003: cf.rename_delay = optarg; break;
		case 1004: cf.drop_prob = optarg; break;
		case 1005: cf.drop_errno = optarg; break;
		case 1006: cf.seed = optarg; break;
		case 1007: cf.decision_log = optarg; break;
		case 1008: cf.replay = optarg; break;
		case 1010: cwin = optarg; break;
		case 1009:
			if (cf.nfaults == 32) {
				cli_error("--fault given more than 32 times");
				return EXIT_USAGE;
			}
			cf.faults[cf.nfaults++] = optarg;
			break;
		case 'o':
			if (o) {
				cli_error("-o given twice: put all FUSE options in one list");
				return EXIT_USAGE;
			}
			o = optarg;
			break;
		case 'h':
			fputs(mount_usage, stdout);
			return -1;
		case ':':
			cli_error("option %s needs a value (see eddyfs mount --help)", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			cli_error("unknown option %s (see eddyfs mount --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		cli_error("mount needs <backing-dir>|mem:|sqlite:<dir> <mountpoint> "
			  "(see eddyfs mount --help)");
		return EXIT_USAGE;
	}
	if (f_log && f_dir) {
		cli_error("give --log-file or --log-dir, not both");
		return EXIT_USAGE;
	}
	a->client_id = id ? id : getenv("EDDYFS_CLIENT_ID");
	if (!a->client_id || !*a->client_id)
		a->client_id = getenv("CHAOSFS_CLIENT_ID");
	if (!a->client_id || !*a->client_id)
		a->client_id = "client";
	if (strlen(a->client_id) > 64 ||
	    strspn(a->client_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		    strlen(a->client_id) || a->client_id[0] == '.') {
		cli_error("client id '%s': use 1-64 letters, digits, '.', '_' or '-'", a->client_id);
		return EXIT_USAGE;
	}
	if (f_log || f_dir) {
		a->log_file = f_log;
		a->log_dir = f_dir;
	} else {
		a->log_file = getenv("EDDYFS_LOG_FILE");
		a->log_dir = a->log_file && *a->log_file ? NULL : getenv("EDDYFS_LOG_DIR");
		if (a->log_file && !*a->log_file)
			a->log_file = NULL;
		if (a->log_dir && !*a->log_dir)
			a->log_dir = NULL;
	}
	a->background = f_bg;
	if (!f_bg && cli_env_bool("EDDYFS_BACKGROUND", &a->background) < 0)
		return EXIT_USAGE;
	a->debug = f_debug;
	if (!f_debug && cli_env_bool("EDDYFS_DEBUG", &a->debug) < 0)
		return EXIT_USAGE;
	a->fuse_opts = o ? o : getenv("EDDYFS_OPTIONS");
	a->coherence = coh ? coh : getenv("EDDYFS_COHERENCE");
	a->watch = watch ? watch : getenv("EDDYFS_WATCH");
	a->writeback = f_wb;
	if (!locks)
		locks = getenv("EDDYFS_LOCKS");
	if (locks && *locks && strcmp(locks, "shared") && strcmp(locks, "local") &&
	    strcmp(locks, "posix")) {
		cli_error("--locks=%s: use shared, posix or local", locks);
		return EXIT_USAGE;
	}
	a->local_locks = locks && strcmp(locks, "local") == 0;
	a->posix_locks = locks && strcmp(locks, "posix") == 0;
	if (!f_wb && cli_env_bool("EDDYFS_WRITEBACK_CACHE", &a->writeback) < 0)
		return EXIT_USAGE;
	if (!queues)
		queues = getenv("EDDYFS_QUEUES");
	if (queues && *queues && strcmp(queues, "0") != 0) {
		if (strcmp(queues, "root") == 0 || strcmp(queues, "1") == 0) {
			a->queues = 1;
		} else if (strcmp(queues, "xattr") == 0) {
			a->queues = 2;
		} else {
			cli_error("--queues=%s: use root or xattr", queues);
			return EXIT_USAGE;
		}
	}
	a->queue_config = qcfg ? qcfg : getenv("EDDYFS_QUEUE_CONFIG");
	if (a->queue_config && !*a->queue_config)
		a->queue_config = NULL;
	if (a->queue_config && !a->queues) {
		cli_error("--queue-config needs --queues");
		return EXIT_USAGE;
	}
	if (a->queue_config) {
		char err[512];

		if (cli_abspath(a->queue_config, a->queue_config_abs,
				sizeof(a->queue_config_abs)) < 0) {
			cli_error("--queue-config: path too long");
			return EXIT_USAGE;
		}
		a->queue_config = a->queue_config_abs;
		if (queue_config_check(a->queue_config, err, sizeof(err)) < 0) {
			cli_error("queue config: %s", err);
			return EXIT_USAGE;
		}
	}
	if (mount_chaos_parse(&cf, a->client_id, &a->chaos) != 0)
		return EXIT_USAGE;
	if (a->chaos.on && coh) {
		cli_error("--coherence does not apply under chaos: the chaos knobs decide "
			  "what this client caches");
		return EXIT_USAGE;
	}
	if (a->chaos.on && a->queues) {
		cli_error("--chaos and --queues cannot be combined (yet)");
		return EXIT_USAGE;
	}
	if (!threads)
		threads = getenv("EDDYFS_THREADS");
	a->threads = 16;
	if (threads && cli_parse_int("--threads", threads, 1, 1024, &a->threads) < 0)
		return EXIT_USAGE;
	a->commit_window = -1;
	if (cwin && strncmp(argv[optind], "sqlite:", 7) != 0) {
		cli_error("--commit-window applies to sqlite: volumes");
		return EXIT_USAGE;
	}
	if (!cwin && strncmp(argv[optind], "sqlite:", 7) == 0 && (cwin = getenv("EDDYFS_COMMIT_WINDOW")) &&
	    !*cwin)
		cwin = NULL;
	if (cwin && cli_parse_int("--commit-window", cwin, 0, 1000, &a->commit_window) < 0)
		return EXIT_USAGE;
	if (strncmp(argv[optind], "mem:", 4) == 0) {
		char err[256];

		a->mem = true;
		mem_options_default(&a->mopt);
		if (mem_options_parse(argv[optind] + 4, &a->mopt, err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return EXIT_USAGE;
		}
		if (watch) {
			cli_error("--watch applies to a backing directory, not to mem:");
			return EXIT_USAGE;
		}
		snprintf(a->backing, sizeof(a->backing), "mem:");
	} else if (strncmp(argv[optind], "sqlite:", 7) == 0) {
		a->vol = true;
		if (!argv[optind][7]) {
			cli_error("sqlite: needs the volume directory: sqlite:<dir>");
			return EXIT_USAGE;
		}
		if (watch) {
			cli_error("--watch applies to a backing directory, not to sqlite:");
			return EXIT_USAGE;
		}
		if (cli_abspath(argv[optind] + 7, a->backing, sizeof(a->backing)) < 0) {
			cli_error("path too long or current directory unreadable");
			return EXIT_USAGE;
		}
	} else if (cli_abspath(argv[optind], a->backing, sizeof(a->backing)) < 0) {
		cli_error("path too long or current directory unreadable");
		return EXIT_USAGE;
	}
	if (cli_abspath(argv[optind + 1], a->mountpoint, sizeof(a->mountpoint)) < 0) {
		cli_error("path too long or current directory unreadable");
		return EXIT_USAGE;
	}
	return 0;
}

/* A positive whole number of milliseconds after PREFIX in S. */
static int parse_ms(const char *what, const char *s, const char *prefix, double *seconds)
{
	long ms;

	if (strncmp(s, prefix, strlen(prefix)) != 0)
		return -EINVAL;
	if (cli_parse_int(what, s + strlen(prefix), 0, 86400000, &ms) < 0)
		return -EINVAL;
	*seconds = (double)ms / 1000.0;
	return 0;
}

/* Backing filesystems that report no local change events. */
static bool remote_fs(const char *path)
{
	static const unsigned long types[] = {
		0x6969, 0x517B, 0xFF534D42, 0xFE534D42, 0x65735546, 0x01021997,
		0x00c36400, 0x5346414F, 0x73757245, 0x7461636f, 0x01161970, 0x0BD00BD0,
	};
	struct statfs sf;
	size_t i;

	if (statfs(path, &sf) < 0)
		return false;
	for (i = 0; i < sizeof(types) / sizeof(*types); i++)
		if ((unsigned long)sf.f_type == types[i])
			return true;
	return false;
}

enum coherence { COH_EVENTS, COH_TTL, COH_OFF };

/* --coherence: the mode, and for ttl:<ms> the timeout in *T (seconds). */
static int parse_coherence(const struct mount_args *a, enum coherence *mode, double *t)
{
	const char *coh = a->coherence && *a->coherence ? a->coherence : "events";

	*t = 0;
	if (strcmp(coh, "events") == 0) {
		*mode = COH_EVENTS;
	} else if (strcmp(coh, "off") == 0) {
		*mode = COH_OFF;
	} else if (strncmp(coh, "ttl:", 4) == 0) {
		*mode = COH_TTL;
		if (parse_ms("--coherence=ttl:<ms>", coh, "ttl:", t) < 0)
			return EXIT_USAGE;
	} else {
		cli_error("--coherence=%s: use events, ttl:<ms> or off", coh);
		return EXIT_USAGE;
	}
	return 0;
}

/* --coherence and --watch into the backend's cache policy. */
static int cache_policy(const struct mount_args *a, struct dir_options *o, bool *notify)
{
	const char *watch = a->watch && *a->watch ? a->watch : "auto";
	enum coherence mode;
	double t;
	int r;

	*notify = false;
	o->cache_readdir = false;
	o->watch = DIR_WATCH_NONE;
	if ((r = parse_coherence(a, &mode, &t)))
		return r;
	if (mode == COH_OFF) {
		o->entry_timeout = o->attr_timeout = o->negative_timeout = 0;
		o->keep_cache = false;
		return 0;
	}
	if (mode == COH_TTL) {
		o->entry_timeout = o->attr_timeout = o->negative_timeout = t;
		o->keep_cache = true;
		return 0;
	}
	if (strcmp(watch, "auto") == 0 && remote_fs(a->backing))
		watch = "poll:1000";
	if (strncmp(watch, "poll:", 5) == 0) {
		if (parse_ms("--watch=poll:<ms>", watch, "poll:", &t) < 0)
			return EXIT_USAGE;
		o->entry_timeout = o->attr_timeout = o->negative_timeout = t;
		o->keep_cache = true;
		return 0;
	}
	if (strcmp(watch, "auto") != 0 && strcmp(watch, "inotify") != 0 &&
	    strcmp(watch, "fanotify") != 0) {
		cli_error("--watch=%s: use auto, fanotify, inotify or poll:<ms>", watch);
		return EXIT_USAGE;
	}
	if (strcmp(watch, "fanotify") == 0) {
		char why[300];

		if (dir_watch_fanotify_probe(a->backing, why, sizeof(why)) < 0) {
			cli_error("--watch=fanotify: %s", why);
			return EXIT_USAGE;
		}
	}
	o->entry_timeout = o->attr_timeout = o->negative_timeout = 86400;
	o->fallback_timeout = 1.0;
	o->keep_cache = true;
	o->cache_readdir = true;
	o->watch = strcmp(watch, "inotify") == 0 ? DIR_WATCH_INOTIFY :
		   strcmp(watch, "fanotify") == 0 ? DIR_WATCH_FANOTIFY : DIR_WATCH_AUTO;
	*notify = true;
	return 0;
}

/* The cache policy fields of a backend that owns its inodes. */
struct own_cache {
	double *entry, *attr, *negative;
	bool *keep_cache, *cache_readdir;
};

/* --coherence for mem: and sqlite: (nothing changes behind their back, so
** events means day-long caches with nothing to watch). */
static int own_cache_policy(const struct mount_args *a, const struct own_cache *o)
{
	enum coherence mode;
	double t;
	int r;

	if ((r = parse_coherence(a, &mode, &t)) || mode == COH_EVENTS)
		return r;
	*o->entry = *o->attr = *o->negative = t;
	*o->cache_readdir = false;
	if (mode == COH_OFF)
		*o->keep_cache = false;
	return 0;
}

static int mem_cache_policy(const struct mount_args *a, struct mem_options *o)
{
	struct own_cache c = { &o->entry_timeout, &o->attr_timeout, &o->negative_timeout,
			       &o->keep_cache, &o->cache_readdir };

	return own_cache_policy(a, &c);
}

static int vol_cache_policy(const struct mount_args *a, struct vol_options *o)
{
	struct own_cache c = { &o->entry_timeout, &o->attr_timeout, &o->negative_timeout,
			       &o->keep_cache, &o->cache_readdir };

	return own_cache_policy(a, &c);
}

/* Does a volume mount follow the other mounts' news (coherence=events)? */
static bool vol_follows(const struct mount_args *a)
{
	enum coherence mode;
	double t;

	return parse_coherence(a, &mode, &t) == 0 && mode == COH_EVENTS;
}

static int check_dir(const char *what, const char *path, char *real)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			cli_error("%s %s does not exist", what, path);
		else if (errno == ENOTCONN)
			cli_error("%s %s is a dead mount (transport endpoint not connected); "
				  "unmount it first", what, path);
		else
			cli_error("%s %s: %s", what, path, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("%s %s is not a directory", what, path);
		return EXIT_USAGE;
	}
	if (!realpath(path, real)) {
		cli_error("%s %s: %s", what, path, strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

static bool dir_is_empty(const char *path, int *err)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	*err = 0;
	if (!d) {
		*err = errno;
		return false;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* Every refusal of the contract, before anything is touched. */
static int check_request(struct mount_args *a)
{
	char rb[PATH_MAX], rm[PATH_MAX];
	int r, err;

	if (a->mem)
		snprintf(rb, sizeof(rb), "%s", a->backing);
	else if ((r = check_dir(a->vol ? "volume" : "backing directory", a->backing, rb)))
		return r;
	if ((r = check_dir("mountpoint", a->mountpoint, rm)))
		return r;
	if (cli_is_mountpoint(rm)) {
		cli_error("mountpoint %s is already a mount", a->mountpoint);
		return EXIT_USAGE;
	}
	if (!a->mem && strcmp(rb, rm) == 0) {
		cli_error("backing directory and mountpoint are the same directory (%s)", rb);
		return EXIT_USAGE;
	}
	if (!a->mem && cli_path_within(rb, rm)) {
		cli_error("backing directory %s is inside the mountpoint %s", rb, rm);
		return EXIT_USAGE;
	}
	if (!a->mem && cli_path_within(rm, rb)) {
		cli_error("mountpoint %s is inside the backing directory %s", rm, rb);
		return EXIT_USAGE;
	}
	if (!dir_is_empty(rm, &err)) {
		if (err)
			cli_error("mountpoint %s: %s", a->mountpoint, strerror(err));
		else
			cli_error("mountpoint %s is not empty", a->mountpoint);
		return EXIT_USAGE;
	}
	if (a->vol) {
		char why[512];

		if (vol_check(rb, why, sizeof(why)) < 0) {
			cli_error("%s", why);
			return EXIT_USAGE;
		}
	}
	memcpy(a->backing, rb, sizeof(rb));
	memcpy(a->mountpoint, rm, sizeof(rm));
	return 0;
}

static int open_log(const struct mount_args *a)
{
	char path[PATH_MAX];
	int fd;

	if (a->log_file) {
		snprintf(path, sizeof(path), "%s", a->log_file);
	} else if (a->log_dir) {
		if (mkdir(a->log_dir, 0755) < 0 && errno != EEXIST) {
			cli_error("log directory %s: %s", a->log_dir, strerror(errno));
			return -1;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.log", a->log_dir, a->client_id) >=
		    sizeof(path)) {
			cli_error("log path too long");
			return -1;
		}
	} else {
		return a->background ? -2 : dup(2);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		cli_error("log file %s: %s", path, strerror(errno));
	return fd;
}

/* Opening the filesystem failed: say why (log, and the waiting parent or
** the terminal); the daemon's exit status. */
static int open_failed(struct eddy_log *log, int ready_fd, const char *err)
{
	eddy_log_write(log, EDDY_LOG_ERROR, "%s", err);
	if (ready_fd >= 0)
		dprintf(ready_fd, "error: %s\n", err);
	else
		cli_error("%s", err);
	return 1;
}

static void chaos_log_line(void *arg, const char *line)
{
	eddy_log_write(arg, EDDY_LOG_INFO, "%s", line);
}

/* The daemon proper; returns its exit status. */
static int serve(const struct mount_args *a, int log_fd, int ready_fd)
{
	struct eddy_frontend_opts fo = { 0 };
	char fsname[PATH_MAX + 8];
	struct dir_options dopt;
	struct eddy_fs *fs;
	struct eddy_log log;
	struct rlimit rl;
	char err[512];
	int r;

	snprintf(fsname, sizeof(fsname), "sqlite:%s", a->backing);
	eddy_log_init(&log, log_fd, a->debug ? EDDY_LOG_DEBUG : EDDY_LOG_INFO, a->client_id);
	/* The umask of new objects is the caller's, applied by the backend. */
	umask(0);
	/* Request buffers (128 KiB reads, up to 1 MiB writes) come from the
	 * heap and are reused, instead of an mmap and page faults per request. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (a->mem) {
		struct mem_options mopt = a->mopt;

		mem_cache_policy(a, &mopt);
		r = mem_fs_open(&mopt, &fs, err, sizeof(err));
	} else if (a->vol) {
		/* the volume may check access itself when nothing answers
		 * before it and no writeback cache reopens files */
		bool may_check = !a->queues && !a->chaos.on && !a->writeback;
		struct vol_options vopt;

		vol_options_default(&vopt);
		vol_cache_policy(a, &vopt);
		vopt.mountpoint = a->mountpoint;
		if (a->commit_window >= 0)
			vopt.batch_ms = (unsigned)a->commit_window;
		/* The volume checks access itself unless the kernel must (other
		 * users: allow_other) or a layer answers before the volume
		 * sees the call; with the writeback cache the frontend opens
		 * write-only files for reading too. */
		vopt.check_access = may_check && !eddy_fuse_opts_kernel_checks(a->fuse_opts);
		/* A test knob: the volume's own checks for every user of an
		 * allow_other mount. Names are then never cached, so that each
		 * path walk asks the volume (with the walker's ids) again. */
		if (may_check && getenv("EDDYFS_TEST_DAEMON_ACCESS")) {
			vopt.check_access = true;
			vopt.entry_timeout = vopt.negative_timeout = 0;
			fo.daemon_access = true;
		}
		/* other mounts' changes come as news (events: long timeouts) */
		fo.notify = vol_follows(a);
		r = vol_fs_open(a->backing, &vopt, &fs, err, sizeof(err));
	} else {
		dir_options_default(&dopt);
		cache_policy(a, &dopt, &fo.notify);
		if (a->chaos.on) {
			/* The chaos layer is the only cache: the truth below it
			 * is read fresh every time. */
			dopt.entry_timeout = dopt.attr_timeout = dopt.negative_timeout = 0;
			dopt.keep_cache = dopt.cache_readdir = false;
			dopt.watch = DIR_WATCH_NONE;
			fo.notify = false;
		}
		r = dir_fs_open(a->backing, &dopt, &fs, err, sizeof(err));
	}
	if (r < 0)
		return open_failed(&log, ready_fd, err);
	if (a->queues) {
		struct queue_options qo = { .root_queues = a->queues == 1,
					    .config = a->queue_config,
					    .open_root = a->mem && a->queues == 1 };
		struct eddy_fs *qfs;

		if (queue_fs_open(fs, &qo, &qfs, err, sizeof(err)) < 0) {
			fs->ops->destroy(fs);
			return open_failed(&log, ready_fd, err);
		}
		fs = qfs;
		/* Reaped queues and pops reach the kernel through the notifier. */
		fo.notify = true;
	}
	if (a->chaos.on) {
		struct chaos_options co = a->chaos.opt;
		struct eddy_fs *cfs;

		co.log = chaos_log_line;
		co.log_arg = &log;
		if (chaos_fs_open(fs, &co, &cfs, err, sizeof(err)) < 0) {
			fs->ops->destroy(fs);
			return open_failed(&log, ready_fd, err);
		}
		fs = cfs;
	}
	fo.mountpoint = a->mountpoint;
	fo.fsname = a->vol ? fsname : a->backing;
	fo.fuse_opts = a->fuse_opts;
	fo.threads = (int)a->threads;
	fo.debug = a->debug;
	fo.ready_fd = ready_fd;
	fo.log = &log;
	fo.writeback_cache = a->writeback;
	fo.shared_locks = !a->local_locks;
	fo.posix_close = a->posix_locks;
	r = eddy_frontend_run(fs, &fo);
	fs->ops->destroy(fs);
	return r;
}

/* Parent side of --background: wait for "ok" and a live mount. */
static int wait_ready(const struct mount_args *a, pid_t child, int rfd)
{
	char buf[600];
	size_t len = 0;
	struct statfs sf;
	int status;

	while (len < sizeof(buf) - 1) {
		ssize_t n = read(rfd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = 0;
	close(rfd);
	if (strncmp(buf, "ok\n", 3) != 0) {
		buf[strcspn(buf, "\n")] = 0;
		waitpid(child, &status, 0);
		cli_error("mount of %s at %s failed: %s", a->backing, a->mountpoint,
			  len > 7 ? buf + 7 : "the daemon exited early (see the log)");
		return 1;
	}
	/* statfs always reaches the daemon: once it answers, the mount is live.
	 * Under chaos the answer may be a dropped statfs (an error that is not
	 * ENOTCONN): that is an answer too. */
	if (statfs(a->mountpoint, &sf) < 0 ? (errno == ENOTCONN || !a->chaos.on ||
					       !cli_is_mountpoint(a->mountpoint))
					    : sf.f_type != FUSE_SUPER_MAGIC) {
		cli_error("mount at %s does not answer: %s", a->mountpoint, strerror(errno));
		return 1;
	}
	printf("eddyfs: mounted %s at %s (pid %d)\n", a->backing, a->mountpoint, (int)child);
	return 0;
}

static int run_background(const struct mount_args *a, int log_fd)
{
	int p[2], null;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		cli_error("pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_error("fork: %s", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		close(p[1]);
		if (log_fd >= 0)
			close(log_fd);
		return wait_ready(a, pid, p[0]);
	}
	close(p[0]);
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(log_fd >= 0 ? log_fd : null, 2);
		close(null);
	}
	if (chdir("/") < 0)
		_exit(1);
	_exit(serve(a, log_fd, p[1]));
}

int cmd_mount(int argc, char **argv)
{
	struct mount_args a = { 0 };
	int r, log_fd;

	r = parse_args(argc, argv, &a);
	if (r)
		return r < 0 ? 0 : r;
	r = check_request(&a);
	if (r)
		return r;
	if (a.mem) {
		struct mem_options mopt = a.mopt;

		r = mem_cache_policy(&a, &mopt);
		if (r)
			return r;
	} else if (a.vol) {
		struct vol_options vopt;

		vol_options_default(&vopt);
		r = vol_cache_policy(&a, &vopt);
		if (r)
			return r;
	} else {
		struct dir_options dopt;
		bool notify;

		dir_options_default(&dopt);
		r = cache_policy(&a, &dopt, &notify);
		if (r)
			return r;
	}
	{
		struct eddy_frontend_opts fo = { .mountpoint = a.mountpoint, .fsname = a.backing,
						 .fuse_opts = a.fuse_opts, .ready_fd = -1 };

		if (!eddy_frontend_opts_valid(&fo)) {
			cli_error("invalid FUSE option in -o %s", a.fuse_opts ? a.fuse_opts : "");
			return EXIT_USAGE;
		}
	}
	log_fd = open_log(&a);
	if (log_fd == -1)
		return 1;
	if (log_fd == -2)
		cli_warn("--background without --log-file or --log-dir: the daemon's log is "
			 "discarded");
	if (a.background)
		return run_background(&a, log_fd);
	return serve(&a, log_fd, -1);
}
