/* ct_sandbox.c: no_new_privs and the seccomp allow-list (ct_sandbox.h). */
#include "custodian/ct_sandbox.h"
#include "custodian/ct_util.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <seccomp.h>

/*
 * Allowed without conditions.  Generous on purpose where a PKCS#11 module
 * or libc may reach (SoftHSM2's file store, locks and threads; pcsc-lite's
 * client socket; NSS lookups on reload), strict where it matters: nothing
 * here executes, forks, traces, mounts, loads kernel modules, changes ids
 * or capabilities, or binds and listens anew.
 */
static const char *const allowed[] = {
	/* files */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "open", "openat", "close",
	"close_range", "lseek", "stat", "fstat", "lstat", "newfstatat",
	"statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
	"readlink", "readlinkat", "getdents", "getdents64", "rename",
	"renameat", "renameat2", "link", "linkat", "unlink", "unlinkat",
	"mkdir", "mkdirat",
	"rmdir", "ftruncate", "fsync", "fdatasync", "sync_file_range",
	"fallocate", "fadvise64", "flock", "fcntl", "dup", "dup2", "dup3",
	"pipe", "pipe2", "fchmod", "umask", "getcwd", "utimensat",
	/* memory (mlock: OpenSSL's secure heap; W^X is systemd's job) */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mlock",
	"mlock2", "munlock", "mincore", "membarrier",
	/* threads, signals, time */
	"futex", "set_robust_list", "get_robust_list",
	"rseq", "set_tid_address", "gettid", "getpid", "getppid", "tgkill",
	"tkill", "exit", "exit_group", "sched_yield", "sched_getaffinity",
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
	"gettimeofday", "time", "getrandom", "prlimit64", "getrlimit",
	"sigaltstack", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"rt_sigtimedwait", "restart_syscall", "timerfd_create",
	"timerfd_settime", "timerfd_gettime", "timer_create", "timer_settime",
	"timer_gettime", "timer_delete", "alarm", "setitimer", "getitimer",
	"prctl", "arch_prctl", "uname", "sysinfo",
	/* identity: reading only */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
	"getgroups",
	/* the event loop and sockets already open or AF_UNIX (below) */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "poll", "ppoll", "select", "pselect6", "signalfd4",
	"eventfd2", "accept", "accept4", "connect", "getsockopt",
	"setsockopt", "getsockname", "getpeername", "sendto", "sendmsg",
	"recvfrom", "recvmsg", "shutdown",
#ifdef CT_WITH_ASAN
	/* LeakSanitizer stops the world at exit by tracing its own threads. */
	"ptrace", "wait4", "process_vm_readv", "clone",
#endif
};

static const unsigned long ioctls[] = {
	TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX,
};

ct_err
ct_sandbox_enter(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	const char *what = "seccomp_init";
	size_t i;
	int rc = 0, nr;
	ct_err r = CT_ERR_INTERNAL;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return CT_ERR_INTERNAL;
	}
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		goto fail;
	what = "seccomp_attr_set";
	/* Every thread, not only this one: the pool and any module's. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0)
		goto fail;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		what = allowed[i];
		/* A name this architecture lacks (open on arm64) is skipped. */
		if ((nr = seccomp_syscall_resolve_name(allowed[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) != 0)
			goto fail;
	}
	what = "socket rules";
	/* New sockets only for local peers (pcscd, nscd): no network. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0))) != 0)
		goto fail;
	what = "clone rules";
	/* Threads, not processes: clone must share the thread group.  clone3
	 * passes its flags in memory, out of a filter's reach: ENOSYS sends
	 * glibc back to clone. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
	    0)) != 0)
		goto fail;
	what = "ioctl rules";
	/* isatty() and non-blocking flags, never typing into a terminal. */
	for (i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl),
		    1, SCMP_A1(SCMP_CMP_EQ, ioctls[i], 0))) != 0)
			goto fail;
	what = "seccomp_load";
	if ((rc = seccomp_load(ctx)) != 0)
		goto fail;
	r = CT_OK;
	goto out;
 fail:
	snprintf(err, errlen, "seccomp: %s: %s", what,
	    rc < 0 ? strerror(-rc) : "out of memory");
 out:
	seccomp_release(ctx);
	return r;
}
