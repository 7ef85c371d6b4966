// `posix-servers check HOST:PORT [--pid PID] [--max-clients N] [--lang en|zh] [--json]`: the
// black-box checks of lib/check on any echo server. Exit code 0 only when every check passed.
import { runChecks, type CheckOptions } from '../check/checks';
import { reachableAddress } from '../util/host';
import { host } from '../util/validate';
import { choice, Command, commandHelp, integer, parseCommand, UsageError } from './flags';

/** `posix-servers check`: its flags, in one table. */
export const CHECK: Command = {
  name: 'check',
  summary: "check any TCP echo server (a student's homework) against the lecture, each check naming its point",
  positionals: { usage: 'HOST:PORT', max: 1, help: 'the server: an address or host name, and port ([IPv6]:PORT)' },
  flags: [
    {
      name: 'pid',
      value: 'PID',
      help: 'the process that listens: also check zombies, descriptors and threads in /proc',
      parse: integer(1, 2 ** 22),
    },
    {
      name: 'max-clients',
      value: 'N',
      help: 'the limit the server claims: N served at once, the (N+1)-th refused',
      parse: integer(1, 4096),
    },
    { name: 'lang', value: 'en|zh', default: 'en', help: 'language of the output', parse: choice(['en', 'zh'] as const) },
    { name: 'json', help: 'print the results as one JSON object instead' },
  ],
  notes: ['Exit code 0 only when every check that ran passed; checks needing --pid or --max-clients are skipped without them.'],
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
  const { help, values: v, positionals } = parseCommand(CHECK, argv);
  if (help) return null;
  if (positionals.length === 0) throw new UsageError(`which server? (posix-servers check HOST:PORT; see --help)`);
  const out: CheckArgs = { ...parseTarget(positionals[0]), lang: v.lang as 'en' | 'zh', json: v.json === true };
  if (v.pid !== undefined) out.pid = v.pid as number;
  if (v['max-clients'] !== undefined) out.maxClients = v['max-clients'] as number;
  return out;
}

/** Runs the checks; resolves with the exit code (0: all passed, 1: a check failed or bad arguments). */
export async function checkMain(argv: string[]): Promise<number> {
  let args: CheckArgs | null;
  try {
    args = parseCheckArgs(argv);
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 1;
  }
  if (args === null) {
    process.stdout.write(commandHelp(CHECK));
    return 0;
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    // A host name ('localhost') is the address a Node client would reach (lib/util/host.ts).
    args.host = (await reachableAddress(host('host', args.host), args.port)).address;
    const results = await runChecks(args, args.json ? () => undefined : print);
    if (args.json) print(JSON.stringify({ target: `${args.host}:${args.port}`, results }));
    return results.some((r) => r.status === 'fail') ? 1 : 0;
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 1;
  }
}
