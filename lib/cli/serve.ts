// `posix-servers serve`: run one server in the foreground and print what it does, as lines for
// people or JSON lines for programs. SIGINT/SIGTERM close it gracefully and print the final stats.
import {
  ACCEPT_LOCKS,
  AcceptLock,
  DEFAULT_BACKLOG,
  HANDLERS,
  Handler,
  MAX_WORKERS,
  Model,
  MODELS,
  NATIVE_MODELS,
  POOL_MODELS,
  PROCESS_MODELS,
} from '../server/options';
import { PosixServer, ServerStats, startServer } from '../server/server';
import type { Peer, TraceEvent } from '../server/events';

export interface ServeArgs {
  model: Model;
  host: string;
  port: number;
  backlog: number;
  maxClients: number;
  handler: Handler;
  timeoutMs: number;
  idleTimeoutMs: number;
  maxConnectionMs: number;
  minBytesPerSecond: number;
  /** undefined: the default (1000), given only with --min-bytes-per-second. */
  rateWindowMs: number | undefined;
  /** cluster, prefork, reuseport; undefined: the default (one per CPU). */
  workers: number | undefined;
  /** prefork only; undefined: the default ('none'). */
  acceptLock: AcceptLock | undefined;
  json: boolean;
  trace: boolean;
  lang: 'en' | 'zh';
}

export const SERVE_USAGE = `posix-servers serve [--model ${MODELS.join('|')}] [--host H] [--port P] [--backlog N]
                    [--max-clients N] [--handler ${HANDLERS.join('|')}] [--timeout-ms N]
                    [--idle-timeout-ms N] [--max-connection-ms N] [--min-bytes-per-second N]
                    [--rate-window-ms N] [--workers N] [--accept-lock ${ACCEPT_LOCKS.join('|')}]
                    [--trace] [--lang en|zh] [--json]`;

function integer(flag: string, text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw new Error(`${flag} must be an integer, got '${text}'`);
  const n = Number(text);
  if (n < min || n > max) throw new Error(`${flag} must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** Flags → ServeArgs; throws an Error whose message names the flag. */
export function parseServeArgs(argv: string[]): ServeArgs {
  const out: ServeArgs = {
    model: 'fork',
    host: '127.0.0.1',
    port: 0,
    backlog: DEFAULT_BACKLOG,
    maxClients: 100,
    handler: 'echo',
    timeoutMs: 2000,
    idleTimeoutMs: 0,
    maxConnectionMs: 0,
    minBytesPerSecond: 0,
    rateWindowMs: undefined,
    workers: undefined,
    acceptLock: undefined,
    json: false,
    trace: false,
    lang: 'en',
  };
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=');
    const flag = eq > 0 ? argv[i].slice(0, eq) : argv[i];
    const inline = eq > 0 ? argv[i].slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '' || (inline === undefined && v.startsWith('--'))) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--model': {
        const m = value();
        if (!(MODELS as readonly string[]).includes(m))
          throw new Error(`--model must be one of ${MODELS.join(', ')}, got '${m}'`);
        out.model = m as Model;
        break;
      }
      case '--host':
        out.host = value();
        break;
      case '--port':
        out.port = integer('--port', value(), 0, 65535);
        break;
      case '--backlog':
        out.backlog = integer('--backlog', value(), 1, 65535);
        break;
      case '--max-clients':
        out.maxClients = integer('--max-clients', value(), 1, 4096);
        break;
      case '--handler': {
        const h = value();
        if (!(HANDLERS as readonly string[]).includes(h))
          throw new Error(`--handler must be one of ${HANDLERS.join(', ')}, got '${h}'`);
        out.handler = h as Handler;
        break;
      }
      case '--timeout-ms':
        out.timeoutMs = integer('--timeout-ms', value(), 0, 2 ** 31 - 1);
        break;
      case '--idle-timeout-ms':
        out.idleTimeoutMs = integer('--idle-timeout-ms', value(), 0, 2 ** 31 - 1);
        break;
      case '--max-connection-ms':
        out.maxConnectionMs = integer('--max-connection-ms', value(), 0, 2 ** 31 - 1);
        break;
      case '--min-bytes-per-second':
        out.minBytesPerSecond = integer('--min-bytes-per-second', value(), 0, 2 ** 31 - 1);
        break;
      case '--rate-window-ms':
        out.rateWindowMs = integer('--rate-window-ms', value(), 100, 2 ** 31 - 1);
        break;
      case '--workers':
        out.workers = integer('--workers', value(), 1, MAX_WORKERS);
        break;
      case '--accept-lock': {
        const l = value();
        if (!(ACCEPT_LOCKS as readonly string[]).includes(l))
          throw new Error(`--accept-lock must be one of ${ACCEPT_LOCKS.join(', ')}, got '${l}'`);
        out.acceptLock = l as AcceptLock;
        break;
      }
      case '--lang': {
        const l = value();
        if (l !== 'en' && l !== 'zh') throw new Error(`--lang must be en or zh, got '${l}'`);
        out.lang = l;
        break;
      }
      case '--json':
      case '--trace':
        if (inline !== undefined) throw new Error(`${flag} takes no value`);
        out[flag === '--json' ? 'json' : 'trace'] = true;
        break;
      default:
        throw new Error(`unknown flag '${argv[i]}' for serve`);
    }
  }
  const withWorkers: readonly string[] = ['cluster', ...POOL_MODELS];
  if (out.workers !== undefined && !withWorkers.includes(out.model)) {
    throw new Error(`--workers applies only to --model ${withWorkers.join(', ')}`);
  }
  if (out.acceptLock !== undefined && out.model !== 'prefork') throw new Error(`--accept-lock applies only to --model prefork`);
  if (out.rateWindowMs !== undefined && out.minBytesPerSecond === 0) {
    throw new Error(`--rate-window-ms applies only with --min-bytes-per-second`);
  }
  if (out.trace && (out.model === 'node' || out.model === 'cluster')) {
    throw new Error(
      `--trace applies only to the native models (${NATIVE_MODELS.join(', ')}): Node's own servers make their syscalls inside libuv`,
    );
  }
  return out;
}

