/* ct_priv.h: least privilege at start: permission checks on the files the
 * daemon trusts, and dropping root for the policy's service.user.
 *
 * Order in custodiand: check permissions, open everything (socket, audit
 * log, tokens with their PINs), ct_priv_drop(), then ct_sandbox_enter()
 * (ct_sandbox.h).
 */
#ifndef CT_PRIV_H
#define CT_PRIV_H

#include <stddef.h>
#include <sys/types.h>

#include "custodian/ct_err.h"
#include "policy/pol.h"

/* What ct_perm_check looks at (bit set). */
enum {
	CT_PERM_FILE = 1u << 0,	   /* the file: not writable by others */
	CT_PERM_OWNER = 1u << 1,   /* the file: owned by root or by `self` */
	CT_PERM_DIR = 1u << 2,	   /* its directory: not writable by others */
	CT_PERM_MAY_MISS = 1u << 3, /* a file that does not exist yet is fine */
};

/* Refuse a trusted file that others could change.  `what` names it in the
 * message ("policy file", "PIN file", ...); `self` is the uid the daemon
 * was started as.  CT_ERR_POLICY with err = "what PATH: problem: refused",
 * CT_ERR_IO when it cannot be examined. */
ct_err ct_perm_check(const char *what, const char *path, unsigned flags,
		     uid_t self, char *err, size_t errlen) CT_WUR;

/* Become p->run_user (supplementary groups, gid, uid: real, effective and
 * saved), then prove that root cannot be regained.  Without run_user, a
 * daemon started as root is refused unless p->allow_root.  Started as
 * another user, run_user must be that user.  Core dumps stay off.  An
 * error after the first id change is fatal to start-up. */
ct_err ct_priv_drop(const pol_policy *p, char *err, size_t errlen) CT_WUR;
/* The checks of ct_priv_drop alone, changing nothing: run them before
 * opening anything, so that a wrong start fails early and clearly. */
ct_err ct_priv_can_drop(const pol_policy *p, char *err, size_t errlen) CT_WUR;

#endif
