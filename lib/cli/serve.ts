// `posix-servers serve`: run one server in the foreground and print what it does, as lines for
// people or JSON lines for programs. SIGINT/SIGTERM close it gracefully and print the final stats.
import { writeFileSync } from 'node:fs';
import {
  ACCEPT_LOCKS,
  AcceptLock,
  DEFAULT_BACKLOG,
  HANDLERS,
  RPC_DEFAULT_MAX_BYTES,
  RPC_MAX_BYTES_LIMIT,
  Handler,
  MAX_WORKERS,
  Model,
  MODELS,
  NATIVE_MODELS,
  POOL_MODELS,
  PRETHREAD_ACCEPT_LOCKS,
  PROCESS_MODELS,
  SCHEDULING_POLICIES,
  SchedulingPolicy,
  URING_RECEIVES,
  WHEN_FULL,
  WHEN_FULL_WAIT_MODELS,
  WhenFull,
} from '../server/options';
import { PosixServer, ServerStats, startServer } from '../server/server';
import type { Peer, TraceEvent } from '../server/events';
import { Recorder } from '../trace/recording';
import { renderSvg } from '../trace/svg';
import { LiveView } from '../ui/live';
import { localAddressFor } from '../util/host';
import { choice, Command, commandHelp, integer, list, parseCommand, UsageError } from './flags';
import { EXEC_STDERR, ExecStderr } from '../server/exec';
import { SVG_FLAG, UI_FLAG } from './observe';

interface ServeArgs {
  model: Model;
  host: string;
  port: number;
  backlog: number;
  maxClients: number;
  /** undefined: the default (refuse). */
  whenFull: WhenFull | undefined;
  handler: Handler;
  /** --handler rpc only; undefined: the default (UNP's MAXN). */
  rpcMaxBytes: number | undefined;
  timeoutMs: number;
  idleTimeoutMs: number;
  maxConnectionMs: number;
  minBytesPerSecond: number;
  /** undefined: the default (1000), given only with --min-bytes-per-second. */
  rateWindowMs: number | undefined;
  /** cluster, prefork, reuseport, prethread; undefined: the default (one per CPU). */
  workers: number | undefined;
  /** prefork and prethread only; undefined: the default (prefork 'none', prethread 'mutex'). */
  acceptLock: AcceptLock | undefined;
  /** cluster only; undefined: the default (rr). */
  schedulingPolicy: SchedulingPolicy | undefined;
  /** uring only; undefined: the default (multishot where the kernel has it). */
  uringReceive: (typeof URING_RECEIVES)[number] | undefined;
  json: boolean;
  trace: boolean;
  lang: 'en' | 'zh';
  /** --svg FILE: the picture of the trace, written at close; null: none. */
  svg: string | null;
  /** --ui [PORT]: the live view's port on 127.0.0.1 (0: any); null: no live view. */
  ui: number | null;
  /** The door: 0 for no limit. */
  maxPerSource: number;
  maxConnectionsPerSecond: number;
  allow: string[];
  deny: string[];
}

const MS_MAX = 2 ** 31 - 1;

