#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Noise cancellation both ways. Every response carries a random "ts"; the
# candidate is the same node service with no ignore rule. Without noise
# cancellation every exchange would diverge on $.ts; with it there are zero
# divergences and the noise is counted, while a planted difference on one
# field (user 13's name) is still reported, with that path alone.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1" noisy; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg node "$SRC/tests/servers/api.js" "$P2" noisy-planted; wait_port "$P2"
P3=$(free_port); bg node "$SRC/tests/servers/api.js" "$P3" noisy; wait_port "$P3"

traffic() {
	for i in $(seq 1 4); do
		for path in /users/7 /users/13 /version "/items?page=2"; do
			curl -s -o /dev/null "http://127.0.0.1:$P1$path"
		done
	done
	sleep 1
}

for mode in recheck primary; do
	if [ $mode = recheck ]; then flag=(--noise-recheck); else flag=(--noise-primary "http://127.0.0.1:$P3"); fi
	start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/$mode.db" "${flag[@]}" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; continue; }
	traffic
	stop_shadowd
	"$DUMP" --store "$T/$mode.db" stats --json > "$T/$mode-stats.json"
	"$DUMP" --store "$T/$mode.db" list --json > "$T/$mode-list.json"
	echo "# $mode: $(tail -1 "$T/shadowd.log")"
	assert_py "$mode: only user 13 diverges (4 times)" "$T/$mode-stats.json" \
		'j["totals"]["diverged"] == 4 and j["totals"]["replayed"] == 16'
	assert_py "$mode: noise counted on every exchange" "$T/$mode-stats.json" \
		'j["totals"]["noise_suppressed"] == 16'
	assert_py "$mode: the planted field is reported alone, as \$.name" "$T/$mode-list.json" \
		'len(j) == 4 and all([d["path"] for d in r["body"]["diffs"]] == ["$.name"] for r in j)'
	assert_py "$mode: \$.ts is not among the top fields" "$T/$mode-stats.json" \
		'all(f["path"] != "$.ts" for e in j["endpoints"] for f in e["top_fields"])'
done
finish
