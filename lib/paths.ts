// Where the package's files are, whether this code runs compiled (dist/…) or from source under
// ts-jest (lib/…): both folders sit directly below the package root.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PACKAGE_ROOT = join(__dirname, '..');

/** One native file: where a cmake-js build puts it (below build/), where a prebuild carries it. */
export interface NativeFile {
  build: string;
  ship: string;
  /** Built only where its library is (ref-uring: liburing); a prebuild may lack it. */
  optional?: boolean;
}

/** scripts/native-files.js: the one list of the package's native files (shipped with it). */
interface NativeFiles {
  ADDON: NativeFile;
  MASTER: NativeFile;
  REFERENCES: Array<NativeFile & { model: string }>;
  LAB_PROGRAMS: Array<NativeFile & { name: string }>;
  FILES: NativeFile[];
  PREBUILDS: string;
  platformDir(platform?: string, arch?: string): string;
  GLIBC_FLOOR: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const NATIVE_FILES: NativeFiles = require(join(PACKAGE_ROOT, 'scripts', 'native-files.js'));

/** Where a cmake-js build of this package puts its outputs (npm install in a checkout, npm run build). */
export const BUILD_DIR = join(PACKAGE_ROOT, 'build');

/** Where the package carries the prebuilt binaries for this platform (prebuilds/linux-x64). */
export const PREBUILD_DIR = join(PACKAGE_ROOT, NATIVE_FILES.PREBUILDS, NATIVE_FILES.platformDir());

/**
 * The compiled JavaScript of a module of this package, by its path below lib/ without extension
 * (for example 'server/cluster-worker'): a script to run in another process must be JavaScript.
 */
export function compiledScript(modulePath: string): string {
  const file = join(PACKAGE_ROOT, 'dist', `${modulePath}.js`);
  if (!existsSync(file)) throw new Error(`${file} does not exist: run "npm run build"`);
  return file;
}
