#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Records the capture fixtures with `shadowd --record` attached to real
servers on loopback (as root): starts the server, attaches shadowd to it,
plays the client's part of the scenario, and stops both. The capture file
is shadowd's own; this script never writes the format.

    tests/data/mkcap.py python  tests/data/python_cl.cap
    tests/data/mkcap.py node    tests/data/node_chunked_gzip.cap
    tests/data/mkcap.py nginx   tests/data/nginx_pipeline.cap
    tests/data/mkcap.py bench   tests/data/nginx_bench.cap

SHADOWD names the binary (default ./shadowd, run from the top of the
tree).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


class Recorder:
    """shadowd --record FILE attached to pid, sampling nothing (the
    candidate is never called)."""

    def __init__(self, path, pid, port):
        self.dir = tempfile.mkdtemp()
        self.log = os.path.join(self.dir, "shadowd.log")
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [os.environ.get("SHADOWD", "./shadowd"), "--pid", str(pid),
                 "--port", str(port), "--candidate", "http://127.0.0.1:9",
                 "--sample", "0", "--store",
                 os.path.join(self.dir, "store.db"), "--record", path],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "attached to" not in open(self.log).read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise SystemExit("shadowd did not attach:\n" +
                                 open(self.log).read())
            time.sleep(0.05)

    def close(self):
        # Lets the last records reach the ring buffer and the file.
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise SystemExit("shadowd did not stop")
        out = open(self.log).read()
        if rc != 0:
            raise SystemExit(f"shadowd exited {rc}:\n{out}")
        sys.stderr.write(out.strip().splitlines()[-1] + "\n")
        os.chmod(self.path, 0o644)


