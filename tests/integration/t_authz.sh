#!/usr/bin/env bash
# Authorisation by peer credentials: each client gets exactly its rights.
. "$(dirname "$0")/lib.sh"

init_token svc
write_policy <<P
  - name: verifier
    uid: 65534
keys:
  - name: signing
    type: ec-p256
    token: svc
    allow:
      root: [sign, verify]
      verifier: [verify]
  - name: vault
    type: aes-256
    token: svc
    allow: { root: [wrap] }
P
check "keygen signing" keygen signing
check "keygen vault" keygen vault
start_daemon || exit 1
# The socket is 0660 root:root: other users reach it through group 0 here.
same "socket mode is 0660" "$(stat -c %a "$SOCK")" "660"

as() { # UID GID CMD...: run a client under other credentials
	local u=$1 g=$2; shift 2
	setpriv --reuid "$u" --regid "$g" --clear-groups "$@"
}
printf 'msg' >"$W/msg"; chmod 644 "$W/msg"
sig=$(ctl sign signing -i "$W/msg")
check "verifier (uid 65534) may verify" as 65534 0 "$CTL_BIN" -s "$SOCK" verify signing "$sig" -i "$W/msg"
expect_err "verifier may not sign" not_authorized as 65534 0 "$CTL_BIN" -s "$SOCK" sign signing -i "$W/msg"
expect_err "unknown uid 4242 is refused" not_authorized as 4242 0 "$CTL_BIN" -s "$SOCK" sign signing -i "$W/msg"
expect_err "unknown uid may not even list" not_authorized as 4242 0 "$CTL_BIN" -s "$SOCK" list
same "verifier lists only what it may use" "$(as 65534 0 "$CTL_BIN" -s "$SOCK" list | awk 'NR>1{print $1":"$5}')" "signing:verify"
expect_err "root may wrap but not unwrap" not_authorized ctl unwrap "$(printf x | ctl wrap vault)"
expect_err "no grant for sign on vault" not_authorized ctl sign vault -i "$W/msg"
grep -q '"uid":4242,.*"op":"sign".*"result":"not_authorized"' "$AUDIT" &&
	ok "refusal of uid 4242 is audited" || not_ok "refusal of uid 4242 is audited"
finish
