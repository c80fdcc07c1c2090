#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Sticky sampling across daemons: --sample 0.1 --sample-key header:X-User
# over 1000 users, two requests each. About 10% of the users are replayed,
# each user always or never, and two separate daemon runs pick the same
# users.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port)
# The candidate logs the X-User of every request it is sent.
cat > "$T/cand.py" <<'PY'
import http.server, sys
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        log.write(self.headers.get("X-User", "-") + "\n")
        body = b'{"n":0}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
cat > "$T/client.py" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for rep in range(2):
    for u in range(1000):
        c.request("GET", "/echo/%d" % rep, headers={"X-User": "user-%d" % u})
        c.getresponse().read()
PY
for run in 1 2; do
	bg python3 "$T/cand.py" "$P2" "$T/users-$run.txt"; CAND=$LAST; wait_port "$P2"
	start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s$run.db" \
		--sample 0.1 --sample-key header:X-User || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
	python3 "$T/client.py" "$P1"
	sleep 1
	stop_shadowd
	kill "$CAND"; sleep 0.2
done
python3 - "$T/users-1.txt" "$T/users-2.txt" > "$T/cmp.txt" 2>&1 <<'PY'
import collections, sys
runs = [collections.Counter(open(f).read().split()) for f in sys.argv[1:3]]
for r in runs:
    assert 60 <= len(r) <= 140, "users replayed: %d of 1000" % len(r)
    assert all(n == 2 for n in r.values()), "a user sampled once only"
assert set(runs[0]) == set(runs[1]), "the two runs chose different users"
print("sticky", len(runs[0]), "users of 1000")
PY
if grep -q "sticky" "$T/cmp.txt"; then ok "about 10% of users, each always or never, the same in both runs"; else not_ok "about 10% of users, each always or never, the same in both runs" "$(cat "$T/cmp.txt")"; fi
echo "# $(cat "$T/cmp.txt")"
finish
