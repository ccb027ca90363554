/* ct_util.h: small helpers shared by the daemon and the CLI. */
#ifndef CT_UTIL_H
#define CT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "custodian/ct_err.h"

/* Built with AddressSanitizer, which owns malloc and needs more system
 * calls: GCC says so with a macro, clang with a feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CT_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_WITH_ASAN 1
#endif
#endif

#define CT_SECRET_FILE_MAX 256 /* PIN files */

/* Base64 (RFC 4648, with padding, no line breaks).
 * ct_b64_encode: *out is malloc'd and NUL-terminated; the caller frees it
 * (with ct_free_secret when it encodes a secret).
 * ct_b64_decode: strict (canonical padding, no whitespace, no junk);
 * *out is malloc'd (never NULL on success, even for empty input) and
 * holds at most `max` bytes, else CT_ERR_TOO_LARGE. */
ct_err ct_b64_encode(const uint8_t *in, size_t len, char **out) CT_WUR;
ct_err ct_b64_decode(const char *in, size_t inlen, size_t max, uint8_t **out,
		     size_t *outlen) CT_WUR;

/* Lowercase hex into out (2 * len + 1 bytes). */
void ct_hex(const uint8_t *in, size_t len, char *out);

/* Set up OpenSSL's secure heap (mlock'd, kept out of core dumps) once per
 * process; any thread may call it.  If that fails, OPENSSL_secure_malloc
 * falls back to the normal heap, and secrets are still wiped on free. */
void ct_secure_heap_init(void);

/* Wipe and free memory that held a secret (NULL is fine). */
void ct_free_secret(void *p, size_t len);

/* Make jansson wipe every block it frees, so that request and reply
 * documents holding plaintext keys leave nothing behind.  Call once at
 * start, before any json_* call. */
void ct_json_use_wiping_alloc(void);

/* Read from fd until end of file or cap bytes; *len counts them.
 * CT_ERR_IO with errno set on a read error. */
ct_err ct_read_all(int fd, void *buf, size_t cap, size_t *len) CT_WUR;
/* SHA-256 of a regular file's contents. */
ct_err ct_file_sha256(const char *path, uint8_t out[32], char *err,
		      size_t errlen) CT_WUR;

/* Read a secret (a PIN) from a file: regular file, not a symlink, not
 * readable or writable by others, at most CT_SECRET_FILE_MAX bytes; one
 * trailing newline is dropped.  *out is in OpenSSL's secure heap,
 * NUL-terminated; free with OPENSSL_secure_clear_free(*out, *outlen + 1). */
ct_err ct_secret_from_file(const char *path, char **out, size_t *outlen,
			   char *err, size_t errlen) CT_WUR;
/* Same from an environment variable, which is then wiped and unset. */
ct_err ct_secret_from_env(const char *name, char **out, size_t *outlen,
			  char *err, size_t errlen) CT_WUR;

/* Same from the controlling terminal, echo off, after printing prompt. */
ct_err ct_secret_from_tty(const char *prompt, char **out, size_t *outlen,
			  char *err, size_t errlen) CT_WUR;

/* fsync the directory holding path, so that its creation or rename is
 * durable. */
ct_err ct_sync_parent_dir(const char *path) CT_WUR;
/* Write a whole file so that a crash leaves the old one or the new one:
 * a temporary file beside it, fsync, rename, fsync of the directory. */
ct_err ct_write_file_atomic(const char *path, const uint8_t *buf, size_t len,
			    mode_t mode, char *err, size_t errlen) CT_WUR;

/* Names of keys, tokens, clients: [A-Za-z0-9._-]{1,max}. */
bool ct_valid_name(const char *s, size_t max);

/* "PROG: MESSAGE\n" on standard error. */
void ct_vmsg(const char *prog, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The directory part of a path: "." for a bare name, "/" for "/x".
 * malloc'd (the caller frees it); NULL when out of memory. */
char *ct_dirname(const char *path);

/* Process-wide: no core dumps, not ptrace-attachable by peers. */
ct_err ct_no_core_dumps(void) CT_WUR;

#endif
