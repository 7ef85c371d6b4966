#!/usr/bin/env node
// Does a server lose events while Node lives? Runs churn (connect, echo, close, again) against
// each pool model, a given number of connections a run, with a CPU hog beside it (a busy process
// per hog: more runnable tasks than this machine has CPUs), and reports for each run what a
// listener heard: connections, disconnects, orphans (a disconnect without its connection) and
// stats().eventsDropped. Node's main thread may be made slow on purpose too (--stall-ms: a
// synchronous busy spell every second, as a listener's heavy work or a long garbage collection).
//
//   node scripts/event-churn.js [--runs 6] [--connections 50000] [--hogs 1] [--stall-ms 0]
//                               [--models prefork,reuseport,prethread,prethread:main]
//
// Every loop is bounded: a run stops at its connection count or after 120 s of load.
'use strict';
const { spawn } = require('node:child_process');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { startServer } = require('../dist');
const { runLoad } = require('../dist/bench/loadgen');

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const runs = Number(flag('runs', '6'));
const perRun = Number(flag('connections', '50000'));
const hogs = Number(flag('hogs', '1'));
const stallMs = Number(flag('stall-ms', '0'));
const models = flag('models', 'prefork,reuseport,prethread,prethread:main').split(',');
const RUN_LIMIT_MS = 120000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function churnRun(spec) {
  const [model, acceptLock] = spec.split(':');
  const server = await startServer({ model, workers: 4, maxClients: 1000, ...(acceptLock ? { acceptLock } : {}) });
  const live = new Set();
  let connections = 0;
  let disconnects = 0;
  let orphans = 0;
  server.on('connection', (c) => {
    connections++;
    live.add(c.id);
  });
  server.on('disconnect', (d) => {
    disconnects++;
    if (!live.delete(d.id)) orphans++;
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const stall =
    stallMs > 0
      ? setInterval(() => {
          const end = Date.now() + stallMs;
          while (Date.now() < end);
        }, 1000)
      : null;
  const port = server.address().port;
  const started = Date.now();
  let connects = 0;
  let errors = 0;
  while (connects < perRun && Date.now() - started < RUN_LIMIT_MS) {
    const r = await runLoad({ mode: 'churn', port, connections: 8, durationMs: 1000 });
    connects += r.connects;
    errors += r.errors + r.resets + r.verifyFailures;
  }
  const loadMs = Date.now() - started;
  if (stall) clearInterval(stall);
  // Every connection has ended; the last events arrive within a drain.
  const settle = Date.now();
  while (
    (server.stats().closed < connects || disconnects + server.stats().eventsDropped < connects) &&
    Date.now() - settle < 10000
  ) {
    await sleep(20);
  }
  await sleep(100);
  delay.disable();
  const s = server.stats();
  await server.close();
  return {
    model: spec,
    connects,
    seconds: +(loadMs / 1000).toFixed(1),
    connections,
    disconnects,
    orphans,
    eventsDropped: s.eventsDropped,
    booksTrue: s.accepted === s.closed + s.rejected + s.active,
    clientErrors: errors,
    maxLoopDelayMs: Math.round(delay.max / 1e6),
  };
}

async function main() {
  const hogProcs = Array.from({ length: hogs }, () => spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }));
  try {
    for (const spec of models) {
      for (let run = 1; run <= runs; run++) {
        const r = await churnRun(spec);
        console.log(JSON.stringify({ run, ...r }));
      }
    }
  } finally {
    for (const h of hogProcs) h.kill('SIGKILL');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
