#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make bench: what the primary pays for being shadowed, measured side by
# side in one run (detached and attached runs alternate; the figure is the
# median of the per-round ratios), then the daemon's own throughput
# offline. The method is described in docs/benchmarks.md.
#   BENCH_SECONDS (default 5) per wrk run, BENCH_ROUNDS (default 5) pairs.
#   BENCH_MODES: an extended regex; only the attached rows whose name
#   matches run, and nothing else (for measuring one change quickly);
#   "kernel", "open loop", "syscall" and "https" name those sections.
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
# bpf_ids PID prog|map: the ids of the BPF programs (maps) PID holds, one
# a line, from its fds: the kernel's counters name programs, and another
# shadowd on the machine has programs of the same names.
bpf_ids() { grep -h "^$2_id:" /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un; }
# bpf_report LABEL REQUESTS: the run time of the programs the running
# shadowd holds (bpf_stats must be on), per request and per program, as
# "bpf_ns_per_request LABEL: TOTAL (PROGRAM NS x CALLS PER REQUEST, ...)".
bpf_report() {
	bpftool prog show -j | python3 -c '
import json, sys
runs = {}
ours = set(map(int, sys.argv[3].split()))
for p in json.load(sys.stdin):
    if p["id"] in ours and p.get("name", "").startswith("handle_") and p.get("run_cnt"):
        runs[p["name"]] = (p["run_time_ns"], p["run_cnt"])
n = int(sys.argv[2])
total = sum(t for t, _ in runs.values())
each = ", ".join("%s %.0f ns x %.2f" % (k[7:], t / c, c / n) for k, (t, c) in sorted(runs.items()) if c >= n / 100)
print("bpf_ns_per_request %s: %.0f (%s)" % (sys.argv[1], total / n if n else 0, each))' "$1" "$2" "$(bpf_ids "$SHADOWD_PID" prog)"
}
# profile_report LABEL REQUESTS: the running shadowd's timed regions
# (SHADOWD_PROFILE=1, bpf/capture.bpf.c's prof_end), each region's mean
# less the clock reads' own cost, and its count per request. The names
# are enum prof_region's, in its order.
profile_report() {
	local id
	for id in $(bpf_ids "$SHADOWD_PID" map); do
		bpftool map show id "$id" | grep -q ' name profile ' && break
	done
	bpftool map dump id "$id" -j | python3 -c '
import json, sys
def num(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(x, 16) for x in v), "little")
sums = {num(e["key"]): sum(num(c["value"]) for c in e["values"]) for e in json.load(sys.stdin)}
names = ["clock", "conn", "read", "decide", "ring", "copy", "birth", "listen", "end", "untracked"]
n, m = int(sys.argv[2]) or 1, len(names)
clock = sums.get(0, 0) / max(sums.get(m, 0), 1)
each = ", ".join("%s %.0f ns x %.2f" % (k, sums.get(i, 0) / sums[m + i] - clock, sums[m + i] / n)
                 for i, k in enumerate(names) if i and sums.get(m + i))
print("bpf_profile %s: %s (the clock reads, %.0f ns a region, taken off)" % (sys.argv[1], each, clock))' "$1" "$2"
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

