// formatTrace on real traces: the lines name the real descriptors and pids, and every call reads
// in Chinese without a word of the English notes.
import { readlinkSync } from 'node:fs';
import { AcceptLock, PosixServer, startServer, TRACE_CALLS, TraceEvent } from '../lib';
import {
  decodeWaitStatus,
  uringCompletion,
  uringEnter,
  formatTrace,
  missingNotes,
  TRACE_NOTES,
  traceNote,
} from '../lib/trace/format';
import { Client, ServerProcessMark, exchange, port, waitFor } from './helpers';

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

function collect(s: PosixServer): TraceEvent[] {
  const out: TraceEvent[] = [...s.startupTrace];
  s.on('trace', (t) => out.push(t));
  return out;
}

// What may appear in a Chinese line in Latin letters: syscall and variable names, errno and
// signal names, units. Anything else would be untranslated English.
const LATIN_ALLOWED = new Set([
  'socket',
  'bind',
  'listen',
  'accept',
  'fork',
  'close',
  'exit',
  'waitpid',
  'pthread_create',
  'pthread_detach',
  'shutdown',
  'SHUT_RDWR',
  'pthread_join',
  'read',
  'lfd',
  'cfd',
  'tid',
  'ms',
  'errno',
  'EINTR',
  'SIGCHLD',
  'SIGTERM',
  'SIGKILL',
  'SIGABRT',
  'INFO',
  'maxClients',
  'backlog',
  'IP',
  'ff',
  'core',
  'EAGAIN',
  'EADDRINUSE',
  'master',
  // prethread's queue and the event loop's set.
  'pthread_cond_signal',
  'epoll_create',
  'epfd',
  // Program names: the exec'd master, Node, node-pty, a shell.
  'execve',
  'posix',
  'servers',
  'Node',
  'node',
  'pty',
  'shell',
  // The pool models: their calls, constants and designs, and the book they come from.
  'UNP',
  'prefork',
  'reuseport',
  'mkstemp',
  'unlink',
  'fcntl',
  'F_SETLKW',
  'F_SETLK',
  'F_WRLCK',
  'F_UNLCK',
  'pthread_mutex_lock',
  'pthread_mutex_unlock',
  'pthread_mutex_consistent',
  'accept_mutex',
  'sendmsg',
  'recvmsg',
  'SCM_RIGHTS',
  'Unix',
  'write',
  'send',
  'epoll',
  'epoll_wait',
  'epoll_ctl',
  'EPOLL_CTL_ADD',
  'EPOLL_CTL_MOD',
  'EPOLL_CTL_DEL',
  'SO_REUSEPORT',
  // The exec handler and the door: syscall, option, program and reason names.
  'dup',
  'allow',
  'deny',
  'maxPerSource',
  'maxConnectionsPerSecond',
  'xinetd',
  'only_from',
  'per_source',
  'cps',
  'inetd',
  'tcpserver',
  'pid',
  'usr',
  'bin',
  'cat',
  'per',
  'source',
  'denied',
  'rate',
  // io_uring: its syscalls, flags and opcodes, and the completion's words.
  'io_uring_setup',
  'io_uring_register',
  'io_uring_enter',
  'IORING_REGISTER_PBUF_RING',
  'IORING_REGISTER_ENABLE_RINGS',
  'IORING_OP_ASYNC_CANCEL',
  'CQSIZE',
  'R_DISABLED',
  'SUBMIT_ALL',
  'COOP_TASKRUN',
  'SINGLE_ISSUER',
  'DEFER_TASKRUN',
  'multishot',
  'accept',
  'recv',
  'cancel',
  'more',
  'poll',
  'revents',
]);

function untranslated(zhLine: string): string[] {
  return (zhLine.match(/[A-Za-z_]{2,}/g) ?? []).filter((w) => !LATIN_ALLOWED.has(w) && !/^(SIG|E)[A-Z]+$/.test(w));
}

function checkBilingual(e: TraceEvent, t0: number, ctx = {}): void {
  const en = formatTrace(e, t0, 'en', ctx);
  const zh = formatTrace(e, t0, 'zh', ctx);
  expect(zh).not.toBe(en);
  expect(zh).not.toContain(traceNote(e, 'en', ctx));
  for (const note of Object.values(TRACE_NOTES.en)) expect(zh).not.toContain(note);
  expect({ call: e.call, words: untranslated(zh) }).toEqual({ call: e.call, words: [] });
}