/** `posix-servers serve`: its flags, in one table. */
export const SERVE: Command = {
  name: 'serve',
  summary: 'run one server in the foreground and print what it does',
  flags: [
    { name: 'model', value: MODELS.join('|'), default: 'fork', help: 'the server model', parse: choice(MODELS) },
    {
      name: 'host',
      value: 'H',
      default: '127.0.0.1',
      help: 'address to bind: numeric IPv4 or IPv6, or a host name resolved as net.Server does (localhost)',
    },
    { name: 'port', value: 'P', default: '0', help: 'port to bind; 0: the kernel picks one', parse: integer(0, 65535) },
    { name: 'backlog', value: 'N', default: String(DEFAULT_BACKLOG), help: 'listen() backlog', parse: integer(1, 65535) },
    { name: 'max-clients', value: 'N', default: '100', help: 'live connections at once', parse: integer(1, 4096) },
    {
      name: 'when-full',
      value: WHEN_FULL.join('|'),
      help: "with --max-clients live: refuse the next client at once (default, as xinetd's instances) or wait: accept none until one ends (as tcpserver -c, socat max-children)",
      parse: choice(WHEN_FULL),
    },
    {
      name: 'handler',
      value: HANDLERS.join('|'),
      default: 'echo',
      help: "how each connection is served (inetd's internal services: discard, chargen, daytime, time; rpc: UNP ch. 30's web_child, 'N\\n' → N bytes, until the client closes)",
      parse: choice(HANDLERS),
    },
    {
      name: 'rpc-max-bytes',
      value: 'N',
      help: `--handler rpc: the largest reply a request may ask for; beyond it the connection is closed without one (default ${RPC_DEFAULT_MAX_BYTES}, UNP's MAXN)`,
      parse: integer(1, RPC_MAX_BYTES_LIMIT),
    },
    { name: 'exec', help: 'fork, prefork: run the program given after -- for each connection, on its stdin and stdout' },
    {
      name: 'exec-stderr',
      value: EXEC_STDERR.join('|'),
      help: "with --exec: where the program's stderr goes (default null)",
      parse: choice(EXEC_STDERR),
    },
    {
      name: 'max-per-source',
      value: 'N',
      default: '0',
      help: 'the door: live connections from one address; 0: no limit',
      parse: integer(0, 4096),
    },
    {
      name: 'max-connections-per-second',
      value: 'N',
      default: '0',
      help: 'the door: new connections a second over all clients; 0: no limit',
      parse: integer(0, 1_000_000),
    },
    { name: 'allow', value: 'CIDR,…', help: 'the door: serve only these addresses (10.0.0.0/8,::1)', parse: list((t) => t) },
    { name: 'deny', value: 'CIDR,…', help: 'the door: refuse these addresses (deny wins over allow)', parse: list((t) => t) },
    {
      name: 'timeout-ms',
      value: 'N',
      default: '2000',
      help: 'on SIGINT/SIGTERM: how long live connections may finish',
      parse: integer(0, MS_MAX),
    },
    {
      name: 'idle-timeout-ms',
      value: 'N',
      default: '0',
      help: 'drop a connection silent this long; 0: never',
      parse: integer(0, MS_MAX),
    },
    {
      name: 'max-connection-ms',
      value: 'N',
      default: '0',
      help: 'close a connection open this long, however busy; 0: never',
      parse: integer(0, MS_MAX),
    },
    {
      name: 'min-bytes-per-second',
      value: 'N',
      default: '0',
      help: 'drop a client sending less than this per window; 0: no minimum',
      parse: integer(0, MS_MAX),
    },
    {
      name: 'rate-window-ms',
      value: 'N',
      help: 'the window of --min-bytes-per-second (default 1000)',
      parse: integer(100, MS_MAX),
    },
    {
      name: 'workers',
      value: 'N',
      help: 'cluster, prefork, reuseport: worker processes; prethread: threads (default: one per CPU)',
      parse: integer(1, MAX_WORKERS),
    },
    {
      name: 'accept-lock',
      value: [...ACCEPT_LOCKS, ...PRETHREAD_ACCEPT_LOCKS.filter((l) => l !== 'mutex')].join('|'),
      help: "prefork: how the workers take turns at accept() (none|flock|mutex|pass, default 'none'); prethread: mutex (default) or main",
      parse: choice([...ACCEPT_LOCKS, 'main'] as const),
    },
    {
      name: 'scheduling-policy',
      value: SCHEDULING_POLICIES.join('|'),
      help: 'cluster: the primary accepts and passes each connection on (rr, default), or every worker accepts (none)',
      parse: choice(SCHEDULING_POLICIES),
    },
    {
      name: 'uring-receive',
      value: URING_RECEIVES.join('|'),
      help: 'uring: one receive per connection that stays armed (multishot, default, Linux 6.1+), or one armed again per message (single)',
      parse: choice(URING_RECEIVES),
    },
    { name: 'trace', help: 'native models: print every real syscall, with a note from the lecture' },
    { name: 'lang', value: 'en|zh', default: 'en', help: 'language of the trace notes', parse: choice(['en', 'zh'] as const) },
    { name: 'json', help: 'print one JSON object per line instead' },
    { ...SVG_FLAG, help: 'write the picture of the trace (a sequence diagram, SVG) to FILE at close' },
    UI_FLAG,
  ],
  rest: { usage: 'PROGRAM [ARGS…]', help: 'with --exec: the program for each connection, and its arguments' },
  notes: [
    'SIGINT/SIGTERM close the server gracefully and print the final stats. Connect with: nc 127.0.0.1 PORT',
    "As inetd: posix-servers serve --exec --port 9000 -- /usr/bin/bc -l   (the environment is this process's, plus PROTO, TCPREMOTEIP…)",
  ],
};

