#!/usr/bin/env node
// npm run prebuilds (and prepack, so that `npm pack` carries them): the prebuilt binaries, in
// prebuilds/<platform>-<arch>/ (scripts/native-files.js lists them), for this machine's platform
// and, on linux-x64, for linux-arm64 too: cross-compiled with Debian's cross toolchain
// (g++-aarch64-linux-gnu, cmake/aarch64-linux-gnu.cmake). Without that toolchain the arm64 ones
// are skipped, loudly; `npm run check:package` requires them and runs them under qemu-user.
//
// Each is compiled apart from the development build (build-prebuild/<platform>-<arch>/), in
// Release, with the C++ runtime linked in (PS_STATIC_RUNTIME), then checked with the target's
// objdump: no binary may need a glibc newer than the floor, nor libstdc++. The host's addon must
// load here and its master must run; the cross-compiled master runs under qemu-aarch64 when that
// is installed. The N-API headers come from the npm package node-api-headers (a dependency of
// cmake-js): nothing is downloaded, and the one addon serves every Node from 20.4 on.
// Build outputs, not committed.
'use strict';
const { spawnSync } = require('node:child_process');
const { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, rmSync, statSync } = require('node:fs');
const { delimiter, dirname, join } = require('node:path');
const { ADDON, FILES, GLIBC_FLOOR, MASTER, PREBUILDS, platformDir } = require('./native-files');

const ROOT = join(__dirname, '..');

function fail(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  return r;
}

function onPath(name) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
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
function dynamicNeeds(objdump, file) {
  const r = run(objdump, ['-T', '-p', file]);
  if (r.status !== 0) fail(`${objdump} ${file}: ${r.stderr.trim()}`);
  const glibc = [...new Set([...r.stdout.matchAll(/\bGLIBC_(\d+(?:\.\d+)+)\b/g)].map((m) => m[1]))];
  const needed = [...r.stdout.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]);
  const newest = glibc.sort(compareVersions).pop() ?? null;
  return { newest, needed, cxx: /\bGLIBCXX_|\bCXXABI_/.test(r.stdout) };
}

if (process.platform !== 'linux') fail(`prebuilt binaries are made on Linux (this is ${process.platform})`);
const glibcHere = process.report.getReport().header.glibcVersionRuntime;
if (!glibcHere) fail('prebuilt binaries are made on a glibc system (this C library is not glibc)');

/** What to build: this machine's platform, natively; from x64, arm64 with the cross toolchain. */
const TARGETS = [{ arch: process.arch, objdump: 'objdump', cmake: [] }];
if (process.arch === 'x64') {
  TARGETS.push({
    arch: 'arm64',
    objdump: 'aarch64-linux-gnu-objdump',
    cmake: [`--CDCMAKE_TOOLCHAIN_FILE=${join(ROOT, 'cmake', 'aarch64-linux-gnu.cmake')}`],
    tools: ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'aarch64-linux-gnu-objdump'],
    install: 'apt-get install g++-aarch64-linux-gnu',
    // The master run by qemu-user, its libraries from the cross toolchain's tree.
    runMaster: onPath('qemu-aarch64') ? (file) => run('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', file]) : null,
  });
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
const made = [];
for (const target of TARGETS) {
  const name = platformDir(process.platform, target.arch);
  const cross = target.arch !== process.arch;
  const missing = (target.tools ?? []).filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    process.stdout.write(
      `prebuild: SKIPPED ${PREBUILDS}/${name}: ${missing.join(', ')} not installed (Debian: ${target.install}); ` +
        `the package will not carry ${name} binaries\n`,
    );
    continue;
  }
  const out = join(ROOT, 'build-prebuild', name);
  const dest = join(ROOT, PREBUILDS, name);
  const build = run(
    process.execPath,
    [cmakeJs, 'compile', '--log-level', 'warn', '--out', out, '--config', 'Release', '--CDPS_STATIC_RUNTIME=ON', ...target.cmake],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (build.status !== 0) fail(`the compile for ${name} failed (exit code ${build.status})`);

  rmSync(dest, { recursive: true, force: true });
  for (const f of FILES) {
    const from = join(out, f.build);
    if (!existsSync(from) && f.optional) {
      process.stdout.write(`prebuild: ${name}/${f.ship} left out: not built for this target (scripts/native-files.js)\n`);
      continue;
    }
    if (!existsSync(from)) fail(`${from} was not built`);
    const to = join(dest, f.ship);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
    chmodSync(to, statSync(from).mode & 0o777);
    const needs = dynamicNeeds(target.objdump, to);
    if (needs.newest !== null && compareVersions(needs.newest, GLIBC_FLOOR) > 0) {
      fail(`${name}/${f.ship} needs glibc ${needs.newest}, newer than the floor ${GLIBC_FLOOR} (scripts/native-files.js)`);
    }
    if (needs.cxx || needs.needed.some((lib) => lib.startsWith('libstdc++'))) {
      fail(`${name}/${f.ship} needs the system's libstdc++: it must be linked with PS_STATIC_RUNTIME`);
    }
    process.stdout.write(
      `prebuild: ${PREBUILDS}/${name}/${f.ship} (${Math.round(statSync(to).size / 1024)} KiB, glibc ${needs.newest ?? '-'}, ${needs.needed.join(' ')})\n`,
    );
  }

  if (!cross) {
    // What scripts/install.js will try on a user's machine, tried here first.
    const load = run(process.execPath, ['-e', `require(${JSON.stringify(join(dest, ADDON.ship))})`]);
    if (load.status !== 0) fail(`the prebuilt addon does not load: ${load.stderr.trim()}`);
    const master = run(join(dest, MASTER.ship), []);
    if (master.status !== 2) fail(`the prebuilt ${MASTER.ship} does not run: ${master.stderr.trim()}`);
    process.stdout.write(`prebuild: ${PREBUILDS}/${name} loads here (glibc ${glibcHere}; floor ${GLIBC_FLOOR})\n`);
  } else if (target.runMaster) {
    // The master refuses to run without its arguments (exit 2): it started, its libraries were found.
    const master = target.runMaster(join(dest, MASTER.ship));
    if (master.status !== 2) fail(`the prebuilt ${name} ${MASTER.ship} does not run under qemu: ${master.stderr.trim()}`);
    process.stdout.write(
      `prebuild: ${PREBUILDS}/${name} cross-compiled; its master runs under qemu-aarch64 (floor ${GLIBC_FLOOR})\n`,
    );
  } else {
    process.stdout.write(`prebuild: ${PREBUILDS}/${name} cross-compiled; not run here (no qemu-aarch64)\n`);
  }
  made.push(name);
}
process.stdout.write(`prebuild: ${made.join(', ')}\n`);
