// The docs cannot drift unnoticed: every relative link and file reference in README.md and docs/
// resolves (files and #anchors); every fenced code block is run or checked, unless it is marked
// as a fragment (CONTRIBUTING.md, "Docs"); every model and every CLI flag appears in the CLI's own
// help and in docs/CLI.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BENCH, parseBenchArgs } from '../lib/cli/bench';
import { CHECK, parseCheckArgs } from '../lib/cli/check';
import { Command, commandHelp, parseCommand } from '../lib/cli/flags';
import { LAB } from '../lib/cli/lab';
import { parseServeArgs, SERVE } from '../lib/cli/serve';
import { BENCH_MODELS } from '../lib/bench/catalogue';
import { LABS } from '../lib/labs';
import { MODELS } from '../lib/server/options';

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
/** The marker that exempts the fenced block right after it from being run. */
export const FRAGMENT = '<!-- fragment -->';

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

interface Block {
  file: string;
  line: number;
  lang: string;
  text: string;
  fragment: boolean;
  /** A sample of what a command prints (`<!-- output: COMMAND -->`, scripts/doc-samples.js). */
  output: boolean;
}

/** The fenced blocks of a markdown file, and its text outside them (for links). */
function parse(file: string): { blocks: Block[]; prose: string[] } {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  const prose: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]);
    if (!open) {
      prose.push(lines[i]);
      continue;
    }
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === '') prev--;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    blocks.push({
      file,
      line: start + 1,
      lang: open[1],
      text: body.join('\n'),
      fragment: prev >= 0 && lines[prev].trim() === FRAGMENT,
      output: prev >= 0 && /^<!-- output( excerpt)?: .+ -->$/.test(lines[prev].trim()),
    });
  }
  return { blocks, prose };
}

/** GitHub's anchors of a markdown file's headings. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of parse(file).prose) {
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const slug = h[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Drops inline code spans, where brackets are code, not links. */
const withoutCode = (line: string) => line.replace(/`[^`]*`/g, '');

/** Files whose links are checked too (their code blocks are not: they are the developers'). */
const LINKED = [...DOCS, 'ARCHITECTURE.md', 'CONTRIBUTING.md', 'BENCHMARKS.md'];

test('the README stays what a newcomer can hold: 250 lines at most (the reference is in docs/)', () => {
  expect(readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(250);
});

describe('links and file references', () => {
  it.each(LINKED)('%s: every relative link resolves, anchors included', (file) => {
    const broken: string[] = [];
    for (const line of parse(file).prose) {
      for (const m of withoutCode(line).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue; // http(s), mailto
        const [path, anchor] = target.split('#');
        const resolved = path === '' ? file : join(dirname(file), path);
        if (!existsSync(join(ROOT, resolved))) {
          broken.push(`${target}: no file ${resolved}`);
          continue;
        }
        if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) {
          broken.push(`${target}: no heading #${anchor} in ${resolved}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it.each(LINKED)('%s: every file of the repository it names in code spans exists', (file) => {
    const missing: string[] = [];
    for (const line of parse(file).prose) {
      for (const m of line.matchAll(/`((?:lib|native|ref|scripts|test|docs|cmake|\.ci)\/[A-Za-z0-9_./-]+)`/g)) {
        const path = m[1];
        if (!existsSync(join(ROOT, path))) missing.push(path);
      }
    }
    expect(missing).toEqual([]);
  });
});

/** The commands of the CLI, by name, with the parser each runs its argv through. */
const PARSERS: Record<string, (argv: string[]) => void> = {
  serve: (argv) => void parseServeArgs(argv),
  bench: (argv) => void parseBenchArgs(argv),
  check: (argv) => void parseCheckArgs(argv),
  lab: (argv) => {
    const parsed = parseCommand(LAB, argv);
    const name = parsed.positionals[0];
    if (name !== undefined && !LABS.some((l) => l.name === name)) throw new Error(`no lab '${name}'`);
  },
};

/** Splits a shell line into words (quotes kept simple: the docs use none inside a command). */
const words = (line: string) => line.match(/'[^']*'|"[^"]*"|\S+/g)?.map((w) => w.replace(/^['"]|['"]$/g, '')) ?? [];

/**
 * Checks one line of a shell block: a `posix-servers` command line must be one the CLI accepts
 * (its own parser, as run), up to the end of the command (`&&`, `|`, `;`, `&`). Returns a problem or null.
 */
