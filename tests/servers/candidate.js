// SPDX-License-Identifier: BSD-2-Clause
// A candidate for replay tests, on 127.0.0.1.
//   node candidate.js PORT echo  [DELAY_MS]        echoes the request as JSON
//   node candidate.js PORT gzip                    the echo, gzip-encoded
//   node candidate.js PORT https DELAY_MS KEY CERT the same over TLS
//   node candidate.js PORT garbage                 answers bytes that are not HTTP
//   node candidate.js PORT reset                   starts a response, then RST
//   node candidate.js PORT close                   closes without answering
// The echo is {method, url, headers: [[name, value]...] as received (order
// and case kept), body, active, max_active, count}: active/max_active are
// the requests in progress now / at most so far, across connections.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');
const fs = require('fs');
const zlib = require('zlib');

const port = Number(process.argv[2]);
const mode = process.argv[3] || 'echo';
const delay = Number(process.argv[4] || 0);
let active = 0, maxActive = 0, count = 0;

function echo(req, res) {
	const chunks = [];
	active++; count++;
	if (active > maxActive) maxActive = active;
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const headers = [];
		for (let i = 0; i < req.rawHeaders.length; i += 2)
			headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
		const out = JSON.stringify({
			method: req.method, url: req.url, headers,
			body: Buffer.concat(chunks).toString('latin1'),
			active, max_active: maxActive, count,
		});
		setTimeout(() => {
			active--;
			const body = mode === 'gzip' ? zlib.gzipSync(out) : Buffer.from(out);
			const h = { 'Content-Type': 'application/json', 'X-Echo': 'yes',
				    'Content-Length': body.length };
			if (mode === 'gzip') h['Content-Encoding'] = 'gzip';
			res.writeHead(200, h);
			res.end(req.method === 'HEAD' ? undefined : body);
		}, delay);
	});
}

function raw(onRequest) {
	return net.createServer((s) => {
		let buf = '';
		s.on('data', (d) => {
			buf += d.toString('latin1');
			if (buf.includes('\r\n\r\n')) { onRequest(s); buf = ''; }
		});
		s.on('error', () => {});
	});
}

let server;
if (mode === 'echo' || mode === 'gzip') {
	server = http.createServer(echo);
	server.keepAliveTimeout = 30000;
} else if (mode === 'https') {
	server = https.createServer({ key: fs.readFileSync(process.argv[5]),
				      cert: fs.readFileSync(process.argv[6]) }, echo);
} else if (mode === 'garbage') {
	server = raw((s) => s.end('SSH-2.0-OpenSSH_9.2 totally not http\r\n\r\n'));
} else if (mode === 'reset') {
	server = raw((s) => {
		s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial');
		setTimeout(() => s.resetAndDestroy(), 20);
	});
} else if (mode === 'close') {
	server = raw((s) => s.destroy());
} else {
	console.error('unknown mode ' + mode);
	process.exit(2);
}
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
