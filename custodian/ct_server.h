/* ct_server.h: the daemon: socket, event loop, audit, reload.
 *
 * One thread runs the event loop: it accepts clients, reads request lines,
 * decodes and authorises them, hands token work to the pool, and replies.
 * Every reply waits for the audit commit that covers its line (group
 * commit: all lines of one loop turn share one fdatasync).  If the commit
 * fails, the replies of that turn become audit_failed errors.
 */
#ifndef CT_SERVER_H
#define CT_SERVER_H

#include "custodian/ct_err.h"

typedef struct {
	const char *policy_path;
	const char *socket_path; /* overrides the policy's service.socket */
	const char *audit_path;	 /* overrides the policy's service.audit_log */
	const char *state_path;	 /* overrides the policy's service.state */
} ct_server_opts;

/* Run until SIGTERM or SIGINT.  Errors before serving are printed to
 * stderr and returned. */
ct_err ct_server_run(const ct_server_opts *opts) CT_WUR;

#endif
