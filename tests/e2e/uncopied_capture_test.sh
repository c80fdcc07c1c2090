#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Answers the kernel passed over (SKIP records), and heads it sent as
# their request line alone (REQLINE), through the whole daemon,
# from a capture file (no root): at --sample 0 each exchange is counted as
# captured and nothing is lost; at --sample 1 the same exchanges would have
# been replayed, so each is a counted loss (sample_mismatch), never a
# replay of a request without its answer.
. "$(dirname "$0")/lib.sh"

python3 - "$T/skips.cap" <<'PY'
import struct, sys
f = open(sys.argv[1], "wb")
f.write(struct.pack("<8sIIQQ", b"SHDWCAP\0", 1, 32, 1000, 1700000000 * 10**9))
ts = 1000
def rec(kind, direction, offset, payload=b"", size=None):
    global ts
    ts += 1000
    size = len(payload) if size is None else size
    r = struct.pack("<QQIIIIIBBH", ts, offset, 40, 7, 1, len(payload), size,
                    kind, direction, 0) + payload
    f.write(r + b"\0" * (-len(r) % 8))
opn = struct.pack("<HHHH16s16s", 2, 8080, 5000, 0, bytes([127, 0, 0, 1]) + bytes(12),
                  bytes([127, 0, 0, 1]) + bytes(12))
rec(1, 0, 0, opn)
off_in = off_out = 0
for i in range(6):
    req = b"GET /users/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
    if i % 2:  # REQLINE: the head as its request line alone
        rec(7, 0, off_in, b"GET /users/%d" % i, size=len(req))
    else:
        rec(2, 0, off_in, req)
    off_in += len(req)
    # SKIP: 300 outbound bytes, payload = the last write's timestamp.
    rec(6, 1, off_out, struct.pack("<Q", ts + 500), size=300); off_out += 300
rec(3, 0, 0, struct.pack("<QQII", off_in, off_out, 1, 0))
PY

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
