// `posix-servers bench`: flags → BenchConfig, a progress line on stderr (rounds, runs, ETA), the
// table on stdout, raw rounds to --json (a file, or stdout), a chart to --svg. SIGINT stops it
// and writes what was measured until then. With --sustained: many rounds on one server per model
// (bench/sustained.ts) instead of the comparison. --target: servers already running join the
// comparison (bench/target.ts).
import { writeFileSync } from 'node:fs';
import {
  BENCH_MODELS,
  BenchModel,
  DEFAULT_MODELS,
  DEFAULT_REPLY_BYTES,
  DESIGN_MODELS,
  EXEC_BENCH_MODELS,
  NO_RPC,
  Workload,
  WORKLOADS,
} from '../bench/catalogue';
import { renderSvg } from '../bench/chart';
import type { BenchConfig } from '../bench/report';
import { BenchProgress, formatDuration, runBench } from '../bench/runner';
import { formatTable, WIDTH } from '../bench/table';
import { formatSustainedTable, runSustained, SustainedConfig } from '../bench/sustained';
import { parseTargets, Target, withPids } from '../bench/target';
import { Command, commandHelp, integer, list, parseCommand, UsageError } from './flags';

const DEFAULT_BENCH: BenchConfig = {
  models: [...DEFAULT_MODELS],
  connections: [1, 50],
  size: 64,
  durationMs: 1000,
  repeat: 3,
  churnClients: 4,
  workloads: ['pingpong', 'churn'],
  replyBytes: DEFAULT_REPLY_BYTES,
  warmupMs: 250,
};

/** --sustained: the defaults reproduce issue #12's run (50 new connections × 2 s, 10 rounds). */
const DEFAULT_SUSTAINED: SustainedConfig = {
  models: ['fork', 'thread', 'node', 'cluster', 'ref-fork', 'ref-thread', 'ref-epoll'],
  connections: 50,
  size: 64,
  durationMs: 2000,
  rounds: 10,
};

