/* ct_sandbox.h: the seccomp allow-list of custodiand.
 *
 * What it allows is what the daemon and in-process PKCS#11 modules need
 * once they are running: file I/O (including rename and fsync of state
 * files), memory mapping and locking, threads, timers, the event loop, and
 * AF_UNIX sockets (accepting clients, connecting to pcscd or nscd).  It
 * has nothing that runs programs (execve), debugs (ptrace), forks a
 * process, opens network sockets, mounts, loads modules or changes ids.
 * Sanitizer builds also allow what LeakSanitizer needs at exit (ptrace of
 * its own threads, wait4).  The table is in ct_sandbox.c.
 */
#ifndef CT_SANDBOX_H
#define CT_SANDBOX_H

#include <stddef.h>

#include "custodian/ct_err.h"

/* Set no_new_privs and load the filter for every thread of the process
 * (a violation kills the process: SCMP_ACT_KILL_PROCESS).  Irreversible.
 * CT_ERR_INTERNAL with err filled when the kernel refuses. */
ct_err ct_sandbox_enter(char *err, size_t errlen) CT_WUR;

#endif
