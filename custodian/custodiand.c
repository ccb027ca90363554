/* custodiand: the key custodian daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "custodian/ct_server.h"
#include "custodian/ct_util.h"

static void
usage(void)
{
	fprintf(stderr, "usage: custodiand -p POLICY [-s SOCKET] [-a AUDIT_LOG] "
	    "[-S STATE]\n"
	    "  Serves the keys of POLICY on a Unix socket; runs in the foreground.\n"
	    "  SIGHUP reloads the policy, SIGTERM stops.\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	ct_server_opts o = { 0 };
	int ch;

	while ((ch = getopt(argc, argv, "p:s:a:S:h")) != -1) {
		switch (ch) {
		case 'p':
			o.policy_path = optarg;
			break;
		case 's':
			o.socket_path = optarg;
			break;
		case 'a':
			o.audit_path = optarg;
			break;
		case 'S':
			o.state_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (o.policy_path == NULL || optind != argc)
		usage();
	/* PINs and unwrapped keys pass through this process. */
	if (ct_no_core_dumps() != CT_OK) {
		fprintf(stderr, "custodiand: cannot disable core dumps\n");
		return 1;
	}
	/* Past a file size limit, fail the audit write (closed), not the
	 * whole daemon. */
	signal(SIGXFSZ, SIG_IGN);
	ct_json_use_wiping_alloc();
	return ct_server_run(&o) == CT_OK ? 0 : 1;
}
