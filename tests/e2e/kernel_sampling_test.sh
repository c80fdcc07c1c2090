#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# --sample 0.3 with the default key: the kernel decides (the attach line
# says so) and makes the same choices user space makes when it decides
# itself (--record turns the kernel's decision off): the same exchanges
# sampled per endpoint, every request captured, zero divergences against
# an identical candidate, nothing lost.
. "$(dirname "$0")/lib.sh"
require_root

P1=$(free_port); start_nginx primary "$P1"; MASTER=$NGINX_MASTER
P2=$(free_port); start_nginx candidate "$P2"

# 4 keep-alive connections: 300 GETs and 30 HEADs with distinct keys, and
# 10 POSTs whose body comes in a second write.
drive() {
	python3 - "$P1" <<'PY'
import http.client, sys
port = int(sys.argv[1])
conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(4)]
n = 0
for i in range(340):
    c = conns[i % 4]
    if i % 34 == 5:
        c.putrequest("POST", "/small?u=%d" % i)
        c.putheader("Content-Length", "5")
        c.endheaders()
        c.send(b"hello")
    else:
        c.request("HEAD" if i % 11 == 3 else "GET", "/static.json?u=%d" % i)
    r = c.getresponse()
    r.read()
    n += 1
print(n)
PY
}

PM=$(free_port)
for run in kernel user; do
	extra=(--metrics "127.0.0.1:$PM")
	[ "$run" = user ] && extra=(--record "$T/user.cap")
	start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -s 0.3 \
		-o "$T/$run.db" "${extra[@]}" || { not_ok "shadowd attaches ($run)" "$(cat "$T/shadowd.log")"; finish; exit; }
	cp "$T/shadowd.log" "$T/$run.attach"
	sent=$(drive)
	sleep 1.5
	[ "$run" = kernel ] && curl -s "http://127.0.0.1:$PM/metrics" > "$T/metrics.txt"
	stop_shadowd
	cp "$T/shadowd.log" "$T/$run.log"
	"$DUMP" --store "$T/$run.db" stats --json > "$T/$run.json"
	echo "# $run: $(tail -1 "$T/$run.log")"
done

check "the attach line says the kernel decides" grep -q "decided in the kernel" "$T/kernel.attach"
check "with --record, user space decides" bash -c "! grep -q 'decided in the kernel' '$T/user.attach'"
uncopied=$(awk '/^request_shadow_capture_uncopied_total/ {print $2}' "$T/metrics.txt")
mismatch=$(awk '/^request_shadow_sample_mismatch_total/ {print $2}' "$T/metrics.txt")
check "the kernel passed over the unsampled answers (${uncopied:-none} of $sent)" \
	test "${uncopied:-0}" -ge $((sent / 2))
check "no decision of the kernel disagreed with user space's" test "${mismatch:-x}" = 0
for run in kernel user; do
	assert_py "$run: all $sent requests captured, nothing lost" "$T/$run.json" \
		"c = j['capture']; (j['totals']['captured'], c['lost_events'], c['gaps'], c['parse_errors']) == ($sent, 0, 0, 0)"
	assert_py "$run: zero divergences, no candidate errors" "$T/$run.json" \
		't = j["totals"]; (t["diverged"], t["candidate_errors"]) == (0, 0)'
	assert_py "$run: about 30% sampled" "$T/$run.json" \
		"0.15 * $sent < j['totals']['sampled'] < 0.45 * $sent"
done
python3 - "$T/kernel.json" "$T/user.json" > "$T/cmp.txt" 2>&1 <<'PY'
import json, sys
k, u = (json.load(open(f)) for f in sys.argv[1:3])
def per(j):
    return {e["endpoint"]: (e["captured"], e["sampled"], e["replayed"], e["unsafe_skipped"])
            for e in j["endpoints"]}
print(per(k)); print(per(u))
sys.exit(0 if per(k) == per(u) else 1)
PY
check "kernel and user space sample the same exchanges per endpoint" test $? -eq 0
cat "$T/cmp.txt" | sed 's/^/# /'
finish
