// `posix-servers check HOST:PORT [--pid PID] [--max-clients N [--when-full refuse|wait]]
// [--require concurrent] [--strict] [--lang en|zh] [--json]`: the black-box checks of lib/check on
// any echo server. Exit code 0: every check that ran passed; 1: the server failed; 2: no verdict
// (nothing listening, or a wrong command line) — see EXIT_NOTES.
import { reportInLang, runChecks, type CheckOptions } from '../check/checks';
import { reachableAddress } from '../util/host';
import { host } from '../util/validate';
import { choice, Command, commandHelp, integer, parseCommand, UsageError } from './flags';

const EXIT_NOTES = [
  'Exit codes: 0 every check that ran passed (with --strict: and none was skipped); 1 the server failed a check',
  '(it died during one, missed --require, or --strict found a check skipped); 2 no verdict: nothing is listening',
  'on HOST:PORT, or the command line is wrong. Checks needing --pid or --max-clients are SKIPPED without them;',
  'once the server has died, the checks after it are NOT RUN.',
];

/** `posix-servers check`: its flags, in one table. */
export const CHECK: Command = {
  name: 'check',
  summary: "check any TCP echo server (a student's homework) against the lecture, each check naming its point",
  positionals: { usage: 'HOST:PORT', max: 1, help: 'the server: an address or host name, and port ([IPv6]:PORT)' },
  flags: [
    {
      name: 'pid',
      value: 'PID',
      help: 'the process that listens: also check zombies, descriptors and threads in /proc, see how it died, and name fixes',
      parse: integer(1, 2 ** 22),
    },
    {
      name: 'max-clients',
      value: 'N',
      help: 'the limit the server claims: N clients served at once',
      parse: integer(1, 4096),
    },
    {
      name: 'when-full',
      value: 'refuse|wait',
      help: 'with --max-clients: what the server claims to do with client N+1 — refuse it at once (the lecture), or keep it waiting until one leaves',
      default: 'refuse',
      parse: choice(['refuse', 'wait'] as const),
    },
    {
      name: 'require',
      value: 'concurrent',
      help: 'fail a server that serves one client at a time',
      parse: choice(['concurrent'] as const),
    },
    { name: 'strict', help: 'fail when any check was skipped' },
    { name: 'lang', value: 'en|zh', default: 'en', help: 'language of the output', parse: choice(['en', 'zh'] as const) },
    { name: 'json', help: 'print the report as one JSON object instead' },
  ],
  notes: EXIT_NOTES,
};

interface CheckArgs extends CheckOptions {
  json: boolean;
}

/** HOST:PORT, [IPV6]:PORT → host and port; throws a UsageError naming what is wrong. */
export function parseTarget(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`the server must be given as HOST:PORT (or [IPv6]:PORT), got '${text}'`);
  try {
    return { host: m[1], port: integer(1, 65535)(m[2], 'PORT') };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Arguments → CheckArgs (null: --help); throws a UsageError whose message names the flag. */
export function parseCheckArgs(argv: string[]): CheckArgs | null {
  const { help, values: v, given, positionals } = parseCommand(CHECK, argv);
  if (help) return null;
  if (positionals.length === 0) throw new UsageError(`which server? (posix-servers check HOST:PORT; see --help)`);
  const out: CheckArgs = {
    ...parseTarget(positionals[0]),
    lang: v.lang as 'en' | 'zh',
    json: v.json === true,
    strict: v.strict === true,
  };
  if (v.pid !== undefined) out.pid = v.pid as number;
  if (v['max-clients'] !== undefined) out.maxClients = v['max-clients'] as number;
  if (given.has('when-full')) {
    if (out.maxClients === undefined) throw new UsageError('--when-full needs --max-clients N (the limit it applies to)');
    out.whenFull = v['when-full'] as 'refuse' | 'wait';
  }
  if (v.require !== undefined) out.require = v.require as 'concurrent';
  return out;
}

/** Runs the checks; resolves with the exit code (0: passed, 1: the server failed, 2: no verdict). */
export async function checkMain(argv: string[]): Promise<number> {
  let args: CheckArgs | null;
  try {
    args = parseCheckArgs(argv);
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 2;
  }
  if (args === null) {
    process.stdout.write(commandHelp(CHECK));
    return 0;
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    // A host name ('localhost') is the address a Node client would reach (lib/util/host.ts).
    args.host = (await reachableAddress(host('host', args.host), args.port)).address;
    const report = await runChecks(args, args.json ? () => undefined : print);
    if (args.json) print(JSON.stringify(reportInLang(report, args.lang ?? 'en')));
    return report.exitCode;
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 2;
  }
}
