#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make bench: what the primary pays for being shadowed, measured side by
# side in one run (detached and attached runs alternate; the figure is the
# median of the per-round ratios), then the daemon's own throughput
# offline. The method is described in docs/benchmarks.md.
#   BENCH_SECONDS (default 5) per wrk run, BENCH_ROUNDS (default 5) pairs.
#   BENCH_MODES: an extended regex; only the attached rows whose name
#   matches run, and nothing else (for measuring one change quickly).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5}
MODES=${BENCH_MODES:-}
T=$(mktemp -d /tmp/shadow-bench-XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$T"/*/nginx.pid; do [ -f "$f" ] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null; done
	sleep 0.3
	rm -rf "$T"
	[ "$(id -u)" -eq 0 ] && sysctl -qw kernel.bpf_stats_enabled=0 2>/dev/null
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "bench: port $1 never opened" >&2; exit 1; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
# spread: the lowest and highest of the values, "MIN-MAX" (the per-round
# ratios' spread is this machine's noise; a change smaller is not seen).
spread() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }

nginx_conf() { # nginx_conf NAME PORT [ssl]: one worker, small JSON
	local d=$T/$1
	mkdir -p "$d"
	cat > "$d/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process on; worker_rlimit_nofile 40000;
pid $d/nginx.pid; error_log stderr error;
events { worker_connections 30000; }
http {
	access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
	server { listen 127.0.0.1:$2 backlog=4096 ${3:+ssl};
		${3:+ssl_certificate $T/cert.pem; ssl_certificate_key $T/key.pem;}
		location / { default_type application/json;
			return 200 '{"id":17,"name":"alice","items":[1,2,3],"ok":true}'; } }
}
CONF
	nginx -p "$d" -c nginx.conf >/dev/null 2>&1 &
	PIDS+=($!)
	wait_port "$2"
}

# wrk_run URL [WRK ARGS...]: prints "RPS P99_MS"
wrk_run() {
	wrk -t1 -c32 -d"${SECS}s" --latency "${@:2}" "$1" 2>/dev/null | awk '
		/Requests\/sec/ {rps=$2}
		/^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
		END {print rps, p99}'
}

