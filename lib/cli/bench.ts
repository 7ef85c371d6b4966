// `posix-servers bench`: flags → BenchConfig, a progress line on stderr, the table on stdout,
// raw rounds to --json, a chart to --svg. With --sustained: many rounds on one server per model
// (bench/sustained.ts) instead of the comparison.
import { writeFileSync } from 'node:fs';
import { BENCH_MODELS, BenchConfig, BenchModel, formatTable, renderSvg, runBench } from '../bench/runner';
import { formatSustainedTable, runSustained, SustainedConfig } from '../bench/sustained';

export const DEFAULT_BENCH: BenchConfig = {
  models: [
    'fork',
    'thread',
    'iterative',
    'prefork',
    'reuseport',
    'node',
    'cluster',
    'ref-fork',
    'ref-thread',
    'ref-iterative',
    'ref-epoll',
    'ref-prefork',
    'ref-reuseport',
    'socat',
  ],
  connections: [1, 50],
  size: 64,
  durationMs: 1000,
  repeat: 3,
  churnClients: 4,
};

/** --sustained: the defaults reproduce issue #12's run (50 new connections × 2 s, 10 rounds). */
export const DEFAULT_SUSTAINED: SustainedConfig = {
  models: ['fork', 'thread', 'node', 'cluster', 'ref-fork', 'ref-thread', 'ref-epoll'],
  connections: 50,
  size: 64,
  durationMs: 2000,
  rounds: 10,
};

export interface BenchArgs {
  config: BenchConfig;
  /** Set by --sustained: run this instead of the comparison. */
  sustained?: SustainedConfig;
  json?: string;
  svg?: string;
}

function positiveInt(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new Error(`${flag} must be an integer from 1 to ${max}, got '${text}'`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const config: BenchConfig = {
    ...DEFAULT_BENCH,
    models: [...DEFAULT_BENCH.models],
    connections: [...DEFAULT_BENCH.connections],
  };
  const out: BenchArgs = { config };
  const given = new Set<string>();
  let sustained = false;
  let rounds = DEFAULT_SUSTAINED.rounds;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? (argv[i].split(/=(.*)/s, 2) as [string, string]) : [argv[i], undefined];
    given.add(flag);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--models': {
        const models = value().split(',');
        for (const m of models) {
          if (!(BENCH_MODELS as readonly string[]).includes(m)) {
            throw new Error(`--models: unknown model '${m}' (known: ${BENCH_MODELS.join(', ')})`);
          }
        }
        config.models = models as BenchModel[];
        break;
      }
      case '--connections':
        config.connections = value()
          .split(',')
          .map((c) => positiveInt('--connections', c, 10000));
        break;
      case '--size':
        config.size = positiveInt('--size', value(), 1 << 20);
        break;
      case '--duration': {
        const v = value();
        const seconds = Number(v);
        if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
          throw new Error(`--duration must be seconds in (0, 600], got '${v}'`);
        config.durationMs = Math.round(seconds * 1000);
        break;
      }
      case '--repeat':
        config.repeat = positiveInt('--repeat', value(), 100);
        break;
      case '--churn-clients':
        config.churnClients = positiveInt('--churn-clients', value(), 1000);
        break;
      case '--sustained':
        if (inline !== undefined) throw new Error(`--sustained takes no value`);
        sustained = true;
        break;
      case '--rounds':
        rounds = positiveInt('--rounds', value(), 1000);
        if (rounds < 2) throw new Error(`--rounds must be at least 2 (the first round and later ones), got '${rounds}'`);
        break;
      case '--json':
        out.json = value();
        break;
      case '--svg':
        out.svg = value();
        break;
      default:
        throw new Error(`unknown flag '${argv[i]}' for bench`);
    }
  }
  if (!sustained) {
    if (given.has('--rounds')) throw new Error(`--rounds applies only with --sustained`);
    return out;
  }
  for (const flag of ['--repeat', '--churn-clients', '--svg']) {
    if (given.has(flag)) throw new Error(`${flag} does not apply with --sustained`);
  }
  if (given.has('--connections') && config.connections.length !== 1) {
    throw new Error(`--connections takes one number with --sustained (new connections per round)`);
  }
  out.sustained = {
    models: given.has('--models') ? config.models : [...DEFAULT_SUSTAINED.models],
    connections: given.has('--connections') ? config.connections[0] : DEFAULT_SUSTAINED.connections,
    size: config.size,
    durationMs: given.has('--duration') ? config.durationMs : DEFAULT_SUSTAINED.durationMs,
    rounds,
  };
  return out;
}

export const BENCH_USAGE = `posix-servers bench [--models ${BENCH_MODELS.join(',')}]
                    [--connections 1,50] [--size 64] [--duration 1] [--repeat 3]
                    [--churn-clients 4] [--json FILE] [--svg FILE]
  posix-servers bench --sustained [--rounds 10] [--connections 50] [--duration 2] [--models …]
                    [--size 64] [--json FILE]`;

/** Returns the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (e) {
    process.stderr.write(`posix-servers: ${(e as Error).message}\n`);
    return 1;
  }
  const tty = process.stderr.isTTY;
  const progress = (text: string) => {
    if (tty) process.stderr.write(`\r\x1b[K${text}`);
    else process.stderr.write(`${text}\n`);
  };
  if (args.sustained) {
    const report = await runSustained(args.sustained, progress);
    if (tty) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${formatSustainedTable(report)}\n`);
    if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const report = await runBench(args.config, progress);
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(`${formatTable(report)}\n`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
  if (args.svg) writeFileSync(args.svg, renderSvg(report));
  return 0;
}
