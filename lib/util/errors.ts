// OS failures reach users the way Node reports its own: an Error with code, errno and syscall.
import { getSystemErrorName } from 'node:util';
import { NATIVE_FILES } from '../paths';

export interface SystemError extends Error {
  /** 'EADDRINUSE', 'EACCES', … */
  code: string;
  /** Negative, as in Node's own errors (libuv's convention). */
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/** Builds `bind EADDRINUSE: address already in use 127.0.0.1:9000`-style errors. */
export function systemError(errnoPositive: number, syscall: string, address?: string, port?: number): SystemError {
  let code: string;
  try {
    code = getSystemErrorName(-errnoPositive);
  } catch {
    code = `E${errnoPositive}`;
  }
  const where = address !== undefined ? ` ${address}${port !== undefined ? `:${port}` : ''}` : '';
  const err = new Error(`${syscall} ${code}${describe(code)}${where}`) as SystemError;
  err.code = code;
  err.errno = -errnoPositive;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

function describe(code: string): string {
  const known: Record<string, string> = {
    EADDRINUSE: 'address already in use',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'address not available',
    EINVAL: 'invalid argument',
    EMFILE: 'too many open files',
    ENFILE: 'file table overflow',
    EAGAIN: 'resource temporarily unavailable',
    ENOMEM: 'not enough memory',
    ENOENT: 'no such file or directory',
    EPERM: 'operation not permitted',
    ENOSYS: 'function not implemented',
  };
  return known[code] ? `: ${known[code]}` : '';
}

/** Converts what native start() throws (errno + syscall) into a SystemError. */
export function fromNative(e: unknown, address: string, port: number): Error {
  // Duck-typed, not instanceof: the addon creates its errors in the main context, which is not
  // the context of code running in a vm (jest runs tests in one).
  const n = (typeof e === 'object' && e !== null ? e : {}) as { errno?: unknown; syscall?: unknown };
  if (n.syscall === 'execve' && typeof n.errno === 'number') {
    // The process models' master is a program built next to the addon (CMakeLists.txt).
    const err = systemError(n.errno, 'execve');
    err.message += ` (starting ${NATIVE_FILES.MASTER.ship}, which belongs next to the addon, built or prebuilt)`;
    return err;
  }
  if (typeof n.errno === 'number' && typeof n.syscall === 'string') {
    return systemError(n.errno, n.syscall, address, port);
  }
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * What an aborted `signal` rejects with, as Node's own APIs do (their AbortError is not exported):
 * name 'AbortError', code 'ABORT_ERR', the signal's reason as `cause`.
 */
export function abortError(signal: AbortSignal): Error & { code: 'ABORT_ERR' } {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: 'ABORT_ERR' };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}