describe('formatTrace on a real fork server', () => {
  test('two clients: socket/bind/listen/accept/fork/close/waitpid lines carry the real fds and pids', async () => {
    server = await startServer({ model: 'fork', trace: true });
    const trace = collect(server);
    const master = server.pid;
    const p = port(server);
    for (const text of ['one', 'two']) await exchange(p, Buffer.from(text));
    await waitFor(() => trace.filter((t) => t.call === 'waitpid').length === 2, 5000, 'two waitpid traces');
    await server.close({ timeoutMs: 0 });
    server = undefined;

    const t0 = trace[0].timeMs;
    const nodeLfd = trace[0].result;
    const exec = trace.find((t) => t.call === 'exec')!;
    const lfd = exec.result; // the same socket, at its number in the exec'd master
    // Formatted in arrival order without any context (as `serve --trace` does), and with it.
    for (const ctx of [{}, { masterPid: master }]) {
      const lines = trace.map((e) => ({ e, en: formatTrace(e, t0, 'en', ctx) }));
      const of = (call: string) => lines.filter((l) => l.e.call === call);
      expect(of('socket')[0].en).toMatch(
        new RegExp(`^ *\\+0\\.000 ms \\[pid ${process.pid}\\] socket\\(\\) → lfd ${nodeLfd} — `),
      );
      expect(of('bind')[0].en).toContain(`[pid ${process.pid}] bind(${nodeLfd}, 127.0.0.1:${p})`);
      expect(of('listen')[0].en).toContain(`listen(${nodeLfd}, 511)`);
      expect(of('exec')[0].en).toContain(
        `[pid ${master}] execve(posix-servers-master): lfd ${nodeLfd} is fd ${lfd} in the master`,
      );
      const accepts = of('accept');
      const forks = of('fork');
      expect(accepts).toHaveLength(2);
      expect(forks).toHaveLength(2);
      for (const a of accepts) {
        expect(a.en).toContain(`[pid ${master}] accept(${lfd}) → cfd ${a.e.result} from 127.0.0.1:${a.e.address!.port}`);
        const f = forks.find((x) => x.e.id === a.e.id)!;
        const child = f.e.result;
        expect(f.en).toContain(`[pid ${master}] fork() → child ${child} (serves cfd ${a.e.result}`);
        expect(f.en).toContain('parent closes cfd, child closes lfd (lecture point 5)');
        expect(of('close-cfd').find((x) => x.e.id === a.e.id)!.en).toContain(`[pid ${master}] close(${a.e.result}) in parent`);
        expect(of('close-lfd').find((x) => x.e.pid === child)!.en).toContain(`[pid ${child}] close(${lfd}) in child ${child}`);
        expect(of('child-exit').find((x) => x.e.pid === child)!.en).toContain(`exit(0) in child ${child}`);
        expect(of('waitpid').find((x) => x.e.result === child)!.en).toContain(
          `[pid ${master}] waitpid → reaped ${child}, exit 0`,
        );
      }
      // The master's own close(lfd) at stop is not mistaken for a child's.
      const stop = of('close-lfd').find((x) => x.e.pid === master)!;
      expect(stop.en).toContain(`close(${lfd}): listening socket closed`);
      expect(stop.en).not.toContain('in child');
      // Timestamps are relative and never go backwards within one process's calls.
      for (const l of lines) expect(l.en).toMatch(/^ *\+\d+\.\d{3} ms \[pid \d+\] /);
    }
    for (const e of trace) checkBilingual(e, t0);
  });

  test('a child ended at close() is reported as killed by SIGTERM (the raw wait status decoded)', async () => {
    server = await startServer({ model: 'fork', trace: true });
    const trace = collect(server);
    const c = await Client.open(port(server));
    await c.echo('stay');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const w = trace.find((t) => t.call === 'waitpid')!;
    expect(decodeWaitStatus(w.fd)).toEqual({ exitCode: null, signal: 'SIGTERM', coreDumped: false });
    expect(formatTrace(w, 0, 'en')).toContain(`waitpid → reaped ${w.result}, killed by SIGTERM`);
    expect(formatTrace(w, 0, 'zh')).toContain(`waitpid → 回收 ${w.result}，被信号 SIGTERM 终止`);
    c.destroy();
  });
});

describe('formatTrace on a real fork server with the exec handler and the door', () => {
  test('door-refuse, door-pass, dup2 and execve name the address, the reason, the descriptors, the program', async () => {
    const mark = new ServerProcessMark();
    server = await startServer({ model: 'fork', trace: true, handler: { exec: ['cat'] }, deny: ['127.0.0.2'] });
    mark.dispose();
    const trace = collect(server);
    const master = server.pid;
    const refusedClient = await Client.open(port(server), 2000, '127.0.0.1', '127.0.0.2');
    await refusedClient.closedByPeer();
    refusedClient.destroy();
    expect((await exchange(port(server), 'via cat')).toString()).toBe('via cat');
    await waitFor(() => trace.some((t) => t.call === 'waitpid'), 5000, 'the reap');
    mark.scan(server);
    await server.close({ timeoutMs: 0 });
    server = undefined;
    await mark.expectNoneLeft();
    const t0 = trace[0].timeMs;
    const line = (call: string) =>
      formatTrace(
        trace.find((t) => t.call === call)!,
        t0,
        'en',
      );
    const [first, second] = trace.filter((t) => t.call === 'accept');
    expect(line('door-refuse')).toContain(
      `[pid ${master}] door: 127.0.0.2:${refusedClient.localPort} refused (denied) → close(${first.result}), connection #1`,
    );
    expect(line('door-refuse')).toContain('before any fork() or thread');
    expect(line('door-pass')).toContain(`[pid ${master}] door: 127.0.0.1:${second.address!.port} admitted, connection #2`);
    const child = trace.find((t) => t.call === 'fork')!.result;
    expect(line('dup2')).toContain(`[pid ${child}] dup2(${second.result}, 0) in child ${child}, connection #2`);
    expect(line('execve')).toContain(`[pid ${child}] execve(/usr/bin/cat) in child ${child}, connection #2`);
    expect(
      formatTrace(
        trace.find((t) => t.call === 'execve')!,
        t0,
        'zh',
      ),
    ).toContain(`子进程 ${child} execve(/usr/bin/cat)`);
    for (const e of trace) checkBilingual(e, t0);
  });
});