/** Flags → ServeArgs; throws a UsageError whose message names the flag (null: --help). */
export function parseServeArgs(argv: string[]): ServeArgs | null {
  const { help, values: v, given, rest } = parseCommand(SERVE, argv);
  if (help) return null;
  let handler = v.handler as Handler;
  if (v.exec === true) {
    if (rest.length === 0)
      throw new UsageError(`--exec needs the program after --: posix-servers serve --exec -- /usr/bin/bc -l`);
    if (given.has('handler')) throw new UsageError(`--exec and --handler exclude each other: the program is the handler`);
    const stderr = v['exec-stderr'] as ExecStderr | undefined;
    handler = { exec: rest, ...(stderr !== undefined ? { stderr } : {}) };
  } else if (rest.length > 0) {
    throw new UsageError(`arguments after -- are the program of --exec: '${rest.join(' ')}'`);
  } else if (given.has('exec-stderr')) {
    throw new UsageError(`--exec-stderr applies only with --exec`);
  }
  const out: ServeArgs = {
    model: v.model as Model,
    host: v.host as string,
    port: v.port as number,
    backlog: v.backlog as number,
    maxClients: v['max-clients'] as number,
    whenFull: v['when-full'] as WhenFull | undefined,
    handler,
    rpcMaxBytes: v['rpc-max-bytes'] as number | undefined,
    timeoutMs: v['timeout-ms'] as number,
    idleTimeoutMs: v['idle-timeout-ms'] as number,
    maxConnectionMs: v['max-connection-ms'] as number,
    minBytesPerSecond: v['min-bytes-per-second'] as number,
    rateWindowMs: v['rate-window-ms'] as number | undefined,
    workers: v.workers as number | undefined,
    acceptLock: v['accept-lock'] as AcceptLock | undefined,
    schedulingPolicy: v['scheduling-policy'] as SchedulingPolicy | undefined,
    uringReceive: v['uring-receive'] as (typeof URING_RECEIVES)[number] | undefined,
    json: v.json === true,
    trace: v.trace === true,
    lang: v.lang as 'en' | 'zh',
    svg: (v.svg as string | undefined) ?? null,
    ui: (v.ui as number | undefined) ?? null,
    maxPerSource: v['max-per-source'] as number,
    maxConnectionsPerSecond: v['max-connections-per-second'] as number,
    allow: (v.allow as string[] | undefined) ?? [],
    deny: (v.deny as string[] | undefined) ?? [],
  };
  const withWorkers: readonly string[] = ['cluster', ...POOL_MODELS];
  if (out.workers !== undefined && !withWorkers.includes(out.model)) {
    throw new UsageError(`--workers applies only to --model ${withWorkers.join(', ')}`);
  }
  if (out.acceptLock !== undefined && out.model !== 'prefork' && out.model !== 'prethread') {
    throw new UsageError(`--accept-lock applies only to --model prefork, prethread`);
  }
  if (out.acceptLock !== undefined) {
    const allowed: readonly string[] = out.model === 'prethread' ? PRETHREAD_ACCEPT_LOCKS : ACCEPT_LOCKS;
    if (!allowed.includes(out.acceptLock)) {
      throw new UsageError(
        `--accept-lock for --model ${out.model} must be one of ${allowed.join(', ')}, got '${out.acceptLock}'`,
      );
    }
  }
  if (out.whenFull !== undefined && out.model === 'iterative') {
    throw new UsageError(`--when-full does not apply to --model iterative: it never refuses a client`);
  }
  if (out.whenFull === 'wait' && !(WHEN_FULL_WAIT_MODELS as readonly string[]).includes(out.model)) {
    throw new UsageError(`--when-full wait applies only to --model ${WHEN_FULL_WAIT_MODELS.join(', ')}`);
  }
  if (out.schedulingPolicy !== undefined && out.model !== 'cluster') {
    throw new UsageError(`--scheduling-policy applies only to --model cluster`);
  }
  if (out.uringReceive !== undefined && out.model !== 'uring') {
    throw new UsageError(`--uring-receive applies only to --model uring`);
  }
  if (out.rateWindowMs !== undefined && out.minBytesPerSecond === 0) {
    throw new UsageError(`--rate-window-ms applies only with --min-bytes-per-second`);
  }
  if (out.rpcMaxBytes !== undefined && handler !== 'rpc') {
    throw new UsageError(`--rpc-max-bytes applies only with --handler rpc`);
  }
  if (out.trace && (out.model === 'node' || out.model === 'cluster')) {
    throw new UsageError(
      `--trace applies only to the native models (${NATIVE_MODELS.join(', ')}): Node's own servers make their syscalls inside libuv`,
    );
  }
  return out;
}

