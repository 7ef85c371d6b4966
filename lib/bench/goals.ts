// The benchmark's goals (issue #19's performance targets), checked against a report: what
// `npm run bench:doc` writes into BENCHMARKS.md under the tables, so that a rerun on another day
// restates them from its own figures instead of leaving yesterday's sentence behind.
import { BenchModel, REFERENCE_OF } from './catalogue';
import type { BenchReport } from './report';
import { cpuRatio, rateRatio, summarize, type Summary } from './stats';
import { fmt } from './table';
import { type SustainedReport, summarizeSustained, laterRatio } from './sustained';

export interface Goal {
  goal: string;
  /** What the report shows, in words and figures. */
  measured: string;
  /** null: the report holds nothing to decide it. */
  met: boolean | null;
}

/** The pools of processes and threads, each set up once (UNP designs 2–5, 7–8, and reuseport). */
const POOLS: readonly BenchModel[] = [
  'prefork',
  'prefork-flock',
  'prefork-mutex',
  'prefork-pass',
  'prethread',
  'prethread-main',
  'reuseport',
];

/** From the designs run (--workload pingpong,churn,rpc): the pools against fork, each model against its reference. */
export function designGoals(report: BenchReport): Goal[] {
  const sums = summarize(report);
  const find = (model: string, kind: 'rpc' | 'churn') =>
    sums.find((s) => s.model === model && s.kind === kind && Number.isFinite(s.cpuPerConnUs.median));
  // As the tables: each CPU ratio the median of the rounds' own ratios (cpuRatio).
  const goals: Goal[] = [];
  const fork = find('fork', 'rpc');
  const pools = POOLS.map((m) => find(m, 'rpc')).filter((s): s is Summary => s !== undefined);
  if (fork && pools.length > 0) {
    const factors = pools.map((s) => ({ m: s.model, x: cpuRatio(fork, s) }));
    const least = factors.reduce((a, b) => (b.x < a.x ? b : a));
    goals.push({
      goal: 'every pool ≥ 5× less CPU per connection than fork (rpc)',
      measured: `${fmt(Math.min(...factors.map((f) => f.x)), 1)}–${fmt(Math.max(...factors.map((f) => f.x)), 1)}× (least: ${least.m}); fork ${fmt(fork.cpuPerConnUs.median)} µs/conn`,
      met: factors.every((f) => f.x >= 5),
    });
  }
  for (const kind of ['rpc', 'churn'] as const) {
    const ratios = Object.entries(REFERENCE_OF)
      .map(([model, ref]) => {
        const s = find(model, kind);
        const base = find(ref!, kind);
        return { model, x: s && base ? cpuRatio(s, base) : NaN };
      })
      .filter((r) => Number.isFinite(r.x));
    if (ratios.length === 0) continue;
    const worst = ratios.reduce((a, b) => (b.x > a.x ? b : a));
    goals.push({
      goal: `every model's CPU per connection ≤ 1.1× its C reference's (${kind})`,
      measured: `${fmt(Math.min(...ratios.map((r) => r.x)), 2)}–${fmt(worst.x, 2)}× (highest: ${worst.model})`,
      met: ratios.every((r) => r.x <= 1.1),
    });
  }
  return goals;
}

/**
 * From the comparison run (ping-pong at 1 and 50 connections, churn): issue #24's goals for the
 * uring model — at parity with its C reference everywhere, and ahead of epoll where there is
 * something to batch (50 connections, churn). Each ratio is the paired one of the table (× ref):
 * the median of the rounds' own ratios.
 */
export function uringGoals(report: BenchReport): Goal[] {
  const sums = summarize(report);
  const find = (model: string, kind: 'pingpong' | 'churn', connections?: number): Summary | undefined =>
    sums.find((s) => s.model === model && s.kind === kind && (connections === undefined || s.connections === connections));
  const cases = [
    { label: 'ping-pong at 1', kind: 'pingpong', connections: 1 },
    { label: 'ping-pong at 50', kind: 'pingpong', connections: 50 },
    { label: 'churn', kind: 'churn' },
  ] as const;
  const versus = (base: string, labels: readonly string[], floor: number, goal: string): Goal | null => {
    const ratios = cases
      .filter((c) => labels.includes(c.label))
      .map((c) => {
        const a = find('uring', c.kind, 'connections' in c ? c.connections : undefined);
        const b = find(base, c.kind, 'connections' in c ? c.connections : undefined);
        return { label: c.label, x: a && b ? rateRatio(a, b) : NaN };
      });
    if (!ratios.some((r) => Number.isFinite(r.x))) return null;
    return {
      goal,
      measured: ratios.map((r) => `${r.label} ${fmt(r.x, 2)}×`).join(', '),
      met: ratios.every((r) => Number.isFinite(r.x)) ? ratios.every((r) => r.x >= floor) : null,
    };
  };
  return [
    versus(
      'ref-uring',
      ['ping-pong at 1', 'ping-pong at 50', 'churn'],
      0.95,
      'uring ≥ 0.95× ref-uring on ping-pong at 1 and 50 connections and on churn (paired rounds)',
    ),
    versus('epoll', ['ping-pong at 50', 'churn'], 1.05, 'uring ≥ 1.05× epoll at 50 connections and on churn (same rounds)'),
  ].filter((g): g is Goal => g !== null);
}

/** From the sustained run: every native model's later rounds against its reference's, paired. */
export function sustainedGoals(report: SustainedReport): Goal[] {
  const sums = summarizeSustained(report);
  const ratios = sums
    .map((s) => {
      const ref = sums.find((r) => r.model === REFERENCE_OF[s.model]);
      return ref ? { model: s.model, x: laterRatio(s, ref) } : null;
    })
    .filter((r): r is { model: BenchModel; x: number } => r !== null && Number.isFinite(r.x));
  if (ratios.length === 0) return [];
  return [
    {
      goal: 'every native model ≥ 0.95× its C reference in the later rounds (--sustained, paired)',
      measured: ratios.map((r) => `${r.model} ${fmt(r.x, 2)}×`).join(', '),
      met: ratios.every((r) => r.x >= 0.95),
    },
  ];
}

/** A Markdown table of the goals. */
export function formatGoals(goals: readonly Goal[]): string {
  const rows = goals.map((g) => `| ${g.goal} | ${g.measured} | ${g.met === null ? '—' : g.met ? 'met' : '**not met**'} |`);
  return ['| goal | measured | |', '| --- | --- | --- |', ...rows].join('\n');
}
