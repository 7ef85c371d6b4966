// The statistics of a run: each (model, kind, width) over its rounds — medians, spreads, CPU per
// connection — and ratios taken round by round.
import type { BenchReport, BenchRound, RunKind } from './report';
import type { ServerFootprint } from './footprint';

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Summary {
  /** A model, or a --target's HOST:PORT. */
  model: string;
  kind: RunKind;
  connections: number;
  /** msgs/s for pingpong, conns/s for churn and exec, verified replies/s for rpc: median, min, max over rounds. */
  rate: { median: number; min: number; max: number };
  /** The same rate, round by round (round number → rate), for ratios taken within a round. */
  rateOfRound: Map<number, number>;
  /** Server CPU time per connection in µs (serverCpuMs / connections): median, min, max over rounds. */
  cpuPerConnUs: { median: number; min: number; max: number };
  /** The same, round by round (round number → µs; rounds without a figure left out), for ratios taken within a round. */
  cpuOfRound: Map<number, number>;
  /** The same without the hosting Node process's own threads (median; NaN when not measured). */
  serverOnlyCpuPerConnUs: number;
  /** Connections per pool worker, summed over the rounds; absent without a pool's stats. */
  perWorker?: number[];
  /** Without the server's own books: its reaped children's ticks (ms) over the rounds, never divided per connection. */
  reapedTicksMs: number;
  p50Us: number;
  p99Us: number;
  errors: number;
  verifyFailures: number;
  footprint: ServerFootprint;
  /** Load generator CPU as a share of one core over the run (median). */
  clientCpu: number;
}

/** Each (model, kind, width) over the rounds: medians, spreads, CPU per connection. */
export function summarize(report: BenchReport): Summary[] {
  const groups = new Map<string, BenchRound[]>();
  for (const r of report.rounds) {
    const key = `${r.model}|${r.kind}|${r.connections}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Summary[] = [];
  for (const rs of groups.values()) {
    // exec: a cycle completes at the program's EOF; conns/s counts cycles begun, as churn does.
    const rate = (r: BenchRound) => (r.kind === 'pingpong' || r.kind === 'rpc' ? r.result.msgsPerSec : r.result.connsPerSec);
    const rates = rs.map(rate);
    // null (or absent, in a report written before CPU was measured): not measured, NaN, shown '—'.
    const cpus = rs.map((r) => (r.result.connects > 0 ? ((r.serverCpuMs ?? NaN) * 1000) / r.result.connects : NaN));
    const pools = rs.map((r) => r.perWorker).filter((w): w is number[] => w !== undefined && w.length > 0);
    const perWorker = pools.length > 0 ? pools[0].map((_, i) => pools.reduce((n, w) => n + (w[i] ?? 0), 0)) : undefined;
    out.push({
      model: rs[0].model,
      kind: rs[0].kind,
      connections: rs[0].connections,
      rate: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      rateOfRound: new Map(rs.map((r) => [r.round, rate(r)])),
      cpuPerConnUs: { median: median(cpus), min: Math.min(...cpus), max: Math.max(...cpus) },
      cpuOfRound: new Map(rs.map((r, i) => [r.round, cpus[i]] as [number, number]).filter(([, c]) => Number.isFinite(c))),
      serverOnlyCpuPerConnUs: median(
        rs.map((r) =>
          r.hostCpuMs !== undefined && r.result.connects > 0
            ? (((r.serverCpuMs ?? NaN) - r.hostCpuMs) * 1000) / r.result.connects
            : NaN,
        ),
      ),
      ...(perWorker ? { perWorker } : {}),
      reapedTicksMs: rs.reduce((a, r) => a + (r.reapedTicksMs ?? 0), 0),
      p50Us: median(rs.map((r) => r.result.latencyUs.p50)),
      p99Us: median(rs.map((r) => r.result.latencyUs.p99)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.resets, 0),
      verifyFailures: rs.reduce((a, r) => a + r.result.verifyFailures, 0),
      footprint: {
        processes: Math.max(...rs.map((r) => r.footprint.processes)),
        threads: Math.max(...rs.map((r) => r.footprint.threads)),
        rssMb: Math.max(...rs.map((r) => r.footprint.rssMb)),
      },
      clientCpu: median(rs.map((r) => (r.result.cpu.userMs + r.result.cpu.systemMs) / r.result.durationMs)),
    });
  }
  return out;
}

/**
 * How many times `base`'s rate `s`'s is: the median, over the rounds both ran in, of that round's
 * ratio. A model runs next to its reference (`roundOrder`), so a round's ratio cancels what the
 * machine did in that round, where a ratio of two medians would divide rates of different rounds.
 * Without a round in common (an interrupted run), the ratio of the medians.
 */
export function rateRatio(s: Summary, base: Summary): number {
  const ratios = [...s.rateOfRound]
    .filter(([round]) => base.rateOfRound.has(round))
    .map(([round, rate]) => rate / base.rateOfRound.get(round)!);
  return ratios.length > 0 ? median(ratios) : s.rate.median / base.rate.median;
}

/**
 * How many times `base`'s CPU per connection `s`'s is, taken as the rates are (`rateRatio`): the
 * median, over the rounds both have a figure in, of that round's ratio. A server's CPU per
 * connection drifts with the machine from round to round as its rate does, and a model runs next
 * to its reference, so a round's ratio cancels the drift. Without a round in common, the ratio of
 * the medians.
 */
export function cpuRatio(s: Summary, base: Summary): number {
  const ratios = [...s.cpuOfRound]
    .filter(([round]) => base.cpuOfRound.has(round))
    .map(([round, cpu]) => cpu / base.cpuOfRound.get(round)!);
  return ratios.length > 0 ? median(ratios) : s.cpuPerConnUs.median / base.cpuPerConnUs.median;
}
