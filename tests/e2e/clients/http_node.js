#!/usr/bin/node
// HTTP adapter: Node.js http.Agent({keepAlive: true, maxSockets: 1}) loop.
//
//     node http_node.js --target NAME:PORT --rate R --out FILE --stop-file FILE
//         [--max-duration S] [--slow-file FILE] [--conns 1] [--tls CA_FILE]
//         [--lookup getaddrinfo|resolve4]
//
// GET http://NAME:PORT/node on a fixed schedule, one request at a time. With --tls,
// https://NAME:PORT/node through an https.Agent({keepAlive: true, maxSockets: 1}); node trusts
// the CA because NODE_EXTRA_CA_CERTS names CA_FILE (node reads it only at start, so whoever
// starts the adapter sets it; the adapter refuses to start otherwise). See README.md.
// --lookup resolve4 (client id node-resolve4, GET /node-resolve4): every new connection looks
// the name up with dns.resolve4(), node's own c-ares client reading /etc/resolv.conf, instead of
// dns.lookup() (getaddrinfo in libuv's thread pool), and connects to its first address, as
// programs that want DNS TTLs or bypass the libc resolver do. A kept connection is never looked
// up again; the next new one is.
'use strict';

const dns = require('dns');
const fs = require('fs');
const http = require('http');
const https = require('https');


function usage(msg) {
  process.stderr.write(`http_node.js: ${msg}\nusage: node http_node.js --target NAME:PORT ` +
    '--rate R --out FILE --stop-file FILE [--max-duration S] [--slow-file FILE] [--conns 1] ' +
    '[--connection keep-alive|close] [--tls CA_FILE] [--lookup getaddrinfo|resolve4]\n');
  process.exit(2);
}

const args = {'max-duration': '120', conns: '1', connection: 'keep-alive', lookup: 'getaddrinfo'};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const m = /^--(target|rate|out|stop-file|max-duration|slow-file|conns|connection|tls|lookup)$/
    .exec(argv[i]);
  if (!m || i + 1 >= argv.length) usage(`bad argument ${argv[i]}`);
  args[m[1]] = argv[i + 1];
}
for (const k of ['target', 'rate', 'out', 'stop-file']) if (!(k in args)) usage(`missing --${k}`);
const rate = Number(args.rate);
const maxDuration = Number(args['max-duration']);
if (!(rate > 0) || !(maxDuration >= 0) || args.conns !== '1') {
  usage('--rate must be > 0, --max-duration >= 0 and --conns 1');
}
if (!['keep-alive', 'close'].includes(args.connection)) usage('--connection must be keep-alive or close');
if (!['getaddrinfo', 'resolve4'].includes(args.lookup)) usage('--lookup must be getaddrinfo or resolve4');
const CLIENT = args.lookup === 'resolve4' ? 'node-resolve4' : 'node';
// close: a fresh connection for every request (the failover scenario).
const headers = args.connection === 'close' ? {Connection: 'close'} : {};
// --slow-file is ignored: HTTP slow answers come from the backend.
if ('tls' in args && process.env.NODE_EXTRA_CA_CERTS !== args.tls) {
  usage('--tls CA_FILE needs NODE_EXTRA_CA_CERTS=CA_FILE in the environment (read at start)');
}
const proto = 'tls' in args ? https : http;

const url = `${'tls' in args ? 'https' : 'http'}://${args.target}/${CLIENT}`;
const outFd = fs.openSync(args.out, 'a');
const emit = (rec) => fs.writeSync(outFd, JSON.stringify(rec) + '\n');
const now = () => Date.now() / 1000;
const mono = () => performance.now() / 1000;
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

const agent = new proto.Agent({keepAlive: true, maxSockets: 1});

// --lookup resolve4: net.connect's lookup hook answered by dns.resolve4 (c-ares, no
// getaddrinfo), first address only. net asks with {all: true} when it may try several
// addresses (autoSelectFamily, on by default since node 20).
function resolve4Lookup(hostname, options, callback) {
  dns.resolve4(hostname, (err, addrs) => {
    if (!err && addrs.length === 0) err = Object.assign(new Error('no A records'), {code: 'ENODATA'});
    if (err) return callback(err);
    if (options && options.all) return callback(null, [{address: addrs[0], family: 4}]);
    callback(null, addrs[0], 4);
  });
}
const requestOptions = {agent, headers, timeout: 5000};
if (args.lookup === 'resolve4') requestOptions.lookup = resolve4Lookup;

// One GET; resolves to {status, body} or rejects with the error.
function get() {
  return new Promise((resolve, reject) => {
    const req = proto.get(url, requestOptions, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, body: Buffer.concat(chunks).toString()}));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 5 s')));
    req.on('error', reject);
  });
}

async function main() {
  const version = args.lookup === 'resolve4'
    ? `${process.version}, dns.resolve4 (c-ares ${process.versions.ares})` : process.version;
  emit({type: 'meta', t: now(), pid: process.pid, client: CLIENT, version});
  const interval = 1 / rate;
  const deadline = mono() + maxDuration;
  let next = mono();
  for (let seq = 0; ; seq++) {
    // Wait for the slot, watching the stop file and the deadline.
    let stop = false;
    for (;;) {
      const t = mono();
      if (fs.existsSync(args['stop-file']) || t >= deadline) { stop = true; break; }
      if (t >= next) break;
      await sleep(Math.min(0.05, next - t));
    }
    if (stop) break;

    const rec = {type: 'req', seq, t: now()};
    let backend = null, port = null, error = null;
    try {
      const r = await get();
      try {
        const b = JSON.parse(r.body);
        backend = b.backend ?? null;
        port = b.client_port ?? null;
      } catch (e) {
        error = `bad body: ${JSON.stringify(r.body.slice(0, 200))}`;
      }
      if (r.status !== 200) error = `HTTP ${r.status}`;
    } catch (e) {
      error = `${e.code || e.name}: ${e.message}`;
    }
    rec.t_end = now();
    rec.ok = error === null && backend !== null;
    Object.assign(rec, {backend, client_port: port, conn: 0, slow: false});
    if (!rec.ok) rec.error = error || 'no backend in body';
    emit(rec);
    // Fixed schedule; after a late request the next one waits a full interval (no catch-up
    // burst, and never a request right on the heels of a slow answer).
    next += interval;
    if (next < mono()) next = mono() + interval;
  }
  agent.destroy();
  emit({type: 'end', t: now()});
  process.exit(0);
}

main();
