// The sandbox's only way out (started by sandboxed-process.ts in the sandbox's network namespace,
// and nothing else of it, before the program starts): listens on the sandbox's loopback and
// relays every connection to Warden's egress proxy through its Unix socket on the host. All
// decisions are taken by the proxy; this only moves bytes. It runs outside the sandbox's mount
// and PID namespaces, so the program can neither see nor start the Node that runs it.
'use strict';
const net = require('node:net');

const [socketPath, port] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
