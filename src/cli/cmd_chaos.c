/*
** cmd_chaos.c -- `eddyfs chaos show|set|clear --mount P [knob=value ...]`:
** inspect or change the knobs of a running chaos mount over its control
** socket. The command returns once the change is in effect in the daemon.
** Knob values are checked here first, with the same parser the daemon uses.
*/
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "../layer/chaos/chaos.h"

static const char chaos_usage[] =
	"Usage: eddyfs chaos show --mount P\n"
	"       eddyfs chaos set --mount P knob=value [knob=value ...]\n"
	"       eddyfs chaos clear --mount P\n"
	"       eddyfs chaos fault --mount P RULE\n"
	"       eddyfs chaos partition --mount P [hard|soft[=MS]|softerr[=MS]]\n"
	"       eddyfs chaos heal --mount P\n"
	"       eddyfs chaos drop-unsynced --mount P [--torn]\n"
	"       eddyfs chaos crash --mount P [--torn]\n"
	"\n"
	"Inspect or change the chaos knobs of the running mount at P (mounted\n"
	"with --chaos or a chaos knob). set and clear return once the change is\n"
	"in effect; they print the knobs now in force.\n"
	"  show    the knobs and counters (dropped, passed, stale_*_hits,\n"
	"          delayed, published, publish_failed, pending, ...)\n"
	"  set     knobs: meta-ttl=MS write-delay=MS rename-delay=MS\n"
	"          drop-prob=P drop-errno=NAME|N\n"
	"  fault   add a targeted fault rule (the syntax of mount --fault)\n"
	"  clear   all knobs to 0 and no fault rules: the client behaves like a\n"
	"          coherent one (pending changes are published at once)\n"
	"  partition  cut this client off the backing directory: what it\n"
	"          answers from its cache still works; anything else waits\n"
	"          until heal (hard, the default), or fails EIO (soft) or\n"
	"          ETIMEDOUT (softerr) after MS (default 2000); changes wait\n"
	"          too. Heal before unmounting a hard-partitioned client\n"
	"  heal    end the partition\n"
	"  drop-unsynced  lose every change this client has not published\n"
	"          (not yet fsynced, still within its delay); keep running\n"
	"  crash   the same, then the daemon dies like a power cut (SIGKILL);\n"
	"          the mount answers ENOTCONN until `eddyfs umount`. Returns\n"
	"          once the daemon is gone\n"
	"  --torn  a random prefix of each lost write reaches the backing\n"
	"          directory (a torn write), decided by the client's seed\n"
	"\n"
	"Options:\n"
	"  --mount P    the mountpoint\n"
	"  -h, --help   show this help\n";

/* The crash reply names the daemon's pid: return once it is gone. */
static int crash(const char *mnt, const char *req)
{
	char out[512];
	const char *p;
	int r, i;
	long pid = 0;

	r = cli_control_request_capture(mnt, req, out, sizeof(out));
	if (r != 0)
		return r;
	fputs(out, stdout);
	if ((p = strstr(out, "chaos_crash_pid ")))
		pid = strtol(p + 16, NULL, 10);
	for (i = 0; pid > 0 && i < 1000 && kill((pid_t)pid, 0) == 0; i++)
		usleep(10000);
	return 0;
}

int cmd_chaos(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "torn", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct chaos_knobs k;
	const char *mnt = NULL, *verb;
	char req[1024], err[256];
	bool torn = false;
	size_t len;
	int c, i;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (c == 'm') {
			mnt = optarg;
		} else if (c == 't') {
			torn = true;
		} else if (c == 'h') {
			fputs(chaos_usage, stdout);
			return 0;
		} else {
			cli_error("bad option %s (see eddyfs chaos --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_error("chaos needs show, set or clear (see eddyfs chaos --help)");
		return EXIT_USAGE;
	}
	verb = argv[optind++];
	/* options may also follow the verb */
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (c == 'm') {
			mnt = optarg;
		} else if (c == 't') {
			torn = true;
		} else {
			cli_error("bad option %s (see eddyfs chaos --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (!mnt) {
		cli_error("chaos %s needs --mount P (see eddyfs chaos --help)", verb);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "show") != 0 && strcmp(verb, "set") != 0 &&
	    strcmp(verb, "clear") != 0 && strcmp(verb, "drop-unsynced") != 0 &&
	    strcmp(verb, "crash") != 0 && strcmp(verb, "fault") != 0 &&
	    strcmp(verb, "partition") != 0 && strcmp(verb, "heal") != 0) {
		cli_error("unknown chaos command '%s' (show, set, fault, clear, partition, heal, "
			  "drop-unsynced, crash)", verb);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "partition") == 0) {
		if (optind < argc - 1) {
			cli_error("chaos partition takes one mode (hard, soft[=MS], softerr[=MS])");
			return EXIT_USAGE;
		}
		snprintf(req, sizeof(req), "chaos partition%s%s", optind < argc ? " " : "",
			 optind < argc ? argv[optind] : "");
		return cli_control_request(mnt, req);
	}
	if (strcmp(verb, "fault") == 0) {
		if (optind != argc - 1) {
			cli_error("chaos fault needs one RULE (see eddyfs chaos --help)");
			return EXIT_USAGE;
		}
		if (chaos_rule_check(argv[optind], err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return EXIT_USAGE;
		}
		snprintf(req, sizeof(req), "chaos fault %s", argv[optind]);
		return cli_control_request(mnt, req);
	}
	if (torn && strcmp(verb, "drop-unsynced") != 0 && strcmp(verb, "crash") != 0) {
		cli_error("--torn applies to drop-unsynced and crash");
		return EXIT_USAGE;
	}
	if (strcmp(verb, "set") != 0 && optind < argc) {
		cli_error("chaos %s takes no arguments", verb);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "set") == 0 && optind >= argc) {
		cli_error("chaos set needs knob=value (see eddyfs chaos --help)");
		return EXIT_USAGE;
	}
	len = (size_t)snprintf(req, sizeof(req), "chaos %s%s", verb, torn ? " torn" : "");
	if (strcmp(verb, "crash") == 0)
		return crash(mnt, req);
	chaos_knobs_default(&k);
	for (i = optind; i < argc; i++) {
		char kv[256], *eq;

		snprintf(kv, sizeof(kv), "%s", argv[i]);
		eq = strchr(kv, '=');
		if (!eq) {
			cli_error("%s: want knob=value", argv[i]);
			return EXIT_USAGE;
		}
		*eq = 0;
		if (chaos_knob_set(&k, kv, eq + 1, err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return EXIT_USAGE;
		}
		if (len + strlen(argv[i]) + 2 >= sizeof(req)) {
			cli_error("too many knobs");
			return EXIT_USAGE;
		}
		len += (size_t)snprintf(req + len, sizeof(req) - len, " %s", argv[i]);
	}
	return cli_control_request(mnt, req);
}
