// Inside the sandbox (no network namespace of its own to reach anything): listens on the
// sandbox's loopback and relays every connection to Warden's egress proxy through a Unix socket
// bound into the sandbox. All decisions are taken by the proxy outside; this only moves bytes.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const [socketPath, port, readyFile] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(Number(port), '127.0.0.1', () => fs.writeFileSync(readyFile, 'ready'));
