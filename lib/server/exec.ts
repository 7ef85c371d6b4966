// The exec handler's option, `handler: { exec: [file, ...args], env?, stderr? }`, checked and
// resolved before the server starts: every bad shape is a TypeError/RangeError naming the option
// and the value, and a program that cannot be run is an Error with `code` (ENOENT, EACCES, E2BIG)
// naming it — at once, not as a silent failure of every connection. The native side
// (exec_child.h) gets an absolute path and plain string arrays.
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { systemError, SystemError } from '../util/errors';
import { pageSize, stackLimit } from '../util/proc';
import { invalidType, invalidValue, oneOf, outOfRange, show } from '../util/validate';
import { constants as osConstants } from 'node:os';

export const EXEC_STDERR = ['null', 'socket', 'inherit'] as const;
export type ExecStderr = (typeof EXEC_STDERR)[number];

/** The exec handler as startServer() takes it. */
export interface ExecHandler {
  /** The program (a path, or a name looked up in PATH as execvp does) and its arguments. */
  exec: readonly string[];
  /**
   * The program's environment, as child_process.spawn's `env`: default process.env at start.
   * The ucspi-tcp variables (PROTO, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT) are
   * set on top of it for each connection; TCPREMOTEHOST, TCPREMOTEINFO and TCPLOCALHOST are
   * removed (the server never knows them: no DNS, no ident lookup).
   */
  env?: Readonly<Record<string, string>>;
  /** Where the program's standard error goes: 'null' (default), 'socket' (the client), 'inherit' (Node's). */
  stderr?: ExecStderr;
}

/** What the native side gets (lib/binding.ts, NativeExec). */
export interface ResolvedExec {
  /** Absolute path of an executable regular file. */
  path: string;
  /** argv[0] (the file as given) first. */
  argv: string[];
  /** 'NAME=value'. */
  env: string[];
  stderr: ExecStderr;
}

const KNOWN = new Set(['exec', 'env', 'stderr']);

function stringWithoutNul(name: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidType(`The "${name}" option must be a string. Received ${show(value)}`);
  if (value.includes('\0')) {
    throw invalidValue(`The "${name}" option must be a string without null bytes. Received ${show(value)}`);
  }
  return value;
}

function cannotRun(errnoName: 'ENOENT' | 'EACCES', file: string, path: string, why: string): SystemError {
  const err = systemError(osConstants.errno[errnoName], 'access');
  err.message = `The exec handler's program '${file}' cannot be run: ${errnoName}, ${why}${path !== file ? ` (${path})` : ''}`;
  (err as SystemError & { path: string }).path = path;
  return err;
}

/** Why `path` cannot be executed, or null when it can (a regular file we may execute). */
function problem(path: string): 'ENOENT' | 'EACCES' | 'EISDIR' | null {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return 'EISDIR';
    if (!st.isFile()) return 'EACCES';
    accessSync(path, fsConstants.X_OK);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES' ? 'EACCES' : 'ENOENT';
  }
}

/**
 * The absolute path of `file`: a name with a slash is taken relative to the current directory;
 * a bare name is looked up in PATH, as execvp() does (an entry that exists but cannot be executed
 * is remembered, and reported as EACCES if no later one can).
 */
function resolveProgram(file: string): string {
  if (file.includes('/')) {
    const path = isAbsolute(file) ? file : resolve(file);
    const p = problem(path);
    if (p === 'ENOENT') throw cannotRun('ENOENT', file, path, 'no such file');
    if (p === 'EISDIR') throw cannotRun('EACCES', file, path, 'it is a directory');
    if (p === 'EACCES') throw cannotRun('EACCES', file, path, 'not an executable file');
    return path;
  }
  let denied: string | null = null;
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const path = resolve(join(dir === '' ? '.' : dir, file));
    const p = problem(path);
    if (p === null) return path;
    if (p !== 'ENOENT') denied ??= path;
  }
  if (denied !== null) throw cannotRun('EACCES', file, denied, 'not an executable file');
  throw cannotRun('ENOENT', file, file, 'not found in PATH');
}

/**
 * ucspi-tcp's variables the server sets for each connection (native/core/exec_child.cc), at their
 * longest — an IPv6 address of 39 characters, a port of 5 — each with its NUL: what they add to
 * execve's strings at most.
 */
const TCP_VARS_AT_MOST = [
  'PROTO=TCP',
  `TCPREMOTEIP=${'f'.repeat(39)}`,
  'TCPREMOTEPORT=65535',
  `TCPLOCALIP=${'f'.repeat(39)}`,
  'TCPLOCALPORT=65535',
];
/** Names the server sets or removes itself (exec_child.cc): an `env` entry of one never reaches execve. */
const SERVER_SET = /^(PROTO|TCPREMOTEIP|TCPREMOTEPORT|TCPLOCALIP|TCPLOCALPORT|TCPREMOTEHOST|TCPREMOTEINFO|TCPLOCALHOST)=/;

