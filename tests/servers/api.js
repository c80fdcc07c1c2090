// SPDX-License-Identifier: BSD-2-Clause
// A small JSON API on node's http module: the primary of the end-to-end
// tests and the demo. Responses are chunked, and gzip-encoded when the
// client accepts gzip.
//   node api.js PORT [plain|noisy|noisy-planted]
// noisy adds a random "ts" field to every object (volatile noise);
// noisy-planted also renames user 13 (a real difference).
'use strict';
const http = require('http');
const zlib = require('zlib');

const port = Number(process.argv[2]);
const variant = process.argv[3] || 'plain';
const noisy = variant.startsWith('noisy');

function user(id) {
  const name = variant === 'noisy-planted' && id === 13 ? 'USER13' : 'user' + id;
  return { id, name, tags: ['a', 'b'], score: 1.5, active: true };
}

function route(url) {
  const u = new URL(url, 'http://x');
  let m;
  if ((m = /^\/users\/(\d+)$/.exec(u.pathname)))
    return [200, { 'X-Api-Version': '1' }, user(Number(m[1]))];
  if (u.pathname === '/version')
    return [200, { 'X-Api-Version': '1' }, { version: '1.0', build: 42 }];
  if (u.pathname === '/items') {
    const page = Number(u.searchParams.get('page') || 1);
    const items = [1, 2, 3].map((i) => ({ id: page * 10 + i, price: 10.0 * i }));
    return [200, {}, { page, items }];
  }
  if ((m = /^\/echo\/(\d+)$/.exec(u.pathname)))
    return [200, {}, { n: Number(m[1]) }];
  if (u.pathname === '/health')
    return [200, { 'Content-Type': 'text/plain' }, 'ok\n'];
  return [404, {}, { error: 'not found' }];
}

http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const [status, headers, body] = route(req.url);
    let text = typeof body === 'string' ? body : JSON.stringify(body);
    if (noisy && typeof body !== 'string')
      text = JSON.stringify(Object.assign({ ts: Date.now() + Math.random() }, body));
    headers['Content-Type'] = headers['Content-Type'] || 'application/json';
    const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] || '');
    if (gzip) headers['Content-Encoding'] = 'gzip';
    res.writeHead(status, headers);
    // Two writes: node sends the body chunked.
    const data = gzip ? zlib.gzipSync(text) : Buffer.from(text);
    const half = data.length >> 1;
    res.write(data.subarray(0, half));
    res.end(data.subarray(half));
  });
}).listen(port, '127.0.0.1');
