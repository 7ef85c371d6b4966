// Soak per model: 2,000 short connections while 100 long ones stay open, bounded in time;
// afterwards the counters add up and nothing leaked.
import { Model, startServer } from '../lib';
import {
  Client,
  exchange,
  isOneClientPerMember,
  isProcessModel,
  optionsFor,
  port,
  sleep,
  snapshot,
  waitFor,
  zombiesOf,
} from './helpers';

jest.setTimeout(60000);

describe.each<Model>(['fork', 'thread', 'iterative', 'node', 'cluster', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring'])(
  '%s model soak',
  (model) => {
    test('2,000 short connections plus 100 concurrent long ones', async () => {
      const before = snapshot();
      // A prefork worker or prethread thread serves one client at a time: 16 of them, 8 held by
      // long clients, 8 for the 8 loops of short ones.
      const pool = isOneClientPerMember(model) ? { workers: 16 } : {};
      const server = await startServer(optionsFor(model, { maxClients: model === 'fork' ? 1024 : 4096, ...pool }));
      const p = port(server);
      // The iterative model serves one client at a time: its long clients wait their turn, so it
      // gets short connections only (its own soak is the backlog). prefork, prethread: one per spare worker.
      const longCount = model === 'iterative' ? 0 : isOneClientPerMember(model) ? 8 : 100;
      const long = await Promise.all(Array.from({ length: longCount }, () => Client.open(p)));
      for (const c of long) expect((await c.echo('long')).toString()).toBe('long');
      const deadline = Date.now() + 40000;
      let done = 0;
      const worker = async () => {
        while (done < 2000 && Date.now() < deadline) {
          done++;
          const msg = `short ${done}`;
          expect((await exchange(p, Buffer.from(msg))).toString()).toBe(msg);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      expect(done).toBeGreaterThanOrEqual(2000); // not cut short by the time bound
      for (const c of long) expect((await c.echo('still here')).toString()).toBe('still here');
      for (const c of long) c.end();
      await waitFor(() => server.stats().closed === 2000 + longCount, 20000, 'every connection closed');
      const s = server.stats();
      expect(s.accepted).toBe(s.closed + s.rejected + s.active);
      expect(s).toMatchObject({ accepted: 2000 + longCount, rejected: 0, active: 0, eventsDropped: 0 });
      if (model === 'fork') expect(s.reaped).toBe(2000 + longCount);
      const master = server.pid;
      await server.close();
      await sleep(50);
      expect(zombiesOf(process.pid)).toEqual([]);
      if (isProcessModel(model)) expect(zombiesOf(master)).toEqual([]);
      const after = snapshot();
      expect(after.fds).toBe(before.fds);
      expect(after.tasks).toBe(before.tasks);
      expect(after.children).toEqual(before.children);
    });
  },
);
