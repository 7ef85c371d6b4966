// The picture of a trace: parsed back as XML, its lanes and marks checked against the trace they
// were drawn from — one lane per process or thread, every record a mark on the lane of whoever
// made the call, fork/pthread_create branching, SIGCHLD and waitpid ending a child, zombies drawn.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { startServer, type ServerOptions } from '../lib';
import { Recorder, type RecordedServer } from '../lib/trace/recording';
import { renderSvg } from '../lib/trace/svg';
import { Client, exchange, waitFor } from './helpers';

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');

function parse(svg: string) {
  const errors: string[] = [];
  const doc = new DOMParser({ onError: (level, msg) => errors.push(`${level}: ${msg}`) }).parseFromString(svg, 'image/svg+xml');
  expect(errors).toEqual([]);
  const root = doc.documentElement!;
  expect(root.tagName).toBe('svg');
  const all = (tag: string, cls: string, within: Element = root): Element[] =>
    Array.from(within.getElementsByTagName(tag)).filter((e) => (e.getAttribute('class') ?? '').split(' ').includes(cls));
  return { root, all };
}

const data = (e: Element, name: string) => e.getAttribute(`data-${name}`);

/** Runs a server under a recorder, lets `drive` use it, closes it; returns the recording. */
async function record(options: ServerOptions, drive: (port: number) => Promise<void>, keepOpen = false) {
  const recorder = new Recorder();
  const server = await startServer({
    ...options,
    trace: options.model === 'node' || options.model === 'cluster' ? undefined : true,
  });
  const rec = recorder.attach(server, options);
  await drive(server.address()!.port);
  if (!keepOpen) await server.close({ timeoutMs: 0 });
  return { rec, server, recorder };
}

function diagramOf(svg: string) {
  const { root, all } = parse(svg);
  const diagram = all('g', 'diagram')[0];
  return {
    root,
    diagram,
    lanes: all('g', 'lane', diagram),
    marks: all('g', 'mark', diagram),
    branches: all('path', 'branch', diagram),
    signals: all('path', 'signal', diagram),
    zombies: all('line', 'zombie', diagram),
    all,
  };
}

