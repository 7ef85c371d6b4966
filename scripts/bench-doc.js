#!/usr/bin/env node
// npm run bench:doc — regenerates BENCHMARKS.md's tables, not accumulates them: a clean build
// (cmake-js rebuild, tsc), then each documented `posix-servers bench` invocation below, and each
// table written between its markers in BENCHMARKS.md (<!-- bench:NAME --> … <!-- /bench:NAME -->)
// with its command, its date, the commit it was built from and the machine's load before and
// after; the charts to docs/; the goals checked against the figures of this run. Everything else
// in BENCHMARKS.md is prose, and says nothing a rerun would make false.
//
//   npm run bench:doc                       # all of it: about half an hour on 2 cores
//   npm run bench:doc -- --only designs     # one table (comparison, designs, sustained)
//   npm run bench:doc -- --no-build         # skip the clean build (the run then says so)
//   npm run bench:doc -- --quick            # 0.2 s runs, 1–2 rounds: checks the pipeline (the
//                                           # tables show the flags; they are no figures to keep)
//
// Run it on a quiet machine: every other process competes with the servers and the client.
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { loadavg, tmpdir } = require('node:os');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DOC = join(ROOT, 'BENCHMARKS.md');

/** The tables, in the order they are run; each one `posix-servers bench` invocation. */
const RUNS = [
  { name: 'comparison', args: ['--svg', 'docs/bench.svg'], quick: ['--duration', '0.2', '--repeat', '1'] },
  {
    name: 'designs',
    args: ['--workload', 'pingpong,churn,rpc', '--connections', '50', '--repeat', '5', '--svg', 'docs/bench-designs.svg'],
    quick: ['--duration', '0.2', '--repeat', '2'],
  },
  { name: 'sustained', args: ['--sustained'], quick: ['--duration', '0.2', '--rounds', '3'] },
];

function parseArgs(argv) {
  const out = { only: null, build: true, quick: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') out.only = (argv[++i] ?? '').split(',');
    else if (argv[i] === '--no-build') out.build = false;
    else if (argv[i] === '--quick') out.quick = true;
    else throw new Error(`bench-doc: unknown argument '${argv[i]}' (--only NAME[,NAME], --no-build, --quick)`);
  }
  for (const name of out.only ?? []) {
    if (!RUNS.some((r) => r.name === name))
      throw new Error(`bench-doc: no table '${name}' (${RUNS.map((r) => r.name).join(', ')})`);
  }
  return out;
}

const utc = (d) =>
  d
    .toISOString()
    .replace('T', ' ')
    .replace(/:\d\d\.\d+Z$/, ' UTC');
const load = () => loadavg()[0].toFixed(1);

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Replaces what stands between <!-- bench:NAME --> and <!-- /bench:NAME --> in `doc`. */
function replaceBlock(doc, name, body) {
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  if (a < 0 || b < a) throw new Error(`bench-doc: BENCHMARKS.md has no ${open} … ${close}`);
  return `${doc.slice(0, a + open.length)}\n${body}\n${doc.slice(b)}`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Its own outputs aside, a tree that differs from the commit is said to.
  const outputs = [':!BENCHMARKS.md', ...RUNS.flatMap((r) => r.args.filter((a) => a.endsWith('.svg')).map((a) => `:!${a}`))];
  const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', '.', ...outputs]) !== '';
  const commit = `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ' (with uncommitted changes)' : ''}`;
  if (opts.build) {
    console.error('bench-doc: clean build (cmake-js rebuild, tsc)');
    execFileSync('npx', ['cmake-js', 'rebuild', '--log-level', 'warn'], { cwd: ROOT, stdio: 'inherit' });
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  const build = opts.build ? 'a clean build' : 'the build as it was (--no-build)';
  const { designGoals, sustainedGoals, uringGoals, formatGoals } = require(join(ROOT, 'dist', 'bench', 'goals.js'));
  const dir = mkdtempSync(join(tmpdir(), 'bench-doc-'));
  let doc = readFileSync(DOC, 'utf8');
  const reports = {};
  try {
    for (const { name, args, quick } of RUNS) {
      const run = { name, args: opts.quick ? [...args, ...quick] : args };
      if (opts.only && !opts.only.includes(run.name)) continue;
      const json = join(dir, `${run.name}.json`);
      const started = new Date();
      const loadBefore = load();
      console.error(`bench-doc: posix-servers bench ${run.args.join(' ')}`);
      const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'bench', ...run.args, '--json', json], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.status !== 0) throw new Error(`bench-doc: bench ${run.args.join(' ')} exited with ${r.status ?? r.signal}`);
      reports[run.name] = JSON.parse(readFileSync(json, 'utf8'));
      const header =
        `\`posix-servers bench ${run.args.join(' ')}\` — run ${utc(started)} to ${utc(new Date())}, ` +
        `from ${build} of commit ${commit}; 1-minute load average ${loadBefore} before, ${load()} after.`;
      doc = replaceBlock(doc, run.name, `${header}\n\n\`\`\`text\n${r.stdout.trimEnd()}\n\`\`\``);
      writeFileSync(DOC, doc); // a table at a time: an interrupted regeneration keeps what it finished
    }
    if (reports.comparison || reports.designs || reports.sustained) {
      const goals = [
        ...(reports.designs ? designGoals(reports.designs) : []),
        ...(reports.sustained ? sustainedGoals(reports.sustained) : []),
        ...(reports.comparison ? uringGoals(reports.comparison) : []),
      ];
      const sources = ['designs', 'sustained', 'comparison'].filter((name) => reports[name]);
      const names = sources.length > 1 ? `${sources.slice(0, -1).join(', ')} and ${sources.at(-1)}` : sources[0];
      doc = replaceBlock(doc, 'goals', `From the ${names} run${sources.length > 1 ? 's' : ''} above:\n\n${formatGoals(goals)}`);
      writeFileSync(DOC, doc);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.error('bench-doc: BENCHMARKS.md rewritten');
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
