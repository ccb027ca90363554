#!/usr/bin/env bash
# Expiring grants: a right ends when its time comes, while the daemon runs.
# The daemon's clock is libfaketime's; the test moves it (no sleeping, and
# no reload: the policy is read once).
. "$(dirname "$0")/lib.sh"

init_token svc
# root (uid 0) is matched by two entries: "root" and "staff" (uid 0 in
# group 0).  Other users reach the 0660 root:root socket through group 0.
write_policy <<P
  - name: staff
    uid: 0
    gid: 0
  - name: auditor
    uid: 65534
    engagement: audit-2030
engagements:
  - name: audit-2030
    until: 2030-01-10T00:00:00Z
    description: external audit of the signing key
keys:
  - name: signing
    type: ec-p256
    token: svc
    allow:
      root: {ops: [sign], until: 2030-01-01T00:00:00Z}
      staff: [verify]
      auditor: [verify]
  - name: vault
    type: aes-256
    token: svc
    allow:
      root:
        ops: [wrap, unwrap]
        engagement: audit-2030
P
check "keygen signing" keygen signing
check "keygen vault" keygen vault
use_fake_clock "2029-12-31 23:59:59" || exit 1
start_daemon || exit 1

as() { # UID GID CMD...: run a client under other credentials
	local u=$1 g=$2; shift 2
	setpriv --reuid "$u" --regid "$g" --clear-groups "$@"
}
auditor() { as 65534 0 "$CTL_BIN" -s "$SOCK" "$@"; }
ops_on() { ctl list | awk -v k="$1" 'NR>1 && $1==k {print $5}'; }
printf 'msg' >"$W/msg"; chmod 644 "$W/msg"

# One second before root's `until`.
check "daemon runs on the fake clock" grep -q '"time":"2029-12-31T23:59:59' "$AUDIT"
sig=$(ctl sign signing -i "$W/msg") && ok "1 s before the end: root may sign" ||
	not_ok "1 s before the end: root may sign"
same "1 s before: list shows sign and verify" "$(ops_on signing)" "sign,verify"

# At the instant itself the grant is over.
set_clock "2030-01-01 00:00:00"
expect_err "at the end: sign is refused with grant_expired" grant_expired \
	ctl sign signing -i "$W/msg"
grep -q 'the grant to client "root" expired at 2030-01-01T00:00:00Z' "$W/err" &&
	ok "the refusal names the grant and when it ended" ||
	not_ok "the refusal names the grant and when it ended: $(cat "$W/err")"
check "verify still held through the unexpired second entry" \
	ctl verify signing "$sig" -i "$W/msg"
same "list no longer shows sign" "$(ops_on signing)" "verify"
expect_err "a right never granted stays not_authorized" not_authorized \
	ctl public-key signing
set_clock "2030-01-01 00:00:01"
expect_err "1 s after: sign still refused" grant_expired ctl sign signing -i "$W/msg"

# An engagement ends a whole client, and a grant tied to it directly.
set_clock "2030-01-09 23:59:59"
check "auditor may verify on the engagement's last second" \
	auditor verify signing "$sig" -i "$W/msg"
check "auditor may ask for status" auditor status
blob=$(printf 'secret' | ctl wrap vault) && ok "root may wrap during the engagement" ||
	not_ok "root may wrap during the engagement"
set_clock "2030-01-10 00:00:00"
expect_err "engagement over: auditor's verify is grant_expired" grant_expired \
	auditor verify signing "$sig" -i "$W/msg"
grep -q 'client "auditor" expired at 2030-01-10T00:00:00Z with engagement "audit-2030"' "$W/err" &&
	ok "the refusal names the engagement" || not_ok "the refusal names the engagement: $(cat "$W/err")"
expect_err "engagement over: auditor is no longer a client" grant_expired auditor status
expect_err "engagement over: root's unwrap is grant_expired" grant_expired ctl unwrap "$blob"
same "root's list shows no vault rights" "$(ops_on vault)" ""
expect_err "a stranger is still not_authorized" not_authorized as 4242 0 "$CTL_BIN" -s "$SOCK" status

# The refusals are in the audit log, at the fake time, and the chain holds.
grep -q '"time":"2030-01-01T00:00:00.*"op":"sign".*"result":"grant_expired".*expired at 2030-01-01T00:00:00Z' "$AUDIT" &&
	ok "the sign refusal is audited with the grant and its end" ||
	not_ok "the sign refusal is audited with the grant and its end"
grep -q '"uid":65534,.*"op":"verify".*"result":"grant_expired".*engagement' "$AUDIT" &&
	ok "the auditor's refusal is audited" || not_ok "the auditor's refusal is audited"
same "no reload happened" "$(grep -c '"event":"reload"' "$AUDIT")" "0"
stop_daemon
check "audit verify: chain intact" "$CTL_BIN" audit verify "$AUDIT"

# The access review, offline from the policy file.
review() { "$CTL_BIN" access -p "$POLICY" "$@"; }
row() { awk -v k="$1" -v c="$2" '$1==k && $2==c {print $6}'; }
out=$(review --now 2029-12-28T00:00:00Z)
same "4 days before: root's sign grant is flagged" "$(row signing root <<<"$out")" "EXPIRING"
same "13 days before the engagement ends: not flagged" "$(row vault root <<<"$out")" "ok"
same "a grant without end is ok" "$(row signing staff <<<"$out")" "ok"
same "summary line" "$(tail -1 <<<"$out")" \
	"4 grants at 2029-12-28T00:00:00Z: 0 expired, 1 expiring within 7 days"
out=$(review --now 2029-12-28T00:00:00Z --within 14)
same "--within 14 flags the engagement too" "$(row vault root <<<"$out")" "EXPIRING"
out=$(review --now 2030-01-02T00:00:00Z)
same "after the end: flagged as expired" "$(row signing root <<<"$out")" "EXPIRED"
same "the engagement's grant is named" \
	"$(awk '$1=="vault" {print $5, $7}' <<<"$out")" "2030-01-10T00:00:00Z audit-2030"
review --now 2030-01-02T00:00:00Z --within 8 --json >"$W/review.json"
same "--json: status, end and engagement of each grant (8 days ahead: flagged)" "$(python3 - "$W/review.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["now"], r["within_days"], ";".join(
    "%s/%s:%s:%s:%s:%s" % (g["key"], g["client"], ",".join(g["operations"]),
                           g["until"], g["engagement"], g["status"])
    for g in r["grants"]))
PY
)" "2030-01-02T00:00:00Z 8 signing/root:sign:2030-01-01T00:00:00Z:None:expired;signing/staff:verify:None:None:active;signing/auditor:verify:2030-01-10T00:00:00Z:audit-2030:expiring;vault/root:wrap,unwrap:2030-01-10T00:00:00Z:audit-2030:expiring"
expect_err "--now must be RFC 3339" "--now" review --now "2030-01-02 00:00:00"
finish
