// Why the uring model could not start, and what to do: io_uring is the one design whose kernel
// interface may be missing or switched off on a machine that runs every other model. The error
// keeps the syscall's own code (ENOSYS, EPERM, EINVAL) and says which of the known causes it is.
import { readFileSync } from 'node:fs';
import { native } from '../addon';
import { SystemError, systemError } from '../util/errors';

/** What the machine says about io_uring, read when a start was refused. */
export interface UringFacts {
  /** The addon was compiled with io_uring (constants.URING_BUILT). */
  built: boolean;
  /** /proc/sys/kernel/io_uring_disabled (Linux 6.6): 0, 1, 2, or null when the kernel has none. */
  disabled: number | null;
  /** /proc/sys/kernel/io_uring_group: the group allowed when disabled is 1 (-1: none), or null. */
  group: number | null;
  /** The Seccomp field of /proc/self/status: 0 none, 1 strict, 2 a filter. */
  seccomp: number | null;
}

function readNumber(path: string, field?: string): number | null {
  try {
    const text = readFileSync(path, 'latin1');
    const value = field === undefined ? text : (new RegExp(`^${field}:\\s*(-?\\d+)`, 'm').exec(text)?.[1] ?? '');
    const n = Number.parseInt(value.trim(), 10);
    return Number.isNaN(n) ? null : n;
  } catch {
    return null;
  }
}

export function uringFacts(): UringFacts {
  return {
    built: native.constants.URING_BUILT,
    disabled: readNumber('/proc/sys/kernel/io_uring_disabled'),
    group: readNumber('/proc/sys/kernel/io_uring_group'),
    seccomp: readNumber('/proc/self/status', 'Seccomp'),
  };
}

const USE_EPOLL = "or use model 'epoll', the same design without io_uring";

/** The advice for a refused start: `errnoPositive` and `syscall` as the addon reported them. */
export function uringAdvice(code: string, syscall: string, facts: UringFacts): string | null {
  if (syscall === 'io_uring_setup' && code === 'ENOSYS') {
    if (!facts.built) {
      return (
        'this build of posix-servers has no io_uring: it was compiled against a <linux/io_uring.h> older than ' +
        "Linux 6.1's. Install newer kernel headers (Debian, Ubuntu: linux-libc-dev) and run " +
        `npm rebuild posix-servers --build-from-source, ${USE_EPOLL}`
      );
    }
    return (
      'this kernel has no io_uring (built without CONFIG_IO_URING, older than Linux 5.1, or an emulator such ' +
      `as qemu-user that does not pass it on; a seccomp filter may answer ENOSYS too): run on a kernel with io_uring, ${USE_EPOLL}`
    );
  }
  if (syscall === 'io_uring_setup' && code === 'EPERM') {
    if (facts.disabled === 2) {
      return `kernel.io_uring_disabled is 2: io_uring is off for every process. As root: sysctl -w kernel.io_uring_disabled=0, ${USE_EPOLL}`;
    }
    if (facts.disabled === 1) {
      const allowed =
        facts.group !== null && facts.group >= 0
          ? `or in group ${facts.group} may create an io_uring. Add this user to that group`
          : 'may create an io_uring (kernel.io_uring_group names no group). As root, set kernel.io_uring_group to a group of this user';
      return `kernel.io_uring_disabled is 1: only processes with CAP_SYS_ADMIN ${allowed}, or sysctl -w kernel.io_uring_disabled=0, ${USE_EPOLL}`;
    }
    const filtered = facts.seccomp === 2 ? 'a seccomp filter of this process' : 'a security policy (a seccomp filter, an LSM)';
    return (
      `${filtered} refuses io_uring_setup, as Docker's and Podman's default profiles do. Run with a profile that ` +
      `allows io_uring_setup, io_uring_enter and io_uring_register (docker run --security-opt seccomp=…), ${USE_EPOLL}`
    );
  }
  if ((syscall === 'io_uring_setup' || syscall === 'io_uring_register') && code === 'EINVAL') {
    return (
      "this kernel's io_uring is older than Linux 5.19, which brought the multishot accept and the " +
      `provided-buffer rings the uring model is built on: run on Linux 5.19 or later, ${USE_EPOLL}`
    );
  }
  if (syscall === 'io_uring_register' && code === 'EPERM') {
    return `a security policy refuses io_uring_register: allow io_uring_setup, io_uring_enter and io_uring_register, ${USE_EPOLL}`;
  }
  return null;
}

/**
 * What startServer({ model: 'uring' }) rejects with when the addon refused: the syscall's Error
 * (code, errno, syscall), its message followed by the cause and what to do.
 */
export function uringError(errnoPositive: number, syscall: string, facts: UringFacts = uringFacts()): SystemError {
  const err = systemError(errnoPositive, syscall);
  const advice = uringAdvice(err.code, syscall, facts);
  if (advice !== null) err.message += ` (model 'uring': ${advice})`;
  return err;
}
