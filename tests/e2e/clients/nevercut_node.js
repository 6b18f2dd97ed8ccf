#!/usr/bin/node
// The node end of tests/e2e/nevercut.py (issue 16: a response still arriving is never cut): the
// same phases as nevercut_ends.py's python client, through http.Agent({keepAlive: true,
// maxSockets: 1}), node's event loop reading the answers as they arrive.
//
//     node nevercut_node.js --base http://NAME:PORT --out FILE --dir DIR --tag TAG
//         --shim-log FILE [--control 1]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const args = {control: '0'};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const m = /^--(base|out|dir|tag|shim-log|control)$/.exec(argv[i]);
  if (!m || i + 1 >= argv.length) {
    process.stderr.write(`nevercut_node.js: bad argument ${argv[i]}\n`);
    process.exit(2);
  }
  args[m[1]] = argv[i + 1];
}
const control = args.control === '1';

const BIG = 1 << 20;
const TICKS = 60;
const TICK_SIZE = 64;
const PHASES = [['after', 'big'], ['after', 'stream'], ['after', 'slow'],
  ['during', 'big16'], ['during', 'stream'], ['during', 'slow']];
const PATHS = {small: '/small', big: '/big?piece=65536', big16: '/big?piece=16384',
  stream: '/stream', slow: '/slow'};
const TRIES = 3;
const AFTER_SMALLS = 25;
const CHECK_PAUSE = 250;

const block = Buffer.concat(Array(32).fill(crypto.createHash('sha256').update('nevercut').digest()));
const bigBody = Buffer.concat(Array(BIG / block.length).fill(block));
const tick = (i) => {
  const line = Buffer.from(`tick ${String(i).padStart(3, '0')} `);
  return Buffer.concat([line, Buffer.alloc(TICK_SIZE - line.length - 1, '.'), Buffer.from('\n')]);
};
const streamBody = Buffer.concat(Array.from({length: TICKS}, (_, i) => tick(i)));

function expected(kind, body) {
  if (kind === 'big' || kind === 'big16') {
    if (body.length !== BIG) return `${body.length} of ${BIG} bytes`;
    return body.equals(bigBody) ? null : 'the bytes differ';
  }
  if (kind === 'stream') {
    if (body.equals(streamBody)) return null;
    return `${body.toString().split('\n').length - 1} of ${TICKS} ticks`;
  }
  try {
    return 'backend' in JSON.parse(body.toString()) ? null : 'no backend';
  } catch (e) {
    return `not JSON: ${body.toString().slice(0, 80)}`;
  }
}

const outFd = fs.openSync(args.out, 'a');
const emit = (rec) => fs.writeSync(outFd, JSON.stringify(rec) + '\n');
const now = () => Date.now() / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const agent = new http.Agent({keepAlive: true, maxSockets: 1});

function drains() {
  try {
    return fs.readFileSync(args['shim-log'], 'utf8').split('draining fd').length - 1;
  } catch (e) {
    return 0;
  }
}

function get(kind, phase) {
  const rec = {type: 'req', kind, phase, t: now()};
  return new Promise((resolve) => {
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      Object.assign(rec, extra, {t_end: now()});
      emit(rec);
      resolve(rec);
    };
    const req = http.get(args.base + PATHS[kind], {agent, timeout: 15000}, (res) => {
      rec.port = res.socket.localPort;
      rec.backend = res.headers['x-backend'];
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('aborted', () => finish({ok: false, stage: 'body', error: 'aborted',
        bytes: Buffer.concat(parts).length}));
      res.on('error', (e) => finish({ok: false, stage: 'body', error: String(e),
        bytes: Buffer.concat(parts).length}));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        const wrong = res.complete ? expected(kind, body) : 'incomplete';
        finish(wrong ? {ok: false, stage: 'body', error: wrong, bytes: body.length}
          : {ok: true, bytes: body.length});
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish({ok: false, stage: rec.backend ? 'body' : 'request',
      error: String(e)}));
  });
}

let moves = 0;
async function move() {
  moves += 1;
  fs.writeFileSync(`${args.dir}/${args.tag}.want-move.${moves}`, '');
  const done = `${args.dir}/${args.tag}.moved.${moves}`;
  const end = Date.now() + 10000;
  while (!fs.existsSync(done)) {
    if (Date.now() > end) throw new Error('the driver did not move the name within 10 s');
    await sleep(10);
  }
  return fs.readFileSync(done, 'utf8').trim();
}

async function phase(mode, kind, n) {
  const ph = `${mode}-${kind}-${n}`;
  const rec = {type: 'phase', mode, kind, try: n, phase: ph};
  const d0 = drains();
  rec.to = await move();
  if (mode === 'after') {
    const end = Date.now() + (control ? 1200 : 5000);
    while ((control || drains() === d0) && Date.now() < end) {
      await get('small', ph);
      await sleep(10);
    }
    rec.drain_seen = drains() > d0;
    const smalls = [];
    for (let i = 0; i < AFTER_SMALLS; i++) smalls.push(await get('small', ph));
    rec.ports_before = smalls.map((s) => s.port);
  }
  rec.drains_before = drains() - d0;
  const special = await get(kind, ph);
  rec.drains_after = drains() - d0;
  rec.special_port = special.port;
  await sleep(CHECK_PAUSE);
  const check = await get('small', ph);
  rec.check_backend = check.backend;
  rec.check_port = check.port;
  if (mode === 'after') {
    rec.covered = rec.drain_seen && rec.drains_before === 1 &&
      rec.ports_before.every((p) => p === special.port);
  } else {
    rec.covered = rec.drains_before === 0 && rec.drains_after === 1;
  }
  emit(rec);
  return rec.covered;
}

async function main() {
  const end = Date.now() + 1000;
  while (Date.now() < end) {
    await get('small', 'warm');
    await sleep(10);
  }
  for (const [mode, kind] of PHASES) {
    for (let n = 1; n <= (control ? 1 : TRIES); n++) {
      if ((await phase(mode, kind, n)) || control) break;
    }
  }
  emit({type: 'done', t: now()});
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`nevercut_node.js: ${e.stack || e}\n`);
  process.exit(1);
});
