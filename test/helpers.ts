// Real sockets, real /proc: helpers that observe what the servers really did.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Model, ServerOptions } from '../lib';
import { childrenOf, readStat } from '../lib/util/proc';

/**
 * The pool size each pool model gets in the shared suites: cluster and reuseport 2 (one per core
 * of the CI machine; each worker serves many clients); prefork 4, because a prefork worker serves
 * one client at a time and the suites hold up to 3 clients while others come and go.
 */
export const SUITE_WORKERS: Partial<Record<Model, number>> = { cluster: 2, prefork: 4, reuseport: 2 };

/** Options for `model`, with its pool size (SUITE_WORKERS) unless `extra` names one. */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  const workers = SUITE_WORKERS[model];
  return workers === undefined ? { model, ...extra } : { model, workers, ...extra };
}

export const isPoolModel = (model: Model): model is 'prefork' | 'reuseport' => model === 'prefork' || model === 'reuseport';
/** The models whose server.pid is a master process of their own (fork + execve). */
export const isProcessModel = (model: Model): boolean => model === 'fork' || isPoolModel(model);

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