const isProcessModel = (model: Model) => (PROCESS_MODELS as readonly string[]).includes(model);

const at = (p: Peer) => (p.family === 'IPv6' ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`);

function statsLine(s: ServerStats): string {
  return (
    `closed: accepted ${s.accepted}, rejected ${s.rejected}, closed ${s.closed}, reaped ${s.reaped}, ` +
    `eintrRetries ${s.eintrRetries}, bytes in ${s.bytesIn}, out ${s.bytesOut}` +
    (s.perWorker.length > 0 ? `, accepted per worker [${s.perWorker.join(', ')}]` : '') +
    (s.eventsDropped ? `, events dropped ${s.eventsDropped}` : '')
  );
}

/** ` → child pid 4712`, ` → worker 1 (pid 4712)`, ` → slot 3`, or nothing. */
function servedBy(model: Model, c: { pid?: number; slot?: number; worker?: number }): string {
  // prethread's pool threads have no pid of their own.
  if (c.worker !== undefined) return ` → worker ${c.worker}${c.pid ? ` (pid ${c.pid})` : ''}`;
  if (c.pid) return ` → ${model === 'cluster' ? 'worker' : 'child'} pid ${c.pid}`;
  return c.slot !== undefined ? ` → slot ${c.slot}` : '';
}

/** Turns server events into output lines (human or JSON). */
function attachPrinter(
  server: PosixServer,
  args: ServeArgs,
  print: (line: string) => void,
  formatTrace: ((e: TraceEvent, t0: number) => string) | null,
): void {
  const json = (event: string, body: object) => print(JSON.stringify({ event, ...body }));
  server.on('connection', (c) =>
    args.json ? json('connection', c) : print(`connection #${c.id} from ${at(c.peer)}${servedBy(server.model, c)}`),
  );
  server.on('disconnect', (d) =>
    args.json
      ? json('disconnect', d)
      : print(`disconnect #${d.id}: ${d.bytesIn} bytes in, ${d.bytesOut} bytes out (${d.reason})`),
  );
  server.on('reject', (r) => (args.json ? json('reject', r) : print(`reject #${r.id} from ${at(r.peer)}: ${r.reason}`)));
  server.on('reap', (r) =>
    args.json
      ? json('reap', r)
      : print(
          `reap pid ${r.pid}${r.worker !== undefined ? ` (worker ${r.worker})` : ''}: ${r.signal ? `signal ${r.signal}` : `exit ${r.exitCode}`}`,
        ),
  );
  server.on('error', (e) => (args.json ? json('error', { message: e.message }) : print(`error: ${e.message}`)));
  if (args.trace) {
    const t0 = server.startupTrace[0]?.timeMs ?? 0;
    const emitTrace = (t: TraceEvent) =>
      args.json ? json('trace', t) : print(formatTrace ? formatTrace(t, t0) : JSON.stringify(t));
    for (const t of server.startupTrace) emitTrace(t);
    server.on('trace', emitTrace);
  }
}

