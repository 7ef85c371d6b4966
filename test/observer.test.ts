// Observing must not change what is observed. Reporting a connection must not wake another task:
// the native servers publish events into a ring in the shared page, and Node drains it on a
// timer, so Node's main thread wakes about once per poll, not once per connection. Measured with
// the kernel's own count of the times that thread went to sleep and was woken again.
import { readFileSync } from 'node:fs';
import { runLoad } from '../lib/bench/loadgen';
import { NATIVE_MODELS, startServer } from '../lib';
import { optionsFor, port, waitFor } from './helpers';

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
      const before = mainThreadWakeups();
      const r = await runLoad({ mode: 'churn', port: port(server), connections: model === 'iterative' ? 1 : 4, durationMs: 600 });
      const wakeups = mainThreadWakeups() - before;
      expect(r.errors + r.resets + r.verifyFailures).toBe(0);
      expect(r.connects).toBeGreaterThan(300);
      // One wake-up per 10 ms poll over 0.6 s is about 60; one per connection would be > 300.
      expect(wakeups).toBeLessThan(r.connects / 3);
      await waitFor(() => disconnects === r.connects, 5000, 'a disconnect event per connection');
      expect(connections).toBe(r.connects);
      expect(server.stats()).toMatchObject({ accepted: r.connects, closed: r.connects, active: 0, eventsDropped: 0 });
    } finally {
      await server.close();
    }
  });
});
