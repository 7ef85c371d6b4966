#!/usr/bin/env node
// npm run prebuilds (and prepack, so that `npm pack` carries them): the prebuilt binaries for this
// machine's platform, in prebuilds/<platform>-<arch>/ (scripts/native-files.js lists them).
//
// Compiled apart from the development build (build-prebuild/), in Release, with the C++ runtime
// linked in (PS_STATIC_RUNTIME), then checked: no binary may need a glibc newer than the floor,
// nor libstdc++; the addon must load and the master must run. Build outputs, not committed.
'use strict';
const { spawnSync } = require('node:child_process');
const { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { ADDON, FILES, GLIBC_FLOOR, MASTER, PREBUILDS, platformDir } = require('./native-files');

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'build-prebuild');
const DEST = join(ROOT, PREBUILDS, platformDir());

function fail(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  return r;
}

/** Compares dotted versions part by part: 2.3.2 < 2.17 < 2.34. */
function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The glibc symbol versions a binary needs and the libraries it links (objdump -T -p). */
function dynamicNeeds(file) {
  const r = run('objdump', ['-T', '-p', file]);
  if (r.status !== 0) fail(`objdump ${file}: ${r.stderr.trim()}`);
  const glibc = [...new Set([...r.stdout.matchAll(/\bGLIBC_(\d+(?:\.\d+)+)\b/g)].map((m) => m[1]))];
  const needed = [...r.stdout.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]);
  const newest = glibc.sort(compareVersions).pop() ?? null;
  return { newest, needed, cxx: /\bGLIBCXX_|\bCXXABI_/.test(r.stdout) };
}

if (process.platform !== 'linux') fail(`prebuilt binaries are made on Linux (this is ${process.platform})`);
const glibcHere = process.report.getReport().header.glibcVersionRuntime;
if (!glibcHere) fail('prebuilt binaries are made on a glibc system (this C library is not glibc)');

const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
const build = run(
  process.execPath,
  [cmakeJs, 'compile', '--log-level', 'warn', '--out', OUT, '--config', 'Release', '--CDPS_STATIC_RUNTIME=ON'],
  { cwd: ROOT, stdio: 'inherit' },
);
if (build.status !== 0) fail(`the compile failed (exit code ${build.status})`);

rmSync(DEST, { recursive: true, force: true });
for (const f of FILES) {
  const from = join(OUT, f.build);
  if (!existsSync(from) && f.optional) {
    process.stdout.write(`prebuild: ${f.ship} left out: not built for this target (scripts/native-files.js)\n`);
    continue;
  }
  if (!existsSync(from)) fail(`${from} was not built`);
  const to = join(DEST, f.ship);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, statSync(from).mode & 0o777);
  const needs = dynamicNeeds(to);
  if (needs.newest !== null && compareVersions(needs.newest, GLIBC_FLOOR) > 0) {
    fail(`${f.ship} needs glibc ${needs.newest}, newer than the floor ${GLIBC_FLOOR} (scripts/native-files.js)`);
  }
  if (needs.cxx || needs.needed.some((lib) => lib.startsWith('libstdc++'))) {
    fail(`${f.ship} needs the system's libstdc++: it must be linked with PS_STATIC_RUNTIME`);
  }
  process.stdout.write(
    `prebuild: ${PREBUILDS}/${platformDir()}/${f.ship} (${Math.round(statSync(to).size / 1024)} KiB, glibc ${needs.newest ?? '-'}, ${needs.needed.join(' ')})\n`,
  );
}

// What scripts/install.js will try on a user's machine, tried here first.
const load = run(process.execPath, ['-e', `require(${JSON.stringify(join(DEST, ADDON.ship))})`]);
if (load.status !== 0) fail(`the prebuilt addon does not load: ${load.stderr.trim()}`);
const master = run(join(DEST, MASTER.ship), []);
if (master.status !== 2) fail(`the prebuilt ${MASTER.ship} does not run: ${master.stderr.trim()}`);
process.stdout.write(`prebuild: ${PREBUILDS}/${platformDir()} loads here (glibc ${glibcHere}; floor ${GLIBC_FLOOR})\n`);
