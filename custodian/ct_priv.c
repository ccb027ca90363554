/* ct_priv.c: permission checks at start and dropping root (ct_priv.h). */
#include "custodian/ct_priv.h"
#include "custodian/ct_util.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ct_err
not_writable_by_others(const char *what, const char *path,
		       const struct stat *st, char *err, size_t errlen)
{
	if ((st->st_mode & S_IWOTH) == 0)
		return CT_OK;
	snprintf(err, errlen, "%s %s: writable by others (mode %04o): refused",
	    what, path, (unsigned)(st->st_mode & 07777));
	return CT_ERR_POLICY;
}

ct_err
ct_perm_check(const char *what, const char *path, unsigned flags, uid_t self,
	      char *err, size_t errlen)
{
	char dwhat[64];
	struct stat st;
	char *dir = NULL;
	ct_err r = CT_ERR_IO;

	if (flags & CT_PERM_DIR) {
		if ((dir = ct_dirname(path)) == NULL) {
			r = CT_ERR_NOMEM;
			goto out;
		}
		snprintf(dwhat, sizeof(dwhat), "directory of the %s", what);
		if (stat(dir, &st) != 0) {
			snprintf(err, errlen, "%s %s: %s", dwhat, dir,
			    strerror(errno));
			goto out;
		}
		/* Even with the sticky bit: others could plant the file. */
		if ((r = not_writable_by_others(dwhat, dir, &st, err,
		    errlen)) != CT_OK)
			goto out;
	}
	r = CT_ERR_IO;
	if ((flags & (CT_PERM_FILE | CT_PERM_OWNER)) == 0) {
		r = CT_OK;
		goto out;
	}
	if (stat(path, &st) != 0) {
		if (errno == ENOENT && (flags & CT_PERM_MAY_MISS)) {
			r = CT_OK;
			goto out;
		}
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if ((flags & CT_PERM_FILE) &&
	    (r = not_writable_by_others(what, path, &st, err, errlen)) != CT_OK)
		goto out;
	if ((flags & CT_PERM_OWNER) && st.st_uid != 0 && st.st_uid != self) {
		snprintf(err, errlen, "%s %s: owned by uid %lu, neither root nor "
		    "uid %lu that runs the daemon: refused", what, path,
		    (unsigned long)st.st_uid, (unsigned long)self);
		r = CT_ERR_POLICY;
		goto out;
	}
	r = CT_OK;
 out:
	free(dir);
	return r;
}

/* Root must be gone for good: every id is the new one, and asking for
 * root back fails. */
static bool
root_is_gone(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
		return false;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid)
		return false;
	return setuid(0) == -1 && seteuid(0) == -1 &&
	    (gid == 0 || setgid(0) == -1);
}

ct_err
ct_priv_can_drop(const pol_policy *p, char *err, size_t errlen)
{
	if (p->run_user == NULL) {
		if (geteuid() != 0 || p->allow_root)
			return CT_OK;
		snprintf(err, errlen, "%s: started as root without service.user; "
		    "name the user to run as (or set service.allow_root: true)",
		    p->path);
		return CT_ERR_POLICY;
	}
	if (geteuid() != 0 && (getuid() != p->run_uid ||
	    geteuid() != p->run_uid)) {
		snprintf(err, errlen, "service.user is %s (uid %lu), but the "
		    "daemon runs as uid %lu and cannot switch: start it as root "
		    "or as that user", p->run_user, (unsigned long)p->run_uid,
		    (unsigned long)geteuid());
		return CT_ERR_POLICY;
	}
	return CT_OK;
}

ct_err
ct_priv_drop(const pol_policy *p, char *err, size_t errlen)
{
	gid_t gid = p->run_gid;
	ct_err r;

	if ((r = ct_priv_can_drop(p, err, errlen)) != CT_OK)
		return r;
	if (p->run_user == NULL || geteuid() != 0)
		return CT_OK;
	/* Groups first: after setresuid there is no right to change them. */
	if (initgroups(p->run_user, gid) != 0 ||
	    setresgid(gid, gid, gid) != 0 ||
	    setresuid(p->run_uid, p->run_uid, p->run_uid) != 0) {
		snprintf(err, errlen, "cannot become %s (uid %lu, gid %lu): %s",
		    p->run_user, (unsigned long)p->run_uid, (unsigned long)gid,
		    strerror(errno));
		return CT_ERR_INTERNAL;
	}
	if (p->run_uid != 0 && !root_is_gone(p->run_uid, gid)) {
		snprintf(err, errlen, "became %s, but root can be regained",
		    p->run_user);
		return CT_ERR_INTERNAL;
	}
	/* A change of uid resets dumpable to fs.suid_dumpable: set it again. */
	if ((r = ct_no_core_dumps()) != CT_OK)
		snprintf(err, errlen, "cannot disable core dumps as %s",
		    p->run_user);
	return r;
}