class Conn:
    """A client connection: sends requests, reads responses."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def recv(self):
        data = self.s.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def need(self, n):
        while len(self.buf) < n:
            if not self.recv():
                raise EOFError
    def line(self):
        while b"\r\n" not in self.buf:
            if not self.recv():
                raise EOFError
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln

    def response(self, head=False, interim_ok=True):
        """Reads one final response (skipping 1xx); returns (status,
        headers dict lowercased, body)."""
        while True:
            status = int(self.line().split()[1])
            hdrs = {}
            while True:
                ln = self.line()
                if not ln:
                    break
                k, v = ln.split(b":", 1)
                hdrs[k.strip().lower().decode()] = v.strip().decode()
            if status < 200:
                if not interim_ok:
                    return status, hdrs, b""
                continue
            break
        body = b""
        if head or status in (204, 304):
            pass
        elif "chunked" in hdrs.get("transfer-encoding", ""):
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                self.need(size + 2)
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            self.need(n)
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self.recv():
                pass
            body, self.buf = self.buf, b""
        return status, hdrs, body

    def close(self):
        self.s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc):
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def req(method, target, headers=(), body=b"", version="HTTP/1.1"):
    h = [f"{method} {target} {version}", "Host: 127.0.0.1",
         "User-Agent: mkcap"] + list(headers)
    if body:
        h.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


PY_SERVER = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send_json(self, code, obj, extra=()):
        b = json.dumps(obj, sort_keys=True).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(b)
    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/empty":
            self.send_response(204); self.end_headers(); return
        if p == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304); self.send_header("ETag", '"v1"')
                self.end_headers(); return
            return self.send_json(200, {"v": 1}, [("ETag", '"v1"')])
        parts = p.strip("/").split("/")
        self.send_json(200, {"path": p, "id": parts[-1],
                             "items": list(range(len(parts[-1]) % 7))})
    do_HEAD = do_GET
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        self.send_json(201, {"got": json.loads(body), "path": self.path})

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

NODE_SERVER = r'''
const http = require("http"), zlib = require("zlib");
const rows = [];
for (let i = 0; i < 120; i++) rows.push({id: i, name: "user" + i, tags: ["a", "b"], score: i * 1.5});
const body = Buffer.from(JSON.stringify({rows}));
http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  const enc = u.searchParams.get("enc");
  let out = body;
  const h = {"Content-Type": "application/json"};
  if (enc === "gzip") { out = zlib.gzipSync(body); h["Content-Encoding"] = "gzip"; }
  if (enc === "deflate") { out = zlib.deflateSync(body); h["Content-Encoding"] = "deflate"; }
  if (enc === "br") { out = zlib.brotliCompressSync(body); h["Content-Encoding"] = "br"; }
  res.writeHead(200, h);
  // Several writes without Content-Length: chunked on HTTP/1.1,
  // close-delimited on HTTP/1.0.
  const step = Math.ceil(out.length / 4);
  let i = 0;
  const more = () => {
    if (i >= out.length) return res.end();
    res.write(out.subarray(i, i + step)); i += step; setTimeout(more, 2);
  };
  more();
}).listen(+process.argv[process.argv.length - 1], "127.0.0.1");
'''

NGINX_CONF = r'''
daemon off;
master_process off;
worker_processes 1;
error_log %(dir)s/error.log;
pid %(dir)s/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_requests 10000;
    server_tokens off;
    server {
        listen 127.0.0.1:%(port)d;
        default_type application/json;
        location / { return 200 '{"uri":"$request_uri","n":$request_length}'; }
    }
}
'''


def record_python(path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", PY_SERVER, str(port)])
    try:
        wait_port(port, proc)
        cap = Recorder(path, proc.pid, port)
        c = Conn(port)
        for t in ["/users/17", "/users/42?x=1", "/orders/9/items/3",
                  "/users/0b6f2a64-1c1e-4a5e-9a43-3b1c5d0e9f11"]:
            c.send(req("GET", t))
            c.response()
        c.send(req("HEAD", "/users/7"))
        c.response(head=True)
        c.send(req("GET", "/empty"))
        c.response()
        c.send(req("GET", "/etag", ['If-None-Match: "v1"']))
        c.response()
        c.send(req("POST", "/users", ["Content-Type: application/json"],
                   b'{"name":"alice","age":30}'))
        c.response()
        # Expect: 100-continue: the body goes after the interim answer.
        body = b'{"name":"bob"}'
        c.send(req("POST", "/users", ["Expect: 100-continue",
                                      f"Content-Length: {len(body)}"]))
        st, _, _ = c.response(interim_ok=False)
        assert st == 100, st
        c.send(body)
        c.response()
        c.send(req("GET", "/users/5", ["Connection: close"]))
        c.response()
        c.close()
        # HTTP/1.0 without keep-alive: one exchange, then close.
        c = Conn(port)
        c.send(req("GET", "/users/10", version="HTTP/1.0"))
        c.response()
        c.close()
        cap.close()
    finally:
        proc.terminate()
        proc.wait()


def record_node(path):
    port = free_port()
    proc = subprocess.Popen(["node", "-e", NODE_SERVER, "--", str(port)])
    try:
        wait_port(port, proc)
        cap = Recorder(path, proc.pid, port)
        c = Conn(port)
        for t in ["/data", "/data?enc=gzip", "/data?enc=deflate",
                  "/data?enc=br"]:
            c.send(req("GET", t, ["Accept-Encoding: gzip, deflate, br"]))
            c.response()
        c.close()
        # HTTP/1.0: no chunking, the body ends at the close.
        c = Conn(port)
        c.send(req("GET", "/data?enc=gzip", version="HTTP/1.0"))
        c.response()
        c.close()
        cap.close()
    finally:
        proc.terminate()
        proc.wait()


def with_nginx(fn):
    port = free_port()
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"dir": d, "port": port})
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d],
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        fn(port, proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def record_nginx(path):
    def go(port, pid):
        cap = Recorder(path, pid, port)
        c = Conn(port)
        # Warm-up exchange, then 30 requests in one write.
        c.send(req("GET", "/warmup"))
        c.response()
        burst = b"".join(req("GET", f"/items/{i}?q={i}") for i in range(29))
        burst += req("GET", "/items/29?q=29", ["Connection: close"])
        c.send(burst)
        for _ in range(30):
            c.response()
        while c.recv():
            pass
        c.close()
        cap.close()
    with_nginx(go)


def record_bench(path):
    def go(port, pid):
        cap = Recorder(path, pid, port)
        for k in range(4):
            c = Conn(port)
            for i in range(60):
                c.send(f"GET /users/{k * 100 + i} HTTP/1.1\r\nHost: a\r\n"
                       "\r\n".encode())
                c.response()
            c.close()
        cap.close()
    with_nginx(go)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    {"python": record_python, "node": record_node, "nginx": record_nginx,
     "bench": record_bench}[sys.argv[1]](sys.argv[2])
