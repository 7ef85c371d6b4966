// Real sockets, real /proc: helpers that observe what the servers really did.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Model, ServerOptions } from '../lib';
import { childrenOf, readStat } from '../lib/util/proc';

/** Options for `model`; the cluster model gets 2 workers (one per core of the CI machine). */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  return model === 'cluster' ? { model, workers: 2, ...extra } : { model, ...extra };
}

// The client, exchange() and the waiting helpers are the labs' own kit: one client for labs,
// tests and `posix-servers check`.
export { Client, exchange, portOf as port, sleep, waitFor } from '../lib/labs/kit';

export const random = (n: number) => randomBytes(n);

/** Open descriptors of this process (the readdir's own descriptor is counted every time alike). */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Threads of this process. */
export function taskCount(): number {
  return readdirSync('/proc/self/task').length;
}

export { childrenOf, zombiesOf } from '../lib/util/proc';

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** What /proc says about this process's resources, to compare before and after a server. */
export function snapshot() {
  return { fds: fdCount(), tasks: taskCount(), children: childrenOf(process.pid).map((c) => c.pid) };
}