/**
 * What execve(2) will take, as Linux counts it (fs/exec.c): each string at most MAX_ARG_STRLEN
 * bytes with its NUL (32 pages); the file name, the environment and the arguments together, each
 * with its NUL, plus a pointer for each argument and variable, within a quarter of the stack limit
 * (RLIMIT_STACK), at most 6 MiB (¾ of _STK_LIM) and at least ARG_MAX (128 KiB). A script's `#!`
 * line adds its interpreter's name on top, which is not counted here.
 */
export function execveLimits(): { maxArgStrlen: number; total: number; pointer: number } {
  const stack = stackLimit();
  return {
    maxArgStrlen: 32 * pageSize(),
    total: Math.max(Math.min(6 * 1024 * 1024, Math.floor(stack / 4)), 128 * 1024),
    pointer: process.arch.endsWith('64') ? 8 : 4,
  };
}

/**
 * The program, its arguments and its environment must fit execve's limits — or every connection
 * would fail with E2BIG (exit 127). A string too long is the option's fault: a RangeError naming
 * it. All of them together too long is the machine's limit (it depends on RLIMIT_STACK): an
 * `Error` with code E2BIG, as child_process.spawn reports it.
 */
function checkExecveLimits(path: string, argv: string[], env: string[], envFrom: 'handler.env' | 'process.env'): void {
  const limits = execveLimits();
  const tooLong = (what: string, s: string) => {
    const bytes = Buffer.byteLength(s) + 1;
    if (bytes > limits.maxArgStrlen) {
      throw outOfRange(
        `${what} must be at most ${limits.maxArgStrlen - 1} bytes long (execve's MAX_ARG_STRLEN is ${limits.maxArgStrlen} bytes with the NUL). Received ${bytes - 1} bytes`,
      );
    }
    return bytes;
  };
  let total = Buffer.byteLength(path) + 1;
  argv.forEach((a, i) => (total += tooLong(`The "handler.exec[${i}]" option`, a)));
  const passed = env.filter((e) => !SERVER_SET.test(e));
  for (const e of passed) {
    const name = e.slice(0, e.indexOf('='));
    total += tooLong(
      envFrom === 'handler.env'
        ? `The "handler.env.${name}" option, as ${name}=value,`
        : `The variable ${name} of process.env (the program's default environment), as ${name}=value,`,
      e,
    );
  }
  for (const v of TCP_VARS_AT_MOST) total += Buffer.byteLength(v) + 1;
  total += (argv.length + passed.length + TCP_VARS_AT_MOST.length) * limits.pointer;
  if (total > limits.total) {
    const err = systemError(osConstants.errno.E2BIG, 'execve');
    err.message =
      `execve E2BIG: the exec handler's program, arguments and environment would take ${total} bytes ` +
      `(with each string's NUL, a pointer for each, and ucspi-tcp's variables at their longest); ` +
      `execve allows ${limits.total} here (a quarter of the stack limit, RLIMIT_STACK, at most 6 MiB)`;
    (err as SystemError & { path: string }).path = path;
    throw err;
  }
}

/** True for `{ exec: … }`: the exec handler rather than a service name. */
export function isExecHandler(value: unknown): value is ExecHandler {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Checks `handler: { exec, env, stderr }` and resolves the program. */
export function resolveExec(value: ExecHandler): ResolvedExec {
  for (const key of Object.keys(value)) {
    if (!KNOWN.has(key)) throw invalidValue(`Unknown key "${key}" in the "handler" option. Known keys: exec, env, stderr`);
  }
  const exec: unknown = value.exec;
  if (!Array.isArray(exec)) {
    throw invalidType(`The "handler.exec" option must be an array: [file, ...args]. Received ${show(exec)}`);
  }
  if (exec.length === 0) throw invalidValue(`The "handler.exec" option must name a program: [file, ...args]. Received []`);
  const argv = exec.map((a, i) => stringWithoutNul(`handler.exec[${i}]`, a));
  if (argv[0] === '') throw invalidValue(`The "handler.exec[0]" option must name a program. Received ''`);
  const env: string[] = [];
  if (value.env !== undefined) {
    if (value.env === null || typeof value.env !== 'object' || Array.isArray(value.env)) {
      throw invalidType(`The "handler.env" option must be an object of strings. Received ${show(value.env)}`);
    }
    for (const [name, v] of Object.entries(value.env)) {
      if (name === '' || name.includes('=') || name.includes('\0')) {
        throw invalidValue(`The "handler.env" option has an invalid variable name. Received ${show(name)}`);
      }
      env.push(`${name}=${stringWithoutNul(`handler.env.${name}`, v)}`);
    }
  } else {
    for (const [name, v] of Object.entries(process.env)) {
      if (typeof v === 'string' && !v.includes('\0') && name !== '' && !name.includes('=')) env.push(`${name}=${v}`);
    }
  }
  const stderr = oneOf('handler.stderr', value.stderr ?? 'null', EXEC_STDERR);
  const path = resolveProgram(argv[0]);
  checkExecveLimits(path, argv, env, value.env !== undefined ? 'handler.env' : 'process.env');
  return { path, argv, env, stderr };
}
