// SPDX-License-Identifier: BSD-2-Clause
// A keep-alive HTTPS server on node's https module. node carries its own
// OpenSSL inside the binary, so no libssl uprobe sees its plaintext: the
// TLS capture tests use it as the "TLS not decoded" case.
// Usage: node tls_server.js PORT CERT KEY
'use strict';
const fs = require('fs');
const https = require('https');

https.createServer({ cert: fs.readFileSync(process.argv[3]),
                     key: fs.readFileSync(process.argv[4]) }, (req, res) => {
  req.resume();
  req.on('end', () => {
    const body = `{"ok":true,"path":"${req.url}"}`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
}).listen(+process.argv[2], '127.0.0.1');
