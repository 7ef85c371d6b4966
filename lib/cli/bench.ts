// `posix-servers bench`: flags → BenchConfig, a progress line on stderr, the table on stdout,
// raw rounds to --json, a chart to --svg.
import { writeFileSync } from 'node:fs';
import { BENCH_MODELS, BenchConfig, BenchModel, formatTable, renderSvg, runBench } from '../bench/runner';

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

export interface BenchArgs {
  config: BenchConfig;
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
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? (argv[i].split(/=(.*)/s, 2) as [string, string]) : [argv[i], undefined];
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
  return out;
}

export const BENCH_USAGE = `posix-servers bench [--models ${BENCH_MODELS.join(',')}]
                    [--connections 1,50] [--size 64] [--duration 1] [--repeat 3]
                    [--churn-clients 4] [--json FILE] [--svg FILE]`;

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
  const report = await runBench(args.config, (text) => {
    if (tty) process.stderr.write(`\r\x1b[K${text}`);
    else process.stderr.write(`${text}\n`);
  });
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(`${formatTable(report)}\n`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
  if (args.svg) writeFileSync(args.svg, renderSvg(report));
  return 0;
}
