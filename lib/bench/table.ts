// The tables on stdout: ping-pong (one line per model and width, churn beside it), the UNP ch. 30
// designs (rpc and churn, CPU per connection), the exec churn; and the notes under them.
import { DESIGN_MODELS, DESIGNS, EXEC_BASELINE, EXEC_PROGRAM, REFERENCE_OF, type BenchModel } from './catalogue';
import { describeForkCost } from './fork-cost';
import { isTarget, type BenchConfig, type BenchReport, type Machine, type RunKind } from './report';
import { cpuRatio, rateRatio, summarize, type Summary } from './stats';

/** A number for a table; '—' when there is none (not measured). */
export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '—';

/** The footnote's words for the warm-up (a report written before it existed has none). */
function warmedUp(config: BenchConfig): string {
  return config.warmupMs > 0 ? `, each after ${config.warmupMs} ms of the same load unmeasured` : '';
}

/** The width the tables and notes fit by default: a terminal's, with room (issue #22). */
export const WIDTH = 120;

export interface TableOptions {
  /** Every column, however wide the lines (`--wide`); otherwise columns are left out, last first, until a table fits WIDTH. */
  wide?: boolean;
}

/**
 * The tables on stdout: ping-pong (one line per model and width), the UNP table (rpc and churn, a
 * line per model: the churn figures belong to no ping-pong width), the exec churn; then the notes.
 */
export function formatTable(report: BenchReport, options: TableOptions = {}): string {
  const wide = options.wide === true;
  const leftOut: string[] = [];
  const sums = summarize(report);
  const find = (model: string, kind: RunKind, c?: number) =>
    sums.find((s) => s.model === model && s.kind === kind && (c === undefined || s.connections === c));
  const entries = entriesOf(report.config);
  const header = [
    'model',
    'conns',
    'msgs/s (min–max)',
    '× node',
    '× ref',
    'p50 µs',
    'p99 µs',
    'procs',
    'threads',
    'RSS MB',
    'client CPU',
  ];
  const rows: string[][] = [header];
  for (const c of report.config.connections) {
    for (const model of entries) {
      const s = find(model, 'pingpong', c);
      if (!s) continue;
      const node = find('node', 'pingpong', c);
      const refModel = REFERENCE_OF[model as BenchModel];
      const ref = refModel ? find(refModel, 'pingpong', c) : undefined;
      rows.push([
        model,
        String(c),
        `${fmt(s.rate.median)} (${fmt(s.rate.min)}–${fmt(s.rate.max)})`,
        node ? fmt(rateRatio(s, node), 2) : '',
        ref ? fmt(rateRatio(s, ref), 2) : '',
        fmt(s.p50Us),
        fmt(s.p99Us),
        fmt(s.footprint.processes),
        fmt(s.footprint.threads),
        fmt(s.footprint.rssMb, 1),
        `${fmt(s.clientCpu * 100)}%`,
      ]);
    }
  }
  const lines: string[] = [];
  const add = (table: string[][], fit: Fit) => {
    if (table.length <= 1) return;
    if (lines.length > 0) lines.push('');
    lines.push(...tableLines(table, fit, wide, leftOut));
  };
  add(rows, { left: 1, leaveOut: ['client CPU', 'threads', 'p99 µs', 'RSS MB', 'procs'] });
  const designRows = designTableRows(report, sums);
  const leaveOut = [
    'w/o Node ',
    'w/o Node',
    'churn CPU × ref',
    'CPU × ref',
    'per worker',
    'churn × fork',
    'churn CPU µs/conn',
    '× fork',
  ];
  add(designRows, { left: 3, leaveOut });
  const execRows = execTableRows(report, sums);
  add(execRows, { left: 1, leaveOut: ['client CPU', 'p99 µs', 'RSS MB', 'procs'] });
  const rpcRan = sums.some((s) => s.kind === 'rpc');
  const forkCost = describeForkCost(report.machine.forkCost ?? []);
  const targets = report.config.targets ?? [];
  const notes = [
    machineLine(report.machine),
    `msgs/s: ${report.config.size}-byte ping-pong, median of ${report.config.repeat} round(s) of ${report.config.durationMs} ms${warmedUp(report.config)}; conns/s: churn with ${report.config.churnClients} clients (1 for one-at-a-time models).`,
    "× ref: against the C reference server of the same design (ref/*.c), run next to its model; × node, × ref: the median of each round's ratio. procs/threads/RSS: peaks of the server process tree.",
    ...(designRows.length > 1
      ? [
          `designs (UNP ch. 30's numbers): ${rpcRan ? `rpc/s: ${report.config.churnClients} clients each connect, ask for ${report.config.replyBytes} bytes ("${report.config.replyBytes}\\n"), read exactly them, close (verified replies per second); ` : ''}churn: connect, echo ${report.config.size} bytes, close.`,
          "CPU µs/conn: CPU time of the server's whole process tree over the run, to the ns — every live process's CPU clock (exited threads included) and the children it reaped, from the server's own wait4() books (the masters' stats().reapedCpuUs, ref-fork's report) — divided by the connections made; for the API's models the Node process hosting the server is in it; w/o Node: the same less the hosting Node process's own threads (their schedstat; the API's native models); — : not measured (a server that reaped children and keeps no books of their CPU, or a --target without --target-pid).",
          "CPU × ref: the model's CPU per connection over its C reference's; it and × fork are, as × ref, the median of each round's ratio.",
          `× fork: how many times less CPU per connection than fork's; fork() on this machine, measured by this run: ${forkCost}.`,
          'per worker: connections each pool worker took over the rounds (stats().perWorker), fewest–most (workers); — without a pool, and for the C references (they keep no count).',
        ]
      : []),
    ...targets.map(
      (t) =>
        `${t.name}: a server already running (--target), measured by the same client (its rpc replies counted, not checked)${t.pid !== undefined ? `; its process tree from pid ${t.pid} (--target-pid)` : '; no --target-pid: its CPU, processes and memory are not measured'}.`,
    ),
    ...sums
      .filter((s) => s.reapedTicksMs > 0 && (s.kind === 'churn' || s.kind === 'rpc')) // the kinds with a CPU column
      .map(
        (s) =>
          `${s.model} ${s.kind}: reaped children whose CPU time only /proc's cutime + cstime kept, in 10 ms ticks — ${fmt(s.reapedTicksMs)} ms over its rounds — so no CPU per connection is given.`,
      ),
    ...(execRows.length > 1
      ? [
          `exec conns/s: ${report.config.churnClients} clients each connect and read until ${EXEC_PROGRAM}, run for the connection, has exited and the connection is closed; × ${EXEC_BASELINE}: against socat TCP-LISTEN,fork EXEC:${EXEC_PROGRAM} in the same run.`,
        ]
      : []),
    ...sums
      .filter((s) => s.errors > 0 || s.verifyFailures > 0)
      .map(
        (s) => `warning: ${s.model} ${s.kind} ${s.connections}: ${s.errors} errors, ${s.verifyFailures} verification failures`,
      ),
    ...report.skipped.map((s) => `skipped ${s.model}: ${s.reason}`),
    ...(report.interrupted
      ? [
          `interrupted: ${report.interrupted.completedRuns} of ${report.interrupted.totalRuns} runs completed; medians are of those.`,
        ]
      : []),
  ];
  return [...lines, '', ...noteLines(notes, leftOut, wide)].join('\n');
}

