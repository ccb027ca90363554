#!/usr/bin/env bash
# Smartcard readers: a private pcscd with the vpcd driver, a virtual card
# (tests/vcard/vcard.py) inserted and removed, a token bound to the reader
# refused with token_absent while its card is out, pcscd killed and
# restarted under a running daemon, every change in status and the audit log.
. "$(dirname "$0")/lib.sh"

use_faults || { finish; exit 1; }

VCARD="$TOP/tests/vcard/vcard.py"
PCSC="$W/pcsc"
mkdir -p "$PCSC/run" "$PCSC/readers.d"
export PCSCLITE_CSOCK_NAME="$PCSC/run/pcscd/pcscd.comm"
READER="Virtual PCD 00 00"
ATR=3b8880010000000000000000
ATR_OTHER=3b0211223344
PCSCD_PID= CARD_PID=

stop_card() {
	[ -n "$CARD_PID" ] || return 0
	kill "$CARD_PID" 2>/dev/null
	wait "$CARD_PID" 2>/dev/null
	CARD_PID=
}

# pcscd usually exits within 20 ms of SIGTERM, sometimes 2 s: then KILL.
stop_pcscd() {
	local i
	[ -n "$PCSCD_PID" ] || return 0
	kill -TERM "$PCSCD_PID" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$PCSCD_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$PCSCD_PID" 2>/dev/null
	wait "$PCSCD_PID" 2>/dev/null
	PCSCD_PID=
}

trap 'stop_card; stop_daemon; stop_pcscd; cleanup' EXIT

