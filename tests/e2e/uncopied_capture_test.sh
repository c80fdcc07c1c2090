#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Answers the kernel passed over (SKIP records), and heads it sent as
# their request line alone (REQLINE), through the whole daemon,
# from a capture file (no root): at --sample 0 each exchange is counted as
# captured and nothing is lost; at --sample 1 the same exchanges would have
# been replayed, so each is a counted loss (sample_mismatch), never a
# replay of a request without its answer.
. "$(dirname "$0")/lib.sh"

# No recording holds this shape (--record has the kernel copy everything),
# so capgen writes it, with the daemon's writer.
"$CAPGEN" uncopied "$T/skips.cap" || { not_ok "capgen writes the capture"; finish; exit; }

for rate in 0 1; do
	if ! "$SHADOWD" --from-capture "$T/skips.cap" -s "$rate" -c http://127.0.0.1:1 \
		-o "$T/r$rate.db" > "$T/r$rate.log" 2>&1; then
		not_ok "--from-capture at --sample $rate" "$(cat "$T/r$rate.log")"
		continue
	fi
	"$DUMP" --store "$T/r$rate.db" stats --json > "$T/r$rate.json"
done
assert_py "--sample 0: 6 captured, none sampled, no loss" "$T/r0.json" \
	't = j["totals"]; c = j["capture"]; (t["captured"], t["sampled"], t["replayed"], c["parse_errors"], c["gaps"]) == (6, 0, 0, 0, 0)'
assert_py "--sample 0: counted under their endpoint" "$T/r0.json" \
	'[(e["endpoint"], e["captured"]) for e in j["endpoints"]] == [("GET /users/{id}", 6)]'
assert_py "--sample 1: nothing replayed without its answer; 6 losses counted" "$T/r1.json" \
	't = j["totals"]; c = j["capture"]; (t["captured"], t["sampled"], t["replayed"], c["parse_errors"]) == (6, 0, 0, 6)'
finish
