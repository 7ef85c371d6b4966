// What `serve` and `lab` share for --svg FILE and --ui [PORT]: the flags, and checking their values
// at once, so that a typo fails before the server runs, not when the picture is written at close.
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Flag } from './flags';

/** --svg FILE, as serve and lab declare it. */
export const SVG_FLAG: Flag = {
  name: 'svg',
  value: 'FILE',
  help: 'write the picture of the trace (a sequence diagram, SVG) to FILE',
  parse: (text, flag) => writableFile(flag, text),
};

/** --ui [PORT], as serve and lab declare it: `--ui` alone lets the kernel pick the port. */
export const UI_FLAG: Flag = {
  name: 'ui',
  value: 'PORT',
  whenOmitted: '0',
  help: 'serve the live view on 127.0.0.1:PORT (0 or none: any free port) and print its address',
  parse: (text, flag) => optionalPort(flag, text),
};

/** A file that can be written: its folder exists and is writable, and it is not a folder. */
function writableFile(flag: string, file: string): string {
  const path = resolve(file);
  try {
    accessSync(dirname(path), constants.W_OK);
  } catch {
    throw new Error(`${flag}: cannot write ${file}: its folder ${dirname(path)} does not exist or is not writable`);
  }
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // does not exist yet: it will be created
  }
  if (isDir) throw new Error(`${flag}: ${file} is a folder, not a file`);
  return file;
}

/** A port for the live view: 0..65535 (0: the kernel picks one). */
function optionalPort(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`${flag} takes a port number, got '${text}'`);
  const n = Number(text);
  if (n > 65535) throw new Error(`${flag} port must be from 0 to 65535, got ${n}`);
  return n;
}