const isProcessModel = (model: Model) => (PROCESS_MODELS as readonly string[]).includes(model);

const at = (p: Peer) => (p.family === 'IPv6' ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`);

export function statsLine(s: ServerStats): string {
  return (
    `closed: accepted ${s.accepted}, rejected ${s.rejected}, closed ${s.closed}, reaped ${s.reaped}, ` +
    `eintrRetries ${s.eintrRetries}, bytes in ${s.bytesIn}, out ${s.bytesOut}` +
    (s.perWorker.length > 0 ? `, accepted per worker [${s.perWorker.join(', ')}]` : '') +
    (s.eventsDropped ? `, events dropped ${s.eventsDropped}` : '')
  );
}

/** ` → child pid 4712`, ` → worker 1 (pid 4712)`, ` → slot 3`, or nothing. */
function servedBy(model: Model, c: { pid?: number; slot?: number; worker?: number }): string {
  if (c.worker !== undefined) return ` → worker ${c.worker} (pid ${c.pid})`;
  if (c.pid) return ` → ${model === 'cluster' ? 'worker' : 'child'} pid ${c.pid}`;
  return c.slot !== undefined ? ` → slot ${c.slot}` : '';
}

/** Turns server events into output lines (human or JSON). */
export function attachPrinter(
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
    args = parseServeArgs(argv);
    server = await startServer({
      model: args.model,
      host: args.host,
      port: args.port,
      backlog: args.backlog,
      maxClients: args.maxClients,
      handler: args.handler,
      idleTimeoutMs: args.idleTimeoutMs,
      maxConnectionMs: args.maxConnectionMs,
      minBytesPerSecond: args.minBytesPerSecond,
      ...(args.rateWindowMs !== undefined ? { rateWindowMs: args.rateWindowMs } : {}),
      ...(args.workers !== undefined ? { workers: args.workers } : {}),
      ...(args.acceptLock !== undefined ? { acceptLock: args.acceptLock } : {}),
      ...(args.trace ? { trace: true } : {}),
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
    print(`connect with: nc ${a.address} ${a.port}`);
    if (a.address !== '127.0.0.1' && a.address !== '::1') {
      process.stderr.write(`posix-servers: warning: listening on ${a.address}, not loopback: other machines can connect\n`);
    }
  }
  const ctx = isProcessModel(server.model) ? { masterPid: server.pid } : {};
  attachPrinter(server, args, print, formatTrace ? (t, t0) => formatTrace(t, t0, args.lang, ctx) : null);
  return new Promise((resolve) => {
    let closing = false;
    const stop = () => {
      if (closing) {
        resolve(1); // a second signal while closing: give up waiting
        return;
      }
      closing = true;
      void server.close({ timeoutMs: args.timeoutMs }).then(() => {
        const s = server.stats();
        if (args.json) print(JSON.stringify({ event: 'close', stats: s }));
        else print(statsLine(s));
        resolve(0);
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
        resolve(1);
      }
    });
  });
}
