// Names of signal and errno numbers, as Node spells them (os.constants). The first name wins for
// aliases (6 is SIGABRT, not SIGIOT), as in Node's own child_process.
import { constants as osConstants } from 'node:os';

const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, num] of Object.entries(osConstants.signals)) {
  if (!signalNames.has(num)) signalNames.set(num, name as NodeJS.Signals);
}

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}
// Linux errnos that os.constants leaves out: a robust mutex's (prefork acceptLock 'mutex').
for (const [name, num] of [
  ['EOWNERDEAD', 130],
  ['ENOTRECOVERABLE', 131],
] as const) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

/** 'SIGKILL' for 9; null for a number that names no signal. */
export function signalName(signal: number): NodeJS.Signals | null {
  return signalNames.get(signal) ?? null;
}

/** 'EINTR' for 4; `E<n>` for a number without a name. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}
