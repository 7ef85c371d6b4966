// `posix-servers lab` lists the labs; `posix-servers lab <name> [--lang en|zh]` runs one; with
// `--svg FILE` its servers are drawn, with `--ui [PORT]` watched live.
import { writeFileSync } from 'node:fs';
import { LABS, listLabs, runLab } from '../labs';
import { recordLabServers } from '../labs/kit';
import { Recorder } from '../trace/recording';
import { renderSvg } from '../trace/svg';
import { LiveView } from '../ui/live';
import { t, type Lang } from '../util/i18n';
import { choice, Command, commandHelp, parseCommand } from './flags';
import { SVG_FLAG, UI_FLAG } from './observe';

/** `posix-servers lab`: its flags, in one table. */
export const LAB: Command = {
  name: 'lab',
  summary: 'make one point of the lecture happen on real sockets, processes and threads, and measure it',
  positionals: { usage: '[<name>]', max: 1, help: 'the lab to run; none: list them' },
  flags: [
    { name: 'lang', value: 'en|zh', default: 'en', help: 'language of the output', parse: choice(['en', 'zh'] as const) },
    { name: 'list', help: 'list the labs, in their groups (as no name does)' },
    { ...SVG_FLAG, help: "write the picture of the lab's servers (a sequence diagram, SVG) to FILE" },
    { ...UI_FLAG, help: 'serve the live view on 127.0.0.1:PORT (0 or none: any); the lab starts once the page is open' },
  ],
  get notes() {
    return [
      'Labs: the lecture in its order, then what comes after it (each exits 0 only when its measurement matches the lesson):',
      ...listLabs('en').map((l) => `  ${l}`),
    ];
  },
};

/**
 * `lab` / `lab <name> [--lang en|zh]` (a leading 'lab' is optional). No name, or `--list`: lists the
 * labs and returns 0. Unknown lab or bad flag: one line on stderr, returns 1. Otherwise runLab's code.
 */
export async function labMain(
  argv: string[],
  io: { stdout?: (line: string) => void; stderr?: (line: string) => void; untilSignal?: () => Promise<void> } = {},
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
  if (name === undefined || parsed.values.list === true) {
    stdout(
      t(lang, {
        en: 'Usage: posix-servers lab [<name>] [--lang en|zh] [--svg FILE] [--ui [PORT]] [--list]',
        zh: '用法：posix-servers lab [<name>] [--lang en|zh] [--svg FILE] [--ui [PORT]] [--list]',
      }),
    );
    for (const l of listLabs(lang)) stdout(`  ${l}`);
    return 0;
  }
  if (!LABS.some((l) => l.name === name)) {
    stderr(`posix-servers lab: unknown lab '${name}' (one of: ${LABS.map((l) => l.name).join(', ')})`);
    return 1;
  }
  const svg = (parsed.values.svg as string | undefined) ?? null;
  const ui = (parsed.values.ui as number | undefined) ?? null;
  if (svg === null && ui === null) return runLab(name, lang, stdout);
  return observedLab(name, lang, svg, ui, { stdout, stderr, untilSignal: io.untilSignal ?? untilSignal });
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/**
 * A lab with its servers recorded: `--ui` serves the live view first and starts the lab once a
 * page has opened it (and keeps the page up afterwards, until SIGINT/SIGTERM); `--svg` writes the
 * picture of every server the lab ran. Resolves with the lab's exit code.
 */
async function observedLab(
  name: string,
  lang: Lang,
  svg: string | null,
  ui: number | null,
  io: { stdout: (line: string) => void; stderr: (line: string) => void; untilSignal: () => Promise<void> },
): Promise<number> {
  const recorder = new Recorder();
  let view: LiveView | null = null;
  if (ui !== null) {
    try {
      view = await LiveView.start(recorder, { port: ui, lang });
    } catch (e) {
      io.stderr(`posix-servers lab: --ui: ${(e as Error).message}`);
      return 1;
    }
    io.stdout(
      t(lang, {
        en: `live view: ${view.url} — the lab starts when the page is open`,
        zh: `实时视图：${view.url} —— 页面打开后实验开始`,
      }),
    );
    await view.pageOpened();
  }
  recordLabServers(recorder);
  let code: number;
  try {
    code = await runLab(name, lang, io.stdout);
  } finally {
    recordLabServers(null);
  }
  if (svg !== null) {
    const note = t(lang, {
      en: `lab ${name}: its servers are C programs of their own (native/labs), which make no trace records; nothing to draw.`,
      zh: `实验 ${name}：它的服务器是独立的 C 程序（native/labs），没有跟踪记录，无图可画。`,
    });
    try {
      writeFileSync(svg, renderSvg(recorder.servers, lang, note));
      io.stdout(t(lang, { en: `picture of the trace: ${svg}`, zh: `跟踪示意图：${svg}` }));
    } catch (e) {
      io.stderr(`posix-servers lab: --svg: ${(e as Error).message}`);
      code = 1;
    }
  }
  if (view !== null) {
    io.stdout(t(lang, { en: 'the page stays up: Ctrl-C to exit', zh: '页面保持打开：按 Ctrl-C 退出' }));
    await io.untilSignal();
    await view.close();
  }
  return code;
}
