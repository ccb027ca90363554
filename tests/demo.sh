#!/usr/bin/env bash
# make demo: a SoftHSM2 token, a demo policy and keys, the daemon, and two
# round trips through its socket.  Everything lives in build/demo.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B="$TOP/${BUILD:-build}"
D="$B/demo"
CTL="$B/custodianctl"
MODULE=/usr/lib/softhsm/libsofthsm2.so

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[ -d "$D" ] && [ -f "$D/pid" ] && kill "$(cat "$D/pid")" 2>/dev/null || true
rm -rf "$D"
mkdir -p "$D/tokens"
export SOFTHSM2_CONF="$D/softhsm2.conf"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$D" >"$SOFTHSM2_CONF"
(umask 077; printf 'demo-pin-1234\n' >"$D/pin")

step "A SoftHSM2 token in $D/tokens"
run softhsm2-util --init-token --free --label custodian-demo --pin demo-pin-1234 --so-pin demo-so-5678 >/dev/null
echo "token 'custodian-demo' initialised"

step "The demo policy ($D/policy.yaml)"
cat >"$D/policy.yaml" <<P
version: 1
service:
  socket: custodian.sock        # relative to this file
  audit_log: audit.log
  workers: 2
  allow_root: true              # runs as whoever starts the demo
tokens:
  - name: service
    module: $MODULE
    label: custodian-demo
    pin_file: pin
clients:
  - name: demo-user
    uid: $(id -u)
keys:
  - name: payments-signing
    type: ec-p256
    token: service
    allow: { demo-user: [sign, verify, public_key] }
  - name: customer-data
    type: aes-256
    token: service
    allow: { demo-user: [wrap, unwrap, datakey, rewrap] }
P
cat "$D/policy.yaml"

step "Keys generated on the token (sensitive, never extractable)"
run "$CTL" keygen -p "$D/policy.yaml" payments-signing
run "$CTL" keygen -p "$D/policy.yaml" customer-data

step "Start custodiand"
"$B/custodiand" -p "$D/policy.yaml" >"$D/daemon.log" 2>&1 &
echo $! >"$D/pid"
trap 'kill "$(cat "$D/pid" 2>/dev/null)" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$D/custodian.sock" ] && break; sleep 0.05; done
export CUSTODIAN_SOCKET="$D/custodian.sock"
cat "$D/daemon.log"
run "$CTL" list

step "Sign and verify"
printf 'Pay 100 EUR to ACME Ltd, invoice 2026-117' >"$D/invoice.txt"
sig=$("$CTL" sign payments-signing -i "$D/invoice.txt")
echo "\$ custodianctl sign payments-signing -i invoice.txt"
echo "$sig"
run "$CTL" verify payments-signing "$sig" -i "$D/invoice.txt"
printf 'Pay 900 EUR to ACME Ltd, invoice 2026-117' >"$D/forged.txt"
echo "\$ custodianctl verify payments-signing <sig> -i forged.txt"
"$CTL" verify payments-signing "$sig" -i "$D/forged.txt" || true

step "Envelope encryption: a data key and its wrapped form, bound to a context"
echo '$ custodianctl datakey customer-data -c customer=4711'
"$CTL" datakey customer-data -c "customer=4711" | tee "$D/datakey.json"
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blob"])' "$D/datakey.json")
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plaintext"])' "$D/datakey.json")
echo "\$ custodianctl unwrap <blob> -c customer=4711 -b"
back=$("$CTL" unwrap "$blob" -c "customer=4711" -b)
echo "$back"
[ "$back" = "$key" ] && echo "round trip: the unwrapped key equals the data key"
echo "\$ custodianctl unwrap <blob> -c customer=4712 -b"
"$CTL" unwrap "$blob" -c "customer=4712" -b || true

step "The audit log ($D/audit.log)"
tail -n 3 "$D/audit.log"
run "$CTL" audit verify "$D/audit.log"

step "Stop custodiand"
kill "$(cat "$D/pid")"; wait 2>/dev/null || true; rm -f "$D/pid"; trap - EXIT
echo "stopped; the token, policy and audit log stay in $D"
