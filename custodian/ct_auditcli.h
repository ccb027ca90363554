/* ct_auditcli.h: `custodianctl audit ...`: verify, checkpoint-export,
 * query and summary, offline on the log files (docs/audit.md). */
#ifndef CT_AUDITCLI_H
#define CT_AUDITCLI_H

/* argv[0] is "audit", argv[1] the subcommand.  Returns the exit status:
 * 0 success, 1 a problem was found or the files could not be read,
 * 2 usage. */
int ct_audit_cli(int argc, char **argv);

#endif
