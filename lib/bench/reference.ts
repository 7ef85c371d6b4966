// The project's C programs, built by cmake-js next to the addon (or carried prebuilt): the
// reference servers (ref/*.c, in build/ref/), plain C written as in Stevens' UNP, to compare the
// addon's servers with and to point the load generator at; and the labs' own servers
// (native/labs/*.c, in build/labs/), written as the lecture would, flaws included. Each prints
// `listening <port>` when it is ready.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BUILD_DIR, NATIVE_FILES, NativeFile, PREBUILD_DIR } from '../paths';
import { RPC_MAX_BYTES_LIMIT } from '../server/options';
import { integerIn, invalidType, invalidValue, numericHost, oneOf, optionsObject, port, show } from '../util/validate';

export const REFERENCE_MODELS = ['iterative', 'fork', 'thread', 'epoll', 'uring', 'prefork', 'reuseport', 'prethread'] as const;
export type ReferenceModel = (typeof REFERENCE_MODELS)[number];
/** The reference servers with a pool made at start, of processes or threads (--workers). */
export const REFERENCE_POOLS: readonly ReferenceModel[] = ['prefork', 'reuseport', 'prethread'];
export const REFERENCE_LOCKS = ['none', 'flock', 'mutex', 'pass'] as const;
/** ref-prethread's --lock kinds, as the prethread model's acceptLock; the first is the default. */
const REFERENCE_PRETHREAD_LOCKS = ['mutex', 'main'] as const;

/**
 * The kinds of C programs: their list in scripts/native-files.js, and the environment variable
 * that names one directory to take them from instead (npm run test:asan points both at the
 * sanitizer build's).
 */
const PROGRAM_DIRS = {
  ref: { env: 'POSIX_SERVERS_REF_DIR', files: () => NATIVE_FILES.REFERENCES.map((f) => ({ ...f, name: f.model })) },
  labs: { env: 'POSIX_SERVERS_LABS_DIR', files: () => NATIVE_FILES.LAB_PROGRAMS },
} as const;
type ProgramDir = keyof typeof PROGRAM_DIRS;

export interface ReferenceOptions {
  /** Numeric IPv4 or IPv6 address. Default '127.0.0.1'. */
  host?: string;
  /** 0..65535. Default 0: the kernel picks a free port. */
  port?: number;
  /** 'echo' (default), 'upper' (ASCII a–z turned into A–Z), or 'rpc' (the rpc handler's exchange, UNP ch. 30's web_child). */
  handler?: 'echo' | 'upper' | 'rpc';
  /** handler 'rpc': the largest reply a request may ask for, 1..2^30 (default 16384, UNP's MAXN), as the models' rpcMaxBytes. */
  rpcMaxBytes?: number;
  /** prefork, reuseport: processes forked at start; prethread: threads; 1..64. Default: the number of CPUs. */
  workers?: number;
  /**
   * prefork: how the children take turns at accept() (default 'none'); prethread: 'mutex'
   * (default) or 'main'. As the models' acceptLock.
   */
  lock?: (typeof REFERENCE_LOCKS)[number] | (typeof REFERENCE_PRETHREAD_LOCKS)[number];
}

/** A C program of this project, running and listening. */
export interface ListeningProgram {
  readonly pid: number;
  /** The port the server listens on (the kernel's choice for port 0). */
  readonly port: number;
  /** Every line it printed on stdout after `listening <port>`, in order (the labs' servers report there). */
  readonly lines: readonly string[];
  /** Resolves with the first line from index `from` on that matches, or rejects after timeoutMs. */
  waitForLine(match: RegExp, timeoutMs: number, from?: number): Promise<string>;
  /** Resolves when the process has exited, with its wait status as Node's waitpid() reported it. */
  readonly exited: Promise<ProgramExit>;
  /**
   * SIGTERM, then resolves once the process has exited (the fork and pool servers first kill and
   * reap their children). SIGKILL if it is still alive after 3 s. Calling it again returns the
   * same promise.
   */
  close(): Promise<void>;
}

/** How a program ended: its exit code, or the signal that killed it (the other one null). */
export interface ProgramExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ReferenceServer extends ListeningProgram {
  readonly model: ReferenceModel;
}

// How long the binary may take to print its `listening <port>` line.
const START_TIMEOUT_MS = 5000;
const KILL_AFTER_MS = 3000;
// Lines kept from a program's stdout after `listening`: enough for any lab, bounded for a long run.
const MAX_LINES = 10000;

/**
 * Where one of the C programs may be, in the order looked at: where cmake-js builds it
 * (build/ref, build/labs, next to build/Release of the addon), then the prebuilt one
 * (prebuilds/<platform>-<arch>/…) — as for the addon (lib/addon.ts). The kind's environment
 * variable (PROGRAM_DIRS) names the one directory to use instead. `name`: the reference model
 * ('fork') or the lab program ('mmap').
 */
function programCandidates(dir: ProgramDir, name: string): string[] {
  const file: NativeFile | undefined = PROGRAM_DIRS[dir].files().find((f) => f.name === name);
  if (!file) throw new Error(`scripts/native-files.js does not list the ${dir} program ${name}`);
  const override = process.env[PROGRAM_DIRS[dir].env];
  if (override) return [join(override, basename(file.build))];
  return [join(BUILD_DIR, file.build), join(PREBUILD_DIR, file.ship)];
}

