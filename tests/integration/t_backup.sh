#!/usr/bin/env bash
# Backup and restore: the wrapping key ceremony, a signed backup file, a
# restore onto a new token after the service token is gone (blobs and
# signatures made before still work), tampered files refused with nothing
# written, a restore failing or killed midway, and the drill.
. "$(dirname "$0")/lib.sh"

# The policy names the module through a link, so that the fault-injecting
# module can stand in without changing the policy (and its digest).
SOFTHSM=$MODULE
ln -s "$SOFTHSM" "$W/module.so"
MODULE="$W/module.so"
printf '5678\n' >"$W/so-pin"

for t in svc bak scratch; do init_token "$t"; done
write_policy <<P
keys:
  - name: sig
    type: ec-p256
    token: svc
    backup: true
    allow: { root: [sign, verify, public_key] }
  - name: aes
    type: aes-256
    token: svc
    backup: true
    allow: { root: [wrap, unwrap] }
  - name: rsa1
    type: rsa-3072
    token: svc
    oaep_hash: sha1
    backup: true
    allow: { root: [wrap, unwrap, sign, verify] }
  - name: id
    type: ec-p256
    token: svc
    allow: { root: [public_key] }
P
for k in sig aes rsa1 id; do check "keygen $k" keygen "$k"; done

# Every object on a token, one "class label" line each, sorted (through
# SoftHSM2 itself: the link may point at the fault injector).
objects() { # LABEL
	pkcs11-tool --module "$SOFTHSM" --token-label "$1" --login --pin 1234 \
		--list-objects 2>/dev/null | awk '
		/^(Private|Public|Secret) Key Object/ { cls = $1 }
		/^  label:/ { sub(/^  label: */, ""); print cls, $0 }' | sort
}
backup_init() { # FROM TO
	"$CTL_BIN" backup-init -p "$POLICY" --from "$1" --to "$2" \
		--from-pin-file "$W/pin" --from-so-pin-file "$W/so-pin" \
		--to-so-pin-file "$W/so-pin"
}
restore() { # FILE
	"$CTL_BIN" restore -p "$POLICY" --verify-key "$W/id.pem" "$1"
}

check "backup-init: bak makes the wrapping key, svc gets its trusted twin" \
	backup_init bak svc
grep -q '^created' "$W/out" && ok "the key was created on bak" || not_ok "not created"
same "the twin on svc is a public secret key object" \
	"$(objects svc | grep -c '^Secret custodian-backup-wrap$')" "1"
expect_twice=$(backup_init bak svc 2>&1)
case $expect_twice in *"already holds"*) ok "backup-init refuses a token that has a twin" ;;
	*) not_ok "second backup-init: $expect_twice" ;; esac

# Work done before the backup.
start_daemon || exit 1
head -c 64 /dev/urandom >"$W/secret"
printf 'the message' >"$W/msg"
blob_aes=$(ctl wrap aes -c ctx -i "$W/secret")
blob_rsa=$(ctl wrap rsa1 -c ctx -i "$W/secret")
sig1=$(ctl sign sig -i "$W/msg")
# A second version: v1 is retired (verifies, no longer signs).
stop_daemon
check "keygen sig v2" keygen sig
start_daemon || exit 1
sig2=$(ctl sign sig -i "$W/msg")
sig_rsa=$(ctl sign rsa1 -i "$W/msg")
ctl public-key id >"$W/id.pem"
stop_daemon

check "backup -p POLICY --sign-key id" "$CTL_BIN" backup -p "$POLICY" \
	--sign-key id -o "$W/backup.ctb"
grep -q '4 versions' "$W/out" && ok "4 backup-capable versions written" ||
	not_ok "versions: $(cat "$W/out")"
same "backup file mode is 0600" "$(stat -c %a "$W/backup.ctb")" "600"
same "no temporary file left" "$(ls "$W" | grep -c 'backup.ctb.')" "0"

# The service token is lost; a new one (same label) gets the twin.
softhsm2-util --delete-token --token svc >/dev/null
init_token svc
check "backup-init onto the new service token" backup_init bak svc
grep -q '^used' "$W/out" && ok "the existing wrapping key was used" || not_ok "made anew"
twin_only=$(objects svc)

# Tampered files: one flipped byte at the start, header, entries, digest,
# signature and last byte.  Refused, and nothing written.
size=$(stat -c %s "$W/backup.ctb")
for off in 0 9 45 100 $((size / 2)) $((size - 80)) $((size - 3)) $((size - 1)); do
	python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[int(sys.argv[3])]^=1; open(sys.argv[2],"wb").write(b)' \
		"$W/backup.ctb" "$W/bad.ctb" "$off"
	if restore "$W/bad.ctb" >"$W/out" 2>"$W/err"; then
		not_ok "byte $off flipped: restored"
	elif grep -q 'bad_backup' "$W/err" && [ "$(objects svc)" = "$twin_only" ]; then
		ok "byte $off flipped: refused ($(sed 's/.*bad_backup: //' "$W/err" | cut -c1-60)), token untouched"
	else
		not_ok "byte $off flipped"; sed 's/^/#   /' "$W/err"
	fi
