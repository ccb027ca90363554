#!/usr/bin/env bash
# Token faults, injected by tests/faultp11 between the daemon and SoftHSM2:
# a lost session or login is recovered once, a removed token fails fast, a
# wrong PIN is never retried, a slow token does not block the event loop.
. "$(dirname "$0")/lib.sh"

use_faults || { finish; exit 1; }
MODULE=$FAULT_MODULE

init_token svc
write_policy <<P
keys:
  - name: k
    type: ec-p256
    token: svc
    allow: { root: [sign, verify] }
  - name: aes
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap] }
P
# A token call that takes longer than this is answered token_timeout.
sed -i -e 's|^  audit_log: .*|&\n  token_timeout: 1s|' "$POLICY"
check "keygen k" keygen k
check "keygen aes" keygen aes
start_daemon || exit 1
printf 'message' >"$W/m"

# first_line PATTERN: line number of the first match in p11_since, or 0.
first_line() { p11_since | grep -n -m1 -x -e "$1" | cut -d: -f1 | grep . || echo 0; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# 1. Baseline.
p11_mark
check "1: sign through the fault module" ctl sign k -i "$W/m"
check "1: the module logs the call" grep -q -x "C_Sign CKR_OK" <(p11_since)

# 2. A lost session: re-opened, the sign retried once.
faults "C_Sign fail CKR_SESSION_HANDLE_INVALID once"
p11_mark
check "2: sign succeeds after a lost session" ctl sign k -i "$W/m"
inj=$(first_line "C_Sign CKR_SESSION_HANDLE_INVALID (injected)")
okl=$(p11_since | grep -n -x "C_Sign CKR_OK" | tail -1 | cut -d: -f1)
[ "$inj" -gt 0 ] && [ "${okl:-0}" -gt "$inj" ] &&
	ok "2: log: injected failure, then C_Sign CKR_OK" ||
	{ not_ok "2: log: injected failure, then C_Sign CKR_OK"; p11_since | sed 's/^/#   /'; }
same "2: one C_OpenSession after the failure (the recovery)" \
	"$(p11_since | tail -n +"$inj" | grep -c '^C_OpenSession CKR_OK$')" "1"

# 3. A lost login: logged in again with the stored PIN.
faults "C_Sign fail CKR_USER_NOT_LOGGED_IN once"
p11_mark
check "3: sign succeeds after a lost login" ctl sign k -i "$W/m"
inj=$(first_line "C_Sign CKR_USER_NOT_LOGGED_IN (injected)")
login=$(p11_since | grep -n '^C_Login ' | tail -1 | cut -d: -f1)
[ "$inj" -gt 0 ] && [ "${login:-0}" -gt "$inj" ] &&
	ok "3: log: C_Login after the injected failure" ||
	{ not_ok "3: log: C_Login after the injected failure"; p11_since | sed 's/^/#   /'; }

# 4. The token is gone: a clear error, fast; the daemon lives on.
# The daemon answers token_unavailable (map_rv: a lost-session code after
# the one retry), which is right: the token is not there, not misbehaving.
faults "C_Sign fail CKR_DEVICE_REMOVED always"
p11_mark
t0=$(now_ms)
expect_err "4: sign on a removed token: token_unavailable" token_unavailable \
	timeout 10 "$CTL_BIN" -s "$SOCK" sign k -i "$W/m"
dt=$(($(now_ms) - t0))
[ "$dt" -lt 5000 ] && ok "4: it fails in under 5 s (${dt} ms)" || not_ok "4: it took ${dt} ms"
cp "$W/err" "$W/err4"
check "4: the reply names the PKCS#11 failure" grep -q "C_Sign: CKR_DEVICE_REMOVED" "$W/err4"
same "4: one retry, not a loop" "$(p11_since | grep -c '^C_Sign CKR_DEVICE_REMOVED (injected)$')" "2"
check "4: daemon alive" kill -0 "$DAEMON_PID"
check "4: status works" ctl status
faults
check "4: the token is back: sign works again" ctl sign k -i "$W/m"

# 6. A failing decrypt is decrypt_failed (SoftHSM2's bad GCM tag is
# CKR_GENERAL_ERROR too); encrypt still works.
head -c 64 /dev/urandom >"$W/secret"
blob=$(ctl wrap aes -c t=1 -i "$W/secret")
check "6: wrap" test -n "$blob"
faults "C_Decrypt fail CKR_GENERAL_ERROR always"
p11_mark
expect_err "6: unwrap with a failing C_Decrypt: decrypt_failed" decrypt_failed \
	timeout 10 "$CTL_BIN" -s "$SOCK" unwrap "$blob" -c t=1
check "6: the failure was injected" grep -q -x "C_Decrypt CKR_GENERAL_ERROR (injected)" <(p11_since)
check "6: wrap (C_Encrypt) still works" ctl wrap aes -c t=1 -i "$W/secret"
check "6: daemon alive" kill -0 "$DAEMON_PID"
faults
ctl unwrap "$blob" -c t=1 >"$W/back" 2>"$W/err"
check "6: unwrap works again" cmp "$W/secret" "$W/back"

# 7. A slow token: the client gives up, the event loop keeps answering.
faults "C_Sign delay 3000"
t0=$(now_ms)
CUSTODIAN_TIMEOUT=1 "$CTL_BIN" -s "$SOCK" sign k -i "$W/m" >/dev/null 2>"$W/slow.err" &
slow=$!
sleep 0.3
t1=$(now_ms)
check "7: status during the delay" env CUSTODIAN_TIMEOUT=1 "$CTL_BIN" -s "$SOCK" status
dt=$(($(now_ms) - t1))
[ "$dt" -lt 1000 ] && ok "7: status answered in under 1 s (${dt} ms)" || not_ok "7: status took ${dt} ms"
wait "$slow"; rc=$?
same "7: the slow sign: custodianctl exits 3" "$rc" "3"
check "7: and says it waited" grep -q "no reply within 1 s" "$W/slow.err"
faults
# Let the delayed call finish (3 s after it started), then sign again.
while [ $(($(now_ms) - t0)) -lt 3500 ]; do sleep 0.1; done
check "7: daemon alive after the delay" kill -0 "$DAEMON_PID"
check "7: after the delay the daemon still serves" ctl sign k -i "$W/m"

# 8. A token that hangs past service.token_timeout (1 s): the client is
# answered token_timeout, and its connection serves again; when the call
# ends, the audit records what the token did, marked late, and nothing
# reaches the client.
faults "C_Sign delay 4000"
t0=$(now_ms)
expect_err "8: a hung sign is answered token_timeout" token_timeout ctl sign k -i "$W/m"
dt=$(($(now_ms) - t0))
[ "$dt" -lt 3500 ] && ok "8: before the token answered (${dt} ms)" || not_ok "8: took ${dt} ms"
check "8: the refusal is audited" \
	grep -q '"op":"sign","key":"k","version":1,"result":"token_timeout","detail":"no answer from the token within 1 s"' "$AUDIT"
faults
check "8: status meanwhile" ctl status
wait_for "8: the late answer is audited, marked late" \
	grep -q '"op":"sign","key":"k","version":1,"result":"ok","late":true' "$AUDIT"
check "8: then the daemon signs again" ctl sign k -i "$W/m"

# 5 (last: a refused PIN stays refused for the daemon's life).
# A wrong PIN is never retried: at most one C_Login per request.
faults "C_Login fail CKR_PIN_INCORRECT always" "C_Sign fail CKR_USER_NOT_LOGGED_IN always"
p11_mark
t0=$(now_ms)
expect_err "5: sign with the PIN refused: pin_incorrect" pin_incorrect \
	timeout 10 "$CTL_BIN" -s "$SOCK" sign k -i "$W/m"
n1=$(p11_since | grep -c '^C_Login ')
[ "$n1" -le 1 ] && ok "5: $n1 C_Login for the request" || not_ok "5: $n1 C_Login calls for one request"
p11_mark
expect_err "5: a second request: pin_incorrect" pin_incorrect \
	timeout 10 "$CTL_BIN" -s "$SOCK" sign k -i "$W/m"
n2=$(p11_since | grep -c '^C_Login ')
[ "$n2" -le 1 ] && ok "5: $n2 C_Login for the second request" || not_ok "5: $n2 C_Login calls for the second request"
dt=$(($(now_ms) - t0))
[ "$dt" -lt 5000 ] && ok "5: both fail fast (${dt} ms)" || not_ok "5: took ${dt} ms"
check "5: daemon alive" kill -0 "$DAEMON_PID"
check "5: status works" ctl status
finish
