// posix-servers held against inetd's peers, programs nobody here wrote — xinetd 2.3.15, djb's
// tcpserver (Debian's ucspi-tcp 0.88) and socat — on the same inputs, real processes and sockets:
//   - maxClients: what the next client meets while the server is full. xinetd's `instances`
//     refuses it at once (accepted and closed); `tcpserver -c` and socat's `max-children` stop
//     accepting, and it waits in the listen backlog until a connection ends. whenFull 'refuse'
//     (the default) is the first, whenFull 'wait' the second — in every model that can wait.
//   - the environment: tcpserver removes TCPREMOTEHOST and TCPREMOTEINFO when it has not looked
//     them up (-H, -R), as the exec handler always does.
// A peer that is not installed skips its test, except on CI (.ci/run installs them): there it fails.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Model, PosixServer, RejectEvent, ServerOptions, startServer } from '../lib';
import { Client, ServerProcessMark, exchange, listenQueue, port, waitFor } from './helpers';

const PACKAGES: Record<string, string> = { xinetd: 'xinetd', tcpserver: 'ucspi-tcp', socat: 'socat' };

function installed(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** A test against `tool`: skipped where it is not installed, but not on CI, which must have it. */
function peerTest(tool: string, name: string, fn: () => Promise<void>): void {
  const run = installed(tool) || process.env.CI ? test : test.skip;
  run(`${name} (${tool})`, async () => {
    if (!installed(tool)) throw new Error(`${tool} is not installed: apt-get install ${PACKAGES[tool]} (.ci/run does)`);
    await fn();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return p;
}

interface Peer {
  port: number;
  stop(): Promise<void>;
}

/** Starts a peer server on `port`, resolving once `ready()` says it listens (it reads the peer's output). */
async function startPeer(
  port: number,
  command: string,
  args: string[],
  ready: (stderr: string) => boolean,
  cleanup = () => {},
): Promise<Peer> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    cleanup();
  };
  try {
    await waitFor(() => ready(stderr) || child.exitCode !== null, 5000, `${command} to listen`);
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}: ${stderr}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, stop };
}

async function tcpserver(port: number, options: string[], program: string[]): Promise<Peer> {
  return startPeer(port, 'tcpserver', ['-v', ...options, '127.0.0.1', String(port), ...program], (s) =>
    s.includes('tcpserver: status: 0/'),
  );
}

async function socat(port: number, options: string, program: string): Promise<Peer> {
  const listen = `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork${options}`;
  return startPeer(port, 'socat', ['-d', '-d', listen, `EXEC:${program}`], (s) => s.includes('listening on'));
}

/**
 * xinetd on a loopback port, in the foreground, as this user: no privilege is needed for that when
 * the service's `user` is the user running it and it logs to a file (the benchmark's way too).
 */
async function xinetd(port: number, service: string[]): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'posix-servers-xinetd-'));
  const conf = join(dir, 'xinetd.conf');
  const log = join(dir, 'log');
  writeFileSync(
    conf,
    [
      'defaults',
      '{',
      '  log_on_success =',
      '  log_on_failure =',
      '  cps = 1000000 1',
      '}',
      'service posix-servers-peer',
      '{',
      '  type = UNLISTED',
      '  socket_type = stream',
      '  protocol = tcp',
      '  wait = no',
      `  port = ${port}`,
      '  bind = 127.0.0.1',
      `  user = ${userInfo().username}`,
      ...service.map((line) => `  ${line}`),
      '}',
      '',
    ].join('\n'),
  );
  const started = () => {
    try {
      return readFileSync(log, 'utf8').includes('Started working');
    } catch {
      return false;
    }
  };
  return startPeer(port, 'xinetd', ['-dontfork', '-f', conf, '-pidfile', join(dir, 'pid'), '-filelog', log], started, () =>
    rmSync(dir, { recursive: true, force: true }),
  );
}

/** Connections in the accept queues of the port's listeners. */
const backlog = (p: number): number => listenQueue(p).queued;

/**
 * One client is served (an echo: /bin/cat, or the echo handler); a second one connects — its
 * connect() succeeds either way, the kernel does the handshake — and sends a line. 'refuse': it
 * is closed at once, unanswered. 'wait': it sits in the listen backlog, unanswered and open,
 * until the first leaves; then it is served.
 */
