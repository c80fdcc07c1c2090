#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# 30 pipelined requests on a keep-alive connection opened before attach:
# all replayed, each paired with its own response (an identical candidate
# answers /echo/N with N, so any mis-pairing would be a divergence).
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg node "$SRC/tests/servers/api.js" "$P2"; wait_port "$P2"

# The client: connects and completes one request now, waits for the go
# file, then writes 30 requests at once and reads the 30 responses.
cat > "$T/client.py" <<'PY'
import os, socket, sys, time
port, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
def read_responses(n):
    buf, got = b"", 0
    while got < n:
        data = s.recv(65536)
        if not data:
            raise SystemExit("connection closed after %d responses" % got)
        buf += data
        got = buf.count(b"\r\n0\r\n\r\n")
    return buf
s.sendall(b"GET /echo/0 HTTP/1.1\r\nHost: t\r\n\r\n")
read_responses(1)
open(out, "w").write("connected\n")
while not os.path.exists(go):
    time.sleep(0.02)
s.sendall(b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(1, 31)))
buf = read_responses(30)
open(out, "a").write("done %d\n" % buf.count(b"HTTP/1.1 200"))
time.sleep(0.3)
s.close()
PY
python3 "$T/client.py" "$P1" "$T/go" "$T/client.out" &
CLIENT=$!
for _ in $(seq 1 100); do grep -q connected "$T/client.out" 2>/dev/null && break; sleep 0.05; done
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
check "shadowd picked up the open connection" grep -q "1 connection joined midstream" "$T/shadowd.log"
touch "$T/go"
wait "$CLIENT"
check "the client got 30 responses" grep -q "done 30" "$T/client.out"
sleep 1
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
echo "# $(tail -1 "$T/shadowd.log")"
assert_py "30 pipelined exchanges captured" "$T/stats.json" 'j["totals"]["captured"] == 30'
assert_py "all 30 replayed" "$T/stats.json" 'j["totals"]["replayed"] == 30'
assert_py "each paired with its own response: zero divergences" "$T/stats.json" 'j["totals"]["diverged"] == 0'
finish
