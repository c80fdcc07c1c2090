#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A candidate that answers after 500 ms, shadowd with --timeout 100 and
# every exchange sampled: the primary's clients never wait for it (their
# p99 stays far below the candidate's delay, no request fails), every
# replay ends as a timeout counted under its class, nothing is reported as
# a divergence, and nothing the primary served is lost. What is shed (the
# queue full, the breaker open) is passed over in the kernel, uncopied.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); start_nginx primary "$P1"; MASTER=$NGINX_MASTER
P2=$(free_port); bg node "$SRC/tests/servers/candidate.js" "$P2" echo 500
wait_port "$P2" || { not_ok "the slow candidate starts"; finish; exit; }

# wrk_run FILE: 3 s of -c8 against the primary; prints requests/s.
wrk_run() {
	wrk -t2 -c8 -d3s --latency "http://127.0.0.1:$P1/small" > "$1" 2>&1
	awk '/Requests\/sec/ {print $2}' "$1"
}
# p99 in ms from wrk's latency distribution.
p99_ms() {
	awk '/^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000}
		else if (v ~ /ms$/) {sub(/ms/,"",v)} else {sub(/s$/,"",v); v*=1000}
		print v}' "$1"
}

detached=$(wrk_run "$T/wrk-detached.txt")
PM=$(free_port)
start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" --timeout 100 \
	-s 1 -o "$T/s.db" --metrics "127.0.0.1:$PM" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
ok "shadowd attaches; the candidate answers after 500 ms, --timeout 100"
attached=$(wrk_run "$T/wrk-attached.txt")
requests=$(awk '/requests in/ {print $1}' "$T/wrk-attached.txt")
sleep 0.5 # the last replays time out
curl -s "http://127.0.0.1:$PM/metrics" > "$T/metrics.txt"
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
echo "# primary req/s detached $detached, attached $attached" \
	"(p99 $(p99_ms "$T/wrk-detached.txt") / $(p99_ms "$T/wrk-attached.txt") ms);" \
	"$(tail -1 "$T/shadowd.log")"

p99=$(p99_ms "$T/wrk-attached.txt")
if grep -qE 'Socket errors|Non-2xx' "$T/wrk-attached.txt"; then
	not_ok "the primary's clients saw no error" "$(cat "$T/wrk-attached.txt")"
else
	ok "the primary's clients saw no error ($requests requests)"
fi
if [ -n "$p99" ] && [ "$(echo "$p99 < 50" | bc -l)" = 1 ]; then
	ok "the primary's p99 ($p99 ms) is nowhere near the candidate's 500 ms"
else
	not_ok "the primary's p99 stays far below the candidate's delay" "p99: $p99 ms" "$(cat "$T/wrk-attached.txt")"
fi
assert_py "captured >= 99% of the primary's $requests requests" "$T/stats.json" \
	"j['totals']['captured'] >= 0.99 * $requests"
assert_py "zero divergences" "$T/stats.json" 'j["totals"]["diverged"] == 0'
assert_py "timeouts are counted as candidate errors" "$T/stats.json" \
	'j["totals"]["candidate_errors"] > 0'
assert_py "every candidate error is a timeout" "$T/stats.json" \
	't = j["totals"]; sum(e["candidate_error_classes"]["timeout"] for e in j["endpoints"]) == t["candidate_errors"]'
assert_py "what could not be sent is shed, and counted" "$T/stats.json" \
	't = j["totals"]; t["sampled"] == t["replayed"] + t["shed"] + t["unsafe_skipped"] and t["sampled"] == t["captured"]'
assert_py "no lost events or gaps" "$T/stats.json" \
	'j["capture"]["lost_events"] == 0 and j["capture"]["gaps"] == 0'
uncopied=$(awk '/^request_shadow_capture_uncopied_total/ {print $2}' "$T/metrics.txt")
mismatch=$(awk '/^request_shadow_sample_mismatch_total/ {print $2}' "$T/metrics.txt")
assert_py "most of what was shed was passed over in the kernel, uncopied (${uncopied:-none})" "$T/stats.json" \
	"j['totals']['shed'] > 0 and ${uncopied:-0} >= 0.5 * j['totals']['shed']"
check "the kernel and user space agree on what is sampled" test "${mismatch:-x}" = 0
said=$(sed -nE 's/.* ([0-9]+) replayed, .* ([0-9]+) candidate errors, ([0-9]+) shed.*/\1 \2 \3/p' "$T/shadowd.log")
assert_py "shadowd's summary says what the store says (replayed, errors, shed: $said)" "$T/stats.json" \
	"t = j['totals']; '%d %d %d' % (t['replayed'], t['candidate_errors'], t['shed']) == '$said'"
finish
