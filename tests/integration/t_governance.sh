#!/usr/bin/env bash
# m-of-n governance: rotation, revocation, policy change, freeze, all with
# approvals signed on the custodians' own cards (one SoftHSM2 token each).
. "$(dirname "$0")/lib.sh"

init_token svc
for c in alice bob mallory dave; do make_card "$c" || { not_ok "card $c"; finish; exit 1; }; done
make_card carol rsa:2048 || { not_ok "card carol"; finish; exit 1; }

# dave's role ends in 10 days (the test moves the daemon's clock past it).
DAVE_UNTIL=$(date -u -d '+10 days' +%Y-%m-%dT%H:%M:%SZ)
governed_policy() {
	write_policy <<P
custodians:
  - { name: alice, public_key: $W/alice.pem, roles: [custodian, security-officer], uid: 0 }
  - { name: bob, public_key: $W/bob.pem, roles: [custodian] }
  - { name: carol, public_key: $W/carol.pem, roles: [custodian] }
  - { name: mallory, public_key: $W/mallory.pem, roles: [custodian] }
  - { name: dave, public_key: $W/dave.pem, roles: [custodian], until: "$DAVE_UNTIL" }
governance:
  quorum: { m: 2, of: [alice, bob, carol, dave] }
  approval_ttl: 1h
keys:
  - name: dek
    type: aes-256
    token: svc
    rotate_every: 90d
    destroy_after: 1d
    allow: { root: [wrap, unwrap, datakey, rewrap] }
  - name: sig
    type: ec-p256
    token: svc
    allow: { root: [sign, verify] }
$(cat)
P
}
governed_policy </dev/null
check "keygen dek v1" keygen dek
check "keygen sig v1" keygen sig
use_fake_clock +0 || exit 1
start_daemon || exit 1

st=$(ctl status)
same "status: policy changes are governed" \
	"$(jq -r .governance.policy_governed <<<"$st")" "true"
grep -q '"event":"version_adopted","key":"dek"' "$AUDIT" && ok "first start adopts v1" || not_ok "first start adopts v1"

# --- rotation, 2 of 3 ---
blob1=$(printf 'secret-one' | ctl wrap dek -c ctx)
id=$(ctl request rotate dek | awk 'NR==1{print $2}')
[ -n "$id" ] && ok "officer opens a rotation request" || not_ok "officer opens a rotation request"
check "statement names the new version" grep -q "^version: 2$" <(ctl show "$id" | jq -r .statement)
check "alice approves" decide approve "$id" alice
same "one approval does nothing" "$(ctl list | awk '$1=="dek"{print $4}')" "v1"
expect_err "approving twice counts once" approval_refused decide approve "$id" alice
expect_err "a custodian outside the quorum is refused" approval_refused decide approve "$id" mallory
expect_err "an unknown custodian is refused" approval_refused \
	ctl approve "$id" --custodian nobody --pkcs11-module "$MODULE" --token bob-card --key card --pin-file "$W/pin"
# bob's signature over a changed statement: signed by his card, sent raw.
ctl show "$id" | jq -j .statement | sed 's/^version: 2$/version: 3/' >"$W/forged"
printf 'decision: approve\n' >>"$W/forged"
openssl dgst -sha256 -binary "$W/forged" >"$W/forged.dg"
check "bob's card signs the changed statement" pkcs11-tool --module "$MODULE" \
	--token-label bob-card --login --pin 1234 --sign --mechanism ECDSA \
	--signature-format openssl --label card -i "$W/forged.dg" -o "$W/forged.sig"
check "that signature is bob's" openssl dgst -sha256 -verify "$W/bob.pem" \
	-signature "$W/forged.sig" "$W/forged"
