#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# --record while shadowing live, then --from-capture as an unprivileged
# user against the same candidate: the same divergences, no root needed.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); bg node "$SRC/tests/servers/api.js" "$P1"; PRIMARY=$LAST; wait_port "$P1"
P2=$(free_port); bg python3 "$SRC/tests/servers/api_candidate.py" "$P2" --plant; wait_port "$P2"
start_shadowd -p "$PRIMARY" -c "http://127.0.0.1:$P2" -o "$T/live.db" --record "$T/traffic.cap" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
for i in $(seq 1 5); do
	for path in /users/7 /users/13 /version "/items?page=3" /health; do
		curl -s --compressed -o /dev/null "http://127.0.0.1:$P1$path"
	done
done
sleep 1
stop_shadowd
check "the recording exists and is 0600" test "$(stat -c %a "$T/traffic.cap")" = 600

chmod 644 "$T/traffic.cap"
mkdir -p "$T/nobody" && chown nobody "$T/nobody"
if ! runuser -u nobody -- "$SHADOWD" --from-capture "$T/traffic.cap" \
	-c "http://127.0.0.1:$P2" -o "$T/nobody/replay.db" > "$T/replay.log" 2>&1; then
	not_ok "--from-capture runs as nobody" "$(cat "$T/replay.log")"
else
	ok "--from-capture runs as nobody"
fi
echo "# $(tail -1 "$T/replay.log")"
"$DUMP" --store "$T/live.db" stats --json > "$T/live.json"
"$DUMP" --store "$T/nobody/replay.db" stats --json > "$T/replay.json"
"$DUMP" --store "$T/live.db" groups --json > "$T/live-groups.json"
"$DUMP" --store "$T/nobody/replay.db" groups --json > "$T/replay-groups.json"
assert_py "live run saw 25 exchanges and 15 divergences" "$T/live.json" \
	'(j["totals"]["captured"], j["totals"]["diverged"]) == (25, 15)'
python3 - "$T/live.json" "$T/replay.json" "$T/live-groups.json" "$T/replay-groups.json" > "$T/cmp.txt" 2>&1 <<'PY'
import json, sys
live, rep, lg, rg = (json.load(open(f)) for f in sys.argv[1:5])
keys = ["captured", "replayed", "diverged", "diverged_status", "diverged_headers", "diverged_body"]
a = {k: live["totals"][k] for k in keys}
b = {k: rep["totals"][k] for k in keys}
assert a == b, (a, b)
sig = lambda g: sorted((x["endpoint"], tuple(x["parts"]), x["count"]) for x in g)
assert sig(lg) == sig(rg), (sig(lg), sig(rg))
print("same", a)
PY
if grep -q "same" "$T/cmp.txt"; then ok "the recording reproduces the live divergences"; else not_ok "the recording reproduces the live divergences" "$(cat "$T/cmp.txt")"; fi
finish