describe('svg: the fork model', () => {
  let rec: RecordedServer;
  let svg: string;
  beforeAll(async () => {
    ({ rec } = await record({ model: 'fork' }, async (port) => {
      for (let i = 0; i < 3; i++) await exchange(port, `hello ${i}\n`);
    }));
    svg = renderSvg([rec], 'en');
  });

  test('one lane for Node, one for the master, one per forked child, each child branching off the master', () => {
    const { lanes, branches, diagram } = diagramOf(svg);
    expect(data(diagram, 'model')).toBe('fork');
    expect(Number(data(diagram, 'pid'))).toBe(rec.pid);
    const forks = rec.trace.filter((e) => e.call === 'fork');
    expect(forks).toHaveLength(3);
    const byKind = (k: string) => lanes.filter((l) => data(l, 'kind') === k);
    expect(byKind('node').map((l) => Number(data(l, 'pid')))).toEqual([process.pid]);
    expect(byKind('master').map((l) => Number(data(l, 'pid')))).toEqual([rec.pid]);
    const children = byKind('child');
    expect(children.map((l) => Number(data(l, 'pid'))).sort()).toEqual(forks.map((f) => f.result).sort());
    for (const f of forks) {
      const lane = children.find((l) => Number(data(l, 'pid')) === f.result)!;
      expect(data(lane, 'parent')).toBe('master');
      expect(Number(data(lane, 'connection'))).toBe(f.id);
      expect(data(lane, 'end')).toBe('reaped');
      // exited before it was reaped; the branch leaves the master at the fork
      expect(Number(data(lane, 'exit-row'))).toBeLessThan(Number(data(lane, 'reaped-row')));
      expect(
        branches.filter(
          (b) => data(b, 'to') === `child:${f.result}` && data(b, 'from') === 'master' && data(b, 'call') === 'fork',
        ),
      ).toHaveLength(1);
    }
    expect(branches.filter((b) => data(b, 'to') === 'master' && data(b, 'call') === 'exec')).toHaveLength(1);
  });

  test('every trace record is one mark, on the lane of the process that made the call', () => {
    const { marks } = diagramOf(svg);
    const calls = marks.filter((m) => data(m, 'call') !== null);
    expect(calls).toHaveLength(rec.trace.length);
    const laneOfPid = (pid: number) => (pid === process.pid ? 'node' : pid === rec.pid ? 'master' : `child:${pid}`);
    const sorted = [...rec.trace].sort((a, b) => a.timeMs - b.timeMs);
    for (const e of sorted) {
      const m = calls.find(
        (x) =>
          data(x, 'call') === e.call &&
          Number(data(x, 'pid')) === e.pid &&
          Number(data(x, 'time-ms')) === Number(e.timeMs.toFixed(3)),
      );
      expect(m).toBeDefined();
      expect(data(m!, 'lane')).toBe(laneOfPid(e.pid));
    }
    // rows are in time order
    const times = marks.map((m) => Number(data(m, 'time-ms')));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  test('each waitpid follows a SIGCHLD from the child it reaps (the handler), and accept/close/EINTR are marks', () => {
    const { marks, signals } = diagramOf(svg);
    const waits = rec.trace.filter((e) => e.call === 'waitpid');
    expect(waits).toHaveLength(3);
    const sig = marks.filter((m) => data(m, 'kind') === 'sigchld');
    expect(sig.map((m) => data(m, 'target')).sort()).toEqual(waits.map((w) => `child:${w.result}`).sort());
    expect(signals).toHaveLength(3);
    for (const s of sig) {
      const w = marks.find((m) => data(m, 'call') === 'waitpid' && `child:${data(m, 'result')}` === data(s, 'target'))!;
      expect(Number(data(w, 'row'))).toBe(Number(data(s, 'row')) + 1);
      expect(data(s, 'lane')).toBe('master');
    }
    expect(marks.filter((m) => data(m, 'kind') === 'accept')).toHaveLength(3);
    expect(marks.filter((m) => data(m, 'kind') === 'eintr')).toHaveLength(
      rec.trace.filter((e) => e.call === 'accept-eintr').length,
    );
    expect(marks.filter((m) => data(m, 'call') === 'close-cfd').map((m) => data(m, 'lane'))).toEqual([
      'master',
      'master',
      'master',
    ]);
  });
});

describe("svg: zombies (reap: 'none')", () => {
  test('a child that exited and was not reaped is drawn dead but not gone; after close() it is reaped', async () => {
    const { rec, server } = await record(
      { model: 'fork', reap: 'none' },
      async (port) => {
        for (let i = 0; i < 2; i++) await exchange(port, `z${i}\n`);
      },
      true,
    );
    await waitFor(() => rec.trace.filter((e) => e.call === 'child-exit').length >= 2, 2000, 'both children to exit');
    const live = diagramOf(renderSvg([rec], 'en'));
    expect(data(live.diagram, 'reap')).toBe('none');
    const kids = live.lanes.filter((l) => data(l, 'kind') === 'child');
    expect(kids.map((l) => data(l, 'end'))).toEqual(['zombie', 'zombie']);
    expect(live.zombies).toHaveLength(2);
    expect(live.all('text', 'zombie', live.diagram)).toHaveLength(2); // "Z (not reaped)"
    expect(live.marks.filter((m) => data(m, 'kind') === 'sigchld')).toHaveLength(0); // nobody listens for it

    await server.close({ timeoutMs: 0 });
    const after = diagramOf(renderSvg([rec], 'en'));
    const reaped = after.lanes.filter((l) => data(l, 'kind') === 'child');
    expect(reaped.map((l) => data(l, 'end'))).toEqual(['reaped', 'reaped']);
    // Reaped only at close, after the listening socket was closed: the zombie stretch spans the rest.
    const closeLfd = after.marks.find((m) => data(m, 'call') === 'close-lfd' && data(m, 'lane') === 'master')!;
    for (const l of reaped) expect(Number(data(l, 'reaped-row'))).toBeGreaterThan(Number(data(closeLfd, 'row')));
    expect(after.zombies).toHaveLength(2);
    expect(after.marks.filter((m) => data(m, 'kind') === 'sigchld')).toHaveLength(0);
  });
});

describe('svg: the thread model', () => {
  test('a server-thread lane, a worker lane per pthread_create, ending at its close; the &cfd race is marked', async () => {
    const { rec } = await record({ model: 'thread', threadArg: 'shared-cfd', labHoldMs: 200 }, async (port) => {
      const a = await Client.open(port);
      const b = await Client.open(port);
      await b.echo('b\n');
      a.destroy();
      b.destroy();
    });
    const d = diagramOf(renderSvg([rec], 'zh'));
    expect(data(d.root, 'lang')).toBe('zh');
    expect(data(d.diagram, 'thread-arg')).toBe('shared-cfd');
    const creates = rec.trace.filter((e) => e.call === 'pthread_create');
    const starts = rec.trace.filter((e) => e.call === 'worker-start');
    expect(creates).toHaveLength(2);
    const workers = d.lanes.filter((l) => data(l, 'kind') === 'worker');
    expect(workers.map((l) => Number(data(l, 'connection'))).sort()).toEqual(creates.map((c) => c.id).sort());
    for (const w of workers) {
      const start = starts.find((s) => s.id === Number(data(w, 'connection')))!;
      expect(Number(data(w, 'tid'))).toBe(start.result);
      expect(data(w, 'parent')).toBe('server-thread');
      expect(data(w, 'end')).toBe('exited');
    }
    expect(d.lanes.filter((l) => data(l, 'kind') === 'server-thread')).toHaveLength(1);
    // Both workers read the second cfd: the first worker's mark is the wrong one.
    const accepts = rec.trace.filter((e) => e.call === 'accept');
    const wrong = d.marks.filter((m) => data(m, 'wrong') === 'true');
    expect(wrong.map((m) => Number(data(m, 'id')))).toEqual([accepts[0].id]);
    expect(Number(data(wrong[0], 'fd'))).toBe(accepts[1].result);
    expect(readText(d.root)).toContain('子线程');
  });
});

describe('svg: the prethread model', () => {
  test('a lane per pool thread, branched from Node at start, joined by the server thread at close; no lane per connection', async () => {
    const { rec } = await record({ model: 'prethread', workers: 2 }, async (port) => {
      await exchange(port, 'a');
      await exchange(port, 'b');
    });
    const d = diagramOf(renderSvg([rec], 'en'));
    const pool = d.lanes.filter((l) => data(l, 'kind') === 'pool-thread');
    expect(pool.map((l) => Number(data(l, 'worker'))).sort()).toEqual([0, 1]);
    for (const l of pool) {
      expect(data(l, 'parent')).toBe('node');
      expect(data(l, 'end')).toBe('exited');
      expect(Number(data(l, 'tid'))).toBeGreaterThan(0);
    }
    expect(d.lanes.filter((l) => data(l, 'kind') === 'worker')).toEqual([]);
    // Each accept, and each close, is on the lane of the pool thread that made it.
    const accepts = d.marks.filter((m) => data(m, 'call') === 'worker-accept');
    expect(accepts).toHaveLength(2);
    for (const m of accepts) expect(data(m, 'lane')).toBe(`pool:${data(m, 'worker')}`);
    expect(d.marks.filter((m) => data(m, 'call') === 'accept')).toEqual([]); // the server thread accepts nothing
    for (const m of d.marks.filter((x) => data(x, 'call') === 'close-conn')) expect(data(m, 'lane')).toMatch(/^pool:[01]$/);
    const creates = d.marks.filter((m) => data(m, 'call') === 'pthread_create');
    expect(creates.map((m) => data(m, 'lane'))).toEqual(['node', 'node']);
    const joins = d.marks.filter((m) => data(m, 'call') === 'pthread_join');
    expect(joins.map((m) => data(m, 'lane'))).toEqual(['server-thread', 'server-thread']);
  });
});

describe('svg: the epoll model', () => {
  test('one server thread does it all; the epoll set is made on Node’s thread before it', async () => {
    const { rec } = await record({ model: 'epoll' }, async (port) => {
      await exchange(port, 'a');
      await exchange(port, 'b');
    });
    const d = diagramOf(renderSvg([rec], 'en'));
    expect(d.lanes.map((l) => data(l, 'kind')).sort()).toEqual(['node', 'server-thread']);
    const laneOf = (call: string) => [...new Set(d.marks.filter((m) => data(m, 'call') === call).map((m) => data(m, 'lane')))];
    expect(laneOf('epoll_create')).toEqual(['node']);
    for (const call of ['accept', 'epoll_wait', 'close-conn']) expect(laneOf(call)).toEqual(['server-thread']);
  });
});

describe('svg: the uring model', () => {
  test('one server thread does it all; the ring and its buffers are made on Node’s thread before it', async () => {
    const { rec } = await record({ model: 'uring' }, async (port) => {
      await exchange(port, 'a');
      await exchange(port, 'b');
    });
    const d = diagramOf(renderSvg([rec], 'en'));
    expect(d.lanes.map((l) => data(l, 'kind')).sort()).toEqual(['node', 'server-thread']);
    const laneOf = (call: string) => [...new Set(d.marks.filter((m) => data(m, 'call') === call).map((m) => data(m, 'lane')))];
    expect(laneOf('io_uring_setup')).toEqual(['node']);
    // The buffer ring on Node's thread; the ring enabled by the server thread, its one submitter.
    expect(laneOf('io_uring_register').sort()).toEqual(['node', 'server-thread']);
    for (const call of ['accept', 'io_uring_enter', 'uring-arm', 'uring-cqe', 'close-conn']) {
      expect(laneOf(call)).toEqual(['server-thread']);
    }
  });
});

describe('svg: a model without a trace (node)', () => {
  test('connections and disconnects are marks on Node’s lane', async () => {
    const { rec } = await record({ model: 'node' }, async (port) => {
      await exchange(port, 'x');
      await exchange(port, 'y');
    });
    const d = diagramOf(renderSvg([rec], 'en'));
    expect(d.lanes.map((l) => data(l, 'kind'))).toEqual(['node']);
    expect(d.marks.filter((m) => data(m, 'event') === 'connection')).toHaveLength(2);
    expect(d.marks.filter((m) => data(m, 'event') === 'disconnect')).toHaveLength(2);
  });
});

function readText(e: Element): string {
  return e.textContent ?? '';
}

describe('svg from the command line', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'ps-svg-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function cli(args: string[]) {
    const child = spawn(process.execPath, [CLI, ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    return { child, exit, out: () => out, err: () => err };
  }

  test('lab zombies --svg: one diagram per server the lab ran, zombies in the first', async () => {
    const file = join(dir, 'zombies.svg');
    const r = cli(['lab', 'zombies', '--svg', file]);
    expect(await r.exit).toBe(0);
    expect(r.out()).toContain(`picture of the trace: ${file}`);
    const { all } = parse(readFileSync(file, 'utf8'));
    const diagrams = all('g', 'diagram');
    expect(diagrams.map((g) => data(g, 'reap'))).toEqual(['none', 'sigchld']);
    expect(all('line', 'zombie', diagrams[0]).length).toBe(3);
    expect(all('g', 'mark', diagrams[0]).filter((m) => data(m, 'kind') === 'sigchld')).toHaveLength(0);
    expect(all('g', 'mark', diagrams[1]).filter((m) => data(m, 'kind') === 'sigchld')).toHaveLength(3);
  });

  test('serve --trace --svg: written at close, with the clients that came', async () => {
    const file = join(dir, 'serve.svg');
    const r = cli(['serve', '--model', 'fork', '--port', '0', '--json', '--trace', '--svg', file]);
    await waitFor(() => r.out().includes('\n'), 10000, 'the listening line');
    const port = JSON.parse(r.out().split('\n')[0]).port;
    await exchange(port, 'one');
    await exchange(port, 'two');
    await waitFor(() => (r.out().match(/"event":"reap"/g) ?? []).length === 2, 5000, 'two reaps');
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    expect(r.out()).toContain(JSON.stringify({ event: 'svg', file }));
    const { all } = parse(readFileSync(file, 'utf8'));
    const lanes = all('g', 'lane');
    expect(lanes.filter((l) => data(l, 'kind') === 'child').map((l) => data(l, 'end'))).toEqual(['reaped', 'reaped']);
  });

  test('a lab whose servers are C programs says there is nothing to draw; a bad --svg path fails at once', async () => {
    const file = join(dir, 'mmap.svg');
    const r = cli(['lab', 'mmap', '--svg', file]);
    expect(await r.exit).toBe(0);
    const { root, all } = parse(readFileSync(file, 'utf8'));
    expect(data(root, 'servers')).toBe('0');
    expect(all('text', 'empty')[0].textContent).toMatch(/C programs of their own/);
    const bad = cli(['lab', 'zombies', '--svg', join(dir, 'no-such-dir', 'x.svg')]);
    expect(await bad.exit).toBe(1);
    expect(bad.err()).toMatch(/--svg: cannot write .*does not exist/);
    const bad2 = cli(['serve', '--svg', dir]);
    expect(await bad2.exit).toBe(1);
    expect(bad2.err()).toMatch(/is a folder/);
  });
});
