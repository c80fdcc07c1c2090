# SPDX-License-Identifier: BSD-2-Clause
# A keep-alive HTTP/1.1 server on python's http.server for the capture
# tests: /small (JSON), /big (1 MiB, Content-Length), POST echoes the
# length of what it read. Usage: capture_server.py PORT [peek|late]
# With "peek", each connection's first bytes are looked at with MSG_PEEK
# before they are read (as servers that sniff for TLS do). With "late", it
# listens but accepts nothing until it gets SIGUSR1.
import http.server
import signal
import socket
import sys

BIG = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peek = False

    def setup(self):
        if self.peek:
            self.request.recv(16, socket.MSG_PEEK)
        super().setup()

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


if __name__ == "__main__":
    Handler.peek = sys.argv[2:3] == ["peek"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    if sys.argv[2:3] == ["late"]:
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.pause()
    server.serve_forever()
