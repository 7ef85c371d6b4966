// The one argument parser of the CLI (node:util parseArgs), and the help it prints. Each command
// declares its flags in one table (a Command: serve.ts, bench.ts, lab.ts); this module turns
// argv into values by that table and renders `--help` from it, so a new flag is one entry.
import { parseArgs } from 'node:util';

export interface Flag {
  /** The long name, without the dashes: 'max-clients'. */
  name: string;
  /** A one-letter alias: 'h' for -h. */
  short?: string;
  /** The placeholder of the flag's value in the help ('N', 'FILE', 'en|zh'); none: a switch. */
  value?: string;
  /**
   * The value may be left out: `--json` alone means `--json -`. Then it is this. (parseArgs needs a
   * value for every string option, so the parser fills it in first.)
   */
  whenOmitted?: string;
  /** One line for the help. */
  help: string;
  /** The value when the flag is not given, as it would be typed (converted by `parse` too); shown in the help. */
  default?: string;
  /** Converts the text, or throws an Error whose message names the flag. Default: the text. */
  parse?: (text: string, flag: string) => unknown;
}

export interface Command {
  name: string;
  /** One line: what the command does. */
  summary: string;
  /** Positional arguments: how the usage line shows them and how many there may be. */
  positionals?: { usage: string; max: number; help: string };
  /** Arguments after `--`, taken as they are (a program and its arguments): how the usage shows them. */
  rest?: { usage: string; help: string };
  flags: readonly Flag[];
  /** Shown under the flags. */
  notes?: readonly string[];
}

/**
 * What parseCommand() found. `values` holds each flag's converted value by long name (its default
 * when not given); `given` names the flags that were given.
 */
interface Parsed {
  help: boolean;
  values: Record<string, unknown>;
  given: Set<string>;
  positionals: string[];
  /** With `rest`: every argument after `--`, untouched (empty without `--`). */
  rest: string[];
}

/** A mistake in the command line: main prints `posix-servers: <message>` and exits 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Every command has it. */
const HELP_FLAG: Flag = { name: 'help', short: 'h', help: 'print this help and exit' };

function flagsOf(command: Command): Flag[] {
  return [...command.flags, HELP_FLAG];
}

