// The sustained benchmark: many rounds on ONE server, new connections each round. A fresh server
// can be fast for a round or two and then slow down for good (issue #12: observing a server woke
// Node once per connection, and the scheduler's wake-affine heuristic then pulled every woken
// worker onto the client's CPU). The comparison (runner.ts) starts a server per round and cannot
// see that; this run reports the first round and the median of the later ones, per model, beside
// the C reference of the same design, with how often the server's threads and processes
// migrated between CPUs in each round (se.nr_migrations, /proc/<pid>/task/<tid>/sched).
// A model and its reference are paired as in the comparison: both servers kept alive, their
// rounds alternating (A B, B A, …), and × ref the median of the later rounds' own ratios, so that
// the machine's drift between rounds cancels.
import { runLoad, type LoadResult } from './loadgen';
import { ForkCost, measureForkCost } from './fork-cost';
import { BenchModel, ONE_AT_A_TIME, REFERENCE_OF } from './catalogue';
import { machineInfo, type BenchSkip, type Machine } from './report';
import { etaMs, formatDuration, Progress, roundOrder, unlessAborted } from './runner';
import { runnable, RunningServer, startModel } from './servers';
import { median } from './stats';
import { fmt, machineLine, noteLines, tableLines, type TableOptions } from './table';
import { descendantsOf, migrationsOf } from '../util/proc';

export interface SustainedConfig {
  models: BenchModel[];
  /** New persistent connections opened each round (one-at-a-time models: 1). */
  connections: number;
  size: number;
  /** Ping-pong time of each round. */
  durationMs: number;
  rounds: number;
}

/** How often the server side's threads moved between CPUs during one round. */
interface Migrations {
  /** Sum over every thread of every process of the server that ran during the round. */
  total: number;
  /** Threads and processes seen (Node's own threads included for the API's models). */
  tasks: number;
  /** The most any single one of them migrated. */
  max: number;
}

interface SustainedRound {
  model: BenchModel;
  round: number;
  connections: number;
  result: LoadResult;
  migrations: Migrations;
}

export interface SustainedReport {
  config: SustainedConfig;
  machine: Machine;
  rounds: SustainedRound[];
  skipped: BenchSkip[];
  /** Set when the run was interrupted (SIGINT): `rounds` holds the rounds completed until then. */
  interrupted?: { completedRuns: number; totalRuns: number };
}

// Samples /proc while a round runs: a thread or child that ends with its connection (thread
// workers, fork children) is gone when the round is over, so its count is read while it lives.
// Every 250 ms, and at least five times in a short round.
const sampleMs = (durationMs: number) => Math.max(20, Math.min(250, Math.floor(durationMs / 5)));

/**
 * Starts counting the migrations of the process tree under `rootPid` (every thread of every
 * process). Samples every 250 ms (sampleMs) and once when the load's `durationMs` is up (the
 * connections are still open then); the returned function stops and gives the round's migrations: for threads
 * that existed at the start, what they added; for new ones, all of theirs (a new task starts at 0).
 */
function watchMigrations(rootPid: number, durationMs: number): () => Migrations {
  const key = (pid: number, tid: number) => `${pid}/${tid}`;
  const sample = (into: Map<string, number>) => {
    for (const pid of descendantsOf(rootPid)) {
      for (const [tid, n] of migrationsOf(pid)) into.set(key(pid, tid), n);
    }
  };
  const base = new Map<string, number>();
  sample(base);
  const last = new Map<string, number>(base);
  const timer = setInterval(() => sample(last), sampleMs(durationMs));
  const atEnd = setTimeout(() => sample(last), Math.max(0, durationMs - 20));
  return () => {
    clearInterval(timer);
    clearTimeout(atEnd);
    sample(last);
    let total = 0;
    let max = 0;
    for (const [k, n] of last) {
      const added = n - (base.get(k) ?? 0);
      total += added;
      max = Math.max(max, added);
    }
    return { total, tasks: last.size, max };
  };
}

/**
 * The models in pairs: each with its C reference when both are asked for (the comparison's
 * roundOrder puts a reference right after its model), every other model alone.
 */
function pairs(models: readonly BenchModel[]): BenchModel[][] {
  const groups: BenchModel[][] = [];
  for (const model of roundOrder(models, 1)) {
    const last = groups.at(-1);
    if (last && last.length === 1 && REFERENCE_OF[last[0]] === model) last.push(model);
    else groups.push([model]);
  }
  return groups;
}

/**
 * Runs `rounds` rounds of ping-pong on one server per model, new connections each round. A model
 * and its reference run as a pair, both servers alive for all their rounds, taking turns (A B,
 * then B A, …); the pairs one after another. Takes about models × rounds × (durationMs +
 * connection set-up). Aborting `signal` stops it at once: the report holds the rounds completed
 * (`interrupted`).
 */
