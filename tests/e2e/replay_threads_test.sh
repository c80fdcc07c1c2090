#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# --replay-threads 2 against an identical candidate under wrk, every request
# a different /echo/N (answered with N, so a replay paired with another
# request's answer would diverge), plus POSTs that are not replayed: zero
# divergences, and sampled = replayed + shed + unsafe_skipped in the store
# (totals and per endpoint) and in the metrics.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg node "$SRC/tests/servers/api.js" "$P2"; wait_port "$P2"
PM=$(free_port)
start_shadowd -p "$PRIMARY" -P "$P1" -c "http://127.0.0.1:$P2" -o "$T/s.db" \
	--replay-threads 2 --max-inflight 8 --metrics "127.0.0.1:$PM" ||
	{ not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }

cat > "$T/echo.lua" <<'LUA'
local n = 0
function setup(thread) thread:set("base", math.random(1, 1000) * 1000000) end
function request()
	n = n + 1
	return wrk.format("GET", "/echo/" .. (base + n))
end
LUA
wrk -t2 -c8 -d3s -s "$T/echo.lua" "http://127.0.0.1:$P1" > "$T/wrk.txt" 2>&1
for i in $(seq 1 5); do
	curl -s -o /dev/null -X POST -d '{}' "http://127.0.0.1:$P1/echo/$i"
done
sleep 1.5
curl -s "http://127.0.0.1:$PM/metrics" > "$T/metrics.txt"
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
echo "# wrk: $(grep -E 'Requests/sec' "$T/wrk.txt"); $(tail -1 "$T/shadowd.log")"

assert_py "zero divergences: every replay paired with its own request" \
	"$T/stats.json" 'j["totals"]["diverged"] == 0'
assert_py "no candidate errors" "$T/stats.json" 'j["totals"]["candidate_errors"] == 0'
assert_py "something was replayed" "$T/stats.json" 'j["totals"]["replayed"] > 500'
assert_py "the POSTs were skipped, not replayed" "$T/stats.json" \
	'j["totals"]["unsafe_skipped"] == 5'
assert_py "sampled = replayed + shed + unsafe_skipped, totals and per endpoint" \
	"$T/stats.json" \
	'f=lambda t: t["sampled"] == t["replayed"] + t["shed"] + t["unsafe_skipped"]; f(j["totals"]) and all(f(e) for e in j["endpoints"])'
python3 - "$T/metrics.txt" "$T/stats.json" > "$T/metrics-check.txt" 2>&1 <<'PY'
import json, re, sys
stats = json.load(open(sys.argv[2]))["totals"]
tot = {}
for line in open(sys.argv[1]):
    m = re.fullmatch(r'request_shadow_(\w+)_total\{endpoint="[^"]*"\} (\S+)\n?', line)
    if m:
        tot[m.group(1)] = tot.get(m.group(1), 0) + float(m.group(2))
s, r, sh, u = (tot.get(k, 0) for k in ("sampled", "replayed", "shed", "unsafe_skipped"))
assert s == r + sh + u, (s, r, sh, u)
assert r == stats["replayed"], (r, stats["replayed"])
print("metrics ok", s, r, sh, u)
PY
if grep -q "metrics ok" "$T/metrics-check.txt"; then
	ok "the metrics agree: sampled = replayed + shed + unsafe_skipped"
else
	not_ok "the metrics agree: sampled = replayed + shed + unsafe_skipped" "$(cat "$T/metrics-check.txt")"
fi
finish