// `--json` with nothing after it, or followed by another flag, gets its `whenOmitted` value.
function fillOmitted(flags: Flag[], argv: string[]): string[] {
  const optional = new Map(flags.filter((f) => f.whenOmitted !== undefined).map((f) => [`--${f.name}`, f.whenOmitted!]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (optional.has(arg) && (next === undefined || (next.startsWith('-') && next !== '-'))) {
      out.push(`${arg}=${optional.get(arg)}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** argv (after the command's name) → values, by the command's table. Throws a UsageError. */
export function parseCommand(command: Command, argv: string[]): Parsed {
  const flags = flagsOf(command);
  const byName = new Map(flags.map((f) => [f.name, f]));
  const options = Object.fromEntries(
    flags.map((f) => [
      f.name,
      { type: f.value !== undefined ? ('string' as const) : ('boolean' as const), ...(f.short ? { short: f.short } : {}) },
    ]),
  );
  // Not strict: the tokens are checked below, so that each mistake gets a message of our own.
  const { tokens } = parseArgs({ args: fillOmitted(flags, argv), options, strict: false, allowPositionals: true, tokens: true });
  const found: Array<{ flag: Flag; raw: string; text: string | undefined; inline: boolean }> = [];
  const positionals: string[] = [];
  const rest: string[] = [];
  let terminated = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      terminated = command.rest !== undefined;
    } else if (token.kind === 'positional') {
      (terminated ? rest : positionals).push(token.value);
    } else if (token.kind === 'option') {
      const flag = byName.get(token.name);
      if (flag === undefined) {
        throw new UsageError(`unknown flag '${token.rawName}' for ${command.name} (see posix-servers ${command.name} --help)`);
      }
      if (flag === HELP_FLAG) return { help: true, values: {}, given: new Set(), positionals: [], rest: [] };
      found.push({ flag, raw: token.rawName, text: token.value, inline: token.inlineValue === true });
    }
  }
  const max = command.positionals?.max ?? 0;
  if (positionals.length > max) {
    throw new UsageError(
      max === 0
        ? `unexpected argument '${positionals[0]}' for ${command.name}`
        : `too many arguments for ${command.name}: ${positionals.map((p) => `'${p}'`).join(', ')}`,
    );
  }
  const values: Record<string, unknown> = {};
  for (const { flag, raw, text, inline } of found) {
    if (flag.value === undefined) {
      if (text !== undefined) throw new UsageError(`${raw} takes no value`);
      values[flag.name] = true;
      continue;
    }
    // A separate value that looks like another flag means this one's value was left out.
    if (text === undefined || text === '' || (!inline && /^--?[a-z]/i.test(text))) {
      throw new UsageError(`${raw} needs a value`);
    }
    try {
      values[flag.name] = flag.parse ? flag.parse(text, raw) : text;
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const given = new Set(Object.keys(values));
  for (const f of command.flags) {
    if (given.has(f.name) || f.default === undefined) continue;
    values[f.name] = f.parse ? f.parse(f.default, `--${f.name}`) : f.default;
  }
  return { help: false, values, given, positionals, rest };
}

function flagLabel(f: Flag): string {
  const long = `--${f.name}${f.value === undefined ? '' : f.whenOmitted !== undefined ? ` [${f.value}]` : ` ${f.value}`}`;
  return f.short ? `-${f.short}, ${long}` : `    ${long}`;
}

/** The text of `posix-servers <command> --help`. */
export function commandHelp(command: Command): string {
  const flags = flagsOf(command);
  const lines = [`posix-servers ${command.name}: ${command.summary}`, ''];
  const rest = command.rest ? ` [-- ${command.rest.usage}]` : '';
  lines.push(
    `Usage: posix-servers ${command.name}${command.positionals ? ` ${command.positionals.usage}` : ''} [flags]${rest}`,
    '',
  );
  const rows: Array<[string, string]> = [];
  if (command.positionals) rows.push([`    ${command.positionals.usage}`, command.positionals.help]);
  if (command.rest) rows.push([`    -- ${command.rest.usage}`, command.rest.help]);
  for (const f of flags) rows.push([flagLabel(f), f.help + (f.default !== undefined ? ` (default ${f.default})` : '')]);
  const width = Math.min(Math.max(...rows.map(([label]) => label.length)), 40);
  lines.push(command.positionals || command.rest ? 'Arguments and flags:' : 'Flags:');
  for (const [label, help] of rows) {
    lines.push(label.length > width ? `  ${label}\n  ${' '.repeat(width)}  ${help}` : `  ${label.padEnd(width)}  ${help}`);
  }
  if (command.notes?.length) lines.push('', ...command.notes);
  return `${lines.join('\n')}\n`;
}

// ---- converters for the tables ----

/** An integer from min to max. */
export function integer(min: number, max: number): (text: string, flag: string) => number {
  return (text, flag) => {
    if (!/^-?\d+$/.test(text)) throw new Error(`${flag} must be an integer, got '${text}'`);
    const n = Number(text);
    if (n < min || n > max) throw new Error(`${flag} must be from ${min} to ${max}, got ${n}`);
    return n;
  };
}

/** One of the given words. */
export function choice<T extends string>(allowed: readonly T[]): (text: string, flag: string) => T {
  return (text, flag) => {
    if (!(allowed as readonly string[]).includes(text))
      throw new Error(`${flag} must be one of ${allowed.join(', ')}, got '${text}'`);
    return text as T;
  };
}

/** A comma-separated list, each item converted by `item`. */
export function list<T>(item: (text: string, flag: string) => T): (text: string, flag: string) => T[] {
  return (text, flag) => text.split(',').map((part) => item(part, flag));
}
