// Where the package's files are, whether this code runs compiled (dist/…) or from source under
// ts-jest (lib/…): both folders sit directly below the package root.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PACKAGE_ROOT = join(__dirname, '..');

/**
 * The compiled JavaScript of a module of this package, by its path below lib/ without extension
 * (for example 'server/cluster-worker'): a script to run in another process must be JavaScript.
 */
export function compiledScript(modulePath: string): string {
  const file = join(PACKAGE_ROOT, 'dist', `${modulePath}.js`);
  if (!existsSync(file)) throw new Error(`${file} does not exist: run "npm run build"`);
  return file;
}
