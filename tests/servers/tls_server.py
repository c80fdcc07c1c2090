# SPDX-License-Identifier: BSD-2-Clause
# capture_server.py's keep-alive HTTP/1.1 server (/small, /big, POST) over
# TLS with python's ssl module (the system libssl, loaded dynamically) for
# the TLS capture tests. Usage: tls_server.py PORT CERT KEY
import http.server
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_server import Handler  # noqa: E402

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
