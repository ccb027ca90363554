#!/usr/bin/env bash
# The audit log: every request is a chained line; tampering is found;
# when the log cannot be written, operations are refused (fail closed).
. "$(dirname "$0")/lib.sh"

init_token svc
PIN_SOURCE="pin_env: CT_TEST_PIN"
write_policy <<P
keys:
  - name: dek
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap, datakey] }
P
export CT_TEST_PIN=1234
check "keygen (PIN from the environment)" keygen dek
start_daemon || exit 1
ctl datakey dek -c audit-test >"$W/dk.json"
dk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plaintext"])' "$W/dk.json")
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blob"])' "$W/dk.json")
ctl unwrap "$blob" -c audit-test -b >/dev/null
ctl unwrap "$blob" -c wrong >/dev/null 2>&1
check "audit verify: chain intact" "$CTL_BIN" audit verify "$AUDIT"
n=$(grep -c '"event":"request"' "$AUDIT")
same "3 requests, 3 request lines" "$n" "3"
check "lines carry peer uid, op, key, version, result" \
	grep -q '"peer":{"uid":0,"gid":0,"pid":[0-9]*},"op":"unwrap","key":"dek","version":1,"result":"decrypt_failed"' "$AUDIT"
if grep -q -- "$dk" "$AUDIT"; then not_ok "data key appears in the log"; else ok "no data key in the log"; fi
if grep -a -q -- "$dk" "$W/daemon.err"; then not_ok "data key in daemon output"; else ok "no data key in daemon output"; fi

# Tamper with one byte of the datakey line L (line 2, or later when reader
# events came first): verify names line L+1 (its prev no longer matches).
cp "$AUDIT" "$W/tampered"
L=$(grep -n -m1 '"op":"datakey"' "$W/tampered" | cut -d: -f1)
sed -i "${L}s/\"op\":\"datakey\"/\"op\":\"datakez\"/" "$W/tampered"
out=$("$CTL_BIN" audit verify "$W/tampered" 2>&1); rc=$?
same "tampered log fails verification" "$rc" "1"
case $out in *"tampered:$((L + 1)): prev hash does not match line $L"*) ok "tampered line is named";; *) not_ok "tampered line is named: $out";; esac
# Deleting a line is found too.
sed '2d' "$AUDIT" >"$W/deleted"
"$CTL_BIN" audit verify "$W/deleted" >/dev/null 2>&1 && not_ok "deleted line must be found" || ok "deleted line is found"

# Restart continues the chain.
stop_daemon
start_daemon || exit 1
ctl datakey dek >/dev/null
check "chain intact across restarts" "$CTL_BIN" audit verify "$AUDIT"

# Fail closed: cap the daemon's file size just above the log; writes then
# fail with EFBIG and every operation is refused with audit_failed.
stop_daemon
size=$(stat -c %s "$AUDIT")
DAEMON_PREFIX="prlimit --fsize=$((size + 700)) --"
start_daemon || exit 1
ok_n=0; fail_n=0
for i in $(seq 8); do
	if ctl datakey dek >/dev/null 2>"$W/e"; then ok_n=$((ok_n+1));
	elif grep -q audit_failed "$W/e"; then fail_n=$((fail_n+1)); fi
done
check "some datakeys succeed before the log is full" test "$ok_n" -ge 1
check "then operations are refused with audit_failed" test "$fail_n" -ge 1
same "every request either succeeded or got audit_failed" "$((ok_n + fail_n))" "8"
check "daemon is still running" kill -0 "$DAEMON_PID"
check "the log is intact after failed commits" "$CTL_BIN" audit verify "$AUDIT"
n_ok_lines=$(tail -n +2 "$AUDIT" | grep -c '"op":"datakey","key":"dek","version":1,"result":"ok"')
check "every successful reply has its line ($ok_n)" test "$n_ok_lines" -ge "$ok_n"
finish
