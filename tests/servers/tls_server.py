# SPDX-License-Identifier: BSD-2-Clause
# A keep-alive HTTPS/1.1 server on python's http.server and ssl module (the
# system libssl, loaded dynamically) for the TLS capture tests: /small
# (JSON), /big (1 MiB), POST answers the length it read.
# Usage: tls_server.py PORT CERT KEY
import http.server
import ssl
import sys

BIG = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/big"):
            self.reply(BIG, "application/octet-stream")
        else:
            self.reply(b'{"ok":true,"path":"%s"}' % self.path.encode())

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        self.reply(b'{"read":%d}' % len(data))

    def log_message(self, *args):
        pass


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