/** A flag's seconds, returned in ms: in (0, max], or with `zero` in [0, max]. */
function secondsUpTo(max: number, zero = false) {
  return (text: string, flag: string): number => {
    const s = Number(text);
    // Number('') is 0: an empty value is no zero.
    if (text.trim() === '' || !Number.isFinite(s) || s < 0 || (s === 0 && !zero) || s > max) {
      throw new Error(`${flag} must be seconds in ${zero ? '[' : '('}0, ${max}], got '${text}'`);
    }
    return Math.round(s * 1000);
  };
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
      help:
        `comma-separated, of ${BENCH_MODELS.join(', ')}. -flock, -mutex, -pass, -main: that acceptLock ` +
        `(prefork: 'none' otherwise; prethread: 'mutex'); cluster-none: schedulingPolicy 'none'. ` +
        `When --workload has rpc and --models is not given: ${DESIGN_MODELS.join(',')}`,
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
    {
      name: 'workload',
      value: 'LIST',
      default: DEFAULT_BENCH.workloads.join(','),
      help:
        'comma-separated, of pingpong (--connections wide), churn (connect, echo --size bytes, close), rpc ' +
        "(UNP ch. 30's client: connect, ask for --reply-bytes, read exactly them, close first); the exec " +
        'models run their exec churn with churn',
      parse: (text, flag) => {
        const list = text.split(',');
        for (const w of list) {
          if (!(WORKLOADS as readonly string[]).includes(w)) {
            throw new Error(`${flag}: unknown workload '${w}' (known: ${WORKLOADS.join(', ')})`);
          }
        }
        return [...new Set(list)] as Workload[];
      },
    },
    { name: 'size', value: 'BYTES', default: String(DEFAULT_BENCH.size), help: 'bytes per message', parse: integer(1, 1 << 20) },
    {
      name: 'reply-bytes',
      value: 'BYTES',
      default: String(DEFAULT_BENCH.replyBytes),
      help: "rpc: the reply each request asks for, 1..1048576 (UNP ch. 30's runs ask for 4000)",
      parse: integer(1, 1 << 20),
    },
    {
      name: 'duration',
      value: 'SECONDS',
      default: String(DEFAULT_BENCH.durationMs / 1000),
      help: 'of each run',
      parse: secondsUpTo(600),
    },
    {
      name: 'warmup',
      value: 'SECONDS',
      default: String(DEFAULT_BENCH.warmupMs / 1000),
      help: "before each run, the same load for this long, unmeasured: a fresh server's start-up (Node compiling its event decoder) is not what is compared; 0: none",
      parse: secondsUpTo(60, true),
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
      help: 'concurrent clients of the churn and rpc runs, and of the exec churn',
      parse: integer(1, 1000),
    },
    {
      name: 'json',
      value: 'FILE',
      whenOmitted: '-',
      help: 'write every raw round as JSON to FILE; without FILE (or -) to stdout, the table then to stderr',
    },
    { name: 'svg', value: 'FILE', help: 'write a bar chart' },
    {
      name: 'wide',
      help: `print every column, however wide the lines (by default columns are left out, named under the tables, to fit ${WIDTH})`,
    },
    {
      name: 'target',
      value: 'HOST:PORT,…',
      help:
        'servers already running (an IPv6 HOST in brackets), measured by the same client and workloads next to ' +
        'the models, taking their turn in every round; they serve what they serve: ask for the workloads they speak',
      parse: parseTargets,
    },
    {
      name: 'target-pid',
      value: 'PID,…',
      help: "with --target, one per target: the root of its process tree, whose CPU time, processes and memory are measured as a model's",
    },
    { name: 'sustained', help: 'instead: many rounds of new connections on one server per model' },
    {
      name: 'rounds',
      value: 'N',
      help: `with --sustained: rounds (default ${DEFAULT_SUSTAINED.rounds})`,
      parse: (text, flag) => {
        const n = integer(1, 1000)(text, flag);
        if (n < 2) throw new Error(`${flag} must be at least 2 (the first round and later ones), got '${n}'`);
        return n;
      },
    },
  ],
  notes: [
    'Each model runs in a process of its own, in alternating rounds: each model right before its C reference,',
    'the order reversed every other round; × node and × ref are medians of the ratios within each round.',
    'exec, socat-exec and xinetd-exec run',
    '/bin/true for each connection (the exec churn: connect, read until the program has exited).',
    'The connection workloads (churn, rpc) report the server CPU time per connection (its whole process',
    "tree, to the nanosecond: bench/cpu.ts) and how evenly a pool's workers took them, in a table numbered",
    "as UNP ch. 30's designs; its CPU × ref and × fork are medians of the ratios within each round too.",
    'Ctrl-C stops the benchmark and',
    'writes what was measured until then (the report says it was interrupted); exit code 130.',
    `With --sustained the defaults are --models ${DEFAULT_SUSTAINED.models.join(',')}`,
    `--connections ${DEFAULT_SUSTAINED.connections} (one number: new connections per round) --duration ${DEFAULT_SUSTAINED.durationMs / 1000};`,
    '--repeat, --churn-clients, --workload, --reply-bytes, --warmup, --svg and --target do not apply.',
    "The machine line gives fork()'s cost, measured by the run (the fork model's master program forking and",
    'reaping N children), and every × fork is printed with it.',
  ],
};

interface BenchArgs {
  config: BenchConfig;
  /** Set by --sustained: run this instead of the comparison. */
  sustained?: SustainedConfig;
  /** A file, or '-' for stdout. */
  json?: string;
  svg?: string;
  /** --wide: every column of the tables. */
  wide?: boolean;
}

