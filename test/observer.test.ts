// Observing must not change what is observed. Reporting a connection must not wake another task:
// the native servers publish events into a ring in the shared page; a thread of the addon (the
// drain thread, ps-events) takes them out on a 10 ms timer while they flow, and wakes Node's main
// thread at most once per drain. So each of the two wakes about once per 10 ms, not once per
// connection. Measured with the kernel's own count of the times a thread went to sleep and was
// woken again. And events are no longer lost because Node's main thread is slow: only a wedged
// one, which takes none for seconds, loses them — and then never a connection's start alone.
import { readdirSync, readFileSync } from 'node:fs';
import { runLoad } from '../lib/bench/loadgen';
import { native } from '../lib/addon';
import { NATIVE_MODELS, startServer } from '../lib';
import { optionsFor, port, sleep, waitFor, withVariants } from './helpers';

/** The test switch that makes Node's side hold few events for a listener that takes none. */
const EVENT_BACKLOG_ENV = 'POSIX_SERVERS_TEST_EVENT_BACKLOG';

/** How many times a thread of this process blocked and was woken again. */
function wakeupsOf(tid: number): number {
  const sched = readFileSync(`/proc/self/task/${tid}/sched`, 'utf8');
  const m = /^nr_voluntary_switches\s*:\s*(\d+)/m.exec(sched);
  if (!m) throw new Error(`no nr_voluntary_switches in /proc/self/task/${tid}/sched`);
  return Number(m[1]);
}

/** The threads of this process with this name (comm). */
function threadsNamed(name: string): number[] {
  return readdirSync('/proc/self/task')
    .map(Number)
    .filter((tid) => {
      try {
        return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    });
}

describe.each(NATIVE_MODELS)('%s model: events do not wake Node per connection', (model) => {
  test('a churn of connections wakes Node far less often than once per connection, and every event arrives', async () => {
    const server = await startServer(optionsFor(model, { maxClients: 1000 }));
    let connections = 0;
    let disconnects = 0;
    server.on('connection', () => connections++);
    server.on('disconnect', () => disconnects++);
    try {
      // The server's own drain thread: one, whatever the model.
      const drains = threadsNamed(native.constants.threadNames.events);
      expect(drains).toHaveLength(1);
      const [drain] = drains;
      // The load generator runs on a thread of its own: while it runs, the main thread has
      // nothing to do but take events (its only wake-ups are the relay's and the load results').
      // Churn until 600 connections have come and gone (bounded: 15 s), however fast this
      // machine is today: the question is wake-ups per connection, not speed.
      const before = wakeupsOf(process.pid);
      const drainBefore = wakeupsOf(drain);
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
      const wakeups = wakeupsOf(process.pid) - before;
      const drainWakeups = wakeupsOf(drain) - drainBefore;
      expect(connects).toBeGreaterThanOrEqual(600);
      // The server woke the drain thread only when it had parked: at most once per load window
      // (between two windows the ring may stay empty long enough to park), never once per connection.
      expect(server.stats().eventWakeups).toBeLessThanOrEqual(windows + 2);
      // And the kernel agrees: the drain thread woke about once per 10 ms drain (its timer), and
      // Node's main thread about once per drain too (the relay), plus the load generator's one
      // result per window — not once per connection. Whatever this machine's speed, that is a
      // bound in time; on a quiet machine it is a small fraction of the connections.
      expect(drainWakeups).toBeLessThan((elapsedMs / 10) * 1.5 + windows * 4 + 50);
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

// Node's main thread stalled (a listener's heavy work, a long garbage collection, a crowded
// machine) for as long as the server fills its ring twice over: the drain thread keeps the
// events, and every one of them arrives once Node's main thread is back.
describe.each(withVariants(NATIVE_MODELS))('%s: a slow Node loses no event', (_label, model, extra) => {
  test('a stall longer than the ring lasts: nothing dropped, every connection and disconnect heard', async () => {
    // Traced: each connection writes several records, and the ring fills after fewer of them.
    const server = await startServer(optionsFor(model, { ...extra, maxClients: 1000, trace: true }));
    let connections = 0;
    let disconnects = 0;
    let records = 0;
    server.on('connection', () => connections++);
    server.on('disconnect', () => disconnects++);
    for (const name of ['connection', 'disconnect', 'trace'] as const) server.on(name, () => records++);
    const clients = model === 'iterative' ? 1 : 8;
    try {
      // This machine's churn rate today and the records a connection writes; then a load long
      // enough to make twice the ring's records at half that rate; this thread stalls until they
      // are made (bounded: 8 s).
      const probe = await runLoad({ mode: 'churn', port: port(server), connections: clients, durationMs: 300 });
      // (No time is asserted: the waits are long because a crowded machine, or a sanitizer's
      // runtime, can take seconds to decode a few thousand traced connections.)
      await waitFor(() => disconnects === probe.connects, 30000, "the probe's events");
      const perConnection = records / probe.connects;
      const capacity = native.constants.EVENT_RING_CAPACITY;
      const target = Math.ceil((2 * capacity) / perConnection);
      const durationMs = Math.min(8000, Math.ceil((2 * target * 1000) / Math.max(probe.connsPerSec, 1)) + 300);
      const before = server.stats().accepted;
      const stalled = runLoad({ mode: 'churn', port: port(server), connections: clients, durationMs });
      blockUntil(() => server.stats().accepted - before >= target, durationMs);
      const madeWhileStalled = server.stats().accepted - before;
      const r = await stalled;
      const connects = probe.connects + r.connects;
      // The stall was long enough to matter: the ring alone would have dropped records.
      expect(madeWhileStalled * perConnection).toBeGreaterThan(capacity);
      await waitFor(() => disconnects === connects, 30000, 'a disconnect event per connection');
      expect(connections).toBe(connects);
      expect(server.stats()).toMatchObject({ accepted: connects, closed: connects, active: 0, eventsDropped: 0 });
    } finally {
      await server.close();
    }
  }, 90000);
});

// When events must be lost after all (Node's main thread takes none for far too long: it is
// wedged), a connection's two events are lost together or its disconnect alone, never its
// connection alone: no listener hears of the end of a connection whose start it never heard.
describe.each(withVariants(NATIVE_MODELS))('%s: a wedged Node loses events, never the pairing', (_label, model, extra) => {
  const held = model === 'iterative' ? 1 : 2;
  test('every disconnect heard had its connection heard first; the lost ones are counted', async () => {
    process.env[EVENT_BACKLOG_ENV] = '256';
    // Traced: each connection writes several records more, and the ring fills sooner.
    const server = await startServer(optionsFor(model, { ...extra, maxClients: 1000, trace: true }));
    delete process.env[EVENT_BACKLOG_ENV];
    const heard = new Set<number>();
    const orphans: number[] = [];
    let disconnects = 0;
    server.on('connection', (c) => heard.add(c.id));
    server.on('disconnect', (d) => {
      disconnects++;
      if (!heard.has(d.id)) orphans.push(d.id);
    });
    try {
      // A churn on the load generator's thread; this thread blocks until records are dropped (the
      // ring stays full from then on: nobody takes from it).
      const churn = runLoad({ mode: 'churn', port: port(server), connections: held * 2, durationMs: 4000 });
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
      delete process.env[EVENT_BACKLOG_ENV];
      await server.close();
    }
  });
});