SHADOWD_PID=
start_shadowd() {
	: > "$T/shadowd.log"
	./shadowd "$@" -o "$T/bench.db" >>"$T/shadowd.log" 2>&1 &
	SHADOWD_PID=$!
	for _ in $(seq 1 300); do
		grep -q attached "$T/shadowd.log" && { CPU0=$(cpu_ticks "$SHADOWD_PID"); return 0; }
		sleep 0.05
	done
	cat "$T/shadowd.log" >&2; return 1
}
cpu_ticks() { cut -d' ' -f14,15 "/proc/$1/stat" | awk '{print $1 + $2}'; }
# stop_shadowd: prints "CPU_SECONDS PEAK_RSS_KB CAPTURED LOST GAPS"; the CPU
# counts from CPU0 (ticks read after attaching: loading the programs is
# not the per-exchange cost).
stop_shadowd() {
	local cpu hwm line
	cpu=$(( $(cpu_ticks "$SHADOWD_PID") - CPU0 ))
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SHADOWD_PID/status")
	kill -INT "$SHADOWD_PID"
	# Called in $(...): a subshell cannot wait for it, so watch it go.
	while kill -0 "$SHADOWD_PID" 2>/dev/null; do sleep 0.05; done
	rm -f "$T"/bench.db*
	line=$(sed -nE 's/.*: ([0-9]+) exchanges captured.*; ([0-9]+) lost events, ([0-9]+) gaps.*/\1 \2 \3/p' "$T/shadowd.log")
	if [ -z "$line" ]; then
		echo "bench: shadowd gave no summary:" >&2; tail -3 "$T/shadowd.log" >&2
		line="0 0 0"
	fi
	echo "$line" | awk -v cpu="$cpu" -v hz="$(getconf CLK_TCK)" -v hwm="$hwm" \
		'{print cpu / hz, hwm, $1, $2, $3}'
}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: the attached runs need root (CAP_BPF, CAP_PERFMON); running only the offline benchmarks" >&2
else
	mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	P1=$(port); P2=$(port); P3=$(port)
	nginx_conf primary "$P1"; MASTER=$(cat "$T/primary/nginx.pid" 2>/dev/null || pgrep -f "nginx -p $T/primary" | head -1)
	nginx_conf candidate "$P2"
	# The slow candidate answers the primary's body after 500 ms, for a few
	# us of CPU (tests/bench/slow_candidate.c); its headers differ (no
	# Server), so every replay that comes back is a divergence to store.
	.output/tests/bench/slow_candidate "$P3" 500 '{"id":17,"name":"alice","items":[1,2,3],"ok":true}' & PIDS+=($!); wait_port "$P3"
	URL=http://127.0.0.1:$P1/users/17
	echo "== primary: nginx, 1 worker; wrk -t1 -c32 -d${SECS}s; $ROUNDS alternating rounds per mode"
	printf '%-30s %10s %10s %7s %10s %9s %9s %10s %8s %6s\n' mode detached attached ratio "(spread)" "p99 det" "p99 att" "cpu s/10k" "rss MiB" lost/gaps
	# The first row is the price of the hooks alone: the programs run on
	# every socket read and write of every process, but no connection of
	# the primary is tracked (--port names the candidate's port).
	MODE_LIST=("hooks only, nothing tracked|-s 0 -P $P2|$P2"
		"capture only (--sample 0)|-s 0 -P $P1|$P2"
		"capture only, 450-byte heads|-s 0 -P $P1|$P2|-s scripts/bench-headers.lua"
		"1% sampling|-s 0.01 -P $P1|$P2" "100% sampling|-s 1 -P $P1|$P2"
		"500 ms candidate, 100%|-s 1 --timeout 1000 -P $P1|$P3")
	# Rounds on the outside, modes inside: each attached run follows its
	# own detached one, and every mode is measured in every minute of the
	# run, so that the rows compare with one another too.
	declare -A row_ratio row_det row_att row_p99d row_p99a row_cpu row_rss row_loss
	for r in $(seq 1 "$ROUNDS"); do
		for m in "${!MODE_LIST[@]}"; do
			IFS='|' read -r name flags cport wargs <<<"${MODE_LIST[$m]}"
			[ -n "$MODES" ] && ! [[ $name =~ $MODES ]] && continue
			# shellcheck disable=SC2086
			read -r d_rps d_p99 <<<"$(wrk_run "$URL" $wargs)"
			# shellcheck disable=SC2086
			start_shadowd -p "$MASTER" -c "http://127.0.0.1:$cport" $flags || exit 1
			# shellcheck disable=SC2086
			read -r a_rps a_p99 <<<"$(wrk_run "$URL" $wargs)"
			read -r cpu hwm captured lost gaps <<<"$(stop_shadowd)"
			row_ratio[$m]+="$(echo "$a_rps / $d_rps" | bc -l) "
			row_det[$m]+="$d_rps "; row_att[$m]+="$a_rps "
			row_p99d[$m]+="$d_p99 "; row_p99a[$m]+="$a_p99 "
			if [ "$captured" -gt 0 ]; then
				row_cpu[$m]+="$(echo "$cpu * 10000 / $captured" | bc -l) "
			else
				row_cpu[$m]+="nan " # nothing captured: no per-exchange cost
			fi
			row_rss[$m]+="$hwm "
			row_loss[$m]+="$lost/$gaps "
		done
	done
	col() { tr ' ' '\n' | grep -v '^$'; }
	for m in "${!MODE_LIST[@]}"; do
		name=${MODE_LIST[$m]%%|*}
		[ -n "${row_ratio[$m]:-}" ] || continue
		printf '%-30s %10.0f %10.0f %7.3f %10s %7.2fms %7.2fms %10.3f %8.1f %6s\n' "$name" \
			"$(col <<<"${row_det[$m]}" | median)" "$(col <<<"${row_att[$m]}" | median)" \
			"$(col <<<"${row_ratio[$m]}" | median)" "$(col <<<"${row_ratio[$m]}" | spread)" \
			"$(col <<<"${row_p99d[$m]}" | median)" "$(col <<<"${row_p99a[$m]}" | median)" \
			"$(col <<<"${row_cpu[$m]}" | median)" \
			"$(echo "$(col <<<"${row_rss[$m]}" | sort -g | tail -1) / 1024" | bc -l)" \
			"${row_loss[$m]}"
	done

	# What an unrelated process pays per syscall, detached and attached.
	if [ -z "$MODES" ] || [[ syscall =~ $MODES ]]; then
		d=$(.output/tests/bench/syscall_bench | awk '{print $2}')
		start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -s 0 || exit 1
		a=$(.output/tests/bench/syscall_bench | awk '{print $2}')
		stop_shadowd > /dev/null
		echo "getppid_ns_detached: $d"
		echo "getppid_ns_attached: $a"
	fi
	# The programs' own time per request, from the kernel's BPF run-time
	# counters: steadier than the ratios, which swing with the scheduler.
	# It counts the hooks on wrk's reads and writes too (~0.1 us each,
	# they return at the target check).
	if [ -z "$MODES" ] || [[ kernel =~ $MODES ]]; then
		echo "== kernel time per request in the programs (bpf_stats, wrk -d${SECS}s)"
		for kr in "hooks only|-s 0 -P $P2" "capture only|-s 0 -P $P1" \
			"1% sampling|-s 0.01 -P $P1"; do
			IFS='|' read -r name flags <<<"$kr"
			sysctl -qw kernel.bpf_stats_enabled=1
			# shellcheck disable=SC2086
			start_shadowd -p "$MASTER" -c "http://127.0.0.1:$P2" $flags || exit 1
			n=$(wrk -t1 -c32 -d"${SECS}s" "$URL" 2>/dev/null | awk '/requests in/ {print $1}')
			bpftool prog show -j | python3 -c '
