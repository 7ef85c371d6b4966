// Real sockets, real /proc: helpers that observe what the servers really did.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Model, ServerOptions } from '../lib';
import type { Lab, LabResult } from '../lib/labs/types';
import { childrenOf, readStat } from '../lib/util/proc';

/**
 * The pool size each pool model gets in the shared suites: cluster and reuseport 2 (one per core
 * of the CI machine; each worker serves many clients); prefork and prethread 4, because a prefork
 * worker or a prethread thread serves one client at a time and the suites hold up to 3 clients
 * while others come and go.
 */
export const SUITE_WORKERS: Partial<Record<Model, number>> = { cluster: 2, prefork: 4, reuseport: 2, prethread: 4 };

/** Options for `model`, with its pool size (SUITE_WORKERS) unless `extra` names one. */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  const workers = SUITE_WORKERS[model];
  return workers === undefined ? { model, ...extra } : { model, workers, ...extra };
}

export const isPoolModel = (model: Model): model is 'prefork' | 'reuseport' => model === 'prefork' || model === 'reuseport';
/** The models that count per pool member (stats().perWorker, `worker` on events): the process pools and prethread. */
export const hasPool = (model: Model): boolean => isPoolModel(model) || model === 'prethread';
/** Models whose members serve one client at a time: a load of N clients at once needs N members. */
export const isOneClientPerMember = (model: Model): boolean => model === 'prefork' || model === 'prethread';

/**
 * The shared suites run every model with its defaults, and the variants below as well: the other
 * kind of prethread's hand-off and cluster's other scheduling policy. [label, model, options].
 */
export type Variant = [string, Model, Omit<ServerOptions, 'model'>];
export const VARIANTS: Variant[] = [
  ['prethread (acceptLock main)', 'prethread', { acceptLock: 'main' }],
  ['cluster (schedulingPolicy none)', 'cluster', { schedulingPolicy: 'none' }],
];

/** Every model with its defaults, then the variants of those models. */
export function withVariants(models: readonly Model[]): Variant[] {
  return [...models.map((m): Variant => [m, m, {}]), ...VARIANTS.filter(([, m]) => models.includes(m))];
}
/** The models whose server.pid is a master process of their own (fork + execve). */
export const isProcessModel = (model: Model): boolean => model === 'fork' || isPoolModel(model);

// The client, exchange() and the waiting helpers are the labs' own kit: one client for labs,
// tests and `posix-servers check`.
export { Client, exchange, portOf as port, sleep, waitFor } from '../lib/labs/kit';

export const random = (n: number) => randomBytes(n);

/**
 * The first n bytes of RFC 864's stream (line k: the 72 printable characters from character k,
 * CR LF): what chargen sends and what the rpc handler and the C references reply.
 */
export function chargenPrefix(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const line = Math.floor(i / 74) % 95;
    const col = i % 74;
    out[i] = col < 72 ? 0x20 + ((line + col) % 95) : col === 72 ? 0x0d : 0x0a;
  }
  return out;
}

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

/**
 * Runs `lab` as `posix-servers lab` does, collecting its lines; afterwards no child process of ours
 * may be left (its servers and C programs are gone). No wall-clock assertion: jest's timeout bounds it.
 */
export async function runLabIn(lab: Lab, lang: 'en' | 'zh' = 'en'): Promise<{ result: LabResult; lines: string[] }> {
  const lines: string[] = [];
  const result = await lab.run((l) => lines.push(l), lang);
  expect(childrenOf(process.pid).filter((c) => c.state !== 'Z')).toEqual([]);
  return { result, lines };
}
