# SPDX-License-Identifier: BSD-2-Clause
# Helpers for the end-to-end tests: TAP output, real servers on loopback,
# shadowd in the background, and JSON checks with python3's json module.
# Each test script sources this, calls plan/skip, and ends with finish.
set -u
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHADOWD=$SRC/shadowd
DUMP=$SRC/shadow-dump
CAPGEN=$SRC/.output/tests/tools/capgen
T=$(mktemp -d /tmp/shadow-e2e-XXXXXX)
chmod 755 "$T"
PIDS=()
n=0 failed=0

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null
	for f in "$T"/nginx-*/nginx.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
# A timeout (tests/run.sh) or ^C still cleans up.
trap "exit 143" TERM INT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { # check NAME COMMAND...: ok if the command succeeds
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
skip_all() { echo "1..0 # SKIP $1"; echo "ok 1 - $(basename "$0") # SKIP $1"; exit 0; }
finish() { echo "1..$n"; [ "$failed" -eq 0 ]; }

require_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "end-to-end tests attach eBPF programs and need root"
	mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # wait_port PORT: up to 10 s
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}

bg() { # bg CMD...: start in the background, remember the pid in $LAST
	"$@" >"$T/bg-$#-$RANDOM.log" 2>&1 &
	LAST=$!
	PIDS+=("$LAST")
}

# start_nginx NAME PORT: nginx (master + 1 worker) serving small JSON
# bodies; sets NGINX_MASTER.
start_nginx() {
	local dir=$T/nginx-$1
	mkdir -p "$dir/www"
	printf '{"static":true,"items":[1,2,3]}' > "$dir/www/static.json"
	# The same mtime in every instance: ETag and Last-Modified match.
	touch -d @1700000000 "$dir/www/static.json"
	cat > "$dir/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process on;
pid $dir/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http {
	access_log off; keepalive_requests 1000000;
	client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
	uwsgi_temp_path $dir; scgi_temp_path $dir;
	server {
		listen 127.0.0.1:$2; root $dir/www;
		location = /small { default_type application/json; return 200 '{"ok":true,"n":1}'; }
		location = /static.json { default_type application/json; }
	}
}
CONF
	bg nginx -p "$dir" -c nginx.conf
	NGINX_MASTER=$LAST
	wait_port "$2"
}

# start_shadowd ARGS...: runs shadowd in the background and waits until it
# says it attached (or started reading a capture); sets SHADOWD_PID.
start_shadowd() {
	local log=$T/shadowd.log
	: > "$log"
	"$SHADOWD" "$@" >>"$log" 2>&1 &
	SHADOWD_PID=$!
	PIDS+=("$SHADOWD_PID")
	for _ in $(seq 1 300); do
		grep -qE "attached to|reading" "$log" && return 0
		kill -0 "$SHADOWD_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	cat "$log" >&2
	return 1
}

# stop_shadowd: SIGINT, wait for its clean exit.
stop_shadowd() {
	kill -INT "$SHADOWD_PID" 2>/dev/null
	for _ in $(seq 1 200); do
		kill -0 "$SHADOWD_PID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$SHADOWD_PID" 2>/dev/null
}

# jq_py FILE EXPR: evaluates a python expression over the JSON in FILE
# (bound to `j`) and prints the result.
jq_py() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# assert_py NAME FILE EXPR: ok if the python expression over j is true.
assert_py() {
	local name=$1 file=$2 expr=$3 out
	# EXPR may start with statements: "t = j['totals']; t['x'] == 1".
	if out=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); *pre, last = sys.argv[2].rsplit(";", 1); exec(pre[0]) if pre else None; sys.exit(0 if eval(last.strip()) else 1)' "$file" "$expr" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "expected: $expr" "$(head -c 1500 "$file")" "$out"
	fi
}
