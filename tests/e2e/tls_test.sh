#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# HTTPS primaries through the libssl uprobes: an nginx serving only HTTPS
# (self-signed certificate made here) against a plain-HTTP nginx candidate
# with one planted difference gives exactly that one divergence; python's
# http.server wrapped in ssl (the system python, on the system libssl)
# against an identical plain python candidate gives none.
. "$(dirname "$0")/lib.sh"
require_root

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null || { not_ok "openssl makes a certificate"; finish; exit; }
mkdir -p "$T/www"
printf '{"static":true,"items":[1,2,3]}' > "$T/www/static.json"

# tls_nginx NAME PORT LISTEN_EXTRA PLANTED_V: nginx (master + 1 worker) on
# the shared www dir, so static files carry the same ETag both sides.
tls_nginx() {
	local dir=$T/nginx-$1
	mkdir -p "$dir"
	cat > "$dir/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process on;
pid $dir/nginx.pid; error_log stderr error;
events { worker_connections 1024; }
http {
	access_log off; keepalive_requests 1000;
	client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
	uwsgi_temp_path $dir; scgi_temp_path $dir;
	server {
		listen 127.0.0.1:$2 $3; root $T/www;
		ssl_certificate $T/cert.pem; ssl_certificate_key $T/key.pem;
		location = /small { default_type application/json; return 200 '{"ok":true,"n":1}'; }
		location = /planted { default_type application/json; return 200 '{"v":$4}'; }
		location = /static.json { default_type application/json; }
	}
}
CONF
	bg nginx -p "$dir" -c nginx.conf
	NGINX_MASTER=$LAST
	wait_port "$2"
}

P1=$(free_port); tls_nginx primary "$P1" ssl 1; MASTER=$NGINX_MASTER
P2=$(free_port); tls_nginx candidate "$P2" "" 2
sleep 0.2
start_shadowd -p "$MASTER" -P "$P1" -c "http://127.0.0.1:$P2" -o "$T/n.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
ok "shadowd attaches to the HTTPS nginx"

fails=0
for i in $(seq 1 10); do
	curl -ksf -o /dev/null "https://127.0.0.1:$P1/small?i=$i" || fails=$((fails + 1))
	curl -ksf -o /dev/null "https://127.0.0.1:$P1/static.json?i=$i" || fails=$((fails + 1))
done
curl -ksf --http1.1 -o /dev/null "https://127.0.0.1:$P1/small?ka=1" -o /dev/null "https://127.0.0.1:$P1/static.json" \
	-o /dev/null "https://127.0.0.1:$P1/small?ka=3" || fails=$((fails + 1))
curl -ksf -o /dev/null "https://127.0.0.1:$P1/planted" || fails=$((fails + 1))
check "24 HTTPS requests answered" test "$fails" -eq 0
sleep 1
stop_shadowd
"$DUMP" --store "$T/n.db" stats --json > "$T/n-stats.json"
"$DUMP" --store "$T/n.db" export > "$T/n-export.jsonl"
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$T/n-export.jsonl" > "$T/n-records.json"
echo "# nginx: $(tail -1 "$T/shadowd.log")"

assert_py "nginx: the 24 HTTPS exchanges captured in plaintext and replayed" "$T/n-stats.json" \
	'j["totals"]["captured"] == 24 and j["totals"]["replayed"] == 24'
assert_py "nginx: no parse errors, gaps or losses" "$T/n-stats.json" \
	'c = j["capture"]; c["parse_errors"] == 0 and c["gaps"] == 0 and c["lost_events"] == 0'
assert_py "nginx: exactly one divergence, on GET /planted" "$T/n-stats.json" \
	'j["totals"]["diverged"] == 1 and [(e["endpoint"], e["diverged"]) for e in j["endpoints"] if e["diverged"]] == [("GET /planted", 1)]'
assert_py "nginx: the divergence is \$.v 1 -> 2 in the body only" "$T/n-records.json" \
	'len(j) == 1 and j[0]["request"]["target"] == "/planted" and not j[0]["status"]["diverged"] and not j[0]["headers"]["diverged"] and [(d["path"], d["primary"], d["candidate"]) for d in j[0]["body"]["diffs"]] == [("$.v", 1, 2)]'
assert_py "nginx: the primary body in the record is the decrypted one" "$T/n-records.json" \
	'j[0]["primary"]["body"] == "{\"v\":1}"'

# Second primary: python's http.server in ssl, the system python.
PY=/usr/bin/python3
P3=$(free_port); bg "$PY" "$SRC/tests/servers/tls_server.py" "$P3" "$T/cert.pem" "$T/key.pem"; PYPRIMARY=$LAST; wait_port "$P3"
P4=$(free_port); bg "$PY" "$SRC/tests/servers/capture_server.py" "$P4"; wait_port "$P4"
check "the python primary maps the system libssl" grep -q 'libssl\.so' "/proc/$PYPRIMARY/maps"
start_shadowd -p "$PYPRIMARY" -c "http://127.0.0.1:$P4" -o "$T/p.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
ok "shadowd attaches to the python HTTPS server"
fails=0
for i in $(seq 1 10); do
	curl -ksf -o /dev/null "https://127.0.0.1:$P3/users/$i" || fails=$((fails + 1))
done
curl -ksf --http1.1 -o /dev/null "https://127.0.0.1:$P3/a" -o /dev/null "https://127.0.0.1:$P3/big" || fails=$((fails + 1))
check "12 HTTPS requests answered" test "$fails" -eq 0
sleep 1
stop_shadowd
"$DUMP" --store "$T/p.db" stats --json > "$T/p-stats.json"
echo "# python: $(tail -1 "$T/shadowd.log")"
assert_py "python: 12 exchanges captured and replayed" "$T/p-stats.json" \
	'j["totals"]["captured"] == 12 and j["totals"]["replayed"] == 12'
assert_py "python: zero divergences against an identical candidate" "$T/p-stats.json" \
	'j["totals"]["diverged"] == 0 and j["totals"]["candidate_errors"] == 0'

# node carries its own OpenSSL: its HTTPS connections are counted as not
# decoded in stats, and nothing of them is parsed as HTTP.
P5=$(free_port); bg node "$SRC/tests/servers/tls_server.js" "$P5" "$T/cert.pem" "$T/key.pem"; NODEPRIMARY=$LAST; wait_port "$P5"
start_shadowd -p "$NODEPRIMARY" -c "http://127.0.0.1:$P4" -o "$T/u.db" || { not_ok "shadowd attaches" "$(cat "$T/shadowd.log")"; finish; exit; }
for i in 1 2 3; do curl -sk -o /dev/null "https://127.0.0.1:$P5/n/$i"; done
sleep 1.5
stop_shadowd
"$DUMP" --store "$T/u.db" stats --json > "$T/u-stats.json"
assert_py "node https: 3 connections counted as tls_undecoded, none parsed" "$T/u-stats.json" \
	'j["capture"]["tls_undecoded"] == 3 and j["totals"]["captured"] == 0 and j["capture"]["parse_errors"] == 0'
finish
