// SPDX-License-Identifier: BSD-2-Clause
// A keep-alive server on node's http module for the capture tests: /small,
// /big (1 MiB), /writev (head and two body parts corked into one writev),
// POST echoes the length read. Usage: node capture_server.js PORT
'use strict';
const http = require('http');
const big = Buffer.alloc(1 << 20);
for (let i = 0; i < big.length; i++) big[i] = i & 0xff;

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST') {
      const body = `{"read":${Buffer.concat(chunks).length}}`;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      return res.end(body);
    }
    if (req.url.startsWith('/big')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': big.length });
      return res.end(big);
    }
    if (req.url.startsWith('/writev')) {
      const a = '{"part":"one",', b = '"and":"two"}';
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': a.length + b.length });
      res.cork();
      res.write(a);
      res.write(b);
      process.nextTick(() => { res.uncork(); res.end(); });
      return;
    }
    const body = `{"ok":true,"path":${JSON.stringify(req.url)}}`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