/** The first of programCandidates() that exists (else the first, which startProgram() reports missing). */
export function programBinary(dir: ProgramDir, name: string): string {
  const candidates = programCandidates(dir, name);
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

/** Where ref-<model> may be (programCandidates). */
export function referenceCandidates(model: ReferenceModel): string[] {
  return programCandidates('ref', model);
}

/** The first of referenceCandidates() that exists (else the first, which startReference() reports missing). */
export function referenceBinary(model: ReferenceModel): string {
  return programBinary('ref', model);
}

function validate(model: unknown, opts: unknown): { model: ReferenceModel; args: string[] } {
  if (typeof model !== 'string' || !(REFERENCE_MODELS as readonly string[]).includes(model)) {
    const message = `The "model" argument must be one of ${REFERENCE_MODELS.map((m) => `'${m}'`).join(', ')}. Received ${show(model)}`;
    throw typeof model === 'string' ? invalidValue(message) : invalidType(message);
  }
  const o = optionsObject(opts, new Set(['host', 'port', 'handler', 'rpcMaxBytes', 'workers', 'lock']));
  const host = numericHost(o.host ?? '127.0.0.1');
  const listenPort = port('port', o.port ?? 0, 0);
  const handler = oneOf('handler', o.handler ?? 'echo', ['echo', 'upper', 'rpc'] as const);
  const args = ['--host', host, '--port', String(listenPort), '--handler', handler];
  if (o.rpcMaxBytes !== undefined) {
    if (handler !== 'rpc')
      throw invalidValue(`The "rpcMaxBytes" option applies only with handler 'rpc'. Received ${show(o.rpcMaxBytes)}`);
    args.push('--rpc-max-bytes', String(integerIn('rpcMaxBytes', o.rpcMaxBytes, 1, RPC_MAX_BYTES_LIMIT)));
  }
  if (o.workers !== undefined) {
    if (!REFERENCE_POOLS.includes(model as ReferenceModel)) {
      throw invalidValue(
        `The "workers" option applies only to the prefork, reuseport and prethread references. Received it for '${model}'`,
      );
    }
    args.push('--workers', String(integerIn('workers', o.workers, 1, 64)));
  }
  if (o.lock !== undefined) {
    if (model !== 'prefork' && model !== 'prethread') {
      throw invalidValue(`The "lock" option applies only to the prefork and prethread references. Received it for '${model}'`);
    }
    args.push('--lock', oneOf('lock', o.lock, model === 'prethread' ? REFERENCE_PRETHREAD_LOCKS : REFERENCE_LOCKS));
  }
  return { model: model as ReferenceModel, args };
}

/**
 * Starts build/ref/ref-<model> and resolves once it printed `listening <port>`. Rejects if the
 * binary is missing (run `npm run build`), exits or fails before that, or stays silent for 5 s.
 */
export async function startReference(model: ReferenceModel, opts: ReferenceOptions = {}): Promise<ReferenceServer> {
  const { args } = validate(model, opts);
  const program = await startProgram(`reference server ${model}`, referenceBinary(model), args);
  return Object.assign(program, { model });
}

/**
 * Starts one of the project's C programs (`bin`, with `args`) and resolves once it printed
 * `listening <port>` on stdout. Rejects, leaving nothing behind, if the binary is missing (run
 * `npm run build`), or the program exits, fails or stays silent for 5 s before that; the
 * message starts with `label` and carries what the program wrote on stderr.
 */
export function startProgram(label: string, bin: string, args: string[]): Promise<ListeningProgram> {
  if (!existsSync(bin)) {
    return Promise.reject(new Error(`${label}: ${bin} does not exist (build it with npm run build)`));
  }

  // stdin ignored, stdout read line by line, stderr collected for error messages.
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<ProgramExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });

  return new Promise<ListeningProgram>((resolve, reject) => {
    let pending = '';
    let program: Program | null = null;
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      cleanup();
      // Never leave a half-started server behind.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const detail = stderr.trim() ? `: ${stderr.trim()}` : '';
      reject(new Error(`${label} (${bin}) ${why}${detail}`));
    };
    const onData = (s: string) => {
      pending += s;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (program) {
          program.push(line);
          continue;
        }
        const m = /^listening (\d+)$/.exec(line);
        if (!m) return fail(`printed ${JSON.stringify(line)} instead of "listening <port>"`);
        settled = true;
        cleanup();
        program = new Program(child, Number(m[1]), exited);
        resolve(program);
      }
    };
    const onError = (e: Error) => fail(`could not be started (${e.message})`);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      // 'exit' may come before the last stderr chunk: give the pipe a moment.
      setImmediate(() => fail(`exited before listening (${signal ?? `code ${code}`})`));
    const timer = setTimeout(() => fail(`did not print "listening <port>" within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('error', onError);
      child.off('exit', onExit);
    };
    child.stdout!.setEncoding('utf8');
    // Read for the program's whole life: the pipe never fills, and later lines are kept.
    child.stdout!.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

class Program implements ListeningProgram {
  readonly lines: string[] = [];
  #child: ChildProcess;
  #closing: Promise<void> | null = null;
  #waiters: Array<() => void> = [];

  constructor(
    child: ChildProcess,
    readonly port: number,
    readonly exited: Promise<ProgramExit>,
  ) {
    this.#child = child;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  push(line: string): void {
    if (this.lines.length >= MAX_LINES) this.lines.shift();
    this.lines.push(line);
    for (const w of this.#waiters.splice(0)) w();
  }

  waitForLine(match: RegExp, timeoutMs: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        reject(new Error(`no line matching ${match} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        const line = this.lines.slice(from).find((l) => match.test(l));
        if (line !== undefined) {
          clearTimeout(timer);
          resolve(line);
        } else {
          this.#waiters.push(check);
        }
      };
      check();
    });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const child = this.#child;
    this.#closing = (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      await this.exited;
      clearTimeout(killer);
    })();
    return this.#closing;
  }
}