describe('formatTrace on a real thread server', () => {
  test('pthread_create, pthread_detach, worker-start (with the tid), slots-full, close-conn', async () => {
    server = await startServer({ model: 'thread', maxClients: 1, trace: true });
    const trace = collect(server);
    const a = await Client.open(port(server));
    await a.echo('a');
    const b = await Client.open(port(server));
    await b.closedByPeer();
    a.end();
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'close-conn');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const accepts = trace.filter((t) => t.call === 'accept');
    const cfd = accepts[0].result;
    const line = (call: string) =>
      formatTrace(
        trace.find((t) => t.call === call)!,
        t0,
        'en',
      );
    expect(line('pthread_create')).toContain(`[pid ${process.pid}] pthread_create → slot 0 (cfd ${cfd}`);
    expect(line('pthread_detach')).toContain('pthread_detach(slot 0)');
    const start = trace.find((t) => t.call === 'worker-start')!;
    expect(line('worker-start')).toContain(
      `[pid ${process.pid} tid ${start.result}] worker tid ${start.result} in slot 0 reads cfd ${cfd}`,
    );
    expect(line('slots-full')).toContain(`slot table full → close(${accepts[1].result})`);
    expect(line('close-conn')).toContain(`close(${cfd}) in slot 0: connection #1 over`);
    expect(formatTrace(start, t0, 'zh')).toContain(`[进程 ${process.pid} 线程 ${start.result}]`);
    for (const e of trace) checkBilingual(e, t0);
  });
});

describe('formatTrace on a real epoll server', () => {
  test('epoll_create, epoll_ctl(ADD) for lfd and each cfd, epoll_wait with what is ready, close-conn leaves the set', async () => {
    server = await startServer({ model: 'epoll', trace: true });
    const trace = collect(server);
    const p = port(server);
    for (const text of ['one', 'two']) await exchange(p, Buffer.from(text));
    await waitFor(() => trace.filter((t) => t.call === 'close-conn').length === 2, 5000, 'two close-conn traces');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const en = (e: TraceEvent) => formatTrace(e, t0, 'en');
    const create = trace.find((t) => t.call === 'epoll_create')!;
    const epfd = create.result;
    const lfd = trace[0].result;
    expect(en(create)).toContain(`[pid ${process.pid}] epoll_create1() → epfd ${epfd} — ${TRACE_NOTES.en.epoll_create}`);
    const ctls = trace.filter((t) => t.call === 'epoll_ctl');
    expect(en(ctls[0])).toContain(`epoll_ctl(EPOLL_CTL_ADD, ${lfd}, EPOLLIN) — ${TRACE_NOTES.en.epoll_ctl}`);
    const accepts = trace.filter((t) => t.call === 'accept');
    expect(accepts).toHaveLength(2);
    for (const a of accepts) {
      expect(a.worker).toBeUndefined();
      const add = ctls.find((x) => x.id === a.id)!;
      expect(en(add)).toContain(`epoll_ctl(EPOLL_CTL_ADD, ${a.result}, EPOLLIN), connection #${a.id} — `);
      const close = trace.find((x) => x.call === 'close-conn' && x.id === a.id)!;
      expect(close.result).toBe(epfd);
      expect(en(close)).toContain(`close(${a.result}): connection #${a.id} over — ${TRACE_NOTES.en['close-conn:epoll']}`);
    }
    const waits = trace.filter((t) => t.call === 'epoll_wait');
    expect(waits.length).toBeGreaterThanOrEqual(2);
    for (const w of waits) {
      expect(w.result).toBeGreaterThan(0); // a wake-up with nothing ready is not recorded
      expect(en(w)).toContain(`epoll_wait(${epfd}) → ${w.result} ready — ${TRACE_NOTES.en['epoll_wait:thread']}`);
    }
    for (const e of trace) checkBilingual(e, t0);
  });
});

