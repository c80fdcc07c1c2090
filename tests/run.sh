#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs test programs (Criterion binaries and TAP-speaking scripts), shows
# their output, and closes with one line: "N passed, N failed, N skipped".
# Usage: tests/run.sh TIER PROGRAM...
# A PROGRAM written NAME=VALUE:PATH runs PATH with NAME=VALUE in its
# environment (the same tests again down another code path). Each program
# has TEST_TIMEOUT seconds (default 600) and fails when it runs over: a
# suite that hangs is as broken as one that fails.
set -u
limit=${TEST_TIMEOUT:-600}
tier=$1; shift
pass=0 fail=0 skip=0 broken=()
tapdir=$(mktemp -d)
trap 'rm -rf "$tapdir"' EXIT

for t in "$@"; do
	envset=()
	if [[ "$t" == *=*:* ]]; then
		envset=("${t%%:*}"); t=${t#*:}
	fi
	name=$(basename "$t")${envset:+" (${envset[0]})"}
	tap="$tapdir/$name.tap"
	echo "== $name"
	case "$t" in
	*.sh) timeout -k 10 "$limit" env "${envset[@]}" bash "$t" 2>&1 | tee "$tap"
	      rc=${PIPESTATUS[0]} ;;
	*)    timeout -k 10 "$limit" env "${envset[@]}" "$t" --tap="$tap" -j1 --full-stats 2>&1 |
	      tee "$tapdir/$name.log"
	      rc=${PIPESTATUS[0]} ;;
	esac
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail=$((fail + 1)); broken+=("$name (timed out after $limit s)")
		continue
	fi
	# Sanitizer reports (check-asan) fail the run even when the test
	# process itself exited 0.
	if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$tapdir/$name.log" 2>/dev/null; then
		fail=$((fail + 1)); broken+=("$name (sanitizer report)")
	fi
	# A program that could not start wrote no TAP: it fails below.
	[ -f "$tap" ] || : > "$tap"
	p=$(grep -cE '^ok ' "$tap" | tr -d '\n')
	s=$(grep -cE '^ok .*# (SKIP|skip)' "$tap" | tr -d '\n')
	f=$(grep -cE '^not ok ' "$tap" | tr -d '\n')
	pass=$((pass + p - s)); skip=$((skip + s)); fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# A crash or an error outside any test case still fails the run.
		fail=$((fail + 1)); broken+=("$name (exit $rc)")
	fi
	if [ $((p + f)) -eq 0 ] && [ "$rc" -eq 0 ]; then
		fail=$((fail + 1)); broken+=("$name (ran no test)")
	fi
done
for b in "${broken[@]}"; do echo "broken: $b"; done
echo "$tier: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
