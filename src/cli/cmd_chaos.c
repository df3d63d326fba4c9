/*
** cmd_chaos.c -- `eddyfs chaos show|set|clear --mount P [knob=value ...]`:
** inspect or change the knobs of a running chaos mount over its control
** socket. The command returns once the change is in effect in the daemon.
** Knob values are checked here first, with the same parser the daemon uses.
*/
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../layer/chaos/chaos.h"

static const char chaos_usage[] =
	"Usage: eddyfs chaos show --mount P\n"
	"       eddyfs chaos set --mount P knob=value [knob=value ...]\n"
	"       eddyfs chaos clear --mount P\n"
	"\n"
	"Inspect or change the chaos knobs of the running mount at P (mounted\n"
	"with --chaos or a chaos knob). set and clear return once the change is\n"
	"in effect; they print the knobs now in force.\n"
	"  show    the knobs and counters (dropped, passed, stale_*_hits,\n"
	"          delayed, published, publish_failed, pending, ...)\n"
	"  set     knobs: meta-ttl=MS write-delay=MS rename-delay=MS\n"
	"          drop-prob=P drop-errno=NAME|N\n"
	"  clear   all knobs to 0: the client behaves like a coherent one\n"
	"          (pending writes are published at once)\n"
	"\n"
	"Options:\n"
	"  --mount P    the mountpoint\n"
	"  -h, --help   show this help\n";

int cmd_chaos(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct chaos_knobs k;
	const char *mnt = NULL, *verb;
	char req[1024], err[256];
	size_t len;
	int c, i;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (c == 'm') {
			mnt = optarg;
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
	/* --mount may also follow the verb */
	while (getopt_long(argc, argv, "+:h", longopts, NULL) == 'm')
		mnt = optarg;
	if (!mnt) {
		cli_error("chaos %s needs --mount P (see eddyfs chaos --help)", verb);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "show") != 0 && strcmp(verb, "set") != 0 &&
	    strcmp(verb, "clear") != 0) {
		cli_error("unknown chaos command '%s' (show, set, clear)", verb);
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
	len = (size_t)snprintf(req, sizeof(req), "chaos %s", verb);
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
