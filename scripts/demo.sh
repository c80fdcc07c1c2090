#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The demo: a node primary and a python candidate that differs from it in
# three planted ways (and in many harmless ones), shadowd attached to the
# primary, some traffic, then what shadow-dump says. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: attaching eBPF programs needs root; run 'sudo make demo'" >&2
	exit 1
fi
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
T=$(mktemp -d /tmp/shadow-demo-XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "demo: port $1 never opened" >&2; exit 1; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

P1=$(port); P2=$(port)
node tests/servers/api.js "$P1" & pids+=($!); PRIMARY=$!
python3 tests/servers/api_candidate.py "$P2" --plant & pids+=($!)
wait_port "$P1"; wait_port "$P2"
say "primary: node on :$P1 (chunked, gzip)   candidate: python on :$P2 (3 planted differences)"

./shadowd --pid "$PRIMARY" --candidate "http://127.0.0.1:$P2" --store "$T/shadow.db" \
	--ignore-header X-Request-Id 2> "$T/shadowd.log" & SHADOWD=$!; pids+=($SHADOWD)
for _ in $(seq 1 200); do grep -q "attached" "$T/shadowd.log" && break; sleep 0.05; done
cat "$T/shadowd.log"

say "traffic: 200 requests with curl against the primary"
for i in $(seq 1 20); do
	for path in /users/$i /users/13 /version "/items?page=$((i % 4))" /health; do
		curl -s --compressed -o /dev/null "http://127.0.0.1:$P1$path"
		curl -s -o /dev/null "http://127.0.0.1:$P1$path"
	done
done
sleep 1
kill -INT "$SHADOWD"; wait "$SHADOWD" 2>/dev/null || true
tail -1 "$T/shadowd.log"

say "shadow-dump stats"
./shadow-dump --store "$T/shadow.db" stats
say "shadow-dump groups"
./shadow-dump --store "$T/shadow.db" groups
id=$(./shadow-dump --store "$T/shadow.db" list --json --part body --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
say "shadow-dump show $id"
./shadow-dump --store "$T/shadow.db" show "$id"
say "shadow-dump verdict"
./shadow-dump --store "$T/shadow.db" verdict || true
