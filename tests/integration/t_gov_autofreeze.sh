#!/usr/bin/env bash
# The daemon freezes the whole service itself after too many refusals in a
# window; lifting the freeze needs the unfreeze quorum.
. "$(dirname "$0")/lib.sh"

init_token svc
gov=$(two_custodians "auto_freeze: { refusals: 3, window: 60s }") || { not_ok "custodian cards"; finish; exit 1; }
write_policy <<P
$gov
keys:
  - name: dek
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap] }
P
check "keygen dek" keygen dek
use_fake_clock +0 || exit 1
start_daemon || exit 1
blob=$(printf 'x' | ctl wrap dek -c c)
# Refusals from a peer the policy does not know (uid 65534, via group 0).
stranger() { setpriv --reuid 65534 --regid 0 --clear-groups "$CTL_BIN" -s "$SOCK" list >/dev/null 2>&1; }
stranger; stranger
set_clock +120
stranger; stranger
same "refusals spread over two windows freeze nothing" "$(ctl status | jq -r .governance.frozen)" "false"
stranger
same "the third refusal in one window freezes the service" "$(ctl status | jq -r .governance.frozen)" "true"
check "the freeze is audited" grep -q '"event":"auto_freeze"' "$AUDIT"
expect_err "a frozen service does not unwrap" frozen ctl unwrap "$blob" -c c
uid_=$(ctl request unfreeze | awk 'NR==1{print $2}')
check "alice approves the unfreeze" decide approve "$uid_" alice
expect_err "one approval does not unfreeze" frozen ctl unwrap "$blob" -c c
check "bob approves the unfreeze" decide approve "$uid_" bob
same "unfrozen, the key works again" "$(ctl unwrap "$blob" -c c)" "x"
check "the audit chain verifies" "$CTL_BIN" audit verify "$AUDIT"
finish
