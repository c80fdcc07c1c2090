#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Garbage, oversized and truncated requests on the wire: shadowd survives and
# later good requests are diffed correctly. kill -9 of shadowd mid-traffic:
# the store passes PRAGMA integrity_check and a restarted daemon goes on
# writing to it.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg python3 "$SRC/tests/servers/api_candidate.py" "$P2" --plant; wait_port "$P2"
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }

python3 - "$P1" <<'PY'
import socket, sys
port = int(sys.argv[1])
def send(data, read=True):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(data)
        s.settimeout(1)
        if read:
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    finally:
        s.close()
send(b"\x00\xff\x13garbage\r\n\r\nmore garbage\x01\x02" * 100)
send(b"GET /" + b"a" * (100 * 1024) + b" HTTP/1.1\r\nHost: t\r\n\r\n")
send(b"GET /users/1 HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n")
send(b"GET /users/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\nshort", read=False)
send(b"GET /users/1 HT", read=False)
PY
for path in /users/13 /users/7 /version; do curl -s --compressed -o /dev/null "http://127.0.0.1:$P1$path"; done
sleep 1
check "shadowd survived bad input" kill -0 "$SHADOWD_PID"
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
"$DUMP" --store "$T/s.db" export > "$T/export.jsonl"
echo "# $(tail -1 "$T/shadowd.log")"
assert_py "good requests after bad ones are diffed: 2 divergences" "$T/stats.json" \
	'j["totals"]["diverged"] == 2 and j["totals"]["diverged_body"] == 1 and j["totals"]["diverged_headers"] == 1'
assert_py "the bad input is counted as parse errors" "$T/stats.json" 'j["capture"]["parse_errors"] >= 1'

# kill -9 in the middle of traffic, then a restart on the same store.
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s.db" || { not_ok "shadowd restarts" "$(cat "$T/shadowd.log")"; finish; exit; }
( for i in $(seq 1 400); do curl -s -o /dev/null "http://127.0.0.1:$P1/users/13"; done ) &
LOAD=$!
sleep 1.5
kill -9 "$SHADOWD_PID"
wait "$LOAD"
check "integrity_check after kill -9" test "$(sqlite3 "$T/s.db" 'PRAGMA integrity_check')" = ok
check "shadow-dump reads the store after kill -9" "$DUMP" --store "$T/s.db" list --json
before=$("$DUMP" --store "$T/s.db" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["diverged"])')
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s.db" || { not_ok "shadowd restarts after kill -9" "$(cat "$T/shadowd.log")"; finish; exit; }
for i in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$P1/users/13"; done
sleep 0.5
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/after.json"
assert_py "the restarted daemon goes on writing (3 more divergences)" "$T/after.json" \
	"j['totals']['diverged'] == $before + 3"
check "integrity_check after the restart" test "$(sqlite3 "$T/s.db" 'PRAGMA integrity_check')" = ok
finish
