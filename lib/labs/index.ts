// The labs: each one makes one point of the lecture happen on real sockets, processes and threads,
// measures it, and says whether the observation matches the lesson.
// `posix-servers lab` lists them; `posix-servers lab <name> [--lang en|zh]` runs one (lib/cli/lab.ts).
import { acceptBalanceLab } from './accept-balance';
import { backlogLab } from './backlog';
import { eintrLab } from './eintr';
import { fdSharingLab } from './fd-sharing';
import { forkLab } from './fork';
import { handshakeLab } from './handshake';
import { Lang, t } from '../util/i18n';
import { iterativeLab } from './iterative';
import { lingeringCloseLab } from './lingering-close';
import { mmapLab } from './mmap';
import { nagleLab } from './nagle';
import { nonblockingLab } from './nonblocking';
import { poolExhaustedLab } from './pool-exhausted';
import { sharedCfdLab } from './shared-cfd';
import { sigpipeLab } from './sigpipe';
import { slotTableLab } from './slot-table';
import { thunderingHerdLab } from './thundering-herd';
import { timeWaitLab } from './time-wait';
import { uringLab } from './uring';
import type { Lab, LabResult } from './types';
import { zombiesLab } from './zombies';

export type { LabResult } from './types';

/** The labs in groups: the lecture's points in its order, then what comes after it. */
export const LAB_GROUPS: Array<{ title: { en: string; zh: string }; labs: Lab[] }> = [
  {
    title: { en: 'The lecture, in its order:', zh: '讲义（按顺序）：' },
    labs: [
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
    ],
  },
  {
    title: {
      en: 'After the lecture: the designs that came next (UNP chapter 30: pools; then io_uring):',
      zh: '讲义之后：后来的设计（UNP 第 30 章：池；然后是 io_uring）：',
    },
    labs: [poolExhaustedLab, thunderingHerdLab, acceptBalanceLab, uringLab],
  },
  {
    title: { en: 'After the lecture: the traps every server meets:', zh: '讲义之后：每个服务器都会遇到的陷阱：' },
    labs: [timeWaitLab, backlogLab, sigpipeLab, nagleLab, lingeringCloseLab],
  },
];

/** Every lab, group after group. */
export const LABS: Lab[] = LAB_GROUPS.flatMap((g) => g.labs);

/** Each group's title, then its labs (indented two spaces): a lab's name and what it shows. */
export function listLabs(lang: Lang): string[] {
  const width = Math.max(...LABS.map((l) => l.name.length));
  return LAB_GROUPS.flatMap((g) => [t(lang, g.title), ...g.labs.map((l) => `  ${l.name.padEnd(width)}  ${l.summary[lang]}`)]);
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