fsig=$(base64 -w0 "$W/forged.sig")
out=$(raw "b'{\"v\":1,\"op\":\"gov_approve\",\"request\":\"$id\",\"custodian\":\"bob\",\"decision\":\"approve\",\"signature\":\"$fsig\"}\n'")
case $out in *approval_refused*) ok "a signature over a changed statement is refused";; *) not_ok "changed statement: $out";; esac
check "carol (RSA card) approves: quorum" decide approve "$id" carol
same "rotation ran: v2 is current" "$(ctl list | awk '$1=="dek"{print $4}')" "v2"
same "request is done" "$(ctl show "$id" | jq -r .state)" "done"
expect_err "a done request takes no more approvals" request_closed decide approve "$id" bob
pkcs11-tool --module "$MODULE" --token-label svc --login --pin 1234 -O 2>/dev/null | grep -A8 'dek/v2' >"$W/v2obj"
check "v2 is sensitive and never extractable" grep -q 'always sensitive, never extractable, local' "$W/v2obj"
same "v1 blob still unwraps" "$(ctl unwrap "$blob1" -c ctx)" "secret-one"
blob2=$(ctl rewrap "$blob1" -c ctx)
same "rewrap moves the blob to v2" "$(ctl unwrap "$blob2" -c ctx)" "secret-one"
python3 - "$blob2" <<'PY' && ok "rewrapped blob names v2" || not_ok "rewrapped blob names v2"
import base64, struct, sys
b = base64.b64decode(sys.argv[1]); n = b[5]
sys.exit(0 if struct.unpack(">I", b[6 + n:10 + n])[0] == 2 else 1)
PY

# --- revocation ---
rid=$(ctl request revoke dek 1 | awk 'NR==1{print $2}')
check "bob approves revoking v1" decide approve "$rid" bob
same "v1 blob unwraps before the quorum" "$(ctl unwrap "$blob1" -c ctx)" "secret-one"
check "dave (role until +10d) approves: revoked" decide approve "$rid" dave
expect_err "a revoked version no longer unwraps" key_revoked ctl unwrap "$blob1" -c ctx
same "the current version still unwraps" "$(ctl unwrap "$blob2" -c ctx)" "secret-one"
check "the v1 object is still on the token (grace period)" \
	sh -c "pkcs11-tool --module $MODULE --token-label svc --login --pin 1234 -O 2>/dev/null | grep -q 'dek/v1'"
set_clock +2d
wait_for "after destroy_after the v1 object is destroyed" \
	sh -c "! pkcs11-tool --module $MODULE --token-label svc --login --pin 1234 -O 2>/dev/null | grep -q 'dek/v1'"
check "destruction is audited" grep -q '"event":"version_destroyed","key":"dek","version":1' "$AUDIT"

# --- deny and expiry ---
did=$(ctl request rotate sig | awk 'NR==1{print $2}')
check "bob denies" decide deny "$did" bob
same "a denied request is closed" "$(ctl show "$did" | jq -r .state)" "denied"
expect_err "no approval after a denial" request_closed decide approve "$did" alice
eid=$(ctl request rotate sig | awk 'NR==1{print $2}')
check "alice approves the new one" decide approve "$eid" alice
set_clock +3d
expect_err "an expired request takes no approval" request_closed decide approve "$eid" bob
same "expired request shows expired" "$(ctl show "$eid" | jq -r .state)" "expired"

# --- scheduled rotation ---
set_clock +92d
wait_for "the daemon opens the due rotation itself" \
	sh -c "$CTL_BIN -s $SOCK requests | jq -e '.[] | select(.key==\"dek\" and .action==\"rotate\" and (.by|startswith(\"daemon\")))'"
same "due lists dek overdue" "$(ctl due | jq -r '.[] | select(.key=="dek") | .overdue')" "true"
same "status shows it overdue" "$(ctl status | jq -r '.governance.overdue[0]')" "dek"
sid=$(ctl requests | jq -r '.[] | select(.key=="dek") | .request')
expect_err "a custodian whose role ended cannot approve" grant_expired decide approve "$sid" dave
check "custodians only approve: alice" decide approve "$sid" alice
check "custodians only approve: bob" decide approve "$sid" bob
same "scheduled rotation made v3" "$(ctl list | awk '$1=="dek"{print $4}')" "v3"
same "no longer overdue" "$(ctl due | jq -r '.[] | select(.key=="dek") | .overdue')" "false"