/** Runs until SIGINT/SIGTERM; returns the exit code. */
export async function serveMain(
  argv: string[],
  formatTrace: ((e: TraceEvent, t0: number, lang: 'en' | 'zh', ctx: { masterPid?: number }) => string) | null = null,
): Promise<number> {
  let args: ServeArgs;
  let server: PosixServer;
  try {
    const parsed = parseServeArgs(argv);
    if (parsed === null) {
      process.stdout.write(commandHelp(SERVE));
      return 0;
    }
    args = parsed;
    // The picture and the live view draw the trace: a native server records it for them.
    const observed = args.svg !== null || args.ui !== null;
    const native = args.model !== 'node' && args.model !== 'cluster';
    server = await startServer({
      model: args.model,
      host: args.host,
      port: args.port,
      backlog: args.backlog,
      maxClients: args.maxClients,
      ...(args.whenFull !== undefined ? { whenFull: args.whenFull } : {}),
      handler: args.handler,
      ...(args.rpcMaxBytes !== undefined ? { rpcMaxBytes: args.rpcMaxBytes } : {}),
      idleTimeoutMs: args.idleTimeoutMs,
      maxConnectionMs: args.maxConnectionMs,
      minBytesPerSecond: args.minBytesPerSecond,
      ...(args.rateWindowMs !== undefined ? { rateWindowMs: args.rateWindowMs } : {}),
      ...(args.workers !== undefined ? { workers: args.workers } : {}),
      ...(args.acceptLock !== undefined ? { acceptLock: args.acceptLock } : {}),
      ...(args.schedulingPolicy !== undefined ? { schedulingPolicy: args.schedulingPolicy } : {}),
      ...(args.uringReceive !== undefined ? { uringReceive: args.uringReceive } : {}),
      ...(args.trace || (observed && native) ? { trace: true } : {}),
      maxPerSource: args.maxPerSource,
      maxConnectionsPerSecond: args.maxConnectionsPerSecond,
      allow: args.allow,
      deny: args.deny,
    });
  } catch (e) {
    process.stderr.write(`posix-servers: ${(e as Error).message}\n`);
    return 1;
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const a = server.address()!;
  if (args.json) {
    print(JSON.stringify({ event: 'listening', model: server.model, address: a.address, port: a.port, pid: server.pid }));
  } else {
    print(
      `${server.model} server listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} (${isProcessModel(server.model) ? 'master ' : server.model === 'cluster' ? 'primary ' : ''}pid ${server.pid})`,
    );
    if (typeof args.handler === 'object') print(`each connection runs: ${args.handler.exec.join(' ')}`);
    // Listening on every address (0.0.0.0, ::): nc reaches it here through loopback.
    print(`connect with: nc ${localAddressFor(a.address)} ${a.port}`);
    if (a.address !== '127.0.0.1' && a.address !== '::1') {
      process.stderr.write(`posix-servers: warning: listening on ${a.address}, not loopback: other machines can connect\n`);
    }
  }
  const ctx = isProcessModel(server.model) ? { masterPid: server.pid } : {};
  attachPrinter(server, args, print, formatTrace ? (t, t0) => formatTrace(t, t0, args.lang, ctx) : null);
  let recorder: Recorder | null = null;
  let view: LiveView | null = null;
  if (args.svg !== null || args.ui !== null) {
    recorder = new Recorder();
    recorder.attach(server, { maxClients: args.maxClients });
  }
  if (args.ui !== null) {
    try {
      view = await LiveView.start(recorder!, { port: args.ui, lang: args.lang });
    } catch (e) {
      process.stderr.write(`posix-servers: --ui: ${(e as Error).message}\n`);
      await server.close({ timeoutMs: 0 });
      return 1;
    }
    if (args.json) print(JSON.stringify({ event: 'ui', url: view.url }));
    else print(`live view: ${view.url}`);
  }
  // At close: the picture is written, the live view shows the final state and stops.
  const finish = async (): Promise<boolean> => {
    let ok = true;
    if (args.svg !== null) {
      try {
        writeFileSync(args.svg, renderSvg(recorder!.servers, args.lang));
        if (args.json) print(JSON.stringify({ event: 'svg', file: args.svg }));
        else print(`picture of the trace: ${args.svg}`);
      } catch (e) {
        process.stderr.write(`posix-servers: --svg: ${(e as Error).message}\n`);
        ok = false;
      }
    }
    await view?.close();
    return ok;
  };
  return new Promise((resolve) => {
    let closing = false;
    const stop = () => {
      if (closing) {
        resolve(1); // a second signal while closing: give up waiting
        return;
      }
      closing = true;
      void server.close({ timeoutMs: args.timeoutMs }).then(async () => {
        const s = server.stats();
        if (args.json) print(JSON.stringify({ event: 'close', stats: s }));
        else print(statsLine(s));
        resolve((await finish()) ? 0 : 1);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    server.once('close', () => {
      if (!closing) {
        // The server ended on its own (its master died): report it, exit non-zero.
        closing = true;
        const s = server.stats();
        if (args.json) print(JSON.stringify({ event: 'close', stats: s }));
        else print(statsLine(s));
        void finish().then(() => resolve(1));
      }
    });
  });
}
