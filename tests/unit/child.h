/* child.h: checks run in a forked child, for what a test process cannot
 * undo (a privilege drop, a seccomp filter, a file size limit). */
#ifndef TEST_CHILD_H
#define TEST_CHILD_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the child, cmocka's asserts cannot report: say what failed, exit 1. */
#define CHILD_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "child: line %d: %s\n", __LINE__, #c); \
		_exit(1); \
	} \
} while (0)

/* Run fn(arg) in a child that exits 0 when fn returns (exit, not _exit:
 * LeakSanitizer checks the child too); return its wait status, or -1. */
static inline int
child_run(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		fn(arg);
		exit(0);
	}
	return waitpid(pid, &status, 0) == pid ? status : -1;
}

#endif
