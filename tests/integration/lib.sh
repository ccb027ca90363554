# lib.sh: fixtures for integration tests.  Source it; it creates a private
# SoftHSM2 store and a work directory, and removes both (and the daemon) on
# exit.  Each test script prints "ok"/"not ok" lines and exits non-zero when
# any check failed.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$TOP/$BUILD" ;; esac
CUSTODIAND="$BUILD/custodiand"
CTL_BIN="$BUILD/custodianctl"
MODULE=/usr/lib/softhsm/libsofthsm2.so
W=$(mktemp -d /tmp/ct-test.XXXXXX)
chmod 0755 "$W"
SOCK="$W/ct.sock"
AUDIT="$W/audit.log"
POLICY="$W/policy.yaml"
DAEMON_PID=
DAEMON_PREFIX=   # e.g. "prlimit --fsize=N --": exec'd, so the pid is the daemon's
PASSED=0
FAILED=0

export SOFTHSM2_CONF="$W/softhsm2.conf"
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$SOFTHSM2_CONF"
umask 077
printf '1234\n' >"$W/pin"

cleanup() {
	stop_daemon
	rm -rf "$W"
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }

# check DESC CMD...: the command must succeed.
check() {
	local desc=$1; shift
	if "$@" >"$W/out" 2>"$W/err"; then ok "$desc"; else
		not_ok "$desc"; sed 's/^/#   /' "$W/out" "$W/err" | head -20
	fi
}

# expect_err DESC CODE CMD...: the command must fail with that error code.
expect_err() {
	local desc=$1 code=$2; shift 2
	if "$@" >"$W/out" 2>"$W/err"; then
		not_ok "$desc (succeeded)"
	elif grep -q "custodianctl: $code:" "$W/err"; then ok "$desc"; else
		not_ok "$desc (wanted $code)"; sed 's/^/#   /' "$W/err" | head -5
	fi
}

# same DESC A B: two strings must be equal.
same() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: '$2' != '$3'"; fi
}

init_token() { # LABEL
	softhsm2-util --init-token --free --label "$1" --pin 1234 --so-pin 5678 >/dev/null
}

# write_policy: the policy every test starts from (service, the token "svc",
# the client "root"), followed by standard input: more clients, then keys.
# PIN_SOURCE changes how the token's PIN is found.
PIN_SOURCE="pin_file: $W/pin"
write_policy() {
	{
		cat <<P
version: 1
service:
  socket: $SOCK
  audit_log: $AUDIT
  allow_root: true   # t_privilege.sh runs it as its own user
tokens:
  - name: svc
    module: $MODULE
    label: svc
    $PIN_SOURCE
clients:
  - name: root
    uid: 0
P
		cat
	} >"$POLICY"
}

# key_k_fixture: the token "svc" and the ec-p256 key "k" that root may sign
# and verify with, generated; the test starts the daemon.
key_k_fixture() {
	init_token svc
	write_policy <<P
keys:
  - name: k
    type: ec-p256
    token: svc
    allow: { root: [sign, verify] }
P
	check "keygen" keygen k
}

ctl() { "$CTL_BIN" -s "$SOCK" "$@"; }

keygen() { "$CTL_BIN" keygen -p "$POLICY" "$@"; }

start_daemon() {
	# Ready means it said so: a stale socket file proves nothing.
	local before i
	before=$(grep -c 'serving on' "$W/daemon.err" 2>/dev/null)
	# shellcheck disable=SC2086
	$DAEMON_PREFIX "$CUSTODIAND" -p "$POLICY" "$@" 2>>"$W/daemon.err" &
	DAEMON_PID=$!
	for i in $(seq 200); do
		[ "$(grep -c 'serving on' "$W/daemon.err")" -gt "${before:-0}" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# daemon did not start:"; sed 's/^/#   /' "$W/daemon.err"
	DAEMON_PID=
	return 1
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# Send raw bytes (a Python bytes literal) on one connection and print the
# reply lines; used for requests custodianctl would never send.
raw() {
	python3 - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
s.sendall(eval(sys.argv[2]))  # our own test literals, e.g. b"x"*70000
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    try:
        d = s.recv(65536)
    except ConnectionResetError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode("utf-8", "replace"))
PY
}

finish() {
	stop_daemon
	# Sanitizer builds: a report from any daemon run fails the test.
	if grep -q -E 'Sanitizer|runtime error:' "$W/daemon.err" 2>/dev/null; then
		not_ok "sanitizer report from custodiand"
		grep -E -A12 'Sanitizer|runtime error:' "$W/daemon.err" | sed 's/^/#   /' | head -40
	fi
	echo "# $(basename "$0"): $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
