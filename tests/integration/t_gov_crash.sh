#!/usr/bin/env bash
# kill -9 at each step of a rotation, then restart: the daemon completes
# the rotation, exactly once, with the token and the state agreeing.  The
# service token sits behind the fault-injecting module, whose delays hold
# the daemon at the step to crash in.
. "$(dirname "$0")/lib.sh"

use_faults || { finish; exit 1; }
MODULE=$FAULT_MODULE

init_token svc
# The custodians' cards are plain SoftHSM2 tokens.
MODULE_CARDS=/usr/lib/softhsm/libsofthsm2.so
gov=$(MODULE=$MODULE_CARDS two_custodians) || { not_ok "custodian cards"; finish; exit 1; }
write_policy <<P
$gov
keys:
  - name: dek
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap] }
  - name: sig
    type: ec-p256
    token: svc
    allow: { root: [sign] }
P
check "keygen dek v1" keygen dek
check "keygen sig v1" keygen sig
start_daemon || exit 1
blob=$(printf 'kept' | ctl wrap dek -c c)

card() { MODULE=$MODULE_CARDS decide approve "$1" "$2"; }
objects() { # LABEL: how many token objects carry it
	pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label svc --login \
		--pin 1234 -O 2>/dev/null | grep -c "label: *$1\$"
}
crash() { kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=; }

# rotate_and_crash KEY FAULT WAIT_CMD: open and approve a rotation while the
# fault holds the daemon, crash it once WAIT_CMD succeeds, restart.  The
# request's id is left in $id (no subshell: the daemon is our child).
rotate_and_crash() {
	local key=$1 fault=$2; shift 2
	id=$(ctl request rotate "$key" | awk 'NR==1{print $2}')
	card "$id" alice >/dev/null
	: >"$W/p11.log"
	faults "$fault"
	CUSTODIAN_TIMEOUT=20 card "$id" bob >/dev/null 2>&1 &
	local bg=$! i
	for i in $(seq 200); do "$@" && break; sleep 0.05; done
	crash
	wait "$bg" 2>/dev/null
	faults ""
	start_daemon
}

# 1. Between the journal's "begin" and the key generation.
rotate_and_crash dek "C_GenerateKey delay 5000" grep -q '"t":"begin"' "$W/state.journal" || exit 1
# The resumed generation runs on a worker once the daemon serves.
wait_for "crash before generation: restart completes the rotation" \
	sh -c "$CTL_BIN -s $SOCK show $id | jq -e '.state == \"done\"'"
same "v2 is current" "$(ctl list | awk '$1=="dek"{print $4}')" "v2"
same "exactly one dek/v2 object on the token" "$(objects dek/v2)" "1"
check "the resumed rotation is audited" grep -q "\"event\":\"request_resumed\",\"request\":\"$id\"" "$AUDIT"

# 2. After the token made the key, before the journal says done.
rotate_and_crash dek "C_GenerateKey after 5000" grep -q 'C_GenerateKey CKR_OK' "$W/p11.log" || exit 1
same "crash after generation: the made key is taken, not made again" "$(ctl show "$id" | jq -r .state)" "done"
same "v3 is current" "$(ctl list | awk '$1=="dek"{print $4}')" "v3"
same "exactly one dek/v3 object on the token" "$(objects dek/v3)" "1"
same "no v4 was made" "$(objects dek/v4)" "0"

# 3. A key pair: crash after the pair is made.
rotate_and_crash sig "C_GenerateKeyPair after 5000" grep -q 'C_GenerateKeyPair CKR_OK' "$W/p11.log" || exit 1
same "key pair: the rotation is done" "$(ctl show "$id" | jq -r .state)" "done"
same "sig/v2 has its two halves" "$(objects sig/v2)" "2"
check "sig/v2 signs" ctl sign sig -i /dev/null

# 4. After the journal says done, before the key store is rescanned.
# (The generation's own label check is held too, 3 s, before the rescan.)
rotate_and_crash dek "C_FindObjectsInit delay 3000" \
	sh -c "grep -c '\"t\":\"done\"' $W/state.journal | grep -qx 4" || exit 1
same "crash after done: nothing is redone" "$(ctl show "$id" | jq -r .state)" "done"
same "v4 is current" "$(ctl list | awk '$1=="dek"{print $4}')" "v4"
same "exactly one dek/v4 object" "$(objects dek/v4)" "1"

# A key object the state does not know is reported, not used.
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label svc --login --pin 1234 \
	--keygen --key-type AES:32 --label dek/v9 --sensitive >/dev/null 2>&1
stop_daemon; start_daemon || exit 1
same "an unknown object is reported in status" "$(ctl status | jq -r '.governance.unknown_objects[0]')" "dek/v9"
same "and not used: v4 stays current" "$(ctl list | awk '$1=="dek"{print $4}')" "v4"
same "the v1 blob still unwraps" "$(ctl unwrap "$blob" -c c)" "kept"
check "the audit chain verifies after four crashes" "$CTL_BIN" audit verify "$AUDIT"
finish
