// `posix-servers bench`: flags → BenchConfig, a progress line on stderr (rounds, runs, ETA), the
// table on stdout, raw rounds to --json (a file, or stdout), a chart to --svg. SIGINT stops it
// and writes what was measured until then.
import { writeFileSync } from 'node:fs';
import {
  BENCH_MODELS,
  BenchConfig,
  BenchModel,
  BenchProgress,
  BenchReport,
  formatTable,
  renderSvg,
  runBench,
} from '../bench/runner';
import { Command, commandHelp, integer, list, parseCommand } from './flags';

export const DEFAULT_BENCH: BenchConfig = {
  models: ['fork', 'thread', 'iterative', 'node', 'cluster', 'ref-fork', 'ref-thread', 'ref-iterative', 'ref-epoll', 'socat'],
  connections: [1, 50],
  size: 64,
  durationMs: 1000,
  repeat: 3,
  churnClients: 4,
};

function seconds(text: string, flag: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0 || s > 600) throw new Error(`${flag} must be seconds in (0, 600], got '${text}'`);
  return Math.round(s * 1000);
}

/** `posix-servers bench`: its flags, in one table. */
export const BENCH: Command = {
  name: 'bench',
  summary: 'every model under the same native load, side by side, against Node and the C references',
  flags: [
    {
      name: 'models',
      value: 'LIST',
      default: DEFAULT_BENCH.models.join(','),
      help: `comma-separated, of ${BENCH_MODELS.join(', ')}`,
      parse: (text, flag) => {
        const models = text.split(',');
        for (const m of models) {
          if (!(BENCH_MODELS as readonly string[]).includes(m)) {
            throw new Error(`${flag}: unknown model '${m}' (known: ${BENCH_MODELS.join(', ')})`);
          }
        }
        return models as BenchModel[];
      },
    },
    {
      name: 'connections',
      value: 'LIST',
      default: DEFAULT_BENCH.connections.join(','),
      help: 'ping-pong widths: concurrent connections, comma-separated',
      parse: list(integer(1, 10000)),
    },
    { name: 'size', value: 'BYTES', default: String(DEFAULT_BENCH.size), help: 'bytes per message', parse: integer(1, 1 << 20) },
    {
      name: 'duration',
      value: 'SECONDS',
      default: String(DEFAULT_BENCH.durationMs / 1000),
      help: 'of each run',
      parse: seconds,
    },
    {
      name: 'repeat',
      value: 'N',
      default: String(DEFAULT_BENCH.repeat),
      help: 'rounds (medians over them)',
      parse: integer(1, 100),
    },
    {
      name: 'churn-clients',
      value: 'N',
      default: String(DEFAULT_BENCH.churnClients),
      help: 'concurrent clients of the connect-echo-close run',
      parse: integer(1, 1000),
    },
    {
      name: 'json',
      value: 'FILE',
      whenOmitted: '-',
      help: 'write every raw round as JSON to FILE; without FILE (or -) to stdout, the table then to stderr',
    },
    { name: 'svg', value: 'FILE', help: 'write a bar chart' },
  ],
  notes: [
    'Each model runs in a process of its own, in alternating rounds. Ctrl-C stops the benchmark and',
    'writes what was measured until then (the report says it was interrupted); exit code 130.',
  ],
};

export interface BenchArgs {
  config: BenchConfig;
  /** A file, or '-' for stdout. */
  json?: string;
  svg?: string;
}

/** Flags → BenchArgs; throws a UsageError naming the flag (null: --help). */
export function parseBenchArgs(argv: string[]): BenchArgs | null {
  const { help, values: v } = parseCommand(BENCH, argv);
  if (help) return null;
  const config: BenchConfig = {
    models: v.models as BenchModel[],
    connections: v.connections as number[],
    size: v.size as number,
    durationMs: v.duration as number,
    repeat: v.repeat as number,
    churnClients: v['churn-clients'] as number,
  };
  const out: BenchArgs = { config };
  if (typeof v.json === 'string') out.json = v.json;
  if (typeof v.svg === 'string') out.svg = v.svg;
  return out;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export function progressLine(p: BenchProgress): string {
  return (
    `round ${p.round}/${p.repeat} · ${p.model} · run ${Math.min(p.done + 1, p.total)}/${p.total} · ` +
    `${duration(p.elapsedMs)} elapsed · ETA ${duration(p.etaMs)}`
  );
}

function write(report: BenchReport, args: BenchArgs): void {
  const table = `${formatTable(report)}\n`;
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (args.json === '-') {
    process.stderr.write(table);
    process.stdout.write(json);
  } else {
    process.stdout.write(table);
    if (args.json) writeFileSync(args.json, json);
  }
  if (args.svg) writeFileSync(args.svg, renderSvg(report));
}

/** Returns the exit code: 0, or 130 when interrupted by SIGINT (after writing what it measured). */
export async function benchMain(argv: string[]): Promise<number> {
  const args = parseBenchArgs(argv);
  if (args === null) {
    process.stdout.write(commandHelp(BENCH));
    return 0;
  }
  const tty = process.stderr.isTTY;
  const interrupt = new AbortController();
  // The first Ctrl-C stops the benchmark and writes the report; a second one does not wait.
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130);
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write('posix-servers bench: interrupted; writing what was measured so far\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  let report: BenchReport;
  try {
    report = await runBench(args.config, {
      signal: interrupt.signal,
      progress: (p) => {
        if (interrupt.signal.aborted) return;
        if (tty) process.stderr.write(`\r\x1b[K${progressLine(p)}`);
        else process.stderr.write(`${progressLine(p)}\n`);
      },
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (tty) process.stderr.write('\r\x1b[K');
  write(report, args);
  return report.interrupted ? 130 : 0;
}
