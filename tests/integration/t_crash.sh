#!/usr/bin/env bash
# Crash and disk faults: kill -9 under load loses no acknowledged audit line,
# a torn last line is cut (and recorded) at the next start, and a full disk
# fails operations closed until space returns.
. "$(dirname "$0")/lib.sh"

ALOG="$W/alog"
trap 'stop_daemon; mountpoint -q "$ALOG" && umount "$ALOG"; cleanup' EXIT

key_k_fixture
start_daemon || exit 1
printf 'm' >"$W/m"

# 1. kill -9 under load.  Four connections send sign and status requests
# with unique ids, one at a time, and append the id of every reply that
# came back ok to acked.txt; the daemon dies once 300 are acknowledged.
: >"$W/acked.txt"
python3 - "$SOCK" "$W/acked.txt" <<'PY' &
import json, os, socket, sys, threading
sock, acked = sys.argv[1], os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
def run(t):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); f = s.makefile("rb")
    for i in range(100000):
        rid = "t%d-%d" % (t, i)
        op = '"op":"sign","key":"k","data":"bQ=="' if i % 3 else '"op":"status"'
        try:
            s.sendall(('{"v":1,"id":"%s",%s}\n' % (rid, op)).encode())
            line = f.readline()
        except OSError:
            return
        if not line:
            return
        d = json.loads(line)
        if d.get("ok") and d.get("id") == rid:
            os.write(acked, (rid + "\n").encode())
ts = [threading.Thread(target=run, args=(t,)) for t in range(4)]
for t in ts: t.start()
for t in ts: t.join()
PY
load=$!
for _ in $(seq 400); do
	[ "$(wc -l <"$W/acked.txt")" -ge 300 ] && break
	sleep 0.05
done
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
wait "$load"
n=$(wc -l <"$W/acked.txt")
[ "$n" -ge 300 ] && ok "1: $n requests acknowledged before kill -9" || not_ok "1: only $n acknowledged"
missing=$(python3 - "$AUDIT" "$W/acked.txt" <<'PY'
import json, sys
logged = set()
for l in open(sys.argv[1], "rb"):
    d = json.loads(l)
    if d.get("event") == "request" and d.get("result") == "ok":
        logged.add(d.get("id"))
print(sum(1 for i in open(sys.argv[2]).read().split() if i not in logged))
PY
)
same "1: every acknowledged id is in the audit log as ok" "$missing" "0"
check "1: the chain verifies after kill -9" "$CTL_BIN" audit verify "$AUDIT"
same "1: no stop event (it was killed)" "$(tail -1 "$AUDIT" | grep -c '"event":"stop"')" "0"

# 2. A torn last line (what a crash inside write(2) leaves): verify names
# it; the daemon cuts it at start, records its size and hash, and serves.
printf '{"seq":999,"time":"2026-' >>"$AUDIT"
torn=$(printf '{"seq":999,"time":"2026-' | sha256sum | cut -d' ' -f1)
if "$CTL_BIN" audit verify "$AUDIT" >"$W/torn.out" 2>&1; then not_ok "2: verify accepts a torn line"; else
	check "2: verify reports the torn line" grep -q "missing newline at end of file" "$W/torn.out"; fi
lines=$(wc -l <"$AUDIT")
start_daemon || exit 1
check "2: the daemon says it cut the line" grep -q "cut a torn last line (24 bytes, sha256 $torn)" "$W/daemon.err"
same "2: the start event records the cut bytes" \
	"$(sed -n "$((lines + 1))p" "$AUDIT" | grep -o '"torn_tail":{[^}]*}')" \
	"\"torn_tail\":{\"bytes\":24,\"sha256\":\"$torn\"}"
check "2: sign after the recovery" ctl sign k -i "$W/m"
check "2: the chain verifies" "$CTL_BIN" audit verify "$AUDIT"
stop_daemon

# 3. A full disk: the audit log on a 256 KiB tmpfs.
mkdir "$ALOG"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$ALOG" || { not_ok "3: mount tmpfs"; finish; exit 1; }
AUDIT="$ALOG/audit.log"
# The governance journal stays off the small disk: only the log fills it.
start_daemon -a "$AUDIT" -S "$W/state.journal" || exit 1
check "3: sign with room on the disk" ctl sign k -i "$W/m"
dd if=/dev/zero of="$ALOG/filler" bs=4k 2>/dev/null
# tmpfs counts whole pages: the log's last page may still take a few lines.
failed=0
for i in $(seq 60); do
	if ! ctl sign k -i "$W/m" >/dev/null 2>"$W/full.err"; then failed=$i; break; fi
done
[ "$failed" -gt 0 ] && ok "3: a sign fails once the disk is full (request $failed)" ||
	not_ok "3: 60 signs succeeded on a full disk"
check "3: it fails closed with audit_failed" grep -q "custodianctl: audit_failed:" "$W/full.err"
expect_err "3: still full: audit_failed again" audit_failed ctl sign k -i "$W/m"
expect_err "3: status is audited too: audit_failed" audit_failed ctl status
check "3: the daemon lives on" kill -0 "$DAEMON_PID"
check "3: no partial line left behind" "$CTL_BIN" audit verify "$AUDIT"
rm -f "$ALOG/filler"
check "3: space is back: sign works without a restart" ctl sign k -i "$W/m"
check "3: status works" ctl status
stop_daemon
same "3: the stop event was written" "$(tail -1 "$AUDIT" | grep -o '"event":"stop"')" '"event":"stop"'
check "3: the chain verifies after the full disk" "$CTL_BIN" audit verify "$AUDIT"
finish
