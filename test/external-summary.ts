// jest's globalTeardown: the run ends with the list of the tests skipped here because a program
// was missing (test/external.ts), grouped by program with its Debian package, after jest's own
// summary — so that a green run on a machine without them says loudly what it did not test.
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/** The file the notices of a run are appended to, one JSON line each (test/external-setup.ts sets it). */
export const SKIP_LOG_ENV = 'POSIX_SERVERS_SKIP_LOG';

export interface SkipNotice {
  program: string;
  debian: string;
  /** Why it is missing, as the end of a sentence that starts with the program's name. */
  missing: string;
  file: string;
  untested: string;
}

/** The summary the run ends with: each program missing, its package, and what went untested where; '' when none. */
export function skipSummary(notices: SkipNotice[]): string {
  if (notices.length === 0) return '';
  const byProgram = new Map<string, SkipNotice[]>();
  for (const n of notices) byProgram.set(n.program, [...(byProgram.get(n.program) ?? []), n]);
  const programs = [...byProgram.keys()].sort();
  const lines = [
    `posix-servers tests: SKIPPED here, for want of ${programs.length === 1 ? 'a program' : `${programs.length} programs`} (CI installs each, and fails without it):`,
  ];
  for (const program of programs) {
    const of = byProgram.get(program)!.sort((a, b) => a.file.localeCompare(b.file));
    lines.push(`  ${program} — Debian: ${of[0].debian}`);
    for (const n of of) lines.push(`    ${n.file}: ${n.untested}`);
  }
  const packages = [...new Set(programs.map((p) => byProgram.get(p)![0].debian))].sort();
  const rebuild = programs.includes('ref-uring') ? ', then npm run build' : '';
  lines.push(`To run every test: apt-get install ${packages.join(' ')}${rebuild}`);
  return lines.join('\n') + '\n';
}

export default function printSkipSummary(): void {
  const log = process.env[SKIP_LOG_ENV];
  if (!log) return;
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } finally {
    rmSync(dirname(log), { recursive: true, force: true });
  }
  const notices = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as SkipNotice);
  process.stderr.write(skipSummary(notices));
}