/** The notes under the tables, then the columns left out to fit; each wrapped to WIDTH unless `wide`. */
export function noteLines(notes: string[], leftOut: string[], wide: boolean): string[] {
  const all = [
    ...notes,
    ...(leftOut.length > 0 ? [`left out to fit ${WIDTH} columns (--wide shows them): ${[...new Set(leftOut)].join(', ')}.`] : []),
  ];
  return wide ? all : all.flatMap((n) => wrap(n, WIDTH));
}

/** A note in lines of at most `width` columns (a word longer than that stays whole), continued indented. */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line === '' ? word : `${line} ${word}`;
    if (next.length <= width || line.trim() === '') line = next;
    else {
      out.push(line);
      line = `  ${word}`;
    }
  }
  out.push(line);
  return out;
}

/** The rows of a report, in order: its models, then its --targets. */
function entriesOf(config: BenchConfig): string[] {
  return [...config.models, ...(config.targets ?? []).map((t) => t.name)];
}

/** 'machine: 2 CPUs, Linux 6.18.0, Node v20.20.2, 2026-11-26 10:00 UTC; fork(): 0.14 ms CPU, …'. */
export function machineLine(m: Machine): string {
  const when = m.date.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  return `machine: ${m.cpus} CPUs, Linux ${m.kernel}, Node ${m.node}, ${when}; fork(): ${describeForkCost(m.forkCost ?? [])} (the fork model's master program, at the run's start and end).`;
}

/** How a table is fitted: its first `left` columns are names (left-aligned); `leaveOut`: what may go, first first. */
export interface Fit {
  left: number;
  leaveOut: string[];
}

/**
 * The table's lines: a column of figures with nothing in it (every cell '' or '—') is not printed, and unless
 * `wide` the columns of `fit.leaveOut` go, in that order, until the lines fit WIDTH (their names are
 * added to `left`). Names are left-aligned, the rest (numbers) right-aligned.
 */
