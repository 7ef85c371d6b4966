#!/usr/bin/env node
// npm's install step for posix-servers (package.json "install"):
//   1. the prebuilt binaries for this platform (prebuilds/<platform>-<arch>/), when they load
//      here — tried in a child process, so that one that cannot load (an older glibc, musl)
//      falls back instead of failing;
//   2. otherwise compile with cmake-js (needs cmake, a C/C++ compiler and make): in an installed
//      package, in a temporary directory, from which only the files loaded at run time are copied
//      into build/ (the addon and the master in build/Release, the C programs in build/ref and
//      build/labs): no CMakeFiles/, object files or static libraries stay in node_modules;
//   3. a compile that cannot run says what to install.
// A git checkout always compiles (developers and CI build what they changed), and so does
// `npm install --build-from-source`. With --ignore-scripts this never runs: lib/addon.ts finds
// the prebuilt addon by itself.
'use strict';
const { spawnSync } = require('node:child_process');
const {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
} = require('node:fs');
const { tmpdir } = require('node:os');
const { delimiter, dirname, join } = require('node:path');
const { ADDON, FILES, MASTER, PREBUILDS, platformDir } = require('./native-files');

const ROOT = join(__dirname, '..');
const say = (line) => process.stderr.write(`posix-servers: ${line}\n`);

/** Why the prebuilt binaries in `dir` cannot be used here, or null when they can. */
function prebuildProblem(dir) {
  const missing = FILES.filter((f) => !f.optional && !existsSync(join(dir, f.ship)));
  if (missing.length === FILES.length) return `no prebuilt binaries for ${platformDir()}`;
  if (missing.length > 0) return `prebuilt ${missing.map((f) => f.ship).join(', ')} missing`;
  // Loading is the only true test (glibc version, musl, CPU): do it where a failure cannot hurt.
  const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(dir, ADDON.ship))})`], {
    encoding: 'utf8',
    timeout: 30000,
  });
  if (load.status !== 0) return firstLine(load.stderr) ?? `loading it failed (${load.signal ?? load.status})`;
  // The master program, run without arguments, refuses them and exits 2; the dynamic loader
  // refusing it exits otherwise (127, or 1 for a missing symbol version).
  const master = spawnSync(join(dir, MASTER.ship), [], { encoding: 'utf8', timeout: 30000 });
  if (master.status !== 2) return firstLine(master.stderr) ?? `${MASTER.ship} does not run (${master.signal ?? master.status})`;
  return null;
}

function firstLine(text) {
  const line = (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('at ') && !l.startsWith('node:') && !/^\^+$/.test(l));
  return line ?? null;
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** The tools a compile needs that are not installed: each entry is satisfied by any one of its names. */
function missingTools() {
  const needs = [
    { what: 'cmake', any: ['cmake'] },
    { what: 'g++', any: [process.env.CXX, 'g++', 'c++', 'clang++'] },
    { what: 'gcc', any: [process.env.CC, 'gcc', 'cc', 'clang'] },
    { what: 'make', any: ['make', 'ninja'] },
  ];
  return needs.filter((n) => !n.any.some((name) => name && onPath(name))).map((n) => n.what);
}

/** cmake-js compile into `out` (null: its own build/, as in a checkout); the exit status. */
function cmakeJsCompile(cmakeJs, out) {
  const args = [cmakeJs, 'compile', '--log-level', 'warn', ...(out ? ['--out', out] : [])];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) say(`the compile failed (${r.signal ?? `exit code ${r.status}`}); its output is above`);
  return r.status === 0 ? 0 : r.status || 1;
}

/** Compiles apart and keeps only what is loaded at run time (scripts/native-files.js), in build/. */
function compileApart(cmakeJs) {
  const out = mkdtempSync(join(tmpdir(), 'posix-servers-build-'));
  try {
    const status = cmakeJsCompile(cmakeJs, out);
    if (status !== 0) return status;
    const build = join(ROOT, 'build');
    rmSync(build, { recursive: true, force: true });
    for (const f of FILES) {
      const from = join(out, f.build);
      if (!existsSync(from)) {
        say(`the compile did not make ${f.build}`);
        return 1;
      }
      const to = join(build, f.build);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
      chmodSync(to, statSync(from).mode & 0o777);
    }
    return 0;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function compile(reason, inCheckout = false) {
  say(`compiling the addon with cmake-js (${reason})`);
  const missing = missingTools();
  if (missing.length > 0) {
    say(`cannot compile: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not installed.`);
    say('Install the build tools, then run `npm rebuild posix-servers`:');
    say('  Debian/Ubuntu: apt-get install cmake g++ make');
    say('  Fedora/RHEL:   dnf install cmake gcc-c++ make');
    say('  Alpine:        apk add cmake g++ make linux-headers');
    return 1;
  }
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
  } catch {
    say('cannot compile: the cmake-js package is missing (it is a dependency of posix-servers; reinstall it)');
    return 1;
  }
  // A checkout keeps its build directory: developers rebuild what they changed.
  return inCheckout ? cmakeJsCompile(cmakeJs, null) : compileApart(cmakeJs);
}

function main() {
  if (existsSync(join(ROOT, '.git'))) return compile('a git checkout builds from source', true);
  if (process.env.npm_config_build_from_source === 'true') return compile('--build-from-source');
  const why = prebuildProblem(join(ROOT, PREBUILDS, platformDir()));
  if (why === null) {
    say(`using the prebuilt binaries for ${platformDir()}`);
    return 0;
  }
  return compile(why);
}

process.exitCode = main();
