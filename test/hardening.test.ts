// Floods, faults and hostile clients: every model keeps serving the clients it can, refuses the
// rest cleanly, never spins, never leaks, never takes Node down.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DisconnectEvent, Model, PosixServer, ReapEvent, startServer } from '../lib';
import {
  Client,
  childrenOf,
  exchange,
  isProcessModel,
  optionsFor,
  port,
  random,
  sleep,
  snapshot,
  SUITE_WORKERS,
  waitFor,
} from './helpers';

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

function disconnects(s: PosixServer): DisconnectEvent[] {
  const out: DisconnectEvent[] = [];
  s.on('disconnect', (d) => out.push(d));
  return out;
}

describe.each<Model>(['fork', 'thread', 'iterative', 'node', 'cluster', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring'])(
  '%s model',
  (model) => {
    test('idleTimeoutMs: a silent client (slowloris) is dropped and its place freed', async () => {
      server = await startServer(optionsFor(model, { idleTimeoutMs: 200, maxClients: 1 }));
      const gone = disconnects(server);
      const silent = await Client.open(port(server));
      // The idle time runs from the server's last send, which comes after this and may come well
      // before the client's callback runs (its loop may be busy): measured from before the send.
      const t0 = Date.now();
      await silent.echo('hello'); // served, then silent
      await silent.closedByPeer(3000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
      await waitFor(() => gone.length === 1, 3000, 'disconnect');
      expect(gone[0]).toMatchObject({ id: 1, reason: 'idle', bytesIn: 5, bytesOut: 5 });
      // The only place is free again.
      expect((await exchange(port(server), Buffer.from('next'))).toString()).toBe('next');
    });

    test('a client that resets mid-echo does not disturb the server; SIGPIPE is never delivered', async () => {
      server = await startServer(optionsFor(model));
      for (let i = 0; i < 5; i++) {
        const c = await Client.open(port(server));
        c.sock.write(random(256 * 1024)); // the server is busy writing the echo back…
        await sleep(5);
        c.sock.resetAndDestroy(); // …when the client sends RST
      }
      await waitFor(() => server!.stats().closed === 5, 5000, 'five closed');
      expect((await exchange(port(server), Buffer.from('still alive'))).toString()).toBe('still alive');
      if (model === 'fork') await waitFor(() => server!.stats().reaped === 6, 5000, 'six children reaped');
    });

    test('zero-byte writes are harmless', async () => {
      server = await startServer(optionsFor(model));
      const c = await Client.open(port(server));
      c.sock.write(Buffer.alloc(0));
      c.sock.write('');
      expect((await c.echo('after nothing')).toString()).toBe('after nothing');
      c.end();
      await c.closedByPeer();
    });
  },
);

describe.each<Model>(['fork', 'thread', 'node', 'cluster', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring'])(
  '%s model: isolation',
  (model) => {
    test('a client that stops reading blocks only its own connection; idleTimeoutMs then drops it', async () => {
      server = await startServer(optionsFor(model, { idleTimeoutMs: 500 }));
      const gone = disconnects(server);
      const stuck = await Client.open(port(server));
      stuck.sock.pause(); // never read: the server's send() fills the socket buffers and blocks
      stuck.sock.write(random(16 * 1024 * 1024));
      await sleep(100);
      // Everyone else is served meanwhile.
      for (let i = 0; i < 3; i++) expect((await exchange(port(server), Buffer.from(`other ${i}`))).toString()).toBe(`other ${i}`);
      await waitFor(() => gone.some((d) => d.id === 1), 5000, 'the stuck client dropped');
      expect(gone.find((d) => d.id === 1)!.reason).toBe('idle');
      stuck.destroy();
    });
  },
);

describe.each(['fork', 'thread', 'prefork', 'reuseport', 'prethread'] as Model[])('%s model: labCrash', (model) => {
  test('a crashing child/worker is reported and the server serves on', async () => {
    const before = snapshot();
    server = await startServer(optionsFor(model, { labCrash: true, maxClients: 1 }));
    const gone = disconnects(server);
    const reaps: ReapEvent[] = [];
    server.on('reap', (r) => reaps.push(r));
    const victim = await Client.open(port(server));
    await victim.echo('fine so far');
    victim.sock.write('CRASH\n');
    await victim.closedByPeer(3000);
    await waitFor(() => gone.length === 1, 3000, 'disconnect');
    expect(gone[0]).toMatchObject({ id: 1, reason: 'crash' });
    if (isProcessModel(model)) {
      await waitFor(() => reaps.length === 1, 3000, 'reap');
      expect(reaps[0]).toMatchObject({ exitCode: null, signal: 'SIGABRT' });
    }
    if (model === 'prethread') {
      // The crashed pool thread was replaced (and joined by its replacement): the pool never shrinks.
      // (+ the server thread and the thread that drains its events)
      await waitFor(() => snapshot().tasks === before.tasks + 2 + SUITE_WORKERS.prethread!, 3000, 'the pool at full size');
    }
    // maxClients is 1: the crashed connection's place was freed.
    expect((await exchange(port(server), Buffer.from('next'))).toString()).toBe('next');
    await server.close();
    server = undefined;
    await sleep(20);
    expect(snapshot().tasks).toBe(before.tasks);
  });
});

/** utime + stime of a process and all its descendants, in clock ticks (1/100 s). */
function treeCpu(root: number): number {
  let ticks = 0;
  for (const pid of [root, ...childrenOf(root).flatMap((c) => [c.pid, ...childrenOf(c.pid).map((g) => g.pid)])]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

// thread: the server thread's blocking accept loop; reuseport: a worker's epoll loop (one worker,
// so that it holds every client), which must neither spin nor wait for a client that is not there;
// epoll: the same in Node's process; uring: its multishot accept ends with EMFILE, refused with the
// reserve, and waits for a pending client before it is armed again; prethread 'main': the server
// thread accepts for the pool (with a thread for every client the descriptors allow).
describe.each([
  ['thread', {}],
  ['reuseport', {}],
  ['epoll', {}],
  ['uring', {}],
  ['prethread', { acceptLock: 'main', workers: 64 }],
] as Array<[Model, object]>)('descriptor exhaustion (EMFILE): %s', (model, extra) => {
  test('a server under a lowered RLIMIT_NOFILE refuses with its reserve fd, does not spin, recovers', async () => {
    const script = join(__dirname, 'fixtures', 'limited-fds-server.js');
    // util-linux's prlimit sets the limit and execs Node, as `ulimit -n 64 && exec` in a shell
    // would; not a shell, because npm run test:tsan preloads g++'s ThreadSanitizer runtime into
    // every process, and bash and dash crash at start with it (its __sigsetjmp interceptor).
    const args = [process.execPath, script, model, JSON.stringify(extra)];
    const child = spawn('prlimit', ['--nofile=64', '--', ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
    });
    const clients: Client[] = [];
    try {
      await waitFor(() => lines.length >= 1, 10000, 'server start');
      const { port: p, pid } = lines[0] as { port: number; pid: number };
      // Open connections until the server runs out of descriptors and refuses (bounded: 80).
      for (let i = 0; i < 80 && !lines.some((l) => 'reject' in l); i++) {
        const c = await Client.open(p);
        clients.push(c);
        await sleep(2);
      }
      await waitFor(() => lines.some((l) => 'reject' in l), 5000, 'a refusal');
      const rejects = lines.filter((l) => 'reject' in l);
      expect(rejects.every((r) => r.reject === 'no-fd' && r.errno === 'EMFILE')).toBe(true);
      // A refused client sees its connection closed, not a hang.
      const refused = await Client.open(p);
      await refused.closedByPeer(3000);

      // No spinning while exhausted: the server's processes use (almost) no CPU over half a second.
      const c0 = treeCpu(pid);
      await sleep(500);
      expect(treeCpu(pid) - c0).toBeLessThan(10);

      // Recovery: free descriptors, and new clients are served again.
      for (const c of clients.splice(0, 10)) c.destroy();
      await sleep(100);
      expect((await exchange(p, Buffer.from('recovered'))).toString()).toBe('recovered');
      child.stdin.write('stats\n');
      await waitFor(() => lines.some((l) => 'stats' in l), 5000, 'stats');
      const stats = (lines.find((l) => 'stats' in l) as { stats: Record<string, number> }).stats;
      expect(stats.refusedNoFd).toBeGreaterThanOrEqual(2); // the first refusal and `refused`
      // Every refusal is reported once: as many reject events as the counter says (events reach
      // listeners a few ms after the fact, so wait for the last ones).
      const rejectLines = () => lines.filter((l) => 'reject' in l);
      await waitFor(() => rejectLines().length >= stats.refusedNoFd, 2000, 'a reject event per refusal');
      expect(rejectLines().length).toBe(stats.refusedNoFd);
      expect(rejectLines().every((r) => r.reject === 'no-fd' && r.errno === 'EMFILE')).toBe(true);
    } finally {
      for (const c of clients) c.destroy();
      child.stdin.end();
      // Wait for its exit, at most 3 s, and leave no timer behind (jest would wait for it).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      child.kill('SIGKILL');
    }
  });
});
