/* softhsm.h: a private SoftHSM2 store for unit tests, and raw PKCS#11
 * helpers that go behind the token layer's back.  Include after cmocka.h. */
#ifndef TEST_SOFTHSM_H
#define TEST_SOFTHSM_H

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MODULE		"/usr/lib/softhsm/libsofthsm2.so"
#define PIN		"1234"
#define SO_PIN		"5678"

extern char **environ;

static int
spawn_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
	    0) || posix_spawn_file_actions_adddup2(&fa, 1, 2) ||
	    posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int
init_token(const char *label)
{
	char *argv[] = {
		"/usr/bin/softhsm2-util", "--init-token", "--free",
		"--label", (char *)label, "--pin", PIN, "--so-pin", SO_PIN,
		NULL,
	};

	return spawn_quiet(argv);
}

/* A new store in dir (a mkdtemp template of 64 bytes at most), with
 * SOFTHSM2_CONF pointing at it.  0 on success. */
static int
softhsm_store(char *dir)
{
	char conf[128];
	FILE *fp;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/tokens", dir);
	if (mkdir(conf, 0700) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	if ((fp = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(fp, "directories.tokendir = %s/tokens\n"
	    "objectstore.backend = file\nlog.level = ERROR\n", dir);
	if (fclose(fp) != 0 || setenv("SOFTHSM2_CONF", conf, 1) != 0)
		return -1;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
softhsm_store_remove(const char *dir)
{
	return dir[0] == '\0' ? 0 : nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static CK_SLOT_ID
raw_slot(CK_FUNCTION_LIST_PTR f, const char *label)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_TOKEN_INFO info;
	char padded[32];

	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, strlen(label));
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n; i++) {
		assert_int_equal(f->C_GetTokenInfo(slots[i], &info), CKR_OK);
		if (memcmp(info.label, padded, sizeof(padded)) == 0)
			return slots[i];
	}
	fail_msg("no slot for %s", label);
	return 0;
}

static CK_SESSION_HANDLE
raw_session(CK_FUNCTION_LIST_PTR f, const char *label)
{
	CK_SESSION_HANDLE h;

	assert_int_equal(f->C_OpenSession(raw_slot(f, label),
	    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	return h;
}

/* The module's own function list, for raw calls: the same library
 * instance the token layer initialised.  0 on success. */
static int
raw_functions(void **dl, CK_FUNCTION_LIST_PTR *f)
{
	CK_C_GetFunctionList get;

	if ((*dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return -1;
	get = (CK_C_GetFunctionList)dlsym(*dl, "C_GetFunctionList");
	return get != NULL && get(f) == CKR_OK ? 0 : -1;
}

/* A CK_BBOOL attribute of an object. */
static int
raw_bool(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_int_equal(f->C_GetAttributeValue(h, obj, &a, 1), CKR_OK);
	return v == CK_TRUE;
}

#endif