async function secondClient(p: number, expected: 'refuse' | 'wait'): Promise<void> {
  const first = await Client.open(p);
  expect((await first.echo('first\n')).toString()).toBe('first\n');
  const second = await Client.open(p);
  try {
    second.sock.write('second\n');
    if (expected === 'refuse') {
      await second.closedByPeer(5000);
      expect(second.received).toBe(0);
      expect((await first.echo('still served\n')).toString()).toBe('still served\n');
      return;
    }
    await waitFor(() => backlog(p) === 1, 5000, 'the second client in the listen backlog');
    expect(await second.silentFor(300)).toBe(true); // not accepted, not refused: waiting
    expect(backlog(p)).toBe(1);
    first.end();
    await first.closedByPeer(5000);
    expect((await second.read('second\n'.length, 5000)).toString()).toBe('second\n');
    expect(backlog(p)).toBe(0);
  } finally {
    first.destroy();
    second.destroy();
  }
}

describe('the peers, full: the next client', () => {
  let mark: ServerProcessMark;
  let peer: Peer | undefined;
  beforeEach(() => {
    mark = new ServerProcessMark();
  });
  afterEach(async () => {
    try {
      await peer?.stop();
      peer = undefined;
      await mark.expectNoneLeft(5000);
    } finally {
      mark.dispose();
    }
  });

  peerTest('xinetd', '`instances = 1` refuses it at once: accepted and closed', async () => {
    peer = await xinetd(await freePort(), ['server = /bin/cat', 'instances = 1']);
    await secondClient(peer.port, 'refuse');
  });

  peerTest('tcpserver', '`-c 1` lets it wait in the listen backlog until a connection ends', async () => {
    peer = await tcpserver(await freePort(), ['-c', '1', '-H', '-R', '-l0'], ['/bin/cat']);
    await secondClient(peer.port, 'wait');
  });

  peerTest('socat', '`max-children=1` lets it wait in the listen backlog until a connection ends', async () => {
    peer = await socat(await freePort(), ',max-children=1', '/bin/cat');
    await secondClient(peer.port, 'wait');
  });
});

// Every model where it makes sense; a pool has more members than maxClients, so that the limit and
// not the pool's size is what the second client meets.
const WHEN_FULL_CASES: Array<[string, Model, Omit<ServerOptions, 'model'>]> = [
  ['fork', 'fork', {}],
  ['fork, exec /bin/cat', 'fork', { handler: { exec: ['/bin/cat'] } }],
  ['thread', 'thread', {}],
  ['prefork', 'prefork', { workers: 3 }],
  ['prefork flock', 'prefork', { workers: 3, acceptLock: 'flock' }],
  ['prefork mutex', 'prefork', { workers: 3, acceptLock: 'mutex' }],
  ['prefork pass', 'prefork', { workers: 3, acceptLock: 'pass' }],
  ['prefork, exec /bin/cat', 'prefork', { workers: 3, handler: { exec: ['/bin/cat'] } }],
  ['reuseport', 'reuseport', { workers: 3 }],
  ['prethread', 'prethread', { workers: 3 }],
  ['prethread main', 'prethread', { workers: 3, acceptLock: 'main' }],
  ['epoll', 'epoll', {}],
  ['uring', 'uring', {}],
  ['uring, single-shot receives', 'uring', { uringReceive: 'single' }],
];

