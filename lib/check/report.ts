// What `posix-servers check` found, held in both languages at once: each check's result, the
// diagnosis drawn from what was observed, and the run's outcome and exit code. A language is
// chosen only when the report is printed, so one run can be read — and tested — in English and
// in Chinese.
import type { Lang } from '../util/i18n';

/** A message in both languages. */
export interface Text {
  en: string;
  zh: string;
}

export const text = (en: string, zh: string): Text => ({ en, zh });

export const CHECK_NAMES = ['echo', 'half-close', 'concurrency', 'vanish', 'max-clients', 'zombies', 'resources'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/**
 * pass, fail; skip: the check did not run because it needs something it was not given (--pid,
 * --max-clients) or was not asked for; not-run: the server had died during an earlier check, so
 * there was nothing left to check (never a pass).
 */
export type CheckStatus = 'pass' | 'fail' | 'skip' | 'not-run';

/**
 * Every diagnosis check can make, by a stable name (what a grader or a test keys on), with the lab
 * that shows the mistake and its fix where one exists. A pointer to a new lab is one `lab` here.
 */
export const DIAGNOSES = {
  /** The server died: how, as far as /proc or its exit status show it. */
  died: {},
  /** It was killed by SIGPIPE (seen in its exit status), or died at a write to a reset connection with SIGPIPE at its default action. */
  sigpipe: { lab: 'sigpipe' },
  /** Without --pid: it died as a client reset a connection it was writing to (vanish), SIGPIPE's classic moment. */
  'died-at-reset': { lab: 'sigpipe' },
  /** Nothing listens, but the port's connections linger in TIME_WAIT: a restart that bind() refused (EADDRINUSE). */
  'time-wait': { lab: 'time-wait' },
  /** A reply cut short by a reset while the kernel counted a close with unread data (TCPAbortOnClose). */
  'reset-on-close': { lab: 'lingering-close' },
  /** Its process lives, but nothing listens on the port any more. */
  'stopped-listening': {},
  /** No client got a byte back: not an echo server (UNP's ch. 30 servers speak another protocol). */
  'no-echo': {},
  /** A client was not served, and without --pid check cannot tell the server's design, so it names no fix. */
  'clients-lost': {},
  /** Threads observed, clients lost or their data crossed: &cfd shared by the threads (points 10, 11). */
  'shared-cfd': { lab: 'shared-cfd' },
  /** One process, one thread, clients lost: one variable cfd for every client (point 4, fix 1). */
  'one-cfd': { lab: 'nonblocking' },
  /** Child processes observed, clients lost: one child per connection, serving its own cfd (point 5). */
  'fork-child': { lab: 'fork' },
  /** --require concurrent, and the server serves one client at a time (point 3). */
  iterative: { lab: 'iterative' },
  /** --when-full refuse (the lecture's INFO[N]), and client N+1 was kept waiting. */
  'waits-when-full': { lab: 'slot-table' },
  /** --when-full wait, and client N+1 was refused. */
  'refuses-when-full': { lab: 'pool-exhausted' },
  /** Client N+1 was served: the claimed limit is not kept. */
  'limit-not-kept': { lab: 'slot-table' },
  /** A client that left did not free its place for a new one. */
  'place-not-freed': { lab: 'slot-table' },
  /** Children left in state Z: nobody reaps them (point 7, homework 1). */
  zombies: { lab: 'zombies' },
  /** Descriptors, threads or children not back to their count once the clients left. */
  leak: {},
} satisfies Record<string, { lab?: string }>;

export type DiagnosisId = keyof typeof DIAGNOSES;

/** What check concludes from what it observed, and what to do about it. */
export interface Diagnosis {
  id: DiagnosisId;
  text: Text;
  /** The lab that shows this mistake and its fix (`posix-servers lab <name>`), if there is one. */
  lab?: string;
}

export function diagnosis(id: DiagnosisId, message: Text): Diagnosis {
  const lab = (DIAGNOSES[id] as { lab?: string }).lab;
  return { id, text: message, ...(lab !== undefined ? { lab } : {}) };
}

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  /** The lecture point it tests (empty for a skipped or not-run check). */
  point: Text;
  /** What was seen; for skip and not-run, why it did not run. */
  seen: Text;
  /** concurrency only: how the server served several clients. */
  verdict?: 'concurrent' | 'iterative' | 'broken';
  /** concurrency only: how many clients were served at once (when some had to wait). */
  servedAtOnce?: number;
  /** max-clients only: what client N+1 met. */
  whenFull?: 'refused' | 'waited' | 'served';
  diagnosis?: Diagnosis;
}

/**
 * The exit codes of `posix-servers check` (README, "Check a server"):
 *   0  every check that ran passed (and with --strict, none was skipped);
 *   1  the server failed: a check failed (the server died during one, or missed --require), or
 *      --strict and a check was skipped;
 *   2  no verdict: nothing is listening on HOST:PORT, or the command line is wrong (as grep's and
 *      diff's 2: trouble, not an answer).
 */
export type ExitCode = 0 | 1 | 2;

export interface CheckReport {
  /** HOST:PORT as given ([IPv6]:PORT). */
  target: string;
  /** 'passed' (exit 0), 'failed' (exit 1), 'no-server' (exit 2: nothing answered, nothing was checked). */
  outcome: 'passed' | 'failed' | 'no-server';
  exitCode: ExitCode;
  /** no-server: what happened instead (`nothing is listening on HOST:PORT`). */
  failure?: Text;
  /** no-server: what the kernel shows about the port, where it tells why (TIME_WAIT rows). */
  diagnosis?: Diagnosis;
  results: CheckResult[];
  /** The check during which the server died, if it did. */
  diedDuring?: CheckName;
  /** --strict failed the run: these checks were skipped. */
  strictFailed?: CheckName[];
}

