// Observing must not change what is observed. Reporting a connection must not wake another task:
// the native servers publish events into a ring in the shared page, and Node drains it on a
// timer, so Node's main thread wakes about once per poll, not once per connection. Measured with
// the kernel's own count of the times that thread went to sleep and was woken again.
import { readFileSync } from 'node:fs';
import { runLoad } from '../lib/bench/loadgen';
import { NATIVE_MODELS, startServer } from '../lib';
import { optionsFor, port, sleep, waitFor, withVariants } from './helpers';

/** How many times Node's main thread (tid == pid) blocked and was woken again. */
function mainThreadWakeups(): number {
  const sched = readFileSync(`/proc/self/task/${process.pid}/sched`, 'utf8');
  const m = /^nr_voluntary_switches\s*:\s*(\d+)/m.exec(sched);
  if (!m) throw new Error('no nr_voluntary_switches in /proc/self/task/<pid>/sched');
  return Number(m[1]);
}

describe.each(NATIVE_MODELS)('%s model: events do not wake Node per connection', (model) => {
  test('a churn of connections wakes Node far less often than once per connection, and every event arrives', async () => {
    const server = await startServer(optionsFor(model, { maxClients: 1000 }));
    let connections = 0;
    let disconnects = 0;
    server.on('connection', () => connections++);
    server.on('disconnect', () => disconnects++);
    try {
      // The load generator runs on a thread of its own: while it runs, the main thread has
      // nothing to do but drain events (its only wake-ups are the poll timer's, and the doorbell).
      // Churn until 600 connections have come and gone (bounded: 15 s), however fast this
      // machine is today: the question is wake-ups per connection, not speed.
      const before = mainThreadWakeups();
      const started = Date.now();
      let connects = 0;
      let windows = 0;
      while (connects < 600 && Date.now() - started < 15000) {
        const r = await runLoad({
          mode: 'churn',
          port: port(server),
          connections: model === 'iterative' ? 1 : 4,
          durationMs: 200,
        });
        expect(r.errors + r.resets + r.verifyFailures).toBe(0);
        connects += r.connects;
        windows++;
      }
      const elapsedMs = Date.now() - started;
      const wakeups = mainThreadWakeups() - before;
      expect(connects).toBeGreaterThanOrEqual(600);
      // The server woke Node only when Node had parked: at most once per load window (between two
      // windows the ring may stay empty long enough to park), never once per connection.
      expect(server.stats().eventWakeups).toBeLessThanOrEqual(windows + 2);
      // And the kernel agrees: Node's main thread woke about once per 10 ms poll (plus the load
      // generator's one result per window), not once per connection. Whatever this machine's speed,
      // that is a bound in time; on a quiet machine it is a small fraction of the connections.
      expect(wakeups).toBeLessThan((elapsedMs / 10) * 1.5 + windows * 4 + 50);
      await waitFor(() => disconnects === connects, 5000, 'a disconnect event per connection');
      expect(connections).toBe(connects);
      expect(server.stats()).toMatchObject({ accepted: connects, closed: connects, active: 0, eventsDropped: 0 });
    } finally {
      await server.close();
    }
  });
});

/** Blocks Node's main thread (nothing else of this process) for up to `ms`, until `done()`. */
function blockUntil(done: () => boolean, ms: number): boolean {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (done()) return true;
    Atomics.wait(nap, 0, 0, 2);
  }
  return done();
}

// When events must be lost after all (Node's main thread takes none for far too long: it is
// wedged), a connection's two events are lost together or its disconnect alone, never its
// connection alone: no listener hears of the end of a connection whose start it never heard.
describe.each(withVariants(NATIVE_MODELS))('%s: a wedged Node loses events, never the pairing', (_label, model, extra) => {
  const held = model === 'iterative' ? 1 : 2;
  test('every disconnect heard had its connection heard first; the lost ones are counted', async () => {
    const server = await startServer(optionsFor(model, { ...extra, maxClients: 1000 }));
    const heard = new Set<number>();
    const orphans: number[] = [];
    let disconnects = 0;
    server.on('connection', (c) => heard.add(c.id));
    server.on('disconnect', (d) => {
      disconnects++;
      if (!heard.has(d.id)) orphans.push(d.id);
    });
    try {
      // A churn on the load generator's thread; this thread blocks until records are dropped.
      const churn = runLoad({ mode: 'churn', port: port(server), connections: 1, durationMs: 4000 });
      expect(blockUntil(() => server.stats().eventsDropped > 0, 10000)).toBe(true);
      // Still wedged: clients connect now, while every record is dropped, and stay until Node
      // takes events again (their connection records are lost; their ends come later).
      const late = runLoad({ mode: 'pingpong', port: port(server), connections: held, durationMs: 1500 });
      blockUntil(() => false, 300);
      const [c, l] = await Promise.all([churn, late]);
      expect(l.connects).toBe(held);
      const connects = c.connects + l.connects;
      await waitFor(() => server.stats().closed === connects, 5000, 'every connection to end');
      await sleep(100); // the last events
      const s = server.stats();
      expect(orphans).toEqual([]);
      expect(s.eventsDropped).toBeGreaterThan(0);
      // Each connection made two records, or none at all while unheard: lost, or heard.
      expect(heard.size).toBeLessThan(connects);
      expect(disconnects).toBeLessThanOrEqual(heard.size);
    } finally {
      await server.close();
    }
  });
});
