// `posix-servers lab` lists the labs; `posix-servers lab <name> [--lang en|zh]` runs one.
import { LABS, listLabs, runLab } from '../labs';
import { t, type Lang } from '../util/i18n';
import { choice, Command, commandHelp, parseCommand } from './flags';

/** `posix-servers lab`: its flags, in one table. */
export const LAB: Command = {
  name: 'lab',
  summary: 'make one point of the lecture happen on real sockets, processes and threads, and measure it',
  positionals: { usage: '[<name>]', max: 1, help: 'the lab to run; none: list them' },
  flags: [{ name: 'lang', value: 'en|zh', default: 'en', help: 'language of the output', parse: choice(['en', 'zh'] as const) }],
  get notes() {
    return [
      'Labs, in the lecture order (each exits 0 only when its measurement matches the lesson):',
      ...listLabs('en').map((l) => `  ${l}`),
    ];
  },
};

/**
 * `lab` / `lab <name> [--lang en|zh]` (a leading 'lab' is optional). No name: lists the labs and
 * returns 0. Unknown lab or bad flag: one line on stderr, returns 1. Otherwise runLab's code.
 */
export async function labMain(
  argv: string[],
  io: { stdout?: (line: string) => void; stderr?: (line: string) => void } = {},
): Promise<number> {
  const stdout = io.stdout ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stderr = io.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  let parsed;
  try {
    parsed = parseCommand(LAB, argv[0] === 'lab' ? argv.slice(1) : argv);
  } catch (e) {
    stderr(`posix-servers lab: ${(e as Error).message}`);
    return 1;
  }
  if (parsed.help) {
    stdout(commandHelp(LAB).trimEnd());
    return 0;
  }
  const lang = parsed.values.lang as Lang;
  const [name] = parsed.positionals;
  if (name === undefined) {
    stdout(
      t(lang, { en: 'Usage: posix-servers lab [<name>] [--lang en|zh]', zh: '用法：posix-servers lab [<name>] [--lang en|zh]' }),
    );
    for (const l of listLabs(lang)) stdout(`  ${l}`);
    return 0;
  }
  if (!LABS.some((l) => l.name === name)) {
    stderr(`posix-servers lab: unknown lab '${name}' (one of: ${LABS.map((l) => l.name).join(', ')})`);
    return 1;
  }
  return runLab(name, lang, stdout);
}
