# SPDX-License-Identifier: BSD-2-Clause
# The API of api.js re-implemented on python's http.server: the candidate
# of the end-to-end tests and the demo. It formats JSON differently (key
# order, "10.0" for 10, spaces), never compresses and sends Content-Length:
# none of that is a divergence. With --plant it also differs for real:
#   /users/13      body field $.name is "USER13"
#   /version       header X-Api-Version is 2
#   /items?page=3  status 500
# Usage: api_candidate.py PORT [--plant]
import http.server
import json
import re
import sys
from urllib.parse import urlsplit, parse_qs

PLANT = "--plant" in sys.argv[2:]


def route(target):
    u = urlsplit(target)
    m = re.fullmatch(r"/users/(\d+)", u.path)
    if m:
        uid = int(m.group(1))
        name = "USER13" if PLANT and uid == 13 else "user%d" % uid
        # Keys reversed, same values.
        return 200, {"X-Api-Version": "1"}, {"active": True, "score": 1.5,
                                             "tags": ["a", "b"], "name": name,
                                             "id": uid}
    if u.path == "/version":
        return 200, {"X-Api-Version": "2" if PLANT else "1"}, {"build": 42, "version": "1.0"}
    if u.path == "/items":
        page = int(parse_qs(u.query).get("page", ["1"])[0])
        if PLANT and page == 3:
            return 500, {}, {"error": "internal"}
        items = [{"price": 10.0 * i, "id": page * 10 + i} for i in (1, 2, 3)]
        return 200, {}, {"items": items, "page": page}
    m = re.fullmatch(r"/echo/(\d+)", u.path)
    if m:
        return 200, {}, {"n": int(m.group(1))}
    if u.path == "/health":
        return 200, {"Content-Type": "text/plain"}, "ok\n"
    return 404, {}, {"error": "not found"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status, headers, body = route(self.path)
        data = body.encode() if isinstance(body, str) else json.dumps(body, indent=1).encode()
        headers.setdefault("Content-Type", "application/json")
        # No Server header: the primary sends none either.
        self.send_response_only(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
