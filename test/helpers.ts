// Real sockets, real /proc: helpers that observe what the servers really did.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Model, ServerOptions } from '../lib';
import { childrenOf, readStat } from '../lib/util/proc';

/** The prethread pool in the shared suites: as many threads as the widest of their loads (50 clients). */
export const PRETHREAD_WORKERS = 64;

/**
 * Options for `model`; the cluster model gets 2 workers (one per core of the CI machine), the
 * prethread model a pool as large as the suites' widest load (its clients beyond the pool would
 * wait in the backlog).
 */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  if (model === 'cluster') return { model, workers: 2, ...extra };
  if (model === 'prethread') return { model, workers: PRETHREAD_WORKERS, ...extra };
  return { model, ...extra };
}

/**
 * The shared suites run every model with its defaults, and the variants below as well: the other
 * kind of prethread's hand-off and cluster's other scheduling policy. [label, model, options].
 */
export type Variant = [string, Model, Omit<ServerOptions, 'model'>];
export const VARIANTS: Variant[] = [
  ['prethread (acceptLock main)', 'prethread', { acceptLock: 'main' }],
  ['cluster (schedulingPolicy none)', 'cluster', { schedulingPolicy: 'none' }],
];

/** Every model with its defaults, then the variants. */
export function withVariants(models: readonly Model[]): Variant[] {
  return [...models.map((m): Variant => [m, m, {}]), ...VARIANTS.filter(([, m]) => models.includes(m))];
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
