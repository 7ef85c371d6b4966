// The rule for tests that need a program nobody here wrote (test/external.ts): it runs where the
// program is, fails on CI where it is not, and is skipped loudly elsewhere; .ci/run installs every one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTERNAL_PROGRAMS, onCI } from './external';
import { skipSummary, type SkipNotice } from './external-summary';

test('CI is set as CI services set it; CI=false, CI=0 and an empty CI are not CI', () => {
  expect(onCI({ CI: 'true' })).toBe(true);
  expect(onCI({ CI: '1' })).toBe(true);
  expect(onCI({})).toBe(false);
  expect(onCI({ CI: '' })).toBe(false);
  expect(onCI({ CI: 'false' })).toBe(false);
  expect(onCI({ CI: '0' })).toBe(false);
});

test('.ci/run installs the Debian package of every program test/external.ts knows', () => {
  const run = readFileSync(join(__dirname, '..', '.ci', 'run'), 'utf8');
  for (const [program, p] of Object.entries(EXTERNAL_PROGRAMS)) {
    expect(`${program}: ${run.includes(`need+=(${p.debian})`) ? p.debian : 'not installed by .ci/run'}`).toBe(
      `${program}: ${p.debian}`,
    );
  }
});

test('the summary names each missing program once, its package, and every file and thing left untested', () => {
  const n = (program: string, debian: string, file: string, untested: string): SkipNotice => ({
    program,
    debian,
    missing: 'is not installed',
    file,
    untested,
  });
  expect(skipSummary([])).toBe('');
  expect(
    skipSummary([
      n('strace', 'strace', 'test/labs.test.ts', 'the uring lab'),
      n('ref-uring', 'liburing-dev', 'test/reference.test.ts', 'ref-uring'),
      n('strace', 'strace', 'test/designs.test.ts', 'no clone() per connection'),
    ]),
  ).toBe(
    [
      'posix-servers tests: SKIPPED here, for want of 2 programs (CI installs each, and fails without it):',
      '  ref-uring — Debian: liburing-dev',
      '    test/reference.test.ts: ref-uring',
      '  strace — Debian: strace',
      '    test/designs.test.ts: no clone() per connection',
      '    test/labs.test.ts: the uring lab',
      'To run every test: apt-get install liburing-dev strace, then npm run build',
      '',
    ].join('\n'),
  );
});

test('a missing program is skipped with a notice in the run’s log off CI, and fails every test on CI', () => {
  // A child jest run of a test file that needs a program that is not on PATH (an empty PATH).
  const dir = mkdtempSync(join(tmpdir(), 'ps-external-'));
  try {
    const run = (ci: string) =>
      spawnSync(
        process.execPath,
        [require.resolve('jest/bin/jest'), '--ci', '--runInBand', '--testMatch', '**/fixtures/needs-strace.fixture.ts'],
        {
          cwd: join(__dirname, '..'),
          encoding: 'utf8',
          timeout: 60000,
          env: { ...process.env, CI: ci, PATH: dir },
        },
      );
    const off = run('');
    expect(off.status).toBe(0);
    expect(off.stderr).toContain(
      'posix-servers tests: SKIPPED in test/fixtures/needs-strace.fixture.ts: the fixture — strace is not installed',
    );
    expect(off.stderr).toContain('\n  strace — Debian: strace\n    test/fixtures/needs-strace.fixture.ts: the fixture\n');
    expect(off.stderr).toMatch(/Tests: +2 skipped, 2 total/);
    const on = run('true');
    expect(on.status).toBe(1);
    expect(on.stderr).not.toContain('SKIPPED');
    expect(on.stderr).toMatch(/Tests: +2 failed, 2 total/);
    expect(on.stderr).toContain('strace is not installed (not found on PATH; Debian: apt-get install strace)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90000);
