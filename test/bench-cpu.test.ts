// The benchmark's CPU time per connection, held against CPU burns whose size is known: each burner
// (test/fixtures/cpu-burner.c, compiled here, run per connection by the exec handler) reports what
// it used by its own clock. The figure must agree within 10 %, for live pool members (read from
// each process's CPU clock: /proc's 10 ms ticks lose up to 20 ms per process, more than these
// burns) and for children the server reaped (from the master's wait4() books: once reaped, a
// process is gone from /proc).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuBetweenMs, readCpu, reapedTicksMs } from '../lib/bench/cpu';
import { runLoad } from '../lib/bench/loadgen';
import { startApiServer, startModel } from '../lib/bench/runner';
import { childrenOf, Client, waitFor } from './helpers';

/** Each burn, ms of CPU by the burner's own clock: three of /proc's clock ticks. */
const BURN_MS = 30;
const CLIENTS = 10;

let dir: string;
let burner: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cpu-burner-'));
  burner = join(dir, 'cpu-burner');
  execFileSync('gcc', ['-O2', '-o', burner, join(__dirname, 'fixtures', 'cpu-burner.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The next `cpu <ns>` line the burner sent, in ms. */
async function cpuLine(c: Client): Promise<number> {
  let text = '';
  // A byte at a time: what follows the line stays in the client's buffer for the next call.
  while (!text.endsWith('\n')) text += (await c.read(1, 20000)).toString();
  const m = /^cpu (\d+)\n$/.exec(text);
  if (!m) throw new Error(`the burner said ${JSON.stringify(text)}`);
  return Number(m[1]) / 1e6;
}

const expectWithin10Percent = (measuredMs: number, knownMs: number) => {
  expect(measuredMs).toBeGreaterThan(knownMs * 0.9);
  expect(measuredMs).toBeLessThan(knownMs * 1.1);
};

test.each([
  ['prefork', `prefork's live members (each becomes its client's burner), then the same members once reaped`],
  ['fork', 'fork: the children, then the same children once reaped'],
] as const)(
  '%s: CPU time within 10 %% of a known burn — %s',
  async (model, _what) => {
    const server = await startApiServer(
      {
        model,
        maxClients: 100,
        ...(model === 'prefork' ? { workers: CLIENTS } : {}),
        handler: { exec: [burner, String(BURN_MS)] },
      },
      model,
    );
    const clients: Client[] = [];
    try {
      const start = await readCpu(server.pid, server.reapedCpuNs);
      for (let i = 0; i < CLIENTS; i++) clients.push(await Client.open(server.port));
      // Every burner has burned and waits, alive: a live member (prefork) or child (fork) each.
      const burned = await Promise.all(clients.map(cpuLine));
      const live = await readCpu(server.pid, server.reapedCpuNs);
      expectWithin10Percent(
        cpuBetweenMs(start, live),
        burned.reduce((a, b) => a + b, 0),
      );

      for (const c of clients) c.end();
      const total = await Promise.all(clients.map(cpuLine));
      for (const c of clients) await c.closedByPeer(10000);
      // Every burner has exited and been reaped: its CPU is in the master's books now.
      let reaped = 0;
      for (let i = 0; i < 100 && reaped < CLIENTS; i++) {
        reaped = (await server.stats()).reaped;
        if (reaped < CLIENTS) await new Promise((r) => setTimeout(r, 50));
      }
      expect(reaped).toBe(CLIENTS);
      const end = await readCpu(server.pid, server.reapedCpuNs);
      expect(end.reapedNs! - start.reapedNs!).toBeGreaterThan(0);
      expectWithin10Percent(
        cpuBetweenMs(start, end),
        total.reduce((a, b) => a + b, 0),
      );
    } finally {
      for (const c of clients) c.destroy();
      await server.close();
    }
  },
  60000,
);

// ref-fork keeps the same books as the fork master (wait4()'s rusage of every child it reaps) and
// reports them on SIGUSR2 (ref/ref.h): /proc's view of the same children, its cutime + cstime in
// 10 ms ticks, agrees to within those ticks.
test("ref-fork reports its reaped children's CPU time on SIGUSR2; /proc's ticks agree to within a tick per field", async () => {
  const server = await startModel('ref-fork', 4, 'rpc');
  try {
    expect(await server.reapedCpuNs!()).toBe(0);
    const r = await runLoad({ mode: 'rpc', port: server.port, connections: 4, size: 4000, durationMs: 500 });
    expect(r.messages).toBeGreaterThan(0);
    await waitFor(() => childrenOf(server.pid!).length === 0, 5000, 'every child reaped');
    const reapedMs = (await server.reapedCpuNs!()) / 1e6;
    const ticksMs = reapedTicksMs(server.pid!);
    expect(reapedMs).toBeGreaterThan(0);
    expect(Math.abs(reapedMs - ticksMs)).toBeLessThanOrEqual(20);
  } finally {
    await server.close();
  }
});
