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
//   UNP_SERVER_DIR=…/unpv13e/server npm run bench:doc
//                                           # also the table of Stevens' own servers (STEVENS
//                                           # below), which needs UNP's source built; without
//                                           # it that table is left as it was, dated
//
// Run it on a quiet machine: every other process competes with the servers and the client.
'use strict';

const { execFileSync, spawn, spawnSync } = require('node:child_process');
const { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const net = require('node:net');
const { loadavg, tmpdir } = require('node:os');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DOC = join(ROOT, 'BENCHMARKS.md');

/** The tables, in the order they are run; each one `posix-servers bench` invocation. */
const RUNS = [
  { name: 'comparison', args: ['--wide', '--svg', 'docs/bench.svg'], quick: ['--duration', '0.2', '--repeat', '1'] },
  {
    name: 'designs',
    args: [
      '--wide',
      '--workload',
      'pingpong,churn,rpc',
      '--connections',
      '50',
      '--repeat',
      '5',
      '--svg',
      'docs/bench-designs.svg',
    ],
    quick: ['--duration', '0.2', '--repeat', '2'],
  },
  { name: 'sustained', args: ['--sustained'], quick: ['--duration', '0.2', '--rounds', '3'] },
];

/**
 * Stevens' own servers of UNP ch. 30 (github.com/unpbook/unpv13e, `./configure && make -C lib &&
 * make -C server`), each started on a free loopback port with 4 children or threads (the pool the
 * models get for 4 clients), measured as --targets next to the models of their designs. UNP's
 * fork server (serv01) is left out: the children it reaps keep no books a --target can read.
 */
const STEVENS = {
  name: 'stevens',
  servers: ['serv02', 'serv03', 'serv04', 'serv05', 'serv06', 'serv07', 'serv08'],
  args: [
    '--wide',
    '--workload',
    'rpc',
    '--repeat',
    '5',
    '--models',
    'fork,prefork,prefork-flock,prefork-mutex,prefork-pass,thread,prethread,prethread-main',
  ],
  quick: ['--duration', '0.2', '--repeat', '1'],
};

/** A loopback port nobody listens on now (UNP's servers take a port, not 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts Stevens' servers from `dir`; resolves with each one's name, address and process (none left running on failure). */
async function startStevens(dir) {
  const started = [];
  try {
    await startEach(dir, started);
  } catch (e) {
    await stopStevens(started);
    throw e;
  }
  return started;
}

async function startEach(dir, started) {
  for (const name of STEVENS.servers) {
    const bin = join(dir, name);
    if (!existsSync(bin)) throw new Error(`bench-doc: ${bin} is missing (build UNP's server directory: make -C server)`);
    const port = await freePort();
    const args = name === 'serv06' ? ['127.0.0.1', String(port)] : ['127.0.0.1', String(port), '4'];
    const child = spawn(bin, args, { cwd: dir, stdio: 'ignore', detached: true });
    started.push({ name, address: `127.0.0.1:${port}`, child });
  }
  for (const s of started) {
    const [host, port] = s.address.split(':');
    for (let i = 0; ; i++) {
      const up = await new Promise((resolve) => {
        const c = net.connect(Number(port), host, () => {
          c.destroy();
          resolve(true);
        });
        c.on('error', () => resolve(false));
      });
      if (up) break;
      if (i === 50 || s.child.exitCode !== null) throw new Error(`bench-doc: ${s.name} did not listen on ${s.address}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** SIGINT (UNP's servers print their CPU time and end their children), SIGKILL a second later. */
async function stopStevens(started) {
  const signal = (s, sig) => {
    try {
      process.kill(-s.child.pid, sig); // the server's process group: its children too
    } catch {
      // already gone, group and all
    }
  };
  for (const s of started) signal(s, 'SIGINT');
  await new Promise((r) => setTimeout(r, 1000));
  for (const s of started) signal(s, 'SIGKILL');
}

function parseArgs(argv) {
  const out = { only: null, build: true, quick: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') out.only = (argv[++i] ?? '').split(',');
    else if (argv[i] === '--no-build') out.build = false;
    else if (argv[i] === '--quick') out.quick = true;
    else throw new Error(`bench-doc: unknown argument '${argv[i]}' (--only NAME[,NAME], --no-build, --quick)`);
  }
  for (const name of out.only ?? []) {
    if (!RUNS.some((r) => r.name === name) && name !== STEVENS.name)
      throw new Error(`bench-doc: no table '${name}' (${[...RUNS, STEVENS].map((r) => r.name).join(', ')})`);
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

/** Runs `posix-servers bench` with `args` (and --json into `json`); its table, headed by the command and the run's facts. */
function benchBlock(args, json, about) {
  const started = new Date();
  const loadBefore = load();
  console.error(`bench-doc: posix-servers bench ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'bench', ...args, '--json', json], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench-doc: bench ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  const header =
    `\`posix-servers bench ${args.join(' ')}\` — run ${utc(started)} to ${utc(new Date())}, ` +
    `from ${about.build} of commit ${about.commit}; 1-minute load average ${loadBefore} before, ${load()} after.`;
  return { report: JSON.parse(readFileSync(json, 'utf8')), text: `${header}\n\n\`\`\`text\n${r.stdout.trimEnd()}\n\`\`\`` };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const unpDir = process.env.UNP_SERVER_DIR;
  if (opts.only?.includes(STEVENS.name) && !unpDir) throw new Error('bench-doc: the stevens table needs UNP_SERVER_DIR');
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
      const block = benchBlock(run.args, join(dir, `${run.name}.json`), { build, commit });
      reports[run.name] = block.report;
      doc = replaceBlock(doc, run.name, block.text);
      writeFileSync(DOC, doc); // a table at a time: an interrupted regeneration keeps what it finished
    }
    if (unpDir && (!opts.only || opts.only.includes(STEVENS.name))) {
      const servers = await startStevens(unpDir);
      try {
        const args = [
          ...(opts.quick ? [...STEVENS.args, ...STEVENS.quick] : STEVENS.args),
          '--target',
          servers.map((s) => s.address).join(','),
          '--target-pid',
          servers.map((s) => s.child.pid).join(','),
        ];
        const block = benchBlock(args, join(dir, 'stevens.json'), { build, commit });
        const which = servers.map((s) => `${s.address} ${s.name}`).join(', ');
        doc = replaceBlock(doc, STEVENS.name, `Stevens' servers: ${which}.\n\n${block.text}`);
        writeFileSync(DOC, doc);
      } finally {
        await stopStevens(servers);
      }
    } else if (!opts.only) {
      console.error("bench-doc: Stevens' own servers: not run (UNP_SERVER_DIR unset); their table is left as it was, dated");
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

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