/** Flags → BenchArgs; throws a UsageError naming the flag (null: --help). */
export function parseBenchArgs(argv: string[]): BenchArgs | null {
  const { help, values: v, given } = parseCommand(BENCH, argv);
  if (help) return null;
  const workloads = v.workload as Workload[];
  const rpcOnly = workloads.length === 1 && workloads[0] === 'rpc';
  // The UNP table's designs by default when rpc runs; named models must be able to serve something asked.
  const models = given.has('models')
    ? (v.models as BenchModel[])
    : workloads.includes('rpc')
      ? [...DESIGN_MODELS]
      : (v.models as BenchModel[]);
  if (rpcOnly) {
    const cannot = models.filter((m) => NO_RPC.includes(m));
    if (cannot.length > 0) {
      throw new UsageError(
        `--workload rpc: ${cannot.join(', ')} cannot serve rpc (socat relays to a pipe; the exec models run a program)`,
      );
    }
  }
  if (given.has('reply-bytes') && !workloads.includes('rpc'))
    throw new UsageError(`--reply-bytes applies only with --workload rpc`);
  let targets: Target[] = (v.target as Target[] | undefined) ?? [];
  if (given.has('target-pid')) {
    if (targets.length === 0) throw new UsageError(`--target-pid applies only with --target`);
    try {
      targets = withPids(targets, v['target-pid'] as string, '--target-pid');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const config: BenchConfig = {
    models,
    ...(targets.length > 0 ? { targets } : {}),
    connections: v.connections as number[],
    size: v.size as number,
    durationMs: v.duration as number,
    repeat: v.repeat as number,
    churnClients: v['churn-clients'] as number,
    workloads,
    replyBytes: v['reply-bytes'] as number,
    warmupMs: v.warmup as number,
  };
  const out: BenchArgs = { config };
  if (typeof v.json === 'string') out.json = v.json;
  if (typeof v.svg === 'string') out.svg = v.svg;
  if (v.wide === true) out.wide = true;
  if (v.sustained !== true) {
    if (given.has('rounds')) throw new UsageError(`--rounds applies only with --sustained`);
    return out;
  }
  for (const flag of ['repeat', 'churn-clients', 'svg', 'workload', 'reply-bytes', 'warmup', 'target', 'target-pid']) {
    if (given.has(flag)) throw new UsageError(`--${flag} does not apply with --sustained`);
  }
  if (given.has('connections') && config.connections.length !== 1) {
    throw new UsageError(`--connections takes one number with --sustained (new connections per round)`);
  }
  const exec = config.models.filter((m) => EXEC_BENCH_MODELS.includes(m));
  if (given.has('models') && exec.length > 0) {
    throw new UsageError(`--sustained runs echo servers: ${exec.join(', ')} run a program per connection (the exec churn)`);
  }
  out.sustained = {
    models: given.has('models') ? config.models : [...DEFAULT_SUSTAINED.models],
    connections: given.has('connections') ? config.connections[0] : DEFAULT_SUSTAINED.connections,
    size: config.size,
    durationMs: given.has('duration') ? config.durationMs : DEFAULT_SUSTAINED.durationMs,
    rounds: given.has('rounds') ? (v.rounds as number) : DEFAULT_SUSTAINED.rounds,
  };
  return out;
}

function progressLine(p: BenchProgress): string {
  return (
    `round ${p.round}/${p.repeat} · ${p.model} · run ${Math.min(p.done + 1, p.total)}/${p.total} · ` +
    `${formatDuration(p.elapsedMs)} elapsed · ETA ${formatDuration(p.etaMs)}`
  );
}

// The table on stdout and the report to --json; with `--json -` the report takes stdout and the
// table goes to stderr.
function write(table: string, report: object, args: BenchArgs): void {
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (args.json === '-') {
    process.stderr.write(`${table}\n`);
    process.stdout.write(json);
  } else {
    process.stdout.write(`${table}\n`);
    if (args.json) writeFileSync(args.json, json);
  }
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
  const show = (line: string) => {
    if (interrupt.signal.aborted) return;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  };
  process.on('SIGINT', onSigint);
  try {
    if (args.sustained) {
      const report = await runSustained(args.sustained, show, interrupt.signal);
      if (tty) process.stderr.write('\r\x1b[K');
      write(formatSustainedTable(report, { wide: args.wide }), report, args);
      return report.interrupted ? 130 : 0;
    }
    const report = await runBench(args.config, { signal: interrupt.signal, progress: (p) => show(progressLine(p)) });
    if (tty) process.stderr.write('\r\x1b[K');
    write(formatTable(report, { wide: args.wide }), report, args);
    if (args.svg) writeFileSync(args.svg, renderSvg(report));
    return report.interrupted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
