/* test_priv.c: permission checks at start, and dropping root (in forked
 * children, since a drop cannot be undone).  Runs as root, as CI does. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cmocka.h>

#include "custodian/ct_priv.h"
#include "tests/unit/child.h"

struct fixture {
	char dir[64];
	char file[96];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_priv.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->file, sizeof(fx->file), "%s/policy.yaml", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->file);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
assert_refused(const char *what, const char *path, unsigned flags, uid_t self,
	       const char *msg)
{
	char err[256] = "";

	assert_int_equal(ct_perm_check(what, path, flags, self, err,
	    sizeof(err)), CT_ERR_POLICY);
	if (strstr(err, msg) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, msg);
}

static void
test_perm_check(void **state)
{
	struct fixture *fx = *state;
	char err[256], want[256];
	const unsigned all = CT_PERM_FILE | CT_PERM_OWNER | CT_PERM_DIR;

	/* Missing: an error, unless it may be created later. */
	assert_int_equal(ct_perm_check("audit log", fx->file, CT_PERM_FILE, 0,
	    err, sizeof(err)), CT_ERR_IO);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(ct_perm_check("audit log", fx->file, CT_PERM_FILE |
	    CT_PERM_DIR | CT_PERM_MAY_MISS, 0, err, sizeof(err)), CT_OK);

	assert_int_equal(close(creat(fx->file, 0600)), 0);
	assert_int_equal(chmod(fx->dir, 0755), 0);
	assert_int_equal(ct_perm_check("policy file", fx->file, all, 0, err,
	    sizeof(err)), CT_OK);
	/* Readable by all is fine; writable by others is not. */
	assert_int_equal(chmod(fx->file, 0644), 0);
	assert_int_equal(ct_perm_check("policy file", fx->file, all, 0, err,
	    sizeof(err)), CT_OK);
	assert_int_equal(chmod(fx->file, 0646), 0);
	snprintf(want, sizeof(want), "policy file %s: writable by others "
	    "(mode 0646): refused", fx->file);
	assert_refused("policy file", fx->file, CT_PERM_FILE, 0, want);
	/* Group-writable is the owner's choice. */
	assert_int_equal(chmod(fx->file, 0660), 0);
	assert_int_equal(ct_perm_check("policy file", fx->file, all, 0, err,
	    sizeof(err)), CT_OK);

	/* Owner: root, or whoever started the daemon; nobody else. */
	assert_int_equal(chown(fx->file, 4000, 0), 0);
	snprintf(want, sizeof(want), "policy file %s: owned by uid 4000, "
	    "neither root nor uid 0 that runs the daemon: refused", fx->file);
	assert_refused("policy file", fx->file, CT_PERM_OWNER, 0, want);
	assert_int_equal(ct_perm_check("policy file", fx->file, CT_PERM_OWNER,
	    4000, err, sizeof(err)), CT_OK);
	/* ... and only when asked to look at the owner. */
	assert_int_equal(ct_perm_check("audit log", fx->file, CT_PERM_FILE, 0,
	    err, sizeof(err)), CT_OK);

	/* The directory: world-writable, sticky or not, is refused. */
	assert_int_equal(chmod(fx->dir, 01777), 0);
	snprintf(want, sizeof(want), "directory of the socket %s: writable "
	    "by others (mode 1777): refused", fx->dir);
	assert_refused("socket", fx->file, CT_PERM_DIR, 0, want);
	assert_int_equal(ct_perm_check("socket", fx->file, CT_PERM_FILE, 4000,
	    err, sizeof(err)), CT_OK);
	assert_int_equal(chmod(fx->dir, 0700), 0);
	/* A bare name lives in the current directory. */
	assert_int_equal(ct_perm_check("socket", "x.sock", CT_PERM_DIR, 0,
	    err, sizeof(err)), CT_OK);
}

static pol_policy *
load(const char *service)
{
	char doc[512], err[256];
	pol_policy *p = NULL;

	snprintf(doc, sizeof(doc), "version: 1\nservice: %s\n"
	    "tokens: [{name: t, module: /m.so, label: l, pin_env: P}]\n"
	    "keys: []\n", service);
	if (pol_load_buffer("p.yaml", doc, strlen(doc), &p, err,
	    sizeof(err)) != CT_OK)
		fail_msg("%s", err);
	return p;
}

/* Run fn in a child and expect it to exit 0. */
static void
in_child(void (*fn)(void *))
{
	int status = child_run(fn, NULL);

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
drop_to_nobody(void *arg)
{
	pol_policy *p = load("{user: nobody, group: nogroup}");
	char err[256] = "";
	uid_t r, e, s;

	CHILD_CHECK(ct_priv_drop(p, err, sizeof(err)) == CT_OK);
	CHILD_CHECK(getresuid(&r, &e, &s) == 0);
	CHILD_CHECK(r == p->run_uid && e == p->run_uid && s == p->run_uid);
	CHILD_CHECK(getgid() == p->run_gid && getegid() == p->run_gid);
	/* No supplementary group of root's survives. */
	CHILD_CHECK(getgroups(0, NULL) == 0 || setgroups(0, NULL) == -1);
	CHILD_CHECK(setuid(0) == -1 && setgid(0) == -1);
	CHILD_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	/* Once dropped, the same policy is already satisfied. */
	CHILD_CHECK(ct_priv_drop(p, err, sizeof(err)) == CT_OK);
	pol_free(p);
}

static void
user_mismatch(void *arg)
{
	pol_policy *p = load("{user: nobody}");
	char err[256] = "";

	CHILD_CHECK(setresuid(4000, 4000, 4000) == 0);
	CHILD_CHECK(ct_priv_can_drop(p, err, sizeof(err)) == CT_ERR_POLICY);
	CHILD_CHECK(strstr(err, "service.user is nobody") != NULL);
	CHILD_CHECK(strstr(err, "runs as uid 4000 and cannot switch") != NULL);
	CHILD_CHECK(ct_priv_drop(p, err, sizeof(err)) == CT_ERR_POLICY);
	CHILD_CHECK(getuid() == 4000);
	pol_free(p);
	/* Not root, no service.user: nothing to drop. */
	p = load("{workers: 1}");
	CHILD_CHECK(ct_priv_drop(p, err, sizeof(err)) == CT_OK);
	pol_free(p);
}

static void
test_drop(void **state)
{
	pol_policy *p;
	char err[256] = "";

	assert_int_equal(geteuid(), 0);
	/* Root without a user: refused, unless allowed in so many words. */
	p = load("{workers: 1}");
	assert_int_equal(ct_priv_can_drop(p, err, sizeof(err)), CT_ERR_POLICY);
	assert_non_null(strstr(err, "p.yaml: started as root without "
	    "service.user"));
	assert_int_equal(ct_priv_drop(p, err, sizeof(err)), CT_ERR_POLICY);
	pol_free(p);
	p = load("{allow_root: true}");
	assert_int_equal(ct_priv_drop(p, err, sizeof(err)), CT_OK);
	assert_int_equal(geteuid(), 0);
	pol_free(p);
	in_child(drop_to_nobody);
	in_child(user_mismatch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_perm_check, setup,
		    teardown),
		cmocka_unit_test(test_drop),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_priv: needs root (CI runs as root)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
