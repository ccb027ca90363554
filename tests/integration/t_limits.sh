#!/usr/bin/env bash
# Abuse limits: a flooding client is rate limited and audited once per
# episode, its connections are capped, garbage is cut off, unknown peers are
# capped, and a well-behaved client beside them gets every reply.
. "$(dirname "$0")/lib.sh"

init_token svc
write_policy <<P
  - name: flood
    uid: 4000
    limits: {rate: 5, burst: 5, connections: 3}
keys:
  - name: k
    type: ec-p256
    token: svc
    allow: { root: [sign], flood: [sign] }
P
# The service section comes from write_policy: add the limits to it.
sed -i -e 's|^  audit_log: .*|&\n  unknown_limits: {rate: 10, burst: 20, connections: 2}\n  max_bad_requests: 3|' "$POLICY"
check "keygen" keygen k
# The limiter's clock is CLOCK_MONOTONIC: libfaketime moves it (and the
# wall clock) when the test writes an offset, so nothing sleeps.
use_fake_clock +0 monotonic || exit 1
start_daemon || exit 1

# client.py UID MODE ...: a client under another uid (group 0 reaches the
# 0660 socket), printing what it saw.
cat >"$W/client.py" <<'PY'
import json, socket, sys, time
sock, mode = sys.argv[1], sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sock); s.settimeout(20); return s
def codes(s, n):
    f = s.makefile("rb"); out = []
    for _ in range(n):
        l = f.readline()
        if not l: break
        d = json.loads(l); out.append("ok" if d["ok"] else d["error"]["code"])
    return out
if mode == "flood":     # N pipelined signs on one connection
    n = int(sys.argv[3]); s = conn()
    s.sendall(b'{"v":1,"op":"sign","key":"k","data":"bQ=="}\n' * n)
    c = codes(s, n)
    print(len(c), c.count("ok"), c.count("rate_limited"))
elif mode == "steady":  # N signs, one at a time
    n = int(sys.argv[3]); s = conn(); c = []
    for i in range(n):
        s.sendall(b'{"v":1,"op":"sign","key":"k","data":"bQ=="}\n'); c += codes(s, 1)
    print(c.count("ok"))
elif mode == "conns":   # hold N connections, report which were served
    held = [conn() for _ in range(int(sys.argv[3]))]
    served = 0
    for s in held:
        try:
            s.sendall(b'{"v":1,"op":"status"}\n'); served += len(codes(s, 1))
        except OSError:
            pass
    print(served)
elif mode == "garbage": # N malformed lines: replies, then is it cut off?
    s = conn(); s.sendall(b"junk\n" * int(sys.argv[3]))
    c = codes(s, 100)
    print(" ".join(c), "eof")
PY
as() { local u=$1; shift; setpriv --reuid "$u" --regid 0 --clear-groups "$@"; }
# The system python: a per-user shim on PATH may not serve other uids.
client() { local u=$1; shift; as "$u" /usr/bin/python3 "$W/client.py" "$SOCK" "$@"; }
chmod 755 "$W/client.py"

# 1. A flood beside a well-behaved client.
client 4000 flood 400 >"$W/flood.out" &
flood=$!
good=$(python3 "$W/client.py" "$SOCK" steady 200)
wait "$flood"
read -r total okn limited <"$W/flood.out"
same "1: the flood gets an answer to every request" "$total" "400"
[ "$okn" -ge 5 ] && [ "$okn" -le 15 ] && ok "1: the flood is served at its rate ($okn ok)" ||
	not_ok "1: $okn of the flood served (want 5 to 15)"
same "1: the rest are rate_limited" "$limited" "$((400 - okn))"
same "1: the well-behaved client gets all 200 replies, all ok" "$good" "200"
same "1: one audit line for the whole episode" \
	"$(grep -c '"uid":4000,.*"result":"rate_limited"' "$AUDIT")" "1"
check "1: it names the limit" grep -q '"detail":"over 5 requests/s (burst 5) for client:flood"' "$AUDIT"
same "1: and no line for the others" "$(grep -c '"uid":4000,' "$AUDIT")" "$((okn + 1))"

# 2. Time moves on: the next request is admitted and sums up the episode.
set_clock +5
same "2: after a quiet time the client is served again" "$(client 4000 steady 1)" "1"
same "2: one limit_end line counts the refusals" \
	"$(grep -c "\"event\":\"limit_end\",\"identity\":\"client:flood\",\"refused_requests\":$limited,\"refused_connections\":0" "$AUDIT")" "1"

# 3. The connection cap: 3 for flood; the rest are closed at once.
set_clock +10
same "3: flood holds 3 of 8 connections" "$(client 4000 conns 8)" "3"
same "3: the refused connections make one audit line" \
	"$(grep -c '"event":"connection",.*"identity":"client:flood","result":"refused","detail":"3 connections open (limit 3)"' "$AUDIT")" "1"
same "3: root is not capped by flood's limit" "$(python3 "$W/client.py" "$SOCK" conns 8)" "8"

# 4. Unknown peers are capped too: 2 connections for uid 4242.
same "4: an unknown uid holds 2 of 5 connections" "$(client 4242 conns 5)" "2"
check "4: audited with its uid as the identity" grep -q '"identity":"uid:4242","result":"refused"' "$AUDIT"

# 5. Garbage: after 3 malformed requests in a row the client is cut off.
same "5: three bad_request replies, then the connection is closed" \
	"$(python3 "$W/client.py" "$SOCK" garbage 10)" "bad_request bad_request bad_request eof"
check "5: the daemon still serves" ctl status
finish
