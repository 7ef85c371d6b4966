// Starting the servers the benchmark measures, each in a process of its own: the C references
// (bench/reference.ts), the API's models (bench/server-process.ts), socat and xinetd
// (bench/external.ts); and which of them cannot run here, and why.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { threadsCpuNs } from './cpu';
import { BenchModel, EXEC_PROGRAM, REF_LOCKS, referenceOf, VARIANTS, WORKER_PER_CLIENT } from './catalogue';
import { socatAvailable, startSocat, startXinetd, stopChild, xinetdAvailable } from './external';
import { referenceBinary, referenceCandidates, startReference } from './reference';
import type { BenchSkip } from './report';
import { compiledScript } from '../paths';
import { MAX_WORKERS, RPC_DEFAULT_MAX_BYTES } from '../server/options';

export interface RunningServer {
  /** Where the load generator connects: 127.0.0.1 unless given (a --target). */
  host?: string;
  /** A --target: a server nobody here wrote, whose rpc reply bytes are not known in advance. */
  external?: boolean;
  port: number;
  /** The root of the server's process tree (measured with its descendants); absent: not measured (a --target without --target-pid). */
  pid?: number;
  close(): Promise<void>;
  /** The API's models: stats().perWorker now ([] without a pool). */
  perWorker?(): Promise<number[]>;
  /** The API's native models: CPU ns so far of the hosting Node process's own threads. */
  hostCpuNs?(): number;
  /** CPU ns so far of the children the tree has reaped, from the server's own books; absent: it keeps none. */
  reapedCpuNs?(): Promise<number>;
}

/** The threads the addon's in-process servers run on (native/core/server.h); every other thread of the host is Node's. */
const SERVER_THREAD_PREFIX = 'ps-';

function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 10000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buffered += d.toString();
      const m = pattern.exec(buffered);
      if (m) done(null, m);
    };
    const onExit = (code: number | null) => done(new Error(`${what} exited (code ${code}) before listening`));
    const done = (err: Error | null, m?: RegExpMatchArray) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Starts one model in a process of its own (refs: the C binary; socat; the API's models:
 * bench/server-process). `clients`: the most concurrent clients it will get — a prefork or
 * prethread pool (and its reference) gets a worker for each, at most MAX_WORKERS. `replyBytes`
 * (rpc): what each request will ask for; a server's bound (rpcMaxBytes, UNP's MAXN by default) is
 * raised to it.
 */
export async function startModel(
  model: BenchModel,
  clients = 1,
  handler: 'echo' | 'rpc' = 'echo',
  replyBytes = 0,
): Promise<RunningServer> {
  const workers = WORKER_PER_CLIENT.includes(model) ? { workers: Math.min(MAX_WORKERS, Math.max(1, clients)) } : {};
  const bound = handler === 'rpc' && replyBytes > RPC_DEFAULT_MAX_BYTES ? { rpcMaxBytes: replyBytes } : {};
  if (model.startsWith('ref-')) {
    const lock = REF_LOCKS[model];
    const ref = await startReference(referenceOf(model), { ...workers, handler, ...bound, ...(lock ? { lock } : {}) });
    // ref-fork reaps a child per connection and reports their CPU time on SIGUSR2 (ref.h); the
    // other references reap nothing while they serve (their pools live until they stop).
    const reapedCpuNs =
      referenceOf(model) === 'fork'
        ? async () => {
            const from = ref.lines.length;
            process.kill(ref.pid, 'SIGUSR2');
            const line = await ref.waitForLine(/^reaped-cpu-us (\d+)$/, 5000, from);
            return Number(/(\d+)$/.exec(line)![1]) * 1000;
          }
        : () => Promise.resolve(0);
    return { port: ref.port, pid: ref.pid, close: () => ref.close(), reapedCpuNs };
  }
  // An external fork-per-connection peer: socat forks a child per connection that echoes.
  if (model === 'socat') return startSocat('PIPE', 'socat');
  // socat's child forks again: it relays between the socket and the program over a socketpair.
  if (model === 'socat-exec') return startSocat(`EXEC:${EXEC_PROGRAM}`, 'socat EXEC');
  if (model === 'xinetd-exec') return startXinetd();
  const exec = { handler: { exec: [EXEC_PROGRAM] } };
  const variant = VARIANTS[model] ?? { model };
  const options =
    variant.model === 'cluster'
      ? { ...variant, workers: 2, maxClients: 1000, handler, ...bound }
      : model === 'exec'
        ? { model: 'fork', maxClients: 1000, ...exec }
        : model === 'prefork-exec'
          ? { model: 'prefork', maxClients: 1000, ...workers, ...exec }
          : { ...variant, maxClients: 1000, ...workers, handler, ...bound };
  return startApiServer(options, model);
}

/** What the server process (bench/server-process) says of stats() when asked. */
interface ServerProcessStats {
  perWorker: number[];
  reapedCpuUs: number;
  reaped: number;
}

/**
 * A server of the API (startServer `options`) in a process of its own, bench/server-process: the
 * root of its process tree is that Node process. `label` names it in errors.
 */
export async function startApiServer(
  options: { model: string } & Record<string, unknown>,
  label: string,
): Promise<RunningServer & { pid: number; stats(): Promise<ServerProcessStats> }> {
  const child = spawn(process.execPath, [compiledScript('bench/server-process'), JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const m = await waitForLine(child, /listening (\d+)/, `${label} server`);
  const stats = async () => {
    const line = waitForLine(child, /stats (\{[^\n]*\})\n/, `${label} server's stats`, 5000);
    child.stdin!.write('stats\n');
    return JSON.parse((await line)[1]) as ServerProcessStats;
  };
  const pid = child.pid!;
  const hostCpuNs = () => threadsCpuNs(pid, (name) => !name.startsWith(SERVER_THREAD_PREFIX));
  const native = options.model !== 'node' && options.model !== 'cluster';
  return {
    port: Number(m[1]),
    pid,
    close: () => stopChild(child),
    stats,
    perWorker: async () => (await stats()).perWorker,
    reapedCpuNs: async () => (await stats()).reapedCpuUs * 1000,
    ...(native ? { hostCpuNs } : {}),
  };
}

/** Why a model cannot run here, or null. */
function unavailable(model: BenchModel): string | null {
  if (model === 'socat' || model === 'socat-exec') {
    return socatAvailable() ? null : 'socat is not installed (apt-get install socat)';
  }
  if (model === 'xinetd-exec') return xinetdAvailable() ? null : 'xinetd is not installed (apt-get install xinetd)';
  if (model.startsWith('ref-')) {
    const ref = referenceOf(model);
    if (existsSync(referenceBinary(ref))) return null;
    const where =
      ref === 'uring'
        ? 'it is built with the addon where liburing is (Debian: liburing-dev, then npm run build)'
        : 'it is built with the addon (npm run build)';
    return (
      `its C program ref-${ref} is not here (looked in ${referenceCandidates(ref).join(', ')}): ${where} ` +
      `and prebuilt for linux-x64; POSIX_SERVERS_REF_DIR names another directory`
    );
  }
  return null;
}

/** The models that can run here, and why the others cannot (socat not installed, a C reference not built). */
export function runnable(models: BenchModel[]): { models: BenchModel[]; skipped: BenchSkip[] } {
  const skipped: BenchSkip[] = [];
  const can = models.filter((model) => {
    const why = unavailable(model);
    if (why !== null) skipped.push({ model, reason: why });
    return why === null;
  });
  return { models: can, skipped };
}
