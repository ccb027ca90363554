#!/usr/bin/env bash
# Least privilege: the daemon opens what it needs as root, becomes its own
# user, cannot regain root, runs with no_new_privs and seccomp, dumps no
# core; it refuses to start on files others could change, and refuses to
# stay root unless the policy says so.
. "$(dirname "$0")/lib.sh"

RUN_USER=custodian
id "$RUN_USER" >/dev/null 2>&1 ||
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER"
RUN_UID=$(id -u "$RUN_USER")
RUN_GID=$(id -g "$RUN_USER")

key_k_fixture
# As root without service.user: refused unless allow_root says so.
sed -i '/allow_root/d' "$POLICY"
if "$CUSTODIAND" -p "$POLICY" 2>"$W/e"; then not_ok "root without service.user must be refused"; else
	check "root without service.user is refused" grep -q "started as root without service.user" "$W/e"; fi
# From here on it runs as $RUN_USER.  SoftHSM2 reads (and locks) its token
# files after the drop: the token directory belongs to that user.  The
# policy stays root's but must be readable for a reload.
sed -i "s|^service:|&\n  user: $RUN_USER|" "$POLICY"
chown -R "$RUN_USER:" "$W/tokens"
chmod 644 "$POLICY"
start_daemon || exit 1
printf 'm' >"$W/m"

st() { awk -v k="$1:" '$1 == k { $1 = ""; print substr($0, 2) }' "/proc/$DAEMON_PID/status"; }
same "uid: real, effective, saved, fs are $RUN_USER's" "$(st Uid | tr -s '\t ' ' ')" "$RUN_UID $RUN_UID $RUN_UID $RUN_UID"
same "gid: all $RUN_USER's group" "$(st Gid | tr -s '\t ' ' ')" "$RUN_GID $RUN_GID $RUN_GID $RUN_GID"
same "no capabilities left (effective)" "$(st CapEff)" "0000000000000000"
same "no capabilities left (permitted)" "$(st CapPrm)" "0000000000000000"
same "no_new_privs is set" "$(st NoNewPrivs)" "1"
same "seccomp filter mode" "$(st Seccomp)" "2"
same "every thread is filtered" "$(grep -h '^Seccomp:' /proc/"$DAEMON_PID"/task/*/status | sort -u | tr -d '\t ')" "Seccomp:2"
same "core file size limit 0" "$(awk '/^Max core file size/ {print $5 $6}' "/proc/$DAEMON_PID/limits")" "00"
# Not dumpable (set again after the uid change, which resets it): the
# kernel gives /proc/PID/* to root, so even its own user cannot read them.
same "not dumpable (/proc/PID/environ owned by root)" "$(stat -c %u "/proc/$DAEMON_PID/environ")" "0"
if runuser -u "$RUN_USER" -- cat "/proc/$DAEMON_PID/environ" >/dev/null 2>&1; then
	not_ok "$RUN_USER reads the daemon's /proc/PID/environ"; else ok "$RUN_USER cannot read the daemon's /proc/PID/environ"; fi
check "sign after the drop (token files read as $RUN_USER)" ctl sign k -i "$W/m"
check "the start event names the user" grep -q "\"event\":\"start\",.*\"user\":\"$RUN_USER\"" "$AUDIT"
reload_daemon
check "a reload works as $RUN_USER under seccomp" grep -q '"event":"reload","result":"ok"' "$AUDIT"
check "sign after the reload" ctl sign k -i "$W/m"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?; DAEMON_PID=
same "SIGTERM: exit 0 (no seccomp kill on the way out)" "$rc" "0"
same "the stop event is written through the fd opened as root" "$(tail -1 "$AUDIT" | grep -o '"event":"stop"')" '"event":"stop"'
check "the chain verifies" "$CTL_BIN" audit verify "$AUDIT"

# refuse DESC MESSAGE: the daemon must not start, and must say why.
refuse() {
	if timeout 10 "$CUSTODIAND" -p "$POLICY" >"$W/e" 2>&1; then not_ok "$1 (started)"
	elif grep -qF -- "$2" "$W/e"; then ok "$1"
	else not_ok "$1"; sed 's/^/#   /' "$W/e"; fi
}
if setpriv --reuid 4000 --regid 0 --clear-groups "$CUSTODIAND" -p "$POLICY" >"$W/e" 2>&1; then
	not_ok "uid 4000 must not run a policy for $RUN_USER"; else
	check "uid 4000 cannot run a policy for $RUN_USER" grep -q "service.user is $RUN_USER (uid $RUN_UID), but the daemon runs as uid 4000" "$W/e"; fi
chmod 666 "$POLICY"
refuse "world-writable policy file" "policy file $POLICY: writable by others (mode 0666): refused"
chmod 644 "$POLICY"; chown 4000 "$POLICY"
refuse "policy file owned by another user" "policy file $POLICY: owned by uid 4000, neither root nor uid 0 that runs the daemon: refused"
chown 0 "$POLICY"
chmod 602 "$W/pin"
refuse "world-writable PIN file" "PIN file $W/pin: writable by others (mode 0602): refused"
chmod 600 "$W/pin"; chown 4000 "$W/pin"
refuse "PIN file owned by another user" "PIN file $W/pin: owned by uid 4000"
chown 0 "$W/pin"
chmod 666 "$AUDIT"
refuse "world-writable audit log" "audit log $AUDIT: writable by others (mode 0666): refused"
chmod 600 "$AUDIT"
mkdir -m 1777 "$W/open"
sed -i "s|^  audit_log: .*|  audit_log: $W/open/audit.log|" "$POLICY"
refuse "audit log in a world-writable directory (even sticky)" "directory of the audit log $W/open: writable by others (mode 1777): refused"
sed -i "s|^  audit_log: .*|  audit_log: $AUDIT|; s|^  socket: .*|  socket: $W/open/ct.sock|" "$POLICY"
refuse "socket in a world-writable directory" "directory of the socket $W/open: writable by others (mode 1777): refused"
sed -i "s|^  socket: .*|  socket: $SOCK|" "$POLICY"
start_daemon && ok "with the paths fixed it starts again" || not_ok "with the paths fixed it starts again"
check "and serves" ctl sign k -i "$W/m"
finish
