// Programs some tests run that nobody here wrote (peers to hold the servers against, strace to
// watch them) and that a fresh Debian with Node, a C/C++ toolchain and cmake does not have. Each
// test that needs one goes through needs(): where the program is here, the test runs; where it is
// missing on CI (CI set: .ci/run installs every one of them), the test fails, naming the Debian
// package; anywhere else it is skipped, loudly — a notice on stderr naming the program, its
// package and what goes untested, and the run ends with the list of all of them
// (test/external-summary.ts, jest's globalTeardown). Never a silent skip.
import { accessSync, appendFileSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { referenceBinary } from '../lib/bench/reference';
import { SKIP_LOG_ENV, SkipNotice } from './external-summary';

interface ExternalProgram {
  /** The Debian package that brings it. */
  debian: string;
  here(): boolean;
  /** Why it is missing, as a sentence's end: "is not installed (…)". */
  missing: string;
}

/** A regular file this process may execute, in a directory of PATH (a path bound to /dev/null is none). */
function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      if (statSync(join(dir, name)).isFile()) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const installed = (name: string, debian: string): ExternalProgram => ({
  debian,
  here: () => onPath(name),
  missing: `is not installed (not found on PATH; Debian: apt-get install ${debian})`,
});

export const EXTERNAL_PROGRAMS = {
  strace: installed('strace', 'strace'),
  socat: installed('socat', 'socat'),
  tcpserver: installed('tcpserver', 'ucspi-tcp'),
  xinetd: installed('xinetd', 'xinetd'),
  // Not a program of the machine's but one of ours that the build leaves out where liburing is
  // missing (CMakeLists.txt): ref-uring, the uring model's C reference, is written with liburing.
  'ref-uring': {
    debian: 'liburing-dev',
    here: () => existsSync(referenceBinary('uring')),
    missing: 'was not built: it links liburing (Debian: apt-get install liburing-dev, then npm run build)',
  },
} satisfies Record<string, ExternalProgram>;

export type External = keyof typeof EXTERNAL_PROGRAMS;

/** CI as CI services and .ci/run set it (CI=true); CI=false or CI=0 is not CI. */
export function onCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export interface Need {
  /** The program is here: the tests run. */
  readonly here: boolean;
  /** `describe` where the program is here; else every test of the block fails (CI) or is skipped, noticed (elsewhere). */
  describe(name: string, fn: () => void): void;
  /** `test` where the program is here; else the test fails (CI) or is skipped, noticed (elsewhere). */
  test(name: string, fn: jest.ProvidesCallback, timeout?: number): void;
  /**
   * For a test that runs either way and leaves out only the part that needs the program: true
   * where it is here; false elsewhere (the notice was given); on CI, where it must be, throws.
   */
  available(): boolean;
}

/**
 * What a test file needs of `program`, and what goes untested without it (`untested`: a phrase,
 * as the notice and the summary print it). Call it at the top level of the file.
 */
export function needs(program: External, untested: string, env: NodeJS.ProcessEnv = process.env): Need {
  const p: ExternalProgram = EXTERNAL_PROGRAMS[program];
  const here = p.here();
  const missing = new Error(`${program} ${p.missing}; on CI every test runs (.ci/run installs ${p.debian})`);
  if (!here && !onCI(env)) notice({ program, debian: p.debian, missing: p.missing, file: testFile(), untested }, env);
  if (here) {
    return { here, describe: (name, fn) => describe(name, fn), test: (name, fn, t) => test(name, fn, t), available: () => true };
  }
  if (onCI(env)) {
    return {
      here,
      describe: (name, fn) =>
        describe(name, () => {
          beforeAll(() => {
            throw missing;
          });
          fn();
        }),
      test: (name, _fn, t) =>
        test(
          name,
          () => {
            throw missing;
          },
          t,
        ),
      available: () => {
        throw missing;
      },
    };
  }
  return {
    here,
    describe: (name, fn) => describe.skip(name, fn),
    test: (name, fn, t) => test.skip(name, fn, t),
    available: () => false,
  };
}

function testFile(): string {
  const path = expect.getState().testPath;
  return path ? relative(join(__dirname, '..'), path) : '(unknown test file)';
}

/** One loud line on stderr now, and a line in the run's log for the summary at its end. */
function notice(n: SkipNotice, env: NodeJS.ProcessEnv): void {
  process.stderr.write(`posix-servers tests: SKIPPED in ${n.file}: ${n.untested} — ${n.program} ${n.missing}\n`);
  const log = env[SKIP_LOG_ENV];
  if (log) appendFileSync(log, JSON.stringify(n) + '\n');
}
