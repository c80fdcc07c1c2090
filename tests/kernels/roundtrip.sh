#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# One kernel's check, run as /init inside a test VM (scripts/test-kernels.sh)
# or directly on the host: `shadowd --check`, then a real capture round
# trip. busybox httpd serves a file on 127.0.0.1 (the primary), a second
# one serves a different file (the candidate), shadowd attaches to the
# primary by pid, busybox wget fetches the file a few times, and the store
# is printed for the caller to hold against the bytes served. Plain sh and
# busybox only: the VM has nothing else.
# Usage: roundtrip.sh SHADOWD SHADOW_DUMP WORKDIR PRIMARY_PORT CANDIDATE_PORT
set -u
SHADOWD=$1 DUMP=$2 W=$3 PP=$4 CP=$5
BB=busybox
GETS=4

mkdir -p "$W/p" "$W/c"
# The body the primary serves, byte for byte what the capture must hold.
printf 'request-shadow kernel matrix: primary\nline two\n' > "$W/p/file.txt"
printf 'request-shadow kernel matrix: candidate\n' > "$W/c/file.txt"

echo "=== kernel $(uname -r)"
echo "=== check"
"$SHADOWD" --check
rc=$?
echo "=== check-rc $rc"
if [ $rc -ne 0 ]; then
	# The end of the verifier's log of what was refused, for the reader.
	echo "=== check-log"
	"$SHADOWD" --check -v 2>&1 | grep -v '^  loaded' | tail -n 400
fi
# make bench loads the programs with their regions timed: larger, held to
# the same budget.
echo "=== profile-check"
SHADOWD_PROFILE=1 "$SHADOWD" --check
echo "=== profile-check-rc $?"

$BB httpd -f -p "127.0.0.1:$PP" -h "$W/p" & PRIMARY=$!
$BB httpd -f -p "127.0.0.1:$CP" -h "$W/c" & CANDIDATE=$!
"$SHADOWD" --pid "$PRIMARY" --candidate "http://127.0.0.1:$CP" \
	--store "$W/shadow.db" --record "$W/capture.cap" --duration 120 \
	2> "$W/shadowd.log" & SD=$!
# Every wait has a deadline: 60 s for the attach (a slow emulated CPU
# verifies the programs in seconds, not minutes).
i=0
while ! grep -q "attached" "$W/shadowd.log" 2>/dev/null; do
	if ! kill -0 "$SD" 2>/dev/null || [ $i -ge 600 ]; then
		echo "=== attach failed"
		cat "$W/shadowd.log"
		kill "$PRIMARY" "$CANDIDATE" "$SD" 2>/dev/null
		echo "=== end"
		exit 1
	fi
	i=$((i + 1))
	$BB sleep 0.1
done
got=0
n=1
while [ $n -le $GETS ]; do
	$BB timeout 10 $BB wget -q -O "$W/got$n" "http://127.0.0.1:$PP/file.txt" &&
		cmp -s "$W/got$n" "$W/p/file.txt" && got=$((got + 1))
	n=$((n + 1))
done
echo "=== fetched $got of $GETS"
# Let the last records reach the daemon; SIGINT then makes it poll once
# more and wait for the replays in flight (up to 30 s here).
$BB sleep 1
kill -INT "$SD"
i=0
while kill -0 "$SD" 2>/dev/null && [ $i -lt 300 ]; do $BB sleep 0.1; i=$((i + 1)); done
kill -9 "$SD" 2>/dev/null
kill "$PRIMARY" "$CANDIDATE" 2>/dev/null
echo "=== shadowd"
cat "$W/shadowd.log"
echo "=== stats"
"$DUMP" --store "$W/shadow.db" stats --json
echo "=== export"
"$DUMP" --store "$W/shadow.db" export
echo "=== end"
