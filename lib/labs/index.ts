// The labs: each one makes one point of the lecture happen on real sockets, processes and threads,
// measures it, and says whether the observation matches the lesson.
// `posix-servers lab` lists them; `posix-servers lab <name> [--lang en|zh]` runs one.
import { writeFileSync } from 'node:fs';
import { optionalPort, writableFile } from '../cli/observe';
import { Recorder } from '../trace/recording';
import { renderSvg } from '../trace/svg';
import { LiveView } from '../ui/live';
import { eintrLab } from './eintr';
import { recordLabServers } from './kit';
import { fdSharingLab } from './fd-sharing';
import { forkLab } from './fork';
import { handshakeLab } from './handshake';
import { Lang, t } from '../util/i18n';
import { iterativeLab } from './iterative';
import { mmapLab } from './mmap';
import { nonblockingLab } from './nonblocking';
import { sharedCfdLab } from './shared-cfd';
import { slotTableLab } from './slot-table';
import type { Lab, LabResult } from './types';
import { zombiesLab } from './zombies';

export type { Lab, LabResult } from './types';
export type { Lang } from '../util/i18n';
export { t } from '../util/i18n';

/** In the lecture's order. */
export const LABS: Lab[] = [
  handshakeLab,
  iterativeLab,
  nonblockingLab,
  forkLab,
  zombiesLab,
  eintrLab,
  fdSharingLab,
  mmapLab,
  sharedCfdLab,
  slotTableLab,
];

export const LAB_USAGE = 'posix-servers lab [<name>] [--lang en|zh] [--svg FILE] [--ui [PORT]]';

/** One line per lab: its name and what it shows. */
export function listLabs(lang: Lang): string[] {
  const width = Math.max(...LABS.map((l) => l.name.length));
  return LABS.map((l) => `${l.name.padEnd(width)}  ${l.summary[lang]}`);
}

function show(v: number | string | boolean, lang: Lang): string {
  if (typeof v === 'boolean') return lang === 'en' ? (v ? 'yes' : 'no') : v ? '是' : '否';
  return String(v);
}

/**
 * Runs one lab, printing through `out`. Resolves with an exit code: 0 when the observation
 * matched the lesson, 1 when it did not (or the lab failed), 2 for an unknown lab.
 */
export async function runLab(name: string, lang: Lang, out: (line: string) => void): Promise<number> {
  const lab = LABS.find((l) => l.name === name);
  if (!lab) {
    out(t(lang, { en: `unknown lab '${name}'; the labs are:`, zh: `没有名为 '${name}' 的实验；可用的实验：` }));
    for (const l of listLabs(lang)) out(`  ${l}`);
    return 2;
  }
  out(t(lang, { en: `== lab ${lab.name}: ${lab.summary.en} ==`, zh: `== 实验 ${lab.name}：${lab.summary.zh} ==` }));
  const started = performance.now();
  let result: LabResult;
  try {
    result = await lab.run(out, lang);
  } catch (e) {
    out(t(lang, { en: `lab ${lab.name} failed: ${(e as Error).message}`, zh: `实验 ${lab.name} 失败：${(e as Error).message}` }));
    return 1;
  }
  const ms = Math.round(performance.now() - started);
  const pairs = Object.entries(result.measured)
    .map(([k, v]) => `${k}=${show(v, lang)}`)
    .join(' ');
  out(`${t(lang, { en: 'measured: ', zh: '测量值：' })}${pairs}`);
  out(
    result.ok
      ? t(lang, { en: `OK: the observation matches the lesson (${ms} ms)`, zh: `通过：观察结果与结论一致（${ms} ms）` })
      : t(lang, {
          en: `NOT OK: the observation does not match the lesson (${ms} ms)`,
          zh: `未通过：观察结果与结论不一致（${ms} ms）`,
        }),
  );
  return result.ok ? 0 : 1;
}

/**
 * `lab` / `lab <name> [--lang en|zh]` (a leading 'lab' is optional). No name: lists the labs and
 * returns 0. Unknown lab or bad flag: one line on stderr, returns 1. Otherwise runLab's code.
 */
export async function labMain(
  argv: string[],
  io: { stdout?: (line: string) => void; stderr?: (line: string) => void; untilSignal?: () => Promise<void> } = {},
): Promise<number> {
  const stdout = io.stdout ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stderr = io.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  const args = argv[0] === 'lab' ? argv.slice(1) : argv;
  let lang: Lang = 'en';
  let name: string | undefined;
  let svg: string | null = null;
  let ui: number | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--svg' || arg.startsWith('--svg=')) {
      const v = arg === '--svg' ? args[++i] : arg.slice('--svg='.length);
      try {
        if (v === undefined || v === '' || v.startsWith('--')) throw new Error('--svg needs a file name');
        svg = writableFile('--svg', v);
      } catch (e) {
        stderr(`posix-servers lab: ${(e as Error).message}`);
        return 1;
      }
    } else if (arg === '--ui' || arg.startsWith('--ui=')) {
      const v =
        arg === '--ui' ? (args[i + 1] !== undefined && /^\d+$/.test(args[i + 1]) ? args[++i] : '0') : arg.slice('--ui='.length);
      try {
        ui = optionalPort('--ui', v);
      } catch (e) {
        stderr(`posix-servers lab: ${(e as Error).message}`);
        return 1;
      }
    } else if (arg === '--lang' || arg.startsWith('--lang=')) {
      const v = arg === '--lang' ? args[++i] : arg.slice('--lang='.length);
      if (v !== 'en' && v !== 'zh') {
        stderr(`posix-servers lab: --lang must be en or zh, got '${v ?? ''}'`);
        return 1;
      }
      lang = v;
    } else if (arg === '--help' || arg === '-h') {
      name = undefined;
      break;
    } else if (arg.startsWith('-')) {
      stderr(`posix-servers lab: unknown flag '${arg}' (usage: ${LAB_USAGE})`);
      return 1;
    } else if (name !== undefined) {
      stderr(`posix-servers lab: one lab at a time, got '${name}' and '${arg}'`);
      return 1;
    } else {
      name = arg;
    }
  }
  if (name === undefined) {
    stdout(t(lang, { en: `Usage: ${LAB_USAGE}`, zh: `用法：${LAB_USAGE}` }));
    for (const l of listLabs(lang)) stdout(`  ${l}`);
    return 0;
  }
  if (!LABS.some((l) => l.name === name)) {
    stderr(`posix-servers lab: unknown lab '${name}' (one of: ${LABS.map((l) => l.name).join(', ')})`);
    return 1;
  }
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
