#!/usr/bin/env bash
# Only keys that never left the token are served: an object placed under a
# key's label that is extractable, or was not always sensitive, is refused.
. "$(dirname "$0")/lib.sh"

init_token svc
write_policy <<P
keys:
  - name: vault
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap] }
  - name: fresh
    type: aes-256
    token: svc
    allow: { root: [wrap] }
P
check "keygen vault/v1" keygen vault
start_daemon || exit 1
check "serves the generated key" sh -c "printf x | '$CTL_BIN' -s '$SOCK' wrap vault"
# A key the policy names but nobody generated yet: the daemon starts, and says so.
expect_err "a key with no version yet" no_such_version sh -c "printf x | '$CTL_BIN' -s '$SOCK' wrap fresh"
stop_daemon

p11() { pkcs11-tool --module "$MODULE" --token-label svc --login --pin 1234 "$@" >/dev/null 2>&1; }
# An extractable AES key under the next version's label.
check "place an extractable key as vault/v2" p11 --keygen --key-type AES:32 --label vault/v2 --extractable --sensitive
if start_daemon 2>/dev/null; then not_ok "daemon must refuse an extractable key version"; else
	ok "daemon refuses to start"; fi
check "and names the object" grep -q "vault/v2 on the token is extractable or was not always sensitive: refused" "$W/daemon.err"
check "keygen skips past it" test "$(keygen vault)" = "vault/v3"
check "remove the extractable object" p11 --delete-object --type secrkey --label vault/v2
# A key that was created readable (not sensitive) stays suspect for good.
check "place a non-sensitive key as vault/v2" p11 --keygen --key-type AES:32 --label vault/v2
if start_daemon 2>/dev/null; then not_ok "daemon must refuse a never-sensitive key"; else
	ok "daemon refuses a key that was not always sensitive"; fi
check "remove it" p11 --delete-object --type secrkey --label vault/v2
start_daemon || exit 1
check "with only generated keys it serves again (v3 current)" sh -c "printf x | '$CTL_BIN' -s '$SOCK' wrap vault"
same "current version is v3" "$(ctl list | awk '$1=="vault"{print $4}')" "v3"
finish
