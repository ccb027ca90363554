/* fuzz_audit_verify.c: the audit-log readers, on hostile files.
 *
 * The input is the content of an audit log.  It is written to one file per
 * process (in /dev/shm when there is one, so the syncs cost nothing) and
 * handed to ct_audit_verify, which reads the whole chain, and to
 * ct_audit_open, which reads only the last line to continue the chain.
 * They must agree: a log that verifies opens, continues from its last seq
 * (a file may start mid-chain, with a rotate line), and still verifies
 * after one more committed line.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "custodian/ct_audit.h"
#include "custodian/ct_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);


static char dir[64], path[96];
static json_t *event;

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/ct-fuzz-audit.XXXXXX",
		 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ?
		     "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	atexit(cleanup);
	ct_json_use_wiping_alloc();
	event = json_pack("{s:s, s:s}", "event", "request", "result", "ok");
	CHECK(event != NULL);
	return 0;
}

static void
put_file(const uint8_t *data, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd != -1);
	while (size > 0) {
		n = write(fd, data, size);
		CHECK(n > 0);
		data += n;
		size -= (size_t)n;
	}
	CHECK(close(fd) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct timespec now = { 1795460645, 123000000 };
	ct_audit_report rep, rep2;
	ct_audit *a = NULL;
	ct_err r, ro;

	put_file(data, size);
	r = ct_audit_verify(path, &rep);
	CHECK(r == CT_OK || r == CT_ERR_AUDIT);
	CHECK(memchr(rep.reason, '\0', sizeof(rep.reason)) != NULL);
	if (r == CT_OK) {
		CHECK(rep.bad_line == 0 && rep.reason[0] == '\0');
		CHECK(size == 0 || data[size - 1] == '\n');
	} else {
		CHECK(rep.bad_line >= 1 && rep.reason[0] != '\0');
		CHECK(rep.lines <= rep.bad_line);
	}

	ro = ct_audit_open(path, &a);
	CHECK(ro == CT_OK || ro == CT_ERR_AUDIT);
	CHECK((ro == CT_OK) == (a != NULL));
	if (r == CT_OK) {
		/* What verifies, the daemon can continue. */
		CHECK(ro == CT_OK);
		CHECK(ct_audit_seq(a) == rep.last_seq);
		CHECK(ct_audit_append(a, event, &now) == CT_OK);
		CHECK(ct_audit_commit(a) == CT_OK);
		CHECK(ct_audit_seq(a) == rep.last_seq + 1);
		ct_audit_close(a);
		CHECK(ct_audit_verify(path, &rep2) == CT_OK);
		CHECK(rep2.lines == rep.lines + 1);
		return 0;
	}
	ct_audit_close(a);
	return 0;
}