describe('formatTrace on a real uring server', () => {
  test('io_uring_setup and the buffer ring on Node’s thread, the multishot arms, io_uring_enter with its counts, completions, close-conn once the ring holds nothing', async () => {
    server = await startServer({ model: 'uring', trace: true });
    const trace = collect(server);
    const p = port(server);
    for (const text of ['one', 'two']) await exchange(p, Buffer.from(text));
    await waitFor(() => trace.filter((t) => t.call === 'close-conn').length === 2, 5000, 'two close-conn traces');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const en = (e: TraceEvent) => formatTrace(e, t0, 'en');
    const lfd = trace[0].result;
    const setup = trace.find((t) => t.call === 'io_uring_setup')!;
    const ring = setup.result;
    expect(en(setup)).toMatch(
      new RegExp(
        `\\[pid ${process.pid}\\] io_uring_setup\\(CQSIZE\\|R_DISABLED\\|SUBMIT_ALL\\|SINGLE_ISSUER\\|DEFER_TASKRUN\\) → ring ${ring} — `,
      ),
    );
    const registers = trace.filter((t) => t.call === 'io_uring_register').map(en);
    expect(registers[0]).toMatch(new RegExp(`io_uring_register\\(${ring}, IORING_REGISTER_PBUF_RING, \\d+ receive buffers\\)`));
    expect(registers[1]).toContain(`io_uring_register(${ring}, IORING_REGISTER_ENABLE_RINGS)`);
    const arms = trace.filter((t) => t.call === 'uring-arm').map(en);
    expect(arms[0]).toContain(`multishot accept armed on ${lfd} — ${TRACE_NOTES.en['uring-arm']}`);
    const accepts = trace.filter((t) => t.call === 'accept');
    expect(accepts).toHaveLength(2);
    for (const a of accepts) {
      expect(arms).toContainEqual(expect.stringContaining(`multishot receive armed on ${a.result}, connection #${a.id} — `));
      const close = trace.find((x) => x.call === 'close-conn' && x.id === a.id)!;
      expect(close.result).toBe(ring * 2 ** 32);
      expect(en(close)).toContain(`close(${a.result}): connection #${a.id} over — ${TRACE_NOTES.en['close-conn:uring']}`);
      const cqes = trace.filter((x) => x.call === 'uring-cqe' && x.id === a.id).map(en);
      expect(cqes).toContainEqual(
        expect.stringContaining(`completion: recv on ${a.result} → 3 bytes, more, connection #${a.id}`),
      );
      expect(cqes).toContainEqual(expect.stringContaining(`completion: send on ${a.result} → 3 bytes, connection #${a.id}`));
      expect(cqes).toContainEqual(expect.stringContaining(`completion: recv on ${a.result} → 0 bytes, connection #${a.id}`));
    }
    expect(en(trace.find((t) => t.call === 'uring-cqe' && uringCompletion(t).op === 'accept')!)).toContain(
      `completion: accept on ${lfd} → cfd ${accepts[0].result}, more`,
    );
    const enters = trace.filter((t) => t.call === 'io_uring_enter');
    for (const e of enters) {
      const { submitted, completions } = uringEnter(e);
      expect(submitted + completions).toBeGreaterThan(0); // a wake-up with nothing is not recorded
      expect(en(e)).toContain(`io_uring_enter(${ring}) → ${submitted} submitted, ${completions} completions — `);
    }
    // Every completion was reaped after an io_uring_enter that counted it.
    const reaped = enters.reduce((n, e) => n + uringEnter(e).completions, 0);
    expect(reaped).toBe(trace.filter((t) => t.call === 'uring-cqe').length);
    for (const e of trace) checkBilingual(e, t0);
  });

  test('stop: shutdown(lfd) ends the multishot accept with EINVAL, then close(lfd)', async () => {
    server = await startServer({ model: 'uring', trace: true });
    const trace = collect(server);
    await server.close();
    server = undefined;
    // shutdown's record is Node's thread's, written right after the call, which wakes the server
    // thread: the two threads' records may come in either order.
    expect(trace.some((t) => t.call === 'shutdown')).toBe(true);
    const end = trace.findIndex((t) => t.call === 'uring-cqe' && uringCompletion(t).op === 'accept');
    const closed = trace.findIndex((t) => t.call === 'close-lfd');
    expect(end).toBeGreaterThanOrEqual(0);
    expect(uringCompletion(trace[end])).toEqual({ op: 'accept', res: -22, more: false });
    expect(formatTrace(trace[end], 0, 'en')).toContain('completion: accept on');
    expect(formatTrace(trace[end], 0, 'en')).toContain('→ EINVAL');
    expect(closed).toBeGreaterThan(end);
  });
});

describe('formatTrace on a real epoll server: backpressure', () => {
  test('backpressure: a client that does not read turns the interest to EPOLLOUT, and back to EPOLLIN once it reads', async () => {
    server = await startServer({ model: 'epoll', trace: true });
    const trace = collect(server);
    const c = await Client.open(port(server));
    c.sock.pause();
    const payload = Buffer.alloc(8 << 20, 0x61);
    c.sock.write(payload);
    const MOD_OUT = (3 << 16) | 4;
    const MOD_IN = (3 << 16) | 1;
    await waitFor(() => trace.some((t) => t.call === 'epoll_ctl' && t.result === MOD_OUT), 5000, 'EPOLLOUT');
    c.sock.resume();
    expect((await c.read(payload.length, 10000)).equals(payload)).toBe(true);
    await waitFor(() => trace.some((t) => t.call === 'epoll_ctl' && t.result === MOD_IN), 5000, 'EPOLLIN again');
    c.end();
    await c.closedByPeer();
    const out = trace.find((t) => t.call === 'epoll_ctl' && t.result === MOD_OUT)!;
    const back = trace.find((t) => t.call === 'epoll_ctl' && t.result === MOD_IN)!;
    expect(formatTrace(out, 0, 'en')).toContain(`epoll_ctl(EPOLL_CTL_MOD, ${out.fd}, EPOLLOUT), connection #1 — `);
    expect(formatTrace(back, 0, 'en')).toContain(`epoll_ctl(EPOLL_CTL_MOD, ${out.fd}, EPOLLIN), connection #1 — `);
    for (const e of trace) checkBilingual(e, 0);
  });
});