describe.each(WHEN_FULL_CASES)('%s, maxClients 1: the next client', (_label, model, extra) => {
  let server: PosixServer | undefined;
  let mark: ServerProcessMark;
  beforeEach(() => {
    mark = new ServerProcessMark();
  });
  afterEach(async () => {
    try {
      if (server !== undefined) mark.scan(server);
      await server?.close({ timeoutMs: 0 });
      server = undefined;
      await mark.expectNoneLeft();
    } finally {
      mark.dispose();
    }
  });

  test("whenFull 'refuse' (the default) refuses it at once, as xinetd's instances", async () => {
    server = await startServer({ model, maxClients: 1, ...extra });
    const rejects: RejectEvent[] = [];
    server.on('reject', (r) => rejects.push(r));
    await secondClient(port(server), 'refuse');
    await waitFor(() => rejects.length === 1, 5000, 'the reject event');
    expect(rejects[0]).toMatchObject({ id: 2, reason: 'max-clients' });
    expect(server.stats()).toMatchObject({ accepted: 2, rejected: 1 });
  });

  test("whenFull 'wait' leaves it in the listen backlog until a connection ends, as tcpserver -c and socat max-children", async () => {
    server = await startServer({ model, maxClients: 1, whenFull: 'wait', ...extra });
    const connections: number[] = [];
    server.on('connection', (c) => connections.push(c.id));
    const p = port(server);
    const first = await Client.open(p);
    expect((await first.echo('first\n')).toString()).toBe('first\n');
    await waitFor(() => connections.length === 1, 5000, 'the first connection');
    const second = await Client.open(p);
    second.sock.write('second\n');
    await waitFor(() => backlog(p) === 1, 5000, 'the second client in the listen backlog');
    expect(await second.silentFor(300)).toBe(true);
    // Not accepted at all: the server's books have not seen it.
    expect(server.stats()).toMatchObject({ accepted: 1, active: 1, rejected: 0 });
    expect(connections).toEqual([1]);
    first.end();
    await first.closedByPeer(5000);
    expect((await second.read('second\n'.length, 5000)).toString()).toBe('second\n');
    await waitFor(() => connections.length === 2, 5000, 'the second connection event'); // events come up to 10 ms later
    expect(connections).toEqual([1, 2]);
    expect(server.stats()).toMatchObject({ accepted: 2, rejected: 0 });
    second.destroy();
    first.destroy();
  });

  test("whenFull 'wait': close() of a full server stops listening at once, lets the live connection finish, refuses nobody", async () => {
    server = await startServer({ model, maxClients: 1, whenFull: 'wait', ...extra });
    const p = port(server);
    const first = await Client.open(p);
    expect((await first.echo('first\n')).toString()).toBe('first\n');
    const second = await Client.open(p);
    await waitFor(() => backlog(p) === 1, 5000, 'the second client in the listen backlog');
    const rejects: RejectEvent[] = [];
    server.on('reject', (r) => rejects.push(r));
    const closing = server.close({ timeoutMs: 5000 });
    // The listener goes at once (the waiting client with it: reset, never accepted) ...
    await waitFor(() => listenQueue(p).listeners === 0, 3000, 'the listener to be closed');
    await second.closedByPeer(5000);
    // ... while the live connection goes on until its client ends it.
    expect((await first.echo('still here\n')).toString()).toBe('still here\n');
    first.end();
    await closing;
    const stats = server.stats();
    server = undefined;
    await first.closedByPeer(5000);
    expect(rejects).toEqual([]);
    expect(stats).toMatchObject({ accepted: 1, rejected: 0, active: 0, closed: 1 });
    first.destroy();
    second.destroy();
  });
});

describe('the environment against tcpserver', () => {
  let mark: ServerProcessMark;
  beforeEach(() => {
    mark = new ServerProcessMark();
  });
  afterEach(() => mark.dispose());

  peerTest(
    'tcpserver',
    'a stale TCPREMOTEHOST and TCPREMOTEINFO in the environment are removed, not passed on, as tcpserver -H -R does',
    async () => {
      const stale = { TCPREMOTEHOST: 'trusted.example', TCPREMOTEINFO: 'root', TCPLOCALHOST: 'mail.example' };
      const program = ['/bin/sh', '-c', 'env | grep -E "^(PROTO|TCP)" | sort'];
      const asVariables = (text: string) =>
        Object.fromEntries(
          text
            .trim()
            .split('\n')
            .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
        );
      // tcpserver, with the same stale variables in its own environment. -H, -R: no DNS, no ident
      // (this server does neither); -l0 names the local host "0" (tcpserver would ask DNS otherwise).
      const peerPort = await freePort();
      Object.assign(process.env, stale);
      let peer: Peer;
      try {
        peer = await tcpserver(peerPort, ['-H', '-R', '-l0'], program);
      } finally {
        for (const name of Object.keys(stale)) delete process.env[name];
      }
      let theirs: Record<string, string>;
      try {
        theirs = asVariables((await exchange(peerPort, '')).toString());
      } finally {
        await peer.stop();
      }
      const server = await startServer({ model: 'fork', handler: { exec: program, env: { ...stale, ...mark.env } } });
      const ourPort = port(server);
      const ours = asVariables((await exchange(ourPort, '')).toString());
      await server.close();
      // What tcpserver did not look up, it removed; what it knows (the local name it was given), it set.
      expect(theirs).not.toHaveProperty('TCPREMOTEHOST');
      expect(theirs).not.toHaveProperty('TCPREMOTEINFO');
      expect(theirs.TCPLOCALHOST).toBe('0');
      // This server looks up nothing and is told no name: all three are removed.
      expect(Object.keys(ours)).toEqual(Object.keys(theirs).filter((name) => name !== 'TCPLOCALHOST'));
      expect(ours).toMatchObject({
        PROTO: 'TCP',
        TCPLOCALIP: '127.0.0.1',
        TCPREMOTEIP: '127.0.0.1',
        TCPLOCALPORT: String(ourPort),
      });
      expect(theirs).toMatchObject({
        PROTO: 'TCP',
        TCPLOCALIP: '127.0.0.1',
        TCPREMOTEIP: '127.0.0.1',
        TCPLOCALPORT: String(peerPort),
      });
      await mark.expectNoneLeft(5000);
    },
  );
});
