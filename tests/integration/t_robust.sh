#!/usr/bin/env bash
# Hostile and broken clients get errors; the daemon keeps serving everyone.
. "$(dirname "$0")/lib.sh"

key_k_fixture
start_daemon || exit 1

code() { python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); print(d["error"]["code"] if not d["ok"] else "ok")'; }
same "not JSON" "$(raw "b'hello\n'" | code)" "bad_request"
same "JSON array" "$(raw "b'[1]\n'" | code)" "bad_request"
same "unknown op" "$(raw "b'{\"v\":1,\"op\":\"shell\"}\n'" | code)" "unknown_operation"
same "binary junk" "$(raw "bytes(range(1,10))+b'\xff\xfe\n'" | code)" "bad_request"
same "three requests on one connection, in order" \
	"$(raw "b'{\"v\":1,\"op\":\"status\"}\n{\"v\":2}\n{\"v\":1,\"op\":\"list_keys\"}\n'" | code | tr '\n' ' ')" \
	"ok bad_request ok "
same "request id comes back" "$(raw "b'{\"v\":1,\"id\":\"abc-7\",\"op\":\"status\"}\n'" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')" "abc-7"
same "oversized line: request_too_large, then hang-up" \
	"$(raw "b'{\"v\":1,\"op\":\"status\",\"x\":\"' + b'A'*70000 + b'\"}\n{\"v\":1,\"op\":\"status\"}\n'" | code | tr '\n' ' ')" \
	"request_too_large "
same "a line of exactly 65536 bytes is read" \
	"$(raw "b'{\"v\":1,\"op\":\"status\",\"x\":\"' + b'A'*(65536-31) + b'\"}\n'" | code)" "bad_request"
raw "b'{\"v\":1,\"op\":\"sta'" >/dev/null  # half a line, then gone
# A client that pipelines 2,000 requests and reads nothing for a second:
# replies queue up behind the socket buffer (backpressure), none is lost.
n=$(python3 - "$SOCK" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)
s.sendall(b'{"v":1,"op":"status"}\n' * 2000)
time.sleep(1)
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = s.recv(1 << 16)
    if not d:
        break
    buf += d
print(sum(1 for l in buf.split(b"\n") if l.startswith(b'{"v":1,"ok":true')))
PY
)
same "2,000 pipelined requests from a slow reader: 2,000 replies" "$n" "2000"
printf 'm' >"$W/m"
# A client that sends a request and vanishes before the reply.
python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v":1,"op":"sign","key":"k","data":"bQ=="}\n'); s.close()
PY
# A slow client holding a connection open does not block others.
python3 - "$SOCK" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v":1,"op":"st'); time.sleep(3); s.close()
PY
pids=$!
check "daemon serves while a slow client holds a partial line" ctl sign k -i "$W/m"
# Many clients at once.
for i in $(seq 40); do ctl sign k -i "$W/m" >"$W/par.$i" 2>&1 & pids="$pids $!"; done
# shellcheck disable=SC2086
wait $pids
n=$(cat "$W"/par.* | grep -c '^[A-Za-z0-9+/=]\{60,\}$')
same "40 concurrent signs all succeed" "$n" "40"
check "daemon still alive" kill -0 "$DAEMON_PID"
# custodianctl gives up on a server that never answers (exit 3).
python3 - "$W/mute.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); time.sleep(5)
PY
mute=$!
for _ in $(seq 50); do [ -S "$W/mute.sock" ] && break; sleep 0.05; done
CUSTODIAN_TIMEOUT=1 "$CTL_BIN" -s "$W/mute.sock" status >/dev/null 2>"$W/mute.err"; rc=$?
same "a mute server: custodianctl exits 3" "$rc" "3"
check "and says it waited" grep -q "no reply within 1 s" "$W/mute.err"
kill "$mute" 2>/dev/null; wait "$mute" 2>/dev/null
check "status still works" ctl status
# Reload: a broken policy is refused and the old one kept.
cp "$POLICY" "$W/good.yaml"
printf 'version: 1\ntokens: [\n' >"$POLICY"
reload_daemon
check "after a refused reload the old policy still serves" ctl sign k -i "$W/m"
grep -q 'reload refused, old policy kept: .*policy.yaml:[0-9]*:[0-9]*' "$W/daemon.err" &&
	ok "refused reload names file:line:column" || not_ok "refused reload names file:line:column"
grep -q '"event":"reload","result":"policy_error"' "$AUDIT" &&
	ok "refused reload is audited" || not_ok "refused reload is audited"
cp "$W/good.yaml" "$POLICY"
# A second daemon on the same socket refuses to start; the first survives.
if "$CUSTODIAND" -p "$POLICY" 2>"$W/second.err"; then not_ok "second daemon must refuse"; else
	grep -q "another daemon listens" "$W/second.err" && ok "second daemon refuses" || not_ok "second daemon message"; fi
check "first daemon still serves" ctl status
# SIGTERM: clean exit, socket removed, stop event logged.
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?; DAEMON_PID=
same "SIGTERM exits 0" "$rc" "0"
check "socket removed" test ! -e "$SOCK"
same "last audit line is the stop event" "$(tail -1 "$AUDIT" | grep -o '"event":"stop"')" '"event":"stop"'
# A stale socket left by a crash is replaced.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
start_daemon && ok "starts over a stale socket" || not_ok "starts over a stale socket"
check "serves after replacing the stale socket" ctl status
finish