describe('formatTrace on a real prethread server', () => {
  test("acceptLock 'mutex': the pool created once, lock → accept → unlock by one pool thread, joined at close", async () => {
    server = await startServer({ model: 'prethread', workers: 2, trace: true });
    const trace = collect(server);
    await exchange(port(server), Buffer.from('one'));
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'close-conn');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const en = (e: TraceEvent) => formatTrace(e, t0, 'en');
    const creates = trace.filter((t) => t.call === 'pthread_create');
    expect(creates.map((t) => [t.worker, t.result])).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect(en(creates[1])).toContain(
      `[pid ${process.pid}] pthread_create (pool thread 1) — ${TRACE_NOTES.en['pthread_create:pool']}`,
    );
    expect(trace.some((t) => t.call === 'accept')).toBe(false); // only pool threads accept
    const accept = trace.find((t) => t.call === 'worker-accept')!;
    const w = accept.worker!;
    expect([0, 1]).toContain(w);
    expect(en(accept)).toContain(`[pid ${process.pid}] accept(${accept.fd}) → cfd ${accept.result} from 127.0.0.1:`);
    expect(en(accept)).toContain(`connection #1 (pool thread ${w}) — ${TRACE_NOTES.en['worker-accept:thread']}`);
    // The thread took the mutex before its accept and released it right after.
    const lock = trace.filter((t) => t.call === 'mutex-lock' && t.worker === w && t.timeMs <= accept.timeMs).pop()!;
    const unlock = trace.find((t) => t.call === 'mutex-unlock' && t.id === accept.id)!;
    expect(en(lock)).toContain(`pthread_mutex_lock(&accept_mutex) (pool thread ${w}) — ${TRACE_NOTES.en['mutex-lock:thread']}`);
    expect(unlock.worker).toBe(w);
    expect(unlock.timeMs).toBeGreaterThanOrEqual(accept.timeMs);
    expect(en(unlock)).toContain(
      `pthread_mutex_unlock(&accept_mutex) (pool thread ${w}) — ${TRACE_NOTES.en['mutex-unlock:thread']}`,
    );
    expect(en(trace.find((t) => t.call === 'close-conn')!)).toContain(
      `close(${accept.result}): connection #1 over (pool thread ${w}) — ${TRACE_NOTES.en['close-conn:pool']}`,
    );
    // Every lock has its unlock, the first holder's included: its lock is traced right after
    // 'listening', in the same drain, before this test could listen (PosixServer holds it).
    const locks = trace.filter((t) => t.call === 'mutex-lock');
    expect(locks.length).toBeGreaterThanOrEqual(2);
    expect(locks.length).toBe(trace.filter((t) => t.call === 'mutex-unlock').length);
    const joins = trace.filter((t) => t.call === 'pthread_join');
    expect(joins.map((t) => t.worker).sort()).toEqual([0, 1]);
    for (const j of joins) {
      expect(j.result).toBeGreaterThan(0); // the thread's tid
      expect(en(j)).toContain(`pthread_join(tid ${j.result}) (pool thread ${j.worker}) — ${TRACE_NOTES.en.pthread_join}`);
    }
    for (const e of trace) checkBilingual(e, t0);
  });

  test("acceptLock 'main': the server thread accepts and pushes, a pool thread pops", async () => {
    server = await startServer({ model: 'prethread', workers: 2, acceptLock: 'main', trace: true });
    const trace = collect(server);
    await exchange(port(server), Buffer.from('one'));
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'close-conn');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const accept = trace.find((t) => t.call === 'accept')!;
    expect(accept.worker).toBeUndefined(); // the server thread's
    const push = trace.find((t) => t.call === 'queue-push')!;
    const pop = trace.find((t) => t.call === 'queue-pop')!;
    expect(trace.indexOf(push)).toBeLessThan(trace.indexOf(pop));
    expect(formatTrace(push, t0, 'en')).toContain(
      `[pid ${process.pid}] queue ← cfd ${accept.result}, connection #1 (1 waiting), pthread_cond_signal — ${TRACE_NOTES.en['queue-push']}`,
    );
    expect(formatTrace(pop, t0, 'en')).toContain(
      `[pid ${process.pid}] queue → cfd ${accept.result}, connection #1, tid ${pop.result} (pool thread ${pop.worker}) — ${TRACE_NOTES.en['queue-pop']}`,
    );
    expect(trace.some((t) => t.call === 'mutex-lock' || t.call === 'worker-accept')).toBe(false);
    for (const e of trace) checkBilingual(e, t0);
  });
});

