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
class S(http.server.ThreadingHTTPServer):
    # libcurl opens replays' connections in parallel: the default backlog
    # of 5 drops some of them.
    request_queue_size = 128
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
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
	# Until the candidate's log stops growing (the replays trail the
	# client), 15 s at most; SIGINT then waits for any still in flight.
	prev=-1
	for _ in $(seq 1 30); do
		lines=$(wc -l < "$T/users-$run.txt")
		[ "$lines" = "$prev" ] && break
		prev=$lines
		sleep 0.5
	done
	stop_shadowd
	kill "$CAND"; sleep 0.2
	"$DUMP" --store "$T/s$run.db" stats --json > "$T/stats-$run.json"
done
python3 - "$T"/users-1.txt "$T"/users-2.txt "$T"/stats-1.json "$T"/stats-2.json > "$T/cmp.txt" 2>&1 <<'PY'
import collections, json, sys
runs = [collections.Counter(open(f).read().split()) for f in sys.argv[1:3]]
stats = [json.load(open(f))["totals"] for f in sys.argv[3:5]]
for r, st in zip(runs, stats):
    # A sampled request reaches the candidate unless shed (queue full,
    # breaker open), which is counted: only that many may be missing.
    lost = st["shed"]
    once = [u for u, n in r.items() if n != 2]
    assert 60 <= len(r) <= 140, "users replayed: %d of 1000 (%s)" % (len(r), st)
    assert st["sampled"] == st["replayed"] + st["shed"] + st["unsafe_skipped"], st
    assert len(once) <= lost, \
        "%d users sampled once only (%s), %d shed" % (len(once), once[:5], lost)
both = set(runs[0]) & set(runs[1])
diff = set(runs[0]) ^ set(runs[1])
lost = sum(st["shed"] for st in stats)
assert len(diff) <= lost, "the two runs chose different users: %s (%d shed)" % (sorted(diff)[:5], lost)
print("sticky", len(both), "users of 1000,", lost, "replays shed")
PY
if grep -q "sticky" "$T/cmp.txt"; then ok "about 10% of users, each always or never, the same in both runs"; else not_ok "about 10% of users, each always or never, the same in both runs" "$(cat "$T/cmp.txt")"; fi
echo "# $(cat "$T/cmp.txt")"; for r in 1 2; do echo "# run $r: $(wc -l < "$T/users-$r.txt") replays logged; $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"totals\"])" "$T/stats-$r.json")"; done
finish
