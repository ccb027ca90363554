#!/usr/bin/env bash
# run.sh: `make bench`.  A private SoftHSM2 token with three keys, custodiand
# on it, and where they can be made to work a p11-kit server and an
# ssh-agent on the same token; then build/bench/custodian-bench measures
# them all in one run.  Results go to stdout and bench/results.md.  Every
# process started here is stopped on exit, failed or not.
#
#   BENCH_SECONDS  seconds per measurement (3)
#   BENCH_CONC     client counts (1,2,8,64); BENCH_RSA_CONC for RSA-3072 (1,8,64)
#   BENCH_IDLE     idle connections of the connection-scale run (1000)
set -eu -o pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$TOP/$BUILD" ;; esac
SECS=${BENCH_SECONDS:-3}
CONC=${BENCH_CONC:-1,2,8,64}
RSA_CONC=${BENCH_RSA_CONC:-1,8,64}
IDLE=${BENCH_IDLE:-1000}
MODULE=/usr/lib/softhsm/libsofthsm2.so
KIT_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
OUT="$TOP/bench/results.md"

# The peers' packages, from Debian only, and only when missing.  Without
# them their rows say n/a; the benchmark still runs.
missing=""
for p in p11-kit-modules p11-kit openssh-client; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bench: installing$missing" >&2
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	# shellcheck disable=SC2086 # one word per package
	{ $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		$SUDO apt-get install -y -q --no-install-recommends $missing; } >&2 ||
		echo "bench: could not install$missing" >&2
fi

W=$(mktemp -d /tmp/ct-bench.XXXXXX)
chmod 0755 "$W"
PIDS=()
cleanup() {
	local rc=$? p
	if [ "$rc" -ne 0 ] && [ -s "$W/daemon.err" ]; then
		echo "bench: failed; custodiand said:" >&2
		tail -n 20 "$W/daemon.err" | sed 's/^/  /' >&2
	fi
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export SOFTHSM2_CONF="$W/softhsm2.conf"
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$SOFTHSM2_CONF"
umask 077
printf '1234\n' >"$W/pin"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null

# uid 0 (make bench runs as root) signs with ec and rsa, unwraps with aes
# and rsa; datakey makes the blobs.  SoftHSM2 decrypts RSA-OAEP only with
# SHA-1, so the RSA key says so.
WORKERS=$(nproc)
[ "$WORKERS" -le 64 ] || WORKERS=64
cat >"$W/policy.yaml" <<P
version: 1
service:
  socket: $W/ct.sock
  audit_log: $W/audit.log
  workers: $WORKERS
  allow_root: true
tokens:
  - name: bench
    module: $MODULE
    label: bench
    pin_file: $W/pin
clients:
  - name: bench
    uid: $(id -u)
keys:
  - name: ec
    type: ec-p256
    token: bench
    allow: { bench: [sign] }
  - name: rsa
    type: rsa-3072
    token: bench
    sign: rsa-pss-sha256
    oaep_hash: sha1
    allow: { bench: [sign, unwrap, datakey] }
  - name: aes
    type: aes-256
    token: bench
    allow: { bench: [unwrap, datakey] }
P
for k in ec rsa aes; do "$BUILD/custodianctl" keygen -p "$W/policy.yaml" "$k" >/dev/null; done

# Room for 1,000 idle connections, in the daemon and the load generator.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Ready means it said so.
"$BUILD/custodiand" -p "$W/policy.yaml" 2>"$W/daemon.err" &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
for _ in $(seq 200); do
	grep -q 'serving on' "$W/daemon.err" && break
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q 'serving on' "$W/daemon.err"; then
	echo "bench: custodiand did not start:" >&2
	sed 's/^/  /' "$W/daemon.err" >&2
	exit 1
fi

# wait_for FILE PID: until FILE exists (a socket) or PID is gone; 5 s.
wait_for() {
	for _ in $(seq 100); do
		[ -e "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# first_line FILE: a reason for an n/a row, safe in a table cell.
first_line() { head -n 1 "$1" 2>/dev/null | tr -d '|' | cut -c1-120; }

KIT=(-X "p11-kit or p11-kit-modules not installed")
if command -v p11-kit >/dev/null && [ -e "$KIT_CLIENT" ]; then
	p11-kit server -f -n "$W/kit.sock" --provider "$MODULE" "pkcs11:token=bench" \
		>"$W/kit.out" 2>"$W/kit.err" &
	PIDS+=($!)
	if wait_for "$W/kit.sock" $!; then
		export P11_KIT_SERVER_ADDRESS="unix:path=$W/kit.sock"
		KIT=(-K "$KIT_CLIENT")
	else
		KIT=(-X "p11-kit server did not start: $(first_line "$W/kit.err")")
	fi
fi

# ssh-agent allows only listed providers, by their real path.
AGENT=(-Y "openssh-client not installed")
if command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null; then
	PROVIDER=$(realpath "$MODULE")
	ssh-agent -D -a "$W/agent.sock" -P "$PROVIDER" >"$W/agent.out" 2>&1 &
	PIDS+=($!)
	printf '#!/bin/sh\nexec cat %s/pin\n' "$W" >"$W/askpass"
	chmod 0700 "$W/askpass"
	if ! wait_for "$W/agent.sock" $!; then
		AGENT=(-Y "ssh-agent did not start: $(first_line "$W/agent.out")")
	elif SSH_AUTH_SOCK="$W/agent.sock" SSH_ASKPASS="$W/askpass" \
		SSH_ASKPASS_REQUIRE=force ssh-add -s "$PROVIDER" \
		</dev/null >"$W/add.out" 2>&1; then
		AGENT=(-a "$W/agent.sock")
	else
		AGENT=(-Y "ssh-add -s failed: $(first_line "$W/add.out")")
	fi
fi

{
	echo "# custodian benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), Linux $(uname -r), SoftHSM2 $(softhsm2-util --version), ${SECS} s per measurement, audit log on $(df -T "$W" | awk 'NR==2{print $2}')."
	echo
} >"$W/results.md"
cat "$W/results.md"
"$BUILD/bench/custodian-bench" -s "$W/ct.sock" -m "$MODULE" -l bench \
	-k "$W/pin" -p "$DAEMON_PID" -t "$SECS" -c "$CONC" -r "$RSA_CONC" \
	-i "$IDLE" "${KIT[@]}" "${AGENT[@]}" | tee -a "$W/results.md"
cp "$W/results.md" "$OUT"
echo
echo "bench: written to ${OUT#"$TOP"/}"