describe.each(['none', 'flock', 'mutex', 'pass'] as AcceptLock[])(
  'formatTrace on a real prefork server, acceptLock %s',
  (lock) => {
    test('the pool forked once, each worker named by pid and index, the lock or the passing of descriptors', async () => {
      server = await startServer({ model: 'prefork', workers: 2, acceptLock: lock, trace: true });
      const trace = collect(server);
      const master = server.pid;
      const conns: Array<{ id: number; pid: number; worker: number }> = [];
      server.on('connection', (c) => conns.push({ id: c.id, pid: c.pid!, worker: c.worker! }));
      for (const text of ['one', 'two']) await exchange(port(server), Buffer.from(text));
      await waitFor(() => trace.filter((t) => t.call === 'close-conn').length === 2, 5000, 'two close-conn traces');
      // flock: the lock file has no name any more, while every worker holds it open.
      if (lock === 'flock') {
        const made = trace.find((t) => t.call === 'lock-file')!;
        expect(readlinkSync(`/proc/${master}/fd/${made.fd}`)).toMatch(/^\/.*posix-servers-lock-\w+ \(deleted\)$/);
      }
      await server.close({ timeoutMs: 0 });
      server = undefined;

      const t0 = trace[0].timeMs;
      const ctx = { masterPid: master };
      const lines = trace.map((e) => ({ e, en: formatTrace(e, t0, 'en', ctx) }));
      const of = (call: string) => lines.filter((l) => l.e.call === call);
      // Two workers, forked once: every connection was served by one of them.
      const forks = of('pool-fork');
      expect(forks.map((f) => f.e.worker)).toEqual([0, 1]);
      for (const f of forks) {
        expect(f.en).toContain(`[pid ${master}] fork() → pid ${f.e.result} (worker ${f.e.worker}) — the pool is forked once`);
      }
      for (const c of conns) expect(forks.find((f) => f.e.worker === c.worker)!.e.result).toBe(c.pid);
      expect(of('fork')).toEqual([]); // no fork per connection
      if (lock === 'pass') {
        // The master accepts, passes the descriptor, closes its own; the worker receives it under
        // a number of its own and says when it is idle again.
        for (const c of conns) {
          const accept = of('accept').find((l) => l.e.id === c.id)!;
          expect(accept.e.pid).toBe(master);
          const send = of('sendmsg').find((l) => l.e.id === c.id)!;
          expect(send.en).toContain(
            `[pid ${master}] sendmsg(${send.e.fd}, SCM_RIGHTS cfd ${accept.e.result}), connection #${c.id} (worker ${c.worker})`,
          );
          const recv = of('recvmsg').find((l) => l.e.id === c.id)!;
          expect(recv.en).toContain(`[pid ${c.pid}] recvmsg(`);
          expect(recv.en).toContain(
            `→ cfd ${recv.e.result}, connection #${c.id} (worker ${c.worker}) — the worker receives the descriptor`,
          );
          expect(of('worker-idle').some((l) => l.e.id === c.id && l.e.pid === c.pid)).toBe(true);
        }
      } else {
        for (const c of conns) {
          const accept = of('worker-accept').find((l) => l.e.id === c.id)!;
          expect(accept.en).toContain(`[pid ${c.pid}] accept(${accept.e.fd}) → cfd ${accept.e.result} from 127.0.0.1:`);
          expect(accept.en).toContain(`connection #${c.id} (worker ${c.worker}) — each worker of the pool calls accept() itself`);
        }
        const locks = [...of('fcntl-lock'), ...of('mutex-lock')];
        const unlocks = [...of('fcntl-unlock'), ...of('mutex-unlock')];
        if (lock === 'none') expect(locks.length + unlocks.length).toBe(0);
        else {
          // Each accept is inside its worker's lock: taken before, released after.
          expect(locks.length).toBeGreaterThanOrEqual(2);
          for (const c of conns) {
            const accept = of('worker-accept').find((l) => l.e.id === c.id)!;
            const lockBefore = locks.filter((l) => l.e.pid === c.pid && l.e.timeMs <= accept.e.timeMs);
            const unlockAfter = unlocks.filter((l) => l.e.pid === c.pid && l.e.timeMs >= accept.e.timeMs);
            expect(lockBefore.length).toBeGreaterThan(0);
            expect(unlockAfter.length).toBeGreaterThan(0);
          }
          const call = lock === 'flock' ? 'fcntl(' : 'pthread_mutex_lock(&accept_mutex)';
          for (const l of locks) expect(l.en).toContain(call);
        }
      }
      for (const w of of('waitpid')) expect(w.en).toContain('a pool worker has exited');
      for (const e of trace) checkBilingual(e, t0, ctx);
    });
  },
);

describe('formatTrace on a real reuseport server', () => {
  test("each worker's own socket, bind and listen on Node's address; Node's listener handed over; epoll", async () => {
    server = await startServer({ model: 'reuseport', workers: 2, trace: true });
    const trace = collect(server);
    const master = server.pid;
    const p = port(server);
    for (const text of ['one', 'two', 'three']) await exchange(p, Buffer.from(text));
    await waitFor(() => trace.filter((t) => t.call === 'close-conn').length === 3, 5000, 'three close-conn traces');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    const t0 = trace[0].timeMs;
    const lines = trace.map((e) => ({ e, en: formatTrace(e, t0, 'en') })); // no context: roles from the records
    const of = (call: string) => lines.filter((l) => l.e.call === call);
    const workers = of('pool-fork').map((f) => f.e.result);
    expect(workers).toHaveLength(2);
    const nodeLfd = trace[0].result;
    for (const [i, pid] of workers.entries()) {
      const listen = of('listen').find((l) => l.e.pid === pid)!;
      expect(listen.en).toContain(`[pid ${pid}] listen(${listen.e.fd}, 511) (worker ${i}) — each worker makes its own listener`);
      expect(of('bind').find((l) => l.e.pid === pid)!.en).toContain(`bind(${listen.e.fd}, 127.0.0.1:${p}) (worker ${i})`);
    }
    const handover = of('close-node-lfd')[0];
    expect(handover.en).toContain(`[pid ${master}] close(3): Node's listener, handed over to the workers`);
    expect(nodeLfd).toBeGreaterThan(2);
    // Every connection: accepted by a worker, registered with epoll_ctl, seen by epoll_wait.
    for (const a of of('worker-accept')) {
      expect(workers).toContain(a.e.pid);
      const add = of('epoll_ctl').find((l) => l.e.id === a.e.id)!;
      expect(add.en).toContain(`[pid ${a.e.pid}] epoll_ctl(EPOLL_CTL_ADD, ${a.e.result}, EPOLLIN), connection #${a.e.id}`);
    }
    expect(of('epoll_wait').length).toBeGreaterThanOrEqual(3);
    for (const w of of('epoll_wait'))
      expect(w.en).toMatch(/epoll_wait\(\d+\) → \d+ ready \(worker \d\) — one process, many clients/);
    for (const e of trace) checkBilingual(e, t0);
  });
});

