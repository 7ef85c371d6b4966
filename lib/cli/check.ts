// `posix-servers check HOST:PORT [--pid PID] [--max-clients N] [--lang en|zh] [--json]`: the
// black-box checks of lib/check on any echo server. Exit code 0 only when every check passed.
import { runChecks, type CheckOptions } from '../check/checks';

export const CHECK_USAGE = 'posix-servers check HOST:PORT [--pid PID] [--max-clients N] [--lang en|zh] [--json]';

export interface CheckArgs extends CheckOptions {
  json: boolean;
}

function integer(flag: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new Error(`${flag} must be an integer, got '${text ?? ''}'`);
  const n = Number(text);
  if (n < min || n > max) throw new Error(`${flag} must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** HOST:PORT, [IPV6]:PORT → host and port; throws an Error naming what is wrong. */
export function parseTarget(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`the server must be given as HOST:PORT (or [IPv6]:PORT), got '${text}'`);
  return { host: m[1], port: integer('PORT', m[2], 1, 65535) };
}

/** Arguments → CheckArgs; throws an Error whose message names the flag. */
export function parseCheckArgs(argv: string[]): CheckArgs {
  let target: { host: string; port: number } | undefined;
  const out: Partial<CheckArgs> = { json: false, lang: 'en' };
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=');
    const flag = argv[i].startsWith('--') && eq > 0 ? argv[i].slice(0, eq) : argv[i];
    const inline = argv[i].startsWith('--') && eq > 0 ? argv[i].slice(eq + 1) : undefined;
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--pid':
        out.pid = integer('--pid', value(), 1, 2 ** 22);
        break;
      case '--max-clients':
        out.maxClients = integer('--max-clients', value(), 1, 4096);
        break;
      case '--lang': {
        const l = value();
        if (l !== 'en' && l !== 'zh') throw new Error(`--lang must be en or zh, got '${l ?? ''}'`);
        out.lang = l;
        break;
      }
      case '--json':
        out.json = true;
        break;
      default:
        if (flag.startsWith('-')) throw new Error(`unknown flag '${argv[i]}' for check`);
        if (target) throw new Error(`one server at a time, got '${argv[i]}' after the server`);
        target = parseTarget(flag);
    }
  }
  if (!target) throw new Error(`which server? usage: ${CHECK_USAGE}`);
  return { ...out, ...target } as CheckArgs;
}

/** Runs the checks; resolves with the exit code (0: all passed, 1: a check failed or bad arguments). */
export async function checkMain(argv: string[]): Promise<number> {
  let args: CheckArgs;
  try {
    args = parseCheckArgs(argv);
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 1;
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const results = await runChecks(args, args.json ? () => undefined : print);
    if (args.json) print(JSON.stringify({ target: `${args.host}:${args.port}`, results }));
    return results.some((r) => r.status === 'fail') ? 1 : 0;
  } catch (e) {
    process.stderr.write(`posix-servers check: ${(e as Error).message}\n`);
    return 1;
  }
}
