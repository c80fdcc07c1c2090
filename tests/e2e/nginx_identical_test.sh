#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# An identical nginx candidate under wrk -c8 for 3 s: zero divergences, and
# captured exchanges >= 99% of the requests wrk reports.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); start_nginx primary "$P1"; MASTER=$NGINX_MASTER
P2=$(free_port); start_nginx candidate "$P2"
PM=$(free_port)
start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -o "$T/s.db" \
	--metrics "127.0.0.1:$PM" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
ok "shadowd attaches to nginx's master and worker"

wrk -t2 -c8 -d3s "http://127.0.0.1:$P1/small" > "$T/wrk.txt" 2>&1
curl -s "http://127.0.0.1:$P1/static.json" >/dev/null
requests=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
sleep 1.5
curl -s "http://127.0.0.1:$PM/metrics" > "$T/metrics.txt"
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
echo "# wrk: $(grep -E 'Requests/sec' "$T/wrk.txt"); $(tail -1 "$T/shadowd.log")"

assert_py "zero divergences against an identical candidate" "$T/stats.json" \
	'j["totals"]["diverged"] == 0'
assert_py "no candidate errors" "$T/stats.json" 'j["totals"]["candidate_errors"] == 0'
assert_py "captured >= 99% of wrk's $requests requests" "$T/stats.json" \
	"j['totals']['captured'] >= 0.99 * $requests"
assert_py "something was replayed and compared" "$T/stats.json" \
	'j["totals"]["replayed"] > 100'
assert_py "no lost events or gaps" "$T/stats.json" \
	'j["capture"]["lost_events"] == 0 and j["capture"]["gaps"] == 0'
assert_py "sampled = replayed + shed + unsafe_skipped" "$T/stats.json" \
	't=j["totals"]; t["sampled"] == t["replayed"] + t["shed"] + t["unsafe_skipped"]'

# The Prometheus text parses: every sample belongs to a family with HELP
# and TYPE, names are request_shadow_*, values are numbers, and the
# counters agree with the store.
python3 - "$T/metrics.txt" "$T/stats.json" > "$T/metrics-check.txt" 2>&1 <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
stats = json.load(open(sys.argv[2]))
helps, types, samples = set(), {}, {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        types[name] = kind
    elif line:
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)', line)
        assert m, "bad sample line: " + line
        float(m.group(3))
        samples.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
for name in samples:
    family = re.sub(r"_(bucket|sum|count)$", "", name) if types.get(re.sub(r"_(bucket|sum|count)$", "", name)) == "histogram" else name
    assert family.startswith("request_shadow_"), name
    assert family in helps and family in types, "no HELP/TYPE for " + family
for need in ["request_shadow_captured_total", "request_shadow_diverged_total",
             "request_shadow_replay_queue_depth", "request_shadow_breaker_open",
             "request_shadow_ring_buffer_used_bytes",
             "request_shadow_primary_latency_seconds_bucket",
             "request_shadow_candidate_latency_seconds_bucket"]:
    assert need in samples, "missing " + need
captured = sum(v for _, v in samples["request_shadow_captured_total"])
assert 0 < captured <= stats["totals"]["captured"], (captured, stats["totals"]["captured"])
print("metrics ok", len(samples), "families")
PY
if grep -q "metrics ok" "$T/metrics-check.txt"; then ok "the metrics endpoint serves valid Prometheus text"; else not_ok "the metrics endpoint serves valid Prometheus text" "$(cat "$T/metrics-check.txt")"; fi
finish