export async function runSustained(
  config: SustainedConfig,
  progress: Progress = () => undefined,
  signal?: AbortSignal,
): Promise<SustainedReport> {
  const started = Date.now();
  const forkCost: Array<ForkCost | null> = [await measureForkCost()];
  const { models, skipped } = runnable(config.models);
  const rounds: SustainedRound[] = [];
  const total = models.length * config.rounds;
  const aborted = () => signal?.aborted === true;
  const widthOf = (model: BenchModel) => (ONE_AT_A_TIME.includes(model) ? 1 : config.connections);
  sustained: for (const group of pairs(models)) {
    if (aborted()) break;
    const servers = new Map<BenchModel, RunningServer>();
    try {
      for (const model of group) servers.set(model, await startModel(model, widthOf(model)));
      for (let round = 1; round <= config.rounds; round++) {
        for (const model of roundOrder(group, round)) {
          if (aborted()) break sustained;
          const server = servers.get(model)!;
          const connections = widthOf(model);
          const eta = etaMs(started, rounds.length, total, config.durationMs + 300);
          progress(
            `sustained · ${model} · round ${round}/${config.rounds} · run ${rounds.length + 1}/${total} · ` +
              `${formatDuration(Date.now() - started)} elapsed · ETA ${formatDuration(eta)}`,
          );
          const stop = watchMigrations(server.pid!, config.durationMs);
          let result: LoadResult | null;
          try {
            result = await unlessAborted(
              runLoad({ mode: 'pingpong', port: server.port, connections, size: config.size, durationMs: config.durationMs }),
              signal,
            );
          } catch (e) {
            stop(); // no sampling timer outlives a failed run
            throw e;
          }
          const migrations = stop();
          if (result === null) break sustained;
          rounds.push({ model, round, connections, result, migrations });
        }
      }
    } finally {
      for (const server of servers.values()) await server.close();
    }
  }
  // The report as runner.ts assembles it (a BenchReport), deliberately in parallel: the rounds
  // come from this schedule.
  if (!aborted()) forkCost.push(await measureForkCost());
  return {
    config,
    machine: { ...machineInfo(), forkCost },
    rounds,
    skipped,
    ...(aborted() && rounds.length < total ? { interrupted: { completedRuns: rounds.length, totalRuns: total } } : {}),
  };
}

export interface SustainedSummary {
  model: BenchModel;
  connections: number;
  /** msgs/s of round 1, and the median (min–max) of rounds 2… */
  first: number;
  later: { median: number; min: number; max: number };
  /** msgs/s of each round (round number → rate), for ratios taken within a round. */
  rateOfRound: Map<number, number>;
  /** Migrations per task: round 1, and the median of rounds 2… */
  migrationsFirst: number;
  migrationsLater: number;
  errors: number;
  verifyFailures: number;
}

export function summarizeSustained(report: SustainedReport): SustainedSummary[] {
  const out: SustainedSummary[] = [];
  for (const model of new Set(report.rounds.map((r) => r.model))) {
    const rs = report.rounds.filter((r) => r.model === model).sort((a, b) => a.round - b.round);
    const perTask = (r: SustainedRound) => (r.migrations.tasks > 0 ? r.migrations.total / r.migrations.tasks : 0);
    const later = rs.slice(1);
    const rates = later.map((r) => r.result.msgsPerSec);
    out.push({
      model,
      connections: rs[0].connections,
      first: rs[0].result.msgsPerSec,
      later: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      rateOfRound: new Map(rs.map((r) => [r.round, r.result.msgsPerSec])),
      migrationsFirst: perTask(rs[0]),
      migrationsLater: median(later.map(perTask)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.resets, 0),
      verifyFailures: rs.reduce((a, r) => a + r.result.verifyFailures, 0),
    });
  }
  return out;
}

/**
 * × ref: the median, over rounds 2 and later that both ran, of the model's rate over its
 * reference's in that round (they ran back to back, on servers kept alive side by side).
 */
export function laterRatio(s: SustainedSummary, ref: SustainedSummary): number {
  const ratios = [...s.rateOfRound]
    .filter(([round]) => round > 1 && ref.rateOfRound.has(round))
    .map(([round, rate]) => rate / ref.rateOfRound.get(round)!);
  return median(ratios);
}

/** One line per model: the first round, the later rounds, their ratio, × ref, migrations. */
export function formatSustainedTable(report: SustainedReport, options: TableOptions = {}): string {
  const sums = summarizeSustained(report);
  const header = [
    'model',
    'conns',
    'round 1 msgs/s',
    'rounds 2+ median (min–max)',
    'later/first',
    '× ref',
    'migr/task 1',
    'migr/task 2+',
  ];
  const rows: string[][] = [header];
  for (const s of sums) {
    const refModel = REFERENCE_OF[s.model];
    const ref = refModel ? sums.find((x) => x.model === refModel) : undefined;
    rows.push([
      s.model,
      String(s.connections),
      fmt(s.first),
      `${fmt(s.later.median)} (${fmt(s.later.min)}–${fmt(s.later.max)})`,
      fmt(s.later.median / s.first, 2),
      ref ? fmt(laterRatio(s, ref), 2) : '',
      fmt(s.migrationsFirst, 1),
      fmt(s.migrationsLater, 1),
    ]);
  }
  const wide = options.wide === true;
  const leftOut: string[] = [];
  const lines = tableLines(rows, { left: 1, leaveOut: ['migr/task 1', 'migr/task 2+'] }, wide, leftOut);
  const c = report.config;
  const notes = [
    machineLine(report.machine),
    `sustained: ${c.rounds} rounds of ${c.durationMs} ms on one server per model, ${c.connections} new persistent connections each round (1 for one-at-a-time models), ${c.size}-byte ping-pong.`,
    "× ref: against the C reference of the same design, both servers kept alive and their rounds alternating (A B, B A, …): the median of rounds 2+' own ratios. migr/task: se.nr_migrations of the server’s threads and processes per round, divided by their number.",
    ...sums
      .filter((s) => s.errors > 0 || s.verifyFailures > 0)
      .map((s) => `warning: ${s.model}: ${s.errors} errors, ${s.verifyFailures} verification failures`),
    ...report.skipped.map((s) => `skipped ${s.model}: ${s.reason}`),
    ...(report.interrupted
      ? [`interrupted: ${report.interrupted.completedRuns} of ${report.interrupted.totalRuns} rounds completed.`]
      : []),
  ];
  return [...lines, '', ...noteLines(notes, leftOut, wide)].join('\n');
}