# --- policy change under quorum ---
cp "$POLICY" "$W/policy.orig"
governed_policy <<P
  - name: extra
    type: ec-p256
    token: svc
    allow: { root: [sign] }
P
cp "$POLICY" "$W/policy.new"
keygen extra >/dev/null
kill -HUP "$DAEMON_PID"
wait_for "an unapproved edit is refused on reload" \
	grep -q '"event":"reload","result":"policy_error"' "$AUDIT"
expect_err "the edited policy grants nothing" no_such_key ctl sign extra -i /dev/null
pid_=$(ctl request policy "$W/policy.new" | awk 'NR==1{print $2}')
check "bob approves the new policy" decide approve "$pid_" bob
check "carol approves the new policy" decide approve "$pid_" carol
kill -HUP "$DAEMON_PID"
wait_for "the approved policy applies on reload" sh -c "$CTL_BIN -s $SOCK sign extra -i /dev/null"
# A custodian's key file is part of the policy: swapping it is an edit.
cp "$W/bob.pem" "$W/bob.pem.orig"; cp "$W/mallory.pem" "$W/bob.pem"
n_refused=$(grep -c '"event":"reload","result":"policy_error"' "$AUDIT")
kill -HUP "$DAEMON_PID"
wait_for "a swapped custodian key file is refused on reload" \
	sh -c "[ \$(grep -c '\"event\":\"reload\",\"result\":\"policy_error\"' $AUDIT) -gt $n_refused ]"
cp "$W/bob.pem.orig" "$W/bob.pem"

# --- freeze by one custodian, unfreeze by the quorum ---
check "carol freezes dek alone" ctl freeze dek --custodian carol --pkcs11-module "$MODULE" \
	--token carol-card --key card --pin-file "$W/pin"
expect_err "a frozen key does not unwrap" frozen ctl unwrap "$blob2" -c ctx
same "other keys still work" "$(ctl sign sig -i /dev/null >/dev/null && echo yes)" "yes"
uid_=$(ctl request unfreeze dek | awk 'NR==1{print $2}')
check "alice approves unfreeze" decide approve "$uid_" alice
expect_err "one approval does not unfreeze" frozen ctl unwrap "$blob2" -c ctx
check "bob approves unfreeze" decide approve "$uid_" bob
same "unfrozen key works" "$(ctl unwrap "$blob2" -c ctx)" "secret-one"

# --- only officers open requests ---
out=$(setpriv --reuid 65534 --regid 0 --clear-groups "$CTL_BIN" -s "$SOCK" request rotate sig 2>&1)
case $out in *not_authorized*) ok "a non-officer cannot open requests";; *) not_ok "non-officer: $out";; esac

# --- state survives restart ---
stop_daemon
start_daemon || exit 1
same "after restart v3 is current" "$(ctl list | awk '$1=="dek"{print $4}')" "v3"
expect_err "after restart v1 stays gone" no_such_version ctl unwrap "$blob1" -c ctx
same "after restart the done request is done" "$(ctl show "$id" | jq -r .state)" "done"
stop_daemon
cp "$W/policy.orig" "$POLICY"
if "$CUSTODIAND" -p "$POLICY" 2>"$W/refused.err"; then not_ok "an unapproved policy at start must be refused"
else grep -q 'is not approved' "$W/refused.err" && ok "an unapproved policy is refused at start" || not_ok "start refusal: $(cat "$W/refused.err")"; fi
cp "$W/policy.new" "$POLICY"
check "every step is in the audit chain, which verifies" "$CTL_BIN" audit verify "$AUDIT"
for e in request_opened approved denied request_done version_destroyed rotation_due policy_in_force; do
	grep -q "\"event\":\"$e\"" "$AUDIT" && ok "audit has $e" || not_ok "audit has $e"
done
finish