export function tableLines(rows: string[][], fit: Fit, wide: boolean, left: string[]): string[] {
  const header = rows[0];
  let keep = header.map((_, i) => i).filter((i) => i < fit.left || rows.slice(1).some((r) => r[i] !== '' && r[i] !== '—'));
  const widthOf = (i: number) => Math.max(...rows.map((r) => r[i].length));
  const total = () => keep.reduce((n, i) => n + widthOf(i), 0) + 2 * (keep.length - 1);
  for (const name of fit.leaveOut) {
    if (wide || total() <= WIDTH) break;
    const i = header.indexOf(name);
    if (!keep.includes(i)) continue;
    keep = keep.filter((k) => k !== i);
    left.push(name.trim());
  }
  const lines = rows.map((r) =>
    keep
      .map((i) => (i < fit.left ? r[i].padEnd(widthOf(i)) : r[i].padStart(widthOf(i))))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, keep.map((i) => '-'.repeat(widthOf(i))).join('  '));
  return lines;
}

// The UNP table: one line per design, its rpc and churn rates and the server's CPU per connection.
function designTableRows(report: BenchReport, sums: Summary[]): string[][] {
  const header = [
    'UNP',
    'model',
    'design',
    'rpc/s (min–max)',
    '× ref',
    'CPU µs/conn',
    'w/o Node',
    'CPU × ref',
    '× fork',
    'per worker',
    'churn conns/s',
    'churn CPU µs/conn',
    'w/o Node ',
    'churn CPU × ref',
    'churn × fork',
  ];
  const rows: string[][] = [header];
  const find = (model: string, kind: RunKind) => sums.find((s) => s.model === model && s.kind === kind);
  const ordered: string[] = [
    ...DESIGN_MODELS.filter((m) => report.config.models.includes(m)),
    ...report.config.models.filter((m) => !DESIGN_MODELS.includes(m)),
    ...(report.config.targets ?? []).map((t) => t.name),
  ];
  const forkRpc = find('fork', 'rpc');
  const forkChurn = find('fork', 'churn');
  // Both CPU ratios as the rates' (cpuRatio): the median of the rounds' own ratios.
  const less = (base: Summary | undefined, s: Summary | undefined) => (base && s ? fmt(cpuRatio(base, s), 1) : '');
  const more = (s: Summary | undefined, base: Summary | undefined) => (s && base ? fmt(cpuRatio(s, base), 2) : '');
  const spread = (s: Summary | undefined) =>
    s?.perWorker ? `${fmt(Math.min(...s.perWorker))}–${fmt(Math.max(...s.perWorker))} (${s.perWorker.length})` : '—';
  for (const model of ordered) {
    const rpc = find(model, 'rpc');
    const churn = find(model, 'churn');
    if (!rpc && !churn) continue;
    const refModel = REFERENCE_OF[model as BenchModel];
    const ref = refModel ? find(refModel, 'rpc') : undefined;
    const refChurn = refModel ? find(refModel, 'churn') : undefined;
    const d = DESIGNS[model as BenchModel];
    rows.push([
      d?.unp ?? '—',
      model,
      d?.design ?? (isTarget(model, report.config) ? 'already running (--target)' : ''),
      rpc ? `${fmt(rpc.rate.median)} (${fmt(rpc.rate.min)}–${fmt(rpc.rate.max)})` : '',
      rpc && ref ? fmt(rateRatio(rpc, ref), 2) : '',
      rpc ? fmt(rpc.cpuPerConnUs.median) : '',
      rpc && Number.isFinite(rpc.serverOnlyCpuPerConnUs) ? fmt(rpc.serverOnlyCpuPerConnUs) : '—',
      more(rpc, ref),
      less(forkRpc, rpc),
      spread(rpc ?? churn),
      churn ? fmt(churn.rate.median) : '',
      churn ? fmt(churn.cpuPerConnUs.median) : '',
      churn ? (Number.isFinite(churn.serverOnlyCpuPerConnUs) ? fmt(churn.serverOnlyCpuPerConnUs) : '—') : '',
      more(churn, refChurn),
      less(forkChurn, churn),
    ]);
  }
  return rows;
}

// The exec churn: one line per program-per-connection server, held against socat's.
function execTableRows(report: BenchReport, sums: Summary[]): string[][] {
  const header = [
    'model',
    'clients',
    'exec conns/s (min–max)',
    `× ${EXEC_BASELINE}`,
    'p50 µs',
    'p99 µs',
    'procs',
    'RSS MB',
    'client CPU',
  ];
  const rows: string[][] = [header];
  const baseline = sums.find((s) => s.model === EXEC_BASELINE && s.kind === 'exec');
  for (const model of report.config.models) {
    const s = sums.find((x) => x.model === model && x.kind === 'exec');
    if (!s) continue;
    rows.push([
      model,
      String(s.connections),
      `${fmt(s.rate.median)} (${fmt(s.rate.min)}–${fmt(s.rate.max)})`,
      baseline ? fmt(rateRatio(s, baseline), 2) : '',
      fmt(s.p50Us),
      fmt(s.p99Us),
      String(s.footprint.processes),
      fmt(s.footprint.rssMb, 1),
      `${fmt(s.clientCpu * 100)}%`,
    ]);
  }
  return rows;
}
