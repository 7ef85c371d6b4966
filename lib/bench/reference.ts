// The reference servers (ref/*.c, built by cmake-js into build/ref/): plain C programs written
// as in Stevens' UNP, to compare the addon's servers with, and to point the load generator at.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BUILD_DIR, NATIVE_FILES, PREBUILD_DIR } from '../paths';
import { integerIn, invalidType, invalidValue, numericHost, oneOf, optionsObject, port, show } from '../util/validate';

export const REFERENCE_MODELS = ['iterative', 'fork', 'thread', 'epoll', 'prefork', 'reuseport'] as const;
export type ReferenceModel = (typeof REFERENCE_MODELS)[number];
/** The reference servers with a pool of processes forked at start (--workers). */
export const REFERENCE_POOLS: readonly ReferenceModel[] = ['prefork', 'reuseport'];
export const REFERENCE_LOCKS = ['none', 'flock', 'mutex', 'pass'] as const;

export interface ReferenceOptions {
  /** Numeric IPv4 or IPv6 address. Default '127.0.0.1'. */
  host?: string;
  /** 0..65535. Default 0: the kernel picks a free port. */
  port?: number;
  /** 'echo' (default) or 'upper' (ASCII a–z turned into A–Z). */
  handler?: 'echo' | 'upper';
  /** prefork, reuseport: processes forked at start, 1..64. Default: the number of CPUs. */
  workers?: number;
  /** prefork: how the children take turns at accept() (default 'none'), as the prefork model's acceptLock. */
  lock?: (typeof REFERENCE_LOCKS)[number];
}

export interface ReferenceServer {
  readonly model: ReferenceModel;
  readonly pid: number;
  /** The port the server listens on (the kernel's choice for port 0). */
  readonly port: number;
  /**
   * SIGTERM, then resolves once the process has exited (the fork and pool servers first kill and
   * reap their children). SIGKILL if it is still alive after 3 s. Calling it again returns the
   * same promise.
   */
  close(): Promise<void>;
}

// How long the binary may take to print its `listening <port>` line.
const START_TIMEOUT_MS = 5000;
const KILL_AFTER_MS = 3000;

/**
 * Where ref-<model> may be, in the order looked at: where cmake-js builds it (build/ref, next to
 * build/Release of the addon), then the prebuilt one (prebuilds/<platform>-<arch>/ref) — as for
 * the addon (lib/addon.ts). POSIX_SERVERS_REF_DIR names the one directory to use instead (npm run
 * test:asan uses the sanitizer build's).
 */
export function referenceCandidates(model: ReferenceModel): string[] {
  const file = NATIVE_FILES.REFERENCES.find((r) => r.model === model);
  if (!file) throw new Error(`scripts/native-files.js does not list the reference server ${model}`);
  const dir = process.env.POSIX_SERVERS_REF_DIR;
  if (dir) return [join(dir, basename(file.build))];
  return [join(BUILD_DIR, file.build), join(PREBUILD_DIR, file.ship)];
}

/** The first of referenceCandidates() that exists (else the first, which startReference() reports missing). */
export function referenceBinary(model: ReferenceModel): string {
  const candidates = referenceCandidates(model);
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

function validate(model: unknown, opts: unknown): { model: ReferenceModel; args: string[] } {
  if (typeof model !== 'string' || !(REFERENCE_MODELS as readonly string[]).includes(model)) {
    const message = `The "model" argument must be one of ${REFERENCE_MODELS.map((m) => `'${m}'`).join(', ')}. Received ${show(model)}`;
    throw typeof model === 'string' ? invalidValue(message) : invalidType(message);
  }
  const o = optionsObject(opts, new Set(['host', 'port', 'handler', 'workers', 'lock']));
  const host = numericHost(o.host ?? '127.0.0.1');
  const listenPort = port('port', o.port ?? 0, 0);
  const handler = oneOf('handler', o.handler ?? 'echo', ['echo', 'upper'] as const);
  const args = ['--host', host, '--port', String(listenPort), '--handler', handler];
  if (o.workers !== undefined) {
    if (!REFERENCE_POOLS.includes(model as ReferenceModel)) {
      throw invalidValue(`The "workers" option applies only to the prefork and reuseport references. Received it for '${model}'`);
    }
    args.push('--workers', String(integerIn('workers', o.workers, 1, 64)));
  }
  if (o.lock !== undefined) {
    if (model !== 'prefork') {
      throw invalidValue(`The "lock" option applies only to the prefork reference. Received it for '${model}'`);
    }
    args.push('--lock', oneOf('lock', o.lock, REFERENCE_LOCKS));
  }
  return { model: model as ReferenceModel, args };
}

/**
 * Starts build/ref/ref-<model> and resolves once it printed `listening <port>`. Rejects if the
 * binary is missing (run `npm run build`), exits or fails before that, or stays silent for 5 s.
 */
export function startReference(model: ReferenceModel, opts: ReferenceOptions = {}): Promise<ReferenceServer> {
  let args: string[];
  try {
    ({ args } = validate(model, opts));
  } catch (e) {
    return Promise.reject(e);
  }
  const bin = referenceBinary(model);
  if (!existsSync(bin)) {
    const looked = referenceCandidates(model);
    const what = looked.length === 1 ? `${looked[0]} does not exist` : `neither ${looked.join(' nor ')} exists`;
    return Promise.reject(new Error(`reference server ${model}: ${what} (build it with npm run build)`));
  }

  // stdin ignored, stdout read for the one line, stderr collected for error messages.
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });

  return new Promise<ReferenceServer>((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      cleanup();
      // Never leave a half-started server behind.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const detail = stderr.trim() ? `: ${stderr.trim()}` : '';
      reject(new Error(`reference server ${model} (${bin}) ${why}${detail}`));
    };
    const onData = (s: string) => {
      stdout += s;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      const m = /^listening (\d+)$/.exec(stdout.slice(0, nl));
      if (!m) return fail(`printed ${JSON.stringify(stdout.slice(0, nl))} instead of "listening <port>"`);
      if (settled) return;
      settled = true;
      cleanup();
      child.stdout!.resume(); // nothing more is expected; never let the pipe fill
      resolve(makeServer(model, child, Number(m[1]), exited));
    };
    const onError = (e: Error) => fail(`could not be started (${e.message})`);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      // 'exit' may come before the last stderr chunk: give the pipe a moment.
      setImmediate(() => fail(`exited before listening (${signal ?? `code ${code}`})`));
    const timer = setTimeout(() => fail(`did not print "listening <port>" within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
    };
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

function makeServer(model: ReferenceModel, child: ChildProcess, port: number, exited: Promise<void>): ReferenceServer {
  let closing: Promise<void> | null = null;
  return {
    model,
    pid: child.pid!,
    port,
    close() {
      if (closing) return closing;
      closing = (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        await exited;
        clearTimeout(killer);
      })();
      return closing;
    },
  };
}