# The on-CPU nanoseconds of pid and its children (nginx's master and
# workers), every thread.
proc_cpu_ns() {
	local pids t sum=0
	pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
	for p in $pids; do
		for t in /proc/"$p"/task/*/schedstat; do
			[ -r "$t" ] && sum=$((sum + $(cut -d' ' -f1 "$t")))
		done
	done
	echo "$sum"
}
softirq_ticks() { awk '/^cpu / {print $8}' /proc/stat; }

# ol_run PORT RATE [PID tls]: one open-loop run against the primary (MASTER,
# or PID; over TLS when the fourth argument is given); prints
# "REQUESTS PRIMARY_NS_PER_REQ SOFTIRQ_US_PER_REQ P50_MS P99_MS ACHIEVED_RPS"
ol_run() {
	local port=$1 rate=$2 pid=${3:-$MASTER} tls=${4:-} calls=${OL_CALLS:-10} c0 c1 s0 s1 out probe
	local conns=$(( rate / calls )) ; [ "$conns" -lt 1 ] && conns=1
	c0=$(proc_cpu_ns "$pid"); s0=$(softirq_ticks)
	python3 scripts/latency_probe.py 127.0.0.1 "$port" /users/17 100 "$SECS" $tls > "$T/probe.txt" 2>&1 &
	probe=$!
	out=$(httperf --server 127.0.0.1 --port "$port" --uri /users/17 ${tls:+--ssl} \
		--rate "$conns" --num-conns $(( conns * SECS )) --num-calls "$calls" \
		--timeout 5 2>/dev/null)
	wait "$probe"
	c1=$(proc_cpu_ns "$pid"); s1=$(softirq_ticks)
	awk -v c="$(( c1 - c0 ))" -v s="$(( s1 - s0 ))" -v hz="$(getconf CLK_TCK)" \
	    -v probe="$(cat "$T/probe.txt")" '
		/^Total:/ {for (i = 1; i < NF; i++) if ($i == "replies") n = $(i + 1)}
		/^Request rate:/ {rps = $3}
		END {split(probe, p, " "); n += p[3]
		     printf "%d %.0f %.2f %s %s %.0f\n", n, n ? c / n : 0,
		            n ? s * 1e6 / hz / n : 0, p[1], p[2], rps}' <<<"$out"
}

open_loop() {
	local cap rate name flags cport m r
	cap=$(wrk_run "$URL" | awk '{printf "%d", $1}')
	rate=$(( cap / 2 ))
	echo "== open loop: httperf at $rate requests/s (half of wrk's $cap detached), ${OL_CALLS:-10} per connection, ${SECS}s runs, $ROUNDS alternating rounds"
	printf '%-28s %9s %9s %7s %11s %9s %9s %15s %15s\n' mode "ns/req det" "ns/req att" ratio "(spread)" \
		"softirq us" "sd us/ex" "p50 det/att ms" "p99 det/att ms"
	local OL_MODES=("hooks only, nothing tracked|-s 0 -P $P2|$P2"
		"capture only (--sample 0)|-s 0 -P $P1|$P2"
		"1% sampling|-s 0.01 -P $P1|$P2"
		"500 ms candidate, 100%|-s 1 --timeout 1000 -P $P1|$P3")
	declare -A o_det o_att o_ratio o_sirq o_sd o_p50d o_p50a o_p99d o_p99a
	for r in $(seq 1 "$ROUNDS"); do
		for m in "${!OL_MODES[@]}"; do
			IFS='|' read -r name flags cport <<<"${OL_MODES[$m]}"
			# The detached run goes first in odd rounds, second in
			# even ones, so that whatever a run leaves the next (its
			# ~14k connections in TIME_WAIT, cold or warm caches)
			# falls on both columns alike.
			if (( r % 2 )); then
				read -r dn dns dsi dp50 dp99 _ <<<"$(ol_run "$P1" "$rate")"
			fi
			# shellcheck disable=SC2086
			start_shadowd -p "$MASTER" -c "http://127.0.0.1:$cport" $flags || exit 1
			read -r an ans asi ap50 ap99 _ <<<"$(ol_run "$P1" "$rate")"
			read -r cpu _ captured _ _ <<<"$(stop_shadowd)"
			if ! (( r % 2 )); then
				read -r dn dns dsi dp50 dp99 _ <<<"$(ol_run "$P1" "$rate")"
			fi
			o_det[$m]+="$dns "; o_att[$m]+="$ans "
			o_ratio[$m]+="$(echo "$ans / $dns" | bc -l) "
			o_sirq[$m]+="$dsi/$asi "
			if [ "$captured" -gt 0 ]; then
				o_sd[$m]+="$(echo "$cpu * 1000000 / $captured" | bc -l) "
			else
				o_sd[$m]+="nan "
			fi
			o_p50d[$m]+="$dp50 "; o_p50a[$m]+="$ap50 "
			o_p99d[$m]+="$dp99 "; o_p99a[$m]+="$ap99 "
		done
	done
	col() { tr ' ' '\n' | grep -v '^$'; }
	for m in "${!OL_MODES[@]}"; do
		name=${OL_MODES[$m]%%|*}
		printf '%-28s %9.0f %9.0f %7.3f %11s %9s %9.1f %7.3f/%-7.3f %7.3f/%-7.3f\n' "$name" \
			"$(col <<<"${o_det[$m]}" | median)" "$(col <<<"${o_att[$m]}" | median)" \
			"$(col <<<"${o_ratio[$m]}" | median)" "$(col <<<"${o_ratio[$m]}" | spread)" \
			"$(col <<<"${o_sirq[$m]}" | tail -1)" \
			"$(col <<<"${o_sd[$m]}" | median)" \
			"$(col <<<"${o_p50d[$m]}" | median)" "$(col <<<"${o_p50a[$m]}" | median)" \
			"$(col <<<"${o_p99d[$m]}" | median)" "$(col <<<"${o_p99a[$m]}" | median)"
	done
	# The programs' own time per request at this rate, connections opened
	# and closed (OL_CALLS requests each) included, to set beside the
	# primary's extra CPU per request above: one more attached run of
	# each tracked mode with bpf_stats on (its clock reads cost ~40 ns a
	# call, so these runs are not among the ratios').
	for m in 1 2; do
		IFS='|' read -r name flags cport <<<"${OL_MODES[$m]}"
		sysctl -qw kernel.bpf_stats_enabled=1
		# shellcheck disable=SC2086
		start_shadowd -p "$MASTER" -c "http://127.0.0.1:$cport" $flags || exit 1
		read -r an _ <<<"$(ol_run "$P1" "$rate")"
		bpf_report "open loop, ${name%% (*}" "$an"
		stop_shadowd > /dev/null
		sysctl -qw kernel.bpf_stats_enabled=0
	done
	SHADOWD_PROFILE=1 start_shadowd -p "$MASTER" -c "http://127.0.0.1:$P2" -s 0 -P "$P1" || exit 1
	read -r an _ <<<"$(ol_run "$P1" "$rate")"
	profile_report "open loop, capture only" "$an"
	stop_shadowd > /dev/null
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
		"500 ms candidate, 100%|-s 1 --timeout 1000 -P $P1|$P3"
		"tcpdump -i lo port P (reference)|tcpdump|-")
	# Rounds on the outside, modes inside: each attached run is paired
	# with its own detached one (the detached run first in odd rounds,
	# second in even ones, so that neither column always runs second), and every
	# mode is measured in every minute of the run, so that the rows
	# compare with one another too.
	declare -A row_ratio row_det row_att row_p99d row_p99a row_cpu row_rss row_loss
	for r in $(seq 1 "$ROUNDS"); do
		for m in "${!MODE_LIST[@]}"; do
			IFS='|' read -r name flags cport wargs <<<"${MODE_LIST[$m]}"
			[ -n "$MODES" ] && ! [[ $name =~ $MODES ]] && continue
			if (( r % 2 )); then
				# shellcheck disable=SC2086
				read -r d_rps d_p99 <<<"$(wrk_run "$URL" $wargs)"
			fi
			if [ "$flags" = tcpdump ]; then
				# What a packet capture of the same port costs, beside.
				tcpdump -i lo -w /dev/null -s 0 port "$P1" 2>"$T/tcpdump.log" &
				tcpd=$!
				for _ in $(seq 1 100); do grep -q listening "$T/tcpdump.log" && break; sleep 0.05; done
				# shellcheck disable=SC2086
				read -r a_rps a_p99 <<<"$(wrk_run "$URL" $wargs)"
				kill -INT "$tcpd"; wait "$tcpd" 2>/dev/null
				cpu=0 hwm=0 captured=0 lost=- gaps=-
			else
				# shellcheck disable=SC2086
				start_shadowd -p "$MASTER" -c "http://127.0.0.1:$cport" $flags || exit 1
				# shellcheck disable=SC2086
				read -r a_rps a_p99 <<<"$(wrk_run "$URL" $wargs)"
				read -r cpu hwm captured lost gaps <<<"$(stop_shadowd)"
			fi
			if ! (( r % 2 )); then
				# shellcheck disable=SC2086
				read -r d_rps d_p99 <<<"$(wrk_run "$URL" $wargs)"
			fi
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
		read -r d ds <<<"$(.output/tests/bench/syscall_bench | awk '{printf "%s ", $2}')"
		start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -s 0 || exit 1
		read -r a as <<<"$(.output/tests/bench/syscall_bench | awk '{printf "%s ", $2}')"
		stop_shadowd > /dev/null
		echo "getppid_ns_detached: $d"
		echo "getppid_ns_attached: $a"
		echo "socket_round_trip_ns_other_process: $ds detached, $as attached"
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
			bpf_report "$name" "${n:-0}"
			stop_shadowd > /dev/null
			sysctl -qw kernel.bpf_stats_enabled=0
		done
		# Where the time of capture only goes: the socket hooks timed
		# region by region (SHADOWD_PROFILE, see bpf/capture.bpf.c's
		# prof_end), each less the clock reads' own cost.
		SHADOWD_PROFILE=1 start_shadowd -p "$MASTER" -c "http://127.0.0.1:$P2" -s 0 -P "$P1" || exit 1
		n=$(wrk -t1 -c32 -d"${SECS}s" "$URL" 2>/dev/null | awk '/requests in/ {print $1}')
		profile_report "capture only" "${n:-0}"
		stop_shadowd > /dev/null
		# The same steps with every line hot (back to back, run by
		# BPF_PROG_TEST_RUN): the ring and read regions above less
		# these are what their cold cache lines cost in the hot path.
		.output/tests/bench/helper_cost_bench
	fi
	# Open loop, the way Coroot, Beyla and Odigos measure overhead: a fixed
	# request rate (httperf: connections at a fixed rate, OL_CALLS
	# requests on each) at half the detached capacity wrk measures here
	# first; per run, the primary's CPU per request (its processes'
	# on-CPU time from schedstat, in ns, softirq run in their context
	# included), the machine's softirq time per request (/proc/stat),
	# shadowd's CPU per exchange, and a latency probe's p50/p99
	# (scripts/latency_probe.py, 100 requests/s on its own connection).
	if [ -z "$MODES" ] || [[ "open loop" =~ $MODES ]]; then
		open_loop
	fi
	[ -n "$MODES" ] && ! [[ https =~ $MODES ]] && exit 0
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
	# The same open loop as plaintext's, at half of HTTPS's detached
	# capacity; 1000 requests per connection, so that handshakes (a few
	# per second) do not swamp the requests' cost.
	rate=$(( $(printf '%s\n' "${dets[@]}" | median | cut -d. -f1) / 2 ))
	ratios=() dets=() atts=() p99s=()
	for r in $(seq 1 "$ROUNDS"); do
		read -r _ dns _ _ dp99 _ <<<"$(OL_CALLS=1000 ol_run "$P4" "$rate" "$TLSMASTER" tls)"
		start_shadowd -p "$TLSMASTER" -P "$P4" -c "http://127.0.0.1:$P2" -s 0 || exit 1
		read -r _ ans _ _ ap99 _ <<<"$(OL_CALLS=1000 ol_run "$P4" "$rate" "$TLSMASTER" tls)"
		stop_shadowd > /dev/null
		ratios+=("$(echo "$ans / $dns" | bc -l)"); dets+=("$dns"); atts+=("$ans")
		p99s+=("$dp99/$ap99")
	done
	printf 'https_open_loop at %d requests/s: %.0f ns/request detached, %.0f attached, ratio %.3f (%s), probe p99 det/att ms %s\n' \
		"$rate" "$(printf '%s\n' "${dets[@]}" | median)" "$(printf '%s\n' "${atts[@]}" | median)" \
		"$(printf '%s\n' "${ratios[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | spread)" "${p99s[*]}"
	# What a process that is no target pays per SSL call while the
	# target's libssl is hooked (the hooks go into the targets only).
	d=$(.output/tests/bench/ssl_call_bench | awk '{print $2}')
	start_shadowd -p "$TLSMASTER" -P "$P4" -c "http://127.0.0.1:$P2" -s 0 || exit 1
	a=$(.output/tests/bench/ssl_call_bench | awk '{print $2}')
	stop_shadowd > /dev/null
	echo "ssl_write_ns_other_process: $d detached, $a attached"
	# What a hooked SSL call costs a target: the same loop in a process
	# shadowd attaches to (its uprobe traps and the programs).
	coproc SSLB { .output/tests/bench/ssl_call_bench --wait; }
	read -r _ <&"${SSLB[0]}"
	start_shadowd -p "$SSLB_PID" -c "http://127.0.0.1:$P2" -s 0 || exit 1
	echo go >&"${SSLB[1]}"
	read -r _ a <&"${SSLB[0]}"
	stop_shadowd > /dev/null
	echo "ssl_call_ns_target: $d detached, $a attached"
	# SSL calls (uprobe entries: each also a return probe) per HTTPS request,
	# and the programs' own time, from bpf_stats.
	sysctl -qw kernel.bpf_stats_enabled=1
	start_shadowd -p "$TLSMASTER" -P "$P4" -c "http://127.0.0.1:$P2" -s 0 || exit 1
	n=$(wrk -t1 -c32 -d"${SECS}s" "https://127.0.0.1:$P4/users/17" 2>/dev/null | awk '/requests in/ {print $1}')
	bpftool prog show -j | python3 -c '
import json, sys
n = int(sys.argv[1]) or 1
ours = set(map(int, sys.argv[2].split()))
runs = {p["name"]: (p["run_time_ns"], p["run_cnt"]) for p in json.load(sys.stdin)
        if p["id"] in ours and p.get("name", "").startswith("handle_ssl") and p.get("run_cnt")}
entries = sum(c for k, (t, c) in runs.items() if k != "handle_ssl_return")
each = ", ".join("%s %.2f x %.0f ns" % (k[11:] or k, c / n, t / c) for k, (t, c) in sorted(runs.items()))
print("https_ssl_calls_per_request: %.2f (%s)" % (entries / n, each))' "${n:-0}" "$(bpf_ids "$SHADOWD_PID" prog)"
	stop_shadowd > /dev/null
	sysctl -qw kernel.bpf_stats_enabled=0

	[ -n "$MODES" ] && exit 0
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
# Replays against an nginx candidate with one thread and with two
# (--replay-threads 2), beside libcurl alone with the same requests (the
# most any replayer on one libcurl thread gets here) and wrk on the same
# nginx: three 2 s stretches of each, in turn.
echo "== replay against an nginx candidate, 1 and 2 threads, libcurl alone, wrk (side by side)"
.output/tests/bench/replay_bench 6
# What the in-process library costs its caller: rs_shadow_call()'s p99
# with everything sampled and a candidate that sleeps 500 ms, against the
# same shadower at sample 0 (the candidate answering within the timeout;
# then every call cut off at 100 ms, which abandons and replaces the
# workers meanwhile).
# The calls of the two shadowers interleave (the same moments of the
# machine for both), then alternate by rounds as a cross-check.
echo "== in-process library: rs_shadow_call p99, 500 ms candidate at sample 1 vs sample 0"
.output/tests/bench/rs_shadow_bench --threads 2 --calls 20000 --rounds 9 \
	--interleave | sed -n '1p;$p'
.output/tests/bench/rs_shadow_bench --threads 2 --calls 20000 --rounds 9 \
	--interleave --timeout 100 --queue 256 | sed -n '1p;$p'
.output/tests/bench/rs_shadow_bench --threads 2 --calls 20000 --rounds 9 | sed -n '1p;$p'