done
head -c 100 "$W/backup.ctb" >"$W/short.ctb"
expect_restore_fails() { # DESC FILE
	if restore "$2" >"$W/out" 2>"$W/err"; then not_ok "$1: restored"
	elif [ "$(objects svc)" = "$twin_only" ]; then ok "$1: refused, token untouched"
	else not_ok "$1: token changed"; objects svc | sed "s/^/#   /"; sed "s/^/#   /" "$W/err"; fi
}
expect_restore_fails "truncated file" "$W/short.ctb"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout >"$W/other.pem" 2>/dev/null
if "$CTL_BIN" restore -p "$POLICY" --verify-key "$W/other.pem" "$W/backup.ctb" 2>"$W/err"; then
	not_ok "file verified with another key"
elif grep -q 'signature does not verify' "$W/err"; then ok "another verifying key: refused"
else not_ok "another key: $(cat "$W/err")"; fi

# A restore that fails midway (the token refuses the first public key, after
# two keys were unwrapped) leaves nothing behind.
use_faults || { finish; exit 1; }
ln -sf "$FAULT_MODULE" "$W/module.so"
export FAULTP11_MODULE="$SOFTHSM"
faults "C_CreateObject fail CKR_DEVICE_ERROR always"
expect_restore_fails "C_CreateObject fails midway" "$W/backup.ctb"
same "two keys were unwrapped before the failure" "$(grep -c '^C_UnwrapKey CKR_OK' "$FAULTP11_LOG")" "2"

# kill -9 midway: the pending objects are recognisable, never served, and
# the next restore removes them.
: >"$FAULTP11_LOG"
faults "C_CreateObject delay 20000"
restore "$W/backup.ctb" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
	[ "$(grep -c '^C_UnwrapKey CKR_OK' "$FAULTP11_LOG")" -ge 2 ] && break
	sleep 0.05
done
kill -9 "$pid"; wait "$pid" 2>/dev/null
faults
ln -sf "$SOFTHSM" "$W/module.so"
left=$(objects svc | grep -v custodian-backup-wrap)
same "after kill -9: only pending objects are left" \
	"$(printf '%s\n' "$left" | grep -vc 'custodian-restoring/')" "0"
same "after kill -9: two pending keys" "$(printf '%s\n' "$left" | grep -c 'custodian-restoring/')" "2"

check "restore after the crash" restore "$W/backup.ctb"
same "restore lists every version" "$(cut -d' ' -f1 "$W/out" | tr '\n' ' ')" "aes/v1 rsa1/v1 sig/v1 sig/v2 "
same "no pending objects remain" "$(objects svc | grep -c 'custodian-restoring/')" "0"
same "each restored pair has both halves" \
	"$(objects svc | grep -c -E '^(Private|Public) (rsa1/v1|sig/v1|sig/v2)$')" "6"
check "a second restore of the same file is a no-op" restore "$W/backup.ctb"
grep -q 'already on the token' "$W/out" && ok "it says so" || not_ok "no 'already'"

# The daemon on the new token: everything made before the backup works.
start_daemon || exit 1
ctl unwrap "$blob_aes" -c ctx >"$W/back"
check "AES blob from before unwraps" cmp "$W/secret" "$W/back"
ctl unwrap "$blob_rsa" -c ctx >"$W/back"
check "RSA blob from before unwraps" cmp "$W/secret" "$W/back"
same "sig v1 signature from before verifies" "$(ctl verify sig "$sig1" -v 1 -i "$W/msg")" "valid"
same "sig v2 signature from before verifies" "$(ctl verify sig "$sig2" -i "$W/msg")" "valid"
same "rsa1 signature from before verifies" "$(ctl verify rsa1 "$sig_rsa" -i "$W/msg")" "valid"
new=$(ctl sign sig -i "$W/msg")
same "restored key signs anew" "$(ctl verify sig "$new" -i "$W/msg")" "valid"
stop_daemon

# The drill, on a scratch token holding the twin.
check "backup-init onto the scratch token" backup_init bak scratch
before=$(objects scratch)
check "dr-drill" "$CTL_BIN" dr-drill "$W/backup.ctb" -p "$POLICY" \
	--scratch-token scratch --verify-key "$W/id.pem" --pin-file "$W/pin"
grep -q '^drill passed: 4 of 4' "$W/out" && ok "drill report: 4 of 4 usable" ||
	{ not_ok "drill report"; sed 's/^/#   /' "$W/out"; }
same "every version signs in the drill" "$(grep -c 'sign ok' "$W/out")" "3"
same "scratch token is as before the drill" "$(objects scratch)" "$before"
finish