const L = (lang: Lang, m: Text) => m[lang];

/** A diagnosis and its lab, indented under what it explains. */
function diagnosisLines(d: Diagnosis, lang: Lang): string[] {
  const lines = [`    ${L(lang, text('diagnosis: ', '诊断：'))}${L(lang, d.text)}`];
  if (d.lab) lines.push(`    ${L(lang, text('see: ', '参见：'))}posix-servers lab ${d.lab}`);
  return lines;
}

/** The lines that print one result. */
export function resultLines(r: CheckResult, lang: Lang): string[] {
  if (r.status === 'skip') return [`${L(lang, text('SKIPPED', '跳过'))} ${r.name}${L(lang, text(': ', '：'))}${L(lang, r.seen)}`];
  if (r.status === 'not-run')
    return [`${L(lang, text('NOT RUN', '未运行'))} ${r.name}${L(lang, text(': ', '：'))}${L(lang, r.seen)}`];
  const status = r.status === 'pass' ? text('pass', '通过') : text('FAIL', '失败');
  const lines = [`${r.status === 'pass' ? '✓' : '✗'} ${r.name}: ${L(lang, status)} — ${L(lang, r.point)}`];
  lines.push(`    ${L(lang, text('seen: ', '看到：'))}${L(lang, r.seen)}`);
  if (r.diagnosis) lines.push(...diagnosisLines(r.diagnosis, lang));
  return lines;
}

const names = (rs: CheckResult[], lang: Lang) => rs.map((r) => r.name).join(lang === 'en' ? ', ' : '、');

/** The last line(s): how many passed, and what failed, did not run or was skipped. */
export function summaryLines(report: CheckReport, lang: Lang): string[] {
  if (report.outcome === 'no-server') {
    return [`✗ ${L(lang, report.failure!)}`, ...(report.diagnosis ? diagnosisLines(report.diagnosis, lang) : [])];
  }
  const rs = report.results;
  const ran = rs.filter((r) => r.status === 'pass' || r.status === 'fail');
  const passed = rs.filter((r) => r.status === 'pass');
  const failed = rs.filter((r) => r.status === 'fail');
  const notRun = rs.filter((r) => r.status === 'not-run');
  const skipped = rs.filter((r) => r.status === 'skip');
  const parts: Text[] = [
    text(`${passed.length} of ${ran.length} checks passed`, `${ran.length} 项检查中 ${passed.length} 项通过`),
  ];
  if (failed.length) parts.push(text(`failed: ${names(failed, 'en')}`, `失败：${names(failed, 'zh')}`));
  if (notRun.length) {
    parts.push(
      text(
        `not run (the server had died during ${report.diedDuring}): ${names(notRun, 'en')}`,
        `未运行（服务器已在 ${report.diedDuring} 检查中死去）：${names(notRun, 'zh')}`,
      ),
    );
  }
  if (skipped.length) {
    parts.push(
      report.strictFailed
        ? text(
            `SKIPPED: ${names(skipped, 'en')} — --strict fails a run with any check skipped`,
            `跳过：${names(skipped, 'zh')} —— 有检查被跳过，--strict 判为失败`,
          )
        : text(
            `SKIPPED: ${names(skipped, 'en')} — not a full check (--strict would fail it)`,
            `跳过：${names(skipped, 'zh')} —— 这不是完整的检查（--strict 会判为失败）`,
          ),
    );
  }
  const verdict = report.outcome === 'passed' ? text('PASSED', '通过') : text('FAILED', '未通过');
  return [`${L(lang, verdict)}${L(lang, text(': ', '：'))}${parts.map((p) => L(lang, p)).join(lang === 'en' ? '; ' : '；')}`];
}

/** The outcome and exit code of a run whose server answered, from its results. */
export function conclude(target: string, results: CheckResult[], strict: boolean, diedDuring?: CheckName): CheckReport {
  const skipped = results.filter((r) => r.status === 'skip').map((r) => r.name);
  const strictFailed = strict && skipped.length > 0 ? skipped : undefined;
  const failed = results.some((r) => r.status === 'fail') || strictFailed !== undefined;
  return {
    target,
    outcome: failed ? 'failed' : 'passed',
    exitCode: failed ? 1 : 0,
    results,
    ...(diedDuring ? { diedDuring } : {}),
    ...(strictFailed ? { strictFailed } : {}),
  };
}

/** The report of a run that found nothing to check (exit 2). */
export function noServer(target: string, failure: Text, why?: Diagnosis): CheckReport {
  return { target, outcome: 'no-server', exitCode: 2, failure, ...(why ? { diagnosis: why } : {}), results: [] };
}

/** The report as one JSON-ready object in one language (`check --json`). */
export function reportInLang(report: CheckReport, lang: Lang): object {
  return {
    target: report.target,
    outcome: report.outcome,
    exitCode: report.exitCode,
    ...(report.failure ? { failure: L(lang, report.failure) } : {}),
    ...(report.diagnosis ? { diagnosis: { ...report.diagnosis, text: L(lang, report.diagnosis.text) } } : {}),
    ...(report.diedDuring ? { diedDuring: report.diedDuring } : {}),
    ...(report.strictFailed ? { strictFailed: report.strictFailed } : {}),
    results: report.results.map((r) => ({
      ...r,
      point: L(lang, r.point),
      seen: L(lang, r.seen),
      ...(r.diagnosis ? { diagnosis: { ...r.diagnosis, text: L(lang, r.diagnosis.text) } } : {}),
    })),
  };
}