import json, sys
runs = {}
for p in json.load(sys.stdin):
    if p.get("name", "").startswith("handle_") and p.get("run_cnt"):
        runs[p["name"]] = (p["run_time_ns"], p["run_cnt"])
n = int(sys.argv[2])
total = sum(t for t, _ in runs.values())
each = ", ".join("%s %.0f ns x %.2f" % (k[7:], t / c, c / n) for k, (t, c) in sorted(runs.items()) if c >= n / 100)
print("bpf_ns_per_request %s: %.0f (%s)" % (sys.argv[1], total / n if n else 0, each))' "$name" "${n:-0}"
			stop_shadowd > /dev/null
			sysctl -qw kernel.bpf_stats_enabled=0
		done
	fi
	[ -n "$MODES" ] && exit 0
	echo "== HTTPS primary (nginx, OpenSSL uprobes), capture only, $ROUNDS rounds"
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
		-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
	P4=$(port); nginx_conf tls "$P4" ssl
	TLSMASTER=$(cat "$T/tls/nginx.pid" 2>/dev/null || pgrep -f "nginx -p $T/tls" | head -1)
	ratios=() dets=() atts=()
	for r in $(seq 1 "$ROUNDS"); do
		read -r d_rps _ <<<"$(wrk_run "https://127.0.0.1:$P4/users/17")"
		start_shadowd -p "$TLSMASTER" -P "$P4" -c "http://127.0.0.1:$P2" -s 0 || exit 1
		read -r a_rps _ <<<"$(wrk_run "https://127.0.0.1:$P4/users/17")"
		read -r _ _ captured lost gaps <<<"$(stop_shadowd)"
		ratios+=("$(echo "$a_rps / $d_rps" | bc -l)"); dets+=("$d_rps"); atts+=("$a_rps")
	done
	printf 'https_detached_rps: %.0f\nhttps_attached_rps: %.0f\nhttps_ratio: %.3f (captured %s in the last run, lost/gaps %s/%s)\n' \
		"$(printf '%s\n' "${dets[@]}" | median)" "$(printf '%s\n' "${atts[@]}" | median)" \
		"$(printf '%s\n' "${ratios[@]}" | median)" "$captured" "$lost" "$gaps"
	# What a process that is no target pays per SSL call while the
	# target's libssl is hooked (the hooks go into the targets only).
	d=$(.output/tests/bench/ssl_call_bench | awk '{print $2}')
	start_shadowd -p "$TLSMASTER" -P "$P4" -c "http://127.0.0.1:$P2" -s 0 || exit 1
	a=$(.output/tests/bench/ssl_call_bench | awk '{print $2}')
	stop_shadowd > /dev/null
	echo "ssl_write_ns_other_process: $d detached, $a attached"

	echo "== 10k open keep-alive connections to the primary, capture attached"
	start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -s 0 || exit 1
	python3 - "$P1" 10000 > "$T/conns.txt" 2>&1 <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /users/%d HTTP/1.1\r\nHost: b\r\n\r\n" % i)
    socks.append(s)
for s in socks:
    s.recv(4096)
print("open", len(socks), flush=True)
time.sleep(8)
PY
	CONNS=$!
	for _ in $(seq 1 600); do grep -q open "$T/conns.txt" && break; sleep 0.1; done
	sleep 1.5
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$SHADOWD_PID/status")
	echo "shadowd_rss_10k_connections_mib: $(echo "$rss / 1024" | bc -l | xargs printf '%.1f') ($(cat "$T/conns.txt"))"
	wait "$CONNS"
	stop_shadowd > /dev/null
fi

echo "== offline (one core)"
for b in http1_bench json_diff_bench store_bench; do
	[ -x ".output/tests/bench/$b" ] && ".output/tests/bench/$b"
done
# Replays against an nginx candidate, beside libcurl alone with the same
# requests (the most any replayer on libcurl gets here) and wrk on the same
# nginx: three 2 s stretches of each, in turn.
echo "== replay against an nginx candidate, libcurl alone, wrk (side by side)"
.output/tests/bench/replay_bench 6
