#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs each libFuzzer target for SECONDS with a corpus seeded from
# tests/data (capture files) and tests/fuzz/seeds/<target>/ when present.
# Usage: scripts/fuzz.sh SECONDS TARGET...
set -euo pipefail
secs=$1; shift
for bin in "$@"; do
	name=$(basename "$bin")
	corpus=.output/fuzz/corpus/$name
	mkdir -p "$corpus"
	[ -d "tests/fuzz/seeds/$name" ] && cp -n tests/fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null || true
	case $name in
	http1_fuzz) for f in tests/data/*.cap; do cp -n "$f" "$corpus/" ; done ;;
	esac
	echo "== $name for ${secs}s"
	"$bin" -max_total_time="$secs" -print_final_stats=1 "$corpus" 2>&1 |
		grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)|Done [0-9]+ runs" || true
	[ -z "$(ls crash-* leak-* timeout-* 2>/dev/null)" ] || { echo "fuzz: $name found a crash" >&2; exit 1; }
done