function checkShellLine(line: string): string | null {
  const code = line.replace(/(^|\s)#.*$/, '').trim();
  if (code === '') return null;
  const at = code.search(/(^|\s)(npx )?posix-servers(\s|$)/);
  if (at < 0) return `not a posix-servers command (mark the block ${FRAGMENT}): ${code}`;
  const argv = words(code.slice(at).split(/\s(?:&&|\|\|?|;|&)(?:\s|$)/)[0]);
  if (argv[0] === 'npx') argv.shift();
  argv.shift();
  const [command, ...rest] = argv;
  if (command === undefined || command.startsWith('-')) {
    const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8' });
    return r.status === 0 ? null : `${code}: exit ${r.status}`;
  }
  const parse = PARSERS[command];
  if (!parse) return `${code}: no command '${command}'`;
  try {
    parse(rest);
    return null;
  } catch (e) {
    return `${code}: ${(e as Error).message}`;
  }
}

describe('code blocks', () => {
  const all = DOCS.flatMap((f) => parse(f).blocks);
  const unmarked = all.filter((b) => !b.fragment && !b.output);

  it('every block is run or checked, or marked as a fragment', () => {
    const unknown = unmarked
      .filter((b) => b.lang !== 'js' && b.lang !== 'sh')
      .map((b) => `${b.file}:${b.line} (${b.lang || 'no language'})`);
    expect(unknown).toEqual([]);
  });

  const shell = unmarked.filter((b) => b.lang === 'sh');
  it.each(shell.map((b) => [`${b.file}:${b.line}`, b] as const))('%s: every command line is one the CLI accepts', (_, b) => {
    const joined = b.text.replace(/\\\n\s*/g, ' ');
    const problems = joined
      .split('\n')
      .map(checkShellLine)
      .filter((p) => p !== null);
    expect(problems).toEqual([]);
  });

  const js = unmarked.filter((b) => b.lang === 'js');
  it.each(js.map((b) => [`${b.file}:${b.line}`, b] as const))(
    '%s: runs as pasted in a project that installed the package, and exits 0',
    (_, b) => {
      // A project of its own, whose node_modules holds this package (as npm install of the tarball
      // would put it: dist/ is the built package).
      const project = mkdtempSync(join(tmpdir(), 'docs-block-'));
      try {
        mkdirSync(join(project, 'node_modules'));
        symlinkSync(ROOT, join(project, 'node_modules', 'posix-servers'));
        writeFileSync(join(project, 'block.mjs'), b.text);
        const r = spawnSync(process.execPath, ['block.mjs'], { cwd: project, encoding: 'utf8', timeout: 20_000 });
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
        expect(r.stdout).not.toBe('');
      } finally {
        rmSync(project, { recursive: true, force: true });
      }
    },
  );
});

// eslint-disable-next-line @typescript-eslint/no-require-imports
const samples = require('../scripts/doc-samples.js') as {
  findSamples: () => Array<{ file: string; line: number; command: string; excerpt: boolean; text: string }>;
  matches: (sample: { excerpt: boolean; text: string }, printed: string) => boolean;
  normalize: (text: string) => string;
  runSample: (command: string) => Promise<string>;
};

describe('output samples: what the docs show a command printing is what it prints', () => {
  const found = samples.findSamples();
  it('the docs hold samples of the help and of a trace', () => {
    expect(found.map((s) => s.command)).toEqual(
      expect.arrayContaining([
        'posix-servers --help',
        'posix-servers serve --help',
        'posix-servers serve --model iterative --trace',
      ]),
    );
  });
  it.each(found.map((s) => [`${s.file}:${s.line} ${s.command}`, s] as const))(
    '%s (numbers aside; npm run docs:assets rewrites it)',
    async (_, s) => {
      const printed = await samples.runSample(s.command);
      if (s.excerpt)
        expect({ excerpt: s.text, matches: samples.matches(s, printed) }).toEqual({ excerpt: s.text, matches: true });
      else expect(samples.normalize(s.text)).toBe(samples.normalize(printed));
    },
  );
});

describe('the CLI, its help and docs/CLI.md agree', () => {
  const cliDoc = readFileSync(join(ROOT, 'docs', 'CLI.md'), 'utf8');
  const help = (...argv: string[]) => execFileSync(process.execPath, [CLI, ...argv], { encoding: 'utf8' });

  it('every model is named by `posix-servers --help`, `serve --help` and docs/CLI.md', () => {
    const top = help('--help');
    const serve = help('serve', '--help');
    const missing = MODELS.flatMap((m) => [
      ...(new RegExp(`\\b${m}\\b`).test(top) ? [] : [`--help: ${m}`]),
      ...(new RegExp(`\\b${m}\\b`).test(serve) ? [] : [`serve --help: ${m}`]),
      ...(new RegExp(`\\b${m}\\b`).test(cliDoc) ? [] : [`docs/CLI.md: ${m}`]),
    ]);
    expect(missing).toEqual([]);
  });

  it('every model bench takes is named by `bench --help` and docs/CLI.md', () => {
    const text = help('bench', '--help');
    const missing = BENCH_MODELS.flatMap((m) => [
      ...(new RegExp(`(^|[^\\w-])${m}(?![\\w-])`).test(text) ? [] : [`bench --help: ${m}`]),
      ...(new RegExp(`(^|[^\\w-])${m}(?![\\w-])`).test(cliDoc) ? [] : [`docs/CLI.md: ${m}`]),
    ]);
    expect(missing).toEqual([]);
  });

  const COMMANDS: Command[] = [SERVE, BENCH, LAB, CHECK];
  it.each(COMMANDS.map((c) => [c.name, c] as const))('every flag of %s is in its --help and in docs/CLI.md', (name, c) => {
    const text = help(name, '--help');
    expect(text).toBe(commandHelp(c));
    const missing = c.flags.flatMap((f) => [
      ...(text.includes(`--${f.name}`) ? [] : [`--help: --${f.name}`]),
      ...(new RegExp(`--${f.name}(?![\\w-])`).test(cliDoc) ? [] : [`docs/CLI.md: --${f.name}`]),
    ]);
    expect(missing).toEqual([]);
  });
});
