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
		not_ok "$desc"; sed 's/^/#   /' "$W/out" "$W/err" | tail -20
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
# PIN_SOURCE changes how the token's PIN is found; EXTRA_TOKENS (YAML lines)
# adds tokens after "svc".
PIN_SOURCE="pin_file: $W/pin"
EXTRA_TOKENS=
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
${EXTRA_TOKENS}clients:
  - name: root
    uid: 0
P
		cat
	} >"$POLICY"
}

# A daemon with a fake clock (libfaketime): call use_fake_clock TIME before
# start_daemon, then set_clock TIME to move it; the daemon sees the new time
# at its next clock read, without a restart and without sleeping.  TIME is
# "YYYY-MM-DD HH:MM:SS" UTC (the clock stands still in between) or an
# offset from the real clock such as "+0" or "+2d" (it runs on).  With
# "monotonic" as second argument CLOCK_MONOTONIC moves too.
# The MT build serialises its clock reads: the plain one re-reads the file
# into shared state unlocked, so with FAKETIME_NO_CACHE a thread of the
# daemon now and then reads the real time.  set_clock renames the file into
# place so that no read sees it half written.
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
set_clock() { printf '%s\n' "$1" >"$W/faketime.new" && mv -f "$W/faketime.new" "$W/faketime"; }
use_fake_clock() {
	[ -r "$FAKETIME_LIB" ] || { echo "# $FAKETIME_LIB missing: make deps"; return 1; }
	set_clock "$1"
	# ASan must come first among the libraries unless told not to check.
	DAEMON_PREFIX="env TZ=UTC LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$W/faketime
	    FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=$([ "${2:-}" = monotonic ] && echo 0 || echo 1)
	    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# The fault-injecting PKCS#11 module (tests/faultp11), in front of SoftHSM2
# unless FAULTP11_MODULE says otherwise.  use_faults points it at this
# test's rule file, with no rule yet, and its log (not_ok when the module is
# not built).  faults RULE... replaces the rules (none: clears them),
# renamed into place so that the module never reads half a list.
# p11_mark; ...; p11_since: the log lines written after the mark.
FAULT_MODULE="$BUILD/tests/libfaultp11.so"
use_faults() {
	[ -f "$FAULT_MODULE" ] || { not_ok "$FAULT_MODULE missing: make $FAULT_MODULE"; return 1; }
	export FAULTP11_CONTROL="$W/faults" FAULTP11_LOG="$W/p11.log"
	: >"$FAULTP11_CONTROL"
}
faults() { printf '%s\n' "$@" >"$W/faults.new"; mv "$W/faults.new" "$FAULTP11_CONTROL"; }
p11_mark() { P11_MARK=$(wc -l <"$FAULTP11_LOG"); }
p11_since() { tail -n +"$((P11_MARK + 1))" "$FAULTP11_LOG"; }

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

# ---- governance fixtures ----

# make_card NAME [KEYTYPE]: a custodian's smartcard, standing in as a
# SoftHSM2 token "NAME-card" with the key "card"; its public key goes to
# $W/NAME.pem for the policy.
make_card() {
	local t=${2:-EC:prime256v1}
	init_token "$1-card"
	pkcs11-tool --module "$MODULE" --token-label "$1-card" --login --pin 1234 \
		--keypairgen --key-type "$t" --label card >/dev/null 2>&1 &&
	pkcs11-tool --module "$MODULE" --token-label "$1-card" --read-object \
		--type pubkey --label card -o "$W/$1.der" >/dev/null 2>&1 &&
	openssl pkey -pubin -inform DER -in "$W/$1.der" -out "$W/$1.pem"
}

# two_custodians [GOVERNANCE_LINE...]: cards for alice (custodian and
# security officer, uid 0) and bob, and the policy lines that make them a
# 2-of-2 quorum, with more governance lines if given, for the caller's
# write_policy.  Fails when a card cannot be made.
two_custodians() {
	local c l
	for c in alice bob; do make_card "$c" >&2 || return 1; done
	cat <<P
custodians:
  - { name: alice, public_key: $W/alice.pem, roles: [custodian, security-officer], uid: 0 }
  - { name: bob, public_key: $W/bob.pem, roles: [custodian] }
governance:
  quorum: { m: 2, of: [alice, bob] }
P
	for l in "$@"; do printf '  %s\n' "$l"; done
}

# decide approve|deny ID NAME: the custodian signs with their card.
decide() {
	ctl "$1" "$2" --custodian "$3" --pkcs11-module "$MODULE" --token "$3-card" \
		--key card --pin-file "$W/pin"
}

# reload_daemon: SIGHUP, then wait (5 s at most) for the reload's audit
# line: the daemon writes it once the new policy is in force or refused.
reload_daemon() {
	local n _
	n=$(grep -c '"event":"reload"' "$AUDIT" 2>/dev/null)
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		[ "$(grep -c '"event":"reload"' "$AUDIT" 2>/dev/null)" -gt "${n:-0}" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_for DESC CMD...: poll (at most 5 s) until the command succeeds.
wait_for() {
	local desc=$1 i; shift
	for i in $(seq 50); do
		if "$@" >/dev/null 2>&1; then ok "$desc"; return 0; fi
		sleep 0.1
	done
	not_ok "$desc (not within 5 s)"
	return 1
}
