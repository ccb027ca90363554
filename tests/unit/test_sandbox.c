/* test_sandbox.c: the seccomp allow-list, each case in a forked child:
 * what the daemon does still works, what it never does kills it. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "custodian/ct_sandbox.h"
#include "custodian/ct_util.h"
#include "tests/unit/child.h"

static void
enter_then_run(void *arg)
{
	void (*fn)(void) = *(void (**)(void))arg;
	char err[256];

	CHILD_CHECK(ct_sandbox_enter(err, sizeof(err)) == CT_OK);
	fn();
}

/* Enter the sandbox in a child, run fn there; return the wait status. */
static int
sandboxed(void (*fn)(void))
{
	return child_run(enter_then_run, &fn);
}

static void
assert_exit0(int status)
{
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
assert_killed(int status)
{
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void *
thread_main(void *arg)
{
	return arg;
}

/* What custodiand, SoftHSM2 and pcsc-lite do after start-up. */
static void
daily_work(void)
{
	char dir[] = "/tmp/test_sandbox.XXXXXX", a[64], b[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t t;
	void *m, *ret;
	int fd, sv[2];

	CHILD_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	CHILD_CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/state.new", dir);
	snprintf(b, sizeof(b), "%s/state", dir);
	CHILD_CHECK((fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600)) != -1);
	CHILD_CHECK(write(fd, "x\n", 2) == 2 && fsync(fd) == 0 &&
	    fdatasync(fd) == 0 && flock(fd, LOCK_EX) == 0 &&
	    ftruncate(fd, 1) == 0);
	CHILD_CHECK(close(fd) == 0 && rename(a, b) == 0 && unlink(b) == 0 &&
	    rmdir(dir) == 0);
	CHILD_CHECK((m = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED);
	CHILD_CHECK(mlock(m, 8192) == 0 && munlock(m, 8192) == 0 &&
	    munmap(m, 8192) == 0);
	CHILD_CHECK(pthread_create(&t, NULL, thread_main, m) == 0 &&
	    pthread_join(t, &ret) == 0 && ret == m);
	/* AF_UNIX: a pair, and a connect (refused: nobody listens). */
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHILD_CHECK((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/nonexistent/pcscd.comm");
	CHILD_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1);
	CHILD_CHECK(isatty(fd) == 0);
	close(fd);
}

static void
do_execve(void)
{
	char *argv[] = { "/bin/true", NULL };

	execve(argv[0], argv, NULL);
}

static void
do_inet_socket(void)
{
	(void)socket(AF_INET, SOCK_STREAM, 0);
}

static void
do_ptrace(void)
{
	(void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

static void
do_fork(void)
{
	/* glibc forks with clone, which threads need too; the fork and
	 * vfork calls themselves are not allowed. */
	(void)syscall(SYS_fork);
}

static void
do_clone_process(void)
{
	/* fork(2) as glibc does it: clone without CLONE_THREAD. */
	(void)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
}

static void
do_setuid(void)
{
	if (setuid(0) != 0)
		_exit(1);
}

static void
do_mount(void)
{
	(void)mount("none", "/mnt", "tmpfs", 0, NULL);
}

static void
do_bind(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	(void)bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t));
}

static void
test_allowed(void **state)
{
	assert_exit0(sandboxed(daily_work));
}

static void
test_killed(void **state)
{
	assert_killed(sandboxed(do_execve));
	assert_killed(sandboxed(do_inet_socket));
	assert_killed(sandboxed(do_fork));
	assert_killed(sandboxed(do_setuid));

	assert_killed(sandboxed(do_mount));
	assert_killed(sandboxed(do_bind));
#ifndef CT_WITH_ASAN
	/* Sanitizer builds allow both for LeakSanitizer's tracer. */
	assert_killed(sandboxed(do_ptrace));
	assert_killed(sandboxed(do_clone_process));
#else
	(void)do_ptrace;
	(void)do_clone_process;
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_killed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
