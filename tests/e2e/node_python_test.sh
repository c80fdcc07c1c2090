#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A node primary (chunked, gzip) against a python candidate with three
# planted differences: exactly those divergences, with the right parts and
# paths, and none where only key order, number formatting, encoding or
# whitespace differ.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg python3 "$SRC/tests/servers/api_candidate.py" "$P2" --plant; wait_port "$P2"
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/s.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
ok "shadowd attaches to node"

for i in 1 2 3; do
	for path in /users/7 /users/13 /users/21 /version "/items?page=1" "/items?page=3" /health /nope; do
		curl -s --compressed -o /dev/null "http://127.0.0.1:$P1$path"
		curl -s -o /dev/null "http://127.0.0.1:$P1$path"
	done
done
sleep 1
stop_shadowd
"$DUMP" --store "$T/s.db" stats --json > "$T/stats.json"
"$DUMP" --store "$T/s.db" export > "$T/export.jsonl"
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$T/export.jsonl" > "$T/records.json"
echo "# $(tail -1 "$T/shadowd.log")"

assert_py "48 exchanges captured and replayed" "$T/stats.json" \
	'j["totals"]["captured"] == 48 and j["totals"]["replayed"] == 48'
assert_py "exactly the 3 planted endpoints diverge, 6 times each" "$T/stats.json" \
	'sorted((e["endpoint"], e["diverged"]) for e in j["endpoints"] if e["diverged"]) == [("GET /items", 6), ("GET /users/{id}", 6), ("GET /version", 6)]'
assert_py "18 divergences: 6 status, 6 headers, 12 body (the 500's error body too)" "$T/stats.json" \
	't=j["totals"]; (t["diverged"], t["diverged_status"], t["diverged_headers"], t["diverged_body"]) == (18, 6, 6, 12)'
assert_py "users/13: body diverges at \$.name only" "$T/records.json" \
	'all([d["path"] for d in r["body"]["diffs"]] == ["$.name"] and not r["headers"]["diverged"] and not r["status"]["diverged"] for r in j if r["request"]["target"] == "/users/13") and sum(r["request"]["target"] == "/users/13" for r in j) == 6'
assert_py "version: header X-Api-Version 1 -> 2 only" "$T/records.json" \
	'all(r["headers"]["diffs"] == [{"name": "X-Api-Version", "primary": "1", "candidate": "2"}] and not r["body"]["diverged"] for r in j if r["request"]["target"] == "/version")'
assert_py "items?page=3: status 200 -> 500" "$T/records.json" \
	'all(r["status"]["diverged"] and r["primary"]["status"] == 200 and r["candidate"]["status"] == 500 for r in j if r["request"]["target"] == "/items?page=3")'
assert_py "no divergence on key order, 10 vs 10.0, gzip, chunking, whitespace" "$T/records.json" \
	'not [r for r in j if r["request"]["target"] in ("/users/7", "/users/21", "/items?page=1", "/health", "/nope")]'
assert_py "the decoded gzip body is in the record" "$T/records.json" \
	'any("\"name\":\"user13\"" in r["primary"]["body"] for r in j)'
finish