describe('notes', () => {
  test('every call of TRACE_CALLS has a note in both languages, and the Chinese ones are not English', () => {
    expect(missingNotes()).toEqual([]);
    for (const call of TRACE_CALLS) {
      expect(TRACE_NOTES.zh[call]).not.toBe(TRACE_NOTES.en[call]);
      expect(untranslated(TRACE_NOTES.zh[call])).toEqual([]);
    }
  });

  test('every call (and every variant) formats differently in zh, with no English note text', () => {
    const base = { timeMs: 12.5, pid: 4711, fd: 21, result: 0, errno: null, id: 0 };
    const synthetic: TraceEvent[] = [];
    for (const call of TRACE_CALLS) synthetic.push({ ...base, call });
    synthetic.push(
      { ...base, call: 'accept', result: 22, id: 1, address: { address: '127.0.0.1', family: 'IPv4', port: 53422 } },
      { ...base, call: 'accept-eintr', result: -1, errno: 'EINTR' },
      { ...base, call: 'bind', result: -1, errno: 'EADDRINUSE', address: { address: '::1', family: 'IPv6', port: 9000 } },
      { ...base, call: 'shutdown', id: 3, slot: 2 },
      { ...base, call: 'close-conn', pid: process.pid, id: 3, slot: 2 },
      { ...base, call: 'close-conn', pid: process.pid, id: 3 },
      { ...base, call: 'slots-full', pid: process.pid, id: 4 },
      { ...base, call: 'pthread_create', result: 11, errno: 'EAGAIN', slot: 0 },
      { ...base, call: 'waitpid', result: 4712, fd: 0x86 },
      { ...base, call: 'waitpid', result: 4712, fd: 9, worker: 1 },
      { ...base, call: 'mutex-lock', worker: 0, errno: 'EOWNERDEAD' },
      { ...base, call: 'mutex-lock', worker: 0, errno: 'EINVAL' },
      { ...base, call: 'fcntl-lock', worker: 1, errno: 'EDEADLK', result: -1 },
      { ...base, call: 'epoll_ctl', pid: 4713, fd: 9, result: (3 << 16) | 4, id: 2, worker: 1 },
      { ...base, call: 'epoll_ctl', pid: 4713, fd: 9, result: (3 << 16) | 1, id: 2, worker: 1 },
      { ...base, call: 'sendmsg', result: 9, id: 2, worker: 1, errno: 'EPIPE' },
      { ...base, call: 'listen', pid: 4713, result: 128, worker: 1 },
      { ...base, call: 'close-lfd', pid: 4713, worker: 1 },
      { ...base, call: 'close-conn', pid: 4713, id: 2, worker: 1 },
      { ...base, call: 'slots-full', pid: 4713, id: 4, worker: 1 },
      // prethread's pool threads: the same calls, made in Node's own process.
      { ...base, call: 'pthread_create', pid: process.pid, worker: 2 },
      { ...base, call: 'pthread_create', pid: process.pid, result: 11, errno: 'EAGAIN', worker: 2 },
      { ...base, call: 'worker-accept', pid: process.pid, result: 22, id: 1, worker: 3 },
      { ...base, call: 'mutex-lock', pid: process.pid, worker: 1 },
      { ...base, call: 'mutex-unlock', pid: process.pid, id: 1, worker: 1 },
      { ...base, call: 'queue-push', pid: process.pid, result: 2, id: 1 },
      { ...base, call: 'queue-pop', pid: process.pid, result: 4800, id: 1, worker: 0 },
      { ...base, call: 'pthread_join', pid: process.pid, result: 4800, worker: 0 },
      { ...base, call: 'close-conn', pid: process.pid, id: 3, worker: 1 },
      // epoll: the one thread's loop.
      { ...base, call: 'epoll_create', pid: process.pid, result: 9 },
      { ...base, call: 'epoll_create', pid: process.pid, result: -1, errno: 'EMFILE' },
      { ...base, call: 'epoll_wait', pid: process.pid, fd: 9, result: 3 },
      { ...base, call: 'epoll_ctl', pid: process.pid, result: (1 << 16) | 1, id: 5 },
      { ...base, call: 'epoll_ctl', pid: process.pid, result: (3 << 16) | 4, id: 5 },
      { ...base, call: 'close-conn', pid: process.pid, id: 3, result: 9 },
      { ...base, call: 'door-pass', result: 2, id: 5, address: { address: '10.1.2.3', family: 'IPv4', port: 40000 } },
      {
        ...base,
        call: 'door-refuse',
        result: 4,
        reason: 'per-source',
        id: 6,
        address: { address: '::1', family: 'IPv6', port: 1 },
      },
      { ...base, call: 'execve', result: -1, errno: 'ENOENT', program: '/bin/cat', id: 7 },
      { ...base, call: 'dup2', result: 1, id: 7 },
      // uring: the ring, its arms, cancels and completions (the packed results of event_record.h).
      { ...base, call: 'io_uring_setup', pid: process.pid, fd: (1 << 3) | (1 << 7) | (1 << 12) | (1 << 13), result: 9 },
      { ...base, call: 'io_uring_setup', pid: process.pid, fd: -1, result: -1, errno: 'EPERM' },
      { ...base, call: 'io_uring_register', pid: process.pid, fd: 9, result: (128 << 8) | 22 },
      { ...base, call: 'io_uring_register', pid: process.pid, fd: 9, result: 12 },
      { ...base, call: 'io_uring_enter', pid: process.pid, fd: 9, result: 5 * 2 ** 32 + 3 },
      { ...base, call: 'uring-arm', pid: process.pid, fd: 8, result: 1 },
      { ...base, call: 'uring-arm', pid: process.pid, fd: 8, result: 0x101, errno: 'EMFILE' },
      { ...base, call: 'uring-arm', pid: process.pid, fd: 10, result: 0x102, errno: 'ENOBUFS', id: 2 },
      { ...base, call: 'uring-arm', pid: process.pid, fd: 10, result: 3, id: 2 },
      { ...base, call: 'uring-arm', pid: process.pid, fd: 8, result: 4, errno: 'EMFILE' },
      { ...base, call: 'uring-cqe', pid: process.pid, fd: 8, result: 0x500 * 2 ** 32 + 1 },
      { ...base, call: 'uring-cancel', pid: process.pid, fd: 10, result: 1, id: 2 },
      { ...base, call: 'uring-cancel', pid: process.pid, fd: 10, result: 2, id: 2 },
      { ...base, call: 'uring-cqe', pid: process.pid, fd: 8, result: 0x101 * 2 ** 32 + 10 },
      { ...base, call: 'uring-cqe', pid: process.pid, fd: 10, result: 0x201 * 2 ** 32 + 64, id: 2 },
      { ...base, call: 'uring-cqe', pid: process.pid, fd: 10, result: 0x300 * 2 ** 32 + (2 ** 32 - 104), id: 2 },
      { ...base, call: 'close-conn', pid: process.pid, id: 3, result: 9 * 2 ** 32 },
    );
    for (const e of synthetic) {
      checkBilingual(e, 0, { masterPid: 4711 });
      checkBilingual(e, 0);
    }
    expect(formatTrace({ ...base, call: 'accept-eintr', errno: 'EINTR' }, 0, 'en')).toContain(
      'accept(21) interrupted: EINTR, retried — a blocking call interrupted by a signal is not an error: retry (point 2)',
    );
    expect(formatTrace({ ...base, call: 'waitpid', result: 4712, fd: 0x86 }, 0, 'en')).toContain(
      'reaped 4712, killed by SIGABRT, core dumped',
    );
    expect(
      formatTrace(
        { ...base, call: 'bind', result: -1, errno: 'EADDRINUSE', address: { address: '::1', family: 'IPv6', port: 9000 } },
        0,
        'en',
      ),
    ).toContain('bind(21, [::1]:9000) failed: EADDRINUSE');
  });

  test('pool variants read as the lesson they show', () => {
    const base = { timeMs: 0, pid: 4713, fd: 9, result: 0, errno: null, id: 0 };
    const en = (e: TraceEvent) => formatTrace(e, 0, 'en', { masterPid: 4711 });
    expect(en({ ...base, call: 'mutex-lock', worker: 0, errno: 'EOWNERDEAD' })).toContain(
      'pthread_mutex_lock(&accept_mutex) → EOWNERDEAD, made consistent (worker 0) — EOWNERDEAD: the last holder died holding the mutex',
    );
    expect(en({ ...base, call: 'epoll_ctl', result: (3 << 16) | 4, id: 2, worker: 1 })).toContain(
      'epoll_ctl(EPOLL_CTL_MOD, 9, EPOLLOUT), connection #2 (worker 1)',
    );
    expect(en({ ...base, call: 'close-lfd', worker: 1 })).toContain(
      'close(9): listening socket closed (worker 1) — the server closes lfd at stop',
    );
    expect(en({ ...base, call: 'close-conn', id: 2, worker: 1 })).toContain('close(9): connection #2 over (worker 1)');
  });

  test('decodeWaitStatus reads exit codes and signals as WEXITSTATUS/WTERMSIG do', () => {
    expect(decodeWaitStatus(0)).toEqual({ exitCode: 0, signal: null, coreDumped: false });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3, signal: null, coreDumped: false });
    expect(decodeWaitStatus(9)).toEqual({ exitCode: null, signal: 'SIGKILL', coreDumped: false });
    expect(decodeWaitStatus(6 | 0x80)).toEqual({ exitCode: null, signal: 'SIGABRT', coreDumped: true });
  });
});