# wait_for SECONDS CMD...: poll until the command succeeds (1) or time is up.
wait_for() {
	local end=$(($(date +%s%N) / 1000000 + $1 * 1000)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(($(date +%s%N) / 1000000))" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# st EXPR: a Python expression over the daemon's status d.
st() {
	ctl status 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
tok = {t["name"]: t for t in d["tokens"]}
rd = {r["name"]: r for r in d["readers"]}
print(eval(sys.argv[1]))' "$1"
}
is() { [ "$(st "$1")" = "$2" ]; }

# A private pcscd in its own mount namespace (it always uses /run/pcscd);
# its vpcd reader on a random high port, a new one if the port is taken.
start_pcscd() {
	local try
	for try in 1 2 3 4 5; do
		[ -n "${PORT:-}" ] || PORT=$((20000 + (RANDOM % 20000) * 2))
		printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:%d\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID %d\n' \
			"$PORT" "$PORT" >"$PCSC/readers.d/vpcd"
		rm -f "$PCSCLITE_CSOCK_NAME"
		unshare -m --propagation private sh -c \
			'mount --bind "$0/run" /run && exec pcscd -f -c "$0/readers.d"' \
			"$PCSC" >>"$W/pcscd.err" 2>&1 &
		PCSCD_PID=$!
		wait_for 5 sh -c '"$0" readers | grep -q "$1"' "$CTL_BIN" "$READER" && return 0
		stop_pcscd
		PORT=
	done
	return 1
}

insert_card() { # ATR
	python3 "$VCARD" "$PORT" "$1" 2>>"$W/vcard.err" &
	CARD_PID=$!
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
printf 'message' >"$W/m"

# 1. No pcscd at all, no reader binding: the daemon starts at once, says
# so in one line, and serves.
init_token svc
init_token card
KSVC="keys:
  - name: ksvc
    type: ec-p256
    token: svc
    allow: { root: [sign, verify] }"
write_policy <<<"$KSVC"
check "1: keygen ksvc" keygen ksvc
t0=$(now_ms)
start_daemon || exit 1
dt=$(($(now_ms) - t0))
[ "$dt" -lt 2000 ] && ok "1: without pcscd the daemon starts in ${dt} ms" ||
	not_ok "1: start took ${dt} ms"
check "1: status says pcscd unavailable" wait_for 3 is 'd["pcscd"]' unavailable
# Let several reconnection attempts pass while the unbound key signs.
n=0
while [ $(($(now_ms) - t0)) -lt 2500 ]; do
	ctl sign ksvc -i "$W/m" >/dev/null 2>&1 && n=$((n + 1)) || { n=-1000; break; }
done
[ "$n" -gt 0 ] && ok "1: the unbound key signed $n times meanwhile" || not_ok "1: a sign failed"
same "1: one log line about pcscd, not one per retry" \
	"$(grep -c 'pcscd is not reachable' "$W/daemon.err")" "1"
stop_daemon
"$CTL_BIN" readers >"$W/out" 2>"$W/rd.err"
same "1: custodianctl readers without pcscd: exit 1" "$?" "1"
check "1: and a clear message" grep -q "pcscd is not running" "$W/rd.err"

# 2. pcscd with the virtual reader, custodianctl alone.
start_pcscd || { not_ok "2: private pcscd with a vpcd reader"; finish; exit 1; }
ok "2: private pcscd on port $PORT"
check "2: readers lists the virtual reader, no card" \
	sh -c '"$0" readers | grep -E -q "^$1 +no +-$"' "$CTL_BIN" "$READER"
"$CTL_BIN" wait-card --timeout 0 >/dev/null 2>&1
same "2: wait-card with no card: exit 1" "$?" "1"
"$CTL_BIN" wait-card --timeout 10 --reader "$READER" >"$W/wc.out" 2>&1 &
wc=$!
insert_card "$ATR"
wait "$wc"; rc=$?
same "2: wait-card returns 0 once the card is in" "$rc" "0"
same "2: and names the reader" "$(cat "$W/wc.out")" "$READER"
check "2: readers shows the card and its ATR" \
	sh -c '"$0" readers | grep -E -q "^$1 +yes +$2$"' "$CTL_BIN" "$READER" "$ATR"
"$CTL_BIN" wait-card --timeout 1 --reader "Virtual PCD 00 01" >/dev/null 2>&1
same "2: wait-card on the other, empty reader times out: exit 1" "$?" "1"
# approve --wait-card: with the card in, it goes on to ask the daemon
# (none here: exit 3); without, it stops before asking anyone.
approve_wc() {
	"$CTL_BIN" -s "$W/no.sock" approve 0123456789abcdef --wait-card --timeout 1 \
		--reader "$READER" --custodian c --pkcs11-module /nonexistent \
		--token t --key k 2>"$W/ap.err"
}
approve_wc; rc=$?
same "2: approve --wait-card with the card in goes on" "$rc" "3"
check "2: and says where the card is" grep -q "card present in $READER" "$W/ap.err"
stop_card
check "2: readers: the card is out within 5 s" \
	wait_for 5 sh -c '"$0" readers | grep -E -q "^$1 +no +-$"' "$CTL_BIN" "$READER"
approve_wc; rc=$?
same "2: approve --wait-card without a card gives up before signing" "$rc" "1"
check "2: and says no card came" grep -q "no card in" "$W/ap.err"

# 3. A token bound to the reader (through the fault module, to show the
# re-login) next to the unbound SoftHSM2 token.
EXTRA_TOKENS="  - name: card
    module: $FAULT_MODULE
    label: card
    pin_file: $W/pin
    reader: \"$READER\"
    atr: \"$ATR\"
"
write_policy <<P
$KSVC
  - name: kcard
    type: ec-p256
    token: card
    allow: { root: [sign, verify] }
P
check "3: keygen kcard (the binding does not matter offline)" keygen kcard
lines0=$(grep -c 'pcscd is not reachable' "$W/daemon.err")
start_daemon || exit 1
check "3: status: pcscd available" wait_for 5 is 'd["pcscd"]' available
check "3: status: the reader, no card" wait_for 5 is "rd['$READER']['card']" False
same "3: status: the token's reader" "$(st "tok['card']['reader']")" "$READER"
same "3: status: the token is absent" "$(st "tok['card']['present']")" "False"
expect_err "3: sign on the bound token without its card: token_absent" token_absent \
	ctl sign kcard -i "$W/m"
cp "$W/err" "$W/why"
check "3: the reason names the reader" grep -q "no card in reader \"$READER\"" "$W/why"
check "3: the unbound key signs" ctl sign ksvc -i "$W/m"

# 4. Insert: the bound key works.
insert_card "$ATR"
check "4: status: card present within 5 s" wait_for 5 is "tok['card']['present']" True
same "4: status: the card's ATR" "$(st "rd['$READER']['atr']")" "$ATR"
check "4: sign on the bound token" ctl sign kcard -i "$W/m"

# 5. Remove: refused at once.
stop_card
check "5: status: card gone within 5 s" wait_for 5 is "tok['card']['present']" False
p11_mark
expect_err "5: sign after removal: token_absent" token_absent ctl sign kcard -i "$W/m"
expect_err "5: verify after removal: token_absent" token_absent \
	ctl verify kcard AAAA -i "$W/m"
same "5: the refusal never reached the token" \
	"$(p11_since | grep -c .)" "0"
check "5: the unbound key signs" ctl sign ksvc -i "$W/m"

# 6. Another card (another ATR) in the reader does not wake the token.
insert_card "$ATR_OTHER"
check "6: status: the other card is seen" wait_for 5 is "rd['$READER'].get('atr')" "$ATR_OTHER"
expect_err "6: sign with the wrong card: token_absent" token_absent ctl sign kcard -i "$W/m"
cp "$W/err" "$W/why"
check "6: the reason names the ATR" grep -q "another ATR" "$W/why"
stop_card
check "6: status: card gone" wait_for 5 is "rd['$READER']['card']" False

# 7. The right card again, and the token lost its login meanwhile (a real
# card does on reinsertion): the token layer logs in again, once.
faults "C_Sign fail CKR_USER_NOT_LOGGED_IN once"
insert_card "$ATR"
check "7: status: card present" wait_for 5 is "tok['card']['present']" True
p11_mark
check "7: sign works after reinsertion" ctl sign kcard -i "$W/m"
p11_since >"$W/p11.since"
inj=$(grep -n -m1 -x 'C_Sign CKR_USER_NOT_LOGGED_IN (injected)' "$W/p11.since" | cut -d: -f1)
login=$(grep -n '^C_Login ' "$W/p11.since" | tail -1 | cut -d: -f1)
[ -n "$inj" ] && [ "${login:-0}" -gt "$inj" ] && ok "7: C_Login after the lost login, then C_Sign" ||
	{ not_ok "7: no re-login seen"; sed 's/^/#   /' "$W/p11.since"; }
same "7: one C_Sign CKR_OK after it" "$(tail -n +"${inj:-1}" "$W/p11.since" | grep -c -x 'C_Sign CKR_OK')" "1"
faults

# 8. pcscd dies under the daemon: the bound token is suspended, the other
# keeps signing, then pcscd comes back and so does the token.
stop_pcscd
check "8: status: pcscd unavailable within 5 s" wait_for 5 is 'd["pcscd"]' unavailable
same "8: status: no readers while it is away" "$(st 'len(d["readers"])')" "0"
expect_err "8: sign on the bound token: token_absent" token_absent ctl sign kcard -i "$W/m"
cp "$W/err" "$W/why"
check "8: the reason says pcscd" grep -q "pcscd is not available" "$W/why"
wait "$CARD_PID" 2>/dev/null; CARD_PID= # vpcd hung up on it
t0=$(now_ms) n=0
while [ $(($(now_ms) - t0)) -lt 2500 ]; do
	ctl sign ksvc -i "$W/m" >/dev/null 2>&1 && n=$((n + 1)) || { n=-1000; break; }
done
[ "$n" -gt 0 ] && ok "8: the unbound key signed $n times while pcscd was away" ||
	not_ok "8: an unbound sign failed"
same "8: one log line, not one per retry" \
	"$(($(grep -c 'pcscd is not reachable' "$W/daemon.err") - lines0))" "1"
start_pcscd || { not_ok "8: pcscd restarted"; finish; exit 1; }
check "8: status: pcscd available again within 5 s" wait_for 5 is 'd["pcscd"]' available
check "8: status: the reader is back, empty" wait_for 5 is "rd['$READER']['card']" False
insert_card "$ATR"
check "8: status: the card is back" wait_for 5 is "tok['card']['present']" True
check "8: sign on the bound token again" ctl sign kcard -i "$W/m"
check "8: daemon alive" kill -0 "$DAEMON_PID"
stop_card
check "8: card removed" wait_for 5 is "tok['card']['present']" False

# 9. The audit log has every change, in order, and its chain holds.
stop_daemon
python3 - "$AUDIT" "$READER" "$ATR" >"$W/events" <<'PY'
import json, sys
log, reader, atr = sys.argv[1:]
kinds = {"card_inserted", "card_removed", "reader_added", "reader_removed",
         "pcscd_unavailable", "pcscd_available", "start"}
for line in open(log):
    e = json.loads(line)
    if e["event"] not in kinds:
        continue
    r = e.get("reader", "")
    r = "R0" if r == reader else "R1" if r == reader[:-1] + "1" else r
    print(e["event"], r, e.get("atr", ""))
PY
cat >"$W/want" <<E
start  
pcscd_unavailable  
start  
pcscd_available  
reader_added R0 
reader_added R1 
card_inserted R0 $ATR
card_removed R0 
card_inserted R0 $ATR_OTHER
card_removed R0 
card_inserted R0 $ATR
pcscd_unavailable  
pcscd_available  
card_removed R0 
card_inserted R0 $ATR
card_removed R0 
E
if diff "$W/want" "$W/events" >"$W/diff"; then ok "9: audit events in order"; else
	not_ok "9: audit events"; sed 's/^/#   /' "$W/diff"
fi
check "9: audit verify" "$CTL_BIN" audit verify "$AUDIT"
check "9: token_absent refusals audited" grep -q '"key":"kcard".*"result":"token_absent"' "$AUDIT"
finish
