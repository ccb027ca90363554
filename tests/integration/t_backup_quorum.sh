#!/usr/bin/env bash
# Backup and restore under quorum: nothing is written without the custodians'
# approvals; the daemon restores onto a new token only a file it made
# itself, unchanged since the custodians approved it.
. "$(dirname "$0")/lib.sh"

printf '5678\n' >"$W/so-pin"
for t in svc bak; do init_token "$t"; done
gov=$(two_custodians) || { not_ok "custodian cards"; finish; exit 1; }
write_policy <<P
$gov
keys:
  - name: dek
    type: aes-256
    token: svc
    backup: true
    allow: { root: [wrap, unwrap] }
  - name: audit
    type: ec-p256
    token: svc
    backup: true
    allow: { root: [public_key] }
P
sed -i "s|^  audit_log: .*|&\n  audit_key: audit|" "$POLICY"
check "keygen dek" keygen dek
check "keygen audit" keygen audit
check "backup-init: the wrapping key's twin on svc" "$CTL_BIN" backup-init -p "$POLICY" \
	--from bak --to svc --from-pin-file "$W/pin" --from-so-pin-file "$W/so-pin" \
	--to-so-pin-file "$W/so-pin"
start_daemon || exit 1
blob=$(printf 'kept-secret' | ctl wrap dek -c q)

# --- backup ---
bid=$(ctl request backup "$W/b1.ctb" | awk 'NR==1{print $2}')
check "the statement names the file" grep -q "^file: $W/b1.ctb$" <(ctl show "$bid" | jq -r .statement)
check "alice approves the backup" decide approve "$bid" alice
[ -e "$W/b1.ctb" ] && not_ok "one approval must write nothing" || ok "one approval writes nothing"
check "bob approves: the backup runs" decide approve "$bid" bob
same "the backup request is done" "$(ctl show "$bid" | jq -r .state)" "done"
same "the file is 0600" "$(stat -c %a "$W/b1.ctb" 2>/dev/null)" "600"
expect_err "a backup never replaces a file" already_exists ctl request backup "$W/b1.ctb"
cp "$W/b1.ctb" "$W/flipped.ctb"
printf '\x00' | dd of="$W/flipped.ctb" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_err "a restore of an altered file is refused at once" bad_backup ctl request restore "$W/flipped.ctb"
expect_err "so is a file this service never wrote" bad_backup ctl request restore "$W/pin"

# --- the service token is lost ---
stop_daemon
softhsm2-util --delete-token --token svc >/dev/null
init_token svc
check "backup-init onto the new token" "$CTL_BIN" backup-init -p "$POLICY" \
	--from bak --to svc --from-pin-file "$W/pin" --from-so-pin-file "$W/so-pin" \
	--to-so-pin-file "$W/so-pin"
start_daemon || exit 1
check "the daemon says the audit key is missing" grep -q '"event":"audit_key_missing"' "$AUDIT"
expect_err "before the restore the key is gone" no_such_version ctl unwrap "$blob" -c q
rid=$(ctl request restore "$W/b1.ctb" | awk 'NR==1{print $2}')
check "alice approves the restore" decide approve "$rid" alice
expect_err "one approval restores nothing" no_such_version ctl unwrap "$blob" -c q
# The file changes after the custodians saw its digest: refused, nothing written.
cp "$W/b1.ctb" "$W/b1.keep"; cp "$W/flipped.ctb" "$W/b1.ctb"
expect_err "a file changed since approval is refused" bad_backup decide approve "$rid" bob
same "the failed restore is recorded" "$(ctl show "$rid" | jq -r .state)" "failed"
same "nothing was written to the token" "$(pkcs11-tool --module "$MODULE" --token-label svc --login --pin 1234 -O 2>/dev/null | grep -c 'label: *dek/v1')" "0"
cp "$W/b1.keep" "$W/b1.ctb"
rid=$(ctl request restore "$W/b1.ctb" | awk 'NR==1{print $2}')
check "alice approves again" decide approve "$rid" alice
check "bob approves: the restore runs" decide approve "$rid" bob
same "the blob from before unwraps on the new token" "$(ctl unwrap "$blob" -c q)" "kept-secret"
check "restored key is not extractable in clear" sh -c "pkcs11-tool --module $MODULE --token-label svc --login --pin 1234 -O 2>/dev/null | grep -A10 'dek/v1' | grep -q 'sensitive'"
stop_daemon
check "every step is in the audit chain, which verifies" "$CTL_BIN" audit verify "$AUDIT"
finish
